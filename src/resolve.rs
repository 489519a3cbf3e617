//! Evaluates spec expressions into values. A value that depends on an output not produced yet
//! is unknown (`None`) at plan time and known at apply time.

use std::collections::BTreeMap;

use fabrik_provider::{Attributes, Value};

use std::collections::BTreeSet;

use crate::registry::Registry;
use crate::secrets::Secrets;
use crate::source::{Diagnostic, Loc};
use crate::spec::{Expr, ExprKind, Spec};
use crate::template::{EnvVar, Part, Reference};
use crate::yaml::Key;

/// Evaluated inputs of one resource: `None` for a value known only after apply.
pub type Inputs = BTreeMap<String, Option<Value>>;

/// Evaluates an expression; `lookup` answers references (`None`: not known yet).
pub fn eval(expr: &Expr, lookup: &dyn Fn(&Reference) -> Option<Value>) -> Option<Value> {
    Some(match &expr.kind {
        ExprKind::Null => Value::Null,
        ExprKind::Bool(b) => Value::Bool(*b),
        ExprKind::Int(i) => Value::from(*i),
        ExprKind::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        ExprKind::Str(parts) => match parts.as_slice() {
            // A lone reference keeps the referenced value's kind (a list stays a list).
            [Part::Ref(r)] => lookup(r)?,
            _ => {
                let mut s = String::new();
                for part in parts {
                    match part {
                        Part::Text(t) => s.push_str(t),
                        Part::Ref(r) => match lookup(r)? {
                            Value::String(v) => s.push_str(&v),
                            Value::Null => {}
                            other => s.push_str(&other.to_string()),
                        },
                    }
                }
                Value::String(s)
            }
        },
        ExprKind::List(items) => Value::Array(
            items
                .iter()
                .map(|e| eval(e, lookup))
                .collect::<Option<_>>()?,
        ),
        ExprKind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, e)| Some((k.name.clone(), eval(e, lookup)?)))
                .collect::<Option<_>>()?,
        ),
    })
}

/// An expression with every known reference put in and the others left as written
/// (`"x${b.size} more"`): what a saved plan binds for a value known only at apply time, so that
/// an edit to its text, or to an environment variable inside it, makes the plan stale.
pub fn eval_written(expr: &Expr, lookup: &dyn Fn(&Reference) -> Option<Value>) -> Value {
    match &expr.kind {
        ExprKind::Str(parts) => Value::String(
            parts
                .iter()
                .map(|part| match part {
                    Part::Text(t) => t.replace("${", "$${"),
                    Part::Ref(r) => match lookup(r) {
                        Some(Value::String(v)) => v.replace("${", "$${"),
                        Some(other) => other.to_string(),
                        None => r.written(),
                    },
                })
                .collect(),
        ),
        ExprKind::List(items) => {
            Value::Array(items.iter().map(|e| eval_written(e, lookup)).collect())
        }
        ExprKind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, e)| (k.name.clone(), eval_written(e, lookup)))
                .collect(),
        ),
        _ => eval(expr, lookup).unwrap_or(Value::Null),
    }
}

pub fn eval_fields(fields: &[(Key, Expr)], lookup: &dyn Fn(&Reference) -> Option<Value>) -> Inputs {
    fields
        .iter()
        .map(|(k, e)| (k.name.clone(), eval(e, lookup)))
        .collect()
}

/// Numbers and booleans given to a string field become their text: `content: "${a.size}"` is
/// the size written out, as in any other string.
pub fn coerce(ty: &fabrik_provider::ResourceType, inputs: &mut Inputs) {
    for (name, value) in inputs.iter_mut() {
        let is_string = ty
            .field(name)
            .is_some_and(|f| f.kind == fabrik_provider::FieldKind::String);
        if let (true, Some(v @ (Value::Number(_) | Value::Bool(_)))) = (is_string, value.as_ref()) {
            *value = Some(Value::String(v.to_string()));
        }
    }
}

/// All inputs, if every one is known.
pub fn known(inputs: &Inputs) -> Option<Attributes> {
    inputs
        .iter()
        .map(|(k, v)| Some((k.clone(), v.clone()?)))
        .collect()
}

/// Answers the references that do not name resources: `${env.X}`, `${secret.X}`, `${var.X}`
/// (unknown while the variable has no value) and `${stack}`.
pub fn context_value(spec: &Spec, secrets: &Secrets, reference: &Reference) -> Option<Value> {
    match reference {
        Reference::Env(var) => var.value().ok().map(Value::String),
        Reference::Stack => Some(Value::String(spec.stack.clone())),
        Reference::Secret(name) => secrets
            .get(name)
            .map(|s| Value::String(s.expose().to_string())),
        Reference::Var(name) => spec.var_values.get(name).cloned(),
        // Put in when the instances are made (`Spec::expand`); in a resource whose keys are
        // not known yet (`validate` without values), as unknown as its outputs.
        Reference::Resource { .. } | Reference::Each(_) => None,
    }
}

/// For each resource (in file order), the attributes that hold a secret: the input fields its
/// type marks sensitive, those whose value uses `${secret.X}` or a sensitive `${var.X}`, those that refer to a sensitive
/// attribute of another resource, the outputs its type marks sensitive (a push monitor's URL),
/// and those it derives from any of these (a file's `content_hash` and `size` when its
/// `content` is secret). Their values are never stored or shown.
pub fn sensitive_fields(
    spec: &Spec,
    registry: &Registry,
    order: &[usize],
) -> Vec<BTreeSet<String>> {
    let mut sensitive: Vec<BTreeSet<String>> = vec![BTreeSet::new(); spec.resources.len()];
    for &i in order {
        let resource = &spec.resources[i];
        let ty = registry.resource_type(&resource.type_name);
        let mut fields = BTreeSet::new();
        for (key, expr) in &resource.with {
            let marked = ty
                .and_then(|t| t.field(&key.name))
                .is_some_and(|f| f.sensitive);
            let mut tainted = false;
            expr.each_reference(&mut |r, _| {
                tainted |= match r {
                    Reference::Secret(_) => true,
                    Reference::Var(var) => spec.var(var).is_some_and(|d| d.sensitive),
                    Reference::Resource { name, attr } => spec
                        .index_of(name)
                        .is_some_and(|j| sensitive[j].contains(attr)),
                    _ => false,
                };
            });
            if marked || tainted {
                fields.insert(key.name.clone());
            }
        }
        if let Some(ty) = ty {
            let derived = ty
                .outputs
                .iter()
                .filter(|o| o.sensitive || o.derived_from.iter().any(|f| fields.contains(*f)))
                .map(|o| o.name.to_string())
                .collect::<Vec<_>>();
            fields.extend(derived);
        }
        sensitive[i] = fields;
    }
    sensitive
}

/// Outputs as fabrik stores and shows them: those that hold a secret (see [`sensitive_fields`])
/// replaced by their keyed hash, and any secret a provider echoed in another masked by
/// [`crate::redact::redact_value`].
pub fn mask_outputs(
    outputs: Attributes,
    sensitive: Option<&BTreeSet<String>>,
    secrets: &Secrets,
) -> Attributes {
    outputs
        .into_iter()
        .map(|(k, mut v)| {
            if sensitive.is_some_and(|s| s.contains(&k)) {
                if !crate::secrets::is_masked(&v) {
                    v = Value::String(secrets.mask(&v));
                }
            } else {
                crate::redact::redact_value(&mut v);
            }
            (k, v)
        })
        .collect()
}

/// The inputs as fabrik stores, hashes and shows them: every sensitive value replaced by its
/// keyed hash.
pub fn mask(inputs: &Inputs, sensitive: &BTreeSet<String>, secrets: &Secrets) -> Inputs {
    inputs
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Some(value) if sensitive.contains(k) => Some(Value::String(secrets.mask(value))),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

/// [`mask`] for inputs that are all known.
pub fn mask_known(
    inputs: &Attributes,
    sensitive: &BTreeSet<String>,
    secrets: &Secrets,
) -> Attributes {
    inputs
        .iter()
        .map(|(k, v)| {
            if sensitive.contains(k) {
                (k.clone(), Value::String(secrets.mask(v)))
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect()
}

/// Every `${env.X}` whose variable is not set (or not UTF-8), at the place it is used, before
/// anything is planned. `${env.X:-default}` is not set only when its variable is not UTF-8.
pub fn env_problems(spec: &Spec) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    each_env_reference(spec, &mut |r, env, loc| {
        let var = &env.name;
        let problem = match env.value() {
            Ok(_) => return,
            Err(std::env::VarError::NotPresent) => Diagnostic::new(
                spec.source.refine(loc, &r.written()),
                format!("environment variable `{var}` is not set"),
            )
            .help(format!("set it, for example `{var}=… fabrik plan`")),
            Err(std::env::VarError::NotUnicode(_)) => Diagnostic::new(
                spec.source.refine(loc, &r.written()),
                format!("environment variable `{var}` is not valid UTF-8"),
            ),
        };
        problems.push(problem);
    });
    problems
}

/// The environment variables a run of the spec needs that are not set here (`${env.X}`
/// without a default), sorted: what `validate`, which needs none, tells a user to set.
pub fn unset_env(spec: &Spec) -> Vec<String> {
    let mut names = BTreeSet::new();
    each_env_reference(spec, &mut |_, env, _| {
        if env.default.is_none() && std::env::var_os(&env.name).is_none() {
            names.insert(env.name.clone());
        }
    });
    names.into_iter().collect()
}

/// Calls `f` with every `${env.…}` of the spec: providers, resources and their gates, the
/// stack's gates and its outputs.
fn each_env_reference(spec: &Spec, f: &mut impl FnMut(&Reference, &EnvVar, Loc)) {
    let mut look = |r: &Reference, loc| {
        if let Reference::Env(env) = r {
            f(r, env, loc);
        }
    };
    for block in &spec.providers {
        block
            .config
            .iter()
            .for_each(|(_, e)| e.each_reference(&mut look));
    }
    for resource in &spec.resources {
        for (_, e) in &resource.with {
            e.each_reference(&mut look);
        }
        for gate in &resource.verify {
            gate.each_reference(&mut look);
        }
    }
    for gate in &spec.verify {
        gate.each_reference(&mut look);
    }
    for output in &spec.outputs {
        output.value.each_reference(&mut look);
    }
}

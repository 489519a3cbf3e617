//! Checks a spec against the registry: resource types, fields, value kinds and references.
//! Everything here runs before any provider is called, so a bad spec changes nothing.

use fabrik_provider::{Field, FieldKind};

use crate::registry::Registry;
use crate::source::{Diagnostic, Loc, MAX_SHOWN, closest};
use crate::spec::{Expr, ExprKind, Resource, Spec};
use crate::template::{Part, Reference};
use crate::yaml::Key;

/// Every problem in the spec's types, fields and references, in no particular order (see
/// [`crate::source::Diagnostics::sorted`]). A spec read with problems of its own is checked
/// as far as it was read: what refers to a resource that could not be read is not reported
/// as well.
pub fn problems(spec: &Spec, registry: &Registry) -> Vec<Diagnostic> {
    let mut found = Found::default();
    for block in &spec.providers {
        let Some(provider) = registry.provider(&block.name) else {
            found.problems.push(
                Diagnostic::new(block.loc, format!("unknown provider `{}`", block.name))
                    .suggest(&block.name, registry.provider_names()),
            );
            continue;
        };
        let fields = provider.config_fields();
        let what = || format!("provider `{}`", block.name);
        check_fields(
            &mut found.problems,
            &what,
            block.loc,
            &fields,
            &block.config,
        );
        for (_, expr) in &block.config {
            expr.each_reference(&mut |reference, loc| match reference {
                Reference::Secret(_) | Reference::Var(_) => {
                    found.reference(spec, registry, reference, loc);
                }
                Reference::Resource { .. } => found.problems.push(
                    Diagnostic::new(
                        spec.source.refine(loc, &reference.written()),
                        "provider configuration cannot refer to resources",
                    )
                    .help("providers are configured before any resource exists; use `${env.X}` or `${secret.X}`"),
                ),
                // `${each.…}` there is for `for_each` to report (`Spec::for_each_problems`).
                Reference::Env(_) | Reference::Stack | Reference::Each(_) => {}
            });
        }
    }
    for resource in &spec.resources {
        match registry.resource_type(&resource.type_name) {
            Some(ty) => {
                // Named only in a message: a large spec has few problems and many resources.
                let what = || format!("`{}` ({})", resource.name, ty.name);
                check_fields(
                    &mut found.problems,
                    &what,
                    resource.loc,
                    &ty.fields,
                    &resource.with,
                );
                for (name, loc) in &resource.ignore_changes {
                    if ty.field(name).is_none() {
                        let names = ty.fields.iter().map(|f| f.name);
                        found.problems.push(
                            Diagnostic::new(
                                *loc,
                                format!(
                                    "`ignore_changes` names unknown field `{name}` of {}",
                                    what()
                                ),
                            )
                            .suggest(name, names.clone())
                            .help_if_none(format!(
                                "its fields are {}",
                                list(&names.collect::<Vec<_>>())
                            )),
                        );
                    }
                }
            }
            None => found.problems.push(
                Diagnostic::new(
                    resource.type_loc,
                    format!("unknown resource type `{}`", resource.type_name),
                )
                .suggest(&resource.type_name, registry.type_names()),
            ),
        }
        // Naming itself is a problem of the graph (see `graph`).
        for (name, loc) in &resource.depends_on {
            if !spec.declares(name) {
                let problem = Diagnostic::new(
                    *loc,
                    format!("`depends_on` names unknown resource `{name}`"),
                );
                found.unknown_resource(name, problem);
            }
        }
        for gate in &resource.verify {
            found.problems.extend(crate::verify::check_entry(gate));
        }
        let mut each = |reference, loc| found.reference(spec, registry, reference, loc);
        for (_, expr) in &resource.with {
            expr.each_reference(&mut each);
        }
        for gate in &resource.verify {
            gate.each_reference(&mut each);
        }
    }
    for gate in &spec.verify {
        found.problems.extend(crate::verify::check_entry(gate));
        gate.each_reference(&mut |reference, loc| found.reference(spec, registry, reference, loc));
    }
    for output in &spec.outputs {
        // `fabrik output NAME` names either; one name for two things would be a guess.
        if spec.declares(&output.name) {
            found.problems.push(
                Diagnostic::new(
                    output.loc,
                    format!("output `{}` has the name of a resource", output.name),
                )
                .help("`fabrik output NAME` names an output or a resource: give the output another name"),
            );
        }
        output
            .value
            .each_reference(&mut |reference, loc| found.reference(spec, registry, reference, loc));
    }
    suggest_resources(spec, &mut found.problems, &found.unknown);
    found.problems.extend(spec.for_each_problems());
    found.problems.extend(collections_in_text(spec));
    found.problems
}

/// A list or map variable written inside a longer string: it has no text to put there.
fn collections_in_text(spec: &Spec) -> Vec<Diagnostic> {
    fn walk(spec: &Spec, expr: &Expr, problems: &mut Vec<Diagnostic>) {
        match &expr.kind {
            ExprKind::Str(parts) if parts.len() > 1 => {
                for part in parts {
                    if let Part::Ref(reference @ Reference::Var(name)) = part
                        && let Some(decl) = spec.var(name).filter(|d| d.ty.is_collection())
                    {
                        problems.push(
                            Diagnostic::new(
                                spec.source.refine(expr.loc, &reference.written()),
                                format!(
                                    "variable `{name}` is a {}, which cannot be written inside a string",
                                    decl.ty.name()
                                ),
                            )
                            .help(format!("write `\"{}\"` alone to pass the {} as it is", reference.written(), decl.ty.name())),
                        );
                    }
                }
            }
            ExprKind::List(items) => items.iter().for_each(|e| walk(spec, e, problems)),
            ExprKind::Map(entries) => entries.iter().for_each(|(_, e)| walk(spec, e, problems)),
            _ => {}
        }
    }
    let mut problems = Vec::new();
    if spec.vars.iter().all(|d| !d.ty.is_collection()) {
        return problems;
    }
    let providers = spec
        .providers
        .iter()
        .flat_map(|p| p.config.iter().map(|(_, e)| e));
    let resources = spec
        .resources
        .iter()
        .flat_map(|r| r.with.iter().map(|(_, e)| e).chain(&r.verify));
    let outputs = spec.outputs.iter().map(|o| &o.value);
    for expr in providers
        .chain(resources)
        .chain(&spec.verify)
        .chain(outputs)
    {
        walk(spec, expr, &mut problems);
    }
    problems
}

/// The problems found so far, and which of them name a resource the spec does not declare
/// (see [`suggest_resources`]).
#[derive(Default)]
struct Found<'a> {
    problems: Vec<Diagnostic>,
    /// The problem's index and the unknown name.
    unknown: Vec<(usize, &'a str)>,
}

impl<'a> Found<'a> {
    fn unknown_resource(&mut self, name: &'a str, problem: Diagnostic) {
        self.unknown.push((self.problems.len(), name));
        self.problems.push(problem);
    }

    /// A problem with one reference, if it has one.
    fn reference(&mut self, spec: &Spec, registry: &Registry, reference: &'a Reference, loc: Loc) {
        match reference {
            Reference::Resource { name, .. } if !spec.declares(name) => {
                let problem = Diagnostic::new(
                    spec.source.refine(loc, &reference.written()),
                    format!("reference to unknown resource `{name}`"),
                );
                self.unknown_resource(name, problem);
            }
            _ => self
                .problems
                .extend(check_reference(spec, registry, reference, loc)),
        }
    }
}

/// Adds "did you mean" to the problems that name an unknown resource, among those that are
/// shown (the first [`MAX_SHOWN`] in file order; the others are only counted): a suggestion
/// compares the name with every resource's, which for each of thousands of misspelt names in
/// a large spec would take minutes.
fn suggest_resources(spec: &Spec, problems: &mut [Diagnostic], unknown: &[(usize, &str)]) {
    if unknown.is_empty() {
        return;
    }
    let mut by_place: Vec<usize> = (0..problems.len()).collect();
    by_place.sort_by_key(|&i| (problems[i].loc.line, problems[i].loc.column));
    let mut shown = vec![false; problems.len()];
    for &i in by_place.iter().take(MAX_SHOWN) {
        shown[i] = true;
    }
    let names = || spec.resources.iter().map(|r| r.name.as_str());
    for &(i, name) in unknown.iter().filter(|(i, _)| shown[*i]) {
        problems[i] = std::mem::take(&mut problems[i]).suggest(name, names());
    }
}

/// Secrets in fields that name an object (its force-new fields, such as a file's path): an
/// object's identity is recorded in the state and shown in plans.
pub fn secret_identities(
    spec: &Spec,
    registry: &Registry,
    sensitive: &[std::collections::BTreeSet<String>],
) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    for (resource, fields) in spec.resources.iter().zip(sensitive) {
        let Some(ty) = registry.resource_type(&resource.type_name) else {
            continue;
        };
        for (key, _) in resource
            .with
            .iter()
            .filter(|(k, _)| fields.contains(&k.name))
        {
            if ty.field(&key.name).is_some_and(|f| f.force_new) {
                problems.push(
                    Diagnostic::new(
                        key.loc,
                        format!("`{}` of `{}` uses a secret, but it names the object", key.name, resource.name),
                    )
                    .help("an object's identity is recorded in the state and shown in plans; keep secrets out of it"),
                );
            }
        }
    }
    problems
}

/// Outputs that show a secret (a `${secret.X}`, a sensitive variable, a sensitive attribute of
/// a resource) without being marked `sensitive: true`: they would print it and keep it in the
/// state in clear.
pub fn output_secrets(
    spec: &Spec,
    sensitive: &[std::collections::BTreeSet<String>],
) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    for output in spec.outputs.iter().filter(|o| !o.sensitive) {
        output.value.each_reference(&mut |reference, loc| {
            let what = match reference {
                Reference::Secret(name) => format!("secret `{name}`"),
                Reference::Var(name) if spec.var(name).is_some_and(|d| d.sensitive) => {
                    format!("sensitive variable `{name}`")
                }
                Reference::Resource { name, attr }
                    if spec
                        .index_of(name)
                        .is_some_and(|j| sensitive.get(j).is_some_and(|s| s.contains(attr))) =>
                {
                    format!("`{name}.{attr}`, which holds a secret")
                }
                _ => return,
            };
            problems.push(
                Diagnostic::new(
                    spec.source.refine(loc, &reference.written()),
                    format!("output `{}` shows {what}, but it is not marked sensitive", output.name),
                )
                .help(format!(
                    "add `sensitive: true` to output `{}`: it is then kept by its keyed hash and shown as `(sensitive)` unless asked for with --show-sensitive",
                    output.name
                )),
            );
        });
    }
    problems
}

/// A problem with one reference, pointing at the reference itself inside its string. Finding
/// that column costs a look at the line, so it is only done for a reference that is wrong.
fn check_reference(
    spec: &Spec,
    registry: &Registry,
    reference: &Reference,
    loc: Loc,
) -> Option<Diagnostic> {
    let mut problem = reference_problem(spec, registry, reference, loc)?;
    problem.loc = spec.source.refine(problem.loc, &reference.written());
    Some(problem)
}

fn reference_problem(
    spec: &Spec,
    registry: &Registry,
    reference: &Reference,
    loc: Loc,
) -> Option<Diagnostic> {
    match reference {
        Reference::Resource { name, attr } => {
            // An undeclared name is reported by `Found::reference`; a resource whose entry
            // could not be read, where it is written.
            // An instance whose keys are not known yet has its resource's attributes.
            let target = &spec.resources[spec.index_of_ref(name)?];
            // An unknown type is reported on its own resource.
            let ty = registry.resource_type(&target.type_name)?;
            if ty.field(attr).is_some() || ty.output(attr).is_some() {
                return None;
            }
            let names = ty
                .fields
                .iter()
                .map(|f| f.name)
                .chain(ty.outputs.iter().map(|o| o.name));
            let known: Vec<&str> = names.clone().collect();
            Some(
                Diagnostic::new(
                    loc,
                    format!("`{name}` ({}) has no attribute `{attr}`", ty.name),
                )
                .suggest(attr, names)
                .help_if_none(format!("its attributes are {}", list(&known))),
            )
        }
        Reference::Secret(secret) => {
            if spec.secrets.iter().any(|d| &d.name == secret) {
                return None;
            }
            let d = Diagnostic::new(loc, format!("unknown secret `{secret}`"));
            Some(if spec.secrets.is_empty() {
                d.help(format!(
                    "declare it under `secrets:`, e.g. `secrets: {{ {secret}: {{}} }}`"
                ))
            } else {
                d.suggest(secret, spec.secrets.iter().map(|s| s.name.as_str()))
                    .help_if_none("declare it under `secrets:`")
            })
        }
        Reference::Var(var) => {
            if spec.var(var).is_some() {
                return None;
            }
            let d = Diagnostic::new(loc, format!("unknown variable `{var}`"));
            Some(if spec.vars.is_empty() {
                d.help(format!(
                    "declare it under `vars:`, e.g. `vars: {{ {var}: {{ type: string }} }}`"
                ))
            } else {
                d.suggest(var, spec.vars.iter().map(|v| v.name.as_str()))
                    .help_if_none("declare it under `vars:`")
            })
        }
        Reference::Env(_) | Reference::Stack | Reference::Each(_) => None,
    }
}

fn check_fields(
    problems: &mut Vec<Diagnostic>,
    what: &dyn Fn() -> String,
    loc: Loc,
    fields: &[Field],
    given: &[(Key, Expr)],
) {
    // Fields some unknown field is a misspelling of: reported as that typo only, not as
    // missing as well.
    let mut misspelt: Vec<&str> = Vec::new();
    for (key, expr) in given {
        let Some(field) = fields.iter().find(|f| f.name == key.name) else {
            let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
            let d = Diagnostic::new(
                key.loc,
                format!("unknown field `{}` in {}", key.name, what()),
            );
            let d = match closest(&key.name, names.iter().copied()) {
                Some(best) => {
                    misspelt.push(best);
                    d.help(format!("did you mean `{best}`?"))
                }
                None if names.is_empty() => d.help("it takes no fields"),
                None => d.help(format!("its fields are {}", list(&names))),
            };
            problems.push(d);
            continue;
        };
        if let Some(found) = expr.literal_kind()
            && !kind_fits(field.kind, found)
        {
            let d = Diagnostic::new(
                expr.loc,
                format!(
                    "`{}` in {} must be {}, not {found}",
                    field.name,
                    what(),
                    field.kind.describe()
                ),
            );
            let d = if field.kind == FieldKind::String
                && matches!(found, "an integer" | "a number" | "a boolean")
            {
                d.help("put the value in quotes to make it a string")
            } else if field.kind == FieldKind::Duration
                && matches!(found, "an integer" | "a number")
            {
                d.help("give it a unit, such as \"90s\" or \"5m\"")
            } else {
                d
            };
            problems.push(d);
        } else if field.kind == FieldKind::Duration
            && let Some(text) = literal_text(expr)
            && let Err(why) = fabrik_provider::parse_duration(&text)
        {
            problems.push(Diagnostic::new(
                expr.loc,
                format!("`{}` in {} {why}", field.name, what()),
            ));
        }
    }
    for field in fields.iter().filter(|f| f.required) {
        if !given.iter().any(|(k, _)| k.name == field.name) && !misspelt.contains(&field.name) {
            problems.push(
                Diagnostic::new(
                    loc,
                    format!("{} is missing required field `{}`", what(), field.name),
                )
                .help(field.description),
            );
        }
    }
}

/// The text of a string written without references; a value known only later is checked
/// when it is.
fn literal_text(expr: &Expr) -> Option<String> {
    let ExprKind::Str(parts) = &expr.kind else {
        return None;
    };
    parts
        .iter()
        .map(|part| match part {
            Part::Text(text) => Some(text.as_str()),
            Part::Ref(_) => None,
        })
        .collect()
}

/// Whether a resource's type is known and its fields are the type's, each of a fitting kind,
/// the required ones all given: what evaluating its values for a provider assumes.
pub fn sound(resource: &Resource, registry: &Registry) -> bool {
    let Some(ty) = registry.resource_type(&resource.type_name) else {
        return false;
    };
    let fitting = resource.with.iter().all(|(key, expr)| {
        ty.field(&key.name).is_some_and(|field| {
            expr.literal_kind()
                .is_none_or(|found| kind_fits(field.kind, found))
        })
    });
    fitting
        && ty
            .fields
            .iter()
            .filter(|f| f.required)
            .all(|f| resource.with.iter().any(|(k, _)| k.name == f.name))
}

fn kind_fits(want: FieldKind, found: &str) -> bool {
    match want {
        FieldKind::Any => true,
        FieldKind::String | FieldKind::Duration => found == "a string",
        FieldKind::Integer => found == "an integer",
        FieldKind::Boolean => found == "a boolean",
        FieldKind::List => found == "a list",
        FieldKind::Map => found == "a map",
    }
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

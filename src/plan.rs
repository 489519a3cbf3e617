//! Plans: what an apply would do, resource by resource, computed by comparing the spec's resolved
//! inputs (by spec hash) with the state and, when it refreshes (the default), with what is
//! really there.
//!
//! A plan is plain data: it renders as text, serializes as JSON (`--json`, saved plans) and is
//! what the executor carries out.

use std::collections::{BTreeMap, BTreeSet};

use fabrik_provider::{Observed, ReplaceStrategy, Value};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::graph::Graph;
use crate::hash;
use crate::registry::Registry;
use crate::resolve::{self, Inputs};
use crate::secrets::Secrets;
use crate::source::{Diagnostic, Diagnostics, closest};
use crate::spec::Spec;
use crate::state::State;
use crate::template::Reference;

pub mod precheck;

pub const PLAN_FORMAT: &str = "fabrik-plan";
pub const PLAN_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    Replace,
    Delete,
    /// Found again after an interrupted run and taken into the state as it is.
    Adopt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplaceOrder {
    CreateBeforeDestroy,
    DestroyBeforeCreate,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributeChange {
    pub name: String,
    /// The value now (recorded in the state, or seen on refresh); absent for a new attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The value after the change; absent when removed or not known until apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_unknown: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_new: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_order: Option<ReplaceOrder>,
    /// Why, where it is not obvious ("deleted outside fabrik").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The object differs from what the state recorded (seen by the refresh): the change repairs
    /// it even where the spec did not change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drifted: bool,
    /// Nothing to change, but the last change's gates never passed: only they run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reverify: bool,
    /// Only fabrik's own record changes (`protect`): no provider is called.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub state_only: bool,
    /// For the delete of an object replaced earlier and not yet removed: its id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deposed: Option<String>,
    /// The resource whose object this one takes over: the spec hands its place (a file's
    /// path) from that resource, which this plan removes or moves, to this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub takes_over: Option<String>,
    #[serde(default)]
    pub attributes: Vec<AttributeChange>,
    #[serde(default)]
    pub depends_on: Vec<String>,
}

impl Change {
    /// A change with nothing but its subject and action set.
    pub fn new(name: &str, type_name: &str, action: Action) -> Self {
        Change {
            name: name.to_string(),
            type_name: type_name.to_string(),
            action,
            replace_order: None,
            reason: None,
            drifted: false,
            reverify: false,
            state_only: false,
            deposed: None,
            takes_over: None,
            attributes: Vec::new(),
            depends_on: Vec::new(),
        }
    }

    /// The delete of an object replaced by `name`'s current one, still waiting for it.
    pub fn delete_deposed(name: &str, type_name: &str, id: &str) -> Self {
        Change {
            deposed: Some(id.to_string()),
            ..Change::new(name, type_name, Action::Delete)
        }
    }

    /// Whether some input is known only after apply, so the executor decides again then.
    pub fn has_unknown(&self) -> bool {
        self.attributes.iter().any(|a| a.after_unknown)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub adopt: usize,
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format: String,
    pub format_version: u32,
    pub stack: String,
    /// The spec file the plan was made from (absolute); absent for a destroy plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
    /// BLAKE3 over the whole resolved spec.
    pub spec_hash: String,
    /// The state the plan was made against.
    pub lineage: String,
    pub serial: u64,
    #[serde(default)]
    pub destroy: bool,
    #[serde(default)]
    pub refresh: bool,
    #[serde(default)]
    pub targets: Vec<String>,
    /// Creates, updates and replacements in apply order, then deletes in delete order; no-ops
    /// are listed too, so the plan accounts for every resource.
    pub changes: Vec<Change>,
    pub summary: Summary,
    /// The inputs each created, updated or replaced resource resolved to while planning (in
    /// the provider's normal form, secrets in), where every one was known: applying the plan
    /// sends them as they are instead of resolving them again. Never saved; a saved plan's
    /// changes are resolved at apply time.
    #[serde(skip)]
    pub resolved: std::collections::HashMap<String, Resolved>,
    /// For new objects whose inputs are not all known yet, those that are (in normal form
    /// where the provider can give one), to look for what is in their way. Never saved.
    #[serde(skip)]
    pub partial: std::collections::HashMap<String, fabrik_provider::Attributes>,
    /// The real values of outputs the state holds by their keyed hash only (they derive from a
    /// secret), as read from the objects while planning, for the references to them that are
    /// resolved at apply time. Never saved.
    #[serde(skip)]
    pub real_outputs: std::collections::HashMap<String, fabrik_provider::Attributes>,
}

/// A resource's inputs as the plan resolved them, all known.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// In the provider's normal form, secrets in.
    pub inputs: fabrik_provider::Attributes,
    /// Their spec hash, as the state records it (secrets by their keyed hash).
    pub spec_hash: String,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Plan {
    /// Whether applying it would call any provider (adoptions are recorded before planning).
    pub fn has_changes(&self) -> bool {
        self.changes
            .iter()
            .any(|c| !matches!(c.action, Action::NoOp | Action::Adopt))
    }
}

/// What the refresh saw of each resource in the state: `None` when it is gone.
pub type Observations = BTreeMap<String, Option<Observed>>;

/// Everything a plan is computed from.
pub struct Input<'a> {
    pub spec: &'a Spec,
    pub graph: &'a Graph,
    pub registry: &'a Registry,
    pub state: &'a State,
    pub secrets: &'a Secrets,
    /// For each resource (file order), its input fields that hold secrets.
    pub sensitive: &'a [BTreeSet<String>],
    pub targets: &'a [String],
    /// What the refresh saw, if it ran (not with `--refresh=false`).
    pub observed: Option<&'a Observations>,
    /// What was read of the objects whose outputs the state holds by their keyed hash only and
    /// that the spec refers to: references to those outputs need their real values. The same
    /// as `observed` when a refresh ran.
    pub read: Option<&'a Observations>,
    /// Resources recovery adopted just before, shown as `=`.
    pub adopted: &'a BTreeSet<String>,
    /// Where the run happens, for the places of resources ([`crate::place`]).
    pub context: &'a fabrik_provider::Context,
}

/// Computes the plan that brings the state to the spec.
pub fn plan(input: &Input<'_>) -> Result<Plan, Error> {
    let Input {
        spec,
        graph,
        state,
        secrets,
        targets,
        observed,
        ..
    } = *input;
    let selected = select(spec, graph, state, targets)?;
    let mut planned: Vec<Option<(Inputs, bool)>> = vec![None; spec.resources.len()];
    let mut outcomes: Vec<Option<Planned>> = (0..spec.resources.len()).map(|_| None).collect();
    // Resources of one level need only those of earlier levels: each level is planned in
    // parallel, and everything order-dependent is folded afterwards in graph order.
    for level in graph.levels() {
        let done = crate::parallel::map(&level, 256, |&i| plan_one(input, &selected, &planned, i));
        for (&i, mut one) in level.iter().zip(done) {
            planned[i] = Some((std::mem::take(&mut one.inputs), one.stable));
            outcomes[i] = Some(one);
        }
    }
    let mut changes = Vec::new();
    let mut problems = Vec::new();
    // The digests of each resource's canonical form, in graph order: the spec hash covers them.
    let mut resource_digests = blake3::Hasher::new();
    let mut hashes = vec![String::new(); spec.resources.len()];
    for &i in &graph.order {
        let one = outcomes[i].take().expect("every resource is planned");
        resource_digests.update(one.digest.as_bytes());
        hashes[i] = one.inputs_hash;
        problems.extend(one.problems);
        changes.extend(one.change);
    }
    if !problems.is_empty() {
        return Err(Error::Spec(Diagnostics::sorted(
            spec.source.clone(),
            problems,
        )));
    }
    let removed = deletes(state, targets, |name| spec.resource(name).is_none());
    let protected: Vec<String> = removed
        .iter()
        .filter(|c| c.deposed.is_none())
        .filter(|c| state.resources.get(&c.name).is_some_and(|r| r.protect))
        .map(|c| format!("`{}`", c.name))
        .collect();
    if !protected.is_empty() {
        let (is, it) = if protected.len() == 1 {
            ("is", "it")
        } else {
            ("are", "them")
        };
        return Err(Error::Usage(format!(
            "{} {is} no longer in the spec, but the state records {it} as protected: this plan would delete {it}\nput {it} back in the spec with `protect: false` and apply that first; then remove {it}",
            protected.join(", "),
        )));
    }
    changes.extend(removed);
    let problems = crate::place::check(input, &planned, &mut changes);
    if !problems.is_empty() {
        return Err(Error::Spec(Diagnostics {
            source: spec.source.clone(),
            items: problems,
        }));
    }
    let summary = summarize(&changes);
    let stack_gates = written_gates(input, &planned, &spec.verify);
    // The known part of what new objects with inputs not all known yet ask for: enough to
    // look at what is in their place (a file's path known before its content).
    let partial = changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Replace) && !c.state_only)
        .filter_map(|c| {
            let i = spec.index_of(&c.name)?;
            let (inputs, _) = planned[i].as_ref()?;
            if inputs.values().all(Option::is_some) {
                return None;
            }
            Some((c.name.clone(), crate::place::known_part(inputs)))
        })
        .collect();
    let resolved = changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Update | Action::Replace))
        .filter(|c| !c.state_only && !c.reverify)
        .filter_map(|c| {
            let i = spec.index_of(&c.name)?;
            let (inputs, _) = planned[i].take()?;
            let known = inputs
                .into_iter()
                .map(|(k, v)| Some((k, v?)))
                .collect::<Option<fabrik_provider::Attributes>>()?;
            let resolved = Resolved {
                inputs: known,
                spec_hash: std::mem::take(&mut hashes[i]),
            };
            Some((c.name.clone(), resolved))
        })
        .collect();
    let spec_hash = hash::hash_of(&CanonicalSpec {
        stack: &spec.stack,
        providers: spec
            .providers
            .iter()
            .map(|p| (p.name.as_str(), provider_config(spec, secrets, p)))
            .collect(),
        gates: stack_gates,
        resources: resource_digests.finalize().to_hex().to_string(),
    });
    Ok(Plan {
        format: PLAN_FORMAT.to_string(),
        format_version: PLAN_FORMAT_VERSION,
        stack: spec.stack.clone(),
        spec: std::fs::canonicalize(&spec.source.path)
            .ok()
            .map(|p| p.display().to_string()),
        spec_hash,
        lineage: state.lineage.clone(),
        serial: state.serial,
        destroy: false,
        refresh: observed.is_some(),
        targets: targets.to_vec(),
        changes,
        summary,
        resolved,
        partial,
        real_outputs: real_outputs(state, input.read, secrets),
    })
}

/// The real value of output `attr` of `name`, which the state holds by its keyed hash only,
/// from what was read of the object: only where it hashes to what the state holds (the object
/// is as recorded).
fn real_output<'o>(
    state: &State,
    read: Option<&'o Observations>,
    secrets: &Secrets,
    name: &str,
    attr: &str,
) -> Option<&'o Value> {
    let recorded = state.resources.get(name)?.outputs.get(attr)?;
    let seen = read?.get(name)?.as_ref()?.outputs.get(attr)?;
    let matches = secrets.key().is_some() && Value::String(secrets.mask(seen)) == *recorded;
    matches.then_some(seen)
}

/// Every output the state holds by its keyed hash whose real value was read (see
/// [`real_output`]), by resource.
fn real_outputs(
    state: &State,
    read: Option<&Observations>,
    secrets: &Secrets,
) -> std::collections::HashMap<String, fabrik_provider::Attributes> {
    let Some(read) = read else {
        return Default::default();
    };
    read.keys()
        .filter_map(|name| {
            let recorded = &state.resources.get(name)?.outputs;
            let real: fabrik_provider::Attributes = recorded
                .iter()
                .filter(|(_, v)| crate::secrets::is_masked(v))
                .filter_map(|(attr, _)| {
                    let seen = real_output(state, Some(read), secrets, name, attr)?;
                    Some((attr.clone(), seen.clone()))
                })
                .collect();
            (!real.is_empty()).then(|| (name.clone(), real))
        })
        .collect()
}

/// Those of `names` (see [`hidden_outputs_referred_to`]) whose hidden outputs were not read as
/// the state records them: the object was changed or deleted outside fabrik, and what refers
/// to those outputs cannot be given their recorded values.
pub fn unreadable_hidden_outputs<'n>(
    state: &State,
    read: &Observations,
    secrets: &Secrets,
    names: &'n BTreeSet<String>,
) -> Vec<&'n str> {
    names
        .iter()
        .filter(|name| {
            state.resources.get(*name).is_some_and(|r| {
                r.outputs.iter().any(|(attr, v)| {
                    crate::secrets::is_masked(v)
                        && real_output(state, Some(read), secrets, name, attr).is_none()
                })
            })
        })
        .map(String::as_str)
        .collect()
}

/// The resources in the state whose outputs it holds by their keyed hash only (they derive
/// from a secret) and that the spec refers to: a plan reads them, refresh or not, so that the
/// references get the real values.
pub fn hidden_outputs_referred_to(spec: &Spec, state: &State) -> BTreeSet<String> {
    let mut refs = Vec::new();
    for resource in &spec.resources {
        refs.extend(resource.references());
    }
    for gate in &spec.verify {
        gate.references(&mut refs);
    }
    refs.into_iter()
        .filter_map(|(r, _)| match r {
            Reference::Resource { name, attr } => state
                .resources
                .get(&name)
                .and_then(|r| r.outputs.get(&attr))
                .is_some_and(crate::secrets::is_masked)
                .then_some(name),
            _ => None,
        })
        .collect()
}

/// One resource planned: what later resources see of it, and its share of the plan.
struct Planned {
    inputs: Inputs,
    /// No change (or only an adoption, or a change to its record): its recorded outputs stand.
    stable: bool,
    /// The spec hash of its inputs (secrets masked).
    inputs_hash: String,
    digest: String,
    change: Option<Change>,
    /// What the provider finds wrong with its inputs, at the values (see [`precheck`]).
    problems: Vec<Diagnostic>,
}

/// Plans resource `i`, whose dependencies are all in `planned`.
fn plan_one(
    input: &Input<'_>,
    selected: &[bool],
    planned: &[Option<(Inputs, bool)>],
    i: usize,
) -> Planned {
    let Input {
        spec,
        graph,
        registry,
        state,
        secrets,
        sensitive,
        observed,
        adopted,
        ..
    } = *input;
    let resource = &spec.resources[i];
    let ty = registry
        .resource_type(&resource.type_name)
        .expect("checked specs only name known types");
    let (inputs, problem) = desired(input, planned, i, selected[i]);
    let mut problems = problem.map_or_else(Vec::new, |e| {
        precheck::located(spec, registry, i, &inputs, &e)
    });
    // What is hashed, diffed, shown and saved: sensitive values by their keyed hash.
    let masked = if sensitive[i].is_empty() {
        std::borrow::Cow::Borrowed(&inputs)
    } else {
        std::borrow::Cow::Owned(resolve::mask(&inputs, &sensitive[i], secrets))
    };
    let inputs_hash = hash::spec_hash(ty.name, &*masked);
    let digest = hash::hash_of(&CanonicalResource {
        name: &resource.name,
        r#type: &resource.type_name,
        inputs: &inputs_hash,
        pending: pending(input, planned, i, &inputs),
        gates: written_gates(input, planned, &resource.verify),
        protect: resource.protect,
        adopt: resource.adopt,
        keep_on_failure: resource.keep_on_failure,
        depends_on: resource
            .depends_on
            .iter()
            .map(|(n, _)| n.as_str())
            .collect(),
    });
    let change = if selected[i] {
        let observed = observed.map(|o| mask_observed(o, &resource.name, &sensitive[i], secrets));
        let wanted = Wanted {
            inputs: &masked,
            hash: &inputs_hash,
            sensitive: &sensitive[i],
        };
        diff_resource(spec, graph, i, ty, wanted, state, observed.as_ref())
    } else {
        None
    };
    // A protected object (as the state records it) is never replaced: the spec's own
    // `protect: false` counts only once an apply has recorded it.
    let replaced = change.as_ref().is_some_and(|c| c.action == Action::Replace);
    let protected = state
        .resources
        .get(&resource.name)
        .is_some_and(|r| r.protect);
    if problems.is_empty() && replaced && protected {
        problems.push(
            Diagnostic::new(
                resource.type_loc,
                format!(
                    "`{}` is protected: this change would replace it (delete the object and create another)",
                    resource.name
                ),
            )
            .help("the state records it as protected: apply `protect: false` alone first, then this change"),
        );
    }
    let change = change.map(|mut c| {
        if c.action == Action::NoOp && adopted.contains(&c.name) {
            c.action = Action::Adopt;
            c.reason = Some("found after an interrupted run".to_string());
        }
        c
    });
    // A change to fabrik's record only leaves the object, and so its outputs, as they are.
    let stable = change
        .as_ref()
        .is_none_or(|c| matches!(c.action, Action::NoOp | Action::Adopt) || c.state_only);
    drop(masked);
    Planned {
        inputs,
        stable,
        inputs_hash,
        digest,
        change,
        problems,
    }
}

/// The inputs of resource `i` known only at apply time, as written with what is known put in
/// (secrets by their keyed hash): the spec hash covers them, so a saved plan is stale once
/// their text, or an environment variable inside them, changes.
fn pending(
    input: &Input<'_>,
    planned: &[Option<(Inputs, bool)>],
    i: usize,
    inputs: &Inputs,
) -> BTreeMap<String, Value> {
    let resource = &input.spec.resources[i];
    resource
        .with
        .iter()
        .filter(|(k, _)| matches!(inputs.get(&k.name), Some(None)))
        .map(|(k, e)| (k.name.clone(), written(input, planned, e)))
        .collect()
}

/// Gates as written, with what is known put in: what a saved plan binds of them.
fn written_gates(
    input: &Input<'_>,
    planned: &[Option<(Inputs, bool)>],
    gates: &[crate::spec::Expr],
) -> Vec<Value> {
    gates.iter().map(|g| written(input, planned, g)).collect()
}

/// [`resolve::eval_written`] during planning, replaced by its keyed hash where a secret is in it.
fn written(
    input: &Input<'_>,
    planned: &[Option<(Inputs, bool)>],
    expr: &crate::spec::Expr,
) -> Value {
    let Input { spec, secrets, .. } = *input;
    let value = resolve::eval_written(expr, &|r| lookup(input, planned, r));
    let mut refs = Vec::new();
    expr.references(&mut refs);
    let secret = refs.iter().any(|(r, _)| match r {
        Reference::Secret(_) => true,
        Reference::Resource { name, attr } => spec.index_of(name).is_some_and(|j| {
            input
                .sensitive
                .get(j)
                .is_some_and(|fields| fields.contains(attr))
        }),
        _ => false,
    });
    if secret {
        Value::String(secrets.mask(&value))
    } else {
        value
    }
}

/// The inputs resource `i` asks for, with the references to those in `planned` resolved, in
/// the provider's normal form when they are all known (two spellings of one thing are one
/// thing; inputs not all known yet are compared once they are, at apply time). With `check`,
/// also what the provider finds wrong with the known ones.
fn desired(
    input: &Input<'_>,
    planned: &[Option<(Inputs, bool)>],
    i: usize,
    check: bool,
) -> (Inputs, Option<fabrik_provider::Error>) {
    let Input { spec, registry, .. } = *input;
    let resource = &spec.resources[i];
    let ty = registry
        .resource_type(&resource.type_name)
        .expect("checked specs only name known types");
    let mut inputs = resolve::eval_fields(&resource.with, &|r| lookup(input, planned, r));
    resolve::coerce(ty, &mut inputs);
    let provider = registry
        .provider(registry.provider_of(ty.name).expect("typed"))
        .expect("registered");
    let target = fabrik_provider::Target {
        stack: &spec.stack,
        name: &resource.name,
        type_name: ty.name,
    };
    let mut problem = None;
    if let Some(known) = resolve::known(&inputs) {
        if check && let Err(e) = provider.validate(target, &known) {
            problem = Some(e);
        }
        match provider.normalize(ty.name, &known) {
            Ok(normal) => inputs = normal.into_iter().map(|(k, v)| (k, Some(v))).collect(),
            // Inputs that have no normal form would fail at apply time: say so now.
            Err(e) if check && problem.is_none() => problem = Some(e),
            Err(_) => {}
        }
    } else {
        let known: fabrik_provider::Attributes = inputs
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        if check {
            problem = provider.validate(target, &known).err();
        }
        // The known values in normal form where the provider can give one without the others
        // (a file's path): a path respelled is then no change, even beside unknown content.
        if let Ok(normal) = provider.normalize(ty.name, &known) {
            for (k, v) in normal {
                if let Some(slot @ Some(_)) = inputs.get_mut(&k) {
                    *slot = Some(v);
                }
            }
        }
    }
    (inputs, problem)
}

/// The inputs of resource `i` as the spec asks for them now, with the recorded outputs of the
/// resources it refers to (as if nothing else changed): what `fabrik import` claims an object
/// for.
pub fn desired_inputs(input: &Input<'_>, i: usize) -> Inputs {
    let needed = input.graph.with_dependencies(&[i]);
    let mut planned: Vec<Option<(Inputs, bool)>> = vec![None; input.spec.resources.len()];
    for &j in input.graph.order.iter().filter(|&&j| needed[j]) {
        planned[j] = Some((desired(input, &planned, j, false).0, true));
    }
    planned[i]
        .take()
        .map(|(inputs, _)| inputs)
        .unwrap_or_default()
}

/// The plan that deletes everything in the state (or the targets and what depends on them).
pub fn destroy_plan(state: &State, targets: &[String]) -> Result<Plan, Error> {
    let mut selected: BTreeSet<String> = BTreeSet::new();
    for target in targets {
        if !state.resources.contains_key(target) {
            return Err(unknown_target(
                target,
                state.resources.keys().map(String::as_str),
            ));
        }
        selected.insert(target.clone());
    }
    if !targets.is_empty() {
        // What depends on a destroyed resource cannot stay.
        loop {
            let more: Vec<String> = state
                .resources
                .iter()
                .filter(|(name, r)| {
                    !selected.contains(*name) && r.dependencies.iter().any(|d| selected.contains(d))
                })
                .map(|(name, _)| name.clone())
                .collect();
            if more.is_empty() {
                break;
            }
            selected.extend(more);
        }
    }
    let names: Vec<String> = selected.into_iter().collect();
    let changes = deletes(state, &names, |_| true);
    Ok(Plan {
        format: PLAN_FORMAT.to_string(),
        format_version: PLAN_FORMAT_VERSION,
        stack: state.stack.clone(),
        spec: None,
        spec_hash: hash::hash_of(&names),
        lineage: state.lineage.clone(),
        serial: state.serial,
        destroy: true,
        refresh: false,
        targets: targets.to_vec(),
        summary: summarize(&changes),
        changes,
        resolved: Default::default(),
        partial: Default::default(),
        real_outputs: Default::default(),
    })
}

/// A provider block as hashed into the plan: values that use a secret by their keyed hash.
pub(crate) fn provider_config(
    spec: &Spec,
    secrets: &Secrets,
    block: &crate::spec::ProviderBlock,
) -> Inputs {
    let config = resolve::eval_fields(&block.config, &|r| resolve::context_value(spec, secrets, r));
    let sensitive: BTreeSet<String> = block
        .config
        .iter()
        .filter(|(_, e)| {
            let mut refs = Vec::new();
            e.references(&mut refs);
            refs.iter().any(|(r, _)| matches!(r, Reference::Secret(_)))
        })
        .map(|(k, _)| k.name.clone())
        .collect();
    resolve::mask(&config, &sensitive, secrets)
}

/// What a refresh saw of one resource, its sensitive values replaced by their keyed hash so
/// they compare with what the state holds.
fn mask_observed(
    observed: &Observations,
    name: &str,
    sensitive: &BTreeSet<String>,
    secrets: &Secrets,
) -> Observations {
    let mut out = Observations::new();
    if let Some(seen) = observed.get(name) {
        let seen = seen.clone().map(|mut o| {
            for field in sensitive {
                if let Some(v) = o
                    .inputs
                    .get_mut(field)
                    .filter(|v| !crate::secrets::is_masked(v))
                {
                    *v = Value::String(secrets.mask(v));
                }
            }
            o
        });
        out.insert(name.to_string(), seen);
    }
    out
}

#[derive(Serialize)]
struct CanonicalSpec<'a> {
    stack: &'a str,
    providers: BTreeMap<&'a str, Inputs>,
    /// Stack-level gates as written, what is known put in.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    gates: Vec<Value>,
    /// BLAKE3 over the digests of every resource's [`CanonicalResource`].
    resources: String,
}

#[derive(Serialize)]
struct CanonicalResource<'a> {
    name: &'a str,
    r#type: &'a str,
    /// The spec hash of its inputs.
    inputs: &'a str,
    /// Inputs known only at apply time, as written ([`pending`]).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pending: BTreeMap<String, Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    gates: Vec<Value>,
    protect: bool,
    adopt: bool,
    keep_on_failure: bool,
    depends_on: Vec<&'a str>,
}

fn unknown_target<'a>(target: &str, names: impl Iterator<Item = &'a str>) -> Error {
    let names: Vec<&str> = names.collect();
    let hint = match closest(target, names.iter().copied()) {
        Some(best) => format!("; did you mean `{best}`?"),
        None => String::new(),
    };
    Error::Usage(format!(
        "--target `{target}` is neither in the spec nor in the state{hint}"
    ))
}

/// Which spec resources the plan covers: all, or the targets and what they need.
fn select(
    spec: &Spec,
    graph: &Graph,
    state: &State,
    targets: &[String],
) -> Result<Vec<bool>, Error> {
    if targets.is_empty() {
        return Ok(vec![true; spec.resources.len()]);
    }
    let mut roots = Vec::new();
    for target in targets {
        match spec.index_of(target) {
            Some(i) => roots.push(i),
            None if state.resources.contains_key(target) => {}
            None => {
                return Err(unknown_target(
                    target,
                    spec.resources
                        .iter()
                        .map(|r| r.name.as_str())
                        .chain(state.resources.keys().map(String::as_str)),
                ));
            }
        }
    }
    Ok(graph.with_dependencies(&roots))
}

/// Answers a reference during planning: inputs are known once evaluated; outputs are known only
/// for resources this plan leaves alone.
fn lookup(
    input: &Input<'_>,
    planned: &[Option<(Inputs, bool)>],
    reference: &Reference,
) -> Option<Value> {
    let Input {
        spec,
        registry,
        state,
        secrets,
        read,
        ..
    } = *input;
    let Reference::Resource { name, attr } = reference else {
        return resolve::context_value(spec, secrets, reference);
    };
    let j = spec.index_of(name)?;
    let (inputs, stable) = planned[j].as_ref()?;
    let ty = registry.resource_type(&spec.resources[j].type_name)?;
    if ty.field(attr).is_some() {
        return match inputs.get(attr) {
            Some(v) => v.clone(),
            None => Some(Value::Null),
        };
    }
    if !*stable {
        return None;
    }
    let recorded = state.resources.get(name)?.outputs.get(attr)?;
    if crate::secrets::is_masked(recorded) {
        // Derived from a secret, it is recorded by its hash: the value is what was read.
        return real_output(state, read, secrets, name, attr).cloned();
    }
    Some(recorded.clone())
}

/// What a resource asks for: its inputs (secrets masked) and their spec hash.
#[derive(Clone, Copy)]
struct Wanted<'a> {
    inputs: &'a Inputs,
    hash: &'a str,
    /// Its attributes that hold secrets.
    sensitive: &'a BTreeSet<String>,
}

fn diff_resource(
    spec: &Spec,
    graph: &Graph,
    i: usize,
    ty: &fabrik_provider::ResourceType,
    wanted: Wanted<'_>,
    state: &State,
    observed: Option<&Observations>,
) -> Option<Change> {
    let Wanted {
        inputs,
        hash: inputs_hash,
        sensitive,
    } = wanted;
    let resource = &spec.resources[i];
    let depends_on: Vec<String> = graph
        .dependencies(i)
        .into_iter()
        .map(|d| spec.resources[d].name.clone())
        .collect();
    let mut change = Change {
        depends_on,
        ..Change::new(&resource.name, &resource.type_name, Action::NoOp)
    };
    let creating = |change: &mut Change, reason: Option<String>| {
        change.action = Action::Create;
        change.reason = reason;
        change.attributes = attribute_changes(ty, &fabrik_provider::Attributes::new(), inputs);
    };
    let Some(prior) = state.resources.get(&resource.name) else {
        creating(&mut change, None);
        return Some(change);
    };
    if prior.type_name != resource.type_name {
        change.action = Action::Replace;
        change.replace_order = Some(ReplaceOrder::DestroyBeforeCreate);
        change.reason = Some(format!(
            "the type changes from {} to {}",
            prior.type_name, resource.type_name
        ));
        change.attributes = attribute_changes(ty, &prior.inputs, inputs);
        return Some(change);
    }
    let seen = observed.and_then(|o| o.get(&resource.name));
    // What the object is now: the recorded inputs, with what a refresh saw differ put in.
    let mut before = std::borrow::Cow::Borrowed(&prior.inputs);
    match seen {
        Some(None) => {
            creating(&mut change, Some("deleted outside fabrik".to_string()));
            change.drifted = true;
            return Some(change);
        }
        Some(Some(now)) => {
            for (k, v) in &now.inputs {
                if before.get(k) != Some(v) {
                    before.to_mut().insert(k.clone(), v.clone());
                }
            }
        }
        None => {}
    }
    let drifted = matches!(before, std::borrow::Cow::Owned(_));
    if !drifted && inputs.values().all(Option::is_some) && inputs_hash == prior.spec_hash {
        // The object is as wanted, but a change kept without its gates passing is not done.
        if prior.unverified && !resource.verify.is_empty() {
            change.action = Action::Update;
            change.reverify = true;
            change.reason = Some("its gates have not passed since its last change".to_string());
            return Some(change);
        }
        // The object is as wanted; only fabrik's record of it may need a change: `protect`
        // and the dependencies, which must be right for a destroy that runs without the spec,
        // and outputs derived from secrets that an earlier fabrik recorded in plain.
        let plain_secrets = prior
            .outputs
            .iter()
            .any(|(k, v)| sensitive.contains(k) && !crate::secrets::is_masked(v));
        if plain_secrets {
            change.action = Action::Update;
            change.state_only = true;
        }
        if prior.protect != resource.protect {
            change.attributes.push(AttributeChange {
                name: "protect".to_string(),
                before: Some(Value::Bool(prior.protect)),
                after: Some(Value::Bool(resource.protect)),
                after_unknown: false,
                force_new: false,
            });
        }
        if let Some(dependencies) = dependencies_change(&prior.dependencies, &change.depends_on) {
            change.attributes.push(dependencies);
        }
        if !change.attributes.is_empty() {
            change.action = Action::Update;
            change.state_only = true;
        }
        if plain_secrets {
            change.reason =
                Some("outputs derived from secrets are in the state in plain text".to_string());
        }
        return Some(change);
    }

    change.attributes = attribute_changes(ty, &before, inputs);
    if change.attributes.is_empty() {
        return Some(change);
    }
    if drifted {
        change.reason = Some("changed outside fabrik".to_string());
        change.drifted = true;
    }
    if change.attributes.iter().any(|a| a.force_new) {
        change.action = Action::Replace;
        change.replace_order = Some(match ty.replace {
            ReplaceStrategy::CreateBeforeDestroy => ReplaceOrder::CreateBeforeDestroy,
            ReplaceStrategy::DestroyBeforeCreate => ReplaceOrder::DestroyBeforeCreate,
        });
    } else {
        change.action = Action::Update;
    }
    Some(change)
}

/// The change of a resource's recorded dependencies, if the spec's differ (order aside).
fn dependencies_change(recorded: &[String], wanted: &[String]) -> Option<AttributeChange> {
    let before: BTreeSet<&String> = recorded.iter().collect();
    let after: BTreeSet<&String> = wanted.iter().collect();
    (before != after).then(|| AttributeChange {
        name: "depends_on".to_string(),
        before: Some(Value::from(recorded.to_vec())),
        after: Some(Value::from(wanted.to_vec())),
        after_unknown: false,
        force_new: false,
    })
}

/// The attributes that differ between `before` and `after`, in field order of the type.
fn attribute_changes(
    ty: &fabrik_provider::ResourceType,
    before: &fabrik_provider::Attributes,
    after: &Inputs,
) -> Vec<AttributeChange> {
    let mut names: Vec<&str> = ty.fields.iter().map(|f| f.name).collect();
    for key in before.keys().chain(after.keys()) {
        if !names.contains(&key.as_str()) {
            names.push(key);
        }
    }
    names
        .into_iter()
        .filter_map(|name| {
            let old = before.get(name);
            let new = after.get(name);
            let (after_value, unknown) = match new {
                Some(Some(v)) => (Some(v.clone()), false),
                Some(None) => (None, true),
                None => (None, false),
            };
            if !unknown && old == after_value.as_ref() {
                return None;
            }
            let force_new = ty.field(name).is_some_and(|f| f.force_new) && old.is_some();
            Some(AttributeChange {
                name: name.to_string(),
                before: old.cloned(),
                after: after_value,
                after_unknown: unknown,
                force_new,
            })
        })
        .collect()
}

/// Deletes for resources in the state that `gone` says are no longer wanted (restricted to
/// `targets` when given), plus replaced objects still waiting for their delete. Ordered so that
/// whatever depends on a resource goes before it.
fn deletes(state: &State, targets: &[String], gone: impl Fn(&str) -> bool) -> Vec<Change> {
    let wanted = |name: &str| targets.is_empty() || targets.iter().any(|t| t == name);
    let doomed: BTreeSet<&str> = state
        .resources
        .keys()
        .map(String::as_str)
        .filter(|n| wanted(n) && gone(n))
        .collect();
    // Kahn's algorithm on the reversed edges: a resource is ready once nothing doomed that
    // depends on it is left. Ties go by name, so the order is stable.
    let mut blockers: BTreeMap<&str, usize> = doomed.iter().map(|n| (*n, 0)).collect();
    for name in &doomed {
        for dep in &state.resources[*name].dependencies {
            if let Some(count) = blockers.get_mut(dep.as_str())
                && dep != name
            {
                *count += 1;
            }
        }
    }
    let mut ready: BTreeSet<&str> = blockers
        .iter()
        .filter(|(_, c)| **c == 0)
        .map(|(n, _)| *n)
        .collect();
    let mut order = Vec::with_capacity(doomed.len());
    while let Some(name) = ready.pop_first() {
        order.push(name);
        for dep in &state.resources[name].dependencies {
            if let Some(count) = blockers.get_mut(dep.as_str())
                && dep != name
            {
                *count -= 1;
                if *count == 0 {
                    ready.insert(dep.as_str());
                }
            }
        }
    }
    // A cycle cannot be recorded by fabrik, but a hand-edited state must not stall destroy.
    let placed: BTreeSet<&str> = order.iter().copied().collect();
    order.extend(doomed.iter().copied().filter(|n| !placed.contains(n)));
    let mut out = Vec::with_capacity(order.len());
    {
        for name in order {
            let r = &state.resources[name];
            out.push(Change {
                attributes: r
                    .inputs
                    .iter()
                    .map(|(k, v)| AttributeChange {
                        name: k.clone(),
                        before: Some(v.clone()),
                        after: None,
                        after_unknown: false,
                        force_new: false,
                    })
                    .collect(),
                depends_on: r.dependencies.clone(),
                ..Change::new(name, &r.type_name, Action::Delete)
            });
        }
    }
    for (name, r) in &state.resources {
        if !wanted(name) {
            continue;
        }
        for old in &r.deposed {
            out.push(Change {
                reason: Some("replaced earlier; its delete did not complete".to_string()),
                ..Change::delete_deposed(name, &old.type_name, &old.id)
            });
        }
    }
    out
}

fn summarize(changes: &[Change]) -> Summary {
    let mut s = Summary::default();
    for c in changes {
        match c.action {
            Action::Create => s.add += 1,
            Action::Update => s.change += 1,
            Action::Replace => {
                s.add += 1;
                s.destroy += 1;
            }
            Action::Delete => s.destroy += 1,
            Action::Adopt => s.adopt += 1,
            Action::NoOp => {}
        }
    }
    s
}

//! Plans: what an apply would do, resource by resource, computed by comparing the spec's resolved
//! inputs (by spec hash) with the state and, when it refreshes (the default), with what is
//! really there.
//!
//! A plan is plain data: it renders as text, serializes as JSON (`--json`, saved plans) and is
//! what the executor carries out. This file holds its types and [`plan`], which plans the
//! resources level by level ([`resource`], [`diff`]), adds the deletes ([`destroy`]) and checks
//! the places ([`places`]). The spec's moves ([`moved`]) are made on the state it plans against.

use std::collections::{BTreeMap, BTreeSet};

use fabrik_provider::{Observed, Value};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::graph::Graph;
use crate::hash;
use crate::registry::Registry;
use crate::resolve::Inputs;
use crate::secrets::Secrets;
use crate::source::Diagnostics;
use crate::spec::Spec;
use crate::state::State;

mod destroy;
mod diff;
pub mod elements;
mod hidden;
pub mod ignored;
pub mod moved;
pub mod outputs;
pub mod pauses;
mod places;
pub mod precheck;
mod resource;
pub mod saved;
mod select;

pub use destroy::{destroy_plan, refuse_protected};
pub use hidden::{hidden_outputs_referred_to, unreadable_hidden_outputs};
pub use outputs::OutputChange;
pub use pauses::Pause;
pub use resource::desired_inputs;

use destroy::deletes;
use hidden::real_outputs;
use resource::{Planned, plan_one, runs_gates, shown_gates, written_gates};
use select::select;

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
    /// The gates that run once the change is made, one line each as the plan shows them
    /// (`verify::planned`); none for a delete or a change to fabrik's record alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<String>,
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
            gates: Vec::new(),
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
    /// Resources renamed in the state ([`Plan::moves`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub moved: usize,
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
    /// The values the spec's variables had (sensitive ones by their keyed hash): a saved plan
    /// applies only with the same ones.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub vars: BTreeMap<String, Value>,
    /// Resources renamed in the state before anything else (`moved:`); their objects stay as
    /// they are, and `changes` name them by their new names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<moved::Moved>,
    /// Creates, updates and replacements in apply order, then deletes in delete order; no-ops
    /// are listed too, so the plan accounts for every resource.
    pub changes: Vec<Change>,
    /// The stack outputs an apply adds, changes or removes, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputChange>,
    /// Objects paused while the changes they watch run ([`pauses`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pauses: Vec<Pause>,
    /// The stack's own gates (`verify:` at the top of the spec), one line each: they run once
    /// every change is made, when the plan changes some object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<String>,
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
    /// In the provider's normal form, secrets in: what is sent.
    pub inputs: fabrik_provider::Attributes,
    /// Their spec hash, as the state records it (secrets by their keyed hash).
    pub spec_hash: String,
    /// What the state records instead of `inputs` (secrets in), where they differ: an update
    /// sends ignored fields as the refresh read them, and the state keeps their record
    /// ([`ignored::as_read`]).
    pub recorded: Option<fabrik_provider::Attributes>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Plan {
    /// Whether applying it would call any provider or record a changed output (adoptions are
    /// recorded before planning).
    pub fn has_changes(&self) -> bool {
        !self.moves.is_empty()
            || !self.outputs.is_empty()
            || self
                .changes
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
    let problems = places::check(input, &planned, &mut changes);
    if !problems.is_empty() {
        return Err(Error::Spec(Diagnostics {
            source: spec.source.clone(),
            items: problems,
        }));
    }
    let summary = summarize(&changes);
    let pauses = pauses::pauses(input, &changes);
    let stack_gates = written_gates(input, &planned, &spec.verify);
    // They run once some object changed: not after deletes or record-only changes alone.
    let shown_stack_gates = if changes.iter().any(|c| runs_gates(c) && !c.reverify) {
        shown_gates(&spec.verify, &stack_gates)
    } else {
        Vec::new()
    };
    let (output_changes, bound_outputs) = outputs::planned(input, &planned);
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
            let sent = (c.action == Action::Update)
                .then(|| {
                    ignored::as_read(&spec.resources[i], observed, &known, &input.sensitive[i])
                })
                .flatten();
            let resolved = match sent {
                Some(sent) => Resolved {
                    inputs: sent,
                    spec_hash: std::mem::take(&mut hashes[i]),
                    recorded: Some(known),
                },
                None => Resolved {
                    inputs: known,
                    spec_hash: std::mem::take(&mut hashes[i]),
                    recorded: None,
                },
            };
            Some((c.name.clone(), resolved))
        })
        .collect();
    let spec_hash = hash::hash_of(&CanonicalSpec {
        stack: &spec.stack,
        providers: spec
            .providers
            .iter()
            .map(|p| (p.name.as_str(), crate::clients::hashed(spec, secrets, p)))
            .collect(),
        gates: stack_gates,
        resources: resource_digests.finalize().to_hex().to_string(),
        moved: spec
            .moved
            .iter()
            .map(|m| (m.from.as_str(), m.to.as_str()))
            .collect(),
        outputs: bound_outputs,
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
        vars: spec
            .vars
            .iter()
            .filter_map(|d| {
                let value = spec.var_values.get(&d.name)?;
                let kept = if d.sensitive {
                    Value::String(secrets.mask(value))
                } else {
                    value.clone()
                };
                Some((d.name.clone(), kept))
            })
            .collect(),
        moves: Vec::new(),
        changes,
        outputs: output_changes,
        pauses,
        gates: shown_stack_gates,
        summary,
        resolved,
        partial,
        real_outputs: real_outputs(state, input.read, secrets),
    })
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
    /// The `moved:` entries, `(from, to)`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    moved: Vec<(&'a str, &'a str)>,
    /// Each stack output as written with what is known put in (secrets by their keyed hash),
    /// and whether it is sensitive.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    outputs: BTreeMap<String, (Value, bool)>,
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

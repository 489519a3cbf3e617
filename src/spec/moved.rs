//! The `moved:` block: a resource renamed in the spec keeps its object. Each entry says which
//! address the state knows it by (`from`) and which the spec now gives it (`to`); the plan then
//! renames the state's entry instead of deleting one object and creating another. The entries
//! may stay in the spec for good: once the state holds `to`, an entry is a no-op.
//!
//! Read here with the rest of the spec, and checked against the spec's own resources
//! ([`problems`]); what needs the state (where `from` and `to` are recorded) is checked when
//! a plan is made (`src/plan/moved.rs`).

use std::collections::HashMap;

use super::address::Address;
use super::load::Loader;
use super::{Move, Spec};
use crate::source::Diagnostic;
use crate::yaml::{Node, Value};

const KEYS: [&str; 2] = ["from", "to"];

impl Spec {
    /// The problems of the `moved:` entries against the resources as they are now: once the
    /// instances of a `for_each` are made, a move to or from one of them is judged by its key.
    pub fn moved_problems(&self) -> Vec<Diagnostic> {
        problems(self)
    }

    /// Whether `address` names one object of the spec: a resource without `for_each`, or an
    /// instance `NAME[KEY]` of one with it; `None` while that depends on keys not known yet (a
    /// `for_each` from a variable without a value). A resource with `for_each` named without a
    /// key is no one object: a move from `web` to `web[a]` turns a resource into an instance.
    fn holds_one_object(&self, address: &str) -> Option<bool> {
        if let Some(resource) = self.resource(address) {
            return Some(resource.for_each.is_none());
        }
        if self.declares_unreadable(address) {
            return Some(true);
        }
        let Some((base, _)) = crate::template::split_address(address) else {
            return Some(false);
        };
        match self.resource(base) {
            // Its keys are not known yet.
            Some(resource) if resource.for_each.is_some() => None,
            _ => Some(false),
        }
    }
}

impl Loader {
    /// The `moved:` list, each entry's addresses checked for shape.
    pub(super) fn moved(&mut self, node: Node) -> Vec<Move> {
        let items = match node.value {
            Value::Seq(items) => items,
            Value::Null => return Vec::new(),
            other => {
                self.problem(
                    Diagnostic::new(
                        node.loc,
                        format!("`moved` must be a list, not {}", other.kind()),
                    )
                    .help("write each rename as a list item: `- { from: old, to: new }`"),
                );
                return Vec::new();
            }
        };
        items
            .into_iter()
            .filter_map(|item| self.one_move(item))
            .collect()
    }

    fn one_move(&mut self, node: Node) -> Option<Move> {
        let loc = node.loc;
        let Value::Map(entries) = node.value else {
            self.problem(
                Diagnostic::new(
                    loc,
                    format!("a `moved` entry must be a map, not {}", node.value.kind()),
                )
                .help("write it as `- { from: old, to: new }`"),
            );
            return None;
        };
        let entries = self.unique(entries, "key");
        let (mut from, mut to) = (None, None);
        // Written, even if not as an address (that is reported on its own).
        let mut written = [false, false];
        for (key, value) in entries {
            let slot = match key.name.as_str() {
                "from" => {
                    written[0] = true;
                    &mut from
                }
                "to" => {
                    written[1] = true;
                    &mut to
                }
                other => {
                    self.problem(
                        Diagnostic::new(
                            key.loc,
                            format!("unknown key `{other}` in a `moved` entry"),
                        )
                        .suggest(other, KEYS)
                        .help_if_none("a `moved` entry has `from` and `to`"),
                    );
                    continue;
                }
            };
            let address = match value.value {
                Value::Str(text) => {
                    Address::parse(&text).map_err(|why| Diagnostic::new(value.loc, why))
                }
                other => Err(Diagnostic::new(
                    value.loc,
                    format!(
                        "`{}` must be an address such as `web` or `web[key]`, not {}",
                        key.name,
                        other.kind()
                    ),
                )),
            };
            match address {
                Ok(address) => *slot = Some((address.to_string(), value.loc)),
                Err(d) => self.problem(d),
            }
        }
        let missing: Vec<&str> = KEYS
            .into_iter()
            .zip(written)
            .filter(|(_, written)| !written)
            .map(|(key, _)| key)
            .collect();
        if !missing.is_empty() {
            self.problem(
                Diagnostic::new(
                    loc,
                    format!("a `moved` entry needs `{}`", missing.join("` and `")),
                )
                .help("write it as `- { from: old, to: new }`"),
            );
        }
        let ((from, from_loc), (to, to_loc)) = (from?, to?);
        Some(Move {
            from,
            from_loc,
            to,
            to_loc,
        })
    }
}

/// What is wrong with the spec's moves by the spec alone: a `to` that is no resource of the
/// spec, a `from` that still is one, an address moved from twice or to twice, a move to itself,
/// and chains (`a → b`, `b → c`) or cycles (`a → b`, `b → a`), which are not followed: each
/// entry names where the state has the resource and where the spec has it now.
pub(super) fn problems(spec: &Spec) -> Vec<Diagnostic> {
    if spec.moved.is_empty() {
        return Vec::new();
    }
    let mut problems = Vec::new();
    // Where each address is first moved to, for chains.
    let mut moved_to: HashMap<&str, u32> = HashMap::new();
    for m in &spec.moved {
        moved_to.entry(&m.to).or_insert(m.to_loc.line);
    }
    let mut froms: HashMap<&str, u32> = HashMap::new();
    let mut tos: HashMap<&str, u32> = HashMap::new();
    let names: Vec<&str> = spec.resources.iter().map(|r| r.name.as_str()).collect();
    // One problem per entry: the first that applies.
    for m in &spec.moved {
        let first_from = froms.insert(&m.from, m.from_loc.line);
        let first_to = tos.insert(&m.to, m.to_loc.line);
        let problem = if m.from == m.to {
            Diagnostic::new(m.to_loc, format!("`{}` is moved to itself", m.to))
                .help("remove the entry")
        } else if let Some(line) = first_from {
            Diagnostic::new(m.from_loc, format!("`{}` is moved twice", m.from))
                .help(format!("it is first moved on line {line}; keep one entry"))
        } else if let Some(line) = first_to {
            Diagnostic::new(m.to_loc, format!("two entries move to `{}`", m.to)).help(format!(
                "the first is on line {line}; one address holds one object"
            ))
        } else if let Some(line) = moved_to.get(m.from.as_str()) {
            Diagnostic::new(
                m.from_loc,
                format!(
                    "`{}` is moved from here and moved to on line {line}: chains and cycles of moves are not followed",
                    m.from
                ),
            )
            .help("move each resource in one entry, from the address the state knows to the one the spec uses now")
        } else if spec.holds_one_object(&m.to) == Some(false) {
            Diagnostic::new(
                m.to_loc,
                format!("`{}` is not a resource of the spec", m.to),
            )
            .suggest(&m.to, names.iter().copied())
            .help_if_none("`to` names the resource as the spec calls it now")
        } else if spec.holds_one_object(&m.from) == Some(true) {
            Diagnostic::new(
                m.from_loc,
                format!(
                    "`{}` is still a resource of the spec: it cannot be moved away",
                    m.from
                ),
            )
            .help(format!(
                "rename the resource to `{}` in `resources:`, or remove this entry",
                m.to
            ))
        } else {
            continue;
        };
        problems.push(problem);
    }
    problems
}

//! A list-valued attribute's change, one element a line (`crate::plan::elements`): what goes
//! in red, what comes in green, what stays plain, a long run of what stays by its count, and a
//! map that changes in place by its fields. A secret is shown as `(sensitive)` wherever it sits.

use std::fmt::Write;

use fabrik_provider::Value;
use serde_json::Map;

use super::{Painter, value};
use crate::plan::elements::{Element, list_diff};

/// Where an element's line starts, and where a changed map's fields start.
const ELEMENT: &str = "        ";
const FIELD: &str = "              ";

impl Painter {
    /// `~ name:` and the lines of its elements.
    pub(super) fn list_change(
        &self,
        out: &mut String,
        name: &str,
        force: &str,
        before: &[Value],
        after: &[Value],
    ) {
        let _ = writeln!(out, "      {} {name}:{force}", self.yellow("~"));
        for element in list_diff(before, after) {
            let line = match element {
                Element::Kept(v) => format!("    {}", shown(v)),
                Element::Removed(v) => self.red(&format!("  - {}", shown(v))),
                Element::Added(v) => self.green(&format!("  + {}", shown(v))),
                Element::Unchanged(n) => self.dim(&format!("    … {n} unchanged")),
                Element::Changed { before, after } => {
                    let _ = writeln!(out, "{ELEMENT}  {} {{", self.yellow("~"));
                    self.map_change(out, before, after);
                    "    }".to_string()
                }
            };
            let _ = writeln!(out, "{ELEMENT}{line}");
        }
    }

    /// The fields of a map in a list that differ, after its identity if it has one.
    fn map_change(
        &self,
        out: &mut String,
        before: &Map<String, Value>,
        after: &Map<String, Value>,
    ) {
        let mut names: Vec<&String> = after.keys().collect();
        names.extend(before.keys().filter(|k| !after.contains_key(*k)));
        let identity = ["name", "key", "id"]
            .into_iter()
            .find(|k| before.get(*k).is_some_and(|v| after.get(*k) == Some(v)));
        let changed: Vec<&String> = names
            .iter()
            .copied()
            .filter(|k| before.get(*k) != after.get(*k))
            .collect();
        let width = changed
            .iter()
            .map(|k| k.len())
            .chain(identity.map(str::len))
            .max()
            .unwrap_or(0);
        let pad = |k: &str| " ".repeat(width - k.len());
        if let Some(id) = identity {
            let _ = writeln!(out, "{FIELD}  {id}{} = {}", pad(id), shown(&after[id]));
        }
        for k in &changed {
            let line = match (before.get(*k), after.get(*k)) {
                (Some(a), Some(b)) if masked(a) || masked(b) => format!(
                    "{} {k}{}: (sensitive value changed)",
                    self.yellow("~"),
                    pad(k)
                ),
                (Some(a), Some(b)) => format!(
                    "{} {k}{} = {} → {}",
                    self.yellow("~"),
                    pad(k),
                    shown(a),
                    shown(b)
                ),
                (None, Some(b)) => format!("{} {k}{} = {}", self.green("+"), pad(k), shown(b)),
                (Some(a), None) => format!("{} {k}{} = {}", self.red("-"), pad(k), shown(a)),
                (None, None) => continue,
            };
            let _ = writeln!(out, "{FIELD}{line}");
        }
        let kept = names.len() - changed.len() - usize::from(identity.is_some());
        if kept > 0 {
            let fields = if kept == 1 { "field" } else { "fields" };
            let _ = writeln!(
                out,
                "{FIELD}  {}",
                self.dim(&format!("… {kept} unchanged {fields}"))
            );
        }
    }
}

fn masked(v: &Value) -> bool {
    crate::secrets::is_masked(v)
}

/// A value as plan output writes it, every secret in it (however deep) as `(sensitive)`.
fn shown(v: &Value) -> String {
    if masked(v) {
        return "(sensitive)".to_string();
    }
    let mut v = v.clone();
    hide(&mut v);
    value(&v)
}

fn hide(v: &mut Value) {
    match v {
        Value::String(_) if masked(v) => *v = Value::String("(sensitive)".to_string()),
        Value::Array(items) => items.iter_mut().for_each(hide),
        Value::Object(map) => map.values_mut().for_each(hide),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::plan::AttributeChange;
    use crate::render::Painter;

    fn shown(before: Value, after: Value) -> String {
        let attr = AttributeChange {
            name: "rules".to_string(),
            before: Some(before),
            after: Some(after),
            after_unknown: false,
            force_new: false,
        };
        let mut out = String::new();
        Painter::plain().attribute(&mut out, &attr, 5);
        out
    }

    use super::Value;

    const HASH: &str = "(sensitive) blake3:0123456789abcdef";

    #[test]
    fn a_list_of_maps_changes_by_field_and_by_element() {
        let before = json!([
            {"name": "web", "port": 80, "tls": false},
            {"name": "api", "port": 8000},
            {"name": "old", "port": 1}
        ]);
        let after = json!([
            {"name": "web", "port": 8080, "tls": false, "path": "/"},
            {"name": "api", "port": 8000},
            {"name": "new", "port": 2}
        ]);
        insta::assert_snapshot!(shown(before, after), @r#"
        ~ rules:
            ~ {
                  name = "web"
                + path = "/"
                ~ port = 80 → 8080
                  … 1 unchanged field
              }
              {"name":"api","port":8000}
            - {"name":"old","port":1}
            + {"name":"new","port":2}
        "#);
    }

    #[test]
    fn maps_without_identity_compare_at_their_place() {
        let before = json!([{"port": 80}, {"port": 443}]);
        let after = json!([{"port": 80}, {"port": 8443, "tls": true}]);
        insta::assert_snapshot!(shown(before, after), @r#"
        ~ rules:
              {"port":80}
            ~ {
                ~ port = 443 → 8443
                + tls  = true
              }
        "#);
    }

    #[test]
    fn secrets_stay_hidden_element_by_element() {
        let before = json!([HASH, "plain", {"name": "db", "password": HASH, "user": "app"}]);
        let after = json!([
            "(sensitive) blake3:fedcba9876543210",
            "plain",
            {"name": "db", "password": "(sensitive) blake3:fedcba9876543210", "user": "app"},
            {"token": HASH}
        ]);
        let out = shown(before, after);
        assert!(!out.contains("blake3"), "{out}");
        insta::assert_snapshot!(out, @r#"
        ~ rules:
            - (sensitive)
            + (sensitive)
              "plain"
            ~ {
                  name     = "db"
                ~ password: (sensitive value changed)
                  … 1 unchanged field
              }
            + {"token":"(sensitive)"}
        "#);
    }
}

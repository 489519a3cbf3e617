//! The `outputs:` block: the values a stack hands to whoever uses it (a URL, a port, a
//! connection string), worked out from the resources once an apply succeeds and kept in the
//! state, so that `fabrik output NAME` gives them to people and scripts (see `src/plan/outputs.rs`).

use super::load::Loader;
use super::{OutputDecl, valid_name};
use crate::source::{Diagnostic, closest};
use crate::template::RESERVED_NAMES;
use crate::yaml::{Key, Node, Value};

const OUTPUT_KEYS: [&str; 3] = ["value", "description", "sensitive"];

impl Loader {
    pub(super) fn outputs(&mut self, node: Node) -> Vec<OutputDecl> {
        let entries = self.map(node, "`outputs`");
        let entries = self.unique(entries, "output");
        entries
            .into_iter()
            .filter_map(|(key, node)| self.output(key, node))
            .collect()
    }

    fn output(&mut self, key: Key, node: Node) -> Option<OutputDecl> {
        let mut readable = true;
        if RESERVED_NAMES.contains(&key.name.as_str()) || !valid_name(&key.name) {
            self.problem(
                Diagnostic::new(key.loc, format!("invalid output name `{}`", key.name))
                    .help("an output name starts with a letter or digit and holds letters, digits, `_` and `-`"),
            );
            readable = false;
        }
        let what = format!("output `{}`", key.name);
        if !matches!(node.value, Value::Map(_)) {
            self.problem(
                Diagnostic::new(
                    node.loc,
                    format!("{what} must be a map, not {}", node.value.kind()),
                )
                .help("write it as `NAME: { value: \"${resource.attribute}\" }`"),
            );
            return None;
        }
        let entries = self.map(node, &what);
        let entries = self.unique(entries, "key");
        let mut value = None;
        let mut description = None;
        let mut sensitive = false;
        // A misspelt `value` is reported as such, not as missing as well.
        let mut misspelt = false;
        for (k, v) in entries {
            match (k.name.as_str(), v.value) {
                ("value", value_node) => {
                    value = Some(self.expr(Node {
                        value: value_node,
                        loc: v.loc,
                    }));
                }
                ("description", Value::Str(d)) => description = Some(d),
                ("sensitive", Value::Bool(b)) => sensitive = b,
                (name @ ("description" | "sensitive"), other) => {
                    let expected = if name == "sensitive" {
                        "true or false"
                    } else {
                        "a string"
                    };
                    self.problem(Diagnostic::new(
                        v.loc,
                        format!(
                            "`{name}` of {what} must be {expected}, not {}",
                            other.kind()
                        ),
                    ));
                }
                (other, _) => {
                    misspelt |= closest(other, OUTPUT_KEYS) == Some("value");
                    self.problem(
                        Diagnostic::new(k.loc, format!("unknown key `{other}` in {what}"))
                            .suggest(other, OUTPUT_KEYS)
                            .help_if_none("an output takes `value`, `description` and `sensitive`"),
                    );
                }
            }
        }
        let Some(value) = value else {
            if misspelt {
                return None;
            }
            self.problem(
                Diagnostic::new(key.loc, format!("{what} has no `value`"))
                    .help("add `value:`, such as `value: \"${web.url}\"`"),
            );
            return None;
        };
        readable.then_some(OutputDecl {
            name: key.name,
            loc: key.loc,
            value,
            description,
            sensitive,
        })
    }
}

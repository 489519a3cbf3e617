//! Walking a spec's YAML tree into a [`Spec`]: every problem is reported with its location and
//! the walk goes on, so one run reports them all.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::{BackendBlock, Expr, ExprKind, ProviderBlock, Resource, Spec, valid_name};
use crate::error::Error;
use crate::source::{Diagnostic, Diagnostics, Loc, SourceFile, closest};
use crate::template::{self, Part, RESERVED_NAMES};
use crate::yaml::{Key, Node, Value};

pub(crate) const TOP_LEVEL_KEYS: [&str; 9] = [
    "stack",
    "backend",
    "providers",
    "secrets",
    "vars",
    "resources",
    "verify",
    "moved",
    "outputs",
];
/// What fabrik calls a key that Terraform or OpenTofu spell otherwise, too far from it for
/// "did you mean" to find: someone coming from there writes these first.
fn from_other_tools(key: &str) -> Option<&'static str> {
    Some(match key {
        "variables" | "variable" => "variables are declared under `vars:`",
        "count" => "repeat a resource with `for_each: [a, b]`, one instance per key",
        "lifecycle" => "write `ignore_changes:` and `protect:` on the resource itself",
        _ => return None,
    })
}

pub(crate) const RESOURCE_KEYS: [&str; 9] = [
    "type",
    "for_each",
    "with",
    "depends_on",
    "protect",
    "on_failure",
    "verify",
    "adopt",
    "ignore_changes",
];

#[derive(Default)]
pub(super) struct Loader {
    pub(super) problems: Vec<Diagnostic>,
    /// Resources whose entry could not be read into a [`Resource`].
    unreadable: HashSet<String>,
    /// The file read, for pointing inside a string at what is wrong there.
    source: Option<Arc<SourceFile>>,
}

impl Loader {
    pub(super) fn of(source: &Arc<SourceFile>) -> Self {
        Self {
            source: Some(source.clone()),
            ..Self::default()
        }
    }

    pub(super) fn problem(&mut self, d: Diagnostic) {
        self.problems.push(d);
    }

    /// Every problem found, in file order.
    pub(super) fn failure(mut self, source: Arc<SourceFile>) -> Error {
        self.problems.sort_by_key(|d| (d.loc.line, d.loc.column));
        Error::Spec(Diagnostics {
            source,
            items: self.problems,
        })
    }

    /// The stack (`named`, else the spec's) and backend of a spec, the other keys unread.
    pub(super) fn header(
        &mut self,
        root: Node,
        named: Option<&str>,
    ) -> Option<(String, Option<BackendBlock>)> {
        let Value::Map(entries) = root.value else {
            self.problem(
                Diagnostic::new(root.loc, "the spec must be a map")
                    .help("a spec is a map with `stack`, `providers` and `resources`"),
            );
            return None;
        };
        let entries = entries
            .into_iter()
            .filter(|(key, _)| key.name == "backend" || (key.name == "stack" && named.is_none()))
            .collect();
        let mut stack = named.map(str::to_string);
        let mut backend = None;
        for (key, node) in self.unique(entries, "top-level key") {
            if key.name == "stack" {
                stack = self.stack_name(node);
            } else {
                backend = self.backend(key.loc, node);
            }
        }
        if stack.is_none() && self.problems.is_empty() {
            self.problem(
                Diagnostic::new(Loc::new(1, 1, 1), "the spec has no `stack`")
                    .help("add `stack: NAME`, or name the stack with --stack"),
            );
        }
        Some((stack?, backend))
    }

    /// The spec as far as it can be read; `None` only when the document is not a map.
    pub(super) fn spec(&mut self, root: Node, source: Arc<SourceFile>) -> Option<Spec> {
        let entries = match root.value {
            Value::Map(entries) => entries,
            Value::Null => {
                self.problem(
                    Diagnostic::new(Loc::new(1, 1, 1), "the spec is empty")
                        .help("a spec needs at least `stack: NAME` and a `resources:` map"),
                );
                return None;
            }
            other => {
                self.problem(
                    Diagnostic::new(
                        root.loc,
                        format!("the spec must be a map, not {}", other.kind()),
                    )
                    .help("a spec is a map with `stack`, `providers` and `resources`"),
                );
                return None;
            }
        };
        let entries = self.unique(entries, "top-level key");
        let mut stack = None;
        let mut stack_written = false;
        let mut providers = Vec::new();
        let mut resources = Vec::new();
        let mut verify = Vec::new();
        let mut secrets = Vec::new();
        let mut vars = Vec::new();
        let mut outputs = Vec::new();
        let mut backend = None;
        let mut moved = Vec::new();
        for (key, node) in entries {
            match key.name.as_str() {
                "secrets" => secrets = self.secrets(node),
                "moved" => moved = self.moved(node),
                "vars" => vars = self.vars(node),
                "outputs" => outputs = self.outputs(node),
                "backend" => backend = self.backend(key.loc, node),
                "stack" => {
                    stack_written = true;
                    stack = self.stack_name(node);
                }
                "providers" => providers = self.providers(node),
                "resources" => resources = self.resources(node),
                "verify" => verify = self.gates(node),
                other => self.problem(
                    Diagnostic::new(key.loc, format!("unknown top-level key `{other}`"))
                        .suggest(other, TOP_LEVEL_KEYS)
                        .help_if_absent(from_other_tools(other)),
                ),
            }
        }
        if !stack_written {
            self.problem(
                Diagnostic::new(Loc::new(1, 1, 1), "the spec has no `stack`")
                    .help("add `stack: NAME`; the stack names the state"),
            );
        }
        // A stack name that is missing or wrong is reported; the rest is still checked.
        let stack = stack.unwrap_or_default();
        let index = resources
            .iter()
            .enumerate()
            .map(|(i, r): (usize, &Resource)| (r.name.clone(), i))
            .collect();
        let spec = Spec {
            source,
            stack,
            providers,
            resources,
            verify,
            secrets,
            backend,
            vars,
            var_values: std::collections::BTreeMap::new(),
            expanded: std::collections::BTreeMap::new(),
            moved,
            outputs,
            index,
            unreadable: std::mem::take(&mut self.unreadable),
        };
        self.problems.extend(super::moved::problems(&spec));
        Some(spec)
    }

    /// Drops repeated keys, reporting each with where it was first written.
    pub(super) fn unique(&mut self, entries: Vec<(Key, Node)>, what: &str) -> Vec<(Key, Node)> {
        // Borrowed names, so the common case (no duplicate) copies nothing.
        let mut first: HashMap<&str, u32> = HashMap::with_capacity(entries.len());
        let mut repeated = Vec::new();
        for (i, (key, _)) in entries.iter().enumerate() {
            match first.entry(key.name.as_str()) {
                std::collections::hash_map::Entry::Occupied(line) => {
                    repeated.push((i, *line.get()));
                }
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(key.loc.line);
                }
            }
        }
        drop(first);
        if repeated.is_empty() {
            return entries;
        }
        let mut out = Vec::with_capacity(entries.len());
        let mut repeated = repeated.into_iter().peekable();
        for (i, (key, node)) in entries.into_iter().enumerate() {
            if let Some(&(_, line)) = repeated.peek().filter(|(at, _)| *at == i) {
                repeated.next();
                self.problem(
                    Diagnostic::new(key.loc, format!("duplicate {what} `{}`", key.name))
                        .help(format!("`{}` is first defined on line {line}", key.name)),
                );
                continue;
            }
            out.push((key, node));
        }
        out
    }

    fn stack_name(&mut self, node: Node) -> Option<String> {
        match node.value {
            Value::Str(s) if valid_name(&s) => Some(s),
            Value::Str(s) => {
                self.problem(
                    Diagnostic::new(node.loc, format!("invalid stack name `{s}`"))
                        .help("a stack name starts with a letter or digit and holds letters, digits, `_` and `-`"),
                );
                None
            }
            other => {
                self.problem(Diagnostic::new(
                    node.loc,
                    format!("the stack name must be a string, not {}", other.kind()),
                ));
                None
            }
        }
    }

    pub(super) fn map(&mut self, node: Node, what: &str) -> Vec<(Key, Node)> {
        match node.value {
            Value::Map(entries) => entries,
            Value::Null => Vec::new(),
            other => {
                self.problem(Diagnostic::new(
                    node.loc,
                    format!("{what} must be a map, not {}", other.kind()),
                ));
                Vec::new()
            }
        }
    }

    fn providers(&mut self, node: Node) -> Vec<ProviderBlock> {
        let entries = self.map(node, "`providers`");
        let entries = self.unique(entries, "provider");
        entries
            .into_iter()
            .map(|(key, node)| {
                let config = self.map(
                    node,
                    &format!("the configuration of provider `{}`", key.name),
                );
                let config = self.exprs(config, "field");
                ProviderBlock {
                    name: key.name,
                    loc: key.loc,
                    config,
                }
            })
            .collect()
    }

    fn resources(&mut self, node: Node) -> Vec<Resource> {
        let entries = self.map(node, "`resources`");
        let entries = self.unique(entries, "resource name");
        // Each resource is read on its own: a large map is read on every core, each run with
        // a loader of its own whose problems join this one's.
        let runs = crate::parallel::map_owned_runs(entries, 512, |run| {
            let mut loader = Loader {
                source: self.source.clone(),
                ..Loader::default()
            };
            let resources: Vec<Resource> = run
                .into_iter()
                .filter_map(|(key, node)| loader.resource(key, node))
                .collect();
            (resources, loader)
        });
        let mut resources = Vec::new();
        for (run, loader) in runs {
            resources.extend(run);
            self.problems.extend(loader.problems);
            self.unreadable.extend(loader.unreadable);
        }
        resources
    }

    /// One entry of `resources:`. Its problems are reported and, where a default serves, it
    /// is still read, so that the checks of its fields and references run as well; only an
    /// entry without a usable `type` is left out (and named in `unreadable`).
    fn resource(&mut self, key: Key, node: Node) -> Option<Resource> {
        if RESERVED_NAMES.contains(&key.name.as_str()) {
            self.problem(
                Diagnostic::new(key.loc, format!("`{}` is a reserved name", key.name)).help(
                    format!(
                        "{} are reserved for references; rename the resource",
                        RESERVED_NAMES.map(|n| format!("`{n}`")).join(", ")
                    ),
                ),
            );
        } else if !valid_name(&key.name) {
            self.problem(
                Diagnostic::new(key.loc, format!("invalid resource name `{}`", key.name))
                    .help("a resource name starts with a letter or digit and holds letters, digits, `_` and `-`"),
            );
        }
        // `type` is reported missing only when nothing else explains it: the entry is a map
        // and no key written there is a misspelt `type`.
        let mut type_explained = !matches!(node.value, Value::Map(_) | Value::Null);
        let entries = self.map(node, &format!("resource `{}`", key.name));
        let entries = self.unique(entries, "key");
        let mut type_name = None;
        let mut with = Vec::new();
        let mut depends_on = Vec::new();
        let mut protect = false;
        let mut keep_on_failure = false;
        let mut adopt = false;
        let mut verify = Vec::new();
        let mut ignore_changes = Vec::new();
        let mut for_each = None;
        for (k, v) in entries {
            match k.name.as_str() {
                "type" => match v.value {
                    Value::Str(s) => {
                        type_name = Some((s, Loc::new(v.loc.line, v.loc.column, v.loc.len.max(1))));
                    }
                    other => {
                        self.problem(Diagnostic::new(
                            v.loc,
                            format!(
                                "`type` must be a string such as `local.file`, not {}",
                                other.kind()
                            ),
                        ));
                        type_explained = true;
                    }
                },
                "with" => {
                    let fields = self.map(v, "`with`");
                    with = self.exprs(fields, "field");
                }
                "depends_on" => depends_on = self.names(v, "depends_on", "resource names"),
                // Checked against the type's fields with the rest of the spec (`check`).
                "ignore_changes" => ignore_changes = self.names(v, "ignore_changes", "field names"),
                "protect" => match v.value {
                    Value::Bool(b) => protect = b,
                    other => self.problem(Diagnostic::new(
                        v.loc,
                        format!("`protect` must be true or false, not {}", other.kind()),
                    )),
                },
                "on_failure" => match v.value {
                    Value::Str(s) if s == "keep" || s == "rollback" => {
                        keep_on_failure = s == "keep";
                    }
                    other => {
                        let found = match other {
                            Value::Str(s) => format!("`{s}`"),
                            other => other.kind().to_string(),
                        };
                        self.problem(
                            Diagnostic::new(
                                v.loc,
                                format!("`on_failure` must be `rollback` or `keep`, not {found}"),
                            )
                            .help("`rollback` (the default) undoes this resource's change when the apply fails; `keep` leaves it"),
                        );
                    }
                },
                "verify" => verify = self.gates(v),
                // Its shape is checked with the rest of the spec (`Spec::for_each_problems`).
                "for_each" => for_each = Some(self.expr(v)),
                "adopt" => match v.value {
                    Value::Bool(b) => adopt = b,
                    other => self.problem(Diagnostic::new(
                        v.loc,
                        format!("`adopt` must be true or false, not {}", other.kind()),
                    )),
                },
                other => {
                    type_explained |= closest(other, RESOURCE_KEYS) == Some("type");
                    self.problem(
                        Diagnostic::new(
                            k.loc,
                            format!("unknown key `{other}` in resource `{}`", key.name),
                        )
                        .suggest(other, RESOURCE_KEYS)
                        .help_if_absent(from_other_tools(other)),
                    );
                }
            }
        }
        let Some((type_name, type_loc)) = type_name else {
            if !type_explained {
                self.problem(
                    Diagnostic::new(key.loc, format!("resource `{}` has no `type`", key.name))
                        .help("add a `type:` such as `local.file`"),
                );
            }
            self.unreadable.insert(key.name);
            return None;
        };
        Some(Resource {
            name: key.name,
            loc: key.loc,
            type_name,
            type_loc,
            with,
            depends_on,
            protect,
            keep_on_failure,
            verify,
            adopt,
            ignore_changes,
            for_each,
        })
    }

    /// A `verify:` list; each entry's own shape is checked against the registry of gates later.
    fn gates(&mut self, node: Node) -> Vec<Expr> {
        match node.value {
            Value::Seq(items) => items.into_iter().map(|n| self.expr(n)).collect(),
            Value::Null => Vec::new(),
            other => {
                self.problem(
                    Diagnostic::new(
                        node.loc,
                        format!("`verify` must be a list of gates, not {}", other.kind()),
                    )
                    .help("write each gate as a list item: `- http: \"https://…\"`"),
                );
                Vec::new()
            }
        }
    }

    /// A list of names under `key` (`depends_on`, `ignore_changes`); one name alone is a list
    /// of one.
    fn names(&mut self, node: Node, key: &str, what: &str) -> Vec<(String, Loc)> {
        let items = match node.value {
            Value::Seq(items) => items,
            Value::Str(s) => return vec![(s, node.loc)],
            other => {
                self.problem(Diagnostic::new(
                    node.loc,
                    format!("`{key}` must be a list of {what}, not {}", other.kind()),
                ));
                return Vec::new();
            }
        };
        items
            .into_iter()
            .filter_map(|item| match item.value {
                Value::Str(s) => Some((s, item.loc)),
                other => {
                    self.problem(Diagnostic::new(
                        item.loc,
                        format!("`{key}` lists {what}, not {}", other.kind()),
                    ));
                    None
                }
            })
            .collect()
    }

    pub(super) fn exprs(&mut self, entries: Vec<(Key, Node)>, what: &str) -> Vec<(Key, Expr)> {
        let entries = self.unique(entries, what);
        entries
            .into_iter()
            .map(|(k, v)| {
                let e = self.expr(v);
                (k, e)
            })
            .collect()
    }

    pub(super) fn expr(&mut self, node: Node) -> Expr {
        let kind = match node.value {
            Value::Null => ExprKind::Null,
            Value::Bool(b) => ExprKind::Bool(b),
            Value::Int(i) => ExprKind::Int(i),
            Value::Float(f) => ExprKind::Float(f),
            Value::Str(s) => match template::parse_owned(s) {
                Ok(parts) => ExprKind::Str(parts),
                Err((malformed, s)) => {
                    let loc = match (&self.source, &malformed.spot) {
                        (Some(source), Some(spot)) => source.refine(node.loc, spot),
                        _ => node.loc,
                    };
                    self.problem(Diagnostic::new(loc, malformed.message));
                    ExprKind::Str(vec![Part::Text(s)])
                }
            },
            Value::Seq(items) => ExprKind::List(items.into_iter().map(|n| self.expr(n)).collect()),
            Value::Map(entries) => ExprKind::Map(self.exprs(entries, "key")),
        };
        Expr {
            kind,
            loc: node.loc,
        }
    }
}

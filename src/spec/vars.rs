//! The `vars:` block: values a spec leaves open so that one spec serves several places (a
//! region, a replica count, a token), each declared with a type and maybe a default, and given
//! per run by a vars file, `FABRIK_VAR_<NAME>` or `--var`. The declarations are read with the
//! rest of the spec; [`Spec::resolve_vars`] gives them their values before anything is planned.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;

use super::file::{Document, read_yaml};
use super::load::Loader;
use super::{Spec, VarDecl};
use crate::error::Error;
use crate::source::{Diagnostic, Diagnostics, closest};
use crate::yaml::{Key, Node, Value};

/// The vars file read beside the spec when no `--vars-file` is given.
pub const VARS_FILE: &str = "fabrik.vars.yaml";

/// The environment variable prefix that gives a variable its value.
pub const ENV_PREFIX: &str = "FABRIK_VAR_";

/// What values a variable takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarType {
    String,
    Number,
    Bool,
    List,
    Map,
}

const TYPES: [&str; 5] = ["string", "number", "bool", "list", "map"];

impl VarType {
    fn named(name: &str) -> Option<VarType> {
        Some(match name {
            "string" => VarType::String,
            "number" => VarType::Number,
            "bool" => VarType::Bool,
            "list" => VarType::List,
            "map" => VarType::Map,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            VarType::String => "string",
            VarType::Number => "number",
            VarType::Bool => "bool",
            VarType::List => "list",
            VarType::Map => "map",
        }
    }

    /// Whether a list or map: such a value cannot be written into a longer string.
    pub fn is_collection(self) -> bool {
        matches!(self, VarType::List | VarType::Map)
    }

    /// The value as this type holds it: a string variable takes a number or boolean written
    /// in YAML as its text (`version: 2` for a string), every other type only its own kind.
    pub fn fit(self, value: Json) -> Result<Json, Json> {
        match (self, value) {
            (VarType::String, v @ Json::String(_))
            | (VarType::Number, v @ Json::Number(_))
            | (VarType::Bool, v @ Json::Bool(_))
            | (VarType::List, v @ Json::Array(_))
            | (VarType::Map, v @ Json::Object(_)) => Ok(v),
            (VarType::String, v @ (Json::Number(_) | Json::Bool(_))) => {
                Ok(Json::String(v.to_string()))
            }
            (_, v) => Err(v),
        }
    }

    /// The value of text given on the command line or in the environment: a number or
    /// boolean as written, a list or map as YAML (or JSON) text.
    pub fn parse_text(self, text: &str) -> Option<Json> {
        match self {
            VarType::String => Some(Json::String(text.to_string())),
            VarType::Bool => match text.trim() {
                "true" => Some(Json::Bool(true)),
                "false" => Some(Json::Bool(false)),
                _ => None,
            },
            VarType::Number => {
                let text = text.trim();
                if let Ok(i) = text.parse::<i64>() {
                    return Some(Json::from(i));
                }
                text.parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Json::Number)
            }
            VarType::List | VarType::Map => {
                let node = crate::yaml::parse(text).ok()?;
                self.fit(json_of(node)).ok()
            }
        }
    }
}

/// A YAML node as the value it holds (locations dropped).
fn json_of(node: Node) -> Json {
    match node.value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(b),
        Value::Int(i) => Json::from(i),
        Value::Float(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s),
        Value::Seq(items) => Json::Array(items.into_iter().map(json_of).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .into_iter()
                .map(|(k, v)| (k.name, json_of(v)))
                .collect(),
        ),
    }
}

/// How a value's kind is named in messages.
fn kind_of(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "a map",
    }
}

fn valid_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Loader {
    pub(super) fn vars(&mut self, node: Node) -> Vec<VarDecl> {
        let entries = self.map(node, "`vars`");
        let entries = self.unique(entries, "variable");
        entries
            .into_iter()
            .filter_map(|(key, node)| self.var(key, node))
            .collect()
    }

    fn var(&mut self, key: Key, node: Node) -> Option<VarDecl> {
        if !valid_var_name(&key.name) {
            self.problem(
                Diagnostic::new(key.loc, format!("invalid variable name `{}`", key.name))
                    .help("a variable is named like an environment variable: letters, digits and `_`, not starting with a digit"),
            );
            return None;
        }
        let entries = self.map(node, &format!("variable `{}`", key.name));
        let mut decl = VarDecl {
            name: key.name,
            loc: key.loc,
            ty: VarType::String,
            default: None,
            description: None,
            sensitive: false,
        };
        let mut default = None;
        for (k, v) in entries {
            match (k.name.as_str(), v.value) {
                ("type", Value::Str(t)) => match VarType::named(&t) {
                    Some(ty) => decl.ty = ty,
                    None => self.problem(
                        Diagnostic::new(v.loc, format!("unknown variable type `{t}`"))
                            .suggest(&t, TYPES)
                            .help_if_none(
                                "the types are `string`, `number`, `bool`, `list` and `map`",
                            ),
                    ),
                },
                ("description", Value::Str(d)) => decl.description = Some(d),
                ("sensitive", Value::Bool(b)) => decl.sensitive = b,
                ("default", value) => default = Some(Node { value, loc: v.loc }),
                (name @ ("type" | "description" | "sensitive"), other) => {
                    let expected = if name == "sensitive" {
                        "true or false"
                    } else {
                        "a string"
                    };
                    self.problem(Diagnostic::new(
                        v.loc,
                        format!(
                            "`{name}` of variable `{}` must be {expected}, not {}",
                            decl.name,
                            other.kind()
                        ),
                    ));
                }
                (other, _) => self.problem(
                    Diagnostic::new(
                        k.loc,
                        format!("unknown key `{other}` in variable `{}`", decl.name),
                    )
                    .suggest(other, ["type", "default", "description", "sensitive"]),
                ),
            }
        }
        if let Some(node) = default {
            let loc = node.loc;
            match decl.ty.fit(json_of(node)) {
                Ok(value) => decl.default = Some(value),
                Err(value) => self.problem(Diagnostic::new(
                    loc,
                    format!(
                        "the default of variable `{}` must be {}, not {}",
                        decl.name,
                        expected(decl.ty),
                        kind_of(&value)
                    ),
                )),
            }
        }
        Some(decl)
    }
}

/// The type named for people: "a number", "a list".
fn expected(ty: VarType) -> &'static str {
    match ty {
        VarType::String => "a string",
        VarType::Number => "a number",
        VarType::Bool => "true or false",
        VarType::List => "a list",
        VarType::Map => "a map",
    }
}

/// Where a run's values come from beside the defaults: `--var NAME=VALUE` as given, and
/// `--vars-file`.
#[derive(Debug, Default, Clone, Copy)]
pub struct VarSources<'a> {
    pub given: &'a [String],
    pub file: Option<&'a Path>,
}

impl Spec {
    /// Gives every variable its value, in rising precedence: its default, the vars file
    /// (`--vars-file`, else `fabrik.vars.yaml` beside the spec when present), the environment
    /// (`FABRIK_VAR_<NAME>`), `--var`. Returns the variables that have none.
    ///
    /// # Errors
    /// [`Error::Spec`] located in the vars file for an unknown name or a value of the wrong
    /// type there; [`Error::Usage`] for the same in the environment or on the command line.
    pub fn resolve_vars(&mut self, sources: VarSources<'_>) -> Result<Vec<String>, Error> {
        let mut values: BTreeMap<String, Json> = self
            .vars
            .iter()
            .filter_map(|d| Some((d.name.clone(), d.default.clone()?)))
            .collect();
        let beside = self
            .source
            .path
            .parent()
            .map_or_else(|| PathBuf::from(VARS_FILE), |d| d.join(VARS_FILE));
        let file = match sources.file {
            Some(file) => Some(file.to_path_buf()),
            None => beside.is_file().then_some(beside),
        };
        if let Some(file) = file {
            self.read_vars_file(&file, &mut values)?;
        }
        let names = || self.vars.iter().map(|d| d.name.as_str());
        for decl in &self.vars {
            let var = format!("{ENV_PREFIX}{}", decl.name);
            if let Some(text) = std::env::var_os(&var) {
                let text = text.to_str().ok_or_else(|| {
                    Error::Usage(format!("environment variable `{var}` is not valid UTF-8"))
                })?;
                values.insert(decl.name.clone(), typed(decl, text, &var)?);
            }
        }
        for given in sources.given {
            let Some((name, text)) = given.split_once('=') else {
                return Err(Error::Usage(format!(
                    "--var {given}: write `--var NAME=VALUE`"
                )));
            };
            let Some(decl) = self.vars.iter().find(|d| d.name == name) else {
                return Err(Error::Usage(unknown(name, "--var", names())));
            };
            values.insert(decl.name.clone(), typed(decl, text, "--var")?);
        }
        let missing = self
            .vars
            .iter()
            .filter(|d| !values.contains_key(&d.name))
            .map(|d| d.name.clone())
            .collect();
        let mut texts: Vec<String> = Vec::new();
        for decl in self.vars.iter().filter(|d| d.sensitive) {
            let Some(value) = values.get(&decl.name) else {
                continue;
            };
            let text = match value {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            // As for secrets (src/secrets.rs): the output hides a sensitive value by its text, and
            // a value this short would hide parts of everything else (`test` in `example.test.`).
            if crate::redact::too_short(&text) {
                return Err(Error::Usage(format!(
                    "variable `{}` is sensitive, and its value is shorter than {} characters: fabrik's output could not hide it\nuse a longer value, or declare the variable without `sensitive: true` if it is not secret",
                    decl.name,
                    crate::redact::MIN_LENGTH
                )));
            }
            texts.push(text);
        }
        crate::redact::register(texts.iter().map(String::as_str));
        self.var_values = values;
        Ok(missing)
    }

    fn read_vars_file(
        &self,
        path: &Path,
        values: &mut BTreeMap<String, Json>,
    ) -> Result<(), Error> {
        let (source, root) = read_yaml(path, Document::VarsFile)?;
        let entries = match root.value {
            Value::Map(entries) => entries,
            Value::Null => Vec::new(),
            other => {
                return Err(Error::Spec(Diagnostics {
                    source,
                    items: vec![Diagnostic::new(
                        root.loc,
                        format!(
                            "a vars file must be a map of variable names to values, not {}",
                            other.kind()
                        ),
                    )],
                }));
            }
        };
        let mut problems = Vec::new();
        let mut seen: BTreeMap<String, u32> = BTreeMap::new();
        for (key, node) in entries {
            // YAML keeps the last of two equal keys: the file would say two things at once.
            if let Some(first) = seen.get(&key.name) {
                problems.push(
                    Diagnostic::new(key.loc, format!("duplicate variable `{}`", key.name))
                        .help(format!("`{}` is first given on line {}", key.name, first)),
                );
                continue;
            }
            seen.insert(key.name.clone(), key.loc.line);
            let Some(decl) = self.vars.iter().find(|d| d.name == key.name) else {
                let d = Diagnostic::new(key.loc, format!("unknown variable `{}`", key.name));
                problems.push(
                    d.suggest(&key.name, self.vars.iter().map(|d| d.name.as_str()))
                        .help_if_none("declare it under `vars:` in the spec"),
                );
                continue;
            };
            let loc = node.loc;
            match decl.ty.fit(json_of(node)) {
                Ok(value) => {
                    values.insert(decl.name.clone(), value);
                }
                Err(value) => problems.push(Diagnostic::new(
                    loc,
                    format!(
                        "variable `{}` must be {}, not {}",
                        decl.name,
                        expected(decl.ty),
                        kind_of(&value)
                    ),
                )),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::Spec(Diagnostics::sorted(source, problems)))
        }
    }

    /// The error for variables a run needs and nothing gave a value.
    pub fn missing_vars(&self, missing: &[String]) -> Error {
        let names: Vec<String> = missing.iter().map(|n| format!("`{n}`")).collect();
        let first = &missing[0];
        Error::Usage(format!(
            "variable{} {} {} no value and no default\n{}give one with `--var {first}=VALUE`, the environment variable `{ENV_PREFIX}{first}`, or a line `{first}: VALUE` in {VARS_FILE} (or the file --vars-file names)",
            if missing.len() == 1 { "" } else { "s" },
            names.join(", "),
            if missing.len() == 1 { "has" } else { "have" },
            self.described(missing.iter().map(String::as_str)),
        ))
    }

    /// One line `  NAME: DESCRIPTION` per variable of `names` that has a description: what the
    /// spec's author said a value is for, where someone is asked to give one.
    pub fn described<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> String {
        names
            .into_iter()
            .filter_map(|name| {
                let decl = self.vars.iter().find(|d| d.name == name)?;
                let text = decl.description.as_deref()?.trim();
                (!text.is_empty()).then(|| format!("  {name}: {}\n", one_line(text)))
            })
            .collect()
    }
}

/// A description on one line: a YAML block scalar may span several.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A value given as text for `decl`, by `source` (`--var`, an environment variable).
fn typed(decl: &VarDecl, text: &str, source: &str) -> Result<Json, Error> {
    decl.ty.parse_text(text).ok_or_else(|| {
        let shown = if decl.sensitive { "(sensitive)" } else { text };
        Error::Usage(format!(
            "variable `{}` from {source} must be {}, not `{shown}`",
            decl.name,
            expected(decl.ty)
        ))
    })
}

fn unknown<'a>(name: &str, source: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    let mut names = names.into_iter().peekable();
    let hint = if names.peek().is_none() {
        "the spec declares no variables (`vars:`)".to_string()
    } else {
        match closest(name, names) {
            Some(best) => format!("did you mean `{best}`?"),
            None => "declare it under `vars:` in the spec".to_string(),
        }
    };
    format!("{source} names unknown variable `{name}`\n{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_parsed_by_type() {
        assert_eq!(VarType::Number.parse_text("3"), Some(Json::from(3)));
        assert_eq!(VarType::Number.parse_text("1.5"), Some(Json::from(1.5)));
        assert_eq!(VarType::Number.parse_text("x"), None);
        assert_eq!(VarType::Bool.parse_text("true"), Some(Json::Bool(true)));
        assert_eq!(VarType::Bool.parse_text("yes"), None);
        assert_eq!(
            VarType::List.parse_text("[a, 2]"),
            Some(serde_json::json!(["a", 2]))
        );
        assert_eq!(
            VarType::Map.parse_text(r#"{"a": 1}"#),
            Some(serde_json::json!({"a": 1}))
        );
        assert_eq!(VarType::Map.parse_text("[1]"), None);
        assert_eq!(
            VarType::String.parse_text(" x "),
            Some(Json::String(" x ".into()))
        );
    }

    #[test]
    fn a_string_takes_scalars_as_text() {
        assert_eq!(
            VarType::String.fit(Json::from(2)),
            Ok(Json::String("2".into()))
        );
        assert!(VarType::Number.fit(Json::String("2".into())).is_err());
    }
}

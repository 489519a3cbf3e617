//! Interpolation inside spec strings: `${NAME.ATTR}`, `${NAME[KEY].ATTR}`, `${env.X}`,
//! `${env.X:-default}`, `${secret.X}`, `${var.X}`, `${each.key}`, `${each.value}`,
//! `${each.value.ATTR}`, `${stack}`. `$${` writes a literal `${`. Also the syntax of a
//! `for_each` instance's address, `NAME[KEY]`, which references, `--target` and the state share.

/// One piece of a string: literal text or a reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Part {
    Text(String),
    Ref(Reference),
}

/// What a `${…}` names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reference {
    /// An attribute of another resource: one of its inputs or outputs.
    Resource {
        name: String,
        attr: String,
    },
    Env(EnvVar),
    Secret(String),
    /// A variable declared under `vars:`.
    Var(String),
    /// The key or value of the `for_each` instance being made.
    Each(Each),
    Stack,
}

/// What `${each.…}` names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Each {
    Key,
    Value,
    /// One entry of a map value (`${each.value.port}`).
    ValueOf(String),
}

/// `${NAME[each.key].ATTR}`'s key as written: the instance of the same key.
pub const EACH_KEY: &str = "each.key";

/// An environment variable a spec uses, with the text that stands for it when it is unset or
/// empty (`${env.X:-default}`, as in a shell).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnvVar {
    pub name: String,
    pub default: Option<String>,
}

impl EnvVar {
    /// The variable without a default (`${env.X}`).
    pub fn plain(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            default: None,
        }
    }

    /// As written: `${env.X}` or `${env.X:-default}`.
    pub fn written(&self) -> String {
        match &self.default {
            None => format!("${{env.{}}}", self.name),
            Some(default) => format!("${{env.{}:-{default}}}", self.name),
        }
    }

    /// Its value now: the variable's, or the default when it is unset or empty.
    ///
    /// # Errors
    /// The variable is unset (and there is no default) or not UTF-8.
    pub fn value(&self) -> Result<String, std::env::VarError> {
        match (std::env::var(&self.name), &self.default) {
            (Ok(v), Some(default)) if v.is_empty() => Ok(default.clone()),
            (Err(std::env::VarError::NotPresent), Some(default)) => Ok(default.clone()),
            (found, _) => found,
        }
    }
}

impl Reference {
    /// The reference as written, for messages and for finding it in the source.
    pub fn written(&self) -> String {
        match self {
            Reference::Resource { name, attr } => format!("${{{name}.{attr}}}"),
            Reference::Env(var) => var.written(),
            Reference::Secret(s) => format!("${{secret.{s}}}"),
            Reference::Var(v) => format!("${{var.{v}}}"),
            Reference::Each(Each::Key) => "${each.key}".to_string(),
            Reference::Each(Each::Value) => "${each.value}".to_string(),
            Reference::Each(Each::ValueOf(attr)) => format!("${{each.value.{attr}}}"),
            Reference::Stack => "${stack}".to_string(),
        }
    }
}

/// Namespaces a resource may not be named after, because references would be ambiguous.
pub const RESERVED_NAMES: [&str; 6] = ["env", "secret", "stack", "self", "var", "each"];

/// Whether `key` may name a `for_each` instance: 1 to 128 ASCII letters, digits, `_`, `-` and
/// `.` (a domain name is a key). Brackets, spaces and quotes would make `NAME[KEY]` ambiguous
/// where it is written (a reference, `--target`, the shell).
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The address of instance `key` of `name`: `name[key]`.
pub fn address(name: &str, key: &str) -> String {
    format!("{name}[{key}]")
}

/// `NAME[KEY]` split into its name and key; `None` for a plain name.
pub fn split_address(address: &str) -> Option<(&str, &str)> {
    let (name, rest) = address.split_once('[')?;
    let key = rest.strip_suffix(']')?;
    Some((name, key))
}

/// Whether `target` (a `--target`) covers the resource `name`: the name itself, or any
/// instance of it when `target` names a resource with `for_each`.
pub fn covers(target: &str, name: &str) -> bool {
    target == name || split_address(name).is_some_and(|(base, _)| base == target)
}

/// Why a string does not split into text and references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub message: String,
    /// The `${…}` at fault as written, for pointing at it inside the string: given for a
    /// reference with a default (`${env.:-x}`), whose message may not quote it whole.
    pub spot: Option<String>,
}

impl From<String> for Malformed {
    fn from(message: String) -> Self {
        Self {
            message,
            spot: None,
        }
    }
}

/// Splits a string into text and references.
///
/// # Errors
/// A message for an unclosed `${`, an empty `${}` or a reference of the wrong shape.
pub fn parse(s: &str) -> Result<Vec<Part>, Malformed> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        let after = &rest[i..];
        if after.starts_with("$${") {
            text.push_str(&rest[..i]);
            text.push_str("${");
            rest = &rest[i + 3..];
        } else if let Some(body) = after.strip_prefix("${") {
            text.push_str(&rest[..i]);
            let end = body.find('}').ok_or_else(|| {
                format!("unclosed `${{` in {s:?} (write `$${{` for a literal `${{`)")
            })?;
            let inner = &body[..end];
            let reference = parse_reference(inner).map_err(|message| Malformed {
                message,
                spot: inner.contains(":-").then(|| format!("${{{inner}}}")),
            })?;
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Ref(reference));
            rest = &body[end + 1..];
        } else {
            text.push_str(&rest[..=i]);
            rest = &rest[i + 1..];
        }
    }
    text.push_str(rest);
    if !text.is_empty() || parts.is_empty() {
        parts.push(Part::Text(text));
    }
    // Kept for the whole run, once per string of a spec.
    parts.shrink_to_fit();
    Ok(parts)
}

/// [`parse`] for a string the caller gives away: one without `$` becomes its only part as it
/// is, uncopied (most strings of a large spec).
///
/// # Errors
/// As [`parse`], and the string given back.
pub fn parse_owned(s: String) -> Result<Vec<Part>, (Malformed, String)> {
    if !s.contains('$') {
        return Ok(vec![Part::Text(s)]);
    }
    parse(&s).map_err(|malformed| (malformed, s))
}

fn parse_reference(body: &str) -> Result<Reference, String> {
    // The default is literal text up to the closing `}`, spaces and all.
    let (head, default) = match body.split_once(":-") {
        Some((head, default)) => (head.trim(), Some(default)),
        None => (body.trim(), None),
    };
    let shown = body.trim();
    let reference = parse_name(shown, head)?;
    match (reference, default) {
        (reference, None) => Ok(reference),
        (Reference::Env(var), Some(default)) => Ok(Reference::Env(EnvVar {
            default: Some(default.to_string()),
            ..var
        })),
        (_, Some(_)) => Err(format!(
            "`${{{shown}}}` cannot have a default: only `${{env.NAME:-default}}` can"
        )),
    }
}

/// The reference `head` names; `shown` is the whole `${…}` body, for messages.
fn parse_name(shown: &str, head: &str) -> Result<Reference, String> {
    if head.is_empty() {
        return Err(if shown == head {
            "empty reference `${}`".to_string()
        } else {
            format!("`${{{shown}}}` names no variable: write `${{env.NAME:-default}}`")
        });
    }
    if head == "stack" {
        return Ok(Reference::Stack);
    }
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    match head {
        "each.key" => return Ok(Reference::Each(Each::Key)),
        "each.value" => return Ok(Reference::Each(Each::Value)),
        _ => {}
    }
    if let Some(attr) = head.strip_prefix("each.value.") {
        if !valid(attr) {
            return Err(format!(
                "`${{{shown}}}` is not a reference: write `${{each.key}}`, `${{each.value}}` or `${{each.value.NAME}}`"
            ));
        }
        return Ok(Reference::Each(Each::ValueOf(attr.to_string())));
    }
    if head.starts_with("each.") || head == "each" {
        return Err(format!(
            "`${{{shown}}}` is not a reference: write `${{each.key}}`, `${{each.value}}` or `${{each.value.NAME}}`"
        ));
    }
    // An instance of a resource with `for_each`: `NAME[KEY].ATTR`, the key in brackets so
    // that it may hold a `.` (a domain name).
    if let Some((name, rest)) = head.split_once('[') {
        let instance = rest.split_once("].").filter(|(key, attr)| {
            valid(name) && (*key == EACH_KEY || valid_key(key)) && valid(attr)
        });
        let Some((key, attr)) = instance else {
            return Err(format!(
                "`${{{shown}}}` is not a reference: write `${{NAME[KEY].ATTRIBUTE}}`, the key of letters, digits, `_`, `-` and `.`, or `each.key`"
            ));
        };
        return Ok(Reference::Resource {
            name: address(name, key),
            attr: attr.to_string(),
        });
    }
    let Some((first, rest)) = head.split_once('.') else {
        // A bare name: most often a variable, a secret or an environment variable written
        // without its prefix (as in a shell, or Terraform's `var.` forgotten).
        let default = shown.strip_prefix(head).and_then(|d| d.strip_prefix(":-"));
        if let (Some(default), true) = (default, valid(head)) {
            return Err(format!(
                "`${{{shown}}}` is not a reference: write `${{env.{head}:-{default}}}`; only an environment variable takes a default"
            ));
        }
        if valid(head) && head.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return Err(format!(
                "`${{{shown}}}` is not a reference: write `${{var.{head}}}` for a variable, `${{secret.{head}}}` for a secret, `${{env.{head}}}` for an environment variable, or `${{{head}.ATTRIBUTE}}` for an attribute of a resource"
            ));
        }
        return Err(format!(
            "`${{{shown}}}` is not a reference: write `${{RESOURCE.ATTRIBUTE}}`, `${{RESOURCE[KEY].ATTRIBUTE}}`, `${{var.NAME}}`, `${{env.NAME}}`, `${{env.NAME:-default}}`, `${{secret.NAME}}`, `${{each.key}}`, `${{each.value}}` or `${{stack}}`"
        ));
    };
    if !valid(first) || !valid(rest) {
        return Err(format!(
            "`${{{shown}}}` is not a reference: names hold letters, digits, `_` and `-`, and one `.` separates the name from the attribute"
        ));
    }
    Ok(match first {
        "env" => Reference::Env(EnvVar::plain(rest)),
        "secret" => Reference::Secret(rest.to_string()),
        "var" => Reference::Var(rest.to_string()),
        _ => Reference::Resource {
            name: first.to_string(),
            attr: rest.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Part {
        Part::Text(s.to_string())
    }

    #[test]
    fn splits_text_and_references() {
        let parts = parse("a ${web.port} b ${env.HOME}${stack}").unwrap();
        assert_eq!(
            parts,
            vec![
                text("a "),
                Part::Ref(Reference::Resource {
                    name: "web".into(),
                    attr: "port".into()
                }),
                text(" b "),
                Part::Ref(Reference::Env(EnvVar::plain("HOME"))),
                Part::Ref(Reference::Stack),
            ]
        );
    }

    #[test]
    fn escapes_and_lone_dollars_stay_text() {
        assert_eq!(
            parse("cost $5, $${x}").unwrap(),
            vec![text("cost $5, ${x}")]
        );
        assert_eq!(parse("").unwrap(), vec![text("")]);
    }

    #[test]
    fn malformed_references_are_errors() {
        for bad in ["${", "${}", "${web}", "${a.b.c}", "${ .x}"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instances_and_each_parse_and_round_trip() {
        for (written, expected) in [
            (
                "${web[a].port}",
                Reference::Resource {
                    name: "web[a]".into(),
                    attr: "port".into(),
                },
            ),
            (
                "${dns[example.com].fqdn}",
                Reference::Resource {
                    name: "dns[example.com]".into(),
                    attr: "fqdn".into(),
                },
            ),
            (
                "${web[each.key].port}",
                Reference::Resource {
                    name: "web[each.key]".into(),
                    attr: "port".into(),
                },
            ),
            ("${each.key}", Reference::Each(Each::Key)),
            ("${each.value}", Reference::Each(Each::Value)),
            (
                "${each.value.port}",
                Reference::Each(Each::ValueOf("port".into())),
            ),
        ] {
            assert_eq!(parse(written).unwrap(), vec![Part::Ref(expected.clone())]);
            assert_eq!(expected.written(), written);
        }
        for bad in [
            "${web[].port}",
            "${web[a b].port}",
            "${web[a]}",
            "${web[a].}",
            "${each}",
            "${each.other}",
            "${each.value.a.b}",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(split_address("web[a.b]"), Some(("web", "a.b")));
        assert_eq!(split_address("web"), None);
        assert!(covers("web", "web[a]") && covers("web[a]", "web[a]"));
        assert!(!covers("we", "web[a]") && !covers("web", "webs[a]"));
    }

    #[test]
    fn env_defaults_are_literal_text_and_round_trip() {
        for (written, default) in [
            ("${env.PORT:-8080}", "8080"),
            ("${env.PORT:-}", ""),
            ("${env.PORT:- a b }", " a b "),
            ("${env.PORT:-x:-y$}", "x:-y$"),
        ] {
            let parts = parse(written).unwrap();
            let expected = Reference::Env(EnvVar {
                name: "PORT".into(),
                default: Some(default.into()),
            });
            assert_eq!(parts, vec![Part::Ref(expected.clone())], "{written}");
            assert_eq!(expected.written(), written);
        }
        // As in a shell, the first `}` closes the reference.
        assert_eq!(
            parse("${env.X:-a}b}").unwrap(),
            vec![
                Part::Ref(Reference::Env(EnvVar {
                    name: "X".into(),
                    default: Some("a".into())
                })),
                text("b}")
            ]
        );
        for bad in [
            "${env.:-x}",
            "${env.X:-a",
            "${secret.X:-a}",
            "${web.port:-1}",
            "${stack:-s}",
            "${:-x}",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_defaults_stand_for_unset_and_empty_variables() {
        let var = |name: &str, default: Option<&str>| EnvVar {
            name: name.into(),
            default: default.map(str::to_string),
        };
        // PATH is set and not empty wherever the tests run.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(var("PATH", Some("d")).value().unwrap(), path);
        let unset = "FABRIK_TEST_SURELY_UNSET_VARIABLE";
        assert_eq!(var(unset, Some("d")).value().unwrap(), "d");
        assert_eq!(var(unset, Some("")).value().unwrap(), "");
        assert!(var(unset, None).value().is_err());
    }
}

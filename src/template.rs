//! Interpolation inside spec strings: `${NAME.ATTR}`, `${env.X}`, `${secret.X}`, `${var.X}`,
//! `${stack}`.
//! `$${` writes a literal `${`.

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
    Env(String),
    Secret(String),
    /// A variable declared under `vars:`.
    Var(String),
    Stack,
}

impl Reference {
    /// The reference as written, for messages and for finding it in the source.
    pub fn written(&self) -> String {
        match self {
            Reference::Resource { name, attr } => format!("${{{name}.{attr}}}"),
            Reference::Env(v) => format!("${{env.{v}}}"),
            Reference::Secret(s) => format!("${{secret.{s}}}"),
            Reference::Var(v) => format!("${{var.{v}}}"),
            Reference::Stack => "${stack}".to_string(),
        }
    }
}

/// Namespaces a resource may not be named after, because references would be ambiguous.
pub const RESERVED_NAMES: [&str; 5] = ["env", "secret", "stack", "self", "var"];

/// Splits a string into text and references.
///
/// # Errors
/// A message for an unclosed `${`, an empty `${}` or a reference of the wrong shape.
pub fn parse(s: &str) -> Result<Vec<Part>, String> {
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
            let reference = parse_reference(body[..end].trim())?;
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
/// As [`parse`]: the message, and the string given back.
pub fn parse_owned(s: String) -> Result<Vec<Part>, (String, String)> {
    if !s.contains('$') {
        return Ok(vec![Part::Text(s)]);
    }
    parse(&s).map_err(|message| (message, s))
}

fn parse_reference(body: &str) -> Result<Reference, String> {
    if body.is_empty() {
        return Err("empty reference `${}`".to_string());
    }
    if body == "stack" {
        return Ok(Reference::Stack);
    }
    let Some((head, tail)) = body.split_once('.') else {
        return Err(format!(
            "`${{{body}}}` is not a reference: write `${{RESOURCE.ATTRIBUTE}}`, `${{env.NAME}}`, `${{secret.NAME}}` or `${{stack}}`"
        ));
    };
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if !valid(head) || !valid(tail) {
        return Err(format!(
            "`${{{body}}}` is not a reference: names hold letters, digits, `_` and `-`, and one `.` separates the name from the attribute"
        ));
    }
    Ok(match head {
        "env" => Reference::Env(tail.to_string()),
        "secret" => Reference::Secret(tail.to_string()),
        "var" => Reference::Var(tail.to_string()),
        _ => Reference::Resource {
            name: head.to_string(),
            attr: tail.to_string(),
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
                Part::Ref(Reference::Env("HOME".into())),
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
}

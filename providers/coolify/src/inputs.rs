//! Reading a resource's inputs, the same way for applications, databases and services: names
//! that must be non-empty strings (trimmed in the normal form), durations, values the engine
//! holds only by their hash, and the errors that name the field at fault. One reader keeps
//! the three types' messages and normal forms alike.

use std::time::Duration;

use fabrik_provider::{Attributes, Error, ErrorKind, Result, Value};

/// The fields naming where a resource lives and what it is called: non-empty strings, trimmed.
pub const PLACE_FIELDS: [&str; 5] = ["project", "environment", "server", "destination", "name"];

/// An [`ErrorKind::InvalidInput`] error: the inputs cannot work, whatever is retried.
pub fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, message.into())
}

/// Whether a value stands for a secret the engine holds only by its hash.
pub fn is_masked(value: &Value) -> bool {
    value.as_str().is_some_and(|s| s.starts_with("(sensitive)"))
}

/// Field `field`, trimmed; `None` when absent or null.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when it is not a non-empty string.
pub fn text(inputs: &Attributes, field: &str) -> Result<Option<String>> {
    match inputs.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        Some(_) => Err(invalid(format!("`{field}` must be a non-empty string"))),
    }
}

/// Field `field`, trimmed.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when it is absent or not a non-empty string.
pub fn required(inputs: &Attributes, field: &str) -> Result<String> {
    text(inputs, field)?.ok_or_else(|| invalid(format!("`{field}` is required")))
}

/// Checks that each of `fields` present is a non-empty string.
pub fn check_strings(inputs: &Attributes, fields: &[&str]) -> Result<()> {
    for field in fields {
        if let Some(v) = inputs.get(*field) {
            match v.as_str() {
                Some(s) if !s.trim().is_empty() => {}
                _ => return Err(invalid(format!("`{field}` must be a non-empty string"))),
            }
        }
    }
    Ok(())
}

/// Trims each of `fields` that is a string, as the normal form has them.
pub fn trim_strings(out: &mut Attributes, fields: &[&str]) {
    for field in fields {
        if let Some(Value::String(s)) = out.get_mut(*field) {
            *s = s.trim().to_string();
        }
    }
}

/// Field `field` as a duration; `default` when absent.
pub fn duration(inputs: &Attributes, field: &str, default: Duration) -> Result<Duration> {
    match inputs.get(field) {
        Some(t) => parse_duration(field, t),
        None => Ok(default),
    }
}

/// `90`, `"90"`, `"90s"`, `"500ms"`, `"10m"`, `"1h"`: a whole number of seconds when no unit
/// is written.
pub fn parse_duration(field: &str, value: &Value) -> Result<Duration> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => String::new(),
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| {
        invalid(format!(
            "`{field}` must be a duration such as \"90s\", \"10m\" or \"500ms\", not {value}"
        ))
    })?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => {
            return Err(invalid(format!(
                "`{field}` must be a duration such as \"90s\", \"10m\" or \"500ms\", not {value}"
            )));
        }
    };
    if d.is_zero() {
        return Err(invalid(format!("`{field}` must be longer than zero")));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn attrs(v: Value) -> Attributes {
        v.as_object().unwrap().clone().into_iter().collect()
    }

    #[test]
    fn names_are_non_empty_strings_trimmed() {
        let inputs = attrs(json!({"project": " shop ", "server": "", "name": 3}));
        assert_eq!(text(&inputs, "project").unwrap().as_deref(), Some("shop"));
        assert_eq!(text(&inputs, "destination").unwrap(), None);
        assert!(text(&inputs, "server").is_err());
        assert_eq!(
            required(&inputs, "environment").unwrap_err().message,
            "`environment` is required"
        );
        assert!(check_strings(&inputs, &["project"]).is_ok());
        assert_eq!(
            check_strings(&inputs, &PLACE_FIELDS).unwrap_err().message,
            "`server` must be a non-empty string"
        );
        let mut out = inputs.clone();
        trim_strings(&mut out, &["project"]);
        assert_eq!(out["project"], "shop");
    }

    #[test]
    fn durations_default_when_absent() {
        let inputs = attrs(json!({"t": "2m"}));
        let d = |f: &str| duration(&inputs, f, Duration::from_secs(7)).unwrap();
        assert_eq!(d("t"), Duration::from_secs(120));
        assert_eq!(d("other"), Duration::from_secs(7));
    }
}

//! DNS names in normal form: checked, ASCII lower case, absolute with the trailing dot.
//!
//! PowerDNS wants every name absolute, while people write `example.com` or `Mail.Example.com`.
//! Zones (their names, their nameservers) and records (their zone, owner and targets) are both
//! named this way, so the one definition of a valid name and its normal spelling lives here,
//! shared by `zone/schema.rs` and `record/schema.rs`.

/// The longest DNS name, in presentation form without the trailing dot.
const MAX_NAME: usize = 253;
const MAX_LABEL: usize = 63;

/// Checks that `name` is a DNS name (with or without its trailing dot). The message says what
/// is wrong, to be prefixed with where the name came from.
pub fn check_name(name: &str) -> Result<(), String> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Err("is empty".to_string());
    }
    if bare.len() > MAX_NAME {
        return Err(format!("is longer than {MAX_NAME} characters"));
    }
    for label in bare.split('.') {
        if label.is_empty() {
            return Err(format!("{name:?} has an empty label (two dots in a row)"));
        }
        if label.len() > MAX_LABEL {
            return Err(format!(
                "{name:?} has a label longer than {MAX_LABEL} characters"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || *c == '"')
        {
            return Err(format!("{name:?} contains {c:?}"));
        }
    }
    Ok(())
}

/// A name made absolute: lower case, with its trailing dot.
pub fn absolute(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

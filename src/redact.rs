//! The process-wide redaction table: every secret value fabrik learns (declared secrets, the
//! password of a state database URL) is registered here, and everything fabrik prints or stores
//! from a provider's answer passes through [`redact`]. It is a leaf so that any layer (the spec's
//! secrets, the state backends, output) can register or redact without depending on another.

use std::borrow::Cow;
use std::sync::RwLock;

use base64::Engine as _;

/// The shortest secret value fabrik accepts. Whatever fabrik prints passes through [`redact`],
/// which replaces each secret by `(sensitive)`: for a short value that is also ordinary text
/// (`test`, in `example.test.`), where the replacements land would tell the value. From eight
/// characters on, a value that is really secret does not turn up in unrelated text by chance.
pub const MIN_LENGTH: usize = 8;

/// Whether `value` is too short to be masked (see [`MIN_LENGTH`]).
pub fn too_short(value: &str) -> bool {
    value.chars().count() < MIN_LENGTH
}

/// Every form in which a registered secret could appear in text fabrik writes.
static FORMS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers values to be masked by [`redact`]: as written, JSON-escaped and base64-encoded.
/// A value shorter than [`MIN_LENGTH`] is not: masking it in unrelated text would tell it.
/// Declared secrets that short are refused before they get here; what is left is a password
/// inside a state database URL, and the URL is masked whole.
pub fn register<'a>(values: impl IntoIterator<Item = &'a str>) {
    let mut forms = FORMS.write().expect("redaction table");
    for value in values {
        if too_short(value) {
            continue;
        }
        let json = serde_json::to_string(value).expect("strings serialize");
        let candidates = [
            value.to_string(),
            json[1..json.len() - 1].to_string(),
            base64::engine::general_purpose::STANDARD.encode(value),
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(value),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value),
        ];
        for form in candidates {
            if !forms.contains(&form) {
                forms.push(form);
            }
        }
    }
    // Longest first, so a form that contains another is masked whole.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
}

/// `text` with every registered secret form replaced by `(sensitive)`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let forms = FORMS.read().expect("redaction table");
    if forms.is_empty() || !forms.iter().any(|f| text.contains(f.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for form in forms.iter() {
        if out.contains(form.as_str()) {
            out = out.replace(form.as_str(), "(sensitive)");
        }
    }
    Cow::Owned(out)
}

/// Masks secrets inside every string of a value (an object's outputs), leaving its structure,
/// keys and other text alone.
pub fn redact_value(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let Cow::Owned(clean) = redact(s) {
                *s = clean;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_value),
        serde_json::Value::Object(map) => map.values_mut().for_each(redact_value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_covers_plain_json_and_base64_forms() {
        let value = "p\"ss/wörd+secret";
        register([value]);
        let json = serde_json::to_string(value).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(value);
        let text = format!("a {value} b {json} c {b64} d");
        let redacted = redact(&text);
        assert!(
            !redacted.contains(value) && !redacted.contains(&b64),
            "{redacted}"
        );
        assert!(!redacted.contains(&json[1..json.len() - 1]), "{redacted}");
    }

    #[test]
    fn a_short_value_never_rewrites_unrelated_text() {
        register(["test"]);
        assert_eq!(redact("zone example.test."), "zone example.test.");
    }
}

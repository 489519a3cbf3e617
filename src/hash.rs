//! Spec hashes: BLAKE3 over a canonical serialization of resolved inputs, never over YAML text,
//! so whitespace, comments and key order never show up as a change.

use serde::Serialize;

/// The hash of one resource's type and resolved inputs (keys sorted). Inputs may also be
/// given as a map of known values (`Some`), which serializes exactly as the attributes do.
pub fn spec_hash<I: Serialize + ?Sized>(type_name: &str, inputs: &I) -> String {
    #[derive(Serialize)]
    struct Canonical<'a, I: ?Sized> {
        r#type: &'a str,
        inputs: &'a I,
    }
    hash_of(&Canonical {
        r#type: type_name,
        inputs,
    })
}

/// BLAKE3 of any value's JSON form (maps in this crate are sorted), in hex.
pub fn hash_of(value: &impl Serialize) -> String {
    let mut hasher = blake3::Hasher::new();
    serde_json::to_writer(&mut hasher, value).expect("hashed values always serialize");
    hasher.finalize().to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fabrik_provider::{Attributes, Value};

    #[test]
    fn key_order_does_not_change_the_hash() {
        let mut a = Attributes::new();
        a.insert("x".into(), Value::from(1));
        a.insert("y".into(), Value::from("z"));
        let mut b = Attributes::new();
        b.insert("y".into(), Value::from("z"));
        b.insert("x".into(), Value::from(1));
        assert_eq!(spec_hash("t", &a), spec_hash("t", &b));
        assert_ne!(spec_hash("t", &a), spec_hash("u", &a));
        // Known inputs hash as the attributes they are.
        let known: std::collections::BTreeMap<String, Option<Value>> = a
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        assert_eq!(spec_hash("t", &known), spec_hash("t", &a));
    }
}

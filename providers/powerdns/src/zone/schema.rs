//! The fields of `powerdns.zone` and their normal form, so that two spellings of one zone
//! (`Example.com` and `example.com.`, `primary` and `Master`) never show as a change.

use fabrik_provider::{
    Attributes, Error, ErrorKind, Field, FieldKind, OutputField, ReplaceStrategy, ResourceType,
    Result, Value,
};

use crate::dns_name::{absolute, check_name};

pub const ZONE_TYPE: &str = "powerdns.zone";

pub(super) const DEFAULT_KIND: &str = "Native";

pub fn resource_type() -> ResourceType {
    ResourceType {
        name: ZONE_TYPE,
        description: "A zone in PowerDNS Authoritative.",
        fields: vec![
            Field::required(
                "name",
                FieldKind::String,
                "The zone's name, such as \"example.com\" (the trailing dot is optional).",
            )
            .force_new(),
            Field::optional(
                "kind",
                FieldKind::String,
                "Native (the default), Master (or Primary), Slave (or Secondary), Producer or \
                 Consumer.",
            )
            .one_of(&[
                "Native",
                "Master",
                "Primary",
                "Slave",
                "Secondary",
                "Producer",
                "Consumer",
            ])
            .force_new(),
            Field::optional(
                "nameservers",
                FieldKind::List,
                "Names for the apex NS RRset; PowerDNS takes them only when the zone is created.",
            )
            .force_new(),
        ],
        outputs: vec![
            OutputField::new(
                "id",
                "The zone's id in PowerDNS: its name with the trailing dot.",
            )
            .derived_from(&["name"]),
            OutputField::new(
                "serial",
                "The SOA serial when the zone was last read or created.",
            ),
        ],
        // One name, one zone: the old one must go before a new one of that name can exist.
        replace: ReplaceStrategy::DestroyBeforeCreate,
    }
}

/// A zone's inputs in normal form: the name absolute and lower case, the kind spelled as
/// PowerDNS 4.7 spells it (default `Native`), the nameservers absolute and lower case, sorted.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for a missing or malformed field.
pub fn normalise(inputs: &Attributes) -> Result<Attributes> {
    let mut out = Attributes::new();
    out.insert("name".into(), Value::String(zone_name(inputs)?));
    let kind = match inputs.get("kind") {
        None | Some(Value::Null) => DEFAULT_KIND.to_string(),
        Some(Value::String(k)) => kind(k)?,
        Some(_) => return Err(invalid("`kind` must be a string")),
    };
    out.insert("kind".into(), Value::String(kind));
    let mut nameservers = Vec::new();
    match inputs.get("nameservers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                let Value::String(ns) = item else {
                    return Err(invalid("`nameservers` must be a list of names"));
                };
                check_name(ns).map_err(|e| invalid(format!("nameserver {e}")))?;
                nameservers.push(absolute(ns));
            }
        }
        Some(_) => return Err(invalid("`nameservers` must be a list of names")),
    }
    nameservers.sort();
    if nameservers.windows(2).any(|w| w[0] == w[1]) {
        return Err(invalid("`nameservers` lists a name twice"));
    }
    out.insert(
        "nameservers".into(),
        Value::Array(nameservers.into_iter().map(Value::String).collect()),
    );
    Ok(out)
}

/// Checks the fields that are known.
pub fn validate(inputs: &Attributes) -> Result<()> {
    if inputs.contains_key("name") {
        zone_name(inputs)?;
    }
    let mut probe = inputs.clone();
    probe.insert("name".into(), Value::String("probe.invalid".into()));
    normalise(&probe).map(drop)
}

/// The zone's name in normal form.
pub fn zone_name(inputs: &Attributes) -> Result<String> {
    match inputs.get("name") {
        Some(Value::String(name)) => {
            check_name(name.trim()).map_err(|e| invalid(format!("zone name {e}")))?;
            Ok(absolute(name))
        }
        _ => Err(invalid("`name` must be a string")),
    }
}

/// A kind as PowerDNS 4.7 spells it.
pub(super) fn kind(kind: &str) -> Result<String> {
    let canonical = match kind.trim().to_ascii_lowercase().as_str() {
        "native" => "Native",
        "master" | "primary" => "Master",
        "slave" | "secondary" => "Slave",
        "producer" => "Producer",
        "consumer" => "Consumer",
        _ => {
            return Err(invalid(format!(
                "`kind` must be Native, Master (Primary), Slave (Secondary), Producer or \
                 Consumer, not {kind:?}"
            )));
        }
    };
    Ok(canonical.to_string())
}

pub(super) fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(value: Value) -> Attributes {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn normal_form() {
        let got = normalise(&attrs(json!({
            "name": "Example.Test",
            "kind": "primary",
            "nameservers": ["NS2.example.test", "ns1.example.test."]
        })))
        .unwrap();
        assert_eq!(
            Value::Object(got),
            json!({
                "name": "example.test.",
                "kind": "Master",
                "nameservers": ["ns1.example.test.", "ns2.example.test."]
            })
        );
        let plain = normalise(&attrs(json!({"name": "example.test."}))).unwrap();
        assert_eq!(plain["kind"], "Native");
        assert_eq!(plain["nameservers"], json!([]));
    }

    #[test]
    fn bad_zones_are_invalid() {
        for bad in [
            json!({"name": "a..b"}),
            json!({"name": ""}),
            json!({"name": "x", "kind": "Authoritative"}),
            json!({"name": "x", "nameservers": ["ns1", "NS1."]}),
            json!({"name": "x", "nameservers": [3]}),
        ] {
            let err = validate(&attrs(bad.clone())).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{bad}");
        }
        validate(&attrs(json!({"kind": "native"}))).unwrap();
    }
}

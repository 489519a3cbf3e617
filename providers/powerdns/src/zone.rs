//! `powerdns.zone`: a zone, created with its kind and nameservers.
//!
//! Zones have no comment field to hold an ownership marker, so a zone that already exists is
//! never taken over by a create: it is a conflict, to be imported on purpose. Deleting a zone
//! deletes everything in it, so a delete is refused while the zone holds RRsets that are not
//! this stack's (beyond the SOA and apex NS PowerDNS made with it).

use fabrik_provider::{
    Applied, Attributes, Error, ErrorKind, Field, FieldKind, Found, Observed, OutputField,
    ReplaceStrategy, ResourceType, Result, Target, Value,
};
use serde_json::json;

use crate::api::{Api, ZoneInfo, zone_path};
use crate::normal;

pub const ZONE_TYPE: &str = "powerdns.zone";

const DEFAULT_KIND: &str = "Native";

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
                normal::check_name(ns).map_err(|e| invalid(format!("nameserver {e}")))?;
                nameservers.push(normal::absolute(ns));
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
            normal::check_name(name.trim()).map_err(|e| invalid(format!("zone name {e}")))?;
            Ok(normal::absolute(name))
        }
        _ => Err(invalid("`name` must be a string")),
    }
}

/// A kind as PowerDNS 4.7 spells it.
fn kind(kind: &str) -> Result<String> {
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

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

pub fn create(api: &Api, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
    let want = normalise(inputs)?;
    let name = string(&want, "name");
    let mut body = json!({ "name": name, "kind": string(&want, "kind") });
    if let Some(Value::Array(ns)) = want.get("nameservers")
        && !ns.is_empty()
    {
        body["nameservers"] = Value::Array(ns.clone());
    }
    match api.post("/zones", &body) {
        Ok(reply) => {
            let zone: ZoneInfo = reply.json("the new zone")?;
            Ok(Applied {
                id: zone.id.clone(),
                outputs: outputs(&zone),
                found: false,
            })
        }
        Err(e) if e.kind == ErrorKind::Conflict => Err(Error::new(
            ErrorKind::Conflict,
            already_there(target.name, name),
        )),
        Err(e) => Err(e),
    }
}

/// Why a zone about to be created cannot be: it exists already (zones carry no marker, so
/// fabrik cannot tell it made it).
pub fn obstacle(api: &Api, target: Target<'_>, inputs: &Attributes) -> Result<Option<String>> {
    let name = zone_name(inputs)?;
    Ok(get(api, &name, false)?.map(|_| already_there(target.name, &name)))
}

fn already_there(resource: &str, name: &str) -> String {
    format!(
        "zone {name} already exists in PowerDNS, and fabrik did not create it (zones carry no \
         ownership marker). To manage it with fabrik, import it (`fabrik import {resource} \
         {name}`) or set `adopt: true` on the resource; otherwise choose another name"
    )
}

/// Takes over a zone that exists (zones carry no marker), or creates it.
pub fn adopt(api: &Api, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
    match find(api, inputs)? {
        Some(found) => Ok(Applied {
            id: found.id,
            outputs: found.observed.outputs,
            found: false,
        }),
        None => create(api, target, inputs),
    }
}

/// Claims the zone `id` (`fabrik import`): its name with or without the trailing dot, or its
/// PowerDNS id. Zones carry no marker, so nothing is written: the zone is returned as it is,
/// to be recorded.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for an id that is not a zone name, or one that names another
/// zone than the spec's (importing it would make the next apply replace it);
/// [`ErrorKind::NotFound`] when there is no such zone.
pub fn import(api: &Api, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<Found> {
    // PowerDNS writes `/` in a zone id as `=2F`; both spellings name the zone.
    let name = id.trim().replace("=2F", "/");
    normal::check_name(&name).map_err(|e| {
        invalid(format!(
            "{id:?} is not a powerdns.zone id: the zone's name {e}"
        ))
    })?;
    let name = normal::absolute(&name);
    if inputs.contains_key("name") {
        let wanted = zone_name(inputs)?;
        if wanted != name {
            return Err(invalid(format!(
                "zone {name} is not the zone resource `{}` describes ({wanted}); importing it \
                 would make the next apply replace it. Import {wanted}, or change the spec first",
                target.name
            )));
        }
    }
    let Some(zone) = get(api, &name, false)? else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("zone {name} does not exist in PowerDNS; there is nothing to import"),
        ));
    };
    Ok(Found {
        id: zone.id.clone(),
        observed: Observed {
            inputs: observed_inputs(&zone, inputs),
            outputs: outputs(&zone),
        },
    })
}

pub fn read(api: &Api, id: &str, recorded: &Attributes) -> Result<Option<Observed>> {
    let Some(zone) = get(api, id, false)? else {
        return Ok(None);
    };
    Ok(Some(Observed {
        inputs: observed_inputs(&zone, recorded),
        outputs: outputs(&zone),
    }))
}

/// A zone's identity is its name.
pub fn find(api: &Api, inputs: &Attributes) -> Result<Option<Found>> {
    let name = zone_name(inputs)?;
    Ok(get(api, &name, false)?.map(|zone| Found {
        id: zone.id.clone(),
        observed: Observed {
            inputs: observed_inputs(&zone, inputs),
            outputs: outputs(&zone),
        },
    }))
}

/// Deletes the zone, unless it holds RRsets this stack does not manage.
pub fn delete(api: &Api, target: Target<'_>, id: &str) -> Result<()> {
    let Some(zone) = get(api, id, true)? else {
        return Ok(());
    };
    let ours = format!("fabrik:{}/", target.stack);
    let foreign: Vec<String> = zone
        .rrsets
        .iter()
        .filter(|r| !r.records.is_empty())
        .filter(|r| !(r.name == zone.name && (r.rtype == "SOA" || r.rtype == "NS")))
        .filter(|r| !r.comments.iter().any(|c| c.content.starts_with(&ours)))
        .map(|r| format!("{} {}", r.name, r.rtype))
        .collect();
    if !foreign.is_empty() {
        let shown: Vec<&str> = foreign.iter().take(5).map(String::as_str).collect();
        let more = match foreign.len() - shown.len() {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        return Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "zone {} still holds RRsets that stack `{}` does not manage ({}{more}); deleting \
                 the zone would delete them too. Remove them first, or delete the zone by hand",
                zone.name,
                target.stack,
                shown.join(", ")
            ),
        ));
    }
    match api.delete(&zone_path(id)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// `GET /zones/{id}`, with or without its RRsets; `None` when there is no such zone.
fn get(api: &Api, id: &str, rrsets: bool) -> Result<Option<ZoneInfo>> {
    let query = [("rrsets", if rrsets { "true" } else { "false" })];
    match api.get(&zone_path(id), &query) {
        Ok(reply) => Ok(Some(reply.json("a zone read")?)),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The zone's inputs as observed. Each field is the recorded value when it means what the
/// server has, else the server's value. `nameservers` cannot be told apart from NS RRsets
/// managed as `powerdns.record` and matter only at creation: they are as recorded.
fn observed_inputs(zone: &ZoneInfo, recorded: &Attributes) -> Attributes {
    let mut seen = Attributes::new();
    let same_name = zone_name(recorded).is_ok_and(|n| n == zone.name);
    seen.insert(
        "name".into(),
        if same_name {
            recorded["name"].clone()
        } else {
            Value::String(zone.name.clone())
        },
    );
    let recorded_kind = match recorded.get("kind") {
        Some(Value::String(k)) => kind(k).ok(),
        _ => Some(DEFAULT_KIND.to_string()),
    };
    if recorded_kind.as_deref() != Some(zone.kind.as_str()) {
        seen.insert("kind".into(), Value::String(zone.kind.clone()));
    } else if let Some(k) = recorded.get("kind") {
        seen.insert("kind".into(), k.clone());
    }
    if let Some(ns) = recorded.get("nameservers") {
        seen.insert("nameservers".into(), ns.clone());
    }
    seen
}

fn outputs(zone: &ZoneInfo) -> Attributes {
    let mut out = Attributes::new();
    out.insert("id".into(), Value::String(zone.id.clone()));
    out.insert("serial".into(), Value::from(zone.serial));
    out
}

fn string<'a>(normal: &'a Attributes, field: &str) -> &'a str {
    normal[field].as_str().expect("normal forms hold strings")
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn read_keeps_the_recorded_spelling() {
        let zone = ZoneInfo {
            id: "example.test.".into(),
            name: "example.test.".into(),
            kind: "Master".into(),
            serial: 1,
            rrsets: Vec::new(),
        };
        let recorded =
            attrs(json!({"name": "Example.Test", "kind": "primary", "nameservers": ["ns1"]}));
        assert_eq!(observed_inputs(&zone, &recorded), recorded);
        let plain = attrs(json!({"name": "example.test"}));
        assert_eq!(
            Value::Object(observed_inputs(&zone, &plain)),
            json!({"name": "example.test", "kind": "Master"})
        );
    }
}

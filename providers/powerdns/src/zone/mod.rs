//! `powerdns.zone`: a zone, created with its kind and nameservers.
//!
//! Zones have no comment field to hold an ownership marker, so a zone that already exists is
//! never taken over by a create: it is a conflict, to be imported on purpose. Deleting a zone
//! deletes everything in it, so a delete is refused while the zone holds RRsets that are not
//! this stack's (beyond the SOA and apex NS PowerDNS made with it). The fields and their
//! normal form are in `schema.rs`.

use fabrik_provider::{
    Applied, Attributes, Error, ErrorKind, Found, Observed, Result, Target, Value,
};
use serde_json::json;

use crate::api::{Api, ZoneInfo, zone_path};
use crate::dns_name::{absolute, check_name};

mod schema;

use schema::{DEFAULT_KIND, invalid, kind};
pub use schema::{ZONE_TYPE, normalise, resource_type, validate, zone_name};

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
    check_name(&name).map_err(|e| {
        invalid(format!(
            "{id:?} is not a powerdns.zone id: the zone's name {e}"
        ))
    })?;
    let name = absolute(&name);
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

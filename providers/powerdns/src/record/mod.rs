//! `powerdns.record`: one RRset (all records of one name and type in a zone).
//!
//! The ownership marker `fabrik:<stack>/<resource>` goes in the RRset's comments. An RRset
//! without this resource's marker is never written or deleted: a create that finds one stops
//! with a conflict, and a delete leaves it as it is. `fabrik import` claims one on purpose: it
//! adds the marker to the RRset's comments and changes nothing else.
//!
//! PowerDNS 4.7 answers a filtered read (`?rrset_name=&rrset_type=`) with the RRset asked for
//! plus a comment-only entry (`records: []`) for every commented RRset of the zone; entries
//! without records are not RRsets and are ignored.
//!
//! The fields and their normal form are in `schema.rs`; many changes of one zone as one PATCH
//! in `batch.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fabrik_provider::{
    Applied, Attributes, Error, ErrorKind, Found, Observed, Result, Target, Value,
};

use crate::api::{
    Api, ChangeType, CommentInfo, RRsetInfo, RRsetWrite, RecordInfo, ZoneInfo, zone_path,
};
use crate::dns_name::absolute;

mod batch;
mod schema;

use schema::{
    DEFAULT_TTL, RRset, contents, identity_id, import_id, invalid, name_of, parse_id, ttl_of,
    type_of, zone_of,
};
pub use schema::{RECORD_TYPE, normalise, resource_type, validate, zone};

/// What a lookup of one RRset found.
enum Lookup {
    NoZone,
    Absent,
    Present(RRsetInfo),
}

/// Reads one RRset with a filtered zone read.
fn lookup(api: &Api, zone: &str, name: &str, rtype: &str) -> Result<Lookup> {
    let query = [("rrset_name", name), ("rrset_type", rtype)];
    let zone_info: ZoneInfo = match api.get(&zone_path(zone), &query) {
        Ok(reply) => reply.json("an RRset read")?,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(Lookup::NoZone),
        Err(e) => return Err(e),
    };
    Ok(zone_info
        .rrsets
        .into_iter()
        .find(|r| {
            !r.records.is_empty()
                && r.name.eq_ignore_ascii_case(name)
                && r.rtype.eq_ignore_ascii_case(rtype)
        })
        .map_or(Lookup::Absent, Lookup::Present))
}

/// Reads one RRset before writing it. PowerDNS 4.7's filtered read leaves out an RRset whose
/// records are all disabled, so when it finds nothing the whole zone is read: someone's disabled
/// RRset must not be taken for a free place.
fn lookup_before_write(api: &Api, zone: &str, name: &str, rtype: &str) -> Result<Lookup> {
    match lookup(api, zone, name, rtype)? {
        Lookup::Absent => Ok(batch::zone_rrsets(api, zone)?
            .and_then(|mut rrsets| rrsets.remove(&(name.to_string(), rtype.to_string())))
            .map_or(Lookup::Absent, Lookup::Present)),
        found => Ok(found),
    }
}

/// What the server has, in normal form (contents it cannot parse are kept as they are).
/// Disabled records are not served, so they do not count.
fn server_rrset(zone: &str, info: &RRsetInfo) -> RRset {
    let rtype = info.rtype.to_ascii_uppercase();
    let mut records: Vec<String> = enabled(info)
        .map(|c| schema::content(&rtype, c).unwrap_or_else(|_| c.trim().to_string()))
        .collect();
    records.sort();
    RRset {
        zone: zone.to_string(),
        name: absolute(&info.name),
        rtype,
        records,
        ttl: info.ttl,
    }
}

fn enabled(info: &RRsetInfo) -> impl Iterator<Item = &str> {
    info.records
        .iter()
        .filter(|r| !r.disabled)
        .map(|r| r.content.as_str())
}

/// The inputs a read reports: each field as `recorded` where it means what the server has
/// (so a spelling the user chose never shows as drift), else as the server has it.
fn observed_inputs(server: &RRset, info: &RRsetInfo, recorded: &Attributes) -> Attributes {
    let mut seen = Attributes::new();
    let keep = |field: &str, same: bool, theirs: Value, seen: &mut Attributes| {
        let value = match recorded.get(field) {
            Some(mine) if same => mine.clone(),
            _ => theirs,
        };
        seen.insert(field.to_string(), value);
    };
    keep(
        "zone",
        zone_of(recorded).is_ok_and(|z| z == server.zone),
        Value::String(server.zone.clone()),
        &mut seen,
    );
    keep(
        "name",
        name_of(recorded, &server.zone).is_ok_and(|n| n == server.name),
        Value::String(server.name.clone()),
        &mut seen,
    );
    keep(
        "type",
        type_of(recorded).is_ok_and(|t| t == server.rtype),
        Value::String(server.rtype.clone()),
        &mut seen,
    );
    let same_records = recorded
        .get("records")
        .and_then(|raw| contents(raw, &server.rtype).ok())
        .is_some_and(|mine| mine == server.records);
    keep(
        "records",
        same_records,
        Value::Array(
            enabled(info)
                .map(|c| Value::String(c.to_string()))
                .collect(),
        ),
        &mut seen,
    );
    match ttl_of(recorded) {
        Ok(Some(ttl)) if ttl == server.ttl => {
            seen.insert("ttl".into(), recorded["ttl"].clone());
        }
        Ok(None) if server.ttl == DEFAULT_TTL => {}
        _ => {
            seen.insert("ttl".into(), Value::from(server.ttl));
        }
    }
    seen
}

/// Record calls, with one lock per zone: a create's read and write of an RRset are not
/// interleaved with another call of this client on the same zone.
#[derive(Default)]
pub struct Records {
    zones: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl Records {
    fn zone_lock(&self, zone: &str) -> Arc<Mutex<()>> {
        let mut zones = self
            .zones
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        zones.entry(zone.to_string()).or_default().clone()
    }

    pub fn read(&self, api: &Api, id: &str, recorded: &Attributes) -> Result<Option<Observed>> {
        let (zone, name, rtype) = match parse_id(id) {
            Some(parts) => parts,
            None => {
                let want = RRset::from_inputs(recorded)?;
                (want.zone, want.name, want.rtype)
            }
        };
        let Lookup::Present(info) = lookup(api, &zone, &name, &rtype)? else {
            return Ok(None);
        };
        let server = server_rrset(&zone, &info);
        Ok(Some(Observed {
            inputs: observed_inputs(&server, &info, recorded),
            outputs: server.outputs(),
        }))
    }

    /// The RRset these inputs name, if it carries this resource's marker.
    pub fn find(
        &self,
        api: &Api,
        target: Target<'_>,
        inputs: &Attributes,
    ) -> Result<Option<Found>> {
        let want = RRset::from_inputs(inputs)?;
        let Lookup::Present(info) = lookup(api, &want.zone, &want.name, &want.rtype)? else {
            return Ok(None);
        };
        if !info.carries(&target.marker()) {
            return Ok(None);
        }
        let server = server_rrset(&want.zone, &info);
        Ok(Some(Found {
            id: want.id(),
            observed: Observed {
                inputs: observed_inputs(&server, &info, inputs),
                outputs: server.outputs(),
            },
        }))
    }

    pub fn create(&self, api: &Api, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        self.write(api, target, inputs, |info, want| {
            refuse_unless_ours(info, want, target, "create")?;
            // Ours already (a create repeated after a crash): converge on it.
            Ok(server_rrset(&want.zone, info) == *want)
        })
    }

    /// Like [`Records::create`], but an RRset without any fabrik marker is taken over: written
    /// with this resource's records and marker. One managed by another resource is refused.
    pub fn adopt(&self, api: &Api, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        self.write(api, target, inputs, |info, want| {
            if info.fabrik_marker().is_some() {
                refuse_unless_ours(info, want, target, "adopt")?;
            }
            Ok(false)
        })
    }

    /// Writes the RRset `inputs` describe, under the zone's lock, after `present` has judged
    /// the RRset already in its place (if any): an error refuses the write, `true` says it is
    /// as wanted already. An RRset that is not there is simply written.
    fn write(
        &self,
        api: &Api,
        target: Target<'_>,
        inputs: &Attributes,
        present: impl FnOnce(&RRsetInfo, &RRset) -> Result<bool>,
    ) -> Result<Applied> {
        let want = RRset::from_inputs(inputs)?;
        let lock = self.zone_lock(&want.zone);
        let _held = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = match lookup_before_write(api, &want.zone, &want.name, &want.rtype)? {
            Lookup::NoZone => return Err(no_zone(&want.zone)),
            Lookup::Present(info) => {
                if present(&info, &want)? {
                    return Ok(Applied {
                        id: want.id(),
                        outputs: want.outputs(),
                        found: false,
                    });
                }
                Some(info)
            }
            Lookup::Absent => None,
        };
        replace(api, target, &want, found.as_ref())
    }

    /// Claims the RRset `id` for this resource (`fabrik import`): its comments get this
    /// resource's marker beside the ones they had; its records and TTL stay exactly as they
    /// are. One that carries the marker already is returned as it is, so a repeated import
    /// (or one finished by recovery) changes nothing. Returns the RRset as read after the
    /// marker landed, its inputs in the spelling of `inputs` where that means the same.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for an id that is not `<zone>/<name>/<type>`, one that names
    /// another RRset than the spec's (importing it would make the next apply replace it), or
    /// an RRset fabrik cannot manage; [`ErrorKind::NotFound`] when there is no such RRset;
    /// [`ErrorKind::Conflict`] when another resource's marker is on it.
    pub fn import(
        &self,
        api: &Api,
        target: Target<'_>,
        id: &str,
        inputs: &Attributes,
    ) -> Result<Found> {
        let (zone, name, rtype) = import_id(id)?;
        same_rrset_as_spec(inputs, &zone, &name, &rtype, target)?;
        let lock = self.zone_lock(&zone);
        let _held = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let missing = || {
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "there is no RRset {name} {rtype} in zone {zone} to import (ids are \
                     `<zone>/<name>/<type>`, as a failed apply prints them)"
                ),
            )
        };
        let info = match lookup(api, &zone, &name, &rtype)? {
            Lookup::NoZone => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "zone {zone} does not exist in PowerDNS, so there is no RRset {name} \
                         {rtype} to import"
                    ),
                ));
            }
            Lookup::Absent => return Err(missing()),
            Lookup::Present(info) => info,
        };
        let marker = target.marker();
        let info = if info.carries(&marker) {
            info
        } else {
            if let Some(other) = info.fabrik_marker() {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "RRset {name} {rtype} is managed by fabrik as `{other}`, not \
                         `{marker}`; fabrik never takes an object from another resource. To \
                         move it here, forget it there first (`fabrik state rm` in that \
                         stack), then remove its marker comment"
                    ),
                ));
            }
            manageable(&zone, &info)?;
            stamp(api, &zone, &info, &marker)?;
            // Read again: what is returned is the RRset as it is now, marker included.
            match lookup(api, &zone, &name, &rtype)? {
                Lookup::Present(now) if now.carries(&marker) => now,
                Lookup::Present(_) => {
                    return Err(Error::new(
                        ErrorKind::Fatal,
                        format!(
                            "PowerDNS accepted the marker `{marker}` for RRset {name} {rtype} \
                             but does not show it"
                        ),
                    ));
                }
                Lookup::NoZone => return Err(no_zone(&zone)),
                Lookup::Absent => return Err(missing()),
            }
        };
        let server = server_rrset(&zone, &info);
        Ok(Found {
            id: identity_id(&zone, &name, &rtype),
            observed: Observed {
                inputs: observed_inputs(&server, &info, inputs),
                outputs: server.outputs(),
            },
        })
    }

    /// Writes the RRset as `inputs` say; one gone behind fabrik's back is written again.
    pub fn update(&self, api: &Api, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        self.write(api, target, inputs, |info, want| {
            refuse_unless_ours(info, want, target, "update")?;
            Ok(false)
        })
    }

    /// Deletes the RRset if it carries this resource's marker; anything else is left alone.
    pub fn delete(
        &self,
        api: &Api,
        target: Target<'_>,
        id: &str,
        inputs: &Attributes,
    ) -> Result<()> {
        let (zone, name, rtype) = match parse_id(id) {
            Some(parts) => parts,
            None => {
                let want = RRset::from_inputs(inputs)?;
                (want.zone, want.name, want.rtype)
            }
        };
        let lock = self.zone_lock(&zone);
        let _held = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Lookup::Present(info) = lookup(api, &zone, &name, &rtype)? else {
            return Ok(());
        };
        if !info.carries(&target.marker()) {
            return Ok(());
        }
        match api.patch_rrsets(&zone_path(&zone), &[&RRsetWrite::delete(&name, &rtype)]) {
            Ok(_) => Ok(()),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The PATCH entry that writes the whole RRset with this resource's marker. The comments
/// `found` on it that are not fabrik markers stay as they were: a note someone left on an RRset
/// that was imported or adopted is not fabrik's to drop.
fn replace_rrset(target: Target<'_>, want: &RRset, found: Option<&RRsetInfo>) -> RRsetWrite {
    let records = want
        .records
        .iter()
        .map(|content| RecordInfo {
            content: content.clone(),
            disabled: false,
        })
        .collect();
    let mut comments: Vec<CommentInfo> = found
        .into_iter()
        .flat_map(|info| &info.comments)
        .filter(|c| !c.content.starts_with("fabrik:"))
        .cloned()
        .collect();
    comments.push(marker_comment(target.marker()));
    RRsetWrite {
        name: want.name.clone(),
        rtype: want.rtype.clone(),
        changetype: ChangeType::Replace,
        ttl: Some(want.ttl),
        records: Some(records),
        comments: Some(comments),
    }
}

/// The comment that marks an RRset as a resource's.
fn marker_comment(marker: String) -> CommentInfo {
    CommentInfo {
        content: marker,
        account: "fabrik".into(),
        modified_at: None,
    }
}

/// Writes the whole RRset with this resource's marker (see [`replace_rrset`]).
fn replace(
    api: &Api,
    target: Target<'_>,
    want: &RRset,
    found: Option<&RRsetInfo>,
) -> Result<Applied> {
    let write = replace_rrset(target, want, found);
    match api.patch_rrsets(&zone_path(&want.zone), &[&write]) {
        Ok(_) => Ok(Applied {
            id: want.id(),
            outputs: want.outputs(),
            found: false,
        }),
        Err(e) if e.kind == ErrorKind::NotFound => Err(no_zone(&want.zone)),
        Err(e) => Err(e),
    }
}

fn refuse_unless_ours(
    info: &RRsetInfo,
    want: &RRset,
    target: Target<'_>,
    doing: &str,
) -> Result<()> {
    let marker = target.marker();
    if info.carries(&marker) {
        return Ok(());
    }
    let (name, rtype) = (&want.name, &want.rtype);
    let message = match info.fabrik_marker() {
        // An import would be refused too: the way out is on the other resource's side.
        Some(other) => format!(
            "cannot {doing} RRset {name} {rtype}: it already exists and it is managed by fabrik \
             as `{other}`, not `{marker}`; fabrik never takes it from another resource. Remove \
             it from that resource's spec, or choose another name"
        ),
        None => format!(
            "cannot {doing} RRset {name} {rtype}: it already exists and it is not managed by \
             fabrik (its comments carry no `{marker}` marker); fabrik never overwrites it. To \
             manage it with fabrik, import it (`fabrik import {} {}`) or set `adopt: true` on \
             the resource; otherwise remove it or choose another name",
            target.name,
            want.id(),
        ),
    };
    Err(Error::new(ErrorKind::Conflict, message))
}

/// Refuses an import of another RRset than the one the spec describes (where its `zone`,
/// `name` and `type` are known): every one of them forces a new RRset, so the next apply would
/// delete what was just imported.
fn same_rrset_as_spec(
    inputs: &Attributes,
    zone: &str,
    name: &str,
    rtype: &str,
    target: Target<'_>,
) -> Result<()> {
    let spec_zone = match inputs.get("zone") {
        Some(_) => Some(zone_of(inputs)?),
        None => None,
    };
    let spec_name = match inputs.get("name") {
        Some(_) => Some(name_of(inputs, spec_zone.as_deref().unwrap_or(zone))?),
        None => None,
    };
    let spec_type = match inputs.get("type") {
        Some(_) => Some(type_of(inputs)?),
        None => None,
    };
    let differs = [
        ("zone", spec_zone.as_deref(), zone),
        ("name", spec_name.as_deref(), name),
        ("type", spec_type.as_deref(), rtype),
    ]
    .into_iter()
    .filter_map(|(field, spec, id)| {
        spec.filter(|s| *s != id)
            .map(|s| format!("{field} {s} in the spec, {id} in the id"))
    })
    .collect::<Vec<_>>();
    if differs.is_empty() {
        return Ok(());
    }
    Err(invalid(format!(
        "{} names another RRset than resource `{}` describes ({}); importing it would make \
         the next apply replace it. Import the id of the RRset the spec names ({}), or change \
         the spec first",
        identity_id(zone, name, rtype),
        target.name,
        differs.join("; "),
        identity_id(
            spec_zone.as_deref().unwrap_or(zone),
            spec_name.as_deref().unwrap_or(name),
            spec_type.as_deref().unwrap_or(rtype),
        ),
    )))
}

/// Whether fabrik can manage this RRset as it is: only served (enabled) records count, so one
/// with none would be recorded as an RRset without records, which no spec can describe.
fn manageable(zone: &str, info: &RRsetInfo) -> Result<()> {
    if enabled(info).next().is_none() {
        return Err(invalid(format!(
            "RRset {} {} in zone {zone} has only disabled records; fabrik manages what is \
             served, so there is nothing to import. Enable a record or remove the RRset",
            info.name, info.rtype
        )));
    }
    Ok(())
}

/// Adds `marker` to the RRset's comments. A PATCH with comments and no records replaces the
/// comments only: records and TTL stay as they are, and the comments it had are sent back
/// as they were (account and time included).
fn stamp(api: &Api, zone: &str, info: &RRsetInfo, marker: &str) -> Result<()> {
    let mut comments = info.comments.clone();
    comments.push(marker_comment(marker.to_string()));
    let write = RRsetWrite {
        name: info.name.clone(),
        rtype: info.rtype.clone(),
        changetype: ChangeType::Replace,
        ttl: None,
        records: None,
        comments: Some(comments),
    };
    match api.patch_rrsets(&zone_path(zone), &[&write]) {
        Ok(_) => Ok(()),
        Err(e) if e.kind == ErrorKind::NotFound => Err(no_zone(zone)),
        Err(e) => Err(e),
    }
}

fn no_zone(zone: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("zone {zone} does not exist in PowerDNS; create it first (powerdns.zone)"),
    )
}

#[cfg(test)]
mod tests;

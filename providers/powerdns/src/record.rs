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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fabrik_provider::{
    Applied, Attributes, Error, ErrorKind, Field, FieldKind, Found, Observed, OutputField,
    ReplaceStrategy, ResourceType, Result, Target, Value,
};

use crate::api::{
    Api, ChangeType, CommentInfo, RRsetInfo, RRsetWrite, RecordInfo, ZoneInfo, zone_path,
};
use crate::normal;

mod batch;

pub const RECORD_TYPE: &str = "powerdns.record";

const DEFAULT_TTL: u64 = 300;
const MAX_TTL: u64 = 2_147_483_647;

pub fn resource_type() -> ResourceType {
    ResourceType {
        name: RECORD_TYPE,
        description: "One RRset in a PowerDNS zone: every record of one name and type.",
        fields: vec![
            Field::required(
                "zone",
                FieldKind::String,
                "The zone's name, such as \"example.com\".",
            )
            .force_new(),
            Field::required(
                "name",
                FieldKind::String,
                "The owner name: relative to the zone (\"www\"), absolute (\"www.example.com\", \
                 with or without the trailing dot), or \"@\" for the zone's apex.",
            )
            .force_new(),
            Field::required(
                "type",
                FieldKind::String,
                "The record type: A, AAAA, CNAME, MX, TXT, …",
            )
            .force_new(),
            Field::required(
                "records",
                FieldKind::List,
                "The contents, one string per record (\"192.0.2.1\", \"10 mail.example.com\", \
                 \"v=spf1 -all\"; TXT is quoted for you unless it starts with a quote).",
            ),
            Field::optional(
                "ttl",
                FieldKind::Integer,
                "Time to live in seconds (default 300).",
            ),
        ],
        outputs: vec![
            OutputField::new("fqdn", "The absolute owner name, with its trailing dot.")
                .derived_from(&["zone", "name"]),
        ],
        // Deleting first keeps a replace right when the old and new spelling name the same
        // RRset (`www` and `www.example.com`), and lets an A RRset give way to a CNAME.
        replace: ReplaceStrategy::DestroyBeforeCreate,
    }
}

/// An RRset in normal form (see [`crate::normal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
struct RRset {
    zone: String,
    name: String,
    rtype: String,
    /// Normal contents, sorted: the order of records in an RRset means nothing.
    records: Vec<String>,
    ttl: u64,
}

impl RRset {
    fn from_inputs(inputs: &Attributes) -> Result<RRset> {
        let zone = zone_of(inputs)?;
        let rtype = type_of(inputs)?;
        let name = name_of(inputs, &zone)?;
        let Some(raw) = inputs.get("records") else {
            return Err(invalid("`records` is missing"));
        };
        let records = contents(raw, &rtype)?;
        let ttl = ttl_of(inputs)?.unwrap_or(DEFAULT_TTL);
        let rrset = RRset {
            zone,
            name,
            rtype,
            records,
            ttl,
        };
        check_shape(
            Some(&rrset.zone),
            Some(&rrset.name),
            &rrset.rtype,
            &rrset.records,
        )?;
        Ok(rrset)
    }

    fn id(&self) -> String {
        identity_id(&self.zone, &self.name, &self.rtype)
    }

    fn attributes(&self) -> Attributes {
        let mut out = Attributes::new();
        out.insert("zone".into(), Value::String(self.zone.clone()));
        out.insert("name".into(), Value::String(self.name.clone()));
        out.insert("type".into(), Value::String(self.rtype.clone()));
        out.insert(
            "records".into(),
            Value::Array(self.records.iter().cloned().map(Value::String).collect()),
        );
        out.insert("ttl".into(), Value::from(self.ttl));
        out
    }

    fn outputs(&self) -> Attributes {
        let mut out = Attributes::new();
        out.insert("fqdn".into(), Value::String(self.name.clone()));
        out
    }
}

/// A record's inputs in normal form: `zone` and `name` absolute and lower case with the
/// trailing dot, `type` upper case, `records` in each type's normal form and sorted, `ttl`
/// filled in (300). Create and update send this form; read compares in it.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for a missing or malformed field.
pub fn normalise(inputs: &Attributes) -> Result<Attributes> {
    RRset::from_inputs(inputs).map(|r| r.attributes())
}

/// Checks the fields that are known (at plan time some may not be).
pub fn validate(inputs: &Attributes) -> Result<()> {
    let zone = match inputs.get("zone") {
        Some(_) => Some(zone_of(inputs)?),
        None => None,
    };
    let rtype = match inputs.get("type") {
        Some(_) => Some(type_of(inputs)?),
        None => None,
    };
    let name = match (inputs.get("name"), &zone) {
        (Some(_), Some(zone)) => Some(name_of(inputs, zone)?),
        (Some(Value::String(n)), None) if n.trim() == "@" => None,
        (Some(Value::String(n)), None) => {
            normal::check_name(n.trim()).map_err(|e| invalid(format!("`name` {e}")))?;
            None
        }
        (Some(_), None) => return Err(invalid("`name` must be a string")),
        (None, _) => None,
    };
    ttl_of(inputs)?;
    if let Some(raw) = inputs.get("records") {
        let records = contents(raw, rtype.as_deref().unwrap_or("TYPE0"))?;
        if let Some(rtype) = &rtype {
            check_shape(zone.as_deref(), name.as_deref(), rtype, &records)?;
        }
    }
    Ok(())
}

/// The rules that involve more than one field (those whose fields are known).
fn check_shape(
    zone: Option<&str>,
    name: Option<&str>,
    rtype: &str,
    records: &[String],
) -> Result<()> {
    if rtype == "CNAME" {
        if records.len() != 1 {
            return Err(invalid(format!(
                "a CNAME RRset has exactly one record, not {}",
                records.len()
            )));
        }
        if let (Some(zone), Some(name)) = (zone, name)
            && zone == name
        {
            return Err(invalid(format!(
                "a CNAME cannot be at the zone's apex ({zone}): the apex has SOA and NS records"
            )));
        }
    }
    Ok(())
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

/// The zone a record's inputs name, in normal form (its batch key), without normalising the
/// rest of them.
pub fn zone(inputs: &Attributes) -> Option<String> {
    zone_of(inputs).ok()
}

fn zone_of(inputs: &Attributes) -> Result<String> {
    match inputs.get("zone") {
        Some(Value::String(zone)) => {
            normal::check_name(zone.trim()).map_err(|e| invalid(format!("`zone` {e}")))?;
            Ok(normal::absolute(zone))
        }
        _ => Err(invalid("`zone` must be a string")),
    }
}

fn type_of(inputs: &Attributes) -> Result<String> {
    match inputs.get("type") {
        Some(Value::String(t)) => {
            normal::record_type(t).map_err(|e| invalid(format!("`type`: {e}")))
        }
        _ => Err(invalid("`type` must be a string")),
    }
}

fn name_of(inputs: &Attributes, zone: &str) -> Result<String> {
    let Some(Value::String(name)) = inputs.get("name") else {
        return Err(invalid("`name` must be a string"));
    };
    let owner = normal::owner(name, zone).map_err(|e| invalid(format!("`name` {e}")))?;
    if !normal::in_zone(&owner, zone) {
        return Err(invalid(format!(
            "`name` {name:?} is not in zone {zone}: write it relative to the zone (\"www\") or \
             as a name below it"
        )));
    }
    Ok(owner)
}

fn ttl_of(inputs: &Attributes) -> Result<Option<u64>> {
    match inputs.get("ttl") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(ttl) if (1..=MAX_TTL).contains(&ttl) => Ok(Some(ttl)),
            _ => Err(invalid(format!(
                "`ttl` must be a number of seconds from 1 to {MAX_TTL}, not {v}"
            ))),
        },
    }
}

/// The normal contents of a `records` list for `rtype`, sorted; duplicates are an error.
/// The type `TYPE0` (type not known yet) only checks that there are strings.
fn contents(raw: &Value, rtype: &str) -> Result<Vec<String>> {
    let Value::Array(items) = raw else {
        return Err(invalid("`records` must be a list of strings"));
    };
    if items.is_empty() {
        return Err(invalid(
            "`records` is empty; an RRset needs at least one record (remove the resource to \
             delete it)",
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(text) = item else {
            return Err(invalid(format!(
                "`records` must be a list of strings; {item} is not a string (quote it)"
            )));
        };
        if rtype == "TYPE0" {
            continue;
        }
        let content =
            normal::content(rtype, text).map_err(|e| invalid(format!("{rtype} record {e}")))?;
        out.push(content);
    }
    out.sort();
    if let Some(twice) = out.windows(2).find(|w| w[0] == w[1]) {
        return Err(invalid(format!(
            "`records` lists {:?} twice (after normalisation)",
            twice[0]
        )));
    }
    Ok(out)
}

fn identity_id(zone: &str, name: &str, rtype: &str) -> String {
    format!("{zone}/{name}/{rtype}")
}

/// Splits an id `<zone>/<name>/<type>`. Names may hold `/` (RFC 2317 reverse zones), so the
/// split is the one where the name lies in the zone.
fn parse_id(id: &str) -> Option<(String, String, String)> {
    let (rest, rtype) = id.rsplit_once('/')?;
    for (i, _) in rest.match_indices('/') {
        let (zone, name) = (&rest[..i], &rest[i + 1..]);
        if !zone.is_empty() && !name.is_empty() && normal::in_zone(name, zone) {
            return Some((zone.to_string(), name.to_string(), rtype.to_string()));
        }
    }
    None
}

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
        .map(|c| normal::content(&rtype, c).unwrap_or_else(|_| c.trim().to_string()))
        .collect();
    records.sort();
    RRset {
        zone: zone.to_string(),
        name: normal::absolute(&info.name),
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
        let mut zones = self.zones.lock().unwrap_or_else(|p| p.into_inner());
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
        let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
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
        let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
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
        let _held = lock.lock().unwrap_or_else(|p| p.into_inner());
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

/// The RRset an import id names: `<zone>/<name>/<type>` as [`identity_id`] writes it, in any
/// case and with or without trailing dots; the name may also be relative to the zone or `@`.
fn import_id(id: &str) -> Result<(String, String, String)> {
    let bad = || {
        invalid(format!(
            "{id:?} is not a powerdns.record id: write it as <zone>/<name>/<type>, such as \
             `example.com./www.example.com./A`"
        ))
    };
    let (rest, rtype) = id.trim().rsplit_once('/').ok_or_else(bad)?;
    let rtype = normal::record_type(rtype).map_err(|_| bad())?;
    // Names may hold `/` (RFC 2317 reverse zones): the split is the one where the name lies
    // in the zone.
    for (i, _) in rest.match_indices('/') {
        let (zone, name) = (rest[..i].trim(), &rest[i + 1..]);
        if zone.is_empty() || normal::check_name(zone).is_err() {
            continue;
        }
        let zone = normal::absolute(zone);
        if let Ok(name) = normal::owner(name, &zone)
            && normal::in_zone(&name, &zone)
        {
            return Ok((zone, name, rtype));
        }
    }
    Err(bad())
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
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(value: Value) -> Attributes {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn normal_form() {
        let got = normalise(&attrs(json!({
            "zone": "Example.Test",
            "name": "WWW",
            "type": "cname",
            "records": ["Target.Example.Com"],
        })))
        .unwrap();
        assert_eq!(
            Value::Object(got),
            json!({
                "zone": "example.test.",
                "name": "www.example.test.",
                "type": "CNAME",
                "records": ["target.example.com."],
                "ttl": 300,
            })
        );
        let apex = normalise(&attrs(json!({
            "zone": "example.test.",
            "name": "@",
            "type": "TXT",
            "records": ["b text", "\"a\"  \"quoted\""],
            "ttl": 60,
        })))
        .unwrap();
        assert_eq!(apex["name"], "example.test.");
        assert_eq!(apex["records"], json!(["\"a\" \"quoted\"", "\"b text\""]));
    }

    #[test]
    fn ids_round_trip() {
        for (zone, name, rtype) in [
            ("example.test.", "www.example.test.", "A"),
            ("example.test.", "example.test.", "MX"),
            (
                "0/26.2.0.192.in-addr.arpa.",
                "1.0/26.2.0.192.in-addr.arpa.",
                "PTR",
            ),
        ] {
            let id = identity_id(zone, name, rtype);
            assert_eq!(
                parse_id(&id),
                Some((zone.to_string(), name.to_string(), rtype.to_string()))
            );
        }
        assert_eq!(parse_id("nonsense"), None);
    }

    #[test]
    fn import_ids_are_read_in_any_spelling_of_the_printed_one() {
        let www = Some((
            "example.test.".to_string(),
            "www.example.test.".to_string(),
            "A".to_string(),
        ));
        for id in [
            "example.test./www.example.test./A",
            "Example.Test/WWW.example.test/a",
            "example.test./www/A",
            " example.test./www.example.test./A ",
        ] {
            assert_eq!(import_id(id).ok(), www, "{id}");
        }
        assert_eq!(
            import_id("example.test./@/MX").unwrap().1,
            "example.test.",
            "the apex"
        );
        assert_eq!(
            import_id("0/26.2.0.192.in-addr.arpa./1.0/26.2.0.192.in-addr.arpa./PTR").unwrap(),
            (
                "0/26.2.0.192.in-addr.arpa.".to_string(),
                "1.0/26.2.0.192.in-addr.arpa.".to_string(),
                "PTR".to_string()
            )
        );
        for bad in [
            "",
            "www",
            "example.test./A",
            "/www.example.test./A",
            "example.test./www.other.test./A",
            "example.test./www/A B",
        ] {
            let err = import_id(bad).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn validation() {
        let bad = [
            json!({"type": "A", "records": ["192.0.2.300"]}),
            json!({"type": "A", "records": ["2001:db8::1"]}),
            json!({"type": "AAAA", "records": ["192.0.2.1"]}),
            json!({"type": "CNAME", "records": ["a.example.", "b.example."]}),
            json!({"zone": "example.test", "name": "@", "type": "CNAME", "records": ["a.example."]}),
            json!({"type": "MX", "records": ["mail.example.test"]}),
            json!({"type": "TXT", "records": ["\"unterminated"]}),
            json!({"records": []}),
            json!({"records": [1]}),
            json!({"type": "A", "records": ["192.0.2.1", " 192.0.2.1"]}),
            json!({"ttl": 0}),
            json!({"ttl": 2_147_483_648u64}),
            json!({"ttl": -5}),
            json!({"type": "A B"}),
            json!({"zone": "example.test", "name": "www.other.test."}),
            json!({"name": "a..b"}),
            json!({"zone": "bad zone"}),
        ];
        for inputs in bad {
            match validate(&attrs(inputs.clone())) {
                Err(e) => assert_eq!(e.kind, ErrorKind::InvalidInput, "{inputs}"),
                Ok(()) => panic!("{inputs} passed validation"),
            }
        }
        validate(&attrs(json!({"name": "www", "ttl": 2_147_483_647u64}))).unwrap();
        validate(&attrs(json!({"records": ["anything"]}))).unwrap();
    }

    #[test]
    fn read_keeps_the_users_spelling_and_reports_drift() {
        let info: RRsetInfo = serde_json::from_value(json!({
            "name": "www.example.test.", "type": "TXT", "ttl": 300,
            "records": [{"content": "\"hello world\"", "disabled": false}],
            "comments": [],
        }))
        .unwrap();
        let server = server_rrset("example.test.", &info);
        let recorded = attrs(json!({
            "zone": "example.test", "name": "WWW", "type": "txt", "records": ["hello world"],
        }));
        assert_eq!(observed_inputs(&server, &info, &recorded), recorded);

        let drifted = attrs(json!({
            "zone": "example.test", "name": "www", "type": "TXT", "records": ["bye"], "ttl": 60,
        }));
        assert_eq!(
            Value::Object(observed_inputs(&server, &info, &drifted)),
            json!({
                "zone": "example.test", "name": "www", "type": "TXT",
                "records": ["\"hello world\""], "ttl": 300,
            })
        );
    }
}

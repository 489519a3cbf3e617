//! `cloudflare.record`: one DNS record in a Cloudflare zone.
//!
//! Cloudflare models records with ids, not RRsets: several A records may share a name, and
//! only an identical one (same type, name and content) is "in the way". Each resource maps to
//! one record id.
//!
//! Ownership lives in the record's comment: the user's comment, a space, then the marker
//! `fabrik:<stack>/<resource>` (the marker alone when there is no comment). Reads strip the
//! marker back off, so the comment a user wrote is the comment the plan compares. A record
//! whose comment does not end with this resource's marker is never changed or deleted.
//!
//! Many records at once (batches, zone-wide reads) are in `batch`, on the same [`Records`].

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

use fabrik_provider::{
    Applied, Attributes, Error, ErrorKind, Field, FieldKind, Found, Observed, OutputField,
    ReplaceStrategy, ResourceType, Result, Target, Value,
};
use serde_json::json;

use crate::api::{self, Api, EXISTS, Failure, MISSING, Method};

pub const RECORD_TYPE: &str = "cloudflare.record";

/// Records per page when listing a zone. Well under the schema's maximum, and the server may
/// answer fewer: paging follows `result_info`, not this number.
const PAGE: usize = 5_000;
/// Cloudflare's automatic TTL.
const AUTO_TTL: u64 = 1;
/// The longest comment on the Free plan, marker included (paid plans keep 500).
const MAX_COMMENT: usize = 100;
/// Types whose content is one plain string; the others (SRV, CAA, …) take structured `data`.
const TYPES: &[&str] = &["A", "AAAA", "CNAME", "MX", "NS", "PTR", "TXT"];
/// Types whose content is a host name (lower case, no trailing dot in Cloudflare's answers).
const HOST_TYPES: &[&str] = &["CNAME", "MX", "NS", "PTR"];
const MARKER_PREFIX: &str = "fabrik:";

pub fn resource_type() -> ResourceType {
    ResourceType {
        name: RECORD_TYPE,
        description: "One DNS record in a Cloudflare zone.",
        fields: vec![
            Field::required(
                "zone",
                FieldKind::String,
                "The zone's name, such as \"example.com\" (looked up once per run).",
            )
            .force_new(),
            Field::required(
                "name",
                FieldKind::String,
                "The record's name: relative to the zone (\"www\"), absolute \
                 (\"www.example.com\"), or \"@\" for the zone's apex.",
            ),
            Field::required(
                "type",
                FieldKind::String,
                "A, AAAA, CNAME, MX, NS, PTR or TXT.",
            )
            .force_new(),
            Field::required(
                "content",
                FieldKind::String,
                "The record's content: an address, a host name, or text (TXT as given).",
            ),
            Field::optional(
                "ttl",
                FieldKind::Integer,
                "Time to live in seconds, 60 to 86400, or 1 for automatic (the default).",
            ),
            Field::optional(
                "proxied",
                FieldKind::Boolean,
                "Whether traffic goes through Cloudflare's proxy (A, AAAA and CNAME only; \
                 default false).",
            ),
            Field::optional(
                "priority",
                FieldKind::Integer,
                "The preference of an MX record (required for MX, 0 to 65535).",
            ),
            Field::optional(
                "comment",
                FieldKind::String,
                "A note on the record; fabrik adds its ownership marker after it.",
            ),
        ],
        outputs: vec![
            OutputField::new("id", "The record's Cloudflare id."),
            OutputField::new("zone_id", "The zone's Cloudflare id."),
        ],
        // Deleting first lets an A record give way to a CNAME of the same name, which
        // Cloudflare refuses beside each other.
        replace: ReplaceStrategy::DestroyBeforeCreate,
    }
}

/// A record in normal form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub(crate) zone: String,
    pub(crate) name: String,
    pub(crate) rtype: String,
    pub(crate) content: String,
    ttl: u64,
    proxied: bool,
    priority: Option<u64>,
    comment: String,
}

impl Record {
    pub(crate) fn from_inputs(inputs: &Attributes) -> Result<Record> {
        let zone = zone_of(inputs)?.ok_or_else(|| invalid("`zone` is missing"))?;
        let rtype = type_of(inputs)?.ok_or_else(|| invalid("`type` is missing"))?;
        let name = name_of(inputs, &zone)?.ok_or_else(|| invalid("`name` is missing"))?;
        let content =
            content_of(inputs, Some(&rtype))?.ok_or_else(|| invalid("`content` is missing"))?;
        let record = Record {
            zone,
            name,
            content,
            ttl: ttl_of(inputs)?.unwrap_or(AUTO_TTL),
            proxied: proxied_of(inputs)?.unwrap_or(false),
            priority: priority_of(inputs)?,
            comment: comment_of(inputs)?.unwrap_or_default(),
            rtype,
        };
        check_shape(&record.rtype, record.proxied, record.priority)?;
        Ok(record)
    }

    /// The record `target` writes: [`Record::from_inputs`], with room checked for the marker
    /// in the comment (a comment known only at apply time is first checked here).
    pub(crate) fn to_write(inputs: &Attributes, target: Target<'_>) -> Result<Record> {
        let record = Record::from_inputs(inputs)?;
        check_room(&record.comment, target)?;
        Ok(record)
    }

    fn attributes(&self) -> Attributes {
        let mut out = Attributes::new();
        out.insert("zone".into(), Value::String(self.zone.clone()));
        out.insert("name".into(), Value::String(self.name.clone()));
        out.insert("type".into(), Value::String(self.rtype.clone()));
        out.insert("content".into(), Value::String(self.content.clone()));
        out.insert("ttl".into(), Value::from(self.ttl));
        out.insert("proxied".into(), Value::Bool(self.proxied));
        if let Some(p) = self.priority {
            out.insert("priority".into(), Value::from(p));
        }
        // No comment is no field, so a plan does not list `comment = ""` for every record.
        if !self.comment.is_empty() {
            out.insert("comment".into(), Value::String(self.comment.clone()));
        }
        out
    }

    /// The body of a create, overwrite or update: every field fabrik manages, the comment
    /// carrying the marker.
    pub(crate) fn body(&self, marker: &str) -> Value {
        let mut body = json!({
            "type": self.rtype,
            "name": self.name,
            "content": self.content,
            "ttl": self.ttl,
            "proxied": self.proxied,
            "comment": stamp(&self.comment, marker),
        });
        if let Some(p) = self.priority {
            body["priority"] = json!(p);
        }
        body
    }

    fn label(&self) -> String {
        format!("{} {} {}", self.name, self.rtype, self.content)
    }
}

/// A record as Cloudflare shows it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) id: String,
    zone_id: String,
    pub(crate) record: Record,
    /// The fabrik marker its comment ends with, if any.
    marker: Option<String>,
}

impl Seen {
    pub(crate) fn parse(zone: &str, raw: &Value) -> Option<Seen> {
        let text = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_string);
        let rtype = text("type")?.to_ascii_uppercase();
        let raw_content = text("content").unwrap_or_default();
        let content = normal_content(&rtype, &raw_content).unwrap_or(raw_content);
        let (comment, marker) = split_comment(raw.get("comment").and_then(Value::as_str));
        Some(Seen {
            id: text("id")?,
            zone_id: text("zone_id").unwrap_or_default(),
            marker,
            record: Record {
                zone: zone.to_string(),
                name: text("name")?.trim_end_matches('.').to_ascii_lowercase(),
                content,
                ttl: raw.get("ttl").and_then(Value::as_u64).unwrap_or(AUTO_TTL),
                proxied: raw.get("proxied").and_then(Value::as_bool).unwrap_or(false),
                priority: if rtype == "MX" {
                    raw.get("priority").and_then(Value::as_u64)
                } else {
                    None
                },
                comment,
                rtype,
            },
        })
    }

    pub(crate) fn ours(&self, target: Target<'_>) -> bool {
        self.marker.as_deref() == Some(target.marker().as_str())
    }

    /// What a read reports, against the inputs fabrik recorded: a comment cleared behind
    /// fabrik's back shows as `""`, so the engine sees it differ.
    pub(crate) fn observed(&self, recorded: &Record) -> Observed {
        let mut inputs = self.record.attributes();
        if self.record.comment.is_empty() && !recorded.comment.is_empty() {
            inputs.insert("comment".into(), Value::String(String::new()));
        }
        Observed {
            inputs,
            outputs: outputs(&self.id, &self.zone_id),
        }
    }

    pub(crate) fn applied(&self) -> Applied {
        Applied {
            id: self.id.clone(),
            outputs: outputs(&self.id, &self.zone_id),
            found: false,
        }
    }
}

fn outputs(id: &str, zone_id: &str) -> Attributes {
    let mut out = Attributes::new();
    out.insert("id".into(), Value::String(id.to_string()));
    out.insert("zone_id".into(), Value::String(zone_id.to_string()));
    out
}

/// The stored comment: the user's comment, then the marker.
fn stamp(comment: &str, marker: &str) -> String {
    if comment.is_empty() {
        marker.to_string()
    } else {
        format!("{comment} {marker}")
    }
}

/// A stored comment split into the user's comment and the fabrik marker it ends with.
fn split_comment(stored: Option<&str>) -> (String, Option<String>) {
    let stored = stored.unwrap_or("").trim_end();
    let (head, last) = match stored.rsplit_once(char::is_whitespace) {
        Some((head, last)) => (head.trim_end(), last),
        None => ("", stored),
    };
    if last.starts_with(MARKER_PREFIX) && last.len() > MARKER_PREFIX.len() {
        (head.to_string(), Some(last.to_string()))
    } else {
        (stored.to_string(), None)
    }
}

/// A record's inputs in normal form: `zone` and `name` lower case without the trailing dot,
/// `name` absolute, `type` upper case, `content` as Cloudflare stores it, `ttl` (1),
/// `proxied` (false) and `comment` ("") filled in.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for a missing or malformed field.
pub fn normalise(inputs: &Attributes) -> Result<Attributes> {
    Record::from_inputs(inputs).map(|r| r.attributes())
}

/// Checks the fields that are known (at plan time some may not be), for resource `target`.
pub fn validate(target: Target<'_>, inputs: &Attributes) -> Result<()> {
    let zone = zone_of(inputs)?;
    let rtype = type_of(inputs)?;
    match &zone {
        Some(zone) => {
            name_of(inputs, zone)?;
        }
        None => {
            if let Some(Value::String(name)) = inputs.get("name")
                && name.trim() != "@"
            {
                check_name(name.trim()).map_err(|e| invalid(format!("`name` {e}")))?;
            }
        }
    }
    content_of(inputs, rtype.as_deref())?;
    ttl_of(inputs)?;
    // An absent comment may be one not known yet; the marker alone must fit anyway.
    check_room(&comment_of(inputs)?.unwrap_or_default(), target)?;
    let proxied = proxied_of(inputs)?;
    let priority = priority_of(inputs)?;
    if let Some(rtype) = &rtype {
        // An absent `priority` may be one not known yet: the missing MX priority is caught
        // by the normal form, which sees every input.
        let priority = match (rtype.as_str(), priority) {
            ("MX", None) => Some(0),
            (_, p) => p,
        };
        check_shape(rtype, proxied.unwrap_or(false), priority)?;
    }
    Ok(())
}

/// The rules between fields.
fn check_shape(rtype: &str, proxied: bool, priority: Option<u64>) -> Result<()> {
    if proxied && !matches!(rtype, "A" | "AAAA" | "CNAME") {
        return Err(invalid(format!(
            "`proxied` applies to A, AAAA and CNAME records only, not {rtype}"
        )));
    }
    match (rtype, priority) {
        ("MX", None) => Err(invalid("an MX record needs `priority` (such as 10)")),
        ("MX", Some(_)) | (_, None) => Ok(()),
        (_, Some(_)) => Err(invalid(format!(
            "`priority` applies to MX records only, not {rtype}"
        ))),
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

fn string_field<'a>(inputs: &'a Attributes, field: &str) -> Result<Option<&'a str>> {
    match inputs.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("`{field}` must be a string"))),
    }
}

fn zone_of(inputs: &Attributes) -> Result<Option<String>> {
    let Some(zone) = string_field(inputs, "zone")? else {
        return Ok(None);
    };
    let zone = zone.trim();
    check_name(zone).map_err(|e| invalid(format!("`zone` {e}")))?;
    Ok(Some(bare(zone)))
}

fn type_of(inputs: &Attributes) -> Result<Option<String>> {
    let Some(rtype) = string_field(inputs, "type")? else {
        return Ok(None);
    };
    let upper = rtype.trim().to_ascii_uppercase();
    if !TYPES.contains(&upper.as_str()) {
        return Err(invalid(format!(
            "`type` {rtype:?} is not supported: cloudflare.record manages {} records",
            TYPES.join(", ")
        )));
    }
    Ok(Some(upper))
}

/// The absolute name (lower case, no trailing dot) of a record in `zone`.
fn name_of(inputs: &Attributes, zone: &str) -> Result<Option<String>> {
    let Some(name) = string_field(inputs, "name")? else {
        return Ok(None);
    };
    let trimmed = name.trim();
    if trimmed == "@" {
        return Ok(Some(zone.to_string()));
    }
    check_name(trimmed).map_err(|e| invalid(format!("`name` {e}")))?;
    let lower = trimmed.to_ascii_lowercase();
    let full = if let Some(absolute) = lower.strip_suffix('.') {
        absolute.to_string()
    } else if lower == zone || lower.ends_with(&format!(".{zone}")) {
        lower
    } else {
        format!("{lower}.{zone}")
    };
    if full != zone && !full.ends_with(&format!(".{zone}")) {
        return Err(invalid(format!(
            "`name` {name:?} is not in zone {zone}: write it relative to the zone (\"www\"), \
             as \"@\" for the apex, or as a name ending in {zone}"
        )));
    }
    check_name(&full).map_err(|e| invalid(format!("`name` {e}")))?;
    Ok(Some(full))
}

fn content_of(inputs: &Attributes, rtype: Option<&str>) -> Result<Option<String>> {
    let Some(content) = string_field(inputs, "content")? else {
        return Ok(None);
    };
    match rtype {
        Some(rtype) => normal_content(rtype, content)
            .map(Some)
            .map_err(|e| invalid(format!("`content` {e}"))),
        None if content.is_empty() => Err(invalid("`content` is empty")),
        None => Ok(Some(content.to_string())),
    }
}

/// Content as Cloudflare stores it: addresses in their canonical text (IPv6 compressed, lower
/// case), host names lower case without the trailing dot, text exactly as given.
fn normal_content(rtype: &str, content: &str) -> std::result::Result<String, String> {
    let normal = match rtype {
        "A" => content
            .trim()
            .parse::<Ipv4Addr>()
            .map(|a| a.to_string())
            .map_err(|_| format!("{content:?} is not an IPv4 address"))?,
        "AAAA" => content
            .trim()
            .parse::<Ipv6Addr>()
            .map(|a| a.to_string())
            .map_err(|_| format!("{content:?} is not an IPv6 address"))?,
        t if HOST_TYPES.contains(&t) => {
            let host = content.trim();
            check_name(host).map_err(|e| format!("(a host name) {e}"))?;
            bare(host)
        }
        _ => content.to_string(),
    };
    if normal.is_empty() {
        return Err("is empty".to_string());
    }
    Ok(normal)
}

fn ttl_of(inputs: &Attributes) -> Result<Option<u64>> {
    match inputs.get("ttl") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(ttl) if ttl == AUTO_TTL || (60..=86_400).contains(&ttl) => Ok(Some(ttl)),
            _ => Err(invalid(format!(
                "`ttl` must be 1 (automatic) or 60 to 86400 seconds, not {v}"
            ))),
        },
    }
}

fn proxied_of(inputs: &Attributes) -> Result<Option<bool>> {
    match inputs.get("proxied") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid("`proxied` must be true or false")),
    }
}

fn priority_of(inputs: &Attributes) -> Result<Option<u64>> {
    match inputs.get("priority") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(p) if p <= 65_535 => Ok(Some(p)),
            _ => Err(invalid(format!("`priority` must be 0 to 65535, not {v}"))),
        },
    }
}

fn comment_of(inputs: &Attributes) -> Result<Option<String>> {
    let Some(comment) = string_field(inputs, "comment")? else {
        return Ok(None);
    };
    let comment = comment.trim();
    if comment.contains(MARKER_PREFIX) {
        return Err(invalid(format!(
            "`comment` may not contain {MARKER_PREFIX:?}: fabrik writes its ownership marker there"
        )));
    }
    if comment.chars().any(char::is_control) {
        return Err(invalid("`comment` must be one line"));
    }
    Ok(Some(comment.to_string()))
}

/// Whether `comment` and the marker of `target` fit in a record's comment as [`stamp`] joins
/// them: the user's comment, a space, the marker.
fn check_room(comment: &str, target: Target<'_>) -> Result<()> {
    let marker = target.marker();
    let stored = stamp(comment, &marker).chars().count();
    if stored <= MAX_COMMENT {
        return Ok(());
    }
    let mark = marker.chars().count();
    if comment.is_empty() {
        return Err(invalid(format!(
            "fabrik's ownership marker `{marker}` is {mark} characters, more than the \
             {MAX_COMMENT} Cloudflare keeps in a record's comment: shorten the stack's or the \
             resource's name"
        )));
    }
    Err(invalid(format!(
        "`comment` is {} characters; with a space and fabrik's ownership marker `{marker}` \
         ({mark}) it would be {stored}, more than the {MAX_COMMENT} Cloudflare keeps: \
         shorten it to at most {}",
        comment.chars().count(),
        MAX_COMMENT.saturating_sub(mark + 1)
    )))
}

/// A name: lower case, without its trailing dot.
fn bare(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn check_name(name: &str) -> std::result::Result<(), String> {
    let stripped = name.strip_suffix('.').unwrap_or(name);
    if stripped.is_empty() {
        return Err("is empty".to_string());
    }
    if stripped.len() > 253 {
        return Err("is longer than 253 characters".to_string());
    }
    for label in stripped.split('.') {
        if label.is_empty() {
            return Err(format!("{name:?} has an empty label (two dots in a row)"));
        }
        if label.len() > 63 {
            return Err(format!("{name:?} has a label longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || *c == '"' || *c == '/')
        {
            return Err(format!("{name:?} contains {c:?}"));
        }
    }
    Ok(())
}

/// Which zone a change belongs to, for batching.
pub fn batch_key(inputs: &Attributes) -> Option<String> {
    zone_of(inputs).ok().flatten().map(|z| format!("zone {z}"))
}

/// Record calls, with the zone ids looked up once per client.
pub struct Records {
    zones: Mutex<HashMap<String, String>>,
    /// Held while a zone is looked up, so that calls running in parallel on a new zone ask
    /// Cloudflare once, not once each.
    lookup: Mutex<()>,
    /// Records per batch request.
    pub(crate) batch_size: usize,
}

impl Records {
    pub fn new(batch_size: usize) -> Records {
        Records {
            zones: Mutex::new(HashMap::new()),
            lookup: Mutex::new(()),
            batch_size,
        }
    }

    /// The zone's id (`GET /zones?name=`), cached.
    pub(crate) fn zone_id(&self, api: &Api, zone: &str) -> Result<String> {
        let cached = || {
            self.zones
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(zone)
                .cloned()
        };
        if let Some(id) = cached() {
            return Ok(id);
        }
        let _looking = self.lookup.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = cached() {
            return Ok(id);
        }
        let envelope = api.get("/zones", &[("name", zone)])?;
        let id = envelope
            .get("result")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|z| z.get("name").and_then(Value::as_str) == Some(zone))
            .and_then(|z| z.get("id").and_then(Value::as_str))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "zone {zone} is not in this Cloudflare account, or the token cannot see \
                         it (it needs Zone Read on the zone)"
                    ),
                )
            })?
            .to_string();
        self.zones
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(zone.to_string(), id.clone());
        Ok(id)
    }

    /// One record by id; `None` when it does not exist.
    fn get(&self, api: &Api, zone: &str, zone_id: &str, id: &str) -> Result<Option<Seen>> {
        let path = format!("/zones/{zone_id}/dns_records/{}", api::encode(id));
        match api.get(&path, &[]) {
            Ok(envelope) => Ok(envelope.get("result").and_then(|r| Seen::parse(zone, r))),
            Err(f) if f.status == Some(404) || f.has_code(&[MISSING]) => Ok(None),
            Err(f) => Err(f.into()),
        }
    }

    /// Every record of the zone, or those of one name and type, following the pages.
    pub(crate) fn list(
        &self,
        api: &Api,
        zone: &str,
        zone_id: &str,
        only: Option<(&str, &str)>,
    ) -> Result<Vec<Seen>> {
        let path = format!("/zones/{zone_id}/dns_records");
        let mut seen = Vec::new();
        let mut page = 1usize;
        let per_page = PAGE.to_string();
        loop {
            let page_text = page.to_string();
            let mut query = vec![
                ("page", page_text.as_str()),
                ("per_page", per_page.as_str()),
            ];
            if let Some((name, rtype)) = only {
                query.push(("name", name));
                query.push(("type", rtype));
            }
            let envelope = api.get(&path, &query)?;
            let result = envelope
                .get("result")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let count = result.len();
            seen.extend(result.iter().filter_map(|r| Seen::parse(zone, r)));
            let info = envelope.get("result_info");
            let number = |k: &str| info.and_then(|i| i.get(k)).and_then(Value::as_u64);
            let total = number("total_count").unwrap_or(0) as usize;
            let answered_per_page = number("per_page").unwrap_or(count as u64) as usize;
            if count == 0 || page.saturating_mul(answered_per_page) >= total {
                return Ok(seen);
            }
            page += 1;
        }
    }

    fn write(
        &self,
        api: &Api,
        method: Method,
        path: &str,
        body: &Value,
        zone: &str,
    ) -> std::result::Result<Seen, Failure> {
        let envelope = api.call(method, path, &[], Some(body))?;
        envelope
            .get("result")
            .and_then(|r| Seen::parse(zone, r))
            .ok_or_else(|| Failure {
                error: Error::new(
                    ErrorKind::Fatal,
                    format!("Cloudflare answered {method:?} {path} without the record"),
                ),
                status: None,
                codes: Vec::new(),
            })
    }

    pub fn read(&self, api: &Api, id: &str, inputs: &Attributes) -> Result<Option<Observed>> {
        let want = Record::from_inputs(inputs)?;
        let zone_id = match self.zone_id(api, &want.zone) {
            Ok(z) => z,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(self
            .get(api, &want.zone, &zone_id, id)?
            .map(|seen| seen.observed(&want)))
    }

    /// The record of this name and type carrying this resource's marker.
    pub fn find(
        &self,
        api: &Api,
        target: Target<'_>,
        inputs: &Attributes,
    ) -> Result<Option<Found>> {
        let want = Record::from_inputs(inputs)?;
        let zone_id = self.zone_id(api, &want.zone)?;
        Ok(self
            .list(api, &want.zone, &zone_id, Some((&want.name, &want.rtype)))?
            .into_iter()
            .find(|s| s.ours(target))
            .map(|s| Found {
                id: s.id.clone(),
                observed: s.observed(&want),
            }))
    }

    /// Creates the record. When Cloudflare says it already exists, the existing records of
    /// its name and type decide: ours (a create repeated after a lost answer) converges,
    /// anything else is a conflict that says how to take it over.
    pub fn create(&self, api: &Api, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        let want = Record::to_write(inputs, target)?;
        let zone_id = self.zone_id(api, &want.zone)?;
        let path = format!("/zones/{zone_id}/dns_records");
        match self.write(
            api,
            Method::Post,
            &path,
            &want.body(&target.marker()),
            &want.zone,
        ) {
            Ok(seen) => Ok(seen.applied()),
            Err(failure) if failure.has_code(&EXISTS) => {
                let existing =
                    self.list(api, &want.zone, &zone_id, Some((&want.name, &want.rtype)))?;
                if let Some(mine) = existing.iter().find(|s| s.ours(target)) {
                    return self.converge(api, target, &zone_id, mine, &want);
                }
                // A CNAME conflict involves records of other types at the name: show those.
                let in_the_way: Vec<Seen> = if existing.is_empty() {
                    self.list(api, &want.zone, &zone_id, None)?
                        .into_iter()
                        .filter(|s| s.record.name == want.name)
                        .collect()
                } else {
                    existing
                };
                let codes: Vec<String> = failure.codes.iter().map(u32::to_string).collect();
                let said = format!(
                    "Cloudflare answers that it already exists (code {})",
                    codes.join(", ")
                );
                Err(conflict(target, &want, &in_the_way, &said))
            }
            Err(failure) => Err(failure.into()),
        }
    }

    /// Makes our record `seen` match `want`, writing only when they differ.
    fn converge(
        &self,
        api: &Api,
        target: Target<'_>,
        zone_id: &str,
        seen: &Seen,
        want: &Record,
    ) -> Result<Applied> {
        if seen.record == *want {
            return Ok(seen.applied());
        }
        let path = format!("/zones/{zone_id}/dns_records/{}", api::encode(&seen.id));
        Ok(self
            .write(
                api,
                Method::Patch,
                &path,
                &want.body(&target.marker()),
                &want.zone,
            )?
            .applied())
    }

    /// Like [`Records::create`], but a record of this name and type without any fabrik marker
    /// is taken over: the identical one if there is one, else the only one. A record managed
    /// by another resource is never taken.
    pub fn adopt(&self, api: &Api, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        let want = Record::to_write(inputs, target)?;
        let zone_id = self.zone_id(api, &want.zone)?;
        let existing = self.list(api, &want.zone, &zone_id, Some((&want.name, &want.rtype)))?;
        if let Some(mine) = existing.iter().find(|s| s.ours(target)) {
            return self.converge(api, target, &zone_id, mine, &want);
        }
        let identical = existing.iter().find(|s| s.record.content == want.content);
        if let Some(other) = identical.filter(|s| s.marker.is_some()) {
            return Err(conflict(
                target,
                &want,
                std::slice::from_ref(other),
                "it is identical",
            ));
        }
        let unowned: Vec<&Seen> = existing.iter().filter(|s| s.marker.is_none()).collect();
        let chosen = match (identical, unowned.as_slice()) {
            (Some(same), _) => Some(same),
            (None, [only]) => Some(*only),
            (None, []) => None,
            (None, several) => {
                let ids: Vec<String> = several
                    .iter()
                    .map(|s| format!("{} ({})", s.id, s.record.content))
                    .collect();
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "cannot adopt {} {}: {} records of that name and type exist without a \
                         fabrik marker ({}); import the one this resource stands for \
                         (`fabrik import {} ID`)",
                        want.name,
                        want.rtype,
                        several.len(),
                        ids.join(", "),
                        target.name
                    ),
                ));
            }
        };
        match chosen {
            Some(seen) => {
                let path = format!("/zones/{zone_id}/dns_records/{}", api::encode(&seen.id));
                Ok(self
                    .write(
                        api,
                        Method::Patch,
                        &path,
                        &want.body(&target.marker()),
                        &want.zone,
                    )?
                    .applied())
            }
            None => self.create(api, target, inputs),
        }
    }

    /// Updates our record in place (PATCH: fields fabrik does not manage, such as tags, stay).
    /// A record gone behind fabrik's back is written again; one that is no longer ours is
    /// refused.
    pub fn update(
        &self,
        api: &Api,
        target: Target<'_>,
        id: &str,
        inputs: &Attributes,
    ) -> Result<Applied> {
        let want = Record::to_write(inputs, target)?;
        let zone_id = self.zone_id(api, &want.zone)?;
        match self.get(api, &want.zone, &zone_id, id)? {
            None => self.create(api, target, inputs),
            Some(seen) if !seen.ours(target) => Err(not_ours(target, &seen, "update")),
            Some(seen) => self.converge(api, target, &zone_id, &seen, &want),
        }
    }

    /// Deletes the record if it carries this resource's marker; anything else is left alone,
    /// and a record already gone is fine.
    pub fn delete(
        &self,
        api: &Api,
        target: Target<'_>,
        id: &str,
        inputs: &Attributes,
    ) -> Result<()> {
        let want = Record::from_inputs(inputs)?;
        let zone_id = match self.zone_id(api, &want.zone) {
            Ok(z) => z,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some(seen) = self.get(api, &want.zone, &zone_id, id)? else {
            return Ok(());
        };
        if !seen.ours(target) {
            return Ok(());
        }
        let path = format!("/zones/{zone_id}/dns_records/{}", api::encode(id));
        match api.call(Method::Delete, &path, &[], None) {
            Ok(_) => Ok(()),
            Err(f) if f.status == Some(404) || f.has_code(&[MISSING]) => Ok(()),
            Err(f) => Err(f.into()),
        }
    }

    /// Claims record `id` for this resource: stamps the marker after its comment and changes
    /// nothing else.
    pub fn import(
        &self,
        api: &Api,
        target: Target<'_>,
        id: &str,
        inputs: &Attributes,
    ) -> Result<Found> {
        let want = Record::from_inputs(inputs)?;
        let zone_id = self.zone_id(api, &want.zone)?;
        let seen = self.get(api, &want.zone, &zone_id, id)?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("there is no record {id} in zone {}", want.zone),
            )
        })?;
        if seen.ours(target) {
            return Ok(Found {
                id: seen.id.clone(),
                observed: seen.observed(&want),
            });
        }
        if let Some(other) = &seen.marker {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "record {id} ({}) is managed by fabrik as `{other}`, not `{}`; it can be \
                     imported only after that resource lets it go (`fabrik state rm`)",
                    seen.record.label(),
                    target.marker()
                ),
            ));
        }
        if seen.record.rtype != want.rtype || seen.record.name != want.name {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "record {id} is {} {}, but resource `{}` is {} {}: import the record it \
                     stands for",
                    seen.record.name, seen.record.rtype, target.name, want.name, want.rtype
                ),
            ));
        }
        // The contract's update schema wants type, name and content: send them as they are.
        let mut body = json!({
            "type": seen.record.rtype,
            "name": seen.record.name,
            "content": seen.record.content,
            "comment": stamp(&seen.record.comment, &target.marker()),
        });
        if let Some(p) = seen.record.priority {
            body["priority"] = json!(p);
        }
        let path = format!("/zones/{zone_id}/dns_records/{}", api::encode(id));
        let stamped = self.write(api, Method::Patch, &path, &body, &want.zone)?;
        Ok(Found {
            id: stamped.id.clone(),
            observed: stamped.observed(&want),
        })
    }
}

/// The conflict when a record is in the way of a create: who owns it, and how to take it over.
pub(crate) fn conflict(
    target: Target<'_>,
    want: &Record,
    in_the_way: &[Seen],
    said: &str,
) -> Error {
    let marker = target.marker();
    let describe = |s: &Seen| match &s.marker {
        Some(other) => format!(
            "{} ({}, managed by fabrik as `{other}`)",
            s.id,
            s.record.label()
        ),
        None => format!("{} ({}, not managed by fabrik)", s.id, s.record.label()),
    };
    let listed: Vec<String> = in_the_way.iter().map(describe).collect();
    // The identical record first: that is the one Cloudflare says is in the way.
    let unowned = |s: &&Seen| s.marker.is_none() && s.record.rtype == want.rtype;
    let importable = in_the_way
        .iter()
        .filter(unowned)
        .find(|s| s.record.content == want.content)
        .or_else(|| in_the_way.iter().find(unowned));
    let how = match importable {
        Some(s) => format!(
            " To manage it with fabrik, import it (`fabrik import {} {}`) or set `adopt: true` \
             on the resource; otherwise remove it or choose another name.",
            target.name, s.id
        ),
        None => " fabrik never changes a record it does not own; remove it or choose another name."
            .to_string(),
    };
    Error::new(
        ErrorKind::Conflict,
        format!(
            "cannot create {} for `{marker}`: {said}; in the way: {}.{how}",
            want.label(),
            if listed.is_empty() {
                "a record this token cannot list".to_string()
            } else {
                listed.join(", ")
            }
        ),
    )
}

pub(crate) fn not_ours(target: Target<'_>, seen: &Seen, doing: &str) -> Error {
    let whose = match &seen.marker {
        Some(other) => format!("it is managed by fabrik as `{other}`"),
        None => "it carries no fabrik marker".to_string(),
    };
    Error::new(
        ErrorKind::Conflict,
        format!(
            "cannot {doing} record {} ({}) for `{}`: {whose}; fabrik never changes a record it \
             does not own",
            seen.id,
            seen.record.label(),
            target.marker()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(value: Value) -> Attributes {
        value.as_object().unwrap().clone()
    }

    /// A resource whose marker, `fabrik:shop/frontend-www`, is 24 characters.
    fn target() -> Target<'static> {
        Target {
            stack: "shop",
            name: "frontend-www",
            type_name: RECORD_TYPE,
        }
    }

    #[test]
    fn normal_form() {
        let got = normalise(&attrs(json!({
            "zone": "Example.COM.", "name": "WWW", "type": "aaaa",
            "content": "2001:DB8:0:0:0:0:0:1",
        })))
        .unwrap();
        assert_eq!(
            Value::Object(got),
            json!({
                "zone": "example.com", "name": "www.example.com", "type": "AAAA",
                "content": "2001:db8::1", "ttl": 1, "proxied": false,
            })
        );
        for (name, fqdn) in [
            ("@", "example.com"),
            ("www.example.com", "www.example.com"),
            ("www.example.com.", "www.example.com"),
            ("a.b", "a.b.example.com"),
            ("*.dev", "*.dev.example.com"),
        ] {
            let got = normalise(&attrs(json!({
                "zone": "example.com", "name": name, "type": "TXT", "content": " as  given ",
            })))
            .unwrap();
            assert_eq!(got["name"], fqdn, "{name}");
            assert_eq!(got["content"], " as  given ");
        }
        let mx = normalise(&attrs(json!({
            "zone": "example.com", "name": "@", "type": "MX", "content": "Mail.Example.com.",
            "priority": 10, "ttl": 300, "comment": " mail ",
        })))
        .unwrap();
        assert_eq!(mx["content"], "mail.example.com");
        assert_eq!(mx["priority"], 10);
        assert_eq!(mx["comment"], "mail");
    }

    #[test]
    fn validation() {
        let bad = [
            json!({"type": "A", "content": "192.0.2.300"}),
            json!({"type": "AAAA", "content": "192.0.2.1"}),
            json!({"type": "SRV"}),
            json!({"type": "TXT", "priority": 5}),
            json!({"type": "TXT", "proxied": true}),
            json!({"ttl": 30}),
            json!({"ttl": 86_401}),
            json!({"ttl": "auto"}),
            json!({"priority": 70_000}),
            json!({"comment": "sneaky fabrik:other/x"}),
            json!({"comment": "x".repeat(81)}),
            json!({"zone": "example.com", "name": "www.other.com."}),
            json!({"name": "a..b"}),
            json!({"zone": "bad zone"}),
            json!({"content": ""}),
        ];
        for inputs in bad {
            match validate(target(), &attrs(inputs.clone())) {
                Err(e) => assert_eq!(e.kind, ErrorKind::InvalidInput, "{inputs}"),
                Ok(()) => panic!("{inputs} passed validation"),
            }
        }
        validate(target(), &attrs(json!({"type": "MX"}))).unwrap();
        let no_priority = json!({"zone": "example.com", "name": "@", "type": "MX", "content": "mail.example.com"});
        assert_eq!(
            normalise(&attrs(no_priority)).unwrap_err().kind,
            ErrorKind::InvalidInput
        );
        validate(
            target(),
            &attrs(json!({"type": "A", "proxied": true, "ttl": 1})),
        )
        .unwrap();
        validate(target(), &attrs(json!({"name": "www", "ttl": 86_400}))).unwrap();
    }

    /// Cloudflare keeps 100 characters of comment on the Free plan: the user's comment, a
    /// space and the marker must fit together, whatever the stack and resource are called.
    #[test]
    fn the_marker_counts_against_the_comment_limit() {
        let comment = |n: usize| attrs(json!({"comment": "x".repeat(n)}));
        // 75 + 1 + 24 = 100.
        validate(target(), &comment(75)).unwrap();
        let err = validate(target(), &comment(76)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert_eq!(
            err.message,
            "`comment` is 76 characters; with a space and fabrik's ownership marker \
             `fabrik:shop/frontend-www` (24) it would be 101, more than the 100 Cloudflare \
             keeps: shorten it to at most 75"
        );
        // Characters, not bytes.
        validate(target(), &attrs(json!({"comment": "é".repeat(75)}))).unwrap();

        // A short marker leaves more room; a long one may leave none.
        let short = Target {
            stack: "s",
            name: "w",
            ..target()
        };
        validate(short, &comment(89)).unwrap();
        let long = "n".repeat(95);
        let long = Target {
            name: &long,
            ..target()
        };
        let err = validate(long, &attrs(json!({"type": "A"}))).unwrap_err();
        assert!(err.message.contains("is 107 characters"), "{err}");
        assert!(
            err.message
                .contains("shorten the stack's or the resource's name"),
            "{err}"
        );

        // A comment known only at apply time is checked before anything is sent.
        let inputs = attrs(json!({
            "zone": "example.com", "name": "www", "type": "A", "content": "192.0.2.1",
            "comment": "x".repeat(76),
        }));
        assert!(Record::from_inputs(&inputs).is_ok());
        let err = Record::to_write(&inputs, target()).unwrap_err();
        assert!(err.message.contains("would be 101"), "{err}");
    }

    #[test]
    fn comments_carry_the_marker_after_the_users_text() {
        assert_eq!(stamp("", "fabrik:s/www"), "fabrik:s/www");
        assert_eq!(
            stamp("front door", "fabrik:s/www"),
            "front door fabrik:s/www"
        );
        assert_eq!(
            split_comment(Some("front door fabrik:s/www")),
            ("front door".to_string(), Some("fabrik:s/www".to_string()))
        );
        assert_eq!(
            split_comment(Some("fabrik:s/www")),
            (String::new(), Some("fabrik:s/www".to_string()))
        );
        assert_eq!(
            split_comment(Some("made by hand")),
            ("made by hand".to_string(), None)
        );
        assert_eq!(split_comment(None), (String::new(), None));
        assert_eq!(
            split_comment(Some("fabrik:")),
            ("fabrik:".to_string(), None)
        );
    }
}

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
//! The fields and their normal form are in `schema.rs`; many records at once (batches,
//! zone-wide reads) in `batch.rs`, on the same [`Records`].

use std::collections::HashMap;
use std::sync::Mutex;

use fabrik_provider::{
    Applied, Attributes, Error, ErrorKind, Found, Observed, Result, Target, Value,
};
use serde_json::json;

use crate::api::{self, Api, EXISTS, Failure, MISSING, Method};

mod batch;
mod schema;

use schema::{AUTO_TTL, normal_content, split_comment, stamp};
pub use schema::{RECORD_TYPE, Record, batch_key, normalise, resource_type, validate};

/// Records per page when listing a zone. Well under the schema's maximum, and the server may
/// answer fewer: paging follows `result_info`, not this number.
const PAGE: usize = 5_000;

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
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(zone)
                .cloned()
        };
        if let Some(id) = cached() {
            return Ok(id);
        }
        let _looking = self
            .lookup
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

//! Many records at once: a refresh lists each zone once instead of reading record by record,
//! and the changes of one zone go out through the batch endpoint
//! (`POST /zones/{zone_id}/dns_records/batch`) in chunks of `batch_size` records. Cloudflare's
//! budget of 1,200 requests per 5 minutes makes this the only way a large apply finishes.

use std::collections::HashMap;

use fabrik_provider::{
    Applied, Call, Change, Creation, Error, ErrorKind, Observed, Read, Result, Target, Value,
};
use serde_json::json;

use super::{Record, Records, Seen, conflict, not_ours};
use crate::api::{Api, Method};

impl Records {
    /// Reads many records, listing each zone once.
    pub fn read_many(&self, api: &Api, items: &[Read<'_>]) -> Vec<Result<Option<Observed>>> {
        let mut results: Vec<Option<Result<Option<Observed>>>> =
            items.iter().map(|_| None).collect();
        let mut recorded: Vec<Option<Record>> = items.iter().map(|_| None).collect();
        let mut by_zone: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            match Record::from_inputs(item.inputs) {
                Ok(want) => {
                    by_zone.entry(want.zone.clone()).or_default().push(i);
                    recorded[i] = Some(want);
                }
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        for (zone, members) in by_zone {
            let listed = self
                .zone_id(api, &zone)
                .and_then(|zone_id| self.list(api, &zone, &zone_id, None));
            match listed {
                Ok(records) => {
                    let by_id: HashMap<&str, &Seen> =
                        records.iter().map(|s| (s.id.as_str(), s)).collect();
                    for i in members {
                        let Some(want) = &recorded[i] else { continue };
                        results[i] = Some(Ok(by_id.get(items[i].id).map(|s| s.observed(want))));
                    }
                }
                Err(e) if e.kind == ErrorKind::NotFound => {
                    for i in members {
                        results[i] = Some(Ok(None));
                    }
                }
                Err(e) => {
                    for i in members {
                        results[i] = Some(Err(e.duplicate()));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every item has a result"))
            .collect()
    }

    /// What is in the way of records about to be created, listing each zone once: a record
    /// identical to one of them (Cloudflare would answer 81058), or one a CNAME cannot stand
    /// beside (a CNAME owns its name alone). A record of the resource's own (its create was
    /// made before, its answer lost) is not in the way.
    pub fn obstacles(&self, api: &Api, items: &[Creation<'_>]) -> Vec<Result<Option<String>>> {
        let mut by_zone: HashMap<String, Vec<(usize, Record)>> = HashMap::new();
        let mut results: Vec<Option<Result<Option<String>>>> = items.iter().map(|_| None).collect();
        for (i, item) in items.iter().enumerate() {
            match Record::from_inputs(item.inputs) {
                Ok(want) => by_zone
                    .entry(want.zone.clone())
                    .or_default()
                    .push((i, want)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        for (zone, members) in by_zone {
            let listed = self
                .zone_id(api, &zone)
                .and_then(|zone_id| self.list(api, &zone, &zone_id, None));
            for (i, want) in members {
                let target = items[i].target;
                results[i] = Some(match &listed {
                    Ok(records) => Ok(in_the_way(records, target, &want)),
                    // No such zone: the create says so itself.
                    Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e.duplicate()),
                });
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every item has a result"))
            .collect()
    }

    /// Applies changes of one zone through the batch endpoint: the zone is listed once, each
    /// call is checked against what is there (ownership, convergence), and what remains to be
    /// written goes out in chunks of `batch_size` records. A chunk is one transaction, so a
    /// refused chunk fails every call it carried and no other.
    pub fn apply_batch(&self, api: &Api, calls: &[Call<'_>]) -> Vec<Result<Option<Applied>>> {
        let mut results: Vec<Option<Result<Option<Applied>>>> =
            calls.iter().map(|_| None).collect();
        let mut by_zone: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, call) in calls.iter().enumerate() {
            let inputs = match call.change {
                Change::Create { inputs } | Change::Update { inputs, .. } => inputs,
                Change::Delete { inputs, .. } => inputs,
            };
            match Record::from_inputs(inputs) {
                Ok(want) => by_zone.entry(want.zone).or_default().push(i),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        for (zone, members) in by_zone {
            self.apply_zone(api, &zone, calls, &members, &mut results);
        }
        results
            .into_iter()
            .map(|r| r.expect("every call has a result"))
            .collect()
    }

    fn apply_zone(
        &self,
        api: &Api,
        zone: &str,
        calls: &[Call<'_>],
        members: &[usize],
        results: &mut [Option<Result<Option<Applied>>>],
    ) {
        let fail_all = |results: &mut [Option<Result<Option<Applied>>>], e: &Error| {
            for &i in members {
                results[i] = Some(Err(e.duplicate()));
            }
        };
        let listed = self
            .zone_id(api, zone)
            .and_then(|zone_id| Ok((self.list(api, zone, &zone_id, None)?, zone_id)));
        let (records, zone_id) = match listed {
            Ok(found) => found,
            Err(e) => return fail_all(results, &e),
        };
        let by_id: HashMap<&str, &Seen> = records.iter().map(|s| (s.id.as_str(), s)).collect();
        // What each call still needs written.
        let mut deletes: Vec<(usize, String)> = Vec::new();
        let mut patches: Vec<(usize, String, Record)> = Vec::new();
        let mut posts: Vec<(usize, Record)> = Vec::new();
        for &i in members {
            let call = &calls[i];
            let target = call.target;
            match call.change {
                Change::Delete { id, .. } => match by_id.get(id) {
                    Some(seen) if seen.ours(target) => deletes.push((i, id.to_string())),
                    // Gone already, or not ours: nothing to do, by the delete contract.
                    _ => results[i] = Some(Ok(None)),
                },
                Change::Create { inputs } | Change::Update { inputs, .. } => {
                    let want = match Record::to_write(inputs, target) {
                        Ok(w) => w,
                        Err(e) => {
                            results[i] = Some(Err(e));
                            continue;
                        }
                    };
                    let current = match call.change {
                        Change::Update { id, .. } => by_id.get(id).copied(),
                        _ => records.iter().find(|s| {
                            s.ours(target)
                                && s.record.name == want.name
                                && s.record.rtype == want.rtype
                        }),
                    };
                    match current {
                        Some(seen) if !seen.ours(target) => {
                            results[i] = Some(Err(not_ours(target, seen, "update")));
                        }
                        Some(seen) if seen.record == want => {
                            results[i] = Some(Ok(Some(seen.applied())));
                        }
                        Some(seen) => patches.push((i, seen.id.clone(), want)),
                        None => {
                            let identical = records.iter().find(|s| {
                                s.record.name == want.name
                                    && s.record.rtype == want.rtype
                                    && s.record.content == want.content
                            });
                            match identical {
                                Some(other) => {
                                    results[i] = Some(Err(conflict(
                                        target,
                                        &want,
                                        std::slice::from_ref(other),
                                        "an identical record already exists",
                                    )));
                                }
                                None => posts.push((i, want)),
                            }
                        }
                    }
                }
            }
        }
        // Deletes first (they may make room for a create), in chunks of `batch_size`.
        let ops: Vec<(usize, Op)> = deletes
            .into_iter()
            .map(|(i, id)| (i, Op::Delete(id)))
            .chain(
                patches
                    .into_iter()
                    .map(|(i, id, want)| (i, Op::Patch(id, want))),
            )
            .chain(posts.into_iter().map(|(i, want)| (i, Op::Post(want))))
            .collect();
        let path = format!("/zones/{zone_id}/dns_records/batch");
        for chunk in ops.chunks(self.batch_size.max(1)) {
            let mut body = json!({"deletes": [], "patches": [], "posts": []});
            for (i, op) in chunk {
                let marker = calls[*i].target.marker();
                let (key, entry) = match op {
                    Op::Delete(id) => ("deletes", json!({ "id": id })),
                    Op::Patch(id, want) => {
                        let mut entry = want.body(&marker);
                        entry["id"] = json!(id);
                        ("patches", entry)
                    }
                    Op::Post(want) => ("posts", want.body(&marker)),
                };
                if let Some(list) = body[key].as_array_mut() {
                    list.push(entry);
                }
            }
            match api.call(Method::Post, &path, &[], Some(&body)) {
                Ok(envelope) => {
                    let result = envelope.get("result").cloned().unwrap_or(Value::Null);
                    let mut patched = result["patches"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter();
                    let mut posted = result["posts"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter();
                    for (i, op) in chunk {
                        let written = match op {
                            Op::Delete(_) => {
                                results[*i] = Some(Ok(None));
                                continue;
                            }
                            Op::Patch(..) => patched.next(),
                            Op::Post(_) => posted.next(),
                        };
                        results[*i] = Some(
                            written
                                .and_then(|r| Seen::parse(zone, &r))
                                .map(|s| Some(s.applied()))
                                .ok_or_else(|| {
                                    Error::new(
                                        ErrorKind::Fatal,
                                        "Cloudflare's batch answer lacks a record it wrote",
                                    )
                                }),
                        );
                    }
                }
                Err(failure) => {
                    // A 5xx or a lost answer may come after the batch was committed: look, so
                    // that a change reported failed is one that was not made.
                    let unknown = failure.status.is_none_or(|s| s >= 500);
                    let now = if unknown {
                        self.list(api, zone, &zone_id, None).ok()
                    } else {
                        None
                    };
                    for (i, op) in chunk {
                        let target = calls[*i].target;
                        let made = now.as_deref().and_then(|now| settled(now, target, op));
                        results[*i] = Some(made.map_or_else(
                            || {
                                let mut error = failure.error.duplicate();
                                error.message.push_str(&format!(
                                " (the batch of {} changes it was part of was refused as a whole)",
                                chunk.len()
                            ));
                                Err(error)
                            },
                            Ok,
                        ));
                    }
                }
            }
        }
    }
}

/// A write a batch still has to make.
enum Op {
    Delete(String),
    Patch(String, Record),
    Post(Record),
}

/// Whether `op` is found made in the zone's records `now`: its result if so.
fn settled(now: &[Seen], target: Target<'_>, op: &Op) -> Option<Option<Applied>> {
    match op {
        Op::Delete(id) => (!now.iter().any(|s| &s.id == id)).then_some(None),
        Op::Patch(id, want) => now
            .iter()
            .find(|s| &s.id == id && s.ours(target) && s.record == *want)
            .map(|s| Some(s.applied())),
        Op::Post(want) => now
            .iter()
            .find(|s| s.ours(target) && s.record == *want)
            .map(|s| Some(s.applied())),
    }
}

/// Why `want` cannot be created among `records`, if it cannot.
fn in_the_way(records: &[Seen], target: Target<'_>, want: &Record) -> Option<String> {
    let at_name = || records.iter().filter(|s| s.record.name == want.name);
    if at_name().any(|s| s.ours(target) && s.record.rtype == want.rtype) {
        return None;
    }
    let identical: Vec<Seen> = at_name()
        .filter(|s| s.record.rtype == want.rtype && s.record.content == want.content)
        .cloned()
        .collect();
    if !identical.is_empty() {
        let said = "an identical record already exists";
        return Some(conflict(target, want, &identical, said).message);
    }
    let beside_cname: Vec<Seen> = at_name()
        .filter(|s| want.rtype == "CNAME" || s.record.rtype == "CNAME")
        .cloned()
        .collect();
    if !beside_cname.is_empty() {
        let said = "a CNAME cannot share its name with another record";
        return Some(conflict(target, want, &beside_cname, said).message);
    }
    None
}

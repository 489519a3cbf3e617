//! Many RRset changes of one zone as one PATCH, and many RRset reads as one zone read.
//!
//! A PowerDNS PATCH is atomic per zone: if the server refuses one RRset, it applies none, so a
//! refused PATCH fails every change it carried and a successful one made them all. Ownership is
//! checked per change against one read of the zone taken under the zone's lock, so a change that
//! may not be made fails alone and the others still go out.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use fabrik_provider::{Call, Change, Creation, Read};

use super::*;
use crate::api::{RRsetWrite, RecordInfo};

type Outcome = Result<Option<Applied>>;

/// An RRset's place in its zone: (name, type).
type Place = (String, String);

/// The RRsets of a zone that hold records, by (lower-case name, upper-case type); `None` when
/// the zone does not exist.
pub(super) fn zone_rrsets(
    api: &Api,
    zone: &str,
) -> Result<Option<HashMap<(String, String), RRsetInfo>>> {
    let info: ZoneInfo = match api.get(&zone_path(zone), &[]) {
        Ok(reply) => reply.json("a zone read")?,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(
        info.rrsets
            .into_iter()
            .filter(|r| !r.records.is_empty())
            .map(|r| {
                let key = (r.name.to_ascii_lowercase(), r.rtype.to_ascii_uppercase());
                (key, r)
            })
            .collect(),
    ))
}

/// The served RRsets of a zone from its zone-file export, by (lower-case name, upper-case type);
/// `None` when the zone does not exist. Reads use it: the export leaves out comments (which a
/// read does not need) and disabled records (which are not served), and PowerDNS produces it
/// several times faster than the JSON of a large zone.
fn zone_export(api: &Api, zone: &str) -> Result<Option<HashMap<(String, String), RRsetInfo>>> {
    #[derive(serde::Deserialize)]
    struct Export {
        zone: String,
    }
    // Asked for JSON (as every call is), PowerDNS wraps the zone file in `{"zone": …}`.
    let text = match api.get(&format!("{}/export", zone_path(zone)), &[]) {
        Ok(reply) => reply.json::<Export>("a zone export")?.zone,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let unreadable = |line: &str| {
        let shown: String = line.chars().take(120).collect();
        Error::new(
            ErrorKind::Fatal,
            format!("PowerDNS exported zone {zone} with a line fabrik cannot read: {shown:?}"),
        )
    };
    let mut rrsets: HashMap<(String, String), RRsetInfo> = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        // `<name>\t<ttl>\tIN\t<type>\t<content>`; the content may hold tabs and spaces.
        let mut fields = line.splitn(5, '\t');
        let (Some(name), Some(ttl), Some(_class), Some(rtype), Some(content)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(unreadable(line));
        };
        let ttl = ttl.parse().map_err(|_| unreadable(line))?;
        let key = (name.to_ascii_lowercase(), rtype.to_ascii_uppercase());
        let rrset = rrsets.entry(key).or_insert_with(|| RRsetInfo {
            name: name.to_string(),
            rtype: rtype.to_string(),
            ttl,
            records: Vec::new(),
            comments: Vec::new(),
        });
        rrset.records.push(RecordInfo {
            content: content.to_string(),
            disabled: false,
        });
    }
    Ok(Some(rrsets))
}

/// The same error again, for each change a failed request carried.
fn copy(e: &Error) -> Error {
    e.duplicate()
}

/// Where a call's RRset is: its zone, and its (name, type) there.
fn location(change: &Change<'_>) -> Result<(String, (String, String))> {
    locate(change).map(|(zone, key, _)| (zone, key))
}

/// Where a call's RRset is, with the RRset a create or update writes (read from its inputs
/// once, here).
fn locate(change: &Change<'_>) -> Result<(String, Place, Option<RRset>)> {
    if let Change::Delete { id, .. } = *change
        && let Some((zone, name, rtype)) = parse_id(id)
    {
        return Ok((zone, (name, rtype), None));
    }
    let inputs = match *change {
        Change::Create { inputs }
        | Change::Update { inputs, .. }
        | Change::Delete { inputs, .. } => inputs,
    };
    let want = RRset::from_inputs(inputs)?;
    let key = (want.name.clone(), want.rtype.clone());
    let write = matches!(change, Change::Create { .. } | Change::Update { .. });
    Ok((want.zone.clone(), key, write.then_some(want)))
}

/// Answers `items` zone by zone, in item order: `place` says which zone each item is in (and
/// what the zone's work needs of it), `in_zone` answers the items of one zone at once.
fn per_zone<T, P, R>(
    items: &[T],
    place: impl Fn(&T) -> Result<(String, P)>,
    mut in_zone: impl FnMut(&str, Vec<(usize, P)>) -> Vec<(usize, Result<R>)>,
) -> Vec<Result<R>> {
    let mut results: Vec<Option<Result<R>>> = (0..items.len()).map(|_| None).collect();
    let mut zones: HashMap<String, Vec<(usize, P)>> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        match place(item) {
            Ok((zone, at)) => zones.entry(zone).or_default().push((i, at)),
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    for (zone, members) in zones {
        for (i, answer) in in_zone(&zone, members) {
            results[i] = Some(answer);
        }
    }
    results
        .into_iter()
        .map(|r| r.expect("every item is answered"))
        .collect()
}

/// What one change of a batch comes to once the zone has been read.
enum Step {
    /// Decided without writing: refused, already as wanted, or nothing to delete.
    Done(Outcome),
    /// Goes out in the PATCH; `applied` is its result if the PATCH succeeds.
    Send {
        rrset: RRsetWrite,
        applied: Option<Applied>,
    },
}

impl Records {
    /// Makes the changes of `calls` with one zone read and one PATCH per zone.
    pub fn apply_batch(&self, api: &Api, calls: &[Call<'_>]) -> Vec<Outcome> {
        per_zone(
            calls,
            |call| locate(&call.change).map(|(zone, key, want)| (zone, (key, want))),
            |zone, members| self.apply_in_zone(api, zone, calls, members),
        )
    }

    fn apply_in_zone(
        &self,
        api: &Api,
        zone: &str,
        calls: &[Call<'_>],
        members: Vec<(usize, (Place, Option<RRset>))>,
    ) -> Vec<(usize, Outcome)> {
        let lock = self.zone_lock(zone);
        let _held = lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rrsets = match zone_rrsets(api, zone) {
            Ok(Some(rrsets)) => rrsets,
            Ok(None) => {
                return members
                    .iter()
                    .map(|(i, _)| match calls[*i].change {
                        Change::Delete { .. } => (*i, Ok(None)),
                        _ => (*i, Err(no_zone(zone))),
                    })
                    .collect();
            }
            Err(e) => {
                return members.iter().map(|(i, _)| (*i, Err(copy(&e)))).collect();
            }
        };
        // Two resources of one batch naming the same RRset would overwrite each other.
        let mut claimed: HashMap<(String, String), &str> = HashMap::with_capacity(members.len());
        let mut steps = Vec::with_capacity(members.len());
        for (i, (key, want)) in members {
            let call = &calls[i];
            let present = rrsets.get(&key);
            let step = match claimed.entry(key) {
                Entry::Occupied(taken) => {
                    let ((name, rtype), other) = (taken.key(), taken.get());
                    Step::Done(Err(Error::new(
                        ErrorKind::Conflict,
                        format!(
                            "RRset {name} {rtype} is also written by resource `{other}` in this \
                             run; an RRset belongs to one resource"
                        ),
                    )))
                }
                Entry::Vacant(free) => {
                    free.insert(call.target.name);
                    plan_step(call, present, want)
                }
            };
            steps.push((i, step));
        }
        let body: Vec<&RRsetWrite> = steps
            .iter()
            .filter_map(|(_, s)| match s {
                Step::Send { rrset, .. } => Some(rrset),
                Step::Done(_) => None,
            })
            .collect();
        let sent = if body.is_empty() {
            Ok(())
        } else {
            api.patch_rrsets(&zone_path(zone), &body).map(|_| ())
        };
        steps
            .into_iter()
            .map(|(i, step)| {
                let outcome = match (step, &sent) {
                    (Step::Done(outcome), _) => outcome,
                    (Step::Send { applied, .. }, Ok(())) => Ok(applied),
                    // Gone while we looked: a delete has nothing left to do.
                    (Step::Send { applied: None, .. }, Err(e)) if e.kind == ErrorKind::NotFound => {
                        Ok(None)
                    }
                    (Step::Send { .. }, Err(e)) if e.kind == ErrorKind::NotFound => {
                        Err(no_zone(zone))
                    }
                    (Step::Send { .. }, Err(e)) => Err(copy(e)),
                };
                (i, outcome)
            })
            .collect()
    }

    /// Reads the RRsets of `items` with one zone read per zone.
    pub fn read_many(&self, api: &Api, items: &[Read<'_>]) -> Vec<Result<Option<Observed>>> {
        let place = |item: &Read<'_>| {
            location(&Change::Delete {
                id: item.id,
                inputs: item.inputs,
            })
        };
        per_zone(items, place, |zone, members| {
            let rrsets = zone_export(api, zone);
            members
                .into_iter()
                .map(|(i, (name, rtype))| {
                    let seen = match &rrsets {
                        Err(e) => Err(copy(e)),
                        Ok(None) => Ok(None),
                        Ok(Some(rrsets)) => Ok(rrsets.get(&(name, rtype)).map(|info| {
                            let server = server_rrset(zone, info);
                            Observed {
                                inputs: observed_inputs(&server, info, items[i].inputs),
                                outputs: server.outputs(),
                            }
                        })),
                    };
                    (i, seen)
                })
                .collect()
        })
    }
}

impl Records {
    /// The RRsets in the place of records about to be created that are not theirs: one export
    /// per zone says which places are taken, and only then one full read (the comments) says
    /// whose. An RRset whose records are all disabled is not in the export; the create's own
    /// check still refuses it.
    pub fn obstacles(&self, api: &Api, items: &[Creation<'_>]) -> Vec<Result<Option<String>>> {
        // Grouped by zone alone: a zone that does not exist yet holds nothing, and its
        // records need not be read any further.
        let place = |item: &Creation<'_>| zone_of(item.inputs).map(|zone| (zone, ()));
        per_zone(items, place, |zone, members| {
            obstacles_in_zone(api, zone, items, &members)
        })
    }
}

fn obstacles_in_zone(
    api: &Api,
    zone: &str,
    items: &[Creation<'_>],
    members: &[(usize, ())],
) -> Vec<(usize, Result<Option<String>>)> {
    let nothing = || members.iter().map(|(i, ())| (*i, Ok(None))).collect();
    let fail = |e: &Error| members.iter().map(|(i, ())| (*i, Err(copy(e)))).collect();
    let taken = match zone_export(api, zone) {
        // A zone that does not exist yet (made in the same run) holds nothing.
        Ok(None) => return nothing(),
        Ok(Some(served)) => served,
        Err(e) => return fail(&e),
    };
    let wanted: Vec<(usize, Result<RRset>)> = members
        .iter()
        .map(|(i, ())| (*i, RRset::from_inputs(items[*i].inputs)))
        .collect();
    let place = |want: &RRset| (want.name.clone(), want.rtype.clone());
    if !wanted
        .iter()
        .any(|(_, want)| want.as_ref().is_ok_and(|w| taken.contains_key(&place(w))))
    {
        return wanted
            .into_iter()
            .map(|(i, want)| (i, want.map(|_| None)))
            .collect();
    }
    let rrsets = match zone_rrsets(api, zone) {
        Ok(Some(rrsets)) => rrsets,
        Ok(None) => return nothing(),
        Err(e) => return fail(&e),
    };
    wanted
        .into_iter()
        .map(|(i, want)| {
            let found = want.map(|want| {
                rrsets.get(&place(&want)).and_then(|info| {
                    refuse_unless_ours(info, &want, items[i].target, "create")
                        .err()
                        .map(|e| e.message)
                })
            });
            (i, found)
        })
        .collect()
}

/// Decides one change against the RRset the zone read found at its place.
/// `want`: the RRset a create or update writes, when already read from its inputs.
fn plan_step(call: &Call<'_>, present: Option<&RRsetInfo>, want: Option<RRset>) -> Step {
    let target = call.target;
    let write = |inputs: &Attributes, doing: &str| -> Step {
        let want = match want.map_or_else(|| RRset::from_inputs(inputs), Ok) {
            Ok(want) => want,
            Err(e) => return Step::Done(Err(e)),
        };
        if let Some(info) = present {
            if let Err(e) = refuse_unless_ours(info, &want, target, doing) {
                return Step::Done(Err(e));
            }
            // Ours already (a create repeated after a crash): converge on it.
            if doing == "create" && server_rrset(&want.zone, info) == want {
                return Step::Done(Ok(Some(Applied {
                    id: want.id(),
                    outputs: want.outputs(),
                    found: false,
                })));
            }
        }
        Step::Send {
            rrset: replace_rrset(target, &want, present),
            applied: Some(Applied {
                id: want.id(),
                outputs: want.outputs(),
                found: false,
            }),
        }
    };
    match call.change {
        Change::Create { inputs } => write(inputs, "create"),
        Change::Update { inputs, .. } => write(inputs, "update"),
        Change::Delete { .. } => match present {
            // Only what carries this resource's marker is deleted.
            Some(info) if info.carries(&target.marker()) => Step::Send {
                rrset: RRsetWrite::delete(&info.name, &info.rtype),
                applied: None,
            },
            _ => Step::Done(Ok(None)),
        },
    }
}

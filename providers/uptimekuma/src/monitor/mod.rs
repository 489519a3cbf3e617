//! `uptimekuma.monitor`: read, find, create, update and delete one monitor.
//!
//! Ownership: a monitor fabrik makes carries the line `fabrik:<stack>/<resource>` in its
//! description, written by the `add` that creates it (a tag would take a second call, and a
//! crash between the two would leave a monitor nobody can tell is fabrik's). Names are not
//! unique in Uptime Kuma, so a monitor is found by that line after a crash, never by its name;
//! one without it is never changed or deleted, and a create that meets one of the same name
//! stops with the way to take it over (`fabrik import`, `adopt: true`).
//!
//! `editMonitor` replaces the whole monitor: what it is not sent is reset (its notification
//! links among them). So an update fetches the monitor, changes the fields the spec changed
//! and sends it back whole, then reads it back to confirm. A delete of an id that does not
//! exist answers success, so a delete looks first and confirms after.

pub mod schema;

use std::collections::BTreeMap;

use fabrik_provider::{Applied, Attributes, Error, ErrorKind, Found, Observed, Result, Target};
use serde_json::{Map, Value, json};

use crate::api::{Api, id_of};
use schema::{new_monitor, observed, write};

/// The colour of tags fabrik makes (the UI's grey).
const TAG_COLOR: &str = "#4B5563";

/// Every monitor, by id.
fn list(api: &Api) -> Result<BTreeMap<i64, Value>> {
    // The list comes as a `monitorList` push just before the ack.
    api.call("getMonitorList", &[], &[])?;
    Ok(api.lists()?.monitors)
}

/// The monitor `id` as `getMonitor` gives it, after the list says it exists (`getMonitor` of an
/// unknown id answers a JavaScript error, not "not found").
fn get(api: &Api, id: i64) -> Result<Option<Map<String, Value>>> {
    if !list(api)?.contains_key(&id) {
        return Ok(None);
    }
    let answer = api.call("getMonitor", &[json!(id)], &[])?;
    match answer.get("monitor") {
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        _ => Err(Error::new(
            ErrorKind::Fatal,
            format!("Uptime Kuma answered `getMonitor {id}` without a monitor"),
        )),
    }
}

fn parse_id(id: &str) -> Result<i64> {
    id.trim().parse::<i64>().map_err(|_| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("{id:?} is not an Uptime Kuma monitor id (a number)"),
        )
    })
}

fn description(monitor: &Value) -> &str {
    monitor
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Whether the monitor's description carries `marker` on a line of its own.
fn carries(monitor: &Value, marker: &str) -> bool {
    description(monitor).lines().any(|l| l.trim() == marker)
}

/// The fabrik marker of another resource the monitor carries, if any.
fn foreign_marker(monitor: &Value, marker: &str) -> Option<String> {
    description(monitor)
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("fabrik:") && *l != marker)
        .map(str::to_string)
}

fn name_of(monitor: &Value) -> &str {
    monitor
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Values of the request a refusal must not quote.
fn secrets(inputs: &Attributes, push_token: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = push_token.map(str::to_string).into_iter().collect();
    if let Some(Value::String(p)) = inputs.get("basic_auth").and_then(|a| a.get("password")) {
        out.push(p.clone());
    }
    if let Some(Value::Object(h)) = inputs.get("headers") {
        out.extend(h.values().filter_map(Value::as_str).map(str::to_string));
    }
    if let Some(Value::String(body)) = inputs.get("body") {
        out.push(body.clone());
    }
    out
}

fn outputs(api: &Api, id: i64, monitor: &Value) -> Attributes {
    let mut out = Attributes::new();
    out.insert("id".into(), json!(id));
    if monitor.get("type").and_then(Value::as_str) == Some("push")
        && let Some(token) = monitor.get("pushToken").and_then(Value::as_str)
    {
        out.insert(
            "push_url".into(),
            json!(format!(
                "{}/api/push/{token}?status=up&msg=OK&ping=",
                api.address().base
            )),
        );
    }
    out
}

fn observe(api: &Api, id: i64, monitor: &Value, inputs: &Attributes) -> Observed {
    let mut seen = observed(monitor);
    seen.retain(|k, _| inputs.contains_key(k));
    // fabrik's own field: Uptime Kuma keeps nothing of it, so it is as the resource says.
    if let Some(own) = inputs.get(schema::PAUSE_DURING_CHANGES) {
        seen.insert(schema::PAUSE_DURING_CHANGES.into(), own.clone());
    }
    Observed {
        inputs: seen,
        outputs: outputs(api, id, monitor),
    }
}

pub fn read(api: &Api, id: &str, inputs: &Attributes) -> Result<Option<Observed>> {
    let id = parse_id(id)?;
    Ok(list(api)?.get(&id).map(|m| observe(api, id, m, inputs)))
}

/// Reads several monitors with one list.
pub fn read_many(api: &Api, items: &[(&str, &Attributes)]) -> Vec<Result<Option<Observed>>> {
    if items.is_empty() {
        return Vec::new();
    }
    let all = match list(api) {
        Ok(all) => all,
        Err(e) => return items.iter().map(|_| Err(e.duplicate())).collect(),
    };
    items
        .iter()
        .map(|(id, inputs)| {
            let id = parse_id(id)?;
            Ok(all.get(&id).map(|m| observe(api, id, m, inputs)))
        })
        .collect()
}

/// The monitor carrying this resource's marker.
///
/// # Errors
/// [`ErrorKind::Conflict`] when several carry it (someone cloned it in the UI).
pub fn find(api: &Api, target: Target<'_>, inputs: &Attributes) -> Result<Option<Found>> {
    let all = list(api)?;
    Ok(marked(&all, target)?.map(|(id, m)| Found {
        id: id.to_string(),
        observed: observe(api, id, m, inputs),
    }))
}

fn marked<'a>(
    all: &'a BTreeMap<i64, Value>,
    target: Target<'_>,
) -> Result<Option<(i64, &'a Value)>> {
    let marker = target.marker();
    let found: Vec<(i64, &Value)> = all
        .iter()
        .filter(|(_, m)| carries(m, &marker))
        .map(|(id, m)| (*id, m))
        .collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        many => Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "monitors {} all carry the marker `{marker}` (one was copied in the UI?); \
                 remove the marker from all but one",
                many.iter()
                    .map(|(id, _)| id.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// Monitors named as the resource's that carry no fabrik marker.
fn unmarked_namesakes(all: &BTreeMap<i64, Value>, inputs: &Attributes) -> Vec<i64> {
    let name = inputs
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    all.iter()
        .filter(|(_, m)| name_of(m) == name && foreign_marker(m, "").is_none())
        .map(|(id, _)| *id)
        .collect()
}

fn namesake_message(target: Target<'_>, inputs: &Attributes, ids: &[i64]) -> String {
    let name = inputs
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let marker = target.marker();
    format!(
        "cannot create monitor {name:?}: Uptime Kuma already has a monitor of that name (id {}) \
         that is not managed by fabrik (its description carries no `{marker}` line); fabrik \
         never takes it over by name. To manage it with fabrik, import it (`fabrik import {} {}`) \
         or set `adopt: true` on the resource; otherwise rename one of them",
        ids.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        target.name,
        ids[0],
    )
}

/// Why the monitor cannot be created: an unmarked monitor of the same name.
pub fn obstacle(api: &Api, target: Target<'_>, inputs: &Attributes) -> Result<Option<String>> {
    let all = list(api)?;
    if marked(&all, target)?.is_some() {
        return Ok(None);
    }
    let ids = unmarked_namesakes(&all, inputs);
    Ok((!ids.is_empty()).then(|| namesake_message(target, inputs, &ids)))
}

pub fn create(api: &Api, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
    let inputs = &schema::normalise(inputs)?;
    let all = list(api)?;
    // A create that runs again (a crash or a lost answer) takes over what the first made.
    if let Some((id, _)) = marked(&all, target)? {
        let applied = change(api, target, id, None, inputs)?;
        return Ok(Applied {
            found: true,
            ..applied
        });
    }
    let ids = unmarked_namesakes(&all, inputs);
    if !ids.is_empty() {
        return Err(Error::new(
            ErrorKind::Conflict,
            namesake_message(target, inputs, &ids),
        ));
    }
    add(api, target, inputs, &target.marker())
}

fn add(api: &Api, target: Target<'_>, inputs: &Attributes, description: &str) -> Result<Applied> {
    let token = (inputs.get("type").and_then(Value::as_str) == Some("push")).then(push_token);
    let monitor = new_monitor(inputs, description, token.as_deref())?;
    let secrets = secrets(inputs, token.as_deref());
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let answer = match api.call("add", &[Value::Object(monitor)], &secrets) {
        Ok(answer) => answer,
        Err(refused) => {
            // `add` stores the monitor before its links: a refused link leaves a monitor
            // carrying this resource's marker, which goes again (the create made nothing).
            if refused.kind == ErrorKind::InvalidInput
                && let Ok(all) = list(api)
                && let Ok(Some((id, _))) = marked(&all, target)
            {
                let _ = api.call("deleteMonitor", &[json!(id), json!(false)], &[]);
            }
            return Err(refused);
        }
    };
    let id = answer.get("monitorID").and_then(id_of).ok_or_else(|| {
        Error::new(
            ErrorKind::Fatal,
            "Uptime Kuma answered `add` without the new monitor's id",
        )
    })?;
    let finish = || {
        if let Some(Value::Object(tags)) = inputs.get("tags") {
            sync_tags(api, id, &[], tags)?;
        }
        confirm(api, target, id, inputs)
    };
    // A create reported as failed must have made nothing: the monitor goes again.
    finish().inspect_err(|_| {
        let _ = api.call("deleteMonitor", &[json!(id), json!(false)], &[]);
    })
}

/// Reads the monitor back and checks that it is as `inputs` say.
fn confirm(api: &Api, target: Target<'_>, id: i64, inputs: &Attributes) -> Result<Applied> {
    let all = list(api)?;
    let Some(monitor) = all.get(&id) else {
        return Err(Error::new(
            ErrorKind::Fatal,
            format!("monitor {id} is gone right after it was written"),
        ));
    };
    let seen = observe(api, id, monitor, inputs);
    let differ: Vec<&str> = inputs
        .iter()
        .filter(|(k, v)| seen.inputs.get(*k) != Some(v))
        .map(|(k, _)| k.as_str())
        .collect();
    if !differ.is_empty() {
        return Err(Error::new(
            ErrorKind::Fatal,
            format!(
                "Uptime Kuma did not keep {} of monitor {id} ({}) as sent",
                differ.join(", "),
                target.name
            ),
        ));
    }
    Ok(Applied {
        id: id.to_string(),
        outputs: seen.outputs,
        found: false,
    })
}

pub fn update(
    api: &Api,
    target: Target<'_>,
    id: &str,
    prior: &Attributes,
    inputs: &Attributes,
) -> Result<Applied> {
    let inputs = &schema::normalise(inputs)?;
    change(api, target, parse_id(id)?, Some(prior), inputs)
}

/// Fetches the monitor, checks it is this resource's, writes what changed into it and sends it
/// back whole; then its pause state and tags; then reads it back.
fn change(
    api: &Api,
    target: Target<'_>,
    id: i64,
    prior: Option<&Attributes>,
    inputs: &Attributes,
) -> Result<Applied> {
    let Some(mut monitor) = get(api, id)? else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("monitor {id} no longer exists in Uptime Kuma"),
        ));
    };
    let marker = target.marker();
    if !carries(&Value::Object(monitor.clone()), &marker) {
        return Err(not_ours(id, &marker, "change"));
    }
    let token = monitor
        .get("pushToken")
        .and_then(Value::as_str)
        .map(str::to_string);
    let original = monitor.clone();
    write(&mut monitor, inputs, prior)?;
    if inputs.get("type").and_then(Value::as_str) == Some("push") && token.is_none() {
        monitor.insert("pushToken".into(), json!(push_token()));
    }
    let secrets = secrets(inputs, token.as_deref());
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let rows = match original.get("tags") {
        Some(Value::Array(rows)) => rows.clone(),
        _ => Vec::new(),
    };
    let was_active = is_active(&Value::Object(original.clone()));
    let paused = inputs.get("paused").and_then(Value::as_bool) == Some(true);
    let finish = || {
        api.call("editMonitor", &[Value::Object(monitor)], &secrets)?;
        if paused == was_active {
            set_active(api, id, !paused)?;
        }
        if let Some(Value::Object(tags)) = inputs.get("tags") {
            sync_tags(api, id, &rows, tags)?;
        }
        confirm(api, target, id, inputs)
    };
    // A change reported as failed must have changed nothing. `editMonitor` saves the monitor
    // before it remakes the links, so even a refused edit may have changed it: the monitor as
    // it was goes back whole, its pause state and tags too (best effort: the error stands).
    finish().inspect_err(|_| {
        let _ = api.call("editMonitor", &[Value::Object(original.clone())], &secrets);
        if let Ok(Some(now)) = get(api, id) {
            let now = Value::Object(now);
            if is_active(&now) != was_active {
                let _ = set_active(api, id, was_active);
            }
            if let Some(Value::Array(current)) = now.get("tags") {
                let _ = sync_tags(api, id, current, &tag_map(&rows));
            }
        }
    })
}

/// Pauses an active monitor of this resource while what it watches changes; `false` when it
/// was paused already (by hand), so that the run leaves it so.
pub fn pause(api: &Api, target: Target<'_>, id: &str) -> Result<bool> {
    let id = parse_id(id)?;
    let Some(monitor) = get(api, id)? else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("monitor {id} no longer exists in Uptime Kuma"),
        ));
    };
    let monitor = Value::Object(monitor);
    if !carries(&monitor, &target.marker()) {
        return Err(not_ours(id, &target.marker(), "pause"));
    }
    if !is_active(&monitor) {
        return Ok(false);
    }
    set_active(api, id, false)?;
    Ok(true)
}

/// Resumes a monitor [`pause`] paused; one already active or gone needs nothing.
pub fn resume(api: &Api, target: Target<'_>, id: &str) -> Result<()> {
    let id = parse_id(id)?;
    let Some(monitor) = get(api, id)? else {
        return Ok(());
    };
    let monitor = Value::Object(monitor);
    if !carries(&monitor, &target.marker()) {
        return Err(not_ours(id, &target.marker(), "resume"));
    }
    if is_active(&monitor) {
        return Ok(());
    }
    set_active(api, id, true)
}

fn is_active(monitor: &Value) -> bool {
    monitor
        .get("active")
        .is_none_or(|a| a.as_bool() == Some(true) || a.as_i64() == Some(1))
}

fn set_active(api: &Api, id: i64, active: bool) -> Result<()> {
    let event = if active {
        "resumeMonitor"
    } else {
        "pauseMonitor"
    };
    api.call(event, &[json!(id)], &[]).map(|_| ())
}

/// Tag rows as the name → value map a spec writes.
fn tag_map(rows: &[Value]) -> Map<String, Value> {
    rows.iter()
        .filter_map(|r| {
            Some((
                r.get("name")?.as_str()?.to_string(),
                r.get("value").cloned().unwrap_or(json!("")),
            ))
        })
        .collect()
}

fn not_ours(id: i64, marker: &str, doing: &str) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!(
            "cannot {doing} monitor {id}: its description no longer carries `{marker}`, so \
             fabrik leaves it alone. Put the line back to manage it again, or remove the \
             resource from the state (`fabrik state rm`)"
        ),
    )
}

/// Makes the monitor's tag rows the `wanted` name → value pairs: tags are looked up by name
/// (names are not unique: the first is used) and made when missing.
fn sync_tags(api: &Api, id: i64, rows: &[Value], wanted: &Map<String, Value>) -> Result<()> {
    let have: Vec<(i64, String, String)> = rows
        .iter()
        .filter_map(|r| {
            Some((
                r.get("tag_id").and_then(id_of)?,
                r.get("name")?.as_str()?.to_string(),
                r.get("value")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            ))
        })
        .collect();
    let wanted: Vec<(String, String)> = wanted
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect();
    for (tag, name, value) in &have {
        if !wanted.iter().any(|(n, v)| n == name && v == value) {
            api.call(
                "deleteMonitorTag",
                &[json!(tag), json!(id), json!(value)],
                &[],
            )?;
        }
    }
    let missing: Vec<&(String, String)> = wanted
        .iter()
        .filter(|(n, v)| !have.iter().any(|(_, name, value)| name == n && value == v))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let answer = api.call("getTags", &[], &[])?;
    let mut tags: Vec<(i64, String)> = match answer.get("tags") {
        Some(Value::Array(tags)) => tags
            .iter()
            .filter_map(|t| {
                Some((
                    t.get("id").and_then(id_of)?,
                    t.get("name")?.as_str()?.into(),
                ))
            })
            .collect(),
        _ => Vec::new(),
    };
    for (name, value) in missing {
        let tag = match tags.iter().find(|(_, n)| n == name) {
            Some((tag, _)) => *tag,
            None => {
                let made = api.call("addTag", &[json!({"name": name, "color": TAG_COLOR})], &[])?;
                let tag = made
                    .get("tag")
                    .and_then(|t| t.get("id"))
                    .and_then(id_of)
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::Fatal,
                            "Uptime Kuma answered `addTag` without an id",
                        )
                    })?;
                tags.push((tag, name.clone()));
                tag
            }
        };
        api.call("addMonitorTag", &[json!(tag), json!(id), json!(value)], &[])?;
    }
    Ok(())
}

pub fn delete(api: &Api, target: Target<'_>, id: &str) -> Result<()> {
    let id = parse_id(id)?;
    let all = list(api)?;
    let Some(monitor) = all.get(&id) else {
        return Ok(());
    };
    if !carries(monitor, &target.marker()) {
        return Err(not_ours(id, &target.marker(), "delete"));
    }
    api.call("deleteMonitor", &[json!(id), json!(false)], &[])?;
    if list(api)?.contains_key(&id) {
        return Err(Error::new(
            ErrorKind::Transient,
            format!("Uptime Kuma said monitor {id} was deleted, but it is still listed"),
        ));
    }
    Ok(())
}

/// Takes over the monitor of this resource's name that carries no marker (`adopt: true`):
/// stamps the marker into its description and makes it match `inputs`. Without one, creates.
pub fn adopt(api: &Api, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
    let inputs = &schema::normalise(inputs)?;
    let all = list(api)?;
    if let Some((id, _)) = marked(&all, target)? {
        return change(api, target, id, None, inputs);
    }
    match unmarked_namesakes(&all, inputs).as_slice() {
        [] => add(api, target, inputs, &target.marker()),
        [id] => {
            stamp(api, target, *id)?;
            change(api, target, *id, None, inputs)
        }
        ids => Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "cannot adopt monitor {:?}: Uptime Kuma has several of that name (ids {}); \
                 import the one to manage by its id (`fabrik import {} ID`)",
                inputs
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                ids.iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                target.name
            ),
        )),
    }
}

/// Adds this resource's marker as a line of the monitor's description, changing nothing else.
fn stamp(api: &Api, target: Target<'_>, id: i64) -> Result<Map<String, Value>> {
    let Some(mut monitor) = get(api, id)? else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("Uptime Kuma has no monitor {id}; there is nothing to take over"),
        ));
    };
    let marker = target.marker();
    let whole = Value::Object(monitor.clone());
    if let Some(other) = foreign_marker(&whole, &marker) {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("monitor {id} belongs to another resource (its description says `{other}`)"),
        ));
    }
    if carries(&whole, &marker) {
        return Ok(monitor);
    }
    let text = description(&whole).trim_end().to_string();
    let text = if text.is_empty() {
        marker
    } else {
        format!("{text}\n{marker}")
    };
    monitor.insert("description".into(), json!(text));
    let secrets: Vec<String> = ["basic_auth_pass", "pushToken"]
        .iter()
        .filter_map(|k| monitor.get(*k).and_then(Value::as_str).map(str::to_string))
        .collect();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    api.call("editMonitor", &[Value::Object(monitor.clone())], &secrets)?;
    Ok(monitor)
}

/// Claims monitor `id` (`fabrik import`): stamps the marker, changes nothing else.
pub fn import(api: &Api, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<Found> {
    let number = parse_id(id)?;
    stamp(api, target, number)?;
    let all = list(api)?;
    let monitor = all.get(&number).ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            format!("monitor {number} is gone right after it was stamped"),
        )
    })?;
    let mut keys = inputs.clone();
    if keys.is_empty() {
        keys = observed(monitor);
    }
    Ok(Found {
        id: number.to_string(),
        observed: observe(api, number, monitor, &keys),
    })
}

/// A push token as the UI makes them: 32 letters and digits.
fn push_token() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the system's random source");
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

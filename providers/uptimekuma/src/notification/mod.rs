//! `uptimekuma.notification`: one notification (a webhook, a chat, a mail server) monitors can
//! send to.
//!
//! Uptime Kuma stores a notification as the object it was sent, JSON-stringified in `config`,
//! and sends it back verbatim in `notificationList`: the marker goes there as the key
//! `fabrikOwner`, written by the call that creates the notification. A notification without
//! this resource's marker is never changed or deleted. There is no read of one notification:
//! the list is pushed at login and after every change, and the session keeps it.

pub mod schema;

use fabrik_provider::{Applied, Attributes, Error, ErrorKind, Found, Observed, Result, Target};
use serde_json::{Map, Value, json};

use crate::api::{Api, id_of};
use schema::{MARKER_KEY, config_object, observed, secrets};

/// A notification as listed: its id, the list's entry and its parsed config.
type Listed = (i64, Value, Map<String, Value>);

fn parse_id(id: &str) -> Result<i64> {
    id.trim().parse::<i64>().map_err(|_| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("{id:?} is not an Uptime Kuma notification id (a number)"),
        )
    })
}

/// Every notification: id, the entry, its parsed config.
fn list(api: &Api) -> Result<Vec<Listed>> {
    Ok(api
        .lists()?
        .notifications
        .into_iter()
        .filter_map(|n| {
            let id = n.get("id").and_then(id_of)?;
            let config = match n.get("config") {
                Some(Value::String(text)) => match serde_json::from_str(text) {
                    Ok(Value::Object(c)) => c,
                    _ => Map::new(),
                },
                Some(Value::Object(c)) => c.clone(),
                _ => Map::new(),
            };
            Some((id, n, config))
        })
        .collect())
}

fn owner(config: &Map<String, Value>) -> Option<&str> {
    config.get(MARKER_KEY).and_then(Value::as_str)
}

fn observe(id: i64, entry: &Value, config: &Map<String, Value>, inputs: &Attributes) -> Observed {
    let mut seen = observed(entry, config, inputs);
    seen.retain(|k, _| inputs.contains_key(k));
    Observed {
        inputs: seen,
        outputs: [("id".to_string(), json!(id))].into_iter().collect(),
    }
}

pub fn read(api: &Api, id: &str, inputs: &Attributes) -> Result<Option<Observed>> {
    let id = parse_id(id)?;
    Ok(list(api)?
        .iter()
        .find(|(n, _, _)| *n == id)
        .map(|(id, entry, config)| observe(*id, entry, config, inputs)))
}

fn marked(all: &[Listed], target: Target<'_>) -> Result<Option<usize>> {
    let marker = target.marker();
    let found: Vec<usize> = (0..all.len())
        .filter(|&i| owner(&all[i].2) == Some(marker.as_str()))
        .collect();
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(Error::new(
            ErrorKind::Conflict,
            format!("several notifications carry the marker `{marker}`; keep one"),
        )),
    }
}

pub fn find(api: &Api, target: Target<'_>, inputs: &Attributes) -> Result<Option<Found>> {
    let all = list(api)?;
    Ok(marked(&all, target)?.map(|i| {
        let (id, entry, config) = &all[i];
        Found {
            id: id.to_string(),
            observed: observe(*id, entry, config, inputs),
        }
    }))
}

fn namesakes(all: &[Listed], inputs: &Attributes) -> Vec<i64> {
    let name = inputs
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    all.iter()
        .filter(|(_, entry, config)| {
            entry.get("name").and_then(Value::as_str) == Some(name) && owner(config).is_none()
        })
        .map(|(id, _, _)| *id)
        .collect()
}

fn namesake_message(target: Target<'_>, inputs: &Attributes, ids: &[i64]) -> String {
    let name = inputs
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    format!(
        "cannot create notification {name:?}: Uptime Kuma already has one of that name (id {}) \
         that is not managed by fabrik (its settings carry no `{MARKER_KEY}: {}`); fabrik never \
         takes it over by name. To manage it with fabrik, import it (`fabrik import {} {}`) or \
         set `adopt: true` on the resource; otherwise rename one of them",
        ids.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        target.marker(),
        target.name,
        ids[0]
    )
}

pub fn obstacle(api: &Api, target: Target<'_>, inputs: &Attributes) -> Result<Option<String>> {
    let all = list(api)?;
    if marked(&all, target)?.is_some() {
        return Ok(None);
    }
    let ids = namesakes(&all, inputs);
    Ok((!ids.is_empty()).then(|| namesake_message(target, inputs, &ids)))
}

pub fn create(api: &Api, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
    let inputs = &schema::normalise(inputs)?;
    let all = list(api)?;
    if let Some(i) = marked(&all, target)? {
        let (id, _, config) = &all[i];
        let applied = save(api, target, Some(*id), config.clone(), None, inputs)?;
        return Ok(Applied {
            found: true,
            ..applied
        });
    }
    let ids = namesakes(&all, inputs);
    if !ids.is_empty() {
        return Err(Error::new(
            ErrorKind::Conflict,
            namesake_message(target, inputs, &ids),
        ));
    }
    save(api, target, None, Map::new(), None, inputs)
}

/// `addNotification` with the config `inputs` make of `current`: a new one (`id` none) or a
/// replacement; then the list (pushed before the ack) is checked.
fn save(
    api: &Api,
    target: Target<'_>,
    id: Option<i64>,
    current: Map<String, Value>,
    prior: Option<&Attributes>,
    inputs: &Attributes,
) -> Result<Applied> {
    let config = config_object(current, prior, inputs, &target.marker());
    let secrets = secrets(inputs);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let answer = api.call(
        "addNotification",
        &[
            Value::Object(config),
            id.map_or(Value::Null, |id| json!(id)),
        ],
        &secrets,
    )?;
    let made = id.is_none();
    let id = answer.get("id").and_then(id_of).or(id).ok_or_else(|| {
        Error::new(
            ErrorKind::Fatal,
            "Uptime Kuma answered `addNotification` without an id",
        )
    })?;
    // A create reported as failed must have made nothing.
    confirm(api, target, id, inputs).inspect_err(|_| {
        if made {
            let _ = api.call("deleteNotification", &[json!(id)], &[]);
        }
    })
}

/// Reads the notification back from the pushed list and checks it is as `inputs` say.
fn confirm(api: &Api, target: Target<'_>, id: i64, inputs: &Attributes) -> Result<Applied> {
    let all = list(api)?;
    let Some((_, entry, config)) = all.iter().find(|(n, _, _)| *n == id) else {
        return Err(Error::new(
            ErrorKind::Fatal,
            format!("notification {id} is not listed right after it was saved"),
        ));
    };
    let seen = observe(id, entry, config, inputs);
    let differ: Vec<&str> = inputs
        .iter()
        .filter(|(k, v)| seen.inputs.get(*k) != Some(v))
        .map(|(k, _)| k.as_str())
        .collect();
    if !differ.is_empty() {
        return Err(Error::new(
            ErrorKind::Fatal,
            format!(
                "Uptime Kuma did not keep {} of notification {id} ({}) as sent",
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

fn not_ours(id: i64, target: Target<'_>, doing: &str) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!(
            "cannot {doing} notification {id}: its settings no longer carry `{MARKER_KEY}: {}` \
             (saved from the UI?), so fabrik leaves it alone. Import it again to manage it \
             (`fabrik import {} {id}`)",
            target.marker(),
            target.name
        ),
    )
}

pub fn update(
    api: &Api,
    target: Target<'_>,
    id: &str,
    prior: &Attributes,
    inputs: &Attributes,
) -> Result<Applied> {
    let inputs = &schema::normalise(inputs)?;
    let id = parse_id(id)?;
    let all = list(api)?;
    let Some((_, _, config)) = all.iter().find(|(n, _, _)| *n == id) else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("notification {id} no longer exists in Uptime Kuma"),
        ));
    };
    if owner(config) != Some(target.marker().as_str()) {
        return Err(not_ours(id, target, "change"));
    }
    save(api, target, Some(id), config.clone(), Some(prior), inputs)
}

pub fn delete(api: &Api, target: Target<'_>, id: &str) -> Result<()> {
    let id = parse_id(id)?;
    let all = list(api)?;
    let Some((_, _, config)) = all.iter().find(|(n, _, _)| *n == id) else {
        return Ok(());
    };
    if owner(config) != Some(target.marker().as_str()) {
        return Err(not_ours(id, target, "delete"));
    }
    match api.call("deleteNotification", &[json!(id)], &[]) {
        Ok(_) => Ok(()),
        Err(e) if e.message.contains("notification not found") => Ok(()),
        Err(e) => Err(e),
    }
}

/// Takes over the notification of this name that carries no marker, or creates one.
pub fn adopt(api: &Api, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
    let inputs = &schema::normalise(inputs)?;
    let all = list(api)?;
    if let Some(i) = marked(&all, target)? {
        let (id, _, config) = &all[i];
        return save(api, target, Some(*id), config.clone(), None, inputs);
    }
    match namesakes(&all, inputs).as_slice() {
        [] => save(api, target, None, Map::new(), None, inputs),
        [id] => {
            let (_, _, config) = all.iter().find(|(n, _, _)| n == id).expect("listed");
            save(api, target, Some(*id), config.clone(), None, inputs)
        }
        ids => Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "cannot adopt notification {:?}: Uptime Kuma has several of that name (ids \
                 {ids:?}); import the one to manage by its id (`fabrik import {} ID`)",
                inputs
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                target.name
            ),
        )),
    }
}

/// Claims notification `id` (`fabrik import`): adds the marker to its config, nothing else.
pub fn import(api: &Api, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<Found> {
    let number = parse_id(id)?;
    let all = list(api)?;
    let Some((_, entry, config)) = all.iter().find(|(n, _, _)| *n == number) else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("Uptime Kuma has no notification {number}; there is nothing to import"),
        ));
    };
    let marker = target.marker();
    match owner(config) {
        Some(m) if m == marker => {}
        Some(other) => {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("notification {number} belongs to another resource (`{other}`)"),
            ));
        }
        None => {
            let mut stamped = config.clone();
            stamped.insert(MARKER_KEY.into(), json!(marker));
            let secrets: Vec<String> = stamped
                .values()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
            api.call(
                "addNotification",
                &[Value::Object(stamped), json!(number)],
                &secrets,
            )?;
        }
    }
    let keys = if inputs.is_empty() {
        observed(entry, config, &Attributes::new())
    } else {
        inputs.clone()
    };
    let all = list(api)?;
    let (_, entry, config) = all.iter().find(|(n, _, _)| *n == number).ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            format!("notification {number} is gone"),
        )
    })?;
    Ok(Found {
        id: number.to_string(),
        observed: observe(number, entry, config, &keys),
    })
}

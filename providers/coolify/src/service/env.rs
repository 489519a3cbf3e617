//! The variables a `coolify.service` sets (`env`), written through `/services/{uuid}/envs`.
//!
//! A service has variables of its own (a template's `SERVICE_PASSWORD_*`, a compose's
//! `${VAR:-default}`): fabrik writes only the keys the spec names and never deletes the
//! others. Which keys it wrote is kept on the service itself, as a `fabrik-env: A,B` line of
//! its description beside the ownership marker: the state holds an `env` with a secret in it
//! only by its hash, so without that line neither a removed key nor a changed value could be
//! told on a refresh.
//!
//! Service rows have no preview twins, and a PATCH keeps the flags it is not sent; fabrik
//! sends the full flag set anyway, as for applications (`crate::env`).

use std::collections::{BTreeMap, BTreeSet};

use fabrik_provider::{ErrorKind, Result};
use serde_json::{Value, json};

use crate::api::{Api, encode_segment, text};

/// The description line that lists the keys fabrik wrote.
const KEYS_LINE: &str = "fabrik-env:";

/// One row of `GET /services/{uuid}/envs`: the application's row type, without preview twins.
pub use crate::env::Var as Row;

fn envs_path(uuid: &str) -> String {
    crate::env::envs_path("services", uuid)
}

pub fn list(api: &Api, uuid: &str) -> Result<Vec<Row>> {
    api.get(&envs_path(uuid), &[])?
        .json("the environment variables of a service")
}

/// The keys fabrik wrote, as the service's description lists them.
pub fn managed_keys(service: &Value) -> BTreeSet<String> {
    text(service, "description")
        .lines()
        .filter_map(|l| l.trim().strip_prefix(KEYS_LINE))
        .flat_map(|keys| keys.split(','))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect()
}

/// `description` with its keys line saying `keys` (none when there are none).
pub fn with_keys<'a>(description: &str, keys: impl IntoIterator<Item = &'a String>) -> String {
    let keys: Vec<&str> = keys.into_iter().map(String::as_str).collect();
    let mut lines: Vec<String> = description
        .lines()
        .filter(|l| !l.trim().starts_with(KEYS_LINE))
        .map(str::to_string)
        .collect();
    if !keys.is_empty() {
        lines.push(format!("{KEYS_LINE} {}", keys.join(",")));
    }
    lines.join("\n")
}

/// The values of `keys` as the service has them; `None` when a value is hidden from this
/// token, so nothing can be compared.
pub fn values_of(rows: &[Row], keys: &BTreeSet<String>) -> Option<BTreeMap<String, String>> {
    rows.iter()
        .filter(|r| keys.contains(&r.key))
        .map(|r| Some((r.key.clone(), r.value.clone()?)))
        .collect()
}

fn row(key: &str, value: &str) -> Value {
    json!({
        "key": key,
        "value": value,
        "is_literal": true,
        "is_multiline": value.contains('\n'),
        "is_shown_once": false,
    })
}

/// Writes the rows of `wanted` that differ and deletes those of `drop` that `wanted` leaves
/// out; every other row is left alone.
pub fn sync(
    api: &Api,
    uuid: &str,
    wanted: &BTreeMap<String, String>,
    drop: &BTreeSet<String>,
) -> Result<()> {
    let path = envs_path(uuid);
    let rows = list(api, uuid)?;
    for (key, value) in wanted {
        match rows.iter().find(|r| r.key == *key) {
            Some(r) if r.matches(value) => {}
            Some(_) => {
                api.patch(&path, &row(key, value))?;
            }
            None => match api.post(&path, &[], Some(&row(key, value))) {
                Ok(_) => {}
                // Made by a lost attempt after all: write it.
                Err(e) if matches!(e.kind, ErrorKind::Conflict | ErrorKind::Transient) => {
                    api.patch(&path, &row(key, value))?;
                }
                Err(e) => return Err(e),
            },
        }
    }
    for gone in rows
        .iter()
        .filter(|r| drop.contains(&r.key) && !wanted.contains_key(&r.key))
    {
        delete(api, uuid, &gone.uuid)?;
    }
    Ok(())
}

fn delete(api: &Api, uuid: &str, row: &str) -> Result<()> {
    match api.delete(&format!("{}/{}", envs_path(uuid), encode_segment(row)), &[]) {
        Ok(_) => Ok(()),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Puts the rows of `keys` back as `before` had them (value and flags), deleting those it
/// did not have: the undo of a [`sync`] of those keys.
pub fn put_back(api: &Api, uuid: &str, before: &[Row], keys: &BTreeSet<String>) -> Result<()> {
    let path = envs_path(uuid);
    let now = list(api, uuid)?;
    for key in keys {
        let was = before.iter().find(|r| r.key == *key);
        let is = now.iter().find(|r| r.key == *key);
        match (was, is) {
            (Some(was), _) => {
                let Some(value) = &was.value else { continue };
                let body = json!({
                    "key": key, "value": value, "is_literal": was.is_literal,
                    "is_multiline": was.is_multiline.unwrap_or(false),
                    "is_shown_once": was.is_shown_once.unwrap_or(false),
                });
                if is.is_some() {
                    api.patch(&path, &body)?;
                } else {
                    api.post(&path, &[], Some(&body))?;
                }
            }
            (None, Some(is)) => delete(api, uuid, &is.uuid)?,
            (None, None) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_line_is_kept_beside_the_marker() {
        let keys = ["B".to_string(), "A_1".to_string()];
        let d = with_keys("fabrik:s/r\nmade by hand", &keys);
        assert_eq!(d, "fabrik:s/r\nmade by hand\nfabrik-env: B,A_1");
        let service = json!({ "description": d });
        let got: Vec<String> = managed_keys(&service).into_iter().collect();
        assert_eq!(got, ["A_1", "B"]);
        assert_eq!(with_keys(&with_keys("fabrik:s/r", &keys), []), "fabrik:s/r");
    }
}

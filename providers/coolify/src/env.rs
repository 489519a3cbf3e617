//! An application's environment variables, made to match a map.
//!
//! Coolify keeps each variable twice: the variable and its preview twin (`is_preview: true`,
//! used by pull-request deployments), so rows are keyed on `(key, is_preview)` and never
//! deduplicated by key. Both rows of each key are written with the value, and both are deleted
//! when the key leaves the spec.
//!
//! Each write sends the full flag set: `PATCH /envs` resets any flag it is not sent
//! (`is_literal` to false, `is_multiline` and `is_shown_once` to null). Values are literal, so
//! Coolify does not expand `$` in them: the application sees what the spec says. The bulk
//! endpoint is not used: it is not atomic, never deletes, and drops fields it does not know.

use std::collections::BTreeMap;

use fabrik_provider::{ErrorKind, Result};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Api, encode_segment};

/// One row of `GET /applications/{uuid}/envs` (and of `/services/{uuid}/envs`, whose rows
/// have no preview twins: `is_preview` is false there).
#[derive(Debug, Clone, Deserialize)]
pub struct Var {
    pub uuid: String,
    pub key: String,
    /// Absent or null when the token may not read sensitive values.
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub is_preview: bool,
    #[serde(default)]
    pub is_literal: bool,
    #[serde(default)]
    pub is_multiline: Option<bool>,
    #[serde(default)]
    pub is_shown_once: Option<bool>,
}

impl Var {
    /// Whether this row already holds `value` with the flags fabrik writes.
    pub(crate) fn matches(&self, value: &str) -> bool {
        self.value.as_deref() == Some(value)
            && self.is_literal
            && self.is_multiline.unwrap_or(false) == value.contains('\n')
            && !self.is_shown_once.unwrap_or(false)
    }
}

/// The variables of the object `uuid` in `collection` (`applications`, `services`).
pub(crate) fn envs_path(collection: &str, uuid: &str) -> String {
    format!("/{collection}/{}/envs", encode_segment(uuid))
}

pub fn list(api: &Api, app: &str) -> Result<Vec<Var>> {
    api.get(&envs_path("applications", app), &[])?
        .json("the environment variables")
}

/// The variables (not their preview twins) as a map; `None` when a value is hidden from this
/// token, so nothing can be compared.
pub fn as_map(vars: &[Var]) -> Option<BTreeMap<String, String>> {
    vars.iter()
        .filter(|v| !v.is_preview)
        .map(|v| Some((v.key.clone(), v.value.clone()?)))
        .collect()
}

/// The full row fabrik writes for `key` = `value`.
fn row(key: &str, value: &str, is_preview: bool) -> Value {
    json!({
        "key": key,
        "value": value,
        "is_preview": is_preview,
        "is_literal": true,
        "is_multiline": value.contains('\n'),
        "is_shown_once": false,
    })
}

/// Makes the application's variables (and their twins) exactly `wanted`.
pub fn sync(api: &Api, app: &str, wanted: &BTreeMap<String, String>) -> Result<()> {
    let path = envs_path("applications", app);
    // The variables first, their twins second: creating a variable may create its twin.
    for is_preview in [false, true] {
        let rows = list(api, app)?;
        for (key, value) in wanted {
            let existing = rows
                .iter()
                .find(|r| r.key == *key && r.is_preview == is_preview);
            match existing {
                Some(r) if r.matches(value) => {}
                Some(_) => {
                    api.patch(&path, &row(key, value, is_preview))?;
                }
                None => match api.post(&path, &[], Some(&row(key, value, is_preview))) {
                    Ok(_) => {}
                    // It exists after all (made by a lost attempt, or as a twin): write it.
                    Err(e) if matches!(e.kind, ErrorKind::Conflict | ErrorKind::Transient) => {
                        api.patch(&path, &row(key, value, is_preview))?;
                    }
                    Err(e) => return Err(e),
                },
            }
        }
    }
    for gone in list(api, app)?
        .iter()
        .filter(|r| !wanted.contains_key(&r.key))
    {
        match api.delete(&format!("{path}/{}", encode_segment(&gone.uuid)), &[]) {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

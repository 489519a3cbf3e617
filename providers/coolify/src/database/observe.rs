//! What a read of a database reports: its inputs in the spec's normal form (only those the
//! spec has: the rest is Coolify's to choose) and its outputs. `internal_url` holds the
//! password; the engine keeps it as a secret because the type derives it from `password`.
//!
//! A database that is not up is reported with its status after its image (`postgres:16
//! (exited)`), so that a plan after an interrupted create, or after it stopped, starts it.

use fabrik_provider::{Attributes, ErrorKind, Observed, Result};
use serde_json::{Map, Value, json};

use super::schema::{self, ENGINES, credential_field};
use super::{Databases, backups, db_path, is_up, text};
use crate::application::schema::{Limits, limits_value};

impl Databases<'_> {
    pub(super) fn observe(&self, uuid: &str, db: &Value, inputs: &Attributes) -> Result<Observed> {
        let engine = engine_of(db);
        let mut seen = inputs.clone();
        if let Some(engine) = engine {
            seen.insert("engine".into(), json!(engine));
        }
        if inputs.contains_key("name") {
            seen.insert("name".into(), json!(text(db, "name")));
        }
        let status = text(db, "status");
        let image = text(db, "image");
        if is_up(status) {
            if inputs.contains_key("image") {
                seen.insert("image".into(), json!(image));
            }
        } else {
            let status = if status.is_empty() {
                "not running"
            } else {
                status
            };
            seen.insert("image".into(), json!(format!("{image} ({status})")));
        }
        for credential in ["user", "password", "root_password", "database"] {
            if !inputs.contains_key(credential) {
                continue;
            }
            let Some(field) = engine.and_then(|e| credential_field(e, credential)) else {
                continue;
            };
            let value = if field == "redis_password" {
                redis_password(self, uuid)?
            } else {
                db.get(field).and_then(Value::as_str).map(str::to_string)
            };
            // Hidden from a token without read:sensitive: nothing to compare, keep the spec's.
            if let Some(value) = value {
                seen.insert(credential.into(), json!(value));
            }
        }
        let public = db
            .get("is_public")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        match db.get("public_port").and_then(|p| {
            p.as_u64()
                .or_else(|| p.as_str().and_then(|s| s.parse().ok()))
        }) {
            Some(port) if public => {
                seen.insert("public_port".into(), json!(port));
            }
            _ => {
                seen.remove("public_port");
            }
        }
        let limit = |k: &str| Some(text(db, k).to_string()).filter(|v| !v.is_empty() && v != "0");
        let limits = Limits {
            memory: limit("limits_memory"),
            cpus: limit("limits_cpus"),
        };
        if limits != Limits::default() || inputs.contains_key("limits") {
            seen.insert("limits".into(), limits_value(&limits));
        }
        match backups::observed(self, uuid)? {
            Some(b) => {
                seen.insert("backups".into(), schema::backups_value(&b));
            }
            None => {
                seen.remove("backups");
            }
        }
        Ok(Observed {
            inputs: seen,
            outputs: outputs(uuid, db),
        })
    }
}

/// `standalone-postgresql` and the like, as the spec names the engine.
fn engine_of(db: &Value) -> Option<&'static str> {
    let kind = text(db, "database_type");
    let kind = kind.strip_prefix("standalone-").unwrap_or(kind);
    ENGINES.iter().find(|e| **e == kind).copied()
}

pub(super) fn outputs(uuid: &str, db: &Value) -> Attributes {
    let mut out = Map::new();
    out.insert("uuid".into(), json!(uuid));
    out.insert("internal_url".into(), json!(text(db, "internal_db_url")));
    out.insert("status".into(), json!(text(db, "status")));
    out
}

fn envs_path(uuid: &str) -> String {
    format!("{}/envs", db_path(uuid))
}

/// The value of Redis's `REDIS_PASSWORD` row; `None` when it is hidden or missing.
fn redis_password(dbs: &Databases<'_>, uuid: &str) -> Result<Option<String>> {
    let rows: Vec<Value> = match dbs.apps.api.get(&envs_path(uuid), &[]) {
        Ok(reply) => reply.json("the environment of a database")?,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(rows
        .iter()
        .find(|r| text(r, "key") == "REDIS_PASSWORD")
        .and_then(|r| r.get("value").and_then(Value::as_str))
        .map(str::to_string))
}

/// Writes Redis's password where Redis reads it (its `REDIS_PASSWORD` row, with the full
/// flag set); whether it changed.
pub(super) fn set_redis_password(dbs: &Databases<'_>, uuid: &str, password: &str) -> Result<bool> {
    if redis_password(dbs, uuid)?.as_deref() == Some(password) {
        return Ok(false);
    }
    dbs.apps.api.patch(
        &envs_path(uuid),
        &json!({
            "key": "REDIS_PASSWORD", "value": password, "is_literal": true,
            "is_multiline": false, "is_shown_once": false,
        }),
    )?;
    Ok(true)
}

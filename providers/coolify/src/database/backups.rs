//! A database's scheduled backups, made to match the spec's `backups`: one schedule when the
//! spec has one (the first Coolify lists is changed, any other deleted), none when it has
//! none. `save_s3` is always sent: an omitted one is stored true.

use fabrik_provider::{Error, ErrorKind, Result};
use serde_json::{Map, Value, json};

use super::schema::Backups;
use super::{Databases, db_path, text};
use crate::api::encode_segment;

fn backups_path(uuid: &str) -> String {
    format!("{}/backups", db_path(uuid))
}

fn list(dbs: &Databases<'_>, uuid: &str) -> Result<Vec<Value>> {
    match dbs.apps.api.get(&backups_path(uuid), &[]) {
        Ok(reply) => reply.json("the backups of a database"),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn number(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(|n| {
            n.as_u64()
                .or_else(|| n.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0)
}

/// The schedule fabrik manages, as the spec writes it; `None` when there is none.
pub(super) fn observed(dbs: &Databases<'_>, uuid: &str) -> Result<Option<Backups>> {
    let all = list(dbs, uuid)?;
    let Some(first) = all.first() else {
        return Ok(None);
    };
    let s3 = if first
        .get("save_s3")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        let storage = text(first, "s3_storage_uuid");
        let storages = s3_storages(dbs)?;
        Some(
            storages
                .iter()
                .find(|(_, u)| u == storage)
                .map_or_else(|| storage.to_string(), |(n, _)| n.clone()),
        )
    } else {
        None
    };
    Ok(Some(Backups {
        frequency: text(first, "frequency").to_string(),
        count: number(first, "database_backup_retention_amount_locally"),
        days: number(first, "database_backup_retention_days_locally"),
        s3,
    }))
}

/// The S3 storages: `(name, uuid)`.
fn s3_storages(dbs: &Databases<'_>) -> Result<Vec<(String, String)>> {
    let list: Vec<Value> = dbs
        .apps
        .api
        .get("/s3-storages", &[])?
        .json("the S3 storages")?;
    Ok(list
        .iter()
        .map(|s| (text(s, "name").to_string(), text(s, "uuid").to_string()))
        .collect())
}

/// What a create or a PATCH of the schedule sends.
fn body(dbs: &Databases<'_>, wanted: &Backups) -> Result<Value> {
    let mut body = Map::new();
    body.insert("frequency".into(), json!(wanted.frequency));
    body.insert("enabled".into(), json!(true));
    body.insert("save_s3".into(), json!(wanted.s3.is_some()));
    body.insert(
        "database_backup_retention_amount_locally".into(),
        json!(wanted.count),
    );
    body.insert(
        "database_backup_retention_days_locally".into(),
        json!(wanted.days),
    );
    if let Some(name) = &wanted.s3 {
        let storages = s3_storages(dbs)?;
        let uuid = storages
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, u)| u.clone())
            .ok_or_else(|| {
                let mut names: Vec<&str> = storages.iter().map(|(n, _)| n.as_str()).collect();
                names.sort_unstable();
                Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "`backups.s3`: Coolify has no S3 storage named {name:?}; its storages \
                         are: {}",
                        names.join(", ")
                    ),
                )
            })?;
        body.insert("s3_storage_uuid".into(), json!(uuid));
        body.insert(
            "database_backup_retention_amount_s3".into(),
            json!(wanted.count),
        );
        body.insert(
            "database_backup_retention_days_s3".into(),
            json!(wanted.days),
        );
    }
    Ok(Value::Object(body))
}

/// Makes the database's schedules exactly `wanted`.
pub(super) fn sync(dbs: &Databases<'_>, uuid: &str, wanted: Option<&Backups>) -> Result<()> {
    let all = list(dbs, uuid)?;
    let path = backups_path(uuid);
    let mut rest = all.iter();
    if let Some(wanted) = wanted {
        let body = body(dbs, wanted)?;
        match rest.next() {
            Some(first) => {
                let current = observed(dbs, uuid)?;
                if current.as_ref() != Some(wanted) {
                    dbs.apps.api.patch(
                        &format!("{path}/{}", encode_segment(text(first, "uuid"))),
                        &body,
                    )?;
                }
            }
            None => {
                dbs.apps.api.post(&path, &[], Some(&body))?;
            }
        }
    }
    for extra in rest {
        match dbs.apps.api.delete(
            &format!("{path}/{}", encode_segment(text(extra, "uuid"))),
            &[],
        ) {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

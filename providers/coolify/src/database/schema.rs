//! `coolify.database` as a spec writes it: the fields, their checks, their normal form, and
//! which of Coolify's per-engine fields each credential goes to.
//!
//! Credentials are written the same way for every engine (`user`, `password`,
//! `root_password`, `database`) and sent as the engine's own fields (`postgres_user`,
//! `mysql_root_password`, …); a credential the engine does not take is a spec error naming
//! the engine's, never a 422 halfway through an apply. `password` is required and sensitive:
//! fabrik knows the password (a generated secret works), and `internal_url`, which holds it,
//! is a secret wherever it goes.

use std::time::Duration;

use fabrik_provider::{
    Attributes, Field, FieldKind, OutputField, ReplaceStrategy, ResourceType, Result, Value,
};
use serde_json::json;

use crate::application::schema::{DEFAULT_ENVIRONMENT, Limits, limits_value, parse_limits};
use crate::inputs::{
    PLACE_FIELDS, check_strings, duration, invalid, is_masked, parse_duration, required, text,
    trim_strings,
};

pub const DATABASE_TYPE: &str = "coolify.database";

/// How long a database may take to become healthy unless the resource says otherwise.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(300);

/// The engines, as Coolify's create paths name them.
pub const ENGINES: [&str; 8] = [
    "postgresql",
    "mysql",
    "mariadb",
    "redis",
    "keydb",
    "dragonfly",
    "mongodb",
    "clickhouse",
];

/// The engines Coolify makes scheduled backups of.
pub const BACKED_UP: [&str; 5] = ["postgresql", "mysql", "mariadb", "mongodb", "clickhouse"];

/// The frequencies Coolify takes by name besides a cron expression.
const FREQUENCIES: [&str; 13] = [
    "every_minute",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "yearly",
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
    "@midnight",
];

/// The credential fields of a spec, in the order messages name them.
const CREDENTIALS: [&str; 4] = ["user", "password", "root_password", "database"];

/// Coolify's field for each credential of `engine` (`None`: the engine has no such thing).
pub fn credential_field(engine: &str, credential: &str) -> Option<&'static str> {
    let field = match (engine, credential) {
        ("postgresql", "user") => "postgres_user",
        ("postgresql", "password") => "postgres_password",
        ("postgresql", "database") => "postgres_db",
        ("mysql", "user") => "mysql_user",
        ("mysql", "password") => "mysql_password",
        ("mysql", "root_password") => "mysql_root_password",
        ("mysql", "database") => "mysql_database",
        ("mariadb", "user") => "mariadb_user",
        ("mariadb", "password") => "mariadb_password",
        ("mariadb", "root_password") => "mariadb_root_password",
        ("mariadb", "database") => "mariadb_database",
        ("redis", "password") => "redis_password",
        ("keydb", "password") => "keydb_password",
        ("dragonfly", "password") => "dragonfly_password",
        ("mongodb", "user") => "mongo_initdb_root_username",
        ("mongodb", "password") => "mongo_initdb_root_password",
        ("mongodb", "database") => "mongo_initdb_database",
        ("clickhouse", "user") => "clickhouse_admin_user",
        ("clickhouse", "password") => "clickhouse_admin_password",
        _ => return None,
    };
    Some(field)
}

/// Credentials `POST /databases/mongodb` does not take (the contract leaves them out): they
/// are written by a PATCH before the first start.
pub fn set_after_create(field: &str) -> bool {
    matches!(
        field,
        "mongo_initdb_root_password" | "mongo_initdb_database"
    )
}

pub fn resource_type() -> ResourceType {
    ResourceType {
        name: DATABASE_TYPE,
        description: "A database on a Coolify server (PostgreSQL, MySQL, MariaDB, Redis, KeyDB, \
                      Dragonfly, MongoDB or ClickHouse), started and waited for until healthy, \
                      with its scheduled backups",
        fields: vec![
            Field::required(
                "engine",
                FieldKind::String,
                "postgresql, mysql, mariadb, redis, keydb, dragonfly, mongodb or clickhouse.",
            )
            .one_of(&[
                "postgresql",
                "postgres",
                "mysql",
                "mariadb",
                "redis",
                "keydb",
                "dragonfly",
                "mongodb",
                "mongo",
                "clickhouse",
            ])
            .force_new(),
            Field::required(
                "project",
                FieldKind::String,
                "The project's name; created when missing.",
            )
            .force_new(),
            Field::optional(
                "environment",
                FieldKind::String,
                "The environment's name in the project (default \"production\"); created when missing.",
            )
            .force_new(),
            Field::required(
                "server",
                FieldKind::String,
                "The name of the server it runs on; it must exist.",
            )
            .force_new(),
            Field::optional(
                "destination",
                FieldKind::String,
                "The server's Docker network destination, by name (needed when it has several).",
            )
            .force_new(),
            Field::optional(
                "name",
                FieldKind::String,
                "The database's name in Coolify (default: the resource's name).",
            ),
            Field::optional(
                "image",
                FieldKind::String,
                "The engine's image with its tag, such as \"postgres:16-alpine\" (default: Coolify's).",
            ),
            Field::optional(
                "user",
                FieldKind::String,
                "The user it is created with (not for redis, keydb, dragonfly).",
            ),
            Field::required(
                "password",
                FieldKind::String,
                "The user's password, from a secret.",
            )
            .sensitive(),
            Field::optional(
                "root_password",
                FieldKind::String,
                "The root password (mysql and mariadb only), from a secret.",
            )
            .sensitive(),
            Field::optional(
                "database",
                FieldKind::String,
                "The database created at first start (postgresql, mysql, mariadb, mongodb).",
            ),
            Field::optional(
                "public_port",
                FieldKind::Integer,
                "A port of the server (1024 to 65535) it is published on; private when left out.",
            ),
            Field::optional(
                "limits",
                FieldKind::Map,
                "Resource limits: { memory: \"512m\", cpus: \"0.5\" }.",
            ),
            Field::optional(
                "backups",
                FieldKind::Map,
                "Scheduled backups: { frequency, retention: { count, days }, s3 }.",
            ),
            Field::optional(
                "delete_volumes",
                FieldKind::Boolean,
                "Whether a delete takes its data volumes too (default false: the database is deleted and its volumes are kept on the server).",
            ),
            Field::optional(
                "start_timeout",
                FieldKind::String,
                "How long it may take to become healthy before the change fails (default \"5m\").",
            ),
        ],
        outputs: vec![
            OutputField::new("uuid", "The database's uuid in Coolify."),
            OutputField::new(
                "internal_url",
                "Its URL inside the server's network, password included (a secret).",
            )
            .derived_from(&["password"]),
            OutputField::new(
                "status",
                "Its container status, such as \"running:healthy\".",
            ),
        ],
        // The new database starts empty: nothing is gained by keeping the old one running
        // beside it, and its delete is the step that may be refused (see `delete_volumes`).
        replace: ReplaceStrategy::DestroyBeforeCreate,
    }
}

/// A scheduled backup as the spec writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backups {
    pub frequency: String,
    /// How many backups are kept (0: no limit).
    pub count: u64,
    /// For how many days (0: no limit).
    pub days: u64,
    /// The S3 storage's name, when backups also go there.
    pub s3: Option<String>,
}

/// One database as the (normalised) inputs describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub engine: String,
    pub project: String,
    pub environment: String,
    pub server: String,
    pub destination: Option<String>,
    pub name: Option<String>,
    pub image: Option<String>,
    /// Coolify's credential fields and their values; a secret known only by its hash (read
    /// from the state) is left out: it cannot be written back.
    pub credentials: Vec<(&'static str, String)>,
    pub public_port: Option<u64>,
    pub limits: Limits,
    pub backups: Option<Backups>,
    pub delete_volumes: bool,
    pub start_timeout: Duration,
}

/// Checks what is known of the inputs, naming the field at fault.
pub fn validate(inputs: &Attributes) -> Result<()> {
    let engine = match inputs.get("engine") {
        Some(v) => Some(parse_engine(v)?),
        None => None,
    };
    check_strings(inputs, &PLACE_FIELDS)?;
    check_strings(inputs, &["image", "user", "database"])?;
    if let Some(engine) = engine {
        for credential in CREDENTIALS {
            if inputs.contains_key(credential) && credential_field(engine, credential).is_none() {
                let takes: Vec<String> = CREDENTIALS
                    .iter()
                    .filter(|c| credential_field(engine, c).is_some())
                    .map(|c| format!("`{c}`"))
                    .collect();
                return Err(invalid(format!(
                    "`{credential}`: a {engine} database takes only {} as credentials",
                    takes.join(", ")
                )));
            }
        }
        if inputs.contains_key("backups") && !BACKED_UP.contains(&engine) {
            return Err(invalid(format!(
                "`backups`: Coolify makes scheduled backups of {} databases only, not {engine}",
                BACKED_UP.join(", ")
            )));
        }
    }
    if let Some(p) = inputs.get("password").filter(|v| !is_masked(v)) {
        match p.as_str() {
            Some(s) if !s.is_empty() => {}
            _ => return Err(invalid("`password` must be a non-empty string")),
        }
    }
    if let Some(port) = inputs.get("public_port") {
        parse_port(port)?;
    }
    if let Some(limits) = inputs.get("limits") {
        parse_limits(limits)?;
    }
    if let Some(backups) = inputs.get("backups") {
        parse_backups(backups)?;
    }
    if let Some(t) = inputs.get("start_timeout") {
        parse_duration("start_timeout", t)?;
    }
    Ok(())
}

/// The inputs in normal form: names trimmed, the engine in lower case, the default
/// environment filled in, backups with their retention written out.
pub fn normalise(inputs: &Attributes) -> Result<Attributes> {
    validate(inputs)?;
    let mut out = inputs.clone();
    trim_strings(&mut out, &PLACE_FIELDS);
    trim_strings(&mut out, &["image"]);
    if let Some(engine) = inputs.get("engine") {
        out.insert("engine".into(), json!(parse_engine(engine)?));
    }
    out.entry("environment")
        .or_insert_with(|| json!(DEFAULT_ENVIRONMENT));
    if let Some(port) = inputs.get("public_port") {
        out.insert("public_port".into(), json!(parse_port(port)?));
    }
    if let Some(limits) = inputs.get("limits") {
        out.insert("limits".into(), limits_value(&parse_limits(limits)?));
    }
    if let Some(backups) = inputs.get("backups") {
        out.insert("backups".into(), backups_value(&parse_backups(backups)?));
    }
    if let Some(t) = inputs.get("start_timeout") {
        let d = parse_duration("start_timeout", t)?;
        out.insert("start_timeout".into(), json!(format!("{}s", d.as_secs())));
    }
    Ok(out)
}

impl Desired {
    /// The database the inputs describe; anything that does not parse is
    /// [`ErrorKind::InvalidInput`].
    pub fn from_inputs(inputs: &Attributes) -> Result<Desired> {
        let text = |field: &str| text(inputs, field);
        let required = |field: &str| required(inputs, field);
        let engine = parse_engine(
            inputs
                .get("engine")
                .ok_or_else(|| invalid("`engine` is required"))?,
        )?;
        let mut credentials = Vec::new();
        for credential in CREDENTIALS {
            let Some(value) = inputs.get(credential) else {
                continue;
            };
            let field = credential_field(engine, credential).ok_or_else(|| {
                invalid(format!(
                    "`{credential}`: a {engine} database does not take it"
                ))
            })?;
            if is_masked(value) {
                continue;
            }
            let value = value
                .as_str()
                .ok_or_else(|| invalid(format!("`{credential}` must be a string")))?;
            credentials.push((field, value.to_string()));
        }
        Ok(Desired {
            engine: engine.to_string(),
            project: required("project")?,
            environment: text("environment")?.unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_string()),
            server: required("server")?,
            destination: text("destination")?,
            name: text("name")?,
            image: text("image")?,
            credentials,
            public_port: inputs.get("public_port").map(parse_port).transpose()?,
            limits: inputs
                .get("limits")
                .map(parse_limits)
                .transpose()?
                .unwrap_or_default(),
            backups: inputs.get("backups").map(parse_backups).transpose()?,
            delete_volumes: inputs
                .get("delete_volumes")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            start_timeout: duration(inputs, "start_timeout", DEFAULT_START_TIMEOUT)?,
        })
    }

    /// The settings a create and a PATCH both send (credentials apart).
    pub fn settings(&self, fallback_name: &str) -> serde_json::Map<String, Value> {
        let mut body = serde_json::Map::new();
        body.insert(
            "name".into(),
            json!(self.name.as_deref().unwrap_or(fallback_name)),
        );
        if let Some(image) = &self.image {
            body.insert("image".into(), json!(image));
        }
        // `is_public` without a port is stored false: both, or neither.
        body.insert("is_public".into(), json!(self.public_port.is_some()));
        if let Some(port) = self.public_port {
            body.insert("public_port".into(), json!(port));
        }
        body.insert(
            "limits_memory".into(),
            json!(self.limits.memory.as_deref().unwrap_or("0")),
        );
        body.insert(
            "limits_cpus".into(),
            json!(self.limits.cpus.as_deref().unwrap_or("0")),
        );
        body
    }
}

fn parse_engine(value: &Value) -> Result<&'static str> {
    let text = value
        .as_str()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    // Spellings people use for two of them.
    let text = match text.as_str() {
        "postgres" => "postgresql".to_string(),
        "mongo" => "mongodb".to_string(),
        _ => text,
    };
    ENGINES
        .iter()
        .find(|e| **e == text)
        .copied()
        .ok_or_else(|| {
            invalid(format!(
                "`engine` must be one of {}, not {value}",
                ENGINES.join(", ")
            ))
        })
}

fn parse_port(value: &Value) -> Result<u64> {
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
        .filter(|p| (1024..=65_535).contains(p))
        .ok_or_else(|| {
            invalid(format!(
                "`public_port` must be a port from 1024 to 65535, not {value}"
            ))
        })
}

fn parse_backups(value: &Value) -> Result<Backups> {
    let Some(map) = value.as_object() else {
        return Err(invalid(
            "`backups` must be a map: { frequency, retention: { count, days }, s3 }",
        ));
    };
    for key in map.keys() {
        if !["frequency", "retention", "s3"].contains(&key.as_str()) {
            return Err(invalid(format!(
                "`backups.{key}` is not a field of `backups` (frequency, retention, s3)"
            )));
        }
    }
    let frequency = map
        .get("frequency")
        .and_then(Value::as_str)
        .map(|f| f.split_whitespace().collect::<Vec<_>>().join(" "))
        .ok_or_else(|| {
            invalid("`backups.frequency` is required: daily, weekly, … or a cron expression")
        })?;
    if !FREQUENCIES.contains(&frequency.as_str()) && !is_cron(&frequency) {
        return Err(invalid(format!(
            "`backups.frequency` must be a cron expression of five fields or one of {}, not {frequency:?}",
            FREQUENCIES[..6].join(", ")
        )));
    }
    let (mut count, mut days) = (0, 0);
    match map.get("retention") {
        None | Some(Value::Null) => {}
        Some(Value::Object(retention)) => {
            for (key, v) in retention {
                let n = v
                    .as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .ok_or_else(|| {
                        invalid(format!("`backups.retention.{key}` must be a whole number"))
                    })?;
                match key.as_str() {
                    "count" => count = n,
                    "days" => days = n,
                    other => {
                        return Err(invalid(format!(
                            "`backups.retention.{other}` is not a field of `retention` (count, days)"
                        )));
                    }
                }
            }
        }
        Some(_) => {
            return Err(invalid(
                "`backups.retention` must be a map: { count, days }",
            ));
        }
    }
    let s3 = match map.get("s3") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(_) => return Err(invalid("`backups.s3` must be the name of an S3 storage")),
    };
    Ok(Backups {
        frequency,
        count,
        days,
        s3,
    })
}

/// Five fields of digits, `*`, `/`, `,` and `-`.
fn is_cron(text: &str) -> bool {
    let fields: Vec<&str> = text.split(' ').collect();
    fields.len() == 5
        && fields.iter().all(|f| {
            !f.is_empty()
                && f.chars()
                    .all(|c| c.is_ascii_digit() || matches!(c, '*' | '/' | ',' | '-'))
        })
}

pub fn backups_value(b: &Backups) -> Value {
    let mut v = json!({
        "frequency": b.frequency,
        "retention": { "count": b.count, "days": b.days },
    });
    if let Some(s3) = &b.s3 {
        v["s3"] = json!(s3);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(v: Value) -> Attributes {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_normal_form_writes_out_defaults() {
        let a = normalise(&attrs(json!({
            "engine": "Postgres", "project": " shop ", "server": "main", "password": "p",
            "public_port": "5433", "backups": {"frequency": "0  3 * * *"},
        })))
        .unwrap();
        assert_eq!(
            Value::Object(a.clone()),
            json!({
                "engine": "postgresql", "project": "shop", "environment": "production",
                "server": "main", "password": "p", "public_port": 5433,
                "backups": {"frequency": "0 3 * * *", "retention": {"count": 0, "days": 0}},
            })
        );
        assert_eq!(normalise(&a).unwrap(), a, "a fixed point");
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            (json!({"engine": "oracle"}), "`engine` must be one of"),
            (
                json!({"engine": "redis", "user": "u"}),
                "`user`: a redis database",
            ),
            (
                json!({"engine": "postgresql", "root_password": "r"}),
                "`root_password`: a postgresql database takes only `user`, `password`, `database`",
            ),
            (
                json!({"engine": "redis", "backups": {"frequency": "daily"}}),
                "`backups`: Coolify makes scheduled backups",
            ),
            (
                json!({"public_port": 80}),
                "`public_port` must be a port from 1024",
            ),
            (
                json!({"backups": {"frequency": "sometimes"}}),
                "`backups.frequency`",
            ),
            (
                json!({"backups": {"frequency": "daily", "retention": {"weeks": 2}}}),
                "`backups.retention.weeks`",
            ),
            (json!({"start_timeout": "soon"}), "start_timeout"),
        ];
        for (inputs, needle) in cases {
            let err = validate(&attrs(inputs.clone())).unwrap_err();
            assert!(err.message.contains(needle), "{inputs}: {}", err.message);
        }
    }

    #[test]
    fn credentials_go_to_the_engines_fields() {
        let d = Desired::from_inputs(&attrs(json!({
            "engine": "mysql", "project": "p", "server": "s", "user": "u", "password": "pw",
            "root_password": "(sensitive)abc",
        })))
        .unwrap();
        assert_eq!(
            d.credentials,
            vec![
                ("mysql_user", "u".to_string()),
                ("mysql_password", "pw".to_string())
            ],
            "a secret known only by its hash is not written"
        );
    }
}

//! Databases in the Coolify fake, as the server's `DatabasesController` and models behave
//! (see the notes in the parent module's doc for the rest):
//! - `POST /databases/{engine}` answers **201** `{uuid, internal_db_url, external_db_url}`
//!   (the contract says 200; the server answers 201); another engine's credential fields are
//!   refused by the contract check (422 `This field is not allowed.`); a missing password is
//!   generated (64 letters and digits); an unknown environment is a 422; a public port outside
//!   1024–65535 is a 422 and one another public database uses is a 400;
//! - `PATCH /databases/{uuid}` keeps what it does not take (and, on request, a field it
//!   would take: [`FakeCoolify::drop_database_patch_field`]): `redis_password` is answered 200
//!   and changes nothing (Redis reads its `REDIS_PASSWORD` env row); `is_public` without a
//!   port is stored false;
//! - a start goes `exited` → `running:starting` → `running:healthy` after the start duration
//!   ([`FakeCoolify::set_database_start`]); an image whose tag contains `crash` crash-loops
//!   (`restarting:unknown`, its `restart_count` growing) and never comes up, and its log says
//!   why; a start or restart of a crash-looping database is a 400;
//! - scheduled backups exist for PostgreSQL, MySQL, MariaDB, MongoDB and ClickHouse (others:
//!   422); an omitted `save_s3` is stored true; `s3_storage_uuid` must name an S3 storage;
//! - `DELETE /databases/{uuid}` queues the deletion (the database stays listed for the delete
//!   delay); whether its volumes went is recorded ([`FakeCoolify::deleted_databases`]).

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::{Answer, FakeCoolify, State, error};
use crate::http::Request;

const BACKED_UP: [&str; 5] = ["postgresql", "mysql", "mariadb", "mongodb", "clickhouse"];
const FREQUENCIES: [&str; 6] = [
    "every_minute",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "yearly",
];

#[derive(Debug, Default)]
pub(super) struct Databases {
    list: Vec<Database>,
    /// S3 storages: uuid, name.
    s3: Vec<(String, String)>,
    /// Deleted databases and whether their volumes went with them, in order.
    deleted: Vec<(String, bool)>,
    start: Option<Duration>,
    /// Fields a PATCH answers 200 for and leaves as they were (as the server does with those
    /// it does not take).
    dropped: Vec<String>,
}

#[derive(Debug, Clone)]
struct Database {
    engine: String,
    fields: Map<String, Value>,
    started_at: Option<Instant>,
    gone_at: Option<Instant>,
    backups: Vec<Map<String, Value>>,
    envs: Vec<Map<String, Value>>,
}

impl Databases {
    pub(super) fn advance(&mut self, now: Instant) {
        self.list.retain(|d| d.gone_at.is_none_or(|at| now < at));
    }

    fn start_duration(&self) -> Duration {
        self.start.unwrap_or(Duration::from_millis(200))
    }
}

impl Database {
    fn uuid(&self) -> &str {
        self.fields["uuid"].as_str().unwrap_or_default()
    }

    fn text(&self, key: &str) -> &str {
        self.fields.get(key).and_then(Value::as_str).unwrap_or("")
    }

    fn crashes(&self) -> bool {
        self.text("image")
            .rsplit(':')
            .next()
            .is_some_and(|t| t.contains("crash"))
    }

    /// Status and restart count at `now`.
    fn status(&self, now: Instant, start: Duration) -> (&'static str, u64) {
        let Some(at) = self.started_at else {
            return ("exited", 0);
        };
        let up = now.saturating_duration_since(at);
        if self.crashes() {
            let every = (start / 2).max(Duration::from_millis(10));
            return (
                "restarting:unknown",
                (up.as_millis() / every.as_millis()) as u64,
            );
        }
        if up < start {
            ("running:starting", 0)
        } else if self.fields.get("health_check_enabled") == Some(&json!(false)) {
            ("running:unknown", 0)
        } else {
            ("running:healthy", 0)
        }
    }

    fn credential(&self, keys: &[&str]) -> String {
        keys.iter()
            .map(|k| self.text(k))
            .find(|v| !v.is_empty())
            .unwrap_or("")
            .to_string()
    }

    fn password(&self) -> String {
        if self.engine == "redis" {
            return self
                .envs
                .iter()
                .find(|r| r["key"] == "REDIS_PASSWORD")
                .and_then(|r| r["value"].as_str())
                .unwrap_or("")
                .to_string();
        }
        self.credential(&[
            "postgres_password",
            "mysql_password",
            "mariadb_password",
            "keydb_password",
            "dragonfly_password",
            "mongo_initdb_root_password",
            "clickhouse_admin_password",
        ])
    }

    /// The URL Coolify builds for the server's network (it holds the password).
    fn internal_url(&self) -> String {
        let uuid = self.uuid();
        let password = self.password();
        let user = self.credential(&[
            "postgres_user",
            "mysql_user",
            "mariadb_user",
            "mongo_initdb_root_username",
            "clickhouse_admin_user",
        ]);
        let db = self.credential(&[
            "postgres_db",
            "mysql_database",
            "mariadb_database",
            "mongo_initdb_database",
        ]);
        match self.engine.as_str() {
            "postgresql" => format!("postgres://{user}:{password}@{uuid}:5432/{db}"),
            "mysql" => format!("mysql://{user}:{password}@{uuid}:3306/{db}"),
            "mariadb" => format!("mysql://{user}:{password}@{uuid}:3306/{db}"),
            "mongodb" => format!("mongodb://{user}:{password}@{uuid}:27017/?directConnection=true"),
            "clickhouse" => format!("clickhouse://{user}:{password}@{uuid}:9000"),
            other => format!(
                "{}://default:{password}@{uuid}:6379/0",
                if other == "redis" { "redis" } else { other }
            ),
        }
    }

    fn json(&self, now: Instant, start: Duration) -> Value {
        let mut v = Value::Object(self.fields.clone());
        let (status, restarts) = self.status(now, start);
        v["status"] = json!(status);
        v["restart_count"] = json!(restarts);
        v["internal_db_url"] = json!(self.internal_url());
        if self.engine == "redis" {
            v["redis_password"] = json!(self.password());
        }
        v
    }
}

fn generated() -> String {
    let alphabet = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..64)
        .map(|i| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
            alphabet[((x >> 33) % 62) as usize] as char
        })
        .collect()
}

fn invalid(field: &str, message: &str) -> Answer {
    (
        422,
        json!({"message": "Validation failed.", "errors": { field: [message] }}),
    )
}

impl FakeCoolify {
    /// Every database not yet deleted, as `GET /databases/{uuid}` shows it.
    pub fn databases(&self) -> Vec<Value> {
        let state = self.state();
        let (now, start) = (Instant::now(), state.databases.start_duration());
        state
            .databases
            .list
            .iter()
            .map(|d| d.json(now, start))
            .collect()
    }

    /// The deleted databases, oldest first, and whether their volumes were deleted.
    pub fn deleted_databases(&self) -> Vec<(String, bool)> {
        self.state().databases.deleted.clone()
    }

    /// A database's scheduled backups, as the API lists them.
    pub fn backups(&self, uuid: &str) -> Vec<Value> {
        self.state()
            .databases
            .list
            .iter()
            .find(|d| d.uuid() == uuid)
            .map(|d| d.backups.iter().cloned().map(Value::Object).collect())
            .unwrap_or_default()
    }

    /// How long a started database takes to become healthy.
    pub fn set_database_start(&self, duration: Duration) {
        self.state().databases.start = Some(duration);
    }

    /// Makes `PATCH /databases/{uuid}` answer 200 and leave `field` as it was, as the server
    /// does with the fields it does not take.
    pub fn drop_database_patch_field(&self, field: &str) {
        self.state().databases.dropped.push(field.to_string());
    }

    /// Adds an S3 storage; returns its uuid.
    pub fn add_s3_storage(&self, name: &str) -> String {
        let mut state = self.state();
        let uuid = state.new_uuid();
        state.databases.s3.push((uuid.clone(), name.to_string()));
        uuid
    }

    /// Creates a database behind the provider's back (made by hand in the dashboard), in the
    /// `production` environment of `project` on `server`, as a create with `fields` would;
    /// returns its uuid.
    ///
    /// # Panics
    /// If the project or server does not exist, or the create is refused.
    pub fn insert_database(
        &self,
        engine: &str,
        project: &str,
        server: &str,
        fields: Value,
    ) -> String {
        let mut state = self.state();
        let project = state
            .projects
            .iter()
            .find(|p| p.name == project)
            .map_or_else(|| panic!("no project {project}"), |p| p.uuid.clone());
        let server = state
            .servers
            .iter()
            .find(|(_, n)| n == server)
            .map_or_else(|| panic!("no server {server}"), |(u, _)| u.clone());
        let mut body = json!({"project_uuid": project, "server_uuid": server,
                              "environment_name": "production"});
        for (k, v) in fields.as_object().expect("an object") {
            body[k] = v.clone();
        }
        let (status, made) = state.database_create(engine, &body);
        assert_eq!(status, 201, "{made}");
        made["uuid"].as_str().unwrap_or_default().to_string()
    }

    /// Changes fields of a database behind the provider's back.
    ///
    /// # Panics
    /// If there is no such database.
    pub fn edit_database(&self, uuid: &str, fields: Value) {
        let mut state = self.state();
        let db = state
            .databases
            .list
            .iter_mut()
            .find(|d| d.uuid() == uuid)
            .unwrap_or_else(|| panic!("no database {uuid}"));
        for (k, v) in fields.as_object().expect("an object") {
            db.fields.insert(k.clone(), v.clone());
        }
    }

    /// Stops database `uuid`, as its Stop button in the dashboard does.
    ///
    /// # Panics
    /// If there is no such database.
    pub fn stop_database(&self, uuid: &str) {
        let mut state = self.state();
        let db = state.databases.list.iter_mut().find(|d| d.uuid() == uuid);
        db.unwrap_or_else(|| panic!("no database {uuid}"))
            .started_at = None;
    }
}

impl State {
    pub(super) fn database_route(
        &mut self,
        method: &str,
        template: &str,
        param: &dyn Fn(&str) -> String,
        body: &Value,
        request: &Request,
    ) -> Answer {
        let uuid = param("uuid");
        match (method, template) {
            ("GET", "/s3-storages") => (
                200,
                Value::Array(
                    self.databases
                        .s3
                        .iter()
                        .map(|(uuid, name)| {
                            json!({"uuid": uuid, "name": name, "description": null,
                                   "endpoint": "https://s3.example", "bucket": "backups",
                                   "region": "us-east-1", "is_usable": true})
                        })
                        .collect(),
                ),
            ),
            ("GET", "/databases") => {
                let (now, start) = (Instant::now(), self.databases.start_duration());
                let list = self.databases.list.iter().map(|d| d.json(now, start));
                (200, Value::Array(list.collect()))
            }
            ("GET", "/databases/{uuid}") => {
                self.with_db(&uuid, |db, now, start| (200, db.json(now, start)))
            }
            ("PATCH", "/databases/{uuid}") => self.database_patch(&uuid, body),
            ("DELETE", "/databases/{uuid}") => {
                let volumes = request.query("delete_volumes") != Some("false");
                let delay = self.settings.delete_delay;
                let answer = self.with_db_mut(&uuid, |db, now, _| {
                    db.gone_at.get_or_insert(now + delay);
                    (200, json!({"message": "Database deletion request queued."}))
                });
                if answer.0 == 200 {
                    self.databases.deleted.push((uuid, volumes));
                }
                answer
            }
            ("POST", "/databases/{uuid}/start" | "/databases/{uuid}/restart") => {
                let restart = template.ends_with("restart");
                self.with_db_mut(&uuid, |db, now, start| {
                    let (status, _) = db.status(now, start);
                    if status.starts_with("restarting") {
                        return error(400, "Database is restarting; stop it first.");
                    }
                    if !restart && status.starts_with("running") {
                        return error(400, "Database is already running.");
                    }
                    db.started_at = Some(now);
                    (200, json!({"message": "Database starting request queued."}))
                })
            }
            ("POST", "/databases/{uuid}/stop") => self.with_db_mut(&uuid, |db, _, _| {
                db.started_at = None;
                (200, json!({"message": "Database stopping request queued."}))
            }),
            ("GET", "/databases/{uuid}/logs") => self.with_db(&uuid, |db, now, start| {
                let logs = if db.crashes() {
                    let (_, restarts) = db.status(now, start);
                    let mut lines = Vec::new();
                    for _ in 0..restarts.clamp(1, 3) {
                        lines.push("FATAL:  could not open configuration file: Permission denied");
                        lines.push("LOG:  database system is shut down");
                    }
                    lines.join("\n")
                } else if db.started_at.is_some() {
                    "LOG:  database system is ready to accept connections".to_string()
                } else {
                    String::new()
                };
                (200, json!({ "logs": logs }))
            }),
            ("GET", "/databases/{uuid}/envs") => self.with_db(&uuid, |db, _, _| {
                (
                    200,
                    Value::Array(db.envs.iter().cloned().map(Value::Object).collect()),
                )
            }),
            ("PATCH", "/databases/{uuid}/envs") => {
                let fields = body.as_object().cloned().unwrap_or_default();
                self.with_db_mut(&uuid, |db, _, _| {
                    let Some(row) = db
                        .envs
                        .iter_mut()
                        .find(|r| r.get("key") == fields.get("key"))
                    else {
                        return error(404, "Environment variable not found.");
                    };
                    // Flags not sent are kept (database rows have no preview twins).
                    for (k, v) in &fields {
                        row.insert(k.clone(), v.clone());
                    }
                    row.insert("real_value".into(), row["value"].clone());
                    (201, Value::Object(row.clone()))
                })
            }
            ("GET", "/databases/{uuid}/backups") => self.with_db(&uuid, |db, _, _| {
                (
                    200,
                    Value::Array(db.backups.iter().cloned().map(Value::Object).collect()),
                )
            }),
            ("POST", "/databases/{uuid}/backups") => {
                let backup = self.new_uuid();
                let s3 = self.databases.s3.clone();
                self.with_db_mut(&uuid, |db, _, _| {
                    if !BACKED_UP.contains(&db.engine.as_str()) {
                        return error(422, "This database type does not support backups.");
                    }
                    let mut row = Map::new();
                    row.insert("uuid".into(), json!(backup));
                    row.insert("enabled".into(), json!(true));
                    // The document says false; the server stores true when it is left out.
                    row.insert("save_s3".into(), json!(true));
                    row.insert("s3_storage_uuid".into(), Value::Null);
                    row.insert("database_backup_retention_amount_locally".into(), json!(0));
                    row.insert("database_backup_retention_days_locally".into(), json!(0));
                    if let Err(answer) = write_backup(&mut row, body, &s3) {
                        return answer;
                    }
                    db.backups.push(row);
                    (
                        201,
                        json!({"uuid": backup, "message": "Backup configuration created successfully."}),
                    )
                })
            }
            ("PATCH", "/databases/{uuid}/backups/{scheduled_backup_uuid}") => {
                let backup = param("scheduled_backup_uuid");
                let s3 = self.databases.s3.clone();
                self.with_db_mut(&uuid, |db, _, _| {
                    let Some(row) = db.backups.iter_mut().find(|b| b["uuid"] == backup) else {
                        return error(404, "Backup configuration not found.");
                    };
                    match write_backup(row, body, &s3) {
                        Ok(()) => (
                            200,
                            json!({"message": "Database backup configuration updated"}),
                        ),
                        Err(answer) => answer,
                    }
                })
            }
            ("DELETE", "/databases/{uuid}/backups/{scheduled_backup_uuid}") => {
                let backup = param("scheduled_backup_uuid");
                self.with_db_mut(&uuid, |db, _, _| {
                    let before = db.backups.len();
                    db.backups.retain(|b| b["uuid"] != backup);
                    if db.backups.len() == before {
                        return error(404, "Backup configuration not found.");
                    }
                    (
                        200,
                        json!({"message": "Backup configuration and all executions deleted."}),
                    )
                })
            }
            ("POST", engine_path)
                if engine_path
                    .strip_prefix("/databases/")
                    .is_some_and(|e| !e.contains('/')) =>
            {
                let engine = engine_path.trim_start_matches("/databases/").to_string();
                self.lose(|s| s.database_create(&engine, body))
            }
            (method, template) => error(
                501,
                &format!("the fake does not implement {method} {template}"),
            ),
        }
    }

    fn with_db(
        &self,
        uuid: &str,
        f: impl FnOnce(&Database, Instant, Duration) -> Answer,
    ) -> Answer {
        let start = self.databases.start_duration();
        match self.databases.list.iter().find(|d| d.uuid() == uuid) {
            Some(db) => f(db, Instant::now(), start),
            None => error(404, "Database not found."),
        }
    }

    fn with_db_mut(
        &mut self,
        uuid: &str,
        f: impl FnOnce(&mut Database, Instant, Duration) -> Answer,
    ) -> Answer {
        let start = self.databases.start_duration();
        match self.databases.list.iter_mut().find(|d| d.uuid() == uuid) {
            Some(db) => f(db, Instant::now(), start),
            None => error(404, "Database not found."),
        }
    }

    fn port_taken(&self, port: &Value, except: Option<&str>) -> bool {
        self.databases.list.iter().any(|d| {
            Some(d.uuid()) != except
                && d.fields.get("is_public") == Some(&json!(true))
                && d.fields.get("public_port") == Some(port)
        })
    }

    fn database_create(&mut self, engine: &str, body: &Value) -> Answer {
        let fields = body.as_object().cloned().unwrap_or_default();
        let text = |k: &str| fields.get(k).and_then(Value::as_str).unwrap_or("");
        let Some(project) = self
            .projects
            .iter()
            .find(|p| p.uuid == text("project_uuid"))
        else {
            return error(404, "Project not found.");
        };
        // Unlike applications, an unknown environment is a validation error here.
        let Some(env) = project
            .environments
            .iter()
            .find(|e| e.name == text("environment_name"))
            .or_else(|| {
                project
                    .environments
                    .iter()
                    .find(|e| e.uuid == text("environment_uuid"))
            })
        else {
            return invalid("environment_name", "Environment not found.");
        };
        let env_id = env.id;
        let server = text("server_uuid").to_string();
        if !self.servers.iter().any(|(u, _)| *u == server) {
            return error(404, "Server not found.");
        }
        let destinations: Vec<&(String, String, String)> = self
            .destinations
            .iter()
            .filter(|(_, _, s)| *s == server)
            .collect();
        let destination = match fields.get("destination_uuid").and_then(Value::as_str) {
            Some(d) => match destinations.iter().find(|(u, _, _)| u == d) {
                Some((u, _, _)) => u.clone(),
                None => return error(404, "Destination not found."),
            },
            None if destinations.len() > 1 => {
                return error(
                    400,
                    "Server has multiple destinations and you do not set destination_uuid.",
                );
            }
            None => destinations
                .first()
                .map(|(u, _, _)| u.clone())
                .unwrap_or_default(),
        };
        if let Some(port) = fields.get("public_port") {
            if !port.as_u64().is_some_and(|p| (1024..=65_535).contains(&p)) {
                return invalid(
                    "public_port",
                    "The public port must be between 1024 and 65535.",
                );
            }
            if self.port_taken(port, None) {
                return error(400, "Public port already used by another database.");
            }
        }
        let uuid = self.new_uuid();
        let default_image = match engine {
            "postgresql" => "postgres:16-alpine",
            "mysql" => "mysql:8",
            "mariadb" => "mariadb:11",
            "redis" => "redis:7.2",
            "keydb" => "eqalpha/keydb:latest",
            "dragonfly" => "docker.dragonflydb.io/dragonflydb/dragonfly",
            "mongodb" => "mongo:7",
            _ => "clickhouse/clickhouse-server:latest",
        };
        let mut stored = json!({
            "uuid": uuid, "name": format!("{engine}-{uuid}"), "description": null,
            "image": default_image, "database_type": format!("standalone-{engine}"),
            "environment_id": env_id, "destination_uuid": destination, "server_uuid": server,
            "is_public": false, "public_port": null, "limits_memory": "0", "limits_cpus": "0",
            "health_check_enabled": true,
        });
        let stored_map = stored.as_object_mut().expect("an object");
        for (k, v) in &fields {
            if matches!(
                k.as_str(),
                "project_uuid" | "environment_name" | "environment_uuid" | "instant_deploy"
            ) {
                continue;
            }
            stored_map.insert(k.clone(), v.clone());
        }
        if stored_map.get("public_port").is_none_or(Value::is_null) {
            stored_map.insert("is_public".into(), json!(false));
        }
        let password_field = match engine {
            "postgresql" => Some("postgres_password"),
            "mysql" => Some("mysql_password"),
            "mariadb" => Some("mariadb_password"),
            "keydb" => Some("keydb_password"),
            "dragonfly" => Some("dragonfly_password"),
            "clickhouse" => Some("clickhouse_admin_password"),
            "mongodb" => Some("mongo_initdb_root_password"),
            _ => None,
        };
        if let Some(field) = password_field {
            stored_map
                .entry(field)
                .or_insert_with(|| json!(generated()));
        }
        let mut envs = Vec::new();
        if engine == "redis" {
            let password = stored_map
                .remove("redis_password")
                .and_then(|p| p.as_str().map(str::to_string))
                .unwrap_or_else(generated);
            let row = json!({
                "uuid": self.new_uuid(), "key": "REDIS_PASSWORD", "value": password,
                "real_value": password, "is_literal": true, "is_multiline": false,
                "is_shown_once": false,
            });
            envs.push(row.as_object().cloned().unwrap_or_default());
        }
        let db = Database {
            engine: engine.to_string(),
            fields: stored.as_object().cloned().unwrap_or_default(),
            started_at: None,
            gone_at: None,
            backups: Vec::new(),
            envs,
        };
        let internal = db.internal_url();
        self.databases.list.push(db);
        (
            201,
            json!({"uuid": uuid, "internal_db_url": internal, "external_db_url": null}),
        )
    }

    fn database_patch(&mut self, uuid: &str, body: &Value) -> Answer {
        let fields = body.as_object().cloned().unwrap_or_default();
        if let Some(port) = fields.get("public_port").filter(|p| !p.is_null())
            && self.port_taken(port, Some(uuid))
        {
            return error(400, "Public port already used by another database.");
        }
        let dropped = self.databases.dropped.clone();
        self.with_db_mut(uuid, |db, _, _| {
            for (k, v) in &fields {
                // Redis reads its password from the env row: this field changes nothing.
                if k == "redis_password" || dropped.contains(k) {
                    continue;
                }
                db.fields.insert(k.clone(), v.clone());
            }
            if db.fields.get("public_port").is_none_or(Value::is_null) {
                db.fields.insert("is_public".into(), json!(false));
            }
            (200, json!({"message": "Database updated."}))
        })
    }
}

/// Writes the fields of a backup request into `row`, checking them as the server does.
fn write_backup(
    row: &mut Map<String, Value>,
    body: &Value,
    s3: &[(String, String)],
) -> Result<(), Answer> {
    let fields = body.as_object().cloned().unwrap_or_default();
    if let Some(frequency) = fields.get("frequency") {
        let f = frequency.as_str().unwrap_or("");
        let cron = f.split(' ').count() == 5;
        let named = FREQUENCIES.contains(&f) || f.starts_with('@');
        if !cron && !named {
            return Err(invalid(
                "frequency",
                "Invalid cron expression or frequency.",
            ));
        }
    }
    if let Some(storage) = fields.get("s3_storage_uuid").and_then(Value::as_str)
        && !s3.iter().any(|(u, _)| u == storage)
    {
        return Err(invalid(
            "s3_storage_uuid",
            "The selected s3 storage uuid is invalid.",
        ));
    }
    for (k, v) in fields {
        row.insert(k, v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coolify::tests::{call, setup};

    fn create(
        fake: &FakeCoolify,
        engine: &str,
        server: &str,
        project: &str,
        extra: Value,
    ) -> (u16, Value) {
        let mut body = json!({"server_uuid": server, "project_uuid": project,
                              "environment_name": "production", "environment_uuid": "x"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        call(
            fake,
            "POST",
            &format!("/api/v1/databases/{engine}"),
            Some(body),
        )
    }

    #[test]
    fn a_create_answers_201_generates_a_missing_password_and_refuses_other_engines_fields() {
        let (fake, server, project) = setup();
        let (status, made) = create(&fake, "postgresql", &server, &project, json!({}));
        assert_eq!(status, 201, "{made}");
        let url = made["internal_db_url"].as_str().unwrap();
        let password = url.split(':').nth(2).unwrap().split('@').next().unwrap();
        assert_eq!(password.len(), 64, "{url}");
        let (status, refused) = create(
            &fake,
            "postgresql",
            &server,
            &project,
            json!({"mysql_root_password": "x"}),
        );
        assert_eq!(status, 422, "{refused}");
        assert_eq!(
            refused["errors"]["mysql_root_password"][0],
            "This field is not allowed."
        );
        let (status, _) = create(
            &fake,
            "redis",
            &server,
            &project,
            json!({"public_port": 80}),
        );
        assert_eq!(status, 422);
        assert_eq!(
            fake.violations().len(),
            1,
            "only the refused field breaks the contract"
        );
    }

    #[test]
    fn a_crash_looping_database_restarts_until_stopped_and_refuses_a_start() {
        let (fake, server, project) = setup();
        fake.set_database_start(Duration::from_millis(40));
        let (_, made) = create(
            &fake,
            "postgresql",
            &server,
            &project,
            json!({"image": "postgres:crash"}),
        );
        let path = format!("/api/v1/databases/{}", made["uuid"].as_str().unwrap());
        assert_eq!(call(&fake, "GET", &path, None).1["status"], "exited");
        assert_eq!(call(&fake, "POST", &format!("{path}/start"), None).0, 200);
        std::thread::sleep(Duration::from_millis(100));
        let db = call(&fake, "GET", &path, None).1;
        assert_eq!(db["status"], "restarting:unknown");
        assert!(db["restart_count"].as_u64().unwrap() >= 2, "{db}");
        assert_eq!(call(&fake, "POST", &format!("{path}/start"), None).0, 400);
        let logs = call(&fake, "GET", &format!("{path}/logs"), None).1;
        assert!(logs["logs"].as_str().unwrap().contains("FATAL"), "{logs}");
        assert_eq!(call(&fake, "POST", &format!("{path}/stop"), None).0, 200);
        assert_eq!(call(&fake, "GET", &path, None).1["status"], "exited");
        fake.assert_no_violations();
    }

    #[test]
    fn redis_keeps_its_password_in_its_env_row_and_backups_store_save_s3_true() {
        let (fake, server, project) = setup();
        let (_, made) = create(
            &fake,
            "redis",
            &server,
            &project,
            json!({"redis_password": "a"}),
        );
        let path = format!("/api/v1/databases/{}", made["uuid"].as_str().unwrap());
        let patched = call(&fake, "PATCH", &path, Some(json!({"redis_password": "b"})));
        assert_eq!(patched.0, 200);
        assert_eq!(
            call(&fake, "GET", &path, None).1["redis_password"],
            "a",
            "unchanged"
        );
        let row = json!({"key": "REDIS_PASSWORD", "value": "b"});
        assert_eq!(
            call(&fake, "PATCH", &format!("{path}/envs"), Some(row)).0,
            201
        );
        assert_eq!(call(&fake, "GET", &path, None).1["redis_password"], "b");
        let backup = json!({"frequency": "daily"});
        assert_eq!(
            call(
                &fake,
                "POST",
                &format!("{path}/backups"),
                Some(backup.clone())
            )
            .0,
            422
        );

        let (_, pg) = create(&fake, "postgresql", &server, &project, json!({}));
        let path = format!("/api/v1/databases/{}", pg["uuid"].as_str().unwrap());
        assert_eq!(
            call(&fake, "POST", &format!("{path}/backups"), Some(backup)).0,
            201
        );
        let list = call(&fake, "GET", &format!("{path}/backups"), None).1;
        assert_eq!(list[0]["save_s3"], true, "left out, it is stored true");
        // Deleted later, not at once.
        assert_eq!(call(&fake, "DELETE", &path, None).0, 200);
        assert_eq!(call(&fake, "GET", &path, None).0, 200);
        assert!(fake.deleted_databases()[0].1, "volumes go by default");
        fake.assert_no_violations();
    }
}

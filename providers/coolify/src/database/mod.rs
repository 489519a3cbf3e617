//! `coolify.database`: find, create, read, update and delete one database with its scheduled
//! backups; each create or change that needs it is followed by a start (or restart) that is
//! waited for until Coolify reports the database healthy.
//!
//! Ownership is as for applications: the database carries `fabrik:<stack>/<resource>` as its
//! description and is found by that marker (in `GET /databases`: the environment listing
//! leaves KeyDB, Dragonfly and ClickHouse out), never by its name.
//!
//! A database never reaches a failed state by itself: one that cannot start crash-loops
//! (`restarting:…` with a growing restart count). The wait therefore has its own end: the
//! resource's `start_timeout`, or [`CRASH_RESTARTS`] restarts, whichever comes first; the error
//! quotes the status, the restart count and the end of the container's log. A failed create
//! deletes the database again, with its (empty) volumes; a failed update puts the previous
//! settings back and restarts it.
//!
//! Deleting keeps the data: a database fabrik deletes (removed from the spec, destroyed,
//! replaced, rolled back) loses its container and configuration, but its volumes stay on the
//! server unless the resource's recorded inputs say `delete_volumes: true`.
//!
//! - `schema`: the fields, their checks and normal form, the per-engine credential fields;
//!   `backups`: the scheduled backups, made to match the spec; `observe`: what a read reports.

mod backups;
mod observe;
pub mod schema;

use std::time::{Duration, Instant};

use fabrik_provider::wait::Wait;
use fabrik_provider::{Applied, Attributes, Error, ErrorKind, Found, Observed, Result, Target};
use serde_json::{Value, json};

use crate::api::{encode_segment, is_up, text};
use crate::application::Place;
use crate::application::{
    Applications, carries, fabrik_marker, refuse_unless_ours, reworded, stamped, the_one_carrying,
};
use schema::Desired;

/// Restarts of a crash-looping database before the wait for it gives up.
pub const CRASH_RESTARTS: u64 = 3;
/// Lines of the container's log quoted when it does not become healthy.
const LOG_TAIL: &str = "20";
/// How often a deletion is checked for having happened.
const DELETE_POLL: Duration = Duration::from_millis(500);

/// A configured `coolify` provider's view of databases: the same instance, lookups of
/// projects, servers and destinations, and poll interval as its applications.
#[derive(Debug)]
pub struct Databases<'a> {
    pub apps: &'a Applications,
}

fn db_path(uuid: &str) -> String {
    format!("/databases/{}", encode_segment(uuid))
}

impl Databases<'_> {
    fn get(&self, uuid: &str) -> Result<Option<Value>> {
        self.apps.api.get_found(&db_path(uuid), "a database")
    }

    fn must_get(&self, uuid: &str, when: &str) -> Result<Value> {
        self.get(uuid)?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("database {uuid} disappeared {when}"),
            )
        })
    }

    pub fn read(&self, id: &str, inputs: &Attributes) -> Result<Option<Observed>> {
        let Some(db) = self.get(id)? else {
            return Ok(None);
        };
        self.apps
            .check_place("database", id, &db, &Place::of(inputs))?;
        self.observe(id, &db, inputs).map(Some)
    }

    /// The database carrying this resource's marker.
    ///
    /// # Errors
    /// [`ErrorKind::Conflict`] when more than one carries it.
    pub fn find(&self, target: Target<'_>, inputs: &Attributes) -> Result<Option<Found>> {
        let Some(uuid) = self.find_uuid(target)? else {
            return Ok(None);
        };
        let Some(db) = self.get(&uuid)? else {
            return Ok(None);
        };
        Ok(Some(Found {
            observed: self.observe(&uuid, &db, inputs)?,
            id: uuid,
        }))
    }

    fn all(&self) -> Result<Vec<Value>> {
        self.apps.api.get("/databases", &[])?.json("the databases")
    }

    fn find_uuid(&self, target: Target<'_>) -> Result<Option<String>> {
        the_one_carrying(&self.all()?, &target.marker(), "databases")
    }

    /// Creates the database (or converges on the one an earlier attempt made), sets its
    /// backups, starts it and waits until it is healthy.
    pub fn create(&self, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        let desired = Desired::from_inputs(inputs)?;
        if !desired
            .credentials
            .iter()
            .any(|(f, _)| f.ends_with("password"))
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "`password` is known only by its hash: its value is needed to create the database",
            ));
        }
        let (uuid, made) = match self.find_uuid(target)? {
            Some(uuid) => {
                self.patch(&uuid, &desired, target.name)?;
                (uuid, false)
            }
            None => (self.post(target, &desired)?, true),
        };
        let outcome = self
            .after_create(&uuid, &desired)
            .and_then(|()| backups::sync(self, &uuid, desired.backups.as_ref()))
            .and_then(|()| self.start_and_wait(&uuid, "start", &desired));
        match outcome {
            Ok(db) => Ok(applied(&uuid, &db)),
            Err(error) => {
                // Made by this call, it holds nothing yet: it goes with its volumes. One an
                // earlier attempt made keeps them.
                if (made || self.carries_marker(&uuid, target)?)
                    && let Err(cleanup) = self.remove(&uuid, made, desired.start_timeout)
                {
                    return Err(reworded(
                        &error,
                        format!(
                            "{}; removing the database {uuid} again also failed: {}",
                            error.message, cleanup.message
                        ),
                    ));
                }
                Err(error)
            }
        }
    }

    /// The credentials a create cannot carry (MongoDB's password and database), written before
    /// the first start.
    fn after_create(&self, uuid: &str, desired: &Desired) -> Result<()> {
        let later: serde_json::Map<String, Value> = desired
            .credentials
            .iter()
            .filter(|(f, _)| schema::set_after_create(f))
            .map(|(f, v)| ((*f).to_string(), json!(v)))
            .collect();
        if later.is_empty() {
            return Ok(());
        }
        self.apps.api.patch(&db_path(uuid), &Value::Object(later))?;
        Ok(())
    }

    /// Takes over the one database of the resource's name in its environment that carries no
    /// marker (`adopt: true`), as applications are adopted.
    ///
    /// # Errors
    /// [`ErrorKind::Conflict`] when the database of that name is another resource's, or when
    /// several carry the name.
    pub fn adopt(&self, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        let desired = Desired::from_inputs(inputs)?;
        if self.find_uuid(target)?.is_some() {
            return self.create(target, inputs);
        }
        let name = desired.name.as_deref().unwrap_or(target.name);
        let environment = self.environment_id(&desired)?;
        let all = self.all()?;
        let named: Vec<&Value> = all
            .iter()
            .filter(|d| text(d, "name") == name)
            .filter(|d| environment.is_some() && d.get("environment_id") == environment.as_ref())
            .collect();
        if let Some(owned) = named.iter().find_map(|d| fabrik_marker(d)) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "the database named {name:?} in project {} ({}) is managed by {owned}; it is \
                     never adopted",
                    desired.project, desired.environment
                ),
            ));
        }
        let db = match named.as_slice() {
            [] => return self.create(target, inputs),
            [one] => *one,
            many => {
                let uuids: Vec<&str> = many.iter().map(|d| text(d, "uuid")).collect();
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "{} databases are named {name:?} in project {} ({}): {}; rename all but \
                         the one to adopt",
                        many.len(),
                        desired.project,
                        desired.environment,
                        uuids.join(", ")
                    ),
                ));
            }
        };
        let uuid = text(db, "uuid").to_string();
        self.stamp(&uuid, db, &target.marker())?;
        let restart = self.patch(&uuid, &desired, target.name)?;
        backups::sync(self, &uuid, desired.backups.as_ref())?;
        let verb = if restart { "restart" } else { "start" };
        let db = self.start_and_wait(&uuid, verb, &desired).map_err(|e| {
            reworded(
                &e,
                format!(
                    "{} (database {uuid} now carries {} and the spec's settings)",
                    e.message,
                    target.marker()
                ),
            )
        })?;
        Ok(applied(&uuid, &db))
    }

    /// The id Coolify gives the desired environment, to tell databases of one name apart.
    fn environment_id(&self, desired: &Desired) -> Result<Option<Value>> {
        let Some(project) = self.apps.project_uuid(&desired.project)? else {
            return Ok(None);
        };
        let path = format!(
            "/projects/{}/{}",
            encode_segment(&project),
            encode_segment(&desired.environment)
        );
        Ok(self
            .apps
            .api
            .get_found(&path, "an environment")?
            .and_then(|env| env.get("id").cloned()))
    }

    /// Puts `marker` at the head of the database's description, keeping what it said.
    fn stamp(&self, uuid: &str, db: &Value, marker: &str) -> Result<()> {
        let description = stamped(text(db, "description"), marker);
        self.apps
            .api
            .patch(&db_path(uuid), &json!({ "description": description }))?;
        Ok(())
    }

    /// Claims database `id` for this resource (`fabrik import`), changing nothing but its
    /// description.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when there is no database `id`; [`ErrorKind::Conflict`] when it
    /// belongs to another resource.
    pub fn import(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<Found> {
        let marker = target.marker();
        let db = self.get(id)?.ok_or_else(|| {
            Error::new(ErrorKind::NotFound, format!("Coolify has no database {id}"))
        })?;
        match fabrik_marker(&db) {
            Some(owner) if owner == marker => {}
            Some(owner) => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("database {id} is managed by {owner}; it is never imported"),
                ));
            }
            None => self.stamp(id, &db, &marker)?,
        }
        let db = self.must_get(id, "while it was being imported")?;
        Ok(Found {
            observed: self.observe(id, &db, inputs)?,
            id: id.to_string(),
        })
    }

    /// Changes the database in place; restarts it when what changed needs a restart (image,
    /// credentials, port, limits) and starts it when it is not running. A restart that does not
    /// bring it back healthy puts the previous settings back.
    pub fn update(
        &self,
        target: Target<'_>,
        id: &str,
        prior: &Attributes,
        inputs: &Attributes,
    ) -> Result<Applied> {
        let desired = Desired::from_inputs(inputs)?;
        self.owned(id, target)?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("database {id} no longer exists in Coolify"),
            )
        })?;
        let restart = self.patch(id, &desired, target.name)?;
        let outcome = backups::sync(self, id, desired.backups.as_ref()).and_then(|()| {
            let verb = if restart { "restart" } else { "start" };
            self.start_and_wait(id, verb, &desired)
        });
        match outcome {
            Ok(db) => Ok(applied(id, &db)),
            Err(error) if restart => Err(self.restore(target, id, prior, error)),
            Err(error) => Err(error),
        }
    }

    /// Puts `prior` back after a failed restart and restarts it; the error says what happened.
    fn restore(&self, target: Target<'_>, id: &str, prior: &Attributes, error: Error) -> Error {
        let Ok(before) = Desired::from_inputs(prior) else {
            return error;
        };
        let result = self
            .patch(id, &before, target.name)
            .and_then(|_| backups::sync(self, id, before.backups.as_ref()))
            .and_then(|()| self.start_and_wait(id, "restart", &before));
        match result {
            Ok(_) => reworded(
                &error,
                format!(
                    "{} (the previous settings were put back and it was restarted)",
                    error.message
                ),
            ),
            Err(again) if again.interrupted => reworded(
                &error,
                format!(
                    "{} (the previous settings were put back and its restart queued)",
                    error.message
                ),
            )
            .cut_short(),
            Err(again) => Error::new(
                ErrorKind::Fatal,
                format!(
                    "{}; putting the previous settings back failed too: {}",
                    error.message, again.message
                ),
            ),
        }
    }

    /// Deletes the database and waits until it is gone; its volumes go only when the
    /// resource says `delete_volumes: true`.
    pub fn delete(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<()> {
        if self.owned(id, target)?.is_none() {
            return Ok(());
        }
        let volumes = inputs
            .get("delete_volumes")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let timeout =
            Desired::from_inputs(inputs).map_or(schema::DEFAULT_START_TIMEOUT, |d| d.start_timeout);
        self.remove(id, volumes, timeout)
    }

    fn owned(&self, id: &str, target: Target<'_>) -> Result<Option<Value>> {
        let Some(db) = self.get(id)? else {
            return Ok(None);
        };
        refuse_unless_ours("database", id, &db, &target.marker())?;
        Ok(Some(db))
    }

    fn carries_marker(&self, uuid: &str, target: Target<'_>) -> Result<bool> {
        Ok(self
            .get(uuid)?
            .is_some_and(|db| carries(&db, &target.marker())))
    }

    fn remove(&self, uuid: &str, volumes: bool, timeout: Duration) -> Result<()> {
        let volumes = if volumes { "true" } else { "false" };
        match self
            .apps
            .api
            .delete(&db_path(uuid), &[("delete_volumes", volumes)])
        {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
        let deadline = Instant::now() + timeout;
        let _shown = Wait::start(format!("database {uuid} to be deleted"), Some(timeout));
        loop {
            if self.get(uuid)?.is_none() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Transient,
                    format!(
                        "database {uuid} is still there {} s after Coolify queued its deletion",
                        timeout.as_secs()
                    ),
                ));
            }
            self.sleep(DELETE_POLL).map_err(|()| {
                Error::interrupted(format!(
                    "database {uuid} is queued for deletion, but the run was interrupted before \
                     Coolify deleted it"
                ))
            })?;
        }
    }

    fn sleep(&self, at_most: Duration) -> std::result::Result<(), ()> {
        let poll = at_most.min(self.apps.poll.max(Duration::from_millis(20)));
        self.apps.api.cancel().sleep(poll).map_err(|_| ())
    }

    /// `POST /databases/{engine}`: the database with its marker, not started (it is started
    /// once its backups are set).
    fn post(&self, target: Target<'_>, desired: &Desired) -> Result<String> {
        let (place, _) = self.apps.place_body(
            &desired.project,
            &desired.environment,
            &desired.server,
            desired.destination.as_deref(),
        )?;
        let mut body = desired.settings(target.name);
        for (field, value) in &desired.credentials {
            if !schema::set_after_create(field) {
                body.insert((*field).to_string(), json!(value));
            }
        }
        body.extend(place);
        body.insert("description".into(), json!(target.marker()));
        body.insert("instant_deploy".into(), json!(false));
        let path = format!("/databases/{}", desired.engine);
        let reply = match self.apps.api.post(&path, &[], Some(&Value::Object(body))) {
            Ok(reply) => reply,
            Err(e) if e.kind == ErrorKind::Transient => {
                // The create may have been made before the answer was lost.
                if let Some(uuid) = self.find_uuid(target)? {
                    return Ok(uuid);
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let created: Value = reply.json("the create of a database")?;
        match created.get("uuid").and_then(Value::as_str) {
            Some(uuid) => Ok(uuid.to_string()),
            None => self.find_uuid(target)?.ok_or_else(|| {
                Error::new(
                    ErrorKind::Fatal,
                    format!(
                        "Coolify answered the create of a database without a uuid and none \
                         carries {}",
                        target.marker()
                    ),
                )
            }),
        }
    }

    /// `PATCH /databases/{uuid}` with the settings and the credentials fabrik knows, then a read
    /// back: the server drops fields it does not take without a word. Redis keeps its password
    /// in an environment row (a PATCH of `redis_password` changes nothing), so that row is
    /// written instead. Whether the change needs a restart: the image, a credential, the port
    /// or the limits differed from what ran.
    fn patch(&self, uuid: &str, desired: &Desired, fallback_name: &str) -> Result<bool> {
        let before = self.must_get(uuid, "while it was being changed")?;
        let mut body = desired.settings(fallback_name);
        let mut redis_password = None;
        for (field, value) in &desired.credentials {
            if *field == "redis_password" {
                redis_password = Some(value.clone());
            } else {
                body.insert((*field).to_string(), json!(value));
            }
        }
        let mut restart = body
            .iter()
            .any(|(k, v)| k != "name" && !same(before.get(k), v));
        self.apps.api.patch(&db_path(uuid), &Value::Object(body))?;
        if let Some(password) = redis_password {
            restart |= observe::set_redis_password(self, uuid, &password)?;
        }
        let after = self.must_get(uuid, "while it was being changed")?;
        let wanted = desired.settings(fallback_name);
        let dropped: Vec<String> = wanted
            .iter()
            .filter(|(k, v)| !same(after.get(*k), v))
            .map(|(k, v)| format!("{k} {}, not {v}", after.get(k).unwrap_or(&Value::Null)))
            .collect();
        if !dropped.is_empty() {
            // Coolify answers 200 for a field it does not take and leaves it as it was.
            return Err(Error::new(
                ErrorKind::Fatal,
                format!(
                    "database {uuid} still has {} after the update",
                    dropped.join(", ")
                ),
            ));
        }
        Ok(restart)
    }

    /// Starts (or restarts) the database unless it is up and nothing asks for a restart, then
    /// waits until it is healthy.
    fn start_and_wait(&self, uuid: &str, verb: &str, desired: &Desired) -> Result<Value> {
        let db = self.must_get(uuid, "before it was started")?;
        let status = text(&db, "status").to_string();
        let verb = match (verb, is_up(&status)) {
            ("start", true) => return Ok(db),
            // Already on its way up (`running:starting`): a start would be refused.
            ("start", false) if status.starts_with("running") => {
                return self.wait_healthy(uuid, desired.start_timeout);
            }
            // A restart of a database that is not running is a start; one that crash-loops
            // takes neither (Coolify answers 400): it is stopped first.
            ("restart", false) if !status.starts_with("restarting") => "start",
            (verb, _) => verb,
        };
        if status.starts_with("restarting") {
            self.apps
                .api
                .post(&format!("{}/stop", db_path(uuid)), &[], None)?;
            self.wait_for(uuid, "stop", desired.start_timeout, |s| {
                !s.starts_with("running") && !s.starts_with("restarting")
            })?;
        }
        let verb = if status.starts_with("restarting") {
            "start"
        } else {
            verb
        };
        self.apps
            .api
            .post(&format!("{}/{verb}", db_path(uuid)), &[], None)?;
        self.wait_healthy(uuid, desired.start_timeout)
    }

    fn wait_for(
        &self,
        uuid: &str,
        what: &str,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        let shown = Wait::start(format!("database {uuid}: {what}"), Some(timeout));
        loop {
            let db = self.must_get(uuid, &format!("while its {what} was awaited"))?;
            if done(text(&db, "status")) {
                return Ok(db);
            }
            shown.saw(text(&db, "status"));
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Fatal,
                    format!(
                        "database {uuid} is still {} {} s after its {what}",
                        text(&db, "status"),
                        timeout.as_secs()
                    ),
                ));
            }
            self.sleep(Duration::from_secs(2)).map_err(|()| {
                Error::interrupted(format!(
                    "the run was interrupted while database {uuid} was awaited ({what})"
                ))
            })?;
        }
    }

    /// Polls until the database is up; fails on the timeout or once it has restarted
    /// [`CRASH_RESTARTS`] times, with its status and the end of its log.
    fn wait_healthy(&self, uuid: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        let mut first_count = None;
        let shown = Wait::start(format!("database {uuid} to start"), Some(timeout));
        loop {
            let db = self.must_get(uuid, "while it was starting")?;
            let status = text(&db, "status");
            if is_up(status) {
                return Ok(db);
            }
            shown.saw(status);
            let count = db.get("restart_count").and_then(Value::as_u64).unwrap_or(0);
            let first = *first_count.get_or_insert(count);
            let looping = status.starts_with("restarting") && count >= first + CRASH_RESTARTS;
            if looping || Instant::now() >= deadline {
                let why = if looping {
                    format!("it crash-loops: {status} after {count} restarts")
                } else {
                    format!(
                        "it is {status} after {} s (restarted {count} times)",
                        timeout.as_secs()
                    )
                };
                return Err(Error::new(
                    ErrorKind::Fatal,
                    format!(
                        "database {uuid} did not become healthy: {why}{}",
                        self.log_tail(uuid)
                    ),
                ));
            }
            self.sleep(Duration::from_secs(2)).map_err(|()| {
                Error::interrupted(format!(
                    "the run was interrupted while database {uuid} was starting ({status})"
                ))
            })?;
        }
    }

    /// `; its log ends with:` and the last lines of the container's log, when there are any.
    fn log_tail(&self, uuid: &str) -> String {
        let logs = self
            .apps
            .api
            .get(&format!("{}/logs", db_path(uuid)), &[("lines", LOG_TAIL)])
            .and_then(|r| r.json::<Value>("the logs of a database"))
            .ok()
            .and_then(|v| v.get("logs").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            return String::new();
        }
        format!("; its log ends with:\n  {}", lines.join("\n  "))
    }
}

/// Whether a field as Coolify shows it is the value fabrik sent (numbers and booleans may
/// come back as strings).
fn same(seen: Option<&Value>, sent: &Value) -> bool {
    match (seen, sent) {
        (Some(a), b) if a == b => true,
        (Some(Value::String(a)), b) => match b.as_str() {
            Some(b) => a == b,
            None => a.as_str() == b.to_string().as_str(),
        },
        (Some(a), Value::String(b)) => b.as_str() == a.to_string().as_str(),
        (None | Some(Value::Null), Value::Bool(false)) => true,
        _ => false,
    }
}

fn applied(uuid: &str, db: &Value) -> Applied {
    Applied {
        id: uuid.to_string(),
        outputs: observe::outputs(uuid, db),
        found: false,
    }
}

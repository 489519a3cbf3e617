//! `coolify.application`: find, create, read, update and delete one application, with its
//! environment variables, each change followed by a deployment that is waited for.
//!
//! Ownership: an application fabrik makes carries `fabrik:<stack>/<resource>` as its
//! description. It is found by that marker in its environment, never by its name (Coolify does
//! not keep names unique), and nothing without the marker is changed or deleted.
//!
//! A call that fails leaves things as they were, so the engine's view ("a call reported with
//! an error was not made") holds: a create whose deployment fails deletes the application
//! again, and an update whose deployment fails puts the previous settings back and redeploys
//! them before reporting the failure. An interrupted run does not wait for those deployments
//! (see `Cancel` in the SDK): the previous settings are still put back and their deployment
//! queued, and the call reports that it was not done.
//!
//! - `schema`: the fields, their checks and their normal form; `translation`: that form to and
//!   from Coolify's application fields; `location`: projects, environments, servers and
//!   destinations by name.

mod location;
pub(crate) use location::Place;
pub mod schema;
mod translation;

use std::time::{Duration, Instant};

use fabrik_provider::wait::Wait;
use fabrik_provider::{Applied, Attributes, Error, ErrorKind, Found, Observed, Result, Target};
use serde_json::{Map, Value, json};

use crate::api::{Api, encode_segment};
use crate::deploy::{self, Deployment};
use crate::env;
use schema::{Desired, Source};
use translation::observed_inputs;

/// How often a deletion is checked for having happened.
const DELETE_POLL: Duration = Duration::from_millis(500);

/// A configured `coolify` provider's view of applications.
#[derive(Debug)]
pub struct Applications {
    pub api: Api,
    /// How often a deployment's status is asked for.
    pub poll: Duration,
    /// Held while a project or environment is looked up and made: Coolify does not keep
    /// project names unique, so two applications of a new project created in parallel would
    /// otherwise make the project twice.
    pub naming: std::sync::Mutex<()>,
}

fn app_path(uuid: &str) -> String {
    format!("/applications/{}", encode_segment(uuid))
}

impl Applications {
    /// The application `uuid` as Coolify shows it; `None` when there is none.
    fn get(&self, uuid: &str) -> Result<Option<Value>> {
        self.api.get_found(&app_path(uuid), "an application")
    }

    pub fn read(&self, id: &str, inputs: &Attributes) -> Result<Option<Observed>> {
        let Some(app) = self.get(id)? else {
            return Ok(None);
        };
        self.check_place("application", id, &app, &Place::of(inputs))?;
        self.observe(id, &app, inputs).map(Some)
    }

    /// Inputs and outputs of an application: only the inputs the spec had are reported (an
    /// attribute the spec leaves out is Coolify's to choose), and the image of an application
    /// whose last deployment failed or never happened is reported as not deployed, so a plan
    /// that refreshes (or the adoption of an application whose create was interrupted)
    /// deploys it again.
    fn observe(&self, uuid: &str, app: &Value, inputs: &Attributes) -> Result<Observed> {
        let vars = env::list(&self.api, uuid)?;
        let env = env::as_map(&vars);
        let mut seen = observed_inputs(app, env, inputs);
        seen.retain(|k, _| inputs.contains_key(k));
        let latest = deploy::latest(&self.api, uuid)?;
        let deployed = latest.as_ref().is_some_and(|d| !d.failed());
        if !deployed {
            let why = match &latest {
                Some(d) => format!("last deployment {}", d.status),
                None => "never deployed".to_string(),
            };
            // The source is what did not get deployed: its image, or its git branch.
            let source = match seen.get_mut("image") {
                Some(image) => Some(image),
                None => seen.get_mut("git").and_then(|g| g.get_mut("branch")),
            };
            if let Some(Value::String(text)) = source {
                *text = format!("{text} ({why})");
            }
        }
        Ok(Observed {
            inputs: seen,
            outputs: outputs(uuid, app, latest.as_ref().map(|d| d.uuid.as_str())),
        })
    }

    /// The application carrying this resource's marker in its project and environment.
    ///
    /// # Errors
    /// [`ErrorKind::Conflict`] when more than one carries it (someone copied it).
    pub fn find(&self, target: Target<'_>, inputs: &Attributes) -> Result<Option<Found>> {
        let desired = Desired::from_inputs(inputs)?;
        let Some(uuid) = self.find_uuid(target, &desired)? else {
            return Ok(None);
        };
        // After an interrupted create the deployment may still be running: its outcome decides
        // whether the application is deployed, so wait for it (bounded by the deploy timeout).
        // A failure is not an error here: it shows in what is observed below.
        if let Some(latest) = deploy::latest(&self.api, &uuid)?
            && !latest.done()
        {
            let _ = deploy::wait(
                &self.api,
                &uuid,
                &latest.uuid,
                desired.deploy_timeout,
                self.poll,
            );
        }
        let Some(app) = self.get(&uuid)? else {
            return Ok(None);
        };
        Ok(Some(Found {
            observed: self.observe(&uuid, &app, inputs)?,
            id: uuid,
        }))
    }

    /// The applications of the desired project and environment; `None` when either is missing.
    pub(crate) fn environment_apps(&self, desired: &Desired) -> Result<Option<Vec<Value>>> {
        let Some(project) = self.project_uuid(&desired.project)? else {
            return Ok(None);
        };
        let path = format!(
            "/projects/{}/{}",
            encode_segment(&project),
            encode_segment(&desired.environment)
        );
        let environment: Value = match self.api.get(&path, &[]) {
            Ok(reply) => reply.json("an environment")?,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(Some(
            environment
                .get("applications")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        ))
    }

    fn find_uuid(&self, target: Target<'_>, desired: &Desired) -> Result<Option<String>> {
        let marker = target.marker();
        let Some(apps) = self.environment_apps(desired)? else {
            return Ok(None);
        };
        let ours: Vec<&str> = apps
            .iter()
            .filter(|a| carries(a, &marker))
            .filter_map(|a| a.get("uuid").and_then(Value::as_str))
            .collect();
        match ours.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.to_string())),
            many => Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "{} applications in project {} ({}) carry the marker {marker}: {}; delete the \
                     copies in Coolify so that one remains",
                    many.len(),
                    desired.project,
                    desired.environment,
                    many.join(", ")
                ),
            )),
        }
    }

    /// Creates the application (or converges on the one an earlier attempt made), sets its
    /// environment, deploys it and waits for the deployment.
    pub fn create(&self, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        let desired = Desired::from_inputs(inputs)?;
        let env = desired.env.clone().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                "`env` is known only by its hash: its values are needed to create the application",
            )
        })?;
        let (uuid, made) = match self.find_uuid(target, &desired)? {
            // An earlier attempt got this far: bring it to what is wanted.
            Some(uuid) => {
                self.patch(&uuid, &desired, target.name)?;
                (uuid, false)
            }
            None => (self.post(target, &desired)?, true),
        };
        let outcome =
            env::sync(&self.api, &uuid, &env).and_then(|()| self.deploy_and_wait(&uuid, &desired));
        match outcome {
            Ok(deployment) => self.applied(&uuid, &deployment),
            Err(error) => {
                // A failed create leaves nothing behind: the engine has no id to undo it with.
                if (made || self.carries_marker(&uuid, target)?)
                    && let Err(cleanup) = self.remove(&uuid, desired.deploy_timeout)
                {
                    return Err(reworded(
                        &error,
                        format!(
                            "{}; removing the application {uuid} again also failed: {}",
                            error.message, cleanup.message
                        ),
                    ));
                }
                Err(error)
            }
        }
    }

    /// Takes over the one application of the resource's name in its environment that carries
    /// no fabrik marker (`adopt: true`): stamps the marker in its description (keeping what
    /// the description said), makes it match the spec, deploys it and waits. With nothing to
    /// take over it creates; an application of this resource's is converged on.
    ///
    /// # Errors
    /// [`ErrorKind::Conflict`] when the application of that name is another resource's, or
    /// when several carry the name (names are not unique in Coolify: there is no telling which
    /// one is meant).
    pub fn adopt(&self, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        let desired = Desired::from_inputs(inputs)?;
        if self.find_uuid(target, &desired)?.is_some() {
            return self.create(target, inputs);
        }
        let name = desired.name.as_deref().unwrap_or(target.name);
        let apps = self.environment_apps(&desired)?.unwrap_or_default();
        let named: Vec<&Value> = apps
            .iter()
            .filter(|a| a.get("name").and_then(Value::as_str) == Some(name))
            .collect();
        if let Some(owned) = named.iter().find_map(|a| fabrik_marker(a)) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "the application named {name:?} in project {} ({}) is managed by {owned}; \
                     it is never adopted",
                    desired.project, desired.environment
                ),
            ));
        }
        let uuid = match named.as_slice() {
            [] => return self.create(target, inputs),
            [one] => one.get("uuid").and_then(Value::as_str).unwrap_or_default(),
            many => {
                let uuids: Vec<&str> = many
                    .iter()
                    .filter_map(|a| a.get("uuid").and_then(Value::as_str))
                    .collect();
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "{} applications are named {name:?} in project {} ({}): {}; rename all \
                         but the one to adopt",
                        many.len(),
                        desired.project,
                        desired.environment,
                        uuids.join(", ")
                    ),
                ));
            }
        };
        let env = desired.env.clone().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                "`env` is known only by its hash: its values are needed to adopt the application",
            )
        })?;
        let before = named[0]
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("");
        let description = stamped(before, &target.marker());
        self.api
            .patch(&app_path(uuid), &json!({ "description": description }))?;
        self.patch(uuid, &desired, target.name)?;
        env::sync(&self.api, uuid, &env)?;
        let deployment = self.deploy_and_wait(uuid, &desired).map_err(|e| {
            reworded(
                &e,
                format!(
                    "{} (application {uuid} now carries {} and the spec's settings)",
                    e.message,
                    target.marker()
                ),
            )
        })?;
        self.applied(uuid, &deployment)
    }

    /// Claims application `id` for this resource (`fabrik import`): refuses one that carries
    /// another resource's marker, adds this resource's marker to its description and changes
    /// nothing else. The next plan shows how it differs from the spec.
    ///
    /// # Errors
    /// [`ErrorKind::NotFound`] when there is no application `id`; [`ErrorKind::Conflict`] when
    /// it belongs to another resource.
    pub fn import(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<Found> {
        let marker = target.marker();
        let app = self.get(id)?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("Coolify has no application {id}"),
            )
        })?;
        match fabrik_marker(&app) {
            Some(owner) if owner == marker => {}
            Some(owner) => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("application {id} is managed by {owner}; it is never imported"),
                ));
            }
            None => {
                let before = app.get("description").and_then(Value::as_str).unwrap_or("");
                let description = stamped(before, &marker);
                self.api
                    .patch(&app_path(id), &json!({ "description": description }))?;
            }
        }
        let app = self.get(id)?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("application {id} disappeared while it was being imported"),
            )
        })?;
        Ok(Found {
            observed: self.observe(id, &app, inputs)?,
            id: id.to_string(),
        })
    }

    /// Changes the application in place, then redeploys and waits; on a failed deployment the
    /// previous settings and environment are put back and deployed again.
    pub fn update(
        &self,
        target: Target<'_>,
        id: &str,
        prior: &Attributes,
        inputs: &Attributes,
    ) -> Result<Applied> {
        let desired = Desired::from_inputs(inputs)?;
        let env = desired.env.clone().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                "`env` is known only by its hash: its new values are needed to update the application",
            )
        })?;
        self.owned(id, target)?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("application {id} no longer exists in Coolify"),
            )
        })?;
        if let Ok(before) = Desired::from_inputs(prior)
            && std::mem::discriminant(&before.source) != std::mem::discriminant(&desired.source)
        {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "an application cannot switch between `image` and `git` in place; remove it \
                 from the spec and apply, then add it back with its new source",
            ));
        }
        self.patch(id, &desired, target.name)?;
        let outcome =
            env::sync(&self.api, id, &env).and_then(|()| self.deploy_and_wait(id, &desired));
        match outcome {
            Ok(deployment) => self.applied(id, &deployment),
            Err(error) => Err(self.restore(target, id, prior, error)),
        }
    }

    /// Puts `prior` back after a failed update and deploys it; the error says what happened.
    fn restore(&self, target: Target<'_>, id: &str, prior: &Attributes, error: Error) -> Error {
        let Ok(before) = Desired::from_inputs(prior) else {
            return error;
        };
        let mut notes = Vec::new();
        let mut result = self.patch(id, &before, target.name);
        match &before.env {
            Some(env) => {
                result = result.and_then(|()| env::sync(&self.api, id, env));
            }
            None => notes.push("its environment was left as the failed change set it"),
        }
        let result = result.and_then(|()| self.deploy_and_wait(id, &before).map(|_| ()));
        let extra = if notes.is_empty() {
            String::new()
        } else {
            format!("; {}", notes.join("; "))
        };
        match result {
            Ok(()) => reworded(
                &error,
                format!(
                    "{} (the previous settings were put back and deployed{extra})",
                    error.message
                ),
            ),
            // Their deployment is queued; the run does not wait for it.
            Err(again) if again.interrupted => reworded(
                &error,
                format!(
                    "{} (the previous settings were put back and their deployment queued{extra})",
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

    /// Deletes the application and waits until it is gone (Coolify deletes asynchronously,
    /// and a new application cannot take its domains before).
    pub fn delete(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<()> {
        if self.owned(id, target)?.is_none() {
            return Ok(());
        }
        let timeout = Desired::from_inputs(inputs)
            .map_or(schema::DEFAULT_DEPLOY_TIMEOUT, |d| d.deploy_timeout);
        self.remove(id, timeout)
    }

    /// The application `id` if it is there, refusing one that is not this resource's.
    fn owned(&self, id: &str, target: Target<'_>) -> Result<Option<Value>> {
        let Some(app) = self.get(id)? else {
            return Ok(None);
        };
        let marker = target.marker();
        if !carries(&app, &marker) {
            let description = app.get("description").and_then(Value::as_str).unwrap_or("");
            let owner = if description.starts_with("fabrik:") {
                format!("it belongs to {description}")
            } else {
                "it does not carry a fabrik marker".to_string()
            };
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "application {id} is not managed by this resource ({marker}): {owner}; \
                     fabrik leaves it alone"
                ),
            ));
        }
        Ok(Some(app))
    }

    fn carries_marker(&self, uuid: &str, target: Target<'_>) -> Result<bool> {
        Ok(self
            .get(uuid)?
            .is_some_and(|app| carries(&app, &target.marker())))
    }

    fn remove(&self, uuid: &str, timeout: Duration) -> Result<()> {
        match self.api.delete(&app_path(uuid), &[]) {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
        let deadline = Instant::now() + timeout;
        let _shown = Wait::start(format!("application {uuid} to be deleted"), Some(timeout));
        loop {
            if self.get(uuid)?.is_none() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Transient,
                    format!(
                        "application {uuid} is still there {} s after Coolify queued its deletion",
                        timeout.as_secs()
                    ),
                ));
            }
            let poll = DELETE_POLL.min(self.poll.max(Duration::from_millis(50)));
            if self.api.cancel().sleep(poll).is_err() {
                return Err(Error::interrupted(format!(
                    "application {uuid} is queued for deletion, but the run was interrupted \
                     before Coolify deleted it"
                )));
            }
        }
    }

    /// `POST /applications/dockerimage` or `/applications/public`: the application with its
    /// marker, no automatic domain and no instant deployment (the deployment is triggered and
    /// waited for once the environment is set).
    fn post(&self, target: Target<'_>, desired: &Desired) -> Result<String> {
        let (place, server) = self.place_body(
            &desired.project,
            &desired.environment,
            &desired.server,
            desired.destination.as_deref(),
        )?;
        let mut body = desired.settings(target.name);
        body.extend(place);
        body.insert("description".into(), json!(target.marker()));
        body.insert("autogenerate_domain".into(), json!(false));
        body.insert("instant_deploy".into(), json!(false));
        let path = match desired.source {
            Source::Image { .. } => "/applications/dockerimage",
            Source::Git(_) => "/applications/public",
        };
        let reply = match self.api.post(path, &[], Some(&Value::Object(body))) {
            Ok(reply) => reply,
            Err(e) if e.kind == ErrorKind::Transient => {
                // The create may have been made before the answer was lost: look before the
                // engine tries again.
                if let Some(uuid) = self.find_uuid(target, desired)? {
                    return Ok(uuid);
                }
                return Err(e);
            }
            // A server with several destinations needs one named: say which there are.
            Err(e)
                if e.kind == ErrorKind::InvalidInput
                    && e.field.as_deref() == Some("destination_uuid")
                    && desired.destination.is_none() =>
            {
                let names = self.destination_names(&server).unwrap_or_default();
                return Err(Error::new(
                    e.kind,
                    format!(
                        "{}; set `destination` to one of the destinations of server {}: {}",
                        e.message,
                        desired.server,
                        names.join(", ")
                    ),
                ));
            }
            Err(e) => return Err(e),
        };
        let created: Value = reply.json("the create of an application")?;
        match created.get("uuid").and_then(Value::as_str) {
            Some(uuid) => Ok(uuid.to_string()),
            // A 200 `{message}` without a uuid (a skipped instant deploy): it exists, find it.
            None => self.find_uuid(target, desired)?.ok_or_else(|| {
                Error::new(
                    ErrorKind::Fatal,
                    format!(
                        "Coolify answered the create without a uuid ({}) and no application \
                         carries {}",
                        crate::api::excerpt(&reply.body),
                        target.marker()
                    ),
                )
            }),
        }
    }

    /// `PATCH /applications/{uuid}` with every setting fabrik manages, then a read back: old
    /// Coolify versions dropped domains on PATCH (#4999) and an empty `domains` is ignored
    /// (#11116), so what was asked is checked, not assumed.
    fn patch(&self, uuid: &str, desired: &Desired, fallback_name: &str) -> Result<()> {
        let body = desired.settings(fallback_name);
        self.api.patch(&app_path(uuid), &Value::Object(body))?;
        let app = self.get(uuid)?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("application {uuid} disappeared while it was being changed"),
            )
        })?;
        let now: Vec<String> = app
            .get("fqdn")
            .and_then(Value::as_str)
            .unwrap_or("")
            .split(',')
            .filter(|d| !d.trim().is_empty())
            .map(|d| schema::normal_url(d).unwrap_or_else(|_| d.trim().to_string()))
            .collect();
        // A compose application's domains are its services' (never written here).
        if now != desired.domains && !desired.is_compose() {
            let hint = if desired.domains.is_empty() {
                " (Coolify ignores an empty `domains` on update, coollabsio/coolify#11116: remove \
                 the domains in Coolify's dashboard)"
            } else {
                ""
            };
            return Err(Error::new(
                ErrorKind::Fatal,
                format!(
                    "application {uuid} has domains [{}] after the update asked for [{}]{hint}",
                    now.join(", "),
                    desired.domains.join(", ")
                ),
            ));
        }
        Ok(())
    }

    fn deploy_and_wait(&self, uuid: &str, desired: &Desired) -> Result<Deployment> {
        deploy::deploy_and_wait(&self.api, uuid, desired.deploy_timeout, self.poll)
    }

    fn applied(&self, uuid: &str, deployment: &Deployment) -> Result<Applied> {
        let app = self.get(uuid)?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("application {uuid} disappeared right after its deployment"),
            )
        })?;
        Ok(Applied {
            id: uuid.to_string(),
            outputs: outputs(uuid, &app, Some(&deployment.uuid)),
            found: false,
        })
    }
}

/// `error` in other words, of the same kind. An error that ended a wait the run's interrupt cut
/// short stays marked so ([`Error::interrupted`]), so that the engine does not make the call
/// again in this run.
pub(crate) fn reworded(error: &Error, message: String) -> Error {
    let again = Error::new(error.kind, message);
    if error.interrupted {
        again.cut_short()
    } else {
        again
    }
}

/// `description` with `marker` on a line of its own at its head, keeping what it said.
pub(crate) fn stamped(description: &str, marker: &str) -> String {
    let before = description.trim();
    if before.is_empty() {
        marker.to_string()
    } else {
        format!("{marker}\n{before}")
    }
}

/// The uuid of the one object of `all` (of a kind Coolify lists all at once: databases,
/// services) that carries `marker`.
///
/// # Errors
/// [`ErrorKind::Conflict`] when more than one carries it (someone copied it).
pub(crate) fn the_one_carrying(all: &[Value], marker: &str, kinds: &str) -> Result<Option<String>> {
    let ours: Vec<&str> = all
        .iter()
        .filter(|o| carries(o, marker))
        .filter_map(|o| o.get("uuid").and_then(Value::as_str))
        .collect();
    match ours.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.to_string())),
        many => Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "{} {kinds} carry the marker {marker}: {}; delete the copies in Coolify so \
                 that one remains",
                many.len(),
                many.join(", ")
            ),
        )),
    }
}

/// Refuses `object` (the `kind` `id`) unless it carries `marker`: what is not this
/// resource's is never changed or deleted.
///
/// # Errors
/// [`ErrorKind::Conflict`] naming whose it is.
pub(crate) fn refuse_unless_ours(kind: &str, id: &str, object: &Value, marker: &str) -> Result<()> {
    if carries(object, marker) {
        return Ok(());
    }
    let owner = match fabrik_marker(object) {
        Some(other) => format!("it belongs to {other}"),
        None => "it does not carry a fabrik marker".to_string(),
    };
    Err(Error::new(
        ErrorKind::Conflict,
        format!(
            "{kind} {id} is not managed by this resource ({marker}): {owner}; fabrik leaves it \
             alone"
        ),
    ))
}

/// The fabrik marker an application's description carries, if any.
pub(crate) fn fabrik_marker(app: &Value) -> Option<String> {
    app.get("description")
        .and_then(Value::as_str)?
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("fabrik:"))
        .map(str::to_string)
}

/// Whether an application's description carries `marker` (alone, or on a line of its own).
pub(crate) fn carries(app: &Value, marker: &str) -> bool {
    app.get("description")
        .and_then(Value::as_str)
        .is_some_and(|d| d.lines().any(|l| l.trim() == marker))
}

fn outputs(uuid: &str, app: &Value, deployment: Option<&str>) -> Attributes {
    let mut out = Map::new();
    out.insert("uuid".into(), json!(uuid));
    out.insert(
        "fqdn".into(),
        json!(app.get("fqdn").and_then(Value::as_str).unwrap_or("")),
    );
    out.insert(
        "status".into(),
        json!(app.get("status").and_then(Value::as_str).unwrap_or("")),
    );
    out.insert("deployment".into(), json!(deployment.unwrap_or("")));
    out
}

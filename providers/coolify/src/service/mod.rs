//! `coolify.service`: a one-click service or a Docker Compose stack, found by its ownership
//! marker, created, started and waited for until it runs, updated, and deleted.
//!
//! Ownership as for applications: a service fabrik makes carries `fabrik:<stack>/<resource>`
//! as its description, is found by that marker, never by name, and one without this
//! resource's marker is never changed or deleted. A create whose service does not come up is
//! undone (the service is deleted again), and a create after a run killed half-way converges
//! on the service that run made instead of making a second one.
//!
//! Coolify answers the compose decoded and dumped again (comments dropped, quoting changed),
//! so what a read reports is compared as parsed YAML, not as text. An update whose service
//! does not run again puts back the compose, name, URLs and variables it had, and restarts
//! it, before reporting the failure. A service that is not running (stopped in the dashboard)
//! is reported with its `status` as an input the spec does not have, so that a refreshed
//! plan shows the change that starts it.
//!
//! - `schema`: the fields, their checks and their normal form; `env`: the variables it sets.

mod env;
pub mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use fabrik_provider::wait::Wait;
use fabrik_provider::{Applied, Attributes, Error, ErrorKind, Found, Observed, Result, Target};
use serde_json::{Map, Value, json};

use crate::api::{encode_segment, is_up, text};
use crate::application::schema::normal_url;
use crate::application::{
    Applications, Place, fabrik_marker, refuse_unless_ours, reworded, stamped, the_one_carrying,
};
use schema::{Desired, Source};

/// How often a deletion is checked for having happened.
const DELETE_POLL: Duration = Duration::from_millis(500);

/// A configured `coolify` provider's view of services.
#[derive(Debug)]
pub struct Services<'a> {
    pub apps: &'a Applications,
}

fn path(uuid: &str) -> String {
    format!("/services/{}", encode_segment(uuid))
}

impl Services<'_> {
    fn get(&self, uuid: &str) -> Result<Option<Value>> {
        self.apps.api.get_found(&path(uuid), "a service")
    }

    pub fn read(&self, id: &str, inputs: &Attributes) -> Result<Option<Observed>> {
        let Some(service) = self.get(id)? else {
            return Ok(None);
        };
        self.apps
            .check_place("service", id, &service, &Place::of(inputs))?;
        self.observe(id, &service, inputs).map(Some)
    }

    /// The service carrying this resource's marker.
    ///
    /// # Errors
    /// [`ErrorKind::Conflict`] when more than one carries it.
    pub fn find(&self, target: Target<'_>, inputs: &Attributes) -> Result<Option<Found>> {
        let Some(uuid) = self.find_uuid(target)? else {
            return Ok(None);
        };
        // A run killed between the create and the start left it stopped: a read would not
        // tell (a service has no field to mark as not running), so it is started here, as
        // the create would have. A failure shows in its status.
        if let Some(service) = self.get(&uuid)?
            && text(&service, "status") == "exited"
            && let Ok(desired) = Desired::from_inputs(inputs)
        {
            let _ = self.start_and_wait(&uuid, "start", &desired);
        }
        let Some(service) = self.get(&uuid)? else {
            return Ok(None);
        };
        Ok(Some(Found {
            observed: self.observe(&uuid, &service, inputs)?,
            id: uuid,
        }))
    }

    fn find_uuid(&self, target: Target<'_>) -> Result<Option<String>> {
        let all: Vec<Value> = self.apps.api.get("/services", &[])?.json("the services")?;
        the_one_carrying(&all, &target.marker(), "services")
    }

    /// Creates the service (or converges on the one an earlier attempt made), starts it and
    /// waits until it runs; one that does not come up is deleted again.
    pub fn create(&self, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        let desired = Desired::from_inputs(inputs)?;
        let wanted = known_env(&desired, "create")?;
        let uuid = match self.find_uuid(target)? {
            Some(uuid) => {
                let service = self.must_get(&uuid, "while it was being created")?;
                self.patch(&uuid, &service, &desired, target.name)?;
                env::sync(&self.apps.api, &uuid, wanted, &env::managed_keys(&service))?;
                uuid
            }
            None => {
                let uuid = self.post(target, &desired)?;
                let made = env::sync(&self.apps.api, &uuid, wanted, &BTreeSet::new());
                if let Err(error) = made {
                    let _ = self.remove(&uuid, desired.start_timeout);
                    return Err(error);
                }
                uuid
            }
        };
        match self.start_and_wait(&uuid, "start", &desired) {
            Ok(service) => Ok(applied(&uuid, &service)),
            Err(error) => {
                let _ = self.remove(&uuid, desired.start_timeout);
                Err(error)
            }
        }
    }

    /// Claims service `id` for this resource (`fabrik import`), changing nothing but its
    /// description.
    pub fn import(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<Found> {
        let marker = target.marker();
        let service = self.get(id)?.ok_or_else(|| {
            Error::new(ErrorKind::NotFound, format!("Coolify has no service {id}"))
        })?;
        match fabrik_marker(&service) {
            Some(owner) if owner == marker => {}
            Some(owner) => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("service {id} is managed by {owner}; it is never imported"),
                ));
            }
            None => {
                let description = stamped(text(&service, "description"), &marker);
                self.apps
                    .api
                    .patch(&path(id), &json!({"description": description}))?;
            }
        }
        let service = self
            .get(id)?
            .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("service {id} disappeared")))?;
        Ok(Found {
            observed: self.observe(id, &service, inputs)?,
            id: id.to_string(),
        })
    }

    /// Changes the name, compose, URLs and variables in place; a change of the compose, the
    /// URLs or a variable restarts the service, which is waited for. One that does not run
    /// again gets back what it had (see the module's doc).
    pub fn update(
        &self,
        target: Target<'_>,
        id: &str,
        prior: &Attributes,
        inputs: &Attributes,
    ) -> Result<Applied> {
        let desired = Desired::from_inputs(inputs)?;
        let wanted = known_env(&desired, "update")?;
        let Some(before) = self.owned(id, target)? else {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("service {id} no longer exists in Coolify"),
            ));
        };
        let rows = env::list(&self.apps.api, id)?;
        let mut touched = env::managed_keys(&before);
        if let Some(Value::Object(old)) = prior.get("env") {
            touched.extend(old.keys().cloned());
        }
        let drop = touched.clone();
        touched.extend(wanted.keys().cloned());
        let urls_before = container_urls(&before);
        // The compose as it runs, not only as recorded: one changed in the dashboard and put
        // back by this update needs the restart as much.
        let compose_changed = match &desired.source {
            Source::Compose(c) => {
                schema::parse_compose(c).ok()
                    != schema::parse_compose(text(&before, "docker_compose_raw")).ok()
            }
            Source::Type(_) => false,
        };
        let restart = prior.get("compose") != inputs.get("compose")
            || compose_changed
            || env::values_of(&rows, &wanted.keys().cloned().collect()).as_ref() != Some(wanted)
            || rows
                .iter()
                .any(|r| drop.contains(&r.key) && !wanted.contains_key(&r.key))
            || desired
                .domains
                .iter()
                .any(|(name, urls)| urls_before.get(name) != Some(urls));
        let outcome = self
            .patch(id, &before, &desired, target.name)
            .and_then(|()| env::sync(&self.apps.api, id, wanted, &drop))
            .and_then(|()| {
                let verb = if restart { "restart" } else { "start" };
                self.start_and_wait(id, verb, &desired)
            });
        match outcome {
            Ok(service) => Ok(applied(id, &service)),
            Err(error) => Err(self.restore(id, &before, &rows, &touched, &desired, error)),
        }
    }

    /// Puts back what the service had before a failed update (`before` as read then, its
    /// rows of the `touched` keys) and restarts it; the error says what happened.
    fn restore(
        &self,
        id: &str,
        before: &Value,
        rows: &[env::Row],
        touched: &BTreeSet<String>,
        desired: &Desired,
        error: Error,
    ) -> Error {
        let mut body = Map::new();
        body.insert("name".into(), json!(text(before, "name")));
        body.insert("description".into(), json!(text(before, "description")));
        if matches!(desired.source, Source::Compose(_)) {
            let compose = text(before, "docker_compose_raw");
            body.insert("docker_compose_raw".into(), json!(schema::base64(compose)));
        }
        let urls_before = container_urls(before);
        if !desired.domains.is_empty() {
            let urls: Vec<Value> = desired
                .domains
                .keys()
                .map(|name| {
                    let url = urls_before
                        .get(name)
                        .map(|u| u.join(","))
                        .unwrap_or_default();
                    json!({"name": name, "url": url})
                })
                .collect();
            body.insert("urls".into(), Value::Array(urls));
        }
        let result = self
            .apps
            .api
            .patch(&path(id), &Value::Object(body))
            .and_then(|_| env::put_back(&self.apps.api, id, rows, touched))
            .and_then(|()| self.start_and_wait(id, "restart", desired));
        match result {
            Ok(_) => reworded(
                &error,
                format!(
                    "{} (its previous compose, URLs and variables were put back and it runs again)",
                    error.message
                ),
            ),
            Err(again) if again.interrupted => reworded(
                &error,
                format!(
                    "{} (its previous compose, URLs and variables were put back and its restart \
                     queued)",
                    error.message
                ),
            )
            .cut_short(),
            Err(again) => Error::new(
                ErrorKind::Fatal,
                format!(
                    "{}; putting its previous settings back failed too: {}",
                    error.message, again.message
                ),
            ),
        }
    }

    pub fn delete(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<()> {
        if self.owned(id, target)?.is_none() {
            return Ok(());
        }
        let timeout =
            Desired::from_inputs(inputs).map_or(schema::DEFAULT_START_TIMEOUT, |d| d.start_timeout);
        self.remove(id, timeout)
    }

    fn must_get(&self, uuid: &str, when: &str) -> Result<Value> {
        self.get(uuid)?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("service {uuid} disappeared {when}"),
            )
        })
    }

    fn owned(&self, id: &str, target: Target<'_>) -> Result<Option<Value>> {
        let Some(service) = self.get(id)? else {
            return Ok(None);
        };
        refuse_unless_ours("service", id, &service, &target.marker())?;
        Ok(Some(service))
    }

    fn remove(&self, uuid: &str, timeout: Duration) -> Result<()> {
        match self.apps.api.delete(&path(uuid), &[]) {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        }
        let deadline = Instant::now() + timeout;
        let _shown = Wait::start(format!("service {uuid} to be deleted"), Some(timeout));
        while self.get(uuid)?.is_some() {
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Transient,
                    format!(
                        "service {uuid} is still there {} s after Coolify queued its deletion",
                        timeout.as_secs()
                    ),
                ));
            }
            self.sleep(DELETE_POLL).map_err(|()| {
                Error::interrupted(format!(
                    "service {uuid} is queued for deletion, but the run was interrupted before \
                     Coolify deleted it"
                ))
            })?;
        }
        Ok(())
    }

    fn sleep(&self, at_most: Duration) -> std::result::Result<(), ()> {
        let poll = at_most.min(self.apps.poll.max(Duration::from_millis(20)));
        self.apps.api.cancel().sleep(poll).map_err(|_| ())
    }

    /// `POST /services`: the service with its marker, not started yet.
    fn post(&self, target: Target<'_>, desired: &Desired) -> Result<String> {
        let (mut body, _) = self.apps.place_body(
            &desired.project,
            &desired.environment,
            &desired.server,
            desired.destination.as_deref(),
        )?;
        body.insert(
            "name".into(),
            json!(desired.name.as_deref().unwrap_or(target.name)),
        );
        let keys = desired.env.as_ref().into_iter().flat_map(BTreeMap::keys);
        body.insert(
            "description".into(),
            json!(env::with_keys(&target.marker(), keys)),
        );
        if let Some(urls) = urls_body(desired) {
            body.insert("urls".into(), urls);
        }
        match &desired.source {
            Source::Type(t) => body.insert("type".into(), json!(t)),
            Source::Compose(c) => {
                body.insert("docker_compose_raw".into(), json!(schema::base64(c)))
            }
        };
        body.insert("instant_deploy".into(), json!(false));
        let reply = self
            .apps
            .api
            .post("/services", &[], Some(&Value::Object(body)));
        match reply {
            Ok(reply) => {
                let made: Value = reply.json("the create of a service")?;
                match made.get("uuid").and_then(Value::as_str) {
                    Some(uuid) => Ok(uuid.to_string()),
                    None => self.find_uuid(target)?.ok_or_else(|| {
                        Error::new(
                            ErrorKind::Fatal,
                            "Coolify created a service without answering its uuid",
                        )
                    }),
                }
            }
            // A lost answer: the service may have been made; its marker tells.
            Err(e) if e.kind == ErrorKind::Transient => self.find_uuid(target)?.ok_or(e),
            Err(e) => Err(e),
        }
    }

    /// `PATCH /services/{uuid}`: the name, the compose, the URLs, and the description's list
    /// of the variables fabrik sets (`service` is the service as it is now).
    fn patch(
        &self,
        uuid: &str,
        service: &Value,
        desired: &Desired,
        fallback_name: &str,
    ) -> Result<()> {
        let mut body = Map::new();
        body.insert(
            "name".into(),
            json!(desired.name.as_deref().unwrap_or(fallback_name)),
        );
        if let Source::Compose(c) = &desired.source {
            body.insert("docker_compose_raw".into(), json!(schema::base64(c)));
        }
        if let Some(urls) = urls_body(desired) {
            body.insert("urls".into(), urls);
        }
        if let Some(wanted) = &desired.env {
            let description = env::with_keys(text(service, "description"), wanted.keys());
            if description != text(service, "description") {
                body.insert("description".into(), json!(description));
            }
        }
        self.apps.api.patch(&path(uuid), &Value::Object(body))?;
        Ok(())
    }

    /// Starts (or restarts) the service unless it runs already (a restart always), and polls
    /// until it does; fails on `start_timeout` with its status.
    fn start_and_wait(&self, uuid: &str, verb: &str, desired: &Desired) -> Result<Value> {
        let running = self
            .get(uuid)?
            .is_some_and(|s| is_up(text(&s, "status")) || text(&s, "status") == "running:starting");
        if verb == "restart" || !running {
            self.apps
                .api
                .post(&format!("{}/{verb}", path(uuid)), &[], None)?;
        }
        let deadline = Instant::now() + desired.start_timeout;
        let shown = Wait::start(
            format!("service {uuid} to start"),
            Some(desired.start_timeout),
        );
        loop {
            let service = self.get(uuid)?.ok_or_else(|| {
                Error::new(
                    ErrorKind::NotFound,
                    format!("service {uuid} disappeared while it was starting"),
                )
            })?;
            let status = text(&service, "status");
            if is_up(status) {
                return Ok(service);
            }
            shown.saw(status);
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Fatal,
                    format!(
                        "service {uuid} is still {status} {} s after its {verb}",
                        desired.start_timeout.as_secs()
                    ),
                ));
            }
            self.sleep(Duration::from_secs(2)).map_err(|()| {
                Error::interrupted(format!(
                    "the run was interrupted while service {uuid} was starting"
                ))
            })?;
        }
    }
}

impl Services<'_> {
    /// The inputs a service as Coolify shows it stands for (those the spec has), and its
    /// outputs. The compose is reported as the spec wrote it when it means the same YAML.
    fn observe(&self, uuid: &str, service: &Value, inputs: &Attributes) -> Result<Observed> {
        let mut seen = inputs.clone();
        if inputs.contains_key("name") {
            seen.insert("name".into(), json!(text(service, "name")));
        }
        if inputs.contains_key("type") {
            seen.insert("type".into(), json!(text(service, "service_type")));
        }
        if let Some(wanted) = inputs.get("compose").and_then(Value::as_str) {
            let now = text(service, "docker_compose_raw");
            let same = match (schema::parse_compose(wanted), schema::parse_compose(now)) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
            if !same {
                seen.insert("compose".into(), json!(now));
            }
        }
        if let Some(wanted) = inputs.get("env") {
            // The keys the spec names, or (its values held by their hash) those the service
            // says fabrik wrote.
            let keys: BTreeSet<String> = match wanted.as_object() {
                Some(map) => map.keys().cloned().collect(),
                None => env::managed_keys(service),
            };
            let rows = env::list(&self.apps.api, uuid)?;
            // Hidden from a token without read:sensitive: nothing to compare, keep the spec's.
            if let Some(values) = env::values_of(&rows, &keys) {
                seen.insert("env".into(), json!(values));
            }
        }
        if let Some(Value::Object(wanted)) = inputs.get("domains") {
            let now = container_urls(service);
            let domains: BTreeMap<&String, Vec<String>> = wanted
                .keys()
                .map(|name| (name, now.get(name).cloned().unwrap_or_default()))
                .collect();
            seen.insert("domains".into(), json!(domains));
        }
        let status = text(service, "status");
        if !is_up(status) && status != "running:starting" {
            let status = if status.is_empty() {
                "not running"
            } else {
                status
            };
            seen.insert("status".into(), json!(status));
        }
        Ok(Observed {
            inputs: seen,
            outputs: outputs(uuid, service),
        })
    }
}

/// The variables a create or an update writes; refused when the inputs hold them only by
/// their hash.
fn known_env<'d>(desired: &'d Desired, what: &str) -> Result<&'d BTreeMap<String, String>> {
    desired.env.as_ref().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("`env` is known only by its hash: its values are needed to {what} the service"),
        )
    })
}

/// `urls: [{name, url}]` for the containers the spec gives URLs; `None` when it gives none.
fn urls_body(desired: &Desired) -> Option<Value> {
    if desired.domains.is_empty() {
        return None;
    }
    let urls: Vec<Value> = desired
        .domains
        .iter()
        .map(|(name, urls)| json!({"name": name, "url": urls.join(",")}))
        .collect();
    Some(Value::Array(urls))
}

/// The URLs of each container that has some, in normal form, by container name.
fn container_urls(service: &Value) -> BTreeMap<String, Vec<String>> {
    service
        .get("applications")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let fqdn = a.get("fqdn").and_then(Value::as_str)?;
            let urls = fqdn
                .split(',')
                .filter(|u| !u.trim().is_empty())
                .map(|u| normal_url(u).unwrap_or_else(|_| u.trim().to_string()))
                .collect();
            Some((text(a, "name").to_string(), urls))
        })
        .collect()
}

fn outputs(uuid: &str, service: &Value) -> Attributes {
    let urls: Map<String, Value> = service
        .get("applications")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let url = a.get("fqdn").and_then(Value::as_str)?;
            Some((text(a, "name").to_string(), json!(url)))
        })
        .collect();
    let mut out = Attributes::new();
    out.insert("uuid".into(), json!(uuid));
    out.insert("urls".into(), Value::Object(urls));
    out.insert("status".into(), json!(text(service, "status")));
    out
}

fn applied(uuid: &str, service: &Value) -> Applied {
    Applied {
        id: uuid.to_string(),
        outputs: outputs(uuid, service),
        found: false,
    }
}

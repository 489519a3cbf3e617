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
//! so what a read reports is compared as parsed YAML, not as text.

pub mod schema;

use std::time::{Duration, Instant};

use fabrik_provider::wait::Wait;
use fabrik_provider::{Applied, Attributes, Error, ErrorKind, Found, Observed, Result, Target};
use serde_json::{Map, Value, json};

use crate::api::{encode_segment, is_up, text};
use crate::application::{Applications, Place, carries, fabrik_marker};
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
        Ok(Some(observe(id, &service, inputs)))
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
            observed: observe(&uuid, &service, inputs),
            id: uuid,
        }))
    }

    fn find_uuid(&self, target: Target<'_>) -> Result<Option<String>> {
        let marker = target.marker();
        let all: Vec<Value> = self.apps.api.get("/services", &[])?.json("the services")?;
        let ours: Vec<&str> = all
            .iter()
            .filter(|s| carries(s, &marker))
            .map(|s| text(s, "uuid"))
            .collect();
        match ours.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.to_string())),
            many => Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "{} services carry the marker {marker}: {}; delete the copies in Coolify so \
                     that one remains",
                    many.len(),
                    many.join(", ")
                ),
            )),
        }
    }

    /// Creates the service (or converges on the one an earlier attempt made), starts it and
    /// waits until it runs; one that does not come up is deleted again.
    pub fn create(&self, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        let desired = Desired::from_inputs(inputs)?;
        let uuid = match self.find_uuid(target)? {
            Some(uuid) => {
                self.patch(&uuid, &desired, target.name)?;
                uuid
            }
            None => self.post(target, &desired)?,
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
                let before = text(&service, "description").trim();
                let description = if before.is_empty() {
                    marker.clone()
                } else {
                    format!("{marker}\n{before}")
                };
                self.apps
                    .api
                    .patch(&path(id), &json!({"description": description}))?;
            }
        }
        let service = self
            .get(id)?
            .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("service {id} disappeared")))?;
        Ok(Found {
            observed: observe(id, &service, inputs),
            id: id.to_string(),
        })
    }

    /// Changes the name or the compose in place; a new compose restarts the service and is
    /// waited for.
    pub fn update(
        &self,
        target: Target<'_>,
        id: &str,
        prior: &Attributes,
        inputs: &Attributes,
    ) -> Result<Applied> {
        let desired = Desired::from_inputs(inputs)?;
        if self.owned(id, target)?.is_none() {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("service {id} no longer exists in Coolify"),
            ));
        }
        self.patch(id, &desired, target.name)?;
        let restart = prior.get("compose") != inputs.get("compose");
        let verb = if restart { "restart" } else { "start" };
        let service = self.start_and_wait(id, verb, &desired)?;
        Ok(applied(id, &service))
    }

    pub fn delete(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<()> {
        if self.owned(id, target)?.is_none() {
            return Ok(());
        }
        let timeout =
            Desired::from_inputs(inputs).map_or(schema::DEFAULT_START_TIMEOUT, |d| d.start_timeout);
        self.remove(id, timeout)
    }

    fn owned(&self, id: &str, target: Target<'_>) -> Result<Option<Value>> {
        let Some(service) = self.get(id)? else {
            return Ok(None);
        };
        let marker = target.marker();
        if !carries(&service, &marker) {
            let owner = match fabrik_marker(&service) {
                Some(other) => format!("it belongs to {other}"),
                None => "it does not carry a fabrik marker".to_string(),
            };
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "service {id} is not managed by this resource ({marker}): {owner}; fabrik \
                     leaves it alone"
                ),
            ));
        }
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
        let (project, environment) = self
            .apps
            .project_and_environment(&desired.project, &desired.environment)?;
        let server = self.apps.server_uuid(&desired.server)?;
        let mut body = Map::new();
        body.insert("project_uuid".into(), json!(project));
        body.insert("environment_name".into(), json!(desired.environment));
        body.insert("environment_uuid".into(), json!(environment));
        body.insert("server_uuid".into(), json!(server));
        if let Some(destination) = &desired.destination {
            let uuid = self
                .apps
                .destination_uuid(&server, &desired.server, destination)?;
            body.insert("destination_uuid".into(), json!(uuid));
        }
        body.insert(
            "name".into(),
            json!(desired.name.as_deref().unwrap_or(target.name)),
        );
        body.insert("description".into(), json!(target.marker()));
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

    fn patch(&self, uuid: &str, desired: &Desired, fallback_name: &str) -> Result<()> {
        let mut body = Map::new();
        body.insert(
            "name".into(),
            json!(desired.name.as_deref().unwrap_or(fallback_name)),
        );
        if let Source::Compose(c) = &desired.source {
            body.insert("docker_compose_raw".into(), json!(schema::base64(c)));
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

/// The inputs a service as Coolify shows it stands for (those the spec has), and its outputs.
/// The compose is reported as the spec wrote it when it means the same YAML.
fn observe(uuid: &str, service: &Value, inputs: &Attributes) -> Observed {
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
    Observed {
        inputs: seen,
        outputs: outputs(uuid, service),
    }
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

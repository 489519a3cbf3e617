//! Where an application or a database lives in Coolify: its project and environment (made when missing),
//! its server and its destination. The spec names them; the API knows them by uuid, and does
//! not keep project names unique, so a name that is not unique is an error rather than a guess.
//! A refresh checks that those names still hold what was made there ([`Applications::check_place`]):
//! a project or server renamed in the dashboard would otherwise go unseen until a create failed.

use fabrik_provider::{Attributes, Error, ErrorKind, Result};
use serde_json::{Map, Value, json};

use super::Applications;
use crate::api::encode_segment;

impl Applications {
    /// The uuids of the project and the environment, each created when missing.
    pub(crate) fn project_and_environment(
        &self,
        project_name: &str,
        environment_name: &str,
    ) -> Result<(String, String)> {
        let _one_at_a_time = self
            .naming
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let project = match self.project_uuid(project_name)? {
            Some(uuid) => uuid,
            None => {
                let reply = self
                    .api
                    .post("/projects", &[], Some(&json!({"name": project_name})));
                match reply {
                    Ok(reply) => {
                        let made: Value = reply.json("the create of a project")?;
                        made.get("uuid")
                            .and_then(Value::as_str)
                            .map(str::to_string)
                            .ok_or_else(|| {
                                Error::new(
                                    ErrorKind::Fatal,
                                    "Coolify created a project without answering its uuid",
                                )
                            })?
                    }
                    // Made by a lost attempt or a parallel resource: it is there now.
                    Err(e) if matches!(e.kind, ErrorKind::Transient | ErrorKind::Conflict) => {
                        self.project_uuid(project_name)?.ok_or(e)?
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let environments = format!("/projects/{}/environments", encode_segment(&project));
        let find = || -> Result<Option<String>> {
            let list: Vec<Value> = self.api.get(&environments, &[])?.json("environments")?;
            Ok(list
                .iter()
                .find(|e| e.get("name").and_then(Value::as_str) == Some(environment_name))
                .and_then(|e| e.get("uuid").and_then(Value::as_str))
                .map(str::to_string))
        };
        let environment = match find()? {
            Some(uuid) => uuid,
            None => {
                match self
                    .api
                    .post(&environments, &[], Some(&json!({"name": environment_name})))
                {
                    Ok(reply) => {
                        let made: Value = reply.json("the create of an environment")?;
                        match made.get("uuid").and_then(Value::as_str) {
                            Some(uuid) => uuid.to_string(),
                            None => find()?.ok_or_else(|| {
                                Error::new(
                                    ErrorKind::Fatal,
                                    "Coolify created an environment without answering its uuid",
                                )
                            })?,
                        }
                    }
                    // 409: it exists (made in between); a lost answer: it may.
                    Err(e) if matches!(e.kind, ErrorKind::Transient | ErrorKind::Conflict) => {
                        find()?.ok_or(e)?
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        Ok((project, environment))
    }

    /// The uuid of the project named `name`; Coolify does not keep project names unique, so
    /// two of that name are an error rather than a guess.
    pub(crate) fn project_uuid(&self, name: &str) -> Result<Option<String>> {
        let projects: Vec<Value> = self.api.get("/projects", &[])?.json("the projects")?;
        let named: Vec<&str> = projects
            .iter()
            .filter(|p| p.get("name").and_then(Value::as_str) == Some(name))
            .filter_map(|p| p.get("uuid").and_then(Value::as_str))
            .collect();
        match named.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.to_string())),
            many => Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "{} Coolify projects are named {name:?} ({}); rename all but one",
                    many.len(),
                    many.join(", ")
                ),
            )),
        }
    }

    /// The destinations of server `server` (a uuid), by name: `(name, network, uuid)`.
    pub(crate) fn destinations(&self, server: &str) -> Result<Vec<(String, String, String)>> {
        let list: Vec<Value> = self
            .api
            .get(
                &format!("/servers/{}/destinations", encode_segment(server)),
                &[],
            )?
            .json("the destinations of a server")?;
        Ok(list
            .iter()
            .map(|d| {
                let text = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                (text("name"), text("network"), text("uuid"))
            })
            .collect())
    }

    pub(crate) fn destination_names(&self, server: &str) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .destinations(server)?
            .into_iter()
            .map(|(name, _, _)| name)
            .collect();
        names.sort();
        Ok(names)
    }

    /// The fields of a create that say where the new object goes (its project and environment,
    /// made when missing; its server; its destination when one is named), and the server's
    /// uuid. The environment goes by name and by uuid: the server needs one, the contract
    /// requires both.
    pub(crate) fn place_body(
        &self,
        project: &str,
        environment: &str,
        server: &str,
        destination: Option<&str>,
    ) -> Result<(Map<String, Value>, String)> {
        let (project_uuid, environment_uuid) =
            self.project_and_environment(project, environment)?;
        let server_uuid = self.server_uuid(server)?;
        let mut body = Map::new();
        if let Some(name) = destination {
            body.insert(
                "destination_uuid".into(),
                json!(self.destination_uuid(&server_uuid, server, name)?),
            );
        }
        body.insert("project_uuid".into(), json!(project_uuid));
        body.insert("server_uuid".into(), json!(server_uuid));
        body.insert("environment_name".into(), json!(environment));
        body.insert("environment_uuid".into(), json!(environment_uuid));
        Ok((body, server_uuid))
    }

    /// The uuid of the destination named `name` (or whose network is `name`) on a server.
    pub(crate) fn destination_uuid(
        &self,
        server: &str,
        server_name: &str,
        name: &str,
    ) -> Result<String> {
        let all = self.destinations(server)?;
        match all.iter().find(|(n, net, _)| n == name || net == name) {
            Some((_, _, uuid)) => Ok(uuid.clone()),
            None => {
                let mut names: Vec<&str> = all.iter().map(|(n, _, _)| n.as_str()).collect();
                names.sort_unstable();
                Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "`destination`: server {server_name} has no destination named {name:?};                          its destinations are: {}",
                        names.join(", ")
                    ),
                ))
            }
        }
    }

    pub(crate) fn server_uuid(&self, name: &str) -> Result<String> {
        let servers: Vec<Value> = self.api.get("/servers", &[])?.json("the servers")?;
        let named: Vec<&str> = servers
            .iter()
            .filter(|s| s.get("name").and_then(Value::as_str) == Some(name))
            .filter_map(|s| s.get("uuid").and_then(Value::as_str))
            .collect();
        match named.as_slice() {
            [one] => Ok(one.to_string()),
            [] => {
                let mut names: Vec<&str> = servers
                    .iter()
                    .filter_map(|s| s.get("name").and_then(Value::as_str))
                    .collect();
                names.sort_unstable();
                let known = if names.is_empty() {
                    "Coolify has no servers".to_string()
                } else {
                    format!("the servers are: {}", names.join(", "))
                };
                Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("`server`: Coolify has no server named {name:?}; {known}"),
                ))
            }
            many => Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "{} Coolify servers are named {name:?} ({}); rename all but one",
                    many.len(),
                    many.join(", ")
                ),
            )),
        }
    }
}

/// The place a resource was made in, by the names the spec gave it, to check on a refresh that
/// it still stands there.
pub(crate) struct Place<'a> {
    pub project: &'a str,
    pub environment: &'a str,
    pub server: &'a str,
}

impl<'a> Place<'a> {
    /// The place recorded inputs name. Read field by field rather than through the normal
    /// form: what a refresh records may be annotated (`nginx:1 (never deployed)`) and would
    /// not pass its checks.
    pub(crate) fn of(inputs: &'a Attributes) -> Self {
        let text = |k: &str| inputs.get(k).and_then(Value::as_str).unwrap_or("");
        Place {
            project: text("project"),
            environment: inputs
                .get("environment")
                .and_then(Value::as_str)
                .unwrap_or(super::schema::DEFAULT_ENVIRONMENT),
            server: text("server"),
        }
    }
}

impl Applications {
    /// Checks that the project, environment and server `place` names still hold `object` (an
    /// application or a database as Coolify shows it), as they did when it was made.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] naming what was renamed or removed in Coolify and how to
    /// fix it: re-creating the object elsewhere would lose it (and a server cannot be made),
    /// so a refresh stops the plan instead of planning a replacement.
    pub(crate) fn check_place(
        &self,
        kind: &str,
        uuid: &str,
        object: &Value,
        place: &Place<'_>,
    ) -> Result<()> {
        let mut gone = Vec::new();
        if let Some(environment_id) = object.get("environment_id").filter(|v| !v.is_null()) {
            let here = match self.project_uuid(place.project)? {
                None => {
                    gone.push(format!("project {:?} no longer exists", place.project));
                    None
                }
                Some(project) => {
                    let environments = self.environments(&project)?;
                    match environments
                        .iter()
                        .find(|(name, _)| name == place.environment)
                    {
                        None => {
                            gone.push(format!(
                                "environment {:?} of project {:?} no longer exists",
                                place.environment, place.project
                            ));
                            None
                        }
                        Some((_, id)) => Some(id == environment_id),
                    }
                }
            };
            if here != Some(true) {
                if here == Some(false) {
                    gone.push(format!(
                        "{kind} {uuid} is no longer in project {:?} (environment {:?})",
                        place.project, place.environment
                    ));
                }
                if let Some((project, environment)) = self.environment_by_id(environment_id)? {
                    gone.push(format!(
                        "{kind} {uuid} is now in project {project:?} (environment {environment:?})"
                    ));
                }
            }
        }
        let servers: Vec<Value> = self.api.get("/servers", &[])?.json("the servers")?;
        let named = |s: &&Value| s.get("name").and_then(Value::as_str) == Some(place.server);
        if !servers.iter().any(|s| named(&s)) {
            gone.push(format!("server {:?} no longer exists", place.server));
            let destination = object.get("destination_uuid").and_then(Value::as_str);
            for server in &servers {
                let (Some(server_uuid), Some(destination)) =
                    (server.get("uuid").and_then(Value::as_str), destination)
                else {
                    continue;
                };
                if self
                    .destinations(server_uuid)?
                    .iter()
                    .any(|(_, _, d)| d == destination)
                {
                    let name = server.get("name").and_then(Value::as_str).unwrap_or("");
                    gone.push(format!("{kind} {uuid} is now on server {name:?}"));
                }
            }
        }
        if gone.is_empty() {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} in Coolify; nothing was changed. Rename or move it back in Coolify, or name \
                 where the {kind} is now in the spec, forget it with `fabrik state rm` and take \
                 it over again with `fabrik import` (uuid {uuid})",
                gone.join(", and ")
            ),
        ))
    }

    /// The environments of project `project` (a uuid): `(name, id)`.
    fn environments(&self, project: &str) -> Result<Vec<(String, Value)>> {
        let path = format!("/projects/{}/environments", encode_segment(project));
        let list: Vec<Value> = match self.api.get(&path, &[]) {
            Ok(reply) => reply.json("environments")?,
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(list
            .iter()
            .map(|e| {
                let name = e.get("name").and_then(Value::as_str).unwrap_or("");
                (
                    name.to_string(),
                    e.get("id").cloned().unwrap_or(Value::Null),
                )
            })
            .collect())
    }

    /// The project and environment names of the environment with id `id`, wherever it is.
    fn environment_by_id(&self, id: &Value) -> Result<Option<(String, String)>> {
        let projects: Vec<Value> = self.api.get("/projects", &[])?.json("the projects")?;
        for project in &projects {
            let (Some(uuid), Some(name)) = (
                project.get("uuid").and_then(Value::as_str),
                project.get("name").and_then(Value::as_str),
            ) else {
                continue;
            };
            if let Some((environment, _)) = self
                .environments(uuid)?
                .into_iter()
                .find(|(_, env_id)| env_id == id)
            {
                return Ok(Some((name.to_string(), environment)));
            }
        }
        Ok(None)
    }
}

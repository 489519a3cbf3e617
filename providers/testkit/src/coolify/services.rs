//! Services (one-click templates and Docker Compose stacks) in the Coolify fake, as the server's
//! `ServicesController` behaves (see docs/architecture.md, "Tests"):
//!
//! - a create takes exactly one of `type` (a template name) and `docker_compose_raw`, which
//!   must be base64 as PHP's strict decoder takes it: plain YAML, base64 wrapped at 76 columns
//!   and unpadded base64 are all 422 (`connect_to_docker_network` on create is refused by the
//!   contract check: the document does not declare it there);
//! - a GET answers the compose decoded and re-dumped (the fake drops comment lines, so a
//!   client comparing text sees a difference), and one service application per container, with
//!   a generated URL for those the compose gives `SERVICE_FQDN_*`;
//! - a start goes `exited` → `running:starting` → `running:healthy` (`restarting:unknown` for
//!   ever when an image is tagged `crash`); a PATCH ignores what it
//!   does not take; a delete is asynchronous.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::{Answer, FakeCoolify, State, error};

/// The one-click templates the fake knows (the server has about 340).
pub const SERVICE_TYPES: [&str; 4] = ["uptime-kuma", "plausible", "n8n", "gitea-with-mysql"];

const BASE64_REFUSED: &str = "The docker_compose_raw should be base64 encoded.";

#[derive(Debug, Default)]
pub(super) struct Services {
    list: Vec<Service>,
    start: Option<Duration>,
}

#[derive(Debug, Clone)]
struct Service {
    fields: Map<String, Value>,
    started_at: Option<Instant>,
    gone_at: Option<Instant>,
    /// Its environment rows: no preview twins; a PATCH keeps the flags it is not sent.
    envs: Vec<Map<String, Value>>,
    /// The URLs set for a container (`urls` on create or PATCH), by container name.
    urls: BTreeMap<String, String>,
    /// How many env rows it has had, to name the next one.
    made_envs: u64,
}

impl Services {
    pub(super) fn advance(&mut self, now: Instant) {
        self.list.retain(|s| s.gone_at.is_none_or(|at| now < at));
    }

    fn start_duration(&self) -> Duration {
        self.start.unwrap_or(Duration::from_millis(200))
    }
}

impl Service {
    fn uuid(&self) -> &str {
        self.fields["uuid"].as_str().unwrap_or_default()
    }

    fn status(&self, now: Instant, start: Duration) -> &'static str {
        let compose = self
            .fields
            .get("docker_compose_raw")
            .and_then(Value::as_str);
        match self.started_at {
            None => "exited",
            // An image tagged `crash` never comes up: the containers restart again and again.
            Some(_) if compose.is_some_and(|c| c.contains(":crash")) => "restarting:unknown",
            Some(at) if now.saturating_duration_since(at) < start => "running:starting",
            Some(_) => "running:healthy",
        }
    }

    /// The containers of its compose: the keys under `services:`, as the server makes a
    /// service application of each.
    fn containers(&self) -> Vec<String> {
        let compose = self
            .fields
            .get("docker_compose_raw")
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut inside = false;
        let mut names = Vec::new();
        for line in compose.lines() {
            if !line.starts_with(' ') && !line.trim().is_empty() {
                inside = line.trim_end() == "services:";
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            if inside && indent == 2 && line.trim_end().ends_with(':') {
                names.push(line.trim().trim_end_matches(':').to_string());
            }
        }
        names
    }

    fn json(&self, now: Instant, start: Duration) -> Value {
        let mut v = Value::Object(self.fields.clone());
        v["status"] = json!(self.status(now, start));
        let compose = self
            .fields
            .get("docker_compose_raw")
            .and_then(Value::as_str)
            .unwrap_or("");
        let apps: Vec<Value> = self
            .containers()
            .iter()
            .map(|name| {
                let key = format!("SERVICE_FQDN_{}", name.to_uppercase().replace('-', "_"));
                let fqdn = match self.urls.get(name) {
                    Some(url) => Some(url.clone()),
                    None => compose
                        .contains(&key)
                        .then(|| format!("http://{name}-{}.203.0.113.10.sslip.io", self.uuid())),
                };
                json!({"name": name, "fqdn": fqdn})
            })
            .collect();
        v["applications"] = Value::Array(apps);
        v
    }
}

/// The variables a compose refers to as `${NAME}` or `${NAME:-default}`, with their defaults,
/// which the server makes env rows of.
fn referenced_vars(compose: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = compose;
    while let Some(at) = rest.find("${") {
        rest = &rest[at + 2..];
        let Some(end) = rest.find('}') else { break };
        let inner = &rest[..end];
        let (name, default) = inner.split_once(":-").unwrap_or((inner, ""));
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push((name.to_string(), default.to_string()));
        }
        rest = &rest[end..];
    }
    out
}

impl Service {
    /// Adds a row for each variable its compose refers to that has none yet.
    fn add_referenced_rows(&mut self) {
        let compose = self
            .fields
            .get("docker_compose_raw")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        for (key, value) in referenced_vars(&compose) {
            if self.envs.iter().any(|r| r["key"] == key.as_str()) {
                continue;
            }
            let uuid = self.next_env_uuid();
            self.envs
                .push(env_row(&uuid, &key, &value, false, false, false));
        }
    }

    fn next_env_uuid(&mut self) -> String {
        self.made_envs += 1;
        format!("{}-env{}", self.uuid(), self.made_envs)
    }

    /// Applies `urls: [{name, url}]`; a name that is not one of its containers is refused.
    fn set_urls(&mut self, urls: Option<&Value>) -> Result<(), Answer> {
        let Some(urls) = urls.and_then(Value::as_array) else {
            return Ok(());
        };
        let containers = self.containers();
        for item in urls {
            let name = item.get("name").and_then(Value::as_str).unwrap_or("");
            if !containers.iter().any(|c| c == name) {
                return Err(invalid(
                    "urls",
                    &format!("Service {name} not found in the docker compose."),
                ));
            }
        }
        for item in urls {
            let name = item.get("name").and_then(Value::as_str).unwrap_or("");
            let url = item.get("url").and_then(Value::as_str).unwrap_or("");
            if url.is_empty() {
                self.urls.remove(name);
            } else {
                self.urls.insert(name.to_string(), url.to_string());
            }
        }
        Ok(())
    }
}

fn env_row(
    uuid: &str,
    key: &str,
    value: &str,
    is_literal: bool,
    is_multiline: bool,
    is_shown_once: bool,
) -> Map<String, Value> {
    let row = json!({
        "uuid": uuid, "key": key, "value": value, "real_value": value,
        "is_preview": false, "is_runtime": true, "is_buildtime": true,
        "is_literal": is_literal, "is_multiline": is_multiline,
        "is_shown_once": is_shown_once, "comment": null,
    });
    row.as_object().cloned().unwrap_or_default()
}

/// `text` decoded as PHP's `base64_decode($text, true)` takes it, further required to be
/// padded and on one line (the server checks it re-encodes to the same text).
pub fn strict_base64(text: &str) -> Option<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return None;
    }
    let padding = bytes.iter().rev().take_while(|b| **b == b'=').count();
    if padding > 2 {
        return None;
    }
    let mut out = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in &bytes[..bytes.len() - padding] {
        let value = ALPHABET.iter().position(|a| *a == b)? as u32;
        acc = (acc << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The compose as the server shows it after decoding and dumping it again: comments gone.
fn redumped(compose: &str) -> String {
    compose
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn invalid(field: &str, message: &str) -> Answer {
    (
        422,
        json!({"message": "Validation failed.", "errors": { field: [message] }}),
    )
}

impl FakeCoolify {
    /// Every service, as `GET /services/{uuid}` answers it.
    pub fn services(&self) -> Vec<Value> {
        let state = self.state();
        let (now, start) = (Instant::now(), state.services.start_duration());
        state
            .services
            .list
            .iter()
            .map(|s| s.json(now, start))
            .collect()
    }

    /// Makes a Docker Compose service as someone would in the dashboard (no marker, not
    /// started) in `environment` of `project` on `server`; returns its uuid.
    ///
    /// # Panics
    /// If the project, environment or server does not exist.
    pub fn insert_service(
        &self,
        project: &str,
        environment: &str,
        server: &str,
        compose: &str,
    ) -> String {
        let mut state = self.state();
        let env_id = state
            .projects
            .iter()
            .find(|p| p.name == project)
            .and_then(|p| p.environments.iter().find(|e| e.name == environment))
            .map_or_else(
                || panic!("no environment {project}/{environment}"),
                |e| e.id,
            );
        let server = state
            .servers
            .iter()
            .find(|(_, n)| n == server)
            .map_or_else(|| panic!("no server {server}"), |(u, _)| u.clone());
        let destination = state
            .destinations
            .iter()
            .find(|(_, _, s)| *s == server)
            .map(|(u, _, _)| u.clone())
            .unwrap_or_default();
        let uuid = state.new_uuid();
        let fields = json!({
            "uuid": uuid, "name": "made-by-hand", "description": null, "service_type": null,
            "docker_compose_raw": compose, "environment_id": env_id, "server_uuid": server,
            "destination_uuid": destination,
        });
        let mut service = Service {
            fields: fields.as_object().cloned().unwrap_or_default(),
            started_at: None,
            gone_at: None,
            envs: Vec::new(),
            urls: BTreeMap::new(),
            made_envs: 0,
        };
        service.add_referenced_rows();
        state.services.list.push(service);
        uuid
    }

    /// The environment rows of service `uuid`, as `GET /services/{uuid}/envs` answers them.
    pub fn service_envs(&self, uuid: &str) -> Vec<Value> {
        let state = self.state();
        state
            .services
            .list
            .iter()
            .filter(|s| s.uuid() == uuid)
            .flat_map(|s| s.envs.iter().cloned().map(Value::Object))
            .collect()
    }

    /// Sets the value of env row `key` of service `uuid`, as someone would in the dashboard.
    ///
    /// # Panics
    /// If there is no such service or row.
    pub fn edit_service_env(&self, uuid: &str, key: &str, value: &str) {
        let mut state = self.state();
        let service = state.services.list.iter_mut().find(|s| s.uuid() == uuid);
        let row = service
            .and_then(|s| s.envs.iter_mut().find(|r| r["key"] == key))
            .unwrap_or_else(|| panic!("no env row {key} in service {uuid}"));
        row.insert("value".into(), json!(value));
        row.insert("real_value".into(), json!(value));
    }

    /// Sets the URLs of container `name` of service `uuid`, as someone would in the dashboard.
    ///
    /// # Panics
    /// If there is no such service.
    pub fn set_service_url(&self, uuid: &str, name: &str, url: &str) {
        let mut state = self.state();
        let service = state.services.list.iter_mut().find(|s| s.uuid() == uuid);
        service
            .unwrap_or_else(|| panic!("no service {uuid}"))
            .urls
            .insert(name.to_string(), url.to_string());
    }

    /// Stops service `uuid`, as its Stop button in the dashboard does.
    ///
    /// # Panics
    /// If there is no such service.
    pub fn stop_service(&self, uuid: &str) {
        let mut state = self.state();
        let service = state.services.list.iter_mut().find(|s| s.uuid() == uuid);
        service
            .unwrap_or_else(|| panic!("no service {uuid}"))
            .started_at = None;
    }

    /// How long a service takes from its start to `running:healthy`.
    pub fn set_service_start(&self, duration: Duration) {
        self.state().services.start = Some(duration);
    }
}

impl State {
    pub(super) fn service_route(
        &mut self,
        method: &str,
        template: &str,
        param: &dyn Fn(&str) -> String,
        body: &Value,
    ) -> Answer {
        let uuid = param("uuid");
        let (now, start) = (Instant::now(), self.services.start_duration());
        let found = self.services.list.iter().position(|s| s.uuid() == uuid);
        match (method, template, found) {
            ("GET", "/services", _) => {
                let list = self.services.list.iter().map(|s| s.json(now, start));
                (200, Value::Array(list.collect()))
            }
            ("POST", "/services", _) => self.service_create(body),
            (_, _, None) => error(404, "Service not found."),
            ("GET", "/services/{uuid}", Some(i)) => (200, self.services.list[i].json(now, start)),
            ("PATCH", "/services/{uuid}", Some(i)) => {
                let fields = body.as_object().cloned().unwrap_or_default();
                let mut compose = None;
                if let Some(raw) = fields.get("docker_compose_raw") {
                    match raw.as_str().and_then(strict_base64) {
                        Some(text) => compose = Some(redumped(&text)),
                        None => return invalid("docker_compose_raw", BASE64_REFUSED),
                    }
                }
                let service = &mut self.services.list[i];
                for key in ["name", "description"] {
                    if let Some(v) = fields.get(key) {
                        service.fields.insert(key.into(), v.clone());
                    }
                }
                if let Some(compose) = compose {
                    service
                        .fields
                        .insert("docker_compose_raw".into(), json!(compose));
                    service.add_referenced_rows();
                }
                if let Err(refused) = service.set_urls(fields.get("urls")) {
                    return refused;
                }
                (200, json!({"uuid": uuid, "domains": []}))
            }
            ("DELETE", "/services/{uuid}", Some(i)) => {
                let delay = self.settings.delete_delay;
                self.services.list[i].gone_at.get_or_insert(now + delay);
                (200, json!({"message": "Service deletion request queued."}))
            }
            ("POST", "/services/{uuid}/start", Some(i)) => {
                self.services.list[i].started_at.get_or_insert(now);
                (200, json!({"message": "Service starting request queued."}))
            }
            ("POST", "/services/{uuid}/restart", Some(i)) => {
                self.services.list[i].started_at = Some(now);
                (
                    200,
                    json!({"message": "Service restarting request queued."}),
                )
            }
            ("POST", "/services/{uuid}/stop", Some(i)) => {
                self.services.list[i].started_at = None;
                (200, json!({"message": "Service stopping request queued."}))
            }
            ("GET", "/services/{uuid}/envs", Some(i)) => {
                let rows = self.services.list[i]
                    .envs
                    .iter()
                    .cloned()
                    .map(Value::Object);
                (200, Value::Array(rows.collect()))
            }
            ("POST", "/services/{uuid}/envs", Some(i)) => {
                env_create(&mut self.services.list[i], body)
            }
            ("PATCH", "/services/{uuid}/envs", Some(i)) => {
                env_patch(&mut self.services.list[i], body)
            }
            ("DELETE", "/services/{uuid}/envs/{env_uuid}", Some(i)) => {
                let envs = &mut self.services.list[i].envs;
                let before = envs.len();
                let gone = param("env_uuid");
                envs.retain(|r| r["uuid"] != gone.as_str());
                if envs.len() == before {
                    return error(404, "Environment variable not found.");
                }
                (200, json!({"message": "Environment variable deleted."}))
            }
            (method, template, _) => error(
                501,
                &format!("the fake does not implement {method} {template}"),
            ),
        }
    }

    fn service_create(&mut self, body: &Value) -> Answer {
        let fields = body.as_object().cloned().unwrap_or_default();
        let text = |k: &str| fields.get(k).and_then(Value::as_str).unwrap_or("");
        let compose = match (fields.get("type"), fields.get("docker_compose_raw")) {
            (Some(_), Some(_)) | (None, None) => {
                return invalid("type", "Provide either type or docker_compose_raw.");
            }
            (Some(t), None) => {
                if !t.as_str().is_some_and(|t| SERVICE_TYPES.contains(&t)) {
                    return invalid("type", "Service not found.");
                }
                String::new()
            }
            (None, Some(raw)) => match raw.as_str().and_then(strict_base64) {
                Some(text) => redumped(&text),
                None => return invalid("docker_compose_raw", BASE64_REFUSED),
            },
        };
        let Some(project) = self
            .projects
            .iter()
            .find(|p| p.uuid == text("project_uuid"))
        else {
            return error(404, "Project not found.");
        };
        let Some(env) = project
            .environments
            .iter()
            .find(|e| e.name == text("environment_name") || e.uuid == text("environment_uuid"))
        else {
            return error(404, "Environment not found.");
        };
        let env_id = env.id;
        let server = text("server_uuid").to_string();
        if !self.servers.iter().any(|(u, _)| *u == server) {
            return error(404, "Server not found.");
        }
        let destination = match self.destinations.iter().find(|(u, _, s)| {
            *s == server && (text("destination_uuid").is_empty() || *u == text("destination_uuid"))
        }) {
            Some((u, _, _)) => u.clone(),
            None => return error(404, "Destination not found."),
        };
        let uuid = self.new_uuid();
        let service_type = fields.get("type").cloned().unwrap_or(Value::Null);
        let mut stored = json!({
            "uuid": uuid, "name": format!("service-{uuid}"), "description": null,
            "service_type": service_type, "docker_compose_raw": compose,
            "environment_id": env_id, "server_uuid": server, "destination_uuid": destination,
        });
        for key in ["name", "description"] {
            if let Some(v) = fields.get(key) {
                stored[key] = v.clone();
            }
        }
        let mut service = Service {
            fields: stored.as_object().cloned().unwrap_or_default(),
            started_at: (fields.get("instant_deploy") == Some(&json!(true))).then(Instant::now),
            gone_at: None,
            envs: Vec::new(),
            urls: BTreeMap::new(),
            made_envs: 0,
        };
        if let Err(refused) = service.set_urls(fields.get("urls")) {
            return refused;
        }
        service.add_referenced_rows();
        self.services.list.push(service);
        (201, json!({"uuid": uuid, "domains": []}))
    }
}

fn env_create(service: &mut Service, body: &Value) -> Answer {
    let text = |k: &str| body.get(k).and_then(Value::as_str);
    let Some(key) = text("key").filter(|k| !k.is_empty()) else {
        return invalid("key", "The key field is required.");
    };
    let Some(value) = text("value") else {
        return invalid("value", "The value field is required.");
    };
    if service.envs.iter().any(|r| r["key"] == key) {
        return error(409, &format!("Environment variable {key} already exists."));
    }
    let flag = |k: &str| body.get(k).and_then(Value::as_bool).unwrap_or(false);
    let uuid = service.next_env_uuid();
    let row = env_row(
        &uuid,
        key,
        value,
        flag("is_literal"),
        flag("is_multiline"),
        flag("is_shown_once"),
    );
    service.envs.push(row.clone());
    (201, Value::Object(row))
}

/// Matches by key; unlike an application's, the flags it is not sent are kept.
fn env_patch(service: &mut Service, body: &Value) -> Answer {
    let key = body.get("key").and_then(Value::as_str).unwrap_or("");
    let Some(value) = body.get("value").and_then(Value::as_str) else {
        return invalid("value", "The value field is required.");
    };
    let Some(row) = service.envs.iter_mut().find(|r| r["key"] == key) else {
        return error(404, "Environment variable not found.");
    };
    row.insert("value".into(), json!(value));
    row.insert("real_value".into(), json!(value));
    for flag in ["is_literal", "is_multiline", "is_shown_once"] {
        if let Some(v) = body.get(flag).and_then(Value::as_bool) {
            row.insert(flag.into(), json!(v));
        }
    }
    (201, Value::Object(row.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coolify::tests::{call, setup};

    const COMPOSE: &str = "# the shop's cache\nservices:\n  cache:\n    image: redis:7\n  web:\n    image: nginx:1\n    environment:\n      - SERVICE_FQDN_WEB_80\n";
    const COMPOSE_B64: &str = "IyB0aGUgc2hvcCdzIGNhY2hlCnNlcnZpY2VzOgogIGNhY2hlOgogICAgaW1hZ2U6IHJlZGlzOjcKICB3ZWI6CiAgICBpbWFnZTogbmdpbng6MQogICAgZW52aXJvbm1lbnQ6CiAgICAgIC0gU0VSVklDRV9GUUROX1dFQl84MAo=";

    fn create(fake: &FakeCoolify, server: &str, project: &str, extra: Value) -> (u16, Value) {
        let mut body = json!({"server_uuid": server, "project_uuid": project,
                              "environment_name": "production", "environment_uuid": "x"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        call(fake, "POST", "/api/v1/services", Some(body))
    }

    #[test]
    fn strict_base64_decodes_only_padded_unwrapped_text() {
        assert_eq!(strict_base64(COMPOSE_B64).as_deref(), Some(COMPOSE));
        assert_eq!(strict_base64("aGk=").as_deref(), Some("hi"));
        assert_eq!(strict_base64("aGk"), None, "unpadded");
        assert_eq!(strict_base64("services:\n  a: {}"), None, "plain YAML");
        let wrapped = format!("{}\n{}", &COMPOSE_B64[..76], &COMPOSE_B64[76..]);
        assert_eq!(strict_base64(&wrapped), None, "wrapped");
    }

    #[test]
    fn a_compose_must_be_strict_base64_and_is_answered_redumped() {
        let (fake, server, project) = setup();
        let plain = create(
            &fake,
            &server,
            &project,
            json!({"docker_compose_raw": COMPOSE}),
        );
        assert_eq!(plain.0, 422, "{plain:?}");
        assert_eq!(plain.1["errors"]["docker_compose_raw"][0], BASE64_REFUSED);
        let unpadded = COMPOSE_B64.trim_end_matches('=');
        let (status, _) = create(
            &fake,
            &server,
            &project,
            json!({"docker_compose_raw": unpadded}),
        );
        assert_eq!(status, 422);
        let both = create(
            &fake,
            &server,
            &project,
            json!({"type": "n8n", "docker_compose_raw": COMPOSE_B64}),
        );
        assert_eq!(both.0, 422, "{both:?}");
        let (status, made) = create(
            &fake,
            &server,
            &project,
            json!({"docker_compose_raw": COMPOSE_B64, "name": "shop-cache"}),
        );
        assert_eq!(status, 201, "{made}");
        let uuid = made["uuid"].as_str().unwrap();
        let (_, got) = call(&fake, "GET", &format!("/api/v1/services/{uuid}"), None);
        assert_eq!(got["name"], "shop-cache");
        assert_eq!(got["status"], "exited");
        assert!(!got["docker_compose_raw"].as_str().unwrap().contains('#'));
        assert_eq!(got["applications"][0]["name"], "cache");
        assert!(got["applications"][0]["fqdn"].is_null());
        assert!(
            got["applications"][1]["fqdn"]
                .as_str()
                .unwrap()
                .starts_with("http://web-")
        );
        fake.assert_no_violations();
    }

    #[test]
    fn a_started_service_becomes_healthy_and_a_delete_takes_a_while() {
        let (fake, server, project) = setup();
        fake.set_service_start(Duration::from_millis(50));
        fake.set_delete_delay(Duration::from_millis(50));
        let (status, made) = create(&fake, &server, &project, json!({"type": "uptime-kuma"}));
        assert_eq!(status, 201, "{made}");
        let path = format!("/api/v1/services/{}", made["uuid"].as_str().unwrap());
        let (status, _) = call(&fake, "POST", &format!("{path}/start"), None);
        assert_eq!(status, 200);
        assert_eq!(
            call(&fake, "GET", &path, None).1["status"],
            "running:starting"
        );
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(
            call(&fake, "GET", &path, None).1["status"],
            "running:healthy"
        );
        let (status, _) = call(&fake, "DELETE", &path, None);
        assert_eq!(status, 200);
        assert_eq!(call(&fake, "GET", &path, None).0, 200, "still listed");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(call(&fake, "GET", &path, None).0, 404);
        let unknown = create(
            &fake,
            &server,
            &project,
            json!({"type": "no-such-template"}),
        );
        assert_eq!(unknown.0, 422, "{unknown:?}");
        fake.assert_no_violations();
    }

    #[test]
    fn service_variables_keep_unsent_flags_and_urls_name_containers() {
        let (fake, server, project) = setup();
        // services: {web: {image: nginx:1, environment: [MODE=${MODE:-prod}]}}, as block YAML
        let raw = "c2VydmljZXM6CiAgd2ViOgogICAgaW1hZ2U6IG5naW54OjEKICAgIGVudmlyb25tZW50OgogICAgICAtIE1PREU9JHtNT0RFOi1wcm9kfQo=";
        let (status, made) = create(
            &fake,
            &server,
            &project,
            json!({"docker_compose_raw": raw, "urls": [{"name": "web", "url": "https://a.example"}]}),
        );
        assert_eq!(status, 201, "{made}");
        let path = format!("/api/v1/services/{}", made["uuid"].as_str().unwrap());
        let (_, got) = call(&fake, "GET", &path, None);
        assert_eq!(got["applications"][0]["fqdn"], "https://a.example");
        let envs = format!("{path}/envs");
        let (_, rows) = call(&fake, "GET", &envs, None);
        assert_eq!(rows[0]["key"], "MODE", "the compose's variable has a row");
        assert_eq!(rows[0]["value"], "prod");
        let row = json!({"key": "KEY", "value": "v1", "is_literal": true});
        assert_eq!(call(&fake, "POST", &envs, Some(row.clone())).0, 201);
        assert_eq!(call(&fake, "POST", &envs, Some(row)).0, 409);
        let (status, patched) = call(
            &fake,
            "PATCH",
            &envs,
            Some(json!({"key": "KEY", "value": "v2"})),
        );
        assert_eq!(status, 201);
        assert_eq!(patched["value"], "v2");
        assert_eq!(patched["is_literal"], true, "a flag not sent is kept");
        let gone = format!("{envs}/{}", patched["uuid"].as_str().unwrap());
        assert_eq!(call(&fake, "DELETE", &gone, None).0, 200);
        assert_eq!(call(&fake, "DELETE", &gone, None).0, 404);
        let bad = json!({"urls": [{"name": "api", "url": "https://b.example"}]});
        assert_eq!(call(&fake, "PATCH", &path, Some(bad)).0, 422);
        fake.assert_no_violations();
    }
}

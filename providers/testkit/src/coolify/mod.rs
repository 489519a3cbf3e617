//! A stateful fake of the Coolify API v4 (`/api/v1`), for the `coolify` provider's tests.
//!
//! It keeps servers, projects with their environments, applications, their environment
//! variables and their deployments, and behaves as the real server does where it differs from its own contract (each
//! difference below was observed on a running server):
//! - writes use `domains` and reads answer `fqdn`; `fqdn` on a write is a 422, so is any field
//!   the request schema does not declare (`This field is not allowed.`), and so are the fields
//!   the contract lists for `PATCH /applications/{uuid}` that the server rejects;
//! - `autogenerate_domain` defaults to true (an sslip.io domain appears unless it is false);
//! - every environment variable has a preview twin, created with it; `POST` of an existing
//!   `(key, is_preview)` is a 409; `PATCH /envs` resets the flags it is not sent;
//! - `/deploy` is POST only (GET is a 405); a deploy while one of the application's deployments
//!   is still queued answers "Deployment already queued for this commit." with a uuid that was
//!   never stored; `GET /deployments/applications/{uuid}` answers `{count, deployments}`;
//! - `DELETE /applications/{uuid}` only queues the deletion: the application stays readable for
//!   a while ([`FakeCoolify::set_delete_delay`]);
//! - a domain another application uses is a 409 naming it, unless `force_domain_override`;
//! - more requests than the budget in a window is a 429 with `Retry-After`;
//! - on request, a live deployment read by its uuid answers 404 (coollabsio/coolify#8925).
//!
//! Deployments run on a clock: queued, in progress, then finished after
//! [`FakeCoolify::set_deploy_duration`] (or, while [`FakeCoolify::hold_deployments`], held in
//! progress). What they do depends on the image tag: a tag
//! containing `fail` fails (with a log saying why), one containing `slow` takes ten times as
//! long, any other finishes. A finished deployment's release is served by a real HTTP server
//! ([`FakeCoolify::health_base`]) at each of the application's domains below that base: its
//! `/health` answers 200, or 500 when the tag contains `bad`. Until a release finishes, or
//! once the application is deleted, nothing is served there (404).
//!
//! Databases, their environment rows and scheduled backups, and S3 storages are in
//! `databases`; services (one-click and Docker Compose, the compose body checked as base64) in
//! `services`. Projects and servers can be renamed or removed behind the provider's back.
//!
//! Every request is first checked against the published contract
//! (`fixtures/contracts/coolify-openapi.json`); one that breaks it, or breaks one of the quirks
//! above, is answered as the real server would (404, 405, 422) and recorded: tests end with
//! [`FakeCoolify::assert_no_violations`].

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

mod databases;
pub mod services;

use crate::contract::{Contract, Rule};
use crate::http::{Logged, Request, Response, Server};

/// The token the fake accepts unless told otherwise.
pub const TOKEN: &str = "1|coolify-test-token";
/// The base path of the API, as in the contract's `servers`.
pub const BASE: &str = "/api/v1";

/// Fields the contract lists for `PATCH /applications/{uuid}` that the server refuses.
const PATCH_REJECTED: [&str; 6] = [
    "project_uuid",
    "server_uuid",
    "environment_name",
    "destination_uuid",
    "github_app_uuid",
    "dockerfile",
];

/// The Coolify contract, as published, with the waiver its database logs need: the document
/// declares that path's `uuid` a UUID, but Coolify's identifiers are cuid2 strings (24 letters
/// and digits), which every other path takes as plain strings.
pub fn contract() -> Contract {
    let mut contract = Contract::load(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/contracts/coolify-openapi.json"
    ));
    contract.waive_format(
        "GET",
        "/databases/{uuid}/logs",
        "uuid",
        "Coolify's identifiers are cuid2 strings, not UUIDs",
    );
    contract
}

fn shared_contract() -> Arc<Contract> {
    static CONTRACT: OnceLock<Arc<Contract>> = OnceLock::new();
    CONTRACT.get_or_init(|| Arc::new(contract())).clone()
}

#[derive(Debug, Clone)]
struct Settings {
    token: String,
    deploy_duration: Duration,
    delete_delay: Duration,
    rate_limit: usize,
    window: Duration,
    /// Creates whose answer is replaced by this status after the application is made.
    lost_creates: Vec<u16>,
    /// Reads of a deployment answered 404 although it exists (coollabsio/coolify#8925).
    hidden_deployment_reads: usize,
    /// Deployments that started stay in progress (a build that takes its time).
    hold_deployments: bool,
}

#[derive(Debug, Clone)]
struct Environment {
    id: u64,
    uuid: String,
    name: String,
}

#[derive(Debug, Clone)]
struct Project {
    id: u64,
    uuid: String,
    name: String,
    description: Option<String>,
    environments: Vec<Environment>,
}

#[derive(Debug, Clone)]
struct Application {
    /// What `GET /applications/{uuid}` answers (without `status`, computed).
    fields: Map<String, Value>,
    environment_id: u64,
    /// The image tag of the release that runs, once a deployment finished.
    running: Option<String>,
    /// When a queued deletion takes effect.
    gone_at: Option<Instant>,
}

impl Application {
    fn uuid(&self) -> &str {
        self.fields["uuid"].as_str().unwrap_or_default()
    }

    fn text(&self, key: &str) -> &str {
        self.fields.get(key).and_then(Value::as_str).unwrap_or("")
    }

    fn domains(&self) -> Vec<String> {
        self.text("fqdn")
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn status(&self) -> &'static str {
        match &self.running {
            Some(tag) if tag.contains("bad") => "running:unhealthy",
            Some(_) => "running:healthy",
            None => "exited",
        }
    }

    fn json(&self) -> Value {
        let mut v = Value::Object(self.fields.clone());
        v["status"] = json!(self.status());
        v
    }
}

#[derive(Debug, Clone)]
struct Var {
    uuid: String,
    app: String,
    key: String,
    value: String,
    is_preview: bool,
    is_literal: bool,
    is_multiline: Option<bool>,
    is_shown_once: Option<bool>,
}

impl Var {
    fn json(&self) -> Value {
        json!({
            "uuid": self.uuid, "key": self.key, "value": self.value, "real_value": self.value,
            "is_preview": self.is_preview, "is_runtime": true, "is_buildtime": true,
            "is_literal": self.is_literal, "is_multiline": self.is_multiline,
            "is_shown_once": self.is_shown_once, "comment": null,
        })
    }
}

#[derive(Debug, Clone)]
struct Deployment {
    uuid: String,
    app: String,
    start_at: Instant,
    end_at: Instant,
    /// The application's image (name and tag) when the deployment started running.
    release: Option<(String, String)>,
    /// Set once it ended.
    outcome: Option<&'static str>,
    logs: Vec<(String, bool)>,
    created: u64,
}

impl Deployment {
    fn status(&self, now: Instant) -> &'static str {
        match self.outcome {
            Some(o) => o,
            None if now < self.start_at => "queued",
            None => "in_progress",
        }
    }
}

#[derive(Debug)]
struct State {
    settings: Settings,
    servers: Vec<(String, String)>,
    /// Docker network destinations: uuid, name, server uuid.
    destinations: Vec<(String, String, String)>,
    projects: Vec<Project>,
    applications: Vec<Application>,
    vars: Vec<Var>,
    deployments: Vec<Deployment>,
    databases: databases::Databases,
    services: services::Services,
    next_id: u64,
    window_start: Instant,
    window_count: usize,
    /// `http://127.0.0.1:<port>` of the health server.
    health_base: String,
}

/// The fake, listening on 127.0.0.1, with its health server. Stopped on drop.
pub struct FakeCoolify {
    server: Server,
    health: Server,
    state: Arc<Mutex<State>>,
}

/// An answer: HTTP status and body.
type Answer = (u16, Value);

fn error(status: u16, message: &str) -> Answer {
    (status, json!({ "message": message }))
}

fn not_allowed(field: &str) -> Answer {
    (
        422,
        json!({"message": "Validation failed.", "errors": { field: ["This field is not allowed."] }}),
    )
}

impl FakeCoolify {
    pub fn start() -> FakeCoolify {
        let state = Arc::new(Mutex::new(State {
            settings: Settings {
                token: TOKEN.to_string(),
                deploy_duration: Duration::from_millis(300),
                delete_delay: Duration::from_millis(200),
                rate_limit: 100_000,
                window: Duration::from_secs(60),
                lost_creates: Vec::new(),
                hidden_deployment_reads: 0,
                hold_deployments: false,
            },
            servers: Vec::new(),
            destinations: Vec::new(),
            projects: Vec::new(),
            applications: Vec::new(),
            vars: Vec::new(),
            deployments: Vec::new(),
            databases: databases::Databases::default(),
            services: services::Services::default(),
            next_id: 1,
            window_start: Instant::now(),
            window_count: 0,
            health_base: String::new(),
        }));
        let health_state = state.clone();
        let health = Server::start(move |request| serve_health(&health_state, request));
        state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .health_base = health.url();
        let contract = shared_contract();
        let handler_state = state.clone();
        let server = Server::start(move |request| handle(&contract, &handler_state, request));
        FakeCoolify {
            server,
            health,
            state,
        }
    }

    /// The instance's address, as the provider's `url` takes it (without `/api/v1`).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// `http://127.0.0.1:<port>`: domains below it are served by the health server once a
    /// release of their application runs, such as `<base>/web` with `<base>/web/health`.
    pub fn health_base(&self) -> String {
        self.health.url()
    }

    /// The API's HTTP server, to inject faults.
    pub fn http(&self) -> &Server {
        &self.server
    }

    /// The API's HTTP server, to stop and restart it.
    pub fn http_mut(&mut self) -> &mut Server {
        &mut self.server
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.advance();
        state
    }

    /// Adds a server with its default destination (network `coolify`); returns its uuid.
    pub fn add_server(&self, name: &str) -> String {
        let mut state = self.state();
        let uuid = state.new_uuid();
        state.servers.push((uuid.clone(), name.to_string()));
        let destination = state.new_uuid();
        state
            .destinations
            .push((destination, "coolify".into(), uuid.clone()));
        uuid
    }

    /// Adds a Docker network destination to the server named `server`; returns its uuid. A
    /// server with more than one refuses a create that does not name one.
    ///
    /// # Panics
    /// If there is no such server.
    pub fn add_destination(&self, server: &str, name: &str) -> String {
        let mut state = self.state();
        let server = state
            .servers
            .iter()
            .find(|(_, n)| n == server)
            .map_or_else(|| panic!("no server {server}"), |(u, _)| u.clone());
        let uuid = state.new_uuid();
        state
            .destinations
            .push((uuid.clone(), name.to_string(), server));
        uuid
    }

    /// The uuid of the destination an application was created on.
    pub fn destination_of(&self, app: &str) -> Option<String> {
        self.application(app)?
            .get("destination_uuid")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Adds a project with its `production` environment; returns its uuid.
    pub fn add_project(&self, name: &str) -> String {
        self.state().add_project(name, None)
    }

    /// The names of the projects, as the dashboard lists them.
    pub fn projects(&self) -> Vec<String> {
        self.state()
            .projects
            .iter()
            .map(|p| p.name.clone())
            .collect()
    }

    /// Renames the project named `from` in the dashboard (its environments and resources
    /// stay in it).
    ///
    /// # Panics
    /// If there is no such project.
    pub fn rename_project(&self, from: &str, to: &str) {
        let mut state = self.state();
        let project = state.projects.iter_mut().find(|p| p.name == from);
        project.unwrap_or_else(|| panic!("no project {from}")).name = to.to_string();
    }

    /// Removes the project named `name` and its environments, leaving what was in them
    /// orphaned, as a project deleted behind fabrik's back would.
    pub fn remove_project(&self, name: &str) {
        self.state().projects.retain(|p| p.name != name);
    }

    /// Renames the server named `from` in the dashboard.
    ///
    /// # Panics
    /// If there is no such server.
    pub fn rename_server(&self, from: &str, to: &str) {
        let mut state = self.state();
        let server = state.servers.iter_mut().find(|(_, n)| n == from);
        server.unwrap_or_else(|| panic!("no server {from}")).1 = to.to_string();
    }

    /// Removes the server named `name` and its destinations.
    pub fn remove_server(&self, name: &str) {
        let mut state = self.state();
        let uuids: Vec<String> = state
            .servers
            .iter()
            .filter(|(_, n)| n == name)
            .map(|(u, _)| u.clone())
            .collect();
        state.servers.retain(|(_, n)| n != name);
        state.destinations.retain(|(_, _, s)| !uuids.contains(s));
    }

    /// How long a deployment runs (queued a third of it, then in progress).
    pub fn set_deploy_duration(&self, duration: Duration) {
        self.state().settings.deploy_duration = duration;
    }

    /// While `hold` is true, a deployment that started stays `in_progress` however long it
    /// was to take; once released, those past their end finish (or fail) at once.
    pub fn hold_deployments(&self, hold: bool) {
        self.state().settings.hold_deployments = hold;
    }

    /// How long a queued deletion takes.
    pub fn set_delete_delay(&self, delay: Duration) {
        self.state().settings.delete_delay = delay;
    }

    /// Allows `limit` requests per `window` before answering 429.
    pub fn set_rate_limit(&self, limit: usize, window: Duration) {
        let mut state = self.state();
        state.settings.rate_limit = limit;
        state.settings.window = window;
        state.window_start = Instant::now();
        state.window_count = 0;
    }

    /// Makes the next application create, then answers `status` instead of its answer: the
    /// client cannot tell whether the application exists.
    pub fn lose_next_create_answer(&self, status: u16) {
        self.state().settings.lost_creates.push(status);
    }

    /// Answers the next `n` reads of a deployment by uuid with 404 although it exists, as
    /// Coolify has done for live deployments (coollabsio/coolify#8925).
    pub fn hide_next_deployment_reads(&self, n: usize) {
        self.state().settings.hidden_deployment_reads = n;
    }

    pub fn set_token(&self, token: &str) {
        self.state().settings.token = token.to_string();
    }

    /// Every application not yet deleted, as `GET /applications/{uuid}` shows it.
    pub fn applications(&self) -> Vec<Value> {
        self.state()
            .applications
            .iter()
            .map(Application::json)
            .collect()
    }

    pub fn application(&self, uuid: &str) -> Option<Value> {
        self.state()
            .applications
            .iter()
            .find(|a| a.uuid() == uuid)
            .map(Application::json)
    }

    /// Creates an application behind the provider's back (someone else's, or a copy); `fields`
    /// are stored as they are (`fqdn`, `description`, `docker_registry_image_name`, …).
    /// Returns its uuid.
    ///
    /// # Panics
    /// If the project or environment does not exist.
    pub fn insert_application(&self, project: &str, environment: &str, fields: Value) -> String {
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
        let uuid = state.new_uuid();
        let mut app = defaults(&uuid, env_id);
        for (k, v) in fields.as_object().expect("an object") {
            app.insert(k.clone(), v.clone());
        }
        state.applications.push(Application {
            fields: app,
            environment_id: env_id,
            running: None,
            gone_at: None,
        });
        uuid
    }

    /// Changes fields of an application behind the provider's back.
    pub fn edit_application(&self, uuid: &str, fields: Value) {
        let mut state = self.state();
        let app = state
            .applications
            .iter_mut()
            .find(|a| a.uuid() == uuid)
            .unwrap_or_else(|| panic!("no application {uuid}"));
        for (k, v) in fields.as_object().expect("an object") {
            app.fields.insert(k.clone(), v.clone());
        }
    }

    /// The application's variable rows (twins included), as the API lists them.
    pub fn envs(&self, uuid: &str) -> Vec<Value> {
        self.state()
            .vars
            .iter()
            .filter(|v| v.app == uuid)
            .map(Var::json)
            .collect()
    }

    /// Queues a deployment of `uuid` behind the provider's back (a push webhook); returns its
    /// uuid.
    pub fn trigger_deployment(&self, uuid: &str) -> String {
        self.state().queue_deployment(uuid)
    }

    /// The statuses of the application's deployments, oldest first.
    pub fn deployment_statuses(&self, uuid: &str) -> Vec<String> {
        let state = self.state();
        let now = Instant::now();
        state
            .deployments
            .iter()
            .filter(|d| d.app == uuid)
            .map(|d| d.status(now).to_string())
            .collect()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.server.log()
    }

    /// How many requests had this method and a path ending with `suffix`.
    pub fn count(&self, method: &str, suffix: &str) -> usize {
        self.server.count(method, suffix)
    }

    pub fn violations(&self) -> Vec<String> {
        self.server.violations()
    }

    /// Fails the test if any request broke the contract or a known rule of the server.
    ///
    /// # Panics
    /// Listing every violation.
    pub fn assert_no_violations(&self) {
        self.server.assert_no_violations("Coolify");
    }
}

/// An application's fields as Coolify fills them in.
fn defaults(uuid: &str, environment_id: u64) -> Map<String, Value> {
    let v = json!({
        "uuid": uuid, "name": format!("app-{uuid}"), "description": null, "fqdn": null,
        "build_pack": "dockerimage", "docker_registry_image_name": null,
        "docker_registry_image_tag": null, "git_repository": null, "git_branch": null,
        "ports_exposes": "", "environment_id": environment_id,
        "health_check_enabled": false, "health_check_path": "/", "health_check_port": null,
        "health_check_host": "localhost", "health_check_method": "GET",
        "health_check_return_code": 200, "health_check_scheme": "http",
        "health_check_interval": 5, "health_check_timeout": 5, "health_check_retries": 10,
        "health_check_start_period": 5, "limits_memory": "0", "limits_memory_swap": "0",
        "limits_memory_swappiness": 60, "limits_memory_reservation": "0", "limits_cpus": "0",
        "limits_cpuset": null, "limits_cpu_shares": 1024,
    });
    v.as_object().cloned().unwrap_or_default()
}

fn violation(status: u16, body: Value, reason: String) -> Response {
    let mut answer = Response::json(status, &body);
    answer.violation = Some(reason);
    answer
}

fn handle(contract: &Contract, state: &Mutex<State>, request: &Request) -> Response {
    let matched = match contract.check(
        &request.method,
        &request.path,
        &request.query,
        &request.body,
    ) {
        Ok(m) => m,
        Err(v) => {
            let (status, body) = match v.rule {
                Rule::UnknownPath => error(404, "Not found."),
                Rule::MethodNotAllowed => error(405, "Method not allowed."),
                Rule::Body => {
                    // Name the field the way the server does for a field it does not allow.
                    let field = v
                        .detail
                        .split('`')
                        .nth(1)
                        .map(|f| f.trim_start_matches('/').to_string())
                        .unwrap_or_default();
                    if v.detail.contains("is not declared") && !field.is_empty() {
                        not_allowed(&field)
                    } else {
                        (
                            422,
                            json!({"message": "Validation failed.", "errors": [v.detail.clone()]}),
                        )
                    }
                }
                Rule::Parameter => (
                    422,
                    json!({"message": "Validation failed.", "errors": [v.detail.clone()]}),
                ),
            };
            return violation(status, body, v.to_string());
        }
    };
    let body: Value = if request.body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(&request.body) {
            Ok(v) => v,
            Err(e) => {
                return violation(
                    400,
                    json!({"message": "Invalid request."}),
                    format!("the body is not JSON: {e}"),
                );
            }
        }
    };
    let mut state = state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let expected = format!("Bearer {}", state.settings.token);
    if request.header("authorization") != Some(expected.as_str()) {
        return Response::json(401, &json!({"message": "Unauthenticated."}));
    }
    if let Some(wait) = state.over_budget() {
        return Response::json(429, &json!({"message": "Too Many Attempts."}))
            .header("Retry-After", wait.to_string());
    }
    state.advance();
    let param = |name: &str| matched.path_params.get(name).cloned().unwrap_or_default();
    let method = request.method.as_str();
    // Quirks of the server beyond its contract: refused fields (recorded as violations).
    if matches!(method, "POST" | "PATCH")
        && let Some(fields) = body.as_object()
    {
        if fields.contains_key("fqdn") {
            return violation(
                422,
                not_allowed("fqdn").1,
                "`fqdn` is read-only: writes use `domains` (coollabsio/coolify#9502)".into(),
            );
        }
        if matched.template == "/applications/public"
            && fields.get("build_pack") == Some(&json!("dockercompose"))
            && fields.contains_key("domains")
        {
            return violation(
                422,
                not_allowed("domains").1,
                "a dockercompose application takes `docker_compose_domains`, not `domains`".into(),
            );
        }
        if method == "PATCH" && matched.template == "/applications/{uuid}" {
            for field in PATCH_REJECTED {
                if fields.contains_key(field) {
                    return violation(
                        422,
                        not_allowed(field).1,
                        format!("`{field}` is in the contract but the server refuses it on PATCH"),
                    );
                }
            }
        }
    }
    let (status, answer) = match (method, matched.template.as_str()) {
        ("GET", "/servers") => state.servers_list(),
        ("GET", "/servers/{server_uuid}/destinations") => {
            state.destinations_of(&param("server_uuid"))
        }
        ("GET", "/projects") => state.projects_list(),
        ("POST", "/projects") => state.project_create(&body),
        ("GET", "/projects/{uuid}/environments") => state.environments_list(&param("uuid")),
        ("POST", "/projects/{uuid}/environments") => {
            state.environment_create(&param("uuid"), &body)
        }
        ("GET", "/projects/{uuid}/{environment_name_or_uuid}") => {
            state.environment_get(&param("uuid"), &param("environment_name_or_uuid"))
        }
        ("GET", "/applications") => (
            200,
            Value::Array(state.applications.iter().map(Application::json).collect()),
        ),
        ("POST", "/applications/dockerimage") => state.lose(|s| s.application_create(&body, true)),
        ("POST", "/applications/public") => state.lose(|s| s.application_create(&body, false)),
        ("GET", "/applications/{uuid}") => state.application_get(&param("uuid")),
        ("PATCH", "/applications/{uuid}") => state.application_patch(&param("uuid"), &body),
        ("DELETE", "/applications/{uuid}") => state.application_delete(&param("uuid")),
        ("GET", "/applications/{uuid}/envs") => state.envs_list(&param("uuid")),
        ("POST", "/applications/{uuid}/envs") => state.env_create(&param("uuid"), &body),
        ("PATCH", "/applications/{uuid}/envs") => state.env_patch(&param("uuid"), &body),
        ("DELETE", "/applications/{uuid}/envs/{env_uuid}") => {
            state.env_delete(&param("uuid"), &param("env_uuid"))
        }
        ("POST", "/deploy") => state.deploy(request),
        ("GET", "/deployments/{uuid}") if state.settings.hidden_deployment_reads > 0 => {
            state.settings.hidden_deployment_reads -= 1;
            error(404, "Deployment not found.")
        }
        ("GET", "/deployments/{uuid}") => state.deployment_get(&param("uuid")),
        ("GET", "/deployments/applications/{uuid}") => {
            state.deployments_of(&param("uuid"), request)
        }
        (method, template) if template.starts_with("/databases") || template == "/s3-storages" => {
            state.database_route(method, template, &param, &body, request)
        }
        (method, template) if template.starts_with("/services") => {
            state.service_route(method, template, &param, &body)
        }
        (method, template) => error(
            501,
            &format!("the fake does not implement {method} {template}"),
        ),
    };
    Response::json(status, &answer)
}

fn serve_health(state: &Mutex<State>, request: &Request) -> Response {
    let mut state = state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    state.advance();
    let base = state.health_base.clone();
    // The longest matching domain wins, as a proxy routes by host and path prefix.
    let mut best: Option<(usize, &Application)> = None;
    for app in state.applications.iter().filter(|a| a.gone_at.is_none()) {
        for domain in app.domains() {
            let Some(prefix) = domain.strip_prefix(&base) else {
                continue;
            };
            let prefix = prefix.trim_end_matches('/');
            let matches = request.path == prefix
                || request
                    .path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'));
            if matches && best.is_none_or(|(len, _)| prefix.len() > len) {
                best = Some((prefix.len(), app));
            }
        }
    }
    let Some((_, app)) = best else {
        return Response::text(404, &format!("no application serves {}", request.path));
    };
    let Some(tag) = &app.running else {
        return Response::text(502, "Bad Gateway: no release of this application runs");
    };
    let image = app.text("docker_registry_image_name");
    if tag.contains("bad") {
        Response::text(500, &format!("unhealthy: {image}:{tag}"))
    } else {
        Response::text(200, &format!("ok: {image}:{tag}"))
    }
}

impl State {
    fn new_uuid(&mut self) -> String {
        let n = self.next_id;
        self.next_id += 1;
        // 24 lower-case letters and digits, as Coolify's cuid2 identifiers.
        let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5DEE_CE66;
        let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut out = String::with_capacity(24);
        for i in 0..24 {
            if i == 12 {
                x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ n;
            }
            out.push(alphabet[(x % 36) as usize] as char);
            x /= 36;
            if x == 0 {
                x = n.wrapping_mul(31).wrapping_add(i as u64 + 7);
            }
        }
        out
    }

    /// Runs a create, then answers a lost-answer fault instead of it if one is pending.
    fn lose(&mut self, create: impl FnOnce(&mut State) -> Answer) -> Answer {
        let answer = create(self);
        if answer.0 == 201 && !self.settings.lost_creates.is_empty() {
            let status = self.settings.lost_creates.remove(0);
            return error(status, "Server Error");
        }
        answer
    }

    fn new_id(&mut self) -> u64 {
        let n = self.next_id;
        self.next_id += 1;
        n
    }

    fn over_budget(&mut self) -> Option<u64> {
        if self.window_start.elapsed() >= self.settings.window {
            self.window_start = Instant::now();
            self.window_count = 0;
        }
        self.window_count += 1;
        if self.window_count > self.settings.rate_limit {
            let left = self
                .settings
                .window
                .saturating_sub(self.window_start.elapsed());
            return Some(left.as_secs_f64().ceil().max(1.0) as u64);
        }
        None
    }

    /// Moves the clock's consequences forward: deployments start and end, deletions happen.
    fn advance(&mut self) {
        let now = Instant::now();
        self.databases.advance(now);
        self.services.advance(now);
        self.applications
            .retain(|a| a.gone_at.is_none_or(|at| now < at));
        let live: Vec<String> = self
            .applications
            .iter()
            .map(|a| a.uuid().to_string())
            .collect();
        self.vars.retain(|v| live.contains(&v.app));
        for i in 0..self.deployments.len() {
            let d = &self.deployments[i];
            if d.outcome.is_some() || now < d.start_at {
                continue;
            }
            let Some(app) = self.applications.iter_mut().find(|a| a.uuid() == d.app) else {
                self.deployments[i].outcome = Some("cancelled-by-user");
                continue;
            };
            let d = &mut self.deployments[i];
            if d.release.is_none() {
                let name = app.text("docker_registry_image_name").to_string();
                let tag = match app.text("docker_registry_image_tag") {
                    "" => "latest".to_string(),
                    t => t.to_string(),
                };
                d.logs.push((format!("Pulling {name}:{tag}."), false));
                d.logs.push((format!("docker pull {name}:{tag}"), true));
                if tag.contains("slow") {
                    d.end_at += (d.end_at - d.start_at) * 9;
                }
                d.release = Some((name, tag));
            }
            if now < d.end_at || self.settings.hold_deployments {
                continue;
            }
            let (name, tag) = d.release.clone().unwrap_or_default();
            if tag.contains("fail") {
                d.logs.push((
                    format!("Error response from daemon: manifest for {name}:{tag} not found"),
                    false,
                ));
                d.logs
                    .push(("Deployment failed. Removing the new version.".into(), false));
                d.outcome = Some("failed");
            } else {
                d.logs
                    .push((format!("New container started ({name}:{tag})."), false));
                d.outcome = Some("finished");
                app.running = Some(tag);
            }
        }
    }

    fn add_project(&mut self, name: &str, description: Option<String>) -> String {
        let id = self.new_id();
        let uuid = self.new_uuid();
        let env = Environment {
            id: self.new_id(),
            uuid: self.new_uuid(),
            name: "production".into(),
        };
        self.projects.push(Project {
            id,
            uuid: uuid.clone(),
            name: name.to_string(),
            description,
            environments: vec![env],
        });
        uuid
    }

    fn destinations_of(&self, server: &str) -> Answer {
        if !self.servers.iter().any(|(u, _)| u == server) {
            return error(404, "Server not found.");
        }
        let list: Vec<Value> = self
            .destinations
            .iter()
            .filter(|(_, _, s)| s == server)
            .map(|(uuid, name, s)| {
                json!({"uuid": uuid, "name": name, "network": name, "type": "standalone",
                       "server_uuid": s})
            })
            .collect();
        (200, Value::Array(list))
    }

    fn servers_list(&self) -> Answer {
        let list: Vec<Value> = self
            .servers
            .iter()
            .map(|(uuid, name)| {
                json!({"uuid": uuid, "name": name, "ip": "203.0.113.10", "is_reachable": true,
                       "is_usable": true, "settings": {}})
            })
            .collect();
        (200, Value::Array(list))
    }

    fn projects_list(&self) -> Answer {
        let list: Vec<Value> = self
            .projects
            .iter()
            .map(|p| json!({"id": p.id, "uuid": p.uuid, "name": p.name, "description": p.description}))
            .collect();
        (200, Value::Array(list))
    }

    fn project_create(&mut self, body: &Value) -> Answer {
        let Some(name) = body
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        else {
            return (
                422,
                json!({"message": "Validation failed.", "errors": {"name": ["The name field is required."]}}),
            );
        };
        let description = body
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_string);
        let uuid = self.add_project(name, description);
        (201, json!({ "uuid": uuid }))
    }

    fn project(&self, uuid: &str) -> Result<&Project, Answer> {
        self.projects
            .iter()
            .find(|p| p.uuid == uuid)
            .ok_or_else(|| error(404, "Project not found."))
    }

    fn environments_list(&self, project: &str) -> Answer {
        match self.project(project) {
            Ok(p) => (
                200,
                Value::Array(
                    p.environments
                        .iter()
                        .map(|e| json!({"id": e.id, "uuid": e.uuid, "name": e.name}))
                        .collect(),
                ),
            ),
            Err(e) => e,
        }
    }

    fn environment_create(&mut self, project: &str, body: &Value) -> Answer {
        let Some(name) = body
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        else {
            return (
                422,
                json!({"message": "Validation failed.", "errors": {"name": ["The name field is required."]}}),
            );
        };
        let id = self.new_id();
        let uuid = self.new_uuid();
        let Some(p) = self.projects.iter_mut().find(|p| p.uuid == project) else {
            return error(404, "Project not found.");
        };
        if p.environments.iter().any(|e| e.name == name) {
            return error(409, "Environment with this name already exists.");
        }
        p.environments.push(Environment {
            id,
            uuid: uuid.clone(),
            name: name.to_string(),
        });
        (201, json!({ "uuid": uuid }))
    }

    fn environment_get(&self, project: &str, env: &str) -> Answer {
        let p = match self.project(project) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let Some(e) = p
            .environments
            .iter()
            .find(|e| e.name == env || e.uuid == env)
        else {
            return error(404, "Environment not found.");
        };
        let apps: Vec<Value> = self
            .applications
            .iter()
            .filter(|a| a.environment_id == e.id)
            .map(Application::json)
            .collect();
        (
            200,
            json!({"id": e.id, "uuid": e.uuid, "name": e.name, "project_id": p.id,
                   "applications": apps, "services": []}),
        )
    }

    /// The other applications using one of `domains`, as a 409 names them.
    fn conflicts(&self, domains: &[String], except: Option<&str>) -> Vec<Value> {
        let mut out = Vec::new();
        for app in &self.applications {
            if Some(app.uuid()) == except {
                continue;
            }
            for d in app.domains() {
                if domains.contains(&d) {
                    out.push(json!({
                        "domain": d, "resource_name": app.text("name"),
                        "resource_uuid": app.uuid(), "resource_type": "application",
                        "message": format!("Domain {d} is already in use by application '{}'", app.text("name")),
                    }));
                }
            }
        }
        out
    }

    fn application_create(&mut self, body: &Value, image: bool) -> Answer {
        let fields = body.as_object().cloned().unwrap_or_default();
        let text = |k: &str| fields.get(k).and_then(Value::as_str).unwrap_or("");
        let Some(project) = self
            .projects
            .iter()
            .find(|p| p.uuid == text("project_uuid"))
        else {
            return error(404, "Project not found.");
        };
        // The server looks the environment up by name first, then by uuid.
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
            return error(404, "Environment not found.");
        };
        let env_id = env.id;
        if !self.servers.iter().any(|(u, _)| u == text("server_uuid")) {
            return error(404, "Server not found.");
        }
        let on_server: Vec<&String> = self
            .destinations
            .iter()
            .filter(|(_, _, s)| s == text("server_uuid"))
            .map(|(u, _, _)| u)
            .collect();
        let destination = match text("destination_uuid") {
            "" if on_server.len() > 1 => {
                return error(
                    400,
                    "Server has multiple destinations and you do not set destination_uuid.",
                );
            }
            "" => on_server.first().map(|u| (*u).clone()).unwrap_or_default(),
            chosen if on_server.iter().any(|u| *u == chosen) => chosen.to_string(),
            _ => return error(404, "Destination not found."),
        };
        if image && text("docker_registry_image_name").is_empty() {
            return (
                422,
                json!({"message": "Validation failed.", "errors": {"docker_registry_image_name": ["The docker registry image name field is required."]}}),
            );
        }
        if text("ports_exposes")
            .split(',')
            .any(|p| p.trim().parse::<u16>().is_err())
        {
            return (
                422,
                json!({"message": "Validation failed.", "errors": {"ports_exposes": ["The ports exposes field format is invalid."]}}),
            );
        }
        let uuid = self.new_uuid();
        let domains = normal_domains(text("domains"));
        let force = fields.get("force_domain_override") == Some(&json!(true));
        if !force {
            let conflicts = self.conflicts(&domains, None);
            if !conflicts.is_empty() {
                return domain_conflict(conflicts);
            }
        }
        let mut app = defaults(&uuid, env_id);
        if !image {
            app.insert("build_pack".into(), json!(text("build_pack")));
        }
        for (k, v) in &fields {
            if matches!(
                k.as_str(),
                "project_uuid"
                    | "server_uuid"
                    | "environment_name"
                    | "environment_uuid"
                    | "domains"
                    | "autogenerate_domain"
                    | "instant_deploy"
                    | "force_domain_override"
            ) {
                continue;
            }
            app.insert(k.clone(), v.clone());
        }
        let fqdn = if !domains.is_empty() {
            json!(domains.join(","))
        } else if fields.get("autogenerate_domain") == Some(&json!(false)) {
            Value::Null
        } else {
            json!(format!("http://{uuid}.203.0.113.10.sslip.io"))
        };
        app.insert("fqdn".into(), fqdn.clone());
        app.insert("destination_uuid".into(), json!(destination));
        self.applications.push(Application {
            fields: app,
            environment_id: env_id,
            running: None,
            gone_at: None,
        });
        if fields.get("instant_deploy") == Some(&json!(true)) {
            self.queue_deployment(&uuid);
        }
        (201, json!({"uuid": uuid, "domains": fqdn}))
    }

    fn app_mut(&mut self, uuid: &str) -> Result<&mut Application, Answer> {
        self.applications
            .iter_mut()
            .find(|a| a.uuid() == uuid)
            .ok_or_else(|| error(404, "Application not found."))
    }

    fn application_get(&self, uuid: &str) -> Answer {
        match self.applications.iter().find(|a| a.uuid() == uuid) {
            Some(a) => (200, a.json()),
            None => error(404, "Application not found."),
        }
    }

    fn application_patch(&mut self, uuid: &str, body: &Value) -> Answer {
        let fields = body.as_object().cloned().unwrap_or_default();
        if self.app_mut(uuid).is_err() {
            return error(404, "Application not found.");
        }
        let force = fields.get("force_domain_override") == Some(&json!(true));
        let domains = fields
            .get("domains")
            .and_then(Value::as_str)
            .map(normal_domains);
        if let Some(domains) = &domains
            && !force
        {
            let conflicts = self.conflicts(domains, Some(uuid));
            if !conflicts.is_empty() {
                return domain_conflict(conflicts);
            }
        }
        let app = match self.app_mut(uuid) {
            Ok(a) => a,
            Err(e) => return e,
        };
        for (k, v) in &fields {
            match k.as_str() {
                "force_domain_override" | "instant_deploy" => {}
                // An empty `domains` is ignored (coollabsio/coolify#11116).
                "domains" => {
                    if let Some(d) = &domains
                        && !d.is_empty()
                    {
                        app.fields.insert("fqdn".into(), json!(d.join(",")));
                    }
                }
                _ => {
                    app.fields.insert(k.clone(), v.clone());
                }
            }
        }
        (200, json!({ "uuid": uuid }))
    }

    fn application_delete(&mut self, uuid: &str) -> Answer {
        let delay = self.settings.delete_delay;
        match self.app_mut(uuid) {
            Ok(app) => {
                if app.gone_at.is_none() {
                    app.gone_at = Some(Instant::now() + delay);
                    // Its containers stop at once; the record goes later.
                    app.running = None;
                }
                (
                    200,
                    json!({"message": "Application deletion request queued."}),
                )
            }
            Err(e) => e,
        }
    }

    fn envs_list(&self, uuid: &str) -> Answer {
        if !self.applications.iter().any(|a| a.uuid() == uuid) {
            return error(404, "Application not found.");
        }
        (
            200,
            Value::Array(
                self.vars
                    .iter()
                    .filter(|v| v.app == uuid)
                    .map(Var::json)
                    .collect(),
            ),
        )
    }

    fn env_create(&mut self, uuid: &str, body: &Value) -> Answer {
        if !self.applications.iter().any(|a| a.uuid() == uuid) {
            return error(404, "Application not found.");
        }
        let Some(key) = body
            .get("key")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
        else {
            return (
                422,
                json!({"message": "Validation failed.", "errors": {"key": ["The key field is required."]}}),
            );
        };
        let Some(value) = body.get("value").and_then(Value::as_str) else {
            return (
                422,
                json!({"message": "Validation failed.", "errors": {"value": ["The value field is required."]}}),
            );
        };
        let is_preview = body.get("is_preview") == Some(&json!(true));
        if self
            .vars
            .iter()
            .any(|v| v.app == uuid && v.key == key && v.is_preview == is_preview)
        {
            return error(409, &format!("Environment variable {key} already exists."));
        }
        let flag = |k: &str| body.get(k).and_then(Value::as_bool);
        let (is_literal, is_multiline, is_shown_once) = (
            flag("is_literal"),
            flag("is_multiline"),
            flag("is_shown_once"),
        );
        let mut rows = vec![is_preview];
        // A variable comes with its preview twin, unless that exists already.
        if !is_preview
            && !self
                .vars
                .iter()
                .any(|v| v.app == uuid && v.key == key && v.is_preview)
        {
            rows.push(true);
        }
        let mut made = Vec::new();
        for preview in rows {
            let var = Var {
                uuid: self.new_uuid(),
                app: uuid.to_string(),
                key: key.to_string(),
                value: value.to_string(),
                is_preview: preview,
                is_literal: is_literal.unwrap_or(false),
                is_multiline,
                is_shown_once,
            };
            made.push(var.uuid.clone());
            self.vars.push(var);
        }
        (201, json!({ "uuid": made[0] }))
    }

    fn env_patch(&mut self, uuid: &str, body: &Value) -> Answer {
        if !self.applications.iter().any(|a| a.uuid() == uuid) {
            return error(404, "Application not found.");
        }
        let key = body.get("key").and_then(Value::as_str).unwrap_or("");
        let is_preview = body.get("is_preview") == Some(&json!(true));
        let Some(var) = self
            .vars
            .iter_mut()
            .find(|v| v.app == uuid && v.key == key && v.is_preview == is_preview)
        else {
            return error(404, "Environment variable not found.");
        };
        let flag = |k: &str| body.get(k).and_then(Value::as_bool);
        var.value = body
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        // Flags not sent are reset, not kept.
        var.is_literal = flag("is_literal").unwrap_or(false);
        var.is_multiline = flag("is_multiline");
        var.is_shown_once = flag("is_shown_once");
        (201, var.json())
    }

    fn env_delete(&mut self, uuid: &str, env_uuid: &str) -> Answer {
        let before = self.vars.len();
        self.vars.retain(|v| !(v.app == uuid && v.uuid == env_uuid));
        if self.vars.len() == before {
            return error(404, "Environment variable not found.");
        }
        (200, json!({"message": "Environment variable deleted."}))
    }

    /// Queues a deployment after the application's others; returns its uuid.
    fn queue_deployment(&mut self, app: &str) -> String {
        let now = Instant::now();
        let duration = self.settings.deploy_duration;
        let after = self
            .deployments
            .iter()
            .filter(|d| d.app == app && d.outcome.is_none())
            .map(|d| d.end_at)
            .max()
            .unwrap_or(now)
            .max(now);
        let uuid = self.new_uuid();
        let created = self.new_id();
        self.deployments.push(Deployment {
            uuid: uuid.clone(),
            app: app.to_string(),
            start_at: after + duration / 3,
            end_at: after + duration,
            release: None,
            outcome: None,
            logs: vec![("Deployment queued.".into(), false)],
            created,
        });
        uuid
    }

    fn deploy(&mut self, request: &Request) -> Answer {
        let Some(uuids) = request.query("uuid").or(request.query("tag")) else {
            return error(400, "You must provide uuid or tag.");
        };
        let now = Instant::now();
        let mut out = Vec::new();
        for uuid in uuids.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            if !self
                .applications
                .iter()
                .any(|a| a.uuid() == uuid && a.gone_at.is_none())
            {
                continue;
            }
            let waiting = self
                .deployments
                .iter()
                .any(|d| d.app == uuid && d.status(now) == "queued");
            if waiting {
                // The answer's uuid is made up and never stored.
                let bogus = self.new_uuid();
                out.push(
                    json!({"message": "Deployment already queued for this commit.",
                                "resource_uuid": uuid, "deployment_uuid": bogus}),
                );
                continue;
            }
            let deployment = self.queue_deployment(uuid);
            out.push(json!({"message": "Application deployment queued.",
                            "resource_uuid": uuid, "deployment_uuid": deployment}));
        }
        if out.is_empty() {
            return error(404, "No resources found.");
        }
        (200, json!({ "deployments": out }))
    }

    fn deployment_json(&self, d: &Deployment) -> Value {
        let logs: Vec<Value> = d
            .logs
            .iter()
            .map(|(output, hidden)| json!({"output": output, "hidden": hidden, "type": "stdout"}))
            .collect();
        json!({
            "id": d.created, "deployment_uuid": d.uuid, "application_id": d.app,
            "status": d.status(Instant::now()), "force_rebuild": true,
            "logs": serde_json::to_string(&logs).unwrap_or_default(),
        })
    }

    fn deployment_get(&self, uuid: &str) -> Answer {
        match self.deployments.iter().find(|d| d.uuid == uuid) {
            Some(d) => (200, self.deployment_json(d)),
            None => error(404, "Deployment not found."),
        }
    }

    fn deployments_of(&self, app: &str, request: &Request) -> Answer {
        if !self.applications.iter().any(|a| a.uuid() == app) {
            return error(404, "Application not found.");
        }
        let skip: usize = request
            .query("skip")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let take: usize = request
            .query("take")
            .and_then(|s| s.parse().ok())
            .unwrap_or(10);
        let mine: Vec<&Deployment> = self
            .deployments
            .iter()
            .rev()
            .filter(|d| d.app == app)
            .collect();
        let page: Vec<Value> = mine
            .iter()
            .skip(skip)
            .take(take)
            .map(|d| self.deployment_json(d))
            .collect();
        // `{count, deployments}`, not the array the contract says (coollabsio/coolify#5874).
        (200, json!({"count": mine.len(), "deployments": page}))
    }
}

fn domain_conflict(conflicts: Vec<Value>) -> Answer {
    (
        409,
        json!({
            "message": "Domain conflicts detected. Use force_domain_override=true to proceed.",
            "warning": "Using the same domain for multiple resources can cause routing conflicts and unpredictable behavior.",
            "conflicts": conflicts,
        }),
    )
}

/// A `domains` value as the server stores it: split at commas, scheme and host lower-cased.
fn normal_domains(domains: &str) -> Vec<String> {
    domains
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| match d.split_once("://") {
            Some((scheme, rest)) => {
                let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                format!(
                    "{}://{}{path}",
                    scheme.to_ascii_lowercase(),
                    host.to_ascii_lowercase()
                )
            }
            None => d.to_string(),
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// One HTTP/1.1 request over a TCP stream (the testkit has no HTTP client): status and
    /// body.
    fn raw(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
        use std::io::{Read, Write};
        let host = base.trim_start_matches("http://").to_string();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = std::net::TcpStream::connect(&host).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let status = text[9..12].parse().unwrap();
        let (_, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        (status, body.to_string())
    }

    /// A request to the API: status and JSON body.
    pub(super) fn call(
        fake: &FakeCoolify,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, text) = raw(&fake.url(), method, path, body);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub(super) fn setup() -> (FakeCoolify, String, String) {
        let fake = FakeCoolify::start();
        let server = fake.add_server("main");
        let project = fake.add_project("shop");
        (fake, server, project)
    }

    fn create(fake: &FakeCoolify, server: &str, project: &str, extra: Value) -> (u16, Value) {
        let mut body = json!({
            "project_uuid": project, "server_uuid": server, "environment_name": "production",
            "environment_uuid": "x", "docker_registry_image_name": "ghcr.io/acme/api",
            "docker_registry_image_tag": "1.0", "ports_exposes": "8000",
            "autogenerate_domain": false,
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        call(fake, "POST", "/api/v1/applications/dockerimage", Some(body))
    }

    #[test]
    fn unknown_fields_and_fqdn_are_refused_and_recorded() {
        let (fake, server, project) = setup();
        let (status, body) = create(&fake, &server, &project, json!({"colour": "blue"}));
        assert_eq!(status, 422);
        assert_eq!(body["errors"]["colour"][0], "This field is not allowed.");
        let (status, _) = create(&fake, &server, &project, json!({"fqdn": "https://a.test"}));
        assert_eq!(status, 422);
        assert_eq!(fake.violations().len(), 2);
    }

    #[test]
    fn patch_refuses_what_the_contract_allows_but_the_server_does_not() {
        let (fake, server, project) = setup();
        let (status, made) = create(&fake, &server, &project, json!({}));
        assert_eq!(status, 201);
        let uuid = made["uuid"].as_str().unwrap();
        let path = format!("/api/v1/applications/{uuid}");
        let (status, body) = call(&fake, "PATCH", &path, Some(json!({"server_uuid": server})));
        assert_eq!(status, 422);
        assert_eq!(
            body["errors"]["server_uuid"][0],
            "This field is not allowed."
        );
        let (status, _) = call(
            &fake,
            "PATCH",
            &path,
            Some(json!({"domains": "HTTPS://A.test"})),
        );
        assert_eq!(status, 200);
        assert_eq!(fake.application(uuid).unwrap()["fqdn"], "https://a.test");
        // An empty `domains` is ignored, as the server does.
        call(&fake, "PATCH", &path, Some(json!({"domains": ""})));
        assert_eq!(fake.application(uuid).unwrap()["fqdn"], "https://a.test");
        assert_eq!(fake.violations().len(), 1);
    }

    #[test]
    fn deploy_is_post_only_and_a_queued_deploy_answers_a_made_up_uuid() {
        let (fake, server, project) = setup();
        fake.set_deploy_duration(Duration::from_secs(30));
        let (_, made) = create(&fake, &server, &project, json!({}));
        let uuid = made["uuid"].as_str().unwrap().to_string();
        let (status, _) = call(&fake, "GET", &format!("/api/v1/deploy?uuid={uuid}"), None);
        assert_eq!(status, 405);
        let (status, first) = call(
            &fake,
            "POST",
            &format!("/api/v1/deploy?uuid={uuid}&force=true"),
            None,
        );
        assert_eq!(status, 200);
        let real = first["deployments"][0]["deployment_uuid"].as_str().unwrap();
        let (_, second) = call(
            &fake,
            "POST",
            &format!("/api/v1/deploy?uuid={uuid}&force=true"),
            None,
        );
        assert_eq!(
            second["deployments"][0]["message"],
            "Deployment already queued for this commit."
        );
        let bogus = second["deployments"][0]["deployment_uuid"]
            .as_str()
            .unwrap();
        let (status, _) = call(&fake, "GET", &format!("/api/v1/deployments/{bogus}"), None);
        assert_eq!(status, 404);
        let (_, listed) = call(
            &fake,
            "GET",
            &format!("/api/v1/deployments/applications/{uuid}?take=1"),
            None,
        );
        assert_eq!(listed["deployments"][0]["deployment_uuid"], real);
        assert_eq!(listed["deployments"][0]["status"], "queued");
        assert_eq!(fake.violations().len(), 1, "the GET was recorded");
    }

    #[test]
    fn variables_get_preview_twins_and_patch_resets_flags_it_is_not_sent() {
        let (fake, server, project) = setup();
        let (_, made) = create(&fake, &server, &project, json!({}));
        let uuid = made["uuid"].as_str().unwrap();
        let path = format!("/api/v1/applications/{uuid}/envs");
        let row = json!({"key": "A", "value": "1", "is_literal": true});
        assert_eq!(call(&fake, "POST", &path, Some(row.clone())).0, 201);
        assert_eq!(call(&fake, "POST", &path, Some(row)).0, 409);
        let rows = fake.envs(uuid);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["is_preview"], true);
        call(
            &fake,
            "PATCH",
            &path,
            Some(json!({"key": "A", "value": "2"})),
        );
        let rows = fake.envs(uuid);
        assert_eq!(rows[0]["value"], "2");
        assert_eq!(rows[0]["is_literal"], false);
        assert_eq!(rows[1]["value"], "1", "the twin is a row of its own");
        fake.assert_no_violations();
    }

    #[test]
    fn a_finished_release_is_served_and_a_deleted_application_goes_later() {
        let (fake, server, project) = setup();
        fake.set_deploy_duration(Duration::from_millis(60));
        let domain = format!("{}/web", fake.health_base());
        let (_, made) = create(
            &fake,
            &server,
            &project,
            json!({"domains": domain, "docker_registry_image_tag": "bad-1"}),
        );
        let uuid = made["uuid"].as_str().unwrap().to_string();
        let health = |path: &str| raw(&fake.health_base(), "GET", path, None).0;
        assert_eq!(
            health("/web/health"),
            502,
            "nothing runs before a deployment"
        );
        call(
            &fake,
            "POST",
            &format!("/api/v1/deploy?uuid={uuid}&force=true"),
            None,
        );
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(health("/web/health"), 500, "a bad tag answers 500");
        assert_eq!(
            fake.application(&uuid).unwrap()["status"],
            "running:unhealthy"
        );
        let path = format!("/api/v1/applications/{uuid}");
        call(
            &fake,
            "PATCH",
            &path,
            Some(json!({"docker_registry_image_tag": "2"})),
        );
        call(
            &fake,
            "POST",
            &format!("/api/v1/deploy?uuid={uuid}&force=true"),
            None,
        );
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(health("/web/health"), 200);
        assert_eq!(health("/other/health"), 404);
        assert_eq!(call(&fake, "DELETE", &path, None).0, 200);
        assert_eq!(call(&fake, "GET", &path, None).0, 200, "deletion is queued");
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(call(&fake, "GET", &path, None).0, 404);
        fake.assert_no_violations();
    }

    #[test]
    fn a_compose_application_refuses_domains() {
        let (fake, server, project) = setup();
        let body = json!({
            "project_uuid": project, "server_uuid": server, "environment_name": "production",
            "environment_uuid": "x", "git_repository": "https://github.com/acme/stack",
            "git_branch": "main", "build_pack": "dockercompose", "domains": "https://a.test",
        });
        let (status, answer) = call(&fake, "POST", "/api/v1/applications/public", Some(body));
        assert_eq!(status, 422);
        assert_eq!(answer["errors"]["domains"][0], "This field is not allowed.");
        assert_eq!(fake.violations().len(), 1);
    }

    #[test]
    fn a_domain_in_use_is_a_conflict_naming_its_holder() {
        let (fake, server, project) = setup();
        let (_, first) = create(
            &fake,
            &server,
            &project,
            json!({"domains": "https://a.test", "name": "first"}),
        );
        let (status, body) = create(
            &fake,
            &server,
            &project,
            json!({"domains": "https://A.test"}),
        );
        assert_eq!(status, 409);
        assert_eq!(body["conflicts"][0]["resource_uuid"], first["uuid"]);
        assert_eq!(body["conflicts"][0]["resource_name"], "first");
        fake.assert_no_violations();
    }
}

//! `coolify.application` as a spec writes it: the fields, their checks and their normal form
//! (the translation to and from Coolify's application fields is in `translation`).
//!
//! The normal form is what the engine records and diffs, and what a read reports, so that the
//! plan never shows a change that is not one: image references carry their tag (`:latest` when
//! none was written), ports are integers, domains are URLs with a lower-case scheme and host
//! (Coolify lower-cases hosts itself), environment values are strings, and the health check
//! has Coolify's defaults filled in.

use std::collections::BTreeMap;
use std::time::Duration;

use fabrik_provider::{
    Attributes, Field, FieldKind, OutputField, ReplaceStrategy, ResourceType, Result, Value,
};
use serde_json::json;

use crate::inputs::{PLACE_FIELDS, check_strings, duration, invalid, required, text, trim_strings};
pub use crate::inputs::{is_masked, parse_duration};

pub const APPLICATION_TYPE: &str = "coolify.application";

/// How long a deployment may take unless the resource says otherwise.
pub const DEFAULT_DEPLOY_TIMEOUT: Duration = Duration::from_secs(600);
/// The environment every Coolify project starts with.
pub const DEFAULT_ENVIRONMENT: &str = "production";
/// The build packs `POST /applications/public` accepts.
pub const BUILD_PACKS: [&str; 5] = [
    "nixpacks",
    "railpack",
    "static",
    "dockerfile",
    "dockercompose",
];

/// Coolify's health check defaults (seconds), filled in so that writing them is no change.
pub(super) const HEALTH_INTERVAL: u64 = 5;
pub(super) const HEALTH_TIMEOUT: u64 = 5;
pub(super) const HEALTH_RETRIES: u64 = 10;

pub fn resource_type() -> ResourceType {
    ResourceType {
        name: APPLICATION_TYPE,
        description: "An application on a Coolify server, deployed from a registry image or a git \
                      repository, with its ports, domains and environment, deployed and waited for",
        fields: vec![
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
                "The name of the server to deploy on; it must exist.",
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
                "The application's name in Coolify (default: the resource's name).",
            ),
            Field::optional(
                "image",
                FieldKind::String,
                "A registry image with its tag, such as \"ghcr.io/acme/api:1.4.2\" (or `git`).",
            ),
            Field::optional(
                "git",
                FieldKind::Map,
                "A public git repository: { repository, branch, build_pack } (or `image`).",
            ),
            Field::required(
                "ports",
                FieldKind::List,
                "The ports the application listens on; the first receives the domains' traffic.",
            ),
            Field::optional(
                "domains",
                FieldKind::List,
                "The URLs it is served at, such as \"https://api.example.com\".",
            ),
            Field::optional(
                "env",
                FieldKind::Map,
                "Environment variables; values may use secrets.",
            ),
            Field::optional(
                "health_check",
                FieldKind::Map,
                "Coolify's container health check: { path, port, interval, timeout, retries }.",
            ),
            Field::optional(
                "limits",
                FieldKind::Map,
                "Resource limits: { memory: \"512m\", cpus: \"0.5\" }.",
            ),
            Field::optional(
                "deploy_timeout",
                FieldKind::String,
                "How long a deployment may take before the change fails (default \"10m\").",
            ),
        ],
        outputs: vec![
            OutputField::new("uuid", "The application's uuid in Coolify."),
            OutputField::new(
                "fqdn",
                "Its domains as Coolify stores them (comma-separated URLs).",
            )
            .derived_from(&["domains"]),
            OutputField::new(
                "status",
                "Its container status after the last deployment, such as \"running:healthy\".",
            ),
            OutputField::new("deployment", "The uuid of its last deployment."),
        ],
        // Two applications may serve one domain only one at a time: Coolify refuses the second
        // with a 409. The old one goes first.
        replace: ReplaceStrategy::DestroyBeforeCreate,
    }
}

/// Where the application's code comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Image { name: String, tag: String },
    Git(Git),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Git {
    pub repository: String,
    pub branch: String,
    pub build_pack: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub path: String,
    pub port: Option<u64>,
    pub interval: u64,
    pub timeout: u64,
    pub retries: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory: Option<String>,
    pub cpus: Option<String>,
}

/// One application as the (normalised) inputs describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub project: String,
    pub environment: String,
    pub server: String,
    pub destination: Option<String>,
    pub name: Option<String>,
    pub source: Source,
    pub ports: Vec<u64>,
    pub domains: Vec<String>,
    /// `None` when the inputs hold the environment only by its hash (a value read from the
    /// state): it cannot be written back.
    pub env: Option<BTreeMap<String, String>>,
    pub health_check: Option<HealthCheck>,
    pub limits: Limits,
    pub deploy_timeout: Duration,
}

/// Checks what is known of the inputs, naming the field at fault.
pub fn validate(inputs: &Attributes) -> Result<()> {
    check_strings(inputs, &PLACE_FIELDS)?;
    match (inputs.get("image"), inputs.get("git")) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "an application has one source: `image` or `git`, not both",
            ));
        }
        (Some(image), None) => {
            parse_image(image.as_str().unwrap_or_default())?;
        }
        (None, Some(git)) => {
            parse_git(git)?;
        }
        (None, None) => {
            // A source that is not known yet (a reference) is absent here; the check runs
            // again with every value known.
        }
    }
    if let Some(ports) = inputs.get("ports") {
        parse_ports(ports)?;
    }
    if let Some(domains) = inputs.get("domains") {
        let domains = parse_domains(domains)?;
        let compose = inputs
            .get("git")
            .and_then(|g| g.get("build_pack"))
            .and_then(Value::as_str)
            .is_some_and(|b| b.eq_ignore_ascii_case("dockercompose"));
        if compose && !domains.is_empty() {
            return Err(invalid(
                "`domains`: a dockercompose application takes its domains per service                  (Coolify's docker_compose_domains), which fabrik does not manage; leave                  `domains` out and set them in Coolify",
            ));
        }
    }
    if let Some(env) = inputs.get("env").filter(|v| !is_masked(v)) {
        parse_env(env)?;
    }
    if let Some(hc) = inputs.get("health_check") {
        parse_health_check(hc)?;
    }
    if let Some(limits) = inputs.get("limits") {
        parse_limits(limits)?;
    }
    if let Some(t) = inputs.get("deploy_timeout") {
        parse_duration("deploy_timeout", t)?;
    }
    Ok(())
}

/// The inputs in normal form (see the module's doc).
pub fn normalise(inputs: &Attributes) -> Result<Attributes> {
    validate(inputs)?;
    let mut out = inputs.clone();
    trim_strings(&mut out, &PLACE_FIELDS);
    out.entry("environment")
        .or_insert_with(|| json!(DEFAULT_ENVIRONMENT));
    if let Some(image) = inputs.get("image").and_then(Value::as_str) {
        let (name, tag) = parse_image(image)?;
        out.insert("image".into(), json!(format!("{name}:{tag}")));
    }
    if let Some(git) = inputs.get("git") {
        out.insert("git".into(), git_value(&parse_git(git)?));
    }
    if let Some(ports) = inputs.get("ports") {
        out.insert("ports".into(), json!(parse_ports(ports)?));
    }
    let domains = match inputs.get("domains") {
        Some(d) => parse_domains(d)?,
        None => Vec::new(),
    };
    out.insert("domains".into(), json!(domains));
    match inputs.get("env") {
        Some(env) if is_masked(env) => {}
        Some(env) => {
            out.insert("env".into(), json!(parse_env(env)?));
        }
        None => {
            out.insert("env".into(), json!({}));
        }
    }
    if let Some(hc) = inputs.get("health_check") {
        out.insert(
            "health_check".into(),
            health_value(&parse_health_check(hc)?),
        );
    }
    if let Some(limits) = inputs.get("limits") {
        out.insert("limits".into(), limits_value(&parse_limits(limits)?));
    }
    if let Some(t) = inputs.get("deploy_timeout") {
        let d = parse_duration("deploy_timeout", t)?;
        out.insert("deploy_timeout".into(), json!(format!("{}s", d.as_secs())));
    }
    Ok(out)
}

impl Desired {
    /// The application the inputs describe. Inputs are in normal form or close to it; anything
    /// that does not parse is [`ErrorKind::InvalidInput`].
    pub fn from_inputs(inputs: &Attributes) -> Result<Desired> {
        let text = |field: &str| text(inputs, field);
        let required = |field: &str| required(inputs, field);
        let source = match (inputs.get("image"), inputs.get("git")) {
            (Some(image), None) => {
                let (name, tag) = parse_image(image.as_str().unwrap_or_default())?;
                Source::Image { name, tag }
            }
            (None, Some(git)) => Source::Git(parse_git(git)?),
            _ => {
                return Err(invalid(
                    "an application needs exactly one source: `image` or `git`",
                ));
            }
        };
        let env = match inputs.get("env") {
            None => Some(BTreeMap::new()),
            Some(v) if is_masked(v) => None,
            Some(v) => Some(parse_env(v)?),
        };
        Ok(Desired {
            project: required("project")?,
            environment: text("environment")?.unwrap_or_else(|| DEFAULT_ENVIRONMENT.to_string()),
            server: required("server")?,
            destination: text("destination")?,
            name: text("name")?,
            source,
            ports: match inputs.get("ports") {
                Some(p) => parse_ports(p)?,
                None => return Err(invalid("`ports` is required")),
            },
            domains: match inputs.get("domains") {
                Some(d) => parse_domains(d)?,
                None => Vec::new(),
            },
            env,
            health_check: inputs
                .get("health_check")
                .map(parse_health_check)
                .transpose()?,
            limits: inputs
                .get("limits")
                .map(parse_limits)
                .transpose()?
                .unwrap_or_default(),
            deploy_timeout: duration(inputs, "deploy_timeout", DEFAULT_DEPLOY_TIMEOUT)?,
        })
    }

    /// A `git` source built with Docker Compose: its domains belong to its services.
    pub fn is_compose(&self) -> bool {
        matches!(&self.source, Source::Git(g) if g.build_pack == "dockercompose")
    }
}

/// `registry/name:tag` split at the tag; no tag is `latest`. A `:` before the last `/` is a
/// registry's port, not a tag.
pub fn parse_image(image: &str) -> Result<(String, String)> {
    let image = image.trim();
    if image.is_empty() || image.chars().any(char::is_whitespace) {
        return Err(invalid(format!(
            "`image` must be a registry image such as \"ghcr.io/acme/api:1.4.2\", not {image:?}"
        )));
    }
    if image.contains('@') {
        return Err(invalid(format!(
            "`image` {image:?}: Coolify deploys images by tag; write the tag instead of a digest"
        )));
    }
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match image[last_slash..].rfind(':') {
        Some(i) => (&image[..last_slash + i], &image[last_slash + i + 1..]),
        None => (image, "latest"),
    };
    if name.is_empty() || tag.is_empty() || name.ends_with('/') {
        return Err(invalid(format!(
            "`image` must be a registry image such as \"ghcr.io/acme/api:1.4.2\", not {image:?}"
        )));
    }
    Ok((name.to_string(), tag.to_string()))
}

fn parse_git(value: &Value) -> Result<Git> {
    let Some(map) = value.as_object() else {
        return Err(invalid(
            "`git` must be a map: { repository, branch, build_pack }",
        ));
    };
    for key in map.keys() {
        if !["repository", "branch", "build_pack"].contains(&key.as_str()) {
            return Err(invalid(format!(
                "`git.{key}` is not a field of `git` (repository, branch, build_pack)"
            )));
        }
    }
    let text = |k: &str| map.get(k).and_then(Value::as_str).map(str::trim);
    let repository = text("repository")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| invalid("`git.repository` is required"))?;
    let build_pack = text("build_pack")
        .unwrap_or("nixpacks")
        .to_ascii_lowercase();
    if !BUILD_PACKS.contains(&build_pack.as_str()) {
        return Err(invalid(format!(
            "`git.build_pack` must be one of {}, not {build_pack:?}",
            BUILD_PACKS.join(", ")
        )));
    }
    Ok(Git {
        repository: repository.to_string(),
        branch: text("branch").unwrap_or("main").to_string(),
        build_pack,
    })
}

pub(super) fn git_value(git: &Git) -> Value {
    json!({"repository": git.repository, "branch": git.branch, "build_pack": git.build_pack})
}

fn parse_ports(value: &Value) -> Result<Vec<u64>> {
    let Some(items) = value.as_array() else {
        return Err(invalid("`ports` must be a list of port numbers"));
    };
    if items.is_empty() {
        return Err(invalid("`ports` needs at least one port"));
    }
    let mut ports = Vec::new();
    for item in items {
        let port = item
            .as_u64()
            .or_else(|| item.as_str().and_then(|s| s.trim().parse().ok()))
            .filter(|p| (1..=65_535).contains(p))
            .ok_or_else(|| invalid(format!("`ports`: {item} is not a port (1 to 65535)")))?;
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    Ok(ports)
}

fn parse_domains(value: &Value) -> Result<Vec<String>> {
    let Some(items) = value.as_array() else {
        return Err(invalid(
            "`domains` must be a list of URLs such as \"https://api.example.com\"",
        ));
    };
    let mut domains = Vec::new();
    for item in items {
        let url = item
            .as_str()
            .ok_or_else(|| invalid(format!("`domains`: {item} is not a URL")))?;
        let url = normal_url(url)?;
        if !domains.contains(&url) {
            domains.push(url);
        }
    }
    Ok(domains)
}

/// A domain URL as Coolify stores it: lower-case scheme and host, no trailing `/`.
pub fn normal_url(url: &str) -> Result<String> {
    let url = url.trim();
    let bad = || {
        invalid(format!(
            "`domains`: {url:?} is not an http:// or https:// URL such as \"https://api.example.com\""
        ))
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(bad());
    }
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if host.is_empty() || host.contains(',') || url.chars().any(char::is_whitespace) {
        return Err(bad());
    }
    let path = path.trim_end_matches('/');
    Ok(format!("{scheme}://{}{path}", host.to_ascii_lowercase()))
}

pub(crate) fn parse_env(value: &Value) -> Result<BTreeMap<String, String>> {
    let Some(map) = value.as_object() else {
        return Err(invalid("`env` must be a map of names to values"));
    };
    let mut env = BTreeMap::new();
    for (key, v) in map {
        let valid = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(invalid(format!(
                "`env`: {key:?} is not a variable name (letters, digits and _, not starting with a digit)"
            )));
        }
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(_) | Value::Bool(_) => v.to_string(),
            _ => {
                return Err(invalid(format!(
                    "`env.{key}` must be a string, a number or a boolean"
                )));
            }
        };
        env.insert(key.clone(), text);
    }
    Ok(env)
}

fn parse_health_check(value: &Value) -> Result<HealthCheck> {
    let Some(map) = value.as_object() else {
        return Err(invalid(
            "`health_check` must be a map: { path, port, interval, timeout, retries }",
        ));
    };
    for key in map.keys() {
        if !["path", "port", "interval", "timeout", "retries"].contains(&key.as_str()) {
            return Err(invalid(format!(
                "`health_check.{key}` is not a field of `health_check` (path, port, interval, timeout, retries)"
            )));
        }
    }
    let number = |k: &str, default: u64, min: u64| -> Result<u64> {
        match map.get(k) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .filter(|n| *n >= min)
                .ok_or_else(|| {
                    invalid(format!(
                        "`health_check.{k}` must be a whole number of at least {min}"
                    ))
                }),
        }
    };
    let path = match map.get("path") {
        None | Some(Value::Null) => "/".to_string(),
        Some(Value::String(p)) if p.starts_with('/') => p.clone(),
        Some(other) => {
            return Err(invalid(format!(
                "`health_check.path` must start with /, not {other}"
            )));
        }
    };
    let port = match map.get("port") {
        None | Some(Value::Null) => None,
        Some(_) => {
            let p = number("port", 0, 1)?;
            if p > 65_535 {
                return Err(invalid("`health_check.port` must be a port (1 to 65535)"));
            }
            Some(p)
        }
    };
    Ok(HealthCheck {
        path,
        port,
        interval: number("interval", HEALTH_INTERVAL, 1)?,
        timeout: number("timeout", HEALTH_TIMEOUT, 1)?,
        retries: number("retries", HEALTH_RETRIES, 1)?,
    })
}

pub(super) fn health_value(hc: &HealthCheck) -> Value {
    let mut v = json!({
        "path": hc.path, "interval": hc.interval, "timeout": hc.timeout, "retries": hc.retries,
    });
    if let Some(port) = hc.port {
        v["port"] = json!(port);
    }
    v
}

pub(crate) fn parse_limits(value: &Value) -> Result<Limits> {
    let Some(map) = value.as_object() else {
        return Err(invalid("`limits` must be a map: { memory, cpus }"));
    };
    let mut limits = Limits::default();
    for (key, v) in map {
        let text = match v {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            _ => return Err(invalid(format!("`limits.{key}` must be a string"))),
        };
        let ok = match key.as_str() {
            // Docker's notation: a number with an optional b, k, m or g.
            "memory" => {
                let digits = text.trim_end_matches(['b', 'k', 'm', 'g', 'B', 'K', 'M', 'G']);
                !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
            }
            "cpus" => text.parse::<f64>().is_ok_and(|c| c > 0.0),
            other => {
                return Err(invalid(format!(
                    "`limits.{other}` is not a field of `limits` (memory, cpus)"
                )));
            }
        };
        if !ok {
            return Err(invalid(format!(
                "`limits.{key}`: {text:?} is not a limit Docker understands (memory: \"512m\", cpus: \"0.5\")"
            )));
        }
        let text = if text == "0" { None } else { Some(text) };
        match key.as_str() {
            "memory" => limits.memory = text.map(|t| t.to_ascii_lowercase()),
            _ => limits.cpus = text,
        }
    }
    Ok(limits)
}

pub(crate) fn limits_value(limits: &Limits) -> Value {
    let mut v = json!({});
    if let Some(m) = &limits.memory {
        v["memory"] = json!(m);
    }
    if let Some(c) = &limits.cpus {
        v["cpus"] = json!(c);
    }
    v
}

#[cfg(test)]
mod tests {
    use fabrik_provider::ErrorKind;

    use super::*;

    fn attrs(v: Value) -> Attributes {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn images_split_at_the_tag_not_at_a_registry_port() {
        assert_eq!(
            parse_image("ghcr.io/acme/api:1.4").unwrap(),
            ("ghcr.io/acme/api".into(), "1.4".into())
        );
        assert_eq!(
            parse_image("registry.local:5000/api").unwrap(),
            ("registry.local:5000/api".into(), "latest".into())
        );
        assert_eq!(
            parse_image("nginx").unwrap(),
            ("nginx".into(), "latest".into())
        );
        for bad in ["", "a b", "api:", "x@sha256:abc", "/:x"] {
            assert!(parse_image(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_normal_form_makes_respellings_equal() {
        let a = normalise(&attrs(json!({
            "project": " shop ", "server": "main", "image": "ghcr.io/acme/api",
            "ports": ["8000", 8000, 9000], "domains": ["HTTPS://API.Shop.Example/"],
            "env": {"N": 3, "B": true}, "health_check": {"path": "/health"},
            "limits": {"memory": "512M", "cpus": 0.5}, "deploy_timeout": 120,
        })))
        .unwrap();
        assert_eq!(
            Value::Object(a.clone()),
            json!({
                "project": "shop", "environment": "production", "server": "main",
                "image": "ghcr.io/acme/api:latest", "ports": [8000, 9000],
                "domains": ["https://api.shop.example"], "env": {"B": "true", "N": "3"},
                "health_check": {"path": "/health", "interval": 5, "timeout": 5, "retries": 10},
                "limits": {"memory": "512m", "cpus": "0.5"}, "deploy_timeout": "120s",
            })
        );
        assert_eq!(
            normalise(&a).unwrap(),
            a,
            "the normal form is a fixed point"
        );
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            (
                json!({"image": "a", "git": {"repository": "r"}}),
                "one source",
            ),
            (json!({"ports": []}), "at least one port"),
            (json!({"ports": [70000]}), "`ports`"),
            (json!({"domains": ["api.example.com"]}), "`domains`"),
            (json!({"env": {"1X": "v"}}), "`env`"),
            (
                json!({"health_check": {"path": "health"}}),
                "health_check.path",
            ),
            (json!({"health_check": {"every": 3}}), "health_check.every"),
            (json!({"limits": {"memory": "lots"}}), "limits.memory"),
            (
                json!({"git": {"repository": "r", "build_pack": "heroku"}}),
                "build_pack",
            ),
            (json!({"deploy_timeout": "soon"}), "deploy_timeout"),
            (
                json!({"git": {"repository": "r", "build_pack": "dockercompose"}, "domains": ["https://a.example"]}),
                "per service",
            ),
        ];
        for (inputs, needle) in cases {
            let err = validate(&attrs(inputs.clone())).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput);
            assert!(err.message.contains(needle), "{inputs}: {}", err.message);
        }
    }

    #[test]
    fn durations() {
        let d = |v: Value| parse_duration("t", &v);
        assert_eq!(d(json!(90)).unwrap(), Duration::from_secs(90));
        assert_eq!(d(json!("500ms")).unwrap(), Duration::from_millis(500));
        assert_eq!(d(json!("10m")).unwrap(), Duration::from_secs(600));
        assert!(d(json!("0s")).is_err());
        assert!(d(json!("1 week")).is_err());
    }
}

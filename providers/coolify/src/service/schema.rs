//! `coolify.service`'s fields, their checks and their normal form: a one-click service by
//! `type`, or a Docker Compose stack given as its YAML text (`compose`), never both; the
//! variables it overrides (`env`) and the URLs of its containers (`domains`).

use std::collections::BTreeMap;
use std::time::Duration;

use fabrik_provider::{
    Attributes, Field, FieldKind, OutputField, ReplaceStrategy, ResourceType, Result, Value,
};
use serde_json::json;

use crate::application::schema::{DEFAULT_ENVIRONMENT, normal_url, parse_env};
use crate::inputs::{
    PLACE_FIELDS, check_strings, duration, invalid, is_masked, parse_duration, required, text,
    trim_strings,
};

pub const SERVICE_TYPE: &str = "coolify.service";

pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(300);

pub fn resource_type() -> ResourceType {
    ResourceType {
        name: SERVICE_TYPE,
        description: "A Coolify service: a one-click service by `type`, or a Docker Compose \
                      stack (`compose`), started and waited for until it runs",
        fields: vec![
            Field::optional(
                "type",
                FieldKind::String,
                "The one-click service's template, such as \"uptime-kuma\" (or `compose`).",
            )
            .force_new(),
            Field::optional(
                "compose",
                FieldKind::String,
                "A Docker Compose file's YAML text (or `type`); fabrik sends it base64-encoded.",
            ),
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
                "The service's name in Coolify (default: the resource's name).",
            ),
            Field::optional(
                "env",
                FieldKind::Map,
                "Environment variables set on the service, overriding its own; values may use secrets.",
            ),
            Field::optional(
                "domains",
                FieldKind::Map,
                "The URLs of its containers, by the compose's service name: { web: [\"https://status.example.com\"] }.",
            ),
            Field::optional(
                "start_timeout",
                FieldKind::String,
                "How long it may take to run before the change fails (default \"5m\").",
            ),
        ],
        outputs: vec![
            OutputField::new("uuid", "The service's uuid in Coolify."),
            OutputField::new(
                "urls",
                "The URL of each of its containers that has one, by container name.",
            ),
            OutputField::new("status", "Its status, such as \"running:healthy\"."),
        ],
        // Its marker names one object: the old one goes before the new one is made.
        replace: ReplaceStrategy::DestroyBeforeCreate,
    }
}

/// One service as the (normalised) inputs describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub source: Source,
    pub project: String,
    pub environment: String,
    pub server: String,
    pub destination: Option<String>,
    pub name: Option<String>,
    /// The variables it sets; `None` when the inputs hold them only by their hash (a value
    /// read from the state).
    pub env: Option<BTreeMap<String, String>>,
    /// The URLs of its containers, by container name.
    pub domains: BTreeMap<String, Vec<String>>,
    pub start_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Type(String),
    Compose(String),
}

/// The compose text as data, to compare it with what Coolify answers (it re-dumps it).
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when it is not YAML or has no `services:` map.
pub fn parse_compose(text: &str) -> Result<Value> {
    let parsed: Value = serde_saphyr::from_str(text).map_err(|e| {
        // The parser's message quotes the text with a caret; the engine's does so already.
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        invalid(format!(
            "`compose` is not YAML: {}",
            first.trim_start_matches("error: ")
        ))
    })?;
    if !parsed.get("services").is_some_and(Value::is_object) {
        return Err(invalid(
            "`compose` must be a Docker Compose file with a `services:` map",
        ));
    }
    Ok(parsed)
}

/// `domains`: a map of container names to a list of URLs (or one URL), in normal form.
fn parse_domains(value: &Value) -> Result<BTreeMap<String, Vec<String>>> {
    let Some(map) = value.as_object() else {
        return Err(invalid(
            "`domains` must be a map of the compose's service names to their URLs, such as \
             { web: [\"https://status.example.com\"] }",
        ));
    };
    let mut out = BTreeMap::new();
    for (name, urls) in map {
        let items = match urls {
            Value::String(_) => std::slice::from_ref(urls),
            Value::Array(items) => items.as_slice(),
            _ => {
                return Err(invalid(format!(
                    "`domains.{name}` must be a list of URLs such as \"https://status.example.com\""
                )));
            }
        };
        let mut list: Vec<String> = Vec::new();
        for item in items {
            let url = item
                .as_str()
                .ok_or_else(|| invalid(format!("`domains.{name}`: {item} is not a URL")))?;
            let url = normal_url(url).map_err(|e| {
                invalid(format!(
                    "`domains.{name}`: {}",
                    e.message.trim_start_matches("`domains`: ")
                ))
            })?;
            if !list.contains(&url) {
                list.push(url);
            }
        }
        out.insert(name.clone(), list);
    }
    Ok(out)
}

fn domains_value(domains: &BTreeMap<String, Vec<String>>) -> Value {
    json!(domains)
}

/// Checks what is known of the inputs, naming the field at fault.
pub fn validate(inputs: &Attributes) -> Result<()> {
    check_strings(inputs, &["type"])?;
    check_strings(inputs, &PLACE_FIELDS)?;
    if inputs.contains_key("type") && inputs.contains_key("compose") {
        return Err(invalid(
            "`type` and `compose` exclude each other: a service is either one-click or a \
             Docker Compose stack",
        ));
    }
    let mut containers = None;
    if let Some(compose) = inputs.get("compose") {
        let text = compose
            .as_str()
            .ok_or_else(|| invalid("`compose` must be the YAML text of a Docker Compose file"))?;
        containers = parse_compose(text)?
            .get("services")
            .and_then(Value::as_object)
            .map(|s| s.keys().cloned().collect::<Vec<_>>());
    }
    if let Some(env) = inputs.get("env").filter(|v| !is_masked(v)) {
        parse_env(env)?;
    }
    if let Some(domains) = inputs.get("domains") {
        let domains = parse_domains(domains)?;
        // A one-click template's containers are known to the server only: it checks them.
        if let Some(containers) = &containers
            && let Some(name) = domains.keys().find(|n| !containers.contains(n))
        {
            return Err(invalid(format!(
                "`domains.{name}`: the compose has no service `{name}` (it has {})",
                containers.join(", ")
            )));
        }
    }
    if let Some(t) = inputs.get("start_timeout") {
        parse_duration("start_timeout", t)?;
    }
    Ok(())
}

/// The inputs in normal form: names trimmed and the default environment filled in.
pub fn normalise(inputs: &Attributes) -> Result<Attributes> {
    validate(inputs)?;
    if !inputs.contains_key("type") && !inputs.contains_key("compose") {
        return Err(invalid(
            "a service needs `type` (a one-click service) or `compose` (a Docker Compose file)",
        ));
    }
    let mut out = inputs.clone();
    trim_strings(&mut out, &["type"]);
    trim_strings(&mut out, &PLACE_FIELDS);
    out.entry("environment".to_string())
        .or_insert_with(|| json!(DEFAULT_ENVIRONMENT));
    if let Some(env) = inputs.get("env").filter(|v| !is_masked(v)) {
        out.insert("env".into(), json!(parse_env(env)?));
    }
    if let Some(domains) = inputs.get("domains") {
        out.insert("domains".into(), domains_value(&parse_domains(domains)?));
    }
    Ok(out)
}

impl Desired {
    pub fn from_inputs(inputs: &Attributes) -> Result<Desired> {
        let inputs = normalise(inputs)?;
        // The compose is sent as written: it is not trimmed as names are.
        let source = match (text(&inputs, "type")?, inputs.get("compose")) {
            (Some(t), _) => Source::Type(t),
            (None, Some(Value::String(c))) => Source::Compose(c.clone()),
            _ => unreachable!("normalise requires one"),
        };
        Ok(Desired {
            source,
            project: required(&inputs, "project")?,
            environment: required(&inputs, "environment")?,
            server: required(&inputs, "server")?,
            destination: text(&inputs, "destination")?,
            name: text(&inputs, "name")?,
            env: match inputs.get("env") {
                None => Some(BTreeMap::new()),
                Some(v) if is_masked(v) => None,
                Some(v) => Some(parse_env(v)?),
            },
            domains: match inputs.get("domains") {
                Some(d) => parse_domains(d)?,
                None => BTreeMap::new(),
            },
            start_timeout: duration(&inputs, "start_timeout", DEFAULT_START_TIMEOUT)?,
        })
    }
}

/// `text` in standard base64, padded and on one line, as Coolify requires of a compose.
pub fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(v: Value) -> Attributes {
        v.as_object().unwrap().clone().into_iter().collect()
    }

    #[test]
    fn base64_is_padded_and_unwrapped() {
        assert_eq!(base64("hi"), "aGk=");
        assert_eq!(base64("h"), "aA==");
        assert_eq!(base64("hey"), "aGV5");
        assert!(!base64(&"x".repeat(200)).contains('\n'));
    }

    #[test]
    fn exactly_one_of_type_and_compose() {
        let base = json!({"project": "p", "server": "s"});
        let mut both = base.clone();
        both["type"] = json!("n8n");
        both["compose"] = json!("services: {a: {image: x}}");
        assert!(validate(&attrs(both)).is_err());
        assert!(normalise(&attrs(base)).is_err());
        let bad = json!({"project": "p", "server": "s", "compose": "services: [unclosed"});
        assert!(validate(&attrs(bad)).is_err());
    }
}

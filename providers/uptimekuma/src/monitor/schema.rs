//! The fields of `uptimekuma.monitor`, which of them each monitor type takes, their normal form
//! (defaults filled in, durations in whole seconds), and how they map to the keys of Uptime
//! Kuma's monitor object (camelCase mostly, with a few snake_case columns it exposes as they
//! are: `accepted_statuscodes`, `basic_auth_user`, `dns_resolve_server`).
//!
//! `notifications` and `tags` have no default: a monitor whose spec leaves them out keeps the
//! links and tags it has (someone added them in the UI); one that gives them gets exactly those.

use fabrik_provider::{
    Attributes, Error, ErrorKind, Field, FieldKind, OutputField, ReplaceStrategy, ResourceType,
    Result, Value,
};
use serde_json::{Map, json};

pub const MONITOR_TYPE: &str = "uptimekuma.monitor";

/// The monitor types fabrik manages, as Uptime Kuma names them.
pub const TYPES: [&str; 7] = [
    "http",
    "keyword",
    "json-query",
    "port",
    "dns",
    "ping",
    "push",
];

/// Whether the engine pauses the monitor while what it watches changes: fabrik's own field,
/// never sent to Uptime Kuma.
pub const PAUSE_DURING_CHANGES: &str = "pause_during_changes";

/// Fields every type takes.
const COMMON: [&str; 11] = [
    "name",
    "type",
    "interval",
    "retry_interval",
    "max_retries",
    "timeout",
    "upside_down",
    "notifications",
    "tags",
    "paused",
    PAUSE_DURING_CHANGES,
];

/// Fields of the HTTP family (http, keyword, json-query).
const HTTP: [&str; 8] = [
    "url",
    "method",
    "headers",
    "body",
    "accepted_status_codes",
    "ignore_tls",
    "expiry_notification",
    "basic_auth",
];

/// The fields a monitor of `kind` takes beyond [`COMMON`], and those of them it needs.
fn type_fields(kind: &str) -> Option<(Vec<&'static str>, &'static [&'static str])> {
    Some(match kind {
        "http" => (HTTP.to_vec(), &["url"]),
        "keyword" => (
            [&HTTP[..], &["keyword", "invert_keyword"]].concat(),
            &["url", "keyword"],
        ),
        "json-query" => (
            [&HTTP[..], &["json_path", "expected_value"]].concat(),
            &["url", "json_path", "expected_value"],
        ),
        "port" => (vec!["hostname", "port"], &["hostname", "port"]),
        "dns" => (
            vec!["hostname", "port", "dns_resolve_server", "dns_resolve_type"],
            &["hostname"],
        ),
        "ping" => (vec!["hostname"], &["hostname"]),
        "push" => (vec![], &[]),
        _ => return None,
    })
}

pub fn resource_type() -> ResourceType {
    use FieldKind::{Boolean, Duration, Integer, List, Map, String};
    let field = Field::optional;
    ResourceType {
        name: MONITOR_TYPE,
        description: "A monitor on an Uptime Kuma server, marked `fabrik:<stack>/<resource>` in its description.",
        fields: vec![
            Field::required(
                "name",
                String,
                "The monitor's name as the UI shows it (names are not unique).",
            ),
            Field::required(
                "type",
                String,
                "http, keyword, json-query, port, dns, ping or push.",
            )
            .one_of(&TYPES),
            field(
                "url",
                String,
                "The URL checked (http, keyword, json-query).",
            ),
            field("method", String, "The HTTP method (default GET).")
                .one_of(&["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]),
            field("headers", Map, "Request headers, name to value."),
            field("body", String, "The request body."),
            field(
                "keyword",
                String,
                "The text the page must contain (keyword).",
            ),
            field(
                "invert_keyword",
                Boolean,
                "Up when the keyword is absent instead (default false).",
            ),
            field(
                "json_path",
                String,
                "The JSON query evaluated on the answer (json-query).",
            ),
            field(
                "expected_value",
                String,
                "The value the query must give (json-query).",
            ),
            field("hostname", String, "The host checked (port, dns, ping)."),
            field(
                "port",
                Integer,
                "The TCP port (port), or the DNS server's port (dns, default 53).",
            ),
            field(
                "dns_resolve_server",
                String,
                "The resolver asked (dns, default 1.1.1.1).",
            ),
            field(
                "dns_resolve_type",
                String,
                "The record type asked for (dns, default A).",
            )
            .one_of(&[
                "A", "AAAA", "CAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT",
            ]),
            field("interval", Duration, "How often it checks (default 60s)."),
            field(
                "retry_interval",
                Duration,
                "How often it checks while failing (default 60s).",
            ),
            field(
                "max_retries",
                Integer,
                "Failed checks before it is down (default 0).",
            ),
            field(
                "timeout",
                Duration,
                "How long one check may take (default 80% of the interval).",
            ),
            field(
                "accepted_status_codes",
                List,
                "Statuses that count as up (default [\"200-299\"]).",
            ),
            field(
                "upside_down",
                Boolean,
                "Up when the check fails (default false).",
            ),
            field(
                "ignore_tls",
                Boolean,
                "Accept any certificate (default false).",
            ),
            field(
                "expiry_notification",
                Boolean,
                "Notify before the certificate expires (default false).",
            ),
            field(
                "basic_auth",
                Map,
                "HTTP basic authentication: `{ username, password }`.",
            ),
            field(
                "notifications",
                List,
                "Ids of the notifications it sends (`${hook.id}`); left out, the links it has are kept.",
            ),
            field(
                "tags",
                Map,
                "Tags, name to value; left out, the tags it has are kept.",
            ),
            field(
                "paused",
                Boolean,
                "Paused: it does not check (default false).",
            ),
            field(
                "pause_during_changes",
                Boolean,
                "Paused while a run changes what it depends on, resumed once their gates pass \
                 (default true); fabrik's own, never sent to Uptime Kuma.",
            ),
        ],
        outputs: vec![
            OutputField::new("id", "The monitor's id in Uptime Kuma."),
            OutputField::new(
                "push_url",
                "A push monitor's URL, to be called by what it watches (it holds the push token).",
            )
            .sensitive(),
        ],
        replace: ReplaceStrategy::DestroyBeforeCreate,
    }
}

pub fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

/// Checks what the engine cannot: the type, the fields it takes, ranges and formats. Fields
/// whose value is not known yet are absent, so the fields a type needs are checked by
/// [`normalise`], once every input is known.
pub fn validate(inputs: &Attributes) -> Result<()> {
    check(inputs, false)
}

fn check(inputs: &Attributes, complete: bool) -> Result<()> {
    let Some(kind) = inputs.get("type").and_then(Value::as_str) else {
        return Ok(());
    };
    let Some((fields, needed)) = type_fields(kind) else {
        return Err(invalid(format!(
            "`type` {kind:?} is not a monitor type fabrik manages; use one of {}",
            TYPES.join(", ")
        )));
    };
    for key in inputs.keys() {
        if !COMMON.contains(&key.as_str()) && !fields.contains(&key.as_str()) {
            return Err(invalid(format!(
                "`{key}` does not apply to a monitor of type {kind}"
            ))
            .with_field(key.clone()));
        }
    }
    for key in needed.iter().filter(|_| complete) {
        if !inputs.contains_key(*key) {
            return Err(invalid(format!("a monitor of type {kind} needs `{key}`")));
        }
    }
    check_values(inputs)
}

fn check_values(inputs: &Attributes) -> Result<()> {
    for key in ["interval", "retry_interval", "timeout"] {
        if let Some(v) = inputs.get(key) {
            seconds(key, v)?;
        }
    }
    for key in ["max_retries", "port"] {
        if let Some(v) = inputs.get(key) {
            let n = v.as_i64().unwrap_or(-1);
            let max = if key == "port" { 65_535 } else { 10_000 };
            if !(0..=max).contains(&n) || (key == "port" && n == 0) {
                return Err(invalid(format!(
                    "`{key}` must be between {} and {max}",
                    i64::from(key == "port")
                )));
            }
        }
    }
    if let Some(url) = inputs.get("url").and_then(Value::as_str)
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(invalid(format!(
            "`url` must start with http:// or https://, not {url:?}"
        )));
    }
    if let Some(codes) = inputs.get("accepted_status_codes") {
        status_codes(codes)?;
    }
    if let Some(list) = inputs.get("notifications") {
        notification_ids(list)?;
    }
    if let Some(Value::Object(tags)) = inputs.get("tags") {
        for (name, value) in tags {
            if name.trim().is_empty()
                || !matches!(value, Value::String(_) | Value::Number(_) | Value::Null)
            {
                return Err(invalid(format!("tag {name:?} must have a text value")));
            }
        }
    }
    if let Some(Value::Object(headers)) = inputs.get("headers")
        && let Some((name, _)) = headers.iter().find(|(_, v)| !v.is_string())
    {
        return Err(invalid(format!("header {name:?} must have a text value")));
    }
    if let Some(auth) = inputs.get("basic_auth") {
        basic_auth(auth)?;
    }
    Ok(())
}

/// A duration field in whole seconds, at least one.
pub fn seconds(key: &str, value: &Value) -> Result<i64> {
    let text = value.as_str().unwrap_or_default();
    let d =
        fabrik_provider::parse_duration(text).map_err(|why| invalid(format!("`{key}` {why}")))?;
    if d.subsec_nanos() != 0 || d.as_secs() < 1 {
        return Err(invalid(format!(
            "`{key}` must be a whole number of seconds, at least 1s, not {text:?}"
        )));
    }
    i64::try_from(d.as_secs()).map_err(|_| invalid(format!("`{key}` is too long")))
}

fn status_codes(value: &Value) -> Result<Vec<Value>> {
    let bad = || {
        invalid("`accepted_status_codes` must be a list of statuses or ranges such as \"200-299\"")
    };
    let Value::Array(items) = value else {
        return Err(bad());
    };
    if items.is_empty() {
        return Err(bad());
    }
    items
        .iter()
        .map(|item| {
            let text = match item {
                Value::String(s) => s.trim().to_string(),
                Value::Number(n) => n.to_string(),
                _ => return Err(bad()),
            };
            let ok = text.split('-').count() <= 2
                && text
                    .split('-')
                    .all(|p| p.len() == 3 && p.bytes().all(|b| b.is_ascii_digit()));
            if ok {
                Ok(Value::String(text))
            } else {
                Err(bad())
            }
        })
        .collect()
}

/// The notification ids of `notifications`, sorted: numbers, or numbers in text (what a
/// reference to a notification's `id` gives inside a string).
pub fn notification_ids(value: &Value) -> Result<Vec<i64>> {
    let bad =
        || invalid("`notifications` must be a list of notification ids (such as `${hook.id}`)");
    let Value::Array(items) = value else {
        return Err(bad());
    };
    let mut ids = items
        .iter()
        .map(|v| crate::api::id_of(v).filter(|id| *id > 0).ok_or_else(bad))
        .collect::<Result<Vec<_>>>()?;
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

fn basic_auth(value: &Value) -> Result<(String, String)> {
    let bad = || invalid("`basic_auth` must be `{ username, password }`, both text");
    let Value::Object(map) = value else {
        return Err(bad());
    };
    if map.keys().any(|k| k != "username" && k != "password") {
        return Err(bad());
    }
    match (map.get("username"), map.get("password")) {
        (Some(Value::String(u)), Some(Value::String(p))) => Ok((u.clone(), p.clone())),
        _ => Err(bad()),
    }
}

/// The inputs in normal form (checked, the fields their type needs included): the defaults of the type's fields filled in, durations as
/// `"<n>s"`, statuses as text, notification ids as sorted numbers, tag values as text.
pub fn normalise(inputs: &Attributes) -> Result<Attributes> {
    check(inputs, inputs.contains_key("type"))?;
    let mut out = inputs.clone();
    let kind = inputs
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("http")
        .to_string();
    let (fields, _) = type_fields(&kind).unwrap_or_default();
    let interval = match inputs.get("interval") {
        Some(v) => seconds("interval", v)?,
        None => 60,
    };
    let mut default = |key: &str, value: Value| {
        if (COMMON.contains(&key) || fields.contains(&key)) && !out.contains_key(key) {
            out.insert(key.to_string(), value);
        }
    };
    default("interval", json!("60s"));
    default("retry_interval", json!("60s"));
    default("max_retries", json!(0));
    default("timeout", json!(format!("{}s", (interval * 4 / 5).max(1))));
    default("upside_down", json!(false));
    default("paused", json!(false));
    default("method", json!("GET"));
    default("accepted_status_codes", json!(["200-299"]));
    default("ignore_tls", json!(false));
    default("expiry_notification", json!(false));
    default("invert_keyword", json!(false));
    if kind == "dns" {
        default("port", json!(53));
        default("dns_resolve_server", json!("1.1.1.1"));
        default("dns_resolve_type", json!("A"));
    }
    for key in ["interval", "retry_interval", "timeout"] {
        if let Some(v) = out.get(key) {
            let s = seconds(key, v)?;
            out.insert(key.into(), json!(format!("{s}s")));
        }
    }
    if let Some(codes) = out.get("accepted_status_codes") {
        let mut codes = status_codes(codes)?;
        codes.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        codes.dedup();
        out.insert("accepted_status_codes".into(), Value::Array(codes));
    }
    if let Some(list) = out.get("notifications") {
        let ids = notification_ids(list)?;
        out.insert("notifications".into(), json!(ids));
    }
    if let Some(Value::Object(tags)) = out.get_mut("tags") {
        for value in tags.values_mut() {
            *value = Value::String(tag_value(value));
        }
    }
    if let Some(Value::String(method)) = out.get_mut("method") {
        *method = method.trim().to_ascii_uppercase();
    }
    if let Some(Value::String(t)) = out.get_mut("dns_resolve_type") {
        *t = t.trim().to_ascii_uppercase();
    }
    Ok(out)
}

fn tag_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The keys of Uptime Kuma's monitor object a spec field maps to (one each but `basic_auth`,
/// `notifications` and `tags`, which [`write`] and the tag calls handle).
const KEYS: [(&str, &str); 21] = [
    ("name", "name"),
    ("type", "type"),
    ("url", "url"),
    ("method", "method"),
    ("body", "body"),
    ("keyword", "keyword"),
    ("invert_keyword", "invertKeyword"),
    ("json_path", "jsonPath"),
    ("expected_value", "expectedValue"),
    ("hostname", "hostname"),
    ("port", "port"),
    ("dns_resolve_server", "dns_resolve_server"),
    ("dns_resolve_type", "dns_resolve_type"),
    ("interval", "interval"),
    ("retry_interval", "retryInterval"),
    ("max_retries", "maxretries"),
    ("timeout", "timeout"),
    ("accepted_status_codes", "accepted_statuscodes"),
    ("upside_down", "upsideDown"),
    ("ignore_tls", "ignoreTls"),
    ("expiry_notification", "expiryNotification"),
];

/// Writes `inputs` (normal form) into a monitor object: every field they give, and the
/// Uptime Kuma default for each field `prior` gave that they no longer do. Keys for fields
/// neither gives are left as they are (fabrik does not manage them).
pub fn write(
    monitor: &mut Map<String, Value>,
    inputs: &Attributes,
    prior: Option<&Attributes>,
) -> Result<()> {
    let given = |key: &str| inputs.contains_key(key) || prior.is_some_and(|p| p.contains_key(key));
    for (field, key) in KEYS {
        if !given(field) {
            continue;
        }
        let value = match inputs.get(field) {
            Some(v) if matches!(field, "interval" | "retry_interval" | "timeout") => {
                json!(seconds(field, v)?)
            }
            Some(v) => v.clone(),
            None => reset_value(key),
        };
        monitor.insert(key.to_string(), value);
    }
    if given("headers") {
        let headers = match inputs.get("headers") {
            Some(Value::Object(h)) if !h.is_empty() => {
                Value::String(Value::Object(h.clone()).to_string())
            }
            _ => Value::Null,
        };
        monitor.insert("headers".into(), headers);
    }
    if given("basic_auth") {
        match inputs.get("basic_auth") {
            Some(auth) => {
                let (user, pass) = basic_auth(auth)?;
                monitor.insert("authMethod".into(), json!("basic"));
                monitor.insert("basic_auth_user".into(), json!(user));
                monitor.insert("basic_auth_pass".into(), json!(pass));
            }
            None => {
                monitor.insert("authMethod".into(), Value::Null);
                monitor.insert("basic_auth_user".into(), Value::Null);
                monitor.insert("basic_auth_pass".into(), Value::Null);
            }
        }
    }
    if let Some(list) = inputs.get("notifications") {
        let links: Map<String, Value> = notification_ids(list)?
            .into_iter()
            .map(|id| (id.to_string(), Value::Bool(true)))
            .collect();
        monitor.insert("notificationIDList".into(), Value::Object(links));
    }
    if inputs.get("type").and_then(Value::as_str) == Some("json-query")
        && !monitor.contains_key("jsonPathOperator")
    {
        monitor.insert("jsonPathOperator".into(), json!("=="));
    }
    Ok(())
}

/// What Uptime Kuma has for a field nobody set.
fn reset_value(key: &str) -> Value {
    match key {
        "method" => json!("GET"),
        "invertKeyword" | "upsideDown" | "ignoreTls" | "expiryNotification" => json!(false),
        "maxretries" => json!(0),
        "accepted_statuscodes" => json!(["200-299"]),
        _ => Value::Null,
    }
}

/// A monitor as the inputs of a spec would describe it, in normal form: the fields its type
/// takes, read from the object (`tags` from its tag rows).
pub fn observed(monitor: &Value) -> Attributes {
    let mut out = Attributes::new();
    let kind = monitor
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let fields = type_fields(&kind).map(|(f, _)| f).unwrap_or_default();
    let takes = |field: &str| COMMON.contains(&field) || fields.contains(&field);
    for (field, key) in KEYS {
        if !takes(field) {
            continue;
        }
        let value = monitor.get(key).cloned().unwrap_or(Value::Null);
        let value = match (field, value) {
            ("interval" | "retry_interval" | "timeout", Value::Number(n)) => {
                json!(format!("{}s", n.as_f64().unwrap_or(0.0).round() as i64))
            }
            ("accepted_status_codes", Value::Array(mut codes)) => {
                codes.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                Value::Array(codes)
            }
            (_, Value::Null) => continue,
            (_, v) => v,
        };
        out.insert(field.to_string(), value);
    }
    if takes("headers")
        && let Some(Value::String(text)) = monitor.get("headers")
        && let Ok(Value::Object(h)) = serde_json::from_str::<Value>(text)
        && !h.is_empty()
    {
        out.insert("headers".into(), Value::Object(h));
    }
    if takes("basic_auth") && monitor.get("authMethod").and_then(Value::as_str) == Some("basic") {
        let text = |k: &str| {
            monitor
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        out.insert(
            "basic_auth".into(),
            json!({"username": text("basic_auth_user"), "password": text("basic_auth_pass")}),
        );
    }
    let mut ids: Vec<i64> = match monitor.get("notificationIDList") {
        Some(Value::Object(links)) => links
            .iter()
            .filter(|(_, on)| on.as_bool() == Some(true) || on.as_i64() == Some(1))
            .filter_map(|(id, _)| id.parse().ok())
            .collect(),
        _ => Vec::new(),
    };
    ids.sort_unstable();
    out.insert("notifications".into(), json!(ids));
    let mut tags = Map::new();
    if let Some(Value::Array(rows)) = monitor.get("tags") {
        for row in rows {
            if let Some(name) = row.get("name").and_then(Value::as_str) {
                tags.insert(
                    name.to_string(),
                    Value::String(tag_value(row.get("value").unwrap_or(&Value::Null))),
                );
            }
        }
    }
    out.insert("tags".into(), Value::Object(tags));
    let active = monitor
        .get("active")
        .is_none_or(|a| a.as_bool() == Some(true) || a.as_i64() == Some(1));
    out.insert("paused".into(), json!(!active));
    out
}

/// A new monitor's object for `add`: every key the server needs (it refuses an `add` without
/// `accepted_statuscodes` or `conditions`, whatever the type), the UI's defaults for the rest.
pub fn new_monitor(
    inputs: &Attributes,
    description: &str,
    push_token: Option<&str>,
) -> Result<Map<String, Value>> {
    let mut monitor = json!({
        "description": description,
        "accepted_statuscodes": ["200-299"],
        "conditions": [],
        "notificationIDList": {},
        "resendInterval": 0,
        "maxredirects": 10,
        "active": inputs.get("paused").and_then(Value::as_bool) != Some(true),
    });
    let Value::Object(mut monitor) = monitor.take() else {
        unreachable!("an object")
    };
    write(&mut monitor, inputs, None)?;
    if let Some(token) = push_token {
        monitor.insert("pushToken".into(), json!(token));
    }
    Ok(monitor)
}

#[cfg(test)]
mod tests;

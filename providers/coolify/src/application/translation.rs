//! The translation both ways between `coolify.application`'s normal form and Coolify's
//! application fields: what a create or an update sends ([`Desired::settings`]) and which
//! inputs an application as Coolify shows it stands for ([`observed_inputs`]).
//!
//! Coolify's fields are not the spec's: writes use `domains`, reads answer `fqdn`; ports are
//! sent as a string; the image is a name and a tag; and no field the server refuses on PATCH
//! is ever sent.

use std::collections::BTreeMap;

use fabrik_provider::{Attributes, Value};
use serde_json::{Map, json};

use super::schema::{
    Desired, Git, HEALTH_INTERVAL, HEALTH_RETRIES, HEALTH_TIMEOUT, HealthCheck, Limits, Source,
    git_value, health_value, limits_value, normal_url,
};

impl Desired {
    /// The settings an application PATCH may carry, for this application: what a create sends
    /// beside its identity, and what an update sends. Never the fields the server rejects on
    /// PATCH (`project_uuid`, `server_uuid`, `environment_name`, `destination_uuid`, `fqdn`).
    pub fn settings(&self, fallback_name: &str) -> Map<String, Value> {
        let mut body = Map::new();
        body.insert(
            "name".into(),
            json!(self.name.as_deref().unwrap_or(fallback_name)),
        );
        match &self.source {
            Source::Image { name, tag } => {
                body.insert("docker_registry_image_name".into(), json!(name));
                body.insert("docker_registry_image_tag".into(), json!(tag));
            }
            Source::Git(git) => {
                body.insert("git_repository".into(), json!(git.repository));
                body.insert("git_branch".into(), json!(git.branch));
                body.insert("build_pack".into(), json!(git.build_pack));
            }
        }
        // A string, not a number: the server's validation says `string`.
        let ports: Vec<String> = self.ports.iter().map(u64::to_string).collect();
        body.insert("ports_exposes".into(), json!(ports.join(",")));
        // Written as `domains`; reads answer `fqdn` (coollabsio/coolify#9502). An empty value
        // changes nothing on update (#11116), so none is sent; a compose application takes
        // its domains per service and refuses `domains` with a 422.
        if !self.domains.is_empty() && !self.is_compose() {
            body.insert("domains".into(), json!(self.domains.join(",")));
        }
        match &self.health_check {
            Some(hc) => {
                body.insert("health_check_enabled".into(), json!(true));
                body.insert("health_check_path".into(), json!(hc.path));
                body.insert(
                    "health_check_port".into(),
                    hc.port.map_or(Value::Null, |p| json!(p.to_string())),
                );
                body.insert("health_check_interval".into(), json!(hc.interval));
                body.insert("health_check_timeout".into(), json!(hc.timeout));
                body.insert("health_check_retries".into(), json!(hc.retries));
            }
            None => {
                body.insert("health_check_enabled".into(), json!(false));
            }
        }
        // "0" is Coolify's "no limit".
        body.insert(
            "limits_memory".into(),
            json!(self.limits.memory.as_deref().unwrap_or("0")),
        );
        body.insert(
            "limits_cpus".into(),
            json!(self.limits.cpus.as_deref().unwrap_or("0")),
        );
        body
    }
}

/// The inputs an application as Coolify shows it corresponds to, for the fields that a read
/// can tell (`project`, `environment`, `server`, `destination` and `deploy_timeout` are taken
/// from `inputs`: the application names them by internal ids only, and they force a new
/// application anyway).
pub fn observed_inputs(
    app: &Value,
    env: Option<BTreeMap<String, String>>,
    inputs: &Attributes,
) -> Attributes {
    let text = |k: &str| app.get(k).and_then(Value::as_str).unwrap_or("").trim();
    let mut out = Attributes::new();
    for field in [
        "project",
        "environment",
        "server",
        "destination",
        "deploy_timeout",
    ] {
        if let Some(v) = inputs.get(field) {
            out.insert(field.into(), v.clone());
        }
    }
    if inputs.contains_key("name") {
        out.insert("name".into(), json!(text("name")));
    }
    if text("build_pack") == "dockerimage" || !text("docker_registry_image_name").is_empty() {
        let tag = match text("docker_registry_image_tag") {
            "" => "latest",
            t => t,
        };
        out.insert(
            "image".into(),
            json!(format!("{}:{tag}", text("docker_registry_image_name"))),
        );
    } else {
        out.insert(
            "git".into(),
            git_value(&Git {
                repository: text("git_repository").to_string(),
                branch: text("git_branch").to_string(),
                build_pack: text("build_pack").to_string(),
            }),
        );
    }
    let ports: Vec<u64> = text("ports_exposes")
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect();
    out.insert("ports".into(), json!(ports));
    let domains: Vec<String> = text("fqdn")
        .split(',')
        .filter(|d| !d.trim().is_empty())
        .map(|d| normal_url(d.trim()).unwrap_or_else(|_| d.trim().to_string()))
        .collect();
    out.insert("domains".into(), json!(domains));
    if let Some(env) = env {
        out.insert("env".into(), json!(env));
    }
    if app.get("health_check_enabled").and_then(Value::as_bool) == Some(true) {
        let number = |k: &str, default: u64| {
            app.get(k)
                .and_then(|v| {
                    v.as_u64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                })
                .unwrap_or(default)
        };
        let port = app.get("health_check_port").and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        });
        let path = match text("health_check_path") {
            "" => "/",
            p => p,
        };
        out.insert(
            "health_check".into(),
            health_value(&HealthCheck {
                path: path.to_string(),
                port,
                interval: number("health_check_interval", HEALTH_INTERVAL),
                timeout: number("health_check_timeout", HEALTH_TIMEOUT),
                retries: number("health_check_retries", HEALTH_RETRIES),
            }),
        );
    }
    let limit = |k: &str| Some(text(k).to_string()).filter(|v| !v.is_empty() && v != "0");
    let limits = Limits {
        memory: limit("limits_memory"),
        cpus: limit("limits_cpus"),
    };
    if limits != Limits::default() || inputs.contains_key("limits") {
        out.insert("limits".into(), limits_value(&limits));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::schema::normalise;

    fn attrs(v: Value) -> Attributes {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn settings_never_carry_fields_a_patch_rejects() {
        let d = Desired::from_inputs(
            &normalise(&attrs(json!({
                "project": "p", "server": "s", "image": "nginx:1", "ports": [80, 443],
                "domains": ["https://a.example", "https://b.example"],
            })))
            .unwrap(),
        )
        .unwrap();
        let body = d.settings("web");
        for rejected in [
            "project_uuid",
            "server_uuid",
            "environment_name",
            "destination_uuid",
            "fqdn",
        ] {
            assert!(!body.contains_key(rejected), "{rejected}");
        }
        assert_eq!(body["ports_exposes"], "80,443");
        assert_eq!(body["domains"], "https://a.example,https://b.example");
        assert_eq!(body["name"], "web");
    }

    #[test]
    fn an_application_read_back_is_its_normal_form() {
        let inputs = normalise(&attrs(json!({
            "project": "p", "server": "s", "image": "nginx:1", "ports": [80],
            "domains": ["https://A.example"], "health_check": {"path": "/h", "port": 80},
        })))
        .unwrap();
        let app = json!({
            "uuid": "u", "name": "web", "build_pack": "dockerimage",
            "docker_registry_image_name": "nginx", "docker_registry_image_tag": "1",
            "ports_exposes": "80", "fqdn": "https://a.example",
            "health_check_enabled": true, "health_check_path": "/h", "health_check_port": "80",
            "health_check_interval": 5, "health_check_timeout": 5, "health_check_retries": 10,
            "limits_memory": "0", "limits_cpus": "0",
        });
        let seen = observed_inputs(&app, Some(BTreeMap::new()), &inputs);
        assert_eq!(seen, inputs);
    }
}

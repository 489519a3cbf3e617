//! Deploying an application and waiting for the deployment to end.
//!
//! `POST /deploy?uuid=…&force=true` queues a deployment (`force`, so a configuration or
//! environment change is not deduplicated as "the same commit"). When one is already queued
//! the answer's `deployment_uuid` was generated and never stored: the application's latest
//! deployment is the one to wait for. `GET /deployments/{uuid}` has answered 404 for a live
//! deployment (coollabsio/coolify#8925), so a 404 is asked again, then the latest deployment is
//! asked for, before anything fails.
//!
//! The wait between two polls goes through the run's cancel signal: an interrupted run stops
//! waiting at once, and the deployment goes on without it.

use std::time::{Duration, Instant};

use fabrik_provider::wait::Wait;
use fabrik_provider::{Error, ErrorKind, Result};
use serde_json::Value;

use crate::api::{Api, encode_segment};

/// Lines of a failed deployment's log quoted in the error.
const LOG_TAIL: usize = 20;
/// 404s for a deployment before the application's latest is asked for instead.
const MISSES: u32 = 3;

/// A deployment as fabrik follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub uuid: String,
    pub status: String,
}

impl Deployment {
    fn from_json(v: &Value) -> Option<Deployment> {
        Some(Deployment {
            uuid: v
                .get("deployment_uuid")
                .and_then(Value::as_str)?
                .to_string(),
            status: v
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        })
    }

    /// Ended, one way or the other.
    pub fn done(&self) -> bool {
        self.status == "finished" || self.failed()
    }

    /// Ended without the new release running.
    pub fn failed(&self) -> bool {
        self.status == "failed" || self.status.starts_with("cancelled")
    }
}

/// The application's most recent deployment, if it ever had one.
pub fn latest(api: &Api, app: &str) -> Result<Option<Deployment>> {
    let reply = api.get(
        &format!("/deployments/applications/{}", encode_segment(app)),
        &[("take", "1")],
    )?;
    let body: Value = reply.json("the deployments of an application")?;
    // `{count, deployments[]}`, though the contract says a bare array (coollabsio/coolify#5874).
    let list = match &body {
        Value::Array(items) => items.as_slice(),
        other => other
            .get("deployments")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice),
    };
    Ok(list.first().and_then(Deployment::from_json))
}

/// Queues a deployment of `app` and waits until it is finished.
///
/// # Errors
/// [`ErrorKind::Fatal`] when it fails, is cancelled or outlasts `timeout`, with the end of its
/// log; the kinds of [`Api`] for the requests.
pub fn deploy_and_wait(
    api: &Api,
    app: &str,
    timeout: Duration,
    poll: Duration,
) -> Result<Deployment> {
    let reply = api.post("/deploy", &[("uuid", app), ("force", "true")], None)?;
    let body: Value = reply.json("a deploy")?;
    let queued = body
        .get("deployments")
        .and_then(Value::as_array)
        .and_then(|d| {
            d.iter()
                .find(|e| e.get("resource_uuid").and_then(Value::as_str) == Some(app))
                .or_else(|| d.first())
        })
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Fatal,
                format!(
                    "Coolify answered the deploy of {app} without a deployment: {}",
                    crate::api::excerpt(&reply.body)
                ),
            )
        })?;
    let message = queued.get("message").and_then(Value::as_str).unwrap_or("");
    let returned = queued.get("deployment_uuid").and_then(Value::as_str);
    let uuid = match returned {
        Some(uuid) if !message.to_ascii_lowercase().contains("already queued") => uuid.to_string(),
        // The returned uuid is not a real deployment: follow the one that is queued.
        _ => latest(api, app)?.map(|d| d.uuid).ok_or_else(|| {
            Error::new(
                ErrorKind::Fatal,
                format!("Coolify said {message:?} for {app} but lists no deployment of it"),
            )
        })?,
    };
    wait(api, app, &uuid, timeout, poll)
}

/// Polls deployment `uuid` of `app` until it ends.
///
/// # Errors
/// [`ErrorKind::Fatal`] as [`deploy_and_wait`]; [`Error::interrupted`] when the run is
/// interrupted before it ends (the deployment goes on in Coolify).
pub fn wait(
    api: &Api,
    app: &str,
    uuid: &str,
    timeout: Duration,
    poll: Duration,
) -> Result<Deployment> {
    let deadline = Instant::now() + timeout;
    let mut uuid = uuid.to_string();
    let mut misses = 0;
    let mut last = Deployment {
        uuid: uuid.clone(),
        status: "queued".into(),
    };
    let mut log = String::new();
    let shown = Wait::start(
        format!("deployment {uuid} of application {app}"),
        Some(timeout),
    );
    loop {
        match api.get(&format!("/deployments/{}", encode_segment(&uuid)), &[]) {
            Ok(reply) => {
                let body: Value = reply.json("a deployment")?;
                misses = 0;
                log = body
                    .get("logs")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if let Some(d) = Deployment::from_json(&body) {
                    last = d;
                }
                shown.saw(last.status.clone());
                if last.status == "finished" {
                    return Ok(last);
                }
                if last.failed() {
                    return Err(Error::new(
                        ErrorKind::Fatal,
                        format!(
                            "deployment {uuid} of application {app} ended {}{}",
                            last.status,
                            tail(&log)
                        ),
                    ));
                }
            }
            Err(e) if e.kind == ErrorKind::NotFound => {
                misses += 1;
                if misses >= MISSES
                    && let Some(d) = latest(api, app)?
                    && d.uuid != uuid
                {
                    uuid = d.uuid;
                    misses = 0;
                }
            }
            // The API is busy or briefly away: the deployment goes on without us.
            Err(e) if e.kind == ErrorKind::Transient => {}
            Err(e) => return Err(e),
        }
        if Instant::now() >= deadline {
            return Err(Error::new(
                ErrorKind::Fatal,
                format!(
                    "deployment {uuid} of application {app} is still {} after {} s \
                     (`deploy_timeout`){}",
                    last.status,
                    timeout.as_secs(),
                    tail(&log)
                ),
            ));
        }
        let pause = poll.min(deadline.saturating_duration_since(Instant::now()));
        if api.cancel().sleep(pause).is_err() {
            return Err(Error::interrupted(format!(
                "deployment {uuid} of application {app} was not waited for: the run was \
                 interrupted while it was {}",
                last.status
            )));
        }
    }
}

/// The last lines of a deployment log, as `; its log ends: …`. Coolify keeps the log as a
/// JSON array of `{output, hidden, …}` entries inside a string; hidden entries are the
/// commands it ran, not their output.
fn tail(log: &str) -> String {
    let lines: Vec<String> = match serde_json::from_str::<Vec<Value>>(log) {
        Ok(entries) => entries
            .iter()
            .filter(|e| e.get("hidden").and_then(Value::as_bool) != Some(true))
            .filter_map(|e| e.get("output").and_then(Value::as_str))
            .flat_map(str::lines)
            .map(str::to_string)
            .collect(),
        Err(_) => log.lines().map(str::to_string).collect(),
    };
    let lines: Vec<&String> = lines.iter().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(LOG_TAIL);
    let shown: Vec<&str> = lines[start..].iter().map(|l| l.as_str()).collect();
    format!("; its log ends:\n  {}", shown.join("\n  "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_tail_skips_hidden_entries_and_keeps_the_last_lines() {
        let mut entries = vec![serde_json::json!({"output": "docker pull", "hidden": true})];
        for i in 0..30 {
            entries.push(serde_json::json!({"output": format!("line {i}"), "hidden": false}));
        }
        let log = serde_json::to_string(&entries).unwrap();
        let t = tail(&log);
        assert!(t.starts_with("; its log ends:\n  line 10\n"), "{t}");
        assert!(t.ends_with("line 29"), "{t}");
        assert!(!t.contains("docker pull"));
        assert_eq!(tail("plain\ntext"), "; its log ends:\n  plain\n  text");
        assert_eq!(tail(""), "");
    }
}

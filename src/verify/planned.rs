//! A gate as a plan shows it, before anything ran: named as the apply's progress will name it
//! ([`Gate::describe`]), with what it waits for and how long. The plan has only the entry as
//! written with what is known put in, so a reference known after apply stays `${…}` in it.

use std::path::Path;
use std::time::Duration;

use super::{Check, Gate, entry};
use crate::spec::Expr;

/// One line for the gate `entry` (as written), `written` being that entry with what is known
/// put in, `None` when a secret is in it: "http https://x/health expects 200, timeout 30s".
pub fn planned(entry: &Expr, written: Option<&serde_json::Value>) -> String {
    let kind = entry::read_expr(entry)
        .0
        .kind
        .map_or("gate", entry::Kind::name);
    let Some(written) = written else {
        return format!("{kind} (sensitive)");
    };
    match Gate::from_value(written, Path::new(".")) {
        Ok(gate) => gate.expectation(),
        // A target whose parts are not known yet (`tcp: ${db.address}`): as written.
        Err(_) => match written.get(kind) {
            Some(serde_json::Value::String(target)) => format!("{kind} {target}"),
            Some(other) => format!("{kind} {other}"),
            None => kind.to_string(),
        },
    }
}

impl Gate {
    /// What a `command` gate needs from the spec and does not find before any attempt (its
    /// program, its `dir`): the message its run would fail with at once, so that the engine
    /// can point at the entry that names it. `None` for every other kind.
    pub fn missing(&self) -> Option<String> {
        match &self.check {
            Check::Command(c) => c.prepare().err(),
            _ => None,
        }
    }

    fn expectation(&self) -> String {
        let mut line = self.describe();
        match &self.check {
            Check::Http(c) => {
                line.push_str(&format!(" expects {}", c.status));
                if let Some(body) = &c.body_contains {
                    line.push_str(&format!(" with {body:?}"));
                }
            }
            Check::Dns(c) => {
                if let Some(expect) = &c.expect {
                    line.push_str(&format!(" expects {}", expect.join(", ")));
                }
            }
            Check::Tls(_) | Check::Tcp(_) | Check::Command(_) => {}
        }
        format!("{line}, timeout {}", short(self.timeout))
    }
}

/// `30s`, `2m`, `1m30s`, `500ms`: how durations are written in a spec.
fn short(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs, d.subsec_millis()) {
        (0, ms) => format!("{ms}ms"),
        (s, 0) if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        (s, 0) if s > 60 => format!("{}m{}s", s / 60, s % 60),
        (s, 0) => format!("{s}s"),
        _ => format!("{:.1}s", d.as_secs_f64()),
    }
}

#[cfg(test)]
mod tests {
    use super::short;
    use std::time::Duration;

    #[test]
    fn durations_read_as_a_spec_writes_them() {
        assert_eq!(short(Duration::from_secs(30)), "30s");
        assert_eq!(short(Duration::from_secs(120)), "2m");
        assert_eq!(short(Duration::from_secs(90)), "1m30s");
        assert_eq!(short(Duration::from_millis(500)), "500ms");
        assert_eq!(short(Duration::from_millis(1500)), "1.5s");
    }
}

//! `local.process`: a supervised local service. Started detached in its own process group, so
//! it outlives fabrik and a Ctrl-C in fabrik's terminal does not reach it.
//!
//! Identity is the pid together with the process's start time (`/proc/<pid>/stat`), so a pid
//! the kernel recycled for another process is never mistaken for ours and never signalled.
//! Ownership is two variables in the process's environment, readable in `/proc/<pid>/environ`
//! after a crash: `FABRIK_OWNER=fabrik:<stack>/<resource>` and `FABRIK_STATE_DIR=<dir>` (the
//! latter keeps two checkouts of one stack apart). The fields are in `schema.rs`.

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fabrik_provider::{
    Applied, Attributes, Error, ErrorKind, Found, Observed, Result, Target, Value,
};
use rustix::process::{Pid, Signal};

mod schema;

use schema::invalid;
pub use schema::{PROCESS_TYPE, resource_type, validate};

const OWNER_VAR: &str = "FABRIK_OWNER";
const STATE_VAR: &str = "FABRIK_STATE_DIR";
/// Which variables of its environment came from the spec's `env` (the rest it inherited), so
/// a read can tell what the process was given.
const ENV_KEYS_VAR: &str = "FABRIK_ENV_KEYS";
/// How long a new process must stay up before its start counts as a success.
const SETTLE: Duration = Duration::from_millis(150);
const DEFAULT_STOP_TIMEOUT: u64 = 10;

pub struct Processes {
    base_dir: PathBuf,
    state_dir: PathBuf,
}

/// A process as identified by fabrik: `<pid>:<start time in clock ticks since boot>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    pid: i32,
    start: u64,
}

impl Identity {
    fn parse(id: &str) -> Option<Identity> {
        let (pid, start) = id.split_once(':')?;
        Some(Identity {
            pid: pid.parse().ok()?,
            start: start.parse().ok()?,
        })
    }

    fn id(self) -> String {
        format!("{}:{}", self.pid, self.start)
    }

    /// Whether this exact process is running (not exited, not a zombie).
    fn alive(self) -> bool {
        matches!(stat(self.pid), Some((start, state)) if start == self.start && state != 'Z' && state != 'X')
    }
}

/// Start time and state of a pid, from `/proc/<pid>/stat`.
fn stat(pid: i32) -> Option<(u64, char)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 overall is the start time; `rest` begins at field 3.
    let start = fields.get(22 - 3)?.parse().ok()?;
    Some((start, state))
}

fn environ(pid: i32) -> Vec<String> {
    let mut bytes = Vec::new();
    match fs::File::open(format!("/proc/{pid}/environ")) {
        Ok(mut f) => {
            let _ = f.read_to_end(&mut bytes);
        }
        Err(_) => return Vec::new(),
    }
    bytes
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

impl Processes {
    pub fn new(base_dir: PathBuf, state_dir: PathBuf) -> Self {
        Processes {
            base_dir,
            state_dir,
        }
    }

    fn owner_vars(&self, target: Target<'_>) -> [(String, String); 2] {
        [
            (OWNER_VAR.to_string(), target.marker()),
            (STATE_VAR.to_string(), self.state_dir.display().to_string()),
        ]
    }

    fn owns(&self, target: Target<'_>, pid: i32) -> bool {
        let wanted: Vec<String> = self
            .owner_vars(target)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let env = environ(pid);
        wanted.iter().all(|w| env.contains(w))
    }

    fn log_path(&self, target: Target<'_>) -> PathBuf {
        self.state_dir
            .join("logs")
            .join(format!("{}.{}.log", target.stack, target.name))
    }

    fn outputs(&self, target: Target<'_>, who: Identity) -> Attributes {
        let mut out = Attributes::new();
        out.insert("pid".into(), Value::from(who.pid));
        out.insert(
            "log".into(),
            Value::String(self.log_path(target).display().to_string()),
        );
        out
    }

    pub fn read(
        &self,
        target: Target<'_>,
        id: &str,
        inputs: &Attributes,
    ) -> Result<Option<Observed>> {
        let Some(who) = Identity::parse(id) else {
            return Ok(None);
        };
        if !who.alive() || !self.owns(target, who.pid) {
            return Ok(None);
        }
        Ok(Some(Observed {
            inputs: observe(who.pid, inputs),
            outputs: self.outputs(target, who),
        }))
    }

    /// The running process that carries this resource's marker.
    pub fn find(&self, target: Target<'_>, inputs: &Attributes) -> Result<Option<Found>> {
        let entries = fs::read_dir("/proc").map_err(|e| Error::io("listing /proc", e))?;
        let mut candidates: Vec<i32> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        candidates.sort_unstable();
        for pid in candidates {
            if !self.owns(target, pid) {
                continue;
            }
            let Some((start, state)) = stat(pid) else {
                continue;
            };
            if state == 'Z' || state == 'X' {
                continue;
            }
            let who = Identity { pid, start };
            // A child the service forked inherits the marker; the group leader is the service.
            if rustix::process::getpgid(Pid::from_raw(pid))
                .ok()
                .map(|g| g.as_raw_nonzero().get())
                != Some(pid)
            {
                continue;
            }
            return Ok(Some(Found {
                id: who.id(),
                observed: Observed {
                    inputs: inputs.clone(),
                    outputs: self.outputs(target, who),
                },
            }));
        }
        Ok(None)
    }

    pub fn start(&self, target: Target<'_>, inputs: &Attributes) -> Result<Applied> {
        // Idempotent: a process already running under this marker is the one a create made
        // (before a crash, or before its state was lost); it is taken over, not started twice.
        if let Some(found) = self.find(target, inputs)? {
            return Ok(Applied {
                id: found.id,
                outputs: found.observed.outputs,
                found: true,
            });
        }
        let command = match inputs.get("command") {
            Some(Value::String(c)) => c.clone(),
            _ => return Err(invalid("`command` must be a string")),
        };
        let args: Vec<String> = match inputs.get("args") {
            Some(Value::Array(items)) => items.iter().map(plain).collect(),
            _ => Vec::new(),
        };
        let dir = match inputs.get("dir") {
            Some(Value::String(d)) => self.base_dir.join(d),
            _ => self.base_dir.clone(),
        };
        let log_path = self.log_path(target);
        if let Some(parent) = log_path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| Error::io(format!("creating {}", parent.display()), e))?;
        }
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io(format!("opening {}", log_path.display()), e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| Error::io(format!("opening {}", log_path.display()), e))?;
        let mut cmd = Command::new(&command);
        cmd.args(&args)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            // Its own process group: signals to fabrik's terminal group do not reach it, and
            // stopping it stops what it forked.
            .process_group(0);
        if let Some(Value::Object(env)) = inputs.get("env") {
            for (k, v) in env {
                cmd.env(k, plain(v));
            }
            let keys: Vec<&str> = env.keys().map(String::as_str).collect();
            cmd.env(ENV_KEYS_VAR, keys.join(","));
        }
        cmd.envs(self.owner_vars(target));
        let mut child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound && dir.is_dir() {
                return Error::new(ErrorKind::InvalidInput, not_found(&command, &dir))
                    .with_field("command");
            }
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::InvalidInput
            } else {
                ErrorKind::Fatal
            };
            Error::new(
                kind,
                format!("cannot start `{command}` in {}: {e}", dir.display()),
            )
        })?;
        let pid = child.id() as i32;
        let start = stat(pid).map(|(s, _)| s).ok_or_else(|| {
            Error::new(
                ErrorKind::Fatal,
                format!("`{command}` (pid {pid}) vanished as it started"),
            )
        })?;
        std::thread::sleep(SETTLE);
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Error::new(
                ErrorKind::Fatal,
                format!(
                    "`{command}` exited at once ({status}); last lines of {}:\n{}",
                    log_path.display(),
                    tail(&log_path)
                ),
            ));
        }
        let who = Identity { pid, start };
        Ok(Applied {
            id: who.id(),
            outputs: self.outputs(target, who),
            found: false,
        })
    }

    /// Restart with the new configuration.
    pub fn restart(
        &self,
        target: Target<'_>,
        id: &str,
        prior: &Attributes,
        inputs: &Attributes,
    ) -> Result<Applied> {
        self.stop(target, id, prior)?;
        self.start(target, inputs)
    }

    /// SIGTERM to the process group, then SIGKILL after the grace period. Only a process with
    /// this identity and this marker is signalled.
    pub fn stop(&self, target: Target<'_>, id: &str, inputs: &Attributes) -> Result<()> {
        let Some(who) = Identity::parse(id) else {
            return Ok(());
        };
        if !who.alive() || !self.owns(target, who.pid) {
            return Ok(());
        }
        let grace = Duration::from_secs(
            inputs
                .get("stop_timeout")
                .and_then(Value::as_u64)
                .unwrap_or(DEFAULT_STOP_TIMEOUT),
        );
        let group = Pid::from_raw(who.pid).expect("pids of live processes are positive");
        let _ = rustix::process::kill_process_group(group, Signal::TERM);
        let deadline = Instant::now() + grace;
        while who.alive() {
            if Instant::now() >= deadline {
                let _ = rustix::process::kill_process_group(group, Signal::KILL);
                let hard = Instant::now() + Duration::from_secs(5);
                while who.alive() && Instant::now() < hard {
                    std::thread::sleep(Duration::from_millis(20));
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if who.alive() {
            return Err(Error::new(
                ErrorKind::Transient,
                format!("process {} did not stop after SIGKILL", who.pid),
            ));
        }
        Ok(())
    }
}

/// What a running process was given, read back from `/proc`: its arguments and the variables
/// its `env` set. Fields that cannot be read back (`dir`, `stop_timeout`) are as recorded.
fn observe(pid: i32, recorded: &Attributes) -> Attributes {
    let mut seen = recorded.clone();
    let argv: Vec<String> = fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| {
            bytes
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default();
    // A program found through a wrapper (a version manager's shim re-executing the real
    // binary) runs as its full path: the same program by name is the recorded command.
    if let Some(command) = argv.first() {
        let name = |c: &str| Path::new(c).file_name().map(std::ffi::OsStr::to_os_string);
        let same = match recorded.get("command") {
            Some(Value::String(wanted)) => wanted == command || name(wanted) == name(command),
            _ => false,
        };
        if !same {
            seen.insert("command".into(), Value::String(command.clone()));
        }
    }
    if recorded.contains_key("args") && !argv.is_empty() {
        seen.insert(
            "args".into(),
            Value::Array(argv[1..].iter().cloned().map(Value::String).collect()),
        );
    }
    if recorded.contains_key("env") {
        let vars: Vec<(String, String)> = environ(pid)
            .into_iter()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        let keys: Vec<String> = vars
            .iter()
            .find(|(k, _)| k == ENV_KEYS_VAR)
            .map(|(_, v)| {
                v.split(',')
                    .filter(|k| !k.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let env: Attributes = keys
            .iter()
            .filter_map(|key| {
                let (_, value) = vars.iter().find(|(k, _)| k == key)?;
                Some((key.clone(), Value::String(value.clone())))
            })
            .collect();
        seen.insert("env".into(), Value::Object(env));
    }
    seen
}

/// A value as a process sees it in an argument or variable.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The last lines of a log, for an error message.
fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// Why a program could not be started when it was not found: a mistyped name says so, and a
/// command line written whole into `command` is pointed at `args`.
fn not_found(command: &str, dir: &Path) -> String {
    let mut message = if command.contains('/') {
        format!(
            "program `{command}` not found (looked for {})",
            dir.join(command).display()
        )
    } else {
        format!("program `{command}` not found on PATH")
    };
    if command.contains(' ') {
        message.push_str("; `command` names the program alone, its arguments go in `args`");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str) -> Target<'_> {
        Target {
            stack: "proc-test",
            name,
            type_name: PROCESS_TYPE,
        }
    }

    fn sleeper() -> Attributes {
        let mut inputs = Attributes::new();
        inputs.insert("command".into(), Value::from("sleep"));
        inputs.insert("args".into(), Value::from(vec!["30"]));
        inputs.insert("stop_timeout".into(), Value::from(2));
        inputs
    }

    #[test]
    fn start_find_read_stop() {
        let dir = tempfile::tempdir().unwrap();
        let procs = Processes::new(dir.path().into(), dir.path().join("state"));
        let t = target("sleeper");
        let applied = procs.start(t, &sleeper()).unwrap();
        let who = Identity::parse(&applied.id).unwrap();
        assert!(who.alive());
        assert!(procs.read(t, &applied.id, &sleeper()).unwrap().is_some());
        assert!(!applied.found, "a new process is made, not found");
        let found = procs
            .find(t, &sleeper())
            .unwrap()
            .expect("found by its marker");
        assert_eq!(found.id, applied.id);
        // A second create finds the first instead of starting another, and says so.
        let again = procs.start(t, &sleeper()).unwrap();
        assert_eq!(again.id, applied.id);
        assert!(again.found);
        // Another resource's marker does not match.
        assert!(procs.find(target("other"), &sleeper()).unwrap().is_none());
        procs.stop(t, &applied.id, &sleeper()).unwrap();
        assert!(procs.read(t, &applied.id, &sleeper()).unwrap().is_none());
        procs.stop(t, &applied.id, &sleeper()).unwrap();
    }

    #[test]
    fn a_recycled_pid_is_never_signalled() {
        let dir = tempfile::tempdir().unwrap();
        let procs = Processes::new(dir.path().into(), dir.path().join("state"));
        let t = target("recycled");
        let applied = procs.start(t, &sleeper()).unwrap();
        let who = Identity::parse(&applied.id).unwrap();
        // The same pid with another start time is another process as far as fabrik knows.
        let stranger = Identity {
            pid: who.pid,
            start: who.start + 1,
        };
        assert!(procs.read(t, &stranger.id(), &sleeper()).unwrap().is_none());
        procs.stop(t, &stranger.id(), &sleeper()).unwrap();
        assert!(who.alive(), "the real process was left alone");
        procs.stop(t, &applied.id, &sleeper()).unwrap();
        assert!(!who.alive());
    }

    #[test]
    fn a_process_that_exits_at_once_fails_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let procs = Processes::new(dir.path().into(), dir.path().join("state"));
        let mut inputs = Attributes::new();
        inputs.insert("command".into(), Value::from("sh"));
        inputs.insert(
            "args".into(),
            Value::from(vec!["-c", "echo broken config >&2; exit 3"]),
        );
        let err = procs.start(target("crashy"), &inputs).unwrap_err();
        assert!(err.message.contains("exited at once"), "{}", err.message);
        assert!(err.message.contains("broken config"), "{}", err.message);
    }

    #[test]
    fn a_missing_program_is_invalid_input() {
        let dir = tempfile::tempdir().unwrap();
        let procs = Processes::new(dir.path().into(), dir.path().join("state"));
        let mut inputs = Attributes::new();
        inputs.insert("command".into(), Value::from("no-such-program-fabrik"));
        let err = procs.start(target("missing"), &inputs).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
    }
}

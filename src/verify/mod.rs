//! Verification gates: the checks fabrik runs after applying, so that "applied" means "works".
//! A gate retries until it passes or its timeout expires, and a failure says exactly why (the
//! status seen and a body excerpt, the certificate problem, the DNS answer seen, the connection
//! error), because that message is what a user reads when their deploy is rolled back.
//!
//! The spec form, one map per gate whose one "kind" key carries the target:
//!
//! ```yaml
//! verify:
//!   - http: "https://api.shop.example/health"
//!     status: 200                 # default 200
//!     body_contains: "ok"
//!     headers: { content-type: "application/json" }
//!     ca_file: certs/ca.pem       # trust this CA instead of the system roots
//!   - tls: api.shop.example       # host or host:port (default port 443), or `port:`
//!     min_valid_days: 14          # default 0
//!   - dns: api.shop.example
//!     type: A                     # A, AAAA, CNAME, TXT, MX, NS, PTR, SRV, CAA, SOA
//!     expect: ["203.0.113.10"]    # the answer set, order-insensitive
//!     nameserver: "127.0.0.1:53"  # required; asked directly
//!   - tcp: "127.0.0.1:8080"
//!   - command: ["./smoke-test.sh", "--url", "${api.fqdn}"]   # no shell; passes on exit 0
//!     env: { MODE: smoke }        # added to fabrik's environment
//!     dir: checks                 # relative to the spec's directory (default: that directory)
//! # every kind: timeout (default 30s), interval between attempts (default 1s)
//! ```
//!
//! Matching rules: an `http` header matches ignoring ASCII case, and `application/json` matches
//! `application/json; charset=utf-8`; redirects are followed unless the expected status is 3xx.
//! A `dns` gate without `expect` passes on any non-empty answer; names compare case-insensitively
//! without the trailing dot, TXT records as their joined text without quotes, MX as
//! "PREFERENCE NAME".
//!
//! A `command` gate's program runs in its own process group, killed with it when the gate's
//! time runs out or the run is cancelled; its failure shows how it ended and the end of its
//! output, secrets masked.
//!
//! Every other attempt runs on its own thread with connect and read timeouts bounded by the time the
//! gate has left, so neither a hung server nor a slow resolver keeps a gate past its timeout, and
//! cancellation is seen within 20 ms even mid-attempt.

mod command;
mod dns;
mod entry;
mod http;
mod node;
mod parse;
mod planned;
mod tcp;
mod tls;
pub(crate) mod trust;

#[cfg(test)]
mod command_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fabrik_provider::wait::Wait;

use crate::source::Diagnostic;
use crate::spec::Expr;

use entry::Kind;

pub use planned::planned;

/// The options a gate of kind `kind` (`http`, `tls`, …) takes besides its kind key, for the
/// spec's JSON Schema (`crate::schema`); `None` for a name that is no kind.
pub fn gate_options(kind: &str) -> Option<&'static [&'static str]> {
    Kind::from_name(kind).map(Kind::options)
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// How often a waiting gate looks at the cancel flag.
const POLL: Duration = Duration::from_millis(20);
/// The most one attempt may take, so that a long gate timeout still gets several tries when a
/// server swallows packets.
const ATTEMPT_MAX: Duration = Duration::from_secs(30);
/// UDP answers either come quickly or not at all: a lost datagram is better asked again.
const DNS_ATTEMPT_MAX: Duration = Duration::from_secs(3);
/// How long past its deadline an attempt's thread is awaited before the gate gives up on it.
const ATTEMPT_GRACE: Duration = Duration::from_millis(250);

/// One attempt, ready to run: returns why it failed. It must return by the deadline it is
/// given (give or take a socket timeout's slack).
type Probe = Arc<dyn Fn(Instant) -> Result<(), String> + Send + Sync>;

/// The time left until `deadline`, or `None` once it has passed.
fn remaining(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    (!left.is_zero()).then_some(left)
}

/// Checks the shape of one `verify:` entry at plan time: known kind key (exactly one), known
/// option names (suggesting the closest), value kinds, parseable durations, status range, DNS
/// type and expected answers, required `nameserver`. Strings containing references (`${...}`)
/// are not checked beyond being strings.
///
/// Returns every problem found, each located at the key or value at fault.
pub fn check_entry(entry: &Expr) -> Vec<Diagnostic> {
    let mut problems = entry::read_expr(entry).1;
    problems.sort_by_key(|d| (d.loc.line, d.loc.column));
    problems
}

/// A parsed, fully-resolved verification gate.
#[derive(Debug, Clone)]
pub struct Gate {
    check: Check,
    timeout: Duration,
    interval: Duration,
}

#[derive(Debug, Clone)]
enum Check {
    Http(http::HttpCheck),
    Tls(tls::TlsCheck),
    Dns(dns::DnsCheck),
    Tcp(tcp::TcpCheck),
    Command(command::CommandCheck),
}

/// How attempts are made: a probe on a thread of its own, or a program run and watched from
/// the gate's thread (it is already a process of its own, killed when its time is up).
enum Runner<'a> {
    Thread(Probe),
    Program(&'a command::CommandCheck, std::path::PathBuf),
}

/// How one attempt ended.
enum Outcome {
    Passed,
    Failed(String),
    Cancelled,
    /// Its thread had not answered well past the deadline.
    Unfinished,
}

impl Gate {
    /// Builds a gate from a resolved entry: the engine evaluates the entry's references into a
    /// `serde_json::Value` first. `base_dir` (the spec's directory) resolves a relative
    /// `ca_file`; the file itself is read when the gate runs, since an earlier resource of the
    /// same apply may write it.
    ///
    /// # Errors
    /// Every problem with the entry, in one message.
    pub fn from_value(value: &serde_json::Value, base_dir: &Path) -> Result<Gate, String> {
        let (e, problems) = entry::read_json(value);
        if !problems.is_empty() {
            let messages: Vec<String> = problems
                .into_iter()
                .map(|d| match d.help {
                    Some(help) => format!("{} ({help})", d.message),
                    None => d.message,
                })
                .collect();
            return Err(messages.join("; "));
        }
        if e.kind == Some(Kind::Command) {
            let argv = e.argv.ok_or("the verify entry has no command")?;
            let dir = trust::resolve_path(base_dir, e.dir.as_deref().unwrap_or("."));
            return Ok(Gate {
                check: Check::Command(command::CommandCheck {
                    argv,
                    env: e.env,
                    dir,
                }),
                timeout: e.timeout.unwrap_or(DEFAULT_TIMEOUT),
                interval: e.interval.unwrap_or(DEFAULT_INTERVAL),
            });
        }
        let (Some(kind), Some(target)) = (e.kind, e.target.clone()) else {
            return Err("the verify entry has no target".to_string());
        };
        let ca_file = e
            .ca_file
            .as_deref()
            .map(|f| trust::resolve_path(base_dir, f));
        let check = match kind {
            Kind::Http => Check::Http(http::HttpCheck {
                url: target,
                status: e.status.unwrap_or(200),
                body_contains: e.body_contains,
                headers: e.headers,
                ca_file,
            }),
            Kind::Tls => Check::Tls(tls::TlsCheck {
                host: target,
                port: e.target_port.or(e.port).unwrap_or(443),
                ca_file,
                min_valid_days: e.min_valid_days.unwrap_or(0),
            }),
            Kind::Dns => Check::Dns(dns::DnsCheck {
                name: target,
                rtype: e.dns_type.unwrap_or(hickory_proto::rr::RecordType::A),
                expect: e.expect,
                nameserver: e.nameserver.ok_or("a `dns` gate needs a `nameserver`")?,
            }),
            Kind::Tcp => Check::Tcp(tcp::TcpCheck {
                host: target,
                port: e.target_port.ok_or("a `tcp` gate needs HOST:PORT")?,
            }),
            Kind::Command => unreachable!("built above"),
        };
        Ok(Gate {
            check,
            timeout: e.timeout.unwrap_or(DEFAULT_TIMEOUT),
            interval: e.interval.unwrap_or(DEFAULT_INTERVAL),
        })
    }

    /// One line naming the gate for progress output, e.g. "http https://x/health". A password
    /// written in a URL is shown as `***`.
    pub fn describe(&self) -> String {
        match &self.check {
            Check::Http(c) => c.describe(),
            Check::Tls(c) => c.describe(),
            Check::Dns(c) => c.describe(),
            Check::Tcp(c) => c.describe(),
            Check::Command(c) => c.describe(),
        }
    }

    /// Tries until the gate passes or its timeout expires, waiting `interval` between attempts.
    /// Returns early with an error once `cancel` becomes true; the flag is looked at every
    /// 20 ms, while an attempt runs and while waiting between attempts.
    ///
    /// # Errors
    /// Why the last attempt failed, followed by how long and how often the gate tried, e.g.
    /// `expected status 200, got 500 Internal Server Error (body: "...") (gave up after 30s,
    /// 28 attempts)`; lines after the first line of why (a program's output) follow that note.
    /// A missing or unreadable `ca_file`, or a `command` gate's missing program or `dir`, fails
    /// at once.
    pub fn run(&self, cancel: &AtomicBool) -> Result<(), String> {
        let start = Instant::now();
        let deadline = start + self.timeout;
        let runner = match &self.check {
            Check::Http(c) => Runner::Thread(c.prepare()?),
            Check::Tls(c) => Runner::Thread(c.prepare()?),
            Check::Dns(c) => Runner::Thread(c.prepare()?),
            Check::Tcp(c) => Runner::Thread(c.prepare()?),
            Check::Command(c) => Runner::Program(c, c.prepare()?),
        };
        let attempt_max = match self.check {
            Check::Dns(_) => DNS_ATTEMPT_MAX,
            // The user's program may take as long as the gate allows.
            Check::Command(_) => self.timeout,
            _ => ATTEMPT_MAX,
        };
        let mut attempts = 0u32;
        let mut last: Option<String> = None;
        // Shown to people while it retries (src/render/waits.rs).
        let shown = Wait::start(format!("gate {}", self.describe()), Some(self.timeout));
        let cancelled = |last: &Option<String>| match last {
            Some(why) => format!("cancelled; the last attempt had failed: {why}"),
            None => "cancelled".to_string(),
        };
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(cancelled(&last));
            }
            attempts += 1;
            let attempt_deadline = deadline.min(Instant::now() + attempt_max);
            let outcome = match &runner {
                Runner::Thread(probe) => attempt(probe, attempt_deadline, cancel),
                Runner::Program(c, program) => c.attempt(program, attempt_deadline, cancel),
            };
            match outcome {
                Outcome::Passed => return Ok(()),
                Outcome::Failed(why) => last = Some(why),
                Outcome::Cancelled => return Err(cancelled(&last)),
                Outcome::Unfinished => {
                    last = Some(match last {
                        Some(why) => format!(
                            "the last attempt did not finish in time; the one before failed: {why}"
                        ),
                        None => "the attempt did not finish in time (timed out)".to_string(),
                    });
                }
            }
            if let Some(why) = &last {
                shown.saw(why.as_str());
            }
            let next = (Instant::now() + self.interval).min(deadline);
            if !wait_until(next, cancel) {
                return Err(cancelled(&last));
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        let why = last.unwrap_or_else(|| "no attempt finished".to_string());
        let (first, more) = why
            .split_once('\n')
            .map_or((why.as_str(), ""), |(f, m)| (f, m));
        let plural = if attempts == 1 { "" } else { "s" };
        let more = if more.is_empty() {
            String::new()
        } else {
            format!("\n{more}")
        };
        Err(format!(
            "{first} (gave up after {}, {attempts} attempt{plural}){more}",
            humantime::format_duration(self.timeout)
        ))
    }
}

/// Runs one attempt on its own thread, so that the caller keeps watching `cancel` and the
/// deadline however the network behaves. A thread given up on ends by its own socket
/// timeouts, which the deadline bounds.
fn attempt(probe: &Probe, deadline: Instant, cancel: &AtomicBool) -> Outcome {
    let (tx, rx) = mpsc::channel();
    let probe = probe.clone();
    let spawned = std::thread::Builder::new()
        .name("fabrik-verify".to_string())
        .spawn(move || {
            let _ = tx.send(probe(deadline));
        });
    if let Err(e) = spawned {
        return Outcome::Failed(format!("cannot start a thread for the attempt: {e}"));
    }
    loop {
        match rx.recv_timeout(POLL) {
            Ok(Ok(())) => return Outcome::Passed,
            Ok(Err(why)) => return Outcome::Failed(why),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Outcome::Failed("the attempt panicked".to_string());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if cancel.load(Ordering::Relaxed) {
            return Outcome::Cancelled;
        }
        if Instant::now() > deadline + ATTEMPT_GRACE {
            return Outcome::Unfinished;
        }
    }
}

/// Sleeps until `until` in short steps; false if cancelled meanwhile.
fn wait_until(until: Instant, cancel: &AtomicBool) -> bool {
    loop {
        if cancel.load(Ordering::Relaxed) {
            return false;
        }
        let Some(left) = remaining(until) else {
            return true;
        };
        std::thread::sleep(left.min(POLL));
    }
}

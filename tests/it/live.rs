//! Helpers for tests that start real processes through fabrik and talk to them over loopback:
//! free ports, a tiny HTTP client, the processes a case's state directory owns, and a guard
//! that stops them however the test ends.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::harness::Case;

/// The Python interpreter itself, for `local.process` servers: `python3` as found in `PATH` may
/// be a wrapper script (pyenv's shim) whose helper processes inherit the server's environment
/// while it starts, and would count as extra processes of the stack.
pub fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "python3 runs: {out:?}");
        String::from_utf8(out.stdout)
            .expect("a UTF-8 path")
            .trim()
            .to_string()
    })
}

/// A port nothing listens on right now: bound to 127.0.0.1:0, read, and released.
/// A loopback port where nothing listens, for as long as the guard lives: the socket is bound
/// but never listens, so connections to it are refused and no other test can take the port (a
/// port merely released could be bound again by a test running beside this one).
pub struct ClosedPort {
    pub port: u16,
    _socket: rustix::fd::OwnedFd,
}

pub fn closed_port() -> ClosedPort {
    use rustix::net::{AddressFamily, SocketType, bind, getsockname, socket};
    let socket = socket(AddressFamily::INET, SocketType::STREAM, None).expect("a TCP socket");
    let any = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 0);
    bind(&socket, &any).expect("bind a loopback port");
    let port = std::net::SocketAddr::try_from(getsockname(&socket).expect("the bound address"))
        .expect("an IPv4 address")
        .port();
    ClosedPort {
        port,
        _socket: socket,
    }
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("a bound address").port()
}

/// The two forms of the `FABRIK_STATE_DIR=` marker fabrik may have written.
fn markers(state_dir: &Path) -> Vec<Vec<u8>> {
    let canonical = std::fs::canonicalize(state_dir).unwrap_or(state_dir.to_path_buf());
    [canonical, state_dir.to_path_buf()]
        .iter()
        .map(|dir| format!("FABRIK_STATE_DIR={}", dir.display()).into_bytes())
        .collect()
}

/// Whether `pid` is a live process (not gone, not a zombie).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| !s[i + 2..].starts_with(['Z', 'X'])))
        .unwrap_or(false)
}

/// Pids of live processes started for this state directory (found by the marker in their
/// environment, as fabrik itself finds them), in ascending order.
pub fn processes_of(state_dir: &Path) -> Vec<i32> {
    let wanted = markers(state_dir);
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc")
        .expect("/proc is readable")
        .flatten()
    {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let owned = environ
            .split(|b| *b == 0)
            .any(|v| wanted.iter().any(|w| v == w.as_slice()));
        if owned && alive(pid) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids
}

/// A process's command line, one argument per item.
pub fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The `pid` output the state records for a resource.
pub fn recorded_pid(case: &Case, stack: &str, name: &str) -> i32 {
    let state = case.state(stack);
    let pid = &state["resources"][name]["outputs"]["pid"];
    pid.as_i64()
        .unwrap_or_else(|| panic!("the state records no pid for `{name}`: {state:#}")) as i32
}

/// Stops (SIGKILL, whole process group) every process this case's state directory owns when
/// dropped, so that a failing assertion leaves nothing running. Tests still end with
/// `destroy --yes` and check that it left nothing; this is only the safety net.
pub struct Reaper {
    state_dir: PathBuf,
}

impl Reaper {
    pub fn new(case: &Case) -> Self {
        Reaper {
            state_dir: case.state_dir(),
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in processes_of(&self.state_dir) {
            // fabrik starts each process as the leader of its own group: stop what it forked too.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}"), &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// `GET path` on 127.0.0.1:port over HTTP/1.0, with short timeouts.
pub fn http_get(port: u16, path: &str) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {head:?}")))?;
    Ok(Response {
        status,
        body: body.to_string(),
    })
}

/// [`http_get`], retried while nothing accepts connections yet (a server that was just
/// restarted may still be starting); the first answer is returned, whatever it says.
pub fn http_get_when_up(port: u16, path: &str, within: Duration) -> Response {
    let deadline = Instant::now() + within;
    loop {
        match http_get(port, path) {
            Ok(response) => return response,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("nothing answered on 127.0.0.1:{port} within {within:?}: {e}"),
        }
    }
}

/// Sends a signal to one process by its id.
pub fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Starts `fabrik <args>` in `case` in the background and returns once `file` exists: for runs
/// that hold the stack's lock while their gate waits.
pub fn spawn_until_exists(case: &Case, args: &[&str], file: &str) -> std::process::Child {
    let child = case
        .args(args)
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("fabrik starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !case.exists(file) {
        assert!(
            Instant::now() < deadline,
            "`fabrik {}` never got as far as {file}",
            args.join(" ")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

//! A real PowerDNS Authoritative server per test: its own temp dir, SQLite database, pdns.conf
//! and free loopback ports, stopped (SIGTERM, then SIGKILL) when the handle is dropped. The
//! system's /etc/powerdns is never read.

use std::fs;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fabrik_powerdns::{PowerDns, PowerDnsClient, RECORD_TYPE, Retry, ZONE_TYPE};
use fabrik_provider::{Attributes, Client, Context, Provider, Target, Value};
use rustix::process::{Pid, Signal};
use serde_json::json;

const SCHEMA: &str = "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql";
const INSTALL: &str = "apt-get install pdns-server pdns-backend-sqlite3 sqlite3";
pub const KEY: &str = "test-api-key";
pub const STACK: &str = "pdns-test";

pub struct Pdns {
    child: Child,
    dir: tempfile::TempDir,
    pub api_port: u16,
    pub dns_port: u16,
}

impl Pdns {
    /// Starts a server. Fails (never skips) when PowerDNS is not installed.
    pub fn start() -> Pdns {
        let binary = find_program("pdns_server").unwrap_or_else(|| {
            panic!("pdns_server is not installed; these tests need a real PowerDNS: {INSTALL}")
        });
        assert!(
            Path::new(SCHEMA).exists(),
            "{SCHEMA} is missing (the SQLite backend is not installed): {INSTALL}"
        );
        let sqlite = find_program("sqlite3")
            .unwrap_or_else(|| panic!("the sqlite3 command is not installed: {INSTALL}"));
        // Ports are found free and then let go, so another test may take one first: try again.
        let mut last_log = String::new();
        for _ in 0..5 {
            let dir = tempfile::Builder::new().prefix("pdns-").tempdir().unwrap();
            let db = dir.path().join("pdns.sqlite3");
            let status = Command::new(&sqlite)
                .arg(&db)
                .stdin(fs::File::open(SCHEMA).unwrap())
                .status()
                .unwrap();
            assert!(status.success(), "creating the schema with sqlite3 failed");
            let api_port = free_tcp_port();
            let dns_port = free_dns_port();
            fs::write(
                dir.path().join("pdns.conf"),
                // `webserver-loglevel=detailed` (shown at `loglevel=6`) logs every API request's
                // headers, so a test can see what the client sent, as the server received it.
                format!(
                    "launch=gsqlite3\n\
                     gsqlite3-database={db}\n\
                     local-address=127.0.0.1\n\
                     local-port={dns_port}\n\
                     socket-dir={dir}\n\
                     api=yes\n\
                     api-key={KEY}\n\
                     webserver=yes\n\
                     webserver-address=127.0.0.1\n\
                     webserver-port={api_port}\n\
                     webserver-allow-from=127.0.0.1/32\n\
                     security-poll-suffix=\n\
                     disable-syslog=yes\n\
                     loglevel=6\n\
                     webserver-loglevel=detailed\n",
                    db = db.display(),
                    dir = dir.path().display(),
                ),
            )
            .unwrap();
            let log = fs::File::create(dir.path().join("pdns.log")).unwrap();
            // Started through setpriv (util-linux, beside pdns on every Debian) so that the
            // kernel kills the server if this test thread dies without dropping the handle (a
            // test process killed hard): no server outlives the tests, and no unsafe pre-exec
            // hook is needed. setpriv execs, so the child is the server itself.
            let mut command = Command::new("setpriv");
            command
                .args(["--pdeathsig", "KILL"])
                .arg(&binary)
                .arg(format!("--config-dir={}", dir.path().display()))
                .args(["--daemon=no", "--guardian=no"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            let child = command.spawn().unwrap();
            let mut server = Pdns {
                child,
                dir,
                api_port,
                dns_port,
            };
            if server.wait_until_up() {
                return server;
            }
            last_log = fs::read_to_string(server.dir.path().join("pdns.log")).unwrap_or_default();
        }
        panic!("pdns_server did not come up; its last log:\n{last_log}");
    }

    fn wait_until_up(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if self.raw("GET", "", None).0 == 200 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.api_port)
    }

    pub fn config(&self) -> Attributes {
        attrs(json!({ "url": self.url(), "api_key": KEY }))
    }

    /// A client configured the way the engine does it.
    pub fn client(&self) -> Box<dyn Client> {
        let context = Context {
            base_dir: self.dir.path().to_path_buf(),
            state_dir: self.dir.path().join("state"),
            reserved: Vec::new(),
            cancel: Default::default(),
        };
        PowerDns.configure(&self.config(), &context).unwrap()
    }

    /// A request straight to the API, bypassing the provider: (status, body).
    pub fn raw(&self, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let url = format!("{}/api/v1/servers/localhost{path}", self.url());
        let result = match method {
            "GET" => agent.get(&url).header("X-API-Key", KEY).call(),
            "DELETE" => agent.delete(&url).header("X-API-Key", KEY).call(),
            "POST" | "PATCH" | "PUT" => {
                let bytes = serde_json::to_vec(&body.unwrap_or(Value::Null)).unwrap();
                let request = match method {
                    "POST" => agent.post(&url),
                    "PATCH" => agent.patch(&url),
                    _ => agent.put(&url),
                };
                request
                    .header("X-API-Key", KEY)
                    .header("Content-Type", "application/json")
                    .send(&bytes[..])
            }
            other => panic!("no such method {other}"),
        };
        match result {
            Ok(mut response) => (
                response.status().as_u16(),
                response.body_mut().read_to_string().unwrap_or_default(),
            ),
            Err(_) => (0, String::new()),
        }
    }

    /// Creates a zone behind the provider's back.
    pub fn raw_zone(&self, name: &str) {
        let (status, body) = self.raw(
            "POST",
            "/zones",
            Some(json!({"name": name, "kind": "Native", "nameservers": [format!("ns1.{name}")]})),
        );
        assert_eq!(status, 201, "{body}");
    }

    /// Writes an RRset behind the provider's back (REPLACE keeps its comments).
    pub fn raw_rrset(&self, zone: &str, name: &str, rtype: &str, ttl: u32, records: &[&str]) {
        let records: Vec<Value> = records
            .iter()
            .map(|c| json!({"content": c, "disabled": false}))
            .collect();
        let (status, body) = self.raw(
            "PATCH",
            &format!("/zones/{zone}"),
            Some(json!({"rrsets": [{
                "name": name, "type": rtype, "ttl": ttl, "changetype": "REPLACE", "records": records,
            }]})),
        );
        assert_eq!(status, 204, "{body}");
    }

    /// The RRset as the API has it: (ttl, contents, comments), or None.
    pub fn rrset(
        &self,
        zone: &str,
        name: &str,
        rtype: &str,
    ) -> Option<(u64, Vec<String>, Vec<String>)> {
        let (status, body) = self.raw(
            "GET",
            &format!("/zones/{zone}?rrset_name={name}&rrset_type={rtype}"),
            None,
        );
        if status == 404 {
            return None;
        }
        assert_eq!(status, 200, "{body}");
        let zone: Value = serde_json::from_str(&body).unwrap();
        let rrset = zone["rrsets"].as_array().unwrap().iter().find(|r| {
            r["name"] == name && r["type"] == rtype && !r["records"].as_array().unwrap().is_empty()
        })?;
        let texts = |key: &str| -> Vec<String> {
            let mut v: Vec<String> = rrset[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["content"].as_str().unwrap().to_string())
                .collect();
            v.sort();
            v
        };
        Some((
            rrset["ttl"].as_u64().unwrap(),
            texts("records"),
            texts("comments"),
        ))
    }

    pub fn zone_exists(&self, zone: &str) -> bool {
        self.raw("GET", &format!("/zones/{zone}?rrsets=false"), None)
            .0
            == 200
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("pdns.log")
    }
}

impl Drop for Pdns {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Some(pid) = Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port free for both UDP and TCP (PowerDNS listens on both).
fn free_dns_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A client with short retry waits and the given configuration.
pub fn quick_client(config: Value) -> PowerDnsClient {
    let retry = Retry {
        attempts: 2,
        base: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
        max_retry_after: Duration::from_secs(1),
        rate_limit_wait: Duration::from_secs(1),
    };
    PowerDnsClient::new(&attrs(config), retry).unwrap()
}

pub fn attrs(value: Value) -> Attributes {
    value.as_object().expect("an object").clone()
}

pub fn zone_target(name: &str) -> Target<'_> {
    Target {
        stack: STACK,
        name,
        type_name: ZONE_TYPE,
    }
}

pub fn record_target(name: &str) -> Target<'_> {
    Target {
        stack: STACK,
        name,
        type_name: RECORD_TYPE,
    }
}

/// Creates a zone through the provider; returns its id.
pub fn make_zone(client: &dyn Client, name: &str) -> String {
    client
        .create(
            zone_target(name),
            &attrs(json!({"name": name, "nameservers": [format!("ns1.{name}")]})),
        )
        .unwrap()
        .id
}

//! The PostgreSQL state backend against a real server: each test starts its own (initdb in a
//! temporary directory, a free loopback port, password authentication) and stops it at the end.
//! The same stacks as the file backend: apply, plan, destroy; one writer per stack with the
//! holder named to whoever is refused; a killed holder frees the lock at once and its open
//! intents are recovered; a writer with a stale serial fails; the password never shows.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::Case;
use crate::live::{Reaper, free_port, signal};

/// The database password; no output of fabrik may contain it.
const PASSWORD: &str = "pw-Zq81rT6vLm";

/// A PostgreSQL server of this test's own, stopped (fast shutdown) when dropped.
pub struct Server {
    /// Holds the data directory; removed after the server stopped.
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    bin: PathBuf,
    /// The unprivileged user the server runs as when the tests run as root (initdb and
    /// postgres refuse root).
    user: Option<(u32, u32)>,
    /// Extra `-c name=value` settings (TLS).
    settings: Vec<String>,
}

/// The directory holding `initdb`, `postgres` and `pg_isready`: the newest Debian install, or
/// the one on PATH.
fn postgres_bin() -> PathBuf {
    let mut installed: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists() && bin.join("postgres").exists())
        .collect();
    installed.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(newest) = installed.pop() {
        return newest;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|dir| dir.join("initdb").exists() && dir.join("postgres").exists());
    on_path.unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no initdb and postgres under /usr/lib/postgresql/*/bin or on PATH): apt-get install postgresql"
        )
    })
}

/// The uid and gid of `name` in /etc/passwd.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&name) && fields.len() > 3)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    })
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(|_| Vec::new())
    }

    /// A server that offers TLS only, with a certificate for 127.0.0.1 signed by a CA of its
    /// own; returns the server and that CA as PEM.
    pub fn start_tls() -> (Server, String) {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "fabrik test CA");
        let ca_pem = ca.clone().self_signed(&ca_key).unwrap().pem();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
            .unwrap()
            .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
            .unwrap();
        let server = Self::start_with(|dir| {
            let (cert, key_file) = (dir.join("server.crt"), dir.join("server.key"));
            std::fs::write(&cert, leaf.pem()).unwrap();
            std::fs::write(&key_file, key.serialize_pem()).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
            vec![
                "ssl=on".into(),
                format!("ssl_cert_file={}", cert.display()),
                format!("ssl_key_file={}", key_file.display()),
            ]
        });
        // Plain connections are refused, so a client that skipped TLS would fail the test.
        let hba = server.dir.path().join("data/pg_hba.conf");
        let text = std::fs::read_to_string(&hba).unwrap();
        std::fs::write(&hba, text.replace("\nhost ", "\nhostssl ")).unwrap();
        server.sql("SELECT pg_reload_conf()");
        (server, ca_pem)
    }

    /// Starts a server; `files` writes what the server needs into its directory and returns
    /// extra settings.
    fn start_with(files: impl FnOnce(&Path) -> Vec<String>) -> Server {
        let bin = postgres_bin();
        let dir = tempfile::Builder::new()
            .prefix("fabrik-pg-")
            .tempdir()
            .expect("a temporary directory");
        let user = running_as_root().then(|| {
            user_ids("postgres")
                .or_else(|| user_ids("nobody"))
                .expect("an unprivileged user (postgres or nobody) to run the server as")
        });
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown the data dir");
        }
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).unwrap();
        }
        let init = Self::as_user(user, &bin.join("initdb"))
            .args(["-D"])
            .arg(dir.path().join("data"))
            .args([
                "-U",
                "fabrik",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("initdb starts");
        assert!(
            init.status.success(),
            "initdb failed:\n{}{}",
            String::from_utf8_lossy(&init.stdout),
            String::from_utf8_lossy(&init.stderr)
        );
        let settings = files(dir.path());
        if let Some((uid, gid)) = user {
            for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
                std::os::unix::fs::chown(entry.path(), Some(uid), Some(gid)).unwrap();
            }
        }
        let mut server = Server {
            dir,
            port: 0,
            child: None,
            bin,
            user,
            settings,
        };
        server.run();
        server
    }

    /// `program` run directly as `user` (setpriv execs, so the child is the program itself and
    /// signals reach it).
    fn as_user(user: Option<(u32, u32)>, program: &Path) -> Command {
        match user {
            Some((uid, gid)) => {
                let mut command = Command::new("setpriv");
                command
                    .arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg(program);
                command
            }
            None => Command::new(program),
        }
    }

    /// Starts the server on a free loopback port and waits until it accepts connections.
    fn run(&mut self) {
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(self.dir.path().join("log")).unwrap();
            if let Some((uid, gid)) = self.user {
                std::os::unix::fs::chown(self.dir.path().join("log"), Some(uid), Some(gid))
                    .unwrap();
            }
            let child = Self::as_user(self.user, &self.bin.join("postgres"))
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
                .arg("-c")
                .arg(format!(
                    "unix_socket_directories={}",
                    self.dir.path().display()
                ))
                // Test data need not survive a power cut; the tests need speed.
                .args(["-c", "fsync=off", "-c", "max_connections=50"])
                .args(self.settings.iter().flat_map(|s| ["-c", s.as_str()]))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("postgres starts");
            self.child = Some(child);
            self.port = port;
            if self.wait_ready() {
                return;
            }
            self.stop();
        }
        panic!(
            "PostgreSQL did not start:\n{}",
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                return false;
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Stops the server (fast shutdown: open connections are ended).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "INT");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the stopped server again, on a new port.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// The connection string, password included.
    pub fn url(&self) -> String {
        format!(
            "postgres://fabrik:{PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        )
    }

    /// Runs SQL with psql as the superuser over the server's socket, and returns its output
    /// (unaligned, tuples only).
    pub fn sql(&self, sql: &str) -> String {
        let out = Self::as_user(self.user, &self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", "fabrik"])
            .arg("-h")
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-d", "postgres", "-c", sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql failed on {sql}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

const STACK: &str = r#"
    stack: shop
    backend:
      postgres:
        url: "${secret.STATE_DB_URL}"
        schema: fabrik_state
    resources:
      web:
        type: local.file
        with: { path: web.txt, content: "hello\n" }
      api:
        type: local.file
        with: { path: api.txt, content: "api after ${web.content_hash}\n" }
"#;

/// Shows `server`'s port as `[PG-PORT]` in `case`'s snapshots, and what a lock holder is known
/// by that a test cannot fix in advance: this machine's name and the time the lock was taken.
fn redact_server(case: &Case, server: &Server) {
    case.redact(server.port, "PG-PORT");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    if !host.trim().is_empty() {
        let host = crate::harness::regex_escape(host.trim());
        case.redact_matches(&format!(r"@{host}\b"), "@[HOST]");
    }
    case.redact_matches(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\b", "[TIMESTAMP]");
}

/// Every output must be free of the password and of the URL.
fn assert_no_password(out: &crate::harness::Output) {
    assert!(
        !out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD),
        "the password leaked:\n{out}"
    );
}

#[test]
fn apply_plan_and_destroy_keep_the_state_in_postgres() {
    let server = Server::start();
    let case = Case::new().spec(STACK).env("STATE_DB_URL", server.url());
    let out = case.expect(["apply", "--yes"], 0);
    assert_no_password(&out);
    assert_eq!(case.read("web.txt"), "hello\n");
    assert!(
        !case.state_file("shop").exists(),
        "no local state with a database backend"
    );
    let stored = server.sql(
        "SELECT serial, state->'resources' ? 'web', state->'resources' ? 'api' FROM fabrik_state.snapshots WHERE stack = 'shop'",
    );
    assert_eq!(stored, "1|t|t", "the snapshot is in the database");
    assert_eq!(
        server.sql("SELECT count(*) FROM fabrik_state.journal"),
        "0",
        "the commit folded the journal into the snapshot"
    );
    assert_eq!(
        server.sql(
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM fabrik_state.migrations"
        ),
        "1,2,3",
        "the schema is versioned, each migration recorded"
    );

    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "nothing left to do:\n{plan}");
    assert_no_password(&plan);
    let list = case.expect(["state", "list"], 0);
    assert!(
        list.stdout.contains("web") && list.stdout.contains("api"),
        "{list}"
    );

    case.set_spec(&STACK.replace("hello", "hello again"));
    let plan = case.run(["plan", "--detailed-exitcode", "--out", "change.plan"]);
    assert_eq!(plan.code, 2, "a changed spec plans a change:\n{plan}");
    case.expect(["apply", "change.plan"], 0);
    assert_eq!(case.read("web.txt"), "hello again\n");
    // The saved plan was bound to the serial it was made against: applied once, it is stale.
    let stale = case.run(["apply", "change.plan"]);
    redact_server(&case, &server);
    fabrik_snapshot!(case, stale, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the saved plan is stale: the state changed since the plan was made (serial 1 then, 2 now)
    run `fabrik plan --out PLAN` again and review the new plan
    ");

    let out = case.expect(["destroy", "--yes"], 0);
    assert_no_password(&out);
    assert!(!case.exists("web.txt") && !case.exists("api.txt"));

    // A schema written by a newer fabrik is left alone.
    server.sql("INSERT INTO fabrik_state.migrations (version) VALUES (99)");
    let newer = case.run(["plan"]);
    fabrik_snapshot!(case, newer, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the state schema in postgres://fabrik@127.0.0.1:[PG-PORT]/postgres (schema fabrik_state) is at version 99; this fabrik knows versions up to 3: upgrade fabrik
    ");
    server.sql("DELETE FROM fabrik_state.migrations WHERE version = 99");
    assert_eq!(
        server.sql(
            "SELECT jsonb_object_keys(state->'resources') FROM fabrik_state.snapshots WHERE stack = 'shop'"
        ),
        "",
        "the destroy emptied the stored state"
    );
}

#[test]
fn backend_flag_and_environment_choose_postgres_for_one_run() {
    let server = Server::start();
    let case = Case::new().spec(
        r#"
        stack: flagged
        resources:
          web:
            type: local.file
            with: { path: web.txt, content: "hi\n" }
        "#,
    );
    let url = format!("{}?schema=team", server.url());
    let out = case.expect(["--backend", &url, "apply", "--yes"], 0);
    assert_no_password(&out);
    assert!(!case.state_file("flagged").exists());
    assert_eq!(
        server.sql("SELECT serial FROM team.snapshots WHERE stack = 'flagged'"),
        "1"
    );
    // The holder's command line, kept for whoever is refused, has the URL without its password.
    let command = server.sql("SELECT holder->>'command' FROM team.locks WHERE stack = 'flagged'");
    assert!(
        command.contains("--backend postgres://fabrik:(sensitive)@127.0.0.1:")
            && !command.contains(PASSWORD),
        "{command}"
    );
    let plan = case
        .args(["plan", "--detailed-exitcode"])
        .env("FABRIK_BACKEND", &url)
        .run();
    assert_eq!(
        plan.code, 0,
        "the same state, through the environment:\n{plan}"
    );
    // Without the flag the local directory is used: it has no state, so a create is planned
    // (and the file the other state's run wrote is in its way).
    let local = case.run(["plan", "--refresh=false", "--detailed-exitcode"]);
    assert_eq!(local.code, 2, "{local}");
    let local = case.run(["plan"]);
    fabrik_snapshot!(case, local, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `web`: [TEMP]/web.txt already exists (a file) and this stack did not create it; set `adopt: true` to take it over (its content is kept and put back if the apply is rolled back), or import it with `fabrik import web [TEMP]/web.txt`
      --> fabrik.yaml:3:3
      |
    3 |   web:
      |   ^^^
    ");
}

#[test]
fn the_password_never_shows_even_when_the_connection_fails() {
    let server = Server::start();
    let wrong = server.url().replace(PASSWORD, "wrong-Kd9x2Pq");
    let case = Case::new().spec(STACK).env("STATE_DB_URL", &wrong);
    let out = case.run(["apply", "--yes"]);
    assert!(!out.stderr.contains("wrong-Kd9x2Pq"), "{out}");
    // The error says where and why, without the password.
    redact_server(&case, &server);
    fabrik_snapshot!(case, out, @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: state backend postgres://fabrik@127.0.0.1:[PG-PORT]/postgres (schema fabrik_state): connecting: FATAL: password authentication failed for user "fabrik"
    "#);
    let good = case
        .args(["apply", "--yes"])
        .env("STATE_DB_URL", server.url())
        .run();
    assert_eq!(good.code, 0, "{good}");
    assert_no_password(&good);
}

#[test]
fn a_bad_backend_block_is_reported_where_it_is_written() {
    let case = Case::new().spec(
        r#"
        stack: shop
        backend:
          postgress:
            url: "${secret.STATE_DB_URL}"
        resources: {}
        "#,
    );
    let out = case.run(["validate"]);
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: unknown backend `postgress`
      --> fabrik.yaml:3:3
      |
    3 |   postgress:
      |   ^^^^^^^^^
      = help: did you mean `postgres`?
    ");

    case.set_spec(
        r#"
        stack: shop
        backend:
          postgres:
            url: "postgres://fabrik:hunter2@db/fabrik"
            schema: Bad-Name
        resources: {}
        "#,
    );
    let out = case.run(["validate"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `url` holds a password in the spec
      --> fabrik.yaml:4:10
      |
    4 |     url: "postgres://fabrik:hunter2@db/fabrik"
      |          ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
      = help: put the connection string in a secret and write `url: "${secret.STATE_DB_URL}"`

    error: invalid schema name `Bad-Name`
      --> fabrik.yaml:5:13
      |
    5 |     schema: Bad-Name
      |             ^^^^^^^^
      = help: a schema is a lower-case identifier: letters, digits and `_`, at most 63

    2 errors in fabrik.yaml
    "#);

    case.set_spec(
        r#"
        stack: shop
        backend:
          postgres: { schema: fabrik, url: "postgres://u@${web.path}/x", port: 5432 }
        resources:
          web:
            type: local.file
            with: { path: web.txt, content: "hi" }
        "#,
    );
    let out = case.run(["validate"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: `url` cannot use ${web.path}
      --> fabrik.yaml:3:36
      |
    3 |   postgres: { schema: fabrik, url: "postgres://u@${web.path}/x", port: 5432 }
      |                                    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^
      = help: the state's URL may use `${secret.NAME}` and `${env.NAME}` only

    error: unknown key `port` in backend `postgres`
      --> fabrik.yaml:3:66
      |
    3 |   postgres: { schema: fabrik, url: "postgres://u@${web.path}/x", port: 5432 }
      |                                                                  ^^^^

    2 errors in fabrik.yaml
    "#);

    case.set_spec("stack: shop\nbackend:\n  postgres: {}\nresources: {}\n");
    let out = case.run(["validate"]);
    fabrik_snapshot!(case, out, @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: backend `postgres` has no `url`
      --> fabrik.yaml:3:3
      |
    3 |   postgres: {}
      |   ^^^^^^^^
      = help: add `url: "${secret.STATE_DB_URL}"` and put the connection string in that secret
    "#);
}

/// A spec whose apply holds the lock until the test lets it go: its gate waits for a port the
/// test opens later.
fn slow_spec(port: u16) -> String {
    format!(
        r#"
        stack: shop
        backend:
          postgres:
            url: "${{secret.STATE_DB_URL}}"
        resources:
          web:
            type: local.file
            with: {{ path: web.txt, content: "hello\n" }}
            verify:
              - tcp: "127.0.0.1:{port}"
                timeout: 60s
                interval: 100ms
        "#
    )
}

#[test]
fn two_concurrent_applies_one_runs_the_other_is_refused_with_the_holder() {
    let server = Server::start();
    let gate = free_port();
    let case = Case::new()
        .spec(&slow_spec(gate))
        .env("STATE_DB_URL", server.url());
    // The first run holds the lock once its file exists (it waits on its gate after that).
    let first = crate::live::spawn_until_exists(&case, &["apply", "--yes"], "web.txt");
    let second = case.run(["apply", "--yes"]);
    assert_no_password(&second);
    // The holder is named: user, machine, the first run's pid, when, and its command.
    redact_server(&case, &server);
    case.redact(first.id(), "FIRST-PID");
    fabrik_snapshot!(case, second, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: stack `shop` is locked by another fabrik run
      held by tester@[HOST], pid [FIRST-PID], since [TIMESTAMP]
      command: [FABRIK] apply --yes
    wait for it to finish, or, if that process is gone, run `fabrik unlock --force`
    ");
    // Every command that writes the state is refused the same way.
    assert_eq!(case.run(["destroy", "--yes"]), second);
    assert_eq!(case.run(["state", "rm", "web"]), second);
    // Let the first run's gate pass: it finishes alone and records its work.
    let _listener = std::net::TcpListener::bind(("127.0.0.1", gate)).expect("the gate's port");
    let first = first.wait_with_output().unwrap();
    let first_out = crate::harness::Output {
        code: first.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&first.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&first.stderr).into_owned(),
    };
    assert_no_password(&first_out);
    assert_eq!(
        first_out.code, 0,
        "the first run ran to its end:\n{first_out}"
    );
    assert_eq!(
        server.sql("SELECT serial FROM fabrik.snapshots WHERE stack = 'shop'"),
        "1",
        "one run wrote the state, once"
    );
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan}");
}

/// A process that ignores SIGTERM: deleting it takes its whole `stop_timeout`, so a run can be
/// killed while its delete intent is open.
const STUBBORN: &str = r#"
    stack: shop
    backend:
      postgres:
        url: "${secret.STATE_DB_URL}"
    resources:
      web:
        type: local.file
        with: { path: web.txt, content: "hello\n" }
      stubborn:
        type: local.process
        with: { command: sh, args: ["-c", "trap '' TERM; exec sleep 300"], stop_timeout: 4 }
"#;

const WITHOUT_STUBBORN: &str = r#"
    stack: shop
    backend:
      postgres:
        url: "${secret.STATE_DB_URL}"
    resources:
      web:
        type: local.file
        with: { path: web.txt, content: "hello\n" }
"#;

/// Waits until `sql` answers `want`.
fn wait_for(server: &Server, sql: &str, want: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = server.sql(sql);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql} answered {got:?}, not {want:?}, within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_holder_frees_the_lock_at_once_and_the_next_apply_recovers_its_intents() {
    let server = Server::start();
    let case = Case::new().spec(STUBBORN).env("STATE_DB_URL", server.url());
    let _reaper = Reaper::new(&case);
    case.expect(["apply", "--yes"], 0);
    let pid = server.sql(
        "SELECT state->'resources'->'stubborn'->'outputs'->>'pid' FROM fabrik.snapshots WHERE stack = 'shop'",
    );
    let pid: i32 = pid
        .parse()
        .unwrap_or_else(|_| panic!("a recorded pid, not {pid:?}"));
    assert!(crate::live::alive(pid));

    case.set_spec(WITHOUT_STUBBORN);
    let mut holder = case
        .args(["apply", "--yes"])
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("fabrik starts");
    // The delete is announced (its intent is durable in the database) and then waits for the
    // process, which ignores SIGTERM: kill the run right there.
    wait_for(
        &server,
        "SELECT count(*) FROM fabrik.journal WHERE record->>'op' = 'intent'",
        "1",
        Duration::from_secs(20),
    );
    assert_eq!(
        server.sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"),
        "1",
        "the run holds its lock"
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
    // The server ends the dead run's session, and its advisory lock with it.
    wait_for(
        &server,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted",
        "0",
        Duration::from_secs(2),
    );

    let next = case.run(["apply", "--yes"]);
    // The open intent is resolved first.
    redact_server(&case, &server);
    case.redact(pid, "STUBBORN-PID");
    fabrik_snapshot!(case, next, @"
    exit code: 0
    ----- stdout -----
    Recovered from an interrupted run:
      stubborn: still there after an interrupted delete

    fabrik will make these changes to stack `shop`:

      - stubborn (local.process)

    Plan: 0 to add, 0 to change, 1 to destroy.

      - stubborn (local.process): destroyed [TIME]

    Apply complete: 0 added, 0 changed, 1 destroyed in [TIME].

    ----- stderr -----
    ");
    assert_no_password(&next);
    let deadline = Instant::now() + Duration::from_secs(10);
    while crate::live::alive(pid) {
        assert!(Instant::now() < deadline, "the process was never stopped");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        server.sql(
            "SELECT state->'resources' ? 'stubborn', state ? 'pending' FROM fabrik.snapshots WHERE stack = 'shop'"
        ),
        "f|f",
        "the process is gone from the state and nothing is pending"
    );
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "the stack converged:\n{plan}");
}

#[test]
fn unlock_force_ends_the_holders_session_names_it_and_frees_the_stack() {
    let server = Server::start();
    let gate = free_port();
    let case = Case::new()
        .spec(&slow_spec(gate))
        .env("STATE_DB_URL", server.url());
    let first = crate::live::spawn_until_exists(&case, &["apply", "--yes"], "web.txt");
    redact_server(&case, &server);
    case.redact(first.id(), "FIRST-PID");
    let idle_refusal = case.run(["unlock"]);
    fabrik_snapshot!(case, idle_refusal, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: breaking a lock can let two runs write one state; pass --force if the holder is really gone
    ");
    let out = case.expect(["unlock", "--force"], 0);
    assert_no_password(&out);
    // The holder is named.
    fabrik_snapshot!(case, out, @"
    exit code: 0
    ----- stdout -----
    Broke the lock of the stack.
    It was held by:
      held by tester@[HOST], pid [FIRST-PID], since [TIMESTAMP]
      command: [FABRIK] apply --yes

    ----- stderr -----
    ");
    // The holder's sessions were ended: it can write nothing more and stops with an error.
    let _listener = std::net::TcpListener::bind(("127.0.0.1", gate)).expect("the gate's port");
    let first = first.wait_with_output().unwrap();
    assert_ne!(
        first.status.code(),
        Some(0),
        "the broken holder cannot finish"
    );
    assert!(!String::from_utf8_lossy(&first.stderr).contains(PASSWORD));

    let next = case.expect(["apply", "--yes"], 0);
    assert_no_password(&next);
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan}");
    let idle = case.expect(["unlock", "--force"], 0);
    assert!(idle.stdout.contains("The stack is not locked."), "{idle}");
}

#[test]
fn the_server_stopping_mid_apply_stops_the_run_and_the_next_one_converges() {
    let mut server = Server::start();
    let gate = free_port();
    let case = Case::new()
        .spec(&slow_spec(gate))
        .env("STATE_DB_URL", server.url());
    let first = crate::live::spawn_until_exists(&case, &["apply", "--yes"], "web.txt");
    server.stop();
    let listener = std::net::TcpListener::bind(("127.0.0.1", gate)).expect("the gate's port");
    let first = first.wait_with_output().unwrap();
    let first = crate::harness::Output {
        code: first.status.code().unwrap_or(-1),
        stdout: String::from_utf8(first.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(first.stderr).expect("stderr is UTF-8"),
    };
    assert_no_password(&first);
    // The run cannot finish; the error names the backend, says where the stack stands and
    // where its state is kept.
    redact_server(&case, &server);
    case.redact(gate, "GATE-PORT");
    fabrik_snapshot!(case, first, @r#"
    exit code: 4
    ----- stdout -----
    fabrik will make these changes to stack `shop`:

      + web (local.file)
          + path    = "web.txt"
          + content = <<EOT
              hello
            EOT
        gate: tcp 127.0.0.1:[GATE-PORT], timeout 1m

    Plan: 1 to add, 0 to change, 0 to destroy.

      + web (local.file): created [TIME]
      ✓ web: verified tcp 127.0.0.1:[GATE-PORT] [TIME]

    ----- stderr -----
    error: state backend postgres://fabrik@127.0.0.1:[PG-PORT]/postgres (schema fabrik): starting a transaction: connection closed
    the database went away mid-run: nothing new was started, and the stack is at serial 1 with 1 resource; that state is saved in ./.fabrik/shop.emergency.json and the next run on this machine pushes it to the database before anything else (until then the database lacks this run's last changes)
    "#);
    assert!(case.exists(".fabrik/shop.emergency.json"));

    server.restart();
    // A plan (no lock) already shows the state kept locally: the file is recorded.
    let list = case
        .args(["state", "list"])
        .env("STATE_DB_URL", server.url())
        .run();
    assert!(list.stdout.contains("web"), "{list}");
    let next = case
        .args(["apply", "--yes"])
        .env("STATE_DB_URL", server.url())
        .run();
    // The next run pushes the saved state first.
    redact_server(&case, &server);
    fabrik_snapshot!(case, next, @"
    exit code: 0
    ----- stdout -----
    No changes. Stack `shop` matches the spec.

    ----- stderr -----
    Pushed the state saved in ./.fabrik/shop.emergency.json while the database was away (serial 1) to postgres://fabrik@127.0.0.1:[PG-PORT]/postgres (schema fabrik).
    ");
    assert!(!case.exists(".fabrik/shop.emergency.json"));
    assert_eq!(
        server.sql("SELECT state->'resources' ? 'web' FROM fabrik.snapshots WHERE stack = 'shop'"),
        "t"
    );
    drop(listener);
    assert_eq!(case.read("web.txt"), "hello\n");
    let plan = case
        .args(["plan", "--detailed-exitcode"])
        .env("STATE_DB_URL", server.url())
        .run();
    assert_eq!(plan.code, 0, "{plan}");
}

/// Two writers that read the same serial: the first commit wins, and every later write of the
/// other (journal or snapshot) fails instead of overwriting it.
#[test]
fn two_writers_racing_on_the_serial_one_wins_and_the_other_fails() {
    use fabrik::state::StateStore;
    use fabrik::state::postgres::Config;

    let server = Server::start();
    let config = Config::parse(&server.url(), Some("race")).expect("a valid URL");

    // Both create the stack's first snapshot: one insert wins.
    let a = config.store("shop").unwrap();
    let b = config.store("shop").unwrap();
    let mut state_a = a.load().unwrap();
    let mut state_b = b.load().unwrap();
    drop(
        a.begin(&mut state_a)
            .expect("the first writer creates the state"),
    );
    let err = b.begin(&mut state_b).map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("changed under this run"), "{err}");

    // Many writers read serial 0 and race to commit: exactly one gets through.
    let barrier = std::sync::Barrier::new(8);
    let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (config, barrier) = (&config, &barrier);
                scope.spawn(move || {
                    let store = config.store("shop").unwrap();
                    let mut state = store.load().unwrap();
                    barrier.wait();
                    let record = put(state.serial + 1, &format!("w{i}"));
                    let result = (|| {
                        let mut journal = store.begin(&mut state)?;
                        journal.append(&[fabrik::state::journal::encode(&record)])?;
                        drop(journal);
                        state.apply(record);
                        store.commit(&state)
                    })();
                    result.map_err(|e| e.to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won: Vec<usize> = (0..8).filter(|&i| results[i].is_ok()).collect();
    assert_eq!(won.len(), 1, "exactly one writer wins: {results:#?}");
    for (i, result) in results.iter().enumerate() {
        if let Err(e) = result {
            assert!(e.contains("changed under this run"), "writer {i}: {e}");
        }
    }
    let winner = won[0];
    let stored = a.load().unwrap();
    assert_eq!(stored.serial, 1);
    assert_eq!(
        stored.resources.keys().collect::<Vec<_>>(),
        [&format!("w{winner}")],
        "only the winner's change is stored"
    );
    assert_eq!(
        server.sql("SELECT count(*) FROM race.journal"),
        "0",
        "no loser's record reached the journal"
    );
}

#[test]
fn tls_verifies_the_server_against_the_given_ca_and_fails_without_it() {
    let (server, ca_pem) = Server::start_tls();
    let case = Case::new().spec(STACK);
    case.write("ca.pem", &ca_pem);
    let ca = case.path("ca.pem");
    let url = format!(
        "{}?sslmode=verify-full&sslrootcert={}",
        server.url(),
        ca.display()
    );
    let out = case
        .args(["apply", "--yes"])
        .env("STATE_DB_URL", &url)
        .run();
    assert_eq!(out.code, 0, "{out}");
    assert_no_password(&out);
    assert_eq!(
        server.sql("SELECT serial FROM fabrik_state.snapshots WHERE stack = 'shop'"),
        "1",
        "the state went over TLS (the server accepts nothing else)"
    );

    // The server's certificate is not from the system roots: without the CA it is refused.
    redact_server(&case, &server);
    let out = case
        .args(["plan"])
        .env("STATE_DB_URL", format!("{}?sslmode=require", server.url()))
        .run();
    fabrik_snapshot!(case, out, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: state backend postgres://fabrik@127.0.0.1:[PG-PORT]/postgres (schema fabrik_state): connecting: error performing TLS handshake: invalid peer certificate: UnknownIssuer
    ");
    assert_no_password(&out);

    // Without TLS the server refuses the connection (pg_hba allows TLS only).
    let out = case.args(["plan"]).env("STATE_DB_URL", server.url()).run();
    fabrik_snapshot!(case, out, @r#"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: state backend postgres://fabrik@127.0.0.1:[PG-PORT]/postgres (schema fabrik_state): connecting: FATAL: no pg_hba.conf entry for host "127.0.0.1", user "fabrik", database "postgres", no encryption
    "#);
    assert_no_password(&out);
}

const LOCAL: &str = r#"
    stack: shop
    resources:
      web:
        type: local.file
        with: { path: web.txt, content: "hello\n" }
      api:
        type: local.file
        with: { path: api.txt, content: "api after ${web.content_hash}\n" }
"#;

#[test]
fn state_migrate_moves_a_stack_with_its_journal_to_postgres_and_back() {
    let server = Server::start();
    let case = Case::new().spec(LOCAL).env("STATE_DB_URL", server.url());
    case.expect(["apply", "--yes"], 0);
    // A run died after journaling a change and before its commit: the journal is part of the
    // state and must move with it.
    case.write(
        ".fabrik/shop.journal",
        "{\"serial\":2,\"op\":\"remove\",\"name\":\"api\"}\n",
    );
    // The removal is journaled once the file is gone.
    case.remove("api.txt");

    let url = format!("{}?schema=team", server.url());
    let out = case.expect(["state", "migrate", "--to", &url], 0);
    assert_no_password(&out);
    assert!(
        out.stdout
            .contains("Moved stack `shop` (serial 2, 1 resource)")
            && out.stdout.contains("postgres://fabrik@127.0.0.1:")
            && out.stdout.contains("(schema team)"),
        "{out}"
    );
    assert_eq!(
        server.sql(
            "SELECT serial, state->'resources' ? 'web', state->'resources' ? 'api' FROM team.snapshots WHERE stack = 'shop'"
        ),
        "2|t|f",
        "the snapshot moved with the journal folded in"
    );
    assert!(!case.state_file("shop").exists(), "the old copy is retired");
    assert!(case.exists(".fabrik/shop.state.json.migrated"));

    // The old place says where the state went instead of planning everything again.
    let stale = case.run(["plan"]);
    redact_server(&case, &server);
    fabrik_snapshot!(case, stale, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the state of stack `shop` was moved to postgres://fabrik@127.0.0.1:[PG-PORT]/postgres (schema team) by `fabrik state migrate`
    point the spec at it (its `backend:` block), or pass --backend or --state-dir
    ");
    assert_no_password(&stale);

    let team = crate::harness::dedent(LOCAL).replace(
        "stack: shop\n",
        "stack: shop\nbackend:\n  postgres:\n    url: \"${secret.STATE_DB_URL}\"\n    schema: team\n",
    );
    case.set_spec(&team);
    let list = case.expect(["state", "list"], 0);
    assert!(
        list.stdout.contains("web") && !list.stdout.contains("api"),
        "{list}"
    );
    case.expect(["apply", "--yes"], 0);
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "{plan}");

    // And back to a local directory.
    let out = case.expect(["state", "migrate", "--to", ".fabrik"], 0);
    assert!(
        out.stdout
            .contains("the old copy was removed from postgres://"),
        "{out}"
    );
    assert_eq!(server.sql("SELECT count(*) FROM team.snapshots"), "0");
    let moved = case.run(["plan"]);
    fabrik_snapshot!(case, moved, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the state of stack `shop` was moved to .fabrik by `fabrik state migrate`
    point the spec at it (its `backend:` block), or pass --backend or --state-dir
    ");
    case.set_spec(LOCAL);
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "the local state is complete again:\n{plan}");
    assert!(
        !case.exists(".fabrik/shop.moved"),
        "the marker went with the move back"
    );

    // The database says where the stack went, too.
    case.set_spec(&team);
    let moved = case.run(["plan"]);
    fabrik_snapshot!(case, moved, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: the state of stack `shop` was moved to .fabrik by `fabrik state migrate`
    point the spec at it (its `backend:` block), or pass --backend or --state-dir
    ");

    // A target that already holds the stack is refused, and nothing moves.
    let other = format!("{}?schema=other", server.url());
    let elsewhere = Case::new().spec(LOCAL);
    elsewhere.expect(["--backend", &other, "apply", "--yes"], 0);
    case.set_spec(LOCAL);
    let refused = case.run(["state", "migrate", "--to", &other]);
    fabrik_snapshot!(case, refused, @"
    exit code: 1
    ----- stdout -----

    ----- stderr -----
    error: postgres://fabrik@127.0.0.1:[PG-PORT]/postgres (schema other) already holds a state of stack `shop` (serial 1); nothing was moved
    ");
    assert_no_password(&refused);
    assert!(
        case.state_file("shop").exists(),
        "the local state stays in use"
    );
}

/// A record putting a `local.file` resource `name` into the state at `serial`.
fn put(serial: u64, name: &str) -> fabrik::state::journal::Record {
    use fabrik::state::ResourceState;
    use fabrik::state::journal::{Change, Record};
    Record {
        serial,
        change: Change::Put {
            name: name.to_string(),
            resource: Box::new(ResourceState {
                type_name: "local.file".into(),
                id: format!("{name}.txt"),
                spec_hash: "0".repeat(64),
                inputs: Default::default(),
                outputs: Default::default(),
                dependencies: Vec::new(),
                protect: false,
                unverified: false,
                deposed: Vec::new(),
                marked_as: None,
            }),
        },
    }
}

/// The contract of a state store, the same for both backends: `open` gives a new store of one
/// stack (a new connection for PostgreSQL, as another process would have).
fn store_contract(open: &dyn Fn() -> Box<dyn fabrik::state::StateStore>) {
    use fabrik::error::Error;
    use fabrik::state::Broken;
    use fabrik::state::journal::{Change, Record};

    let store = open();
    let mut state = store.load().unwrap();
    assert!(state.lineage.is_empty() && state.resources.is_empty() && state.serial == 0);

    // One writer: a second is refused with the holder; the lock ends with its guard.
    let lock = store.lock("fabrik apply --yes (contract)").unwrap();
    match open().lock("second") {
        Err(Error::Locked { stack, holder }) => {
            assert_eq!(stack, "contract");
            assert_eq!(holder.command, "fabrik apply --yes (contract)");
            assert_eq!(holder.pid, std::process::id());
        }
        other => panic!("a second writer must be refused, not {other:?}"),
    }

    // Begin gives the state its lineage; every appended record is durable at once.
    let mut journal = store.begin(&mut state).unwrap();
    assert_eq!(state.lineage.len(), 32);
    let records = [put(1, "a"), put(1, "b")];
    let lines: Vec<String> = records.iter().map(fabrik::state::journal::encode).collect();
    journal.append(&lines).unwrap();
    drop(journal);
    for r in records {
        state.apply(r);
    }
    assert_eq!(
        open().load().unwrap(),
        state,
        "another reader sees the journal replayed"
    );

    // A commit folds the journal into the snapshot.
    store.commit(&state).unwrap();
    assert_eq!(open().load().unwrap(), state);
    let rm = Record {
        serial: 2,
        change: Change::Remove { name: "a".into() },
    };
    store.record(std::slice::from_ref(&rm)).unwrap();
    state.apply(rm);
    store.commit(&state).unwrap();
    let read = open().load().unwrap();
    assert_eq!(read, state);
    assert_eq!(read.serial, 2);
    assert_eq!(read.resources.keys().collect::<Vec<_>>(), ["b"]);

    // Breaking a held lock names the holder and frees the stack.
    match open().force_unlock().unwrap() {
        Broken::Broken(Some(holder)) => assert_eq!(holder.command, "fabrik apply --yes (contract)"),
        Broken::Broken(None) => panic!("the holder must be named"),
        Broken::NotLocked => panic!("the stack was locked"),
    }
    drop(lock);
    let again = open();
    let relock = again
        .lock("third")
        .expect("the lock is free after unlock --force");
    drop(relock);
    assert!(matches!(open().force_unlock().unwrap(), Broken::NotLocked));

    // A retired state says where it went, until a state is committed there again.
    let mover = open();
    let _held = mover.lock("migrate").unwrap();
    let moving = mover.load().unwrap();
    mover.retire("somewhere else").unwrap();
    match open().load() {
        Err(Error::Moved { to, .. }) => assert_eq!(to, "somewhere else"),
        other => panic!("a retired state must say where it went, not {other:?}"),
    }
    let back = open();
    let _ = back.load();
    back.commit(&moving).unwrap();
    assert_eq!(open().load().unwrap(), moving);
}

#[test]
fn both_backends_keep_the_same_store_contract() {
    use fabrik::state::Backend;
    let dir = tempfile::tempdir().unwrap();
    let files = Backend::Dir(dir.path().join(".fabrik"));
    store_contract(&|| files.store("contract").unwrap());

    let server = Server::start();
    let config = fabrik::state::postgres::Config::parse(&server.url(), Some("contract")).unwrap();
    let database = Backend::Postgres(Box::new(config));
    store_contract(&|| database.store("contract").unwrap());
    assert_eq!(database.stacks().unwrap(), ["contract"]);
    assert_eq!(files.stacks().unwrap(), ["contract"]);
}

#[test]
fn the_url_secret_may_come_from_the_dotenv_file_beside_the_spec() {
    let server = Server::start();
    let case = Case::new().spec(STACK);
    case.write(".env", format!("STATE_DB_URL={}\n", server.url()));
    let out = case.expect(["apply", "--yes"], 0);
    assert_no_password(&out);
    assert_eq!(
        server.sql("SELECT serial FROM fabrik_state.snapshots WHERE stack = 'shop'"),
        "1"
    );
    let out = case.expect(["output", "--json"], 0);
    assert_no_password(&out);
    assert!(out.stdout.contains("content_hash"), "{out}");
}

#[test]
fn applies_killed_at_any_moment_converge_on_postgres() {
    const FILES: usize = 200;
    let server = Server::start();
    let mut yaml = String::from(
        "stack: crashy\nbackend:\n  postgres:\n    url: \"${secret.STATE_DB_URL}\"\nresources:\n",
    );
    for i in 0..FILES {
        let content = if i % 8 == 0 {
            format!("file {i}")
        } else {
            format!("file {i} after ${{f{}.content_hash}}", i - 1)
        };
        yaml.push_str(&format!(
            "  f{i}:\n    type: local.file\n    with: {{ path: out/f{i}.txt, content: \"{content}\" }}\n"
        ));
    }
    let case = Case::new().spec(&yaml).env("STATE_DB_URL", server.url());
    // The first connection creates the schema, so that the journal can be looked at after
    // every kill.
    case.expect(["plan"], 0);
    let mut cut_short = 0;
    for delay in [20, 60, 120, 250, 400] {
        let mut child = case
            .args(["apply", "--yes"])
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("fabrik starts");
        std::thread::sleep(Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        // A kill that landed mid-run leaves journal rows that no commit folded in.
        let open_rows: u32 = server
            .sql("SELECT count(*) FROM fabrik.journal")
            .parse()
            .unwrap();
        cut_short += usize::from(open_rows > 0);
        // Each kill leaves the lock free and the state readable; the next run goes on from it.
        let plan = case.run(["plan"]);
        assert!(plan.code == 0, "{plan}");
    }
    assert!(cut_short > 0, "no kill landed in the middle of an apply");
    let out = case.expect(["apply", "--yes"], 0);
    assert_no_password(&out);
    let plan = case.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "converged:\n{plan}");
    let files = std::fs::read_dir(case.path("out")).unwrap().count();
    assert_eq!(files, FILES, "every file exists once");
    // The snapshot plus the journal rows not folded in yet (a run with nothing to do commits
    // nothing) track every file once.
    let list = case.expect(["state", "list"], 0);
    assert_eq!(list.stdout.lines().count(), FILES, "{list}");
    case.expect(["destroy", "--yes"], 0);
    // The files are gone, and `out/` with them unless a kill landed between making it and
    // noting that it was made.
    let left = std::fs::read_dir(case.path("out")).map_or(0, Iterator::count);
    assert_eq!(left, 0);
    assert_eq!(
        server.sql(
            "SELECT count(*) FROM fabrik.snapshots, jsonb_object_keys(state->'resources') WHERE stack = 'crashy'"
        ),
        "0"
    );
    assert_eq!(server.sql("SELECT count(*) FROM fabrik.journal"), "0");
}

#[test]
fn a_role_that_may_use_but_not_create_the_schema_works_once_it_exists() {
    let server = Server::start();
    let case = Case::new().spec(STACK).env("STATE_DB_URL", server.url());
    // The owner creates the schema on first use...
    case.expect(["plan"], 0);
    // ...and a CI role gets only what it needs to read and write states.
    server.sql(
        "CREATE ROLE runner LOGIN PASSWORD 'runner-Pw7'; \
         GRANT USAGE ON SCHEMA fabrik_state TO runner; \
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA fabrik_state TO runner; \
         GRANT USAGE ON ALL SEQUENCES IN SCHEMA fabrik_state TO runner",
    );
    let runner = server
        .url()
        .replace(&format!("fabrik:{PASSWORD}@"), "runner:runner-Pw7@");
    let out = case
        .args(["apply", "--yes"])
        .env("STATE_DB_URL", &runner)
        .run();
    assert_eq!(out.code, 0, "{out}");
    assert!(!out.stderr.contains("runner-Pw7") && !out.stdout.contains("runner-Pw7"));
    assert_eq!(
        server.sql("SELECT serial FROM fabrik_state.snapshots WHERE stack = 'shop'"),
        "1"
    );
}

const SECRET_STACK: &str = r#"
    stack: shared
    backend:
      postgres:
        url: "${secret.STATE_DB_URL}"
        schema: keyed
    secrets:
      TOKEN: {}
    resources:
      web:
        type: local.file
        with: { path: web.txt, content: "token ${secret.TOKEN}\n" }
"#;

/// Two machines (two directories, each with its own `.fabrik/`) on one stack: the second sees
/// no change where the first applied, because the key masking sensitive inputs is shared.
#[test]
fn machines_sharing_a_stack_hash_its_secrets_alike() {
    let server = Server::start();
    let machine = || {
        Case::new()
            .spec(SECRET_STACK)
            .env("STATE_DB_URL", server.url())
            .env("TOKEN", "tok-8Hq2")
    };
    let first = machine();
    first.expect(["apply", "--yes"], 0);
    assert!(
        !first.exists(".fabrik/shared.key"),
        "the key is kept in the database, not beside the spec"
    );
    let second = machine();
    let plan = second.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "the second machine sees no change:\n{plan}");
    assert_eq!(server.sql("SELECT count(*) FROM keyed.keys"), "1");
}

#[test]
fn state_migrate_carries_the_masking_key_so_secrets_do_not_show_as_changed() {
    let server = Server::start();
    let local = SECRET_STACK.replace(
        "    backend:\n      postgres:\n        url: \"${secret.STATE_DB_URL}\"\n        schema: keyed\n",
        "",
    );
    let laptop = Case::new()
        .spec(&local)
        .env("STATE_DB_URL", server.url())
        .env("TOKEN", "tok-8Hq2");
    laptop.expect(["apply", "--yes"], 0);
    assert!(laptop.exists(".fabrik/shared.key"));
    let url = format!("{}?schema=keyed", server.url());
    laptop.expect(["state", "migrate", "--to", &url], 0);

    let runner = Case::new()
        .spec(SECRET_STACK)
        .env("STATE_DB_URL", server.url())
        .env("TOKEN", "tok-8Hq2");
    let plan = runner.run(["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, 0, "the stack's hashes still match:\n{plan}");
    assert_no_password(&plan);

    // And back into a fresh directory: the key comes along.
    let back = runner.path("elsewhere");
    runner.expect(["state", "migrate", "--to", back.to_str().unwrap()], 0);
    assert!(back.join("shared.key").exists());
}

//! A stateful fake of Uptime Kuma 2.5's Socket.IO API, for the `uptimekuma` provider's tests.
//!
//! A real websocket server on 127.0.0.1 (a random port) that speaks Engine.IO v4 / Socket.IO v5
//! text frames and keeps monitors, notifications, tags and their links. It behaves as the real
//! server was observed to (each point below was seen on a running 2.5.3):
//! - on connect: the open packet, then `40`, then `info`, and only after a short while (the real
//!   server awaits `sendInfo` first) its handlers exist and it pushes `loginRequired`; an event
//!   sent before that push is dropped without an answer;
//! - `login` and `logout` share one bucket of 20 a minute for the whole server; past it even a
//!   right password gets `Too frequently, try again later.`; with 2FA on and no code the answer
//!   is `{tokenRequired: true}`; `loginByToken` is not limited;
//! - before a login, management events answer `You are not logged in.`;
//! - `add` needs `accepted_statuscodes` (strings) and `conditions`, and a key with no column
//!   fails with the SQL error, which quotes the whole insert, values (secrets) included; a link
//!   to a notification that does not exist fails after the monitor is stored, which stays;
//! - `editMonitor` replaces the monitor: the fixed list of keys it reads is taken from what it
//!   is sent, `port`, `proxyId` and `retryOnlyOnStatusCodeFailure` are reset when missing, and
//!   the notification links become exactly `notificationIDList` (none when it is missing; an
//!   array fails on the foreign key after the monitor row is saved and its links dropped);
//!   `active` is ignored (pause and resume have their own events);
//! - names are not unique; `deleteMonitor` of an unknown id answers success, and its
//!   `deleteMonitorFromList` push comes after the ack, while the pushes of `add`, `editMonitor`,
//!   pause, resume and `getMonitorList` come before it;
//! - the server pings (`2`) every ping interval and drops a client that has not answered (`3`)
//!   within the ping timeout; heartbeats (`heartbeat`, `avgPing`, `uptime`) flow for active
//!   monitors, pushes a client must ignore;
//! - a message over 1,000,000 bytes closes the connection.
//!
//! Frames that break the protocol (an event without an ack id, an unknown event, a packet that
//! does not parse, an event before `loginRequired`, a message too large) are recorded as
//! violations: tests end with [`FakeKuma::assert_no_violations`].

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tungstenite::{Message, WebSocket};

/// The user the fake knows.
pub const USERNAME: &str = "admin";
/// Its password.
pub const PASSWORD: &str = "Kuma-Test-Passw0rd!";
/// The JWT a login returns (it never expires, as the real one).
pub const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VybmFtZSI6ImFkbWluIn0.fake-kuma-signature";

/// Keys `editMonitor` reads from what it is sent (server.js); the rest are left as they were.
const EDITABLE: [&str; 40] = [
    "name",
    "description",
    "parent",
    "type",
    "url",
    "method",
    "body",
    "headers",
    "basic_auth_user",
    "basic_auth_pass",
    "authMethod",
    "hostname",
    "port",
    "interval",
    "retryInterval",
    "resendInterval",
    "maxretries",
    "timeout",
    "upsideDown",
    "ignoreTls",
    "expiryNotification",
    "maxredirects",
    "accepted_statuscodes",
    "keyword",
    "invertKeyword",
    "jsonPath",
    "expectedValue",
    "jsonPathOperator",
    "dns_resolve_type",
    "dns_resolve_server",
    "pushToken",
    "proxyId",
    "retryOnlyOnStatusCodeFailure",
    "conditions",
    "packetSize",
    "weight",
    "mqttTopic",
    "databaseConnectionString",
    "snmpVersion",
    "cacheBust",
];
/// Keys of a monitor's JSON that are not columns: `add` drops them.
const READ_ONLY: [&str; 9] = [
    "id",
    "path",
    "pathName",
    "childrenIDs",
    "forceInactive",
    "tags",
    "maintenance",
    "screenshot",
    "includeSensitiveData",
];

#[derive(Debug)]
struct State {
    monitors: BTreeMap<i64, Map<String, Value>>,
    links: Vec<(i64, i64)>,
    notifications: BTreeMap<i64, (String, bool, String)>,
    tags: BTreeMap<i64, (String, String)>,
    tag_rows: Vec<(i64, i64, String)>,
    next_id: i64,
    logins: Vec<Instant>,
    login_limit: usize,
    two_factor: bool,
    ping_interval: Duration,
    ping_timeout: Duration,
    ready_delay: Duration,
    /// Events whose ack is held back this long after the change is made.
    ack_delays: BTreeMap<String, Duration>,
    /// The next `add` fails as on a locked database, quoting its insert (values included).
    refuse_next_add: bool,
    violations: Vec<String>,
    events: Vec<String>,
    dropped_clients: usize,
}

/// A running fake; it stops when dropped.
pub struct FakeKuma {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl FakeKuma {
    /// Starts a fake with no monitors.
    pub fn start() -> FakeKuma {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("bound").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let state = Arc::new(Mutex::new(State {
            monitors: BTreeMap::new(),
            links: Vec::new(),
            notifications: BTreeMap::new(),
            tags: BTreeMap::new(),
            tag_rows: Vec::new(),
            next_id: 1,
            logins: Vec::new(),
            login_limit: 20,
            two_factor: false,
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            ready_delay: Duration::from_millis(30),
            ack_delays: BTreeMap::new(),
            refuse_next_add: false,
            violations: Vec::new(),
            events: Vec::new(),
            dropped_clients: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopping) = (Arc::clone(&state), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (state, stop) = (Arc::clone(&shared), Arc::clone(&stopping));
                        std::thread::spawn(move || serve(stream, &state, &stop));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeKuma { port, state, stop }
    }

    /// The address a spec gives the provider.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Turns two-factor authentication on: a password login then needs a code.
    pub fn set_two_factor(&self, on: bool) {
        self.state().two_factor = on;
    }

    /// Uses up the server's login bucket, as other clients would have.
    pub fn exhaust_logins(&self) {
        let mut s = self.state();
        let now = Instant::now();
        let limit = s.login_limit;
        s.logins.extend(std::iter::repeat_n(now, limit));
    }

    /// Heartbeats every `interval`, a client dropped after `timeout` without an answer.
    pub fn set_ping(&self, interval: Duration, timeout: Duration) {
        let mut s = self.state();
        s.ping_interval = interval;
        s.ping_timeout = timeout;
    }

    /// How long after the namespace connect the server's handlers are ready (`loginRequired`).
    pub fn set_ready_delay(&self, delay: Duration) {
        self.state().ready_delay = delay;
    }

    /// Holds back the ack of `event` (after the change is made) for `delay`.
    pub fn delay_ack(&self, event: &str, delay: Duration) {
        self.state().ack_delays.insert(event.to_string(), delay);
    }

    /// Makes the next `add` fail with an SQL error that quotes the whole insert, values (and so
    /// secrets) included, as a locked SQLite database does.
    pub fn refuse_next_add(&self) {
        self.state().refuse_next_add = true;
    }

    /// Every monitor as `getMonitor` shows it, by id.
    pub fn monitors(&self) -> Vec<Value> {
        let s = self.state();
        s.monitors.keys().map(|id| s.json(*id)).collect()
    }

    /// Every notification as `notificationList` shows it.
    pub fn notifications(&self) -> Vec<Value> {
        self.state().notification_list()
    }

    /// Adds a monitor as someone in the UI would (no fabrik marker); returns its id.
    pub fn add_monitor(&self, monitor: Value) -> i64 {
        let mut s = self.state();
        let Value::Object(given) = monitor else {
            panic!("a monitor object")
        };
        // What the UI's form sends beside the fields filled in.
        let mut m = json!({"interval": 60, "retryInterval": 60, "timeout": 48, "description": "",
                           "expiryNotification": false, "accepted_statuscodes": ["200-299"],
                           "conditions": []})
        .as_object()
        .expect("an object")
        .clone();
        m.extend(given);
        s.insert_monitor(m)
    }

    /// Changes monitor `id` as an edit in the UI would.
    pub fn edit_monitor(&self, id: i64, changes: Value) {
        let mut s = self.state();
        let m = s.monitors.get_mut(&id).expect("a monitor");
        for (k, v) in changes.as_object().expect("an object") {
            m.insert(k.clone(), v.clone());
        }
    }

    /// Links monitor `monitor` to notification `notification`, as a tick in the UI would.
    pub fn link(&self, monitor: i64, notification: i64) {
        self.state().links.push((monitor, notification));
    }

    /// Adds a notification as the UI would; returns its id.
    pub fn add_notification(&self, config: Value) -> i64 {
        let mut s = self.state();
        let id = s.next();
        let name = config["name"].as_str().unwrap_or_default().to_string();
        s.notifications
            .insert(id, (name, false, config.to_string()));
        id
    }

    /// The names of the events clients sent, in order.
    pub fn events(&self) -> Vec<String> {
        self.state().events.clone()
    }

    /// How many clients were dropped for not answering a heartbeat.
    pub fn dropped_clients(&self) -> usize {
        self.state().dropped_clients
    }

    /// Panics when a client broke the protocol.
    pub fn assert_no_violations(&self) {
        let v = self.state().violations.clone();
        assert!(v.is_empty(), "protocol violations: {v:#?}");
    }
}

impl Drop for FakeKuma {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl State {
    fn next(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id - 1
    }

    fn insert_monitor(&mut self, mut m: Map<String, Value>) -> i64 {
        let id = self.next();
        for key in READ_ONLY {
            m.remove(key);
        }
        let links = m.remove("notificationIDList");
        let defaults = json!({
            "name": null, "description": null, "parent": null, "url": null, "method": "GET",
            "hostname": null, "port": null, "maxretries": 0, "weight": 2000, "active": true,
            "type": null, "timeout": 0, "interval": 20, "retryInterval": 0, "resendInterval": 0,
            "keyword": null, "invertKeyword": false, "expiryNotification": true,
            "ignoreTls": false, "upsideDown": false, "maxredirects": 10, "body": null,
            "headers": null, "basic_auth_user": null, "basic_auth_pass": null, "authMethod": null,
            "pushToken": null, "jsonPath": null, "expectedValue": null, "jsonPathOperator": null,
            "dns_resolve_type": null, "dns_resolve_server": null, "proxyId": null,
            "retryOnlyOnStatusCodeFailure": false, "conditions": [],
            "accepted_statuscodes": ["200-299"],
        });
        let mut stored = defaults.as_object().expect("an object").clone();
        stored.extend(m);
        self.monitors.insert(id, stored);
        if let Some(Value::Object(links)) = links {
            for (n, on) in links {
                if on == Value::Bool(true)
                    && let Ok(n) = n.parse()
                {
                    self.links.push((id, n));
                }
            }
        }
        id
    }

    /// A monitor as `toJSON(includeSensitiveData)` gives it.
    fn json(&self, id: i64) -> Value {
        let mut m = self.monitors[&id].clone();
        m.insert("id".into(), json!(id));
        let name = m.get("name").cloned().unwrap_or(Value::Null);
        m.insert("path".into(), json!([name]));
        m.insert("pathName".into(), name);
        m.insert("childrenIDs".into(), json!([]));
        m.insert("forceInactive".into(), json!(false));
        m.insert("maintenance".into(), json!(false));
        m.insert("includeSensitiveData".into(), json!(true));
        let links: Map<String, Value> = self
            .links
            .iter()
            .filter(|(m, _)| *m == id)
            .map(|(_, n)| (n.to_string(), json!(true)))
            .collect();
        m.insert("notificationIDList".into(), Value::Object(links));
        let tags: Vec<Value> = self
            .tag_rows
            .iter()
            .filter(|(_, m, _)| *m == id)
            .map(|(t, m, v)| {
                let (name, color) = self.tags.get(t).cloned().unwrap_or_default();
                json!({"id": t, "tag_id": t, "monitor_id": m, "value": v, "name": name, "color": color})
            })
            .collect();
        m.insert("tags".into(), Value::Array(tags));
        Value::Object(m)
    }

    fn monitor_list(&self) -> Value {
        Value::Object(
            self.monitors
                .keys()
                .map(|id| (id.to_string(), self.json(*id)))
                .collect(),
        )
    }

    fn notification_list(&self) -> Vec<Value> {
        self.notifications
            .iter()
            .map(|(id, (name, default, config))| {
                json!({"id": id, "name": name, "active": true, "userId": 1,
                       "isDefault": default, "config": config})
            })
            .collect()
    }
}

/// What a connection's handler sends back: pushes before the ack, the ack, pushes after it.
#[derive(Default)]
struct Reply {
    before: Vec<(String, Vec<Value>)>,
    ack: Option<Vec<Value>>,
    after: Vec<(String, Vec<Value>)>,
    delay: Duration,
}

// The handshake callback's error type is tungstenite's, large or not.
#[allow(clippy::result_large_err)]
fn serve(stream: TcpStream, state: &Arc<Mutex<State>>, stop: &AtomicBool) {
    let lock = || {
        state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    let _ = stream.set_nonblocking(false);
    let mut path_ok = true;
    let Ok(mut ws) = tungstenite::accept_hdr(
        stream,
        |req: &tungstenite::handshake::server::Request, resp| {
            let uri = req.uri().to_string();
            path_ok = uri.starts_with("/socket.io/")
                && uri.contains("EIO=4")
                && uri.contains("transport=websocket");
            Ok(resp)
        },
    ) else {
        return;
    };
    if !path_ok {
        lock().violations.push(
            "websocket opened on a path other than /socket.io/?EIO=4&transport=websocket".into(),
        );
        return;
    }
    let _ = ws
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(10)));
    let (ping_interval, ping_timeout, ready_delay) = {
        let s = lock();
        (s.ping_interval, s.ping_timeout, s.ready_delay)
    };
    let open = json!({"sid": "fake", "upgrades": [], "pingInterval": ping_interval.as_millis() as u64,
                      "pingTimeout": ping_timeout.as_millis() as u64, "maxPayload": 1_000_000});
    if ws.send(Message::text(format!("0{open}"))).is_err() {
        return;
    }
    let mut connected: Option<Instant> = None;
    let mut ready = false;
    let mut logged_in = false;
    let mut last_ping = Instant::now();
    let mut awaiting_pong: Option<Instant> = None;
    let mut last_beat = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if let Some(at) = connected
            && !ready
            && at.elapsed() >= ready_delay
        {
            ready = true;
            let _ = push(&mut ws, "loginRequired", &[]);
        }
        if awaiting_pong.is_some_and(|at| at.elapsed() > ping_timeout) {
            lock().dropped_clients += 1;
            let _ = ws.close(None);
            return;
        }
        if awaiting_pong.is_none() && last_ping.elapsed() >= ping_interval {
            if ws.send(Message::text("2")).is_err() {
                return;
            }
            last_ping = Instant::now();
            awaiting_pong = Some(last_ping);
        }
        if logged_in && last_beat.elapsed() >= Duration::from_millis(200) {
            last_beat = Instant::now();
            let active: Vec<i64> = lock()
                .monitors
                .iter()
                .filter(|(_, m)| m.get("active") == Some(&json!(true)))
                .map(|(id, _)| *id)
                .collect();
            for id in active {
                let _ = push(
                    &mut ws,
                    "heartbeat",
                    &[
                        json!({"monitorID": id, "status": 1, "msg": "200 - OK", "ping": 3, "important": false, "retries": 0}),
                    ],
                );
                let _ = push(
                    &mut ws,
                    "uptime",
                    &[json!(id.to_string()), json!(24), json!(1)],
                );
            }
        }
        let text = match ws.read() {
            Ok(Message::Text(text)) => text.to_string(),
            Ok(Message::Close(_)) => return,
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                continue;
            }
            Err(_) => return,
        };
        if text.len() > 1_000_000 {
            lock().violations.push(format!(
                "a message of {} bytes (the limit is 1,000,000)",
                text.len()
            ));
            return;
        }
        let violation = |what: String| lock().violations.push(what);
        if text == "3" {
            awaiting_pong = None;
            continue;
        }
        if text == "40" {
            if connected.is_some() {
                violation("a second namespace connect".into());
                continue;
            }
            connected = Some(Instant::now());
            let _ = ws.send(Message::text(r#"40{"sid":"fake-socket"}"#));
            let _ = push(
                &mut ws,
                "info",
                &[
                    json!({"primaryBaseURL": null, "serverTimezone": "UTC", "serverTimezoneOffset": "+00:00"}),
                ],
            );
            continue;
        }
        let Some((ack, name, args)) = parse_event(&text) else {
            violation(format!(
                "a frame that is not a Socket.IO event ({} bytes)",
                text.len()
            ));
            continue;
        };
        if !ready {
            // The real server has no handler yet: the event is lost without an answer.
            violation(format!(
                "`{name}` sent before `loginRequired` (the real server drops it)"
            ));
            continue;
        }
        let Some(ack) = ack else {
            violation(format!("`{name}` sent without an ack id"));
            continue;
        };
        lock().events.push(name.clone());
        let reply = handle(&mut lock(), &mut logged_in, &name, &args);
        let Some(reply) = reply else {
            violation(format!("`{name}` is not an event Uptime Kuma handles"));
            continue;
        };
        for (event, args) in &reply.before {
            let _ = push(&mut ws, event, args);
        }
        if !reply.delay.is_zero() {
            std::thread::sleep(reply.delay);
        }
        if let Some(args) = reply.ack {
            let _ = ws.send(Message::text(format!("43{ack}{}", Value::Array(args))));
        }
        for (event, args) in &reply.after {
            let _ = push(&mut ws, event, args);
        }
    }
}

fn push(ws: &mut WebSocket<TcpStream>, name: &str, args: &[Value]) -> tungstenite::Result<()> {
    let mut items = vec![json!(name)];
    items.extend(args.iter().cloned());
    ws.send(Message::text(format!("42{}", Value::Array(items))))
}

/// `42<id>["name",args…]`: the ack id, the name, the arguments.
fn parse_event(text: &str) -> Option<(Option<u64>, String, Vec<Value>)> {
    let rest = text.strip_prefix("42")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack = if digits == 0 {
        None
    } else {
        rest[..digits].parse().ok()
    };
    let Ok(Value::Array(mut items)) = serde_json::from_str::<Value>(&rest[digits..]) else {
        return None;
    };
    if items.is_empty() {
        return None;
    }
    let Value::String(name) = items.remove(0) else {
        return None;
    };
    Some((ack, name, items))
}

fn ok(value: Value) -> Reply {
    Reply {
        ack: Some(vec![value]),
        ..Reply::default()
    }
}

fn fail(msg: &str) -> Reply {
    ok(json!({"ok": false, "msg": msg}))
}

fn camel_to_snake(key: &str) -> String {
    let mut out = String::new();
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The answer to one event; `None` for an event the server has no handler for.
#[allow(clippy::too_many_lines)]
fn handle(s: &mut State, logged_in: &mut bool, name: &str, args: &[Value]) -> Option<Reply> {
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::Null);
    let id_arg = |i: usize| match arg(i) {
        Value::Number(n) => n.as_i64(),
        Value::String(t) => t.parse().ok(),
        _ => None,
    };
    let delay = s.ack_delays.get(name).copied().unwrap_or_default();
    let mut reply = match name {
        "login" | "logout" => {
            let now = Instant::now();
            s.logins
                .retain(|t| now.duration_since(*t) < Duration::from_secs(60));
            if s.logins.len() >= s.login_limit {
                return Some(fail("Too frequently, try again later."));
            }
            s.logins.push(now);
            if name == "logout" {
                *logged_in = false;
                return Some(Reply {
                    ack: Some(vec![]),
                    ..Reply::default()
                });
            }
            let creds = arg(0);
            if creds["username"] != USERNAME || creds["password"] != PASSWORD {
                return Some(ok(
                    json!({"ok": false, "msg": "authIncorrectCreds", "msgi18n": true}),
                ));
            }
            if s.two_factor && creds["token"].as_str().unwrap_or_default().is_empty() {
                return Some(ok(json!({"tokenRequired": true})));
            }
            *logged_in = true;
            Reply {
                before: s.after_login(),
                ..ok(json!({"ok": true, "token": JWT}))
            }
        }
        "loginByToken" => {
            if arg(0) != JWT {
                return Some(ok(
                    json!({"ok": false, "msg": "authInvalidToken", "msgi18n": true}),
                ));
            }
            *logged_in = true;
            Reply {
                before: s.after_login(),
                ..ok(json!({"ok": true}))
            }
        }
        "needSetup" => ok(json!(false)),
        _ if !*logged_in && is_known(name) => fail("You are not logged in."),
        "getMonitorList" => Reply {
            before: vec![("monitorList".into(), vec![s.monitor_list()])],
            ..ok(json!({"ok": true}))
        },
        "getMonitor" => match id_arg(0).filter(|id| s.monitors.contains_key(id)) {
            Some(id) => {
                let mut m = s.json(id);
                m["path"] = json!([null]);
                m["pathName"] = json!("");
                ok(json!({"ok": true, "monitor": m}))
            }
            None => fail("Cannot read properties of null (reading 'id')"),
        },
        "add" => {
            let Value::Object(m) = arg(0) else {
                return Some(fail(
                    "Cannot read properties of undefined (reading 'every')",
                ));
            };
            if let Some(r) = check_monitor(&m, true) {
                return Some(r);
            }
            if std::mem::take(&mut s.refuse_next_add) {
                return Some(fail(&format!(
                    "{} - SQLITE_BUSY: database is locked",
                    insert_statement(&m)
                )));
            }
            // The monitor row is stored first, its links after: a link to a notification that
            // does not exist fails on the foreign key, and the monitor stays (not atomic).
            let dangling = match m.get("notificationIDList") {
                Some(Value::Object(links)) => links.keys().any(|n| {
                    n.parse()
                        .map_or(true, |n: i64| !s.notifications.contains_key(&n))
                }),
                Some(Value::Array(list)) => !list.is_empty(),
                _ => false,
            };
            let id = s.insert_monitor(m);
            if dangling {
                s.links.retain(|(m, _)| *m != id);
                return Some(fail("SQLITE_CONSTRAINT: FOREIGN KEY constraint failed"));
            }
            Reply {
                before: vec![(
                    "updateMonitorIntoList".into(),
                    vec![json!({ id.to_string(): s.json(id) })],
                )],
                ..ok(json!({"ok": true, "msg": "successAdded", "msgi18n": true, "monitorID": id}))
            }
        }
        "editMonitor" => {
            let Value::Object(sent) = arg(0) else {
                return Some(fail("Cannot read properties of undefined (reading 'id')"));
            };
            let Some(id) = sent
                .get("id")
                .and_then(Value::as_i64)
                .filter(|id| s.monitors.contains_key(id))
            else {
                return Some(fail("Cannot read properties of null (reading 'user_id')"));
            };
            if let Some(r) = check_monitor(&sent, false) {
                return Some(r);
            }
            let stored = s.monitors.get_mut(&id).expect("checked");
            for key in EDITABLE {
                match sent.get(key) {
                    Some(v) => {
                        stored.insert(key.into(), v.clone());
                    }
                    None if matches!(key, "port" | "proxyId") => {
                        stored.insert(key.into(), Value::Null);
                    }
                    None if key == "retryOnlyOnStatusCodeFailure" => {
                        stored.insert(key.into(), json!(false));
                    }
                    None => {}
                }
            }
            // Saved; then the links are deleted and made again from what was sent.
            s.links.retain(|(m, _)| *m != id);
            match sent.get("notificationIDList") {
                Some(Value::Object(links)) => {
                    for (n, on) in links {
                        let n: i64 = n.parse().unwrap_or(-1);
                        if on == &json!(true) {
                            if !s.notifications.contains_key(&n) {
                                return Some(fail("FOREIGN KEY constraint failed"));
                            }
                            s.links.push((id, n));
                        }
                    }
                }
                Some(Value::Array(_)) => return Some(fail("FOREIGN KEY constraint failed")),
                _ => {}
            }
            Reply {
                before: vec![(
                    "updateMonitorIntoList".into(),
                    vec![json!({ id.to_string(): s.json(id) })],
                )],
                ..ok(json!({"ok": true, "msg": "Saved.", "msgi18n": true, "monitorID": id}))
            }
        }
        "pauseMonitor" | "resumeMonitor" => {
            let Some(id) = id_arg(0).filter(|id| s.monitors.contains_key(id)) else {
                return Some(fail("You do not own this monitor."));
            };
            let active = name == "resumeMonitor";
            s.monitors
                .get_mut(&id)
                .expect("checked")
                .insert("active".into(), json!(active));
            let msg = if active {
                "successResumed"
            } else {
                "successPaused"
            };
            Reply {
                before: vec![(
                    "updateMonitorIntoList".into(),
                    vec![json!({ id.to_string(): s.json(id) })],
                )],
                ..ok(json!({"ok": true, "msg": msg, "msgi18n": true}))
            }
        }
        "deleteMonitor" => {
            let id = id_arg(0).unwrap_or(0);
            s.monitors.remove(&id);
            s.links.retain(|(m, _)| *m != id);
            s.tag_rows.retain(|(_, m, _)| *m != id);
            Reply {
                after: vec![("deleteMonitorFromList".into(), vec![json!(id)])],
                ..ok(json!({"ok": true, "msg": "successDeleted", "msgi18n": true}))
            }
        }
        "getTags" => {
            let tags: Vec<Value> = s
                .tags
                .iter()
                .map(|(id, (n, c))| json!({"id": id, "name": n, "color": c}))
                .collect();
            ok(json!({"ok": true, "tags": tags}))
        }
        "addTag" => {
            let tag = arg(0);
            let Some(color) = tag["color"].as_str() else {
                return Some(fail(&format!(
                    "insert into `tag` (`name`) values ('{}') - SQLITE_CONSTRAINT: NOT NULL constraint failed: tag.color",
                    tag["name"].as_str().unwrap_or_default()
                )));
            };
            let id = s.next();
            let name = tag["name"].as_str().unwrap_or_default().to_string();
            s.tags.insert(id, (name.clone(), color.to_string()));
            ok(json!({"ok": true, "tag": {"id": id, "name": name, "color": color}}))
        }
        "addMonitorTag" | "deleteMonitorTag" => {
            let (tag, monitor, value) = (
                id_arg(0).unwrap_or(0),
                id_arg(1).unwrap_or(0),
                arg(2).as_str().unwrap_or_default().to_string(),
            );
            if name == "addMonitorTag" {
                if !s.tags.contains_key(&tag) || !s.monitors.contains_key(&monitor) {
                    return Some(fail("FOREIGN KEY constraint failed"));
                }
                s.tag_rows.push((tag, monitor, value));
            } else {
                s.tag_rows.retain(|r| *r != (tag, monitor, value.clone()));
            }
            let mut r = ok(
                json!({"ok": true, "msg": if name == "addMonitorTag" { "successAdded" } else { "successDeleted" }, "msgi18n": true}),
            );
            if s.monitors.contains_key(&monitor) {
                r.before = vec![(
                    "updateMonitorIntoList".into(),
                    vec![json!({ monitor.to_string(): s.json(monitor) })],
                )];
            }
            r
        }
        "addNotification" => {
            let notification = arg(0);
            let id = match id_arg(1) {
                Some(id) if s.notifications.contains_key(&id) => id,
                Some(_) => return Some(fail("notification not found")),
                None => s.next(),
            };
            let name = notification["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let default = notification["isDefault"] == json!(true);
            s.notifications
                .insert(id, (name, default, notification.to_string()));
            Reply {
                before: vec![(
                    "notificationList".into(),
                    vec![Value::Array(s.notification_list())],
                )],
                ..ok(json!({"ok": true, "msg": "Saved.", "msgi18n": true, "id": id}))
            }
        }
        "deleteNotification" => {
            let Some(id) = id_arg(0).filter(|id| s.notifications.contains_key(id)) else {
                return Some(fail("notification not found"));
            };
            s.notifications.remove(&id);
            s.links.retain(|(_, n)| *n != id);
            Reply {
                before: vec![(
                    "notificationList".into(),
                    vec![Value::Array(s.notification_list())],
                )],
                ..ok(json!({"ok": true, "msg": "successDeleted", "msgi18n": true}))
            }
        }
        _ => return None,
    };
    reply.delay = delay;
    Some(reply)
}

fn is_known(name: &str) -> bool {
    [
        "getMonitorList",
        "getMonitor",
        "add",
        "editMonitor",
        "pauseMonitor",
        "resumeMonitor",
        "deleteMonitor",
        "getTags",
        "addTag",
        "addMonitorTag",
        "deleteMonitorTag",
        "addNotification",
        "deleteNotification",
    ]
    .contains(&name)
}

/// What `add` and `editMonitor` refuse, with the server's own words: SQL errors quote the
/// statement, values included.
fn check_monitor(m: &Map<String, Value>, adding: bool) -> Option<Reply> {
    let Some(Value::Array(codes)) = m.get("accepted_statuscodes") else {
        return Some(fail(
            "Cannot read properties of undefined (reading 'every')",
        ));
    };
    if !codes.iter().all(Value::is_string) {
        return Some(fail("Accepted status codes are not all strings"));
    }
    for (key, what) in [
        ("interval", "Interval"),
        ("retryInterval", "Retry interval"),
    ] {
        if m.get(key).and_then(Value::as_f64).is_some_and(|v| v < 1.0) {
            return Some(fail(&format!("{what} cannot be less than 1 seconds")));
        }
    }
    if let Some(Value::String(h)) = m.get("headers")
        && serde_json::from_str::<Value>(h).is_err()
    {
        return Some(fail("Headers must be valid JSON: Unexpected token"));
    }
    if !adding {
        return None;
    }
    let insert = || insert_statement(m);
    if !m.contains_key("conditions") {
        return Some(fail(&format!(
            "{} - SQLITE_CONSTRAINT: NOT NULL constraint failed: monitor.conditions",
            insert()
        )));
    }
    let known = |k: &str| {
        EDITABLE.contains(&k)
            || READ_ONLY.contains(&k)
            || matches!(k, "active" | "notificationIDList")
    };
    if let Some(bad) = m.keys().find(|k| !known(k)) {
        return Some(fail(&format!(
            "{} - SQLITE_ERROR: table monitor has no column named {}",
            insert(),
            camel_to_snake(bad)
        )));
    }
    None
}

impl State {
    /// The pushes a login sends, before its ack.
    fn after_login(&self) -> Vec<(String, Vec<Value>)> {
        vec![
            ("monitorList".into(), vec![self.monitor_list()]),
            (
                "monitorTypeList".into(),
                vec![json!({"http": {"supportsConditions": false}})],
            ),
            ("maintenanceList".into(), vec![json!({})]),
            (
                "info".into(),
                vec![json!({"version": "2.5.3", "latestVersion": null, "dbType": "sqlite"})],
            ),
            (
                "notificationList".into(),
                vec![Value::Array(self.notification_list())],
            ),
            ("proxyList".into(), vec![json!([])]),
            ("statusPageList".into(), vec![json!({})]),
            ("initServerTimezone".into(), vec![]),
        ]
    }
}

/// The insert knex would run for monitor `m`: SQL errors quote it whole, values included.
fn insert_statement(m: &Map<String, Value>) -> String {
    let kept = |k: &str| !READ_ONLY.contains(&k) && k != "notificationIDList";
    let columns: Vec<String> = m
        .keys()
        .filter(|k| kept(k))
        .map(|k| format!("`{}`", camel_to_snake(k)))
        .collect();
    let values: Vec<String> = m
        .iter()
        .filter(|(k, _)| kept(k))
        .map(|(_, v)| match v {
            Value::String(s) => format!("'{s}'"),
            other => other.to_string(),
        })
        .collect();
    format!(
        "insert into `monitor` ({}) values ({})",
        columns.join(", "),
        values.join(", ")
    )
}

//! One Uptime Kuma session per run: a websocket, one login, and the events every call sends
//! through it, one at a time.
//!
//! The server's traps this module absorbs (docs/architecture.md, "Providers"):
//! - its handlers exist only once it has pushed `loginRequired` (or `autoLogin`): anything
//!   emitted earlier is dropped without an answer, so nothing is sent before that push;
//! - login is rate limited for the whole server (20 a minute), so a run logs in once, keeps the
//!   JWT the login returns and, when the connection is lost while idle (nobody answered the
//!   heartbeat during a long deployment of another provider), reconnects with `loginByToken`,
//!   which is not limited;
//! - pushes arrive between an event and its ack, for every user's session: those that carry
//!   the monitor and notification lists refresh the copies kept here, the rest are skipped;
//! - a refusal's `msg` is a raw JavaScript or SQL error that may quote the request, secrets
//!   included: every message is cleaned of the secrets the call sent before anyone sees it.
//!
//! Calls from parallel workers share the session under a mutex: the protocol would allow
//! several events in flight (acks carry ids), but Uptime Kuma handles a user's events one by
//! one anyway, and one call at a time keeps the pushes it reads its own.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use fabrik_provider::{Cancel, Error, ErrorKind, Result};
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use crate::socket::{self, Frame};

/// How long a read blocks before the loop looks at the clock and the cancel signal again.
const TICK: Duration = Duration::from_millis(50);
/// How long connecting and the server's pushes up to `loginRequired` may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long an event may wait for its ack. Uptime Kuma answers in milliseconds; a monitor
/// `add` on a busy SQLite database can take seconds.
const ACK_TIMEOUT: Duration = Duration::from_secs(60);
/// Uptime Kuma closes the connection on a message over 1,000,000 bytes.
const MAX_MESSAGE: usize = 1_000_000;

/// How the provider logs in.
#[derive(Clone)]
pub enum Credentials {
    /// `login {username, password, token: ""}`.
    Password { username: String, password: String },
    /// `loginByToken jwt`: the JWT an earlier login returned.
    Token(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Password { username, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .field("password", &"(sensitive)")
                .finish(),
            Credentials::Token(_) => f.write_str("Token((sensitive))"),
        }
    }
}

/// Where the server is.
#[derive(Debug, Clone)]
pub struct Address {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// The base URL as configured, without a trailing slash (push URLs start with it).
    pub base: String,
}

impl Address {
    /// Reads `http://host[:port][/]` or `https://…`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`] for anything else.
    pub fn parse(url: &str) -> Result<Self> {
        let invalid = |why: &str| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("`url` of provider uptimekuma {why}, not {url:?}"),
            )
        };
        let base = url.trim_end_matches('/');
        let (tls, rest) = if let Some(rest) = base.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = base.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(invalid("must start with http:// or https://"));
        };
        if rest.contains('/') || rest.contains('?') || rest.contains('@') {
            return Err(invalid(
                "must be the server's address alone, such as \"http://127.0.0.1:3001\"",
            ));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || rest.starts_with('[') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| invalid("has a port that is not a number"))?;
                (host, port)
            }
            _ => (rest, if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(invalid("names no host"));
        }
        Ok(Address {
            tls,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            base: base.to_string(),
        })
    }
}

/// The connection to one server, shared by every call of a run.
pub struct Api {
    address: Address,
    credentials: Credentials,
    cancel: Cancel,
    session: Mutex<Option<Session>>,
    /// The JWT the first login returned: a session opened again logs in with it, as
    /// `loginByToken` does not count against the server's login limit.
    jwt: Mutex<Option<String>>,
    /// Set once a login was refused: the next calls say the same without trying again (each
    /// try would count against the server's login limit).
    refused: Mutex<Option<Error>>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("address", &self.address)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// What the server pushed about monitors and notifications, as of the last event.
#[derive(Debug, Default, Clone)]
pub struct Lists {
    /// `monitorList` and `updateMonitorIntoList`, by id.
    pub monitors: BTreeMap<i64, Value>,
    /// `notificationList`.
    pub notifications: Vec<Value>,
}

struct Session {
    ws: WebSocket<Stream>,
    next_id: u64,
    lists: Lists,
}

impl Api {
    pub fn new(address: Address, credentials: Credentials, cancel: Cancel) -> Self {
        Api {
            address,
            credentials,
            cancel,
            session: Mutex::new(None),
            jwt: Mutex::new(None),
            refused: Mutex::new(None),
        }
    }

    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Sends `event` with `args` and returns the first argument of its ack once it says
    /// `ok: true`; the lists the pushes on the way carried are in [`Api::lists`].
    /// `secrets` are values of the request that a refusal must not quote.
    ///
    /// # Errors
    /// The refusal (`ok: false`) as [`ErrorKind::InvalidInput`] with the server's message,
    /// cleaned of `secrets`; a connection that fails as [`ErrorKind::Transient`]; an
    /// interrupted wait before the event was sent as [`Error::interrupted`].
    pub fn call(&self, event: &str, args: &[Value], secrets: &[&str]) -> Result<Value> {
        let answer = self.send(event, args, secrets)?;
        if answer.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(answer);
        }
        let msg = answer
            .get("msg")
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
        let msg = self.clean(msg, secrets);
        Err(Error::new(
            ErrorKind::InvalidInput,
            format!("Uptime Kuma refused `{event}`: {msg}"),
        ))
    }

    /// Like [`Api::call`], the ack returned whatever it says.
    pub fn send(&self, event: &str, args: &[Value], secrets: &[&str]) -> Result<Value> {
        let mut guard = self.session()?;
        let session = guard.as_mut().expect("a session once connected");
        let id = session.next_id;
        session.next_id += 1;
        let text = socket::event(Some(id), event, args);
        if text.len() > MAX_MESSAGE {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "`{event}` would send {} bytes; Uptime Kuma closes the connection on a \
                     message over {MAX_MESSAGE}",
                    text.len()
                ),
            ));
        }
        if let Err(e) = session.ws.send(Message::text(text)) {
            *guard = None;
            return Err(self.lost(event, &e.to_string(), secrets));
        }
        // Sent: the answer is awaited even when the run is interrupted, and recorded.
        let deadline = Instant::now() + ACK_TIMEOUT;
        loop {
            match session.next_frame(deadline, None) {
                Ok(Frame::Ack { id: got, args }) if got == id => {
                    return Ok(args.into_iter().next().unwrap_or(Value::Null));
                }
                Ok(_) => {}
                Err(Wait::Timeout) => {
                    *guard = None;
                    return Err(Error::new(
                        ErrorKind::Transient,
                        format!(
                            "Uptime Kuma did not answer `{event}` within {}s",
                            ACK_TIMEOUT.as_secs()
                        ),
                    ));
                }
                Err(Wait::Broken(why) | Wait::Interrupted(why)) => {
                    *guard = None;
                    return Err(self.lost(event, &why, secrets));
                }
            }
        }
    }

    /// The monitors and notifications as of the last event's pushes.
    pub fn lists(&self) -> Result<Lists> {
        let guard = self.session()?;
        Ok(guard.as_ref().expect("connected").lists.clone())
    }

    fn lost(&self, event: &str, why: &str, secrets: &[&str]) -> Error {
        Error::new(
            ErrorKind::Transient,
            format!(
                "the connection to Uptime Kuma was lost during `{event}`: {}",
                self.clean(why, secrets)
            ),
        )
    }

    /// `text` without `secrets` or the provider's own credentials.
    pub fn clean(&self, text: &str, secrets: &[&str]) -> String {
        let jwt = self
            .jwt
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut all: Vec<&str> = secrets.to_vec();
        all.extend(jwt.as_deref());
        match &self.credentials {
            Credentials::Password { password, .. } => all.push(password),
            Credentials::Token(token) => all.push(token),
        }
        redact(text, &all)
    }

    /// The session, connected and logged in: the one there is when it is still open, else a
    /// new one (logging in by the JWT of the first login when there was one).
    fn session(&self) -> Result<MutexGuard<'_, Option<Session>>> {
        let mut guard = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(session) = guard.as_mut()
            && session.drain().is_err()
        {
            *guard = None;
        }
        if guard.is_none() {
            if let Some(refused) = &*self.refused.lock().unwrap_or_else(PoisonError::into_inner) {
                return Err(refused.duplicate());
            }
            match self.connect() {
                Ok(session) => *guard = Some(session),
                Err(e) => return Err(e),
            }
        }
        Ok(guard)
    }

    fn connect(&self) -> Result<Session> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let stream = self.open_stream()?;
        let scheme = if self.address.tls { "wss" } else { "ws" };
        let url = format!(
            "{scheme}://{}:{}/socket.io/?EIO=4&transport=websocket",
            host_for_url(&self.address.host),
            self.address.port
        );
        let (ws, _) = tungstenite::client::client(url.as_str(), stream).map_err(|e| {
            Error::new(
                ErrorKind::Transient,
                format!(
                    "cannot open Uptime Kuma's websocket at {}: {e}",
                    self.address.base
                ),
            )
        })?;
        let mut session = Session {
            ws,
            next_id: 0,
            lists: Lists::default(),
        };
        let waiting = |why: String| match why {
            w if w.is_empty() => Error::interrupted("the run was interrupted"),
            w => Error::new(
                ErrorKind::Transient,
                format!("Uptime Kuma at {} {w}", self.address.base),
            ),
        };
        let auto_login;
        loop {
            match session.next_frame(deadline, Some(&self.cancel)) {
                Ok(Frame::Open(_)) => {
                    session
                        .ws
                        .send(Message::text(socket::CONNECT))
                        .map_err(|e| waiting(format!("closed the connection: {e}")))?;
                }
                Ok(Frame::ConnectError(_)) => {
                    return Err(waiting("refused the Socket.IO connection".into()));
                }
                // The last push of a connect: the server's handlers are registered now.
                Ok(Frame::Event { name, .. }) if name == "loginRequired" => {
                    auto_login = false;
                    break;
                }
                Ok(Frame::Event { name, .. }) if name == "autoLogin" => {
                    auto_login = true;
                    break;
                }
                Ok(_) => {}
                Err(Wait::Timeout) => {
                    return Err(waiting(format!(
                        "did not say it was ready (no `loginRequired`) within {}s",
                        CONNECT_TIMEOUT.as_secs()
                    )));
                }
                Err(Wait::Interrupted(_)) => return Err(waiting(String::new())),
                Err(Wait::Broken(why)) => {
                    return Err(waiting(format!("closed the connection: {why}")));
                }
            }
        }
        if !auto_login {
            self.login(&mut session)?;
        }
        Ok(session)
    }

    fn login(&self, session: &mut Session) -> Result<()> {
        let jwt = self
            .jwt
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let (event, args, secret) = match (&self.credentials, &jwt) {
            (Credentials::Password { .. }, Some(jwt)) => ("loginByToken", json!(jwt), jwt.clone()),
            (Credentials::Password { username, password }, None) => (
                "login",
                json!({"username": username, "password": password, "token": ""}),
                password.clone(),
            ),
            (Credentials::Token(token), _) => ("loginByToken", json!(token), token.clone()),
        };
        let answer = session
            .exchange(event, &[args])
            .map_err(|why| self.lost(event, &why, &[&secret]))?;
        if answer.get("ok").and_then(Value::as_bool) == Some(true) {
            if let Some(token) = answer.get("token").and_then(Value::as_str) {
                *self.jwt.lock().unwrap_or_else(PoisonError::into_inner) = Some(token.to_string());
            }
            return Ok(());
        }
        if jwt.is_some() && matches!(self.credentials, Credentials::Password { .. }) {
            // The password changed since (it invalidates the JWT): log in with it again.
            *self.jwt.lock().unwrap_or_else(PoisonError::into_inner) = None;
            return self.login(session);
        }
        let refused = self.login_refused(event, &answer);
        *self.refused.lock().unwrap_or_else(PoisonError::into_inner) = Some(refused.duplicate());
        Err(refused)
    }

    /// Why a login was refused, in words that never quote what was sent.
    fn login_refused(&self, event: &str, answer: &Value) -> Error {
        let base = &self.address.base;
        if answer.get("tokenRequired").and_then(Value::as_bool) == Some(true) {
            return Error::new(
                ErrorKind::Unauthorized,
                format!(
                    "Uptime Kuma at {base} asks for a two-factor code: the account has 2FA on, \
                     and fabrik cannot log in with a password alone. Give the provider a `token` \
                     instead (the JWT a login in the browser stored as `token` in local storage)"
                ),
            );
        }
        let msg = answer.get("msg").and_then(Value::as_str).unwrap_or("");
        match msg {
            "authIncorrectCreds" => Error::new(
                ErrorKind::Unauthorized,
                format!("Uptime Kuma at {base} refused the username or password"),
            ),
            "authInvalidToken" if event == "loginByToken" => Error::new(
                ErrorKind::Unauthorized,
                format!(
                    "Uptime Kuma at {base} refused the token: it is not a JWT this server issued, \
                     or the account's password changed since"
                ),
            ),
            m if m.starts_with("Too frequently") => Error::new(
                ErrorKind::Transient,
                format!(
                    "Uptime Kuma at {base} is refusing logins for now: it allows 20 a minute for \
                     the whole server. Try again in a minute, or give the provider a `token`, \
                     whose logins are not limited"
                ),
            )
            .retried(),
            m => Error::new(
                ErrorKind::Unauthorized,
                format!(
                    "Uptime Kuma at {base} refused the login: {}",
                    self.clean(if m.is_empty() { "no reason given" } else { m }, &[])
                ),
            ),
        }
    }

    fn open_stream(&self) -> Result<Stream> {
        let unreachable = |e: io::Error| {
            Error::new(
                ErrorKind::Transient,
                format!("cannot reach Uptime Kuma at {}: {e}", self.address.base),
            )
        };
        let addrs = (self.address.host.as_str(), self.address.port)
            .to_socket_addrs()
            .map_err(unreachable)?;
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(10)) {
                Ok(tcp) => {
                    tcp.set_read_timeout(Some(TICK)).map_err(unreachable)?;
                    tcp.set_nodelay(true).map_err(unreachable)?;
                    if !self.address.tls {
                        return Ok(Stream::Plain(tcp));
                    }
                    return tls(&self.address.host, tcp).map_err(|why| {
                        Error::new(
                            ErrorKind::Transient,
                            format!("cannot reach Uptime Kuma at {}: {why}", self.address.base),
                        )
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(unreachable(last))
    }
}

fn host_for_url(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// `text` with each of `secrets` (and its JSON-escaped form) replaced by `(sensitive)`.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut forms: Vec<String> = Vec::new();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        forms.push((*secret).to_string());
        let json = Value::String((*secret).to_string()).to_string();
        forms.push(json[1..json.len() - 1].to_string());
    }
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    let mut out = text.to_string();
    for form in forms {
        if !form.is_empty() {
            out = out.replace(&form, "(sensitive)");
        }
    }
    out
}

/// Why no frame came.
enum Wait {
    Timeout,
    /// The run was interrupted (only waits that may be cut short).
    Interrupted(String),
    /// The connection closed or broke.
    Broken(String),
}

impl Session {
    /// The next frame other than a ping (answered here), keeping the lists up to date from the
    /// pushes. Ends at `deadline`, or at once when `cancel` is given and set.
    fn next_frame(&mut self, deadline: Instant, cancel: Option<&Cancel>) -> Result<Frame, Wait> {
        loop {
            if cancel.is_some_and(Cancel::is_cancelled) {
                return Err(Wait::Interrupted(String::new()));
            }
            if Instant::now() >= deadline {
                return Err(Wait::Timeout);
            }
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    let frame = socket::parse(text.as_str())
                        .map_err(|e| Wait::Broken(format!("it sent {e}")))?;
                    match frame {
                        Frame::Ping => self
                            .ws
                            .send(Message::text(socket::PONG))
                            .map_err(|e| Wait::Broken(e.to_string()))?,
                        Frame::Close | Frame::Disconnect => {
                            return Err(Wait::Broken("the server closed the session".into()));
                        }
                        Frame::Event { name, args, .. } => {
                            self.lists.take(&name, &args);
                            return Ok(Frame::Event {
                                name,
                                args,
                                ack: None,
                            });
                        }
                        other => return Ok(other),
                    }
                }
                Ok(Message::Close(_)) => {
                    return Err(Wait::Broken("the server closed the connection".into()));
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(Wait::Broken(e.to_string())),
            }
        }
    }

    /// Reads what arrived while the session was idle (heartbeats, pushes), without waiting.
    fn drain(&mut self) -> Result<(), String> {
        loop {
            match self.next_frame(Instant::now() + TICK, None) {
                Ok(_) => {}
                Err(Wait::Timeout | Wait::Interrupted(_)) => return Ok(()),
                Err(Wait::Broken(why)) => return Err(why),
            }
        }
    }

    /// Sends an event and waits for its ack, on a session being set up.
    fn exchange(&mut self, event: &str, args: &[Value]) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        self.ws
            .send(Message::text(socket::event(Some(id), event, args)))
            .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + ACK_TIMEOUT;
        loop {
            match self.next_frame(deadline, None) {
                Ok(Frame::Ack { id: got, args }) if got == id => {
                    return Ok(args.into_iter().next().unwrap_or(Value::Null));
                }
                Ok(_) => {}
                Err(Wait::Timeout) => return Err("no answer in time".into()),
                Err(Wait::Broken(why) | Wait::Interrupted(why)) => return Err(why),
            }
        }
    }
}

impl Lists {
    /// Takes in a push; other events than the lists' are ignored, as they must be (every
    /// session of the user gets every push, and new kinds appear with new versions).
    fn take(&mut self, name: &str, args: &[Value]) {
        match (name, args.first()) {
            ("monitorList", Some(Value::Object(all))) => {
                self.monitors = all
                    .iter()
                    .filter_map(|(id, m)| Some((id.parse().ok()?, m.clone())))
                    .collect();
            }
            ("updateMonitorIntoList", Some(Value::Object(some))) => {
                for (id, m) in some {
                    if let Ok(id) = id.parse() {
                        self.monitors.insert(id, m.clone());
                    }
                }
            }
            ("deleteMonitorFromList", Some(id)) => {
                if let Some(id) = id_of(id) {
                    self.monitors.remove(&id);
                }
            }
            ("notificationList", Some(Value::Array(list))) => self.notifications.clone_from(list),
            _ => {}
        }
    }
}

/// An id as Uptime Kuma sends it: a number, or a number in a string.
pub fn id_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A plain or TLS connection.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// TLS verified against the webpki roots, as the HTTP providers' connections are.
fn tls(host: &str, tcp: TcpStream) -> std::result::Result<Stream, String> {
    let roots: rustls::RootCertStore = webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host:?} is not a server name: {e}"))?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let a = Address::parse("http://127.0.0.1:3001/").unwrap();
        assert_eq!((a.tls, a.host.as_str(), a.port), (false, "127.0.0.1", 3001));
        assert_eq!(a.base, "http://127.0.0.1:3001");
        let a = Address::parse("https://kuma.example.com").unwrap();
        assert_eq!(
            (a.tls, a.host.as_str(), a.port),
            (true, "kuma.example.com", 443)
        );
        for bad in [
            "ftp://x",
            "kuma:3001",
            "http://x/path",
            "http://u:p@x",
            "http://x:port",
        ] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redaction_covers_plain_and_json_forms() {
        let text = r#"insert into `monitor` (`basic_auth_pass`) values ('p"ss') - {"p\"ss"}"#;
        assert_eq!(
            redact(text, &["p\"ss"]),
            "insert into `monitor` (`basic_auth_pass`) values ('(sensitive)') - {\"(sensitive)\"}"
        );
    }
}

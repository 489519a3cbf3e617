//! A small threaded HTTP/1.1 server on 127.0.0.1 for fakes of remote APIs, with the faults a
//! provider must survive: errors before or after the request is acted on, slow answers, 429
//! with `Retry-After`, and a server that is gone (connection refused) and comes back on the
//! same port.
//!
//! A fake registers one handler; the server logs every request (method, path, query, status)
//! so tests can count requests, and keeps the contract violations handlers report, so every
//! test can end by asserting there were none.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::contract::percent_decode;

/// Worker threads answering requests; a slow answer holds one of them.
const WORKERS: usize = 8;

/// A request as a handler sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path, without the query, not decoded.
    pub path: String,
    /// The query pairs, decoded.
    pub query: Vec<(String, String)>,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A handler's answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Set when the request broke the API's contract: the server records it.
    pub violation: Option<String>,
}

impl Response {
    pub fn json(status: u16, body: &serde_json::Value) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::to_vec(body).expect("JSON values always serialize"),
            violation: None,
        }
    }

    pub fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: body.as_bytes().to_vec(),
            violation: None,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// One logged request and what it was answered.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The size of the request body.
    pub body_len: usize,
    pub status: u16,
    /// Answered by an injected fault, not by the handler.
    pub faulted: bool,
}

/// A fault injected into the next requests.
#[derive(Debug, Clone)]
enum Fault {
    /// Answer `status` without calling the handler.
    Before(u16),
    /// Call the handler (the change is made), then answer `status` instead of its answer.
    After(u16),
    /// 429 with `Retry-After: seconds`, without calling the handler.
    Throttle(u64),
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

#[derive(Default)]
struct Shared {
    log: Mutex<Vec<Logged>>,
    violations: Mutex<Vec<String>>,
    /// Faults to inject, each for requests of one method only or (`None`) for any.
    faults: Mutex<VecDeque<(Option<String>, Fault)>>,
    delay: Mutex<Duration>,
}

/// A running test server. Stopped on drop.
pub struct Server {
    port: u16,
    handler: Arc<Handler>,
    shared: Arc<Shared>,
    running: Option<Running>,
}

struct Running {
    server: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Starts a server on a free port of 127.0.0.1 that answers with `handler`.
    ///
    /// # Panics
    /// If no port can be bound.
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Server {
        let mut server = Server {
            port: 0,
            handler: Arc::new(handler),
            shared: Arc::new(Shared::default()),
            running: None,
        };
        server.listen(0);
        server
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Answers the next `n` requests with `status`, before they reach the handler.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.push(n, Fault::Before(status));
    }

    /// Lets the next `n` requests reach the handler (their change is made), then answers
    /// `status` instead: the client cannot know whether its request was acted on.
    pub fn fail_after_next(&self, n: usize, status: u16) {
        self.push(n, Fault::After(status));
    }

    /// Like [`Server::fail_next`], for the next `n` requests with this method only (a
    /// create's POST, not the lookups before it).
    pub fn fail_next_of(&self, method: &str, n: usize, status: u16) {
        self.push_of(method, n, Fault::Before(status));
    }

    /// Like [`Server::fail_after_next`], for the next `n` requests with this method only.
    pub fn fail_after_next_of(&self, method: &str, n: usize, status: u16) {
        self.push_of(method, n, Fault::After(status));
    }

    fn push_of(&self, method: &str, n: usize, fault: Fault) {
        let mut faults = self
            .shared
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        faults.extend(std::iter::repeat_n(
            (Some(method.to_ascii_uppercase()), fault),
            n,
        ));
    }

    /// Answers the next `n` requests with 429 and `Retry-After: seconds`.
    pub fn throttle_next(&self, n: usize, seconds: u64) {
        self.push(n, Fault::Throttle(seconds));
    }

    /// Like [`Server::throttle_next`], for the next `n` requests with this method only (the
    /// writes of an apply, not the reads of its plan).
    pub fn throttle_next_of(&self, method: &str, n: usize, seconds: u64) {
        self.push_of(method, n, Fault::Throttle(seconds));
    }

    fn push(&self, n: usize, fault: Fault) {
        let mut faults = self
            .shared
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        faults.extend(std::iter::repeat_n((None, fault), n));
    }

    /// Delays every answer by `delay` (zero: no delay).
    pub fn set_delay(&self, delay: Duration) {
        *self
            .shared
            .delay
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = delay;
    }

    /// Stops listening: connections to the port are refused until [`Server::restart`].
    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop.store(true, Ordering::SeqCst);
            for _ in &running.workers {
                running.server.unblock();
            }
            for worker in running.workers {
                let _ = worker.join();
            }
            // tiny_http closes its listener from its accept thread once the last handle is
            // dropped, a moment later: wait for that, so "stopped" means "refused".
            drop(running.server);
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while std::time::Instant::now() < deadline
                && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Listens again on the same port, with the same handler and state.
    pub fn restart(&mut self) {
        if self.running.is_none() {
            self.listen(self.port);
        }
    }

    /// Every request so far, in the order they were answered.
    pub fn log(&self) -> Vec<Logged> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many requests were answered so far.
    pub fn request_count(&self) -> usize {
        self.shared
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Every contract violation a handler reported, each with its request.
    pub fn violations(&self) -> Vec<String> {
        self.shared
            .violations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many requests had this method and a path ending with `suffix` (`/batch`); an empty
    /// suffix counts every request of the method.
    pub fn count(&self, method: &str, suffix: &str) -> usize {
        self.log()
            .iter()
            .filter(|l| l.method == method && l.path.ends_with(suffix))
            .count()
    }

    /// Fails the test if any request broke the `api`'s contract (or a rule of its server).
    ///
    /// # Panics
    /// Listing every violation.
    pub fn assert_no_violations(&self, api: &str) {
        let violations = self.violations();
        assert!(
            violations.is_empty(),
            "requests broke the {api} contract:\n{}",
            violations.join("\n")
        );
    }

    fn listen(&mut self, port: u16) {
        let server = Arc::new(
            tiny_http::Server::http(("127.0.0.1", port))
                .unwrap_or_else(|e| panic!("cannot listen on 127.0.0.1:{port}: {e}")),
        );
        self.port = server.server_addr().to_ip().expect("an IP listener").port();
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..WORKERS)
            .map(|_| {
                let server = server.clone();
                let stop = stop.clone();
                let handler = self.handler.clone();
                let shared = self.shared.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        match server.recv() {
                            Ok(request) => serve(request, handler.as_ref(), &shared),
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        self.running = Some(Running {
            server,
            workers,
            stop,
        });
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(mut raw: tiny_http::Request, handler: &Handler, shared: &Shared) {
    let url = raw.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let query: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect();
    let mut body = Vec::new();
    let _ = std::io::Read::read_to_end(raw.as_reader(), &mut body);
    let request = Request {
        method: raw.method().as_str().to_ascii_uppercase(),
        path: path.to_string(),
        query,
        headers: raw
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.as_str().to_string(),
                )
            })
            .collect(),
        body,
    };
    let delay = *shared
        .delay
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    let fault = {
        let mut faults = shared
            .faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        faults
            .iter()
            .position(|(method, _)| method.as_ref().is_none_or(|m| *m == request.method))
            .and_then(|at| faults.remove(at))
            .map(|(_, fault)| fault)
    };
    let (response, faulted) = match fault {
        Some(Fault::Before(status)) => (injected(status), true),
        Some(Fault::Throttle(seconds)) => (
            injected(429).header("Retry-After", seconds.to_string()),
            true,
        ),
        Some(Fault::After(status)) => {
            let answer = handler(&request);
            if let Some(v) = &answer.violation {
                record_violation(shared, &request, v);
            }
            (injected(status), true)
        }
        None => {
            let answer = handler(&request);
            if let Some(v) = &answer.violation {
                record_violation(shared, &request, v);
            }
            (answer, false)
        }
    };
    shared
        .log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(Logged {
            method: request.method.clone(),
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
            body_len: request.body.len(),
            status: response.status,
            faulted,
        });
    let mut answer =
        tiny_http::Response::from_data(response.body).with_status_code(response.status);
    for (name, value) in &response.headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            answer.add_header(header);
        }
    }
    let _ = raw.respond(answer);
}

fn record_violation(shared: &Shared, request: &Request, violation: &str) {
    shared
        .violations
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(format!("{} {}: {violation}", request.method, request.path));
}

fn injected(status: u16) -> Response {
    Response::json(
        status,
        &serde_json::json!({
            "success": false,
            "errors": [{"code": 10000 + u32::from(status), "message": format!("injected fault: HTTP {status}")}],
            "messages": [],
            "result": null,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal HTTP/1.1 GET over a TCP stream: status, body and `Retry-After`.
    fn get(url: &str) -> std::io::Result<(u16, String, Option<String>)> {
        use std::io::Write;
        use std::net::TcpStream;
        {
            let rest = url.strip_prefix("http://").expect("an http URL");
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            let mut stream = TcpStream::connect(host)?;
            write!(
                stream,
                "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            )?;
            let mut text = String::new();
            std::io::Read::read_to_string(&mut stream, &mut text)?;
            let status = text[9..12].parse().expect("a status code");
            let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
            let retry_after = head
                .lines()
                .find_map(|l| l.strip_prefix("Retry-After: ").map(str::to_string));
            Ok((status, body.to_string(), retry_after))
        }
    }

    fn echo() -> Server {
        Server::start(|r| {
            let mut answer = Response::text(200, &format!("{} {} {:?}", r.method, r.path, r.query));
            if r.path == "/bad" {
                answer.violation = Some("not in the contract".into());
            }
            answer
        })
    }

    #[test]
    fn requests_reach_the_handler_and_are_logged() {
        let server = echo();
        let (status, body, _) = get(&format!("{}/a/b?x=1&y=a%20b", server.url())).unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, r#"GET /a/b [("x", "1"), ("y", "a b")]"#);
        assert_eq!(server.request_count(), 1);
        assert!(server.violations().is_empty());
        get(&format!("{}/bad", server.url())).unwrap();
        assert_eq!(server.violations(), ["GET /bad: not in the contract"]);
    }

    #[test]
    fn faults_answer_in_order_then_the_handler_again() {
        let server = echo();
        server.fail_next(2, 500);
        server.throttle_next(1, 7);
        let url = format!("{}/x", server.url());
        assert_eq!(get(&url).unwrap().0, 500);
        assert_eq!(get(&url).unwrap().0, 500);
        let (status, _, retry_after) = get(&url).unwrap();
        assert_eq!((status, retry_after.as_deref()), (429, Some("7")));
        assert_eq!(get(&url).unwrap().0, 200);
        let log = server.log();
        assert_eq!(
            log.iter().map(|l| l.faulted).collect::<Vec<_>>(),
            [true, true, true, false]
        );
        // A fault for one method waits for a request of that method.
        server.fail_after_next_of("POST", 1, 503);
        assert_eq!(get(&url).unwrap().0, 200);
        assert_eq!(server.log().last().map(|l| l.faulted), Some(false));
    }

    #[test]
    fn a_stopped_server_refuses_connections_and_comes_back_on_its_port() {
        let mut server = echo();
        let url = format!("{}/x", server.url());
        let port = server.port();
        server.stop();
        let err = get(&url).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        server.restart();
        assert_eq!(server.port(), port);
        assert_eq!(get(&url).unwrap().0, 200);
    }

    #[test]
    fn slow_answers_are_slow() {
        let server = echo();
        server.set_delay(Duration::from_millis(300));
        let started = std::time::Instant::now();
        get(&format!("{}/x", server.url())).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
    }
}

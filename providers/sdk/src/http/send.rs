//! One request and its answer: the agent with its timeouts, the body limit, and what did not
//! come back classified by whether it may be sent again.

use std::time::Duration;

use crate::ErrorKind;

/// An HTTP method, as far as the providers use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`: reads.
    Get,
    /// `POST`: creates and actions; never repeated after an unknown outcome.
    Post,
    /// `PUT`: replaces.
    Put,
    /// `PATCH`: changes in place.
    Patch,
    /// `DELETE`: removes.
    Delete,
}

impl Method {
    /// The method as it goes on the wire (`GET`).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// Whether repeating the request after an unknown outcome is harmless. A POST (a create)
    /// is not: a second one after a lost answer may make a second object.
    pub fn idempotent(self) -> bool {
        self != Method::Post
    }
}

/// One request to send.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The whole URL, without the query.
    pub url: &'a str,
    /// Headers beside `Accept: application/json` (credentials).
    pub headers: &'a [(&'a str, &'a str)],
    /// Query pairs, encoded on the way.
    pub query: &'a [(&'a str, &'a str)],
    /// JSON, sent with `Content-Type: application/json`; `None` sends no body at all.
    pub body: Option<&'a [u8]>,
}

/// An answer of any status.
#[derive(Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body, read up to the limit [`send`] was given.
    pub body: String,
    /// What `Retry-After` asked, in seconds.
    pub retry_after: Option<Duration>,
}

impl Answer {
    /// A 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether the request may be sent again: a 429 was refused before anything was done; a
    /// 5xx may have been done, so only an idempotent request is repeated.
    pub fn worth_retrying(&self, method: Method) -> bool {
        self.status == 429 || (self.status >= 500 && method.idempotent())
    }

    /// Whether the server limits the rate: a 429, or a 503 that says when to come back. Such
    /// an answer is waited out for as long as [`Retry::rate_limit_wait`] allows.
    pub fn rate_limited(&self) -> bool {
        self.status == 429 || (self.status == 503 && self.retry_after.is_some())
    }
}

/// A request that got no answer.
#[derive(Debug)]
pub struct Unanswered {
    /// Transient for what may work next time (a refused or lost connection, a timeout).
    pub kind: ErrorKind,
    /// The request surely never reached the server (refused, no route, no name), so even a
    /// POST may be sent again.
    pub nothing_sent: bool,
    /// What happened, for people (`no answer: timed out (…)`).
    pub message: String,
}

impl Unanswered {
    /// Whether the request may be sent again: only what may work next time, and a POST only
    /// when it surely never reached the server.
    pub fn worth_retrying(&self, method: Method) -> bool {
        self.kind == ErrorKind::Transient && (self.nothing_sent || method.idempotent())
    }
}

impl From<ureq::Error> for Unanswered {
    fn from(e: ureq::Error) -> Self {
        use std::io::ErrorKind as Io;
        use ureq::Error as E;
        use ureq::Timeout as T;
        let (kind, nothing_sent) = match &e {
            E::Io(io) => match io.kind() {
                Io::ConnectionRefused | Io::AddrNotAvailable => (ErrorKind::Transient, true),
                _ => (ErrorKind::Transient, false),
            },
            E::Timeout(T::Resolve | T::Connect) => (ErrorKind::Transient, true),
            E::Timeout(_) | E::Protocol(_) => (ErrorKind::Transient, false),
            E::ConnectionFailed | E::HostNotFound => (ErrorKind::Transient, true),
            E::BadUri(_) | E::Http(_) => (ErrorKind::InvalidInput, false),
            _ => (ErrorKind::Fatal, false),
        };
        let message = match &e {
            E::Io(io) => format!("no answer: {io}"),
            E::Timeout(t) => format!("no answer: timed out ({t})"),
            other => format!("no answer: {other}"),
        };
        Unanswered {
            kind,
            nothing_sent,
            message,
        }
    }
}

/// An agent that reports every status as an answer, follows no redirect and gives up on a
/// connection after `connect` and on a whole request after `total`.
pub fn agent(user_agent: &str, connect: Duration, total: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(connect))
        .timeout_global(Some(total))
        .http_status_as_error(false)
        // An API that redirects is shown, not followed.
        .max_redirects(0)
        .max_redirects_will_error(false)
        .user_agent(user_agent)
        .build()
        .into()
}

/// Sends one request and reads the answer (at most `limit` bytes of it).
///
/// # Errors
/// [`Unanswered`] when no answer came back.
pub fn send(agent: &ureq::Agent, request: Request<'_>, limit: u64) -> Result<Answer, Unanswered> {
    let Request {
        method,
        url,
        headers,
        query,
        body,
    } = request;
    let result = match (method, body) {
        (Method::Get, _) | (Method::Delete, None) => {
            let mut builder = if method == Method::Get {
                agent.get(url)
            } else {
                agent.delete(url)
            };
            builder = builder.header("Accept", "application/json");
            for (name, value) in headers {
                builder = builder.header(*name, *value);
            }
            builder.query_pairs(query.iter().copied()).call()
        }
        (Method::Post | Method::Put | Method::Patch | Method::Delete, body) => {
            let mut builder = match method {
                Method::Post => agent.post(url),
                Method::Put => agent.put(url),
                Method::Patch => agent.patch(url),
                _ => agent.delete(url).force_send_body(),
            };
            builder = builder.header("Accept", "application/json");
            for (name, value) in headers {
                builder = builder.header(*name, *value);
            }
            let builder = builder.query_pairs(query.iter().copied());
            match body {
                Some(body) => builder
                    .header("Content-Type", "application/json")
                    .send(body),
                // An action without a body (`POST /deploy?uuid=…`) says nothing of a type.
                None => builder.send_empty(),
            }
        }
    };
    let mut response = result.map_err(Unanswered::from)?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_string()
        .map_err(Unanswered::from)?;
    Ok(Answer {
        status,
        body,
        retry_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_cannot_have_been_done_twice_is_repeated() {
        let answer = |status| Answer {
            status,
            body: String::new(),
            retry_after: None,
        };
        assert!(answer(429).worth_retrying(Method::Post));
        assert!(answer(503).worth_retrying(Method::Patch));
        assert!(!answer(503).worth_retrying(Method::Post));
        assert!(!answer(422).worth_retrying(Method::Get));
        let refused = Unanswered {
            kind: ErrorKind::Transient,
            nothing_sent: true,
            message: String::new(),
        };
        assert!(refused.worth_retrying(Method::Post));
        let cut = Unanswered {
            nothing_sent: false,
            ..refused
        };
        assert!(!cut.worth_retrying(Method::Post));
        assert!(cut.worth_retrying(Method::Delete));
    }
}

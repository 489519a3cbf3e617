//! The `http` gate: a GET whose status, headers and body must be what the spec says.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use ureq::tls::{Certificate, RootCerts, TlsConfig};

use super::tcp::explain_io;
use super::trust;
use super::{Probe, remaining};
use crate::tls_trust::{self, Roots};

/// How much of a body is read to look for `body_contains`; health pages are small.
const BODY_LIMIT: u64 = 1024 * 1024;
/// How much of a body a failure message shows.
const EXCERPT_CHARS: usize = 200;

#[derive(Debug, Clone)]
pub(crate) struct HttpCheck {
    pub url: String,
    pub status: u16,
    pub body_contains: Option<String>,
    /// Lower-case names, expected values.
    pub headers: Vec<(String, String)>,
    pub ca_file: Option<PathBuf>,
}

impl HttpCheck {
    pub fn describe(&self) -> String {
        format!("http {}", redact_password(&self.url))
    }

    pub fn prepare(&self) -> Result<Probe, String> {
        let https = self
            .url
            .get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"));
        // A plain-http URL may still redirect to https; only a URL that needs TLS from the
        // start fails here when no roots can be had.
        let roots = match tls_trust::load(self.ca_file.as_deref()) {
            Ok(roots) => Some(roots),
            Err(e) if https || self.ca_file.is_some() => return Err(e),
            Err(_) => None,
        };
        let tls = match &roots {
            Some(roots) => TlsConfig::builder()
                .root_certs(RootCerts::Specific(Arc::new(
                    roots
                        .certs
                        .iter()
                        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                        .collect(),
                )))
                .build(),
            None => TlsConfig::default(),
        };
        let check = self.clone();
        Ok(Arc::new(move |deadline| {
            check.attempt(&tls, roots.as_deref(), deadline)
        }))
    }

    fn attempt(
        &self,
        tls: &TlsConfig,
        roots: Option<&Roots>,
        deadline: Instant,
    ) -> Result<(), String> {
        let Some(budget) = remaining(deadline) else {
            return Err("timed out".to_string());
        };
        // A gate that expects a redirect must see it rather than follow it.
        let redirects = if (300..400).contains(&self.status) {
            0
        } else {
            10
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(budget))
            .http_status_as_error(false)
            .max_redirects(redirects)
            .tls_config(tls.clone())
            .user_agent(concat!("fabrik/", env!("CARGO_PKG_VERSION"), " (verify)"))
            .build()
            .into();
        let mut response = agent
            .get(&self.url)
            .call()
            .map_err(|e| self.explain(&e, roots))?;
        let status = response.status();
        let mut body = Vec::new();
        let read = response
            .body_mut()
            .as_reader()
            .take(BODY_LIMIT)
            .read_to_end(&mut body);

        if status.as_u16() != self.status {
            return Err(format!(
                "expected status {}, got {}{}",
                self.status,
                status_text(status),
                body_note(&body)
            ));
        }
        for (name, want) in &self.headers {
            let seen: Vec<&str> = response
                .headers()
                .get_all(name.as_str())
                .iter()
                .map(|v| v.to_str().unwrap_or("(not text)"))
                .collect();
            if !seen.iter().any(|v| header_matches(v, want)) {
                return Err(match seen.as_slice() {
                    [] => format!(
                        "status {}, but the header {name} is missing (expected {want:?})",
                        status.as_u16()
                    ),
                    values => format!(
                        "status {}, but the header {name} is {} (expected {want:?})",
                        status.as_u16(),
                        values
                            .iter()
                            .map(|v| format!("{v:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
        if let Some(needle) = &self.body_contains {
            if let Err(e) = read {
                return Err(format!(
                    "status {}, but the body could not be read: {}",
                    status.as_u16(),
                    self.explain(&ureq::Error::from(e), roots)
                ));
            }
            let text = String::from_utf8_lossy(&body);
            if !text.contains(needle.as_str()) {
                return Err(format!(
                    "status {}, but the body does not contain {needle:?}{}",
                    status.as_u16(),
                    body_note(&body)
                ));
            }
        }
        Ok(())
    }

    fn explain(&self, e: &ureq::Error, roots: Option<&Roots>) -> String {
        use ureq::Error as E;
        if let Some(tls) = find_tls_error(e) {
            let host = ureq::http::Uri::try_from(self.url.as_str())
                .ok()
                .and_then(|u| u.host().map(|h| h.trim_matches(['[', ']']).to_string()))
                .unwrap_or_default();
            let fallback = Roots {
                certs: Vec::new(),
                source: "the trusted roots".to_string(),
            };
            return trust::explain(tls, &host, roots.unwrap_or(&fallback), None);
        }
        match e {
            E::Io(io) => match io.get_ref().and_then(|i| i.downcast_ref::<ureq::Error>()) {
                Some(inner) => self.explain(inner, roots),
                None => format!("cannot reach {}: {}", self.target(), explain_io(io)),
            },
            E::Timeout(_) => format!("no answer from {} in time (timed out)", self.target()),
            E::HostNotFound => format!("cannot resolve the host of {}", self.target()),
            E::ConnectionFailed => format!("cannot connect to {}", self.target()),
            E::TooManyRedirects => "too many redirects".to_string(),
            other => format!("request to {} failed: {other}", self.target()),
        }
    }

    fn target(&self) -> String {
        ureq::http::Uri::try_from(self.url.as_str())
            .ok()
            .and_then(|u| {
                u.authority()
                    .map(|a| a.as_str().rsplit('@').next().unwrap_or("").to_string())
            })
            .unwrap_or_else(|| self.url.clone())
    }
}

/// The rustls error behind a failed request, if any. Certificate problems arrive wrapped in
/// I/O errors, whose `source()` skips the wrapped error itself, so each layer is opened by hand.
fn find_tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    if let Some(ureq::Error::Rustls(tls)) = e.downcast_ref::<ureq::Error>() {
        return Some(tls);
    }
    let io = match e.downcast_ref::<ureq::Error>() {
        Some(ureq::Error::Io(io)) => Some(io),
        _ => e.downcast_ref::<std::io::Error>(),
    };
    if let Some(found) = io
        .and_then(|io| io.get_ref())
        .and_then(|inner| find_tls_error(inner))
    {
        return Some(found);
    }
    e.source().and_then(find_tls_error)
}

/// A header matches when its value equals the expected one ignoring ASCII case, or is the
/// expected one followed by parameters: `application/json` matches
/// `application/json; charset=utf-8`.
fn header_matches(seen: &str, want: &str) -> bool {
    let seen = seen.trim();
    let want = want.trim();
    if seen.eq_ignore_ascii_case(want) {
        return true;
    }
    seen.get(..want.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(want))
        && seen[want.len()..].trim_start().starts_with(';')
}

fn status_text(status: ureq::http::StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// " (body: \"...\")" with the start of the body on one line, or " (empty body)".
fn body_note(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.is_empty() {
        return " (empty body)".to_string();
    }
    let mut excerpt: String = flat.chars().take(EXCERPT_CHARS).collect();
    if flat.chars().count() > EXCERPT_CHARS {
        excerpt.push('…');
    }
    format!(" (body: {excerpt:?})")
}

/// Progress lines must not show a password written into a URL.
fn redact_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let Some((user, _password)) = authority[..at].split_once(':') else {
        return url.to_string();
    };
    format!(
        "{}{user}:***@{}{}",
        &url[..scheme_end + 3],
        &authority[at + 1..],
        &rest[authority_end..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_match_with_parameters_and_case() {
        assert!(header_matches(
            "application/json; charset=utf-8",
            "application/json"
        ));
        assert!(header_matches("Application/JSON", "application/json"));
        assert!(!header_matches("application/jsonx", "application/json"));
        assert!(!header_matches("text/html", "application/json"));
    }

    #[test]
    fn passwords_in_urls_are_hidden() {
        assert_eq!(
            redact_password("https://bob:hunter2@x.example/health?q=1"),
            "https://bob:***@x.example/health?q=1"
        );
        assert_eq!(
            redact_password("https://x.example/a@b"),
            "https://x.example/a@b"
        );
    }

    #[test]
    fn body_excerpts_are_short_and_flat() {
        assert_eq!(body_note(b""), " (empty body)");
        assert_eq!(
            body_note(b"internal\n  error"),
            " (body: \"internal error\")"
        );
        let long = "x".repeat(500);
        assert!(body_note(long.as_bytes()).ends_with("…\")"));
    }
}

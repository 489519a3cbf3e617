//! The `tcp` gate (something accepts connections on host:port), and the connect step the `tls`
//! and `dns` gates share: every address the host resolves to is tried within the attempt's
//! deadline, and a failure names each address and why.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Instant;

use super::{Probe, remaining};

#[derive(Debug, Clone)]
pub(crate) struct TcpCheck {
    pub host: String,
    pub port: u16,
}

impl TcpCheck {
    pub fn describe(&self) -> String {
        format!("tcp {}", host_port(&self.host, self.port))
    }

    pub fn prepare(&self) -> Result<Probe, String> {
        let check = self.clone();
        Ok(std::sync::Arc::new(move |deadline| {
            connect(&check.host, check.port, deadline).map(drop)
        }))
    }
}

/// `host:port`, bracketing an IPv6 address.
pub(crate) fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Resolves `host` and connects to the first address that answers before `deadline`.
pub(crate) fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, String> {
    let target = host_port(host, port);
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("cannot resolve {host}: no address"));
    }
    let mut failures = Vec::new();
    for addr in &addrs {
        let Some(left) = remaining(deadline) else {
            failures.push(format!("{addr}: timed out"));
            break;
        };
        match TcpStream::connect_timeout(addr, left) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => failures.push(format!("{addr}: {}", explain_io(&e))),
        }
    }
    if addrs.len() == 1 && failures.len() == 1 {
        let why = failures[0].split_once(": ").map_or("", |(_, why)| why);
        Err(format!("cannot connect to {target}: {why}"))
    } else {
        Err(format!(
            "cannot connect to {target}: {}",
            failures.join("; ")
        ))
    }
}

/// An I/O error in the words a person checking a deployment uses.
pub(crate) fn explain_io(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => {
            "connection refused (nothing listens there)".to_string()
        }
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timed out".to_string(),
        io::ErrorKind::ConnectionReset => "connection reset by the server".to_string(),
        io::ErrorKind::ConnectionAborted => "connection aborted".to_string(),
        io::ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
        io::ErrorKind::HostUnreachable => "host unreachable".to_string(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_listening_port_passes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let check = TcpCheck {
            host: "127.0.0.1".into(),
            port,
        };
        let probe = check.prepare().unwrap();
        probe(Instant::now() + Duration::from_secs(2)).unwrap();
    }

    #[test]
    fn a_closed_port_fails_with_connection_refused() {
        let port = super::super::test_support::closed_port();
        let check = TcpCheck {
            host: "127.0.0.1".into(),
            port,
        };
        let err = check.prepare().unwrap()(Instant::now() + Duration::from_secs(2)).unwrap_err();
        assert_eq!(
            err,
            format!(
                "cannot connect to 127.0.0.1:{port}: connection refused (nothing listens there)"
            )
        );
    }
}

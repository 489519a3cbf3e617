//! The `dns` gate: asks one nameserver directly (UDP, then TCP if the answer is truncated) and
//! compares the answer set with the expected one. Asking the server directly, not the system
//! resolver, is what makes the gate mean "the record is published", free of caches.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

use super::parse::normalize_tokens;
use super::tcp::{connect, explain_io, host_port};
use super::{Probe, remaining};

/// The EDNS payload size to offer: the DNS flag day 2020 value, safe from fragmentation.
const UDP_PAYLOAD: u16 = 1232;

#[derive(Debug, Clone)]
pub(crate) struct DnsCheck {
    pub name: String,
    pub rtype: RecordType,
    /// Normalized (see [`super::parse::normalize_expected`]); `None`: any non-empty answer.
    pub expect: Option<Vec<String>>,
    pub nameserver: (String, u16),
}

impl DnsCheck {
    pub fn describe(&self) -> String {
        format!(
            "dns {} {} @{}",
            self.rtype,
            self.name,
            host_port(&self.nameserver.0, self.nameserver.1)
        )
    }

    pub fn prepare(&self) -> Result<Probe, String> {
        let name = Name::from_utf8(&self.name)
            .map_err(|e| format!("`{}` is not a DNS name ({e})", self.name))?;
        let mut name = name.to_lowercase();
        name.set_fqdn(true);
        let check = self.clone();
        Ok(Arc::new(move |deadline| check.attempt(&name, deadline)))
    }

    fn attempt(&self, name: &Name, deadline: Instant) -> Result<(), String> {
        let server = self.server_addr()?;
        let mut query = Message::query();
        query.metadata.recursion_desired = true;
        query.add_query(Query::query(name.clone(), self.rtype));
        let mut edns = Edns::new();
        edns.set_max_payload(UDP_PAYLOAD);
        query.set_edns(edns);
        let bytes = query
            .to_vec()
            .map_err(|e| format!("cannot build the DNS query: {e}"))?;
        let id = query.metadata.id;
        let ns = host_port(&self.nameserver.0, self.nameserver.1);

        let mut response = ask_udp(server, &bytes, id, deadline)
            .map_err(|e| format!("no answer from nameserver {ns} over UDP: {e}"))?;
        if response.metadata.truncation {
            response = ask_tcp(&self.nameserver, &bytes, id, deadline).map_err(|e| {
                format!("the UDP answer from {ns} was truncated, and TCP failed: {e}")
            })?;
        }
        match response.metadata.response_code {
            ResponseCode::NoError => {}
            ResponseCode::NXDomain => {
                return Err(format!(
                    "{ns} answered NXDOMAIN: {} does not exist",
                    self.name
                ));
            }
            code => {
                return Err(format!(
                    "{ns} answered {} ({code}) for {} {}",
                    code_name(code),
                    self.rtype,
                    self.name
                ));
            }
        }
        let mut seen: Vec<String> = response
            .answers
            .iter()
            .filter(|r| r.record_type() == self.rtype)
            .map(|r| answer_text(&r.data))
            .collect();
        seen.sort();
        seen.dedup();
        let shown = |answers: &[String]| -> String {
            if answers.is_empty() {
                return "no records".to_string();
            }
            let quoted = self.rtype == RecordType::TXT;
            let items: Vec<String> = answers
                .iter()
                .map(|a| if quoted { format!("{a:?}") } else { a.clone() })
                .collect();
            format!("[{}]", items.join(", "))
        };
        match &self.expect {
            None if seen.is_empty() => Err(format!(
                "{ns} has no {} record for {}",
                self.rtype, self.name
            )),
            None => Ok(()),
            Some(expect) => {
                let mut want = expect.clone();
                want.sort();
                want.dedup();
                if want == seen {
                    Ok(())
                } else {
                    Err(format!(
                        "expected {} {} to be {}, but {ns} answered {}",
                        self.name,
                        self.rtype,
                        shown(&want),
                        shown(&seen)
                    ))
                }
            }
        }
    }

    fn server_addr(&self) -> Result<SocketAddr, String> {
        let (host, port) = (&self.nameserver.0, self.nameserver.1);
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve nameserver {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("cannot resolve nameserver {host}: no address"))
    }
}

fn ask_udp(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    deadline: Instant,
) -> Result<Message, String> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).map_err(|e| format!("cannot open a UDP socket: {e}"))?;
    socket.connect(server).map_err(|e| explain_io(&e))?;
    socket.send(query).map_err(|e| explain_io(&e))?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let Some(left) = remaining(deadline) else {
            return Err("timed out".to_string());
        };
        let _ = socket.set_read_timeout(Some(left));
        let n = socket.recv(&mut buf).map_err(|e| explain_io(&e))?;
        // A stray or late datagram (an earlier attempt's answer) is not this answer.
        if let Ok(m) = Message::from_vec(&buf[..n])
            && m.metadata.id == id
        {
            return Ok(m);
        }
    }
}

fn ask_tcp(
    nameserver: &(String, u16),
    query: &[u8],
    id: u16,
    deadline: Instant,
) -> Result<Message, String> {
    let mut stream = connect(&nameserver.0, nameserver.1, deadline)?;
    let Some(left) = remaining(deadline) else {
        return Err("timed out".to_string());
    };
    let _ = stream.set_read_timeout(Some(left));
    let _ = stream.set_write_timeout(Some(left));
    let len = u16::try_from(query.len()).map_err(|_| "the query is too long".to_string())?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).map_err(|e| explain_io(&e))?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).map_err(|e| explain_io(&e))?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).map_err(|e| explain_io(&e))?;
    let message =
        Message::from_vec(&buf).map_err(|e| format!("the answer is not a DNS message: {e}"))?;
    if message.metadata.id != id {
        return Err("the answer is for another query".to_string());
    }
    Ok(message)
}

/// One answer as the gate compares it (see [`super::parse::normalize_expected`]).
fn answer_text(data: &RData) -> String {
    match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect(),
        other => normalize_tokens(&other.to_string()),
    }
}

fn code_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::ServFail => "SERVFAIL".to_string(),
        ResponseCode::Refused => "REFUSED".to_string(),
        ResponseCode::FormErr => "FORMERR".to_string(),
        ResponseCode::NotImp => "NOTIMP".to_string(),
        other => format!("rcode {}", u16::from(other)),
    }
}

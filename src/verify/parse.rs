//! Reading the scalar values of a `verify:` entry (durations, URLs, host:port, DNS names and
//! types, expected answers), apart from the entry's shape in `entry.rs`: the same parsers serve
//! the plan-time check and the apply-time gate.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use hickory_proto::rr::RecordType;

/// DNS record types a `dns` gate can ask for.
pub(crate) const DNS_TYPES: [(&str, RecordType); 10] = [
    ("A", RecordType::A),
    ("AAAA", RecordType::AAAA),
    ("CNAME", RecordType::CNAME),
    ("TXT", RecordType::TXT),
    ("MX", RecordType::MX),
    ("NS", RecordType::NS),
    ("PTR", RecordType::PTR),
    ("SRV", RecordType::SRV),
    ("CAA", RecordType::CAA),
    ("SOA", RecordType::SOA),
];

pub(crate) fn parse_duration(text: &str, max: Duration) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration ({e})"))?;
    if d.is_zero() {
        return Err("must be longer than 0".to_string());
    }
    if d > max {
        return Err(format!(
            "`{text}` is longer than the most allowed, {}",
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

pub(crate) fn parse_dns_type(text: &str) -> Result<RecordType, String> {
    let upper = text.trim().to_ascii_uppercase();
    DNS_TYPES
        .iter()
        .find(|(n, _)| *n == upper)
        .map(|(_, t)| *t)
        .ok_or_else(|| format!("`{text}` is not a DNS record type a gate can check"))
}

pub(crate) fn parse_url(text: &str) -> Result<String, String> {
    let uri: ureq::http::Uri = text
        .parse()
        .map_err(|e| format!("`{text}` is not a URL ({e})"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => return Err(format!("`{text}` uses `{other}:`; use http or https")),
        None => return Err(format!("`{text}` has no scheme: write https://{text}")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("`{text}` has no host"));
    }
    Ok(text.to_string())
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
pub(crate) fn parse_host_port(text: &str) -> Result<(String, Option<u16>), String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the host is empty".to_string());
    }
    if text.contains("://") {
        return Err(format!("`{text}` is a URL; give the host alone"));
    }
    let port = |p: &str| -> Result<u16, String> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(format!("`{p}` is not a port number (1 to 65535)")),
            Ok(n) => Ok(n),
        }
    };
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{text}` has `[` without `]`"))?;
        host.parse::<Ipv6Addr>()
            .map_err(|_| format!("`{host}` is not an IPv6 address"))?;
        return match after {
            "" => Ok((host.to_string(), None)),
            _ => match after.strip_prefix(':') {
                Some(p) => Ok((host.to_string(), Some(port(p)?))),
                None => Err(format!("unexpected `{after}` after the address")),
            },
        };
    }
    if text.parse::<Ipv6Addr>().is_ok() {
        return Ok((text.to_string(), None));
    }
    let (host, p) = match text.rsplit_once(':') {
        Some((host, p)) => (host, Some(port(p)?)),
        None => (text, None),
    };
    if host.is_empty() {
        return Err(format!("`{text}` has no host"));
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c == '/' || c == ':' || c == '@')
    {
        return Err(format!("`{host}` is not a host name"));
    }
    Ok((host.to_string(), p))
}

pub(crate) fn parse_dns_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    if name.is_empty() {
        return Err("the name is empty".to_string());
    }
    hickory_proto::rr::Name::from_utf8(name)
        .map_err(|e| format!("`{name}` is not a DNS name ({e})"))?;
    Ok(name.to_string())
}

pub(crate) fn parse_nameserver(text: &str) -> Result<(String, u16), String> {
    let (host, port) = parse_host_port(text)?;
    Ok((host, port.unwrap_or(53)))
}

/// An answer in the form gates compare: addresses canonical, names lower-case without the
/// trailing dot, TXT without surrounding quotes.
pub(crate) fn normalize_expected(rtype: RecordType, text: &str) -> Result<String, String> {
    let text = text.trim();
    match rtype {
        RecordType::A => text
            .parse::<Ipv4Addr>()
            .map(|a| a.to_string())
            .map_err(|_| format!("`{text}` is not an IPv4 address (type A)")),
        RecordType::AAAA => text
            .parse::<Ipv6Addr>()
            .map(|a| a.to_string())
            .map_err(|_| format!("`{text}` is not an IPv6 address (type AAAA)")),
        RecordType::TXT => Ok(unquote(text).to_string()),
        _ => {
            if text.is_empty() {
                return Err("an expected answer is empty".to_string());
            }
            Ok(normalize_tokens(text))
        }
    }
}

pub(crate) fn unquote(text: &str) -> &str {
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if !inner.contains('"') => inner,
        _ => text,
    }
}

/// Names inside record data (MX exchange, CNAME target, SRV target) compared without case and
/// without the root dot; other tokens likewise, which is harmless for numbers.
pub(crate) fn normalize_tokens(text: &str) -> String {
    text.split_whitespace()
        .map(|token| {
            let token = token.trim_end_matches('.');
            let token = if token.is_empty() { "." } else { token };
            token.to_ascii_lowercase()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

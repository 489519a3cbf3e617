//! Normal forms of DNS names and record contents.
//!
//! PowerDNS wants every name absolute (trailing dot) and every content in its own canonical
//! text form ("Not in expected format" otherwise), while people write `www`, `Mail.Example.com`
//! or `hello world`. Everything sent is first put in the normal form below, and everything read
//! back is compared in that form, so two spellings of one thing never show as a change.
//!
//! Names: ASCII lower case, absolute, with the trailing dot. Contents, by type:
//! - `A`: the address as `Ipv4Addr` prints it. `AAAA`: RFC 5952 (lower case, the longest run
//!   of zeros compressed), always in hex (PowerDNS refuses `::ffff:192.0.2.1` on input).
//! - `CNAME`, `NS`, `PTR`, `DNAME`, `ALIAS`: the target as an absolute name. `MX`: preference and
//!   target; `SRV`: priority, weight, port and target; numbers without leading zeros, single
//!   spaces. A target is always absolute: `mail.example.com` means `mail.example.com.`.
//! - `TXT`, `SPF`: text that starts with `"` is taken as the quoted strings of the zone-file
//!   form and only re-spaced; any other text is one string, quoted here (`hello world` →
//!   `"hello world"`, with `"` and `\` escaped).
//! - Any other type: the content as given, trimmed.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The longest DNS name, in presentation form without the trailing dot.
const MAX_NAME: usize = 253;
const MAX_LABEL: usize = 63;
/// The longest record data on the wire; a TXT record's strings must fit in it.
const MAX_RDATA: usize = 65_535;

/// Types whose content is one domain name.
const NAME_TYPES: &[&str] = &["CNAME", "NS", "PTR", "DNAME", "ALIAS"];

/// Checks that `name` is a DNS name (with or without its trailing dot). The message says what
/// is wrong, to be prefixed with where the name came from.
pub fn check_name(name: &str) -> Result<(), String> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Err("is empty".to_string());
    }
    if bare.len() > MAX_NAME {
        return Err(format!("is longer than {MAX_NAME} characters"));
    }
    for label in bare.split('.') {
        if label.is_empty() {
            return Err(format!("{name:?} has an empty label (two dots in a row)"));
        }
        if label.len() > MAX_LABEL {
            return Err(format!(
                "{name:?} has a label longer than {MAX_LABEL} characters"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || *c == '"')
        {
            return Err(format!("{name:?} contains {c:?}"));
        }
    }
    Ok(())
}

/// A name made absolute: lower case, with its trailing dot.
pub fn absolute(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

/// Whether the absolute `name` is `zone` or below it (both in normal form).
pub fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || zone == "." || name.ends_with(&format!(".{zone}"))
}

/// The absolute owner name of a record in `zone` (normal form): `@` is the apex, a name with a
/// trailing dot is absolute, a name that ends with the zone's name is absolute too
/// (`www.example.com` in `example.com`), and anything else is relative to the zone.
pub fn owner(name: &str, zone: &str) -> Result<String, String> {
    let name = name.trim();
    if name == "@" {
        return Ok(zone.to_string());
    }
    check_name(name)?;
    let lower = name.to_ascii_lowercase();
    if lower.ends_with('.') {
        return Ok(lower);
    }
    let bare_zone = zone.strip_suffix('.').unwrap_or(zone);
    if lower == bare_zone || lower.ends_with(&format!(".{bare_zone}")) {
        return Ok(format!("{lower}."));
    }
    let full = format!("{lower}.{zone}");
    check_name(&full)?;
    Ok(full)
}

/// A record type in normal form: upper case, letters and digits only.
pub fn record_type(rtype: &str) -> Result<String, String> {
    let upper = rtype.trim().to_ascii_uppercase();
    if upper.is_empty() || !upper.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("{rtype:?} is not a record type"));
    }
    Ok(upper)
}

/// One record's content in normal form for its (normal) type.
pub fn content(rtype: &str, content: &str) -> Result<String, String> {
    match rtype {
        "A" => content
            .trim()
            .parse::<Ipv4Addr>()
            .map(|a| a.to_string())
            .map_err(|_| format!("{content:?} is not an IPv4 address")),
        "AAAA" => content
            .trim()
            .parse::<Ipv6Addr>()
            .map(ipv6)
            .map_err(|_| format!("{content:?} is not an IPv6 address")),
        t if NAME_TYPES.contains(&t) => target(content),
        "MX" => fields(content, &["preference"], "MX", "10 mail.example.com."),
        "SRV" => fields(
            content,
            &["priority", "weight", "port"],
            "SRV",
            "10 5 443 host.example.com.",
        ),
        "TXT" | "SPF" => txt(content),
        _ => {
            let trimmed = content.trim();
            if trimmed.is_empty() {
                return Err("is empty".to_string());
            }
            Ok(trimmed.to_string())
        }
    }
}

/// A target name: absolute and lower case; `.` stays the root (a "null MX").
fn target(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name == "." {
        return Ok(".".to_string());
    }
    check_name(name).map_err(|e| format!("target {e}"))?;
    Ok(absolute(name))
}

/// `numbers… target`: each number a 16-bit integer, then a target name.
fn fields(content: &str, numbers: &[&str], rtype: &str, example: &str) -> Result<String, String> {
    let parts: Vec<&str> = content.split_whitespace().collect();
    if parts.len() != numbers.len() + 1 {
        return Err(format!(
            "{content:?} is not an {rtype} record (expected the form {example:?})"
        ));
    }
    let mut out = Vec::with_capacity(parts.len());
    for (part, what) in parts.iter().zip(numbers) {
        let n: u16 = part.parse().map_err(|_| {
            format!("{content:?}: the {what} {part:?} is not a number from 0 to 65535")
        })?;
        out.push(n.to_string());
    }
    out.push(target(parts[numbers.len()])?);
    Ok(out.join(" "))
}

/// TXT content in PowerDNS's zone-file form: quoted strings separated by one space.
fn txt(content: &str) -> Result<String, String> {
    let strings = if content.trim_start().starts_with('"') {
        quoted_strings(content.trim())?
    } else {
        vec![escape(content)]
    };
    let wire: usize = strings
        .iter()
        .map(|s| {
            let len = unescaped_len(s);
            // Strings over 255 bytes go out as several, each with its length byte.
            len + len.div_ceil(255).max(1)
        })
        .sum();
    if wire > MAX_RDATA {
        return Err(format!(
            "is {wire} bytes on the wire; a TXT record holds at most {MAX_RDATA}"
        ));
    }
    Ok(strings
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(" "))
}

/// Splits `"a" "b c"` into its strings, escapes kept as written.
fn quoted_strings(text: &str) -> Result<Vec<String>, String> {
    let mut strings = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.next() {
            None => break,
            Some('"') => {}
            Some(_) => {
                return Err(format!(
                    "{text:?} mixes quoted and unquoted text; quote every string, or quote none \
                     and fabrik quotes the whole text"
                ));
            }
        }
        let mut s = String::new();
        loop {
            match chars.next() {
                None => return Err(format!("{text:?} has a quote that is never closed")),
                Some('"') => break,
                Some('\\') => {
                    s.push('\\');
                    match chars.next() {
                        Some(c) => s.push(c),
                        None => {
                            return Err(format!("{text:?} ends in the middle of an escape"));
                        }
                    }
                }
                Some(c) => s.push(c),
            }
        }
        strings.push(s);
    }
    if strings.is_empty() {
        return Err("is empty".to_string());
    }
    Ok(strings)
}

/// Literal text as the inside of one quoted string.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The length in bytes of the inside of a quoted string once its escapes are read
/// (`\"` and `\065` are one byte each).
fn unescaped_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut len = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let digits = bytes[i + 1..]
                .iter()
                .take(3)
                .take_while(|b| b.is_ascii_digit())
                .count();
            i += if digits == 3 { 4 } else { 2 };
        } else {
            i += 1;
        }
        len += 1;
    }
    len
}

/// RFC 5952 text, always in hex: Rust prints `::ffff:192.0.2.1` for mapped addresses, which
/// PowerDNS refuses.
fn ipv6(addr: Ipv6Addr) -> String {
    let segments = addr.segments();
    // The longest run of two or more zero segments (the first one on a tie).
    let mut best: Option<(usize, usize)> = None;
    let mut i = 0;
    while i < segments.len() {
        if segments[i] != 0 {
            i += 1;
            continue;
        }
        let start = i;
        while i < segments.len() && segments[i] == 0 {
            i += 1;
        }
        let len = i - start;
        if len >= 2 && best.is_none_or(|(_, l)| len > l) {
            best = Some((start, len));
        }
    }
    let hex = |s: &[u16]| {
        s.iter()
            .map(|x| format!("{x:x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    match best {
        Some((start, len)) => format!(
            "{}::{}",
            hex(&segments[..start]),
            hex(&segments[start + len..])
        ),
        None => hex(&segments),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_relative_absolute_and_apex() {
        let zone = "example.test.";
        assert_eq!(owner("www", zone).unwrap(), "www.example.test.");
        assert_eq!(owner("WWW", zone).unwrap(), "www.example.test.");
        assert_eq!(
            owner("www.example.test", zone).unwrap(),
            "www.example.test."
        );
        assert_eq!(
            owner("Www.Example.Test.", zone).unwrap(),
            "www.example.test."
        );
        assert_eq!(owner("@", zone).unwrap(), zone);
        assert_eq!(owner("example.test", zone).unwrap(), zone);
        assert_eq!(owner("a.b", zone).unwrap(), "a.b.example.test.");
        assert_eq!(owner("*.dev", zone).unwrap(), "*.dev.example.test.");
        assert!(owner("a..b", zone).is_err());
        assert!(owner("", zone).is_err());
        assert!(owner("has space", zone).is_err());
        assert!(owner(&"x".repeat(64), zone).is_err());
    }

    #[test]
    fn contents_by_type() {
        let c = |t: &str, v: &str| content(t, v).unwrap();
        assert_eq!(c("A", " 192.0.2.1 "), "192.0.2.1");
        assert!(content("A", "192.0.2.300").is_err());
        assert!(content("A", "2001:db8::1").is_err());
        assert_eq!(c("AAAA", "2001:DB8:0:0::1"), "2001:db8::1");
        assert_eq!(c("AAAA", "2001:db8:0:1:0:0:0:1"), "2001:db8:0:1::1");
        assert_eq!(c("AAAA", "::ffff:192.0.2.1"), "::ffff:c000:201");
        assert_eq!(c("AAAA", "::1"), "::1");
        assert_eq!(c("AAAA", "::"), "::");
        assert_eq!(c("AAAA", "1:0:0:2:0:0:0:3"), "1:0:0:2::3");
        assert_eq!(c("AAAA", "1:2:3:4:5:6:7:8"), "1:2:3:4:5:6:7:8");
        assert_eq!(c("AAAA", "1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7");
        assert!(content("AAAA", "192.0.2.1").is_err());
        assert_eq!(c("CNAME", "Target.Example.com"), "target.example.com.");
        assert_eq!(c("NS", "ns1.example.com."), "ns1.example.com.");
        assert_eq!(c("MX", "010   Mail.Example.com"), "10 mail.example.com.");
        assert_eq!(c("MX", "0 ."), "0 .");
        assert!(content("MX", "mail.example.com").is_err());
        assert!(content("MX", "70000 mail.example.com").is_err());
        assert_eq!(
            c("SRV", "1 2 443 Srv.Example.com"),
            "1 2 443 srv.example.com."
        );
        assert!(content("SRV", "1 2 srv.example.com").is_err());
        assert_eq!(
            c("CAA", " 0 issue \"letsencrypt.org\" "),
            "0 issue \"letsencrypt.org\""
        );
    }

    #[test]
    fn txt_is_quoted_once() {
        let c = |v: &str| content("TXT", v).unwrap();
        assert_eq!(c("hello world"), "\"hello world\"");
        assert_eq!(c("\"hello world\""), "\"hello world\"");
        assert_eq!(c("  \"a\"    \"b\" "), "\"a\" \"b\"");
        assert_eq!(c("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\\\o/\"");
        assert_eq!(c("\"a\\\"b\""), "\"a\\\"b\"");
        assert_eq!(c("v=spf1 -all"), "\"v=spf1 -all\"");
        assert_eq!(c("Case Kept"), "\"Case Kept\"");
        assert_eq!(c("\"\""), "\"\"");
        assert!(content("TXT", "\"a\" b").is_err());
        assert!(content("TXT", "\"open").is_err());
        assert!(content("TXT", "\"a\\").is_err());
        assert!(content("TXT", &"x".repeat(70_000)).is_err());
        assert!(content("TXT", &"x".repeat(60_000)).is_ok());
    }

    #[test]
    fn escapes_count_as_one_byte() {
        assert_eq!(unescaped_len("a\\\"b"), 3);
        assert_eq!(unescaped_len("\\065bc"), 3);
        assert_eq!(unescaped_len("\\\\"), 1);
    }

    #[test]
    fn ipv6_text_matches_std_where_std_prints_hex() {
        for text in [
            "2001:db8::1",
            "fe80::1:2",
            "::",
            "1::",
            "2001:db8:0:0:1:0:0:1",
        ] {
            let addr: Ipv6Addr = text.parse().unwrap();
            assert_eq!(ipv6(addr), addr.to_string(), "{text}");
        }
    }
}

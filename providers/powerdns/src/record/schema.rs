//! The fields of `powerdns.record` and their normal form, so that two spellings of one RRset
//! never show as a change.
//!
//! PowerDNS wants every content in its own canonical text form ("Not in expected format"
//! otherwise), while people write `www`, `Mail.Example.com` or `hello world`. Everything sent
//! is first put in the normal form below, and everything read back is compared in that form.
//!
//! Names: as in `crate::dns_name`; an owner name may be relative to its zone or `@`.
//! Contents, by type:
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

use fabrik_provider::{
    Attributes, Error, ErrorKind, Field, FieldKind, OutputField, ReplaceStrategy, ResourceType,
    Result, Value,
};

use crate::dns_name::{absolute, check_name};

pub const RECORD_TYPE: &str = "powerdns.record";

pub(super) const DEFAULT_TTL: u64 = 300;
const MAX_TTL: u64 = 2_147_483_647;

pub fn resource_type() -> ResourceType {
    ResourceType {
        name: RECORD_TYPE,
        description: "One RRset in a PowerDNS zone: every record of one name and type.",
        fields: vec![
            Field::required(
                "zone",
                FieldKind::String,
                "The zone's name, such as \"example.com\".",
            )
            .force_new(),
            Field::required(
                "name",
                FieldKind::String,
                "The owner name: relative to the zone (\"www\"), absolute (\"www.example.com\", \
                 with or without the trailing dot), or \"@\" for the zone's apex.",
            )
            .force_new(),
            Field::required(
                "type",
                FieldKind::String,
                "The record type: A, AAAA, CNAME, MX, TXT, …",
            )
            .one_of(RECORD_TYPES)
            .force_new(),
            Field::required(
                "records",
                FieldKind::List,
                "The contents, one string per record (\"192.0.2.1\", \"10 mail.example.com\", \
                 \"v=spf1 -all\"; TXT is quoted for you unless it starts with a quote).",
            ),
            Field::optional(
                "ttl",
                FieldKind::Integer,
                "Time to live in seconds (default 300).",
            ),
        ],
        outputs: vec![
            OutputField::new("fqdn", "The absolute owner name, with its trailing dot.")
                .derived_from(&["zone", "name"]),
        ],
        // Deleting first keeps a replace right when the old and new spelling name the same
        // RRset (`www` and `www.example.com`), and lets an A RRset give way to a CNAME.
        replace: ReplaceStrategy::DestroyBeforeCreate,
    }
}

/// An RRset in normal form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RRset {
    pub(super) zone: String,
    pub(super) name: String,
    pub(super) rtype: String,
    /// Normal contents, sorted: the order of records in an RRset means nothing.
    pub(super) records: Vec<String>,
    pub(super) ttl: u64,
}

impl RRset {
    pub(super) fn from_inputs(inputs: &Attributes) -> Result<RRset> {
        let zone = zone_of(inputs)?;
        let rtype = type_of(inputs)?;
        let name = name_of(inputs, &zone)?;
        let Some(raw) = inputs.get("records") else {
            return Err(invalid("`records` is missing"));
        };
        let records = contents(raw, &rtype)?;
        let ttl = ttl_of(inputs)?.unwrap_or(DEFAULT_TTL);
        let rrset = RRset {
            zone,
            name,
            rtype,
            records,
            ttl,
        };
        check_shape(
            Some(&rrset.zone),
            Some(&rrset.name),
            &rrset.rtype,
            &rrset.records,
        )?;
        Ok(rrset)
    }

    pub(super) fn id(&self) -> String {
        identity_id(&self.zone, &self.name, &self.rtype)
    }

    fn attributes(&self) -> Attributes {
        let mut out = Attributes::new();
        out.insert("zone".into(), Value::String(self.zone.clone()));
        out.insert("name".into(), Value::String(self.name.clone()));
        out.insert("type".into(), Value::String(self.rtype.clone()));
        out.insert(
            "records".into(),
            Value::Array(self.records.iter().cloned().map(Value::String).collect()),
        );
        out.insert("ttl".into(), Value::from(self.ttl));
        out
    }

    pub(super) fn outputs(&self) -> Attributes {
        let mut out = Attributes::new();
        out.insert("fqdn".into(), Value::String(self.name.clone()));
        out
    }
}

/// A record's inputs in normal form: `zone` and `name` absolute and lower case with the
/// trailing dot, `type` upper case, `records` in each type's normal form and sorted, `ttl`
/// filled in (300). Create and update send this form; read compares in it.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for a missing or malformed field.
pub fn normalise(inputs: &Attributes) -> Result<Attributes> {
    RRset::from_inputs(inputs).map(|r| r.attributes())
}

/// Checks the fields that are known (at plan time some may not be).
pub fn validate(inputs: &Attributes) -> Result<()> {
    let zone = match inputs.get("zone") {
        Some(_) => Some(zone_of(inputs)?),
        None => None,
    };
    let rtype = match inputs.get("type") {
        Some(_) => Some(type_of(inputs)?),
        None => None,
    };
    let name = match (inputs.get("name"), &zone) {
        (Some(_), Some(zone)) => Some(name_of(inputs, zone)?),
        (Some(Value::String(n)), None) if n.trim() == "@" => None,
        (Some(Value::String(n)), None) => {
            check_name(n.trim()).map_err(|e| invalid(format!("`name` {e}")))?;
            None
        }
        (Some(_), None) => return Err(invalid("`name` must be a string")),
        (None, _) => None,
    };
    ttl_of(inputs)?;
    if let Some(raw) = inputs.get("records") {
        let records = contents(raw, rtype.as_deref().unwrap_or("TYPE0"))?;
        if let Some(rtype) = &rtype {
            check_shape(zone.as_deref(), name.as_deref(), rtype, &records)?;
        }
    }
    Ok(())
}

/// The rules that involve more than one field (those whose fields are known).
fn check_shape(
    zone: Option<&str>,
    name: Option<&str>,
    rtype: &str,
    records: &[String],
) -> Result<()> {
    if rtype == "CNAME" {
        if records.len() != 1 {
            return Err(invalid(format!(
                "a CNAME RRset has exactly one record, not {}",
                records.len()
            )));
        }
        if let (Some(zone), Some(name)) = (zone, name)
            && zone == name
        {
            return Err(invalid(format!(
                "a CNAME cannot be at the zone's apex ({zone}): the apex has SOA and NS records"
            )));
        }
    }
    Ok(())
}

pub(super) fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

/// The zone a record's inputs name, in normal form (its batch key), without normalising the
/// rest of them.
pub fn zone(inputs: &Attributes) -> Option<String> {
    zone_of(inputs).ok()
}

pub(super) fn zone_of(inputs: &Attributes) -> Result<String> {
    match inputs.get("zone") {
        Some(Value::String(zone)) => {
            check_name(zone.trim()).map_err(|e| invalid(format!("`zone` {e}")))?;
            Ok(absolute(zone))
        }
        _ => Err(invalid("`zone` must be a string")),
    }
}

pub(super) fn type_of(inputs: &Attributes) -> Result<String> {
    match inputs.get("type") {
        Some(Value::String(t)) => record_type(t).map_err(|e| invalid(format!("`type`: {e}"))),
        _ => Err(invalid("`type` must be a string")),
    }
}

pub(super) fn name_of(inputs: &Attributes, zone: &str) -> Result<String> {
    let Some(Value::String(name)) = inputs.get("name") else {
        return Err(invalid("`name` must be a string"));
    };
    let owner = owner(name, zone).map_err(|e| invalid(format!("`name` {e}")))?;
    if !in_zone(&owner, zone) {
        return Err(invalid(format!(
            "`name` {name:?} is not in zone {zone}: write it relative to the zone (\"www\") or \
             as a name below it"
        )));
    }
    Ok(owner)
}

pub(super) fn ttl_of(inputs: &Attributes) -> Result<Option<u64>> {
    match inputs.get("ttl") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(ttl) if (1..=MAX_TTL).contains(&ttl) => Ok(Some(ttl)),
            _ => Err(invalid(format!(
                "`ttl` must be a number of seconds from 1 to {MAX_TTL}, not {v}"
            ))),
        },
    }
}

/// The normal contents of a `records` list for `rtype`, sorted; duplicates are an error.
/// The type `TYPE0` (type not known yet) only checks that there are strings.
pub(super) fn contents(raw: &Value, rtype: &str) -> Result<Vec<String>> {
    let Value::Array(items) = raw else {
        return Err(invalid("`records` must be a list of strings"));
    };
    if items.is_empty() {
        return Err(invalid(
            "`records` is empty; an RRset needs at least one record (remove the resource to \
             delete it)",
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(text) = item else {
            return Err(invalid(format!(
                "`records` must be a list of strings; {item} is not a string (quote it)"
            )));
        };
        if rtype == "TYPE0" {
            continue;
        }
        let normal = content(rtype, text).map_err(|e| invalid(format!("{rtype} record {e}")))?;
        out.push(normal);
    }
    out.sort();
    if let Some(twice) = out.windows(2).find(|w| w[0] == w[1]) {
        return Err(invalid(format!(
            "`records` lists {:?} twice (after normalisation)",
            twice[0]
        )));
    }
    Ok(out)
}

pub(super) fn identity_id(zone: &str, name: &str, rtype: &str) -> String {
    format!("{zone}/{name}/{rtype}")
}

/// Splits an id `<zone>/<name>/<type>`. Names may hold `/` (RFC 2317 reverse zones), so the
/// split is the one where the name lies in the zone.
pub(super) fn parse_id(id: &str) -> Option<(String, String, String)> {
    let (rest, rtype) = id.rsplit_once('/')?;
    for (i, _) in rest.match_indices('/') {
        let (zone, name) = (&rest[..i], &rest[i + 1..]);
        if !zone.is_empty() && !name.is_empty() && in_zone(name, zone) {
            return Some((zone.to_string(), name.to_string(), rtype.to_string()));
        }
    }
    None
}

/// The RRset an import id names: `<zone>/<name>/<type>` as [`identity_id`] writes it, in any
/// case and with or without trailing dots; the name may also be relative to the zone or `@`.
pub(super) fn import_id(id: &str) -> Result<(String, String, String)> {
    let bad = || {
        invalid(format!(
            "{id:?} is not a powerdns.record id: write it as <zone>/<name>/<type>, such as \
             `example.com./www.example.com./A`"
        ))
    };
    let (rest, rtype) = id.trim().rsplit_once('/').ok_or_else(bad)?;
    let rtype = record_type(rtype).map_err(|_| bad())?;
    // Names may hold `/` (RFC 2317 reverse zones): the split is the one where the name lies
    // in the zone.
    for (i, _) in rest.match_indices('/') {
        let (zone, name) = (rest[..i].trim(), &rest[i + 1..]);
        if zone.is_empty() || check_name(zone).is_err() {
            continue;
        }
        let zone = absolute(zone);
        if let Ok(name) = owner(name, &zone)
            && in_zone(&name, &zone)
        {
            return Ok((zone, name, rtype));
        }
    }
    Err(bad())
}

/// The longest record data on the wire; a TXT record's strings must fit in it.
const MAX_RDATA: usize = 65_535;

/// Types whose content is one domain name.
/// The record types PowerDNS serves (its "Supported Record Types"), the transaction types
/// TKEY and TSIG left out: they are no zone's records.
const RECORD_TYPES: &[&str] = &[
    "A",
    "AAAA",
    "AFSDB",
    "ALIAS",
    "APL",
    "CAA",
    "CDNSKEY",
    "CDS",
    "CERT",
    "CNAME",
    "CSYNC",
    "DHCID",
    "DLV",
    "DNAME",
    "DNSKEY",
    "DS",
    "EUI48",
    "EUI64",
    "HINFO",
    "HTTPS",
    "IPSECKEY",
    "KEY",
    "KX",
    "L32",
    "L64",
    "LOC",
    "LP",
    "LUA",
    "MINFO",
    "MR",
    "MX",
    "NAPTR",
    "NID",
    "NS",
    "NSEC",
    "NSEC3",
    "NSEC3PARAM",
    "OPENPGPKEY",
    "PTR",
    "RKEY",
    "RP",
    "RRSIG",
    "SIG",
    "SMIMEA",
    "SOA",
    "SPF",
    "SRV",
    "SSHFP",
    "SVCB",
    "TLSA",
    "TXT",
    "URI",
    "ZONEMD",
];

const NAME_TYPES: &[&str] = &["CNAME", "NS", "PTR", "DNAME", "ALIAS"];

/// Whether the absolute `name` is `zone` or below it (both in normal form).
fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || zone == "." || name.ends_with(&format!(".{zone}"))
}

/// The absolute owner name of a record in `zone` (normal form): `@` is the apex, a name with a
/// trailing dot is absolute, a name that ends with the zone's name is absolute too
/// (`www.example.com` in `example.com`), and anything else is relative to the zone.
pub(super) fn owner(name: &str, zone: &str) -> Result<String, String> {
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
fn record_type(rtype: &str) -> Result<String, String> {
    let upper = rtype.trim().to_ascii_uppercase();
    if upper.is_empty() || !upper.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("{rtype:?} is not a record type"));
    }
    Ok(upper)
}

/// One record's content in normal form for its (normal) type.
pub(super) fn content(rtype: &str, content: &str) -> Result<String, String> {
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
pub(super) fn unescaped_len(s: &str) -> usize {
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
pub(super) fn ipv6(addr: Ipv6Addr) -> String {
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

//! The fields of `cloudflare.record` and their normal form: content as Cloudflare stores it,
//! names absolute without the trailing dot, and the comment with fabrik's marker after the
//! user's text. Planning needs all of this and never talks to Cloudflare; the calls are in
//! `mod.rs`.

use std::net::{Ipv4Addr, Ipv6Addr};

use fabrik_provider::{
    Attributes, Error, ErrorKind, Field, FieldKind, OutputField, ReplaceStrategy, ResourceType,
    Result, Target, Value,
};
use serde_json::json;

pub const RECORD_TYPE: &str = "cloudflare.record";
/// Cloudflare's automatic TTL.
pub(super) const AUTO_TTL: u64 = 1;
/// The longest comment on the Free plan, marker included (paid plans keep 500).
const MAX_COMMENT: usize = 100;
/// Types whose content is one plain string; the others (SRV, CAA, …) take structured `data`.
const TYPES: &[&str] = &["A", "AAAA", "CNAME", "MX", "NS", "PTR", "TXT"];
/// Types whose content is a host name (lower case, no trailing dot in Cloudflare's answers).
const HOST_TYPES: &[&str] = &["CNAME", "MX", "NS", "PTR"];
const MARKER_PREFIX: &str = "fabrik:";

pub fn resource_type() -> ResourceType {
    ResourceType {
        name: RECORD_TYPE,
        description: "One DNS record in a Cloudflare zone.",
        fields: vec![
            Field::required(
                "zone",
                FieldKind::String,
                "The zone's name, such as \"example.com\" (looked up once per run).",
            )
            .force_new(),
            Field::required(
                "name",
                FieldKind::String,
                "The record's name: relative to the zone (\"www\"), absolute \
                 (\"www.example.com\"), or \"@\" for the zone's apex.",
            ),
            Field::required(
                "type",
                FieldKind::String,
                "A, AAAA, CNAME, MX, NS, PTR or TXT.",
            )
            .one_of(TYPES)
            .force_new(),
            Field::required(
                "content",
                FieldKind::String,
                "The record's content: an address, a host name, or text (TXT as given).",
            ),
            Field::optional(
                "ttl",
                FieldKind::Integer,
                "Time to live in seconds, 60 to 86400, or 1 for automatic (the default).",
            ),
            Field::optional(
                "proxied",
                FieldKind::Boolean,
                "Whether traffic goes through Cloudflare's proxy (A, AAAA and CNAME only; \
                 default false).",
            ),
            Field::optional(
                "priority",
                FieldKind::Integer,
                "The preference of an MX record (required for MX, 0 to 65535).",
            ),
            Field::optional(
                "comment",
                FieldKind::String,
                "A note on the record; fabrik adds its ownership marker after it.",
            ),
        ],
        outputs: vec![
            OutputField::new("id", "The record's Cloudflare id."),
            OutputField::new("zone_id", "The zone's Cloudflare id."),
        ],
        // Deleting first lets an A record give way to a CNAME of the same name, which
        // Cloudflare refuses beside each other.
        replace: ReplaceStrategy::DestroyBeforeCreate,
    }
}

/// A record in normal form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub(crate) zone: String,
    pub(crate) name: String,
    pub(crate) rtype: String,
    pub(crate) content: String,
    pub(crate) ttl: u64,
    pub(crate) proxied: bool,
    pub(crate) priority: Option<u64>,
    pub(crate) comment: String,
}

impl Record {
    pub(crate) fn from_inputs(inputs: &Attributes) -> Result<Record> {
        let zone = zone_of(inputs)?.ok_or_else(|| invalid("`zone` is missing"))?;
        let rtype = type_of(inputs)?.ok_or_else(|| invalid("`type` is missing"))?;
        let name = name_of(inputs, &zone)?.ok_or_else(|| invalid("`name` is missing"))?;
        let content =
            content_of(inputs, Some(&rtype))?.ok_or_else(|| invalid("`content` is missing"))?;
        let record = Record {
            zone,
            name,
            content,
            ttl: ttl_of(inputs)?.unwrap_or(AUTO_TTL),
            proxied: proxied_of(inputs)?.unwrap_or(false),
            priority: priority_of(inputs)?,
            comment: comment_of(inputs)?.unwrap_or_default(),
            rtype,
        };
        check_shape(&record.rtype, record.proxied, record.priority)?;
        Ok(record)
    }

    /// The record `target` writes: [`Record::from_inputs`], with room checked for the marker
    /// in the comment (a comment known only at apply time is first checked here).
    pub(crate) fn to_write(inputs: &Attributes, target: Target<'_>) -> Result<Record> {
        let record = Record::from_inputs(inputs)?;
        check_room(&record.comment, target)?;
        Ok(record)
    }

    pub(crate) fn attributes(&self) -> Attributes {
        let mut out = Attributes::new();
        out.insert("zone".into(), Value::String(self.zone.clone()));
        out.insert("name".into(), Value::String(self.name.clone()));
        out.insert("type".into(), Value::String(self.rtype.clone()));
        out.insert("content".into(), Value::String(self.content.clone()));
        out.insert("ttl".into(), Value::from(self.ttl));
        out.insert("proxied".into(), Value::Bool(self.proxied));
        if let Some(p) = self.priority {
            out.insert("priority".into(), Value::from(p));
        }
        // No comment is no field, so a plan does not list `comment = ""` for every record.
        if !self.comment.is_empty() {
            out.insert("comment".into(), Value::String(self.comment.clone()));
        }
        out
    }

    /// The body of a create, overwrite or update: every field fabrik manages, the comment
    /// carrying the marker.
    pub(crate) fn body(&self, marker: &str) -> Value {
        let mut body = json!({
            "type": self.rtype,
            "name": self.name,
            "content": self.content,
            "ttl": self.ttl,
            "proxied": self.proxied,
            "comment": stamp(&self.comment, marker),
        });
        if let Some(p) = self.priority {
            body["priority"] = json!(p);
        }
        body
    }

    pub(crate) fn label(&self) -> String {
        format!("{} {} {}", self.name, self.rtype, self.content)
    }
}

/// The stored comment: the user's comment, then the marker.
pub(super) fn stamp(comment: &str, marker: &str) -> String {
    if comment.is_empty() {
        marker.to_string()
    } else {
        format!("{comment} {marker}")
    }
}

/// A stored comment split into the user's comment and the fabrik marker it ends with.
pub(super) fn split_comment(stored: Option<&str>) -> (String, Option<String>) {
    let stored = stored.unwrap_or("").trim_end();
    let (head, last) = match stored.rsplit_once(char::is_whitespace) {
        Some((head, last)) => (head.trim_end(), last),
        None => ("", stored),
    };
    if last.starts_with(MARKER_PREFIX) && last.len() > MARKER_PREFIX.len() {
        (head.to_string(), Some(last.to_string()))
    } else {
        (stored.to_string(), None)
    }
}

/// A record's inputs in normal form: `zone` and `name` lower case without the trailing dot,
/// `name` absolute, `type` upper case, `content` as Cloudflare stores it, `ttl` (1),
/// `proxied` (false) and `comment` ("") filled in.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for a missing or malformed field.
pub fn normalise(inputs: &Attributes) -> Result<Attributes> {
    Record::from_inputs(inputs).map(|r| r.attributes())
}

/// Checks the fields that are known (at plan time some may not be), for resource `target`.
pub fn validate(target: Target<'_>, inputs: &Attributes) -> Result<()> {
    let zone = zone_of(inputs)?;
    let rtype = type_of(inputs)?;
    match &zone {
        Some(zone) => {
            name_of(inputs, zone)?;
        }
        None => {
            if let Some(Value::String(name)) = inputs.get("name")
                && name.trim() != "@"
            {
                check_name(name.trim()).map_err(|e| invalid(format!("`name` {e}")))?;
            }
        }
    }
    content_of(inputs, rtype.as_deref())?;
    ttl_of(inputs)?;
    // An absent comment may be one not known yet; the marker alone must fit anyway.
    check_room(&comment_of(inputs)?.unwrap_or_default(), target)?;
    let proxied = proxied_of(inputs)?;
    let priority = priority_of(inputs)?;
    if let Some(rtype) = &rtype {
        // An absent `priority` may be one not known yet: the missing MX priority is caught
        // by the normal form, which sees every input.
        let priority = match (rtype.as_str(), priority) {
            ("MX", None) => Some(0),
            (_, p) => p,
        };
        check_shape(rtype, proxied.unwrap_or(false), priority)?;
    }
    Ok(())
}

/// The rules between fields.
fn check_shape(rtype: &str, proxied: bool, priority: Option<u64>) -> Result<()> {
    if proxied && !matches!(rtype, "A" | "AAAA" | "CNAME") {
        return Err(invalid(format!(
            "`proxied` applies to A, AAAA and CNAME records only, not {rtype}"
        )));
    }
    match (rtype, priority) {
        ("MX", None) => Err(invalid("an MX record needs `priority` (such as 10)")),
        ("MX", Some(_)) | (_, None) => Ok(()),
        (_, Some(_)) => Err(invalid(format!(
            "`priority` applies to MX records only, not {rtype}"
        ))),
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

fn string_field<'a>(inputs: &'a Attributes, field: &str) -> Result<Option<&'a str>> {
    match inputs.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("`{field}` must be a string"))),
    }
}

fn zone_of(inputs: &Attributes) -> Result<Option<String>> {
    let Some(zone) = string_field(inputs, "zone")? else {
        return Ok(None);
    };
    let zone = zone.trim();
    check_name(zone).map_err(|e| invalid(format!("`zone` {e}")))?;
    Ok(Some(bare(zone)))
}

fn type_of(inputs: &Attributes) -> Result<Option<String>> {
    let Some(rtype) = string_field(inputs, "type")? else {
        return Ok(None);
    };
    let upper = rtype.trim().to_ascii_uppercase();
    if !TYPES.contains(&upper.as_str()) {
        return Err(invalid(format!(
            "`type` {rtype:?} is not supported: cloudflare.record manages {} records",
            TYPES.join(", ")
        )));
    }
    Ok(Some(upper))
}

/// The absolute name (lower case, no trailing dot) of a record in `zone`.
fn name_of(inputs: &Attributes, zone: &str) -> Result<Option<String>> {
    let Some(name) = string_field(inputs, "name")? else {
        return Ok(None);
    };
    let trimmed = name.trim();
    if trimmed == "@" {
        return Ok(Some(zone.to_string()));
    }
    check_name(trimmed).map_err(|e| invalid(format!("`name` {e}")))?;
    let lower = trimmed.to_ascii_lowercase();
    let full = if let Some(absolute) = lower.strip_suffix('.') {
        absolute.to_string()
    } else if lower == zone || lower.ends_with(&format!(".{zone}")) {
        lower
    } else {
        format!("{lower}.{zone}")
    };
    if full != zone && !full.ends_with(&format!(".{zone}")) {
        return Err(invalid(format!(
            "`name` {name:?} is not in zone {zone}: write it relative to the zone (\"www\"), \
             as \"@\" for the apex, or as a name ending in {zone}"
        )));
    }
    check_name(&full).map_err(|e| invalid(format!("`name` {e}")))?;
    Ok(Some(full))
}

fn content_of(inputs: &Attributes, rtype: Option<&str>) -> Result<Option<String>> {
    let Some(content) = string_field(inputs, "content")? else {
        return Ok(None);
    };
    match rtype {
        Some(rtype) => normal_content(rtype, content)
            .map(Some)
            .map_err(|e| invalid(format!("`content` {e}"))),
        None if content.is_empty() => Err(invalid("`content` is empty")),
        None => Ok(Some(content.to_string())),
    }
}

/// Content as Cloudflare stores it: addresses in their canonical text (IPv6 compressed, lower
/// case), host names lower case without the trailing dot, text exactly as given.
pub(super) fn normal_content(rtype: &str, content: &str) -> std::result::Result<String, String> {
    let normal = match rtype {
        "A" => content
            .trim()
            .parse::<Ipv4Addr>()
            .map(|a| a.to_string())
            .map_err(|_| format!("{content:?} is not an IPv4 address"))?,
        "AAAA" => content
            .trim()
            .parse::<Ipv6Addr>()
            .map(|a| a.to_string())
            .map_err(|_| format!("{content:?} is not an IPv6 address"))?,
        t if HOST_TYPES.contains(&t) => {
            let host = content.trim();
            check_name(host).map_err(|e| format!("(a host name) {e}"))?;
            bare(host)
        }
        _ => content.to_string(),
    };
    if normal.is_empty() {
        return Err("is empty".to_string());
    }
    Ok(normal)
}

fn ttl_of(inputs: &Attributes) -> Result<Option<u64>> {
    match inputs.get("ttl") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(ttl) if ttl == AUTO_TTL || (60..=86_400).contains(&ttl) => Ok(Some(ttl)),
            _ => Err(invalid(format!(
                "`ttl` must be 1 (automatic) or 60 to 86400 seconds, not {v}"
            ))),
        },
    }
}

fn proxied_of(inputs: &Attributes) -> Result<Option<bool>> {
    match inputs.get("proxied") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid("`proxied` must be true or false")),
    }
}

fn priority_of(inputs: &Attributes) -> Result<Option<u64>> {
    match inputs.get("priority") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(p) if p <= 65_535 => Ok(Some(p)),
            _ => Err(invalid(format!("`priority` must be 0 to 65535, not {v}"))),
        },
    }
}

fn comment_of(inputs: &Attributes) -> Result<Option<String>> {
    let Some(comment) = string_field(inputs, "comment")? else {
        return Ok(None);
    };
    let comment = comment.trim();
    if comment.contains(MARKER_PREFIX) {
        return Err(invalid(format!(
            "`comment` may not contain {MARKER_PREFIX:?}: fabrik writes its ownership marker there"
        )));
    }
    if comment.chars().any(char::is_control) {
        return Err(invalid("`comment` must be one line"));
    }
    Ok(Some(comment.to_string()))
}

/// Whether `comment` and the marker of `target` fit in a record's comment as [`stamp`] joins
/// them: the user's comment, a space, the marker.
fn check_room(comment: &str, target: Target<'_>) -> Result<()> {
    let marker = target.marker();
    let stored = stamp(comment, &marker).chars().count();
    if stored <= MAX_COMMENT {
        return Ok(());
    }
    let mark = marker.chars().count();
    if comment.is_empty() {
        return Err(invalid(format!(
            "fabrik's ownership marker `{marker}` is {mark} characters, more than the \
             {MAX_COMMENT} Cloudflare keeps in a record's comment: shorten the stack's or the \
             resource's name"
        )));
    }
    Err(invalid(format!(
        "`comment` is {} characters; with a space and fabrik's ownership marker `{marker}` \
         ({mark}) it would be {stored}, more than the {MAX_COMMENT} Cloudflare keeps: \
         shorten it to at most {}",
        comment.chars().count(),
        MAX_COMMENT.saturating_sub(mark + 1)
    )))
}

/// A name: lower case, without its trailing dot.
fn bare(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn check_name(name: &str) -> std::result::Result<(), String> {
    let stripped = name.strip_suffix('.').unwrap_or(name);
    if stripped.is_empty() {
        return Err("is empty".to_string());
    }
    if stripped.len() > 253 {
        return Err("is longer than 253 characters".to_string());
    }
    for label in stripped.split('.') {
        if label.is_empty() {
            return Err(format!("{name:?} has an empty label (two dots in a row)"));
        }
        if label.len() > 63 {
            return Err(format!("{name:?} has a label longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || *c == '"' || *c == '/')
        {
            return Err(format!("{name:?} contains {c:?}"));
        }
    }
    Ok(())
}

/// Which zone a change belongs to, for batching.
pub fn batch_key(inputs: &Attributes) -> Option<String> {
    zone_of(inputs).ok().flatten().map(|z| format!("zone {z}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(value: Value) -> Attributes {
        value.as_object().unwrap().clone()
    }

    /// A resource whose marker, `fabrik:shop/frontend-www`, is 24 characters.
    fn target() -> Target<'static> {
        Target {
            stack: "shop",
            name: "frontend-www",
            type_name: RECORD_TYPE,
        }
    }

    #[test]
    fn normal_form() {
        let got = normalise(&attrs(json!({
            "zone": "Example.COM.", "name": "WWW", "type": "aaaa",
            "content": "2001:DB8:0:0:0:0:0:1",
        })))
        .unwrap();
        assert_eq!(
            Value::Object(got),
            json!({
                "zone": "example.com", "name": "www.example.com", "type": "AAAA",
                "content": "2001:db8::1", "ttl": 1, "proxied": false,
            })
        );
        for (name, fqdn) in [
            ("@", "example.com"),
            ("www.example.com", "www.example.com"),
            ("www.example.com.", "www.example.com"),
            ("a.b", "a.b.example.com"),
            ("*.dev", "*.dev.example.com"),
        ] {
            let got = normalise(&attrs(json!({
                "zone": "example.com", "name": name, "type": "TXT", "content": " as  given ",
            })))
            .unwrap();
            assert_eq!(got["name"], fqdn, "{name}");
            assert_eq!(got["content"], " as  given ");
        }
        let mx = normalise(&attrs(json!({
            "zone": "example.com", "name": "@", "type": "MX", "content": "Mail.Example.com.",
            "priority": 10, "ttl": 300, "comment": " mail ",
        })))
        .unwrap();
        assert_eq!(mx["content"], "mail.example.com");
        assert_eq!(mx["priority"], 10);
        assert_eq!(mx["comment"], "mail");
    }

    #[test]
    fn validation() {
        let bad = [
            json!({"type": "A", "content": "192.0.2.300"}),
            json!({"type": "AAAA", "content": "192.0.2.1"}),
            json!({"type": "SRV"}),
            json!({"type": "TXT", "priority": 5}),
            json!({"type": "TXT", "proxied": true}),
            json!({"ttl": 30}),
            json!({"ttl": 86_401}),
            json!({"ttl": "auto"}),
            json!({"priority": 70_000}),
            json!({"comment": "sneaky fabrik:other/x"}),
            json!({"comment": "x".repeat(81)}),
            json!({"zone": "example.com", "name": "www.other.com."}),
            json!({"name": "a..b"}),
            json!({"zone": "bad zone"}),
            json!({"content": ""}),
        ];
        for inputs in bad {
            match validate(target(), &attrs(inputs.clone())) {
                Err(e) => assert_eq!(e.kind, ErrorKind::InvalidInput, "{inputs}"),
                Ok(()) => panic!("{inputs} passed validation"),
            }
        }
        validate(target(), &attrs(json!({"type": "MX"}))).unwrap();
        let no_priority = json!({"zone": "example.com", "name": "@", "type": "MX", "content": "mail.example.com"});
        assert_eq!(
            normalise(&attrs(no_priority)).unwrap_err().kind,
            ErrorKind::InvalidInput
        );
        validate(
            target(),
            &attrs(json!({"type": "A", "proxied": true, "ttl": 1})),
        )
        .unwrap();
        validate(target(), &attrs(json!({"name": "www", "ttl": 86_400}))).unwrap();
    }

    /// Cloudflare keeps 100 characters of comment on the Free plan: the user's comment, a
    /// space and the marker must fit together, whatever the stack and resource are called.
    #[test]
    fn the_marker_counts_against_the_comment_limit() {
        let comment = |n: usize| attrs(json!({"comment": "x".repeat(n)}));
        // 75 + 1 + 24 = 100.
        validate(target(), &comment(75)).unwrap();
        let err = validate(target(), &comment(76)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert_eq!(
            err.message,
            "`comment` is 76 characters; with a space and fabrik's ownership marker \
             `fabrik:shop/frontend-www` (24) it would be 101, more than the 100 Cloudflare \
             keeps: shorten it to at most 75"
        );
        // Characters, not bytes.
        validate(target(), &attrs(json!({"comment": "é".repeat(75)}))).unwrap();

        // A short marker leaves more room; a long one may leave none.
        let short = Target {
            stack: "s",
            name: "w",
            ..target()
        };
        validate(short, &comment(89)).unwrap();
        let long = "n".repeat(95);
        let long = Target {
            name: &long,
            ..target()
        };
        let err = validate(long, &attrs(json!({"type": "A"}))).unwrap_err();
        assert!(err.message.contains("is 107 characters"), "{err}");
        assert!(
            err.message
                .contains("shorten the stack's or the resource's name"),
            "{err}"
        );

        // A comment known only at apply time is checked before anything is sent.
        let inputs = attrs(json!({
            "zone": "example.com", "name": "www", "type": "A", "content": "192.0.2.1",
            "comment": "x".repeat(76),
        }));
        assert!(Record::from_inputs(&inputs).is_ok());
        let err = Record::to_write(&inputs, target()).unwrap_err();
        assert!(err.message.contains("would be 101"), "{err}");
    }

    #[test]
    fn comments_carry_the_marker_after_the_users_text() {
        assert_eq!(stamp("", "fabrik:s/www"), "fabrik:s/www");
        assert_eq!(
            stamp("front door", "fabrik:s/www"),
            "front door fabrik:s/www"
        );
        assert_eq!(
            split_comment(Some("front door fabrik:s/www")),
            ("front door".to_string(), Some("fabrik:s/www".to_string()))
        );
        assert_eq!(
            split_comment(Some("fabrik:s/www")),
            (String::new(), Some("fabrik:s/www".to_string()))
        );
        assert_eq!(
            split_comment(Some("made by hand")),
            ("made by hand".to_string(), None)
        );
        assert_eq!(split_comment(None), (String::new(), None));
        assert_eq!(
            split_comment(Some("fabrik:")),
            ("fabrik:".to_string(), None)
        );
    }
}

//! The shape of one `verify:` entry, read once for both of its sources: the located spec value
//! at plan time ([`super::check_entry`]) and the resolved JSON value at apply time
//! ([`super::Gate::from_value`]). One reader means plan and apply can never disagree about what
//! a valid entry is.

use std::borrow::Cow;
use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::source::{Diagnostic, Loc, closest};
use crate::spec::Expr;

use super::node::{Node, Val, from_expr, from_json};
use super::parse::{
    DNS_TYPES, normalize_expected, parse_dns_name, parse_dns_type, parse_duration, parse_host_port,
    parse_nameserver, parse_url,
};

/// What a gate checks; the entry's one "kind" key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Http,
    Tls,
    Dns,
    Tcp,
    Command,
}

const KINDS: [Kind; 5] = [Kind::Http, Kind::Tls, Kind::Dns, Kind::Tcp, Kind::Command];

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Tls => "tls",
            Kind::Dns => "dns",
            Kind::Tcp => "tcp",
            Kind::Command => "command",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Kind> {
        KINDS.into_iter().find(|k| k.name() == name)
    }

    /// The kind's name with its article, as in "an `http` gate".
    fn gate(self) -> String {
        match self {
            Kind::Http => "an `http` gate".to_string(),
            other => format!("a `{}` gate", other.name()),
        }
    }

    /// The option names this kind accepts besides its kind key.
    pub(crate) fn options(self) -> &'static [&'static str] {
        match self {
            Kind::Http => &[
                "status",
                "body_contains",
                "headers",
                "ca_file",
                "timeout",
                "interval",
            ],
            Kind::Tls => &["port", "ca_file", "min_valid_days", "timeout", "interval"],
            Kind::Dns => &["type", "expect", "nameserver", "timeout", "interval"],
            Kind::Tcp => &["timeout", "interval"],
            Kind::Command => &["env", "dir", "timeout", "interval"],
        }
    }

    /// What the kind key's value is, for messages.
    fn target_shape(self) -> &'static str {
        match self {
            Kind::Http => "a URL such as \"https://api.example.com/health\"",
            Kind::Tls => "a host such as \"api.example.com\" or \"api.example.com:8443\"",
            Kind::Dns => "a name such as \"api.example.com\"",
            Kind::Tcp => "HOST:PORT such as \"127.0.0.1:8080\"",
            Kind::Command => "a list of strings such as [\"./smoke-test.sh\", \"--quick\"]",
        }
    }
}

/// Every option name of every kind, for suggestions when the kind itself is unclear.
fn all_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = KINDS.iter().map(|k| k.name()).collect();
    for kind in KINDS {
        for option in kind.options() {
            if !names.contains(option) {
                names.push(option);
            }
        }
    }
    names
}

/// The longest `timeout` a gate may have; also keeps deadline arithmetic far from overflow.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

/// One entry as read: fields stay `None` when absent, invalid or not known until apply.
#[derive(Debug, Default)]
pub(crate) struct Entry {
    pub kind: Option<Kind>,
    pub target: Option<String>,
    /// The port written in the target (`host:port`), if any.
    pub target_port: Option<u16>,
    pub status: Option<u16>,
    pub body_contains: Option<String>,
    pub headers: Vec<(String, String)>,
    pub timeout: Option<Duration>,
    pub interval: Option<Duration>,
    pub ca_file: Option<String>,
    pub port: Option<u16>,
    pub min_valid_days: Option<u32>,
    pub dns_type: Option<RecordType>,
    pub expect: Option<Vec<String>>,
    pub nameserver: Option<(String, u16)>,
    /// A `command` gate's program and arguments.
    pub argv: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub dir: Option<String>,
}

/// Reads a spec entry at plan time.
pub(crate) fn read_expr(expr: &Expr) -> (Entry, Vec<Diagnostic>) {
    Reader::new(false).entry(&from_expr(expr))
}

/// Reads a resolved entry at apply time; numbers may arrive as numeric strings.
pub(crate) fn read_json(value: &serde_json::Value) -> (Entry, Vec<Diagnostic>) {
    Reader::new(true).entry(&from_json(value))
}

struct Reader {
    resolved: bool,
    problems: Vec<Diagnostic>,
}

impl Reader {
    fn new(resolved: bool) -> Self {
        Reader {
            resolved,
            problems: Vec::new(),
        }
    }

    fn problem(&mut self, loc: Loc, message: impl Into<String>) {
        self.problems.push(Diagnostic::new(loc, message));
    }

    fn entry(mut self, node: &Node<'_>) -> (Entry, Vec<Diagnostic>) {
        let mut entry = Entry::default();
        let Val::Map(fields) = &node.val else {
            self.problems.push(
                Diagnostic::new(
                    node.loc,
                    format!("a verify entry must be a map, not {}", node.kind_name()),
                )
                .help("write e.g. `- http: \"https://api.example.com/health\"`, with options such as `status: 200` below it"),
            );
            return (entry, self.problems);
        };
        let kinds: Vec<(Kind, Loc)> = fields
            .iter()
            .filter_map(|(name, loc, _)| Kind::from_name(name).map(|k| (k, *loc)))
            .collect();
        let names = all_names();
        // A misspelt kind (`htp:`) is reported as that typo, not as a missing kind as well.
        let misspelt_kind = || {
            fields.iter().any(|(name, _, _)| {
                closest(name, names.iter().copied()).is_some_and(|n| Kind::from_name(n).is_some())
            })
        };
        match kinds.as_slice() {
            [] if misspelt_kind() => {}
            [] => self.problems.push(
                Diagnostic::new(node.loc, "this verify entry does not say what to check").help(
                    "give it one of `http: URL`, `tls: HOST`, `dns: NAME`, `tcp: HOST:PORT` or \
                     `command: [PROGRAM, ARG, ...]`",
                ),
            ),
            [(kind, _)] => entry.kind = Some(*kind),
            [(first, _), rest @ ..] => {
                for (other, loc) in rest {
                    self.problems.push(
                        Diagnostic::new(
                            *loc,
                            format!(
                                "a verify entry checks one thing, but this one has both `{}` and `{}`",
                                first.name(),
                                other.name()
                            ),
                        )
                        .help("split it into two entries, each starting with its own `-`"),
                    );
                }
            }
        }
        let kind = entry.kind;
        // `expect` is read against `type`, wherever the two stand in the map.
        entry.dns_type = match fields.iter().find(|(name, _, _)| name == "type") {
            Some((_, _, value)) if matches!(kind, None | Some(Kind::Dns)) => self.dns_type(value),
            _ => Some(RecordType::A),
        };
        for (name, key_loc, value) in fields {
            let name = name.as_ref();
            if let Some(this) = Kind::from_name(name) {
                if kind == Some(this) || kind.is_none() {
                    self.target(this, value, &mut entry);
                }
                continue;
            }
            let known = match kind {
                Some(kind) if kind.options().contains(&name) => true,
                None if names.contains(&name) => true,
                _ => {
                    self.unknown_option(kind, name, *key_loc, &names);
                    false
                }
            };
            if known {
                self.option(name, value, &mut entry);
            }
        }
        self.cross_checks(node, fields, &entry);
        (entry, self.problems)
    }

    /// An option the entry's kind does not take: says which kind does, or suggests the closest.
    fn unknown_option(&mut self, kind: Option<Kind>, name: &str, loc: Loc, names: &[&'static str]) {
        let Some(kind) = kind else {
            let d = Diagnostic::new(loc, format!("unknown option `{name}` in a verify entry"))
                .suggest(name, names.iter().copied());
            self.problems.push(d);
            return;
        };
        let owners: Vec<String> = KINDS
            .iter()
            .filter(|k| k.options().contains(&name))
            .map(|k| k.gate())
            .collect();
        let message = if owners.is_empty() {
            format!("unknown option `{name}` in {}", kind.gate())
        } else {
            format!(
                "`{name}` is an option of {}, not of {}",
                owners.join(" or "),
                kind.gate()
            )
        };
        let d = Diagnostic::new(loc, message).suggest(name, kind.options().iter().copied());
        let d = match d.help {
            Some(_) => d,
            None => {
                let options: Vec<String> =
                    kind.options().iter().map(|o| format!("`{o}`")).collect();
                d.help(format!("{} takes {}", kind.gate(), options.join(", ")))
            }
        };
        self.problems.push(d);
    }

    fn cross_checks(
        &mut self,
        node: &Node<'_>,
        fields: &[(Cow<'_, str>, Loc, Node<'_>)],
        entry: &Entry,
    ) {
        let loc_of = |key: &str| {
            fields
                .iter()
                .find(|(name, _, _)| name == key)
                .map_or(node.loc, |(_, loc, _)| *loc)
        };
        let dns_without_nameserver = entry.kind == Some(Kind::Dns)
            && !fields.iter().any(|(name, _, _)| name == "nameserver");
        let tls_port_twice =
            entry.kind == Some(Kind::Tls) && entry.target_port.is_some() && entry.port.is_some();
        if tls_port_twice {
            self.problems.push(
                Diagnostic::new(
                    loc_of("port"),
                    "the port is given twice: in the `tls` host and in `port`",
                )
                .help("keep one of them"),
            );
        }
        if dns_without_nameserver {
            self.problems.push(
                Diagnostic::new(loc_of("dns"), "a `dns` gate needs a `nameserver`").help(
                    "add e.g. `nameserver: \"127.0.0.1:53\"`: the gate asks that server directly",
                ),
            );
        }
    }

    /// The kind key's value.
    fn target(&mut self, kind: Kind, value: &Node<'_>, entry: &mut Entry) {
        if kind == Kind::Command {
            entry.argv = self.argv(value);
            return;
        }
        let text = match &value.val {
            Val::Unknown => return,
            Val::Text(t) => t.as_ref(),
            _ => {
                self.problem(
                    value.loc,
                    format!(
                        "`{}` must be {}, not {}",
                        kind.name(),
                        kind.target_shape(),
                        value.kind_name()
                    ),
                );
                return;
            }
        };
        let parsed = match kind {
            Kind::Http => parse_url(text).map(|url| (url, None)),
            Kind::Tls => parse_host_port(text),
            Kind::Dns => parse_dns_name(text).map(|n| (n, None)),
            Kind::Tcp => parse_host_port(text).and_then(|(h, p)| match p {
                Some(p) => Ok((h, Some(p))),
                None => Err(format!("`{text}` has no port: write HOST:PORT")),
            }),
            Kind::Command => unreachable!("read as a list above"),
        };
        match parsed {
            Ok((target, port)) => {
                entry.target = Some(target);
                entry.target_port = port;
            }
            Err(message) => self.problem(value.loc, format!("`{}`: {message}", kind.name())),
        }
    }

    fn option(&mut self, name: &str, value: &Node<'_>, entry: &mut Entry) {
        match name {
            "status" => {
                entry.status = self
                    .int(name, value, 100, 599, "an HTTP status")
                    .and_then(|n| u16::try_from(n).ok());
            }
            "port" => {
                entry.port = self
                    .int(name, value, 1, 65535, "a port number")
                    .and_then(|n| u16::try_from(n).ok());
            }
            "min_valid_days" => {
                entry.min_valid_days = self.int(name, value, 0, 36500, "a number of days");
            }
            "timeout" => entry.timeout = self.duration(name, value, MAX_TIMEOUT),
            "interval" => entry.interval = self.duration(name, value, MAX_INTERVAL),
            "body_contains" => entry.body_contains = self.text(name, value),
            "ca_file" => {
                entry.ca_file = self.text(name, value);
                if entry.ca_file.as_deref() == Some("") {
                    self.problem(value.loc, "`ca_file` is empty");
                    entry.ca_file = None;
                }
            }
            "type" => {} // read before the loop
            "nameserver" => {
                if let Some(text) = self.text(name, value) {
                    match parse_nameserver(&text) {
                        Ok(ns) => entry.nameserver = Some(ns),
                        Err(m) => self.problem(value.loc, format!("`nameserver`: {m}")),
                    }
                }
            }
            "expect" => entry.expect = self.expect(value, entry.dns_type),
            "headers" => entry.headers = self.headers(value),
            "env" => entry.env = self.env(value),
            "dir" => {
                entry.dir = self.text(name, value);
                if entry.dir.as_deref() == Some("") {
                    self.problem(value.loc, "`dir` is empty");
                    entry.dir = None;
                }
            }
            _ => unreachable!("option `{name}` is listed but not read"),
        }
    }

    fn text(&mut self, name: &str, value: &Node<'_>) -> Option<String> {
        match &value.val {
            Val::Text(t) => Some(t.to_string()),
            Val::Unknown => None,
            _ => {
                self.problem(
                    value.loc,
                    format!("`{name}` must be a string, not {}", value.kind_name()),
                );
                None
            }
        }
    }

    fn int(&mut self, name: &str, value: &Node<'_>, min: i64, max: i64, what: &str) -> Option<u32> {
        let n = match &value.val {
            Val::Int(i) => *i,
            Val::Unknown => return None,
            Val::Text(t) if self.resolved && t.trim().parse::<i64>().is_ok() => {
                t.trim().parse::<i64>().ok()?
            }
            Val::Text(t) if t.trim().parse::<i64>().is_ok() => {
                self.problems.push(
                    Diagnostic::new(
                        value.loc,
                        format!("`{name}` must be an integer, not a string"),
                    )
                    .help(format!("write {} without quotes", t.trim())),
                );
                return None;
            }
            _ => {
                self.problem(
                    value.loc,
                    format!(
                        "`{name}` must be {what} (an integer), not {}",
                        value.kind_name()
                    ),
                );
                return None;
            }
        };
        if n < min || n > max {
            self.problem(
                value.loc,
                format!("`{name}` is {n}, but {what} is from {min} to {max}"),
            );
            return None;
        }
        u32::try_from(n).ok()
    }

    fn duration(&mut self, name: &str, value: &Node<'_>, max: Duration) -> Option<Duration> {
        let text = match &value.val {
            Val::Text(t) => t.as_ref(),
            Val::Unknown => return None,
            Val::Int(n) => {
                self.problems.push(
                    Diagnostic::new(
                        value.loc,
                        format!("`{name}` must be a duration with a unit, not a bare number"),
                    )
                    .help(format!("write e.g. `{n}s`")),
                );
                return None;
            }
            _ => {
                self.problems.push(
                    Diagnostic::new(
                        value.loc,
                        format!("`{name}` must be a duration, not {}", value.kind_name()),
                    )
                    .help("write e.g. `30s`, `2m` or `500ms`"),
                );
                return None;
            }
        };
        match parse_duration(text, max) {
            Ok(d) => Some(d),
            Err(m) => {
                self.problems.push(
                    Diagnostic::new(value.loc, format!("`{name}`: {m}"))
                        .help("write e.g. `30s`, `2m` or `500ms`"),
                );
                None
            }
        }
    }

    fn dns_type(&mut self, value: &Node<'_>) -> Option<RecordType> {
        let text = self.text("type", value)?;
        match parse_dns_type(&text) {
            Ok(t) => Some(t),
            Err(m) => {
                let d = Diagnostic::new(value.loc, m).suggest(
                    &text.to_ascii_uppercase(),
                    DNS_TYPES.iter().map(|(n, _)| *n),
                );
                let d = if d.help.is_none() {
                    d.help(format!(
                        "the types are {}",
                        DNS_TYPES.map(|(n, _)| n).join(", ")
                    ))
                } else {
                    d
                };
                self.problems.push(d);
                None
            }
        }
    }

    fn expect(&mut self, value: &Node<'_>, dns_type: Option<RecordType>) -> Option<Vec<String>> {
        let items: Vec<&Node<'_>> = match &value.val {
            Val::List(items) => items.iter().collect(),
            Val::Text(_) => vec![value],
            Val::Unknown => return None,
            _ => {
                self.problem(
                    value.loc,
                    format!(
                        "`expect` must be a list of answers such as [\"203.0.113.10\"], not {}",
                        value.kind_name()
                    ),
                );
                return None;
            }
        };
        let mut out = Vec::with_capacity(items.len());
        let mut complete = true;
        for item in items {
            match (&item.val, dns_type) {
                (Val::Text(t), Some(rtype)) => match normalize_expected(rtype, t) {
                    Ok(n) => out.push(n),
                    Err(m) => {
                        self.problem(item.loc, format!("`expect`: {m}"));
                        complete = false;
                    }
                },
                // The type is not known until apply: the answers are judged then.
                (Val::Text(_), None) | (Val::Unknown, _) => complete = false,
                _ => {
                    self.problem(
                        item.loc,
                        format!("`expect` lists strings, not {}", item.kind_name()),
                    );
                    complete = false;
                }
            }
        }
        complete.then_some(out)
    }

    /// A `command` gate's list: the program, then its arguments, each a string (a reference
    /// that resolved to a number counts as its digits). `None` until every item is known.
    fn argv(&mut self, value: &Node<'_>) -> Option<Vec<String>> {
        let items = match &value.val {
            Val::List(items) => items,
            Val::Unknown if value.spliced => {
                self.problems.push(
                    Diagnostic::new(
                        value.loc,
                        "`command` must be a list of strings, not a string",
                    )
                    .help(
                        "write `command: [PROGRAM, ARG, ...]`: the program runs without a shell, \
                         each argument its own item",
                    ),
                );
                return None;
            }
            Val::Unknown => return None,
            Val::Text(t) => {
                let words: Vec<String> = t
                    .split_whitespace()
                    .map(|w| serde_json::to_string(w).expect("strings serialize"))
                    .collect();
                self.problems.push(
                    Diagnostic::new(
                        value.loc,
                        "`command` must be a list of strings, not a string",
                    )
                    .help(format!(
                        "write `command: [{}]`: the program runs without a shell, each argument \
                         its own item",
                        words.join(", ")
                    )),
                );
                return None;
            }
            _ => {
                self.problem(
                    value.loc,
                    format!(
                        "`command` must be {}, not {}",
                        Kind::Command.target_shape(),
                        value.kind_name()
                    ),
                );
                return None;
            }
        };
        if items.is_empty() {
            self.problems.push(
                Diagnostic::new(value.loc, "`command` is empty")
                    .help("give the program to run, then its arguments"),
            );
            return None;
        }
        let mut argv = Vec::with_capacity(items.len());
        let mut complete = true;
        for item in items {
            match &item.val {
                Val::Text(t) => argv.push(t.to_string()),
                Val::Int(i) if self.resolved => argv.push(i.to_string()),
                Val::Unknown => complete = false,
                Val::Int(i) => {
                    self.problems.push(
                        Diagnostic::new(item.loc, "`command` lists strings, not an integer")
                            .help(format!("write \"{i}\" in quotes")),
                    );
                    complete = false;
                }
                _ => {
                    self.problem(
                        item.loc,
                        format!("`command` lists strings, not {}", item.kind_name()),
                    );
                    complete = false;
                }
            }
        }
        if argv.first().is_some_and(String::is_empty) {
            self.problem(
                items[0].loc,
                "the program (the first item of `command`) is empty",
            );
            complete = false;
        }
        complete.then_some(argv)
    }

    /// A `command` gate's `env`: variables added to the environment fabrik runs in.
    fn env(&mut self, value: &Node<'_>) -> Vec<(String, String)> {
        let Some(entries) = self.map_entries(value, "env", "env: { MODE: smoke }") else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(entries.len());
        for (name, key_loc, v) in entries {
            if name.is_empty() || name.contains(['=', '\0']) {
                self.problem(
                    *key_loc,
                    format!("`{name}` cannot name an environment variable"),
                );
                continue;
            }
            if let Some(text) = self.text_of(v, || format!("the value of `env.{name}`")) {
                out.push((name.to_string(), text));
            }
        }
        out
    }

    fn headers(&mut self, value: &Node<'_>) -> Vec<(String, String)> {
        let Some(entries) = self.map_entries(
            value,
            "headers",
            r#"headers: { content-type: "application/json" }"#,
        ) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(entries.len());
        for (name, key_loc, v) in entries {
            if ureq::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                self.problem(*key_loc, format!("`{name}` is not a valid header name"));
                continue;
            }
            if let Some(text) = self.text_of(v, || format!("the expected value of header `{name}`"))
            {
                out.push((name.to_ascii_lowercase(), text));
            }
        }
        out
    }

    /// The entries of a map-valued option (`env`, `headers`); `None`, with a problem showing
    /// `example`, for anything else, and `None` alone for a value known only at apply time.
    fn map_entries<'n, 'a>(
        &mut self,
        value: &'n Node<'a>,
        option: &str,
        example: &str,
    ) -> Option<&'n [(Cow<'a, str>, Loc, Node<'a>)]> {
        match &value.val {
            Val::Map(entries) => Some(entries),
            Val::Unknown => None,
            _ => {
                self.problems.push(
                    Diagnostic::new(
                        value.loc,
                        format!("`{option}` must be a map, not {}", value.kind_name()),
                    )
                    .help(format!("write e.g. `{example}`")),
                );
                None
            }
        }
    }

    /// A map value that must be text (an integer is taken as written); `None`, with a problem
    /// naming `what`, for anything else, and `None` alone for a value known only at apply time.
    fn text_of(&mut self, v: &Node<'_>, what: impl FnOnce() -> String) -> Option<String> {
        match &v.val {
            Val::Text(t) => Some(t.to_string()),
            Val::Int(i) => Some(i.to_string()),
            Val::Unknown => None,
            _ => {
                self.problem(
                    v.loc,
                    format!("{} must be a string, not {}", what(), v.kind_name()),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            parse_host_port("api.example:8443").unwrap(),
            ("api.example".into(), Some(8443))
        );
        assert_eq!(
            parse_host_port("api.example").unwrap(),
            ("api.example".into(), None)
        );
        assert_eq!(
            parse_host_port("[::1]:53").unwrap(),
            ("::1".into(), Some(53))
        );
        assert_eq!(parse_host_port("::1").unwrap(), ("::1".into(), None));
        assert!(parse_host_port("host:0").is_err());
        assert!(parse_host_port("host:http").is_err());
        assert!(parse_host_port("https://x").is_err());
    }

    #[test]
    fn answers_are_normalized() {
        assert_eq!(
            normalize_expected(RecordType::MX, "10 Mail.Example.").unwrap(),
            "10 mail.example"
        );
        assert_eq!(
            normalize_expected(RecordType::TXT, "\"v=spf1 -all\"").unwrap(),
            "v=spf1 -all"
        );
        assert_eq!(
            normalize_expected(RecordType::AAAA, "2001:DB8::0001").unwrap(),
            "2001:db8::1"
        );
        assert!(normalize_expected(RecordType::A, "not-an-ip").is_err());
    }
}

//! A YAML document as a tree of nodes that remember where they stand in the file, so that the
//! spec's validation can point at the exact line and column of anything it rejects.
//!
//! The parser (serde-saphyr) is panic-free and enforces input budgets (depth, node count,
//! alias expansion), which stops YAML bombs before they use the machine's memory. The budgets
//! are relative to the document: what is written in the file is bounded by its size (see
//! [`MAX_SPEC_BYTES`]), so only what aliases add on top is limited, in proportion to it.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, Options, Spanned};

use crate::source::Loc;

mod fast;
mod split;

/// A spec larger than this is refused before it is parsed: a real stack of 10,000 resources is
/// around 2 MiB.
pub const MAX_SPEC_BYTES: usize = 16 * 1024 * 1024;

/// Aliases may add this many nodes to any document: plenty for shared blocks repeated through
/// a stack, a tiny fraction of what a YAML bomb expands to.
const ALIAS_NODES_FLOOR: usize = 250_000;

/// And beyond the floor, one node per this many bytes of the document: a large spec may share
/// blocks as much as a small one, while aliases add at most about as many nodes as its own
/// text holds (a spec holds about one per 12 bytes), which keeps memory in proportion to the
/// file.
const BYTES_PER_ALIAS_NODE: usize = 8;

/// How many nodes aliases may add to a document of `len` bytes.
fn alias_budget(len: usize) -> usize {
    ALIAS_NODES_FLOOR.max(len / BYTES_PER_ALIAS_NODE)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in file order; duplicates are kept so that validation can name both places.
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub loc: Loc,
}

impl Value {
    /// How a kind of value is named in messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a map",
        }
    }
}

/// A parse failure: the parser's message and where it happened.
#[derive(Debug)]
pub struct ParseError {
    pub message: String,
    pub loc: Loc,
}

/// Parses one YAML document into a node tree.
pub fn parse(text: &str) -> Result<Node, ParseError> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if let Some(node) = split::parse(text, cores.min(4)) {
        return Ok(node);
    }
    match fast::parse(text, alias_budget(text.len())) {
        fast::Outcome::Done(node) => return Ok(node),
        fast::Outcome::Refused(refused) => return Err(refused),
        fast::Outcome::Defer => {}
    }
    parse_with_serde(text)
}

/// The reference path: serde-saphyr with located wrappers. Slower; its messages for broken
/// documents are the ones fabrik shows.
fn parse_with_serde(text: &str) -> Result<Node, ParseError> {
    // Repeated keys reach our visitor, which keeps both so validation can report them with
    // both locations and a message in the spec's own terms.
    // The text's own nodes and events are bounded by its size (a node takes at least a byte,
    // an event at most two): budgets in proportion never refuse a document without aliases.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(text.len() + 16);
    budget.max_events = budget.max_events.max(2 * text.len() + 16);
    budget.max_aliases = budget.max_aliases.max(alias_budget(text.len()));
    budget.max_anchors = budget.max_anchors.max(alias_budget(text.len()));
    budget.max_recorded_anchor_events = budget
        .max_recorded_anchor_events
        .max(alias_budget(text.len()));
    // What aliases add: replayed events, about two per node (a collection's end).
    let alias_limits = serde_saphyr::alias_limits! {
        max_total_replayed_events: 1_000_000.max(2 * alias_budget(text.len())),
    };
    let options: Options = serde_saphyr::options! {
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
        with_snippet: false,
        budget: Some(budget),
        alias_limits: alias_limits,
    };
    match serde_saphyr::from_str_with_options::<Spanned<Value>>(text, options) {
        Ok(spanned) => Ok(Node {
            value: spanned.value,
            loc: loc_of(&spanned.referenced),
        }),
        Err(e) => {
            let loc = e.location().map(|l| loc_of(&l)).unwrap_or_default();
            let message = match original(&e) {
                serde_saphyr::Error::Budget { breach, .. } => budget_message(breach),
                serde_saphyr::Error::AliasReplayLimitExceeded { .. }
                | serde_saphyr::Error::AliasExpansionLimitExceeded { .. }
                | serde_saphyr::Error::AliasReplayStackDepthExceeded { .. }
                | serde_saphyr::Error::AliasReplayCounterOverflow { .. } => {
                    NODES_MESSAGE.to_string()
                }
                // The parser's own hint names its API functions, which mean nothing here.
                serde_saphyr::Error::MultipleDocuments { .. } => {
                    "the file holds a second YAML document (after `---`); a spec is one document"
                        .to_string()
                }
                _ => clean_message(&e.to_string()),
            };
            Err(ParseError { message, loc })
        }
    }
}

fn loc_of(l: &serde_saphyr::Location) -> Loc {
    Loc::new(
        l.line() as u32,
        l.column() as u32,
        l.span().len().min(u32::MAX as u64) as u32,
    )
}

/// The error under the parser's wrappers (an error met while expanding an alias, a snippet).
fn original(mut err: &serde_saphyr::Error) -> &serde_saphyr::Error {
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = err
    {
        err = error;
    }
    err
}

/// Why a document that expands too far is refused.
const NODES_MESSAGE: &str = "the spec expands to more nodes than fabrik parses; \
     aliases (`*name`) that repeat anchors (`&name`) multiply a small file, as a YAML bomb does";

/// What a breached parser budget means for the person who wrote the spec.
fn budget_message(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Aliases { .. }
        | B::AliasAnchorRatio { .. }
        | B::RecordedAnchorEvents { .. }
        | B::RecordedAnchorBytes { .. }
        | B::Nodes { .. }
        | B::Events { .. } => NODES_MESSAGE.to_string(),
        B::Depth { depth } => {
            format!("the spec nests {depth} levels deep, deeper than fabrik parses")
        }
        B::Documents { .. } => {
            "the file holds more YAML documents than fabrik parses; a spec is one document"
                .to_string()
        }
        B::ScalarBytes { .. } | B::InputBytes { .. } => {
            "the spec's text is larger than fabrik parses".to_string()
        }
        _ => "the spec exceeds a limit of the YAML parser".to_string(),
    }
}

/// The parser prefixes messages with "line L column C: "; the location is shown separately.
fn clean_message(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message);
    let trimmed = match first.strip_prefix("line ") {
        Some(rest) => rest.split_once(": ").map_or(first, |(_, m)| m),
        None => first,
    };
    let trimmed = trimmed.trim();
    // "… at line 1, column 1" repeats what the location says.
    let trimmed = match trimmed.rfind(" at line ") {
        Some(i) => &trimmed[..i],
        None => trimmed,
    };
    trimmed.to_string()
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom(format!("integer {v} is too large")))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, _v: &[u8]) -> Result<Value, E> {
        Err(E::custom("binary values are not supported in a spec"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Value>>()? {
            items.push(Node {
                loc: loc_of(&item.referenced),
                value: item.value,
            });
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Value>>()? {
            let name = match key.value {
                Value::Str(s) => s,
                Value::Int(i) => i.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Float(x) => x.to_string(),
                Value::Null => "null".to_string(),
                Value::Seq(_) | Value::Map(_) => {
                    return Err(de::Error::custom("a map key must be a plain name"));
                }
            };
            let value = map.next_value::<Spanned<Value>>()?;
            let key_loc = loc_of(&key.referenced);
            entries.push((
                Key {
                    loc: Loc::new(key_loc.line, key_loc.column, name.chars().count() as u32),
                    name,
                },
                Node {
                    loc: loc_of(&value.referenced),
                    value: value.value,
                },
            ));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_know_their_place() {
        let doc = parse("a:\n  b: [1, x]\n").unwrap();
        let Value::Map(top) = doc.value else { panic!() };
        assert_eq!(top[0].0.loc, Loc::new(1, 1, 1));
        let Value::Map(inner) = &top[0].1.value else {
            panic!()
        };
        assert_eq!(inner[0].0.loc, Loc::new(2, 3, 1));
        let Value::Seq(items) = &inner[0].1.value else {
            panic!()
        };
        assert_eq!(items[1].value, Value::Str("x".into()));
        assert_eq!(items[1].loc.line, 2);
        assert_eq!(items[1].loc.column, 10);
    }

    /// The fast path must read every document it accepts exactly as serde-saphyr does,
    /// locations included.
    #[test]
    fn the_fast_path_agrees_with_serde_saphyr() {
        let docs = [
            "stack: demo\nresources:\n  a:\n    type: local.file\n    with: { path: a.txt, content: \"x ${b.c}\" }\n",
            "a: 1\nb: -2\nc: 0x1F\nd: 0o17\ne: 1.5\nf: 0644\ng: 1e3\nh: .5\ni: +7\n",
            "a: yes\nb: No\nc: on\nd: OFF\ne: true\nf: ~\ng: null\nh:\ni: y\n",
            "a: 'quoted'\nb: \"dq \\n\"\nc: |\n  block\n  text\nd: >\n  folded\n  text\ne: !!str 12\n",
            "list:\n  - 1\n  - two\n  - [3, {four: 4}]\n  - {}\n  - []\n",
            "base: &b {x: 1, y: 2}\nuse: *b\nmerged:\n  <<: *b\n  y: 3\n",
            "a: 1\na: 2\n",
            "# only a comment\nk: v # trailing\n",
            "unicode: \"h\u{e9}llo w\u{f6}rld\"\nnext: caf\u{e9}\n",
            "",
            "- a\n- b\n",
            "plain: some text, with a comma\nurl: http://x.y/z\n",
        ];
        for doc in docs {
            let fast::Outcome::Done(fast) = fast::parse(doc, alias_budget(doc.len())) else {
                panic!("the fast path deferred on {doc:?}")
            };
            let reference = parse_with_serde(doc).unwrap();
            assert_eq!(fast, reference, "for {doc:?}");
        }
        // Broken documents are left to serde-saphyr, whose messages fabrik shows.
        for broken in [
            "a: [1, 2\n",
            "a: b: c\n",
            "---\na: 1\n---\nb: 2\n",
            "a: *nowhere\n",
        ] {
            assert!(
                matches!(fast::parse(broken, 1000), fast::Outcome::Defer),
                "{broken:?}"
            );
        }
    }

    #[test]
    fn duplicate_keys_are_kept_for_validation() {
        let doc = parse("a: 1\na: 2\n").unwrap();
        let Value::Map(top) = doc.value else { panic!() };
        assert_eq!(top.len(), 2);
    }

    /// Eleven levels of ten aliases: 10^12 nodes from about 600 bytes.
    fn bomb() -> String {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        bomb
    }

    #[test]
    fn alias_bombs_are_refused() {
        let refused = |text: &str| match parse(text) {
            Err(e) => assert_eq!(e.message, NODES_MESSAGE),
            Ok(_) => panic!("a bomb of {} bytes was parsed", text.len()),
        };
        refused(&bomb());
        // The budget grows with the document, never as fast as a bomb: padded to the largest
        // spec read, it is still refused (both parsers: a tag sends it to serde-saphyr).
        let padding = format!("# {}\n", "x".repeat(1000)).repeat(MAX_SPEC_BYTES / 1010);
        refused(&format!("{padding}{}", bomb()));
        let tagged = format!("{padding}t: !!str x\n{}", bomb());
        assert_eq!(
            parse_with_serde(&tagged).unwrap_err().message,
            NODES_MESSAGE
        );
    }

    #[test]
    fn the_alias_budget_grows_with_the_document() {
        // 40 aliases of a 10,000-node block: 400,000 nodes added, more than a small document
        // may add, fine in a document large enough to be worth that much.
        let block = format!("[{}]", vec!["1"; 9_999].join(","));
        let mut small = format!("b: &b {block}\n");
        for i in 0..4 {
            small.push_str(&format!("x{i}: [{}]\n", ["*b"; 10].join(", ")));
        }
        assert!(parse(&small).is_err(), "{} bytes", small.len());
        let padding = format!("# {}\n", "x".repeat(1000)).repeat(3300);
        let large = format!("{padding}{small}");
        assert!(alias_budget(large.len()) > 400_000);
        let doc = parse(&large).expect("a large document may share more");
        let Value::Map(top) = doc.value else { panic!() };
        assert_eq!(top.len(), 5);
    }

    /// Nodes written in the text are bounded by its size, whichever parser reads them: a
    /// document without aliases is never refused for its size under the cap.
    #[test]
    fn many_nodes_without_aliases_parse() {
        let text = format!("list: [{}]\n", vec!["1"; 400_000].join(","));
        let Value::Map(top) = parse(&text).unwrap().value else {
            panic!()
        };
        assert!(matches!(&top[0].1.value, Value::Seq(items) if items.len() == 400_000));
        // A tag leaves it to serde-saphyr, whose budgets follow the document's size too.
        let tagged = format!("tag: !!str x\n{text}");
        assert!(parse_with_serde(&tagged).is_ok());
        assert!(parse(&tagged).is_ok());
    }
}

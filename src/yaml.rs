//! A YAML document as a tree of nodes that remember where they stand in the file, so that the
//! spec's validation can point at the exact line and column of anything it rejects.
//!
//! The parser (serde-saphyr) is panic-free and enforces input budgets (depth, node count,
//! alias expansion), which stops YAML bombs before they use the machine's memory.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{DuplicateKeyPolicy, Options, Spanned};

use crate::source::Loc;

/// A spec larger than this is refused before it is parsed: a real stack of 10,000 resources is
/// around 2 MiB.
pub const MAX_SPEC_BYTES: usize = 16 * 1024 * 1024;

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
    // Repeated keys reach our visitor, which keeps both so validation can report them with
    // both locations and a message in the spec's own terms.
    let options: Options = serde_saphyr::options! {
        duplicate_keys: DuplicateKeyPolicy::PassThrough,
        with_snippet: false,
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

/// What a breached parser budget means for the person who wrote the spec.
fn budget_message(breach: &serde_saphyr::budget::BudgetBreach) -> String {
    use serde_saphyr::budget::BudgetBreach as B;
    match breach {
        B::Aliases { .. }
        | B::AliasAnchorRatio { .. }
        | B::RecordedAnchorEvents { .. }
        | B::RecordedAnchorBytes { .. }
        | B::Nodes { .. }
        | B::Events { .. } => "the spec expands to more nodes than fabrik parses; \
             aliases (`*name`) that repeat anchors (`&name`) multiply a small file, as a YAML bomb does"
            .to_string(),
        B::Depth { depth } => format!("the spec nests {depth} levels deep, deeper than fabrik parses"),
        B::Documents { .. } => "the file holds more YAML documents than fabrik parses; a spec is one document".to_string(),
        B::ScalarBytes { .. } | B::InputBytes { .. } => "the spec's text is larger than fabrik parses".to_string(),
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

    #[test]
    fn duplicate_keys_are_kept_for_validation() {
        let doc = parse("a: 1\na: 2\n").unwrap();
        let Value::Map(top) = doc.value else { panic!() };
        assert_eq!(top.len(), 2);
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse(&bomb).is_err());
    }
}

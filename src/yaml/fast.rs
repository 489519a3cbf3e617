//! Builds the node tree straight from the parser's events, which carry their positions. Much
//! faster than deserializing through located wrappers; defers anything unusual (syntax
//! errors, tags other than `!!str`, non-finite numbers), which [`super::parse`] then hands to
//! serde-saphyr for its exact behaviour and messages.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span, StrInput};

use super::{Key, Node, ParseError, Value};
use crate::source::Loc;

/// serde-saphyr's default depth, kept here so both paths refuse the same documents.
const MAX_DEPTH: usize = 64;

pub enum Outcome {
    Done(Node),
    Refused(ParseError),
    /// Not handled here: let serde-saphyr parse it.
    Defer,
}

struct Builder {
    anchors: HashMap<usize, Node>,
    /// One buffer per depth where a collection's entries are gathered before they are
    /// moved into a vector of exactly their number: a large spec is mostly maps of two or
    /// three entries, which growing vectors would give room for four.
    maps: Vec<Vec<(Key, Node)>>,
    seqs: Vec<Vec<Node>>,
    /// The nodes aliases added so far, and how many they may add.
    expanded: usize,
    alias_budget: usize,
}

fn loc(span: &Span) -> Loc {
    let len = span.end.index().saturating_sub(span.start.index());
    Loc::new(
        span.start.line() as u32,
        span.start.col() as u32 + 1,
        len as u32,
    )
}

/// The document, with aliases allowed to add `alias_budget` nodes.
pub fn parse(text: &str, alias_budget: usize) -> Outcome {
    let mut events = Parser::new_from_str(text);
    let mut builder = Builder {
        anchors: HashMap::new(),
        maps: Vec::new(),
        seqs: Vec::new(),
        expanded: 0,
        alias_budget,
    };
    let mut root = None;
    loop {
        let Some(Ok((event, span))) = events.next() else {
            return Outcome::Defer;
        };
        match event {
            Event::StreamStart | Event::DocumentEnd => {}
            Event::DocumentStart(..) => {
                if root.is_some() {
                    // Several documents: serde-saphyr's message says what is wrong.
                    return Outcome::Defer;
                }
                match builder.node(&mut events, 0) {
                    Ok(Some(node)) => root = Some(node),
                    Ok(None) => return Outcome::Defer,
                    Err(refused) => return Outcome::Refused(refused),
                }
            }
            Event::StreamEnd => {
                return Outcome::Done(root.unwrap_or(Node {
                    value: Value::Null,
                    loc: loc(&span),
                }));
            }
            Event::Scalar(..)
            | Event::Alias(..)
            | Event::UnresolvedAlias(..)
            | Event::SequenceStart(..)
            | Event::SequenceEnd
            | Event::MappingStart(..)
            | Event::MappingEnd => return Outcome::Defer,
            // Comments and anchor metadata.
            _ => {}
        }
    }
}

impl Builder {
    /// Counts what an alias adds; the text's own nodes cost nothing, being bounded by
    /// its size.
    fn expand(&mut self, n: usize, at: Loc) -> Result<(), ParseError> {
        self.expanded += n;
        if self.expanded > self.alias_budget {
            return Err(ParseError {
                message: super::NODES_MESSAGE.to_string(),
                loc: at,
            });
        }
        Ok(())
    }

    /// The next node, or `Ok(None)` for something to defer.
    fn node<'a>(
        &mut self,
        events: &mut Parser<'a, StrInput<'a>>,
        depth: usize,
    ) -> Result<Option<Node>, ParseError> {
        loop {
            let Some(Ok((event, span))) = events.next() else {
                return Ok(None);
            };
            let at = loc(&span);
            let node = match event {
                Event::Scalar(text, style, anchor, tag) => {
                    let string = tag
                        .as_ref()
                        .is_some_and(|t| t.is_yaml_core_schema_tag("str"));
                    if tag.is_some() && !string {
                        return Ok(None);
                    }
                    let value = if string || style != ScalarStyle::Plain {
                        Value::Str(text.into_owned())
                    } else {
                        match plain(&text) {
                            Some(v) => v,
                            None => return Ok(None),
                        }
                    };
                    self.keep(anchor, Node { value, loc: at })
                }
                Event::Alias(id) => {
                    let Some(target) = self.anchors.get(&id).cloned() else {
                        return Ok(None);
                    };
                    self.expand(size(&target), at)?;
                    // Whatever an alias repeats is reported where the alias is written.
                    relocate(target, at)
                }
                Event::SequenceStart(_, anchor, tag) => {
                    if tag.is_some() || depth >= MAX_DEPTH {
                        return Ok(None);
                    }
                    let mut items = scratch(&mut self.seqs, depth);
                    loop {
                        match self.item(events, depth + 1)? {
                            Item::Node(node) => items.push(node),
                            Item::End => break,
                            Item::Defer => return Ok(None),
                        }
                    }
                    let mut exact = Vec::with_capacity(items.len());
                    exact.append(&mut items);
                    let value = Value::Seq(exact);
                    self.seqs[depth] = items;
                    self.keep(anchor, Node { value, loc: at })
                }
                Event::MappingStart(_, anchor, tag) => {
                    if tag.is_some() || depth >= MAX_DEPTH {
                        return Ok(None);
                    }
                    let mut entries = scratch(&mut self.maps, depth);
                    let mut merged: Vec<(Key, Node)> = Vec::new();
                    loop {
                        let key = match self.item(events, depth + 1)? {
                            Item::Node(node) => node,
                            Item::End => break,
                            Item::Defer => return Ok(None),
                        };
                        let Item::Node(value) = self.item(events, depth + 1)? else {
                            return Ok(None);
                        };
                        let name = match key.value {
                            Value::Str(s) => s,
                            Value::Int(i) => i.to_string(),
                            Value::Bool(b) => b.to_string(),
                            Value::Null => "null".to_string(),
                            _ => return Ok(None),
                        };
                        let key = Key {
                            loc: Loc::new(
                                key.loc.line,
                                key.loc.column,
                                name.chars().count() as u32,
                            ),
                            name,
                        };
                        if key.name == "<<" {
                            // Merge keys: the entries of the map (or maps) named, unless
                            // written explicitly.
                            match value.value {
                                Value::Map(more) => merged.extend(more),
                                Value::Seq(maps) => {
                                    for map in maps {
                                        let Value::Map(more) = map.value else {
                                            return Ok(None);
                                        };
                                        merged.extend(more);
                                    }
                                }
                                _ => return Ok(None),
                            }
                        } else {
                            entries.push((key, value));
                        }
                    }
                    for (key, value) in merged {
                        if !entries.iter().any(|(k, _)| k.name == key.name) {
                            entries.push((key, value));
                        }
                    }
                    let mut exact = Vec::with_capacity(entries.len());
                    exact.append(&mut entries);
                    let value = Value::Map(exact);
                    self.maps[depth] = entries;
                    self.keep(anchor, Node { value, loc: at })
                }
                Event::StreamStart
                | Event::StreamEnd
                | Event::DocumentStart(..)
                | Event::DocumentEnd
                | Event::UnresolvedAlias(..)
                | Event::SequenceEnd
                | Event::MappingEnd => return Ok(None),
                // Comments and anchor metadata.
                _ => continue,
            };
            return Ok(Some(node));
        }
    }

    fn item<'a>(
        &mut self,
        events: &mut Parser<'a, StrInput<'a>>,
        depth: usize,
    ) -> Result<Item, ParseError> {
        // An end event ends the collection; anything else starts a node (comments are
        // skipped by `node`).
        let at_end = match events.peek() {
            Some(Ok((event, _))) => matches!(event, Event::SequenceEnd | Event::MappingEnd),
            _ => return Ok(Item::Defer),
        };
        if at_end {
            events.next();
            return Ok(Item::End);
        }
        Ok(match self.node(events, depth)? {
            Some(node) => Item::Node(node),
            None => Item::Defer,
        })
    }

    fn keep(&mut self, anchor: usize, node: Node) -> Node {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        node
    }
}

enum Item {
    Node(Node),
    End,
    Defer,
}

/// The empty buffer of `depth`, taken until it is put back.
fn scratch<T>(buffers: &mut Vec<Vec<T>>, depth: usize) -> Vec<T> {
    if buffers.len() <= depth {
        buffers.resize_with(depth + 1, Vec::new);
    }
    std::mem::take(&mut buffers[depth])
}

fn relocate(node: Node, at: Loc) -> Node {
    let value = match node.value {
        Value::Seq(items) => Value::Seq(items.into_iter().map(|n| relocate(n, at)).collect()),
        Value::Map(entries) => Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| {
                    let key = Key {
                        loc: Loc::new(at.line, at.column, k.name.chars().count() as u32),
                        name: k.name,
                    };
                    (key, relocate(v, at))
                })
                .collect(),
        ),
        other => other,
    };
    Node { value, loc: at }
}

/// How many nodes a subtree holds (what an alias to it costs).
pub(super) fn size(node: &Node) -> usize {
    1 + match &node.value {
        Value::Seq(items) => items.iter().map(size).sum(),
        Value::Map(entries) => entries.iter().map(|(_, v)| size(v)).sum(),
        _ => 0,
    }
}

/// A plain scalar's value, as serde-saphyr reads it with fabrik's options: YAML 1.1
/// booleans, decimal, hex, octal and binary integers, YAML 1.2 floats, a decimal with a
/// leading zero as a float. `None`: leave it to serde-saphyr.
fn plain(s: &str) -> Option<Value> {
    let t = s.trim();
    match t {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        _ => {}
    }
    for (words, value) in [
        (["y", "yes", "true", "on"], true),
        (["n", "no", "false", "off"], false),
    ] {
        if words.iter().any(|w| t.eq_ignore_ascii_case(w)) {
            return Some(Value::Bool(value));
        }
    }
    let first = t.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return Some(Value::Str(s.to_string()));
    }
    let (negative, digits) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.contains('_')
        || digits.starts_with("0X")
        || digits.starts_with("0O")
        || digits.starts_with("0B")
    {
        return None;
    }
    let radix = |prefix: &str, base: u32| {
        digits
            .strip_prefix(prefix)
            .filter(|d| !d.is_empty())
            .and_then(|d| i64::from_str_radix(d, base).ok())
    };
    if let Some(v) = radix("0x", 16)
        .or_else(|| radix("0o", 8))
        .or_else(|| radix("0b", 2))
    {
        return Some(Value::Int(if negative { -v } else { v }));
    }
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if digits.len() > 1 && digits.starts_with('0') {
            return digits
                .parse::<f64>()
                .ok()
                .map(|f| Value::Float(if negative { -f } else { f }));
        }
        return match t.parse::<i64>() {
            Ok(v) => Some(Value::Int(v)),
            Err(_) => None,
        };
    }
    let float = digits
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && digits.bytes().any(|b| b.is_ascii_digit());
    if float {
        return match t.parse::<f64>() {
            Ok(f) if f.is_finite() => Some(Value::Float(f)),
            _ => None,
        };
    }
    if digits.starts_with('.') && matches!(digits.to_ascii_lowercase().as_str(), ".inf" | ".nan") {
        return None;
    }
    Some(Value::Str(s.to_string()))
}

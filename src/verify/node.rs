//! A `verify:` entry's value from either of its sources, the located spec value at plan time
//! or the resolved JSON value at apply time, reduced to what `entry.rs` needs to judge it: one
//! shape for both, so that one reader serves both.

use std::borrow::Cow;

use crate::source::Loc;
use crate::spec::{Expr, ExprKind};
use crate::template::Part;

/// A value from either source, reduced to what the reader needs. `Unknown` is a string whose
/// references are not resolved yet: at plan time nothing more can be said about it.
pub(super) enum Val<'a> {
    Unknown,
    Null,
    Bool,
    Int(i64),
    Float,
    Text(Cow<'a, str>),
    List(Vec<Node<'a>>),
    Map(Vec<(Cow<'a, str>, Loc, Node<'a>)>),
}

pub(super) struct Node<'a> {
    pub val: Val<'a>,
    pub loc: Loc,
    /// Text around references: a string whatever they resolve to (a lone reference keeps the
    /// kind of what it names).
    pub spliced: bool,
}

impl Node<'_> {
    pub fn kind_name(&self) -> &'static str {
        match &self.val {
            Val::Unknown => "a reference",
            Val::Null => "null",
            Val::Bool => "a boolean",
            Val::Int(_) => "an integer",
            Val::Float => "a number",
            Val::Text(_) => "a string",
            Val::List(_) => "a list",
            Val::Map(_) => "a map",
        }
    }
}

pub(super) fn from_expr(expr: &Expr) -> Node<'_> {
    let spliced = match &expr.kind {
        ExprKind::Str(parts) => parts.len() > 1,
        _ => false,
    };
    let val = match &expr.kind {
        ExprKind::Null => Val::Null,
        ExprKind::Bool(_) => Val::Bool,
        ExprKind::Int(i) => Val::Int(*i),
        ExprKind::Float(_) => Val::Float,
        ExprKind::Str(parts) => {
            let mut text = String::new();
            let mut known = true;
            for part in parts {
                match part {
                    Part::Text(t) => text.push_str(t),
                    Part::Ref(_) => known = false,
                }
            }
            if known {
                Val::Text(Cow::Owned(text))
            } else {
                Val::Unknown
            }
        }
        ExprKind::List(items) => Val::List(items.iter().map(from_expr).collect()),
        ExprKind::Map(entries) => Val::Map(
            entries
                .iter()
                .map(|(k, v)| (Cow::Borrowed(k.name.as_str()), k.loc, from_expr(v)))
                .collect(),
        ),
    };
    Node {
        val,
        loc: expr.loc,
        spliced,
    }
}

pub(super) fn from_json(value: &serde_json::Value) -> Node<'_> {
    use serde_json::Value as J;
    let val = match value {
        J::Null => Val::Null,
        J::Bool(_) => Val::Bool,
        J::Number(n) => match n.as_i64() {
            Some(i) => Val::Int(i),
            None => Val::Float,
        },
        J::String(s) => Val::Text(Cow::Borrowed(s.as_str())),
        J::Array(items) => Val::List(items.iter().map(from_json).collect()),
        J::Object(entries) => Val::Map(
            entries
                .iter()
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), Loc::default(), from_json(v)))
                .collect(),
        ),
    };
    Node {
        val,
        loc: Loc::default(),
        spliced: false,
    }
}

//! A list-valued attribute's change element by element, as people review it: which elements go,
//! which come and which stay, so that one new domain in a list of ten reads as one line and not
//! as two long lists to compare by eye. Maps at one place of the list (or with one identity,
//! `name`, `key` or `id`) are compared field by field.

use fabrik_provider::Value;
use serde_json::Map;

/// Unchanged elements shown around a change; a longer run of them is told by its count.
const CONTEXT: usize = 1;
/// Fields by which maps in a list are told apart, in the order they are looked for.
const IDENTITIES: [&str; 3] = ["name", "key", "id"];

/// One line of a list's change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Element<'a> {
    /// In both lists.
    Kept(&'a Value),
    /// Only in the list before.
    Removed(&'a Value),
    /// Only in the list after.
    Added(&'a Value),
    /// A map at the same place (or with the same identity) whose fields change.
    Changed {
        before: &'a Map<String, Value>,
        after: &'a Map<String, Value>,
    },
    /// So many unchanged elements, not shown.
    Unchanged(usize),
}

/// The change from `before` to `after`, in the order of `after` with removed elements where
/// they stood; unchanged elements more than [`CONTEXT`] away from a change are counted, not
/// shown.
pub fn list_diff<'a>(before: &'a [Value], after: &'a [Value]) -> Vec<Element<'a>> {
    let full = match identity(before, after) {
        Some(key) => by_identity(before, after, key),
        None => by_position(before, after),
    };
    collapse(full)
}

/// The field every map of both lists has, with values that tell them apart.
fn identity(before: &[Value], after: &[Value]) -> Option<&'static str> {
    IDENTITIES.into_iter().find(|key| {
        [before, after].iter().all(|list| {
            let mut seen = std::collections::BTreeSet::new();
            !list.is_empty()
                && list.iter().all(|v| {
                    v.as_object()
                        .and_then(|m| m.get(*key))
                        .filter(|id| !id.is_object() && !id.is_array())
                        .is_some_and(|id| seen.insert(id.to_string()))
                })
        })
    })
}

fn by_identity<'a>(before: &'a [Value], after: &'a [Value], key: &str) -> Vec<Element<'a>> {
    let ids = |list: &[Value]| -> Vec<String> { list.iter().map(|v| v[key].to_string()).collect() };
    let (old, new) = (ids(before), ids(after));
    let mut out = Vec::new();
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, &old, &new) {
        let (olds, news) = (&before[op.old_range()], &after[op.new_range()]);
        if op.tag() == similar::DiffTag::Equal {
            out.extend(olds.iter().zip(news).map(|(a, b)| match (a, b) {
                (Value::Object(a), Value::Object(b)) if a != b => Element::Changed {
                    before: a,
                    after: b,
                },
                _ => Element::Kept(b),
            }));
        } else {
            // Other identities: what goes, then what comes.
            out.extend(olds.iter().map(Element::Removed));
            out.extend(news.iter().map(Element::Added));
        }
    }
    out
}

fn by_position<'a>(before: &'a [Value], after: &'a [Value]) -> Vec<Element<'a>> {
    let text = |list: &[Value]| -> Vec<String> { list.iter().map(Value::to_string).collect() };
    let (old, new) = (text(before), text(after));
    let mut out = Vec::new();
    for op in similar::capture_diff_slices(similar::Algorithm::Myers, &old, &new) {
        let (old_range, new_range) = (op.old_range(), op.new_range());
        match op.tag() {
            similar::DiffTag::Equal => out.extend(after[new_range].iter().map(Element::Kept)),
            similar::DiffTag::Delete => out.extend(before[old_range].iter().map(Element::Removed)),
            similar::DiffTag::Insert => out.extend(after[new_range].iter().map(Element::Added)),
            similar::DiffTag::Replace => {
                // Elements at one place: maps compare field by field, anything else goes and comes.
                let (olds, news) = (&before[old_range], &after[new_range]);
                let paired = olds.len().min(news.len());
                let mut removed = Vec::new();
                let mut added = Vec::new();
                for (a, b) in olds.iter().zip(news) {
                    if let (Value::Object(a), Value::Object(b)) = (a, b) {
                        out.extend(removed.drain(..).map(Element::Removed));
                        out.extend(added.drain(..).map(Element::Added));
                        out.push(Element::Changed {
                            before: a,
                            after: b,
                        });
                    } else {
                        removed.push(a);
                        added.push(b);
                    }
                }
                removed.extend(&olds[paired..]);
                added.extend(&news[paired..]);
                out.extend(removed.into_iter().map(Element::Removed));
                out.extend(added.into_iter().map(Element::Added));
            }
        }
    }
    out
}

/// Runs of kept elements longer than the context around them, counted instead of shown (a
/// single one is shown: its line is no longer than its count's).
fn collapse(full: Vec<Element<'_>>) -> Vec<Element<'_>> {
    if full.is_empty() {
        return full;
    }
    let changed: Vec<bool> = full
        .iter()
        .map(|e| !matches!(e, Element::Kept(_)))
        .collect();
    let shown = |i: usize| {
        let from = i.saturating_sub(CONTEXT);
        let to = (i + CONTEXT).min(full.len() - 1);
        changed[from..=to].iter().any(|c| *c)
    };
    let mut out = Vec::new();
    let mut hidden: Vec<Element<'_>> = Vec::new();
    for (i, element) in full.iter().enumerate() {
        if shown(i) {
            flush(&mut hidden, &mut out);
            out.push(*element);
        } else {
            hidden.push(*element);
        }
    }
    flush(&mut hidden, &mut out);
    out
}

fn flush<'a>(hidden: &mut Vec<Element<'a>>, out: &mut Vec<Element<'a>>) {
    match hidden.len() {
        0 => {}
        1 => out.append(hidden),
        n => {
            out.push(Element::Unchanged(n));
            hidden.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Element::{Added, Changed, Kept, Removed, Unchanged};
    use super::*;
    use serde_json::json;

    fn list(v: Value) -> Vec<Value> {
        v.as_array().unwrap().clone()
    }

    #[test]
    fn scalars_show_what_goes_and_comes_among_what_stays() {
        let (a, b) = (list(json!(["a", "b", "c"])), list(json!(["a", "c", "d"])));
        assert_eq!(
            list_diff(&a, &b),
            [
                Kept(&json!("a")),
                Removed(&json!("b")),
                Kept(&json!("c")),
                Added(&json!("d"))
            ]
        );
    }

    #[test]
    fn long_runs_of_unchanged_elements_are_counted() {
        let a = list(json!([1, 2, 3, 4, 5, 6, 7, 8]));
        let b = list(json!([1, 2, 3, 4, 50, 6, 7, 8]));
        assert_eq!(
            list_diff(&a, &b),
            [
                Unchanged(3),
                Kept(&json!(4)),
                Removed(&json!(5)),
                Added(&json!(50)),
                Kept(&json!(6)),
                Unchanged(2)
            ]
        );
        // One element beyond the context is shown, not counted.
        let (a, b) = (list(json!([1, 2, 3])), list(json!([1, 2, 4])));
        assert_eq!(
            list_diff(&a, &b),
            [
                Kept(&json!(1)),
                Kept(&json!(2)),
                Removed(&json!(3)),
                Added(&json!(4))
            ]
        );
    }

    #[test]
    fn maps_at_one_place_compare_field_by_field() {
        let a = list(json!([{"port": 80}, {"port": 443, "tls": true}]));
        let b = list(json!([{"port": 80}, {"port": 8443, "tls": true}]));
        let d = list_diff(&a, &b);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0], Kept(&json!({"port": 80})));
        assert!(
            matches!(d[1], Changed { before, after } if before["port"] == 443 && after["port"] == 8443),
            "{d:?}"
        );
    }

    #[test]
    fn maps_with_a_name_are_matched_by_it_wherever_they_stand() {
        let a = list(json!([
            {"name": "web", "port": 80},
            {"name": "api", "port": 8000},
            {"name": "old", "port": 1}
        ]));
        let b = list(json!([
            {"name": "web", "port": 80},
            {"name": "api", "port": 8001},
            {"name": "new", "port": 2}
        ]));
        let d = list_diff(&a, &b);
        assert_eq!(d[0], Kept(&a[0]));
        assert!(
            matches!(d[1], Changed { after, .. } if after["port"] == 8001),
            "{d:?}"
        );
        assert_eq!(&d[2..], [Removed(&a[2]), Added(&b[2])]);
        // A list where the name repeats is compared by place.
        let c = list(json!([{"name": "x", "v": 1}, {"name": "x", "v": 2}]));
        assert_eq!(identity(&c, &c), None);
    }

    #[test]
    fn a_list_emptied_or_filled_shows_every_element() {
        let full = list(json!(["a", "b", "c", "d"]));
        assert_eq!(
            list_diff(&full, &[]),
            full.iter().map(Removed).collect::<Vec<_>>()
        );
        assert_eq!(
            list_diff(&[], &full),
            full.iter().map(Added).collect::<Vec<_>>()
        );
    }
}

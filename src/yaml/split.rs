//! Parsing a large spec on every core: the entries of its top-level `resources:` map are cut
//! into runs of whole entries, and each run is parsed as a document of its own, beside the rest
//! of the spec.
//!
//! A cut is made only before a line that starts an entry of the map (at the entries' own
//! indentation, with nothing but a key there), so each run is the same text it was in the whole
//! document: every construct that could span such a line (a flow collection, a quoted scalar)
//! would leave a run unfinished, and an unfinished run is a parse failure, never a different
//! tree. Documents that use anchors, aliases or tags, hold several documents, or fail in any
//! way are parsed whole instead, so the result is always the one of the whole document.
//! Every run is padded with empty lines to keep its lines where they are in the file, and ends
//! with a sentinel entry at the entries' indentation (dropped again), so that its last node
//! ends as it does in the file: followed by another entry, not by the end of a document.

use super::{Key, Node, Value, fast};

/// Below this size one thread parses the spec faster than several start.
const MIN_BYTES: usize = 256 * 1024;

/// The key of the entry that ends each run.
const SENTINEL: &str = "__fabrik_run_end__";

/// The document parsed in runs, or `None` when it must be parsed whole.
pub(super) fn parse(text: &str, runs: usize) -> Option<Node> {
    if runs < 2 || text.len() < MIN_BYTES || !plain_enough(text) {
        return None;
    }
    let layout = Layout::find(text)?;
    let cuts = layout.cuts(text, runs);
    if cuts.is_empty() {
        return None;
    }
    // Each run but the last is a document of its own: `resources:`, the run and the sentinel.
    // The last run stays in the spec, whose other runs are left out (as empty lines): it ends
    // as in the file, followed by the rest of the spec.
    let mut bounds = vec![layout.first_entry];
    bounds.extend(cuts.iter().copied());
    bounds.push(layout.end);
    let lines_before = |at: usize| text[..at].bytes().filter(|&b| b == b'\n').count();
    let sentinel = format!("{}{SENTINEL}: 0\n", " ".repeat(layout.indent));
    let last = bounds[bounds.len() - 2];
    let mut head = String::with_capacity(text.len() - (last - layout.first_entry) + 1024);
    head.push_str(&text[..layout.first_entry]);
    head.extend(std::iter::repeat_n(
        '\n',
        lines_before(last) - lines_before(layout.first_entry),
    ));
    head.push_str(&text[last..]);
    let runs: Vec<String> = bounds[..bounds.len() - 1]
        .windows(2)
        .map(|w| {
            let padding = lines_before(w[0]) - 1;
            let mut doc = String::with_capacity(padding + 64 + (w[1] - w[0]));
            doc.extend(std::iter::repeat_n('\n', padding));
            doc.push_str("resources:\n");
            doc.push_str(&text[w[0]..w[1]]);
            doc.push_str(&sentinel);
            doc
        })
        .collect();
    // No run holds an alias (see `plain_enough`): none may add a node.
    let (head, runs) = std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .iter()
            .map(|doc| scope.spawn(move || done(fast::parse(doc, 0)).and_then(only_resources)))
            .collect();
        let head = done(fast::parse(&head, 0));
        let runs: Vec<Option<Node>> = handles
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect();
        (head, runs)
    });
    let mut root = head?;
    let Value::Map(top) = &mut root.value else {
        return None;
    };
    let mut found = top
        .iter_mut()
        .filter(|(k, _)| k.name == "resources" && k.loc.line as usize == layout.key_line);
    let (_, resources) = found.next()?;
    let Value::Map(last_entries) = &mut resources.value else {
        return None;
    };
    let last_entries = std::mem::take(last_entries);
    let mut runs = runs.into_iter();
    // The map is where its first entry is.
    let mut map = runs.next()??;
    let Value::Map(entries) = &mut map.value else {
        return None;
    };
    for run in runs {
        let Value::Map(more) = run?.value else {
            return None;
        };
        entries.extend(more);
    }
    entries.extend(last_entries);
    *resources = map;
    Some(root)
}

fn done(outcome: fast::Outcome) -> Option<Node> {
    match outcome {
        fast::Outcome::Done(node) => Some(node),
        fast::Outcome::Refused(_) | fast::Outcome::Defer => None,
    }
}

/// The map of a run's document, which must be `resources:` and a map ending with the
/// sentinel, nothing else; the sentinel is dropped.
fn only_resources(doc: Node) -> Option<Node> {
    let Value::Map(mut top) = doc.value else {
        return None;
    };
    if top.len() != 1 || top[0].0.name != "resources" {
        return None;
    }
    let mut map = top.pop()?.1;
    let Value::Map(entries) = &mut map.value else {
        return None;
    };
    drop_sentinel(entries)?;
    (!entries.is_empty()).then_some(map)
}

/// Removes the sentinel that ends a run; `None` if it is not the run's last entry.
fn drop_sentinel(entries: &mut Vec<(Key, Node)>) -> Option<()> {
    let (key, _) = entries.pop()?;
    (key.name == SENTINEL).then_some(())
}

/// No anchors, aliases, tags, directives or document markers, and nothing but LF line ends:
/// what makes a run mean something else alone is ruled out, conservatively (a `&` or `*` in a
/// string is enough to parse the document whole).
fn plain_enough(text: &str) -> bool {
    !text
        .bytes()
        .any(|b| matches!(b, b'&' | b'*' | b'!' | b'\r'))
        && !text.starts_with(['%', '-', '.'])
        && !text.contains("\n%")
        && !text.contains("\n---")
        && !text.contains("\n...")
}

/// Where the `resources:` map is.
struct Layout {
    /// Its key's line (1-based).
    key_line: usize,
    /// The byte where its first entry's line starts.
    first_entry: usize,
    /// The byte where the map ends: the next top-level line, or the end of the text.
    end: usize,
    /// Its entries' indentation.
    indent: usize,
}

impl Layout {
    fn find(text: &str) -> Option<Layout> {
        let mut key = None;
        let mut at = 0;
        for (number, line) in text.split_inclusive('\n').enumerate() {
            let bare = line.trim_end_matches('\n');
            if is_top_level_resources(bare) {
                if key.is_some() {
                    // Written twice: validation reports it, from the whole document.
                    return None;
                }
                key = Some((number + 1, at + line.len()));
            }
            at += line.len();
        }
        let (key_line, after) = key?;
        let mut indent = None;
        let mut first_entry = None;
        let mut end = text.len();
        let mut at = after;
        for line in text[after..].split_inclusive('\n') {
            let bare = line.trim_end_matches('\n');
            let content = bare.trim_start_matches(' ');
            if !(content.is_empty() || content.starts_with('#')) {
                let width = bare.len() - content.len();
                if width == 0 {
                    end = at;
                    break;
                }
                if indent.is_none() {
                    indent = Some(width);
                    first_entry = Some(at);
                }
            }
            at += line.len();
        }
        Some(Layout {
            key_line,
            first_entry: first_entry?,
            end,
            indent: indent?,
        })
    }

    /// Up to `runs - 1` cuts, at entry starts spread evenly through the map.
    fn cuts(&self, text: &str, runs: usize) -> Vec<usize> {
        let span = self.end - self.first_entry;
        let mut cuts = Vec::new();
        let mut at = self.first_entry;
        let mut next_goal = self.first_entry + span / runs;
        for line in text[self.first_entry..self.end].split_inclusive('\n') {
            if at >= next_goal && at > self.first_entry && self.starts_entry(line) {
                cuts.push(at);
                next_goal = self.first_entry + span * (cuts.len() + 1) / runs;
                if cuts.len() == runs - 1 {
                    break;
                }
            }
            at += line.len();
        }
        cuts
    }

    /// A line with exactly the entries' indentation and a plain or quoted key there: not a
    /// comment, a sequence item, a complex key or a flow collection.
    fn starts_entry(&self, line: &str) -> bool {
        let bytes = line.as_bytes();
        bytes.len() > self.indent
            && bytes[..self.indent].iter().all(|&b| b == b' ')
            && !matches!(
                bytes[self.indent],
                b' ' | b'\t' | b'\n' | b'#' | b'-' | b'?' | b':' | b'{' | b'[' | b'|' | b'>'
            )
    }
}

/// `resources:` at the start of a line, with nothing after it but spaces or a comment.
fn is_top_level_resources(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("resources:") else {
        return false;
    };
    let rest = rest.trim_start_matches(' ');
    rest.is_empty() || rest.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(text: &str) -> Node {
        match fast::parse(text, 0) {
            fast::Outcome::Done(node) => node,
            _ => panic!("the whole document did not parse"),
        }
    }

    /// A spec large enough to be split, with `entry` written `count` times.
    fn big(entry: impl Fn(usize) -> String, count: usize, tail: &str) -> String {
        let mut text = String::from("stack: demo\n# resources below\nresources:\n\n  # first\n");
        for i in 0..count {
            text.push_str(&entry(i));
        }
        text.push_str(tail);
        assert!(text.len() >= MIN_BYTES, "{} bytes", text.len());
        text
    }

    #[test]
    fn runs_give_the_tree_of_the_whole_document_lines_included() {
        type Entry = Box<dyn Fn(usize) -> String>;
        let shapes: Vec<(&str, Entry)> = vec![
            (
                "flow",
                Box::new(|i| format!("  r{i}: {{ type: local.file, with: {{ path: p{i} }} }}\n")),
            ),
            (
                "block with lists, block scalars and comments",
                Box::new(|i| {
                    format!(
                        "  r{i}:\n    type: local.file\n    # note\n    with:\n      path: \"p {i}\"\n      lines:\n      - a\n      - [b, c]\n      text: |\n        one\n\n        two\n"
                    )
                }),
            ),
            (
                "sequences at the key's indentation and multi-line scalars",
                Box::new(|i| {
                    format!(
                        "  'r{i}':\n  - x\n  - y\n  \"q{i}\": a plain scalar\n    that goes on\n  f{i}: {{ a: 1,\n    b: [2,\n      3] }}\n"
                    )
                }),
            ),
        ];
        for (what, entry) in shapes {
            for tail in ["", "outputs:\n  x: 1\n", "\n# end\nverify: []\n"] {
                let text = big(&entry, 6000, tail);
                let expected = whole(&text);
                for runs in [2, 3, 4] {
                    let split = parse(&text, runs).unwrap_or_else(|| panic!("{what}: not split"));
                    if let Some(difference) = first_difference(&split, &expected) {
                        panic!("{what}, {runs} runs, tail {tail:?}: {difference}");
                    }
                }
            }
        }
    }

    /// Where two trees first differ, briefly (a whole tree is too large to show).
    fn first_difference(a: &Node, b: &Node) -> Option<String> {
        let brief = |n: &Node| {
            let shown = format!("{:?}", n.value);
            format!("{} at {:?}", &shown[..shown.len().min(80)], n.loc)
        };
        match (&a.value, &b.value) {
            (Value::Map(x), Value::Map(y)) if x.len() == y.len() => x
                .iter()
                .zip(y)
                .find_map(|((ka, va), (kb, vb))| {
                    if ka == kb {
                        first_difference(va, vb)
                    } else {
                        Some(format!("key {ka:?} / {kb:?}"))
                    }
                })
                .or_else(|| (a.loc != b.loc).then(|| format!("{} / {}", brief(a), brief(b)))),
            (Value::Seq(x), Value::Seq(y)) if x.len() == y.len() => x
                .iter()
                .zip(y)
                .find_map(|(p, q)| first_difference(p, q))
                .or_else(|| (a.loc != b.loc).then(|| format!("{} / {}", brief(a), brief(b)))),
            _ => (a != b).then(|| format!("{} / {}", brief(a), brief(b))),
        }
    }

    #[test]
    fn documents_a_run_could_misread_are_parsed_whole() {
        let plain = |i| format!("  r{i}: {{ type: local.file, with: {{ path: p{i} }} }}\n");
        let refused = [
            // Anchors and aliases may cross runs.
            big(plain, 8000, "x: &a 1\ny: *a\n"),
            // Tags, directives, several documents, CRLF line ends.
            big(plain, 8000, "x: !!str 1\n"),
            big(plain, 8000, "---\nx: 1\n"),
            big(plain, 8000, "x: 1\r\n"),
            // Twice the key.
            big(plain, 8000, "resources:\n  z: {}\n"),
        ];
        for text in &refused {
            assert!(parse(text, 2).is_none());
        }
        // Too small to be worth a thread.
        assert!(parse("resources:\n  a: {}\n  b: {}\n", 2).is_none());
        // A quoted scalar that spans a cut leaves a run unfinished: parsed whole.
        let spanning = big(
            |i| format!("  r{i}: \"one line\n  r{i}x: still the same string\"\n"),
            8000,
            "",
        );
        assert!(parse(&spanning, 2).is_none());
    }

    #[test]
    fn a_spec_of_many_nodes_without_aliases_is_parsed_in_runs() {
        // 266,500 nodes, more than the aliases of any document may add: nodes written in the
        // text are bounded by its size alone.
        let text = big(
            |i| format!("  r{i}: [{}]\n", vec!["1"; 40].join(",")),
            6500,
            "",
        );
        let expected = whole(&text);
        assert!(fast::size(&expected) > 250_000);
        let split = parse(&text, 2).expect("split");
        assert_eq!(first_difference(&split, &expected), None);
    }
}

//! The engine's layers point one way (STYLE.md habit 10, docs/architecture.md section 3): this
//! reads `src/**.rs` as the compiler sees the module tree (test-only modules and items left
//! out), builds the graph of `crate::` and `super::` paths between top-level modules (`a::b` is
//! `a`), and fails naming every cycle. It also holds `src/lib.rs`'s "Layers" list to the code:
//! every module is in one layer, uses nothing of a higher layer, and the bottom layer (the leaves)
//! uses nothing of the crate at all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where a dependency is written, for messages.
#[derive(Debug, Clone)]
struct Site {
    file: PathBuf,
    line: usize,
}

/// Top-level module → the top-level modules it uses, each with the first place it does.
type Graph = BTreeMap<String, BTreeMap<String, Site>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_cycle_between_top_level_modules() {
    let graph = graph();
    let cycles = cycles(&graph);
    assert!(
        cycles.is_empty(),
        "modules of src/ depend on each other in a circle (a leaf module is missing, or a \
         type sits in the wrong layer):\n{}",
        cycles.join("\n")
    );
}

#[test]
fn the_layers_in_lib_rs_are_true() {
    let graph = graph();
    let layers = layers_in_lib_rs();
    assert!(layers.len() > 1, "src/lib.rs's doc has no `# Layers` list");
    let layer_of: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, modules)| modules.iter().map(move |m| (m.as_str(), i)))
        .collect();
    let mut wrong = Vec::new();
    let modules = top_level_modules();
    for module in &modules {
        if !layer_of.contains_key(module.as_str()) {
            wrong.push(format!(
                "`{module}` is in no layer of src/lib.rs's `# Layers` list"
            ));
        }
    }
    for module in layer_of.keys() {
        if !modules.contains(*module) {
            wrong.push(format!(
                "src/lib.rs's `# Layers` list names `{module}`, which is no module"
            ));
        }
    }
    for (from, uses) in &graph {
        let Some(&at) = layer_of.get(from.as_str()) else {
            continue;
        };
        for (to, site) in uses {
            let Some(&to_at) = layer_of.get(to.as_str()) else {
                continue;
            };
            if at == 0 {
                wrong.push(format!(
                    "`{from}` is a leaf but uses `{to}` ({})",
                    site.show()
                ));
            } else if to_at > at {
                wrong.push(format!(
                    "`{from}` (layer {}) uses `{to}` of the higher layer {} ({})",
                    at + 1,
                    to_at + 1,
                    site.show()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

impl Site {
    fn show(&self) -> String {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let file = self.file.strip_prefix(root).unwrap_or(&self.file);
        format!("{}:{}", file.display(), self.line)
    }
}

/// The modules `src/lib.rs` declares.
fn top_level_modules() -> BTreeSet<String> {
    let text = code_of(&std::fs::read_to_string(src().join("lib.rs")).unwrap());
    module_declarations(&text).into_iter().collect()
}

/// The layers of `src/lib.rs`'s doc, bottom first: the numbered items under `# Layers`, each
/// naming its modules as [`links`].
fn layers_in_lib_rs() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let doc: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect();
    let mut layers: Vec<Vec<String>> = Vec::new();
    let mut inside = false;
    for line in doc {
        if line.starts_with('#') {
            inside = line.trim_start_matches('#').trim() == "Layers";
            continue;
        }
        if !inside {
            continue;
        }
        let item = line
            .split_once(". ")
            .filter(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        let names = match item {
            Some((_, rest)) => {
                layers.push(Vec::new());
                rest
            }
            None if line.starts_with(' ') => line,
            None => continue,
        };
        if let Some(layer) = layers.last_mut() {
            let mut rest = names;
            while let Some(start) = rest.find("[`") {
                let after = &rest[start + 2..];
                let Some(end) = after.find("`]") else { break };
                layer.push(after[..end].to_string());
                rest = &after[end + 2..];
            }
        }
    }
    layers
}

/// The graph of the crate's non-test code.
fn graph() -> Graph {
    let tops = top_level_modules();
    let mut graph = Graph::new();
    for top in &tops {
        graph.entry(top.clone()).or_default();
        let Some(file) = module_file(&src(), top) else {
            panic!("module `{top}` has no file src/{top}.rs or src/{top}/mod.rs");
        };
        walk(&file, std::slice::from_ref(top), &tops, &mut graph);
    }
    graph
}

/// `dir/name.rs` or `dir/name/mod.rs`.
fn module_file(dir: &Path, name: &str) -> Option<PathBuf> {
    [
        dir.join(format!("{name}.rs")),
        dir.join(name).join("mod.rs"),
    ]
    .into_iter()
    .find(|p| p.exists())
}

/// Reads one module's file for its uses, then its non-test submodules'.
fn walk(file: &Path, path: &[String], tops: &BTreeSet<String>, graph: &mut Graph) {
    let text = code_of(&std::fs::read_to_string(file).unwrap());
    let top = &path[0];
    for (name, line) in uses(&text, path.len()) {
        if tops.contains(&name) && &name != top {
            graph
                .get_mut(top)
                .unwrap()
                .entry(name)
                .or_insert_with(|| Site {
                    file: file.to_path_buf(),
                    line,
                });
        }
    }
    // Children of `a.rs` and of `a/mod.rs` both live in `a/`.
    let dir = if file.file_name().is_some_and(|n| n == "mod.rs") {
        file.parent().unwrap().to_path_buf()
    } else {
        file.with_extension("")
    };
    for child in module_declarations(&text) {
        let child_file = module_file(&dir, &child)
            .unwrap_or_else(|| panic!("{}: no file for `mod {child};`", file.display()));
        let mut child_path = path.to_vec();
        child_path.push(child);
        walk(&child_file, &child_path, tops, graph);
    }
}

/// `mod x;` declarations (inline `mod x { .. }` bodies are part of the file already).
fn module_declarations(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices("mod ") {
        if at > 0 && is_ident(code.as_bytes()[at - 1]) {
            continue;
        }
        let rest = &code[at + 4..];
        let name: String = rest.chars().take_while(|&c| is_ident(c as u8)).collect();
        if !name.is_empty() && rest[name.len()..].trim_start().starts_with(';') {
            found.push(name);
        }
    }
    found
}

/// The crate-level names a file's code uses, with their lines: `crate::x`, `$crate::x`,
/// `crate::{x, y::z}`, and `super::` paths that climb to the crate root from a module
/// `depth` levels down.
fn uses(code: &str, depth: usize) -> Vec<(String, usize)> {
    let bytes = code.as_bytes();
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if i > 0 && is_ident(bytes[i - 1]) {
            i += 1;
            continue;
        }
        if !code.is_char_boundary(i) {
            i += 1;
            continue;
        }
        let rest = &code[i..];
        let mut root = None;
        if rest.starts_with("crate::") {
            root = Some(i + "crate::".len());
        } else if rest.starts_with("super::") {
            let mut at = i;
            let mut climbs = 0;
            while code[at..].starts_with("super::") {
                at += "super::".len();
                climbs += 1;
            }
            if climbs >= depth {
                root = Some(at);
            } else {
                // Within this top-level module: no edge.
                i = at;
                continue;
            }
        }
        if let Some(start) = root {
            let after = &code[start..];
            if let Some(group) = after.strip_prefix('{') {
                let mut level = 0;
                let mut item_start = true;
                for (k, c) in group.char_indices() {
                    match c {
                        '{' => level += 1,
                        '}' if level == 0 => break,
                        '}' => level -= 1,
                        ',' if level == 0 => item_start = true,
                        c if c.is_whitespace() => {}
                        _ if item_start && level == 0 => {
                            item_start = false;
                            let name: String = group[k..]
                                .chars()
                                .take_while(|&c| is_ident(c as u8))
                                .collect();
                            found.push((name, line_of(start + 1 + k)));
                        }
                        _ => {}
                    }
                }
            } else {
                let name: String = after.chars().take_while(|&c| is_ident(c as u8)).collect();
                found.push((name, line_of(start)));
            }
            i = start;
        }
        i += 1;
    }
    found
}

/// Whether `chars[i]` starts a token: nothing of an identifier before it, or only the `b` of a
/// byte string (`br".."`).
fn starts_token(chars: &[char], i: usize) -> bool {
    let ident = |k: usize| is_ident(chars[k] as u8);
    i == 0 || !ident(i - 1) || (chars[i - 1] == 'b' && (i == 1 || !ident(i - 2)))
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The code of a file as the compiler builds it outside tests: comments and the contents of
/// string and character literals blanked (line breaks kept, for line numbers), and every item
/// under `#[cfg(test)]` removed.
fn code_of(text: &str) -> String {
    let blank = blank_comments_and_literals(text);
    let mut out = String::with_capacity(blank.len());
    let mut rest = blank.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let end = test_item_end(item);
        out.extend(item[..end].chars().filter(|&c| c == '\n'));
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// Where the item that `#[cfg(test)]` starts ends: at its `;`, or at the brace closing its
/// body, whichever comes first outside parentheses and brackets.
fn test_item_end(item: &str) -> usize {
    let mut depth = 0i32;
    let mut chars = item.char_indices().skip("#[cfg(test)]".len());
    while let Some((k, c)) = chars.next() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ';' if depth == 0 => return k + 1,
            '{' if depth == 0 => {
                let mut braces = 1;
                for (k, c) in chars.by_ref() {
                    match c {
                        '{' => braces += 1,
                        '}' => {
                            braces -= 1;
                            if braces == 0 {
                                return k + 1;
                            }
                        }
                        _ => {}
                    }
                }
                return item.len();
            }
            _ => {}
        }
    }
    item.len()
}

/// `text` with comments and the insides of string and char literals replaced by spaces.
fn blank_comments_and_literals(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut level = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    level += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    level -= 1;
                    i += 2;
                    if level == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && starts_token(&chars, i) {
            // A raw string: r"..", r#".."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            out.push_str("r\"");
            j += 1;
            let closing: String = std::iter::once('"')
                .chain("#".repeat(hashes).chars())
                .collect();
            while j < chars.len() && !chars[j..].starts_with(&closing.chars().collect::<Vec<_>>()) {
                out.push(blank(chars[j]));
                j += 1;
            }
            out.push('"');
            i = j + closing.chars().count();
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if let Some(&ch) = chars.get(i) {
                    out.push(blank(ch));
                }
                i += 1;
            }
            out.push('"');
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a), which stays.
            let literal_end = if next == Some('\\') {
                // The escaped character may itself be a quote: look from after it.
                chars[i + 3..]
                    .iter()
                    .position(|&c| c == '\'')
                    .map(|p| i + 3 + p)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match literal_end {
                Some(end) => {
                    out.push_str("' '");
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Every cycle of the graph (its strongly connected components of more than one module), each
/// as a path through it with where each step is written.
fn cycles(graph: &Graph) -> Vec<String> {
    let mut found = Vec::new();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for start in graph.keys() {
        if done.contains(start.as_str()) {
            continue;
        }
        // The modules reachable from `start` that also reach it form its component.
        let from = reachable(graph, start);
        let component: BTreeSet<&str> = from
            .iter()
            .copied()
            .filter(|m| reachable(graph, m).contains(start.as_str()))
            .collect();
        done.extend(component.iter().copied());
        if component.len() < 2 {
            continue;
        }
        found.push(describe_cycle(graph, start, &component));
    }
    found
}

fn reachable<'g>(graph: &'g Graph, from: &str) -> BTreeSet<&'g str> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&str> = graph
        .get(from)
        .map(|uses| uses.keys().map(String::as_str).collect())
        .unwrap_or_default();
    while let Some(m) = stack.pop() {
        if seen.insert(m)
            && let Some(uses) = graph.get(m)
        {
            stack.extend(uses.keys().map(String::as_str));
        }
    }
    seen
}

/// `a -> b (src/a.rs:3) -> a (src/b.rs:7)`: a shortest way from `start` back to itself.
fn describe_cycle(graph: &Graph, start: &str, component: &BTreeSet<&str>) -> String {
    // Breadth first from `start` inside the component until it comes back.
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    let mut last = None;
    'search: while let Some(m) = queue.pop_front() {
        for next in graph[m].keys().map(String::as_str) {
            if !component.contains(next) {
                continue;
            }
            if next == start {
                last = Some(m);
                break 'search;
            }
            if !came_from.contains_key(next) {
                came_from.insert(next, m);
                queue.push_back(next);
            }
        }
    }
    let mut path = vec![start];
    let mut at = last.expect("a component of two or more modules has a cycle through each");
    while at != start {
        path.push(at);
        at = came_from[at];
    }
    path[1..].reverse();
    path.push(start);
    let mut text = format!("  {start}");
    for pair in path.windows(2) {
        let site = &graph[pair[0]][pair[1]];
        text.push_str(&format!(" -> {} ({})", pair[1], site.show()));
    }
    text.push_str(&format!(
        "   [all of: {}]",
        component.iter().copied().collect::<Vec<_>>().join(", ")
    ));
    text
}

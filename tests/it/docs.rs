//! The documentation stays true to the binary: each provider page names exactly the fields and
//! outputs its resource types have (taken from the registry, not from a list kept here), every
//! spec shown in `README.md`, `docs/` and `examples/` is accepted by `fabrik validate`, and
//! every relative link leads to a file (and heading) that exists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use fabrik::registry::Registry;

use crate::harness::Case;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The info string that marks a ```yaml block as a shape rather than a spec (`NAME`, `{ ... }`),
/// exempt from validation. Keep them rare: [`SCHEMATIC_BLOCKS`] counts them.
const SCHEMATIC: &str = "yaml title=\"schematic\"";
/// How many schematic blocks the documentation holds; a new one has to be counted here.
const SCHEMATIC_BLOCKS: usize = 1;

/// `README.md` and every Markdown file under `docs/` and `examples/`.
fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("a directory") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut files = vec![Path::new(ROOT).join("README.md")];
    walk(&Path::new(ROOT).join("docs"), &mut files);
    walk(&Path::new(ROOT).join("examples"), &mut files);
    files.sort();
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn relative(path: &Path) -> String {
    path.strip_prefix(ROOT)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// A fenced block: its info string (`yaml`, `sh`, …), its first line's number and its text.
struct Block {
    info: String,
    line: usize,
    text: String,
}

fn fenced_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (number, line) in markdown.lines().enumerate() {
        match open.take() {
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    open = Some(Block {
                        info: info.trim().to_string(),
                        line: number + 2,
                        text: String::new(),
                    });
                }
            }
            Some(mut block) => {
                if line.trim_end() == "```" {
                    blocks.push(block);
                } else {
                    block.text.push_str(line);
                    block.text.push('\n');
                    open = Some(block);
                }
            }
        }
    }
    assert!(open.is_none(), "a fenced block is never closed");
    blocks
}

/// The lines of a page from its heading `## `TYPE`` (or `## Configuration`) to the next `## `.
fn section<'a>(page: &'a str, heading: &str) -> Option<&'a str> {
    let start = page.find(&format!("\n{heading}\n"))? + 1;
    let rest = &page[start + heading.len()..];
    let end = rest.find("\n## ").map_or(rest.len(), |i| i + 1);
    Some(&rest[..end])
}

/// The names in the first column of each table in `text` whose header starts with `column`:
/// `| `name` | …` rows.
fn table_names(text: &str, column: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut inside = false;
    for line in text.lines() {
        if !line.starts_with('|') {
            inside = false;
            continue;
        }
        if line.starts_with(&format!("| {column} |")) {
            inside = true;
            continue;
        }
        if inside && !line.starts_with("|---") {
            let first = line.split('|').nth(1).unwrap_or("").trim();
            names.insert(first.trim_matches('`').to_string());
        }
    }
    names
}

fn set<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    names.into_iter().map(str::to_string).collect()
}

/// Each provider's page has a `## Configuration` section whose table names exactly the
/// provider's configuration fields, and a `## `TYPE`` section per resource type whose tables
/// name exactly its fields and its outputs: none missing, none that does not exist.
#[test]
fn each_provider_page_names_every_field_and_output_and_no_other() {
    let registry = Registry::builtin();
    let mut problems = Vec::new();
    for provider in registry.provider_names() {
        let path = Path::new(ROOT).join(format!("docs/providers/{provider}.md"));
        let page = read(&path);
        let page_name = relative(&path);
        let configuration = section(&page, "## Configuration")
            .unwrap_or_else(|| panic!("{page_name} has no `## Configuration` section"));
        let fields = registry.provider(provider).unwrap().config_fields();
        let expected = set(fields.iter().map(|f| f.name));
        let documented = table_names(configuration, "field");
        if documented != expected {
            problems.push(format!(
                "{page_name}, configuration: documents {documented:?}, the provider has {expected:?}"
            ));
        }
        for type_name in registry
            .type_names()
            .filter(|t| registry.provider_of(t) == Some(provider))
        {
            let ty = registry.resource_type(type_name).unwrap();
            let Some(text) = section(&page, &format!("## `{type_name}`")) else {
                problems.push(format!("{page_name} has no section ## `{type_name}`"));
                continue;
            };
            let fields = set(ty.fields.iter().map(|f| f.name));
            let documented = table_names(text, "field");
            if documented != fields {
                problems.push(format!(
                    "{page_name}, {type_name}: the fields table names {documented:?}, the type has {fields:?}"
                ));
            }
            let outputs = set(ty.outputs.iter().map(|o| o.name));
            let documented = table_names(text, "output");
            if documented != outputs {
                problems.push(format!(
                    "{page_name}, {type_name}: the outputs table names {documented:?}, the type has {outputs:?}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// A block of the documentation made into a spec: a fragment without `stack:` gets one, and the
/// secrets it uses are declared when it declares none, so a page can show a `providers:` block
/// or a `verify:` list alone. Anything else must be there as written.
fn as_spec(yaml: &str) -> String {
    let mut spec = String::new();
    let top_level = |key: &str| yaml.lines().any(|l| l.starts_with(&format!("{key}:")));
    if !top_level("stack") {
        spec.push_str("stack: docs\n");
    }
    if !top_level("secrets") {
        let mut names = BTreeSet::new();
        for piece in yaml.split("${secret.").skip(1) {
            if let Some(end) = piece.find('}') {
                names.insert(&piece[..end]);
            }
        }
        if !names.is_empty() {
            spec.push_str("secrets:\n");
            for name in names {
                spec.push_str(&format!("  {name}: {{}}\n"));
            }
        }
    }
    spec.push_str(yaml);
    spec
}

/// Every ```yaml block of `README.md`, `docs/` and `examples/` is a spec (or a fragment of one,
/// see [`as_spec`]) that `fabrik validate` accepts, except the few marked schematic. (The
/// examples' own `fabrik.yaml` files are validated by `graph::examples_validate` and
/// `schema::every_example_and_fixture_spec_fits_the_schema_and_validates`.)
#[test]
fn every_yaml_block_in_the_docs_validates() {
    let case = Case::new();
    let mut failures = Vec::new();
    let mut schematic = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        let markdown = read(&file);
        for block in fenced_blocks(&markdown) {
            let place = format!("{}:{}", relative(&file), block.line);
            if block.info == SCHEMATIC {
                schematic.push(place);
                continue;
            }
            if block.info != "yaml" {
                continue;
            }
            // A line naming the schema for editors is a comment, not a spec.
            if block.text.trim().starts_with("# yaml-language-server:")
                && block.text.trim().lines().count() == 1
            {
                continue;
            }
            checked += 1;
            case.write("fabrik.yaml", as_spec(&block.text));
            let out = case.run(["validate"]);
            if out.code != 0 {
                failures.push(format!("{place}:\n{}\n{out}", block.text));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(checked >= 15, "only {checked} yaml blocks found");
    assert_eq!(
        schematic.len(),
        SCHEMATIC_BLOCKS,
        "schematic blocks: {schematic:#?}"
    );
}

/// A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as dashes.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut in_fence = false;
    let mut out = BTreeSet::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence && line.starts_with('#') {
            out.insert(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// The targets of the `[text](target)` links of `markdown`, outside code blocks and spans.
fn link_targets(markdown: &str) -> Vec<String> {
    let mut in_fence = false;
    let mut targets = Vec::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        // Drop code spans, whose text may hold `](`.
        let text: String = line.split('`').step_by(2).collect::<Vec<_>>().join("");
        let mut rest = text.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    targets
}

/// Every relative link in `README.md` and `docs/` points at a file of the repository, and at a
/// heading of it when it names one.
#[test]
fn every_relative_link_in_the_docs_leads_somewhere() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        let markdown = read(&file);
        for target in link_targets(&markdown) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let destination = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !destination.exists() {
                broken.push(format!("{}: {target} (no such file)", relative(&file)));
                continue;
            }
            if !fragment.is_empty() && !anchors(&read(&destination)).contains(fragment) {
                broken.push(format!("{}: {target} (no such heading)", relative(&file)));
            }
        }
    }
    assert!(broken.is_empty(), "{broken:#?}");
    assert!(checked >= 20, "only {checked} relative links found");
}

/// The quickstart the README shows is the one in `examples/quickstart/`, as it is there (its
/// opening comments aside).
#[test]
fn the_readme_shows_the_quickstart_example_as_it_is() {
    let readme = read(&Path::new(ROOT).join("README.md"));
    let example = read(&Path::new(ROOT).join("examples/quickstart/fabrik.yaml"));
    let spec: String = example
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let shown = fenced_blocks(&readme)
        .into_iter()
        .find(|b| b.info == "yaml" && b.text.starts_with("stack: quickstart\n"))
        .expect("the README shows the quickstart's spec");
    assert_eq!(shown.text, spec);
}

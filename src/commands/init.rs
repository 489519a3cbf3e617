//! `fabrik init`: a first spec in the current directory, so a new user starts from a file that
//! validates and applies rather than from an empty page. The starter spec and the examples are
//! embedded in the binary, so `init` works wherever fabrik was installed.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::Path;

use crate::cli::{Example, InitArgs};
use crate::error::Error;

/// The spec file `init` writes.
const SPEC: &str = "fabrik.yaml";

/// What fabrik keeps beside a spec and a repository should not: the local state and the
/// secrets file.
const IGNORED: [&str; 2] = [".fabrik/", ".env"];

const STARTER: &str = include_str!("starter.yaml");
const QUICKSTART: &str = include_str!("../../examples/quickstart/fabrik.yaml");
const DNS: &str = include_str!("../../examples/dns/fabrik.yaml");
const COOLIFY: &str = include_str!("../../examples/coolify/fabrik.yaml");

pub fn run(args: InitArgs) -> Result<i32, Error> {
    let dir = std::env::current_dir().map_err(|e| Error::io("reading the current directory", e))?;
    let (what, text) = match args.example {
        None => ("the starter spec", STARTER.to_string()),
        Some(example) => {
            let (name, text) = match example {
                Example::Quickstart => ("quickstart", QUICKSTART),
                Example::Dns => ("dns", DNS),
                Example::Coolify => ("coolify", COOLIFY),
            };
            (name, without_schema_line(text))
        }
    };
    write_new(&dir.join(SPEC), &text)?;
    let added = ignore(&dir.join(".gitignore"))?;
    match args.example {
        None => outln!("Wrote {SPEC}: {what}."),
        Some(_) => outln!("Wrote {SPEC}: the `{what}` example."),
    }
    if !added.is_empty() {
        outln!("Added {} to .gitignore.", added.join(" and "));
    }
    outln!("Next: `fabrik validate`, then `fabrik plan` and `fabrik apply`.");
    Ok(0)
}

/// The examples point editors at the schema by a path inside the repository, which means
/// nothing beside a copy.
fn without_schema_line(text: &str) -> String {
    text.lines()
        .filter(|line| !line.starts_with("# yaml-language-server:"))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Writes `text` to `path`, refusing when the file exists (even when it appears meanwhile).
fn write_new(path: &Path, text: &str) -> Result<(), Error> {
    let mut file = match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::Usage(format!(
                "{SPEC} already exists here; nothing was changed (move it away to start anew)"
            )));
        }
        Err(e) => return Err(Error::io(format!("creating {}", path.display()), e)),
    };
    file.write_all(text.as_bytes())
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Appends to `.gitignore` (creating it) each of [`IGNORED`] it does not list yet; returns
/// those added.
fn ignore(path: &Path) -> Result<Vec<&'static str>, Error> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let listed = |entry: &str| {
        existing
            .lines()
            .any(|line| line.trim() == entry || line.trim() == entry.trim_end_matches('/'))
    };
    let added: Vec<&str> = IGNORED.into_iter().filter(|e| !listed(e)).collect();
    if added.is_empty() {
        return Ok(added);
    }
    let mut text = String::new();
    if !existing.is_empty() && !existing.ends_with('\n') {
        text.push('\n');
    }
    for entry in &added {
        text.push_str(entry);
        text.push('\n');
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    Ok(added)
}

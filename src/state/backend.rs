//! Which backend holds a stack's state, decided from `--backend` (or `FABRIK_BACKEND`),
//! `--state-dir` and the spec's `backend:` block, and moving a state from one backend to
//! another. Every command finds its state through here, so all of them decide alike.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::postgres::{self, Config};
use super::{Backend, State, StateStore};
use crate::error::Error;
use crate::source::SourceFile;
use crate::spec::{BackendBlock, Header, Spec};

/// What the command line says about where states are: a database URL, a state directory, or
/// neither (then the spec's `backend:`, else `.fabrik/` beside the spec).
#[derive(Debug, Clone, Default)]
pub struct Choice {
    /// `--state-dir`, or `--backend` naming a directory.
    pub state_dir: Option<PathBuf>,
    /// `--backend` or `FABRIK_BACKEND` when it names a database.
    pub url: Option<String>,
}

impl Choice {
    /// From the `--backend` and `--state-dir` values as given: a `--backend` that is no
    /// database URL names a directory, taken as `--state-dir` unless that is given too.
    pub fn new(backend: Option<String>, state_dir: Option<PathBuf>) -> Self {
        match backend {
            Some(url) if postgres::is_url(&url) => Choice {
                state_dir,
                url: Some(url),
            },
            Some(dir) if !dir.is_empty() => Choice {
                state_dir: state_dir.or(Some(PathBuf::from(dir))),
                url: None,
            },
            _ => Choice {
                state_dir,
                url: None,
            },
        }
    }

    /// `--state-dir`, or `.fabrik/` beside the spec.
    pub fn state_dir(&self, spec: &Path) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| spec_dir(spec).join(".fabrik"))
    }

    /// Where the states are kept for this spec: `--backend` (or `FABRIK_BACKEND`), else
    /// `--state-dir`, else the spec's `backend:`, else `.fabrik/` beside the spec.
    pub fn backend(&self, spec_path: &Path, spec: Option<&Spec>) -> Result<Backend, Error> {
        let block = spec.and_then(|spec| Some((&spec.source, spec.backend.as_ref()?)));
        self.backend_of(spec_path, block)
    }

    /// [`Choice::backend`] from a spec's `backend:` block alone (with the file it is written
    /// in, for messages).
    fn backend_of(
        &self,
        spec_path: &Path,
        block: Option<(&Arc<SourceFile>, &BackendBlock)>,
    ) -> Result<Backend, Error> {
        // A run that loses the database keeps its state beside the spec until the next run.
        let local = self.state_dir(spec_path);
        if let Some(url) = &self.url {
            let config = Config::parse(url, None)?.with_local_dir(local);
            return Ok(Backend::Postgres(Box::new(config)));
        }
        if self.state_dir.is_none()
            && let Some((source, block)) = block
        {
            let url = backend_url(source, &block.url, &spec_dir(spec_path))?;
            let config = Config::parse(&url, block.schema.as_deref())?.with_local_dir(local);
            return Ok(Backend::Postgres(Box::new(config)));
        }
        Ok(Backend::Dir(self.state_dir(spec_path)))
    }

    /// Whether the spec's `backend:` block decides where the state is (no `--backend` or
    /// `--state-dir` given).
    pub fn spec_chooses(&self, spec: &Spec) -> bool {
        self.url.is_none() && self.state_dir.is_none() && spec.backend.is_some()
    }

    /// The store of one stack of a spec.
    pub fn store(
        &self,
        spec_path: &Path,
        spec: Option<&Spec>,
        stack: &str,
    ) -> Result<Box<dyn StateStore>, Error> {
        self.backend(spec_path, spec)?.store(stack)
    }

    /// The store of the stack a state command is about: `stack` (`--stack`), else the spec's,
    /// else the only stack in the backend. Of the spec only `stack:` and `backend:` are read
    /// (and nothing when `--stack` and `--backend` or `--state-dir` say it all), so that a spec
    /// being edited does not lock its user out of the state.
    pub fn store_for(
        &self,
        spec_path: &Path,
        stack: Option<&str>,
    ) -> Result<Box<dyn StateStore>, Error> {
        let placed = self.url.is_some() || self.state_dir.is_some();
        let header = if spec_path.exists() && !(placed && stack.is_some()) {
            Some(Header::load(spec_path, stack)?)
        } else {
            None
        };
        let block = header
            .as_ref()
            .and_then(|h| Some((&h.source, h.backend.as_ref()?)));
        let backend = self.backend_of(spec_path, block)?;
        let stack = match (stack, header) {
            (Some(stack), _) => stack.to_string(),
            (None, Some(header)) => header.stack,
            (None, None) => only_stack(&backend, spec_path)?,
        };
        backend.store(&stack)
    }
}

/// The directory that holds a spec (`.` for a bare file name).
pub fn spec_dir(spec: &Path) -> PathBuf {
    match spec.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The connection string of the spec's backend, its secrets looked up in the environment and
/// in the `.env` beside the spec.
fn backend_url(
    source: &Arc<SourceFile>,
    url: &crate::spec::Expr,
    base_dir: &Path,
) -> Result<String, Error> {
    let missing = |what: String| {
        Error::Spec(crate::source::Diagnostics {
            source: source.clone(),
            items: vec![crate::source::Diagnostic::new(url.loc, what)],
        })
    };
    // The spec loader lets only strings through; say so rather than trust it blindly.
    let crate::spec::ExprKind::Str(parts) = &url.kind else {
        return Err(missing("`url` must be a string".into()));
    };
    let dotenv = base_dir.join(".env");
    let mut text = String::new();
    for part in parts {
        match part {
            crate::template::Part::Text(t) => text.push_str(t),
            crate::template::Part::Ref(crate::template::Reference::Secret(name)) => {
                let value = crate::secrets::lookup(name, &dotenv)?.ok_or_else(|| {
                    missing(format!(
                        "the state backend needs secret `{name}`: set the environment variable `{name}` or put it in {}",
                        dotenv.display()
                    ))
                })?;
                text.push_str(value.expose());
            }
            crate::template::Part::Ref(crate::template::Reference::Env(env)) => {
                let value = env.value().map_err(|_| {
                    missing(format!(
                        "the state backend needs the environment variable `{}`",
                        env.name
                    ))
                })?;
                text.push_str(&value);
            }
            crate::template::Part::Ref(other) => {
                return Err(missing(format!("`url` cannot use {}", other.written())));
            }
        }
    }
    Ok(text)
}

/// The stack a spec names on a top-level `stack:` line, read without parsing the YAML: a guess
/// that lets work start early, always confirmed against the parsed spec.
pub fn stack_line(spec: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(spec)
        .ok()?
        .take(64 * 1024)
        .read_to_end(&mut head)
        .ok()?;
    let head = String::from_utf8_lossy(&head);
    let line = head.lines().find(|l| l.starts_with("stack:"))?;
    let value = line["stack:".len()..]
        .split(" #")
        .next()?
        .trim()
        .trim_matches(['"', '\'']);
    crate::spec::valid_name(value).then(|| value.to_string())
}

/// The one stack that has a state in the backend.
pub fn only_stack(backend: &Backend, spec: &Path) -> Result<String, Error> {
    let stacks = backend.stacks()?;
    match stacks.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::Usage(format!(
            "{} does not exist and there is no state in {}",
            spec.display(),
            backend.describe()
        ))),
        many => Err(Error::Usage(format!(
            "{} holds the state of several stacks ({}); name one with --stack",
            backend.describe(),
            many.join(", ")
        ))),
    }
}

/// The backend `state migrate --to` names: a PostgreSQL URL or a state directory.
fn named(to: &str) -> Result<Backend, Error> {
    Ok(if postgres::is_url(to) {
        Backend::Postgres(Box::new(Config::parse(to, None)?))
    } else {
        Backend::Dir(to.into())
    })
}

/// A state moved by [`migrate`], for the report.
pub struct Migrated {
    /// The state as it was moved.
    pub state: State,
    /// Where it is now.
    pub to: Backend,
    /// What became of the old copy, as [`StateStore::retire`] says.
    pub old: String,
}

/// Copies the state of `source` to the backend `to` (a PostgreSQL URL or a directory), reads it
/// back and compares, and only then retires the old copy. Both stores are locked throughout
/// (the locks name `command_line`), so no run writes either meanwhile. `local_dir` is the state
/// directory beside the spec, where the stack's masking key is when no database shares it.
pub fn migrate(
    source: &dyn StateStore,
    to: &str,
    command_line: &str,
    local_dir: &Path,
) -> Result<Migrated, Error> {
    let _source_lock = source.lock(command_line)?;
    let state = source.load()?;
    if state.lineage.is_empty() {
        return Err(Error::Usage(format!(
            "stack `{}` has no state to migrate",
            source.stack()
        )));
    }
    let target_backend = named(to)?;
    let target = target_backend.store(source.stack())?;
    let _target_lock = target.lock(command_line)?;
    // A stack moved away from the target earlier may come back: its marker is no obstacle.
    let there = match target.load() {
        Err(Error::Moved { .. }) => State::empty(source.stack()),
        other => other?,
    };
    if !there.lineage.is_empty() {
        return Err(Error::Usage(format!(
            "{} already holds a state of stack `{}` (serial {}); nothing was moved",
            target_backend.describe(),
            source.stack(),
            there.serial
        )));
    }
    target.commit(&state)?;
    let copy = target.load()?;
    if copy != state {
        return Err(Error::State(format!(
            "the copy of stack `{}` in {} differs from the original, which stays in use; remove the copy before trying again",
            source.stack(),
            target_backend.describe()
        )));
    }
    carry_key(local_dir, source, &*target, &target_backend)?;
    let old = source.retire(&target_backend.describe())?;
    Ok(Migrated {
        state,
        to: target_backend,
        old,
    })
}

/// Takes the key masking the stack's sensitive inputs along, so that their recorded hashes still
/// match: into the database's key table, or beside the state in a directory.
fn carry_key(
    local_dir: &Path,
    source: &dyn StateStore,
    target: &dyn StateStore,
    target_backend: &Backend,
) -> Result<(), Error> {
    let stack = source.stack();
    let local = crate::secrets::stack_key(local_dir, stack)?;
    let key = match source.shared_key(&local.key)? {
        Some(shared) => shared,
        None if local.unsaved.is_none() => local.key,
        // Nothing sensitive was ever recorded: no key to carry.
        None => return Ok(()),
    };
    match target_backend {
        Backend::Dir(dir) => {
            let path = dir.join(format!("{stack}.key"));
            if !path.exists() {
                super::file::write_atomically(&path, &key)?;
            }
        }
        Backend::Postgres(_) => {
            target.shared_key(&key)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_line_is_read_without_parsing_and_only_when_plain() {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("fabrik.yaml");
        for (text, want) in [
            ("# a comment\nstack: shop\nresources: {}\n", Some("shop")),
            ("stack: \"shop-2\" # quoted, commented\n", Some("shop-2")),
            ("resources:\n  stack: nested\n", None),
            ("stack: [not, a, name]\n", None),
        ] {
            std::fs::write(&spec, text).unwrap();
            assert_eq!(stack_line(&spec).as_deref(), want, "{text:?}");
        }
        assert_eq!(stack_line(&dir.path().join("missing.yaml")), None);
    }
}

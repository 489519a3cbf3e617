//! Secrets: declared in the spec, resolved from the process environment, then the `.env` file
//! beside the spec, then generated from the operating system's CSPRNG (and saved to `.env` so the
//! next run sees the same value).
//!
//! A value lives in [`Secret`], whose Debug, Display and Serialize print `(sensitive)`; only
//! [`Secret::expose`] gives it out, for the provider call that needs it. Whatever fabrik stores
//! (state, journal, saved plans) holds a keyed BLAKE3 hash in its place, and everything fabrik
//! prints passes through [`crate::redact`] as a last line of defence.

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

use crate::error::Error;
use crate::redact::{MIN_LENGTH, register, too_short};
use crate::source::{Diagnostic, Diagnostics};
use crate::spec::{Alphabet, SecretDecl, Spec};

/// A secret value. Printing or serializing it shows `(sensitive)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The value itself, for the one call that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("(sensitive)")
    }
}

/// Where a secret's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Environment,
    DotEnv,
    Generated,
}

impl Origin {
    pub fn describe(self) -> &'static str {
        match self {
            Origin::Environment => "environment",
            Origin::DotEnv => ".env",
            Origin::Generated => "generated (kept in .env)",
        }
    }
}

/// The resolved secrets of one spec.
#[derive(Debug, Default)]
pub struct Secrets {
    values: BTreeMap<String, (Secret, Origin)>,
    /// The stack's key for [`keyed_hash`], once a sensitive value needs masking.
    key: Option<[u8; 32]>,
    /// Where a key made in this run must be saved before anything is recorded with it.
    unsaved_key: Option<PathBuf>,
}

impl Secrets {
    /// Sets the stack's masking key (see [`stack_key`]).
    pub fn with_key(mut self, key: StackKey) -> Self {
        self.key = Some(key.key);
        self.unsaved_key = key.unsaved;
        self
    }

    /// The masking key in use, if anything is sensitive.
    pub fn key(&self) -> Option<&[u8; 32]> {
        self.key.as_ref()
    }

    /// Uses `key`, kept by a state backend that shares it between machines, instead of this
    /// machine's: nothing is to be saved locally.
    pub fn use_shared_key(&mut self, key: [u8; 32]) {
        self.key = Some(key);
        self.unsaved_key = None;
    }

    /// Writes a key made in this run (mode 0600), before anything hashed with it is stored.
    pub fn save_key(&self) -> Result<(), Error> {
        let (Some(path), Some(key)) = (&self.unsaved_key, self.key) else {
            return Ok(());
        };
        if path.exists() {
            return Ok(());
        }
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        crate::atomic_file::write(path, &key)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    /// The stored stand-in for a sensitive value.
    pub fn mask(&self, value: &serde_json::Value) -> String {
        let key = self
            .key
            .expect("a stack with sensitive values has loaded its key");
        keyed_hash(&key, value)
    }

    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.values.get(name).map(|(s, _)| s)
    }

    pub fn origins(&self) -> impl Iterator<Item = (&str, Origin)> {
        self.values.iter().map(|(n, (_, o))| (n.as_str(), *o))
    }
}

/// The `.env` file of a spec: beside it.
pub fn dotenv_path(spec_path: &Path) -> PathBuf {
    match spec_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(".env"),
        _ => PathBuf::from(".env"),
    }
}

/// Resolves every declared secret, generating (and saving) those that may be generated. Every
/// value found is registered with [`crate::redact`].
///
/// # Errors
/// A malformed or unwritable `.env`, or required secrets found nowhere: nothing has changed.
pub fn resolve(spec: &Spec) -> Result<Secrets, Error> {
    if spec.secrets.is_empty() {
        return Ok(Secrets::default());
    }
    let dotenv = dotenv_path(&spec.source.path);
    warn_if_readable(&dotenv);
    let from_file = read_dotenv(&dotenv)?;
    let mut secrets = Secrets::default();
    let mut missing = Vec::new();
    let mut short = Vec::new();
    let mut generated = Vec::new();
    for decl in &spec.secrets {
        let found = find(decl, &from_file, &dotenv);
        match (found, &decl.generate) {
            (Some((value, origin)), _) if too_short(&value) => {
                short.push(short_secret(decl, origin, &dotenv));
            }
            (Some((value, origin)), _) => {
                secrets
                    .values
                    .insert(decl.name.clone(), (Secret(value), origin));
            }
            (None, Some(generate)) => {
                let value = generate_value(generate.length, generate.alphabet);
                generated.push((decl.name.clone(), value.clone()));
                secrets
                    .values
                    .insert(decl.name.clone(), (Secret(value), Origin::Generated));
            }
            (None, None) => missing.push(decl),
        }
    }
    if !missing.is_empty() || !short.is_empty() {
        let mut items: Vec<Diagnostic> = missing
            .iter()
            .map(|decl| missing_secret(decl, &dotenv))
            .chain(short)
            .collect();
        items.sort_by_key(|d| (d.loc.line, d.loc.column));
        return Err(Error::Spec(Diagnostics {
            source: spec.source.clone(),
            items,
        }));
    }
    if !generated.is_empty() {
        append_to_dotenv(&dotenv, &generated)?;
    }
    register(secrets.values.values().map(|(s, _)| s.expose()));
    Ok(secrets)
}

/// Where a declared secret's value is found: the environment, else `.env`.
fn find(
    decl: &SecretDecl,
    from_file: &BTreeMap<String, String>,
    dotenv: &Path,
) -> Option<(String, Origin)> {
    match std::env::var(&decl.name) {
        Ok(value) => Some((value, Origin::Environment)),
        Err(_) => from_file.get(&decl.name).map(|v| {
            let origin = if generated_earlier(dotenv, &decl.name) {
                Origin::Generated
            } else {
                Origin::DotEnv
            };
            (v.clone(), origin)
        }),
    }
}

/// Where a declared secret would take its value from, as `fabrik secrets` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Found(Origin),
    WillBeGenerated,
    Missing,
}

impl Status {
    pub fn describe(self) -> &'static str {
        match self {
            Status::Found(origin) => origin.describe(),
            Status::WillBeGenerated => "will be generated",
            Status::Missing => "missing",
        }
    }
}

/// Each declared secret (in declaration order) and where its value would come from, without
/// generating or writing anything: what a listing may do, unlike [`resolve`].
///
/// # Errors
/// A malformed `.env`, or values too short to be masked (as [`resolve`] refuses them).
pub fn survey(spec: &Spec) -> Result<Vec<(&str, Status)>, Error> {
    let dotenv = dotenv_path(&spec.source.path);
    warn_if_readable(&dotenv);
    let from_file = read_dotenv(&dotenv)?;
    let mut listed = Vec::new();
    let mut short = Vec::new();
    for decl in &spec.secrets {
        let status = match (find(decl, &from_file, &dotenv), &decl.generate) {
            (Some((value, origin)), _) if too_short(&value) => {
                short.push(short_secret(decl, origin, &dotenv));
                continue;
            }
            (Some((value, origin)), _) => {
                register([value.as_str()]);
                Status::Found(origin)
            }
            (None, Some(_)) => Status::WillBeGenerated,
            (None, None) => Status::Missing,
        };
        listed.push((decl.name.as_str(), status));
    }
    if !short.is_empty() {
        short.sort_by_key(|d| (d.loc.line, d.loc.column));
        return Err(Error::Spec(Diagnostics {
            source: spec.source.clone(),
            items: short,
        }));
    }
    Ok(listed)
}

/// One secret by name, from the environment or else the given `.env` file (for configurations
/// recorded in the state, when the spec that declared it may be gone). Registered for redaction.
///
/// # Errors
/// A malformed `.env`, or a value too short to be masked ([`MIN_LENGTH`]).
pub fn lookup(name: &str, dotenv: &Path) -> Result<Option<Secret>, Error> {
    let (value, origin) = match std::env::var(name) {
        Ok(v) => (Some(v), Origin::Environment),
        Err(_) => (read_dotenv(dotenv)?.remove(name), Origin::DotEnv),
    };
    if let Some(v) = &value {
        if too_short(v) {
            return Err(Error::Usage(format!(
                "secret `{name}`, set in {}, is shorter than {MIN_LENGTH} characters; {SHORT_HELP}",
                found_in(origin, dotenv, name)
            )));
        }
        register([v.as_str()]);
    }
    Ok(value.map(Secret))
}

/// What to do about a secret shorter than [`MIN_LENGTH`].
const SHORT_HELP: &str = "where fabrik's output hides a value this short would tell it (`test` in `example.test.`); use a longer value, or pass a value that is not secret as `${env.NAME}`";

/// Where a value was found, for messages: never the value itself, nor its length.
fn found_in(origin: Origin, dotenv: &Path, name: &str) -> String {
    match origin {
        Origin::Environment => "the environment".to_string(),
        Origin::DotEnv | Origin::Generated => match dotenv_line(dotenv, name) {
            Some(line) => format!("{}:{line}", dotenv.display()),
            None => dotenv.display().to_string(),
        },
    }
}

/// The line of `.env` that sets `name` (the last one, as the last one wins).
fn dotenv_line(dotenv: &Path, name: &str) -> Option<usize> {
    let text = std::fs::read_to_string(dotenv).ok()?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let line = line.trim_start();
            let line = line.strip_prefix("export ").unwrap_or(line);
            line.split_once('=').is_some_and(|(k, _)| k.trim() == name)
        })
        .map(|(i, _)| i + 1)
        .last()
}

fn short_secret(decl: &SecretDecl, origin: Origin, dotenv: &Path) -> Diagnostic {
    Diagnostic::new(
        decl.loc,
        format!(
            "secret `{}`, set in {}, is shorter than {MIN_LENGTH} characters",
            decl.name,
            found_in(origin, dotenv, &decl.name)
        ),
    )
    .help(SHORT_HELP)
}

/// The comment fabrik writes above the values it generated.
const GENERATED_MARK: &str = "# generated by fabrik";

/// Whether `.env` holds `name` below a line fabrik wrote when generating it.
fn generated_earlier(dotenv: &Path, name: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(dotenv) else {
        return false;
    };
    let mut below_mark = false;
    for line in text.lines() {
        if line.starts_with(GENERATED_MARK) {
            below_mark = true;
        } else if below_mark && line.split_once('=').is_some_and(|(k, _)| k.trim() == name) {
            return true;
        }
    }
    false
}

fn missing_secret(decl: &SecretDecl, dotenv: &Path) -> Diagnostic {
    Diagnostic::new(decl.loc, format!("secret `{}` has no value", decl.name)).help(format!(
        "looked in the environment variable `{}` and in {}; set one of them, or declare it with `generate: {{ length: 32 }}`",
        decl.name,
        dotenv.display()
    ))
}

/// The `.env` file's variables. Values are never part of an error message.
fn read_dotenv(path: &Path) -> Result<BTreeMap<String, String>, Error> {
    let text = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
    };
    let mut values = BTreeMap::new();
    for item in dotenvy::from_read_iter(text.as_slice()) {
        match item {
            Ok((k, v)) => {
                values.insert(k, v);
            }
            Err(dotenvy::Error::LineParse(line, index)) => {
                let text = String::from_utf8_lossy(&text);
                // The parser reports the offending line's text; find its number, and never
                // show the text itself: it may hold a secret.
                let is_it = |l: &str| l.trim() == line.trim() && !l.trim_start().starts_with('#');
                let number = text
                    .lines()
                    .position(is_it)
                    .or_else(|| {
                        text.lines().position(|l| {
                            !l.trim_start().starts_with('#') && l.contains(line.trim())
                        })
                    })
                    .map_or(0, |n| n + 1);
                return Err(Error::Usage(format!(
                    "{}:{number}:{}: malformed line (expected NAME=value; quote values with spaces or `#`)",
                    path.display(),
                    index + 1
                )));
            }
            Err(e) => {
                return Err(Error::Usage(format!(
                    "{} cannot be read as a .env file: {}",
                    path.display(),
                    match e {
                        dotenvy::Error::Io(io) => io.to_string(),
                        _ => "invalid content".to_string(),
                    }
                )));
            }
        }
    }
    Ok(values)
}

fn warn_if_readable(path: &Path) {
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            eprintln!(
                "warning: {} is readable by {} (mode {mode:04o}); run `chmod 600 {}`",
                path.display(),
                if mode & 0o007 != 0 {
                    "others"
                } else {
                    "its group"
                },
                path.display()
            );
        }
    }
}

/// Appends `NAME=value` lines to `.env`, keeping its lines and comments: a new file is written
/// beside it, synced, and renamed over it, with mode 0600.
fn append_to_dotenv(path: &Path, values: &[(String, String)]) -> Result<(), Error> {
    let mut bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
    };
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(
        format!("{GENERATED_MARK}: keep this file private (mode 0600)\n").as_bytes(),
    );
    for (name, value) in values {
        bytes.extend_from_slice(format!("{name}={value}\n").as_bytes());
    }
    let temp = crate::atomic_file::dir_of(path).join(".env.fabrik-tmp");
    crate::atomic_file::write_through(path, &temp, &bytes).map_err(|e| {
        Error::io(
            format!(
                "cannot save generated secrets to {}; nothing was changed",
                path.display()
            ),
            e,
        )
    })
}

/// A value of `length` characters drawn uniformly from `alphabet` with the OS's CSPRNG.
pub fn generate_value(length: usize, alphabet: Alphabet) -> String {
    let chars: &[u8] = match alphabet {
        Alphabet::Alnum => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        Alphabet::Hex => b"0123456789abcdef",
        Alphabet::Base64Url => b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
    };
    // Rejection sampling: bytes at or above the largest multiple of the alphabet's size are
    // drawn again, so every character is equally likely.
    let limit = 256 - (256 % chars.len());
    let mut out = String::with_capacity(length);
    let mut buf = [0u8; 64];
    while out.len() < length {
        getrandom::fill(&mut buf).expect("the operating system's random source is available");
        for &b in &buf {
            if (b as usize) < limit && out.len() < length {
                out.push(chars[b as usize % chars.len()] as char);
            }
        }
    }
    out
}

/// The keyed hash that stands for a sensitive value in anything fabrik stores.
pub fn keyed_hash(key: &[u8; 32], value: &serde_json::Value) -> String {
    let mut hasher = blake3::Hasher::new_keyed(key);
    serde_json::to_writer(&mut hasher, value).expect("values serialize");
    format!("(sensitive) blake3:{}", hasher.finalize().to_hex())
}

/// Whether a stored value is the hash of a sensitive one.
pub fn is_masked(value: &serde_json::Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.starts_with("(sensitive) blake3:"))
}

/// The per-stack key of [`keyed_hash`], kept beside the state (mode 0600) and never in it, so
/// the state alone does not allow guessing short secrets from their hashes. A stack without
/// one gets a new key, which is written only by [`Secrets::save_key`], when the stack first
/// records something: a run refused before that leaves no file behind.
pub struct StackKey {
    pub key: [u8; 32],
    /// Where a new key still has to be written.
    pub unsaved: Option<PathBuf>,
}

pub fn stack_key(state_dir: &Path, stack: &str) -> Result<StackKey, Error> {
    let path = state_dir.join(format!("{stack}.key"));
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() == 32 => {
            let mut key = [0u8; 32];
            key.copy_from_slice(&bytes);
            Ok(StackKey { key, unsaved: None })
        }
        Ok(_) => Err(Error::State(format!(
            "{} is damaged (it must hold 32 bytes); remove it, and sensitive values show as changed once",
            path.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key).expect("the operating system's random source is available");
            Ok(StackKey {
                key,
                unsaved: Some(path),
            })
        }
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let s = Secret::new("hunter2-very-secret".into());
        assert_eq!(format!("{s} {s:?}"), "(sensitive) (sensitive)");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"(sensitive)\"");
        assert_eq!(s.expose(), "hunter2-very-secret");
    }

    #[test]
    fn generated_values_use_their_alphabet_and_length() {
        for (alphabet, allowed) in [
            (
                Alphabet::Alnum,
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            ),
            (Alphabet::Hex, "0123456789abcdef"),
            (
                Alphabet::Base64Url,
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
            ),
        ] {
            let v = generate_value(200, alphabet);
            assert_eq!(v.len(), 200);
            assert!(v.chars().all(|c| allowed.contains(c)), "{v}");
        }
        assert_ne!(
            generate_value(32, Alphabet::Alnum),
            generate_value(32, Alphabet::Alnum)
        );
    }

    #[test]
    fn keyed_hashes_depend_on_the_key() {
        let v = serde_json::Value::from("same");
        assert_ne!(keyed_hash(&[1; 32], &v), keyed_hash(&[2; 32], &v));
        assert!(is_masked(&serde_json::Value::from(keyed_hash(
            &[1; 32], &v
        ))));
    }
}

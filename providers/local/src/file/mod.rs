//! `local.file`: a file with the given content (and optionally mode), written atomically.
//!
//! Its id is its absolute path, or `dirs=N:<path>` when writing it made N directories (counted
//! from the file's own upward) that did not exist: deleting the file removes those again while
//! they are empty, so a destroy leaves the tree as it found it. Directories that were there
//! before are never removed. The fields and their normal form are in `schema.rs`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use fabrik_provider::{Applied, Attributes, Error, ErrorKind, Found, Observed, Result, Value};

mod schema;

pub use schema::{FILE_TYPE, normalise, place, resource_type, validate};
use schema::{format_mode, parse_mode, resolve};

pub struct Files {
    base_dir: PathBuf,
    /// Where copies of overwritten files are kept until the run is over.
    copies: PathBuf,
    /// One entry per directory a file's create made, named by the directory's hash: a
    /// directory made for one file and shared by others goes once the last of them is
    /// deleted, whichever made it.
    made_dirs: PathBuf,
}

impl Files {
    pub fn new(base_dir: PathBuf, state_dir: &Path) -> Self {
        Files {
            base_dir,
            copies: state_dir.join("copies"),
            made_dirs: state_dir.join("made-dirs"),
        }
    }

    fn made_entry(&self, dir: &Path) -> PathBuf {
        self.made_dirs.join(
            blake3::hash(dir.as_os_str().as_encoded_bytes())
                .to_hex()
                .as_str(),
        )
    }

    /// Notes the directories a write made (the `made` nearest the file).
    fn note_made(&self, path: &Path, made: usize) {
        if made == 0 || fs::create_dir_all(&self.made_dirs).is_err() {
            return;
        }
        for dir in path.ancestors().skip(1).take(made) {
            let _ = fs::write(self.made_entry(dir), dir.as_os_str().as_encoded_bytes());
        }
    }

    fn resolve(&self, path: &str) -> PathBuf {
        resolve(&self.base_dir, path)
    }

    /// Writes a new file. What is already at the path was not made by this resource (the
    /// plan looked, and a killed create is settled before planning): unless it already holds
    /// exactly this content, it is refused rather than overwritten.
    pub fn create(&self, inputs: &Attributes) -> Result<Applied> {
        let path = self.resolve(string(inputs, "path")?);
        let content = string(inputs, "content")?;
        match fs::symlink_metadata(&path) {
            Err(e) if absent(&e) => {}
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
            Ok(meta)
                if meta.is_file() && fs::read(&path).is_ok_and(|b| b == content.as_bytes()) => {}
            Ok(_) => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "{} already exists and this resource did not write it; set `adopt: true` to take it over (its content is kept and put back on a rollback)",
                        path.display()
                    ),
                ));
            }
        }
        self.write(inputs, 0)
    }

    /// Writes the file whatever is there (an adoption, a handover).
    pub fn adopt(&self, inputs: &Attributes) -> Result<Applied> {
        self.write(inputs, 0)
    }

    /// Rewrites the file of `id` (the path is force-new, so it is the same one), keeping its
    /// record of the directories its create made.
    pub fn update(&self, id: &str, inputs: &Attributes) -> Result<Applied> {
        self.write(inputs, FileId::parse(id).made_dirs)
    }

    /// Writes the file; `made_dirs` directories above it were made by an earlier write.
    fn write(&self, inputs: &Attributes, made_dirs: usize) -> Result<Applied> {
        let path = self.resolve(string(inputs, "path")?);
        let content = string(inputs, "content")?;
        let mode = match inputs.get("mode") {
            Some(Value::String(m)) => Some(parse_mode(m)?),
            _ => None,
        };
        let made = write_atomically(&path, content.as_bytes(), mode)?;
        self.note_made(&path, made);
        let id = FileId {
            made_dirs: made_dirs.max(made),
            path: path.clone(),
        };
        Ok(Applied {
            id: id.to_string(),
            outputs: outputs(&path, content.as_bytes()),
            found: false,
        })
    }

    pub fn read(&self, id: &str, inputs: &Attributes) -> Result<Option<Observed>> {
        let path = FileId::parse(id).path;
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if absent(&e) => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        let mut observed = Attributes::new();
        if let Some(p) = inputs.get("path") {
            observed.insert("path".into(), p.clone());
        }
        // Content that is not UTF-8 cannot equal any spec's content; show it as what it is.
        let content = String::from_utf8(bytes.clone())
            .unwrap_or_else(|_| format!("(binary content, {} bytes)", bytes.len()));
        observed.insert("content".into(), Value::String(content));
        if inputs.contains_key("mode") {
            let meta = fs::metadata(&path)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            observed.insert(
                "mode".into(),
                Value::String(format_mode(meta.permissions().mode())),
            );
        }
        Ok(Some(Observed {
            inputs: observed,
            outputs: outputs(&path, &bytes),
        }))
    }

    /// A file's identity is its path: whatever is there is what a create made.
    pub fn find(&self, inputs: &Attributes) -> Result<Option<Found>> {
        let id = self.resolve(string(inputs, "path")?).display().to_string();
        Ok(self
            .read(&id, inputs)?
            .map(|observed| Found { id, observed }))
    }

    /// Something is at a path a new file resource would write: the plan stops there.
    pub fn obstacle(&self, name: &str, inputs: &Attributes) -> Result<Option<String>> {
        let path = self.resolve(string(inputs, "path")?);
        match fs::symlink_metadata(&path) {
            Err(e) if absent(&e) => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
            Ok(meta) => Ok(Some(format!(
                "{} already exists ({}) and this stack did not create it; set `adopt: true` to take it over (its content is kept and put back if the apply is rolled back), or import it with `fabrik import {name} {}`",
                path.display(),
                if meta.is_file() {
                    "a file"
                } else if meta.is_dir() {
                    "a directory"
                } else {
                    "not a regular file"
                },
                path.display()
            ))),
        }
    }

    /// `fabrik import NAME PATH`: a regular file at PATH becomes this resource's, as it is.
    pub fn import(&self, id: &str, inputs: &Attributes) -> Result<Found> {
        let path = self.resolve(id);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("{} is not a regular file", path.display()),
                ));
            }
            Err(e) if absent(&e) => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("there is no file {}", path.display()),
                ));
            }
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        }
        let id = path.display().to_string();
        let mut wanted = inputs.clone();
        wanted.insert("path".into(), Value::String(id.clone()));
        let observed = self
            .read(&id, inputs)?
            .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("there is no file {id}")))?;
        Ok(Found { id, observed })
    }

    /// Copies the file at the inputs' path (content and mode) into the state directory before
    /// it is overwritten; the token says where the copy is, or that there was no file.
    pub fn keep_copy(&self, inputs: &Attributes) -> Result<Option<String>> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = self.resolve(string(inputs, "path")?);
        let copy = match fs::symlink_metadata(&path) {
            Err(e) if absent(&e) => None,
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
            Ok(meta) if !meta.is_file() => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("{} is not a regular file", path.display()),
                ));
            }
            Ok(_) => {
                fs::create_dir_all(&self.copies)
                    .map_err(|e| Error::io(format!("creating {}", self.copies.display()), e))?;
                let _ = fs::set_permissions(&self.copies, fs::Permissions::from_mode(0o700));
                let name = format!(
                    "{}-{}-{}",
                    &blake3::hash(path.as_os_str().as_encoded_bytes()).to_hex()[..16],
                    std::process::id(),
                    NEXT.fetch_add(1, Ordering::Relaxed)
                );
                let copy = self.copies.join(name);
                // `fs::copy` keeps the permission bits; the file is synced so a crash right
                // after the overwrite still finds the copy.
                fs::copy(&path, &copy)
                    .and_then(|_| fs::File::open(&copy)?.sync_all())
                    .map_err(|e| Error::io(format!("copying {}", path.display()), e))?;
                Some(copy.display().to_string())
            }
        };
        let token = serde_json::json!({ "path": path.display().to_string(), "copy": copy });
        Ok(Some(token.to_string()))
    }

    /// Puts back what [`Files::keep_copy`] kept: the old content and mode, or no file.
    pub fn restore(&self, token: &str) -> Result<()> {
        let (path, copy) = parse_token(token)?;
        match copy {
            None => self.delete(&path.display().to_string()),
            Some(copy) => {
                let temp = temp_path(&path).ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidInput,
                        format!("{} is not a file path", path.display()),
                    )
                })?;
                fs::copy(&copy, &temp)
                    .and_then(|_| fs::File::open(&temp)?.sync_all())
                    .and_then(|()| fs::rename(&temp, &path))
                    .map_err(|e| Error::io(format!("restoring {}", path.display()), e))?;
                let _ = fs::remove_file(copy);
                Ok(())
            }
        }
    }

    pub fn drop_copy(&self, token: &str) {
        if let Ok((_, Some(copy))) = parse_token(token) {
            let _ = fs::remove_file(copy);
        }
        // Only once no other copy is left in it.
        let _ = fs::remove_dir(&self.copies);
    }

    /// Removes the temporary file an interrupted write left beside the inputs' path.
    pub fn clean_up(&self, inputs: &Attributes) {
        if let Ok(path) = string(inputs, "path")
            && let Some(temp) = temp_path(&self.resolve(path))
        {
            let _ = fs::remove_file(temp);
        }
    }

    /// Removes the file, then the directories its create made, from its own upward, until
    /// one holds something else.
    pub fn delete(&self, id: &str) -> Result<()> {
        let FileId { path, made_dirs } = FileId::parse(id);
        if let Some(temp) = temp_path(&path) {
            let _ = fs::remove_file(temp);
        }
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if absent(&e) => {}
            Err(e) => return Err(Error::io(format!("removing {}", path.display()), e)),
        }
        for (above, dir) in path.ancestors().skip(1).enumerate() {
            let entry = self.made_entry(dir);
            if above >= made_dirs && !entry.exists() {
                break;
            }
            match fs::remove_dir(dir) {
                Ok(()) => {
                    let _ = fs::remove_file(entry);
                }
                Err(e) if absent(&e) => {
                    let _ = fs::remove_file(entry);
                }
                // Others' files (or fabrik's other files) live there now: it stays, and so
                // does everything above it.
                Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => break,
                Err(e) => return Err(Error::io(format!("removing {}", dir.display()), e)),
            }
        }
        // Only once no other entry is left in it.
        let _ = fs::remove_dir(&self.made_dirs);
        Ok(())
    }
}

/// A file's id: its path, and how many directories above it its create made.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileId {
    path: PathBuf,
    made_dirs: usize,
}

impl FileId {
    /// Ids of files are absolute paths, so one starting with `dirs=` is never a bare path;
    /// states written before directories were recorded hold bare paths.
    fn parse(id: &str) -> FileId {
        let counted = id.strip_prefix("dirs=").and_then(|rest| {
            let (count, path) = rest.split_once(':')?;
            Some((count.parse().ok()?, path))
        });
        match counted {
            Some((made_dirs, path)) => FileId {
                path: PathBuf::from(path),
                made_dirs,
            },
            None => FileId {
                path: PathBuf::from(id),
                made_dirs: 0,
            },
        }
    }
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.made_dirs {
            0 => write!(f, "{}", self.path.display()),
            n => write!(f, "dirs={n}:{}", self.path.display()),
        }
    }
}

/// Makes the missing directories of `dir` and its parents. Returns how many it made, counted
/// from `dir` upward and stopping at the first it did not make: one another writer made at the
/// same moment (a file beside this one) is that writer's to remove.
fn make_dirs(dir: &Path) -> std::io::Result<usize> {
    let mut missing = Vec::new();
    for at in dir.ancestors().filter(|a| !a.as_os_str().is_empty()) {
        match fs::metadata(at) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(at),
            // A file where the directory itself should be: the error of making it says so.
            Ok(meta) if !meta.is_dir() && missing.is_empty() => {
                fs::create_dir(at)?;
                return Ok(1);
            }
            // There (or unreadable, or a file further up: making what is below it says why).
            _ => break,
        }
    }
    let mut made = vec![false; missing.len()];
    for (i, at) in missing.iter().enumerate().rev() {
        match fs::create_dir(at) {
            Ok(()) => made[i] = true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && at.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(made.iter().take_while(|m| **m).count())
}

/// Whether an I/O error means the file is not there: missing, or a path through something that
/// is not a directory (then it cannot exist either).
fn absent(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

fn parse_token(token: &str) -> Result<(PathBuf, Option<PathBuf>)> {
    let bad = || Error::new(ErrorKind::InvalidInput, format!("not a file copy: {token}"));
    let value: Value = serde_json::from_str(token).map_err(|_| bad())?;
    let path = value.get("path").and_then(Value::as_str).ok_or_else(bad)?;
    let copy = value.get("copy").and_then(Value::as_str).map(PathBuf::from);
    Ok((PathBuf::from(path), copy))
}

fn string<'a>(inputs: &'a Attributes, name: &str) -> Result<&'a str> {
    match inputs.get(name) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`{name}` must be a string"),
        )),
    }
}

fn outputs(path: &Path, content: &[u8]) -> Attributes {
    let mut out = Attributes::new();
    out.insert("abs_path".into(), Value::String(path.display().to_string()));
    out.insert(
        "content_hash".into(),
        Value::String(format!("blake3:{}", blake3::hash(content).to_hex())),
    );
    out.insert("size".into(), Value::from(content.len() as u64));
    out
}

/// Where a file is written before it is renamed into place. Always the same name for a path,
/// so that a write killed halfway leaves nothing the next write or delete does not clear (one
/// stack lock means one writer per path).
fn temp_path(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_string_lossy();
    Some(path.with_file_name(format!(".{name}.fabrik-tmp")))
}

/// Writes to a temporary file beside the target, syncs it and renames it into place, so a reader
/// (or a crash) sees the old content or the new one, never half of it. Returns how many
/// directories above the file it made ([`make_dirs`]).
fn write_atomically(path: &Path, content: &[u8], mode: Option<u32>) -> Result<usize> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let made = make_dirs(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let temp = temp_path(path).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("{} is not a file path", path.display()),
        )
    })?;
    let result = (|| {
        // Truncates what a killed run may have left under the same name. The mode is set
        // before any content is written, so a private file is never readable on the way.
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode.unwrap_or(0o666))
            .open(&temp)?;
        if let Some(bits) = mode {
            file.set_permissions(fs::Permissions::from_mode(bits))?;
        }
        file.write_all(content)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&temp);
        // Nothing was made, so neither were its directories.
        for made in dir.ancestors().take(made) {
            let _ = fs::remove_dir(made);
        }
        return Err(Error::io(format!("writing {}", path.display()), e));
    }
    Ok(made)
}
#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(pairs: &[(&str, &str)]) -> Attributes {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect()
    }

    #[test]
    fn write_read_delete_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::new(dir.path().to_path_buf(), &dir.path().join(".fabrik"));
        let want = inputs(&[("path", "a/b.txt"), ("content", "hi\n"), ("mode", "0600")]);
        let applied = files.create(&want).unwrap();
        let path = dir.path().join("a/b.txt").display().to_string();
        assert_eq!(applied.id, format!("dirs=1:{path}"));
        assert_eq!(applied.outputs["size"], Value::from(3));
        let seen = files.read(&applied.id, &want).unwrap().unwrap();
        assert_eq!(seen.inputs, want);
        files.delete(&applied.id).unwrap();
        files.delete(&applied.id).unwrap();
        assert_eq!(files.read(&applied.id, &want).unwrap(), None);
        assert!(
            !dir.path().join("a").exists(),
            "the directory it made is gone"
        );
        assert!(dir.path().exists());
    }

    #[test]
    fn delete_removes_only_the_empty_directories_its_create_made() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("there")).unwrap();
        let files = Files::new(dir.path().to_path_buf(), &dir.path().join(".fabrik"));
        let deep = inputs(&[("path", "there/new/deeper/x.txt"), ("content", "x")]);
        let applied = files.create(&deep).unwrap();
        assert!(applied.id.starts_with("dirs=2:/"), "{}", applied.id);
        // An update keeps the record, though it makes nothing.
        let changed = inputs(&[("path", "there/new/deeper/x.txt"), ("content", "y")]);
        let updated = files.update(&applied.id, &changed).unwrap();
        assert_eq!(updated.id, applied.id);
        // Someone else's file in one of them keeps it, and what is above it.
        fs::write(dir.path().join("there/new/theirs.txt"), "theirs").unwrap();
        files.delete(&updated.id).unwrap();
        assert!(!dir.path().join("there/new/deeper").exists());
        assert!(dir.path().join("there/new/theirs.txt").exists());
        // Once it is empty, a second delete (a retry) removes it, but never `there`.
        fs::remove_file(dir.path().join("there/new/theirs.txt")).unwrap();
        files.delete(&updated.id).unwrap();
        assert!(!dir.path().join("there/new").exists());
        assert!(dir.path().join("there").is_dir());
    }

    #[test]
    fn an_id_without_a_count_is_a_bare_path() {
        assert_eq!(
            FileId::parse("/srv/a.txt"),
            FileId {
                path: PathBuf::from("/srv/a.txt"),
                made_dirs: 0
            }
        );
        let counted = FileId::parse("dirs=3:/srv/x/y/z/a.txt");
        assert_eq!(counted.made_dirs, 3);
        assert_eq!(counted.path, PathBuf::from("/srv/x/y/z/a.txt"));
        assert_eq!(counted.to_string(), "dirs=3:/srv/x/y/z/a.txt");
    }

    #[test]
    fn a_path_through_a_regular_file_does_not_exist() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("blocker"), "a file").unwrap();
        let files = Files::new(dir.path().to_path_buf(), &dir.path().join(".fabrik"));
        let want = inputs(&[("path", "blocker/x.txt"), ("content", "x")]);
        assert_eq!(files.find(&want).unwrap(), None);
        let id = dir.path().join("blocker/x.txt").display().to_string();
        files.delete(&id).unwrap();
    }
}

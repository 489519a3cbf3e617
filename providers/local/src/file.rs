//! `local.file`: a file with the given content (and optionally mode), written atomically.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use fabrik_provider::{
    Applied, Attributes, Error, ErrorKind, Field, FieldKind, Found, Observed, OutputField,
    ReplaceStrategy, ResourceType, Result, Value,
};

pub const FILE_TYPE: &str = "local.file";

pub fn resource_type() -> ResourceType {
    ResourceType {
        name: FILE_TYPE,
        description: "A file on this machine, written atomically.",
        fields: vec![
            Field::required(
                "path",
                FieldKind::String,
                "Where the file goes; relative paths are relative to the spec's directory.",
            )
            .force_new(),
            Field::required("content", FieldKind::String, "The file's content."),
            Field::optional(
                "mode",
                FieldKind::String,
                "Permission bits in octal, such as \"0644\" (quoted: YAML reads 0644 as a number).",
            ),
        ],
        outputs: vec![
            OutputField::new("abs_path", "The absolute path of the file.").derived_from(&["path"]),
            OutputField::new(
                "content_hash",
                "`blake3:` and the BLAKE3 hash of the content, in hex.",
            )
            .derived_from(&["content"]),
            OutputField::new("size", "The content's length in bytes.").derived_from(&["content"]),
        ],
        // A new path can be written before the old file is removed.
        replace: ReplaceStrategy::CreateBeforeDestroy,
    }
}

pub fn validate(inputs: &Attributes) -> Result<()> {
    if let Some(Value::String(mode)) = inputs.get("mode") {
        parse_mode(mode)?;
    }
    if let Some(Value::String(path)) = inputs.get("path")
        && path.is_empty()
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "`path` must not be empty",
        ));
    }
    Ok(())
}

fn parse_mode(mode: &str) -> Result<u32> {
    let digits = mode.strip_prefix("0o").unwrap_or(mode);
    match u32::from_str_radix(digits, 8) {
        Ok(bits) if !digits.is_empty() && digits.len() <= 4 && bits <= 0o7777 => Ok(bits),
        _ => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`mode` must be octal permission bits such as \"0644\", not {mode:?}"),
        )),
    }
}

fn format_mode(bits: u32) -> String {
    format!("{:04o}", bits & 0o7777)
}

pub struct Files {
    base_dir: PathBuf,
}

impl Files {
    pub fn new(base_dir: PathBuf) -> Self {
        Files { base_dir }
    }

    fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    pub fn write(&self, inputs: &Attributes) -> Result<Applied> {
        let path = self.resolve(string(inputs, "path")?);
        let content = string(inputs, "content")?;
        let mode = match inputs.get("mode") {
            Some(Value::String(m)) => Some(parse_mode(m)?),
            _ => None,
        };
        write_atomically(&path, content.as_bytes(), mode)?;
        Ok(Applied {
            id: path.display().to_string(),
            outputs: outputs(&path, content.as_bytes()),
        })
    }

    pub fn read(&self, id: &str, inputs: &Attributes) -> Result<Option<Observed>> {
        let path = PathBuf::from(id);
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

    pub fn delete(&self, id: &str) -> Result<()> {
        if let Some(temp) = temp_path(Path::new(id)) {
            let _ = fs::remove_file(temp);
        }
        match fs::remove_file(id) {
            Ok(()) => Ok(()),
            Err(e) if absent(&e) => Ok(()),
            Err(e) => Err(Error::io(format!("removing {id}"), e)),
        }
    }
}

/// Whether an I/O error means the file is not there: missing, or a path through something that
/// is not a directory (then it cannot exist either).
fn absent(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
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
/// (or a crash) sees the old content or the new one, never half of it.
fn write_atomically(path: &Path, content: &[u8], mode: Option<u32>) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
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
        return Err(Error::io(format!("writing {}", path.display()), e));
    }
    Ok(())
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
        let files = Files::new(dir.path().to_path_buf());
        let want = inputs(&[("path", "a/b.txt"), ("content", "hi\n"), ("mode", "0600")]);
        let applied = files.write(&want).unwrap();
        assert_eq!(applied.id, dir.path().join("a/b.txt").display().to_string());
        assert_eq!(applied.outputs["size"], Value::from(3));
        let seen = files.read(&applied.id, &want).unwrap().unwrap();
        assert_eq!(seen.inputs, want);
        files.delete(&applied.id).unwrap();
        files.delete(&applied.id).unwrap();
        assert_eq!(files.read(&applied.id, &want).unwrap(), None);
    }

    #[test]
    fn a_path_through_a_regular_file_does_not_exist() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("blocker"), "a file").unwrap();
        let files = Files::new(dir.path().to_path_buf());
        let want = inputs(&[("path", "blocker/x.txt"), ("content", "x")]);
        assert_eq!(files.find(&want).unwrap(), None);
        let id = dir.path().join("blocker/x.txt").display().to_string();
        files.delete(&id).unwrap();
    }

    #[test]
    fn bad_modes_are_rejected() {
        for bad in ["", "9", "0o8", "77777", "rw"] {
            assert!(validate(&inputs(&[("mode", bad)])).is_err(), "{bad}");
        }
        assert_eq!(parse_mode("0o640").unwrap(), 0o640);
    }
}

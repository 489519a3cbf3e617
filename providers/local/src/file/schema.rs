//! The fields of `local.file` and their normal form: what a spec may write, what counts as one
//! file (one path, however it is spelled) and where a file resource's place is. Kept apart from
//! the file operations in `mod.rs` because planning needs them and never touches the disk.

use std::path::{Component, Path, PathBuf};

use fabrik_provider::{
    Attributes, Context, Error, ErrorKind, Field, FieldKind, OutputField, ReplaceStrategy,
    ResourceType, Result, Value,
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

pub(super) fn parse_mode(mode: &str) -> Result<u32> {
    let digits = mode.strip_prefix("0o").unwrap_or(mode);
    match u32::from_str_radix(digits, 8) {
        Ok(bits) if !digits.is_empty() && digits.len() <= 4 && bits <= 0o7777 => Ok(bits),
        _ => Err(Error::new(
            ErrorKind::InvalidInput,
            format!("`mode` must be octal permission bits such as \"0644\", not {mode:?}"),
        )),
    }
}

pub(super) fn format_mode(bits: u32) -> String {
    format!("{:04o}", bits & 0o7777)
}

/// Where a file resource's path points: absolute, with `.` and `..` folded away, so that
/// `x.txt`, `./x.txt` and `d/../x.txt` are one file (and one place).
pub fn resolve(base_dir: &Path, path: &str) -> PathBuf {
    let joined = base_dir.join(path);
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A file's inputs in normal form: the path with `.` and `..` folded away as far as it goes
/// (`./x.txt` and `d/../x.txt` are `x.txt`), so that respelling a path changes nothing.
pub fn normalise(inputs: &Attributes) -> Result<Attributes> {
    let mut out = inputs.clone();
    if let Some(Value::String(path)) = inputs.get("path") {
        out.insert("path".into(), Value::String(clean(path)));
    }
    Ok(out)
}

/// `path` without `.` components and with each `..` folded into the component before it; a
/// leading `..` of a relative path stays (it points outside the spec's directory).
fn clean(path: &str) -> String {
    let mut parts: Vec<Component<'_>> = Vec::new();
    for part in Path::new(path).components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => match parts.last() {
                Some(Component::Normal(_)) => {
                    parts.pop();
                }
                Some(Component::RootDir) => {}
                _ => parts.push(part),
            },
            other => parts.push(other),
        }
    }
    let cleaned: PathBuf = parts.iter().collect();
    let text = cleaned.display().to_string();
    // An empty path stays empty, for `validate` to refuse; one that folds away is the
    // directory itself.
    if text.is_empty() && !path.is_empty() {
        ".".into()
    } else {
        text
    }
}

/// The place of a file resource: its resolved path, unless that is one of fabrik's own files.
pub fn place(inputs: &Attributes, context: &Context) -> Result<Option<String>> {
    let Some(Value::String(path)) = inputs.get("path") else {
        return Ok(None);
    };
    let resolved = resolve(&context.base_dir, path);
    if let Some(own) = context
        .reserved
        .iter()
        .find(|own| resolved.starts_with(own))
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "`path` {} points into {}, one of fabrik's own files (the spec, the state directory, `.env`): a resource may not write it",
                resolved.display(),
                own.display()
            ),
        ));
    }
    Ok(Some(resolved.display().to_string()))
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
    fn bad_modes_are_rejected() {
        for bad in ["", "9", "0o8", "77777", "rw"] {
            assert!(validate(&inputs(&[("mode", bad)])).is_err(), "{bad}");
        }
        assert_eq!(parse_mode("0o640").unwrap(), 0o640);
    }

    #[test]
    fn respelled_paths_have_one_normal_form() {
        for (written, normal) in [
            ("x.txt", "x.txt"),
            ("./x.txt", "x.txt"),
            ("d/../x.txt", "x.txt"),
            ("d/./e//x.txt", "d/e/x.txt"),
            ("../up.txt", "../up.txt"),
            ("/abs/./d/../x", "/abs/x"),
            ("/../x", "/x"),
        ] {
            assert_eq!(clean(written), normal, "{written}");
        }
    }
}

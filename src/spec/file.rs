//! Reading a spec file: within the size fabrik reads, as UTF-8, into a YAML tree; what stops
//! every reader of the file is reported here, with where it is.

use std::path::Path;
use std::sync::Arc;

use crate::error::Error;
use crate::source::{Diagnostic, Diagnostics, Loc, SourceFile};
use crate::yaml::{self, Node};

/// A spec file's text and YAML tree, or the error that stops every reader of it: unreadable,
/// too large, not UTF-8, not YAML.
pub(super) fn read_yaml(path: &Path) -> Result<(Arc<SourceFile>, Node), Error> {
    let bytes = read_limited(path)?;
    let (text, utf8_error) = match String::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let before = String::from_utf8_lossy(&bytes[..valid]).into_owned();
            let line = before.matches('\n').count() as u32 + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            (text, Some(Loc::new(line, column, 1)))
        }
    };
    let source = Arc::new(SourceFile::new(path.to_path_buf(), text));
    let fail = |items: Vec<Diagnostic>| {
        Error::Spec(Diagnostics {
            source: source.clone(),
            items,
        })
    };
    if let Some(loc) = utf8_error {
        return Err(fail(vec![
            Diagnostic::new(loc, "the spec is not valid UTF-8").help("save the file as UTF-8"),
        ]));
    }
    if source.text.len() > yaml::MAX_SPEC_BYTES {
        return Err(fail(vec![too_large(source.text.len())]));
    }
    let root = yaml::parse(&source.text).map_err(|e| {
        fail(vec![Diagnostic::new(
            e.loc,
            format!("invalid YAML: {}", e.message),
        )])
    })?;
    Ok((source, root))
}

fn read_limited(path: &Path) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| Error::io(format!("cannot read spec {}", path.display()), e))?;
    let mut bytes = Vec::new();
    // Read one byte past the limit: enough to know the file is too large without loading it.
    file.take(yaml::MAX_SPEC_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(format!("cannot read spec {}", path.display()), e))?;
    if bytes.len() > yaml::MAX_SPEC_BYTES {
        let size = std::fs::metadata(path).map_or(bytes.len(), |m| m.len() as usize);
        let source = Arc::new(SourceFile::new(path.to_path_buf(), String::new()));
        return Err(Error::Spec(Diagnostics {
            source,
            items: vec![too_large(size)],
        }));
    }
    Ok(bytes)
}

fn too_large(size: usize) -> Diagnostic {
    Diagnostic::new(
        Loc::default(),
        format!(
            "the spec is {:.1} MiB, more than the {} MiB fabrik reads",
            size as f64 / (1024.0 * 1024.0),
            yaml::MAX_SPEC_BYTES / (1024 * 1024)
        ),
    )
    .help("split the stack into several specs")
}

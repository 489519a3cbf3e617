//! Reading a spec file (or a vars file): within the size fabrik reads, as UTF-8, into a YAML
//! tree; what stops every reader of the file is reported here, with where it is, in terms of
//! the file it is.

use std::path::Path;
use std::sync::Arc;

use crate::error::Error;
use crate::source::{Diagnostic, Diagnostics, Loc, SourceFile};
use crate::yaml::{self, Node};

/// What a file read by [`read_yaml`] is to the person who wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Document {
    Spec,
    /// `--vars-file` or `fabrik.vars.yaml` (src/spec/vars.rs).
    VarsFile,
}

impl Document {
    fn noun(self) -> &'static str {
        match self {
            Document::Spec => "spec",
            Document::VarsFile => "vars file",
        }
    }

    /// A message of the YAML parser, which speaks of a spec (src/yaml.rs), about this file.
    fn reword(self, message: String) -> String {
        match self {
            Document::Spec => message,
            Document::VarsFile => message
                .replace("the spec", "the vars file")
                .replace("a spec is one document", "a vars file is one document"),
        }
    }
}

/// A spec file's text and YAML tree, or the error that stops every reader of it: unreadable,
/// too large, not UTF-8, not YAML.
pub(super) fn read_yaml(path: &Path, doc: Document) -> Result<(Arc<SourceFile>, Node), Error> {
    let bytes = read_limited(path, doc)?;
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
            Diagnostic::new(loc, format!("the {} is not valid UTF-8", doc.noun()))
                .help("save the file as UTF-8"),
        ]));
    }
    if source.text.len() > yaml::MAX_SPEC_BYTES {
        return Err(fail(vec![too_large(source.text.len(), doc)]));
    }
    let root = yaml::parse(&source.text).map_err(|e| {
        fail(vec![Diagnostic::new(
            e.loc,
            format!("invalid YAML: {}", doc.reword(e.message)),
        )])
    })?;
    Ok((source, root))
}

fn read_limited(path: &Path, doc: Document) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let cannot = |e| Error::io(format!("cannot read {} {}", doc.noun(), path.display()), e);
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    // Read one byte past the limit: enough to know the file is too large without loading it.
    file.take(yaml::MAX_SPEC_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() > yaml::MAX_SPEC_BYTES {
        let size = std::fs::metadata(path).map_or(bytes.len(), |m| m.len() as usize);
        let source = Arc::new(SourceFile::new(path.to_path_buf(), String::new()));
        return Err(Error::Spec(Diagnostics {
            source,
            items: vec![too_large(size, doc)],
        }));
    }
    Ok(bytes)
}

fn too_large(size: usize, doc: Document) -> Diagnostic {
    let d = Diagnostic::new(
        Loc::default(),
        format!(
            "the {} is {:.1} MiB, more than the {} MiB fabrik reads",
            doc.noun(),
            size as f64 / (1024.0 * 1024.0),
            yaml::MAX_SPEC_BYTES / (1024 * 1024)
        ),
    );
    match doc {
        Document::Spec => d.help("split the stack into several specs"),
        Document::VarsFile => d,
    }
}

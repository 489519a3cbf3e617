//! Replacing a file so that a crash at any instant leaves the old file or the new one, never
//! half of either: the state's snapshots, the masking key, `.env` and the emergency state all
//! go through here. It is a leaf, and answers in `std::io` errors, so that the state backends
//! and the secrets below them share it without depending on each other; each caller adds the
//! context its messages need.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Writes `bytes` to `path` through the temporary file `.<name>.tmp` beside it. One name per
/// file: a write killed halfway is overwritten by the next (the lock means one writer at a time).
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temp = dir_of(path).join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
    ));
    write_through(path, &temp, bytes)
}

/// Temp file (mode 0600), fsync, rename over `path`, fsync of the directory. The temporary file
/// is removed again when any step fails.
pub fn write_through(path: &Path, temp: &Path, bytes: &[u8]) -> io::Result<()> {
    let write = || -> io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(temp)?;
        // A temporary file a killed run left keeps its mode through `open`: set it again.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(temp, path)?;
        fs::File::open(dir_of(path))?.sync_all()
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(temp);
    })
}

/// The directory holding `path`. A bare file name has the empty path as its parent: that is
/// the current directory.
pub fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_file_with_mode_0600_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        fs::write(&path, b"old").unwrap();
        write(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!dir.path().join(".x.json.tmp").exists());
    }

    #[test]
    fn a_bare_name_is_in_the_current_directory() {
        assert_eq!(dir_of(Path::new("x")), Path::new("."));
        assert_eq!(dir_of(Path::new("a/x")), Path::new("a"));
    }
}

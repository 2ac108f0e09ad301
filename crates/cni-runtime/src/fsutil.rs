//! Replacing a small state file so that neither a reader nor a crash ever sees half of it, and
//! a crash leaves nothing the owner's DEL cannot find: the data goes to `.<name>.tmp` next to
//! the file (one temporary name per file: one attachment has one writer at a time), is synced,
//! then renamed over the file. [`remove`] removes the file and any such leftover. Used for the
//! result cache and for plugins' state files (tuning's backups). Also [`same_file`].

use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where `path` is written before the rename.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Writes `data` to `path` (mode 0600; the directory made with 0700 if missing) atomically.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let tmp = temp_path(path);
    let write = || -> io::Result<()> {
        let open = || std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp);
        let mut f = match open() {
            // left by a writer killed before its rename
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(&tmp)?;
                open()?
            }
            f => f?,
        };
        f.write_all(data)?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Whether two paths name one file (same device and inode; symlinks followed).
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => (x.dev(), x.ino()) == (y.dev(), y.ino()),
        _ => false,
    }
}

/// Removes `path` and a leftover temporary file of it; a missing file is fine.
pub fn remove(path: &Path) -> io::Result<()> {
    let _ = std::fs::remove_file(temp_path(path));
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_cleans_up_after_a_crash() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/a.json");
        write_atomic(&p, b"one").unwrap();
        // a writer killed between writing and renaming
        std::fs::write(temp_path(&p), b"half").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert!(!temp_path(&p).exists());
        std::fs::write(temp_path(&p), b"half").unwrap();
        remove(&p).unwrap();
        assert!(!p.exists() && !temp_path(&p).exists());
        remove(&p).unwrap();
        assert_eq!(temp_path(Path::new("/x/y.json")), Path::new("/x/.y.json.tmp"));
    }
}

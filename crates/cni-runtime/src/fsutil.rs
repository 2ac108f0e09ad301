//! Replacing a file so that no reader and no crash ever sees half of it: the data goes to a
//! temporary file next to it, is synced, then renamed (or hard-linked) into place.
//!
//! Two writers share the one implementation:
//! - [`write_atomic`], for private state (the result cache, plugins' state files such as
//!   tuning's backups): mode 0600 in a 0700 directory, and one temporary name per file,
//!   `.<name>.tmp` (one attachment has one writer at a time), so a crash leaves nothing the
//!   owner's DEL cannot find; [`remove`] removes the file and any such leftover.
//! - [`write_shared`], for files other programs read and other writers may write at the same
//!   time (network configuration files): an exact mode whatever the umask, a temporary file of
//!   the writer's own, the directory synced too, and a [`Placement`] that either replaces or
//!   refuses to replace an existing file, atomically.
//!
//! Also [`same_file`], [`create_dir_all_mode`] and [`sync_dir`].

use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Where [`write_atomic`] writes `path` before the rename.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// How a written file is put in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Replace a file of that name, if any (rename(2)).
    Replace,
    /// Fail with [`io::ErrorKind::AlreadyExists`] when a file (or symlink) of that name exists.
    /// The complete temporary file is hard-linked to the name (link(2) fails with EEXIST
    /// atomically), so of writers racing for one name exactly one succeeds, and the file is
    /// whole from the moment it appears.
    CreateNew,
}

/// How one write goes.
struct Plan {
    tmp: PathBuf,
    mode: u32,
    placement: Placement,
    /// Other writers may use the directory at the same time: the temporary name is the
    /// writer's own (never removed when it exists), the mode is set exactly and the directory
    /// is synced.
    shared: bool,
}

fn write_via(plan: &Plan, path: &Path, data: &[u8]) -> io::Result<()> {
    let open = || std::fs::OpenOptions::new().write(true).create_new(true).mode(plan.mode).open(&plan.tmp);
    let mut f = match open() {
        // left by a writer killed before its rename (the one writer of a private file)
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && !plan.shared => {
            std::fs::remove_file(&plan.tmp)?;
            open()?
        }
        f => f?,
    };
    let placed = (|| {
        if plan.shared {
            // open(2)'s mode is masked by the umask
            f.set_permissions(std::fs::Permissions::from_mode(plan.mode))?;
        }
        f.write_all(data)?;
        f.sync_data()?;
        match plan.placement {
            Placement::Replace => std::fs::rename(&plan.tmp, path),
            // once linked, the file is in place: the temporary name goes on a best-effort basis
            Placement::CreateNew => std::fs::hard_link(&plan.tmp, path).map(|()| {
                let _ = std::fs::remove_file(&plan.tmp);
            }),
        }
    })();
    if placed.is_err() {
        let _ = std::fs::remove_file(&plan.tmp);
    }
    placed?;
    if plan.shared {
        if let Some(dir) = path.parent() {
            sync_dir(dir);
        }
    }
    Ok(())
}

/// Writes private state `data` to `path` (mode 0600; the directory made with 0700 if missing)
/// atomically, through [`temp_path`], replacing the file if there is one.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    write_via(&Plan { tmp: temp_path(path), mode: 0o600, placement: Placement::Replace, shared: false }, path, data)
}

/// Numbers the temporary files of [`write_shared`] within this process.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Writes `data` to `path` for other programs to read, while other writers may be writing the
/// same name: through a temporary file of this writer's own in the same directory
/// (`.<name>.<pid>-<n>.tmp`), with exactly `mode` (not masked by the umask), synced, put in
/// place as `placement` says; then the directory is synced (best effort), so the name survives
/// a crash too. A reader sees the old file or the whole new one, never part of one. On an error
/// nothing is left behind; a writer killed midway leaves its temporary file, whose name ends in
/// `.tmp` (which config loaders skip). The directory must exist ([`create_dir_all_mode`]).
pub fn write_shared(path: &Path, data: &[u8], mode: u32, placement: Placement) -> io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    loop {
        let tmp = path.with_file_name(format!(".{name}.{}-{}.tmp", std::process::id(), TEMP_SEQ.fetch_add(1, Ordering::Relaxed)));
        match write_via(&Plan { tmp, mode, placement, shared: true }, path, data) {
            // another writer's temporary file (a process of another PID namespace): take the next name
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && !path_is_taken(path, placement) => continue,
            r => return r,
        }
    }
}

/// Whether an `AlreadyExists` of a [`Placement::CreateNew`] write came from `path` itself
/// (rather than from the temporary name).
fn path_is_taken(path: &Path, placement: Placement) -> bool {
    placement == Placement::CreateNew && std::fs::symlink_metadata(path).is_ok()
}

/// Syncs a directory, so that entries just created, renamed or removed in it survive a crash.
/// Best effort: a file system that cannot sync a directory is no reason to fail a write that
/// already happened.
pub fn sync_dir(dir: &Path) {
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Creates `dir` and its missing parents; every directory created gets exactly `mode` (not
/// masked by the umask). Existing directories are left as they are.
pub fn create_dir_all_mode(dir: &Path, mode: u32) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_all_mode(parent, mode)?;
    }
    match std::fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
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
    use std::os::unix::fs::MetadataExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

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

    #[test]
    fn private_files_are_private() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("new/a");
        write_atomic(&p, b"x").unwrap();
        assert_eq!((mode(&p), mode(p.parent().unwrap())), (0o600, 0o700));
    }

    #[test]
    fn shared_files_replace_or_refuse() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.conflist");
        // 0666 would come out 0644 under the usual umask 022 if the mode were left to open(2)
        write_shared(&p, b"one", 0o666, Placement::CreateNew).unwrap();
        assert_eq!((std::fs::read(&p).unwrap(), mode(&p)), (b"one".to_vec(), 0o666));
        let e = write_shared(&p, b"two", 0o644, Placement::CreateNew).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&p).unwrap(), b"one", "refused: the file is untouched");
        write_shared(&p, b"three", 0o644, Placement::Replace).unwrap();
        assert_eq!((std::fs::read(&p).unwrap(), mode(&p)), (b"three".to_vec(), 0o644));
        // a dangling symlink is taken too
        std::os::unix::fs::symlink("nowhere", d.path().join("l")).unwrap();
        assert_eq!(write_shared(&d.path().join("l"), b"x", 0o644, Placement::CreateNew).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(entries(d.path()), vec!["a.conflist", "l"], "no temporary files left");
        // the directory must exist; nothing is left on failure
        let missing = d.path().join("missing/a");
        assert_eq!(write_shared(&missing, b"x", 0o644, Placement::Replace).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn shared_write_skips_a_foreign_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.conflist");
        // another writer's temporary files with the names this writer picks next (tests running
        // meanwhile may take some numbers; 200 covers them)
        let next = TEMP_SEQ.load(Ordering::Relaxed);
        for n in next..next + 200 {
            std::fs::write(d.path().join(format!(".a.conflist.{}-{n}.tmp", std::process::id())), b"theirs").unwrap();
        }
        write_shared(&p, b"mine", 0o644, Placement::CreateNew).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"mine");
        let theirs: Vec<String> = entries(d.path()).into_iter().filter(|n| n.ends_with(".tmp")).collect();
        assert_eq!(theirs.len(), 200, "other writers' temporary files are not touched");
        assert!(theirs.iter().all(|t| std::fs::read(d.path().join(t)).unwrap() == b"theirs"));
    }

    #[test]
    fn directories_with_an_exact_mode() {
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("a/b/c");
        create_dir_all_mode(&deep, 0o755).unwrap();
        assert_eq!((mode(&d.path().join("a")), mode(&deep)), (0o755, 0o755));
        std::fs::set_permissions(&deep, std::fs::Permissions::from_mode(0o700)).unwrap();
        create_dir_all_mode(&deep, 0o755).unwrap();
        assert_eq!(mode(&deep), 0o700, "an existing directory is left alone");
        std::fs::write(d.path().join("f"), b"").unwrap();
        assert!(create_dir_all_mode(&d.path().join("f/g"), 0o755).is_err());
    }
}

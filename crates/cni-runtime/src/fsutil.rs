//! Replacing a file so that no reader and no crash ever sees half of it: the data is written
//! to a file that has no name yet ([`Unnamed`]: `O_TMPFILE`) and synced, then given its name —
//! linked straight to it, or linked to a temporary name and renamed over the old file. A writer
//! killed at any point leaves either nothing or a complete temporary file; only on a filesystem
//! without `O_TMPFILE` is the data written under a temporary name directly, so that a kill can
//! leave it partial.
//!
//! Two writers share that implementation:
//! - [`write_atomic`], for private state (the result cache, plugins' state files such as
//!   tuning's backups): mode 0600 in a 0700 directory, and one temporary name per file,
//!   `.<name>.tmp` (one attachment has one writer at a time), so that the owner's DEL can find
//!   a leftover; [`remove`] removes the file and any such leftover.
//! - [`write_shared`], for files other programs read and other writers may write at the same
//!   time (network configuration files): an exact mode whatever the umask, a temporary name of
//!   the writer's own, the directory synced too, and a [`Placement`] that either replaces or
//!   refuses to replace an existing file, atomically.
//!
//! [`Unnamed`] is also what host-local's store links its leases with. Also [`same_file`],
//! [`create_dir_all_mode`] and [`sync_dir`].

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Where [`write_atomic`] links `path` before the rename.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // a name near NAME_MAX (255) would not take the five more bytes: its start (which keeps the
    // prefix readers look for) and a hash of the whole name stand for it
    if name.len() + 5 > 255 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        let mut cut = 200;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        return path.with_file_name(format!(".{}-{:016x}.tmp", &name[..cut], h.finish()));
    }
    path.with_file_name(format!(".{name}.tmp"))
}

fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Writes private state `data` to `path` (mode 0600; the directory made with 0700 if missing)
/// atomically, through [`temp_path`], replacing the file if there is one.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = dir_of(path);
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let f = Unnamed::write(dir, data, &temp_path(path))?;
    f.sync()?;
    f.replace(path)
}

/// How a written file is put in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Replace a file of that name, if any (rename(2)).
    Replace,
    /// Fail with [`io::ErrorKind::AlreadyExists`] when a file (or symlink) of that name exists.
    /// The complete file is linked to the name (link(2) fails with EEXIST atomically), so of
    /// writers racing for one name exactly one succeeds, and the file is whole from the moment
    /// it appears.
    CreateNew,
}

/// Numbers the temporary names of [`write_shared`] within this process.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Writes `data` to `path` for other programs to read, while other writers may be writing the
/// same name: written complete before it has a name ([`Unnamed`]), with exactly `mode` (not
/// masked by the umask), synced, then put in place as `placement` says — linked to `path`
/// itself, or linked to a temporary name of this writer's own (`.<name>.<pid>-<n>.tmp`) and
/// renamed over it; then the directory is synced (best effort), so the name survives a crash
/// too. A reader sees the old file or the whole new one, never part of one; an error leaves
/// nothing behind. The directory must exist ([`create_dir_all_mode`]).
pub fn write_shared(path: &Path, data: &[u8], mode: u32, placement: Placement) -> io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = dir_of(path);
    loop {
        let tmp = path.with_file_name(format!(".{name}.{}-{}.tmp", std::process::id(), TEMP_SEQ.fetch_add(1, Ordering::Relaxed)));
        let f = match Unnamed::create(dir, data, &tmp, mode, true) {
            // another writer's temporary file under this name (a process of another PID
            // namespace, without O_TMPFILE): take the next name
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            f => f?,
        };
        f.file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.sync()?;
        match placement {
            Placement::CreateNew => f.link(path)?,
            Placement::Replace => match f.replace_via(path, &tmp, false) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                r => r?,
            },
        }
        sync_dir(dir);
        return Ok(());
    }
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

/// Whether this process's open files can be named through `/proc/self/fd` (not so without
/// `/proc`, or with the `/proc` of another PID namespace): looked at once.
fn proc_fd_usable() -> bool {
    static USABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *USABLE.get_or_init(|| {
        use std::os::fd::AsRawFd;
        std::fs::File::open("/proc/self/exe")
            .ok()
            .and_then(|f| std::fs::metadata(format!("/proc/self/fd/{}", f.as_raw_fd())).ok())
            .is_some()
    })
}

/// A file (mode 0600) written complete before it has a name: opened with `O_TMPFILE` in the
/// directory it is to be linked into, so a process killed while writing it leaves nothing.
/// On a filesystem without `O_TMPFILE` it is written to the named file `fallback` instead, the
/// one case in which a kill can leave a partial file (at `fallback`, which the owner's cleanup
/// must know); dropping the `Unnamed` removes `fallback` unless [`Unnamed::replace`] renamed it.
#[derive(Debug)]
pub struct Unnamed {
    file: File,
    /// The name it was written under when the filesystem has no `O_TMPFILE`.
    named: Option<PathBuf>,
}

impl Unnamed {
    /// `data` in a new file in `dir` (or, without `O_TMPFILE`, at `fallback`, replacing a
    /// leftover there; `fallback` should be in `dir`).
    pub fn write(dir: &Path, data: &[u8], fallback: &Path) -> io::Result<Unnamed> {
        Self::write_with(dir, data, fallback, true)
    }

    /// [`Unnamed::write`], trying `O_TMPFILE` only when `tmpfile` (tests take the fallback).
    fn write_with(dir: &Path, data: &[u8], fallback: &Path, tmpfile: bool) -> io::Result<Unnamed> {
        Self::create(dir, data, fallback, 0o600, tmpfile).or_else(|e| {
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(e);
            }
            // left by a writer killed before it was done (the one writer of a private file)
            std::fs::remove_file(fallback)?;
            Self::create(dir, data, fallback, 0o600, tmpfile)
        })
    }

    /// `data` in a new file of `mode` (as the umask leaves it) in `dir`, or, without
    /// `O_TMPFILE` (or unless `tmpfile`), at `fallback`, which must not exist.
    fn create(dir: &Path, data: &[u8], fallback: &Path, mode: u32, tmpfile: bool) -> io::Result<Unnamed> {
        let opts = || {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).mode(mode);
            o
        };
        // an unnamed file gets its name through /proc/self/fd: without a usable /proc, a named one
        let unnamed = if tmpfile && proc_fd_usable() {
            opts().custom_flags(libc::O_TMPFILE).open(dir)
        } else {
            Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP))
        };
        let mut f = match unnamed {
            Ok(file) => Unnamed { file, named: None },
            // no O_TMPFILE here (EISDIR, EINVAL: the kernel's; EOPNOTSUPP: the filesystem's)
            Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)) => {
                Unnamed { file: opts().create_new(true).open(fallback)?, named: Some(fallback.to_path_buf()) }
            }
            Err(e) => return Err(e),
        };
        // (on an error, dropping `f` removes a named file)
        f.file.write_all(data)?;
        Ok(f)
    }

    /// Flushes the data to the disk, so that a name given afterwards never shows less after a
    /// power loss either.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Gives the file the name `path` too (fails with `AlreadyExists` when `path` is taken).
    pub fn link(&self, path: &Path) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        use std::os::unix::ffi::OsStrExt;
        if let Some(named) = &self.named {
            return std::fs::hard_link(named, path);
        }
        let from = std::ffi::CString::new(format!("/proc/self/fd/{}", self.file.as_raw_fd())).expect("no NUL");
        let to = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        // SAFETY: two valid C strings; linkat follows the /proc magic link to the open file.
        let rc = unsafe { libc::linkat(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr(), libc::AT_SYMLINK_FOLLOW) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Puts the file at `path`, replacing what is there atomically: linked as
    /// [`temp_path`]`(path)` (a leftover there replaced), then renamed over `path`; without
    /// `O_TMPFILE`, renamed from `fallback`.
    pub fn replace(self, path: &Path) -> io::Result<()> {
        self.replace_via(path, &temp_path(path), true)
    }

    /// [`Unnamed::replace`] through the temporary name `tmp`; a file already there is replaced
    /// when `ours` (a leftover of this file's one writer), else `AlreadyExists`.
    fn replace_via(mut self, path: &Path, tmp: &Path, ours: bool) -> io::Result<()> {
        let tmp = match self.named.take() {
            Some(named) => named,
            None => {
                let linked = match self.link(tmp) {
                    // left by a writer killed between its link and its rename
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists && ours => std::fs::remove_file(tmp).and_then(|()| self.link(tmp)),
                    r => r,
                };
                linked?;
                tmp.to_path_buf()
            }
        };
        std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}

impl Drop for Unnamed {
    fn drop(&mut self) {
        if let Some(named) = &self.named {
            let _ = std::fs::remove_file(named);
        }
    }
}

/// How long rcni waits for a file lock another process holds (host-local's store, the runtime's
/// network and container locks) before giving up with "try again later": far longer than any
/// holder's work takes, short of hanging a runtime behind a stopped or stuck process.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);

/// Exclusive or shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// Takes `file`'s `flock` in `mode`, waiting at most [`LOCK_WAIT`] (less when the runtime's
/// deadline, [`crate::deadline`], comes first); then fails with `ErrorKind::TimedOut`.
pub fn lock_bounded(file: &File, mode: LockMode) -> io::Result<()> {
    let start = std::time::Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        let r = match mode {
            LockMode::Shared => file.try_lock_shared(),
            LockMode::Exclusive => file.try_lock(),
        };
        match r {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
            Err(std::fs::TryLockError::WouldBlock) => {}
        }
        let left = crate::deadline::remaining(LOCK_WAIT.saturating_sub(start.elapsed())).filter(|d| !d.is_zero());
        let Some(left) = left else {
            let why = if start.elapsed() >= LOCK_WAIT {
                format!("held by another process for over {}s", LOCK_WAIT.as_secs())
            } else {
                "the runtime's deadline passed".into()
            };
            return Err(io::Error::new(io::ErrorKind::TimedOut, format!("lock not taken: {why}")));
        };
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(20));
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

/// Helpers for this crate's tests of files.
#[cfg(test)]
pub(crate) mod test_util {
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    /// A file's permission bits.
    pub fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    /// The names in a directory, sorted.
    pub fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_util::{entries, mode};

    #[test]
    fn a_name_near_the_limit_has_a_temporary_file_that_fits() {
        let d = tempfile::tempdir().unwrap();
        for len in [250, 255] {
            let p = d.path().join(format!("net-{}", "c".repeat(len - 4)));
            let t = temp_path(&p);
            let n = t.file_name().unwrap().len();
            assert!(n <= 255 && t.file_name().unwrap().to_string_lossy().starts_with(".net-c"), "{n}");
            write_atomic(&p, b"x").unwrap();
            assert_eq!(std::fs::read(&p).unwrap(), b"x");
        }
        let a = temp_path(&d.path().join(format!("{}a", "c".repeat(254))));
        let b = temp_path(&d.path().join(format!("{}b", "c".repeat(254))));
        assert_ne!(a, b, "names that differ only past the cut differ in the hash");
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
    fn unnamed_links_and_replaces_with_and_without_o_tmpfile() {
        for tmpfile in [true, false] {
            let d = tempfile::tempdir().unwrap();
            let fallback = d.path().join(".x.tmp");
            if !tmpfile {
                // a leftover of a killed writer under the fallback name is replaced
                std::fs::write(&fallback, b"half").unwrap();
            }
            let f = Unnamed::write_with(d.path(), b"lease", &fallback, tmpfile).unwrap();
            assert_eq!(fallback.exists(), !tmpfile, "O_TMPFILE: {tmpfile}");
            f.link(&d.path().join("a")).unwrap();
            f.link(&d.path().join("b")).unwrap();
            assert_eq!(f.link(&d.path().join("a")).unwrap_err().kind(), io::ErrorKind::AlreadyExists);
            drop(f);
            let mut names: Vec<String> =
                std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
            names.sort();
            assert_eq!(names, ["a", "b"], "O_TMPFILE: {tmpfile}");
            assert_eq!(std::fs::read(d.path().join("b")).unwrap(), b"lease");

            let p = d.path().join("c.json");
            std::fs::write(&p, b"old").unwrap();
            let f = Unnamed::write_with(d.path(), b"new", &temp_path(&p), tmpfile).unwrap();
            f.sync().unwrap();
            f.replace(&p).unwrap();
            assert_eq!(std::fs::read(&p).unwrap(), b"new");
            assert!(!temp_path(&p).exists());
        }
    }

    /// Where [`a_writer_killed_while_writing_leaves_no_partial_file`]'s child writes.
    const KILLED_WRITER_ENV: &str = "RCNI_FSUTIL_KILLED_WRITER";

    /// The writer that test kills (it runs this test in a child process): does nothing unless
    /// the child's variable names the file to write.
    #[test]
    fn killed_writer() {
        if let Some(p) = std::env::var_os(KILLED_WRITER_ENV) {
            let _ = write_atomic(Path::new(&p), &[b'x'; 4096]);
            std::process::exit(0);
        }
    }

    /// A writer killed while writing (here: by SIGXFSZ, at a file-size limit of 0 bytes — before
    /// its first byte — and of 3 bytes — in the middle of the data) leaves the old file as it was
    /// and no temporary file with less than the data in it, which a GC that needs the content to
    /// know the file's owner could never remove (the crash test's tuning backups).
    #[test]
    fn a_writer_killed_while_writing_leaves_no_partial_file() {
        use std::os::unix::process::{CommandExt, ExitStatusExt};
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.json");
        write_atomic(&p, b"old").unwrap();
        for limit in [0, 3] {
            let mut child = std::process::Command::new(std::env::current_exe().unwrap());
            child
                .args(["--exact", "fsutil::tests::killed_writer", "--test-threads=1"])
                .env(KILLED_WRITER_ENV, &p)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            // SAFETY: only setrlimit, which is async-signal-safe, between fork and exec
            unsafe {
                child.pre_exec(move || {
                    for (res, max) in [(libc::RLIMIT_FSIZE, limit), (libc::RLIMIT_CORE, 0)] {
                        if libc::setrlimit(res, &libc::rlimit { rlim_cur: max, rlim_max: max }) != 0 {
                            return Err(io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
            let status = child.status().unwrap();
            assert_eq!(status.signal(), Some(libc::SIGXFSZ), "limit {limit}: the writer was not killed while writing: {status}");
            let mut names: Vec<String> =
                std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
            names.sort();
            let temp = std::fs::read(temp_path(&p)).ok().map(|b| String::from_utf8_lossy(&b).into_owned());
            assert_eq!(names, ["a.json"], "limit {limit}: left behind (temporary file holding {temp:?})");
            assert_eq!(std::fs::read(&p).unwrap(), b"old");
        }
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
        // (Replace links to a temporary name first; CreateNew links straight to the file)
        write_shared(&p, b"mine", 0o644, Placement::Replace).unwrap();
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

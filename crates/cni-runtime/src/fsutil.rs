//! Replacing a small state file so that neither a reader nor a crash ever sees half of it, and
//! a crash leaves nothing the owner's DEL cannot find: the data is written to a file that has no
//! name yet ([`Unnamed`]) and synced, then linked as `.<name>.tmp` next to the file (one
//! temporary name per file: one attachment has one writer at a time) and renamed over the file.
//! A writer killed at any point leaves either nothing or the complete temporary file; only on a
//! filesystem without `O_TMPFILE` is the data written to `.<name>.tmp` directly, so that a kill
//! can leave it partial. [`remove`] removes the file and any such leftover. Used for the result
//! cache and for plugins' state files (tuning's backups); [`Unnamed`] also for host-local's
//! leases. Also [`same_file`].

use std::fs::File;
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
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let f = Unnamed::write(dir, data, &temp_path(path))?;
    f.sync()?;
    f.replace(path)
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
        let opts = || {
            let mut o = std::fs::OpenOptions::new();
            o.write(true).mode(0o600);
            o
        };
        let unnamed =
            if tmpfile { opts().custom_flags(libc::O_TMPFILE).open(dir) } else { Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP)) };
        let mut f = match unnamed {
            Ok(file) => Unnamed { file, named: None },
            // no O_TMPFILE here (EISDIR, EINVAL: the kernel's; EOPNOTSUPP: the filesystem's)
            Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)) => {
                let open = || opts().create_new(true).open(fallback);
                let file = match open() {
                    // left by a writer killed before it was done
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        std::fs::remove_file(fallback)?;
                        open()?
                    }
                    f => f?,
                };
                Unnamed { file, named: Some(fallback.to_path_buf()) }
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
    pub fn replace(mut self, path: &Path) -> io::Result<()> {
        let tmp = match self.named.take() {
            Some(named) => named,
            None => {
                let tmp = temp_path(path);
                let linked = match self.link(&tmp) {
                    // left by a writer killed between its link and its rename
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => std::fs::remove_file(&tmp).and_then(|()| self.link(&tmp)),
                    r => r,
                };
                linked?;
                tmp
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
}

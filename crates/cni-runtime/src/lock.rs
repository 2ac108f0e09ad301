//! Per-network locks between a runtime's operations and its garbage collection: ADD/DEL of
//! a network hold its lock shared (any number at once), GC holds it exclusively, so GC never
//! judges an attachment while an ADD or DEL on that network is in flight. The lock is an
//! `flock` on `<dir>/<network>`: it dies with its holder, so a killed runtime never leaves a
//! network locked.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Where rcni keeps its network locks.
pub const LOCK_DIR: &str = "/run/cni/rcni/locks";

/// A held network lock; released on drop.
#[derive(Debug)]
pub struct NetworkLock {
    _file: File,
}

impl NetworkLock {
    /// Waits for `network`'s lock in shared mode (runtime operations).
    pub fn shared(dir: &Path, network: &str) -> io::Result<Self> {
        Self::take(dir, network, libc::LOCK_SH)
    }

    /// Waits for `network`'s lock in exclusive mode (garbage collection).
    pub fn exclusive(dir: &Path, network: &str) -> io::Result<Self> {
        Self::take(dir, network, libc::LOCK_EX)
    }

    fn take(dir: &Path, network: &str, how: libc::c_int) -> io::Result<Self> {
        // network names are validated ([A-Za-z0-9_.-]), but never let one escape the directory
        if network.is_empty() || network.contains('/') || network == "." || network == ".." {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid network name {network:?}")));
        }
        crate::fsutil::create_dir_all_mode(dir, 0o700)?;
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(dir.join(network))?;
        loop {
            // SAFETY: flock on a file descriptor we own.
            if unsafe { libc::flock(file.as_raw_fd(), how) } == 0 {
                return Ok(NetworkLock { _file: file });
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn shared_together_exclusive_alone() {
        let dir = tempfile::tempdir().unwrap();
        let a = NetworkLock::shared(dir.path(), "net").unwrap();
        let b = NetworkLock::shared(dir.path(), "net").unwrap();
        let (tx, rx) = mpsc::channel();
        let d = dir.path().to_path_buf();
        let t = std::thread::spawn(move || {
            let _x = NetworkLock::exclusive(&d, "net").unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "exclusive waits for the shared holders");
        drop((a, b));
        rx.recv_timeout(Duration::from_secs(5)).expect("exclusive once they are gone");
        t.join().unwrap();
        // another network is independent
        let _x = NetworkLock::exclusive(dir.path(), "net").unwrap();
        let _y = NetworkLock::exclusive(dir.path(), "other").unwrap();
        assert!(NetworkLock::shared(dir.path(), "../x").is_err());
    }
}

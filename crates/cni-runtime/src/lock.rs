//! Per-network locks between a runtime's operations and its garbage collection: ADD/DEL of
//! a network hold its lock shared (any number at once), GC holds it exclusively, so GC never
//! judges an attachment while an ADD or DEL on that network is in flight. The lock is an
//! `flock` on `<dir>/<network>`: it dies with its holder, so a killed runtime never leaves a
//! network locked.

use crate::fsutil::{lock_bounded, LockMode};
use std::fs::{File, OpenOptions};
use std::io;
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
    /// Waits (bounded: [`crate::fsutil::LOCK_WAIT`]) for `network`'s lock in shared mode (runtime operations).
    pub fn shared(dir: &Path, network: &str) -> io::Result<Self> {
        Self::take(dir, network, LockMode::Shared)
    }

    /// Waits for `network`'s lock in exclusive mode (garbage collection).
    pub fn exclusive(dir: &Path, network: &str) -> io::Result<Self> {
        Self::take(dir, network, LockMode::Exclusive)
    }

    fn take(dir: &Path, network: &str, mode: LockMode) -> io::Result<Self> {
        // network names are validated ([A-Za-z0-9_.-]), but never let one escape the directory
        if network.is_empty() || network.contains('/') || network == "." || network == ".." {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid network name {network:?}")));
        }
        crate::fsutil::create_dir_all_mode(dir, 0o700)?;
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(dir.join(network))?;
        lock_bounded(&file, mode)?;
        Ok(NetworkLock { _file: file })
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
        // a holder that never lets go: the wait ends at the runtime's deadline
        let _held = NetworkLock::exclusive(dir.path(), "stuck").unwrap();
        let start = std::time::Instant::now();
        let _d = crate::deadline::scope(Some(start + Duration::from_millis(100)));
        let e = NetworkLock::shared(dir.path(), "stuck").unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5), "waited {:?}", start.elapsed());
        assert_eq!((e.kind(), e.to_string().as_str()), (io::ErrorKind::TimedOut, "lock not taken: the runtime's deadline passed"));
    }
}

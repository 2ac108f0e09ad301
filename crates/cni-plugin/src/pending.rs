//! Attachments being set up, so that a GC running meanwhile leaves them alone.
//!
//! A runtime writes its result cache only after the whole chain's ADD; until then a GC (any
//! runtime's: only rcni's own CLI takes a network lock around it) finds the attachment in no
//! valid list and would free what the chain's first plugins already made — the lease, the
//! masquerade, DNAT and accept elements. So every ADD first marks its attachment, and every GC
//! counts an attachment marked less than [`grace`] ago as valid, whatever the runtime says.
//!
//! A marker is an empty file `<DIR>/<network>/<containerID>:<ifname>` (the three are validated:
//! none has a `/`, a container ID has no `:`), its modification time when the ADD began. DEL
//! removes it, as does the failure of the ADD that made it; GC removes the expired ones. Under
//! /run: attachments do not outlive a reboot.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Where the markers are kept.
pub const DIR: &str = "/run/cni/rcni/adding";

/// How long an ADD in progress is protected from GC unless `RCNI_GC_GRACE` (seconds) says
/// otherwise: far longer than a chain's ADD takes (every wait in rcni is bounded well below it),
/// short enough that what a crashed ADD left is reclaimed by the next GC after it.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(600);

/// `RCNI_GC_GRACE`'s value: whole seconds; anything else is ignored (the default holds).
pub fn parse_grace(v: &str) -> Option<Duration> {
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn marker(dir: &Path, network: &str, container_id: &str, ifname: &str) -> PathBuf {
    dir.join(network).join(format!("{container_id}:{ifname}"))
}

/// What [`mark`] made: the marker, and the directories it needed.
#[derive(Debug, Default)]
pub struct Marked {
    file: Option<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Marked {
    /// Whether this made the marker (rather than renewed one an earlier plugin of the chain made).
    pub fn made(&self) -> bool {
        self.file.is_some()
    }

    /// Takes back what [`mark`] made, for an ADD that failed: a failed ADD leaves nothing.
    pub fn undo(self) {
        if let Some(f) = &self.file {
            let _ = std::fs::remove_file(f);
        }
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Marks an ADD of the attachment as begun (now). Best effort: without the marker only the
/// protection is lost.
pub fn mark(dir: &Path, network: &str, container_id: &str, ifname: &str) -> Marked {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let path = marker(dir, network, container_id, ifname);
    // made here or renewed: an exclusive create tells which without a stat first
    let existed = std::cell::Cell::new(false);
    let open = || match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            existed.set(true);
            std::fs::OpenOptions::new().write(true).open(&path)
        }
        r => r,
    };
    let mut dirs = Vec::new();
    let file = open().or_else(|_| {
        // the missing directories, outermost first, each made here
        let parent = path.parent().unwrap_or(dir);
        let mut missing: Vec<&Path> = parent.ancestors().take_while(|d| !d.exists()).collect();
        missing.reverse();
        for d in missing {
            match std::fs::DirBuilder::new().mode(0o700).create(d) {
                Ok(()) => dirs.push(d.to_path_buf()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        open()
    });
    match file.and_then(|f| f.set_modified(SystemTime::now())) {
        Ok(()) => Marked { file: (!existed.get()).then_some(path), dirs },
        Err(e) => {
            eprintln!("marking the ADD of {container_id}/{ifname} for GC's grace period: {}: {e}", path.display());
            Marked { file: None, dirs }
        }
    }
}

/// Forgets the attachment (its DEL is done, or the ADD that made the marker failed). The
/// directories stay: like the network's lock and store, they are state an attachment's ADD may
/// make once for every later one.
pub fn clear(dir: &Path, network: &str, container_id: &str, ifname: &str) {
    let _ = std::fs::remove_file(marker(dir, network, container_id, ifname));
}

/// The attachments of `network` whose ADD began less than `grace` ago; expired markers are
/// removed on the way.
pub fn recent(dir: &Path, network: &str, grace: Duration) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir.join(network)) else { return Vec::new() };
    let now = SystemTime::now();
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some((id, ifname)) = name.to_str().and_then(|n| n.split_once(':')) else { continue };
        let Ok(modified) = e.metadata().and_then(|m| m.modified()) else { continue };
        // a marker from the future (a clock set back) counts as fresh
        if now.duration_since(modified).map_or(true, |age| age < grace) {
            out.push((id.to_string(), ifname.to_string()));
        } else {
            let _ = std::fs::remove_file(e.path());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marked_until_deleted_or_expired() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        assert!(recent(dir, "net", DEFAULT_GRACE).is_empty());
        mark(dir, "net", "c1", "eth0");
        mark(dir, "net", "c2", "net1");
        mark(dir, "other", "c3", "eth0");
        let mut r = recent(dir, "net", DEFAULT_GRACE);
        r.sort();
        assert_eq!(r, [("c1".to_string(), "eth0".to_string()), ("c2".into(), "net1".into())]);
        clear(dir, "net", "c1", "eth0");
        assert_eq!(recent(dir, "net", DEFAULT_GRACE), [("c2".to_string(), "net1".to_string())]);
        clear(dir, "other", "c3", "eth0");
        assert!(mark(dir, "other", "c3", "eth0").made(), "made anew");
        assert!(!mark(dir, "other", "c3", "eth0").made(), "renewed");
        // a failed ADD takes back what its mark made, directories included
        let fresh = dir.join("deep/er");
        mark(&fresh, "n", "c9", "eth0").undo();
        assert!(!dir.join("deep").exists(), "nothing left");
        let kept = mark(dir, "net", "c2", "net1");
        kept.undo();
        assert!(dir.join("net").exists(), "a directory that was there stays");
        // an old marker no longer protects, and goes
        let old = dir.join("net/c2:net1");
        std::fs::File::options().write(true).open(&old).unwrap().set_modified(SystemTime::now() - Duration::from_secs(601)).unwrap();
        assert!(recent(dir, "net", DEFAULT_GRACE).is_empty());
        assert!(!old.exists());
        // marking again renews
        mark(dir, "other", "c3", "eth0");
        assert_eq!(recent(dir, "other", Duration::from_secs(1)).len(), 1);
        assert!(recent(dir, "other", Duration::ZERO).is_empty(), "a zero grace protects nothing");
    }
}

//! host-local's on-disk store, byte-compatible with the Go plugin's so a node can switch
//! without losing leases:
//!
//! ```text
//! <dataDir>/<network>/lock                  empty; flock(2) serialises allocators (Go's too)
//! <dataDir>/<network>/<ip>                  "<containerID>\r\n<ifname>" (no trailing newline)
//! <dataDir>/<network>/last_reserved_ip.<N>  the last address handed out from range set N
//! ```
//!
//! Files holding only `<containerID>` (the old format) are matched too. A reservation is
//! written to an unnamed file (`O_TMPFILE`) and linked into place complete, so a crash never
//! leaves an empty reservation that nobody can release, nor a stray temporary file (Go's plugin
//! writes into the new file directly).

use std::fs::{File, OpenOptions};
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub const DEFAULT_DATA_DIR: &str = "/var/lib/cni/networks";
const LAST_IP_PREFIX: &str = "last_reserved_ip.";
/// An empty lease older than this is a crash's leftover that GC reclaims.
pub const EMPTY_LEASE_AGE: std::time::Duration = std::time::Duration::from_secs(600);
const LINE_BREAK: &str = "\r\n";
/// rcni's index of leases by attachment: `<attachment hash>-<ip>`, a hard link to the lease
/// (Go's plugin walks into it and ignores the entries, whose names are no addresses; its
/// release removes them with the lease, having the same content).
pub const INDEX_DIR: &str = ".rcni-by-id";

use cni_runtime::fsutil::{lock_bounded, same_file as same_inode, LockMode, Unnamed};

/// What a lease file holds: `<containerID>\r\n<ifname>`.
fn lease_content(id: &str, ifname: &str) -> String {
    format!("{}{LINE_BREAK}{ifname}", id.trim())
}

/// One network's store, locked for as long as it lives.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    _lock: File,
}

fn err(what: impl std::fmt::Display, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

impl Store {
    /// Opens (creating, 0700 like any missing parent) `<data_dir>/<network>` and takes its lock
    /// (waiting at most [`cni_runtime::fsutil::LOCK_WAIT`], or to the runtime's deadline).
    pub fn open(data_dir: &Path, network: &str) -> io::Result<Store> {
        let dir = data_dir.join(network);
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|e| err(format!("creating {}", dir.display()), e))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock_path)
            .map_err(|e| err(format!("opening {}", lock_path.display()), e))?;
        lock_bounded(&lock, LockMode::Exclusive).map_err(|e| err(format!("locking {}", lock_path.display()), e))?;
        Ok(Store { dir, _lock: lock })
    }

    fn ip_path(&self, ip: &IpAddr) -> PathBuf {
        self.dir.join(ip.to_string())
    }

    /// Reserves `ip` for `(id, ifname)`; false when it is taken. Records it as the last address
    /// handed out from range set `range_id`.
    ///
    /// The lease is written complete before it gets a name, and is first linked into the
    /// index (`.rcni-by-id/<attachment hash>-<ip>`), then to its address: an index entry whose
    /// address file is another inode is a leftover (of a crash or a lost race) and means nothing.
    pub fn reserve(&self, id: &str, ifname: &str, ip: &IpAddr, range_id: usize) -> io::Result<bool> {
        let path = self.ip_path(ip);
        let content = lease_content(id, ifname);
        let index = self.dir.join(INDEX_DIR);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&index)
            .map_err(|e| err(format!("creating {}", index.display()), e))?;
        let entry = self.entry_path(id, ifname, ip);
        let _ = std::fs::remove_file(&entry);
        // (a filesystem without O_TMPFILE gets a named temporary file, which a crash can leave)
        let fallback = self.dir.join(format!(".{ip}.{}.tmp", std::process::id()));
        let f = Unnamed::write(&self.dir, content.as_bytes(), &fallback)
            .map_err(|e| err(format!("writing a reservation in {}", self.dir.display()), e))?;
        let linked = f.link(&entry).and_then(|()| f.link(&path));
        drop(f);
        if linked.is_err() {
            let _ = std::fs::remove_file(&entry);
        }
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(err(format!("reserving {}", path.display()), e)),
        }
        // in place, never through a symlink planted there (O_NOFOLLOW). Not via a temporary file:
        // a process killed between its link and its rename would leave one in the store; a
        // write cut short here only makes the next ADD start its search over
        let last = self.dir.join(format!("{LAST_IP_PREFIX}{range_id}"));
        let write = || -> io::Result<()> {
            use std::io::Write;
            let mut f =
                OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(&last)?;
            f.write_all(ip.to_string().as_bytes())
        };
        match write() {
            // a symlink there (ELOOP): replaced by a file of ours
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                std::fs::remove_file(&last).and_then(|()| write()).map_err(|e| err(format!("writing {}", last.display()), e))?
            }
            r => r.map_err(|e| err(format!("writing {}", last.display()), e))?,
        }
        Ok(true)
    }

    /// The last address handed out from range set `range_id`, if recorded and readable.
    pub fn last_reserved_ip(&self, range_id: usize) -> Option<IpAddr> {
        use std::io::Read;
        let mut f =
            OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(self.dir.join(format!("{LAST_IP_PREFIX}{range_id}"))).ok()?;
        let mut s = String::new();
        Read::take(&mut f, 64).read_to_string(&mut s).ok()?;
        cni_types::result::parse_ip(s.trim())
    }

    /// Every regular file under the store (recursively, as Go's walk), with its trimmed content.
    fn files(&self) -> Vec<(PathBuf, String)> {
        let mut out = Vec::new();
        let mut stack = vec![self.dir.clone()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else { continue };
            for e in entries.flatten() {
                let Ok(t) = e.file_type() else { continue };
                if t.is_dir() {
                    stack.push(e.path());
                } else if t.is_file() {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    // (temporary files of a crashed reservation are included: a release removes them)
                    if name == "lock" || name.starts_with(LAST_IP_PREFIX) {
                        continue;
                    }
                    if let Ok(s) = std::fs::read_to_string(e.path()) {
                        out.push((e.path(), s.trim().to_string()));
                    }
                }
            }
        }
        out
    }

    /// The attachment's name in the index: 16 hex digits of SHA-512 over ID and ifname.
    fn attachment_hash(id: &str, ifname: &str) -> String {
        use sha2::{Digest, Sha512};
        let mut h = Sha512::new();
        h.update(id.trim().as_bytes());
        h.update([0u8]);
        h.update(ifname.as_bytes());
        h.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    fn entry_path(&self, id: &str, ifname: &str, ip: &IpAddr) -> PathBuf {
        self.dir.join(INDEX_DIR).join(format!("{}-{ip}", Self::attachment_hash(id, ifname)))
    }

    /// The index's entries of `(id, ifname)` (address, entry path), and whether the index
    /// covers every lease of the network — every lease file has an index entry that is the same
    /// file (inode), so no lease needs reading to know who holds what. Two directory listings
    /// (their entries carry the inodes); no lease file is opened.
    fn indexed(&self, id: &str, ifname: &str) -> (Vec<(IpAddr, PathBuf)>, bool) {
        use std::os::unix::fs::DirEntryExt;
        let names = |d: &Path| -> Vec<(String, u64)> {
            std::fs::read_dir(d)
                .map(|r| r.flatten().map(|e| (e.file_name().to_string_lossy().into_owned(), e.ino())).collect())
                .unwrap_or_default()
        };
        let mut leases: Vec<(IpAddr, u64)> =
            names(&self.dir).iter().filter_map(|(n, ino)| cni_types::result::parse_ip(n).map(|ip| (ip, *ino))).collect();
        let want = Self::attachment_hash(id, ifname);
        let index = self.dir.join(INDEX_DIR);
        let mut covered: Vec<(IpAddr, u64)> = Vec::new();
        let mut mine = Vec::new();
        for (n, ino) in names(&index) {
            let Some((hash, ip)) = n.split_once('-') else { continue };
            let Some(ip) = cni_types::result::parse_ip(ip) else { continue };
            if hash == want {
                mine.push((ip, index.join(&n)));
            }
            covered.push((ip, ino));
        }
        leases.sort();
        covered.sort();
        covered.dedup();
        // (a stale entry of an address whose lease is now another file covers nothing)
        let complete = leases.iter().all(|l| covered.binary_search(l).is_ok());
        (mine, complete)
    }

    /// The addresses held by `(id, ifname)`. When rcni's index covers every lease of the
    /// network (no lease of Go's plugin, nothing left by a crash), from the index alone;
    /// otherwise by reading every lease file, as Go's plugin does.
    pub fn get_by_id_indexed(&self, id: &str, ifname: &str) -> Vec<IpAddr> {
        let (mine, complete) = self.indexed(id, ifname);
        if !complete {
            return self.get_by_id(id, ifname);
        }
        mine.into_iter().filter(|(ip, entry)| same_inode(entry, &self.ip_path(ip))).map(|(ip, _)| ip).collect()
    }

    /// The addresses held by `(id, ifname)`, old-format files (ID only) included: every lease
    /// file is read, as Go's plugin does.
    pub fn get_by_id(&self, id: &str, ifname: &str) -> Vec<IpAddr> {
        let key = lease_content(id, ifname);
        let old = id.trim();
        self.files()
            .into_iter()
            .filter(|(_, c)| *c == key || c == old)
            .filter_map(|(p, _)| p.file_name().and_then(|n| cni_types::result::parse_ip(&n.to_string_lossy())))
            .collect()
    }

    /// True if `(id, ifname)` holds an address (old-format files count).
    pub fn find_by_id(&self, id: &str, ifname: &str) -> bool {
        !self.get_by_id(id, ifname).is_empty()
    }

    /// Releases every address of `(id, ifname)`; if there is none in the new format, the
    /// old-format files of `id` are released. Unknown IDs are fine.
    ///
    /// When rcni's index covers every lease of the network only the attachment's own files are
    /// touched; otherwise every lease file is read as well, as Go's plugin does.
    pub fn release_by_id(&self, id: &str, ifname: &str) -> io::Result<usize> {
        let (mine, complete) = self.indexed(id, ifname);
        let mut n = 0;
        for (ip, entry) in mine {
            let path = self.ip_path(&ip);
            if same_inode(&entry, &path) {
                match std::fs::remove_file(&path) {
                    Ok(()) => n += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(err(format!("releasing {}", path.display()), e)),
                }
            }
            let _ = std::fs::remove_file(&entry);
        }
        if complete {
            return Ok(n);
        }
        let files = self.files();
        let key = lease_content(id, ifname);
        n += self.remove_matching(&files, &key)?;
        if n == 0 {
            n = self.remove_matching(&files, id.trim())?;
        }
        Ok(n)
    }

    /// Releases one address if `(id, ifname)` holds it.
    pub fn release_ip(&self, ip: &IpAddr, id: &str, ifname: &str) -> io::Result<bool> {
        let path = self.ip_path(ip);
        let _ = std::fs::remove_file(self.entry_path(id, ifname, ip));
        match std::fs::read_to_string(&path) {
            Ok(c) if c.trim() == lease_content(id, ifname) => std::fs::remove_file(&path).map(|_| true),
            Ok(_) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(err(format!("reading {}", path.display()), e)),
        }
    }

    /// Whether a file can be created in the store (STATUS).
    pub fn writable(&self) -> io::Result<()> {
        let tmp = self.dir.join(format!(".status.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(|e| err(format!("writing {}", tmp.display()), e))?;
        std::fs::remove_file(&tmp).map_err(|e| err(format!("removing {}", tmp.display()), e))
    }

    /// Whether `ip` is leased (STATUS).
    pub fn is_reserved(&self, ip: &IpAddr) -> bool {
        self.ip_path(ip).exists()
    }

    /// GC: removes the leases (files named by an address) whose holder is not in `valid`
    /// (`(containerID, ifname)` pairs); an old-format lease (ID only) stays if its ID is valid
    /// with any interface. Go's leases are the same files, so they are reclaimed alike; the lock,
    /// `last_reserved_ip.*`, empty and unreadable files are never touched. Goes on past failures;
    /// returns the addresses released and the failures.
    pub fn gc(&self, valid: &std::collections::BTreeSet<(String, String)>) -> (Vec<IpAddr>, Vec<io::Error>) {
        let (mut released, mut failed) = (Vec::new(), Vec::new());
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => return (released, vec![err(format!("listing {}", self.dir.display()), e)]),
        };
        for e in entries.flatten() {
            let Some(ip) = cni_types::result::parse_ip(&e.file_name().to_string_lossy()) else { continue };
            if !e.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let path = e.path();
            let content = match std::fs::read_to_string(&path) {
                Ok(c) => c,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    failed.push(err(format!("reading {}", path.display()), e));
                    continue;
                }
            };
            let stale = if content.trim().is_empty() {
                // no writer leaves a lease empty for long (rcni links it complete, Go writes it
                // right after creating it): an old empty one lost its content in a crash, and
                // nobody can release it but GC
                e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().unwrap_or_default() >= EMPTY_LEASE_AGE)
            } else {
                lease_is_stale(content.trim(), valid)
            };
            if !stale {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => released.push(ip),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => failed.push(err(format!("releasing {}", path.display()), e)),
            }
        }
        // index entries whose lease is gone (released just now, by Go's plugin, or never made
        // by a killed ADD): without them the index covers the network again
        let index = self.dir.join(INDEX_DIR);
        for e in std::fs::read_dir(&index).into_iter().flatten().flatten() {
            let name = e.file_name();
            let lease = name.to_str().and_then(|n| n.split_once('-')).and_then(|(_, ip)| cni_types::result::parse_ip(ip));
            if lease.is_some_and(|ip| same_inode(&e.path(), &self.ip_path(&ip))) {
                continue;
            }
            if let Err(x) = std::fs::remove_file(e.path()) {
                if x.kind() != io::ErrorKind::NotFound {
                    failed.push(err(format!("removing {}", e.path().display()), x));
                }
            }
        }
        (released, failed)
    }

    fn remove_matching(&self, files: &[(PathBuf, String)], key: &str) -> io::Result<usize> {
        let mut n = 0;
        for (p, c) in files {
            if c == key {
                match std::fs::remove_file(p) {
                    Ok(()) => n += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(err(format!("releasing {}", p.display()), e)),
                }
            }
        }
        Ok(n)
    }
}

/// Whether a lease's content names a holder that is not valid (see [`Store::gc`]).
fn lease_is_stale(content: &str, valid: &std::collections::BTreeSet<(String, String)>) -> bool {
    match content.split_once(LINE_BREAK) {
        Some((id, ifname)) => !valid.contains(&(id.trim().to_string(), ifname.trim().to_string())),
        None if content.is_empty() => false,
        None => !valid.iter().any(|(id, _)| id == content),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A stale index entry (its lease released and the address since leased by Go's plugin, in
    /// a file of its own) must not make the index look complete and hide that lease.
    #[test]
    fn a_stale_index_entry_hides_no_lease() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path(), "net").unwrap();
        assert!(s.reserve("c1", "eth0", &ip("10.0.0.2"), 0).unwrap());
        let dir = d.path().join("net");
        std::fs::remove_file(dir.join("10.0.0.2")).unwrap(); // released by Go's plugin, entry kept
        std::fs::write(dir.join("10.0.0.2"), "c2\r\neth0").unwrap(); // Go's plugin leases it anew
        assert_eq!(s.get_by_id_indexed("c2", "eth0"), vec![ip("10.0.0.2")]);
        assert!(s.get_by_id_indexed("c1", "eth0").is_empty());
        assert_eq!(s.release_by_id("c2", "eth0").unwrap(), 1);
        assert!(!dir.join("10.0.0.2").exists());
    }

    /// Symlinks planted in the store are never followed: not the lock's, not
    /// last_reserved_ip's (which is replaced).
    #[test]
    fn symlinks_in_the_store_are_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("net");
        std::fs::create_dir(&dir).unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("last_reserved_ip.0")).unwrap();
        {
            let s = Store::open(d.path(), "net").unwrap();
            assert_eq!(s.last_reserved_ip(0), None, "not read through the link");
            assert!(s.reserve("c1", "eth0", &ip("10.0.0.2"), 0).unwrap());
            assert_eq!(s.last_reserved_ip(0), Some(ip("10.0.0.2")));
        }
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert!(!dir.join("last_reserved_ip.0").is_symlink());
        std::fs::remove_file(dir.join("lock")).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("lock")).unwrap();
        assert!(Store::open(d.path(), "net").is_err(), "a symlinked lock is refused");
    }

    /// An empty lease (content lost in a crash) is reclaimed by GC once it is old.
    #[test]
    fn gc_reclaims_an_old_empty_lease() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path(), "net").unwrap();
        let dir = d.path().join("net");
        std::fs::write(dir.join("10.0.0.7"), "").unwrap();
        std::fs::write(dir.join("10.0.0.8"), "").unwrap();
        let old = std::time::SystemTime::now() - EMPTY_LEASE_AGE - std::time::Duration::from_secs(1);
        File::options().write(true).open(dir.join("10.0.0.7")).unwrap().set_modified(old).unwrap();
        let (released, failed) = s.gc(&Default::default());
        assert!(failed.is_empty());
        assert_eq!(released, vec![ip("10.0.0.7")], "the new empty one may be a lease being written");
    }

    #[test]
    fn files_are_byte_compatible() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path(), "net").unwrap();
        assert!(s.reserve(" c1 ", "eth0", &ip("10.0.0.2"), 0).unwrap());
        assert!(!s.reserve("c2", "eth0", &ip("10.0.0.2"), 0).unwrap(), "taken");
        assert!(s.reserve("c1", "eth1", &ip("fd00::2"), 1).unwrap());
        let dir = d.path().join("net");
        assert_eq!(std::fs::read(dir.join("10.0.0.2")).unwrap(), b"c1\r\neth0");
        assert_eq!(std::fs::read(dir.join("fd00::2")).unwrap(), b"c1\r\neth1");
        assert_eq!(std::fs::read(dir.join("last_reserved_ip.0")).unwrap(), b"10.0.0.2");
        assert_eq!(std::fs::read(dir.join("last_reserved_ip.1")).unwrap(), b"fd00::2");
        assert_eq!(std::fs::read(dir.join("lock")).unwrap(), b"");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(dir.join("10.0.0.2")).unwrap().permissions().mode() & 0o777, 0o600);
        let mut names: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(
            names,
            vec![INDEX_DIR, "10.0.0.2", "fd00::2", "last_reserved_ip.0", "last_reserved_ip.1", "lock"],
            "no temporary files left"
        );
        assert_eq!(s.last_reserved_ip(0), Some(ip("10.0.0.2")));
        assert_eq!(s.get_by_id("c1", "eth0"), vec![ip("10.0.0.2")]);
        assert!(s.find_by_id("c1", "eth1"));
        assert!(!s.find_by_id("c3", "eth0"));
    }

    #[test]
    fn the_index_finds_and_releases_only_what_it_should() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path(), "net").unwrap();
        let dir = d.path().join("net");
        s.reserve("c1", "eth0", &ip("10.0.0.2"), 0).unwrap();
        s.reserve("c1", "eth0", &ip("fd00::2"), 1).unwrap();
        assert!(s.indexed("c1", "eth0").1, "the index covers every lease");
        let mut held = s.get_by_id_indexed("c1", "eth0");
        held.sort();
        assert_eq!(held, vec![ip("10.0.0.2"), ip("fd00::2")]);
        assert!(s.get_by_id_indexed("c1", "eth1").is_empty());
        // a lost race: the entry is made, the address is someone else's (Go's)
        std::fs::write(dir.join("10.0.0.3"), "c9\r\neth0").unwrap();
        assert!(!s.reserve("c1", "eth1", &ip("10.0.0.3"), 0).unwrap());
        assert!(!s.indexed("c1", "eth1").1, "Go's lease is not covered: every lease gets read");
        assert_eq!(s.get_by_id_indexed("c9", "eth0"), vec![ip("10.0.0.3")], "found by reading");
        // a stale entry left by a crash before the address was linked, now someone else's address
        std::fs::write(s.entry_path("c1", "eth0", &ip("10.0.0.3")), "c1\r\neth0").unwrap();
        assert_eq!(s.get_by_id_indexed("c1", "eth0").len(), 2, "the stale entry means nothing");
        assert_eq!(s.release_by_id("c1", "eth0").unwrap(), 2);
        assert_eq!(std::fs::read(dir.join("10.0.0.3")).unwrap(), b"c9\r\neth0", "another's lease stays");
        assert_eq!(s.release_by_id("c9", "eth0").unwrap(), 1, "Go's lease released by reading them all");
        assert_eq!(std::fs::read_dir(dir.join(INDEX_DIR)).unwrap().count(), 0, "index entries go with their leases");
        s.reserve("c2", "eth0", &ip("10.0.0.5"), 0).unwrap();
        assert_eq!(s.get_by_id("c2", "eth0"), vec![ip("10.0.0.5")], "index files never read as addresses");
        assert!(s.release_ip(&ip("10.0.0.5"), "c2", "eth0").unwrap());
        assert_eq!(std::fs::read_dir(dir.join(INDEX_DIR)).unwrap().count(), 0);
    }

    #[test]
    fn release_rules() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path(), "net").unwrap();
        let dir = d.path().join("net");
        s.reserve("c1", "eth0", &ip("10.0.0.2"), 0).unwrap();
        s.reserve("c1", "eth1", &ip("10.0.0.3"), 0).unwrap();
        // whitespace around the content is tolerated, old format (ID only) is matched
        std::fs::write(dir.join("10.0.0.4"), "c2\n").unwrap();
        std::fs::write(dir.join("10.0.0.5"), " c3\r\neth0\n").unwrap();
        assert_eq!(s.get_by_id("c2", "eth0"), vec![ip("10.0.0.4")]);
        assert_eq!(s.release_by_id("c1", "eth0").unwrap(), 1);
        assert!(dir.join("10.0.0.3").exists(), "the other interface keeps its address");
        assert_eq!(s.release_by_id("c2", "eth0").unwrap(), 1, "old format released");
        assert_eq!(s.release_by_id("c3", "eth0").unwrap(), 1);
        assert_eq!(s.release_by_id("unknown", "eth0").unwrap(), 0);
        assert!(dir.join("lock").exists() && dir.join("last_reserved_ip.0").exists());
    }

    #[test]
    fn the_lock_excludes_a_second_store() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path(), "net").unwrap();
        let other = File::open(d.path().join("net/lock")).unwrap();
        assert!(other.try_lock().is_err(), "held while the store is open");
        drop(s);
        assert!(other.try_lock().is_ok());
    }

    #[test]
    fn gc_keeps_valid_leases_and_the_store_files() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path(), "net").unwrap();
        let dir = d.path().join("net");
        s.reserve("c1", "eth0", &ip("10.0.0.2"), 0).unwrap();
        s.reserve("c1", "eth1", &ip("10.0.0.3"), 0).unwrap();
        s.reserve("c2", "eth0", &ip("fd00::2"), 1).unwrap();
        std::fs::write(dir.join("10.0.0.4"), "c3").unwrap(); // old format, valid ID
        std::fs::write(dir.join("10.0.0.5"), "c4\n").unwrap(); // old format, gone
        std::fs::write(dir.join("10.0.0.6"), "").unwrap(); // holder unknown: kept
        std::fs::write(dir.join("notes"), "c9\r\neth0").unwrap(); // not a lease
        let valid = [("c1".to_string(), "eth0".to_string()), ("c3".to_string(), "eth0".to_string())].into_iter().collect();
        let (mut released, failed) = s.gc(&valid);
        released.sort();
        assert!(failed.is_empty());
        assert_eq!(released, vec![ip("10.0.0.3"), ip("10.0.0.5"), ip("fd00::2")]);
        let mut names: Vec<String> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, vec![INDEX_DIR, "10.0.0.2", "10.0.0.4", "10.0.0.6", "last_reserved_ip.0", "last_reserved_ip.1", "lock", "notes"]);
        let index: Vec<String> =
            std::fs::read_dir(dir.join(INDEX_DIR)).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert_eq!(index, vec![format!("{}-10.0.0.2", Store::attachment_hash("c1", "eth0"))], "entries of released leases go too");
        assert!(lease_is_stale("c1\r\neth0", &Default::default()));
        assert!(!lease_is_stale(" c1 \r\neth0", &valid));
    }
}

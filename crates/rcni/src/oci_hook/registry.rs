//! The containers attached through the OCI hook on this node, so that each one's hosts file
//! lists the others on its networks: a record per container in [`DIR`] (tmpfs: the containers do
//! not outlive a reboot either), changed under one lock, and the hosts files of the containers a
//! change concerns rewritten while that lock is held.

use cni_runtime::fsutil;
use cni_runtime::oci::etc_files::{self, Entry};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Where the records are.
pub const DIR: &str = "/run/cni/rcni/oci";

/// One container attached through the hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    /// The names it answers to (its hostname, its ID).
    pub names: Vec<String>,
    /// Its hosts file (in its bundle), when it has one of rcni's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<PathBuf>,
    /// Its network namespace as it was at createRuntime (device, inode): poststop hands the
    /// cached namespace path to DEL only while it still names that namespace (a PID, and so
    /// `/proc/PID/ns/net`, is reused once the container is gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<(u64, u64)>,
    /// Its addresses on each network, in interface order.
    pub networks: Vec<Addresses>,
}

/// A container's addresses on one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addresses {
    pub network: String,
    pub ips: Vec<IpAddr>,
}

impl Member {
    fn on(&self, network: &str) -> bool {
        self.networks.iter().any(|a| a.network == network)
    }

    fn shares_a_network(&self, other: &Member) -> bool {
        self.networks.iter().any(|a| other.on(&a.network))
    }
}

/// The records, locked while this value lives.
pub struct Registry {
    dir: PathBuf,
    _lock: std::fs::File,
}

impl Registry {
    pub fn open() -> Result<Registry, String> {
        Registry::open_in(Path::new(DIR))
    }

    pub fn open_in(dir: &Path) -> Result<Registry, String> {
        fsutil::create_dir_all_mode(dir, 0o700).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let path = dir.join(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("opening {}: {e}", path.display()))?;
        fsutil::lock_bounded(&lock, fsutil::LockMode::Exclusive).map_err(|e| format!("locking {}: {e}", path.display()))?;
        Ok(Registry { dir: dir.to_path_buf(), _lock: lock })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    pub fn get(&self, id: &str) -> Option<Member> {
        std::fs::read(self.path(id)).ok().and_then(|b| serde_json::from_slice(&b).ok())
    }

    /// Every readable record (an unreadable one is skipped: it names no one).
    pub fn all(&self) -> Vec<Member> {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut all: Vec<Member> = dir
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice(&b).ok())
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Records `m` (replacing a record of its ID) and rewrites the hosts files it concerns.
    pub fn join(&self, m: &Member) -> Result<(), String> {
        let old = self.get(&m.id);
        let data = serde_json::to_vec(m).expect("JSON");
        fsutil::write_atomic(&self.path(&m.id), &data).map_err(|e| format!("recording container {}: {e}", m.id))?;
        self.refresh(old.iter().chain([m]))
    }

    /// Removes the record of `id` (if any) and rewrites the hosts files of its peers.
    pub fn leave(&self, id: &str) -> Result<Option<Member>, String> {
        let Some(old) = self.get(id) else { return Ok(None) };
        match std::fs::remove_file(self.path(id)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("removing the record of container {id}: {e}")),
        }
        self.refresh([&old])?;
        Ok(Some(old))
    }

    /// Rewrites the hosts file of every recorded container that shares a network with one of
    /// `changed` (and of those themselves, when still recorded). A hosts file that is gone (its
    /// bundle removed) is skipped; other failures are reported after all were tried.
    fn refresh<'a>(&self, changed: impl IntoIterator<Item = &'a Member>) -> Result<(), String> {
        let changed: Vec<&Member> = changed.into_iter().collect();
        let all = self.all();
        let mut errors = Vec::new();
        for m in &all {
            if !changed.iter().any(|c| c.id == m.id || c.shares_a_network(m)) {
                continue;
            }
            let Some(path) = &m.hosts else { continue };
            let (own, peers) = entries_for(m, &all);
            let current = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    errors.push(format!("reading {} (container {}): {e}", path.display(), m.id));
                    continue;
                }
            };
            match etc_files::rewrite(path, &etc_files::hosts(&current, &own, &peers)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => errors.push(format!("rewriting {} (container {}): {e}", path.display(), m.id)),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// What `m`'s hosts file lists: its own addresses with its names, and every other member's
/// addresses on the networks it shares with `m`.
pub fn entries_for(m: &Member, all: &[Member]) -> (Vec<Entry>, Vec<Entry>) {
    let own = m
        .networks
        .iter()
        .flat_map(|a| a.ips.iter().map(|ip| Entry { ip: *ip, names: m.names.clone(), network: a.network.clone() }))
        .collect();
    let mut peers = Vec::new();
    for other in all.iter().filter(|o| o.id != m.id) {
        for a in other.networks.iter().filter(|a| m.on(&a.network)) {
            peers.extend(a.ips.iter().map(|ip| Entry { ip: *ip, names: other.names.clone(), network: a.network.clone() }));
        }
    }
    (own, peers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, hosts: &Path, nets: &[(&str, &str)]) -> Member {
        let networks = nets.iter().map(|(n, ip)| Addresses { network: n.to_string(), ips: vec![ip.parse().unwrap()] }).collect();
        Member { id: id.into(), names: vec![format!("{id}-host"), id.into()], hosts: Some(hosts.to_path_buf()), netns: None, networks }
    }

    #[test]
    fn hosts_files_follow_joins_and_leaves_of_peers_on_shared_networks_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = |n: &str| {
            let p = dir.path().join(n);
            std::fs::write(&p, etc_files::placeholder_hosts()).unwrap();
            p
        };
        let (ha, hb, hc) = (file("a"), file("b"), file("c"));
        let reg = Registry::open_in(&dir.path().join("reg")).unwrap();
        reg.join(&member("a", &ha, &[("web", "10.1.0.2")])).unwrap();
        reg.join(&member("b", &hb, &[("web", "10.1.0.3"), ("db", "10.2.0.3")])).unwrap();
        reg.join(&member("c", &hc, &[("db", "10.2.0.4")])).unwrap();
        // the name lines, without the `name.network` aliases
        let read = |p: &Path| {
            let text = std::fs::read_to_string(p).unwrap();
            text.lines()
                .filter(|l| l.starts_with("10."))
                .map(|l| {
                    let (ip, names) = l.split_once('\t').unwrap();
                    format!("{ip}\t{}", names.split(' ').filter(|n| !n.contains('.')).collect::<Vec<_>>().join(" "))
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(read(&ha), ["10.1.0.2\ta-host a", "10.1.0.3\tb-host b"], "a sees b on web, not b's db address nor c");
        assert_eq!(read(&hb), ["10.1.0.3\tb-host b", "10.2.0.3\tb-host b", "10.1.0.2\ta-host a", "10.2.0.4\tc-host c"]);
        assert_eq!(read(&hc), ["10.2.0.4\tc-host c", "10.2.0.3\tb-host b"]);
        assert_eq!(reg.leave("b").unwrap().map(|m| m.id), Some("b".to_string()));
        assert_eq!(read(&ha), ["10.1.0.2\ta-host a"]);
        assert_eq!(read(&hc), ["10.2.0.4\tc-host c"]);
        assert_eq!(reg.leave("b").unwrap(), None, "leaving twice is nothing");
        // a member whose bundle is gone does not stop the others' updates
        std::fs::remove_file(&ha).unwrap();
        reg.join(&member("d", &file("d"), &[("web", "10.1.0.5")])).unwrap();
        assert_eq!(read(&dir.path().join("d")), ["10.1.0.5\td-host d", "10.1.0.2\ta-host a"]);
        assert_eq!(reg.all().iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["a", "c", "d"]);
        // the modes of docs/state-files.md
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(dir.path().join("reg")), 0o700);
        assert_eq!(mode(dir.path().join("reg/a.json")), 0o600);
    }
}

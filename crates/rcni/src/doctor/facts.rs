//! What `rcni doctor` knows about the node: plain data, gathered in one place
//! ([`super::collect`]) and judged by the checks ([`super::checks`]), which never read the
//! system themselves — so they are tested with facts made up in the tests.

use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the checks look at.
#[derive(Debug)]
pub struct Facts {
    pub conf_dir: PathBuf,
    /// The config directory could not be listed.
    pub conf_dir_error: Option<String>,
    /// Every network file of the directory, in loader order.
    pub files: Vec<ConfFile>,
    /// The networks that load: those of the files, then rcni's embedded default network.
    pub networks: Vec<Network>,
    /// `--cni-path`, as searched.
    pub cni_path: Vec<PathBuf>,
    /// Every plugin type the networks of the directory name (IPAM types too), by type.
    pub plugins: BTreeMap<String, PluginFact>,
    pub forwarding: Forwarding,
    /// The owner-commented objects of rcni's nftables tables, or why they cannot be read.
    pub nft: Result<Vec<NftObject>, NftProblem>,
    /// The result cache's attachments, or why it cannot be read.
    pub cache: Result<Vec<CachedAttachment>, String>,
    /// Attachments whose ADD began within the plugins' grace period (`cni_plugin::pending`):
    /// `(network, containerID, ifname)`.
    pub pending: Vec<(String, String, String)>,
    /// The leases of every host-local store found.
    pub leases: Vec<Lease>,
    /// The node's links, or why they cannot be listed.
    pub links: Result<Vec<LinkFact>, String>,
    /// Files and directories whose mode matters, as found.
    pub modes: Vec<PathMode>,
    /// Problems met while collecting that no check covers (e.g. an unreadable store).
    pub unreadable: Vec<String>,
}

impl Default for Facts {
    /// A node with nothing: no networks, an empty cache, nftables without objects.
    fn default() -> Self {
        Facts {
            conf_dir: PathBuf::new(),
            conf_dir_error: None,
            files: Vec::new(),
            networks: Vec::new(),
            cni_path: Vec::new(),
            plugins: BTreeMap::new(),
            forwarding: Forwarding::default(),
            nft: Ok(Vec::new()),
            cache: Ok(Vec::new()),
            pending: Vec::new(),
            leases: Vec::new(),
            links: Ok(Vec::new()),
            modes: Vec::new(),
            unreadable: Vec::new(),
        }
    }
}

/// One file of the config directory.
#[derive(Debug, Clone, Default)]
pub struct ConfFile {
    pub path: PathBuf,
    /// The network's name, also for a broken file that has one.
    pub name: Option<String>,
    /// Why the file does not load.
    pub error: Option<String>,
}

/// Where a network comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A file of the config directory.
    File(PathBuf),
    /// rcni's embedded default network (`rcni attach` without networks; always collected by `rcni gc`).
    Default,
}

/// A network that loads.
#[derive(Debug, Clone)]
pub struct Network {
    pub name: String,
    pub origin: Origin,
    /// The version its plugins run at.
    pub cni_version: String,
    pub disable_gc: bool,
    /// Each plugin's object, as in the file (after the list's `cniVersion`/`name`).
    pub plugins: Vec<Value>,
    /// The file's JSON.
    pub raw: Value,
}

/// A plugin type, as found on `--cni-path` and as rcni ships it.
#[derive(Debug, Clone, Default)]
pub struct PluginFact {
    /// Where `--cni-path` has it.
    pub path: Option<PathBuf>,
    /// Its VERSION reply's supported versions, or why it gave none (when found).
    pub versions: Option<Result<Vec<String>, String>>,
    /// rcni's own plugin of that name: the versions it supports (`rcni attach` runs it from its
    /// own directory, before `--cni-path`).
    pub own: Option<Vec<String>>,
}

/// IP forwarding (`None`: unreadable).
#[derive(Debug, Clone, Default)]
pub struct Forwarding {
    pub v4: Option<bool>,
    pub v6: Option<bool>,
}

/// Why nftables cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftProblem {
    pub message: String,
    /// The kernel's errno, when it refused.
    pub errno: Option<i32>,
}

/// Where an nftables object is: a set element (by key) or a rule (by handle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NftPlace {
    Element { set: String, key: Vec<u8> },
    Rule { chain: String, handle: u64 },
}

/// An nftables set element or rule with a comment, in one of rcni's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftObject {
    /// `inet`, `bridge`.
    pub family: &'static str,
    pub table: String,
    pub place: NftPlace,
    pub comment: String,
}

/// An attachment of the result cache.
#[derive(Debug, Clone, Default)]
pub struct CachedAttachment {
    pub network: String,
    pub container_id: String,
    pub ifname: String,
    pub netns: String,
    /// The namespace still opens (`None`: none recorded).
    pub netns_exists: Option<bool>,
    /// How long ago the entry was written.
    pub age: Option<Duration>,
    /// The names of the result's interfaces outside the sandbox (bridge, host veth).
    pub host_ifaces: Vec<String>,
}

/// A lease file of a host-local store (`<dataDir>/<network>/<ip>`).
#[derive(Debug, Clone)]
pub struct Lease {
    pub network: String,
    pub path: PathBuf,
    pub ip: IpAddr,
    /// Its holder: container ID and interface (the old format has no interface); `None` for an
    /// empty file.
    pub holder: Option<(String, Option<String>)>,
    pub age: Option<Duration>,
}

/// A link of the node.
#[derive(Debug, Clone, Default)]
pub struct LinkFact {
    pub name: String,
    pub kind: Option<String>,
    pub alias: Option<String>,
    /// The bridge (or other master) it is a port of.
    pub master: Option<String>,
}

/// What a path is to rcni, for the permission check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathRole {
    ConfDir,
    ConfFile,
    PluginDir,
    Plugin,
    Cache,
    Store,
    RunState,
}

/// A file or directory and its mode.
#[derive(Debug, Clone)]
pub struct PathMode {
    pub path: PathBuf,
    pub mode: u32,
    pub is_dir: bool,
    pub role: PathRole,
}

impl Facts {
    /// The network of that name a loader takes: its first `.conflist`, else its first file
    /// (rcni's default network only when no file defines the name).
    pub fn network(&self, name: &str) -> Option<&Network> {
        let of = || self.networks.iter().filter(move |n| n.name == name);
        of().find(|n| matches!(&n.origin, Origin::File(p) if p.extension().is_some_and(|e| e == "conflist"))).or_else(|| of().next())
    }

    /// The networks loaders use: one per name, in file order, rcni's default last.
    pub fn effective_networks(&self) -> Vec<&Network> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for n in &self.networks {
            if seen.contains(&n.name.as_str()) {
                continue;
            }
            seen.push(n.name.as_str());
            if let Some(e) = self.network(&n.name) {
                out.push(e);
            }
        }
        out
    }

    /// The cached attachments (none when the cache cannot be read).
    pub fn attachments(&self) -> &[CachedAttachment] {
        self.cache.as_deref().unwrap_or(&[])
    }

    /// Whether the network has cached attachments.
    pub fn in_use(&self, network: &str) -> bool {
        self.attachments().iter().any(|a| a.network == network)
    }
}

impl Network {
    /// The file it comes from, or a description of where it comes from.
    pub fn source(&self) -> String {
        match &self.origin {
            Origin::File(p) => p.display().to_string(),
            Origin::Default => "rcni's embedded default network".into(),
        }
    }

    /// The plugin types it runs: its plugins' and their IPAM plugins', each once.
    pub fn types(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in &self.plugins {
            let main = p.get("type").and_then(Value::as_str);
            let ipam = p.get("ipam").and_then(|i| i.get("type")).and_then(Value::as_str);
            for t in [main, ipam].into_iter().flatten() {
                if !t.is_empty() && !out.iter().any(|x| x == t) {
                    out.push(t.to_string());
                }
            }
        }
        out
    }
}

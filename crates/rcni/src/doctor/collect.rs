//! Gathering the [`Facts`]: the one part of `rcni doctor` that reads the node — files, the
//! result cache, sysctls, nftables, links — and runs plugins (VERSION only). It changes
//! nothing: no directory is created, no expired marker removed, no lock taken.

use super::facts::*;
use cni_runtime::cache::{Cached, DEFAULT_CACHE_DIR};
use cni_runtime::{conf, invoke, Cache, Ctx};
use serde_json::Value;
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long one plugin may take to answer VERSION.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

pub fn collect(conf_dir: &Path, cni_path: &[PathBuf]) -> Facts {
    let mut f = Facts { conf_dir: conf_dir.to_path_buf(), cni_path: cni_path.to_vec(), ..Default::default() };
    networks(&mut f);
    f.plugins = plugins(&f);
    let on = |key: &str| netkit::sysctl::read(key).ok().map(|v| v.trim() == "1");
    f.forwarding = Forwarding { v4: on("net.ipv4.ip_forward"), v6: on("net/ipv6/conf/all/forwarding") };
    f.nft = nft_objects();
    f.cache = cache();
    f.pending = pending();
    let stores = stores(&f);
    f.leases = leases(&stores, &mut f.unreadable);
    f.links = links();
    f.modes = modes(&f, &stores);
    f
}

fn networks(f: &mut Facts) {
    match conf::list_networks(&f.conf_dir) {
        Err(e) => f.conf_dir_error = Some(e.to_string()),
        Ok(files) => {
            for nf in files {
                if let Ok(list) = &nf.network {
                    let raw = std::fs::read(&nf.path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null);
                    f.networks.push(network(list, Origin::File(nf.path.clone()), raw));
                }
                f.files.push(ConfFile { error: nf.network.as_ref().err().map(|e| e.to_string()), path: nf.path, name: nf.name });
            }
        }
    }
    if let Ok(list) = crate::default_network::default_network() {
        let raw = serde_json::from_str(crate::default_network::DEFAULT_NETWORK).unwrap_or(Value::Null);
        f.networks.push(network(&list, Origin::Default, raw));
    }
}

fn network(list: &cni_types::NetworkConfigList, origin: Origin, raw: Value) -> Network {
    Network {
        name: list.name.clone(),
        origin,
        cni_version: list.cni_version.clone(),
        disable_gc: list.disable_gc,
        plugins: list.plugins.iter().map(|p| Value::Object(p.conf.clone())).collect(),
        raw,
    }
}

/// Every plugin type of the directory's networks: where the plugin path has it and what it
/// answers to VERSION, and whether rcni ships it.
fn plugins(f: &Facts) -> std::collections::BTreeMap<String, PluginFact> {
    let exec = plugins::delegate::SelfExec::default();
    let mut out = std::collections::BTreeMap::new();
    for n in f.effective_networks().into_iter().filter(|n| matches!(n.origin, Origin::File(_))) {
        for t in n.types() {
            if out.contains_key(&t) {
                continue;
            }
            let path = cni_runtime::find::find_in_path(&t, &f.cni_path).ok();
            let versions = path.as_ref().map(|p| {
                invoke::get_version_info(&exec, &Ctx::with_timeout(VERSION_TIMEOUT), p)
                    .map(|i| i.supported_versions)
                    .map_err(|e| e.to_string())
            });
            let own = plugins::find(&t).map(|e| e.versions.iter().map(|v| v.to_string()).collect());
            out.insert(t, PluginFact { path, versions, own });
        }
    }
    out
}

/// The owner-commented set elements and rules of rcni's tables.
fn nft_objects() -> Result<Vec<NftObject>, NftProblem> {
    use netkit::nft::{Client, Family, Nft};
    let problem = |e: netkit::Error| NftProblem { message: e.to_string(), errno: e.errno() };
    let mut nft = Nft::new().map_err(problem)?;
    let mut out = Vec::new();
    for table in [netkit::masq::TABLE, plugins::portmap::layout::TABLE, plugins::firewall::nftables::TABLE] {
        for set in nft.sets(Family::Inet, table).map_err(problem)? {
            for e in nft.elements(Family::Inet, table, &set).map_err(problem)? {
                if let Some(comment) = e.comment {
                    out.push(NftObject {
                        family: "inet",
                        table: table.into(),
                        place: NftPlace::Element { set: set.clone(), key: e.key },
                        comment,
                    });
                }
            }
        }
    }
    // rules that belong to one attachment: the firewall's references to its bridge's isolation
    // policy, bridge's spoof check; and the rules that belong to one network: its masquerade
    // jump (`rcni masq net=<name>`)
    for (family, name, table, chain) in [
        (Family::Inet, "inet", plugins::firewall::nftables::TABLE, "members"),
        (Family::Bridge, "bridge", plugins::bridge::spoofchk::TABLE, "prerouting"),
        (Family::Inet, "inet", netkit::masq::TABLE, "postrouting"),
    ] {
        for r in nft.rules(family, table, chain).map_err(problem)? {
            if let Some(comment) = r.comment {
                out.push(NftObject {
                    family: name,
                    table: table.into(),
                    place: NftPlace::Rule { chain: chain.into(), handle: r.handle },
                    comment,
                });
            }
        }
    }
    Ok(out)
}

fn cache() -> Result<Vec<CachedAttachment>, String> {
    let cache = Cache::new(DEFAULT_CACHE_DIR);
    let all = cache.attachments("").map_err(|e| format!("reading the result cache: {e}"))?;
    Ok(all
        .iter()
        .map(|a| {
            let shown = crate::attachments::Attachment::from_cache(&cache, a);
            let host_ifaces = match cache.read(&a.network, &a.container_id, &a.ifname) {
                Ok(Cached::Entry(info)) => info
                    .raw_result
                    .get("interfaces")
                    .and_then(Value::as_array)
                    .map(|l| {
                        l.iter()
                            .filter(|i| i.get("sandbox").and_then(Value::as_str).is_none_or(str::is_empty))
                            .filter_map(|i| i.get("name").and_then(Value::as_str).map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            CachedAttachment {
                network: a.network.clone(),
                container_id: a.container_id.clone(),
                ifname: a.ifname.clone(),
                netns: a.netns.clone(),
                // only a recorded namespace counts: `rcni gc` leaves the others alone, so the
                // doctor cannot send a user there for them
                netns_exists: if a.netns.is_empty() { None } else { shown.netns_exists },
                age: shown.since.map(|t| SystemTime::now().duration_since(t).unwrap_or_default()),
                host_ifaces,
            }
        })
        .collect())
}

/// The ADDs under way, as the plugins' GC counts them (`cni_plugin::pending`), read without
/// removing the expired markers as the plugins' GC does.
fn pending() -> Vec<(String, String, String)> {
    use cni_plugin::pending;
    let grace = std::env::var("RCNI_GC_GRACE").ok().and_then(|v| pending::parse_grace(&v)).unwrap_or(pending::DEFAULT_GRACE);
    let now = SystemTime::now();
    let mut out = Vec::new();
    for net in std::fs::read_dir(pending::DIR).into_iter().flatten().flatten() {
        let network = net.file_name().to_string_lossy().into_owned();
        for e in std::fs::read_dir(net.path()).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some((id, ifname)) = name.split_once(':') else { continue };
            let Ok(modified) = e.metadata().and_then(|m| m.modified()) else { continue };
            // a marker from the future (a clock set back) counts as fresh, as for the plugins
            if now.duration_since(modified).map_or(true, |age| age < grace) {
                out.push((network.clone(), id.to_string(), ifname.to_string()));
            }
        }
    }
    out
}

/// The host-local stores: of every network that uses host-local (its `dataDir`), and every
/// directory of the default data directory (networks removed since).
fn stores(f: &Facts) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    let default = Path::new(ipam::store::DEFAULT_DATA_DIR);
    for n in &f.networks {
        for p in &n.plugins {
            let Some(i) = p.get("ipam").filter(|i| i.get("type").and_then(Value::as_str) == Some("host-local")) else { continue };
            let dir = i.get("dataDir").and_then(Value::as_str).map(Path::new).filter(|d| d.is_absolute()).unwrap_or(default);
            out.push((n.name.clone(), dir.join(&n.name)));
        }
    }
    for e in std::fs::read_dir(default).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.push((e.file_name().to_string_lossy().into_owned(), e.path()));
        }
    }
    let mut seen = Vec::new();
    out.retain(|(_, p)| {
        let new = !seen.contains(p);
        seen.push(p.clone());
        new
    });
    out
}

fn leases(stores: &[(String, PathBuf)], unreadable: &mut Vec<String>) -> Vec<Lease> {
    let mut out = Vec::new();
    for (network, dir) in stores {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                unreadable.push(format!("reading {}: {e}", dir.display()));
                continue;
            }
        };
        for e in entries.flatten() {
            let Some(ip) = cni_types::result::parse_ip(&e.file_name().to_string_lossy()) else { continue };
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let content = match std::fs::read_to_string(e.path()) {
                Ok(c) => c,
                Err(x) if x.kind() == std::io::ErrorKind::NotFound => continue,
                Err(x) => {
                    unreadable.push(format!("reading {}: {x}", e.path().display()));
                    continue;
                }
            };
            let content = content.trim();
            let holder = (!content.is_empty()).then(|| match content.split_once("\r\n") {
                Some((id, ifname)) => (id.trim().to_string(), Some(ifname.trim().to_string())),
                None => (content.to_string(), None),
            });
            let age = meta.modified().ok().map(|t| SystemTime::now().duration_since(t).unwrap_or_default());
            out.push(Lease { network: network.clone(), path: e.path(), ip, holder, age });
        }
    }
    out
}

fn links() -> Result<Vec<LinkFact>, String> {
    let mut nl = netkit::Netlink::new().map_err(|e| e.to_string())?;
    let all = nl.links().map_err(|e| e.to_string())?;
    let names: HashMap<u32, String> = all.iter().map(|l| (l.index, l.name.clone())).collect();
    Ok(all
        .into_iter()
        .map(|l| LinkFact { master: l.master.and_then(|m| names.get(&m).cloned()), name: l.name, kind: l.kind, alias: l.alias })
        .collect())
}

fn add(out: &mut Vec<PathMode>, path: &Path, meta: std::io::Result<std::fs::Metadata>, role: PathRole) {
    if let Ok(m) = meta {
        if !m.file_type().is_symlink() {
            out.push(PathMode { path: path.to_path_buf(), mode: m.permissions().mode(), is_dir: m.is_dir(), role });
        }
    }
}

/// A directory and its entries, not followed, `depth` levels of subdirectories down.
fn tree(out: &mut Vec<PathMode>, dir: &Path, role: PathRole, depth: usize) {
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, level)) = stack.pop() {
        add(out, &d, std::fs::symlink_metadata(&d), role);
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let meta = e.metadata();
            if meta.as_ref().is_ok_and(|m| m.is_dir()) {
                if level < depth {
                    stack.push((e.path(), level + 1));
                }
            } else {
                add(out, &e.path(), meta, role);
            }
        }
    }
}

/// The modes of what rcni and the runtimes trust: followed through symlinks for the config
/// files and plugins (what is read or run), not for entries of state directories.
fn modes(f: &Facts, stores: &[(String, PathBuf)]) -> Vec<PathMode> {
    let mut out = Vec::new();
    let follow = |p: &Path| std::fs::metadata(p);
    let here = |p: &Path| std::fs::symlink_metadata(p);
    add(&mut out, &f.conf_dir, follow(&f.conf_dir), PathRole::ConfDir);
    for file in &f.files {
        add(&mut out, &file.path, follow(&file.path), PathRole::ConfFile);
    }
    for d in &f.cni_path {
        add(&mut out, d, follow(d), PathRole::PluginDir);
    }
    for p in f.plugins.values().filter_map(|p| p.path.as_ref()) {
        add(&mut out, p, follow(p), PathRole::Plugin);
    }
    let cache = Path::new(DEFAULT_CACHE_DIR);
    add(&mut out, cache, here(cache), PathRole::Cache);
    tree(&mut out, &cache.join("results"), PathRole::Cache, 0);
    let data = Path::new(ipam::store::DEFAULT_DATA_DIR);
    add(&mut out, data, here(data), PathRole::Store);
    for (_, dir) in stores {
        tree(&mut out, dir, PathRole::Store, 0);
    }
    let locks = Path::new(cni_runtime::lock::LOCK_DIR);
    if let Some(run) = locks.parent() {
        add(&mut out, run, here(run), PathRole::RunState);
    }
    tree(&mut out, locks, PathRole::RunState, 1);
    tree(&mut out, Path::new(cni_plugin::pending::DIR), PathRole::RunState, 1);
    out
}

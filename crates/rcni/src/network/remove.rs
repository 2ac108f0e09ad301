//! `rcni network rm` and `prune`: a network's file goes, and with it what the network left on the
//! node that no other network uses — its bridge, its masquerade and published-port objects in
//! nftables, its host-local store directory. While the result cache records attachments of the
//! network, `rm` refuses (naming them) unless `-f`, which DELs them first. A name whose file is
//! gone (removed by another tool, without the plugins) still gets what it left removed.

use super::show::{collect, find, Shown};
use super::{lock_dir, Dir};
use crate::runtime_env::{cached_list, RuntimeEnv};
use clap::Args;
use cni_runtime::{conf, GcArgs, RuntimeConf};
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct RmArgs {
    /// Networks to remove
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Detach the network's attachments first
    #[arg(long, short = 'f')]
    pub force: bool,
    #[command(flatten)]
    pub env: RuntimeEnv,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Do not ask
    #[arg(long, short = 'f')]
    pub force: bool,
    #[command(flatten)]
    pub env: RuntimeEnv,
}

fn dir_of(env: &RuntimeEnv) -> Dir {
    Dir { conf_dir: env.conf_dir.clone() }
}

pub fn rm(a: &RmArgs) -> Result<i32, String> {
    let dir = dir_of(&a.env);
    let _lock = lock_dir(&dir.conf_dir)?;
    let all = collect(&dir)?;
    // every name first: nothing is removed when one is wrong (a name without a file may still
    // have left objects on the node: those are tried after the others)
    let mut chosen = Vec::new();
    let mut fileless = Vec::new();
    for n in &a.names {
        let s = match find(&all, n, &dir) {
            Ok(s) => s,
            Err(e) => {
                cni_types::validate::network_name(n).map_err(|_| e.clone())?;
                fileless.push((n, e));
                continue;
            }
        };
        if !s.attachments.is_empty() && !a.force {
            let list: Vec<String> = s.attachments.iter().map(|x| format!("{} {} ({})", x.container_id, x.ifname, x.netns)).collect();
            return Err(format!(
                "network {n} has {} attachment(s): {}; detach them (rcni detach), or rcni network rm -f {n} detaches them",
                list.len(),
                list.join(", ")
            ));
        }
        chosen.push(s);
    }
    let mut failed = false;
    let mut progress = crate::shared::Progress::new("network rm", chosen.len());
    for s in chosen {
        progress.step(&s.name());
        let outcome = remove_one(s, &all, &a.env);
        progress.clear();
        match outcome {
            Ok(notes) => {
                println!("{}", s.name());
                for n in notes {
                    eprintln!("  {n}");
                }
            }
            Err(e) => {
                eprintln!("rcni network rm: {}: {e}", s.name());
                failed = true;
            }
        }
    }
    for (name, not_found) in fileless {
        match remove_leftovers(name, &all, &a.env) {
            Ok(notes) if !notes.is_empty() => {
                println!("{name}");
                eprintln!("  no file of {name} in {}: removed what it left", dir.conf_dir.display());
                for n in notes {
                    eprintln!("  {n}");
                }
            }
            Ok(_) => {
                eprintln!("rcni network rm: {not_found}");
                failed = true;
            }
            Err(e) => {
                eprintln!("rcni network rm: {name}: {e}");
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

/// A network whose file is gone while what its plugins made stays — another tool removed the
/// file without running them, as `podman network rm` does: its bridge (the one `rcni network
/// create` names after it, when no other network uses it and it has no ports), its masquerade
/// and published-port objects in nftables, and its host-local store in the default place.
/// Refused while the result cache records attachments of it. Returns what went (nothing: no
/// such network left anything).
fn remove_leftovers(name: &str, all: &[Shown], env: &RuntimeEnv) -> Result<Vec<String>, String> {
    let cni = env.cni()?;
    let cached = cni.cache(&Default::default()).network_attachments(name).map_err(|e| e.to_string())?;
    if !cached.is_empty() {
        let list: Vec<String> = cached.iter().map(|x| format!("{} {}", x.container_id, x.ifname)).collect();
        return Err(format!(
            "it has no file, but the result cache records its attachments {}; rcni gc reclaims them once their namespaces are gone",
            list.join(", ")
        ));
    }
    let mut notes = Vec::new();
    let br = super::plan::bridge_name(&super::plan::network_id(name));
    if !all.iter().any(|o| o.bridge().as_deref() == Some(br.as_str())) {
        match remove_bridge(&br) {
            Ok(true) => notes.push(format!("removed bridge {br}")),
            Ok(false) => {}
            Err(e) => notes.push(format!("bridge {br} stays: {e}")),
        }
    }
    remove_nft_objects(name, &mut notes);
    let store = Path::new(ipam::store::DEFAULT_DATA_DIR).join(name);
    if !all.iter().any(|o| host_local_stores(&o.raw, &o.name()).contains(&store)) {
        match remove_store(&store) {
            Ok(true) => notes.push(format!("removed {}", store.display())),
            Ok(false) => {}
            Err(e) => notes.push(format!("{} stays: {e}", store.display())),
        }
    }
    Ok(notes)
}

/// The network's masquerade and published-port objects in nftables.
fn remove_nft_objects(name: &str, notes: &mut Vec<String>) {
    match netkit::nft::shared() {
        Ok(mut nft) => {
            match netkit::masq::remove_network(&mut *nft, name) {
                Ok(true) => notes.push("removed its masquerade objects".into()),
                Ok(false) => {}
                Err(e) => notes.push(format!("its masquerade objects stay: {e}")),
            }
            match plugins::portmap::layout::remove_network(&mut *nft, name) {
                Ok(true) => notes.push("removed its published-port objects".into()),
                Ok(false) => {}
                Err(e) => notes.push(format!("its published-port objects stay: {e}")),
            }
        }
        Err(e) => notes.push(format!("nftables not reachable, its objects stay: {e}")),
    }
}

pub fn prune(a: &PruneArgs) -> Result<i32, String> {
    let dir = dir_of(&a.env);
    let _lock = lock_dir(&dir.conf_dir)?;
    let all = collect(&dir)?;
    let unused: Vec<&Shown> = all.iter().filter(|s| s.rcni_made() && s.attachments.is_empty()).collect();
    if unused.is_empty() {
        return Ok(0);
    }
    if !a.force && std::io::stdin().is_terminal() {
        eprint!("This removes {} network(s) rcni created that have no attachment. Continue? [y/N] ", unused.len());
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    println!("Deleted Networks:");
    let mut failed = false;
    let mut progress = crate::shared::Progress::new("network prune", unused.len());
    for s in unused {
        progress.step(&s.name());
        let outcome = remove_one(s, &all, &a.env);
        progress.clear();
        match outcome {
            Ok(_) => println!("{}", s.name()),
            Err(e) => {
                eprintln!("rcni network prune: {}: {e}", s.name());
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

/// Removes one network: its attachments (DEL with their cached configs), what the plugins can
/// reclaim (GC with nothing valid, for rcni's own plugins in the list), the file(s), then the
/// bridge, nftables objects and host-local store nobody else uses. Returns notes on what went.
fn remove_one(s: &Shown, all: &[Shown], env: &RuntimeEnv) -> Result<Vec<String>, String> {
    let name = s.name();
    let cni = env.cni()?;
    let ctx = env.ctx();
    let mut notes = Vec::new();
    // (the cache read once: `s.attachments` came from it)
    let cached = if s.attachments.is_empty() {
        Vec::new()
    } else {
        cni.cache(&Default::default()).network_attachments(&name).map_err(|e| e.to_string())?
    };
    for a in &s.attachments {
        if let Some(att) = cached.iter().find(|x| x.container_id == a.container_id && x.ifname == a.ifname) {
            let list = cached_list(att, &env.conf_dir)?;
            cni.del_network_list(&ctx, &list, &RuntimeConf::from(att))
                .map_err(|e| format!("detaching {} {}: {e}", a.container_id, a.ifname))?;
            notes.push(format!("detached {} {}", a.container_id, a.ifname));
        }
    }
    // what no cache remembered: rcni's plugins of the list reclaim it (GC, spec 1.1, whatever
    // the list's version; ADDs in progress keep their grace period)
    if let Ok(list) = &s.file.network {
        let mut gc_list = list.clone();
        gc_list.plugins.retain(|p| plugins::find(&p.plugin_type).is_some());
        if !gc_list.plugins.is_empty() {
            gc_list.cni_version = "1.1.0".into();
            for p in &mut gc_list.plugins {
                p.cni_version = "1.1.0".into();
                p.conf.insert("cniVersion".into(), Value::String("1.1.0".into()));
            }
            gc_list.bytes = Vec::new();
            if let Err(e) = cni.gc_plugins(&ctx, &gc_list, Some(&GcArgs { valid_attachments: Vec::new() })) {
                notes.push(format!("GC of what the network's attachments left: {e}"));
            }
        }
    }
    let removed = conf::remove_network(&env.conf_dir, &name).map_err(|e| e.to_string())?;
    for f in &removed {
        notes.push(format!("removed {}", f.display()));
    }
    // the node: only what no remaining network names
    let others: Vec<&Shown> = all.iter().filter(|o| o.name() != name).collect();
    if let Some(br) = s.bridge().filter(|b| !others.iter().any(|o| o.bridge().as_deref() == Some(b.as_str()))) {
        match remove_bridge(&br) {
            Ok(true) => notes.push(format!("removed bridge {br}")),
            Ok(false) => {}
            Err(e) => notes.push(format!("bridge {br} stays: {e}")),
        }
    }
    remove_nft_objects(&name, &mut notes);
    for store in host_local_stores(&s.raw, &name) {
        match remove_store(&store) {
            Ok(true) => notes.push(format!("removed {}", store.display())),
            Ok(false) => {}
            Err(e) => notes.push(format!("{} stays: {e}", store.display())),
        }
    }
    Ok(notes)
}

/// The bridge, if it is one without ports (another container may have joined it meanwhile).
fn remove_bridge(name: &str) -> Result<bool, String> {
    let mut nl = netkit::Netlink::new().map_err(|e| e.to_string())?;
    let br = match nl.link_by_name(name) {
        Ok(l) => l,
        Err(e) if e.is_not_found() => return Ok(false),
        Err(e) => return Err(e.to_string()),
    };
    if br.kind.as_deref() != Some("bridge") {
        return Ok(false);
    }
    if nl.links().map_err(|e| e.to_string())?.iter().any(|l| l.master == Some(br.index)) {
        return Err("it still has ports".into());
    }
    nl.del_link(br.index).map_err(|e| e.to_string())?;
    Ok(true)
}

/// `<dataDir>/<network>` of every host-local IPAM the file names.
fn host_local_stores(v: &Value, network: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let plugins: Vec<&Value> = match v.get("plugins") {
        Some(Value::Array(p)) => p.iter().collect(),
        _ => vec![v],
    };
    for p in plugins {
        let Some(ipam) = p.get("ipam") else { continue };
        if ipam.get("type").and_then(Value::as_str) != Some("host-local") {
            continue;
        }
        let dir = ipam.get("dataDir").and_then(Value::as_str).filter(|d| !d.is_empty()).unwrap_or(ipam::store::DEFAULT_DATA_DIR);
        let path = Path::new(dir).join(network);
        if Path::new(dir).is_absolute() && !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

/// A host-local store without leases: its lock, `last_reserved_ip.*`, index and directory.
fn remove_store(dir: &Path) -> Result<bool, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.to_string()),
    };
    for e in entries.flatten() {
        if cni_types::result::parse_ip(&e.file_name().to_string_lossy()).is_some() {
            return Err(format!("it still holds the lease {}", e.file_name().to_string_lossy()));
        }
    }
    std::fs::remove_dir_all(dir).map_err(|e| e.to_string())?;
    Ok(true)
}

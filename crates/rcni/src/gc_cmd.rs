//! `rcni gc`: reclaims what attachments whose network namespace is gone left behind.
//!
//! For every network of the config directory (and rcni's embedded default network), under the
//! network's exclusive lock (rcni's attach and detach hold it shared):
//! 1. each cached attachment of the network is judged: its namespace still opens → live; no
//!    namespace recorded (older runtimes) or a cache entry younger than the grace period (an ADD
//!    of another runtime may be in flight) → left alone and reported; else stale → DEL with the
//!    configuration and arguments its cache recorded;
//! 2. for lists of spec 1.1.0 and later, GC goes to every plugin with the live and left-alone
//!    attachments as `cni.dev/valid-attachments` (libcni's `GCNetworkList`), so plugins also
//!    reclaim objects no cache entry remembers — except those of attachments whose ADD began
//!    within the grace period (`RCNI_GC_GRACE`, set from `--grace-period`; see
//!    `cni_plugin::pending`), which no cache lists yet.
//!
//! Networks that only the cache still knows (removed from the directory; the loopback network
//! of `rcni attach`) get step 1 with their cached configuration. The cache read is the default
//! one (`/var/lib/cni`): attachments a runtime cached elsewhere are invisible here, and step 2
//! would reclaim their objects on a network both share.
//!
//! Prints what it reclaimed (or JSON with `--json`); exits 1 when anything could not be
//! reclaimed.

use crate::default_network::{default_network, DEFAULT_NETWORK_NAME};
use crate::exit::{exit_code, fail};
use crate::runtime_env::{cached_list, lock_network_exclusive, RuntimeEnv};
use clap::Args;
use cni_runtime::{conf, Cache, CniConfig, GcArgs, NetworkAttachment, RuntimeConf};
use cni_types::config::GcAttachment;
use cni_types::NetworkConfigList;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

#[derive(Args)]
pub struct GcArgsCli {
    #[command(flatten)]
    pub env: RuntimeEnv,
    /// Attachments cached, or whose ADD began (in any runtime), less than this many seconds
    /// ago are left alone
    #[arg(long, default_value_t = 60)]
    pub grace_period: u64,
    /// Only this network (repeatable); default: every network
    #[arg(long = "network", short = 'n')]
    pub networks: Vec<String>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

/// What happened to one network.
#[derive(Default)]
struct Report {
    network: String,
    reclaimed: Vec<Value>,
    /// Temporary cache files of killed writers.
    removed_files: Vec<PathBuf>,
    left: Vec<Value>,
    live: usize,
    gc_sent: bool,
    errors: Vec<String>,
}

fn describe(a: &NetworkAttachment) -> Value {
    json!({"containerID": a.container_id, "ifname": a.ifname, "netns": a.netns})
}

/// How old a cache entry is (`None`: unknown, e.g. the file vanished meanwhile).
fn age(cache: &Cache, a: &NetworkAttachment) -> Option<Duration> {
    let file = cache.file_path(&a.network, &a.container_id, &a.ifname).ok()?;
    let modified = std::fs::metadata(file).ok()?.modified().ok()?;
    Some(SystemTime::now().duration_since(modified).unwrap_or_default())
}

fn networks(g: &GcArgsCli) -> Result<Vec<NetworkConfigList>, String> {
    let mut lists: Vec<NetworkConfigList> =
        conf::load_all(&g.env.conf_dir, 0).map_err(|e| e.to_string())?.into_iter().map(|(_, l)| l).collect();
    if !lists.iter().any(|l| l.name == DEFAULT_NETWORK_NAME) {
        lists.push(default_network()?);
    }
    if !g.networks.is_empty() {
        lists.retain(|l| g.networks.contains(&l.name));
    }
    Ok(lists)
}

/// Networks the result cache has attachments of but `lists` lacks, in name order (only those
/// asked for, when `--network` is given).
fn cache_only(g: &GcArgsCli, cni: &CniConfig, lists: &[NetworkConfigList]) -> Vec<String> {
    let mut names: Vec<String> = cni.get_cached_attachments("").unwrap_or_default().into_iter().map(|a| a.network).collect();
    names.sort();
    names.dedup();
    names.retain(|n| !lists.iter().any(|l| &l.name == n) && (g.networks.is_empty() || g.networks.contains(n)));
    names
}

/// What becomes of a cached attachment.
enum Verdict {
    Live,
    LeftAlone(&'static str),
    Stale,
}

fn judge(cache: &Cache, a: &NetworkAttachment, grace: Duration) -> Verdict {
    if a.netns.is_empty() {
        Verdict::LeftAlone("its cache records no network namespace")
    } else if netkit::NetNs::open(&a.netns).is_ok() {
        Verdict::Live
    } else if age(cache, a).is_none_or(|t| t < grace) {
        Verdict::LeftAlone("younger than the grace period")
    } else {
        Verdict::Stale
    }
}

/// Judges and reclaims the cached attachments of network `name`; then, when the network's list
/// is known (`list`: from the config directory or rcni's default) and of 1.1.0 or later, GCs
/// its plugins.
fn collect(g: &GcArgsCli, cni: &CniConfig, name: &str, list: Option<&NetworkConfigList>) -> Report {
    let mut r = Report { network: name.to_string(), ..Default::default() };
    let _lock = match lock_network_exclusive(name) {
        Ok(l) => l,
        Err(e) => {
            r.errors.push(e);
            return r;
        }
    };
    let cache = cni.cache(&Default::default());
    let ctx = g.env.ctx();
    let grace = Duration::from_secs(g.grace_period);
    // read under the lock: an attachment added while we waited for it must count as valid
    let cached = match cache.network_attachments(name) {
        Ok(c) => c,
        Err(e) => {
            r.errors.push(format!("reading the result cache: {e}"));
            return r;
        }
    };
    let mut valid = Vec::new();
    for a in &cached {
        match judge(&cache, a, grace) {
            Verdict::Live => r.live += 1,
            Verdict::LeftAlone(why) => {
                let mut d = describe(a);
                d["reason"] = why.into();
                r.left.push(d);
            }
            Verdict::Stale => {
                let del = cached_list(a, &g.env.conf_dir)
                    .and_then(|l| cni.del_network_list(&ctx, &l, &RuntimeConf::from(a)).map_err(|e| e.to_string()));
                match del {
                    Ok(()) => r.reclaimed.push(describe(a)),
                    Err(e) => r.errors.push(format!("DEL {} {}: {e}", a.container_id, a.ifname)),
                }
                continue;
            }
        }
        valid.push(GcAttachment { container_id: a.container_id.clone(), ifname: a.ifname.clone() });
    }
    let (removed, failed) = cache.remove_stale_temp_files(name, grace);
    r.removed_files = removed;
    r.errors.extend(failed.iter().map(|e| e.to_string()));
    if let Some(list) = list {
        match cni.gc_plugins(&ctx, list, Some(&GcArgs { valid_attachments: valid })) {
            Ok(sent) => r.gc_sent = sent,
            Err(e) => {
                r.gc_sent = true;
                r.errors.push(format!("GC: {e}"));
            }
        }
    }
    r
}

pub fn gc(g: GcArgsCli) -> i32 {
    exit_code("gc", run_gc(&g))
}

/// Collects every network (or those asked for); the exit code is 1 when anything could not be
/// reclaimed (those errors are reported as they come, per network).
fn run_gc(g: &GcArgsCli) -> Result<i32, String> {
    // the plugins' protection of ADDs in progress (cni_plugin::pending) follows the same grace
    // period; they read it from the environment, in-process and exec'd alike (this process has
    // no other threads yet)
    std::env::set_var("RCNI_GC_GRACE", g.grace_period.to_string());
    let lists = networks(g)?;
    let cni = g.env.cni()?;
    // networks only the cache knows (e.g. removed from the config directory, or the loopback
    // network of `rcni attach`): their stale attachments are DELed with the cached config
    let others = cache_only(g, &cni, &lists);
    if let Some(n) = g.networks.iter().find(|n| !lists.iter().any(|l| &l.name == *n) && !others.contains(n)) {
        return Err(format!("no network {n:?} in {} or in the result cache", g.env.conf_dir.display()));
    }
    let mut progress = crate::shared::Progress::new("gc", lists.len() + others.len());
    let mut reports: Vec<Report> = Vec::new();
    for l in &lists {
        progress.step(&l.name);
        reports.push(collect(g, &cni, &l.name, Some(l)));
    }
    for n in &others {
        progress.step(n);
        reports.push(collect(g, &cni, n, None));
    }
    drop(progress);
    let failed = reports.iter().any(|r| !r.errors.is_empty());
    if g.json {
        let nets: Vec<Value> = reports
            .iter()
            .map(|r| {
                json!({"network": r.network, "reclaimed": r.reclaimed, "removedFiles": r.removed_files, "leftAlone": r.left, "live": r.live,
                       "gcSent": r.gc_sent, "errors": r.errors})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&json!({"networks": nets})).expect("JSON"));
    } else {
        for r in &reports {
            for f in &r.removed_files {
                println!("{}: removed {} (left by a writer that was killed)", r.network, f.display());
            }
            for a in &r.reclaimed {
                println!(
                    "{}: reclaimed {} {} (namespace {} is gone)",
                    r.network,
                    a["containerID"].as_str().unwrap_or(""),
                    a["ifname"].as_str().unwrap_or(""),
                    a["netns"].as_str().unwrap_or("")
                );
            }
            for a in &r.left {
                println!(
                    "{}: left {} {}: {}",
                    r.network,
                    a["containerID"].as_str().unwrap_or(""),
                    a["ifname"].as_str().unwrap_or(""),
                    a["reason"].as_str().unwrap_or("")
                );
            }
            for e in &r.errors {
                fail("gc", format_args!("{}: {e}", r.network));
            }
            println!(
                "{}: {} reclaimed, {} live, {} left alone{}",
                r.network,
                r.reclaimed.len(),
                r.live,
                r.left.len(),
                if r.gc_sent { ", plugins garbage-collected" } else { "" }
            );
        }
    }
    Ok(if failed { crate::exit::FAILURE } else { 0 })
}

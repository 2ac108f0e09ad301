//! `cnitool`: a drop-in for Go's (v1.3 behaviour, with main's `-i/--ifname`).
//!
//! `cnitool [-i IFNAME] add|check|del|gc|status <net> <netns>`, configured by `NETCONFPATH`,
//! `CNI_PATH`, `CNI_ARGS`, `CAP_ARGS` and `CNI_IFNAME`. The container ID is derived from the
//! netns path as Go does, so either tool can delete what the other added. One deliberate
//! difference: an unknown command prints the usage and exits 1 (Go exits 0 silently).

use cni_runtime::{conf, CniConfig, Ctx, RuntimeConf};
use serde_json::{Map, Value};
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::{Component, Path, PathBuf};

const DEFAULT_NET_DIR: &str = "/etc/cni/net.d";

fn usage(exe: &str) -> String {
    format!(
        "{exe}: Add, check, remove, gc or status network interfaces from a network namespace\n\
         \x20 {exe} [-i IFNAME] add    <net> <netns>\n\
         \x20 {exe} [-i IFNAME] check  <net> <netns>\n\
         \x20 {exe} [-i IFNAME] del    <net> <netns>\n\
         \x20 {exe} [-i IFNAME] gc     <net> <netns>\n\
         \x20 {exe} [-i IFNAME] status <net> <netns>\n"
    )
}

/// `cnitool-` + hex of the first 10 bytes of SHA-512 of the absolute netns path.
pub fn container_id(netns_abs: &str) -> String {
    netkit::owner::hashed_name("cnitool-", netns_abs, "cnitool-".len() + 20)
}

/// Go's `filepath.Abs`: joined with the working directory and cleaned lexically (symlinks are
/// not resolved).
pub fn absolute(path: &str) -> std::io::Result<String> {
    let p = Path::new(path);
    let joined = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Ok(out.to_string_lossy().into_owned())
}

/// cnitool's stricter `CNI_ARGS` parsing: every pair needs a non-empty key and value.
fn parse_cni_args(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(';')
        .map(|pair| {
            let kv: Vec<&str> = pair.split('=').collect();
            if kv.len() != 2 || kv[0].is_empty() || kv[1].is_empty() {
                return Err(format!("invalid CNI_ARGS pair {}", cni_types::gojson::quote(pair)));
            }
            Ok((kv[0].to_string(), kv[1].to_string()))
        })
        .collect()
}

struct Invocation {
    command: String,
    net: String,
    netns: String,
    ifname: Option<String>,
}

fn parse_argv(args: &[OsString]) -> Result<Invocation, ()> {
    let mut positional = Vec::new();
    let mut ifname = None;
    let mut it = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = it.next() {
        match a.as_str() {
            "-i" | "--ifname" => ifname = Some(it.next().ok_or(())?),
            s if s.starts_with("--ifname=") => ifname = Some(s["--ifname=".len()..].to_string()),
            "-h" | "--help" => return Err(()),
            _ => positional.push(a),
        }
    }
    if positional.len() < 3 {
        return Err(());
    }
    Ok(Invocation { command: positional[0].clone(), net: positional[1].clone(), netns: positional[2].clone(), ifname })
}

pub fn main(args: &[OsString]) -> i32 {
    let exe = "cnitool";
    let Ok(inv) = parse_argv(args) else {
        eprint!("{}", usage(exe));
        return 1;
    };
    if !matches!(inv.command.as_str(), "add" | "check" | "del" | "gc" | "status") {
        eprint!("{}", usage(exe));
        return 1;
    }
    match run(&inv) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

fn run(inv: &Invocation) -> Result<(), String> {
    let netdir = std::env::var("NETCONFPATH").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| DEFAULT_NET_DIR.into());
    let list = conf::load_network_conf(Path::new(&netdir), &inv.net).map_err(|e| e.to_string())?;
    let capability_args: Map<String, Value> = match std::env::var("CAP_ARGS") {
        Ok(s) if !s.is_empty() => serde_json::from_str(&s).map_err(|e| e.to_string())?,
        _ => Map::new(),
    };
    let args = match std::env::var("CNI_ARGS") {
        Ok(s) if !s.is_empty() => parse_cni_args(&s)?,
        _ => Vec::new(),
    };
    let ifname = inv
        .ifname
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("CNI_IFNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "eth0".into());
    let netns = absolute(&inv.netns).map_err(|e| e.to_string())?;
    let rt = RuntimeConf { container_id: container_id(&netns), netns, ifname, args, capability_args, cache_dir: None };
    // rcni's own plugins (this binary under their names) run in-process; others are executed
    let cni = CniConfig::new(cni_runtime::find::split_path_list(&std::env::var("CNI_PATH").unwrap_or_default()))
        .with_exec(std::sync::Arc::new(plugins::delegate::SelfExec::default()));
    let ctx = Ctx::background();
    let started = std::time::Instant::now();
    let res = match inv.command.as_str() {
        "add" => cni.add_network_list(&ctx, &list, &rt).map(|result| {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&result.to_json_pretty());
            if out.is_terminal() {
                let _ = out.write_all(b"\n");
            }
        }),
        "check" => cni.check_network_list(&ctx, &list, &rt),
        "del" => cni.del_network_list(&ctx, &list, &rt),
        // Go's cnitool passes no valid list, which libcni turns into "DEL every cached attachment"
        // and a GC without the key — which rcni's plugins rightly read as "remove nothing". After
        // the DELs nothing is valid: say so, so that the plugins reclaim what no cache remembers
        "gc" => cni.gc_network_list(&ctx, &list, Some(&cni_runtime::GcArgs { valid_attachments: Vec::new() })),
        "status" => cni.get_status_network_list(&ctx, &list),
        _ => unreachable!("command checked"),
    };
    // RCNI_TRACE: the library reported each plugin run; the total closes the report
    match std::env::var("RCNI_TRACE").as_deref() {
        Ok("json") => eprintln!("{}", serde_json::json!({"totalMs": (started.elapsed().as_secs_f64() * 1e6).round() / 1e3})),
        Ok(v) if !v.is_empty() && v != "0" => eprintln!("trace: total {:.3} ms", started.elapsed().as_secs_f64() * 1e3),
        _ => {}
    }
    res.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_id_matches_go() {
        assert_eq!(container_id("/var/run/netns/cnitest-t1"), "cnitool-87d9f92c739b6acee406");
    }

    #[test]
    fn absolute_cleans_lexically() {
        assert_eq!(absolute("/var/run/../run/netns/./x").unwrap(), "/var/run/netns/x");
        assert_eq!(absolute("/").unwrap(), "/");
        assert!(absolute("rel").unwrap().ends_with("/rel"));
    }

    #[test]
    fn strict_cni_args() {
        assert_eq!(parse_cni_args("A=1;B=2").unwrap().len(), 2);
        assert_eq!(parse_cni_args("A=").unwrap_err(), r#"invalid CNI_ARGS pair "A=""#);
        assert!(parse_cni_args("A=1;").is_err());
    }

    #[test]
    fn argv_forms() {
        let a = |v: &[&str]| parse_argv(&v.iter().map(OsString::from).collect::<Vec<_>>());
        let inv = a(&["-i", "eth1", "add", "n", "/ns"]).ok().unwrap();
        assert_eq!((inv.command.as_str(), inv.ifname.as_deref()), ("add", Some("eth1")));
        let inv = a(&["del", "n", "/ns", "--ifname=net1"]).ok().unwrap();
        assert_eq!(inv.ifname.as_deref(), Some("net1"));
        assert!(a(&["add", "n"]).is_err());
        assert!(a(&["add", "n", "/ns", "-i"]).is_err());
    }
}

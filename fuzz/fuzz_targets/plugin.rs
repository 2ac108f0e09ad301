//! Whole plugins: stdin and the `CNI_*` environment through the SDK's dispatcher into each of
//! rcni's plugins, a few commands in a row, with the kernel out of reach: this build cuts netkit
//! off from it (no netlink socket opens, no namespace is entered, no sysctl written, iptables
//! never runs) and nftables is netkit's in-memory fake. Files stay in a scratch directory: every
//! key that names a state directory (`dataDir`, `ipam.dataDir`, `ipam.resolvConf`) is pointed
//! there, and CNI_NETNS only ever names a path there. Nothing panics; a plugin exits 0 or 1;
//! a failure prints CNI error JSON, an ADD a result of the config's version; a DEL that
//! succeeded succeeds again; inside the netsandbox, the default state directories (`/var/lib/cni`,
//! `/run/cni`, ...) stay empty.
//!
//! Input: line 1 the plugin (its name, else the first byte picks one), line 2 the commands
//! (`ADD,CHECK,DEL`...; at most 4), line 3 CNI_CONTAINERID, line 4 CNI_IFNAME, line 5 CNI_ARGS,
//! line 6 flags (digit 0: CNI_NETNS missing / absent file / a regular file / empty; digit 1:
//! CNI_PATH empty or an empty directory; digit 2: CNI_NETNS_OVERRIDE), then the stdin.
#![no_main]

use cni_types::{CniError, CniResult};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// stdin with every state path in `root`, or `None` when that cannot be done for sure (JSON
/// that does not parse as a value, yet might as a plugin's struct, which skips what it ignores).
/// `<scratch>/plugin`: the files CNI_NETNS and CNI_PATH may name and the resolv.conf, made
/// once; the plugins' state goes to `state/` below it, emptied for every input.
fn fixtures() -> &'static Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let root = rcni_fuzz::fresh_dir("plugin");
        std::fs::write(root.join("state-resolv.conf"), "nameserver 192.0.2.53\nsearch example.test\noptions ndots:2\n").unwrap();
        std::fs::write(root.join("not-a-netns"), "").unwrap();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        root
    })
}

fn confine(stdin: &[u8], root: &Path, host_local: bool) -> Option<Vec<u8>> {
    let path = |p: &str| Value::String(root.join(p).to_string_lossy().into_owned());
    match serde_json::from_slice::<Value>(stdin) {
        Ok(Value::Object(mut m)) => {
            m.insert("dataDir".into(), path("tuning"));
            if host_local && m.get("ipam").is_none_or(Value::is_null) {
                m.insert("ipam".into(), Value::Object(Default::default()));
            }
            if let Some(Value::Object(ipam)) = m.get_mut("ipam") {
                ipam.insert("dataDir".into(), path("networks"));
                // dhcp's daemon socket: a path nothing listens on (the build refuses to connect anyway)
                ipam.insert("daemonSocketPath".into(), path("dhcp.sock"));
                if ipam.contains_key("resolvConf") {
                    ipam.insert("resolvConf".into(), Value::String(format!("{}-resolv.conf", root.display())));
                }
            }
            Some(serde_json::to_vec(&Value::Object(m)).expect("serialises"))
        }
        Ok(_) => Some(stdin.to_vec()),
        // nothing can decode what serde_json cannot even skip over
        Err(_) if serde_json::from_slice::<serde::de::IgnoredAny>(stdin).is_err() => Some(stdin.to_vec()),
        Err(_) => None,
    }
}

/// `RCNI_FUZZ_DEBUG=1` prints what each command answered (for running single inputs).
fn debug() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("RCNI_FUZZ_DEBUG").is_some())
}

/// Inside the netsandbox (`scripts/fuzz` says so), the default state directories are fresh and
/// empty: anything a plugin leaves there is a write outside the scratch directory.
fn check_default_dirs_untouched() {
    static IN_SANDBOX: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*IN_SANDBOX.get_or_init(|| std::env::var_os("RCNI_FUZZ_IN_NETSANDBOX").is_some()) {
        return;
    }
    for d in ["/var/lib/cni", "/run/cni", "/etc/cni/net.d", "/etc/cni/tuning", "/run/netns", "/opt/cni/bin"] {
        let left: Vec<_> = std::fs::read_dir(d).map(|r| r.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        assert!(left.is_empty(), "a plugin wrote outside the scratch directory: {left:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    assert!(netkit::fuzzing::kernel_cut_off());
    let Some((h, body)) = rcni_fuzz::header(data, 6) else { return };
    let entry =
        plugins::find(h[0]).unwrap_or_else(|| &plugins::PLUGINS[h[0].bytes().next().unwrap_or(0) as usize % plugins::PLUGINS.len()]);
    let root = fixtures();
    let Some(stdin) = confine(body, &root.join("state"), entry.name == "host-local") else { return };
    let _ = std::fs::remove_dir_all(root.join("state"));
    let flag = |i: usize| h[5].as_bytes().get(i).map(|b| b.wrapping_sub(b'0')).unwrap_or(0);
    let netns = match flag(0) % 4 {
        0 => None,
        1 => Some(root.join("no-such-netns").to_string_lossy().into_owned()),
        2 => Some(root.join("not-a-netns").to_string_lossy().into_owned()),
        _ => Some(String::new()),
    };
    let cni_path = if flag(1) % 2 == 0 { root.join("bin").to_string_lossy().into_owned() } else { String::new() };
    let about = cni_plugin::About::new(entry.name, entry.description, entry.versions);
    let conf_version = cni_types::result::decode_version(&stdin).ok();

    netkit::fuzzing::reset();
    for command in h[1].split(',').take(4) {
        let mut env: HashMap<&str, String> = HashMap::new();
        env.insert("CNI_COMMAND", command.to_string());
        env.insert("CNI_CONTAINERID", h[2].to_string());
        env.insert("CNI_IFNAME", h[3].to_string());
        env.insert("CNI_ARGS", h[4].to_string());
        env.insert("CNI_PATH", cni_path.clone());
        // the SDK marks ADDs in progress for GC (cni_plugin::pending): in the scratch directory too
        env.insert("RCNI_PENDING_DIR", root.join("state/adding").to_string_lossy().into_owned());
        if let Some(n) = &netns {
            env.insert("CNI_NETNS", n.clone());
        }
        if flag(2) % 2 == 1 {
            env.insert("CNI_NETNS_OVERRIDE", "1".into());
        }
        let getenv = |k: &str| env.get(k).cloned();
        let run = || {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let code = cni_plugin::dispatch(entry.plugin, &about, &getenv, &mut &stdin[..], &mut out, &mut err);
            (code, out)
        };
        let (code, out) = run();
        if debug() {
            let compact = serde_json::from_slice::<Value>(&out).map(|v| v.to_string());
            eprintln!("{} {command} -> {code}: {}", entry.name, compact.unwrap_or_else(|_| String::from_utf8_lossy(&out).into_owned()));
        }
        match code {
            0 if command == "ADD" => {
                let v = conf_version.as_deref().expect("an ADD that succeeded had a versioned config");
                CniResult::create(v, &out)
                    .unwrap_or_else(|e| panic!("{} ADD printed no {v} result ({e}): {}", entry.name, String::from_utf8_lossy(&out)));
            }
            0 => {}
            1 => {
                let e: CniError = serde_json::from_slice(&out).unwrap_or_else(|e| {
                    panic!("{} {command} failed without CNI error JSON ({e}): {}", entry.name, String::from_utf8_lossy(&out))
                });
                assert_ne!(e.code, 0, "{} {command}: an error with code 0: {e:?}", entry.name);
            }
            other => panic!("{} {command} exited {other}", entry.name),
        }
        if command == "DEL" && code == 0 {
            let (again, out) = run();
            assert_eq!(again, 0, "{} DEL succeeded, then failed: {}", entry.name, String::from_utf8_lossy(&out));
        }
    }
    check_default_dirs_untouched();
});

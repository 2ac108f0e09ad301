//! Permissions (netsandbox only): every state file rcni writes, and its directory, has the mode
//! docs/state-files.md lists, after a real ADD of the full chain and under umask 0 — so a mode
//! that only holds because of the usual umask 022 fails here.
//!
//! Subnet 172.28.60.0/24, bridge rcniperm, namespaces rcni-perm-*.

use rcni_tests::{rcni_bin, require_netsandbox, Installed, TestNetns};
use serde_json::json;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `program args…` run under umask 0 (through `sh`, which sets it and execs the program).
fn umask0(program: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", "umask 000 && exec \"$0\" \"$@\""]).arg(program).args(args);
    c
}

fn checked(what: &str, out: Output) -> Output {
    assert!(out.status.success(), "{what} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

/// Kind and mode of `p` (not following a final symlink) as `"d 0700"`, `"f 0600"`, `"l 0777"`.
fn mode(p: &Path) -> String {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let kind = if m.is_dir() {
        'd'
    } else if m.file_type().is_symlink() {
        'l'
    } else {
        'f'
    };
    format!("{kind} {:04o}", m.mode() & 0o7777)
}

/// Every entry under `root` (not `root` itself), by path relative to it.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = mode(&p);
            if m.starts_with('d') {
                stack.push(p.clone());
            }
            out.insert(p.strip_prefix(root).unwrap().to_string_lossy().into_owned(), m);
        }
    }
    out
}

fn assert_mode(p: impl AsRef<Path>, want: &str) {
    let p = p.as_ref();
    assert_eq!(mode(p), want, "{} (documented: {want})", p.display());
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn state_files_have_their_documented_modes_under_umask_0() {
    require_netsandbox();
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
    let inst = Installed::new();
    let conf = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // neither directory exists yet: the plugins make them, and their missing parent
    let state = tmp.path().join("state");
    let (leases, tuning) = (state.join("leases"), state.join("tuning"));
    let net = "permnet";
    let list = json!({"cniVersion": "1.1.0", "name": net, "plugins": [
        {"type": "bridge", "bridge": "rcniperm", "isGateway": true, "ipMasq": true, "macspoofchk": true,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "172.28.60.0/24"}]], "dataDir": leases}},
        {"type": "portmap", "capabilities": {"portMappings": true}},
        {"type": "firewall"},
        {"type": "tuning", "mtu": 1400, "dataDir": tuning},
        {"type": "bandwidth", "ingressRate": 8_000_000, "ingressBurst": 800_000, "egressRate": 8_000_000, "egressBurst": 800_000}]});
    std::fs::write(conf.path().join("permnet.conflist"), list.to_string()).unwrap();
    let ns = TestNetns::new("rcni-perm-a");
    let id = "rcni-perm-a";
    let cli = |verb: &str| {
        // target/…/debug/rcni has no applet links beside it: rcni makes /run/cni/rcni-bin
        let args = [verb, &ns.name, "--conf-dir", conf.path().to_str().unwrap(), "--cni-path", inst.dir.path().to_str().unwrap()];
        let mut c = umask0(&rcni_bin(), &args);
        if verb == "attach" {
            c.args(["-n", net, "-p", "47601:80"]);
        }
        checked(&format!("rcni {verb}"), c.output().unwrap())
    };
    cli("attach");

    let (dir, file) = ("d 0700", "f 0600");
    // host-local's and tuning's state: exactly these entries, with exactly these modes
    let got = tree(&state);
    let lease_entry = got.keys().find(|k| k.starts_with("leases/permnet/.rcni-by-id/")).cloned().expect("a lease index entry");
    let want: BTreeMap<String, String> = [
        ("leases", dir),
        ("leases/permnet", dir),
        ("leases/permnet/lock", file),
        ("leases/permnet/last_reserved_ip.0", file),
        ("leases/permnet/172.28.60.2", file),
        ("leases/permnet/.rcni-by-id", dir),
        (lease_entry.as_str(), file),
        ("tuning", dir),
        ("tuning/rcni-perm-a_eth0.json", file),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(got, want, "host-local's and tuning's state");
    assert_mode(&state, dir);
    assert_eq!(std::fs::read_to_string(leases.join("permnet/172.28.60.2")).unwrap(), format!("{id}\r\neth0"));

    // the result cache: the directory and this container's files (eth0, and lo of the loopback)
    assert_mode("/var/lib/cni/results", dir);
    let cached: Vec<PathBuf> = std::fs::read_dir("/var/lib/cni/results")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().contains(&format!("-{id}-")))
        .collect();
    assert_eq!(cached.len(), 2, "{cached:?}");
    for p in &cached {
        assert_mode(p, file);
    }

    // rcni's own locks: per network (shared by attach and detach, exclusive for gc) and per container
    assert_mode("/run/cni/rcni", dir);
    assert_mode("/run/cni/rcni/locks", dir);
    assert_mode(format!("/run/cni/rcni/locks/{net}"), file);
    assert_mode("/run/cni/rcni/locks/containers", dir);
    assert_mode(format!("/run/cni/rcni/locks/containers/{id}"), file);
    // rcni's plugin directory of applet links: a plugin directory, writable by root alone
    assert_mode("/run/cni/rcni-bin", "d 0755");
    assert_mode("/run/cni/rcni-bin/bridge", "l 0777");

    // detach removes the lease, the backup and the cache files; the lock files and directories stay
    cli("detach");
    let after = tree(&state);
    assert!(!after.contains_key("leases/permnet/172.28.60.2") && !after.contains_key("tuning/rcni-perm-a_eth0.json"), "{after:?}");
    assert_eq!(after.get("leases/permnet/lock").map(String::as_str), Some(file));
    assert!(cached.iter().all(|p| !p.exists()), "{cached:?}");
    let _ = Command::new("ip").args(["link", "del", "rcniperm"]).status();
}

/// firewall's opt-in iptables backend serialises its read-then-restore with a lock file of its
/// own. iptables rules belong to a network namespace, so the plugin runs in a "node" namespace of
/// its own (as in firewall_iptables.rs).
#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn the_iptables_backend_lock_is_private_under_umask_0() {
    require_netsandbox();
    let inst = Installed::new();
    let node = TestNetns::new("rcni-perm-node");
    let conf = json!({"cniVersion": "1.1.0", "name": "permfw", "type": "firewall", "backend": "iptables",
        "prevResult": {"cniVersion": "1.1.0", "interfaces": [{"name": "rcnipermfw"}, {"name": "eth0", "sandbox": "/x"}],
            "ips": [{"address": "172.28.61.2/24", "interface": 1}]}});
    for cmd in ["ADD", "DEL"] {
        let mut c = umask0(Path::new("ip"), &["netns", "exec", &node.name, inst.path("firewall").to_str().unwrap()]);
        c.envs([("CNI_COMMAND", cmd), ("CNI_CONTAINERID", "perm-fw"), ("CNI_NETNS", "/x"), ("CNI_IFNAME", "eth0")])
            .env("CNI_PATH", inst.dir.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), conf.to_string().as_bytes()).unwrap();
        checked(&format!("firewall {cmd}"), child.wait_with_output().unwrap());
    }
    assert_mode(firewall_lock(), "f 0600");
}

fn firewall_lock() -> &'static str {
    "/run/cni/rcni-iptables.lock"
}

/// `rcni install` makes a plugin directory: readable by all, writable by root alone.
#[test]
fn install_makes_a_plugin_directory_under_umask_0() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("opt/bin");
    checked("rcni install", umask0(&rcni_bin(), &["install", "--dir", dir.to_str().unwrap()]).output().unwrap());
    assert_mode(tmp.path().join("opt"), "d 0755");
    assert_mode(&dir, "d 0755");
    assert_mode(dir.join("rcni"), "f 0755");
    assert_mode(dir.join("host-local"), "l 0777");
}

/// The dhcp daemon's socket is root's alone (whoever connects gets leases made), its pidfile
/// readable by all; missing parents of the socket are private; SIGTERM removes both.
#[test]
fn the_dhcp_daemons_socket_and_pidfile_under_umask_0() {
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("run/cni/dhcp.sock");
    let pidfile = tmp.path().join("dhcp.pid");
    let child = umask0(&rcni_bin(), &["dhcp", "daemon", "-socketpath", sock.to_str().unwrap(), "-pidfile", pidfile.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let pid = child.id();
    let guard = Kill(child);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !(sock.exists() && pidfile.exists() && std::fs::read_to_string(&pidfile).unwrap_or_default().ends_with('\n')) {
        assert!(std::time::Instant::now() < end, "the daemon made no socket and pidfile");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_mode(tmp.path().join("run"), "d 0700");
    assert_mode(tmp.path().join("run/cni"), "d 0700");
    assert_mode(&sock, "f 0600");
    assert_mode(&pidfile, "f 0644");
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), format!("{pid}\n"));
    checked("kill -TERM", Command::new("kill").args(["-TERM", &pid.to_string()]).output().unwrap());
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while sock.exists() || pidfile.exists() {
        assert!(std::time::Instant::now() < end, "SIGTERM left the socket or the pidfile");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(guard);
}

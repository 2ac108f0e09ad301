//! containerd drives rcni's plugins (netsandbox only), the two ways it runs CNI:
//!
//! - `ctr_run_cni`: `ctr run --cni` (containerd 1.6's client, go-cni inside ctr) on nerdctl's
//!   conflist shape — bridge → portmap → firewall (`ingressPolicy: same-bridge`) → tuning — in
//!   /etc/cni/net.d with rcni's applets in /opt/cni/bin: two detached containers ping each
//!   other, their go-cni cache files and leases are exact, a foreground `--rm` run adds and
//!   deletes; ctr never DELs a detached container, so the test does (`rcni detach` from the
//!   cache), once while it runs and once after its netns is gone, and nothing of the test is left.
//! - `cri_pods`: containerd's CRI plugin, the path kubelet takes, through a small CRI client
//!   (`tests/cri/cri_client.py`, runtime.v1 over gRPC): two pods from an image built here,
//!   pod IPs from PodSandboxStatus, pod-to-pod ping, a hostPort answered from the node and from
//!   the other pod, StopPodSandbox and RemovePodSandbox release the leases, caches, veths and
//!   rules.
//!
//! ctr and go-cni hard-code /etc/cni/net.d and /opt/cni/bin, so each test runs in a node of its
//! own (`rcni_tests::own_node`: fresh /etc/cni/net.d, /opt/cni/bin, /var/lib/cni, /run/netns,
//! /run/containerd), with a containerd of its own whose root, state and sockets are in a temp
//! dir. The [`Containerd`] guard kills it, its shims and their containers, and removes the
//! cgroups the containers used, even when the test fails. docs/clients.md has the recipes.

use base64::Engine;
use rcni_tests::{rcni_bin, run, run_ok};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The longest any one client command may take (`timeout` kills it after that).
const CALL_SECS: u64 = 60;

/// Runs `cmd args` under `timeout`, so no client call can hang the test.
fn bounded(cmd: &str, args: &[&str]) -> Output {
    let secs = CALL_SECS.to_string();
    let mut all = vec!["-k", "5", secs.as_str(), cmd];
    all.extend_from_slice(args);
    run("timeout", &all)
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn bounded_ok(cmd: &str, args: &[&str]) -> String {
    let out = bounded(cmd, args);
    assert!(out.status.success(), "{cmd} {args:?} failed ({}): {}", out.status, text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` every 50 ms until it gives `Some`, for at most `secs` seconds.
fn poll<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs} s waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// Installs rcni's applets in /opt/cni/bin (the node's own tmpfs) and writes `conflist` as
/// /etc/cni/net.d/`file`; returns the file's bytes.
fn node_setup(file: &str, conflist: &Value) -> Vec<u8> {
    run_ok(rcni_bin().to_str().unwrap(), &["install", "--dir", "/opt/cni/bin"]);
    for applet in ["bridge", "portmap", "firewall", "tuning", "host-local", "loopback"] {
        assert!(Path::new("/opt/cni/bin").join(applet).exists(), "rcni install made no /opt/cni/bin/{applet}");
    }
    let bytes = serde_json::to_vec_pretty(conflist).unwrap();
    std::fs::write(Path::new("/etc/cni/net.d").join(file), &bytes).unwrap();
    bytes
}

/// nerdctl's conflist shape (what `nerdctl network create` writes, keys and order).
fn nerdctl_conflist(name: &str, bridge: &str, subnet: &str, gateway: &str) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": name,
        "nerdctlID": "5d3fa0c1b2e4",
        "nerdctlLabels": {},
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": true, "hairpinMode": true,
             "ipam": {"ranges": [[{"gateway": gateway, "subnet": subnet}]], "routes": [{"dst": "0.0.0.0/0"}], "type": "host-local"}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "firewall", "ingressPolicy": "same-bridge"},
            {"type": "tuning"}
        ]
    })
}

/// A containerd of the test's own: config, root, state and sockets in a temp dir. Dropping it
/// stops containerd, kills the shims it started (their command lines name its socket) and the
/// containers under them, unmounts what is left under the dir, and removes the cgroups the
/// containers used (`cgroups`: paths under each hierarchy, e.g. ctr's namespace name).
struct Containerd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    cgroups: Vec<String>,
}

impl Containerd {
    /// Starts containerd with `plugins_toml` appended to the base config and waits (bounded)
    /// until it answers on its socket.
    fn start(plugins_toml: &str, cgroups: Vec<String>) -> Containerd {
        let dir = tempfile::Builder::new().prefix("rcni-ctrd.").tempdir().unwrap();
        let d = dir.path().to_str().unwrap().to_string();
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
             [debug]\n  address = \"{d}/debug.sock\"\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = \"{d}/opt\"\n{plugins_toml}"
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start containerd (scripts/deps installs it)");
        let mut c = Containerd { dir, child: Some(child), cgroups };
        let started = Instant::now();
        poll(30, "containerd to answer on its socket", || {
            if let Some(status) = c.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("containerd exited ({status}):\n{}", c.log());
            }
            c.ctr("default", &["version"]).status.success().then_some(())
        });
        let up = started.elapsed();
        let version = bounded_ok("containerd", &["--version"]);
        eprintln!("containerd: {} answering {} after start", version.trim(), ms(up));
        c
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    fn sock(&self) -> String {
        self.path("containerd.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("containerd.log")).unwrap_or_default()
    }

    /// `ctr --address SOCK --namespace NS ARGS`, bounded.
    fn ctr(&self, ns: &str, args: &[&str]) -> Output {
        let sock = self.sock();
        let mut all = vec!["--address", sock.as_str(), "--namespace", ns];
        all.extend_from_slice(args);
        bounded("ctr", &all)
    }

    fn ctr_ok(&self, ns: &str, args: &[&str]) -> String {
        let out = self.ctr(ns, args);
        assert!(out.status.success(), "ctr {args:?} failed ({}): {}\ncontainerd's log:\n{}", out.status, text(&out), self.log());
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The processes whose command line contains `needle` (not this one).
fn processes_naming(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

/// `pid`'s parent and whether it is still running (not a zombie), from /proc/PID/stat.
fn stat(pid: u32) -> Option<(u32, bool)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let mut f = rest.split(' ');
    let state = f.next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((ppid, state != "Z" && state != "X"))
}

/// `roots` and all their live descendants.
fn process_trees(roots: &[u32]) -> Vec<u32> {
    let all: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter_map(|pid| stat(pid).filter(|(_, live)| *live).map(|(ppid, _)| (pid, ppid)))
        .collect();
    let mut tree: Vec<u32> = roots.iter().copied().filter(|p| stat(*p).is_some_and(|(_, live)| live)).collect();
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(all.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    tree
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("containerd's log, last lines:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        if let Some(mut child) = self.child.take() {
            let _ = run("kill", &["-TERM", &child.id().to_string()]);
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // The shims outlive containerd (they are reparented to init): kill each with the
        // containers under it, until none is left.
        let sock = self.sock();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let tree = process_trees(&processes_naming(&sock));
            if tree.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                eprintln!("containerd guard: processes still alive after 10 s: {tree:?}");
                break;
            }
            let pids: Vec<String> = tree.iter().map(u32::to_string).collect();
            let mut args = vec!["-KILL"];
            args.extend(pids.iter().map(String::as_str));
            let _ = run("kill", &args);
            std::thread::sleep(Duration::from_millis(50));
        }
        // Mounts under the dir (rootfs overlays, /dev/shm of pods), deepest first.
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let base = self.dir.path().to_str().unwrap().to_string();
        let mut mounts: Vec<String> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .map(|m| m.replace("\\040", " "))
            .filter(|m| m.starts_with(&base))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = run("umount", &["-l", &m]);
        }
        // The cgroups (runc removes a container's own cgroup at delete, not its parents; a
        // killed container leaves its own too). Shared with the machine, hence the unique names.
        for hierarchy in std::fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
            for cg in &self.cgroups {
                remove_cgroup(&hierarchy.path().join(cg.trim_start_matches('/')));
            }
        }
    }
}

/// Removes a cgroup directory and the cgroups under it, deepest first (rmdir: cgroup dirs hold
/// no removable files). A cgroup whose last process is still exiting is busy for a moment:
/// retried for up to 5 s.
fn remove_cgroup(dir: &Path) {
    if !dir.is_dir() {
        return;
    }
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup(&e.path());
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The cache file go-cni (and rcni) write for an attachment: `<net>-<containerId>-<ifname>`.
fn cache_path(net: &str, container_id: &str, ifname: &str) -> PathBuf {
    Path::new("/var/lib/cni/results").join(format!("{net}-{container_id}-{ifname}"))
}

fn read_json(p: &Path) -> Value {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_slice(&b).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Checks a cache file's common part and returns it: `cniCacheV1`, the container ID, the
/// interface, the network and `config` = base64 of the conflist file's exact bytes.
fn check_cache(net: &str, container_id: &str, conflist: &[u8]) -> Value {
    let c = read_json(&cache_path(net, container_id, "eth0"));
    assert_eq!(c["kind"], "cniCacheV1", "{c}");
    assert_eq!(c["containerId"], container_id, "{c}");
    assert_eq!(c["ifName"], "eth0", "{c}");
    assert_eq!(c["networkName"], net, "{c}");
    let config = base64::engine::general_purpose::STANDARD.decode(c["config"].as_str().expect("config")).unwrap();
    assert_eq!(config, conflist, "the cached config is not the conflist file's bytes");
    c
}

/// The IPv4 address of an attachment's result, without prefix length.
fn result_ip(cache: &Value) -> String {
    rcni_tests::ip_of(&cache["result"], false)
}

/// The host-local lease files of network `net` (not `lock`, `last_reserved_ip.*`, or rcni's
/// index directory).
fn leases(net: &str) -> Vec<(String, String)> {
    let dir = Path::new("/var/lib/cni/networks").join(net);
    let mut v: Vec<(String, String)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.parse::<std::net::IpAddr>().is_ok().then(|| (name, std::fs::read_to_string(e.path()).unwrap_or_default()))
        })
        .collect();
    v.sort();
    v
}

/// The cache files whose name holds `needle`.
fn cache_files(needle: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/var/lib/cni/results")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(needle))
        .collect();
    v.sort();
    v
}

/// The names of the links enslaved to `bridge` on the node.
fn bridge_ports(bridge: &str) -> Vec<String> {
    let out = run_ok("ip", &["-j", "link", "show", "master", bridge]);
    let v: Value = serde_json::from_str(&out).unwrap_or(Value::Array(vec![]));
    let mut names: Vec<String> = v.as_array().into_iter().flatten().filter_map(|l| l["ifname"].as_str().map(String::from)).collect();
    names.sort();
    names
}

/// `rcni ps --json -n NET`: what rcni's CLI makes of the client's cache files, as
/// (container ID, ifname, addresses, published ports), sorted.
fn rcni_ps(net: &str) -> Vec<(String, String, Value, Value)> {
    let out = bounded_ok(rcni_bin().to_str().unwrap(), &["ps", "--json", "-n", net]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("rcni ps printed no JSON ({e}): {out}"));
    let mut rows: Vec<(String, String, Value, Value)> = v
        .as_array()
        .unwrap_or_else(|| panic!("rcni ps: {v}"))
        .iter()
        .map(|a| (a["containerID"].as_str().unwrap().into(), a["ifname"].as_str().unwrap().into(), a["ips"].clone(), a["ports"].clone()))
        .collect();
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    rows
}

fn nft_ruleset() -> String {
    run_ok("nft", &["list", "ruleset"])
}

/// An HTTP GET of `/` at `to` (`ip:port`) from the node, or from network namespace `netns`
/// (a name under /run/netns); the response body, or `None` when nothing answers.
fn http_get(netns: Option<&str>, to: &str) -> Option<String> {
    let addr: SocketAddr = to.parse().unwrap();
    let connect = move || TcpStream::connect_timeout(&addr, Duration::from_secs(2));
    let mut s = match netns {
        Some(n) => rcni_tests::in_ns(n, connect),
        None => connect(),
    }
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(format!("GET / HTTP/1.0\r\nHost: {to}\r\n\r\n").as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

// ---------------------------------------------------------------------------------------------
// ctr run --cni

const CTR_NET: &str = "rcni-ctr";
const CTR_BRIDGE: &str = "rcnictr0";

/// The PID of task `id` (`ctr task ls`), once it runs.
fn task_pid(d: &Containerd, ns: &str, id: &str) -> u32 {
    let out = d.ctr_ok(ns, &["task", "ls"]);
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3 && f[0] == id && f[2] == "RUNNING").then(|| f[1].parse().unwrap())
        })
        .next()
        .unwrap_or_else(|| panic!("task {id} not running:\n{out}"))
}

/// Pings `to` from inside task `from` (busybox ping): `tries` tries of one packet, each
/// waiting up to `wait` seconds for the answer.
fn ctr_ping(d: &Containerd, ns: &str, from: &str, to: &str, tries: usize, wait: u32) -> bool {
    (0..tries)
        .any(|_| d.ctr(ns, &["task", "exec", "--exec-id", "ping", from, "/bin/ping", "-c1", &format!("-W{wait}"), to]).status.success())
}

/// Kills task `id`, waits (bounded) until it stopped, then removes the task and the container.
fn ctr_remove(d: &Containerd, ns: &str, id: &str) {
    d.ctr_ok(ns, &["task", "kill", "--signal", "SIGKILL", id]);
    poll(20, &format!("task {id} to stop"), || {
        let out = d.ctr_ok(ns, &["task", "ls"]);
        out.lines().any(|l| l.split_whitespace().next() == Some(id) && l.contains("STOPPED")).then_some(())
    });
    d.ctr_ok(ns, &["task", "delete", id]);
    d.ctr_ok(ns, &["container", "delete", id]);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn ctr_run_cni() {
    rcni_tests::require_netsandbox();
    if !rcni_tests::own_node::rerun("ctr_run_cni", "containerd:") {
        return;
    }
    let t0 = Instant::now();
    // ctr's namespace names the containers' cgroups (/<ns>/<id>, shared with the machine) and
    // go-cni's container IDs (<ns>-<id>).
    let ns = format!("rcnitest{}", std::process::id());
    let conflist = node_setup("10-rcni-ctr.conflist", &nerdctl_conflist(CTR_NET, CTR_BRIDGE, "10.226.0.0/24", "10.226.0.1"));
    let root = tempfile::tempdir().unwrap();
    rcni_tests::oci::busybox_rootfs(root.path());
    let rootfs = root.path().to_str().unwrap();
    let d = Containerd::start("disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n", vec![ns.clone()]);

    // Two detached containers: ctr (go-cni) ADDs each before starting it.
    let t = Instant::now();
    for id in ["c1", "c2"] {
        d.ctr_ok(&ns, &["run", "-d", "--cni", "--rootfs", rootfs, id, "/bin/sleep", "infinity"]);
    }
    let run_d = t.elapsed();
    let (pid1, pid2) = (task_pid(&d, &ns, "c1"), task_pid(&d, &ns, "c2"));
    let (id1, id2) = (format!("{ns}-c1"), format!("{ns}-c2"));
    let (cache1, cache2) = (check_cache(CTR_NET, &id1, &conflist), check_cache(CTR_NET, &id2, &conflist));
    for (cache, pid) in [(&cache1, pid1), (&cache2, pid2)] {
        let ifs = cache["result"]["interfaces"].as_array().expect("interfaces");
        assert_eq!(ifs.len(), 3, "{cache}");
        assert_eq!(ifs[0]["name"], CTR_BRIDGE);
        assert_eq!(ifs[2]["name"], "eth0");
        assert_eq!(ifs[2]["sandbox"], format!("/proc/{pid}/ns/net"), "go-cni's netns is the task's");
        assert_eq!(cache["result"]["ips"][0]["gateway"], "10.226.0.1");
        assert!(cache.get("netns").is_none(), "go-cni 1.1 (containerd 1.6) writes no netns key");
    }
    let (ip1, ip2) = (result_ip(&cache1), result_ip(&cache2));
    assert!(ip1.starts_with("10.226.0.") && ip2.starts_with("10.226.0.") && ip1 != ip2, "{ip1} {ip2}");
    let veth = |c: &Value| c["result"]["interfaces"][1]["name"].as_str().unwrap().to_string();
    let (veth1, veth2) = (veth(&cache1), veth(&cache2));
    let mut both = vec![veth1.clone(), veth2.clone()];
    both.sort();
    assert_eq!(bridge_ports(CTR_BRIDGE), both, "the two veths on the bridge");
    assert_eq!(leases(CTR_NET), vec![(ip1.clone(), format!("{id1}\r\neth0")), (ip2.clone(), format!("{id2}\r\neth0"))]);
    let mut want = vec![
        (id1.clone(), "eth0".to_string(), json!([format!("{ip1}/24")]), json!([])),
        (id2.clone(), "eth0".to_string(), json!([format!("{ip2}/24")]), json!([])),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(rcni_ps(CTR_NET), want, "rcni ps of ctr's attachments");
    let addr = d.ctr_ok(&ns, &["task", "exec", "--exec-id", "addr", "c1", "/bin/ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(addr.contains(&format!("inet {ip1}/24")), "c1's eth0: {addr}");
    let rules = nft_ruleset();
    assert!(rules.contains(&format!("chain iso_{CTR_BRIDGE}")), "firewall's same-bridge policy for {CTR_BRIDGE}:\n{rules}");
    assert!(rules.contains(&format!("id={id1} ")), "c1's nftables elements:\n{rules}");

    let t = Instant::now();
    assert!(ctr_ping(&d, &ns, "c1", &ip2, 3, 2), "c1 cannot ping c2 ({ip2})");
    assert!(ctr_ping(&d, &ns, "c2", &ip1, 3, 2), "c2 cannot ping c1 ({ip1})");
    let pings = t.elapsed();

    // A foreground run: ADD, the process (which reaches c1), DEL when it exits.
    let t = Instant::now();
    let script = format!("ip -4 -o addr show eth0 && ping -c1 -W2 {ip1}");
    let out = d.ctr_ok(&ns, &["run", "--rm", "--cni", "--rootfs", rootfs, "c3", "/bin/sh", "-c", &script]);
    let run_rm = t.elapsed();
    let ip3 = out
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("no address in c3's output: {out}"))
        .to_string();
    assert!(ip3.starts_with("10.226.0.") && ip3 != ip1 && ip3 != ip2, "c3 got {ip3}");
    assert!(out.contains("1 packets received"), "c3 could not ping c1: {out}");
    let id3 = format!("{ns}-c3");
    assert!(!cache_path(CTR_NET, &id3, "eth0").exists(), "the --rm run's cache stays after its DEL");
    assert!(leases(CTR_NET).iter().all(|(ip, owner)| *ip != ip3 && !owner.starts_with(&id3)), "c3's lease stays: {:?}", leases(CTR_NET));
    assert!(!d.ctr_ok(&ns, &["container", "ls", "-q"]).lines().any(|l| l == "c3"), "c3 not removed");

    // ctr never DELs a detached container. c1: DEL while it runs, from the cache (its netns
    // still there: the veth goes with the DEL), then the container goes.
    let t = Instant::now();
    let out = bounded_ok(rcni_bin().to_str().unwrap(), &["detach", &format!("/proc/{pid1}/ns/net"), "--id", &id1]);
    let detach_live = t.elapsed();
    assert!(out.contains(&format!("eth0: detached from {CTR_NET}")), "{out}");
    assert!(!cache_path(CTR_NET, &id1, "eth0").exists(), "c1's cache stays after its DEL");
    assert_eq!(leases(CTR_NET), vec![(ip2.clone(), format!("{id2}\r\neth0"))], "c1's lease stays after its DEL");
    assert_eq!(bridge_ports(CTR_BRIDGE), vec![veth2.clone()], "c1's veth stays after its DEL");
    assert!(!ctr_ping(&d, &ns, "c2", &ip1, 1, 1), "c1 still answers after its DEL");
    ctr_remove(&d, &ns, "c1");

    // c2: gone first, as ctr leaves it (task and container removed, no DEL: lease and cache
    // stay; the veth went with the netns), then the DEL, without the netns.
    ctr_remove(&d, &ns, "c2");
    poll(10, "c2's veth to go with its netns", || (!bridge_ports(CTR_BRIDGE).contains(&veth2)).then_some(()));
    assert!(cache_path(CTR_NET, &id2, "eth0").exists(), "ctr 1.6 does DEL a detached container now: update the test and docs/clients.md");
    assert_eq!(leases(CTR_NET).len(), 1, "ctr does not DEL: c2's lease stays until someone does");
    let t = Instant::now();
    let out = bounded_ok(rcni_bin().to_str().unwrap(), &["detach", &format!("/proc/{pid2}/ns/net"), "--id", &id2]);
    let detach_gone = t.elapsed();
    assert!(out.contains(&format!("eth0: detached from {CTR_NET}")), "{out}");

    // Nothing of the test is left: leases, cache files, veths, nftables elements, the
    // firewall's same-bridge policy (its last member left), containers, tasks.
    assert_eq!(leases(CTR_NET), vec![], "leases left");
    assert_eq!(cache_files(&ns), Vec::<String>::new(), "cache files left");
    assert_eq!(bridge_ports(CTR_BRIDGE), Vec::<String>::new(), "veths left");
    let rules = nft_ruleset();
    assert!(!rules.contains(&ns), "nftables elements of the test's containers left:\n{rules}");
    assert!(!rules.contains(&format!("chain iso_{CTR_BRIDGE}")), "firewall's policy for {CTR_BRIDGE} outlived its last member:\n{rules}");
    assert_eq!(d.ctr_ok(&ns, &["container", "ls", "-q"]).trim(), "", "containers left");
    assert_eq!(d.ctr_ok(&ns, &["task", "ls", "-q"]).trim(), "", "tasks left");
    let by_id = Path::new("/var/lib/cni/networks").join(CTR_NET).join(".rcni-by-id");
    assert_eq!(std::fs::read_dir(&by_id).map(|d| d.count()).unwrap_or(0), 0, "host-local index entries left");
    let sock = d.sock();
    drop(d);
    assert_eq!(processes_naming(&sock), Vec::<u32>::new(), "shims left");

    eprintln!(
        "containerd: ctr: run -d --cni x2 {}, 2 pings {}, run --rm --cni (ADD+ping+DEL) {}, rcni detach (netns alive) {}, (netns gone) {}; whole test {}",
        ms(run_d),
        ms(pings),
        ms(run_rm),
        ms(detach_live),
        ms(detach_gone),
        ms(t0.elapsed())
    );
}

// ---------------------------------------------------------------------------------------------
// The CRI plugin

const CRI_NET: &str = "rcni-cri";
const CRI_BRIDGE: &str = "rcnicri0";
const IMAGE: &str = "docker.io/rcni/busybox:test";
const INDEX_HTML: &str = "hello from pod1\n";

/// The OCI architecture name of this machine.
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Writes `bytes` as a blob of the OCI layout at `layout`; returns its descriptor's digest and size.
fn blob(layout: &Path, bytes: &[u8]) -> (String, usize) {
    let tmp = layout.join("blob.tmp");
    std::fs::write(&tmp, bytes).unwrap();
    let sum = run_ok("sha256sum", &[tmp.to_str().unwrap()]);
    let hex = sum.split_whitespace().next().unwrap().to_string();
    std::fs::rename(&tmp, layout.join("blobs/sha256").join(&hex)).unwrap();
    (format!("sha256:{hex}"), bytes.len())
}

/// An OCI image archive (`ctr images import` reads it) of the busybox root filesystem with
/// `/var/www/index.html`, one uncompressed layer, entrypoint `sleep infinity` (a pod's sandbox
/// container; the test's web container gives its own command), named [`IMAGE`].
fn busybox_image(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    rcni_tests::oci::busybox_rootfs(&rootfs);
    std::fs::write(rootfs.join("var/www/index.html"), INDEX_HTML).unwrap();
    let layout = dir.join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let layer_tar = dir.join("layer.tar");
    run_ok("tar", &["--numeric-owner", "--owner=0", "--group=0", "-C", rootfs.to_str().unwrap(), "-cf", layer_tar.to_str().unwrap(), "."]);
    let (layer, layer_size) = blob(&layout, &std::fs::read(&layer_tar).unwrap());
    std::fs::remove_file(&layer_tar).unwrap();
    let config = json!({
        "architecture": oci_arch(), "os": "linux",
        "config": {"Entrypoint": ["/bin/sleep", "infinity"], "Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer]}
    });
    let (config, config_size) = blob(&layout, config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}]
    });
    let (manifest, manifest_size) = blob(&layout, manifest.to_string().as_bytes());
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest, "size": manifest_size,
        "annotations": {"io.containerd.image.name": IMAGE, "org.opencontainers.image.ref.name": "test"}
    }]});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let archive = dir.join("image.tar");
    run_ok("tar", &["-C", layout.to_str().unwrap(), "-cf", archive.to_str().unwrap(), "."]);
    archive
}

/// The CRI client: one `tests/cri/cri_client.py` run per call (its stubs compiled once into `gen`).
struct Cri {
    sock: String,
    gen: String,
}

impl Cri {
    fn call(&self, method: &str, request: &Value) -> Result<Value, String> {
        let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("cri/cri_client.py");
        let req = request.to_string();
        let out = bounded(
            "/usr/bin/python3",
            &[client.to_str().unwrap(), "--socket", &self.sock, "--gen", &self.gen, "--timeout", "50", method, &req],
        );
        if !out.status.success() {
            return Err(text(&out));
        }
        Ok(serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{method}: no JSON ({e}): {}", text(&out))))
    }

    fn ok(&self, method: &str, request: Value) -> Value {
        self.call(method, &request).unwrap_or_else(|e| panic!("CRI {method} {request} failed: {e}"))
    }
}

/// A pod's config: the same value goes to RunPodSandbox and to CreateContainer (as kubelet does).
fn pod_config(name: &str, cgroup_parent: &str, port_mappings: Value) -> Value {
    json!({
        "metadata": {"name": name, "uid": format!("uid-{name}"), "namespace": "rcni-test", "attempt": 0},
        "hostname": name,
        "port_mappings": port_mappings,
        "labels": {"app": name},
        "linux": {"cgroup_parent": cgroup_parent, "security_context": {"namespace_options": {"network": "POD"}}}
    })
}

/// A running pod: its sandbox ID, IP (PodSandboxStatus), and netns (a name under /run/netns).
struct Pod {
    id: String,
    ip: String,
    netns: String,
}

fn run_pod(cri: &Cri, config: &Value) -> (Pod, Duration) {
    let t = Instant::now();
    let r = cri.ok("RunPodSandbox", json!({"config": config}));
    let took = t.elapsed();
    let id = r["pod_sandbox_id"].as_str().expect("pod_sandbox_id").to_string();
    let s = cri.ok("PodSandboxStatus", json!({"pod_sandbox_id": id, "verbose": true}));
    assert_eq!(s["status"]["state"], "SANDBOX_READY", "{s}");
    assert_eq!(s["status"]["metadata"]["name"], config["metadata"]["name"]);
    let ip = s["status"]["network"]["ip"].as_str().expect("pod IP").to_string();
    // containerd's verbose info: the sandbox's runtime spec names its network namespace.
    let info: Value = serde_json::from_str(s["info"]["info"].as_str().expect("verbose info")).unwrap();
    let netns_path = info["runtimeSpec"]["linux"]["namespaces"]
        .as_array()
        .expect("namespaces")
        .iter()
        .find(|n| n["type"] == "network")
        .and_then(|n| n["path"].as_str())
        .expect("network namespace path")
        .to_string();
    let netns =
        netns_path.strip_prefix("/var/run/netns/").unwrap_or_else(|| panic!("netns {netns_path} not under /var/run/netns")).to_string();
    (Pod { id, ip, netns }, took)
}

/// Pings `to` from inside network namespace `netns` (the node's ping), up to three tries.
fn ns_ping(netns: &str, to: &str) -> bool {
    let ns = format!("--net=/var/run/netns/{netns}");
    (0..3).any(|_| bounded("nsenter", &[&ns, "ping", "-c1", "-W2", to]).status.success())
}

/// Checks the attachment's cache (go-cni's CNI_ARGS and capability args as containerd passes
/// them) and lease; returns the cached veth name.
fn check_pod_attachment(pod: &Pod, name: &str, conflist: &[u8], port_mappings: Value) -> String {
    let c = check_cache(CRI_NET, &pod.id, conflist);
    let args: Vec<(String, String)> = c["cniArgs"]
        .as_array()
        .expect("cniArgs")
        .iter()
        .map(|kv| (kv[0].as_str().unwrap().into(), kv[1].as_str().unwrap().into()))
        .collect();
    for (k, v) in [
        ("K8S_POD_NAMESPACE", "rcni-test"),
        ("K8S_POD_NAME", name),
        ("K8S_POD_INFRA_CONTAINER_ID", &pod.id),
        ("K8S_POD_UID", &format!("uid-{name}")),
    ] {
        assert!(args.contains(&(k.to_string(), v.to_string())), "CNI_ARGS {k}={v} missing: {args:?}");
    }
    assert_eq!(c["capabilityArgs"]["portMappings"], port_mappings, "{c}");
    assert_eq!(result_ip(&c), pod.ip, "PodSandboxStatus's IP is not the CNI result's");
    assert_eq!(c["result"]["interfaces"][2]["sandbox"], format!("/var/run/netns/{}", pod.netns));
    assert!(leases(CRI_NET).contains(&(pod.ip.clone(), format!("{}\r\neth0", pod.id))), "{:?}", leases(CRI_NET));
    // containerd also brings up lo through the loopback plugin: rcni's, with its own cache.
    let lo = read_json(&cache_path("cni-loopback", &pod.id, "lo"));
    assert_eq!(lo["result"]["ips"][0]["address"], "127.0.0.1/8", "{lo}");
    c["result"]["interfaces"][1]["name"].as_str().unwrap().to_string()
}

/// Checks that nothing of the pod is left on the node: cache files, lease, veth, netns,
/// nftables elements.
fn check_pod_gone(pod: &Pod, veth: &str) {
    assert_eq!(cache_files(&pod.id), Vec::<String>::new(), "cache files of {} left", pod.id);
    assert!(leases(CRI_NET).iter().all(|(ip, owner)| *ip != pod.ip && !owner.starts_with(&pod.id)), "lease left: {:?}", leases(CRI_NET));
    assert!(!bridge_ports(CRI_BRIDGE).contains(&veth.to_string()), "veth {veth} left");
    assert!(!Path::new("/run/netns").join(&pod.netns).exists(), "netns {} left", pod.netns);
    let rules = nft_ruleset();
    assert!(!rules.contains(&pod.id), "nftables elements of {} left:\n{rules}", pod.id);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn cri_pods() {
    rcni_tests::require_netsandbox();
    if !rcni_tests::own_node::rerun("cri_pods", "containerd:") {
        return;
    }
    let t0 = Instant::now();
    let cgroup_parent = format!("/rcnitest-cri{}", std::process::id());
    let conflist = node_setup("10-rcni-cri.conflist", &nerdctl_conflist(CRI_NET, CRI_BRIDGE, "10.227.0.0/24", "10.227.0.1"));
    let work = tempfile::tempdir().unwrap();
    let image = busybox_image(work.path());
    let cri_toml = format!(
        "[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"{IMAGE}\"\n  restrict_oom_score_adj = true\n\
         \x20 stream_server_address = \"127.0.0.1\"\n  stream_server_port = \"0\"\n\
         \x20 [plugins.\"io.containerd.grpc.v1.cri\".cni]\n    bin_dir = \"/opt/cni/bin\"\n    conf_dir = \"/etc/cni/net.d\"\n    max_conf_num = 1\n"
    );
    let d = Containerd::start(&cri_toml, vec![cgroup_parent.clone()]);
    let cri = Cri { sock: d.sock(), gen: work.path().join("gen").to_str().unwrap().to_string() };
    d.ctr_ok("k8s.io", &["images", "import", image.to_str().unwrap()]);

    let v = cri.ok("Version", json!({"version": "v1"}));
    assert_eq!((v["runtime_name"].as_str(), v["runtime_api_version"].as_str()), (Some("containerd"), Some("v1")), "{v}");
    // The CRI plugin loads the CNI config in the background: NetworkReady once it has.
    poll(30, "CRI Status RuntimeReady and NetworkReady", || {
        let s = cri.ok("Status", json!({}));
        let conds = s["status"]["conditions"].as_array().cloned().unwrap_or_default();
        let ready = |t: &str| conds.iter().any(|c| c["type"] == t && c["status"] == true);
        (ready("RuntimeReady") && ready("NetworkReady")).then_some(())
    });
    let images = cri.ok("ListImages", json!({}));
    assert!(images["images"].as_array().unwrap().iter().any(|i| i["repo_tags"].as_array().unwrap().iter().any(|t| t == IMAGE)), "{images}");

    let ports = json!([{"protocol": "TCP", "container_port": 80, "host_port": 8080, "host_ip": ""}]);
    let config1 = pod_config("pod1", &cgroup_parent, ports);
    let config2 = pod_config("pod2", &cgroup_parent, json!([]));
    let (pod1, run1) = run_pod(&cri, &config1);
    let (pod2, run2) = run_pod(&cri, &config2);
    assert!(pod1.ip.starts_with("10.227.0.") && pod2.ip.starts_with("10.227.0.") && pod1.ip != pod2.ip, "{} {}", pod1.ip, pod2.ip);
    let cached_ports = json!([{"HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}]);
    let veth1 = check_pod_attachment(&pod1, "pod1", &conflist, cached_ports);
    let veth2 = check_pod_attachment(&pod2, "pod2", &conflist, Value::Null);
    let mut both = vec![veth1.clone(), veth2.clone()];
    both.sort();
    assert_eq!(bridge_ports(CRI_BRIDGE), both);
    let mut want = vec![
        (pod1.id.clone(), "eth0".to_string(), json!([format!("{}/24", pod1.ip)]), json!(["8080:80/tcp"])),
        (pod2.id.clone(), "eth0".to_string(), json!([format!("{}/24", pod2.ip)]), json!([])),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(rcni_ps(CRI_NET), want, "rcni ps of the pods' attachments (go-cni caches the port mappings with Go's capitalised keys)");

    let t = Instant::now();
    assert!(ns_ping(&pod1.netns, &pod2.ip), "pod1 cannot ping pod2 ({})", pod2.ip);
    assert!(ns_ping(&pod2.netns, &pod1.ip), "pod2 cannot ping pod1 ({})", pod1.ip);
    let pings = t.elapsed();

    // A web container in pod1 (same image, its own command), in the pod's network namespace.
    let t = Instant::now();
    let web = json!({"metadata": {"name": "web", "attempt": 0}, "image": {"image": IMAGE},
                     "command": ["/bin/httpd", "-f", "-p", "80", "-h", "/var/www"]});
    let c = cri.ok("CreateContainer", json!({"pod_sandbox_id": pod1.id, "config": web, "sandbox_config": config1}));
    let web_id = c["container_id"].as_str().expect("container_id").to_string();
    cri.ok("StartContainer", json!({"container_id": web_id}));
    poll(20, "the web container to run", || {
        let s = cri.ok("ContainerStatus", json!({"container_id": web_id}));
        assert_ne!(s["status"]["state"], "CONTAINER_EXITED", "web container exited: {s}");
        (s["status"]["state"] == "CONTAINER_RUNNING").then_some(())
    });
    let e = cri.ok("ExecSync", json!({"container_id": web_id, "cmd": ["/bin/ip", "-4", "-o", "addr", "show", "eth0"], "timeout": 10}));
    let eth0 =
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(e["stdout"].as_str().unwrap_or_default()).unwrap()).unwrap();
    assert!(eth0.contains(&format!("inet {}/24", pod1.ip)), "the container's eth0 is not the pod's: {e}");
    // The hostPort, from the node (its bridge address and localhost) and from pod2; and pod1's
    // port 80 directly from pod2.
    let body = poll(20, "httpd in pod1 to answer on hostPort 8080", || http_get(None, "10.227.0.1:8080"));
    let web_up = t.elapsed();
    assert_eq!(body, INDEX_HTML);
    assert_eq!(http_get(None, "127.0.0.1:8080").as_deref(), Some(INDEX_HTML), "hostPort on localhost");
    assert_eq!(http_get(Some(&pod2.netns), "10.227.0.1:8080").as_deref(), Some(INDEX_HTML), "hostPort from pod2");
    assert_eq!(http_get(Some(&pod2.netns), &format!("{}:80", pod1.ip)).as_deref(), Some(INDEX_HTML), "pod1:80 from pod2");

    // StopPodSandbox: the containers stop, the network goes (DEL); again, as kubelet repeats it.
    let t = Instant::now();
    cri.ok("StopPodSandbox", json!({"pod_sandbox_id": pod1.id}));
    let stop1 = t.elapsed();
    check_pod_gone(&pod1, &veth1);
    assert_eq!(http_get(None, "10.227.0.1:8080"), None, "hostPort 8080 still answers after pod1's StopPodSandbox");
    let s = cri.ok("PodSandboxStatus", json!({"pod_sandbox_id": pod1.id}));
    assert_eq!(s["status"]["state"], "SANDBOX_NOTREADY", "{s}");
    cri.ok("StopPodSandbox", json!({"pod_sandbox_id": pod1.id}));
    assert!(ns_ping(&pod2.netns, "10.227.0.1"), "pod2 lost its network when pod1 stopped");
    assert_eq!(leases(CRI_NET), vec![(pod2.ip.clone(), format!("{}\r\neth0", pod2.id))]);
    let t = Instant::now();
    cri.ok("RemovePodSandbox", json!({"pod_sandbox_id": pod1.id}));
    let remove1 = t.elapsed();
    let gone = cri.call("PodSandboxStatus", &json!({"pod_sandbox_id": pod1.id})).expect_err("pod1 still there after RemovePodSandbox");
    assert!(gone.starts_with("NOT_FOUND"), "{gone}");

    // RemovePodSandbox of a running pod stops it first (DEL included).
    let t = Instant::now();
    cri.ok("RemovePodSandbox", json!({"pod_sandbox_id": pod2.id}));
    let remove2 = t.elapsed();
    check_pod_gone(&pod2, &veth2);
    let pods = cri.ok("ListPodSandbox", json!({}));
    assert_eq!(pods["items"], json!([]), "{pods}");

    assert_eq!(leases(CRI_NET), vec![], "leases left");
    assert_eq!(cache_files(""), Vec::<String>::new(), "cache files left");
    assert_eq!(bridge_ports(CRI_BRIDGE), Vec::<String>::new(), "veths left");
    let rules = nft_ruleset();
    assert!(!rules.contains(&format!("chain iso_{CRI_BRIDGE}")), "firewall's policy for {CRI_BRIDGE} outlived its last member:\n{rules}");
    let sock = d.sock();
    drop(d);
    assert_eq!(processes_naming(&sock), Vec::<u32>::new(), "shims left");

    eprintln!(
        "containerd: CRI: RunPodSandbox {} / {}, 2 pings {}, web container up and hostPort answering {}, StopPodSandbox {}, RemovePodSandbox (stopped) {}, (running) {}; whole test {}",
        ms(run1),
        ms(run2),
        ms(pings),
        ms(web_up),
        ms(stop1),
        ms(remove1),
        ms(remove2),
        ms(t0.elapsed())
    );
}

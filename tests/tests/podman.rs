//! podman 4.3.1 (Debian 12) with its CNI backend driving rcni (netsandbox only): podman reads
//! the network `rcni network create` wrote, runs containers on it with rcni's plugins (the
//! applets `rcni install` made), publishes a port through rcni's portmap, and tears everything
//! down again on `podman rm`; rcni reads back what podman did from the shared result cache.
//!
//! Each test runs in a node of its own (`rcni_tests::own_node`): fresh /etc/cni/net.d,
//! /opt/cni/bin, /var/lib/cni, /run/containers and /run/runc, so the defaults a user has are the
//! test's (`rcni network create NAME`, `rcni install --dir /opt/cni/bin`). podman's own state is
//! in a temporary directory (`--root`, `--runroot`, `--tmpdir`, `CONTAINERS_CONF`); images are
//! busybox root filesystems (`--rootfs`: there is no registry). A guard removes the containers
//! and kills every process of that state directory (conmon, the containers, podman's cleanup
//! processes) even when the test fails. How to do the same by hand: docs/clients.md.
//!
//! Subnets: 10.226.0.0/24 (rcni's network), 10.226.1.0/24 (the network podman creates).

use netkit::owner::Owner;
use rcni_tests::{link, oci, own_node, rcni, run, run_ok};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// What a user puts in /etc/cni/net.d and /opt/cni/bin (private to the node of its own).
const CONF_DIR: &str = "/etc/cni/net.d";
const PLUGIN_DIR: &str = "/opt/cni/bin";
/// podman's default rlimits (nofile 1048576, nproc 4194304) need CAP_SYS_RESOURCE, which these
/// machines lack: runc fails with "error setting rlimit type 7: operation not permitted".
const ULIMITS: [&str; 4] = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"];
/// Bound on each podman command.
const PODMAN_TIMEOUT_SECS: &str = "60";

/// Lines starting with this are the report the suite prints (`own_node::rerun`).
const REPORT: &str = "podman:";

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// podman with its CNI backend, its state in a temporary directory, and a busybox root
/// filesystem to run. Dropping it removes every container and kills what is left of its
/// processes.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    /// containers.conf: CNI, rcni's applets as the only plugin directory, the node's config
    /// directory, `default_network` (a `podman run` without `--network` joins it), and what a
    /// node without systemd needs.
    fn new(default_network: &str) -> Podman {
        let dir = tempfile::Builder::new().prefix("rcni-podman.").tempdir().expect("temp dir");
        for d in ["root", "runroot", "tmp"] {
            std::fs::create_dir(dir.path().join(d)).expect("state dir");
        }
        oci::busybox_rootfs(&dir.path().join("rootfs"));
        let pm = Podman { dir };
        pm.set_default_network(default_network);
        pm
    }

    /// Writes containers.conf with `default_network` (podman's built-in one is "podman").
    fn set_default_network(&self, name: &str) {
        let conf = format!(
            r#"[network]
network_backend = "cni"
cni_plugin_dirs = ["{PLUGIN_DIR}"]
network_config_dir = "{CONF_DIR}"
default_network = "{name}"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
"#
        );
        std::fs::write(self.dir.path().join("containers.conf"), conf).expect("containers.conf");
    }

    fn path(&self, p: &str) -> String {
        self.dir.path().join(p).to_str().expect("utf-8 path").to_string()
    }

    fn rootfs(&self) -> String {
        self.path("rootfs")
    }

    /// `podman ARGS` with this state, bounded by [`PODMAN_TIMEOUT_SECS`].
    fn cmd(&self, args: &[&str]) -> Output {
        let (root, runroot, tmp) = (self.path("root"), self.path("runroot"), self.path("tmp"));
        Command::new("timeout")
            .args(["-k", "5", PODMAN_TIMEOUT_SECS, "podman", "--root", &root, "--runroot", &runroot, "--tmpdir", &tmp])
            .args(["--storage-driver", "vfs"])
            .args(args)
            .env("CONTAINERS_CONF", self.path("containers.conf"))
            .output()
            .expect("cannot run podman")
    }

    /// `podman ARGS`, which must succeed; its stdout, trimmed.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(out.status.success(), "podman {args:?} failed ({}): {}", out.status, text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `podman run ARGS` with the rlimits this machine allows; `run_args` go before `--rootfs`,
    /// `cmd` after it.
    fn run(&self, run_args: &[&str], cmd: &[&str]) -> String {
        let rootfs = self.rootfs();
        let mut a = vec!["run"];
        a.extend_from_slice(&ULIMITS);
        a.extend_from_slice(run_args);
        a.extend_from_slice(&["--rootfs", &rootfs]);
        a.extend_from_slice(cmd);
        self.ok(&a)
    }

    fn inspect(&self, name: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["inspect", name])).expect("podman inspect prints JSON");
        v[0].clone()
    }

    /// PIDs of the processes of this podman: those naming its directory on their command line
    /// (podman, conmon, podman's cleanup) and the containers (whose root is in it).
    fn processes(&self) -> Vec<u32> {
        let dir = self.dir.path().to_str().expect("utf-8 path").to_string();
        let me = std::process::id();
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            if pid == me {
                continue;
            }
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let root = std::fs::read_link(e.path().join("root")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&dir) || root.starts_with(&dir) {
                out.push(pid);
            }
        }
        out
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "--all", "--force", "--time", "0"]);
        // whatever is left (a failed test, a hung podman): killed by PID, until none remains
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = self.processes();
            if left.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                eprintln!("{REPORT} processes of {} still there after 15 s: {left:?}", self.dir.path().display());
                break;
            }
            for pid in left {
                let _ = run("kill", &["-KILL", &pid.to_string()]);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// An HTTP/1.0 GET of `path` from `addr` (from the node); the whole response, or `None`.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let a: SocketAddr = addr.parse().expect("socket address");
    let mut s = TcpStream::connect_timeout(&a, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn rcni_json(args: &[&str]) -> Value {
    let out = rcni(args);
    assert!(out.status.success(), "rcni {args:?} failed: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("rcni {args:?} printed no JSON ({e}): {}", text(&out)))
}

fn cache_file(network: &str, id: &str) -> PathBuf {
    Path::new("/var/lib/cni/results").join(format!("{network}-{id}-eth0"))
}

fn lease_file(network: &str, ip: &str) -> PathBuf {
    Path::new("/var/lib/cni/networks").join(network).join(ip)
}

/// `rcni ps --format json`'s entries for container `id`.
fn ps_of(id: &str) -> Vec<Value> {
    rcni_json(&["ps", "--format", "json"])
        .as_array()
        .expect("ps prints an array")
        .iter()
        .filter(|a| a["containerID"] == id)
        .cloned()
        .collect()
}

/// The lines of `nft list ruleset` that name `what`.
fn nft_lines(what: &str) -> Vec<String> {
    run_ok("nft", &["list", "ruleset"]).lines().filter(|l| l.contains(what)).map(|l| l.trim().to_string()).collect()
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn podman_runs_containers_on_an_rcni_network() {
    if !own_node::rerun("podman_runs_containers_on_an_rcni_network", REPORT) {
        return;
    }
    let started = Instant::now();
    let rcni_bin = rcni_tests::rcni_bin();
    run_ok(rcni_bin.to_str().unwrap(), &["install", "--dir", PLUGIN_DIR]);
    let out = rcni(&["network", "create", "pmweb", "--subnet", "10.226.0.0/24"]);
    assert!(out.status.success(), "{}", text(&out));
    let conflist_path = Path::new(CONF_DIR).join("rcni-pmweb.conflist");
    let conflist_bytes = std::fs::read(&conflist_path).expect("rcni network create wrote the file");
    let ours = rcni_json(&["network", "inspect", "pmweb"])[0].clone();
    let (net_id, bridge) = (ours["id"].as_str().unwrap().to_string(), ours["bridge"].as_str().unwrap().to_string());
    assert_eq!(net_id.len(), 64);

    let pm = Podman::new("pmweb");
    std::fs::write(pm.path("rootfs/var/www/index.html"), "served by podman on rcni\n").unwrap();
    assert_eq!(pm.ok(&["info", "--format", "{{.Host.NetworkBackend}}"]), "cni");

    // podman reads rcni's conflist: every key (rcniID, rcniOptions, the plugins' own) accepted
    let ls = pm.ok(&["network", "ls", "--format", "{{.Name}} {{.ID}} {{.Driver}}"]);
    assert!(ls.lines().any(|l| l == format!("pmweb {} bridge", &net_id[..12])), "podman network ls:\n{ls}");
    let pinspect: Value = serde_json::from_str(&pm.ok(&["network", "inspect", "pmweb"])).unwrap();
    let p = &pinspect[0];
    assert_eq!(
        (&p["name"], &p["id"], &p["driver"], &p["network_interface"]),
        (&json!("pmweb"), &json!(net_id), &json!("bridge"), &json!(bridge)),
        "podman's ID is the same SHA-256 of the name: {p}"
    );
    assert_eq!(p["subnets"], json!([{"subnet": "10.226.0.0/24", "gateway": "10.226.0.1"}]), "{p}");
    assert_eq!((&p["ipv6_enabled"], &p["internal"], &p["dns_enabled"]), (&json!(false), &json!(false), &json!(false)), "{p}");
    assert_eq!(p["ipam_options"], json!({"driver": "host-local"}), "{p}");
    // rcni's firewall "ingressPolicy": "same-bridge" is what podman calls an isolated network
    assert_eq!(p["options"], json!({"isolate": "true"}), "{p}");

    // a web server with a published port, and a client on the default network (= pmweb)
    let t = Instant::now();
    let web =
        pm.run(&["-d", "--name", "pm-web", "--network", "pmweb", "-p", "8080:80"], &["/bin/httpd", "-f", "-p", "80", "-h", "/var/www"]);
    let client = pm.run(&["-d", "--name", "pm-client"], &["/bin/sleep", "600"]);
    let run_secs = t.elapsed().as_secs_f64();
    let mut containers = Vec::new();
    for (name, id) in [("pm-web", &web), ("pm-client", &client)] {
        assert_eq!(id.len(), 64, "podman run -d prints the ID: {id}");
        let i = pm.inspect(name);
        let ns = &i["NetworkSettings"];
        let n = &ns["Networks"]["pmweb"];
        assert!(n.is_object(), "{name} is on pmweb: {ns}");
        let ip = n["IPAddress"].as_str().unwrap().to_string();
        assert!(ip.starts_with("10.226.0.") && ip != "10.226.0.1", "{name}: {ip}");
        assert_eq!((&n["Gateway"], &n["IPPrefixLen"]), (&json!("10.226.0.1"), &json!(24)), "{ns}");
        let sandbox = ns["SandboxKey"].as_str().unwrap().to_string();

        // the result cache podman's libcni wrote: rcni's result, rcni's file, podman's arguments
        let cache: Value = serde_json::from_slice(&std::fs::read(cache_file("pmweb", id)).expect("cache file")).unwrap();
        assert_eq!(
            (&cache["kind"], &cache["containerId"], &cache["networkName"], &cache["ifName"]),
            (&json!("cniCacheV1"), &json!(id), &json!("pmweb"), &json!("eth0"))
        );
        use base64::Engine;
        let config = base64::engine::general_purpose::STANDARD.decode(cache["config"].as_str().unwrap()).unwrap();
        assert_eq!(config, conflist_bytes, "the cache holds rcni's file byte for byte");
        let ports = if name == "pm-web" { json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]) } else { Value::Null };
        assert_eq!(cache["capabilityArgs"]["portMappings"], ports, "{cache}");
        let result = &cache["result"];
        assert_eq!(result["ips"], json!([{"address": format!("{ip}/24"), "gateway": "10.226.0.1", "interface": 2}]), "{result}");
        let ifs = result["interfaces"].as_array().unwrap();
        assert_eq!(
            (ifs.len(), &ifs[0]["name"], &ifs[2]["name"], &ifs[2]["sandbox"]),
            (3, &json!(bridge), &json!("eth0"), &json!(sandbox)),
            "{result}"
        );
        assert_eq!(n["MacAddress"], ifs[2]["mac"], "podman shows the MAC of rcni's result");
        let veth = ifs[1]["name"].as_str().unwrap().to_string();
        let l = link(None, &veth).unwrap_or_else(|| panic!("host veth {veth} missing"));
        assert_eq!(l["master"], json!(bridge), "{l}");
        // rcni's nftables elements of the attachment (masquerade, firewall; the published port)
        let tag = Owner::new("pmweb", id, "eth0").tag();
        let owned = nft_lines(&tag).len();
        assert!(owned >= if name == "pm-web" { 3 } else { 2 }, "{name}: {owned} nftables lines carry {tag}");

        // host-local's lease, in the reference's format
        assert_eq!(std::fs::read_to_string(lease_file("pmweb", &ip)).unwrap(), format!("{id}\r\neth0"));

        // rcni ps reads the same cache
        let ps = ps_of(id);
        assert_eq!(ps.len(), 1, "rcni ps shows {name} once: {ps:?}");
        let want_ports = if name == "pm-web" { json!(["8080:80/tcp"]) } else { json!([]) };
        assert_eq!(
            (&ps[0]["network"], &ps[0]["ifname"], &ps[0]["ips"], &ps[0]["ports"]),
            (&json!("pmweb"), &json!("eth0"), &json!([format!("{ip}/24")]), &want_ports),
            "{ps:?}"
        );
        assert_eq!((&ps[0]["netns"], &ps[0]["netnsExists"]), (&json!(sandbox), &json!(true)), "rcni ps names podman's namespace: {ps:?}");
        containers.push((id.clone(), ip, veth));
    }
    let attached: Vec<Value> = rcni_json(&["network", "inspect", "pmweb"])[0]["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["containerID"].clone())
        .collect();
    assert_eq!(attached.len(), 2, "rcni network inspect: {attached:?}");
    assert!(attached.contains(&json!(web)) && attached.contains(&json!(client)), "{attached:?}");
    let web_ip = containers[0].1.clone();

    // the published port from the node: at the bridge's address and at 127.0.0.1 (rcni's portmap
    // sets route_localnet on the bridge, guarded); the server directly
    let body = "served by podman on rcni\n";
    let served = |addr: &str| http_get(addr, "/index.html").is_some_and(|r| r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with(body));
    assert!(rcni_tests::eventually(10, || served("10.226.0.1:8080")), "no answer at 10.226.0.1:8080 within 10 s");
    assert!(served("127.0.0.1:8080"), "no answer at 127.0.0.1:8080");
    assert!(served(&format!("{web_ip}:80")), "no answer at {web_ip}:80");
    assert!(!served("10.226.0.1:80"), "only the published port is forwarded");

    // container to container, by address and through the published port (busybox-static's
    // `wget -T` segfaults: timeout bounds it instead)
    for url in [format!("http://{web_ip}/index.html"), "http://10.226.0.1:8080/index.html".to_string()] {
        let got = pm.ok(&["exec", "pm-client", "/bin/timeout", "10", "/bin/wget", "-q", "-O", "-", &url]);
        assert_eq!(got, body.trim(), "pm-client fetching {url}");
    }

    // podman refuses to remove a network in use, and changes nothing
    let out = pm.cmd(&["network", "rm", "pmweb"]);
    assert!(!out.status.success() && text(&out).contains("network is being used"), "{}", text(&out));
    assert_eq!(std::fs::read(&conflist_path).unwrap(), conflist_bytes);

    // podman rm: CNI DEL through rcni's plugins, everything released
    let t = Instant::now();
    assert_eq!(pm.ok(&["rm", "--force", "--time", "0", "pm-web", "pm-client"]).lines().count(), 2);
    let rm_secs = t.elapsed().as_secs_f64();
    for (id, ip, veth) in &containers {
        assert!(!cache_file("pmweb", id).exists(), "cache of {id} left");
        assert!(!lease_file("pmweb", ip).exists(), "lease {ip} left");
        assert!(link(None, veth).is_none(), "veth {veth} left");
        assert!(ps_of(id).is_empty(), "rcni ps still shows {id}");
        let tag = Owner::new("pmweb", id, "eth0").tag();
        assert!(nft_lines(&tag).is_empty(), "nftables objects of {id} left: {:?}", nft_lines(&tag));
    }
    let leases: Vec<String> = std::fs::read_dir("/var/lib/cni/networks/pmweb")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("10."))
        .collect();
    assert!(leases.is_empty(), "leases left: {leases:?}");

    // a foreground run with --rm: ADD, run, DEL
    let out = pm.run(&["--rm"], &["/bin/ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(out.contains("inet 10.226.0.") && out.contains("/24"), "{out}");
    assert!(
        rcni_tests::eventually(10, || std::fs::read_dir("/var/lib/cni/results").map(|d| d.count() == 0).unwrap_or(true)),
        "podman run --rm left cache files: {:?}",
        std::fs::read_dir("/var/lib/cni/results").map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );

    // podman network rm of rcni's network: refused while it is podman's default_network; then
    // the file and the bridge go, and podman leaves the plugins' own state (it runs no plugin
    // for it), as it does for its own networks
    let out = pm.cmd(&["network", "rm", "pmweb"]);
    assert!(!out.status.success() && text(&out).contains("default network pmweb cannot be removed"), "{}", text(&out));
    pm.set_default_network("podman");
    assert_eq!(pm.ok(&["network", "rm", "pmweb"]), "pmweb");
    assert!(!conflist_path.exists(), "podman network rm removes rcni's file");
    assert!(link(None, &bridge).is_none(), "podman network rm removes the bridge");
    assert!(!pm.ok(&["network", "ls", "--format", "{{.Name}}"]).lines().any(|l| l == "pmweb"));
    let ls = rcni(&["network", "ls", "-q"]);
    assert!(!String::from_utf8_lossy(&ls.stdout).lines().any(|l| l == "pmweb"), "{}", text(&ls));
    let left_nft = nft_lines("net=pmweb");
    let left_store: Vec<String> = std::fs::read_dir("/var/lib/cni/networks/pmweb")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    eprintln!("{REPORT} after podman network rm: {} nftables lines name net=pmweb, host-local store holds {left_store:?}", left_nft.len());
    drop(pm);
    eprintln!(
        "{REPORT} 2 podman run -d {run_secs:.2} s, podman rm -f of both {rm_secs:.2} s, whole test {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn rcni_plugins_serve_a_network_podman_created() {
    if !own_node::rerun("rcni_plugins_serve_a_network_podman_created", REPORT) {
        return;
    }
    let rcni_bin = rcni_tests::rcni_bin();
    run_ok(rcni_bin.to_str().unwrap(), &["install", "--dir", PLUGIN_DIR]);
    let pm = Podman::new("podman");
    // podman's CNI conflist: cniVersion 0.4.0, bridge cni-podman1, firewall with "backend": ""
    assert_eq!(pm.ok(&["network", "create", "--subnet", "10.226.1.0/24", "pmown"]), "pmown");
    let file: Value = serde_json::from_slice(&std::fs::read(Path::new(CONF_DIR).join("pmown.conflist")).unwrap()).unwrap();
    assert_eq!(file["cniVersion"], "0.4.0");
    let bridge = file["plugins"][0]["bridge"].as_str().unwrap().to_string();
    let types: Vec<&str> = file["plugins"].as_array().unwrap().iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["bridge", "portmap", "firewall", "tuning"], "{file}");

    let id = pm.run(&["-d", "--name", "pm-own", "--network", "pmown"], &["/bin/sleep", "600"]);
    let ip = pm.inspect("pm-own")["NetworkSettings"]["Networks"]["pmown"]["IPAddress"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10.226.1."), "{ip}");
    let shown = rcni_json(&["network", "inspect", "pmown"])[0].clone();
    assert_eq!(
        (&shown["subnets"], &shown["gateways"], &shown["createdBy"], &shown["bridge"]),
        (&json!(["10.226.1.0/24"]), &json!(["10.226.1.1"]), &json!(""), &json!(bridge)),
        "{shown}"
    );
    let ps = ps_of(&id);
    assert_eq!((ps.len(), &ps[0]["network"], &ps[0]["ips"]), (1, &json!("pmown"), &json!([format!("{ip}/24")])), "{ps:?}");
    let got = pm.ok(&["exec", "pm-own", "/bin/ping", "-c1", "-W2", "10.226.1.1"]);
    assert!(got.contains("1 packets received"), "{got}");

    pm.ok(&["rm", "--force", "--time", "0", "pm-own"]);
    assert!(!cache_file("pmown", &id).exists() && !lease_file("pmown", &ip).exists());
    assert!(ps_of(&id).is_empty());
    assert_eq!(pm.ok(&["network", "rm", "pmown"]), "pmown");
    assert!(link(None, &bridge).is_none());
}

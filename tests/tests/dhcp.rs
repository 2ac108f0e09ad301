//! The dhcp IPAM plugin and its daemon against dnsmasq (netsandbox only). dnsmasq serves DHCPv4 in
//! a "server" namespace whose veth is on a bridge of the sandbox node; the container is attached
//! to that bridge by rcni's bridge plugin (no isGateway) with `"ipam": {"type": "dhcp"}`, so its
//! DHCP traffic reaches dnsmasq over L2. dnsmasq's lease file is the witness: the lease appears on
//! ADD, its expiry moves when the daemon renews (option 58 T1 = 15 s), it survives a restart of
//! dnsmasq, and it is gone after DEL. Debian's dhcp plugin and daemon (containernetworking-plugins
//! 1.1.1) answer with the same result shape for the same server.

use rcni_tests::{require_netsandbox, run, run_ok, Call, Installed, TestNetns};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEBIAN_DHCP: &str = "/usr/lib/cni/dhcp";

/// A process killed (and reaped) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// dnsmasq serving `<subnet>.50-99` (2-minute leases, T1 15 s, router `<subnet>.1`) in `ns`.
fn dnsmasq(ns: &TestNetns, subnet: &str, dir: &Path) -> Proc {
    dnsmasq_with(ns, subnet, dir, &[])
}

fn dnsmasq_with(ns: &TestNetns, subnet: &str, dir: &Path, extra: &[&str]) -> Proc {
    let child = Command::new("ip")
        .args(["netns", "exec", &ns.name, "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0", "--user=root", "--group=root"])
        .arg("--interface=eth0")
        .arg("--bind-interfaces")
        .arg(format!("--dhcp-range={subnet}.50,{subnet}.99,255.255.255.0,2m"))
        .arg("--dhcp-option=option:T1,15")
        .arg(format!("--dhcp-option=option:router,{subnet}.1"))
        .arg(format!("--dhcp-option=option:dns-server,{subnet}.1"))
        .arg("--dhcp-option=option:domain-name,rdhcp.test")
        .arg(format!("--dhcp-leasefile={}", dir.join("leases").display()))
        .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
        .arg(format!("--log-facility={}", dir.join("dnsmasq.log").display()))
        .arg("--log-dhcp")
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq");
    let p = Proc(child);
    // ready once it logs that DHCP is on
    wait_for(Duration::from_secs(10), "dnsmasq to start", || {
        std::fs::read_to_string(dir.join("dnsmasq.log")).is_ok_and(|l| l.contains("DHCP, IP range"))
    });
    p
}

fn wait_for(limit: Duration, what: &str, f: impl FnMut() -> bool) {
    assert!(poll(limit, f), "timed out after {limit:?} waiting for {what}");
}

/// Polls `f` every 100 ms until it holds (true) or `limit` passes (false).
fn poll(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while !f() {
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

/// dnsmasq's lease file: (expiry, ip, client ID as text, without its type byte 0).
fn leases(dir: &Path) -> Vec<(u64, String, String)> {
    let text = std::fs::read_to_string(dir.join("leases")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let cid: Vec<u8> = f.get(4)?.split(':').filter_map(|h| u8::from_str_radix(h, 16).ok()).collect();
            Some((f[0].parse().ok()?, f[2].to_string(), String::from_utf8_lossy(cid.strip_prefix(&[0u8][..]).unwrap_or(&cid)).into_owned()))
        })
        .collect()
}

fn lease_of(dir: &Path, ip: &str) -> Option<(u64, String)> {
    leases(dir).into_iter().find(|l| l.1 == ip).map(|l| (l.0, l.2))
}

/// The sandbox side: bridge `br` with the server namespace's veth on it, the server at `.1`.
struct Lan {
    br: String,
    server: TestNetns,
}

impl Lan {
    fn new(br: &str, srv: &str, subnet: &str) -> Self {
        require_netsandbox();
        let _ = run("ip", &["link", "del", br]);
        run_ok("ip", &["link", "add", br, "type", "bridge"]);
        run_ok("ip", &["link", "set", br, "up"]);
        let server = TestNetns::new(srv);
        let host_end = format!("{br}s");
        let _ = run("ip", &["link", "del", &host_end]);
        run_ok("ip", &["link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", srv]);
        run_ok("ip", &["link", "set", &host_end, "master", br, "up"]);
        run_ok("ip", &["-n", srv, "addr", "add", &format!("{subnet}.1/24"), "dev", "eth0"]);
        run_ok("ip", &["-n", srv, "link", "set", "eth0", "up"]);
        Lan { br: br.into(), server }
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        let _ = run("ip", &["link", "del", &format!("{}s", self.br)]);
        let _ = run("ip", &["link", "del", &self.br]);
    }
}

/// A DHCP daemon (rcni's or Debian's) on `sock`, its log in `log`.
fn daemon(bin: &Path, sock: &Path, log: &Path) -> Proc {
    daemon_with(bin, sock, log, "8s")
}

fn daemon_with(bin: &Path, sock: &Path, log: &Path, timeout: &str) -> Proc {
    let child = Command::new(bin)
        .args(["daemon", "-socketpath", sock.to_str().unwrap(), "-timeout", timeout])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("dhcp daemon");
    let p = Proc(child);
    wait_for(Duration::from_secs(5), "the daemon's socket", || sock.exists());
    p
}

fn conf(net: &str, br: &str, sock: &Path) -> String {
    json!({"cniVersion": "1.0.0", "name": net, "type": "bridge", "bridge": br,
        "ipam": {"type": "dhcp", "daemonSocketPath": sock}})
    .to_string()
}

fn call(cmd: &'static str, cid: &str, ns: &TestNetns, path: &Path) -> Call {
    let mut c = Call::new(cmd, cid, "eth0").netns(&ns.path());
    c.path = path.to_string_lossy().into_owned();
    c
}

fn addr(r: &Value) -> String {
    r["ips"][0]["address"].as_str().unwrap().split('/').next().unwrap().to_string()
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn lease_renewal_restart_readd_and_release() {
    require_netsandbox();
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("rdhcpbr0", "rdhcp-srv0", "10.197.0");
    let mut server = dnsmasq(&lan.server, "10.197.0", tmp.path());
    let inst = Installed::new();
    let sock = tmp.path().join("dhcp.sock");
    let dlog = tmp.path().join("daemon.log");
    let _daemon = daemon(&inst.path("dhcp"), &sock, &dlog);
    let cfg = conf("rdhcpnet", "rdhcpbr0", &sock);
    let dump = || {
        format!(
            "\ndaemon log:\n{}\ndnsmasq log:\n{}",
            std::fs::read_to_string(&dlog).unwrap_or_default(),
            std::fs::read_to_string(tmp.path().join("dnsmasq.log")).unwrap_or_default()
        )
    };

    // ADD: a lease from dnsmasq's range, the router as gateway and default route
    let c1 = TestNetns::new("rdhcp-c1");
    let (code, r) = call("ADD", "dhcp-c1", &c1, inst.dir.path()).run(&inst.path("bridge"), &cfg);
    assert_eq!(code, 0, "ADD: {r}{}", dump());
    let ip = addr(&r);
    let last: u8 = ip.rsplit('.').next().unwrap().parse().unwrap();
    assert!(ip.starts_with("10.197.0.") && (50..=99).contains(&last), "{r}");
    assert_eq!(r["ips"][0]["address"], format!("{ip}/24"));
    assert_eq!(r["ips"][0]["gateway"], "10.197.0.1");
    assert_eq!(r["routes"], json!([{"dst": "0.0.0.0/0", "gw": "10.197.0.1"}]));
    assert!(c1.ping("10.197.0.1"), "the container reaches the server");
    let (expiry0, cid) = lease_of(tmp.path(), &ip).unwrap_or_else(|| panic!("dnsmasq has no lease for {ip}{}", dump()));
    assert_eq!(cid, "dhcp-c1/rdhcpnet/eth0", "client ID is <cid>/<net>/<ifname>");
    // with type 0 first, as the reference sends it
    let raw = std::fs::read_to_string(tmp.path().join("leases")).unwrap();
    assert!(raw.contains(" 00:64:68:63:70:2d:63:31:2f:"), "{raw}");
    // CHECK with prevResult
    let mut with_prev: Value = serde_json::from_str(&cfg).unwrap();
    with_prev["prevResult"] = r.clone();
    call("CHECK", "dhcp-c1", &c1, inst.dir.path()).ok(&inst.path("bridge"), &with_prev.to_string());

    // the daemon renews at T1 (15 s): dnsmasq moves the expiry
    let renewed = poll(Duration::from_secs(25), || lease_of(tmp.path(), &ip).is_some_and(|l| l.0 > expiry0));
    assert!(renewed, "no renewal within 25 s{}", dump());
    let renewed_at = started.elapsed();
    assert!(std::fs::read_to_string(&dlog).unwrap().contains("renewed"), "{}", dump());

    // dnsmasq restarts (its lease file kept); the daemon's next renewal goes through it
    drop(server);
    let expiry1 = lease_of(tmp.path(), &ip).unwrap().0;
    server = dnsmasq(&lan.server, "10.197.0", tmp.path());
    let renewed = poll(Duration::from_secs(25), || lease_of(tmp.path(), &ip).is_some_and(|l| l.0 > expiry1));
    assert!(renewed, "no renewal by the restarted dnsmasq within 25 s{}", dump());

    // the container's namespace goes (no DEL): the daemon holds no socket in it between
    // exchanges, so the namespace and its veth go (the host end leaves the bridge) ...
    drop(c1);
    let ports = || String::from_utf8(run("ip", &["-o", "link", "show", "master", "rdhcpbr0"]).stdout).unwrap();
    assert!(poll(Duration::from_secs(5), || ports().lines().count() == 1), "the old veth stays: {}{}", ports(), dump());
    // ... and comes back: the re-ADD gets the same address
    let c1 = TestNetns::new("rdhcp-c1");
    let r2 = call("ADD", "dhcp-c1", &c1, inst.dir.path()).ok(&inst.path("bridge"), &cfg);
    assert_eq!(addr(&r2), ip, "re-ADD: same client ID, same address");
    assert!(c1.ping("10.197.0.1"));

    // DEL releases: dnsmasq drops the lease; a second DEL is fine
    call("DEL", "dhcp-c1", &c1, inst.dir.path()).ok(&inst.path("bridge"), &cfg);
    let released = poll(Duration::from_secs(5), || lease_of(tmp.path(), &ip).is_none());
    assert!(released, "dnsmasq still has {ip} after DEL{}", dump());
    call("DEL", "dhcp-c1", &c1, inst.dir.path()).ok(&inst.path("bridge"), &cfg);
    // CHECK without the lease fails
    let e = call("CHECK", "dhcp-c1", &c1, inst.dir.path()).err(&inst.path("bridge"), &with_prev.to_string());
    assert!(e["msg"].as_str().unwrap().contains("no lease"), "{e}");
    drop(server);
    eprintln!("first renewal after {renewed_at:?}, whole test {:?}", started.elapsed());
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn unreachable_daemon_is_try_again_later_and_leaves_nothing() {
    require_netsandbox();
    let tmp = tempfile::tempdir().unwrap();
    let inst = Installed::new();
    let c = TestNetns::new("rdhcp-c3");
    let cfg = conf("rdhcpnet3", "rdhcpbr3", &tmp.path().join("nobody.sock"));
    let e = call("ADD", "dhcp-c3", &c, inst.dir.path()).err(&inst.path("bridge"), &cfg);
    assert_eq!(e["code"], 11, "{e}");
    assert!(e["msg"].as_str().unwrap().contains("not reachable"), "{e}");
    // the bridge's rollback took the veth
    let links = String::from_utf8(c.exec(&["ip", "-o", "link"]).stdout).unwrap();
    assert!(!links.contains("eth0"), "{links}");
    // DEL without a daemon succeeds (nothing to release)
    call("DEL", "dhcp-c3", &c, inst.dir.path()).ok(&inst.path("bridge"), &cfg);

    // a daemon, but no server on the bridge: the ADD fails at -timeout, and leaves nothing
    let sock = tmp.path().join("dhcp.sock");
    let _d = daemon_with(&inst.path("dhcp"), &sock, &tmp.path().join("daemon.log"), "1s");
    let cfg = conf("rdhcpnet3", "rdhcpbr3", &sock);
    let started = Instant::now();
    let e = call("ADD", "dhcp-c3", &c, inst.dir.path()).err(&inst.path("bridge"), &cfg);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(e["msg"].as_str().unwrap().contains("no lease for dhcp-c3/rdhcpnet3/eth0"), "{e}");
    let links = String::from_utf8(c.exec(&["ip", "-o", "link"]).stdout).unwrap();
    assert!(!links.contains("eth0"), "{links}");
    let _ = run("ip", &["link", "del", "rdhcpbr3"]);
}

/// The fields of a result with the address-specific values taken out.
fn shape(r: &Value) -> Value {
    let mut r = r.clone();
    r["ips"][0]["address"] = json!("A");
    r["interfaces"] = json!("I");
    r
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn same_result_shape_as_debians_dhcp() {
    require_netsandbox();
    if !Path::new(DEBIAN_DHCP).exists() {
        panic!("{DEBIAN_DHCP} missing (containernetworking-plugins; scripts/deps installs it)");
    }
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("rdhcpbr1", "rdhcp-srv1", "10.197.1");
    let _server = dnsmasq(&lan.server, "10.197.1", tmp.path());
    let inst = Installed::new();
    // a plugin directory with rcni's bridge and Debian's dhcp
    let deb_dir = tmp.path().join("debian-bin");
    std::fs::create_dir(&deb_dir).unwrap();
    std::os::unix::fs::symlink(inst.path("bridge"), deb_dir.join("bridge")).unwrap();
    std::os::unix::fs::symlink(DEBIAN_DHCP, deb_dir.join("dhcp")).unwrap();
    let (ours, theirs): (PathBuf, PathBuf) = (tmp.path().join("rcni.sock"), tmp.path().join("debian.sock"));
    let _d1 = daemon(&inst.path("dhcp"), &ours, &tmp.path().join("rcni.log"));
    let _d2 = daemon(Path::new(DEBIAN_DHCP), &theirs, &tmp.path().join("debian.log"));

    let (ca, cb) = (TestNetns::new("rdhcp-c1a"), TestNetns::new("rdhcp-c1b"));
    let cfg_a = conf("rdhcpnet1", "rdhcpbr1", &ours);
    let cfg_b = conf("rdhcpnet1", "rdhcpbr1", &theirs);
    let ra = call("ADD", "dhcp-ca", &ca, inst.dir.path()).ok(&inst.path("bridge"), &cfg_a);
    let (code, rb) = call("ADD", "dhcp-cb", &cb, &deb_dir).run(&inst.path("bridge"), &cfg_b);
    assert_eq!(code, 0, "Debian's dhcp ADD: {rb}\n{}", std::fs::read_to_string(tmp.path().join("debian.log")).unwrap_or_default());
    assert_ne!(addr(&ra), addr(&rb));
    assert_eq!(shape(&ra), shape(&rb), "rcni {ra}\nDebian {rb}");
    eprintln!("rcni {ra}\nDebian {rb}");
    // both leases are dnsmasq's, with the same client ID layout
    assert_eq!(lease_of(tmp.path(), &addr(&ra)).unwrap().1, "dhcp-ca/rdhcpnet1/eth0");
    assert_eq!(lease_of(tmp.path(), &addr(&rb)).unwrap().1, "dhcp-cb/rdhcpnet1/eth0");
    // each plugin told the other's socket says so, and changes nothing
    let ipam_only =
        |sock: &Path| json!({"cniVersion": "1.0.0", "name": "rdhcpnet1", "ipam": {"type": "dhcp", "daemonSocketPath": sock}}).to_string();
    let e = call("ADD", "dhcp-cx", &ca, inst.dir.path()).err(&inst.path("dhcp"), &ipam_only(&theirs));
    assert!(e["msg"].as_str().unwrap().contains("answers HTTP"), "{e}");
    let e = call("ADD", "dhcp-cx", &ca, &deb_dir).err(Path::new(DEBIAN_DHCP), &ipam_only(&ours));
    assert!(e["msg"].as_str().unwrap().contains("not Go net/rpc"), "{e}");
    assert_eq!(leases(tmp.path()).len(), 2, "{:?}", leases(tmp.path()));

    call("DEL", "dhcp-ca", &ca, inst.dir.path()).ok(&inst.path("bridge"), &cfg_a);
    call("DEL", "dhcp-cb", &cb, &deb_dir).ok(&inst.path("bridge"), &cfg_b);
    // rcni releases before the veth goes; Debian's daemon sends its release after the bridge
    // deleted the interface, so dnsmasq keeps that lease until it runs out
    wait_for(Duration::from_secs(5), "rcni's lease released", || lease_of(tmp.path(), &addr(&ra)).is_none());
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn classless_routes_host_name_and_priority() {
    require_netsandbox();
    let tmp = tempfile::tempdir().unwrap();
    let lan = Lan::new("rdhcpbr2", "rdhcp-srv2", "10.197.2");
    // option 121: 10.198.0.0/16 via the server, 10.199.7.0/24 on the link
    let _server = dnsmasq_with(&lan.server, "10.197.2", tmp.path(), &["--dhcp-option=121,10.198.0.0/16,10.197.2.1,10.199.7.0/24,0.0.0.0"]);
    let inst = Installed::new();
    let sock = tmp.path().join("dhcp.sock");
    let _d = daemon(&inst.path("dhcp"), &sock, &tmp.path().join("daemon.log"));
    let cfg = json!({"cniVersion": "1.1.0", "name": "rdhcpnet2", "type": "bridge", "bridge": "rdhcpbr2",
        "ipam": {"type": "dhcp", "daemonSocketPath": sock, "priority": 7,
            "provide": [{"option": "host-name", "fromArg": "K8S_POD_NAME"}],
            "request": [{"option": "classless-static-routes"}]}})
    .to_string();
    let c = TestNetns::new("rdhcp-c2");
    let r = call("ADD", "dhcp-c2", &c, inst.dir.path()).args("IgnoreUnknown=1;K8S_POD_NAME=web-0").ok(&inst.path("bridge"), &cfg);
    // option 121 wins: no default route through the router (RFC 3442), the on-link one scoped
    assert_eq!(
        r["routes"],
        json!([{"dst": "10.198.0.0/16", "gw": "10.197.2.1", "priority": 7}, {"dst": "10.199.7.0/24", "priority": 7, "scope": 253}]),
        "{r}"
    );
    assert_eq!(r["ips"][0]["gateway"], "10.197.2.1");
    let routes = String::from_utf8(c.exec(&["ip", "-4", "route"]).stdout).unwrap();
    assert!(routes.contains("10.198.0.0/16 via 10.197.2.1 dev eth0 metric 7"), "{routes}");
    assert!(routes.contains("10.199.7.0/24 dev eth0 scope link metric 7"), "{routes}");
    assert!(!routes.contains("default"), "{routes}");
    // the host name the pod's name provided is dnsmasq's name for the lease
    let raw = std::fs::read_to_string(tmp.path().join("leases")).unwrap();
    assert!(raw.lines().any(|l| l.split_whitespace().nth(3) == Some("web-0") && l.contains(&addr(&r))), "{raw}");
    call("DEL", "dhcp-c2", &c, inst.dir.path()).ok(&inst.path("bridge"), &cfg);
    let released = poll(Duration::from_secs(5), || lease_of(tmp.path(), &addr(&r)).is_none());
    assert!(released, "{}", std::fs::read_to_string(tmp.path().join("leases")).unwrap());
}

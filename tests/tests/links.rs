//! macvlan, ipvlan, vlan and dummy against the kernel (netsandbox only).
//!
//! macvlan runs for real: its master is one end of a veth pair whose other end lives in a
//! "host" namespace behind the master (10.191.x.1), so containers on one master reach each
//! other (bridge mode) and that host. Compared with Debian's /usr/lib/cni/macvlan (1.1.1) on
//! the same input, mixed with Debian's host-local both ways, and driven by Go's cnitool.
//! This kernel has no ipvlan, vlan (802.1Q) or dummy: their ADD must fail naming the missing
//! kernel feature and leave nothing, and STATUS must answer code 50.
//!
//! Subnets 10.191.1.0/24–10.191.9.0/24; links `lkm*`; namespaces `rcni-lk-*`.

use rcni_tests::{go_cnitool, link, require_netsandbox, run, run_ok, Call, Installed, TestNetns};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const DEBIAN: &str = "/usr/lib/cni";

struct Env {
    inst: Installed,
    data: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        require_netsandbox();
        Env { inst: Installed::new(), data: tempfile::tempdir().unwrap() }
    }
    fn plugin(&self, name: &str) -> PathBuf {
        self.inst.path(name)
    }
    fn call(&self, cmd: &'static str, cid: &str, ns: &TestNetns) -> Call {
        let mut c = Call::new(cmd, cid, "eth0").netns(&ns.path());
        c.path = self.inst.dir.path().to_string_lossy().into_owned();
        c
    }
    /// A config of plugin `ty` for network `net`, host-local on `subnet` (none when empty), with
    /// `extra` keys merged in.
    fn conf(&self, ty: &str, net: &str, subnet: &str, extra: Value) -> String {
        let mut c = json!({"cniVersion": "1.0.0", "name": net, "type": ty});
        if !subnet.is_empty() {
            c["ipam"] =
                json!({"type": "host-local", "subnet": subnet, "rangeStart": subnet.replace(".0/24", ".10"), "dataDir": self.data.path()});
        }
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c.to_string()
    }
    fn leases(&self, net: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.data.path().join(net))
            .map(|d| d.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
            .unwrap_or_default();
        v.retain(|f| f != "lock" && f != ".rcni-by-id" && !f.starts_with("last_reserved_ip"));
        v.sort();
        v
    }
}

/// A master `name` in the sandbox: a veth whose peer is in namespace `host` with `gw`/24.
struct Master {
    name: String,
    host: TestNetns,
}

impl Master {
    fn new(name: &str, host: &str, gw: &str) -> Self {
        let host = TestNetns::new(host);
        let _ = run("ip", &["link", "del", name]);
        run_ok("ip", &["link", "add", name, "type", "veth", "peer", "name", "lkpeer", "netns", &host.name]);
        run_ok("ip", &["link", "set", name, "up"]);
        run_ok("ip", &["-n", &host.name, "addr", "add", &format!("{gw}/24"), "dev", "lkpeer"]);
        run_ok("ip", &["-n", &host.name, "link", "set", "lkpeer", "up"]);
        Master { name: name.into(), host }
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        let _ = run("ip", &["link", "del", &self.name]);
    }
}

fn with_prev(conf: &str, prev: &Value) -> String {
    let mut c: Value = serde_json::from_str(conf).unwrap();
    c["prevResult"] = prev.clone();
    c.to_string()
}

/// The container's links, but `lo`.
fn links_in(ns: &TestNetns) -> Vec<String> {
    let out = run_ok("ip", &["-n", &ns.name, "-o", "link", "show"]);
    out.lines().filter_map(|l| l.split(": ").nth(1)).map(|n| n.split('@').next().unwrap().to_string()).filter(|n| n != "lo").collect()
}

fn sysctl_in(ns: &TestNetns, key: &str) -> String {
    String::from_utf8(ns.exec(&["cat", &format!("/proc/sys/{key}")]).stdout).unwrap().trim().to_string()
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn macvlan_bridge_mode_result_traffic_check_and_del() {
    let e = Env::new();
    let m = Master::new("lkm1", "rcni-lk-host1", "10.191.1.1");
    let conf = e.conf("macvlan", "lk-mv1", "10.191.1.0/24", json!({"master": "lkm1", "mtu": 1400}));
    let a = TestNetns::new("rcni-lk-a1");
    let b = TestNetns::new("rcni-lk-b1");
    let ra = e.call("ADD", "lka", &a).ok(&e.plugin("macvlan"), &conf);
    let rb = e.call("ADD", "lkb", &b).args("IgnoreUnknown=1;MAC=02:00:0a:bf:01:0b").ok(&e.plugin("macvlan"), &conf);

    // one interface, the container's, with the kernel's MAC; the address on interface 0
    let la = link(Some(&a.name), "eth0").unwrap();
    assert_eq!(
        ra,
        json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "mac": la["address"], "sandbox": a.path()}],
            "ips": [{"address": "10.191.1.10/24", "gateway": "10.191.1.1", "interface": 0}]})
    );
    assert_eq!(rb["interfaces"][0]["mac"], "02:00:0a:bf:01:0b", "CNI_ARGS MAC=");
    for (ns, l) in [(&a, la.clone()), (&b, link(Some(&b.name), "eth0").unwrap())] {
        assert_eq!(l["linkinfo"]["info_kind"], "macvlan", "{l}");
        assert_eq!(l["linkinfo"]["info_data"]["mode"], "bridge", "{l}");
        assert_eq!(l["mtu"], 1400);
        assert_eq!(l["link_netnsid"], 0, "the parent is in the sandbox");
        assert!(l["operstate"] == "UP" || l["flags"].as_array().unwrap().contains(&json!("UP")), "{l}");
        assert_eq!(sysctl_in(ns, "net/ipv4/conf/eth0/arp_notify"), "1");
        assert_eq!(links_in(ns), ["eth0"], "no temporary link left");
    }
    assert_eq!(link(Some(&b.name), "eth0").unwrap()["address"], "02:00:0a:bf:01:0b");
    // bridge mode: the containers reach each other, and the host behind the master
    assert!(a.ping("10.191.1.11") && b.ping("10.191.1.10"), "container to container on one master");
    assert!(a.ping("10.191.1.1") && b.ping("10.191.1.1"), "the host behind the master");
    assert!(m.host.ping("10.191.1.10"), "from the host behind the master");

    // CHECK passes; a different mode or a missing address fails with the reference's text
    e.call("CHECK", "lka", &a).ok(&e.plugin("macvlan"), &with_prev(&conf, &ra));
    let mut vepa: Value = serde_json::from_str(&with_prev(&conf, &ra)).unwrap();
    vepa["mode"] = json!("vepa");
    let err = e.call("CHECK", "lka", &a).err(&e.plugin("macvlan"), &vepa.to_string());
    assert_eq!(err["msg"], "container macvlan mode bridge does not match expected value: vepa");
    run_ok("ip", &["-n", &b.name, "addr", "del", "10.191.1.11/24", "dev", "eth0"]);
    let err = e.call("CHECK", "lkb", &b).err(&e.plugin("macvlan"), &with_prev(&conf, &rb));
    assert!(err["msg"].as_str().unwrap().contains("10.191.1.11/24"), "{err}");

    // STATUS: the kernel has macvlan (the probe really made one, in a scratch namespace)
    let mut status: Value = serde_json::from_str(&conf).unwrap();
    status["cniVersion"] = json!("1.1.0");
    Call { command: "STATUS", path: e.inst.dir.path().to_string_lossy().into(), ..Default::default() }
        .ok(&e.plugin("macvlan"), &status.to_string());
    assert!(run_ok("ip", &["-o", "link"]).lines().all(|l| !l.contains("probe")), "the probe leaves nothing on the node");

    // DEL: link and lease gone; again, and without prevResult, fine
    e.call("DEL", "lka", &a).ok(&e.plugin("macvlan"), &with_prev(&conf, &ra));
    assert!(links_in(&a).is_empty());
    assert_eq!(e.leases("lk-mv1"), ["10.191.1.11"]);
    e.call("DEL", "lka", &a).ok(&e.plugin("macvlan"), &conf);
    e.call("DEL", "lkb", &b).ok(&e.plugin("macvlan"), &conf);
    assert!(links_in(&b).is_empty() && e.leases("lk-mv1").is_empty());
    assert!(link(None, "lkm1").is_some(), "the master stays");
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn macvlan_passthru_without_ipam_and_del_with_master_or_netns_gone() {
    let e = Env::new();
    let m = Master::new("lkm2", "rcni-lk-host2", "10.191.2.1");
    let a = TestNetns::new("rcni-lk-a2");
    let conf = e.conf("macvlan", "lk-mv2", "", json!({"master": "lkm2", "mode": "passthru"}));
    let r = e.call("ADD", "lkp", &a).ok(&e.plugin("macvlan"), &conf);
    // L2 only: the link, up, no addresses
    let l = link(Some(&a.name), "eth0").unwrap();
    assert_eq!(r, json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "mac": l["address"], "sandbox": a.path()}]}));
    assert_eq!(l["linkinfo"]["info_data"]["mode"], "passthru", "{l}");
    assert!(l["flags"].as_array().unwrap().contains(&json!("UP")), "{l}");
    assert!(run_ok("ip", &["-n", &a.name, "-4", "addr", "show", "eth0"]).trim().is_empty());
    // a second passthru macvlan on the same master is refused by the kernel, and leaves nothing
    let b = TestNetns::new("rcni-lk-b2");
    e.call("ADD", "lkp2", &b).err(&e.plugin("macvlan"), &conf);
    assert!(links_in(&b).is_empty());
    // the master goes (and the macvlan with it): DEL succeeds, twice
    drop(m);
    assert!(links_in(&a).is_empty(), "the macvlan went with its master");
    e.call("DEL", "lkp", &a).ok(&e.plugin("macvlan"), &conf);
    e.call("DEL", "lkp", &a).ok(&e.plugin("macvlan"), &conf);
    // the namespace goes too
    let path = a.path();
    drop(a);
    e.call("DEL", "lkp", &b).netns(&path).ok(&e.plugin("macvlan"), &conf);
    e.call("DEL", "lkp", &b).netns("").ok(&e.plugin("macvlan"), &conf);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn macvlan_failed_add_leaves_nothing() {
    let e = Env::new();
    let _m = Master::new("lkm3", "rcni-lk-host3", "10.191.3.1");
    let a = TestNetns::new("rcni-lk-a3");
    let mv = e.plugin("macvlan");
    // IPAM fails after the link was made: the link goes again
    let mut bad: Value = serde_json::from_str(&e.conf("macvlan", "lk-mv3", "10.191.3.0/24", json!({"master": "lkm3"}))).unwrap();
    bad["ipam"]["type"] = json!("no-such-ipam");
    e.call("ADD", "lkf", &a).err(&mv, &bad.to_string());
    assert!(links_in(&a).is_empty(), "{:?}", links_in(&a));
    // addresses fail after IPAM: link and lease go (a route via an unreachable gateway)
    let mut bad: Value = serde_json::from_str(&e.conf("macvlan", "lk-mv3", "10.191.3.0/24", json!({"master": "lkm3"}))).unwrap();
    bad["ipam"]["routes"] = json!([{"dst": "10.77.0.0/16", "gw": "10.191.99.1"}]);
    e.call("ADD", "lkf", &a).err(&mv, &bad.to_string());
    assert!(links_in(&a).is_empty() && e.leases("lk-mv3").is_empty(), "{:?} {:?}", links_in(&a), e.leases("lk-mv3"));
    // the MTU above the master's, a missing master, an unknown mode: refused with the reference's words
    let conf = |extra: Value| e.conf("macvlan", "lk-mv3", "10.191.3.0/24", extra);
    let err = e.call("ADD", "lkf", &a).err(&mv, &conf(json!({"master": "lkm3", "mtu": 9000})));
    assert_eq!((err["code"].as_u64(), err["msg"].as_str()), (Some(7), Some("invalid MTU 9000, must be [0, master MTU(1500)]")));
    let err = e.call("ADD", "lkf", &a).err(&mv, &conf(json!({"master": "lkm-gone"})));
    assert!(err["msg"].as_str().unwrap().starts_with("failed to lookup master \"lkm-gone\""), "{err}");
    let err = e.call("ADD", "lkf", &a).err(&mv, &conf(json!({"master": "lkm3", "mode": "l3"})));
    assert_eq!(err["msg"], "unknown macvlan mode: \"l3\"");
    // ifname taken in the container: the rename fails, the existing link stays, nothing else
    run_ok("ip", &["-n", &a.name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"]);
    let err = e.call("ADD", "lkf", &a).err(&mv, &conf(json!({"master": "lkm3"})));
    assert!(err["msg"].as_str().unwrap().starts_with("failed to rename macvlan to \"eth0\""), "{err}");
    assert_eq!(links_in(&a), ["eth1", "eth0"]);
    assert!(e.leases("lk-mv3").is_empty());
    // without a master and a default route: the reference's error
    let err = e.call("ADD", "lkf", &a).err(&mv, &e.conf("macvlan", "lk-mv3", "", json!({"linkInContainer": true})));
    assert_eq!(err["msg"], "no default route interface found");
}

/// The master from the default route, in the container with `linkInContainer`.
#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn macvlan_master_from_the_default_route_in_the_container() {
    let e = Env::new();
    let a = TestNetns::new("rcni-lk-a4");
    let host = TestNetns::new("rcni-lk-host4");
    run_ok("ip", &["-n", &a.name, "link", "add", "lkm4", "type", "veth", "peer", "name", "lkpeer", "netns", &host.name]);
    run_ok("ip", &["-n", &a.name, "addr", "add", "10.191.4.5/24", "dev", "lkm4"]);
    run_ok("ip", &["-n", &a.name, "link", "set", "lkm4", "up"]);
    run_ok("ip", &["-n", &a.name, "route", "add", "default", "via", "10.191.4.1"]);
    run_ok("ip", &["-n", &host.name, "addr", "add", "10.191.4.1/24", "dev", "lkpeer"]);
    run_ok("ip", &["-n", &host.name, "link", "set", "lkpeer", "up"]);
    let conf = e.conf("macvlan", "lk-mv4", "10.191.4.0/24", json!({"linkInContainer": true, "mode": "private"}));
    let mut c = e.call("ADD", "lki", &a);
    c.ifname = "net1".into();
    let r = c.ok(&e.plugin("macvlan"), &conf);
    assert_eq!(r["interfaces"][0]["name"], "net1");
    let l = link(Some(&a.name), "net1").unwrap();
    assert_eq!(l["link"], "lkm4", "the master is the container's default-route interface: {l}");
    assert_eq!(l["linkinfo"]["info_data"]["mode"], "private");
    assert!(host.ping("10.191.4.10"));
    let mut d = e.call("DEL", "lki", &a);
    d.ifname = "net1".into();
    d.ok(&e.plugin("macvlan"), &conf);
    assert_eq!(links_in(&a), ["lkm4"]);
}

/// The same input to Debian's macvlan and to ours: the same result (but the MACs the kernel
/// picks) and the same kernel state; then mixed with Debian's host-local both ways.
#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn macvlan_same_as_debian_and_mixed_with_debians_host_local() {
    let e = Env::new();
    let _m = Master::new("lkm5", "rcni-lk-host5", "10.191.5.1");
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(Path::new(DEBIAN).join("host-local"), dir.path().join("host-local")).unwrap();
    let ours_a = TestNetns::new("rcni-lk-oa5");
    let theirs_a = TestNetns::new("rcni-lk-ta5");
    let ours_b = TestNetns::new("rcni-lk-ob5");
    let theirs_b = TestNetns::new("rcni-lk-tb5");
    let state = |ns: &TestNetns| {
        let l = link(Some(&ns.name), "eth0").unwrap();
        let addrs = run_ok("ip", &["-n", &ns.name, "-4", "-br", "addr", "show", "eth0"]);
        let routes = run_ok("ip", &["-n", &ns.name, "route"]);
        (
            l["linkinfo"]["info_data"]["mode"].clone(),
            l["mtu"].clone(),
            l["address"].clone(),
            addrs.split_whitespace().nth(2).map(String::from),
            routes,
        )
    };
    let mut results = Vec::new();
    for (who, plugin, ns, mac, cid) in [
        ("ours", e.plugin("macvlan"), &ours_a, "02:00:0a:bf:05:0a", "lk-o"),
        ("theirs", Path::new(DEBIAN).join("macvlan"), &theirs_a, "02:00:0a:bf:05:0b", "lk-t"),
    ] {
        // each on its own network (leases from .10 each), the same keys
        let net = format!("lk-mv5-{who}");
        let conf = e.conf("macvlan", &net, "10.191.5.0/24", json!({"master": "lkm5", "mode": "vepa", "mtu": 1300, "mac": mac}));
        let mut conf: Value = serde_json::from_str(&conf).unwrap();
        conf["ipam"]["routes"] = json!([{"dst": "0.0.0.0/0"}]);
        conf["ipam"]["rangeStart"] = json!(if who == "ours" { "10.191.5.10" } else { "10.191.5.20" });
        let r = e.call("ADD", cid, ns).ok(&plugin, &conf.to_string());
        let (mode, mtu, addr, ip, routes) = state(ns);
        assert_eq!((mode, mtu, addr), (json!("vepa"), json!(1300), json!(mac)), "{who}");
        results.push((r, ip, routes, conf, plugin, ns, cid));
    }
    let norm = |r: &Value| {
        let mut r = r.clone();
        r["interfaces"][0]["sandbox"] = json!("");
        r["interfaces"][0]["mac"] = json!("");
        r["ips"][0]["address"] = json!("");
        // (an empty dns: Go writes `{}`, rcni nothing — docs/compatibility.md)
        r.as_object_mut().unwrap().remove("dns");
        r
    };
    assert_eq!(norm(&results[0].0), norm(&results[1].0), "result layout: ours {} theirs {}", results[0].0, results[1].0);
    assert_eq!(results[0].0["ips"][0]["address"], "10.191.5.10/24");
    assert_eq!(results[1].0["ips"][0]["address"], "10.191.5.20/24");
    assert_eq!(results[0].2.replace("10.191.5.10", "X"), results[1].2.replace("10.191.5.20", "X"), "routes");
    for (r, _, _, conf, plugin, ns, cid) in &results {
        e.call("CHECK", cid, ns).ok(plugin, &with_prev(&conf.to_string(), r));
        e.call("DEL", cid, ns).ok(plugin, &with_prev(&conf.to_string(), r));
        assert!(links_in(ns).is_empty());
    }

    // mixed: our macvlan with Debian's host-local, Debian's macvlan with our host-local
    let mixed_ours = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(e.plugin("macvlan"), mixed_ours.path().join("macvlan")).unwrap();
    std::os::unix::fs::symlink(Path::new(DEBIAN).join("host-local"), mixed_ours.path().join("host-local")).unwrap();
    let mixed_theirs = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(Path::new(DEBIAN).join("macvlan"), mixed_theirs.path().join("macvlan")).unwrap();
    std::os::unix::fs::symlink(e.plugin("host-local"), mixed_theirs.path().join("host-local")).unwrap();
    let conf = e.conf("macvlan", "lk-mv5-mix", "10.191.5.0/24", json!({"master": "lkm5"}));
    let call = |cmd: &'static str, cid: &str, ns: &TestNetns, d: &tempfile::TempDir| {
        let mut c = Call::new(cmd, cid, "eth0").netns(&ns.path());
        c.path = d.path().to_string_lossy().into_owned();
        c
    };
    let ra = call("ADD", "lk-mo", &ours_b, &mixed_ours).ok(&mixed_ours.path().join("macvlan"), &conf);
    let rb = call("ADD", "lk-mt", &theirs_b, &mixed_theirs).ok(&mixed_theirs.path().join("macvlan"), &conf);
    assert_eq!(e.leases("lk-mv5-mix"), ["10.191.5.10", "10.191.5.11"], "one lease store, both formats");
    assert!(ours_b.ping(&rcni_tests::ip_of(&rb, false)) && theirs_b.ping(&rcni_tests::ip_of(&ra, false)), "the two reach each other");
    call("DEL", "lk-mo", &ours_b, &mixed_ours).ok(&mixed_ours.path().join("macvlan"), &with_prev(&conf, &ra));
    call("DEL", "lk-mt", &theirs_b, &mixed_theirs).ok(&mixed_theirs.path().join("macvlan"), &with_prev(&conf, &rb));
    assert!(e.leases("lk-mv5-mix").is_empty() && links_in(&ours_b).is_empty() && links_in(&theirs_b).is_empty());
}

/// Go's cnitool drives our macvlan from a conflist, with the MAC as a capability argument.
#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn go_cnitool_drives_macvlan_with_a_runtime_mac() {
    let e = Env::new();
    let m = Master::new("lkm6", "rcni-lk-host6", "10.191.6.1");
    let confdir = tempfile::tempdir().unwrap();
    let conflist = json!({"cniVersion": "1.0.0", "name": "lk-mv6", "plugins": [
        {"type": "macvlan", "master": "lkm6", "capabilities": {"mac": true},
         "ipam": {"type": "host-local", "subnet": "10.191.6.0/24", "rangeStart": "10.191.6.10", "dataDir": e.data.path()}}]});
    std::fs::write(confdir.path().join("lk-mv6.conflist"), conflist.to_string()).unwrap();
    let a = TestNetns::new("rcni-lk-a6");
    let tool = |verb: &str| {
        let out = std::process::Command::new(go_cnitool())
            .args([verb, "lk-mv6", &a.path()])
            .env("NETCONFPATH", confdir.path())
            .env("CNI_PATH", e.inst.dir.path())
            .env("CAP_ARGS", json!({"mac": "02:00:0a:bf:06:0a"}).to_string())
            .env_remove("CNI_ARGS")
            .env_remove("CNI_IFNAME")
            .output()
            .unwrap();
        assert!(out.status.success(), "cnitool {verb}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let r: Value = serde_json::from_str(&tool("add")).unwrap();
    assert_eq!(r["interfaces"][0]["mac"], "02:00:0a:bf:06:0a", "{r}");
    assert_eq!(link(Some(&a.name), "eth0").unwrap()["address"], "02:00:0a:bf:06:0a");
    assert!(a.ping("10.191.6.1") && m.host.ping("10.191.6.10"));
    tool("check");
    tool("del");
    assert!(links_in(&a).is_empty() && e.leases("lk-mv6").is_empty());
}

/// This kernel has no ipvlan, no 802.1Q and no dummy: ADD fails naming what is missing and
/// leaves nothing (no link, no lease), STATUS answers 50, DEL succeeds.
#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn ipvlan_vlan_dummy_need_kernel_support_and_say_so() {
    let e = Env::new();
    let _m = Master::new("lkm7", "rcni-lk-host7", "10.191.7.1");
    let a = TestNetns::new("rcni-lk-a7");
    for (ty, subnet, extra, missing) in [
        ("ipvlan", "10.191.7.0/24", json!({"master": "lkm7", "mode": "l3"}), "the kernel has no ipvlan support (module ipvlan)"),
        ("vlan", "10.191.8.0/24", json!({"master": "lkm7", "vlanId": 42, "mtu": 1400}), "the kernel has no vlan support (module 8021q)"),
        ("dummy", "10.191.9.0/24", json!({}), "the kernel has no dummy support (module dummy)"),
    ] {
        let net = format!("lk-{ty}");
        let conf = e.conf(ty, &net, subnet, extra);
        let err = e.call("ADD", "lkk", &a).err(&e.plugin(ty), &conf);
        assert_eq!(err["code"], 999, "{ty}: {err}");
        let msg = err["msg"].as_str().unwrap();
        assert!(msg.starts_with(&format!("failed to create {ty}: {missing}")), "{ty}: {msg}");
        assert!(links_in(&a).is_empty(), "{ty}: {:?}", links_in(&a));
        assert!(e.leases(&net).is_empty(), "{ty}: {:?}", e.leases(&net));
        let mut status: Value = serde_json::from_str(&conf).unwrap();
        status["cniVersion"] = json!("1.1.0");
        let st = Call { command: "STATUS", path: e.inst.dir.path().to_string_lossy().into(), ..Default::default() };
        let err = st.err(&e.plugin(ty), &status.to_string());
        assert_eq!((err["code"].as_u64(), err["msg"].as_str()), (Some(50), Some(missing)), "{ty}");
        e.call("DEL", "lkk", &a).ok(&e.plugin(ty), &conf);
    }
    // vlan's DEL needs no master (the reference's fails without one)
    let conf = e.conf("vlan", "lk-vlan", "10.191.8.0/24", json!({"master": "lkm-gone", "vlanId": 42}));
    e.call("DEL", "lkk", &a).ok(&e.plugin("vlan"), &conf);
    // chained ipvlan without master: prevResult's interface is the master, its addresses are used
    let mut chained: Value = serde_json::from_str(&e.conf("ipvlan", "lk-ipv", "", json!({}))).unwrap();
    chained["prevResult"] =
        json!({"cniVersion": "1.0.0", "interfaces": [{"name": "lkm7"}], "ips": [{"address": "10.191.7.50/24", "interface": 0}]});
    let err = e.call("ADD", "lkk", &a).err(&e.plugin("ipvlan"), &chained.to_string());
    assert!(err["msg"].as_str().unwrap().contains("the kernel has no ipvlan support"), "{err}");
    assert!(links_in(&a).is_empty());
}

//! GC and STATUS of rcni's plugins against the kernel (netsandbox only): GC removes exactly the
//! objects of the network's attachments that are not valid (leases, masquerade and portmap
//! elements, spoof-check rules, old portmap generations, IFBs, tuning backups), never another network's or
//! Debian's plugins' objects, and nothing at all without the valid-attachments key; STATUS
//! answers 50 when ADD could not work.
//!
//! Subnets 10.238.0.0/16 and 10.239.0.0/16, bridges rcnigc1–rcnigc4, namespaces rcni-gc-*.

use rcni_tests::{require_netsandbox, run, run_ok, Call, Installed, TestNetns};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const DEBIAN_HOST_LOCAL: &str = "/usr/lib/cni/host-local";

struct Env {
    inst: Installed,
    leases: tempfile::TempDir,
    tuning: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        require_netsandbox();
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
        // these tests play attachments whose ADD is long done and forgotten: no grace period for
        // ADDs in progress (cni_plugin::pending, tested on its own), for the plugins
        // this process runs and the ones they run
        std::env::set_var("RCNI_GC_GRACE", "0");
        Env { inst: Installed::new(), leases: tempfile::tempdir().unwrap(), tuning: tempfile::tempdir().unwrap() }
    }

    fn plugin(&self, name: &str) -> PathBuf {
        self.inst.path(name)
    }

    fn call(&self, cmd: &'static str, cid: &str, ns: Option<&TestNetns>) -> Call {
        let mut c = Call::new(cmd, cid, "eth0");
        if let Some(ns) = ns {
            c = c.netns(&ns.path());
        }
        c.path = self.inst.dir.path().to_string_lossy().into_owned();
        c
    }

    /// The network's plugin configs (1.1.0): bridge with ipMasq + host-local, portmap,
    /// bandwidth, tuning; `extra` is merged into every one.
    fn confs(&self, net: &str, br: &str, subnet: &str, extra: &Value) -> [Value; 4] {
        let mut v = [
            json!({"type": "bridge", "bridge": br, "isGateway": true, "ipMasq": true, "macspoofchk": true,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]], "dataDir": self.leases.path()}}),
            json!({"type": "portmap", "capabilities": {"portMappings": true}}),
            json!({"type": "bandwidth", "ingressRate": 8_000_000, "ingressBurst": 800_000, "egressRate": 8_000_000, "egressBurst": 800_000}),
            json!({"type": "tuning", "mtu": 1400, "dataDir": self.tuning.path()}),
        ];
        for c in &mut v {
            c["cniVersion"] = json!("1.1.0");
            c["name"] = json!(net);
            for (k, x) in extra.as_object().unwrap() {
                c[k] = x.clone();
            }
        }
        v
    }

    /// Runs the chain's ADD for `cid` in `ns`, publishing `host_port`; returns the final result.
    fn add(&self, confs: &[Value; 4], cid: &str, ns: &TestNetns, host_port: u16, portmap_extra: Value) -> Value {
        let mut prev = Value::Null;
        for (i, c) in confs.iter().enumerate() {
            let mut c = c.clone();
            if i > 0 {
                c["prevResult"] = prev.clone();
            }
            if c["type"] == "portmap" {
                c["runtimeConfig"] = json!({"portMappings": [{"hostPort": host_port, "containerPort": 80, "protocol": "tcp"}]});
                for (k, x) in portmap_extra.as_object().unwrap() {
                    c[k] = x.clone();
                }
            }
            prev = self.call("ADD", cid, Some(ns)).ok(&self.plugin(c["type"].as_str().unwrap()), &c.to_string());
        }
        prev
    }

    /// GC of every plugin of the chain (as libcni does it, in order) with `valid`, or without
    /// the key when `None`.
    fn gc(&self, confs: &[Value; 4], valid: Option<&[&str]>, key: &str) {
        for c in confs {
            let mut c = c.clone();
            if let Some(v) = valid {
                c[key] = Value::Array(v.iter().map(|cid| json!({"containerID": cid, "ifname": "eth0"})).collect());
            }
            self.call("GC", "", None).ok(&self.plugin(c["type"].as_str().unwrap()), &c.to_string());
        }
    }

    fn leases(&self, net: &str) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = std::fs::read_dir(self.leases.path().join(net))
            .map(|d| {
                d.map(|e| e.unwrap())
                    .filter(|e| e.file_name().to_string_lossy().parse::<std::net::IpAddr>().is_ok())
                    .map(|e| (e.file_name().into_string().unwrap(), std::fs::read_to_string(e.path()).unwrap()))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn lease_holders(&self, net: &str) -> Vec<String> {
        self.leases(net).into_iter().map(|(_, c)| c.split("\r\n").next().unwrap().to_string()).collect()
    }

    fn backup(&self, cid: &str) -> bool {
        self.tuning.path().join(format!("{cid}_eth0.json")).exists()
    }
}

fn nft_table(name: &str) -> String {
    String::from_utf8(run("nft", &["list", "table", "inet", name]).stdout).unwrap()
}

/// Whether the owner comment of `(net, cid, eth0)` appears in table `name`.
fn owned_in(name: &str, net: &str, cid: &str) -> bool {
    nft_table(name).contains(&format!("net={net} id={cid} if=eth0\""))
}

fn link_exists(name: &str) -> bool {
    rcni_tests::link(None, name).is_some()
}

/// The IFB in a bandwidth result (the last interface).
fn ifb_of(result: &Value) -> String {
    let ifs = result["interfaces"].as_array().unwrap();
    let n = ifs.iter().rev().find(|i| i["name"].as_str().unwrap().starts_with("bwp")).expect("an IFB in the result");
    n["name"].as_str().unwrap().to_string()
}

/// Everything an attachment has: lease, masquerade element and spoof-check rule, portmap
/// element, IFB, tuning backup.
fn has_all(e: &Env, net: &str, cid: &str, ifb: &str) -> [bool; 6] {
    let spoof = String::from_utf8(run("nft", &["list", "table", "bridge", "rcni"]).stdout).unwrap();
    let spoof = spoof.contains(&format!("net={net} id={cid} if=eth0\""));
    [
        e.lease_holders(net).iter().any(|h| h == cid),
        owned_in("rcni", net, cid),
        spoof,
        owned_in("rcni_hostport", net, cid),
        link_exists(ifb),
        e.backup(cid),
    ]
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn gc_removes_exactly_the_invalid_attachments() {
    let e = Env::new();
    let net = "gcnet1";
    let confs = e.confs(net, "rcnigc1", "10.238.1.0/24", &json!({}));
    let (a, b) = (TestNetns::new("rcni-gc-a"), TestNetns::new("rcni-gc-b"));
    // a's portmap has other settings: its generation is older than the current config's
    let ra = e.add(&confs, "gc-a", &a, 38081, json!({"markMasqBit": 12}));
    let rb = e.add(&confs, "gc-b", &b, 38082, json!({}));
    let (ifb_a, ifb_b) = (ifb_of(&ra), ifb_of(&rb));
    assert_eq!(has_all(&e, net, "gc-a", &ifb_a), [true; 6]);
    assert_eq!(has_all(&e, net, "gc-b", &ifb_b), [true; 6]);
    let generations = |t: &str| t.matches(&format!("chain hp_{net}_")).count();
    assert_eq!(generations(&nft_table("rcni_hostport")), 2);
    assert!(b.ping("10.238.1.1"));

    // (3) without the valid-attachments key: nothing is removed
    e.gc(&confs, None, "");
    assert_eq!(has_all(&e, net, "gc-a", &ifb_a), [true; 6], "no key, no removal");
    assert_eq!(has_all(&e, net, "gc-b", &ifb_b), [true; 6]);

    // the attachments valid under the old key spelling: nothing is removed
    e.gc(&confs, Some(&["gc-a", "gc-b"]), "cni.dev/attachments");
    assert_eq!(has_all(&e, net, "gc-a", &ifb_a), [true; 6]);

    // (1) only b is valid: a's objects go, b's all stay and it still reaches its gateway
    let leases_before = e.leases(net);
    e.gc(&confs, Some(&["gc-b"]), "cni.dev/valid-attachments");
    assert_eq!(has_all(&e, net, "gc-a", &ifb_a), [false; 6], "a is reclaimed");
    assert_eq!(has_all(&e, net, "gc-b", &ifb_b), [true; 6], "b is kept");
    assert_eq!(e.leases(net).len(), leases_before.len() - 1);
    assert_eq!(generations(&nft_table("rcni_hostport")), 1, "a's emptied older generation is gone");
    assert!(nft_table("rcni_hostport").contains(&format!("rcni portmap net={net} gen=")));
    assert!(b.ping("10.238.1.1"), "b still reaches its gateway");
    let store = e.leases.path().join(net);
    assert!(store.join("lock").exists() && store.join("last_reserved_ip.0").exists());

    // GC again: idempotent
    e.gc(&confs, Some(&["gc-b"]), "cni.dev/valid-attachments");
    assert_eq!(has_all(&e, net, "gc-b", &ifb_b), [true; 6]);

    // b's DEL still works after the GC; then a GC with an empty list has nothing left to do
    for c in confs.iter().rev() {
        let mut c = c.clone();
        c["prevResult"] = rb.clone();
        e.call("DEL", "gc-b", Some(&b)).ok(&e.plugin(c["type"].as_str().unwrap()), &c.to_string());
    }
    e.gc(&confs, Some(&[]), "cni.dev/valid-attachments");
    assert_eq!(has_all(&e, net, "gc-b", &ifb_b), [false; 6]);
    let _ = run("ip", &["link", "del", "rcnigc1"]);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn gc_never_touches_other_networks_or_debians_objects() {
    let e = Env::new();
    // network B (whose name extends A's) with one attachment of rcni's chain …
    let (net_a, net_b) = ("gcnet2", "gcnet2_b");
    let confs_b = e.confs(net_b, "rcnigc2", "10.239.2.0/24", &json!({}));
    let ns = TestNetns::new("rcni-gc-other");
    let rb = e.add(&confs_b, "gc-other", &ns, 38083, json!({}));
    let ifb_b = ifb_of(&rb);
    // … and a lease Debian's host-local made in B's store
    let deb = json!({"cniVersion": "1.0.0", "name": net_b, "type": "host-local",
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.239.3.0/24"}]], "dataDir": e.leases.path()}});
    Call::new("ADD", "gc-debian", "eth0").ok(Path::new(DEBIAN_HOST_LOCAL), &deb.to_string());
    assert_eq!(e.lease_holders(net_b).len(), 2);
    assert_eq!(has_all(&e, net_b, "gc-other", &ifb_b), [true; 6]);

    // (2) GC of network A with an empty list (same data directories, another bridge)
    let confs_a = e.confs(net_a, "rcnigc2", "10.239.4.0/24", &json!({}));
    e.gc(&confs_a, Some(&[]), "cni.dev/valid-attachments");
    assert_eq!(has_all(&e, net_b, "gc-other", &ifb_b), [true; 6], "B's objects are not A's");
    assert_eq!(e.lease_holders(net_b).len(), 2, "Debian's lease stays");
    assert!(ns.ping("10.239.2.1"));

    // GC of B itself reclaims Debian's lease too (same file format), and keeps the valid one
    e.gc(&confs_b, Some(&["gc-other"]), "cni.dev/valid-attachments");
    assert_eq!(e.lease_holders(net_b), vec!["gc-other".to_string()]);
    assert_eq!(has_all(&e, net_b, "gc-other", &ifb_b), [true; 6]);

    e.gc(&confs_b, Some(&[]), "cni.dev/valid-attachments");
    assert_eq!(has_all(&e, net_b, "gc-other", &ifb_b), [false; 6]);
    let _ = run("ip", &["link", "del", "rcnigc2"]);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn ptp_gc_reclaims_masquerade_and_leases() {
    let e = Env::new();
    let net = "gcptp";
    let conf = json!({"cniVersion": "1.1.0", "name": net, "type": "ptp", "ipMasq": true,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.239.5.0/24"}]], "dataDir": e.leases.path()}});
    let (p1, p2) = (TestNetns::new("rcni-gc-p1"), TestNetns::new("rcni-gc-p2"));
    let r1 = e.call("ADD", "gc-p1", Some(&p1)).ok(&e.plugin("ptp"), &conf.to_string());
    e.call("ADD", "gc-p2", Some(&p2)).ok(&e.plugin("ptp"), &conf.to_string());
    assert!(owned_in("rcni", net, "gc-p1") && owned_in("rcni", net, "gc-p2"));
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "gc-p2", "ifname": "eth0"}]);
    e.call("GC", "", None).ok(&e.plugin("ptp"), &gc.to_string());
    assert!(!owned_in("rcni", net, "gc-p1") && owned_in("rcni", net, "gc-p2"));
    assert_eq!(e.lease_holders(net), vec!["gc-p2".to_string()], "GC forwarded to host-local");
    let gw = r1["ips"][0]["gateway"].as_str().unwrap().to_string();
    assert!(p2.ping(&gw), "the valid one still reaches its gateway");
    gc["cni.dev/valid-attachments"] = json!([]);
    e.call("GC", "", None).ok(&e.plugin("ptp"), &gc.to_string());
    assert!(!owned_in("rcni", net, "gc-p2") && e.lease_holders(net).is_empty());
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn status_answers_50_when_add_cannot_work() {
    let e = Env::new();
    let status = |conf: &Value| e.call("STATUS", "", None).run(&e.plugin(conf["type"].as_str().unwrap()), &conf.to_string());
    let bridge = |ipam: Value| json!({"cniVersion": "1.1.0", "name": "gcstatus", "type": "bridge", "bridge": "rcnigc3", "ipMasq": true, "ipam": ipam});
    let host_local = |dir: &Path, subnet: &str| json!({"type": "host-local", "ranges": [[{"subnet": subnet}]], "dataDir": dir});

    // usable: success from bridge (forwarded to host-local), host-local, portmap, ptp
    let ok = bridge(host_local(e.leases.path(), "10.238.9.0/24"));
    assert_eq!(status(&ok), (0, Value::Null));
    let mut hl = ok.clone();
    hl["type"] = json!("host-local");
    assert_eq!(status(&hl), (0, Value::Null));
    assert_eq!(status(&json!({"cniVersion": "1.1.0", "name": "gcstatus", "type": "portmap"})).0, 0);
    let mut ptp = ok.clone();
    ptp["type"] = json!("ptp");
    assert_eq!(status(&ptp).0, 0);

    // the data directory is a file: not writable
    let file = e.leases.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    for conf in [bridge(host_local(&file, "10.238.9.0/24")), {
        let mut c = bridge(host_local(&file, "10.238.9.0/24"));
        c["type"] = json!("host-local");
        c
    }] {
        let (code, err) = status(&conf);
        assert_eq!((code, err["code"].clone()), (1, json!(50)), "{err}");
    }

    // a /30 with its one address leased: exhausted (and free again after DEL)
    let small = bridge(host_local(e.leases.path(), "10.238.10.0/30"));
    let mut small_hl = small.clone();
    small_hl["type"] = json!("host-local");
    assert_eq!(status(&small).0, 0);
    Call::new("ADD", "gc-full", "eth0").ok(&e.plugin("host-local"), &small_hl.to_string());
    let (code, err) = status(&small);
    assert_eq!((code, err["code"].clone()), (1, json!(50)), "{err}");
    assert!(err["msg"].as_str().unwrap().contains("no IP addresses available"), "{err}");
    Call::new("DEL", "gc-full", "eth0").ok(&e.plugin("host-local"), &small_hl.to_string());
    assert_eq!(status(&small).0, 0);

    // the IPAM plugin is not on CNI_PATH
    let missing = bridge(json!({"type": "no-such-ipam"}));
    let (code, err) = status(&missing);
    assert_eq!((code, err["code"].clone()), (1, json!(50)), "{err}");
    let mut ptp_missing = missing.clone();
    ptp_missing["type"] = json!("ptp");
    assert_eq!(status(&ptp_missing).1["code"], 50);
    // STATUS changed nothing: no bridge was made
    assert!(run_ok("ip", &["-br", "link"]).lines().all(|l| !l.starts_with("rcnigc3 ")));
}

/// Through libcni: an attachment the runtime lost track of (no cache entry) is not DELeted by
/// `gc_network_list`, but the plugins' GC, given the valid list under both keys, reclaims it.
#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn libcni_gc_reclaims_an_attachment_the_runtime_forgot() {
    use cni_runtime::{CniConfig, Ctx, GcArgs, RuntimeConf};
    use cni_types::config::GcAttachment;
    let e = Env::new();
    let net = "gclibcni";
    let list = json!({"cniVersion": "1.1.0", "name": net, "plugins": [
        {"type": "bridge", "bridge": "rcnigc4", "isGateway": true, "ipMasq": true,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.239.6.0/24"}]], "dataDir": e.leases.path()}},
        {"type": "portmap", "capabilities": {"portMappings": true}}]});
    let list = cni_types::config::NetworkConfigList::from_bytes(list.to_string().as_bytes()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let cni = CniConfig::new(vec![e.inst.dir.path().to_path_buf()]).with_cache_dir(cache.path());
    let ctx = Ctx::background();
    let (x, y) = (TestNetns::new("rcni-gc-lx"), TestNetns::new("rcni-gc-ly"));
    let rt = |cid: &str, ns: &TestNetns, port: u16| {
        let mut r = RuntimeConf { container_id: cid.into(), netns: ns.path(), ifname: "eth0".into(), ..Default::default() };
        r.capability_args.insert("portMappings".into(), json!([{"hostPort": port, "containerPort": 80, "protocol": "tcp"}]));
        r
    };
    cni.add_network_list(&ctx, &list, &rt("gc-lx", &x, 38091)).unwrap();
    cni.add_network_list(&ctx, &list, &rt("gc-ly", &y, 38092)).unwrap();
    // the runtime forgets x
    std::fs::remove_file(cache.path().join(format!("results/{net}-gc-lx-eth0"))).unwrap();
    let valid = GcArgs { valid_attachments: vec![GcAttachment { container_id: "gc-ly".into(), ifname: "eth0".into() }] };
    cni.gc_network_list(&ctx, &list, Some(&valid)).unwrap();
    assert_eq!(e.lease_holders(net), vec!["gc-ly".to_string()]);
    for table in ["rcni", "rcni_hostport"] {
        assert!(!owned_in(table, net, "gc-lx") && owned_in(table, net, "gc-ly"), "{table}");
    }
    assert!(y.ping("10.239.6.1"));
    // nothing valid: libcni DELs y, and GC has nothing left
    cni.gc_network_list(&ctx, &list, Some(&GcArgs::default())).unwrap();
    assert!(e.lease_holders(net).is_empty() && !owned_in("rcni", net, "gc-ly") && !owned_in("rcni_hostport", net, "gc-ly"));
    let _ = run("ip", &["link", "del", "rcnigc4"]);
}

/// firewall (nftables backend): GC removes the invalid attachments' addresses of this network
/// only, and a bridge's isolation rules with its last container.
#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn firewall_gc_reclaims_addresses_and_isolation() {
    let e = Env::new();
    let conf = |net: &str, br: &str, ip: &str| {
        json!({"cniVersion": "1.1.0", "name": net, "type": "firewall", "ingressPolicy": "same-bridge",
            "prevResult": {"cniVersion": "1.1.0", "interfaces": [{"name": br}, {"name": "eth0", "sandbox": "/x"}],
                "ips": [{"address": ip, "interface": 1}]}})
    };
    let fw = e.plugin("firewall");
    let a1 = conf("gcfw", "rcnigcfw1", "10.239.7.2/24");
    let a2 = conf("gcfw", "rcnigcfw1", "10.239.7.3/24");
    let b1 = conf("gcfw2", "rcnigcfw2", "10.239.8.2/24");
    for (cid, c) in [("gc-f1", &a1), ("gc-f2", &a2), ("gc-g1", &b1)] {
        e.call("ADD", cid, None).ok(&fw, &c.to_string());
    }
    let table = || nft_table("rcni_firewall");
    assert!(table().contains("10.239.7.2") && table().contains("isolation br=rcnigcfw1"), "{}", table());
    let mut gc = json!({"cniVersion": "1.1.0", "name": "gcfw", "type": "firewall", "ingressPolicy": "same-bridge"});
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "gc-f2", "ifname": "eth0"}]);
    e.call("GC", "", None).ok(&fw, &gc.to_string());
    let t = table();
    assert!(!t.contains("10.239.7.2 ") && t.contains("10.239.7.3 ") && t.contains("10.239.8.2 "), "{t}");
    assert!(t.contains("isolation br=rcnigcfw1"), "the bridge still has a container: {t}");
    gc["cni.dev/valid-attachments"] = json!([]);
    e.call("GC", "", None).ok(&fw, &gc.to_string());
    let t = table();
    assert!(!t.contains("10.239.7.3 ") && !t.contains("isolation br=rcnigcfw1"), "{t}");
    assert!(t.contains("10.239.8.2 ") && t.contains("isolation br=rcnigcfw2"), "another network's objects stay: {t}");
    // STATUS: the nftables backend works here; the iptables backend finds its programs
    e.call("STATUS", "", None).ok(&fw, &gc.to_string());
    gc["backend"] = json!("iptables");
    e.call("STATUS", "", None).ok(&fw, &gc.to_string());
    e.call("DEL", "gc-g1", None).ok(&fw, &b1.to_string());
}

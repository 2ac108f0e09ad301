//! host-local: the upstream scenarios against our plugin (as installed, run as a process), and
//! interop with Debian's Go host-local on one data directory.

use rcni_tests::{Call, Installed};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const GO_HOST_LOCAL: &str = "/usr/lib/cni/host-local";

struct Env {
    inst: Installed,
    data: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env { inst: Installed::new(), data: tempfile::tempdir().unwrap() }
    }
    fn ours(&self) -> PathBuf {
        self.inst.path("host-local")
    }
    fn dir(&self) -> &Path {
        self.data.path()
    }
    /// A config for network `net` with this ipam section (dataDir added).
    fn conf(&self, version: &str, net: &str, mut ipam: Value) -> String {
        ipam["type"] = json!("host-local");
        ipam["dataDir"] = json!(self.dir());
        json!({"cniVersion": version, "name": net, "ipam": ipam}).to_string()
    }
    fn file(&self, net: &str, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir().join(net).join(name)).ok()
    }
    fn files(&self, net: &str) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(self.dir().join(net)).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }
}

fn addrs(result: &Value) -> Vec<String> {
    result["ips"].as_array().unwrap().iter().map(|i| i["address"].as_str().unwrap().to_string()).collect()
}

#[test]
fn allocates_and_releases_dual_stack_with_exact_files() {
    let e = Env::new();
    std::fs::write(
        e.dir().join("resolv.conf"),
        "nameserver 192.0.2.3\ndomain example.com\nsearch a.example b.example\n# comment\noptions ndots:2\n",
    )
    .unwrap();
    let conf = e.conf(
        "1.1.0",
        "mynet",
        json!({
            "ranges": [[{"subnet": "10.1.2.0/24"}, {"subnet": "10.2.2.0/24"}], [{"subnet": "2001:db8:1::0/64"}]],
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}, {"dst": "192.168.0.0/16", "gw": "1.1.1.1"}, {"dst": "2001:db8:2::0/64", "gw": "2001:db8:3::1"}],
            "resolvConf": e.dir().join("resolv.conf")
        }),
    );
    let r = Call::new("ADD", "dummy", "eth0").ok(&e.ours(), &conf);
    assert_eq!(
        r,
        json!({
            "cniVersion": "1.1.0",
            "ips": [{"address": "10.1.2.2/24", "gateway": "10.1.2.1"}, {"address": "2001:db8:1::2/64", "gateway": "2001:db8:1::1"}],
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}, {"dst": "192.168.0.0/16", "gw": "1.1.1.1"}, {"dst": "2001:db8:2::/64", "gw": "2001:db8:3::1"}],
            "dns": {"nameservers": ["192.0.2.3"], "domain": "example.com", "search": ["a.example", "b.example"], "options": ["ndots:2"]}
        })
    );
    assert_eq!(e.file("mynet", "10.1.2.2").unwrap(), "dummy\r\neth0");
    assert_eq!(e.file("mynet", "2001:db8:1::2").unwrap(), "dummy\r\neth0");
    assert_eq!(e.file("mynet", "last_reserved_ip.0").unwrap(), "10.1.2.2");
    assert_eq!(e.file("mynet", "last_reserved_ip.1").unwrap(), "2001:db8:1::2");
    Call::new("CHECK", "dummy", "eth0").ok(&e.ours(), &conf);
    Call::new("DEL", "dummy", "eth0").ok(&e.ours(), &conf);
    assert!(e.file("mynet", "10.1.2.2").is_none() && e.file("mynet", "2001:db8:1::2").is_none());
    assert_eq!(
        e.files("mynet"),
        vec![".rcni-by-id", "last_reserved_ip.0", "last_reserved_ip.1", "lock"],
        "lock, last_reserved_ip and the index stay"
    );
    assert_eq!(std::fs::read_dir(e.dir().join("mynet/.rcni-by-id")).unwrap().count(), 0, "no index entry stays");
    Call::new("DEL", "dummy", "eth0").ok(&e.ours(), &conf);
    Call::new("CHECK", "dummy", "eth0").err(&e.ours(), &conf);
}

#[test]
fn results_follow_the_config_version() {
    let e = Env::new();
    let conf = e.conf("0.3.1", "v031", json!({"ranges": [[{"subnet": "10.1.2.0/24"}]]}));
    let r = Call::new("ADD", "c", "eth0").ok(&e.ours(), &conf);
    assert_eq!(r["cniVersion"], "0.3.1");
    assert_eq!(r["ips"][0]["version"], "4");
    let conf = e.conf("0.2.0", "v020", json!({"subnet": "10.1.3.0/24", "gateway": "10.1.3.254"}));
    let r = Call::new("ADD", "c", "eth0").ok(&e.ours(), &conf);
    assert_eq!(
        r,
        json!({"cniVersion": "0.2.0", "ip4": {"ip": "10.1.3.1/24", "gateway": "10.1.3.254"}, "dns": {}}),
        "legacy subnet; .1 is free when the gateway is elsewhere"
    );
}

#[test]
fn duplicate_add_refused_other_interface_allowed() {
    let e = Env::new();
    let conf = e.conf("1.0.0", "dup", json!({"ranges": [[{"subnet": "10.1.2.0/24"}]]}));
    assert_eq!(addrs(&Call::new("ADD", "c1", "eth0").ok(&e.ours(), &conf)), vec!["10.1.2.2/24"]);
    let err = Call::new("ADD", "c1", "eth0").err(&e.ours(), &conf);
    assert_eq!(err["msg"], "failed to allocate for range 0: 10.1.2.2 has been allocated to c1, duplicate allocation is not allowed");
    assert_eq!(e.file("dup", "10.1.2.2").unwrap(), "c1\r\neth0", "the existing lease is kept");
    assert_eq!(addrs(&Call::new("ADD", "c1", "eth1").ok(&e.ours(), &conf)), vec!["10.1.2.3/24"]);
    Call::new("DEL", "c1", "eth0").ok(&e.ours(), &conf);
    assert!(e.file("dup", "10.1.2.2").is_none());
    assert_eq!(e.file("dup", "10.1.2.3").unwrap(), "c1\r\neth1", "the other interface keeps its address");
}

#[test]
fn old_format_unknown_ids_and_whitespace() {
    let e = Env::new();
    let conf = e.conf("1.0.0", "old", json!({"ranges": [[{"subnet": "10.1.2.0/24"}]]}));
    Call::new("ADD", "c0", "eth0").ok(&e.ours(), &conf);
    // a lease written by an old plugin: the container ID only
    std::fs::write(e.dir().join("old/10.1.2.9"), "legacy").unwrap();
    Call::new("CHECK", "legacy", "eth0").ok(&e.ours(), &conf);
    Call::new("DEL", "legacy", "eth0").ok(&e.ours(), &conf);
    assert!(e.file("old", "10.1.2.9").is_none());
    // unknown IDs are fine
    Call::new("DEL", "never-seen", "eth0").ok(&e.ours(), &conf);
    // whitespace in files is ignored
    std::fs::write(e.dir().join("old/10.1.2.7"), "  spaced\r\neth0\n\n").unwrap();
    let err = Call::new("ADD", "spaced", "eth0").err(&e.ours(), &conf);
    assert!(err["msg"].as_str().unwrap().contains("10.1.2.7 has been allocated to spaced"), "{err}");
    Call::new("DEL", "spaced", "eth0").ok(&e.ours(), &conf);
    assert!(e.file("old", "10.1.2.7").is_none());
    // DEL works even when the ranges in the config are broken
    let broken = e.conf("1.0.0", "old", json!({"ranges": [[{"subnet": "10.1.2.3/24"}]]}));
    Call::new("ADD", "c0", "eth0").err(&e.ours(), &broken);
    Call::new("DEL", "c0", "eth0").ok(&e.ours(), &broken);
    assert!(e.file("old", "10.1.2.2").is_none());
}

#[test]
fn round_robin_wraps_and_never_hands_out_gateway_or_broadcast() {
    let e = Env::new();
    // 10.1.2.0/29: .1 gateway, .2–.6 usable, .7 broadcast
    let conf = e.conf("1.0.0", "rr", json!({"ranges": [[{"subnet": "10.1.2.0/29"}]]}));
    let mut got = Vec::new();
    for i in 0..5 {
        got.push(addrs(&Call::new("ADD", &format!("c{i}"), "eth0").ok(&e.ours(), &conf))[0].clone());
    }
    assert_eq!(got, vec!["10.1.2.2/29", "10.1.2.3/29", "10.1.2.4/29", "10.1.2.5/29", "10.1.2.6/29"]);
    let err = Call::new("ADD", "c5", "eth0").err(&e.ours(), &conf);
    assert_eq!(err["msg"], "failed to allocate for range 0: no IP addresses available in range set: 10.1.2.1-10.1.2.6");
    // free .3, then the next allocation wraps around to it
    Call::new("DEL", "c1", "eth0").ok(&e.ours(), &conf);
    assert_eq!(addrs(&Call::new("ADD", "c6", "eth0").ok(&e.ours(), &conf)), vec!["10.1.2.3/29"]);
    // free .2 and .5: allocation continues after the last reserved (.3), so .5 comes before .2
    Call::new("DEL", "c0", "eth0").ok(&e.ours(), &conf);
    Call::new("DEL", "c3", "eth0").ok(&e.ours(), &conf);
    assert_eq!(addrs(&Call::new("ADD", "c7", "eth0").ok(&e.ours(), &conf)), vec!["10.1.2.5/29"]);
    assert_eq!(addrs(&Call::new("ADD", "c8", "eth0").ok(&e.ours(), &conf)), vec!["10.1.2.2/29"]);

    // a /30 has one usable address besides the gateway, never the broadcast
    let conf = e.conf("1.0.0", "tiny", json!({"ranges": [[{"subnet": "10.9.9.0/30"}]]}));
    assert_eq!(addrs(&Call::new("ADD", "a", "eth0").ok(&e.ours(), &conf)), vec!["10.9.9.2/30"]);
    Call::new("ADD", "b", "eth0").err(&e.ours(), &conf);
    // rangeStart/rangeEnd are honoured, and the last range set position is remembered per set
    let conf =
        e.conf("1.0.0", "window", json!({"ranges": [[{"subnet": "10.1.0.0/16", "rangeStart": "10.1.5.10", "rangeEnd": "10.1.5.11"}]]}));
    assert_eq!(addrs(&Call::new("ADD", "a", "eth0").ok(&e.ours(), &conf)), vec!["10.1.5.10/16"]);
    assert_eq!(addrs(&Call::new("ADD", "b", "eth0").ok(&e.ours(), &conf)), vec!["10.1.5.11/16"]);
    Call::new("ADD", "c", "eth0").err(&e.ours(), &conf);
}

#[test]
fn ipv6_ranges_use_the_last_address() {
    let e = Env::new();
    let conf = e.conf("1.0.0", "v6", json!({"ranges": [[{"subnet": "fd00:1::/126"}]]}));
    assert_eq!(addrs(&Call::new("ADD", "a", "eth0").ok(&e.ours(), &conf)), vec!["fd00:1::2/126"]);
    assert_eq!(addrs(&Call::new("ADD", "b", "eth0").ok(&e.ours(), &conf)), vec!["fd00:1::3/126"], "no broadcast in IPv6");
    Call::new("ADD", "c", "eth0").err(&e.ours(), &conf);
    assert_eq!(e.file("v6", "last_reserved_ip.0").unwrap(), "fd00:1::3");
}

#[test]
fn requested_addresses() {
    let e = Env::new();
    // args.cni.ips across two range sets
    let mut conf: Value =
        serde_json::from_str(&e.conf("1.0.0", "req", json!({"ranges": [[{"subnet": "10.1.2.0/24"}], [{"subnet": "10.1.3.0/24"}]]})))
            .unwrap();
    conf["args"] = json!({"cni": {"ips": ["10.1.2.88", "10.1.3.77"]}});
    assert_eq!(addrs(&Call::new("ADD", "a", "eth0").ok(&e.ours(), &conf.to_string())), vec!["10.1.2.88/24", "10.1.3.77/24"]);
    // runtimeConfig.ips, with a prefix (ignored)
    conf["args"] = Value::Null;
    conf["runtimeConfig"] = json!({"ips": ["10.1.2.99/24"]});
    // (a requested address also becomes the set's last reserved one, as in Go)
    assert_eq!(addrs(&Call::new("ADD", "b", "eth0").ok(&e.ours(), &conf.to_string())), vec!["10.1.2.99/24", "10.1.3.78/24"]);
    // CNI_ARGS IP=, with unknown keys allowed by IgnoreUnknown
    conf["runtimeConfig"] = Value::Null;
    let c = Call::new("ADD", "c", "eth0").args("IgnoreUnknown=1;K8S_POD_NAME=p;IP=10.1.3.50");
    assert_eq!(addrs(&c.ok(&e.ours(), &conf.to_string())), vec!["10.1.2.100/24", "10.1.3.50/24"]);
    let err = Call::new("ADD", "d", "eth0").args("K8S_POD_NAME=p").err(&e.ours(), &conf.to_string());
    assert_eq!((err["code"].as_u64(), err["msg"].as_str()), (Some(4), Some(r#"ARGS: unknown args ["K8S_POD_NAME=p"]"#)));
    // taken, gateway, out of range: refused, nothing kept
    for (ip, msg) in [
        ("10.1.2.88", "requested IP address 10.1.2.88 is not available in range set 10.1.2.1-10.1.2.254"),
        ("10.1.2.1", "requested ip 10.1.2.1 is subnet's gateway"),
        ("10.7.0.1", "failed to allocate all requested IPs: 10.7.0.1"),
    ] {
        let before = e.files("req");
        let err = Call::new("ADD", "e", "eth0").args(&format!("IP={ip}")).err(&e.ours(), &conf.to_string());
        assert!(err["msg"].as_str().unwrap().ends_with(msg), "{err}");
        assert_eq!(e.files("req"), before, "nothing leaked for {ip}");
    }
}

#[test]
fn config_errors_are_code_7_and_change_nothing() {
    let e = Env::new();
    for (ipam, msg) in [
        (json!({}), "no IP ranges specified"),
        (json!({"ranges": [[{"subnet": "10.1.2.3/24"}]]}), "invalid range set 0: Network has host bits set"),
        (json!({"ranges": [[{"subnet": "10.1.2.0/31"}]]}), "invalid range set 0: Network 10.1.2.0/31 too small to allocate from"),
        (json!({"ranges": [[{"subnet": "10.1.2.0/24"}], [{"subnet": "10.1.2.0/25"}]]}), "range set 0 overlaps with 1"),
        (json!({"ranges": [[{"subnet": "10.1.2.0/24"}, {"subnet": "fd00::/64"}]]}), "invalid range set 0: mixed address families"),
        (json!({"ranges": [[{"subnet": "10.1.2.0/24", "rangeStart": "10.2.0.1"}]]}), "RangeStart 10.2.0.1 not in network 10.1.2.0/24"),
    ] {
        let err = Call::new("ADD", "c", "eth0").err(&e.ours(), &e.conf("1.0.0", "bad", ipam));
        assert_eq!(err["code"], 7, "{err}");
        assert!(err["msg"].as_str().unwrap().contains(msg), "{err} vs {msg}");
    }
    assert!(!e.dir().join("bad").exists() || e.files("bad").iter().all(|f| f == "lock"));
    let err = Call::new("ADD", "c", "eth0").err(&e.ours(), &json!({"cniVersion": "1.0.0", "name": "x"}).to_string());
    assert_eq!(err["msg"], "IPAM config missing 'ipam' key");
    let two_v4 = e.conf("0.2.0", "old", json!({"ranges": [[{"subnet": "10.1.2.0/24"}], [{"subnet": "10.1.3.0/24"}]]}));
    let err = Call::new("ADD", "c", "eth0").err(&e.ours(), &two_v4);
    assert_eq!(err["msg"], "CNI version 0.2.0 does not support more than 1 address per family");
}

#[test]
fn ip_ranges_capability_is_prepended() {
    let e = Env::new();
    let mut conf: Value = serde_json::from_str(&e.conf("1.0.0", "cap", json!({"ranges": [[{"subnet": "fd00::/64"}]]}))).unwrap();
    conf["runtimeConfig"] = json!({"ipRanges": [[{"subnet": "10.5.0.0/24", "rangeStart": "10.5.0.100"}]]});
    assert_eq!(addrs(&Call::new("ADD", "a", "eth0").ok(&e.ours(), &conf.to_string())), vec!["10.5.0.100/24", "fd00::2/64"]);
}

#[test]
fn thirty_two_parallel_adds_get_distinct_addresses() {
    let e = Env::new();
    let conf = e.conf("1.0.0", "par", json!({"ranges": [[{"subnet": "10.3.0.0/24"}]]}));
    let results: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let (e, conf) = (&e, &conf);
                s.spawn(move || addrs(&Call::new("ADD", &format!("p{i}"), "eth0").ok(&e.ours(), conf))[0].clone())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut uniq = results.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), 32, "{results:?}");
    assert_eq!(e.files("par").len(), 32 + 3, "leases, lock, last_reserved_ip.0, the index");
    assert_eq!(std::fs::read_dir(e.dir().join("par/.rcni-by-id")).unwrap().count(), 32, "one index entry per lease");
}

fn require_go() {
    assert!(Path::new(GO_HOST_LOCAL).exists(), "Debian's host-local is missing (scripts/deps installs containernetworking-plugins)");
}

#[test]
#[ignore = "needs Debian's reference plugins: run scripts/test"]
fn go_and_rcni_honour_each_others_leases() {
    require_go();
    let e = Env::new();
    let go = PathBuf::from(GO_HOST_LOCAL);
    let conf = e.conf("1.0.0", "mixed", json!({"ranges": [[{"subnet": "10.4.0.0/24"}]]}));
    assert_eq!(addrs(&Call::new("ADD", "go1", "eth0").ok(&go, &conf)), vec!["10.4.0.2/24"]);
    assert_eq!(addrs(&Call::new("ADD", "rs1", "eth0").ok(&e.ours(), &conf)), vec!["10.4.0.3/24"], "ours continues after Go's lease");
    assert_eq!(addrs(&Call::new("ADD", "go2", "eth0").ok(&go, &conf)), vec!["10.4.0.4/24"], "Go continues after ours");
    // same bytes on disk, whoever wrote them
    assert_eq!(e.file("mixed", "10.4.0.2").unwrap(), "go1\r\neth0");
    assert_eq!(e.file("mixed", "10.4.0.3").unwrap(), "rs1\r\neth0");
    assert_eq!(e.file("mixed", "last_reserved_ip.0").unwrap(), "10.4.0.4");
    // each refuses a duplicate of the other's lease, and each releases the other's
    let err = Call::new("ADD", "go1", "eth0").err(&e.ours(), &conf);
    assert!(err["msg"].as_str().unwrap().contains("duplicate allocation is not allowed"));
    let err = Call::new("ADD", "rs1", "eth0").err(&go, &conf);
    assert!(err["msg"].as_str().unwrap().contains("duplicate allocation is not allowed"));
    Call::new("CHECK", "go1", "eth0").ok(&e.ours(), &conf);
    Call::new("CHECK", "rs1", "eth0").ok(&go, &conf);
    Call::new("DEL", "go1", "eth0").ok(&e.ours(), &conf);
    Call::new("DEL", "rs1", "eth0").ok(&go, &conf);
    assert_eq!(e.files("mixed"), vec![".rcni-by-id", "10.4.0.4", "last_reserved_ip.0", "lock"]);
    // Go's release found rcni's index entry by its content and removed it with the lease
    assert_eq!(std::fs::read_dir(e.dir().join("mixed/.rcni-by-id")).unwrap().count(), 0);
    // a requested address Go holds is refused by ours
    let err = Call::new("ADD", "x", "eth0").args("IP=10.4.0.4").err(&e.ours(), &conf);
    assert!(err["msg"].as_str().unwrap().contains("is not available"), "{err}");
}

#[test]
#[ignore = "needs Debian's reference plugins: run scripts/test"]
fn concurrent_go_and_rcni_allocators_share_the_lock() {
    require_go();
    let e = Env::new();
    let go = PathBuf::from(GO_HOST_LOCAL);
    let conf = e.conf("1.0.0", "both", json!({"ranges": [[{"subnet": "10.6.0.0/24"}]]}));
    let results: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..32)
            .map(|i| {
                let plugin = if i % 2 == 0 { e.ours() } else { go.clone() };
                let conf = &conf;
                s.spawn(move || addrs(&Call::new("ADD", &format!("m{i}"), "eth0").ok(&plugin, conf))[0].clone())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut uniq = results.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), 32, "double allocation between Go and rcni: {results:?}");
}

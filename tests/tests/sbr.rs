//! sbr against the kernel (netsandbox only): a container with two ptp interfaces, sbr chained
//! on the second; its rule and table, `main` without its routes, the route the kernel picks
//! for the second address, and real traffic from that address leaving through the second
//! interface (its packet counters); CHECK; DEL removing exactly the rule and the table;
//! `table` given: only the rule. Debian's sbr on the same input makes the same rules and
//! tables; Go's cnitool runs a ptp + sbr chain of ours. Subnet 10.147.0.0/16 (the tests run side by side: each its own /24s).

use rcni_tests::{go_cnitool, require_netsandbox, run_ok, Call, Installed, TestNetns};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

const GO_SBR: &str = "/usr/lib/cni/sbr";

struct Env {
    inst: Installed,
}

impl Env {
    fn new() -> Env {
        require_netsandbox();
        Env { inst: Installed::new() }
    }

    fn p(&self, name: &str) -> PathBuf {
        self.inst.path(name)
    }

    fn call(&self, cmd: &'static str, cid: &str, ns: &TestNetns, ifname: &str) -> Call {
        let mut c = Call::new(cmd, cid, ifname).netns(&ns.path());
        c.path = self.inst.dir.path().display().to_string();
        c
    }

    /// ptp with a static address 10.147.N.2/24 via 10.147.N.1 (and a default route when asked).
    fn ptp(&self, net: &str, n: u8, default: bool) -> String {
        let mut ipam =
            json!({"type": "static", "addresses": [{"address": format!("10.147.{n}.2/24"), "gateway": format!("10.147.{n}.1")}]});
        if default {
            ipam["routes"] = json!([{"dst": "0.0.0.0/0"}]);
        }
        json!({"cniVersion": "1.0.0", "name": net, "type": "ptp", "ipam": ipam}).to_string()
    }
}

fn sbr_conf(net: &str, prev: &Value, extra: Value) -> String {
    let mut c = json!({"cniVersion": "1.0.0", "name": net, "type": "sbr", "prevResult": prev});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c.to_string()
}

/// The non-default IPv4 rules in `ns`, as `from SRC lookup TABLE`.
fn rules(ns: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(&run_ok("ip", &["-j", "-4", "-n", ns, "rule", "show"])).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["src"] != "all")
        .map(|r| format!("from {} lookup {}", r["src"].as_str().unwrap(), r["table"].as_str().unwrap()))
        .collect()
}

/// `ip -4 route show table T` in `ns`, line by line.
fn table(ns: &str, t: &str) -> Vec<String> {
    // (a table with no route in it yet does not exist: empty)
    let out = rcni_tests::run("ip", &["-4", "-n", ns, "route", "show", "table", t]);
    String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_string()).collect()
}

/// The device the kernel picks for `to` from source `from`.
fn route_dev(ns: &str, to: &str, from: &str) -> String {
    let v: Value = serde_json::from_str(&run_ok("ip", &["-j", "-n", ns, "route", "get", to, "from", from])).unwrap();
    v[0]["dev"].as_str().unwrap().to_string()
}

fn tx_packets(ns: &str, dev: &str) -> u64 {
    let v: Value = serde_json::from_str(&run_ok("ip", &["-j", "-s", "-n", ns, "link", "show", dev])).unwrap();
    v[0]["stats64"]["tx"]["packets"].as_u64().unwrap()
}

/// Two ptp interfaces in `pod`: eth0 (10.147.A.2, default route) and eth1 (10.147.B.2); returns
/// eth1's result.
fn two_interfaces(env: &Env, pod: &TestNetns, cid: &str, a: u8, b: u8) -> Value {
    env.call("ADD", cid, pod, "eth0").ok(&env.p("ptp"), &env.ptp("sbr-a", a, true));
    env.call("ADD", cid, pod, "eth1").ok(&env.p("ptp"), &env.ptp("sbr-b", b, false))
}

const MAIN_ETH1: [&str; 2] = ["10.147.2.0/24 via 10.147.2.1 dev eth1 src 10.147.2.2", "10.147.2.1 dev eth1 scope link src 10.147.2.2"];

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn traffic_from_the_second_address_leaves_through_the_second_interface() {
    let env = Env::new();
    let pod = TestNetns::new("rcni-sbr-a");
    let r = two_interfaces(&env, &pod, "sbr-a", 1, 2);
    assert_eq!(route_dev(&pod.name, "10.147.1.1", "10.147.2.2"), "eth0", "before sbr, main routes everything through eth0");
    let mut main_eth1 = table(&pod.name, "main");
    main_eth1.retain(|l| l.contains("eth1"));
    assert_eq!(main_eth1, MAIN_ETH1);

    let conf = sbr_conf("sbr-b", &r, json!({}));
    let out = env.call("ADD", "sbr-a", &pod, "eth1").ok(&env.p("sbr"), &conf);
    for k in ["interfaces", "ips"] {
        assert_eq!(out[k], r[k], "sbr returns prevResult: {k}");
    }
    assert_eq!(rules(&pod.name), ["from 10.147.2.2 lookup 100"]);
    assert_eq!(
        table(&pod.name, "100"),
        [
            "default via 10.147.2.1 dev eth1",
            "10.147.2.0/24 via 10.147.2.1 dev eth1 src 10.147.2.2",
            "10.147.2.1 dev eth1 scope link src 10.147.2.2"
        ]
    );
    assert!(!table(&pod.name, "main").iter().any(|l| l.contains("eth1")), "eth1's routes left main");
    assert_eq!(route_dev(&pod.name, "10.147.1.1", "10.147.2.2"), "eth1");
    assert_eq!(route_dev(&pod.name, "10.147.1.1", "10.147.1.2"), "eth0", "eth0's traffic is untouched");
    // real traffic: from the second address, out through eth1 (and back)
    let (tx0, tx1) = (tx_packets(&pod.name, "eth0"), tx_packets(&pod.name, "eth1"));
    assert!(pod.exec(&["ping", "-c3", "-W2", "-I", "10.147.2.2", "10.147.1.1"]).status.success());
    let (dx0, dx1) = (tx_packets(&pod.name, "eth0") - tx0, tx_packets(&pod.name, "eth1") - tx1);
    assert!(dx1 >= 3 && dx0 < 3, "packets out of eth0 {dx0}, eth1 {dx1}");
    env.call("CHECK", "sbr-a", &pod, "eth1").ok(&env.p("sbr"), &conf);

    // a second attachment in the same container takes the next free table
    let r3 = env.call("ADD", "sbr-a", &pod, "eth2").ok(&env.p("ptp"), &env.ptp("sbr-c", 3, false));
    let conf3 = sbr_conf("sbr-c", &r3, json!({}));
    env.call("ADD", "sbr-a", &pod, "eth2").ok(&env.p("sbr"), &conf3);
    assert_eq!(rules(&pod.name), ["from 10.147.3.2 lookup 101", "from 10.147.2.2 lookup 100"]);
    env.call("DEL", "sbr-a", &pod, "eth2").ok(&env.p("sbr"), &conf3);
    assert_eq!(rules(&pod.name), ["from 10.147.2.2 lookup 100"], "DEL removes exactly its rule");
    assert!(table(&pod.name, "101").is_empty());
    assert_eq!(table(&pod.name, "100").len(), 3, "and leaves the other attachment's table");

    env.call("DEL", "sbr-a", &pod, "eth1").ok(&env.p("sbr"), &conf);
    assert!(rules(&pod.name).is_empty());
    assert!(table(&pod.name, "100").is_empty(), "its table is gone");
    env.call("DEL", "sbr-a", &pod, "eth1").ok(&env.p("sbr"), &conf);
    let e = env.call("CHECK", "sbr-a", &pod, "eth1").err(&env.p("sbr"), &conf);
    assert!(e["msg"].as_str().unwrap().contains("10.147.2.2"), "{e}");

    // with `table`: only the rule
    env.call("ADD", "sbr-a", &pod, "eth1").ok(&env.p("sbr"), &sbr_conf("sbr-b", &r, json!({"table": 500})));
    assert_eq!(rules(&pod.name), ["from 10.147.2.2 lookup 500"]);
    assert!(table(&pod.name, "500").is_empty());
    env.call("DEL", "sbr-a", &pod, "eth1").ok(&env.p("sbr"), &sbr_conf("sbr-b", &r, json!({"table": 500})));
    assert!(rules(&pod.name).is_empty());

    // DEL without the namespace
    let path = pod.path();
    drop(pod);
    Call::new("DEL", "sbr-a", "eth1").netns(&path).ok(&env.p("sbr"), &conf);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn same_rules_and_tables_as_debians_sbr_and_go_cnitool_runs_ours() {
    let env = Env::new();
    let pod = TestNetns::new("rcni-sbr-b");
    let snapshot = |ns: &str| (rules(ns), table(ns, "100"), table(ns, "main"));
    let mut states = Vec::new();
    for (add, del) in [(PathBuf::from(GO_SBR), env.p("sbr")), (env.p("sbr"), PathBuf::from(GO_SBR))] {
        let r = two_interfaces(&env, &pod, "sbr-b", 5, 6);
        let conf = sbr_conf("sbr-b", &r, json!({}));
        let out = env.call("ADD", "sbr-b", &pod, "eth1").ok(&add, &conf);
        assert_eq!(out["ips"], r["ips"]);
        states.push(snapshot(&pod.name));
        assert_eq!(route_dev(&pod.name, "10.147.5.1", "10.147.6.2"), "eth1");
        env.call("DEL", "sbr-b", &pod, "eth1").ok(&del, &conf);
        assert!(rules(&pod.name).is_empty(), "{} removes the rules {} made", del.display(), add.display());
        env.call("DEL", "sbr-b", &pod, "eth1").ok(&env.p("ptp"), &env.ptp("sbr-b", 6, false));
        env.call("DEL", "sbr-b", &pod, "eth0").ok(&env.p("ptp"), &env.ptp("sbr-a", 5, true));
    }
    assert_eq!(states[0], states[1], "Debian's sbr and ours: rules, table 100, main");
    assert_eq!(states[0].1.len(), 3, "{:?}", states[0]);

    // Go's cnitool runs a ptp + sbr chain of ours
    env.call("ADD", "sbr-b", &pod, "eth0").ok(&env.p("ptp"), &env.ptp("sbr-a", 5, true));
    let netd = tempfile::tempdir().unwrap();
    let mut ptp: Value = serde_json::from_str(&env.ptp("sbr-b", 6, false)).unwrap();
    ptp.as_object_mut().unwrap().retain(|k, _| k != "cniVersion" && k != "name");
    let list = json!({"cniVersion": "1.0.0", "name": "sbr-b", "plugins": [ptp, {"type": "sbr"}]});
    std::fs::write(netd.path().join("10-sbr.conflist"), list.to_string()).unwrap();
    let tool = |cmd: &str| {
        let o = Command::new(go_cnitool())
            .args([cmd, "sbr-b", &pod.path()])
            .env("NETCONFPATH", netd.path())
            .env("CNI_PATH", env.inst.dir.path())
            .env("CNI_IFNAME", "eth1")
            .env_remove("CNI_ARGS")
            .env_remove("CAP_ARGS")
            .output()
            .unwrap();
        assert!(o.status.success(), "cnitool {cmd}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    };
    tool("add");
    assert_eq!(snapshot(&pod.name), states[0]);
    assert!(pod.exec(&["ping", "-c1", "-W2", "-I", "10.147.6.2", "10.147.5.1"]).status.success());
    tool("check");
    tool("del");
    assert!(rules(&pod.name).is_empty());
    assert!(table(&pod.name, "100").is_empty());
}

//! Multi-network attach (go-cni's scenarios, plus rcni's rollback and tolerant removal).

mod common;

use cni_runtime::{Ctx, Namespace, NetworkSet};
use common::{commands, Fixture};
use serde_json::{json, Value};
use std::path::Path;

fn write_conf(dir: &Path, file: &str, v: Value) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(file), v.to_string()).unwrap();
}

fn result_for(ip: &str) -> Value {
    json!({"cniVersion": "1.0.0", "interfaces": [{"name": "host-side"}, {"name": "PLACEHOLDER", "mac": "02:00:00:00:00:01", "sandbox": "/ns"}],
           "ips": [{"interface": 1, "address": ip}]})
}

/// Two networks from a config dir, `a` (plugin `pa`) and `b` (plugin `pb`).
fn two_networks(fx: &Fixture) -> NetworkSet {
    let conf = fx.path("net.d");
    write_conf(&conf, "10-a.conflist", json!({"cniVersion": "1.1.0", "name": "a", "plugins": [{"type": "pa"}]}));
    write_conf(&conf, "20-b.conf", json!({"cniVersion": "1.1.0", "name": "b", "type": "pb"}));
    let mut set = NetworkSet::new(fx.cni());
    set.load_dir(&conf, 0).unwrap();
    set
}

#[test]
fn networks_get_eth0_eth1_and_results_map_to_them() {
    let fx = Fixture::new();
    let mut r0 = result_for("10.0.0.2/24");
    r0["interfaces"][1]["name"] = json!("eth0");
    let mut r1 = result_for("10.1.0.2/24");
    r1["interfaces"][1]["name"] = json!("eth1");
    r1["interfaces"][0]["name"] = json!("host-side-2");
    fx.plugin("pa", json!({"reportResult": r0}));
    fx.plugin("pb", json!({"reportResult": r1}));
    let set = two_networks(&fx);
    let ns = Namespace::new("ctr1", "/var/run/netns/x").with_arg("K8S_POD_NAME", "p").with_cgroup_path("/kubepods/x");
    let out = set.setup(&Ctx::background(), &ns).unwrap();
    assert_eq!(fx.calls("pa")[0]["ifname"], "eth0");
    assert_eq!(fx.calls("pb")[0]["ifname"], "eth1");
    assert_eq!(fx.calls("pa")[0]["args"], "K8S_POD_NAME=p");
    assert_eq!(out.interfaces["eth0"].ip_configs[0].address.to_string(), "10.0.0.2/24");
    assert_eq!(out.interfaces["eth1"].ip_configs[0].address.to_string(), "10.1.0.2/24");
    assert_eq!(out.interfaces["eth1"].mac, "02:00:00:00:00:01");
    assert!(out.interfaces.contains_key("host-side"));
    assert_eq!(out.raw.len(), 2);
    assert_eq!((out.raw[1].0.as_str(), out.raw[1].1.as_str(), out.raw[1].2.cni_version.as_str()), ("b", "eth1", "1.1.0"));
    // remove: reverse order, both networks
    let shared = fx.path("order.log");
    fx.plugin("pa", json!({"log": shared}));
    fx.plugin("pb", json!({"log": shared}));
    set.remove(&Ctx::background(), &ns).unwrap();
    let order: Vec<String> =
        common::read_log(&shared).iter().map(|c| format!("{} {}", c["command"].as_str().unwrap(), c["ifname"].as_str().unwrap())).collect();
    assert_eq!(order, vec!["DEL eth1", "DEL eth0"]);
    assert!(fx.cni().get_cached_attachments("ctr1").unwrap().is_empty());
}

#[test]
fn loopback_and_eth0() {
    let fx = Fixture::new();
    fx.plugin("loopback", Value::Null);
    fx.plugin("pa", Value::Null);
    let mut set = NetworkSet::new(fx.cni());
    set.add_loopback();
    let conf = fx.path("net.d");
    write_conf(&conf, "a.conflist", json!({"cniVersion": "1.0.0", "name": "a", "plugins": [{"type": "pa"}]}));
    set.load_dir(&conf, 1).unwrap();
    set.setup(&Ctx::background(), &Namespace::new("c", "/ns")).unwrap();
    let lo = fx.calls("loopback");
    assert_eq!(
        (lo[0]["ifname"].as_str(), lo[0]["stdin"]["name"].as_str(), lo[0]["stdin"]["cniVersion"].as_str()),
        (Some("lo"), Some("cni-loopback"), Some("0.3.1"))
    );
    assert_eq!(fx.calls("pa")[0]["ifname"], "eth0");
}

#[test]
fn failed_setup_removes_what_it_attached() {
    let fx = Fixture::new();
    fx.plugin("pa", Value::Null);
    fx.plugin("pb", json!({"reportError": "no addresses left", "reportErrorCode": 11, "errorOn": ["ADD"]}));
    let set = two_networks(&fx);
    let ns = Namespace::new("ctr2", "/ns");
    let e = set.setup(&Ctx::background(), &ns).unwrap_err();
    assert_eq!(e.code(), Some(11), "the cause's code is kept");
    assert!(e.to_string().starts_with(r#"plugin type="pb" name="b" failed (add): no addresses left"#), "{e}");
    assert_eq!(commands(&fx.calls("pa")), vec!["ADD", "DEL"]);
    assert_eq!(commands(&fx.calls("pb")), vec!["ADD", "DEL"], "the failed network gets its DEL too");
    assert!(fx.cni().get_cached_attachments("ctr2").unwrap().is_empty());
}

#[test]
fn parallel_setup_and_its_rollback() {
    let fx = Fixture::new();
    fx.plugin("pa", json!({"sleepMs": 300}));
    fx.plugin("pb", json!({"sleepMs": 300}));
    let set = two_networks(&fx);
    let start = std::time::Instant::now();
    set.setup_parallel(&Ctx::background(), &Namespace::new("par", "/ns")).unwrap();
    assert!(start.elapsed() < std::time::Duration::from_millis(580), "ran concurrently: {:?}", start.elapsed());
    assert_eq!(fx.cni().get_cached_attachments("par").unwrap().len(), 2);

    fx.control("pa", json!({"reportError": "boom", "errorOn": ["ADD"]}));
    fx.control("pb", Value::Null);
    let e = set.setup_parallel(&Ctx::background(), &Namespace::new("par2", "/ns")).unwrap_err();
    assert!(e.to_string().contains("boom"));
    assert!(fx.cni().get_cached_attachments("par2").unwrap().is_empty(), "both removed");
    let pb: Vec<String> =
        fx.calls("pb").iter().filter(|c| c["containerID"] == "par2").map(|c| c["command"].as_str().unwrap().to_string()).collect();
    assert_eq!(pb, vec!["ADD", "DEL"]);
}

#[test]
fn remove_goes_on_past_errors() {
    let fx = Fixture::new();
    fx.plugin("pa", Value::Null);
    fx.plugin("pb", Value::Null);
    let set = two_networks(&fx);
    let ns = Namespace::new("r", "/ns");
    set.setup(&Ctx::background(), &ns).unwrap();
    fx.control("pb", json!({"reportError": "device busy", "errorOn": ["DEL"]}));
    let e = set.remove(&Ctx::background(), &ns).unwrap_err();
    assert!(e.to_string().contains("device busy"));
    assert_eq!(commands(&fx.calls("pa")), vec!["ADD", "DEL"], "network a is removed although b failed");
    // "not found" errors are tolerated (a half-gone container can be removed)
    fx.control("pb", json!({"reportError": "link eth1 not found", "errorOn": ["DEL"]}));
    set.remove(&Ctx::background(), &ns).unwrap();
}

#[test]
fn check_and_status() {
    let fx = Fixture::new();
    fx.plugin("pa", Value::Null);
    fx.plugin("pb", Value::Null);
    let set = two_networks(&fx);
    let ns = Namespace::new("s", "/ns");
    set.setup(&Ctx::background(), &ns).unwrap();
    set.check(&Ctx::background(), &ns).unwrap();
    set.status(&Ctx::background()).unwrap();
    fx.control("pb", json!({"reportError": "bridge missing", "reportErrorCode": 50, "errorOn": ["STATUS"]}));
    assert_eq!(set.status(&Ctx::background()).unwrap_err().code(), Some(50));
    fx.control("pb", json!({"reportError": "addr gone", "errorOn": ["CHECK"]}));
    assert!(set.check(&Ctx::background(), &ns).unwrap_err().to_string().contains("addr gone"));
}

#[test]
fn empty_or_broken_config_dirs() {
    let fx = Fixture::new();
    let mut set = NetworkSet::new(fx.cni());
    let dir = fx.path("empty");
    std::fs::create_dir(&dir).unwrap();
    assert!(set.load_dir(&dir, 0).unwrap_err().to_string().contains("cni plugin not initialized"));
    write_conf(&dir, "a.conf", json!({"name": "x"}));
    assert!(set.load_dir(&dir, 0).unwrap_err().to_string().contains("missing 'type'"));
    assert_eq!(set.setup(&Ctx::background(), &Namespace::new("c", "/ns")).unwrap_err().to_string(), "cni plugin not initialized");
}

/// A second setup of an attached container fails before any plugin runs: its ADD would fail on
/// the interface the first made, and the rollback's DEL (same container ID and interface) would
/// remove the first attachment.
#[test]
fn a_second_setup_of_an_attached_container_changes_nothing() {
    let fx = Fixture::new();
    fx.plugin("pa", Value::Null);
    fx.plugin("pb", Value::Null);
    let set = two_networks(&fx);
    let ns = Namespace::new("ctr-twice", "/var/run/netns/x");
    set.setup(&Ctx::background(), &ns).unwrap();
    let before = (commands(&fx.calls("pa")), commands(&fx.calls("pb")));
    let e = set.setup(&Ctx::background(), &ns).unwrap_err().to_string();
    assert!(e.contains("container ctr-twice is attached already (eth0 on a, eth1 on b)"), "{e}");
    let e = set.setup_parallel(&Ctx::background(), &ns).unwrap_err().to_string();
    assert!(e.contains("attached already"), "{e}");
    assert_eq!((commands(&fx.calls("pa")), commands(&fx.calls("pb"))), before, "no plugin was called: no ADD, no DEL");
    assert_eq!(fx.cni().get_cached_attachments("ctr-twice").unwrap().len(), 2);
    set.remove(&Ctx::background(), &ns).unwrap();
    set.setup(&Ctx::background(), &ns).unwrap();
}

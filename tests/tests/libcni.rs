//! The upstream libcni scenarios, run against real plugin processes (the noop test plugin).

mod common;

use cni_runtime::{CniConfig, Ctx, GcArgs, RuntimeConf};
use cni_types::{CniResult, GcAttachment, NetworkConfigList, PluginConfig};
use common::{commands, Fixture};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn list(v: Value) -> NetworkConfigList {
    NetworkConfigList::from_bytes(v.to_string().as_bytes()).unwrap()
}

fn rt(cid: &str) -> RuntimeConf {
    RuntimeConf {
        container_id: cid.into(),
        netns: "/some/netns/path".into(),
        ifname: "some-eth0".into(),
        args: vec![("FOO".into(), "BAR".into())],
        ..Default::default()
    }
}

const RESULT_1: &str = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","mac":"00:11:22:33:44:55","sandbox":"/some/netns/path"}],"ips":[{"interface":0,"address":"10.1.2.3/24","gateway":"10.1.2.1"}],"routes":[{"dst":"0.0.0.0/0","gw":"10.1.2.1"}]}"#;

fn three_plugins(fx: &Fixture, version: &str) -> NetworkConfigList {
    fx.plugin("noop", json!({"reportResult": RESULT_1}));
    fx.plugin("noop2", json!({"reportResult": "PASSTHROUGH"}));
    fx.plugin("noop3", json!({"reportResult": "INJECT-DNS"}));
    list(json!({"cniVersion": version, "name": "some-list", "plugins": [
        {"type": "noop", "some-key": "some-value", "n": 12345678901234567_u64},
        {"type": "noop2", "capabilities": {"portMappings": true}},
        {"type": "noop3"}]}))
}

#[test]
fn capabilities_become_runtime_config() {
    let fx = Fixture::new();
    fx.plugin("noop", Value::Null);
    let conf = list(json!({"cniVersion": "1.0.0", "name": "caps", "plugins": [{"type": "noop",
        "capabilities": {"portMappings": true, "somethingElse": true, "noCapability": false}}]}));
    let mut r = rt("c1");
    r.capability_args = json!({
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
        "somethingElse": ["foobar", "baz"], "noCapability": 123, "otherCapability": 456
    })
    .as_object()
    .unwrap()
    .clone();
    fx.cni().add_network_list(&Ctx::background(), &conf, &r).unwrap();
    let calls = fx.calls("noop");
    assert_eq!(
        calls[0]["stdin"]["runtimeConfig"],
        json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}], "somethingElse": ["foobar", "baz"]})
    );
    // no overlap: no runtimeConfig at all
    fx.clear_calls("noop");
    r.capability_args = json!({"otherCapability": 1}).as_object().unwrap().clone();
    r.container_id = "c2".into();
    fx.cni().add_network_list(&Ctx::background(), &conf, &r).unwrap();
    assert!(fx.calls("noop")[0]["stdin"].get("runtimeConfig").is_none());
    // validation reports the same two
    let caps = fx.cni().validate_network_list(&Ctx::background(), &conf).unwrap();
    assert_eq!(caps, vec!["portMappings", "somethingElse"]);
}

#[test]
fn add_stdin_env_and_cache() {
    let fx = Fixture::new();
    let conf = three_plugins(&fx, "1.0.0");
    let mut r = rt("some-container-id");
    r.capability_args = json!({"portMappings": [{"hostPort": 1, "containerPort": 2}]}).as_object().unwrap().clone();
    let result = fx.cni().add_network_list(&Ctx::background(), &conf, &r).unwrap();

    // chaining: plugin 2 got plugin 1's result; plugin 3 injected DNS into the final result
    let c1 = fx.calls("noop");
    let c2 = fx.calls("noop2");
    let c3 = fx.calls("noop3");
    assert_eq!(c1[0]["stdin"]["some-key"], "some-value");
    assert_eq!(c1[0]["stdin"]["n"], json!(12345678901234567_u64), "integers reach the plugin exactly");
    assert_eq!(c1[0]["stdin"]["name"], "some-list");
    assert_eq!(c1[0]["stdin"]["cniVersion"], "1.0.0");
    assert!(c1[0]["stdin"].get("prevResult").is_none());
    assert!(c1[0]["stdin"].get("runtimeConfig").is_none(), "plugin 1 enables no capability");
    let r1 = CniResult::from_bytes(RESULT_1.as_bytes()).unwrap().to_value();
    assert_eq!(c2[0]["stdin"]["prevResult"], r1);
    assert_eq!(c2[0]["stdin"]["runtimeConfig"], json!({"portMappings": [{"hostPort": 1, "containerPort": 2}]}));
    assert_eq!(c3[0]["stdin"]["prevResult"], r1);
    assert_eq!(result.to_current().unwrap().dns.nameservers, vec!["1.2.3.4"]);

    // the environment is exactly the six variables
    let env = &c1[0]["env"];
    assert_eq!(env["CNI_COMMAND"], "ADD");
    assert_eq!(env["CNI_CONTAINERID"], "some-container-id");
    assert_eq!(env["CNI_NETNS"], "/some/netns/path");
    assert_eq!(env["CNI_IFNAME"], "some-eth0");
    assert_eq!(env["CNI_ARGS"], "FOO=BAR");
    assert_eq!(env["CNI_PATH"], fx.bin().to_str().unwrap());

    // the cache holds the list bytes, the args, the capability args and the final result
    let cni = fx.cni();
    let (bytes, cached_rt) = cni.get_network_list_cached_config(&conf, &RuntimeConf { args: vec![], ..r.clone() }).unwrap().unwrap();
    assert_eq!(bytes, conf.bytes);
    assert_eq!(cached_rt.args, r.args);
    assert_eq!(cached_rt.capability_args, r.capability_args);
    let cached = cni.get_network_list_cached_result(&conf, &r).unwrap().unwrap();
    assert_eq!(cached, result);
    assert_eq!(cni.get_cached_attachments("").unwrap().len(), 1);
    let atts = cni.get_cached_attachments("some-container-id").unwrap();
    assert_eq!(atts.len(), 1);
    assert_eq!((atts[0].network.as_str(), atts[0].ifname.as_str(), atts[0].netns.as_str()), ("some-list", "some-eth0", "/some/netns/path"));
    assert!(cni.get_cached_attachments("other").unwrap().is_empty());
}

#[test]
fn add_failures() {
    let fx = Fixture::new();
    fx.plugin("noop", Value::Null);
    let ctx = Ctx::background();
    // a missing plugin
    let conf = list(json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "does-not-exist"}]}));
    let e = fx.cni().add_network_list(&ctx, &conf, &rt("c")).unwrap_err();
    assert!(
        e.to_string().starts_with(r#"plugin type="does-not-exist" failed (add): failed to find plugin "does-not-exist" in path"#),
        "{e}"
    );

    // the cache path blocked by a file
    let conf = list(json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "noop"}]}));
    std::fs::create_dir_all(fx.cache_dir()).unwrap();
    std::fs::write(fx.cache_dir().join("results"), "").unwrap();
    let e = fx.cni().add_network_list(&ctx, &conf, &rt("c")).unwrap_err();
    assert!(e.to_string().starts_with(r#"failed to set network "n" cached result"#), "{e}");
    std::fs::remove_file(fx.cache_dir().join("results")).unwrap();

    // the second of three plugins fails: its code comes back, nothing is cached, nothing undone
    fx.clear_calls("noop");
    let conf = three_plugins(&fx, "1.0.0");
    fx.control("noop2", json!({"reportError": "plugin error: banana", "reportErrorCode": 7}));
    let e = fx.cni().add_network_list(&ctx, &conf, &rt("c")).unwrap_err();
    assert_eq!(e.to_string(), r#"plugin type="noop2" failed (add): plugin error: banana"#);
    assert_eq!(e.code(), Some(7));
    assert!(!fx.cache_file("some-list", "c", "some-eth0").exists());
    assert!(fx.calls("noop3").is_empty());
    assert_eq!(commands(&fx.calls("noop")), vec!["ADD"], "no rollback in AddNetworkList");
}

#[test]
fn add_validates_names() {
    let fx = Fixture::new();
    fx.plugin("noop", Value::Null);
    let ctx = Ctx::background();
    let good = list(json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "noop"}]}));
    let mut r = rt("c");
    r.container_id = "bad/id".into();
    assert_eq!(fx.cni().add_network_list(&ctx, &good, &r).unwrap_err().code(), Some(4));
    r.container_id = "".into();
    assert_eq!(fx.cni().add_network_list(&ctx, &good, &r).unwrap_err().code(), Some(3));
    let bad_name = list(json!({"cniVersion": "1.0.0", "name": "bad name", "plugins": [{"type": "noop"}]}));
    let e = fx.cni().add_network_list(&ctx, &bad_name, &rt("c")).unwrap_err();
    assert_eq!(e.code(), Some(7));
    for ifname in ["", "0123456789abcdef", ".", "..", "a/b", "a:b", "a b"] {
        let r = RuntimeConf { ifname: ifname.into(), ..rt("c") };
        assert_eq!(fx.cni().add_network_list(&ctx, &good, &r).unwrap_err().code(), Some(4), "{ifname:?}");
    }
    assert!(fx.calls("noop").is_empty(), "nothing ran");
}

#[test]
fn check_rules() {
    let fx = Fixture::new();
    let ctx = Ctx::background();
    // versions before 0.4.0 cannot CHECK
    let old = three_plugins(&fx, "0.3.1");
    assert_eq!(
        fx.cni().check_network_list(&ctx, &old, &rt("c")).unwrap_err().to_string(),
        r#"configuration version "0.3.1" does not support the CHECK command"#
    );
    // disableCheck: nothing runs
    let mut conf = three_plugins(&fx, "1.0.0");
    conf.disable_check = true;
    fx.cni().check_network_list(&ctx, &conf, &rt("c")).unwrap();
    assert!(fx.calls("noop").is_empty());
    conf.disable_check = false;

    // the cached result is every plugin's prevResult
    let result = fx.cni().add_network_list(&ctx, &conf, &rt("c")).unwrap();
    fx.cni().check_network_list(&ctx, &conf, &rt("c")).unwrap();
    for p in ["noop", "noop2", "noop3"] {
        let calls = fx.calls(p);
        assert_eq!(commands(&calls), vec!["ADD", "CHECK"]);
        assert_eq!(calls[1]["stdin"]["prevResult"], result.to_value(), "{p}");
    }
    // an invalid cache is an error for CHECK
    std::fs::write(fx.cache_file("some-list", "c", "some-eth0"), "{invalid").unwrap();
    assert!(fx
        .cni()
        .check_network_list(&ctx, &conf, &rt("c"))
        .unwrap_err()
        .to_string()
        .starts_with(r#"failed to get network "some-list" cached result"#));

    // a cache written by a 1.0.0 list is converted for a 0.4.0 list of the same name
    let c = rt("conv");
    fx.cni().add_network_list(&ctx, &conf, &c).unwrap();
    let v04 = three_plugins(&fx, "0.4.0");
    fx.clear_calls("noop");
    fx.cni().check_network_list(&ctx, &v04, &c).unwrap();
    let prev = &fx.calls("noop")[0]["stdin"]["prevResult"];
    assert_eq!(prev["cniVersion"], "0.4.0");
    assert_eq!(prev["ips"][0]["version"], "4");
    // … and an impossible conversion is an error
    fx.plugin("noop", json!({"reportResult": {"cniVersion": "1.0.0"}}));
    let single = list(json!({"cniVersion": "1.0.0", "name": "noips", "plugins": [{"type": "noop"}]}));
    fx.cni().add_network_list(&ctx, &single, &rt("x")).unwrap();
    let mut single_02 = single.clone();
    single_02.cni_version = "0.2.0".into();
    single_02.disable_check = false;
    assert!(fx
        .cni()
        .get_network_list_cached_result(&single_02, &rt("x"))
        .unwrap_err()
        .to_string()
        .contains("cannot convert: no valid IP addresses"));
}

#[test]
fn del_rules() {
    let fx = Fixture::new();
    let ctx = Ctx::background();
    let conf = three_plugins(&fx, "1.0.0");
    let result = fx.cni().add_network_list(&ctx, &conf, &rt("c")).unwrap();
    fx.cni().del_network_list(&ctx, &conf, &rt("c")).unwrap();
    // reverse order, each with the cached result
    let order: Vec<(String, String)> = ["noop", "noop2", "noop3"]
        .iter()
        .flat_map(|p| fx.calls(p).into_iter().map(move |c| (p.to_string(), c)))
        .filter(|(_, c)| c["command"] == "DEL")
        .map(|(p, c)| (p, c["stdin"]["prevResult"].to_string()))
        .collect();
    assert_eq!(order.len(), 3);
    for (_, prev) in &order {
        assert_eq!(prev, &result.to_value().to_string());
    }
    assert!(!fx.cache_file("some-list", "c", "some-eth0").exists(), "cache removed after DEL");
    // second DEL succeeds without prevResult
    fx.cni().del_network_list(&ctx, &conf, &rt("c")).unwrap();
    assert!(fx.calls("noop").last().unwrap()["stdin"].get("prevResult").is_none());

    // the order, checked through one shared log
    let fx = Fixture::new();
    let shared = fx.path("all.log");
    for p in ["a", "b", "c"] {
        fx.plugin(p, json!({"log": shared}));
    }
    let l = list(json!({"cniVersion": "1.0.0", "name": "ord", "plugins": [{"type": "a"}, {"type": "b"}, {"type": "c"}]}));
    fx.cni().add_network_list(&ctx, &l, &rt("o")).unwrap();
    fx.cni().del_network_list(&ctx, &l, &rt("o")).unwrap();
    let seq: Vec<String> = common::read_log(&shared)
        .iter()
        .map(|c| format!("{} {}", c["command"].as_str().unwrap(), c["stdin"]["type"].as_str().unwrap()))
        .collect();
    assert_eq!(seq, vec!["ADD a", "ADD b", "ADD c", "DEL c", "DEL b", "DEL a"]);
}

#[test]
fn del_tolerates_bad_caches_and_old_versions() {
    let fx = Fixture::new();
    let ctx = Ctx::background();
    // below 0.4.0: no prevResult even with a cache
    let old = three_plugins(&fx, "0.3.1");
    fx.cni().add_network_list(&ctx, &old, &rt("c")).unwrap();
    fx.cni().del_network_list(&ctx, &old, &rt("c")).unwrap();
    assert!(fx.calls("noop").last().unwrap()["stdin"].get("prevResult").is_none());

    // empty, garbage or unconvertible caches never block DEL, and are removed
    let conf = three_plugins(&fx, "1.0.0");
    for garbage in ["", "{", r#"{"kind":"cniCacheV1","result":{"cniVersion":"7.0.0"}}"#] {
        let path = fx.cache_file("some-list", "g", "some-eth0");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, garbage).unwrap();
        fx.cni().del_network_list(&ctx, &conf, &rt("g")).unwrap();
        assert!(fx.calls("noop").last().unwrap()["stdin"].get("prevResult").is_none(), "{garbage:?}");
        assert!(!path.exists(), "{garbage:?}");
    }

    // a failing DEL keeps the cache for a retry
    fx.cni().add_network_list(&ctx, &conf, &rt("k")).unwrap();
    fx.control("noop2", json!({"reportError": "nope", "errorOn": ["DEL"], "reportResult": "PASSTHROUGH"}));
    let e = fx.cni().del_network_list(&ctx, &conf, &rt("k")).unwrap_err();
    assert_eq!(e.to_string(), r#"plugin type="noop2" failed (delete): nope"#);
    assert!(fx.cache_file("some-list", "k", "some-eth0").exists());
}

#[test]
fn gc_sequence() {
    let fx = Fixture::new();
    let ctx = Ctx::background();
    fx.plugin("noop", Value::Null);
    let mut conf = list(json!({"cniVersion": "1.1.0", "name": "gcnet", "plugins": [{"type": "noop"}]}));
    let r = rt("gc-c1");
    fx.cni().add_network_list(&ctx, &conf, &r).unwrap();
    // disableGC: nothing runs
    conf.disable_gc = true;
    fx.cni().gc_network_list(&ctx, &conf, Some(&GcArgs::default())).unwrap();
    conf.disable_gc = false;
    // the attachment is valid: only GC runs, with it listed under both keys
    let valid = GcArgs { valid_attachments: vec![GcAttachment { container_id: "gc-c1".into(), ifname: "some-eth0".into() }] };
    fx.cni().gc_network_list(&ctx, &conf, Some(&valid)).unwrap();
    // nothing is valid: the attachment is deleted, then GC runs with an empty list
    fx.cni().gc_network_list(&ctx, &conf, Some(&GcArgs::default())).unwrap();
    let calls = fx.calls("noop");
    assert_eq!(commands(&calls), vec!["ADD", "GC", "DEL", "GC"]);
    let want = json!([{"containerID": "gc-c1", "ifname": "some-eth0"}]);
    assert_eq!(calls[1]["stdin"]["cni.dev/valid-attachments"], want);
    assert_eq!(calls[1]["stdin"]["cni.dev/attachments"], want);
    assert_eq!(calls[3]["stdin"]["cni.dev/valid-attachments"], json!([]));
    for gc in [&calls[1], &calls[3]] {
        assert_eq!(gc["env"]["CNI_CONTAINERID"], "");
        assert_eq!(gc["env"]["CNI_IFNAME"], "");
        assert_eq!(gc["env"]["CNI_NETNS"], "");
        assert!(gc["stdin"].get("runtimeConfig").is_none());
    }
    assert_eq!(calls[2]["env"]["CNI_NETNS"], "/some/netns/path", "stale DEL uses the cached netns");
    assert!(!fx.cache_file("gcnet", "gc-c1", "some-eth0").exists());

    // nil args (cnitool gc): everything is deleted, and the keys are omitted
    fx.cni().add_network_list(&ctx, &conf, &rt("gc-c2")).unwrap();
    fx.cni().gc_network_list(&ctx, &conf, None).unwrap();
    let calls = fx.calls("noop");
    let last = calls.last().unwrap();
    assert_eq!(commands(&calls[calls.len() - 2..]), vec!["DEL", "GC"]);
    assert!(last["stdin"].get("cni.dev/valid-attachments").is_none());

    // errors are collected, not fatal
    fx.cni().add_network_list(&ctx, &conf, &rt("gc-c3")).unwrap();
    fx.control("noop", json!({"reportError": "gc broke", "errorOn": ["DEL", "GC"]}));
    let e = fx.cni().gc_network_list(&ctx, &conf, None).unwrap_err().to_string();
    assert!(e.contains("failed to delete stale attachment gc-c3 some-eth0") && e.contains("failed to GC plugin noop: gc broke"), "{e}");

    // below 1.1.0: stale attachments are deleted but no GC is sent
    let fx = Fixture::new();
    fx.plugin("noop", Value::Null);
    let old = list(json!({"cniVersion": "1.0.0", "name": "gcold", "plugins": [{"type": "noop"}]}));
    fx.cni().add_network_list(&ctx, &old, &rt("o")).unwrap();
    fx.cni().gc_network_list(&ctx, &old, Some(&GcArgs::default())).unwrap();
    assert_eq!(commands(&fx.calls("noop")), vec!["ADD", "DEL"]);
}

#[test]
fn status_keeps_the_code() {
    let fx = Fixture::new();
    let ctx = Ctx::background();
    let conf = three_plugins(&fx, "1.1.0");
    fx.control("noop2", json!({"reportError": "plugin not available", "reportErrorCode": 50}));
    let e = fx.cni().get_status_network_list(&ctx, &conf).unwrap_err();
    assert_eq!(e.code(), Some(50));
    assert_eq!(e.to_string(), "plugin not available");
    assert_eq!(commands(&fx.calls("noop")), vec!["STATUS"]);
    assert!(fx.calls("noop3").is_empty(), "stops at the first failure");
    assert_eq!(fx.calls("noop")[0]["stdin"]["name"], "some-list");
    // before 1.1.0 nothing is asked
    let old = three_plugins(&fx, "1.0.0");
    fx.cni().get_status_network_list(&ctx, &old).unwrap();
    assert_eq!(fx.calls("noop").len(), 1);
}

#[test]
fn timeout_kills_a_hung_plugin() {
    let fx = Fixture::new();
    fx.plugin("sleep", json!({"sleepMs": 30_000}));
    let conf = list(json!({"cniVersion": "1.0.0", "name": "slow", "plugins": [{"type": "sleep"}]}));
    let start = Instant::now();
    let e = fx.cni().add_network_list(&Ctx::with_timeout(Duration::from_secs(2)), &conf, &rt("c")).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(e.to_string().contains("netplugin failed with no error message"), "{e}");
}

#[test]
fn cache_files_per_interface() {
    let fx = Fixture::new();
    let ctx = Ctx::background();
    fx.plugin("noop", json!({"reportResult": RESULT_1}));
    let conf = list(json!({"cniVersion": "1.0.0", "name": "multi", "plugins": [{"type": "noop"}]}));
    for ifname in ["eth0", "eth1"] {
        fx.cni().add_network_list(&ctx, &conf, &RuntimeConf { ifname: ifname.into(), ..rt("c") }).unwrap();
    }
    for ifname in ["eth0", "eth1"] {
        let raw: Value = serde_json::from_slice(&std::fs::read(fx.cache_file("multi", "c", ifname)).unwrap()).unwrap();
        assert_eq!(raw["kind"], "cniCacheV1");
        assert_eq!(raw["ifName"], ifname);
    }
    // a path needs all three parts
    let cni = fx.cni();
    let e = cni.get_network_list_cached_result(&conf, &RuntimeConf { ifname: "".into(), ..rt("c") }).unwrap_err();
    assert!(e.to_string().starts_with("cache file path requires"));
    // invalid cached config JSON
    std::fs::write(fx.cache_file("multi", "c", "eth1"), "{bad").unwrap();
    assert!(cni
        .get_network_list_cached_config(&conf, &RuntimeConf { ifname: "eth1".into(), ..rt("c") })
        .unwrap_err()
        .to_string()
        .starts_with(r#"failed to unmarshal cached network "multi" config"#));
    // a missing file is nothing, not an error
    assert!(cni.get_network_list_cached_result(&conf, &RuntimeConf { ifname: "eth9".into(), ..rt("c") }).unwrap().is_none());
    assert!(cni.get_network_list_cached_config(&conf, &RuntimeConf { ifname: "eth9".into(), ..rt("c") }).unwrap().is_none());
}

#[test]
fn result_version_fixup_and_legacy_plugins() {
    let fx = Fixture::new();
    let ctx = Ctx::background();
    // a result without cniVersion takes the config's
    fx.plugin("bare", json!({"rawStdout": r#"{"ips":[{"version":"4","address":"10.0.0.2/24"}]}"#}));
    let conf = list(json!({"cniVersion": "0.4.0", "name": "bare", "plugins": [{"type": "bare"}]}));
    let r = fx.cni().add_network_list(&ctx, &conf, &rt("c")).unwrap();
    assert_eq!(r.version(), "0.4.0");
    // both missing: 0.1.0
    fx.plugin("old", json!({"rawStdout": r#"{"ip4":{"ip":"10.0.0.3/24"}}"#, "legacyNoVersion": true}));
    let conf = list(json!({"name": "old", "plugins": [{"type": "old"}]}));
    let r = fx.cni().add_network_list(&ctx, &conf, &rt("c")).unwrap();
    assert_eq!(r.version(), "0.1.0");
    // a 0.1.0-era plugin that doesn't know VERSION validates as 0.1.0
    fx.plugin("legacy", json!({"legacyNoVersion": true}));
    let info = fx.cni().get_version_info(&ctx, "legacy").unwrap();
    assert_eq!(info.supported_versions, vec!["0.1.0"]);
    let legacy = list(json!({"name": "legacy", "plugins": [{"type": "legacy"}]}));
    fx.cni().validate_network_list(&ctx, &legacy).unwrap();
    let newer = list(json!({"cniVersion": "1.0.0", "name": "legacy", "plugins": [{"type": "legacy"}]}));
    assert_eq!(
        fx.cni().validate_network_list(&ctx, &newer).unwrap_err().to_string(),
        r#"[plugin legacy does not support config version "1.0.0"]"#
    );
    // VERSION call: fake values, the current version on stdin
    let call = fx.calls("legacy").into_iter().find(|c| c["command"] == "VERSION").unwrap();
    assert_eq!(
        (call["env"]["CNI_NETNS"].as_str(), call["env"]["CNI_IFNAME"].as_str(), call["env"]["CNI_PATH"].as_str()),
        (Some("dummy"), Some("dummy"), Some("dummy"))
    );
    // a real 0.1.0 ADD/DEL through the SDK
    fx.plugin("v010", json!({"reportResult": r#"{"cniVersion":"0.1.0","ip4":{"ip":"10.0.0.9/24"}}"#}));
    let v010 = list(json!({"cniVersion": "0.1.0", "name": "v010", "plugins": [{"type": "v010"}]}));
    let r = fx.cni().add_network_list(&ctx, &v010, &rt("c")).unwrap();
    assert_eq!(String::from_utf8(r.to_json()).unwrap(), r#"{"cniVersion":"0.1.0","ip4":{"ip":"10.0.0.9/24"},"dns":{}}"#);
    fx.cni().del_network_list(&ctx, &v010, &rt("c")).unwrap();
}

#[test]
fn plugin_errors_and_stderr() {
    let fx = Fixture::new();
    let ctx = Ctx::background();
    fx.plugin("loud", json!({"reportStderr": "something odd", "exitWithCode": 3, "rawStdout": ""}));
    let conf = list(json!({"cniVersion": "1.0.0", "name": "e", "plugins": [{"type": "loud"}]}));
    let e = fx.cni().add_network_list(&ctx, &conf, &rt("c")).unwrap_err();
    assert_eq!(e.to_string(), r#"plugin type="loud" failed (add): netplugin failed: "something odd""#);
    fx.plugin("garbled", json!({"rawStdout": "<html>", "exitWithCode": 1}));
    let conf = list(json!({"cniVersion": "1.0.0", "name": "e", "plugins": [{"type": "garbled"}]}));
    assert!(fx
        .cni()
        .add_network_list(&ctx, &conf, &rt("c"))
        .unwrap_err()
        .to_string()
        .contains(r#"netplugin failed but error parsing its diagnostic message "<html>""#));
    // a plugin whose output is not a result
    fx.plugin("junk", json!({"rawStdout": "[1,2]"}));
    let conf = list(json!({"cniVersion": "1.0.0", "name": "e", "plugins": [{"type": "junk"}]}));
    assert!(fx.cni().add_network_list(&ctx, &conf, &rt("c")).unwrap_err().to_string().contains("failed to unmarshal raw result"));
}

#[test]
fn single_plugin_variants() {
    let fx = Fixture::new();
    let ctx = Ctx::background();
    fx.plugin("noop", json!({"reportResult": RESULT_1}));
    let net = PluginConfig::from_bytes(br#"{"cniVersion":"1.0.0","name":"single","type":"noop","extra":1}"#).unwrap();
    let r = fx.cni().add_network(&ctx, &net, &rt("s")).unwrap();
    assert_eq!(fx.cni().get_network_cached_result(&net, &rt("s")).unwrap().unwrap(), r);
    let (bytes, _) = fx.cni().get_network_cached_config(&net, &rt("s")).unwrap().unwrap();
    assert_eq!(bytes, net.bytes);
    fx.cni().check_network(&ctx, &net, &rt("s")).unwrap();
    fx.cni().del_network(&ctx, &net, &rt("s")).unwrap();
    let calls = fx.calls("noop");
    assert_eq!(commands(&calls), vec!["ADD", "CHECK", "DEL"]);
    assert_eq!(calls[1]["stdin"]["prevResult"], r.to_value());
    assert_eq!(calls[0]["stdin"]["extra"], 1);
    assert!(fx.cni().get_network_cached_result(&net, &rt("s")).unwrap().is_none());
    assert_eq!(fx.cni().validate_network(&ctx, &net).unwrap(), Vec::<String>::new());
}

#[test]
fn concurrent_adds_share_a_cache_dir() {
    let fx = Fixture::new();
    fx.plugin("noop", json!({"reportResult": RESULT_1}));
    let conf = list(json!({"cniVersion": "1.0.0", "name": "par", "plugins": [{"type": "noop"}]}));
    let cni: CniConfig = fx.cni();
    std::thread::scope(|s| {
        for i in 0..16 {
            let (cni, conf) = (&cni, &conf);
            s.spawn(move || cni.add_network_list(&Ctx::background(), conf, &rt(&format!("p{i}"))).unwrap());
        }
    });
    assert_eq!(cni.get_cached_attachments("").unwrap().len(), 16);
    let leftovers: Vec<_> = std::fs::read_dir(fx.cache_dir().join("results"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

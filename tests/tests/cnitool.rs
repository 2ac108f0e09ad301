//! `cnitool` as users run it: the rcni binary under the name `cnitool`. These tests use the
//! default cache directory (/var/lib/cni), so they run inside the netsandbox only.

mod common;

use common::{commands, Fixture};
use rcni_tests::{rcni_bin, require_netsandbox};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Tool {
    fx: Fixture,
    cnitool: PathBuf,
}

impl Tool {
    fn new(net: &str) -> Self {
        require_netsandbox();
        let fx = Fixture::new();
        let inst = fx.path("inst");
        let out = Command::new(rcni_bin()).args(["install", "--dir", inst.to_str().unwrap()]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let conf = fx.path("net.d");
        std::fs::create_dir(&conf).unwrap();
        std::fs::write(
            conf.join("10-net.conflist"),
            json!({"cniVersion": "1.1.0", "name": net, "plugins": [{"type": "noop", "capabilities": {"portMappings": true}}, {"type": "noop2"}]}).to_string(),
        )
        .unwrap();
        fx.plugin("noop", json!({"reportResult": {"cniVersion": "1.1.0", "ips": [{"address": "10.9.0.2/24"}]}}));
        fx.plugin("noop2", json!({"reportResult": "PASSTHROUGH"}));
        Tool { cnitool: inst.join("cnitool"), fx }
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(&self.cnitool);
        c.args(args)
            .env("NETCONFPATH", self.fx.path("net.d"))
            .env("CNI_PATH", self.fx.bin())
            .env_remove("CNI_ARGS")
            .env_remove("CAP_ARGS")
            .env_remove("CNI_IFNAME");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn cache_file(net: &str, cid: &str, ifname: &str) -> PathBuf {
    Path::new("/var/lib/cni/results").join(format!("{net}-{cid}-{ifname}"))
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn install_lays_out_one_binary_and_links() {
    let t = Tool::new("inst-net");
    let inst = t.fx.path("inst");
    assert!(std::fs::symlink_metadata(inst.join("cnitool")).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_link(inst.join("cnitool")).unwrap(), PathBuf::from("rcni"));
    assert!(std::fs::metadata(inst.join("rcni")).unwrap().is_file());
    // installing again over itself is fine
    let out = Command::new(inst.join("rcni")).args(["install", "--dir", inst.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn usage_and_bad_commands_exit_1() {
    let t = Tool::new("usage-net");
    let o = t.run(&[], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cnitool [-i IFNAME] add    <net> <netns>"));
    let o = t.run(&["frobnicate", "usage-net", "/ns"], &[]);
    assert_eq!(o.status.code(), Some(1), "a deliberate difference: Go exits 0 here");
    assert!(t.fx.calls("noop").is_empty());
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn add_check_del_round_trip() {
    let t = Tool::new("rt-net");
    let ns = t.fx.path("ns-one");
    let cap = r#"{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}"#;
    let o = t.run(&["add", "rt-net", ns.to_str().unwrap()], &[("CAP_ARGS", cap), ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=p")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(
        out,
        "{\n    \"cniVersion\": \"1.1.0\",\n    \"ips\": [\n        {\n            \"address\": \"10.9.0.2/24\"\n        }\n    ]\n}"
    );
    let calls = t.fx.calls("noop");
    let cid = calls[0]["containerID"].as_str().unwrap().to_string();
    assert_eq!(cid, rcni_container_id(ns.to_str().unwrap()));
    assert_eq!(calls[0]["ifname"], "eth0");
    assert_eq!(calls[0]["netns"], ns.to_str().unwrap());
    assert_eq!(calls[0]["args"], "IgnoreUnknown=1;K8S_POD_NAME=p");
    assert_eq!(calls[0]["stdin"]["runtimeConfig"], serde_json::from_str::<Value>(cap).unwrap());
    let cache = cache_file("rt-net", &cid, "eth0");
    assert!(cache.exists());
    let o = t.run(&["check", "rt-net", ns.to_str().unwrap()], &[("CAP_ARGS", cap)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = t.run(&["status", "rt-net", ns.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    for _ in 0..2 {
        let o = t.run(&["del", "rt-net", ns.to_str().unwrap()], &[("CAP_ARGS", cap)]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert!(!cache.exists());
    assert_eq!(commands(&t.fx.calls("noop")), vec!["ADD", "CHECK", "STATUS", "DEL", "DEL"]);
    assert_eq!(commands(&t.fx.calls("noop2")), vec!["ADD", "CHECK", "STATUS", "DEL", "DEL"]);
}

/// Go's derivation, computed independently of the code under test (sha512sum + cut).
fn rcni_container_id(path: &str) -> String {
    let out = Command::new("sh").args(["-c", &format!("printf %s '{path}' | sha512sum | cut -c1-20")]).output().unwrap();
    format!("cnitool-{}", String::from_utf8(out.stdout).unwrap().trim())
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn ifname_flag_env_and_relative_paths() {
    let t = Tool::new("if-net");
    let o = t.run(&["-i", "net1", "add", "if-net", "/var/run/netns/../netns/x"], &[("CNI_IFNAME", "ignored0")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let c = &t.fx.calls("noop")[0];
    assert_eq!(c["ifname"], "net1", "the flag beats CNI_IFNAME");
    assert_eq!(c["netns"], "/var/run/netns/x", "cleaned like filepath.Abs");
    let o = t.run(&["add", "if-net", "/var/run/netns/y"], &[("CNI_IFNAME", "net7")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(t.fx.calls("noop")[1]["ifname"], "net7");
    let o = t.run(&["add", "if-net", "/var/run/netns/z"], &[("CNI_IFNAME", "")]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(t.fx.calls("noop")[2]["ifname"], "eth0", "empty CNI_IFNAME means eth0 (as cnitool on main)");
    // gc deletes every cached attachment of the network
    let o = t.run(&["gc", "if-net", "/whatever"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dels = t.fx.calls("noop").iter().filter(|c| c["command"] == "DEL").count();
    assert_eq!(dels, 3);
    assert_eq!(commands(&t.fx.calls("noop")).last().unwrap(), "GC");
    // and then, with every cached attachment gone, the plugins hear "nothing is valid" (an empty
    // list, not none: a GC without the list removes nothing)
    let gc = t.fx.calls("noop").last().unwrap()["stdin"].clone();
    assert_eq!(gc["cni.dev/valid-attachments"], json!([]), "{gc}");
    assert_eq!(gc["cni.dev/attachments"], json!([]), "{gc}");
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn errors_go_to_stderr_with_exit_1() {
    let t = Tool::new("err-net");
    let o = t.run(&["add", "err-net", "/ns"], &[("CNI_ARGS", "A=1;B")]);
    assert_eq!((o.status.code(), stderr(&o).as_str()), (Some(1), "invalid CNI_ARGS pair \"B\"\n"));
    let o = t.run(&["add", "nope", "/ns"], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("no net configuration with name \"nope\" in "));
    t.fx.control("noop2", json!({"reportError": "bridge exploded", "reportErrorCode": 11}));
    let o = t.run(&["add", "err-net", "/ns"], &[]);
    assert_eq!((o.status.code(), stderr(&o).as_str()), (Some(1), "plugin type=\"noop2\" failed (add): bridge exploded\n"));
    assert!(o.stdout.is_empty());
    let o = t.run(&["add", "err-net", "/ns"], &[("CAP_ARGS", "[1]")]);
    assert_eq!(o.status.code(), Some(1));
}

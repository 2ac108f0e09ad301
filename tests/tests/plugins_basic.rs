//! loopback and static, against the kernel (loopback, in the netsandbox) and side by side with
//! Debian's reference plugins given the same input; and `rcni netns`.

use rcni_tests::{rcni_bin, require_netsandbox, run, run_ok, Call, Installed, TestNetns};
use serde_json::{json, Value};
use std::path::Path;

const DEBIAN: &str = "/usr/lib/cni";

fn lo_state(ns: &TestNetns) -> String {
    let v: Value = serde_json::from_str(&run_ok("ip", &["-n", &ns.name, "-j", "link", "show", "lo"])).unwrap();
    v[0]["operstate"].as_str().unwrap().to_string()
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn loopback_add_check_del() {
    require_netsandbox();
    let inst = Installed::new();
    let lo = inst.path("loopback");
    let ns = TestNetns::new("rcni-lo-1");
    run_ok("ip", &["-n", &ns.name, "link", "set", "lo", "down"]);
    let conf = json!({"cniVersion": "1.0.0", "name": "lo-net", "type": "loopback"}).to_string();
    let call = |cmd| Call::new(cmd, "c1", "lo").netns(&ns.path());
    let r = call("ADD").ok(&lo, &conf);
    assert_eq!(
        r,
        json!({"cniVersion": "1.0.0", "interfaces": [{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": ns.path()}],
               "ips": [{"interface": 0, "address": "127.0.0.1/8"}, {"interface": 0, "address": "::1/128"}]})
    );
    assert_eq!(lo_state(&ns), "UNKNOWN", "lo is up (operstate UNKNOWN)");
    assert!(ns.ping("127.0.0.1"));
    call("CHECK").ok(&lo, &conf);
    call("DEL").ok(&lo, &conf);
    assert_eq!(lo_state(&ns), "DOWN");
    let e = call("CHECK").err(&lo, &conf);
    assert_eq!(e["msg"], "loopback interface is down");
    // chained: passes prevResult through
    let prev = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]});
    let chained = json!({"cniVersion": "1.0.0", "name": "lo-net", "type": "loopback", "prevResult": prev}).to_string();
    assert_eq!(call("ADD").ok(&lo, &chained), prev);
    // 0.3.1 results carry the per-address version
    let r = call("ADD").ok(&lo, &json!({"cniVersion": "0.3.1", "name": "lo-net", "type": "loopback"}).to_string());
    assert_eq!(r["ips"][0]["version"], "4");
    // DEL without a netns, or with one that is gone, succeeds
    Call::new("DEL", "c1", "lo").netns("").ok(&lo, &conf);
    Call::new("DEL", "c1", "lo").netns("/var/run/netns/rcni-gone").ok(&lo, &conf);
    // ADD into a missing netns is an error that names it
    let e = Call::new("ADD", "c1", "lo").netns("/var/run/netns/rcni-gone").err(&lo, &conf);
    assert!(e["msg"].as_str().unwrap().contains("/var/run/netns/rcni-gone"), "{e}");
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn loopback_matches_the_reference_and_refuses_the_host_namespace() {
    require_netsandbox();
    let inst = Installed::new();
    let ours = inst.path("loopback");
    let go = Path::new(DEBIAN).join("loopback");
    let a = TestNetns::new("rcni-lo-a");
    let b = TestNetns::new("rcni-lo-b");
    let conf = json!({"cniVersion": "1.0.0", "name": "lo-net", "type": "loopback"}).to_string();
    let mut mine = Call::new("ADD", "c", "lo").netns(&a.path()).ok(&ours, &conf);
    let mut theirs = Call::new("ADD", "c", "lo").netns(&b.path()).ok(&go, &conf);
    mine["interfaces"][0]["sandbox"] = json!("X");
    theirs["interfaces"][0]["sandbox"] = json!("X");
    theirs.as_object_mut().unwrap().remove("dns"); // 1.1.1 prints an empty dns
    assert_eq!(mine, theirs, "same result as the Go plugin");
    // the plugin's own namespace is refused (it would take the host's lo down on DEL)
    let host_lo_before = run_ok("ip", &["-j", "link", "show", "lo"]);
    let e = Call::new("DEL", "c", "lo").netns("/proc/self/ns/net").err(&ours, &conf);
    assert_eq!(e["code"], 8, "{e}");
    assert_eq!(run_ok("ip", &["-j", "link", "show", "lo"]), host_lo_before);
}

#[test]
fn static_addresses_routes_dns_and_overrides() {
    let inst = Installed::new();
    let st = inst.path("static");
    let conf = json!({"cniVersion": "1.0.0", "name": "st", "ipam": {"type": "static",
        "addresses": [{"address": "10.10.0.1/24", "gateway": "10.10.0.254"}, {"address": "3ffe:ffff:0:01ff::1/64", "gateway": "3ffe:ffff:0::1"}],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.10.5.1"}, {"dst": "3ffe:ffff:0:01ff::1/64"}],
        "dns": {"nameservers": ["8.8.8.8"], "domain": "example.com", "search": ["example.com"]}}});
    let r = Call::new("ADD", "c", "eth0").ok(&st, &conf.to_string());
    assert_eq!(
        r,
        json!({"cniVersion": "1.0.0",
            "ips": [{"address": "10.10.0.1/24", "gateway": "10.10.0.254"}, {"address": "3ffe:ffff:0:1ff::1/64", "gateway": "3ffe:ffff::1"}],
            "routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.10.5.1"}, {"dst": "3ffe:ffff:0:1ff::1/64"}],
            "dns": {"nameservers": ["8.8.8.8"], "domain": "example.com", "search": ["example.com"]}})
    );
    // CNI_ARGS IP= (list) is appended, GATEWAY= matched by subnet
    let r = Call::new("ADD", "c", "eth0").args("IgnoreUnknown=1;IP=10.20.0.5/24,10.30.0.5/24;GATEWAY=10.30.0.1").ok(&st, &conf.to_string());
    let ips: Vec<(String, Value)> =
        r["ips"].as_array().unwrap().iter().map(|i| (i["address"].as_str().unwrap().to_string(), i["gateway"].clone())).collect();
    assert_eq!(ips.len(), 4);
    assert_eq!(ips[2], ("10.20.0.5/24".into(), Value::Null));
    assert_eq!(ips[3], ("10.30.0.5/24".into(), json!("10.30.0.1")));
    // args.cni.ips and runtimeConfig.ips replace the list
    let mut c2 = conf.clone();
    c2["args"] = json!({"cni": {"ips": ["10.40.0.5/24"]}});
    assert_eq!(Call::new("ADD", "c", "eth0").ok(&st, &c2.to_string())["ips"], json!([{"address": "10.40.0.5/24"}]));
    c2["runtimeConfig"] = json!({"ips": ["10.50.0.5/16"]});
    assert_eq!(Call::new("ADD", "c", "eth0").ok(&st, &c2.to_string())["ips"], json!([{"address": "10.50.0.5/16"}]));
    // CHECK against prevResult; DEL does nothing
    let mut chk = conf.clone();
    chk["prevResult"] = r.clone();
    Call::new("CHECK", "c", "eth0").ok(&st, &chk.to_string());
    chk["prevResult"]["ips"][0]["gateway"] = json!("10.10.0.9");
    let e = Call::new("CHECK", "c", "eth0").err(&st, &chk.to_string());
    assert_eq!(e["msg"], "static: Failed to match addr 10.10.0.1 on interface eth0");
    Call::new("DEL", "c", "eth0").ok(&st, &conf.to_string());
    // bad input: code 7, naming the field
    let bad = json!({"cniVersion": "1.0.0", "name": "st", "ipam": {"type": "static", "addresses": [{"address": "10.10.0.1"}]}});
    let e = Call::new("ADD", "c", "eth0").err(&st, &bad.to_string());
    assert_eq!(
        (e["code"].as_u64(), e["msg"].as_str()),
        (Some(7), Some("the 'address' field is expected to be in CIDR notation, got: '10.10.0.1'"))
    );
}

#[test]
#[ignore = "needs Debian's reference plugins: run scripts/test"]
fn static_matches_the_reference() {
    let inst = Installed::new();
    let conf = json!({"cniVersion": "1.0.0", "name": "st", "ipam": {"type": "static",
        "addresses": [{"address": "10.10.0.1/24", "gateway": "10.10.0.254"}, {"address": "fd00::5/64"}],
        "routes": [{"dst": "0.0.0.0/0"}], "dns": {"nameservers": ["1.1.1.1"]}}})
    .to_string();
    let c = Call::new("ADD", "c", "eth0").args("IgnoreUnknown=1;IP=10.20.0.5/24;GATEWAY=10.20.0.1");
    let ours = c.ok(&inst.path("static"), &conf);
    let theirs = c.ok(&Path::new(DEBIAN).join("static"), &conf);
    assert_eq!(ours, theirs);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn rcni_netns_round_trip() {
    require_netsandbox();
    let rcni = rcni_bin();
    let r = rcni.to_str().unwrap();
    assert_eq!(run_ok(r, &["netns", "add", "rcni-cli-ns"]).trim(), "/run/netns/rcni-cli-ns");
    assert!(run_ok(r, &["netns", "ls", "-q"]).lines().any(|l| l == "rcni-cli-ns"));
    assert!(run_ok(r, &["netns", "ls"]).lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["rcni-cli-ns", "-", "-"]));
    assert!(run_ok("ip", &["netns", "list"]).contains("rcni-cli-ns"), "iproute2 sees it");
    // exec runs inside: only lo, and /sys shows the namespace's links
    let out = run_ok(r, &["netns", "exec", "rcni-cli-ns", "--", "sh", "-c", "ip -o link | wc -l; ls /sys/class/net"]);
    assert_eq!(out, "1\nlo\n");
    let st = run(r, &["netns", "exec", "rcni-cli-ns", "--", "sh", "-c", "exit 7"]);
    assert_eq!(st.status.code(), Some(7), "exit status passed through");
    // identify a process started inside
    let mut child = std::process::Command::new(r).args(["netns", "exec", "rcni-cli-ns", "--", "sleep", "5"]).spawn().unwrap();
    let mut named = String::new();
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let pids = run_ok("pgrep", &["-P", &child.id().to_string()]);
        if let Some(pid) = pids.lines().next() {
            named = run_ok(r, &["netns", "identify", pid]);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(named.trim(), "rcni-cli-ns");
    run_ok(r, &["netns", "del", "rcni-cli-ns"]);
    assert!(!run_ok(r, &["netns", "ls"]).contains("rcni-cli-ns"));
    assert_eq!(run(r, &["netns", "del", "rcni-cli-ns"]).status.code(), Some(1));
    // a random name
    let p = run_ok(r, &["netns", "add"]);
    let name = Path::new(p.trim()).file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("cni-"));
    run_ok(r, &["netns", "del", &name]);
}

//! vrf against the kernel (netsandbox only). This machine's kernel has no VRF support
//! (CONFIG_NET_VRF): ADD fails with code 50 naming it and leaves the container exactly as it
//! was (links, addresses, routes), STATUS answers 50, DEL succeeds (twice, and without the
//! namespace); Debian's vrf fails too and leaves the same. On a kernel with VRFs the test
//! checks the enslaving and the table instead. Subnet 10.149.0.0/16.

use rcni_tests::{link, require_netsandbox, run, run_ok, Call, Installed, TestNetns};
use serde_json::{json, Value};

const GO_VRF: &str = "/usr/lib/cni/vrf";

/// Links (name, master), addresses and routes of every table in `ns`.
fn state(ns: &str) -> (String, String, String) {
    (
        run_ok("ip", &["-n", ns, "-o", "link", "show"]),
        run_ok("ip", &["-n", ns, "-o", "addr", "show"]),
        run_ok("ip", &["-n", ns, "route", "show", "table", "all"]),
    )
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn without_kernel_vrf_support_a_clear_error_and_nothing_left() {
    require_netsandbox();
    let inst = Installed::new();
    let vrf = inst.path("vrf");
    let pod = TestNetns::new("rcni-vrf-a");
    let _ = run("ip", &["link", "del", "vrfv0"]);
    run_ok("ip", &["link", "add", "vrfv0", "type", "veth", "peer", "name", "eth0", "netns", &pod.name]);
    run_ok("ip", &["-n", &pod.name, "addr", "add", "10.149.0.2/24", "dev", "eth0"]);
    run_ok("ip", &["-n", &pod.name, "link", "set", "eth0", "up"]);
    let mac = link(Some(&pod.name), "eth0").unwrap()["address"].as_str().unwrap().to_string();
    let prev = json!({"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "mac": mac, "sandbox": pod.path()}],
        "ips": [{"address": "10.149.0.2/24", "interface": 0}]});
    let conf = json!({"cniVersion": "1.0.0", "name": "vrfnet", "type": "vrf", "vrfname": "blue", "prevResult": prev}).to_string();
    let status_conf = conf.replace("\"1.0.0\"", "\"1.1.0\"");
    let call = |cmd: &'static str| Call::new(cmd, "vrf-a", "eth0").netns(&pod.path());
    let supported = {
        let probe = TestNetns::new("rcni-vrf-probe");
        run("ip", &["-n", &probe.name, "link", "add", "p0", "type", "vrf", "table", "1"]).status.success()
    };
    let before = state(&pod.name);
    if !supported {
        let e = call("ADD").err(&vrf, &conf);
        assert_eq!(e["code"], 50, "{e}");
        assert!(e["msg"].as_str().unwrap().contains("CONFIG_NET_VRF"), "names the missing kernel feature: {e}");
        assert_eq!(state(&pod.name), before, "nothing left");
        let e = call("STATUS").err(&vrf, &status_conf);
        assert_eq!(e["code"], 50, "{e}");
        call("DEL").ok(&vrf, &conf);
        call("DEL").ok(&vrf, &conf);
        assert_eq!(state(&pod.name), before);
        // Debian's fails too, and leaves the same
        let mut go = call("ADD");
        go.path = "/usr/lib/cni".into();
        go.err(std::path::Path::new(GO_VRF), &conf);
        assert_eq!(state(&pod.name), before, "Debian's vrf leaves nothing either");
    } else {
        let r = call("ADD").ok(&vrf, &conf);
        assert_eq!(r["ips"], prev["ips"]);
        let l = link(Some(&pod.name), "eth0").unwrap();
        assert_eq!(l["master"], "blue", "{l}");
        let b = link(Some(&pod.name), "blue").unwrap();
        assert_eq!(b["linkinfo"]["info_data"]["table"], 1, "{b}");
        call("CHECK").ok(&vrf, &conf);
        call("STATUS").ok(&vrf, &status_conf);
        call("DEL").ok(&vrf, &conf);
        assert!(link(Some(&pod.name), "blue").is_none(), "the VRF goes with its last member");
        call("DEL").ok(&vrf, &conf);
    }
    // a link of that name that is no VRF
    let not_vrf: Value = json!({"cniVersion": "1.0.0", "name": "vrfnet", "type": "vrf", "vrfname": "lo", "prevResult": prev});
    let e = call("ADD").err(&vrf, &not_vrf.to_string());
    assert!(e["msg"].as_str().unwrap().contains("not a VRF"), "{e}");
    assert_eq!(state(&pod.name), before);
    let path = pod.path();
    drop(pod);
    Call::new("DEL", "vrf-a", "eth0").netns(&path).ok(&vrf, &conf);
}

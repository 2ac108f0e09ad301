//! host-device against the kernel (netsandbox only): a veth end of the node moved into a
//! container under `CNI_IFNAME` with IPAM addresses (traffic to its peer on the node), CHECK,
//! moved back on DEL under its name with its MAC, the lease released; DEL after DEL; a name
//! taken on the node failing the DEL without changing anything; DEL with the namespace gone
//! releasing the lease; a device found by MAC without IPAM; Debian's plugin ADDing what ours DELs and the other way round; Go's
//! cnitool driving ours. Subnet 10.146.0.0/16.

use rcni_tests::{go_cnitool, link, require_netsandbox, run, run_ok, Call, Installed, TestNetns};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const GO_HOST_DEVICE: &str = "/usr/lib/cni/host-device";

/// A veth pair on the node: `dev` (the one to move) and `peer` (10.146.N.1/24, up).
struct Pair {
    mac: String,
}

impl Pair {
    fn new(dev: &str, peer: &str, n: u8) -> Pair {
        let _ = run("ip", &["link", "del", dev]);
        let _ = run("ip", &["link", "del", peer]);
        run_ok("ip", &["link", "add", dev, "type", "veth", "peer", "name", peer]);
        run_ok("ip", &["addr", "add", &format!("10.146.{n}.1/24"), "dev", peer]);
        run_ok("ip", &["link", "set", peer, "up"]);
        let mac = link(None, dev).unwrap()["address"].as_str().unwrap().to_string();
        Pair { mac }
    }
}

struct Env {
    inst: Installed,
    data: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        require_netsandbox();
        Env { inst: Installed::new(), data: tempfile::tempdir().unwrap() }
    }

    fn conf(&self, net: &str, dev: &str, n: u8) -> String {
        json!({"cniVersion": "1.0.0", "name": net, "type": "host-device", "device": dev,
            "ipam": {"type": "host-local", "dataDir": self.data.path(), "ranges": [[{"subnet": format!("10.146.{n}.0/24")}]]}})
        .to_string()
    }

    fn lease(&self, net: &str, ip: &str) -> PathBuf {
        self.data.path().join(net).join(ip)
    }

    fn ours(&self) -> PathBuf {
        self.inst.path("host-device")
    }

    fn call(&self, cmd: &'static str, cid: &str, ns: &str) -> Call {
        let mut c = Call::new(cmd, cid, "net1").netns(ns);
        c.path = self.inst.dir.path().display().to_string();
        c
    }
}

fn with_prev(conf: &str, prev: &Value) -> String {
    let mut c: Value = serde_json::from_str(conf).unwrap();
    c["prevResult"] = prev.clone();
    c.to_string()
}

/// `ip -j addr show dev NAME` inside `ns`: the IPv4 addresses with their prefixes.
fn addrs(ns: &str, dev: &str) -> Vec<String> {
    let out = run_ok("ip", &["-j", "-n", ns, "-4", "addr", "show", "dev", dev]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v[0]["addr_info"]
        .as_array()
        .map(|a| a.iter().map(|i| format!("{}/{}", i["local"].as_str().unwrap(), i["prefixlen"])).collect())
        .unwrap_or_default()
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn moved_in_with_addresses_and_back_under_its_name() {
    let env = Env::new();
    let pod = TestNetns::new("rcni-hd-a");
    let pair = Pair::new("hdv0", "hdv0p", 1);
    let conf = env.conf("hdnet", "hdv0", 1);
    let r = env.call("ADD", "hd-a", &pod.path()).ok(&env.ours(), &conf);
    assert_eq!(r["interfaces"], json!([{"name": "net1", "mac": pair.mac, "sandbox": pod.path()}]), "{r}");
    assert_eq!(r["ips"][0]["address"], "10.146.1.2/24", "{r}");
    assert_eq!(r["ips"][0]["interface"], 0, "{r}");
    assert!(link(None, "hdv0").is_none(), "the device left the node");
    let inside = link(Some(&pod.name), "net1").expect("net1 in the container");
    assert_eq!((inside["address"].as_str(), inside["ifalias"].as_str()), (Some(pair.mac.as_str()), Some("hdv0")), "{inside}");
    assert!(inside["flags"].as_array().unwrap().iter().any(|f| f == "UP"), "{inside}");
    assert_eq!(addrs(&pod.name, "net1"), ["10.146.1.2/24"]);
    assert!(pod.ping("10.146.1.1"), "the moved device carries traffic to its peer on the node");
    assert!(env.lease("hdnet", "10.146.1.2").exists());
    env.call("CHECK", "hd-a", &pod.path()).ok(&env.ours(), &with_prev(&conf, &r));

    env.call("DEL", "hd-a", &pod.path()).ok(&env.ours(), &with_prev(&conf, &r));
    assert!(link(Some(&pod.name), "net1").is_none(), "net1 left the container");
    let back = link(None, "hdv0").expect("hdv0 is back on the node under its name");
    assert_eq!(back["address"].as_str(), Some(pair.mac.as_str()), "{back}");
    assert!(back.get("ifalias").is_none(), "our alias is cleared: {back}");
    assert!(!back["flags"].as_array().unwrap().iter().any(|f| f == "UP"), "down on the node, as the reference leaves it: {back}");
    assert!(!env.lease("hdnet", "10.146.1.2").exists(), "the lease is released");
    // DEL after DEL
    env.call("DEL", "hd-a", &pod.path()).ok(&env.ours(), &conf);
    assert!(link(None, "hdv0").is_some());

    // a device that is not there: nothing changes
    let e = env.call("ADD", "hd-a", &pod.path()).err(&env.ours(), &env.conf("hdnet", "hdnope0", 1));
    assert!(e["msg"].as_str().unwrap().contains("failed to find host device"), "{e}");
    assert!(!env.lease("hdnet", "10.146.1.2").exists());
    // a failing IPAM puts the device back where it was
    let bad = json!({"cniVersion": "1.0.0", "name": "hdnet", "type": "host-device", "device": "hdv0", "ipam": {"type": "no-such-ipam"}});
    env.call("ADD", "hd-a", &pod.path()).err(&env.ours(), &bad.to_string());
    let back = link(None, "hdv0").expect("hdv0 stays on the node after a failed ADD");
    assert!(back.get("ifalias").is_none(), "{back}");
    assert!(link(Some(&pod.name), "net1").is_none());

    // found by MAC, without IPAM: the result has the interface only
    let by_mac = json!({"cniVersion": "1.0.0", "name": "hdnet", "type": "host-device", "hwaddr": pair.mac.to_uppercase()}).to_string();
    let r = env.call("ADD", "hd-a", &pod.path()).ok(&env.ours(), &by_mac);
    assert_eq!(r, json!({"cniVersion": "1.0.0", "interfaces": [{"name": "net1", "mac": pair.mac, "sandbox": pod.path()}]}));
    assert!(addrs(&pod.name, "net1").is_empty());
    env.call("DEL", "hd-a", &pod.path()).ok(&env.ours(), &by_mac);
    assert!(link(None, "hdv0").is_some());
    let _ = run("ip", &["link", "del", "hdv0"]);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn del_with_the_name_taken_fails_then_succeeds_and_del_without_the_netns_releases_the_lease() {
    let env = Env::new();
    let pod = TestNetns::new("rcni-hd-b");
    let _pair = Pair::new("hdv1", "hdv1p", 2);
    let conf = env.conf("hdnet2", "hdv1", 2);
    let r = env.call("ADD", "hd-b", &pod.path()).ok(&env.ours(), &conf);
    // another link takes the name on the node: DEL fails and changes nothing
    run_ok("ip", &["link", "add", "hdv1", "type", "veth", "peer", "name", "hdv1x"]);
    let e = env.call("DEL", "hd-b", &pod.path()).err(&env.ours(), &with_prev(&conf, &r));
    assert!(e["msg"].as_str().unwrap().contains("hdv1"), "{e}");
    let inside = link(Some(&pod.name), "net1").expect("net1 stays in the container");
    assert!(inside["flags"].as_array().unwrap().iter().any(|f| f == "UP"), "set up again: {inside}");
    assert!(env.lease("hdnet2", "10.146.2.2").exists());
    run_ok("ip", &["link", "del", "hdv1"]);
    env.call("DEL", "hd-b", &pod.path()).ok(&env.ours(), &with_prev(&conf, &r));
    assert!(link(None, "hdv1").is_some());
    assert!(!env.lease("hdnet2", "10.146.2.2").exists());

    // the namespace goes away with the device in it (a veth dies with it): DEL releases the lease
    let pod2 = TestNetns::new("rcni-hd-b2");
    let path = pod2.path();
    env.call("ADD", "hd-b2", &path).ok(&env.ours(), &conf);
    assert!(env.lease("hdnet2", "10.146.2.2").exists() || env.lease("hdnet2", "10.146.2.3").exists());
    drop(pod2);
    env.call("DEL", "hd-b2", &path).ok(&env.ours(), &conf);
    env.call("DEL", "hd-b2", "").ok(&env.ours(), &conf);
    let leases: Vec<_> = std::fs::read_dir(env.data.path().join("hdnet2"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("10."))
        .collect();
    assert!(leases.is_empty(), "no lease left: {leases:?}");
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn interop_with_debians_host_device() {
    let env = Env::new();
    let pod = TestNetns::new("rcni-hd-c");
    let pair = Pair::new("hdv2", "hdv2p", 3);
    let conf = env.conf("hdnet3", "hdv2", 3);
    let go = Path::new(GO_HOST_DEVICE);
    // same input, same result and kernel state in the container
    let mut results = Vec::new();
    for (add, del) in [(go.to_path_buf(), env.ours()), (env.ours(), go.to_path_buf())] {
        let r = env.call("ADD", "hd-c", &pod.path()).ok(&add, &conf);
        let inside = link(Some(&pod.name), "net1").expect("net1 in the container");
        assert_eq!((inside["address"].as_str(), inside["ifalias"].as_str()), (Some(pair.mac.as_str()), Some("hdv2")), "{inside}");
        let ip = r["ips"][0]["address"].as_str().unwrap().to_string();
        assert_eq!(addrs(&pod.name, "net1"), std::slice::from_ref(&ip));
        assert!(pod.ping("10.146.3.1"));
        env.call("DEL", "hd-c", &pod.path()).ok(&del, &with_prev(&conf, &r));
        assert!(link(Some(&pod.name), "net1").is_none());
        assert_eq!(link(None, "hdv2").expect("back on the node")["address"].as_str(), Some(pair.mac.as_str()));
        assert!(!env.lease("hdnet3", ip.trim_end_matches("/24")).exists());
        results.push(r);
    }
    results[1]["ips"][0]["address"] = results[0]["ips"][0]["address"].clone(); // host-local's round robin
    for k in ["cniVersion", "interfaces", "ips", "routes"] {
        assert_eq!(results[0][k], results[1][k], "Debian's result and ours: {k}");
    }

    // Go's cnitool drives ours
    let netd = tempfile::tempdir().unwrap();
    let mut list: Value = json!({"cniVersion": "1.0.0", "name": "hdnet3", "plugins": [serde_json::from_str::<Value>(&conf).unwrap()]});
    list["plugins"][0].as_object_mut().unwrap().remove("cniVersion");
    list["plugins"][0].as_object_mut().unwrap().remove("name");
    std::fs::write(netd.path().join("10-hd.conflist"), list.to_string()).unwrap();
    let tool = |cmd: &str| {
        let o = Command::new(go_cnitool())
            .args([cmd, "hdnet3", &pod.path()])
            .env("NETCONFPATH", netd.path())
            .env("CNI_PATH", env.inst.dir.path())
            .env("CNI_IFNAME", "net1")
            .env_remove("CNI_ARGS")
            .env_remove("CAP_ARGS")
            .output()
            .unwrap();
        assert!(o.status.success(), "cnitool {cmd}: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let out = tool("add");
    assert!(out.contains("10.146.3."), "{out}");
    assert!(pod.ping("10.146.3.1"));
    tool("check");
    tool("del");
    assert!(link(None, "hdv2").is_some() && link(Some(&pod.name), "net1").is_none());
    let _ = run("ip", &["link", "del", "hdv2"]);
}

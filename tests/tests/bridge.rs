//! bridge and ptp against the kernel (netsandbox only): the upstream scenarios this kernel can run,
//! traffic, masquerade, failure cleanup, and mixed chains with Debian's plugins.

use rcni_tests::{link, require_netsandbox, run, run_ok, Call, Installed, TestNetns};
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
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
        Env { inst: Installed::new(), data: tempfile::tempdir().unwrap() }
    }
    fn plugin(&self, name: &str) -> PathBuf {
        self.inst.path(name)
    }
    /// A bridge config on bridge `br` for network `net`, with `extra` keys merged in.
    fn bridge(&self, net: &str, br: &str, ranges: Value, extra: Value) -> String {
        let mut c = json!({"cniVersion": "1.0.0", "name": net, "type": "bridge", "bridge": br,
            "ipam": {"type": "host-local", "ranges": ranges, "dataDir": self.data.path()}});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c.to_string()
    }
    fn call(&self, cmd: &'static str, cid: &str, ns: &TestNetns) -> Call {
        let mut c = Call::new(cmd, cid, "eth0").netns(&ns.path());
        c.path = self.inst.dir.path().to_string_lossy().into_owned();
        c
    }
    fn lease_files(&self, net: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.data.path().join(net))
            .map(|d| d.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
            .unwrap_or_default();
        // address files only (rcni's index `.rcni-by-id` is checked by the crash test)
        v.retain(|f| f != "lock" && f != ".rcni-by-id" && !f.starts_with("last_reserved_ip"));
        v.sort();
        v
    }
}

fn with_prev(conf: &str, prev: &Value) -> String {
    let mut c: Value = serde_json::from_str(conf).unwrap();
    c["prevResult"] = prev.clone();
    c.to_string()
}

fn masq_elements() -> String {
    String::from_utf8(run("nft", &["list", "table", "inet", "rcni"]).stdout).unwrap()
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn dual_stack_result_layout_traffic_and_cleanup() {
    let e = Env::new();
    let conf = e.bridge(
        "br-ds",
        "rcnibr1",
        json!([[{"subnet": "10.240.1.0/24"}], [{"subnet": "fd40:1::/64"}]]),
        json!({"isGateway": true, "isDefaultGateway": true, "ipMasq": true}),
    );
    let a = TestNetns::new("rcni-br-a");
    let b = TestNetns::new("rcni-br-b");
    let ra = e.call("ADD", "ca", &a).ok(&e.plugin("bridge"), &conf);
    let rb = e.call("ADD", "cb", &b).ok(&e.plugin("bridge"), &conf);

    // interfaces: bridge, host veth, container veth — with the MACs the kernel has
    let ifs = ra["interfaces"].as_array().unwrap();
    assert_eq!(ifs.len(), 3);
    assert_eq!(ifs[0]["name"], "rcnibr1");
    assert_eq!(ifs[0]["mac"], link(None, "rcnibr1").unwrap()["address"]);
    let host_veth = ifs[1]["name"].as_str().unwrap();
    assert!(host_veth.starts_with("veth") && host_veth.len() == 12);
    let hv = link(None, host_veth).unwrap();
    assert_eq!(ifs[1]["mac"], hv["address"]);
    assert_eq!(hv["master"], "rcnibr1");
    assert_eq!(ifs[2], json!({"name": "eth0", "mac": link(Some(&a.name), "eth0").unwrap()["address"], "sandbox": a.path()}));
    assert_eq!(
        ra["ips"],
        json!([{"address": "10.240.1.2/24", "gateway": "10.240.1.1", "interface": 2}, {"address": "fd40:1::2/64", "gateway": "fd40:1::1", "interface": 2}])
    );
    assert_eq!(ra["routes"], json!([{"dst": "0.0.0.0/0", "gw": "10.240.1.1"}, {"dst": "::/0", "gw": "fd40:1::1"}]));
    let br_addrs = run_ok("ip", &["-br", "addr", "show", "rcnibr1"]);
    assert!(br_addrs.contains("10.240.1.1/24") && br_addrs.contains("fd40:1::1/64"), "{br_addrs}");
    // usable at once: no DAD on the container's or the gateway's IPv6 addresses
    assert!(run_ok("ip", &["-n", &a.name, "-6", "addr", "show", "eth0"]).contains("nodad"));
    assert!(a.ping("10.240.1.3") && b.ping("10.240.1.2"), "v4 between containers");
    assert!(a.ping("fd40:1::3") && b.ping("fd40:1::2"), "v6 between containers");
    assert!(a.ping("10.240.1.1") && a.ping("fd40:1::1"), "gateways");
    let routes = run_ok("ip", &["-n", &a.name, "route"]);
    assert!(routes.contains("default via 10.240.1.1 dev eth0"), "{routes}");
    assert_eq!(run_ok("sysctl", &["-n", "net.ipv4.ip_forward"]).trim(), "1");
    // masquerade: both containers' addresses, commented with their owner
    let t = masq_elements();
    assert!(t.contains("10.240.1.2 comment \"rcni:") && t.contains("fd40:1::2 comment \"rcni:") && t.contains("id=ca if=eth0"), "{t}");
    assert!(t.contains("10.240.1.0/24") && t.contains("fd40:1::/64"), "{t}");

    // CHECK passes, and fails once an address is gone
    e.call("CHECK", "ca", &a).ok(&e.plugin("bridge"), &with_prev(&conf, &ra));
    run_ok("ip", &["-n", &b.name, "addr", "del", "10.240.1.3/24", "dev", "eth0"]);
    let err = e.call("CHECK", "cb", &b).err(&e.plugin("bridge"), &with_prev(&conf, &rb));
    assert!(err["msg"].as_str().unwrap().contains("10.240.1.3/24"), "{err}");

    // DEL: veth, lease, masquerade of this container only; repeat DEL fine
    e.call("DEL", "ca", &a).ok(&e.plugin("bridge"), &with_prev(&conf, &ra));
    assert!(link(None, host_veth).is_none() && link(Some(&a.name), "eth0").is_none());
    assert_eq!(e.lease_files("br-ds"), vec!["10.240.1.3", "fd40:1::3"]);
    let t = masq_elements();
    assert!(!t.contains("id=ca ") && t.contains("id=cb "), "{t}");
    e.call("DEL", "ca", &a).ok(&e.plugin("bridge"), &conf);
    // DEL after the netns is gone, without prevResult: lease and masquerade still released
    let b_path = b.path();
    drop(b);
    let mut del = Call::new("DEL", "cb", "eth0").netns(&b_path);
    del.path = e.inst.dir.path().to_string_lossy().into_owned();
    del.ok(&e.plugin("bridge"), &conf);
    assert!(e.lease_files("br-ds").is_empty());
    assert!(!masq_elements().contains("id=cb "));
    assert!(link(None, "rcnibr1").is_some(), "the bridge stays");
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn masquerade_rewrites_outgoing_traffic() {
    let e = Env::new();
    // an "outside" namespace reachable from the node only; the container's subnet has no route there
    let out = TestNetns::new("rcni-br-out");
    run_ok("ip", &["link", "add", "rcni-up0", "type", "veth", "peer", "name", "up1", "netns", &out.name]);
    run_ok("ip", &["addr", "add", "192.0.2.1/24", "dev", "rcni-up0"]);
    run_ok("ip", &["link", "set", "rcni-up0", "up"]);
    run_ok("ip", &["-n", &out.name, "addr", "add", "192.0.2.2/24", "dev", "up1"]);
    run_ok("ip", &["-n", &out.name, "link", "set", "up1", "up"]);
    let conf = e.bridge(
        "br-masq",
        "rcnibr2",
        json!([[{"subnet": "10.240.2.0/24"}]]),
        json!({"isGateway": true, "isDefaultGateway": true, "ipMasq": true}),
    );
    let c = TestNetns::new("rcni-br-masq");
    let r = e.call("ADD", "cm", &c).ok(&e.plugin("bridge"), &conf);
    assert!(c.ping("192.0.2.2"), "masqueraded traffic gets answers (the outside has no route back to 10.240.2.0/24)");
    e.call("DEL", "cm", &c).ok(&e.plugin("bridge"), &with_prev(&conf, &r));
    // without masquerade (a second container on a network without ipMasq) there is no answer
    let conf2 =
        e.bridge("br-nomasq", "rcnibr2", json!([[{"subnet": "10.240.2.0/24"}]]), json!({"isGateway": true, "isDefaultGateway": true}));
    let r2 = e.call("ADD", "cn", &c).ok(&e.plugin("bridge"), &conf2);
    assert!(!c.ping("192.0.2.2"), "no masquerade, no reply");
    e.call("DEL", "cn", &c).ok(&e.plugin("bridge"), &with_prev(&conf2, &r2));
    let _ = run("ip", &["link", "del", "rcni-up0"]);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn hairpin_isolation_existing_bridge_and_macs() {
    let e = Env::new();
    run_ok("ip", &["link", "add", "rcnibr3", "type", "bridge"]);
    let conf = e.bridge(
        "br-flags",
        "rcnibr3",
        json!([[{"subnet": "10.240.3.0/24"}]]),
        json!({"hairpinMode": true, "portIsolation": true, "runtimeConfig": {"mac": "02:00:00:00:00:33"}, "args": {"cni": {"mac": "02:00:00:00:00:22"}}}),
    );
    let a = TestNetns::new("rcni-br-flags");
    // CNI_ARGS < args.cni.mac < runtimeConfig.mac
    let r = e.call("ADD", "cf", &a).args("IgnoreUnknown=1;MAC=02:00:00:00:00:11").ok(&e.plugin("bridge"), &conf);
    assert_eq!(r["interfaces"][2]["mac"], "02:00:00:00:00:33");
    let port = link(None, r["interfaces"][1]["name"].as_str().unwrap()).unwrap();
    assert_eq!(port["linkinfo"]["info_slave_data"]["hairpin"], true, "{port}");
    assert_eq!(port["linkinfo"]["info_slave_data"]["isolated"], true, "{port}");
    let br = link(None, "rcnibr3").unwrap();
    assert!(br["flags"].as_array().unwrap().iter().any(|f| f == "UP"), "the existing bridge is used and brought up: {br}");
    e.call("DEL", "cf", &a).ok(&e.plugin("bridge"), &with_prev(&conf, &r));
    // CNI_ARGS MAC alone (IgnoreUnknown, as runtimes send it: host-local gets the same CNI_ARGS)
    let conf = e.bridge("br-flags", "rcnibr3", json!([[{"subnet": "10.240.3.0/24"}]]), json!({}));
    let err = e.call("ADD", "cg", &a).args("MAC=02:00:00:00:00:44").err(&e.plugin("bridge"), &conf);
    assert_eq!(err["msg"], "ARGS: unknown args [\"MAC=02:00:00:00:00:44\"]", "host-local refuses unknown CNI_ARGS, as Go's");
    assert!(link(Some(&a.name), "eth0").is_none(), "and the bridge plugin undid its veth");
    let r = e.call("ADD", "cg", &a).args("IgnoreUnknown=1;MAC=02:00:00:00:00:44").ok(&e.plugin("bridge"), &conf);
    assert_eq!(r["interfaces"][2]["mac"], "02:00:00:00:00:44");
    e.call("DEL", "cg", &a).ok(&e.plugin("bridge"), &with_prev(&conf, &r));
    // a link of that name that is not a bridge
    run_ok("ip", &["link", "add", "rcninotbr", "type", "veth", "peer", "name", "rcninotbr2"]);
    let bad = e.bridge("br-notbr", "rcninotbr", json!([[{"subnet": "10.240.4.0/24"}]]), json!({}));
    let err = e.call("ADD", "ch", &a).err(&e.plugin("bridge"), &bad);
    assert_eq!(err["msg"], "\"rcninotbr\" already exists but is not a bridge");
    assert!(e.lease_files("br-notbr").is_empty());
    let _ = run("ip", &["link", "del", "rcninotbr"]);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn invalid_config_changes_nothing_and_failures_roll_back() {
    let e = Env::new();
    let a = TestNetns::new("rcni-br-inv");
    for (extra, msg) in [
        (json!({"vlan": 5000}), "invalid VLAN ID 5000 (must be between 0 and 4094)"),
        (json!({"hairpinMode": true, "promiscMode": true}), "cannot set hairpin mode and promiscuous mode at the same time"),
        (json!({"vlanTrunk": [{"minID": 10}]}), "minID and maxID should be configured simultaneously, maxID is missing"),
        (json!({"disableContainerInterface": true}), "cannot use IPAM when DisableContainerInterface flag is set"),
        (json!({"runtimeConfig": {"mac": "zz:00:00:00:00:00"}}), "invalid MAC address"),
        (json!({"ipMasqBackend": "bpf"}), "ipMasqBackend"),
    ] {
        let conf = e.bridge("br-inv", "rcnibrinv", json!([[{"subnet": "10.240.5.0/24"}]]), extra);
        let err = e.call("ADD", "ci", &a).err(&e.plugin("bridge"), &conf);
        assert!(err["msg"].as_str().unwrap().contains(msg), "{err} vs {msg}");
        assert!(matches!(err["code"].as_u64(), Some(2) | Some(7)), "{err}");
    }
    assert!(link(None, "rcnibrinv").is_none(), "no bridge created");
    assert!(link(Some(&a.name), "eth0").is_none(), "no veth created");
    assert!(e.lease_files("br-inv").is_empty());

    // a failure after IPAM (the bridge already has another IPv4 address): lease, veth, rules undone
    run_ok("ip", &["link", "add", "rcnibr5", "type", "bridge"]);
    run_ok("ip", &["addr", "add", "10.99.99.1/24", "dev", "rcnibr5"]);
    let conf = e.bridge("br-fail", "rcnibr5", json!([[{"subnet": "10.240.6.0/24"}]]), json!({"isGateway": true, "ipMasq": true}));
    let err = e.call("ADD", "cx", &a).err(&e.plugin("bridge"), &conf);
    assert!(err["msg"].as_str().unwrap().contains("already has an IP address different from 10.240.6.1/24"), "{err}");
    assert!(e.lease_files("br-fail").is_empty(), "lease released");
    assert!(link(Some(&a.name), "eth0").is_none(), "veth removed");
    assert!(!run_ok("ip", &["-o", "link"]).contains("master rcnibr5"));
    assert!(!masq_elements().contains("id=cx "));
    // forceAddress replaces it
    let conf = e.bridge("br-fail", "rcnibr5", json!([[{"subnet": "10.240.6.0/24"}]]), json!({"isGateway": true, "forceAddress": true}));
    let r = e.call("ADD", "cx", &a).ok(&e.plugin("bridge"), &conf);
    assert!(!run_ok("ip", &["addr", "show", "rcnibr5"]).contains("10.99.99.1"));
    e.call("DEL", "cx", &a).ok(&e.plugin("bridge"), &with_prev(&conf, &r));

    // VLANs: this kernel has no 802.1Q; the refusal is clear and nothing is left
    let conf = e.bridge("br-vlan", "rcnibrvlan", json!([[{"subnet": "10.240.7.0/24"}]]), json!({"vlan": 100}));
    let (code, v) = e.call("ADD", "cv", &a).run(&e.plugin("bridge"), &conf);
    if code != 0 {
        assert!(v["msg"].as_str().unwrap().contains("802.1Q"), "{v}");
        assert!(link(None, "rcnibrvlan").is_none() && e.lease_files("br-vlan").is_empty());
    } else {
        // a kernel with VLAN filtering: the port carries VLAN 100 untagged
        e.call("DEL", "cv", &a).ok(&e.plugin("bridge"), &with_prev(&conf, &v));
    }
}

/// What an attachment of bridge `br` in `ns` could have left: veth ports, the container's eth0,
/// leases, nftables rules naming the container.
fn leftovers(e: &Env, net: &str, br: &str, ns: &TestNetns, cid: &str) -> Vec<String> {
    let mut left = Vec::new();
    if link(Some(&ns.name), "eth0").is_some() {
        left.push("the container's eth0".to_string());
    }
    let ports = run_ok("ip", &["-o", "link"]);
    if ports.contains(&format!("master {br}")) {
        left.push(format!("a port on {br}: {ports}"));
    }
    if !e.lease_files(net).is_empty() {
        left.push(format!("leases {:?}", e.lease_files(net)));
    }
    if run_ok("nft", &["list", "ruleset"]).contains(&format!("id={cid} ")) {
        left.push("an nftables object of the container".into());
    }
    left
}

/// A failure or a panic at any kernel request of a bridge ADD (injected with `RCNI_TEST_FAULT`
/// at the 1st, 2nd, … netlink request until the ADD gets through) leaves nothing of that ADD —
/// not the veth, the lease, the spoof-check or masquerade objects, nor the bridge it created —
/// and a DEL afterwards succeeds. The rollback runs while a panic unwinds, too.
#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn a_failure_or_panic_at_any_step_of_add_leaves_nothing() {
    let e = Env::new();
    let conf = e.bridge(
        "br-fault",
        "rcnibrfault",
        json!([[{"subnet": "10.180.1.0/24"}], [{"subnet": "fd18:1::/64"}]]),
        json!({"isGateway": true, "ipMasq": true, "macspoofchk": true}),
    );
    let a = TestNetns::new("rcni-br-fault");
    for kind in ["error", "panic"] {
        let mut n = 1;
        loop {
            let plan = format!("{n}:{kind}");
            let (code, out) = e.call("ADD", "cfault", &a).env("RCNI_TEST_FAULT", &plan).run(&e.plugin("bridge"), &conf);
            if code == 0 {
                break;
            }
            if kind == "panic" {
                assert!(out["msg"].as_str().unwrap_or("").contains("panicked"), "{plan}: {out}");
            }
            let left = leftovers(&e, "br-fault", "rcnibrfault", &a, "cfault");
            assert!(left.is_empty(), "{plan}: the failed ADD ({out}) left {left:?}");
            assert!(link(None, "rcnibrfault").is_none(), "{plan}: the bridge this ADD created is left");
            e.call("DEL", "cfault", &a).ok(&e.plugin("bridge"), &conf);
            n += 1;
            assert!(n < 400, "ADD never got through");
        }
        assert!(n > 10, "{kind}: only {n} requests");
        e.call("DEL", "cfault", &a).ok(&e.plugin("bridge"), &conf);
        run_ok("ip", &["link", "del", "rcnibrfault"]);
    }
}

/// A range whose gateway is of the other family is refused as an invalid config before anything
/// changes; an IPAM result with such a gateway (from a third-party IPAM) fails the ADD with the
/// same code and leaves nothing, including the bridge the ADD made — but never a bridge that was
/// there before.
#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn a_gateway_of_the_other_family_is_refused_and_leaves_nothing() {
    let e = Env::new();
    let conf =
        e.bridge("br-gwfam", "rcnibrgwfam", json!([[{"subnet": "fd18:2::/64", "gateway": "10.180.2.1"}]]), json!({"isGateway": true}));
    let a = TestNetns::new("rcni-br-gwfam");
    let err = e.call("ADD", "cgw", &a).err(&e.plugin("bridge"), &conf);
    assert_eq!(err["code"], 7, "{err}");
    assert!(err["msg"].as_str().unwrap().contains("gateway 10.180.2.1 is not an IPv6 address, as subnet fd18:2::/64 is"), "{err}");
    assert!(link(None, "rcnibrgwfam").is_none(), "no bridge made");
    assert!(leftovers(&e, "br-gwfam", "rcnibrgwfam", &a, "cgw").is_empty());
    e.call("DEL", "cgw", &a).ok(&e.plugin("bridge"), &conf);

    // a third-party IPAM answering with such a gateway
    let ipam = e.inst.dir.path().join("odd-ipam");
    std::fs::write(
        &ipam,
        "#!/bin/sh\ncat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] && echo '{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"fd18:2::5/64\",\"gateway\":\"10.180.2.1\"}]}'\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&ipam, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let odd = json!({"cniVersion": "1.0.0", "name": "br-gwfam", "type": "bridge", "bridge": "rcnibrgwfam", "isGateway": true,
        "macspoofchk": true, "ipam": {"type": "odd-ipam"}})
    .to_string();
    for existing in [false, true] {
        if existing {
            run_ok("ip", &["link", "add", "rcnibrgwfam", "type", "bridge"]);
        }
        let err = e.call("ADD", "cgw", &a).err(&e.plugin("bridge"), &odd);
        assert_eq!(err["code"], 7, "{err}");
        assert!(err["msg"].as_str().unwrap().contains("IPAM gave gateway 10.180.2.1 for address fd18:2::5/64"), "{err}");
        assert!(leftovers(&e, "br-gwfam", "rcnibrgwfam", &a, "cgw").is_empty());
        assert_eq!(link(None, "rcnibrgwfam").is_some(), existing, "the bridge is removed only when this ADD made it");
        e.call("DEL", "cgw", &a).ok(&e.plugin("bridge"), &odd);
    }
    run_ok("ip", &["link", "del", "rcnibrgwfam"]);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn mac_spoof_check_drops_forged_frames() {
    let e = Env::new();
    let conf = e.bridge("br-spoof", "rcnibr6", json!([[{"subnet": "10.240.8.0/24"}]]), json!({"isGateway": true, "macspoofchk": true}));
    let a = TestNetns::new("rcni-sp-a");
    let ra = e.call("ADD", "sa", &a).ok(&e.plugin("bridge"), &conf);
    assert!(a.ping("10.240.8.1"));
    let rules = run_ok("nft", &["list", "table", "bridge", "rcni"]);
    assert!(
        rules.contains(&format!(
            "iifname \"{}\" ether saddr != {} drop comment \"rcni:",
            ra["interfaces"][1]["name"].as_str().unwrap(),
            ra["interfaces"][2]["mac"].as_str().unwrap()
        )),
        "{rules}"
    );
    e.call("CHECK", "sa", &a).ok(&e.plugin("bridge"), &with_prev(&conf, &ra));
    // forge the source MAC: dropped
    run_ok("ip", &["-n", &a.name, "link", "set", "eth0", "address", "02:66:66:66:66:66"]);
    run_ok("ip", &["-n", &a.name, "neigh", "flush", "all"]);
    assert!(!a.ping("10.240.8.1"), "spoofed frames must be dropped");
    e.call("DEL", "sa", &a).ok(&e.plugin("bridge"), &with_prev(&conf, &ra));
    // (other tests' rules may be in the table meanwhile)
    assert!(!run_ok("nft", &["list", "table", "bridge", "rcni"]).contains("id=sa "), "rule removed");
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn ptp_routes_traffic_and_cleanup() {
    let e = Env::new();
    let conf = json!({"cniVersion": "1.0.0", "name": "ptp-net", "type": "ptp", "ipMasq": true, "mtu": 1400,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.241.0.0/24"}], [{"subnet": "fd41::/64"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": e.data.path()}})
    .to_string();
    let a = TestNetns::new("rcni-ptp-a");
    let b = TestNetns::new("rcni-ptp-b");
    let ra = e.call("ADD", "pa", &a).ok(&e.plugin("ptp"), &conf);
    e.call("ADD", "pb", &b).ok(&e.plugin("ptp"), &conf);
    assert_eq!(ra["interfaces"].as_array().unwrap().len(), 2);
    assert_eq!(ra["ips"][0]["interface"], 1);
    let routes = run_ok("ip", &["-n", &a.name, "route"]);
    assert!(routes.contains("10.241.0.1 dev eth0 scope link src 10.241.0.2"), "{routes}");
    assert!(routes.contains("10.241.0.0/24 via 10.241.0.1 dev eth0 src 10.241.0.2"), "{routes}");
    assert!(run_ok("ip", &["-n", &a.name, "link", "show", "eth0"]).contains("mtu 1400"));
    let host = run_ok("ip", &["route"]);
    assert!(host.contains(&format!("10.241.0.2 dev {} scope link", ra["interfaces"][0]["name"].as_str().unwrap())), "{host}");
    assert!(a.ping("10.241.0.3") && b.ping("10.241.0.2"));
    assert!(a.ping("fd41::3"), "IPv6 usable at once");
    e.call("CHECK", "pa", &a).ok(&e.plugin("ptp"), &with_prev(&conf, &ra));
    e.call("DEL", "pa", &a).ok(&e.plugin("ptp"), &with_prev(&conf, &ra));
    e.call("DEL", "pb", &b).ok(&e.plugin("ptp"), &conf);
    assert!(!run_ok("ip", &["route"]).contains("10.241.0."));
    assert!(e.lease_files("ptp-net").is_empty());
    assert!(!masq_elements().contains("net=ptp-net id="));
}

/// A plugin directory mixing ours and Debian's.
fn mixed_dir(e: &Env, ours: &[&str], theirs: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for p in ours {
        std::os::unix::fs::symlink(e.plugin(p), d.path().join(p)).unwrap();
    }
    for p in theirs {
        std::os::unix::fs::symlink(Path::new(DEBIAN).join(p), d.path().join(p)).unwrap();
    }
    d
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn mixed_chains_with_debian_plugins() {
    let e = Env::new();
    for (name, ours, theirs, br) in
        [("mix-ours-br", ["bridge"], ["host-local"], "rcnimix1"), ("mix-their-br", ["host-local"], ["bridge"], "rcnimix2")]
    {
        let dir = mixed_dir(&e, &ours, &theirs);
        let conf = e.bridge(
            name,
            br,
            json!([[{"subnet": if br == "rcnimix1" { "10.242.1.0/24" } else { "10.242.2.0/24" }}]]),
            json!({"isGateway": true}),
        );
        let a = TestNetns::new(&format!("rcni-{name}-a"));
        let b = TestNetns::new(&format!("rcni-{name}-b"));
        let call = |cmd: &'static str, cid: &str, ns: &TestNetns| {
            let mut c = Call::new(cmd, cid, "eth0").netns(&ns.path());
            c.path = dir.path().to_string_lossy().into_owned();
            c
        };
        let bridge = dir.path().join("bridge");
        let ra = call("ADD", "ma", &a).ok(&bridge, &conf);
        let rb = call("ADD", "mb", &b).ok(&bridge, &conf);
        let ipb = rcni_tests::ip_of(&rb, false);
        assert!(a.ping(&ipb), "{name}: containers reach each other");
        assert_eq!(e.lease_files(name).len(), 2, "{name}: leases in the shared format");
        call("CHECK", "ma", &a).ok(&bridge, &with_prev(&conf, &ra));
        call("DEL", "ma", &a).ok(&bridge, &with_prev(&conf, &ra));
        call("DEL", "mb", &b).ok(&bridge, &with_prev(&conf, &rb));
        assert!(e.lease_files(name).is_empty(), "{name}: leases released");
    }
}

/// A config naming bridge as its own IPAM delegates to itself: its ADD fails at the first nested
/// bridge (eth0 exists by then) and leaves nothing, but its DEL has no step that fails and
/// nested without end (a stack overflow in-process, a fork bomb exec'd). Delegations stop 8 deep;
/// the DEL succeeds.
#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn a_plugin_that_is_its_own_ipam_does_not_recurse() {
    let e = Env::new();
    let conf =
        json!({"cniVersion": "1.0.0", "name": "br-self", "type": "bridge", "bridge": "rcnibrself", "ipam": {"type": "bridge"}}).to_string();
    let a = TestNetns::new("rcni-br-self");
    e.call("ADD", "cself", &a).err(&e.plugin("bridge"), &conf);
    assert!(link(Some(&a.name), "eth0").is_none(), "no veth left");
    assert!(link(None, "rcnibrself").is_none(), "no bridge left");
    e.call("DEL", "cself", &a).ok(&e.plugin("bridge"), &conf);
}

//! tuning against the kernel (netsandbox only): every source and its precedence, sysctls set and
//! restored, the backup file, rejected input changing nothing, a failed ADD undoing itself, DEL
//! without state, and interop with Debian's reference plugin (results, link state, and each
//! DEL restoring from the other's backup file).

use rcni_tests::{require_netsandbox, run, run_ok, Call, Installed, TestNetns};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

const GO_TUNING: &str = "/usr/lib/cni/tuning";
const ALLOWLIST: &str = "/etc/cni/tuning/allowlist.conf";

/// The allow-list is one file for the whole sandbox: tests that call ADD take turns.
static SERIAL: Mutex<()> = Mutex::new(());

struct Env {
    inst: Installed,
    data: tempfile::TempDir,
    _serial: MutexGuard<'static, ()>,
}

/// A test namespace holding `eth0`, one end of a veth pair whose other end (`host`) stays in the
/// sandbox's namespace; the pair goes with the namespace.
struct Pod {
    ns: TestNetns,
    mac: String,
}

impl Pod {
    fn new(name: &str, host: &str) -> Self {
        let ns = TestNetns::new(name);
        let _ = run("ip", &["link", "del", host]);
        run_ok("ip", &["link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", name]);
        run_ok("ip", &["-n", name, "link", "set", "eth0", "up"]);
        let mac = link(&ns.name)["address"].as_str().unwrap().to_string();
        Pod { ns, mac }
    }

    fn prev(&self) -> Value {
        json!({"cniVersion": "1.0.0",
            "interfaces": [{"name": "eth0", "mac": self.mac, "sandbox": self.ns.path()}],
            "ips": [{"address": "10.99.0.2/24", "gateway": "10.99.0.1", "interface": 0}]})
    }

    fn sysctl(&self, key: &str) -> String {
        let out = self.ns.exec(&["cat", &format!("/proc/sys/{}", key.replace('.', "/"))]);
        assert!(out.status.success(), "reading {key}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim_end().to_string()
    }

    fn set_sysctl(&self, key: &str, value: &str) {
        run_ok("ip", &["netns", "exec", &self.ns.name, "sh", "-c", &format!("echo {value} > /proc/sys/{}", key.replace('.', "/"))]);
    }

    fn link(&self) -> Value {
        link(&self.ns.name)
    }
}

/// `ip -j -d link show eth0` inside namespace `ns`.
fn link(ns: &str) -> Value {
    rcni_tests::link(Some(ns), "eth0").expect("eth0 exists")
}

fn has_flag(l: &Value, flag: &str) -> bool {
    l["flags"].as_array().unwrap().iter().any(|f| f == flag)
}

/// The link attributes tuning changes.
fn state(l: &Value) -> Value {
    json!({"address": l["address"], "mtu": l["mtu"], "txqlen": l["txqlen"],
        "promisc": has_flag(l, "PROMISC"), "allmulti": has_flag(l, "ALLMULTI")})
}

impl Env {
    fn new() -> Self {
        require_netsandbox();
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let _ = std::fs::remove_file(ALLOWLIST);
        Env { inst: Installed::new(), data: tempfile::tempdir().unwrap(), _serial: serial }
    }

    fn ours(&self) -> PathBuf {
        self.inst.path("tuning")
    }

    fn dir(&self) -> PathBuf {
        self.data.path().join("tuning")
    }

    /// A tuning config for `pod` with `extra` keys merged in.
    fn conf(&self, pod: &Pod, extra: Value) -> String {
        let mut c = json!({"cniVersion": "1.0.0", "name": "tune", "type": "tuning", "dataDir": self.dir(), "prevResult": pod.prev()});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c.to_string()
    }

    fn call(&self, cmd: &'static str, cid: &str, pod: &Pod) -> Call {
        Call::new(cmd, cid, "eth0").netns(&pod.ns.path())
    }

    /// The backup's originals (rcni's owner keys, checked when present, left out).
    fn backup(&self, cid: &str) -> Option<Value> {
        let text = std::fs::read_to_string(self.dir().join(format!("{cid}_eth0.json"))).ok()?;
        let mut v: Value = serde_json::from_str(&text).unwrap();
        let o = v.as_object_mut().unwrap();
        if let Some(id) = o.remove("containerID") {
            assert_eq!((id, o.remove("ifname").unwrap()), (json!(cid), json!("eth0")));
            assert!(o.remove("network").is_some_and(|n| n.is_string()));
        }
        Some(v)
    }
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn config_keys_set_checked_backed_up_and_restored() {
    let e = Env::new();
    let pod = Pod::new("rcni-tun-a", "tun-a");
    let before = state(&pod.link());
    assert_eq!(before["promisc"], false);
    let conf = e.conf(&pod, json!({"mac": "c2:11:22:33:44:55", "mtu": 1400, "promisc": true, "allmulti": true, "txQLen": 42}));
    let r = e.call("ADD", "cfg", &pod).ok(&e.ours(), &conf);
    // prevResult back, with the interface's MAC updated
    let mut want = pod.prev();
    want["interfaces"][0]["mac"] = json!("c2:11:22:33:44:55");
    assert_eq!(r, want);
    let l = pod.link();
    assert_eq!(state(&l), json!({"address": "c2:11:22:33:44:55", "mtu": 1400, "txqlen": 42, "promisc": true, "allmulti": true}));
    assert_eq!(l["promiscuity"], 1);
    // the backup: Go's keys, the originals
    assert_eq!(e.backup("cfg").unwrap(), json!({"mac": pod.mac, "mtu": 1500, "promisc": false, "allmulti": false, "txQLen": 1000}));
    let raw = std::fs::read_to_string(e.dir().join("cfg_eth0.json")).unwrap();
    assert!(raw.starts_with("{\n \"mac\": "), "Go's one-space MarshalIndent: {raw}");

    // CHECK passes, and fails once a value drifts
    e.call("CHECK", "cfg", &pod).ok(&e.ours(), &conf);
    run_ok("ip", &["-n", &pod.ns.name, "link", "set", "eth0", "mtu", "1300"]);
    let err = e.call("CHECK", "cfg", &pod).err(&e.ours(), &conf);
    assert_eq!(err["msg"], "Error: Tuning configured MTU of eth0 is 1400, current value is 1300");

    // DEL puts everything back and removes the file; again is fine
    e.call("DEL", "cfg", &pod).ok(&e.ours(), &conf);
    assert_eq!(state(&pod.link()), before);
    assert_eq!(pod.link()["promiscuity"], 0);
    assert!(e.backup("cfg").is_none());
    e.call("DEL", "cfg", &pod).ok(&e.ours(), &conf);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn sources_follow_gos_precedence() {
    let e = Env::new();
    let pod = Pod::new("rcni-tun-b", "tun-b");
    let mac_of = |extra: Value, cni_args: &str| -> String {
        let conf = e.conf(&pod, extra);
        let r = e.call("ADD", "prec", &pod).args(cni_args).ok(&e.ours(), &conf);
        let got = pod.link()["address"].as_str().unwrap().to_string();
        assert_eq!(r["interfaces"][0]["mac"], got.as_str());
        e.call("DEL", "prec", &pod).ok(&e.ours(), &conf);
        assert_eq!(pod.link()["address"], pod.mac.as_str(), "DEL restores the MAC");
        got
    };
    let (m1, m2, m3, m4) = ("02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03", "02:00:00:00:00:04");
    let rc = json!({"mac": m3});
    let ac = json!({"cni": {"mac": m4}});
    // each source alone
    assert_eq!(mac_of(json!({"mac": m1}), ""), m1);
    assert_eq!(mac_of(json!({}), &format!("IgnoreUnknown=1;MAC={m2}")), m2);
    assert_eq!(mac_of(json!({"runtimeConfig": rc}), ""), m3);
    assert_eq!(mac_of(json!({"args": ac}), ""), m4);
    // config < CNI_ARGS < runtimeConfig < args.cni
    assert_eq!(mac_of(json!({"mac": m1}), &format!("MAC={m2}")), m2);
    assert_eq!(mac_of(json!({"mac": m1, "runtimeConfig": rc}), &format!("MAC={m2}")), m3);
    assert_eq!(mac_of(json!({"mac": m1, "runtimeConfig": rc, "args": ac}), &format!("MAC={m2}")), m4);

    // args.cni overrides the other keys too, and merges sysctls key by key
    let conf = e.conf(
        &pod,
        json!({"mtu": 1400, "promisc": true, "txQLen": 5, "sysctl": {"net.core.somaxconn": "111", "net.ipv4.conf.IFNAME.arp_filter": "1"},
            "args": {"cni": {"mtu": 1280, "promisc": false, "allmulti": true, "txQLen": 7, "sysctl": {"net.core.somaxconn": "222"}}}}),
    );
    e.call("ADD", "args", &pod).ok(&e.ours(), &conf);
    let l = pod.link();
    assert_eq!(state(&l), json!({"address": pod.mac, "mtu": 1280, "txqlen": 7, "promisc": false, "allmulti": true}));
    assert_eq!((pod.sysctl("net.core.somaxconn"), pod.sysctl("net.ipv4.conf.eth0.arp_filter")), ("222".into(), "1".into()));
    e.call("CHECK", "args", &pod).ok(&e.ours(), &conf);
    e.call("DEL", "args", &pod).ok(&e.ours(), &conf);
    assert_eq!(state(&pod.link()), json!({"address": pod.mac, "mtu": 1500, "txqlen": 1000, "promisc": false, "allmulti": false}));
    assert_eq!((pod.sysctl("net.core.somaxconn"), pod.sysctl("net.ipv4.conf.eth0.arp_filter")), ("4096".into(), "0".into()));
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn sysctls_applied_backed_up_and_restored() {
    let e = Env::new();
    let pod = Pod::new("rcni-tun-c", "tun-c");
    let orig_somaxconn = pod.sysctl("net.core.somaxconn");
    let conf = e.conf(&pod, json!({"sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1", "net.core.somaxconn": "1234", "net/ipv4/tcp_rmem": "4096 65536 1048576"}}));
    let orig_rmem = pod.sysctl("net.ipv4.tcp_rmem");
    let r = e.call("ADD", "sys", &pod).ok(&e.ours(), &conf);
    assert_eq!(r, pod.prev());
    assert_eq!(pod.sysctl("net.ipv4.conf.eth0.arp_filter"), "1");
    assert_eq!(pod.sysctl("net.core.somaxconn"), "1234");
    assert_eq!(pod.sysctl("net.ipv4.tcp_rmem"), "4096\t65536\t1048576");
    // the host's own values are untouched
    assert_eq!(std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap().trim(), orig_somaxconn);
    // only sysctls changed: the backup holds rcni's "sysctl" key, by file, in the config's
    // order (json! sorts the keys)
    let raw = std::fs::read_to_string(e.dir().join("sys_eth0.json")).unwrap();
    assert_eq!(
        raw,
        format!(
            "{{\n \"sysctl\": {{\n  \"net/core/somaxconn\": \"{orig_somaxconn}\",\n  \"net/ipv4/conf/eth0/arp_filter\": \"0\",\n  \"net/ipv4/tcp_rmem\": \"{}\"\n }},\n \"network\": \"tune\",\n \"containerID\": \"sys\",\n \"ifname\": \"eth0\"\n}}",
            orig_rmem.replace('\t', "\\t")
        )
    );
    // CHECK compares the values (fields, so the kernel's tabs match the config's spaces)
    e.call("CHECK", "sys", &pod).ok(&e.ours(), &conf);
    pod.set_sysctl("net.core.somaxconn", "99");
    let err = e.call("CHECK", "sys", &pod).err(&e.ours(), &conf);
    assert_eq!(err["msg"], "Error: Tuning configured value of /proc/sys/net/core/somaxconn is 1234, current value is 99");
    // DEL restores the originals (the reference never does) and removes the file
    e.call("DEL", "sys", &pod).ok(&e.ours(), &conf);
    assert_eq!(pod.sysctl("net.ipv4.conf.eth0.arp_filter"), "0");
    assert_eq!(pod.sysctl("net.core.somaxconn"), orig_somaxconn);
    assert_eq!(pod.sysctl("net.ipv4.tcp_rmem"), orig_rmem);
    assert!(e.backup("sys").is_none());

    // a second ADD before DEL keeps the first ADD's originals
    e.call("ADD", "twice", &pod).ok(&e.ours(), &e.conf(&pod, json!({"mtu": 1400, "sysctl": {"net.core.somaxconn": "1"}})));
    e.call("ADD", "twice", &pod).ok(&e.ours(), &e.conf(&pod, json!({"mtu": 1300, "sysctl": {"net.core.somaxconn": "2"}})));
    assert_eq!(e.backup("twice").unwrap(), json!({"mtu": 1500, "sysctl": {"net/core/somaxconn": orig_somaxconn}}));
    e.call("DEL", "twice", &pod).ok(&e.ours(), &e.conf(&pod, json!({})));
    assert_eq!((pod.link()["mtu"].clone(), pod.sysctl("net.core.somaxconn")), (json!(1500), orig_somaxconn));
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn bad_input_is_rejected_and_changes_nothing() {
    let e = Env::new();
    let pod = Pod::new("rcni-tun-d", "tun-d");
    let before = (state(&pod.link()), pod.sysctl("net.core.somaxconn"), pod.sysctl("net.ipv4.ip_forward"));
    let valid = json!({"mtu": 1400, "mac": "02:00:00:00:00:aa"});
    let with = |sysctl: Value| {
        let mut v = valid.clone();
        v["sysctl"] = sysctl;
        v
    };
    let expect = |conf: String, cni_args: &str, code: i64, msg: &str| {
        let err = e.call("ADD", "bad", &pod).args(cni_args).err(&e.ours(), &conf);
        assert_eq!(err["code"], code, "{err}");
        assert!(err["msg"].as_str().unwrap().contains(msg), "{err}");
        assert_eq!((state(&pod.link()), pod.sysctl("net.core.somaxconn"), pod.sysctl("net.ipv4.ip_forward")), before, "{msg}");
        assert!(!e.dir().exists(), "no backup, not even the directory: {msg}");
    };
    let ok_sysctl = json!({"net.core.somaxconn": "77"});
    // outside /proc/sys/net, also through IFNAME
    expect(
        e.conf(&pod, with(json!({"net.core.somaxconn": "77", "kernel.hostname": "x"}))),
        "",
        7,
        "invalid net sysctl key: \"kernel/hostname\"",
    );
    expect(e.conf(&pod, with(json!({"IFNAME.x": "1"}))), "", 7, "invalid net sysctl key");
    // the same key twice in the object (serde_json::Value would keep only one: write it by hand)
    let mut dup = e.conf(&pod, with(ok_sysctl.clone()));
    dup = dup.replace("\"net.core.somaxconn\":\"77\"", "\"net.core.somaxconn\":\"77\",\"net.core.somaxconn\":\"78\"");
    assert!(dup.contains("\"78\""));
    expect(dup, "", 7, "duplicated sysctl keys are not allowed");
    // two spellings of one file with different values
    expect(
        e.conf(&pod, with(json!({"net.core.somaxconn": "77", "net/core/somaxconn": "78"}))),
        "",
        7,
        "both set /proc/sys/net/core/somaxconn",
    );
    // a sysctl that does not exist fails before anything is written
    expect(e.conf(&pod, with(json!({"net.core.somaxconn": "77", "net.core.no_such_thing": "1"}))), "", 999, "no_such_thing");
    // bad MAC / MTU, bad CNI_ARGS
    expect(e.conf(&pod, json!({"mac": "02:00:00:00:00", "sysctl": ok_sysctl})), "", 7, "invalid MAC address");
    expect(e.conf(&pod, json!({"mtu": -5, "sysctl": ok_sysctl})), "", 7, "invalid MTU -5");
    expect(e.conf(&pod, with(ok_sysctl.clone())), "MAC=zz", 4, "invalid MAC address");
    expect(e.conf(&pod, with(ok_sysctl.clone())), "FOO=bar", 4, "unknown args");
    // no prevResult
    let mut no_prev: Value = serde_json::from_str(&e.conf(&pod, with(ok_sysctl.clone()))).unwrap();
    no_prev.as_object_mut().unwrap().remove("prevResult");
    expect(no_prev.to_string(), "", 7, "Required prevResult missing");

    // the allow-list: unanchored regexes, one a line
    std::fs::write(ALLOWLIST, "net\\.core\\.somax\n\n  ^net\\.ipv4\\.conf\\.IFNAME\\.arp_  \n").unwrap();
    expect(
        e.conf(&pod, with(json!({"net.core.somaxconn": "77", "net.ipv4.ip_forward": "0"}))),
        "",
        7,
        "Sysctl net.ipv4.ip_forward is not allowed. Only the following sysctls are allowed: [net\\.core\\.somax ^net\\.ipv4\\.conf\\.IFNAME\\.arp_]",
    );
    let allowed = e.conf(&pod, json!({"sysctl": {"net.core.somaxconn": "77", "net.ipv4.conf.IFNAME.arp_ignore": "1"}}));
    e.call("ADD", "allowed", &pod).ok(&e.ours(), &allowed);
    assert_eq!((pod.sysctl("net.core.somaxconn"), pod.sysctl("net.ipv4.conf.eth0.arp_ignore")), ("77".into(), "1".into()));
    e.call("DEL", "allowed", &pod).ok(&e.ours(), &allowed);
    assert_eq!(pod.sysctl("net.core.somaxconn"), before.1);
    std::fs::remove_file(ALLOWLIST).unwrap();
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn failed_add_undoes_its_own_work() {
    let e = Env::new();
    let pod = Pod::new("rcni-tun-e", "tun-e");
    let before = (state(&pod.link()), pod.sysctl("net.core.somaxconn"));
    // veth's maximum MTU is 65535: the kernel refuses after the sysctl, MAC and promisc are set
    let conf = e.conf(&pod, json!({"sysctl": {"net.core.somaxconn": "55"}, "mac": "02:00:00:00:00:bb", "promisc": true, "mtu": 70000}));
    let err = e.call("ADD", "half", &pod).err(&e.ours(), &conf);
    assert_eq!(err["code"], 999, "{err}");
    assert_eq!((state(&pod.link()), pod.sysctl("net.core.somaxconn")), before);
    assert!(e.backup("half").is_none());

    // with a backup from an earlier ADD, the failed one leaves that file as it was
    e.call("ADD", "half", &pod).ok(&e.ours(), &e.conf(&pod, json!({"mtu": 1400})));
    let earlier = std::fs::read(e.dir().join("half_eth0.json")).unwrap();
    e.call("ADD", "half", &pod).err(&e.ours(), &conf);
    assert_eq!(std::fs::read(e.dir().join("half_eth0.json")).unwrap(), earlier);
    assert_eq!(pod.link()["mtu"], 1400);
    e.call("DEL", "half", &pod).ok(&e.ours(), &conf);
    assert_eq!(state(&pod.link()), before.0);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn del_without_state_succeeds() {
    let e = Env::new();
    let conf_for = |pod: &Pod| e.conf(pod, json!({"mtu": 1400, "sysctl": {"net.core.somaxconn": "33"}}));
    // never added: no backup
    let pod = Pod::new("rcni-tun-f", "tun-f");
    e.call("DEL", "never", &pod).ok(&e.ours(), &conf_for(&pod));
    // no netns given at all
    e.call("ADD", "nons", &pod).ok(&e.ours(), &conf_for(&pod));
    e.call("DEL", "nons", &pod).netns("").ok(&e.ours(), &conf_for(&pod));
    assert!(e.backup("nons").is_none());
    // a corrupt backup is removed
    std::fs::write(e.dir().join("bad_eth0.json"), "{\"mtu\": ").unwrap();
    e.call("DEL", "bad", &pod).ok(&e.ours(), &conf_for(&pod));
    assert!(e.backup("bad").is_none());
    // the link is gone
    e.call("ADD", "nolink", &pod).ok(&e.ours(), &conf_for(&pod));
    run_ok("ip", &["-n", &pod.ns.name, "link", "del", "eth0"]);
    e.call("DEL", "nolink", &pod).ok(&e.ours(), &conf_for(&pod));
    assert!(e.backup("nolink").is_none());
    // the netns is gone
    let pod = Pod::new("rcni-tun-g", "tun-g");
    let conf = conf_for(&pod);
    e.call("ADD", "gone", &pod).ok(&e.ours(), &conf);
    let path = pod.ns.path();
    drop(pod);
    Call::new("DEL", "gone", "eth0").netns(&path).ok(&e.ours(), &conf);
    assert!(e.backup("gone").is_none());
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn interop_with_the_reference_plugin() {
    let e = Env::new();
    let go = Path::new(GO_TUNING);
    assert!(go.exists(), "{GO_TUNING} missing (scripts/deps installs containernetworking-plugins)");
    let a = Pod::new("rcni-tun-go", "tun-go");
    let b = Pod::new("rcni-tun-rs", "tun-rs");
    let (before_a, before_b) = (state(&a.link()), state(&b.link()));
    // the keys Debian's 1.1.1 knows (it predates txQLen)
    let keys = json!({"mac": "02:00:00:00:00:cc", "mtu": 1450, "promisc": true, "allmulti": true,
        "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1", "net.core.somaxconn": "512"}});
    let (conf_a, conf_b) = (e.conf(&a, keys.clone()), e.conf(&b, keys));
    // Go on pod a, rcni on pod b, same input
    let ra = e.call("ADD", "ga", &a).ok(go, &conf_a);
    let rb = e.call("ADD", "rb", &b).ok(&e.ours(), &conf_b);
    // Debian's 1.1.1 prints an empty "dns": {}, rcni (as current Go) omits it
    let sandbox_free = |mut v: Value| {
        v["interfaces"][0]["sandbox"] = json!("-");
        if v["dns"] == json!({}) {
            v.as_object_mut().unwrap().remove("dns");
        }
        v
    };
    assert_eq!(sandbox_free(ra), sandbox_free(rb), "same result");
    let (la, lb) = (state(&a.link()), state(&b.link()));
    assert_eq!(la, lb, "same link state");
    assert_eq!(la, json!({"address": "02:00:00:00:00:cc", "mtu": 1450, "txqlen": 1000, "promisc": true, "allmulti": true}));
    for k in ["net.ipv4.conf.eth0.arp_filter", "net.core.somaxconn"] {
        let want = if k.ends_with("somaxconn") { "512" } else { "1" };
        assert_eq!((a.sysctl(k).as_str(), b.sysctl(k).as_str()), (want, want), "{k}");
    }
    // the same backup file but for rcni's extra "sysctl" key (and each pod's own MAC)
    let (fa, mut fb) = (e.backup("ga").unwrap(), e.backup("rb").unwrap());
    assert_eq!(fa, json!({"mac": before_a["address"], "mtu": 1500, "promisc": false, "allmulti": false}));
    assert_eq!(
        fb.as_object_mut().unwrap().remove("sysctl").unwrap(),
        json!({"net/ipv4/conf/eth0/arp_filter": "0", "net/core/somaxconn": "4096"})
    );
    assert_eq!(fb, json!({"mac": before_b["address"], "mtu": 1500, "promisc": false, "allmulti": false}));
    // CHECK of each passes on the other's work (Go 1.1.1's CHECK cannot resolve IFNAME: no sysctls)
    let no_sysctl = |pod: &Pod| e.conf(pod, json!({"mac": "02:00:00:00:00:cc", "mtu": 1450, "promisc": true, "allmulti": true}));
    e.call("CHECK", "ga", &a).ok(&e.ours(), &conf_a);
    e.call("CHECK", "rb", &b).ok(go, &no_sysctl(&b));

    // each DEL restores from the other's file
    e.call("DEL", "ga", &a).ok(&e.ours(), &conf_a);
    e.call("DEL", "rb", &b).ok(go, &conf_b);
    assert_eq!(state(&a.link()), before_a);
    assert_eq!(state(&b.link()), before_b);
    assert!(e.backup("ga").is_none() && e.backup("rb").is_none());
    // Go's file has no sysctls, and Go's DEL ignores ours: both pods keep them
    assert_eq!((a.sysctl("net.core.somaxconn"), b.sysctl("net.core.somaxconn")), ("512".into(), "512".into()));
}

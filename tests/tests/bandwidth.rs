//! bandwidth against the kernel (netsandbox only): the qdiscs, filter and IFB compared field by
//! field with what Debian's reference plugin makes for the same config, CHECK, DEL (twice, and
//! after the netns is gone), invalid input and failed ADDs leaving nothing behind, and real TCP
//! transfers shaped to the configured rates in both directions.

use netkit::owner::Owner;
use netkit::NetNs;
use rcni_tests::{link, require_netsandbox, run, run_ok, Call, Installed, TestNetns};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

const DEBIAN: &str = "/usr/lib/cni/bandwidth";

/// A "container": a named netns whose `eth0` is the peer of host veth `host`.
struct Container {
    ns: TestNetns,
    host: String,
    prev: Value,
}

impl Container {
    /// `addrs`: host and container address of a /30 between them, if traffic is needed.
    fn new(ns_name: &str, host: &str, addrs: Option<(&str, &str)>) -> Self {
        let ns = TestNetns::new(ns_name);
        let _ = run("ip", &["link", "del", host]);
        run_ok("ip", &["link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns_name]);
        if let Some((h, c)) = addrs {
            run_ok("ip", &["addr", "add", &format!("{h}/30"), "dev", host]);
            run_ok("ip", &["-n", ns_name, "addr", "add", &format!("{c}/30"), "dev", "eth0"]);
        }
        run_ok("ip", &["link", "set", host, "up"]);
        run_ok("ip", &["-n", ns_name, "link", "set", "eth0", "up"]);
        let prev = json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": host, "mac": link(None, host).unwrap()["address"]},
                {"name": "eth0", "mac": link(Some(ns_name), "eth0").unwrap()["address"], "sandbox": ns.path()},
            ],
            "ips": [{"address": format!("{}/30", addrs.map(|a| a.1).unwrap_or("192.0.2.2")), "interface": 1}],
        });
        Container { ns, host: host.into(), prev }
    }

    fn call(&self, cmd: &'static str, cid: &str, inst: &Installed) -> Call {
        let mut c = Call::new(cmd, cid, "eth0").netns(&self.ns.path());
        c.path = inst.dir.path().to_string_lossy().into_owned();
        c
    }
}

/// `tc -j -d qdisc show dev <dev>`, without the device names.
fn qdiscs(dev: &str) -> Vec<Value> {
    let out: Value = serde_json::from_str(&run_ok("tc", &["-j", "-d", "qdisc", "show", "dev", dev])).unwrap();
    let mut v = out.as_array().unwrap().clone();
    for q in &mut v {
        q.as_object_mut().unwrap().remove("dev");
    }
    v
}

/// The qdiscs a fresh veth has: only the default root.
fn untouched(dev: &str) -> bool {
    let q = qdiscs(dev);
    q.len() == 1 && q[0]["kind"] == "noqueue"
}

fn filters(dev: &str) -> Vec<Value> {
    let out: Value = serde_json::from_str(&run_ok("tc", &["-j", "filter", "show", "dev", dev, "ingress"])).unwrap();
    out.as_array().unwrap().clone()
}

fn conf(name: &str, limits: Value, prev: Option<&Value>) -> String {
    let mut c = json!({"cniVersion": "1.0.0", "name": name, "type": "bandwidth"});
    for (k, v) in limits.as_object().unwrap() {
        c[k] = v.clone();
    }
    if let Some(p) = prev {
        c["prevResult"] = p.clone();
    }
    c.to_string()
}

fn ifb(net: &str, cid: &str) -> String {
    netkit::owner::hashed_name("bwp", &format!("{net}{cid}"), 15)
}

fn without(v: &Value, keys: &[&str]) -> Value {
    let mut v = v.clone();
    for k in keys {
        v.as_object_mut().unwrap().remove(*k);
    }
    v
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn add_matches_debian_field_by_field() {
    require_netsandbox();
    let inst = Installed::new();
    let limits = json!({"ingressRate": 8_000_000, "ingressBurst": 800_000, "egressRate": 16_000_000, "egressBurst": 1_600_000});
    let ours = Container::new("rcni-bw-ours", "bwh-ours", None);
    let theirs = Container::new("rcni-bw-deb", "bwh-deb", None);
    let r_ours = ours.call("ADD", "ctr1", &inst).ok(&inst.path("bandwidth"), &conf("mynet", limits.clone(), Some(&ours.prev)));
    let r_deb = theirs.call("ADD", "ctr1-deb", &inst).ok(Path::new(DEBIAN), &conf("mynet", limits.clone(), Some(&theirs.prev)));

    // the IFB: the reference's name, in the result after prevResult's interfaces
    let name = "bwp5145007e2a84";
    let deb_name = ifb("mynet", "ctr1-deb");
    let (l_ours, l_deb) = (link(None, name).expect("our IFB"), link(None, &deb_name).expect("Debian's IFB"));
    let mut want = ours.prev.clone();
    want["interfaces"].as_array_mut().unwrap().push(json!({"name": name, "mac": l_ours["address"]}));
    assert_eq!(r_ours, want);
    assert_eq!(r_deb["interfaces"][2], json!({"name": deb_name, "mac": l_deb["address"]}));
    // same link attributes (kind ifb, MTU of the veth, txqueuelen 0, up …); ours carries its owner
    let volatile = ["ifindex", "ifname", "address", "ifalias"];
    assert_eq!(without(&l_ours, &volatile), without(&l_deb, &volatile));
    assert_eq!(l_ours["linkinfo"]["info_kind"], "ifb");
    assert!(l_ours["flags"].as_array().unwrap().contains(&json!("UP")));
    assert_eq!(l_ours.get("txqlen"), l_deb.get("txqlen"));
    assert_eq!(l_ours["ifalias"], Owner::new("mynet", "ctr1", "eth0").comment());

    // qdiscs: tbf 1: and ingress ffff: on the veth, tbf 1: on the IFB — every field equal
    let q = qdiscs(&ours.host);
    assert_eq!(q, qdiscs(&theirs.host));
    assert_eq!(q.len(), 2, "{q:?}");
    assert_eq!(q[0]["kind"], "tbf");
    assert_eq!(q[0]["handle"], "1:");
    assert_eq!(q[0]["options"]["rate"], 1_000_000);
    assert_eq!(q[0]["options"]["burst"], "100000b/1");
    assert_eq!(q[0]["options"]["lat"], 25_000);
    assert_eq!(q[1]["kind"], "ingress");
    assert_eq!(q[1]["handle"], "ffff:");
    let qi = qdiscs(name);
    assert_eq!(qi, qdiscs(&deb_name));
    assert_eq!(qi.len(), 1);
    assert_eq!(
        (qi[0]["kind"].as_str(), &qi[0]["options"]["rate"], qi[0]["options"]["burst"].as_str()),
        (Some("tbf"), &json!(2_000_000), Some("200000b/1"))
    );

    // the filter: u32 match-all, prio 1, all protocols, flowid 1:1, mirred egress redirect (stolen)
    let (f, fd) = (filters(&ours.host), filters(&theirs.host));
    assert_eq!(f.len(), 3);
    assert_eq!(f[..2], fd[..2]);
    assert_eq!(without(&f[2]["options"], &["actions"]), without(&fd[2]["options"], &["actions"]));
    assert_eq!((&f[2]["protocol"], &f[2]["pref"], &f[2]["kind"]), (&json!("all"), &json!(1), &json!("u32")));
    assert_eq!(f[2]["options"]["match"], json!({"value": "0", "mask": "0", "offmask": "", "off": 0}));
    let (a, ad) = (f[2]["options"]["actions"].as_array().unwrap(), fd[2]["options"]["actions"].as_array().unwrap());
    // Debian's library adds a second, unreachable copy of the action (verdict "pass"); we add one
    assert_eq!(a.len(), 1);
    assert_eq!(ad.len(), 2);
    assert_eq!(without(&a[0], &["index", "to_dev"]), without(&ad[0], &["index", "to_dev"]));
    assert_eq!((&a[0]["to_dev"], &ad[0]["to_dev"]), (&json!(name), &json!(deb_name)));
    assert_eq!(a[0]["control_action"]["type"], "stolen");

    // CHECK passes for both; DEL removes only the IFB (the veth's qdiscs go with the veth)
    ours.call("CHECK", "ctr1", &inst).ok(&inst.path("bandwidth"), &conf("mynet", limits.clone(), Some(&ours.prev)));
    theirs.call("CHECK", "ctr1-deb", &inst).ok(Path::new(DEBIAN), &conf("mynet", limits.clone(), Some(&theirs.prev)));
    ours.call("DEL", "ctr1", &inst).ok(&inst.path("bandwidth"), &conf("mynet", limits.clone(), Some(&ours.prev)));
    theirs.call("DEL", "ctr1-deb", &inst).ok(Path::new(DEBIAN), &conf("mynet", limits.clone(), Some(&theirs.prev)));
    assert!(link(None, name).is_none() && link(None, &deb_name).is_none());
    assert_eq!(qdiscs(&ours.host), qdiscs(&theirs.host));
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn check_detects_changed_or_missing_shaping() {
    require_netsandbox();
    let inst = Installed::new();
    let plugin = inst.path("bandwidth");
    let c = Container::new("rcni-bw-chk", "bwh-chk", None);
    let limits = json!({"ingressRate": 4_000_000, "ingressBurst": 400_000, "egressRate": 2_000_000, "egressBurst": 200_000});
    let cfg = conf("chknet", limits.clone(), Some(&c.prev));
    c.call("ADD", "chk1", &inst).ok(&plugin, &cfg);
    c.call("CHECK", "chk1", &inst).ok(&plugin, &cfg);
    // another rate in the config than in the kernel
    let other = conf("chknet", json!({"ingressRate": 4_000_008, "ingressBurst": 400_000}), Some(&c.prev));
    let e = c.call("CHECK", "chk1", &inst).err(&plugin, &other);
    assert_eq!((e["code"].as_u64(), e["msg"].as_str()), (Some(999), Some("Rate doesn't match")));
    let other = conf("chknet", json!({"ingressRate": 4_000_000, "ingressBurst": 400_008}), Some(&c.prev));
    assert_eq!(c.call("CHECK", "chk1", &inst).err(&plugin, &other)["msg"], "Limit doesn't match");
    // the tbf replaced behind our back: same rate and limit, another bucket; then another rate
    let replace = |args: &[&str]| {
        let mut all = vec!["qdisc", "replace", "dev", c.host.as_str(), "root", "handle", "1:", "tbf"];
        all.extend_from_slice(args);
        run_ok("tc", &all);
    };
    replace(&["rate", "4mbit", "burst", "40000", "limit", "62500"]);
    assert_eq!(c.call("CHECK", "chk1", &inst).err(&plugin, &cfg)["msg"], "Buffer doesn't match");
    replace(&["rate", "1mbit", "burst", "50000", "limit", "62500"]);
    assert_eq!(c.call("CHECK", "chk1", &inst).err(&plugin, &cfg)["msg"], "Rate doesn't match");
    // no tbf at all
    run_ok("tc", &["qdisc", "del", "dev", &c.host, "root"]);
    assert_eq!(c.call("CHECK", "chk1", &inst).err(&plugin, &cfg)["msg"], "Failed to find qdisc");
    // the IFB gone
    run_ok("ip", &["link", "del", &ifb("chknet", "chk1")]);
    let e = c
        .call("CHECK", "chk1", &inst)
        .err(&plugin, &conf("chknet", json!({"egressRate": 2_000_000, "egressBurst": 200_000}), Some(&c.prev)));
    assert!(e["msg"].as_str().unwrap().starts_with("get ifb device: "), "{e}");
    // no limits: nothing to check; no prevResult: refused
    c.call("CHECK", "chk1", &inst).ok(&plugin, &conf("chknet", json!({}), Some(&c.prev)));
    let e = c.call("CHECK", "chk1", &inst).err(&plugin, &conf("chknet", limits, None));
    assert_eq!((e["code"].as_u64(), e["msg"].as_str()), (Some(7), Some("must be called as a chained plugin")));
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn del_is_idempotent_and_survives_a_vanished_netns() {
    require_netsandbox();
    let inst = Installed::new();
    let plugin = inst.path("bandwidth");
    let limits = json!({"egressRate": 1_000_000, "egressBurst": 100_000});
    let c = Container::new("rcni-bw-del", "bwh-del", None);
    let name = ifb("delnet", "del1");
    c.call("ADD", "del1", &inst).ok(&plugin, &conf("delnet", limits.clone(), Some(&c.prev)));
    assert!(link(None, &name).is_some());
    c.call("DEL", "del1", &inst).ok(&plugin, &conf("delnet", limits.clone(), Some(&c.prev)));
    assert!(link(None, &name).is_none());
    // again, and without prevResult
    c.call("DEL", "del1", &inst).ok(&plugin, &conf("delnet", limits.clone(), Some(&c.prev)));
    c.call("DEL", "del1", &inst).ok(&plugin, &conf("delnet", limits.clone(), None));

    // the netns (and with it the veth) gone before DEL: the IFB still goes
    drop(c);
    let c = Container::new("rcni-bw-del2", "bwh-del2", None);
    c.call("ADD", "del2", &inst).ok(&plugin, &conf("delnet", limits.clone(), Some(&c.prev)));
    let name2 = ifb("delnet", "del2");
    assert!(link(None, &name2).is_some());
    let path = c.ns.path();
    drop(c);
    assert!(!Path::new(&path).exists());
    let mut del = Call::new("DEL", "del2", "eth0").netns(&path);
    del.path = inst.dir.path().to_string_lossy().into_owned();
    del.ok(&plugin, &conf("delnet", limits.clone(), None));
    assert!(link(None, &name2).is_none());
    del.ok(&plugin, &conf("delnet", limits.clone(), None));
    // no CNI_NETNS at all
    del.netns = String::new();
    del.ok(&plugin, &conf("delnet", limits, None));
    // a link of the IFB's name that is not an IFB is left alone
    let name3 = ifb("delnet", "del3");
    run_ok("ip", &["link", "add", &name3, "type", "veth", "peer", "name", "bwh-del3p"]);
    let mut del = Call::new("DEL", "del3", "eth0");
    del.path = inst.dir.path().to_string_lossy().into_owned();
    del.ok(&plugin, &conf("delnet", json!({}), None));
    assert!(link(None, &name3).is_some());
    run_ok("ip", &["link", "del", &name3]);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn invalid_input_and_failed_adds_leave_nothing() {
    require_netsandbox();
    let inst = Installed::new();
    let plugin = inst.path("bandwidth");
    let c = Container::new("rcni-bw-bad", "bwh-bad", None);
    let name = ifb("badnet", "bad1");
    let nothing_left = || {
        assert!(untouched(&c.host), "{:?}", qdiscs(&c.host));
        assert!(link(None, &name).is_none(), "IFB left behind");
    };
    let both = json!({"ingressRate": 1_000_000, "ingressBurst": 100_000, "egressRate": 1_000_000, "egressBurst": 100_000});
    let cases: Vec<(Value, Option<Value>, u64, &str)> = vec![
        (json!({"ingressRate": 1_000_000}), Some(c.prev.clone()), 7, "if rate is set, burst must also be set"),
        (json!({"egressBurst": 1_000_000}), Some(c.prev.clone()), 7, "if burst is set, rate must also be set"),
        (json!({"egressRate": 1, "egressBurst": 34_359_738_360u64}), Some(c.prev.clone()), 7, "burst cannot be more than 4GB"),
        (json!({"runtimeConfig": {"bandwidth": {"ingressRate": 5}}}), Some(c.prev.clone()), 7, "if rate is set, burst must also be set"),
        (both.clone(), None, 7, "must be called as chained plugin"),
        (both.clone(), Some(json!({"cniVersion": "1.0.0"})), 7, "no interfaces provided"),
        (
            both.clone(),
            Some(json!({"cniVersion": "1.0.0", "interfaces": [c.prev["interfaces"][1].clone()]})),
            999,
            "no veth peer of container interface found in host ns",
        ),
    ];
    for (limits, prev, code, msg) in cases {
        let e = c.call("ADD", "bad1", &inst).err(&plugin, &conf("badnet", limits.clone(), prev.as_ref()));
        assert_eq!((e["code"].as_u64(), e["msg"].as_str()), (Some(code), Some(msg)), "{limits} {prev:?}");
        nothing_left();
    }
    let e = c.call("ADD", "bad1", &inst).err(&plugin, &conf("badnet", json!({"ingressRate": "fast"}), Some(&c.prev)));
    assert_eq!(e["code"], 6, "{e}");
    let e = Call { ifname: "eth9".into(), ..c.call("ADD", "bad1", &inst) }.err(&plugin, &conf("badnet", both.clone(), Some(&c.prev)));
    assert!(e["msg"].as_str().unwrap().starts_with("container interface eth9 has no veth peer: "), "{e}");
    let mut old = serde_json::from_str::<Value>(&conf("badnet", both.clone(), None)).unwrap();
    old["cniVersion"] = json!("0.2.0");
    assert_eq!(c.call("ADD", "bad1", &inst).err(&plugin, &old.to_string())["code"], 1);
    nothing_left();

    // the kernel refuses the IFB's bucket (1 byte at 1 GB/s is no bucket) after the veth's tbf
    // and the IFB were made: both are removed again
    let refused = json!({"ingressRate": 1_000_000, "ingressBurst": 100_000, "egressRate": 8_000_000_000u64, "egressBurst": 8});
    let e = c.call("ADD", "bad1", &inst).err(&plugin, &conf("badnet", refused, Some(&c.prev)));
    assert_eq!(e["code"], 999);
    assert!(e["msg"].as_str().unwrap().starts_with("create ifb qdisc: create qdisc: "), "{e}");
    nothing_left();

    // a stale link already has the IFB's name: ADD fails, undoes its tbf, leaves that link alone
    run_ok("ip", &["link", "add", &name, "type", "ifb"]);
    let e = c.call("ADD", "bad1", &inst).err(&plugin, &conf("badnet", both.clone(), Some(&c.prev)));
    assert!(e["msg"].as_str().unwrap().starts_with("adding link: "), "{e}");
    assert!(untouched(&c.host));
    assert!(link(None, &name).is_some(), "not ours to delete");
    run_ok("ip", &["link", "del", &name]);

    // ADD twice: the second fails on the existing tbf and leaves the first one's work intact
    c.call("ADD", "bad1", &inst).ok(&plugin, &conf("badnet", both.clone(), Some(&c.prev)));
    let before = (qdiscs(&c.host), link(None, &name).unwrap()["ifindex"].clone());
    let e = c.call("ADD", "bad1", &inst).err(&plugin, &conf("badnet", both.clone(), Some(&c.prev)));
    assert!(e["msg"].as_str().unwrap().starts_with("create qdisc: "), "{e}");
    assert_eq!((qdiscs(&c.host), link(None, &name).unwrap()["ifindex"].clone()), before);
    c.call("DEL", "bad1", &inst).ok(&plugin, &conf("badnet", both, Some(&c.prev)));
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn runtime_config_and_no_limits() {
    require_netsandbox();
    let inst = Installed::new();
    let plugin = inst.path("bandwidth");
    let c = Container::new("rcni-bw-rc", "bwh-rc", None);
    // no limits: prevResult back unchanged, nothing touched
    for limits in [json!({}), json!({"runtimeConfig": {"bandwidth": {}}}), json!({"ingressRate": 0, "ingressBurst": 0})] {
        let r = c.call("ADD", "rc1", &inst).ok(&plugin, &conf("rcnet", limits, Some(&c.prev)));
        assert_eq!(r, c.prev);
        assert!(untouched(&c.host));
    }
    // a top-level key, even zero, replaces runtimeConfig's limits
    let rc = json!({"bandwidth": {"ingressRate": 2_000_000, "ingressBurst": 200_000}});
    c.call("ADD", "rc1", &inst).ok(&plugin, &conf("rcnet", json!({"egressRate": 0, "runtimeConfig": rc}), Some(&c.prev)));
    assert!(untouched(&c.host));
    // the capability alone (Go clients' capitalised keys too): only the ingress bucket, no IFB
    let rc = json!({"bandWidth": {"IngressRate": 2_000_000, "IngressBurst": 200_000}});
    let r = c.call("ADD", "rc1", &inst).ok(&plugin, &conf("rcnet", json!({"runtimeConfig": rc}), Some(&c.prev)));
    assert_eq!(r, c.prev, "no IFB, no new interface");
    let q = qdiscs(&c.host);
    assert_eq!(q.len(), 1);
    assert_eq!((&q[0]["kind"], &q[0]["options"]["rate"], &q[0]["options"]["burst"]), (&json!("tbf"), &json!(250_000), &json!("25000b/1")));
    assert!(link(None, &ifb("rcnet", "rc1")).is_none());
    // older spec versions: prevResult in that version comes back in it
    let mut prev040 = c.prev.clone();
    prev040["cniVersion"] = json!("0.4.0");
    prev040["ips"][0]["version"] = json!("4");
    let mut cfg =
        serde_json::from_str::<Value>(&conf("rcnet", json!({"egressRate": 1_000_000, "egressBurst": 100_000}), Some(&prev040))).unwrap();
    cfg["cniVersion"] = json!("0.4.0");
    let r = c.call("ADD", "rc2", &inst).ok(&plugin, &cfg.to_string());
    assert_eq!(r["cniVersion"], "0.4.0");
    assert_eq!(r["interfaces"][2]["name"], ifb("rcnet", "rc2"));
    assert_eq!(r["ips"][0]["version"], "4");
    c.call("DEL", "rc2", &inst).ok(&plugin, &cfg.to_string());
}

/// Sends `bytes` over `tx` to whoever accepts on `rx`; returns the rate the receiver saw, in
/// bits per second, between the arrival of the first and the last tenth of the data (so neither
/// the initial burst nor a retransmission at the tail counts).
fn transfer(rx: TcpListener, tx: TcpStream, bytes: usize) -> f64 {
    let receiver = std::thread::spawn(move || {
        let (mut s, _) = rx.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let (lo, hi) = (bytes / 10, bytes - bytes / 10);
        let (mut total, mut t_lo, mut t_hi) = (0usize, None, None);
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n;
            if total >= lo && t_lo.is_none() {
                t_lo = Some((Instant::now(), total));
            }
            if total >= hi && t_hi.is_none() {
                t_hi = Some((Instant::now(), total));
            }
        }
        assert_eq!(total, bytes);
        let ((t0, b0), (t1, b1)) = (t_lo.unwrap(), t_hi.unwrap());
        (b1 - b0) as f64 * 8.0 / (t1 - t0).as_secs_f64()
    });
    let mut tx = tx;
    tx.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    tx.write_all(&vec![0x5a; bytes]).unwrap();
    tx.shutdown(Shutdown::Write).unwrap();
    receiver.join().unwrap()
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn tcp_transfers_are_shaped_in_both_directions() {
    require_netsandbox();
    let inst = Installed::new();
    let plugin = inst.path("bandwidth");
    let c = Container::new("rcni-bw-tcp", "bwh-tcp", Some(("10.78.0.1", "10.78.0.2")));
    let ns = NetNs::open(c.ns.path()).unwrap();
    let (ingress, egress) = (8_000_000.0, 12_000_000.0);
    let limits = json!({"ingressRate": 8_000_000, "ingressBurst": 800_000, "egressRate": 12_000_000, "egressBurst": 800_000});
    let cfg = conf("tcpnet", limits, Some(&c.prev));
    c.call("ADD", "tcp1", &inst).ok(&plugin, &cfg);

    // to the container (the veth's tbf): 1.5 MB at 1 MB/s
    let rx = ns.run(|| TcpListener::bind("10.78.0.2:5101")).unwrap().unwrap();
    let tx = TcpStream::connect("10.78.0.2:5101").unwrap();
    let down = transfer(rx, tx, 1_500_000);
    // from the container (redirected through the IFB's tbf): 2.25 MB at 1.5 MB/s
    let rx = TcpListener::bind("10.78.0.1:5102").unwrap();
    let tx = ns.run(|| TcpStream::connect("10.78.0.1:5102")).unwrap().unwrap();
    let up = transfer(rx, tx, 2_250_000);
    eprintln!("shaped: to the container {:.2} Mbit/s (limit 8), from it {:.2} Mbit/s (limit 12)", down / 1e6, up / 1e6);
    assert!((down / ingress - 1.0).abs() <= 0.25, "ingress {down} bit/s, limit {ingress}");
    assert!((up / egress - 1.0).abs() <= 0.25, "egress {up} bit/s, limit {egress}");
    let stats: Value = serde_json::from_str(&run_ok("tc", &["-j", "-s", "qdisc", "show", "dev", &ifb("tcpnet", "tcp1")])).unwrap();
    assert!(stats[0]["bytes"].as_u64().unwrap() >= 2_250_000, "the egress traffic went through the IFB: {stats}");

    // without the plugin the same link is far faster: the limits came from the plugin
    c.call("DEL", "tcp1", &inst).ok(&plugin, &cfg);
    run_ok("tc", &["qdisc", "del", "dev", &c.host, "root"]);
    run_ok("tc", &["qdisc", "del", "dev", &c.host, "ingress"]);
    let rx = ns.run(|| TcpListener::bind("10.78.0.2:5103")).unwrap().unwrap();
    let tx = TcpStream::connect("10.78.0.2:5103").unwrap();
    let free = transfer(rx, tx, 4_000_000);
    assert!(free > 4.0 * ingress, "unshaped {free} bit/s");
}

/// Two interfaces of one container on one network both get egress shaping: the second finds the
/// reference's IFB name taken by the first and uses its own. DEL of either removes only its own
/// IFB, never the other's (which would black-hole that interface's egress).
#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn two_interfaces_of_one_container_keep_their_own_ifb() {
    let inst = Installed::new();
    let c = Container::new("rcni-bw-two", "rcnibwtwoa", None);
    let _ = run("ip", &["link", "del", "rcnibwtwob"]);
    run_ok("ip", &["link", "add", "rcnibwtwob", "type", "veth", "peer", "name", "eth1", "netns", &c.ns.name]);
    run_ok("ip", &["link", "set", "rcnibwtwob", "up"]);
    let prev1 = json!({"cniVersion": "1.0.0",
        "interfaces": [{"name": "rcnibwtwob", "mac": link(None, "rcnibwtwob").unwrap()["address"]},
                       {"name": "eth1", "mac": link(Some(&c.ns.name), "eth1").unwrap()["address"], "sandbox": c.ns.path()}],
        "ips": [{"address": "192.0.2.6/30", "interface": 1}]});
    let limits = json!({"egressRate": 800000, "egressBurst": 80000});
    let plugin = inst.path("bandwidth");
    let call1 = |cmd: &'static str| {
        let mut k = Call::new(cmd, "bwtwo", "eth1").netns(&c.ns.path());
        k.path = inst.dir.path().to_string_lossy().into_owned();
        k
    };
    let r0 = c.call("ADD", "bwtwo", &inst).ok(&plugin, &conf("bwtwo", limits.clone(), Some(&c.prev)));
    let r1 = call1("ADD").ok(&plugin, &conf("bwtwo", limits.clone(), Some(&prev1)));
    let primary = ifb("bwtwo", "bwtwo");
    assert_eq!(r0["interfaces"][2]["name"], primary.as_str(), "the first keeps the reference's name");
    let second = r1["interfaces"][2]["name"].as_str().unwrap().to_string();
    assert!(second.starts_with("bwp") && second != primary && link(None, &second).is_some(), "{r1}");
    call1("CHECK").ok(&plugin, &conf("bwtwo", limits.clone(), Some(&r1)));
    c.call("CHECK", "bwtwo", &inst).ok(&plugin, &conf("bwtwo", limits.clone(), Some(&r0)));
    call1("DEL").ok(&plugin, &conf("bwtwo", limits.clone(), Some(&r1)));
    assert!(link(None, &second).is_none(), "eth1's IFB removed");
    assert!(link(None, &primary).is_some(), "eth0's IFB kept");
    call1("DEL").ok(&plugin, &conf("bwtwo", limits.clone(), None));
    assert!(link(None, &primary).is_some(), "a second DEL of eth1, without prevResult, still keeps eth0's");
    c.call("DEL", "bwtwo", &inst).ok(&plugin, &conf("bwtwo", limits, None));
    assert!(link(None, &primary).is_none());
    run_ok("ip", &["link", "del", "rcnibwtwob"]);
}

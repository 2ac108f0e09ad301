//! The kernel layer against the real kernel (inside the netsandbox only), checked with iproute2.

use netkit::netlink::{AddrFlags, BridgePortOpts, LinkKind, LinkSpec, NextHop, RouteSpec, VethPeer};
use netkit::{netns, sysctl, NetNs, Netlink};
use rcni_tests::{require_netsandbox, run, run_ok, TestNetns};
use serde_json::Value;

fn thread_ns() -> (u64, u64) {
    NetNs::current().unwrap().id().unwrap()
}

fn ip_json(args: &[&str]) -> Value {
    let mut all = vec!["-j"];
    all.extend_from_slice(args);
    serde_json::from_str(&run_ok("ip", &all)).unwrap()
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn guard_restores_after_error_and_panic() {
    require_netsandbox();
    let t = TestNetns::new("rcni-nk-guard");
    let target = NetNs::open(t.path()).unwrap();
    let home = thread_ns();
    assert_ne!(home, target.id().unwrap());

    // inside: the thread is in the target namespace
    let inside = target.run(thread_ns).unwrap();
    assert_eq!(inside, target.id().unwrap());
    assert_eq!(thread_ns(), home);

    // an error inside
    let r: Result<(), String> = target.run(|| Err("failed".to_string())).unwrap();
    assert!(r.is_err());
    assert_eq!(thread_ns(), home, "restored after an error");

    // an early return through `?` while a guard is held
    fn early(ns: &NetNs) -> Result<(), netkit::Error> {
        let _g = ns.enter()?;
        Err(netkit::Error::msg("doing something", "it failed"))?;
        unreachable!()
    }
    assert!(early(&target).is_err());
    assert_eq!(thread_ns(), home, "restored after `?`");

    // a panic inside
    let caught = std::panic::catch_unwind(|| {
        target
            .run(|| {
                assert_eq!(thread_ns(), target.id().unwrap());
                panic!("boom inside the namespace");
            })
            .unwrap();
    });
    assert!(caught.is_err());
    assert_eq!(thread_ns(), home, "restored after a panic");

    // a missing namespace is reported as not found, and nothing changes
    let e = NetNs::open("/var/run/netns/rcni-does-not-exist").unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(thread_ns(), home);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn named_namespaces_create_list_identify_delete() {
    require_netsandbox();
    let path = netns::create(Some("rcni-nk-named")).unwrap();
    assert_eq!(path, std::path::PathBuf::from("/run/netns/rcni-nk-named"));
    assert!(netns::list().unwrap().contains(&"rcni-nk-named".to_string()));
    assert!(run_ok("ip", &["netns", "list"]).contains("rcni-nk-named"), "iproute2 sees it");
    assert!(netns::create(Some("rcni-nk-named")).unwrap_err().to_string().contains("already exists"));
    // a fresh namespace: only lo, down
    let links = ip_json(&["-n", "rcni-nk-named", "link", "show"]);
    assert_eq!(links.as_array().unwrap().len(), 1);
    assert_eq!(links[0]["ifname"], "lo");

    // a process started in it is identified by name
    let ns = NetNs::open(&path).unwrap();
    let mut child = ns.spawn(std::process::Command::new("sleep").arg("10")).unwrap();
    assert_eq!(netns::identify(child.id()).unwrap(), vec!["rcni-nk-named".to_string()]);
    assert!(netns::identify(std::process::id()).unwrap().is_empty());
    // …and its namespace can be given a second name
    netns::persist_pid(child.id(), "rcni-nk-alias").unwrap();
    assert_eq!(NetNs::open("/run/netns/rcni-nk-alias").unwrap().id().unwrap(), ns.id().unwrap());
    let _ = child.kill();
    let _ = child.wait();

    netns::delete("rcni-nk-alias").unwrap();
    netns::delete("rcni-nk-named").unwrap();
    assert!(!path.exists());
    assert!(!run_ok("ip", &["netns", "list"]).contains("rcni-nk-named"));
    assert!(netns::delete("rcni-nk-named").unwrap_err().is_not_found());
    let random = netns::create(None).unwrap();
    assert!(random.file_name().unwrap().to_string_lossy().starts_with("cni-"));
    netns::delete(&random.file_name().unwrap().to_string_lossy()).unwrap();
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn veth_across_namespaces_addresses_routes() {
    require_netsandbox();
    let c = TestNetns::new("rcni-nk-veth");
    let cns = NetNs::open(c.path()).unwrap();
    let mut host = Netlink::new().unwrap();
    let mut cont = Netlink::open_in(&cns).unwrap();

    let mut spec = LinkSpec::new(
        "nkv-host",
        LinkKind::Veth(VethPeer { name: "eth0".into(), netns: Some(&cns), mac: Some([0x02, 0, 0, 0, 0, 0x42]), mtu: None }),
    );
    spec.mtu = Some(1400);
    host.add_link(&spec).unwrap();
    assert!(host.add_link(&spec).unwrap_err().is_exists());
    let h = host.link_by_name("nkv-host").unwrap();
    assert_eq!((h.kind.as_deref(), h.mtu), (Some("veth"), 1400));
    assert!(host.link_by_name("eth0").unwrap_err().is_not_found(), "the peer is only in the container");
    let e = cont.link_by_name("eth0").unwrap();
    assert_eq!(e.mac_string(), "02:00:00:00:00:42");
    assert_eq!(e.mtu, 1400);
    // each side finds its peer
    let (peer, nsid) = h.veth_peer().unwrap();
    assert_eq!(peer, e.index);
    assert!(nsid.is_some(), "the peer is in another namespace");
    assert_eq!(e.veth_peer().unwrap().0, h.index);

    host.set_up(h.index, true).unwrap();
    cont.set_up(e.index, true).unwrap();
    let lo = cont.link_by_name("lo").unwrap();
    cont.set_up(lo.index, true).unwrap();
    host.add_addr(h.index, "10.231.0.1/24".parse().unwrap(), AddrFlags::default()).unwrap();
    cont.add_addr(e.index, "10.231.0.2/24".parse().unwrap(), AddrFlags::default()).unwrap();
    assert!(cont.add_addr(e.index, "10.231.0.2/24".parse().unwrap(), AddrFlags::default()).unwrap_err().is_exists());
    cont.add_addr(e.index, "fd31::2/64".parse().unwrap(), AddrFlags { nodad: true }).unwrap();
    let addrs = cont.addrs(Some(e.index), None).unwrap();
    let v6 = addrs.iter().find(|a| a.addr.to_string() == "fd31::2/64").unwrap();
    assert!(!v6.is_tentative(), "NODAD addresses are usable at once");
    let brd = ip_json(&["-n", &c.name, "addr", "show", "dev", "eth0"]);
    assert!(brd[0]["addr_info"].as_array().unwrap().iter().any(|a| a["local"] == "10.231.0.2" && a["broadcast"] == "10.231.0.255"));

    // routes: default via the gateway with a metric, one in another table, an ECMP one
    let mut def = RouteSpec::new("0.0.0.0/0".parse().unwrap()).via("10.231.0.1".parse().unwrap()).dev(e.index);
    def.priority = Some(50);
    cont.add_route(&def).unwrap();
    let mut t100 = RouteSpec::new("10.240.0.0/16".parse().unwrap()).via("10.231.0.1".parse().unwrap());
    t100.table = 100;
    cont.add_route(&t100).unwrap();
    cont.add_addr(e.index, "10.231.1.2/24".parse().unwrap(), AddrFlags::default()).unwrap();
    let mut ecmp = RouteSpec::new("10.250.0.0/16".parse().unwrap());
    ecmp.multipath = vec![
        NextHop { gw: Some("10.231.0.1".parse().unwrap()), oif: e.index, weight: 1 },
        NextHop { gw: Some("10.231.1.1".parse().unwrap()), oif: e.index, weight: 2 },
    ];
    cont.add_route(&ecmp).unwrap();
    let shown = run_ok("ip", &["-n", &c.name, "route", "show", "table", "all"]);
    assert!(shown.contains("default via 10.231.0.1 dev eth0 metric 50"), "{shown}");
    assert!(shown.contains("10.240.0.0/16 via 10.231.0.1 dev eth0 table 100"), "{shown}");
    assert!(
        shown.contains("nexthop via 10.231.0.1 dev eth0 weight 1") && shown.contains("nexthop via 10.231.1.1 dev eth0 weight 2"),
        "{shown}"
    );
    let routes = cont.routes(false, Some(254)).unwrap();
    let back = routes.iter().find(|r| r.dst.to_string() == "10.250.0.0/16").unwrap();
    assert_eq!(back.multipath.len(), 2);
    assert_eq!(back.multipath[1].weight, 2);
    assert!(cont.routes(false, Some(100)).unwrap().iter().any(|r| r.dst.to_string() == "10.240.0.0/16"));
    cont.del_route(&ecmp).unwrap();
    assert!(cont.del_route(&ecmp).unwrap_err().errno().is_some());

    // traffic over it
    assert!(c.ping("10.231.0.1"), "container reaches the host side");

    // sysctl inside the namespace only
    sysctl::write_in(&cns, "net.ipv4.conf.eth0.arp_notify", "1").unwrap();
    assert_eq!(String::from_utf8(c.exec(&["cat", "/proc/sys/net/ipv4/conf/eth0/arp_notify"]).stdout).unwrap().trim(), "1");
    assert_eq!(sysctl::read_in(&cns, "net.ipv4.conf.eth0.arp_notify").unwrap(), "1");
    assert!(sysctl::read("net.ipv4.conf.eth0.arp_notify").is_err(), "not in the host namespace");

    // deleting one end removes both
    host.del_link(h.index).unwrap();
    assert!(cont.link_by_name("eth0").unwrap_err().is_not_found());
    assert!(host.del_link(h.index).unwrap_err().is_not_found());
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn bridge_ports_rename_move_and_attributes() {
    require_netsandbox();
    let mut nl = Netlink::new().unwrap();
    nl.add_link(&LinkSpec::new("nkbr0", LinkKind::Bridge { vlan_filtering: None })).unwrap();
    let br = nl.link_by_name("nkbr0").unwrap();
    assert_eq!(br.kind.as_deref(), Some("bridge"));
    nl.add_link(&LinkSpec::new("nkp0", LinkKind::Veth(VethPeer { name: "nkp0b".into(), netns: None, mac: None, mtu: None }))).unwrap();
    let p = nl.link_by_name("nkp0").unwrap();
    nl.set_master(p.index, Some(br.index)).unwrap();
    nl.set_bridge_port(p.index, BridgePortOpts { hairpin: Some(true), isolated: Some(true), learning: None }).unwrap();
    let p2 = nl.link_by_name("nkp0").unwrap();
    assert_eq!((p2.master, p2.hairpin, p2.isolated), (Some(br.index), Some(true), Some(true)));
    let d = ip_json(&["-d", "link", "show", "nkp0"]);
    assert_eq!(d[0]["linkinfo"]["info_slave_data"]["hairpin"], true, "{d}");
    assert_eq!(d[0]["linkinfo"]["info_slave_data"]["isolated"], true, "{d}");
    nl.set_bridge_port(p.index, BridgePortOpts { hairpin: Some(false), ..Default::default() }).unwrap();
    assert_eq!(nl.link_by_name("nkp0").unwrap().hairpin, Some(false));
    nl.set_master(p.index, None).unwrap();
    assert_eq!(nl.link_by_name("nkp0").unwrap().master, None);

    // MTU, MAC, promisc, txqlen, alias, rename (down), move to another namespace
    nl.set_mtu(p.index, 1300).unwrap();
    nl.set_mac(p.index, [0x02, 1, 2, 3, 4, 5]).unwrap();
    nl.set_promisc(p.index, true).unwrap();
    nl.set_txqlen(p.index, 2000).unwrap();
    nl.set_alias(p.index, "host-device-orig").unwrap();
    nl.rename(p.index, "nkp0renamed").unwrap();
    let r = nl.link_by_name("nkp0renamed").unwrap();
    assert_eq!(
        (r.mtu, r.mac_string().as_str(), r.promisc, r.txqlen, r.alias.as_deref()),
        (1300, "02:01:02:03:04:05", true, 2000, Some("host-device-orig"))
    );
    let t = TestNetns::new("rcni-nk-move");
    let tns = NetNs::open(t.path()).unwrap();
    nl.set_netns(r.index, &tns).unwrap();
    assert!(nl.link_by_name("nkp0renamed").unwrap_err().is_not_found());
    assert!(Netlink::open_in(&tns).unwrap().link_by_name("nkp0renamed").is_ok());

    // a macvlan on a parent, created straight into another namespace
    nl.add_link(&LinkSpec::new("nkmvpar", LinkKind::Veth(VethPeer { name: "nkmvpar2".into(), netns: None, mac: None, mtu: None })))
        .unwrap();
    let parent = nl.link_by_name("nkmvpar").unwrap();
    let mut mv = LinkSpec::new("mv0", LinkKind::Macvlan { mode: netkit::netlink::MacvlanMode::Bridge });
    mv.parent = Some(parent.index);
    mv.netns = Some(&tns);
    nl.add_link(&mv).unwrap();
    let d = ip_json(&["-n", &t.name, "-d", "link", "show", "mv0"]);
    assert_eq!(d[0]["linkinfo"]["info_kind"], "macvlan", "{d}");
    assert_eq!(d[0]["linkinfo"]["info_data"]["mode"], "bridge", "{d}");
    nl.del_link(parent.index).unwrap();

    // links listing includes the bridge; deleting it works
    assert!(nl.links().unwrap().iter().any(|l| l.name == "nkbr0"));
    nl.del_link(br.index).unwrap();
    let _ = run("ip", &["link", "del", "nkp0b"]);
}

/// Whether iproute2 can create a link of this kind here (the oracle for what the kernel has).
fn kernel_has(kind: &str, extra: &[&str]) -> bool {
    let mut args = vec!["link", "add", "nkprobe0"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["type", kind]);
    let ok = run("ip", &args).status.success();
    let _ = run("ip", &["link", "del", "nkprobe0"]);
    ok
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn kernel_refusals_are_clear() {
    require_netsandbox();
    let mut nl = Netlink::new().unwrap();
    nl.add_link(&LinkSpec::new("nkvlanbr", LinkKind::Bridge { vlan_filtering: None })).unwrap();
    let br = nl.link_by_name("nkvlanbr").unwrap();
    let mut vlan = LinkSpec::new("nkvlanbr.5", LinkKind::Vlan { id: 5 });
    vlan.parent = Some(br.index);
    let cases = [
        ("dummy", vec![], LinkSpec::new("nkdummy0", LinkKind::Dummy)),
        ("vrf", vec!["table", "10"], LinkSpec::new("nkvrf0", LinkKind::Vrf { table: 10 })),
        ("vlan", vec!["link", "nkvlanbr", "id", "5"], vlan),
    ];
    for (kind, extra, spec) in cases {
        let extra: Vec<&str> = extra.iter().map(|s| &**s).collect();
        let expected = kernel_has(kind, &extra);
        // the link plugins' STATUS probe (a scratch namespace) agrees with iproute2
        assert_eq!(netkit::iface::link_kind_supported(&spec.kind).unwrap(), expected, "{kind}: the probe");
        match nl.add_link(&spec) {
            Ok(()) => {
                assert!(expected, "{kind}: iproute2 could not create it but we could");
                let l = nl.link_by_name(&spec.name).unwrap();
                nl.del_link(l.index).unwrap();
            }
            Err(e) => {
                assert!(!expected, "{kind}: iproute2 created it but we failed: {e}");
                assert!(netkit::netlink::is_unknown_link_kind(&e), "{e}");
                let module = if kind == "vlan" { "8021q" } else { kind };
                assert!(e.to_string().contains(&format!("the kernel has no {kind} support (module {module})")), "{e}");
            }
        }
    }
    // bridge VLAN filtering: same oracle
    let vf_ok = run("ip", &["link", "set", "nkvlanbr", "type", "bridge", "vlan_filtering", "1"]).status.success();
    match nl.bridge_vlan_add(br.index, 5, true, true, true) {
        Ok(()) => assert!(vf_ok, "iproute2 could not enable VLAN filtering but a VLAN was added"),
        Err(e) => {
            assert!(!vf_ok, "VLAN filtering works here but adding a VLAN failed: {e}");
            assert!(e.to_string().contains("802.1Q"), "{e}");
        }
    }
    nl.del_link(br.index).unwrap();
}

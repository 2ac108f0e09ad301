//! netkit's vxlan data plane (`netkit::vxlan`, the backend of `rcni node`) against the kernel:
//! three "node" namespaces on an underlay bridge, each with a vxlan device made through
//! `ensure_device` and a "pod" namespace behind a veth; peers programmed with `apply`; pods ping
//! across nodes, and iproute2 shows exactly the entries wanted.
//!
//! Addresses: underlay 10.133.0.0/24 (MTU 1400), pod subnets 10.134.<node>.0/24.

use netkit::vxlan::{self, DeviceConfig, Peer};
use netkit::{NetNs, Netlink};
use rcni_tests::{eventually, require_netsandbox, run_ok, TestNetns};
use serde_json::Value;
use std::net::Ipv4Addr;

const UNDERLAY_MTU: u32 = 1400;

struct Node {
    ns: TestNetns,
    pod: TestNetns,
    nl: Netlink,
    i: u8,
    underlay: u32,
}

impl Node {
    fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.ns.name.as_str()];
        all.extend_from_slice(args);
        run_ok("ip", &all)
    }

    fn json(&self, cmd: &str, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["-n", self.ns.name.as_str(), "-j"];
        all.extend_from_slice(args);
        let out = run_ok(cmd, &all);
        serde_json::from_str::<Value>(if out.trim().is_empty() { "[]" } else { &out }).unwrap().as_array().unwrap().clone()
    }

    fn public_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 133, 0, self.i)
    }

    fn config(&self) -> DeviceConfig {
        let mut c = DeviceConfig::new(1, self.public_ip(), self.underlay);
        c.address = Some(format!("10.134.{}.0/32", self.i).parse().unwrap());
        c
    }

    /// `vxlan::apply` on this node's flannel.1.
    fn apply(&mut self, peers: &[Peer]) -> Vec<vxlan::Op> {
        let ix = self.vx();
        vxlan::apply(&mut self.nl, ix, peers).unwrap()
    }

    fn vx(&mut self) -> u32 {
        self.nl.link_by_name("flannel.1").unwrap().index
    }

    /// The neighbours on flannel.1 as (dst, lladdr, state).
    fn neighbours(&self) -> Vec<(String, String, String)> {
        let mut v: Vec<_> = self
            .json("ip", &["neigh", "show", "dev", "flannel.1"])
            .iter()
            .map(|n| (n["dst"].as_str().unwrap().to_string(), n["lladdr"].as_str().unwrap_or("").to_string(), n["state"].to_string()))
            .collect();
        v.sort();
        v
    }

    /// The FDB of flannel.1 as (mac, dst, flags, state).
    fn fdb(&self) -> Vec<(String, String, String, String)> {
        let mut v: Vec<_> = self
            .json("bridge", &["fdb", "show", "dev", "flannel.1"])
            .iter()
            .map(|e| {
                (
                    e["mac"].as_str().unwrap().to_string(),
                    e["dst"].as_str().unwrap_or("").to_string(),
                    e["flags"].to_string(),
                    e["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        v.sort();
        v
    }

    /// The routes through flannel.1 as (dst, gateway, flags).
    fn routes(&self) -> Vec<(String, String, String)> {
        let mut v: Vec<_> = self
            .json("ip", &["route", "show", "dev", "flannel.1"])
            .iter()
            .map(|r| (r["dst"].as_str().unwrap().to_string(), r["gateway"].as_str().unwrap_or("").to_string(), r["flags"].to_string()))
            .collect();
        v.sort();
        v
    }
}

fn mac_of(nl: &mut Netlink, name: &str) -> [u8; 6] {
    nl.link_by_name(name).unwrap().mac.as_slice().try_into().unwrap()
}

/// The underlay namespace with its bridge, and three nodes on it, each with a pod.
fn cluster(tag: &str) -> (TestNetns, Vec<Node>) {
    let ul = TestNetns::new(&format!("rcni-vx{tag}-ul"));
    let u = ul.name.as_str();
    run_ok("ip", &["-n", u, "link", "add", "vxul0", "type", "bridge"]);
    run_ok("ip", &["-n", u, "link", "set", "vxul0", "mtu", &UNDERLAY_MTU.to_string(), "up"]);
    let mut nodes = Vec::new();
    for i in 1..=3u8 {
        let ns = TestNetns::new(&format!("rcni-vx{tag}-n{i}"));
        let pod = TestNetns::new(&format!("rcni-vx{tag}-p{i}"));
        let n = ns.name.as_str();
        let port = format!("vxul-n{i}");
        run_ok(
            "ip",
            &[
                "-n",
                u,
                "link",
                "add",
                &port,
                "mtu",
                &UNDERLAY_MTU.to_string(),
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "mtu",
                &UNDERLAY_MTU.to_string(),
                "netns",
                n,
            ],
        );
        run_ok("ip", &["-n", u, "link", "set", &port, "master", "vxul0", "up"]);
        run_ok("ip", &["-n", n, "addr", "add", &format!("10.133.0.{i}/24"), "dev", "eth0"]);
        run_ok("ip", &["-n", n, "link", "set", "eth0", "up"]);
        run_ok("ip", &["netns", "exec", n, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        // the pod: a veth into its namespace, its default route via the node
        run_ok("ip", &["-n", n, "link", "add", "vxpod0", "type", "veth", "peer", "name", "eth0", "netns", &pod.name]);
        run_ok("ip", &["-n", n, "addr", "add", &format!("10.134.{i}.1/24"), "dev", "vxpod0"]);
        run_ok("ip", &["-n", n, "link", "set", "vxpod0", "up"]);
        run_ok("ip", &["-n", &pod.name, "addr", "add", &format!("10.134.{i}.2/24"), "dev", "eth0"]);
        run_ok("ip", &["-n", &pod.name, "link", "set", "eth0", "up"]);
        run_ok("ip", &["-n", &pod.name, "route", "add", "default", "via", &format!("10.134.{i}.1")]);
        let mut nl = Netlink::open_in(&NetNs::open(ns.path()).unwrap()).unwrap();
        let underlay = nl.link_by_name("eth0").unwrap().index;
        nodes.push(Node { ns, pod, nl, i, underlay });
    }
    (ul, nodes)
}

fn peer_of(n: &mut Node) -> Peer {
    Peer { subnet: format!("10.134.{}.0/24", n.i).parse().unwrap(), vtep_mac: mac_of(&mut n.nl, "flannel.1"), public_ip: n.public_ip() }
}

fn mac_str(m: &[u8; 6]) -> String {
    netkit::netlink::format_mac(m)
}

fn pings(from: &Node, to: u8) -> bool {
    let addr = format!("10.134.{to}.2");
    eventually(5, || from.pod.ping(&addr))
}

/// The entries node `n` must have for exactly `peers`, in iproute2's words.
fn assert_programmed(n: &Node, peers: &[&Peer]) {
    let mut want_neigh: Vec<_> =
        peers.iter().map(|p| (p.subnet.network().to_string(), mac_str(&p.vtep_mac), "[\"PERMANENT\"]".to_string())).collect();
    want_neigh.sort();
    assert_eq!(n.neighbours(), want_neigh, "ip neigh show dev flannel.1 on node {}", n.i);
    let mut want_fdb: Vec<_> =
        peers.iter().map(|p| (mac_str(&p.vtep_mac), p.public_ip.to_string(), "[\"self\"]".to_string(), "permanent".to_string())).collect();
    want_fdb.sort();
    assert_eq!(n.fdb(), want_fdb, "bridge fdb show dev flannel.1 on node {}", n.i);
    let mut want_routes: Vec<_> =
        peers.iter().map(|p| (p.subnet.to_string(), p.subnet.network().to_string(), "[\"onlink\"]".to_string())).collect();
    want_routes.sort();
    assert_eq!(n.routes(), want_routes, "ip route show dev flannel.1 on node {}", n.i);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn three_nodes_over_vxlan_join_change_and_leave() {
    require_netsandbox();
    let (_ul, mut nodes) = cluster("");

    // the devices, through the API
    for n in nodes.iter_mut() {
        let cfg = n.config();
        let link = vxlan::ensure_device(&mut n.nl, &cfg).unwrap();
        assert_eq!(link.mtu, UNDERLAY_MTU - 50, "MTU = underlay − 50");
        assert!(link.up);
        // ensuring again keeps the device as it is
        let again = vxlan::ensure_device(&mut n.nl, &cfg).unwrap();
        assert_eq!((again.index, &again.mac), (link.index, &link.mac));
        let d = n.json("ip", &["-d", "link", "show", "flannel.1"]);
        let info = &d[0]["linkinfo"]["info_data"];
        assert_eq!(d[0]["mtu"], 1350);
        assert_eq!(d[0]["linkinfo"]["info_kind"], "vxlan");
        assert_eq!(info["id"], 1);
        assert_eq!(info["local"], format!("10.133.0.{}", n.i));
        assert_eq!(info["link"], "eth0");
        assert_eq!(info["port"], 8472);
        assert_eq!(info["learning"], false);
        assert!(n.ip(&["addr", "show", "dev", "flannel.1"]).contains(&format!("inet 10.134.{}.0/32", n.i)));
    }
    let peers: Vec<Peer> = nodes.iter_mut().map(peer_of).collect();
    let others = |i: u8| -> Vec<Peer> { peers.iter().filter(|p| p.public_ip.octets()[3] != i).cloned().collect() };

    // join: every node programs the other two; a second apply changes nothing
    for n in nodes.iter_mut() {
        let want = others(n.i);
        let ops = n.apply(&want);
        assert_eq!(ops.len(), 6, "{ops:?}");
        assert_eq!(n.apply(&want), vec![], "a second apply changes nothing");
    }
    for n in &nodes {
        assert_programmed(n, &others(n.i).iter().collect::<Vec<_>>());
    }
    for (a, b) in [(0usize, 2u8), (0, 3), (1, 1), (1, 3), (2, 1), (2, 2)] {
        assert!(pings(&nodes[a], b), "pod on node {} → pod on node {b}", nodes[a].i);
    }
    // the vxlan MTU is what fits the underlay: 1350-byte packets pass unfragmented, 1351 do not
    assert!(nodes[0].pod.exec(&["ping", "-c1", "-W2", "-M", "do", "-s", "1322", "10.134.2.2"]).status.success());
    assert!(!nodes[0].pod.exec(&["ping", "-c1", "-W2", "-M", "do", "-s", "1323", "10.134.2.2"]).status.success());

    // entries nobody wants (left by an earlier agent) are removed by the next apply
    let n1 = &mut nodes[0];
    n1.ip(&["neigh", "add", "10.134.9.0", "lladdr", "0a:58:00:00:09:09", "dev", "flannel.1", "nud", "permanent"]);
    run_ok(
        "bridge",
        &["-n", &n1.ns.name, "fdb", "append", "0a:58:00:00:09:09", "dev", "flannel.1", "dst", "10.133.0.9", "self", "permanent"],
    );
    n1.ip(&["route", "add", "10.134.9.0/24", "via", "10.134.9.0", "dev", "flannel.1", "onlink"]);
    let ops = n1.apply(&others(1));
    assert_eq!(
        ops.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
        ["route del 10.134.9.0/24 via 10.134.9.0", "neigh del 10.134.9.0", "fdb del 0a:58:00:00:09:09 dst 10.133.0.9"]
    );
    assert_programmed(&nodes[0], &others(1).iter().collect::<Vec<_>>());

    // node 3 leaves node 1's view: its neighbour, FDB entry and route go, and node 1's pod no
    // longer reaches it; node 2 stays reachable
    let only2: Vec<Peer> = vec![peers[1].clone()];
    let n1 = &mut nodes[0];
    let ops = n1.apply(&only2);
    assert_eq!(ops.len(), 3, "{ops:?}");
    assert_programmed(&nodes[0], &[&peers[1]]);
    assert!(!nodes[0].pod.ping("10.134.3.2"), "node 3's pod is unreachable from node 1 once it left");
    assert!(pings(&nodes[0], 2));

    // node 2's device is made again with another MAC (a changed VTEP): ensure_device recreates
    // it; the others learn the new MAC from the control plane
    let n2 = &mut nodes[1];
    let old_index = n2.vx();
    let mut cfg = n2.config();
    cfg.mac = Some([0x0a, 0x58, 0x0a, 0x86, 0x02, 0x00]);
    let link = vxlan::ensure_device(&mut n2.nl, &cfg).unwrap();
    assert_eq!(link.mac, cfg.mac.unwrap().to_vec());
    assert_ne!(link.index, old_index, "a device with another MAC asked for is made again");
    assert_eq!(link.mtu, 1350);
    let new2 = peer_of(&mut nodes[1]);
    assert_eq!(new2.vtep_mac, cfg.mac.unwrap());
    // node 2 lost its entries with the old device: all six come back
    let n2 = &mut nodes[1];
    assert_eq!(n2.apply(&others(2)).len(), 6);
    let n1 = &mut nodes[0];
    let ops = n1.apply(std::slice::from_ref(&new2));
    assert_eq!(
        ops.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
        [
            format!("fdb del {} dst 10.133.0.2", mac_str(&peers[1].vtep_mac)),
            "neigh replace 10.134.2.0 lladdr 0a:58:0a:86:02:00".to_string(),
            "fdb replace 0a:58:0a:86:02:00 dst 10.133.0.2".to_string(),
        ]
    );
    assert_programmed(&nodes[0], &[&new2]);
    assert!(pings(&nodes[0], 2), "node 1's pod reaches node 2's through the new VTEP MAC");

    // node 3 moves to another public IP, keeping its VTEP MAC: its device is made again with the
    // new local address; node 2 only repoints the FDB entry, and the pods reach each other again
    let n3 = &mut nodes[2];
    // (the old one first: deleting a primary address takes its secondaries along)
    n3.ip(&["addr", "del", "10.133.0.3/24", "dev", "eth0"]);
    n3.ip(&["addr", "add", "10.133.0.33/24", "dev", "eth0"]);
    let mut cfg = n3.config();
    cfg.local = "10.133.0.33".parse().unwrap();
    cfg.mac = Some(peers[2].vtep_mac);
    let link = vxlan::ensure_device(&mut n3.nl, &cfg).unwrap();
    assert_eq!(link.vxlan.unwrap().local, Some(cfg.local));
    assert_eq!(link.mac, peers[2].vtep_mac.to_vec(), "the fixed MAC is kept");
    let moved3 = Peer { public_ip: cfg.local, ..peers[2].clone() };
    assert_eq!(nodes[2].apply(&[peers[0].clone(), new2.clone()]).len(), 6);
    let n2 = &mut nodes[1];
    let ops = n2.apply(&[peers[0].clone(), moved3.clone()]);
    assert_eq!(
        ops.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
        [
            format!("fdb del {} dst 10.133.0.3", mac_str(&moved3.vtep_mac)),
            format!("fdb replace {} dst 10.133.0.33", mac_str(&moved3.vtep_mac)),
        ]
    );
    assert_programmed(&nodes[1], &[&peers[0], &moved3]);
    assert!(pings(&nodes[1], 3), "node 2's pod reaches node 3's at its new public IP");
    assert!(pings(&nodes[2], 2));

    // everyone leaves: nothing of ours is left on the device
    let n1 = &mut nodes[0];
    assert_eq!(n1.apply(&[]).len(), 3);
    assert_programmed(&nodes[0], &[]);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn ensure_device_refuses_a_foreign_link_and_fixes_a_wrong_vxlan() {
    require_netsandbox();
    let ns = TestNetns::new("rcni-vxe-n1");
    let n = ns.name.as_str();
    run_ok("ip", &["-n", n, "link", "add", "vxe-ul", "mtu", "1500", "type", "veth", "peer", "name", "vxe-ul2"]);
    run_ok("ip", &["-n", n, "addr", "add", "10.133.1.1/24", "dev", "vxe-ul"]);
    let mut nl = Netlink::open_in(&NetNs::open(ns.path()).unwrap()).unwrap();
    let ul = nl.link_by_name("vxe-ul").unwrap().index;

    // a bridge of that name is not ours to delete
    run_ok("ip", &["-n", n, "link", "add", "flannel.7", "type", "bridge"]);
    let cfg = DeviceConfig::new(7, "10.133.1.1".parse().unwrap(), ul);
    let e = vxlan::ensure_device(&mut nl, &cfg).unwrap_err();
    assert!(e.to_string().contains("a link flannel.7 exists and is not a vxlan device"), "{e}");
    assert!(run_ok("ip", &["-n", n, "-d", "link", "show", "flannel.7"]).contains("bridge"), "the bridge is left alone");
    run_ok("ip", &["-n", n, "link", "del", "flannel.7"]);

    // a vxlan made by hand with learning on and another VNI: made again as configured
    run_ok("ip", &["-n", n, "link", "add", "flannel.7", "type", "vxlan", "id", "70", "dstport", "4789", "dev", "vxe-ul"]);
    let link = vxlan::ensure_device(&mut nl, &cfg).unwrap();
    let v = link.vxlan.unwrap();
    assert_eq!((v.vni, v.port, v.learning, v.underlay, v.local), (7, 8472, false, Some(ul), Some("10.133.1.1".parse().unwrap())));
    assert_eq!(link.mtu, 1450);
    // an MTU changed by hand is set back, in place
    run_ok("ip", &["-n", n, "link", "set", "flannel.7", "mtu", "1300"]);
    let again = vxlan::ensure_device(&mut nl, &cfg).unwrap();
    assert_eq!((again.index, again.mtu), (link.index, 1450));
    // an address, then another one (a new subnet lease): only the new one stays
    let mut addressed = cfg.clone();
    addressed.address = Some("10.134.50.0/32".parse().unwrap());
    vxlan::ensure_device(&mut nl, &addressed).unwrap();
    addressed.address = Some("10.134.51.0/32".parse().unwrap());
    let again = vxlan::ensure_device(&mut nl, &addressed).unwrap();
    assert_eq!(again.index, link.index);
    let addrs = run_ok("ip", &["-n", n, "-4", "-o", "addr", "show", "dev", "flannel.7"]);
    assert!(addrs.contains("inet 10.134.51.0/32") && !addrs.contains("10.134.50.0"), "{addrs}");
    assert_eq!(addrs.lines().count(), 1, "{addrs}");
    // IANA's port when asked for
    let mut iana = cfg.clone();
    iana.port = 4789;
    let l = vxlan::ensure_device(&mut nl, &iana).unwrap();
    assert_eq!(l.vxlan.unwrap().port, 4789);
    let d: Value = serde_json::from_str(&run_ok("ip", &["-n", n, "-j", "-d", "link", "show", "flannel.7"])).unwrap();
    assert_eq!(d[0]["linkinfo"]["info_data"]["port"], 4789);
}

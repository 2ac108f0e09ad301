//! portmap's layout on the in-memory nftables (`FakeNft`): what an ADD writes, DEL by owner,
//! take-over of a leaked mapping, GC of stale owners and old settings generations, networks
//! side by side. `tests/tests/meta.rs` proves the kernel agrees (real traffic).

use super::layout::{gc, missing, remove_network, setup, teardown, Cond, Held, Mapping, Settings, SetupError, TABLE};
use netkit::nft::{FakeNft, Family};
use netkit::owner::{valid_tags, Owner};
use std::collections::HashSet;

const FAM: Family = Family::Inet;

fn mapping(proto: u8, host_port: u16, host_ip: Option<&str>, dest: &str, dest_port: u16) -> Mapping {
    Mapping { proto, host_port, host_ip: host_ip.map(|h| h.parse().unwrap()), dest: dest.parse().unwrap(), dest_port }
}

fn owner(net: &str, id: &str) -> Owner {
    Owner::new(net, id, "eth0")
}

fn subnet(s: &str) -> Vec<ipnet::IpNet> {
    vec![s.parse().unwrap()]
}

fn els(f: &FakeNft, map: &str) -> Vec<String> {
    f.element_texts(FAM, TABLE, map)
}

/// The settings' generation, as the objects' names carry it.
fn generation(f: &FakeNft, net: &str) -> Vec<String> {
    let mut g: Vec<String> =
        f.chains(FAM, TABLE).into_iter().filter_map(|c| c.strip_prefix(&format!("hp_{net}_")).map(String::from)).collect();
    g.sort();
    g
}

#[test]
fn first_add_writes_the_network_then_each_container_only_its_elements() {
    let mut f = FakeNft::new();
    let s = Settings::default();
    let c1 = owner("net1", "c1");
    setup(
        &mut f,
        &c1,
        &s,
        &subnet("10.1.0.2/24"),
        &[mapping(6, 8080, None, "10.1.0.2", 80), mapping(17, 53, Some("192.0.2.1"), "10.1.0.2", 5353)],
    )
    .unwrap();
    let g = &generation(&f, "net1")[0];
    let c = c1.comment();
    let want = format!(
        "add table inet rcni_hostport
add chain inet rcni_hostport prerouting {{ type nat hook prerouting priority -100; policy accept; }}
add chain inet rcni_hostport output {{ type nat hook output priority -100; policy accept; }}
add chain inet rcni_hostport postrouting {{ type nat hook postrouting priority 100; policy accept; }}
add set inet rcni_hostport s4_net1 {{ type ipv4_addr; flags interval; }}
add set inet rcni_hostport s6_net1 {{ type ipv6_addr; flags interval; }}
add map inet rcni_hostport h4_net1_{g} {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }}
add map inet rcni_hostport w4_net1_{g} {{ type inet_proto . inet_service : ipv4_addr . inet_service; }}
add map inet rcni_hostport h6_net1_{g} {{ type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; }}
add map inet rcni_hostport w6_net1_{g} {{ type inet_proto . inet_service : ipv6_addr . inet_service; }}
create chain inet rcni_hostport hp_net1_{g}
add rule inet rcni_hostport hp_net1_{g} meta nfproto ipv4 ip saddr @s4_net1 meta mark set meta mark | 0x00002000 dnat ip addr . port to ip daddr . meta l4proto . th dport map @h4_net1_{g}
add rule inet rcni_hostport hp_net1_{g} meta nfproto ipv4 ip saddr 127.0.0.0/8 meta mark set meta mark | 0x00002000 dnat ip addr . port to ip daddr . meta l4proto . th dport map @h4_net1_{g}
add rule inet rcni_hostport hp_net1_{g} meta nfproto ipv4 dnat ip addr . port to ip daddr . meta l4proto . th dport map @h4_net1_{g}
add rule inet rcni_hostport hp_net1_{g} meta nfproto ipv4 ip saddr @s4_net1 meta mark set meta mark | 0x00002000 dnat ip addr . port to meta l4proto . th dport map @w4_net1_{g}
add rule inet rcni_hostport hp_net1_{g} meta nfproto ipv4 ip saddr 127.0.0.0/8 meta mark set meta mark | 0x00002000 dnat ip addr . port to meta l4proto . th dport map @w4_net1_{g}
add rule inet rcni_hostport hp_net1_{g} meta nfproto ipv4 dnat ip addr . port to meta l4proto . th dport map @w4_net1_{g}
add rule inet rcni_hostport hp_net1_{g} meta nfproto ipv6 ip6 saddr @s6_net1 meta mark set meta mark | 0x00002000 dnat ip6 addr . port to ip6 daddr . meta l4proto . th dport map @h6_net1_{g}
add rule inet rcni_hostport hp_net1_{g} meta nfproto ipv6 dnat ip6 addr . port to ip6 daddr . meta l4proto . th dport map @h6_net1_{g}
add rule inet rcni_hostport hp_net1_{g} meta nfproto ipv6 ip6 saddr @s6_net1 meta mark set meta mark | 0x00002000 dnat ip6 addr . port to meta l4proto . th dport map @w6_net1_{g}
add rule inet rcni_hostport hp_net1_{g} meta nfproto ipv6 dnat ip6 addr . port to meta l4proto . th dport map @w6_net1_{g}
add rule inet rcni_hostport prerouting meta nfproto ipv4 fib daddr type local jump hp_net1_{g} comment \"rcni portmap net=net1 gen={g}\"
add rule inet rcni_hostport output meta nfproto ipv4 fib daddr type local jump hp_net1_{g} comment \"rcni portmap net=net1 gen={g}\"
add rule inet rcni_hostport prerouting meta nfproto ipv6 fib daddr type local jump hp_net1_{g} comment \"rcni portmap net=net1 gen={g}\"
add rule inet rcni_hostport output meta nfproto ipv6 fib daddr type local jump hp_net1_{g} comment \"rcni portmap net=net1 gen={g}\"
add rule inet rcni_hostport postrouting meta mark & 0x00002000 == 0x00002000 masquerade comment \"rcni portmap net=net1 gen={g}\"
add element inet rcni_hostport s4_net1 {{ 10.1.0.0/24 }}
create element inet rcni_hostport w4_net1_{g} {{ tcp . 8080 : 10.1.0.2 . 80 comment \"{c}\" }}
create element inet rcni_hostport h4_net1_{g} {{ 192.0.2.1 . udp . 53 : 10.1.0.2 . 5353 comment \"{c}\" }}
"
    );
    assert_eq!(f.log()[0], want);
    // a second container: its elements and nothing else
    let c2 = owner("net1", "c2");
    setup(&mut f, &c2, &s, &subnet("10.1.0.3/24"), &[mapping(6, 8081, None, "10.1.0.3", 80)]).unwrap();
    assert_eq!(
        f.log()[1],
        format!(
            "add element inet rcni_hostport s4_net1 {{ 10.1.0.0/24 }}\ncreate element inet rcni_hostport w4_net1_{g} {{ tcp . 8081 : 10.1.0.3 . 80 comment \"{}\" }}\n",
            c2.comment()
        )
    );
    assert_eq!(f.log().len(), 2);
    setup(&mut f, &c2, &s, &subnet("10.1.0.3/24"), &[]).unwrap();
    assert_eq!(f.log().len(), 2);
}

#[test]
fn settings_shape_the_chain() {
    let rules = |s: Settings| {
        let mut f = FakeNft::new();
        setup(&mut f, &owner("n", "c"), &s, &subnet("10.1.0.2/24"), &[mapping(6, 80, None, "10.1.0.2", 80)]).unwrap();
        let g = generation(&f, "n").remove(0);
        (f.rule_texts(FAM, TABLE, &format!("hp_n_{g}")), f.rule_texts(FAM, TABLE, "prerouting"))
    };
    let (all, _) = rules(Settings { masq_all: true, ..Settings::default() });
    assert_eq!(all.len(), 4, "masqAll: one rule per map, every DNAT marks: {all:#?}");
    assert!(all.iter().all(|r| r.contains("meta mark set")));
    let (no_snat, _) = rules(Settings { snat: false, ..Settings::default() });
    assert_eq!(no_snat.len(), 4);
    assert!(no_snat.iter().all(|r| !r.contains("meta mark")));
    let (bit, _) = rules(Settings { mark_bit: 0, ..Settings::default() });
    assert!(bit[0].contains("meta mark | 0x00000001"), "{bit:#?}");
    let cond = Settings {
        cond_v4: vec![
            Cond::Addr { src: false, net: "192.0.2.0/24".parse().unwrap(), negate: true },
            Cond::Iface { input: true, name: "eth0".into(), negate: false },
        ],
        ..Settings::default()
    };
    let (_, pre) = rules(cond);
    assert!(
        pre[0].starts_with("meta nfproto ipv4 ip daddr != 192.0.2.0/24 iifname \"eth0\" fib daddr type local jump hp_n_"),
        "the conditions gate the jump, the family tested once: {pre:#?}"
    );
    assert!(pre[1].starts_with("meta nfproto ipv6 fib daddr type local jump"), "{pre:#?}");
}

#[test]
fn del_removes_the_owners_mappings_in_every_generation() {
    let mut f = FakeNft::new();
    let s = Settings::default();
    let (c1, c2) = (owner("net1", "c1"), owner("net1", "c2"));
    let m1 = [mapping(6, 8080, None, "10.1.0.2", 80), mapping(6, 8443, Some("192.0.2.1"), "10.1.0.2", 443)];
    setup(&mut f, &c1, &s, &subnet("10.1.0.2/24"), &m1).unwrap();
    setup(&mut f, &c2, &s, &subnet("10.1.0.3/24"), &[mapping(6, 8081, None, "10.1.0.3", 80)]).unwrap();
    // c1 on the same network with another interface keeps its own mapping
    let c1b = Owner::new("net1", "c1", "eth1");
    setup(&mut f, &c1b, &s, &subnet("10.1.0.4/24"), &[mapping(17, 5000, None, "10.1.0.4", 5000)]).unwrap();
    let g = generation(&f, "net1").remove(0);
    // with the mappings DEL is given: direct lookups
    assert!(teardown(&mut f, &c1, &s, &m1).unwrap());
    assert_eq!(
        els(&f, &format!("w4_net1_{g}")),
        [
            format!("tcp . 8081 : 10.1.0.3 . 80 comment \"{}\"", c2.comment()),
            format!("udp . 5000 : 10.1.0.4 . 5000 comment \"{}\"", c1b.comment()),
        ]
    );
    assert!(els(&f, &format!("h4_net1_{g}")).is_empty());
    assert!(!teardown(&mut f, &c1, &s, &m1).unwrap(), "gone is fine");
    // without them (no runtimeConfig on DEL) and under other settings: a scan finds c2's
    let other = Settings { mark_bit: 20, ..Settings::default() };
    assert!(teardown(&mut f, &c2, &other, &[]).unwrap());
    assert_eq!(els(&f, &format!("w4_net1_{g}")).len(), 1);
    assert_eq!(missing(&mut f, &c1b, &s, &[mapping(17, 5000, None, "10.1.0.4", 5000)]).unwrap(), []);
}

#[test]
fn a_host_port_another_attachment_holds_is_refused() {
    let mut f = FakeNft::new();
    let s = Settings::default();
    let live = owner("net1", "live");
    let m80 = mapping(6, 8080, None, "10.1.0.2", 80);
    setup(&mut f, &live, &s, &subnet("10.1.0.2/24"), &[m80.clone(), mapping(6, 8443, Some("192.0.2.1"), "10.1.0.2", 443)]).unwrap();
    let g = generation(&f, "net1").remove(0);
    let before = f.ruleset();
    // another container asks for 8080/tcp (and a free port): refused, nothing changes
    let new = owner("net1", "c2");
    let r = setup(
        &mut f,
        &new,
        &s,
        &subnet("10.1.0.7/24"),
        &[mapping(6, 9000, None, "10.1.0.7", 90), mapping(6, 8080, None, "10.1.0.7", 8000)],
    );
    let Err(SetupError::Held(h)) = r else { panic!("{r:?}") };
    assert_eq!(h, Held { mapping: mapping(6, 8080, None, "10.1.0.7", 8000), holder: live.comment() });
    assert_eq!(h.to_string(), "host port 8080/tcp is published for another attachment (net=net1 id=live if=eth0)");
    assert_eq!(f.ruleset(), before, "the live container keeps its port; nothing of the refused ADD is left");
    assert_eq!(els(&f, &format!("w4_net1_{g}")), [format!("tcp . 8080 : 10.1.0.2 . 80 comment \"{}\"", live.comment())]);
    // the same for a hostIP mapping; a wildcard mapping of that port is another scope
    let r = setup(&mut f, &new, &s, &subnet("10.1.0.7/24"), &[mapping(6, 8443, Some("192.0.2.1"), "10.1.0.7", 443)]);
    let Err(SetupError::Held(h)) = r else { panic!("{r:?}") };
    assert_eq!(h.to_string(), "host port 8443/tcp on 192.0.2.1 is published for another attachment (net=net1 id=live if=eth0)");
    setup(&mut f, &new, &s, &subnet("10.1.0.7/24"), &[mapping(6, 8443, None, "10.1.0.7", 443)]).unwrap();
    // the refused container's DEL (as a runtime sends after a failed ADD) leaves the holder's
    assert!(teardown(&mut f, &new, &s, std::slice::from_ref(&m80)).unwrap());
    assert_eq!(missing(&mut f, &live, &s, std::slice::from_ref(&m80)).unwrap(), [], "CHECK of the holder passes");
    // once the holder's DEL (or a GC) released it, the port is free
    assert!(teardown(&mut f, &live, &s, &[]).unwrap());
    setup(&mut f, &new, &s, &subnet("10.1.0.7/24"), &[mapping(6, 8080, None, "10.1.0.7", 8000)]).unwrap();
    assert_eq!(els(&f, &format!("w4_net1_{g}")), [format!("tcp . 8080 : 10.1.0.7 . 8000 comment \"{}\"", new.comment())]);
    // the same owner again, to another destination: replaced
    setup(&mut f, &new, &s, &subnet("10.1.0.7/24"), &[mapping(6, 8080, None, "10.1.0.7", 9000)]).unwrap();
    assert_eq!(els(&f, &format!("w4_net1_{g}")), [format!("tcp . 8080 : 10.1.0.7 . 9000 comment \"{}\"", new.comment())]);
}

#[test]
fn of_two_adds_racing_for_a_port_one_wins() {
    let mut f = FakeNft::new();
    let s = Settings::default();
    setup(&mut f, &owner("net1", "first"), &s, &subnet("10.1.0.2/24"), &[mapping(6, 81, None, "10.1.0.2", 81)]).unwrap();
    // c2's ADD of port 80 commits between c1's attempt and its look at who holds the port
    f.before_next_commit(|f| {
        setup(f, &owner("net1", "c2"), &Settings::default(), &subnet("10.1.0.3/24"), &[mapping(6, 80, None, "10.1.0.3", 80)]).unwrap()
    });
    let r = setup(&mut f, &owner("net1", "c1"), &s, &subnet("10.1.0.2/24"), &[mapping(6, 80, None, "10.1.0.2", 80)]);
    let Err(SetupError::Held(h)) = r else { panic!("{r:?}") };
    assert_eq!(h.holder, owner("net1", "c2").comment());
}

#[test]
fn gc_removes_stale_owners_then_emptied_old_generations() {
    let mut f = FakeNft::new();
    let old_settings = Settings::default();
    let new_settings = Settings { mark_bit: 14, ..Settings::default() };
    let (c1, c2) = (owner("net1", "c1"), owner("net1", "c2"));
    setup(&mut f, &c1, &old_settings, &subnet("10.1.0.2/24"), &[mapping(6, 8080, None, "10.1.0.2", 80)]).unwrap();
    // the network's settings changed: c2 gets a generation of its own, c1 keeps working in its
    setup(&mut f, &c2, &new_settings, &subnet("10.1.0.3/24"), &[mapping(6, 8081, None, "10.1.0.3", 80)]).unwrap();
    let gens = generation(&f, "net1");
    assert_eq!(gens.len(), 2);
    assert_eq!(f.rule_texts(FAM, TABLE, "prerouting").len(), 4, "both generations are jumped to");
    // another network with the same container ID, untouched by net1's GC
    setup(&mut f, &owner("net2", "c1"), &old_settings, &subnet("10.2.0.2/24"), &[mapping(6, 9000, None, "10.2.0.2", 80)]).unwrap();
    // c1 still valid: nothing goes
    let report =
        gc(&mut f, "net1", &new_settings, &valid_tags("net1", &[("c1".into(), "eth0".into()), ("c2".into(), "eth0".into())])).unwrap();
    assert_eq!((report.elements, report.generations.len()), (0, 0));
    // c1 gone: its element, then its generation, emptied, go; the current one stays although empty
    let report = gc(&mut f, "net1", &new_settings, &valid_tags("net1", &[])).unwrap();
    assert_eq!(report.elements, 2);
    assert_eq!(report.generations.len(), 1);
    let left = generation(&f, "net1");
    assert_eq!(left.len(), 1);
    assert!(f.ruleset().matches("net=net1 gen=").count() == 5, "current generation's 4 jumps and 1 masquerade rule:\n{}", f.ruleset());
    assert!(!f.ruleset().contains(&format!("net=net1 gen={}", report.generations[0])), "{}", f.ruleset());
    assert_eq!(els(&f, &format!("w4_net1_{}", left[0])), Vec::<String>::new());
    let net2 = generation(&f, "net2").remove(0);
    assert_eq!(els(&f, &format!("w4_net2_{net2}")).len(), 1);
    assert_eq!(gc(&mut f, "net1", &new_settings, &HashSet::new()).unwrap(), Default::default(), "nothing more to do");
}

#[test]
fn a_generation_set_up_concurrently_is_joined() {
    let mut f = FakeNft::new();
    let s = Settings::default();
    f.before_next_commit(move |f| {
        f.before_next_commit(move |f| {
            setup(f, &owner("net1", "other"), &Settings::default(), &subnet("10.1.0.9/24"), &[mapping(6, 81, None, "10.1.0.9", 80)])
                .unwrap();
        })
    });
    setup(&mut f, &owner("net1", "c1"), &s, &subnet("10.1.0.2/24"), &[mapping(6, 80, None, "10.1.0.2", 80)]).unwrap();
    let g = generation(&f, "net1").remove(0);
    assert_eq!(els(&f, &format!("w4_net1_{g}")).len(), 2);
    assert_eq!(f.rule_texts(FAM, TABLE, "postrouting").len(), 1, "the generation's rules exist once");
}

#[test]
fn networks_whose_names_differ_in_separators_stay_apart() {
    use netkit::owner::network_id;
    let mut f = FakeNft::new();
    let s = Settings::default();
    let t = Settings { mark_bit: 14, ..Settings::default() };
    let nets = [("a-b", &s, "10.5.1.2"), ("a.b", &t, "10.5.2.2"), ("a_b", &s, "10.5.3.2")];
    for (i, (name, settings, addr)) in nets.iter().enumerate() {
        let port = 8000 + i as u16;
        setup(&mut f, &owner(name, "c1"), settings, &subnet(&format!("{addr}/24")), &[mapping(6, port, None, addr, 80)]).unwrap();
    }
    let ids: HashSet<String> = nets.iter().map(|(n, _, _)| network_id(n)).collect();
    assert_eq!(ids.len(), 3);
    for (name, _, addr) in nets {
        let id = network_id(name);
        assert_eq!(generation(&f, &id).len(), 1, "{name}: a generation of its own");
        let sub: ipnet::IpNet = format!("{addr}/24").parse().unwrap();
        assert_eq!(els(&f, &format!("s4_{id}")), [sub.trunc().to_string()], "{name}: only its own subnet for hairpin masquerade");
    }
    // a.b's container goes: its (current) generation is empty but stays; GC of a-b must neither
    // fail on a.b's objects nor remove them
    assert!(teardown(&mut f, &owner("a.b", "c1"), &t, &[]).unwrap());
    let report = gc(&mut f, "a-b", &s, &valid_tags("a-b", &[])).unwrap();
    assert_eq!((report.elements, report.generations.len()), (1, 0));
    assert_eq!(generation(&f, &network_id("a.b")).len(), 1, "a.b's generation is a.b's GC's to judge");
    assert_eq!(gc(&mut f, "a-b", &s, &valid_tags("a-b", &[])).unwrap(), Default::default(), "and again: nothing to do, no error");
    let g = generation(&f, &network_id("a_b")).remove(0);
    assert_eq!(els(&f, &format!("w4_{}_{g}", network_id("a_b"))).len(), 1, "a_b keeps its mapping");
    assert!(missing(&mut f, &owner("a_b", "c1"), &s, &[mapping(6, 8002, None, "10.5.3.2", 80)]).unwrap().is_empty());
}

#[test]
fn the_localnet_guard_is_made_once() {
    use super::layout::{localnet_guard, LOCALNET_CHAIN};
    let mut f = FakeNft::new();
    localnet_guard(&mut f).unwrap();
    assert_eq!(
        f.log()[0],
        "add table inet rcni_hostport
add chain inet rcni_hostport localnet { type filter hook prerouting priority -150; policy accept; }
add rule inet rcni_hostport localnet meta nfproto ipv4 ip daddr 127.0.0.0/8 iifname != \"lo\" counter drop comment \"rcni portmap: loopback destination from another interface (route_localnet guard, CVE-2020-8558)\"
add rule inet rcni_hostport localnet meta nfproto ipv4 ip saddr 127.0.0.0/8 iifname != \"lo\" counter drop comment \"rcni portmap: loopback source from another interface (route_localnet guard, CVE-2020-8558)\"
"
        .replace("add chain inet rcni_hostport localnet", "create chain inet rcni_hostport localnet")
    );
    localnet_guard(&mut f).unwrap();
    assert_eq!(f.log().len(), 1, "there already: nothing to do");
    // made by another ADD between our look and our batch: joined, not doubled
    let mut f = FakeNft::new();
    f.before_next_commit(|f| localnet_guard(f).unwrap());
    localnet_guard(&mut f).unwrap();
    assert_eq!(f.rule_texts(FAM, TABLE, LOCALNET_CHAIN).len(), 2);
    // next to a network's chains
    setup(&mut f, &owner("net1", "c1"), &Settings::default(), &subnet("10.1.0.2/24"), &[mapping(6, 80, None, "10.1.0.2", 80)]).unwrap();
    assert_eq!(f.rule_texts(FAM, TABLE, LOCALNET_CHAIN).len(), 2);
}

#[test]
fn a_network_without_published_ports_is_removed_whole() {
    let mut f = FakeNft::new();
    assert!(!remove_network(&mut f, "net1").unwrap(), "no table yet");
    let (c1, c1b, c2) = (owner("net1", "c1"), owner("net1", "c1b"), owner("net2", "c2"));
    let no_snat = Settings { snat: false, ..Settings::default() };
    setup(&mut f, &c1, &no_snat, &subnet("10.1.0.0/24"), &[mapping(6, 8080, None, "10.1.0.2", 80)]).unwrap();
    // the network's settings changed between two ADDs: two generations
    setup(&mut f, &c1b, &Settings::default(), &subnet("10.1.0.0/24"), &[mapping(6, 8081, None, "10.1.0.3", 81)]).unwrap();
    setup(&mut f, &c2, &no_snat, &subnet("10.2.0.0/24"), &[mapping(6, 9090, None, "10.2.0.2", 80)]).unwrap();
    assert_eq!(generation(&f, "net1").len(), 2);
    assert!(!remove_network(&mut f, "net1").unwrap(), "a port is still published");
    teardown(&mut f, &c1, &no_snat, &[]).unwrap();
    assert!(!remove_network(&mut f, "net1").unwrap(), "the other generation still publishes one");
    teardown(&mut f, &c1b, &Settings::default(), &[]).unwrap();
    assert!(remove_network(&mut f, "net1").unwrap());
    let shown = f.ruleset();
    assert!(!shown.contains("net1"), "every generation, rule and set of net1 gone: {shown}");
    assert_eq!(generation(&f, "net2").len(), 1, "the other network's stay");
    assert!(!remove_network(&mut f, "net1").unwrap(), "once");
}

//! IP masquerade for bridge and ptp (`ipMasq`), in rcni's own `inet rcni` table.
//!
//! Per network `N`: sets `m4_N`/`m6_N` hold the containers' addresses (each element commented
//! with its owner), interval sets `d4_N`/`d6_N` the network's subnets; the base chain
//! `postrouting` sends `ip saddr @m4_N` (and v6) to chain `masq_N`, which returns for the
//! network's own subnets and multicast and masquerades the rest. A container's ADD only adds set
//! elements, so it never rebuilds or flushes what other containers use; DEL removes exactly its
//! own elements. GC removes the network's elements whose owner is not a valid attachment.

use crate::error::Result;
use crate::nft::{ip_bytes, m, BaseChain, Batch, Client, Element, ElementInfo, Expr, Family, HookPoint, SetSpec, Verdict};
use crate::owner::{is_stale, legacy_network_id, network_id, Owner};
use ipnet::IpNet;
use std::collections::HashSet;
use std::net::IpAddr;

/// rcni's nftables table (family inet).
pub const TABLE: &str = "rcni";
const FAM: Family = Family::Inet;

fn sets(n: &str) -> [(String, bool); 2] {
    [(format!("m4_{n}"), false), (format!("m6_{n}"), true)]
}

/// The address sets of `network` to search for its attachments' elements: today's, then those of
/// the naming before ids were injective (see [`legacy_network_id`]), when it differs.
fn all_sets(network: &str) -> Vec<(String, bool)> {
    let mut v = sets(&network_id(network)).to_vec();
    if let Some(old) = legacy_network_id(network) {
        v.extend(sets(&old));
    }
    v
}

fn elements(owner: &Owner, addrs: &[IpNet]) -> (Vec<Element>, Vec<Element>, Vec<Element>, Vec<Element>) {
    let (mut m4, mut m6, mut d4, mut d6) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for a in addrs {
        let el = Element::addr(a.addr()).with_comment(owner.comment());
        let net = Element::prefix(a.trunc());
        if a.addr().is_ipv4() {
            m4.push(el);
            d4.push(net);
        } else {
            m6.push(el);
            d6.push(net);
        }
    }
    (m4, m6, d4, d6)
}

fn element_batch(n: &str, owner: &Owner, addrs: &[IpNet], b: &mut Batch) {
    let (m4, m6, d4, d6) = elements(owner, addrs);
    b.create_elements(FAM, TABLE, &format!("m4_{n}"), &m4)
        .create_elements(FAM, TABLE, &format!("m6_{n}"), &m6)
        .add_elements(FAM, TABLE, &format!("d4_{n}"), &d4)
        .add_elements(FAM, TABLE, &format!("d6_{n}"), &d6);
}

fn network_batch(n: &str, network: &str, b: &mut Batch) {
    let post = BaseChain { kind: "nat", hook: HookPoint::Postrouting, priority: 100, accept: true };
    let chain = format!("masq_{n}");
    b.add_table(FAM, TABLE).add_chain(FAM, TABLE, "postrouting", Some(&post));
    for (name, v6) in sets(n) {
        b.add_set(FAM, TABLE, &SetSpec::addrs(name, v6));
    }
    b.add_set(FAM, TABLE, &SetSpec::prefixes(format!("d4_{n}"), false)).add_set(FAM, TABLE, &SetSpec::prefixes(format!("d6_{n}"), true));
    // the chain is created exclusively: if it exists, another ADD set the network up already
    b.create_chain(FAM, TABLE, &chain, None);
    for (v6, set, mcast) in [(false, format!("d4_{n}"), "224.0.0.0/4"), (true, format!("d6_{n}"), "ff00::/8")] {
        let mut own = m::addr_in_set(v6, false, &set, false);
        own.push(Expr::Verdict(Verdict::Return));
        b.add_rule(FAM, TABLE, &chain, &own, None);
        let mut mc = m::addr_in_prefix(false, mcast.parse().expect("constant prefix"), false);
        mc.push(Expr::Verdict(Verdict::Return));
        b.add_rule(FAM, TABLE, &chain, &mc, None);
    }
    b.add_rule(FAM, TABLE, &chain, &[Expr::Masquerade], Some(&format!("rcni masquerade net={network}")));
    for (set, v6) in sets(n) {
        let mut jump = m::addr_in_set(v6, true, &set, false);
        jump.push(Expr::Verdict(Verdict::Goto(chain.clone())));
        b.add_rule(FAM, TABLE, "postrouting", &jump, Some(&format!("rcni masq net={network}")));
    }
}

/// Masquerades traffic from `addrs` (the attachment's addresses with their prefixes) leaving
/// their subnets. Idempotent for the same owner; an address still recorded for another owner
/// (a leak after a crash) is taken over.
pub fn setup(nft: &mut dyn Client, owner: &Owner, addrs: &[IpNet]) -> Result<()> {
    if addrs.is_empty() {
        return Ok(());
    }
    let n = network_id(&owner.network);
    let mut fast = Batch::new();
    element_batch(&n, owner, addrs, &mut fast);
    match nft.commit(&fast) {
        Ok(()) => return Ok(()),
        Err(e) if e.is_not_found() => {
            let mut full = Batch::new();
            network_batch(&n, &owner.network, &mut full);
            element_batch(&n, owner, addrs, &mut full);
            match nft.commit(&full) {
                Ok(()) => return Ok(()),
                Err(e) if e.is_exists() => {} // set up concurrently: fall through to the retry
                Err(e) => return Err(e),
            }
        }
        Err(e) if e.is_exists() => {}
        Err(e) => return Err(e),
    }
    // Some address is already present. Keep ours, replace stale ones of other owners.
    let mut replace = Batch::new();
    for (set, v6) in sets(&n) {
        let wanted: Vec<IpAddr> = addrs.iter().map(|a| a.addr()).filter(|a| a.is_ipv6() == v6).collect();
        if wanted.is_empty() {
            continue;
        }
        let present = present(nft, &set, &wanted)?;
        let stale: Vec<Element> =
            present.iter().filter(|e| !owner.owns(e.comment.as_deref())).map(|e| Element::key(e.key.clone())).collect();
        replace.delete_elements(FAM, TABLE, &set, &stale);
        let missing: Vec<Element> = wanted
            .iter()
            .filter(|ip| !present.iter().any(|e| e.key == ip_bytes(**ip) && owner.owns(e.comment.as_deref())))
            .map(|ip| Element::addr(*ip).with_comment(owner.comment()))
            .collect();
        replace.create_elements(FAM, TABLE, &set, &missing);
    }
    let (_, _, d4, d6) = elements(owner, addrs);
    replace.add_elements(FAM, TABLE, &format!("d4_{n}"), &d4).add_elements(FAM, TABLE, &format!("d6_{n}"), &d6);
    nft.commit(&replace)
}

fn present(nft: &mut dyn Client, set: &str, ips: &[IpAddr]) -> Result<Vec<ElementInfo>> {
    let mut out = Vec::new();
    for ip in ips {
        if let Some(e) = nft.get_element(FAM, TABLE, set, &ip_bytes(*ip))? {
            out.push(e);
        }
    }
    Ok(out)
}

/// Removes the attachment's masquerade: the set elements it owns. `hint` (its addresses from
/// prevResult) makes this a direct lookup; without it, or when the hint finds nothing of the
/// owner's, the network's sets are scanned. Returns whether anything was deleted.
pub fn teardown(nft: &mut dyn Client, owner: &Owner, hint: &[IpAddr]) -> Result<bool> {
    let n = network_id(&owner.network);
    let mut b = Batch::new();
    // with a hint, today's sets (an attachment made before an upgrade is found by the scan)
    let scan = if hint.is_empty() { all_sets(&owner.network) } else { sets(&n).to_vec() };
    for (set, v6) in scan {
        let wanted: Vec<IpAddr> = hint.iter().copied().filter(|a| a.is_ipv6() == v6).collect();
        let candidates = if hint.is_empty() { nft.elements(FAM, TABLE, &set)? } else { present(nft, &set, &wanted)? };
        let mine: Vec<Element> = candidates.into_iter().filter(|e| owner.owns(e.comment.as_deref())).map(|e| Element::key(e.key)).collect();
        b.delete_elements(FAM, TABLE, &set, &mine);
    }
    if b.is_empty() && !hint.is_empty() {
        // the addresses in prevResult are not ours (or gone): look for anything else we own
        return teardown(nft, owner, &[]);
    }
    if b.is_empty() {
        return Ok(false);
    }
    nft.commit(&b)?;
    Ok(true)
}

/// GC: removes the set elements of `network` whose owner's tag is not in `valid_tags`, in one
/// batch. Returns how many were removed.
pub fn gc(nft: &mut dyn Client, network: &str, valid_tags: &HashSet<String>) -> Result<usize> {
    let mut b = Batch::new();
    let mut count = 0;
    for (set, _) in all_sets(network) {
        let stale: Vec<Element> = nft
            .elements(FAM, TABLE, &set)?
            .into_iter()
            .filter(|e| is_stale(e.comment.as_deref(), network, valid_tags))
            .map(|e| Element::key(e.key))
            .collect();
        count += stale.len();
        b.delete_elements(FAM, TABLE, &set, &stale);
    }
    nft.commit(&b)?;
    Ok(count)
}

/// Removes `network`'s own objects — its jump rules, chain and sets — once none of its address
/// sets holds an element (no attachment uses them); says whether there was anything to remove.
/// For `rcni network rm`, after the network's last attachment. Objects of the earlier naming
/// (several networks may share them) stay.
pub fn remove_network(nft: &mut dyn Client, network: &str) -> Result<bool> {
    let n = network_id(network);
    let present = match nft.sets(FAM, TABLE) {
        Ok(s) => s,
        Err(e) if e.is_not_found() => return Ok(false),
        Err(e) => return Err(e),
    };
    if !present.contains(&format!("m4_{n}")) {
        return Ok(false);
    }
    for (set, _) in sets(&n) {
        if !nft.elements(FAM, TABLE, &set)?.is_empty() {
            return Ok(false);
        }
    }
    let mut b = Batch::new();
    for r in nft.rules(FAM, TABLE, "postrouting")? {
        if r.comment.as_deref() == Some(&format!("rcni masq net={network}")) {
            b.delete_rule(FAM, TABLE, "postrouting", r.handle);
        }
    }
    let chain = format!("masq_{n}");
    b.flush_chain(FAM, TABLE, &chain).delete_chain(FAM, TABLE, &chain);
    for set in [format!("m4_{n}"), format!("m6_{n}"), format!("d4_{n}"), format!("d6_{n}")] {
        b.delete_set(FAM, TABLE, &set);
    }
    nft.commit(&b)?;
    Ok(true)
}

/// The addresses an owner has masqueraded (for CHECK).
pub fn owned_addresses(nft: &mut dyn Client, owner: &Owner) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for (set, _) in all_sets(&owner.network) {
        out.extend(nft.elements(FAM, TABLE, &set)?.into_iter().filter(|e| owner.owns(e.comment.as_deref())).map(|e| e.key));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! The layout on the in-memory nftables (`FakeNft`); `tests/tests/nft.rs` runs the same
    //! operations on the kernel and compares.
    use super::*;
    use crate::nft::FakeNft;
    use crate::owner::valid_tags;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn elems(f: &FakeNft, set: &str) -> Vec<String> {
        f.element_texts(FAM, TABLE, set)
    }

    const C1: &str = "rcni:4896244deebc8247 net=net1 id=c1 if=eth0";
    const C2: &str = "rcni:08921392f60f52cc net=net1 id=c2 if=eth0";

    /// c1 dual-stack and c2 IPv4 on network net1.
    fn two_containers() -> FakeNft {
        let mut f = FakeNft::new();
        setup(&mut f, &Owner::new("net1", "c1", "eth0"), &[net("10.1.0.2/24"), net("fd00:1::2/64")]).unwrap();
        setup(&mut f, &Owner::new("net1", "c2", "eth0"), &[net("10.1.0.3/24")]).unwrap();
        f
    }

    #[test]
    fn first_add_sets_the_network_up_later_ones_add_elements() {
        let f = two_containers();
        assert_eq!(
            f.log()[0],
            format!(
                "add table inet rcni
add chain inet rcni postrouting {{ type nat hook postrouting priority 100; policy accept; }}
add set inet rcni m4_net1 {{ type ipv4_addr; }}
add set inet rcni m6_net1 {{ type ipv6_addr; }}
add set inet rcni d4_net1 {{ type ipv4_addr; flags interval; }}
add set inet rcni d6_net1 {{ type ipv6_addr; flags interval; }}
create chain inet rcni masq_net1
add rule inet rcni masq_net1 meta nfproto ipv4 ip daddr @d4_net1 return
add rule inet rcni masq_net1 meta nfproto ipv4 ip daddr 224.0.0.0/4 return
add rule inet rcni masq_net1 meta nfproto ipv6 ip6 daddr @d6_net1 return
add rule inet rcni masq_net1 meta nfproto ipv6 ip6 daddr ff00::/8 return
add rule inet rcni masq_net1 masquerade comment \"rcni masquerade net=net1\"
add rule inet rcni postrouting meta nfproto ipv4 ip saddr @m4_net1 goto masq_net1 comment \"rcni masq net=net1\"
add rule inet rcni postrouting meta nfproto ipv6 ip6 saddr @m6_net1 goto masq_net1 comment \"rcni masq net=net1\"
create element inet rcni m4_net1 {{ 10.1.0.2 comment \"{C1}\" }}
create element inet rcni m6_net1 {{ fd00:1::2 comment \"{C1}\" }}
add element inet rcni d4_net1 {{ 10.1.0.0/24 }}
add element inet rcni d6_net1 {{ fd00:1::/64 }}
"
            )
        );
        // the second container touches no rule: one batch, elements only
        assert_eq!(
            f.log()[1],
            format!("create element inet rcni m4_net1 {{ 10.1.0.3 comment \"{C2}\" }}\nadd element inet rcni d4_net1 {{ 10.1.0.0/24 }}\n")
        );
        assert_eq!(f.log().len(), 2);
        assert_eq!(elems(&f, "m4_net1"), [format!("10.1.0.2 comment \"{C1}\""), format!("10.1.0.3 comment \"{C2}\"")]);
    }

    #[test]
    fn a_repeated_add_changes_nothing() {
        let mut f = two_containers();
        let before = f.ruleset();
        setup(&mut f, &Owner::new("net1", "c1", "eth0"), &[net("10.1.0.2/24"), net("fd00:1::2/64")]).unwrap();
        assert_eq!(f.ruleset(), before);
        assert!(setup(&mut f, &Owner::new("net1", "c9", "eth0"), &[]).is_ok(), "no addresses, nothing to do");
        assert_eq!(f.ruleset(), before);
    }

    #[test]
    fn del_removes_exactly_the_owners_elements() {
        let mut f = two_containers();
        let c1 = Owner::new("net1", "c1", "eth0");
        // with prevResult's addresses: direct lookups
        assert!(teardown(&mut f, &c1, &[ip("10.1.0.2"), ip("fd00:1::2")]).unwrap());
        assert_eq!(elems(&f, "m4_net1"), [format!("10.1.0.3 comment \"{C2}\"")]);
        assert!(elems(&f, "m6_net1").is_empty());
        assert!(!teardown(&mut f, &c1, &[ip("10.1.0.2")]).unwrap(), "a second DEL finds nothing and fails nothing");
        // the network's rules stay for the other container
        assert_eq!(f.rule_texts(FAM, TABLE, "masq_net1").len(), 5);
    }

    #[test]
    fn del_without_or_with_a_wrong_hint_scans_for_the_owner() {
        let mut f = two_containers();
        let c1 = Owner::new("net1", "c1", "eth0");
        assert!(teardown(&mut f, &c1, &[]).unwrap(), "no prevResult");
        assert_eq!(elems(&f, "m4_net1"), [format!("10.1.0.3 comment \"{C2}\"")]);
        assert!(elems(&f, "m6_net1").is_empty());
        // a hint naming c2's address (a stale prevResult) must not remove c2's element
        let mut f = two_containers();
        assert!(teardown(&mut f, &c1, &[ip("10.1.0.3")]).unwrap());
        assert_eq!(elems(&f, "m4_net1"), [format!("10.1.0.3 comment \"{C2}\"")]);
    }

    #[test]
    fn an_address_leaked_by_another_owner_is_taken_over() {
        let mut f = two_containers();
        // c1 crashed without DEL; its address goes to c3
        let c3 = Owner::new("net1", "c3", "eth0");
        setup(&mut f, &c3, &[net("10.1.0.2/24")]).unwrap();
        let els = elems(&f, "m4_net1");
        assert_eq!(els.len(), 2);
        assert!(els[0].starts_with("10.1.0.2 comment \"rcni:") && els[0].ends_with("id=c3 if=eth0\""), "{els:?}");
        assert_eq!(owned_addresses(&mut f, &c3).unwrap(), [vec![10, 1, 0, 2]]);
        // c1's other element is still c1's: a DEL of c1 removes it and not c3's
        teardown(&mut f, &Owner::new("net1", "c1", "eth0"), &[]).unwrap();
        assert!(elems(&f, "m6_net1").is_empty());
        assert_eq!(elems(&f, "m4_net1").len(), 2);
    }

    #[test]
    fn gc_removes_stale_owners_of_its_network_only() {
        let mut f = two_containers();
        // the same container ID on another network, which GC of net1 must not touch
        setup(&mut f, &Owner::new("net2", "c1", "eth0"), &[net("10.2.0.2/24")]).unwrap();
        let valid = valid_tags("net1", &[("c2".to_string(), "eth0".to_string())]);
        assert_eq!(gc(&mut f, "net1", &valid).unwrap(), 2, "c1's v4 and v6 elements");
        assert_eq!(elems(&f, "m4_net1"), [format!("10.1.0.3 comment \"{C2}\"")]);
        assert!(elems(&f, "m6_net1").is_empty());
        assert_eq!(elems(&f, "m4_net2").len(), 1);
        assert_eq!(gc(&mut f, "net1", &valid).unwrap(), 0);
        // an empty valid list clears the network
        assert_eq!(gc(&mut f, "net2", &HashSet::new()).unwrap(), 1);
        assert!(elems(&f, "m4_net2").is_empty());
    }

    #[test]
    fn networks_side_by_side_are_independent() {
        let mut f = two_containers();
        setup(&mut f, &Owner::new("net2", "c5", "eth1"), &[net("10.2.0.5/16")]).unwrap();
        assert_eq!(f.chains(FAM, TABLE), ["postrouting", "masq_net1", "masq_net2"]);
        assert_eq!(f.rule_texts(FAM, TABLE, "postrouting").len(), 4);
        assert_eq!(elems(&f, "d4_net2"), ["10.2.0.0/16"]);
        let before = f.rule_texts(FAM, TABLE, "masq_net2");
        teardown(&mut f, &Owner::new("net1", "c1", "eth0"), &[]).unwrap();
        teardown(&mut f, &Owner::new("net1", "c2", "eth0"), &[]).unwrap();
        assert_eq!(f.rule_texts(FAM, TABLE, "masq_net2"), before);
        assert_eq!(elems(&f, "m4_net2").len(), 1);
    }

    #[test]
    fn a_network_set_up_concurrently_is_joined() {
        let mut f = FakeNft::new();
        // another ADD of the same network commits between our two batches: our network batch
        // then fails on the exclusive chain, and our elements go in on their own
        f.before_next_commit(|f| f.before_next_commit(|f| setup(f, &Owner::new("net1", "other", "eth0"), &[net("10.1.0.9/24")]).unwrap()));
        setup(&mut f, &Owner::new("net1", "c1", "eth0"), &[net("10.1.0.2/24")]).unwrap();
        assert_eq!(elems(&f, "m4_net1").len(), 2);
        assert_eq!(f.chains(FAM, TABLE), ["postrouting", "masq_net1"]);
        assert_eq!(f.rule_texts(FAM, TABLE, "postrouting").len(), 2, "the network's rules exist once");
    }

    #[test]
    fn networks_whose_names_differ_in_separators_stay_apart() {
        let mut f = FakeNft::new();
        let nets = [("a-b", "10.5.1.2/24"), ("a.b", "10.5.2.2/24"), ("a_b", "10.5.3.2/24")];
        for (name, addr) in nets {
            setup(&mut f, &Owner::new(name, "c1", "eth0"), &[net(addr)]).unwrap();
            setup(&mut f, &Owner::new(name, "c2", "eth0"), &[net(&addr.replace(".2/", ".3/"))]).unwrap();
        }
        let ids: HashSet<String> = nets.iter().map(|(n, _)| network_id(n)).collect();
        assert_eq!(ids.len(), 3);
        assert_eq!(f.chains(FAM, TABLE).len(), 4, "postrouting and one chain per network: {:?}", f.chains(FAM, TABLE));
        for (name, addr) in nets {
            let sub: IpNet = net(addr).trunc();
            assert_eq!(elems(&f, &format!("d4_{}", network_id(name))), [sub.to_string()], "{name}: only its own subnet");
            assert_eq!(elems(&f, &format!("m4_{}", network_id(name))).len(), 2, "{name}");
        }
        // GC of one network takes its elements only
        assert_eq!(gc(&mut f, "a-b", &HashSet::new()).unwrap(), 2);
        assert!(elems(&f, &format!("m4_{}", network_id("a-b"))).is_empty());
        for other in ["a.b", "a_b"] {
            assert_eq!(elems(&f, &format!("m4_{}", network_id(other))).len(), 2, "{other} keeps its elements");
        }
        assert!(teardown(&mut f, &Owner::new("a.b", "c1", "eth0"), &[]).unwrap());
        assert_eq!(owned_addresses(&mut f, &Owner::new("a_b", "c1", "eth0")).unwrap(), [vec![10, 5, 3, 2]]);
    }

    #[test]
    fn attachments_made_under_the_earlier_naming_are_found() {
        // before ids were injective, a-b and a.b shared the objects named a_b
        let mut f = FakeNft::new();
        let (old_ab, old_adotb) = (Owner::new("a-b", "c1", "eth0"), Owner::new("a.b", "c2", "eth0"));
        for (o, addr) in [(&old_ab, "10.6.1.2/24"), (&old_adotb, "10.6.2.2/24")] {
            let mut b = Batch::new();
            network_batch("a_b", &o.network, &mut b);
            element_batch("a_b", o, &[net(addr)], &mut b);
            let _ = f.commit(&b); // the second network's chain exists already
            let mut b = Batch::new();
            element_batch("a_b", o, &[net(addr)], &mut b);
            let _ = f.commit(&b);
        }
        assert_eq!(elems(&f, "m4_a_b").len(), 2);
        // after the upgrade: new attachments go to the networks' own objects
        let new_ab = Owner::new("a-b", "c3", "eth0");
        setup(&mut f, &new_ab, &[net("10.6.1.3/24")]).unwrap();
        assert_eq!(elems(&f, "m4_a-b").len(), 1);
        // CHECK, DEL (prevResult's address: not in today's set, so a scan) and GC find the old ones
        assert_eq!(owned_addresses(&mut f, &old_ab).unwrap(), [vec![10, 6, 1, 2]]);
        assert!(teardown(&mut f, &old_ab, &[ip("10.6.1.2")]).unwrap());
        assert_eq!(elems(&f, "m4_a_b").len(), 1, "a.b's old element stays");
        assert_eq!(elems(&f, "m4_a-b").len(), 1, "the new attachment stays");
        assert_eq!(gc(&mut f, "a.b", &HashSet::new()).unwrap(), 1);
        assert!(elems(&f, "m4_a_b").is_empty());
        assert_eq!(elems(&f, "m4_a-b").len(), 1, "another network's GC");
        // a network whose name was always its id (a_b) is not scanned twice
        setup(&mut f, &Owner::new("a_b", "c4", "eth0"), &[net("10.6.3.2/24")]).unwrap();
        assert_eq!(gc(&mut f, "a_b", &HashSet::new()).unwrap(), 1);
    }

    #[test]
    fn a_network_without_attachments_is_removed_whole() {
        let mut f = FakeNft::new();
        assert!(!remove_network(&mut f, "net1").unwrap(), "no table yet");
        let (c1, c2) = (Owner::new("net1", "c1", "eth0"), Owner::new("net2", "c2", "eth0"));
        setup(&mut f, &c1, &[net("10.1.0.2/24")]).unwrap();
        setup(&mut f, &c2, &[net("10.2.0.2/24")]).unwrap();
        assert!(!remove_network(&mut f, "net1").unwrap(), "an attachment still uses it");
        teardown(&mut f, &c1, &[]).unwrap();
        assert!(remove_network(&mut f, "net1").unwrap());
        let shown = f.ruleset();
        assert!(!shown.contains("net1") && !shown.contains("masq_net1"), "{shown}");
        assert!(shown.contains("masq_net2"), "the other network's stay: {shown}");
        assert_eq!(elems(&f, "m4_net2").len(), 1);
        assert!(!remove_network(&mut f, "net1").unwrap(), "once");
        // and the network can be set up again
        setup(&mut f, &c1, &[net("10.1.0.3/24")]).unwrap();
        assert_eq!(elems(&f, "m4_net1").len(), 1);
    }

    #[test]
    fn network_names_become_object_names() {
        let mut f = FakeNft::new();
        setup(&mut f, &Owner::new("my-net.1", "c1", "eth0"), &[net("10.3.0.2/24")]).unwrap();
        assert!(f.chains(FAM, TABLE).contains(&"masq_my-net.1".to_string()), "{:?}", f.chains(FAM, TABLE));
        let long = "n".repeat(60);
        setup(&mut f, &Owner::new(&long, "c1", "eth0"), &[net("10.4.0.2/24")]).unwrap();
        let id = network_id(&long);
        assert!(id.len() <= 20, "{id}");
        assert_eq!(elems(&f, &format!("m4_{id}")).len(), 1);
    }
}

//! The firewall's nftables layout (its default backend), in rcni's own table `inet rcni_firewall`.
//!
//! - sets `c4`/`c6`: the containers' addresses, each element commented with its owner tag, the
//!   bridge it sits on and its network (`rcni:<hash> br=<bridge> net=<network>`);
//! - base chain `forward` (filter, priority filter): `jump isolation`, `jump admin`, then
//!   `ct state established,related` to a container accepted, and anything from a container;
//! - chain `admin`: the operators' own rules; rcni creates it and never touches it again;
//! - chain `isolation` (ingressPolicy): for each bridge with policy `same-bridge` or
//!   `isolated`, traffic from it to another such bridge (set `iso_br`) is dropped, and with
//!   `isolated` also traffic between two ports of the bridge. These go with the bridge's last
//!   container.
//!
//! A container's ADD adds set elements (and, for a bridge's first isolated container, its
//! isolation rules); DEL removes exactly the attachment's elements.

use super::Ingress;
use netkit::nft::{
    ifname_bytes, ip_bytes, m, BaseChain, Batch, Client, CmpOp, Element, ElementInfo, Expr, Family, HookPoint, MetaKind, SetSpec, Verdict,
};
use netkit::owner::Owner;
use netkit::Result;
use std::net::IpAddr;

/// rcni's firewall table (family inet).
pub const TABLE: &str = "rcni_firewall";
const FAM: Family = Family::Inet;
const ISO_SET: &str = "iso_br";

fn set_of(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "c4"
    } else {
        "c6"
    }
}

fn comment(owner: &Owner, bridge: &str) -> String {
    let mut c = format!("{} br={bridge} net={}", owner.tag(), owner.network);
    if c.len() > 127 {
        let mut cut = 127;
        while !c.is_char_boundary(cut) {
            cut -= 1;
        }
        c.truncate(cut);
    }
    c
}

fn bridge_of(comment: Option<&str>) -> Option<String> {
    comment?.split(' ').find_map(|w| w.strip_prefix("br=")).filter(|b| !b.is_empty()).map(String::from)
}

fn iso_comment(bridge: &str) -> String {
    format!("rcni isolation br={bridge}")
}

fn table_batch(b: &mut Batch) {
    let fwd = BaseChain { kind: "filter", hook: HookPoint::Forward, priority: 0, accept: true };
    b.add_table(FAM, TABLE);
    b.add_set(FAM, TABLE, &SetSpec::addrs("c4", false)).add_set(FAM, TABLE, &SetSpec::addrs("c6", true));
    b.add_set(FAM, TABLE, &SetSpec::ifnames(ISO_SET));
    b.add_chain(FAM, TABLE, "admin", None).add_chain(FAM, TABLE, "isolation", None);
    // exclusive: the forward chain exists once its rules do
    b.create_chain(FAM, TABLE, "forward", Some(&fwd));
    b.add_rule(FAM, TABLE, "forward", &[Expr::Verdict(Verdict::Jump("isolation".into()))], Some("rcni firewall ingress policies"));
    b.add_rule(FAM, TABLE, "forward", &[Expr::Verdict(Verdict::Jump("admin".into()))], Some("rcni firewall admin overrides"));
    for v6 in [false, true] {
        let set = if v6 { "c6" } else { "c4" };
        let mut est = m::addr_in_set(v6, false, set, false);
        est.extend([
            Expr::CtState { reg: 1 },
            // established (2) | related (4)
            Expr::Bitwise { reg: 1, len: 4, mask: 6u32.to_ne_bytes().to_vec(), xor: vec![0; 4] },
            Expr::Cmp { op: CmpOp::Ne, reg: 1, data: vec![0; 4] },
            Expr::Verdict(Verdict::Accept),
        ]);
        b.add_rule(FAM, TABLE, "forward", &est, Some("rcni firewall: replies to containers"));
        let mut from = m::addr_in_set(v6, true, set, false);
        from.push(Expr::Verdict(Verdict::Accept));
        b.add_rule(FAM, TABLE, "forward", &from, Some("rcni firewall: from containers"));
    }
}

fn iso_rules(b: &mut Batch, bridge: &str, policy: Ingress) {
    let c = iso_comment(bridge);
    // from this bridge to another isolated bridge
    let mut r = m::ifname(true, bridge, false);
    r.extend(m::ifname(false, bridge, true));
    r.extend([
        Expr::Meta { key: MetaKind::Oifname, reg: 1 },
        Expr::Lookup { set: ISO_SET.into(), reg: 1, invert: false },
        Expr::Verdict(Verdict::Drop),
    ]);
    b.add_rule(FAM, TABLE, "isolation", &r, Some(&c));
    if policy == Ingress::Isolated {
        let mut r = m::ifname(true, bridge, false);
        r.extend(m::ifname(false, bridge, false));
        r.push(Expr::Verdict(Verdict::Drop));
        b.add_rule(FAM, TABLE, "isolation", &r, Some(&c));
    }
    b.add_elements(FAM, TABLE, ISO_SET, &[Element::key(ifname_bytes(bridge))]);
}

/// Accepts forwarded traffic from `addrs` and replies to them; applies `policy` to `bridge`.
pub fn setup(nft: &mut dyn Client, owner: &Owner, bridge: &str, addrs: &[IpAddr], policy: Ingress) -> Result<()> {
    let iso_needed = policy != Ingress::Open && !bridge.is_empty();
    // the bridge's `iso_br` element comes and goes in the same batches as its isolation rules
    let has_iso = |nft: &mut dyn Client| -> Result<bool> { Ok(nft.get_element(FAM, TABLE, ISO_SET, &ifname_bytes(bridge))?.is_some()) };
    let c = comment(owner, bridge);
    let elements = |b: &mut Batch| {
        for ip in addrs {
            b.create_elements(FAM, TABLE, set_of(*ip), &[Element::addr(*ip).with_comment(c.clone())]);
        }
    };
    let mut fast = Batch::new();
    elements(&mut fast);
    if iso_needed && !has_iso(nft)? {
        iso_rules(&mut fast, bridge, policy);
    }
    match nft.commit(&fast) {
        Ok(()) => return Ok(()),
        Err(e) if e.is_not_found() => {
            let mut full = Batch::new();
            table_batch(&mut full);
            elements(&mut full);
            if iso_needed {
                iso_rules(&mut full, bridge, policy);
            }
            match nft.commit(&full) {
                Ok(()) => return Ok(()),
                Err(e) if e.is_exists() => {}
                Err(e) => return Err(e),
            }
        }
        Err(e) if e.is_exists() => {}
        Err(e) => return Err(e),
    }
    // an address is present already (ours from a repeated ADD, or another owner's leak): take it
    let mut b = Batch::new();
    for ip in addrs {
        if let Some(e) = nft.get_element(FAM, TABLE, set_of(*ip), &ip_bytes(*ip))? {
            b.delete_elements(FAM, TABLE, set_of(*ip), &[Element::key(e.key)]);
        }
        b.create_elements(FAM, TABLE, set_of(*ip), &[Element::addr(*ip).with_comment(c.clone())]);
    }
    if iso_needed && !has_iso(nft)? {
        iso_rules(&mut b, bridge, policy);
    }
    nft.commit(&b)
}

/// Removes the attachment's addresses (direct lookups with `hint`, else a scan), and the
/// isolation rules of its bridge when it was the bridge's last container. Returns whether
/// anything was deleted.
pub fn teardown(nft: &mut dyn Client, owner: &Owner, hint: &[IpAddr]) -> Result<bool> {
    let mut mine: Vec<(String, ElementInfo)> = Vec::new();
    for ip in hint {
        if let Some(e) = nft.get_element(FAM, TABLE, set_of(*ip), &ip_bytes(*ip))? {
            if owner.owns(e.comment.as_deref()) {
                mine.push((set_of(*ip).into(), e));
            }
        }
    }
    if mine.is_empty() {
        for set in ["c4", "c6"] {
            mine.extend(
                nft.elements(FAM, TABLE, set)?.into_iter().filter(|e| owner.owns(e.comment.as_deref())).map(|e| (set.to_string(), e)),
            );
        }
    }
    if mine.is_empty() {
        return Ok(false);
    }
    remove(nft, &mine)?;
    Ok(true)
}

/// Deletes `doomed` (set, element) in one batch, with the isolation rules of every bridge that
/// keeps no other container.
fn remove(nft: &mut dyn Client, doomed: &[(String, ElementInfo)]) -> Result<()> {
    let mut b = Batch::new();
    let mut bridges: Vec<String> = Vec::new();
    for (set, e) in doomed {
        if let Some(br) = bridge_of(e.comment.as_deref()) {
            if !bridges.contains(&br) {
                bridges.push(br);
            }
        }
        b.delete_elements(FAM, TABLE, set, &[Element::key(e.key.clone())]);
    }
    let is_doomed = |set: &str, e: &ElementInfo| doomed.iter().any(|(s, d)| s == set && d.key == e.key);
    // one dump of the rules and of the address sets, whichever number of bridges
    let iso_rules: Vec<_> = if bridges.is_empty() { Vec::new() } else { nft.rules(FAM, TABLE, "isolation")? };
    let isolated = |br: &String| iso_rules.iter().any(|r| r.comment.as_deref() == Some(iso_comment(br).as_str()));
    let mut remaining: Vec<(&str, ElementInfo)> = Vec::new();
    if bridges.iter().any(isolated) {
        for set in ["c4", "c6"] {
            remaining.extend(nft.elements(FAM, TABLE, set)?.into_iter().filter(|e| !is_doomed(set, e)).map(|e| (set, e)));
        }
    }
    for br in bridges {
        let c = iso_comment(&br);
        let rules: Vec<_> = iso_rules.iter().filter(|r| r.comment.as_deref() == Some(c.as_str())).collect();
        if rules.is_empty() {
            continue;
        }
        let others = remaining.iter().any(|(_, e)| bridge_of(e.comment.as_deref()).as_deref() == Some(br.as_str()));
        if !others {
            for r in rules {
                b.delete_rule(FAM, TABLE, "isolation", r.handle);
            }
            b.delete_elements(FAM, TABLE, ISO_SET, &[Element::key(ifname_bytes(&br))]);
        }
    }
    nft.commit(&b)
}

/// GC: removes the addresses of `network`'s attachments whose owner tag is not in `valid`
/// (and isolation rules left without a container). Elements of other networks, and any
/// element without rcni's comment, stay. Returns how many addresses were removed.
pub fn gc(nft: &mut dyn Client, network: &str, valid: &std::collections::HashSet<String>) -> Result<usize> {
    let mut doomed: Vec<(String, ElementInfo)> = Vec::new();
    for set in ["c4", "c6"] {
        for e in nft.elements(FAM, TABLE, set)? {
            let Some(c) = e.comment.as_deref() else { continue };
            if c.len() >= 127 {
                continue; // cut to nft's limit: its network may be cut too
            }
            let mut words = c.split(' ');
            let tag = words.next().unwrap_or_default();
            let net = words.find_map(|w| w.strip_prefix("net="));
            if tag.starts_with("rcni:") && net == Some(network) && !valid.contains(tag) {
                doomed.push((set.to_string(), e));
            }
        }
    }
    if !doomed.is_empty() {
        remove(nft, &doomed)?;
    }
    Ok(doomed.len())
}

/// The addresses of `addrs` not accepted for `owner` (for CHECK).
pub fn missing(nft: &mut dyn Client, owner: &Owner, addrs: &[IpAddr]) -> Result<Vec<IpAddr>> {
    let mut out = Vec::new();
    for ip in addrs {
        let e = nft.get_element(FAM, TABLE, set_of(*ip), &ip_bytes(*ip))?;
        if !e.is_some_and(|e| owner.owns(e.comment.as_deref())) {
            out.push(*ip);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_comments_carry_owner_bridge_and_network() {
        let o = Owner::new("net1", "c1", "eth0");
        let c = comment(&o, "cni0");
        assert!(o.owns(Some(&c)));
        assert_eq!(bridge_of(Some(&c)).as_deref(), Some("cni0"));
        assert!(c.ends_with("net=net1"));
        let long = Owner::new(&"n".repeat(200), "c1", "eth0");
        let c = comment(&long, "cni0");
        assert_eq!(c.len(), 127);
        assert_eq!(bridge_of(Some(&c)).as_deref(), Some("cni0"));
        assert_eq!(bridge_of(Some(&comment(&o, ""))), None);
    }
}

#[cfg(test)]
mod layout_tests {
    //! The layout on the in-memory nftables; `tests/tests/meta.rs` proves the kernel agrees.
    use super::*;
    use netkit::nft::FakeNft;
    use netkit::owner::valid_tags;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn o(net: &str, id: &str) -> Owner {
        Owner::new(net, id, "eth0")
    }

    fn iso(f: &FakeNft) -> Vec<String> {
        f.rule_texts(FAM, TABLE, "isolation")
    }

    #[test]
    fn first_add_makes_the_table_later_ones_add_addresses() {
        let mut f = FakeNft::new();
        setup(&mut f, &o("net1", "c1"), "br1", &[ip("10.1.0.2")], Ingress::Isolated).unwrap();
        setup(&mut f, &o("net1", "c2"), "br1", &[ip("10.1.0.3"), ip("fd00:1::3")], Ingress::Isolated).unwrap();
        assert_eq!(
            f.log()[0],
            "add table inet rcni_firewall
add set inet rcni_firewall c4 { type ipv4_addr; }
add set inet rcni_firewall c6 { type ipv6_addr; }
add set inet rcni_firewall iso_br { type ifname; }
add chain inet rcni_firewall admin
add chain inet rcni_firewall isolation
create chain inet rcni_firewall forward { type filter hook forward priority 0; policy accept; }
add rule inet rcni_firewall forward jump isolation comment \"rcni firewall ingress policies\"
add rule inet rcni_firewall forward jump admin comment \"rcni firewall admin overrides\"
add rule inet rcni_firewall forward meta nfproto ipv4 ip daddr @c4 ct state established,related accept comment \"rcni firewall: replies to containers\"
add rule inet rcni_firewall forward meta nfproto ipv4 ip saddr @c4 accept comment \"rcni firewall: from containers\"
add rule inet rcni_firewall forward meta nfproto ipv6 ip6 daddr @c6 ct state established,related accept comment \"rcni firewall: replies to containers\"
add rule inet rcni_firewall forward meta nfproto ipv6 ip6 saddr @c6 accept comment \"rcni firewall: from containers\"
create element inet rcni_firewall c4 { 10.1.0.2 comment \"rcni:4896244deebc8247 br=br1 net=net1\" }
add rule inet rcni_firewall isolation iifname \"br1\" oifname != \"br1\" oifname @iso_br drop comment \"rcni isolation br=br1\"
add rule inet rcni_firewall isolation iifname \"br1\" oifname \"br1\" drop comment \"rcni isolation br=br1\"
add element inet rcni_firewall iso_br { \"br1\" }
"
        );
        // the bridge is isolated already: addresses only
        assert_eq!(
            f.log()[1],
            "create element inet rcni_firewall c4 { 10.1.0.3 comment \"rcni:08921392f60f52cc br=br1 net=net1\" }
create element inet rcni_firewall c6 { fd00:1::3 comment \"rcni:08921392f60f52cc br=br1 net=net1\" }
"
        );
        assert_eq!(f.log().len(), 2);
        assert!(missing(&mut f, &o("net1", "c2"), &[ip("10.1.0.3"), ip("fd00:1::3")]).unwrap().is_empty());
        assert_eq!(missing(&mut f, &o("net1", "c2"), &[ip("10.1.0.2")]).unwrap(), [ip("10.1.0.2")], "c1's address is not c2's");
    }

    #[test]
    fn isolation_goes_with_the_bridges_last_container() {
        let mut f = FakeNft::new();
        setup(&mut f, &o("net1", "c1"), "br1", &[ip("10.1.0.2")], Ingress::Isolated).unwrap();
        setup(&mut f, &o("net1", "c2"), "br1", &[ip("10.1.0.3")], Ingress::Isolated).unwrap();
        setup(&mut f, &o("net2", "c3"), "br2", &[ip("10.2.0.2")], Ingress::SameBridge).unwrap();
        setup(&mut f, &o("net3", "c4"), "br3", &[ip("10.3.0.2")], Ingress::Open).unwrap();
        assert_eq!(
            iso(&f),
            [
                "iifname \"br1\" oifname != \"br1\" oifname @iso_br drop comment \"rcni isolation br=br1\"",
                "iifname \"br1\" oifname \"br1\" drop comment \"rcni isolation br=br1\"",
                "iifname \"br2\" oifname != \"br2\" oifname @iso_br drop comment \"rcni isolation br=br2\"",
            ],
            "isolated: two rules, same-bridge: one, open: none"
        );
        assert_eq!(f.element_texts(FAM, TABLE, ISO_SET), ["\"br1\"", "\"br2\""]);
        // by prevResult's address
        assert!(teardown(&mut f, &o("net1", "c1"), &[ip("10.1.0.2")]).unwrap());
        assert_eq!(iso(&f).len(), 3, "c2 is still on br1");
        // without a hint: a scan
        assert!(teardown(&mut f, &o("net1", "c2"), &[]).unwrap());
        assert_eq!(iso(&f), ["iifname \"br2\" oifname != \"br2\" oifname @iso_br drop comment \"rcni isolation br=br2\""]);
        assert_eq!(f.element_texts(FAM, TABLE, ISO_SET), ["\"br2\""]);
        assert!(!teardown(&mut f, &o("net1", "c2"), &[]).unwrap(), "gone is fine");
        // the bridge's next container isolates it again
        setup(&mut f, &o("net1", "c5"), "br1", &[ip("10.1.0.5")], Ingress::Isolated).unwrap();
        assert_eq!(iso(&f).len(), 3);
        assert_eq!(f.element_texts(FAM, "rcni_firewall", "c4").len(), 3);
    }

    #[test]
    fn an_address_leaked_by_another_owner_is_taken_over() {
        let mut f = FakeNft::new();
        setup(&mut f, &o("net1", "crashed"), "br1", &[ip("10.1.0.2")], Ingress::Open).unwrap();
        let new = o("net1", "c2");
        setup(&mut f, &new, "br1", &[ip("10.1.0.2")], Ingress::Open).unwrap();
        assert_eq!(f.element_texts(FAM, TABLE, "c4"), [format!("10.1.0.2 comment \"{} br=br1 net=net1\"", new.tag())]);
        assert!(missing(&mut f, &new, &[ip("10.1.0.2")]).unwrap().is_empty());
        assert!(!teardown(&mut f, &o("net1", "crashed"), &[ip("10.1.0.2")]).unwrap(), "the old owner's DEL takes nothing");
        // a repeated ADD of the same owner changes nothing
        let before = f.ruleset();
        setup(&mut f, &new, "br1", &[ip("10.1.0.2")], Ingress::Open).unwrap();
        assert_eq!(f.ruleset(), before);
    }

    #[test]
    fn gc_removes_stale_owners_of_its_network_and_their_isolation() {
        let mut f = FakeNft::new();
        setup(&mut f, &o("net1", "c1"), "br1", &[ip("10.1.0.2")], Ingress::Isolated).unwrap();
        setup(&mut f, &o("net1", "c2"), "br1", &[ip("10.1.0.3")], Ingress::Isolated).unwrap();
        setup(&mut f, &o("net2", "c1"), "br2", &[ip("10.2.0.2")], Ingress::SameBridge).unwrap();
        assert_eq!(gc(&mut f, "net1", &valid_tags("net1", &[("c2".into(), "eth0".into())])).unwrap(), 1);
        assert_eq!(iso(&f).len(), 3, "c2 keeps br1 isolated");
        assert_eq!(gc(&mut f, "net1", &valid_tags("net1", &[])).unwrap(), 1);
        assert_eq!(iso(&f).len(), 1, "br1's rules went with its last container");
        assert_eq!(f.element_texts(FAM, TABLE, "c4").len(), 1, "net2's address stays");
        assert_eq!(gc(&mut f, "net1", &valid_tags("net1", &[])).unwrap(), 0);
    }

    #[test]
    fn a_table_set_up_concurrently_is_joined() {
        let mut f = FakeNft::new();
        f.before_next_commit(|f| {
            f.before_next_commit(|f| setup(f, &o("net1", "other"), "br1", &[ip("10.1.0.9")], Ingress::SameBridge).unwrap())
        });
        setup(&mut f, &o("net1", "c1"), "br1", &[ip("10.1.0.2")], Ingress::SameBridge).unwrap();
        assert_eq!(f.element_texts(FAM, TABLE, "c4").len(), 2);
        assert_eq!(iso(&f).len(), 1, "the bridge's rule exists once");
        assert_eq!(f.rule_texts(FAM, TABLE, "forward").len(), 6);
    }
}

//! The firewall's nftables layout (its default backend), in rcni's own table `inet rcni_firewall`.
//!
//! - sets `c4`/`c6`: the containers' addresses, each element commented with its owner tag, the
//!   bridge it sits on and its network (`rcni:<hash> br=<bridge> net=<network>`);
//! - base chain `forward` (filter, priority filter): `jump isolation`, `jump admin`, then
//!   `ct state established,related` to a container accepted, and anything from a container;
//! - chain `admin`: the operators' own rules; rcni creates it and never touches it again;
//! - ingressPolicy, per bridge `B` with policy `same-bridge` or `isolated`: chain `iso_B` drops
//!   traffic from `B` to another such bridge (set `iso_br`) and, with `isolated`, between two
//!   ports of `B`; chain `isolation` sends `iifname B` there;
//! - chain `members` (never jumped to): one `jump iso_B` per attachment on such a bridge,
//!   commented as its addresses. These references are what keeps `iso_B` alive: the kernel
//!   refuses to delete a chain something jumps to (EBUSY), atomically with the rest of a batch.
//!
//! A container's ADD adds its set elements and its `members` rule in one batch, with no read
//! before it; if `iso_B` is missing (first container, or removed concurrently) that batch fails
//! and the next one creates the bridge's policy with it. DEL removes exactly the attachment's
//! elements and rule, then, if the bridge has no member left, the bridge's policy; an ADD that
//! joins in between makes that batch fail with EBUSY, and the policy stays. So no interleaving of
//! ADDs and DELs leaves a container on an isolated bridge without its policy, and the last of
//! several concurrent DELs (each looks again after its own batch) removes it: no lock needed.

use super::Ingress;
use netkit::nft::{
    ifname_bytes, ip_bytes, m, BaseChain, Batch, Client, CmpOp, Element, ElementInfo, Expr, Family, HookPoint, MetaKind, RuleInfo, SetSpec,
    Verdict,
};
use netkit::owner::Owner;
use netkit::Result;
use std::net::IpAddr;

/// rcni's firewall table (family inet).
pub const TABLE: &str = "rcni_firewall";
const FAM: Family = Family::Inet;
const ISO_SET: &str = "iso_br";
/// The chain of the attachments' references to their bridges' policy chains.
const MEMBERS: &str = "members";
/// How often a layout operation starts over when another writer changed the table between its
/// reads and its commit.
const ATTEMPTS: usize = 8;

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

/// The bridge's policy chain.
fn iso_chain(bridge: &str) -> String {
    format!("iso_{bridge}")
}

/// An interface name from its NUL-padded key.
fn ifname_of(key: &[u8]) -> String {
    String::from_utf8_lossy(key.split(|b| *b == 0).next().unwrap_or_default()).into_owned()
}

fn table_batch(b: &mut Batch) {
    let fwd = BaseChain { kind: "filter", hook: HookPoint::Forward, priority: 0, accept: true };
    b.add_table(FAM, TABLE);
    b.add_set(FAM, TABLE, &SetSpec::addrs("c4", false)).add_set(FAM, TABLE, &SetSpec::addrs("c6", true));
    b.add_set(FAM, TABLE, &SetSpec::ifnames(ISO_SET));
    b.add_chain(FAM, TABLE, "admin", None).add_chain(FAM, TABLE, "isolation", None).add_chain(FAM, TABLE, MEMBERS, None);
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

/// The bridge's policy: its chain (created exclusively: it exists with its rules or not at all),
/// the jump from `isolation`, its `iso_br` element.
fn bridge_batch(b: &mut Batch, bridge: &str, policy: Ingress) {
    let chain = iso_chain(bridge);
    b.create_chain(FAM, TABLE, &chain, None);
    // to another isolated bridge
    let mut r = m::ifname(false, bridge, true);
    r.extend([
        Expr::Meta { key: MetaKind::Oifname, reg: 1 },
        Expr::Lookup { set: ISO_SET.into(), reg: 1, invert: false },
        Expr::Verdict(Verdict::Drop),
    ]);
    b.add_rule(FAM, TABLE, &chain, &r, None);
    if policy == Ingress::Isolated {
        // between two ports of this bridge
        let mut r = m::ifname(false, bridge, false);
        r.push(Expr::Verdict(Verdict::Drop));
        b.add_rule(FAM, TABLE, &chain, &r, None);
    }
    let mut jump = m::ifname(true, bridge, false);
    jump.push(Expr::Verdict(Verdict::Jump(chain)));
    b.add_rule(FAM, TABLE, "isolation", &jump, Some(&iso_comment(bridge)));
    b.add_elements(FAM, TABLE, ISO_SET, &[Element::key(ifname_bytes(bridge))]);
}

/// The attachment's reference to its bridge's policy.
fn member_rule(b: &mut Batch, bridge: &str, comment: &str) {
    b.add_rule(FAM, TABLE, MEMBERS, &[Expr::Verdict(Verdict::Jump(iso_chain(bridge)))], Some(comment));
}

/// Whether `e` is an error another writer's change between our reads and our commit explains.
fn raced(e: &netkit::Error) -> bool {
    e.is_exists() || e.is_not_found() || e.is_busy()
}

/// Accepts forwarded traffic from `addrs` and replies to them; applies `policy` to `bridge`.
pub fn setup(nft: &mut dyn Client, owner: &Owner, bridge: &str, addrs: &[IpAddr], policy: Ingress) -> Result<()> {
    let iso = policy != Ingress::Open && !bridge.is_empty();
    let c = comment(owner, bridge);
    let mut last = None;
    for _ in 0..ATTEMPTS {
        // blind: the addresses and the reference to the bridge's policy chain
        let mut fast = Batch::new();
        for ip in addrs {
            fast.create_elements(FAM, TABLE, set_of(*ip), &[Element::addr(*ip).with_comment(c.clone())]);
        }
        if iso {
            member_rule(&mut fast, bridge, &c);
        }
        match nft.commit(&fast) {
            Ok(()) => return Ok(()),
            Err(e) if e.is_not_found() || e.is_exists() => {}
            Err(e) => return Err(e),
        }
        // the table, the bridge's policy or our reference is missing, or an address is present
        // (ours from a repeated ADD, or another owner's leak: taken over)
        let mut b = Batch::new();
        if nft.rules(FAM, TABLE, "forward")?.is_empty() {
            table_batch(&mut b);
        } else {
            b.add_chain(FAM, TABLE, MEMBERS, None); // (a table made before `members` existed)
        }
        if iso && nft.rules(FAM, TABLE, &iso_chain(bridge))?.is_empty() {
            bridge_batch(&mut b, bridge, policy);
        }
        for ip in addrs {
            if let Some(e) = nft.get_element(FAM, TABLE, set_of(*ip), &ip_bytes(*ip))? {
                b.delete_elements(FAM, TABLE, set_of(*ip), &[Element::key(e.key)]);
            }
            b.create_elements(FAM, TABLE, set_of(*ip), &[Element::addr(*ip).with_comment(c.clone())]);
        }
        if iso && !members_of(&nft.rules(FAM, TABLE, MEMBERS)?, bridge).any(|r| owner.owns(r.comment.as_deref())) {
            member_rule(&mut b, bridge, &c);
        }
        match nft.commit(&b) {
            Ok(()) => return Ok(()),
            Err(e) if raced(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("a failed attempt"))
}

/// The `members` rules of `bridge`.
fn members_of<'a>(rules: &'a [RuleInfo], bridge: &'a str) -> impl Iterator<Item = &'a RuleInfo> + 'a {
    rules.iter().filter(move |r| bridge_of(r.comment.as_deref()).as_deref() == Some(bridge))
}

/// What an attachment has: address elements (set, element) and `members` rules.
#[derive(Default)]
struct Owned {
    elements: Vec<(String, ElementInfo)>,
    members: Vec<RuleInfo>,
}

impl Owned {
    fn is_empty(&self) -> bool {
        self.elements.is_empty() && self.members.is_empty()
    }

    fn bridges(&self) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        let comments = self.elements.iter().map(|(_, e)| &e.comment).chain(self.members.iter().map(|r| &r.comment));
        for br in comments.filter_map(|c| bridge_of(c.as_deref())) {
            if !v.contains(&br) {
                v.push(br);
            }
        }
        v
    }
}

/// Removes the attachment's addresses (direct lookups with `hint`, else a scan) and its
/// reference to its bridge's policy, then the bridge's policy when no container is left on it.
/// Returns whether anything was deleted.
pub fn teardown(nft: &mut dyn Client, owner: &Owner, hint: &[IpAddr]) -> Result<bool> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let mut mine = Owned::default();
        for ip in hint {
            if let Some(e) = nft.get_element(FAM, TABLE, set_of(*ip), &ip_bytes(*ip))? {
                if owner.owns(e.comment.as_deref()) {
                    mine.elements.push((set_of(*ip).into(), e));
                }
            }
        }
        if mine.elements.is_empty() {
            for set in ["c4", "c6"] {
                let els = nft.elements(FAM, TABLE, set)?;
                mine.elements.extend(els.into_iter().filter(|e| owner.owns(e.comment.as_deref())).map(|e| (set.to_string(), e)));
            }
        }
        mine.members = nft.rules(FAM, TABLE, MEMBERS)?.into_iter().filter(|r| owner.owns(r.comment.as_deref())).collect();
        if mine.is_empty() {
            return Ok(false);
        }
        match remove(nft, &mine) {
            Ok(()) => return Ok(true),
            // (e.g. a concurrent DEL of the same attachment): look again
            Err(e) if raced(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("a failed attempt"))
}

/// Deletes `doomed` in one batch, then the policy of each of its bridges that no container is
/// left on.
fn remove(nft: &mut dyn Client, doomed: &Owned) -> Result<()> {
    let mut b = Batch::new();
    for (set, e) in &doomed.elements {
        b.delete_elements(FAM, TABLE, set, &[Element::key(e.key.clone())]);
    }
    for r in &doomed.members {
        b.delete_rule(FAM, TABLE, MEMBERS, r.handle);
    }
    nft.commit(&b)?;
    prune(nft, &doomed.bridges())
}

/// Removes the policy of each of `bridges` that has no member: neither an address element nor a
/// `members` rule. It looks after its own caller's batch, so of concurrent DELs of a bridge's
/// last containers the last one sees the bridge empty. A member that joins between the look and
/// the batch holds a reference to the policy chain: the batch fails (EBUSY), and a new look finds
/// the member. Giving up after contention leaves a policy without containers, which the next
/// DEL or GC on the bridge removes.
fn prune(nft: &mut dyn Client, bridges: &[String]) -> Result<()> {
    for _ in 0..ATTEMPTS {
        if bridges.is_empty() {
            return Ok(());
        }
        let isolation = nft.rules(FAM, TABLE, "isolation")?;
        let iso_br = nft.elements(FAM, TABLE, ISO_SET)?;
        let has_policy = |br: &String| {
            isolation.iter().any(|r| r.comment.as_deref() == Some(iso_comment(br).as_str()))
                || iso_br.iter().any(|e| ifname_of(&e.key) == *br)
        };
        let candidates: Vec<&String> = bridges.iter().filter(|br| has_policy(br)).collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let members = nft.rules(FAM, TABLE, MEMBERS)?;
        let mut addrs = nft.elements(FAM, TABLE, "c4")?;
        addrs.extend(nft.elements(FAM, TABLE, "c6")?);
        let mut b = Batch::new();
        for br in candidates {
            let used =
                members_of(&members, br).next().is_some() || addrs.iter().any(|e| bridge_of(e.comment.as_deref()).as_deref() == Some(br));
            if used {
                continue;
            }
            // (rules of `isolation` with the bridge's comment: the jump, or the per-bridge
            // rules of tables made before policy chains)
            for r in isolation.iter().filter(|r| r.comment.as_deref() == Some(iso_comment(br).as_str())) {
                b.delete_rule(FAM, TABLE, "isolation", r.handle);
            }
            let chain = iso_chain(br);
            if !nft.rules(FAM, TABLE, &chain)?.is_empty() {
                b.delete_chain(FAM, TABLE, &chain);
            }
            if iso_br.iter().any(|e| ifname_of(&e.key) == *br) {
                b.delete_elements(FAM, TABLE, ISO_SET, &[Element::key(ifname_bytes(br))]);
            }
        }
        match nft.commit(&b) {
            Ok(()) => return Ok(()),
            Err(e) if raced(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// GC: removes the addresses and `members` rules of `network`'s attachments whose owner tag is
/// not in `valid`, then the policy of every bridge left without containers (whichever network's:
/// a policy with no member protects nothing). Elements of other networks, and any element without
/// rcni's comment, stay. Returns how many addresses were removed.
pub fn gc(nft: &mut dyn Client, network: &str, valid: &std::collections::HashSet<String>) -> Result<usize> {
    let stale = |c: Option<&str>| {
        let Some(c) = c else { return false };
        if c.len() >= 127 {
            return false; // cut to nft's limit: its network may be cut too
        }
        let mut words = c.split(' ');
        let tag = words.next().unwrap_or_default();
        let net = words.find_map(|w| w.strip_prefix("net="));
        tag.starts_with("rcni:") && net == Some(network) && !valid.contains(tag)
    };
    let (mut removed, mut last) = (None, None);
    for _ in 0..ATTEMPTS {
        let mut doomed = Owned::default();
        for set in ["c4", "c6"] {
            let els = nft.elements(FAM, TABLE, set)?;
            doomed.elements.extend(els.into_iter().filter(|e| stale(e.comment.as_deref())).map(|e| (set.to_string(), e)));
        }
        doomed.members = nft.rules(FAM, TABLE, MEMBERS)?.into_iter().filter(|r| stale(r.comment.as_deref())).collect();
        let mut b = Batch::new();
        for (set, e) in &doomed.elements {
            b.delete_elements(FAM, TABLE, set, &[Element::key(e.key.clone())]);
        }
        for r in &doomed.members {
            b.delete_rule(FAM, TABLE, MEMBERS, r.handle);
        }
        match nft.commit(&b) {
            Ok(()) => {
                removed = Some(doomed.elements.len());
                break;
            }
            // (a concurrent DEL took some of them): look again
            Err(e) if raced(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    let Some(removed) = removed else { return Err(last.expect("a failed attempt")) };
    let mut bridges: Vec<String> = nft
        .rules(FAM, TABLE, "isolation")?
        .into_iter()
        .filter_map(|r| r.comment.as_deref().and_then(|c| c.strip_prefix("rcni isolation br=")).map(String::from))
        .collect();
    bridges.extend(nft.elements(FAM, TABLE, ISO_SET)?.iter().map(|e| ifname_of(&e.key)));
    bridges.sort();
    bridges.dedup();
    prune(nft, &bridges)?;
    Ok(removed)
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
add chain inet rcni_firewall members
create chain inet rcni_firewall forward { type filter hook forward priority 0; policy accept; }
add rule inet rcni_firewall forward jump isolation comment \"rcni firewall ingress policies\"
add rule inet rcni_firewall forward jump admin comment \"rcni firewall admin overrides\"
add rule inet rcni_firewall forward meta nfproto ipv4 ip daddr @c4 ct state established,related accept comment \"rcni firewall: replies to containers\"
add rule inet rcni_firewall forward meta nfproto ipv4 ip saddr @c4 accept comment \"rcni firewall: from containers\"
add rule inet rcni_firewall forward meta nfproto ipv6 ip6 daddr @c6 ct state established,related accept comment \"rcni firewall: replies to containers\"
add rule inet rcni_firewall forward meta nfproto ipv6 ip6 saddr @c6 accept comment \"rcni firewall: from containers\"
create chain inet rcni_firewall iso_br1
add rule inet rcni_firewall iso_br1 oifname != \"br1\" oifname @iso_br drop
add rule inet rcni_firewall iso_br1 oifname \"br1\" drop
add rule inet rcni_firewall isolation iifname \"br1\" jump iso_br1 comment \"rcni isolation br=br1\"
add element inet rcni_firewall iso_br { \"br1\" }
create element inet rcni_firewall c4 { 10.1.0.2 comment \"rcni:4896244deebc8247 br=br1 net=net1\" }
add rule inet rcni_firewall members jump iso_br1 comment \"rcni:4896244deebc8247 br=br1 net=net1\"
"
        );
        // the bridge is isolated already: addresses and the reference to the bridge's policy
        assert_eq!(
            f.log()[1],
            "create element inet rcni_firewall c4 { 10.1.0.3 comment \"rcni:08921392f60f52cc br=br1 net=net1\" }
create element inet rcni_firewall c6 { fd00:1::3 comment \"rcni:08921392f60f52cc br=br1 net=net1\" }
add rule inet rcni_firewall members jump iso_br1 comment \"rcni:08921392f60f52cc br=br1 net=net1\"
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
                "iifname \"br1\" jump iso_br1 comment \"rcni isolation br=br1\"",
                "iifname \"br2\" jump iso_br2 comment \"rcni isolation br=br2\""
            ],
        );
        assert_eq!(policy(&f, "br1"), ["oifname != \"br1\" oifname @iso_br drop", "oifname \"br1\" drop"], "isolated: two rules");
        assert_eq!(policy(&f, "br2"), ["oifname != \"br2\" oifname @iso_br drop"], "same-bridge: one");
        assert!(policy(&f, "br3").is_empty(), "open: none");
        assert_eq!(f.element_texts(FAM, TABLE, ISO_SET), ["\"br1\"", "\"br2\""]);
        assert_eq!(f.rule_texts(FAM, TABLE, MEMBERS).len(), 3, "one reference per container on an isolating bridge");
        // by prevResult's address
        assert!(teardown(&mut f, &o("net1", "c1"), &[ip("10.1.0.2")]).unwrap());
        assert!(isolated(&f, "br1"), "c2 is still on br1");
        // without a hint: a scan
        assert!(teardown(&mut f, &o("net1", "c2"), &[]).unwrap());
        assert_eq!(iso(&f), ["iifname \"br2\" jump iso_br2 comment \"rcni isolation br=br2\""]);
        assert!(!f.chains(FAM, TABLE).contains(&"iso_br1".to_string()));
        assert_eq!(f.element_texts(FAM, TABLE, ISO_SET), ["\"br2\""]);
        assert!(!teardown(&mut f, &o("net1", "c2"), &[]).unwrap(), "gone is fine");
        // the bridge's next container isolates it again
        setup(&mut f, &o("net1", "c5"), "br1", &[ip("10.1.0.5")], Ingress::Isolated).unwrap();
        assert!(isolated(&f, "br1"));
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
        assert!(isolated(&f, "br1"), "c2 keeps br1 isolated");
        assert_eq!(gc(&mut f, "net1", &valid_tags("net1", &[])).unwrap(), 1);
        assert!(policy(&f, "br1").is_empty(), "br1's rules went with its last container");
        assert_eq!(iso(&f).len(), 1);
        assert_eq!(f.rule_texts(FAM, TABLE, MEMBERS).len(), 1, "net2's reference stays");
        assert_eq!(f.element_texts(FAM, TABLE, "c4").len(), 1, "net2's address stays");
        assert_eq!(gc(&mut f, "net1", &valid_tags("net1", &[])).unwrap(), 0);
    }

    /// The rules that apply to packets from `bridge`: the isolation rules of the bridge,
    /// following their jumps.
    fn policy(f: &FakeNft, bridge: &str) -> Vec<String> {
        let mut out = Vec::new();
        let tag = format!("comment \"rcni isolation br={bridge}\"");
        for r in iso(f).into_iter().filter(|r| r.ends_with(&tag)) {
            match r.split(" jump ").nth(1).and_then(|t| t.split_whitespace().next()) {
                Some(chain) => out.extend(f.rule_texts(FAM, TABLE, chain)),
                None => out.push(r),
            }
        }
        out
    }

    fn isolated(f: &FakeNft, bridge: &str) -> bool {
        let drops = policy(f, bridge).iter().filter(|r| r.contains(" drop")).count();
        drops == 2 && f.element_texts(FAM, TABLE, ISO_SET).contains(&format!("\"{bridge}\""))
    }

    #[test]
    fn a_bridges_last_teardown_between_an_adds_look_and_its_commit() {
        let mut f = FakeNft::new();
        setup(&mut f, &o("net1", "c0"), "br1", &[ip("10.1.0.2")], Ingress::Isolated).unwrap();
        assert!(isolated(&f, "br1"));
        // c0, the bridge's last container, goes while c1's ADD is under way
        f.before_next_commit(|f| assert!(teardown(f, &o("net1", "c0"), &[]).unwrap()));
        setup(&mut f, &o("net1", "c1"), "br1", &[ip("10.1.0.3")], Ingress::Isolated).unwrap();
        assert!(isolated(&f, "br1"), "c1 must keep its ingress policy:\n{}", f.ruleset());
        assert_eq!(f.element_texts(FAM, TABLE, "c4").len(), 1);
        assert!(missing(&mut f, &o("net1", "c1"), &[ip("10.1.0.3")]).unwrap().is_empty());
    }

    #[test]
    fn an_add_between_a_bridges_last_teardowns_look_and_its_commits() {
        // the ADD commits before each of the teardown's batches in turn
        for depth in 0..3 {
            let mut f = FakeNft::new();
            setup(&mut f, &o("net1", "c0"), "br1", &[ip("10.1.0.2")], Ingress::Isolated).unwrap();
            fn nest(f: &mut FakeNft, depth: usize) {
                if depth == 0 {
                    f.before_next_commit(|f| setup(f, &o("net1", "c1"), "br1", &[ip("10.1.0.3")], Ingress::Isolated).unwrap());
                } else {
                    f.before_next_commit(move |f| nest(f, depth - 1));
                }
            }
            nest(&mut f, depth);
            assert!(teardown(&mut f, &o("net1", "c0"), &[ip("10.1.0.2")]).unwrap());
            if f.element_texts(FAM, TABLE, "c4").is_empty() {
                // (the teardown had fewer batches than `depth`: the ADD comes after it)
                setup(&mut f, &o("net1", "c1"), "br1", &[ip("10.1.0.3")], Ingress::Isolated).unwrap();
            }
            assert!(isolated(&f, "br1"), "depth {depth}: c1 must keep its ingress policy:\n{}", f.ruleset());
            assert_eq!(f.element_texts(FAM, TABLE, "c4").len(), 1, "depth {depth}");
            assert!(teardown(&mut f, &o("net1", "c1"), &[]).unwrap());
            assert!(policy(&f, "br1").is_empty() && f.element_texts(FAM, TABLE, ISO_SET).is_empty(), "depth {depth}: {}", f.ruleset());
        }
    }

    #[test]
    fn the_last_two_containers_leaving_together_take_the_policy_with_them() {
        let mut f = FakeNft::new();
        setup(&mut f, &o("net1", "c0"), "br1", &[ip("10.1.0.2")], Ingress::Isolated).unwrap();
        setup(&mut f, &o("net1", "c1"), "br1", &[ip("10.1.0.3")], Ingress::Isolated).unwrap();
        f.before_next_commit(|f| assert!(teardown(f, &o("net1", "c1"), &[]).unwrap()));
        assert!(teardown(&mut f, &o("net1", "c0"), &[]).unwrap());
        assert!(f.element_texts(FAM, TABLE, "c4").is_empty());
        assert!(policy(&f, "br1").is_empty(), "no policy without containers:\n{}", f.ruleset());
        assert!(f.element_texts(FAM, TABLE, ISO_SET).is_empty());
    }

    #[test]
    fn a_table_of_the_earlier_layout_is_carried_on() {
        // before policy chains: no `members` chain, a bridge's rules right in `isolation`
        let mut f = FakeNft::new();
        let mut b = Batch::new();
        let fwd = BaseChain { kind: "filter", hook: HookPoint::Forward, priority: 0, accept: true };
        b.add_table(FAM, TABLE).add_set(FAM, TABLE, &SetSpec::addrs("c4", false)).add_set(FAM, TABLE, &SetSpec::addrs("c6", true));
        b.add_set(FAM, TABLE, &SetSpec::ifnames(ISO_SET)).add_chain(FAM, TABLE, "admin", None).add_chain(FAM, TABLE, "isolation", None);
        b.create_chain(FAM, TABLE, "forward", Some(&fwd));
        b.add_rule(FAM, TABLE, "forward", &[Expr::Verdict(Verdict::Jump("isolation".into()))], None);
        for br in ["br1", "br9"] {
            let mut r = m::ifname(true, br, false);
            r.extend(m::ifname(false, br, false));
            r.push(Expr::Verdict(Verdict::Drop));
            b.add_rule(FAM, TABLE, "isolation", &r, Some(&iso_comment(br)));
            b.add_elements(FAM, TABLE, ISO_SET, &[Element::key(ifname_bytes(br))]);
        }
        let old = o("net1", "old");
        b.add_elements(FAM, TABLE, "c4", &[Element::addr(ip("10.1.0.2")).with_comment(comment(&old, "br1"))]);
        f.commit(&b).unwrap();
        // a new container on br1 gets br1's policy chain; the old member keeps br1 isolated after
        // the new one leaves, and br1's old and new rules go with the old member
        setup(&mut f, &o("net1", "new"), "br1", &[ip("10.1.0.3")], Ingress::Isolated).unwrap();
        assert_eq!(policy(&f, "br1").len(), 3, "the old rule and the new chain's two: {}", f.ruleset());
        assert!(teardown(&mut f, &o("net1", "new"), &[]).unwrap());
        assert!(policy(&f, "br1").iter().any(|r| r.contains("drop")), "{}", f.ruleset());
        assert!(teardown(&mut f, &old, &[ip("10.1.0.2")]).unwrap());
        assert!(policy(&f, "br1").is_empty() && !f.chains(FAM, TABLE).contains(&"iso_br1".to_string()), "{}", f.ruleset());
        // br9's rules, left without a container by the earlier layout, go with any GC
        assert_eq!(policy(&f, "br9").len(), 1);
        assert_eq!(gc(&mut f, "other", &valid_tags("other", &[])).unwrap(), 0);
        assert!(iso(&f).is_empty() && f.element_texts(FAM, TABLE, ISO_SET).is_empty(), "{}", f.ruleset());
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

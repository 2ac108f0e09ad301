//! The firewall plugin's kernel side (nftables backend), in rcni's own table
//! `inet rcni_firewall`.
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

use crate::error::Result;
use crate::nft::{
    ifname_bytes, m, BaseChain, Batch, Client, CmpOp, Element, ElementInfo, Expr, Family, HookPoint, MetaKind, SetSpec, Verdict,
};
use crate::owner::Owner;
use std::net::IpAddr;

/// rcni's firewall table (family inet).
pub const TABLE: &str = "rcni_firewall";
const FAM: Family = Family::Inet;
const ISO_SET: &str = "iso_br";

/// ingressPolicy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    Open,
    SameBridge,
    Isolated,
}

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
    b.add_set(
        FAM,
        TABLE,
        &SetSpec { name: ISO_SET.into(), key_type: crate::nft::datatype::IFNAME, key_len: 16, interval: false, data: None, concat: vec![] },
    );
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
        if let Some(e) = nft.get_element(FAM, TABLE, set_of(*ip), &crate::nft::ip_bytes(*ip))? {
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
        if let Some(e) = nft.get_element(FAM, TABLE, set_of(*ip), &crate::nft::ip_bytes(*ip))? {
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
        let e = nft.get_element(FAM, TABLE, set_of(*ip), &crate::nft::ip_bytes(*ip))?;
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

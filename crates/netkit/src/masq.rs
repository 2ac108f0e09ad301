//! IP masquerade for bridge and ptp (`ipMasq`), in rcni's own `inet rcni` table.
//!
//! Per network `N`: sets `m4_N`/`m6_N` hold the containers' addresses (each element commented
//! with its owner), interval sets `d4_N`/`d6_N` the network's subnets; the base chain
//! `postrouting` sends `ip saddr @m4_N` (and v6) to chain `masq_N`, which returns for the
//! network's own subnets and multicast and masquerades the rest. A container's ADD only adds set
//! elements, so it never rebuilds or flushes what other containers use; DEL removes exactly its
//! own elements. GC removes the network's elements whose owner is not a valid attachment.

use crate::error::Result;
use crate::nft::{m, BaseChain, Batch, Client, Element, ElementInfo, Expr, Family, HookPoint, SetSpec, Verdict};
use crate::owner::{is_stale, network_id, Owner};
use ipnet::IpNet;
use std::collections::HashSet;
use std::net::IpAddr;

/// rcni's nftables table (family inet).
pub const TABLE: &str = "rcni";
const FAM: Family = Family::Inet;

fn sets(n: &str) -> [(String, bool); 2] {
    [(format!("m4_{n}"), false), (format!("m6_{n}"), true)]
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
pub fn setup(nft: &mut dyn Client, owner: &Owner, addrs: &[IpNet]) -> Result<bool> {
    if addrs.is_empty() {
        return Ok(false);
    }
    let n = network_id(&owner.network);
    let mut fast = Batch::new();
    element_batch(&n, owner, addrs, &mut fast);
    match nft.commit(&fast) {
        Ok(()) => return Ok(false),
        Err(e) if e.is_not_found() => {
            let mut full = Batch::new();
            network_batch(&n, &owner.network, &mut full);
            element_batch(&n, owner, addrs, &mut full);
            match nft.commit(&full) {
                Ok(()) => return Ok(false),
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
            .filter(|ip| !present.iter().any(|e| e.key == crate::nft::ip_bytes(**ip) && owner.owns(e.comment.as_deref())))
            .map(|ip| Element::addr(*ip).with_comment(owner.comment()))
            .collect();
        replace.create_elements(FAM, TABLE, &set, &missing);
    }
    let (_, _, d4, d6) = elements(owner, addrs);
    replace.add_elements(FAM, TABLE, &format!("d4_{n}"), &d4).add_elements(FAM, TABLE, &format!("d6_{n}"), &d6);
    nft.commit(&replace)?;
    Ok(true)
}

fn present(nft: &mut dyn Client, set: &str, ips: &[IpAddr]) -> Result<Vec<ElementInfo>> {
    let mut out = Vec::new();
    for ip in ips {
        if let Some(e) = nft.get_element(FAM, TABLE, set, &crate::nft::ip_bytes(*ip))? {
            out.push(e);
        }
    }
    Ok(out)
}

/// Removes the attachment's masquerade: the set elements it owns. `hint` (its addresses from
/// prevResult) makes this a direct lookup; without it the network's sets are scanned. Returns
/// whether anything was deleted (the caller should then close the socket in the background).
pub fn teardown(nft: &mut dyn Client, owner: &Owner, hint: &[IpAddr]) -> Result<bool> {
    let n = network_id(&owner.network);
    let mut b = Batch::new();
    for (set, v6) in sets(&n) {
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
    let n = network_id(network);
    let mut b = Batch::new();
    let mut count = 0;
    for (set, _) in sets(&n) {
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

/// The addresses an owner has masqueraded (for CHECK).
pub fn owned_addresses(nft: &mut dyn Client, owner: &Owner) -> Result<Vec<Vec<u8>>> {
    let n = network_id(&owner.network);
    let mut out = Vec::new();
    for (set, _) in sets(&n) {
        out.extend(nft.elements(FAM, TABLE, &set)?.into_iter().filter(|e| owner.owns(e.comment.as_deref())).map(|e| e.key));
    }
    Ok(out)
}

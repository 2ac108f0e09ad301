//! portmap's nftables layout: host port publishing in rcni's own table `inet rcni_hostport`.
//!
//! Per network `N` (its name, or a hash of it: [`network_id`]) and settings generation `G` (a
//! hash of the network-wide settings: snat, masqAll, mark bit, conditions):
//! - maps `w4_N_G`/`w6_N_G` (`l4proto . dport → address . port`) for mappings without a host IP
//!   and `h4_N_G`/`h6_N_G` (`daddr . l4proto . dport → address . port`) for those with one; every
//!   element is commented with its owner;
//! - chain `hp_N_G`: DNAT through the maps, hostIP-specific first; with `snat`, a packet from the
//!   network's own subnets (sets `s4_N`/`s6_N`: hairpin and neighbours) or from 127.0.0.0/8 is
//!   also marked with the mark bit (`masqAll`: every packet);
//! - base chains `prerouting` and `output` (nat, dstnat) jump to `hp_N_G` for local destinations
//!   (`fib daddr type local`), after the network's conditions; `postrouting` (nat, srcnat)
//!   masquerades marked packets.
//!
//! Once per table, base chain `localnet` (filter, prerouting, before DNAT) keeps 127.0.0.0/8 off
//! every interface but `lo`, which `route_localnet=1` would let in ([`localnet_guard`]).
//!
//! A container's ADD adds map elements only, so it never rebuilds or slows down with the rules
//! of other containers; a host port another attachment holds is refused ([`Held`]). DEL removes
//! exactly the elements its owner has. A changed network setting makes a new generation next to
//! the old one, whose attachments keep working.
//! GC removes the network's elements of attachments that are not valid, and old generations once
//! they are empty.

use ipnet::IpNet;
use netkit::nft::{
    datatype, ip_bytes, m, BaseChain, Batch, Client, CmpOp, Element, ElementInfo, Expr, Family, HookPoint, MetaKind, PayloadBase, SetSpec,
    Verdict,
};
use netkit::owner::{hashed_name, is_stale, legacy_network_id, network_id, Owner};
use netkit::Result;
use std::collections::HashSet;
use std::net::IpAddr;

/// rcni's table for published ports (family inet).
pub const TABLE: &str = "rcni_hostport";
const FAM: Family = Family::Inet;

/// A match that decides whether a network's ports apply to a packet (conditionsV4/V6).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Cond {
    /// `ip(6) saddr|daddr [!=] PREFIX`
    Addr { src: bool, net: IpNet, negate: bool },
    /// `iifname|oifname [!=] NAME`
    Iface { input: bool, name: String, negate: bool },
}

impl Cond {
    fn exprs(&self) -> Vec<Expr> {
        match self {
            Cond::Addr { src, net, negate } => m::addr_in_prefix(*src, *net, *negate),
            Cond::Iface { input, name, negate } => m::ifname(*input, name, *negate),
        }
    }
}

/// Network-wide settings (they are the same for every container of a network).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Settings {
    pub snat: bool,
    pub masq_all: bool,
    /// The bit of the packet mark that asks for masquerade (0–31).
    pub mark_bit: u8,
    pub cond_v4: Vec<Cond>,
    pub cond_v6: Vec<Cond>,
}

impl Default for Settings {
    /// The reference's defaults: snat on, mark bit 13, no conditions.
    fn default() -> Self {
        Settings { snat: true, masq_all: false, mark_bit: 13, cond_v4: Vec::new(), cond_v6: Vec::new() }
    }
}

impl Settings {
    fn generation(&self) -> String {
        // 8 hex digits of SHA-512 over the settings
        hashed_name("", &format!("{self:?}"), 8)
    }
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// IP protocol number (6 tcp, 17 udp, 132 sctp).
    pub proto: u8,
    pub host_port: u16,
    /// Only packets to this address; `None` for every local address.
    pub host_ip: Option<IpAddr>,
    pub dest: IpAddr,
    pub dest_port: u16,
}

impl Mapping {
    fn v6(&self) -> bool {
        self.dest.is_ipv6()
    }

    fn map(&self, n: &str, g: &str) -> String {
        let kind = if self.host_ip.is_some() { "h" } else { "w" };
        format!("{kind}{}_{n}_{g}", if self.v6() { 6 } else { 4 })
    }

    fn key(&self) -> Vec<u8> {
        let mut k = Vec::new();
        if let Some(ip) = self.host_ip {
            k.extend(ip_bytes(ip));
        }
        k.extend([self.proto, 0, 0, 0]);
        k.extend(self.host_port.to_be_bytes());
        k.extend([0, 0]);
        k
    }

    fn data(&self) -> Vec<u8> {
        let mut d = ip_bytes(self.dest);
        d.extend(self.dest_port.to_be_bytes());
        d.extend([0, 0]);
        d
    }

    fn element(&self, owner: &Owner) -> Element {
        let mut e = Element::key(self.key()).with_comment(owner.comment());
        e.data = Some(self.data());
        e
    }
}

// 32-bit registers: NFT_REG32_00 = 8; NFT_REG_1 is the same storage as NFT_REG32_00..03.
const R32: u32 = 8;

fn map_spec(name: String, v6: bool, host_ip: bool) -> SetSpec {
    let alen = if v6 { 16 } else { 4 };
    let (mut types, mut fields) = (Vec::new(), Vec::new());
    if host_ip {
        types.push(if v6 { datatype::IP6ADDR } else { datatype::IPADDR });
        fields.push(alen);
    }
    types.extend([datatype::INET_PROTOCOL, datatype::INET_SERVICE]);
    fields.extend([1, 2]);
    let key_len = fields.iter().map(|l| (l + 3) & !3).sum();
    SetSpec {
        name,
        key_type: datatype::concat(&types),
        key_len,
        interval: false,
        data: Some((datatype::concat(&[if v6 { datatype::IP6ADDR } else { datatype::IPADDR }, datatype::INET_SERVICE]), alen + 4)),
        concat: fields,
    }
}

/// `[daddr .] l4proto . th dport` into the registers from NFT_REG32_00 on, looked up in `map`,
/// the result (address . port) in NFT_REG32_00.., then (optionally) the mark bit, then DNAT.
fn dnat_rule(v6: bool, host_ip: bool, map: &str, src: Option<Vec<Expr>>, mark: Option<u32>) -> Vec<Expr> {
    let alen = if v6 { 16 } else { 4 };
    let mut r = m::all([m::nfproto(v6), src.unwrap_or_default()]);
    let mut next = R32;
    if host_ip {
        r.push(Expr::Payload { base: PayloadBase::Network, offset: if v6 { 24 } else { 16 }, len: alen, reg: 1 });
        next += alen / 4;
    }
    r.push(Expr::Meta { key: MetaKind::L4proto, reg: next });
    r.push(Expr::Payload { base: PayloadBase::Transport, offset: 2, len: 2, reg: next + 1 });
    r.push(Expr::MapLookup { set: map.into(), reg: 1, dreg: 1 });
    if let Some(bit) = mark {
        // meta mark set mark | bit (register 3 is clear of the lookup's result)
        r.push(Expr::Meta { key: MetaKind::Mark, reg: 3 });
        r.push(Expr::Bitwise { reg: 3, len: 4, mask: (!bit).to_ne_bytes().to_vec(), xor: bit.to_ne_bytes().to_vec() });
        r.push(Expr::MetaSet { key: MetaKind::Mark, reg: 3 });
    }
    r.push(Expr::Nat { dnat: true, v6, addr_reg: 1, port_reg: Some(R32 + alen / 4) });
    r
}

fn subnet_sets(n: &str) -> [(String, bool); 2] {
    [(format!("s4_{n}"), false), (format!("s6_{n}"), true)]
}

fn network_batch(b: &mut Batch, network: &str, n: &str, g: &str, s: &Settings) {
    let chain = format!("hp_{n}_{g}");
    let pre = BaseChain { kind: "nat", hook: HookPoint::Prerouting, priority: -100, accept: true };
    let out = BaseChain { kind: "nat", hook: HookPoint::Output, priority: -100, accept: true };
    let post = BaseChain { kind: "nat", hook: HookPoint::Postrouting, priority: 100, accept: true };
    b.add_table(FAM, TABLE).add_chain(FAM, TABLE, "prerouting", Some(&pre)).add_chain(FAM, TABLE, "output", Some(&out)).add_chain(
        FAM,
        TABLE,
        "postrouting",
        Some(&post),
    );
    for (name, v6) in subnet_sets(n) {
        b.add_set(FAM, TABLE, &SetSpec::prefixes(name, v6));
    }
    for v6 in [false, true] {
        for host_ip in [true, false] {
            let name = format!("{}{}_{n}_{g}", if host_ip { "h" } else { "w" }, if v6 { 6 } else { 4 });
            b.add_set(FAM, TABLE, &map_spec(name, v6, host_ip));
        }
    }
    // exclusive: if the chain exists, this generation is set up already
    b.create_chain(FAM, TABLE, &chain, None);
    let bit = 1u32 << s.mark_bit;
    for v6 in [false, true] {
        for host_ip in [true, false] {
            let map = format!("{}{}_{n}_{g}", if host_ip { "h" } else { "w" }, if v6 { 6 } else { 4 });
            if s.snat && s.masq_all {
                // every packet is marked: DNAT ends the chain, so no unmarked rule follows
                b.add_rule(FAM, TABLE, &chain, &dnat_rule(v6, host_ip, &map, None, Some(bit)), None);
                continue;
            }
            if s.snat {
                // hairpin and neighbours (the network's own subnets), and 127.0.0.0/8: marked
                let (set, _) = &subnet_sets(n)[v6 as usize];
                let from_net = m::addr_in_set(v6, true, set, false);
                b.add_rule(FAM, TABLE, &chain, &dnat_rule(v6, host_ip, &map, Some(from_net), Some(bit)), None);
                if !v6 {
                    let from_lo = m::addr_in_prefix(true, "127.0.0.0/8".parse().expect("constant"), false);
                    b.add_rule(FAM, TABLE, &chain, &dnat_rule(v6, host_ip, &map, Some(from_lo), Some(bit)), None);
                }
            }
            b.add_rule(FAM, TABLE, &chain, &dnat_rule(v6, host_ip, &map, None, None), None);
        }
    }
    let comment = format!("rcni portmap net={network} gen={g}");
    for (v6, conds) in [(false, &s.cond_v4), (true, &s.cond_v6)] {
        let mut jump = m::all(std::iter::once(m::nfproto(v6)).chain(conds.iter().map(Cond::exprs)));
        jump.push(Expr::FibDaddrType { reg: 1 });
        jump.push(Expr::Cmp { op: CmpOp::Eq, reg: 1, data: 2u32.to_ne_bytes().to_vec() }); // RTN_LOCAL
        jump.push(Expr::Verdict(Verdict::Jump(chain.clone())));
        b.add_rule(FAM, TABLE, "prerouting", &jump, Some(&comment));
        b.add_rule(FAM, TABLE, "output", &jump, Some(&comment));
    }
    let masq = [
        Expr::Meta { key: MetaKind::Mark, reg: 1 },
        Expr::Bitwise { reg: 1, len: 4, mask: bit.to_ne_bytes().to_vec(), xor: vec![0; 4] },
        Expr::Cmp { op: CmpOp::Eq, reg: 1, data: bit.to_ne_bytes().to_vec() },
        Expr::Masquerade,
    ];
    b.add_rule(FAM, TABLE, "postrouting", &masq, Some(&comment));
}

fn element_batch(b: &mut Batch, n: &str, g: &str, owner: &Owner, subnets: &[IpNet], maps: &[Mapping]) {
    for (set, v6) in subnet_sets(n) {
        let els: Vec<Element> = subnets.iter().filter(|s| s.addr().is_ipv6() == v6).map(|s| Element::prefix(s.trunc())).collect();
        b.add_elements(FAM, TABLE, &set, &els);
    }
    let mut by_map: Vec<(String, Vec<Element>)> = Vec::new();
    for mp in maps {
        let name = mp.map(n, g);
        match by_map.iter_mut().find(|(m, _)| *m == name) {
            Some((_, v)) => v.push(mp.element(owner)),
            None => by_map.push((name, vec![mp.element(owner)])),
        }
    }
    for (map, els) in by_map {
        b.create_elements(FAM, TABLE, &map, &els);
    }
}

/// The base chain that keeps loopback addresses off the other interfaces (see
/// [`localnet_guard`]).
pub const LOCALNET_CHAIN: &str = "localnet";

/// The guard that makes `route_localnet=1` safe (CVE-2020-8558): portmap sets it on a bridge so
/// the node can reach a published port via 127.0.0.1 (the connection is DNATed to the container
/// and masqueraded; the container's replies come back to the masquerade address and are restored
/// to 127.0.0.1 by conntrack). Without a guard, the setting also lets a container send packets to
/// 127.0.0.0/8 (or from it) through the bridge, reaching the node's loopback-only services.
///
/// Base chain `localnet` (filter, prerouting, priority -150: after conntrack, before DNAT)
/// drops IPv4 packets whose destination or source is in 127.0.0.0/8 arriving on any interface
/// but `lo`, so they are judged as they arrived: the replies above still carry the masquerade
/// address there, and a packet that some rule DNATs to 127.0.0.1 arrives with another address.
/// This is the kernel's martian check that `route_localnet` turns off, restored for everything
/// but NAT. (kube-proxy's rule for the same CVE sits after NAT, in filter INPUT, and so has to
/// let conntrack-established and DNATed packets through.) Created once, with its rules, and kept,
/// as `route_localnet` is.
pub fn localnet_guard(nft: &mut dyn Client) -> Result<()> {
    if !nft.rules(FAM, TABLE, LOCALNET_CHAIN)?.is_empty() {
        return Ok(());
    }
    let pre = BaseChain { kind: "filter", hook: HookPoint::Prerouting, priority: -150, accept: true };
    let mut b = Batch::new();
    // exclusive: the chain exists with its rules or not at all
    b.add_table(FAM, TABLE).create_chain(FAM, TABLE, LOCALNET_CHAIN, Some(&pre));
    for src in [false, true] {
        let mut r = m::addr_in_prefix(src, "127.0.0.0/8".parse().expect("constant"), false);
        r.extend(m::ifname(true, "lo", true));
        r.extend([Expr::Counter, Expr::Verdict(Verdict::Drop)]);
        let what = if src { "source" } else { "destination" };
        let comment = format!("rcni portmap: loopback {what} from another interface (route_localnet guard, CVE-2020-8558)");
        b.add_rule(FAM, TABLE, LOCALNET_CHAIN, &r, Some(&comment));
    }
    match nft.commit(&b) {
        Err(e) if e.is_exists() => Ok(()), // made concurrently
        r => r,
    }
}

/// A host port another attachment publishes: [`setup`] refuses it and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The mapping asked for.
    pub mapping: Mapping,
    /// The holder's owner comment (`rcni:<tag> net=… id=… if=…`).
    pub holder: String,
}

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.mapping;
        let proto = match m.proto {
            6 => "tcp",
            17 => "udp",
            _ => "sctp",
        };
        write!(f, "host port {}/{proto}", m.host_port)?;
        if let Some(ip) = m.host_ip {
            write!(f, " on {ip}")?;
        }
        // the comment without its tag: "net=… id=… if=…"
        let who = self.holder.split_once(' ').map_or(self.holder.as_str(), |(_, rest)| rest);
        write!(f, " is published for another attachment ({who})")
    }
}

/// Why [`setup`] published nothing.
#[derive(Debug)]
pub enum SetupError {
    /// A port is held by another attachment.
    Held(Held),
    Nft(netkit::Error),
}

impl From<netkit::Error> for SetupError {
    fn from(e: netkit::Error) -> Self {
        SetupError::Nft(e)
    }
}

/// How often [`setup`] starts over when another writer changed the maps between its read and
/// its commit.
const ATTEMPTS: usize = 4;

/// Publishes `maps` for `owner`, all or none. `subnets` are the container's networks (for
/// hairpin masquerade). A host port (same protocol, port and host IP or none) that another
/// attachment publishes is refused ([`SetupError::Held`]): taking it would cut a live container
/// off (and there is no telling a live one from a leak); a leak is released by its attachment's
/// DEL or by GC. The owner's own element (a repeated ADD) is replaced.
pub fn setup(
    nft: &mut dyn Client,
    owner: &Owner,
    s: &Settings,
    subnets: &[IpNet],
    maps: &[Mapping],
) -> std::result::Result<(), SetupError> {
    if maps.is_empty() {
        return Ok(());
    }
    let (n, g) = (network_id(&owner.network), s.generation());
    let retry = |e: &netkit::Error| e.is_exists() || e.is_not_found();
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let mut fast = Batch::new();
        element_batch(&mut fast, &n, &g, owner, subnets, maps);
        match nft.commit(&fast) {
            Ok(()) => return Ok(()),
            Err(e) if e.is_not_found() => {
                let mut full = Batch::new();
                network_batch(&mut full, &owner.network, &n, &g, s);
                element_batch(&mut full, &n, &g, owner, subnets, maps);
                match nft.commit(&full) {
                    Ok(()) => return Ok(()),
                    Err(e) if e.is_exists() => {} // set up concurrently, or a key is taken
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) if e.is_exists() => {}
            Err(e) => return Err(e.into()),
        }
        // some key exists: ours is replaced, another owner's refused
        let mut b = Batch::new();
        for (set, v6) in subnet_sets(&n) {
            let els: Vec<Element> = subnets.iter().filter(|s| s.addr().is_ipv6() == v6).map(|s| Element::prefix(s.trunc())).collect();
            b.add_elements(FAM, TABLE, &set, &els);
        }
        for mp in maps {
            let map = mp.map(&n, &g);
            match nft.get_element(FAM, TABLE, &map, &mp.key())? {
                Some(e) if owner.owns(e.comment.as_deref()) => {
                    b.delete_elements(FAM, TABLE, &map, &[Element::key(e.key)]);
                }
                Some(e) => return Err(SetupError::Held(Held { mapping: mp.clone(), holder: e.comment.unwrap_or_default() })),
                None => {}
            }
            b.create_elements(FAM, TABLE, &map, &[mp.element(owner)]);
        }
        match nft.commit(&b) {
            Ok(()) => return Ok(()),
            // changed since we looked (a concurrent ADD, DEL or GC): look again
            Err(e) if retry(&e) => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.expect("a failed attempt").into())
}

/// The maps where `network`'s attachments may have elements: its own, then those of the naming
/// before network ids were injective (shared by the networks that naming folded together, so
/// only owner-matched elements are taken from them).
fn all_network_maps(nft: &mut dyn Client, network: &str) -> Result<Vec<String>> {
    let (n, old) = (network_id(network), legacy_network_id(network));
    let mut v = nft.sets(FAM, TABLE)?;
    v.retain(|s| map_generation(s, &n).is_some() || old.as_deref().is_some_and(|o| map_generation(s, o).is_some()));
    Ok(v)
}

/// Removes every mapping `owner` has (in any generation). `hint` (the mappings the runtime
/// passes on DEL) makes it a direct lookup in the current generation; without it, or when the
/// hint finds nothing, the network's maps are scanned. Returns whether anything was deleted.
pub fn teardown(nft: &mut dyn Client, owner: &Owner, s: &Settings, hint: &[Mapping]) -> Result<bool> {
    let (n, g) = (network_id(&owner.network), s.generation());
    let mut b = Batch::new();
    for mp in hint {
        let map = mp.map(&n, &g);
        if let Some(e) = nft.get_element(FAM, TABLE, &map, &mp.key())? {
            if owner.owns(e.comment.as_deref()) {
                b.delete_elements(FAM, TABLE, &map, &[Element::key(e.key)]);
            }
        }
    }
    if b.is_empty() {
        for map in all_network_maps(nft, &owner.network)? {
            let mine: Vec<Element> = nft
                .elements(FAM, TABLE, &map)?
                .into_iter()
                .filter(|e| owner.owns(e.comment.as_deref()))
                .map(|e| Element::key(e.key))
                .collect();
            b.delete_elements(FAM, TABLE, &map, &mine);
        }
    }
    if b.is_empty() {
        return Ok(false);
    }
    nft.commit(&b)?;
    Ok(true)
}

/// The generation of a map of network `n` named `name` (`[hw][46]_N_G`, G 8 hex digits).
fn map_generation<'a>(name: &'a str, n: &str) -> Option<&'a str> {
    let rest = ["h4_", "w4_", "h6_", "w6_"].iter().find_map(|p| name.strip_prefix(p))?;
    let g = rest.strip_prefix(n)?.strip_prefix('_')?;
    (g.len() == 8 && g.bytes().all(|b| b.is_ascii_hexdigit())).then_some(g)
}

/// What GC removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Map elements of attachments that are not valid.
    pub elements: usize,
    /// Generations (other than the current settings') that held nothing else, removed whole.
    pub generations: Vec<String>,
}

/// GC: removes the map elements of `network` whose owner's tag is not in `valid_tags`, and then
/// every generation other than that of `current` that is left without elements (its chain, its
/// jump and masquerade rules, its maps): one batch for the elements, then one for the old
/// generations (so a failure there does not keep the elements). Other networks' objects and elements
/// without an rcni owner comment of this network are never touched.
pub fn gc(nft: &mut dyn Client, network: &str, current: &Settings, valid_tags: &HashSet<String>) -> Result<GcReport> {
    let (n, cur) = (network_id(network), current.generation());
    let mut b = Batch::new();
    let mut report = GcReport::default();
    // generation → whether some element stays
    let mut gens: Vec<(String, bool)> = Vec::new();
    let all_sets = nft.sets(FAM, TABLE)?;
    for map in &all_sets {
        let Some(g) = map_generation(map, &n) else { continue };
        let (stale, kept): (Vec<ElementInfo>, Vec<ElementInfo>) =
            nft.elements(FAM, TABLE, map)?.into_iter().partition(|e| is_stale(e.comment.as_deref(), network, valid_tags));
        report.elements += stale.len();
        let stale: Vec<Element> = stale.into_iter().map(|e| Element::key(e.key)).collect();
        b.delete_elements(FAM, TABLE, map, &stale);
        match gens.iter_mut().find(|(x, _)| x == g) {
            Some((_, k)) => *k |= !kept.is_empty(),
            None => gens.push((g.to_string(), !kept.is_empty())),
        }
    }
    let old: Vec<String> = gens.into_iter().filter(|(g, kept)| *g != cur && !kept).map(|(g, _)| g).collect();
    // maps of the naming before ids were injective: their stale elements go; the maps and chains
    // stay (several networks may share them; emptied, they match nothing)
    if let Some(legacy) = legacy_network_id(network) {
        for map in all_sets.iter().filter(|s| map_generation(s, &legacy).is_some()) {
            let stale: Vec<Element> = nft
                .elements(FAM, TABLE, map)?
                .into_iter()
                .filter(|e| is_stale(e.comment.as_deref(), network, valid_tags))
                .map(|e| Element::key(e.key))
                .collect();
            report.elements += stale.len();
            b.delete_elements(FAM, TABLE, map, &stale);
        }
    }
    nft.commit(&b)?;
    let mut b = Batch::new();
    remove_generations(nft, network, &n, &old, &mut b)?;
    report.generations = old;
    nft.commit(&b)?;
    Ok(report)
}

/// Adds to `b` the removal of generations `gens` of `network` (id `n`): their jump and
/// masquerade rules, chains and maps.
fn remove_generations(nft: &mut dyn Client, network: &str, n: &str, gens: &[String], b: &mut Batch) -> Result<()> {
    if gens.is_empty() {
        return Ok(());
    }
    for chain in ["prerouting", "output", "postrouting"] {
        for r in nft.rules(FAM, TABLE, chain)? {
            if gens.iter().any(|g| r.comment.as_deref() == Some(&format!("rcni portmap net={network} gen={g}"))) {
                b.delete_rule(FAM, TABLE, chain, r.handle);
            }
        }
    }
    for g in gens {
        let chain = format!("hp_{n}_{g}");
        b.flush_chain(FAM, TABLE, &chain).delete_chain(FAM, TABLE, &chain);
        for v6 in [false, true] {
            for kind in ["h", "w"] {
                b.delete_set(FAM, TABLE, &format!("{kind}{}_{n}_{g}", if v6 { 6 } else { 4 }));
            }
        }
    }
    Ok(())
}

/// Removes every object of `network` — all its generations and its subnet sets — once none of
/// its maps holds an element (no attachment publishes a port); says whether there was anything to
/// remove. For `rcni network rm`, after the network's last attachment. Objects of the earlier
/// naming (several networks may share them) stay.
pub fn remove_network(nft: &mut dyn Client, network: &str) -> Result<bool> {
    let n = network_id(network);
    let all = match nft.sets(FAM, TABLE) {
        Ok(s) => s,
        Err(e) if e.is_not_found() => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut gens: Vec<String> = Vec::new();
    for map in &all {
        let Some(g) = map_generation(map, &n) else { continue };
        if !nft.elements(FAM, TABLE, map)?.is_empty() {
            return Ok(false);
        }
        if !gens.iter().any(|x| x == g) {
            gens.push(g.to_string());
        }
    }
    let subnets: Vec<String> = subnet_sets(&n).into_iter().map(|(s, _)| s).filter(|s| all.contains(s)).collect();
    if gens.is_empty() && subnets.is_empty() {
        return Ok(false);
    }
    let mut b = Batch::new();
    remove_generations(nft, network, &n, &gens, &mut b)?;
    for s in &subnets {
        b.delete_set(FAM, TABLE, s);
    }
    nft.commit(&b)?;
    Ok(true)
}

/// The mappings of `maps` that are not published for `owner` (for CHECK).
pub fn missing(nft: &mut dyn Client, owner: &Owner, s: &Settings, maps: &[Mapping]) -> Result<Vec<Mapping>> {
    let (n, g) = (network_id(&owner.network), s.generation());
    let legacy = legacy_network_id(&owner.network);
    let mut out = Vec::new();
    for mp in maps {
        let mut found = false;
        // today's map, then (an attachment made before an upgrade) the earlier naming's
        for id in std::iter::once(&n).chain(legacy.as_ref()) {
            let e: Option<ElementInfo> = nft.get_element(FAM, TABLE, &mp.map(id, &g), &mp.key())?;
            if e.is_some_and(|e| owner.owns(e.comment.as_deref())) {
                found = true;
                break;
            }
        }
        if !found {
            out.push(mp.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_data_follow_nft_concatenation_padding() {
        let mp = Mapping { proto: 6, host_port: 8080, host_ip: None, dest: "10.0.0.2".parse().unwrap(), dest_port: 80 };
        assert_eq!(mp.key(), vec![6, 0, 0, 0, 0x1f, 0x90, 0, 0]);
        assert_eq!(mp.data(), vec![10, 0, 0, 2, 0, 80, 0, 0]);
        let h = Mapping { host_ip: Some("192.0.2.1".parse().unwrap()), ..mp.clone() };
        assert_eq!(h.key(), vec![192, 0, 2, 1, 6, 0, 0, 0, 0x1f, 0x90, 0, 0]);
        assert_eq!(map_spec("x".into(), false, true).key_len, 12);
        assert_eq!(map_spec("x".into(), true, true).key_len, 24);
        assert_eq!(map_spec("x".into(), true, false).data, Some((datatype::concat(&[datatype::IP6ADDR, datatype::INET_SERVICE]), 20)));
    }

    #[test]
    fn map_names_give_their_generation() {
        assert_eq!(map_generation("w4_net_0123abcd", "net"), Some("0123abcd"));
        assert_eq!(map_generation("h6_net_0123abcd", "net"), Some("0123abcd"));
        assert_eq!(map_generation("w4_net_b_0123abcd", "net"), None, "network net_b");
        assert_eq!(map_generation("s4_net", "net"), None);
        assert_eq!(map_generation("w4_net_0123abcd", "ne"), None);
        assert_eq!(map_generation("w4_a-b_0123abcd", "a-b"), Some("0123abcd"));
    }

    #[test]
    fn attachments_made_under_the_earlier_naming_are_found() {
        use netkit::nft::FakeNft;
        // before ids were injective, a-b's and a.b's mappings shared the objects named a_b
        let mut f = FakeNft::new();
        let s = Settings::default();
        let g = s.generation();
        let mp = |port: u16, dest: &str| Mapping { proto: 6, host_port: port, host_ip: None, dest: dest.parse().unwrap(), dest_port: 80 };
        let (old_ab, old_adotb) = (Owner::new("a-b", "c1", "eth0"), Owner::new("a.b", "c2", "eth0"));
        let mut b = Batch::new();
        network_batch(&mut b, "a-b", "a_b", &g, &s);
        element_batch(&mut b, "a_b", &g, &old_ab, &["10.6.1.2/24".parse().unwrap()], &[mp(8080, "10.6.1.2")]);
        element_batch(&mut b, "a_b", &g, &old_adotb, &["10.6.2.2/24".parse().unwrap()], &[mp(8081, "10.6.2.2")]);
        f.commit(&b).unwrap();
        let old_map = format!("w4_a_b_{g}");
        // after the upgrade
        let new_ab = Owner::new("a-b", "c3", "eth0");
        setup(&mut f, &new_ab, &s, &["10.6.1.3/24".parse().unwrap()], &[mp(8082, "10.6.1.3")]).unwrap();
        assert_eq!(f.element_texts(FAM, TABLE, &format!("w4_a-b_{g}")).len(), 1, "new attachments go to the network's own map");
        assert!(missing(&mut f, &old_ab, &s, &[mp(8080, "10.6.1.2")]).unwrap().is_empty(), "CHECK finds the old mapping");
        assert!(teardown(&mut f, &old_ab, &s, &[mp(8080, "10.6.1.2")]).unwrap(), "DEL by hint falls back to a scan");
        assert_eq!(f.element_texts(FAM, TABLE, &old_map).len(), 1, "a.b's old mapping stays");
        let report = gc(&mut f, "a.b", &s, &HashSet::new()).unwrap();
        assert_eq!((report.elements, report.generations.len()), (1, 0));
        assert!(f.element_texts(FAM, TABLE, &old_map).is_empty());
        assert_eq!(f.element_texts(FAM, TABLE, &format!("w4_a-b_{g}")).len(), 1, "another network's GC");
        assert_eq!(gc(&mut f, "a-b", &s, &HashSet::new()).unwrap().elements, 1);
    }

    #[test]
    fn generations_differ_by_settings() {
        let s = Settings { snat: true, masq_all: false, mark_bit: 13, cond_v4: vec![], cond_v6: vec![] };
        let t = Settings { mark_bit: 14, ..s.clone() };
        assert_ne!(s.generation(), t.generation());
        assert_eq!(s.generation(), s.clone().generation());
        assert_eq!(s.generation().len(), 8);
    }
}

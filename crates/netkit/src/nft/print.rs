//! nft's syntax for what rcni writes: a batch as an `nft -f` script, a rule's expressions as the
//! match they implement (`meta nfproto ipv4 ip saddr @m4_n goto masq_n`), set elements by the
//! set's key type. Expressions are decompiled by following the registers they load and consume;
//! a sequence this printer does not know shows as its raw steps in brackets, so nothing is
//! hidden.

use super::{datatype, BaseChain, Batch, CmpOp, Element, Expr, Family, HookPoint, MetaKind, Op, PayloadBase, SetSpec, Verdict};
use std::collections::HashMap;
use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The type of a set, looked up by (family, table, set).
pub(super) type SetTypes<'a> = &'a dyn Fn(Family, &str, &str) -> Option<SetSpec>;

/// How a value is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Nfproto,
    L4proto,
    Ifname,
    Ipv4,
    Ipv6,
    Ether,
    Mark,
    Port,
    CtState,
    FibType,
    Raw,
}

fn kind_of_type(t: u32) -> Kind {
    match t {
        datatype::IPADDR => Kind::Ipv4,
        datatype::IP6ADDR => Kind::Ipv6,
        datatype::ETHERADDR => Kind::Ether,
        datatype::INET_PROTOCOL => Kind::L4proto,
        datatype::INET_SERVICE => Kind::Port,
        datatype::IFNAME => Kind::Ifname,
        _ => Kind::Raw,
    }
}

fn type_name(t: u32) -> String {
    match t {
        datatype::INTEGER => "integer".into(),
        datatype::IPADDR => "ipv4_addr".into(),
        datatype::IP6ADDR => "ipv6_addr".into(),
        datatype::ETHERADDR => "ether_addr".into(),
        datatype::INET_PROTOCOL => "inet_proto".into(),
        datatype::INET_SERVICE => "inet_service".into(),
        datatype::IFNAME => "ifname".into(),
        other => format!("type{other}"),
    }
}

/// A (possibly concatenated) type: `inet_proto . inet_service`.
pub(super) fn types(t: u32) -> String {
    datatype::fields(t).into_iter().map(type_name).collect::<Vec<_>>().join(" . ")
}

/// The byte length of one field of a type (`None`: as long as what is left).
fn type_len(t: u32) -> Option<usize> {
    match t {
        datatype::IPADDR => Some(4),
        datatype::IP6ADDR => Some(16),
        datatype::ETHERADDR => Some(6),
        datatype::INET_PROTOCOL => Some(1),
        datatype::INET_SERVICE => Some(2),
        datatype::IFNAME => Some(16),
        _ => None,
    }
}

fn hex(b: &[u8]) -> String {
    let mut s = String::from("0x");
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn ne_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(..4)?.try_into().ok()?))
}

/// The prefix length of a contiguous netmask.
fn prefix_len(mask: &[u8]) -> Option<u32> {
    let ones: u32 = mask.iter().map(|b| b.count_ones()).sum();
    let bits: Vec<bool> = mask.iter().flat_map(|b| (0..8).rev().map(move |i| b >> i & 1 == 1)).collect();
    (bits.iter().take(ones as usize).all(|b| *b) && bits.iter().skip(ones as usize).all(|b| !*b)).then_some(ones)
}

/// A value of `kind` as nft shows it.
pub(super) fn value(kind: Kind, b: &[u8]) -> String {
    match kind {
        Kind::Nfproto => match b {
            [2] => "ipv4".into(),
            [10] => "ipv6".into(),
            _ => hex(b),
        },
        Kind::L4proto => match b.first() {
            Some(6) => "tcp".into(),
            Some(17) => "udp".into(),
            Some(132) => "sctp".into(),
            Some(1) => "icmp".into(),
            Some(58) => "ipv6-icmp".into(),
            Some(n) => n.to_string(),
            None => hex(b),
        },
        Kind::Ifname => format!("\"{}\"", String::from_utf8_lossy(b.split(|c| *c == 0).next().unwrap_or(&[]))),
        Kind::Ipv4 => match <[u8; 4]>::try_from(b.get(..4).unwrap_or(&[])) {
            Ok(a) => Ipv4Addr::from(a).to_string(),
            Err(_) => hex(b),
        },
        Kind::Ipv6 => match <[u8; 16]>::try_from(b.get(..16).unwrap_or(&[])) {
            Ok(a) => Ipv6Addr::from(a).to_string(),
            Err(_) => hex(b),
        },
        Kind::Ether if b.len() == 6 => b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":"),
        Kind::Port => match b.get(..2) {
            Some(p) => u16::from_be_bytes([p[0], p[1]]).to_string(),
            None => hex(b),
        },
        Kind::Mark => ne_u32(b).map_or_else(|| hex(b), |v| format!("0x{v:08x}")),
        Kind::CtState => {
            let v = ne_u32(b).unwrap_or(0);
            let names: Vec<&str> = [(1, "invalid"), (2, "established"), (4, "related"), (8, "new"), (64, "untracked")]
                .iter()
                .filter(|(bit, _)| v & bit != 0)
                .map(|(_, n)| *n)
                .collect();
            if names.is_empty() {
                hex(b)
            } else {
                names.join(",")
            }
        }
        Kind::FibType => match ne_u32(b) {
            Some(1) => "unicast".into(),
            Some(2) => "local".into(),
            Some(3) => "broadcast".into(),
            Some(4) => "anycast".into(),
            Some(5) => "multicast".into(),
            _ => hex(b),
        },
        Kind::Ether | Kind::Raw => hex(b),
    }
}

/// A set key or map data of type `t`: each field in its 4-byte-aligned slot.
fn typed(t: u32, b: &[u8]) -> String {
    let fields = datatype::fields(t);
    if fields.len() == 1 {
        return value(kind_of_type(fields[0]), b);
    }
    let mut out = Vec::new();
    let mut off = 0;
    for f in fields {
        let Some(len) = type_len(f) else { return hex(b) };
        let Some(v) = b.get(off..off + len) else { return hex(b) };
        out.push(value(kind_of_type(f), v));
        off += len.div_ceil(4) * 4;
    }
    out.join(" . ")
}

/// An interval `[start, end)` as a prefix when it is one, else as `first-last`.
fn interval(kind: Kind, start: &[u8], end: &[u8]) -> String {
    let (s, e) = (be(start), be(end));
    let bits = start.len() * 8;
    let size = e.wrapping_sub(s);
    if size.is_power_of_two() && s % size == 0 {
        let plen = bits as u32 - size.trailing_zeros();
        return format!("{}/{plen}", value(kind, start));
    }
    let last = e.wrapping_sub(1).to_be_bytes();
    format!("{}-{}", value(kind, start), value(kind, &last[16 - start.len()..]))
}

pub(super) fn be(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |acc, x| (acc << 8) | u128::from(*x))
}

/// An element as the set's type shows it (`10.0.0.2 comment "…"`, `tcp . 8080 : 10.0.0.2 . 80`).
pub(super) fn element(spec: Option<&SetSpec>, e: &Element) -> String {
    let mut s = match spec {
        Some(sp) => match &e.key_end {
            Some(end) if sp.interval && e.key.len() == end.len() && e.key.len() <= 16 => interval(kind_of_type(sp.key_type), &e.key, end),
            _ => typed(sp.key_type, &e.key),
        },
        None => hex(&e.key),
    };
    if let Some(d) = &e.data {
        let _ = write!(s, " : {}", spec.and_then(|sp| sp.data).map_or_else(|| hex(d), |(t, _)| typed(t, d)));
    }
    if let Some(c) = &e.comment {
        let _ = write!(s, " comment \"{c}\"");
    }
    s
}

fn hook_name(h: HookPoint) -> &'static str {
    match h {
        HookPoint::Prerouting => "prerouting",
        HookPoint::Input => "input",
        HookPoint::Forward => "forward",
        HookPoint::Output => "output",
        HookPoint::Postrouting => "postrouting",
    }
}

/// `type nat hook postrouting priority 100; policy accept;`
pub(super) fn base_chain(b: &BaseChain) -> String {
    format!("type {} hook {} priority {}; policy {};", b.kind, hook_name(b.hook), b.priority, if b.accept { "accept" } else { "drop" })
}

/// `type ipv4_addr; flags interval;` (maps: `type K : V;`)
pub(super) fn set_body(s: &SetSpec) -> String {
    let mut out = format!("type {}", types(s.key_type));
    if let Some((t, _)) = s.data {
        let _ = write!(out, " : {}", types(t));
    }
    out.push(';');
    if s.interval {
        out.push_str(" flags interval;");
    }
    out
}

/// A loaded value on its way to a comparison, lookup or statement.
#[derive(Debug, Clone)]
struct Val {
    text: String,
    kind: Kind,
    /// From a bitwise AND with nothing XORed (a prefix, or a bit test).
    mask: Option<Vec<u8>>,
}

/// The first 4-byte slot of a register (registers 1–4 are four slots each, from 8).
fn slot(reg: u32) -> u32 {
    if (1..=4).contains(&reg) {
        8 + 4 * (reg - 1)
    } else {
        reg
    }
}

fn meta_text(k: MetaKind) -> (&'static str, Kind) {
    match k {
        MetaKind::Nfproto => ("meta nfproto", Kind::Nfproto),
        MetaKind::L4proto => ("meta l4proto", Kind::L4proto),
        MetaKind::Iifname => ("iifname", Kind::Ifname),
        MetaKind::Oifname => ("oifname", Kind::Ifname),
        MetaKind::Mark => ("meta mark", Kind::Mark),
    }
}

fn payload_text(base: PayloadBase, offset: u32, len: u32) -> (String, Kind) {
    match (base, offset, len) {
        (PayloadBase::Network, 12, 4) => ("ip saddr".into(), Kind::Ipv4),
        (PayloadBase::Network, 16, 4) => ("ip daddr".into(), Kind::Ipv4),
        (PayloadBase::Network, 8, 16) => ("ip6 saddr".into(), Kind::Ipv6),
        (PayloadBase::Network, 24, 16) => ("ip6 daddr".into(), Kind::Ipv6),
        (PayloadBase::Link, 0, 6) => ("ether daddr".into(), Kind::Ether),
        (PayloadBase::Link, 6, 6) => ("ether saddr".into(), Kind::Ether),
        (PayloadBase::Transport, 0, 2) => ("th sport".into(), Kind::Port),
        (PayloadBase::Transport, 2, 2) => ("th dport".into(), Kind::Port),
        (b, o, l) => {
            let h = match b {
                PayloadBase::Link => "ll",
                PayloadBase::Network => "nh",
                PayloadBase::Transport => "th",
            };
            (format!("@{h},{},{}", o * 8, l * 8), Kind::Raw)
        }
    }
}

fn verdict(v: &Verdict) -> String {
    match v {
        Verdict::Accept => "accept".into(),
        Verdict::Drop => "drop".into(),
        Verdict::Return => "return".into(),
        Verdict::Jump(c) => format!("jump {c}"),
        Verdict::Goto(c) => format!("goto {c}"),
    }
}

/// A rule's expressions in nft's syntax.
pub(super) fn rule(exprs: &[Expr]) -> String {
    let mut regs: HashMap<u32, Val> = HashMap::new();
    let mut out: Vec<String> = Vec::new();
    let load = |regs: &mut HashMap<u32, Val>, reg: u32, text: String, kind: Kind| {
        regs.insert(slot(reg), Val { text, kind, mask: None });
    };
    // the values of a concatenation starting at `reg`, in slot order, consumed
    let concat = |regs: &mut HashMap<u32, Val>, reg: u32| -> String {
        let mut slots: Vec<u32> = regs.keys().copied().filter(|s| *s >= slot(reg)).collect();
        slots.sort();
        slots.iter().filter_map(|s| regs.remove(s)).map(|v| v.text).collect::<Vec<_>>().join(" . ")
    };
    for e in exprs {
        match e {
            Expr::Meta { key, reg } => {
                let (t, k) = meta_text(*key);
                load(&mut regs, *reg, t.into(), k);
            }
            Expr::Payload { base, offset, len, reg } => {
                let (t, k) = payload_text(*base, *offset, *len);
                load(&mut regs, *reg, t, k);
            }
            Expr::CtState { reg } => load(&mut regs, *reg, "ct state".into(), Kind::CtState),
            Expr::FibDaddrType { reg } => load(&mut regs, *reg, "fib daddr type".into(), Kind::FibType),
            Expr::Immediate { reg, data } => load(&mut regs, *reg, hex(data), Kind::Raw),
            Expr::Bitwise { reg, mask, xor, .. } => match regs.get_mut(&slot(*reg)) {
                Some(v) if xor.iter().all(|b| *b == 0) && v.mask.is_none() => v.mask = Some(mask.clone()),
                Some(v) if mask.iter().zip(xor).all(|(m, x)| *m == !*x) => {
                    v.text = format!("{} | {}", v.text, value(v.kind, xor));
                }
                _ => out.push(format!("[bitwise reg {reg} & {} ^ {}]", hex(mask), hex(xor))),
            },
            Expr::Cmp { op, reg, data } => {
                let neg = *op == CmpOp::Ne;
                let Some(v) = regs.remove(&slot(*reg)) else {
                    out.push(format!("[cmp reg {reg} {} {}]", if neg { "!=" } else { "==" }, hex(data)));
                    continue;
                };
                let text = match (&v.mask, v.kind) {
                    // `ct state established,related`: the mask names the states, compared != 0
                    (Some(m), Kind::CtState) if neg && data.iter().all(|b| *b == 0) => format!("{} {}", v.text, value(Kind::CtState, m)),
                    (Some(m), Kind::Ipv4 | Kind::Ipv6) if prefix_len(m).is_some() => {
                        let p = prefix_len(m).unwrap_or(0);
                        format!("{} {}{}/{p}", v.text, if neg { "!= " } else { "" }, value(v.kind, data))
                    }
                    (Some(m), k) => format!("{} & {} {} {}", v.text, value(k, m), if neg { "!=" } else { "==" }, value(k, data)),
                    (None, k) => format!("{} {}{}", v.text, if neg { "!= " } else { "" }, value(k, data)),
                };
                out.push(text);
            }
            Expr::Lookup { set, reg, invert } => {
                let keys = concat(&mut regs, *reg);
                out.push(format!("{keys} {}@{set}", if *invert { "!= " } else { "" }));
            }
            Expr::MapLookup { set, reg, dreg } => {
                let keys = concat(&mut regs, *reg);
                load(&mut regs, *dreg, format!("{keys} map @{set}"), Kind::Raw);
            }
            Expr::MetaSet { key, reg } => {
                let (t, _) = meta_text(*key);
                let v = regs.remove(&slot(*reg)).map_or_else(|| format!("reg {reg}"), |v| v.text);
                out.push(format!("{t} set {v}"));
            }
            Expr::Nat { dnat, v6, addr_reg, port_reg } => {
                let fam = if *v6 { "ip6" } else { "ip" };
                let verb = if *dnat { "dnat" } else { "snat" };
                let addr = regs.remove(&slot(*addr_reg)).map_or_else(|| format!("reg {addr_reg}"), |v| v.text);
                match port_reg {
                    // the address and the port both come from one map lookup
                    Some(p) if addr.contains(" map @") => {
                        regs.remove(&slot(*p));
                        out.push(format!("{verb} {fam} addr . port to {addr}"));
                    }
                    Some(p) => {
                        let port = regs.remove(&slot(*p)).map_or_else(|| format!("reg {p}"), |v| v.text);
                        out.push(format!("{verb} {fam} to {addr}:{port}"));
                    }
                    None => out.push(format!("{verb} {fam} to {addr}")),
                }
            }
            Expr::Counter => out.push("counter".into()),
            Expr::Masquerade => out.push("masquerade".into()),
            Expr::Verdict(v) => out.push(verdict(v)),
        }
    }
    out.join(" ")
}

/// A batch as an `nft -f` script, one operation per line. Set types come from the batch's own
/// set declarations, then from `known`.
pub(super) fn batch(b: &Batch, known: SetTypes) -> String {
    let declared: Vec<(Family, &str, &SetSpec)> = b
        .ops()
        .iter()
        .filter_map(|op| match op {
            Op::AddSet { at, set } => Some((at.family, at.table.as_str(), set)),
            _ => None,
        })
        .collect();
    let spec = |f: Family, t: &str, s: &str| -> Option<SetSpec> {
        declared.iter().find(|(df, dt, ds)| *df == f && *dt == t && ds.name == s).map(|(_, _, d)| (*d).clone()).or_else(|| known(f, t, s))
    };
    let mut out = String::new();
    for op in b.ops() {
        let line = match op {
            Op::AddTable { at } => format!("add table {} {}", at.family.name(), at.table),
            Op::AddChain { at, chain, base, exclusive } => {
                let verb = if *exclusive { "create" } else { "add" };
                let body = base.as_ref().map(|b| format!(" {{ {} }}", base_chain(b))).unwrap_or_default();
                format!("{verb} chain {} {} {chain}{body}", at.family.name(), at.table)
            }
            Op::DeleteChain { at, chain } => format!("delete chain {} {} {chain}", at.family.name(), at.table),
            Op::FlushChain { at, chain } => format!("flush chain {} {} {chain}", at.family.name(), at.table),
            Op::AddSet { at, set } => {
                let what = if set.data.is_some() { "map" } else { "set" };
                format!("add {what} {} {} {} {{ {} }}", at.family.name(), at.table, set.name, set_body(set))
            }
            Op::DeleteSet { at, set } => format!("delete set {} {} {set}", at.family.name(), at.table),
            Op::AddElements { at, set, elements, exclusive } => {
                let sp = spec(at.family, &at.table, set);
                let els: Vec<String> = elements.iter().map(|e| element(sp.as_ref(), e)).collect();
                let verb = if *exclusive { "create" } else { "add" };
                format!("{verb} element {} {} {set} {{ {} }}", at.family.name(), at.table, els.join(", "))
            }
            Op::DeleteElements { at, set, elements } => {
                let sp = spec(at.family, &at.table, set);
                let els: Vec<String> = elements.iter().map(|e| element(sp.as_ref(), e)).collect();
                format!("delete element {} {} {set} {{ {} }}", at.family.name(), at.table, els.join(", "))
            }
            Op::AddRule { at, chain, exprs, comment } => {
                let c = comment.as_ref().map(|c| format!(" comment \"{c}\"")).unwrap_or_default();
                format!("add rule {} {} {chain} {}{c}", at.family.name(), at.table, rule(exprs))
            }
            Op::DeleteRule { at, chain, handle } => format!("delete rule {} {} {chain} handle {handle}", at.family.name(), at.table),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{ifname_bytes, m};
    use super::*;

    #[test]
    fn rules_read_as_nft_writes_them() {
        let mut r = m::addr_in_set(false, true, "m4_n", false);
        r.push(Expr::Verdict(Verdict::Goto("masq_n".into())));
        assert_eq!(rule(&r), "meta nfproto ipv4 ip saddr @m4_n goto masq_n");
        let mut r = m::addr_in_prefix(false, "224.0.0.0/4".parse().unwrap(), false);
        r.push(Expr::Verdict(Verdict::Return));
        assert_eq!(rule(&r), "meta nfproto ipv4 ip daddr 224.0.0.0/4 return");
        assert_eq!(rule(&m::addr_in_prefix(true, "fd00::1/128".parse().unwrap(), true)), "meta nfproto ipv6 ip6 saddr != fd00::1");
        let mut r = m::ifname(true, "br0", false);
        r.extend(m::ifname(false, "br0", true));
        r.extend([Expr::Meta { key: MetaKind::Oifname, reg: 1 }, Expr::Lookup { set: "iso_br".into(), reg: 1, invert: false }]);
        r.push(Expr::Verdict(Verdict::Drop));
        assert_eq!(rule(&r), "iifname \"br0\" oifname != \"br0\" oifname @iso_br drop");
        let ct = [
            Expr::CtState { reg: 1 },
            Expr::Bitwise { reg: 1, len: 4, mask: 6u32.to_ne_bytes().to_vec(), xor: vec![0; 4] },
            Expr::Cmp { op: CmpOp::Ne, reg: 1, data: vec![0; 4] },
            Expr::Verdict(Verdict::Accept),
        ];
        assert_eq!(rule(&ct), "ct state established,related accept");
        let spoof = [
            Expr::Meta { key: MetaKind::Iifname, reg: 1 },
            Expr::Cmp { op: CmpOp::Eq, reg: 1, data: ifname_bytes("veth1") },
            Expr::Payload { base: PayloadBase::Link, offset: 6, len: 6, reg: 1 },
            Expr::Cmp { op: CmpOp::Ne, reg: 1, data: vec![2, 0, 0, 0, 0, 1] },
            Expr::Verdict(Verdict::Drop),
        ];
        assert_eq!(rule(&spoof), "iifname \"veth1\" ether saddr != 02:00:00:00:00:01 drop");
        let bit = 1u32 << 13;
        let mark = [
            Expr::Meta { key: MetaKind::Mark, reg: 1 },
            Expr::Bitwise { reg: 1, len: 4, mask: bit.to_ne_bytes().to_vec(), xor: vec![0; 4] },
            Expr::Cmp { op: CmpOp::Eq, reg: 1, data: bit.to_ne_bytes().to_vec() },
            Expr::Masquerade,
        ];
        assert_eq!(rule(&mark), "meta mark & 0x00002000 == 0x00002000 masquerade");
        let fib = [
            Expr::FibDaddrType { reg: 1 },
            Expr::Cmp { op: CmpOp::Eq, reg: 1, data: 2u32.to_ne_bytes().to_vec() },
            Expr::Verdict(Verdict::Jump("hp".into())),
        ];
        assert_eq!(rule(&fib), "fib daddr type local jump hp");
        // the portmap DNAT: a concatenated key looked up in a map, the mark bit set, then DNAT
        let dnat = [
            Expr::Payload { base: PayloadBase::Network, offset: 16, len: 4, reg: 1 },
            Expr::Meta { key: MetaKind::L4proto, reg: 9 },
            Expr::Payload { base: PayloadBase::Transport, offset: 2, len: 2, reg: 10 },
            Expr::MapLookup { set: "h4_n_g".into(), reg: 1, dreg: 1 },
            Expr::Meta { key: MetaKind::Mark, reg: 3 },
            Expr::Bitwise { reg: 3, len: 4, mask: (!bit).to_ne_bytes().to_vec(), xor: bit.to_ne_bytes().to_vec() },
            Expr::MetaSet { key: MetaKind::Mark, reg: 3 },
            Expr::Nat { dnat: true, v6: false, addr_reg: 1, port_reg: Some(9) },
        ];
        assert_eq!(
            rule(&dnat),
            "meta mark set meta mark | 0x00002000 dnat ip addr . port to ip daddr . meta l4proto . th dport map @h4_n_g"
        );
        // unknown shapes stay visible
        assert_eq!(rule(&[Expr::Cmp { op: CmpOp::Eq, reg: 2, data: vec![1] }]), "[cmp reg 2 == 0x01]");
    }

    #[test]
    fn elements_by_set_type() {
        let s = SetSpec::prefixes("d4", false);
        assert_eq!(element(Some(&s), &Element::prefix("10.1.0.0/16".parse().unwrap())), "10.1.0.0/16");
        let s6 = SetSpec::prefixes("d6", true);
        assert_eq!(element(Some(&s6), &Element::prefix("fd00:1::/64".parse().unwrap())), "fd00:1::/64");
        let mut odd = Element::key(vec![10, 0, 0, 1]);
        odd.key_end = Some(vec![10, 0, 0, 4]);
        assert_eq!(element(Some(&s), &odd), "10.0.0.1-10.0.0.3");
        let map = SetSpec {
            name: "w4".into(),
            key_type: datatype::concat(&[datatype::INET_PROTOCOL, datatype::INET_SERVICE]),
            key_len: 8,
            interval: false,
            data: Some((datatype::concat(&[datatype::IPADDR, datatype::INET_SERVICE]), 8)),
            concat: vec![1, 2],
        };
        let e = Element::key(vec![17, 0, 0, 0, 0x1f, 0x90, 0, 0]).with_data(vec![10, 0, 0, 2, 0, 80, 0, 0]).with_comment("c");
        assert_eq!(element(Some(&map), &e), "udp . 8080 : 10.0.0.2 . 80 comment \"c\"");
        assert_eq!(set_body(&map), "type inet_proto . inet_service : ipv4_addr . inet_service;");
        assert_eq!(element(Some(&SetSpec::ifnames("iso")), &Element::key(ifname_bytes("br0"))), "\"br0\"");
        assert_eq!(element(None, &Element::key(vec![1, 2])), "0x0102");
    }
}

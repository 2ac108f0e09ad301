//! Rule expressions, as nf_tables executes them: loads into registers, comparisons, lookups,
//! NAT, verdicts. [`m`] builds the matches rcni's layouts use.

use super::{ifname_bytes, ip_bytes};

/// Where a verdict sends the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
    Return,
    Jump(String),
    Goto(String),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
}

/// Header a payload offset is relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadBase {
    Link = 0,
    Network = 1,
    Transport = 2,
}

/// Meta keys rcni matches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKind {
    Nfproto,
    L4proto,
    Iifname,
    Oifname,
    Mark,
}

/// One rule expression. Registers: 1–4 are the 16-byte registers, 8–23 the 4-byte ones
/// (`NFT_REG32_00`…; register 1 is the same storage as 8–11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Load a meta value into `reg`.
    Meta {
        key: MetaKind,
        reg: u32,
    },
    /// Set a meta value from `reg` (e.g. the packet mark).
    MetaSet {
        key: MetaKind,
        reg: u32,
    },
    /// Load `len` bytes at `offset` of a header into `reg`.
    Payload {
        base: PayloadBase,
        offset: u32,
        len: u32,
        reg: u32,
    },
    /// Compare `reg` with bytes.
    Cmp {
        op: CmpOp,
        reg: u32,
        data: Vec<u8>,
    },
    /// `reg = (reg & mask) ^ xor` over `len` bytes.
    Bitwise {
        reg: u32,
        len: u32,
        mask: Vec<u8>,
        xor: Vec<u8>,
    },
    /// Look `reg` up in a named set (negated with `invert`).
    Lookup {
        set: String,
        reg: u32,
        invert: bool,
    },
    /// Look `reg` up in a map and put the value in `dreg`.
    MapLookup {
        set: String,
        reg: u32,
        dreg: u32,
    },
    /// Load constant bytes into `reg`.
    Immediate {
        reg: u32,
        data: Vec<u8>,
    },
    /// Load the conntrack state bitmask into `reg`.
    CtState {
        reg: u32,
    },
    /// `fib daddr type` into `reg` (address type of the destination, e.g. local = 2).
    FibDaddrType {
        reg: u32,
    },
    Counter,
    Masquerade,
    /// DNAT/SNAT to the address in `addr_reg` (and port in `port_reg`), for family IPv4/IPv6.
    Nat {
        dnat: bool,
        v6: bool,
        addr_reg: u32,
        port_reg: Option<u32>,
    },
    Verdict(Verdict),
}

impl Expr {
    /// The sets this expression reads.
    pub fn set(&self) -> Option<&str> {
        match self {
            Expr::Lookup { set, .. } | Expr::MapLookup { set, .. } => Some(set),
            _ => None,
        }
    }

    /// The chain a jump or goto goes to.
    pub fn target(&self) -> Option<&str> {
        match self {
            Expr::Verdict(Verdict::Jump(c) | Verdict::Goto(c)) => Some(c),
            _ => None,
        }
    }
}

/// The first 4-byte register of the 16-byte register 1 (`NFT_REG32_00`).
pub const REG32_00: u32 = 8;

/// Expression builders for common matches.
pub mod m {
    use super::*;

    /// `meta nfproto ipv4|ipv6` (needed before IP header matches in inet tables).
    pub fn nfproto(v6: bool) -> Vec<Expr> {
        vec![Expr::Meta { key: MetaKind::Nfproto, reg: 1 }, Expr::Cmp { op: CmpOp::Eq, reg: 1, data: vec![if v6 { 10 } else { 2 }] }]
    }

    fn addr_offset(v6: bool, src: bool) -> (u32, u32) {
        match (v6, src) {
            (false, true) => (12, 4),
            (false, false) => (16, 4),
            (true, true) => (8, 16),
            (true, false) => (24, 16),
        }
    }

    /// `ip saddr|daddr` into register 1.
    pub fn load_addr(v6: bool, src: bool) -> Expr {
        let (offset, len) = addr_offset(v6, src);
        Expr::Payload { base: PayloadBase::Network, offset, len, reg: 1 }
    }

    /// `ip(6) saddr|daddr [!=] @set` (with its `meta nfproto` dependency).
    pub fn addr_in_set(v6: bool, src: bool, set: &str, invert: bool) -> Vec<Expr> {
        let mut out = nfproto(v6);
        out.extend([load_addr(v6, src), Expr::Lookup { set: set.into(), reg: 1, invert }]);
        out
    }

    /// `ip(6) saddr|daddr [!=] <prefix>` (with its `meta nfproto` dependency).
    pub fn addr_in_prefix(src: bool, net: ipnet::IpNet, negate: bool) -> Vec<Expr> {
        let v6 = net.addr().is_ipv6();
        let mut out = nfproto(v6);
        out.push(load_addr(v6, src));
        let len = if v6 { 16 } else { 4 };
        if net.prefix_len() as u32 != len * 8 {
            out.push(Expr::Bitwise { reg: 1, len, mask: ip_bytes(net.netmask()), xor: vec![0; len as usize] });
        }
        out.push(Expr::Cmp { op: if negate { CmpOp::Ne } else { CmpOp::Eq }, reg: 1, data: ip_bytes(net.network()) });
        out
    }

    /// The matches of `parts` one after another, each `meta nfproto` dependency once (a
    /// repeated one would only test the packet's family again).
    pub fn all(parts: impl IntoIterator<Item = Vec<Expr>>) -> Vec<Expr> {
        let mut out: Vec<Expr> = Vec::new();
        for p in parts {
            let mut i = 0;
            while i < p.len() {
                let dep = matches!(p[i], Expr::Meta { key: MetaKind::Nfproto, .. }) && i + 1 < p.len();
                if dep && out.windows(2).any(|w| w[0] == p[i] && w[1] == p[i + 1]) {
                    i += 2;
                    continue;
                }
                out.push(p[i].clone());
                i += 1;
            }
        }
        out
    }

    /// `iifname|oifname [!=] <name>`.
    pub fn ifname(input: bool, name: &str, negate: bool) -> Vec<Expr> {
        vec![
            Expr::Meta { key: if input { MetaKind::Iifname } else { MetaKind::Oifname }, reg: 1 },
            Expr::Cmp { op: if negate { CmpOp::Ne } else { CmpOp::Eq }, reg: 1, data: ifname_bytes(name) },
        ]
    }
}

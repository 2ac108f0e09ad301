//! nftables over netlink (no `nft` process): tables, chains, sets with elements, rules with
//! comments, committed in one atomic batch per call; and the dumps needed to find objects by
//! owner.
//!
//! Rule and element comments use the TLV form `nft` writes into `NFTA_*_USERDATA`, so
//! `nft list ruleset` shows them. Deleting nf_tables objects makes the kernel keep the deleting
//! process waiting when it closes its socket (the deletion is committed before that); see
//! [`Nft::close_in_background`].

use crate::error::{Error, Result};
use netlink_packet_core::{
    DefaultNla, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_netfilter::nftables::{
    Bitwise, ChainAttribute, ChainMessage, Cmp, DataAttribute, ExpressionAttribute, Expressions, Hook, HookNumber, Immediate,
    ListAttribute, Lookup, Meta, MetaKey, NfTablesMessage, Operator, Payload, Register, RuleAttribute, RuleMessage, SetAttribute,
    SetElementAttribute, SetElementFlags, SetElementList, SetElementMessage, SetFlags, SetMessage, TableAttribute, TableMessage,
    Verdict as NlVerdict, VerdictAttribute,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily};
use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use std::net::IpAddr;
use std::os::fd::AsRawFd;

/// nftables address families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Inet,
    Ip,
    Ip6,
    Bridge,
}

impl Family {
    fn proto(self) -> NetfilterProtoFamily {
        match self {
            Family::Inet => NetfilterProtoFamily::Inet,
            Family::Ip => NetfilterProtoFamily::IPv4,
            Family::Ip6 => NetfilterProtoFamily::IPv6,
            Family::Bridge => NetfilterProtoFamily::Bridge,
        }
    }
}

/// Netfilter hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookPoint {
    Prerouting = 0,
    Input = 1,
    Forward = 2,
    Output = 3,
    Postrouting = 4,
}

/// A base chain's hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseChain {
    /// `filter`, `nat` or `route`.
    pub kind: &'static str,
    pub hook: HookPoint,
    pub priority: i32,
    /// Policy accept (true) or drop.
    pub accept: bool,
}

/// nft datatypes for set keys (`nft`'s TYPE_* numbering, used for display).
pub mod datatype {
    pub const INTEGER: u32 = 4;
    pub const IPADDR: u32 = 7;
    pub const IP6ADDR: u32 = 8;
    pub const ETHERADDR: u32 = 9;
    pub const INET_PROTOCOL: u32 = 12;
    pub const INET_SERVICE: u32 = 13;
    pub const IFNAME: u32 = 41;
    /// A concatenation of types, as `nft` encodes it.
    pub fn concat(types: &[u32]) -> u32 {
        types.iter().fold(0, |acc, t| (acc << 6) | t)
    }
}

/// A set to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetSpec {
    pub name: String,
    pub key_type: u32,
    pub key_len: u32,
    /// Elements are address ranges (prefixes).
    pub interval: bool,
    /// For maps: data type and length.
    pub data: Option<(u32, u32)>,
    /// For concatenated keys: the length of each field.
    pub concat: Vec<u32>,
}

impl SetSpec {
    /// A set of IPv4 (`v6` false) or IPv6 addresses.
    pub fn addrs(name: impl Into<String>, v6: bool) -> Self {
        SetSpec {
            name: name.into(),
            key_type: if v6 { datatype::IP6ADDR } else { datatype::IPADDR },
            key_len: if v6 { 16 } else { 4 },
            interval: false,
            data: None,
            concat: Vec::new(),
        }
    }

    /// A set of IPv4 or IPv6 prefixes.
    pub fn prefixes(name: impl Into<String>, v6: bool) -> Self {
        SetSpec { interval: true, ..Self::addrs(name, v6) }
    }
}

/// A set element: a key (or a key range for interval sets), optional map data, a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub key: Vec<u8>,
    /// For interval sets: the first value after the range (exclusive end); `None` means the key
    /// alone.
    pub key_end: Option<Vec<u8>>,
    pub data: Option<Vec<u8>>,
    pub comment: Option<String>,
}

impl Element {
    pub fn key(key: Vec<u8>) -> Self {
        Element { key, key_end: None, data: None, comment: None }
    }

    pub fn addr(ip: IpAddr) -> Self {
        Self::key(ip_bytes(ip))
    }

    /// A prefix in an interval set: `[network, broadcast + 1)`.
    pub fn prefix(net: ipnet::IpNet) -> Self {
        let start = ip_bytes(net.network());
        let end = match net {
            ipnet::IpNet::V4(n) => (u32::from(n.broadcast()) as u64 + 1).to_be_bytes()[4..].to_vec(),
            ipnet::IpNet::V6(n) => {
                let b = u128::from(n.broadcast());
                b.wrapping_add(1).to_be_bytes().to_vec()
            }
        };
        let whole = net.prefix_len() == 0;
        Element { key: start, key_end: if whole { None } else { Some(end) }, data: None, comment: None }
    }

    pub fn with_comment(mut self, c: impl Into<String>) -> Self {
        self.comment = Some(c.into());
        self
    }
}

/// Network byte order bytes of an address.
pub fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

/// The interface name as nft compares it: NUL-padded to 16 bytes.
pub fn ifname_bytes(name: &str) -> Vec<u8> {
    let mut b = name.as_bytes().to_vec();
    b.resize(16, 0);
    b
}

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

/// One rule expression. Registers: values load into register 1 (and 2 for NAT ports).
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

fn reg(n: u32) -> Register {
    match n {
        1 => Register::Reg1,
        2 => Register::Reg2,
        3 => Register::Reg3,
        4 => Register::Reg4,
        0 => Register::Verdict,
        other => Register::Other(other),
    }
}

fn u32_nla(kind: u16, v: u32) -> DefaultNla {
    DefaultNla::new(kind, v.to_be_bytes().to_vec())
}

fn other(name: &str, attributes: Vec<DefaultNla>) -> Expressions {
    Expressions::Other { expression_type: name.into(), attributes }
}

fn verdict_data(v: &Verdict) -> DataAttribute {
    let (code, chain) = match v {
        Verdict::Accept => (NlVerdict::Other(1), None),
        Verdict::Drop => (NlVerdict::Other(0), None),
        Verdict::Return => (NlVerdict::Return, None),
        Verdict::Jump(c) => (NlVerdict::Jump, Some(c.clone())),
        Verdict::Goto(c) => (NlVerdict::Goto, Some(c.clone())),
    };
    let mut attrs = vec![VerdictAttribute::Code(code)];
    if let Some(c) = chain {
        attrs.push(VerdictAttribute::Chain(c));
    }
    DataAttribute::Verdict(attrs)
}

impl Expr {
    fn encode(&self) -> ListAttribute<ExpressionAttribute> {
        let e = match self {
            Expr::Meta { key, reg: r } => Expressions::Meta(vec![Meta::DestinationRegister(reg(*r)), Meta::Key(meta_key(*key))]),
            Expr::MetaSet { key, reg: r } => {
                // NFTA_META_SREG (3)
                other("meta", vec![u32_nla(2, meta_key_num(*key)), u32_nla(3, *r)])
            }
            Expr::Payload { base, offset, len, reg: r } => Expressions::Payload(vec![
                Payload::DestinationRegister(reg(*r)),
                Payload::Base(*base as u32),
                Payload::Offset(*offset),
                Payload::Len(*len),
            ]),
            Expr::Cmp { op, reg: r, data } => Expressions::Cmp(vec![
                Cmp::SourceRegister(reg(*r)),
                Cmp::Op(if *op == CmpOp::Eq { Operator::Equal } else { Operator::NotEqual }),
                Cmp::Data(DataAttribute::Value(data.clone())),
            ]),
            Expr::Bitwise { reg: r, len, mask, xor } => Expressions::Bitwise(vec![
                Bitwise::SourceRegister(reg(*r)),
                Bitwise::DestinationRegister(reg(*r)),
                Bitwise::Length(*len),
                Bitwise::Mask(DataAttribute::Value(mask.clone())),
                Bitwise::Xor(DataAttribute::Value(xor.clone())),
            ]),
            Expr::Lookup { set, reg: r, invert } => {
                let mut l = vec![Lookup::Set(set.clone()), Lookup::SourceRegister(reg(*r))];
                if *invert {
                    l.push(Lookup::Flags(1));
                }
                Expressions::Lookup(l)
            }
            Expr::MapLookup { set, reg: r, dreg } => Expressions::Lookup(vec![
                Lookup::Set(set.clone()),
                Lookup::SourceRegister(reg(*r)),
                Lookup::DestinationRegister(reg(*dreg)),
            ]),
            Expr::Immediate { reg: r, data } => {
                Expressions::Immediate(vec![Immediate::DestinationRegister(reg(*r)), Immediate::Data(DataAttribute::Value(data.clone()))])
            }
            // NFTA_CT_DREG (1), NFTA_CT_KEY (2) = NFT_CT_STATE (0)
            Expr::CtState { reg: r } => other("ct", vec![u32_nla(1, *r), u32_nla(2, 0)]),
            // NFTA_FIB_DREG (1), NFTA_FIB_RESULT (2) = ADDRTYPE (3), NFTA_FIB_FLAGS (3) = DADDR (2)
            Expr::FibDaddrType { reg: r } => other("fib", vec![u32_nla(1, *r), u32_nla(2, 3), u32_nla(3, 2)]),
            Expr::Counter => {
                other("counter", vec![DefaultNla::new(1, 0u64.to_be_bytes().to_vec()), DefaultNla::new(2, 0u64.to_be_bytes().to_vec())])
            }
            Expr::Masquerade => other("masq", vec![]),
            Expr::Nat { dnat, v6, addr_reg, port_reg } => {
                // NFTA_NAT_TYPE (1), NFTA_NAT_FAMILY (2), REG_ADDR_MIN (3), REG_PROTO_MIN (5), FLAGS (7)
                let mut a = vec![u32_nla(1, if *dnat { 1 } else { 0 }), u32_nla(2, if *v6 { 10 } else { 2 }), u32_nla(3, *addr_reg)];
                let mut flags = 1; // NF_NAT_RANGE_MAP_IPS
                if let Some(p) = port_reg {
                    a.push(u32_nla(5, *p));
                    flags |= 2; // NF_NAT_RANGE_PROTO_SPECIFIED
                }
                a.push(u32_nla(7, flags));
                other("nat", a)
            }
            Expr::Verdict(v) => {
                Expressions::Immediate(vec![Immediate::DestinationRegister(Register::Verdict), Immediate::Data(verdict_data(v))])
            }
        };
        e.into()
    }
}

fn meta_key(k: MetaKind) -> MetaKey {
    match k {
        MetaKind::Nfproto => MetaKey::Nfproto,
        MetaKind::L4proto => MetaKey::L4Proto,
        MetaKind::Iifname => MetaKey::Iifname,
        MetaKind::Oifname => MetaKey::Oifname,
        MetaKind::Mark => MetaKey::Mark,
    }
}

fn meta_key_num(k: MetaKind) -> u32 {
    match k {
        MetaKind::Mark => 3,
        MetaKind::Iifname => 6,
        MetaKind::Oifname => 7,
        MetaKind::Nfproto => 15,
        MetaKind::L4proto => 16,
    }
}

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

    /// `iifname|oifname [!=] <name>`.
    pub fn ifname(input: bool, name: &str, negate: bool) -> Vec<Expr> {
        vec![
            Expr::Meta { key: if input { MetaKind::Iifname } else { MetaKind::Oifname }, reg: 1 },
            Expr::Cmp { op: if negate { CmpOp::Ne } else { CmpOp::Eq }, reg: 1, data: ifname_bytes(name) },
        ]
    }
}

/// nft's comment TLV (type 0, length incl. NUL, text, NUL).
pub fn comment_userdata(comment: &str) -> Vec<u8> {
    let mut text = comment.as_bytes().to_vec();
    text.truncate(127);
    let mut v = vec![0u8, (text.len() + 1) as u8];
    v.extend_from_slice(&text);
    v.push(0);
    v
}

/// The elements an element message carries.
fn element_infos(m: NfTablesMessage) -> Vec<ElementInfo> {
    let NfTablesMessage::NewSetElement(s) = m else { return Vec::new() };
    let mut out = Vec::new();
    for a in s.attributes {
        let SetElementList::Elements(list) = a else { continue };
        for item in list {
            let ListAttribute::Element(attrs) = item else { continue };
            let mut e = ElementInfo { key: Vec::new(), comment: None };
            for ea in attrs {
                match ea {
                    SetElementAttribute::Key(DataAttribute::Value(k)) => e.key = k,
                    SetElementAttribute::UserData(u) => e.comment = userdata_comment(&u),
                    _ => {}
                }
            }
            out.push(e);
        }
    }
    out
}

/// The comment in an nft userdata blob.
pub fn userdata_comment(ud: &[u8]) -> Option<String> {
    let mut off = 0;
    while off + 2 <= ud.len() {
        let (kind, len) = (ud[off], ud[off + 1] as usize);
        if off + 2 + len > ud.len() {
            return None;
        }
        if kind == 0 {
            let v = &ud[off + 2..off + 2 + len];
            let v = v.split(|b| *b == 0).next().unwrap_or(&[]);
            return Some(String::from_utf8_lossy(v).into_owned());
        }
        off += 2 + len;
    }
    None
}

type Msg = NetlinkMessage<NetfilterMessage>;

/// The nf_tables subsystem id (`NFNL_SUBSYS_NFTABLES`).
const NFNL_SUBSYS_NFTABLES: u16 = 10;

fn msg(family: Family, inner: NfTablesMessage, flags: u16) -> Msg {
    let mut m = NetlinkMessage::from(NetfilterMessage::new(NetfilterHeader::new(family.proto(), 0, 0), inner));
    m.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    m
}

/// An atomic set of changes.
#[derive(Debug, Default)]
pub struct Batch {
    msgs: Vec<Msg>,
    /// What each message does, for error texts.
    what: Vec<String>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    fn push(&mut self, m: Msg, what: String) {
        self.msgs.push(m);
        self.what.push(what);
    }

    /// Adds a table (no error if it exists).
    pub fn add_table(&mut self, family: Family, table: &str) -> &mut Self {
        let m = msg(family, NfTablesMessage::NewTable(TableMessage { attributes: vec![TableAttribute::Name(table.into())] }), NLM_F_CREATE);
        self.push(m, format!("adding table {table}"));
        self
    }

    fn chain(&mut self, family: Family, table: &str, name: &str, base: Option<&BaseChain>, flags: u16) -> &mut Self {
        let mut attrs = vec![ChainAttribute::Table(table.into()), ChainAttribute::Name(name.into())];
        if let Some(b) = base {
            attrs.push(ChainAttribute::Hook(vec![Hook::Number(HookNumber::Other(b.hook as u32)), Hook::Priority(b.priority as u32)]));
            attrs.push(ChainAttribute::Policy(if b.accept { 1 } else { 0 }));
            attrs.push(ChainAttribute::Type(b.kind.into()));
        }
        let m = msg(family, NfTablesMessage::NewChain(ChainMessage { attributes: attrs }), flags);
        self.push(m, format!("adding chain {table}/{name}"));
        self
    }

    /// Adds a chain (no error if it exists).
    pub fn add_chain(&mut self, family: Family, table: &str, name: &str, base: Option<&BaseChain>) -> &mut Self {
        self.chain(family, table, name, base, NLM_F_CREATE)
    }

    /// Creates a chain; the batch fails with EEXIST if it exists (an existence test that
    /// changes nothing when it fails).
    pub fn create_chain(&mut self, family: Family, table: &str, name: &str, base: Option<&BaseChain>) -> &mut Self {
        self.chain(family, table, name, base, NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Deletes a chain (it must be empty and unreferenced).
    pub fn delete_chain(&mut self, family: Family, table: &str, name: &str) -> &mut Self {
        let m = msg(
            family,
            NfTablesMessage::DeleteChain(ChainMessage {
                attributes: vec![ChainAttribute::Table(table.into()), ChainAttribute::Name(name.into())],
            }),
            0,
        );
        self.push(m, format!("deleting chain {table}/{name}"));
        self
    }

    /// Deletes a set or map (unreferenced by rules once the batch's earlier changes apply).
    pub fn delete_set(&mut self, family: Family, table: &str, name: &str) -> &mut Self {
        let m = msg(
            family,
            NfTablesMessage::DeleteSet(SetMessage { attributes: vec![SetAttribute::Table(table.into()), SetAttribute::Name(name.into())] }),
            0,
        );
        self.push(m, format!("deleting set {table}/{name}"));
        self
    }

    /// Removes every rule of a chain.
    pub fn flush_chain(&mut self, family: Family, table: &str, name: &str) -> &mut Self {
        let m = msg(
            family,
            NfTablesMessage::DeleteRule(RuleMessage {
                attributes: vec![RuleAttribute::Table(table.into()), RuleAttribute::Chain(name.into())],
            }),
            0,
        );
        self.push(m, format!("flushing chain {table}/{name}"));
        self
    }

    /// Adds a set (no error if an identical one exists).
    pub fn add_set(&mut self, family: Family, table: &str, s: &SetSpec) -> &mut Self {
        let mut flags = SetFlags::empty();
        if s.interval {
            flags |= SetFlags::Interval;
        }
        if s.data.is_some() {
            flags |= SetFlags::Map;
        }
        if !s.concat.is_empty() {
            flags |= SetFlags::Concat;
        }
        let mut attrs = vec![
            SetAttribute::Table(table.into()),
            SetAttribute::Name(s.name.clone()),
            SetAttribute::Flags(flags),
            SetAttribute::KeyType(s.key_type),
            SetAttribute::KeyLen(s.key_len),
            SetAttribute::Id(1),
        ];
        if let Some((t, l)) = s.data {
            attrs.push(SetAttribute::DataType(t));
            attrs.push(SetAttribute::DataLen(l));
        }
        if !s.concat.is_empty() {
            // NFTA_SET_DESC (9) { NFTA_SET_DESC_CONCAT (2) { NFTA_LIST_ELEM (1) { NFTA_SET_FIELD_LEN (1) } … } }
            let mut fields = Vec::new();
            for len in &s.concat {
                let field = nla(1, &len.to_be_bytes());
                fields.extend(nla(1 | 0x8000, &field));
            }
            let concat = nla(2 | 0x8000, &fields);
            attrs.push(SetAttribute::Other(DefaultNla::new(9 | 0x8000, concat)));
        }
        let m = msg(family, NfTablesMessage::NewSet(SetMessage { attributes: attrs }), NLM_F_CREATE);
        self.push(m, format!("adding set {table}/{}", s.name));
        self
    }

    fn elements(&mut self, family: Family, table: &str, set: &str, elems: &[Element], delete: bool, excl: bool) -> &mut Self {
        if elems.is_empty() {
            return self;
        }
        let mut list = Vec::new();
        for e in elems {
            let mut a = vec![SetElementAttribute::Key(DataAttribute::Value(e.key.clone()))];
            if let Some(d) = &e.data {
                a.push(SetElementAttribute::Data(DataAttribute::Value(d.clone())));
            }
            if let Some(c) = &e.comment {
                if !delete {
                    a.push(SetElementAttribute::UserData(comment_userdata(c)));
                }
            }
            list.push(ListAttribute::Element(a));
            if let Some(end) = &e.key_end {
                list.push(ListAttribute::Element(vec![
                    SetElementAttribute::Flags(SetElementFlags::IntervalEnd),
                    SetElementAttribute::Key(DataAttribute::Value(end.clone())),
                ]));
            }
        }
        let body = SetElementMessage {
            attributes: vec![SetElementList::Table(table.into()), SetElementList::Set(set.into()), SetElementList::Elements(list)],
        };
        let (inner, flags, verb) = if delete {
            (NfTablesMessage::DeleteSetElement(body), 0, "deleting")
        } else {
            (NfTablesMessage::NewSetElement(body), if excl { NLM_F_CREATE | NLM_F_EXCL } else { NLM_F_CREATE }, "adding")
        };
        self.push(msg(family, inner, flags), format!("{verb} elements of set {table}/{set}"));
        self
    }

    /// Adds elements (an identical existing element is no error).
    pub fn add_elements(&mut self, family: Family, table: &str, set: &str, elems: &[Element]) -> &mut Self {
        self.elements(family, table, set, elems, false, false)
    }

    /// Adds elements; an existing one fails the batch with EEXIST.
    pub fn create_elements(&mut self, family: Family, table: &str, set: &str, elems: &[Element]) -> &mut Self {
        self.elements(family, table, set, elems, false, true)
    }

    /// Deletes elements (a missing one fails the batch with ENOENT).
    pub fn delete_elements(&mut self, family: Family, table: &str, set: &str, elems: &[Element]) -> &mut Self {
        self.elements(family, table, set, elems, true, false)
    }

    /// Appends a rule to a chain.
    pub fn add_rule(&mut self, family: Family, table: &str, chain: &str, exprs: &[Expr], comment: Option<&str>) -> &mut Self {
        let mut attrs = vec![
            RuleAttribute::Table(table.into()),
            RuleAttribute::Chain(chain.into()),
            RuleAttribute::Expressions(exprs.iter().map(Expr::encode).collect()),
        ];
        if let Some(c) = comment {
            attrs.push(RuleAttribute::UserData(comment_userdata(c)));
        }
        let m = msg(family, NfTablesMessage::NewRule(RuleMessage { attributes: attrs }), NLM_F_CREATE | NLM_F_APPEND);
        self.push(m, format!("adding a rule to {table}/{chain}"));
        self
    }

    /// Deletes a rule by handle.
    pub fn delete_rule(&mut self, family: Family, table: &str, chain: &str, handle: u64) -> &mut Self {
        let m = msg(
            family,
            NfTablesMessage::DeleteRule(RuleMessage {
                attributes: vec![RuleAttribute::Table(table.into()), RuleAttribute::Chain(chain.into()), RuleAttribute::Handle(handle)],
            }),
            0,
        );
        self.push(m, format!("deleting rule {handle} of {table}/{chain}"));
        self
    }
}

fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
    let len = 4 + value.len();
    let mut v = Vec::with_capacity((len + 3) & !3);
    v.extend_from_slice(&(len as u16).to_ne_bytes());
    v.extend_from_slice(&kind.to_ne_bytes());
    v.extend_from_slice(value);
    v.resize((len + 3) & !3, 0);
    v
}

/// A rule found in a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleInfo {
    pub handle: u64,
    pub comment: Option<String>,
}

/// A set element found in a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementInfo {
    pub key: Vec<u8>,
    pub comment: Option<String>,
}

/// A NETLINK_NETFILTER socket for nf_tables, bound to one network namespace.
pub struct Nft {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Nft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nft").finish()
    }
}

impl Nft {
    /// A socket in the calling thread's namespace.
    pub fn new() -> Result<Self> {
        let op = "opening a netfilter socket";
        let mut sock = Socket::new(NETLINK_NETFILTER).map_err(|e| Error::io(op, e))?;
        sock.bind_auto().map_err(|e| Error::io(op, e))?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(|e| Error::io(op, e))?;
        let _ = sock.set_ext_ack(true);
        Ok(Nft { sock, seq: 0, buf: Vec::with_capacity(64 * 1024) })
    }

    /// Whether nftables can be used here (STATUS): a socket opens and a table can be listed.
    pub fn probe(table: &str) -> Result<()> {
        Nft::new()?.sets(Family::Inet, table).map(|_| ())
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Commits a batch atomically: all of it, or (on any error) none of it. The error names the
    /// change the kernel refused.
    pub fn commit(&mut self, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut out = Vec::with_capacity(4096);
        let first = self.seq.wrapping_add(1);
        let control = |seq: u32, m: ControlMessage| {
            let mut nl =
                NetlinkMessage::from(NetfilterMessage::new(NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, NFNL_SUBSYS_NFTABLES), m));
            nl.header.flags = NLM_F_REQUEST;
            nl.header.sequence_number = seq;
            nl
        };
        let mut all: Vec<Msg> = Vec::with_capacity(batch.msgs.len() + 2);
        all.push(control(self.next_seq(), ControlMessage::BatchBegin));
        for m in &batch.msgs {
            let mut m = m.clone();
            m.header.sequence_number = self.next_seq();
            all.push(m);
        }
        all.push(control(self.next_seq(), ControlMessage::BatchEnd));
        for m in &mut all {
            m.finalize();
            let start = out.len();
            out.resize(start + m.buffer_len(), 0);
            m.serialize(&mut out[start..]);
        }
        self.sock.send(&out, 0).map_err(|e| Error::io("sending an nftables batch", e))?;
        // one ACK or error per change
        let mut pending = batch.msgs.len();
        let mut failure: Option<Error> = None;
        while pending > 0 {
            self.recv(&mut |header, payload| {
                if let NetlinkPayload::Error(e) = payload {
                    let idx = header.sequence_number.wrapping_sub(first).wrapping_sub(1) as usize;
                    if idx < batch.msgs.len() {
                        pending -= 1;
                        if let Some(code) = e.code {
                            if failure.is_none() {
                                failure = Some(crate::netlink::kernel_error(batch.what[idx].clone(), -code.get(), &e.header));
                            }
                        }
                    }
                }
                Ok(pending == 0)
            })?;
        }
        failure.map_or(Ok(()), Err)
    }

    fn recv(&mut self, f: &mut dyn FnMut(NetlinkHeader, NetlinkPayload<NetfilterMessage>) -> Result<bool>) -> Result<()> {
        loop {
            self.buf.clear();
            let n = match self.sock.recv(&mut self.buf, 0) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("receiving from netfilter", e)),
            };
            let data = &self.buf[..n.min(self.buf.len())];
            let mut off = 0;
            while off < data.len() {
                let len = NetlinkBuffer::new_checked(&data[off..])
                    .map_err(|e| Error::msg("parsing a netfilter reply", e.to_string()))?
                    .length() as usize;
                if len == 0 {
                    break;
                }
                let raw = &data[off..(off + len).min(data.len())];
                off += (len + 3) & !3;
                let m = NetlinkMessage::<NetfilterMessage>::deserialize(raw)
                    .map_err(|e| Error::msg("parsing a netfilter reply", e.to_string()))?;
                if f(m.header, m.payload)? {
                    return Ok(());
                }
            }
        }
    }

    /// Sends one request (a dump with `NLM_F_DUMP`, else acknowledged) and collects the
    /// messages of the answer until its end or error.
    fn request(
        &mut self,
        family: NetfilterProtoFamily,
        inner: NetfilterMessageInner,
        flags: u16,
        op: &str,
    ) -> Result<Vec<NetfilterMessageInner>> {
        let mut m = NetlinkMessage::from(NetfilterMessage::new(NetfilterHeader::new(family, 0, 0), inner));
        m.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        let seq = self.next_seq();
        m.header.sequence_number = seq;
        m.finalize();
        let mut buf = vec![0u8; m.buffer_len()];
        m.serialize(&mut buf);
        self.sock.send(&buf, 0).map_err(|e| Error::io(op.to_string(), e))?;
        let mut out = Vec::new();
        let mut err = None;
        self.recv(&mut |h, p| {
            if h.sequence_number != seq {
                return Ok(false);
            }
            match p {
                NetlinkPayload::InnerMessage(m) => {
                    out.push(m.inner);
                    Ok(false)
                }
                NetlinkPayload::Done(_) => Ok(true),
                NetlinkPayload::Error(e) => {
                    if let Some(c) = e.code {
                        err = Some(crate::netlink::kernel_error(op.to_string(), -c.get(), &e.header));
                    }
                    Ok(true)
                }
                _ => Ok(false),
            }
        })?;
        match err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// A dump; a missing table (or chain, or set) has nothing to list.
    fn dump(&mut self, family: Family, inner: NfTablesMessage, op: &str) -> Result<Vec<NfTablesMessage>> {
        let msgs = match self.request(family.proto(), NetfilterMessageInner::NfTables(inner), NLM_F_DUMP, op) {
            Ok(m) => m,
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        Ok(msgs
            .into_iter()
            .filter_map(|m| match m {
                NetfilterMessageInner::NfTables(m) => Some(m),
                _ => None,
            })
            .collect())
    }

    /// The rules of a chain, with their handles and comments. A missing table or chain has none.
    pub fn rules(&mut self, family: Family, table: &str, chain: &str) -> Result<Vec<RuleInfo>> {
        let req = NfTablesMessage::GetRule(RuleMessage {
            attributes: vec![RuleAttribute::Table(table.into()), RuleAttribute::Chain(chain.into())],
        });
        let msgs = self.dump(family, req, &format!("listing rules of {table}/{chain}"))?;
        let mut out = Vec::new();
        for m in msgs {
            if let NfTablesMessage::NewRule(r) = m {
                let mut handle = 0;
                let mut comment = None;
                let mut ours = true;
                for a in r.attributes {
                    match a {
                        RuleAttribute::Handle(h) => handle = h,
                        RuleAttribute::UserData(u) => comment = userdata_comment(&u),
                        RuleAttribute::Chain(c) if c != chain => ours = false,
                        _ => {}
                    }
                }
                if ours {
                    out.push(RuleInfo { handle, comment });
                }
            }
        }
        Ok(out)
    }

    /// The names of a table's sets (and maps). A missing table has none.
    pub fn sets(&mut self, family: Family, table: &str) -> Result<Vec<String>> {
        let req = NfTablesMessage::GetSet(SetMessage { attributes: vec![SetAttribute::Table(table.into())] });
        let msgs = self.dump(family, req, &format!("listing sets of {table}"))?;
        let mut out = Vec::new();
        for m in msgs {
            if let NfTablesMessage::NewSet(s) = m {
                let mut name = None;
                let mut ours = true;
                for a in s.attributes {
                    match a {
                        SetAttribute::Name(n) => name = Some(n),
                        SetAttribute::Table(t) if t != table => ours = false,
                        _ => {}
                    }
                }
                if let (Some(n), true) = (name, ours) {
                    out.push(n);
                }
            }
        }
        Ok(out)
    }

    /// The elements of a set. A missing table or set has none.
    pub fn elements(&mut self, family: Family, table: &str, set: &str) -> Result<Vec<ElementInfo>> {
        let req = NfTablesMessage::GetSetElement(SetElementMessage {
            attributes: vec![SetElementList::Table(table.into()), SetElementList::Set(set.into())],
        });
        let msgs = self.dump(family, req, &format!("listing elements of {table}/{set}"))?;
        Ok(msgs.into_iter().flat_map(element_infos).collect())
    }

    /// One element of a set by key, if present.
    pub fn get_element(&mut self, family: Family, table: &str, set: &str, key: &[u8]) -> Result<Option<ElementInfo>> {
        let req = NfTablesMessage::GetSetElement(SetElementMessage {
            attributes: vec![
                SetElementList::Table(table.into()),
                SetElementList::Set(set.into()),
                SetElementList::Elements(vec![ListAttribute::Element(vec![SetElementAttribute::Key(DataAttribute::Value(key.to_vec()))])]),
            ],
        });
        let op = format!("looking up an element of {table}/{set}");
        match self.request(family.proto(), NetfilterMessageInner::NfTables(req), 0, &op) {
            Ok(msgs) => Ok(msgs
                .into_iter()
                .filter_map(|m| match m {
                    NetfilterMessageInner::NfTables(m) => Some(m),
                    _ => None,
                })
                .flat_map(element_infos)
                .last()),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes the conntrack entries whose original direction is `proto` to one of the
    /// destination `ports` (IPv4 or IPv6), from one dump of the table; returns how many. Used so that a published UDP port reaches its new
    /// container instead of following a stale entry. An entry that vanished meanwhile is fine.
    pub fn delete_conntrack_by_dport(&mut self, v6: bool, proto: u8, ports: &[u16]) -> Result<usize> {
        use netlink_packet_netfilter::conntrack::{ConntrackAttribute, ConntrackMessage, ProtoTuple, Tuple};
        let family = if v6 { NetfilterProtoFamily::IPv6 } else { NetfilterProtoFamily::IPv4 };
        let entries = self.request(family, ConntrackMessage::Get(vec![]).into(), NLM_F_DUMP, "listing conntrack entries")?;
        let matches = |t: &[Tuple]| {
            t.iter().any(|x| match x {
                Tuple::Proto(p) => {
                    let num = p.iter().find_map(|y| match y {
                        ProtoTuple::Protocol(pr) => Some(u8::from(*pr)),
                        _ => None,
                    });
                    num == Some(proto) && p.iter().any(|y| matches!(y, ProtoTuple::DestinationPort(d) if ports.contains(d)))
                }
                _ => false,
            })
        };
        let mut n = 0;
        for e in entries {
            let NetfilterMessageInner::Conntrack(ConntrackMessage::New(attrs)) = e else { continue };
            for a in attrs {
                let ConntrackAttribute::CtaTupleOrig(t) = a else { continue };
                if !matches(&t) {
                    continue;
                }
                let del = ConntrackMessage::Delete(vec![ConntrackAttribute::CtaTupleOrig(t)]).into();
                match self.request(family, del, 0, "deleting a conntrack entry") {
                    Ok(_) => n += 1,
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(n)
    }

    /// Closes the socket without making the caller wait. After deleting nf_tables objects the
    /// kernel holds the closing process for a few milliseconds even though the change is already
    /// committed; a short-lived child, detached from stdio, does that waiting instead.
    pub fn close_in_background(self) {
        const CLOSE_DELAY_NS: libc::c_long = 200_000_000;
        let fd = self.sock.as_raw_fd();
        // SAFETY: the child only makes async-signal-safe calls (open, dup2, close_range,
        // nanosleep, close, _exit), so this is sound in a multi-threaded process too.
        unsafe {
            let pid = libc::fork();
            if pid == 0 {
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                if null >= 0 {
                    libc::dup2(null, 0);
                    libc::dup2(null, 1);
                    libc::dup2(null, 2);
                }
                // keep nothing of the parent's but this socket: not a pipe a caller waits on,
                // nor a file whose flock (host-local's store) the parent is about to release
                let keep = fd as libc::c_uint;
                if keep > 3 {
                    libc::syscall(libc::SYS_close_range, 3 as libc::c_uint, keep - 1, 0 as libc::c_uint);
                }
                libc::syscall(libc::SYS_close_range, keep + 1, libc::c_uint::MAX, 0 as libc::c_uint);
                // Closing while the commit's destroy work is still pending makes the kernel
                // flush that work under the netns's nf_tables commit mutex, which every link
                // deletion in the namespace also needs: wait out the RCU grace period first,
                // then close with nothing left to flush.
                let ts = libc::timespec { tv_sec: 0, tv_nsec: CLOSE_DELAY_NS };
                libc::nanosleep(&ts, std::ptr::null_mut());
                libc::close(fd);
                libc::_exit(0);
            }
        }
        // parent: dropping our copy is not the last reference when the child has it
        drop(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_round_trip() {
        let ud = comment_userdata("rcni net=n id=c if=eth0");
        assert_eq!(ud[0], 0);
        assert_eq!(ud[1] as usize, "rcni net=n id=c if=eth0".len() + 1);
        assert_eq!(userdata_comment(&ud).as_deref(), Some("rcni net=n id=c if=eth0"));
        assert_eq!(userdata_comment(&[]), None);
    }

    #[test]
    fn prefix_elements() {
        let e = Element::prefix("10.1.0.0/16".parse().unwrap());
        assert_eq!(e.key, vec![10, 1, 0, 0]);
        assert_eq!(e.key_end, Some(vec![10, 2, 0, 0]));
        let e = Element::prefix("fd00::/64".parse().unwrap());
        assert_eq!(e.key_end.unwrap()[..8], [0xfd, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(Element::prefix("0.0.0.0/0".parse().unwrap()).key_end, None);
    }

    #[test]
    fn concat_types() {
        assert_eq!(datatype::concat(&[datatype::IPADDR, datatype::INET_SERVICE]), (7 << 6) | 13);
    }
}

//! The kernel's nftables: a batch's operations encoded as nf_tables netlink messages, committed
//! in one transaction, and the dumps [`Client`] reads with.
//!
//! Deleting nf_tables objects makes the kernel keep the deleting process waiting when it closes
//! its socket (the deletion is committed before that); [`Nft`] remembers whether it deleted
//! anything and, if so, closes in a short-lived child when dropped.

use super::attrs::*;
use super::{
    comment_userdata, userdata_comment, Batch, Client, CmpOp, Element, ElementInfo, Expr, Family, MetaKind, Op, RuleInfo, SetSpec, Verdict,
};
use crate::error::{Error, Result};
use crate::netlink::{kernel_error, NlSocket};
use netlink_packet_core::{
    DefaultNla, Emitable, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_netfilter::nftables::{
    Bitwise, ChainAttribute, ChainMessage, Cmp, DataAttribute, ExpressionAttribute, Expressions, Hook, HookNumber, Immediate,
    ListAttribute, Lookup, Meta, MetaKey, NfTablesMessage, Operator, Payload, Register, RuleAttribute, RuleMessage, SetAttribute,
    SetDescription, SetElementAttribute, SetElementFlags, SetElementList, SetElementMessage, SetFlags, SetMessage, TableAttribute,
    TableMessage, Verdict as NlVerdict, VerdictAttribute,
};
use netlink_packet_netfilter::none::ControlMessage;
use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterMessageInner, NetfilterProtoFamily};
use netlink_sys::protocols::NETLINK_NETFILTER;

fn proto(f: Family) -> NetfilterProtoFamily {
    match f {
        Family::Inet => NetfilterProtoFamily::Inet,
        Family::Ip => NetfilterProtoFamily::IPv4,
        Family::Ip6 => NetfilterProtoFamily::IPv6,
        Family::Bridge => NetfilterProtoFamily::Bridge,
    }
}

fn reg(n: u32) -> Register {
    Register::from(n)
}

fn u32_nla(kind: u16, v: u32) -> DefaultNla {
    DefaultNla::new(kind, v.to_be_bytes().to_vec())
}

fn other(name: &str, attributes: Vec<DefaultNla>) -> Expressions {
    Expressions::Other { expression_type: name.into(), attributes }
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

fn verdict_data(v: &Verdict) -> DataAttribute {
    let (code, chain) = match v {
        Verdict::Accept => (NlVerdict::Other(NF_ACCEPT as u32), None),
        Verdict::Drop => (NlVerdict::Other(NF_DROP as u32), None),
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

fn encode_expr(e: &Expr) -> ListAttribute<ExpressionAttribute> {
    let e = match e {
        Expr::Meta { key, reg: r } => Expressions::Meta(vec![Meta::DestinationRegister(reg(*r)), Meta::Key(meta_key(*key))]),
        Expr::MetaSet { key, reg: r } => Expressions::Meta(vec![Meta::Key(meta_key(*key)), Meta::SourceRegister(reg(*r))]),
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
                l.push(Lookup::Flags(NFT_LOOKUP_F_INV));
            }
            Expressions::Lookup(l)
        }
        Expr::MapLookup { set, reg: r, dreg } => {
            Expressions::Lookup(vec![Lookup::Set(set.clone()), Lookup::SourceRegister(reg(*r)), Lookup::DestinationRegister(reg(*dreg))])
        }
        Expr::Immediate { reg: r, data } => {
            Expressions::Immediate(vec![Immediate::DestinationRegister(reg(*r)), Immediate::Data(DataAttribute::Value(data.clone()))])
        }
        Expr::CtState { reg: r } => other("ct", vec![u32_nla(NFTA_CT_DREG, *r), u32_nla(NFTA_CT_KEY, NFT_CT_STATE)]),
        Expr::FibDaddrType { reg: r } => other(
            "fib",
            vec![u32_nla(NFTA_FIB_DREG, *r), u32_nla(NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE), u32_nla(NFTA_FIB_FLAGS, NFTA_FIB_F_DADDR)],
        ),
        Expr::Counter => other(
            "counter",
            vec![
                DefaultNla::new(NFTA_COUNTER_BYTES, 0u64.to_be_bytes().to_vec()),
                DefaultNla::new(NFTA_COUNTER_PACKETS, 0u64.to_be_bytes().to_vec()),
            ],
        ),
        Expr::Masquerade => other("masq", vec![]),
        Expr::Nat { dnat, v6, addr_reg, port_reg } => {
            let mut a = vec![
                u32_nla(NFTA_NAT_TYPE, if *dnat { NFT_NAT_DNAT } else { NFT_NAT_SNAT }),
                u32_nla(NFTA_NAT_FAMILY, if *v6 { NFPROTO_IPV6 } else { NFPROTO_IPV4 }),
                u32_nla(NFTA_NAT_REG_ADDR_MIN, *addr_reg),
            ];
            let mut flags = NF_NAT_RANGE_MAP_IPS;
            if let Some(p) = port_reg {
                a.push(u32_nla(NFTA_NAT_REG_PROTO_MIN, *p));
                flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
            }
            a.push(u32_nla(NFTA_NAT_FLAGS, flags));
            other("nat", a)
        }
        Expr::Verdict(v) => {
            Expressions::Immediate(vec![Immediate::DestinationRegister(Register::Verdict), Immediate::Data(verdict_data(v))])
        }
    };
    e.into()
}

/// The `NFTA_SET_DESC` concatenation list: one `NFTA_LIST_ELEM { NFTA_SET_FIELD_LEN }` per field,
/// nested as nft writes it (the crate's `SetDescription::Concat` leaves `NLA_F_NESTED` off).
fn concat_desc(fields: &[u32]) -> SetDescription {
    let nested = |kind: u16, nlas: &[DefaultNla]| {
        let mut buf = vec![0u8; nlas.buffer_len()];
        nlas.emit(&mut buf);
        DefaultNla::new(kind | NLA_F_NESTED, buf)
    };
    let elems: Vec<DefaultNla> = fields.iter().map(|len| nested(NFTA_LIST_ELEM, &[u32_nla(NFTA_SET_FIELD_LEN, *len)])).collect();
    SetDescription::Other(nested(NFTA_SET_DESC_CONCAT, &elems))
}

fn set_attrs(table: &str, s: &SetSpec) -> Vec<SetAttribute> {
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
        attrs.push(SetAttribute::Description(vec![concat_desc(&s.concat)]));
    }
    attrs
}

fn element_list(elems: &[super::Element], delete: bool) -> Vec<ListAttribute<SetElementAttribute>> {
    let mut list = Vec::new();
    for e in elems {
        let mut a = vec![SetElementAttribute::Key(DataAttribute::Value(e.key.clone()))];
        if let Some(d) = &e.data {
            a.push(SetElementAttribute::Data(DataAttribute::Value(d.clone())));
        }
        if let (Some(c), false) = (&e.comment, delete) {
            a.push(SetElementAttribute::UserData(comment_userdata(c)));
        }
        list.push(ListAttribute::Element(a));
        if let Some(end) = &e.key_end {
            list.push(ListAttribute::Element(vec![
                SetElementAttribute::Flags(SetElementFlags::IntervalEnd),
                SetElementAttribute::Key(DataAttribute::Value(end.clone())),
            ]));
        }
    }
    list
}

type Msg = NetlinkMessage<NetfilterMessage>;

/// The most element bytes one element message carries: its element list is one attribute, whose
/// length is a u16, so a long list goes in several messages (of the same batch).
const ELEMENTS_PER_MESSAGE_BYTES: usize = 32 * 1024;

/// One operation as its netlink messages: one, except element lists too long for one attribute.
fn encode_all(op: &Op) -> Vec<Msg> {
    let (Op::AddElements { elements, .. } | Op::DeleteElements { elements, .. }) = op else { return vec![encode(op)] };
    let size = |e: &Element| {
        48 + e.key.len()
            + e.key_end.as_ref().map_or(0, |k| k.len())
            + e.data.as_ref().map_or(0, |d| d.len() + 8)
            + e.comment.as_ref().map_or(0, |c| c.len() + 8)
    };
    if elements.iter().map(size).sum::<usize>() <= ELEMENTS_PER_MESSAGE_BYTES {
        return vec![encode(op)];
    }
    let mut chunks: Vec<&[Element]> = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, e) in elements.iter().enumerate() {
        if bytes + size(e) > ELEMENTS_PER_MESSAGE_BYTES && i > start {
            chunks.push(&elements[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size(e);
    }
    chunks.push(&elements[start..]);
    chunks
        .into_iter()
        .map(|chunk| {
            encode(&match op {
                Op::AddElements { at, set, exclusive, .. } => {
                    Op::AddElements { at: at.clone(), set: set.clone(), elements: chunk.to_vec(), exclusive: *exclusive }
                }
                Op::DeleteElements { at, set, .. } => Op::DeleteElements { at: at.clone(), set: set.clone(), elements: chunk.to_vec() },
                _ => unreachable!("element operations only"),
            })
        })
        .collect()
}

/// One operation as its netlink message.
fn encode(op: &Op) -> Msg {
    let (family, inner, flags) = match op {
        Op::AddTable { at } => {
            (at.family, NfTablesMessage::NewTable(TableMessage { attributes: vec![TableAttribute::Name(at.table.clone())] }), NLM_F_CREATE)
        }
        Op::AddChain { at, chain, base, exclusive } => {
            let mut attrs = vec![ChainAttribute::Table(at.table.clone()), ChainAttribute::Name(chain.clone())];
            if let Some(b) = base {
                attrs.push(ChainAttribute::Hook(vec![Hook::Number(HookNumber::Other(b.hook as u32)), Hook::Priority(b.priority as u32)]));
                attrs.push(ChainAttribute::Policy(if b.accept { NF_ACCEPT as u32 } else { NF_DROP as u32 }));
                attrs.push(ChainAttribute::Type(b.kind.into()));
            }
            let flags = if *exclusive { NLM_F_CREATE | NLM_F_EXCL } else { NLM_F_CREATE };
            (at.family, NfTablesMessage::NewChain(ChainMessage { attributes: attrs }), flags)
        }
        Op::DeleteChain { at, chain } => (
            at.family,
            NfTablesMessage::DeleteChain(ChainMessage {
                attributes: vec![ChainAttribute::Table(at.table.clone()), ChainAttribute::Name(chain.clone())],
            }),
            0,
        ),
        Op::FlushChain { at, chain } => (
            at.family,
            NfTablesMessage::DeleteRule(RuleMessage {
                attributes: vec![RuleAttribute::Table(at.table.clone()), RuleAttribute::Chain(chain.clone())],
            }),
            0,
        ),
        Op::AddSet { at, set } => (at.family, NfTablesMessage::NewSet(SetMessage { attributes: set_attrs(&at.table, set) }), NLM_F_CREATE),
        Op::DeleteSet { at, set } => (
            at.family,
            NfTablesMessage::DeleteSet(SetMessage {
                attributes: vec![SetAttribute::Table(at.table.clone()), SetAttribute::Name(set.clone())],
            }),
            0,
        ),
        Op::AddElements { at, set, elements, exclusive } => {
            let body = SetElementMessage {
                attributes: vec![
                    SetElementList::Table(at.table.clone()),
                    SetElementList::Set(set.clone()),
                    SetElementList::Elements(element_list(elements, false)),
                ],
            };
            let flags = if *exclusive { NLM_F_CREATE | NLM_F_EXCL } else { NLM_F_CREATE };
            (at.family, NfTablesMessage::NewSetElement(body), flags)
        }
        Op::DeleteElements { at, set, elements } => {
            let body = SetElementMessage {
                attributes: vec![
                    SetElementList::Table(at.table.clone()),
                    SetElementList::Set(set.clone()),
                    SetElementList::Elements(element_list(elements, true)),
                ],
            };
            (at.family, NfTablesMessage::DeleteSetElement(body), 0)
        }
        Op::AddRule { at, chain, exprs, comment } => {
            let mut attrs = vec![
                RuleAttribute::Table(at.table.clone()),
                RuleAttribute::Chain(chain.clone()),
                RuleAttribute::Expressions(exprs.iter().map(encode_expr).collect()),
            ];
            if let Some(c) = comment {
                attrs.push(RuleAttribute::UserData(comment_userdata(c)));
            }
            (at.family, NfTablesMessage::NewRule(RuleMessage { attributes: attrs }), NLM_F_CREATE | NLM_F_APPEND)
        }
        Op::DeleteRule { at, chain, handle } => (
            at.family,
            NfTablesMessage::DeleteRule(RuleMessage {
                attributes: vec![
                    RuleAttribute::Table(at.table.clone()),
                    RuleAttribute::Chain(chain.clone()),
                    RuleAttribute::Handle(*handle),
                ],
            }),
            0,
        ),
    };
    let mut m = NetlinkMessage::from(NetfilterMessage::new(NetfilterHeader::new(proto(family), 0, 0), inner));
    m.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    m
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

/// A NETLINK_NETFILTER socket for nf_tables, bound to one network namespace.
pub struct Nft {
    sock: NlSocket<NetfilterMessage>,
    /// A committed batch deleted something: close in the background (see the module).
    deleted: bool,
}

impl std::fmt::Debug for Nft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nft").field("deleted", &self.deleted).finish()
    }
}

impl Nft {
    /// A socket in the calling thread's namespace.
    pub fn new() -> Result<Self> {
        Ok(Nft { sock: NlSocket::open(NETLINK_NETFILTER, "netfilter", false)?, deleted: false })
    }

    #[cfg(test)]
    pub(super) fn sock_fd(&self) -> i32 {
        self.sock.as_raw_fd()
    }

    /// Whether nftables can be used here (STATUS): a socket opens and a table can be listed.
    pub fn probe(table: &str) -> Result<()> {
        Nft::new()?.sets(Family::Inet, table).map(|_| ())
    }

    /// One request (a dump with `NLM_F_DUMP`, made again when a concurrent change interrupted
    /// it) and the messages of its answer.
    fn request(
        &mut self,
        family: NetfilterProtoFamily,
        inner: NetfilterMessageInner,
        flags: u16,
        op: &str,
    ) -> Result<Vec<NetfilterMessageInner>> {
        let make = || NetfilterMessage::new(NetfilterHeader::new(family, 0, 0), inner.clone());
        let op = || op.to_string();
        let messages = if flags & NLM_F_DUMP != 0 {
            self.sock.dump(&make, NLM_F_ACK | flags, &op)?
        } else {
            self.sock.exchange(make(), NLM_F_ACK | flags, &op)?.messages
        };
        Ok(messages.into_iter().map(|m| m.inner).collect())
    }

    /// The nf_tables messages of an answer; a missing table (or chain, or set) answers nothing.
    fn nft_request(&mut self, family: Family, inner: NfTablesMessage, flags: u16, op: &str) -> Result<Vec<NfTablesMessage>> {
        let msgs = match self.request(proto(family), NetfilterMessageInner::NfTables(inner), flags, op) {
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

    /// Deletes the conntrack entries whose original direction is `proto` to one of the
    /// destination `ports` (IPv4 or IPv6), from one dump of the table; returns how many. Used so
    /// that a published UDP port reaches its new container instead of following a stale entry.
    /// An entry that vanished meanwhile is fine.
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
    /// committed; a short-lived grandchild, detached from stdio, does that waiting instead. The
    /// child between only forks it and exits, and is reaped at once, so a long-lived caller
    /// collects no zombies (the grandchild is init's, or the subreaper's).
    fn close_in_background(&self) {
        const CLOSE_DELAY_NS: libc::c_long = 200_000_000;
        let fd = self.sock.as_raw_fd();
        // SAFETY: the children only make async-signal-safe calls (fork, open, dup2, close_range,
        // nanosleep, close, _exit), so this is sound in a multi-threaded process too; waitpid
        // reaps only the child forked here.
        unsafe {
            let child = libc::fork();
            if child > 0 {
                let mut status = 0;
                while libc::waitpid(child, &mut status, 0) < 0 && *libc::__errno_location() == libc::EINTR {}
                return;
            }
            if child == 0 && libc::fork() != 0 {
                // the middle child: done (its grandchild, or a failed fork, is no longer ours)
                libc::_exit(0);
            }
            if child == 0 {
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
        // parent (or a failed fork): the socket's own drop then closes our copy, which is not
        // the last reference while the grandchild has it
    }
}

impl Drop for Nft {
    fn drop(&mut self) {
        if self.deleted {
            self.close_in_background();
        }
    }
}

impl Client for Nft {
    /// Commits a batch atomically: all of it, or (on any error) none of it. The error names the
    /// change the kernel refused.
    fn commit(&mut self, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let ops = batch.ops();
        let first = self.sock.next_seq();
        let control = |seq: u32, m: ControlMessage| {
            let mut nl =
                NetlinkMessage::from(NetfilterMessage::new(NetfilterHeader::new(NetfilterProtoFamily::Unspec, 0, NFNL_SUBSYS_NFTABLES), m));
            nl.header.flags = NLM_F_REQUEST;
            nl.header.sequence_number = seq;
            nl
        };
        let mut all: Vec<Msg> = Vec::with_capacity(ops.len() + 2);
        // which operation each message after the begin message carries
        let mut op_of: Vec<usize> = Vec::with_capacity(ops.len());
        all.push(control(first, ControlMessage::BatchBegin));
        for (i, op) in ops.iter().enumerate() {
            for mut m in encode_all(op) {
                m.header.sequence_number = self.sock.next_seq();
                all.push(m);
                op_of.push(i);
            }
        }
        all.push(control(self.sock.next_seq(), ControlMessage::BatchEnd));
        let what = || "sending an nftables batch".to_string();
        self.sock.send(&mut all, &what)?;
        // one ACK or error per change; or one error for the batch as a whole, acknowledged
        // against its begin message: a refusal before any change is looked at (EPERM without
        // CAP_NET_ADMIN, EOPNOTSUPP), or a failure of the commit itself after the changes were
        // accepted (sent before their ACKs, which then must not count as success)
        let mut pending = op_of.len();
        let mut failure: Option<Error> = None;
        self.sock.recv(&|| "committing an nftables batch".to_string(), &mut |m| {
            if let NetlinkPayload::Error(e) = m.payload {
                if m.header.sequence_number == first {
                    if let Some(code) = e.code {
                        failure = Some(kernel_error("committing an nftables batch".into(), -code.get(), &e.header));
                        return Ok(true);
                    }
                    return Ok(false);
                }
                let idx = m.header.sequence_number.wrapping_sub(first).wrapping_sub(1) as usize;
                if let Some(&op) = op_of.get(idx) {
                    pending -= 1;
                    if let Some(code) = e.code {
                        if failure.is_none() {
                            failure = Some(kernel_error(ops[op].describe(), -code.get(), &e.header));
                        }
                    }
                }
            }
            Ok(pending == 0)
        })?;
        match failure {
            Some(e) => Err(e),
            None => {
                self.deleted |= ops.iter().any(Op::deletes);
                Ok(())
            }
        }
    }

    fn rules(&mut self, family: Family, table: &str, chain: &str) -> Result<Vec<RuleInfo>> {
        let req = NfTablesMessage::GetRule(RuleMessage {
            attributes: vec![RuleAttribute::Table(table.into()), RuleAttribute::Chain(chain.into())],
        });
        let msgs = self.nft_request(family, req, NLM_F_DUMP, &format!("listing rules of {table}/{chain}"))?;
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

    fn sets(&mut self, family: Family, table: &str) -> Result<Vec<String>> {
        let req = NfTablesMessage::GetSet(SetMessage { attributes: vec![SetAttribute::Table(table.into())] });
        let msgs = self.nft_request(family, req, NLM_F_DUMP, &format!("listing sets of {table}"))?;
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

    fn elements(&mut self, family: Family, table: &str, set: &str) -> Result<Vec<ElementInfo>> {
        let req = NfTablesMessage::GetSetElement(SetElementMessage {
            attributes: vec![SetElementList::Table(table.into()), SetElementList::Set(set.into())],
        });
        let msgs = self.nft_request(family, req, NLM_F_DUMP, &format!("listing elements of {table}/{set}"))?;
        Ok(msgs.into_iter().flat_map(element_infos).collect())
    }

    fn get_element(&mut self, family: Family, table: &str, set: &str, key: &[u8]) -> Result<Option<ElementInfo>> {
        let req = NfTablesMessage::GetSetElement(SetElementMessage {
            attributes: vec![
                SetElementList::Table(table.into()),
                SetElementList::Set(set.into()),
                SetElementList::Elements(vec![ListAttribute::Element(vec![SetElementAttribute::Key(DataAttribute::Value(key.to_vec()))])]),
            ],
        });
        let op = format!("looking up an element of {table}/{set}");
        Ok(self.nft_request(family, req, 0, &op)?.into_iter().flat_map(element_infos).last())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_element_lists_are_split_across_messages() {
        let at = super::super::At { family: Family::Inet, table: "t".into() };
        let elements: Vec<Element> =
            (0..5000u32).map(|i| Element::addr(std::net::Ipv4Addr::from(0x0a00_0000 + i).into()).with_comment(&"c".repeat(100))).collect();
        let msgs = encode_all(&Op::DeleteElements { at: at.clone(), set: "s".into(), elements: elements.clone() });
        assert!(msgs.len() > 10, "{}", msgs.len());
        let mut total = 0;
        for mut m in msgs {
            m.finalize();
            assert!(m.buffer_len() < 65535, "{}", m.buffer_len());
            let NetlinkPayload::InnerMessage(NetfilterMessage {
                inner: NetfilterMessageInner::NfTables(NfTablesMessage::DeleteSetElement(b)),
                ..
            }) = m.payload
            else {
                panic!("not an element deletion")
            };
            total += b.attributes.iter().map(|a| if let SetElementList::Elements(l) = a { l.len() } else { 0 }).sum::<usize>();
        }
        assert_eq!(total, 5000, "every element, once");
        assert_eq!(encode_all(&Op::DeleteElements { at, set: "s".into(), elements: elements[..3].to_vec() }).len(), 1);
    }

    /// The background close leaves this thread no child, running or a zombie. (A netfilter
    /// socket that sends nothing changes nothing.)
    #[test]
    fn the_background_close_leaves_no_child() {
        let mut n = Nft::new().unwrap();
        n.deleted = true;
        drop(n);
        assert_eq!(std::fs::read_to_string("/proc/thread-self/children").unwrap().trim(), "");
    }

    #[test]
    fn concatenation_description_is_nested_as_nft_writes_it() {
        let d = concat_desc(&[1, 2]);
        let mut buf = vec![0u8; d.buffer_len()];
        d.emit(&mut buf);
        let field = |len: u8| [0x0c, 0, 0x01, 0x80, 0x08, 0, 0x01, 0, 0, 0, 0, len];
        let mut want = vec![0x1c, 0, 0x02, 0x80];
        want.extend(field(1));
        want.extend(field(2));
        assert_eq!(buf, want, "NFTA_SET_DESC_CONCAT | NLA_F_NESTED {{ NFTA_LIST_ELEM | NLA_F_NESTED {{ NFTA_SET_FIELD_LEN }} }}");
    }
}

//! nftables for rcni's layouts, with no `nft` process.
//!
//! A layout (masquerade, spoof check, a plugin's port or firewall rules) describes what it wants
//! as a [`Batch`] of operations — tables, chains, sets with elements, rules with comments — and
//! hands it to a [`Client`], which applies it atomically: all of it, or (on any error) none of
//! it. What layouts read back (a set's elements, one element, a chain's rules, a table's sets) goes
//! through the same trait. Two clients implement it:
//!
//! - [`Nft`]: the kernel, over a NETLINK_NETFILTER socket (module `netlink`). Rule and element
//!   comments use the TLV form `nft` writes into `NFTA_*_USERDATA`, so `nft list ruleset` shows
//!   them.
//! - `FakeNft` (feature `test-util`, and in this crate's tests): an in-memory model that follows
//!   the kernel's rules (EEXIST / ENOENT / EBUSY, whole-batch atomicity, per-table handles, comments)
//!   so layouts can be tested without root. The sandbox tests run the same layouts on both and
//!   compare.
//!
//! A batch prints in nft's syntax (`Display`), and the fake prints its ruleset as `nft list
//! ruleset` does, so tests can compare layouts as text.

mod attrs;
mod expr;
#[cfg(any(test, feature = "test-util"))]
mod fake;
mod netlink;
mod print;
mod shared;

pub use expr::{m, CmpOp, Expr, MetaKind, PayloadBase, Verdict, REG32_00};
#[cfg(any(test, feature = "test-util"))]
pub use fake::FakeNft;
pub use netlink::Nft;
pub use shared::{release_shared, shared, SharedNft};

use crate::error::Result;
use std::net::IpAddr;

/// What a layout needs from nftables: an atomic commit and the reads that find objects by owner.
/// Reads of a table, chain or set that does not exist return nothing rather than an error.
pub trait Client {
    /// Applies a batch atomically. The error names the operation the kernel refused (its errno
    /// tells why: EEXIST for an exclusive create of something present, ENOENT for a missing
    /// table/chain/set/element, EBUSY for deleting what is still used).
    fn commit(&mut self, batch: &Batch) -> Result<()>;
    /// The rules of a chain, with their handles and comments.
    fn rules(&mut self, family: Family, table: &str, chain: &str) -> Result<Vec<RuleInfo>>;
    /// The names of a table's sets (and maps).
    fn sets(&mut self, family: Family, table: &str) -> Result<Vec<String>>;
    /// The elements of a set.
    fn elements(&mut self, family: Family, table: &str, set: &str) -> Result<Vec<ElementInfo>>;
    /// One element of a set by key, if present.
    fn get_element(&mut self, family: Family, table: &str, set: &str, key: &[u8]) -> Result<Option<ElementInfo>>;
}

/// nftables address families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    Inet,
    Ip,
    Ip6,
    Bridge,
}

impl Family {
    /// The family as nft names it.
    pub fn name(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Bridge => "bridge",
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
    /// The types of a (possibly concatenated) type, first field first.
    pub fn fields(mut t: u32) -> Vec<u32> {
        let mut out = Vec::new();
        while t != 0 {
            out.push(t & 0x3f);
            t >>= 6;
        }
        out.reverse();
        out
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

    /// A set of interface names.
    pub fn ifnames(name: impl Into<String>) -> Self {
        SetSpec { name: name.into(), key_type: datatype::IFNAME, key_len: 16, interval: false, data: None, concat: Vec::new() }
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

    pub fn with_data(mut self, d: Vec<u8>) -> Self {
        self.data = Some(d);
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

/// The longest comment nft shows (rcni cuts longer ones, as `nft` refuses them).
pub const COMMENT_MAX: usize = 127;

/// nft's comment TLV (type 0, length incl. NUL, text, NUL).
pub fn comment_userdata(comment: &str) -> Vec<u8> {
    let mut text = comment.as_bytes().to_vec();
    text.truncate(COMMENT_MAX);
    let mut v = vec![0u8, (text.len() + 1) as u8];
    v.extend_from_slice(&text);
    v.push(0);
    v
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

/// Where an operation acts: family and table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    pub family: Family,
    pub table: String,
}

/// One change of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Adds a table; an existing one is no error.
    AddTable { at: At },
    /// Adds a chain (a base chain with `base`); an existing one is no error unless `exclusive`.
    AddChain { at: At, chain: String, base: Option<BaseChain>, exclusive: bool },
    /// Deletes a chain; it must be empty and unreferenced.
    DeleteChain { at: At, chain: String },
    /// Removes every rule of a chain.
    FlushChain { at: At, chain: String },
    /// Adds a set or map; an identical existing one is no error.
    AddSet { at: At, set: SetSpec },
    /// Deletes a set or map; no rule may use it.
    DeleteSet { at: At, set: String },
    /// Adds elements; an identical existing one is no error unless `exclusive`.
    AddElements { at: At, set: String, elements: Vec<Element>, exclusive: bool },
    /// Deletes elements (by key); a missing one fails the batch.
    DeleteElements { at: At, set: String, elements: Vec<Element> },
    /// Appends a rule to a chain.
    AddRule { at: At, chain: String, exprs: Vec<Expr>, comment: Option<String> },
    /// Deletes a rule by handle.
    DeleteRule { at: At, chain: String, handle: u64 },
}

impl Op {
    /// What the operation does, for error texts ("adding chain rcni/masq_n").
    pub fn describe(&self) -> String {
        match self {
            Op::AddTable { at } => format!("adding table {}", at.table),
            Op::AddChain { at, chain, .. } => format!("adding chain {}/{chain}", at.table),
            Op::DeleteChain { at, chain } => format!("deleting chain {}/{chain}", at.table),
            Op::FlushChain { at, chain } => format!("flushing chain {}/{chain}", at.table),
            Op::AddSet { at, set } => format!("adding set {}/{}", at.table, set.name),
            Op::DeleteSet { at, set } => format!("deleting set {}/{set}", at.table),
            Op::AddElements { at, set, .. } => format!("adding elements of set {}/{set}", at.table),
            Op::DeleteElements { at, set, .. } => format!("deleting elements of set {}/{set}", at.table),
            Op::AddRule { at, chain, .. } => format!("adding a rule to {}/{chain}", at.table),
            Op::DeleteRule { at, chain, handle } => format!("deleting rule {handle} of {}/{chain}", at.table),
        }
    }

    /// Whether the operation removes something (after which the kernel makes the closing
    /// process wait; see [`Nft`]).
    pub fn deletes(&self) -> bool {
        matches!(
            self,
            Op::DeleteChain { .. } | Op::FlushChain { .. } | Op::DeleteSet { .. } | Op::DeleteElements { .. } | Op::DeleteRule { .. }
        )
    }
}

/// An atomic set of changes, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Op>,
}

fn at(family: Family, table: &str) -> At {
    At { family, table: table.to_string() }
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    fn push(&mut self, op: Op) -> &mut Self {
        self.ops.push(op);
        self
    }

    /// Adds a table (no error if it exists).
    pub fn add_table(&mut self, family: Family, table: &str) -> &mut Self {
        self.push(Op::AddTable { at: at(family, table) })
    }

    /// Adds a chain (no error if it exists).
    pub fn add_chain(&mut self, family: Family, table: &str, name: &str, base: Option<&BaseChain>) -> &mut Self {
        self.push(Op::AddChain { at: at(family, table), chain: name.into(), base: base.cloned(), exclusive: false })
    }

    /// Creates a chain; the batch fails with EEXIST if it exists (an existence test that
    /// changes nothing when it fails).
    pub fn create_chain(&mut self, family: Family, table: &str, name: &str, base: Option<&BaseChain>) -> &mut Self {
        self.push(Op::AddChain { at: at(family, table), chain: name.into(), base: base.cloned(), exclusive: true })
    }

    /// Deletes a chain (it must be empty and unreferenced).
    pub fn delete_chain(&mut self, family: Family, table: &str, name: &str) -> &mut Self {
        self.push(Op::DeleteChain { at: at(family, table), chain: name.into() })
    }

    /// Deletes a set or map (unreferenced by rules once the batch's earlier changes apply).
    pub fn delete_set(&mut self, family: Family, table: &str, name: &str) -> &mut Self {
        self.push(Op::DeleteSet { at: at(family, table), set: name.into() })
    }

    /// Removes every rule of a chain.
    pub fn flush_chain(&mut self, family: Family, table: &str, name: &str) -> &mut Self {
        self.push(Op::FlushChain { at: at(family, table), chain: name.into() })
    }

    /// Adds a set (no error if an identical one exists).
    pub fn add_set(&mut self, family: Family, table: &str, s: &SetSpec) -> &mut Self {
        self.push(Op::AddSet { at: at(family, table), set: s.clone() })
    }

    fn elements(&mut self, family: Family, table: &str, set: &str, elems: &[Element], delete: bool, exclusive: bool) -> &mut Self {
        if elems.is_empty() {
            return self;
        }
        let (at, set, elements) = (at(family, table), set.to_string(), elems.to_vec());
        if delete {
            self.push(Op::DeleteElements { at, set, elements })
        } else {
            self.push(Op::AddElements { at, set, elements, exclusive })
        }
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
        self.push(Op::AddRule { at: at(family, table), chain: chain.into(), exprs: exprs.to_vec(), comment: comment.map(String::from) })
    }

    /// Deletes a rule by handle.
    pub fn delete_rule(&mut self, family: Family, table: &str, chain: &str, handle: u64) -> &mut Self {
        self.push(Op::DeleteRule { at: at(family, table), chain: chain.into(), handle })
    }
}

impl std::fmt::Display for Batch {
    /// The batch as an `nft -f` script. Set keys print with the types of sets declared in the
    /// same batch, others as hex (`FakeNft::render` knows every set's type).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&print::batch(self, &|_, _, _| None))
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
    fn a_batch_prints_as_an_nft_script() {
        let mut b = Batch::new();
        b.add_table(Family::Inet, "t").add_set(Family::Inet, "t", &SetSpec::addrs("s", false));
        b.create_elements(Family::Inet, "t", "s", &[Element::addr("10.0.0.2".parse().unwrap()).with_comment("c")]);
        b.add_elements(Family::Inet, "t", "other", &[Element::key(vec![1, 2])]);
        b.delete_rule(Family::Bridge, "t", "p", 7);
        assert_eq!(
            b.to_string(),
            "add table inet t\nadd set inet t s { type ipv4_addr; }\ncreate element inet t s { 10.0.0.2 comment \"c\" }\n\
             add element inet t other { 0x0102 }\ndelete rule bridge t p handle 7\n",
            "keys by the type of a set declared in the batch, else hex"
        );
    }

    #[test]
    fn concat_types() {
        let t = datatype::concat(&[datatype::IPADDR, datatype::INET_SERVICE]);
        assert_eq!(t, (7 << 6) | 13);
        assert_eq!(datatype::fields(t), [datatype::IPADDR, datatype::INET_SERVICE]);
        assert_eq!(datatype::fields(datatype::IFNAME), [datatype::IFNAME]);
    }
}

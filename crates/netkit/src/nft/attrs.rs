//! nf_tables numbers that netlink-packet-netfilter 0.4 has no typed form for
//! (`include/uapi/linux/netfilter/nf_tables.h`, `nfnetlink.h`, `nf_nat.h`). Everything rcni
//! encodes by hand takes its numbers from here.

/// `NFNL_SUBSYS_NFTABLES`: the subsystem id of batch begin/end messages.
pub const NFNL_SUBSYS_NFTABLES: u16 = 10;

/// `NFTA_CT_*` (expression "ct").
pub const NFTA_CT_DREG: u16 = 1;
pub const NFTA_CT_KEY: u16 = 2;
/// `NFT_CT_STATE`.
pub const NFT_CT_STATE: u32 = 0;

/// `NFTA_FIB_*` (expression "fib").
pub const NFTA_FIB_DREG: u16 = 1;
pub const NFTA_FIB_RESULT: u16 = 2;
pub const NFTA_FIB_FLAGS: u16 = 3;
/// `NFT_FIB_RESULT_ADDRTYPE`.
pub const NFT_FIB_RESULT_ADDRTYPE: u32 = 3;
/// `NFTA_FIB_F_DADDR`.
pub const NFTA_FIB_F_DADDR: u32 = 1 << 1;

/// `NFTA_COUNTER_*` (expression "counter").
pub const NFTA_COUNTER_BYTES: u16 = 1;
pub const NFTA_COUNTER_PACKETS: u16 = 2;

/// `NFTA_NAT_*` (expression "nat").
pub const NFTA_NAT_TYPE: u16 = 1;
pub const NFTA_NAT_FAMILY: u16 = 2;
pub const NFTA_NAT_REG_ADDR_MIN: u16 = 3;
pub const NFTA_NAT_REG_PROTO_MIN: u16 = 5;
pub const NFTA_NAT_FLAGS: u16 = 7;
/// `NFT_NAT_SNAT`, `NFT_NAT_DNAT`.
pub const NFT_NAT_SNAT: u32 = 0;
pub const NFT_NAT_DNAT: u32 = 1;
/// `NF_NAT_RANGE_MAP_IPS`, `NF_NAT_RANGE_PROTO_SPECIFIED`.
pub const NF_NAT_RANGE_MAP_IPS: u32 = 1;
pub const NF_NAT_RANGE_PROTO_SPECIFIED: u32 = 2;

/// `NFPROTO_IPV4`, `NFPROTO_IPV6` (the NAT family attribute and `meta nfproto` values).
pub const NFPROTO_IPV4: u32 = 2;
pub const NFPROTO_IPV6: u32 = 10;

/// `NFT_LOOKUP_F_INV`.
pub const NFT_LOOKUP_F_INV: u32 = 1;

/// `NF_DROP`, `NF_ACCEPT` (verdict codes the crate leaves to `Other`).
pub const NF_DROP: i32 = 0;
pub const NF_ACCEPT: i32 = 1;

/// `NFTA_SET_DESC_CONCAT`, the concatenation list of a set description.
pub const NFTA_SET_DESC_CONCAT: u16 = 2;
/// `NFTA_SET_FIELD_LEN` inside a set description's concatenation list element
/// (`NFTA_LIST_ELEM`).
pub const NFTA_SET_FIELD_LEN: u16 = 1;
pub const NFTA_LIST_ELEM: u16 = 1;
/// The nested-attribute flag.
pub const NLA_F_NESTED: u16 = 0x8000;

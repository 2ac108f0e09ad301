//! MAC spoof check for bridge ports (`macspoofchk`): frames entering from a container's host
//! veth with a source MAC other than the container's are dropped. One rule per attachment in
//! rcni's `bridge rcni` table, commented with its owner (which GC matches against the valid
//! attachments of the network).

use crate::error::Result;
use crate::nft::{ifname_bytes, BaseChain, Batch, Client, CmpOp, Expr, Family, HookPoint, MetaKind, PayloadBase, Verdict};
use crate::owner::{is_stale, Owner};
use std::collections::HashSet;

pub const TABLE: &str = "rcni";
const CHAIN: &str = "prerouting";
const FAM: Family = Family::Bridge;

/// Drops frames from `host_veth` whose source MAC is not `mac`.
pub fn setup(nft: &mut dyn Client, owner: &Owner, host_veth: &str, mac: [u8; 6]) -> Result<()> {
    let base = BaseChain { kind: "filter", hook: HookPoint::Prerouting, priority: -300, accept: true };
    let rule = [
        Expr::Meta { key: MetaKind::Iifname, reg: 1 },
        Expr::Cmp { op: CmpOp::Eq, reg: 1, data: ifname_bytes(host_veth) },
        // ether saddr: link layer header, offset 6, 6 bytes
        Expr::Payload { base: PayloadBase::Link, offset: 6, len: 6, reg: 1 },
        Expr::Cmp { op: CmpOp::Ne, reg: 1, data: mac.to_vec() },
        Expr::Verdict(Verdict::Drop),
    ];
    let mut b = Batch::new();
    b.add_table(FAM, TABLE).add_chain(FAM, TABLE, CHAIN, Some(&base)).add_rule(FAM, TABLE, CHAIN, &rule, Some(&owner.comment()));
    nft.commit(&b)
}

/// Removes the attachment's rules; returns whether anything was deleted.
pub fn teardown(nft: &mut dyn Client, owner: &Owner) -> Result<bool> {
    let mut b = Batch::new();
    for r in nft.rules(FAM, TABLE, CHAIN)? {
        if owner.owns(r.comment.as_deref()) {
            b.delete_rule(FAM, TABLE, CHAIN, r.handle);
        }
    }
    if b.is_empty() {
        return Ok(false);
    }
    nft.commit(&b)?;
    Ok(true)
}

/// GC: removes the rules of `network` whose owner's tag is not in `valid_tags`, in one batch.
/// Returns how many were removed.
pub fn gc(nft: &mut dyn Client, network: &str, valid_tags: &HashSet<String>) -> Result<usize> {
    let mut b = Batch::new();
    let mut count = 0;
    for r in nft.rules(FAM, TABLE, CHAIN)? {
        if is_stale(r.comment.as_deref(), network, valid_tags) {
            b.delete_rule(FAM, TABLE, CHAIN, r.handle);
            count += 1;
        }
    }
    nft.commit(&b)?;
    Ok(count)
}

/// Whether the attachment's rule is present (for CHECK).
pub fn present(nft: &mut dyn Client, owner: &Owner) -> Result<bool> {
    Ok(nft.rules(FAM, TABLE, CHAIN)?.iter().any(|r| owner.owns(r.comment.as_deref())))
}

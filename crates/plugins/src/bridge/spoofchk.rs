//! MAC spoof check for bridge ports (`macspoofchk`): frames entering from a container's host
//! veth with a source MAC other than the container's are dropped. One rule per attachment in
//! rcni's `bridge rcni` table, commented with its owner (which GC matches against the valid
//! attachments of the network).

use netkit::nft::{ifname_bytes, BaseChain, Batch, Client, CmpOp, Expr, Family, HookPoint, MetaKind, PayloadBase, Verdict};
use netkit::owner::{is_stale, Owner};
use netkit::Result;
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

#[cfg(test)]
mod tests {
    use super::*;
    use netkit::nft::FakeNft;
    use netkit::owner::valid_tags;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

    #[test]
    fn one_rule_per_attachment_removed_by_owner() {
        let mut f = FakeNft::new();
        let (c1, c2) = (Owner::new("net1", "c1", "eth0"), Owner::new("net1", "c2", "eth0"));
        setup(&mut f, &c1, "veth1", MAC).unwrap();
        setup(&mut f, &c2, "veth2", [0x02, 0, 0, 0, 0, 0x02]).unwrap();
        assert_eq!(
            f.log()[0],
            format!(
                "add table bridge rcni
add chain bridge rcni prerouting {{ type filter hook prerouting priority -300; policy accept; }}
add rule bridge rcni prerouting iifname \"veth1\" ether saddr != 02:00:00:00:00:01 drop comment \"{}\"
",
                c1.comment()
            )
        );
        assert!(present(&mut f, &c1).unwrap() && present(&mut f, &c2).unwrap());
        assert!(teardown(&mut f, &c1).unwrap());
        assert!(!present(&mut f, &c1).unwrap());
        assert_eq!(f.rule_texts(FAM, TABLE, CHAIN).len(), 1, "c2's rule stays");
        assert!(!teardown(&mut f, &c1).unwrap(), "gone is fine");
    }

    #[test]
    fn gc_removes_stale_owners_of_its_network_only() {
        let mut f = FakeNft::new();
        setup(&mut f, &Owner::new("net1", "c1", "eth0"), "veth1", MAC).unwrap();
        setup(&mut f, &Owner::new("net1", "c2", "eth0"), "veth2", MAC).unwrap();
        setup(&mut f, &Owner::new("net2", "c1", "eth0"), "veth3", MAC).unwrap();
        assert_eq!(gc(&mut f, "net1", &valid_tags("net1", &[("c2".into(), "eth0".into())])).unwrap(), 1);
        let left = f.rule_texts(FAM, TABLE, CHAIN);
        assert_eq!(left.len(), 2);
        assert!(left[0].contains("\"veth2\"") && left[1].contains("\"veth3\""), "{left:?}");
    }
}

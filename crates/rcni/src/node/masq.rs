//! Masquerade for pods' traffic leaving the cluster network, in table `inet rcni-node`.
//!
//! The conflist keeps the bridge's own `ipMasq` off: rcni's bridge masquerade exempts only the
//! pod's own subnet (the node's /24), so it would rewrite pod-to-pod traffic to other nodes too.
//! The agent instead installs, as flannel does with FLANNEL_IPMASQ=true:
//! `ip saddr <node subnet> ip daddr != <cluster network> masquerade` (multicast excepted).

use ipnet::{IpNet, Ipv4Net};
use netkit::nft::{m, BaseChain, Batch, Client, Expr, Family, HookPoint, Nft, Verdict};

pub const TABLE: &str = "rcni-node";
const CHAIN: &str = "postrouting";

/// The batch that (re)writes the chain: idempotent, so a restarted agent replaces its rules.
pub fn batch(own: Ipv4Net, cluster: Ipv4Net) -> Batch {
    let post = BaseChain { kind: "nat", hook: HookPoint::Postrouting, priority: 100, accept: true };
    let mut b = Batch::new();
    b.add_table(Family::Inet, TABLE).add_chain(Family::Inet, TABLE, CHAIN, Some(&post)).flush_chain(Family::Inet, TABLE, CHAIN);
    let from_pods = m::addr_in_prefix(true, IpNet::V4(own), false);
    let mut mcast = m::all([from_pods.clone(), m::addr_in_prefix(false, "224.0.0.0/4".parse().expect("constant"), false)]);
    mcast.push(Expr::Verdict(Verdict::Return));
    b.add_rule(Family::Inet, TABLE, CHAIN, &mcast, None);
    let mut out = m::all([from_pods, m::addr_in_prefix(false, IpNet::V4(cluster), true)]);
    out.push(Expr::Masquerade);
    b.add_rule(Family::Inet, TABLE, CHAIN, &out, Some(&format!("rcni node masquerade {own} leaving {cluster}")));
    b
}

pub fn setup(own: Ipv4Net, cluster: Ipv4Net) -> Result<(), String> {
    let mut nft = Nft::new().map_err(|e| e.to_string())?;
    nft.commit(&batch(own, cluster)).map_err(|e| format!("masquerade rules: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use netkit::nft::FakeNft;

    #[test]
    fn masquerades_only_what_leaves_the_cluster() {
        let mut nft = FakeNft::new();
        let b = batch("10.245.3.0/24".parse().unwrap(), "10.245.0.0/16".parse().unwrap());
        nft.commit(&b).unwrap();
        // twice: a restarted agent rewrites the chain, it does not add to it
        nft.commit(&b).unwrap();
        let rules = nft.rule_texts(Family::Inet, TABLE, CHAIN);
        assert_eq!(rules.len(), 2, "{rules:?}");
        assert!(rules[0].contains("10.245.3.0/24") && rules[0].contains("224.0.0.0/4") && rules[0].contains("return"), "{}", rules[0]);
        assert!(
            rules[1].contains("10.245.3.0/24") && rules[1].contains("!= 10.245.0.0/16") && rules[1].contains("masquerade"),
            "{}",
            rules[1]
        );
    }
}

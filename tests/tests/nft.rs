//! The nftables layer against the kernel (netsandbox only), read back with `nft`.

use netkit::nft::{m, BaseChain, Batch, Client, Element, Expr, Family, HookPoint, Nft, SetSpec, Verdict};
use rcni_tests::{require_netsandbox, run, run_ok};

const T: &str = "rcni_t1";

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn masquerade_layout_is_what_nft_shows() {
    require_netsandbox();
    let mut nft = Nft::new().unwrap();
    let mut b = Batch::new();
    let post = BaseChain { kind: "nat", hook: HookPoint::Postrouting, priority: 100, accept: true };
    b.add_table(Family::Inet, T)
        .add_chain(Family::Inet, T, "postrouting", Some(&post))
        .add_set(Family::Inet, T, &SetSpec::addrs("masq4_net1", false))
        .add_set(Family::Inet, T, &SetSpec::prefixes("nets4_net1", false))
        .create_chain(Family::Inet, T, "masq_net1", None);
    let mut rule = m::addr_in_set(false, true, "masq4_net1", false);
    rule.push(Expr::Verdict(Verdict::Goto("masq_net1".into())));
    b.add_rule(Family::Inet, T, "postrouting", &rule, Some("rcni masq net1"));
    let mut r1 = m::addr_in_set(false, false, "nets4_net1", false);
    r1.push(Expr::Verdict(Verdict::Return));
    b.add_rule(Family::Inet, T, "masq_net1", &r1, None);
    let mut r2 = m::addr_in_prefix(false, "224.0.0.0/4".parse().unwrap(), false);
    r2.push(Expr::Verdict(Verdict::Return));
    b.add_rule(Family::Inet, T, "masq_net1", &r2, None);
    b.add_rule(Family::Inet, T, "masq_net1", &[Expr::Counter, Expr::Masquerade], Some("rcni masquerade"));
    b.add_elements(Family::Inet, T, "nets4_net1", &[Element::prefix("10.88.0.0/16".parse().unwrap())]);
    b.add_elements(
        Family::Inet,
        T,
        "masq4_net1",
        &[Element::addr("10.88.0.2".parse().unwrap()).with_comment("rcni net=net1 id=c1 if=eth0")],
    );
    nft.commit(&b).unwrap();
    let shown = run_ok("nft", &["list", "table", "inet", T]);
    println!("{shown}");
    assert!(shown.contains("type nat hook postrouting priority srcnat; policy accept;"), "{shown}");
    assert!(shown.contains("ip saddr @masq4_net1 goto masq_net1 comment \"rcni masq net1\""), "{shown}");
    assert!(shown.contains("ip daddr @nets4_net1 return"), "{shown}");
    assert!(shown.contains("ip daddr 224.0.0.0/4 return"), "{shown}");
    assert!(shown.contains("masquerade comment \"rcni masquerade\""), "{shown}");
    assert!(shown.contains("10.88.0.2 comment \"rcni net=net1 id=c1 if=eth0\""), "{shown}");
    assert!(shown.contains("elements = { 10.88.0.0/16 }"), "{shown}");

    // adding the same again: sets, elements, chains are no-ops; the EXCL chain fails the batch
    let mut again = Batch::new();
    again.add_table(Family::Inet, T).add_elements(Family::Inet, T, "nets4_net1", &[Element::prefix("10.88.0.0/16".parse().unwrap())]);
    nft.commit(&again).unwrap();
    let mut excl = Batch::new();
    excl.create_chain(Family::Inet, T, "masq_net1", None);
    let e = nft.commit(&excl).unwrap_err();
    assert!(e.is_exists(), "{e}");
    assert!(e.to_string().contains("adding chain rcni_t1/masq_net1"), "{e}");

    // listing finds rules and elements by comment
    let rules = nft.rules(Family::Inet, T, "postrouting").unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].comment.as_deref(), Some("rcni masq net1"));
    let els = nft.elements(Family::Inet, T, "masq4_net1").unwrap();
    assert_eq!(els.len(), 1);
    assert_eq!(els[0].key, vec![10, 88, 0, 2]);
    assert_eq!(els[0].comment.as_deref(), Some("rcni net=net1 id=c1 if=eth0"));
    assert!(nft.elements(Family::Inet, T, "nope").unwrap().is_empty());
    assert!(nft.rules(Family::Inet, "no_table", "x").unwrap().is_empty());

    // delete the element; a second delete fails with ENOENT and changes nothing
    let mut del = Batch::new();
    del.delete_elements(Family::Inet, T, "masq4_net1", &[Element::addr("10.88.0.2".parse().unwrap())]);
    nft.commit(&del).unwrap();
    assert!(nft.commit(&del).unwrap_err().is_not_found());
    assert!(!run_ok("nft", &["list", "set", "inet", T, "masq4_net1"]).contains("10.88.0.2"));
    let _ = run("nft", &["delete", "table", "inet", T]);
}

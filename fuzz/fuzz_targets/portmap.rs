//! portmap's configuration: `conditionsV4`/`conditionsV6`, `markMasqBit`, `snat`, the
//! iptables-only keys, and `runtimeConfig.portMappings` against the prevResult's addresses;
//! then its nftables layout on the in-memory fake. Nothing panics; what ADD publishes, CHECK
//! finds; after DEL, CHECK finds none of it; GC without the attachment leaves none of its
//! elements (when its comment names the network in full).
//!
//! Input: line 1 is `CNI_IFNAME`, the rest the plugin's stdin.
#![no_main]

use cni_types::NetConf;
use libfuzzer_sys::fuzz_target;
use netkit::nft::{Client, FakeNft};
use netkit::owner::Owner;
use plugins::portmap::fuzzing::{mappings_of, settings_of};
use plugins::portmap::layout;
use std::collections::HashSet;

fuzz_target!(|data: &[u8]| {
    let Some((head, stdin)) = rcni_fuzz::header(data, 1) else { return };
    let ifname = head[0];
    let settings = settings_of(stdin);
    let Ok(conf) = serde_json::from_slice::<NetConf>(stdin) else { return };
    let Some(prev) = conf.prev_result().ok().flatten().and_then(|p| p.to_current().ok()) else { return };
    let Ok((subnets, maps)) = mappings_of(&conf.runtime_config.port_mappings, &prev, ifname) else { return };
    let (Ok(s), false) = (settings, maps.is_empty()) else { return };
    if cni_types::validate::network_name(&conf.name).is_err() || cni_types::validate::interface_name(ifname).is_err() {
        return;
    }
    let mut nft = FakeNft::new();
    let owner = Owner::new(&conf.name, "cid1", ifname);
    if layout::setup(&mut nft, &owner, &s, &subnets, &maps).is_err() {
        return;
    }
    let missing = layout::missing(&mut nft, &owner, &s, &maps).expect("CHECK reads the fake");
    assert!(missing.is_empty(), "published but missing: {missing:?}\n{}", nft.ruleset());
    let gone = layout::teardown(&mut nft, &owner, &s, &[]).expect("DEL on the fake");
    assert!(gone, "DEL found nothing to remove\n{}", nft.ruleset());
    let missing = layout::missing(&mut nft, &owner, &s, &maps).expect("CHECK reads the fake");
    assert_eq!(missing.len(), maps.len(), "left after DEL\n{}", nft.ruleset());

    layout::setup(&mut nft, &owner, &s, &subnets, &maps).expect("the same ADD again");
    layout::gc(&mut nft, &conf.name, &s, &HashSet::new()).expect("GC on the fake");
    let comment = owner.comment();
    // (GC only removes what names its network in full: a comment cut to nft's limit does not,
    // see netkit::owner::is_stale)
    if netkit::owner::parse_comment(&comment).is_none() {
        return;
    }
    for set in nft.sets(netkit::nft::Family::Inet, layout::TABLE).unwrap() {
        for e in nft.elements(netkit::nft::Family::Inet, layout::TABLE, &set).unwrap() {
            assert_ne!(e.comment.as_deref(), Some(comment.as_str()), "GC left an element of the attachment in {set}");
        }
    }
});

//! IPAM configuration: host-local's `ipam` section, range sets and requested addresses (ranges,
//! the legacy single range, `runtimeConfig.ipRanges`, `CNI_ARGS` `IP=`, `args.cni.ips`), and the
//! static plugin's. Nothing panics; every range holds its start and end; an allocation from a
//! valid config (in a scratch store) gives addresses of its ranges, and a release frees them.
//!
//! Input: line 1 is `CNI_ARGS`, the rest the plugin's stdin.
#![no_main]

use ipam::host_local::{allocate, load_config, release, status, store_location};
use ipam::range::RangeSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, stdin)) = rcni_fuzz::header(data, 1) else { return };
    let cni_args = head[0];
    let _ = ipam::static_ipam::load_config(stdin, cni_args).map(|c| ipam::static_ipam::result(&c));
    let _ = store_location(stdin);
    if let Ok(sets) = serde_json::from_slice::<Vec<Vec<cni_types::capabilities::IpRange>>>(stdin) {
        for s in &sets {
            if let Ok(rs) = RangeSet::from_config(s) {
                check_set(&rs);
            }
        }
    }
    let Ok(mut conf) = load_config(stdin, cni_args) else { return };
    for rs in &conf.ranges {
        check_set(rs);
    }
    // (the store and resolv.conf the config names are not this target's to touch)
    conf.data_dir = rcni_fuzz::fresh_dir("ipam");
    conf.resolv_conf = None;
    let _ = status(&conf);
    if let Ok(r) = allocate(&conf, "c1", "eth0") {
        assert_eq!(r.ips.len(), conf.ranges.len(), "one address per range set");
        for (ipc, rs) in r.ips.iter().zip(&conf.ranges) {
            let range = rs.range_for(&ipc.address.addr()).expect("an allocated address is in its range set");
            assert_eq!(ipc.address.prefix_len(), range.subnet.prefix_len());
            assert_ne!(ipc.address.addr(), range.gateway, "the gateway is never handed out");
        }
        release(&conf.name, &conf.data_dir, "c1", "eth0").expect("release");
        let store = ipam::store::Store::open(&conf.data_dir, &conf.name).unwrap();
        for ipc in &r.ips {
            assert!(!store.is_reserved(&ipc.address.addr()), "{} still reserved", ipc.address);
        }
    }
});

fn check_set(rs: &RangeSet) {
    assert!(!rs.0.is_empty());
    for r in &rs.0 {
        assert!(r.contains(&r.range_start), "{r:?} does not hold its start");
        assert!(r.contains(&r.range_end), "{r:?} does not hold its end");
        assert_eq!(r.range_start.is_ipv4(), rs.is_ipv4(), "one family per set");
        let _ = r.to_string();
    }
    let _ = rs.to_string();
}

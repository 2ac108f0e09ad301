//! Property tests: result conversion across every pair of spec versions.

use cni_types::result::{CniResult, Dns, Interface, IpConfig, Result100, Route};
use cni_types::version::ALL;
use ipnet::IpNet;
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}
fn v6() -> impl Strategy<Value = Ipv6Addr> {
    // keep clear of IPv4-mapped addresses, which normalise to IPv4 by design
    any::<[u16; 8]>().prop_map(|mut s| {
        s[0] |= 0x2000;
        Ipv6Addr::from(s)
    })
}
fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![v4().prop_map(IpAddr::V4), v6().prop_map(IpAddr::V6)]
}
fn net() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (v4(), 0u8..=32).prop_map(|(a, p)| IpNet::new(IpAddr::V4(a), p).unwrap()),
        (v6(), 0u8..=128).prop_map(|(a, p)| IpNet::new(IpAddr::V6(a), p).unwrap()),
    ]
}
fn word() -> impl Strategy<Value = String> {
    "[a-z0-9<>&]{0,8}"
}
fn route() -> impl Strategy<Value = Route> {
    (
        net(),
        proptest::option::of(ip()),
        0u32..9000,
        0u32..9000,
        0u32..100,
        proptest::option::of(0u32..300),
        proptest::option::of(any::<u8>()),
    )
        .prop_map(|(dst, gw, mtu, advmss, priority, table, scope)| Route { dst, gw, mtu, advmss, priority, table, scope })
}
fn interface() -> impl Strategy<Value = Interface> {
    ("[a-z]{1,6}[0-9]", word(), 0u32..9000, word(), word(), word()).prop_map(|(name, mac, mtu, sandbox, socket_path, pci_id)| Interface {
        name,
        mac,
        mtu,
        sandbox,
        socket_path,
        pci_id,
    })
}
fn dns() -> impl Strategy<Value = Dns> {
    (proptest::collection::vec(word(), 0..3), word(), proptest::collection::vec(word(), 0..3), proptest::collection::vec(word(), 0..2))
        .prop_map(|(nameservers, domain, search, options)| Dns { nameservers, domain, search, options })
}
fn result100() -> impl Strategy<Value = Result100> {
    (
        proptest::collection::vec(interface(), 0..4),
        proptest::collection::vec((net(), proptest::option::of(ip()), proptest::option::of(0usize..4)), 0..5),
        proptest::collection::vec(route(), 0..5),
        dns(),
    )
        .prop_map(|(interfaces, ips, routes, dns)| Result100 {
            cni_version: "1.1.0".into(),
            interfaces,
            ips: ips.into_iter().map(|(address, gateway, interface)| IpConfig { interface, address, gateway }).collect(),
            routes,
            dns,
        })
}
/// A result of any version, made by converting a generated 1.1.0 result down.
fn any_result() -> impl Strategy<Value = CniResult> {
    (result100(), proptest::sample::select(ALL)).prop_filter_map("unconvertible", |(r, v)| CniResult::V1(r).convert(v).ok())
}

fn has_ip(r: &Result100) -> bool {
    !r.ips.is_empty()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_pair_converts_or_fails_only_for_lack_of_addresses(r in any_result(), to in proptest::sample::select(ALL)) {
        let current = r.to_current().unwrap();
        match r.convert(to) {
            Ok(c) => prop_assert_eq!(c.version(), to),
            Err(e) => {
                prop_assert!(to == "0.1.0" || to == "0.2.0", "unexpected failure {e} converting {} to {to}", r.version());
                prop_assert!(current.ips.is_empty(), "conversion failed although the result has addresses");
                prop_assert_eq!(e.to_string(), "cannot convert: no valid IP addresses");
            }
        }
    }

    #[test]
    fn same_version_is_identity(r in any_result()) {
        prop_assert_eq!(r.convert(r.version()).unwrap(), r);
    }

    #[test]
    fn json_round_trip_in_every_version(r in any_result()) {
        let back = CniResult::create(r.version(), &r.to_json()).unwrap();
        prop_assert_eq!(&back, &r);
        let back = CniResult::from_bytes(&r.to_json_pretty()).unwrap();
        prop_assert_eq!(back, r);
    }

    #[test]
    fn through_04x_keeps_everything_but_11_interface_fields(r in result100(), mid in proptest::sample::select(&["0.3.0", "0.3.1", "0.4.0"][..])) {
        let back = CniResult::V1(r.clone()).convert(mid).unwrap().to_current().unwrap();
        let mut expect = r.clone();
        for i in &mut expect.interfaces {
            i.mtu = 0;
            i.socket_path.clear();
            i.pci_id.clear();
        }
        prop_assert_eq!(back, expect);
    }

    #[test]
    fn through_02x_keeps_first_address_of_each_family(r in result100(), mid in proptest::sample::select(&["0.1.0", "0.2.0"][..])) {
        let conv = CniResult::V1(r.clone()).convert(mid);
        if !has_ip(&r) {
            prop_assert!(conv.is_err());
            return Ok(());
        }
        let back = conv.unwrap().to_current().unwrap();
        let first4 = r.ips.iter().find(|i| i.address.addr().is_ipv4());
        let first6 = r.ips.iter().find(|i| i.address.addr().is_ipv6());
        let expect_ips: Vec<(IpNet, Option<IpAddr>)> = first4.into_iter().chain(first6).map(|i| (i.address, i.gateway)).collect();
        let got_ips: Vec<(IpNet, Option<IpAddr>)> = back.ips.iter().map(|i| (i.address, i.gateway)).collect();
        prop_assert_eq!(got_ips, expect_ips);
        prop_assert!(back.ips.iter().all(|i| i.interface.is_none()));
        prop_assert!(back.interfaces.is_empty());
        // routes: those of a family that has an address, v4 ones first, only dst/gw
        let mut expect_routes: Vec<Route> = Vec::new();
        for fam_v4 in [true, false] {
            let present = if fam_v4 { first4.is_some() } else { first6.is_some() };
            if present {
                expect_routes.extend(r.routes.iter().filter(|x| x.dst.addr().is_ipv4() == fam_v4).map(|x| Route::new(x.dst, x.gw)));
            }
        }
        prop_assert_eq!(back.routes, expect_routes);
        prop_assert_eq!(back.dns, r.dns);
    }

    #[test]
    fn indirect_paths_agree_with_direct_ones(r in any_result(), to in proptest::sample::select(ALL)) {
        // Go converts between 0.x and 1.x through 0.4.0; a direct conversion must equal the
        // two-step one. (1.0 <-> 1.1 is a plain copy and does not pass through 0.4.0.)
        prop_assume!(!(r.version().starts_with("1.") && to.starts_with("1.")));
        let direct = r.convert(to);
        let two_step = r.convert("0.4.0").and_then(|m| m.convert(to));
        match (direct, two_step) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "direct {a:?} vs two-step {b:?}"),
        }
    }
}

use super::*;

const BRIDGE_100: &str = r#"{"cniVersion":"1.0.0","interfaces":[{"name":"cni0","mac":"96:7d:00:00:00:01"},{"name":"vethe9c3fd1d","mac":"ba:e2:00:00:00:02"},{"name":"eth0","mac":"fa:90:00:00:00:03","sandbox":"/var/run/netns/cnitest-c1"}],"ips":[{"interface":2,"address":"10.99.0.2/16","gateway":"10.99.0.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{}}"#;

fn s(r: &CniResult) -> String {
    String::from_utf8(r.to_json()).unwrap()
}

#[test]
fn v1_marshals_sorted_without_empty_dns() {
    let r = CniResult::from_bytes(BRIDGE_100.as_bytes()).unwrap();
    assert_eq!(r.version(), "1.0.0");
    assert_eq!(
        s(&r),
        r#"{"cniVersion":"1.0.0","interfaces":[{"mac":"96:7d:00:00:00:01","name":"cni0"},{"mac":"ba:e2:00:00:00:02","name":"vethe9c3fd1d"},{"mac":"fa:90:00:00:00:03","name":"eth0","sandbox":"/var/run/netns/cnitest-c1"}],"ips":[{"address":"10.99.0.2/16","gateway":"10.99.0.1","interface":2}],"routes":[{"dst":"0.0.0.0/0"}]}"#
    );
}

#[test]
fn v04_marshals_in_struct_order_with_dns() {
    let r = CniResult::from_bytes(BRIDGE_100.as_bytes()).unwrap().convert("0.4.0").unwrap();
    assert_eq!(
        s(&r),
        r#"{"cniVersion":"0.4.0","interfaces":[{"name":"cni0","mac":"96:7d:00:00:00:01"},{"name":"vethe9c3fd1d","mac":"ba:e2:00:00:00:02"},{"name":"eth0","mac":"fa:90:00:00:00:03","sandbox":"/var/run/netns/cnitest-c1"}],"ips":[{"version":"4","interface":2,"address":"10.99.0.2/16","gateway":"10.99.0.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{}}"#
    );
}

#[test]
fn to_020_picks_first_of_each_family_and_splits_routes() {
    let src = r#"{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","mtu":1400,"socketPath":"/s","pciID":"0000:00:01.0"}],
      "ips":[{"address":"10.1.0.5/24","gateway":"10.1.0.1","interface":0},{"address":"10.2.0.5/24"},
             {"address":"2001:db8::5/64","gateway":"2001:db8::1"}],
      "routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1","mtu":1300},{"dst":"::/0","gw":"2001:db8::1"}],
      "dns":{"nameservers":["1.1.1.1"]}}"#;
    let r = CniResult::from_bytes(src.as_bytes()).unwrap();
    let old = r.convert("0.2.0").unwrap();
    assert_eq!(
        s(&old),
        r#"{"cniVersion":"0.2.0","ip4":{"ip":"10.1.0.5/24","gateway":"10.1.0.1","routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"}]},"ip6":{"ip":"2001:db8::5/64","gateway":"2001:db8::1","routes":[{"dst":"::/0","gw":"2001:db8::1"}]},"dns":{"nameservers":["1.1.1.1"]}}"#
    );
    // the 1.1 interface fields are dropped going down, route extras are kept (as Go's Route.Copy)
    let mid = r.convert("0.3.1").unwrap();
    assert_eq!(
        s(&mid),
        r#"{"cniVersion":"0.3.1","interfaces":[{"name":"eth0"}],"ips":[{"version":"4","interface":0,"address":"10.1.0.5/24","gateway":"10.1.0.1"},{"version":"4","address":"10.2.0.5/24"},{"version":"6","address":"2001:db8::5/64","gateway":"2001:db8::1"}],"routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1","mtu":1300},{"dst":"::/0","gw":"2001:db8::1"}],"dns":{"nameservers":["1.1.1.1"]}}"#
    );
}

#[test]
fn to_020_drops_routes_of_missing_family() {
    let r = CniResult::from_bytes(
        br#"{"cniVersion":"0.4.0","ips":[{"version":"6","address":"fd00::2/64"}],"routes":[{"dst":"0.0.0.0/0"},{"dst":"fd01::/64"}]}"#,
    )
    .unwrap();
    assert_eq!(
        s(&r.convert("0.1.0").unwrap()),
        r#"{"cniVersion":"0.1.0","ip6":{"ip":"fd00::2/64","routes":[{"dst":"fd01::/64"}]},"dns":{}}"#
    );
}

#[test]
fn to_020_uses_version_field_not_address() {
    // 0.4.0 → 0.2.0 trusts the `version` field, as Go does; an entry without it is skipped.
    let r = CniResult::from_bytes(br#"{"cniVersion":"0.4.0","ips":[{"address":"10.0.0.2/24"}]}"#).unwrap();
    assert_eq!(r.convert("0.2.0").unwrap_err(), ResultError::NoValidIps);
    assert_eq!(r.convert("0.2.0").unwrap_err().to_string(), "cannot convert: no valid IP addresses");
}

#[test]
fn from_020_upconverts_in_order() {
    let r = CniResult::from_bytes(
        br#"{"ip4":{"ip":"10.0.0.2/24","gateway":"10.0.0.1","routes":[{"dst":"10.9.0.0/16"}]},"ip6":{"ip":"fd00::2/64","routes":[{"dst":"fd01::/64","gw":"fd00::1"}]},"dns":{"domain":"x"}}"#,
    )
    .unwrap();
    assert_eq!(r.version(), "0.1.0", "missing cniVersion means 0.1.0");
    let up = r.convert("1.1.0").unwrap();
    assert_eq!(
        s(&up),
        r#"{"cniVersion":"1.1.0","dns":{"domain":"x"},"ips":[{"address":"10.0.0.2/24","gateway":"10.0.0.1"},{"address":"fd00::2/64"}],"routes":[{"dst":"10.9.0.0/16"},{"dst":"fd01::/64","gw":"fd00::1"}]}"#
    );
    assert_eq!(
        s(&r.convert("0.3.0").unwrap()),
        r#"{"cniVersion":"0.3.0","ips":[{"version":"4","address":"10.0.0.2/24","gateway":"10.0.0.1"},{"version":"6","address":"fd00::2/64"}],"routes":[{"dst":"10.9.0.0/16"},{"dst":"fd01::/64","gw":"fd00::1"}],"dns":{"domain":"x"}}"#
    );
}

#[test]
fn unknown_versions() {
    let r = CniResult::from_bytes(BRIDGE_100.as_bytes()).unwrap();
    assert_eq!(r.convert("1.2.0").unwrap_err().to_string(), "no converter for CNI result version 1.0.0 to 1.2.0");
    assert_eq!(CniResult::create("2.0.0", b"{}").unwrap_err().to_string(), "unsupported CNI result version \"2.0.0\"");
    assert_eq!(
        CniResult::create("0.4.0", br#"{"cniVersion":"1.0.0"}"#).unwrap_err().to_string(),
        r#"result type supports ["0.3.0" "0.3.1" "0.4.0"] but unmarshalled CNIVersion is "1.0.0""#
    );
    assert!(CniResult::from_bytes(b"").unwrap_err().to_string().starts_with("decoding version from network config:"));
}

#[test]
fn empty_target_means_010() {
    let r = CniResult::from_bytes(br#"{"cniVersion":"0.2.0","ip4":{"ip":"10.0.0.2/24"}}"#).unwrap();
    assert_eq!(r.convert("").unwrap().version(), "0.1.0");
}

#[test]
fn unset_version_reads_as_newest_of_shape() {
    let r = CniResult::V1(Result100::default());
    assert_eq!(r.version(), "1.1.0");
    assert_eq!(r.convert("1.1.0").unwrap().version(), "1.1.0");
    assert_eq!(s(&r.convert("1.1.0").unwrap()), r#"{"cniVersion":"1.1.0"}"#);
}

#[test]
fn pretty_print_is_four_space_indented() {
    let r = CniResult::from_bytes(br#"{"cniVersion":"1.1.0","ips":[{"address":"10.0.0.2/24"}]}"#).unwrap();
    assert_eq!(
        String::from_utf8(r.to_json_pretty()).unwrap(),
        "{\n    \"cniVersion\": \"1.1.0\",\n    \"ips\": [\n        {\n            \"address\": \"10.0.0.2/24\"\n        }\n    ]\n}"
    );
}

#[test]
fn rejects_malformed_addresses() {
    let e = CniResult::from_bytes(br#"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2"}]}"#).unwrap_err();
    assert!(e.to_string().contains("invalid CIDR address: 10.0.0.2"), "{e}");
}

#[test]
fn shape_decides_when_the_stamped_version_belongs_to_another_shape() {
    // a plugin that builds a 1.x result but stamps its config's "0.4.0" on it
    let r = CniResult::V1(Result100 {
        cni_version: "0.4.0".into(),
        ips: vec![IpConfig { interface: Some(0), address: parse_cidr("10.0.0.2/24").unwrap(), gateway: None }],
        ..Default::default()
    });
    assert_eq!(r.version(), "1.1.0");
    assert_eq!(
        s(&r.convert("0.4.0").unwrap()),
        r#"{"cniVersion":"0.4.0","ips":[{"version":"4","interface":0,"address":"10.0.0.2/24"}],"dns":{}}"#
    );
    // an unknown version is kept, so converting from it fails clearly
    let r = CniResult::V1(Result100 { cni_version: "9.9.9".into(), ..Default::default() });
    assert_eq!(r.convert("1.0.0").unwrap_err().to_string(), "no converter for CNI result version 9.9.9 to 1.0.0");
}

//! The SDK's documented example plugin works under the runtime library.

mod common;

use cni_runtime::{Ctx, RuntimeConf};
use cni_types::NetworkConfigList;
use common::Fixture;

#[test]
fn static_ip_example_plugin() {
    let example = rcni_tests::target_dir().join("examples/static-ip");
    assert!(example.exists(), "{} missing: build with `cargo build --workspace --all-targets` (scripts/test does)", example.display());
    let fx = Fixture::new();
    std::os::unix::fs::symlink(&example, fx.bin().join("static-ip")).unwrap();
    let list =
        NetworkConfigList::from_bytes(br#"{"cniVersion":"0.4.0","name":"ex","plugins":[{"type":"static-ip","address":"10.9.0.2/24"}]}"#)
            .unwrap();
    let rt = RuntimeConf { container_id: "c".into(), netns: "/var/run/netns/x".into(), ifname: "eth0".into(), ..Default::default() };
    let ctx = Ctx::background();
    let r = fx.cni().add_network_list(&ctx, &list, &rt).unwrap();
    assert_eq!(
        String::from_utf8(r.to_json()).unwrap(),
        r#"{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/x"}],"ips":[{"version":"4","interface":0,"address":"10.9.0.2/24"}],"dns":{}}"#
    );
    fx.cni().check_network_list(&ctx, &list, &rt).unwrap();
    fx.cni().del_network_list(&ctx, &list, &rt).unwrap();
    let bad =
        NetworkConfigList::from_bytes(br#"{"cniVersion":"1.0.0","name":"ex","plugins":[{"type":"static-ip","address":"nope"}]}"#).unwrap();
    assert_eq!(fx.cni().add_network_list(&ctx, &bad, &rt).unwrap_err().code(), Some(7));
}

//! `rcni gc` (netsandbox only): attachments whose namespace vanished without DEL are reclaimed
//! through their cache; live ones, and young ones within the grace period, are left alone.

use rcni_tests::{rcni, require_netsandbox, run_ok, TestNetns};
use serde_json::{json, Value};

fn leases(net: &str) -> Vec<String> {
    std::fs::read_dir(format!("/var/lib/cni/networks/{net}"))
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|f| f.starts_with("10.")).collect())
        .unwrap_or_default()
}

fn cached(id: &str) -> Vec<String> {
    std::fs::read_dir("/var/lib/cni/results")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.contains(&format!("-{id}-")))
        .collect()
}

fn nft(args: &[&str]) -> String {
    run_ok("nft", args)
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn gc_reclaims_attachments_whose_namespace_vanished() {
    require_netsandbox();
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
    let conf = tempfile::tempdir().unwrap();
    let dir = conf.path().to_str().unwrap();
    let list = json!({"cniVersion": "1.1.0", "name": "gcnet", "plugins": [
        {"type": "bridge", "bridge": "rcnigcc", "isGateway": true, "ipMasq": true,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.246.1.0/24"}]]}},
        {"type": "portmap", "capabilities": {"portMappings": true}}]});
    std::fs::write(conf.path().join("10-gcnet.conflist"), list.to_string()).unwrap();
    let gone = TestNetns::new("rcni-gcc-gone");
    let live = TestNetns::new("rcni-gcc-live");
    for (ns, extra) in [(&gone, vec!["-p", "9401:80"]), (&live, vec![])] {
        let mut args = vec!["attach", ns.name.as_str(), "--conf-dir", dir];
        args.extend(extra);
        let out = rcni(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(leases("gcnet").len(), 2);
    assert_eq!(cached("rcni-gcc-gone").len(), 2, "gcnet and loopback");
    assert!(nft(&["list", "table", "inet", "rcni_hostport"]).contains("id=rcni-gcc-gone if=eth0"));

    // the namespace disappears without a DEL: its veth goes with it, everything else stays
    run_ok("ip", &["netns", "del", "rcni-gcc-gone"]);
    assert!(nft(&["list", "set", "inet", "rcni", "m4_gcnet"]).contains("id=rcni-gcc-gone if=eth0"));

    // within the grace period: reported, left alone
    let out = rcni(&["gc", "--conf-dir", dir, "--network", "gcnet"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("gcnet: left rcni-gcc-gone eth0: younger than the grace period"), "{text}");
    assert!(text.contains("gcnet: 0 reclaimed, 1 live, 1 left alone, plugins garbage-collected"), "{text}");
    assert_eq!(leases("gcnet").len(), 2, "nothing reclaimed yet");

    // (named networks only: other tests share this sandbox's cache)
    let out = rcni(&["gc", "--conf-dir", dir, "--grace-period", "0", "--json", "-n", "gcnet", "-n", "cni-loopback"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let nets = report["networks"].as_array().unwrap();
    let gcnet = nets.iter().find(|n| n["network"] == "gcnet").unwrap();
    assert_eq!(gcnet["reclaimed"][0]["containerID"], "rcni-gcc-gone", "{report}");
    assert_eq!((gcnet["live"].as_u64(), gcnet["gcSent"].as_bool()), (Some(1), Some(true)), "{report}");
    // the loopback attachment, known only to the cache, is reclaimed too
    let lo = nets.iter().find(|n| n["network"] == "cni-loopback").unwrap();
    assert!(lo["reclaimed"].as_array().unwrap().iter().any(|a| a["containerID"] == "rcni-gcc-gone"), "{report}");

    assert!(cached("rcni-gcc-gone").is_empty(), "cache entries removed");
    assert_eq!(leases("gcnet").len(), 1, "lease released");
    assert!(!nft(&["list", "set", "inet", "rcni", "m4_gcnet"]).contains("id=rcni-gcc-gone "), "masquerade element removed");
    assert!(!nft(&["list", "table", "inet", "rcni_hostport"]).contains("id=rcni-gcc-gone "), "port mapping removed");
    // the live one is untouched and still has traffic
    assert_eq!(cached("rcni-gcc-live").len(), 2);
    assert!(nft(&["list", "set", "inet", "rcni", "m4_gcnet"]).contains("id=rcni-gcc-live if=eth0"));
    assert!(live.ping("10.246.1.1"), "live attachment still reaches its gateway");

    // nothing left to do: a second run reclaims nothing
    let out = rcni(&["gc", "--conf-dir", dir, "--grace-period", "0", "--network", "gcnet"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "gcnet: 0 reclaimed, 1 live, 0 left alone, plugins garbage-collected\n");
    assert!(rcni(&["detach", &live.name, "--conf-dir", dir]).status.success());
    // an unknown network is an error
    assert_eq!(rcni(&["gc", "--conf-dir", dir, "--network", "nope"]).status.code(), Some(1));
}

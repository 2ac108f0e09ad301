//! `rcni attach` / `rcni detach` (netsandbox only).

use rcni_tests::{fetch, rcni, require_netsandbox, run_ok, serve, TestNetns};
use serde_json::json;
use std::path::Path;

fn write(dir: &Path, file: &str, v: serde_json::Value) {
    std::fs::write(dir.join(file), serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn attach_default_network_and_detach() {
    require_netsandbox();
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
    let empty = tempfile::tempdir().unwrap();
    let ns = TestNetns::new("rcni-att-1");
    let out = rcni(&["attach", &ns.name, "--conf-dir", empty.path().to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("eth0: 10.209.") && text.contains("gateway 10.209.0.1 (network rcni-default"), "{text}");
    assert!(text.contains(&format!("detach with: rcni detach {}", ns.name)), "{text}");
    assert!(ns.ping("10.209.0.1"), "reaches its gateway");
    assert!(run_ok("ip", &["-n", &ns.name, "-br", "link", "show", "lo"]).contains("UNKNOWN"), "lo is up");
    let cached: Vec<String> = std::fs::read_dir("/var/lib/cni/results")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f.contains("-rcni-att-1-"))
        .collect();
    assert_eq!(cached.len(), 2, "{cached:?}");
    // the embedded default network masquerades
    assert!(run_ok("nft", &["list", "set", "inet", "rcni", "m4_rcni-default"]).contains("id=rcni-att-1 if=eth0"));
    let out = rcni(&["detach", &ns.name, "--conf-dir", empty.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "eth0: detached from rcni-default\nlo: detached from cni-loopback\n");
    assert!(!ns.exec(&["ip", "link", "show", "eth0"]).status.success());
    // (other tests attach to the default network meanwhile: only this container's lease counts)
    let leases = std::fs::read_dir("/var/lib/cni/networks/rcni-default").unwrap();
    assert!(!leases.map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default()).any(|c| c.starts_with("rcni-att-1\r\n")));
    assert!(!run_ok("nft", &["list", "set", "inet", "rcni", "m4_rcni-default"]).contains("id=rcni-att-1 "));
    // detaching again is fine
    assert!(rcni(&["detach", &ns.name]).status.success());
    // a namespace that does not exist
    let out = rcni(&["attach", "rcni-att-missing"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rcni netns add rcni-att-missing"));
}

/// Attaching a namespace that is attached already is refused and leaves the first attachment as
/// it was (it used to fail on the existing eth0 and then roll back, i.e. DEL, the first one).
#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn a_second_attach_is_refused_and_keeps_the_first() {
    require_netsandbox();
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let ns = TestNetns::new("rcni-att-twice");
    assert!(rcni(&["attach", &ns.name, "--conf-dir", dir]).status.success());
    let out = rcni(&["attach", &ns.name, "--conf-dir", dir]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("container rcni-att-twice is already attached (rcni-default eth0, cni-loopback lo)")
            && err.contains(&format!("rcni detach {}", ns.name)),
        "{err}"
    );
    assert!(ns.ping("10.209.0.1"), "the first attachment still works");
    let cached = std::fs::read_dir("/var/lib/cni/results")
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("-rcni-att-twice-"));
    assert_eq!(cached.count(), 2);
    // an explicit container ID is part of the detach hint
    let ns2 = TestNetns::new("rcni-att-id");
    let out = rcni(&["attach", &ns2.name, "--id", "ctr-with-id", "--conf-dir", dir]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains(&format!("detach with: rcni detach {} --id ctr-with-id", ns2.name)), "{text}");
    assert!(rcni(&["detach", &ns2.name, "--id", "ctr-with-id", "--conf-dir", dir]).status.success());
    assert!(rcni(&["detach", &ns.name, "--conf-dir", dir]).status.success());
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn attach_two_networks_and_roll_back_on_failure() {
    require_netsandbox();
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
    let conf = tempfile::tempdir().unwrap();
    let net = |name: &str, br: &str, subnet: &str| {
        json!({"cniVersion": "1.0.0", "name": name, "plugins": [{"type": "bridge", "bridge": br, "isGateway": true,
            "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]]}}]})
    };
    write(conf.path(), "10-front.conflist", net("front", "rcnifront", "10.243.1.0/24"));
    write(conf.path(), "20-back.conflist", net("back", "rcniback", "10.243.2.0/24"));
    write(conf.path(), "30-broken.conflist", json!({"cniVersion": "1.0.0", "name": "broken", "plugins": [{"type": "no-such-plugin"}]}));
    let dir = conf.path().to_str().unwrap();
    let ns = TestNetns::new("rcni-att-2");
    let out = rcni(&["attach", &ns.name, "--conf-dir", dir, "--network", "front", "--network", "back"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("eth0: 10.243.1.2/24 gateway 10.243.1.1 (network front")
            && text.contains("eth1: 10.243.2.2/24 gateway 10.243.2.1 (network back"),
        "{text}"
    );
    assert!(ns.ping("10.243.1.1") && ns.ping("10.243.2.1"));
    let out = rcni(&["detach", &ns.name, "--conf-dir", dir]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "eth1: detached from back\neth0: detached from front\nlo: detached from cni-loopback\n"
    );

    // a failing third network rolls back the first two
    let out = rcni(&["attach", &ns.name, "--conf-dir", dir, "--all"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed to find plugin \"no-such-plugin\""));
    for ifname in ["eth0", "eth1", "eth2"] {
        assert!(!ns.exec(&["ip", "link", "show", ifname]).status.success(), "{ifname} rolled back");
    }
    for net in ["front", "back"] {
        let leases: Vec<_> = std::fs::read_dir(format!("/var/lib/cni/networks/{net}"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("10."))
            .collect();
        assert!(leases.is_empty(), "{net}: lease released");
    }
    assert!(!std::fs::read_dir("/var/lib/cni/results").unwrap().any(|e| e.unwrap().file_name().to_string_lossy().contains("-rcni-att-2-")));
}

/// `--publish` hands port mappings to portmap (part of the default network); detach takes them
/// away; a network without portmap is refused before anything is attached.
#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn attach_publishes_ports() {
    require_netsandbox();
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let ns = TestNetns::new("rcni-att-3");
    let out = rcni(&["attach", &ns.name, "--conf-dir", dir, "-p", "9301:80", "--publish", "127.0.0.1:9302:81/tcp"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("published 9301 -> 80/tcp\npublished 127.0.0.1:9302 -> 81/tcp\n"), "{text}");
    serve(&ns.name, 80, "eighty");
    serve(&ns.name, 81, "eighty-one");
    assert_eq!(fetch(None, "10.209.0.1:9301").as_deref(), Some("eighty"), "via the node's address");
    assert_eq!(fetch(None, "127.0.0.1:9301").as_deref(), Some("eighty"), "via localhost");
    assert_eq!(fetch(None, "127.0.0.1:9302").as_deref(), Some("eighty-one"), "bound to its host IP");
    assert_eq!(fetch(None, "10.209.0.1:9302"), None, "only on its host IP");
    let maps = run_ok("nft", &["list", "table", "inet", "rcni_hostport"]);
    assert!(maps.contains("id=rcni-att-3 if=eth0"), "{maps}");

    let out = rcni(&["detach", &ns.name, "--conf-dir", dir]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(fetch(None, "127.0.0.1:9301"), None, "unpublished");
    assert!(!run_ok("nft", &["list", "table", "inet", "rcni_hostport"]).contains("id=rcni-att-3 "));

    // a network without portmap: refused, nothing attached
    let conf = tempfile::tempdir().unwrap();
    let plain = json!({"cniVersion": "1.0.0", "name": "plain", "plugins": [{"type": "bridge", "bridge": "rcniplain",
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.243.3.0/24"}]]}}]});
    write(conf.path(), "10-plain.conflist", plain);
    let out = rcni(&["attach", &ns.name, "--conf-dir", conf.path().to_str().unwrap(), "-p", "9303:80"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("portMappings capability"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!ns.exec(&["ip", "link", "show", "eth0"]).status.success(), "nothing attached");
    // a bad spec is clap's usage error
    let out = rcni(&["attach", &ns.name, "-p", "80"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HOST_PORT:CONTAINER_PORT"));
}

/// Two attaches of one namespace at the same time: one attaches, the other is refused, and the
/// attachment that won is intact (the check and the ADD run under a per-container lock).
#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn concurrent_attaches_of_one_namespace() {
    require_netsandbox();
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap().to_string();
    let ns = TestNetns::new("rcni-att-race");
    for round in 0..5 {
        let outs: Vec<std::process::Output> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..3).map(|_| s.spawn(|| rcni(&["attach", &ns.name, "--conf-dir", &dir]))).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ok = outs.iter().filter(|o| o.status.success()).count();
        assert_eq!(
            ok,
            1,
            "round {round}: exactly one attach wins: {:?}",
            outs.iter().map(|o| String::from_utf8_lossy(&o.stderr).into_owned()).collect::<Vec<_>>()
        );
        for o in outs.iter().filter(|o| !o.status.success()) {
            assert!(String::from_utf8_lossy(&o.stderr).contains("is already attached"), "{}", String::from_utf8_lossy(&o.stderr));
        }
        assert!(ns.ping("10.209.0.1"), "round {round}: the winner's attachment works");
        assert!(rcni(&["detach", &ns.name, "--conf-dir", &dir]).status.success());
    }
}

/// `--trace` lists every plugin run of the attach with its verb, how it ran, its duration and its
/// kernel requests, and the total; `RCNI_TRACE=json` does the same for cnitool.
#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn trace_lists_every_plugin_with_a_duration() {
    require_netsandbox();
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().to_str().unwrap();
    let ns = TestNetns::new("rcni-att-trace");
    let out = rcni(&["attach", &ns.name, "--conf-dir", dir, "--trace", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = v["trace"]["steps"].as_array().unwrap();
    let plugins: Vec<&str> = steps.iter().map(|s| s["plugin"].as_str().unwrap()).collect();
    assert_eq!(plugins, ["loopback", "bridge", "portmap"], "{v}");
    for s in steps {
        assert_eq!((s["verb"].as_str(), s["how"].as_str(), s["ok"].as_bool()), (Some("ADD"), Some("in-process"), Some(true)), "{s}");
        assert!(s["durationMs"].as_f64().unwrap() > 0.0, "{s}");
    }
    let bridge = &steps[1];
    assert!(bridge["kernelRequests"].as_u64().unwrap() >= 5, "bridge talks to the kernel: {bridge}");
    assert!(bridge["summary"].as_str().unwrap().starts_with("10.209."), "{bridge}");
    let total = v["trace"]["totalMs"].as_f64().unwrap();
    let sum: f64 = steps.iter().map(|s| s["durationMs"].as_f64().unwrap()).sum();
    assert!(total >= sum, "the total covers the steps: {total} < {sum}");
    // text form on stderr
    let out = rcni(&["detach", &ns.name, "--conf-dir", dir]);
    assert!(out.status.success());
    let out = rcni(&["attach", &ns.name, "--conf-dir", dir, "--trace"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.lines().filter(|l| l.starts_with("trace: ADD")).count() == 3 && err.contains("trace: total "), "{err}");
    assert!(rcni(&["detach", &ns.name, "--conf-dir", dir]).status.success());
}

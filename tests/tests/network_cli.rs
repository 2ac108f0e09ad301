//! `rcni network create/ls/inspect/rm/prune` and `rcni ps` (netsandbox only): the conflist a
//! create writes works with Go's cnitool, subnets are picked around what the directory and the
//! node use, refusals write nothing, removal takes the bridge, nftables objects and store along.
//! One test function: automatic subnets depend on the node's routes, which parallel tests of
//! this file would change under each other.

use rcni_tests::{go_cnitool, rcni, require_netsandbox, run, run_ok, Installed, TestNetns};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn err(out: Output) -> String {
    assert!(!out.status.success(), "should have failed: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn net(dir: &Path, args: &[&str]) -> Output {
    let mut a = vec!["network"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["--conf-dir", dir.to_str().unwrap()]);
    rcni(&a)
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.retain(|f| !f.starts_with('.'));
    v.sort();
    v
}

fn inspect(dir: &Path, name: &str) -> Value {
    let v: Value = serde_json::from_str(&ok(net(dir, &["inspect", name]))).unwrap();
    v[0].clone()
}

fn go_cnitool_cmd(dir: &Path, inst: &Installed, cmd: &str, network: &str, ns: &TestNetns) -> Output {
    std::process::Command::new(go_cnitool())
        .args([cmd, network, &ns.path()])
        .env("NETCONFPATH", dir)
        .env("CNI_PATH", inst.dir.path())
        .output()
        .unwrap()
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn networks_by_name_from_create_to_rm() {
    require_netsandbox();
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let inst = Installed::new();

    // automatic subnets skip other tools' networks and the node's routes and addresses
    std::fs::write(
        dir.join("10-podman.conflist"),
        r#"{"cniVersion":"0.4.0","name":"podman","plugins":[{"type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"10.210.1.0/24"}]]}}]}"#,
    )
    .unwrap();
    run_ok("ip", &["route", "add", "10.210.2.0/24", "dev", "lo"]);
    let id = ok(net(dir, &["create", "web", "--label", "team=a"]));
    assert_eq!(id.trim().len(), 12, "{id}");
    let web = inspect(dir, "web");
    assert_eq!(web["subnets"], serde_json::json!(["10.210.3.0/24"]), "{web}");
    assert_eq!(web["labels"], serde_json::json!({"team": "a"}));
    assert_eq!(web["createdBy"], "rcni");
    run_ok("ip", &["route", "del", "10.210.2.0/24", "dev", "lo"]);

    // refusals write nothing
    let before = files(dir);
    assert!(err(net(dir, &["create", "web"])).contains("network \"web\" already exists"));
    assert!(err(net(dir, &["create", "other", "--subnet", "10.210.3.128/25"])).contains("overlaps 10.210.3.0/24 (network web"));
    assert!(err(net(dir, &["create", "other", "--subnet", "10.210.1.0/24"])).contains("(network podman"));
    assert!(err(net(dir, &["create", "../x"])).contains("invalid network name"));
    assert!(err(net(dir, &["create", "bad", "-o", "colour=blue"])).contains("unknown option \"colour\""));
    assert_eq!(files(dir), before);

    // Go's cnitool attaches with the file as written; ls, inspect and ps show the attachment
    let a = TestNetns::new("rcni-net-a");
    ok(go_cnitool_cmd(dir, &inst, "add", "web", &a));
    assert!(a.ping("10.210.3.1"), "reaches its gateway");
    let ls: Value = serde_json::from_str(&ok(net(dir, &["ls", "--format", "json"]))).unwrap();
    let row = ls.as_array().unwrap().iter().find(|r| r["name"] == "web").unwrap().clone();
    assert_eq!(
        (row["containers"].clone(), row["driver"].clone(), row["gateways"].clone()),
        (1.into(), "bridge".into(), serde_json::json!(["10.210.3.1"]))
    );
    assert_eq!(ok(net(dir, &["ls", "-q"])), "podman\nweb\n");
    let web = inspect(dir, "web");
    let att = &web["attachments"][0];
    // (Debian's Go cnitool, libcni 1.1, records no netns in its cache)
    let cid = rcni_tests::cnitool_id(&a.path());
    assert_eq!((att["ifname"].clone(), att["containerID"].clone()), ("eth0".into(), Value::String(cid.clone())));
    assert!(att["ips"][0].as_str().unwrap().starts_with("10.210.3."), "{att}");
    let bridge = web["bridge"].as_str().unwrap().to_string();
    assert!(bridge.starts_with("rcni-") && run_ok("ip", &["-br", "link", "show", &bridge]).contains(&bridge));
    let ps = ok(rcni(&["ps", "-n", "web"]));
    assert!(ps.lines().nth(1).is_some_and(|l| l.starts_with(&cid) && l.contains("web") && l.contains("eth0")), "{ps}");

    // rm refuses while attached, naming the attachment; after the DEL it removes everything
    assert!(err(net(dir, &["rm", "web"])).contains(&format!("{cid} eth0")));
    assert!(dir.join("rcni-web.conflist").exists());
    ok(go_cnitool_cmd(dir, &inst, "del", "web", &a));
    ok(net(dir, &["rm", "web"]));
    assert!(!dir.join("rcni-web.conflist").exists());
    assert!(!run(&"ip".to_string(), &["link", "show", &bridge]).status.success(), "bridge removed");
    assert!(!Path::new("/var/lib/cni/networks/web").exists(), "host-local store removed");
    assert!(!run_ok("nft", &["list", "ruleset"]).contains("masq_web"), "masquerade objects removed");
    assert!(err(net(dir, &["rm", "web"])).contains("network \"web\" not found"));

    // --internal: no masquerade, no default route; dual-stack gets both families
    ok(net(dir, &["create", "quiet", "--internal", "--ipv6", "--subnet", "10.210.7.0/24", "--cni-version", "1.1.0"]));
    let q = TestNetns::new("rcni-net-q");
    ok(rcni(&["attach", &q.name, "-n", "quiet", "--conf-dir", dir.to_str().unwrap(), "--ip", "10.210.7.77"]));
    let routes = run_ok("ip", &["-n", &q.name, "route"]);
    assert!(!routes.contains("default"), "{routes}");
    let addrs = run_ok("ip", &["-n", &q.name, "addr", "show", "eth0"]);
    assert!(addrs.contains("inet 10.210.7.77/24") && addrs.contains("inet6 fd"), "--ip honoured, and an IPv6 ULA: {addrs}");
    assert!(!run_ok("nft", &["list", "ruleset"]).contains("id=rcni-net-q if=eth0"), "no masquerade element");
    // rm -f detaches first
    ok(net(dir, &["rm", "-f", "quiet"]));
    assert!(run_ok("ip", &["-n", &q.name, "link"]).lines().all(|l| !l.contains("eth0")), "detached");

    // concurrent creates never share a subnet or a file
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let dir = dir.to_path_buf();
            std::thread::spawn(move || net(&dir, &["create", &format!("par{i}")]))
        })
        .collect();
    for h in handles {
        ok(h.join().unwrap());
    }
    let ls: Value = serde_json::from_str(&ok(net(dir, &["ls", "--json"]))).unwrap();
    let mut subnets: Vec<String> = ls
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["subnets"].as_array().unwrap().clone())
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let n = subnets.len();
    subnets.sort();
    subnets.dedup();
    assert_eq!((n, subnets.len()), (7, 7), "podman's and six new ones, all distinct: {subnets:?}");

    // prune removes rcni's networks without attachments, never another tool's
    let out = ok(net(dir, &["prune", "-f"]));
    assert!(out.starts_with("Deleted Networks:\n") && out.contains("par0\n") && out.contains("par5\n"), "{out}");
    assert_eq!(files(dir), vec!["10-podman.conflist".to_string()]);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn rm_of_a_network_whose_file_another_tool_removed_takes_what_it_left() {
    require_netsandbox();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    ok(net(dir, &["create", "orphan", "--subnet", "10.228.5.0/24"]));
    let ns = TestNetns::new("rcni-orphan");
    let conf = dir.to_str().unwrap();
    ok(rcni(&["attach", &ns.name, "-n", "orphan", "--conf-dir", conf, "-p", "18181:80"]));
    ok(rcni(&["detach", &ns.name, "--conf-dir", conf]));
    let bridge = inspect(dir, "orphan")["bridge"].as_str().unwrap().to_string();
    assert!(rcni_tests::link(None, &bridge).is_some());
    // as `podman network rm` does: the file goes, no plugin runs
    std::fs::remove_file(dir.join("rcni-orphan.conflist")).unwrap();
    // the doctor tells (other tests' state is on this node too: only this network's findings)
    let orphan_findings = || {
        let out = rcni(&["doctor", "--conf-dir", conf, "--format", "json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["what"].as_str().unwrap().starts_with("network orphan has no configuration file"))
            .map(|x| x["fix"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(orphan_findings(), [format!("rcni network rm --conf-dir {conf} orphan")]);
    let out = net(dir, &["rm", "orphan"]);
    let notes = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(ok(out), "orphan\n");
    assert!(notes.contains(&format!("removed bridge {bridge}")) && notes.contains("removed its masquerade objects"), "{notes}");
    assert!(notes.contains("removed /var/lib/cni/networks/orphan"), "{notes}");
    assert!(rcni_tests::link(None, &bridge).is_none(), "the bridge is gone");
    assert!(!Path::new("/var/lib/cni/networks/orphan").exists());
    assert!(orphan_findings().is_empty());
    // nothing left to take: the name is unknown again, and a name that cannot be a network is
    // refused as before
    assert!(err(net(dir, &["rm", "orphan"])).contains("not found"));
    assert!(err(net(dir, &["rm", "../x"])).contains("not found"));
}

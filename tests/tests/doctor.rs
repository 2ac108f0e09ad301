//! `rcni doctor` (netsandbox only): a clean node is healthy; each planted problem is found with
//! its severity and fix; the fixes it gives work; and it changes nothing.
//!
//! The doctor judges the whole node, so each test runs in a node of its own, nested in the
//! suite's sandbox (its own network namespace, /var/lib/cni, /run/cni, /run/netns), where the
//! other tests' attachments, rules and forwarding setting are not there to be found.

use netkit::owner::Owner;
use rcni_tests::{rcni, run, run_ok, Installed, TestNetns};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

/// Runs test `name` again in a node of its own; true there (run the test), false here once
/// that run passed.
fn in_own_node(name: &str) -> bool {
    rcni_tests::own_node::rerun(name, "")
}

/// A config directory with network `docnet` (bridge rcnidoc0 on 10.161.0.0/24, masqueraded,
/// published ports, firewall) of `version`, and rcni's plugins installed.
struct Node {
    conf: tempfile::TempDir,
    plugins: Installed,
}

impl Node {
    fn new(version: &str) -> Node {
        let conf = tempfile::tempdir().unwrap();
        let list = json!({"cniVersion": version, "name": "docnet", "plugins": [
            {"type": "bridge", "bridge": "rcnidoc0", "isGateway": true, "ipMasq": true,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.161.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "firewall"}]});
        std::fs::write(conf.path().join("10-docnet.conflist"), list.to_string()).unwrap();
        Node { conf, plugins: Installed::new() }
    }

    fn dir(&self) -> &str {
        self.conf.path().to_str().unwrap()
    }

    fn file(&self, name: &str) -> String {
        self.conf.path().join(name).to_str().unwrap().to_string()
    }

    fn write(&self, name: &str, content: &str) -> String {
        let p = self.file(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// `rcni doctor --format json`, with the exit code checked against the summary.
    fn doctor(&self, cni_path: &str) -> (i32, Value) {
        let out = rcni(&["doctor", "--conf-dir", self.dir(), "--cni-path", cni_path, "--format", "json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("doctor printed no JSON ({e}): {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
        });
        let code = out.status.code().unwrap();
        let s = &v["summary"];
        let want = if s["errors"].as_u64() > Some(0) {
            2
        } else if s["warnings"].as_u64() > Some(0) {
            1
        } else {
            0
        };
        assert_eq!(code, want, "exit code and summary disagree: {v:#}");
        (code, v)
    }

    fn path(&self) -> String {
        self.plugins.dir.path().to_str().unwrap().to_string()
    }

    fn attach(&self, ns: &str, extra: &[&str]) {
        let mut args = vec!["attach", ns, "--conf-dir", self.dir(), "--cni-path", self.plugins.dir.path().to_str().unwrap()];
        args.extend(extra);
        let out = rcni(&args);
        assert!(out.status.success(), "attach {ns}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// The one finding of `check` whose text contains `what`.
fn finding<'a>(report: &'a Value, check: &str, what: &str) -> &'a Value {
    let all: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == check && f["what"].as_str().unwrap().contains(what))
        .collect();
    assert_eq!(all.len(), 1, "want one {check} finding with {what:?} in {report:#}");
    all[0]
}

fn findings(report: &Value) -> &Vec<Value> {
    report["findings"].as_array().unwrap()
}

/// A lease file of `network` for `holder`, written as host-local does (0600), `age` old.
fn plant_lease(network: &str, ip: &str, holder: &str, age: Duration) -> String {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = format!("/var/lib/cni/networks/{network}/{ip}");
    let mut f = std::fs::File::options().write(true).create_new(true).mode(0o600).open(&path).unwrap();
    f.write_all(holder.as_bytes()).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
    path
}

/// Everything the doctor could change, a line each: the state directories (names, modes,
/// sizes, times), the config directory, nftables, links (without their timers).
fn node_state(conf: &str) -> Vec<String> {
    let files = run_ok("find", &["/var/lib/cni", "/run/cni", "/run/netns", conf, "-printf", "%p %m %s %T@\n"]);
    let mut lines: Vec<String> = files.lines().map(String::from).collect();
    lines.sort();
    lines.extend(run_ok("nft", &["list", "ruleset"]).lines().map(String::from));
    lines.extend(run_ok("ip", &["-o", "link"]).lines().map(String::from));
    lines
}

/// Runs a fix the doctor gave as a shell command.
fn apply(fix: &Value) {
    let fix = fix.as_str().unwrap();
    let out = run("sh", &["-c", fix]);
    assert!(out.status.success(), "{fix}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn clean_node_is_healthy_then_vanished_namespaces_and_leaked_leases_are_found() {
    if !in_own_node("clean_node_is_healthy_then_vanished_namespaces_and_leaked_leases_are_found") {
        return;
    }
    let node = Node::new("1.1.0");
    let (code, report) = node.doctor(&node.path());
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(report["summary"]["status"], "healthy");

    // two containers, a published port: still nothing to say
    let live = TestNetns::new("doc-live");
    let gone = TestNetns::new("doc-gone");
    node.attach(&live.name, &["-p", "9161:80"]);
    node.attach(&gone.name, &[]);
    let (code, report) = node.doctor(&node.path());
    assert_eq!((code, findings(&report).len()), (0, 0), "{report:#}");

    // the namespace vanishes without DEL
    run_ok("ip", &["netns", "del", "doc-gone"]);
    let (code, report) = node.doctor(&node.path());
    assert_eq!(code, 1, "{report:#}");
    let f = finding(&report, "attachments", "container doc-gone: its network namespace /run/netns/doc-gone is gone");
    assert_eq!(f["severity"], "warning");
    assert!(f["what"].as_str().unwrap().contains("cni-loopback/lo and docnet/eth0"), "{f}");
    assert_eq!(f["fix"], format!("rcni gc --conf-dir {}", node.dir()));
    assert_eq!(findings(&report).len(), 1, "its lease and rules are its cached attachment's: {report:#}");

    // a lease no cache knows of (a young one may be an ADD under way: not reported)
    plant_lease("docnet", "10.161.0.200", "ghost\r\neth0", Duration::from_secs(300));
    plant_lease("docnet", "10.161.0.201", "adding\r\neth0", Duration::from_secs(5));
    let (code, report) = node.doctor(&node.path());
    assert_eq!(code, 1, "{report:#}");
    let f = finding(&report, "leases", "network docnet: 1 lease no cached attachment holds: 10.161.0.200 (ghost/eth0)");
    assert_eq!((&f["severity"], &f["fix"]), (&json!("warning"), &json!(format!("rcni gc --conf-dir {}", node.dir()))));

    // it changes nothing
    let before = node_state(node.dir());
    let out = rcni(&["doctor", "--conf-dir", node.dir(), "--cni-path", &node.path()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("warning  leases") && text.contains("fix: rcni gc --conf-dir") && text.ends_with("0 errors, 2 warnings, 0 notes\n"),
        "{text}"
    );
    let after = node_state(node.dir());
    let changed: Vec<&String> = after.iter().filter(|l| !before.contains(l)).chain(before.iter().filter(|l| !after.contains(l))).collect();
    assert!(changed.is_empty(), "doctor changed the node: {changed:#?}");

    // the fix works (the attachment is younger than gc's grace period, hence 0)
    let out = rcni(&["gc", "--conf-dir", node.dir(), "--grace-period", "0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // (gc's GC released the young lease too: no marker protected it)
    let _ = std::fs::remove_file("/var/lib/cni/networks/docnet/10.161.0.201");
    let (code, report) = node.doctor(&node.path());
    assert_eq!((code, findings(&report).len()), (0, 0), "{report:#}");
    assert!(live.ping("10.161.0.1"));
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn config_problems_are_errors() {
    if !in_own_node("config_problems_are_errors") {
        return;
    }
    let node = Node::new("1.0.0");
    // (this node's forwarding is off until an attach; docnet has none here)
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
    let (code, report) = node.doctor(&node.path());
    assert_eq!((code, findings(&report).len()), (0, 0), "{report:#}");

    // a plugin nowhere on the path
    let missing = node.write("20-docmiss.conflist", r#"{"cniVersion": "1.0.0", "name": "docmiss", "plugins": [{"type": "doc-nonesuch"}]}"#);
    // a plugin that speaks 0.3.x only
    let old = tempfile::tempdir().unwrap();
    let script = old.path().join("doc-old");
    std::fs::write(
        &script,
        "#!/bin/sh\nif [ \"$CNI_COMMAND\" = VERSION ]; then echo '{\"cniVersion\":\"0.3.1\",\"supportedVersions\":[\"0.3.0\",\"0.3.1\"]}'; exit 0; fi\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let old_list = node.write("30-docold.conflist", r#"{"cniVersion": "1.0.0", "name": "docold", "plugins": [{"type": "doc-old"}]}"#);
    // a subnet inside docnet's
    let over = node.write(
        "40-docover.conflist",
        &json!({"cniVersion": "1.0.0", "name": "docover", "plugins": [{"type": "bridge", "bridge": "rcnidoc1",
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.161.0.128/25"}]]}}]})
        .to_string(),
    );
    // a file that is no JSON, and one whose range lies outside its subnet
    let broken = node.write("50-docbroken.conflist", r#"{"cniVersion": "1.0.0", "name": "docbroken", "plugins": ["#);
    let bad_range = node.write(
        "60-docrange.conflist",
        &json!({"cniVersion": "1.0.0", "name": "docrange", "plugins": [{"type": "bridge", "bridge": "rcnidoc2",
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.162.0.0/24", "rangeStart": "10.163.0.5"}]]}}]})
        .to_string(),
    );
    // a config any user may change
    std::fs::set_permissions(node.file("10-docnet.conflist"), std::fs::Permissions::from_mode(0o666)).unwrap();

    let path = format!("{}:{}", node.path(), old.path().display());
    let (code, report) = node.doctor(&path);
    assert_eq!(code, 2, "{report:#}");
    let errors = [
        finding(&report, "plugins", &format!("network docmiss ({missing}): plugin doc-nonesuch is not on the plugin path ({path})")),
        finding(
            &report,
            "plugins",
            &format!(
                "network docold ({old_list}): plugin doc-old ({}) does not support the network's cniVersion 1.0.0 (it supports 0.3.0, 0.3.1)",
                script.display()
            ),
        ),
        finding(&report, "subnets", "networks docnet (") ,
        finding(&report, "config", &format!("{broken} does not load: ")),
        finding(&report, "config", &format!("network docrange ({bad_range}): bridge's host-local IPAM: invalid range set 0")),
        finding(&report, "permissions", &format!("{} (mode 0666, at most 0644) is writable by every user", node.file("10-docnet.conflist"))),
    ];
    for e in &errors {
        assert_eq!(e["severity"], "error", "{e}");
    }
    assert!(errors[0]["fix"].as_str().unwrap().starts_with(&format!("install the doc-nonesuch plugin into {}", node.path())));
    assert_eq!(
        errors[1]["fix"],
        format!("install a doc-old that supports 1.0.0, or set the list's cniVersion in {old_list} to 0.3.1 (every plugin of it supports 0.3.0, 0.3.1)")
    );
    assert!(
        errors[2]["what"].as_str().unwrap().ends_with(&format!("and docover ({over}) overlap: 10.161.0.0/24 and 10.161.0.128/25")),
        "{}",
        errors[2]
    );
    assert_eq!(errors[5]["fix"], format!("chmod go-w {}", node.file("10-docnet.conflist")));
    assert_eq!(findings(&report).len(), errors.len(), "nothing else: {report:#}");

    // without the plants: healthy again
    for f in [&missing, &old_list, &over, &broken, &bad_range] {
        std::fs::remove_file(f).unwrap();
    }
    apply(&errors[5]["fix"]);
    assert_eq!(node.doctor(&path).0, 0);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn kernel_leftovers_and_forwarding_are_found_and_their_fixes_work() {
    if !in_own_node("kernel_leftovers_and_forwarding_are_found_and_their_fixes_work") {
        return;
    }
    // 1.0.0: rcni gc sends no GC to its plugins, so the fixes are commands of their own
    let node = Node::new("1.0.0");
    let ns = TestNetns::new("doc-k1");
    node.attach(&ns.name, &["-p", "9162:80"]);
    let (code, report) = node.doctor(&node.path());
    assert_eq!((code, findings(&report).len()), (0, 0), "{report:#}");

    // forwarding turned off under a gateway network's containers
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "0").unwrap();
    // what a crashed attachment "ghost" left: a lease, a masquerade element, a published port,
    // an IFB; and a veth on the bridge that nothing knows of
    let ghost = Owner::new("docnet", "ghost", "eth0");
    let lease = plant_lease("docnet", "10.161.0.250", "ghost\r\neth0", Duration::from_secs(300));
    run_ok("nft", &["add", "element", "inet", "rcni", "m4_docnet", &format!("{{ 10.161.0.250 comment \"{}\" }}", ghost.comment())]);
    let ports = run_ok("nft", &["list", "table", "inet", "rcni_hostport"]);
    let map =
        ports.split_whitespace().find(|w| w.starts_with("w4_docnet_")).unwrap_or_else(|| panic!("no port map in {ports}")).to_string();
    run_ok(
        "nft",
        &[
            "add",
            "element",
            "inet",
            "rcni_hostport",
            &map,
            &format!("{{ tcp . 9163 comment \"{}\" : 10.161.0.250 . 80 }}", ghost.comment()),
        ],
    );
    run_ok("ip", &["link", "add", "bwpdocghost", "type", "ifb"]);
    run_ok("ip", &["link", "set", "bwpdocghost", "alias", &ghost.comment()]);
    run_ok("ip", &["link", "add", "docstray", "type", "veth", "peer", "name", "docstray1"]);
    run_ok("ip", &["link", "set", "docstray", "master", "rcnidoc0"]);

    let (code, report) = node.doctor(&node.path());
    assert_eq!(code, 2, "{report:#}");
    let fwd = finding(
        &report,
        "forwarding",
        "IPv4 forwarding is off (net.ipv4.ip_forward=0): containers of network docnet cannot reach beyond the node",
    );
    assert_eq!((&fwd["severity"], &fwd["fix"]), (&json!("error"), &json!("sysctl -w net.ipv4.ip_forward=1")));
    let leases = finding(&report, "leases", "network docnet: 1 lease no cached attachment holds: 10.161.0.250 (ghost/eth0)");
    assert_eq!(leases["fix"], format!("rm {lease}"));
    let masq =
        finding(&report, "nftables-objects", "network docnet: 1 nftables object in inet rcni of attachments no cache holds (ghost/eth0)");
    assert_eq!(masq["fix"], "nft delete element inet rcni m4_docnet '{ 10.161.0.250 }'");
    let port = finding(
        &report,
        "nftables-objects",
        "network docnet: 1 nftables object in inet rcni_hostport of attachments no cache holds (ghost/eth0)",
    );
    assert_eq!(port["fix"], format!("nft delete element inet rcni_hostport {map} '{{ tcp . 9163 }}'"));
    let ifb = finding(&report, "ifbs", "IFB bwpdocghost (bandwidth's, network docnet, of ghost/eth0) belongs to no cached attachment");
    assert_eq!(ifb["fix"], "ip link delete bwpdocghost");
    let veth = finding(&report, "veths", "veth docstray on bridge rcnidoc0 (network docnet) belongs to no cached attachment");
    assert_eq!(veth["fix"], "ip link delete docstray");
    let all = [fwd, leases, masq, port, ifb, veth];
    for f in &all[1..] {
        assert_eq!(f["severity"], "warning", "{f}");
    }
    assert_eq!(findings(&report).len(), all.len(), "nothing else: {report:#}");

    // each fix as given
    for f in &all {
        apply(&f["fix"]);
    }
    let (code, report) = node.doctor(&node.path());
    assert_eq!((code, findings(&report).len()), (0, 0), "{report:#}");
    assert!(!run_ok("nft", &["list", "ruleset"]).contains("id=ghost"));
    assert!(ns.ping("10.161.0.1"), "the live container is untouched");
}

//! Interop with the Go reference: Debian's containernetworking-plugins driven by our cnitool,
//! and Go's cnitool (libcni 1.1.2) and ours each deleting what the other added, through each
//! other's result cache. Runs inside the netsandbox only.

mod common;

use cni_runtime::{Cache, RuntimeConf};
use cni_types::CniResult;
use common::Fixture;
use rcni_tests::{go_cnitool, rcni_bin, require_netsandbox, run, run_ok, TestNetns};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DEBIAN_PLUGINS: &str = "/usr/lib/cni";

struct Env {
    fx: Fixture,
    cnitool: PathBuf,
}

impl Env {
    fn new() -> Self {
        require_netsandbox();
        assert!(Path::new(DEBIAN_PLUGINS).join("bridge").exists(), "Debian's containernetworking-plugins are not installed (scripts/deps)");
        let fx = Fixture::new();
        let inst = fx.path("inst");
        run_ok(rcni_bin().to_str().unwrap(), &["install", "--dir", inst.to_str().unwrap()]);
        std::fs::create_dir(fx.path("net.d")).unwrap();
        // forwarding on the sandbox "node", as on any container host
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
        Env { cnitool: inst.join("cnitool"), fx }
    }

    fn conflist(&self, v: Value) {
        let name = v["name"].as_str().unwrap().to_string();
        // written with indentation, like a hand-made file: the cache must keep these bytes
        std::fs::write(self.fx.path("net.d").join(format!("{name}.conflist")), serde_json::to_string_pretty(&v).unwrap()).unwrap();
    }

    fn tool(&self, tool: &Path, args: &[&str], cap_args: Option<&str>) -> Output {
        let mut c = Command::new(tool);
        c.args(args)
            .env("NETCONFPATH", self.fx.path("net.d"))
            .env("CNI_PATH", format!("{}:{DEBIAN_PLUGINS}", self.fx.bin().display()))
            .env_remove("CNI_ARGS")
            .env_remove("CNI_IFNAME")
            .env_remove("CAP_ARGS");
        if let Some(cap) = cap_args {
            c.env("CAP_ARGS", cap);
        }
        c.output().unwrap()
    }

    fn ours(&self, args: &[&str], cap_args: Option<&str>) -> Output {
        self.tool(&self.cnitool.clone(), args, cap_args)
    }

    fn go(&self, args: &[&str], cap_args: Option<&str>) -> Output {
        self.tool(&go_cnitool(), args, cap_args)
    }
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "exit {:?}: {}{}", o.status.code(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn container_ip(result: &str) -> String {
    let r = CniResult::from_bytes(result.as_bytes()).unwrap().to_current().unwrap();
    r.ips[0].address.addr().to_string()
}

fn lease_exists(net: &str, ip: &str) -> bool {
    Path::new("/var/lib/cni/networks").join(net).join(ip).exists()
}

fn nat_rules() -> String {
    run_ok("iptables-save", &["-t", "nat"])
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn our_cnitool_drives_the_reference_chain() {
    let env = Env::new();
    let net = "rcni-ref";
    env.conflist(json!({
        "cniVersion": "1.0.0", "name": net,
        "plugins": [
            {"type": "bridge", "bridge": "rcni-ref0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.211.0.0/24", "gateway": "10.211.0.1"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
            {"type": "firewall", "backend": "iptables"},
            {"type": "tuning", "sysctl": {"net.core.somaxconn": "512"}}
        ]
    }));
    let a = TestNetns::new("rcni-ref-a");
    let b = TestNetns::new("rcni-ref-b");
    let cap = r#"{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}"#;

    let ra = ok(env.ours(&["add", net, &a.path()], Some(cap)));
    let rb = ok(env.ours(&["add", net, &b.path()], None));
    let (ipa, ipb) = (container_ip(&ra), container_ip(&rb));
    assert!(ipa.starts_with("10.211.0.") && ipb.starts_with("10.211.0.") && ipa != ipb);
    assert!(a.ping(&ipb), "a cannot reach b");
    assert!(b.ping(&ipa), "b cannot reach a");
    assert!(a.ping("10.211.0.1"), "a cannot reach its gateway");
    assert_eq!(String::from_utf8(a.exec(&["cat", "/proc/sys/net/core/somaxconn"]).stdout).unwrap().trim(), "512", "tuning ran");
    assert!(lease_exists(net, &ipa) && lease_exists(net, &ipb));
    let rules = nat_rules();
    assert!(rules.contains("--dport 8080 -j DNAT --to-destination"), "portmap got runtimeConfig:\n{rules}");
    assert!(rules.contains(&format!("id: \\\"{}\\\"", rcni_cid(&a.path()))), "masquerade for a:\n{rules}");

    // CHECK: fine without port mappings; with them Debian's portmap 1.1.1 fails (known quirk)
    ok(env.ours(&["check", net, &b.path()], None));
    let chk = env.ours(&["check", net, &a.path()], Some(cap));
    assert!(!chk.status.success());
    assert!(String::from_utf8_lossy(&chk.stderr).contains("could not check ipv6 dnat"), "{}", String::from_utf8_lossy(&chk.stderr));

    ok(env.ours(&["del", net, &a.path()], Some(cap)));
    ok(env.ours(&["del", net, &b.path()], None));
    ok(env.ours(&["del", net, &b.path()], None));
    assert!(!lease_exists(net, &ipa) && !lease_exists(net, &ipb), "leases released");
    let rules = nat_rules();
    assert!(!rules.contains("--dport 8080"), "portmap rules removed:\n{rules}");
    assert!(!rules.contains(&rcni_cid(&a.path())), "masquerade removed:\n{rules}");
    assert!(!a.exec(&["ip", "link", "show", "eth0"]).status.success(), "container link gone");
    assert!(std::fs::read_dir("/var/lib/cni/results")
        .map(|d| d.filter_map(|e| e.ok()).all(|e| !e.file_name().to_string_lossy().starts_with(net)))
        .unwrap_or(true));
}

fn rcni_cid(netns: &str) -> String {
    let out = run("sh", &["-c", &format!("printf %s '{netns}' | sha512sum | cut -c1-20")]);
    format!("cnitool-{}", String::from_utf8(out.stdout).unwrap().trim())
}

/// bridge + host-local from Debian, then our noop recording what each DEL receives.
fn cross_env(net: &str, bridge: &str, subnet: &str) -> Env {
    let env = Env::new();
    env.fx.plugin("noop", json!({"reportResult": "PASSTHROUGH"}));
    env.conflist(json!({
        "cniVersion": "1.0.0", "name": net,
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": true,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]], "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "noop", "some": "thing"}
        ]
    }));
    env
}

fn cache_path(net: &str, netns: &str) -> PathBuf {
    Path::new("/var/lib/cni/results").join(format!("{net}-{}-eth0", rcni_cid(netns)))
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn go_cnitool_deletes_what_ours_added() {
    let net = "rcni-x1";
    let env = cross_env(net, "rcni-x1br", "10.212.0.0/24");
    let c = TestNetns::new("rcni-x1-c");
    let added = ok(env.ours(&["add", net, &c.path()], None));
    let ip = container_ip(&added);
    assert!(lease_exists(net, &ip));
    let cache = cache_path(net, &c.path());
    let ours: Value = serde_json::from_slice(&std::fs::read(&cache).unwrap()).unwrap();
    assert_eq!(ours["netns"], c.path().as_str(), "libcni 1.3 field written");

    ok(env.go(&["del", net, &c.path()], None));
    let del = env.fx.calls("noop").into_iter().find(|x| x["command"] == "DEL").expect("Go ran our noop's DEL");
    let added_result = CniResult::from_bytes(added.as_bytes()).unwrap();
    let prev = CniResult::from_bytes(del["stdin"]["prevResult"].to_string().as_bytes()).unwrap();
    assert_eq!(prev, added_result, "Go's cnitool read our cache and passed it as prevResult");
    assert!(!cache.exists(), "Go removed our cache file");
    assert!(!lease_exists(net, &ip), "lease released by Go's DEL");
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn ours_deletes_what_go_cnitool_added_and_writes_the_same_bytes() {
    let net = "rcni-x2";
    let env = cross_env(net, "rcni-x2br", "10.213.0.0/24");
    let c = TestNetns::new("rcni-x2-c");
    let added = ok(env.go(&["add", net, &c.path()], None));
    let ip = container_ip(&added);
    let cache = cache_path(net, &c.path());
    let go_bytes = std::fs::read(&cache).unwrap();

    // The file Go wrote is, byte for byte, what we write for the same attachment — except the
    // two changes of libcni 1.2+: an empty "dns" is no longer written for 1.x results, and the
    // "netns" key exists.
    let info: Value = serde_json::from_slice(&go_bytes).unwrap();
    let result = CniResult::from_bytes(info["result"].to_string().as_bytes()).unwrap();
    let config = std::fs::read(env.fx.path("net.d").join(format!("{net}.conflist"))).unwrap();
    let rt = RuntimeConf { container_id: rcni_cid(&c.path()), ifname: "eth0".into(), ..Default::default() };
    let ours = Cache::encode(&result, &config, net, &rt);
    let go_text = String::from_utf8(go_bytes).unwrap();
    assert!(go_text.contains(r#""dns":{},"#), "libcni 1.1.2 writes an empty dns: {go_text}");
    assert_eq!(String::from_utf8(ours).unwrap(), go_text.replacen(r#""dns":{},"#, "", 1));

    ok(env.ours(&["del", net, &c.path()], None));
    let del = env.fx.calls("noop").into_iter().find(|x| x["command"] == "DEL").expect("our DEL ran");
    let prev = CniResult::from_bytes(del["stdin"]["prevResult"].to_string().as_bytes()).unwrap();
    assert_eq!(prev, CniResult::from_bytes(added.as_bytes()).unwrap(), "we read Go's cache");
    assert!(!cache.exists());
    assert!(!lease_exists(net, &ip));
    assert!(!c.exec(&["ip", "link", "show", "eth0"]).status.success());
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn go_cnitool_drives_our_plugins() {
    let env = Env::new();
    let net = "rcni-go-ours";
    env.conflist(json!({
        "cniVersion": "1.0.0", "name": net,
        "plugins": [{"type": "bridge", "bridge": "rcni-go0", "isGateway": true, "ipMasq": true,
                     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.214.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}}]
    }));
    let a = TestNetns::new("rcni-go-a");
    let b = TestNetns::new("rcni-go-b");
    // only our plugins on the path
    let ours = |args: &[&str]| {
        let o = Command::new(go_cnitool())
            .args(args)
            .env("NETCONFPATH", env.fx.path("net.d"))
            .env("CNI_PATH", env.cnitool.parent().unwrap())
            .env_remove("CNI_ARGS")
            .env_remove("CAP_ARGS")
            .env_remove("CNI_IFNAME")
            .output()
            .unwrap();
        ok(o)
    };
    let ra = ours(&["add", net, &a.path()]);
    ours(&["add", net, &b.path()]);
    assert!(a.ping(&container_ip_of(&ra, 1)), "ping between containers set up by Go's cnitool through our plugins");
    ours(&["check", net, &a.path()]);
    ours(&["del", net, &a.path()]);
    ours(&["del", net, &b.path()]);
    ours(&["del", net, &b.path()]);
    assert!(!lease_exists(net, &container_ip(&ra)));
}

/// The address one above the result's (the next container on a fresh range).
fn container_ip_of(result: &str, plus: u8) -> String {
    let ip: std::net::Ipv4Addr = container_ip(result).parse().unwrap();
    let mut o = ip.octets();
    o[3] += plus;
    std::net::Ipv4Addr::from(o).to_string()
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn go_cnitool_loads_a_conflist_the_runtime_wrote() {
    use cni_runtime::conf;
    let env = Env::new();
    env.fx.plugin("noop", Value::Null);
    let net = "rcni-written";
    let plugin = json!({"type": "noop", "some": {"nested": [1, 2.5, "a<b&c"]}, "capabilities": {"portMappings": true}});
    let list = cni_types::NetworkConfigList::from_bytes(
        json!({"cniVersion": "1.0.0", "cniVersions": ["1.0.0", "1.1.0"], "name": net, "args": {"podman_labels": {"team": "x"}}, "plugins": [plugin]})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    conf::write_conflist(&env.fx.path("net.d"), "10-written.conflist", &list, conf::Placement::CreateNew).unwrap();
    let c = TestNetns::new("rcni-written-c");

    // Go's libcni 1.1.2 knows no cniVersions: it runs the file's cniVersion, which was kept
    ok(env.go(&["add", net, &c.path()], None));
    ok(env.go(&["del", net, &c.path()], None));
    let calls = env.fx.calls("noop");
    assert_eq!(common::commands(&calls), ["ADD", "DEL"]);
    let stdin = &calls[0]["stdin"];
    assert_eq!((&stdin["name"], &stdin["cniVersion"], &stdin["some"]), (&json!(net), &json!("1.0.0"), &plugin["some"]), "{stdin}");

    // ours picks 1.1.0 from cniVersions
    env.fx.clear_calls("noop");
    ok(env.ours(&["add", net, &c.path()], None));
    ok(env.ours(&["del", net, &c.path()], None));
    let calls = env.fx.calls("noop");
    assert_eq!((&calls[0]["stdin"]["cniVersion"], &calls[0]["stdin"]["some"]), (&json!("1.1.0"), &plugin["some"]));
}

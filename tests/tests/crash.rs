//! Crash safety (netsandbox only): the runtime and its plugins are SIGKILLed at many points of
//! an ADD of the full default chain; afterwards a DEL, or (the namespace gone too) `rcni gc`,
//! leaves nothing of that attachment behind.

use rcni_tests::{cnitool_id, rcni_bin, require_netsandbox, run_ok, Installed, TestNetns};
use serde_json::json;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

const SIGKILL: i32 = 9;

/// The ports of the test's bridge, one line each (none before the first ADD made the bridge).
fn bridge_ports() -> String {
    String::from_utf8_lossy(&rcni_tests::run("ip", &["-o", "link", "show", "master", "rcnicrash"]).stdout).into_owned()
}

/// Every place the attachment of container `id` could have left something, as a list of
/// findings (empty: nothing left).
fn leftovers(id: &str, data: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let net_dir = data.join("crashnet");
    for e in std::fs::read_dir(&net_dir).into_iter().flatten() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name == "lock" || name.starts_with("last_reserved_ip") {
            continue;
        }
        if name == ".rcni-by-id" {
            // rcni's lease index: the directory stays, no attachment's entries may
            for a in std::fs::read_dir(net_dir.join(&name)).unwrap() {
                found.push(format!("lease index entry {:?}", a.unwrap().file_name()));
            }
            continue;
        }
        let body = std::fs::read_to_string(net_dir.join(&name)).unwrap_or_default();
        // leases of other iterations are gone too: every iteration ends with a DEL
        found.push(format!("host-local file {name}: {body:?}"));
    }
    for dir in ["/var/lib/cni/results", "/run/cni/tuning"] {
        for e in std::fs::read_dir(dir).into_iter().flatten() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if name.contains(id) {
                found.push(format!("{dir}/{name}"));
            }
        }
    }
    let ruleset = run_ok("nft", &["list", "ruleset"]);
    if ruleset.contains(&format!("id={id}")) {
        found.push(format!("nft objects of {id}"));
    }
    let ports = bridge_ports();
    if !ports.trim().is_empty() {
        found.push(format!("bridge ports: {ports}"));
    }
    found
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn sigkill_during_add_then_del_leaves_nothing() {
    require_netsandbox();
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
    let inst = Installed::new();
    let conf = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let list = json!({"cniVersion": "1.1.0", "name": "crashnet", "plugins": [
        {"type": "bridge", "bridge": "rcnicrash", "isGateway": true, "ipMasq": true, "hairpinMode": true,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.247.0.0/16"}]], "dataDir": data.path()}},
        {"type": "portmap", "capabilities": {"portMappings": true}},
        {"type": "firewall"},
        {"type": "tuning", "sysctl": {"net.core.somaxconn": "512"}}]});
    std::fs::write(conf.path().join("crashnet.conflist"), list.to_string()).unwrap();
    let cnitool = |verb: &str, ns: &TestNetns| {
        let mut c = Command::new(inst.path("cnitool"));
        c.args([verb, "crashnet", &ns.path()])
            .env("NETCONFPATH", conf.path())
            .env("CNI_PATH", inst.dir.path())
            .env("CAP_ARGS", json!({"portMappings": [{"hostPort": 9501, "containerPort": 80, "protocol": "tcp"}]}).to_string())
            .env_remove("CNI_ARGS")
            .env_remove("CNI_IFNAME")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    // how long a whole ADD takes here (the first one also makes the bridge and tables; the
    // fastest of the next three counts); the kill points are spread evenly over it
    // (one at a time: each publishes host port 9501, which portmap gives no second container)
    let first = TestNetns::new("rcni-crash-first");
    assert!(cnitool("add", &first).status().unwrap().success(), "a plain ADD works");
    assert!(cnitool("del", &first).status().unwrap().success());
    let probes: Vec<TestNetns> = (0..3).map(|k| TestNetns::new(&format!("rcni-crash-probe{k}"))).collect();
    let whole = probes
        .iter()
        .map(|ns| {
            let started = std::time::Instant::now();
            assert!(cnitool("add", ns).status().unwrap().success());
            let took = started.elapsed();
            assert!(cnitool("del", ns).status().unwrap().success());
            took
        })
        .min()
        .unwrap();
    let mut whole = whole;
    let mut killed = 0;
    for i in 0..80u32 {
        let ns = TestNetns::new(&format!("rcni-crash-{i}"));
        let id = cnitool_id(&ns.path());
        let started = std::time::Instant::now();
        let mut child = cnitool("add", &ns).spawn().unwrap();
        std::thread::sleep(whole * i / 80);
        let _ = child.kill(); // SIGKILL: cnitool and the plugins it runs in-process die together
        let status = child.wait().unwrap();
        if status.signal() == Some(SIGKILL) {
            killed += 1;
        } else {
            // it finished first: ADDs are quicker than measured, spread the rest over less
            whole = whole.min(started.elapsed());
        }
        if i % 2 == 0 {
            let out = cnitool("del", &ns).stdout(Stdio::piped()).output().unwrap();
            assert!(out.status.success(), "iteration {i}: DEL after the kill failed: {}", String::from_utf8_lossy(&out.stdout));
        } else {
            // the namespace goes too, and nobody calls DEL: `rcni gc` reclaims from the cache
            // (when the ADD got as far as writing it) and through the plugins' GC
            run_ok("ip", &["netns", "del", &ns.name]);
            let out = Command::new(rcni_bin())
                .args(["gc", "--conf-dir", conf.path().to_str().unwrap(), "--grace-period", "0", "-n", "crashnet"])
                .env("CNI_PATH", inst.dir.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "iteration {i}: rcni gc failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            // the kernel dismantles a deleted namespace (and with it the veth pair) in the
            // background: give it a moment
            for _ in 0..30 {
                if bridge_ports().trim().is_empty() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        let left = leftovers(&id, data.path());
        assert!(left.is_empty(), "iteration {i} (killed: {:?}): left behind {left:?}", status.signal());
    }
    eprintln!("{killed} of 80 ADDs were killed midway (a whole ADD: {whole:?})");
    assert!(killed >= 40, "the kill landed during ADD only {killed} times: the test is not testing");
}

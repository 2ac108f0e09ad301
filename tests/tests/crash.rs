//! Crash safety (netsandbox only): the runtime and its plugins are SIGKILLed at many points of
//! an ADD of the full default chain; afterwards a DEL, or (the namespace gone too) `rcni gc`,
//! leaves nothing of that attachment behind. Two ways of choosing the points: 80 delays spread
//! over a measured ADD (they also land between kernel requests: file writes, the cache), and
//! every kill point of netkit's test hook (just before and after each netlink request).

mod common;

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

/// SIGKILL at every netlink kill point of a full-chain ADD (bridge + host-local → portmap →
/// firewall → tuning → bandwidth, dual-stack): `RCNI_TEST_KILL_AT=N` (netkit's one test hook)
/// makes cnitool's process group, in which its plugins run, kill itself just before or just after
/// its ⌈N/2⌉th netlink request, for N = 1, 2, … until an ADD gets through unkilled. Two walks:
/// the ADD on a node whose bridge and tables exist (the usual case), and the first ADD on a fresh
/// node (a network namespace of its own per point: the ADD makes the bridge, the tables, chains
/// and sets as well). After each kill, a DEL (even N) or, the container's namespace deleted too,
/// `rcni gc` (odd N) leaves nothing of the attachment. In the first walk every fifth point runs
/// the plugins as processes (`RCNI_IN_PROCESS=0`), so the kill takes a plugin and cnitool
/// together (those points count that plugin's own requests). Reports the points hit: at least
/// 100 in all.
#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn sigkill_at_every_netlink_point_of_a_full_chain_add() {
    let mut c = common::chain::Chain::new("killnet", "rcnikill", &["172.28.90.0/24", "fd28:90::/64"], &[]);
    // the network's bridge and tables exist from here on, as on a node in use
    let first = TestNetns::new("rcni-kill-first");
    c.add(&first.path(), Some(47990)).unwrap();
    c.del(&first.path()).unwrap();
    let started = std::time::Instant::now();
    let steady = walk_kill_points(&mut c, false);
    let fresh = walk_kill_points(&mut c, true);
    eprintln!(
        "SIGKILL at {} kill points of a full-chain ADD in {:.1?}, nothing left after any: {} of the {} points of an ADD on a node in use \
         (and {} more with the plugins as processes), {} of the {} points of the first ADD on a fresh node",
        steady.in_process + fresh.in_process + steady.separate,
        started.elapsed(),
        steady.in_process,
        steady.points,
        steady.separate,
        fresh.in_process,
        fresh.points
    );
    assert!(
        steady.in_process + fresh.in_process >= 100,
        "only {} kill points: the test is not testing",
        steady.in_process + fresh.in_process
    );
    assert_eq!((steady.in_process, fresh.in_process), (steady.points, fresh.points), "every point killed");
    let _ = rcni_tests::run("ip", &["link", "del", "rcnikill"]);
}

struct Walk {
    /// Kill points of the in-process ADD (it completed at the next one).
    points: u32,
    in_process: u32,
    separate: u32,
}

fn walk_kill_points(c: &mut common::chain::Chain, fresh_node: bool) -> Walk {
    let mut w = Walk { points: 0, in_process: 0, separate: 0 };
    for n in 1..=600u32 {
        if !fresh_node && n.is_multiple_of(5) && kill_at(c, n, fresh_node, true) {
            w.separate += 1;
        }
        if !kill_at(c, n, fresh_node, false) {
            w.points = n - 1;
            break;
        }
        w.in_process += 1;
    }
    c.node = None;
    assert!(w.points > 0, "an ADD got through unkilled within 600 points");
    w
}

/// One ADD killed at point `n` (on a fresh node; with the plugins as processes), then DEL or
/// `rcni gc`, then the check that nothing is left; whether the kill happened (else the ADD
/// completed, and was DELeted).
fn kill_at(c: &mut common::chain::Chain, n: u32, fresh_node: bool, separate: bool) -> bool {
    use std::os::unix::process::CommandExt;
    let tag = match (fresh_node, separate) {
        (true, _) => "kn",
        (false, false) => "ku",
        (false, true) => "kp",
    };
    let node = fresh_node.then(|| TestNetns::new(&format!("rcni-{tag}-node{n}")));
    c.node = node.as_ref().map(|n| n.name.clone());
    let ns = TestNetns::new(&format!("rcni-{tag}-{n}"));
    let mut add = c.cnitool("add", &ns.path(), Some(47990));
    add.env("RCNI_TEST_KILL_AT", n.to_string()).process_group(0).stdout(Stdio::null()).stderr(Stdio::null());
    if separate {
        add.env("RCNI_IN_PROCESS", "0");
    }
    let status = add.status().unwrap();
    let killed = status.signal() == Some(SIGKILL);
    let at = format!("point {n} (fresh node: {fresh_node}, plugins as processes: {separate}, killed: {killed})");
    assert!(killed || status.success(), "{at}: the ADD failed without being killed");
    if n.is_multiple_of(2) || !killed {
        c.del(&ns.path()).unwrap_or_else(|e| panic!("{at}: DEL failed: {e}"));
    } else {
        run_ok("ip", &["netns", "del", &ns.name]);
        let out = c.rcni_gc(0);
        assert!(out.status.success(), "{at}: rcni gc failed: {}", common::chain::text(&out));
        c.await_no_ports();
    }
    let left = c.leftovers();
    assert!(left.is_empty(), "{at}: left behind {left:#?}");
    c.node = None;
    killed
}

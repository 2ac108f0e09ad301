//! `rcni node` (netsandbox, in a node of its own): three "node" namespaces on an underlay bridge
//! (10.230.0.1–3/24), etcd 3.4 in a namespace of its own on the same bridge (10.230.0.100), and
//! one `rcni node run --backend host-gw` agent per node. Pods attached on each node with
//! `rcni attach -n rcni-cluster --conf-dir <node's dir>` ping the pods on the other two; the
//! agents get three distinct subnets at once; an agent killed and restarted keeps its subnet;
//! etcd stopped and started again breaks nothing and a lease written meanwhile is routed; an
//! agent stopped with `--release-on-exit` disappears from the others' routes within 2 s.

use rcni_tests::{eventually, rcni_bin, run, run_ok, TestNetns};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const ETCD: &str = "http://10.230.0.100:2379";
const PREFIX: &str = "/rcni-test/network";
const CLUSTER: &str = "10.245.0.0/16";

/// Every daemon the test started, killed (and reaped) on drop, even when the test fails.
#[derive(Default)]
struct Daemons(Vec<(String, Child)>);

impl Daemons {
    /// Sends `signal` (TERM, KILL) to the daemon and reaps it.
    fn stop(&mut self, name: &str, signal: &str) {
        if let Some(i) = self.0.iter().position(|(n, _)| n == name) {
            let (_, mut c) = self.0.remove(i);
            run("kill", &[&format!("-{signal}"), &c.id().to_string()]);
            let _ = c.wait();
        }
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_etcd(d: &mut Daemons, data: &Path, log: &Path) {
    let child = Command::new("ip")
        .args(["netns", "exec", "rn-etcd", "etcd", "--name", "t", "--data-dir"])
        .arg(data)
        .args(["--listen-client-urls", ETCD, "--advertise-client-urls", ETCD])
        .args(["--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380"])
        .args(["--initial-cluster", "t=http://127.0.0.1:2380"])
        .stdout(Stdio::null())
        .stderr(std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap())
        .spawn()
        .expect("etcd (etcd-server) installed");
    d.0.push(("etcd".into(), child));
    assert!(
        eventually(20, || run("ip", &["netns", "exec", "rn-etcd", "etcdctl", "--endpoints", ETCD, "endpoint", "health"]).status.success()),
        "etcd did not become healthy:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn etcdctl(args: &[&str]) -> String {
    let mut all = vec!["netns", "exec", "rn-etcd", "etcdctl", "--endpoints", ETCD];
    all.extend_from_slice(args);
    run_ok("ip", &all)
}

struct Node {
    ns: TestNetns,
    ip: String,
    dir: PathBuf,
    /// `--backend`.
    backend: &'static str,
}

impl Node {
    fn conf_dir(&self) -> PathBuf {
        self.dir.join("net.d")
    }
    fn env_file(&self) -> PathBuf {
        self.dir.join("subnet.env")
    }
    fn log(&self) -> PathBuf {
        self.dir.join("agent.log")
    }
    fn subnet(&self) -> Option<String> {
        let env = std::fs::read_to_string(self.env_file()).ok()?;
        let s = env.lines().find_map(|l| l.strip_prefix("FLANNEL_SUBNET="))?;
        // 10.245.3.1/24 → 10.245.3.0/24
        let (a, len) = s.split_once('/')?;
        let (head, _) = a.rsplit_once('.')?;
        Some(format!("{head}.0/{len}"))
    }
    fn agent(&self, d: &mut Daemons, extra: &[&str]) {
        let _ = std::fs::remove_file(self.env_file());
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns.name])
            .arg(rcni_bin())
            .args(["node", "run", "--etcd-endpoints", ETCD, "--node-name", &self.ns.name, "--public-ip", &self.ip])
            .args(["--network-cidr", CLUSTER, "--backend", self.backend, "--prefix", PREFIX, "--lease-ttl", "10"])
            .arg("--conf-dir")
            .arg(self.conf_dir())
            .arg("--subnet-file")
            .arg(self.env_file())
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::OpenOptions::new().create(true).append(true).open(self.log()).unwrap())
            .spawn()
            .expect("rcni node run");
        d.0.push((self.ns.name.clone(), child));
    }
    fn routes(&self) -> String {
        String::from_utf8_lossy(&self.ns.exec(&["ip", "-4", "route", "show", "proto", "77"]).stdout).into_owned()
    }
    fn logs(&self) -> String {
        format!("--- {} ---\n{}", self.ns.name, std::fs::read_to_string(self.log()).unwrap_or_default())
    }
}

fn all_logs(nodes: &[Node]) -> String {
    nodes.iter().map(Node::logs).collect::<Vec<_>>().join("\n")
}

fn ls_json(node: &Node) -> Vec<Value> {
    let out = String::from_utf8_lossy(
        &node
            .ns
            .exec(&[rcni_bin().to_str().unwrap(), "node", "ls", "--etcd-endpoints", ETCD, "--prefix", PREFIX, "--format", "json"])
            .stdout,
    )
    .into_owned();
    serde_json::from_str::<Value>(&out).unwrap_or_else(|e| panic!("node ls: {e}: {out}")).as_array().cloned().unwrap_or_default()
}

/// A pod namespace per node (`<prefix>1..`), attached with `rcni attach -n rcni-cluster` against
/// that node's conflist; each with its address.
fn attach_pods(nodes: &[Node], prefix: &str) -> Vec<(TestNetns, String)> {
    let mut pods = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let pod = TestNetns::new(&format!("{prefix}{}", i + 1));
        let out = n.ns.exec(&[
            rcni_bin().to_str().unwrap(),
            "attach",
            &pod.name,
            "-n",
            "rcni-cluster",
            "--conf-dir",
            n.conf_dir().to_str().unwrap(),
        ]);
        assert!(out.status.success(), "attach on {}: {}", n.ns.name, String::from_utf8_lossy(&out.stderr));
        let addr = String::from_utf8_lossy(&pod.exec(&["ip", "-4", "-o", "addr", "show", "eth0"]).stdout).into_owned();
        let ip =
            addr.split_whitespace().nth(3).and_then(|a| a.split('/').next()).unwrap_or_else(|| panic!("no address: {addr}")).to_string();
        pods.push((pod, ip));
    }
    pods
}

/// The test's cluster: an underlay bridge `rn-ul` (10.230.0.0/24), etcd healthy in `rn-etcd`
/// (.100), three node namespaces `rn-node1..3` (.1–.3) with a directory each, for `backend`.
struct Cluster {
    tmp: tempfile::TempDir,
    etcd: TestNetns,
    nodes: Vec<Node>,
    d: Daemons,
}

fn cluster(backend: &'static str) -> Cluster {
    let tmp = tempfile::tempdir().unwrap();
    run_ok("ip", &["link", "add", "rn-ul", "type", "bridge"]);
    run_ok("ip", &["link", "set", "rn-ul", "up"]);
    let plug = |ns: &TestNetns, ip: &str, i: usize| {
        let host = format!("rn-ul{i}");
        run_ok("ip", &["link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns", &ns.name]);
        run_ok("ip", &["link", "set", &host, "master", "rn-ul", "up"]);
        ns.exec(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
        ns.exec(&["ip", "link", "set", "eth0", "up"]);
    };
    let etcd = TestNetns::new("rn-etcd");
    plug(&etcd, "10.230.0.100", 0);
    let mut nodes = Vec::new();
    for i in 1..=3 {
        let ns = TestNetns::new(&format!("rn-node{i}"));
        let ip = format!("10.230.0.{i}");
        plug(&ns, &ip, i);
        let dir = tmp.path().join(format!("node{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        nodes.push(Node { ns, ip, dir, backend });
    }
    let mut d = Daemons::default();
    start_etcd(&mut d, &tmp.path().join("etcd-data"), &tmp.path().join("etcd.log"));
    Cluster { tmp, etcd, nodes, d }
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn host_gw_cluster() {
    if !rcni_tests::own_node::rerun("host_gw_cluster", "node:") {
        return;
    }
    let t0 = Instant::now();
    let Cluster { tmp, etcd: _etcd, nodes, mut d } = cluster("host-gw");
    let (etcd_data, etcd_log) = (tmp.path().join("etcd-data"), tmp.path().join("etcd.log"));
    eprintln!("node: etcd healthy after {:?}", t0.elapsed());

    // three agents at once: three distinct subnets of the cluster network
    let t = Instant::now();
    nodes[0].agent(&mut d, &[]);
    nodes[1].agent(&mut d, &[]);
    nodes[2].agent(&mut d, &["--release-on-exit"]);
    assert!(eventually(20, || nodes.iter().all(|n| n.subnet().is_some())), "agents wrote no subnet.env:\n{}", all_logs(&nodes));
    eprintln!("node: 3 agents claimed subnets in {:?}", t.elapsed());
    let subnets: Vec<String> = nodes.iter().map(|n| n.subnet().unwrap()).collect();
    let mut uniq = subnets.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), 3, "subnets shared: {subnets:?}");
    for s in &subnets {
        assert!(s.starts_with("10.245.") && s.ends_with(".0/24") && s != "10.245.0.0/24", "{s}");
    }
    // the config flannel's tools read, and the node's files
    assert_eq!(
        etcdctl(&["get", "--print-value-only", &format!("{PREFIX}/config")]).trim(),
        r#"{"Network":"10.245.0.0/16","SubnetLen":24,"Backend":{"Type":"host-gw"}}"#
    );
    let gw0 = subnets[0].replace(".0/24", ".1/24");
    assert_eq!(
        std::fs::read_to_string(nodes[0].env_file()).unwrap(),
        format!("FLANNEL_NETWORK=10.245.0.0/16\nFLANNEL_SUBNET={gw0}\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=true\n")
    );
    let list: Value =
        serde_json::from_str(&std::fs::read_to_string(nodes[0].conf_dir().join("10-rcni-cluster.conflist")).unwrap()).unwrap();
    assert_eq!(list["name"], "rcni-cluster");
    assert_eq!(list["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], subnets[0].as_str());
    let lease = etcdctl(&["get", "--print-value-only", &format!("{PREFIX}/subnets/{}", subnets[1].replace('/', "-"))]);
    assert_eq!(lease.trim(), r#"{"PublicIP":"10.230.0.2","BackendType":"host-gw","NodeName":"rn-node2"}"#);

    // rcni node ls: the three leases, TTL running
    let ls = ls_json(&nodes[0]);
    assert_eq!(ls.len(), 3, "{ls:?}");
    for (i, n) in nodes.iter().enumerate() {
        let e = ls.iter().find(|e| e["node"] == n.ns.name.as_str()).unwrap_or_else(|| panic!("{} missing: {ls:?}", n.ns.name));
        assert_eq!(
            (e["subnet"].as_str().unwrap(), e["publicIP"].as_str().unwrap(), e["backend"].as_str().unwrap()),
            (subnets[i].as_str(), n.ip.as_str(), "host-gw")
        );
        let ttl = e["ttl"].as_i64().unwrap();
        assert!((1..=10).contains(&ttl), "ttl {ttl}");
    }
    let table = String::from_utf8_lossy(
        &nodes[1].ns.exec(&[rcni_bin().to_str().unwrap(), "node", "ls", "--etcd-endpoints", ETCD, "--prefix", PREFIX]).stdout,
    )
    .into_owned();
    let mut lines = table.lines();
    assert_eq!(lines.next().unwrap().split_whitespace().collect::<Vec<_>>(), ["NODE", "SUBNET", "PUBLIC", "IP", "BACKEND", "EXPIRES"]);
    assert_eq!(lines.filter(|l| l.contains("host-gw") && l.trim_end().ends_with('s')).count(), 3, "{table}");

    // each node routes the other two subnets via their public IPs
    let t = Instant::now();
    assert!(
        eventually(5, || (0..3).all(|i| (0..3)
            .filter(|j| *j != i)
            .all(|j| nodes[i].routes().contains(&format!("{} via {} dev eth0", subnets[j], nodes[j].ip))))),
        "routes missing: {:?}\n{}",
        nodes.iter().map(Node::routes).collect::<Vec<_>>(),
        all_logs(&nodes)
    );
    eprintln!("node: routes on every node after {:?}", t.elapsed());

    // a pod per node, attached with rcni attach against that node's conflist
    let pods = attach_pods(&nodes, "rn-pod");
    for (i, (_, ip)) in pods.iter().enumerate() {
        assert!(ip.starts_with(subnets[i].trim_end_matches("0/24")), "{ip} not in {}", subnets[i]);
    }
    let all_ping = |pods: &[(TestNetns, String)]| {
        for (i, (p, _)) in pods.iter().enumerate() {
            for (j, (_, ip)) in pods.iter().enumerate() {
                if i != j {
                    assert!(p.ping(ip), "pod {} cannot reach pod {} ({ip})\n{}", i + 1, j + 1, all_logs(&nodes));
                }
            }
        }
    };
    all_ping(&pods);
    // traffic leaving the cluster network is masqueraded (rn-etcd has no route to the pods, so
    // only the node's address can answer); pod-to-pod traffic across nodes keeps its source
    assert!(pods[0].0.ping("10.230.0.100"), "pod traffic leaving the cluster is not masqueraded");
    let server = Command::new("ip")
        .args(["netns", "exec", &pods[1].0.name, "python3", "-c"])
        .arg("import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('',8080))\ns.listen()\nwhile True:\n c,a=s.accept()\n c.send(a[0].encode())\n c.close()")
        .spawn()
        .unwrap();
    d.0.push(("peer-echo".into(), server));
    let mut seen = String::new();
    let client = format!("import socket\ns=socket.create_connection(('{}',8080),2)\nprint(s.recv(64).decode())", pods[1].1);
    assert!(
        eventually(10, || {
            let o = pods[0].0.exec(&["python3", "-c", &client]);
            seen = String::from_utf8_lossy(&o.stdout).trim().to_string();
            o.status.success()
        }),
        "no answer from pod 2's echo server"
    );
    assert_eq!(seen, pods[0].1, "pod 2 saw pod 1's traffic from another address");
    d.stop("peer-echo", "KILL");
    eprintln!("node: 6 pod pairs ping after {:?}", t0.elapsed());

    // an agent killed and restarted takes back its own subnet; its pod keeps working
    d.stop("rn-node1", "KILL");
    nodes[0].agent(&mut d, &[]);
    assert!(eventually(15, || nodes[0].subnet().is_some()), "restarted agent:\n{}", nodes[0].logs());
    assert_eq!(nodes[0].subnet().unwrap(), subnets[0]);
    assert_eq!(ls_json(&nodes[1]).len(), 3);
    assert!(pods[0].0.ping(&pods[1].1) && pods[1].0.ping(&pods[0].1));

    // a config that contradicts the cluster's is refused, with the way out
    let out = nodes[0].ns.exec(&[
        rcni_bin().to_str().unwrap(),
        "node",
        "run",
        "--etcd-endpoints",
        ETCD,
        "--node-name",
        "x",
        "--public-ip",
        "10.230.0.1",
        "--network-cidr",
        "10.99.0.0/16",
        "--backend",
        "host-gw",
        "--prefix",
        PREFIX,
        "--state-dir",
        tmp.path().join("x").to_str().unwrap(),
        "--conf-dir",
        tmp.path().join("x").to_str().unwrap(),
        "--subnet-file",
        tmp.path().join("x/env").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Network 10.245.0.0/16 (asked 10.99.0.0/16)") && err.contains("etcdctl del /rcni-test/network/config"), "{err}");

    // etcd stopped for a while: the data plane stays; once it is back, a lease written meanwhile
    // (before the agents reconnected) is routed, and its removal too
    let t = Instant::now();
    d.stop("etcd", "TERM");
    std::thread::sleep(std::time::Duration::from_secs(3)); // the outage itself: nothing to poll for
    assert!(pods[0].0.ping(&pods[2].1) && pods[2].0.ping(&pods[1].1), "data plane lost while etcd was down");
    start_etcd(&mut d, &etcd_data, &etcd_log);
    etcdctl(&["put", &format!("{PREFIX}/subnets/10.245.200.0-24"), r#"{"PublicIP":"10.230.0.3","BackendType":"host-gw"}"#]);
    assert!(
        eventually(20, || nodes[..2].iter().all(|n| n.routes().contains("10.245.200.0/24 via 10.230.0.3 dev eth0"))),
        "lease written after the outage not routed: {:?}\n{}",
        nodes.iter().map(Node::routes).collect::<Vec<_>>(),
        all_logs(&nodes)
    );
    eprintln!("node: etcd outage and resync in {:?}", t.elapsed());
    let t = Instant::now();
    etcdctl(&["del", &format!("{PREFIX}/subnets/10.245.200.0-24")]);
    assert!(eventually(2, || nodes.iter().all(|n| !n.routes().contains("10.245.200.0/24"))), "deleted lease still routed");
    eprintln!("node: deleted lease unrouted in {:?}", t.elapsed());
    // host-gw cannot reach a peer off the underlay's subnets: said so, and no route
    etcdctl(&["put", &format!("{PREFIX}/subnets/10.245.201.0-24"), r#"{"PublicIP":"192.0.2.50","BackendType":"host-gw"}"#]);
    assert!(
        eventually(3, || nodes[0].logs().contains(
            "peer 10.245.201.0/24: host-gw needs every node on one L2 segment: 192.0.2.50 is on no subnet of eth0 (10.230.0.0/24)"
        )),
        "{}",
        nodes[0].logs()
    );
    assert!(!nodes[0].routes().contains("10.245.201.0/24"));
    etcdctl(&["del", &format!("{PREFIX}/subnets/10.245.201.0-24")]);
    all_ping(&pods);

    // --release-on-exit: SIGTERM revokes node3's lease; the others drop its route within 2 s
    d.stop("rn-node3", "TERM");
    let t = Instant::now();
    let gone = format!("{} via", subnets[2]);
    assert!(
        eventually(2, || nodes[..2].iter().all(|n| !n.routes().contains(&gone))),
        "released subnet still routed:\n{}",
        all_logs(&nodes)
    );
    eprintln!("node: released subnet unrouted in {:?}", t.elapsed());
    let ls = ls_json(&nodes[0]);
    assert_eq!(ls.len(), 2, "{ls:?}");
    assert!(nodes[2].logs().contains("released"), "{}", nodes[2].logs());
    assert!(pods[0].0.ping(&pods[1].1));
    for (p, _) in &pods {
        let _ = run(rcni_bin().to_str().unwrap(), &["detach", &p.name]);
    }
    eprintln!("node: whole test {:?}", t0.elapsed());
}

/// `ip -j -d link show flannel.1` in the node, or `None`.
fn vxlan_device(n: &Node) -> Option<Value> {
    let out = n.ns.exec(&["ip", "-j", "-d", "link", "show", "flannel.1"]);
    serde_json::from_slice::<Value>(&out.stdout).ok().map(|v| v[0].clone())
}

/// The vxlan backend (flannel's layout: flannel.1, a neighbour + FDB entry + on-link route per
/// peer) on the same underlay: distinct subnets, VtepMACs in the leases, MTU 1450, pods on every
/// node reach each other through the overlay (the underlay bridge never sees pod addresses), and
/// a node released with --release-on-exit leaves the others' neighbours, FDB and routes at once.
#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn vxlan_cluster() {
    if !rcni_tests::own_node::rerun("vxlan_cluster", "node:") {
        return;
    }
    let t0 = Instant::now();
    let Cluster { tmp: _tmp, etcd: _etcd, nodes, mut d } = cluster("vxlan");
    nodes[0].agent(&mut d, &[]);
    nodes[1].agent(&mut d, &[]);
    nodes[2].agent(&mut d, &["--release-on-exit"]);
    assert!(eventually(20, || nodes.iter().all(|n| n.subnet().is_some())), "agents wrote no subnet.env:\n{}", all_logs(&nodes));
    let subnets: Vec<String> = nodes.iter().map(|n| n.subnet().unwrap()).collect();
    let mut uniq = subnets.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), 3, "subnets shared: {subnets:?}");
    assert_eq!(
        etcdctl(&["get", "--print-value-only", &format!("{PREFIX}/config")]).trim(),
        r#"{"Network":"10.245.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan","VNI":1}}"#
    );
    // each node's device, and its lease publishing the device's MAC
    let mut macs = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let dev = vxlan_device(n).unwrap_or_else(|| panic!("no flannel.1 on {}:\n{}", n.ns.name, n.logs()));
        let info = &dev["linkinfo"]["info_data"];
        assert_eq!((info["id"].as_u64(), info["port"].as_u64(), info["learning"].as_bool()), (Some(1), Some(8472), Some(false)), "{dev}");
        assert_eq!(info["local"], n.ip.as_str(), "{dev}");
        assert_eq!(dev["mtu"], 1450, "underlay 1500 less 50");
        let mac = dev["address"].as_str().unwrap().to_string();
        let lease: Value = serde_json::from_str(
            etcdctl(&["get", "--print-value-only", &format!("{PREFIX}/subnets/{}", subnets[i].replace('/', "-"))]).trim(),
        )
        .unwrap();
        assert_eq!(
            (lease["BackendType"].as_str(), lease["BackendData"]["VtepMAC"].as_str(), lease["BackendData"]["VNI"].as_u64()),
            (Some("vxlan"), Some(mac.as_str()), Some(1)),
            "{lease}"
        );
        let gw = subnets[i].replace(".0/24", ".1/24");
        assert_eq!(
            std::fs::read_to_string(n.env_file()).unwrap(),
            format!("FLANNEL_NETWORK=10.245.0.0/16\nFLANNEL_SUBNET={gw}\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
        );
        macs.push(mac);
    }
    // on each node, per peer: neighbour .0 -> its MAC, FDB its MAC -> its public IP, on-link route
    let entries = |i: usize, j: usize| {
        let dot0 = subnets[j].replace(".0/24", ".0");
        let neigh = String::from_utf8_lossy(&nodes[i].ns.exec(&["ip", "neigh", "show", "dev", "flannel.1"]).stdout).into_owned();
        let fdb = String::from_utf8_lossy(&nodes[i].ns.exec(&["bridge", "fdb", "show", "dev", "flannel.1"]).stdout).into_owned();
        let routes = String::from_utf8_lossy(&nodes[i].ns.exec(&["ip", "-4", "route", "show", "dev", "flannel.1"]).stdout).into_owned();
        (
            neigh.contains(&format!("{dot0} lladdr {} PERMANENT", macs[j])),
            fdb.contains(&format!("{} dst {} self permanent", macs[j], nodes[j].ip)),
            routes.contains(&format!("{} via {dot0} onlink", subnets[j])),
        )
    };
    assert!(
        eventually(5, || (0..3).all(|i| (0..3).filter(|j| *j != i).all(|j| entries(i, j) == (true, true, true)))),
        "overlay entries missing\n{}",
        all_logs(&nodes)
    );
    // pods on every node reach each other over the overlay
    let pods = attach_pods(&nodes, "rn-vpod");
    for (i, (p, _)) in pods.iter().enumerate() {
        for (j, (_, ip)) in pods.iter().enumerate() {
            if i != j {
                assert!(p.ping(ip), "pod {} cannot reach pod {} ({ip}) over vxlan\n{}", i + 1, j + 1, all_logs(&nodes));
            }
        }
    }
    eprintln!("node: vxlan, 6 pod pairs ping after {:?}", t0.elapsed());
    // node3 leaves: its entries go from the others at once
    d.stop("rn-node3", "TERM");
    let t = Instant::now();
    assert!(eventually(2, || (0..2).all(|i| entries(i, 2) == (false, false, false))), "node3's overlay entries stay\n{}", all_logs(&nodes));
    eprintln!("node: vxlan peer removed in {:?}", t.elapsed());
    assert!(pods[0].0.ping(&pods[1].1));
    for (p, _) in &pods {
        let _ = run(rcni_bin().to_str().unwrap(), &["detach", &p.name]);
    }
}

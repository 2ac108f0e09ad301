//! rcni's benchmark: per-container ADD and DEL of one conflist (bridge + host-local, ipMasq),
//! each stack driven by its own cnitool, against the raw-kernel floor, in the same run.
//!
//! Stacks: `rcni` (rcni's cnitool and plugins), `reference` (Go's cnitool with Debian's plugins,
//! when both are present), `floor` (the same veth/bridge/address/route work with two `ip -batch`
//! processes per container; DEL is `ip link del`). Run inside ../shared/tools/netsandbox through
//! `bench/run`; it creates N namespaces per stack and removes everything afterwards.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Opts {
    ns: Vec<usize>,
    rcni_dir: PathBuf,
    go_cnitool: Option<PathBuf>,
    ref_plugins: PathBuf,
    stacks: Vec<String>,
    /// `bridge` (bridge + host-local) or `chain` (… → portmap with one port per container →
    /// firewall → tuning).
    chain: String,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        ns: vec![50, 1000],
        rcni_dir: PathBuf::from("target/bench-install"),
        go_cnitool: Some(PathBuf::from("target/go-cnitool/cnitool")),
        ref_plugins: PathBuf::from("/usr/lib/cni"),
        stacks: vec!["floor".into(), "rcni".into(), "reference".into()],
        chain: "bridge".into(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--ns" => o.ns = v.split(',').map(|n| n.parse().expect("--ns takes numbers")).collect(),
            "--rcni-dir" => o.rcni_dir = v.into(),
            "--go-cnitool" => o.go_cnitool = Some(v.into()),
            "--reference-plugins" => o.ref_plugins = v.into(),
            "--stacks" => o.stacks = v.split(',').map(String::from).collect(),
            "--chain" => o.chain = v,
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    o
}

/// Spawns `cmd` as configured (stdin piped when `input` is given), feeds it `input`, reaps it
/// with wait4 and returns its wall time, whether it exited 0, the peak RSS (KiB) of its process
/// tree, and the child (for its stderr pipe, if any).
// reaped with wait4 (for its rusage), which clippy cannot see
#[allow(clippy::zombie_processes)]
fn measured(cmd: &mut Command, input: Option<&str>) -> (Duration, bool, i64, std::process::Child) {
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    if let Some(text) = input {
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    }
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter for wait4.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child and fills `ru`.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let elapsed = start.elapsed();
    assert_eq!(r, pid, "wait4");
    (elapsed, libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, ru.ru_maxrss, child)
}

/// Runs a command and returns its wall time and the peak RSS (KiB) of its process tree.
fn timed(cmd: &mut Command) -> (Duration, i64) {
    let (elapsed, ok, rss, child) = measured(cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()), None);
    if !ok {
        let mut err = String::new();
        if let Some(mut e) = child.stderr {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        panic!("{cmd:?} failed: {err}");
    }
    (elapsed, rss)
}

fn sh(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().expect("run");
    assert!(st.success(), "{cmd} {args:?} failed");
}

fn ip_batch(args: &[&str], script: &str) -> (Duration, i64) {
    let mut cmd = Command::new("ip");
    cmd.args(args).args(["-batch", "-"]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::inherit());
    let (elapsed, ok, rss, _) = measured(&mut cmd, Some(script));
    assert!(ok, "ip -batch failed: {script}");
    (elapsed, rss)
}

fn addr_of(i: usize) -> String {
    format!("10.98.{}.{}", i / 250, i % 250 + 2)
}

#[derive(Default)]
struct Samples {
    add: Vec<Duration>,
    del: Vec<Duration>,
    rss_kib: i64,
}

fn pct(v: &[Duration], p: f64) -> f64 {
    let mut s: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    s.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

const CONFLIST: &str = r#"{
  "cniVersion": "1.0.0",
  "name": "cnibench",
  "plugins": [
    {"type": "bridge", "bridge": "cnib0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.99.0.0/16", "gateway": "10.99.0.1"}]], "routes": [{"dst": "0.0.0.0/0"}]}}
  ]
}"#;

const CHAIN_CONFLIST: &str = r#"{
  "cniVersion": "1.0.0",
  "name": "cnibench",
  "plugins": [
    {"type": "bridge", "bridge": "cnib0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.99.0.0/16", "gateway": "10.99.0.1"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall"},
    {"type": "tuning", "sysctl": {"net.core.somaxconn": "512"}}
  ]
}"#;

fn ns_name(i: usize) -> String {
    format!("cnibench-{i}")
}

fn make_namespaces(n: usize) {
    for i in 1..=n {
        netkit::netns::create(Some(&ns_name(i))).expect("create netns");
    }
}

fn remove_namespaces(n: usize) {
    for i in 1..=n {
        let _ = netkit::netns::delete(&ns_name(i));
    }
}

fn ping(from: usize, to_addr: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", &ns_name(from), "ping", "-c1", "-W2", to_addr])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run_floor(n: usize) -> Samples {
    let mut s = Samples::default();
    sh("ip", &["link", "add", "brfloor", "type", "bridge"]);
    sh("ip", &["addr", "add", "10.98.0.1/16", "dev", "brfloor"]);
    sh("ip", &["link", "set", "brfloor", "up"]);
    make_namespaces(n);
    for i in 1..=n {
        let ns = ns_name(i);
        let (t1, r1) = ip_batch(
            &[],
            &format!("link add fv{i} type veth peer name eth0 netns {ns}\nlink set fv{i} master brfloor\nlink set fv{i} up\n"),
        );
        let (t2, r2) = ip_batch(
            &["-n", &ns],
            &format!("addr add {}/16 dev eth0\nlink set eth0 up\nroute add default via 10.98.0.1 dev eth0\n", addr_of(i)),
        );
        s.add.push(t1 + t2);
        s.rss_kib = s.rss_kib.max(r1).max(r2);
    }
    assert!(ping(1, &addr_of(n)), "floor: no connectivity");
    for i in (1..=n).rev() {
        let (t, _) = timed(Command::new("ip").args(["link", "del", &format!("fv{i}")]));
        s.del.push(t);
    }
    remove_namespaces(n);
    sh("ip", &["link", "del", "brfloor"]);
    s
}

fn run_cnitool(n: usize, cnitool: &Path, cni_path: &Path, conf_dir: &Path, ports: bool) -> Samples {
    let mut s = Samples::default();
    make_namespaces(n);
    let cmd = |verb: &str, i: usize| {
        let mut c = Command::new(cnitool);
        c.args([verb, "cnibench", &format!("/run/netns/{}", ns_name(i))])
            .env("NETCONFPATH", conf_dir)
            .env("CNI_PATH", cni_path)
            .env_remove("CNI_ARGS")
            .env_remove("CAP_ARGS")
            .env_remove("CNI_IFNAME");
        if ports {
            c.env("CAP_ARGS", format!(r#"{{"portMappings":[{{"hostPort":{},"containerPort":80,"protocol":"tcp"}}]}}"#, 10000 + i));
        }
        c
    };
    for i in 1..=n {
        let (t, rss) = timed(&mut cmd("add", i));
        s.add.push(t);
        s.rss_kib = s.rss_kib.max(rss);
    }
    // host-local hands out .2 upwards on a fresh range
    let last = format!("10.99.{}.{}", (n + 1) / 256, (n + 1) % 256);
    assert!(ping(1, &last), "no connectivity to {last}");
    for i in (1..=n).rev() {
        let (t, rss) = timed(&mut cmd("del", i));
        s.del.push(t);
        s.rss_kib = s.rss_kib.max(rss);
    }
    remove_namespaces(n);
    let _ = Command::new("ip").args(["link", "del", "cnib0"]).stderr(Stdio::null()).status();
    let _ = std::fs::remove_dir_all("/var/lib/cni/networks/cnibench");
    s
}

/// Peak RSS (KiB) of one plugin process doing an ADD and a DEL on its own.
fn plugin_rss(plugin: &Path, cni_path: &Path, stdin: &str) -> i64 {
    netkit::netns::create(Some("cnibench-rss")).expect("netns");
    let mut peak = 0;
    for verb in ["ADD", "DEL"] {
        let mut cmd = Command::new(plugin);
        cmd.env("CNI_COMMAND", verb)
            .env("CNI_CONTAINERID", "rssprobe")
            .env("CNI_NETNS", "/run/netns/cnibench-rss")
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", cni_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let (_, _, rss, _) = measured(&mut cmd, Some(stdin));
        peak = peak.max(rss);
    }
    let _ = netkit::netns::delete("cnibench-rss");
    let _ = Command::new("ip").args(["link", "del", "cnib0"]).stderr(Stdio::null()).status();
    let _ = std::fs::remove_dir_all("/var/lib/cni/networks/cnibench");
    peak
}

fn plugin_stdin() -> String {
    let mut v: serde_json::Value = serde_json::from_str(CONFLIST).expect("conflist");
    let mut p = v["plugins"][0].take();
    p["name"] = "cnibench".into();
    p["cniVersion"] = "1.0.0".into();
    p.to_string()
}

fn main() {
    let o = parse_opts();
    assert!(Path::new("/run/netns").exists(), "run through bench/run (inside the netsandbox)");
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").expect("forwarding");
    let conf = tempfile::tempdir().expect("tmp");
    let ports = o.chain == "chain";
    std::fs::write(conf.path().join("cnibench.conflist"), if ports { CHAIN_CONFLIST } else { CONFLIST }).expect("conflist");
    let rcni_dir = std::fs::canonicalize(&o.rcni_dir).expect("rcni install dir (bench/run makes it)");
    let go = o.go_cnitool.as_ref().filter(|p| p.exists()).and_then(|p| std::fs::canonicalize(p).ok());
    let have_ref = go.is_some() && o.ref_plugins.join("bridge").exists();
    println!(
        "rcni benchmark: {}, per container, sequential; kernel {}",
        if ports {
            "bridge + host-local (ipMasq) -> portmap (one port each) -> firewall -> tuning; floor: bridge only"
        } else {
            "bridge + host-local (ipMasq)"
        },
        std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim()
    );
    if !have_ref {
        println!("(reference stack skipped: Go cnitool or Debian's plugins missing)");
    }
    for &n in &o.ns {
        let mut results: Vec<(&str, Samples)> = Vec::new();
        for stack in &o.stacks {
            let s = match stack.as_str() {
                "floor" => run_floor(n),
                "rcni" => run_cnitool(n, &rcni_dir.join("cnitool"), &rcni_dir, conf.path(), ports),
                "reference" if have_ref => run_cnitool(n, go.as_ref().expect("checked"), &o.ref_plugins, conf.path(), ports),
                _ => continue,
            };
            results.push((
                match stack.as_str() {
                    "floor" => "floor (ip -batch)",
                    "rcni" => "rcni",
                    _ => "reference (Go)",
                },
                s,
            ));
        }
        println!("\nN = {n}");
        println!("| stack | ADD median ms | ADD p95 ms | DEL median ms | DEL p95 ms | peak RSS of the process tree |");
        println!("|---|---|---|---|---|---|");
        for (name, s) in &results {
            println!(
                "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {} MiB |",
                pct(&s.add, 0.5),
                pct(&s.add, 0.95),
                pct(&s.del, 0.5),
                pct(&s.del, 0.95),
                s.rss_kib / 1024
            );
        }
        let get = |k: &str| results.iter().find(|(n, _)| n.starts_with(k)).map(|(_, s)| s);
        if let (Some(r), Some(f)) = (get("rcni"), get("floor")) {
            println!(
                "rcni / floor: ADD median {:.2}x, p95 {:.2}x; DEL median {:.2}x",
                pct(&r.add, 0.5) / pct(&f.add, 0.5),
                pct(&r.add, 0.95) / pct(&f.add, 0.95),
                pct(&r.del, 0.5) / pct(&f.del, 0.5)
            );
        }
        if let (Some(r), Some(g)) = (get("rcni"), get("reference")) {
            println!(
                "reference / rcni (speed-up): ADD median {:.1}x, p95 {:.1}x; DEL median {:.1}x, p95 {:.1}x",
                pct(&g.add, 0.5) / pct(&r.add, 0.5),
                pct(&g.add, 0.95) / pct(&r.add, 0.95),
                pct(&g.del, 0.5) / pct(&r.del, 0.5),
                pct(&g.del, 0.95) / pct(&r.del, 0.95)
            );
        }
    }
    let stdin = plugin_stdin();
    println!("\npeak RSS of one plugin process run alone (ADD then DEL; rcni's cnitool runs its own plugins in-process):");
    println!("  rcni bridge (host-local in-process): {} KiB", plugin_rss(&rcni_dir.join("bridge"), &rcni_dir, &stdin));
    if have_ref {
        println!("  reference bridge (+ its host-local child): {} KiB", plugin_rss(&o.ref_plugins.join("bridge"), &o.ref_plugins, &stdin));
        let hl = serde_json::json!({"cniVersion": "1.0.0", "name": "cnibench", "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.99.0.0/16"}]]}}).to_string();
        println!("  rcni host-local: {} KiB", plugin_rss(&rcni_dir.join("host-local"), &rcni_dir, &hl));
        println!("  reference host-local: {} KiB", plugin_rss(&o.ref_plugins.join("host-local"), &o.ref_plugins, &hl));
    }
}

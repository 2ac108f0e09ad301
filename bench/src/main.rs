//! rcni's benchmark: per-container ADD and DEL of one conflist (bridge + host-local, ipMasq),
//! each stack driven by its own cnitool, against the raw-kernel floor, in the same run.
//!
//! Stacks: `rcni` (rcni's cnitool and plugins), `reference` (Go's cnitool with Debian's plugins,
//! when both are present), `floor` (the same veth/bridge/address/route work with two `ip -batch`
//! processes per container; DEL is `ip link del`). Run inside ../shared/tools/netsandbox through
//! `bench/run`; it creates N namespaces per stack and removes everything afterwards.
//!
//! Memory is measured per process (see `rss`): the largest process of one traced ADD and DEL per
//! stack, and each plugin of the default chain exec'd on its own as a container runtime does,
//! rcni's and the reference's. `--rss-only` skips the timing; `--rss-detail` prints rcni's
//! `smaps_rollup` per process; `--smaps DIR` keeps every traced process's `smaps` and the
//! offsets of its resident pages (`.pages`).

mod layout;
mod rss;

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
    /// Only the per-process RSS of single plugins, no timing.
    rss_only: bool,
    /// Also print every rcni plugin process's smaps_rollup at exit.
    rss_detail: bool,
    /// Copy each traced plugin process's smaps at exit into this directory.
    smaps: Option<PathBuf>,
    /// Write the code layout (linker script) for rcni from the plugins' function coverage.
    layout: Option<PathBuf>,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        ns: vec![50, 1000],
        rcni_dir: PathBuf::from("target/bench-install"),
        go_cnitool: Some(PathBuf::from("target/go-cnitool/cnitool")),
        ref_plugins: PathBuf::from("/usr/lib/cni"),
        stacks: vec!["floor".into(), "rcni".into(), "reference".into()],
        chain: "bridge".into(),
        rss_only: false,
        rss_detail: false,
        smaps: None,
        layout: None,
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
            "--smaps" => o.smaps = Some(v.into()),
            "--layout" => o.layout = Some(v.into()),
            "--rss-only" | "--rss-detail" => {
                if args[i] == "--rss-only" {
                    o.rss_only = true;
                } else {
                    o.rss_detail = true;
                }
                i += 1;
                continue;
            }
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    o
}

/// Spawns `cmd` as configured (stdin piped when `input` is given), feeds it `input`, waits and
/// returns its wall time, whether it exited 0 and the child (for its stderr pipe, if any).
fn measured(cmd: &mut Command, input: Option<&str>) -> (Duration, bool, std::process::Child) {
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    if let Some(text) = input {
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    }
    let status = child.wait().expect("wait");
    (start.elapsed(), status.success(), child)
}

/// Runs a command and returns its wall time.
fn timed(cmd: &mut Command) -> Duration {
    let (elapsed, ok, child) = measured(cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()), None);
    if !ok {
        let mut err = String::new();
        if let Some(mut e) = child.stderr {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        panic!("{cmd:?} failed: {err}");
    }
    elapsed
}

fn sh(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().expect("run");
    assert!(st.success(), "{cmd} {args:?} failed");
}

fn ip_batch_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(args).args(["-batch", "-"]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::inherit());
    cmd
}

fn ip_batch(args: &[&str], script: &str) -> Duration {
    let (elapsed, ok, _) = measured(&mut ip_batch_cmd(args), Some(script));
    assert!(ok, "ip -batch failed: {script}");
    elapsed
}

fn addr_of(i: usize) -> String {
    format!("10.98.{}.{}", i / 250, i % 250 + 2)
}

#[derive(Default)]
struct Samples {
    add: Vec<Duration>,
    del: Vec<Duration>,
    /// The largest process of one more container's ADD and DEL, traced after the timed ones
    /// (name, peak RSS in KiB).
    largest: Option<(String, u64)>,
}

impl Samples {
    fn saw(&mut self, t: &rss::Traced) {
        for p in &t.procs {
            if self.largest.as_ref().is_none_or(|(_, k)| *k < p.hwm_kib) {
                self.largest = Some((p.name.clone(), p.hwm_kib));
            }
        }
    }
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
    make_namespaces(n + 1);
    let add_scripts = |i: usize| {
        (
            format!("link add fv{i} type veth peer name eth0 netns {}\nlink set fv{i} master brfloor\nlink set fv{i} up\n", ns_name(i)),
            format!("addr add {}/16 dev eth0\nlink set eth0 up\nroute add default via 10.98.0.1 dev eth0\n", addr_of(i)),
        )
    };
    for i in 1..=n {
        let ns = ns_name(i);
        let (link, addr) = add_scripts(i);
        let t1 = ip_batch(&[], &link);
        let t2 = ip_batch(&["-n", &ns], &addr);
        s.add.push(t1 + t2);
    }
    let (link, addr) = add_scripts(n + 1);
    s.saw(&rss::traced(&mut ip_batch_cmd(&[]), &link, None));
    s.saw(&rss::traced(&mut ip_batch_cmd(&["-n", &ns_name(n + 1)]), &addr, None));
    s.saw(&rss::traced(Command::new("ip").args(["link", "del", &format!("fv{}", n + 1)]), "", None));
    assert!(ping(1, &addr_of(n)), "floor: no connectivity");
    for i in (1..=n).rev() {
        s.del.push(timed(Command::new("ip").args(["link", "del", &format!("fv{i}")])));
    }
    remove_namespaces(n + 1);
    sh("ip", &["link", "del", "brfloor"]);
    s
}

fn run_cnitool(n: usize, cnitool: &Path, cni_path: &Path, conf_dir: &Path, ports: bool) -> Samples {
    let mut s = Samples::default();
    make_namespaces(n + 1);
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
        s.add.push(timed(&mut cmd("add", i)));
    }
    // host-local hands out .2 upwards on a fresh range
    let last = format!("10.99.{}.{}", (n + 1) / 256, (n + 1) % 256);
    assert!(ping(1, &last), "no connectivity to {last}");
    for i in (1..=n).rev() {
        s.del.push(timed(&mut cmd("del", i)));
    }
    for verb in ["add", "del"] {
        let t = rss::traced(cmd(verb, n + 1).stderr(Stdio::null()), "", None);
        assert!(t.ok, "traced {verb} failed");
        s.saw(&t);
    }
    remove_namespaces(n + 1);
    let _ = Command::new("ip").args(["link", "del", "cnib0"]).stderr(Stdio::null()).status();
    let _ = std::fs::remove_dir_all("/var/lib/cni/networks/cnibench");
    s
}

/// The state of a chain run: the namespace, bridge and leases the RSS probes leave behind.
fn clean_rss_probe() {
    let _ = netkit::netns::delete("cnibench-rss");
    let _ = Command::new("ip").args(["link", "del", "cnib0"]).stderr(Stdio::null()).status();
    let _ = std::fs::remove_dir_all("/var/lib/cni/networks/cnibench");
}

/// One plugin executed the way a container runtime does it — its own process, the `CNI_*`
/// environment, its config on stdin — under ptrace; panics unless it succeeds.
fn run_plugin(dir: &Path, plugin: &str, verb: &str, stdin: &str, smaps: Option<(&Path, &str)>) -> rss::Traced {
    let mut cmd = Command::new(dir.join(plugin));
    cmd.env("CNI_COMMAND", verb)
        .env("CNI_CONTAINERID", "rssprobe")
        .env("CNI_NETNS", "/run/netns/cnibench-rss")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", dir)
        .env_remove("CNI_ARGS")
        .env_remove("RCNI_LOG")
        .stderr(Stdio::null());
    let t = rss::traced(&mut cmd, stdin, smaps);
    assert!(t.ok, "{plugin} {verb} failed: {}", String::from_utf8_lossy(&t.stdout));
    t
}

/// One row of the per-process table: a plugin exec'd alone, and the processes of its tree.
struct Step {
    plugin: &'static str,
    verb: &'static str,
    root: i32,
    procs: Vec<rss::Proc>,
}

/// Each plugin of the default chain exec'd on its own as a container runtime does (bridge ADD
/// → portmap → firewall → tuning, each with the previous result; DEL in reverse with the final
/// result, as libcni passes the cached one), then host-local alone; every process traced.
fn plugin_steps(dir: &Path, smaps: Option<&Path>, label: &str) -> Vec<Step> {
    clean_rss_probe();
    netkit::netns::create(Some("cnibench-rss")).expect("netns");
    let list: serde_json::Value = serde_json::from_str(CHAIN_CONFLIST).expect("conflist");
    let conf = |i: usize, prev: Option<&serde_json::Value>| {
        let mut p = list["plugins"][i].clone();
        p["name"] = "cnibench".into();
        p["cniVersion"] = "1.0.0".into();
        if p["type"] == "portmap" {
            p["runtimeConfig"] = serde_json::json!({"portMappings": [{"hostPort": 10999, "containerPort": 80, "protocol": "tcp"}]});
        }
        if let Some(prev) = prev {
            p["prevResult"] = prev.clone();
        }
        p.to_string()
    };
    let names: Vec<&'static str> = vec!["bridge", "portmap", "firewall", "tuning"];
    let mut steps = Vec::new();
    let mut prev: Option<serde_json::Value> = None;
    for (i, &name) in names.iter().enumerate() {
        let smaps = smaps.map(|d| (d, format!("{label}-ADD")));
        let t = run_plugin(dir, name, "ADD", &conf(i, prev.as_ref()), smaps.as_ref().map(|(d, l)| (*d, l.as_str())));
        prev = Some(serde_json::from_slice(&t.stdout).expect("ADD result"));
        steps.push(Step { plugin: name, verb: "ADD", root: t.root, procs: t.procs });
    }
    for (i, &name) in names.iter().enumerate().rev() {
        let smaps = smaps.map(|d| (d, format!("{label}-DEL")));
        let t = run_plugin(dir, name, "DEL", &conf(i, prev.as_ref()), smaps.as_ref().map(|(d, l)| (*d, l.as_str())));
        steps.push(Step { plugin: name, verb: "DEL", root: t.root, procs: t.procs });
    }
    let hl = serde_json::json!({"cniVersion": "1.0.0", "name": "cnibench", "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.99.0.0/16"}]]}})
        .to_string();
    for verb in ["ADD", "DEL"] {
        let smaps = smaps.map(|d| (d, format!("{label}-{verb}")));
        let t = run_plugin(dir, "host-local", verb, &hl, smaps.as_ref().map(|(d, l)| (*d, l.as_str())));
        steps.push(Step { plugin: "host-local", verb, root: t.root, procs: t.procs });
    }
    clean_rss_probe();
    steps
}

/// The plugin's own process of a step and the others it started.
fn split_step(s: &Step) -> (Option<&rss::Proc>, Vec<&rss::Proc>) {
    (s.procs.iter().find(|p| p.pid == s.root), s.procs.iter().filter(|p| p.pid != s.root).collect())
}

fn cell(p: Option<&rss::Proc>) -> String {
    p.map_or("-".into(), |p| format!("{} ({} anon + {} file)", p.hwm_kib, p.anon_kib, p.file_kib))
}

/// Prints the per-process table for rcni and, when given, the reference.
fn print_plugin_rss(rcni: &[Step], reference: Option<&[Step]>) {
    println!("\nper-process peak RSS, KiB (VmHWM of the process's own address space, read at its exit under ptrace;");
    println!("in brackets the RSS at exit, anonymous + file-backed): each plugin exec'd alone as a container runtime");
    println!("does, the default chain's ADD then DEL, then host-local alone. rcni's bridge runs host-local in-process.");
    println!("| plugin | verb | rcni | reference (Go) |");
    println!("|---|---|---|---|");
    for (i, s) in rcni.iter().enumerate() {
        let (own, others) = split_step(s);
        let r = reference.and_then(|r| r.get(i));
        let (rown, rothers) = r.map(split_step).unwrap_or((None, Vec::new()));
        let alone = if s.plugin == "host-local" { "host-local alone" } else { s.plugin };
        println!("| {alone} | {} | {} | {} |", s.verb, cell(own), cell(rown));
        // children: the reference's host-local and iptables, rcni's forked socket closer
        let mut names: Vec<&str> = Vec::new();
        for p in others.iter().chain(rothers.iter()) {
            if !names.contains(&p.name.as_str()) {
                names.push(&p.name);
            }
        }
        if s.plugin == "bridge" && !names.contains(&"host-local") && rothers.iter().any(|p| p.name == "host-local") {
            names.insert(0, "host-local");
        }
        for name in names {
            let mine = others.iter().copied().filter(|p| p.name == name).max_by_key(|p| p.hwm_kib);
            let theirs = rothers.iter().copied().filter(|p| p.name == name).max_by_key(|p| p.hwm_kib);
            let mine =
                if mine.is_none() && s.plugin == "bridge" && name == "host-local" { "in bridge's process".into() } else { cell(mine) };
            let n = others.iter().filter(|p| p.name == name).count().max(rothers.iter().filter(|p| p.name == name).count());
            let what = if name == s.plugin { format!("{name} forked, not exec'd") } else { name.to_string() };
            let times = if n > 1 { format!(", largest of {n}") } else { String::new() };
            println!("| ↳ {what} (child of {}{times}) | {} | {mine} | {} |", s.plugin, s.verb, cell(theirs));
        }
    }
}

/// Prints each rcni process's smaps_rollup, for `--rss-detail`.
fn print_rollups(label: &str, steps: &[Step]) {
    for s in steps {
        for p in &s.procs {
            println!("\n{label} {} {} (pid {}), VmHWM {} KiB, smaps_rollup at exit:", s.plugin, s.verb, p.pid, p.hwm_kib);
            for l in p.rollup.lines().skip(1) {
                println!("  {l}");
            }
        }
    }
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
    if let Some(out) = &o.layout {
        layout::write(&rcni_dir, out, |dir| {
            plugin_steps(dir, None, "rcni");
        });
        return;
    }
    for &n in o.ns.iter().filter(|_| !o.rss_only) {
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
        println!("| stack | ADD median ms | ADD p95 ms | DEL median ms | DEL p95 ms | largest process, peak RSS |");
        println!("|---|---|---|---|---|---|");
        for (name, s) in &results {
            let (pname, kib) = s.largest.clone().unwrap_or_default();
            println!(
                "| {name} | {:.2} | {:.2} | {:.2} | {:.2} | {pname} {kib} KiB |",
                pct(&s.add, 0.5),
                pct(&s.add, 0.95),
                pct(&s.del, 0.5),
                pct(&s.del, 0.95),
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
    if let Some(d) = &o.smaps {
        std::fs::create_dir_all(d).expect("--smaps dir");
    }
    let mine = plugin_steps(&rcni_dir, o.smaps.as_deref(), "rcni");
    let want_ref = o.stacks.iter().any(|s| s == "reference") && o.ref_plugins.join("bridge").exists();
    let theirs = want_ref.then(|| plugin_steps(&o.ref_plugins, o.smaps.as_deref(), "reference"));
    print_plugin_rss(&mine, theirs.as_deref());
    if o.rss_detail {
        print_rollups("rcni", &mine);
    }
}

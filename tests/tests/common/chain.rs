//! The full default chain on a network of a test's own, run by rcni's cnitool (the plugins
//! in-process, the result cache in /var/lib/cni), and the places its attachments leave things:
//! for the load and crash suites (netsandbox only).

use rcni_tests::{cnitool_id, rcni_bin, Installed};
use serde_json::{json, Value};
use std::process::{Command, Output, Stdio};

/// A network `net` on bridge `bridge` with a range set per subnet (IPv4 `a.b.c.0/24`, IPv6
/// `x:y::/64`): bridge (isGateway, ipMasq, hairpinMode, macspoofchk) with host-local → portmap
/// → firewall → tuning (MTU, so every ADD writes a backup) → bandwidth (so every ADD makes an
/// IFB), with each `(after, plugin)` of `inserts` placed after the plugin of type `after`.
pub struct Chain {
    pub inst: Installed,
    pub conf: tempfile::TempDir,
    pub leases: tempfile::TempDir,
    pub tuning: tempfile::TempDir,
    pub net: String,
    pub bridge: String,
    /// Per subnet, what its addresses start with: `a.b.c.`, `x:y::`.
    pub prefixes: Vec<String>,
    /// The network namespace the "node" is (its bridge, its nftables ruleset): `None` for the
    /// sandbox's own, else a namespace of the test's in which cnitool and `rcni gc` run.
    pub node: Option<String>,
}

impl Chain {
    pub fn new(net: &str, bridge: &str, subnets: &[&str], inserts: &[(&str, Value)]) -> Self {
        rcni_tests::require_netsandbox();
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").unwrap();
        let c = Chain {
            inst: Installed::new(),
            conf: tempfile::tempdir().unwrap(),
            leases: tempfile::tempdir().unwrap(),
            tuning: tempfile::tempdir().unwrap(),
            net: net.into(),
            bridge: bridge.into(),
            prefixes: subnets
                .iter()
                .map(|s| match s.split_once("::") {
                    Some((p, _)) => format!("{p}::"),
                    None => s.rsplit_once('.').map(|(p, _)| format!("{p}.")).unwrap(),
                })
                .collect(),
            node: None,
        };
        let ranges: Vec<Value> = subnets.iter().map(|s| json!([{"subnet": s}])).collect();
        let mut plugins = vec![json!({"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": true, "hairpinMode": true,
            "macspoofchk": true,
            "ipam": {"type": "host-local", "ranges": ranges, "routes": [{"dst": "0.0.0.0/0"}], "dataDir": c.leases.path()}})];
        plugins.extend([
            json!({"type": "portmap", "capabilities": {"portMappings": true}}),
            json!({"type": "firewall"}),
            json!({"type": "tuning", "mtu": 1400, "dataDir": c.tuning.path()}),
            json!({"type": "bandwidth", "ingressRate": 100_000_000, "ingressBurst": 1_000_000, "egressRate": 100_000_000, "egressBurst": 1_000_000}),
        ]);
        for (after, plugin) in inserts {
            let at = plugins.iter().position(|p| p["type"] == *after).expect("a plugin of that type") + 1;
            plugins.insert(at, plugin.clone());
        }
        let list = json!({"cniVersion": "1.1.0", "name": net, "plugins": plugins});
        std::fs::write(c.conf.path().join(format!("{net}.conflist")), list.to_string()).unwrap();
        c
    }

    /// `program` run on the node.
    pub fn on_node(&self, program: &std::path::Path) -> Command {
        match &self.node {
            None => Command::new(program),
            Some(n) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", n]).arg(program);
                c
            }
        }
    }

    /// `program args` run on the node; must succeed; stdout.
    fn node_ok(&self, program: &str, args: &[&str]) -> String {
        let out = self.on_node(std::path::Path::new(program)).args(args).output().unwrap();
        assert!(out.status.success(), "{program} {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `cnitool VERB NET NETNS`, publishing `host_port` (→ 80/tcp) when given.
    pub fn cnitool(&self, verb: &str, netns: &str, host_port: Option<u16>) -> Command {
        let mut c = self.on_node(&self.inst.path("cnitool"));
        c.args([verb, &self.net, netns])
            .env("NETCONFPATH", self.conf.path())
            .env("CNI_PATH", self.inst.dir.path())
            .env_remove("CNI_ARGS")
            .env_remove("CNI_IFNAME")
            .env_remove("RCNI_TEST_KILL_AT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match host_port {
            Some(p) => c.env("CAP_ARGS", json!({"portMappings": [{"hostPort": p, "containerPort": 80, "protocol": "tcp"}]}).to_string()),
            None => c.env_remove("CAP_ARGS"),
        };
        c
    }

    /// ADD; the result, or the error output.
    pub fn add(&self, netns: &str, host_port: Option<u16>) -> Result<Value, String> {
        let out = self.cnitool("add", netns, host_port).output().unwrap();
        if !out.status.success() {
            return Err(text(&out));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", text(&out)))
    }

    /// DEL (with the cached result).
    pub fn del(&self, netns: &str) -> Result<(), String> {
        let out = self.cnitool("del", netns, None).output().unwrap();
        if out.status.success() {
            Ok(())
        } else {
            Err(text(&out))
        }
    }

    /// `rcni gc` of this network.
    pub fn rcni_gc(&self, grace_period: u64) -> Output {
        self.on_node(&rcni_bin())
            .args(["gc", "--conf-dir", self.conf.path().to_str().unwrap(), "--grace-period", &grace_period.to_string(), "-n", &self.net])
            .env("CNI_PATH", self.inst.dir.path())
            .env_remove("RCNI_TEST_KILL_AT")
            .output()
            .unwrap()
    }

    /// The ports of the bridge, one line each.
    pub fn bridge_ports(&self) -> String {
        let out = self.on_node(std::path::Path::new("ip")).args(["-o", "link", "show", "master", &self.bridge]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits (up to 5 s) until the bridge has no ports: the kernel dismantles a deleted
    /// namespace, and with it the veth pair, in the background.
    pub fn await_no_ports(&self) {
        for _ in 0..50 {
            if self.bridge_ports().trim().is_empty() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Everything any attachment of this network left, as findings (empty: nothing). Only
    /// network-wide objects may stay: the bridge, host-local's lock, `last_reserved_ip` and index
    /// directory, nftables tables, chains and sets that hold no attachment.
    pub fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        let store = self.leases.path().join(&self.net);
        for e in std::fs::read_dir(&store).into_iter().flatten() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if name == "lock" || name.starts_with("last_reserved_ip.") {
                continue;
            }
            if name == ".rcni-by-id" {
                for a in std::fs::read_dir(store.join(&name)).unwrap() {
                    found.push(format!("lease index entry {:?}", a.unwrap().file_name()));
                }
                continue;
            }
            let body = std::fs::read_to_string(store.join(&name)).unwrap_or_default();
            found.push(format!("host-local file {name}: {body:?}"));
        }
        for e in std::fs::read_dir("/var/lib/cni/results").into_iter().flatten() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if name.trim_start_matches('.').starts_with(&format!("{}-", self.net)) {
                found.push(format!("cache file {name}"));
            }
        }
        for e in std::fs::read_dir(self.tuning.path()).into_iter().flatten() {
            found.push(format!("tuning file {:?}", e.unwrap().file_name()));
        }
        let owner = format!(" net={} id=", self.net);
        let ruleset = self.node_ok("nft", &["list", "ruleset"]);
        for l in ruleset.lines() {
            if l.contains(&owner) || self.host_address_in(l) {
                found.push(format!("nft: {}", l.trim()));
            }
        }
        for l in self.node_ok("ip", &["-d", "-o", "link"]).lines() {
            if l.contains(&owner) {
                found.push(format!("link: {l}"));
            }
        }
        let ports = self.bridge_ports();
        if !ports.trim().is_empty() {
            found.push(format!("bridge ports: {ports}"));
        }
        found
    }

    /// Whether `line` names an address of a subnet other than the subnet itself.
    fn host_address_in(&self, line: &str) -> bool {
        self.prefixes.iter().any(|prefix| {
            line.match_indices(prefix.as_str()).any(|(i, _)| {
                let rest = &line[i + prefix.len()..];
                let digits: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
                let before_ok = i == 0 || !line[..i].ends_with(|c: char| c.is_ascii_hexdigit() || c == '.' || c == ':');
                before_ok && !digits.is_empty() && !rest[digits.len()..].starts_with('/')
            })
        })
    }

    /// The network-wide state: the ruleset lines naming the network, its subnet or its bridge,
    /// the bridge, and host-local's store (without `last_reserved_ip`'s content). An ADD and DEL
    /// leave it as they found it.
    pub fn skeleton(&self) -> Vec<String> {
        let mut s: Vec<String> = self
            .node_ok("nft", &["list", "ruleset"])
            .lines()
            .filter(|l| l.contains(&self.net) || self.prefixes.iter().any(|p| l.contains(p.as_str())) || l.contains(&self.bridge))
            .map(|l| l.trim().to_string())
            .collect();
        s.push(self.node_ok("ip", &["-o", "link", "show", &self.bridge]).split_whitespace().take(3).collect::<Vec<_>>().join(" "));
        let mut files: Vec<String> = std::fs::read_dir(self.leases.path().join(&self.net))
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        s.extend(files.into_iter().map(|f| format!("store: {f}")));
        s
    }

    /// The container ID cnitool uses for `netns`.
    pub fn id(netns: &str) -> String {
        cnitool_id(netns)
    }
}

pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

//! `rcni attach` / `rcni detach`: the main job. Attaches a network namespace to networks from
//! the config directory (or rcni's embedded default network when it has none) through the
//! runtime library's multi-network attach, and detaches it again from what the result cache
//! records.

use clap::Args;
use cni_runtime::{conf, CniConfig, Ctx, Namespace, NetworkAttachment, NetworkLock, NetworkSet, RuntimeConf};
use cni_types::capabilities::PortMapping;
use cni_types::NetworkConfigList;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The network used when the config directory holds none: a bridge with masquerade on a private
/// /16 that avoids podman's 10.88/16 and Docker's 172.17/16, addresses from host-local, and
/// portmap for `--publish` (without mappings it touches nothing).
pub const DEFAULT_NETWORK: &str = r#"{
  "cniVersion": "1.1.0",
  "name": "rcni-default",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "rcni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.209.0.0/16"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {
      "type": "portmap",
      "capabilities": {"portMappings": true}
    }
  ]
}
"#;

pub const DEFAULT_NETWORK_NAME: &str = "rcni-default";

#[derive(Args)]
pub struct Common {
    /// Network namespace: a name under /run/netns or a path
    pub netns: String,
    /// Container ID (default: the namespace's name, or a hash of its path)
    #[arg(long)]
    pub id: Option<String>,
    #[command(flatten)]
    pub env: RuntimeEnv,
}

/// Where networks and plugins are, and how long a plugin may run (attach, detach, gc).
#[derive(Args)]
pub struct RuntimeEnv {
    /// Network configuration directory
    #[arg(long, default_value = "/etc/cni/net.d", env = "NETCONFPATH")]
    pub conf_dir: PathBuf,
    /// Plugin directories searched after rcni's own (colon separated)
    #[arg(long, env = "CNI_PATH", default_value = "/opt/cni/bin")]
    pub cni_path: String,
    /// Seconds a plugin may run before it is killed
    #[arg(long, default_value_t = 60, env = "RCNI_TIMEOUT")]
    pub timeout: u64,
}

#[derive(Args)]
pub struct AttachArgs {
    #[command(flatten)]
    pub common: Common,
    /// Attach to this network (repeatable; eth0, eth1, … in order). Default: the first network of
    /// the config directory, or rcni's default network when there is none.
    #[arg(long = "network", short = 'n')]
    pub networks: Vec<String>,
    /// Attach to every network of the config directory
    #[arg(long, conflicts_with = "networks")]
    pub all: bool,
    /// Attach networks concurrently instead of one after another
    #[arg(long)]
    pub parallel: bool,
    /// Do not bring up the loopback interface
    #[arg(long)]
    pub no_loopback: bool,
    /// Publish a container port on the node: [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp|sctp]
    /// (repeatable; an IPv6 HOST_IP in brackets). Given to every network as the `portMappings`
    /// capability, which portmap serves.
    #[arg(long = "publish", short = 'p', value_name = "[IP:]HOST:CONTAINER[/PROTO]", value_parser = parse_publish)]
    pub publish: Vec<PortMapping>,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
}

/// `[HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]`, as `docker run -p` / `nerdctl run -p` take it
/// (without port ranges).
pub fn parse_publish(s: &str) -> Result<PortMapping, String> {
    let (spec, protocol) = match s.rsplit_once('/') {
        Some((spec, p @ ("tcp" | "udp" | "sctp"))) => (spec, p),
        Some((_, p)) => return Err(format!("unknown protocol {p:?} (tcp, udp or sctp)")),
        None => (s, "tcp"),
    };
    let (host_ip, ports) = match spec.strip_prefix('[') {
        Some(rest) => {
            let (ip, ports) = rest.split_once("]:").ok_or("an IPv6 host address is written [ADDR]:HOST:CONTAINER")?;
            (ip, ports)
        }
        None => match spec.matches(':').count() {
            1 => ("", spec),
            2 => spec.split_once(':').expect("two colons"),
            _ => return Err("expected [HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]".into()),
        },
    };
    if !host_ip.is_empty() {
        host_ip.parse::<std::net::IpAddr>().map_err(|_| format!("invalid host address {host_ip:?}"))?;
    }
    let (host, container) = ports.split_once(':').ok_or("expected HOST_PORT:CONTAINER_PORT")?;
    let port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("invalid port {p:?} (1-65535)")),
    };
    Ok(PortMapping { host_port: port(host)?, container_port: port(container)?, protocol: protocol.into(), host_ip: host_ip.into() })
}

fn netns_path(netns: &str) -> PathBuf {
    if netns.contains('/') {
        PathBuf::from(netns)
    } else {
        netkit::netns::named_path(netns)
    }
}

/// The container ID for a namespace: its name when that is a valid ID, else `rcni-` and a hash
/// of its path.
pub fn container_id(netns: &str, explicit: Option<&str>) -> String {
    if let Some(id) = explicit {
        return id.to_string();
    }
    if !netns.contains('/') && cni_types::validate::container_id(netns).is_ok() {
        return netns.to_string();
    }
    netkit::owner::hashed_name("rcni-", &netns_path(netns).to_string_lossy(), "rcni-".len() + 20)
}

/// rcni's own plugin directory: where the binary is installed with its applet links, or else
/// `/run/cni/rcni-bin` with links made now.
pub fn own_plugin_dir() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    if let Some(dir) = exe.parent() {
        if crate::applets().iter().all(|a| cni_runtime::fsutil::same_file(&dir.join(a), &exe)) {
            return Ok(dir.to_path_buf());
        }
    }
    let dir = PathBuf::from("/run/cni/rcni-bin");
    std::fs::create_dir_all(&dir)?;
    for a in crate::applets() {
        let link = dir.join(a);
        if std::fs::read_link(&link).ok().as_deref() == Some(exe.as_path()) {
            continue;
        }
        let tmp = dir.join(format!(".{a}.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&exe, &tmp)?;
        std::fs::rename(&tmp, &link)?;
    }
    Ok(dir)
}

pub(crate) fn cni(env: &RuntimeEnv) -> Result<CniConfig, String> {
    let own = own_plugin_dir().map_err(|e| format!("preparing rcni's plugin directory: {e}"))?;
    let mut paths = vec![own];
    for p in cni_runtime::find::split_path_list(&env.cni_path).into_iter().chain([PathBuf::from("/opt/cni/bin")]) {
        if !paths.contains(&p) {
            paths.push(p);
        }
    }
    // rcni's own plugins run in-process, others are executed
    Ok(CniConfig::new(paths).with_exec(std::sync::Arc::new(plugins::delegate::SelfExec::default())))
}

fn load_networks(a: &AttachArgs) -> Result<Vec<NetworkConfigList>, String> {
    let dir = &a.common.env.conf_dir;
    let default = || NetworkConfigList::from_bytes(DEFAULT_NETWORK.as_bytes()).map_err(|e| e.to_string());
    if !a.networks.is_empty() {
        return a
            .networks
            .iter()
            .map(|n| match conf::load_network_conf(dir, n) {
                Ok(l) => Ok(l),
                Err(_) if n == DEFAULT_NETWORK_NAME => default(),
                Err(e) => Err(e.to_string()),
            })
            .collect();
    }
    let found = conf::load_all(dir, if a.all { 0 } else { 1 }).map_err(|e| e.to_string())?;
    if found.is_empty() {
        return Ok(vec![default()?]);
    }
    Ok(found.into_iter().map(|(_, l)| l).collect())
}

pub fn attach(a: AttachArgs) -> i32 {
    match run_attach(&a) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rcni attach: {e}");
            1
        }
    }
}

fn run_attach(a: &AttachArgs) -> Result<(), String> {
    let path = netns_path(&a.common.netns);
    netkit::NetNs::open(&path).map_err(|e| format!("{e} (create it with: rcni netns add {})", a.common.netns))?;
    let id = container_id(&a.common.netns, a.common.id.as_deref());
    let mut set = NetworkSet::new(cni(&a.common.env)?);
    if !a.no_loopback {
        set.add_loopback();
    }
    let networks = load_networks(a)?;
    if !a.publish.is_empty() && !networks.iter().any(|l| l.capabilities().iter().any(|c| c == "portMappings")) {
        let names: Vec<&str> = networks.iter().map(|l| l.name.as_str()).collect();
        return Err(format!(
            "--publish needs a network with a plugin that has the portMappings capability (e.g. portmap); {} has none",
            names.join(", ")
        ));
    }
    let _locks = lock_networks(networks.iter().map(|l| l.name.as_str()))?;
    for l in networks {
        set.add_network(l, None);
    }
    let mut ns = Namespace::new(&id, path.to_string_lossy());
    if !a.publish.is_empty() {
        ns = ns.with_port_mappings(&a.publish);
    }
    let ctx = Ctx::with_timeout(Duration::from_secs(a.common.env.timeout));
    let result = if a.parallel { set.setup_parallel(&ctx, &ns) } else { set.setup(&ctx, &ns) }.map_err(|e| e.to_string())?;
    if a.json {
        let raw: Vec<serde_json::Value> = result
            .raw
            .iter()
            .map(|(net, ifname, r)| serde_json::json!({"network": net, "ifname": ifname, "result": cni_types::CniResult::V1(r.clone()).to_value()}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"containerId": id, "netns": path, "networks": raw})).expect("JSON")
        );
        return Ok(());
    }
    for (net, ifname, r) in &result.raw {
        if ifname == "lo" {
            continue;
        }
        let mac = r.interfaces.iter().find(|i| &i.name == ifname && !i.sandbox.is_empty()).map(|i| i.mac.clone()).unwrap_or_default();
        let addrs: Vec<String> = r
            .ips
            .iter()
            .filter(|ip| ip.interface.and_then(|i| r.interfaces.get(i)).is_none_or(|i| &i.name == ifname))
            .map(|ip| match ip.gateway {
                Some(gw) => format!("{} gateway {gw}", ip.address),
                None => ip.address.to_string(),
            })
            .collect();
        println!("{ifname}: {} (network {net}{})", addrs.join(", "), if mac.is_empty() { String::new() } else { format!(", mac {mac}") });
    }
    for m in &a.publish {
        let host = match m.host_ip.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(ip)) => format!("[{ip}]:"),
            Ok(ip) => format!("{ip}:"),
            Err(_) => String::new(),
        };
        println!("published {host}{} -> {}/{}", m.host_port, m.container_port, m.protocol);
    }
    println!("container {id} in {}", path.display());
    println!("detach with: rcni detach {}", a.common.netns);
    Ok(())
}

pub fn detach(c: Common) -> i32 {
    match run_detach(&c) {
        Ok(n) => {
            if n == 0 {
                eprintln!("rcni detach: nothing attached for container {}", container_id(&c.netns, c.id.as_deref()));
            }
            0
        }
        Err(e) => {
            eprintln!("rcni detach: {e}");
            1
        }
    }
}

/// The configuration an attachment was added with: the list its cache recorded, or, when that
/// holds no inline plugins, the current list of that name.
pub(crate) fn cached_list(a: &NetworkAttachment, conf_dir: &Path) -> Result<NetworkConfigList, String> {
    match NetworkConfigList::from_bytes(&a.config) {
        Ok(l) if !l.plugins.is_empty() => Ok(l),
        _ => conf::load_network_conf(conf_dir, &a.network).map_err(|e| e.to_string()),
    }
}

/// The shared per-network locks rcni's runtime operations hold, so that `rcni gc` never judges
/// an attachment while it is being added or removed.
pub(crate) fn lock_networks<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Vec<NetworkLock>, String> {
    names
        .into_iter()
        .map(|n| NetworkLock::shared(Path::new(cni_runtime::lock::LOCK_DIR), n).map_err(|e| format!("locking network {n}: {e}")))
        .collect()
}

/// DELs every cached attachment of the container, newest interface first and `lo` last, with
/// the configuration and arguments recorded at ADD. Returns how many were detached.
fn run_detach(c: &Common) -> Result<usize, String> {
    let id = container_id(&c.netns, c.id.as_deref());
    let cni = cni(&c.env)?;
    let mut atts = cni.get_cached_attachments(&id).map_err(|e| e.to_string())?;
    atts.sort_by_key(|a| {
        (a.ifname == "lo", std::cmp::Reverse(a.ifname.trim_start_matches(|ch: char| !ch.is_ascii_digit()).parse::<u32>().unwrap_or(0)))
    });
    let ctx = Ctx::with_timeout(Duration::from_secs(c.env.timeout));
    let mut errors = Vec::new();
    let n = atts.len();
    let networks: std::collections::BTreeSet<&str> = atts.iter().map(|a| a.network.as_str()).collect();
    let _locks = lock_networks(networks)?;
    for a in &atts {
        let list = match cached_list(a, &c.env.conf_dir) {
            Ok(l) => l,
            Err(e) => {
                errors.push(format!("{} ({}): {e}", a.network, a.ifname));
                continue;
            }
        };
        let mut rt = RuntimeConf::from(a);
        if rt.netns.is_empty() {
            rt.netns = netns_path(&c.netns).to_string_lossy().into_owned();
        }
        match cni.del_network_list(&ctx, &list, &rt) {
            Ok(()) => println!("{}: detached from {}", a.ifname, a.network),
            Err(e) => errors.push(format!("{} ({}): {e}", a.network, a.ifname)),
        }
    }
    if errors.is_empty() {
        Ok(n)
    } else {
        Err(errors.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_network_parses_and_avoids_common_ranges() {
        let l = NetworkConfigList::from_bytes(DEFAULT_NETWORK.as_bytes()).unwrap();
        assert_eq!(l.name, DEFAULT_NETWORK_NAME);
        let subnet: ipnet::IpNet = l.plugins[0].conf["ipam"]["ranges"][0][0]["subnet"].as_str().unwrap().parse().unwrap();
        assert_eq!(subnet.to_string(), "10.209.0.0/16", "the README and scripts/demo show this subnet");
        for other in ["10.88.0.0/16", "172.17.0.0/16"] {
            let o: ipnet::IpNet = other.parse().unwrap();
            assert!(!subnet.contains(&o.network()) && !o.contains(&subnet.network()));
        }
    }

    #[test]
    fn publish_specs() {
        let m = parse_publish("8080:80").unwrap();
        assert_eq!((m.host_port, m.container_port, m.protocol.as_str(), m.host_ip.as_str()), (8080, 80, "tcp", ""));
        let m = parse_publish("127.0.0.1:53:5353/udp").unwrap();
        assert_eq!((m.host_port, m.container_port, m.protocol.as_str(), m.host_ip.as_str()), (53, 5353, "udp", "127.0.0.1"));
        let m = parse_publish("[fd00::1]:443:8443/sctp").unwrap();
        assert_eq!((m.host_ip.as_str(), m.protocol.as_str()), ("fd00::1", "sctp"));
        for bad in ["80", "0:80", "80:70000", "a:80", "80:80/icmp", "1.2.3:80:80", "fd00::1:80:80", "[fd00::1]80:80", "1:2:3:4"] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids() {
        assert_eq!(container_id("demo", None), "demo");
        assert_eq!(container_id("x", Some("given")), "given");
        let h = container_id("/proc/123/ns/net", None);
        assert!(h.starts_with("rcni-") && h.len() == 25);
        assert_eq!(h, container_id("/proc/123/ns/net", None));
    }
}

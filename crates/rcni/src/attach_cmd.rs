//! `rcni attach` / `rcni detach`: the main job. Attaches a network namespace to networks from
//! the config directory (or rcni's embedded default network when it has none) through the
//! runtime library's multi-network attach, and detaches it again from what the result cache
//! records.

use crate::default_network::{default_network, DEFAULT_NETWORK_NAME};
use crate::exit::{exit_code, message};
use crate::runtime_env::{cached_list, container_id, lock_container, lock_networks, netns_path, RuntimeEnv};
use clap::Args;
use cni_runtime::{conf, Namespace, NetworkSet, RuntimeConf};
use cni_types::capabilities::PortMapping;
use cni_types::NetworkConfigList;

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

#[derive(Args)]
pub struct AttachArgs {
    #[command(flatten)]
    pub common: Common,
    /// Attach to this network (repeatable; eth0, eth1, … in order). Default: the first network of
    /// the config directory that `rcni network create` did not make, or rcni's default network.
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
    /// Ask for this address (one per family; with one network): the `ips` capability, which
    /// host-local and static serve
    #[arg(long = "ip", value_name = "ADDR[/PREFIX]", value_parser = parse_ip_arg)]
    pub ips: Vec<String>,
    /// Give the interface this MAC address (with one network): the `mac` capability, which
    /// bridge and tuning serve
    #[arg(long, value_name = "MAC", value_parser = parse_mac_arg)]
    pub mac: Option<String>,
    /// Print the result as JSON
    #[arg(long)]
    pub json: bool,
    /// Report every plugin run (verb, in-process or exec, duration, kernel requests, outcome)
    /// and the total, on stderr (with --json: as the output's "trace")
    #[arg(long)]
    pub trace: bool,
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

fn parse_ip_arg(s: &str) -> Result<String, String> {
    if s.parse::<std::net::IpAddr>().is_ok() || s.parse::<ipnet::IpNet>().is_ok() {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is no address (e.g. 10.210.1.9 or 10.210.1.9/24)"))
    }
}

fn parse_mac_arg(s: &str) -> Result<String, String> {
    netkit::netlink::parse_mac(s).map(|_| s.to_lowercase()).ok_or_else(|| format!("{s:?} is no MAC address (e.g. 02:42:ac:11:00:02)"))
}

/// `--ip`/`--mac` go to the one network as capabilities; a network without a plugin that takes
/// them would silently ignore them, so that is refused.
fn check_requests(a: &AttachArgs, networks: &[NetworkConfigList]) -> Result<(), String> {
    for (asked, cap, flag) in [(!a.ips.is_empty(), "ips", "--ip"), (a.mac.is_some(), "mac", "--mac")] {
        if !asked {
            continue;
        }
        if networks.len() != 1 {
            return Err(format!("{flag} is for one network; {} are asked for (pick one with -n)", networks.len()));
        }
        if !networks[0].capabilities().iter().any(|c| c == cap) {
            return Err(format!(
                "{flag} needs a network with the {cap} capability (rcni network create's have it); network {} has none",
                networks[0].name
            ));
        }
    }
    let v4 = a.ips.iter().filter(|i| !i.contains(':')).count();
    if v4 > 1 || a.ips.len() - v4 > 1 {
        return Err("at most one --ip per address family".into());
    }
    Ok(())
}

fn load_networks(a: &AttachArgs) -> Result<Vec<NetworkConfigList>, String> {
    let dir = &a.common.env.conf_dir;
    if !a.networks.is_empty() {
        return a
            .networks
            .iter()
            .map(|n| match conf::load_network_conf(dir, n) {
                Ok(l) => Ok(l),
                Err(_) if n == DEFAULT_NETWORK_NAME => default_network(),
                Err(e) => Err(e.to_string()),
            })
            .collect();
    }
    if a.all {
        let found = conf::load_all(dir, 0).map_err(|e| e.to_string())?;
        return if found.is_empty() { Ok(vec![default_network()?]) } else { Ok(found.into_iter().map(|(_, l)| l).collect()) };
    }
    // the node's own network (the first of the directory, as containerd takes it), but not one
    // made with `rcni network create`: like docker, those are joined by name only
    for f in conf::list_networks(dir).map_err(|e| e.to_string())? {
        let made_by_rcni = std::fs::read(&f.path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v.get(crate::shared::ID_KEY).is_some());
        if made_by_rcni {
            continue;
        }
        return f.network.map(|l| vec![l]).map_err(|e| format!("failed to load CNI config file {}: {e}", f.path.display()));
    }
    Ok(vec![default_network()?])
}

pub fn attach(a: AttachArgs) -> i32 {
    exit_code("attach", run_attach(&a).map(|()| 0))
}

fn run_attach(a: &AttachArgs) -> Result<(), String> {
    let path = netns_path(&a.common.netns);
    netkit::NetNs::open(&path).map_err(|e| format!("{e} (create it with: rcni netns add {})", a.common.netns))?;
    let id = container_id(&a.common.netns, a.common.id.as_deref());
    let steps: std::sync::Arc<std::sync::Mutex<Vec<cni_runtime::trace::Step>>> = Default::default();
    let mut cni = a.common.env.cni()?;
    if a.trace {
        let sink = steps.clone();
        cni = cni.with_trace(std::sync::Arc::new(move |s: &cni_runtime::trace::Step| sink.lock().unwrap_or_else(|e| e.into_inner()).push(s.clone())));
    }
    let started = std::time::Instant::now();
    let _container = lock_container(&id)?;
    // a second ADD would fail on the interfaces the first made, and its rollback would remove
    // the first attachment (same container and interface names)
    let attached = cni.get_cached_attachments(&id).map_err(|e| e.to_string())?;
    if !attached.is_empty() {
        let mut what: Vec<String> = attached.iter().map(|a| format!("{} {}", a.network, a.ifname)).collect();
        what.sort_by_key(|w| w.ends_with(" lo"));
        return Err(format!("container {id} is already attached ({}); detach it first: {}", what.join(", "), detach_command(a)));
    }
    let mut set = NetworkSet::new(cni);
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
    check_requests(a, &networks)?;
    let _locks = lock_networks(networks.iter().map(|l| l.name.as_str()))?;
    for l in networks {
        set.add_network(l, None);
    }
    let mut ns = Namespace::new(&id, path.to_string_lossy());
    if !a.publish.is_empty() {
        ns = ns.with_port_mappings(&a.publish);
    }
    if !a.ips.is_empty() {
        ns = ns.with_capability("ips", serde_json::json!(a.ips));
    }
    if let Some(mac) = &a.mac {
        ns = ns.with_capability("mac", serde_json::json!(mac));
    }
    let ctx = a.common.env.ctx();
    let result = if a.parallel { set.setup_parallel(&ctx, &ns) } else { set.setup(&ctx, &ns) };
    let total = started.elapsed();
    let steps = std::mem::take(&mut *steps.lock().unwrap_or_else(|e| e.into_inner()));
    if a.trace && !a.json {
        for s in &steps {
            eprintln!("{}", cni_runtime::trace::to_text(s));
        }
        eprintln!("trace: total {:.3} ms for {} plugin runs", total.as_secs_f64() * 1e3, steps.len());
    }
    let result = result.map_err(|e| e.to_string())?;
    if a.json {
        let raw: Vec<serde_json::Value> = result
            .raw
            .iter()
            .map(|(net, ifname, r)| serde_json::json!({"network": net, "ifname": ifname, "result": cni_types::CniResult::V1(r.clone()).to_value()}))
            .collect();
        let mut out = serde_json::json!({"containerId": id, "netns": path, "networks": raw});
        if a.trace {
            out["trace"] = serde_json::json!({
                "steps": steps.iter().map(cni_runtime::trace::to_json).collect::<Vec<_>>(),
                "totalMs": (total.as_secs_f64() * 1e6).round() / 1e3,
            });
        }
        println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
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
    println!("detach with: {}", detach_command(a));
    Ok(())
}

/// How to detach what `a` attaches.
fn detach_command(a: &AttachArgs) -> String {
    match &a.common.id {
        Some(id) => format!("rcni detach {} --id {id}", a.common.netns),
        None => format!("rcni detach {}", a.common.netns),
    }
}

pub fn detach(c: Common) -> i32 {
    let outcome = run_detach(&c).map(|n| {
        if n == 0 {
            message("detach", format_args!("nothing attached for container {}", container_id(&c.netns, c.id.as_deref())));
        }
        0
    });
    exit_code("detach", outcome)
}

/// DELs every cached attachment of the container, newest interface first and `lo` last, with
/// the configuration and arguments recorded at ADD. Returns how many were detached.
fn run_detach(c: &Common) -> Result<usize, String> {
    let id = container_id(&c.netns, c.id.as_deref());
    let cni = c.env.cni()?;
    let _container = lock_container(&id)?;
    let mut atts = cni.get_cached_attachments(&id).map_err(|e| e.to_string())?;
    atts.sort_by_key(|a| {
        (a.ifname == "lo", std::cmp::Reverse(a.ifname.trim_start_matches(|ch: char| !ch.is_ascii_digit()).parse::<u32>().unwrap_or(0)))
    });
    let ctx = c.env.ctx();
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
}

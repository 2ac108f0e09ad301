//! `rcni attach` / `rcni detach`: the main job. Attaches a network namespace to networks from
//! the config directory (or rcni's embedded default network when it has none) through the
//! runtime library's multi-network attach, and detaches it again from what the result cache
//! records.

use crate::attaching;
use crate::exit::{exit_code, message};
use crate::runtime_env::{container_id, lock_container, netns_path, select_networks, RuntimeEnv};
use crate::shared::parse_publish;
use clap::Args;
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
        cni = cni.with_trace(std::sync::Arc::new(move |s: &cni_runtime::trace::Step| {
            sink.lock().unwrap_or_else(|e| e.into_inner()).push(s.clone())
        }));
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
    let networks = select_networks(&a.common.env.conf_dir, &a.networks, a.all)?;
    check_requests(a, &networks)?;
    let mut capabilities = Vec::new();
    if !a.ips.is_empty() {
        capabilities.push(("ips", serde_json::json!(a.ips)));
    }
    if let Some(mac) = &a.mac {
        capabilities.push(("mac", serde_json::json!(mac)));
    }
    let request = attaching::Request {
        id: &id,
        netns: &path,
        networks,
        loopback: !a.no_loopback,
        publish: &a.publish,
        capabilities,
        parallel: a.parallel,
    };
    let result = attaching::attach(cni, &a.common.env.ctx(), request);
    let total = started.elapsed();
    let steps = std::mem::take(&mut *steps.lock().unwrap_or_else(|e| e.into_inner()));
    if a.trace && !a.json {
        for s in &steps {
            eprintln!("{}", cni_runtime::trace::to_text(s));
        }
        eprintln!("trace: total {:.3} ms for {} plugin runs", total.as_secs_f64() * 1e3, steps.len());
    }
    let result = result?;
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

/// DELs every cached attachment of the container (see `attaching::detach`); returns how many
/// were detached.
fn run_detach(c: &Common) -> Result<usize, String> {
    let id = container_id(&c.netns, c.id.as_deref());
    let cni = c.env.cni()?;
    let _container = lock_container(&id)?;
    let fallback = netns_path(&c.netns).to_string_lossy().into_owned();
    let netns = |a: &cni_runtime::NetworkAttachment| if a.netns.is_empty() { fallback.clone() } else { a.netns.clone() };
    let done = attaching::detach(&c.env, &cni, &id, &netns)?;
    let mut errors = Vec::new();
    for d in &done {
        match &d.outcome {
            Ok(()) => println!("{}: detached from {}", d.ifname, d.network),
            Err(e) => errors.push(format!("{} ({}): {e}", d.network, d.ifname)),
        }
    }
    if errors.is_empty() {
        Ok(done.len())
    } else {
        Err(errors.join("\n"))
    }
}

//! `rcni network create|ls|inspect|rm|prune`: networks made by name, as docker and nerdctl users
//! know them, kept as standard conflists in the config directory that any CNI runtime uses.
//!
//! A network rcni made carries `rcniID` (and `rcniLabels`, `rcniOptions`) at the top of its
//! conflist; `ls`, `inspect` and `rm` show and remove any tool's networks too, `prune` only
//! rcni's. Creates and removals of one config directory are serialised by an `flock` on
//! `<dir>/.rcni.lock`, so two creates never pick the same subnet or file.

mod plan;
mod remove;
mod show;

pub use plan::{CreateOpts, Driver};

use crate::exit::exit_code;
use clap::{Args, Subcommand};
use cni_runtime::conf::{self, NetworkFile};
use cni_runtime::fsutil::{lock_bounded, LockMode, Placement};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Args, Clone)]
pub struct Dir {
    /// Network configuration directory
    #[arg(long, default_value = "/etc/cni/net.d", env = "NETCONFPATH")]
    pub conf_dir: PathBuf,
}

#[derive(Subcommand)]
pub enum NetworkCmd {
    /// Create a network (a conflist in the config directory; a free subnet when none is given)
    Create(CreateArgs),
    /// List the networks of the config directory
    #[command(alias = "list")]
    Ls(show::LsArgs),
    /// Show networks in detail, with their attachments (a JSON array)
    Inspect(show::InspectArgs),
    /// Remove networks, and what they left on the node
    #[command(alias = "remove")]
    Rm(remove::RmArgs),
    /// Remove every network rcni created that has no attachment
    Prune(remove::PruneArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// The network's name
    pub name: String,
    #[arg(long, short = 'd', value_enum, default_value = "bridge")]
    pub driver: Driver,
    /// Subnet (one per address family; default: the first free /24 of 10.210.0.0/16)
    #[arg(long)]
    pub subnet: Vec<String>,
    /// Gateway (one per address family; default: the subnet's first address)
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Hand out addresses from this part of the subnet only
    #[arg(long)]
    pub ip_range: Option<String>,
    /// Dual-stack: an IPv6 subnet too (the --subnet given, or a ULA /64)
    #[arg(long)]
    pub ipv6: bool,
    /// No masquerade, no default route, no published ports
    #[arg(long)]
    pub internal: bool,
    /// KEY=VALUE kept with the network (repeatable)
    #[arg(long, value_parser = key_value)]
    pub label: Vec<(String, String)>,
    /// Driver option KEY=VALUE: mtu, bridge, ip-masq, icc; parent, mode (macvlan, ipvlan)
    #[arg(long = "opt", short = 'o', value_parser = key_value)]
    pub opt: Vec<(String, String)>,
    /// cniVersion of the conflist: 1.0.0 (containerd 1.6, podman 4, Go's cnitool) or 1.1.0 (GC,
    /// STATUS)
    #[arg(long, default_value = "1.0.0")]
    pub cni_version: String,
    #[command(flatten)]
    pub dir: Dir,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?}: expected KEY=VALUE")),
    }
}

pub fn run(cmd: NetworkCmd) -> i32 {
    match cmd {
        NetworkCmd::Create(a) => exit_code("network create", create(&a)),
        NetworkCmd::Ls(a) => exit_code("network ls", show::ls(&a)),
        NetworkCmd::Inspect(a) => exit_code("network inspect", show::inspect(&a)),
        NetworkCmd::Rm(a) => exit_code("network rm", remove::rm(&a)),
        NetworkCmd::Prune(a) => exit_code("network prune", remove::prune(&a)),
    }
}

/// The lock of a config directory's network changes (created with it if missing).
pub(crate) fn lock_dir(dir: &Path) -> Result<std::fs::File, String> {
    cni_runtime::fsutil::create_dir_all_mode(dir, conf::CONF_DIR_MODE).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let path = dir.join(".rcni.lock");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    lock_bounded(&f, LockMode::Exclusive).map_err(|e| format!("locking {}: {e}", path.display()))?;
    Ok(f)
}

use std::os::unix::fs::OpenOptionsExt;

/// The networks of a directory, loudly: a directory that cannot be read is an error.
pub(crate) fn networks(dir: &Path) -> Result<Vec<NetworkFile>, String> {
    conf::list_networks(dir).map_err(|e| format!("reading {}: {e}", dir.display()))
}

/// The prefixes a new network must not overlap: every subnet of the directory's networks, and
/// the node's addresses and routes (default routes, link-local and multicast aside).
fn taken(files: &[NetworkFile]) -> Result<Vec<plan::Taken>, String> {
    let mut out = Vec::new();
    for f in files {
        let Ok(bytes) = std::fs::read(&f.path) else { continue };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else { continue };
        let name = f.name.clone().unwrap_or_else(|| "?".into());
        for net in crate::shared::subnets_of(&v) {
            out.push(plan::Taken { net, what: format!("network {name} ({})", f.path.display()) });
        }
    }
    let mut nl = netkit::Netlink::new().map_err(|e| format!("reading the node's addresses: {e}"))?;
    let plain = |n: &ipnet::IpNet| match n.addr() {
        std::net::IpAddr::V4(a) => !a.is_loopback() && !a.is_link_local() && !a.is_multicast(),
        std::net::IpAddr::V6(a) => !a.is_loopback() && !a.is_multicast() && (a.segments()[0] & 0xffc0) != 0xfe80,
    };
    for a in nl.addrs(None, None).map_err(|e| format!("reading the node's addresses: {e}"))? {
        let net = a.addr.trunc();
        if plain(&net) {
            out.push(plan::Taken { net, what: format!("address {} on the node", a.addr) });
        }
    }
    for v6 in [false, true] {
        for r in nl.routes(v6, None).map_err(|e| format!("reading the node's routes: {e}"))? {
            if r.dst.prefix_len() > 0 && r.kind == 1 && plain(&r.dst) {
                out.push(plan::Taken { net: r.dst, what: format!("route {} on the node", r.dst) });
            }
        }
    }
    Ok(out)
}

fn create(a: &CreateArgs) -> Result<i32, String> {
    let dir = &a.dir.conf_dir;
    let _lock = lock_dir(dir)?;
    let files = networks(dir)?;
    if let Some(f) = files.iter().find(|f| f.name.as_deref() == Some(a.name.as_str())) {
        return Err(format!("network {:?} already exists ({}); rcni network rm {} removes it", a.name, f.path.display(), a.name));
    }
    let opts = CreateOpts {
        name: a.name.clone(),
        driver: a.driver,
        subnets: a.subnet.clone(),
        gateways: a.gateway.clone(),
        ip_range: a.ip_range.clone(),
        ipv6: a.ipv6,
        internal: a.internal,
        labels: a.label.iter().cloned().collect::<BTreeMap<_, _>>(),
        options: a.opt.iter().cloned().collect::<BTreeMap<_, _>>(),
        cni_version: a.cni_version.clone(),
    };
    let p = plan::plan(&opts, &taken(&files)?)?;
    let list = cni_types::NetworkConfigList::from_bytes(&serde_json::to_vec(&p.conflist).expect("JSON"))
        .map_err(|e| format!("the planned conflist does not load: {e}"))?;
    let path = conf::write_conflist(dir, &p.file_name, &list, Placement::CreateNew).map_err(|e| {
        if e.io_kind() == Some(std::io::ErrorKind::AlreadyExists) {
            format!(
                "{} already exists (a network of another name in a file of this one's); remove it or pick another name",
                dir.join(&p.file_name).display()
            )
        } else {
            e.to_string()
        }
    })?;
    let subnets: Vec<String> = p.subnets.iter().map(|s| s.to_string()).collect();
    eprintln!("created network {} ({}) in {}", a.name, subnets.join(", "), path.display());
    println!("{}", &p.id[..12]);
    Ok(0)
}

//! Attaching a container to networks, and detaching it from what the result cache records: the
//! core that `rcni attach`/`detach` and the OCI hook (`rcni oci-hook`) share. Callers hold the
//! container's lock (`runtime_env::lock_container`); the network locks are taken here.

use crate::runtime_env::{cached_list, lock_networks, RuntimeEnv};
use cni_runtime::{AttachResult, CniConfig, Ctx, Namespace, NetworkAttachment, NetworkSet, RuntimeConf};
use cni_types::capabilities::PortMapping;
use cni_types::NetworkConfigList;
use std::path::Path;

/// What to attach: a container's namespace to networks (`eth0`, `eth1`, … in order).
pub struct Request<'a> {
    pub id: &'a str,
    pub netns: &'a Path,
    pub networks: Vec<NetworkConfigList>,
    /// Bring up `lo` too.
    pub loopback: bool,
    /// Published ports: the `portMappings` capability, given to every network.
    pub publish: &'a [PortMapping],
    /// More capability arguments (`ips`, `mac`, …).
    pub capabilities: Vec<(&'static str, serde_json::Value)>,
    /// Attach the networks concurrently.
    pub parallel: bool,
}

/// Attaches; on failure the runtime library has rolled back what was attached.
pub fn attach(cni: CniConfig, ctx: &Ctx, req: Request) -> Result<AttachResult, String> {
    if !req.publish.is_empty() && !req.networks.iter().any(|l| l.capabilities().iter().any(|c| c == "portMappings")) {
        let names: Vec<&str> = req.networks.iter().map(|l| l.name.as_str()).collect();
        return Err(format!(
            "publishing ports needs a network with a plugin that has the portMappings capability (e.g. portmap); {} has none",
            names.join(", ")
        ));
    }
    let _locks = lock_networks(req.networks.iter().map(|l| l.name.as_str()))?;
    let mut set = NetworkSet::new(cni);
    if req.loopback {
        set.add_loopback();
    }
    for l in req.networks {
        set.add_network(l, None);
    }
    let mut ns = Namespace::new(req.id, req.netns.to_string_lossy());
    if !req.publish.is_empty() {
        ns = ns.with_port_mappings(req.publish);
    }
    for (cap, value) in req.capabilities {
        ns = ns.with_capability(cap, value);
    }
    let result = if req.parallel { set.setup_parallel(ctx, &ns) } else { set.setup(ctx, &ns) };
    result.map_err(|e| e.to_string())
}

/// One cached attachment and how its DEL went.
pub struct Detached {
    pub network: String,
    pub ifname: String,
    pub outcome: Result<(), String>,
}

/// DELs every cached attachment of container `id`, newest interface first and `lo` last, with
/// the configuration and arguments recorded at ADD; `netns` says which namespace path each DEL
/// is given (from the cached one: keep it, or "" when that path may now name another
/// namespace). Errors of one attachment do not stop the others.
pub fn detach(env: &RuntimeEnv, cni: &CniConfig, id: &str, netns: &dyn Fn(&NetworkAttachment) -> String) -> Result<Vec<Detached>, String> {
    let mut atts = cni.get_cached_attachments(id).map_err(|e| e.to_string())?;
    atts.sort_by_key(|a| {
        (a.ifname == "lo", std::cmp::Reverse(a.ifname.trim_start_matches(|ch: char| !ch.is_ascii_digit()).parse::<u32>().unwrap_or(0)))
    });
    let networks: std::collections::BTreeSet<&str> = atts.iter().map(|a| a.network.as_str()).collect();
    let _locks = lock_networks(networks)?;
    let ctx = env.ctx();
    let mut done = Vec::new();
    for a in &atts {
        let outcome = cached_list(a, &env.conf_dir).and_then(|list| {
            let mut rt = RuntimeConf::from(a);
            rt.netns = netns(a);
            cni.del_network_list(&ctx, &list, &rt).map_err(|e| e.to_string())
        });
        done.push(Detached { network: a.network.clone(), ifname: a.ifname.clone(), outcome });
    }
    Ok(done)
}

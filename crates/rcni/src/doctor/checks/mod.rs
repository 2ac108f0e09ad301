//! The checks: pure functions from [`Facts`] to findings, one module per area.

mod config;
mod leftovers;
mod node;
mod permissions;

use super::facts::{Facts, Network};
use super::{Finding, Severity};

/// The `check` names of the findings (stable: `--format json` shows them).
pub mod id {
    pub const CONFIG: &str = "config";
    pub const PLUGINS: &str = "plugins";
    pub const SUBNETS: &str = "subnets";
    pub const FORWARDING: &str = "forwarding";
    pub const NFTABLES: &str = "nftables";
    pub const ATTACHMENTS: &str = "attachments";
    pub const LEASES: &str = "leases";
    pub const NFT_OBJECTS: &str = "nftables-objects";
    pub const IFBS: &str = "ifbs";
    pub const VETHS: &str = "veths";
    pub const PERMISSIONS: &str = "permissions";
}

/// Every check's findings, in check order.
pub fn all(f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(config::files(f));
    out.extend(config::plugins(f));
    out.extend(node::subnets(f));
    out.extend(node::forwarding(f));
    out.extend(node::nftables(f));
    out.extend(leftovers::attachments(f));
    out.extend(leftovers::leases(f));
    out.extend(leftovers::nft_objects(f));
    out.extend(leftovers::fileless_networks(f));
    out.extend(leftovers::links(f));
    out.extend(permissions::modes(f));
    if let Some(first) = f.unreadable.first() {
        let what = match f.unreadable.len() {
            1 => format!("could not check {first}"),
            n => format!("could not check {n} paths, e.g. {first}"),
        };
        out.push(finding(Severity::Warning, id::PERMISSIONS, what, Some("run rcni doctor as root".into())));
    }
    out
}

fn finding(severity: Severity, check: &'static str, what: String, fix: Option<String>) -> Finding {
    Finding { severity, check, what, fix }
}

/// The networks the checks judge: those of the directory that loaders use, and rcni's
/// default network while it has attachments.
fn networks_in_use(f: &Facts) -> Vec<&Network> {
    f.effective_networks().into_iter().filter(|n| n.origin != super::facts::Origin::Default || f.in_use(&n.name)).collect()
}

/// `rcni <cmd>`, with `--conf-dir` when the doctor looked at another directory than the
/// default, so the command works as printed.
fn rcni(f: &Facts, cmd: &str) -> String {
    if f.conf_dir.as_os_str().is_empty() || f.conf_dir == std::path::Path::new(super::DEFAULT_CONF_DIR) {
        format!("rcni {cmd}")
    } else {
        format!("rcni {cmd} --conf-dir {}", f.conf_dir.display())
    }
}

/// A string value or a boolean string (`"true"`), as the reference's plugins read flags.
fn flag(v: &serde_json::Value, key: &str) -> bool {
    match v.get(key) {
        Some(serde_json::Value::Bool(b)) => *b,
        Some(serde_json::Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// "a, b and c".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
pub(super) mod testing {
    //! Facts for the checks' tests.
    use super::super::facts::*;
    use serde_json::{json, Value};
    use std::path::PathBuf;

    /// A network from a file of `/etc/cni/net.d`, its plugins from the JSON.
    pub fn network(file: &str, list: Value) -> Network {
        let plugins = list["plugins"].as_array().cloned().unwrap_or_else(|| vec![list.clone()]);
        Network {
            name: list["name"].as_str().unwrap_or_default().into(),
            origin: Origin::File(PathBuf::from("/etc/cni/net.d").join(file)),
            cni_version: list["cniVersion"].as_str().unwrap_or_default().into(),
            disable_gc: false,
            plugins,
            raw: list,
        }
    }

    /// A bridge network with host-local on `subnet`, of cniVersion `version`.
    pub fn bridge(name: &str, subnet: &str, version: &str) -> Network {
        network(
            &format!("{name}.conflist"),
            json!({"cniVersion": version, "name": name, "plugins": [
                {"type": "bridge", "bridge": format!("br-{name}"), "isGateway": true, "ipMasq": true,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]]}},
                {"type": "portmap", "capabilities": {"portMappings": true}}]}),
        )
    }

    /// Facts of a node with these networks, a readable cache and nftables, nothing else.
    pub fn node(networks: Vec<Network>) -> Facts {
        let files = networks
            .iter()
            .filter_map(|n| match &n.origin {
                Origin::File(p) => Some(ConfFile { path: p.clone(), name: Some(n.name.clone()), error: None }),
                Origin::Default => None,
            })
            .collect();
        Facts {
            conf_dir: PathBuf::from("/etc/cni/net.d"),
            files,
            networks,
            cni_path: vec![PathBuf::from("/opt/cni/bin")],
            nft: Ok(Vec::new()),
            cache: Ok(Vec::new()),
            links: Ok(Vec::new()),
            forwarding: Forwarding { v4: Some(true), v6: Some(true) },
            ..Default::default()
        }
    }

    pub fn attachment(network: &str, id: &str, ifname: &str) -> CachedAttachment {
        CachedAttachment {
            network: network.into(),
            container_id: id.into(),
            ifname: ifname.into(),
            netns: format!("/run/netns/{id}"),
            netns_exists: Some(true),
            age: Some(std::time::Duration::from_secs(3600)),
            host_ifaces: vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn fixes_name_the_config_dir_unless_default() {
        let mut f = node(vec![]);
        assert_eq!(rcni(&f, "gc"), "rcni gc");
        f.conf_dir = "/tmp/x".into();
        assert_eq!(rcni(&f, "gc"), "rcni gc --conf-dir /tmp/x");
        assert_eq!(and_list(&["a".into(), "b".into(), "c".into()]), "a, b and c");
        assert_eq!(and_list(&["a".into()]), "a");
    }
}

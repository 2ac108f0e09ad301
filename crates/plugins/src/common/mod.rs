//! What several plugins share, in one home (plugins never import each other): the rollback
//! guard of a partial ADD ([`Rollback`]), opening the container's namespace, the IPAM step, the
//! `ipMasq`/`mtu` keys, and the life of a veth attachment that bridge and ptp have in common
//! ([`veth`]: masquerade, DEL, CHECK of addresses and routes, GC, STATUS), and the life of a
//! container link on a master that macvlan, ipvlan, vlan and dummy share ([`link`]).

pub mod link;
pub mod rollback;
pub mod veth;

pub use rollback::Rollback;

use crate::delegate;
use cni_plugin::CmdArgs;
use cni_types::result::Result100;
use cni_types::CniError;
use netkit::{NetNs, Netlink};
use serde::Deserialize;

/// What a DEL reads of its config. DEL after any failed ADD must succeed, and an ADD was refused
/// for any key of the wrong type or with a bad value, so DEL reads only the network's name and
/// the keys that tell what an ADD may have made, and a key it cannot read counts as absent.
pub struct DelConf {
    pub name: String,
    raw: serde_json::Map<String, serde_json::Value>,
    /// prevResult, when the config has one that reads.
    pub prev: Option<Result100>,
}

impl DelConf {
    /// Fails only when the config is no JSON object with a name (the SDK has refused that already).
    pub fn read(args: &CmdArgs) -> Result<DelConf, CniError> {
        let raw: serde_json::Map<String, serde_json::Value> = args.conf()?;
        let name = raw.get("name").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        if name.is_empty() {
            return Err(CniError::invalid_config("missing network name"));
        }
        let prev = args.net_conf().ok().and_then(|n| args.prev_result_hint(&n));
        Ok(DelConf { name, raw, prev })
    }

    /// A boolean key: true only when it is `true`.
    pub fn flag(&self, key: &str) -> bool {
        self.raw.get(key).and_then(|v| v.as_bool()).unwrap_or(false)
    }

    /// A string key.
    pub fn string(&self, key: &str) -> Option<&str> {
        self.raw.get(key).and_then(|v| v.as_str()).filter(|s| !s.is_empty())
    }

    /// A non-negative integer key.
    pub fn uint(&self, key: &str) -> Option<u64> {
        self.raw.get(key).and_then(|v| v.as_u64())
    }

    /// `ipam.type`, when it is a string.
    pub fn ipam_type(&self) -> Option<&str> {
        self.raw.get("ipam").and_then(|i| i.get("type")).and_then(|t| t.as_str()).filter(|t| !t.is_empty())
    }

    /// prevResult's addresses (DEL's hint for finding objects by address).
    pub fn hint(&self) -> Vec<std::net::IpAddr> {
        self.prev.iter().flat_map(|p| p.ips.iter().map(|i| i.address.addr())).collect()
    }
}

/// The container's namespace; a path that does not open is the reference's error.
pub fn open_netns(netns: &str) -> Result<NetNs, CniError> {
    NetNs::open(netns).map_err(|e| CniError::internal(format!("failed to open netns {netns:?}: {e}")))
}

/// The container's namespace and a netlink socket inside it.
pub fn open_container(netns: &str) -> Result<(NetNs, Netlink), CniError> {
    let ns = open_netns(netns)?;
    let nl = Netlink::open_in(&ns)?;
    Ok((ns, nl))
}

/// ADD refuses an `ifname` the container already has (the reference's text).
pub fn ensure_ifname_free(cont: &mut Netlink, ifname: &str) -> Result<(), CniError> {
    match cont.link_by_name(ifname) {
        Ok(_) => Err(CniError::internal(format!("container veth name ({ifname:?}) already exists"))),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// IPAM ADD through `CNI_PATH`, in the current version; a result without addresses is the
/// reference's error.
pub fn ipam_add(ipam_type: &str, args: &CmdArgs) -> Result<Result100, CniError> {
    let r = delegate::add(ipam_type, args)?.to_current().map_err(|e| CniError::decoding(e.to_string()))?;
    if r.ips.is_empty() {
        return Err(CniError::internal("IPAM plugin returned missing IP config"));
    }
    Ok(r)
}

/// IPAM for a plugin's one container interface (`result.interfaces[0]`, as host-device and tap
/// make it): the lease (undone by `rb` if a later step fails), its addresses, routes and DNS on
/// interface 0, the interface configured in the container, then the network's own `dns`.
pub fn ipam_onto_interface(
    rb: &mut Rollback<'_>,
    ipam: &str,
    args: &CmdArgs,
    cont: &mut Netlink,
    cont_ns: &NetNs,
    result: &mut Result100,
    net: &cni_types::NetConf,
) -> Result<(), CniError> {
    let (t, a) = (ipam.to_string(), args.clone());
    rb.push("the IPAM lease", move || delegate::del(&t, &a));
    let r = ipam_add(ipam, args)?;
    result.ips = r.ips;
    result.routes = r.routes;
    result.dns = r.dns;
    for ipc in &mut result.ips {
        ipc.interface = Some(0);
    }
    netkit::iface::configure_iface(cont, cont_ns, &args.ifname, result, netkit::iface::ConfigureOpts::default())?;
    apply_dns(result, net);
    Ok(())
}

/// The MAC asked for, as macvlan and tap take it: the config's key (`mac`), then `CNI_ARGS`
/// `MAC=`, then `runtimeConfig.mac` — the later wins. Unparsed: each plugin words its own error.
pub fn requested_mac(key: &str, args: &CmdArgs, net: &cni_types::NetConf) -> Result<Option<String>, CniError> {
    let mut mac = Some(key.to_string()).filter(|m| !m.is_empty());
    if let Some(m) = args.cni_args(&["MAC"])?.get("MAC").filter(|m| !m.is_empty()) {
        mac = Some(m.to_string());
    }
    if !net.runtime_config.mac.is_empty() {
        mac = Some(net.runtime_config.mac.clone());
    }
    Ok(mac)
}

/// The `ipam` section's `type`, if there is one.
pub fn ipam_type(net: &cni_types::NetConf) -> Option<String> {
    net.ipam.as_ref().map(|i| i.ipam_type.clone()).filter(|t| !t.is_empty())
}

/// `ipMasq` and `ipMasqBackend`, as bridge and ptp take them (flattened into their configs).
#[derive(Debug, Default, Deserialize)]
pub struct MasqKeys {
    #[serde(rename = "ipMasq", default)]
    pub ip_masq: bool,
    /// Accepted as the reference's; rcni always programs nftables.
    #[serde(rename = "ipMasqBackend", default)]
    pub ip_masq_backend: Option<String>,
}

impl MasqKeys {
    /// An unknown backend is code 2 naming the key.
    pub fn check(&self) -> Result<(), CniError> {
        backend_key("ipMasqBackend", self.ip_masq_backend.as_deref())
    }
}

/// A `backend`-like key that takes the reference's `iptables` or `nftables` (rcni programs
/// nftables either way): anything else is code 2 naming the key.
pub fn backend_key(key: &str, value: Option<&str>) -> Result<(), CniError> {
    match value {
        None | Some("") | Some("nftables") | Some("iptables") => Ok(()),
        Some(other) => Err(CniError::unsupported_field(key, format!("unknown backend {other:?} (iptables or nftables)"))),
    }
}

/// `mtu`: 0 (the default) leaves the kernel's; more than 65535 or negative is invalid.
pub fn mtu(value: i64) -> Result<Option<u32>, CniError> {
    if !(0..=65535).contains(&value) {
        return Err(CniError::invalid_config(format!("invalid MTU {value}")));
    }
    Ok((value > 0).then_some(value as u32))
}

/// The network's own `dns` replaces what IPAM returned, when given.
pub fn apply_dns(result: &mut Result100, net: &cni_types::NetConf) {
    if !net.dns.is_empty() {
        result.dns = net.dns.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(mtu(0).unwrap(), None);
        assert_eq!(mtu(1500).unwrap(), Some(1500));
        assert_eq!(mtu(65536).unwrap_err().code, 7);
        assert_eq!(mtu(-1).unwrap_err().code, 7);
        let m: MasqKeys = serde_json::from_str(r#"{"ipMasq": true, "ipMasqBackend": "firewalld"}"#).unwrap();
        assert!(m.ip_masq);
        let e = m.check().unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.msg.contains("ipMasqBackend"), "{e:?}");
        assert!(MasqKeys::default().check().is_ok());
        assert!(backend_key("backend", Some("iptables")).is_ok());
    }
}

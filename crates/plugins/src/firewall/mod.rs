//! firewall: accepts forwarded traffic to and from the container's addresses (chained after an
//! interface plugin), and applies an ingress policy to its bridge.
//!
//! Keys (as the reference): `backend`, `iptablesAdminChainName`, `firewalldZone`,
//! `ingressPolicy` (`open` (default, also ""), `same-bridge`, `isolated`; the bridge is
//! prevResult's first interface). Spec versions 0.4.0 and later, as the reference.
//!
//! Backends:
//! - `nftables` (rcni's default; the reference has none): its own table `inet rcni_firewall`,
//!   see [`nftables`]; operators put their own rules in chain `admin` there.
//! - `iptables` (opt-in): the reference's exact rules in table `filter` (`CNI-FORWARD`, the
//!   admin chain `iptablesAdminChainName`, default `CNI-ADMIN`, and for the ingress policies
//!   `CNI-ISOLATION-STAGE-1/2`), see [`iptables`]: one `iptables-restore` (and one
//!   `ip6tables-restore` with IPv6 addresses) per call. Use it where iptables' FORWARD policy
//!   is DROP: an nftables accept cannot override that.
//! - `firewalld` is refused with code 2 naming the key: firewalld over D-Bus is not implemented.
//!
//! ADD needs prevResult and returns it. DEL never fails on missing state: with nftables it
//! removes the attachment's addresses (by owner; prevResult only speeds it up) and its bridge's
//! isolation rules with the bridge's last container; with iptables it removes the rules of
//! prevResult's addresses (without prevResult there is nothing to find: the reference's rules
//! name no owner) and, as the reference, leaves the chains and isolation rules. CHECK: every
//! prevResult address is accepted (for this attachment, with nftables).

use cni_plugin::{CmdArgs, Plugin};
use cni_types::{CniError, CniResult, NetConf};
use netkit::nft;
use netkit::owner::Owner;
use serde::Deserialize;
use std::net::IpAddr;

pub mod iptables;
pub mod nftables;

pub struct Firewall;

/// ingressPolicy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    Open,
    SameBridge,
    Isolated,
}

#[derive(Debug, Deserialize)]
struct Conf {
    #[serde(flatten)]
    net: NetConf,
    #[serde(default)]
    backend: Option<String>,
    #[serde(rename = "iptablesAdminChainName", default)]
    admin_chain: Option<String>,
    #[serde(rename = "firewalldZone", default)]
    _zone: Option<String>,
    #[serde(rename = "ingressPolicy", default)]
    ingress_policy: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Backend {
    Nftables,
    /// With the admin chain's name.
    Iptables(String),
}

fn backend(c: &Conf) -> Result<Backend, CniError> {
    match c.backend.as_deref() {
        None | Some("") | Some("nftables") => Ok(Backend::Nftables),
        Some("iptables") => {
            let admin = c.admin_chain.as_deref().filter(|a| !a.is_empty()).unwrap_or(iptables::DEFAULT_ADMIN_CHAIN);
            iptables::check_chain_name(admin).map_err(|e| CniError::invalid_config(format!("iptablesAdminChainName: {e}")))?;
            Ok(Backend::Iptables(admin.to_string()))
        }
        Some("firewalld") => Err(CniError::unsupported_field(
            "backend",
            "rcni's firewall does not implement firewalld (over D-Bus); use \"nftables\" (the default) or \"iptables\"",
        )),
        Some(other) => Err(CniError::unsupported_field("backend", format!("unknown firewall backend {other:?}"))),
    }
}

fn load(args: &CmdArgs) -> Result<(Conf, Backend, Ingress), CniError> {
    let c: Conf = args.conf()?;
    let backend = backend(&c)?;
    let policy = match c.ingress_policy.as_deref() {
        None | Some("") | Some("open") => Ingress::Open,
        Some("same-bridge") => Ingress::SameBridge,
        Some("isolated") => Ingress::Isolated,
        Some(other) => return Err(CniError::invalid_config(format!("unknown ingress policy: {other:?}"))),
    };
    Ok((c, backend, policy))
}

fn owner(args: &CmdArgs, c: &Conf) -> Owner {
    Owner::new(&c.net.name, &args.container_id, &args.ifname)
}

impl Plugin for Firewall {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let (c, backend, policy) = load(args)?;
        let (prev_raw, prev) = args.required_prev_result(&c.net, "missing prevResult from earlier plugin")?;
        let bridge = prev.interfaces.first().map(|i| i.name.clone()).unwrap_or_default();
        if policy != Ingress::Open && bridge.is_empty() {
            return Err(CniError::invalid_config(
                "ingressPolicy needs the bridge as prevResult's first interface, and prevResult has none",
            ));
        }
        let addrs: Vec<IpAddr> = prev.ips.iter().map(|i| i.address.addr()).collect();
        if addrs.is_empty() && (policy == Ingress::Open || matches!(backend, Backend::Iptables(_))) {
            // (the reference's ingress policy, too, works in the families of the addresses)
            return Ok(prev_raw);
        }
        match backend {
            Backend::Nftables => {
                let mut nft = nft::shared()?;
                nftables::setup(&mut nft, &owner(args, &c), &bridge, &addrs, policy)?;
            }
            Backend::Iptables(admin) => iptables::setup(&admin, &bridge, &addrs, policy)?,
        }
        Ok(prev_raw)
    }

    fn del(&self, args: &CmdArgs) -> Result<(), CniError> {
        let c = crate::common::DelConf::read(args)?;
        let hint: Vec<IpAddr> = c.hint();
        if c.string("backend") == Some("iptables") {
            // as the reference, DEL ignores iptables' errors (a runtime would retry it forever)
            if let Err(e) = iptables::teardown(&hint) {
                eprintln!("firewall: removing the iptables rules: {e}");
            }
            return Ok(());
        }
        let mut nft = nft::shared()?;
        nftables::teardown(&mut nft, &Owner::new(&c.name, &args.container_id, &args.ifname), &hint)?;
        Ok(())
    }

    /// GC (nftables backend): the addresses of this network's attachments that are not valid,
    /// and isolation rules left without a container. The iptables backend's rules, like the
    /// reference's, name no owner: there is nothing GC could attribute.
    fn gc(&self, args: &CmdArgs) -> Result<(), CniError> {
        let (c, backend, _) = load(args)?;
        let Some(valid) = args.valid_attachments()? else { return Ok(()) };
        if backend != Backend::Nftables {
            return Ok(());
        }
        let tags = netkit::owner::valid_tags(&c.net.name, &valid);
        let mut nft = nft::shared()?;
        nftables::gc(&mut nft, &c.net.name, &tags)?;
        Ok(())
    }

    /// STATUS: 50 when the backend cannot work (nftables unusable; iptables' programs missing).
    fn status(&self, args: &CmdArgs) -> Result<(), CniError> {
        let (_, backend, _) = load(args)?;
        match backend {
            Backend::Nftables => crate::delegate::nft_status(nftables::TABLE),
            Backend::Iptables(_) => {
                iptables::available().map_err(|e| CniError::new(cni_types::error::code::PLUGIN_NOT_AVAILABLE, e.to_string()))
            }
        }
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let (c, backend, _) = load(args)?;
        let (_, prev) = args.required_prev_result(&c.net, "missing prevResult from earlier plugin")?;
        let addrs: Vec<IpAddr> = prev.ips.iter().map(|i| i.address.addr()).collect();
        match backend {
            Backend::Nftables => {
                let mut nft = nft::shared()?;
                let missing = nftables::missing(&mut nft, &owner(args, &c), &addrs)?;
                if let Some(ip) = missing.first() {
                    return Err(CniError::internal(format!("firewall: traffic for {ip} is not accepted for this container")));
                }
            }
            Backend::Iptables(admin) => {
                let missing = iptables::missing(&admin, &addrs)?;
                if !missing.is_empty() {
                    return Err(CniError::internal(format!("firewall: expected iptables rules not found: {}", missing.join("; "))));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(extra: serde_json::Value) -> Conf {
        let mut c = serde_json::json!({"cniVersion": "1.0.0", "name": "n", "type": "firewall"});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        serde_json::from_value(c).unwrap()
    }

    #[test]
    fn backends() {
        use serde_json::json;
        assert_eq!(backend(&conf(json!({}))).unwrap(), Backend::Nftables);
        assert_eq!(backend(&conf(json!({"backend": "nftables"}))).unwrap(), Backend::Nftables);
        assert_eq!(backend(&conf(json!({"backend": "iptables"}))).unwrap(), Backend::Iptables("CNI-ADMIN".into()));
        assert_eq!(
            backend(&conf(json!({"backend": "iptables", "iptablesAdminChainName": "MY-ADMIN"}))).unwrap(),
            Backend::Iptables("MY-ADMIN".into())
        );
        let e = backend(&conf(json!({"backend": "iptables", "iptablesAdminChainName": "FORWARD"}))).unwrap_err();
        assert_eq!(e.code, 7, "{e:?}");
        assert!(e.msg.contains("iptablesAdminChainName"), "{e:?}");
        let e = backend(&conf(json!({"backend": "firewalld"}))).unwrap_err();
        assert_eq!(e.code, 2);
        assert!(e.msg.contains("\"backend\"") && e.msg.contains("firewalld") && e.msg.contains("iptables"), "{e:?}");
        assert_eq!(backend(&conf(json!({"backend": "ebtables"}))).unwrap_err().code, 2);
    }
}

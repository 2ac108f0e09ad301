//! firewall: accepts forwarded traffic to and from the container's addresses (chained after an
//! interface plugin), and applies an ingress policy to its bridge.
//!
//! Keys (as the reference): `backend`, `iptablesAdminChainName`, `firewalldZone`,
//! `ingressPolicy` (`open` (default, also ""), `same-bridge`, `isolated`; the bridge is
//! prevResult's first interface). rcni's default backend is `nftables` (its own table
//! `inet rcni_firewall`, see `netkit::firewall`; operators put their own rules in chain
//! `admin` there). `iptables` and `firewalld` are refused with code 2 naming the key (not
//! implemented yet). Spec versions 0.4.0 and later, as the reference.
//!
//! ADD needs prevResult and returns it. DEL removes the attachment's addresses (by owner;
//! prevResult only speeds it up) and its bridge's isolation rules with the bridge's last
//! container; it never fails on missing state. CHECK: every prevResult address is accepted for
//! this attachment.

use crate::kernel;
use cni_plugin::{CmdArgs, Plugin};
use cni_types::{CniError, CniResult, NetConf};
use netkit::firewall::Ingress;
use netkit::nft::Nft;
use netkit::owner::Owner;
use serde::Deserialize;
use std::net::IpAddr;

pub struct Firewall;

#[derive(Debug, Deserialize)]
struct Conf {
    #[serde(flatten)]
    net: NetConf,
    #[serde(default)]
    backend: Option<String>,
    #[serde(rename = "iptablesAdminChainName", default)]
    _admin_chain: Option<String>,
    #[serde(rename = "firewalldZone", default)]
    _zone: Option<String>,
    #[serde(rename = "ingressPolicy", default)]
    ingress_policy: Option<String>,
}

fn load(args: &CmdArgs) -> Result<(Conf, Ingress), CniError> {
    let c: Conf = args.conf()?;
    match c.backend.as_deref() {
        None | Some("") | Some("nftables") => {}
        Some(b @ ("iptables" | "firewalld")) => {
            return Err(CniError::unsupported_field(
                "backend",
                format!("rcni's firewall does not implement the {b:?} backend yet; use \"nftables\" (the default)"),
            ))
        }
        Some(other) => return Err(CniError::unsupported_field("backend", format!("unknown firewall backend {other:?}"))),
    }
    let policy = match c.ingress_policy.as_deref() {
        None | Some("") | Some("open") => Ingress::Open,
        Some("same-bridge") => Ingress::SameBridge,
        Some("isolated") => Ingress::Isolated,
        Some(other) => return Err(CniError::invalid_config(format!("unknown ingress policy: {other:?}"))),
    };
    Ok((c, policy))
}

fn owner(args: &CmdArgs, c: &Conf) -> Owner {
    Owner::new(&c.net.name, &args.container_id, &args.ifname)
}

impl Plugin for Firewall {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let (c, policy) = load(args)?;
        let prev_raw = args.prev_result(&c.net)?.ok_or_else(|| CniError::invalid_config("missing prevResult from earlier plugin"))?;
        let prev = prev_raw.to_current().map_err(|e| CniError::decoding(e.to_string()))?;
        let bridge = prev.interfaces.first().map(|i| i.name.clone()).unwrap_or_default();
        if policy != Ingress::Open && bridge.is_empty() {
            return Err(CniError::invalid_config(
                "ingressPolicy needs the bridge as prevResult's first interface, and prevResult has none",
            ));
        }
        let addrs: Vec<IpAddr> = prev.ips.iter().map(|i| i.address.addr()).collect();
        if addrs.is_empty() && policy == Ingress::Open {
            return Ok(prev_raw);
        }
        let mut nft = Nft::new().map_err(kernel)?;
        netkit::firewall::setup(&mut nft, &owner(args, &c), &bridge, &addrs, policy).map_err(kernel)?;
        Ok(prev_raw)
    }

    fn del(&self, args: &CmdArgs) -> Result<(), CniError> {
        let c: Conf = args.conf()?;
        let hint: Vec<IpAddr> = args
            .prev_result(&c.net)
            .ok()
            .flatten()
            .and_then(|p| p.to_current().ok())
            .map(|p| p.ips.iter().map(|i| i.address.addr()).collect())
            .unwrap_or_default();
        let mut nft = Nft::new().map_err(kernel)?;
        if netkit::firewall::teardown(&mut nft, &owner(args, &c), &hint).map_err(kernel)? {
            nft.close_in_background();
        }
        Ok(())
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let (c, _) = load(args)?;
        let prev = args.prev_result(&c.net)?.ok_or_else(|| CniError::invalid_config("missing prevResult from earlier plugin"))?;
        let prev = prev.to_current().map_err(|e| CniError::decoding(e.to_string()))?;
        let addrs: Vec<IpAddr> = prev.ips.iter().map(|i| i.address.addr()).collect();
        let mut nft = Nft::new().map_err(kernel)?;
        let missing = netkit::firewall::missing(&mut nft, &owner(args, &c), &addrs).map_err(kernel)?;
        if let Some(ip) = missing.first() {
            return Err(CniError::internal(format!("firewall: traffic for {ip} is not accepted for this container")));
        }
        Ok(())
    }
}

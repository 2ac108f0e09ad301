//! ptp: a point-to-point veth between host and container, routed (no bridge).
//!
//! Keys (as the reference): `ipMasq`, `ipMasqBackend` (accepted; rcni uses nftables), `mtu`,
//! `ipam` (required), `dns`. ADD: IPAM, forwarding, the veth (container end created in the
//! container's namespace), the addresses inside with the subnet route replaced by a /32 (/128)
//! route to the gateway plus the subnet via the gateway; on the host end the gateway address as
//! a /32 and a route to the container's address; masquerade. Any failure undoes this ADD's own
//! work. Result interfaces: host veth, container veth.
//! DEL: the attachment's masquerade (by owner), the veth, then the IPAM lease; gone is fine.
//! CHECK: the container interface, addresses, routes, masquerade, and IPAM CHECK.
//! GC: removes the network's masquerade elements whose owner is not in
//! `cni.dev/valid-attachments` (nothing without the key), then GC of the IPAM plugin.
//! STATUS: IPAM STATUS (code 50 if the IPAM plugin is not on `CNI_PATH`), and with `ipMasq`,
//! code 50 when nftables is not usable.

use crate::bridge::check_ips_and_routes;
use crate::{delegate, kernel};
use cni_plugin::{CmdArgs, Failures, Plugin};
use cni_types::result::{Interface, Result100};
use cni_types::{CniError, CniResult, NetConf};
use ipnet::IpNet;
use netkit::iface::{configure_iface, enable_forwarding, remove_veth, setup_veth, ConfigureOpts};
use netkit::netlink::{AddrFlags, RouteSpec};
use netkit::nft::Nft;
use netkit::owner::Owner;
use netkit::{masq, NetNs, Netlink};
use serde::Deserialize;
use std::net::IpAddr;

pub struct Ptp;

#[derive(Debug, Deserialize)]
struct Conf {
    #[serde(flatten)]
    net: NetConf,
    #[serde(rename = "ipMasq", default)]
    ip_masq: bool,
    #[serde(rename = "ipMasqBackend", default)]
    ip_masq_backend: Option<String>,
    #[serde(default)]
    mtu: i64,
}

fn load(args: &CmdArgs) -> Result<(Conf, String), CniError> {
    let c: Conf = args.conf()?;
    if !(0..=65535).contains(&c.mtu) {
        return Err(CniError::invalid_config(format!("invalid MTU {}", c.mtu)));
    }
    match c.ip_masq_backend.as_deref() {
        None | Some("") | Some("nftables") | Some("iptables") => {}
        Some(other) => {
            return Err(CniError::unsupported_field("ipMasqBackend", format!("unknown backend {other:?} (iptables or nftables)")))
        }
    }
    let ipam = c.net.ipam.as_ref().map(|i| i.ipam_type.clone()).filter(|t| !t.is_empty());
    let ipam = ipam.ok_or_else(|| CniError::invalid_config("ptp needs an \"ipam\" section with a \"type\""))?;
    Ok((c, ipam))
}

fn host_prefix(ip: IpAddr) -> IpNet {
    IpNet::new(ip, if ip.is_ipv4() { 32 } else { 128 }).expect("full-length prefix")
}

#[derive(Default)]
struct Undo {
    ipam: bool,
    host_veth: Option<u32>,
    masq: bool,
}

fn add(args: &CmdArgs, c: &Conf, ipam: &str, undo: &mut Undo, host: &mut Netlink) -> Result<Result100, CniError> {
    let cont_ns = NetNs::open(&args.netns).map_err(|e| CniError::internal(format!("failed to open netns {:?}: {e}", args.netns)))?;
    let mut cont = Netlink::open_in(&cont_ns).map_err(kernel)?;
    if cont.link_by_name(&args.ifname).is_ok() {
        return Err(CniError::internal(format!("container veth name ({:?}) already exists", args.ifname)));
    }
    undo.ipam = true;
    let mut result = delegate::add(ipam, args)?.to_current().map_err(|e| CniError::decoding(e.to_string()))?;
    if result.ips.is_empty() {
        return Err(CniError::internal("IPAM plugin returned missing IP config"));
    }
    enable_forwarding(result.ips.iter().any(|i| i.address.addr().is_ipv4()), result.ips.iter().any(|i| i.address.addr().is_ipv6()))
        .map_err(kernel)?;
    let mtu = (c.mtu > 0).then_some(c.mtu as u32);
    let pair = setup_veth(host, &mut cont, &cont_ns, &args.ifname, mtu, None).map_err(kernel)?;
    undo.host_veth = Some(pair.host.index);
    result.interfaces = vec![
        Interface::new(&pair.host.name, pair.host.mac_string(), ""),
        Interface::new(&pair.container.name, pair.container.mac_string(), &args.netns),
    ];
    for ipc in &mut result.ips {
        ipc.interface = Some(1);
    }
    // usable at once: no DAD delay on the container end either
    let ifname = args.ifname.clone();
    cont_ns.run(|| netkit::sysctl::write(&format!("net/ipv6/conf/{ifname}/accept_dad"), "0")).map_err(kernel)?.ok();
    configure_iface(&mut cont, &cont_ns, &args.ifname, &result, ConfigureOpts::default()).map_err(kernel)?;
    for ipc in &result.ips {
        let Some(gw) = ipc.gateway else {
            return Err(CniError::invalid_config(format!("ptp needs a gateway for {}", ipc.address)));
        };
        // replace the subnet route: gw/32 on the link, then the subnet via gw
        let mut subnet = RouteSpec::new(ipc.address.trunc()).dev(pair.container.index);
        subnet.scope = Some(255); // any scope
        subnet.protocol = 0;
        cont.del_route(&subnet).map_err(kernel)?;
        let mut to_gw = RouteSpec::new(host_prefix(gw)).dev(pair.container.index);
        to_gw.src = Some(ipc.address.addr());
        cont.add_route(&to_gw).map_err(kernel)?;
        let mut via = RouteSpec::new(ipc.address.trunc()).via(gw).dev(pair.container.index);
        via.src = Some(ipc.address.addr());
        cont.add_route(&via).map_err(kernel)?;
        // host end: the gateway address, and the route to the container
        let gw_addr = host_prefix(gw);
        match host.add_addr(pair.host.index, gw_addr, AddrFlags { nodad: gw.is_ipv6() }) {
            Ok(()) => {}
            Err(e) if e.is_exists() => {}
            Err(e) => return Err(kernel(e)),
        }
        match host.add_route(&RouteSpec::new(host_prefix(ipc.address.addr())).dev(pair.host.index)) {
            Ok(()) => {}
            Err(e) if e.is_exists() => {}
            Err(e) => return Err(kernel(e)),
        }
    }
    if c.ip_masq {
        let mut nft = Nft::new().map_err(kernel)?;
        undo.masq = true;
        let addrs: Vec<IpNet> = result.ips.iter().map(|i| i.address).collect();
        masq::setup(&mut nft, &Owner::new(&c.net.name, &args.container_id, &args.ifname), &addrs).map_err(kernel)?;
    }
    if !c.net.dns.is_empty() {
        result.dns = c.net.dns.clone();
    }
    result.cni_version = cni_types::version::CURRENT.into();
    Ok(result)
}

impl Plugin for Ptp {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let (c, ipam) = load(args)?;
        let mut host = Netlink::new().map_err(kernel)?;
        let mut undo = Undo::default();
        match add(args, &c, &ipam, &mut undo, &mut host) {
            Ok(r) => Ok(r.into()),
            Err(e) => {
                if undo.masq {
                    if let Ok(mut nft) = Nft::new() {
                        let _ = masq::teardown(&mut nft, &Owner::new(&c.net.name, &args.container_id, &args.ifname), &[]);
                    }
                }
                if let Some(i) = undo.host_veth {
                    let _ = host.del_link(i);
                }
                if undo.ipam {
                    let _ = delegate::del(&ipam, args);
                }
                Err(e)
            }
        }
    }

    fn del(&self, args: &CmdArgs) -> Result<(), CniError> {
        let (c, ipam) = load(args)?;
        let owner = Owner::new(&c.net.name, &args.container_id, &args.ifname);
        let prev = args.prev_result(&c.net).ok().flatten().and_then(|p| p.to_current().ok());
        let hint: Vec<IpAddr> = prev.iter().flat_map(|p| p.ips.iter().map(|i| i.address.addr())).collect();
        let mut nft = Nft::new().map_err(kernel)?;
        masq::teardown(&mut nft, &owner, &hint).map_err(kernel)?;
        let mut host = Netlink::new().map_err(kernel)?;
        let host_end = prev.as_ref().and_then(|p| p.interfaces.first()).filter(|i| i.sandbox.is_empty() && !i.mac.is_empty());
        remove_veth(&mut host, host_end.map(|h| (h.name.as_str(), h.mac.as_str())), &args.netns, &args.ifname).map_err(kernel)?;
        delegate::del(&ipam, args)
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let (c, ipam) = load(args)?;
        delegate::check(&ipam, args)?;
        let prev = args.prev_result(&c.net)?.ok_or_else(|| CniError::invalid_config("ptp: Required prevResult missing"))?;
        let prev = prev.to_current().map_err(|e| CniError::decoding(e.to_string()))?;
        if !prev.interfaces.iter().any(|i| i.name == args.ifname && i.sandbox == args.netns) {
            return Err(CniError::internal(format!("Sandbox in prevResult doesn't match configured netns: {}", args.netns)));
        }
        let ns = NetNs::open(&args.netns).map_err(kernel)?;
        let mut cont = Netlink::open_in(&ns).map_err(kernel)?;
        let l = cont.link_by_name(&args.ifname).map_err(|_| CniError::internal(format!("Interface name {} not found", args.ifname)))?;
        if l.kind.as_deref() != Some("veth") {
            return Err(CniError::internal(format!("Error: Container interface {} not of type veth", l.name)));
        }
        check_ips_and_routes(&mut cont, &args.ifname, l.index, &prev)?;
        if c.ip_masq {
            let mut nft = Nft::new().map_err(kernel)?;
            if masq::owned_addresses(&mut nft, &Owner::new(&c.net.name, &args.container_id, &args.ifname)).map_err(kernel)?.is_empty() {
                return Err(CniError::internal(format!("masquerade for {} is missing", args.ifname)));
            }
        }
        Ok(())
    }

    fn gc(&self, args: &CmdArgs) -> Result<(), CniError> {
        let (c, ipam) = load(args)?;
        let Some(valid) = args.valid_attachments()? else { return Ok(()) };
        let mut failures = Failures::new();
        crate::bridge::gc_masq(&c.net.name, &valid, &mut failures, false);
        failures.note("IPAM GC", delegate::gc(&ipam, args));
        failures.finish()
    }

    fn status(&self, args: &CmdArgs) -> Result<(), CniError> {
        let (c, ipam) = load(args)?;
        delegate::status(&ipam, args)?;
        if c.ip_masq {
            delegate::nft_status(masq::TABLE)?;
        }
        Ok(())
    }
}

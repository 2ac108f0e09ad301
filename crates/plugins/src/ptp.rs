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

use crate::common::{self, veth, MasqKeys, Rollback};
use crate::delegate;
use cni_plugin::{CmdArgs, Plugin};
use cni_types::result::{Interface, Result100};
use cni_types::{CniError, CniResult, NetConf};
use ipnet::IpNet;
use netkit::iface::{configure_iface, enable_forwarding, setup_veth, ConfigureOpts};
use netkit::netlink::{AddrFlags, RouteSpec};
use netkit::owner::Owner;
use netkit::Netlink;
use serde::Deserialize;
use std::net::IpAddr;

pub struct Ptp;

#[derive(Debug, Deserialize)]
struct Conf {
    #[serde(flatten)]
    net: NetConf,
    #[serde(flatten)]
    masq: MasqKeys,
    #[serde(default)]
    mtu: i64,
}

/// A validated configuration.
struct Setup {
    c: Conf,
    ipam: String,
    mtu: Option<u32>,
}

fn load(args: &CmdArgs) -> Result<Setup, CniError> {
    let c: Conf = args.conf()?;
    let mtu = common::mtu(c.mtu)?;
    c.masq.check()?;
    let ipam = common::ipam_type(&c.net).ok_or_else(|| CniError::invalid_config("ptp needs an \"ipam\" section with a \"type\""))?;
    Ok(Setup { c, ipam, mtu })
}

fn owner(args: &CmdArgs, s: &Setup) -> Owner {
    Owner::new(&s.c.net.name, &args.container_id, &args.ifname)
}

fn host_prefix(ip: IpAddr) -> IpNet {
    IpNet::new(ip, if ip.is_ipv4() { 32 } else { 128 }).expect("full-length prefix")
}

/// ADD. Every step registers its undo in `rb` first, so a failure anywhere (or a panic) leaves
/// nothing of this ADD behind.
fn add(args: &CmdArgs, s: &Setup) -> Result<Result100, CniError> {
    let mut rb = Rollback::new();
    let mut host = Netlink::new()?;
    let (cont_ns, mut cont) = common::open_container(&args.netns)?;
    common::ensure_ifname_free(&mut cont, &args.ifname)?;
    rb.push("the IPAM lease", || delegate::del(&s.ipam, args));
    let mut result = common::ipam_add(&s.ipam, args)?;
    enable_forwarding(result.ips.iter().any(|i| i.address.addr().is_ipv4()), result.ips.iter().any(|i| i.address.addr().is_ipv6()))?;
    let pair = setup_veth(&mut host, &mut cont, &cont_ns, &args.ifname, s.mtu, None)?;
    let veth = pair.host.index;
    rb.push("the veth", move || Ok(Netlink::new()?.del_link(veth)?));
    result.interfaces = vec![
        Interface::new(&pair.host.name, pair.host.mac_string(), ""),
        Interface::new(&pair.container.name, pair.container.mac_string(), &args.netns),
    ];
    for ipc in &mut result.ips {
        ipc.interface = Some(1);
    }
    // usable at once: no DAD delay on the container end either
    configure_iface(&mut cont, &cont_ns, &args.ifname, &result, ConfigureOpts::default())?;
    for ipc in &result.ips {
        let Some(gw) = ipc.gateway else {
            return Err(CniError::invalid_config(format!("ptp needs a gateway for {}", ipc.address)));
        };
        // replace the subnet route: gw/32 on the link, then the subnet via gw
        let mut subnet = RouteSpec::new(ipc.address.trunc()).dev(pair.container.index);
        subnet.scope = Some(255); // any scope
        subnet.protocol = 0;
        cont.del_route(&subnet)?;
        let mut to_gw = RouteSpec::new(host_prefix(gw)).dev(pair.container.index);
        to_gw.src = Some(ipc.address.addr());
        cont.add_route(&to_gw)?;
        let mut via = RouteSpec::new(ipc.address.trunc()).via(gw).dev(pair.container.index);
        via.src = Some(ipc.address.addr());
        cont.add_route(&via)?;
        // host end: the gateway address, and the route to the container
        match host.add_addr(veth, host_prefix(gw), AddrFlags { nodad: gw.is_ipv6() }) {
            Err(e) if !e.is_exists() => return Err(e.into()),
            _ => {}
        }
        match host.add_route(&RouteSpec::new(host_prefix(ipc.address.addr())).dev(veth)) {
            Err(e) if !e.is_exists() => return Err(e.into()),
            _ => {}
        }
    }
    if s.c.masq.ip_masq {
        let addrs: Vec<IpNet> = result.ips.iter().map(|i| i.address).collect();
        veth::masquerade(&mut rb, &owner(args, s), &addrs)?;
    }
    common::apply_dns(&mut result, &s.c.net);
    result.cni_version = cni_types::version::CURRENT.into();
    rb.commit();
    Ok(result)
}

impl Plugin for Ptp {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let s = load(args)?;
        Ok(add(args, &s)?.into())
    }

    fn del(&self, args: &CmdArgs) -> Result<(), CniError> {
        // only what DEL needs is read: a value an ADD was refused for must not block it
        let c = common::DelConf::read(args)?;
        let o = Owner::new(&c.name, &args.container_id, &args.ifname);
        // the result's interfaces: host veth (0), container veth
        veth::del(args, &c, &o, 0, c.flag("ipMasq"), |_| Ok(false))
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(args)?;
        delegate::check(&s.ipam, args)?;
        let (_, prev) = args.required_prev_result(&s.c.net, "ptp: Required prevResult missing")?;
        if !prev.interfaces.iter().any(|i| i.name == args.ifname && i.sandbox == args.netns) {
            return Err(CniError::internal(format!("Sandbox in prevResult doesn't match configured netns: {}", args.netns)));
        }
        let (_, mut cont) = common::open_container(&args.netns)?;
        let l = cont.link_by_name(&args.ifname).map_err(|_| CniError::internal(format!("Interface name {} not found", args.ifname)))?;
        if l.kind.as_deref() != Some("veth") {
            return Err(CniError::internal(format!("Error: Container interface {} not of type veth", l.name)));
        }
        veth::check_ips_and_routes(&mut cont, &args.ifname, l.index, &prev)?;
        if s.c.masq.ip_masq {
            veth::check_masquerade(&owner(args, &s), &args.ifname)?;
        }
        Ok(())
    }

    fn gc(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(args)?;
        veth::gc(args, &s.c.net.name, Some(&s.ipam), |_, _, _| {})
    }

    fn status(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(args)?;
        veth::status(args, Some(&s.ipam), s.c.masq.ip_masq)
    }
}

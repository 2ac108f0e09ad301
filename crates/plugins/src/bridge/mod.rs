//! bridge: connects the container to a host bridge through a veth pair.
//!
//! Keys (as the reference): `bridge` ("cni0"), `mtu`, `isGateway`, `isDefaultGateway` (implies
//! isGateway), `forceAddress`, `ipMasq`, `ipMasqBackend` (accepted; rcni always uses
//! nftables), `hairpinMode`, `promiscMode` (not both), `vlan` (0–4094), `vlanTrunk`
//! (`[{id}|{minID,maxID}]`), `preserveDefaultVlan`, `macspoofchk`, `enabledad`,
//! `portIsolation`, `disableContainerInterface` (not with IPAM), `ipam`, `dns`. The container MAC
//! comes from `CNI_ARGS` `MAC=`, `args.cni.mac` or `runtimeConfig.mac` (the later wins).
//!
//! ADD: the whole config is checked before anything changes; then the bridge (created if
//! missing, up), a veth with the container end created straight into the container's namespace,
//! port flags and VLANs, the spoof check, IPAM (delegated through `CNI_PATH`), addresses and
//! routes inside (IPv6 without DAD unless `enabledad`), the gateway address on the bridge,
//! forwarding, masquerade. Any failure undoes this ADD's own work (veth, IPAM lease, rules).
//! Result interfaces: bridge, host veth, container veth (+ `<bridge>.<vlan>`).
//!
//! DEL: removes the attachment's masquerade and spoof-check objects (found by owner, even without
//! prevResult or netns), the veth, then the IPAM lease; anything already gone is fine.
//! CHECK: bridge, veth pair, MACs, addresses, routes, masquerade and spoof check, and IPAM CHECK.
//! GC: removes the network's masquerade elements and spoof-check rules whose owner is not in
//! `cni.dev/valid-attachments` (nothing without the key), then GC of the IPAM plugin; veths went
//! with their namespaces. Goes on past failures and reports them all.
//! STATUS: IPAM STATUS (code 50 if the IPAM plugin is not on `CNI_PATH`), and with `ipMasq` or
//! `macspoofchk`, code 50 when nftables is not usable.

use crate::common::{self, veth, MasqKeys, Rollback};
use crate::delegate;
use cni_plugin::{CmdArgs, Plugin};
use cni_types::result::{Interface, Result100, Route};
use cni_types::{CniError, CniResult, NetConf};
use ipnet::IpNet;
use netkit::iface::{configure_iface, enable_forwarding, setup_veth, ConfigureOpts};
use netkit::netlink::{parse_mac, AddrFlags, BridgePortOpts, Link, LinkKind, LinkSpec};
use netkit::nft;
use netkit::owner::Owner;
use netkit::{sysctl, NetNs, Netlink};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

pub mod spoofchk;

pub struct Bridge;

#[derive(Debug, Deserialize)]
struct Trunk {
    #[serde(rename = "minID")]
    min_id: Option<i64>,
    #[serde(rename = "maxID")]
    max_id: Option<i64>,
    id: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Conf {
    #[serde(flatten)]
    net: NetConf,
    #[serde(default = "default_bridge")]
    bridge: String,
    #[serde(rename = "isGateway", default)]
    is_gw: bool,
    #[serde(rename = "isDefaultGateway", default)]
    is_default_gw: bool,
    #[serde(rename = "forceAddress", default)]
    force_address: bool,
    #[serde(flatten)]
    masq: MasqKeys,
    #[serde(default)]
    mtu: i64,
    #[serde(rename = "hairpinMode", default)]
    hairpin: bool,
    #[serde(rename = "promiscMode", default)]
    promisc: bool,
    #[serde(default)]
    vlan: i64,
    #[serde(rename = "vlanTrunk", default)]
    vlan_trunk: Option<Vec<Trunk>>,
    #[serde(rename = "preserveDefaultVlan", default)]
    preserve_default_vlan: bool,
    #[serde(default)]
    macspoofchk: bool,
    #[serde(default)]
    enabledad: bool,
    #[serde(rename = "disableContainerInterface", default)]
    disable_container_interface: bool,
    #[serde(rename = "portIsolation", default)]
    port_isolation: bool,
}

fn default_bridge() -> String {
    "cni0".into()
}

/// A validated configuration.
struct Setup {
    c: Conf,
    ipam: Option<String>,
    mtu: Option<u32>,
    vlan: u16,
    trunk: Vec<u16>,
    mac: Option<[u8; 6]>,
}

fn invalid(msg: impl Into<String>) -> CniError {
    CniError::invalid_config(msg)
}

/// The VLAN IDs of `vlanTrunk`, sorted and deduplicated (the reference's rules and messages).
fn collect_trunk(trunk: &[Trunk]) -> Result<Vec<u16>, CniError> {
    let mut set = BTreeSet::new();
    let ok = |v: i64| (1..=4094).contains(&v);
    for t in trunk {
        match (t.min_id, t.max_id) {
            (Some(min), Some(max)) => {
                if !ok(min) {
                    return Err(invalid("incorrect trunk minID parameter"));
                }
                if !ok(max) {
                    return Err(invalid("incorrect trunk maxID parameter"));
                }
                if max < min {
                    return Err(invalid("minID is greater than maxID in trunk parameter"));
                }
                set.extend(min..=max);
            }
            (None, Some(_)) => return Err(invalid("minID and maxID should be configured simultaneously, minID is missing")),
            (Some(_), None) => return Err(invalid("minID and maxID should be configured simultaneously, maxID is missing")),
            (None, None) => {}
        }
        if let Some(id) = t.id {
            if !ok(id) {
                return Err(invalid("incorrect trunk id parameter"));
            }
            set.insert(id);
        }
    }
    Ok(set.into_iter().map(|v| v as u16).collect())
}

fn load(args: &CmdArgs) -> Result<Setup, CniError> {
    let mut c: Conf = args.conf()?;
    if !(0..=4094).contains(&c.vlan) {
        return Err(invalid(format!("invalid VLAN ID {} (must be between 0 and 4094)", c.vlan)));
    }
    let trunk = collect_trunk(c.vlan_trunk.as_deref().unwrap_or(&[]))?;
    if let Err(e) = cni_types::validate::interface_name(&c.bridge) {
        return Err(invalid(format!("invalid bridge name {:?}: {}", c.bridge, e.msg)));
    }
    let mtu = common::mtu(c.mtu)?;
    c.masq.check()?;
    let ipam = common::ipam_type(&c.net);
    if ipam.is_some() && c.disable_container_interface {
        return Err(invalid("cannot use IPAM when DisableContainerInterface flag is set"));
    }
    if c.is_default_gw {
        c.is_gw = true;
    }
    if c.hairpin && c.promisc {
        return Err(invalid("cannot set hairpin mode and promiscuous mode at the same time"));
    }
    let mut mac_str = None;
    let env = args.cni_args(&["MAC"])?;
    if let Some(m) = env.get("MAC").filter(|m| !m.is_empty()) {
        mac_str = Some(m.to_string());
    }
    if let Some(m) = c.net.args_cni("mac").and_then(|v| v.as_str()).filter(|m| !m.is_empty()) {
        mac_str = Some(m.to_string());
    }
    if !c.net.runtime_config.mac.is_empty() {
        mac_str = Some(c.net.runtime_config.mac.clone());
    }
    let mac = match mac_str {
        Some(m) => Some(parse_mac(&m).ok_or_else(|| invalid(format!("invalid MAC address {m:?}")))?),
        None => None,
    };
    let vlan = c.vlan as u16;
    Ok(Setup { c, ipam, mtu, vlan, trunk, mac })
}

fn owner(args: &CmdArgs, s: &Setup) -> Owner {
    Owner::new(&s.c.net.name, &args.container_id, &args.ifname)
}

/// Creates the bridge if needed and brings it up; an existing non-bridge link of that name is an
/// error. (An existing bridge is not reconfigured, as in the reference.) A bridge this call
/// creates is removed by `rb` should the ADD fail.
fn ensure_bridge(nl: &mut Netlink, s: &Setup, rb: &mut Rollback) -> Result<Link, CniError> {
    let name = &s.c.bridge;
    let br = match nl.link_by_name(name) {
        Ok(l) => l,
        Err(e) if e.is_not_found() => {
            let vlan_filtering = (s.vlan != 0 || s.c.vlan_trunk.is_some()).then_some(true);
            let mut spec = LinkSpec::new(name.clone(), LinkKind::Bridge { vlan_filtering });
            spec.mtu = s.mtu;
            match nl.add_link(&spec) {
                Ok(()) => {
                    let name = name.clone();
                    rb.push("the bridge", move || remove_new_bridge(&name));
                }
                Err(e) if e.is_exists() => {} // created concurrently
                Err(e) if e.is_not_supported() && vlan_filtering.is_some() => {
                    return Err(CniError::unsupported_field("vlan", format!("this kernel lacks bridge VLAN filtering (802.1Q): {e}")))
                }
                Err(e) => return Err(e.into()),
            }
            nl.link_by_name(name)?
        }
        Err(e) => return Err(e.into()),
    };
    if br.kind.as_deref() != Some("bridge") {
        return Err(invalid(format!("{name:?} already exists but is not a bridge")));
    }
    if s.c.promisc && !br.promisc {
        nl.set_promisc(br.index, true)?;
    }
    let _ = sysctl::write(&format!("net/ipv6/conf/{name}/accept_ra"), "0");
    if !br.up {
        nl.set_up(br.index, true)?;
    }
    Ok(br)
}

/// Undoes [`ensure_bridge`]'s creation: the bridge goes unless a port joined it meanwhile (an
/// ADD of another container on the same network, which keeps using it).
fn remove_new_bridge(name: &str) -> Result<(), CniError> {
    let mut nl = Netlink::new()?;
    let br = match nl.link_by_name(name) {
        Ok(l) if l.kind.as_deref() == Some("bridge") => l,
        Ok(_) => return Ok(()),
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if nl.links()?.iter().any(|l| l.master == Some(br.index)) {
        return Ok(());
    }
    match nl.del_link(br.index) {
        Err(e) if !e.is_not_found() => Err(e.into()),
        _ => Ok(()),
    }
}

/// Puts the gateway address on the bridge (or its VLAN interface). A different address of the
/// family (IPv4), or an overlapping one (IPv6), is an error unless `forceAddress` replaces it.
fn ensure_addr(nl: &mut Netlink, link: &Link, gw: IpNet, force: bool, dad: bool) -> Result<(), CniError> {
    let v6 = gw.addr().is_ipv6();
    for a in nl.addrs(Some(link.index), Some(v6))? {
        if a.scope == 253 && v6 {
            continue; // link-local
        }
        if a.addr == gw {
            return Ok(());
        }
        if !v6 || a.addr.contains(&gw.addr()) || gw.contains(&a.addr.addr()) {
            if force {
                nl.del_addr(link.index, a.addr)?;
            } else {
                return Err(CniError::internal(format!("{:?} already has an IP address different from {gw}", link.name)));
            }
        }
    }
    match nl.add_addr(link.index, gw, AddrFlags { nodad: v6 && !dad }) {
        Ok(()) => {}
        Err(e) if e.is_exists() => {}
        Err(e) => return Err(e.into()),
    }
    // pin the bridge's current MAC (taken from its ports) so it stops changing as ports come
    // and go; a bridge without ports has none to pin
    let now = nl.link_by_index(link.index)?;
    if let Ok(mac) = <[u8; 6]>::try_from(now.mac.as_slice()) {
        if mac != [0; 6] {
            nl.set_mac(link.index, mac)?;
        }
    }
    Ok(())
}

/// Port VLANs: drop the default one (unless preserved), `vlan` as untagged PVID, trunk IDs
/// tagged, and native VLAN 1 for a trunk without `vlan`.
fn setup_port_vlans(nl: &mut Netlink, port: u32, vlan: u16, trunk: &[u16], preserve_default: bool) -> Result<(), CniError> {
    if vlan == 0 && trunk.is_empty() {
        return Ok(());
    }
    let vlan_err = |e: netkit::Error| CniError::unsupported_field("vlan", e.to_string());
    if !preserve_default {
        for vid in nl.bridge_vlans(port)? {
            nl.bridge_vlan_del(port, vid, false).map_err(vlan_err)?;
        }
    }
    if vlan != 0 {
        nl.bridge_vlan_add(port, vlan, true, true, false).map_err(vlan_err)?;
    }
    for vid in trunk {
        nl.bridge_vlan_add(port, *vid, false, false, false).map_err(vlan_err)?;
    }
    if vlan == 0 && !trunk.is_empty() {
        nl.bridge_vlan_add(port, 1, true, true, false).map_err(vlan_err)?;
    }
    Ok(())
}

/// The network address + 1 (the reference's default gateway).
fn default_gateway(addr: &IpNet) -> IpAddr {
    ipam::ip::add(addr.network(), 1)
}

/// ADD. Every step registers its undo in `rb` first, so a failure anywhere (or a panic) leaves
/// nothing of this ADD behind.
fn add(args: &CmdArgs, s: &Setup) -> Result<Result100, CniError> {
    let mut rb = Rollback::new();
    let mut host = Netlink::new()?;
    let (cont_ns, mut cont) = common::open_container(&args.netns)?;
    common::ensure_ifname_free(&mut cont, &args.ifname)?;
    // the lease goes last (registered first): until it is released the addresses are this
    // attachment's, so the veth that holds them goes before
    if let Some(ipam_type) = &s.ipam {
        delegate::validate_own_ipam(ipam_type, args)?;
        rb.push("the IPAM lease", || delegate::del(ipam_type, args));
    }
    let br = ensure_bridge(&mut host, s, &mut rb)?;
    let pair = setup_veth(&mut host, &mut cont, &cont_ns, &args.ifname, s.mtu, s.mac)?;
    let veth = pair.host.index;
    rb.push("the veth", move || Ok(Netlink::new()?.del_link(veth)?));
    host.set_master(veth, Some(br.index))?;
    host.set_bridge_port(veth, BridgePortOpts { hairpin: Some(s.c.hairpin), isolated: Some(s.c.port_isolation), learning: None })?;
    setup_port_vlans(&mut host, veth, s.vlan, &s.trunk, s.c.preserve_default_vlan)?;

    let mut result = Result100 {
        cni_version: cni_types::version::CURRENT.into(),
        interfaces: vec![
            Interface::new(&br.name, br.mac_string(), ""),
            Interface::new(&pair.host.name, pair.host.mac_string(), ""),
            Interface::new(&pair.container.name, pair.container.mac_string(), &args.netns),
        ],
        ..Default::default()
    };
    let o = owner(args, s);

    if s.c.macspoofchk {
        let mac = <[u8; 6]>::try_from(pair.container.mac.as_slice()).map_err(|_| CniError::internal("container veth has no MAC"))?;
        spoofchk::setup(&mut *nft::shared()?, &o, &pair.host.name, mac)?;
        let undo_owner = o.clone();
        rb.push("the spoof check", move || {
            spoofchk::teardown(&mut *nft::shared()?, &undo_owner)?;
            Ok(())
        });
    }

    if let Some(ipam_type) = &s.ipam {
        let r = common::ipam_add(ipam_type, args)?;
        result.ips = r.ips;
        result.routes = r.routes;
        result.dns = r.dns;
        // gateways, and the default route for isDefaultGateway
        let mut gws: Vec<IpNet> = Vec::new();
        let mut default_found = [false, false];
        for i in 0..result.ips.len() {
            let ipc = &mut result.ips[i];
            ipc.interface = Some(2);
            let v6 = ipc.address.addr().is_ipv6();
            if ipc.gateway.is_none() && s.c.is_gw {
                ipc.gateway = Some(default_gateway(&ipc.address));
            }
            let gw = ipc.gateway;
            let addr = ipc.address;
            if s.c.is_default_gw && !default_found[v6 as usize] {
                let default: IpNet = if v6 { "::/0".parse().expect("constant") } else { "0.0.0.0/0".parse().expect("constant") };
                if !result.routes.iter().any(|r| r.gw.is_some() && r.dst == default) {
                    result.routes.push(Route::new(default, gw));
                }
                default_found[v6 as usize] = true;
            }
            if s.c.is_gw {
                if let Some(gw) = gw {
                    let gw = IpNet::new(gw, addr.prefix_len())
                        .map_err(|_| invalid(format!("IPAM gave gateway {gw} for address {addr}, of the other address family")))?;
                    gws.push(gw);
                }
            }
        }
        configure_iface(&mut cont, &cont_ns, &args.ifname, &result, ConfigureOpts { dad: s.c.enabledad, arp_notify: true })?;
        if s.c.is_gw {
            let gw_link = if s.vlan != 0 { ensure_vlan_interface(&mut host, &br, s, &mut result)? } else { br.clone() };
            for gw in &gws {
                ensure_addr(&mut host, &gw_link, *gw, s.c.force_address, s.c.enabledad)?;
            }
            enable_forwarding(gws.iter().any(|g| g.addr().is_ipv4()), gws.iter().any(|g| g.addr().is_ipv6()))?;
        }
        if s.c.masq.ip_masq {
            let addrs: Vec<IpNet> = result.ips.iter().map(|i| i.address).collect();
            veth::masquerade(&mut rb, &o, &addrs)?;
        }
    } else if !s.c.disable_container_interface {
        cont.set_up(pair.container.index, true)?;
    }

    // the host end is usable once it is operationally up (normally at once)
    let mut host_end = None;
    if !s.c.disable_container_interface {
        for wait_ms in [0u64, 10, 50, 200, 500, 1000, 1000] {
            std::thread::sleep(Duration::from_millis(wait_ms));
            let l = host.link_by_index(veth)?;
            if l.oper_up {
                host_end = Some(l);
                break;
            }
        }
        if host_end.is_none() {
            return Err(CniError::internal("bridge port in error state"));
        }
    }
    let host_end = match host_end {
        Some(l) => l,
        None => host.link_by_index(veth)?,
    };
    result.interfaces[1].mac = host_end.mac_string();
    result.interfaces[0].mac = host.link_by_index(br.index)?.mac_string();
    common::apply_dns(&mut result, &s.c.net);
    rb.commit();
    Ok(result)
}

/// The `<bridge>.<vlan>` host interface that carries the gateway address of a VLAN network.
fn ensure_vlan_interface(host: &mut Netlink, br: &Link, s: &Setup, result: &mut Result100) -> Result<Link, CniError> {
    let name = format!("{}.{}", br.name, s.vlan);
    let link = match host.link_by_name(&name) {
        Ok(l) => l,
        Err(e) if e.is_not_found() => {
            let here = NetNs::current()?;
            let mut same = Netlink::new()?;
            let pair = setup_veth(host, &mut same, &here, &name, Some(br.mtu), None)?;
            host.set_master(pair.host.index, Some(br.index))?;
            setup_port_vlans(host, pair.host.index, s.vlan, &[], s.c.preserve_default_vlan)?;
            host.set_up(pair.container.index, true)?;
            host.link_by_name(&name)?
        }
        Err(e) => return Err(e.into()),
    };
    if !result.interfaces.iter().any(|i| i.name == name) {
        result.interfaces.push(Interface::new(&name, link.mac_string(), ""));
    }
    Ok(link)
}

impl Plugin for Bridge {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let s = load(args)?;
        Ok(add(args, &s)?.into())
    }

    fn del(&self, args: &CmdArgs) -> Result<(), CniError> {
        // only what DEL needs is read: a value an ADD was refused for (a bad MAC, VLAN, MTU)
        // must not block it
        let c = common::DelConf::read(args)?;
        let o = Owner::new(&c.name, &args.container_id, &args.ifname);
        // the result's interfaces: bridge, host veth (1), container veth
        veth::del(args, &c, &o, 1, c.flag("ipMasq") || c.flag("macspoofchk"), |nft| spoofchk::teardown(nft, &o))
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(args)?;
        if let Some(t) = &s.ipam {
            delegate::check(t, args)?;
        }
        let (_, prev) = args.required_prev_result(&s.c.net, "Required prevResult missing")?;
        let fail = |m: String| Err(CniError::internal(m));
        let br_if = prev.interfaces.iter().find(|i| i.name == s.c.bridge);
        let cont_if = prev.interfaces.iter().find(|i| i.name == args.ifname && i.sandbox == args.netns);
        let Some(br_if) = br_if else { return fail(format!("CNI created bridge {} in host namespace was not found", s.c.bridge)) };
        let Some(cont_if) = cont_if else { return fail(format!("Sandbox in prevResult doesn't match configured netns: {}", args.netns)) };
        let mut host = Netlink::new()?;
        let br = host.link_by_name(&br_if.name).map_err(|_| CniError::internal(format!("Interface name {} not found", br_if.name)))?;
        if br.kind.as_deref() != Some("bridge") {
            return fail(format!("Interface {} does not have link type of bridge", br.name));
        }
        if !br_if.mac.is_empty() && br_if.mac != br.mac_string() {
            return fail(format!("Bridge interface {} Mac doesn't match: {}", br.name, br_if.mac));
        }
        if br.promisc != s.c.promisc {
            return fail(format!(
                "Bridge interface {} configured Promisc Mode {} doesn't match current state: {} ",
                br.name, s.c.promisc, br.promisc
            ));
        }
        let (_, mut cont) = common::open_container(&args.netns)?;
        let c = cont.link_by_name(&args.ifname).map_err(|_| CniError::internal(format!("Interface name {} not found", args.ifname)))?;
        if c.kind.as_deref() != Some("veth") {
            return fail(format!("Error: Container interface {} not of type veth", c.name));
        }
        if !cont_if.mac.is_empty() && cont_if.mac != c.mac_string() {
            return fail(format!("Interface {} Mac {} doesn't match container Mac: {}", c.name, cont_if.mac, c.mac_string()));
        }
        let (peer, _) = c.veth_peer()?;
        let mut veth_found = false;
        for i in prev.interfaces.iter().filter(|i| i.name != br_if.name && i.name != cont_if.name) {
            let Ok(l) = host.link_by_name(&i.name) else { return fail(format!("Interface name {} not found", i.name)) };
            if l.kind.as_deref() != Some("veth") || l.index != peer || l.master != Some(br.index) {
                continue;
            }
            if !i.mac.is_empty() && i.mac != l.mac_string() {
                return fail(format!("Interface {} Mac doesn't match: {} not found", l.name, i.mac));
            }
            veth_found = true;
        }
        if !veth_found {
            return fail(format!("CNI veth created for bridge {} was not found", s.c.bridge));
        }
        veth::check_ips_and_routes(&mut cont, &args.ifname, c.index, &prev)?;
        let o = owner(args, &s);
        if s.c.masq.ip_masq && s.ipam.is_some() {
            veth::check_masquerade(&o, &args.ifname)?;
        }
        if s.c.macspoofchk && !spoofchk::present(&mut *nft::shared()?, &o)? {
            return fail(format!("MAC spoof check for {} is missing", args.ifname));
        }
        Ok(())
    }

    fn gc(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(args)?;
        let network = &s.c.net.name;
        veth::gc(args, network, s.ipam.as_deref(), |nft, tags, failures| {
            failures.note("spoof check GC", spoofchk::gc(nft, network, tags));
        })
    }

    fn status(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(args)?;
        veth::status(args, s.ipam.as_deref(), s.c.masq.ip_masq || s.c.macspoofchk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(min: Option<i64>, max: Option<i64>, id: Option<i64>) -> Trunk {
        Trunk { min_id: min, max_id: max, id }
    }

    #[test]
    fn trunk_rules() {
        assert_eq!(
            collect_trunk(&[t(Some(101), Some(103), None), t(None, None, Some(200)), t(None, None, Some(102))]).unwrap(),
            vec![101, 102, 103, 200]
        );
        assert_eq!(collect_trunk(&[t(Some(0), Some(3), None)]).unwrap_err().msg, "incorrect trunk minID parameter");
        assert_eq!(collect_trunk(&[t(Some(1), Some(4095), None)]).unwrap_err().msg, "incorrect trunk maxID parameter");
        assert_eq!(collect_trunk(&[t(Some(5), Some(3), None)]).unwrap_err().msg, "minID is greater than maxID in trunk parameter");
        assert!(collect_trunk(&[t(None, Some(3), None)]).unwrap_err().msg.contains("minID is missing"));
        assert!(collect_trunk(&[t(Some(3), None, None)]).unwrap_err().msg.contains("maxID is missing"));
        assert_eq!(collect_trunk(&[t(None, None, Some(4095))]).unwrap_err().msg, "incorrect trunk id parameter");
        assert!(collect_trunk(&[]).unwrap().is_empty());
    }

    #[test]
    fn gateway_default() {
        assert_eq!(default_gateway(&"10.1.2.9/24".parse().unwrap()).to_string(), "10.1.2.1");
        assert_eq!(default_gateway(&"fd00::9/64".parse().unwrap()).to_string(), "fd00::1");
    }
}

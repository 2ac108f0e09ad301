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

use crate::{delegate, kernel};
use cni_plugin::{Attachments, CmdArgs, Failures, Plugin};
use cni_types::result::{Interface, Result100, Route};
use cni_types::{CniError, CniResult, NetConf};
use ipnet::IpNet;
use netkit::iface::{configure_iface, enable_forwarding, remove_veth, setup_veth, ConfigureOpts};
use netkit::netlink::{parse_mac, AddrFlags, BridgePortOpts, Link, LinkKind, LinkSpec};
use netkit::nft::Nft;
use netkit::owner::{valid_tags, Owner};
use netkit::{masq, sysctl, NetNs, Netlink};
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
    #[serde(rename = "ipMasq", default)]
    ip_masq: bool,
    #[serde(rename = "ipMasqBackend", default)]
    ip_masq_backend: Option<String>,
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
    if !(0..=65535).contains(&c.mtu) {
        return Err(invalid(format!("invalid MTU {}", c.mtu)));
    }
    match c.ip_masq_backend.as_deref() {
        None | Some("") | Some("nftables") | Some("iptables") => {}
        Some(other) => {
            return Err(CniError::unsupported_field("ipMasqBackend", format!("unknown backend {other:?} (iptables or nftables)")))
        }
    }
    let ipam = c.net.ipam.as_ref().map(|i| i.ipam_type.clone()).filter(|t| !t.is_empty());
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
    let mtu = (c.mtu > 0).then_some(c.mtu as u32);
    let vlan = c.vlan as u16;
    Ok(Setup { c, ipam, mtu, vlan, trunk, mac })
}

fn owner(args: &CmdArgs, s: &Setup) -> Owner {
    Owner::new(&s.c.net.name, &args.container_id, &args.ifname)
}

/// Creates the bridge if needed and brings it up; an existing non-bridge link of that name is an
/// error. (An existing bridge is not reconfigured, as in the reference.)
fn ensure_bridge(nl: &mut Netlink, s: &Setup) -> Result<Link, CniError> {
    let name = &s.c.bridge;
    let br = match nl.link_by_name(name) {
        Ok(l) => l,
        Err(e) if e.is_not_found() => {
            let vlan_filtering = (s.vlan != 0 || s.c.vlan_trunk.is_some()).then_some(true);
            let mut spec = LinkSpec::new(name.clone(), LinkKind::Bridge { vlan_filtering });
            spec.mtu = s.mtu;
            match nl.add_link(&spec) {
                Ok(()) => {}
                Err(e) if e.is_exists() => {} // created concurrently
                Err(e) if e.is_not_supported() && vlan_filtering.is_some() => {
                    return Err(CniError::unsupported_field("vlan", format!("this kernel lacks bridge VLAN filtering (802.1Q): {e}")))
                }
                Err(e) => return Err(kernel(e)),
            }
            nl.link_by_name(name).map_err(kernel)?
        }
        Err(e) => return Err(kernel(e)),
    };
    if br.kind.as_deref() != Some("bridge") {
        return Err(invalid(format!("{name:?} already exists but is not a bridge")));
    }
    if s.c.promisc && !br.promisc {
        nl.set_promisc(br.index, true).map_err(kernel)?;
    }
    let _ = sysctl::write(&format!("net/ipv6/conf/{name}/accept_ra"), "0");
    if !br.up {
        nl.set_up(br.index, true).map_err(kernel)?;
    }
    Ok(br)
}

/// Puts the gateway address on the bridge (or its VLAN interface). A different address of the
/// family (IPv4), or an overlapping one (IPv6), is an error unless `forceAddress` replaces it.
fn ensure_addr(nl: &mut Netlink, link: &Link, gw: IpNet, force: bool, dad: bool) -> Result<(), CniError> {
    let v6 = gw.addr().is_ipv6();
    for a in nl.addrs(Some(link.index), Some(v6)).map_err(kernel)? {
        if a.scope == 253 && v6 {
            continue; // link-local
        }
        if a.addr == gw {
            return Ok(());
        }
        if !v6 || a.addr.contains(&gw.addr()) || gw.contains(&a.addr.addr()) {
            if force {
                nl.del_addr(link.index, a.addr).map_err(kernel)?;
            } else {
                return Err(CniError::internal(format!("{:?} already has an IP address different from {gw}", link.name)));
            }
        }
    }
    match nl.add_addr(link.index, gw, AddrFlags { nodad: v6 && !dad }) {
        Ok(()) => {}
        Err(e) if e.is_exists() => {}
        Err(e) => return Err(kernel(e)),
    }
    // pin the bridge's current MAC (taken from its ports) so it stops changing as ports come
    // and go; a bridge without ports has none to pin
    let now = nl.link_by_index(link.index).map_err(kernel)?;
    if let Ok(mac) = <[u8; 6]>::try_from(now.mac.as_slice()) {
        if mac != [0; 6] {
            nl.set_mac(link.index, mac).map_err(kernel)?;
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
        for vid in nl.bridge_vlans(port).map_err(kernel)? {
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

/// What an ADD has done so far, undone in reverse if it fails.
#[derive(Default)]
struct Undo {
    host_veth: Option<u32>,
    spoofchk: bool,
    ipam: bool,
    masq: bool,
}

impl Undo {
    fn run(self, args: &CmdArgs, s: &Setup, host: &mut Netlink) {
        let o = owner(args, s);
        if let Ok(mut nft) = Nft::new() {
            if self.masq {
                let _ = masq::teardown(&mut nft, &o, &[]);
            }
            if self.spoofchk {
                let _ = spoofchk::teardown(&mut nft, &o);
            }
        }
        if let Some(idx) = self.host_veth {
            let _ = host.del_link(idx);
        }
        if self.ipam {
            if let Some(t) = &s.ipam {
                let _ = delegate::del(t, args);
            }
        }
    }
}

/// The network address + 1 (the reference's default gateway).
fn default_gateway(addr: &IpNet) -> IpAddr {
    ipam::ip::add(addr.network(), 1)
}

fn add(args: &CmdArgs, s: &Setup, undo: &mut Undo, host: &mut Netlink) -> Result<Result100, CniError> {
    let cont_ns = NetNs::open(&args.netns).map_err(|e| CniError::internal(format!("failed to open netns {:?}: {e}", args.netns)))?;
    let mut cont = Netlink::open_in(&cont_ns).map_err(kernel)?;
    if cont.link_by_name(&args.ifname).is_ok() {
        return Err(CniError::internal(format!("container veth name ({:?}) already exists", args.ifname)));
    }
    let br = ensure_bridge(host, s)?;
    let pair = setup_veth(host, &mut cont, &cont_ns, &args.ifname, s.mtu, s.mac).map_err(kernel)?;
    undo.host_veth = Some(pair.host.index);
    host.set_master(pair.host.index, Some(br.index)).map_err(kernel)?;
    host.set_bridge_port(
        pair.host.index,
        BridgePortOpts { hairpin: Some(s.c.hairpin), isolated: Some(s.c.port_isolation), learning: None },
    )
    .map_err(kernel)?;
    setup_port_vlans(host, pair.host.index, s.vlan, &s.trunk, s.c.preserve_default_vlan)?;

    let mut result = Result100 {
        cni_version: cni_types::version::CURRENT.into(),
        interfaces: vec![
            Interface::new(&br.name, br.mac_string(), ""),
            Interface::new(&pair.host.name, pair.host.mac_string(), ""),
            Interface::new(&pair.container.name, pair.container.mac_string(), &args.netns),
        ],
        ..Default::default()
    };

    if s.c.macspoofchk {
        let mac = <[u8; 6]>::try_from(pair.container.mac.as_slice()).map_err(|_| CniError::internal("container veth has no MAC"))?;
        let mut nft = Nft::new().map_err(kernel)?;
        undo.spoofchk = true;
        spoofchk::setup(&mut nft, &owner(args, s), &pair.host.name, mac).map_err(kernel)?;
    }

    if let Some(ipam_type) = &s.ipam {
        undo.ipam = true;
        let r = delegate::add(ipam_type, args)?.to_current().map_err(|e| CniError::decoding(e.to_string()))?;
        if r.ips.is_empty() {
            return Err(CniError::internal("IPAM plugin returned missing IP config"));
        }
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
                    gws.push(IpNet::new(gw, addr.prefix_len()).expect("same family prefix"));
                }
            }
        }
        let ifname = args.ifname.clone();
        cont_ns
            .run(|| {
                if s.c.enabledad {
                    let _ = sysctl::write(&format!("net/ipv6/conf/{ifname}/enhanced_dad"), "1");
                    let _ = sysctl::write(&format!("net/ipv6/conf/{ifname}/accept_dad"), "1");
                } else {
                    let _ = sysctl::write(&format!("net/ipv6/conf/{ifname}/accept_dad"), "0");
                }
                let _ = sysctl::write(&format!("net/ipv4/conf/{ifname}/arp_notify"), "1");
            })
            .map_err(kernel)?;
        configure_iface(&mut cont, &cont_ns, &args.ifname, &result, ConfigureOpts { dad: s.c.enabledad }).map_err(kernel)?;
        if s.c.is_gw {
            let gw_link = if s.vlan != 0 { ensure_vlan_interface(host, &br, s, &mut result)? } else { br.clone() };
            for gw in &gws {
                ensure_addr(host, &gw_link, *gw, s.c.force_address, s.c.enabledad)?;
            }
            enable_forwarding(gws.iter().any(|g| g.addr().is_ipv4()), gws.iter().any(|g| g.addr().is_ipv6())).map_err(kernel)?;
        }
        if s.c.ip_masq {
            let mut nft = Nft::new().map_err(kernel)?;
            undo.masq = true;
            let addrs: Vec<IpNet> = result.ips.iter().map(|i| i.address).collect();
            masq::setup(&mut nft, &owner(args, s), &addrs).map_err(kernel)?;
        }
    } else if !s.c.disable_container_interface {
        cont.set_up(pair.container.index, true).map_err(kernel)?;
    }

    // the host end is usable once it is operationally up (normally at once)
    let mut host_end = None;
    if !s.c.disable_container_interface {
        for wait_ms in [0u64, 10, 50, 200, 500, 1000, 1000] {
            std::thread::sleep(Duration::from_millis(wait_ms));
            let l = host.link_by_index(pair.host.index).map_err(kernel)?;
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
        None => host.link_by_index(pair.host.index).map_err(kernel)?,
    };
    result.interfaces[1].mac = host_end.mac_string();
    result.interfaces[0].mac = host.link_by_index(br.index).map_err(kernel)?.mac_string();
    if !s.c.net.dns.is_empty() {
        result.dns = s.c.net.dns.clone();
    }
    Ok(result)
}

/// The `<bridge>.<vlan>` host interface that carries the gateway address of a VLAN network.
fn ensure_vlan_interface(host: &mut Netlink, br: &Link, s: &Setup, result: &mut Result100) -> Result<Link, CniError> {
    let name = format!("{}.{}", br.name, s.vlan);
    let link = match host.link_by_name(&name) {
        Ok(l) => l,
        Err(e) if e.is_not_found() => {
            let here = NetNs::current().map_err(kernel)?;
            let mut same = Netlink::new().map_err(kernel)?;
            let pair = setup_veth(host, &mut same, &here, &name, Some(br.mtu), None).map_err(kernel)?;
            host.set_master(pair.host.index, Some(br.index)).map_err(kernel)?;
            setup_port_vlans(host, pair.host.index, s.vlan, &[], s.c.preserve_default_vlan)?;
            host.set_up(pair.container.index, true).map_err(kernel)?;
            host.link_by_name(&name).map_err(kernel)?
        }
        Err(e) => return Err(kernel(e)),
    };
    if !result.interfaces.iter().any(|i| i.name == name) {
        result.interfaces.push(Interface::new(&name, link.mac_string(), ""));
    }
    Ok(link)
}

impl Plugin for Bridge {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let s = load(args)?;
        let mut host = Netlink::new().map_err(kernel)?;
        let mut undo = Undo::default();
        match add(args, &s, &mut undo, &mut host) {
            Ok(r) => Ok(r.into()),
            Err(e) => {
                undo.run(args, &s, &mut host);
                Err(e)
            }
        }
    }

    fn del(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(args)?;
        let o = owner(args, &s);
        let prev = args.prev_result(&s.c.net).ok().flatten().and_then(|p| p.to_current().ok());
        // 1. firewall objects first: the addresses are still ours until IPAM releases them
        let hint: Vec<IpAddr> = prev.iter().flat_map(|p| p.ips.iter().map(|i| i.address.addr())).collect();
        let mut nft = Nft::new().map_err(kernel)?;
        masq::teardown(&mut nft, &o, &hint).map_err(kernel)?;
        spoofchk::teardown(&mut nft, &o).map_err(kernel)?;
        drop(nft);
        // 2. the veth: through its host end when prevResult names it (no namespace switch), else
        //    by name inside the container; gone is fine
        let mut host = Netlink::new().map_err(kernel)?;
        let host_end = prev.as_ref().and_then(|p| p.interfaces.get(1)).filter(|i| i.sandbox.is_empty() && !i.mac.is_empty());
        remove_veth(&mut host, host_end.map(|h| (h.name.as_str(), h.mac.as_str())), &args.netns, &args.ifname).map_err(kernel)?;
        // 3. the lease
        if let Some(t) = &s.ipam {
            delegate::del(t, args)?;
        }
        Ok(())
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(args)?;
        if let Some(t) = &s.ipam {
            delegate::check(t, args)?;
        }
        let prev = args.prev_result(&s.c.net)?.ok_or_else(|| invalid("Required prevResult missing"))?;
        let prev = prev.to_current().map_err(|e| CniError::decoding(e.to_string()))?;
        let fail = |m: String| Err(CniError::internal(m));
        let br_if = prev.interfaces.iter().find(|i| i.name == s.c.bridge);
        let cont_if = prev.interfaces.iter().find(|i| i.name == args.ifname && i.sandbox == args.netns);
        let Some(br_if) = br_if else { return fail(format!("CNI created bridge {} in host namespace was not found", s.c.bridge)) };
        let Some(cont_if) = cont_if else { return fail(format!("Sandbox in prevResult doesn't match configured netns: {}", args.netns)) };
        let mut host = Netlink::new().map_err(kernel)?;
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
        let ns = NetNs::open(&args.netns).map_err(kernel)?;
        let mut cont = Netlink::open_in(&ns).map_err(kernel)?;
        let c = cont.link_by_name(&args.ifname).map_err(|_| CniError::internal(format!("Interface name {} not found", args.ifname)))?;
        if c.kind.as_deref() != Some("veth") {
            return fail(format!("Error: Container interface {} not of type veth", c.name));
        }
        if !cont_if.mac.is_empty() && cont_if.mac != c.mac_string() {
            return fail(format!("Interface {} Mac {} doesn't match container Mac: {}", c.name, cont_if.mac, c.mac_string()));
        }
        let (peer, _) = c.veth_peer().map_err(kernel)?;
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
        check_ips_and_routes(&mut cont, &args.ifname, c.index, &prev)?;
        let o = owner(args, &s);
        let mut nft = Nft::new().map_err(kernel)?;
        if s.c.ip_masq && s.ipam.is_some() && masq::owned_addresses(&mut nft, &o).map_err(kernel)?.is_empty() {
            return fail(format!("masquerade for {} is missing", args.ifname));
        }
        if s.c.macspoofchk && !spoofchk::present(&mut nft, &o).map_err(kernel)? {
            return fail(format!("MAC spoof check for {} is missing", args.ifname));
        }
        Ok(())
    }

    fn gc(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(args)?;
        let Some(valid) = args.valid_attachments()? else { return Ok(()) };
        let mut failures = Failures::new();
        gc_masq(&s.c.net.name, &valid, &mut failures, true);
        if let Some(t) = &s.ipam {
            failures.note("IPAM GC", delegate::gc(t, args));
        }
        failures.finish()
    }

    fn status(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(args)?;
        if let Some(t) = &s.ipam {
            delegate::status(t, args)?;
        }
        if s.c.ip_masq || s.c.macspoofchk {
            delegate::nft_status(masq::TABLE)?;
        }
        Ok(())
    }
}

/// GC of the network's masquerade elements and (with `spoof_check`) spoof-check rules whose owner
/// is not among `valid` (shared with ptp).
pub(crate) fn gc_masq(network: &str, valid: &Attachments, failures: &mut Failures, spoof_check: bool) {
    let tags = valid_tags(network, valid);
    let Some(mut nft) = failures.note("opening nftables", Nft::new()) else { return };
    failures.note("masquerade GC", masq::gc(&mut nft, network, &tags));
    if spoof_check {
        failures.note("spoof check GC", spoofchk::gc(&mut nft, network, &tags));
    }
}

/// Every address of the result on the interface, and every route present (the reference's
/// `ValidateExpectedInterfaceIPs` and `ValidateExpectedRoute`).
pub(crate) fn check_ips_and_routes(nl: &mut Netlink, ifname: &str, index: u32, prev: &Result100) -> Result<(), CniError> {
    let addrs = nl.addrs(Some(index), None).map_err(kernel)?;
    for ipc in &prev.ips {
        if ipc.interface.and_then(|i| prev.interfaces.get(i)).is_some_and(|i| i.name != ifname) {
            continue;
        }
        if !addrs.iter().any(|a| a.addr == ipc.address) {
            return Err(CniError::internal(format!("Failed to match addr {} on interface {ifname}", ipc.address)));
        }
    }
    // one dump per family
    let mut tables: [Option<Vec<netkit::netlink::Route>>; 2] = [None, None];
    for r in &prev.routes {
        let v6 = r.dst.addr().is_ipv6();
        let routes = match &mut tables[usize::from(v6)] {
            Some(t) => t,
            slot => slot.insert(nl.routes(v6, None).map_err(kernel)?),
        };
        if !routes.iter().any(|x| x.dst == r.dst.trunc() && (r.gw.is_none() || x.gw == r.gw || x.multipath.iter().any(|h| h.gw == r.gw))) {
            return Err(CniError::internal(format!("Failed to find route {} via {:?} on {ifname}", r.dst, r.gw)));
        }
    }
    Ok(())
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

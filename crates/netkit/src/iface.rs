//! What several plugins do to interfaces: make a veth pair between the host and a container,
//! and configure an interface from a CNI result (addresses, link up, routes) — the reference's
//! `ip.SetupVeth` and `ipam.ConfigureIface`, over netlink and `/proc/sys`.

use crate::error::{Error, Result};
use crate::netlink::{AddrFlags, Link, LinkKind, LinkSpec, Netlink, RouteSpec, VethPeer};
use crate::netns::NetNs;
use crate::owner::is_stale;
use crate::sysctl;
use cni_types::result::Result100;
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// GC of links rcni made for attachments: deletes every link of `kind` whose alias is an owner
/// comment of `network` with a tag not in `valid_tags` (one dump of the links). Links of other
/// kinds, networks or tools are never touched. Returns the names deleted and the failures.
pub fn gc_owned_links(nl: &mut Netlink, kind: &str, network: &str, valid_tags: &HashSet<String>) -> Result<(Vec<String>, Vec<Error>)> {
    let (mut deleted, mut failed) = (Vec::new(), Vec::new());
    for l in nl.links()? {
        if l.kind.as_deref() != Some(kind) || !is_stale(l.alias.as_deref(), network, valid_tags) {
            continue;
        }
        match nl.del_link(l.index) {
            Ok(()) => deleted.push(l.name),
            Err(e) if e.is_not_found() => {}
            Err(e) => failed.push(e.context(format!("deleting {}", l.name))),
        }
    }
    Ok((deleted, failed))
}

/// Deletes an attachment's veth pair; gone is fine. Through its host end when `host_end`
/// (name, MAC, as the result reported it) still names a veth with that MAC — no namespace
/// switch — else by `ifname` inside the namespace at `netns` (empty or vanished: nothing to do).
pub fn remove_veth(host: &mut Netlink, host_end: Option<(&str, &str)>, netns: &str, ifname: &str) -> Result<()> {
    if let Some((name, mac)) = host_end {
        if let Ok(l) = host.link_by_name(name) {
            if l.mac_string() == mac && l.kind.as_deref() == Some("veth") {
                return match host.del_link(l.index) {
                    Err(e) if !e.is_not_found() => Err(e),
                    _ => Ok(()),
                };
            }
        }
    }
    if netns.is_empty() {
        return Ok(());
    }
    let gone = |r: Result<()>| match r {
        Err(e) if !e.is_not_found() => Err(e),
        _ => Ok(()),
    };
    match NetNs::open_if_present(netns)? {
        Some(ns) => {
            let mut cont = Netlink::open_in(&ns)?;
            gone(cont.link_by_name(ifname).and_then(|l| cont.del_link(l.index)))
        }
        None => Ok(()),
    }
}

/// How long IPv6 duplicate address detection may take before ADD fails (as the reference).
pub const DAD_TIMEOUT: Duration = Duration::from_secs(5);

/// A random host-side veth name, `veth` + 8 hex digits.
pub fn random_veth_name() -> Result<String> {
    let mut b = [0u8; 4];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .map_err(|e| Error::io("reading /dev/urandom", e))?;
    Ok(format!("veth{:02x}{:02x}{:02x}{:02x}", b[0], b[1], b[2], b[3]))
}

/// The two ends of a new veth pair.
#[derive(Debug, Clone)]
pub struct VethPair {
    pub host: Link,
    pub container: Link,
}

/// Creates a veth pair: `ifname` inside `cont_ns` (with `mac` if given, left down) and a randomly
/// named peer on the host (up, `accept_ra` 0). Both ends get `mtu` when given. An existing
/// `ifname` in the container is an error; a host name clash is retried with a new name.
pub fn setup_veth(
    host: &mut Netlink,
    cont: &mut Netlink,
    cont_ns: &NetNs,
    ifname: &str,
    mtu: Option<u32>,
    mac: Option<[u8; 6]>,
) -> Result<VethPair> {
    for _ in 0..10 {
        let host_name = random_veth_name()?;
        let mut spec = LinkSpec::new(host_name.clone(), LinkKind::Veth(VethPeer { name: ifname.into(), netns: Some(cont_ns), mac, mtu }));
        spec.mtu = mtu;
        match host.add_link(&spec) {
            Ok(()) => {}
            Err(e) if e.is_exists() => {
                if host.link_by_name(&host_name).is_ok() {
                    continue; // our random name is taken: pick another
                }
                return Err(Error::msg(format!("creating veth {ifname}"), format!("container veth name ({ifname:?}) already exists")));
            }
            Err(e) => return Err(e),
        }
        // the pair exists: a failure (or a panic) from here on removes it
        let guard = NewVeth { host_name: &host_name };
        let h = host.link_by_name(&host_name)?;
        // no router advertisements, and no DAD delay for the host end's link-local address
        let _ = sysctl::write(&format!("net/ipv6/conf/{host_name}/accept_ra"), "0");
        let _ = sysctl::write(&format!("net/ipv6/conf/{host_name}/accept_dad"), "0");
        host.set_up(h.index, true)?;
        let c = cont.link_by_name(ifname)?;
        let h = host.link_by_index(h.index)?;
        std::mem::forget(guard);
        return Ok(VethPair { host: h, container: c });
    }
    Err(Error::msg(format!("creating veth {ifname}"), "failed to find a unique veth name"))
}

/// A veth pair [`setup_veth`] made and has not handed over yet: removed when dropped (deleting
/// one end deletes both).
struct NewVeth<'a> {
    host_name: &'a str,
}

impl Drop for NewVeth<'_> {
    fn drop(&mut self) {
        let name = self.host_name;
        match Netlink::new().and_then(|mut nl| nl.link_by_name(name).and_then(|l| nl.del_link(l.index))) {
            Err(e) if !e.is_not_found() => tracing::warn!("removing veth {name} after a failed setup: {e}"),
            _ => {}
        }
    }
}

/// How an interface is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConfigureOpts {
    /// Run IPv6 duplicate address detection (and wait for it) instead of adding addresses
    /// usable at once.
    pub dad: bool,
    /// Announce the interface's addresses when it comes up or changes MAC (`arp_notify`).
    pub arp_notify: bool,
}

/// Configures `ifname` (inside `ns`, reached through `nl`) from `result`: the addresses whose
/// `interface` index names it, link up, then the routes (a route without a gateway uses the
/// family's first gateway, unless it is scoped to the link). Its sysctls are written in one visit of the namespace first: DAD off
/// (or `enhanced_dad` on with `opts.dad`), `arp_notify` when asked, IPv6 enabled when it gets an
/// IPv6 address. An address whose interface index does not name `ifname` fails before anything
/// changes; other errors name what failed.
pub fn configure_iface(nl: &mut Netlink, ns: &NetNs, ifname: &str, result: &Result100, opts: ConfigureOpts) -> Result<()> {
    if result.interfaces.is_empty() {
        return Err(Error::msg(format!("configuring {ifname}"), "no interfaces to configure"));
    }
    let mine: Vec<&cni_types::result::IpConfig> = result.ips.iter().filter(|i| i.interface.is_some()).collect();
    for ipc in &mine {
        let idx = ipc.interface.unwrap_or_default();
        if idx >= result.interfaces.len() || result.interfaces[idx].name != ifname {
            return Err(Error::msg(format!("adding address {} to {ifname:?}", ipc.address), "invalid interface index"));
        }
    }
    let any_v6 = mine.iter().any(|i| i.address.addr().is_ipv6());
    let link = nl.link_by_name(ifname)?;
    ns.run(|| -> Result<()> {
        // best effort: without IPv6 in the kernel these files do not exist
        if opts.dad {
            let _ = sysctl::write(&format!("net/ipv6/conf/{ifname}/enhanced_dad"), "1");
            let _ = sysctl::write(&format!("net/ipv6/conf/{ifname}/accept_dad"), "1");
        } else {
            let _ = sysctl::write(&format!("net/ipv6/conf/{ifname}/accept_dad"), "0");
        }
        if opts.arp_notify {
            let _ = sysctl::write(&format!("net/ipv4/conf/{ifname}/arp_notify"), "1");
        }
        if any_v6 {
            for dev in ["lo", ifname] {
                let key = format!("net/ipv6/conf/{dev}/disable_ipv6");
                if sysctl::read(&key).map(|v| v != "0").unwrap_or(false) {
                    sysctl::write(&key, "0").map_err(|e| e.context(format!("enabling IPv6 on {dev}")))?;
                }
            }
            sysctl::write(&format!("net/ipv6/conf/{ifname}/keep_addr_on_down"), "1")?;
        }
        Ok(())
    })??;
    let (mut gw4, mut gw6): (Option<IpAddr>, Option<IpAddr>) = (None, None);
    for ipc in &mine {
        let v6 = ipc.address.addr().is_ipv6();
        nl.add_addr(link.index, ipc.address, AddrFlags { nodad: v6 && !opts.dad })
            .map_err(|e| e.context(format!("configuring {ifname}")))?;
        if let Some(gw) = ipc.gateway {
            let slot = if gw.is_ipv4() { &mut gw4 } else { &mut gw6 };
            if slot.is_none() {
                *slot = Some(gw);
            }
        }
    }
    nl.set_up(link.index, true)?;
    if any_v6 && opts.dad {
        settle_addresses(nl, link.index, ifname, DAD_TIMEOUT)?;
    }
    for r in &result.routes {
        let v4 = r.dst.addr().is_ipv4();
        // a route scoped to the link (253) is on-link: the kernel refuses a gateway for it
        // ("Nexthop has invalid gateway"), so none is filled in
        let on_link = r.gw.is_none() && r.scope == Some(253);
        let gw = if on_link { None } else { r.gw.or(if v4 { gw4 } else { gw6 }) };
        let mut spec = RouteSpec::new(r.dst).dev(link.index);
        spec.gw = gw;
        if r.priority != 0 {
            spec.priority = Some(r.priority);
        }
        if let Some(t) = r.table {
            spec.table = t;
        }
        spec.scope = r.scope;
        nl.append_route(&spec).map_err(|e| e.context(format!("configuring routes of {ifname}")))?;
    }
    Ok(())
}

/// Waits until no IPv6 address of the link is tentative; a failed DAD is an error.
pub fn settle_addresses(nl: &mut Netlink, index: u32, ifname: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let addrs = nl.addrs(Some(index), Some(true))?;
        if let Some(bad) = addrs.iter().find(|a| a.is_dad_failed()) {
            return Err(Error::msg(format!("settling addresses of {ifname}"), format!("{} failed duplicate address detection", bad.addr)));
        }
        if !addrs.iter().any(|a| a.is_tentative() && a.scope != 253) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::msg(format!("settling addresses of {ifname}"), "timed out waiting for duplicate address detection"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Enables IPv4 and/or IPv6 forwarding on the host.
pub fn enable_forwarding(v4: bool, v6: bool) -> Result<()> {
    if v4 && sysctl::read("net.ipv4.ip_forward").ok().as_deref() != Some("1") {
        sysctl::write("net.ipv4.ip_forward", "1")?;
    }
    if v6 && sysctl::read("net/ipv6/conf/all/forwarding").ok().as_deref() != Some("1") {
        sysctl::write("net/ipv6/conf/all/forwarding", "1")?;
    }
    Ok(())
}

/// Whether the kernel can make links of `kind`, asked in a scratch namespace of its own
/// ([`crate::netns::scratch`]: nothing outside it is touched, and whatever the probe made goes
/// with it): a link of that kind is created there — on a veth as its parent for the kinds that
/// need one (macvlan, ipvlan, vlan). The kernel's "Unknown device type" is `false`; success is
/// `true`; any other refusal is an error. A few netlink requests, no waiting.
pub fn link_kind_supported(kind: &LinkKind) -> Result<bool> {
    let kind = kind.clone();
    crate::netns::scratch(move || -> Result<bool> {
        let mut nl = Netlink::new()?;
        let needs_parent = matches!(kind, LinkKind::Macvlan { .. } | LinkKind::Ipvlan { .. } | LinkKind::Vlan { .. });
        let mut spec = LinkSpec::new("probe0", kind);
        if needs_parent {
            let peer = VethPeer { name: "probe2".into(), netns: None, mac: None, mtu: None };
            nl.add_link(&LinkSpec::new("probe1", LinkKind::Veth(peer)))?;
            spec.parent = Some(nl.link_by_name("probe1")?.index);
        }
        match nl.add_link(&spec) {
            Ok(()) => Ok(true),
            Err(e) if crate::netlink::is_unknown_link_kind(&e) => Ok(false),
            Err(e) => Err(e),
        }
    })?
}

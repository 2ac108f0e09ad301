//! The vxlan data plane of a node in a cluster (`rcni node`, flannel's vxlan backend): one vxlan
//! device, and for every other node ("peer": its pod subnet, the MAC of its vxlan device, its
//! public IP) three kernel entries on that device:
//!
//! 1. a permanent neighbour: the peer subnet's network address (`.0`) → the peer's VTEP MAC;
//! 2. a permanent FDB entry of the device itself (`NTF_SELF`): that MAC → the peer's public IP;
//! 3. the route `subnet via <subnet .0> dev <vxlan> onlink`.
//!
//! A packet for a remote pod takes the route, gets the peer's MAC from the neighbour entry and
//! the outer destination from the FDB entry; no ARP, no multicast, no learning.
//!
//! [`ensure_device`] makes (or checks) the device, [`plan`] is the pure diff between the peers
//! wanted and what the device has ([`DeviceState`], read by [`read_state`]), and [`apply`] runs
//! it. The device belongs to the caller: every permanent neighbour and FDB entry on it and every
//! route through it in the main table (other than the kernel's own, `proto kernel`) that no peer
//! wants is deleted.

use crate::error::{Error, Result};
use crate::netlink::{AddrFlags, FdbEntry, Link, LinkKind, LinkSpec, Neighbour, Route, RouteSpec, Vxlan};
use crate::Netlink;
use ipnet::{IpNet, Ipv4Net};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

/// flannel's (and the Linux kernel's) default vxlan UDP port; IANA's is 4789.
pub const DEFAULT_PORT: u16 = 8472;

/// What VXLAN over IPv4 adds to a frame: outer IPv4 (20) + UDP (8) + VXLAN (8) headers and the
/// inner Ethernet header (14). The device's MTU is its underlay's minus this.
pub const OVERHEAD: u32 = 50;

/// `RTPROT_KERNEL`: routes the kernel adds for an address, never ours to delete.
const RTPROT_KERNEL: u8 = 2;
const MAIN_TABLE: u32 = 254;

/// The vxlan device a node wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    /// Its name (flannel: `flannel.<VNI>`).
    pub name: String,
    pub vni: u32,
    /// The node's public IP: the outer source address.
    pub local: Ipv4Addr,
    /// The index of the link that carries `local` (the underlay).
    pub underlay: u32,
    /// The UDP port ([`DEFAULT_PORT`] unless the cluster says otherwise).
    pub port: u16,
    /// `None`: the underlay's MTU minus [`OVERHEAD`].
    pub mtu: Option<u32>,
    /// A fixed MAC (`None`: the kernel's random one). With a fixed MAC, a recreated device keeps
    /// the VTEP MAC that the node published.
    pub mac: Option<[u8; 6]>,
    /// An address for the device (flannel gives it the node subnet's `.0/32`), so that the
    /// node's own packets to remote pods leave with a source in its subnet. It is made the
    /// device's only IPv4 address (`None`: addresses are left as they are).
    pub address: Option<Ipv4Net>,
}

impl DeviceConfig {
    /// `flannel.<vni>` on `underlay`, the default port, the derived MTU, no address.
    pub fn new(vni: u32, local: Ipv4Addr, underlay: u32) -> Self {
        DeviceConfig { name: format!("flannel.{vni}"), vni, local, underlay, port: DEFAULT_PORT, mtu: None, mac: None, address: None }
    }

    fn vxlan(&self) -> Vxlan {
        Vxlan { vni: self.vni, local: Some(self.local), underlay: Some(self.underlay), port: self.port, learning: false }
    }
}

/// Why an existing link of the device's name does not fit the config (`None`: it fits): the
/// settings only a new device can change.
pub fn mismatch(link: &Link, cfg: &DeviceConfig) -> Option<String> {
    let Some(have) = link.vxlan.filter(|_| link.kind.as_deref() == Some("vxlan")) else {
        return Some(format!("it is a {} link, not vxlan", link.kind.as_deref().unwrap_or("physical")));
    };
    let want = cfg.vxlan();
    let mut diffs = Vec::new();
    if have.vni != want.vni {
        diffs.push(format!("VNI {} (want {})", have.vni, want.vni));
    }
    if have.local != want.local {
        diffs.push(format!("local {:?} (want {})", have.local, cfg.local));
    }
    if have.underlay != want.underlay {
        diffs.push(format!("dev #{:?} (want #{})", have.underlay, cfg.underlay));
    }
    if have.port != want.port {
        diffs.push(format!("dstport {} (want {})", have.port, want.port));
    }
    if have.learning {
        diffs.push("learning on".to_string());
    }
    if let Some(mac) = cfg.mac {
        if link.mac != mac {
            diffs.push(format!("MAC {} (want {})", link.mac_string(), crate::netlink::format_mac(&mac)));
        }
    }
    (!diffs.is_empty()).then(|| diffs.join(", "))
}

/// Makes the vxlan device, or takes the existing one: a vxlan of that name whose VNI, local
/// address, underlay, port, learning or fixed MAC differ is deleted and made again (as flannel
/// does: these cannot be changed in place, and the peers' entries are programmed again by the
/// next [`apply`]); a link of that name of another kind is an error (it is not ours to delete).
/// Then the MTU is set, the address (when configured) made the device's only IPv4 address, and
/// the device set up. Returns the link as it is now.
pub fn ensure_device(nl: &mut Netlink, cfg: &DeviceConfig) -> Result<Link> {
    let op = || format!("setting up vxlan device {}", cfg.name);
    let mtu = match cfg.mtu {
        Some(m) => m,
        None => {
            let under = nl.link_by_index(cfg.underlay).map_err(|e| e.context(op()))?;
            under.mtu.checked_sub(OVERHEAD).ok_or_else(|| Error::msg(op(), format!("the underlay's MTU {} is too small", under.mtu)))?
        }
    };
    let existing = match nl.link_by_name(&cfg.name) {
        Ok(l) => Some(l),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e),
    };
    let existing = match existing {
        Some(l) if l.kind.as_deref() != Some("vxlan") => {
            return Err(Error::msg(op(), format!("a link {} exists and is not a vxlan device", cfg.name)))
        }
        Some(l) => match mismatch(&l, cfg) {
            None => Some(l),
            Some(why) => {
                tracing::info!(device = %cfg.name, %why, "vxlan device differs; making it again");
                nl.del_link(l.index)?;
                None
            }
        },
        None => None,
    };
    let link = match existing {
        Some(l) => l,
        None => {
            let mut spec = LinkSpec::new(cfg.name.clone(), LinkKind::Vxlan(cfg.vxlan()));
            spec.mtu = Some(mtu);
            spec.mac = cfg.mac;
            nl.add_link(&spec)?;
            nl.link_by_name(&cfg.name)?
        }
    };
    if link.mtu != mtu {
        nl.set_mtu(link.index, mtu)?;
    }
    if let Some(a) = cfg.address {
        // the one IPv4 address: one of an earlier subnet lease goes (as flannel does)
        let have = nl.addrs(Some(link.index), Some(false))?;
        for h in have.iter().filter(|h| h.addr != IpNet::V4(a)) {
            nl.del_addr(link.index, h.addr)?;
        }
        if !have.iter().any(|h| h.addr == IpNet::V4(a)) {
            nl.add_addr(link.index, IpNet::V4(a), AddrFlags::default())?;
        }
    }
    if !link.up {
        nl.set_up(link.index, true)?;
    }
    nl.link_by_index(link.index)
}

/// Another node, as the data plane needs it (never the node itself: a peer with the node's own
/// subnet would have its route replace the one to the local pods).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Peer {
    /// Its pod subnet.
    pub subnet: Ipv4Net,
    /// The MAC of its vxlan device.
    pub vtep_mac: [u8; 6],
    /// Its public IP: the outer destination.
    pub public_ip: Ipv4Addr,
}

impl Peer {
    /// The on-link gateway of the peer's subnet: its network address, which the peer's vxlan
    /// device answers for.
    pub fn gateway(&self) -> Ipv4Addr {
        self.subnet.network()
    }
}

/// What a vxlan device has now: its neighbours, its own FDB entries, the routes through it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceState {
    pub neighbours: Vec<Neighbour>,
    pub fdb: Vec<FdbEntry>,
    pub routes: Vec<Route>,
}

/// Reads the device's [`DeviceState`] (IPv4 neighbours, FDB, IPv4 routes of the main table).
pub fn read_state(nl: &mut Netlink, ifindex: u32) -> Result<DeviceState> {
    Ok(DeviceState {
        neighbours: nl.neighbours(Some(ifindex), false)?,
        fdb: nl.fdb(ifindex)?,
        routes: nl.routes(false, Some(MAIN_TABLE))?.into_iter().filter(|r| r.oif == Some(ifindex)).collect(),
    })
}

/// One kernel change on the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    DelRoute {
        subnet: Ipv4Net,
        gw: Option<IpAddr>,
    },
    DelNeighbour {
        ip: Ipv4Addr,
    },
    DelFdb {
        mac: [u8; 6],
        dst: IpAddr,
    },
    /// Add or replace.
    SetNeighbour {
        ip: Ipv4Addr,
        mac: [u8; 6],
    },
    /// Add, or point the MAC's entry at `dst`.
    SetFdb {
        mac: [u8; 6],
        dst: Ipv4Addr,
    },
    /// Add or replace `subnet via gw dev <device> onlink`.
    SetRoute {
        subnet: Ipv4Net,
        gw: Ipv4Addr,
    },
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mac = crate::netlink::format_mac;
        match self {
            Op::DelRoute { subnet, gw: Some(gw) } => write!(f, "route del {subnet} via {gw}"),
            Op::DelRoute { subnet, gw: None } => write!(f, "route del {subnet}"),
            Op::DelNeighbour { ip } => write!(f, "neigh del {ip}"),
            Op::DelFdb { mac: m, dst } => write!(f, "fdb del {} dst {dst}", mac(m)),
            Op::SetNeighbour { ip, mac: m } => write!(f, "neigh replace {ip} lladdr {}", mac(m)),
            Op::SetFdb { mac: m, dst } => write!(f, "fdb replace {} dst {dst}", mac(m)),
            Op::SetRoute { subnet, gw } => write!(f, "route replace {subnet} via {gw} onlink"),
        }
    }
}

/// The changes that make the device's entries exactly those of `peers`: stale routes,
/// neighbours and FDB entries deleted first (in that order: no traffic is routed to an entry on
/// its way out), then for each peer in subnet order its neighbour, FDB entry and route added or
/// corrected (flannel's order: the route only once the entries it needs exist). Nothing that
/// is already right is touched, so a second plan over the applied state is empty.
///
/// Not managed: neighbours the kernel made itself (not permanent), FDB entries without a
/// remote or of the all-zero MAC (a default destination), the kernel's own routes.
///
/// Two peers with the same subnet, overlapping subnets, or one VTEP MAC at two public IPs are
/// an error (the control plane's data is inconsistent; nothing should be changed on it).
pub fn plan(peers: &[Peer], current: &DeviceState) -> Result<Vec<Op>> {
    let mut peers: Vec<&Peer> = peers.iter().collect();
    peers.sort_by_key(|p| p.subnet);
    for w in peers.windows(2) {
        if w[0].subnet.contains(&w[1].subnet.network()) || w[1].subnet.contains(&w[0].subnet.network()) {
            return Err(Error::msg("planning the vxlan peers", format!("the subnets {} and {} overlap", w[0].subnet, w[1].subnet)));
        }
    }
    let mut mac_dst: BTreeMap<[u8; 6], Ipv4Addr> = BTreeMap::new();
    for p in &peers {
        if let Some(other) = mac_dst.insert(p.vtep_mac, p.public_ip).filter(|o| *o != p.public_ip) {
            return Err(Error::msg(
                "planning the vxlan peers",
                format!("VTEP MAC {} is at both {other} and {}", crate::netlink::format_mac(&p.vtep_mac), p.public_ip),
            ));
        }
    }
    let want_neigh: BTreeMap<Ipv4Addr, [u8; 6]> = peers.iter().map(|p| (p.gateway(), p.vtep_mac)).collect();
    let want_fdb: BTreeSet<([u8; 6], IpAddr)> = peers.iter().map(|p| (p.vtep_mac, IpAddr::V4(p.public_ip))).collect();
    let want_route: BTreeMap<Ipv4Net, Ipv4Addr> = peers.iter().map(|p| (p.subnet, p.gateway())).collect();

    let mut ops = Vec::new();
    // stale routes
    let mut routes_ok = BTreeSet::new();
    for r in &current.routes {
        if r.protocol == RTPROT_KERNEL || r.kind != 1 {
            continue;
        }
        let IpNet::V4(dst) = r.dst else { continue };
        match want_route.get(&dst) {
            Some(gw) if r.gw == Some(IpAddr::V4(*gw)) && r.onlink && r.multipath.is_empty() => {
                routes_ok.insert(dst);
            }
            // a wrong one to a wanted subnet is replaced below
            Some(_) => {}
            None => ops.push(Op::DelRoute { subnet: dst, gw: r.gw }),
        }
    }
    // stale neighbours
    let mut neigh_ok = BTreeSet::new();
    for n in &current.neighbours {
        let IpAddr::V4(ip) = n.ip else { continue };
        match want_neigh.get(&ip) {
            Some(mac) if n.is_permanent() && n.mac == Some(*mac) => {
                neigh_ok.insert(ip);
            }
            Some(_) => {}
            None if n.is_permanent() => ops.push(Op::DelNeighbour { ip }),
            None => {}
        }
    }
    // stale FDB remotes
    let mut fdb_ok = BTreeSet::new();
    for e in &current.fdb {
        let Some(dst) = e.dst else { continue };
        if e.mac == [0; 6] || e.master.is_some() {
            continue;
        }
        if want_fdb.contains(&(e.mac, dst)) && e.is_permanent() {
            fdb_ok.insert((e.mac, dst));
        } else if !want_fdb.contains(&(e.mac, dst)) {
            ops.push(Op::DelFdb { mac: e.mac, dst });
        }
    }
    for p in &peers {
        let gw = p.gateway();
        if !neigh_ok.contains(&gw) {
            ops.push(Op::SetNeighbour { ip: gw, mac: p.vtep_mac });
        }
        if fdb_ok.insert((p.vtep_mac, IpAddr::V4(p.public_ip))) {
            ops.push(Op::SetFdb { mac: p.vtep_mac, dst: p.public_ip });
        }
        if !routes_ok.contains(&p.subnet) {
            ops.push(Op::SetRoute { subnet: p.subnet, gw });
        }
    }
    Ok(ops)
}

/// Runs `ops` on the device `ifindex`, in order. A deletion of what is already gone counts as
/// done.
pub fn run(nl: &mut Netlink, ifindex: u32, ops: &[Op]) -> Result<()> {
    let gone = |r: Result<()>| match r {
        Err(e) if e.is_not_found() || e.errno() == Some(libc::ESRCH) => Ok(()),
        r => r,
    };
    for op in ops {
        match op {
            Op::DelRoute { subnet, gw } => {
                let mut s = RouteSpec::new(IpNet::V4(*subnet)).dev(ifindex);
                s.gw = *gw;
                gone(nl.del_route(&s))?
            }
            Op::DelNeighbour { ip } => gone(nl.del_neighbour(ifindex, IpAddr::V4(*ip)))?,
            Op::DelFdb { mac, dst } => gone(nl.del_fdb(ifindex, *mac, Some(*dst)))?,
            Op::SetNeighbour { ip, mac } => nl.replace_neighbour(ifindex, IpAddr::V4(*ip), *mac)?,
            Op::SetFdb { mac, dst } => nl.replace_fdb(ifindex, *mac, IpAddr::V4(*dst))?,
            Op::SetRoute { subnet, gw } => {
                nl.replace_route(&RouteSpec::new(IpNet::V4(*subnet)).via(IpAddr::V4(*gw)).dev(ifindex).onlink())?
            }
        }
    }
    Ok(())
}

/// Makes the device `ifindex`'s entries exactly those of `peers` ([`read_state`], [`plan`],
/// [`run`]); returns what was changed (empty when it already was so).
pub fn apply(nl: &mut Netlink, ifindex: u32, peers: &[Peer]) -> Result<Vec<Op>> {
    let state = read_state(nl, ifindex)?;
    let ops = plan(peers, &state)?;
    run(nl, ifindex, &ops)?;
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::{NTF_SELF, NUD_PERMANENT};

    const DEV: u32 = 5;

    fn peer(n: u8, mac_last: u8, public_last: u8) -> Peer {
        Peer {
            subnet: format!("10.132.{n}.0/24").parse().unwrap(),
            vtep_mac: [0x0a, 0x58, 0, 0, 0, mac_last],
            public_ip: Ipv4Addr::new(10, 131, 0, public_last),
        }
    }

    /// The kernel state `ops` leave behind, simulated: what a dump would show after them.
    fn simulate(state: &mut DeviceState, ops: &[Op]) {
        for op in ops {
            match op {
                Op::DelRoute { subnet, .. } => state.routes.retain(|r| r.dst != IpNet::V4(*subnet)),
                Op::DelNeighbour { ip } => state.neighbours.retain(|n| n.ip != IpAddr::V4(*ip)),
                Op::DelFdb { mac, dst } => state.fdb.retain(|e| !(e.mac == *mac && e.dst == Some(*dst))),
                Op::SetNeighbour { ip, mac } => {
                    state.neighbours.retain(|n| n.ip != IpAddr::V4(*ip));
                    state.neighbours.push(Neighbour { ifindex: DEV, ip: IpAddr::V4(*ip), mac: Some(*mac), state: NUD_PERMANENT, flags: 0 });
                }
                Op::SetFdb { mac, dst } => {
                    // replace: the MAC's (first) remote is pointed at dst
                    match state.fdb.iter_mut().find(|e| e.mac == *mac) {
                        Some(e) => e.dst = Some(IpAddr::V4(*dst)),
                        None => state.fdb.push(FdbEntry {
                            ifindex: DEV,
                            mac: *mac,
                            dst: Some(IpAddr::V4(*dst)),
                            state: NUD_PERMANENT,
                            flags: NTF_SELF,
                            master: None,
                        }),
                    }
                }
                Op::SetRoute { subnet, gw } => {
                    state.routes.retain(|r| r.dst != IpNet::V4(*subnet));
                    state.routes.push(Route {
                        dst: IpNet::V4(*subnet),
                        gw: Some(IpAddr::V4(*gw)),
                        oif: Some(DEV),
                        table: 254,
                        scope: 0,
                        protocol: 3,
                        priority: None,
                        src: None,
                        multipath: Vec::new(),
                        kind: 1,
                        onlink: true,
                    });
                }
            }
        }
    }

    fn converge(peers: &[Peer], state: &mut DeviceState) -> Vec<Op> {
        let ops = plan(peers, state).unwrap();
        simulate(state, &ops);
        assert_eq!(plan(peers, state).unwrap(), vec![], "a second plan changes nothing");
        ops
    }

    fn s(ops: &[Op]) -> Vec<String> {
        ops.iter().map(|o| o.to_string()).collect()
    }

    #[test]
    fn join_in_flannels_order_then_nothing() {
        let mut st = DeviceState::default();
        let ops = converge(&[peer(3, 3, 3), peer(2, 2, 2)], &mut st);
        assert_eq!(
            s(&ops),
            [
                "neigh replace 10.132.2.0 lladdr 0a:58:00:00:00:02",
                "fdb replace 0a:58:00:00:00:02 dst 10.131.0.2",
                "route replace 10.132.2.0/24 via 10.132.2.0 onlink",
                "neigh replace 10.132.3.0 lladdr 0a:58:00:00:00:03",
                "fdb replace 0a:58:00:00:00:03 dst 10.131.0.3",
                "route replace 10.132.3.0/24 via 10.132.3.0 onlink",
            ]
        );
        // a third node joins: only its entries
        let ops = converge(&[peer(3, 3, 3), peer(2, 2, 2), peer(4, 4, 4)], &mut st);
        assert_eq!(
            s(&ops),
            [
                "neigh replace 10.132.4.0 lladdr 0a:58:00:00:00:04",
                "fdb replace 0a:58:00:00:00:04 dst 10.131.0.4",
                "route replace 10.132.4.0/24 via 10.132.4.0 onlink",
            ]
        );
    }

    #[test]
    fn a_changed_mac_or_public_ip_and_a_leave() {
        let mut st = DeviceState::default();
        converge(&[peer(2, 2, 2), peer(3, 3, 3)], &mut st);
        // peer 2's device was made again with a new MAC: its old FDB entry goes, the neighbour
        // is replaced, the route stays
        let ops = converge(&[peer(2, 0x22, 2), peer(3, 3, 3)], &mut st);
        assert_eq!(
            s(&ops),
            [
                "fdb del 0a:58:00:00:00:02 dst 10.131.0.2",
                "neigh replace 10.132.2.0 lladdr 0a:58:00:00:00:22",
                "fdb replace 0a:58:00:00:00:22 dst 10.131.0.2",
            ]
        );
        // peer 3 moved to another public IP
        let ops = converge(&[peer(2, 0x22, 2), peer(3, 3, 9)], &mut st);
        assert_eq!(s(&ops), ["fdb del 0a:58:00:00:00:03 dst 10.131.0.3", "fdb replace 0a:58:00:00:00:03 dst 10.131.0.9"]);
        // peer 2 leaves: route first, then its entries
        let ops = converge(&[peer(3, 3, 9)], &mut st);
        assert_eq!(s(&ops), ["route del 10.132.2.0/24 via 10.132.2.0", "neigh del 10.132.2.0", "fdb del 0a:58:00:00:00:22 dst 10.131.0.2"]);
        // everyone leaves
        converge(&[], &mut st);
        assert_eq!(st, DeviceState::default());
    }

    #[test]
    fn kernel_entries_are_left_alone_and_wrong_ones_corrected() {
        let p = peer(2, 2, 2);
        let mut st = DeviceState::default();
        // a neighbour the kernel is resolving (not permanent), for an address nobody wants
        st.neighbours.push(Neighbour { ifindex: DEV, ip: "10.132.9.9".parse().unwrap(), mac: None, state: 0x01, flags: 0 });
        // the kernel's route for the device's own address, and a default-destination FDB entry
        let mut kernel_route = Route {
            dst: "10.132.1.0/24".parse().unwrap(),
            gw: None,
            oif: Some(DEV),
            table: 254,
            scope: 253,
            protocol: RTPROT_KERNEL,
            priority: None,
            src: None,
            multipath: Vec::new(),
            kind: 1,
            onlink: false,
        };
        st.routes.push(kernel_route.clone());
        st.fdb.push(FdbEntry {
            ifindex: DEV,
            mac: [0; 6],
            dst: Some("10.131.0.250".parse().unwrap()),
            state: NUD_PERMANENT,
            flags: NTF_SELF,
            master: None,
        });
        // the wanted subnet routed without onlink, and its neighbour stale (learnt, not permanent)
        kernel_route.dst = p.subnet.into();
        kernel_route.gw = Some(p.gateway().into());
        kernel_route.protocol = 3;
        kernel_route.scope = 0;
        st.routes.push(kernel_route);
        st.neighbours.push(Neighbour { ifindex: DEV, ip: p.gateway().into(), mac: Some(p.vtep_mac), state: 0x04, flags: 0 });
        let ops = converge(std::slice::from_ref(&p), &mut st);
        assert_eq!(
            s(&ops),
            [
                "neigh replace 10.132.2.0 lladdr 0a:58:00:00:00:02",
                "fdb replace 0a:58:00:00:00:02 dst 10.131.0.2",
                "route replace 10.132.2.0/24 via 10.132.2.0 onlink",
            ]
        );
        assert_eq!(st.neighbours.len(), 2, "the kernel's incomplete entry stays");
        assert_eq!(st.routes.len(), 2, "the kernel's route stays");
        assert_eq!(st.fdb.len(), 2, "the default destination stays");
    }

    #[test]
    fn inconsistent_peers_change_nothing() {
        let st = DeviceState::default();
        let e = plan(&[peer(2, 2, 2), peer(2, 3, 3)], &st).unwrap_err();
        assert!(e.to_string().contains("10.132.2.0/24 and 10.132.2.0/24 overlap"), "{e}");
        let mut wide = peer(2, 3, 3);
        wide.subnet = "10.132.0.0/16".parse().unwrap();
        assert!(plan(&[peer(2, 2, 2), wide], &st).unwrap_err().to_string().contains("overlap"));
        let e = plan(&[peer(2, 7, 2), peer(3, 7, 3)], &st).unwrap_err();
        assert!(e.to_string().contains("VTEP MAC 0a:58:00:00:00:07 is at both 10.131.0.2 and 10.131.0.3"), "{e}");
        // one VTEP serving two subnets at one IP is fine
        assert_eq!(plan(&[peer(2, 7, 2), peer(3, 7, 2)], &st).unwrap().len(), 5);
    }

    #[test]
    fn device_mismatches() {
        let cfg = DeviceConfig::new(1, Ipv4Addr::new(10, 131, 0, 1), 3);
        assert_eq!(cfg.name, "flannel.1");
        let mut link = Link { kind: Some("vxlan".into()), vxlan: Some(cfg.vxlan()), mac: vec![2, 0, 0, 0, 0, 1], ..Default::default() };
        assert_eq!(mismatch(&link, &cfg), None);
        link.vxlan = Some(Vxlan { vni: 2, learning: true, ..cfg.vxlan() });
        assert_eq!(mismatch(&link, &cfg).unwrap(), "VNI 2 (want 1), learning on");
        link.vxlan = Some(cfg.vxlan());
        let mut fixed = cfg.clone();
        fixed.mac = Some([2, 0, 0, 0, 0, 2]);
        assert_eq!(mismatch(&link, &fixed).unwrap(), "MAC 02:00:00:00:00:01 (want 02:00:00:00:00:02)");
        link.kind = Some("bridge".into());
        assert_eq!(mismatch(&link, &cfg).unwrap(), "it is a bridge link, not vxlan");
    }
}

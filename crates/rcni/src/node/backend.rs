//! The data plane seam: a backend makes the node's kernel state match the set of peers.
//!
//! The agent owns everything about etcd and calls a [`Backend`] with the complete set of peers
//! after every change (a full, idempotent apply: no diffs to get wrong across a lost watch).
//! host-gw and vxlan (one device, neighbour + FDB + onlink route per peer, `netkit::vxlan`),
//! chosen in [`for_kind`].

use super::model::Peer;
use ipnet::{IpNet, Ipv4Net};
use netkit::netlink::{Netlink, RouteSpec};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

/// The route protocol (`RTPROT_*`) rcni node marks its routes with, so a restarted agent finds
/// and removes routes to peers that left while it was down (`ip route show proto 77`).
pub const RTPROT_RCNI_NODE: u8 = 77;

pub trait Backend {
    /// The `BackendType` written in this node's lease.
    fn kind(&self) -> &'static str;
    /// This node's `BackendData` (vxlan: VNI and VtepMAC), once its subnet is known; sets up
    /// whatever device the backend needs.
    fn init(&mut self, own: Ipv4Net) -> Result<Value, String>;
    /// The MTU pods get (the underlay's, less any encapsulation).
    fn mtu(&self) -> u32;
    /// Makes the data plane match exactly `peers` (adds, changes, removes); errors per peer are
    /// reported but do not stop the others.
    fn apply(&mut self, peers: &[Peer]) -> Result<(), String>;
}

/// The backend named on the command line.
pub fn for_kind(kind: &str, iface: &str, public_ip: Ipv4Addr, vni: u32) -> Result<Box<dyn Backend>, String> {
    match kind {
        "host-gw" => Ok(Box::new(HostGw::new(iface, public_ip)?)),
        "vxlan" => Ok(Box::new(Vxlan::new(iface, public_ip, vni)?)),
        other => Err(format!("unknown backend {other:?} (vxlan or host-gw)")),
    }
}

/// vxlan, as flannel's: one device `flannel.<VNI>` over the underlay, and per peer a permanent
/// neighbour (its subnet's `.0` → its VtepMAC), an FDB entry (VtepMAC → its public IP) and the
/// route `subnet via .0 dev flannel.<VNI> onlink` — `netkit::vxlan` does the kernel part.
pub struct Vxlan {
    nl: Netlink,
    cfg: netkit::vxlan::DeviceConfig,
    mtu: u32,
    /// The device's index once `init` made it.
    index: Option<u32>,
}

impl Vxlan {
    pub fn new(iface: &str, public_ip: Ipv4Addr, vni: u32) -> Result<Vxlan, String> {
        let mut nl = Netlink::new().map_err(|e| e.to_string())?;
        let (index, _, underlay_mtu) = underlay(&mut nl, iface, public_ip)?;
        let mut cfg = netkit::vxlan::DeviceConfig::new(vni, public_ip, index);
        // a MAC of the node's own (locally administered, from the VNI and the public IP): a
        // device made again after a restart keeps the VtepMAC the node's lease publishes
        let ip = public_ip.octets();
        cfg.mac = Some([0x0e, (vni & 0xff) as u8, ip[0], ip[1], ip[2], ip[3]]);
        Ok(Vxlan { nl, cfg, mtu: underlay_mtu.saturating_sub(netkit::vxlan::OVERHEAD), index: None })
    }
}

/// A peer of the vxlan backend: its lease's VtepMAC (`BackendData`), when it has one.
fn vxlan_peer(p: &Peer) -> Result<netkit::vxlan::Peer, String> {
    if p.backend_type != "vxlan" {
        return Err(format!("peer {}: backend {:?}, not vxlan", p.subnet, p.backend_type));
    }
    let mac = p.backend_data.get("VtepMAC").and_then(Value::as_str).unwrap_or_default();
    let vtep_mac = netkit::netlink::parse_mac(mac).ok_or_else(|| format!("peer {}: no VtepMAC in its lease ({mac:?})", p.subnet))?;
    Ok(netkit::vxlan::Peer { subnet: p.subnet, vtep_mac, public_ip: p.public_ip })
}

impl Backend for Vxlan {
    fn kind(&self) -> &'static str {
        "vxlan"
    }

    fn init(&mut self, own: Ipv4Net) -> Result<Value, String> {
        self.cfg.address = Some(Ipv4Net::new(own.network(), 32).expect("a /32"));
        let link = netkit::vxlan::ensure_device(&mut self.nl, &self.cfg).map_err(|e| e.to_string())?;
        self.index = Some(link.index);
        Ok(serde_json::json!({"VNI": self.cfg.vni, "VtepMAC": netkit::netlink::format_mac(&link.mac)}))
    }

    fn mtu(&self) -> u32 {
        self.mtu
    }

    fn apply(&mut self, peers: &[Peer]) -> Result<(), String> {
        let index = self.index.ok_or("the vxlan device is not made yet")?;
        let mut errs = Vec::new();
        let mut want = Vec::new();
        for p in peers {
            match vxlan_peer(p) {
                Ok(v) => want.push(v),
                Err(e) => errs.push(e),
            }
        }
        match netkit::vxlan::apply(&mut self.nl, index, &want) {
            Ok(ops) => {
                for op in ops {
                    super::log!("vxlan: {op:?}");
                }
            }
            Err(e) => errs.push(e.to_string()),
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("; "))
        }
    }
}

/// The underlay interface: `--iface`, or the one holding the public IP.
pub fn underlay(nl: &mut Netlink, iface: &str, public_ip: Ipv4Addr) -> Result<(u32, String, u32), String> {
    let links = nl.links().map_err(|e| e.to_string())?;
    if !iface.is_empty() {
        let l = links.iter().find(|l| l.name == iface).ok_or_else(|| format!("--iface {iface}: no such interface"))?;
        return Ok((l.index, l.name.clone(), l.mtu));
    }
    let addrs = nl.addrs(None, Some(false)).map_err(|e| e.to_string())?;
    let a = addrs
        .iter()
        .find(|a| a.addr.addr() == IpAddr::V4(public_ip))
        .ok_or_else(|| format!("--public-ip {public_ip} is on no interface of this node (pass --iface)"))?;
    let l = links.iter().find(|l| l.index == a.index).ok_or("interface vanished")?;
    Ok((l.index, l.name.clone(), l.mtu))
}

/// host-gw: `<peer subnet> via <peer public IP> dev <underlay>` for each peer; the peers must be
/// on a subnet directly connected to the underlay interface.
pub struct HostGw {
    nl: Netlink,
    index: u32,
    name: String,
    mtu: u32,
    /// What we installed: subnet → gateway.
    installed: BTreeMap<Ipv4Net, Ipv4Addr>,
}

impl HostGw {
    pub fn new(iface: &str, public_ip: Ipv4Addr) -> Result<HostGw, String> {
        let mut nl = Netlink::new().map_err(|e| e.to_string())?;
        let (index, name, mtu) = underlay(&mut nl, iface, public_ip)?;
        Ok(HostGw { nl, index, name, mtu, installed: BTreeMap::new() })
    }

    fn spec(&self, subnet: Ipv4Net, gw: Ipv4Addr) -> RouteSpec {
        let mut r = RouteSpec::new(IpNet::V4(subnet)).via(IpAddr::V4(gw)).dev(self.index);
        r.protocol = RTPROT_RCNI_NODE;
        r
    }

    fn connected(&mut self) -> Result<Vec<Ipv4Net>, String> {
        let addrs = self.nl.addrs(Some(self.index), Some(false)).map_err(|e| e.to_string())?;
        Ok(addrs.iter().filter_map(|a| if let IpNet::V4(n) = a.addr { Some(n.trunc()) } else { None }).collect())
    }
}

/// Why `gw` cannot be a host-gw next hop, or None when it is on one of `connected`.
pub fn not_on_link(gw: Ipv4Addr, connected: &[Ipv4Net], dev: &str) -> Option<String> {
    (!connected.iter().any(|n| n.contains(&gw))).then(|| {
        format!(
            "host-gw needs every node on one L2 segment: {gw} is on no subnet of {dev} ({}); use the vxlan backend",
            connected.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
        )
    })
}

impl Backend for HostGw {
    fn kind(&self) -> &'static str {
        "host-gw"
    }

    fn init(&mut self, _own: Ipv4Net) -> Result<Value, String> {
        // routes a previous run left for peers: adopted, so the first apply removes the gone ones
        let routes = self.nl.routes(false, Some(254)).map_err(|e| e.to_string())?;
        for r in routes.iter().filter(|r| r.protocol == RTPROT_RCNI_NODE) {
            if let (IpNet::V4(d), Some(IpAddr::V4(g))) = (r.dst, r.gw) {
                self.installed.insert(d, g);
            }
        }
        Ok(Value::Null)
    }

    fn mtu(&self) -> u32 {
        self.mtu
    }

    fn apply(&mut self, peers: &[Peer]) -> Result<(), String> {
        let connected = self.connected()?;
        let mut errs = Vec::new();
        let want: BTreeMap<Ipv4Net, Ipv4Addr> = peers.iter().map(|p| (p.subnet, p.public_ip)).collect();
        for (s, g) in self.installed.clone() {
            if want.get(&s) != Some(&g) {
                match self.nl.del_route(&self.spec(s, g)) {
                    Ok(()) => super::log!("route {s} via {g} removed"),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => errs.push(format!("removing {s} via {g}: {e}")),
                }
                self.installed.remove(&s);
            }
        }
        for (s, g) in want {
            if let Some(e) = not_on_link(g, &connected, &self.name) {
                errs.push(format!("peer {s}: {e}"));
                continue;
            }
            match self.nl.replace_route(&self.spec(s, g)) {
                Ok(()) => {
                    if self.installed.insert(s, g) != Some(g) {
                        super::log!("route {s} via {g} dev {}", self.name);
                    }
                }
                Err(e) => errs.push(format!("route {s} via {g}: {e}")),
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_link_peers_are_refused_clearly() {
        let c = ["192.0.2.0/24".parse().unwrap()];
        assert_eq!(not_on_link("192.0.2.9".parse().unwrap(), &c, "eth0"), None);
        assert_eq!(
            not_on_link("198.51.100.1".parse().unwrap(), &c, "eth0").unwrap(),
            "host-gw needs every node on one L2 segment: 198.51.100.1 is on no subnet of eth0 (192.0.2.0/24); use the vxlan backend"
        );
    }
}

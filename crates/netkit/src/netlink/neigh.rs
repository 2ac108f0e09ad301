//! Neighbours (`ip neigh`: IP → MAC on a link) and forwarding-database entries of devices with
//! an FDB of their own (`bridge fdb … self`: MAC → remote IP on a vxlan device). Both are
//! RTM_NEWNEIGH/RTM_DELNEIGH/RTM_GETNEIGH messages; an FDB entry is one of family `AF_BRIDGE`.
//!
//! netlink-packet-route's gap, handled here only: it parses `NDA_DST` by the message's family,
//! so in an `AF_BRIDGE` message (a vxlan FDB entry's remote) the address comes back as raw bytes
//! (`NeighbourAddress::Other`); [`ip_of`] reads them (4 bytes IPv4, 16 IPv6). Emitting is fine
//! (an `Inet` address is written as its 4 bytes whatever the family).

use super::Netlink;
use crate::error::Result;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::IpAddr;

/// `NUD_PERMANENT`: an entry the kernel never ages out nor probes.
pub const NUD_PERMANENT: u16 = 0x80;
/// `NTF_SELF`: an FDB entry of the device itself (a vxlan's), not of the bridge it is a port of.
pub const NTF_SELF: u8 = 0x02;

/// A neighbour entry as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub ifindex: u32,
    pub ip: IpAddr,
    /// Absent for entries still being resolved or failed.
    pub mac: Option<[u8; 6]>,
    /// `NUD_*` bits.
    pub state: u16,
    /// `NTF_*` bits.
    pub flags: u8,
}

impl Neighbour {
    pub fn is_permanent(&self) -> bool {
        self.state & NUD_PERMANENT != 0
    }
}

/// A forwarding-database entry as the kernel reports it (`bridge fdb show dev …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdbEntry {
    pub ifindex: u32,
    pub mac: [u8; 6],
    /// The remote VTEP of a vxlan entry (`dst`).
    pub dst: Option<IpAddr>,
    /// `NUD_*` bits.
    pub state: u16,
    /// `NTF_*` bits (`NTF_SELF` for a device's own entries).
    pub flags: u8,
    /// `NDA_MASTER`: set on entries of the bridge the device is a port of.
    pub master: Option<u32>,
}

impl FdbEntry {
    pub fn is_permanent(&self) -> bool {
        self.state & NUD_PERMANENT != 0
    }
}

/// The address in an `NDA_DST`, whatever family the message was parsed as (see the module's
/// note on the crate's gap).
pub fn ip_of(a: &NeighbourAddress) -> Option<IpAddr> {
    match a {
        NeighbourAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        NeighbourAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        NeighbourAddress::Other(b) if b.len() == 4 => Some(IpAddr::from(<[u8; 4]>::try_from(b.as_slice()).ok()?)),
        NeighbourAddress::Other(b) if b.len() == 16 => Some(IpAddr::from(<[u8; 16]>::try_from(b.as_slice()).ok()?)),
        _ => None,
    }
}

fn mac_of(b: &[u8]) -> Option<[u8; 6]> {
    b.try_into().ok()
}

fn family_of(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

/// The RTM_NEWNEIGH/RTM_DELNEIGH message of a permanent neighbour `ip` → `mac` on link
/// `ifindex` (`ip neigh replace IP lladdr MAC dev DEV nud permanent`); `mac` is left out for
/// a deletion.
pub fn neighbour_message(ifindex: u32, ip: IpAddr, mac: Option<[u8; 6]>) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = family_of(ip);
    m.header.ifindex = ifindex;
    m.header.state = NeighbourState::Permanent;
    m.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::from(ip)));
    if let Some(mac) = mac {
        m.attributes.push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    }
    m
}

/// The RTM_NEWNEIGH/RTM_DELNEIGH message of a permanent FDB entry of the device itself:
/// `mac` → remote `dst` on link `ifindex` (`bridge fdb replace MAC dev DEV dst IP self
/// permanent`).
pub fn fdb_message(ifindex: u32, mac: [u8; 6], dst: Option<IpAddr>) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Bridge;
    m.header.ifindex = ifindex;
    m.header.state = NeighbourState::Permanent;
    m.header.flags = NeighbourFlags::Own;
    m.attributes.push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    if let Some(dst) = dst {
        m.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::from(dst)));
    }
    m
}

fn neighbour_from(m: &NeighbourMessage) -> Option<Neighbour> {
    let mut ip = None;
    let mut mac = None;
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(d) => ip = ip_of(d),
            NeighbourAttribute::LinkLayerAddress(b) => mac = mac_of(b),
            _ => {}
        }
    }
    Some(Neighbour { ifindex: m.header.ifindex, ip: ip?, mac, state: u16::from(m.header.state), flags: m.header.flags.bits() })
}

fn fdb_from(m: &NeighbourMessage) -> Option<FdbEntry> {
    let mut e = FdbEntry {
        ifindex: m.header.ifindex,
        mac: [0; 6],
        dst: None,
        state: u16::from(m.header.state),
        flags: m.header.flags.bits(),
        master: None,
    };
    let mut mac = None;
    for a in &m.attributes {
        match a {
            NeighbourAttribute::Destination(d) => e.dst = ip_of(d),
            NeighbourAttribute::LinkLayerAddress(b) => mac = mac_of(b),
            NeighbourAttribute::Controller(i) => e.master = Some(*i),
            _ => {}
        }
    }
    e.mac = mac?;
    Some(e)
}

fn fmt_mac(mac: &[u8; 6]) -> String {
    super::format_mac(mac)
}

impl Netlink {
    /// The neighbours of one family (`ipv6`), of link `ifindex` only when given (`ip neigh show
    /// dev …`).
    pub fn neighbours(&mut self, ifindex: Option<u32>, ipv6: bool) -> Result<Vec<Neighbour>> {
        let make = || {
            let mut m = NeighbourMessage::default();
            m.header.family = if ipv6 { AddressFamily::Inet6 } else { AddressFamily::Inet };
            // a strict neighbour dump wants ndm_ifindex 0 and the link in NDA_IFINDEX
            if let Some(i) = ifindex {
                m.attributes.push(NeighbourAttribute::IfIndex(i));
            }
            RouteNetlinkMessage::GetNeighbour(m)
        };
        let msgs = self.dump(&make, &|| "listing neighbours".to_string())?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => neighbour_from(n),
                _ => None,
            })
            .filter(|n| ifindex.is_none_or(|i| i == n.ifindex))
            .collect())
    }

    /// Adds or replaces the permanent neighbour `ip` → `mac` on link `ifindex`.
    pub fn replace_neighbour(&mut self, ifindex: u32, ip: IpAddr, mac: [u8; 6]) -> Result<()> {
        let m = neighbour_message(ifindex, ip, Some(mac));
        self.request(RouteNetlinkMessage::NewNeighbour(m), NLM_F_CREATE | NLM_F_REPLACE, &|| {
            format!("setting neighbour {ip} lladdr {} on link #{ifindex}", fmt_mac(&mac))
        })
    }

    /// Deletes the neighbour `ip` on link `ifindex` (ENOENT when there is none).
    pub fn del_neighbour(&mut self, ifindex: u32, ip: IpAddr) -> Result<()> {
        let m = neighbour_message(ifindex, ip, None);
        self.request(RouteNetlinkMessage::DelNeighbour(m), 0, &|| format!("deleting neighbour {ip} on link #{ifindex}"))
    }

    /// The FDB entries of link `ifindex` (`bridge fdb show dev …`): the device's own and, for a
    /// bridge port, the bridge's entries for it.
    pub fn fdb(&mut self, ifindex: u32) -> Result<Vec<FdbEntry>> {
        let make = || {
            let mut m = NeighbourMessage::default();
            m.header.family = AddressFamily::Bridge;
            // the kernel's strict FDB dump takes the port to list in ndm_ifindex
            m.header.ifindex = ifindex;
            RouteNetlinkMessage::GetNeighbour(m)
        };
        let msgs = self.dump(&make, &|| format!("listing the FDB of link #{ifindex}"))?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => fdb_from(n),
                _ => None,
            })
            .filter(|e| e.ifindex == ifindex)
            .collect())
    }

    /// Adds the permanent FDB entry `mac` → `dst` to the device `ifindex` itself, or points an
    /// existing entry for `mac` at `dst` (its first remote).
    pub fn replace_fdb(&mut self, ifindex: u32, mac: [u8; 6], dst: IpAddr) -> Result<()> {
        let m = fdb_message(ifindex, mac, Some(dst));
        self.request(RouteNetlinkMessage::NewNeighbour(m), NLM_F_CREATE | NLM_F_REPLACE, &|| {
            format!("setting FDB entry {} dst {dst} on link #{ifindex}", fmt_mac(&mac))
        })
    }

    /// Deletes the remote `dst` of the device's FDB entry for `mac` (the whole entry with
    /// `None`, or once its last remote is gone); ENOENT when there is none.
    pub fn del_fdb(&mut self, ifindex: u32, mac: [u8; 6], dst: Option<IpAddr>) -> Result<()> {
        let m = fdb_message(ifindex, mac, dst);
        self.request(RouteNetlinkMessage::DelNeighbour(m), 0, &|| match dst {
            Some(d) => format!("deleting FDB entry {} dst {d} on link #{ifindex}", fmt_mac(&mac)),
            None => format!("deleting FDB entry {} on link #{ifindex}", fmt_mac(&mac)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::wire::{contains, emitted as bytes};
    use netlink_packet_core::Parseable;

    /// The kernel's format (include/uapi/linux/neighbour.h): struct ndmsg is family (u8), 3
    /// pad bytes, ifindex (s32), state (u16), flags (u8), type (u8); NDA_DST is 1, NDA_LLADDR 2.
    #[test]
    fn neighbour_in_the_kernel_format() {
        let mac = [0x0a, 0x58, 0, 0, 0, 2];
        let m = neighbour_message(7, "10.132.2.0".parse().unwrap(), Some(mac));
        let b = bytes(&m);
        // AF_INET (2), ifindex 7, NUD_PERMANENT (0x80), no flags, type 0
        assert_eq!(&b[..12], &[2, 0, 0, 0, 7, 0, 0, 0, 0x80, 0, 0, 0]);
        assert!(contains(&b, &[8, 0, 1, 0, 10, 132, 2, 0]), "NDA_DST");
        assert!(contains(&b, &[10, 0, 2, 0, 0x0a, 0x58, 0, 0, 0, 2]), "NDA_LLADDR");
        let back = neighbour_from(&NeighbourMessage::parse(b.as_slice()).unwrap()).unwrap();
        assert_eq!(back.ip, "10.132.2.0".parse::<IpAddr>().unwrap());
        assert_eq!(back.mac, Some(mac));
        assert!(back.is_permanent());
    }

    #[test]
    fn fdb_entry_in_the_kernel_format_and_its_dst_read_back() {
        let mac = [0x0a, 0x58, 0, 0, 0, 3];
        let m = fdb_message(9, mac, Some("10.131.0.3".parse().unwrap()));
        let b = bytes(&m);
        // AF_BRIDGE (7), ifindex 9, NUD_PERMANENT, NTF_SELF (2)
        assert_eq!(&b[..12], &[7, 0, 0, 0, 9, 0, 0, 0, 0x80, 0, 2, 0]);
        assert!(contains(&b, &[8, 0, 1, 0, 10, 131, 0, 3]), "NDA_DST, 4 bytes");
        // parsed as AF_BRIDGE, the crate hands NDA_DST back as raw bytes: still read as the IP
        let parsed = NeighbourMessage::parse(b.as_slice()).unwrap();
        assert!(parsed.attributes.iter().any(|a| matches!(a, NeighbourAttribute::Destination(NeighbourAddress::Other(_)))));
        let back = fdb_from(&parsed).unwrap();
        assert_eq!((back.mac, back.dst), (mac, Some("10.131.0.3".parse().unwrap())));
        assert_eq!(back.flags & NTF_SELF, NTF_SELF);
        // a deletion of the whole entry: no NDA_DST
        let b = bytes(&fdb_message(9, mac, None));
        assert!(!contains(&b, &[8, 0, 1, 0]));
    }
}

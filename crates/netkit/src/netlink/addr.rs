//! Addresses.

use super::Netlink;
use crate::error::{Error, Result};
use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::IpAddr;

/// An address of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    /// The address with its prefix length.
    pub addr: IpNet,
    /// `rt_scope` value (0 universe, 253 link, 254 host).
    pub scope: u8,
    /// `IFA_F_*` flags.
    pub flags: u32,
}

impl Address {
    pub fn is_tentative(&self) -> bool {
        self.flags & AddressFlags::Tentative.bits() != 0
    }
    pub fn is_dad_failed(&self) -> bool {
        self.flags & AddressFlags::Dadfailed.bits() != 0
    }
}

/// Flags for a new address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AddrFlags {
    /// `IFA_F_NODAD`: usable at once, no IPv6 duplicate address detection.
    pub nodad: bool,
}

fn family(ip: &IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

/// The RTM_NEWADDR/RTM_DELADDR message for `addr` on link `index`. IPv4 addresses get the
/// subnet's broadcast address (below /31), as `ip addr add … brd +` and Go's netlink do.
pub fn address_message(index: u32, addr: IpNet, flags: AddrFlags) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = family(&addr.addr());
    m.header.prefix_len = addr.prefix_len();
    m.header.index = index;
    m.header.scope = AddressScope::Universe;
    let mut f = AddressFlags::empty();
    if flags.nodad {
        f |= AddressFlags::Nodad;
        m.header.flags = AddressHeaderFlags::Nodad;
    }
    m.attributes.push(AddressAttribute::Local(addr.addr()));
    m.attributes.push(AddressAttribute::Address(addr.addr()));
    if let IpNet::V4(v4) = addr {
        if v4.prefix_len() < 31 {
            m.attributes.push(AddressAttribute::Broadcast(v4.broadcast()));
        }
    }
    if !f.is_empty() {
        m.attributes.push(AddressAttribute::Flags(f));
    }
    m
}

impl Netlink {
    /// Adds an address; an existing one is an error (EEXIST).
    pub fn add_addr(&mut self, index: u32, addr: IpNet, flags: AddrFlags) -> Result<()> {
        self.request(RouteNetlinkMessage::NewAddress(address_message(index, addr, flags)), NLM_F_CREATE | NLM_F_EXCL, &|| {
            format!("adding address {addr} to link #{index}")
        })
    }

    pub fn del_addr(&mut self, index: u32, addr: IpNet) -> Result<()> {
        self.request(RouteNetlinkMessage::DelAddress(address_message(index, addr, AddrFlags::default())), 0, &|| {
            format!("removing address {addr} from link #{index}")
        })
    }

    /// The addresses of one link (or of all links with `None`), of one family (IPv4 with
    /// `Some(false)`, IPv6 with `Some(true)`) or both.
    pub fn addrs(&mut self, index: Option<u32>, ipv6: Option<bool>) -> Result<Vec<Address>> {
        let make = || {
            let mut m = AddressMessage::default();
            m.header.family = match ipv6 {
                None => AddressFamily::Unspec,
                Some(false) => AddressFamily::Inet,
                Some(true) => AddressFamily::Inet6,
            };
            m.header.index = index.unwrap_or(0);
            RouteNetlinkMessage::GetAddress(m)
        };
        let msgs = self.dump(&make, &|| "listing addresses".to_string())?;
        let mut out = Vec::new();
        for m in msgs {
            let RouteNetlinkMessage::NewAddress(a) = m else { continue };
            if index.is_some_and(|i| i != a.header.index) {
                continue;
            }
            let mut ip: Option<IpAddr> = None;
            let mut flags = a.header.flags.bits() as u32;
            for attr in &a.attributes {
                match attr {
                    // IFA_LOCAL is the address for IPv4 point-to-point; IFA_ADDRESS otherwise
                    AddressAttribute::Local(l) => ip = Some(*l),
                    AddressAttribute::Address(l) if ip.is_none() => ip = Some(*l),
                    AddressAttribute::Flags(f) => flags = f.bits(),
                    _ => {}
                }
            }
            let Some(ip) = ip else { continue };
            let addr = IpNet::new(ip, a.header.prefix_len).map_err(|e| Error::msg("listing addresses", e.to_string()))?;
            out.push(Address { index: a.header.index, addr, scope: u8::from(a.header.scope), flags });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Emitable;

    #[test]
    fn ipv4_gets_broadcast_and_ipv6_nodad() {
        let m = address_message(3, "10.1.2.3/24".parse().unwrap(), AddrFlags::default());
        assert!(m.attributes.contains(&AddressAttribute::Broadcast("10.1.2.255".parse().unwrap())));
        assert_eq!(m.header.prefix_len, 24);
        let m = address_message(3, "10.1.2.3/31".parse().unwrap(), AddrFlags::default());
        assert!(!m.attributes.iter().any(|a| matches!(a, AddressAttribute::Broadcast(_))));
        let m = address_message(3, "fd00::2/64".parse().unwrap(), AddrFlags { nodad: true });
        assert!(m.header.flags.contains(AddressHeaderFlags::Nodad));
        assert!(m.attributes.contains(&AddressAttribute::Flags(AddressFlags::Nodad)));
        let mut buf = vec![0u8; m.buffer_len()];
        m.emit(&mut buf);
        // IFA_FLAGS (8) u32 = IFA_F_NODAD (2)
        assert!(buf.windows(8).any(|w| w == [8, 0, 8, 0, 2, 0, 0, 0]));
    }
}

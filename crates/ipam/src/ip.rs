//! IP arithmetic for allocators.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub fn same_family(a: &IpAddr, b: &IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// `ip + n`, wrapping within the family.
pub fn add(ip: IpAddr, n: u128) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4).wrapping_add(n as u32))),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6).wrapping_add(n))),
    }
}

/// The last usable address: IPv4's broadcast − 1, IPv6's last address (as the reference).
pub fn last_addr(net: &IpNet) -> IpAddr {
    match net {
        IpNet::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4.broadcast()).wrapping_sub(1))),
        IpNet::V6(v6) => IpAddr::V6(v6.broadcast()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic() {
        assert_eq!(add("10.0.0.255".parse().unwrap(), 1).to_string(), "10.0.1.0");
        assert_eq!(add("fd00::ffff".parse().unwrap(), 1).to_string(), "fd00::1:0");
        assert_eq!(last_addr(&"10.0.0.0/16".parse().unwrap()).to_string(), "10.0.255.254");
        assert_eq!(last_addr(&"fd00::/120".parse().unwrap()).to_string(), "fd00::ff");
    }
}

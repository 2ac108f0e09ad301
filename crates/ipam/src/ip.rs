//! IP arithmetic for allocators.

use ipnet::IpNet;
use std::cmp::Ordering;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub fn same_family(a: &IpAddr, b: &IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// Compares two addresses of the same family numerically.
pub fn cmp(a: &IpAddr, b: &IpAddr) -> Ordering {
    match (a, b) {
        (IpAddr::V4(x), IpAddr::V4(y)) => u32::from(*x).cmp(&u32::from(*y)),
        (IpAddr::V6(x), IpAddr::V6(y)) => u128::from(*x).cmp(&u128::from(*y)),
        (IpAddr::V4(_), IpAddr::V6(_)) => Ordering::Less,
        (IpAddr::V6(_), IpAddr::V4(_)) => Ordering::Greater,
    }
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
        assert_eq!(cmp(&"10.0.0.2".parse().unwrap(), &"10.0.0.10".parse().unwrap()), Ordering::Less);
    }
}

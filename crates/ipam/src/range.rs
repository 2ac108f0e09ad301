//! Address ranges and range sets with the reference's rules: the subnet must be a network
//! address and leave room for hosts, the gateway and the range start default to the first host,
//! the range end to the last host (IPv4: broadcast − 1; IPv6: the last address).

use crate::ip::{add, last_addr, same_family};
use cni_types::capabilities::IpRange;
use cni_types::result::{parse_cidr, parse_ip};
use ipnet::IpNet;
use std::net::IpAddr;

/// One range of addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub subnet: IpNet,
    pub range_start: IpAddr,
    pub range_end: IpAddr,
    pub gateway: IpAddr,
}

fn parse_opt_ip(field: &str, s: &str) -> Result<Option<IpAddr>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    parse_ip(s).map(Some).ok_or_else(|| format!("invalid {field} {s:?}"))
}

/// "IPv4" or "IPv6".
pub(crate) fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

impl Range {
    /// Validates and fills in the defaults (Go's `Range.Canonicalize`).
    pub fn from_config(r: &IpRange) -> Result<Range, String> {
        let subnet = parse_cidr(&r.subnet).ok_or_else(|| format!("invalid subnet {:?}", r.subnet))?;
        let bits = if subnet.addr().is_ipv4() { 32 } else { 128 };
        if subnet.prefix_len() > bits - 2 {
            return Err(format!("Network {subnet} too small to allocate from"));
        }
        let network = subnet.network();
        if subnet.addr() != network {
            return Err(format!(
                "Network has host bits set. For a subnet mask of length {} the network address is {network}",
                subnet.prefix_len()
            ));
        }
        let subnet = IpNet::new(network, subnet.prefix_len()).expect("valid prefix");
        let first = add(network, 1);
        let gateway = parse_opt_ip("gateway", &r.gateway)?.unwrap_or(first);
        if !same_family(&gateway, &network) {
            return Err(format!("gateway {gateway} is not an {} address, as subnet {subnet} is", family(&network)));
        }
        let mut range = Range { subnet, range_start: first, range_end: last_addr(&subnet), gateway };
        if let Some(start) = parse_opt_ip("rangeStart", &r.range_start)? {
            if !range.contains(&start) {
                return Err(format!("RangeStart {start} not in network {subnet}"));
            }
            range.range_start = start;
        }
        if let Some(end) = parse_opt_ip("rangeEnd", &r.range_end)? {
            if !range.contains(&end) {
                return Err(format!("RangeEnd {end} not in network {subnet}"));
            }
            range.range_end = end;
        }
        Ok(range)
    }

    /// In the subnet and between start and end (inclusive).
    pub fn contains(&self, ip: &IpAddr) -> bool {
        // (std orders addresses numerically within a family)
        self.subnet.contains(ip) && *ip >= self.range_start && *ip <= self.range_end
    }

    pub fn overlaps(&self, other: &Range) -> bool {
        same_family(&self.range_start, &other.range_start)
            && (self.contains(&other.range_start)
                || self.contains(&other.range_end)
                || other.contains(&self.range_start)
                || other.contains(&self.range_end))
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.range_start, self.range_end)
    }
}

/// Ranges of one address family that one allocation draws from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSet(pub Vec<Range>);

impl RangeSet {
    /// Validates a range set: not empty, one family, no overlaps.
    pub fn from_config(set: &[IpRange]) -> Result<RangeSet, String> {
        if set.is_empty() {
            return Err("empty range set".into());
        }
        let ranges: Vec<Range> = set.iter().map(Range::from_config).collect::<Result<_, _>>()?;
        if ranges.iter().any(|r| !same_family(&r.range_start, &ranges[0].range_start)) {
            return Err("mixed address families".into());
        }
        for (i, a) in ranges.iter().enumerate() {
            for b in &ranges[i + 1..] {
                if a.overlaps(b) {
                    return Err(format!("subnets {a} and {b} overlap"));
                }
            }
        }
        Ok(RangeSet(ranges))
    }

    pub fn is_ipv4(&self) -> bool {
        self.0[0].range_start.is_ipv4()
    }

    /// The range holding `ip`.
    pub fn range_for(&self, ip: &IpAddr) -> Result<&Range, String> {
        self.0.iter().find(|r| r.contains(ip)).ok_or_else(|| format!("{ip} not in range set {self}"))
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.range_for(ip).is_ok()
    }

    pub fn overlaps(&self, other: &RangeSet) -> bool {
        self.0.iter().any(|a| other.0.iter().any(|b| a.overlaps(b)))
    }
}

impl std::fmt::Display for RangeSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|r| r.to_string()).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(subnet: &str, start: &str, end: &str, gw: &str) -> IpRange {
        IpRange { subnet: subnet.into(), range_start: start.into(), range_end: end.into(), gateway: gw.into() }
    }

    #[test]
    fn defaults() {
        let x = Range::from_config(&r("10.1.2.0/24", "", "", "")).unwrap();
        assert_eq!(
            (x.range_start.to_string(), x.range_end.to_string(), x.gateway.to_string()),
            ("10.1.2.1".into(), "10.1.2.254".into(), "10.1.2.1".into())
        );
        let x = Range::from_config(&r("2001:db8:1::/64", "", "", "")).unwrap();
        assert_eq!(x.range_end.to_string(), "2001:db8:1:0:ffff:ffff:ffff:ffff", "IPv6 ends at the last address");
        let x = Range::from_config(&r("10.1.2.0/24", "10.1.2.40", "10.1.2.50", "10.1.2.254")).unwrap();
        assert_eq!(x.to_string(), "10.1.2.40-10.1.2.50");
        assert!(x.contains(&"10.1.2.45".parse().unwrap()) && !x.contains(&"10.1.2.39".parse().unwrap()));
    }

    #[test]
    fn a_gateway_of_the_other_family_is_refused() {
        assert_eq!(
            Range::from_config(&r("fd40:9::/64", "", "", "10.240.9.1")).unwrap_err(),
            "gateway 10.240.9.1 is not an IPv6 address, as subnet fd40:9::/64 is"
        );
        assert_eq!(
            Range::from_config(&r("10.1.2.0/24", "", "", "fd00::1")).unwrap_err(),
            "gateway fd00::1 is not an IPv4 address, as subnet 10.1.2.0/24 is"
        );
    }

    #[test]
    fn rejections() {
        assert_eq!(Range::from_config(&r("10.1.2.0/31", "", "", "")).unwrap_err(), "Network 10.1.2.0/31 too small to allocate from");
        assert!(Range::from_config(&r("10.1.2.0/32", "", "", "")).is_err());
        assert!(Range::from_config(&r("fd00::/127", "", "", "")).is_err());
        assert!(Range::from_config(&r("fd00::/126", "", "", "")).is_ok());
        assert_eq!(
            Range::from_config(&r("10.1.2.3/24", "", "", "")).unwrap_err(),
            "Network has host bits set. For a subnet mask of length 24 the network address is 10.1.2.0"
        );
        assert_eq!(
            Range::from_config(&r("10.1.2.0/24", "10.1.3.1", "", "")).unwrap_err(),
            "RangeStart 10.1.3.1 not in network 10.1.2.0/24"
        );
        assert!(RangeSet::from_config(&[r("10.1.2.0/24", "", "", ""), r("10.1.2.128/25", "", "", "")]).unwrap_err().contains("overlap"));
        assert_eq!(
            RangeSet::from_config(&[r("10.1.2.0/24", "", "", ""), r("fd00::/64", "", "", "")]).unwrap_err(),
            "mixed address families"
        );
        assert_eq!(RangeSet::from_config(&[]).unwrap_err(), "empty range set");
    }
}

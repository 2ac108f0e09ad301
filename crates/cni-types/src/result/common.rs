//! Pieces shared by every result version: routes, DNS, and Go-compatible IP (de)serialization.

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::net::IpAddr;

/// A route. `mtu`, `advmss`, `priority`, `table` and `scope` are spec 1.1 fields; Go carries them
/// in every version's route type, so they survive conversions the same way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    #[serde(with = "cidr")]
    pub dst: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_ip")]
    pub gw: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "crate::serde_util::nullable")]
    pub mtu: u32,
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "crate::serde_util::nullable")]
    pub advmss: u32,
    #[serde(default, skip_serializing_if = "is_zero", deserialize_with = "crate::serde_util::nullable")]
    pub priority: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<u8>,
}

impl Route {
    /// A route to `dst`, optionally via `gw`.
    pub fn new(dst: IpNet, gw: Option<IpAddr>) -> Self {
        Route { dst, gw, mtu: 0, advmss: 0, priority: 0, table: None, scope: None }
    }

    /// Only `dst` and `gw`, as 0.2.0 results carry them.
    pub(crate) fn dst_gw_only(&self) -> Self {
        Route::new(self.dst, self.gw)
    }

    pub(crate) fn is_ipv4(&self) -> bool {
        self.dst.addr().is_ipv4()
    }
}

/// DNS settings (`nameservers`, `domain`, `search`, `options`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "crate::serde_util::nullable")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "crate::serde_util::nullable")]
    pub domain: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "crate::serde_util::nullable")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "crate::serde_util::nullable")]
    pub options: Vec<String>,
}

impl Dns {
    /// A resolv.conf's `nameserver`, `domain`, `search` and `options` lines (comments, blank and
    /// other lines skipped; `search` and `options` accumulate over several lines).
    pub fn from_resolv_conf(text: &str) -> Dns {
        let mut dns = Dns::default();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 2 {
                continue;
            }
            match fields[0] {
                "nameserver" => dns.nameservers.push(fields[1].to_string()),
                "domain" => dns.domain = fields[1].to_string(),
                "search" => dns.search.extend(fields[1..].iter().map(|s| s.to_string())),
                "options" => dns.options.extend(fields[1..].iter().map(|s| s.to_string())),
                _ => {}
            }
        }
        dns
    }
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self.nameservers.is_empty() && self.domain.is_empty() && self.search.is_empty() && self.options.is_empty()
    }
}

pub(crate) fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// Go treats an IPv4-mapped IPv6 address as the IPv4 address; so do we.
pub fn normalize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Parses an address with prefix the way Go's `net.ParseCIDR` + `IPNet.String` see it: the host
/// bits are kept, and an IPv4-mapped address with a prefix of 96 or more is an IPv4 network.
pub fn parse_cidr(s: &str) -> Option<IpNet> {
    let net: IpNet = s.parse().ok()?;
    if let IpNet::V6(v6) = net {
        if let (Some(v4), true) = (v6.addr().to_ipv4_mapped(), v6.prefix_len() >= 96) {
            return Ipv4Net::new(v4, v6.prefix_len() - 96).ok().map(IpNet::V4);
        }
    }
    Some(net)
}

/// Parses an IP address like Go's `net.ParseIP` (IPv4-mapped addresses become IPv4).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok().map(normalize_ip)
}

/// serde for an address-with-prefix string (`"10.1.2.3/24"`).
pub mod cidr {
    use super::*;

    pub fn serialize<S: Serializer>(net: &IpNet, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(net)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
        let s = String::deserialize(d)?;
        parse_cidr(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid CIDR address: {s}")))
    }
}

/// serde for an optional IP address string; `""` and `null` mean none, as with Go's `net.IP`.
pub mod opt_ip {
    use super::*;

    pub fn serialize<S: Serializer>(ip: &Option<IpAddr>, s: S) -> Result<S::Ok, S::Error> {
        match ip {
            Some(ip) => s.collect_str(ip),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IpAddr>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(s) if s.is_empty() => Ok(None),
            Some(s) => parse_ip(&s).map(Some).ok_or_else(|| serde::de::Error::custom(format!("invalid IP address: {s}"))),
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn resolv_conf_lines() {
        let d = Dns::from_resolv_conf("# c\n; c\nnameserver 10.0.0.1\n  nameserver ::1 \ndomain d.example\nsearch a b\nsearch c\noptions ndots:2\nnameserver\nsortlist x\n");
        assert_eq!(d.nameservers, ["10.0.0.1", "::1"]);
        assert_eq!(
            (d.domain.as_str(), d.search.as_slice(), d.options.as_slice()),
            ("d.example", &["a".to_string(), "b".into(), "c".into()][..], &["ndots:2".to_string()][..])
        );
        assert_eq!(Dns::from_resolv_conf(""), Dns::default());
    }
    use super::*;

    #[test]
    fn cidr_keeps_host_bits_and_maps_v4() {
        assert_eq!(parse_cidr("10.1.2.3/24").unwrap().to_string(), "10.1.2.3/24");
        assert_eq!(parse_cidr("::ffff:10.1.2.3/120").unwrap().to_string(), "10.1.2.3/24");
        assert_eq!(parse_cidr("2001:DB8::0001/64").unwrap().to_string(), "2001:db8::1/64");
        assert!(parse_cidr("10.1.2.3").is_none());
        assert!(parse_cidr("10.1.2.3/33").is_none());
    }

    #[test]
    fn route_wire_form() {
        let r: Route = serde_json::from_str(r#"{"dst":"0.0.0.0/0","gw":"","mtu":null,"extra":true}"#).unwrap();
        assert_eq!(r, Route::new("0.0.0.0/0".parse().unwrap(), None));
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"dst":"0.0.0.0/0"}"#);
        let r: Route = serde_json::from_str(
            r#"{"dst":"10.0.0.0/8","gw":"::ffff:10.0.0.1","mtu":1400,"advmss":1360,"priority":5,"table":100,"scope":253}"#,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"dst":"10.0.0.0/8","gw":"10.0.0.1","mtu":1400,"advmss":1360,"priority":5,"table":100,"scope":253}"#
        );
        assert!(serde_json::from_str::<Route>(r#"{"gw":"10.0.0.1"}"#).is_err());
        assert!(serde_json::from_str::<Route>(r#"{"dst":"10.0.0.0/8","gw":"10.0.0"}"#)
            .unwrap_err()
            .to_string()
            .contains("invalid IP address"));
    }
}

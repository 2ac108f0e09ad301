//! Routes: single-path and ECMP, any table, scope, metric (priority), source hint, MTU/advmss.

use super::Netlink;
use crate::error::Result;
use ipnet::IpNet;
use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteMetric, RouteNextHop, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use std::net::IpAddr;

/// Well-known routing tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteTable {
    Main,
    Local,
    Id(u32),
}

impl RouteTable {
    pub fn id(self) -> u32 {
        match self {
            RouteTable::Main => 254,
            RouteTable::Local => 255,
            RouteTable::Id(n) => n,
        }
    }
}

/// One path of an ECMP route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    pub gw: Option<IpAddr>,
    pub oif: u32,
    /// Relative weight, 1–256.
    pub weight: u16,
}

/// A route to add or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
    pub oif: Option<u32>,
    pub table: u32,
    /// `rt_scope` (0 universe, 253 link, 254 host); `None`: link when there is no gateway,
    /// universe otherwise (what `ip route add` picks).
    pub scope: Option<u8>,
    /// The metric (`RTA_PRIORITY`).
    pub priority: Option<u32>,
    /// Preferred source address.
    pub src: Option<IpAddr>,
    pub mtu: Option<u32>,
    pub advmss: Option<u32>,
    /// More than one next hop makes an ECMP route (`gw`/`oif` are then ignored).
    pub multipath: Vec<NextHop>,
    /// `RTPROT_*` (default: boot, as `ip route add`).
    pub protocol: u8,
    /// `RTNH_F_ONLINK` (`ip route add … onlink`): the gateway is taken to be on the link of
    /// `oif` even when no address of that link covers it (overlay routes via a peer's VTEP).
    pub onlink: bool,
}

impl RouteSpec {
    pub fn new(dst: IpNet) -> Self {
        RouteSpec {
            dst: dst.trunc(),
            gw: None,
            oif: None,
            table: 254,
            scope: None,
            priority: None,
            src: None,
            mtu: None,
            advmss: None,
            multipath: Vec::new(),
            protocol: 3,
            onlink: false,
        }
    }

    /// Marks the gateway as on the link (`onlink`).
    pub fn onlink(mut self) -> Self {
        self.onlink = true;
        self
    }

    pub fn via(mut self, gw: IpAddr) -> Self {
        self.gw = Some(gw);
        self
    }

    pub fn dev(mut self, oif: u32) -> Self {
        self.oif = Some(oif);
        self
    }

    /// The RTM_NEWROUTE/RTM_DELROUTE message.
    pub fn message(&self) -> RouteMessage {
        let mut m = RouteMessage::default();
        let v4 = self.dst.addr().is_ipv4();
        let has_gw = self.gw.is_some() || self.multipath.iter().any(|n| n.gw.is_some());
        let h = &mut m.header;
        h.address_family = if v4 { AddressFamily::Inet } else { AddressFamily::Inet6 };
        h.destination_prefix_length = self.dst.prefix_len();
        h.protocol = RouteProtocol::from(self.protocol);
        h.kind = RouteType::Unicast;
        if self.onlink {
            h.flags |= RouteFlags::Onlink;
        }
        h.scope = RouteScope::from(self.scope.unwrap_or(if has_gw { 0 } else { 253 }));
        // tables above 255 travel in RTA_TABLE, with RT_TABLE_COMPAT in the header
        h.table = if self.table < 256 { self.table as u8 } else { 252 };
        m.attributes.push(RouteAttribute::Table(self.table));
        if self.dst.prefix_len() > 0 {
            m.attributes.push(RouteAttribute::Destination(RouteAddress::from(self.dst.addr())));
        }
        if self.multipath.len() > 1 {
            let hops = self
                .multipath
                .iter()
                .map(|n| {
                    let mut hop = RouteNextHop::default();
                    hop.hops = n.weight.saturating_sub(1).min(255) as u8;
                    hop.interface_index = n.oif;
                    if let Some(gw) = n.gw {
                        hop.attributes.push(RouteAttribute::Gateway(RouteAddress::from(gw)));
                    }
                    hop
                })
                .collect();
            m.attributes.push(RouteAttribute::MultiPath(hops));
        } else {
            let single = self.multipath.first();
            if let Some(gw) = self.gw.or(single.and_then(|n| n.gw)) {
                m.attributes.push(RouteAttribute::Gateway(RouteAddress::from(gw)));
            }
            if let Some(oif) = self.oif.or(single.map(|n| n.oif)) {
                m.attributes.push(RouteAttribute::Oif(oif));
            }
        }
        if let Some(p) = self.priority {
            m.attributes.push(RouteAttribute::Priority(p));
        }
        if let Some(src) = self.src {
            m.attributes.push(RouteAttribute::PrefSource(RouteAddress::from(src)));
        }
        let mut metrics = Vec::new();
        if let Some(mtu) = self.mtu {
            metrics.push(RouteMetric::Mtu(mtu));
        }
        if let Some(a) = self.advmss {
            metrics.push(RouteMetric::Advmss(a));
        }
        if !metrics.is_empty() {
            m.attributes.push(RouteAttribute::Metrics(metrics));
        }
        m
    }
}

/// A route as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNet,
    pub gw: Option<IpAddr>,
    pub oif: Option<u32>,
    pub table: u32,
    pub scope: u8,
    pub protocol: u8,
    pub priority: Option<u32>,
    pub src: Option<IpAddr>,
    pub multipath: Vec<NextHop>,
    /// `RTN_*` (1 unicast, 2 local, …).
    pub kind: u8,
    /// The kernel reports the (single) next hop as on-link (`RTNH_F_ONLINK`).
    pub onlink: bool,
}

fn addr_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

impl Route {
    /// The spec that adds this route again (in `table`): same destination, next hops, scope,
    /// protocol, metric and source hint.
    pub fn to_spec(&self, table: u32) -> RouteSpec {
        let mut s = RouteSpec::new(self.dst);
        s.gw = self.gw;
        s.oif = self.oif;
        s.table = table;
        s.scope = Some(self.scope);
        s.priority = self.priority;
        s.src = self.src;
        s.multipath = self.multipath.clone();
        s.protocol = self.protocol;
        s.onlink = self.onlink;
        s
    }

    fn from_message(m: &RouteMessage) -> Option<Route> {
        let v4 = m.header.address_family == AddressFamily::Inet;
        let mut dst_ip: IpAddr = if v4 { IpAddr::from([0u8; 4]) } else { IpAddr::from([0u16; 8]) };
        let mut r = Route {
            dst: IpNet::new(dst_ip, 0).ok()?,
            gw: None,
            oif: None,
            table: m.header.table as u32,
            scope: u8::from(m.header.scope),
            protocol: u8::from(m.header.protocol),
            priority: None,
            src: None,
            multipath: Vec::new(),
            kind: u8::from(m.header.kind),
            onlink: m.header.flags.contains(RouteFlags::Onlink),
        };
        for a in &m.attributes {
            match a {
                RouteAttribute::Destination(d) => dst_ip = addr_of(d)?,
                RouteAttribute::Gateway(g) => r.gw = addr_of(g),
                RouteAttribute::Oif(o) => r.oif = Some(*o),
                RouteAttribute::Table(t) => r.table = *t,
                RouteAttribute::Priority(p) => r.priority = Some(*p),
                RouteAttribute::PrefSource(s) => r.src = addr_of(s),
                RouteAttribute::MultiPath(hops) => {
                    r.multipath = hops
                        .iter()
                        .map(|h| NextHop {
                            gw: h.attributes.iter().find_map(|a| match a {
                                RouteAttribute::Gateway(g) => addr_of(g),
                                _ => None,
                            }),
                            oif: h.interface_index,
                            weight: h.hops as u16 + 1,
                        })
                        .collect()
                }
                _ => {}
            }
        }
        r.dst = IpNet::new(dst_ip, m.header.destination_prefix_length).ok()?;
        Some(r)
    }
}

impl Netlink {
    /// Adds a route; an existing one is an error (EEXIST).
    pub fn add_route(&mut self, r: &RouteSpec) -> Result<()> {
        self.request(RouteNetlinkMessage::NewRoute(r.message()), NLM_F_CREATE | NLM_F_EXCL, &|| describe("adding", r))
    }

    /// Adds a route, or another path to the same destination (Go's `RouteAddEcmp`).
    pub fn append_route(&mut self, r: &RouteSpec) -> Result<()> {
        self.request(RouteNetlinkMessage::NewRoute(r.message()), NLM_F_CREATE | NLM_F_APPEND, &|| describe("adding", r))
    }

    /// Adds a route, or replaces the one to the same destination (`ip route replace`).
    pub fn replace_route(&mut self, r: &RouteSpec) -> Result<()> {
        self.request(RouteNetlinkMessage::NewRoute(r.message()), NLM_F_CREATE | NLM_F_REPLACE, &|| describe("replacing", r))
    }

    pub fn del_route(&mut self, r: &RouteSpec) -> Result<()> {
        self.request(RouteNetlinkMessage::DelRoute(r.message()), 0, &|| describe("deleting", r))
    }

    /// The route the kernel would use to reach `dst` (`ip route get`): one request, whatever
    /// the size of the routing table.
    pub fn route_get(&mut self, dst: IpAddr) -> Result<Route> {
        let mut m = RouteMessage::default();
        m.header.address_family = if dst.is_ipv6() { AddressFamily::Inet6 } else { AddressFamily::Inet };
        m.header.destination_prefix_length = if dst.is_ipv6() { 128 } else { 32 };
        m.attributes.push(RouteAttribute::Destination(RouteAddress::from(dst)));
        let op = || format!("looking up the route to {dst}");
        match self.get(RouteNetlinkMessage::GetRoute(m), &op)? {
            RouteNetlinkMessage::NewRoute(r) => Route::from_message(&r).ok_or_else(|| crate::Error::msg(op(), "unreadable route")),
            other => Err(crate::Error::msg(op(), format!("unexpected reply {other:?}"))),
        }
    }

    /// The routes of one family (`ipv6`) in one table (`None`: all tables).
    pub fn routes(&mut self, ipv6: bool, table: Option<u32>) -> Result<Vec<Route>> {
        let make = || {
            let mut m = RouteMessage::default();
            m.header.address_family = if ipv6 { AddressFamily::Inet6 } else { AddressFamily::Inet };
            if let Some(t) = table {
                m.header.table = if t < 256 { t as u8 } else { 0 };
                m.attributes.push(RouteAttribute::Table(t));
            }
            RouteNetlinkMessage::GetRoute(m)
        };
        let msgs = self.dump(&make, &|| "listing routes".to_string())?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(r) => Route::from_message(r),
                _ => None,
            })
            .filter(|r| table.is_none_or(|t| t == r.table))
            .collect())
    }
}

fn describe(verb: &str, r: &RouteSpec) -> String {
    let mut s = format!("{verb} route {}", r.dst);
    if let Some(gw) = r.gw {
        s.push_str(&format!(" via {gw}"));
    }
    if let Some(o) = r.oif {
        s.push_str(&format!(" dev #{o}"));
    }
    if r.onlink {
        s.push_str(" onlink");
    }
    if r.table != 254 {
        s.push_str(&format!(" table {}", r.table));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_route_and_scope_choice() {
        let m = RouteSpec::new("0.0.0.0/0".parse().unwrap()).via("10.0.0.1".parse().unwrap()).message();
        assert!(!m.attributes.iter().any(|a| matches!(a, RouteAttribute::Destination(_))), "a default route has no RTA_DST");
        assert_eq!(m.header.scope, RouteScope::Universe);
        let m = RouteSpec::new("10.0.0.0/24".parse().unwrap()).dev(3).message();
        assert_eq!(m.header.scope, RouteScope::Link);
        assert_eq!(m.header.table, 254);
        let mut big = RouteSpec::new("10.9.0.0/16".parse().unwrap()).dev(3);
        big.table = 1000;
        let m = big.message();
        assert_eq!(m.header.table, 252);
        assert!(m.attributes.contains(&RouteAttribute::Table(1000)));
        // host bits are cleared
        assert_eq!(RouteSpec::new("10.9.3.4/16".parse().unwrap()).dst.to_string(), "10.9.0.0/16");
    }

    #[test]
    fn onlink_flag() {
        let r = RouteSpec::new("10.132.2.0/24".parse().unwrap()).via("10.132.2.0".parse().unwrap()).dev(4).onlink();
        let m = r.message();
        assert!(m.header.flags.contains(RouteFlags::Onlink));
        assert_eq!(m.header.scope, RouteScope::Universe);
        let back = Route::from_message(&m).unwrap();
        assert!(back.onlink);
        let mut want = r.clone();
        want.scope = Some(0);
        assert_eq!(back.to_spec(254), want);
        assert!(!RouteSpec::new("10.132.2.0/24".parse().unwrap()).message().header.flags.contains(RouteFlags::Onlink));
        assert_eq!(describe("adding", &r), "adding route 10.132.2.0/24 via 10.132.2.0 dev #4 onlink");
    }

    #[test]
    fn ecmp_message() {
        let mut r = RouteSpec::new("10.8.0.0/16".parse().unwrap());
        r.multipath = vec![
            NextHop { gw: Some("10.0.0.1".parse().unwrap()), oif: 2, weight: 1 },
            NextHop { gw: Some("10.0.1.1".parse().unwrap()), oif: 3, weight: 3 },
        ];
        let m = r.message();
        let hops = m
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::MultiPath(h) => Some(h.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(hops.len(), 2);
        assert_eq!((hops[1].interface_index, hops[1].hops), (3, 2));
        assert!(!m.attributes.iter().any(|a| matches!(a, RouteAttribute::Oif(_))));
    }
}

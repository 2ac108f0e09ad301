//! Policy-routing rules (`ip rule`): add, delete, list, one family at a time.

use super::Netlink;
use crate::error::Result;
use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::route::RouteProtocol;
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

/// A rule `[from SRC] [to DST] lookup TABLE [priority N]` (the only action rcni makes), as
/// written and as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub ipv6: bool,
    pub src: Option<IpNet>,
    pub dst: Option<IpNet>,
    pub table: u32,
    /// `None` when adding: the kernel picks one below the last rule before `main`.
    pub priority: Option<u32>,
    /// `FRA_PROTOCOL` (`RTPROT_*`; the kernel reports 0 when unset).
    pub protocol: u8,
    /// `l3mdev` rules (`ip rule add l3mdev`, the VRF lookup rule).
    pub l3mdev: bool,
    /// `FR_ACT_*` as the kernel reports it (1: lookup a table).
    pub action: u8,
}

impl Rule {
    /// `from src lookup table` (the family of `src`).
    pub fn from_source(src: IpNet, table: u32) -> Rule {
        Rule { ipv6: src.addr().is_ipv6(), src: Some(src), dst: None, table, priority: None, protocol: 0, l3mdev: false, action: 1 }
    }

    /// The RTM_NEWRULE/RTM_DELRULE message.
    pub fn message(&self) -> RuleMessage {
        let mut m = RuleMessage::default();
        m.header.family = if self.ipv6 { AddressFamily::Inet6 } else { AddressFamily::Inet };
        m.header.action = RuleAction::ToTable;
        // tables above 255 travel in FRA_TABLE only (RT_TABLE_UNSPEC in the header)
        m.header.table = if self.table < 256 { self.table as u8 } else { 0 };
        if let Some(s) = self.src {
            m.header.src_len = s.prefix_len();
            m.attributes.push(RuleAttribute::Source(s.addr()));
        }
        if let Some(d) = self.dst {
            m.header.dst_len = d.prefix_len();
            m.attributes.push(RuleAttribute::Destination(d.addr()));
        }
        m.attributes.push(RuleAttribute::Table(self.table));
        if let Some(p) = self.priority {
            m.attributes.push(RuleAttribute::Priority(p));
        }
        if self.protocol != 0 {
            m.attributes.push(RuleAttribute::Protocol(RouteProtocol::from(self.protocol)));
        }
        if self.l3mdev {
            m.attributes.push(RuleAttribute::L3MDev(true));
        }
        m
    }

    fn from_message(m: &RuleMessage) -> Option<Rule> {
        let ipv6 = match m.header.family {
            AddressFamily::Inet => false,
            AddressFamily::Inet6 => true,
            _ => return None,
        };
        let mut r = Rule {
            ipv6,
            src: None,
            dst: None,
            table: m.header.table as u32,
            priority: None,
            protocol: 0,
            l3mdev: false,
            action: u8::from(m.header.action),
        };
        for a in &m.attributes {
            match a {
                RuleAttribute::Source(ip) => r.src = IpNet::new(*ip, m.header.src_len).ok(),
                RuleAttribute::Destination(ip) => r.dst = IpNet::new(*ip, m.header.dst_len).ok(),
                RuleAttribute::Table(t) => r.table = *t,
                RuleAttribute::Priority(p) => r.priority = Some(*p),
                RuleAttribute::Protocol(p) => r.protocol = u8::from(*p),
                RuleAttribute::L3MDev(v) => r.l3mdev = *v,
                _ => {}
            }
        }
        Some(r)
    }
}

impl Netlink {
    /// Adds a rule; an identical one is an error (EEXIST).
    pub fn add_rule(&mut self, r: &Rule) -> Result<()> {
        self.request(RouteNetlinkMessage::NewRule(r.message()), NLM_F_CREATE | NLM_F_EXCL, &|| describe("adding", r))
    }

    /// Deletes a rule (the kernel matches on the attributes given; give `priority` to name one).
    pub fn del_rule(&mut self, r: &Rule) -> Result<()> {
        self.request(RouteNetlinkMessage::DelRule(r.message()), 0, &|| describe("deleting", r))
    }

    /// The rules of one family.
    pub fn rules(&mut self, ipv6: bool) -> Result<Vec<Rule>> {
        let make = || {
            let mut m = RuleMessage::default();
            m.header.family = if ipv6 { AddressFamily::Inet6 } else { AddressFamily::Inet };
            RouteNetlinkMessage::GetRule(m)
        };
        let msgs = self.dump(&make, &|| "listing rules".to_string())?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewRule(r) => Rule::from_message(r),
                _ => None,
            })
            .collect())
    }
}

fn describe(verb: &str, r: &Rule) -> String {
    let mut s = format!("{verb} rule");
    if let Some(src) = r.src {
        s.push_str(&format!(" from {src}"));
    }
    if let Some(dst) = r.dst {
        s.push_str(&format!(" to {dst}"));
    }
    if r.l3mdev {
        s.push_str(" l3mdev");
    }
    s.push_str(&format!(" lookup {}", r.table));
    if let Some(p) = r.priority {
        s.push_str(&format!(" priority {p}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::{Emitable, Parseable};

    fn round_trip(m: &RuleMessage) -> (Vec<u8>, RuleMessage) {
        let mut buf = vec![0; m.buffer_len()];
        m.emit(&mut buf);
        let back = RuleMessage::parse(buf.as_slice()).unwrap();
        (buf, back)
    }

    #[test]
    fn source_rule_message() {
        let r = Rule::from_source("10.1.2.3/32".parse().unwrap(), 100);
        let (bytes, back) = round_trip(&r.message());
        // struct fib_rule_hdr: family AF_INET, dst_len 0, src_len 32, tos 0, table 100,
        // res1, res2, action FR_ACT_TO_TBL (1), flags 0
        assert_eq!(&bytes[..12], &[2, 0, 32, 0, 100, 0, 0, 1, 0, 0, 0, 0]);
        // FRA_SRC (2): 10.1.2.3; FRA_TABLE (15): 100
        assert!(bytes.windows(8).any(|w| w == [8, 0, 2, 0, 10, 1, 2, 3]));
        assert!(bytes.windows(8).any(|w| w == [8, 0, 15, 0, 100, 0, 0, 0]));
        assert_eq!(Rule::from_message(&back), Some(r));
    }

    #[test]
    fn big_tables_and_v6() {
        let mut r = Rule::from_source("fd00::5/128".parse().unwrap(), 1000);
        r.priority = Some(32000);
        let (bytes, back) = round_trip(&r.message());
        assert_eq!(bytes[0], libc::AF_INET6 as u8);
        assert_eq!(bytes[4], 0, "a table above 255 is RT_TABLE_UNSPEC in the header");
        let back = Rule::from_message(&back).unwrap();
        assert_eq!((back.table, back.priority, back.src), (1000, Some(32000), r.src));
    }
}

//! portmap: publishes container ports on the host (chained after an interface plugin).
//!
//! Keys (as the reference): `runtimeConfig.portMappings` (capability `portMappings`:
//! `hostPort`, `containerPort`, `protocol` tcp/udp/sctp (empty = tcp), `hostIP`), `snat`
//! (default true), `masqAll`, `markMasqBit` (0–31, default 13), `conditionsV4`/`conditionsV6`,
//! `backend` (accepted; rcni always programs nftables). Conditions are a subset of nft's match
//! syntax: `ip saddr|daddr [!=] ADDR[/LEN]` (`ip6` for V6), `iifname|oifname [!=] NAME`, joined
//! in sequence. iptables-only options (`externalSetMarkChain`, conditions in iptables syntax)
//! are refused with code 2 naming the key.
//!
//! ADD needs prevResult; the container addresses are the first IPv4 and IPv6 of the
//! `CNI_IFNAME` sandbox interface. No mappings: prevResult passes through and nothing is
//! touched. Otherwise the mappings become owner-tagged elements of the network's DNAT maps in
//! table `inet rcni_hostport` (see [`layout`]), `route_localnet` is set on the host
//! interface that routes to the container (so 127.0.0.1 reaches it; with snat and IPv4), after
//! the guard that keeps containers off the node's loopback ([`layout::localnet_guard`]), and UDP
//! conntrack entries for the host ports are flushed. A host port another attachment publishes
//! (same protocol, port and host IP) is refused with code 11, naming the holder. Returns
//! prevResult.
//! DEL: the attachment's elements (by owner; the mappings passed on DEL make it a direct
//! lookup), then the UDP conntrack flush; never fails on missing state.
//! CHECK: every mapping is published for this attachment.
//! GC: removes the network's map elements whose owner is not in `cni.dev/valid-attachments`
//! (nothing without the key), and generations of earlier settings once they are empty.
//! STATUS: code 50 when nftables is not usable.

use crate::common::Rollback;
use cni_plugin::{CmdArgs, Plugin};
use cni_types::capabilities::PortMapping;
use cni_types::result::Result100;
use cni_types::{CniError, CniResult, NetConf};
use ipnet::IpNet;
use layout::{Cond, Mapping, Settings};
use netkit::nft;
use netkit::owner::{valid_tags, Owner};
use netkit::{sysctl, Netlink};
use serde::Deserialize;
use std::net::IpAddr;

pub mod layout;
#[cfg(test)]
mod layout_tests;

pub struct Portmap;

#[derive(Debug, Deserialize)]
struct Conf {
    #[serde(flatten)]
    net: NetConf,
    #[serde(default)]
    snat: Option<bool>,
    #[serde(rename = "masqAll", default)]
    masq_all: bool,
    #[serde(rename = "markMasqBit", default)]
    mark_masq_bit: Option<i64>,
    #[serde(rename = "externalSetMarkChain", default)]
    external_set_mark_chain: Option<String>,
    #[serde(rename = "conditionsV4", default)]
    conditions_v4: Option<Vec<String>>,
    #[serde(rename = "conditionsV6", default)]
    conditions_v6: Option<Vec<String>>,
    #[serde(default)]
    backend: Option<String>,
}

/// Parses `conditionsV4`/`V6`: the strings are joined and read as a sequence of matches.
fn parse_conditions(key: &str, v6: bool, raw: &[String]) -> Result<Vec<Cond>, CniError> {
    let text = raw.join(" ");
    let toks: Vec<&str> = text.split_whitespace().collect();
    if toks.first().is_some_and(|t| t.starts_with('-') || t.starts_with('!')) {
        return Err(CniError::unsupported_field(key, "iptables-syntax conditions need the iptables backend, which rcni's portmap does not have; use nft syntax (e.g. \"ip daddr 192.0.2.1\")"));
    }
    let bad = |why: String| {
        CniError::unsupported_field(key, format!("{why} (supported: ip/ip6 saddr|daddr [!=] PREFIX, iifname|oifname [!=] NAME)"))
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let negate_at = |j: usize| toks.get(j) == Some(&"!=");
        match toks[i] {
            fam @ ("ip" | "ip6") => {
                if (fam == "ip6") != v6 {
                    return Err(bad(format!("{fam:?} does not belong in {key}")));
                }
                let src = match toks.get(i + 1) {
                    Some(&"saddr") => true,
                    Some(&"daddr") => false,
                    other => return Err(bad(format!("unsupported match \"{fam} {}\"", other.unwrap_or(&"")))),
                };
                let negate = negate_at(i + 2);
                let vi = i + 2 + negate as usize;
                let v = toks.get(vi).ok_or_else(|| bad(format!("\"{fam}\" needs an address")))?;
                let net: IpNet =
                    v.parse().or_else(|_| v.parse::<IpAddr>().map(IpNet::from)).map_err(|_| bad(format!("invalid address {v:?}")))?;
                if net.addr().is_ipv6() != v6 {
                    return Err(bad(format!("address {v:?} is of the wrong family")));
                }
                out.push(Cond::Addr { src, net: net.trunc(), negate });
                i = vi + 1;
            }
            dir @ ("iifname" | "oifname") => {
                let negate = negate_at(i + 1);
                let vi = i + 1 + negate as usize;
                let v = toks.get(vi).ok_or_else(|| bad(format!("\"{dir}\" needs a name")))?;
                let name = v.trim_matches('"');
                if name.is_empty() || name.len() > 15 || name.contains('*') {
                    return Err(bad(format!("invalid interface name {v:?}")));
                }
                out.push(Cond::Iface { input: dir == "iifname", name: name.into(), negate });
                i = vi + 1;
            }
            other => return Err(bad(format!("unsupported match {other:?}"))),
        }
    }
    Ok(out)
}

fn settings(c: &Conf) -> Result<Settings, CniError> {
    if c.external_set_mark_chain.as_deref().is_some_and(|s| !s.is_empty()) {
        if c.mark_masq_bit.is_some() {
            return Err(CniError::invalid_config("Cannot specify externalSetMarkChain and markMasqBit"));
        }
        return Err(CniError::unsupported_field("externalSetMarkChain", "is an iptables-only option; rcni's portmap programs nftables"));
    }
    let bit = c.mark_masq_bit.unwrap_or(13);
    if !(0..=31).contains(&bit) {
        return Err(CniError::invalid_config(format!("MasqMarkBit must be between 0 and 31, got {bit}")));
    }
    crate::common::backend_key("backend", c.backend.as_deref())?;
    Ok(Settings {
        snat: c.snat.unwrap_or(true),
        masq_all: c.masq_all,
        mark_bit: bit as u8,
        cond_v4: parse_conditions("conditionsV4", false, c.conditions_v4.as_deref().unwrap_or_default())?,
        cond_v6: parse_conditions("conditionsV6", true, c.conditions_v6.as_deref().unwrap_or_default())?,
    })
}

fn protocol(p: &PortMapping) -> Result<u8, CniError> {
    match p.protocol.to_ascii_lowercase().as_str() {
        "" | "tcp" => Ok(6),
        "udp" => Ok(17),
        "sctp" => Ok(132),
        other => Err(CniError::invalid_config(format!("unsupported protocol {other:?} in portMappings (tcp, udp or sctp)"))),
    }
}

/// The mappings for the container's addresses: each applies to the address of its host IP's
/// family, or to both when no host IP is given.
fn mappings(rt: &[PortMapping], v4: Option<IpAddr>, v6: Option<IpAddr>) -> Result<Vec<Mapping>, CniError> {
    let mut out = Vec::new();
    for p in rt {
        if p.host_port == 0 || p.container_port == 0 {
            return Err(CniError::invalid_config(format!(
                "invalid port mapping {}:{}: ports must be between 1 and 65535",
                p.host_port, p.container_port
            )));
        }
        let proto = protocol(p)?;
        let host_ip = match p.host_ip.as_str() {
            "" => None,
            s => Some(s.parse::<IpAddr>().map_err(|_| CniError::invalid_config(format!("invalid hostIP {s:?} in portMappings")))?),
        };
        for dest in [v4, v6].into_iter().flatten() {
            match host_ip {
                Some(h) if h.is_ipv6() != dest.is_ipv6() => continue, // the other family's address
                Some(h) if h.is_unspecified() => {
                    out.push(Mapping { proto, host_port: p.host_port, host_ip: None, dest, dest_port: p.container_port })
                }
                _ => out.push(Mapping { proto, host_port: p.host_port, host_ip, dest, dest_port: p.container_port }),
            }
        }
    }
    Ok(out)
}

/// The first IPv4 and IPv6 address (with prefix) of the container interface `ifname`.
fn container_addrs(prev: &Result100, ifname: &str) -> (Option<IpNet>, Option<IpNet>) {
    let (mut v4, mut v6) = (None, None);
    for ip in &prev.ips {
        if let Some(i) = ip.interface {
            if let Some(intf) = prev.interfaces.get(i) {
                if intf.name != ifname || intf.sandbox.is_empty() {
                    continue;
                }
            }
        }
        match ip.address.addr() {
            IpAddr::V4(_) if v4.is_none() => v4 = Some(ip.address),
            IpAddr::V6(_) if v6.is_none() => v6 = Some(ip.address),
            _ => {}
        }
    }
    (v4, v6)
}

/// `route_localnet=1` on the host interface that routes to `ip`, so connections from
/// 127.0.0.1 can be sent to the container (then masqueraded).
fn enable_localnet(ip: IpAddr) -> Result<(), CniError> {
    let mut nl = Netlink::new()?;
    let Some(oif) = nl.route_get(ip)?.oif else { return Ok(()) };
    let link = nl.link_by_index(oif)?;
    Ok(sysctl::write(&format!("net/ipv4/conf/{}/route_localnet", link.name), "1")?)
}

/// Deletes the conntrack entries of the UDP host ports: one conntrack dump per family.
fn flush_udp(nft: &mut nft::SharedNft, maps: &[Mapping]) -> Result<(), CniError> {
    for v6 in [false, true] {
        let ports: Vec<u16> = maps.iter().filter(|m| m.proto == 17 && m.dest.is_ipv6() == v6).map(|m| m.host_port).collect();
        if !ports.is_empty() {
            nft.delete_conntrack_by_dport(v6, 17, &ports)?;
        }
    }
    Ok(())
}

fn owner(args: &CmdArgs, c: &Conf) -> Owner {
    Owner::new(&c.net.name, &args.container_id, &args.ifname)
}

impl Plugin for Portmap {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let c: Conf = args.conf()?;
        let s = settings(&c)?;
        let prev_raw = args.prev_result(&c.net)?.ok_or_else(|| CniError::invalid_config("must be called as chained plugin"))?;
        let rt = &c.net.runtime_config.port_mappings;
        if rt.is_empty() {
            return Ok(prev_raw);
        }
        let prev = prev_raw.to_current().map_err(|e| CniError::decoding(e.to_string()))?;
        let (v4, v6) = container_addrs(&prev, &args.ifname);
        let maps = mappings(rt, v4.map(|n| n.addr()), v6.map(|n| n.addr()))?;
        if maps.is_empty() {
            return Ok(prev_raw);
        }
        let subnets: Vec<IpNet> = [v4, v6].into_iter().flatten().collect();
        let o = owner(args, &c);
        // (declared before the socket's guard, so the guard is back in the pool when an undo
        // runs and the undo uses the same socket)
        let mut rb = Rollback::new();
        let mut nft = nft::shared()?;
        match layout::setup(&mut nft, &o, &s, &subnets, &maps) {
            Ok(()) => {}
            // (code 11: the port comes free when its holder's DEL or a GC releases it)
            Err(layout::SetupError::Held(h)) => {
                return Err(CniError::new(cni_types::error::code::TRY_AGAIN_LATER, format!("portmap: {h}")));
            }
            Err(layout::SetupError::Nft(e)) => return Err(e.into()),
        }
        rb.push("the port mappings", || {
            layout::teardown(&mut *nft::shared()?, &o, &s, &maps)?;
            Ok(())
        });
        if s.snat {
            if let Some(a) = v4 {
                // the guard first: route_localnet is never without it
                layout::localnet_guard(&mut nft)?;
                enable_localnet(a.addr())?;
            }
        }
        flush_udp(&mut nft, &maps)?;
        rb.commit();
        Ok(prev_raw)
    }

    fn del(&self, args: &CmdArgs) -> Result<(), CniError> {
        // the port mappings are only a hint for DEL (it finds the attachment's objects by owner):
        // mappings that do not decode (a hostPort of 70000, no containerPort) are dropped
        let c: Conf = args.conf().or_else(|e| {
            let mut v: serde_json::Value = serde_json::from_slice(&args.stdin).map_err(|_| e.clone())?;
            if let Some(rc) = v.get_mut("runtimeConfig").and_then(|r| r.as_object_mut()) {
                rc.remove("portMappings");
            }
            serde_json::from_value(v).map_err(|_| e)
        })?;
        // a config that has become invalid must not block DEL: fall back to the defaults
        let s = settings(&c).unwrap_or_default();
        let prev = args.prev_result_hint(&c.net);
        let (v4, v6) = prev.as_ref().map(|p| container_addrs(p, &args.ifname)).unwrap_or_default();
        let hint = mappings(&c.net.runtime_config.port_mappings, v4.map(|n| n.addr()), v6.map(|n| n.addr())).unwrap_or_default();
        let mut nft = nft::shared()?;
        layout::teardown(&mut nft, &owner(args, &c), &s, &hint)?;
        // the mappings are gone; stale UDP conntrack entries only delay the port's next user (the
        // reference, too, only logs this)
        if let Err(e) = flush_udp(&mut nft, &hint) {
            eprintln!("portmap: flushing the UDP conntrack entries of the removed mappings: {}", e.msg);
        }
        Ok(())
    }

    fn gc(&self, args: &CmdArgs) -> Result<(), CniError> {
        let c: Conf = args.conf()?;
        let Some(valid) = args.valid_attachments()? else { return Ok(()) };
        // settings that have become invalid fall back to the defaults, whose generation is then kept
        let s = settings(&c).unwrap_or_default();
        let tags = valid_tags(&c.net.name, &valid);
        let mut nft = nft::shared()?;
        layout::gc(&mut nft, &c.net.name, &s, &tags)?;
        Ok(())
    }

    fn status(&self, args: &CmdArgs) -> Result<(), CniError> {
        let c: Conf = args.conf()?;
        settings(&c)?;
        crate::delegate::nft_status(layout::TABLE)
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let c: Conf = args.conf()?;
        let s = settings(&c)?;
        let (_, prev) = args.required_prev_result(&c.net, "must be called as chained plugin")?;
        let (v4, v6) = container_addrs(&prev, &args.ifname);
        let maps = mappings(&c.net.runtime_config.port_mappings, v4.map(|n| n.addr()), v6.map(|n| n.addr()))?;
        if maps.is_empty() {
            return Ok(());
        }
        let mut nft = nft::shared()?;
        let missing = layout::missing(&mut nft, &owner(args, &c), &s, &maps)?;
        if let Some(m) = missing.first() {
            return Err(CniError::internal(format!(
                "portmap: host port {}/{} to {}:{} is not published for this container",
                m.host_port,
                match m.proto {
                    6 => "tcp",
                    17 => "udp",
                    _ => "sctp",
                },
                m.dest,
                m.dest_port
            )));
        }
        Ok(())
    }
}

/// Entry points for the fuzz crate (feature `fuzzing`): the parsers above, without a kernel.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// The settings of a config on stdin.
    pub fn settings_of(stdin: &[u8]) -> Result<Settings, CniError> {
        let c: Conf = serde_json::from_slice(stdin).map_err(|e| CniError::decoding(e.to_string()))?;
        settings(&c)
    }

    /// The container's subnets in `prev` and the mappings of `rt` to its addresses, as ADD
    /// computes them.
    pub fn mappings_of(rt: &[PortMapping], prev: &Result100, ifname: &str) -> Result<(Vec<IpNet>, Vec<Mapping>), CniError> {
        let (v4, v6) = container_addrs(prev, ifname);
        Ok(([v4, v6].into_iter().flatten().collect(), mappings(rt, v4.map(|n| n.addr()), v6.map(|n| n.addr()))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conds(s: &str, v6: bool) -> Result<Vec<Cond>, CniError> {
        parse_conditions("conditionsV4", v6, &[s.to_string()])
    }

    #[test]
    fn conditions_subset() {
        assert_eq!(
            conds("ip daddr != 192.0.2.0/24 iifname \"eth0\"", false).unwrap(),
            vec![
                Cond::Addr { src: false, net: "192.0.2.0/24".parse().unwrap(), negate: true },
                Cond::Iface { input: true, name: "eth0".into(), negate: false }
            ]
        );
        assert_eq!(
            conds("ip6 saddr fd00::1", true).unwrap(),
            vec![Cond::Addr { src: true, net: "fd00::1/128".parse().unwrap(), negate: false }]
        );
        // split across array entries, as the reference's examples do
        assert_eq!(parse_conditions("conditionsV4", false, &["ip".into(), "saddr".into(), "10.0.0.0/8".into()]).unwrap().len(), 1);
        for bad in ["-d 1.2.3.4", "! -i eth0", "tcp dport 80", "ip daddr", "ip6 daddr fd00::1", "ip daddr fd00::1", "iifname eth*"] {
            let e = conds(bad, false).unwrap_err();
            assert_eq!(e.code, 2, "{bad}: {e:?}");
            assert!(e.msg.contains("conditionsV4"), "{bad}: {}", e.msg);
        }
    }

    #[test]
    fn mappings_per_family() {
        let pm = |h: u16, c: u16, proto: &str, ip: &str| PortMapping {
            host_port: h,
            container_port: c,
            protocol: proto.into(),
            host_ip: ip.into(),
        };
        let v4: IpAddr = "10.0.0.2".parse().unwrap();
        let v6: IpAddr = "fd00::2".parse().unwrap();
        let m = mappings(&[pm(8080, 80, "TCP", ""), pm(53, 53, "udp", "192.0.2.1"), pm(9, 9, "sctp", "::")], Some(v4), Some(v6)).unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!((m[0].proto, m[0].dest, m[1].dest), (6, v4, v6));
        assert_eq!((m[2].proto, m[2].host_ip, m[2].dest), (17, Some("192.0.2.1".parse().unwrap()), v4));
        assert_eq!((m[3].proto, m[3].host_ip, m[3].dest), (132, None, v6));
        assert_eq!(mappings(&[pm(0, 80, "tcp", "")], Some(v4), None).unwrap_err().code, 7);
        assert_eq!(mappings(&[pm(1, 80, "icmp", "")], Some(v4), None).unwrap_err().code, 7);
        assert_eq!(mappings(&[pm(1, 80, "tcp", "x")], Some(v4), None).unwrap_err().code, 7);
    }
}

//! sbr: source-based routing for the interface an earlier plugin made (`CNI_IFNAME`), so that
//! traffic from its addresses leaves through it. A chained plugin: needs a prevResult, returns it.
//!
//! Keys (as the reference): `table`. The IPs are prevResult's for `CNI_IFNAME` (an IP without
//! an interface index counts). All work happens in the container's namespace, under an
//! exclusive `flock` on the namespace file (the reference locks the same file).
//! ADD without `table`: per IP, the first table from 100 up that no rule names and no route is
//! in: a rule `from <ip>/32 lookup T` (`/128` for IPv6); a default route via the IP's gateway
//! in T; the interface's routes of that family in `main` copied into T; then those routes are
//! deleted from `main` (the reference moves the routes of both families, so an IPv4-only
//! attachment loses its IPv6 link-local route there). ADD with `table`: only the rules, to
//! that table (the reference since v1.2). A failure undoes this ADD's rules and routes and
//! puts `main` back.
//! DEL: the rules whose source is one of the interface's addresses (or, when the interface is
//! gone, prevResult's), then the routes through the interface in the tables those rules named
//! (without `table`: they were free when ADD picked them). Routes are not put back into
//! `main` (the interface normally goes next). No netns, or a vanished one: nothing to do.
//! CHECK: every IP has its rule.

use crate::common::{self, Rollback};
use cni_plugin::{CmdArgs, Plugin};
use cni_types::result::{IpConfig, Result100};
use cni_types::{CniError, CniResult, NetConf};
use ipnet::IpNet;
use netkit::netlink::{Route, RouteSpec, Rule};
use netkit::{NetNs, Netlink};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

pub struct Sbr;

/// The first table ADD considers without `table` (as the reference).
pub const FIRST_TABLE: u32 = 100;
const MAIN: u32 = 254;
/// How long ADD and DEL wait for another sbr in the same namespace.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Deserialize)]
struct Conf {
    #[serde(flatten)]
    net: NetConf,
    #[serde(default)]
    table: Option<i64>,
}

fn table_of(c: &Conf) -> Result<Option<u32>, CniError> {
    match c.table {
        None => Ok(None),
        Some(t) if (1..=i64::from(u32::MAX)).contains(&t) => Ok(Some(t as u32)),
        Some(t) => Err(CniError::invalid_config(format!("invalid table {t}: 1 to 4294967295"))),
    }
}

/// prevResult's IPs for `ifname` (an IP naming no interface counts, one naming another or a
/// missing one does not).
fn ips_for<'a>(prev: &'a Result100, ifname: &str) -> Vec<&'a IpConfig> {
    prev.ips
        .iter()
        .filter(|ip| match ip.interface {
            None => true,
            Some(i) => prev.interfaces.get(i).is_some_and(|x| x.name == ifname),
        })
        .collect()
}

fn host_net(ip: IpAddr) -> IpNet {
    IpNet::new(ip, if ip.is_ipv4() { 32 } else { 128 }).expect("full-length prefix")
}

/// The first table from `from` up in none of `used`.
pub fn first_free(used: &BTreeSet<u32>, from: u32) -> u32 {
    let mut t = from;
    while used.contains(&t) {
        t += 1;
    }
    t
}

/// Tables some rule names or some route is in (both families).
fn used_tables(nl: &mut Netlink) -> Result<BTreeSet<u32>, CniError> {
    let mut used = BTreeSet::new();
    for v6 in [false, true] {
        used.extend(nl.rules(v6)?.iter().map(|r| r.table));
        used.extend(nl.routes(v6, None)?.iter().map(|r| r.table));
    }
    Ok(used)
}

fn through(r: &Route, index: u32) -> bool {
    r.oif == Some(index) || r.multipath.iter().any(|h| h.oif == index)
}

fn add(args: &CmdArgs, table: Option<u32>, prev: &Result100) -> Result<(), CniError> {
    let ips = ips_for(prev, &args.ifname);
    let ns = common::open_netns(&args.netns)?;
    ns.lock_exclusive(LOCK_TIMEOUT)?;
    let mut nl = Netlink::open_in(&ns)?;
    let ns = &ns;
    let link = nl.link_by_name(&args.ifname)?;
    let mut rb = Rollback::new();
    let undo_rule = |r: Rule| move || -> Result<(), CniError> { Ok(Netlink::open_in(ns)?.del_rule(&r)?) };
    if let Some(t) = table {
        for ip in &ips {
            let rule = Rule::from_source(host_net(ip.address.addr()), t);
            nl.add_rule(&rule)?;
            rb.push("a rule", undo_rule(rule));
        }
        rb.commit();
        return Ok(());
    }
    let mut used = used_tables(&mut nl)?;
    let mut moved: Vec<Route> = Vec::new();
    for ip in &ips {
        let v6 = ip.address.addr().is_ipv6();
        let t = first_free(&used, FIRST_TABLE);
        used.insert(t);
        let rule = Rule::from_source(host_net(ip.address.addr()), t);
        nl.add_rule(&rule)?;
        rb.push("a rule", undo_rule(rule));
        rb.push("a table", move || {
            let mut nl = Netlink::open_in(ns)?;
            for r in nl.routes(v6, Some(t))? {
                let _ = nl.del_route(&r.to_spec(t));
            }
            Ok(())
        });
        // the interface's routes of this family in main: routes without a gateway first, so
        // that the gateways of the others resolve in the new table
        let mut routes: Vec<Route> = nl.routes(v6, Some(MAIN))?.into_iter().filter(|r| r.kind == 1 && through(r, link.index)).collect();
        routes.sort_by_key(|r| r.gw.is_some() || !r.multipath.is_empty());
        for r in &routes {
            nl.replace_route(&r.to_spec(t))?;
        }
        if let Some(gw) = ip.gateway {
            let any = if v6 { IpNet::new(IpAddr::from([0u16; 8]), 0) } else { IpNet::new(IpAddr::from([0u8; 4]), 0) }.expect("prefix 0");
            let mut def = RouteSpec::new(any).via(gw).dev(link.index);
            def.table = t;
            nl.replace_route(&def)?;
        }
        for r in routes {
            if !moved.contains(&r) {
                moved.push(r);
            }
        }
    }
    for r in &moved {
        match nl.del_route(&r.to_spec(MAIN)) {
            Err(e) if !e.is_not_found() => return Err(e.into()),
            _ => {}
        }
        let r = r.clone();
        rb.push("a route of main", move || {
            let mut nl = Netlink::open_in(ns)?;
            match nl.replace_route(&r.to_spec(MAIN)) {
                Err(e) if !e.is_exists() => Err(e.into()),
                _ => Ok(()),
            }
        });
    }
    rb.commit();
    Ok(())
}

fn del(args: &CmdArgs, c: &common::DelConf) -> Result<(), CniError> {
    if args.netns.is_empty() {
        return Ok(());
    }
    let Some(ns) = NetNs::open_if_present(&args.netns)? else { return Ok(()) };
    ns.lock_exclusive(LOCK_TIMEOUT)?;
    let mut nl = Netlink::open_in(&ns)?;
    let link = match nl.link_by_name(&args.ifname) {
        Ok(l) => Some(l),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    let mut addrs: BTreeSet<IpAddr> = match &link {
        Some(l) => nl.addrs(Some(l.index), None)?.iter().map(|a| a.addr.addr()).collect(),
        None => BTreeSet::new(),
    };
    if let Some(prev) = &c.prev {
        addrs.extend(ips_for(prev, &args.ifname).iter().map(|i| i.address.addr()));
    }
    let own_table = c.uint("table").and_then(|t| u32::try_from(t).ok());
    let mut tables = BTreeSet::new();
    for v6 in [false, true] {
        for r in nl.rules(v6)? {
            let Some(src) = r.src else { continue };
            if r.action != 1 || src.prefix_len() != src.max_prefix_len() || !addrs.contains(&src.addr()) {
                continue;
            }
            match nl.del_rule(&r) {
                Err(e) if !e.is_not_found() => return Err(e.into()),
                _ => {}
            }
            if Some(r.table) != own_table && !(253..=255).contains(&r.table) {
                tables.insert((v6, r.table));
            }
        }
    }
    if let Some(l) = &link {
        for (v6, t) in tables {
            for r in nl.routes(v6, Some(t))?.into_iter().filter(|r| through(r, l.index)) {
                match nl.del_route(&r.to_spec(t)) {
                    Err(e) if !e.is_not_found() => return Err(e.into()),
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

impl Plugin for Sbr {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let c: Conf = args.conf()?;
        let table = table_of(&c)?;
        let (raw, prev) = args.required_prev_result(&c.net, "missing prevResult from earlier plugin")?;
        add(args, table, &prev)?;
        Ok(raw)
    }

    fn del(&self, args: &CmdArgs) -> Result<(), CniError> {
        // only what DEL needs is read: a value an ADD was refused for must not block it
        let c = common::DelConf::read(args)?;
        del(args, &c)
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let c: Conf = args.conf()?;
        let table = table_of(&c)?;
        let (_, prev) = args.required_prev_result(&c.net, "missing prevResult from earlier plugin")?;
        let (_, mut nl) = common::open_container(&args.netns)?;
        for ip in ips_for(&prev, &args.ifname) {
            let src = host_net(ip.address.addr());
            let rules = nl.rules(src.addr().is_ipv6())?;
            if !rules.iter().any(|r| r.src == Some(src) && r.action == 1 && table.is_none_or(|t| t == r.table)) {
                return Err(CniError::internal(format!("no source-based routing rule for {src} on {}", args.ifname)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni_types::result::Interface;

    #[test]
    fn tables_and_ips() {
        let used: BTreeSet<u32> = [100, 101, 103, 254, 255].into();
        assert_eq!(first_free(&used, FIRST_TABLE), 102);
        assert_eq!(first_free(&BTreeSet::new(), FIRST_TABLE), 100);
        let prev = Result100 {
            interfaces: vec![Interface::new("eth0", "", "/x"), Interface::new("eth1", "", "/x")],
            ips: vec![
                IpConfig { interface: Some(0), address: "10.0.0.2/24".parse().unwrap(), gateway: None },
                IpConfig { interface: Some(1), address: "10.0.1.2/24".parse().unwrap(), gateway: None },
                IpConfig { interface: None, address: "10.0.2.2/24".parse().unwrap(), gateway: None },
                IpConfig { interface: Some(7), address: "10.0.3.2/24".parse().unwrap(), gateway: None },
            ],
            ..Default::default()
        };
        let got: Vec<String> = ips_for(&prev, "eth1").iter().map(|i| i.address.to_string()).collect();
        assert_eq!(got, ["10.0.1.2/24", "10.0.2.2/24"]);
        let c: Conf = serde_json::from_str(r#"{"cniVersion":"1.0.0","name":"n","type":"sbr","table":0}"#).unwrap();
        assert_eq!(table_of(&c).unwrap_err().code, 7);
        let c: Conf = serde_json::from_str(r#"{"cniVersion":"1.0.0","name":"n","type":"sbr","table":500}"#).unwrap();
        assert_eq!(table_of(&c).unwrap(), Some(500));
    }
}

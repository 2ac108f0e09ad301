//! loopback: brings `lo` up in the container (ADD) and down again (DEL).
//!
//! Keys: none beyond the common ones. ADD passes `prevResult` through when chained; otherwise it
//! reports `lo` (MAC 00:00:00:00:00:00) with its first IPv4 and first IPv6 address. An address on
//! `lo` that is not a loopback address is an error. CHECK: `lo` is up. DEL without a netns, or
//! with one that is gone, succeeds.

use cni_plugin::{CmdArgs, Plugin};
use cni_types::result::{Interface, IpConfig, Result100};
use cni_types::{version, CniError, CniResult};
use netkit::{NetNs, Netlink};

pub struct Loopback;

fn open_lo(netns: &str) -> Result<(Netlink, u32), netkit::Error> {
    let ns = NetNs::open(netns)?;
    let mut nl = Netlink::open_in(&ns)?;
    let lo = nl.link_by_name("lo")?;
    Ok((nl, lo.index))
}

impl Plugin for Loopback {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let conf = args.net_conf()?;
        let prev = args.prev_result(&conf)?;
        let (mut nl, lo) = open_lo(&args.netns)?;
        nl.set_up(lo, true)?;
        let addrs = nl.addrs(Some(lo), None)?;
        if let Some(bad) = addrs.iter().find(|a| !a.addr.addr().is_loopback()) {
            return Err(CniError::internal(format!("loopback interface found with non-loopback address \"{}\"", bad.addr.addr())));
        }
        if let Some(prev) = prev {
            return Ok(prev);
        }
        let first = |v6: bool| addrs.iter().find(|a| a.addr.addr().is_ipv6() == v6);
        let ips = [first(false), first(true)]
            .into_iter()
            .flatten()
            .map(|a| IpConfig { interface: Some(0), address: a.addr, gateway: None })
            .collect();
        Ok(Result100 {
            cni_version: version::CURRENT.into(),
            interfaces: vec![Interface::new("lo", "00:00:00:00:00:00", &args.netns)],
            ips,
            ..Default::default()
        }
        .into())
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let (mut nl, lo) = open_lo(&args.netns)?;
        if nl.link_by_index(lo)?.up {
            Ok(())
        } else {
            Err(CniError::internal("loopback interface is down"))
        }
    }

    fn del(&self, args: &CmdArgs) -> Result<(), CniError> {
        if args.netns.is_empty() {
            return Ok(());
        }
        // a namespace that is gone has no loopback to take down
        let Some(ns) = NetNs::open_if_present(&args.netns)? else { return Ok(()) };
        let mut nl = Netlink::open_in(&ns)?;
        match nl.link_by_name("lo") {
            Ok(lo) => Ok(nl.set_up(lo.index, false)?),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

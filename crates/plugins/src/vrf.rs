//! vrf: puts the interface an earlier plugin made (`CNI_IFNAME`) into a VRF inside the
//! container. A chained plugin: needs a prevResult, returns it. Spec versions from 0.3.1.
//!
//! Keys (as the reference): `vrfname` (required), `table` (the VRF's routing table).
//! ADD: finds the VRF `vrfname` in the container, or makes it (table `table`, else the lowest
//! table from 1 no other VRF there has) and sets it up; an existing VRF with another table
//! than a given `table` is an error. Then the interface's global IPv6 addresses and its
//! universe-scope routes are saved, the interface enslaved (an interface with a master already
//! is an error), and the addresses put back (enslaving flushes them; retried with backoff from
//! 10 ms, bounded) and the routes re-added into the VRF's table. A failure frees the interface,
//! puts its addresses back, and deletes a VRF this ADD made. A kernel without VRF support
//! (CONFIG_NET_VRF) fails the ADD with code 50 naming it, before any change.
//! DEL: frees the interface when the VRF is its master, and deletes the VRF once no interface
//! is enslaved to it; no netns, no VRF, no interface are fine (the reference's DEL is not
//! idempotent).
//! CHECK: the VRF exists (with `table`, if given) and is the interface's master.
//! STATUS: code 50 when the kernel has no VRF support (asked without making a link).

use crate::common::{self, Rollback};
use cni_plugin::{CmdArgs, Plugin};
use cni_types::error::code;
use cni_types::{CniError, CniResult, NetConf};
use netkit::netlink::{AddrFlags, Link, LinkKind, LinkSpec};
use netkit::{NetNs, Netlink};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

pub struct Vrf;

/// Spec versions from 0.3.1 (as the reference).
pub const VERSIONS: &[&str] = &["0.3.1", "0.4.0", "1.0.0", "1.1.0"];

const NO_VRF: &str = "this kernel has no VRF support (CONFIG_NET_VRF)";

#[derive(Debug, Deserialize)]
struct Conf {
    #[serde(flatten)]
    net: NetConf,
    #[serde(default)]
    vrfname: String,
    #[serde(default)]
    table: u32,
}

fn load(args: &CmdArgs) -> Result<Conf, CniError> {
    let c: Conf = args.conf()?;
    if c.vrfname.is_empty() {
        return Err(CniError::invalid_config("configuration is expected to have a valid vrf name"));
    }
    if c.vrfname.len() > 15 || c.vrfname.contains(['/', ' ', '\0']) || c.vrfname == "." || c.vrfname == ".." {
        return Err(CniError::invalid_config(format!("invalid vrf name {:?}", c.vrfname)));
    }
    Ok(c)
}

/// The lowest table from 1 that none of `taken` has.
pub fn lowest_free_table(taken: &BTreeSet<u32>) -> u32 {
    (1..u32::MAX).find(|t| !taken.contains(t)).unwrap_or(u32::MAX)
}

/// The VRF to make: `name` with `table`, up.
pub fn vrf_spec(name: &str, table: u32) -> LinkSpec<'static> {
    let mut s = LinkSpec::new(name, LinkKind::Vrf { table });
    s.up = true;
    s
}

fn not_available(what: String) -> CniError {
    CniError::new(code::PLUGIN_NOT_AVAILABLE, what)
}

/// The VRF called `name`, if there is one; a link of that name that is no VRF is an error.
fn find_vrf(nl: &mut Netlink, name: &str) -> Result<Option<Link>, CniError> {
    match nl.link_by_name(name) {
        Ok(l) if l.kind.as_deref() == Some("vrf") => Ok(Some(l)),
        Ok(_) => Err(CniError::internal(format!("link {name} exists and is not a VRF"))),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn add(args: &CmdArgs, c: &Conf) -> Result<(), CniError> {
    let ns = common::open_netns(&args.netns)?;
    let mut nl = Netlink::open_in(&ns)?;
    let ns = &ns;
    let link = nl.link_by_name(&args.ifname)?;
    if link.master.is_some_and(|m| m != 0) {
        return Err(CniError::internal(format!("interface {} has already a master set, could not add to vrf {}", args.ifname, c.vrfname)));
    }
    let mut rb = Rollback::new();
    let vrf = match find_vrf(&mut nl, &c.vrfname)? {
        Some(v) => {
            let t = v.vrf_table.unwrap_or_default();
            if c.table != 0 && t != c.table {
                return Err(CniError::internal(format!("VRF {} already exist with different routing table {t}", c.vrfname)));
            }
            v
        }
        None => {
            let table = if c.table != 0 { c.table } else { lowest_free_table(&nl.links()?.iter().filter_map(|l| l.vrf_table).collect()) };
            match nl.add_link(&vrf_spec(&c.vrfname, table)) {
                Err(e) if e.is_not_supported() => return Err(not_available(format!("cannot create VRF {}: {NO_VRF}", c.vrfname))),
                r => r?,
            }
            let v = nl.link_by_name(&c.vrfname)?;
            let index = v.index;
            rb.push("the VRF", move || Ok(Netlink::open_in(ns)?.del_link(index)?));
            v
        }
    };
    let table = vrf.vrf_table.unwrap_or_default();
    let saved: Vec<_> = nl.addrs(Some(link.index), Some(true))?.into_iter().filter(|a| a.scope == 0).collect();
    let mut routes = Vec::new();
    for v6 in [false, true] {
        routes.extend(nl.routes(v6, Some(254))?.into_iter().filter(|r| r.oif == Some(link.index) && r.scope == 0 && r.kind == 1));
    }
    nl.set_master(link.index, Some(vrf.index))?;
    {
        let saved = saved.clone();
        let index = link.index;
        rb.push("the enslaving", move || {
            let mut nl = Netlink::open_in(ns)?;
            nl.set_master(index, None)?;
            for a in &saved {
                let _ = nl.add_addr(index, a.addr, AddrFlags { nodad: true });
            }
            Ok(())
        });
    }
    // enslaving cycles the link, which drops its IPv6 addresses: put them back until they stay
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut wait = Duration::from_millis(10);
    loop {
        let now: Vec<_> = nl.addrs(Some(link.index), Some(true))?.into_iter().map(|a| a.addr).collect();
        let missing: Vec<_> = saved.iter().filter(|a| !now.contains(&a.addr)).collect();
        if missing.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            return Err(CniError::internal(format!("failed to restore the IPv6 addresses of {} in VRF {}", args.ifname, c.vrfname)));
        }
        for a in missing {
            match nl.add_addr(link.index, a.addr, AddrFlags { nodad: true }) {
                Err(e) if !e.is_exists() => return Err(e.into()),
                _ => {}
            }
        }
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_millis(500));
    }
    for r in &routes {
        match nl.add_route(&r.to_spec(table)) {
            Err(e) if !e.is_exists() => return Err(e.into()),
            _ => {}
        }
    }
    rb.commit();
    Ok(())
}

fn del(args: &CmdArgs, c: &common::DelConf) -> Result<(), CniError> {
    let Some(name) = c.string("vrfname") else { return Ok(()) };
    if args.netns.is_empty() {
        return Ok(());
    }
    let Some(ns) = NetNs::open_if_present(&args.netns)? else { return Ok(()) };
    let mut nl = Netlink::open_in(&ns)?;
    let Ok(Some(vrf)) = find_vrf(&mut nl, name) else { return Ok(()) };
    match nl.link_by_name(&args.ifname) {
        Ok(l) if l.master == Some(vrf.index) => nl.set_master(l.index, None)?,
        Ok(_) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    if !nl.links()?.iter().any(|l| l.master == Some(vrf.index)) {
        match nl.del_link(vrf.index) {
            Err(e) if !e.is_not_found() => return Err(e.into()),
            _ => {}
        }
    }
    Ok(())
}

impl Plugin for Vrf {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let c = load(args)?;
        let (raw, _) = args.required_prev_result(&c.net, "missing prevResult from earlier plugin")?;
        add(args, &c)?;
        Ok(raw)
    }

    fn del(&self, args: &CmdArgs) -> Result<(), CniError> {
        let c = common::DelConf::read(args)?;
        del(args, &c)
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let c = load(args)?;
        args.required_prev_result(&c.net, "missing prevResult from earlier plugin")?;
        let (_, mut nl) = common::open_container(&args.netns)?;
        let Some(vrf) = find_vrf(&mut nl, &c.vrfname)? else {
            return Err(CniError::internal(format!("failed to find VRF {}", c.vrfname)));
        };
        if c.table != 0 && vrf.vrf_table != Some(c.table) {
            return Err(CniError::internal(format!("VRF {} has table {:?}, not {}", c.vrfname, vrf.vrf_table, c.table)));
        }
        let l = nl.link_by_name(&args.ifname)?;
        if l.master != Some(vrf.index) {
            return Err(CniError::internal(format!("interface {} is not in VRF {}", args.ifname, c.vrfname)));
        }
        Ok(())
    }

    fn status(&self, args: &CmdArgs) -> Result<(), CniError> {
        load(args)?;
        if !Netlink::new()?.vrf_supported()? {
            return Err(not_available(NO_VRF.to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netkit::netlink::wire::{contains, emitted as bytes};

    #[test]
    fn the_vrf_and_enslave_messages() {
        let m = bytes(&vrf_spec("blue", 7).message());
        // IFF_UP in ifi_flags and ifi_change
        assert_eq!(&m[8..12], &1u32.to_ne_bytes());
        assert_eq!(&m[12..16], &1u32.to_ne_bytes());
        // IFLA_IFNAME (3) "blue\0"
        assert!(contains(&m, &[9, 0, 3, 0, b'b', b'l', b'u', b'e', 0]));
        // IFLA_LINKINFO > IFLA_INFO_KIND (1) "vrf\0", IFLA_INFO_DATA (2) > IFLA_VRF_TABLE (1) u32 7
        assert!(contains(&m, &[8, 0, 1, 0, b'v', b'r', b'f', 0]));
        assert!(contains(&m, &[12, 0, 2, 0, 8, 0, 1, 0, 7, 0, 0, 0]));
        // enslaving: ifi_index 4, IFLA_MASTER (10) u32 9
        let e = bytes(&netkit::netlink::master_message(4, 9));
        assert_eq!(&e[4..8], &4i32.to_ne_bytes());
        assert!(contains(&e, &[8, 0, 10, 0, 9, 0, 0, 0]));
        // the support probe: kind vrf and no IFLA_INFO_DATA
        let p = bytes(&netkit::netlink::vrf_probe_message());
        assert!(contains(&p, &[8, 0, 1, 0, b'v', b'r', b'f', 0]));
        assert!(!contains(&p, &[2, 0, 8, 0, 1, 0]), "no table");
    }

    #[test]
    fn tables_and_names() {
        assert_eq!(lowest_free_table(&BTreeSet::new()), 1);
        assert_eq!(lowest_free_table(&[1, 2, 4].into()), 3);
        let args = |conf: &str| CmdArgs { stdin: conf.as_bytes().to_vec(), ..Default::default() };
        let e = load(&args(r#"{"cniVersion":"1.0.0","name":"n","type":"vrf"}"#)).unwrap_err();
        assert_eq!((e.code, e.msg.as_str()), (7, "configuration is expected to have a valid vrf name"));
        assert_eq!(load(&args(r#"{"cniVersion":"1.0.0","name":"n","type":"vrf","vrfname":"a/b"}"#)).unwrap_err().code, 7);
        assert_eq!(load(&args(r#"{"cniVersion":"1.0.0","name":"n","type":"vrf","vrfname":"blue","table":-1}"#)).unwrap_err().code, 6);
        assert_eq!(load(&args(r#"{"cniVersion":"1.0.0","name":"n","type":"vrf","vrfname":"blue","table":10}"#)).unwrap().table, 10);
    }
}

//! The life of a veth attachment, as bridge and ptp share it: masquerade of its addresses, DEL
//! (nftables objects by owner, the veth, the lease), CHECK of addresses and routes, GC (the
//! network's stale masquerade elements, then IPAM's GC) and STATUS.

use super::Rollback;
use crate::delegate;
use cni_plugin::{CmdArgs, Failures};
use cni_types::result::Result100;
use cni_types::CniError;
use ipnet::IpNet;
use netkit::iface::remove_veth;
use netkit::nft::{self, Client};
use netkit::owner::{valid_tags, Owner};
use netkit::{masq, Netlink};
use std::collections::HashSet;
use std::net::IpAddr;

/// Masquerades the attachment's addresses (`ipMasq`); the failed ADD's rollback removes it.
/// (The setup is all or nothing, so the undo is registered once it succeeded.)
pub fn masquerade(rb: &mut Rollback, owner: &Owner, addrs: &[IpNet]) -> Result<(), CniError> {
    masq::setup(&mut *nft::shared()?, owner, addrs)?;
    let o = owner.clone();
    rb.push("masquerade", move || {
        masq::teardown(&mut *nft::shared()?, &o, &[])?;
        Ok(())
    });
    Ok(())
}

/// DEL: first (when `uses_nft`: the config has masquerade or a spoof check) the attachment's
/// nftables objects — its masquerade and what `more` removes (bridge's spoof check) — found by owner while the addresses are still the attachment's
/// (prevResult's addresses only make the lookups direct); then the veth, through its host end
/// when prevResult names it (`host_end`: the host end's index among prevResult's interfaces; no
/// namespace switch), else by `ifname` inside the namespace; then the IPAM lease. Anything
/// already gone is fine.
pub fn del(
    args: &CmdArgs,
    c: &super::DelConf,
    owner: &Owner,
    host_end: usize,
    uses_nft: bool,
    more: impl FnOnce(&mut dyn Client) -> netkit::Result<bool>,
) -> Result<(), CniError> {
    let prev = &c.prev;
    let hint: Vec<IpAddr> = c.hint();
    // without masquerade or spoof check nothing of this attachment is in nftables: no request
    // (a config changed since its ADD leaves elements to GC)
    if uses_nft {
        let mut nft = nft::shared()?;
        masq::teardown(&mut nft, owner, &hint)?;
        more(&mut nft)?;
        // (back to the process's socket: closed once, at the end, see nft::shared)
    }
    // an IPAM that releases over the container's interface (dhcp: a DHCPRELEASE to the server)
    // goes before the veth, while it can still send; every other lease goes last
    let release_first = c.ipam_type().filter(|t| *t == "dhcp");
    if let Some(t) = release_first {
        delegate::del_if_present(t, args)?;
    }
    let mut host = Netlink::new()?;
    let end = prev.as_ref().and_then(|p| p.interfaces.get(host_end)).filter(|i| i.sandbox.is_empty() && !i.mac.is_empty());
    remove_veth(&mut host, end.map(|h| (h.name.as_str(), h.mac.as_str())), &args.netns, &args.ifname)?;
    if let Some(t) = c.ipam_type().filter(|_| release_first.is_none()) {
        delegate::del_if_present(t, args)?;
    }
    Ok(())
}

/// CHECK: the attachment's masquerade exists.
pub fn check_masquerade(owner: &Owner, ifname: &str) -> Result<(), CniError> {
    if masq::owned_addresses(&mut *nft::shared()?, owner)?.is_empty() {
        return Err(CniError::internal(format!("masquerade for {ifname} is missing")));
    }
    Ok(())
}

/// Every address of the result on the interface, and every route present (the reference's
/// `ValidateExpectedInterfaceIPs` and `ValidateExpectedRoute`).
pub fn check_ips_and_routes(nl: &mut Netlink, ifname: &str, index: u32, prev: &Result100) -> Result<(), CniError> {
    let addrs = nl.addrs(Some(index), None)?;
    for ipc in &prev.ips {
        if ipc.interface.and_then(|i| prev.interfaces.get(i)).is_some_and(|i| i.name != ifname) {
            continue;
        }
        if !addrs.iter().any(|a| a.addr == ipc.address) {
            return Err(CniError::internal(format!("Failed to match addr {} on interface {ifname}", ipc.address)));
        }
    }
    // one dump per family
    let mut tables: [Option<Vec<netkit::netlink::Route>>; 2] = [None, None];
    for r in &prev.routes {
        let v6 = r.dst.addr().is_ipv6();
        let routes = match &mut tables[usize::from(v6)] {
            Some(t) => t,
            slot => slot.insert(nl.routes(v6, None)?),
        };
        if !routes.iter().any(|x| x.dst == r.dst.trunc() && (r.gw.is_none() || x.gw == r.gw || x.multipath.iter().any(|h| h.gw == r.gw))) {
            return Err(CniError::internal(format!("Failed to find route {} via {:?} on {ifname}", r.dst, r.gw)));
        }
    }
    Ok(())
}

/// GC: the network's masquerade elements whose owner is not in `cni.dev/valid-attachments`
/// (nothing without the key), what `more` collects (bridge's spoof-check rules), then GC of
/// the IPAM plugin; veths went with their namespaces. Goes on past failures, reporting them all.
pub fn gc(
    args: &CmdArgs,
    network: &str,
    ipam: Option<&str>,
    more: impl FnOnce(&mut dyn Client, &HashSet<String>, &mut Failures),
) -> Result<(), CniError> {
    let Some(valid) = args.valid_attachments()? else { return Ok(()) };
    let tags = valid_tags(network, &valid);
    let mut failures = Failures::new();
    if let Some(mut nft) = failures.note("opening nftables", nft::shared()) {
        failures.note("masquerade GC", masq::gc(&mut nft, network, &tags));
        more(&mut nft, &tags, &mut failures);
    }
    if let Some(t) = ipam {
        failures.note("IPAM GC", delegate::gc(t, args));
    }
    failures.finish()
}

/// STATUS: IPAM STATUS (code 50 if the IPAM plugin is not on `CNI_PATH`), and code 50 when
/// nftables is needed (`ipMasq`, bridge's `macspoofchk`) and unusable.
pub fn status(args: &CmdArgs, ipam: Option<&str>, needs_nftables: bool) -> Result<(), CniError> {
    if let Some(t) = ipam {
        delegate::status(t, args)?;
    }
    if needs_nftables {
        delegate::nft_status(masq::TABLE)?;
    }
    Ok(())
}

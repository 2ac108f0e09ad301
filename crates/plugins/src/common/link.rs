//! The life of a container link that is no veth, as macvlan, ipvlan, vlan and dummy share it:
//! the master (given, or the default route's interface, on the host or with `linkInContainer`
//! in the container), the link made straight into the container's namespace under a temporary
//! `veth…` name and renamed to `ifname` (as the reference: a host link of that name cannot
//! collide), the IPAM step and interface configuration, DEL (IPAM, then the link by name; a
//! vanished namespace, link or master is fine), CHECK of the link against prevResult, and
//! STATUS (IPAM's, then whether the kernel has the link kind at all).
//!
//! A kernel without the kind answers RTM_NEWLINK with EOPNOTSUPP "Unknown device type"; ADD
//! then fails with [`LinkKind::missing_feature`] in its message ("the kernel has no ipvlan
//! support (module ipvlan)") and has made nothing, and STATUS answers code 50 with the same
//! words (probed in a scratch namespace: [`netkit::iface::link_kind_supported`]).

use super::Rollback;
use crate::delegate;
use cni_plugin::CmdArgs;
use cni_types::error::code;
use cni_types::result::{Interface, Result100};
use cni_types::CniError;
use netkit::iface::{configure_iface, link_kind_supported, random_veth_name, ConfigureOpts};
use netkit::netlink::{is_unknown_link_kind, Link, LinkKind, LinkSpec};
use netkit::{sysctl, NetNs, Netlink};

/// The interface of the namespace `nl` is in that carries its first default route (main table,
/// IPv4 before IPv6, as the reference lists them).
pub fn default_route_interface(nl: &mut Netlink) -> Result<String, CniError> {
    for v6 in [false, true] {
        for r in nl.routes(v6, None)? {
            if r.dst.prefix_len() == 0 && r.table == 254 {
                if let Some(oif) = r.oif {
                    return Ok(nl.link_by_index(oif)?.name);
                }
            }
        }
    }
    Err(CniError::internal("no default route interface found"))
}

/// The master link: `name`, or the default route's interface; looked up on the host, or with
/// `in_container` in the container's namespace (`cont`).
pub fn master(host: &mut Netlink, cont: &mut Netlink, name: Option<&str>, in_container: bool) -> Result<Link, CniError> {
    let nl = if in_container { cont } else { host };
    let name = match name {
        Some(n) => n.to_string(),
        None => default_route_interface(nl)?,
    };
    nl.link_by_name(&name).map_err(|e| CniError::internal(format!("failed to lookup master {name:?}: {e}")))
}

/// `mtu` must not exceed the master's (the reference's check and text); 0 keeps the kernel's.
pub fn check_mtu(mtu: i64, master: &Link) -> Result<Option<u32>, CniError> {
    if mtu < 0 || mtu > i64::from(master.mtu) {
        return Err(CniError::invalid_config(format!("invalid MTU {mtu}, must be [0, master MTU({})]", master.mtu)));
    }
    Ok((mtu > 0).then_some(mtu as u32))
}

/// The container's namespace, a socket in it, and one on the host.
pub struct Sockets {
    pub ns: NetNs,
    pub cont: Netlink,
    pub host: Netlink,
}

impl Sockets {
    pub fn open(args: &CmdArgs) -> Result<Sockets, CniError> {
        let (ns, cont) = super::open_container(&args.netns)?;
        Ok(Sockets { ns, cont, host: Netlink::new()? })
    }
}

/// What to create.
pub struct NewLink<'a> {
    /// The plugin's name in the reference's messages: `macvlan`, `ipvlan`, `vlan`, `dummy`.
    pub what: &'static str,
    pub kind: LinkKind<'static>,
    /// The parent (macvlan, ipvlan, vlan).
    pub master: Option<&'a Link>,
    /// The master is in the container: the link is made there (`linkInContainer`).
    pub in_container: bool,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
    pub bc_queue_len: Option<u32>,
}

/// Creates the link in the container's namespace as `args.ifname` (through a temporary name
/// when it has a master, as the reference) and registers its removal in `rb`. Returns the
/// result's interface for it and its index there.
pub fn create(rb: &mut Rollback, s: &mut Sockets, args: &CmdArgs, l: NewLink) -> Result<(Interface, u32), CniError> {
    let tmp = if l.master.is_some() { random_veth_name()? } else { args.ifname.clone() };
    let mut spec = LinkSpec::new(tmp.clone(), l.kind.clone());
    spec.mtu = l.mtu;
    spec.mac = l.mac;
    spec.parent = l.master.map(|m| m.index);
    spec.bc_queue_len = l.bc_queue_len;
    let made = if l.in_container || l.master.is_none() {
        s.cont.add_link(&spec)
    } else {
        spec.netns = Some(&s.ns);
        s.host.add_link(&spec)
    };
    made.map_err(|e| {
        if is_unknown_link_kind(&e) {
            let answer =
                e.errno().map(std::io::Error::from_raw_os_error).map(|a| format!(" (RTM_NEWLINK of kind {:?}: {a})", l.kind.name()));
            CniError::internal(format!("failed to create {}: {}{}", l.what, l.kind.missing_feature(), answer.unwrap_or_default()))
        } else {
            CniError::internal(format!("failed to create {}: {e}", l.what))
        }
    })?;
    let index = s.cont.link_by_name(&tmp)?.index;
    let ns_path = args.netns.clone();
    rb.push("the container link", move || {
        let ns = match NetNs::open_if_present(&ns_path)? {
            Some(ns) => ns,
            None => return Ok(()),
        };
        match Netlink::open_in(&ns)?.del_link(index) {
            Err(e) if !e.is_not_found() => Err(e.into()),
            _ => Ok(()),
        }
    });
    if tmp != args.ifname {
        s.cont
            .rename(index, &args.ifname)
            .map_err(|e| CniError::internal(format!("failed to rename {} to {:?}: {e}", l.what, args.ifname)))?;
    }
    let link =
        s.cont.link_by_index(index).map_err(|e| CniError::internal(format!("failed to refetch {} {:?}: {e}", l.what, args.ifname)))?;
    Ok((Interface::new(&args.ifname, link.mac_string(), &args.netns), index))
}

/// The addresses: `result` (IPAM's, or prevResult's) goes on the link, all of its IPs on
/// interface 0, which is `iface`; `notify` sets `arp_notify` and `ndisc_notify` first (macvlan,
/// ipvlan). The link comes up.
pub fn configure(s: &mut Sockets, args: &CmdArgs, iface: Interface, mut result: Result100, notify: bool) -> Result<Result100, CniError> {
    for ipc in &mut result.ips {
        ipc.interface = Some(0);
    }
    result.interfaces = vec![iface];
    if notify {
        let ifname = args.ifname.clone();
        // best effort, as the reference: without IPv6 the file does not exist
        let _ = s.ns.run(|| sysctl::write(&format!("net/ipv6/conf/{ifname}/ndisc_notify"), "1"));
    }
    configure_iface(&mut s.cont, &s.ns, &args.ifname, &result, ConfigureOpts { arp_notify: notify, ..Default::default() })?;
    result.cni_version = cni_types::version::CURRENT.into();
    Ok(result)
}

/// IPAM ADD, its release registered in `rb`.
pub fn ipam_add(rb: &mut Rollback<'_>, ipam: &str, args: &CmdArgs) -> Result<Result100, CniError> {
    let (t, a) = (ipam.to_string(), args.clone());
    rb.push("the IPAM lease", move || delegate::del(&t, &a));
    super::ipam_add(ipam, args)
}

/// DEL: IPAM DEL (when the config names an IPAM plugin), then the link `ifname` in the
/// container's namespace. No namespace, a vanished one, or a link already gone (with its
/// master, with the namespace) is fine; only the network's name and `ipam.type` are read.
pub fn del(args: &CmdArgs) -> Result<(), CniError> {
    let c = super::DelConf::read(args)?;
    if let Some(t) = c.ipam_type() {
        delegate::del_if_present(t, args)?;
    }
    if args.netns.is_empty() {
        return Ok(());
    }
    let Some(ns) = NetNs::open_if_present(&args.netns)? else { return Ok(()) };
    let mut nl = Netlink::open_in(&ns)?;
    match nl.link_by_name(&args.ifname).and_then(|l| nl.del_link(l.index)) {
        Err(e) if !e.is_not_found() => Err(e.into()),
        _ => Ok(()),
    }
}

/// CHECK of the container link against prevResult (the reference's checks and texts): it is
/// in prevResult with this namespace as sandbox, exists there, is of `kind` and passes
/// `same_kind_data` (mode, VLAN ID), has prevResult's MAC, and carries prevResult's addresses
/// and routes.
pub fn check(
    s: &mut Sockets,
    args: &CmdArgs,
    what: &str,
    prev: &Result100,
    same_kind_data: impl FnOnce(&Link) -> Result<(), CniError>,
) -> Result<(), CniError> {
    let Some(intf) = prev.interfaces.iter().find(|i| i.name == args.ifname && i.sandbox == args.netns) else {
        return Err(CniError::internal(format!("Sandbox in prevResult  doesn't match configured netns: {}", args.netns)));
    };
    let l = s
        .cont
        .link_by_name(&intf.name)
        .map_err(|_| CniError::internal(format!("Container Interface name in prevResult: {} not found", intf.name)))?;
    if l.kind.as_deref() != Some(what) {
        return Err(CniError::internal(format!("Error: Container interface {} not of type {what}", l.name)));
    }
    same_kind_data(&l)?;
    if !intf.mac.is_empty() && intf.mac != l.mac_string() {
        return Err(CniError::internal(format!(
            "Interface {} Mac {} doesn't match container Mac: {}",
            intf.name,
            intf.mac,
            l.mac_string()
        )));
    }
    super::veth::check_ips_and_routes(&mut s.cont, &args.ifname, l.index, prev)
}

/// GC (the reference has none): with `cni.dev/valid-attachments`, IPAM's GC, so leases of
/// attachments the runtime no longer has are released; the links went with their namespaces.
pub fn gc(args: &CmdArgs, ipam: Option<&str>) -> Result<(), CniError> {
    if args.valid_attachments()?.is_none() {
        return Ok(());
    }
    match ipam {
        Some(t) => delegate::gc(t, args),
        None => Ok(()),
    }
}

/// STATUS: IPAM STATUS (code 50 when it is not on `CNI_PATH`), then code 50 when the kernel has
/// no links of `kind` (probed in a scratch namespace; nothing else is touched).
pub fn status(args: &CmdArgs, ipam: Option<&str>, kind: &LinkKind) -> Result<(), CniError> {
    if let Some(t) = ipam {
        delegate::status(t, args)?;
    }
    match link_kind_supported(kind) {
        Ok(true) => Ok(()),
        Ok(false) => Err(CniError::new(code::PLUGIN_NOT_AVAILABLE, kind.missing_feature())),
        Err(e) => Err(CniError::new(code::PLUGIN_NOT_AVAILABLE, format!("probing for {} links: {e}", kind.name()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtu_up_to_the_masters() {
        let master = Link { name: "eth0".into(), mtu: 1500, ..Default::default() };
        assert_eq!(check_mtu(0, &master).unwrap(), None);
        assert_eq!(check_mtu(1500, &master).unwrap(), Some(1500));
        let e = check_mtu(1501, &master).unwrap_err();
        assert_eq!((e.code, e.msg.as_str()), (7, "invalid MTU 1501, must be [0, master MTU(1500)]"));
        assert_eq!(check_mtu(-1, &master).unwrap_err().code, 7);
    }
}

//! tap: a persistent TAP device in the container (for a VM's NIC), optionally on a bridge there.
//!
//! Keys (as the reference): `mac` (also `CNI_ARGS` `MAC=` and `runtimeConfig.mac`, in that
//! order, the later winning), `mtu`, `multiQueue`, `owner` and `group` (uid and gid allowed
//! to open the queue), `bridge` (a bridge *inside* the container the device joins), `ipam`
//! (optional), `selinuxContext` (refused, code 2: rcni cannot label the device). Created
//! through `/dev/net/tun` (`TUNSETIFF` with TAP, no packet information, virtio-net header,
//! multi-queue when asked; `TUNSETOWNER`, `TUNSETGROUP`, `TUNSETPERSIST`) inside the
//! container's namespace, never with `ip tuntap`; MAC, MTU, master and link up over netlink.
//! Without `/dev/net/tun` ADD fails naming the missing TUN/TAP support.
//! ADD: any failure deletes the device and releases the lease. Result: the device (name, MAC,
//! sandbox), plus IPAM's IPs.
//! DEL: the device, then the lease; gone is fine (also no netns).
//! CHECK: the device exists and is a tap, its MAC, prevResult's addresses and routes, IPAM CHECK.
//! STATUS: IPAM STATUS; code 50 when `/dev/net/tun` is missing.

use crate::common::{self, veth, Rollback};
use crate::delegate;
use cni_plugin::{CmdArgs, Plugin};
use cni_types::error::code;
use cni_types::result::{Interface, Result100};
use cni_types::{CniError, CniResult, NetConf};
use netkit::netlink::parse_mac;
use netkit::tun::{create_tap, Tap as TapSpec, TUN_DEVICE};
use netkit::{NetNs, Netlink};
use serde::Deserialize;

pub struct Tap;

#[derive(Debug, Deserialize)]
struct Conf {
    #[serde(flatten)]
    net: NetConf,
    #[serde(rename = "multiQueue", default)]
    multi_queue: bool,
    #[serde(default)]
    mtu: i64,
    #[serde(default)]
    mac: String,
    #[serde(default)]
    owner: Option<u32>,
    #[serde(default)]
    group: Option<u32>,
    #[serde(rename = "selinuxContext", default)]
    selinux_context: String,
    #[serde(default)]
    bridge: String,
}

struct Setup {
    c: Conf,
    mtu: Option<u32>,
    mac: Option<[u8; 6]>,
    ipam: Option<String>,
}

fn load(args: &CmdArgs) -> Result<Setup, CniError> {
    let c: Conf = args.conf()?;
    let mtu = common::mtu(c.mtu)?;
    if !c.selinux_context.is_empty() {
        return Err(CniError::unsupported_field(
            "selinuxContext",
            "rcni cannot give a tap device an SELinux context (leave selinuxContext out)",
        ));
    }
    if c.bridge.contains('/') || c.bridge.len() > 15 {
        return Err(CniError::invalid_config(format!("invalid bridge name {:?}", c.bridge)));
    }
    let mac = match common::requested_mac(&c.mac, args, &c.net)? {
        Some(m) => Some(parse_mac(&m).ok_or_else(|| CniError::invalid_config(format!("invalid MAC address {m:?}")))?),
        None => None,
    };
    let ipam = common::ipam_type(&c.net);
    Ok(Setup { c, mtu, mac, ipam })
}

fn add(args: &CmdArgs, s: &Setup) -> Result<Result100, CniError> {
    let (cont_ns, mut cont) = common::open_container(&args.netns)?;
    common::ensure_ifname_free(&mut cont, &args.ifname)?;
    let bridge = if s.c.bridge.is_empty() {
        None
    } else {
        Some(cont.link_by_name(&s.c.bridge).map_err(|e| CniError::internal(format!("failed to find bridge {:?}: {e}", s.c.bridge)))?)
    };
    let spec = TapSpec { name: args.ifname.clone(), multi_queue: s.c.multi_queue, owner: s.c.owner, group: s.c.group };
    let mut rb = Rollback::new();
    cont_ns.run(|| create_tap(&spec))??;
    let ns = &cont_ns;
    rb.push("the tap device", move || {
        let mut nl = Netlink::open_in(ns)?;
        let l = nl.link_by_name(&spec.name)?;
        Ok(nl.del_link(l.index)?)
    });
    let l = cont.link_by_name(&args.ifname)?;
    if let Some(mtu) = s.mtu {
        cont.set_mtu(l.index, mtu)?;
    }
    if let Some(mac) = s.mac {
        cont.set_mac(l.index, mac)?;
    }
    if let Some(br) = &bridge {
        cont.set_master(l.index, Some(br.index))?;
    }
    cont.set_up(l.index, true)?;
    let l = cont.link_by_index(l.index)?;
    let mut result = Result100 { cni_version: cni_types::version::CURRENT.into(), ..Default::default() };
    result.interfaces = vec![Interface::new(&args.ifname, l.mac_string(), &args.netns)];
    if let Some(ipam) = &s.ipam {
        common::ipam_onto_interface(&mut rb, ipam, args, &mut cont, &cont_ns, &mut result, &s.c.net)?;
    }
    rb.commit();
    Ok(result)
}

fn tun_missing() -> bool {
    !std::path::Path::new(TUN_DEVICE).exists()
}

impl Plugin for Tap {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let s = load(args)?;
        Ok(add(args, &s)?.into())
    }

    fn del(&self, args: &CmdArgs) -> Result<(), CniError> {
        let c = common::DelConf::read(args)?;
        if !args.netns.is_empty() {
            if let Some(ns) = NetNs::open_if_present(&args.netns)? {
                let mut nl = Netlink::open_in(&ns)?;
                match nl.link_by_name(&args.ifname).and_then(|l| nl.del_link(l.index)) {
                    Err(e) if !e.is_not_found() => return Err(e.into()),
                    _ => {}
                }
            }
        }
        if let Some(t) = c.ipam_type() {
            delegate::del_if_present(t, args)?;
        }
        Ok(())
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(args)?;
        if let Some(ipam) = &s.ipam {
            delegate::check(ipam, args)?;
        }
        let (_, prev) = args.required_prev_result(&s.c.net, "Required prevResult missing")?;
        let Some(want) = prev.interfaces.iter().find(|i| i.name == args.ifname && i.sandbox == args.netns) else {
            return Err(CniError::internal(format!("Sandbox in prevResult doesn't match configured netns: {}", args.netns)));
        };
        let (_, mut cont) = common::open_container(&args.netns)?;
        let l = cont.link_by_name(&args.ifname).map_err(|_| CniError::internal(format!("Interface name {} not found", args.ifname)))?;
        if l.kind.as_deref() != Some("tun") {
            return Err(CniError::internal(format!("Error: Container interface {} not of type tap", l.name)));
        }
        if !want.mac.is_empty() && want.mac != l.mac_string() {
            return Err(CniError::internal(format!(
                "Interface {} Mac {} doesn't match container Mac: {}",
                l.name,
                want.mac,
                l.mac_string()
            )));
        }
        veth::check_ips_and_routes(&mut cont, &args.ifname, l.index, &prev)
    }

    fn status(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(args)?;
        if tun_missing() {
            return Err(CniError::new(code::PLUGIN_NOT_AVAILABLE, format!("{TUN_DEVICE} is missing: no TUN/TAP support (CONFIG_TUN)")));
        }
        match &s.ipam {
            Some(t) => delegate::status(t, args),
            None => Ok(()),
        }
    }
}

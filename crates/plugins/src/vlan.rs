//! vlan: the container gets an 802.1Q VLAN link on a master interface.
//!
//! Keys (as the reference): `master` (required), `vlanId` (0–4094), `mtu` (0 to the master's),
//! `linkInContainer` (the master is in the container's namespace), `ipam` (required), `dns`.
//! ADD: the VLAN link is made straight into the container's namespace as `veth<random>`,
//! renamed to `ifname`; addresses and routes. Result: one interface, the container's. Any
//! failure undoes this ADD. A kernel without 802.1Q (this repository's test kernel has none)
//! fails the ADD with "the kernel has no vlan support (module 8021q)".
//! DEL: IPAM DEL, then the link; unlike the reference's, it needs neither the master nor a
//! valid `vlanId` (only the name and `ipam.type` are read). CHECK: IPAM CHECK, the master, the
//! link's kind, VLAN ID, MAC, addresses, routes. STATUS: IPAM STATUS, code 50 when the kernel
//! has no VLAN links. GC (with `cni.dev/valid-attachments`): IPAM GC.

use crate::common::link::{self as clink, NewLink, Sockets};
use crate::common::{self, Rollback};
use crate::delegate;
use cni_plugin::{CmdArgs, Plugin};
use cni_types::result::Result100;
use cni_types::{CniError, CniResult, NetConf};
use netkit::netlink::LinkKind;
use serde::Deserialize;

pub struct Vlan;

#[derive(Debug, Deserialize)]
struct Conf {
    #[serde(flatten)]
    net: NetConf,
    #[serde(default)]
    master: String,
    #[serde(rename = "vlanId", default)]
    vlan_id: i64,
    #[serde(default)]
    mtu: i64,
    #[serde(rename = "linkInContainer", default)]
    link_in_container: bool,
}

struct Setup {
    c: Conf,
    id: u16,
    ipam: String,
}

fn load(args: &CmdArgs) -> Result<Setup, CniError> {
    let c: Conf = args.conf()?;
    if c.master.is_empty() {
        return Err(CniError::invalid_config("\"master\" field is required. It specifies the host interface name to create the VLAN for"));
    }
    if !(0..=4094).contains(&c.vlan_id) {
        return Err(CniError::invalid_config(format!("invalid VLAN ID {} (must be between 0 and 4095 inclusive)", c.vlan_id)));
    }
    if c.mtu < 0 {
        return Err(CniError::invalid_config(format!("invalid MTU {}, must be [0, master MTU]", c.mtu)));
    }
    let ipam = common::ipam_type(&c.net).ok_or_else(|| CniError::invalid_config("vlan needs an \"ipam\" section with a \"type\""))?;
    let id = c.vlan_id as u16;
    Ok(Setup { c, id, ipam })
}

fn add(args: &CmdArgs, s: &Setup) -> Result<Result100, CniError> {
    let mut socks = Sockets::open(args)?;
    let master = clink::master(&mut socks.host, &mut socks.cont, Some(&s.c.master), s.c.link_in_container)?;
    let mtu = clink::check_mtu(s.c.mtu, &master)?;
    let mut rb = Rollback::new();
    let (iface, _) = clink::create(
        &mut rb,
        &mut socks,
        args,
        NewLink {
            what: "vlan",
            kind: LinkKind::Vlan { id: s.id },
            master: Some(&master),
            in_container: s.c.link_in_container,
            mtu,
            mac: None,
            bc_queue_len: None,
        },
    )?;
    let r = clink::ipam_add(&mut rb, &s.ipam, args)?;
    let mut result = clink::configure(&mut socks, args, iface, r, false)?;
    result.dns = s.c.net.dns.clone();
    rb.commit();
    Ok(result)
}

impl Plugin for Vlan {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let s = load(args)?;
        Ok(add(args, &s)?.into())
    }

    fn del(&self, args: &CmdArgs) -> Result<(), CniError> {
        clink::del(args)
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(args)?;
        let mut socks = Sockets::open(args)?;
        delegate::check(&s.ipam, args)?;
        let (_, prev) = args.required_prev_result(&s.c.net, "vlan: Required prevResult missing")?;
        clink::master(&mut socks.host, &mut socks.cont, Some(&s.c.master), s.c.link_in_container)?;
        clink::check(&mut socks, args, "vlan", &prev, |l| match l.vlan_id {
            Some(id) if id != s.id => {
                Err(CniError::internal(format!("Error: Container interface {} has VLAN ID {id}, not {}", l.name, s.id)))
            }
            _ => Ok(()),
        })
    }

    fn status(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(args)?;
        clink::status(args, Some(&s.ipam), &LinkKind::Vlan { id: s.id })
    }

    fn gc(&self, args: &CmdArgs) -> Result<(), CniError> {
        let c: Conf = args.conf()?;
        clink::gc(args, common::ipam_type(&c.net).as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(conf: &str) -> Result<Setup, CniError> {
        load(&CmdArgs { stdin: conf.as_bytes().to_vec(), ..Default::default() })
    }

    #[test]
    fn keys() {
        let s = load_str(r#"{"name":"n","master":"eth0","vlanId":4094,"ipam":{"type":"static"}}"#).ok().unwrap();
        assert_eq!((s.id, s.ipam.as_str(), s.c.link_in_container), (4094, "static", false));
        assert_eq!(load_str(r#"{"name":"n","master":"eth0","ipam":{"type":"static"}}"#).ok().unwrap().id, 0);
        let e = load_str(r#"{"name":"n","master":"eth0","vlanId":4095,"ipam":{"type":"static"}}"#).err().unwrap();
        assert_eq!((e.code, e.msg.as_str()), (7, "invalid VLAN ID 4095 (must be between 0 and 4095 inclusive)"));
        assert_eq!(load_str(r#"{"name":"n","master":"eth0","vlanId":-1,"ipam":{"type":"static"}}"#).err().unwrap().code, 7);
        let e = load_str(r#"{"name":"n","vlanId":5,"ipam":{"type":"static"}}"#).err().unwrap();
        assert!(e.msg.starts_with("\"master\" field is required"), "{e:?}");
        assert_eq!(load_str(r#"{"name":"n","master":"eth0","vlanId":5}"#).err().unwrap().code, 7);
        assert_eq!(load_str(r#"{"name":"n","master":"eth0","vlanId":"5","ipam":{"type":"static"}}"#).err().unwrap().code, 6);
    }
}

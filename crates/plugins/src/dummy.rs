//! dummy: the container gets a dummy link (no wire; addresses only).
//!
//! Keys (as the reference): `ipam` (required). ADD: the dummy link is made inside the
//! container's namespace as `ifname`, then the addresses and routes. Result: one interface, the
//! container's (IPAM's dns kept, as the reference). Any failure undoes this ADD. A kernel
//! without dummy links (this repository's test kernel has none) fails the ADD with "the kernel
//! has no dummy support (module dummy)".
//! DEL: IPAM DEL, then the link. CHECK: IPAM CHECK, the link's kind, MAC, addresses, routes.
//! STATUS: IPAM STATUS, code 50 when the kernel has no dummy links. GC (with
//! `cni.dev/valid-attachments`): IPAM GC.

use crate::common::link::{self as clink, NewLink, Sockets};
use crate::common::{self, Rollback};
use crate::delegate;
use cni_plugin::{CmdArgs, Plugin};
use cni_types::result::Result100;
use cni_types::{CniError, CniResult, NetConf};
use netkit::netlink::LinkKind;

pub struct Dummy;

fn load(args: &CmdArgs) -> Result<(NetConf, String), CniError> {
    let c = args.net_conf()?;
    let ipam = common::ipam_type(&c).ok_or_else(|| CniError::invalid_config("dummy interface requires an IPAM configuration"))?;
    Ok((c, ipam))
}

fn add(args: &CmdArgs, ipam: &str) -> Result<Result100, CniError> {
    let mut socks = Sockets::open(args)?;
    let mut rb = Rollback::new();
    let new = NewLink { what: "dummy", kind: LinkKind::Dummy, master: None, in_container: true, mtu: None, mac: None, bc_queue_len: None };
    let (iface, _) = clink::create(&mut rb, &mut socks, args, new)?;
    let r = clink::ipam_add(&mut rb, ipam, args)?;
    let result = clink::configure(&mut socks, args, iface, r, false)?;
    rb.commit();
    Ok(result)
}

impl Plugin for Dummy {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let (_, ipam) = load(args)?;
        Ok(add(args, &ipam)?.into())
    }

    fn del(&self, args: &CmdArgs) -> Result<(), CniError> {
        clink::del(args)
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let (c, ipam) = load(args)?;
        let mut socks = Sockets::open(args)?;
        delegate::check(&ipam, args)?;
        let (_, prev) = args.required_prev_result(&c, "dummy: Required prevResult missing")?;
        clink::check(&mut socks, args, "dummy", &prev, |_| Ok(()))
    }

    fn status(&self, args: &CmdArgs) -> Result<(), CniError> {
        let (_, ipam) = load(args)?;
        clink::status(args, Some(&ipam), &LinkKind::Dummy)
    }

    fn gc(&self, args: &CmdArgs) -> Result<(), CniError> {
        let c = args.net_conf()?;
        clink::gc(args, common::ipam_type(&c).as_deref())
    }
}

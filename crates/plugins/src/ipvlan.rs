//! ipvlan: the container gets an ipvlan link on a master interface (the master's MAC, its own
//! addresses).
//!
//! Keys (as the reference): `master` (default: the interface of the first default route, in the
//! container with `linkInContainer`; chained after another plugin without `master`: prevResult's
//! single interface), `mode` (`l2`, the default, `l3`, `l3s`), `mtu`, `linkInContainer`, `ipam`
//! (chained without `ipam`: prevResult's addresses), `dns`.
//! ADD: the ipvlan is made straight into the container's namespace as `veth<random>`, renamed
//! to `ifname`; `arp_notify`, `ndisc_notify`, addresses and routes. Result: one interface, the
//! container's. Any failure undoes this ADD. A kernel without ipvlan (this repository's test
//! kernel has none) fails the ADD with "the kernel has no ipvlan support (module ipvlan)".
//! DEL: IPAM DEL, then the link (the master is not looked up again). CHECK: IPAM CHECK, the
//! master, the link's kind, mode, MAC, addresses, routes. STATUS: IPAM STATUS, code 50 when the
//! kernel has no ipvlan. GC (with `cni.dev/valid-attachments`): IPAM GC.

use crate::common::link::{self as clink, NewLink, Sockets};
use crate::common::{self, Rollback};
use crate::delegate;
use cni_plugin::{CmdArgs, Plugin};
use cni_types::result::Result100;
use cni_types::{CniError, CniResult, NetConf};
use netkit::netlink::{IpvlanMode, LinkKind};
use serde::Deserialize;

pub struct Ipvlan;

#[derive(Debug, Deserialize)]
struct Conf {
    #[serde(flatten)]
    net: NetConf,
    #[serde(default)]
    master: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    mtu: i64,
    #[serde(rename = "linkInContainer", default)]
    link_in_container: bool,
}

struct Setup {
    c: Conf,
    mode: IpvlanMode,
    ipam: Option<String>,
    /// prevResult, when chained.
    prev: Option<Result100>,
    /// The master's name, when the config or prevResult gives one (else the default route's).
    master: Option<String>,
}

fn mode(s: &str) -> Result<IpvlanMode, CniError> {
    match s {
        "" | "l2" => Ok(IpvlanMode::L2),
        "l3" => Ok(IpvlanMode::L3),
        "l3s" => Ok(IpvlanMode::L3s),
        other => Err(CniError::invalid_config(format!("unknown ipvlan mode: {other:?}"))),
    }
}

fn mode_name(m: IpvlanMode) -> &'static str {
    match m {
        IpvlanMode::L2 => "l2",
        IpvlanMode::L3 => "l3",
        IpvlanMode::L3s => "l3s",
    }
}

fn load(args: &CmdArgs) -> Result<Setup, CniError> {
    let c: Conf = args.conf()?;
    let mode = mode(&c.mode)?;
    common::mtu(c.mtu)?;
    let prev = match args.prev_result(&c.net)? {
        Some(p) => Some(p.to_current().map_err(|e| CniError::decoding(format!("could not convert result to current version: {e}")))?),
        None => None,
    };
    let master = match (c.master.as_str(), &prev) {
        ("", None) => None,
        ("", Some(p)) => match p.interfaces.as_slice() {
            [only] if !only.name.is_empty() => Some(only.name.clone()),
            _ => return Err(CniError::invalid_config("chained master failure. PrevResult lacks a single named interface")),
        },
        (m, _) => Some(m.to_string()),
    };
    let ipam = common::ipam_type(&c.net);
    if ipam.is_none() && prev.as_ref().is_none_or(|p| p.ips.is_empty()) {
        return Err(CniError::invalid_config("ipvlan needs an \"ipam\" section, or a prevResult with addresses"));
    }
    Ok(Setup { c, mode, ipam, prev, master })
}

fn add(args: &CmdArgs, s: &Setup) -> Result<Result100, CniError> {
    let mut socks = Sockets::open(args)?;
    let master = clink::master(&mut socks.host, &mut socks.cont, s.master.as_deref(), s.c.link_in_container)?;
    let mtu = common::mtu(s.c.mtu)?;
    let mut rb = Rollback::new();
    let (iface, _) = clink::create(
        &mut rb,
        &mut socks,
        args,
        NewLink {
            what: "ipvlan",
            kind: LinkKind::Ipvlan { mode: s.mode },
            master: Some(&master),
            in_container: s.c.link_in_container,
            mtu,
            mac: None,
            bc_queue_len: None,
        },
    )?;
    let ips = match (&s.ipam, &s.prev) {
        (Some(t), _) => clink::ipam_add(&mut rb, t, args)?,
        (None, Some(p)) => p.clone(),
        (None, None) => unreachable!("load refuses a config with neither"),
    };
    let mut result = clink::configure(&mut socks, args, iface, ips, true)?;
    result.dns = s.c.net.dns.clone();
    rb.commit();
    Ok(result)
}

impl Plugin for Ipvlan {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let s = load(args)?;
        Ok(add(args, &s)?.into())
    }

    fn del(&self, args: &CmdArgs) -> Result<(), CniError> {
        clink::del(args)
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        // (prevResult is this plugin's own result here: it names no master)
        let c: Conf = args.conf()?;
        let want = mode(&c.mode)?;
        common::mtu(c.mtu)?;
        if common::ipam_type(&c.net).is_none() && args.prev_result_hint(&c.net).is_none_or(|p| p.ips.is_empty()) {
            return Err(CniError::invalid_config("ipvlan needs an \"ipam\" section, or a prevResult with addresses"));
        }
        let mut socks = Sockets::open(args)?;
        if let Some(t) = common::ipam_type(&c.net) {
            delegate::check(&t, args)?;
        }
        let (_, prev) = args.required_prev_result(&c.net, "Required prevResult missing")?;
        let name = Some(c.master.as_str()).filter(|m| !m.is_empty());
        clink::master(&mut socks.host, &mut socks.cont, name, c.link_in_container)?;
        clink::check(&mut socks, args, "ipvlan", &prev, |l| match l.ipvlan_mode {
            Some(m) if m != want => Err(CniError::internal(format!(
                "container ipvlan mode {} does not match expected value: {}",
                mode_name(m),
                mode_name(want)
            ))),
            _ => Ok(()),
        })
    }

    fn status(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(args)?;
        clink::status(args, s.ipam.as_deref(), &LinkKind::Ipvlan { mode: s.mode })
    }

    fn gc(&self, args: &CmdArgs) -> Result<(), CniError> {
        let c: Conf = args.conf()?;
        clink::gc(args, common::ipam_type(&c.net).as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(conf: &str) -> CmdArgs {
        CmdArgs { stdin: conf.as_bytes().to_vec(), ..Default::default() }
    }

    #[test]
    fn modes_master_and_chaining() {
        let ipam = r#""ipam":{"type":"host-local"}"#;
        let s = load(&args(&format!(r#"{{"cniVersion":"1.0.0","name":"n",{ipam}}}"#))).unwrap();
        assert_eq!((s.mode, s.master.as_deref()), (IpvlanMode::L2, None));
        for (m, want) in [("l3", IpvlanMode::L3), ("l3s", IpvlanMode::L3s)] {
            assert_eq!(load(&args(&format!(r#"{{"name":"n","mode":"{m}",{ipam}}}"#))).unwrap().mode, want);
            assert_eq!(mode_name(want), m);
        }
        let e = load(&args(&format!(r#"{{"name":"n","mode":"bridge",{ipam}}}"#))).err().unwrap();
        assert_eq!((e.code, e.msg.as_str()), (7, r#"unknown ipvlan mode: "bridge""#));
        // chained: prevResult's single interface is the master, its addresses are used
        let prev = r#""prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"net1"}],"ips":[{"address":"10.1.2.3/24"}]}"#;
        let s = load(&args(&format!(r#"{{"cniVersion":"1.0.0","name":"n",{prev}}}"#))).unwrap();
        assert_eq!(s.master.as_deref(), Some("net1"));
        assert!(s.ipam.is_none() && s.prev.unwrap().ips.len() == 1);
        let two = r#""prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"a"},{"name":"b"}],"ips":[{"address":"10.1.2.3/24"}]}"#;
        let e = load(&args(&format!(r#"{{"cniVersion":"1.0.0","name":"n",{two}}}"#))).err().unwrap();
        assert!(e.msg.contains("PrevResult lacks a single named interface"), "{e:?}");
        // the master key wins over prevResult
        let s = load(&args(&format!(r#"{{"cniVersion":"1.0.0","name":"n","master":"eth9",{prev}}}"#))).unwrap();
        assert_eq!(s.master.as_deref(), Some("eth9"));
        // neither ipam nor prevResult addresses
        assert_eq!(load(&args(r#"{"name":"n"}"#)).err().unwrap().code, 7);
    }
}

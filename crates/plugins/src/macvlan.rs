//! macvlan: the container gets a macvlan link on a master interface (its own MAC on the
//! master's wire).
//!
//! Keys (as the reference): `master` (default: the interface of the first default route; in the
//! container's namespace with `linkInContainer`), `mode` (`bridge`, the default, `private`,
//! `vepa`, `passthru`), `mtu` (0 to the master's), `mac` (also `CNI_ARGS` `MAC=` and
//! `runtimeConfig.mac`, capability `mac`; the later wins), `bcqueuelen`, `linkInContainer`,
//! `ipam` (optional: without it the link only comes up), `dns`.
//! ADD: the macvlan is made straight into the container's namespace as `veth<random>`, renamed
//! to `ifname`; with IPAM, `arp_notify` and `ndisc_notify`, then the addresses and routes.
//! Result: one interface, the container's (`ips` on interface 0). Any failure undoes this ADD.
//! DEL: IPAM DEL, then the link (gone with its master or namespace is fine; only the name and
//! `ipam.type` are read). CHECK: IPAM CHECK, the master, the link's kind, mode, MAC, addresses,
//! routes. STATUS: IPAM STATUS, code 50 when the kernel has no macvlan. GC (with
//! `cni.dev/valid-attachments`): IPAM GC.

use crate::common::link::{self as clink, NewLink, Sockets};
use crate::common::{self, Rollback};
use crate::delegate;
use cni_plugin::{CmdArgs, Plugin};
use cni_types::result::Result100;
use cni_types::{CniError, CniResult, NetConf};
use netkit::netlink::{parse_mac, LinkKind, MacvlanMode};
use serde::Deserialize;

pub struct Macvlan;

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
    #[serde(default)]
    mac: String,
    #[serde(rename = "linkInContainer", default)]
    link_in_container: bool,
    #[serde(default)]
    bcqueuelen: Option<u32>,
}

struct Setup {
    c: Conf,
    mode: MacvlanMode,
    mac: Option<[u8; 6]>,
    ipam: Option<String>,
}

fn mode(s: &str) -> Result<MacvlanMode, CniError> {
    match s {
        "" | "bridge" => Ok(MacvlanMode::Bridge),
        "private" => Ok(MacvlanMode::Private),
        "vepa" => Ok(MacvlanMode::Vepa),
        "passthru" => Ok(MacvlanMode::Passthru),
        other => Err(CniError::invalid_config(format!("unknown macvlan mode: {other:?}"))),
    }
}

fn mode_name(m: MacvlanMode) -> &'static str {
    match m {
        MacvlanMode::Bridge => "bridge",
        MacvlanMode::Private => "private",
        MacvlanMode::Vepa => "vepa",
        MacvlanMode::Passthru => "passthru",
    }
}

/// The config, without the kernel (master and MTU are checked once the namespaces are open).
fn load(args: &CmdArgs) -> Result<Setup, CniError> {
    let c: Conf = args.conf()?;
    let mode = mode(&c.mode)?;
    if c.mtu < 0 {
        return Err(CniError::invalid_config(format!("invalid MTU {}, must be [0, master MTU]", c.mtu)));
    }
    let mac = match common::requested_mac(&c.mac, args, &c.net)? {
        Some(m) => Some(parse_mac(&m).ok_or_else(|| CniError::invalid_config(format!("invalid args {m} for MAC addr")))?),
        None => None,
    };
    let ipam = common::ipam_type(&c.net);
    Ok(Setup { c, mode, mac, ipam })
}

fn master_name(c: &Conf) -> Option<&str> {
    Some(c.master.as_str()).filter(|m| !m.is_empty())
}

fn add(args: &CmdArgs, s: &Setup) -> Result<Result100, CniError> {
    let mut socks = Sockets::open(args)?;
    let master = clink::master(&mut socks.host, &mut socks.cont, master_name(&s.c), s.c.link_in_container)?;
    let mtu = clink::check_mtu(s.c.mtu, &master)?;
    let mut rb = Rollback::new();
    let (iface, index) = clink::create(
        &mut rb,
        &mut socks,
        args,
        NewLink {
            what: "macvlan",
            kind: LinkKind::Macvlan { mode: s.mode },
            master: Some(&master),
            in_container: s.c.link_in_container,
            mtu,
            mac: s.mac,
            bc_queue_len: s.c.bcqueuelen,
        },
    )?;
    let mut result = match &s.ipam {
        Some(t) => {
            let r = clink::ipam_add(&mut rb, t, args)?;
            clink::configure(&mut socks, args, iface, r, true)?
        }
        None => {
            socks.cont.set_up(index, true).map_err(|e| CniError::internal(format!("failed to set {:?} UP: {e}", args.ifname)))?;
            Result100 { cni_version: cni_types::version::CURRENT.into(), interfaces: vec![iface], ..Default::default() }
        }
    };
    // the network's dns is the result's (as the reference)
    result.dns = s.c.net.dns.clone();
    rb.commit();
    Ok(result)
}

impl Plugin for Macvlan {
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
        let master = clink::master(&mut socks.host, &mut socks.cont, master_name(&s.c), s.c.link_in_container)?;
        clink::check_mtu(s.c.mtu, &master)?;
        if let Some(t) = &s.ipam {
            delegate::check(t, args)?;
        }
        let (_, prev) = args.required_prev_result(&s.c.net, "required prevResult missing")?;
        clink::check(&mut socks, args, "macvlan", &prev, |l| match l.macvlan_mode {
            Some(m) if m != s.mode => Err(CniError::internal(format!(
                "container macvlan mode {} does not match expected value: {}",
                mode_name(m),
                mode_name(s.mode)
            ))),
            _ => Ok(()),
        })
    }

    fn status(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(args)?;
        clink::status(args, s.ipam.as_deref(), &LinkKind::Macvlan { mode: s.mode })
    }

    fn gc(&self, args: &CmdArgs) -> Result<(), CniError> {
        let c: Conf = args.conf()?;
        clink::gc(args, common::ipam_type(&c.net).as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(conf: &str, cni_args: &str) -> CmdArgs {
        CmdArgs { stdin: conf.as_bytes().to_vec(), args: cni_args.into(), ..Default::default() }
    }

    #[test]
    fn keys_defaults_and_mac_sources() {
        let s = load(&args(r#"{"cniVersion":"1.0.0","name":"n","type":"macvlan"}"#, "")).unwrap();
        assert_eq!(s.mode, MacvlanMode::Bridge);
        assert!(s.mac.is_none() && s.ipam.is_none() && !s.c.link_in_container && s.c.bcqueuelen.is_none());
        for (m, want) in [("private", MacvlanMode::Private), ("vepa", MacvlanMode::Vepa), ("passthru", MacvlanMode::Passthru)] {
            let s = load(&args(&format!(r#"{{"name":"n","mode":"{m}"}}"#), "")).unwrap();
            assert_eq!(s.mode, want);
            assert_eq!(mode_name(want), m);
        }
        let e = load(&args(r#"{"name":"n","mode":"l2"}"#, "")).err().unwrap();
        assert_eq!((e.code, e.msg.as_str()), (7, r#"unknown macvlan mode: "l2""#));
        // key < CNI_ARGS < runtimeConfig
        let conf = r#"{"name":"n","mac":"02:00:00:00:00:01","runtimeConfig":{"mac":"02:00:00:00:00:03"}}"#;
        assert_eq!(load(&args(conf, "MAC=02:00:00:00:00:02")).unwrap().mac, Some([2, 0, 0, 0, 0, 3]));
        let conf = r#"{"name":"n","mac":"02:00:00:00:00:01"}"#;
        assert_eq!(load(&args(conf, "MAC=02:00:00:00:00:02")).unwrap().mac, Some([2, 0, 0, 0, 0, 2]));
        assert_eq!(load(&args(conf, "")).unwrap().mac, Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(load(&args(r#"{"name":"n","mac":"zz"}"#, "")).err().unwrap().code, 7);
        assert_eq!(load(&args(r#"{"name":"n","mtu":-1}"#, "")).err().unwrap().code, 7);
        assert_eq!(load(&args(r#"{"name":"n","bcqueuelen":-1}"#, "")).err().unwrap().code, 6);
    }
}

//! bandwidth: limits a container's traffic with token buckets (chained after the plugin that
//! made the container's veth).
//!
//! Keys (as the reference): `ingressRate`/`ingressBurst` (traffic to the container) and
//! `egressRate`/`egressBurst` (traffic from it), in bits per second and bits. Top-level keys win
//! over `runtimeConfig.bandwidth` (capability `bandwidth`). A rate needs its burst and the other
//! way round, and `burst/8` must stay below 2³². Without limits prevResult passes through and
//! nothing is touched.
//!
//! ADD (needs prevResult): the host interface is the host end of the veth whose container end is
//! `CNI_IFNAME`; prevResult must list it without a sandbox. Ingress: a tbf qdisc `1:` at the root
//! of the host veth. Egress: an IFB device `bwp` + SHA-512(network + container ID) cut to 15
//! characters, with the veth's MTU, txqueuelen 0, up, its alias the attachment's owner comment (for
//! a later GC) and a tbf `1:` at its root; then an ingress qdisc on the host veth whose u32 filter
//! (prio 1, every protocol, match-all, flowid 1:1) redirects every packet to the IFB's egress.
//! The tbf numbers are the reference's, computed the same way: rate/8 bytes per second; buffer =
//! the time to send burst/8 bytes at that rate, in psched ticks; limit = 25 ms at the rate plus
//! burst/8 bytes. The result is prevResult plus the IFB interface. A failing ADD removes what it
//! made. When another interface of the same container and network holds that IFB name (its alias
//! names another owner), the IFB is `bwp` + SHA-512(network + container ID + `/` + ifname) instead.
//! DEL: deletes the attachment's IFB — the one whose alias is its owner comment, or the
//! reference-named one without an rcni alias (the reference's own) — never another owner's (gone
//! is fine); the veth's qdiscs vanish with the veth.
//! CHECK: the tbf parameters on the host veth and the IFB.
//! GC: deletes the IFB devices whose alias is an owner comment of this network for an attachment
//! not in `cni.dev/valid-attachments` (nothing without the key); IFBs without such an alias
//! (the reference's) are left alone. Goes on past failures and reports them all.

use crate::common::Rollback;
use cni_plugin::{CmdArgs, Failures, Plugin};
use cni_types::capabilities::Bandwidth as Limits;
use cni_types::config::get_fold;
use cni_types::result::{Interface, Result100};
use cni_types::{CniError, CniResult, NetConf};
use netkit::iface::gc_owned_links;
use netkit::netlink::{psched_ticks_per_usec, tc_handle, Link, LinkKind, LinkSpec, Tbf, INGRESS_HANDLE, TC_H_INGRESS, TC_H_ROOT};
use netkit::owner::{hashed_name, valid_tags, Owner};
use netkit::Netlink;
use serde_json::{Map, Value};

pub struct Bandwidth;

/// Spec versions: from 0.3.0 on, like the reference.
pub const VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

const IFB_PREFIX: &str = "bwp";
const IFB_NAME_LEN: usize = 15;
const LATENCY_MS: f64 = 25.0;
const USEC_PER_SEC: f64 = 1_000_000.0;
const KEYS: [&str; 4] = ["ingressRate", "ingressBurst", "egressRate", "egressBurst"];

struct Conf {
    net: NetConf,
    limits: Option<Limits>,
}

/// The IFB device that carries an attachment's egress traffic (the reference's name).
pub fn ifb_name(network: &str, container_id: &str) -> String {
    hashed_name(IFB_PREFIX, &format!("{network}{container_id}"), IFB_NAME_LEN)
}

/// The IFB of a second interface of the container on the network, whose reference name the first
/// one holds.
fn ifb_name_of_interface(network: &str, container_id: &str, ifname: &str) -> String {
    hashed_name(IFB_PREFIX, &format!("{network}{container_id}/{ifname}"), IFB_NAME_LEN)
}

/// Whether an IFB's alias names an owner other than `owner` (then it is another attachment's).
fn held_by_other(l: &Link, owner: &Owner) -> bool {
    l.alias.as_deref().and_then(netkit::owner::parse_comment).is_some() && !owner.owns(l.alias.as_deref())
}

/// The attachment's IFB, if it has one: of its two possible names, the link that is an IFB and not
/// another owner's.
fn own_ifb(host: &mut Netlink, network: &str, container_id: &str, ifname: &str) -> Result<Option<Link>, CniError> {
    let owner = Owner::new(network, container_id, ifname);
    for name in [ifb_name(network, container_id), ifb_name_of_interface(network, container_id, ifname)] {
        match host.link_by_name(&name) {
            Ok(l) if l.kind.as_deref() == Some("ifb") && !held_by_other(&l, &owner) => return Ok(Some(l)),
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

fn load(args: &CmdArgs) -> Result<Conf, CniError> {
    let net = args.net_conf()?;
    let raw: Map<String, Value> = args.conf()?;
    // Go decodes the four keys into an embedded pointer that exists as soon as one key is there
    // (matched case-insensitively), and then wins over runtimeConfig whatever its values.
    let mut top = Map::new();
    for k in KEYS {
        if let Some(v) = get_fold(&raw, k) {
            top.insert(k.to_string(), v.clone());
        }
    }
    let limits = if top.is_empty() {
        net.runtime_config.bandwidth.clone()
    } else {
        Some(serde_json::from_value(Value::Object(top)).map_err(|e| CniError::decoding(format!("failed to load netconf: {e}")))?)
    };
    if let Some(l) = &limits {
        validate_rate_and_burst(l.ingress_rate, l.ingress_burst)?;
        validate_rate_and_burst(l.egress_rate, l.egress_burst)?;
    }
    Ok(Conf { net, limits })
}

fn validate_rate_and_burst(rate: u64, burst: u64) -> Result<(), CniError> {
    let msg = if burst == 0 && rate != 0 {
        "if rate is set, burst must also be set"
    } else if rate == 0 && burst != 0 {
        "if burst is set, rate must also be set"
    } else if burst / 8 >= u64::from(u32::MAX) {
        "burst cannot be more than 4GB"
    } else {
        return Ok(());
    };
    Err(CniError::invalid_config(msg))
}

/// The configured limits, unless there are none.
fn active(limits: &Option<Limits>) -> Option<&Limits> {
    limits.as_ref().filter(|l| l.ingress_rate != 0 || l.ingress_burst != 0 || l.egress_rate != 0 || l.egress_burst != 0)
}

/// `uint32(f)` as Go compiles it on amd64: through a signed 64-bit conversion (the "integer
/// indefinite" 1<<63 when out of range), then the low 32 bits.
fn go_u32(f: f64) -> u32 {
    const I64_RANGE: std::ops::Range<f64> = -9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0;
    if !I64_RANGE.contains(&f) {
        0 // also NaN
    } else {
        f as i64 as u32
    }
}

/// The reference's token bucket for `rate` bits/s and `burst` bits, with its float arithmetic
/// and conversions, so the kernel gets (and `tc` shows) the same numbers.
fn tbf(rate_bits: u64, burst_bits: u64, ticks_per_usec: f64) -> Tbf {
    let rate = rate_bits / 8;
    let burst = (burst_bits / 8) as u32;
    let usec = go_u32(f64::from(burst) * USEC_PER_SEC / rate as f64);
    let buffer = go_u32(f64::from(usec) * ticks_per_usec);
    let latency = USEC_PER_SEC * (LATENCY_MS / 1000.0);
    let limit = go_u32(rate as f64 * latency / USEC_PER_SEC).wrapping_add(burst);
    Tbf { rate, limit, buffer }
}

/// The host end of the container's veth, which prevResult must list as a host interface.
fn host_interface(args: &CmdArgs, result: &Result100, host: &mut Netlink) -> Result<Link, CniError> {
    if result.interfaces.is_empty() {
        return Err(CniError::invalid_config("no interfaces provided"));
    }
    let (_, mut cont) = crate::common::open_container(&args.netns)?;
    let (cont_index, peer) = cont
        .link_by_name(&args.ifname)
        .and_then(|l| Ok((l.index, l.veth_peer()?.0)))
        .map_err(|e| CniError::internal(format!("container interface {} has no veth peer: {e}", args.ifname)))?;
    let not_here = || CniError::internal(format!("veth peer with index {peer} is not in host ns"));
    let link = host.link_by_index(peer).map_err(|_| not_here())?;
    // the same index may belong to an unrelated link here: it must point back at the container
    if link.veth_peer().ok().map(|p| p.0) != Some(cont_index) {
        return Err(not_here());
    }
    if !result.interfaces.iter().any(|i| i.sandbox.is_empty() && i.name == link.name) {
        return Err(CniError::internal("no veth peer of container interface found in host ns"));
    }
    Ok(link)
}

/// ADD's shaping; a failure removes what it made (newest first).
fn shape(args: &CmdArgs, c: &Conf, limits: &Limits, mut result: Result100) -> Result<Result100, CniError> {
    let mut rb = Rollback::new();
    let mut host = Netlink::new()?;
    let ticks = psched_ticks_per_usec()?;
    let veth = host_interface(args, &result, &mut host)?;
    let v = veth.index;
    if limits.ingress_rate > 0 && limits.ingress_burst > 0 {
        let t = tbf(limits.ingress_rate, limits.ingress_burst, ticks);
        host.add_tbf(v, tc_handle(1, 0), TC_H_ROOT, &t).map_err(failed("create qdisc"))?;
        rb.push("the ingress bucket", move || Ok(Netlink::new()?.del_qdisc(v, tc_handle(1, 0), TC_H_ROOT)?));
    }
    if limits.egress_rate > 0 && limits.egress_burst > 0 {
        let owner = Owner::new(&c.net.name, &args.container_id, &args.ifname);
        let mut name = ifb_name(&c.net.name, &args.container_id);
        let spec = |name: &str| {
            let mut spec = LinkSpec::new(name, LinkKind::Ifb);
            spec.mtu = Some(veth.mtu);
            spec.txqlen = Some(0);
            spec.up = true;
            spec
        };
        match host.add_link(&spec(&name)) {
            Err(e) if e.is_exists() && host.link_by_name(&name).is_ok_and(|l| held_by_other(&l, &owner)) => {
                // another interface of this container on this network has the reference's name
                name = ifb_name_of_interface(&c.net.name, &args.container_id, &args.ifname);
                host.add_link(&spec(&name)).map_err(failed("adding link"))?;
            }
            r => r.map_err(failed("adding link"))?,
        }
        let ifb = host.link_by_name(&name).map_err(failed("get ifb device"))?;
        let i = ifb.index;
        rb.push("the IFB device", move || Ok(Netlink::new()?.del_link(i)?));
        host.set_alias(i, &owner.comment())?;
        // the bucket first, so no packet reaches the IFB unshaped
        let t = tbf(limits.egress_rate, limits.egress_burst, ticks);
        host.add_tbf(i, tc_handle(1, 0), TC_H_ROOT, &t).map_err(failed("create ifb qdisc: create qdisc"))?;
        host.add_ingress_qdisc(v).map_err(failed("create ingress qdisc"))?;
        rb.push("the ingress qdisc", move || Ok(Netlink::new()?.del_qdisc(v, INGRESS_HANDLE, TC_H_INGRESS)?));
        host.add_u32_redirect(v, INGRESS_HANDLE, 1, tc_handle(1, 1), i).map_err(failed("add filter"))?;
        result.interfaces.push(Interface::new(name, ifb.mac_string(), ""));
    }
    rb.commit();
    Ok(result)
}

fn prev_current(prev: &CniResult) -> Result<Result100, CniError> {
    prev.to_current().map_err(|e| CniError::decoding(format!("could not convert result to current version: {e}")))
}

/// A kernel failure, prefixed with what the reference says at that step.
fn failed(what: &'static str) -> impl Fn(netkit::Error) -> CniError {
    move |e| CniError::internal(format!("{what}: {e}"))
}

/// The root qdisc of link `index` must be a tbf with these numbers.
fn check_tbf(host: &mut Netlink, index: u32, want: &Tbf) -> Result<(), CniError> {
    let qdiscs = host.qdiscs(index)?;
    let Some(have) = qdiscs.iter().find(|q| q.parent == TC_H_ROOT).and_then(|q| q.tbf) else {
        return Err(CniError::internal("Failed to find qdisc"));
    };
    let mismatch = if have.rate != want.rate {
        "Rate doesn't match"
    } else if have.limit != want.limit {
        "Limit doesn't match"
    } else if have.buffer != want.buffer {
        "Buffer doesn't match"
    } else {
        return Ok(());
    };
    Err(CniError::internal(mismatch))
}

impl Plugin for Bandwidth {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let c = load(args)?;
        let prev = args.prev_result(&c.net)?.ok_or_else(|| CniError::invalid_config("must be called as chained plugin"))?;
        let Some(limits) = active(&c.limits) else {
            return Ok(prev);
        };
        Ok(shape(args, &c, limits, prev_current(&prev)?)?.into())
    }

    fn del(&self, args: &CmdArgs) -> Result<(), CniError> {
        // the limits do not matter to DEL (a config refused for them must still DEL)
        let c = crate::common::DelConf::read(args)?;
        let mut host = Netlink::new()?;
        // (a link of either name that is no IFB, or another owner's, was not made here)
        let Some(l) = own_ifb(&mut host, &c.name, &args.container_id, &args.ifname)? else { return Ok(()) };
        match host.del_link(l.index) {
            Err(e) if !e.is_not_found() => Err(e.into()),
            _ => Ok(()),
        }
    }

    fn gc(&self, args: &CmdArgs) -> Result<(), CniError> {
        let c: NetConf = args.net_conf()?;
        let Some(valid) = args.valid_attachments()? else { return Ok(()) };
        let mut host = Netlink::new()?;
        let (_, failed) = gc_owned_links(&mut host, "ifb", &c.name, &valid_tags(&c.name, &valid))?;
        let mut failures = Failures::new();
        for e in failed {
            failures.note::<(), _>("bandwidth GC", Err(e));
        }
        failures.finish()
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let c = load(args)?;
        let prev = args.prev_result(&c.net)?.ok_or_else(|| CniError::invalid_config("must be called as a chained plugin"))?;
        let result = prev_current(&prev)?;
        let mut host = Netlink::new()?;
        let veth = host_interface(args, &result, &mut host)?;
        let Some(limits) = active(&c.limits) else {
            return Ok(());
        };
        let ticks = psched_ticks_per_usec()?;
        if limits.ingress_rate > 0 && limits.ingress_burst > 0 {
            check_tbf(&mut host, veth.index, &tbf(limits.ingress_rate, limits.ingress_burst, ticks))?;
        }
        if limits.egress_rate > 0 && limits.egress_burst > 0 {
            let ifb = own_ifb(&mut host, &c.net.name, &args.container_id, &args.ifname)?
                .ok_or_else(|| CniError::internal(format!("get ifb device: {} not found", ifb_name(&c.net.name, &args.container_id))))?;
            check_tbf(&mut host, ifb.index, &tbf(limits.egress_rate, limits.egress_burst, ticks))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(conf: &str) -> CmdArgs {
        CmdArgs {
            command: "ADD".into(),
            container_id: "ctr1".into(),
            ifname: "eth0".into(),
            stdin: conf.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn versions_start_at_0_3_0() {
        assert_eq!(VERSIONS, cni_types::version::starting_from("0.3.0").as_slice());
    }

    #[test]
    fn ifb_names() {
        assert_eq!(ifb_name("mynet", "ctr1"), "bwp5145007e2a84");
        assert_eq!(ifb_name("mynet", "ctr2").len(), 15);
    }

    #[test]
    fn tbf_numbers_are_the_reference_ones() {
        // 8 Mbit/s, 800 kbit: what Debian's plugin sets (`tc`: rate 8Mbit burst 100000b lat 25ms)
        let t = tbf(8_000_000, 800_000, 1000.0 / 64.0);
        assert_eq!(t, Tbf { rate: 1_000_000, limit: 125_000, buffer: 1_562_500 });
        // a slow rate: 125 bytes/s, a 1000-byte bucket (8 s), 25 ms of queue = 3 whole bytes
        let t = tbf(1000, 8000, 1000.0 / 64.0);
        assert_eq!(t.rate, 125);
        assert_eq!(t.buffer, go_u32(8_000_000.0 * 15.625));
        assert_eq!(t.limit, 3 + 1000);
        // a rate past 32 bits
        assert_eq!(tbf(80_000_000_000, 8_000_000, 15.625).rate, 10_000_000_000);
        // Go's conversions: infinity and NaN give 0, large values keep their low 32 bits
        assert_eq!(go_u32(f64::INFINITY), 0);
        assert_eq!(go_u32(f64::NAN), 0);
        assert_eq!(go_u32(4_294_967_296.0 + 5.0), 5);
    }

    #[test]
    fn validation_as_the_reference() {
        let err = |c: &str| load(&args(c)).err().expect("rejected");
        let e = err(r#"{"cniVersion":"1.0.0","name":"n","type":"bandwidth","ingressRate":1000}"#);
        assert_eq!((e.code, e.msg.as_str()), (7, "if rate is set, burst must also be set"));
        let e = err(r#"{"cniVersion":"1.0.0","name":"n","type":"bandwidth","egressBurst":1000}"#);
        assert_eq!(e.msg, "if burst is set, rate must also be set");
        let e = err(r#"{"cniVersion":"1.0.0","name":"n","type":"bandwidth","egressRate":1,"egressBurst":34359738360}"#);
        assert_eq!(e.msg, "burst cannot be more than 4GB");
        let ok = load(&args(r#"{"cniVersion":"1.0.0","name":"n","type":"bandwidth","egressRate":1,"egressBurst":34359738359}"#));
        assert!(ok.is_ok());
        let e = err(r#"{"cniVersion":"1.0.0","name":"n","type":"bandwidth","ingressRate":-1}"#);
        assert_eq!(e.code, 6);
        let e = err(r#"{"cniVersion":"1.0.0","name":"n","type":"bandwidth","runtimeConfig":{"bandwidth":{"ingressBurst":5}}}"#);
        assert_eq!(e.msg, "if burst is set, rate must also be set");
    }

    #[test]
    fn top_level_wins_over_runtime_config() {
        let rc = r#""runtimeConfig":{"bandWidth":{"IngressRate":1000,"IngressBurst":2000}}"#;
        let c = load(&args(&format!(r#"{{"cniVersion":"1.0.0","name":"n","type":"bandwidth",{rc}}}"#))).unwrap();
        let l = c.limits.unwrap();
        assert_eq!((l.ingress_rate, l.ingress_burst), (1000, 2000));
        // one top-level key, even zero, replaces the runtime's limits entirely
        let c = load(&args(&format!(r#"{{"cniVersion":"1.0.0","name":"n","type":"bandwidth","egressrate":0,{rc}}}"#))).unwrap();
        assert!(active(&c.limits).is_none());
        let c = load(&args(r#"{"cniVersion":"1.0.0","name":"n","type":"bandwidth","egressRate":8,"egressBurst":16}"#)).unwrap();
        assert_eq!(c.limits.unwrap().egress_burst, 16);
        let c = load(&args(r#"{"cniVersion":"1.0.0","name":"n","type":"bandwidth"}"#)).unwrap();
        assert!(c.limits.is_none());
    }
}

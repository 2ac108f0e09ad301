//! Traffic control: token bucket (tbf) and ingress qdiscs, a match-all u32 filter whose action
//! redirects to another device (mirred), and listing qdiscs back — what traffic shaping with an
//! IFB device needs (`tc qdisc add … tbf`, `tc qdisc add … ingress`, `tc filter add … u32 match
//! u32 0 0 action mirred egress redirect dev …`).
//!
//! netlink-packet-route models u32, mirred and the ingress qdisc; tbf's options are emitted and
//! read as raw attributes (`struct tc_tbf_qopt` and `TCA_TBF_RATE64` from `linux/pkt_sched.h`).

use super::Netlink;
use crate::error::{Error, Result};
use netlink_packet_core::{DefaultNla, Nla, NlasIterator, NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::tc::{
    TcAction, TcActionAttribute, TcActionGeneric, TcActionMirrorOption, TcActionOption, TcActionType, TcAttribute, TcFilterU32Option,
    TcHandle, TcHeader, TcMessage, TcMirror, TcMirrorActionType, TcOption, TcU32Key, TcU32Selector, TcU32SelectorFlags,
};
use netlink_packet_route::RouteNetlinkMessage;

/// `TC_H_ROOT`: the parent of a device's root qdisc.
pub const TC_H_ROOT: u32 = 0xFFFF_FFFF;
/// `TC_H_INGRESS`: the parent of a device's ingress qdisc.
pub const TC_H_INGRESS: u32 = 0xFFFF_FFF1;
/// `ffff:`, the handle an ingress qdisc always has.
pub const INGRESS_HANDLE: u32 = 0xFFFF_0000;
/// `ETH_P_ALL`: a filter for every protocol.
pub const ETH_P_ALL: u16 = 0x0003;

const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RATE64: u16 = 4;
/// `sizeof(struct tc_tbf_qopt)`: two 12-byte `tc_ratespec`s, then limit, buffer, mtu.
const TBF_QOPT_LEN: usize = 36;

/// `major:minor` as one number (`TC_H_MAKE`).
pub const fn tc_handle(major: u16, minor: u16) -> u32 {
    ((major as u32) << 16) | minor as u32
}

/// Token bucket parameters in the kernel's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tbf {
    /// Bytes per second.
    pub rate: u64,
    /// Bytes that may wait in the queue.
    pub limit: u32,
    /// Bucket size as the time to send it at `rate`, in psched ticks.
    pub buffer: u32,
}

impl Tbf {
    /// `struct tc_tbf_qopt` for these parameters: only the rate (its low 32 bits; the full value
    /// goes in `TCA_TBF_RATE64`), limit and buffer are set; no peak rate, no MTU, link layer
    /// unspecified (as Go's vishvananda/netlink sends it).
    fn qopt(&self) -> [u8; TBF_QOPT_LEN] {
        let mut b = [0u8; TBF_QOPT_LEN];
        b[8..12].copy_from_slice(&(self.rate as u32).to_ne_bytes());
        b[24..28].copy_from_slice(&self.limit.to_ne_bytes());
        b[28..32].copy_from_slice(&self.buffer.to_ne_bytes());
        b
    }

    fn options(&self) -> Vec<TcOption> {
        let mut opts = vec![TcOption::Other(DefaultNla::new(TCA_TBF_PARMS, self.qopt().to_vec()))];
        if self.rate >= 1 << 32 {
            opts.push(TcOption::Other(DefaultNla::new(TCA_TBF_RATE64, self.rate.to_ne_bytes().to_vec())));
        }
        opts
    }

    /// Reads the parameters back from a tbf qdisc's `TCA_OPTIONS` payload.
    fn parse(options: &[u8]) -> Option<Tbf> {
        let mut tbf = None;
        let mut rate64 = None;
        for nla in NlasIterator::new(options) {
            let nla = nla.ok()?;
            let v = nla.value();
            match nla.kind() & 0x3fff {
                TCA_TBF_PARMS if v.len() >= TBF_QOPT_LEN => {
                    let u32_at = |o: usize| u32::from_ne_bytes([v[o], v[o + 1], v[o + 2], v[o + 3]]);
                    tbf = Some(Tbf { rate: u64::from(u32_at(8)), limit: u32_at(24), buffer: u32_at(28) });
                }
                TCA_TBF_RATE64 if v.len() >= 8 => {
                    rate64 = Some(u64::from_ne_bytes(v[..8].try_into().expect("8 bytes")));
                }
                _ => {}
            }
        }
        let mut tbf = tbf?;
        if let Some(r) = rate64 {
            tbf.rate = r;
        }
        Some(tbf)
    }
}

/// A qdisc as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qdisc {
    pub ifindex: u32,
    pub handle: u32,
    pub parent: u32,
    /// `tbf`, `ingress`, `noqueue`, `pfifo_fast`, …
    pub kind: String,
    /// For tbf: its parameters.
    pub tbf: Option<Tbf>,
}

/// The scheduler clock as `/proc/net/psched` describes it: psched ticks per microsecond, computed
/// the way iproute2 (`tc_core_init`) and Go's vishvananda/netlink do, so that times converted
/// with it give the same tick counts as theirs.
pub fn psched_ticks_per_usec() -> Result<f64> {
    let op = "reading /proc/net/psched";
    let text = std::fs::read_to_string("/proc/net/psched").map_err(|e| Error::io(op, e))?;
    let mut vals = [0u64; 4];
    let mut parts = text.split_whitespace();
    for v in &mut vals {
        let p = parts.next().ok_or_else(|| Error::msg(op, format!("unexpected contents {text:?}")))?;
        *v = u64::from_str_radix(p, 16).map_err(|_| Error::msg(op, format!("unexpected contents {text:?}")))?;
    }
    let [mut t2us, us2t, clock_res, _] = vals;
    if us2t == 0 {
        return Err(Error::msg(op, format!("unexpected contents {text:?}")));
    }
    // old kernels with a nanosecond clock report it this way
    if clock_res == 1_000_000_000 {
        t2us = us2t;
    }
    let clock_factor = clock_res as f64 / 1_000_000.0;
    Ok(t2us as f64 / us2t as f64 * clock_factor)
}

fn header(ifindex: u32, handle: u32, parent: u32, info: u32) -> TcHeader {
    TcHeader { index: ifindex as i32, handle: TcHandle::from(handle), parent: TcHandle::from(parent), info, ..Default::default() }
}

/// RTM_NEWQDISC for a tbf qdisc.
pub fn tbf_message(ifindex: u32, handle: u32, parent: u32, tbf: &Tbf) -> TcMessage {
    TcMessage::from_parts(header(ifindex, handle, parent, 0), vec![TcAttribute::Kind("tbf".into()), TcAttribute::Options(tbf.options())])
}

/// RTM_NEWQDISC for the ingress qdisc (`ffff:`).
pub fn ingress_message(ifindex: u32) -> TcMessage {
    TcMessage::from_parts(
        header(ifindex, INGRESS_HANDLE, TC_H_INGRESS, 0),
        vec![TcAttribute::Kind("ingress".into()), TcAttribute::Options(vec![])],
    )
}

/// RTM_NEWTFILTER for a u32 filter matching every packet of every protocol (one all-zero key,
/// terminal), classifying it as `classid` and redirecting it to the egress of device `target`
/// (mirred, verdict stolen).
pub fn u32_redirect_message(ifindex: u32, parent: u32, prio: u16, classid: u32, target: u32) -> TcMessage {
    let mut sel = TcU32Selector::default();
    sel.flags = TcU32SelectorFlags::Terminal;
    sel.nkeys = 1;
    sel.keys = vec![TcU32Key::default()];
    let mut generic = TcActionGeneric::default();
    generic.action = TcActionType::Stolen;
    let mut mirror = TcMirror::default();
    mirror.generic = generic;
    mirror.eaction = TcMirrorActionType::EgressRedir;
    mirror.ifindex = target;
    let mut action = TcAction::default();
    action.attributes = vec![
        TcActionAttribute::Kind("mirred".into()),
        TcActionAttribute::Options(vec![TcActionOption::Mirror(TcActionMirrorOption::Parms(mirror))]),
    ];
    // tcm_info: priority in the upper half, the protocol (network byte order) in the lower
    let info = (u32::from(prio) << 16) | u32::from(ETH_P_ALL.to_be());
    TcMessage::from_parts(
        header(ifindex, 0, parent, info),
        vec![
            TcAttribute::Kind("u32".into()),
            TcAttribute::Options(vec![
                TcOption::U32(TcFilterU32Option::Selector(sel)),
                TcOption::U32(TcFilterU32Option::ClassId(TcHandle::from(classid))),
                TcOption::U32(TcFilterU32Option::Action(vec![action])),
            ]),
        ],
    )
}

/// Adds the kernel's "not supported" hint for tc objects this kernel lacks.
fn hint(e: Error, what: &str) -> Error {
    match e {
        Error::Os { op, errno, detail: None } if errno == libc::EOPNOTSUPP => {
            Error::Os { op, errno, detail: Some(format!("is {what} built into this kernel?")) }
        }
        e => e,
    }
}

impl Netlink {
    /// Adds a tbf qdisc (`handle`, under `parent`, e.g. [`TC_H_ROOT`]); one already there with
    /// that handle is an error (EEXIST).
    pub fn add_tbf(&mut self, ifindex: u32, handle: u32, parent: u32, tbf: &Tbf) -> Result<()> {
        let msg = RouteNetlinkMessage::NewQueueDiscipline(tbf_message(ifindex, handle, parent, tbf));
        self.request(msg, NLM_F_CREATE | NLM_F_EXCL, &|| format!("adding a tbf qdisc to link #{ifindex}")).map_err(|e| hint(e, "sch_tbf"))
    }

    /// Adds the ingress qdisc (`ffff:`).
    pub fn add_ingress_qdisc(&mut self, ifindex: u32) -> Result<()> {
        let msg = RouteNetlinkMessage::NewQueueDiscipline(ingress_message(ifindex));
        self.request(msg, NLM_F_CREATE | NLM_F_EXCL, &|| format!("adding the ingress qdisc to link #{ifindex}"))
            .map_err(|e| hint(e, "sch_ingress"))
    }

    /// Deletes a qdisc (with its filters and classes); a root qdisc falls back to the default.
    pub fn del_qdisc(&mut self, ifindex: u32, handle: u32, parent: u32) -> Result<()> {
        let msg = TcMessage::from_parts(header(ifindex, handle, parent, 0), vec![]);
        self.request(RouteNetlinkMessage::DelQueueDiscipline(msg), 0, &|| {
            format!("deleting qdisc {:x}: (parent {parent:x}) of link #{ifindex}", handle >> 16)
        })
    }

    /// Adds a u32 filter under qdisc `parent` that sends every packet to the egress of link
    /// `target` (see [`u32_redirect_message`]).
    pub fn add_u32_redirect(&mut self, ifindex: u32, parent: u32, prio: u16, classid: u32, target: u32) -> Result<()> {
        let msg = RouteNetlinkMessage::NewTrafficFilter(u32_redirect_message(ifindex, parent, prio, classid, target));
        self.request(msg, NLM_F_CREATE | NLM_F_EXCL, &|| format!("adding a redirect filter from link #{ifindex} to link #{target}"))
            .map_err(|e| hint(e, "cls_u32 or act_mirred"))
    }

    /// The qdiscs of one link, root first (as the kernel lists them).
    pub fn qdiscs(&mut self, ifindex: u32) -> Result<Vec<Qdisc>> {
        let make = || RouteNetlinkMessage::GetQueueDiscipline(TcMessage::with_index(ifindex as i32));
        let msgs = self.dump(&make, &|| format!("listing the qdiscs of link #{ifindex}"))?;
        let mut out = Vec::new();
        for m in msgs {
            let RouteNetlinkMessage::NewQueueDiscipline(m) = m else { continue };
            if m.header.index != ifindex as i32 {
                continue;
            }
            let mut q = Qdisc { ifindex, handle: m.header.handle.into(), parent: m.header.parent.into(), kind: String::new(), tbf: None };
            for a in &m.attributes {
                match a {
                    TcAttribute::Kind(k) => q.kind = k.clone(),
                    TcAttribute::Options(opts) if q.kind == "tbf" => {
                        // an unmodelled kind's TCA_OPTIONS arrives whole, as one raw attribute
                        if let Some(TcOption::Other(raw)) = opts.first() {
                            let mut buf = vec![0u8; raw.value_len()];
                            raw.emit_value(&mut buf);
                            q.tbf = Tbf::parse(&buf);
                        }
                    }
                    _ => {}
                }
            }
            out.push(q);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::wire::{contains, emitted as bytes};
    use netlink_packet_core::Parseable;

    #[test]
    fn tbf_options_layout_and_round_trip() {
        let tbf = Tbf { rate: 1_000_000, limit: 125_000, buffer: 1_562_500 };
        let b = bytes(&tbf_message(7, tc_handle(1, 0), TC_H_ROOT, &tbf));
        // tcmsg: family 0, ifindex 7, handle 1:0, parent ffff:ffff
        assert_eq!(&b[..20], &[0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(contains(&b, b"tbf\0"));
        // TCA_OPTIONS { TCA_TBF_PARMS (len 40) }, and no RATE64 for a rate below 2^32
        let mut parms = vec![40, 0, 1, 0];
        parms.extend_from_slice(&tbf.qopt());
        assert!(contains(&b, &parms));
        assert_eq!(&tbf.qopt()[8..12], &1_000_000u32.to_ne_bytes());
        assert_eq!(Tbf::parse(&b[b.len() - 40..]), Some(tbf));
        assert!(!contains(&b, &[12, 0, TCA_TBF_RATE64 as u8, 0]));

        let fast = Tbf { rate: 5_000_000_000, limit: 1, buffer: 2 };
        let b = bytes(&tbf_message(7, tc_handle(1, 0), TC_H_ROOT, &fast));
        let mut r64 = vec![12, 0, TCA_TBF_RATE64 as u8, 0];
        r64.extend_from_slice(&5_000_000_000u64.to_ne_bytes());
        assert!(contains(&b, &r64));
        assert_eq!(&fast.qopt()[8..12], &(5_000_000_000u64 as u32).to_ne_bytes());
        // the options as the kernel would nest them: parms then rate64
        let opts_at = b.len() - 40 - 12;
        assert_eq!(Tbf::parse(&b[opts_at..]), Some(fast));
    }

    #[test]
    fn ingress_qdisc_message() {
        let m = ingress_message(3);
        assert_eq!(m.header.handle, TcHandle { major: 0xffff, minor: 0 });
        assert_eq!(m.header.parent, TcHandle::INGRESS);
        assert!(contains(&bytes(&m), b"ingress\0"));
    }

    #[test]
    fn u32_match_all_redirect() {
        let m = u32_redirect_message(4, INGRESS_HANDLE, 1, tc_handle(1, 1), 9);
        let b = bytes(&m);
        // tcm_info: prio 1, protocol ETH_P_ALL in network byte order
        assert_eq!(&b[16..20], &[0x00, 0x03, 0x01, 0x00]);
        // TCA_U32_SEL: flags TERMINAL, nkeys 1, then one all-zero key (16 + 16 bytes)
        let mut sel = vec![36, 0, 5, 0, 1, 0, 1, 0];
        sel.extend_from_slice(&[0; 28]);
        assert!(contains(&b, &sel));
        // TCA_U32_CLASSID 1:1
        assert!(contains(&b, &[8, 0, 1, 0, 1, 0, 1, 0]));
        assert!(contains(&b, b"mirred\0"));
        let back = TcMessage::parse(&b[..]).unwrap();
        let opts = back.attributes.iter().find_map(|a| if let TcAttribute::Options(o) = a { Some(o.clone()) } else { None }).unwrap();
        let acts =
            opts.iter().find_map(|o| if let TcOption::U32(TcFilterU32Option::Action(a)) = o { Some(a.clone()) } else { None }).unwrap();
        assert_eq!(acts.len(), 1, "one action");
        let parms = acts[0]
            .attributes
            .iter()
            .find_map(|a| match a {
                TcActionAttribute::Options(o) => o.iter().find_map(|o| match o {
                    TcActionOption::Mirror(TcActionMirrorOption::Parms(p)) => Some(p.clone()),
                    _ => None,
                }),
                _ => None,
            })
            .unwrap();
        assert_eq!((parms.eaction, parms.ifindex, parms.generic.action), (TcMirrorActionType::EgressRedir, 9, TcActionType::Stolen));
    }

    #[test]
    fn psched_clock() {
        // every kernel since 2.6.x with high-resolution timers: 1000/64 ticks per µs
        if let Ok(t) = psched_ticks_per_usec() {
            assert!(t > 0.0);
        }
    }
}

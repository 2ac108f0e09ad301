//! rtnetlink over one synchronous socket (no async runtime: a plugin lives a few milliseconds).
//!
//! A [`Netlink`] belongs to the namespace it was opened in: open one inside a container's
//! namespace with [`Netlink::open_in`] and use it from any thread afterwards, with no further
//! namespace switching. Requests wait for the kernel's ACK; dumps that the kernel marks as
//! interrupted (`NLM_F_DUMP_INTR`) are retried. Errors carry the errno, what was being done, and
//! the kernel's extended-ACK message when it sends one.

mod addr;
mod link;
mod neigh;
mod route;
mod rule;
mod tc;
#[cfg(any(test, feature = "test-util"))]
pub mod wire;

pub use addr::{address_message, AddrFlags, Address};
pub use link::{
    bridge_vlan_message, format_mac, is_unknown_link_kind, master_message, move_message, parse_mac, vrf_probe_message, BridgePortOpts,
    IpvlanMode, Link, LinkKind, LinkSpec, MacvlanMode, VethPeer, Vxlan,
};
pub use neigh::{fdb_message, neighbour_message, FdbEntry, Neighbour, NTF_SELF, NUD_PERMANENT};
pub use route::{NextHop, Route, RouteSpec, RouteTable};
pub use rule::Rule;
pub use tc::{
    ingress_message, psched_ticks_per_usec, tbf_message, tc_handle, u32_redirect_message, Qdisc, Tbf, ETH_P_ALL, INGRESS_HANDLE,
    TC_H_INGRESS, TC_H_ROOT,
};

mod socket;

pub use socket::REPLY_TIMEOUT;
pub(crate) use socket::{kernel_error, NlSocket};

use crate::error::{Error, Result};
use crate::netns::NetNs;
use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::protocols::NETLINK_ROUTE;

/// A synchronous rtnetlink socket bound to one network namespace.
#[derive(Debug)]
pub struct Netlink {
    sock: NlSocket<RouteNetlinkMessage>,
}

impl Netlink {
    /// A socket in the calling thread's namespace.
    pub fn new() -> Result<Self> {
        Ok(Netlink { sock: NlSocket::open(NETLINK_ROUTE, "netlink", true)? })
    }

    /// A socket inside `ns`; it stays bound to that namespace for its whole life.
    pub fn open_in(ns: &NetNs) -> Result<Self> {
        ns.run(Netlink::new)?.map_err(|e| e.context(format!("in network namespace {}", ns.path().display())))
    }

    /// Sends a request and waits for the kernel's ACK.
    pub(crate) fn request(&mut self, msg: RouteNetlinkMessage, extra_flags: u16, op: &dyn Fn() -> String) -> Result<()> {
        self.sock.exchange(msg, NLM_F_ACK | extra_flags, op).map(|_| ())
    }

    /// Sends a GET for one object and returns the kernel's answer.
    pub(crate) fn get(&mut self, msg: RouteNetlinkMessage, op: &dyn Fn() -> String) -> Result<RouteNetlinkMessage> {
        self.sock.exchange(msg, 0, op)?.messages.pop().ok_or_else(|| Error::msg(op(), "the kernel sent no object"))
    }

    /// Dumps objects (retried when a concurrent change interrupted the dump).
    pub(crate) fn dump(&mut self, make: &dyn Fn() -> RouteNetlinkMessage, op: &dyn Fn() -> String) -> Result<Vec<RouteNetlinkMessage>> {
        self.sock.dump(make, NLM_F_DUMP, op)
    }
}

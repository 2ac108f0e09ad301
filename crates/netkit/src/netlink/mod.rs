//! rtnetlink over one synchronous socket (no async runtime: a plugin lives a few milliseconds).
//!
//! A [`Netlink`] belongs to the namespace it was opened in: open one inside a container's
//! namespace with [`Netlink::open_in`] and use it from any thread afterwards, with no further
//! namespace switching. Requests wait for the kernel's ACK; dumps that the kernel marks as
//! interrupted (`NLM_F_DUMP_INTR`) are retried. Errors carry the errno, what was being done, and
//! the kernel's extended-ACK message when it sends one.

mod addr;
mod link;
mod route;
mod tc;

pub use addr::{address_message, AddrFlags, Address};
pub use link::{bridge_vlan_message, format_mac, parse_mac, BridgePortOpts, IpvlanMode, Link, LinkKind, LinkSpec, MacvlanMode, VethPeer};
pub use route::{NextHop, Route, RouteSpec, RouteTable};
pub use tc::{
    ingress_message, psched_ticks_per_usec, tbf_message, tc_handle, u32_redirect_message, Qdisc, Tbf, ETH_P_ALL, INGRESS_HANDLE,
    TC_H_INGRESS, TC_H_ROOT,
};

use crate::error::{Error, Result};
use crate::netns::NetNs;
use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// How often an interrupted dump is retried before its (possibly inconsistent) data is used.
const DUMP_RETRIES: usize = 5;
const RECV_BUF: usize = 64 * 1024;
const NLMSGERR_ATTR_MSG: u16 = 1;

/// A synchronous rtnetlink socket bound to one network namespace.
pub struct Netlink {
    sock: Socket,
    seq: u32,
    send_buf: Vec<u8>,
    recv_buf: Vec<u8>,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink").field("seq", &self.seq).finish()
    }
}

impl Netlink {
    /// A socket in the calling thread's namespace.
    pub fn new() -> Result<Self> {
        let op = "opening a netlink socket";
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| Error::io(op, e))?;
        sock.bind_auto().map_err(|e| Error::io(op, e))?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(|e| Error::io(op, e))?;
        // only the request's header comes back in errors, followed by the kernel's message
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_ext_ack(true);
        // let the kernel filter dumps (addresses of one link, routes of one table)
        let _ = sock.set_netlink_get_strict_chk(true);
        Ok(Netlink { sock, seq: 0, send_buf: Vec::with_capacity(4096), recv_buf: Vec::with_capacity(RECV_BUF) })
    }

    /// A socket inside `ns`; it stays bound to that namespace for its whole life.
    pub fn open_in(ns: &NetNs) -> Result<Self> {
        ns.run(Netlink::new)?.map_err(|e| e.context(format!("in network namespace {}", ns.path().display())))
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        nl.finalize();
        self.send_buf.clear();
        self.send_buf.resize(nl.buffer_len(), 0);
        nl.serialize(&mut self.send_buf);
        self.sock.send(&self.send_buf, 0).map_err(|e| Error::io("sending a netlink request", e))?;
        Ok(self.seq)
    }

    /// Receives one datagram and hands each message of sequence `seq` to `f`; `f` returns true
    /// when the exchange is complete.
    fn recv_until(
        &mut self,
        seq: u32,
        op: &dyn Fn() -> String,
        mut f: impl FnMut(NetlinkMessage<RouteNetlinkMessage>) -> Result<bool>,
    ) -> Result<()> {
        loop {
            self.recv_buf.clear();
            let n = loop {
                match self.sock.recv(&mut self.recv_buf, 0) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Error::io(op(), e)),
                }
            };
            let mut off = 0;
            let data = &self.recv_buf[..n.min(self.recv_buf.len())];
            while off < data.len() {
                let len = NetlinkBuffer::new_checked(&data[off..])
                    .map_err(|e| Error::msg(op(), format!("malformed netlink reply: {e}")))?
                    .length() as usize;
                if len == 0 {
                    break;
                }
                let raw = &data[off..(off + len).min(data.len())];
                off += (len + 3) & !3;
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(raw)
                    .map_err(|e| Error::msg(op(), format!("malformed netlink reply: {e}")))?;
                if msg.header.sequence_number != seq {
                    continue; // a late reply to an earlier request
                }
                if f(msg)? {
                    return Ok(());
                }
            }
        }
    }

    /// Sends a request and waits for the kernel's ACK.
    pub(crate) fn request(&mut self, msg: RouteNetlinkMessage, extra_flags: u16, op: &dyn Fn() -> String) -> Result<()> {
        let seq = self.send(msg, NLM_F_REQUEST | NLM_F_ACK | extra_flags)?;
        self.recv_until(seq, op, |m| match m.payload {
            NetlinkPayload::Error(e) => match e.code {
                None => Ok(true),
                Some(code) => Err(kernel_error(op(), -code.get(), &e.header)),
            },
            _ => Ok(false),
        })
    }

    /// Sends a GET for one object and returns the kernel's answer.
    pub(crate) fn get(&mut self, msg: RouteNetlinkMessage, op: &dyn Fn() -> String) -> Result<RouteNetlinkMessage> {
        let seq = self.send(msg, NLM_F_REQUEST)?;
        let mut out = None;
        self.recv_until(seq, op, |m| match m.payload {
            NetlinkPayload::InnerMessage(inner) => {
                out = Some(inner);
                Ok(true)
            }
            NetlinkPayload::Error(e) => match e.code {
                None => Ok(true),
                Some(code) => Err(kernel_error(op(), -code.get(), &e.header)),
            },
            _ => Ok(false),
        })?;
        out.ok_or_else(|| Error::msg(op(), "the kernel sent no object"))
    }

    /// Dumps objects, retrying when the kernel reports that the dump was interrupted by a
    /// concurrent change.
    pub(crate) fn dump(&mut self, make: &dyn Fn() -> RouteNetlinkMessage, op: &dyn Fn() -> String) -> Result<Vec<RouteNetlinkMessage>> {
        let mut attempt = 0;
        loop {
            let seq = self.send(make(), NLM_F_REQUEST | NLM_F_DUMP)?;
            let mut out = Vec::new();
            let mut interrupted = false;
            self.recv_until(seq, op, |m| {
                if m.header.flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match m.payload {
                    NetlinkPayload::InnerMessage(inner) => {
                        out.push(inner);
                        Ok(false)
                    }
                    NetlinkPayload::Done(d) if d.code != 0 => Err(kernel_error(op(), -d.code, &[])),
                    NetlinkPayload::Done(_) => Ok(true),
                    NetlinkPayload::Error(e) => match e.code {
                        None => Ok(true),
                        Some(code) => Err(kernel_error(op(), -code.get(), &e.header)),
                    },
                    _ => Ok(false),
                }
            })?;
            attempt += 1;
            if !interrupted || attempt > DUMP_RETRIES {
                if interrupted {
                    tracing::warn!(op = %op(), "netlink dump still interrupted after {DUMP_RETRIES} retries; using its data");
                }
                return Ok(out);
            }
        }
    }
}

/// An errno from the kernel, with the extended-ACK message (`NLMSGERR_ATTR_MSG`) if present. With
/// `NETLINK_CAP_ACK` the error payload is the request's 16-byte header followed by the TLVs.
pub(crate) fn kernel_error(op: String, errno: i32, payload: &[u8]) -> Error {
    let mut detail = None;
    let mut off = 16;
    while off + 4 <= payload.len() {
        let len = u16::from_ne_bytes([payload[off], payload[off + 1]]) as usize;
        let kind = u16::from_ne_bytes([payload[off + 2], payload[off + 3]]) & 0x3fff;
        if len < 4 || off + len > payload.len() {
            break;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let s = &payload[off + 4..off + len];
            let s = s.split(|b| *b == 0).next().unwrap_or(&[]);
            detail = Some(String::from_utf8_lossy(s).into_owned()).filter(|d| !d.is_empty());
        }
        off += (len + 3) & !3;
    }
    Error::Os { op, errno, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extended_ack_message_is_kept() {
        let mut payload = vec![0u8; 16];
        let msg = b"Unknown device type\0";
        let len = (4 + msg.len()) as u16;
        payload.extend_from_slice(&len.to_ne_bytes());
        payload.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        payload.extend_from_slice(msg);
        let e = kernel_error("creating vlan link v1".into(), libc::EOPNOTSUPP, &payload);
        assert!(e.is_not_supported());
        assert_eq!(e.to_string(), "creating vlan link v1: Operation not supported (os error 95) (Unknown device type)");
        let e = kernel_error("x".into(), libc::ENODEV, &[0; 16]);
        assert!(e.is_not_found());
    }
}

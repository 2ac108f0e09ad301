//! The one synchronous netlink socket under both rtnetlink ([`super::Netlink`]) and nf_tables
//! ([`crate::nft::Nft`]): sending, receiving until an exchange is complete, sequence checks,
//! interrupted dumps made again, the kernel's extended-ACK text, and a bound on every wait for an
//! answer ([`REPLY_TIMEOUT`]). The kernel does a request's work inside `sendmsg` (under its own
//! locks), which no socket timeout covers; what the bound covers is the wait for what it sends.

use crate::error::{Error, Result};
use netlink_packet_core::{
    NetlinkBuffer, NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable, NlasIterator, NLM_F_ACK,
    NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_sys::{Socket, SocketAddr};
use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// The longest rcni waits for the kernel's answer to one exchange (a request, a dump, a batch),
/// measured from the first receive (so at most about twice this in all, when the last datagram
/// arrives just before it): far beyond any answer a working kernel gives, short of hanging a
/// runtime.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// How often an interrupted dump is made again before its (possibly inconsistent) data is used.
pub const DUMP_RETRIES: usize = 5;

const RECV_BUF: usize = 64 * 1024;
const NLMSGERR_ATTR_MSG: u16 = 1;

/// What was received for one request.
pub(crate) struct Reply<M> {
    pub messages: Vec<M>,
    /// The kernel flagged a part of the dump as interrupted by a concurrent change
    /// (`NLM_F_DUMP_INTR`).
    pub interrupted: bool,
}

/// A netlink socket of one protocol, bound to the network namespace it was opened in, for
/// messages of type `M`.
pub(crate) struct NlSocket<M> {
    sock: Socket,
    seq: u32,
    send_buf: Vec<u8>,
    recv_buf: Vec<u8>,
    _messages: PhantomData<fn() -> M>,
}

impl<M> std::fmt::Debug for NlSocket<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NlSocket").field("seq", &self.seq).finish()
    }
}

impl<M: NetlinkSerializable + NetlinkDeserializable> NlSocket<M> {
    /// A socket of `protocol` in the calling thread's namespace. Errors come back with only the
    /// request's header and the kernel's message (`NETLINK_CAP_ACK`, `NETLINK_EXT_ACK`);
    /// `strict` lets the kernel filter dumps (rtnetlink's strict checking).
    pub fn open(protocol: isize, what: &str, strict: bool) -> Result<Self> {
        let op = format!("opening a {what} socket");
        #[cfg(feature = "fuzzing")]
        crate::fuzzing::refuse(&op)?;
        let mut sock = Socket::new(protocol).map_err(|e| Error::io(&op, e))?;
        sock.bind_auto().map_err(|e| Error::io(&op, e))?;
        sock.connect(&SocketAddr::new(0, 0)).map_err(|e| Error::io(&op, e))?;
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_ext_ack(true);
        if strict {
            let _ = sock.set_netlink_get_strict_chk(true);
        }
        set_recv_timeout(&sock, REPLY_TIMEOUT).map_err(|e| Error::io(&op, e))?;
        Ok(NlSocket { sock, seq: 0, send_buf: Vec::with_capacity(4096), recv_buf: Vec::with_capacity(RECV_BUF), _messages: PhantomData })
    }

    /// The sequence number of the next message.
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends `msgs` in one datagram (their sequence numbers as set).
    pub fn send(&mut self, msgs: &mut [NetlinkMessage<M>], op: &dyn Fn() -> String) -> Result<()> {
        self.send_buf.clear();
        for m in msgs.iter_mut() {
            m.finalize();
            let start = self.send_buf.len();
            self.send_buf.resize(start + m.buffer_len(), 0);
            m.serialize(&mut self.send_buf[start..]);
        }
        self.sock.send(&self.send_buf, 0).map_err(|e| Error::io(op(), e))?;
        Ok(())
    }

    /// Receives datagrams and hands each message to `f` until `f` says the exchange is complete;
    /// fails once [`REPLY_TIMEOUT`] has passed without that.
    pub fn recv(&mut self, op: &dyn Fn() -> String, f: &mut dyn FnMut(NetlinkMessage<M>) -> Result<bool>) -> Result<()> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            self.recv_buf.clear();
            let n = match self.sock.recv(&mut self.recv_buf, 0) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return Err(Error::msg(op(), format!("the kernel did not answer within {}s", REPLY_TIMEOUT.as_secs())));
                }
                Err(e) => return Err(Error::io(op(), e)),
            };
            let data = &self.recv_buf[..n.min(self.recv_buf.len())];
            let mut off = 0;
            while off < data.len() {
                let len = NetlinkBuffer::new_checked(&data[off..])
                    .map_err(|e| Error::msg(op(), format!("malformed netlink reply: {e}")))?
                    .length() as usize;
                if len == 0 {
                    break;
                }
                let raw = &data[off..(off + len).min(data.len())];
                off += (len + 3) & !3;
                let m = NetlinkMessage::<M>::deserialize(raw).map_err(|e| Error::msg(op(), format!("malformed netlink reply: {e}")))?;
                if f(m)? {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::msg(op(), format!("the kernel did not finish answering within {}s", REPLY_TIMEOUT.as_secs())));
            }
        }
    }

    /// Sends one request (`flags` on top of `NLM_F_REQUEST`; with `NLM_F_ACK` or `NLM_F_DUMP`
    /// the kernel says when it is done) and collects the messages of its answer until the ACK,
    /// the end of the dump or an error; without either flag, until the first message. Messages
    /// of other sequence numbers (late answers to earlier requests) are skipped.
    pub fn exchange(&mut self, payload: M, flags: u16, op: &dyn Fn() -> String) -> Result<Reply<M>> {
        let seq = self.next_seq();
        let mut m = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::InnerMessage(payload));
        m.header.flags = NLM_F_REQUEST | flags;
        m.header.sequence_number = seq;
        self.send(std::slice::from_mut(&mut m), op)?;
        let single = flags & (NLM_F_ACK | NLM_F_DUMP) == 0;
        let mut reply = Reply { messages: Vec::new(), interrupted: false };
        self.recv(op, &mut |m| {
            if m.header.sequence_number != seq {
                return Ok(false);
            }
            if m.header.flags & NLM_F_DUMP_INTR != 0 {
                reply.interrupted = true;
            }
            match m.payload {
                NetlinkPayload::InnerMessage(inner) => {
                    reply.messages.push(inner);
                    Ok(single)
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
        Ok(reply)
    }

    /// A dump (`flags` include `NLM_F_DUMP`), made again when the kernel reports that a
    /// concurrent change interrupted it, up to [`DUMP_RETRIES`] times (then its data is used).
    pub fn dump(&mut self, make: &dyn Fn() -> M, flags: u16, op: &dyn Fn() -> String) -> Result<Vec<M>> {
        let mut attempt = 0;
        loop {
            let reply = self.exchange(make(), flags, op)?;
            attempt += 1;
            if !reply.interrupted || attempt > DUMP_RETRIES {
                if reply.interrupted {
                    tracing::warn!(op = %op(), "netlink dump still interrupted after {DUMP_RETRIES} retries; using its data");
                }
                return Ok(reply.messages);
            }
        }
    }

    pub fn as_raw_fd(&self) -> i32 {
        self.sock.as_raw_fd()
    }
}

/// `SO_RCVTIMEO`, so that no `recv` waits forever.
fn set_recv_timeout(sock: &Socket, t: Duration) -> std::io::Result<()> {
    let tv = libc::timeval { tv_sec: t.as_secs() as libc::time_t, tv_usec: t.subsec_micros() as libc::suseconds_t };
    // SAFETY: a valid socket descriptor and a timeval of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// An errno from the kernel, with the extended-ACK message (`NLMSGERR_ATTR_MSG`) if present. With
/// `NETLINK_CAP_ACK` the error payload is the request's 16-byte header followed by the TLVs
/// (netlink-packet-core leaves that payload unparsed; its NLA iterator reads the TLVs).
pub(crate) fn kernel_error(op: String, errno: i32, payload: &[u8]) -> Error {
    let detail = payload.get(16..).and_then(|tlvs| {
        NlasIterator::new(tlvs).flatten().find(|nla| nla.kind() & 0x3fff == NLMSGERR_ATTR_MSG).and_then(|nla| {
            let s = nla.value().split(|b| *b == 0).next().unwrap_or(&[]);
            Some(String::from_utf8_lossy(s).into_owned()).filter(|d| !d.is_empty())
        })
    });
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

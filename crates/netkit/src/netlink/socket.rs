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
    /// The receive timeout set on the socket now.
    recv_timeout: Duration,
    protocol: isize,
    /// The send buffer size this socket was given (0: the kernel's default).
    send_buf_size: usize,
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
        Ok(NlSocket {
            sock,
            seq: 0,
            send_buf: Vec::with_capacity(4096),
            recv_buf: Vec::with_capacity(RECV_BUF),
            recv_timeout: REPLY_TIMEOUT,
            protocol,
            send_buf_size: 0,
            _messages: PhantomData,
        })
    }

    /// The sequence number of the next message.
    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends `msgs` in one datagram (their sequence numbers as set).
    pub fn send(&mut self, msgs: &mut [NetlinkMessage<M>], op: &dyn Fn() -> String) -> Result<()> {
        if cni_runtime::deadline::remaining(REPLY_TIMEOUT).is_none() {
            return Err(deadline_passed(op()));
        }
        fault::at_request(self.protocol, op)?;
        cni_runtime::trace::kernel_request();
        self.send_buf.clear();
        for m in msgs.iter_mut() {
            m.finalize();
            let start = self.send_buf.len();
            self.send_buf.resize(start + m.buffer_len(), 0);
            m.serialize(&mut self.send_buf[start..]);
        }
        // a datagram must fit in the socket's send buffer (default about 208 KiB): a big
        // nftables batch (thousands of elements) gets a buffer of its size
        if self.send_buf.len() > DEFAULT_SEND_BUF && self.send_buf.len() > self.send_buf_size {
            set_send_buffer(&self.sock, self.send_buf.len() + 4096).map_err(|e| Error::io(op(), e))?;
            self.send_buf_size = self.send_buf.len() + 4096;
        }
        fault::kill_point();
        self.sock.send(&self.send_buf, 0).map_err(|e| Error::io(op(), e))?;
        fault::kill_point();
        Ok(())
    }

    /// Receives datagrams and hands each message to `f` until `f` says the exchange is complete;
    /// fails once [`REPLY_TIMEOUT`] has passed without that, or the runtime's deadline
    /// ([`cni_runtime::deadline`]).
    pub fn recv(&mut self, op: &dyn Fn() -> String, f: &mut dyn FnMut(NetlinkMessage<M>) -> Result<bool>) -> Result<()> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            // the runtime's deadline may come first: the socket waits no longer than what is left
            let wait = cni_runtime::deadline::remaining(REPLY_TIMEOUT).ok_or_else(|| deadline_passed(op()))?;
            if wait != self.recv_timeout {
                set_recv_timeout(&self.sock, wait).map_err(|e| Error::io(op(), e))?;
                self.recv_timeout = wait;
            }
            self.recv_buf.clear();
            let n = match self.sock.recv(&mut self.recv_buf, 0) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    if wait < REPLY_TIMEOUT {
                        return Err(deadline_passed(op()));
                    }
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

/// rcni's test hooks, all here: fault injection for the tests of failure paths and the crash
/// tests' kill points. `RCNI_TEST_FAULT=N:error` (or `N:panic`, `N:kill`) in a process's
/// environment makes its Nth netlink request (counting from 1, rtnetlink and nftables alike;
/// `nft:N:…` or `rt:N:…` counts only that protocol's) fail before it is sent, panic, or SIGKILL
/// the process; `RCNI_TEST_KILL_AT` see [`kill_point`]. Read once; unset, each costs a load and a
/// compare per request.
pub mod fault {
    use crate::error::{Error, Result};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Kind {
        Error,
        Panic,
        Kill,
    }

    /// Which requests count.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Only {
        Any,
        Route,
        Nftables,
    }

    static PLAN: OnceLock<Option<(Only, usize, Kind)>> = OnceLock::new();
    static COUNT: AtomicUsize = AtomicUsize::new(0);

    /// The plan `RCNI_TEST_FAULT` spells, if it spells one.
    pub fn parse(v: &str) -> Option<(Only, usize, Kind)> {
        let (only, v) = match v.split_once(':') {
            Some(("nft", rest)) => (Only::Nftables, rest),
            Some(("rt", rest)) => (Only::Route, rest),
            _ => (Only::Any, v),
        };
        let (n, kind) = v.split_once(':')?;
        let kind = match kind {
            "error" => Kind::Error,
            "panic" => Kind::Panic,
            "kill" => Kind::Kill,
            _ => return None,
        };
        Some((only, n.parse().ok().filter(|n| *n > 0)?, kind))
    }

    pub(super) fn at_request(protocol: isize, op: &dyn Fn() -> String) -> Result<()> {
        let Some((only, n, kind)) = *PLAN.get_or_init(|| std::env::var("RCNI_TEST_FAULT").ok().as_deref().and_then(parse)) else {
            return Ok(());
        };
        let counts = match only {
            Only::Any => true,
            Only::Route => protocol == netlink_sys::protocols::NETLINK_ROUTE,
            Only::Nftables => protocol == netlink_sys::protocols::NETLINK_NETFILTER,
        };
        if !counts || COUNT.fetch_add(1, Ordering::Relaxed) + 1 != n {
            return Ok(());
        }
        match kind {
            Kind::Error => Err(Error::msg(op(), "RCNI_TEST_FAULT: injected failure")),
            Kind::Panic => panic!("RCNI_TEST_FAULT: injected panic at request {n} ({})", op()),
            Kind::Kill => {
                // SAFETY: raising a signal at ourselves.
                unsafe { libc::raise(libc::SIGKILL) };
                unreachable!("SIGKILL")
            }
        }
    }

    /// The crash tests' kill points (`tests/tests/crash.rs`): with `RCNI_TEST_KILL_AT=N` in the
    /// environment (read once), this process's group is SIGKILLed at its Nth point, counted over
    /// every netlink socket of the process: point 2k-1 is just before the k-th request goes to
    /// the kernel, point 2k just after it went, before its answer is read. So N = 1, 2, 3, …
    /// walks through every kernel change an operation makes. Unset, a point costs one load of an
    /// initialised `OnceLock`.
    pub(super) fn kill_point() {
        use std::sync::atomic::AtomicU64;
        static AT: OnceLock<Option<u64>> = OnceLock::new();
        static PASSED: AtomicU64 = AtomicU64::new(0);
        if let Some(at) = *AT.get_or_init(|| std::env::var("RCNI_TEST_KILL_AT").ok().and_then(|v| v.parse().ok())) {
            if PASSED.fetch_add(1, Ordering::Relaxed) + 1 == at {
                // SAFETY: kill(2) of our own process group; nothing of ours runs afterwards.
                unsafe { libc::kill(0, libc::SIGKILL) };
            }
        }
    }
}

fn deadline_passed(op: String) -> Error {
    Error::msg(op, "the runtime's deadline passed before the kernel answered")
}

/// What a datagram may be without a larger send buffer (the kernel's default `wmem_default` is
/// 212992 bytes; kept well below it).
const DEFAULT_SEND_BUF: usize = 128 * 1024;

/// `SO_SNDBUFFORCE` (past `wmem_max`; rcni has CAP_NET_ADMIN where it changes nftables), else
/// `SO_SNDBUF`.
fn set_send_buffer(sock: &Socket, size: usize) -> std::io::Result<()> {
    let v: libc::c_int = size.try_into().unwrap_or(libc::c_int::MAX);
    for opt in [libc::SO_SNDBUFFORCE, libc::SO_SNDBUF] {
        // SAFETY: a valid socket descriptor and an int of the size passed.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return Ok(());
        }
    }
    Err(std::io::Error::last_os_error())
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
    fn fault_plans() {
        use fault::{Kind, Only};
        assert_eq!(fault::parse("3:error"), Some((Only::Any, 3, Kind::Error)));
        assert_eq!(fault::parse("12:kill"), Some((Only::Any, 12, Kind::Kill)));
        assert_eq!(fault::parse("nft:1:panic"), Some((Only::Nftables, 1, Kind::Panic)));
        assert_eq!(fault::parse("rt:2:error"), Some((Only::Route, 2, Kind::Error)));
        for bad in ["", "0:error", "x:error", "3", "3:explode", "nft:3", "ip:1:error"] {
            assert_eq!(fault::parse(bad), None, "{bad}");
        }
    }

    /// A wait for an answer that never comes (nothing was sent) ends at the runtime's deadline,
    /// not after REPLY_TIMEOUT. (A netlink socket that only receives changes nothing.)
    #[test]
    fn a_wait_ends_at_the_deadline() {
        let mut s: NlSocket<netlink_packet_route::RouteNetlinkMessage> =
            NlSocket::open(netlink_sys::protocols::NETLINK_ROUTE, "netlink", true).unwrap();
        let start = Instant::now();
        let _d = cni_runtime::deadline::scope(Some(start + Duration::from_millis(200)));
        let e = s.recv(&|| "waiting".into(), &mut |_| Ok(true)).unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5), "waited {:?}", start.elapsed());
        assert_eq!(e.to_string(), "waiting: the runtime's deadline passed before the kernel answered");
        // once it has passed, nothing more is sent
        let e = s.send(&mut [], &|| "sending".into()).unwrap_err();
        assert!(e.to_string().contains("deadline passed"), "{e}");
    }

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

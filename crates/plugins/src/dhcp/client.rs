//! The DHCPv4 client's exchanges (RFC 2131 §4.4): DISCOVER → OFFER → REQUEST → ACK to acquire,
//! REQUEST (unicast to the server at T1, broadcast from T2) to renew or rebind, RELEASE. Each
//! exchange resends with a doubling interval (1 s, 2 s, … at most `resend_max`) until its
//! deadline, and stops early when `stop` says so; the transport is a trait so that the logic runs
//! on a scripted server in unit tests and the fuzzer.

use super::proto::{opt, Lease, Message, MsgType, BROADCAST_FLAG, MAX_LEN, SERVER_PORT};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// How the client reaches the server: datagrams to and from port 67/68 on one device.
pub trait Transport {
    fn send(&mut self, msg: &[u8], to: SocketAddrV4) -> std::io::Result<()>;
    /// The next datagram that arrives before `until`, or `None` at `until`.
    fn recv(&mut self, until: Instant) -> std::io::Result<Option<Vec<u8>>>;
}

impl Transport for std::net::UdpSocket {
    fn send(&mut self, msg: &[u8], to: SocketAddrV4) -> std::io::Result<()> {
        self.send_to(msg, to).map(drop)
    }

    fn recv(&mut self, until: Instant) -> std::io::Result<Option<Vec<u8>>> {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        self.set_read_timeout(Some(left))?;
        let mut buf = vec![0u8; MAX_LEN];
        match self.recv_from(&mut buf) {
            Ok((n, _)) => {
                buf.truncate(n);
                Ok(Some(buf))
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// What every message of one attachment's client carries.
#[derive(Debug, Clone)]
pub struct Params {
    pub chaddr: Vec<u8>,
    /// Option 61.
    pub client_id: Vec<u8>,
    /// Option 55.
    pub request: Vec<u8>,
    /// Options sent as they are (host name, …).
    pub provide: Vec<(u8, Vec<u8>)>,
    pub resend_max: Duration,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// No answer before the deadline (or stopped).
    Timeout(String),
    /// The server refused (NAK), with its message if any.
    Nak(String),
    Io(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Timeout(s) | Error::Io(s) => f.write_str(s),
            Error::Nak(s) => write!(f, "the server refused (DHCPNAK){}", if s.is_empty() { String::new() } else { format!(": {s}") }),
        }
    }
}

/// A transaction ID: random, from the kernel.
pub fn new_xid() -> u32 {
    let mut b = [0u8; 4];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b)).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        return t.subsec_nanos() ^ std::process::id().rotate_left(16);
    }
    u32::from_be_bytes(b)
}

const BROADCAST: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::BROADCAST, SERVER_PORT);
/// How often a wait looks at `stop`.
const STOP_POLL: Duration = Duration::from_millis(200);

fn base(p: &Params, xid: u32, t: MsgType) -> Message {
    let mut m = Message::request(xid, &p.chaddr);
    m.set(opt::MESSAGE_TYPE, [t as u8]);
    m.set(opt::CLIENT_ID, p.client_id.clone());
    for (c, v) in &p.provide {
        m.set(*c, v.clone());
    }
    if t != MsgType::Release {
        m.set(opt::PARAMS, p.request.clone());
        m.set(opt::MAX_SIZE, (MAX_LEN as u16).to_be_bytes());
    }
    m
}

/// Sends `m` to `to` and resends it (1 s, 2 s, 4 s, … capped at `resend_max`) until `pick` takes
/// an answer, `deadline` passes or `stop` returns true. Datagrams that are not DHCP, or not ours,
/// are skipped.
fn exchange<R>(
    t: &mut dyn Transport,
    p: &Params,
    m: &Message,
    to: SocketAddrV4,
    deadline: Instant,
    stop: &dyn Fn() -> bool,
    mut pick: impl FnMut(&Message) -> Option<Result<R, Error>>,
) -> Result<R, Error> {
    let bytes = m.encode();
    let mut interval = Duration::from_secs(1);
    loop {
        if stop() {
            return Err(Error::Timeout("stopped".into()));
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout(format!("no answer from a DHCP server to {to} in time")));
        }
        t.send(&bytes, to).map_err(|e| Error::Io(format!("sending to {to}: {e}")))?;
        let resend_at = (now + interval).min(deadline);
        interval = (interval * 2).min(p.resend_max.max(Duration::from_secs(1)));
        loop {
            if stop() {
                return Err(Error::Timeout("stopped".into()));
            }
            let until = resend_at.min(Instant::now() + STOP_POLL);
            match t.recv(until).map_err(|e| Error::Io(format!("receiving: {e}")))? {
                Some(b) => {
                    let Ok(reply) = Message::decode(&b) else { continue };
                    if !reply.answers(m.xid, &p.chaddr) {
                        continue;
                    }
                    if let Some(r) = pick(&reply) {
                        return r;
                    }
                }
                None if Instant::now() >= resend_at => break,
                None => {}
            }
        }
    }
}

fn nak_text(m: &Message) -> String {
    m.option(opt::MESSAGE).map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default()
}

/// INIT → BOUND: an address from any server, by `deadline`. `broadcast` asks the server to
/// broadcast its answers (the client has no address yet to receive a unicast on).
pub fn acquire(t: &mut dyn Transport, p: &Params, broadcast: bool, deadline: Instant, stop: &dyn Fn() -> bool) -> Result<Lease, Error> {
    let mut last_nak = None;
    // a NAK to the REQUEST starts over from DISCOVER (RFC 2131 §3.1.5), a few times at most
    for _ in 0..4 {
        let xid = new_xid();
        let mut d = base(p, xid, MsgType::Discover);
        if broadcast {
            d.flags = BROADCAST_FLAG;
        }
        let (offered, server) = exchange(t, p, &d, BROADCAST, deadline, stop, |r| {
            let server = r.server_id()?;
            (r.msg_type() == Some(MsgType::Offer) && !r.yiaddr.is_unspecified()).then_some(Ok((r.yiaddr, server)))
        })?;
        let mut q = base(p, xid, MsgType::Request);
        q.flags = d.flags;
        q.set(opt::REQUESTED_IP, offered.octets());
        q.set(opt::SERVER_ID, server.octets());
        let answer = exchange(t, p, &q, BROADCAST, deadline, stop, |r| match r.msg_type() {
            Some(MsgType::Ack) if r.server_id().is_none_or(|s| s == server) => Some(Lease::from_ack(r).map_err(Error::Io)),
            Some(MsgType::Nak) if r.server_id().is_none_or(|s| s == server) => Some(Err(Error::Nak(nak_text(r)))),
            _ => None,
        });
        match answer {
            Err(Error::Nak(s)) => last_nak = Some(s),
            other => return other,
        }
    }
    Err(Error::Nak(last_nak.unwrap_or_default()))
}

/// RENEWING (unicast to the lease's server) or REBINDING (`rebind`: broadcast to any): the lease
/// extended, by `deadline`.
pub fn renew(
    t: &mut dyn Transport,
    p: &Params,
    lease: &Lease,
    rebind: bool,
    deadline: Instant,
    stop: &dyn Fn() -> bool,
) -> Result<Lease, Error> {
    let mut q = base(p, new_xid(), MsgType::Request);
    q.ciaddr = lease.address;
    let to = if rebind || lease.server.is_unspecified() { BROADCAST } else { SocketAddrV4::new(lease.server, SERVER_PORT) };
    exchange(t, p, &q, to, deadline, stop, |r| match r.msg_type() {
        Some(MsgType::Ack) => Some(Lease::from_ack(r).map_err(Error::Io)),
        Some(MsgType::Nak) => Some(Err(Error::Nak(nak_text(r)))),
        _ => None,
    })
}

/// RELEASE: one message to the lease's server; there is no answer.
pub fn release(t: &mut dyn Transport, p: &Params, lease: &Lease) -> Result<(), Error> {
    let mut m = base(p, new_xid(), MsgType::Release);
    m.ciaddr = lease.address;
    m.set(opt::SERVER_ID, lease.server.octets());
    let to = if lease.server.is_unspecified() { BROADCAST } else { SocketAddrV4::new(lease.server, SERVER_PORT) };
    t.send(&m.encode(), to).map_err(|e| Error::Io(format!("sending the release to {to}: {e}")))
}

#[cfg(any(test, feature = "fuzzing"))]
pub mod scripted {
    //! A transport that answers from a script: for unit tests and the fuzzer.
    use super::*;

    /// Answers every request with `answer(request)` (none: silence); records what was sent.
    pub struct Scripted<F: FnMut(&Message) -> Vec<Vec<u8>>> {
        pub answer: F,
        pub sent: Vec<(Message, SocketAddrV4)>,
        queue: std::collections::VecDeque<Vec<u8>>,
    }

    impl<F: FnMut(&Message) -> Vec<Vec<u8>>> Scripted<F> {
        pub fn new(answer: F) -> Self {
            Scripted { answer, sent: Vec::new(), queue: Default::default() }
        }
    }

    impl<F: FnMut(&Message) -> Vec<Vec<u8>>> Transport for Scripted<F> {
        fn send(&mut self, msg: &[u8], to: SocketAddrV4) -> std::io::Result<()> {
            let m = Message::decode(msg).expect("the client sends what decodes");
            self.queue.extend((self.answer)(&m));
            self.sent.push((m, to));
            Ok(())
        }
        fn recv(&mut self, until: Instant) -> std::io::Result<Option<Vec<u8>>> {
            match self.queue.pop_front() {
                Some(b) => Ok(Some(b)),
                None => {
                    // no real waiting: time "passes" to `until`
                    let left = until.saturating_duration_since(Instant::now());
                    std::thread::sleep(left.min(Duration::from_millis(1)));
                    Ok(None)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::scripted::Scripted;
    use super::*;

    fn params() -> Params {
        Params {
            chaddr: vec![2, 0, 0, 0, 0, 7],
            client_id: b"c1/net/eth0".to_vec(),
            request: vec![opt::SUBNET_MASK, opt::ROUTER],
            provide: vec![(opt::HOST_NAME, b"pod".to_vec())],
            resend_max: Duration::from_secs(62),
        }
    }

    /// A server handing out 10.9.0.50/24 from 10.9.0.1; `nak_first` NAKs the first REQUEST.
    fn server(mut nak_first: bool) -> impl FnMut(&Message) -> Vec<Vec<u8>> {
        move |q| {
            let mut r = q.clone();
            r.op = 2;
            r.options.clear();
            r.yiaddr = Ipv4Addr::new(10, 9, 0, 50);
            r.set(opt::SERVER_ID, [10, 9, 0, 1]);
            let t = match q.msg_type() {
                Some(MsgType::Discover) => MsgType::Offer,
                Some(MsgType::Request) if nak_first => {
                    nak_first = false;
                    MsgType::Nak
                }
                Some(MsgType::Request) => MsgType::Ack,
                _ => return vec![],
            };
            r.set(opt::MESSAGE_TYPE, [t as u8]);
            r.set(opt::SUBNET_MASK, [255, 255, 255, 0]);
            r.set(opt::LEASE_TIME, 120u32.to_be_bytes());
            // noise first: another client's answer, and garbage
            let mut other = r.clone();
            other.xid ^= 1;
            vec![b"junk".to_vec(), other.encode(), r.encode()]
        }
    }

    #[test]
    fn acquire_renew_release() {
        let p = params();
        let mut t = Scripted::new(server(false));
        let far = Instant::now() + Duration::from_secs(5);
        let l = acquire(&mut t, &p, true, far, &|| false).unwrap();
        assert_eq!((l.address, l.prefix, l.t1), (Ipv4Addr::new(10, 9, 0, 50), 24, 60));
        let (d, to) = &t.sent[0];
        assert_eq!((d.msg_type(), d.flags, *to), (Some(MsgType::Discover), BROADCAST_FLAG, BROADCAST));
        assert_eq!(d.option(opt::CLIENT_ID), Some(&b"c1/net/eth0"[..]));
        assert_eq!(d.option(opt::HOST_NAME), Some(&b"pod"[..]));
        let (q, _) = &t.sent[1];
        assert_eq!(q.msg_type(), Some(MsgType::Request));
        assert_eq!((q.option(opt::REQUESTED_IP), q.option(opt::SERVER_ID)), (Some(&[10, 9, 0, 50][..]), Some(&[10, 9, 0, 1][..])));
        assert_eq!(q.xid, d.xid);

        let l2 = renew(&mut t, &p, &l, false, far, &|| false).unwrap();
        assert_eq!(l2.address, l.address);
        let (q, to) = t.sent.last().unwrap();
        assert_eq!((q.ciaddr, *to), (l.address, SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 1), 67)));
        assert_eq!(q.option(opt::REQUESTED_IP), None);
        renew(&mut t, &p, &l, true, far, &|| false).unwrap();
        assert_eq!(t.sent.last().unwrap().1, BROADCAST);

        release(&mut t, &p, &l).unwrap();
        let (r, to) = t.sent.last().unwrap();
        assert_eq!((r.msg_type(), r.ciaddr, *to), (Some(MsgType::Release), l.address, SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 1), 67)));
    }

    #[test]
    fn nak_starts_over_and_silence_times_out() {
        let p = params();
        let mut t = Scripted::new(server(true));
        let far = Instant::now() + Duration::from_secs(5);
        acquire(&mut t, &p, false, far, &|| false).unwrap();
        let kinds: Vec<_> = t.sent.iter().map(|(m, _)| m.msg_type().unwrap()).collect();
        assert_eq!(kinds, [MsgType::Discover, MsgType::Request, MsgType::Discover, MsgType::Request]);

        let mut silent = Scripted::new(|_: &Message| vec![]);
        let start = Instant::now();
        let e = acquire(&mut silent, &p, false, start + Duration::from_millis(300), &|| false).unwrap_err();
        assert!(matches!(e, Error::Timeout(_)), "{e:?}");
        assert!(start.elapsed() < Duration::from_secs(2));
        let e = acquire(&mut silent, &p, false, Instant::now() + Duration::from_secs(30), &|| true).unwrap_err();
        assert_eq!(e, Error::Timeout("stopped".into()));
    }
}

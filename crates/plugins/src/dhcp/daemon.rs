//! The DHCP daemon: listens on a unix socket (or one systemd hands over), serves the plugin's
//! requests ([`super::wire`]) and keeps one lease per attachment, each on a thread of its own
//! with a UDP socket made inside the container's namespace and bound to its interface
//! (`netkit::udp`). A lease is renewed at T1 (option 58, else half the lease) by unicast to its
//! server, rebound at T2 (option 59, else 7/8) by broadcast, and acquired anew when it ran out
//! or the server NAKs. Leases live in the daemon's memory, as the reference's do; SIGTERM or
//! SIGINT removes the socket and pidfile and exits without releasing (the server keeps the
//! leases until they run out, and a new daemon's ADD gets the same address by client ID).

use super::client::{self, Params};
use super::proto::{Lease, CLIENT_PORT};
use super::{wire, Settings};
use cni_types::result::{Dns, Interface, IpConfig, Result100, Route};
use cni_types::CniError;
use netkit::netns::NsId;
use netkit::{NetNs, Netlink};
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The daemon's flags, as the reference spells them (`-socketpath PATH` or `-socketpath=PATH`;
/// one or two dashes).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub socket_path: PathBuf,
    pub pidfile: Option<PathBuf>,
    /// Prefixed to each request's netns path (a daemon in a container sees the host's under it).
    pub hostprefix: String,
    /// Renew by broadcast too, not only rebind (for a server unicast does not reach). Servers
    /// are always asked to broadcast their answers to DISCOVER and the first REQUEST: the
    /// daemon's UDP socket receives no unicast before the interface has its address.
    pub broadcast: bool,
    /// How long an ADD waits for a lease.
    pub timeout: Duration,
    /// The longest interval between resends.
    pub resend_max: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            socket_path: super::DEFAULT_SOCKET.into(),
            pidfile: None,
            hostprefix: String::new(),
            broadcast: false,
            timeout: Duration::from_secs(10),
            resend_max: Duration::from_secs(62),
        }
    }
}

/// A Go duration: `10s`, `1m30s`, `500ms`, `2h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?} (e.g. 10s, 1m30s, 500ms)");
    let mut rest = s.trim();
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = Duration::ZERO;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let v: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[u..];
        total += Duration::try_from_secs_f64(v * scale).map_err(|_| bad())?;
    }
    Ok(total)
}

/// Parses the flags after `daemon`.
pub fn parse_args(args: &[OsString]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut it = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = it.next() {
        let flag = a.strip_prefix("--").or_else(|| a.strip_prefix('-')).ok_or_else(|| format!("unexpected argument {a:?}"))?;
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (flag.to_string(), None),
        };
        if name == "broadcast" {
            o.broadcast = match inline.as_deref() {
                None | Some("true") | Some("1") => true,
                Some("false") | Some("0") => false,
                Some(v) => return Err(format!("-broadcast={v}: true or false")),
            };
            continue;
        }
        if name == "h" || name == "help" {
            return Err(USAGE.into());
        }
        let mut value = || inline.clone().or_else(|| it.next()).ok_or_else(|| format!("flag needs an argument: -{name}"));
        match name.as_str() {
            "socketpath" => o.socket_path = PathBuf::from(value()?),
            "pidfile" => o.pidfile = Some(PathBuf::from(value()?)),
            "hostprefix" => o.hostprefix = value()?,
            "timeout" => o.timeout = parse_duration(&value()?)?,
            "resendmax" => o.resend_max = parse_duration(&value()?)?,
            // the reference's overall limit for an acquisition's resends; -timeout bounds ours
            "resendtimeout" => drop(parse_duration(&value()?)?),
            _ => return Err(format!("flag provided but not defined: -{name}\n{USAGE}")),
        }
    }
    if o.timeout.is_zero() {
        return Err("-timeout must be more than 0".into());
    }
    Ok(o)
}

pub const USAGE: &str =
    "usage: dhcp daemon [-socketpath PATH] [-pidfile PATH] [-hostprefix PREFIX] [-broadcast] [-timeout 10s] [-resendmax 62s]";

fn log(msg: impl AsRef<str>) {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    eprintln!("{}.{:03} dhcp: {}", t.as_secs(), t.subsec_millis(), msg.as_ref());
}

/// What a lease's thread is told.
const RUN: u8 = 0;
const RELEASE: u8 = 1;
/// Stop without releasing: a new ADD for the same client ID takes over.
const ABANDON: u8 = 2;
/// Stopped by itself: the attachment's namespace or interface is gone.
const GONE: u8 = 3;

/// Where a lease's datagrams go: the attachment's interface, found anew for every exchange. No
/// socket is kept between exchanges: a socket holds its namespace, and with it the container's
/// interface (and the veth's host end), alive after the container is gone.
struct Target {
    netns: String,
    ns: NsId,
    ifname: String,
    mac: Vec<u8>,
}

enum Open {
    /// The namespace or the interface is not the attachment's any more.
    Gone(String),
    Failed(String),
}

impl Target {
    fn socket(&self) -> Result<std::net::UdpSocket, Open> {
        let ns = match NetNs::open(&self.netns) {
            Ok(ns) => ns,
            Err(e) if e.is_not_found() => return Err(Open::Gone(format!("{} is gone", self.netns))),
            Err(e) => return Err(Open::Failed(e.to_string())),
        };
        if ns.id().map_err(|e| Open::Failed(e.to_string()))? != self.ns {
            return Err(Open::Gone(format!("{} is another namespace now", self.netns)));
        }
        let mut nl = Netlink::open_in(&ns).map_err(|e| Open::Failed(e.to_string()))?;
        match nl.link_by_name(&self.ifname) {
            Ok(l) if l.mac == self.mac => {}
            Ok(_) => return Err(Open::Gone(format!("{} in {} is another interface now", self.ifname, self.netns))),
            Err(e) if e.is_not_found() => return Err(Open::Gone(format!("{} is gone from {}", self.ifname, self.netns))),
            Err(e) => return Err(Open::Failed(e.to_string())),
        }
        netkit::udp::bound_to_device(&ns, &self.ifname, CLIENT_PORT).map_err(|e| Open::Failed(e.to_string()))
    }
}

struct Slot {
    ns: NsId,
    ifname: String,
    chaddr: Vec<u8>,
    priority: u32,
    current: Mutex<Lease>,
    stop: AtomicU8,
    done: Mutex<mpsc::Receiver<()>>,
}

struct Daemon {
    opts: Options,
    leases: Mutex<HashMap<String, Arc<Slot>>>,
}

fn internal(m: impl Into<String>) -> CniError {
    CniError::internal(m)
}

/// The CNI result for a lease.
pub fn result_of(lease: &Lease, priority: u32) -> Result100 {
    let addr = ipnet::IpNet::new(IpAddr::V4(lease.address), lease.prefix).expect("a prefix of at most 32");
    Result100 {
        cni_version: cni_types::version::CURRENT.into(),
        interfaces: Vec::<Interface>::new(),
        ips: vec![IpConfig { interface: None, address: addr, gateway: lease.router.map(IpAddr::V4) }],
        routes: lease
            .routes()
            .iter()
            .map(|r| {
                let dst = ipnet::IpNet::new(IpAddr::V4(r.dst), r.prefix).expect("a prefix of at most 32");
                let mut route = Route::new(dst, (!r.gw.is_unspecified()).then_some(IpAddr::V4(r.gw)));
                route.priority = priority;
                if r.gw.is_unspecified() {
                    route.scope = Some(253);
                }
                route
            })
            .collect(),
        dns: Dns::default(),
    }
}

impl Daemon {
    fn stop_slot(&self, slot: &Slot, how: u8) {
        slot.stop.store(how, Ordering::SeqCst);
        // the thread looks at `stop` at least every 200 ms; a release is one datagram
        let _ = slot.done.lock().unwrap_or_else(|e| e.into_inner()).recv_timeout(Duration::from_secs(5));
    }

    fn handle(&self, r: &wire::Request) -> Result<Option<serde_json::Value>, CniError> {
        let stdin = serde_json::to_vec(&r.config).expect("a value serialises");
        let s: Settings = super::load(&stdin, &r.args)?;
        let id = super::client_id(&r.container_id, &s.net, &r.ifname);
        match r.command.as_str() {
            "DEL" => {
                let slot = self.leases.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                if let Some(slot) = slot {
                    self.stop_slot(&slot, RELEASE);
                    log(format!("{id}: released {}", slot.current.lock().unwrap_or_else(|e| e.into_inner()).address));
                }
                Ok(None)
            }
            "CHECK" => {
                let slot = self.leases.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned();
                let slot = slot.ok_or_else(|| internal(format!("dhcp: the daemon holds no lease for {id}")))?;
                if slot.stop.load(Ordering::SeqCst) != RUN {
                    return Err(internal(format!("dhcp: the daemon holds no lease for {id}: its interface is gone")));
                }
                let lease = slot.current.lock().unwrap_or_else(|e| e.into_inner()).clone();
                Ok(Some(serde_json::to_value(result_of(&lease, slot.priority)).expect("a result serialises")))
            }
            _ => self.add(r, &s, id).map(|res| Some(serde_json::to_value(res).expect("a result serialises"))),
        }
    }

    fn add(&self, r: &wire::Request, s: &Settings, id: String) -> Result<Result100, CniError> {
        let path = format!("{}{}", self.opts.hostprefix, r.netns);
        let ns = NetNs::open(&path).map_err(|e| CniError::new(cni_types::error::code::INVALID_NETNS, format!("dhcp: {e}")))?;
        let ns_id = ns.id()?;
        let mut nl = Netlink::open_in(&ns)?;
        let link = nl.link_by_name(&r.ifname)?;
        let existing = self.leases.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned();
        if let Some(slot) = existing {
            // the same namespace (an inode can be reused: the interface's MAC tells them apart)
            if slot.ns == ns_id && slot.ifname == r.ifname && slot.chaddr == link.mac && slot.stop.load(Ordering::SeqCst) == RUN {
                let lease = slot.current.lock().unwrap_or_else(|e| e.into_inner()).clone();
                return Ok(result_of(&lease, s.priority));
            }
            // the attachment was made again (a new namespace): the new one takes the lease over
            self.leases.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
            self.stop_slot(&slot, ABANDON);
        }
        if !link.up {
            nl.set_up(link.index, true)?;
        }
        drop(nl);
        // (this socket, too, is closed once the exchange is over: `Target`)
        let mut sock = netkit::udp::bound_to_device(&ns, &r.ifname, CLIENT_PORT)?;
        drop(ns);
        let target = Target { netns: path, ns: ns_id, ifname: r.ifname.clone(), mac: link.mac.clone() };
        // type 0 (not a hardware address) and the text, as the reference sends it
        let mut client_id = [&[0u8][..], id.as_bytes()].concat();
        let mut provide = s.provide.clone();
        if let Some(i) = provide.iter().position(|(c, _)| *c == super::proto::opt::CLIENT_ID) {
            client_id = provide.remove(i).1;
        }
        let params = Params { chaddr: link.mac.clone(), client_id, request: s.request.clone(), provide, resend_max: self.opts.resend_max };
        let lease = client::acquire(&mut sock, &params, true, Instant::now() + self.opts.timeout, &|| false)
            .map_err(|e| internal(format!("dhcp: no lease for {id} on {} within {:?}: {e}", r.ifname, self.opts.timeout)))?;
        drop(sock);
        log(format!(
            "{id}: leased {}/{} from {} for {}s (T1 {}s, T2 {}s)",
            lease.address, lease.prefix, lease.server, lease.lease_time, lease.t1, lease.t2
        ));
        let (tx, rx) = mpsc::channel();
        let slot = Arc::new(Slot {
            ns: ns_id,
            ifname: r.ifname.clone(),
            chaddr: link.mac.clone(),
            priority: s.priority,
            current: Mutex::new(lease.clone()),
            stop: AtomicU8::new(RUN),
            done: Mutex::new(rx),
        });
        let previous = self.leases.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), slot.clone());
        if let Some(p) = previous {
            self.stop_slot(&p, ABANDON);
        }
        let (broadcast, timeout) = (self.opts.broadcast, self.opts.timeout);
        let thread_slot = slot.clone();
        std::thread::Builder::new()
            .name("lease".into())
            .spawn(move || {
                maintain(&target, &params, &thread_slot, &id, broadcast, timeout);
                let _ = tx.send(());
            })
            .map_err(|e| internal(format!("dhcp: starting the lease's thread: {e}")))?;
        Ok(result_of(&lease, s.priority))
    }
}

/// Waits until `at` or a stop; true when stopped.
fn wait_until(at: Instant, slot: &Slot) -> bool {
    loop {
        if slot.stop.load(Ordering::SeqCst) != RUN {
            return true;
        }
        let now = Instant::now();
        if now >= at {
            return false;
        }
        std::thread::sleep((at - now).min(Duration::from_millis(200)));
    }
}

/// The lease's life after ADD: renew, rebind, start over; RELEASE when told.
fn maintain(target: &Target, p: &Params, slot: &Slot, id: &str, broadcast: bool, timeout: Duration) {
    let stopped = || slot.stop.load(Ordering::SeqCst) != RUN;
    // a socket for one exchange; `None`: wait and try again (`Failed`) or end (`Gone`)
    let open = || match target.socket() {
        Ok(s) => Some(s),
        Err(Open::Gone(why)) => {
            log(format!("{id}: {why}: the lease is dropped"));
            let _ = slot.stop.compare_exchange(RUN, GONE, Ordering::SeqCst, Ordering::SeqCst);
            None
        }
        Err(Open::Failed(why)) => {
            log(format!("{id}: {why}"));
            None
        }
    };
    let mut bound_at = Instant::now();
    let mut renewals = 0u32;
    'life: loop {
        let lease = slot.current.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let secs = |s: u32| Duration::from_secs(s as u64);
        let (t1, t2, end) = (bound_at + secs(lease.t1), bound_at + secs(lease.t2), bound_at + secs(lease.lease_time));
        if wait_until(t1, slot) {
            break;
        }
        // RENEWING until T2, then REBINDING until the lease ends
        for (rebind, until) in [(broadcast, t2), (true, end)] {
            let mut pause = Duration::from_secs(1);
            while Instant::now() < until {
                let started = Instant::now();
                let outcome = match open() {
                    Some(mut sock) => client::renew(&mut sock, p, &lease, rebind, until, &stopped),
                    None => Err(client::Error::Io("no socket".into())),
                };
                match outcome {
                    Ok(l) => {
                        renewals += 1;
                        log(format!("{id}: renewed {} ({} renewals), {}s more (T1 {}s)", l.address, renewals, l.lease_time, l.t1));
                        if l.address != lease.address {
                            log(format!("{id}: the server moved the lease from {} to {}", lease.address, l.address));
                        }
                        *slot.current.lock().unwrap_or_else(|e| e.into_inner()) = l;
                        bound_at = started;
                        continue 'life;
                    }
                    Err(_) if stopped() => break 'life,
                    Err(client::Error::Nak(m)) => {
                        log(format!("{id}: the server refused the renewal ({m}); acquiring anew"));
                        break;
                    }
                    Err(e) => {
                        log(format!("{id}: renewing {}: {e}", lease.address));
                        // a send that fails at once (the interface is gone) waits before trying again
                        if wait_until((Instant::now() + pause).min(until), slot) {
                            break 'life;
                        }
                        pause = (pause * 2).min(p.resend_max.max(Duration::from_secs(1)));
                    }
                }
            }
        }
        // INIT again: the lease ran out or was refused
        let mut pause = Duration::from_secs(1);
        loop {
            if stopped() {
                break 'life;
            }
            let started = Instant::now();
            let outcome = match open() {
                Some(mut sock) => client::acquire(&mut sock, p, true, Instant::now() + timeout, &stopped),
                None => Err(client::Error::Io("no socket".into())),
            };
            match outcome {
                Ok(l) => {
                    log(format!("{id}: leased {} anew", l.address));
                    *slot.current.lock().unwrap_or_else(|e| e.into_inner()) = l;
                    bound_at = started;
                    continue 'life;
                }
                Err(e) => {
                    log(format!("{id}: acquiring: {e}"));
                    if wait_until(Instant::now() + pause, slot) {
                        break 'life;
                    }
                    pause = (pause * 2).min(p.resend_max.max(Duration::from_secs(1)));
                }
            }
        }
    }
    if slot.stop.load(Ordering::SeqCst) == RELEASE {
        let lease = slot.current.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match target.socket() {
            Ok(mut sock) => {
                if let Err(e) = client::release(&mut sock, p, &lease) {
                    log(format!("{id}: {e}"));
                }
            }
            Err(Open::Gone(why) | Open::Failed(why)) => log(format!("{id}: no release sent: {why}")),
        }
    }
}

fn serve(d: &Daemon, stream: UnixStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut line = Vec::new();
    let read = std::io::BufReader::new(&stream).take_line(&mut line);
    // the reference's plugin speaks Go's net/rpc over HTTP: tell it in words it prints
    if line.starts_with(b"CONNECT ") {
        let _ = (&stream).write_all(b"HTTP/1.0 501 rcni's DHCP daemon speaks rcni's protocol, not Go net/rpc: use rcni's dhcp plugin\n\n");
        return;
    }
    let resp = match read.map_err(|e| format!("reading the request: {e}")).and_then(|()| wire::parse_request(&line)) {
        Err(m) => wire::Response { result: None, error: Some(CniError::decoding(format!("dhcp daemon: {m}"))) },
        Ok(r) => match d.handle(&r) {
            Ok(result) => wire::Response { result, error: None },
            Err(e) => {
                log(format!("{} {}/{}: {}", r.command, r.container_id, r.ifname, e.msg));
                wire::Response { result: None, error: Some(e) }
            }
        },
    };
    let mut out = serde_json::to_vec(&resp).expect("a response serialises");
    out.push(b'\n');
    let _ = (&stream).write_all(&out);
}

trait TakeLine {
    fn take_line(self, out: &mut Vec<u8>) -> std::io::Result<()>;
}

impl<R: BufRead> TakeLine for R {
    fn take_line(self, out: &mut Vec<u8>) -> std::io::Result<()> {
        self.take(wire::MAX_REQUEST as u64 + 1).read_until(b'\n', out)?;
        if out.last() == Some(&b'\n') {
            out.pop();
        }
        Ok(())
    }
}

/// The socket systemd handed over (`LISTEN_FDS`, `LISTEN_PID`), if any.
fn activated() -> Option<UnixListener> {
    use std::os::fd::FromRawFd;
    let pid: u32 = std::env::var("LISTEN_PID").ok()?.parse().ok()?;
    let n: u32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    if pid != std::process::id() || n < 1 {
        return None;
    }
    // SAFETY: systemd passes the listening socket as descriptor 3, which nothing else owns.
    Some(unsafe { UnixListener::from_raw_fd(3) })
}

fn listen(path: &Path) -> Result<UnixListener, String> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    if std::fs::symlink_metadata(path).is_ok() {
        if UnixStream::connect(path).is_ok() {
            return Err(format!("{}: another DHCP daemon is listening there", path.display()));
        }
        std::fs::remove_file(path).map_err(|e| format!("removing the stale socket {}: {e}", path.display()))?;
    }
    let l = UnixListener::bind(path).map_err(|e| format!("listening on {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| format!("chmod {}: {e}", path.display()))?;
    Ok(l)
}

fn write_pidfile(path: &Path) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path)
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    let _ = f.set_permissions(std::fs::Permissions::from_mode(0o644));
    writeln!(f, "{}", std::process::id()).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Blocks SIGTERM, SIGINT and SIGHUP in every thread and waits for them on one: the socket
/// and pidfile are removed before the process exits.
fn on_signals(cleanup: Vec<PathBuf>) {
    // SAFETY: sigset operations on a local set; pthread_sigmask on the calling thread (before
    // any other thread starts, so they all inherit the mask).
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: `set` is a valid signal set; sigwait writes the signal number to `sig`.
        unsafe { libc::sigwait(&set, &mut sig) };
        for p in &cleanup {
            let _ = std::fs::remove_file(p);
        }
        log(format!("signal {sig}: exiting (leases are not released)"));
        std::process::exit(0);
    });
}

/// `dhcp daemon FLAGS…`: parses the flags and runs the daemon (exit code 2 for bad flags).
pub fn main(args: &[OsString]) -> i32 {
    match parse_args(args) {
        Ok(o) => run(o),
        Err(e) if e == USAGE => {
            println!("{USAGE}");
            0
        }
        Err(e) => {
            eprintln!("dhcp daemon: {e}");
            2
        }
    }
}

/// Runs the daemon until a signal; the exit code if it cannot start.
pub fn run(opts: Options) -> i32 {
    let mut cleanup = Vec::new();
    let listener = match activated() {
        Some(l) => l,
        None => match listen(&opts.socket_path) {
            Ok(l) => {
                cleanup.push(opts.socket_path.clone());
                l
            }
            Err(e) => {
                eprintln!("dhcp daemon: {e}");
                return 1;
            }
        },
    };
    if let Some(p) = &opts.pidfile {
        if let Err(e) = write_pidfile(p) {
            eprintln!("dhcp daemon: {e}");
            for p in &cleanup {
                let _ = std::fs::remove_file(p);
            }
            return 1;
        }
        cleanup.push(p.clone());
    }
    on_signals(cleanup);
    log(format!("listening on {} (timeout {:?}, resendmax {:?})", opts.socket_path.display(), opts.timeout, opts.resend_max));
    let d: &'static Daemon = Box::leak(Box::new(Daemon { opts, leases: Mutex::new(HashMap::new()) }));
    for stream in listener.incoming() {
        match stream {
            Ok(s) => {
                if let Err(e) = std::thread::Builder::new().name("request".into()).spawn(move || serve(d, s)) {
                    log(format!("cannot serve a request: {e}"));
                }
            }
            Err(e) => {
                log(format!("accepting: {e}"));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn flags() {
        assert_eq!(parse_args(&[]).unwrap(), Options::default());
        let o = parse_args(&args(&[
            "-socketpath",
            "/tmp/d.sock",
            "--pidfile=/tmp/d.pid",
            "-hostprefix",
            "/host",
            "-broadcast",
            "-timeout",
            "3s",
            "-resendmax=1m2s",
            "-resendtimeout",
            "208s",
        ]))
        .unwrap();
        assert_eq!(o.socket_path, PathBuf::from("/tmp/d.sock"));
        assert_eq!(o.pidfile, Some(PathBuf::from("/tmp/d.pid")));
        assert_eq!((o.hostprefix.as_str(), o.broadcast), ("/host", true));
        assert_eq!((o.timeout, o.resend_max), (Duration::from_secs(3), Duration::from_secs(62)));
        assert!(!parse_args(&args(&["-broadcast=false"])).unwrap().broadcast);
        assert!(parse_args(&args(&["-nope"])).unwrap_err().contains("not defined"));
        assert!(parse_args(&args(&["-timeout"])).unwrap_err().contains("needs an argument"));
        assert!(parse_args(&args(&["-timeout", "10x"])).is_err());
        assert!(parse_args(&args(&["-timeout", "0"])).is_err());
        assert!(parse_args(&args(&["stray"])).is_err());
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2h0m").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    }

    #[test]
    fn results() {
        let l = Lease {
            address: "10.9.0.50".parse().unwrap(),
            prefix: 24,
            server: "10.9.0.1".parse().unwrap(),
            router: Some("10.9.0.1".parse().unwrap()),
            lease_time: 120,
            t1: 15,
            t2: 105,
            classless: vec![],
            static_routes: vec![],
            dns: vec![],
            domain: None,
        };
        let r = serde_json::to_string(&result_of(&l, 0)).unwrap();
        assert_eq!(
            r,
            r#"{"cniVersion":"1.1.0","ips":[{"address":"10.9.0.50/24","gateway":"10.9.0.1"}],"routes":[{"dst":"0.0.0.0/0","gw":"10.9.0.1"}]}"#
        );
        let mut on_link = l.clone();
        on_link.classless =
            vec![super::super::proto::LeaseRoute { dst: "10.20.0.0".parse().unwrap(), prefix: 16, gw: "0.0.0.0".parse().unwrap() }];
        let r = serde_json::to_string(&result_of(&on_link, 5).routes).unwrap();
        assert_eq!(r, r#"[{"dst":"10.20.0.0/16","priority":5,"scope":253}]"#);
    }
}

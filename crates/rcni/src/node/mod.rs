//! `rcni node`: pods across nodes. The agent (`run`) holds a subnet lease in etcd in flannel's
//! layout, writes the node's network for the runtime, and keeps a route (host-gw) or tunnel
//! (vxlan) to every other node's subnet; `ls` lists the cluster's leases.
//!
//! `model.rs` is the pure part (keys, JSON, subnet choice, files), `etcd.rs` the etcd client,
//! `backend.rs` the data plane seam.

mod backend;
mod etcd;
mod masq;
mod model;

use clap::{Args, Subcommand};
use etcd::{Client, Event};
use ipnet::Ipv4Net;
use model::{Config, LeaseValue};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

macro_rules! log {
    ($($a:tt)*) => {{
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        eprintln!("{}.{:03} rcni node: {}", t.as_secs(), t.subsec_millis(), format!($($a)*));
    }};
}
pub(crate) use log;

#[derive(Subcommand)]
pub enum NodeCmd {
    /// Run the node agent: hold this node's subnet lease, write its network, route to the others
    Run(RunArgs),
    /// List the cluster's subnet leases: node, subnet, public IP, backend, expiry
    Ls(LsArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// etcd client URLs, comma-separated (http:// only)
    #[arg(long, value_name = "URL[,URL]")]
    etcd_endpoints: String,
    /// This node's name (recorded in its lease as NodeName)
    #[arg(long)]
    node_name: String,
    /// The address other nodes reach this one at
    #[arg(long)]
    public_ip: Ipv4Addr,
    /// The cluster's pod network (written to <prefix>/config if absent)
    #[arg(long, default_value = "10.244.0.0/16")]
    network_cidr: Ipv4Net,
    /// Prefix length of each node's subnet
    #[arg(long, default_value_t = 24)]
    subnet_len: u8,
    #[arg(long, default_value = "vxlan", value_parser = ["vxlan", "host-gw"])]
    backend: String,
    /// The vxlan network identifier
    #[arg(long, default_value_t = 1)]
    vni: u32,
    /// The underlay interface (default: the one holding --public-ip)
    #[arg(long, default_value = "")]
    iface: String,
    /// The etcd key prefix (flannel's default)
    #[arg(long, default_value = "/coreos.com/network")]
    prefix: String,
    /// Where the conflist rcni-cluster is written
    #[arg(long, default_value = "/etc/cni/net.d")]
    conf_dir: PathBuf,
    /// flannel-style environment file
    #[arg(long, default_value = "/run/flannel/subnet.env")]
    subnet_file: PathBuf,
    /// The agent's own state (the subnet it held, for a restart)
    #[arg(long, default_value = "/var/lib/rcni/node")]
    state_dir: PathBuf,
    /// TTL of the etcd lease the subnet is attached to; it is renewed every TTL/3
    #[arg(long, default_value_t = 60)]
    lease_ttl: i64,
    /// On SIGTERM/SIGINT revoke the lease (the subnet is freed, peers drop their routes)
    /// instead of leaving it to expire
    #[arg(long)]
    release_on_exit: bool,
    /// Do not masquerade pods' traffic leaving the cluster network (FLANNEL_IPMASQ=false)
    #[arg(long)]
    no_ip_masq: bool,
}

#[derive(Args)]
pub struct LsArgs {
    #[arg(long, value_name = "URL[,URL]")]
    etcd_endpoints: String,
    #[arg(long, default_value = "/coreos.com/network")]
    prefix: String,
    /// table (default) or json
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
}

pub fn run(cmd: NodeCmd) -> i32 {
    match cmd {
        NodeCmd::Run(a) => crate::exit::exit_code("node run", agent(a)),
        NodeCmd::Ls(a) => crate::exit::exit_code("node ls", ls(a)),
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Sleeps `ms`, waking early on a signal.
fn nap(ms: u64) {
    let end = Instant::now() + Duration::from_millis(ms);
    while !stopping() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Calls `f` until it succeeds, with backoff; None when a signal came first.
fn retry<T>(what: &str, mut f: impl FnMut() -> Result<T, String>) -> Option<T> {
    let mut n = 0;
    loop {
        match f() {
            Ok(v) => return Some(v),
            Err(e) => {
                let wait = model::backoff_ms(n);
                log!("{what}: {e} (retrying in {} ms)", wait);
                n += 1;
                nap(wait);
                if stopping() {
                    return None;
                }
            }
        }
    }
}

/// Reads `<prefix>/config`, writing `want` if there is none. A differing stored config is an
/// error: every node must agree on the network.
fn ensure_config(c: &Client, prefix: &str, want: &Config) -> Result<Result<Config, String>, String> {
    let key = model::config_key(prefix);
    loop {
        if let Some(kv) = c.get(&key)? {
            let stored = match Config::parse(&kv.value) {
                Ok(s) => s,
                Err(e) => return Ok(Err(format!("{key}: {e}"))),
            };
            return Ok(match want.conflict(&stored) {
                None => Ok(stored),
                Some(d) => Err(format!(
                    "{key} in etcd says {d}: start with the cluster's flags (--network-cidr {} --subnet-len {} --backend {}), or, if no node uses it any more, remove it: etcdctl del {key}",
                    stored.network, stored.subnet_len, stored.backend.kind
                )),
            });
        }
        if c.create(&key, &want.to_json(), 0)? {
            log!("wrote {key}: {}", want.to_json());
        }
    }
}

/// The leases under `<prefix>/subnets/` by subnet, with their stored keys.
type Leases = BTreeMap<Ipv4Net, (etcd::Kv, LeaseValue)>;

fn subnets(c: &Client, prefix: &str) -> Result<(Leases, i64), String> {
    let (kvs, rev) = c.list(&model::subnets_prefix(prefix))?;
    let mut m = BTreeMap::new();
    for kv in kvs {
        let Some(s) = model::parse_subnet_key(prefix, &kv.key) else { continue };
        match LeaseValue::parse(&kv.value) {
            Ok(v) => {
                m.insert(s, (kv, v));
            }
            Err(e) => log!("{}: {e}", kv.key),
        }
    }
    Ok((m, rev))
}

/// Claims a subnet under `lease`: the one whose lease names our public IP and node, else the one
/// in our state file if free, else the first free one. Every write is a transaction that fails
/// when another agent got there first, so concurrent agents never share a subnet.
fn claim(c: &Client, prefix: &str, cfg: &Config, me: &LeaseValue, previous: Option<Ipv4Net>, lease: i64) -> Result<Ipv4Net, String> {
    for _ in 0..20 {
        let (taken, _) = subnets(c, prefix)?;
        let mine = taken.iter().find(|(s, (_, v))| {
            v.public_ip == me.public_ip && (v.node_name == me.node_name || v.node_name.is_empty()) && cfg.network.contains(*s)
        });
        if let Some((s, (kv, _))) = mine {
            if c.replace(&kv.key, kv.mod_revision, &me.to_json(), lease)? {
                return Ok(*s);
            }
            continue;
        }
        let prev = previous.filter(|p| cfg.network.contains(p) && p.prefix_len() == cfg.subnet_len && !taken.contains_key(p));
        let held: Vec<Ipv4Net> = taken.keys().copied().collect();
        let Some(s) = prev.or_else(|| model::free_subnet(cfg, &held)) else {
            return Err(format!("no free /{} left in {}", cfg.subnet_len, cfg.network));
        };
        if c.create(&model::subnet_key(prefix, s), &me.to_json(), lease)? {
            return Ok(s);
        }
    }
    Err("could not claim a subnet after 20 attempts (too many agents racing?)".into())
}

fn write_file(path: &Path, body: &str) -> Result<(), String> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, body).and_then(|_| std::fs::rename(&tmp, path)).map_err(|e| format!("writing {}: {e}", path.display()))
}

const NETWORK: &str = "rcni-cluster";
const BRIDGE: &str = "rcni-cl0";

fn agent(a: RunArgs) -> Result<i32, String> {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    if a.lease_ttl < 5 {
        return Err("--lease-ttl must be at least 5 seconds".into());
    }
    let c = Arc::new(Client::new(&a.etcd_endpoints)?);
    let mut backend = backend::for_kind(&a.backend, &a.iface, a.public_ip, a.vni)?;
    let want = Config {
        network: a.network_cidr.trunc(),
        subnet_len: a.subnet_len,
        backend: model::BackendConfig { kind: a.backend.clone(), vni: (a.backend == "vxlan").then_some(a.vni) },
    };
    let Some(cfg) = retry("reading the config", || ensure_config(&c, &a.prefix, &want)) else { return Ok(0) };
    let cfg = cfg?;
    let state = a.state_dir.join("subnet");
    let previous = std::fs::read_to_string(&state).ok().and_then(|s| s.trim().parse().ok());

    let Some(lease) = retry("granting a lease", || c.grant(a.lease_ttl)) else { return Ok(0) };
    let mut me = LeaseValue {
        public_ip: a.public_ip,
        backend_type: backend.kind().into(),
        backend_data: serde_json::Value::Null,
        node_name: a.node_name.clone(),
    };
    let Some(own) = retry("claiming a subnet", || claim(&c, &a.prefix, &cfg, &me, previous, lease)) else { return Ok(0) };
    // the backend's data (vxlan's VTEP MAC) is known once the device exists: written afterwards
    me.backend_data = backend.init(own)?;
    let key = model::subnet_key(&a.prefix, own);
    if !me.backend_data.is_null() {
        let done = retry("publishing the backend data", || {
            let kv = c.get(&key)?.ok_or("our lease vanished")?;
            c.replace(&key, kv.mod_revision, &me.to_json(), lease)
        });
        if done.is_none() {
            return Ok(0);
        }
    }
    log!("subnet {own} (lease {lease:x}, TTL {} s) for {} at {}", a.lease_ttl, a.node_name, a.public_ip);
    write_file(&state, &format!("{own}\n"))?;
    let mtu = backend.mtu();
    let list = model::conflist(NETWORK, BRIDGE, own, cfg.network, mtu);
    write_file(&a.conf_dir.join(format!("10-{NETWORK}.conflist")), &serde_json::to_string_pretty(&list).expect("json"))?;
    let masq = !a.no_ip_masq;
    if masq {
        masq::setup(own, cfg.network)?;
    }
    write_file(&a.subnet_file, &model::subnet_env(cfg.network, own, mtu, masq))?;
    if let Err(e) = netkit::sysctl::write("net.ipv4.ip_forward", "1") {
        log!("enabling net.ipv4.ip_forward: {e}");
    }

    let lease_id = Arc::new(AtomicI64::new(lease));
    let keeper = {
        let (c, lease_id, key, value, ttl) = (c.clone(), lease_id.clone(), key.clone(), me.to_json(), a.lease_ttl);
        std::thread::spawn(move || keep_alive(&c, &lease_id, &key, &value, ttl))
    };

    // resync, then watch; after a lost watch, resync again
    let mut failures = 0;
    while !stopping() {
        let (mut peers, rev): (BTreeMap<Ipv4Net, LeaseValue>, i64) = match subnets(&c, &a.prefix) {
            Ok((m, rev)) => {
                let peers = m.into_iter().map(|(s, (_, v))| (s, v)).collect();
                apply(&mut *backend, &peers, own);
                failures = 0;
                (peers, rev)
            }
            Err(e) => {
                let wait = model::backoff_ms(failures);
                log!("resync: {e} (data plane kept; retrying in {wait} ms)");
                failures += 1;
                nap(wait);
                continue;
            }
        };
        let prefix = a.prefix.clone();
        let r = c.watch(&model::subnets_prefix(&a.prefix), rev + 1, &stopping, &mut |events, _| {
            for e in events {
                match e {
                    Event::Put(kv) => {
                        if let (Some(s), Ok(v)) = (model::parse_subnet_key(&prefix, &kv.key), LeaseValue::parse(&kv.value)) {
                            peers.insert(s, v);
                        }
                    }
                    Event::Delete(k) => {
                        if let Some(s) = model::parse_subnet_key(&prefix, &k) {
                            peers.remove(&s);
                        }
                    }
                }
            }
            apply(&mut *backend, &peers, own);
            true
        });
        if let Err(e) = r {
            let wait = model::backoff_ms(failures);
            log!("{e} (resyncing in {wait} ms)");
            failures += 1;
            nap(wait);
        }
    }
    let _ = keeper.join();
    if a.release_on_exit {
        let id = lease_id.load(Ordering::SeqCst);
        match c.delete(&key).and_then(|_| c.revoke(id)) {
            Ok(()) => log!("released {own} (lease {id:x} revoked)"),
            Err(e) => log!("releasing {own}: {e} (the lease expires in at most {} s)", a.lease_ttl),
        }
        let _ = std::fs::remove_file(&state);
    } else {
        log!("exiting; {own} stays leased until its TTL runs out");
    }
    Ok(0)
}

fn apply(b: &mut dyn backend::Backend, all: &BTreeMap<Ipv4Net, LeaseValue>, own: Ipv4Net) {
    let peers = model::peers(all, own);
    if let Err(e) = b.apply(&peers) {
        log!("{}: {e}", b.kind());
    }
}

/// Renews the lease every TTL/3. When etcd lost it (an outage longer than the TTL), grants a
/// new one and puts our key back if it is absent or still ours.
fn keep_alive(c: &Client, lease_id: &AtomicI64, key: &str, value: &str, ttl: i64) {
    let period = (ttl as u64 * 1000 / 3).max(1000);
    let mut wait = period;
    while !stopping() {
        nap(wait);
        if stopping() {
            return;
        }
        let id = lease_id.load(Ordering::SeqCst);
        let r = c.keepalive(id).and_then(|got| {
            if got > 0 {
                return Ok(());
            }
            log!("lease {id:x} is gone: taking {key} back under a new lease");
            let new = c.grant(ttl)?;
            lease_id.store(new, Ordering::SeqCst);
            let ours = match c.get(key)? {
                None => c.create(key, value, new)?,
                Some(kv) if kv.value == value.as_bytes() => c.replace(key, kv.mod_revision, value, new)?,
                Some(_) => false,
            };
            if !ours {
                log!("{key} now belongs to another node: restart this agent to get a new subnet");
            }
            Ok(())
        });
        wait = match r {
            Ok(()) => period,
            Err(e) => {
                log!("lease keepalive: {e}");
                1000
            }
        };
    }
}

fn ls(a: LsArgs) -> Result<i32, String> {
    let c = Client::new(&a.etcd_endpoints)?;
    let (m, _) = subnets(&c, &a.prefix)?;
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for (s, (kv, v)) in &m {
        let ttl = if kv.lease == 0 { None } else { Some(c.time_to_live(kv.lease)?) };
        json.push(serde_json::json!({
            "node": v.node_name, "subnet": s.to_string(), "publicIP": v.public_ip.to_string(),
            "backend": v.backend_type, "backendData": v.backend_data, "lease": format!("{:x}", kv.lease), "ttl": ttl,
        }));
        let exp = match ttl {
            None => "never (reservation)".to_string(),
            Some(t) if t <= 0 => "expired".to_string(),
            Some(t) => format!("{t}s"),
        };
        rows.push([
            if v.node_name.is_empty() { "-".into() } else { v.node_name.clone() },
            s.to_string(),
            v.public_ip.to_string(),
            v.backend_type.clone(),
            exp,
        ]);
    }
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&json).expect("json"));
    } else {
        crate::shared::print_table(&["NODE", "SUBNET", "PUBLIC IP", "BACKEND", "EXPIRES"], &rows);
    }
    Ok(0)
}

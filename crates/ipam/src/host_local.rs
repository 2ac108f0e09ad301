//! host-local IPAM: configuration and allocation with the reference's rules (round-robin from
//! the last reserved address, the gateway skipped, requested addresses honoured, one address per
//! range set, dual-stack through several range sets).

use crate::range::{Range, RangeSet};
use crate::store::{Store, DEFAULT_DATA_DIR};
use cni_types::capabilities::IpRange;
use cni_types::error::code;
use cni_types::result::{parse_cidr, parse_ip, Dns, IpConfig, Result100, Route};
use cni_types::{version, CniArgs, CniError, NetConf};
use serde::Deserialize;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The `ipam` section host-local reads.
#[derive(Debug, Default, Deserialize)]
struct IpamSection {
    #[serde(default)]
    routes: Option<Vec<Route>>,
    #[serde(rename = "dataDir", default)]
    data_dir: Option<String>,
    #[serde(rename = "resolvConf", default)]
    resolv_conf: Option<String>,
    #[serde(default)]
    ranges: Option<Vec<Vec<IpRange>>>,
    // the legacy single range
    #[serde(default)]
    subnet: Option<String>,
    #[serde(rename = "rangeStart", default)]
    range_start: Option<String>,
    #[serde(rename = "rangeEnd", default)]
    range_end: Option<String>,
    #[serde(default)]
    gateway: Option<String>,
}

/// A host-local configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    pub cni_version: String,
    pub routes: Vec<Route>,
    pub data_dir: PathBuf,
    pub resolv_conf: Option<PathBuf>,
    pub ranges: Vec<RangeSet>,
    /// Requested addresses (`CNI_ARGS` `IP=`, `args.cni.ips`, `runtimeConfig.ips`).
    pub requested: Vec<IpAddr>,
}

fn invalid(msg: impl Into<String>) -> CniError {
    CniError::invalid_config(msg)
}

/// An address as Go's `ip.IP` reads it: `10.0.0.5` or `10.0.0.5/24` (the prefix is ignored).
fn parse_requested(s: &str) -> Option<IpAddr> {
    if s.contains('/') {
        parse_cidr(s).map(|n| n.addr())
    } else {
        parse_ip(s)
    }
}

fn section(conf: &NetConf) -> Result<IpamSection, CniError> {
    let Some(ipam) = &conf.ipam else {
        return Err(invalid("IPAM config missing 'ipam' key"));
    };
    IpamSection::deserialize(serde_json::Value::Object(ipam.rest.clone())).map_err(|e| invalid(format!("invalid ipam config: {e}")))
}

/// `dataDir`, or its default. A relative one would depend on the runtime's working directory (two
/// runtimes would keep two stores of one network), so it is refused.
fn data_dir(s: &IpamSection) -> Result<PathBuf, CniError> {
    let d = PathBuf::from(s.data_dir.as_deref().filter(|d| !d.is_empty()).unwrap_or(DEFAULT_DATA_DIR));
    if d.is_relative() {
        return Err(invalid(format!("dataDir {:?} is not an absolute path", d.display().to_string())));
    }
    Ok(d)
}

/// Reads and validates host-local's configuration from the plugin's stdin and `CNI_ARGS`.
pub fn load_config(stdin: &[u8], cni_args: &str) -> Result<Config, CniError> {
    let conf: NetConf = serde_json::from_slice(stdin).map_err(|e| CniError::decoding(format!("failed to load netconf: {e}")))?;
    let s = section(&conf)?;
    let mut requested = Vec::new();
    if !cni_args.is_empty() {
        let args =
            CniArgs::parse_known(cni_args, &["IP"]).map_err(|e| CniError::new(code::INVALID_ENVIRONMENT_VARIABLES, e.to_string()))?;
        if let Some(ip) = args.get("IP") {
            requested.push(
                parse_requested(ip)
                    .ok_or_else(|| CniError::new(code::INVALID_ENVIRONMENT_VARIABLES, format!("invalid IP address in CNI_ARGS: {ip}")))?,
            );
        }
    }
    if let Some(ips) = conf.args_cni("ips") {
        let ips: Vec<String> = serde_json::from_value(ips.clone()).map_err(|e| invalid(format!("invalid args.cni.ips: {e}")))?;
        for ip in ips {
            requested.push(parse_requested(&ip).ok_or_else(|| invalid(format!("invalid IP address in args.cni.ips: {ip}")))?);
        }
    }
    for ip in &conf.runtime_config.ips {
        requested.push(parse_requested(ip).ok_or_else(|| invalid(format!("invalid IP address in runtimeConfig.ips: {ip}")))?);
    }

    let mut raw_sets: Vec<Vec<IpRange>> = conf.runtime_config.ip_ranges.clone();
    if let Some(subnet) = s.subnet.as_ref().filter(|s| !s.is_empty()) {
        raw_sets.push(vec![IpRange {
            subnet: subnet.clone(),
            range_start: s.range_start.clone().unwrap_or_default(),
            range_end: s.range_end.clone().unwrap_or_default(),
            gateway: s.gateway.clone().unwrap_or_default(),
        }]);
    }
    raw_sets.extend(s.ranges.clone().unwrap_or_default());
    if raw_sets.is_empty() {
        return Err(invalid("no IP ranges specified"));
    }
    let mut ranges = Vec::with_capacity(raw_sets.len());
    for (i, set) in raw_sets.iter().enumerate() {
        ranges.push(RangeSet::from_config(set).map_err(|e| invalid(format!("invalid range set {i}: {e}")))?);
    }
    let v4 = ranges.iter().filter(|r| r.is_ipv4()).count();
    if (v4 > 1 || ranges.len() - v4 > 1) && !version::greater_than_or_equal(&conf.cni_version, "0.3.0").unwrap_or(false) {
        return Err(CniError::new(
            code::INCOMPATIBLE_CNI_VERSION,
            format!("CNI version {} does not support more than 1 address per family", conf.cni_version),
        ));
    }
    for i in 0..ranges.len() {
        for j in i + 1..ranges.len() {
            if ranges[i].overlaps(&ranges[j]) {
                return Err(invalid(format!("range set {i} overlaps with {j}")));
            }
        }
    }
    Ok(Config {
        name: conf.name.clone(),
        cni_version: conf.cni_version.clone(),
        routes: s.routes.clone().unwrap_or_default(),
        data_dir: data_dir(&s)?,
        resolv_conf: s.resolv_conf.as_ref().filter(|p| !p.is_empty()).map(PathBuf::from),
        ranges,
        requested,
    })
}

/// The network name and data directory, for a DEL whose configuration is otherwise broken: the
/// addresses of a container can be released without knowing its ranges. `None` when the
/// `dataDir` is relative: no ADD used it, so there is nothing to release.
pub fn store_location(stdin: &[u8]) -> Result<Option<(String, PathBuf)>, CniError> {
    let conf: NetConf = serde_json::from_slice(stdin).map_err(|e| CniError::decoding(format!("failed to load netconf: {e}")))?;
    // only `dataDir` counts here: the rest of the section may be what made the config invalid
    let configured = conf.ipam.as_ref().and_then(|i| i.rest.get("dataDir")).and_then(|d| d.as_str()).map(String::from);
    let Ok(dir) = data_dir(&IpamSection { data_dir: configured, ..Default::default() }) else { return Ok(None) };
    if conf.name.is_empty() {
        return Err(invalid("missing network name"));
    }
    Ok(Some((conf.name, dir)))
}

/// `resolv.conf` → DNS settings (`nameserver`, `domain`, `search`, `options`).
pub fn parse_resolv_conf(path: &Path) -> Result<Dns, CniError> {
    let text = std::fs::read_to_string(path).map_err(|e| CniError::io(format!("reading {}: {e}", path.display())))?;
    Ok(Dns::from_resolv_conf(&text))
}

/// I/O failures are code 5; a lock another process holds past the bound is "try again later".
fn io_err(e: std::io::Error) -> CniError {
    if e.kind() == std::io::ErrorKind::TimedOut {
        return CniError::new(cni_types::error::code::TRY_AGAIN_LATER, e.to_string());
    }
    CniError::io(e.to_string())
}

/// Round-robin iteration over a range set from the address after the last reserved one.
struct RangeIter<'a> {
    set: &'a RangeSet,
    idx: usize,
    cur: Option<IpAddr>,
    start: Option<IpAddr>,
}

impl<'a> RangeIter<'a> {
    fn new(set: &'a RangeSet, last: Option<IpAddr>) -> Self {
        match last.and_then(|l| set.0.iter().position(|r| r.contains(&l)).map(|i| (i, l))) {
            Some((idx, l)) => RangeIter { set, idx, cur: Some(l), start: None },
            None => RangeIter { set, idx: 0, cur: None, start: Some(set.0[0].range_start) },
        }
    }
}

impl<'a> Iterator for RangeIter<'a> {
    type Item = (IpAddr, &'a Range);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let mut r = &self.set.0[self.idx];
            let Some(cur) = self.cur else {
                self.cur = Some(r.range_start);
                self.start = Some(r.range_start);
                if r.range_start == r.gateway {
                    continue;
                }
                return Some((r.range_start, r));
            };
            let next = if cur == r.range_end {
                self.idx = (self.idx + 1) % self.set.0.len();
                r = &self.set.0[self.idx];
                r.range_start
            } else {
                crate::ip::add(cur, 1)
            };
            self.cur = Some(next);
            match self.start {
                None => self.start = Some(next),
                Some(s) if s == next => return None,
                Some(_) => {}
            }
            if next == r.gateway {
                continue;
            }
            return Some((next, r));
        }
    }
}

/// Allocates one address from range set `idx` for `(id, ifname)`, which holds `held` already.
fn get(
    store: &Store,
    set: &RangeSet,
    idx: usize,
    (id, ifname): (&str, &str),
    held: &[IpAddr],
    requested: Option<IpAddr>,
) -> Result<IpConfig, CniError> {
    let internal = CniError::internal;
    let (ip, range) = match requested {
        Some(ip) => {
            let r = set.range_for(&ip).map_err(invalid)?;
            if ip == r.gateway {
                return Err(invalid(format!("requested ip {ip} is subnet's gateway")));
            }
            if !store.reserve(id, ifname, &ip, idx).map_err(io_err)? {
                return Err(internal(format!("requested IP address {ip} is not available in range set {set}")));
            }
            (ip, r)
        }
        None => {
            if let Some(held) = held.iter().find(|ip| set.contains(ip)) {
                return Err(internal(format!("{held} has been allocated to {id}, duplicate allocation is not allowed")));
            }
            let mut found = None;
            for (ip, r) in RangeIter::new(set, store.last_reserved_ip(idx)) {
                // (the store's lock is held: a lease seen here stays taken)
                if !store.is_reserved(&ip) && store.reserve(id, ifname, &ip, idx).map_err(io_err)? {
                    found = Some((ip, r));
                    break;
                }
            }
            found.ok_or_else(|| internal(format!("no IP addresses available in range set: {set}")))?
        }
    };
    let address = ipnet::IpNet::new(ip, range.subnet.prefix_len()).expect("prefix of the subnet");
    Ok(IpConfig { interface: None, address, gateway: Some(range.gateway) })
}

/// ADD: one address per range set, all requested addresses honoured or nothing kept. On failure
/// only the addresses taken by this call are given back (Go's plugin releases everything the
/// container holds, including a lease it had before a duplicate ADD).
pub fn allocate(conf: &Config, id: &str, ifname: &str) -> Result<Result100, CniError> {
    let mut result = Result100 { cni_version: version::CURRENT.into(), ..Default::default() };
    if let Some(p) = &conf.resolv_conf {
        result.dns = parse_resolv_conf(p)?;
    }
    // requested addresses no range set can serve (one per set) fail the ADD before the store is
    // touched: allocating the other sets first would move their last_reserved_ip for nothing
    let mut unserved: Vec<IpAddr> = conf.requested.clone();
    for set in &conf.ranges {
        if let Some(p) = unserved.iter().position(|ip| set.contains(ip)) {
            unserved.remove(p);
        }
    }
    if !unserved.is_empty() {
        let list: Vec<String> = unserved.iter().map(|ip| ip.to_string()).collect();
        return Err(invalid(format!("failed to allocate all requested IPs: {}", list.join(" "))));
    }
    let store = Store::open(&conf.data_dir, &conf.name).map_err(io_err)?;
    let mut pending: VecDeque<IpAddr> = conf.requested.iter().copied().collect();
    let undo = |store: &Store, taken: &[IpConfig]| {
        for ipc in taken {
            let _ = store.release_ip(&ipc.address.addr(), id, ifname);
        }
    };
    // what the attachment holds already (range sets never overlap: one look serves them all)
    let held = store.get_by_id_indexed(id, ifname);
    for (idx, set) in conf.ranges.iter().enumerate() {
        let requested = pending.iter().position(|ip| set.contains(ip)).and_then(|p| pending.remove(p));
        match get(&store, set, idx, (id, ifname), &held, requested) {
            Ok(ipc) => result.ips.push(ipc),
            Err(mut e) => {
                undo(&store, &result.ips);
                e.msg = format!("failed to allocate for range {idx}: {}", e.msg);
                return Err(e);
            }
        }
    }
    if !pending.is_empty() {
        undo(&store, &result.ips);
        let list: Vec<String> = pending.iter().map(|ip| ip.to_string()).collect();
        return Err(invalid(format!("failed to allocate all requested IPs: {}", list.join(" "))));
    }
    result.routes = conf.routes.clone();
    Ok(result)
}

/// DEL: releases every address of `(id, ifname)` in the network; unknown IDs are fine, and a
/// network without a store has nothing to release (none is created).
pub fn release(name: &str, data_dir: &Path, id: &str, ifname: &str) -> Result<(), CniError> {
    if !data_dir.join(name).is_dir() {
        return Ok(());
    }
    let store = Store::open(data_dir, name).map_err(io_err)?;
    store.release_by_id(id, ifname).map(|_| ()).map_err(io_err)
}

/// GC: releases the network's leases whose holder is not in `valid`, under the store's lock.
/// A network without a store has nothing to release. Goes on past failures and reports them all.
pub fn gc(name: &str, data_dir: &Path, valid: &std::collections::BTreeSet<(String, String)>) -> Result<(), CniError> {
    if !data_dir.join(name).is_dir() {
        return Ok(());
    }
    let store = Store::open(data_dir, name).map_err(io_err)?;
    let (_, failed) = store.gc(valid);
    if failed.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = failed.iter().map(|e| e.to_string()).collect();
    Err(CniError::io(format!("host-local GC: {}", list.join("; "))))
}

/// STATUS: the store can be written and every range set has a free address; otherwise code 50.
pub fn status(conf: &Config) -> Result<(), CniError> {
    let unavailable = |m: String| CniError::new(code::PLUGIN_NOT_AVAILABLE, m);
    let store = Store::open(&conf.data_dir, &conf.name).map_err(|e| unavailable(format!("host-local store unusable: {e}")))?;
    store.writable().map_err(|e| unavailable(format!("host-local store not writable: {e}")))?;
    for set in &conf.ranges {
        if RangeIter::new(set, None).all(|(ip, _)| store.is_reserved(&ip)) {
            return Err(unavailable(format!("no IP addresses available in range set: {set}")));
        }
    }
    Ok(())
}

/// CHECK: `(id, ifname)` holds an address (a network without a store holds none; CHECK makes
/// no store).
pub fn check(conf: &Config, id: &str, ifname: &str) -> Result<(), CniError> {
    let dir = conf.data_dir.join(&conf.name);
    let store = if dir.is_dir() { Some(Store::open(&conf.data_dir, &conf.name).map_err(io_err)?) } else { None };
    if store.is_some_and(|s| s.find_by_id(id, ifname)) {
        Ok(())
    } else {
        Err(CniError::internal(format!("host-local: Failed to find address added by container {id}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_del_with_invalid_ranges_uses_the_configured_data_dir() {
        // (the fallback took the default directory, and DEL created
        // /var/lib/cni/networks/<name> for a network that keeps its leases elsewhere)
        for ipam in [r#"{"type":"host-local","dataDir":"/x/y","ranges":5}"#, r#"{"dataDir":"/x/y","subnet":["10.0.0.0/24"]}"#] {
            let conf = format!(r#"{{"cniVersion":"1.1.0","name":"n","ipam":{ipam}}}"#);
            assert!(load_config(conf.as_bytes(), "").is_err());
            assert_eq!(store_location(conf.as_bytes()).unwrap(), Some(("n".to_string(), PathBuf::from("/x/y"))), "{ipam}");
        }
        let conf = r#"{"cniVersion":"1.1.0","name":"n","ipam":{"type":"host-local","ranges":5}}"#;
        assert_eq!(store_location(conf.as_bytes()).unwrap().unwrap().1, PathBuf::from(DEFAULT_DATA_DIR));
    }

    #[test]
    fn status_reports_a_full_range_and_gc_frees_it() {
        let d = tempfile::tempdir().unwrap();
        let conf = format!(
            r#"{{"cniVersion":"1.1.0","name":"n","ipam":{{"type":"host-local","dataDir":"{}","ranges":[[{{"subnet":"10.9.0.0/30"}}]]}}}}"#,
            d.path().display()
        );
        let c = load_config(conf.as_bytes(), "").unwrap();
        assert!(status(&c).is_ok());
        allocate(&c, "c1", "eth0").unwrap(); // a /30 has one address besides the gateway
        assert_eq!(status(&c).unwrap_err().code, 50);
        let valid = [("c2".to_string(), "eth0".to_string())].into_iter().collect();
        gc("n", d.path(), &valid).unwrap();
        assert!(status(&c).is_ok(), "GC released c1's lease");
        gc("other", d.path(), &valid).unwrap();
        assert!(!d.path().join("other").exists(), "GC of a network without a store creates none");
    }

    #[test]
    fn a_relative_data_dir_is_refused() {
        let conf = br#"{"cniVersion":"1.1.0","name":"n","ipam":{"type":"host-local","dataDir":"leases","subnet":"10.9.0.0/24"}}"#;
        let e = load_config(conf, "").unwrap_err();
        assert_eq!((e.code, e.msg.as_str()), (code::INVALID_NETWORK_CONFIG, r#"dataDir "leases" is not an absolute path"#));
        assert_eq!(store_location(conf).unwrap(), None, "DEL: nothing can have been stored there");
        let abs = br#"{"cniVersion":"1.1.0","name":"n","ipam":{"type":"host-local","dataDir":"/x/y","subnet":"10.9.0.0/24"}}"#;
        assert_eq!(store_location(abs).unwrap(), Some(("n".into(), PathBuf::from("/x/y"))));
    }

    #[test]
    fn refused_requests_and_releases_without_a_store_change_nothing() {
        let d = tempfile::tempdir().unwrap();
        let conf = |args: &str| {
            let c = format!(
                r#"{{"cniVersion":"1.1.0","name":"n","ipam":{{"type":"host-local","dataDir":"{}","ranges":[[{{"subnet":"10.9.0.0/24"}}]]}}}}"#,
                d.path().display()
            );
            load_config(c.as_bytes(), args).unwrap()
        };
        release("n", d.path(), "c1", "eth0").unwrap();
        assert!(!d.path().join("n").exists(), "DEL of a network without a store creates none");
        assert!(check(&conf(""), "c1", "eth0").is_err());
        assert!(!d.path().join("n").exists(), "nor does CHECK");
        allocate(&conf(""), "c1", "eth0").unwrap();
        let last = std::fs::read_to_string(d.path().join("n/last_reserved_ip.0")).unwrap();
        // an address outside every range, and two for one range set
        for args in ["IP=10.1.2.3", "IgnoreUnknown=1;IP=10.9.0.50"] {
            let mut c = conf(args);
            if args.contains("50") {
                c.requested.push("10.9.0.51".parse().unwrap());
            }
            let e = allocate(&c, "c2", "eth0").unwrap_err();
            assert_eq!(e.code, 7, "{e}");
            assert!(e.msg.starts_with("failed to allocate all requested IPs"), "{e}");
        }
        assert_eq!(std::fs::read_to_string(d.path().join("n/last_reserved_ip.0")).unwrap(), last, "a refused ADD moved nothing");
        assert_eq!(std::fs::read_dir(d.path().join("n")).unwrap().count(), 4, "lock, last_reserved_ip.0, the index, c1's lease");
    }
}

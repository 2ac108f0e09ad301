//! Multi-network attach: what containerd's go-cni does for `ctr run --cni`, on top of
//! [`CniConfig`]. A container gets every loaded network, `eth0..N` (plus `lo` when asked),
//! serially by default (the spec forbids parallel operations on one container) or in parallel.
//!
//! Unlike go-cni: a failed setup removes again everything it attached (the failed network
//! included, as the spec wants a DEL after a failed ADD); removal runs in reverse order and goes
//! on past errors; interface numbering does not count `lo`; an address without an interface
//! index belongs to the network's own interface, not always to `eth0`.

use crate::api::{CniConfig, RuntimeConf};
use crate::conf;
use crate::ctx::Ctx;
use crate::error::{Error, Result};
use cni_types::capabilities::{Bandwidth, DnsCapability, IpRange, PortMapping};
use cni_types::result::{Dns, Result100, Route};
use cni_types::NetworkConfigList;
use ipnet::IpNet;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The loopback network go-cni adds with `WithLoNetwork`.
pub const LOOPBACK_CONFLIST: &str = r#"{
"cniVersion": "0.3.1",
"name": "cni-loopback",
"plugins": [{
  "type": "loopback"
}]
}"#;

/// One network of a container, with the interface name it gets.
#[derive(Debug, Clone)]
pub struct Network {
    pub list: NetworkConfigList,
    pub ifname: String,
    /// The file the network came from, if any.
    pub source: Option<PathBuf>,
}

/// The container side of an attach: its ID, netns path and per-container arguments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Namespace {
    pub id: String,
    pub path: String,
    pub args: Vec<(String, String)>,
    pub capability_args: Map<String, Value>,
}

impl Namespace {
    pub fn new(id: impl Into<String>, path: impl Into<String>) -> Self {
        Namespace { id: id.into(), path: path.into(), ..Default::default() }
    }

    /// Any capability argument.
    pub fn with_capability(mut self, name: &str, value: Value) -> Self {
        self.capability_args.insert(name.into(), value);
        self
    }

    pub fn with_port_mappings(self, maps: &[PortMapping]) -> Self {
        self.with_capability("portMappings", serde_json::to_value(maps).expect("serializes"))
    }

    /// `ipRanges`, as a list of range sets (the spec's shape).
    pub fn with_ip_ranges(self, sets: &[Vec<IpRange>]) -> Self {
        self.with_capability("ipRanges", serde_json::to_value(sets).expect("serializes"))
    }

    pub fn with_bandwidth(self, bw: &Bandwidth) -> Self {
        self.with_capability("bandwidth", serde_json::to_value(bw).expect("serializes"))
    }

    pub fn with_dns(self, dns: &DnsCapability) -> Self {
        self.with_capability("dns", serde_json::to_value(dns).expect("serializes"))
    }

    pub fn with_cgroup_path(self, path: &str) -> Self {
        self.with_capability("cgroupPath", Value::String(path.into()))
    }

    /// A `CNI_ARGS` pair (a repeated key replaces the earlier value).
    pub fn with_arg(mut self, key: &str, value: &str) -> Self {
        self.args.retain(|(k, _)| k != key);
        self.args.push((key.into(), value.into()));
        self
    }

    fn runtime_conf(&self, ifname: &str) -> RuntimeConf {
        RuntimeConf {
            container_id: self.id.clone(),
            netns: self.path.clone(),
            ifname: ifname.into(),
            args: self.args.clone(),
            capability_args: self.capability_args.clone(),
            cache_dir: None,
        }
    }
}

/// An address of an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpConfig {
    pub address: IpNet,
    pub gateway: Option<IpAddr>,
}

/// What the networks configured on one interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceConfig {
    pub ip_configs: Vec<IpConfig>,
    pub mac: String,
    pub sandbox: String,
    pub pci_id: String,
    pub socket_path: String,
}

/// The outcome of a setup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttachResult {
    /// Interfaces by name (host-side ones included when plugins report them).
    pub interfaces: BTreeMap<String, InterfaceConfig>,
    /// DNS of each network, in network order.
    pub dns: Vec<Dns>,
    /// Routes of all networks, concatenated.
    pub routes: Vec<Route>,
    /// Each network's result, converted to 1.1.0: `(network name, ifname, result)`.
    pub raw: Vec<(String, String, Result100)>,
}

/// A container's set of networks.
#[derive(Debug, Clone)]
pub struct NetworkSet {
    cni: CniConfig,
    networks: Vec<Network>,
    prefix: String,
    min_networks: usize,
}

impl NetworkSet {
    /// An empty set using `cni`; interfaces are `eth0..N`, and at least one network is needed.
    pub fn new(cni: CniConfig) -> Self {
        NetworkSet { cni, networks: Vec::new(), prefix: "eth".into(), min_networks: 1 }
    }

    pub fn with_interface_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.into();
        self
    }

    pub fn with_min_networks(mut self, n: usize) -> Self {
        self.min_networks = n;
        self
    }

    pub fn cni(&self) -> &CniConfig {
        &self.cni
    }

    pub fn networks(&self) -> &[Network] {
        &self.networks
    }

    fn next_ifname(&self) -> String {
        let n = self.networks.iter().filter(|n| n.ifname != "lo").count();
        format!("{}{n}", self.prefix)
    }

    /// Adds the loopback network (`lo`).
    pub fn add_loopback(&mut self) {
        let list = NetworkConfigList::from_bytes(LOOPBACK_CONFLIST.as_bytes()).expect("built-in loopback config parses");
        self.networks.push(Network { list, ifname: "lo".into(), source: None });
    }

    /// Adds a network; it gets the next `eth<N>`.
    pub fn add_network(&mut self, list: NetworkConfigList, source: Option<PathBuf>) {
        let ifname = self.next_ifname();
        self.networks.push(Network { list, ifname, source });
    }

    /// Adds a network with a chosen interface name.
    pub fn add_network_as(&mut self, list: NetworkConfigList, ifname: &str) {
        self.networks.push(Network { list, ifname: ifname.into(), source: None });
    }

    /// Loads the networks of a config directory in file-name order (`max` 0: all of them).
    /// Any unreadable file is an error, as is a directory without networks.
    pub fn load_dir(&mut self, dir: &Path, max: usize) -> Result<()> {
        let found = conf::load_all(dir, max)?;
        if found.is_empty() {
            return Err(Error::msg(format!("no network config found in {}: cni plugin not initialized", dir.display())));
        }
        for (path, list) in found {
            self.add_network(list, Some(path));
        }
        Ok(())
    }

    fn ready(&self) -> Result<()> {
        if self.networks.len() < self.min_networks {
            return Err(Error::msg("cni plugin not initialized"));
        }
        Ok(())
    }

    /// Before a setup adds anything: none of the interfaces to make is one the container has an
    /// attachment for already (its ADD would fail on the interface, and the rollback of that
    /// failure, a DEL with the same container ID and interface, would remove the earlier
    /// attachment).
    fn not_attached(&self, ns: &Namespace) -> Result<()> {
        let cached = self.cni.get_cached_attachments(&ns.id)?;
        let taken: Vec<String> = cached
            .iter()
            .filter(|a| self.networks.iter().any(|n| n.ifname == a.ifname))
            .map(|a| format!("{} on {}", a.ifname, a.network))
            .collect();
        if !taken.is_empty() {
            return Err(Error::msg(format!("container {} is attached already ({}): remove that first", ns.id, taken.join(", "))));
        }
        Ok(())
    }

    /// Attaches every network, in order; on failure, removes again what was attached.
    pub fn setup(&self, ctx: &Ctx, ns: &Namespace) -> Result<AttachResult> {
        self.ready()?;
        self.not_attached(ns)?;
        let mut done: Vec<(usize, Result100)> = Vec::new();
        for (i, net) in self.networks.iter().enumerate() {
            match self.attach_one(ctx, net, ns) {
                Ok(r) => done.push((i, r)),
                Err(e) => {
                    let mut undo: Vec<usize> = done.iter().map(|(i, _)| *i).collect();
                    undo.push(i);
                    return Err(self.rollback(ctx, ns, &undo, e));
                }
            }
        }
        self.create_result(done)
    }

    /// Attaches every network concurrently (go-cni's `Setup`); on any failure, removes all.
    pub fn setup_parallel(&self, ctx: &Ctx, ns: &Namespace) -> Result<AttachResult> {
        self.ready()?;
        self.not_attached(ns)?;
        let outcomes: Vec<Result<Result100>> = std::thread::scope(|s| {
            let handles: Vec<_> = self.networks.iter().map(|net| s.spawn(move || self.attach_one(ctx, net, ns))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(Error::msg("attach thread panicked")))).collect()
        });
        if let Some(pos) = outcomes.iter().position(|o| o.is_err()) {
            let all: Vec<usize> = (0..self.networks.len()).collect();
            let first = outcomes.into_iter().nth(pos).expect("position exists").expect_err("is an error");
            return Err(self.rollback(ctx, ns, &all, first));
        }
        self.create_result(outcomes.into_iter().map(|o| o.expect("checked")).enumerate().collect())
    }

    fn attach_one(&self, ctx: &Ctx, net: &Network, ns: &Namespace) -> Result<Result100> {
        let r = self.cni.add_network_list(ctx, &net.list, &ns.runtime_conf(&net.ifname))?;
        r.to_current().map_err(|e| Error::msg(e.to_string()))
    }

    /// DELs networks `indices` in reverse order after `cause`; returns `cause` with any failure
    /// of the cleanup appended.
    fn rollback(&self, ctx: &Ctx, ns: &Namespace, indices: &[usize], cause: Error) -> Error {
        let mut errors = vec![cause];
        for &i in indices.iter().rev() {
            let net = &self.networks[i];
            if let Err(e) = self.cni.del_network_list(ctx, &net.list, &ns.runtime_conf(&net.ifname)) {
                errors.push(e.context(format!("rollback of network {} ({})", net.list.name, net.ifname)));
            }
        }
        Error::join(errors).expect("at least the cause")
    }

    /// Detaches every network in reverse order, going on past errors. Errors saying something is
    /// "not found" are tolerated (as go-cni does), so a half-gone container can be removed.
    pub fn remove(&self, ctx: &Ctx, ns: &Namespace) -> Result<()> {
        self.ready()?;
        let mut errors = Vec::new();
        for net in self.networks.iter().rev() {
            match self.cni.del_network_list(ctx, &net.list, &ns.runtime_conf(&net.ifname)) {
                Ok(()) => {}
                Err(e) if e.to_string().contains("not found") => {
                    tracing::debug!(network = %net.list.name, error = %e, "ignoring not-found error on remove");
                }
                Err(e) => errors.push(e),
            }
        }
        Error::join(errors).map_or(Ok(()), Err)
    }

    /// CHECKs every network in order; the first failure is returned.
    pub fn check(&self, ctx: &Ctx, ns: &Namespace) -> Result<()> {
        self.ready()?;
        for net in &self.networks {
            self.cni.check_network_list(ctx, &net.list, &ns.runtime_conf(&net.ifname))?;
        }
        Ok(())
    }

    /// STATUS of every network; the first failure is returned with its code.
    pub fn status(&self, ctx: &Ctx) -> Result<()> {
        self.ready()?;
        for net in &self.networks {
            self.cni.get_status_network_list(ctx, &net.list)?;
        }
        Ok(())
    }

    fn create_result(&self, results: Vec<(usize, Result100)>) -> Result<AttachResult> {
        let mut out = AttachResult::default();
        out.interfaces.insert(format!("{}0", self.prefix), InterfaceConfig::default());
        for (i, result) in results {
            let net = &self.networks[i];
            for intf in &result.interfaces {
                out.interfaces.insert(
                    intf.name.clone(),
                    InterfaceConfig {
                        ip_configs: Vec::new(),
                        mac: intf.mac.clone(),
                        sandbox: intf.sandbox.clone(),
                        pci_id: intf.pci_id.clone(),
                        socket_path: intf.socket_path.clone(),
                    },
                );
            }
            for ip in &result.ips {
                let name = match ip.interface {
                    Some(idx) if idx >= result.interfaces.len() => {
                        return Err(Error::msg(format!(
                            "invalid interface config: invalid IP configuration (interface number {idx} is >= number of interfaces {}): invalid result",
                            result.interfaces.len()
                        )))
                    }
                    Some(idx) => result.interfaces[idx].name.clone(),
                    None => net.ifname.clone(),
                };
                out.interfaces.entry(name).or_default().ip_configs.push(IpConfig { address: ip.address, gateway: ip.gateway });
            }
            out.dns.push(result.dns.clone());
            out.routes.extend(result.routes.iter().cloned());
            out.raw.push((net.list.name.clone(), net.ifname.clone(), result));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(name: &str) -> NetworkConfigList {
        NetworkConfigList::from_bytes(format!(r#"{{"cniVersion":"1.0.0","name":"{name}","plugins":[{{"type":"x"}}]}}"#).as_bytes()).unwrap()
    }

    #[test]
    fn interface_numbering_ignores_lo() {
        let mut set = NetworkSet::new(CniConfig::new(vec![]));
        set.add_loopback();
        set.add_network(list("a"), None);
        set.add_network(list("b"), None);
        let names: Vec<&str> = set.networks().iter().map(|n| n.ifname.as_str()).collect();
        assert_eq!(names, vec!["lo", "eth0", "eth1"]);
    }

    #[test]
    fn not_ready_without_networks() {
        let set = NetworkSet::new(CniConfig::new(vec![]));
        assert_eq!(set.status(&Ctx::background()).unwrap_err().to_string(), "cni plugin not initialized");
        let set = set.with_min_networks(0);
        assert!(set.status(&Ctx::background()).is_ok());
    }

    #[test]
    fn result_assembly() {
        let mut set = NetworkSet::new(CniConfig::new(vec![]));
        set.add_network(list("a"), None);
        set.add_network(list("b"), None);
        let r0 = cni_types::CniResult::from_bytes(
            br#"{"cniVersion":"1.0.0","interfaces":[{"name":"br0"},{"name":"eth0","mac":"aa","sandbox":"/ns"}],"ips":[{"interface":1,"address":"10.0.0.2/24","gateway":"10.0.0.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["1.1.1.1"]}}"#,
        )
        .unwrap()
        .to_current()
        .unwrap();
        let r1 =
            cni_types::CniResult::from_bytes(br#"{"cniVersion":"1.0.0","ips":[{"address":"10.1.0.2/24"}]}"#).unwrap().to_current().unwrap();
        let out = set.create_result(vec![(0, r0), (1, r1.clone())]).unwrap();
        assert_eq!(out.interfaces["eth0"].mac, "aa");
        assert_eq!(out.interfaces["eth0"].ip_configs[0].address.to_string(), "10.0.0.2/24");
        assert_eq!(out.interfaces["eth1"].ip_configs[0].address.to_string(), "10.1.0.2/24", "unindexed address stays with its network");
        assert_eq!(out.dns.len(), 2);
        assert_eq!(out.routes.len(), 1);
        let bad = cni_types::CniResult::from_bytes(
            br#"{"cniVersion":"1.0.0","interfaces":[{"name":"a"}],"ips":[{"interface":1,"address":"10.1.0.2/24"}]}"#,
        )
        .unwrap()
        .to_current()
        .unwrap();
        assert!(set.create_result(vec![(0, bad)]).unwrap_err().to_string().contains("interface number 1 is >= number of interfaces 1"));
    }
}

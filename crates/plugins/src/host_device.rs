//! host-device: moves an existing link of the node into the container, and back on DEL.
//!
//! Keys (as the reference): `device` (a link name), `hwaddr` (its MAC), `kernelpath` (a sysfs
//! device path under `/sys/devices/`, whose `net/` directory names the link), `pciBusID` (a PCI
//! address: `/sys/bus/pci/devices/<id>/net/`, or `…/virtio*/net/`), `runtimeConfig.deviceID`
//! (capability `deviceID`: a PCI or auxiliary-bus ID, overriding `pciBusID`); the first of
//! them given is used, in that order. `ipam` is optional. A PCI device bound to a DPDK driver
//! (`vfio-pci`, `uio_pci_generic`, `igb_uio`) has no link: ADD reports no interface and moves
//! nothing, as the reference.
//!
//! ADD: the link's original name goes into its alias (the reference's only state, so Debian's
//! DEL and ours read each other's), then one request moves it into the container *and* renames
//! it to `CNI_IFNAME` (no temporary name, no clash on either side); it is set up there, then
//! IPAM configures it when there is an `ipam` section. Any failure moves it back under its
//! name and restores its alias. Result: the interface (name, MAC, sandbox), plus IPAM's IPs.
//! DEL: the link called `CNI_IFNAME` in the container goes back to the node under the name in
//! its alias (in one request, so a name taken on the node fails the DEL and changes nothing),
//! down, its alias cleared; then the IPAM lease is released — also when the namespace is gone
//! or `CNI_NETNS` is empty (the reference returns early and leaks the lease). A link already
//! gone is fine.
//! CHECK: IPAM CHECK, the interface of prevResult in this sandbox, its addresses and routes.
//! STATUS: IPAM STATUS when there is an `ipam` section.

use crate::common::{self, veth, Rollback};
use crate::delegate;
use cni_plugin::{CmdArgs, Plugin};
use cni_types::result::{Interface, Result100};
use cni_types::{CniError, CniResult, NetConf};
use netkit::netlink::{parse_mac, Link};
use netkit::{NetNs, Netlink};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub struct HostDevice;

#[derive(Debug, Default, Deserialize)]
struct RuntimeConfig {
    #[serde(rename = "deviceID", default)]
    device_id: String,
}

#[derive(Debug, Deserialize)]
struct Conf {
    #[serde(flatten)]
    net: NetConf,
    #[serde(default)]
    device: String,
    #[serde(default)]
    hwaddr: String,
    #[serde(default)]
    kernelpath: String,
    #[serde(rename = "pciBusID", default)]
    pci_bus_id: String,
    #[serde(rename = "runtimeConfig", default)]
    runtime_config: RuntimeConfig,
}

/// How the device is named in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    Name(String),
    Mac([u8; 6]),
    KernelPath(PathBuf),
    Pci(String),
}

const DPDK_DRIVERS: [&str; 3] = ["vfio-pci", "uio_pci_generic", "igb_uio"];

/// The device the config names: the first of `device`, `hwaddr`, `kernelpath`, `pciBusID`
/// (`runtimeConfig.deviceID` overriding it) given, as the reference picks. Every one given
/// must be valid, also those not used.
fn selector(c: &Conf) -> Result<Selector, CniError> {
    let pci = if c.runtime_config.device_id.is_empty() { &c.pci_bus_id } else { &c.runtime_config.device_id };
    let mac = if c.hwaddr.is_empty() {
        None
    } else {
        Some(parse_mac(&c.hwaddr).ok_or_else(|| CniError::invalid_config(format!("failed to parse MAC address {:?}", c.hwaddr)))?)
    };
    if !c.kernelpath.is_empty()
        && (!Path::new(&c.kernelpath).is_absolute()
            || !c.kernelpath.starts_with("/sys/devices/")
            || c.kernelpath.split('/').any(|s| s == ".."))
    {
        return Err(CniError::invalid_config(format!("{:?} is not an absolute path in /sys/devices/", c.kernelpath)));
    }
    for id in [&c.pci_bus_id, &c.runtime_config.device_id] {
        if id.contains('/') || id.contains("..") {
            return Err(CniError::invalid_config(format!("invalid PCI or auxiliary device ID {id:?}")));
        }
    }
    if !c.device.is_empty() {
        if c.device.len() > 15 || c.device.contains(['/', ' ', '\0']) {
            return Err(CniError::invalid_config(format!("invalid device name {:?}", c.device)));
        }
        return Ok(Selector::Name(c.device.clone()));
    }
    if let Some(mac) = mac {
        return Ok(Selector::Mac(mac));
    }
    if !c.kernelpath.is_empty() {
        return Ok(Selector::KernelPath(PathBuf::from(&c.kernelpath)));
    }
    if !pci.is_empty() {
        return Ok(Selector::Pci(pci.clone()));
    }
    Err(CniError::invalid_config(r#"specify either "device", "hwaddr", "kernelpath" or "pciBusID""#))
}

/// A validated configuration.
struct Setup {
    c: Conf,
    sel: Selector,
    ipam: Option<String>,
}

fn load(args: &CmdArgs) -> Result<Setup, CniError> {
    let c: Conf = args.conf()?;
    let sel = selector(&c)?;
    let ipam = common::ipam_type(&c.net);
    Ok(Setup { c, sel, ipam })
}

/// The names in a sysfs `net/` directory, sorted (the reference takes the first).
fn net_dir_names(dir: &Path) -> Option<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir).ok()?.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    Some(names)
}

/// The `net/` directory of a PCI or auxiliary device under `sys` (`/sys`).
fn pci_net_dir(sys: &Path, id: &str) -> Result<PathBuf, CniError> {
    let pci = sys.join("bus/pci/devices").join(id);
    if pci.join("net").is_dir() {
        return Ok(pci.join("net"));
    }
    // a virtio device: …/virtioN/net
    if let Ok(entries) = std::fs::read_dir(&pci) {
        let mut virtio: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("virtio")))
            .collect();
        virtio.sort();
        if let Some(v) = virtio.into_iter().find(|v| v.join("net").is_dir()) {
            return Ok(v.join("net"));
        }
    }
    let aux = sys.join("bus/auxiliary/devices").join(id).join("net");
    if aux.is_dir() {
        return Ok(aux);
    }
    Err(CniError::internal(format!("no net directory under pci device {id}")))
}

/// The driver a PCI device is bound to.
fn pci_driver(sys: &Path, id: &str) -> Option<String> {
    let l = std::fs::read_link(sys.join("bus/pci/devices").join(id).join("driver")).ok()?;
    Some(l.file_name()?.to_string_lossy().into_owned())
}

/// Finds the node's link the selector names.
fn find_link(host: &mut Netlink, sel: &Selector, sys: &Path) -> Result<Link, CniError> {
    let by_name = |host: &mut Netlink, name: &str| {
        host.link_by_name(name).map_err(|e| CniError::internal(format!("failed to find host device: {e}")))
    };
    match sel {
        Selector::Name(n) => by_name(host, n),
        Selector::Mac(mac) => host
            .links()?
            .into_iter()
            .find(|l| l.mac.as_slice() == mac.as_slice())
            .ok_or_else(|| CniError::internal("failed to find physical interface")),
        Selector::KernelPath(p) => {
            let dir = p.join("net");
            let names = net_dir_names(&dir)
                .ok_or_else(|| CniError::internal(format!("failed to find network devices at {:?}", dir.display().to_string())))?;
            let links = host.links()?;
            names
                .iter()
                .find_map(|n| links.iter().find(|l| &l.name == n).cloned())
                .ok_or_else(|| CniError::internal(format!("failed to find device name for kernelpath {}", p.display())))
        }
        Selector::Pci(id) => {
            let dir = pci_net_dir(sys, id)?;
            match net_dir_names(&dir).and_then(|n| n.into_iter().next()) {
                Some(n) => by_name(host, &n),
                None => Err(CniError::internal(format!("failed to find device name for pci address {id}"))),
            }
        }
    }
}

fn is_dpdk(sel: &Selector) -> bool {
    matches!(sel, Selector::Pci(id) if pci_driver(Path::new("/sys"), id).is_some_and(|d| DPDK_DRIVERS.contains(&d.as_str())))
}

/// ADD. See the module.
fn add(args: &CmdArgs, s: &Setup) -> Result<Result100, CniError> {
    let mut result = Result100 { cni_version: cni_types::version::CURRENT.into(), ..Default::default() };
    if is_dpdk(&s.sel) {
        return Ok(result);
    }
    let (cont_ns, mut cont) = common::open_container(&args.netns)?;
    let host_ns = NetNs::current()?;
    let mut rb = Rollback::new();
    let mut host = Netlink::new()?;
    let dev = find_link(&mut host, &s.sel, Path::new("/sys"))?;
    common::ensure_ifname_free(&mut cont, &args.ifname)?;
    // the original name, in the alias: how DEL (ours or the reference's) finds it again
    host.set_alias(dev.index, &dev.name)?;
    let (old_alias, index, name) = (dev.alias.clone().unwrap_or_default(), dev.index, dev.name.clone());
    rb.push("the alias", move || Ok(Netlink::new()?.set_alias(index, &old_alias)?));
    host.move_to_netns(dev.index, &cont_ns, Some(&args.ifname))?;
    {
        let (ifname, host_ns, name) = (args.ifname.clone(), &host_ns, name.clone());
        let cont_ns = &cont_ns;
        rb.push("the move", move || {
            let mut c = Netlink::open_in(cont_ns)?;
            // (renamed after the move by the kernel: a failed rename leaves the old name)
            let l = c.link_by_name(&ifname).or_else(|_| c.link_by_name(&name))?;
            c.set_up(l.index, false)?;
            c.move_to_netns(l.index, host_ns, Some(&name))?;
            Ok(())
        });
    }
    let l = cont.link_by_name(&args.ifname)?;
    cont.set_up(l.index, true)?;
    result.interfaces = vec![Interface::new(&args.ifname, l.mac_string(), &args.netns)];
    if let Some(ipam) = &s.ipam {
        common::ipam_onto_interface(&mut rb, ipam, args, &mut cont, &cont_ns, &mut result, &s.c.net)?;
    }
    rb.commit();
    Ok(result)
}

/// DEL's half in the container: the link back to the node under its original name.
fn move_out(args: &CmdArgs, device: Option<&str>) -> Result<(), CniError> {
    let Some(cont_ns) = NetNs::open_if_present(&args.netns)? else { return Ok(()) };
    let mut cont = Netlink::open_in(&cont_ns)?;
    let l = match cont.link_by_name(&args.ifname) {
        Ok(l) => l,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let Some(orig) = l.alias.clone().filter(|a| !a.is_empty()).or(device.map(str::to_string)) else {
        return Err(CniError::internal(format!("{} has no alias holding its original name: cannot move it back", args.ifname)));
    };
    let host_ns = NetNs::current()?;
    let mut host = Netlink::new()?;
    // the kernel renames after the move: a taken name would leave the link on the node under
    // its container name, so it is checked first
    match host.link_by_name(&orig) {
        Ok(_) => {
            return Err(CniError::internal(format!(
                "failed to restore {:?} to original name {orig:?}: a link of that name exists",
                args.ifname
            )))
        }
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    cont.set_up(l.index, false)?;
    if let Err(e) = cont.move_to_netns(l.index, &host_ns, Some(&orig)) {
        // moved but not renamed (a race): back into the container
        if let Ok(h) = host.link_by_name(&args.ifname) {
            if h.mac == l.mac {
                let _ = host.move_to_netns(h.index, &cont_ns, Some(&args.ifname));
            }
        }
        if let Ok(c) = cont.link_by_name(&args.ifname) {
            let _ = cont.set_up(c.index, true);
        }
        return Err(CniError::internal(format!("failed to move {:?} to host netns as {orig:?}: {e}", args.ifname)));
    }
    let back = host.link_by_name(&orig)?;
    host.set_alias(back.index, "")?;
    Ok(())
}

impl Plugin for HostDevice {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let s = load(args)?;
        Ok(add(args, &s)?.into())
    }

    fn del(&self, args: &CmdArgs) -> Result<(), CniError> {
        // only what DEL needs is read: a value an ADD was refused for must not block it
        let c = common::DelConf::read(args)?;
        if !args.netns.is_empty() {
            move_out(args, c.string("device"))?;
        }
        if let Some(t) = c.ipam_type() {
            delegate::del_if_present(t, args)?;
        }
        Ok(())
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(args)?;
        if let Some(ipam) = &s.ipam {
            delegate::check(ipam, args)?;
        }
        let (_, prev) = args.required_prev_result(&s.c.net, "Required prevResult missing")?;
        if is_dpdk(&s.sel) {
            return Ok(());
        }
        if !prev.interfaces.iter().any(|i| i.name == args.ifname && i.sandbox == args.netns) {
            return Err(CniError::internal(format!("Sandbox in prevResult doesn't match configured netns: {}", args.netns)));
        }
        let (_, mut cont) = common::open_container(&args.netns)?;
        let l = cont.link_by_name(&args.ifname).map_err(|_| CniError::internal(format!("Interface name {} not found", args.ifname)))?;
        veth::check_ips_and_routes(&mut cont, &args.ifname, l.index, &prev)
    }

    fn status(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(args)?;
        match &s.ipam {
            Some(t) => delegate::status(t, args),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(extra: serde_json::Value) -> Conf {
        let mut c = serde_json::json!({"cniVersion": "1.0.0", "name": "hd", "type": "host-device"});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        serde_json::from_value(c).unwrap()
    }

    #[test]
    fn selectors_in_the_reference_order() {
        let e = selector(&conf(serde_json::json!({}))).unwrap_err();
        assert_eq!((e.code, e.msg.as_str()), (7, r#"specify either "device", "hwaddr", "kernelpath" or "pciBusID""#));
        assert_eq!(
            selector(&conf(serde_json::json!({"device": "eth1", "hwaddr": "02:00:00:00:00:01"}))).unwrap(),
            Selector::Name("eth1".into())
        );
        assert_eq!(selector(&conf(serde_json::json!({"hwaddr": "02:00:00:00:00:0A"}))).unwrap(), Selector::Mac([2, 0, 0, 0, 0, 10]));
        assert_eq!(selector(&conf(serde_json::json!({"hwaddr": "banana"}))).unwrap_err().code, 7);
        assert_eq!(selector(&conf(serde_json::json!({"kernelpath": "/etc/passwd"}))).unwrap_err().code, 7);
        assert_eq!(selector(&conf(serde_json::json!({"kernelpath": "/sys/devices/../../etc"}))).unwrap_err().code, 7);
        assert_eq!(
            selector(&conf(serde_json::json!({"kernelpath": "/sys/devices/pci0000:00/0000:00:19.0"}))).unwrap(),
            Selector::KernelPath("/sys/devices/pci0000:00/0000:00:19.0".into())
        );
        let both = conf(serde_json::json!({"pciBusID": "0000:00:19.0", "runtimeConfig": {"deviceID": "0000:00:1f.6"}}));
        assert_eq!(selector(&both).unwrap(), Selector::Pci("0000:00:1f.6".into()), "deviceID overrides pciBusID");
        assert_eq!(selector(&conf(serde_json::json!({"pciBusID": "../../x"}))).unwrap_err().code, 7);
        // every key given is checked, also one the device is not chosen by
        assert_eq!(selector(&conf(serde_json::json!({"device": "eth1", "hwaddr": "banana"}))).unwrap_err().code, 7);
        assert_eq!(selector(&conf(serde_json::json!({"device": "a/b"}))).unwrap_err().code, 7);
    }

    #[test]
    fn pci_and_virtio_and_auxiliary_net_dirs() {
        let sys = tempfile_dir();
        let pci = sys.join("bus/pci/devices/0000:00:19.0/net/enp0s25");
        std::fs::create_dir_all(&pci).unwrap();
        let virtio = sys.join("bus/pci/devices/0000:00:03.0/virtio0/net/ens3");
        std::fs::create_dir_all(&virtio).unwrap();
        let aux = sys.join("bus/auxiliary/devices/mlx5_core.sf.4/net/enp3s0f0s4");
        std::fs::create_dir_all(&aux).unwrap();
        let first = |id: &str| net_dir_names(&pci_net_dir(&sys, id).unwrap()).unwrap()[0].clone();
        assert_eq!(first("0000:00:19.0"), "enp0s25");
        assert_eq!(first("0000:00:03.0"), "ens3");
        assert_eq!(first("mlx5_core.sf.4"), "enp3s0f0s4");
        assert_eq!(pci_net_dir(&sys, "0000:00:99.0").unwrap_err().msg, "no net directory under pci device 0000:00:99.0");
        std::fs::create_dir_all(sys.join("bus/pci/drivers/vfio-pci")).unwrap();
        std::os::unix::fs::symlink(sys.join("bus/pci/drivers/vfio-pci"), sys.join("bus/pci/devices/0000:00:19.0/driver")).unwrap();
        assert_eq!(pci_driver(&sys, "0000:00:19.0").as_deref(), Some("vfio-pci"));
        std::fs::remove_dir_all(&sys).unwrap();
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("rcni-hostdev-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}

//! rcni's plugins. Each lives in one file and reads top to bottom; the mechanisms they share
//! are in `netkit` (kernel) and `ipam` (address management).

pub mod bandwidth;
pub mod bridge;
pub mod common;
pub mod delegate;
pub mod dhcp;
pub mod dummy;
pub mod firewall;
pub mod host_device;
pub mod host_local;
pub mod ipvlan;
pub mod loopback;
pub mod macvlan;
pub mod portmap;
pub mod ptp;
pub mod sbr;
pub mod static_ip;
pub mod tap;
pub mod tuning;
pub mod vlan;
pub mod vrf;

use cni_plugin::{About, Plugin};

/// A plugin the multi-call binary can run.
pub struct Entry {
    pub name: &'static str,
    pub description: &'static str,
    /// Spec versions the plugin accepts.
    pub versions: &'static [&'static str],
    pub plugin: &'static (dyn Plugin + Sync),
}

/// Spec versions from 0.4.0 on (firewall, as the reference).
const FROM_0_4_0: &[&str] = &["0.4.0", "1.0.0", "1.1.0"];

/// Every plugin rcni ships, by the name it is installed and invoked under.
pub static PLUGINS: &[Entry] = &[
    Entry { name: "bandwidth", description: "CNI bandwidth plugin (rcni)", versions: bandwidth::VERSIONS, plugin: &bandwidth::Bandwidth },
    Entry { name: "bridge", description: "CNI bridge plugin (rcni)", versions: cni_types::version::ALL, plugin: &bridge::Bridge },
    Entry { name: "firewall", description: "CNI firewall plugin (rcni)", versions: FROM_0_4_0, plugin: &firewall::Firewall },
    Entry {
        name: "host-local",
        description: "CNI host-local IPAM plugin (rcni)",
        versions: cni_types::version::ALL,
        plugin: &host_local::HostLocal,
    },
    Entry { name: "loopback", description: "CNI loopback plugin (rcni)", versions: cni_types::version::ALL, plugin: &loopback::Loopback },
    Entry { name: "portmap", description: "CNI portmap plugin (rcni)", versions: cni_types::version::ALL, plugin: &portmap::Portmap },
    Entry { name: "ptp", description: "CNI ptp plugin (rcni)", versions: cni_types::version::ALL, plugin: &ptp::Ptp },
    Entry { name: "static", description: "CNI static IPAM plugin (rcni)", versions: cni_types::version::ALL, plugin: &static_ip::Static },
    Entry { name: "dhcp", description: "CNI dhcp IPAM plugin (rcni)", versions: cni_types::version::ALL, plugin: &dhcp::Dhcp },
    Entry { name: "tuning", description: "CNI tuning plugin (rcni)", versions: cni_types::version::ALL, plugin: &tuning::Tuning },
    Entry {
        name: "host-device",
        description: "CNI host-device plugin (rcni)",
        versions: cni_types::version::ALL,
        plugin: &host_device::HostDevice,
    },
    Entry { name: "sbr", description: "CNI sbr plugin (rcni)", versions: cni_types::version::ALL, plugin: &sbr::Sbr },
    Entry { name: "tap", description: "CNI tap plugin (rcni)", versions: cni_types::version::ALL, plugin: &tap::Tap },
    Entry { name: "vrf", description: "CNI vrf plugin (rcni)", versions: vrf::VERSIONS, plugin: &vrf::Vrf },
    Entry { name: "macvlan", description: "CNI macvlan plugin (rcni)", versions: cni_types::version::ALL, plugin: &macvlan::Macvlan },
    Entry { name: "ipvlan", description: "CNI ipvlan plugin (rcni)", versions: cni_types::version::ALL, plugin: &ipvlan::Ipvlan },
    Entry { name: "vlan", description: "CNI vlan plugin (rcni)", versions: cni_types::version::ALL, plugin: &vlan::Vlan },
    Entry { name: "dummy", description: "CNI dummy plugin (rcni)", versions: cni_types::version::ALL, plugin: &dummy::Dummy },
];

/// The plugin called `name`.
pub fn find(name: &str) -> Option<&'static Entry> {
    PLUGINS.iter().find(|e| e.name == name)
}

/// Runs plugin `name` against this process's environment, stdin and stdout; returns its exit
/// code, or `None` if rcni has no such plugin.
pub fn run(name: &str) -> Option<i32> {
    let e = find(name)?;
    let about = About::new(e.name, e.description, e.versions);
    let getenv = |k: &str| std::env::var(k).ok();
    Some(cni_plugin::dispatch(
        e.plugin,
        &about,
        &getenv,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    ))
}

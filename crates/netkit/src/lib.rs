//! Kernel access for rcni's plugins, and the mechanisms several plugins share: network
//! namespaces (the one guard that enters them), rtnetlink over synchronous sockets, nftables
//! over netlink (`nft`, with an in-memory fake for tests), sysctl; owner tags on every kernel
//! object an attachment makes (`owner`), masquerade (`masq`, bridge and ptp) and veth and
//! interface setup (`iface`). No `ip`, `nft`, `sysctl` or other processes.
//!
//! A layout only one plugin uses lives with that plugin (`plugins::portmap::layout`,
//! `plugins::firewall::{nftables, iptables}`, `plugins::bridge::spoofchk`).

pub mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod iface;
pub mod masq;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod owner;
pub mod sysctl;
pub mod tun;
pub mod udp;
pub mod vxlan;

pub use error::{Error, Result};
pub use netlink::Netlink;
pub use netns::{NetNs, NetNsGuard};

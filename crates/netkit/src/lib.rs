//! Kernel access for rcni's plugins: network namespaces (the one guard that enters them),
//! rtnetlink over synchronous sockets, and sysctl — no `ip`, `sysctl` or other processes, except
//! `iptables-save`/`iptables-restore` for the firewall's opt-in iptables backend (`iptables`).

pub mod error;
pub mod firewall;
pub mod iface;
pub mod iptables;
pub mod masq;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod owner;
pub mod portmap;
pub mod spoofchk;
pub mod sysctl;

pub use error::{Error, Result};
pub use netlink::Netlink;
pub use netns::{NetNs, NetNsGuard};

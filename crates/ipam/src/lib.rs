//! IP address management shared by rcni's plugins: host-local (with its Go-compatible on-disk
//! store) and static.

pub mod host_local;
pub mod ip;
pub mod range;
pub mod static_ipam;
pub mod store;

pub use range::{Range, RangeSet};
pub use store::Store;

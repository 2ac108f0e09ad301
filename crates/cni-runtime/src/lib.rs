//! The CNI runtime library: what Go's libcni gives a container runtime.
//!
//! - [`conf`]: loading networks from a config directory (`.conf`, `.conflist`, `.json`).
//! - [`CniConfig`]: ADD / CHECK / DEL of network lists and single plugins with `prevResult`
//!   chaining and `runtimeConfig` from capabilities, GC, STATUS, VERSION, validation, and the
//!   `cniCacheV1` result cache (byte-compatible with Go's, written atomically).
//! - [`NetworkSet`]: multi-network attach for one container (`eth0..N`, optional `lo`).
//! - [`invoke`]: running one plugin, including delegation from plugin to plugin (IPAM).
//! - [`oci`]: networking OCI bundles through runtime hooks (config.json, hosts, resolv.conf).

pub mod api;
pub mod attach;
pub mod cache;
pub mod conf;
pub mod ctx;
pub mod deadline;
pub mod error;
pub mod exec;
pub mod find;
pub mod fsutil;
pub mod invoke;
pub mod lock;
pub mod oci;
pub mod trace;

pub use api::{CniConfig, GcArgs, RuntimeConf};
pub use attach::{AttachResult, Namespace, NetworkSet};
pub use cache::{Cache, NetworkAttachment};
pub use ctx::{CancelToken, Ctx};
pub use error::{Error, Result};
pub use exec::{Exec, RawExec, StderrSink};
pub use invoke::PluginInfo;
pub use lock::NetworkLock;

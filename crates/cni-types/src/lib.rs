//! CNI specification types: network configuration, results of every spec version with their
//! conversions, errors and codes, `CNI_ARGS`, capability arguments, and name validation.
//!
//! This crate does no I/O. It is what the runtime library (`cni-runtime`), the plugin SDK
//! (`cni-plugin`) and every plugin share.

pub mod args;
pub mod capabilities;
pub mod config;
pub mod error;
pub mod gojson;
pub mod netconf;
pub mod result;
mod serde_util;
pub mod validate;
pub mod version;

pub use args::{ArgsError, CniArgs};
pub use capabilities::RuntimeConfig;
pub use config::{ConfigError, GcAttachment, NetworkConfigList, PluginConfig};
pub use error::{code, CniError};
pub use netconf::NetConf;
pub use result::{CniResult, ResultError};

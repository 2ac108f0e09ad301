//! The three result shapes of the spec: 0.1.0/0.2.0, 0.3.x/0.4.0, and 1.x.

use super::common::{cidr, opt_ip, Dns, Route};
use crate::serde_util::nullable;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

// ---------------------------------------------------------------- 0.1.0 / 0.2.0

/// Result of spec 0.1.0 and 0.2.0: one address per family.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Result020 {
    #[serde(rename = "cniVersion", default, skip_serializing_if = "String::is_empty", deserialize_with = "nullable")]
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip4: Option<IpConfig020>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<IpConfig020>,
    #[serde(default, deserialize_with = "nullable")]
    pub dns: Dns,
}

/// `ip4` / `ip6` of a 0.2.0 result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig020 {
    #[serde(with = "cidr")]
    pub ip: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_ip")]
    pub gateway: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub routes: Vec<Route>,
}

// ---------------------------------------------------------------- 0.3.0 / 0.3.1 / 0.4.0

/// Result of spec 0.3.0, 0.3.1 and 0.4.0.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Result040 {
    #[serde(rename = "cniVersion", default, skip_serializing_if = "String::is_empty", deserialize_with = "nullable")]
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub interfaces: Vec<Interface040>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub ips: Vec<IpConfig040>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub routes: Vec<Route>,
    #[serde(default, deserialize_with = "nullable")]
    pub dns: Dns,
}

/// An interface of a 0.4.0 result.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Interface040 {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "nullable")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "nullable")]
    pub sandbox: String,
}

/// An address of a 0.4.0 result; `version` is `"4"` or `"6"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig040 {
    #[serde(default, deserialize_with = "nullable")]
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
    #[serde(with = "cidr")]
    pub address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_ip")]
    pub gateway: Option<IpAddr>,
}

// ---------------------------------------------------------------- 1.0.0 / 1.1.0

/// Result of spec 1.0.0 and 1.1.0 (one type, as in Go).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Result100 {
    #[serde(rename = "cniVersion", default, skip_serializing_if = "String::is_empty", deserialize_with = "nullable")]
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "Dns::is_empty", deserialize_with = "nullable")]
    pub dns: Dns,
}

/// An interface of a 1.x result (`mtu`, `socketPath` and `pciID` are 1.1 fields).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Interface {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "nullable")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "super::common::is_zero", deserialize_with = "nullable")]
    pub mtu: u32,
    #[serde(default, skip_serializing_if = "String::is_empty", deserialize_with = "nullable")]
    pub sandbox: String,
    #[serde(rename = "socketPath", default, skip_serializing_if = "String::is_empty", deserialize_with = "nullable")]
    pub socket_path: String,
    #[serde(rename = "pciID", default, skip_serializing_if = "String::is_empty", deserialize_with = "nullable")]
    pub pci_id: String,
}

/// An address of a 1.x result; `interface` indexes `interfaces`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
    #[serde(with = "cidr")]
    pub address: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_ip")]
    pub gateway: Option<IpAddr>,
}

impl Interface {
    /// An interface with a name and MAC; `sandbox` is the netns path for container-side links.
    pub fn new(name: impl Into<String>, mac: impl Into<String>, sandbox: impl Into<String>) -> Self {
        Interface { name: name.into(), mac: mac.into(), sandbox: sandbox.into(), ..Default::default() }
    }
}

//! CNI results of every spec version and the conversions between them.
//!
//! The conversion rules are Go's (`pkg/types/{020,040,100}`):
//! - same version: identity; 0.1.0 ↔ 0.2.0 and 1.0.0 ↔ 1.1.0: copy;
//! - 0.1/0.2 → 0.3/0.4: `ip4` then `ip6` become `ips` with `version` set; routes concatenated;
//! - 0.3/0.4 → 0.1/0.2: the first `ips` entry whose `version` is "4" (and "6"); each route goes to
//!   the `ipX` of its destination's family with only `dst`/`gw`, dropped if that family has no
//!   address; no address at all is an error;
//! - to 1.x via 0.4.0 (dropping `version`); 1.x → 0.3/0.4 derives `version` from the address and
//!   drops the 1.1 interface fields.

mod common;
mod types;

pub use common::{cidr, normalize_ip, opt_ip, parse_cidr, parse_ip, Dns, Route};
pub use types::{Interface, Interface040, IpConfig, IpConfig020, IpConfig040, Result020, Result040, Result100};

use serde::{Serialize, Serializer};
use serde_json::Value;

/// Why a result could not be created or converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResultError {
    #[error("unsupported CNI result version {0:?}")]
    UnsupportedVersion(String),
    #[error("result type supports {supported} but unmarshalled CNIVersion is {found:?}")]
    VersionMismatch { supported: &'static str, found: String },
    #[error("no converter for CNI result version {from} to {to}")]
    NoConverter { from: String, to: String },
    #[error("cannot convert: no valid IP addresses")]
    NoValidIps,
    #[error("decoding version from network config: {0}")]
    DecodeVersion(String),
    #[error("{0}")]
    Decode(String),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Family {
    V02,
    V04,
    V1,
}

fn family(version: &str) -> Option<Family> {
    match version {
        "0.1.0" | "0.2.0" => Some(Family::V02),
        "0.3.0" | "0.3.1" | "0.4.0" => Some(Family::V04),
        "1.0.0" | "1.1.0" => Some(Family::V1),
        _ => None,
    }
}

/// A result in one of the three shapes. The variant's `cni_version` says which exact version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CniResult {
    V02(Result020),
    V04(Result040),
    V1(Result100),
}

impl From<Result020> for CniResult {
    fn from(r: Result020) -> Self {
        CniResult::V02(r)
    }
}
impl From<Result040> for CniResult {
    fn from(r: Result040) -> Self {
        CniResult::V04(r)
    }
}
impl From<Result100> for CniResult {
    fn from(r: Result100) -> Self {
        CniResult::V1(r)
    }
}

/// The `cniVersion` of a JSON document, `"0.1.0"` when absent or empty (Go's `DecodeVersion`).
pub fn decode_version(bytes: &[u8]) -> Result<String, ResultError> {
    #[derive(serde::Deserialize)]
    struct V {
        #[serde(rename = "cniVersion", default, deserialize_with = "crate::serde_util::nullable")]
        cni_version: String,
    }
    let v: V = serde_json::from_slice(bytes).map_err(|e| ResultError::DecodeVersion(e.to_string()))?;
    Ok(if v.cni_version.is_empty() { "0.1.0".into() } else { v.cni_version })
}

impl CniResult {
    /// Parses `bytes` as a result of spec `version` (Go's `create.Create`).
    pub fn create(version: &str, bytes: &[u8]) -> Result<Self, ResultError> {
        let fam = if version.is_empty() { Some(Family::V02) } else { family(version) };
        let decode = |e: serde_json::Error| ResultError::Decode(e.to_string());
        match fam {
            Some(Family::V02) => {
                let mut r: Result020 = serde_json::from_slice(bytes).map_err(decode)?;
                match r.cni_version.as_str() {
                    "" => r.cni_version = "0.1.0".into(),
                    "0.1.0" | "0.2.0" => {}
                    _ => return Err(mismatch(r#"["" "0.1.0" "0.2.0"]"#, r.cni_version)),
                }
                Ok(CniResult::V02(r))
            }
            Some(Family::V04) => {
                let r: Result040 = serde_json::from_slice(bytes).map_err(decode)?;
                if family(&r.cni_version) != Some(Family::V04) {
                    return Err(mismatch(r#"["0.3.0" "0.3.1" "0.4.0"]"#, r.cni_version));
                }
                Ok(CniResult::V04(r))
            }
            Some(Family::V1) => {
                let r: Result100 = serde_json::from_slice(bytes).map_err(decode)?;
                if family(&r.cni_version) != Some(Family::V1) {
                    return Err(mismatch(r#"["1.0.0" "1.1.0"]"#, r.cni_version));
                }
                Ok(CniResult::V1(r))
            }
            None => Err(ResultError::UnsupportedVersion(version.into())),
        }
    }

    /// Parses a result whose version is read from its own `cniVersion` (Go's `CreateFromBytes`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ResultError> {
        let version = decode_version(bytes)?;
        Self::create(&version, bytes)
    }

    /// The spec version of this result. A version that is unset, or that does not belong to the
    /// result's shape (a 1.x result stamped "0.4.0" by a plugin that copied its config's version),
    /// reads as the newest version of the shape, so conversion starts from what the data is.
    pub fn version(&self) -> &str {
        let (v, fam, default) = match self {
            CniResult::V02(r) => (&r.cni_version, Family::V02, "0.2.0"),
            CniResult::V04(r) => (&r.cni_version, Family::V04, "0.4.0"),
            CniResult::V1(r) => (&r.cni_version, Family::V1, "1.1.0"),
        };
        match family(v) {
            Some(f) if f == fam => v,
            None if !v.is_empty() => v,
            _ => default,
        }
    }

    /// Converts to spec version `to` (`""` means 0.1.0).
    pub fn convert(&self, to: &str) -> Result<CniResult, ResultError> {
        let to = if to.is_empty() { "0.1.0" } else { to };
        let from = self.version();
        if from == to {
            let mut same = self.clone();
            same.set_version(to);
            return Ok(same);
        }
        let no_converter = || ResultError::NoConverter { from: from.into(), to: to.into() };
        family(from).ok_or_else(no_converter)?;
        let to_fam = family(to).ok_or_else(no_converter)?;
        Ok(match (self, to_fam) {
            (CniResult::V02(r), Family::V02) => CniResult::V02(Result020 { cni_version: to.into(), ..r.clone() }),
            (CniResult::V02(r), Family::V04) => CniResult::V04(from_02x(r, to)),
            (CniResult::V02(r), Family::V1) => CniResult::V1(from_04x(&from_02x(r, "0.4.0"), to)),
            (CniResult::V04(r), Family::V02) => CniResult::V02(to_02x(r, to)?),
            (CniResult::V04(r), Family::V04) => CniResult::V04(Result040 {
                cni_version: to.into(),
                interfaces: r.interfaces.clone(),
                ips: r.ips.clone(),
                routes: r.routes.clone(),
                dns: r.dns.clone(),
            }),
            (CniResult::V04(r), Family::V1) => CniResult::V1(from_04x(r, to)),
            (CniResult::V1(r), Family::V02) => CniResult::V02(to_02x(&to_04x(r, "0.4.0"), to)?),
            (CniResult::V1(r), Family::V04) => CniResult::V04(to_04x(r, to)),
            (CniResult::V1(r), Family::V1) => CniResult::V1(Result100 { cni_version: to.into(), ..r.clone() }),
        })
    }

    /// Converts to the newest result shape (1.1.0), as multi-network runtimes report results.
    pub fn to_current(&self) -> Result<Result100, ResultError> {
        match self.convert(crate::version::CURRENT)? {
            CniResult::V1(r) => Ok(r),
            _ => unreachable!("1.1.0 is a 1.x result"),
        }
    }

    fn set_version(&mut self, v: &str) {
        match self {
            CniResult::V02(r) => r.cni_version = v.into(),
            CniResult::V04(r) => r.cni_version = v.into(),
            CniResult::V1(r) => r.cni_version = v.into(),
        }
    }

    /// The JSON value Go's `json.Marshal` would produce for this result (1.x results go through a
    /// map in Go, so their keys are sorted and an empty `dns` is omitted).
    pub fn to_value(&self) -> Value {
        let v = match self {
            CniResult::V02(r) => serde_json::to_value(r),
            CniResult::V04(r) => serde_json::to_value(r),
            CniResult::V1(r) => serde_json::to_value(r),
        };
        v.expect("results serialize to JSON")
    }

    /// Compact JSON.
    pub fn to_json(&self) -> Vec<u8> {
        crate::gojson::to_vec(self)
    }

    /// JSON indented by four spaces, as plugins and cnitool print results.
    pub fn to_json_pretty(&self) -> Vec<u8> {
        crate::gojson::to_vec_pretty(self)
    }
}

impl Serialize for CniResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CniResult::V02(r) => r.serialize(s),
            CniResult::V04(r) => r.serialize(s),
            // Go 1.2+ marshals 1.x results through a map: sorted keys at every level.
            CniResult::V1(_) => self.to_value().serialize(s),
        }
    }
}

fn mismatch(supported: &'static str, found: String) -> ResultError {
    ResultError::VersionMismatch { supported, found }
}

fn from_02x(r: &Result020, to: &str) -> Result040 {
    let mut out = Result040 { cni_version: to.into(), dns: r.dns.clone(), ..Default::default() };
    for (ipc, v) in [(&r.ip4, "4"), (&r.ip6, "6")] {
        if let Some(ipc) = ipc {
            out.ips.push(IpConfig040 { version: v.into(), interface: None, address: ipc.ip, gateway: ipc.gateway });
            out.routes.extend(ipc.routes.iter().cloned());
        }
    }
    out
}

fn to_02x(r: &Result040, to: &str) -> Result<Result020, ResultError> {
    let mut out = Result020 { cni_version: to.into(), dns: r.dns.clone(), ..Default::default() };
    for ip in &r.ips {
        let slot = match ip.version.as_str() {
            "4" => &mut out.ip4,
            "6" => &mut out.ip6,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(IpConfig020 { ip: ip.address, gateway: ip.gateway, routes: Vec::new() });
        }
        if out.ip4.is_some() && out.ip6.is_some() {
            break;
        }
    }
    for route in &r.routes {
        let slot = if route.is_ipv4() { &mut out.ip4 } else { &mut out.ip6 };
        if let Some(ipc) = slot {
            ipc.routes.push(route.dst_gw_only());
        }
    }
    if out.ip4.is_none() && out.ip6.is_none() {
        return Err(ResultError::NoValidIps);
    }
    Ok(out)
}

fn from_04x(r: &Result040, to: &str) -> Result100 {
    Result100 {
        cni_version: to.into(),
        interfaces: r
            .interfaces
            .iter()
            .map(|i| Interface { name: i.name.clone(), mac: i.mac.clone(), sandbox: i.sandbox.clone(), ..Default::default() })
            .collect(),
        ips: r.ips.iter().map(|i| IpConfig { interface: i.interface, address: i.address, gateway: i.gateway }).collect(),
        routes: r.routes.clone(),
        dns: r.dns.clone(),
    }
}

fn to_04x(r: &Result100, to: &str) -> Result040 {
    Result040 {
        cni_version: to.into(),
        interfaces: r
            .interfaces
            .iter()
            .map(|i| Interface040 { name: i.name.clone(), mac: i.mac.clone(), sandbox: i.sandbox.clone() })
            .collect(),
        ips: r
            .ips
            .iter()
            .map(|i| IpConfig040 {
                version: if i.address.addr().is_ipv4() { "4" } else { "6" }.into(),
                interface: i.interface,
                address: i.address,
                gateway: i.gateway,
            })
            .collect(),
        routes: r.routes.clone(),
        dns: r.dns.clone(),
    }
}

#[cfg(test)]
mod tests;

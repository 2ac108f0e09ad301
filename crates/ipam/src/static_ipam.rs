//! static IPAM: the addresses, routes and DNS given in the configuration, `CNI_ARGS`
//! (`IP=`, `GATEWAY=`), `args.cni.ips` or `runtimeConfig.ips`. Nothing is stored.

use cni_types::error::code;
use cni_types::result::{parse_cidr, parse_ip, Dns, IpConfig, Result100, Route};
use cni_types::{version, CniArgs, CniError, NetConf};
use ipnet::IpNet;
use serde::Deserialize;
use std::net::IpAddr;

#[derive(Debug, Deserialize)]
struct AddressIn {
    address: String,
    #[serde(default)]
    gateway: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Section {
    #[serde(default)]
    routes: Option<Vec<Route>>,
    #[serde(default)]
    addresses: Option<Vec<AddressIn>>,
    #[serde(default)]
    dns: Option<Dns>,
}

/// One configured address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub address: IpNet,
    pub gateway: Option<IpAddr>,
}

/// A static configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    pub cni_version: String,
    pub addresses: Vec<Address>,
    pub routes: Vec<Route>,
    pub dns: Dns,
}

fn invalid(msg: impl Into<String>) -> CniError {
    CniError::invalid_config(msg)
}

fn cidr(field: &str, s: &str) -> Result<IpNet, CniError> {
    parse_cidr(s.trim()).ok_or_else(|| invalid(format!("the '{field}' field is expected to be in CIDR notation, got: '{s}'")))
}

/// Reads the configuration: `addresses` from the config, plus `CNI_ARGS` `IP=` (comma list,
/// appended) with `GATEWAY=` (matched to the addresses whose subnet holds it); `args.cni.ips`
/// or else `runtimeConfig.ips` replace the list.
pub fn load_config(stdin: &[u8], cni_args: &str) -> Result<Config, CniError> {
    let conf: NetConf = serde_json::from_slice(stdin).map_err(|e| CniError::decoding(format!("failed to load netconf: {e}")))?;
    let Some(ipam) = &conf.ipam else {
        return Err(invalid("IPAM config missing 'ipam' key"));
    };
    let s = Section::deserialize(serde_json::Value::Object(ipam.rest.clone())).map_err(|e| invalid(format!("invalid ipam config: {e}")))?;
    let mut addresses = Vec::new();
    for a in s.addresses.unwrap_or_default() {
        let gateway = match a.gateway.as_deref().filter(|g| !g.is_empty()) {
            Some(g) => Some(parse_ip(g).ok_or_else(|| invalid(format!("invalid gateway address: {g}")))?),
            None => None,
        };
        addresses.push(Address { address: cidr("address", &a.address)?, gateway });
    }
    if !cni_args.is_empty() {
        let args = CniArgs::parse_known(cni_args, &["IP", "GATEWAY"])
            .map_err(|e| CniError::new(code::INVALID_ENVIRONMENT_VARIABLES, e.to_string()))?;
        if let Some(ips) = args.get("IP").filter(|v| !v.is_empty()) {
            for item in ips.split(',') {
                addresses.push(Address { address: cidr("ip", item)?, gateway: None });
            }
        }
        if let Some(gws) = args.get("GATEWAY").filter(|v| !v.is_empty()) {
            for item in gws.split(',') {
                let gw = parse_ip(item.trim()).ok_or_else(|| invalid(format!("invalid gateway address: {item}")))?;
                for a in addresses.iter_mut().filter(|a| a.address.contains(&gw)) {
                    a.gateway = Some(gw);
                }
            }
        }
    }
    let replace = |list: Vec<String>| -> Result<Vec<Address>, CniError> {
        list.iter()
            .map(|s| {
                parse_cidr(s)
                    .map(|address| Address { address, gateway: None })
                    .ok_or_else(|| invalid(format!("an entry in the 'ips' field is NOT in CIDR notation, got: '{s}'")))
            })
            .collect()
    };
    if let Some(ips) = conf.args_cni("ips") {
        let list: Vec<String> = serde_json::from_value(ips.clone()).map_err(|e| invalid(format!("invalid args.cni.ips: {e}")))?;
        if !list.is_empty() {
            addresses = replace(list)?;
        }
    }
    if !conf.runtime_config.ips.is_empty() {
        addresses = replace(conf.runtime_config.ips.clone())?;
    }
    for a in &addresses {
        if let Some(gw) = a.gateway.filter(|g| !crate::ip::same_family(g, &a.address.addr())) {
            return Err(invalid(format!(
                "gateway {gw} is not an {} address, as address {} is",
                crate::range::family(&a.address.addr()),
                a.address
            )));
        }
    }
    let v4 = addresses.iter().filter(|a| a.address.addr().is_ipv4()).count();
    if (v4 > 1 || addresses.len() - v4 > 1) && !version::greater_than_or_equal(&conf.cni_version, "0.3.0").unwrap_or(false) {
        return Err(CniError::new(
            code::INCOMPATIBLE_CNI_VERSION,
            format!("CNI version {} does not support more than 1 address per family", conf.cni_version),
        ));
    }
    Ok(Config {
        name: conf.name,
        cni_version: conf.cni_version,
        addresses,
        routes: s.routes.unwrap_or_default(),
        dns: s.dns.unwrap_or_default(),
    })
}

/// The ADD result.
pub fn result(conf: &Config) -> Result100 {
    Result100 {
        cni_version: version::CURRENT.into(),
        ips: conf.addresses.iter().map(|a| IpConfig { interface: None, address: a.address, gateway: a.gateway }).collect(),
        routes: conf.routes.clone(),
        dns: conf.dns.clone(),
        ..Default::default()
    }
}

/// CHECK: every configured address is in `prevResult` (with its gateway, when one is set).
pub fn check(conf: &Config, prev: &Result100, ifname: &str) -> Result<(), CniError> {
    for a in &conf.addresses {
        if let Some(found) = prev.ips.iter().find(|ip| ip.address.addr() == a.address.addr()) {
            if a.gateway.is_some() && a.gateway != found.gateway {
                return Err(CniError::internal(format!("static: Failed to match addr {} on interface {ifname}", found.address.addr())));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_of_the_other_family_is_refused() {
        let conf =
            br#"{"cniVersion":"1.0.0","name":"n","ipam":{"type":"static","addresses":[{"address":"fd00:9::2/64","gateway":"10.9.0.1"}]}}"#;
        let e = load_config(conf, "").unwrap_err();
        assert_eq!(
            (e.code, e.msg.as_str()),
            (code::INVALID_NETWORK_CONFIG, "gateway 10.9.0.1 is not an IPv6 address, as address fd00:9::2/64 is")
        );
        let ok =
            br#"{"cniVersion":"1.0.0","name":"n","ipam":{"type":"static","addresses":[{"address":"fd00:9::2/64","gateway":"fd00:9::1"}]}}"#;
        assert!(load_config(ok, "").is_ok());
    }
}

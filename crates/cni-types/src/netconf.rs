//! The plugin's view of its configuration on stdin (Go's `types.PluginConf` plus the reserved
//! keys a runtime injects).

use crate::capabilities::RuntimeConfig;
use crate::config::GcAttachment;
use crate::result::{CniResult, Dns, ResultError};
use crate::serde_util::nullable;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `ipam` section: `type` names the IPAM plugin; the rest belongs to that plugin.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct IpamSection {
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    pub ipam_type: String,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// The common part of every plugin's stdin.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NetConf {
    #[serde(rename = "cniVersion", default, deserialize_with = "nullable")]
    pub cni_version: String,
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    pub plugin_type: String,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
    pub capabilities: BTreeMap<String, bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<IpamSection>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Dns::is_empty")]
    pub dns: Dns,
    #[serde(rename = "prevResult", default, skip_serializing_if = "Option::is_none")]
    pub raw_prev_result: Option<Value>,
    #[serde(rename = "runtimeConfig", default, deserialize_with = "nullable", skip_serializing_if = "is_default")]
    pub runtime_config: RuntimeConfig,
    /// `args` (e.g. `args.cni.ips`, `args.cni.mac`, `args.cni.labels`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    #[serde(rename = "cni.dev/valid-attachments", default, skip_serializing_if = "Option::is_none")]
    pub valid_attachments: Option<Vec<GcAttachment>>,
    #[serde(rename = "cni.dev/attachments", default, skip_serializing_if = "Option::is_none")]
    pub attachments_legacy: Option<Vec<GcAttachment>>,
}

fn is_default(rc: &RuntimeConfig) -> bool {
    *rc == RuntimeConfig::default()
}

impl NetConf {
    /// Parses `prevResult` in the config's version (Go's `ParsePrevResult`): a result without a
    /// `cniVersion` takes the config's, and the result must belong to the config's version.
    pub fn prev_result(&self) -> Result<Option<CniResult>, ResultError> {
        match &self.raw_prev_result {
            None | Some(Value::Null) => Ok(None),
            Some(raw) => parse_prev_result(&self.cni_version, raw).map(Some),
        }
    }

    /// `args.cni.<key>`, if present.
    pub fn args_cni(&self, key: &str) -> Option<&Value> {
        self.args.as_ref()?.get("cni")?.get(key)
    }
}

/// Parses a `prevResult` object for a config of version `conf_version`.
pub fn parse_prev_result(conf_version: &str, raw: &Value) -> Result<CniResult, ResultError> {
    let mut raw = raw.clone();
    if let Value::Object(m) = &mut raw {
        let has_version = matches!(m.get("cniVersion"), Some(Value::String(s)) if !s.is_empty());
        if !has_version {
            m.insert("cniVersion".into(), Value::String(conf_version.into()));
        }
    }
    let bytes = serde_json::to_vec(&raw).map_err(|e| ResultError::Decode(e.to_string()))?;
    CniResult::create(conf_version, &bytes).map_err(|e| ResultError::Decode(format!("could not parse prevResult: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_injected_keys() {
        let c: NetConf = serde_json::from_value(json!({
            "cniVersion": "1.1.0", "name": "n", "type": "bridge", "ipam": {"type": "host-local", "subnet": "10.0.0.0/24"},
            "prevResult": {"ips": [{"address": "10.0.0.2/24"}]},
            "runtimeConfig": {"mac": "aa:bb:cc:dd:ee:ff"},
            "args": {"cni": {"ips": ["10.0.0.9"]}},
            "cni.dev/attachments": [{"containerID": "c", "ifname": "eth0"}]
        }))
        .unwrap();
        assert_eq!(c.ipam.as_ref().unwrap().ipam_type, "host-local");
        assert_eq!(c.ipam.as_ref().unwrap().rest["subnet"], json!("10.0.0.0/24"));
        let prev = c.prev_result().unwrap().unwrap();
        assert_eq!(prev.version(), "1.1.0", "missing version takes the config's");
        assert_eq!(c.runtime_config.mac, "aa:bb:cc:dd:ee:ff");
        assert_eq!(c.args_cni("ips"), Some(&json!(["10.0.0.9"])));
        assert_eq!(c.valid_attachments.as_ref().or(c.attachments_legacy.as_ref()).unwrap()[0].container_id, "c");
    }

    #[test]
    fn prev_result_must_match_config_version_family() {
        let c: NetConf = serde_json::from_value(json!({"cniVersion": "0.4.0", "prevResult": {"cniVersion": "1.0.0"}})).unwrap();
        assert!(c.prev_result().unwrap_err().to_string().contains("could not parse prevResult"));
    }
}

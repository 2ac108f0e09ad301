//! Calling a plugin for one verb (Go's `pkg/invoke`): building its environment, decoding its
//! result or version reply, and delegation from one plugin to another (IPAM).

use crate::ctx::Ctx;
use crate::error::{Error, Result};
use crate::exec::{Exec, RawExec};
use crate::find::split_path_list;
use cni_types::result::decode_version;
use cni_types::{CniArgs, CniResult};
use serde_json::Value;
use std::path::Path;

/// The six `CNI_*` variables of one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginArgs {
    pub command: String,
    pub container_id: String,
    pub netns: String,
    pub plugin_args: Vec<(String, String)>,
    pub ifname: String,
    pub path: String,
}

impl PluginArgs {
    /// The environment overrides for this call; all six are always set (later wins over the
    /// caller's environment).
    pub fn to_env(&self) -> Vec<(String, String)> {
        vec![
            ("CNI_COMMAND".into(), self.command.clone()),
            ("CNI_CONTAINERID".into(), self.container_id.clone()),
            ("CNI_NETNS".into(), self.netns.clone()),
            ("CNI_ARGS".into(), CniArgs::to_env_string(&self.plugin_args)),
            ("CNI_IFNAME".into(), self.ifname.clone()),
            ("CNI_PATH".into(), self.path.clone()),
        ]
    }
}

/// A plugin's VERSION reply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PluginInfo {
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    #[serde(rename = "supportedVersions", default, skip_serializing_if = "Vec::is_empty")]
    pub supported_versions: Vec<String>,
}

impl PluginInfo {
    pub fn new(supported: &[&str]) -> Self {
        PluginInfo {
            cni_version: cni_types::version::CURRENT.into(),
            supported_versions: supported.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub fn supports(&self, version: &str) -> bool {
        self.supported_versions.iter().any(|v| v == version)
    }
}

/// Decodes a VERSION reply (Go's `PluginDecoder.Decode`).
pub fn decode_version_info(bytes: &[u8]) -> Result<PluginInfo> {
    #[derive(serde::Deserialize)]
    struct Raw {
        #[serde(rename = "cniVersion", default)]
        cni_version: Option<String>,
        #[serde(rename = "supportedVersions", default)]
        supported_versions: Option<Vec<String>>,
    }
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| Error::msg(format!("decoding version info: {e}")))?;
    let cni_version = raw.cni_version.unwrap_or_default();
    if cni_version.is_empty() {
        return Err(Error::msg("decoding version info: missing field cniVersion"));
    }
    let supported = raw.supported_versions.unwrap_or_default();
    if supported.is_empty() {
        if cni_version == "0.2.0" {
            return Ok(PluginInfo::new(cni_types::version::LEGACY));
        }
        return Err(Error::msg("decoding version info: missing field supportedVersions"));
    }
    Ok(PluginInfo { cni_version, supported_versions: supported })
}

/// The result's version, and bytes that carry it: a result without `cniVersion` takes the
/// config's (Go's `fixupResultVersion`).
fn fixup_result_version(netconf: &[u8], result: &[u8]) -> Result<(String, Vec<u8>)> {
    let conf_version = decode_version(netconf).map_err(|e| Error::msg(e.to_string()))?;
    let raw: Value = serde_json::from_slice(result).map_err(|e| Error::msg(format!("failed to unmarshal raw result: {e}")))?;
    let mut map = match raw {
        Value::Object(m) => m,
        Value::Null => Default::default(),
        other => {
            return Err(Error::msg(format!(
                "failed to unmarshal raw result: cannot unmarshal {} into a result object",
                cni_types::config::go_type_name(&other)
            )))
        }
    };
    if let Some(Value::String(v)) = map.get("cniVersion") {
        if !v.is_empty() {
            return Ok((v.clone(), result.to_vec()));
        }
    }
    map.insert("cniVersion".into(), Value::String(conf_version.clone()));
    Ok((conf_version, serde_json::to_vec(&map).expect("JSON map serializes")))
}

/// Runs a plugin and decodes its result.
pub fn exec_plugin_with_result(exec: &dyn Exec, ctx: &Ctx, plugin: &Path, netconf: &[u8], env: &[(String, String)]) -> Result<CniResult> {
    let stdout = exec.exec_plugin(ctx, plugin, netconf, env)?;
    let (version, bytes) = fixup_result_version(netconf, &stdout)?;
    CniResult::create(&version, &bytes).map_err(|e| Error::msg(e.to_string()))
}

/// Runs a plugin for a verb without a result.
pub fn exec_plugin_without_result(exec: &dyn Exec, ctx: &Ctx, plugin: &Path, netconf: &[u8], env: &[(String, String)]) -> Result<()> {
    exec.exec_plugin(ctx, plugin, netconf, env).map(|_| ())
}

/// Asks a plugin which spec versions it supports. A plugin too old to know VERSION is taken to
/// speak 0.1.0.
pub fn get_version_info(exec: &dyn Exec, ctx: &Ctx, plugin: &Path) -> Result<PluginInfo> {
    let args = PluginArgs {
        command: "VERSION".into(),
        // fake values required by plugins built against an older skel
        netns: "dummy".into(),
        ifname: "dummy".into(),
        path: "dummy".into(),
        ..Default::default()
    };
    let stdin = format!("{{\"cniVersion\":{:?}}}", cni_types::version::CURRENT);
    match exec.exec_plugin(ctx, plugin, stdin.as_bytes(), &args.to_env()) {
        Ok(out) => decode_version_info(&out),
        Err(e) if e.to_string() == "unknown CNI_COMMAND: VERSION" => Ok(PluginInfo::new(&["0.1.0"])),
        Err(e) => Err(e),
    }
}

/// Delegation, for plugins that call other plugins (IPAM): the delegate is found on this
/// process's `CNI_PATH` and inherits its environment with `CNI_COMMAND` replaced.
pub mod delegate {
    use super::*;

    fn run(ctx: &Ctx, plugin_type: &str, netconf: &[u8], verb: &str, want_result: bool) -> Result<Option<CniResult>> {
        let exec = RawExec::default();
        let paths = split_path_list(&std::env::var("CNI_PATH").unwrap_or_default());
        let path = exec.find_in_path(plugin_type, &paths)?;
        let env = vec![("CNI_COMMAND".to_string(), verb.to_string())];
        if want_result {
            exec_plugin_with_result(&exec, ctx, &path, netconf, &env).map(Some)
        } else {
            exec_plugin_without_result(&exec, ctx, &path, netconf, &env).map(|_| None)
        }
    }

    pub fn add(ctx: &Ctx, plugin_type: &str, netconf: &[u8]) -> Result<CniResult> {
        Ok(run(ctx, plugin_type, netconf, "ADD", true)?.expect("ADD returns a result"))
    }
    pub fn check(ctx: &Ctx, plugin_type: &str, netconf: &[u8]) -> Result<()> {
        run(ctx, plugin_type, netconf, "CHECK", false).map(|_| ())
    }
    pub fn del(ctx: &Ctx, plugin_type: &str, netconf: &[u8]) -> Result<()> {
        run(ctx, plugin_type, netconf, "DEL", false).map(|_| ())
    }
    pub fn status(ctx: &Ctx, plugin_type: &str, netconf: &[u8]) -> Result<()> {
        run(ctx, plugin_type, netconf, "STATUS", false).map(|_| ())
    }
    pub fn gc(ctx: &Ctx, plugin_type: &str, netconf: &[u8]) -> Result<()> {
        run(ctx, plugin_type, netconf, "GC", false).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_info_decoding() {
        let i = decode_version_info(br#"{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}"#).unwrap();
        assert!(i.supports("0.4.0") && !i.supports("1.1.0"));
        let i = decode_version_info(br#"{"cniVersion":"0.2.0"}"#).unwrap();
        assert_eq!(i.supported_versions, vec!["0.1.0", "0.2.0"]);
        assert_eq!(
            decode_version_info(br#"{"cniVersion":"1.0.0"}"#).unwrap_err().to_string(),
            "decoding version info: missing field supportedVersions"
        );
        assert_eq!(decode_version_info(br#"{}"#).unwrap_err().to_string(), "decoding version info: missing field cniVersion");
    }

    #[test]
    fn result_version_fixup() {
        let (v, b) = fixup_result_version(br#"{"cniVersion":"0.4.0"}"#, br#"{"ips":[]}"#).unwrap();
        assert_eq!(v, "0.4.0");
        assert_eq!(b, br#"{"cniVersion":"0.4.0","ips":[]}"#);
        let (v, _) = fixup_result_version(br#"{}"#, br#"{"cniVersion":""}"#).unwrap();
        assert_eq!(v, "0.1.0", "both missing: 0.1.0");
        let (v, b) = fixup_result_version(br#"{"cniVersion":"0.4.0"}"#, br#"{"cniVersion":"1.0.0"}"#).unwrap();
        assert_eq!((v.as_str(), b.as_slice()), ("1.0.0", &br#"{"cniVersion":"1.0.0"}"#[..]));
        let (v, _) = fixup_result_version(br#"{"cniVersion":"1.0.0"}"#, b"null").unwrap();
        assert_eq!(v, "1.0.0");
        assert!(fixup_result_version(br#"{}"#, b"").unwrap_err().to_string().starts_with("failed to unmarshal raw result"));
    }

    #[test]
    fn env_has_all_six() {
        let a = PluginArgs {
            command: "ADD".into(),
            container_id: "c".into(),
            plugin_args: vec![("A".into(), "1".into()), ("B".into(), "2".into())],
            ..Default::default()
        };
        let env = a.to_env();
        assert_eq!(env.len(), 6);
        assert!(env.contains(&("CNI_ARGS".into(), "A=1;B=2".into())));
        assert!(env.contains(&("CNI_NETNS".into(), "".into())));
    }
}

//! Network configuration: single plugin configs and configuration lists (conflists).
//!
//! Parsing follows Go's libcni (`NetworkConfFromBytes`, `NetworkPluginConfFromBytes`,
//! `ConfListFromConf`, `InjectConf`), including its error texts. Every plugin object is kept as a
//! JSON map, so keys rcni does not know reach the plugin unchanged (integers stay integers).

use crate::gojson;
use crate::version;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A configuration that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// The name Go's `%T` gives a decoded JSON value, for error texts that mirror Go's.
pub fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Looks a key up the way Go's decoder matches struct fields: exactly, else case-insensitively.
pub fn get_fold<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// One plugin's configuration: the raw object plus the fields the runtime needs.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// The whole plugin object, unknown keys included.
    pub conf: Map<String, Value>,
    /// `type`: the plugin executable's name.
    pub plugin_type: String,
    /// `name` (set in single-plugin configs; injected from the list otherwise).
    pub name: String,
    /// `cniVersion`.
    pub cni_version: String,
    /// `capabilities`: only the keys set to true are honoured.
    pub capabilities: BTreeMap<String, bool>,
    /// The bytes this config was parsed from (or, for list members, Go's re-encoding of them).
    pub bytes: Vec<u8>,
}

fn string_field(map: &Map<String, Value>, key: &str, what: &str) -> Result<String, ConfigError> {
    match get_fold(map, key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(err(format!(
            "error parsing configuration: json: cannot unmarshal {} into Go struct field {what}.{key} of type string",
            json_kind(v)
        ))),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl PluginConfig {
    /// Parses one plugin object (Go's `NetworkPluginConfFromBytes`); `type` is required.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| err(format!("error parsing configuration: {e}")))?;
        Self::from_value_with_bytes(value, bytes.to_vec())
    }

    /// Builds a plugin config from a decoded object; `bytes` becomes Go's encoding of it.
    pub fn from_map(conf: Map<String, Value>) -> Result<Self, ConfigError> {
        let bytes = gojson::to_vec(&conf);
        Self::from_value_with_bytes(Value::Object(conf), bytes)
    }

    fn from_value_with_bytes(value: Value, bytes: Vec<u8>) -> Result<Self, ConfigError> {
        let conf = match value {
            Value::Object(m) => m,
            other => {
                return Err(err(format!(
                    "error parsing configuration: json: cannot unmarshal {} into Go value of type types.PluginConf",
                    json_kind(&other)
                )))
            }
        };
        let plugin_type = string_field(&conf, "type", "PluginConf")?;
        let name = string_field(&conf, "name", "PluginConf")?;
        let cni_version = string_field(&conf, "cniVersion", "PluginConf")?;
        let capabilities = match get_fold(&conf, "capabilities") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(v) => BTreeMap::<String, bool>::deserialize(v)
                .map_err(|e| err(format!("error parsing configuration: capabilities must map names to booleans: {e}")))?,
        };
        match get_fold(&conf, "ipam") {
            None | Some(Value::Null) => {}
            Some(Value::Object(ipam)) => {
                string_field(ipam, "type", "IPAM")?;
            }
            Some(v) => {
                return Err(err(format!(
                    "error parsing configuration: json: cannot unmarshal {} into Go struct field PluginConf.ipam of type types.IPAM",
                    json_kind(v)
                )))
            }
        }
        if let Some(dns) = get_fold(&conf, "dns") {
            crate::result::Dns::deserialize(dns).map_err(|e| err(format!("error parsing configuration: invalid dns: {e}")))?;
        }
        match get_fold(&conf, "prevResult") {
            None | Some(Value::Null) | Some(Value::Object(_)) => {}
            Some(v) => {
                return Err(err(format!(
                    "error parsing configuration: json: cannot unmarshal {} into Go struct field PluginConf.prevResult of type map[string]interface {{}}",
                    json_kind(v)
                )))
            }
        }
        if plugin_type.is_empty() {
            return Err(err("error parsing configuration: missing 'type'"));
        }
        Ok(PluginConfig { conf, plugin_type, name, cni_version, capabilities, bytes })
    }

    /// The capabilities set to true, in name order.
    pub fn enabled_capabilities(&self) -> impl Iterator<Item = &str> {
        self.capabilities.iter().filter(|(_, on)| **on).map(|(k, _)| k.as_str())
    }

    /// A copy with keys set (Go's `InjectConf`): an empty key or a null value is an error.
    pub fn inject<I, K>(&self, values: I) -> Result<PluginConfig, ConfigError>
    where
        I: IntoIterator<Item = (K, Value)>,
        K: Into<String>,
    {
        let mut conf = self.conf.clone();
        for (key, value) in values {
            let key = key.into();
            if key.is_empty() {
                return Err(err("keys cannot be empty"));
            }
            if value.is_null() {
                return Err(err(format!("key '{key}' value must not be nil")));
            }
            conf.insert(key, value);
        }
        PluginConfig::from_map(conf)
    }

    /// A short description for error texts: `type="bridge"` plus ` name="x"` when named.
    pub fn description(&self) -> String {
        let mut out = format!("type={}", gojson::quote(&self.plugin_type));
        if !self.name.is_empty() {
            out.push_str(&format!(" name={}", gojson::quote(&self.name)));
        }
        out
    }
}

/// A network configuration list (conflist).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfigList {
    pub name: String,
    /// The version the list runs at (after `cniVersions` selection).
    pub cni_version: String,
    pub disable_check: bool,
    pub disable_gc: bool,
    pub load_only_inlined_plugins: bool,
    pub plugins: Vec<PluginConfig>,
    /// The bytes the list was loaded from, exactly (the result cache stores them).
    pub bytes: Vec<u8>,
}

fn list_err(msg: impl std::fmt::Display) -> ConfigError {
    err(format!("error parsing configuration list: {msg}"))
}

fn read_bool(raw: &Map<String, Value>, key: &str) -> Result<bool, ConfigError> {
    match raw.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.to_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(list_err(format!("invalid value {} for {key}", gojson::quote(other)))),
        },
        Some(v) => Err(list_err(format!("invalid type {} for {key}", go_type_name(v)))),
    }
}

impl NetworkConfigList {
    /// Parses a conflist (Go's `NetworkConfFromBytes`). Without `plugins` (and without
    /// `loadOnlyInlinedPlugins`), the list has no plugins yet: the loader appends the ones from
    /// `<dir>/<name>/*.conf`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ConfigError> {
        let raw: Map<String, Value> = match serde_json::from_slice::<Value>(bytes).map_err(list_err)? {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            other => {
                return Err(list_err(format!(
                    "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                    json_kind(&other)
                )))
            }
        };
        let name = match raw.get("name") {
            None => return Err(list_err("no name")),
            Some(Value::String(s)) => s.clone(),
            Some(v) => return Err(list_err(format!("invalid name type {}", go_type_name(v)))),
        };
        let mut cni_version = match raw.get("cniVersion") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(v) => return Err(list_err(format!("invalid cniVersion type {}", go_type_name(v)))),
        };
        if let Some(raw_versions) = raw.get("cniVersions") {
            let Value::Array(items) = raw_versions else {
                return Err(list_err(format!("invalid type for cniVersions: {}", go_type_name(raw_versions))));
            };
            let mut versions = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let Value::String(v) = item else {
                    return Err(list_err(format!("invalid type for cniVersions index {i}: {}", go_type_name(item))));
                };
                version::parse(v).map_err(|e| list_err(format!("invalid cniVersions entry {v} at index {i}: {e}")))?;
                versions.push(v.clone());
            }
            if !cni_version.is_empty() {
                version::parse(&cni_version).map_err(|e| list_err(format!("invalid cniVersion {cni_version}: {e}")))?;
            }
            cni_version = version::select(&cni_version, Some(&versions)).map_err(list_err)?;
        }
        let mut list = NetworkConfigList {
            name,
            cni_version,
            disable_check: read_bool(&raw, "disableCheck")?,
            disable_gc: read_bool(&raw, "disableGC")?,
            load_only_inlined_plugins: read_bool(&raw, "loadOnlyInlinedPlugins")?,
            plugins: Vec::new(),
            bytes: bytes.to_vec(),
        };
        let plugins = match raw.get("plugins") {
            None if list.load_only_inlined_plugins => return Err(list_err("`loadOnlyInlinedPlugins` is true, and no 'plugins' key")),
            None => return Ok(list),
            Some(Value::Array(p)) => p,
            Some(v) => return Err(list_err(format!("invalid 'plugins' type {}", go_type_name(v)))),
        };
        if plugins.is_empty() {
            return Err(list_err("no plugins in list"));
        }
        for (i, p) in plugins.iter().enumerate() {
            let bytes = gojson::to_vec(p);
            let conf = PluginConfig::from_value_with_bytes(p.clone(), bytes)
                .map_err(|e| err(format!("failed to parse plugin config {i}: {e}")))?;
            list.plugins.push(conf);
        }
        Ok(list)
    }

    /// Wraps a single plugin config as a one-plugin list (Go's `ConfListFromConf`); `bytes` is
    /// Go's encoding of `{"cniVersion","name","plugins":[conf]}`.
    pub fn from_conf(conf: &PluginConfig) -> Result<Self, ConfigError> {
        let mut raw = Map::new();
        raw.insert("name".into(), Value::String(conf.name.clone()));
        raw.insert("cniVersion".into(), Value::String(conf.cni_version.clone()));
        raw.insert("plugins".into(), Value::Array(vec![Value::Object(conf.conf.clone())]));
        Self::from_bytes(&gojson::to_vec(&raw))
    }

    /// Every capability enabled by some plugin of the list, in name order.
    pub fn capabilities(&self) -> Vec<String> {
        let mut caps: Vec<String> = self.plugins.iter().flat_map(|p| p.enabled_capabilities().map(String::from)).collect();
        caps.sort();
        caps.dedup();
        caps
    }

    /// The list as a standalone conflist object, for writing it to a config directory.
    ///
    /// It is the object the list was parsed from ([`bytes`](Self::bytes)), so keys rcni does not
    /// know (podman's `args`, say) stay exactly as they were, with each field written over the
    /// key it was read from where the field now says something else: `name`; `cniVersion` (a
    /// changed version also drops `cniVersions`, so the version set is the one that runs);
    /// `disableCheck`, `disableGC`, `loadOnlyInlinedPlugins` (as booleans); `plugins`, every one
    /// inline, including those a loader appended from `<dir>/<name>/`. Fields that still say
    /// what the object says leave its keys untouched (a `cniVersion` picked from `cniVersions`
    /// stays the older one for older readers; `"disableCheck": "true"` stays a string). A list
    /// without `bytes` (built by hand) gets the fields alone.
    pub fn to_value(&self) -> Value {
        let (mut raw, parsed) = match (serde_json::from_slice::<Value>(&self.bytes), Self::from_bytes(&self.bytes)) {
            (Ok(Value::Object(raw)), Ok(parsed)) => (raw, Some(parsed)),
            _ => (Map::new(), None),
        };
        let parsed = parsed.as_ref();
        if parsed.is_none_or(|p| p.name != self.name) {
            raw.insert("name".into(), Value::String(self.name.clone()));
        }
        if parsed.is_none_or(|p| p.cni_version != self.cni_version) {
            raw.insert("cniVersion".into(), Value::String(self.cni_version.clone()));
            raw.remove("cniVersions");
        }
        for (key, now, then) in [
            ("disableCheck", self.disable_check, parsed.map(|p| p.disable_check)),
            ("disableGC", self.disable_gc, parsed.map(|p| p.disable_gc)),
            ("loadOnlyInlinedPlugins", self.load_only_inlined_plugins, parsed.map(|p| p.load_only_inlined_plugins)),
        ] {
            if then.unwrap_or(false) != now {
                raw.insert(key.into(), Value::Bool(now));
            }
        }
        let same_plugins = |p: &NetworkConfigList| p.plugins.iter().map(|c| &c.conf).eq(self.plugins.iter().map(|c| &c.conf));
        if parsed.is_none_or(|p| !same_plugins(p)) {
            raw.insert("plugins".into(), Value::Array(self.plugins.iter().map(|c| Value::Object(c.conf.clone())).collect()));
        }
        Value::Object(raw)
    }

    /// [`to_value`](Self::to_value) as a conflist file's content: indented by four spaces
    /// (keys sorted, Go's escaping), with a final newline.
    pub fn to_json_pretty(&self) -> Vec<u8> {
        let mut out = gojson::to_vec_pretty(&self.to_value());
        out.push(b'\n');
        out
    }
}

/// One entry of `cni.dev/valid-attachments` (GC).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GcAttachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    #[serde(rename = "ifname")]
    pub ifname: String,
}

/// The two keys GC's attachment list travels under (spec 1.1.0 first named it `cni.dev/attachments`).
pub const VALID_ATTACHMENTS_KEYS: [&str; 2] = ["cni.dev/valid-attachments", "cni.dev/attachments"];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_written_conflist_keeps_its_numbers_exactly() {
        // (found by the conf fuzz target: serde_json's default float parsing is not correctly
        // rounded, so an integer too large for u64 and the shortest form of the f64 it was read
        // as read back as two different floats, and the written list loaded as another)
        for n in ["44444444444444444444444444444444444444444444444444444", "0.30000000000000004", "1.7976931348623157e308", "5e-324"] {
            let text = format!(r#"{{"cniVersion":"1.1.0","name":"h","plugins":[{{"type":"t","k":[{n}]}}]}}"#);
            let l = NetworkConfigList::from_bytes(text.as_bytes()).unwrap();
            let back = NetworkConfigList::from_bytes(&l.to_json_pretty()).unwrap();
            assert_eq!(back.plugins[0].conf, l.plugins[0].conf, "{n}");
            // and as Go reads it: the nearest float64
            let go: f64 = n.parse().unwrap();
            assert_eq!(l.plugins[0].conf["k"][0].as_f64(), Some(go), "{n}");
        }
    }

    #[test]
    fn conflist_basics_and_bool_strings() {
        let l = NetworkConfigList::from_bytes(
            br#"{"cniVersion":"1.0.0","name":"n","disableCheck":"TRUE","disableGC":false,
                 "plugins":[{"type":"bridge","mtu":1500,"big":12345678901234567890,"f":1.5,"capabilities":{"portMappings":true,"x":false}},{"type":"tuning"}]}"#,
        )
        .unwrap();
        assert_eq!(l.name, "n");
        assert!(l.disable_check && !l.disable_gc && !l.load_only_inlined_plugins);
        assert_eq!(l.plugins.len(), 2);
        let p = &l.plugins[0];
        assert_eq!(p.plugin_type, "bridge");
        assert_eq!(p.conf["mtu"], json!(1500));
        assert!(p.conf["mtu"].is_u64(), "integers stay integers");
        assert_eq!(p.conf["big"].to_string(), "12345678901234567890");
        assert_eq!(p.enabled_capabilities().collect::<Vec<_>>(), vec!["portMappings"]);
        assert_eq!(l.capabilities(), vec!["portMappings".to_string()]);
        assert_eq!(
            String::from_utf8(p.bytes.clone()).unwrap(),
            r#"{"big":12345678901234567890,"capabilities":{"portMappings":true,"x":false},"f":1.5,"mtu":1500,"type":"bridge"}"#
        );
    }

    #[test]
    fn conflist_errors_like_go() {
        let e = |b: &str| NetworkConfigList::from_bytes(b.as_bytes()).unwrap_err().to_string();
        assert_eq!(e(r#"{"plugins":[]}"#), "error parsing configuration list: no name");
        assert_eq!(e(r#"{"name":1}"#), "error parsing configuration list: invalid name type float64");
        assert_eq!(e(r#"{"name":"n","cniVersion":true}"#), "error parsing configuration list: invalid cniVersion type bool");
        assert_eq!(e(r#"{"name":"n","plugins":[]}"#), "error parsing configuration list: no plugins in list");
        assert_eq!(e(r#"{"name":"n","plugins":{}}"#), "error parsing configuration list: invalid 'plugins' type map[string]interface {}");
        assert_eq!(
            e(r#"{"name":"n","loadOnlyInlinedPlugins":true}"#),
            "error parsing configuration list: `loadOnlyInlinedPlugins` is true, and no 'plugins' key"
        );
        assert_eq!(e(r#"{"name":"n","disableCheck":"yes"}"#), r#"error parsing configuration list: invalid value "yes" for disableCheck"#);
        assert_eq!(e(r#"{"name":"n","disableGC":1}"#), "error parsing configuration list: invalid type float64 for disableGC");
        assert_eq!(
            e(r#"{"name":"n","plugins":[{"name":"x"}]}"#),
            "failed to parse plugin config 0: error parsing configuration: missing 'type'"
        );
        assert!(e(r#"{"name":"n","cniVersions":["1.0.f"]}"#).contains("invalid cniVersions entry 1.0.f at index 0"));
        assert!(e("not json").starts_with("error parsing configuration list:"));
        assert!(e(r#"{"name":"n","plugins":[{"type":5}]}"#).contains("PluginConf.type of type string"));
        assert!(e(r#"{"name":"n","plugins":[{"type":"x","capabilities":{"a":1}}]}"#).contains("capabilities"));
    }

    #[test]
    fn list_without_plugins_is_allowed_unless_inlined_only() {
        let l = NetworkConfigList::from_bytes(br#"{"name":"n","cniVersion":"1.0.0"}"#).unwrap();
        assert!(l.plugins.is_empty());
    }

    #[test]
    fn version_selection_in_list() {
        let l = NetworkConfigList::from_bytes(
            br#"{"name":"n","cniVersion":"0.4.0","cniVersions":["1.1.0","0.4.0","1.0.0","99.0.0"],"plugins":[{"type":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(l.cni_version, "1.1.0");
        let l = NetworkConfigList::from_bytes(br#"{"name":"n","cniVersion":"1.2.3","plugins":[{"type":"x"}]}"#).unwrap();
        assert_eq!(l.cni_version, "1.2.3");
        let l = NetworkConfigList::from_bytes(br#"{"name":"n","cniVersions":[],"plugins":[{"type":"x"}]}"#).unwrap();
        assert_eq!(l.cni_version, "");
    }

    #[test]
    fn conf_to_list_round_trip() {
        let c = PluginConfig::from_bytes(br#"{"cniVersion":"0.3.1","name":"single","type":"bridge","bridge":"br<0>"}"#).unwrap();
        let l = NetworkConfigList::from_conf(&c).unwrap();
        assert_eq!(l.name, "single");
        assert_eq!(l.cni_version, "0.3.1");
        assert_eq!(l.plugins.len(), 1);
        assert_eq!(l.plugins[0].conf, c.conf);
        assert_eq!(
            String::from_utf8(l.bytes).unwrap(),
            r#"{"cniVersion":"0.3.1","name":"single","plugins":[{"bridge":"br\u003c0\u003e","cniVersion":"0.3.1","name":"single","type":"bridge"}]}"#
        );
    }

    /// The fields and plugins of a list, for comparing lists apart from their bytes.
    fn meaning(l: &NetworkConfigList) -> (String, String, [bool; 3], Vec<Map<String, Value>>) {
        let flags = [l.disable_check, l.disable_gc, l.load_only_inlined_plugins];
        (l.name.clone(), l.cni_version.clone(), flags, l.plugins.iter().map(|p| p.conf.clone()).collect())
    }

    #[test]
    fn to_value_keeps_what_it_does_not_know() {
        let text = r#"{"cniVersion":"0.4.0","cniVersions":["1.1.0","0.4.0"],"name":"n","disableCheck":"TRUE",
            "args":{"podman_labels":{"a":"<b>"},"podman_options":{"isolate":"true"}},"x-big":12345678901234567890,"x-f":1.5,
            "plugins":[{"type":"bridge","mtu":1500,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.1.0.0/16"}]]},"unknown":[null,true,{}]}]}"#;
        let l = NetworkConfigList::from_bytes(text.as_bytes()).unwrap();
        let original: Value = serde_json::from_str(text).unwrap();
        assert_eq!(l.to_value(), original, "unchanged list: the object it came from, unknown keys, string booleans and cniVersion");
        let again = NetworkConfigList::from_bytes(&l.to_json_pretty()).unwrap();
        assert_eq!(meaning(&again), meaning(&l));
        assert_eq!(again.to_value(), original);
        assert!(l.to_json_pretty().ends_with(b"}\n"));
        assert!(String::from_utf8(l.to_json_pretty()).unwrap().contains(r#""a": "\u003cb\u003e""#), "Go's escaping, 4-space indent");

        let mut m = l.clone();
        m.name = "m".into();
        m.disable_check = false;
        m.disable_gc = true;
        m.plugins[0] = m.plugins[0].inject([("mtu", json!(9000))]).unwrap();
        let v = m.to_value();
        assert_eq!(
            (&v["name"], &v["disableCheck"], &v["disableGC"], &v["plugins"][0]["mtu"]),
            (&json!("m"), &json!(false), &json!(true), &json!(9000))
        );
        assert_eq!((&v["args"], &v["x-big"], &v["cniVersions"]), (&original["args"], &original["x-big"], &original["cniVersions"]));
        assert_eq!(v["plugins"][0]["unknown"], original["plugins"][0]["unknown"]);
        assert_eq!(meaning(&NetworkConfigList::from_bytes(&m.to_json_pretty()).unwrap()), meaning(&m));

        // a version set by hand is the one that runs
        let mut m = l.clone();
        m.cni_version = "1.0.0".into();
        let v = m.to_value();
        assert_eq!(v["cniVersion"], "1.0.0");
        assert!(v.get("cniVersions").is_none());
        assert_eq!(NetworkConfigList::from_bytes(&m.to_json_pretty()).unwrap().cni_version, "1.0.0");
    }

    #[test]
    fn to_value_inlines_every_plugin() {
        // plugins a loader appended from <dir>/<name>/ (the file had none inline)
        let mut l = NetworkConfigList::from_bytes(br#"{"cniVersion":"1.0.0","name":"n","args":{"k":1}}"#).unwrap();
        l.plugins.push(PluginConfig::from_bytes(br#"{"type":"from-dir","k":[1]}"#).unwrap());
        let v = l.to_value();
        assert_eq!(v, json!({"cniVersion":"1.0.0","name":"n","args":{"k":1},"plugins":[{"type":"from-dir","k":[1]}]}));
        // a list built by hand, without bytes
        let hand = NetworkConfigList { bytes: Vec::new(), name: "h".into(), cni_version: "1.1.0".into(), ..l.clone() };
        assert_eq!(hand.to_value(), json!({"cniVersion":"1.1.0","name":"h","plugins":[{"type":"from-dir","k":[1]}]}));
        // from a single-plugin config
        let c = PluginConfig::from_bytes(br#"{"cniVersion":"0.3.1","name":"single","type":"bridge","x":{"y":2}}"#).unwrap();
        let w = NetworkConfigList::from_conf(&c).unwrap();
        assert_eq!(meaning(&NetworkConfigList::from_bytes(&w.to_json_pretty()).unwrap()), meaning(&w));
    }

    #[test]
    fn inject_rules() {
        let c = PluginConfig::from_bytes(br#"{"type":"x","prevResult":{"cniVersion":"1.0.0"}}"#).unwrap();
        let c2 = c.inject([("name", json!("n")), ("cniVersion", json!("1.0.0"))]).unwrap();
        assert_eq!(c2.name, "n");
        assert_eq!(c2.cni_version, "1.0.0");
        assert_eq!(c2.conf["prevResult"], json!({"cniVersion":"1.0.0"}), "file's prevResult survives");
        assert_eq!(c.inject([("", json!(1))]).unwrap_err().to_string(), "keys cannot be empty");
        assert_eq!(c.inject([("k", Value::Null)]).unwrap_err().to_string(), "key 'k' value must not be nil");
    }

    #[test]
    fn go_style_case_insensitive_fields() {
        let c = PluginConfig::from_bytes(br#"{"Type":"x","NAME":"n"}"#).unwrap();
        assert_eq!(c.plugin_type, "x");
        assert_eq!(c.name, "n");
        assert_eq!(c.description(), r#"type="x" name="n""#);
    }
}

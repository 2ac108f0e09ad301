//! Capability arguments as a plugin receives them in `runtimeConfig` (both spellings, the
//! flat and nested `ipRanges`), and as the runtime injects them into a plugin config. Nothing
//! panics; what parses serialises to camelCase that parses back to the same value.
#![no_main]

use cni_types::{NetConf, PluginConfig, RuntimeConfig};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else { return };
    if let Ok(rc) = serde_json::from_value::<RuntimeConfig>(v.clone()) {
        let out = serde_json::to_value(&rc).expect("serialises");
        let back: RuntimeConfig = serde_json::from_value(out.clone()).unwrap_or_else(|e| panic!("{out} does not parse back: {e}"));
        assert_eq!(rc, back, "{out}");
    }
    let base = PluginConfig::from_bytes(br#"{"cniVersion":"1.1.0","name":"n","type":"portmap","capabilities":{"portMappings":true}}"#)
        .expect("base config");
    if v.is_null() {
        return;
    }
    let conf = base.inject([("runtimeConfig", v)]).expect("a non-null value injects");
    if let Ok(nc) = serde_json::from_slice::<NetConf>(&conf.bytes) {
        let _ = nc.runtime_config.port_mappings.len();
    }
});

//! OCI runtime hooks: what a bundle needs to network itself through a runtime's createRuntime
//! and poststop hooks ([`bundle`]), the container files they provide ([`etc_files`]: hosts,
//! resolv.conf), and the state the runtime hands its hooks ([`State`]). Pure functions over
//! the JSON and text, fuzzed (`fuzz/fuzz_targets/oci.rs`); `rcni oci-hook` does the I/O.

pub mod bundle;
pub mod etc_files;

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The OCI state a runtime gives its hooks on stdin (the fields hooks use).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct State {
    pub id: String,
    #[serde(default)]
    pub pid: i64,
    #[serde(default)]
    pub bundle: PathBuf,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl State {
    /// Parses the state; its ID must be a valid CNI container ID (it becomes one).
    pub fn parse(bytes: &[u8]) -> Result<State, String> {
        let state: State = serde_json::from_slice(bytes).map_err(|e| format!("the OCI state: {e}"))?;
        cni_types::validate::container_id(&state.id).map_err(|e| format!("container ID {:?}: {}", state.id, e.msg))?;
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_as_runc_gives_it() {
        let s = State::parse(br#"{"ociVersion":"1.0.2","id":"web1","status":"creating","pid":42,"bundle":"/b","annotations":{"a":"b"}}"#)
            .unwrap();
        assert_eq!((s.id.as_str(), s.pid, s.bundle.to_str().unwrap(), s.annotations["a"].as_str()), ("web1", 42, "/b", "b"));
        assert_eq!(State::parse(br#"{"id":"x"}"#).unwrap().pid, 0, "poststop's state may have no pid");
        for bad in [&b"{}"[..], b"[]", br#"{"id":"../x"}"#, br#"{"id":"ok","pid":"1"}"#, br#"{"id":"ok","annotations":{"a":1}}"#] {
            assert!(State::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}

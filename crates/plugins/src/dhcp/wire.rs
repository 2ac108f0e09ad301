//! The plugin ↔ daemon protocol on the unix socket: one JSON object per line each way. The plugin
//! sends a [`Request`] and reads one [`Response`]; then the connection closes. (The reference
//! speaks Go's net/rpc over HTTP here; rcni's plugin talks to rcni's daemon only:
//! docs/compatibility.md.)

use cni_types::CniError;
use serde::{Deserialize, Serialize};

/// Longest request line the daemon reads (a network configuration with its prevResult).
pub const MAX_REQUEST: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// ADD, DEL or CHECK.
    pub command: String,
    #[serde(rename = "containerID")]
    pub container_id: String,
    #[serde(default)]
    pub netns: String,
    pub ifname: String,
    /// `CNI_ARGS`.
    #[serde(default)]
    pub args: String,
    /// The plugin's stdin: the network configuration.
    pub config: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CniError>,
}

/// Parses one request line (without its newline); too long, not UTF-8 JSON, an unknown command
/// or empty names are refused with the reason.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    if line.len() > MAX_REQUEST {
        return Err(format!("request of {} bytes: more than {MAX_REQUEST}", line.len()));
    }
    let r: Request = serde_json::from_slice(line).map_err(|e| format!("malformed request: {e}"))?;
    if !matches!(r.command.as_str(), "ADD" | "DEL" | "CHECK") {
        return Err(format!("unknown command {:?} (ADD, DEL or CHECK)", r.command));
    }
    cni_types::validate::container_id(&r.container_id).map_err(|e| e.msg)?;
    cni_types::validate::interface_name(&r.ifname).map_err(|e| e.msg)?;
    if r.command != "DEL" && r.netns.is_empty() {
        return Err(format!("{} needs a network namespace", r.command));
    }
    if !r.config.is_object() {
        return Err("the configuration is not a JSON object".into());
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let ok = br#"{"command":"ADD","containerID":"c1","netns":"/run/netns/x","ifname":"eth0","args":"","config":{"name":"n"}}"#;
        let r = parse_request(ok).unwrap();
        assert_eq!((r.command.as_str(), r.container_id.as_str()), ("ADD", "c1"));
        assert_eq!(parse_request(serde_json::to_string(&r).unwrap().as_bytes()).unwrap(), r);
        for (bad, why) in [
            (&br#"{"command":"GC","containerID":"c1","ifname":"eth0","config":{}}"#[..], "unknown command"),
            (br#"{"command":"ADD","containerID":"c1","ifname":"eth0","config":{}}"#, "network namespace"),
            (br#"{"command":"DEL","containerID":"c/1","ifname":"eth0","config":{}}"#, ""),
            (br#"{"command":"DEL","containerID":"c1","ifname":"eth0","config":[]}"#, "not a JSON object"),
            (br#"{"command":"DEL","containerID":"c1","ifname":"eth0","config":{},"x":1}"#, "unknown field"),
            (b"\xff", "malformed"),
        ] {
            let e = parse_request(bad).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        assert!(parse_request(&vec![b' '; MAX_REQUEST + 1]).unwrap_err().contains("more than"));
    }
}

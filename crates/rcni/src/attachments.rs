//! What the result cache says about the node's attachments, for the commands that show them
//! (`rcni ps`, `rcni network ls/inspect/rm`, `rcni netns ls`): one attachment's container,
//! namespace (and whether it is still there), network, interface, addresses, published ports and
//! age.

use cni_runtime::cache::Cached;
use cni_runtime::{Cache, NetworkAttachment};
use cni_types::capabilities::PortMapping;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::SystemTime;

/// One cached attachment, as shown.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub container_id: String,
    pub network: String,
    pub ifname: String,
    pub netns: String,
    /// The namespace still opens as one (`None`: none recorded).
    pub netns_exists: Option<bool>,
    /// Addresses with prefix, from the cached result.
    pub ips: Vec<String>,
    /// `[HOST_IP:]HOST_PORT:CONTAINER_PORT/PROTO`, from the cached capability arguments.
    pub ports: Vec<String>,
    /// When the cache entry was written.
    pub since: Option<SystemTime>,
}

impl Attachment {
    pub fn from_cache(cache: &Cache, a: &NetworkAttachment) -> Attachment {
        let (ips, since) = match cache.read(&a.network, &a.container_id, &a.ifname) {
            Ok(Cached::Entry(info)) => {
                let ips = info
                    .raw_result
                    .get("ips")
                    .and_then(Value::as_array)
                    .map(|l| l.iter().filter_map(|i| i.get("address").and_then(Value::as_str).map(String::from)).collect())
                    .unwrap_or_default();
                let since =
                    cache.file_path(&a.network, &a.container_id, &a.ifname).ok().and_then(|p| std::fs::metadata(p).ok()?.modified().ok());
                (ips, since)
            }
            _ => (Vec::new(), None),
        };
        let ports = a
            .capability_args
            .get("portMappings")
            .and_then(Value::as_array)
            .map(|l| l.iter().filter_map(port_text).collect())
            .unwrap_or_default();
        let netns_exists = (!a.netns.is_empty()).then(|| netkit::NetNs::open_if_present(&a.netns).is_ok_and(|n| n.is_some()));
        Attachment {
            container_id: a.container_id.clone(),
            network: a.network.clone(),
            ifname: a.ifname.clone(),
            netns: a.netns.clone(),
            netns_exists,
            ips,
            ports,
            since,
        }
    }

    /// Seconds since the entry was written.
    pub fn age_secs(&self) -> Option<u64> {
        self.since.and_then(|t| t.elapsed().ok()).map(|d| d.as_secs())
    }

    /// The stable JSON form (`rcni ps --format json`, `network inspect`).
    pub fn to_json(&self) -> Value {
        json!({
            "containerID": self.container_id,
            "network": self.network,
            "ifname": self.ifname,
            "netns": self.netns,
            "netnsExists": self.netns_exists,
            "ips": self.ips,
            "ports": self.ports,
            "since": self.since.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok()).map(|d| d.as_secs()),
        })
    }
}

/// A cached `portMappings` entry as shown. Read as the plugins read it (`PortMapping`), so the
/// capitalised keys go-cni writes (`HostPort`, containerd's caches) show as well.
fn port_text(p: &Value) -> Option<String> {
    let m = PortMapping::deserialize(p).ok()?;
    let (host, cont) = (m.host_port, m.container_port);
    let proto = if m.protocol.is_empty() { "tcp" } else { m.protocol.as_str() };
    Some(match m.host_ip.as_str() {
        "" => format!("{host}:{cont}/{proto}"),
        ip if ip.contains(':') => format!("[{ip}]:{host}:{cont}/{proto}"),
        ip => format!("{ip}:{host}:{cont}/{proto}"),
    })
}

/// Every attachment the default cache (`/var/lib/cni`) holds, of one network or all (`""`).
pub fn cached(network: &str) -> Result<Vec<Attachment>, String> {
    let cache = Cache::new(cni_runtime::cache::DEFAULT_CACHE_DIR);
    let all = if network.is_empty() { cache.attachments("") } else { cache.network_attachments(network) };
    Ok(all.map_err(|e| format!("reading the result cache: {e}"))?.iter().map(|a| Attachment::from_cache(&cache, a)).collect())
}

/// "3s", "5m", "2h", "4d".
pub fn age_text(secs: Option<u64>) -> String {
    match secs {
        None => "-".into(),
        Some(s) if s < 60 => format!("{s}s"),
        Some(s) if s < 3600 => format!("{}m", s / 60),
        Some(s) if s < 86400 => format!("{}h", s / 3600),
        Some(s) => format!("{}d", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_ages() {
        assert_eq!(port_text(&json!({"hostPort": 8080, "containerPort": 80, "protocol": "tcp"})).unwrap(), "8080:80/tcp");
        assert_eq!(
            port_text(&json!({"hostPort": 53, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"})).unwrap(),
            "127.0.0.1:53:53/udp"
        );
        assert_eq!(port_text(&json!({"hostPort": 1, "containerPort": 2, "hostIP": "::1"})).unwrap(), "[::1]:1:2/tcp");
        assert_eq!(port_text(&json!({"containerPort": 2})), None);
        // go-cni (containerd's CRI plugin) caches Go's field names, and "" for no host IP
        let go = json!({"HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""});
        assert_eq!(port_text(&go).unwrap(), "8080:80/tcp");
        assert_eq!(
            port_text(&json!({"HostPort": 53, "ContainerPort": 5353, "Protocol": "udp", "HostIP": "10.0.0.1"})).unwrap(),
            "10.0.0.1:53:5353/udp"
        );
        assert_eq!(
            (age_text(Some(5)), age_text(Some(125)), age_text(Some(7300)), age_text(Some(200000)), age_text(None)),
            ("5s".into(), "2m".into(), "2h".into(), "2d".into(), "-".into())
        );
    }
}

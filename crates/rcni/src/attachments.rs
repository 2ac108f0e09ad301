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
    /// The namespace the cache records (libcni ≥ 1.2, rcni), or else the `sandbox` of the cached
    /// result's container interface: libcni 1.1 and older (podman 4, containerd 1.6, Go's
    /// cnitool 1.1) write no `netns`, but their plugins' results name it. Empty: neither.
    pub netns: String,
    /// The namespace still opens as one (`None`: none known).
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
        let (ips, since, sandbox) = match cache.read(&a.network, &a.container_id, &a.ifname) {
            Ok(Cached::Entry(info)) => {
                let ips = info
                    .raw_result
                    .get("ips")
                    .and_then(Value::as_array)
                    .map(|l| l.iter().filter_map(|i| i.get("address").and_then(Value::as_str).map(String::from)).collect())
                    .unwrap_or_default();
                let since =
                    cache.file_path(&a.network, &a.container_id, &a.ifname).ok().and_then(|p| std::fs::metadata(p).ok()?.modified().ok());
                (ips, since, sandbox_of(&info.raw_result, &a.ifname))
            }
            _ => (Vec::new(), None, None),
        };
        // a runtime caches every capability argument with every network (as libcni does); only
        // a network with a plugin that takes portMappings publishes them
        let publishes =
            cni_types::NetworkConfigList::from_bytes(&a.config).map_or(true, |l| l.capabilities().iter().any(|c| c == "portMappings"));
        let ports = a
            .capability_args
            .get("portMappings")
            .and_then(Value::as_array)
            .filter(|_| publishes)
            .map(|l| l.iter().filter_map(port_text).collect())
            .unwrap_or_default();
        let netns = if a.netns.is_empty() { sandbox.unwrap_or_default() } else { a.netns.clone() };
        let netns_exists = (!netns.is_empty()).then(|| netkit::NetNs::open_if_present(&netns).is_ok_and(|n| n.is_some()));
        Attachment {
            container_id: a.container_id.clone(),
            network: a.network.clone(),
            ifname: a.ifname.clone(),
            netns,
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

/// The `sandbox` a result gives for interface `ifname` (or, when no interface has that name, the
/// first interface with one).
fn sandbox_of(result: &serde_json::Map<String, Value>, ifname: &str) -> Option<String> {
    let ifaces = result.get("interfaces")?.as_array()?;
    let sandbox = |i: &Value| i.get("sandbox").and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from);
    ifaces
        .iter()
        .find(|i| i.get("name").and_then(Value::as_str) == Some(ifname))
        .and_then(sandbox)
        .or_else(|| ifaces.iter().find_map(sandbox))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache file as podman 4.3's libcni (1.1) writes it: no `netns` key, the namespace only in
    /// the result's `sandbox`.
    fn podman_entry(id: &str, netns: Option<&str>) -> String {
        let ns = netns.map(|n| format!(r#""netns":"{n}","#)).unwrap_or_default();
        format!(
            r#"{{"kind":"cniCacheV1","containerId":"{id}","config":"e30=","ifName":"eth0","networkName":"web",{ns}"cniArgs":[["IgnoreUnknown","1"],["K8S_POD_NAME","p1"]],"capabilityArgs":{{"portMappings":[{{"hostPort":8080,"containerPort":80,"protocol":"tcp"}}]}},"result":{{"cniVersion":"1.0.0","interfaces":[{{"mac":"26:9e:da:34:42:5a","name":"rcni-4053485bc9"}},{{"mac":"26:9e:da:34:42:5b","name":"veth2dcc6b80"}},{{"mac":"f6:1f:d2:c3:55:68","name":"eth0","sandbox":"/run/netns/netns-{id}"}}],"ips":[{{"address":"10.226.0.2/24","gateway":"10.226.0.1","interface":2}}]}}}}"#
        )
    }

    #[test]
    fn the_namespace_comes_from_the_result_when_the_cache_records_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("results")).unwrap();
        std::fs::write(dir.path().join("results/web-p1-eth0"), podman_entry("p1", None)).unwrap();
        std::fs::write(dir.path().join("results/web-p2-eth0"), podman_entry("p2", Some("/var/run/netns/recorded"))).unwrap();
        let cache = Cache::new(dir.path());
        let mut all: Vec<Attachment> = cache.attachments("").unwrap().iter().map(|a| Attachment::from_cache(&cache, a)).collect();
        all.sort_by(|a, b| a.container_id.cmp(&b.container_id));
        let shown: Vec<(&str, &str, Option<bool>)> =
            all.iter().map(|a| (a.container_id.as_str(), a.netns.as_str(), a.netns_exists)).collect();
        assert_eq!(
            shown,
            [("p1", "/run/netns/netns-p1", Some(false)), ("p2", "/var/run/netns/recorded", Some(false))],
            "a recorded netns wins"
        );
        assert_eq!((all[0].ips.clone(), all[0].ports.clone()), (vec!["10.226.0.2/24".to_string()], vec!["8080:80/tcp".to_string()]));
        // the same capability arguments cached with a network that publishes no ports (the
        // loopback attachment of one container): no ports shown for it
        std::fs::write(
            dir.path().join("results/web-p2-eth0"),
            podman_entry("p2", None).replace(
                r#""config":"e30=""#,
                r#""config":"eyJjbmlWZXJzaW9uIjoiMS4wLjAiLCJuYW1lIjoiY25pLWxvb3BiYWNrIiwicGx1Z2lucyI6W3sidHlwZSI6Imxvb3BiYWNrIn1dfQ==""#,
            ),
        )
        .unwrap();
        let a = Attachment::from_cache(&cache, &cache.attachments("p2").unwrap()[0]);
        assert!(a.ports.is_empty(), "{:?}", a.ports);
        // a result naming no sandbox: nothing to show
        std::fs::write(dir.path().join("results/web-p1-eth0"), podman_entry("p1", None).replace(r#","sandbox":"/run/netns/netns-p1""#, ""))
            .unwrap();
        let a = Attachment::from_cache(&cache, &cache.attachments("p1").unwrap()[0]);
        assert_eq!((a.netns.as_str(), a.netns_exists), ("", None));
    }

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

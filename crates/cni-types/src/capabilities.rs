//! The well-known capability arguments (CONVENTIONS.md) as they arrive in `runtimeConfig`.
//!
//! containerd's go-cni marshals its structs without JSON tags, so their keys arrive capitalised
//! (`HostPort`, `Subnet`, `IngressRate` …); Go plugins accept them because Go matches keys
//! case-insensitively. These types accept both spellings and always emit the camelCase ones.

use crate::serde_util::nullable;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// `portMappings` entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PortMapping {
    #[serde(rename = "hostPort", alias = "HostPort", alias = "hostport")]
    pub host_port: u16,
    #[serde(rename = "containerPort", alias = "ContainerPort", alias = "containerport")]
    pub container_port: u16,
    #[serde(default, alias = "Protocol", deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(
        rename = "hostIP",
        alias = "HostIP",
        alias = "hostIp",
        alias = "hostip",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub host_ip: String,
}

/// `ipRanges` entry (one range of a range set).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IpRange {
    #[serde(alias = "Subnet")]
    pub subnet: String,
    #[serde(rename = "rangeStart", alias = "RangeStart", default, deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub range_start: String,
    #[serde(rename = "rangeEnd", alias = "RangeEnd", default, deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub range_end: String,
    #[serde(alias = "Gateway", default, deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub gateway: String,
}

/// `bandwidth`: rates in bits per second, bursts in bits.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Bandwidth {
    #[serde(rename = "ingressRate", alias = "IngressRate", default, deserialize_with = "nullable")]
    pub ingress_rate: u64,
    #[serde(rename = "ingressBurst", alias = "IngressBurst", default, deserialize_with = "nullable")]
    pub ingress_burst: u64,
    #[serde(rename = "egressRate", alias = "EgressRate", default, deserialize_with = "nullable")]
    pub egress_rate: u64,
    #[serde(rename = "egressBurst", alias = "EgressBurst", default, deserialize_with = "nullable")]
    pub egress_burst: u64,
}

/// `dns` capability (note: `servers`/`searches`, unlike the result's `nameservers`/`search`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DnsCapability {
    #[serde(alias = "Servers", default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    #[serde(alias = "Searches", default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub searches: Vec<String>,
    #[serde(alias = "Options", default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// `runtimeConfig` as a plugin receives it. Keys not listed here stay in `other`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RuntimeConfig {
    #[serde(
        rename = "portMappings",
        alias = "PortMappings",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub port_mappings: Vec<PortMapping>,
    #[serde(
        rename = "ipRanges",
        alias = "IpRanges",
        alias = "IPRanges",
        default,
        deserialize_with = "range_sets",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ip_ranges: Vec<Vec<IpRange>>,
    #[serde(alias = "Bandwidth", alias = "bandWidth", alias = "BandWidth", default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
    #[serde(alias = "DNS", alias = "Dns", default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsCapability>,
    #[serde(alias = "IPs", alias = "Ips", default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    #[serde(alias = "MAC", alias = "Mac", default, deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(
        rename = "infinibandGUID",
        alias = "InfinibandGUID",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    pub infiniband_guid: String,
    #[serde(rename = "deviceID", alias = "DeviceID", default, deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub device_id: String,
    #[serde(alias = "Aliases", default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(rename = "cgroupPath", alias = "CgroupPath", default, deserialize_with = "nullable", skip_serializing_if = "String::is_empty")]
    pub cgroup_path: String,
    /// `io.kubernetes.cri.pod-annotations` (de facto, not in CONVENTIONS.md).
    #[serde(rename = "io.kubernetes.cri.pod-annotations", default, deserialize_with = "nullable", skip_serializing_if = "Map::is_empty")]
    pub pod_annotations: Map<String, Value>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `ipRanges` is a list of range sets; go-cni sends one flat list, taken here as one set.
fn range_sets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<IpRange>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shape {
        Sets(Vec<Vec<IpRange>>),
        Flat(Vec<IpRange>),
    }
    Ok(match Option::<Shape>::deserialize(d)? {
        None => Vec::new(),
        Some(Shape::Sets(s)) => s,
        Some(Shape::Flat(f)) if f.is_empty() => Vec::new(),
        Some(Shape::Flat(f)) => vec![f],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_cni_capitalised_keys() {
        let rc: RuntimeConfig = serde_json::from_value(json!({
            "portMappings": [{"HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}],
            "ipRanges": [{"Subnet": "10.1.0.0/16", "RangeStart": "", "RangeEnd": "", "Gateway": ""}],
            "bandwidth": {"IngressRate": 1000, "IngressBurst": 10, "EgressRate": 0, "EgressBurst": 0},
            "dns": {"Servers": ["1.1.1.1"], "Searches": null, "Options": []},
            "cgroupPath": "/k/p",
            "somethingElse": {"a": 1}
        }))
        .unwrap();
        assert_eq!(rc.port_mappings[0], PortMapping { host_port: 8080, container_port: 80, protocol: "tcp".into(), host_ip: "".into() });
        assert_eq!(rc.ip_ranges.len(), 1);
        assert_eq!(rc.ip_ranges[0][0].subnet, "10.1.0.0/16");
        assert_eq!(rc.bandwidth.unwrap().ingress_rate, 1000);
        assert_eq!(rc.dns.unwrap().servers, vec!["1.1.1.1"]);
        assert_eq!(rc.cgroup_path, "/k/p");
        assert_eq!(rc.other["somethingElse"], json!({"a": 1}));
    }

    #[test]
    fn conventions_keys_round_trip() {
        let v = json!({
            "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "udp", "hostIP": "127.0.0.1"}],
            "ipRanges": [[{"subnet": "10.1.0.0/16"}], [{"subnet": "fd00::/64", "gateway": "fd00::1"}]],
            "ips": ["10.1.0.9/16"], "mac": "aa:bb:cc:dd:ee:ff", "infinibandGUID": "g", "deviceID": "0000:00:01.0",
            "aliases": ["a"], "io.kubernetes.cri.pod-annotations": {"k": "v"}
        });
        let rc: RuntimeConfig = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(rc.ip_ranges.len(), 2);
        assert_eq!(serde_json::to_value(&rc).unwrap(), v);
    }
}

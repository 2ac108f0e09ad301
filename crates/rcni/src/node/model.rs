//! The pure part of `rcni node`: flannel's etcd layout (keys, the config and lease JSON), the
//! choice of a free subnet, and the files written for the runtime. No I/O, unit-tested.

use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// `<prefix>/config`: the cluster network, as flannel writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    #[serde(rename = "Network", with = "as_string")]
    pub network: Ipv4Net,
    #[serde(rename = "SubnetLen", default)]
    pub subnet_len: u8,
    #[serde(rename = "Backend", default)]
    pub backend: BackendConfig,
}

/// A value that travels as its string form.
mod as_string {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    use std::fmt::Display;
    use std::str::FromStr;

    pub fn serialize<T: Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }
    pub fn deserialize<'de, T: FromStr<Err: Display>, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct BackendConfig {
    #[serde(rename = "Type", default)]
    pub kind: String,
    #[serde(rename = "VNI", default, skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
}

impl Config {
    /// Parses a stored config; flannel's defaults fill what is missing (SubnetLen 24 for a
    /// network of /22 or larger, else prefix+2).
    pub fn parse(raw: &[u8]) -> Result<Config, String> {
        let mut c: Config = serde_json::from_slice(raw).map_err(|e| format!("bad config JSON: {e}"))?;
        if c.subnet_len == 0 {
            c.subnet_len = if c.network.prefix_len() <= 22 { 24 } else { c.network.prefix_len() + 2 };
        }
        if c.subnet_len <= c.network.prefix_len() || c.subnet_len > 30 {
            return Err(format!("SubnetLen {} does not fit Network {}", c.subnet_len, c.network));
        }
        Ok(c)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("config serialises")
    }

    /// Why `stored` cannot be used where `self` was asked for, or None when they agree.
    pub fn conflict(&self, stored: &Config) -> Option<String> {
        let mut diffs = Vec::new();
        if self.network != stored.network {
            diffs.push(format!("Network {} (asked {})", stored.network, self.network));
        }
        if self.subnet_len != stored.subnet_len {
            diffs.push(format!("SubnetLen {} (asked {})", stored.subnet_len, self.subnet_len));
        }
        if !self.backend.kind.eq_ignore_ascii_case(&stored.backend.kind) {
            diffs.push(format!("Backend.Type {:?} (asked {:?})", stored.backend.kind, self.backend.kind));
        } else if self.backend.kind == "vxlan" && self.backend.vni.unwrap_or(1) != stored.backend.vni.unwrap_or(1) {
            diffs.push(format!("Backend.VNI {} (asked {})", stored.backend.vni.unwrap_or(1), self.backend.vni.unwrap_or(1)));
        }
        (!diffs.is_empty()).then(|| diffs.join(", "))
    }
}

/// The value of `<prefix>/subnets/<subnet>`: flannel's fields, plus `NodeName` (readers of
/// flannel's layout ignore unknown fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseValue {
    #[serde(rename = "PublicIP")]
    pub public_ip: Ipv4Addr,
    #[serde(rename = "BackendType", default)]
    pub backend_type: String,
    #[serde(rename = "BackendData", default, skip_serializing_if = "Value::is_null")]
    pub backend_data: Value,
    #[serde(rename = "NodeName", default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
}

impl LeaseValue {
    pub fn parse(raw: &[u8]) -> Result<LeaseValue, String> {
        serde_json::from_slice(raw).map_err(|e| format!("bad lease JSON: {e}"))
    }
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("lease serialises")
    }
}

pub fn config_key(prefix: &str) -> String {
    format!("{}/config", prefix.trim_end_matches('/'))
}

pub fn subnets_prefix(prefix: &str) -> String {
    format!("{}/subnets/", prefix.trim_end_matches('/'))
}

/// `<prefix>/subnets/10.244.3.0-24`.
pub fn subnet_key(prefix: &str, subnet: Ipv4Net) -> String {
    format!("{}{}-{}", subnets_prefix(prefix), subnet.network(), subnet.prefix_len())
}

/// The subnet of a key under `<prefix>/subnets/`, None for anything else.
pub fn parse_subnet_key(prefix: &str, key: &str) -> Option<Ipv4Net> {
    let rest = key.strip_prefix(&subnets_prefix(prefix))?;
    // dual-stack keys append `&<v6>-<len>`: the v4 part comes first
    let v4 = rest.split('&').next()?;
    let (addr, len) = v4.split_once('-')?;
    let net = Ipv4Net::new(addr.parse().ok()?, len.parse().ok()?).ok()?;
    (net.network() == net.addr()).then_some(net)
}

/// The subnets of `config`, in order, without the first (flannel's SubnetMin is the network's
/// second subnet: the first holds the network address itself).
pub fn candidate_subnets(config: &Config) -> impl Iterator<Item = Ipv4Net> {
    config.network.subnets(config.subnet_len).expect("subnet_len checked").skip(1)
}

/// The first subnet of the network not in `taken`.
pub fn free_subnet(config: &Config, taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    candidate_subnets(config).find(|s| !taken.iter().any(|t| t.contains(&s.network()) || s.contains(&t.network())))
}

/// The peers as the backend sees them: every lease but our own.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    pub subnet: Ipv4Net,
    pub public_ip: Ipv4Addr,
    pub backend_type: String,
    pub backend_data: Value,
}

pub fn peers(leases: &BTreeMap<Ipv4Net, LeaseValue>, own: Ipv4Net) -> Vec<Peer> {
    leases
        .iter()
        .filter(|(s, _)| **s != own)
        .map(|(s, v)| Peer {
            subnet: *s,
            public_ip: v.public_ip,
            backend_type: v.backend_type.clone(),
            backend_data: v.backend_data.clone(),
        })
        .collect()
}

/// The first usable address of a subnet (the bridge's gateway, FLANNEL_SUBNET's address).
pub fn gateway(subnet: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(subnet.network()) + 1)
}

/// The conflist `rcni-cluster`: a bridge with host-local on the node's subnet, the pods'
/// default route via the bridge, and a route to the cluster network. ipMasq stays off: rcni's
/// bridge masquerade exempts only the pod's own subnet, so pod-to-pod traffic across nodes
/// would lose its source address; the agent masquerades what leaves the cluster itself.
pub fn conflist(name: &str, bridge: &str, subnet: Ipv4Net, cluster: Ipv4Net, mtu: u32) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [{
            "type": "bridge",
            "bridge": bridge,
            "isGateway": true,
            "ipMasq": false,
            "mtu": mtu,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": subnet.to_string(), "gateway": gateway(subnet).to_string()}]],
                "routes": [{"dst": "0.0.0.0/0"}, {"dst": cluster.to_string()}]
            }
        }]
    })
}

/// flannel's `subnet.env`.
pub fn subnet_env(cluster: Ipv4Net, subnet: Ipv4Net, mtu: u32, ipmasq: bool) -> String {
    let s = IpNet::V4(Ipv4Net::new(gateway(subnet), subnet.prefix_len()).expect("same length"));
    format!("FLANNEL_NETWORK={cluster}\nFLANNEL_SUBNET={s}\nFLANNEL_MTU={mtu}\nFLANNEL_IPMASQ={ipmasq}\n")
}

/// Seconds to wait before retry `n` (0-based) of an etcd call: 0.5 s doubling, at most 8 s.
pub fn backoff_ms(n: u32) -> u64 {
    (500u64 << n.min(4)).min(8000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::parse(br#"{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"host-gw"}}"#).unwrap()
    }

    #[test]
    fn keys_round_trip() {
        let s: Ipv4Net = "10.244.3.0/24".parse().unwrap();
        let k = subnet_key("/coreos.com/network", s);
        assert_eq!(k, "/coreos.com/network/subnets/10.244.3.0-24");
        assert_eq!(parse_subnet_key("/coreos.com/network/", &k), Some(s));
        assert_eq!(parse_subnet_key("/coreos.com/network", "/coreos.com/network/subnets/10.244.3.0-24&fd00::-64"), Some(s));
        assert_eq!(parse_subnet_key("/coreos.com/network", "/coreos.com/network/subnets/10.244.3.1-24"), None);
        assert_eq!(parse_subnet_key("/coreos.com/network", "/coreos.com/network/config"), None);
        assert_eq!(parse_subnet_key("/x", &k), None);
        assert_eq!(config_key("/p/"), "/p/config");
    }

    #[test]
    fn config_json_and_defaults() {
        let c = cfg();
        assert_eq!(c.to_json(), r#"{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"host-gw"}}"#);
        let v = Config::parse(br#"{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan","VNI":1}}"#).unwrap();
        assert_eq!((v.subnet_len, v.backend.vni), (24, Some(1)));
        assert_eq!(Config::parse(br#"{"Network":"10.5.0.0/24"}"#).unwrap().subnet_len, 26);
        assert!(Config::parse(br#"{"Network":"10.5.0.0/16","SubnetLen":12}"#).is_err());
        assert!(Config::parse(b"nope").is_err());
    }

    #[test]
    fn conflicts_are_named() {
        let a = cfg();
        assert_eq!(a.conflict(&a.clone()), None);
        let mut b = a.clone();
        b.network = "10.9.0.0/16".parse().unwrap();
        b.backend.kind = "vxlan".into();
        assert_eq!(a.conflict(&b).unwrap(), r#"Network 10.9.0.0/16 (asked 10.244.0.0/16), Backend.Type "vxlan" (asked "host-gw")"#);
    }

    #[test]
    fn lease_json() {
        let v = LeaseValue {
            public_ip: "192.0.2.7".parse().unwrap(),
            backend_type: "vxlan".into(),
            backend_data: json!({"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}),
            node_name: "n1".into(),
        };
        let s = v.to_json();
        assert_eq!(
            s,
            r#"{"PublicIP":"192.0.2.7","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"},"NodeName":"n1"}"#
        );
        assert_eq!(LeaseValue::parse(s.as_bytes()).unwrap(), v);
        // flannel's own value (no NodeName, null BackendData) reads
        let f = LeaseValue::parse(br#"{"PublicIP":"10.0.0.2","PublicIPv6":null,"BackendType":"host-gw","BackendData":null}"#).unwrap();
        assert_eq!((f.node_name.as_str(), f.backend_data.is_null()), ("", true));
    }

    #[test]
    fn subnet_choice() {
        let c = cfg();
        let n = |s: &str| s.parse::<Ipv4Net>().unwrap();
        assert_eq!(free_subnet(&c, &[]), Some(n("10.244.1.0/24")));
        assert_eq!(free_subnet(&c, &[n("10.244.1.0/24"), n("10.244.3.0/24")]), Some(n("10.244.2.0/24")));
        let all: Vec<_> = candidate_subnets(&c).collect();
        assert_eq!(all.len(), 255);
        assert_eq!(free_subnet(&c, &all), None);
    }

    #[test]
    fn peers_exclude_own() {
        let mut m = BTreeMap::new();
        for (s, ip) in [("10.244.1.0/24", "192.0.2.1"), ("10.244.2.0/24", "192.0.2.2")] {
            m.insert(
                s.parse().unwrap(),
                LeaseValue {
                    public_ip: ip.parse().unwrap(),
                    backend_type: "host-gw".into(),
                    backend_data: Value::Null,
                    node_name: String::new(),
                },
            );
        }
        let p = peers(&m, "10.244.1.0/24".parse().unwrap());
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].subnet.to_string(), p[0].public_ip.to_string()), ("10.244.2.0/24".into(), "192.0.2.2".into()));
    }

    #[test]
    fn files_for_the_runtime() {
        let s = "10.244.3.0/24".parse().unwrap();
        let c = "10.244.0.0/16".parse().unwrap();
        assert_eq!(
            subnet_env(c, s, 1500, true),
            "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=true\n"
        );
        let l = conflist("rcni-cluster", "cni-cluster", s, c, 1450);
        assert_eq!(l["plugins"][0]["ipam"]["ranges"][0][0]["subnet"], "10.244.3.0/24");
        assert_eq!(l["plugins"][0]["ipam"]["ranges"][0][0]["gateway"], "10.244.3.1");
        assert_eq!(l["plugins"][0]["mtu"], 1450);
        assert_eq!(l["plugins"][0]["ipMasq"], false);
    }

    #[test]
    fn backoff_is_bounded() {
        assert_eq!(backoff_ms(0), 500);
        assert_eq!(backoff_ms(3), 4000);
        assert_eq!(backoff_ms(40), 8000);
    }
}

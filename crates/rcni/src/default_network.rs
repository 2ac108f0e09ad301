//! rcni's embedded default network, used when the config directory holds none (`rcni attach`)
//! and always collected by `rcni gc`.

use cni_types::NetworkConfigList;

/// The network used when the config directory holds none: a bridge with masquerade on a private
/// /16 that avoids podman's 10.88/16 and Docker's 172.17/16, addresses from host-local, and
/// portmap for `--publish` (without mappings it touches nothing).
pub const DEFAULT_NETWORK: &str = r#"{
  "cniVersion": "1.1.0",
  "name": "rcni-default",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "rcni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.209.0.0/16"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {
      "type": "portmap",
      "capabilities": {"portMappings": true}
    }
  ]
}
"#;

pub const DEFAULT_NETWORK_NAME: &str = "rcni-default";

/// [`DEFAULT_NETWORK`] parsed.
pub fn default_network() -> Result<NetworkConfigList, String> {
    NetworkConfigList::from_bytes(DEFAULT_NETWORK.as_bytes()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_network_parses_and_avoids_common_ranges() {
        let l = default_network().unwrap();
        assert_eq!(l.name, DEFAULT_NETWORK_NAME);
        let subnet: ipnet::IpNet = l.plugins[0].conf["ipam"]["ranges"][0][0]["subnet"].as_str().unwrap().parse().unwrap();
        assert_eq!(subnet.to_string(), "10.209.0.0/16", "the README and scripts/demo show this subnet");
        for other in ["10.88.0.0/16", "172.17.0.0/16"] {
            let o: ipnet::IpNet = other.parse().unwrap();
            assert!(!subnet.contains(&o.network()) && !o.contains(&subnet.network()));
        }
    }
}

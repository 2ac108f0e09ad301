//! A small example plugin: gives the container interface one address from the config, without
//! touching the kernel (a real plugin would configure `CNI_IFNAME` inside `CNI_NETNS`).
//!
//! ```sh
//! cargo build --example static-ip
//! echo '{"cniVersion":"1.0.0","name":"demo","type":"static-ip","address":"10.9.0.2/24"}' | \
//!   CNI_COMMAND=ADD CNI_CONTAINERID=c1 CNI_NETNS=/var/run/netns/demo CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin \
//!   target/<host triple>/debug/examples/static-ip
//! ```

use cni_plugin::{About, CmdArgs, Plugin};
use cni_types::result::{parse_cidr, Interface, IpConfig, Result100};
use cni_types::{CniError, CniResult, NetConf};
use serde::Deserialize;

/// This plugin's config: the common keys plus its own.
#[derive(Deserialize)]
struct Conf {
    #[serde(flatten)]
    net: NetConf,
    address: String,
}

struct StaticIp;

impl Plugin for StaticIp {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let conf: Conf = args.conf()?;
        let address = parse_cidr(&conf.address).ok_or_else(|| CniError::invalid_config(format!("invalid address {:?}", conf.address)))?;
        Ok(Result100 {
            cni_version: conf.net.cni_version,
            interfaces: vec![Interface::new(&args.ifname, "", &args.netns)],
            ips: vec![IpConfig { interface: Some(0), address, gateway: None }],
            ..Default::default()
        }
        .into())
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let conf: Conf = args.conf()?;
        let prev = args.prev_result(&conf.net)?.ok_or_else(|| CniError::invalid_config("CHECK needs a prevResult"))?;
        let prev = prev.to_current().map_err(|e| CniError::decoding(e.to_string()))?;
        if prev.ips.iter().any(|ip| ip.address.to_string() == conf.address) {
            Ok(())
        } else {
            Err(CniError::internal(format!("address {} missing from prevResult", conf.address)))
        }
    }

    fn del(&self, _args: &CmdArgs) -> Result<(), CniError> {
        Ok(()) // nothing to undo, and DEL must succeed when there is nothing to do
    }
}

fn main() {
    cni_plugin::run(&StaticIp, &About::new("static-ip", "example plugin: one address from the config", cni_types::version::ALL));
}

//! static: IPAM from the configuration itself.
//!
//! Keys (`ipam`): `addresses` (`{address, gateway}`), `routes`, `dns`. `CNI_ARGS` `IP=` (a
//! comma-separated list) is appended, with `GATEWAY=` matched to the addresses whose subnet
//! holds it; `args.cni.ips`, then `runtimeConfig.ips` (capability `ips`), replace the list. DEL
//! has nothing to undo. CHECK compares with `prevResult`.

use cni_plugin::{CmdArgs, Plugin};
use cni_types::{CniError, CniResult};
use ipam::static_ipam::{check, load_config, result};

pub struct Static;

impl Plugin for Static {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let conf = load_config(&args.stdin, &args.args)?;
        Ok(result(&conf).into())
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let conf = load_config(&args.stdin, &args.args)?;
        let net = args.net_conf()?;
        let (_, prev) = args.required_prev_result(&net, "Required prevResult missing")?;
        check(&conf, &prev, &args.ifname)
    }

    fn del(&self, _args: &CmdArgs) -> Result<(), CniError> {
        Ok(())
    }
}

//! host-local: IPAM from local ranges, leases kept in `<dataDir>/<network>/` in the same files
//! as the reference plugin (so either plugin honours the other's leases).
//!
//! Keys (`ipam`): `ranges` (list of range sets `{subnet, rangeStart, rangeEnd, gateway}`), the
//! legacy single-range `subnet`/`rangeStart`/`rangeEnd`/`gateway`, `routes`, `dataDir`
//! (`/var/lib/cni/networks`), `resolvConf`. `runtimeConfig.ipRanges` (capability `ipRanges`) is
//! prepended. Requested addresses: `CNI_ARGS` `IP=`, `args.cni.ips`, `runtimeConfig.ips`.
//! ADD: one address per range set, round-robin after the last one handed out; a second ADD for
//! the same container and interface is refused. DEL releases the container's addresses (also
//! old-format leases; unknown containers are fine). CHECK: the container holds an address.
//! GC: under the store's lock, removes the network's leases (rcni's and Go's alike) whose
//! `(containerID, ifname)` is not in `cni.dev/valid-attachments`; without the key, nothing.
//! STATUS: code 50 when the store cannot be written or a range set has no free address.

use cni_plugin::{CmdArgs, Plugin};
use cni_types::{CniError, CniResult};
use ipam::host_local::{allocate, check, gc, load_config, release, status, store_location};

pub struct HostLocal;

impl Plugin for HostLocal {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let conf = load_config(&args.stdin, &args.args)?;
        Ok(allocate(&conf, &args.container_id, &args.ifname)?.into())
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let conf = load_config(&args.stdin, &args.args)?;
        check(&conf, &args.container_id, &args.ifname)
    }

    fn del(&self, args: &CmdArgs) -> Result<(), CniError> {
        // Releasing needs only the network's name and data directory, so a DEL goes through
        // even when the ranges in the configuration are no longer valid.
        let (name, data_dir) = match load_config(&args.stdin, &args.args) {
            Ok(c) => (c.name, c.data_dir),
            Err(_) => match store_location(&args.stdin)? {
                Some(l) => l,
                None => return Ok(()),
            },
        };
        release(&name, &data_dir, &args.container_id, &args.ifname)
    }

    fn gc(&self, args: &CmdArgs) -> Result<(), CniError> {
        let Some(valid) = args.valid_attachments()? else { return Ok(()) };
        let (name, data_dir) = match load_config(&args.stdin, &args.args) {
            Ok(c) => (c.name, c.data_dir),
            Err(_) => match store_location(&args.stdin)? {
                Some(l) => l,
                None => return Ok(()),
            },
        };
        gc(&name, &data_dir, &valid)
    }

    fn status(&self, args: &CmdArgs) -> Result<(), CniError> {
        status(&load_config(&args.stdin, &args.args)?)
    }
}

//! `rcni ps`: every attachment on the node, from the result cache (`/var/lib/cni`, where rcni,
//! cnitool, containerd's go-cni and podman's CNI backend keep theirs): container ID, netns (and
//! whether it still exists; libcni 1.1 and older record none, so the result's sandbox is shown),
//! network, interface, addresses, published ports, age.

use crate::attachments::{self, age_text};
use crate::exit::exit_code;
use clap::Args;
use serde_json::Value;

#[derive(Args)]
pub struct PsArgs {
    #[command(flatten)]
    pub output: crate::shared::Output,
    /// Only this network's
    #[arg(long = "network", short = 'n')]
    pub network: Option<String>,
}

pub fn ps(a: PsArgs) -> i32 {
    exit_code("ps", run(&a))
}

fn run(a: &PsArgs) -> Result<i32, String> {
    let mut all = attachments::cached(a.network.as_deref().unwrap_or(""))?;
    all.sort_by(|x, y| (&x.container_id, &x.network, &x.ifname).cmp(&(&y.container_id, &y.network, &y.ifname)));
    if a.output.json() {
        let v: Vec<Value> = all.iter().map(|x| x.to_json()).collect();
        println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
        return Ok(0);
    }
    let rows: Vec<[String; 7]> = all
        .iter()
        .map(|x| {
            let ns = match x.netns_exists {
                Some(false) => format!("{} (gone)", x.netns),
                _ => x.netns.clone(),
            };
            [x.container_id.clone(), ns, x.network.clone(), x.ifname.clone(), x.ips.join(","), x.ports.join(","), age_text(x.age_secs())]
        })
        .collect();
    crate::shared::print_table(&["CONTAINER", "NETNS", "NETWORK", "IFNAME", "ADDRESSES", "PORTS", "AGE"], &rows);
    Ok(0)
}

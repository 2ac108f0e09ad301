//! `rcni netns`: persistent network namespaces, like `ip netns`, on rcni's kernel layer.

use crate::attachments::{self, Attachment};
use crate::exit::exit_code;
use clap::{Args, Subcommand};
use netkit::netns::{self, NsId};
use netkit::NetNs;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

#[derive(Subcommand)]
pub enum NetnsCmd {
    /// Create a namespace /run/netns/NAME (a random cni-… name if none is given), or with --pid
    /// name the one process PID is in; prints its path
    Add {
        name: Option<String>,
        /// Keep the network namespace of this running process under the name (it outlives the process)
        #[arg(long)]
        pid: Option<u32>,
    },
    /// Name the network namespace of running process PID /run/netns/NAME (as `ip netns attach`); prints its path
    Attach { name: String, pid: u32 },
    /// List the named namespaces with their processes and their attachments (from the result cache)
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Print the PIDs of every process in a namespace, one per line (as `ip netns pids`)
    Pids { name: String },
    /// Delete named namespaces
    #[command(alias = "delete")]
    Del {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Run a command inside a namespace: rcni netns exec NAME -- CMD [ARGS…]
    Exec {
        name: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        cmd: Vec<OsString>,
    },
    /// Print the names of the namespace process PID is in
    Identify { pid: u32 },
}

#[derive(Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub output: crate::shared::Output,
    /// Names only, one per line
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

fn fail(e: impl std::fmt::Display) -> i32 {
    crate::exit::fail("netns", e)
}

pub fn run(cmd: NetnsCmd) -> i32 {
    match cmd {
        NetnsCmd::Add { name, pid } => {
            let made = match pid {
                None => netns::create(name.as_deref()),
                Some(pid) => match name {
                    Some(n) => netns::persist_pid(pid, &n),
                    None => netns::random_name().and_then(|n| netns::persist_pid(pid, &n)),
                },
            };
            print_path(made)
        }
        NetnsCmd::Attach { name, pid } => print_path(netns::persist_pid(pid, &name)),
        NetnsCmd::Ls(a) => exit_code("netns", ls(&a)),
        NetnsCmd::Pids { name } => match netns::pids(&name) {
            Ok(pids) => {
                for p in pids {
                    println!("{p}");
                }
                0
            }
            Err(e) => fail(e),
        },
        NetnsCmd::Del { names } => {
            let mut code = 0;
            for n in names {
                if let Err(e) = netns::delete(&n) {
                    code = fail(e);
                }
            }
            code
        }
        NetnsCmd::Exec { name, cmd } => {
            let ns = match NetNs::open(netns::named_path(&name)) {
                Ok(ns) => ns,
                Err(e) => return fail(e),
            };
            let mut command = Command::new(&cmd[0]);
            command.args(&cmd[1..]);
            match ns.spawn_with_sysfs(&mut command).and_then(|mut c| c.wait().map_err(|e| netkit::Error::io("waiting for the command", e)))
            {
                Ok(status) => {
                    use std::os::unix::process::ExitStatusExt;
                    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
                }
                Err(e) => fail(e),
            }
        }
        NetnsCmd::Identify { pid } => match netns::identify(pid) {
            Ok(names) => {
                for n in names {
                    println!("{n}");
                }
                0
            }
            Err(e) => fail(e),
        },
    }
}

fn print_path(made: netkit::Result<PathBuf>) -> i32 {
    match made {
        Ok(p) => {
            println!("{}", p.display());
            0
        }
        Err(e) => fail(e),
    }
}

/// One named namespace as `ls` shows it.
struct Named {
    name: String,
    /// The namespace opens (`false`: the name is a placeholder left by an unmount).
    open: bool,
    pids: Vec<u32>,
    attachments: Vec<Attachment>,
}

impl Named {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "path": netns::named_path(&self.name),
            "open": self.open,
            "pids": self.pids,
            "attachments": self.attachments.iter().map(Attachment::to_json).collect::<Vec<_>>(),
        })
    }
}

/// Every named namespace with its processes and the cached attachments whose netns is it: the
/// same namespace (also when cached as `/proc/<pid>/ns/net` or another name of it), or its path.
fn gather() -> Result<Vec<Named>, String> {
    let names = netns::list().map_err(|e| e.to_string())?;
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_ns: HashMap<NsId, Vec<u32>> = HashMap::new();
    for (pid, id) in netns::processes().map_err(|e| e.to_string())? {
        by_ns.entry(id).or_default().push(pid);
    }
    let cached: Vec<(Option<NsId>, Attachment)> =
        attachments::cached("")?.into_iter().filter(|a| !a.netns.is_empty()).map(|a| (netns::id_of(&a.netns), a)).collect();
    let mut out = Vec::new();
    for name in names {
        let path = netns::named_path(&name);
        let id = netns::id_of(&path);
        let paths = [path.display().to_string(), format!("/var{}", path.display())];
        let mut atts: Vec<Attachment> =
            cached.iter().filter(|(aid, a)| (id.is_some() && *aid == id) || paths.contains(&a.netns)).map(|(_, a)| a.clone()).collect();
        atts.sort_by(|x, y| (&x.ifname, &x.network, &x.container_id).cmp(&(&y.ifname, &y.network, &y.container_id)));
        out.push(Named { name, open: id.is_some(), pids: id.and_then(|i| by_ns.get(&i).cloned()).unwrap_or_default(), attachments: atts });
    }
    Ok(out)
}

fn ls(a: &LsArgs) -> Result<i32, String> {
    if a.quiet {
        for n in netns::list().map_err(|e| e.to_string())? {
            println!("{n}");
        }
        return Ok(0);
    }
    let all = gather()?;
    if a.output.json() {
        let v: Vec<Value> = all.iter().map(Named::to_json).collect();
        println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
        return Ok(0);
    }
    let rows: Vec<[String; 3]> = all
        .iter()
        .map(|n| {
            let name = if n.open { n.name.clone() } else { format!("{} (not a namespace)", n.name) };
            let pids = if n.pids.is_empty() { "-".to_string() } else { n.pids.iter().map(u32::to_string).collect::<Vec<_>>().join(",") };
            let atts = if n.attachments.is_empty() {
                "-".to_string()
            } else {
                n.attachments.iter().map(attachment_text).collect::<Vec<_>>().join(" ")
            };
            [name, pids, atts]
        })
        .collect();
    crate::shared::print_table(&["NAME", "PIDS", "ATTACHMENTS"], &rows);
    Ok(0)
}

/// `NETWORK/IFNAME=ADDR,ADDR` (without `=…` when the result has no address).
fn attachment_text(a: &Attachment) -> String {
    if a.ips.is_empty() {
        format!("{}/{}", a.network, a.ifname)
    } else {
        format!("{}/{}={}", a.network, a.ifname, a.ips.join(","))
    }
}

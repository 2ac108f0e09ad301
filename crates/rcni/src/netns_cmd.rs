//! `rcni netns`: persistent network namespaces, like `ip netns`, on rcni's kernel layer.

use clap::Subcommand;
use netkit::{netns, NetNs};
use std::ffi::OsString;
use std::process::Command;

#[derive(Subcommand)]
pub enum NetnsCmd {
    /// Create a namespace /run/netns/NAME (a random cni-… name if none is given); prints its path
    Add { name: Option<String> },
    /// List the named namespaces
    #[command(alias = "list")]
    Ls,
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

fn fail(e: impl std::fmt::Display) -> i32 {
    crate::exit::fail("netns", e)
}

pub fn run(cmd: NetnsCmd) -> i32 {
    match cmd {
        NetnsCmd::Add { name } => match netns::create(name.as_deref()) {
            Ok(p) => {
                println!("{}", p.display());
                0
            }
            Err(e) => fail(e),
        },
        NetnsCmd::Ls => match netns::list() {
            Ok(names) => {
                for n in names {
                    println!("{n}");
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

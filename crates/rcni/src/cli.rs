//! The `rcni` command line.

use clap::{CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "rcni", version, about = "rcni: Container Network Interface runtime, cnitool and plugins")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install cnitool and every plugin into DIR (one binary, one symlink per name)
    Install {
        /// Target directory, e.g. /opt/cni/bin
        #[arg(long)]
        dir: PathBuf,
    },
    /// Run cnitool (same as invoking rcni as `cnitool`)
    #[command(disable_help_flag = true)]
    Cnitool {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// List the names this binary answers to
    Applets,
    /// Print a shell completion script: rcni completion bash > /etc/bash_completion.d/rcni
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (rcni.1, rcni-network.1, …) into DIR, or print rcni.1
    Man {
        /// Directory for one page per command
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Attach a network namespace to networks (eth0, eth1, …; lo too)
    Attach(crate::attach_cmd::AttachArgs),
    /// Detach a network namespace from everything it was attached to
    Detach(crate::attach_cmd::Common),
    /// Reclaim what attachments whose network namespace is gone left behind (DEL, then GC)
    Gc(crate::gc_cmd::GcArgsCli),
    /// List every attachment on the node (from the result cache)
    Ps(crate::ps_cmd::PsArgs),
    /// Explain what is wrong with the node's CNI state, and how to fix it (changes nothing)
    Doctor(crate::doctor::DoctorArgs),
    /// Manage networks (create, ls, inspect, rm, prune)
    Network {
        #[command(subcommand)]
        cmd: crate::network::NetworkCmd,
    },
    /// Network OCI bundles from runtime hooks: install, and the createRuntime and poststop hooks
    #[command(name = "oci-hook")]
    OciHook {
        #[command(subcommand)]
        cmd: crate::oci_hook::OciHookCmd,
    },
    /// The dhcp IPAM plugin's daemon: `rcni dhcp daemon [-socketpath PATH] [-pidfile PATH]
    /// [-hostprefix PREFIX] [-broadcast] [-timeout 10s] [-resendmax 62s]` (the reference's flags)
    Dhcp {
        #[command(subcommand)]
        cmd: DhcpCmd,
    },
    /// Manage network namespaces (add, attach, ls, pids, del, exec, identify)
    Netns {
        #[command(subcommand)]
        cmd: crate::netns_cmd::NetnsCmd,
    },
    /// Pods across nodes: the node agent (subnet leases in etcd, host-gw routes) and `ls`
    Node {
        #[command(subcommand)]
        cmd: crate::node::NodeCmd,
    },
}

#[derive(Subcommand)]
enum DhcpCmd {
    /// Hold and renew the leases of every attachment with `"ipam": {"type": "dhcp"}`
    #[command(disable_help_flag = true)]
    Daemon {
        /// -socketpath (/run/cni/dhcp.sock), -pidfile, -hostprefix, -broadcast, -timeout (10s),
        /// -resendmax (62s)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        flags: Vec<OsString>,
    },
}

pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match cli.command {
        Command::Install { dir } => {
            let outcome = crate::install::install(&dir, &crate::applets())
                .map(|made| {
                    for p in made {
                        println!("{}", p.display());
                    }
                    0
                })
                .map_err(|e| format!("{}: {e}", dir.display()));
            crate::exit::exit_code("install", outcome)
        }
        Command::Cnitool { args } => crate::cnitool::main(&args),
        Command::Netns { cmd } => crate::netns_cmd::run(cmd),
        Command::Node { cmd } => crate::node::run(cmd),
        Command::Dhcp { cmd: DhcpCmd::Daemon { flags } } => plugins::dhcp::daemon::main(&flags),
        Command::Network { cmd } => crate::network::run(cmd),
        Command::OciHook { cmd } => crate::oci_hook::run(cmd),
        Command::Ps(a) => crate::ps_cmd::ps(a),
        Command::Doctor(a) => crate::doctor::doctor(a),
        Command::Attach(a) => crate::attach_cmd::attach(a),
        Command::Detach(c) => crate::attach_cmd::detach(c),
        Command::Gc(g) => crate::gc_cmd::gc(g),
        Command::Completion { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "rcni", &mut std::io::stdout());
            0
        }
        Command::Man { dir } => crate::exit::exit_code("man", man(dir.as_deref())),
        Command::Applets => {
            for a in crate::applets() {
                println!("{a}");
            }
            0
        }
    }
}

/// The man pages from the command definition: rcni.1 on stdout, or every command's page in `dir`
/// (`rcni-network-create.1`, …).
fn man(dir: Option<&std::path::Path>) -> Result<i32, String> {
    let cmd = Cli::command();
    match dir {
        None => {
            clap_mangen::Man::new(cmd).render(&mut std::io::stdout()).map_err(|e| e.to_string())?;
        }
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| format!("creating {}: {e}", d.display()))?;
            clap_mangen::generate_to(cmd, d).map_err(|e| format!("writing man pages into {}: {e}", d.display()))?;
            println!("{}", d.display());
        }
    }
    Ok(0)
}

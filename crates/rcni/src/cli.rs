//! The `rcni` command line.

use clap::{Parser, Subcommand};
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
    /// Manage network namespaces (add, ls, del, exec, identify)
    Netns {
        #[command(subcommand)]
        cmd: crate::netns_cmd::NetnsCmd,
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
        Command::Network { cmd } => crate::network::run(cmd),
        Command::Ps(a) => crate::ps_cmd::ps(a),
        Command::Doctor(a) => crate::doctor::doctor(a),
        Command::Attach(a) => crate::attach_cmd::attach(a),
        Command::Detach(c) => crate::attach_cmd::detach(c),
        Command::Gc(g) => crate::gc_cmd::gc(g),
        Command::Applets => {
            for a in crate::applets() {
                println!("{a}");
            }
            0
        }
    }
}

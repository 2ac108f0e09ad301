//! rcni: one executable that is the `rcni` CLI, `cnitool`, and every plugin rcni ships, chosen by
//! the name it is started under (`argv[0]`). `rcni install --dir DIR` lays out the names.

mod attach_cmd;
mod cli;
mod cnitool;
mod default_network;
mod exit;
mod gc_cmd;
mod install;
mod netns_cmd;
mod runtime_env;

use std::ffi::OsString;
use std::path::Path;

/// The names this binary answers to besides `rcni`: cnitool and every plugin.
pub fn applets() -> Vec<&'static str> {
    std::iter::once("cnitool").chain(plugins::PLUGINS.iter().map(|p| p.name)).collect()
}

fn applet_name(argv0: &OsString) -> String {
    Path::new(argv0).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn init_logging() {
    let level = match std::env::var("RCNI_LOG").unwrap_or_default().to_ascii_lowercase().as_str() {
        "error" => tracing::Level::ERROR,
        "info" => tracing::Level::INFO,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => tracing::Level::WARN,
    };
    let _ = tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr).with_target(false).without_time().try_init();
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let name = args.first().map(applet_name).unwrap_or_default();
    init_logging();
    let code = match name.as_str() {
        "cnitool" => cnitool::main(&args[1..]),
        other => match plugins::run(other) {
            Some(code) => code,
            None => cli::main(args),
        },
    };
    // the chain's one nftables socket (in-process plugins share it): closed without making the
    // runtime wait for this process
    netkit::nft::release_shared();
    std::process::exit(code);
}

//! rcni: one executable that is the `rcni` CLI, `cnitool`, and every plugin rcni ships, chosen by
//! the name it is started under (`argv[0]`). `rcni install --dir DIR` lays out the names.

mod attach_cmd;
mod attaching;
mod attachments;
mod cli;
mod cnitool;
mod default_network;
mod doctor;
mod exit;
mod gc_cmd;
mod install;
mod netns_cmd;
mod network;
mod node;
mod oci_hook;
mod ps_cmd;
mod runtime_env;
mod shared;

use std::ffi::OsString;
use std::path::Path;

/// The names this binary answers to besides `rcni`: cnitool and every plugin.
pub fn applets() -> Vec<&'static str> {
    std::iter::once("cnitool").chain(plugins::PLUGINS.iter().map(|p| p.name)).collect()
}

fn applet_name(argv0: &OsString) -> String {
    Path::new(argv0).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Log events go to stderr at `RCNI_LOG`'s level (warn by default) as one line each,
/// `LEVEL message key=value …`: what tracing-subscriber's fmt layer printed without time and
/// target, but with no registry, span store or formatter set up in every plugin process (rcni
/// has no spans, and a plugin logs nothing unless something goes wrong).
struct StderrLog(tracing::level_filters::LevelFilter);

/// One event's fields as text: the message first, then `name=value` (`Debug` of the value,
/// so strings are quoted unless recorded with `%`).
struct Line(String);

impl tracing::field::Visit for Line {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        let name = field.name();
        let _ = match name {
            "message" => write!(self.0, "{value:?}"),
            _ => write!(self.0, "{}={value:?}", name.strip_prefix("r#").unwrap_or(name)),
        };
    }
}

impl tracing::Subscriber for StderrLog {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= self.0
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(self.0)
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = Line(String::new());
        event.record(&mut line);
        eprintln!("{:>5} {}", event.metadata().level().as_str(), line.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn init_logging() {
    use tracing::level_filters::LevelFilter;
    let level = match std::env::var("RCNI_LOG").unwrap_or_default().to_ascii_lowercase().as_str() {
        "error" => LevelFilter::ERROR,
        "info" => LevelFilter::INFO,
        "debug" => LevelFilter::DEBUG,
        "trace" => LevelFilter::TRACE,
        _ => LevelFilter::WARN,
    };
    let _ = tracing::subscriber::set_global_default(StderrLog(level));
}

/// A reader of the output that went away (`rcni ps | head`): the command ends quietly with
/// 141, as a tool killed by SIGPIPE does, instead of panicking with a backtrace. (Rust ignores
/// SIGPIPE so that sockets report EPIPE as an error; a write to a closed stdout then panics in
/// `println!` and in clap_complete.) For the CLI only: plugins and daemons keep the default.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let p = info.payload();
        let msg = p.downcast_ref::<String>().map(String::as_str).or_else(|| p.downcast_ref::<&str>().copied()).unwrap_or("");
        let broken = msg.contains("Broken pipe") || msg.contains("BrokenPipe");
        if broken && (msg.starts_with("failed printing to stdout") || msg.starts_with("failed to write completion")) {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let name = args.first().map(applet_name).unwrap_or_default();
    init_logging();
    let code = match name.as_str() {
        "cnitool" => {
            quiet_on_closed_stdout();
            cnitool::main(&args[1..])
        }
        // the reference's `dhcp daemon`, through the plugin's name
        "dhcp" if args.get(1).is_some_and(|a| a == "daemon") => plugins::dhcp::daemon::main(&args[2..]),
        other => match plugins::run(other) {
            Some(code) => code,
            None => {
                quiet_on_closed_stdout();
                cli::main(args)
            }
        },
    };
    // the chain's one nftables socket (in-process plugins share it): closed without making the
    // runtime wait for this process
    netkit::nft::release_shared();
    std::process::exit(code);
}

//! Delegation to another plugin (IPAM) the way the spec says — found on `CNI_PATH`, same
//! environment, full stdin — with one shortcut: when the plugin found is this very executable
//! (rcni's multi-call binary under another name), it runs in-process instead of through
//! fork/exec. Anything else (Debian's host-local, a third-party IPAM) is executed as usual.
//! [`SelfExec`] is also what rcni's cnitool and `rcni attach` run a chain with.

use cni_plugin::{About, CmdArgs};
use cni_runtime::exec::{Exec, RawExec};
use cni_runtime::{invoke, Ctx};
use cni_types::{CniError, CniResult};
use std::path::{Path, PathBuf};

/// Runs plugins in-process when they are ours, else as processes.
///
/// In-process, a plugin sees exactly what it would as a process (the environment overlaid with
/// the `CNI_*` variables, the config as stdin; its stdout becomes the result, its stderr is
/// copied to ours) and saves a fork/exec of ~1.5 ms. The context's deadline and cancellation are
/// checked before it starts; a running in-process plugin is not interrupted, but its waits (the
/// kernel's answers, file locks, the IPAM it delegates to) end at the context's deadline
/// (`cni_runtime::deadline`), as they end at their own bounds (`netkit::netlink::REPLY_TIMEOUT`). `RCNI_IN_PROCESS=0` in the environment turns the shortcut
/// off. In-process plugins share one nftables socket (`netkit::nft::shared`): a program that
/// runs them calls `netkit::nft::release_shared()` before it exits, as rcni's binary does, or its
/// exit waits for the kernel to finish deleting (and, if it lives on, the socket stays open).
#[derive(Debug)]
pub struct SelfExec {
    raw: RawExec,
    in_process: bool,
}

impl Default for SelfExec {
    fn default() -> Self {
        SelfExec { raw: RawExec::default(), in_process: std::env::var_os("RCNI_IN_PROCESS").is_none_or(|v| v != "0") }
    }
}

use cni_runtime::fsutil::same_file;

/// The rcni plugin a path runs, if it is this executable under a plugin's name.
pub fn builtin(path: &Path) -> Option<&'static crate::Entry> {
    let name = path.file_name()?.to_str()?;
    let entry = crate::find(name)?;
    same_file(path, Path::new("/proc/self/exe")).then_some(entry)
}

impl Exec for SelfExec {
    fn runs_in_process(&self, path: &Path) -> bool {
        self.in_process && builtin(path).is_some()
    }

    fn exec_plugin(&self, ctx: &Ctx, path: &Path, stdin: &[u8], env: &[(String, String)]) -> cni_runtime::Result<Vec<u8>> {
        let Some(entry) = builtin(path).filter(|_| self.in_process) else {
            return self.raw.exec_plugin(ctx, path, stdin, env);
        };
        if let Some(why) = ctx.done() {
            return Err(cni_runtime::Error::Cni(CniError::new(
                0,
                format!("netplugin failed with no error message: signal: killed ({why})"),
            )));
        }
        let about = About::new(entry.name, entry.description, entry.versions);
        let getenv = |k: &str| env.iter().rev().find(|(ek, _)| ek == k).map(|(_, v)| v.clone()).or_else(|| std::env::var(k).ok());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let _deadline = cni_runtime::deadline::scope(ctx.deadline_at());
        DEPTH.set(DEPTH.get() + 1);
        let code = cni_plugin::dispatch(entry.plugin, &about, &getenv, &mut &stdin[..], &mut out, &mut err);
        DEPTH.set(DEPTH.get() - 1);
        if !err.is_empty() {
            use std::io::Write;
            let _ = std::io::stderr().write_all(&err);
        }
        if code == 0 {
            return Ok(out);
        }
        Err(match serde_json::from_slice::<CniError>(&out) {
            Ok(e) => cni_runtime::Error::Cni(e),
            Err(_) => cni_runtime::Error::Cni(CniError::internal(format!("{} failed: {}", entry.name, String::from_utf8_lossy(&out)))),
        })
    }
}

/// How deep delegations may nest (a plugin's IPAM's IPAM…): a config naming its own plugin as
/// IPAM (`"ipam": {"type": "bridge"}`) would otherwise recurse until the stack (in-process) or the
/// process table (exec'd) runs out.
const MAX_DELEGATION_DEPTH: u32 = 8;

thread_local! {
    /// Delegations running in-process on this thread.
    static DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// The delegation depth here: the in-process ones on this thread and, for a plugin that was
/// itself executed by a delegating one, theirs (`RCNI_DELEGATION_DEPTH`).
fn depth() -> u32 {
    DEPTH.get() + std::env::var("RCNI_DELEGATION_DEPTH").ok().and_then(|d| d.parse().ok()).unwrap_or(0)
}

fn check_depth(plugin: &str) -> Result<(), CniError> {
    if depth() >= MAX_DELEGATION_DEPTH {
        return Err(CniError::invalid_config(format!(
            "delegating to {plugin:?} would nest plugins more than {MAX_DELEGATION_DEPTH} deep: does a plugin name itself (or its caller) as its ipam type?"
        )));
    }
    Ok(())
}

fn locate(plugin: &str, args: &CmdArgs) -> Result<PathBuf, CniError> {
    cni_runtime::find::find_in_path(plugin, &args.paths()).map_err(|e| CniError::invalid_config(e.to_string()))
}

fn env(verb: &str, args: &CmdArgs) -> Vec<(String, String)> {
    vec![
        (
            "RCNI_DELEGATION_DEPTH".into(),
            (std::env::var("RCNI_DELEGATION_DEPTH").ok().and_then(|d| d.parse::<u32>().ok()).unwrap_or(0) + DEPTH.get() + 1).to_string(),
        ),
        ("CNI_COMMAND".into(), verb.into()),
        ("CNI_CONTAINERID".into(), args.container_id.clone()),
        ("CNI_NETNS".into(), args.netns.clone()),
        ("CNI_IFNAME".into(), args.ifname.clone()),
        ("CNI_ARGS".into(), args.args.clone()),
        ("CNI_PATH".into(), args.path.clone()),
    ]
}

/// The context of a delegation: the deadline of the runtime that runs this plugin in-process.
fn ctx() -> Ctx {
    match cni_runtime::deadline::current() {
        Some(at) => Ctx::background().deadline(at),
        None => Ctx::background(),
    }
}

fn cni(e: cni_runtime::Error) -> CniError {
    e.cni().cloned().unwrap_or_else(|| CniError::internal(e.to_string()))
}

/// Checks the IPAM section ahead of an ADD, when `plugin` is rcni's own host-local or static (whose
/// rules are known here): a plugin that must touch the kernel before it asks IPAM (bridge makes
/// its bridge first) fails a bad range before changing anything. Other IPAMs check their own.
pub fn validate_own_ipam(plugin: &str, args: &CmdArgs) -> Result<(), CniError> {
    let Some(entry) = locate(plugin, args).ok().as_deref().and_then(builtin) else {
        return Ok(());
    };
    match entry.name {
        "host-local" => ipam::host_local::load_config(&args.stdin, &args.args).map(drop),
        "static" => ipam::static_ipam::load_config(&args.stdin, &args.args).map(drop),
        _ => Ok(()),
    }
}

/// IPAM ADD with the caller's stdin.
pub fn add(plugin: &str, args: &CmdArgs) -> Result<CniResult, CniError> {
    check_depth(plugin)?;
    let path = locate(plugin, args)?;
    invoke::exec_plugin_with_result(&SelfExec::default(), &ctx(), &path, &args.stdin, &env("ADD", args)).map_err(cni)
}

fn no_result(verb: &str, plugin: &str, args: &CmdArgs) -> Result<(), CniError> {
    check_depth(plugin)?;
    run_located(verb, &locate(plugin, args)?, args)
}

fn run_located(verb: &str, path: &Path, args: &CmdArgs) -> Result<(), CniError> {
    invoke::exec_plugin_without_result(&SelfExec::default(), &ctx(), path, &args.stdin, &env(verb, args)).map_err(cni)
}

/// IPAM DEL.
pub fn del(plugin: &str, args: &CmdArgs) -> Result<(), CniError> {
    no_result("DEL", plugin, args)
}

/// IPAM DEL for a DEL that must not fail on what cannot have been used: an IPAM type that is no
/// valid plugin name, is not on `CNI_PATH`, or nests too deep, allocated nothing an ADD kept (that
/// ADD failed on it); it is skipped with a word on stderr.
pub fn del_if_present(plugin: &str, args: &CmdArgs) -> Result<(), CniError> {
    match check_depth(plugin).and_then(|()| locate(plugin, args)) {
        Ok(path) => run_located("DEL", &path, args),
        Err(e) => {
            eprintln!("{plugin}: not run for DEL: {}", e.msg);
            Ok(())
        }
    }
}

/// IPAM CHECK.
pub fn check(plugin: &str, args: &CmdArgs) -> Result<(), CniError> {
    no_result("CHECK", plugin, args)
}

/// IPAM STATUS; a plugin missing from `CNI_PATH` cannot serve ADD, so that is code 50.
pub fn status(plugin: &str, args: &CmdArgs) -> Result<(), CniError> {
    if let Err(e) = locate(plugin, args) {
        return Err(CniError::new(cni_types::error::code::PLUGIN_NOT_AVAILABLE, e.msg));
    }
    no_result("STATUS", plugin, args)
}

/// STATUS of nftables for a plugin that needs it: code 50 when unusable.
pub fn nft_status(table: &str) -> Result<(), CniError> {
    netkit::nft::Nft::probe(table)
        .map_err(|e| CniError::new(cni_types::error::code::PLUGIN_NOT_AVAILABLE, format!("nftables is not usable: {e}")))
}

/// IPAM GC.
pub fn gc(plugin: &str, args: &CmdArgs) -> Result<(), CniError> {
    no_result("GC", plugin, args)
}

//! The plugin SDK: what Go's `pkg/skel` gives a plugin author, for Rust plugins.
//!
//! A plugin implements [`Plugin`] and calls [`run`] from `main`. The SDK reads the `CNI_*`
//! environment with the reference's error codes, answers VERSION, checks the config's version
//! against the plugin's, refuses a `CNI_NETNS` that is the plugin's own network namespace
//! (unless `CNI_NETNS_OVERRIDE`), converts the ADD result to the config's version, and prints any
//! error as CNI error JSON on stdout with a non-zero exit. STATUS and GC default to success.
//!
//! ```no_run
//! use cni_plugin::{About, CmdArgs, Plugin};
//! use cni_types::{CniError, CniResult};
//!
//! struct Passthrough;
//!
//! impl Plugin for Passthrough {
//!     fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
//!         let conf = args.net_conf()?;
//!         args.prev_result(&conf)?.ok_or_else(|| CniError::invalid_config("passthrough needs a prevResult"))
//!     }
//!     fn check(&self, _args: &CmdArgs) -> Result<(), CniError> { Ok(()) }
//!     fn del(&self, _args: &CmdArgs) -> Result<(), CniError> { Ok(()) }
//! }
//!
//! fn main() {
//!     cni_plugin::run(&Passthrough, &About::new("passthrough", "passes prevResult on", cni_types::version::ALL));
//! }
//! ```

use cni_types::error::code;
use cni_types::result::Result100;
use cni_types::{gojson, validate, version, CniArgs, CniError, CniResult, NetConf};
use serde::de::DeserializeOwned;
use std::io::{Read, Write};
use std::path::PathBuf;

/// The arguments of one call (Go's `skel.CmdArgs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CmdArgs {
    pub command: String,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    /// `CNI_ARGS`, unparsed.
    pub args: String,
    /// `CNI_PATH`, unparsed.
    pub path: String,
    pub netns_override: String,
    /// The config on stdin.
    pub stdin: Vec<u8>,
    /// Where ADDs in progress are marked for GC ([`pending`]): `RCNI_PENDING_DIR`, else
    /// [`pending::DIR`].
    pub pending_dir: Option<PathBuf>,
    /// How long an ADD in progress is protected from GC: `RCNI_GC_GRACE` (seconds), else
    /// [`pending::DEFAULT_GRACE`].
    pub gc_grace: Option<std::time::Duration>,
}

impl CmdArgs {
    /// Decodes the config into the plugin's own type; failure is code 6.
    pub fn conf<T: DeserializeOwned>(&self) -> Result<T, CniError> {
        serde_json::from_slice(&self.stdin).map_err(|e| CniError::decoding(format!("failed to load netconf: {e}")))
    }

    /// The common part of the config.
    pub fn net_conf(&self) -> Result<NetConf, CniError> {
        self.conf()
    }

    /// The `prevResult`, parsed in the config's version; a malformed one is code 6.
    pub fn prev_result(&self, conf: &NetConf) -> Result<Option<CniResult>, CniError> {
        conf.prev_result().map_err(|e| CniError::decoding(e.to_string()))
    }

    /// The `prevResult` a chained plugin needs: absent is code 7 with the reference's text
    /// `missing`, malformed code 6. Returns it as given (a meta plugin's ADD result) and in
    /// the current version (to read).
    pub fn required_prev_result(&self, conf: &NetConf, missing: &str) -> Result<(CniResult, Result100), CniError> {
        let raw = self.prev_result(conf)?.ok_or_else(|| CniError::invalid_config(missing))?;
        let current = raw.to_current().map_err(|e| CniError::decoding(e.to_string()))?;
        Ok((raw, current))
    }

    /// The `prevResult` as a hint, for DEL and GC, which must go on without one: `None` when
    /// it is absent, malformed or cannot be converted to the current version.
    pub fn prev_result_hint(&self, conf: &NetConf) -> Option<Result100> {
        self.prev_result(conf).ok().flatten().and_then(|p| p.to_current().ok())
    }

    /// `CNI_ARGS`, accepting the `known` keys (others need `IgnoreUnknown=1`); failure is code 4.
    pub fn cni_args(&self, known: &[&str]) -> Result<CniArgs, CniError> {
        CniArgs::parse_known(&self.args, known).map_err(|e| CniError::new(code::INVALID_ENVIRONMENT_VARIABLES, e.to_string()))
    }

    /// `CNI_PATH` split into directories.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.path.split(':').filter(|p| !p.is_empty()).map(PathBuf::from).collect()
    }

    /// GC's valid attachments: `(containerID, ifname)` from `cni.dev/valid-attachments` (spec
    /// 1.1) and `cni.dev/attachments` (its first spelling; libcni sends both), united, plus every
    /// attachment of the network whose ADD began within the grace period ([`pending`]): the
    /// runtime lists an attachment only once its whole chain is done. `None` when the config has
    /// neither key: a GC without the list must remove nothing. A malformed list is code 6.
    pub fn valid_attachments(&self) -> Result<Option<Attachments>, CniError> {
        let Some(mut valid) = valid_attachments(&self.stdin)? else { return Ok(None) };
        let name = self.net_conf().map(|c| c.name).unwrap_or_default();
        if !name.is_empty() {
            valid.extend(pending::recent(&self.pending_dir(), &name, self.gc_grace.unwrap_or(pending::DEFAULT_GRACE)));
        }
        Ok(Some(valid))
    }

    /// See [`CmdArgs::pending_dir`](struct.CmdArgs.html#structfield.pending_dir).
    pub fn pending_dir(&self) -> PathBuf {
        self.pending_dir.clone().unwrap_or_else(|| PathBuf::from(pending::DIR))
    }
}

/// A set of attachments, `(containerID, ifname)`.
pub type Attachments = std::collections::BTreeSet<(String, String)>;

/// Failures collected by a verb that goes on past them (GC): one error listing them all.
#[derive(Debug, Default)]
pub struct Failures(Vec<String>);

impl Failures {
    pub fn new() -> Self {
        Failures::default()
    }

    /// Records the failure of `what`, if any.
    pub fn note<T, E: std::fmt::Display>(&mut self, what: &str, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.0.push(format!("{what}: {e}"));
                None
            }
        }
    }

    /// Success, or one internal error (code 999) naming every failure.
    pub fn finish(self) -> Result<(), CniError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(CniError::internal(self.0.join("; ")))
        }
    }
}

/// See [`CmdArgs::valid_attachments`].
pub fn valid_attachments(stdin: &[u8]) -> Result<Option<Attachments>, CniError> {
    let conf: NetConf = serde_json::from_slice(stdin).map_err(|e| CniError::decoding(format!("failed to load netconf: {e}")))?;
    if conf.valid_attachments.is_none() && conf.attachments_legacy.is_none() {
        return Ok(None);
    }
    let all = conf.valid_attachments.iter().chain(conf.attachments_legacy.iter()).flatten();
    Ok(Some(all.map(|a| (a.container_id.clone(), a.ifname.clone())).collect()))
}

/// A plugin's verbs. STATUS and GC succeed unless overridden.
pub trait Plugin {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError>;
    fn check(&self, args: &CmdArgs) -> Result<(), CniError>;
    fn del(&self, args: &CmdArgs) -> Result<(), CniError>;
    fn status(&self, _args: &CmdArgs) -> Result<(), CniError> {
        Ok(())
    }
    fn gc(&self, _args: &CmdArgs) -> Result<(), CniError> {
        Ok(())
    }
}

/// What a plugin says about itself.
#[derive(Debug, Clone)]
pub struct About {
    pub name: String,
    /// Printed, with the supported versions, when the plugin runs without `CNI_COMMAND`.
    pub description: String,
    pub versions: Vec<String>,
}

impl About {
    pub fn new(name: &str, description: &str, versions: &[&str]) -> Self {
        About { name: name.into(), description: description.into(), versions: versions.iter().map(|v| v.to_string()).collect() }
    }

    /// The VERSION reply.
    pub fn version_json(&self) -> String {
        let info = serde_json::json!({"cniVersion": version::CURRENT, "supportedVersions": self.versions});
        format!("{info}\n")
    }
}

/// Where the dispatcher reads the environment from (a function, so tests need no process env).
pub type Getenv<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Runs the plugin with the process's environment, stdin and stdout, and exits.
pub fn run(plugin: &dyn Plugin, about: &About) -> ! {
    let getenv = |k: &str| std::env::var(k).ok();
    let code = dispatch(plugin, about, &getenv, &mut std::io::stdin().lock(), &mut std::io::stdout().lock(), &mut std::io::stderr().lock());
    std::process::exit(code)
}

/// The dispatcher behind [`run`]: returns the exit code.
pub fn dispatch(
    plugin: &dyn Plugin,
    about: &About,
    getenv: Getenv,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let command = getenv("CNI_COMMAND").unwrap_or_default();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch_inner(plugin, about, getenv, stdin, stdout)));
    let outcome = outcome.unwrap_or_else(|p| {
        let what = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_default();
        Err((CniError::internal(format!("plugin {} panicked: {what}", about.name)), String::new()))
    });
    match outcome {
        Ok(()) => 0,
        Err((e, _)) if command.is_empty() && e.code == code::INVALID_ENVIRONMENT_VARIABLES && !about.description.is_empty() => {
            let _ = writeln!(stderr, "{}", about.description);
            let _ = writeln!(stderr, "CNI protocol versions supported: {}", about.versions.join(", "));
            0
        }
        Err((mut e, conf_version)) => {
            if e.cni_version.is_empty() {
                e.cni_version = if conf_version.is_empty() { version::CURRENT.into() } else { conf_version };
            }
            let _ = stdout.write_all(e.to_json_pretty().as_bytes());
            let _ = stdout.flush();
            1
        }
    }
}

type Failure = (CniError, String);

fn dispatch_inner(plugin: &dyn Plugin, about: &About, getenv: Getenv, stdin: &mut dyn Read, stdout: &mut dyn Write) -> Result<(), Failure> {
    let no_version = |e: CniError| (e, String::new());
    let args = args_from_env(getenv, stdin).map_err(no_version)?;
    if args.command == "VERSION" {
        stdout.write_all(about.version_json().as_bytes()).map_err(|e| no_version(CniError::io(e.to_string())))?;
        return Ok(());
    }
    let conf_version = cni_types::result::decode_version(&args.stdin).map_err(|e| no_version(CniError::decoding(e.to_string())))?;
    let fail = |e: CniError| (e, conf_version.clone());
    let min = match args.command.as_str() {
        "ADD" | "DEL" => None,
        "CHECK" => Some("0.4.0"),
        "GC" | "STATUS" => Some("1.1.0"),
        other => return Err(fail(CniError::new(code::INVALID_ENVIRONMENT_VARIABLES, format!("unknown CNI_COMMAND: {other}")))),
    };
    if let Some(min) = min {
        let verb = args.command.as_str();
        let at_least = |a: &str, b: &str| version::greater_than_or_equal(a, b).map_err(|e| fail(CniError::decoding(e.to_string())));
        if !at_least(&conf_version, min)? {
            return Err(fail(CniError::new(code::INCOMPATIBLE_CNI_VERSION, format!("config version does not allow {verb}"))));
        }
        let mut plugin_ok = false;
        for v in &about.versions {
            if at_least(v, &conf_version)? {
                plugin_ok = true;
                break;
            }
        }
        if !plugin_ok {
            return Err(fail(CniError::new(code::INCOMPATIBLE_CNI_VERSION, format!("plugin version does not allow {verb}"))));
        }
    }
    if !about.versions.contains(&conf_version) {
        let supported: Vec<String> = about.versions.iter().map(|v| gojson::quote(v)).collect();
        return Err(fail(CniError::with_details(
            code::INCOMPATIBLE_CNI_VERSION,
            "incompatible CNI versions",
            format!("config is {}, plugin supports [{}]", gojson::quote(&conf_version), supported.join(" ")),
        )));
    }
    if matches!(args.command.as_str(), "ADD" | "DEL") {
        check_netns(&args).map_err(fail)?;
    }
    if args.command != "DEL" {
        check_common_keys(&args.stdin).map_err(fail)?;
    }
    match args.command.as_str() {
        "ADD" => {
            let marked = args.net_conf().ok().map(|c| pending::mark(&args.pending_dir(), &c.name, &args.container_id, &args.ifname));
            let result = plugin.add(&args);
            if result.is_err() {
                // a failed ADD leaves nothing, its marker included (an earlier plugin's stays)
                if let Some(m) = marked {
                    m.undo();
                }
            }
            let result = result.map_err(fail)?;
            let result = result.convert(&conf_version).map_err(|e| fail(CniError::new(code::INCOMPATIBLE_CNI_VERSION, e.to_string())))?;
            stdout.write_all(&result.to_json_pretty()).map_err(|e| fail(CniError::io(e.to_string())))?;
            Ok(())
        }
        "CHECK" => plugin.check(&args).map_err(fail),
        "DEL" => {
            plugin.del(&args).map_err(fail)?;
            if let Some(name) = args.net_conf().ok().map(|c| c.name) {
                pending::clear(&args.pending_dir(), &name, &args.container_id, &args.ifname);
            }
            Ok(())
        }
        "GC" => plugin.gc(&args).map_err(fail),
        "STATUS" => plugin.status(&args).map_err(fail),
        _ => unreachable!("commands filtered above"),
    }
}

/// Reads the environment like Go's skel: which variables each command needs, validated.
fn args_from_env(getenv: Getenv, stdin: &mut dyn Read) -> Result<CmdArgs, CniError> {
    let get = |k: &str| getenv(k).unwrap_or_default();
    let command = get("CNI_COMMAND");
    let cmd = command.as_str();
    let required: &[(&str, &[&str])] = &[
        ("CNI_COMMAND", &["ADD", "CHECK", "DEL", "GC", "STATUS", "VERSION", ""]),
        ("CNI_CONTAINERID", &["ADD", "CHECK", "DEL"]),
        ("CNI_NETNS", &["ADD", "CHECK"]),
        ("CNI_IFNAME", &["ADD", "CHECK", "DEL"]),
        ("CNI_PATH", &["ADD", "CHECK", "DEL", "GC", "STATUS"]),
    ];
    let mut missing = Vec::new();
    for (var, cmds) in required {
        let value = get(var);
        let needed = *var == "CNI_COMMAND" || cmds.contains(&cmd);
        if value.is_empty() {
            if needed {
                missing.push(*var);
            }
        } else if needed {
            match *var {
                "CNI_CONTAINERID" => validate::container_id(&value)?,
                "CNI_IFNAME" => validate::interface_name(&value)?,
                _ => {}
            }
        }
    }
    if !missing.is_empty() {
        return Err(CniError::new(code::INVALID_ENVIRONMENT_VARIABLES, format!("required env variables [{}] missing", missing.join(","))));
    }
    let mut data = Vec::new();
    if cmd != "VERSION" {
        stdin.read_to_end(&mut data).map_err(|e| CniError::io(format!("error reading from stdin: {e}")))?;
        validate_config(&data)?;
    }
    Ok(CmdArgs {
        command,
        container_id: get("CNI_CONTAINERID"),
        netns: get("CNI_NETNS"),
        ifname: get("CNI_IFNAME"),
        args: get("CNI_ARGS"),
        path: get("CNI_PATH"),
        netns_override: get("CNI_NETNS_OVERRIDE"),
        stdin: data,
        pending_dir: getenv("RCNI_PENDING_DIR").filter(|d| !d.is_empty()).map(PathBuf::from),
        gc_grace: getenv("RCNI_GC_GRACE").and_then(|v| pending::parse_grace(&v)),
    })
}

fn validate_config(data: &[u8]) -> Result<(), CniError> {
    #[derive(serde::Deserialize)]
    struct Named {
        #[serde(default)]
        name: Option<String>,
    }
    let named: Named = serde_json::from_slice(data).map_err(|e| CniError::decoding(format!("error unmarshall network config: {e}")))?;
    let name = named.name.unwrap_or_default();
    if name.is_empty() {
        return Err(CniError::invalid_config("missing network name"));
    }
    validate::network_name(&name)
}

/// Refuses a config whose common keys (`type`, `capabilities`, `ipam`, `dns`, `runtimeConfig`,
/// `prevResult`, `args`, the GC lists) have the wrong JSON type (code 6), before ADD, CHECK, GC
/// and STATUS: a plugin that reads only some of them must not act on such a config. DEL is left
/// to the plugin, which reads what it needs and goes on without the rest (a DEL after a failed
/// ADD must succeed).
fn check_common_keys(stdin: &[u8]) -> Result<(), CniError> {
    let conf: NetConf = serde_json::from_slice(stdin).map_err(|e| CniError::decoding(format!("failed to load netconf: {e}")))?;
    let object_or_null = |v: Option<&serde_json::Value>| v.is_none_or(|v| v.is_object() || v.is_null());
    if !object_or_null(conf.raw_prev_result.as_ref()) {
        return Err(CniError::decoding("failed to load netconf: prevResult is not an object"));
    }
    if !object_or_null(conf.args.as_ref()) {
        return Err(CniError::decoding("failed to load netconf: args is not an object"));
    }
    Ok(())
}

/// Refuses a `CNI_NETNS` that is this plugin's own network namespace: acting there would change
/// the host. (Go's skel runs this check after ADD/DEL has already run; we run it before.)
fn check_netns(args: &CmdArgs) -> Result<(), CniError> {
    let o = args.netns_override.as_str();
    if o == "1" || o.eq_ignore_ascii_case("true") || args.netns.is_empty() {
        return Ok(());
    }
    use std::os::unix::fs::MetadataExt;
    let Ok(target) = std::fs::metadata(&args.netns) else {
        return Ok(()); // let the plugin report a bad path (DEL must tolerate it)
    };
    let own = std::fs::metadata("/proc/thread-self/ns/net")
        .map_err(|e| CniError::new(code::INVALID_NETNS, format!("get plugin's netns failed: {e}")))?;
    if (target.dev(), target.ino()) == (own.dev(), own.ino()) {
        return Err(CniError::new(code::INVALID_NETNS, "plugin's netns and netns from CNI_NETNS should not be the same"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

pub mod pending;

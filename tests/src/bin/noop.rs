//! `noop`: the test plugin (like upstream's noop/debug plugins). It records every call and
//! answers as its control file says.
//!
//! Control file, first found of: config key `debugFile`, `CNI_ARGS` `DEBUG=<path>`, or
//! `<argv[0]>.control` (so each symlink name in a test's plugin dir has its own). JSON keys:
//! - `reportResult`: a result (object or JSON string), `"PASSTHROUGH"` (return prevResult) or
//!   `"INJECT-DNS"` (prevResult plus nameserver 1.2.3.4). Default: passthrough, or an empty
//!   result of the config's version when there is no prevResult.
//! - `reportError`, `reportErrorCode` (default 999), `errorOn` (commands; default all but VERSION).
//! - `reportStderr`: printed on stderr. `exitWithCode`: exit status after printing.
//! - `rawStdout`: printed as-is instead of anything else (with `exitWithCode`, default 0).
//! - `reportVersionSupport`: versions answered to VERSION; `legacyNoVersion`: answer VERSION with
//!   `unknown CNI_COMMAND: VERSION`, as 0.1.0-era plugins do.
//! - `sleepMs`: delay before answering; `sleepOn`: only for these commands (default all).
//! - `log`: where to append the call record (JSON lines); default `<argv[0]>.log`.
//!
//! Each call appends `{"command","containerID","netns","ifname","args","path","stdin","env"}`.

use cni_plugin::{About, CmdArgs, Plugin};
use cni_types::result::parse_ip;
use cni_types::{CniError, CniResult};
use serde_json::{json, Map, Value};
use std::io::{Read, Write};

fn control_path(argv0: &str, stdin: &Value, cni_args: &str) -> String {
    if let Some(p) = stdin.get("debugFile").and_then(Value::as_str) {
        return p.to_string();
    }
    for pair in cni_args.split(';') {
        if let Some(p) = pair.strip_prefix("DEBUG=") {
            return p.to_string();
        }
    }
    format!("{argv0}.control")
}

fn load_control(path: &str) -> Map<String, Value> {
    std::fs::read(path).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok()).and_then(|v| v.as_object().cloned()).unwrap_or_default()
}

fn record(log: &str, stdin_raw: &[u8]) {
    let env: Map<String, Value> = std::env::vars().filter(|(k, _)| k.starts_with("CNI_")).map(|(k, v)| (k, Value::String(v))).collect();
    let get = |k: &str| std::env::var(k).unwrap_or_default();
    let stdin = serde_json::from_slice::<Value>(stdin_raw).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(stdin_raw).into()));
    let entry = json!({
        "command": get("CNI_COMMAND"), "containerID": get("CNI_CONTAINERID"), "netns": get("CNI_NETNS"),
        "ifname": get("CNI_IFNAME"), "args": get("CNI_ARGS"), "path": get("CNI_PATH"), "stdin": stdin, "env": env,
    });
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("open noop log");
    // one write per line: concurrent plugins append whole records
    f.write_all(format!("{entry}\n").as_bytes()).expect("write noop log");
}

struct Noop {
    control: Map<String, Value>,
}

impl Noop {
    fn fail_if_told(&self, command: &str) -> Result<(), CniError> {
        let Some(msg) = self.control.get("reportError").and_then(Value::as_str) else {
            return Ok(());
        };
        if let Some(on) = self.control.get("errorOn").and_then(Value::as_array) {
            if !on.iter().any(|c| c.as_str() == Some(command)) {
                return Ok(());
            }
        }
        let code = self.control.get("reportErrorCode").and_then(Value::as_u64).unwrap_or(999) as u32;
        Err(CniError::new(code, msg))
    }
}

impl Plugin for Noop {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        self.fail_if_told("ADD")?;
        let conf = args.net_conf()?;
        let prev = args.prev_result(&conf)?;
        match self.control.get("reportResult") {
            None => Ok(prev.unwrap_or_else(|| {
                CniResult::create(&conf.cni_version, format!("{{\"cniVersion\":{:?}}}", conf.cni_version).as_bytes()).expect("empty result")
            })),
            Some(Value::String(s)) if s == "PASSTHROUGH" => prev.ok_or_else(|| CniError::invalid_config("PASSTHROUGH without prevResult")),
            Some(Value::String(s)) if s == "INJECT-DNS" => {
                let mut r = prev
                    .ok_or_else(|| CniError::invalid_config("INJECT-DNS without prevResult"))?
                    .to_current()
                    .map_err(|e| CniError::internal(e.to_string()))?;
                r.dns.nameservers = vec![parse_ip("1.2.3.4").expect("ip").to_string()];
                Ok(r.into())
            }
            Some(Value::String(s)) => CniResult::from_bytes(s.as_bytes()).map_err(|e| CniError::internal(e.to_string())),
            Some(v) => CniResult::from_bytes(v.to_string().as_bytes()).map_err(|e| CniError::internal(e.to_string())),
        }
    }
    fn check(&self, _: &CmdArgs) -> Result<(), CniError> {
        self.fail_if_told("CHECK")
    }
    fn del(&self, _: &CmdArgs) -> Result<(), CniError> {
        self.fail_if_told("DEL")
    }
    fn status(&self, _: &CmdArgs) -> Result<(), CniError> {
        self.fail_if_told("STATUS")
    }
    fn gc(&self, _: &CmdArgs) -> Result<(), CniError> {
        self.fail_if_told("GC")
    }
}

fn main() {
    let argv0 = std::env::args().next().unwrap_or_default();
    let command = std::env::var("CNI_COMMAND").unwrap_or_default();
    let mut stdin_raw = Vec::new();
    if command != "VERSION" {
        let _ = std::io::stdin().read_to_end(&mut stdin_raw);
    }
    let stdin_json = serde_json::from_slice::<Value>(&stdin_raw).unwrap_or(Value::Null);
    let control = load_control(&control_path(&argv0, &stdin_json, &std::env::var("CNI_ARGS").unwrap_or_default()));
    let log = control.get("log").and_then(Value::as_str).map(String::from).unwrap_or_else(|| format!("{argv0}.log"));
    record(&log, &stdin_raw);

    let sleeps = control.get("sleepOn").and_then(Value::as_array).is_none_or(|on| on.iter().any(|c| c.as_str() == Some(command.as_str())));
    if let Some(ms) = control.get("sleepMs").and_then(Value::as_u64).filter(|_| sleeps) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    if let Some(s) = control.get("reportStderr").and_then(Value::as_str) {
        eprint!("{s}");
    }
    let exit_code = control.get("exitWithCode").and_then(Value::as_i64).map(|c| c as i32);
    if let Some(raw) = control.get("rawStdout").and_then(Value::as_str) {
        print!("{raw}");
        std::process::exit(exit_code.unwrap_or(0));
    }
    if command == "VERSION" && control.get("legacyNoVersion").and_then(Value::as_bool) == Some(true) {
        print!("{}", CniError::new(4, "unknown CNI_COMMAND: VERSION").to_json_pretty());
        std::process::exit(1);
    }
    let versions: Vec<String> = match control.get("reportVersionSupport").and_then(Value::as_array) {
        Some(v) => v.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
        None => cni_types::version::ALL.iter().map(|s| s.to_string()).collect(),
    };
    let vrefs: Vec<&str> = versions.iter().map(String::as_str).collect();
    let about = About::new("noop", "noop test plugin", &vrefs);
    let getenv = |k: &str| std::env::var(k).ok();
    let code = cni_plugin::dispatch(
        &Noop { control },
        &about,
        &getenv,
        &mut &stdin_raw[..],
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::exit(exit_code.unwrap_or(code));
}

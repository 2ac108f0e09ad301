//! dhcp: IPAM from a DHCPv4 server, through a daemon that holds and renews each attachment's
//! lease (`rcni dhcp daemon`, also `dhcp daemon` through the multi-call binary).
//!
//! Keys (`ipam`): `daemonSocketPath` (`/run/cni/dhcp.sock`), `priority` (the routes' metric),
//! `provide` (`[{option, value | fromArg}]`: options sent as they are, `fromArg` naming a
//! `CNI_ARGS` key such as `K8S_POD_NAME`), `request` (`[{option, skipDefault}]`: options added to
//! the parameter request list; `skipDefault` drops the default subnet mask and router). Options
//! go by code or by name (`host-name`, `router`, …).
//! ADD asks the daemon for a lease (client ID `<cid>/<net>/<ifname>`, so a repeated ADD gets the
//! same address) and returns its address, router as gateway, and routes (option 121's when
//! given; else option 33's and a default route through the router). DEL has the daemon release
//! the lease (nothing to do without a daemon: a warning on stderr). CHECK asks the daemon whether
//! it holds the lease, and compares with `prevResult`. A daemon that does not answer is code 11
//! (try again later) for ADD and CHECK; STATUS is code 50 then. GC: nothing (leases end by DEL).

pub mod client;
pub mod daemon;
pub mod proto;
pub mod wire;

use cni_plugin::{CmdArgs, Plugin};
use cni_types::result::Result100;
use cni_types::{CniError, CniResult};
use serde::Deserialize;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_SOCKET: &str = "/run/cni/dhcp.sock";

#[derive(Deserialize)]
struct NetConf {
    name: String,
    ipam: IpamConf,
}

#[derive(Deserialize)]
struct IpamConf {
    #[serde(rename = "daemonSocketPath", default)]
    daemon_socket_path: Option<String>,
    #[serde(default)]
    priority: u32,
    #[serde(default)]
    provide: Vec<Provide>,
    #[serde(default)]
    request: Vec<RequestOpt>,
}

#[derive(Deserialize)]
struct Provide {
    option: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(rename = "fromArg", default)]
    from_arg: Option<String>,
}

#[derive(Deserialize)]
struct RequestOpt {
    option: String,
    #[serde(rename = "skipDefault", default)]
    skip_default: bool,
}

/// The settings of one network, from its configuration and `CNI_ARGS`.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub net: String,
    pub socket: PathBuf,
    pub priority: u32,
    pub provide: Vec<(u8, Vec<u8>)>,
    /// Option 55.
    pub request: Vec<u8>,
}

/// An option by code (`12`) or name (`host-name`).
fn option_code(s: &str) -> Result<u8, CniError> {
    use proto::opt::*;
    let code =
        match s.trim().to_ascii_lowercase().as_str() {
            "subnet-mask" => SUBNET_MASK,
            "router" | "routers" => ROUTER,
            "dns-server" | "domain-name-servers" => DNS,
            "host-name" | "hostname" => HOST_NAME,
            "domain-name" => DOMAIN_NAME,
            "static-routes" => STATIC_ROUTE,
            "dhcp-lease-time" => LEASE_TIME,
            "dhcp-renewal-time" => T1,
            "dhcp-rebinding-time" => T2,
            "vendor-class-identifier" => 60,
            "dhcp-client-identifier" => CLIENT_ID,
            "user-class" => 77,
            "classless-static-routes" | "classless-route" => CLASSLESS_ROUTE,
            other => other.parse::<u8>().ok().filter(|c| !matches!(*c, PAD | END | MESSAGE_TYPE | OVERLOAD)).ok_or_else(|| {
                CniError::invalid_config(format!("dhcp: unknown option {s:?} (a code 1-254, or a name such as host-name)"))
            })?,
        };
    Ok(code)
}

fn cni_arg<'a>(args: &'a str, key: &str) -> Option<&'a str> {
    args.split(';').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// Reads and checks the configuration (before anything is asked of the daemon).
pub fn load(stdin: &[u8], cni_args: &str) -> Result<Settings, CniError> {
    let c: NetConf = serde_json::from_slice(stdin).map_err(|e| CniError::decoding(format!("dhcp: {e}")))?;
    let mut provide = Vec::new();
    for p in &c.ipam.provide {
        let code = option_code(&p.option)?;
        let v = match (&p.value, &p.from_arg) {
            (Some(v), _) if !v.is_empty() => v.clone(),
            (_, Some(a)) if !a.is_empty() => match cni_arg(cni_args, a) {
                Some(v) => v.to_string(),
                None => continue,
            },
            _ => return Err(CniError::invalid_config(format!("dhcp: provide option {:?} has neither value nor fromArg", p.option))),
        };
        if v.len() > 255 * 4 {
            return Err(CniError::invalid_config(format!("dhcp: provide option {:?}: value longer than {} bytes", p.option, 255 * 4)));
        }
        provide.push((code, v.into_bytes()));
    }
    let mut request =
        if c.ipam.request.iter().any(|r| r.skip_default) { vec![] } else { vec![proto::opt::SUBNET_MASK, proto::opt::ROUTER] };
    for r in &c.ipam.request {
        let code = option_code(&r.option)?;
        if !request.contains(&code) {
            request.push(code);
        }
    }
    // the lease's timers are read from every ACK
    for t in [proto::opt::LEASE_TIME, proto::opt::T1, proto::opt::T2] {
        if !request.contains(&t) {
            request.push(t);
        }
    }
    let socket = PathBuf::from(c.ipam.daemon_socket_path.filter(|s| !s.is_empty()).unwrap_or_else(|| DEFAULT_SOCKET.into()));
    Ok(Settings { net: c.name, socket, priority: c.ipam.priority, provide, request })
}

/// The client ID of an attachment, as the reference makes it.
pub fn client_id(container_id: &str, net: &str, ifname: &str) -> String {
    format!("{container_id}/{net}/{ifname}")
}

/// How long the plugin waits for the daemon's answer (its own waits end sooner: -timeout).
const ANSWER_WAIT: Duration = Duration::from_secs(120);

/// The daemon's socket, connected. The fuzzing build talks to no daemon (nor to any other socket
/// a fuzzed path could name).
fn connect(path: &std::path::Path) -> std::io::Result<std::os::unix::net::UnixStream> {
    #[cfg(feature = "fuzzing")]
    {
        let _ = path;
        Err(std::io::Error::other("no daemon in a fuzzing build"))
    }
    #[cfg(not(feature = "fuzzing"))]
    std::os::unix::net::UnixStream::connect(path)
}

enum AskError {
    Unreachable(String),
    Failed(CniError),
}

fn ask(s: &Settings, args: &CmdArgs) -> Result<Option<serde_json::Value>, AskError> {
    let config: serde_json::Value =
        serde_json::from_slice(&args.stdin).map_err(|e| AskError::Failed(CniError::decoding(format!("dhcp: {e}"))))?;
    let req = wire::Request {
        command: args.command.clone(),
        container_id: args.container_id.clone(),
        netns: args.netns.clone(),
        ifname: args.ifname.clone(),
        args: args.args.clone(),
        config,
    };
    let unreachable = |e: std::io::Error| {
        AskError::Unreachable(format!(
            "dhcp: the DHCP daemon is not reachable at {}: {e} (is `rcni dhcp daemon` running?)",
            s.socket.display()
        ))
    };
    let mut stream = connect(&s.socket).map_err(unreachable)?;
    let wait = cni_runtime::deadline::current().map(|at| at.saturating_duration_since(std::time::Instant::now())).unwrap_or(ANSWER_WAIT);
    let _ = stream.set_read_timeout(Some(wait.clamp(Duration::from_millis(100), ANSWER_WAIT)));
    let mut line = serde_json::to_vec(&req).expect("a request serialises");
    line.push(b'\n');
    stream.write_all(&line).map_err(unreachable)?;
    let mut answer = Vec::new();
    std::io::BufReader::new(&stream).take_while_line(&mut answer).map_err(|e| {
        AskError::Failed(CniError::new(
            cni_types::error::code::TRY_AGAIN_LATER,
            format!("dhcp: no answer from the DHCP daemon at {}: {e}", s.socket.display()),
        ))
    })?;
    if answer.starts_with(b"HTTP/") {
        return Err(AskError::Failed(CniError::internal(format!(
            "dhcp: the daemon at {} answers HTTP ({}): it is not rcni's (the reference's Go daemon?); run `rcni dhcp daemon` for rcni's plugin",
            s.socket.display(),
            String::from_utf8_lossy(&answer).trim()
        ))));
    }
    let resp: wire::Response = serde_json::from_slice(&answer).map_err(|e| {
        AskError::Failed(CniError::internal(format!("dhcp: the DHCP daemon at {} answered nonsense: {e}", s.socket.display())))
    })?;
    match resp.error {
        Some(e) => Err(AskError::Failed(e)),
        None => Ok(resp.result),
    }
}

/// Reads one line, at most the protocol's maximum.
trait TakeLine {
    fn take_while_line(self, out: &mut Vec<u8>) -> std::io::Result<()>;
}

impl<R: BufRead> TakeLine for R {
    fn take_while_line(self, out: &mut Vec<u8>) -> std::io::Result<()> {
        self.take(wire::MAX_REQUEST as u64 + 1).read_until(b'\n', out)?;
        if out.last() != Some(&b'\n') {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the connection closed before a full line"));
        }
        out.pop();
        Ok(())
    }
}

fn failed(e: AskError) -> CniError {
    match e {
        AskError::Unreachable(m) => CniError::new(cni_types::error::code::TRY_AGAIN_LATER, m),
        AskError::Failed(e) => e,
    }
}

fn lease_result(v: Option<serde_json::Value>) -> Result<Result100, CniError> {
    let v = v.ok_or_else(|| CniError::internal("dhcp: the DHCP daemon answered without a result"))?;
    serde_json::from_value(v).map_err(|e| CniError::internal(format!("dhcp: the DHCP daemon's result does not parse: {e}")))
}

pub struct Dhcp;

impl Plugin for Dhcp {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let s = load(&args.stdin, &args.args)?;
        let r = lease_result(ask(&s, args).map_err(failed)?)?;
        Ok(r.into())
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(&args.stdin, &args.args)?;
        let held = lease_result(ask(&s, args).map_err(failed)?)?;
        let net = args.net_conf()?;
        if let Some(prev) = args.prev_result_hint(&net) {
            for ip in &held.ips {
                if !prev.ips.iter().any(|p| p.address == ip.address) {
                    return Err(CniError::internal(format!("dhcp: the lease's address {} is not in prevResult", ip.address)));
                }
            }
        }
        Ok(())
    }

    /// STATUS: code 50 while no daemon listens on the socket (ADD could not work).
    fn status(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = load(&args.stdin, &args.args)?;
        connect(&s.socket).map(drop).map_err(|e| {
            CniError::new(
                cni_types::error::code::PLUGIN_NOT_AVAILABLE,
                format!("dhcp: the DHCP daemon is not reachable at {}: {e} (is `rcni dhcp daemon` running?)", s.socket.display()),
            )
        })
    }

    fn del(&self, args: &CmdArgs) -> Result<(), CniError> {
        let s = match load(&args.stdin, &args.args) {
            Ok(s) => s,
            // nothing can have been leased with a configuration that does not load
            Err(e) => {
                eprintln!("dhcp: DEL: {}", e.msg);
                return Ok(());
            }
        };
        match ask(&s, args) {
            Ok(_) => Ok(()),
            Err(AskError::Unreachable(m)) => {
                eprintln!("{m}; nothing released (the server's lease runs out by itself)");
                Ok(())
            }
            Err(AskError::Failed(e)) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings() {
        let s = load(br#"{"name":"n1","ipam":{"type":"dhcp"}}"#, "").unwrap();
        assert_eq!(s.socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(s.request, vec![1, 3, 51, 58, 59]);
        assert!(s.provide.is_empty());
        let s = load(
            br#"{"name":"n1","ipam":{"type":"dhcp","daemonSocketPath":"/x.sock","priority":7,
                "provide":[{"option":"host-name","fromArg":"K8S_POD_NAME"},{"option":"60","value":"rcni"},{"option":"77","fromArg":"NOPE"}],
                "request":[{"option":"classless-static-routes","skipDefault":true},{"option":"6"}]}}"#,
            "IgnoreUnknown=1;K8S_POD_NAME=web-0",
        )
        .unwrap();
        assert_eq!((s.socket.to_str().unwrap(), s.priority), ("/x.sock", 7));
        assert_eq!(s.provide, vec![(12, b"web-0".to_vec()), (60, b"rcni".to_vec())]);
        assert_eq!(s.request, vec![121, 6, 51, 58, 59]);
        for bad in [
            &br#"{"name":"n1","ipam":{"type":"dhcp","provide":[{"option":"host-name"}]}}"#[..],
            br#"{"name":"n1","ipam":{"type":"dhcp","request":[{"option":"no-such"}]}}"#,
            br#"{"name":"n1","ipam":{"type":"dhcp","request":[{"option":"53"}]}}"#,
        ] {
            assert_eq!(load(bad, "").unwrap_err().code, 7, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(load(br#"{"name":"n1"}"#, "").unwrap_err().code, 6);
        assert_eq!(client_id("c1", "n1", "eth0"), "c1/n1/eth0");
    }
}

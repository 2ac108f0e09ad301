//! What several subcommands share (they never import each other): the keys rcni writes into the
//! conflists it creates, the subnets a network file declares, and aligned tables.

use ipnet::IpNet;
use serde_json::Value;

/// Progress of long work (`gc`, `network prune`, `network rm` of several) on a terminal: one
/// line on stderr, rewritten per step and cleared at the end; nothing when stderr is no terminal.
pub struct Progress {
    total: usize,
    done: usize,
    on: bool,
}

impl Progress {
    pub fn new(what: &str, total: usize) -> Progress {
        use std::io::IsTerminal;
        let on = total > 1 && std::io::stderr().is_terminal();
        if on {
            eprint!("\r\x1b[K{what}: 0/{total}");
        }
        Progress { total, done: 0, on }
    }

    /// The next step, `item`, begins.
    pub fn step(&mut self, item: &str) {
        self.done += 1;
        if self.on {
            eprint!("\r\x1b[K[{}/{}] {item}", self.done, self.total);
        }
    }
}

impl Progress {
    /// Clears the line, before the step's own output.
    pub fn clear(&self) {
        if self.on {
            eprint!("\r\x1b[K");
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// `--format table|json` (and `--json`, its alias), for every command that prints state.
#[derive(clap::Args, Debug, Clone)]
pub struct Output {
    /// table or json
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Same as --format json
    #[arg(long)]
    pub json: bool,
}

impl Output {
    /// JSON asked for.
    pub fn json(&self) -> bool {
        self.json || self.format == "json"
    }
}

/// The keys rcni adds at the top of the conflists `rcni network create` writes (plugins never see
/// top-level keys): the network's ID (its presence marks a network rcni made), labels, options.
pub const ID_KEY: &str = "rcniID";
pub const LABELS_KEY: &str = "rcniLabels";
pub const OPTIONS_KEY: &str = "rcniOptions";

/// Every subnet a network file declares: each `subnet` key anywhere in it (host-local's ranges
/// and legacy single range, static's addresses, any other IPAM's), and `ipRanges`-style entries.
pub fn subnets_of(v: &Value) -> Vec<IpNet> {
    let mut out = Vec::new();
    walk(v, &mut out);
    out
}

fn walk(v: &Value, out: &mut Vec<IpNet>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("subnet" | "address", Value::String(s)) => {
                        if let Ok(n) = s.parse::<IpNet>() {
                            out.push(n.trunc());
                        }
                    }
                    _ => walk(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
        _ => {}
    }
}

/// Columns padded to their widest cell, two spaces apart.
pub fn print_table<const N: usize>(head: &[&str; N], rows: &[[String; N]]) {
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}  ", width = w[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn publish_specs() {
        let m = parse_publish("8080:80").unwrap();
        assert_eq!((m.host_port, m.container_port, m.protocol.as_str(), m.host_ip.as_str()), (8080, 80, "tcp", ""));
        let m = parse_publish("127.0.0.1:53:5353/udp").unwrap();
        assert_eq!((m.host_port, m.container_port, m.protocol.as_str(), m.host_ip.as_str()), (53, 5353, "udp", "127.0.0.1"));
        let m = parse_publish("[fd00::1]:443:8443/sctp").unwrap();
        assert_eq!((m.host_ip.as_str(), m.protocol.as_str()), ("fd00::1", "sctp"));
        for bad in ["80", "0:80", "80:70000", "a:80", "80:80/icmp", "1.2.3:80:80", "fd00::1:80:80", "[fd00::1]80:80", "1:2:3:4"] {
            assert!(parse_publish(bad).is_err(), "{bad}");
        }
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn subnets_of_any_tools_file() {
        let podman = json!({"cniVersion": "0.4.0", "name": "podman", "plugins": [{"type": "bridge", "ipam": {"type": "host-local",
            "ranges": [[{"subnet": "10.88.0.0/16", "gateway": "10.88.0.1"}]]}}]});
        let legacy = json!({"name": "old", "type": "bridge", "ipam": {"type": "host-local", "subnet": "10.22.0.5/16"}});
        let st = json!({"name": "st", "type": "ptp", "ipam": {"type": "static", "addresses": [{"address": "192.168.5.9/24"}]}});
        assert_eq!(subnets_of(&podman), vec!["10.88.0.0/16".parse::<IpNet>().unwrap()]);
        assert_eq!(subnets_of(&legacy), vec!["10.22.0.0/16".parse::<IpNet>().unwrap()]);
        assert_eq!(subnets_of(&st), vec!["192.168.5.0/24".parse::<IpNet>().unwrap()]);
    }
}

/// `[HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]`, as `docker run -p` / `nerdctl run -p` take it
/// (without port ranges).
pub fn parse_publish(s: &str) -> Result<cni_types::capabilities::PortMapping, String> {
    let (spec, protocol) = match s.rsplit_once('/') {
        Some((spec, p @ ("tcp" | "udp" | "sctp"))) => (spec, p),
        Some((_, p)) => return Err(format!("unknown protocol {p:?} (tcp, udp or sctp)")),
        None => (s, "tcp"),
    };
    let (host_ip, ports) = match spec.strip_prefix('[') {
        Some(rest) => {
            let (ip, ports) = rest.split_once("]:").ok_or("an IPv6 host address is written [ADDR]:HOST:CONTAINER")?;
            (ip, ports)
        }
        None => match spec.matches(':').count() {
            1 => ("", spec),
            2 => spec.split_once(':').expect("two colons"),
            _ => return Err("expected [HOST_IP:]HOST_PORT:CONTAINER_PORT[/PROTO]".into()),
        },
    };
    if !host_ip.is_empty() {
        host_ip.parse::<std::net::IpAddr>().map_err(|_| format!("invalid host address {host_ip:?}"))?;
    }
    let (host, container) = ports.split_once(':').ok_or("expected HOST_PORT:CONTAINER_PORT")?;
    let port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("invalid port {p:?} (1-65535)")),
    };
    Ok(cni_types::capabilities::PortMapping {
        host_port: port(host)?,
        container_port: port(container)?,
        protocol: protocol.into(),
        host_ip: host_ip.into(),
    })
}

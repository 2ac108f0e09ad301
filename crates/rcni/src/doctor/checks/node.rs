//! What the networks need from the node: subnets of their own, IP forwarding for gateway
//! networks, a usable nftables for masquerade, published ports and the firewall.

use super::{finding, flag, id, networks_in_use, Finding};
use crate::doctor::facts::{Facts, Network};
use crate::doctor::Severity::{Error, Info, Warning};
use ipnet::IpNet;
use serde_json::Value;

/// Pairs of networks whose subnets overlap: containers of both get the same addresses, and the
/// node routes the prefix to one bridge only.
pub fn subnets(f: &Facts) -> Vec<Finding> {
    let nets: Vec<(&Network, Vec<IpNet>)> = networks_in_use(f).into_iter().map(|n| (n, crate::shared::subnets_of(&n.raw))).collect();
    let mut out = Vec::new();
    for (i, (a, sa)) in nets.iter().enumerate() {
        for (b, sb) in &nets[i + 1..] {
            if a.name == b.name {
                continue;
            }
            let pairs: Vec<String> = sa
                .iter()
                .flat_map(|x| sb.iter().map(move |y| (x, y)))
                .filter(|(x, y)| x.contains(&y.network()) || y.contains(&x.network()))
                .map(|(x, y)| if x == y { x.to_string() } else { format!("{x} and {y}") })
                .collect();
            if pairs.is_empty() {
                continue;
            }
            out.push(finding(
                Error,
                id::SUBNETS,
                format!("networks {} ({}) and {} ({}) overlap: {}", a.name, a.source(), b.name, b.source(), pairs.join(", ")),
                Some(format!(
                    "give one of them a subnet of its own: edit its file, or remove it and let `rcni network create {}` pick a free subnet",
                    b.name
                )),
            ));
        }
    }
    out
}

/// How a network uses the node as its router.
struct Gateway {
    /// The plugin enables forwarding itself at ADD (bridge's isGateway, ptp).
    enables: bool,
    v4: bool,
    v6: bool,
}

fn gateway(n: &Network) -> Option<Gateway> {
    let main = n.plugins.first()?;
    let enables = match main.get("type").and_then(Value::as_str)? {
        "bridge" if flag(main, "isGateway") => true,
        "bridge" if flag(main, "ipMasq") => false,
        "ptp" => true,
        _ => return None,
    };
    let subnets = crate::shared::subnets_of(&n.raw);
    let v6 = subnets.iter().any(|s| s.addr().is_ipv6());
    // no subnet in the file (dhcp, runtime-given ranges): assume IPv4
    let v4 = subnets.iter().any(|s| s.addr().is_ipv4()) || !v6;
    Some(Gateway { enables, v4, v6 })
}

pub fn forwarding(f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    for n in networks_in_use(f) {
        let Some(g) = gateway(n) else { continue };
        for (needed, on, key, family) in
            [(g.v4, f.forwarding.v4, "net.ipv4.ip_forward", "IPv4"), (g.v6, f.forwarding.v6, "net.ipv6.conf.all.forwarding", "IPv6")]
        {
            if !needed || on != Some(false) {
                continue;
            }
            let fix = Some(format!("sysctl -w {key}=1"));
            let (severity, what) = if f.in_use(&n.name) {
                (
                    Error,
                    format!(
                        "{family} forwarding is off ({key}=0): containers of network {} cannot reach beyond the node (set it in /etc/sysctl.d/ to keep it on)",
                        n.name
                    ),
                )
            } else if g.enables {
                (Info, format!("{family} forwarding is off ({key}=0); network {} turns it on at its next attach", n.name))
            } else {
                (Warning, format!("{family} forwarding is off ({key}=0): network {} masquerades but nothing turns forwarding on", n.name))
            };
            out.push(finding(severity, id::FORWARDING, what, fix));
        }
    }
    out
}

/// Whether rcni's plugins of the network program nftables.
fn needs_nftables(n: &Network) -> bool {
    n.plugins.iter().any(|p| match p.get("type").and_then(Value::as_str) {
        Some("bridge") => flag(p, "ipMasq") || flag(p, "macspoofchk"),
        Some("ptp") => flag(p, "ipMasq"),
        Some("portmap") => true,
        Some("firewall") => !matches!(p.get("backend").and_then(Value::as_str), Some("iptables")),
        _ => false,
    })
}

pub fn nftables(f: &Facts) -> Vec<Finding> {
    let Err(p) = &f.nft else { return Vec::new() };
    let users: Vec<String> = networks_in_use(f).into_iter().filter(|n| needs_nftables(n)).map(|n| n.name.clone()).collect();
    let denied = matches!(p.errno, Some(libc::EPERM) | Some(libc::EACCES));
    let unsupported =
        matches!(p.errno, Some(libc::EOPNOTSUPP) | Some(libc::EPROTONOSUPPORT) | Some(libc::EAFNOSUPPORT) | Some(libc::ENOSYS));
    let needed_by = if users.is_empty() { String::new() } else { format!(" (networks {} need it)", users.join(", ")) };
    // denied: most likely the doctor itself lacks CAP_NET_ADMIN
    let severity = if denied {
        Warning
    } else if users.is_empty() {
        Info
    } else {
        Error
    };
    let fix = if denied {
        "run rcni doctor as root (it needs CAP_NET_ADMIN to read nftables)"
    } else if unsupported {
        "load nftables: modprobe nf_tables (a kernel with CONFIG_NF_TABLES)"
    } else {
        "check that the kernel has nf_tables (modprobe nf_tables) and that `nft list ruleset` works"
    };
    vec![finding(severity, id::NFTABLES, format!("nftables is not usable: {}{needed_by}", p.message), Some(fix.into()))]
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::doctor::facts::{NftProblem, Origin};
    use serde_json::json;

    #[test]
    fn overlapping_subnets() {
        let mut default = network("x", serde_json::from_str(crate::default_network::DEFAULT_NETWORK).unwrap());
        default.origin = Origin::Default;
        let f = node(vec![
            bridge("a", "10.161.0.0/16", "1.0.0"),
            bridge("b", "10.161.5.0/24", "1.0.0"),
            bridge("c", "10.162.0.0/24", "1.0.0"),
            network(
                "d.conf",
                json!({"cniVersion": "1.0.0", "name": "d", "type": "ptp", "ipam": {"type": "static", "addresses": [{"address": "10.162.0.9/24"}]}}),
            ),
            bridge("e", "10.209.3.0/24", "1.0.0"),
            default,
        ]);
        let r = subnets(&f);
        let whats: Vec<&str> = r.iter().map(|x| x.what.as_str()).collect();
        assert_eq!(
            whats,
            [
                "networks a (/etc/cni/net.d/a.conflist) and b (/etc/cni/net.d/b.conflist) overlap: 10.161.0.0/16 and 10.161.5.0/24",
                "networks c (/etc/cni/net.d/c.conflist) and d (/etc/cni/net.d/d.conf) overlap: 10.162.0.0/24",
            ],
            "rcni's default network (10.209.0.0/16) only counts while it has attachments"
        );
        assert!(r.iter().all(|x| x.severity == Error && x.check == "subnets"));
        let mut f = f;
        f.cache = Ok(vec![attachment("rcni-default", "c1", "eth0")]);
        assert_eq!(subnets(&f).len(), 3);
        assert!(subnets(&f)[2]
            .what
            .starts_with("networks e (/etc/cni/net.d/e.conflist) and rcni-default (rcni's embedded default network) overlap"));
    }

    #[test]
    fn forwarding_off() {
        let masq_only = network(
            "m.conflist",
            json!({"cniVersion": "1.0.0", "name": "m", "plugins": [{"type": "bridge", "ipMasq": true,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": "fd00:161::/64"}]]}}]}),
        );
        let flat = network("f.conf", json!({"cniVersion": "1.0.0", "name": "f", "type": "macvlan", "ipam": {"type": "dhcp"}}));
        let mut f = node(vec![bridge("a", "10.161.0.0/24", "1.0.0"), masq_only, flat]);
        assert!(forwarding(&f).is_empty(), "forwarding on");
        f.forwarding.v4 = Some(false);
        f.forwarding.v6 = Some(false);
        let r = forwarding(&f);
        let got: Vec<(crate::doctor::Severity, &str)> = r.iter().map(|x| (x.severity, x.what.as_str())).collect();
        assert_eq!(
            got,
            [
                (Info, "IPv4 forwarding is off (net.ipv4.ip_forward=0); network a turns it on at its next attach"),
                (Warning, "IPv6 forwarding is off (net.ipv6.conf.all.forwarding=0): network m masquerades but nothing turns forwarding on"),
            ]
        );
        f.cache = Ok(vec![attachment("a", "c1", "eth0")]);
        let r = forwarding(&f);
        assert_eq!(r[0].severity, Error);
        assert_eq!(
            r[0].what,
            "IPv4 forwarding is off (net.ipv4.ip_forward=0): containers of network a cannot reach beyond the node (set it in /etc/sysctl.d/ to keep it on)"
        );
        assert_eq!(r[0].fix.as_deref(), Some("sysctl -w net.ipv4.ip_forward=1"));
    }

    #[test]
    fn nftables_unusable() {
        let mut f = node(vec![bridge("a", "10.161.0.0/24", "1.0.0")]);
        assert!(nftables(&f).is_empty());
        f.nft = Err(NftProblem {
            message: "listing sets of rcni: Operation not supported (os error 95)".into(),
            errno: Some(libc::EOPNOTSUPP),
        });
        let r = nftables(&f);
        assert_eq!((r[0].severity, r[0].check), (Error, "nftables"));
        assert_eq!(r[0].what, "nftables is not usable: listing sets of rcni: Operation not supported (os error 95) (networks a need it)");
        assert_eq!(r[0].fix.as_deref(), Some("load nftables: modprobe nf_tables (a kernel with CONFIG_NF_TABLES)"));
        f.nft = Err(NftProblem { message: "opening a netfilter socket: Operation not permitted".into(), errno: Some(libc::EPERM) });
        assert_eq!(nftables(&f)[0].severity, Warning);
        assert!(nftables(&f)[0].fix.as_deref().unwrap().starts_with("run rcni doctor as root"));
        // no network needs it
        f.networks = vec![network("f.conf", json!({"cniVersion": "1.0.0", "name": "f", "type": "macvlan", "ipam": {"type": "dhcp"}}))];
        f.nft = Err(NftProblem { message: "x".into(), errno: Some(libc::EOPNOTSUPP) });
        assert_eq!(nftables(&f)[0].severity, Info);
    }
}

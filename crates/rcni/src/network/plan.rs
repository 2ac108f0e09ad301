//! `rcni network create`'s planning, without the kernel or the file system: the options checked,
//! the subnets chosen or validated against what is taken, and the conflist built.
//!
//! Automatic IPv4 subnets are the first free /24 of [`POOL_V4`] (from `10.210.1.0/24`); an
//! automatic IPv6 subnet is a ULA /64 whose 40-bit global ID is derived from the network's name
//! (RFC 4193's "locally assigned", made reproducible). Free means overlapping nothing
//! [`Taken`]: no subnet of another network of the config directory (any tool's file: every
//! `subnet` key in it counts), no address or route of the node.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

/// Where automatic IPv4 subnets come from: /24s of it, from the second on.
pub const POOL_V4: &str = "10.210.0.0/16";

use crate::shared::{ID_KEY, LABELS_KEY, OPTIONS_KEY};

/// `--driver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Driver {
    Bridge,
    Macvlan,
    Ipvlan,
}

impl Driver {
    pub fn name(self) -> &'static str {
        match self {
            Driver::Bridge => "bridge",
            Driver::Macvlan => "macvlan",
            Driver::Ipvlan => "ipvlan",
        }
    }
}

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct CreateOpts {
    pub name: String,
    pub driver: Driver,
    pub subnets: Vec<String>,
    pub gateways: Vec<String>,
    pub ip_range: Option<String>,
    pub ipv6: bool,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub cni_version: String,
}

/// A prefix something else uses, and what (for the error that names it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub net: IpNet,
    pub what: String,
}

/// The network to write.
#[derive(Debug, Clone)]
pub struct Plan {
    pub file_name: String,
    pub id: String,
    pub subnets: Vec<IpNet>,
    /// The conflist, as JSON.
    pub conflist: Value,
}

/// The network's ID: SHA-256 of its name, in hex (as nerdctl derives its `nerdctlID`).
pub fn network_id(name: &str) -> String {
    Sha256::digest(name.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The bridge of a created network: `rcni-` and the first 10 digits of its ID (15 characters,
/// the kernel's limit).
pub fn bridge_name(id: &str) -> String {
    format!("rcni-{}", &id[..10])
}

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("option {key}={v}: expected true or false")),
    }
}

/// The `-o` options of each driver, by every name they go by (nerdctl's and Docker's).
#[derive(Debug, Default, PartialEq, Eq)]
struct Options {
    mtu: Option<u32>,
    bridge: Option<String>,
    ip_masq: Option<bool>,
    icc: Option<bool>,
    parent: Option<String>,
    mode: Option<String>,
}

fn options(driver: Driver, given: &BTreeMap<String, String>) -> Result<Options, String> {
    let mut o = Options::default();
    for (k, v) in given {
        match (driver, k.as_str()) {
            (_, "mtu" | "com.docker.network.driver.mtu") => {
                o.mtu = Some(v.parse().ok().filter(|m| (68..=65535).contains(m)).ok_or(format!("option {k}={v}: an MTU from 68 to 65535"))?)
            }
            (Driver::Bridge, "bridge" | "com.docker.network.bridge.name") => {
                cni_types::validate::interface_name(v).map_err(|e| format!("option {k}={v}: not an interface name ({})", e.msg))?;
                o.bridge = Some(v.clone());
            }
            (Driver::Bridge, "ip-masq" | "com.docker.network.bridge.enable_ip_masquerade") => o.ip_masq = Some(parse_bool(k, v)?),
            (Driver::Bridge, "icc" | "com.docker.network.bridge.enable_icc") => o.icc = Some(parse_bool(k, v)?),
            (Driver::Macvlan | Driver::Ipvlan, "parent") => {
                cni_types::validate::interface_name(v).map_err(|e| format!("option {k}={v}: not an interface name ({})", e.msg))?;
                o.parent = Some(v.clone());
            }
            (Driver::Macvlan, "mode" | "macvlan_mode") => {
                if !["bridge", "private", "vepa", "passthru"].contains(&v.as_str()) {
                    return Err(format!("option {k}={v}: macvlan modes are bridge, private, vepa and passthru"));
                }
                o.mode = Some(v.clone());
            }
            (Driver::Ipvlan, "mode" | "ipvlan_mode") => {
                if !["l2", "l3", "l3s"].contains(&v.as_str()) {
                    return Err(format!("option {k}={v}: ipvlan modes are l2, l3 and l3s"));
                }
                o.mode = Some(v.clone());
            }
            _ => {
                let known = match driver {
                    Driver::Bridge => "mtu, bridge, ip-masq, icc (or their com.docker.network.* names)",
                    Driver::Macvlan => "mtu, parent, mode (or macvlan_mode)",
                    Driver::Ipvlan => "mtu, parent, mode (or ipvlan_mode)",
                };
                return Err(format!("unknown option {k:?} for the {} driver; known: {known}", driver.name()));
            }
        }
    }
    Ok(o)
}

fn canonical(s: &str, what: &str) -> Result<IpNet, String> {
    let net: IpNet = s.parse().map_err(|_| format!("invalid {what} {s:?}: expected an address/prefix like 10.1.2.0/24"))?;
    if net.addr() != net.network() {
        return Err(format!("{what} {s} has host bits set: maybe you meant {}?", net.trunc()));
    }
    Ok(net)
}

fn first_overlap<'a>(net: &IpNet, taken: &'a [Taken]) -> Option<&'a Taken> {
    taken.iter().find(|t| t.net.contains(&net.network()) || net.contains(&t.net.network()))
}

/// The first free /24 of the pool.
fn auto_v4(taken: &[Taken]) -> Result<IpNet, String> {
    let pool: Ipv4Net = POOL_V4.parse().expect("constant pool");
    pool.subnets(24)
        .expect("a /16 has /24s")
        .skip(1)
        .map(IpNet::V4)
        .find(|n| first_overlap(n, taken).is_none())
        .ok_or_else(|| format!("no free /24 left in {POOL_V4}: give one with --subnet"))
}

/// A ULA /64 for the network, free of what is taken.
fn auto_v6(name: &str, taken: &[Taken]) -> Result<IpNet, String> {
    for attempt in 0u32..64 {
        let d = Sha256::digest(format!("{name}\0{attempt}").as_bytes());
        let mut o = [0u8; 16];
        o[0] = 0xfd;
        o[1..6].copy_from_slice(&d[..5]);
        let net = IpNet::V6(Ipv6Net::new(Ipv6Addr::from(o), 64).expect("a /64"));
        if first_overlap(&net, taken).is_none() {
            return Ok(net);
        }
    }
    Err("no free IPv6 ULA /64 found: give one with --subnet".into())
}

/// host-local's range of a subnet: its gateway and, with `--ip-range`, the addresses within.
fn range(subnet: IpNet, gateway: Option<IpAddr>, ip_range: Option<IpNet>) -> Value {
    let mut r = Map::new();
    r.insert("subnet".into(), json!(subnet.to_string()));
    if let Some(g) = gateway {
        r.insert("gateway".into(), json!(g.to_string()));
    }
    if let Some(ir) = ip_range {
        let first = if ir.network() == subnet.network() { ipam::ip::add(ir.network(), 1) } else { ir.network() };
        let last = match ir.broadcast() {
            IpAddr::V4(b) if ir.broadcast() == subnet.broadcast() => IpAddr::V4(std::net::Ipv4Addr::from(u32::from(b) - 1)),
            b => b,
        };
        r.insert("rangeStart".into(), json!(first.to_string()));
        r.insert("rangeEnd".into(), json!(last.to_string()));
    }
    Value::Object(r)
}

/// Plans the network: options, subnets (given ones checked against `taken`, missing ones
/// chosen), the conflist.
pub fn plan(o: &CreateOpts, taken: &[Taken]) -> Result<Plan, String> {
    cni_types::validate::network_name(&o.name).map_err(|e| {
        format!("invalid network name {:?}: {} (letters, digits, '_', '.' and '-', starting with a letter or digit)", o.name, e.msg)
    })?;
    if !["1.0.0", "1.1.0"].contains(&o.cni_version.as_str()) {
        return Err(format!(
            "--cni-version {}: 1.0.0 (containerd 1.6, podman 4, Go's cnitool) or 1.1.0 (spec 1.1: GC, STATUS)",
            o.cni_version
        ));
    }
    let opts = options(o.driver, &o.options)?;
    if o.internal && o.driver != Driver::Bridge {
        return Err(format!("--internal is for the bridge driver ({} networks reach the parent's segment directly)", o.driver.name()));
    }
    // subnets: given ones must be canonical, of a family asked for, free, and not overlap each other
    let mut subnets: Vec<IpNet> = Vec::new();
    for s in &o.subnets {
        let net = canonical(s, "subnet")?;
        if net.addr().is_ipv6() && !o.ipv6 {
            return Err(format!("subnet {net} is IPv6: add --ipv6 for a dual-stack network"));
        }
        if let Some(t) = first_overlap(&net, taken) {
            return Err(format!("subnet {net} overlaps {} ({})", t.net, t.what));
        }
        if let Some(other) = subnets.iter().find(|x| x.contains(&net.network()) || net.contains(&x.network())) {
            return Err(format!("subnets {other} and {net} overlap"));
        }
        let bits = if net.addr().is_ipv4() { 32 } else { 128 };
        if net.prefix_len() > bits - 2 {
            return Err(format!("subnet {net} is too small to hand out addresses from"));
        }
        subnets.push(net);
    }
    if subnets.iter().filter(|s| s.addr().is_ipv4()).count() > 1 || subnets.iter().filter(|s| s.addr().is_ipv6()).count() > 1 {
        return Err("at most one --subnet per address family".into());
    }
    let mut taken_now = taken.to_vec();
    taken_now.extend(subnets.iter().map(|n| Taken { net: *n, what: "this network".into() }));
    if !subnets.iter().any(|s| s.addr().is_ipv4()) {
        subnets.insert(0, auto_v4(&taken_now)?);
    }
    if o.ipv6 && !subnets.iter().any(|s| s.addr().is_ipv6()) {
        subnets.push(auto_v6(&o.name, &taken_now)?);
    }
    subnets.sort_by_key(|s| s.addr().is_ipv6());
    // gateways and the range: each in the subnet of its family
    let mut gateways: BTreeMap<bool, IpAddr> = BTreeMap::new();
    for g in &o.gateways {
        let ip: IpAddr = g.parse().map_err(|_| format!("invalid gateway {g:?}"))?;
        let Some(s) = subnets.iter().find(|s| s.contains(&ip)) else {
            return Err(format!("gateway {ip} is in none of the network's subnets ({})", list(&subnets)));
        };
        if ip == s.network() || (ip.is_ipv4() && ip == s.broadcast()) {
            return Err(format!("gateway {ip} is the network or broadcast address of {s}"));
        }
        if gateways.insert(ip.is_ipv6(), ip).is_some() {
            return Err("at most one --gateway per address family".into());
        }
    }
    let ip_range = match &o.ip_range {
        None => None,
        Some(r) => {
            let ir = canonical(r, "--ip-range")?;
            if !subnets.iter().any(|s| s.contains(&ir.network()) && s.prefix_len() <= ir.prefix_len()) {
                return Err(format!("--ip-range {ir} is not within the network's subnets ({})", list(&subnets)));
            }
            Some(ir)
        }
    };
    let ranges: Vec<Value> = subnets
        .iter()
        .map(|s| {
            let gw = gateways.get(&s.addr().is_ipv6()).copied();
            let ir = ip_range.filter(|r| s.contains(&r.network()));
            json!([range(*s, gw, ir)])
        })
        .collect();
    let routes: Vec<Value> = if o.internal {
        Vec::new()
    } else {
        subnets.iter().map(|s| json!({"dst": if s.addr().is_ipv4() { "0.0.0.0/0" } else { "::/0" }})).collect()
    };
    let mut ipam = json!({"type": "host-local", "ranges": ranges});
    if !routes.is_empty() {
        ipam["routes"] = json!(routes);
    }
    let id = network_id(&o.name);
    let mut main = match o.driver {
        Driver::Bridge => json!({
            "type": "bridge",
            "bridge": opts.bridge.clone().unwrap_or_else(|| bridge_name(&id)),
            "isGateway": !o.internal,
            "ipMasq": !o.internal && opts.ip_masq.unwrap_or(true),
            "hairpinMode": true,
        }),
        Driver::Macvlan => json!({"type": "macvlan", "mode": opts.mode.clone().unwrap_or_else(|| "bridge".into())}),
        Driver::Ipvlan => json!({"type": "ipvlan", "mode": opts.mode.clone().unwrap_or_else(|| "l2".into())}),
    };
    if let Some(p) = &opts.parent {
        main["master"] = json!(p);
    }
    if let Some(m) = opts.mtu {
        main["mtu"] = json!(m);
    }
    main["capabilities"] = json!({"ips": true, "mac": true});
    main["ipam"] = ipam;
    let mut plugins = vec![main];
    if o.driver == Driver::Bridge {
        if !o.internal {
            plugins.push(json!({"type": "portmap", "capabilities": {"portMappings": true}}));
        }
        let policy = if opts.icc == Some(false) { "isolated" } else { "same-bridge" };
        plugins.push(json!({"type": "firewall", "ingressPolicy": policy}));
        plugins.push(json!({"type": "tuning"}));
    }
    let mut conflist = json!({
        "cniVersion": o.cni_version,
        "name": o.name,
        ID_KEY: id,
        "plugins": plugins,
    });
    if !o.labels.is_empty() {
        conflist[LABELS_KEY] = json!(o.labels);
    }
    let mut recorded: BTreeMap<&str, Value> = o.options.iter().map(|(k, v)| (k.as_str(), json!(v))).collect();
    if o.internal {
        recorded.insert("internal", json!("true"));
    }
    recorded.insert("driver", json!(o.driver.name()));
    conflist[OPTIONS_KEY] = json!(recorded);
    Ok(Plan { file_name: format!("rcni-{}.conflist", o.name), id, subnets, conflist })
}

fn list(nets: &[IpNet]) -> String {
    nets.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(name: &str) -> CreateOpts {
        CreateOpts {
            name: name.into(),
            driver: Driver::Bridge,
            subnets: vec![],
            gateways: vec![],
            ip_range: None,
            ipv6: false,
            internal: false,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            cni_version: "1.0.0".into(),
        }
    }

    fn taken(s: &str, what: &str) -> Taken {
        Taken { net: s.parse().unwrap(), what: what.into() }
    }

    #[test]
    fn a_bridge_network_is_nerdctls_chain() {
        let p = plan(&opts("web"), &[]).unwrap();
        let id = network_id("web");
        assert_eq!(p.file_name, "rcni-web.conflist");
        assert_eq!(
            p.conflist,
            json!({"cniVersion": "1.0.0", "name": "web", "rcniID": id, "rcniOptions": {"driver": "bridge"}, "plugins": [
                {"type": "bridge", "bridge": bridge_name(&id), "isGateway": true, "ipMasq": true, "hairpinMode": true,
                 "capabilities": {"ips": true, "mac": true},
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.210.1.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
                {"type": "portmap", "capabilities": {"portMappings": true}},
                {"type": "firewall", "ingressPolicy": "same-bridge"},
                {"type": "tuning"}]})
        );
        assert_eq!(bridge_name(&id).len(), 15);
        assert_eq!(id, "4b5e57f6eb2f42b9039b3d1e13929295f231749c510cbe341cd68036d9af97e2", "sha256sum of the name");
    }

    #[test]
    fn automatic_subnets_skip_what_is_taken() {
        let t = [taken("10.210.1.0/24", "network a (/etc/cni/net.d/a.conflist)"), taken("10.210.2.128/25", "route on the node")];
        assert_eq!(plan(&opts("n"), &t).unwrap().subnets, vec!["10.210.3.0/24".parse::<IpNet>().unwrap()]);
        // something covering the whole pool
        let all = [taken("10.0.0.0/8", "route on the node")];
        assert_eq!(plan(&opts("n"), &all).unwrap_err(), "no free /24 left in 10.210.0.0/16: give one with --subnet");
    }

    #[test]
    fn given_subnets_are_checked() {
        let mut o = opts("n");
        o.subnets = vec!["10.1.2.3/24".into()];
        assert_eq!(plan(&o, &[]).unwrap_err(), "subnet 10.1.2.3/24 has host bits set: maybe you meant 10.1.2.0/24?");
        o.subnets = vec!["10.1.0.0/16".into()];
        assert_eq!(
            plan(&o, &[taken("10.1.5.0/24", "network web (/x/web.conflist)")]).unwrap_err(),
            "subnet 10.1.0.0/16 overlaps 10.1.5.0/24 (network web (/x/web.conflist))"
        );
        o.subnets = vec!["fd00:1::/64".into()];
        assert!(plan(&o, &[]).unwrap_err().contains("add --ipv6"));
        o.subnets = vec!["10.1.2.0/31".into()];
        assert!(plan(&o, &[]).unwrap_err().contains("too small"));
        o.subnets = vec!["10.1.2.0/24".into(), "10.1.3.0/24".into()];
        assert_eq!(plan(&o, &[]).unwrap_err(), "at most one --subnet per address family");
    }

    #[test]
    fn dual_stack_gateways_range_and_internal() {
        let mut o = opts("dual");
        o.ipv6 = true;
        o.subnets = vec!["10.7.0.0/16".into()];
        o.gateways = vec!["10.7.0.254".into()];
        o.ip_range = Some("10.7.1.0/24".into());
        o.internal = true;
        o.labels.insert("team".into(), "a".into());
        let p = plan(&o, &[]).unwrap();
        assert_eq!(p.subnets.len(), 2);
        let v6 = p.subnets[1];
        assert!(v6.to_string().starts_with("fd") && v6.prefix_len() == 64, "{v6}");
        assert_eq!(plan(&o, &[]).unwrap().subnets[1], v6, "the ULA is the name's, reproducibly");
        let br = &p.conflist["plugins"][0];
        assert_eq!(br["isGateway"], false);
        assert_eq!(br["ipMasq"], false);
        assert_eq!(br["ipam"]["routes"], Value::Null, "internal: no default route");
        assert_eq!(
            br["ipam"]["ranges"],
            json!([[{"subnet": "10.7.0.0/16", "gateway": "10.7.0.254", "rangeStart": "10.7.1.0", "rangeEnd": "10.7.1.255"}], [{"subnet": v6.to_string()}]])
        );
        let types: Vec<&str> = p.conflist["plugins"].as_array().unwrap().iter().map(|p| p["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["bridge", "firewall", "tuning"], "internal: no portmap");
        assert_eq!(p.conflist["rcniLabels"], json!({"team": "a"}));
        assert_eq!(p.conflist["rcniOptions"], json!({"driver": "bridge", "internal": "true"}));
        o.gateways = vec!["10.8.0.1".into()];
        assert!(plan(&o, &[]).unwrap_err().starts_with("gateway 10.8.0.1 is in none of the network's subnets"));
        o.gateways = vec![];
        o.ip_range = Some("10.8.0.0/24".into());
        assert!(plan(&o, &[]).unwrap_err().starts_with("--ip-range 10.8.0.0/24 is not within"));
    }

    #[test]
    fn options_names_and_refusals() {
        let mut o = opts("n");
        o.options = [("com.docker.network.driver.mtu", "1400"), ("bridge", "br-mine"), ("icc", "false"), ("ip-masq", "false")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let p = plan(&o, &[]).unwrap();
        let br = &p.conflist["plugins"][0];
        assert_eq!((br["mtu"].clone(), br["bridge"].clone(), br["ipMasq"].clone()), (json!(1400), json!("br-mine"), json!(false)));
        assert_eq!(p.conflist["plugins"][2]["ingressPolicy"], "isolated");
        o.options = [("parent".to_string(), "eth0".to_string())].into_iter().collect();
        assert!(plan(&o, &[]).unwrap_err().starts_with("unknown option \"parent\" for the bridge driver"));
        o.driver = Driver::Macvlan;
        o.options.insert("mode".into(), "vepa".into());
        let p = plan(&o, &[]).unwrap();
        assert_eq!(p.conflist["plugins"].as_array().unwrap().len(), 1);
        assert_eq!((p.conflist["plugins"][0]["master"].clone(), p.conflist["plugins"][0]["mode"].clone()), (json!("eth0"), json!("vepa")));
        o.options.insert("mode".into(), "l3".into());
        assert!(plan(&o, &[]).unwrap_err().contains("macvlan modes"));
        o.driver = Driver::Ipvlan;
        assert_eq!(plan(&o, &[]).unwrap().conflist["plugins"][0]["mode"], "l3");
        o.internal = true;
        assert!(plan(&o, &[]).unwrap_err().starts_with("--internal is for the bridge driver"));
    }

    #[test]
    fn names_and_versions() {
        for bad in ["", "-x", "a/b", "../x", "a b"] {
            assert!(plan(&opts(bad), &[]).unwrap_err().starts_with("invalid network name"), "{bad}");
        }
        let mut o = opts("n");
        o.cni_version = "0.4.0".into();
        assert!(plan(&o, &[]).unwrap_err().starts_with("--cni-version 0.4.0"));
        o.cni_version = "1.1.0".into();
        assert_eq!(plan(&o, &[]).unwrap().conflist["cniVersion"], "1.1.0");
    }
}

//! What attachments left behind: cached attachments whose namespace is gone, and leases,
//! nftables objects, IFBs and veths that no cached attachment owns.
//!
//! An object belongs to an attachment by its owner (`netkit::owner`: the tag in an nftables
//! comment or an IFB's alias; a lease names its container and interface; a host veth is named
//! in its attachment's cached result). Objects of an attachment whose ADD is still under way
//! are not cached yet: those marked by rcni's plugins (`cni_plugin::pending`) are left out, and
//! so are leases younger than `rcni gc`'s grace period (other runtimes' IPAM marks nothing).

use super::{and_list, finding, flag, id, rcni, Finding};
use crate::doctor::facts::{CachedAttachment, Facts, NftObject, NftPlace};
use crate::doctor::Severity::{Info, Warning};
use netkit::owner::Owner;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// `rcni gc`'s default `--grace-period`.
const GC_GRACE: Duration = Duration::from_secs(60);

/// The owner tags of every cached attachment and of every ADD under way.
fn owned_tags(f: &Facts) -> HashSet<String> {
    let cached = f.attachments().iter().map(|a| Owner::new(&a.network, &a.container_id, &a.ifname).tag());
    let pending = f.pending.iter().map(|(n, c, i)| Owner::new(n, c, i).tag());
    cached.chain(pending).collect()
}

/// Whether `rcni gc` reclaims the network's leftovers of the plugins `serves` picks: the
/// network is one it collects, of 1.1.0 or later (GC goes to its plugins), with such a plugin.
fn gc_reclaims(f: &Facts, network: &str, serves: impl Fn(&Value) -> bool) -> bool {
    f.network(network).is_some_and(|n| {
        !n.disable_gc && cni_types::version::greater_than_or_equal(&n.cni_version, "1.1.0").unwrap_or(false) && n.plugins.iter().any(serves)
    })
}

fn secs(d: Duration) -> String {
    crate::attachments::age_text(Some(d.as_secs()))
}

pub fn attachments(f: &Facts) -> Vec<Finding> {
    let all = match &f.cache {
        Ok(a) => a,
        Err(e) => {
            return vec![finding(
                Warning,
                id::ATTACHMENTS,
                format!("the result cache cannot be read: {e}"),
                Some("run rcni doctor as root".into()),
            )]
        }
    };
    // per container and namespace
    let mut gone: BTreeMap<(&str, &str), Vec<&CachedAttachment>> = BTreeMap::new();
    for a in all.iter().filter(|a| a.netns_exists == Some(false)) {
        gone.entry((&a.container_id, &a.netns)).or_default().push(a);
    }
    let mut out = Vec::new();
    for ((id, netns), list) in gone {
        let what: Vec<String> = list.iter().map(|a| format!("{}/{}", a.network, a.ifname)).collect();
        let youngest = list.iter().filter_map(|a| a.age).min();
        let young = match youngest {
            Some(age) if age < GC_GRACE => {
                format!("; cached {} ago: rcni gc reclaims it once its grace period ({}) is over", secs(age), secs(GC_GRACE))
            }
            _ => String::new(),
        };
        out.push(finding(
            Warning,
            id::ATTACHMENTS,
            format!(
                "container {id}: its network namespace {netns} is gone, but the cache still holds {} (its addresses, rules and leases stay taken){young}",
                and_list(&what)
            ),
            Some(rcni(f, "gc")),
        ));
    }
    out
}

fn is_host_local(p: &Value) -> bool {
    p.get("ipam").and_then(|i| i.get("type")).and_then(Value::as_str) == Some("host-local")
}

pub fn leases(f: &Facts) -> Vec<Finding> {
    if f.cache.is_err() {
        return Vec::new(); // without the cache nothing can be told to be leaked
    }
    let held = |network: &str, id: &str, ifname: Option<&str>| {
        f.attachments().iter().any(|a| a.network == network && a.container_id == id && ifname.is_none_or(|i| a.ifname == i))
            || f.pending.iter().any(|(n, c, i)| n == network && c == id && ifname.is_none_or(|x| i == x))
    };
    let mut leaked: BTreeMap<&str, Vec<(String, &std::path::Path)>> = BTreeMap::new();
    for l in &f.leases {
        let old = |limit: Duration| l.age.is_some_and(|a| a >= limit);
        let text = match &l.holder {
            None if old(ipam::store::EMPTY_LEASE_AGE) => format!("{} (empty)", l.ip),
            None => continue,
            Some((id, ifname)) if !held(&l.network, id, ifname.as_deref()) && old(GC_GRACE) => match ifname {
                Some(i) => format!("{} ({id}/{i})", l.ip),
                None => format!("{} ({id})", l.ip),
            },
            Some(_) => continue,
        };
        leaked.entry(&l.network).or_default().push((text, &l.path));
    }
    leaked
        .into_iter()
        .map(|(network, list)| {
            let fix = if gc_reclaims(f, network, is_host_local) {
                rcni(f, "gc")
            } else {
                format!("rm {}", list.iter().map(|(_, p)| p.display().to_string()).collect::<Vec<_>>().join(" "))
            };
            let texts: Vec<String> = list.into_iter().map(|(t, _)| t).collect();
            finding(
                Warning,
                id::LEASES,
                format!(
                    "network {network}: {} lease{} no cached attachment holds: {}",
                    texts.len(),
                    if texts.len() == 1 { "" } else { "s" },
                    texts.join(", ")
                ),
                Some(fix),
            )
        })
        .collect()
}

/// The owner tag and network of an object's comment: [`Owner::comment`]'s form, or the
/// firewall's (`rcni:<hash> br=<bridge> net=<network>`, whole only below nft's limit).
fn owner_of(comment: &str) -> Option<(&str, &str)> {
    if let Some(x) = netkit::owner::parse_comment(comment) {
        return Some(x);
    }
    let mut words = comment.split(' ');
    let tag = words.next()?;
    let hex = tag.strip_prefix("rcni:")?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) || comment.len() >= netkit::nft::COMMENT_MAX {
        return None;
    }
    let net = words.find_map(|w| w.strip_prefix("net="))?;
    Some((tag, net))
}

/// `id/if` of a comment that names them.
fn holder_of(comment: &str) -> Option<String> {
    let word = |k: &str| comment.split(' ').find_map(|w| w.strip_prefix(k));
    Some(format!("{}/{}", word("id=")?, word("if=")?))
}

fn ip_text(b: &[u8]) -> Option<String> {
    match b.len() {
        4 => Some(Ipv4Addr::from(<[u8; 4]>::try_from(b).ok()?).to_string()),
        16 => Some(Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?).to_string()),
        _ => None,
    }
}

/// `l4proto . port`, as portmap's maps key them (each field padded to 4 bytes).
fn proto_port_text(b: &[u8]) -> Option<String> {
    if b.len() != 8 {
        return None;
    }
    let port = u16::from_be_bytes([b[4], b[5]]);
    Some(match b[0] {
        6 => format!("tcp . {port}"),
        17 => format!("udp . {port}"),
        132 => format!("sctp . {port}"),
        n => format!("{n} . {port}"),
    })
}

/// A set element's key in nft's syntax, for the sets rcni makes: addresses (masquerade,
/// firewall), `[addr .] l4proto . port` (portmap's maps).
fn key_text(set: &str, key: &[u8]) -> Option<String> {
    match set.get(..3) {
        Some("w4_" | "w6_") => proto_port_text(key),
        Some("h4_") if key.len() == 12 => Some(format!("{} . {}", ip_text(&key[..4])?, proto_port_text(&key[4..])?)),
        Some("h6_") if key.len() == 24 => Some(format!("{} . {}", ip_text(&key[..16])?, proto_port_text(&key[16..])?)),
        _ => ip_text(key),
    }
}

/// The `nft` command that removes the object.
fn nft_delete(o: &NftObject) -> String {
    match &o.place {
        NftPlace::Rule { chain, handle } => format!("nft delete rule {} {} {chain} handle {handle}", o.family, o.table),
        NftPlace::Element { set, key } => match key_text(set, key) {
            Some(k) => format!("nft delete element {} {} {set} '{{ {k} }}'", o.family, o.table),
            None => format!(
                "nft delete element {} {} {set} (the element commented {:?}; nft -a list set {} {} {set} shows it)",
                o.family, o.table, o.comment, o.family, o.table
            ),
        },
    }
}

/// The plugin that makes a table's objects.
fn maker(family: &str, table: &str) -> fn(&Value) -> bool {
    match (family, table) {
        ("inet", "rcni") => |p| matches!(p.get("type").and_then(Value::as_str), Some("bridge" | "ptp")) && flag(p, "ipMasq"),
        ("inet", "rcni_hostport") => |p| p.get("type").and_then(Value::as_str) == Some("portmap"),
        ("inet", "rcni_firewall") => |p| p.get("type").and_then(Value::as_str) == Some("firewall"),
        ("bridge", "rcni") => |p| p.get("type").and_then(Value::as_str) == Some("bridge") && flag(p, "macspoofchk"),
        _ => |_| false,
    }
}

pub fn nft_objects(f: &Facts) -> Vec<Finding> {
    let (Ok(objects), Ok(_)) = (&f.nft, &f.cache) else { return Vec::new() };
    let owned = owned_tags(f);
    // per network and table
    let mut leaked: BTreeMap<(&str, &str, &str), Vec<&NftObject>> = BTreeMap::new();
    for o in objects {
        let Some((tag, network)) = owner_of(&o.comment) else { continue };
        if !owned.contains(tag) {
            leaked.entry((network, o.family, &o.table)).or_default().push(o);
        }
    }
    leaked
        .into_iter()
        .map(|((network, family, table), list)| {
            let mut holders: Vec<String> = Vec::new();
            for o in &list {
                // the firewall's comments name no container: its tag then
                let h = holder_of(&o.comment).unwrap_or_else(|| o.comment.split(' ').next().unwrap_or_default().to_string());
                if !holders.contains(&h) {
                    holders.push(h);
                }
            }
            let fix = if gc_reclaims(f, network, maker(family, table)) {
                rcni(f, "gc")
            } else {
                list.iter().map(|o| nft_delete(o)).collect::<Vec<_>>().join("; ")
            };
            finding(
                Warning,
                id::NFT_OBJECTS,
                format!(
                    "network {network}: {} nftables object{} in {family} {table} of attachments no cache holds ({})",
                    list.len(),
                    if list.len() == 1 { "" } else { "s" },
                    holders.join(", ")
                ),
                Some(fix),
            )
        })
        .collect()
}

/// Networks with no configuration file whose masquerade objects stay in nftables (`rcni masq
/// net=<name>` rules): another tool removed the file without running the plugins, as `podman
/// network rm` does. `rcni network rm NAME` removes what such a network left.
pub fn fileless_networks(f: &Facts) -> Vec<Finding> {
    let Ok(objects) = &f.nft else { return Vec::new() };
    let mut names: Vec<&str> = Vec::new();
    for o in objects {
        let Some(net) = o.comment.strip_prefix("rcni masq net=") else { continue };
        let cached = f.cache.as_ref().is_ok_and(|c| c.iter().any(|a| a.network == net));
        if !f.networks.iter().any(|n| n.name == net)
            && !f.files.iter().any(|x| x.name.as_deref() == Some(net))
            && !cached
            && !names.contains(&net)
        {
            names.push(net);
        }
    }
    names
        .into_iter()
        .map(|net| {
            finding(
                Warning,
                id::NFT_OBJECTS,
                format!("network {net} has no configuration file in {}, but its masquerade chain and sets stay in nftables (inet {}): its file was removed without running its plugins (as podman network rm does)", f.conf_dir.display(), netkit::masq::TABLE),
                Some(format!("{} {net}", rcni(f, "network rm"))),
            )
        })
        .collect()
}

pub fn links(f: &Facts) -> Vec<Finding> {
    let links = match &f.links {
        Ok(l) => l,
        Err(e) => {
            return vec![finding(
                Info,
                id::VETHS,
                format!("the node's links cannot be listed: {e}"),
                Some("run rcni doctor as root".into()),
            )]
        }
    };
    if f.cache.is_err() {
        return Vec::new();
    }
    let owned = owned_tags(f);
    let mut out = Vec::new();
    // IFBs of bandwidth, by the owner in their alias
    for l in links.iter().filter(|l| l.kind.as_deref() == Some("ifb")) {
        let Some((tag, network)) = l.alias.as_deref().and_then(netkit::owner::parse_comment) else { continue };
        if owned.contains(tag) {
            continue;
        }
        let holder = l.alias.as_deref().and_then(holder_of).map(|h| format!(", of {h}")).unwrap_or_default();
        let bandwidth = |p: &Value| p.get("type").and_then(Value::as_str) == Some("bandwidth");
        out.push(finding(
            Warning,
            id::IFBS,
            format!("IFB {} (bandwidth's, network {network}{holder}) belongs to no cached attachment", l.name),
            Some(if gc_reclaims(f, network, bandwidth) { rcni(f, "gc") } else { format!("ip link delete {}", l.name) }),
        ));
    }
    // host veths on the bridges of the directory's networks that no cached result names
    let mut bridges: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for n in f.effective_networks() {
        let Some(main) = n.plugins.first() else { continue };
        if main.get("type").and_then(Value::as_str) == Some("bridge") {
            let br = main.get("bridge").and_then(Value::as_str).filter(|b| !b.is_empty()).unwrap_or("cni0");
            bridges.entry(br.to_string()).or_default().push(&n.name);
        }
    }
    let named: HashSet<&str> = f.attachments().iter().flat_map(|a| a.host_ifaces.iter().map(String::as_str)).collect();
    for (br, networks) in &bridges {
        let of_bridge = |a: &CachedAttachment| networks.contains(&a.network.as_str());
        // an ADD under way has its veth before its cache entry; a result without interfaces
        // (spec 0.2.0) names no veth: nothing can be told on such a bridge then
        let adding = f.pending.iter().any(|(n, c, i)| {
            networks.contains(&n.as_str()) && !f.attachments().iter().any(|a| &a.network == n && &a.container_id == c && &a.ifname == i)
        });
        if adding || f.attachments().iter().any(|a| of_bridge(a) && a.host_ifaces.is_empty()) {
            continue;
        }
        for l in links.iter().filter(|l| l.kind.as_deref() == Some("veth") && l.master.as_deref() == Some(br.as_str())) {
            if named.contains(l.name.as_str()) {
                continue;
            }
            out.push(finding(
                Warning,
                id::VETHS,
                format!("veth {} on bridge {br} (network {}) belongs to no cached attachment", l.name, networks.join(", ")),
                Some(format!("ip link delete {}", l.name)),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::doctor::facts::{Lease, LinkFact};
    use crate::doctor::Severity::Warning;

    fn lease(network: &str, ip: &str, holder: Option<(&str, Option<&str>)>, age: u64) -> Lease {
        Lease {
            network: network.into(),
            path: format!("/var/lib/cni/networks/{network}/{ip}").into(),
            ip: ip.parse().unwrap(),
            holder: holder.map(|(c, i)| (c.to_string(), i.map(String::from))),
            age: Some(Duration::from_secs(age)),
        }
    }

    #[test]
    fn vanished_namespaces_per_container() {
        let mut f = node(vec![bridge("a", "10.161.0.0/24", "1.0.0")]);
        let mut gone = attachment("a", "c1", "eth0");
        gone.netns_exists = Some(false);
        let mut lo = attachment("cni-loopback", "c1", "lo");
        lo.netns_exists = Some(false);
        lo.netns = gone.netns.clone();
        let mut young = attachment("a", "c2", "eth0");
        young.netns_exists = Some(false);
        young.age = Some(Duration::from_secs(5));
        f.cache = Ok(vec![gone, attachment("a", "live", "eth0"), lo, young]);
        f.conf_dir = "/tmp/conf".into();
        let r = attachments(&f);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].severity, r[0].check), (Warning, "attachments"));
        assert_eq!(
            r[0].what,
            "container c1: its network namespace /run/netns/c1 is gone, but the cache still holds a/eth0 and cni-loopback/lo (its addresses, rules and leases stay taken)"
        );
        assert_eq!(r[0].fix.as_deref(), Some("rcni gc --conf-dir /tmp/conf"));
        assert!(r[1].what.ends_with("; cached 5s ago: rcni gc reclaims it once its grace period (1m) is over"), "{}", r[1].what);
        f.cache = Err("reading /var/lib/cni/results: Permission denied".into());
        assert_eq!(attachments(&f)[0].fix.as_deref(), Some("run rcni doctor as root"));
    }

    #[test]
    fn leases_no_attachment_holds() {
        let mut f = node(vec![bridge("a", "10.161.0.0/24", "1.0.0"), bridge("g", "10.161.1.0/24", "1.1.0")]);
        f.cache = Ok(vec![attachment("a", "c1", "eth0"), attachment("g", "c1", "eth0")]);
        f.pending = vec![("a".into(), "adding".into(), "eth0".into())];
        f.leases = vec![
            lease("a", "10.161.0.2", Some(("c1", Some("eth0"))), 3600),
            lease("a", "10.161.0.3", Some(("c1", Some("eth1"))), 3600),
            lease("a", "10.161.0.4", Some(("c1", None)), 3600),
            lease("a", "10.161.0.5", Some(("ghost", None)), 3600),
            lease("a", "10.161.0.6", Some(("adding", Some("eth0"))), 3600),
            lease("a", "10.161.0.7", Some(("other-runtime", Some("eth0"))), 10),
            lease("a", "10.161.0.8", None, 3600),
            lease("a", "10.161.0.9", None, 10),
            lease("g", "10.161.1.9", Some(("ghost", Some("eth0"))), 3600),
            lease("gone", "10.1.1.1", Some(("x", Some("eth0"))), 3600),
        ];
        let r = leases(&f);
        let got: Vec<(&str, &str)> = r.iter().map(|x| (x.what.as_str(), x.fix.as_deref().unwrap())).collect();
        assert_eq!(
            got,
            [
                (
                    "network a: 3 leases no cached attachment holds: 10.161.0.3 (c1/eth1), 10.161.0.5 (ghost), 10.161.0.8 (empty)",
                    "rm /var/lib/cni/networks/a/10.161.0.3 /var/lib/cni/networks/a/10.161.0.5 /var/lib/cni/networks/a/10.161.0.8"
                ),
                ("network g: 1 lease no cached attachment holds: 10.161.1.9 (ghost/eth0)", "rcni gc"),
                ("network gone: 1 lease no cached attachment holds: 10.1.1.1 (x/eth0)", "rm /var/lib/cni/networks/gone/10.1.1.1"),
            ]
        );
        assert!(r.iter().all(|x| x.severity == Warning && x.check == "leases"));
        // without the cache (not root) no lease can be told to be leaked
        f.cache = Err("Permission denied".into());
        assert!(leases(&f).is_empty());
    }

    fn element(family: &'static str, table: &str, set: &str, key: Vec<u8>, comment: String) -> NftObject {
        NftObject { family, table: table.into(), place: NftPlace::Element { set: set.into(), key }, comment }
    }

    #[test]
    fn networks_whose_file_is_gone_but_masquerade_stays() {
        let mut f = node(vec![bridge("a", "10.161.0.0/24", "1.0.0")]);
        f.cache = Ok(vec![attachment("cached", "c1", "eth0")]);
        let rule = |net: &str, handle| NftObject {
            family: "inet",
            table: "rcni".into(),
            place: NftPlace::Rule { chain: "postrouting".into(), handle },
            comment: format!("rcni masq net={net}"),
        };
        f.nft = Ok(vec![rule("a", 1), rule("gone", 2), rule("gone", 3), rule("cached", 4)]);
        let r = fileless_networks(&f);
        let got: Vec<(&str, Option<&str>)> = r.iter().map(|x| (x.what.as_str(), x.fix.as_deref())).collect();
        assert_eq!(got.len(), 1, "only the network with neither file nor attachments: {got:?}");
        assert!(got[0].0.starts_with("network gone has no configuration file in "), "{}", got[0].0);
        assert!(got[0].1.unwrap().starts_with("rcni network rm") && got[0].1.unwrap().ends_with(" gone"), "{:?}", got[0].1);
        assert_eq!((r[0].severity, r[0].check), (Warning, "nftables-objects"));
        assert!(nft_objects(&f).is_empty(), "network rules are no attachment's leftovers");
    }

    #[test]
    fn nft_objects_no_attachment_owns() {
        let mut f = node(vec![bridge("a", "10.161.0.0/24", "1.0.0"), bridge("g", "10.161.1.0/24", "1.1.0")]);
        f.cache = Ok(vec![attachment("a", "c1", "eth0")]);
        let live = Owner::new("a", "c1", "eth0");
        let ghost = Owner::new("a", "ghost", "eth0");
        let g = Owner::new("g", "ghost", "eth0");
        let port_key = vec![6, 0, 0, 0, 0x1f, 0x90, 0, 0];
        let mut h_key = vec![127, 0, 0, 1];
        h_key.extend(&port_key);
        f.nft = Ok(vec![
            element("inet", "rcni", "m4_a", vec![10, 161, 0, 2], live.comment()),
            element("inet", "rcni", "m4_a", vec![10, 161, 0, 9], ghost.comment()),
            element("inet", "rcni_hostport", "w4_a_0123abcd", port_key.clone(), ghost.comment()),
            element("inet", "rcni_hostport", "h4_a_0123abcd", h_key, ghost.comment()),
            element(
                "inet",
                "rcni_firewall",
                "c6",
                "fd00::9".parse::<std::net::Ipv6Addr>().unwrap().octets().to_vec(),
                format!("{} br=br-a net=a", ghost.tag()),
            ),
            NftObject {
                family: "bridge",
                table: "rcni".into(),
                place: NftPlace::Rule { chain: "prerouting".into(), handle: 7 },
                comment: ghost.comment(),
            },
            element("inet", "rcni", "m4_g", vec![10, 161, 1, 9], g.comment()),
            element("inet", "rcni", "m4_x", vec![10, 1, 1, 1], "rcni masquerade net=x".into()),
        ]);
        let r = nft_objects(&f);
        let got: Vec<(String, String)> = r.iter().map(|x| (x.what.clone(), x.fix.clone().unwrap())).collect();
        let want = [
            ("network a: 1 nftables object in bridge rcni of attachments no cache holds (ghost/eth0)".to_string(), "nft delete rule bridge rcni prerouting handle 7"),
            ("network a: 1 nftables object in inet rcni of attachments no cache holds (ghost/eth0)".into(), "nft delete element inet rcni m4_a '{ 10.161.0.9 }'"),
            (format!("network a: 1 nftables object in inet rcni_firewall of attachments no cache holds ({})", ghost.tag()), "nft delete element inet rcni_firewall c6 '{ fd00::9 }'"),
            (
                "network a: 2 nftables objects in inet rcni_hostport of attachments no cache holds (ghost/eth0)".into(),
                "nft delete element inet rcni_hostport w4_a_0123abcd '{ tcp . 8080 }'; nft delete element inet rcni_hostport h4_a_0123abcd '{ 127.0.0.1 . tcp . 8080 }'",
            ),
            ("network g: 1 nftables object in inet rcni of attachments no cache holds (ghost/eth0)".into(), "rcni gc"),
        ];
        assert_eq!(got, want.map(|(w, x)| (w, x.to_string())));
        let cache = std::mem::replace(&mut f.cache, Err("Permission denied".into()));
        assert!(nft_objects(&f).is_empty(), "nothing can be told without the cache");
        f.cache = cache;
        // an ADD under way owns its objects
        f.pending = vec![("a".into(), "ghost".into(), "eth0".into()), ("g".into(), "ghost".into(), "eth0".into())];
        assert!(nft_objects(&f).is_empty());
    }

    #[test]
    fn ifbs_and_veths_no_attachment_owns() {
        let mut f = node(vec![bridge("a", "10.161.0.0/24", "1.1.0")]);
        let mut c1 = attachment("a", "c1", "eth0");
        c1.host_ifaces = vec!["br-a".into(), "veth1".into()];
        f.cache = Ok(vec![c1]);
        let ifb = |name: &str, o: &Owner| LinkFact { name: name.into(), kind: Some("ifb".into()), alias: Some(o.comment()), master: None };
        let veth = |name: &str, br: &str| LinkFact { name: name.into(), kind: Some("veth".into()), alias: None, master: Some(br.into()) };
        f.links = Ok(vec![
            ifb("bwp1", &Owner::new("a", "c1", "eth0")),
            ifb("bwp2", &Owner::new("a", "ghost", "eth0")),
            LinkFact { name: "bwp3".into(), kind: Some("ifb".into()), alias: None, master: None },
            veth("veth1", "br-a"),
            veth("veth2", "br-a"),
            veth("veth3", "docker0"),
            LinkFact { name: "br-a".into(), kind: Some("bridge".into()), ..Default::default() },
        ]);
        let r = links(&f);
        let got: Vec<(&str, &str, &str)> = r.iter().map(|x| (x.check, x.what.as_str(), x.fix.as_deref().unwrap())).collect();
        assert_eq!(
            got,
            [
                ("ifbs", "IFB bwp2 (bandwidth's, network a, of ghost/eth0) belongs to no cached attachment", "ip link delete bwp2"),
                ("veths", "veth veth2 on bridge br-a (network a) belongs to no cached attachment", "ip link delete veth2"),
            ]
        );
        // while an ADD on the bridge is under way its veth is not cached yet
        f.pending = vec![("a".into(), "c9".into(), "eth0".into())];
        assert_eq!(links(&f).len(), 1);
        f.cache = Err("Permission denied".into());
        assert!(links(&f).is_empty());
    }

    #[test]
    fn comments_and_keys() {
        let o = Owner::new("net-a", "c1", "eth0");
        assert_eq!(owner_of(&o.comment()), Some((o.tag().as_str(), "net-a")));
        assert_eq!(owner_of(&format!("{} br=cni0 net=net-a", o.tag())), Some((o.tag().as_str(), "net-a")));
        assert_eq!(owner_of("rcni masquerade net=net-a"), None);
        assert_eq!(owner_of(&format!("{} br=cni0 net={}", o.tag(), "n".repeat(120))), None, "cut to nft's limit");
        assert_eq!(holder_of(&o.comment()).as_deref(), Some("c1/eth0"));
        assert_eq!(key_text("w6_a_01234567", &[17, 0, 0, 0, 0, 53, 0, 0]).as_deref(), Some("udp . 53"));
        assert_eq!(key_text("m6_a", &[0; 16]).as_deref(), Some("::"));
        assert_eq!(key_text("m4_a", &[1, 2, 3]), None);
    }
}

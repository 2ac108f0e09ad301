//! OCI hooks (`cni_runtime::oci`): the input as a bundle's config.json given to `bundle::apply`
//! (as `rcni oci-hook install` does), as the OCI state a runtime gives its hooks
//! (`State::parse`, then the annotations `bundle::recorded` reads), as a resolv.conf
//! (`Dns::from_resolv_conf`, `etc_files::resolv_conf`) and as a hosts file to rewrite
//! (`etc_files::hosts`). Nothing panics; an applied config holds rcni's two hooks once, each
//! container file mounted once, one network namespace of its own, and gives back the plan's
//! networks and ports; applying again changes nothing; a rendered resolv.conf parses back to the
//! nameservers it was made from, never a loopback one of the node; a rewritten hosts file starts
//! with rcni's block, has it once, and a second rewrite changes nothing.
#![no_main]

use cni_runtime::oci::{bundle, etc_files, State};
use cni_types::capabilities::PortMapping;
use cni_types::result::Dns;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::collections::BTreeMap;

fn plan() -> bundle::Plan {
    bundle::Plan {
        exe: "/usr/local/bin/rcni".into(),
        args: vec!["--conf-dir".into(), "/etc/cni/net.d".into()],
        networks: vec!["web".into(), "db".into()],
        ports: vec![PortMapping { host_port: 8080, container_port: 80, protocol: "tcp".into(), host_ip: "127.0.0.1".into() }],
        hostname: Some("h".into()),
        files: "/b/rcni".into(),
    }
}

fn check_applied(c: &Value, plan: &bundle::Plan) {
    for (list, verb) in bundle::HOOKS {
        let ours = c["hooks"][list].as_array().expect("hook list").iter().filter(|h| h["args"][1] == "oci-hook" && h["args"][2] == verb).count();
        assert_eq!(ours, 1, "{list}: {c}");
    }
    let mounts = c["mounts"].as_array().expect("mounts");
    for (_, dest) in bundle::FILES {
        assert_eq!(mounts.iter().filter(|m| m["destination"].as_str().map(|d| d.trim_end_matches('/')) == Some(dest)).count(), 1, "{dest}: {c}");
    }
    let nets: Vec<&Value> = c["linux"]["namespaces"].as_array().expect("namespaces").iter().filter(|n| n["type"] == "network").collect();
    assert!(!nets.is_empty() && nets.iter().all(|n| n.get("path").and_then(Value::as_str).is_none_or(str::is_empty)), "{c}");
    let annotations: BTreeMap<String, String> = serde_json::from_value(c["annotations"].clone()).expect("string annotations");
    let (networks, ports) = bundle::recorded(&annotations).expect("recorded as written");
    assert_eq!((networks, ports), (plan.networks.clone(), plan.ports.clone()));
    assert_eq!(c["hostname"], "h");
}

fuzz_target!(|data: &[u8]| {
    if let Ok(mut c) = serde_json::from_slice::<Value>(data) {
        let plan = plan();
        if bundle::apply(&mut c, &plan).is_ok() {
            check_applied(&c, &plan);
            let mut again = c.clone();
            bundle::apply(&mut again, &plan).expect("an applied config applies again");
            assert_eq!(again, c, "applying twice is applying once");
        }
    }
    if let Ok(state) = State::parse(data) {
        assert!(cni_types::validate::container_id(&state.id).is_ok());
        let _ = bundle::recorded(&state.annotations);
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    // as a hosts file the container changed: rcni's block once, first; the other lines kept
    let own = [etc_files::Entry { ip: [10, 0, 0, 2].into(), names: vec!["h".into(), "c1".into()], network: "web".into() }];
    let hosts = etc_files::hosts(text, &own, &[]);
    assert_eq!(hosts.lines().filter(|l| *l == etc_files::BEGIN).count(), 1);
    assert!(hosts.starts_with(etc_files::BEGIN));
    assert_eq!(etc_files::hosts(&hosts, &own, &[]), hosts, "a rewrite of a rewrite changes nothing");
    let dns = Dns::from_resolv_conf(text);
    let from_node = Dns::from_resolv_conf(&etc_files::resolv_conf(&[], &dns));
    assert!(!from_node.nameservers.is_empty());
    for s in &from_node.nameservers {
        assert!(!s.split('%').next().unwrap_or(s).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback()), "{s}");
    }
    let from_result = Dns::from_resolv_conf(&etc_files::resolv_conf(std::slice::from_ref(&dns), &Dns::default()));
    if !dns.nameservers.is_empty() {
        let mut want: Vec<String> = Vec::new();
        for s in &dns.nameservers {
            if !want.contains(s) {
                want.push(s.clone());
            }
        }
        assert_eq!(from_result.nameservers, want);
    }
});

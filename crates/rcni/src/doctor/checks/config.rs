//! The config directory: files that do not load or fail validation, names defined twice, and
//! the plugins each network needs — on the plugin path, answering VERSION with the network's
//! cniVersion.

use super::{and_list, finding, id, Finding};
use crate::doctor::facts::{Facts, Network, Origin};
use crate::doctor::Severity::{Error, Info, Warning};
use serde_json::Value;

pub fn files(f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    let dir = f.conf_dir.display();
    if let Some(e) = &f.conf_dir_error {
        out.push(finding(
            Error,
            id::CONFIG,
            format!("the config directory {dir} cannot be read: {e}"),
            Some(format!("make {dir} a readable directory, or point --conf-dir (NETCONFPATH) at the right one")),
        ));
    }
    for file in &f.files {
        let Some(e) = &file.error else { continue };
        let path = file.path.display();
        let what = match &file.name {
            Some(n) => format!("network {n}: {path} does not load: {e}"),
            None => format!("{path} does not load: {e}"),
        };
        out.push(finding(Error, id::CONFIG, what, Some(format!("correct {path}, or remove it (rm {path})"))));
    }
    // one name, several files: loaders take one of them and ignore the rest
    let mut names: Vec<&str> = f.files.iter().filter_map(|x| x.name.as_deref()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let all: Vec<_> = f.files.iter().filter(|x| x.name.as_deref() == Some(name)).collect();
        if all.len() < 2 {
            continue;
        }
        let used = f.network(name).and_then(|n| match &n.origin {
            Origin::File(p) => Some(p.clone()),
            Origin::Default => None,
        });
        let ignored: Vec<String> = all.iter().filter(|x| Some(&x.path) != used.as_ref()).map(|x| x.path.display().to_string()).collect();
        let what = match &used {
            Some(u) => {
                format!("network {name} is defined by {} files: runtimes use {} and ignore {}", all.len(), u.display(), and_list(&ignored))
            }
            None => format!("network {name} is defined by {} files, none of which loads", all.len()),
        };
        out.push(finding(Warning, id::CONFIG, what, Some(format!("remove or rename the others: rm {}", ignored.join(" ")))));
    }
    for n in f.effective_networks() {
        if let Origin::File(p) = &n.origin {
            out.extend(validate(n, &p.display().to_string()));
        }
    }
    out
}

/// What the loader does not check: the name of a single-plugin file, and the IPAM sections
/// rcni knows the rules of (host-local's ranges).
fn validate(n: &Network, path: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let fix = Some(format!("correct {path}"));
    if let Err(e) = cni_types::validate::network_name(&n.name) {
        out.push(finding(Error, id::CONFIG, format!("network {:?} ({path}): {}", n.name, e.msg), fix.clone()));
    }
    for p in &n.plugins {
        let Some(ipam) = p.get("ipam") else { continue };
        if ipam.get("type").and_then(Value::as_str) != Some("host-local") {
            continue;
        }
        // ranges may come from the runtime instead (the ipRanges capability)
        if p.get("capabilities").and_then(|c| c.get("ipRanges")).and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let mut conf = p.clone();
        conf["name"] = Value::String(n.name.clone());
        conf["cniVersion"] = Value::String(n.cni_version.clone());
        let bytes = serde_json::to_vec(&conf).expect("JSON");
        if let Err(e) = ipam::host_local::load_config(&bytes, "") {
            let ty = p.get("type").and_then(Value::as_str).unwrap_or("?");
            out.push(finding(Error, id::CONFIG, format!("network {} ({path}): {ty}'s host-local IPAM: {}", n.name, e.msg), fix.clone()));
        }
    }
    out
}

pub fn plugins(f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    let path_text = f.cni_path.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":");
    let first_dir = f.cni_path.first().map(|p| p.display().to_string()).unwrap_or_else(|| "/opt/cni/bin".into());
    for n in f.effective_networks() {
        let Origin::File(file) = &n.origin else { continue }; // rcni's default runs rcni's own plugins
        let file = file.display();
        let version = if n.cni_version.is_empty() { "0.1.0" } else { n.cni_version.as_str() };
        let types = n.types();
        // the versions every plugin of the list supports, for the fix
        let common: Vec<String> = cni_types::version::ALL
            .iter()
            .filter(|v| types.iter().all(|t| f.plugins.get(t).is_some_and(|p| supported(p).is_some_and(|s| s.iter().any(|x| x == *v)))))
            .map(|v| v.to_string())
            .collect();
        let lower = match common.last() {
            Some(v) => format!(", or set the list's cniVersion in {file} to {v} (every plugin of it supports {})", common.join(", ")),
            None => String::new(),
        };
        for t in &types {
            let Some(p) = f.plugins.get(t) else { continue };
            match (&p.path, &p.versions, &p.own) {
                (None, _, None) => out.push(finding(
                    Error,
                    id::PLUGINS,
                    format!("network {} ({file}): plugin {t} is not on the plugin path ({path_text})", n.name),
                    Some(format!("install the {t} plugin into {first_dir} (or correct the type in {file})")),
                )),
                (None, _, Some(own)) if !own.iter().any(|v| v == version) => out.push(finding(
                    Error,
                    id::PLUGINS,
                    format!("network {} ({file}): rcni's {t} does not support cniVersion {version} (it supports {})", n.name, own.join(", ")),
                    Some(format!("set the list's cniVersion in {file} to one of {}", own.join(", "))),
                )),
                (None, _, Some(_)) => out.push(finding(
                    Info,
                    id::PLUGINS,
                    format!(
                        "network {} ({file}): plugin {t} is not on the plugin path ({path_text}); rcni attach runs its own, other runtimes (containerd, podman, cnitool) will not find it",
                        n.name
                    ),
                    Some(format!("rcni install --dir {first_dir}")),
                )),
                (Some(at), Some(Err(e)), _) => out.push(finding(
                    Error,
                    id::PLUGINS,
                    format!("network {} ({file}): plugin {t} ({}) does not answer VERSION: {e}", n.name, at.display()),
                    Some(format!("reinstall {} (it must be a CNI plugin)", at.display())),
                )),
                (Some(at), Some(Ok(v)), _) if !v.iter().any(|x| x == version) => out.push(finding(
                    Error,
                    id::PLUGINS,
                    format!(
                        "network {} ({file}): plugin {t} ({}) does not support the network's cniVersion {version} (it supports {})",
                        n.name,
                        at.display(),
                        if v.is_empty() { "none".into() } else { v.join(", ") }
                    ),
                    Some(format!("install a {t} that supports {version}{lower}")),
                )),
                _ => {}
            }
        }
    }
    out
}

/// The versions the plugin a runtime would run supports: the path's (when it answered), else
/// rcni's own.
fn supported(p: &crate::doctor::facts::PluginFact) -> Option<&Vec<String>> {
    match (&p.path, &p.versions) {
        (Some(_), Some(Ok(v))) => Some(v),
        (Some(_), _) => None,
        (None, _) => p.own.as_ref(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::doctor::facts::{ConfFile, PluginFact};
    use serde_json::json;

    fn found(path: &str, versions: &[&str]) -> PluginFact {
        PluginFact { path: Some(path.into()), versions: Some(Ok(versions.iter().map(|s| s.to_string()).collect())), own: None }
    }

    fn all_versions() -> Vec<&'static str> {
        cni_types::version::ALL.to_vec()
    }

    #[test]
    fn broken_files_and_names_defined_twice() {
        let mut f = node(vec![bridge("web", "10.161.0.0/24", "1.0.0")]);
        f.files.push(ConfFile {
            path: "/etc/cni/net.d/50-bad.conflist".into(),
            name: Some("bad".into()),
            error: Some("unexpected end".into()),
        });
        f.files.push(ConfFile { path: "/etc/cni/net.d/60-x.conf".into(), name: None, error: Some("not JSON".into()) });
        f.files.push(ConfFile { path: "/etc/cni/net.d/70-web.conf".into(), name: Some("web".into()), error: None });
        let r = files(&f);
        assert_eq!(r.len(), 3, "{r:?}");
        assert_eq!((r[0].severity, r[0].check), (Error, "config"));
        assert_eq!(r[0].what, "network bad: /etc/cni/net.d/50-bad.conflist does not load: unexpected end");
        assert_eq!(r[0].fix.as_deref(), Some("correct /etc/cni/net.d/50-bad.conflist, or remove it (rm /etc/cni/net.d/50-bad.conflist)"));
        assert_eq!(r[1].what, "/etc/cni/net.d/60-x.conf does not load: not JSON");
        assert_eq!(r[2].severity, Warning);
        assert_eq!(
            r[2].what,
            "network web is defined by 2 files: runtimes use /etc/cni/net.d/web.conflist and ignore /etc/cni/net.d/70-web.conf"
        );
        assert_eq!(r[2].fix.as_deref(), Some("remove or rename the others: rm /etc/cni/net.d/70-web.conf"));
    }

    #[test]
    fn invalid_ipam_and_names() {
        let bad_range = network(
            "a.conflist",
            json!({"cniVersion": "1.0.0", "name": "a", "plugins": [{"type": "bridge",
                "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.161.0.0/24", "rangeStart": "10.162.0.5"}]]}}]}),
        );
        let no_ranges = network("b.conf", json!({"cniVersion": "1.0.0", "name": "b c", "type": "ptp", "ipam": {"type": "host-local"}}));
        let from_runtime = network(
            "c.conflist",
            json!({"cniVersion": "1.0.0", "name": "c", "plugins": [{"type": "bridge", "capabilities": {"ipRanges": true}, "ipam": {"type": "host-local"}}]}),
        );
        let r = files(&node(vec![bad_range, no_ranges, from_runtime, bridge("ok", "10.161.1.0/24", "1.1.0")]));
        let whats: Vec<&str> = r.iter().map(|x| x.what.as_str()).collect();
        assert_eq!(r.len(), 3, "{whats:?}");
        assert!(whats[0].starts_with("network a (/etc/cni/net.d/a.conflist): bridge's host-local IPAM: invalid range set 0"), "{whats:?}");
        assert!(whats[1].starts_with("network \"b c\" (/etc/cni/net.d/b.conf): "), "{whats:?}");
        assert_eq!(whats[2], "network b c (/etc/cni/net.d/b.conf): ptp's host-local IPAM: no IP ranges specified");
        assert!(r.iter().all(|x| x.severity == Error && x.check == "config"));
    }

    #[test]
    fn plugins_missing_or_of_other_versions() {
        let mut f = node(vec![
            bridge("web", "10.161.0.0/24", "1.0.0"),
            network("m.conflist", json!({"cniVersion": "1.0.0", "name": "m", "plugins": [{"type": "macvlan", "ipam": {"type": "dhcp"}}]})),
        ]);
        f.plugins.insert("bridge".into(), found("/opt/cni/bin/bridge", &all_versions()));
        f.plugins.insert("host-local".into(), found("/opt/cni/bin/host-local", &["0.3.0", "0.3.1"]));
        f.plugins.insert("portmap".into(), PluginFact { own: Some(vec!["1.0.0".into()]), ..Default::default() });
        f.plugins.insert("macvlan".into(), PluginFact::default());
        f.plugins.insert(
            "dhcp".into(),
            PluginFact { path: Some("/opt/cni/bin/dhcp".into()), versions: Some(Err("exit status 1".into())), own: None },
        );
        let r = plugins(&f);
        let got: Vec<(crate::doctor::Severity, &str)> = r.iter().map(|x| (x.severity, x.what.as_str())).collect();
        assert_eq!(
            got,
            [
                (Error, "network web (/etc/cni/net.d/web.conflist): plugin host-local (/opt/cni/bin/host-local) does not support the network's cniVersion 1.0.0 (it supports 0.3.0, 0.3.1)"),
                (Info, "network web (/etc/cni/net.d/web.conflist): plugin portmap is not on the plugin path (/opt/cni/bin); rcni attach runs its own, other runtimes (containerd, podman, cnitool) will not find it"),
                (Error, "network m (/etc/cni/net.d/m.conflist): plugin macvlan is not on the plugin path (/opt/cni/bin)"),
                (Error, "network m (/etc/cni/net.d/m.conflist): plugin dhcp (/opt/cni/bin/dhcp) does not answer VERSION: exit status 1"),
            ]
        );
        assert_eq!(r[0].fix.as_deref(), Some("install a host-local that supports 1.0.0"), "no version all three support");
        assert_eq!(r[1].fix.as_deref(), Some("rcni install --dir /opt/cni/bin"));
        assert_eq!(
            r[2].fix.as_deref(),
            Some("install the macvlan plugin into /opt/cni/bin (or correct the type in /etc/cni/net.d/m.conflist)")
        );
        assert!(r.iter().all(|x| x.check == "plugins"));

        // a version the others support too is offered
        f.plugins.insert("portmap".into(), found("/opt/cni/bin/portmap", &all_versions()));
        f.networks.truncate(1);
        let r = plugins(&f);
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].fix.as_deref(),
            Some("install a host-local that supports 1.0.0, or set the list's cniVersion in /etc/cni/net.d/web.conflist to 0.3.1 (every plugin of it supports 0.3.0, 0.3.1)")
        );
        // everything in place: nothing to say
        f.plugins.insert("host-local".into(), found("/opt/cni/bin/host-local", &all_versions()));
        assert!(plugins(&f).is_empty());
        // rcni's own firewall needs 0.4.0
        f.networks = vec![network(
            "fw.conflist",
            json!({"cniVersion": "0.3.1", "name": "fw", "plugins": [{"type": "bridge"}, {"type": "firewall"}]}),
        )];
        f.plugins.insert("firewall".into(), PluginFact { own: Some(vec!["0.4.0".into(), "1.0.0".into()]), ..Default::default() });
        let r = plugins(&f);
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].what,
            "network fw (/etc/cni/net.d/fw.conflist): rcni's firewall does not support cniVersion 0.3.1 (it supports 0.4.0, 1.0.0)"
        );
    }
}

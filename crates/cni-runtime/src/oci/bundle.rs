//! Networking an OCI bundle through its hooks (`rcni oci-hook install BUNDLE`): what that changes in an OCI bundle's `config.json` (a pure
//! function over the JSON, [`apply`], everything else in the file kept as it was) and the
//! per-bundle files it bind-mounts over the container's `/etc/hosts`, `/etc/resolv.conf` and
//! `/etc/hostname` (in `BUNDLE/rcni/`).

use cni_types::capabilities::PortMapping;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// The annotation naming the networks (a JSON array of names, in interface order).
pub const NETWORKS_ANNOTATION: &str = "rcni.io/networks";
/// The annotation holding the published ports (a JSON array of CNI `portMappings` entries).
pub const PORTS_ANNOTATION: &str = "rcni.io/ports";
/// The hook verbs `install` adds, and the OCI hook lists they go in.
pub const HOOKS: [(&str, &str); 2] = [("createRuntime", "createRuntime"), ("poststop", "poststop")];
/// The directory of the bundle's own files.
pub const FILES_DIR: &str = "rcni";
/// The container files rcni provides, by their name in [`FILES_DIR`].
pub const FILES: [(&str, &str); 3] = [("hosts", "/etc/hosts"), ("resolv.conf", "/etc/resolv.conf"), ("hostname", "/etc/hostname")];

/// What `install` puts into a bundle.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The absolute path of the rcni binary the hooks run.
    pub exe: String,
    /// Arguments after the verb (`--conf-dir`, `--cni-path`, `--timeout`).
    pub args: Vec<String>,
    /// Networks (none: the node's default, chosen when the container starts).
    pub networks: Vec<String>,
    pub ports: Vec<PortMapping>,
    pub hostname: Option<String>,
    /// Where the bundle's files are ([`files_dir`]).
    pub files: PathBuf,
}

pub fn files_dir(bundle: &Path) -> PathBuf {
    bundle.join(FILES_DIR)
}

/// True for a hook entry `install` made (any rcni binary's `oci-hook <verb>`).
fn is_ours(hook: &Value) -> bool {
    hook.get("args").and_then(Value::as_array).is_some_and(|a| a.get(1).and_then(Value::as_str) == Some("oci-hook"))
}

fn object<'a>(parent: &'a mut Map<String, Value>, key: &str, what: &str) -> Result<&'a mut Map<String, Value>, String> {
    let v = parent.entry(key).or_insert_with(|| json!({}));
    if v.is_null() {
        *v = json!({});
    }
    v.as_object_mut().ok_or_else(|| format!("config.json: {what} is not an object"))
}

fn array<'a>(parent: &'a mut Map<String, Value>, key: &str, what: &str) -> Result<&'a mut Vec<Value>, String> {
    let v = parent.entry(key).or_insert_with(|| json!([]));
    if v.is_null() {
        *v = json!([]);
    }
    v.as_array_mut().ok_or_else(|| format!("config.json: {what} is not an array"))
}

/// Adds a namespace of `kind` of the container's own when `namespaces` has none; refuses a
/// network namespace that joins an existing one.
fn ensure_namespace(namespaces: &mut Vec<Value>, kind: &str) -> Result<(), String> {
    match namespaces.iter().find(|n| n.get("type").and_then(Value::as_str) == Some(kind)) {
        Some(n) => match n.get("path").and_then(Value::as_str).filter(|p| !p.is_empty()) {
            Some(p) if kind == "network" => Err(format!(
                "config.json joins the existing network namespace {p}: rcni networks a container with a namespace of its own (remove that \"path\")"
            )),
            _ => Ok(()),
        },
        None => {
            namespaces.push(json!({"type": kind}));
            Ok(())
        }
    }
}

/// Changes `config` (a bundle's config.json) as `plan` says: rcni's createRuntime and poststop
/// hooks (replacing any earlier ones of rcni's, others kept), the annotations, bind mounts of the
/// bundle's files (replacing other mounts at those destinations), the hostname (with a UTS
/// namespace), and a network namespace of the container's own (added when missing; a bundle that
/// joins an existing one is refused, it would network that namespace instead).
pub fn apply(config: &mut Value, plan: &Plan) -> Result<(), String> {
    let root = config.as_object_mut().ok_or("config.json is not a JSON object")?;
    let linux = root
        .get_mut("linux")
        .and_then(Value::as_object_mut)
        .ok_or("config.json has no \"linux\" section (not a Linux container bundle)")?;
    let namespaces = array(linux, "namespaces", "linux.namespaces")?;
    ensure_namespace(namespaces, "network")?;
    if plan.hostname.is_some() {
        ensure_namespace(namespaces, "uts")?;
    }

    let hooks = object(root, "hooks", "hooks")?;
    for list in ["prestart", "createRuntime", "poststop"] {
        if let Some(Value::Array(entries)) = hooks.get_mut(list) {
            entries.retain(|h| !is_ours(h));
        }
    }
    hooks.retain(|_, v| !v.as_array().is_some_and(Vec::is_empty));
    for (list, verb) in HOOKS {
        let mut args = vec![json!("rcni"), json!("oci-hook"), json!(verb)];
        args.extend(plan.args.iter().map(|a| json!(a)));
        array(hooks, list, &format!("hooks.{list}"))?.push(json!({"path": plan.exe, "args": args}));
    }

    let annotations = object(root, "annotations", "annotations")?;
    annotations.remove(NETWORKS_ANNOTATION);
    annotations.remove(PORTS_ANNOTATION);
    if !plan.networks.is_empty() {
        annotations.insert(NETWORKS_ANNOTATION.into(), json!(serde_json::to_string(&plan.networks).expect("JSON")));
    }
    if !plan.ports.is_empty() {
        annotations.insert(PORTS_ANNOTATION.into(), json!(serde_json::to_string(&plan.ports).expect("JSON")));
    }
    if annotations.is_empty() {
        root.remove("annotations");
    }

    if let Some(h) = &plan.hostname {
        root.insert("hostname".into(), json!(h));
    }
    let mounts = array(root, "mounts", "mounts")?;
    let ours: Vec<&str> = FILES.iter().map(|(_, dest)| *dest).collect();
    mounts.retain(|m| !m.get("destination").and_then(Value::as_str).is_some_and(|d| ours.contains(&d.trim_end_matches('/'))));
    for (name, dest) in FILES {
        mounts.push(json!({"destination": dest, "type": "bind", "source": plan.files.join(name), "options": ["rbind", "rprivate"]}));
    }
    Ok(())
}

/// The networks and ports recorded in a bundle's annotations (the OCI state's, which carry the
/// bundle's).
pub fn recorded(annotations: &std::collections::BTreeMap<String, String>) -> Result<(Vec<String>, Vec<PortMapping>), String> {
    let networks = match annotations.get(NETWORKS_ANNOTATION) {
        Some(v) => serde_json::from_str(v).map_err(|e| format!("annotation {NETWORKS_ANNOTATION} {v:?} is no JSON array of names: {e}"))?,
        None => Vec::new(),
    };
    let ports = match annotations.get(PORTS_ANNOTATION) {
        Some(v) => {
            serde_json::from_str(v).map_err(|e| format!("annotation {PORTS_ANNOTATION} {v:?} is no JSON array of port mappings: {e}"))?
        }
        None => Vec::new(),
    };
    Ok((networks, ports))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            exe: "/usr/local/bin/rcni".into(),
            args: vec!["--conf-dir".into(), "/etc/cni/net.d".into()],
            networks: vec!["web".into()],
            ports: vec![PortMapping { host_port: 8080, container_port: 80, protocol: "tcp".into(), host_ip: String::new() }],
            hostname: Some("h1".into()),
            files: "/b/rcni".into(),
        }
    }

    /// What `runc spec` writes, cut down; with a hook and a mount of someone else's.
    fn spec() -> Value {
        json!({"ociVersion": "1.0.2-dev", "process": {"args": ["sh"]}, "root": {"path": "rootfs"}, "hostname": "runc",
               "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                          {"destination": "/etc/resolv.conf/", "type": "bind", "source": "/x", "options": ["bind"]}],
               "hooks": {"poststop": [{"path": "/bin/other", "args": ["other"]}]},
               "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}], "maskedPaths": ["/proc/kcore"]}})
    }

    #[test]
    fn install_adds_hooks_mounts_annotations_and_namespaces_keeping_the_rest() {
        let mut c = spec();
        apply(&mut c, &plan()).unwrap();
        assert_eq!(c["process"], json!({"args": ["sh"]}));
        assert_eq!(c["linux"]["maskedPaths"], json!(["/proc/kcore"]));
        assert_eq!(c["linux"]["namespaces"], json!([{"type": "pid"}, {"type": "mount"}, {"type": "network"}, {"type": "uts"}]));
        assert_eq!(c["hostname"], "h1");
        assert_eq!(
            c["hooks"]["createRuntime"],
            json!([{"path": "/usr/local/bin/rcni", "args": ["rcni", "oci-hook", "createRuntime", "--conf-dir", "/etc/cni/net.d"]}])
        );
        let post = c["hooks"]["poststop"].as_array().unwrap();
        assert_eq!(post.len(), 2, "the other poststop hook is kept: {post:?}");
        assert_eq!(post[0]["path"], "/bin/other");
        assert_eq!(c["annotations"][NETWORKS_ANNOTATION], r#"["web"]"#);
        assert_eq!(c["annotations"][PORTS_ANNOTATION], r#"[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]"#);
        let dests: Vec<&str> = c["mounts"].as_array().unwrap().iter().map(|m| m["destination"].as_str().unwrap()).collect();
        assert_eq!(dests, ["/proc", "/etc/hosts", "/etc/resolv.conf", "/etc/hostname"], "the other resolv.conf mount replaced");
        assert_eq!(
            c["mounts"][1],
            json!({"destination": "/etc/hosts", "type": "bind", "source": "/b/rcni/hosts", "options": ["rbind", "rprivate"]})
        );
        let anns: std::collections::BTreeMap<String, String> = serde_json::from_value(c["annotations"].clone()).unwrap();
        let (nets, ports) = recorded(&anns).unwrap();
        assert_eq!((nets, ports), (plan().networks, plan().ports));
    }

    #[test]
    fn install_twice_is_install_once_and_a_new_plan_replaces_the_old() {
        let mut once = spec();
        apply(&mut once, &plan()).unwrap();
        let mut twice = once.clone();
        apply(&mut twice, &plan()).unwrap();
        assert_eq!(once, twice);
        let mut other = plan();
        other.networks.clear();
        other.ports.clear();
        other.hostname = None;
        apply(&mut twice, &other).unwrap();
        assert!(twice.get("annotations").is_none(), "{twice:#}");
        assert_eq!(twice["hooks"]["createRuntime"].as_array().unwrap().len(), 1);
        assert_eq!(twice["hostname"], "h1", "a hostname is only ever set, never taken away");
    }

    #[test]
    fn bundles_that_cannot_be_networked_are_refused() {
        let mut joins = spec();
        joins["linux"]["namespaces"] = json!([{"type": "network", "path": "/run/netns/x"}]);
        assert!(apply(&mut joins, &plan()).unwrap_err().contains("/run/netns/x"));
        for bad in [
            json!([]),
            json!({"linux": 1}),
            json!({"linux": {"namespaces": {}}}),
            json!({"linux": {}, "hooks": []}),
            json!({"linux": {}, "mounts": {}}),
        ] {
            let mut c = bad.clone();
            assert!(apply(&mut c, &plan()).is_err(), "{bad}");
        }
        let anns = [(NETWORKS_ANNOTATION.to_string(), "web".to_string())].into_iter().collect();
        assert!(recorded(&anns).unwrap_err().contains(NETWORKS_ANNOTATION));
    }
}

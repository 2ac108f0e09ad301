//! What every runtime subcommand (`attach`, `detach`, `gc`, …) shares: where networks and
//! plugins are and how long a plugin may run ([`RuntimeEnv`]), the [`CniConfig`] built from
//! that, the per-network locks against `rcni gc`, the configuration of a cached attachment, and
//! how a namespace argument becomes a path and a container ID.

use clap::Args;
use cni_runtime::{conf, CniConfig, Ctx, NetworkAttachment, NetworkLock};
use cni_types::NetworkConfigList;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where networks and plugins are, and how long a plugin may run (attach, detach, gc).
#[derive(Args)]
pub struct RuntimeEnv {
    /// Network configuration directory
    #[arg(long, default_value = "/etc/cni/net.d", env = "NETCONFPATH")]
    pub conf_dir: PathBuf,
    /// Plugin directories searched after rcni's own (colon separated)
    #[arg(long, env = "CNI_PATH", default_value = "/opt/cni/bin")]
    pub cni_path: String,
    /// Seconds a plugin may run before it is killed
    #[arg(long, default_value_t = 60, env = "RCNI_TIMEOUT")]
    pub timeout: u64,
}

impl RuntimeEnv {
    /// The runtime: plugins from rcni's own directory first, then `--cni-path`, then
    /// `/opt/cni/bin`; rcni's own plugins run in-process, others are executed.
    pub fn cni(&self) -> Result<CniConfig, String> {
        let own = own_plugin_dir().map_err(|e| format!("preparing rcni's plugin directory: {e}"))?;
        let mut paths = vec![own];
        for p in cni_runtime::find::split_path_list(&self.cni_path).into_iter().chain([PathBuf::from("/opt/cni/bin")]) {
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
        Ok(CniConfig::new(paths).with_exec(std::sync::Arc::new(plugins::delegate::SelfExec::default())))
    }

    /// A context whose deadline is `--timeout` from now.
    pub fn ctx(&self) -> Ctx {
        Ctx::with_timeout(Duration::from_secs(self.timeout))
    }
}

/// rcni's own plugin directory: where the binary is installed with its applet links, or else
/// `/run/cni/rcni-bin` with links made now.
pub fn own_plugin_dir() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    if let Some(dir) = exe.parent() {
        if crate::applets().iter().all(|a| cni_runtime::fsutil::same_file(&dir.join(a), &exe)) {
            return Ok(dir.to_path_buf());
        }
    }
    let dir = PathBuf::from("/run/cni/rcni-bin");
    // a plugin directory: runtimes exec what its links name, so nobody but root may write it
    cni_runtime::fsutil::create_dir_all_mode(&dir, 0o755)?;
    for a in crate::applets() {
        let link = dir.join(a);
        if std::fs::read_link(&link).ok().as_deref() == Some(exe.as_path()) {
            continue;
        }
        let tmp = dir.join(format!(".{a}.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&exe, &tmp)?;
        std::fs::rename(&tmp, &link)?;
    }
    Ok(dir)
}

fn lock_error(name: &str, e: std::io::Error) -> String {
    format!("locking network {name}: {e}")
}

/// The shared per-network locks rcni's runtime operations hold, so that `rcni gc` never judges
/// an attachment while it is being added or removed.
pub fn lock_networks<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Vec<NetworkLock>, String> {
    names.into_iter().map(|n| NetworkLock::shared(Path::new(cni_runtime::lock::LOCK_DIR), n).map_err(|e| lock_error(n, e))).collect()
}

/// The exclusive lock of one container, held by `rcni attach` from its look at what the container
/// has until its ADDs are done, and by `rcni detach`: two of them for one container never
/// overlap (a second attach would otherwise pass the check and then fail on the first one's
/// interfaces).
pub fn lock_container(id: &str) -> Result<NetworkLock, String> {
    let dir = Path::new(cni_runtime::lock::LOCK_DIR).join("containers");
    NetworkLock::exclusive(&dir, id).map_err(|e| format!("locking container {id}: {e}"))
}

/// The exclusive lock of one network, held by `rcni gc` while it judges and reclaims.
pub fn lock_network_exclusive(name: &str) -> Result<NetworkLock, String> {
    NetworkLock::exclusive(Path::new(cni_runtime::lock::LOCK_DIR), name).map_err(|e| lock_error(name, e))
}

/// The configuration an attachment was added with: the list its cache recorded, or, when that
/// holds no inline plugins, the current list of that name.
pub fn cached_list(a: &NetworkAttachment, conf_dir: &Path) -> Result<NetworkConfigList, String> {
    match NetworkConfigList::from_bytes(&a.config) {
        Ok(l) if !l.plugins.is_empty() => Ok(l),
        _ => conf::load_network_conf(conf_dir, &a.network).map_err(|e| e.to_string()),
    }
}

/// The networks to attach: those `names` (rcni's embedded default network by its name too), or
/// with `all` every network of `dir`, or else the node's own network: the first of `dir` (as
/// containerd takes it) that `rcni network create` did not make (like docker's, those are joined
/// by name only), or rcni's default network when there is none.
pub fn select_networks(dir: &Path, names: &[String], all: bool) -> Result<Vec<NetworkConfigList>, String> {
    use crate::default_network::{default_network, DEFAULT_NETWORK_NAME};
    if !names.is_empty() {
        return names
            .iter()
            .map(|n| match conf::load_network_conf(dir, n) {
                Ok(l) => Ok(l),
                Err(_) if n == DEFAULT_NETWORK_NAME => default_network(),
                Err(e) => Err(e.to_string()),
            })
            .collect();
    }
    if all {
        let found = conf::load_all(dir, 0).map_err(|e| e.to_string())?;
        return if found.is_empty() { Ok(vec![default_network()?]) } else { Ok(found.into_iter().map(|(_, l)| l).collect()) };
    }
    for f in conf::list_networks(dir).map_err(|e| e.to_string())? {
        let made_by_rcni = std::fs::read(&f.path)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v.get(crate::shared::ID_KEY).is_some());
        if made_by_rcni {
            continue;
        }
        return f.network.map(|l| vec![l]).map_err(|e| format!("failed to load CNI config file {}: {e}", f.path.display()));
    }
    Ok(vec![default_network()?])
}

/// A namespace argument as a path: a name under /run/netns, or a path as given.
pub fn netns_path(netns: &str) -> PathBuf {
    if netns.contains('/') {
        PathBuf::from(netns)
    } else {
        netkit::netns::named_path(netns)
    }
}

/// The container ID for a namespace: `explicit` when given, else its name when that is a valid
/// ID, else `rcni-` and a hash of its path.
pub fn container_id(netns: &str, explicit: Option<&str>) -> String {
    if let Some(id) = explicit {
        return id.to_string();
    }
    if !netns.contains('/') && cni_types::validate::container_id(netns).is_ok() {
        return netns.to_string();
    }
    netkit::owner::hashed_name("rcni-", &netns_path(netns).to_string_lossy(), "rcni-".len() + 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(container_id("demo", None), "demo");
        assert_eq!(container_id("x", Some("given")), "given");
        let h = container_id("/proc/123/ns/net", None);
        assert!(h.starts_with("rcni-") && h.len() == 25);
        assert_eq!(h, container_id("/proc/123/ns/net", None));
        assert_eq!(container_id("-not-an-id", None), container_id("/run/netns/-not-an-id", None), "hash of the named path");
    }

    #[test]
    fn netns_paths() {
        assert_eq!(netns_path("/proc/1/ns/net"), Path::new("/proc/1/ns/net"));
        assert_eq!(netns_path("demo"), netkit::netns::named_path("demo"));
    }
}

//! Loading network configurations from a directory (Go's `libcni/conf.go`, file side).

use crate::error::{Error, Result};
use cni_types::{NetworkConfigList, PluginConfig};
use std::path::{Path, PathBuf};

/// Go's `filepath.Ext`: the suffix from the last dot of the final element (`".conflist"` for a
/// file named `.conflist`).
fn ext(name: &str) -> &str {
    match name.rfind('.') {
        Some(i) => &name[i..],
        None => "",
    }
}

/// Files (not directories) in `dir` whose extension is one of `exts`, sorted by name. A missing
/// directory has none.
pub fn conf_files(dir: &Path, exts: &[&str]) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("reading {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !is_dir && exts.contains(&ext(&name)) {
            out.push(dir.join(&*name));
        }
    }
    out.sort();
    Ok(out)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::msg(format!("error reading {}: {e}", path.display())))
}

/// A single-plugin config file (`.conf`/`.json`).
pub fn conf_from_file(path: &Path) -> Result<PluginConfig> {
    Ok(PluginConfig::from_bytes(&read(path)?)?)
}

/// The plugin configs in `<dir>/<network>/*.conf`, for lists that do not inline all plugins.
pub fn plugin_confs_from_dir(dir: &Path, network: &str) -> Result<Vec<PluginConfig>> {
    let plugin_dir = dir.join(network);
    let files = conf_files(&plugin_dir, &[".conf"])
        .map_err(|e| e.context(format!("failed to read plugin config files in {}", plugin_dir.display())))?;
    files.iter().map(|f| conf_from_file(f)).collect()
}

/// A conflist file; unless `loadOnlyInlinedPlugins`, plugin files from `<dir>/<name>/` are
/// appended. A list that ends up without plugins is an error.
pub fn conf_list_from_file(path: &Path) -> Result<NetworkConfigList> {
    let mut list = NetworkConfigList::from_bytes(&read(path)?)?;
    if !list.load_only_inlined_plugins {
        let dir = path.parent().unwrap_or(Path::new("."));
        list.plugins.extend(plugin_confs_from_dir(dir, &list.name)?);
    }
    if list.plugins.is_empty() {
        return Err(Error::msg("no plugin configs found"));
    }
    Ok(list)
}

/// `no net configuration with name "N" in DIR`.
fn not_found(dir: &Path, name: &str) -> Error {
    Error::msg(format!("no net configuration with name \"{name}\" in {}", dir.display()))
}

/// The first `.conf`/`.json` file in `dir` (sorted) whose `name` is `name`; any unreadable file
/// on the way is an error.
pub fn load_conf(dir: &Path, name: &str) -> Result<PluginConfig> {
    let files = conf_files(dir, &[".conf", ".json"])?;
    if files.is_empty() {
        return Err(Error::msg(format!("no net configurations found in {}", dir.display())));
    }
    for f in &files {
        let conf = conf_from_file(f)?;
        if conf.name == name {
            return Ok(conf);
        }
    }
    Err(not_found(dir, name))
}

/// The network called `name` in `dir` (Go's `LoadNetworkConf`): the first `.conflist` with that
/// name wins; otherwise a matching `.conf`/`.json` is wrapped as a one-plugin list.
pub fn load_network_conf(dir: &Path, name: &str) -> Result<NetworkConfigList> {
    let lists = conf_files(dir, &[".conflist"])?;
    for f in &lists {
        let list = conf_list_from_file(f)?;
        if list.name == name {
            return Ok(list);
        }
    }
    match load_conf(dir, name) {
        Ok(conf) => Ok(NetworkConfigList::from_conf(&conf)?),
        Err(e) if !lists.is_empty() && e.to_string().starts_with("no net configurations found") => Err(not_found(dir, name)),
        Err(e) => Err(e),
    }
}

/// Every network in `dir` (`.conf`, `.conflist`, `.json`, sorted by file name), as go-cni loads
/// them for a container: a `.conf`/`.json` is wrapped as a list. `max` of 0 means no limit.
pub fn load_all(dir: &Path, max: usize) -> Result<Vec<(PathBuf, NetworkConfigList)>> {
    let mut out = Vec::new();
    for f in conf_files(dir, &[".conf", ".conflist", ".json"])? {
        let list = if f.extension().is_some_and(|e| e == "conflist") {
            conf_list_from_file(&f)
        } else {
            conf_from_file(&f).and_then(|c| Ok(NetworkConfigList::from_conf(&c)?))
        }
        .map_err(|e| e.context(format!("failed to load CNI config file {}", f.display())))?;
        out.push((f, list));
        if out.len() == max {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) {
        std::fs::write(dir.join(name), body).unwrap();
    }

    #[test]
    fn extension_like_go() {
        assert_eq!(ext("a.conflist"), ".conflist");
        assert_eq!(ext(".conflist"), ".conflist");
        assert_eq!(ext("a.b.conf"), ".conf");
        assert_eq!(ext("conf"), "");
    }

    #[test]
    fn conflist_preferred_and_conf_wrapped() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "10-a.conf", r#"{"cniVersion":"0.4.0","name":"net","type":"from-conf"}"#);
        write(d.path(), "20-b.conflist", r#"{"cniVersion":"1.0.0","name":"net","plugins":[{"type":"from-list"}]}"#);
        write(d.path(), "30-c.json", r#"{"cniVersion":"1.0.0","name":"other","type":"json-one"}"#);
        std::fs::create_dir(d.path().join("nested.conf")).unwrap();
        let l = load_network_conf(d.path(), "net").unwrap();
        assert_eq!(l.plugins[0].plugin_type, "from-list");
        let l = load_network_conf(d.path(), "other").unwrap();
        assert_eq!((l.name.as_str(), l.cni_version.as_str(), l.plugins[0].plugin_type.as_str()), ("other", "1.0.0", "json-one"));
        assert_eq!(
            load_network_conf(d.path(), "nope").unwrap_err().to_string(),
            format!("no net configuration with name \"nope\" in {}", d.path().display())
        );
    }

    #[test]
    fn empty_or_missing_dir() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            load_network_conf(d.path(), "x").unwrap_err().to_string(),
            format!("no net configurations found in {}", d.path().display())
        );
        assert!(conf_files(&d.path().join("missing"), &[".conf"]).unwrap().is_empty());
        // conflists present, none matching, no .conf files: "not found" rather than "none found"
        write(d.path(), "a.conflist", r#"{"name":"a","plugins":[{"type":"x"}]}"#);
        assert!(load_network_conf(d.path(), "x").unwrap_err().to_string().starts_with("no net configuration with name"));
    }

    #[test]
    fn any_parse_error_aborts() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.conflist", "{broken");
        write(d.path(), "b.conflist", r#"{"name":"net","plugins":[{"type":"x"}]}"#);
        assert!(load_network_conf(d.path(), "net").unwrap_err().to_string().starts_with("error parsing configuration list"));
    }

    #[test]
    fn plugins_from_subdirectory() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "a.conflist", r#"{"name":"net","cniVersion":"1.0.0","plugins":[{"type":"inline"}]}"#);
        std::fs::create_dir(d.path().join("net")).unwrap();
        write(&d.path().join("net"), "2.conf", r#"{"type":"second"}"#);
        write(&d.path().join("net"), "1.conf", r#"{"type":"first"}"#);
        let l = load_network_conf(d.path(), "net").unwrap();
        let types: Vec<&str> = l.plugins.iter().map(|p| p.plugin_type.as_str()).collect();
        assert_eq!(types, vec!["inline", "first", "second"]);
        // inlined-only lists ignore the directory
        write(d.path(), "a.conflist", r#"{"name":"net","loadOnlyInlinedPlugins":true,"plugins":[{"type":"inline"}]}"#);
        assert_eq!(load_network_conf(d.path(), "net").unwrap().plugins.len(), 1);
        // a list with no plugins key takes them all from the directory
        write(d.path(), "a.conflist", r#"{"name":"net"}"#);
        assert_eq!(load_network_conf(d.path(), "net").unwrap().plugins.len(), 2);
        std::fs::remove_dir_all(d.path().join("net")).unwrap();
        assert_eq!(load_network_conf(d.path(), "net").unwrap_err().to_string(), "no plugin configs found");
    }

    #[test]
    fn load_all_in_order_with_limit() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "20.conflist", r#"{"name":"b","plugins":[{"type":"x"}]}"#);
        write(d.path(), "10.conf", r#"{"name":"a","type":"x"}"#);
        write(d.path(), "30.json", r#"{"name":"c","type":"x"}"#);
        write(d.path(), "40.txt", "ignored");
        let names: Vec<String> = load_all(d.path(), 0).unwrap().into_iter().map(|(_, l)| l.name).collect();
        assert_eq!(names, vec!["a", "b", "c"]);
        assert_eq!(load_all(d.path(), 1).unwrap().len(), 1);
    }
}

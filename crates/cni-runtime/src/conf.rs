//! Network configurations in a directory: loading them (Go's `libcni/conf.go`, file side), and
//! the side Go's libcni leaves to each runtime: writing a conflist ([`write_conflist`]), listing
//! every file with its network even when some are broken ([`list_networks`]), and removing a
//! network by name ([`remove_network`]).

use crate::error::{Error, Result};
use crate::fsutil;
use cni_types::{gojson, NetworkConfigList, PluginConfig};
use std::path::{Path, PathBuf};

pub use crate::fsutil::Placement;

/// The extensions of the files that hold networks, as Go's libcni and go-cni read them.
const NETWORK_EXTS: [&str; 3] = [".conf", ".conflist", ".json"];

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
        // the name becomes a directory: `../x` must not send the loader out of the config dir
        cni_types::validate::network_name(&list.name).map_err(|e| Error::from(e).context(format!("{}", path.display())))?;
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
    for f in conf_files(dir, &NETWORK_EXTS)? {
        let list = load_file(&f).map_err(|e| e.context(format!("failed to load CNI config file {}", f.display())))?;
        out.push((f, list));
        if out.len() == max {
            break;
        }
    }
    Ok(out)
}

/// One network file as [`load_all`] loads it: a `.conflist` as a list, a `.conf`/`.json` as a
/// one-plugin list.
fn load_file(f: &Path) -> Result<NetworkConfigList> {
    if f.extension().is_some_and(|e| e == "conflist") {
        conf_list_from_file(f)
    } else {
        Ok(NetworkConfigList::from_conf(&conf_from_file(f)?)?)
    }
}

/// The mode of the files [`write_conflist`] writes: readable by every user (runtimes such as
/// podman read them, not always as the user that wrote them), writable by the owner.
pub const CONF_FILE_MODE: u32 = 0o644;
/// The mode of the config directories [`write_conflist`] creates.
pub const CONF_DIR_MODE: u32 = 0o755;

/// The fields and plugins of a list: what a loader makes of it, apart from its bytes.
fn same_list(a: &NetworkConfigList, b: &NetworkConfigList) -> bool {
    (&a.name, &a.cni_version, a.disable_check, a.disable_gc, a.load_only_inlined_plugins)
        == (&b.name, &b.cni_version, b.disable_check, b.disable_gc, b.load_only_inlined_plugins)
        && a.plugins.iter().map(|p| &p.conf).eq(b.plugins.iter().map(|p| &p.conf))
}

/// Writes `list` into `dir` (created with [`CONF_DIR_MODE`] if missing) as the file
/// `file_name`, and returns the file's path.
///
/// The content is [`NetworkConfigList::to_json_pretty`]: a standard conflist with every plugin
/// inline and every key rcni does not know kept, which Go's libcni and cnitool load unchanged
/// (it is parsed back before writing, and must load as the same list). The write is atomic
/// ([`fsutil::write_shared`]): the file appears or changes whole, with mode [`CONF_FILE_MODE`].
/// [`Placement::CreateNew`] fails, with an error whose [`Error::io_kind`] is `AlreadyExists`,
/// when the file exists, so that of two writers creating the same file name only one succeeds;
/// [`Placement::Replace`] replaces it.
///
/// `file_name` must be a plain name ending in `.conflist` that does not start with a dot; the
/// network's name must be valid (`[A-Za-z0-9][A-Za-z0-9_.-]*`, CNI code 7 otherwise) and the
/// list must have plugins. Whether another file of `dir` defines a network of the same name is
/// the caller's to check ([`list_networks`]): the atomicity is per file name. A list that
/// does not set `loadOnlyInlinedPlugins` also gets any plugin files of `<dir>/<name>/` when
/// loaded.
pub fn write_conflist(dir: &Path, file_name: &str, list: &NetworkConfigList, placement: Placement) -> Result<PathBuf> {
    let plain = !file_name.contains('/') && !file_name.starts_with('.') && file_name.len() > ".conflist".len();
    if !plain || ext(file_name) != ".conflist" {
        return Err(Error::msg(format!(
            "invalid config file name {}: a name ending in .conflist, without '/' and not starting with '.'",
            gojson::quote(file_name)
        )));
    }
    cni_types::validate::network_name(&list.name)?;
    if list.plugins.is_empty() {
        return Err(Error::msg(format!("network {}: no plugins to write", list.name)));
    }
    let bytes = list.to_json_pretty();
    match NetworkConfigList::from_bytes(&bytes) {
        Ok(back) if same_list(&back, list) => {}
        Ok(_) => return Err(Error::msg(format!("network {}: the conflist would not load back as the same list", list.name))),
        Err(e) => return Err(Error::from(e).context(format!("network {}: the conflist would not load", list.name))),
    }
    fsutil::create_dir_all_mode(dir, CONF_DIR_MODE).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let path = dir.join(file_name);
    let what = if placement == Placement::CreateNew { "creating" } else { "writing" };
    fsutil::write_shared(&path, &bytes, CONF_FILE_MODE, placement).map_err(|e| Error::io(format!("{what} {}", path.display()), e))?;
    Ok(path)
}

/// One network file of a config directory, as [`list_networks`] finds it.
#[derive(Debug)]
pub struct NetworkFile {
    pub path: PathBuf,
    /// The name of the network the file defines: also for a file that is broken otherwise, when
    /// it is a JSON object with a string `name` (so a broken network can be shown, and removed,
    /// by its name).
    pub name: Option<String>,
    /// The network, loaded as [`load_all`] loads it, or why the file cannot be loaded (the
    /// error without the file's name, which is [`path`](Self::path)).
    pub network: Result<NetworkConfigList>,
}

/// The `name` of a file that does not load, if it has one.
fn name_of_broken(path: &Path) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    v.get("name")?.as_str().map(String::from)
}

/// Every network file of `dir` with what it holds: the files [`load_all`] (and Go's libcni and
/// go-cni) read, in the same order (`.conf`, `.conflist`, `.json`, sorted by file name). Unlike
/// `load_all`, a broken file does not fail the listing: it is listed with its error, and the
/// other networks still are. A missing directory has none; only a directory that cannot be read
/// is an error. Where several files define one name, a loader asked for that name takes the
/// first `.conflist` of them, else the first other file.
pub fn list_networks(dir: &Path) -> Result<Vec<NetworkFile>> {
    Ok(conf_files(dir, &NETWORK_EXTS)?
        .into_iter()
        .map(|path| {
            let network = load_file(&path);
            let name = match &network {
                Ok(l) => Some(l.name.clone()),
                Err(_) => name_of_broken(&path),
            };
            NetworkFile { path, name, network }
        })
        .collect())
}

/// Removes network `name` from `dir`: every file that defines it (broken ones included, by the
/// name they carry: [`NetworkFile::name`]), so that no loader finds it afterwards; returns the
/// files removed, in [`list_networks`] order. When no file defines it the error's
/// [`Error::io_kind`] is `NotFound` (`removing network N: no net configuration with name "N" in
/// DIR`). Plugin files under `<dir>/<name>/` are left alone. Files are removed by path: one
/// replaced between the listing and the removal goes as it is then.
pub fn remove_network(dir: &Path, name: &str) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for f in list_networks(dir)?.into_iter().filter(|f| f.name.as_deref() == Some(name)) {
        match std::fs::remove_file(&f.path) {
            Ok(()) => removed.push(f.path),
            // removed meanwhile by someone else
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("removing {}", f.path.display()), e)),
        }
    }
    if removed.is_empty() {
        let e = std::io::Error::new(std::io::ErrorKind::NotFound, not_found(dir, name).to_string());
        return Err(Error::io(format!("removing network {name}"), e));
    }
    fsutil::sync_dir(dir);
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, body: &str) {
        std::fs::write(dir.join(name), body).unwrap();
    }

    #[test]
    fn a_list_name_is_no_path() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("net.d");
        std::fs::create_dir(&dir).unwrap();
        std::fs::create_dir(d.path().join("x")).unwrap();
        write(&d.path().join("x"), "1.conf", r#"{"type":"outside"}"#);
        write(&dir, "10.conflist", r#"{"cniVersion":"1.0.0","name":"../x","plugins":[{"type":"a"}]}"#);
        let e = conf_list_from_file(&dir.join("10.conflist")).unwrap_err();
        assert!(e.to_string().contains("invalid characters found in network name"), "{e}");
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

    fn list(v: serde_json::Value) -> NetworkConfigList {
        NetworkConfigList::from_bytes(v.to_string().as_bytes()).unwrap()
    }

    use crate::fsutil::test_util::{entries as names, mode};

    #[test]
    fn written_conflists_load_back_and_keep_unknown_keys() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("etc/cni/net.d");
        let l = list(serde_json::json!({
            "cniVersion": "1.0.0", "cniVersions": ["1.1.0", "1.0.0"], "name": "made",
            "args": {"podman_labels": {"team": "a&b"}},
            "plugins": [{"type": "bridge", "bridge": "br9", "mtu": 1500, "ipam": {"type": "host-local", "x-y": [1, 2.5]}},
                        {"type": "portmap", "capabilities": {"portMappings": true}}]
        }));
        let path = write_conflist(&dir, "50-made.conflist", &l, Placement::CreateNew).unwrap();
        assert_eq!(path, dir.join("50-made.conflist"));
        assert_eq!((mode(&path), mode(&dir), mode(&d.path().join("etc"))), (CONF_FILE_MODE, CONF_DIR_MODE, CONF_DIR_MODE));
        let on_disk: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(on_disk, l.to_value(), "the object it was parsed from, unknown keys included");
        assert_eq!(on_disk["cniVersion"], "1.0.0", "older readers (no cniVersions) still get a version they know");
        let loaded = load_network_conf(&dir, "made").unwrap();
        assert!(same_list(&loaded, &l) && loaded.cni_version == "1.1.0");
        assert_eq!(load_all(&dir, 0).unwrap().len(), 1);
        assert_eq!(names(&dir), vec!["50-made.conflist"], "no temporary file left");

        // CreateNew refuses an existing file and leaves it alone; Replace replaces it
        let other = list(serde_json::json!({"cniVersion": "1.0.0", "name": "made", "plugins": [{"type": "ptp"}]}));
        let e = write_conflist(&dir, "50-made.conflist", &other, Placement::CreateNew).unwrap_err();
        assert_eq!(e.io_kind(), Some(std::io::ErrorKind::AlreadyExists), "{e}");
        assert!(e.to_string().starts_with(&format!("creating {}: ", path.display())), "{e}");
        assert!(same_list(&load_network_conf(&dir, "made").unwrap(), &l));
        write_conflist(&dir, "50-made.conflist", &other, Placement::Replace).unwrap();
        assert_eq!(load_network_conf(&dir, "made").unwrap().plugins[0].plugin_type, "ptp");
        assert_eq!(mode(&path), CONF_FILE_MODE);
    }

    #[test]
    fn written_lists_and_file_names_are_checked() {
        let d = tempfile::tempdir().unwrap();
        let good = list(serde_json::json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "x"}]}));
        for bad in ["", ".conflist", ".hidden.conflist", "a/b.conflist", "../b.conflist", "a.conf", "a.json", "a.conflist.tmp", "a"] {
            let e = write_conflist(d.path(), bad, &good, Placement::Replace).unwrap_err();
            assert!(e.to_string().starts_with("invalid config file name"), "{bad:?}: {e}");
        }
        let mut bad_name = good.clone();
        bad_name.name = "no spaces".into();
        let e = write_conflist(d.path(), "a.conflist", &bad_name, Placement::Replace).unwrap_err();
        assert_eq!(e.code(), Some(7), "{e}");
        let mut no_plugins = good.clone();
        no_plugins.plugins.clear();
        assert_eq!(
            write_conflist(d.path(), "a.conflist", &no_plugins, Placement::Replace).unwrap_err().to_string(),
            "network n: no plugins to write"
        );
        assert!(names(d.path()).is_empty(), "nothing written");
    }

    #[test]
    fn listing_survives_broken_files() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "10-a.conf", r#"{"cniVersion":"0.4.0","name":"a","type":"x"}"#);
        write(d.path(), "20-broken.conflist", "{broken");
        write(d.path(), "25-named.conflist", r#"{"name":"half","plugins":[{"no-type":1}]}"#);
        write(d.path(), "30-b.conflist", r#"{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"y"}]}"#);
        write(d.path(), "40-c.json", r#"{"cniVersion":"1.0.0","name":"c","type":"z"}"#);
        write(d.path(), "50-d.txt", "ignored");
        write(d.path(), ".50-d.conflist.1-0.tmp", "a writer's temporary file: ignored");
        std::fs::create_dir(d.path().join("60-dir.conflist")).unwrap();
        assert!(load_all(d.path(), 0).is_err(), "load_all fails on the first broken file");

        let files = list_networks(d.path()).unwrap();
        let got: Vec<(String, Option<&str>, bool)> = files
            .iter()
            .map(|f| (f.path.file_name().unwrap().to_string_lossy().into_owned(), f.name.as_deref(), f.network.is_ok()))
            .collect();
        let want = [
            ("10-a.conf", Some("a"), true),
            ("20-broken.conflist", None, false),
            ("25-named.conflist", Some("half"), false),
            ("30-b.conflist", Some("b"), true),
            ("40-c.json", Some("c"), true),
        ];
        assert_eq!(got, want.map(|(f, n, ok)| (f.to_string(), n, ok)));
        let paths: Vec<&PathBuf> = files.iter().map(|f| &f.path).collect();
        assert_eq!(paths, conf_files(d.path(), &NETWORK_EXTS).unwrap().iter().collect::<Vec<_>>(), "load_all's files and order");
        let why = files[1].network.as_ref().unwrap_err().to_string();
        assert!(why.starts_with("error parsing configuration list:"), "{why}");
        assert!(files[2].network.as_ref().unwrap_err().to_string().contains("missing 'type'"));
        let a = files[0].network.as_ref().unwrap();
        assert_eq!((a.cni_version.as_str(), a.plugins[0].plugin_type.as_str()), ("0.4.0", "x"), "a .conf wrapped as load_all does");
        assert!(list_networks(&d.path().join("missing")).unwrap().is_empty());
    }

    #[test]
    fn removing_a_network_by_name() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "10-keep.conflist", r#"{"cniVersion":"1.0.0","name":"keep","plugins":[{"type":"y"}]}"#);
        write(d.path(), "20-gone.conflist", r#"{"cniVersion":"1.0.0","name":"gone","plugins":[{"type":"y"}]}"#);
        write(d.path(), "30-gone.conf", r#"{"cniVersion":"1.0.0","name":"gone","type":"z"}"#);
        write(d.path(), "40-half.conflist", r#"{"name":"half","plugins":[{"no-type":1}]}"#);
        write(d.path(), "50-broken.conflist", "{broken");
        assert_eq!(remove_network(d.path(), "gone").unwrap(), vec![d.path().join("20-gone.conflist"), d.path().join("30-gone.conf")]);
        assert!(list_networks(d.path()).unwrap().iter().all(|f| f.name.as_deref() != Some("gone")), "no file defines it");
        assert_eq!(remove_network(d.path(), "half").unwrap(), vec![d.path().join("40-half.conflist")], "a broken file, by its name");
        let e = remove_network(d.path(), "gone").unwrap_err();
        assert_eq!(e.io_kind(), Some(std::io::ErrorKind::NotFound));
        assert_eq!(e.to_string(), format!("removing network gone: no net configuration with name \"gone\" in {}", d.path().display()));
        assert_eq!(names(d.path()), vec!["10-keep.conflist", "50-broken.conflist"]);
        assert_eq!(remove_network(&d.path().join("missing"), "x").unwrap_err().io_kind(), Some(std::io::ErrorKind::NotFound));
        // what write_conflist made, remove_network removes
        let l = list(serde_json::json!({"cniVersion": "1.0.0", "name": "made", "plugins": [{"type": "x"}]}));
        let p = write_conflist(d.path(), "made.conflist", &l, Placement::CreateNew).unwrap();
        assert_eq!(remove_network(d.path(), "made").unwrap(), vec![p]);
    }

    /// A list whose file is large (100 KB), so a reader or a rival writer would see a
    /// partial file if the write were not atomic; `writer` tells whose it is.
    fn big_list(writer: usize) -> NetworkConfigList {
        list(serde_json::json!({"cniVersion": "1.0.0", "name": "race",
            "plugins": [{"type": "x", "writer": writer, "padding": "p".repeat(100_000 + writer)}]}))
    }

    #[test]
    fn concurrent_creators_of_one_file_name_exactly_one_wins() {
        const WRITERS: usize = 8;
        for round in 0..5 {
            let d = tempfile::tempdir().unwrap();
            let dir = d.path().to_path_buf();
            let start = std::sync::Barrier::new(WRITERS + 1);
            let done = std::sync::atomic::AtomicBool::new(false);
            let outcomes = std::thread::scope(|s| {
                // a reader polling the name meanwhile: it sees no file or a whole one
                let reader = s.spawn(|| {
                    start.wait();
                    while !done.load(std::sync::atomic::Ordering::SeqCst) {
                        if let Ok(bytes) = std::fs::read(dir.join("race.conflist")) {
                            NetworkConfigList::from_bytes(&bytes).expect("a reader never sees a partial file");
                        }
                    }
                });
                let writers: Vec<_> = (0..WRITERS)
                    .map(|i| {
                        let (dir, start) = (&dir, &start);
                        s.spawn(move || {
                            let l = big_list(i);
                            start.wait();
                            (i, write_conflist(dir, "race.conflist", &l, Placement::CreateNew))
                        })
                    })
                    .collect();
                let outcomes: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
                done.store(true, std::sync::atomic::Ordering::SeqCst);
                reader.join().unwrap();
                outcomes
            });
            let winners: Vec<usize> = outcomes.iter().filter(|(_, r)| r.is_ok()).map(|(i, _)| *i).collect();
            assert_eq!(winners.len(), 1, "round {round}: exactly one creator wins: {winners:?}");
            for (_, r) in outcomes.iter().filter(|(_, r)| r.is_err()) {
                assert_eq!(r.as_ref().unwrap_err().io_kind(), Some(std::io::ErrorKind::AlreadyExists));
            }
            let on_disk = std::fs::read(dir.join("race.conflist")).unwrap();
            assert_eq!(on_disk, big_list(winners[0]).to_json_pretty(), "round {round}: the winner's file, complete");
            assert_eq!(names(&dir), vec!["race.conflist"], "round {round}: the losers left no temporary files");
        }
    }

    #[test]
    fn concurrent_replacers_leave_one_whole_file() {
        let d = tempfile::tempdir().unwrap();
        std::thread::scope(|s| {
            for i in 0..6 {
                let dir = d.path();
                s.spawn(move || write_conflist(dir, "race.conflist", &big_list(i), Placement::Replace).unwrap());
            }
        });
        let on_disk = std::fs::read(d.path().join("race.conflist")).unwrap();
        assert!((0..6).any(|i| on_disk == big_list(i).to_json_pretty()), "one writer's file, whole");
        assert_eq!(names(d.path()), vec!["race.conflist"]);
    }
}

//! The result cache, `<cacheDir>/results/<net>-<cid>-<ifname>`, kind `cniCacheV1`.
//!
//! Files are byte-compatible with Go's libcni 1.3 (field order, sorted nested keys, standard
//! base64 of the config bytes, Go's HTML escaping, no trailing newline, 0600 in a 0700 dir), so
//! Go's cnitool, containerd and podman read what we write and we read theirs. Unlike Go, the file
//! is written to a temporary name, synced and renamed into place, so a crash never leaves an empty
//! or half-written cache; and a cache that is empty or corrupt anyway never blocks a DEL.

use crate::api::RuntimeConf;
use crate::error::{Error, Result};
use base64::Engine;
use cni_types::{gojson, CniResult};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The default cache directory.
pub const DEFAULT_CACHE_DIR: &str = "/var/lib/cni";
/// The cache entry kind.
pub const CACHE_KIND: &str = "cniCacheV1";

/// One cache file, as Go's `cachedInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedInfo {
    #[serde(default)]
    pub kind: String,
    #[serde(rename = "containerId", default)]
    pub container_id: String,
    #[serde(with = "b64", default)]
    pub config: Vec<u8>,
    #[serde(rename = "ifName", default)]
    pub if_name: String,
    #[serde(rename = "networkName", default)]
    pub network_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub netns: String,
    #[serde(rename = "cniArgs", default, skip_serializing_if = "Vec::is_empty", deserialize_with = "nullable")]
    pub cni_args: Vec<[String; 2]>,
    #[serde(rename = "capabilityArgs", default, skip_serializing_if = "Map::is_empty", deserialize_with = "nullable")]
    pub capability_args: Map<String, Value>,
    #[serde(rename = "result", default, skip_serializing_if = "Map::is_empty", deserialize_with = "nullable")]
    pub raw_result: Map<String, Value>,
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Go encodes `[]byte` as standard, padded base64 (`null` for nil).
mod b64 {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(Vec::new()),
            Some(s) => base64::engine::general_purpose::STANDARD.decode(s).map_err(serde::de::Error::custom),
        }
    }
}

/// A cached attachment (Go's `NetworkAttachment`).
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkAttachment {
    pub container_id: String,
    pub network: String,
    pub ifname: String,
    pub config: Vec<u8>,
    pub netns: String,
    pub cni_args: Vec<(String, String)>,
    pub capability_args: Map<String, Value>,
}

/// How reading a cache file went.
pub enum Cached {
    /// No file (or unreadable).
    Absent,
    /// A `cniCacheV1` entry.
    Entry(Box<CachedInfo>),
    /// Something else: a legacy bare result, or garbage.
    Other(Vec<u8>),
}

/// The cache under one directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Cache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn results_dir(&self) -> PathBuf {
        self.dir.join("results")
    }

    /// `<dir>/results/<net>-<cid>-<ifname>`; all three parts are required.
    pub fn file_path(&self, net: &str, container_id: &str, ifname: &str) -> Result<PathBuf> {
        if net.is_empty() || container_id.is_empty() || ifname.is_empty() {
            return Err(Error::msg(format!(
                "cache file path requires network name ({}), container ID ({}), and interface name ({})",
                gojson::quote(net),
                gojson::quote(container_id),
                gojson::quote(ifname)
            )));
        }
        // the three make one file name: none may reach outside the directory, and together
        // they must fit in one (DEL and CHECK get them from the runtime unvalidated)
        if let Some(bad) = [net, container_id, ifname].into_iter().find(|p| p.contains(['/', '\0'])) {
            return Err(Error::msg(format!("cache file path: {} contains '/' or NUL", gojson::quote(bad))));
        }
        let name = format!("{net}-{container_id}-{ifname}");
        if name.len() > 255 {
            return Err(Error::msg(format!("cache file name {}… is longer than 255 bytes", &name[..name.floor_char_boundary(40)])));
        }
        Ok(self.results_dir().join(name))
    }

    /// The bytes Go's libcni would write for this entry.
    pub fn encode(result: &CniResult, config: &[u8], net: &str, rt: &RuntimeConf) -> Vec<u8> {
        let raw_result = match result.to_value() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let info = CachedInfo {
            kind: CACHE_KIND.into(),
            container_id: rt.container_id.clone(),
            config: config.to_vec(),
            if_name: rt.ifname.clone(),
            network_name: net.into(),
            netns: rt.netns.clone(),
            cni_args: rt.args.iter().map(|(k, v)| [k.clone(), v.clone()]).collect(),
            capability_args: rt.capability_args.clone(),
            raw_result,
        };
        gojson::to_vec(&info)
    }

    /// Writes the entry for an ADD: temporary file, fsync, rename.
    pub fn write(&self, result: &CniResult, config: &[u8], net: &str, rt: &RuntimeConf) -> Result<()> {
        let path = self.file_path(net, &rt.container_id, &rt.ifname)?;
        let bytes = Self::encode(result, config, net, rt);
        crate::fsutil::write_atomic(&path, &bytes).map_err(|e| Error::io(format!("open {}", path.display()), e))
    }

    /// Reads the entry of an attachment.
    pub fn read(&self, net: &str, container_id: &str, ifname: &str) -> Result<Cached> {
        let path = self.file_path(net, container_id, ifname)?;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(_) => return Ok(Cached::Absent),
        };
        match serde_json::from_slice::<CachedInfo>(&bytes) {
            Ok(info) if info.kind == CACHE_KIND => Ok(Cached::Entry(Box::new(info))),
            _ => Ok(Cached::Other(bytes)),
        }
    }

    /// The cached result, converted to `version` (Go's `getCachedResult`): `None` when there is
    /// no file; an error when the file cannot be understood or converted.
    pub fn result(&self, net: &str, version: &str, rt: &RuntimeConf) -> Result<Option<CniResult>> {
        let parsed = match self.read(net, &rt.container_id, &rt.ifname)? {
            Cached::Absent => return Ok(None),
            Cached::Entry(info) if info.raw_result.is_empty() => return Ok(None),
            Cached::Entry(info) => CniResult::from_bytes(&serde_json::to_vec(&info.raw_result).expect("map serializes")),
            // a legacy cache file holds a bare result
            Cached::Other(bytes) => CniResult::from_bytes(&bytes),
        };
        let result = parsed.map_err(|e| Error::msg(e.to_string()))?;
        result
            .convert(version)
            .map(Some)
            .map_err(|e| Error::msg(format!("failed to convert cached result to config version {}: {e}", gojson::quote(version))))
    }

    /// Removes an attachment's entry; a missing file is fine.
    pub fn delete(&self, net: &str, rt: &RuntimeConf) -> Result<()> {
        let Ok(path) = self.file_path(net, &rt.container_id, &rt.ifname) else {
            return Ok(());
        };
        crate::fsutil::remove(&path).map_err(|e| Error::io(format!("remove {}", path.display()), e))
    }

    /// Every cached attachment, optionally only those of one container (Go's
    /// `GetCachedAttachments`): sorted by file name; unreadable, foreign or incomplete entries
    /// are skipped.
    pub fn attachments(&self, container_id: &str) -> Result<Vec<NetworkAttachment>> {
        self.select(container_id, "")
    }

    /// Every cached attachment of one network. Only the files named after the network are read.
    pub fn network_attachments(&self, network: &str) -> Result<Vec<NetworkAttachment>> {
        self.select("", network)
    }

    /// Removes the temporary files of writers of `network`'s entries that were killed before
    /// their rename, when older than `older_than`; returns the files removed and what failed.
    pub fn remove_stale_temp_files(&self, network: &str, older_than: std::time::Duration) -> (Vec<PathBuf>, Vec<Error>) {
        let (mut removed, mut failed) = (Vec::new(), Vec::new());
        let prefix = format!(".{network}-");
        for e in std::fs::read_dir(self.results_dir()).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with(&prefix) || !name.ends_with(".tmp") {
                continue;
            }
            let old = e.metadata().ok().and_then(|m| m.modified().ok()).is_some_and(|t| t.elapsed().unwrap_or_default() >= older_than);
            if !old {
                continue;
            }
            match std::fs::remove_file(e.path()) {
                Ok(()) => removed.push(e.path()),
                Err(x) if x.kind() == std::io::ErrorKind::NotFound => {}
                Err(x) => failed.push(Error::io(format!("remove {}", e.path().display()), x)),
            }
        }
        (removed, failed)
    }

    /// The attachments of `container_id` and/or `network` ("": any).
    fn select(&self, container_id: &str, network: &str) -> Result<Vec<NetworkAttachment>> {
        let dir = self.results_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("reading {}", dir.display()), e)),
        };
        let mut names: Vec<String> = entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        let part = format!("-{container_id}-");
        let net_prefix = format!("{network}-");
        let mut out = Vec::new();
        for name in names {
            if name.starts_with('.') {
                continue; // our temporary files
            }
            if !network.is_empty() && !name.starts_with(&net_prefix) {
                continue;
            }
            if !container_id.is_empty() {
                match name.find(&part) {
                    Some(pos) if pos > 0 && pos + part.len() < name.len() => {}
                    _ => continue,
                }
            }
            let Ok(bytes) = std::fs::read(dir.join(&name)) else { continue };
            let Ok(info) = serde_json::from_slice::<CachedInfo>(&bytes) else { continue };
            if info.kind != CACHE_KIND
                || (!container_id.is_empty() && info.container_id != container_id)
                || (!network.is_empty() && info.network_name != network)
                || info.if_name.is_empty()
                || info.network_name.is_empty()
            {
                continue;
            }
            out.push(NetworkAttachment {
                container_id: info.container_id,
                network: info.network_name,
                ifname: info.if_name,
                config: info.config,
                netns: info.netns,
                cni_args: info.cni_args.into_iter().map(|[k, v]| (k, v)).collect(),
                capability_args: info.capability_args,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rt() -> RuntimeConf {
        RuntimeConf {
            container_id: "cnitool-87d9f92c739b6acee406".into(),
            netns: "/var/run/netns/cnitest-t1".into(),
            ifname: "eth0".into(),
            ..Default::default()
        }
    }

    /// The file Debian's cnitool (libcni 1.1.2) wrote, from the interop baseline, minus its
    /// `dns:{}` (libcni ≥ 1.2 drops an empty dns from 1.x results) plus `netns` (libcni ≥ 1.2).
    #[test]
    fn file_names_stay_inside_the_directory() {
        let c = Cache::new("/var/lib/cni");
        assert_eq!(c.file_path("n", "c1", "eth0").unwrap(), Path::new("/var/lib/cni/results/n-c1-eth0"));
        for (net, id, ifname) in [("../x", "c", "e"), ("n", "a/b", "e"), ("n", "c", "e/.."), ("n", "c\0", "e")] {
            assert!(c.file_path(net, id, ifname).is_err(), "{net} {id} {ifname}");
        }
        assert!(c.file_path("n", &"c".repeat(250), "eth0").unwrap_err().to_string().contains("longer than 255 bytes"));
    }

    #[test]
    fn byte_layout_matches_go() {
        let config = b"{\n  \"cniVersion\": \"1.0.0\",\n  \"name\": \"cnitest\"\n}\n";
        let result = CniResult::from_bytes(br#"{"cniVersion":"1.0.0","interfaces":[{"name":"cni0","mac":"26:6b:ba:f3:a9:78"},{"name":"veth982f40ae","mac":"ea:02:e8:00:17:f3"},{"name":"eth0","mac":"c2:8f:25:13:08:5c","sandbox":"/var/run/netns/cnitest-t1"}],"ips":[{"interface":2,"address":"10.99.0.2/16","gateway":"10.99.0.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{}}"#).unwrap();
        let mut rt = rt();
        rt.capability_args = json!({"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}).as_object().unwrap().clone();
        let got = String::from_utf8(Cache::encode(&result, config, "cnitest", &rt)).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(config);
        let want = format!(
            r#"{{"kind":"cniCacheV1","containerId":"cnitool-87d9f92c739b6acee406","config":"{b64}","ifName":"eth0","networkName":"cnitest","netns":"/var/run/netns/cnitest-t1","capabilityArgs":{{"portMappings":[{{"containerPort":80,"hostPort":8080,"protocol":"tcp"}}]}},"result":{{"cniVersion":"1.0.0","interfaces":[{{"mac":"26:6b:ba:f3:a9:78","name":"cni0"}},{{"mac":"ea:02:e8:00:17:f3","name":"veth982f40ae"}},{{"mac":"c2:8f:25:13:08:5c","name":"eth0","sandbox":"/var/run/netns/cnitest-t1"}}],"ips":[{{"address":"10.99.0.2/16","gateway":"10.99.0.1","interface":2}}],"routes":[{{"dst":"0.0.0.0/0"}}]}}}}"#
        );
        assert_eq!(got, want);
    }

    #[test]
    fn write_read_delete() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::new(d.path().join("cache"));
        let r = CniResult::from_bytes(br#"{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.0.0.2/24"}]}"#).unwrap();
        let mut rt = rt();
        rt.args = vec![("A".into(), "b&c".into())];
        cache.write(&r, b"{}", "net", &rt).unwrap();
        let path = cache.file_path("net", &rt.container_id, "eth0").unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""cniArgs":[["A","b\u0026c"]]"#), "{text}");
        assert!(!text.ends_with('\n'));
        // read back, converted
        let back = cache.result("net", "1.0.0", &rt).unwrap().unwrap();
        assert_eq!(back.version(), "1.0.0");
        assert_eq!(String::from_utf8(back.to_json()).unwrap(), r#"{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]}"#);
        // no temp files left behind
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        let atts = cache.attachments("").unwrap();
        assert_eq!(atts.len(), 1);
        assert_eq!(atts[0].cni_args, vec![("A".to_string(), "b&c".to_string())]);
        cache.delete("net", &rt).unwrap();
        cache.delete("net", &rt).unwrap();
        assert!(cache.result("net", "1.0.0", &rt).unwrap().is_none());
    }

    #[test]
    fn legacy_and_corrupt_files() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::new(d.path());
        let rt = rt();
        let path = cache.file_path("net", &rt.container_id, "eth0").unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, br#"{"cniVersion":"0.3.1","ips":[{"version":"4","address":"10.0.0.2/24"}]}"#).unwrap();
        assert_eq!(cache.result("net", "0.3.1", &rt).unwrap().unwrap().version(), "0.3.1");
        std::fs::write(&path, b"").unwrap();
        assert!(cache.result("net", "1.0.0", &rt).unwrap_err().to_string().starts_with("decoding version from network config"));
        assert!(cache.attachments("").unwrap().is_empty(), "empty file is not an attachment");
        std::fs::write(&path, br#"{"kind":"cniCacheV1","result":{"cniVersion":"1.0.0"}}"#).unwrap();
        assert!(cache.attachments("").unwrap().is_empty(), "entry without names is skipped");
        assert!(cache
            .result("net", "0.2.0", &rt)
            .unwrap_err()
            .to_string()
            .starts_with("failed to convert cached result to config version \"0.2.0\""));
    }

    #[test]
    fn attachment_filter() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::new(d.path());
        let r = CniResult::from_bytes(br#"{"cniVersion":"1.0.0"}"#).unwrap();
        for (cid, ifn) in [("c1", "eth0"), ("c1", "eth1"), ("c2", "eth0"), ("c1x", "eth0")] {
            let rt = RuntimeConf { container_id: cid.into(), ifname: ifn.into(), ..Default::default() };
            cache.write(&r, b"{}", "net", &rt).unwrap();
        }
        assert_eq!(cache.attachments("").unwrap().len(), 4);
        let c1: Vec<String> = cache.attachments("c1").unwrap().into_iter().map(|a| a.ifname).collect();
        assert_eq!(c1, vec!["eth0", "eth1"]);
        assert!(cache.file_path("", "c", "eth0").unwrap_err().to_string().starts_with("cache file path requires network name (\"\")"));
    }
}

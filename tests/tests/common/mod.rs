//! Fixtures for driving real plugin processes from the runtime library.
#![allow(dead_code)]

pub mod chain;

use cni_runtime::CniConfig;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A throwaway plugin directory and cache directory.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        Fixture { dir }
    }

    pub fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Installs the noop test plugin under `name` with this control (`Value::Null`: defaults).
    pub fn plugin(&self, name: &str, control: Value) -> &Self {
        let link = self.bin().join(name);
        if !link.exists() {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_noop"), &link).unwrap();
        }
        self.control(name, control);
        self
    }

    /// Replaces a plugin's control file.
    pub fn control(&self, name: &str, control: Value) {
        let p = self.bin().join(format!("{name}.control"));
        if control.is_null() {
            let _ = std::fs::remove_file(p);
        } else {
            std::fs::write(p, control.to_string()).unwrap();
        }
    }

    /// Every call a plugin recorded, in order.
    pub fn calls(&self, name: &str) -> Vec<Value> {
        read_log(&self.bin().join(format!("{name}.log")))
    }

    pub fn clear_calls(&self, name: &str) {
        let _ = std::fs::remove_file(self.bin().join(format!("{name}.log")));
    }

    pub fn cni(&self) -> CniConfig {
        CniConfig::new(vec![self.bin()]).with_cache_dir(self.cache_dir())
    }

    pub fn cache_file(&self, net: &str, cid: &str, ifname: &str) -> PathBuf {
        self.cache_dir().join("results").join(format!("{net}-{cid}-{ifname}"))
    }
}

pub fn read_log(p: &Path) -> Vec<Value> {
    match std::fs::read_to_string(p) {
        Ok(s) => s.lines().map(|l| serde_json::from_str(l).unwrap()).collect(),
        Err(_) => Vec::new(),
    }
}

/// The commands of a call log.
pub fn commands(calls: &[Value]) -> Vec<String> {
    calls.iter().map(|c| c["command"].as_str().unwrap().to_string()).collect()
}

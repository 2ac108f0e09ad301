//! sysctl under `/proc/sys`, for the host or inside a namespace (no `sysctl` process).
//!
//! `/proc/sys/net` resolves against the namespace of the thread that opens the file, so a
//! namespace's values are written by opening the file inside it.

use crate::error::{Error, Result};
use crate::netns::NetNs;
use std::io::Write;
use std::path::PathBuf;

/// `/proc/sys/` + the key with dots as slashes (`net.ipv4.ip_forward`). Keys that already use
/// slashes are taken as they are, which keeps interface names with dots intact
/// (`net/ipv4/conf/eth0.100/forwarding`).
pub fn path(key: &str) -> PathBuf {
    let rel = if key.contains('/') { key.to_string() } else { key.replace('.', "/") };
    PathBuf::from("/proc/sys").join(rel.trim_start_matches('/'))
}

/// Reads a value (trailing newline removed).
pub fn read(key: &str) -> Result<String> {
    let p = path(key);
    std::fs::read_to_string(&p).map(|s| s.trim_end_matches('\n').to_string()).map_err(|e| Error::io(format!("reading sysctl {key}"), e))
}

/// Writes a value.
pub fn write(key: &str, value: &str) -> Result<()> {
    #[cfg(feature = "fuzzing")]
    crate::fuzzing::refuse(&format!("setting sysctl {key}"))?;
    let p = path(key);
    let mut f = std::fs::OpenOptions::new().write(true).open(&p).map_err(|e| Error::io(format!("opening sysctl {key}"), e))?;
    f.write_all(value.as_bytes()).map_err(|e| Error::io(format!("setting sysctl {key} to {value}"), e))
}

/// Writes a value inside a namespace.
pub fn write_in(ns: &NetNs, key: &str, value: &str) -> Result<()> {
    ns.run(|| write(key, value))?
}

/// Reads a value inside a namespace.
pub fn read_in(ns: &NetNs, key: &str) -> Result<String> {
    ns.run(|| read(key))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(path("net.ipv4.ip_forward"), PathBuf::from("/proc/sys/net/ipv4/ip_forward"));
        assert_eq!(path("net/ipv4/conf/eth0.100/forwarding"), PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/forwarding"));
        assert!(read("kernel.ostype").unwrap().starts_with("Linux"));
        assert!(read("net.nonexistent").unwrap_err().is_not_found());
    }
}

//! tuning: sets sysctls and link attributes of an interface an earlier plugin made, and puts the
//! originals back on DEL. A chained ("meta") plugin: it needs a prevResult and returns it.
//!
//! Keys (as the reference): `sysctl` (object of key → value), `mac`, `promisc`, `mtu`,
//! `txQLen`, `allmulti`, `dataDir` (`/run/cni/tuning`). Sources, in Go's order, each later one
//! winning: the config's keys; `CNI_ARGS` `MAC=` (the only `CNI_ARGS` key; others need
//! `IgnoreUnknown`); `runtimeConfig.mac` (capability `mac`); `args.cni.*` (`sysctl` merged key by
//! key, `mac`, `promisc`, `mtu`, `allmulti`, `txQLen`). So `args.cni.mac` beats
//! `runtimeConfig.mac`, which beats `CNI_ARGS` `MAC=`, which beats `mac` (bridge's order differs).
//!
//! Sysctl keys: every `.` becomes `/`, then the first `IFNAME` becomes `CNI_IFNAME`; the path,
//! cleaned (`..` resolved), must lie under `/proc/sys/net/`. A key given twice in the `sysctl`
//! object, two keys naming the same file with different values, and — when
//! `/etc/cni/tuning/allowlist.conf` exists — a key that matches none of its lines (one
//! unanchored regex per line) are errors.
//!
//! ADD: everything is validated first (keys, allow-list, MAC, MTU, txQLen, prevResult), then the
//! current values are read inside the container's namespace (a missing sysctl or link fails
//! here, before any change), the originals are saved to `<dataDir>/<containerID>_<ifname>.json`
//! (Go's format, written atomically; rcni adds the sysctls' originals under `"sysctl"`, which Go
//! ignores; an existing backup from an earlier ADD keeps its older originals), then the sysctls
//! are written and MAC, promisc (only turned on), MTU, allmulti and txQLen set on `CNI_IFNAME`.
//! A failure puts back what this ADD changed and the backup file as it was. The result is the
//! prevResult with the interface's `mac` updated when the MAC was set.
//!
//! DEL: restores from the backup file MTU, MAC, promisc, allmulti and txQLen (when the link is
//! still there) and the sysctls (rcni only: Go never restores them), then removes the file.
//! It always succeeds: no netns, no link, no file or a corrupt one are all fine.
//! CHECK: each sysctl, MAC, promisc (on and off), MTU, allmulti and txQLen match the config.
//!
//! The backup also records its attachment under rcni-only keys `network`, `containerID` and
//! `ifname` (Go ignores them). GC removes the backups in `dataDir` recorded for this network
//! whose attachment is not in `cni.dev/valid-attachments`, restoring nothing (the namespace is
//! gone); files without the keys (Go's) are never touched, nor is anything without the list.

use cni_plugin::{CmdArgs, Failures, Plugin};
use cni_types::error::code;
use cni_types::{CniError, CniResult, NetConf};
use netkit::netlink::{format_mac, parse_mac, Link};
use netkit::{sysctl, NetNs, Netlink};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::path::{Path, PathBuf};

pub struct Tuning;

const DEFAULT_DATA_DIR: &str = "/run/cni/tuning";
const ALLOWLIST: &str = "/etc/cni/tuning/allowlist.conf";

/// A JSON object of sysctl key → value, in document order. Repeated keys are remembered (not
/// rejected while decoding) so that the caller can answer with an invalid-config error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct SysctlMap {
    entries: Vec<(String, String)>,
    duplicate: Option<String>,
}

impl SysctlMap {
    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Sets `key`, in place when it is already there.
    fn set(&mut self, key: &str, value: &str) {
        match self.entries.iter_mut().find(|(k, _)| k == key) {
            Some(e) => e.1 = value.to_string(),
            None => self.entries.push((key.to_string(), value.to_string())),
        }
    }
}

impl<'de> Deserialize<'de> for SysctlMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SysctlMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of sysctl names to string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<SysctlMap, A::Error> {
                let mut out = SysctlMap::default();
                // a null value is Go's zero value, ""
                while let Some((k, v)) = m.next_entry::<String, Option<String>>()? {
                    if out.get(&k).is_some() {
                        out.duplicate.get_or_insert(k);
                        continue;
                    }
                    out.entries.push((k, v.unwrap_or_default()));
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

impl Serialize for SysctlMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[derive(Debug, Deserialize)]
struct Conf {
    #[serde(flatten)]
    net: NetConf,
    #[serde(rename = "dataDir", default)]
    data_dir: Option<String>,
    #[serde(default)]
    sysctl: Option<SysctlMap>,
    #[serde(default)]
    mac: Option<String>,
    #[serde(default)]
    promisc: Option<bool>,
    #[serde(default)]
    mtu: Option<i64>,
    #[serde(rename = "txQLen", default)]
    txqlen: Option<i64>,
    #[serde(default)]
    allmulti: Option<bool>,
    /// Read here rather than through `NetConf` so that `args.cni.sysctl` keeps its order and
    /// its repeated keys are seen.
    #[serde(default)]
    args: Option<ArgsSection>,
}

#[derive(Debug, Default, Deserialize)]
struct ArgsSection {
    #[serde(default)]
    cni: Option<ArgsCni>,
}

/// `args.cni`: the per-attachment overrides.
#[derive(Debug, Default, Deserialize)]
struct ArgsCni {
    #[serde(default)]
    sysctl: Option<SysctlMap>,
    #[serde(default)]
    mac: Option<String>,
    #[serde(default)]
    promisc: Option<bool>,
    #[serde(default)]
    mtu: Option<i64>,
    #[serde(default)]
    allmulti: Option<bool>,
    #[serde(rename = "txQLen", default)]
    txqlen: Option<i64>,
}

/// One sysctl to set: the key as configured, and its file relative to `/proc/sys`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sysctl {
    key: String,
    path: String,
    value: String,
}

/// The validated configuration.
#[derive(Debug)]
struct Plan {
    network: String,
    data_dir: PathBuf,
    sysctls: Vec<Sysctl>,
    /// Parsed, and as given (the result carries the text as given, as in Go).
    mac: Option<([u8; 6], String)>,
    promisc: bool,
    mtu: Option<u32>,
    allmulti: Option<bool>,
    txqlen: Option<u32>,
    prev: CniResult,
}

impl Plan {
    fn changes_link(&self) -> bool {
        self.mac.is_some() || self.promisc || self.mtu.is_some() || self.allmulti.is_some() || self.txqlen.is_some()
    }
}

/// The originals saved for DEL: Go's `configToRestore` (same keys; Go's `json.MarshalIndent`
/// with a one-space indent), plus rcni's `sysctl` (file relative to `/proc/sys` → value).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Backup {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    promisc: Option<bool>,
    #[serde(default, skip_serializing_if = "is_zero")]
    mtu: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allmulti: Option<bool>,
    #[serde(rename = "txQLen", default, skip_serializing_if = "Option::is_none")]
    txqlen: Option<u32>,
    #[serde(default, skip_serializing_if = "SysctlMap::is_empty")]
    sysctl: SysctlMap,
    /// rcni's record of the attachment the file belongs to, for GC (Go writes none and ignores
    /// them; a file without them is never collected).
    #[serde(default, skip_serializing_if = "Option::is_none", flatten)]
    owner: Option<BackupOwner>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct BackupOwner {
    network: String,
    #[serde(rename = "containerID")]
    container_id: String,
    ifname: String,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Backup {
    fn is_empty(&self) -> bool {
        Backup { owner: None, ..self.clone() } == Backup::default()
    }

    fn has_link_attrs(&self) -> bool {
        !self.mac.is_empty() || self.promisc.is_some() || self.mtu != 0 || self.allmulti.is_some() || self.txqlen.is_some()
    }

    /// `self` with `older`'s values where it has them: originals saved by an earlier ADD are the
    /// true originals.
    fn under(mut self, older: Backup) -> Backup {
        if !older.mac.is_empty() {
            self.mac = older.mac;
        }
        if older.mtu != 0 {
            self.mtu = older.mtu;
        }
        self.promisc = older.promisc.or(self.promisc);
        self.allmulti = older.allmulti.or(self.allmulti);
        self.txqlen = older.txqlen.or(self.txqlen);
        let mut sysctl = older.sysctl;
        for (k, v) in self.sysctl.entries {
            if sysctl.get(&k).is_none() {
                sysctl.set(&k, &v);
            }
        }
        self.sysctl = sysctl;
        self
    }

    fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(b" "));
        self.serialize(&mut ser).expect("in-memory JSON serialization");
        out
    }
}

fn invalid(msg: impl Into<String>) -> CniError {
    CniError::invalid_config(msg)
}

/// `rel` (slash-separated, relative to `/proc/sys`) cleaned like Go's `filepath.Join` — empty
/// and `.` parts dropped, `..` taking away the part before — when it stays under
/// `/proc/sys/net/`; `None` otherwise.
fn net_path(rel: &str) -> Option<String> {
    let mut parts = vec!["proc", "sys"];
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    (parts.len() > 3 && parts[..3] == ["proc", "sys", "net"]).then(|| parts[2..].join("/"))
}

/// The file of sysctl `key` for interface `ifname`, relative to `/proc/sys`.
fn resolve(key: &str, ifname: &str) -> Result<String, CniError> {
    let rel = key.replace('.', "/").replacen("IFNAME", ifname, 1);
    net_path(&rel).ok_or_else(|| invalid(format!("invalid net sysctl key: {}", cni_types::gojson::quote(&rel))))
}

/// The allow-list's patterns; `None` when there is no allow-list.
fn read_allowlist(path: &Path) -> Result<Option<Vec<(String, regex::Regex)>>, CniError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CniError::io(format!("reading {}: {e}", path.display()))),
    };
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let re = regex::Regex::new(line).map_err(|e| CniError::internal(format!("{}: invalid pattern {line:?}: {e}", path.display())))?;
        out.push((line.to_string(), re));
    }
    Ok(Some(out))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verb {
    Add,
    Check,
}

fn load(args: &CmdArgs, verb: Verb) -> Result<Plan, CniError> {
    let c: Conf = args.conf()?;
    let mut sysctls = c.sysctl.unwrap_or_default();
    if sysctls.duplicate.is_some() {
        return Err(invalid("duplicated sysctl keys are not allowed"));
    }
    let env = args.cni_args(&["MAC"])?;
    let a = c.args.and_then(|a| a.cni).unwrap_or_default();

    // Go's order: config, CNI_ARGS MAC, runtimeConfig.mac, args.cni
    let mut mac = c.mac.filter(|m| !m.is_empty()).map(|m| (m, code::INVALID_NETWORK_CONFIG));
    if let Some(m) = env.get("MAC").filter(|m| !m.is_empty()) {
        mac = Some((m.to_string(), code::INVALID_ENVIRONMENT_VARIABLES));
    }
    if !c.net.runtime_config.mac.is_empty() {
        mac = Some((c.net.runtime_config.mac.clone(), code::INVALID_NETWORK_CONFIG));
    }
    let mut promisc = c.promisc.unwrap_or(false);
    let mut mtu = c.mtu.unwrap_or(0);
    let mut allmulti = c.allmulti;
    let mut txqlen = c.txqlen;
    if let Some(s) = &a.sysctl {
        if s.duplicate.is_some() {
            return Err(invalid("duplicated sysctl keys are not allowed"));
        }
        for (k, v) in &s.entries {
            sysctls.set(k, v);
        }
    }
    if let Some(m) = a.mac {
        mac = (!m.is_empty()).then_some((m, code::INVALID_NETWORK_CONFIG));
    }
    promisc = a.promisc.unwrap_or(promisc);
    mtu = a.mtu.unwrap_or(mtu);
    allmulti = a.allmulti.or(allmulti);
    txqlen = a.txqlen.or(txqlen);

    if verb == Verb::Add {
        if let Some(allowed) = read_allowlist(Path::new(ALLOWLIST))? {
            for (key, _) in &sysctls.entries {
                if !allowed.iter().any(|(_, re)| re.is_match(key)) {
                    let list: Vec<&str> = allowed.iter().map(|(l, _)| l.as_str()).collect();
                    return Err(invalid(format!(
                        "Sysctl {key} is not allowed. Only the following sysctls are allowed: [{}]",
                        list.join(" ")
                    )));
                }
            }
        }
    }
    let mut resolved: Vec<Sysctl> = Vec::new();
    for (key, value) in sysctls.entries {
        let path = resolve(&key, &args.ifname)?;
        match resolved.iter().find(|s| s.path == path) {
            Some(s) if s.value == value => {}
            Some(s) => return Err(invalid(format!("sysctl keys {:?} and {key:?} both set /proc/sys/{path}", s.key))),
            None => resolved.push(Sysctl { key, path, value }),
        }
    }
    let mac = match mac {
        Some((m, code)) => Some((parse_mac(&m).ok_or_else(|| CniError::new(code, format!("invalid MAC address {m:?}")))?, m)),
        None => None,
    };
    let mtu = match mtu {
        0 => None,
        m if (1..=i64::from(u32::MAX)).contains(&m) => Some(m as u32),
        m => return Err(invalid(format!("invalid MTU {m}"))),
    };
    let txqlen = match txqlen {
        None => None,
        Some(q) if (0..=i64::from(u32::MAX)).contains(&q) => Some(q as u32),
        Some(q) => return Err(invalid(format!("invalid txQLen {q}"))),
    };
    let data_dir = data_dir(c.data_dir)?;
    let prev = args.prev_result(&c.net)?.ok_or_else(|| invalid("Required prevResult missing"))?;
    Ok(Plan { network: c.net.name.clone(), data_dir, sysctls: resolved, mac, promisc, mtu, allmulti, txqlen, prev })
}

/// What GC reads of the config.
#[derive(Deserialize)]
struct GcConf {
    #[serde(flatten)]
    net: NetConf,
    #[serde(rename = "dataDir", default)]
    data_dir: Option<String>,
}

/// `dataDir`, or its default when absent or empty. A relative one would depend on the runtime's
/// working directory, so ADD refuses it (and DEL and GC find nothing there).
fn data_dir(configured: Option<String>) -> Result<PathBuf, CniError> {
    let d = PathBuf::from(configured.filter(|d| !d.is_empty()).unwrap_or_else(|| DEFAULT_DATA_DIR.into()));
    if d.is_relative() {
        return Err(invalid(format!("dataDir {:?} is not an absolute path", d.display().to_string())));
    }
    Ok(d)
}

fn backup_file(data_dir: &Path, args: &CmdArgs) -> PathBuf {
    data_dir.join(format!("{}_{}.json", args.container_id, args.ifname))
}

fn open_link(nl: &mut Netlink, ifname: &str) -> Result<Link, CniError> {
    nl.link_by_name(ifname).map_err(|e| CniError::internal(format!("failed to get {ifname:?}: {e}")))
}

/// Puts back what `b` records, best effort; returns what could not be restored.
fn restore(ns: &NetNs, ifname: &str, b: &Backup) -> Vec<String> {
    let mut failed = Vec::new();
    if b.has_link_attrs() {
        // a link that is gone has nothing to restore
        if let Ok((mut nl, l)) = Netlink::open_in(ns).and_then(|mut nl| nl.link_by_name(ifname).map(|l| (nl, l))) {
            let mut try_ = |what: &str, r: netkit::Result<()>| {
                if let Err(e) = r {
                    failed.push(format!("failed to restore {what}: {e}"));
                }
            };
            if b.mtu != 0 {
                try_("MTU", nl.set_mtu(l.index, b.mtu));
            }
            if let Some(mac) = parse_mac(&b.mac) {
                try_("MAC address", nl.set_mac(l.index, mac));
            }
            if let Some(on) = b.promisc {
                try_("promiscuous mode", nl.set_promisc(l.index, on));
            }
            if let Some(on) = b.allmulti {
                try_("all-multicast mode", nl.set_allmulti(l.index, on));
            }
            if let Some(q) = b.txqlen {
                try_("txQLen", nl.set_txqlen(l.index, q));
            }
        }
    }
    if !b.sysctl.is_empty() {
        let written = ns.run(|| {
            let mut failed = Vec::new();
            for (path, value) in b.sysctl.entries.iter().rev() {
                // only what ADD could have written (the file is data, not trusted)
                let Some(path) = net_path(path) else { continue };
                match sysctl::write(&path, value) {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {} // e.g. the interface's own sysctls
                    Err(e) => failed.push(format!("failed to restore sysctl {path}: {e}")),
                }
            }
            failed
        });
        match written {
            Ok(f) => failed.extend(f),
            Err(e) => failed.push(e.to_string()),
        }
    }
    failed
}

/// Reads the current values of what `p` changes: the backup of this ADD. Nothing changes here.
fn originals(ns: &NetNs, nl: &mut Option<Netlink>, ifname: &str, p: &Plan) -> Result<(Backup, Option<u32>), CniError> {
    let mut b = Backup::default();
    let mut index = None;
    if let Some(nl) = nl {
        let l = open_link(nl, ifname)?;
        index = Some(l.index);
        if p.mac.is_some() {
            b.mac = l.mac_string();
        }
        if p.promisc {
            b.promisc = Some(l.promisc);
        }
        if p.mtu.is_some() {
            b.mtu = l.mtu;
        }
        if p.allmulti.is_some() {
            b.allmulti = Some(l.allmulti);
        }
        if p.txqlen.is_some() {
            b.txqlen = Some(l.txqlen);
        }
    }
    let read = ns.run(|| -> Result<SysctlMap, CniError> {
        let mut m = SysctlMap::default();
        for s in &p.sysctls {
            match sysctl::read(&s.path) {
                Ok(v) => m.set(&s.path, &v),
                // write-only (e.g. route/flush): it exists, but there is nothing to put back
                Err(e) if e.is_permission_denied() => {}
                Err(e) => return Err(CniError::internal(format!("sysctl {}: {e}", s.key))),
            }
        }
        Ok(m)
    });
    b.sysctl = read??;
    Ok((b, index))
}

/// Applies `p`, recording in `undo` the original of each change made, for a rollback.
fn apply(ns: &NetNs, nl: &mut Option<Netlink>, index: Option<u32>, p: &Plan, orig: &Backup, undo: &mut Backup) -> Result<(), CniError> {
    let wrote = ns.run(|| -> Result<(), CniError> {
        for s in &p.sysctls {
            if let Some(v) = orig.sysctl.get(&s.path) {
                undo.sysctl.set(&s.path, v);
            }
            sysctl::write(&s.path, &s.value).map_err(|e| CniError::internal(format!("sysctl {}: {e}", s.key)))?;
        }
        Ok(())
    });
    wrote??;
    let (Some(nl), Some(i)) = (nl, index) else { return Ok(()) };
    if let Some((mac, _)) = p.mac {
        undo.mac = orig.mac.clone();
        nl.set_mac(i, mac)?;
    }
    if p.promisc {
        undo.promisc = orig.promisc;
        nl.set_promisc(i, true)?;
    }
    if let Some(mtu) = p.mtu {
        undo.mtu = orig.mtu;
        nl.set_mtu(i, mtu)?;
    }
    if let Some(on) = p.allmulti {
        undo.allmulti = orig.allmulti;
        nl.set_allmulti(i, on)?;
    }
    if let Some(q) = p.txqlen {
        undo.txqlen = orig.txqlen;
        nl.set_txqlen(i, q)?;
    }
    Ok(())
}

/// The prevResult with `ifname`'s MAC replaced (Go's `updateResultsMacAddr`).
fn with_mac(mut prev: CniResult, ifname: &str, mac: &str) -> CniResult {
    match &mut prev {
        CniResult::V02(_) => {}
        CniResult::V04(r) => r.interfaces.iter_mut().filter(|i| i.name == ifname).for_each(|i| i.mac = mac.to_string()),
        CniResult::V1(r) => r.interfaces.iter_mut().filter(|i| i.name == ifname).for_each(|i| i.mac = mac.to_string()),
    }
    prev
}

impl Plugin for Tuning {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        let p = load(args, Verb::Add)?;
        let file = backup_file(&p.data_dir, args);
        // the backup's name and its temporary name (`.<name>.tmp`) must fit NAME_MAX: refused
        // before anything changes (a 255-byte container ID is valid, but leaves no room)
        let name_len = file.file_name().map_or(0, |n| n.len());
        if name_len + ".".len() + ".tmp".len() > 255 {
            return Err(CniError::new(
                code::INVALID_ENVIRONMENT_VARIABLES,
                format!("container ID and interface name too long for tuning's backup file name ({name_len} bytes)"),
            ));
        }
        let ns = crate::common::open_netns(&args.netns)?;
        let mut nl = if p.changes_link() { Some(Netlink::open_in(&ns)?) } else { None };
        let (orig, index) = originals(&ns, &mut nl, &args.ifname, &p)?;

        // (a backup is only written, and so only read and restored, when something changes)
        let earlier = if orig.is_empty() { None } else { std::fs::read(&file).ok() };
        if !orig.is_empty() {
            let older = earlier.as_deref().and_then(|b| serde_json::from_slice::<Backup>(b).ok()).unwrap_or_default();
            let owner = BackupOwner { network: p.network.clone(), container_id: args.container_id.clone(), ifname: args.ifname.clone() };
            let backup = Backup { owner: Some(owner), ..orig.clone().under(older) };
            cni_runtime::fsutil::write_atomic(&file, &backup.to_json())
                .map_err(|e| CniError::io(format!("failed to save backup {}: {e}", file.display())))?;
        }
        let mut undo = Backup::default();
        if let Err(mut e) = apply(&ns, &mut nl, index, &p, &orig, &mut undo) {
            drop(nl);
            let failed = restore(&ns, &args.ifname, &undo);
            if !failed.is_empty() {
                e.msg = format!("{}; undoing: {}", e.msg, failed.join("; "));
            }
            if !orig.is_empty() {
                let _ = match &earlier {
                    Some(b) => cni_runtime::fsutil::write_atomic(&file, b),
                    None => cni_runtime::fsutil::remove(&file),
                };
            }
            return Err(e);
        }
        Ok(match &p.mac {
            Some((_, given)) => with_mac(p.prev, &args.ifname, given),
            None => p.prev,
        })
    }

    fn del(&self, args: &CmdArgs) -> Result<(), CniError> {
        // DEL needs only dataDir: the rest of the config may be anything.
        #[derive(Deserialize)]
        struct DelConf {
            #[serde(rename = "dataDir", default)]
            data_dir: Option<String>,
        }
        let c: DelConf = args.conf()?;
        let Ok(data_dir) = data_dir(c.data_dir) else { return Ok(()) };
        let file = backup_file(&data_dir, args);
        let Ok(data) = std::fs::read(&file) else {
            // no backup; perhaps the temporary file of an ADD killed while writing it
            let _ = cni_runtime::fsutil::remove(&file);
            return Ok(());
        };
        if let Ok(b) = serde_json::from_slice::<Backup>(&data) {
            if let Some(ns) = (!args.netns.is_empty()).then(|| NetNs::open(&args.netns).ok()).flatten() {
                // DEL never fails: what cannot be put back stays as it is
                restore(&ns, &args.ifname, &b);
            }
        }
        let _ = cni_runtime::fsutil::remove(&file);
        Ok(())
    }

    fn gc(&self, args: &CmdArgs) -> Result<(), CniError> {
        let c: GcConf = args.conf()?;
        let Some(valid) = args.valid_attachments()? else { return Ok(()) };
        let Ok(data_dir) = data_dir(c.data_dir) else { return Ok(()) };
        let entries = match std::fs::read_dir(&data_dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(CniError::io(format!("tuning GC: listing {}: {e}", data_dir.display()))),
        };
        let mut failures = Failures::new();
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            // backups, and the temporary files of ADDs killed while writing one
            let backup = !name.starts_with('.') && name.ends_with(".json");
            let leftover = name.starts_with('.') && name.ends_with(".json.tmp");
            if !(backup || leftover) {
                continue;
            }
            let Ok(data) = std::fs::read(e.path()) else { continue };
            let Ok(Backup { owner: Some(o), .. }) = serde_json::from_slice::<Backup>(&data) else { continue };
            if o.network == c.net.name && !valid.contains(&(o.container_id, o.ifname)) {
                // the namespace is gone: nothing to restore, only the file to drop
                match std::fs::remove_file(e.path()) {
                    Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                        failures.note::<(), _>(&format!("tuning GC: removing {}", e.path().display()), Err(err));
                    }
                    _ => {}
                }
            }
        }
        failures.finish()
    }

    fn check(&self, args: &CmdArgs) -> Result<(), CniError> {
        let p = load(args, Verb::Check)?;
        p.prev.to_current().map_err(|e| CniError::decoding(e.to_string()))?;
        let ns = crate::common::open_netns(&args.netns)?;
        let current = ns.run(|| p.sysctls.iter().map(|s| sysctl::read(&s.path).map(|v| (s, v))).collect::<Result<Vec<_>, _>>())??;
        for (s, cur) in current {
            // compared field by field: "4096 87380" matches the kernel's "4096\t87380"
            if s.value.split_whitespace().ne(cur.split_whitespace()) {
                return Err(CniError::internal(format!(
                    "Error: Tuning configured value of /proc/sys/{} is {}, current value is {cur}",
                    s.path, s.value
                )));
            }
        }
        let mut nl = Netlink::open_in(&ns)?;
        let ifname = &args.ifname;
        let l = nl.link_by_name(ifname).map_err(|_| CniError::internal(format!("Cannot find container link {ifname}")))?;
        let mismatch = |what: &str, want: &dyn fmt::Display, have: &dyn fmt::Display| {
            Err(CniError::internal(format!("Error: Tuning configured {what} of {ifname} is {want}, current value is {have}")))
        };
        if let Some((mac, given)) = &p.mac {
            if l.mac[..] != mac[..] {
                return mismatch("Ethernet", given, &format_mac(&l.mac));
            }
        }
        if l.promisc != p.promisc {
            return mismatch("promisc", &p.promisc, &l.promisc);
        }
        if let Some(mtu) = p.mtu.filter(|m| *m != l.mtu) {
            return mismatch("MTU", &mtu, &l.mtu);
        }
        if let Some(on) = p.allmulti.filter(|on| *on != l.allmulti) {
            return mismatch("all-multicast mode", &on, &l.allmulti);
        }
        if let Some(q) = p.txqlen.filter(|q| *q != l.txqlen) {
            return mismatch("TxQLen", &q, &l.txqlen);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(stdin: serde_json::Value, cni_args: &str) -> CmdArgs {
        CmdArgs {
            command: "ADD".into(),
            container_id: "c1".into(),
            netns: "/var/run/netns/x".into(),
            ifname: "eth0".into(),
            args: cni_args.into(),
            stdin: stdin.to_string().into_bytes(),
            ..Default::default()
        }
    }

    fn conf(extra: serde_json::Value) -> serde_json::Value {
        let mut c = serde_json::json!({"cniVersion": "1.0.0", "name": "n", "type": "tuning", "prevResult": {"cniVersion": "1.0.0"}});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    #[test]
    fn sysctl_paths() {
        assert_eq!(resolve("net.ipv4.conf.IFNAME.arp_filter", "eth0.100").unwrap(), "net/ipv4/conf/eth0.100/arp_filter");
        assert_eq!(resolve("net/core/somaxconn", "eth0").unwrap(), "net/core/somaxconn");
        assert_eq!(resolve("/net//core/./somaxconn", "eth0").unwrap(), "net/core/somaxconn");
        assert_eq!(resolve("IFNAME.IFNAME", "net").unwrap(), "net/IFNAME");
        // dots become slashes first, so a key cannot spell `..` itself
        assert_eq!(resolve("net/../kernel/ostype", "eth0").unwrap(), "net/kernel/ostype");
        for bad in ["kernel.ostype", "net", "net.", "/proc/sys/net/core/somaxconn", "IFNAME/x"] {
            assert_eq!(resolve(bad, "eth0").unwrap_err().code, code::INVALID_NETWORK_CONFIG, "{bad}");
        }
        assert_eq!(resolve("IFNAME/core/somaxconn", "..").unwrap_err().code, code::INVALID_NETWORK_CONFIG);
        assert_eq!(net_path("net/ipv4/../../../etc/passwd"), None);
    }

    #[test]
    fn a_relative_data_dir_is_refused() {
        let e = load(&call(conf(serde_json::json!({"dataDir": "backups"})), ""), Verb::Add).err().expect("refused");
        assert_eq!((e.code, e.msg.as_str()), (code::INVALID_NETWORK_CONFIG, r#"dataDir "backups" is not an absolute path"#));
        assert!(load(&call(conf(serde_json::json!({"dataDir": "/run/x"})), ""), Verb::Add).is_ok());
    }

    #[test]
    fn precedence_follows_go() {
        let mac = |c: serde_json::Value, env: &str| load(&call(c, env), Verb::Check).unwrap().mac.map(|m| m.1);
        let all = conf(serde_json::json!({"mac": "02:00:00:00:00:01", "runtimeConfig": {"mac": "02:00:00:00:00:03"},
            "args": {"cni": {"mac": "02:00:00:00:00:04"}}}));
        assert_eq!(mac(all.clone(), "MAC=02:00:00:00:00:02").as_deref(), Some("02:00:00:00:00:04"));
        let mut no_args = all.clone();
        no_args.as_object_mut().unwrap().remove("args");
        assert_eq!(mac(no_args.clone(), "MAC=02:00:00:00:00:02").as_deref(), Some("02:00:00:00:00:03"));
        no_args.as_object_mut().unwrap().remove("runtimeConfig");
        assert_eq!(mac(no_args.clone(), "MAC=02:00:00:00:00:02").as_deref(), Some("02:00:00:00:00:02"));
        assert_eq!(mac(no_args, "").as_deref(), Some("02:00:00:00:00:01"));

        let c = conf(
            serde_json::json!({"mtu": 1400, "promisc": true, "txQLen": 10, "sysctl": {"net.core.somaxconn": "1", "net.ipv4.ip_forward": "0"},
            "args": {"cni": {"mtu": 1300, "promisc": false, "allmulti": true, "txQLen": 0, "sysctl": {"net.core.somaxconn": "2"}}}}),
        );
        let p = load(&call(c, ""), Verb::Check).unwrap();
        assert_eq!((p.mtu, p.promisc, p.allmulti, p.txqlen), (Some(1300), false, Some(true), Some(0)));
        let s: Vec<(&str, &str)> = p.sysctls.iter().map(|s| (s.path.as_str(), s.value.as_str())).collect();
        assert_eq!(s, [("net/core/somaxconn", "2"), ("net/ipv4/ip_forward", "0")]);
    }

    #[test]
    fn rejects() {
        let err = |c: serde_json::Value, env: &str| load(&call(c, env), Verb::Check).unwrap_err();
        let dup = r#"{"cniVersion":"1.0.0","name":"n","type":"tuning","prevResult":{},"sysctl":{"net.core.somaxconn":"1","net.core.somaxconn":"2"}}"#;
        let mut a = call(serde_json::Value::Null, "");
        a.stdin = dup.as_bytes().to_vec();
        let e = load(&a, Verb::Check).unwrap_err();
        assert_eq!((e.code, e.msg.as_str()), (7, "duplicated sysctl keys are not allowed"));
        let e = err(conf(serde_json::json!({"sysctl": {"net.core.somaxconn": "1", "net/core/somaxconn": "2"}})), "");
        assert_eq!(e.code, 7, "{e:?}");
        assert_eq!(err(conf(serde_json::json!({"sysctl": {"kernel.ostype": "x"}})), "").code, 7);
        assert_eq!(err(conf(serde_json::json!({"mac": "nope"})), "").code, 7);
        assert_eq!(err(conf(serde_json::json!({})), "MAC=nope").code, 4);
        assert_eq!(err(conf(serde_json::json!({})), "FOO=1").code, 4);
        assert_eq!(err(conf(serde_json::json!({"mtu": -1})), "").code, 7);
        assert_eq!(err(conf(serde_json::json!({"txQLen": -1})), "").code, 7);
        let mut no_prev = conf(serde_json::json!({}));
        no_prev.as_object_mut().unwrap().remove("prevResult");
        let e = err(no_prev, "");
        assert_eq!((e.code, e.msg.as_str()), (7, "Required prevResult missing"));
        // a winning valid source hides an invalid losing one, as in Go
        assert!(load(&call(conf(serde_json::json!({"runtimeConfig": {"mac": "02:00:00:00:00:09"}})), "MAC=nope"), Verb::Check).is_ok());
    }

    #[test]
    fn backup_format_and_merge() {
        let b = Backup { mac: "02:00:00:00:00:01".into(), mtu: 1500, promisc: Some(false), ..Default::default() };
        assert_eq!(String::from_utf8(b.to_json()).unwrap(), "{\n \"mac\": \"02:00:00:00:00:01\",\n \"promisc\": false,\n \"mtu\": 1500\n}");
        let older: Backup =
            serde_json::from_str(r#"{"mtu": 9000, "allmulti": true, "sysctl": {"net/core/somaxconn": "4096"}, "unknown": 1}"#).unwrap();
        let mut newer = b.clone();
        newer.sysctl.set("net/core/somaxconn", "10");
        newer.sysctl.set("net/ipv4/ip_forward", "0");
        let m = newer.under(older);
        assert_eq!((m.mtu, m.allmulti, m.mac.as_str()), (9000, Some(true), "02:00:00:00:00:01"));
        assert_eq!(m.sysctl.entries, [("net/core/somaxconn".to_string(), "4096".to_string()), ("net/ipv4/ip_forward".into(), "0".into())]);
    }

    #[test]
    fn backups_record_their_attachment_for_gc() {
        let o = BackupOwner { network: "n".into(), container_id: "c1".into(), ifname: "eth0".into() };
        let b = Backup { mtu: 1500, owner: Some(o.clone()), ..Default::default() };
        assert_eq!(
            String::from_utf8(b.to_json()).unwrap(),
            "{\n \"mtu\": 1500,\n \"network\": \"n\",\n \"containerID\": \"c1\",\n \"ifname\": \"eth0\"\n}"
        );
        assert_eq!(serde_json::from_slice::<Backup>(&b.to_json()).unwrap(), b);
        let go: Backup = serde_json::from_str(r#"{"mtu": 1500, "promisc": false}"#).unwrap();
        assert_eq!(go.owner, None, "Go's backups carry no owner");
        assert!(Backup { owner: Some(o), ..Default::default() }.is_empty(), "an owner alone is no backup");
    }
}

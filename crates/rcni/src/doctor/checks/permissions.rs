//! Modes more open than docs/state-files.md says: config files and directories (anyone could
//! define a network), plugin directories and plugins (they run as root), the result cache,
//! host-local stores and rcni's locks and markers under /run (anyone could fake or free state,
//! or read which containers hold which addresses).
//!
//! Writable by every user is an error; writable by the group, or private state (0600 files)
//! readable by others, a warning. Directories of private state are judged by their write bits
//! only: rcni makes them 0700, Go's host-local 0755, and an existing directory keeps its mode.

use super::{finding, id, Finding};
use crate::doctor::facts::{Facts, PathMode, PathRole};
use crate::doctor::Severity::{self, Error, Warning};
use std::collections::BTreeMap;
use std::path::Path;

fn role_text(r: PathRole) -> &'static str {
    match r {
        PathRole::ConfDir => "the network config directory: it decides what runs for every container",
        PathRole::ConfFile => "a network config: it decides what runs for the network's containers",
        PathRole::PluginDir => "a plugin directory: its plugins run as root",
        PathRole::Plugin => "a plugin, which runs as root",
        PathRole::Cache => "the result cache, which names every container, its namespace and addresses",
        PathRole::Store => "a host-local store, which names every container and its addresses",
        PathRole::RunState => "rcni's locks and markers",
    }
}

/// The most a path may allow (docs/state-files.md).
fn expected(m: &PathMode) -> u32 {
    let lock = m.path.file_name().is_some_and(|n| n == "lock"); // an empty flock file: its mode tells nothing
    match (m.role, m.is_dir) {
        (PathRole::ConfFile, false) => 0o644,
        (PathRole::ConfDir | PathRole::ConfFile | PathRole::PluginDir | PathRole::Plugin, _) => 0o755,
        (PathRole::Cache | PathRole::Store | PathRole::RunState, true) => 0o755,
        (_, false) if lock => 0o644,
        (PathRole::Cache | PathRole::Store | PathRole::RunState, false) => 0o600,
    }
}

/// How a path is too open, and the chmod that takes away exactly what it allows beyond
/// [`expected`] (for directories of private state, their write bits only).
fn problem(m: &PathMode) -> Option<(Severity, &'static str, String)> {
    let mut extra = m.mode & 0o077 & !expected(m);
    if m.is_dir {
        extra &= 0o022;
    }
    let how = if extra & 0o002 != 0 {
        (Error, "writable by every user")
    } else if extra & 0o020 != 0 {
        (Warning, "writable by its group")
    } else if extra != 0 {
        (Warning, "readable by other users")
    } else {
        return None;
    };
    let letters = |bits: u32| [(4, 'r'), (2, 'w'), (1, 'x')].iter().filter(|(b, _)| bits & b != 0).map(|(_, c)| *c).collect::<String>();
    let (g, o) = (letters(extra >> 3), letters(extra & 7));
    let chmod = if g == o {
        format!("go-{g}")
    } else {
        [("g", g), ("o", o)].iter().filter(|(_, l)| !l.is_empty()).map(|(c, l)| format!("{c}-{l}")).collect::<Vec<_>>().join(",")
    };
    Some((how.0, how.1, chmod))
}

pub fn modes(f: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    // directories one by one; files of one directory together (a store has one per lease)
    let mut files: BTreeMap<(Severity, &Path, PathRole, String), Vec<(&PathMode, &str)>> = BTreeMap::new();
    for m in &f.modes {
        let Some((severity, how, chmod)) = problem(m) else { continue };
        if m.is_dir {
            out.push(finding(
                severity,
                id::PERMISSIONS,
                format!("{} (mode {:04o}) is {how}; it is {}", m.path.display(), m.mode & 0o7777, role_text(m.role)),
                Some(format!("chmod {chmod} {}", m.path.display())),
            ));
        } else {
            files.entry((severity, m.path.parent().unwrap_or(Path::new("/")), m.role, chmod)).or_default().push((m, how));
        }
    }
    for ((severity, dir, role, chmod), list) in files {
        let paths = list.iter().map(|(m, _)| m.path.display().to_string()).collect::<Vec<_>>().join(" ");
        let fix = format!("chmod {chmod} {paths}");
        let (first, how) = list[0];
        let what = match list.len() {
            1 => format!(
                "{} (mode {:04o}, at most {:04o}) is {how}; it is {}",
                first.path.display(),
                first.mode & 0o7777,
                expected(first),
                role_text(role)
            ),
            n => format!(
                "{n} files in {} are {how} (e.g. {}, mode {:04o}, at most {:04o}); each is {}",
                dir.display(),
                first.path.display(),
                first.mode & 0o7777,
                expected(first),
                role_text(role)
            ),
        };
        out.push(finding(severity, id::PERMISSIONS, what, Some(fix)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn m(path: &str, mode: u32, is_dir: bool, role: PathRole) -> PathMode {
        PathMode { path: path.into(), mode, is_dir, role }
    }

    #[test]
    fn more_open_than_documented() {
        let mut f = node(vec![]);
        f.modes = vec![
            m("/etc/cni/net.d", 0o755, true, PathRole::ConfDir),
            m("/etc/cni/net.d/a.conflist", 0o666, false, PathRole::ConfFile),
            m("/etc/cni/net.d/b.conflist", 0o644, false, PathRole::ConfFile),
            m("/opt/cni/bin/bridge", 0o775, false, PathRole::Plugin),
            m("/opt/cni/bin/ptp", 0o755, false, PathRole::Plugin),
            m("/var/lib/cni/networks/a", 0o1777, true, PathRole::Store),
            m("/var/lib/cni/networks/a/10.1.0.2", 0o646, false, PathRole::Store),
            m("/var/lib/cni/networks/a/10.1.0.3", 0o606, false, PathRole::Store),
            m("/var/lib/cni/networks/a/10.1.0.5", 0o606, false, PathRole::Store),
            m("/var/lib/cni/networks/a/10.1.0.4", 0o600, false, PathRole::Store),
            m("/var/lib/cni/networks/a/lock", 0o644, false, PathRole::Store),
            m("/var/lib/cni/networks/b", 0o755, true, PathRole::Store),
            m("/var/lib/cni/networks/b/10.1.1.2", 0o644, false, PathRole::Store),
            m("/var/lib/cni/results", 0o700, true, PathRole::Cache),
        ];
        let r = modes(&f);
        let got: Vec<(Severity, &str, &str)> = r.iter().map(|x| (x.severity, x.what.as_str(), x.fix.as_deref().unwrap())).collect();
        assert_eq!(
            got,
            [
                (
                    Error,
                    "/var/lib/cni/networks/a (mode 1777) is writable by every user; it is a host-local store, which names every container and its addresses",
                    "chmod go-w /var/lib/cni/networks/a"
                ),
                (
                    Error,
                    "/etc/cni/net.d/a.conflist (mode 0666, at most 0644) is writable by every user; it is a network config: it decides what runs for the network's containers",
                    "chmod go-w /etc/cni/net.d/a.conflist"
                ),
                (
                    Error,
                    "/var/lib/cni/networks/a/10.1.0.2 (mode 0646, at most 0600) is writable by every user; it is a host-local store, which names every container and its addresses",
                    "chmod g-r,o-rw /var/lib/cni/networks/a/10.1.0.2"
                ),
                (
                    Error,
                    "2 files in /var/lib/cni/networks/a are writable by every user (e.g. /var/lib/cni/networks/a/10.1.0.3, mode 0606, at most 0600); each is a host-local store, which names every container and its addresses",
                    "chmod o-rw /var/lib/cni/networks/a/10.1.0.3 /var/lib/cni/networks/a/10.1.0.5"
                ),
                (
                    Warning,
                    "/opt/cni/bin/bridge (mode 0775, at most 0755) is writable by its group; it is a plugin, which runs as root",
                    "chmod g-w /opt/cni/bin/bridge"
                ),
                (
                    Warning,
                    "/var/lib/cni/networks/b/10.1.1.2 (mode 0644, at most 0600) is readable by other users; it is a host-local store, which names every container and its addresses",
                    "chmod go-r /var/lib/cni/networks/b/10.1.1.2"
                ),
            ]
        );
        assert!(r.iter().all(|x| x.check == "permissions"));
    }
}

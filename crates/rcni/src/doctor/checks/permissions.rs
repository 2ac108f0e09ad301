//! Files and directories every user can write: config files and directories (anyone could
//! define a network), plugin directories and plugins (they run as root), the result cache,
//! host-local stores and rcni's locks and markers under /run (anyone could fake or free state).

use super::{finding, id, Finding};
use crate::doctor::facts::{Facts, PathMode, PathRole};
use crate::doctor::Severity::Error;
use std::collections::BTreeMap;
use std::path::Path;

fn role_text(r: PathRole) -> &'static str {
    match r {
        PathRole::ConfDir => "the network config directory: any user can add or change networks",
        PathRole::ConfFile => "a network config: any user can change what runs for it",
        PathRole::PluginDir => "a plugin directory: any user can replace plugins, which run as root",
        PathRole::Plugin => "a plugin, which runs as root: any user can replace it",
        PathRole::Cache => "the result cache: any user can forge or remove attachments",
        PathRole::Store => "a host-local store: any user can take or free addresses",
        PathRole::RunState => "rcni's locks and markers: any user can block or fake them",
    }
}

pub fn modes(f: &Facts) -> Vec<Finding> {
    let open: Vec<&PathMode> = f.modes.iter().filter(|m| m.mode & 0o002 != 0).collect();
    let mut out = Vec::new();
    // directories one by one; files of one directory together (a store has one per lease)
    let mut files: BTreeMap<(&Path, PathRole), Vec<&PathMode>> = BTreeMap::new();
    for m in open {
        if m.is_dir {
            out.push(finding(
                Error,
                id::PERMISSIONS,
                format!("{} (mode {:04o}) is writable by every user; it is {}", m.path.display(), m.mode & 0o7777, role_text(m.role)),
                Some(format!("chmod o-w {}", m.path.display())),
            ));
        } else {
            files.entry((m.path.parent().unwrap_or(Path::new("/")), m.role)).or_default().push(m);
        }
    }
    for ((dir, role), list) in files {
        let (what, fix) = match list.as_slice() {
            [one] => (
                format!("{} (mode {:04o}) is writable by every user; it is {}", one.path.display(), one.mode & 0o7777, role_text(role)),
                format!("chmod o-w {}", one.path.display()),
            ),
            many => (
                format!(
                    "{} files in {} are writable by every user (e.g. {}); each is {}",
                    many.len(),
                    dir.display(),
                    many[0].path.display(),
                    role_text(role)
                ),
                format!("chmod o-w {}", many.iter().map(|m| m.path.display().to_string()).collect::<Vec<_>>().join(" ")),
            ),
        };
        out.push(finding(Error, id::PERMISSIONS, what, Some(fix)));
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
    fn world_writable() {
        let mut f = node(vec![]);
        f.modes = vec![
            m("/etc/cni/net.d", 0o755, true, PathRole::ConfDir),
            m("/etc/cni/net.d/a.conflist", 0o666, false, PathRole::ConfFile),
            m("/etc/cni/net.d/b.conflist", 0o644, false, PathRole::ConfFile),
            m("/var/lib/cni/networks/a", 0o1777, true, PathRole::Store),
            m("/var/lib/cni/networks/a/10.1.0.2", 0o646, false, PathRole::Store),
            m("/var/lib/cni/networks/a/10.1.0.3", 0o606, false, PathRole::Store),
            m("/opt/cni/bin/bridge", 0o775, false, PathRole::Plugin),
        ];
        let r = modes(&f);
        let got: Vec<(&str, &str)> = r.iter().map(|x| (x.what.as_str(), x.fix.as_deref().unwrap())).collect();
        assert_eq!(
            got,
            [
                (
                    "/var/lib/cni/networks/a (mode 1777) is writable by every user; it is a host-local store: any user can take or free addresses",
                    "chmod o-w /var/lib/cni/networks/a"
                ),
                (
                    "/etc/cni/net.d/a.conflist (mode 0666) is writable by every user; it is a network config: any user can change what runs for it",
                    "chmod o-w /etc/cni/net.d/a.conflist"
                ),
                (
                    "2 files in /var/lib/cni/networks/a are writable by every user (e.g. /var/lib/cni/networks/a/10.1.0.2); each is a host-local store: any user can take or free addresses",
                    "chmod o-w /var/lib/cni/networks/a/10.1.0.2 /var/lib/cni/networks/a/10.1.0.3"
                ),
            ]
        );
        assert!(r.iter().all(|x| x.severity == Error && x.check == "permissions"));
    }
}

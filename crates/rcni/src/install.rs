//! `rcni install --dir DIR`: copies this binary to `DIR/rcni` and makes every applet name
//! (`cnitool` and each plugin) a relative symlink to it.
//!
//! One binary rather than one per plugin: plugins start from one page-cached file, link once,
//! and an upgrade replaces one file atomically (rename), so a runtime never execs a half-written
//! plugin ("text file busy").

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cni_runtime::fsutil::same_file;

/// Installs into `dir`; returns the paths created.
pub fn install(dir: &Path, names: &[&str]) -> io::Result<Vec<PathBuf>> {
    cni_runtime::fsutil::create_dir_all_mode(dir, 0o755)?;
    let exe = std::env::current_exe()?;
    let target = dir.join("rcni");
    let mut made = Vec::new();
    if !same_file(&exe, &target) {
        let tmp = dir.join(format!(".rcni.{}.tmp", std::process::id()));
        std::fs::copy(&exe, &tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, &target)?;
    }
    made.push(target);
    for name in names {
        let link = dir.join(name);
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink("rcni", &tmp)?;
        std::fs::rename(&tmp, &link)?;
        made.push(link);
    }
    Ok(made)
}

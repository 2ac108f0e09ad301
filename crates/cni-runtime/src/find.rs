//! Plugin lookup on the search path (Go's `invoke.FindInPath`).

use crate::error::{Error, Result};
use std::path::PathBuf;

/// The first `<dir>/<plugin>` that is a regular file (symlinks followed), searching `paths` in
/// order. As in Go, the executable bit is not checked (exec reports it).
pub fn find_in_path(plugin: &str, paths: &[PathBuf]) -> Result<PathBuf> {
    if plugin.is_empty() {
        return Err(Error::msg("no plugin name provided"));
    }
    if plugin.contains('/') {
        return Err(Error::msg(format!("invalid plugin name: {plugin}")));
    }
    if paths.is_empty() {
        return Err(Error::msg("no paths provided"));
    }
    for dir in paths {
        let full = dir.join(plugin);
        if std::fs::metadata(&full).is_ok_and(|m| m.is_file()) {
            return Ok(full);
        }
    }
    let list: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    Err(Error::msg(format!("failed to find plugin {:?} in path [{}]", plugin, list.join(" "))))
}

/// Splits a `CNI_PATH`-style list on `:`, dropping empty entries (Go's `filepath.SplitList`
/// keeps them, but an empty entry would mean the current directory, which nobody intends).
pub fn split_path_list(s: &str) -> Vec<PathBuf> {
    s.split(':').filter(|p| !p.is_empty()).map(PathBuf::from).collect()
}

/// Joins search paths with `:` for `CNI_PATH`.
pub fn join_path_list(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.to_string_lossy().into_owned()).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_rules() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(b.path().join("p"), "").unwrap();
        std::fs::create_dir(a.path().join("p")).unwrap(); // a directory is not a plugin
        std::os::unix::fs::symlink(b.path().join("p"), a.path().join("q")).unwrap();
        let paths = vec![a.path().to_path_buf(), b.path().to_path_buf()];
        assert_eq!(find_in_path("p", &paths).unwrap(), b.path().join("p"));
        assert_eq!(find_in_path("q", &paths).unwrap(), a.path().join("q"));
        assert_eq!(find_in_path("", &paths).unwrap_err().to_string(), "no plugin name provided");
        assert_eq!(find_in_path("a/b", &paths).unwrap_err().to_string(), "invalid plugin name: a/b");
        assert_eq!(find_in_path("p", &[]).unwrap_err().to_string(), "no paths provided");
        assert_eq!(
            find_in_path("does-not-exist", &paths).unwrap_err().to_string(),
            format!("failed to find plugin \"does-not-exist\" in path [{} {}]", a.path().display(), b.path().display())
        );
    }

    #[test]
    fn path_lists() {
        assert_eq!(split_path_list("/a::/b"), vec![PathBuf::from("/a"), PathBuf::from("/b")]);
        assert!(split_path_list("").is_empty());
        assert_eq!(join_path_list(&[PathBuf::from("/a"), PathBuf::from("/b")]), "/a:/b");
    }
}

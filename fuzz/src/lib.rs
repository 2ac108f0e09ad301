//! What rcni's fuzz targets share: a scratch directory per process, and splitting an input into
//! a few header lines and a body (the inputs stay text, so fixtures seed the corpus as they are).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// This process's scratch directory (under `TMPDIR`; `scripts/fuzz` points that at a directory
/// it removes afterwards).
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("rcni-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("creating the fuzz scratch directory");
        d
    })
}

/// `<scratch>/<name>`, emptied (created if missing).
pub fn fresh_dir(name: &str) -> PathBuf {
    let d = scratch().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("creating a scratch directory");
    d
}

/// The first `n` lines of `data` (as text; `None` when they are not UTF-8 or there are fewer)
/// and the bytes after them.
pub fn header(data: &[u8], n: usize) -> Option<(Vec<&str>, &[u8])> {
    let mut rest = data;
    let mut lines = Vec::with_capacity(n);
    for _ in 0..n {
        let i = rest.iter().position(|b| *b == b'\n')?;
        lines.push(std::str::from_utf8(&rest[..i]).ok()?);
        rest = &rest[i + 1..];
    }
    Some((lines, rest))
}

//! Shared helpers for rcni's integration tests (see `tests/`), plus the `noop` test plugin
//! binary (`src/bin/noop.rs`).

use std::path::PathBuf;

/// The directory cargo puts this profile's binaries in (`target/debug`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/debug/deps/<test binary>
    exe.parent().and_then(|p| p.parent()).expect("target dir").to_path_buf()
}

/// The `rcni` binary of this build; the test runner (`scripts/test`) builds it first.
pub fn rcni_bin() -> PathBuf {
    let p = target_dir().join("rcni");
    assert!(p.exists(), "{} missing: run `cargo build -p rcni` (scripts/test does) before the tests", p.display());
    p
}

/// True inside `../shared/tools/netsandbox` as started by `scripts/test` (which sets
/// `RCNI_NETSANDBOX=1` only after entering it). Tests that touch the network refuse to run
/// anywhere else, so they can never change the machine's own network.
pub fn in_netsandbox() -> bool {
    std::env::var("RCNI_NETSANDBOX").as_deref() == Ok("1")
}

/// Panics unless running inside the netsandbox.
pub fn require_netsandbox() {
    assert!(in_netsandbox(), "this test changes the network: run it through scripts/test (inside ../shared/tools/netsandbox)");
}

use std::process::{Command, Output};

/// Runs a command, returning its output (for test tooling only: `ip`, `ping`, `iptables-save`).
pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

/// Runs a command that must succeed; returns its stdout.
pub fn run_ok(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A named network namespace created with `ip netns add` (test tooling), deleted on drop.
pub struct TestNetns {
    pub name: String,
}

impl TestNetns {
    pub fn new(name: &str) -> Self {
        require_netsandbox();
        let _ = run("ip", &["netns", "del", name]);
        run_ok("ip", &["netns", "add", name]);
        run_ok("ip", &["-n", name, "link", "set", "lo", "up"]);
        TestNetns { name: name.into() }
    }

    pub fn path(&self) -> String {
        format!("/var/run/netns/{}", self.name)
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// True if `ping -c1` to `addr` from inside succeeds.
    pub fn ping(&self, addr: &str) -> bool {
        self.exec(&["ping", "-c1", "-W2", addr]).status.success()
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}

/// The Go cnitool built from Debian's source package by `scripts/build-go-cnitool`.
pub fn go_cnitool() -> std::path::PathBuf {
    let p = std::env::var("GO_CNITOOL").map(std::path::PathBuf::from).unwrap_or_else(|_| target_dir().join("../go-cnitool/cnitool"));
    assert!(p.exists(), "Go cnitool not found at {} (scripts/build-go-cnitool builds it; scripts/test runs that)", p.display());
    p
}

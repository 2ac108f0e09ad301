//! Shared helpers for rcni's integration tests (see `tests/`), plus the `noop` test plugin
//! binary (`src/bin/noop.rs`).

use netkit::NetNs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

/// The directory cargo puts this profile's binaries in (`target/<host triple>/debug`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<host triple>/debug/deps/<test binary>
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
    // target/go-cnitool, beside target/<host triple>/
    let p = std::env::var("GO_CNITOOL")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| target_dir().ancestors().map(|d| d.join("go-cnitool/cnitool")).find(|p| p.exists()).unwrap_or_default());
    assert!(p.exists(), "Go cnitool not found at {} (scripts/build-go-cnitool builds it; scripts/test runs that)", p.display());
    p
}

/// An installed copy of the rcni binary with every applet name linked (`<dir>/host-local`, …).
pub struct Installed {
    pub dir: tempfile::TempDir,
}

impl Installed {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        run_ok(rcni_bin().to_str().expect("utf-8 path"), &["install", "--dir", dir.path().to_str().expect("utf-8 path")]);
        Installed { dir }
    }

    pub fn path(&self, applet: &str) -> std::path::PathBuf {
        self.dir.path().join(applet)
    }
}

impl Default for Installed {
    fn default() -> Self {
        Self::new()
    }
}

/// One plugin call as a runtime makes it: the six `CNI_*` variables and the config on stdin.
#[derive(Debug, Clone, Default)]
pub struct Call {
    pub command: &'static str,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub args: String,
    pub path: String,
    /// More environment for the plugin (e.g. `RCNI_TEST_FAULT`).
    pub env: Vec<(String, String)>,
}

impl Call {
    pub fn new(command: &'static str, container_id: &str, ifname: &str) -> Self {
        Call {
            command,
            container_id: container_id.into(),
            netns: "/var/run/netns/none".into(),
            ifname: ifname.into(),
            args: String::new(),
            path: "/opt/cni/bin".into(),
            env: Vec::new(),
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn netns(mut self, netns: &str) -> Self {
        self.netns = netns.into();
        self
    }

    pub fn args(mut self, args: &str) -> Self {
        self.args = args.into();
        self
    }

    /// Runs `plugin` with `stdin`; returns the exit code and stdout, parsed as JSON when any.
    pub fn run(&self, plugin: &std::path::Path, stdin: &str) -> (i32, serde_json::Value) {
        use std::io::Write;
        let mut child = Command::new(plugin)
            .env("CNI_COMMAND", self.command)
            .env("CNI_CONTAINERID", &self.container_id)
            .env("CNI_NETNS", &self.netns)
            .env("CNI_IFNAME", &self.ifname)
            .env("CNI_ARGS", &self.args)
            .env("CNI_PATH", &self.path)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", plugin.display()));
        child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
        let out = child.wait_with_output().expect("wait");
        let v = if out.stdout.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::String(String::from_utf8_lossy(&out.stdout).into()))
        };
        (out.status.code().unwrap_or(-1), v)
    }

    /// Runs and expects success.
    pub fn ok(&self, plugin: &std::path::Path, stdin: &str) -> serde_json::Value {
        let (code, v) = self.run(plugin, stdin);
        assert_eq!(code, 0, "{} {} failed: {v}", plugin.display(), self.command);
        v
    }

    /// Runs and expects a CNI error; returns it.
    pub fn err(&self, plugin: &std::path::Path, stdin: &str) -> serde_json::Value {
        let (code, v) = self.run(plugin, stdin);
        assert_ne!(code, 0, "{} {} should have failed: {v}", plugin.display(), self.command);
        v
    }
}

/// Runs `f` inside the named namespace (sockets made there stay there).
pub fn in_ns<T>(ns: &str, f: impl FnOnce() -> T) -> T {
    NetNs::open(format!("/var/run/netns/{ns}")).unwrap().run(f).unwrap()
}

/// A TCP server in `ns` on `port` that answers every connection with `reply`.
pub fn serve(ns: &str, port: u16, reply: &'static str) {
    let l = in_ns(ns, || TcpListener::bind(SocketAddr::from(([0u16; 8], port))).unwrap());
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let _ = s.write_all(reply.as_bytes());
        }
    });
}

/// What a TCP client in `ns` (`None`: the node itself) reads from `to`, or `None`.
pub fn fetch(ns: Option<&str>, to: &str) -> Option<String> {
    let addr: SocketAddr = to.parse().unwrap();
    let connect = move || TcpStream::connect_timeout(&addr, Duration::from_secs(2));
    let s = match ns {
        Some(n) => in_ns(n, connect),
        None => connect(),
    };
    let mut s = match s {
        Ok(s) => s,
        Err(e) => {
            eprintln!("connecting to {to} from {ns:?}: {e}");
            return None;
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// `ip -j -d link show NAME` (in namespace `ns`), or `None` when there is no such link.
pub fn link(ns: Option<&str>, name: &str) -> Option<serde_json::Value> {
    let mut args = vec!["-j", "-d"];
    if let Some(n) = ns {
        args.extend(["-n", n]);
    }
    args.extend(["link", "show", name]);
    let out = run("ip", &args);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice::<serde_json::Value>(&out.stdout).ok().map(|v| v[0].clone())
}

/// The first IPv4 (or, with `v6`, IPv6) address of a CNI result, without its prefix length.
pub fn ip_of(r: &serde_json::Value, v6: bool) -> String {
    r["ips"]
        .as_array()
        .expect("result has ips")
        .iter()
        .map(|i| i["address"].as_str().expect("address").split('/').next().unwrap_or_default().to_string())
        .find(|a| a.contains(':') == v6)
        .unwrap_or_else(|| panic!("no {} address in {r}", if v6 { "IPv6" } else { "IPv4" }))
}

/// The container ID both cnitools (Go's and rcni's) use for `netns`: `cnitool-` + 20 hex digits
/// of SHA-512 of the path.
pub fn cnitool_id(netns: &str) -> String {
    netkit::owner::hashed_name("cnitool-", netns, "cnitool-".len() + 20)
}

/// Runs the rcni binary with `args`.
pub fn rcni(args: &[&str]) -> Output {
    run(rcni_bin().to_str().expect("utf-8 path"), args)
}

/// A node of its own, nested in the suite's sandbox: what `../shared/tools/netsandbox` makes
/// (a network namespace and a private mount namespace with fresh, empty /run/netns,
/// /var/lib/cni, /run/cni, /etc/cni/net.d, /etc/cni/tuning, /opt/cni/bin), plus fresh
/// /run/containerd, /run/runc and /run/containers for container engines, and the machine's
/// cgroup mounts kept under the fresh /sys (runc needs them). For tests that judge the whole
/// node or use the default paths (a client that reads /etc/cni/net.d, ctr, podman), which the
/// other tests of the suite share otherwise. (Not the tool itself: it carries the cgroup mounts
/// over through a fixed directory in /run that concurrent starts share.)
pub mod own_node {
    use std::process::Command;

    const SETUP: &str = r#"mount --make-rprivate / || exit 1
cg=$(mktemp -d /tmp/rcni-node-cg.XXXXXX) || exit 1
mountpoint -q /sys/fs/cgroup && { mount --rbind /sys/fs/cgroup "$cg" || exit 1; }
for d in /run/netns /var/lib/cni /run/cni /etc/cni/net.d /etc/cni/tuning /opt/cni/bin /run/containerd /run/runc /run/containers; do
  mkdir -p "$d" && mount -t tmpfs -o mode=0755 tmpfs "$d" || exit 1
done
mount -t sysfs sysfs /sys 2>/dev/null
if mountpoint -q "$cg"; then mount --move "$cg" /sys/fs/cgroup || exit 1; fi
rmdir "$cg" 2>/dev/null
ip link set lo up && exec "$@""#;

    const MARK: &str = "RCNI_OWN_NODE";

    /// True when this process is the rerun in a node of its own.
    pub fn inside() -> bool {
        std::env::var_os(MARK).is_some()
    }

    /// Runs this test binary's test `name` again in a node of its own and returns true there
    /// (run the test's body); here, returns false once that run passed, and panics with its
    /// output when it failed. Lines of the run's output starting with `report` are printed here.
    ///
    /// ```no_run
    /// if !rcni_tests::own_node::rerun("my_test", "") { return; }   // … the body, in the node
    /// ```
    pub fn rerun(name: &str, report: &str) -> bool {
        crate::require_netsandbox();
        if inside() {
            return true;
        }
        let exe = std::env::current_exe().expect("current exe");
        let out = Command::new("unshare")
            .args(["--net", "--mount", "--propagation", "private", "--", "sh", "-c", SETUP, "sh", "env"])
            .arg(format!("{MARK}=1"))
            .arg(&exe)
            .args(["--exact", name, "--include-ignored", "--nocapture", "--test-threads", "1"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run unshare: {e}"));
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if !report.is_empty() {
            for l in text.lines().filter(|l| l.starts_with(report)) {
                eprintln!("{l}");
            }
        }
        assert!(out.status.success(), "{name} in a node of its own failed:\n{text}");
        assert!(text.contains("1 passed"), "{name} did not run in its own node:\n{text}");
        false
    }
}

/// Container images and bundles from local files (there is no registry here): a root
/// filesystem of Debian's busybox-static.
pub mod oci {
    use std::path::Path;

    /// The busybox applets the root filesystem links (what the container tests run).
    pub const APPLETS: &[&str] = &[
        "sh", "ip", "ping", "sleep", "cat", "echo", "hostname", "httpd", "nc", "wget", "ls", "mkdir", "true", "grep", "ifconfig", "route",
        "nslookup", "timeout",
    ];

    /// Makes `dir` a minimal root filesystem: /bin/busybox (a copy of the machine's, which must be
    /// statically linked: Debian's busybox-static) with the [`APPLETS`] linked to it, the
    /// directories a runtime mounts over, and /etc/passwd and /etc/group with root.
    pub fn busybox_rootfs(dir: &Path) {
        let busybox = Path::new("/bin/busybox");
        assert!(busybox.exists(), "/bin/busybox missing: install busybox-static (scripts/deps does)");
        for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "run", "var/www"] {
            std::fs::create_dir_all(dir.join(d)).expect("rootfs dir");
        }
        std::fs::copy(busybox, dir.join("bin/busybox")).expect("copy busybox");
        for a in APPLETS {
            let link = dir.join("bin").join(a);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink("busybox", &link).expect("applet link");
        }
        std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n").expect("passwd");
        std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("group");
    }
}

/// Polls `f` every 50 ms until it holds, for at most `secs` seconds; whether it did.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

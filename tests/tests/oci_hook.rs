//! `rcni oci-hook` with real runc (netsandbox only, each test in a node of its own): busybox
//! bundles made ready with `rcni oci-hook install`, run with plain `runc run`; containers on
//! one network reach each other by name, a published port answers from the node, the hosts
//! files follow containers joining and leaving, and after `runc delete` nothing is left (lease,
//! cache, rules, veth, hosts entries, the hook's records).

use rcni_tests::{eventually, oci::busybox_rootfs, own_node, rcni, rcni_bin, run, run_ok};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// runc's state root and the containers started in it, deleted (with their poststop hooks) on
/// drop, so a failing test leaves no container running.
struct Runc {
    root: tempfile::TempDir,
    started: std::cell::RefCell<Vec<String>>,
}

impl Runc {
    fn new() -> Runc {
        Runc { root: tempfile::tempdir().unwrap(), started: Default::default() }
    }

    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("timeout").args(["60", "runc", "--root"]).arg(self.root.path()).args(args).stdin(Stdio::null()).output().expect("runc")
    }

    /// `runc run -d`; true when it started. runc's and the container's stdio go to a log file
    /// in the bundle (a detached container keeps the pipes of whoever started it open, so
    /// no pipe here); `log` reads it.
    fn run(&self, bundle: &Path, id: &str) -> bool {
        self.started.borrow_mut().push(id.to_string());
        let log = std::fs::File::create(bundle.join("stdio.log")).unwrap();
        Command::new("timeout")
            .args(["60", "runc", "--root"])
            .arg(self.root.path())
            .args(["run", "-d", "--bundle"])
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .expect("runc run")
            .success()
    }

    fn exec(&self, id: &str, args: &[&str]) -> Output {
        let mut all = vec!["exec", id];
        all.extend_from_slice(args);
        self.cmd(&all)
    }

    fn exec_ok(&self, id: &str, args: &[&str]) -> String {
        let out = self.exec(id, args);
        assert!(
            out.status.success(),
            "runc exec {id} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `runc delete --force`: kills the container, runs its poststop hooks, removes it.
    fn delete(&self, id: &str) -> Output {
        self.started.borrow_mut().retain(|s| s != id);
        self.cmd(&["delete", "--force", id])
    }
}

impl Drop for Runc {
    fn drop(&mut self) {
        for id in self.started.borrow().clone() {
            let _ = self.cmd(&["delete", "--force", &id]);
        }
    }
}

/// What runc and the container wrote (`Runc::run`).
fn log(bundle: &Path) -> String {
    std::fs::read_to_string(bundle.join("stdio.log")).unwrap_or_default()
}

/// A busybox bundle in `dir` running `args` (`runc spec`, made non-interactive).
fn bundle(dir: &Path, args: &[&str]) -> PathBuf {
    let b = dir.to_path_buf();
    busybox_rootfs(&b.join("rootfs"));
    run_ok("runc", &["spec", "--bundle", b.to_str().unwrap()]);
    let path = b.join("config.json");
    let mut c: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    c["process"]["terminal"] = json!(false);
    c["process"]["args"] = json!(args);
    // ping needs raw sockets, which runc spec's capabilities leave out
    for set in ["bounding", "effective", "permitted"] {
        c["process"]["capabilities"][set].as_array_mut().unwrap().push(json!("CAP_NET_RAW"));
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    b
}

fn install(bundle: &Path, args: &[&str]) -> String {
    let mut all = vec!["oci-hook", "install", bundle.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = rcni(&all);
    assert!(out.status.success(), "oci-hook install: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An HTTP GET of `/` from the node, as text (`None` when nothing answers).
fn http_get(addr: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The names-to-addresses lines of a hosts file (not the localhost lines, not rcni's markers).
fn named(hosts: &str) -> Vec<String> {
    hosts.lines().filter(|l| !l.contains("localhost") && !l.contains("ip6-") && !l.starts_with('#')).map(str::to_string).collect()
}

/// Everything of the test's containers that could be left on the node: lease files, cache
/// files, the hook's records, veths, and nftables rules or elements naming its port.
fn leftovers(ids: &[&str], port: &str) -> Vec<String> {
    let mut left = Vec::new();
    for dir in ["/var/lib/cni/networks", "/var/lib/cni/results", "/run/cni/rcni/oci"] {
        let out = run("grep", &["-rl", "-e", ids[0], "-e", ids[ids.len() - 1], dir]);
        left.extend(String::from_utf8_lossy(&out.stdout).lines().map(|l| format!("file {l}")));
    }
    let veths = run_ok("ip", &["-o", "link", "show", "type", "veth"]);
    left.extend(veths.lines().map(|l| format!("veth {l}")));
    let rules = run_ok("nft", &["list", "ruleset"]);
    left.extend(rules.lines().filter(|l| l.contains(port)).map(|l| format!("nft {}", l.trim())));
    left
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn runc_containers_reach_each_other_by_name_publish_ports_and_leave_nothing() {
    if !own_node::rerun("runc_containers_reach_each_other_by_name_publish_ports_and_leave_nothing", "") {
        return;
    }
    let out = rcni(&["network", "create", "ocinet", "--subnet", "10.225.0.0/24"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let work = tempfile::tempdir().unwrap();
    let web = bundle(&work.path().join("web"), &["httpd", "-f", "-p", "80", "-h", "/var/www"]);
    std::fs::write(web.join("rootfs/var/www/index.html"), "hello-from-web\n").unwrap();
    let client = bundle(&work.path().join("client"), &["sleep", "600"]);
    let said = install(&web, &["-n", "ocinet", "-p", "8080:80", "--hostname", "web"]);
    assert!(said.contains("runc run --bundle"), "install tells how to run it: {said}");
    install(&client, &["-n", "ocinet"]);
    let runc = Runc::new();

    assert!(runc.run(&web, "oci-web"), "runc run oci-web: {}", log(&web));
    assert!(eventually(5, || http_get("10.225.0.2:80").is_some()), "the web server is up: {}", log(&web));
    assert_eq!(runc.exec_ok("oci-web", &["hostname"]).trim(), "web");
    assert_eq!(std::fs::read_to_string(web.join("rcni/hostname")).unwrap(), "web\n");
    for f in ["hosts", "resolv.conf", "hostname"] {
        let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(web.join("rcni").join(f)).unwrap().permissions());
        assert_eq!(mode & 0o7777, 0o644, "{f}: the mode of docs/state-files.md");
    }
    let web_hosts = runc.exec_ok("oci-web", &["cat", "/etc/hosts"]);
    assert_eq!(named(&web_hosts), ["10.225.0.2\tweb web.ocinet oci-web oci-web.ocinet"], "{web_hosts}");
    let resolv = runc.exec_ok("oci-web", &["cat", "/etc/resolv.conf"]);
    assert!(resolv.starts_with("nameserver "), "{resolv}");
    assert!(!resolv.contains("nameserver 127.") && !resolv.contains("nameserver ::1"), "no loopback nameserver: {resolv}");

    // a line the container adds itself stays through rcni's rewrites
    runc.exec_ok("oci-web", &["sh", "-c", "echo '192.0.2.9\tmine' >> /etc/hosts"]);
    assert!(runc.run(&client, "oci-client"), "runc run oci-client: {}", log(&client));
    let client_hosts = runc.exec_ok("oci-client", &["cat", "/etc/hosts"]);
    // its names: the hostname `runc spec` gave it, and its ID
    assert_eq!(
        named(&client_hosts),
        ["10.225.0.3\trunc runc.ocinet oci-client oci-client.ocinet", "10.225.0.2\tweb web.ocinet oci-web oci-web.ocinet"],
        "{client_hosts}"
    );
    // the earlier container's file was rewritten in place: its bind mount shows the newcomer
    let web_hosts = runc.exec_ok("oci-web", &["cat", "/etc/hosts"]);
    assert_eq!(
        named(&web_hosts),
        [
            "10.225.0.2\tweb web.ocinet oci-web oci-web.ocinet",
            "10.225.0.3\trunc runc.ocinet oci-client oci-client.ocinet",
            "192.0.2.9\tmine"
        ],
        "{web_hosts}"
    );

    // installing into the bundle again while its container runs leaves the container's files be
    install(&web, &["-n", "ocinet", "-p", "8080:80", "--hostname", "web"]);
    assert_eq!(runc.exec_ok("oci-web", &["cat", "/etc/hosts"]), web_hosts, "a second install keeps the running container's hosts file");

    // by name, both ways; HTTP by name; the published port from the node
    runc.exec_ok("oci-client", &["ping", "-c1", "-W2", "web"]);
    runc.exec_ok("oci-client", &["ping", "-c1", "-W2", "oci-web.ocinet"]);
    runc.exec_ok("oci-web", &["ping", "-c1", "-W2", "oci-client"]);
    let page = runc.exec_ok("oci-client", &["timeout", "5", "wget", "-qO-", "http://web/"]);
    assert_eq!(page, "hello-from-web\n");
    let answer = http_get("10.225.0.1:8080").expect("the published port answers from the node");
    assert!(answer.contains("200 OK") && answer.ends_with("hello-from-web\n"), "{answer}");

    let ps = String::from_utf8_lossy(&rcni(&["ps"]).stdout).into_owned();
    assert!(ps.contains("oci-web") && ps.contains("oci-client") && ps.contains("8080:80/tcp"), "{ps}");

    // leaving: the client's name goes from the web container's hosts file
    let out = runc.delete("oci-client");
    assert!(out.status.success(), "runc delete: {}", String::from_utf8_lossy(&out.stderr));
    let web_hosts = runc.exec_ok("oci-web", &["cat", "/etc/hosts"]);
    assert_eq!(named(&web_hosts), ["10.225.0.2\tweb web.ocinet oci-web oci-web.ocinet", "192.0.2.9\tmine"], "{web_hosts}");
    let out = runc.delete("oci-web");
    assert!(out.status.success(), "runc delete: {}", String::from_utf8_lossy(&out.stderr));
    let left = leftovers(&["oci-web", "oci-client"], "8080");
    assert!(left.is_empty(), "left behind: {left:#?}");
    assert!(http_get("10.225.0.1:8080").is_none(), "the port is unpublished");
    // and a second run of the same bundle works again (poststop left the bundle reusable)
    assert!(runc.run(&web, "oci-web"), "runc run oci-web again: {}", log(&web));
    assert!(eventually(5, || http_get("10.225.0.1:8080").is_some_and(|a| a.ends_with("hello-from-web\n"))));
    assert!(runc.delete("oci-web").status.success());
    assert!(leftovers(&["oci-web", "oci-web"], "8080").is_empty());
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn a_failing_hook_fails_the_container_and_leaves_nothing_attached() {
    if !own_node::rerun("a_failing_hook_fails_the_container_and_leaves_nothing_attached", "") {
        return;
    }
    assert!(rcni(&["network", "create", "ocigood", "--subnet", "10.225.1.0/24"]).status.success());
    // a second network whose chain fails after the first network was attached
    let bad = json!({"cniVersion": "1.0.0", "name": "ocibad", "plugins": [{"type": "no-such-plugin"}]});
    std::fs::write("/etc/cni/net.d/50-ocibad.conflist", bad.to_string()).unwrap();
    let work = tempfile::tempdir().unwrap();
    let b = bundle(&work.path().join("b"), &["sleep", "600"]);
    install(&b, &["-n", "ocigood", "-n", "ocibad"]);
    let runc = Runc::new();
    assert!(!runc.run(&b, "oci-fails"), "the container must not start without its networks");
    let err = log(&b);
    assert!(err.contains("no-such-plugin"), "runc reports the hook's message: {err}");
    let left = leftovers(&["oci-fails"], "oci-fails");
    assert!(left.is_empty(), "left behind: {left:#?}");
    let leases: Vec<_> =
        std::fs::read_dir("/var/lib/cni/networks/ocigood").map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(!leases.iter().any(|n| n.to_string_lossy().starts_with("10.")), "lease released: {leases:?}");
    runc.delete("oci-fails");

    // an unknown network is named, with how to list them
    let b2 = bundle(&work.path().join("b2"), &["sleep", "600"]);
    install(&b2, &["-n", "ocinope"]);
    assert!(!runc.run(&b2, "oci-nonet"));
    assert!(log(&b2).contains("ocinope"), "{}", log(&b2));
    runc.delete("oci-nonet");
    assert!(leftovers(&["oci-nonet"], "oci-nonet").is_empty());
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn dns_comes_from_the_result_and_a_leftover_attachment_is_deleted_first() {
    if !own_node::rerun("dns_comes_from_the_result_and_a_leftover_attachment_is_deleted_first", "") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let resolv = work.path().join("net-resolv.conf");
    std::fs::write(&resolv, "nameserver 10.225.2.53\nsearch oci.test\noptions ndots:1\n").unwrap();
    let list = json!({"cniVersion": "1.0.0", "name": "ocidns", "plugins": [
        {"type": "bridge", "bridge": "rcnioci2", "isGateway": true,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.225.2.0/24"}]], "resolvConf": resolv}}]});
    std::fs::write("/etc/cni/net.d/10-ocidns.conflist", list.to_string()).unwrap();
    // an earlier container of the same ID that was never stopped cleanly: its attachment is
    // still in the cache (here: made by rcni attach on a namespace of its own)
    run_ok(rcni_bin().to_str().unwrap(), &["netns", "add", "oci-old"]);
    run_ok(rcni_bin().to_str().unwrap(), &["attach", "oci-old", "--id", "oci-dns", "-n", "ocidns"]);
    assert!(Path::new("/var/lib/cni/networks/ocidns/10.225.2.2").exists());

    let b = bundle(&work.path().join("b"), &["sleep", "600"]);
    install(&b, &[]);
    let runc = Runc::new();
    assert!(runc.run(&b, "oci-dns"), "runc run: {}", log(&b));
    assert_eq!(runc.exec_ok("oci-dns", &["cat", "/etc/resolv.conf"]), "nameserver 10.225.2.53\nsearch oci.test\noptions ndots:1\n");
    let old = run("ip", &["-n", "oci-old", "link", "show", "eth0"]);
    assert!(!old.status.success(), "the leftover's interface was deleted first");
    assert!(!Path::new("/var/lib/cni/networks/ocidns/10.225.2.2").exists(), "and its lease released");
    let addr = runc.exec_ok("oci-dns", &["ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(addr.contains("10.225.2.3/24"), "{addr}");
    assert!(runc.delete("oci-dns").status.success());
    // poststop again (state already gone) is no failure
    let state = json!({"ociVersion": "1.0.2", "id": "oci-dns", "status": "stopped", "bundle": b});
    let mut child = Command::new(rcni_bin()).args(["oci-hook", "poststop"]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(state.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(leftovers(&["oci-dns"], "oci-dns").is_empty());
    run_ok(rcni_bin().to_str().unwrap(), &["netns", "del", "oci-old"]);
}

//! `rcni netns add --pid` / `attach`, `pids`, `identify` and `ls` (netsandbox only): naming the
//! namespace of a running process as a pod sandbox does, finding the processes of a namespace,
//! and listing namespaces with their processes and cached attachments.

use rcni_tests::{rcni, require_netsandbox, run, run_ok};
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::Duration;

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Device and inode of a namespace file (following `/proc/<pid>/ns/net` links).
fn ns_id(path: &str) -> (u64, u64) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (m.dev(), m.ino())
}

/// Waits until `cond` holds (10 s at most).
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

/// A process in a new network namespace of its own (`unshare -n` execs `sleep` in the same PID).
fn unshared_sleeper() -> Child {
    let mut child = Command::new("unshare").args(["-n", "sleep", "30"]).spawn().unwrap();
    let pid = child.id();
    let mine = ns_id("/proc/self/ns/net");
    wait_for("unshare to enter its namespace", || {
        if let Ok(Some(st)) = child.try_wait() {
            panic!("unshare exited: {st}");
        }
        std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| (m.dev(), m.ino()) != mine)
    });
    child
}

/// The one child of `parent` (what `rcni netns exec` started).
fn child_of(parent: u32) -> u32 {
    let mut pid = None;
    wait_for("the command rcni netns exec starts", || {
        pid = run("pgrep", &["-P", &parent.to_string()])
            .stdout
            .split(|b| *b == b'\n')
            .next()
            .and_then(|l| std::str::from_utf8(l).ok()?.parse().ok());
        pid.is_some()
    });
    pid.unwrap()
}

fn stop(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// Our entries under /run/netns and our mounts there, for checking that a refusal made none.
fn leftovers(prefix: &str) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with(prefix)).collect())
        .unwrap_or_default();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    found.extend(mounts.lines().filter(|l| l.contains(&format!("/run/netns/{prefix}"))).map(|l| format!("mount: {l}")));
    found.sort();
    found
}

/// How many mounts have `point` as their mount point.
fn mounts_at(point: &str) -> usize {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().filter(|l| l.split(' ').nth(4) == Some(point)).count()
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn add_pid_keeps_the_namespace_of_a_process_after_it_exits() {
    require_netsandbox();
    for n in ["rcni-nsp-keep", "rcni-nsp-alias"] {
        let _ = rcni(&["netns", "del", n]);
    }
    let sleeper = unshared_sleeper();
    let pid = sleeper.id().to_string();
    let before = ns_id(&format!("/proc/{pid}/ns/net"));
    // a link made in the process's namespace, to see the same namespace later by its contents too
    let net = format!("--net=/proc/{pid}/ns/net");
    run_ok("nsenter", &[&net, "ip", "link", "add", "nspkeep0", "type", "veth", "peer", "name", "nspkeep1"]);

    let out = rcni(&["netns", "add", "rcni-nsp-keep", "--pid", &pid]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout, "/run/netns/rcni-nsp-keep\n");
    // `ip netns attach`'s form gives a second name
    let out = rcni(&["netns", "attach", "rcni-nsp-alias", &pid]);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(text(&out).0, "/run/netns/rcni-nsp-alias\n");
    assert!(run_ok("ip", &["netns", "list"]).lines().any(|l| l.starts_with("rcni-nsp-keep")), "iproute2 sees it");
    assert_eq!(ns_id("/run/netns/rcni-nsp-keep"), before);
    let mut names: Vec<String> =
        run_ok(rcni_tests::rcni_bin().to_str().unwrap(), &["netns", "identify", &pid]).lines().map(String::from).collect();
    names.sort();
    assert_eq!(names, ["rcni-nsp-alias", "rcni-nsp-keep"]);

    stop(sleeper);
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "the process is gone");
    // the namespace lives on under its names: the same inode, with the link made in it
    assert_eq!(ns_id("/run/netns/rcni-nsp-keep"), before);
    assert_eq!(ns_id("/run/netns/rcni-nsp-alias"), before);
    let r = rcni_tests::rcni_bin();
    let links = run_ok(r.to_str().unwrap(), &["netns", "exec", "rcni-nsp-keep", "--", "ip", "-o", "link", "show", "nspkeep0"]);
    assert!(links.contains("nspkeep0"), "{links}");
    assert_eq!(run_ok(r.to_str().unwrap(), &["netns", "pids", "rcni-nsp-keep"]), "", "no process is in it any more");

    run_ok(r.to_str().unwrap(), &["netns", "del", "rcni-nsp-alias"]);
    assert_eq!(ns_id("/run/netns/rcni-nsp-keep"), before, "deleting one name keeps the other");
    run_ok(r.to_str().unwrap(), &["netns", "del", "rcni-nsp-keep"]);
    assert_eq!(leftovers("rcni-nsp-keep"), Vec::<String>::new());
    assert_eq!(leftovers("rcni-nsp-alias"), Vec::<String>::new());

    // without a name, --pid picks a random cni-… one, as a runtime's NewNetNSFromPID does
    let sleeper = unshared_sleeper();
    let pid = sleeper.id().to_string();
    let p = run_ok(r.to_str().unwrap(), &["netns", "add", "--pid", &pid]);
    let name = Path::new(p.trim()).file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("cni-") && name.len() == 40, "{name}");
    assert_eq!(ns_id(p.trim()), ns_id(&format!("/proc/{pid}/ns/net")));
    stop(sleeper);
    run_ok(r.to_str().unwrap(), &["netns", "del", &name]);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn pids_lists_the_processes_inside_and_identify_finds_them() {
    require_netsandbox();
    let r = rcni_tests::rcni_bin();
    let r = r.to_str().unwrap();
    let _ = rcni(&["netns", "del", "rcni-nsp-pids"]);
    run_ok(r, &["netns", "add", "rcni-nsp-pids"]);
    assert_eq!(run_ok(r, &["netns", "pids", "rcni-nsp-pids"]), "", "a new namespace has no process");

    let exec = Command::new(r).args(["netns", "exec", "rcni-nsp-pids", "--", "sleep", "30"]).spawn().unwrap();
    let inside = child_of(exec.id());
    // (rcni netns exec is inside only while it starts the command: wait for it to be back)
    let only_inside = format!("{inside}\n");
    wait_for("only the command to be inside", || run_ok(r, &["netns", "pids", "rcni-nsp-pids"]) == only_inside);
    assert_eq!(run_ok(r, &["netns", "identify", &inside.to_string()]), "rcni-nsp-pids\n");
    assert_eq!(run_ok(r, &["netns", "identify", &exec.id().to_string()]), "", "rcni netns exec is not inside");

    // a second process, started by iproute2: both, in PID order, as `ip netns pids` lists them
    let second = Command::new("ip").args(["netns", "exec", "rcni-nsp-pids", "sleep", "30"]).spawn().unwrap();
    wait_for("ip netns exec to enter", || ns_id(&format!("/proc/{}/ns/net", second.id())) == ns_id("/run/netns/rcni-nsp-pids"));
    let mut want = vec![inside, second.id()];
    want.sort();
    let pids = run_ok(r, &["netns", "pids", "rcni-nsp-pids"]);
    assert_eq!(pids, want.iter().map(|p| format!("{p}\n")).collect::<String>());
    let mut theirs: Vec<u32> = run_ok("ip", &["netns", "pids", "rcni-nsp-pids"]).lines().map(|l| l.parse().unwrap()).collect();
    theirs.sort();
    assert_eq!(theirs, want, "the same as ip netns pids");

    stop(second);
    stop(exec);
    let _ = Command::new("kill").arg(inside.to_string()).status();
    wait_for("the processes to end", || run_ok(r, &["netns", "pids", "rcni-nsp-pids"]).is_empty());
    run_ok(r, &["netns", "del", "rcni-nsp-pids"]);

    let out = rcni(&["netns", "pids", "rcni-nsp-pids"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("network namespace rcni-nsp-pids: not found"), "{:?}", text(&out));
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn naming_a_process_namespace_refuses_bad_input_and_makes_nothing() {
    require_netsandbox();
    let r = rcni_tests::rcni_bin();
    let r = r.to_str().unwrap();
    let _ = rcni(&["netns", "del", "rcni-nspr-taken"]);
    let sleeper = unshared_sleeper();
    let pid = sleeper.id().to_string();
    let at_run = mounts_at("/run");
    let refused = |args: &[&str], why: &str| {
        let out = rcni(args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stdout}{stderr}");
        assert!(stderr.starts_with("rcni netns: ") && stderr.contains(why), "{args:?}: {stderr}");
        assert_eq!(stdout, "");
        assert_eq!(leftovers("rcni-nspr-"), Vec::<String>::new(), "{args:?} left something");
        assert_eq!(mounts_at("/run"), at_run, "{args:?} mounted something on /run");
    };

    // no such process: pid_max itself is never a PID
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap().trim().to_string();
    refused(&["netns", "add", "rcni-nspr-nopid", "--pid", &pid_max], &format!("there is no process {pid_max}"));
    refused(&["netns", "attach", "rcni-nspr-nopid", &pid_max], &format!("there is no process {pid_max}"));
    // an exited process not yet reaped (a zombie) has a /proc entry but no namespace
    let mut zombie = Command::new("true").spawn().unwrap();
    let zpid = zombie.id().to_string();
    wait_for("the child to become a zombie", || {
        std::fs::read_to_string(format!("/proc/{zpid}/stat"))
            .is_ok_and(|s| s.rsplit(')').next().is_some_and(|t| t.trim_start().starts_with('Z')))
    });
    refused(&["netns", "attach", "rcni-nspr-zombie", &zpid], "has no network namespace any more (it has exited)");
    let _ = zombie.wait();
    // names that are not one file name under /run/netns
    for bad in ["rcni-nspr-a/b", "rcni-nspr-dir/", ".", "..", ""] {
        refused(&["netns", "attach", bad, &pid], "invalid name");
        refused(&["netns", "add", bad, "--pid", &pid], "invalid name");
    }
    assert!(!Path::new("/run/netns/rcni-nspr-a").exists() && !Path::new("/run/netns/rcni-nspr-dir").exists());

    // a name already taken keeps its namespace
    run_ok(r, &["netns", "add", "rcni-nspr-taken"]);
    let taken = ns_id("/run/netns/rcni-nspr-taken");
    for args in [["netns", "attach", "rcni-nspr-taken", &pid].as_slice(), &["netns", "add", "rcni-nspr-taken", "--pid", &pid]] {
        let out = rcni(args);
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out).1.contains("rcni-nspr-taken: it already exists"), "{:?}", text(&out));
        assert_eq!(ns_id("/run/netns/rcni-nspr-taken"), taken, "still the namespace it was");
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert_eq!(mounts.lines().filter(|l| l.contains("/run/netns/rcni-nspr-taken ")).count(), 1, "mounted once: {mounts}");
    run_ok(r, &["netns", "del", "rcni-nspr-taken"]);
    assert_eq!(leftovers("rcni-nspr-"), Vec::<String>::new());
    stop(sleeper);
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn ls_shows_processes_and_cached_attachments() {
    require_netsandbox();
    let r = rcni_tests::rcni_bin();
    let r = r.to_str().unwrap();
    let _ = rcni(&["netns", "del", "rcni-nsp-ls"]);
    let conf = tempfile::tempdir().unwrap();
    let dir = conf.path().to_str().unwrap();
    let net = json!({"cniVersion": "1.0.0", "name": "nsp-ls", "plugins": [{"type": "bridge", "bridge": "rcninspls", "isGateway": true,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.164.7.0/24"}]]}}]});
    std::fs::write(conf.path().join("10-nsp-ls.conflist"), net.to_string()).unwrap();
    run_ok(r, &["netns", "add", "rcni-nsp-ls"]);

    let entry = |args: &[&str]| -> Value {
        let all: Value = serde_json::from_str(&run_ok(r, args)).unwrap();
        all.as_array().unwrap().iter().find(|n| n["name"] == "rcni-nsp-ls").cloned().unwrap_or_else(|| panic!("not listed: {all}"))
    };
    assert_eq!(
        entry(&["netns", "ls", "--format", "json"]),
        json!({"name": "rcni-nsp-ls", "path": "/run/netns/rcni-nsp-ls", "open": true, "pids": [], "attachments": []})
    );

    let out = rcni(&["attach", "rcni-nsp-ls", "--conf-dir", dir, "--network", "nsp-ls"]);
    assert!(out.status.success(), "{:?}", text(&out));
    let exec = Command::new(r).args(["netns", "exec", "rcni-nsp-ls", "--", "sleep", "30"]).spawn().unwrap();
    let inside = child_of(exec.id());
    wait_for("only the command to be inside", || entry(&["netns", "ls", "--json"])["pids"] == json!([inside]));

    let e = entry(&["netns", "ls", "--format", "json"]);
    assert_eq!(e, entry(&["netns", "ls", "--json"]), "--json is --format json");
    assert_eq!(e["pids"], json!([inside]), "{e}");
    let atts = e["attachments"].as_array().unwrap();
    assert_eq!(atts.len(), 2, "eth0 and lo: {e}");
    let eth0 = atts.iter().find(|a| a["ifname"] == "eth0").unwrap();
    assert_eq!(
        (&eth0["containerID"], &eth0["network"], &eth0["netns"], &eth0["netnsExists"], &eth0["ips"]),
        (&json!("rcni-nsp-ls"), &json!("nsp-ls"), &json!("/run/netns/rcni-nsp-ls"), &json!(true), &json!(["10.164.7.2/24"])),
        "{eth0}"
    );
    assert!(eth0["since"].as_u64().is_some(), "{eth0}");
    let lo = atts.iter().find(|a| a["ifname"] == "lo").unwrap();
    assert_eq!(lo["network"], "cni-loopback");

    // the table: NAME PIDS ATTACHMENTS
    let table = run_ok(r, &["netns", "ls"]);
    assert!(table.starts_with("NAME "), "{table}");
    let row = table.lines().find(|l| l.starts_with("rcni-nsp-ls ")).unwrap_or_else(|| panic!("{table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[1], inside.to_string(), "{row}");
    assert!(cells[2..].contains(&"nsp-ls/eth0=10.164.7.2/24") && cells[2..].iter().any(|c| c.starts_with("cni-loopback/lo")), "{row}");
    assert!(run_ok(r, &["netns", "ls", "-q"]).lines().any(|l| l == "rcni-nsp-ls"));

    stop(exec);
    let _ = Command::new("kill").arg(inside.to_string()).status();
    let out = rcni(&["detach", "rcni-nsp-ls", "--conf-dir", dir]);
    assert!(out.status.success(), "{:?}", text(&out));
    wait_for("the sleep to end", || entry(&["netns", "ls", "--json"])["pids"] == json!([]));
    assert_eq!(entry(&["netns", "ls", "--json"])["attachments"], json!([]), "detached");
    run_ok(r, &["netns", "del", "rcni-nsp-ls"]);
    let _ = run("ip", &["link", "del", "rcninspls"]);
}

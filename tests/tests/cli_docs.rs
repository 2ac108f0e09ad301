//! Completions and man pages come from the command definition: every command is in them.
//! (Touches no network: runs anywhere.)

use rcni_tests::rcni;

#[test]
fn completions_know_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let out = rcni(&["completion", shell]);
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        for word in ["attach", "network", "create", "prune", "--subnet", "ps", "netns", "pids", "oci-hook", "createRuntime", "poststop"] {
            assert!(text.contains(word), "{shell} completion lacks {word}");
        }
    }
    assert!(!rcni(&["completion", "tcsh"]).status.success());
}

#[test]
fn man_pages_for_every_command() {
    let d = tempfile::tempdir().unwrap();
    let out = rcni(&["man", "--dir", d.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for page in [
        "rcni.1",
        "rcni-network-create.1",
        "rcni-attach.1",
        "rcni-netns-add.1",
        "rcni-ps.1",
        "rcni-gc.1",
        "rcni-oci-hook-install.1",
        "rcni-oci-hook-createRuntime.1",
    ] {
        let text = std::fs::read_to_string(d.path().join(page)).unwrap_or_else(|_| panic!("{page} missing"));
        assert!(text.starts_with(".ie \\n(.g .ds Aq") || text.contains(".TH"), "{page} is a man page");
    }
    let create = std::fs::read_to_string(d.path().join("rcni-network-create.1")).unwrap();
    assert!(create.contains("ip\\-range") || create.contains("ip-range"), "the options are documented");
    let main = rcni(&["man"]);
    assert!(String::from_utf8_lossy(&main.stdout).contains(".TH rcni"), "rcni.1 on stdout");
}

/// A reader that goes away (`rcni completion bash | head -c1`) ends the command quietly with 141,
/// as SIGPIPE would, not with a panic and a backtrace.
#[test]
fn a_closed_stdout_is_no_panic() {
    let rcni = rcni_tests::rcni_bin();
    // the script is bigger than a pipe's buffer, so the write after head's exit fails
    let script = format!("set -o pipefail; '{}' completion bash | head -c1 >/dev/null", rcni.display());
    let out = std::process::Command::new("bash").args(["-c", &script]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

//! tuning's `sysctl` map (document order, repeated keys, `args.cni.sysctl` merged over it) and
//! sysctl key resolution (`.` to `/`, `IFNAME`, `..` cleaned), and its backup file. Nothing
//! panics; every sysctl resolves to a file under `/proc/sys/net/` with no `.`, `..` or empty
//! part; a saved backup reads back and saves the same bytes.
//!
//! Input: line 1 is `CNI_IFNAME`, line 2 `CNI_ARGS`, the rest the plugin's stdin.
#![no_main]

use cni_plugin::CmdArgs;
use libfuzzer_sys::fuzz_target;
use plugins::tuning::fuzzing::{backup, sysctl_file, sysctls};

fn check_file(key: &str, file: &str) {
    assert!(file.starts_with("net/") && file.len() > 4, "{key:?} resolves to /proc/sys/{file}");
    assert!(file.split('/').all(|p| !p.is_empty() && p != "." && p != ".."), "{key:?} resolves to /proc/sys/{file}");
}

fuzz_target!(|data: &[u8]| {
    let Some((head, stdin)) = rcni_fuzz::header(data, 2) else { return };
    let (ifname, cni_args) = (head[0], head[1]);
    // (the SDK refuses other interface names before the plugin runs)
    if cni_types::validate::interface_name(ifname).is_err() {
        return;
    }
    let args = CmdArgs {
        command: "ADD".into(),
        container_id: "c1".into(),
        ifname: ifname.into(),
        args: cni_args.into(),
        stdin: stdin.to_vec(),
        ..Default::default()
    };
    if let Ok(list) = sysctls(&args) {
        let mut files = std::collections::HashSet::new();
        for (key, file, _) in &list {
            check_file(key, file);
            assert!(files.insert(file.clone()), "two entries for /proc/sys/{file}");
        }
    }
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_slice::<serde_json::Value>(stdin) {
        for key in m.keys().chain(m.get("sysctl").and_then(|s| s.as_object()).into_iter().flat_map(|s| s.keys())) {
            if let Ok(file) = sysctl_file(key, ifname) {
                check_file(key, &file);
            }
        }
    }
    if let Some(saved) = backup(stdin, b"{}") {
        let again = backup(&saved, b"{}").expect("a saved backup reads back");
        assert_eq!(saved, again, "saving a backup read back changes it");
        let _ = backup(stdin, stdin);
    }
});

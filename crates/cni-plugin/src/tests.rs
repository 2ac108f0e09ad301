use super::*;
use std::cell::RefCell;
use std::collections::HashMap;

#[derive(Default)]
struct Recorder {
    calls: RefCell<Vec<String>>,
    fail_with: Option<CniError>,
}

impl Plugin for Recorder {
    fn add(&self, args: &CmdArgs) -> Result<CniResult, CniError> {
        self.calls.borrow_mut().push(format!("ADD {}", args.container_id));
        if let Some(e) = &self.fail_with {
            return Err(e.clone());
        }
        Ok(CniResult::from_bytes(br#"{"cniVersion":"1.1.0","ips":[{"address":"10.0.0.2/24","gateway":"10.0.0.1"}]}"#).unwrap())
    }
    fn check(&self, _: &CmdArgs) -> Result<(), CniError> {
        self.calls.borrow_mut().push("CHECK".into());
        Ok(())
    }
    fn del(&self, _: &CmdArgs) -> Result<(), CniError> {
        self.calls.borrow_mut().push("DEL".into());
        Ok(())
    }
}

fn about() -> About {
    About::new("recorder", "recorder test plugin", version::ALL)
}

/// The tests' marker directory for ADDs in progress (never the node's /run).
fn pending_dir() -> String {
    static D: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    D.get_or_init(|| tempfile::tempdir().unwrap()).path().to_string_lossy().into_owned()
}

fn env_map(env: &[(&str, &str)]) -> HashMap<String, String> {
    let mut m: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    m.entry("RCNI_PENDING_DIR".into()).or_insert_with(pending_dir);
    m
}

fn call(p: &Recorder, about: &About, env: &[(&str, &str)], stdin: &str) -> (i32, String, String) {
    let env = env_map(env);
    let getenv = move |k: &str| env.get(k).cloned();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = dispatch(p, about, &getenv, &mut stdin.as_bytes(), &mut out, &mut err);
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

const NS_OVERRIDE: (&str, &str) = ("CNI_NETNS_OVERRIDE", "1");

fn add_env(cmd: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("CNI_COMMAND", cmd),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_NETNS", "/var/run/netns/x"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin"),
        NS_OVERRIDE,
    ]
}

fn err_of(out: &str) -> CniError {
    serde_json::from_str(out).unwrap()
}

#[test]
fn add_result_converted_to_config_version() {
    let p = Recorder::default();
    let (code, out, _) = call(&p, &about(), &add_env("ADD"), r#"{"cniVersion":"0.2.0","name":"n"}"#);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "{\n    \"cniVersion\": \"0.2.0\",\n    \"ip4\": {\n        \"ip\": \"10.0.0.2/24\",\n        \"gateway\": \"10.0.0.1\"\n    },\n    \"dns\": {}\n}"
    );
    assert_eq!(p.calls.borrow().as_slice(), ["ADD c1"]);
}

#[test]
fn version_answered_without_stdin() {
    let (code, out, _) = call(&Recorder::default(), &About::new("r", "", &["0.4.0", "1.0.0"]), &[("CNI_COMMAND", "VERSION")], "garbage");
    assert_eq!(code, 0);
    assert_eq!(out, "{\"cniVersion\":\"1.1.0\",\"supportedVersions\":[\"0.4.0\",\"1.0.0\"]}\n");
}

#[test]
fn missing_env_is_code_4_with_names() {
    let (code, out, _) = call(&Recorder::default(), &about(), &[("CNI_COMMAND", "ADD"), ("CNI_PATH", "/x")], "{}");
    assert_eq!(code, 1);
    let e = err_of(&out);
    assert_eq!(e.code, 4);
    assert_eq!(e.msg, "required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME] missing");
    // DEL needs no netns; GC and STATUS need only the path
    let (_, out, _) = call(&Recorder::default(), &about(), &[("CNI_COMMAND", "DEL")], "{}");
    assert_eq!(err_of(&out).msg, "required env variables [CNI_CONTAINERID,CNI_IFNAME,CNI_PATH] missing");
    let (_, out, _) = call(&Recorder::default(), &about(), &[("CNI_COMMAND", "STATUS")], "{}");
    assert_eq!(err_of(&out).msg, "required env variables [CNI_PATH] missing");
}

#[test]
fn no_command_prints_about() {
    let (code, out, err) = call(&Recorder::default(), &about(), &[], "");
    assert_eq!((code, out.as_str()), (0, ""));
    assert!(err.starts_with("recorder test plugin\nCNI protocol versions supported: 0.1.0, 0.2.0"));
}

#[test]
fn invalid_names_and_ids() {
    let mut env = add_env("ADD");
    env[1] = ("CNI_CONTAINERID", "bad/id");
    let (_, out, _) = call(&Recorder::default(), &about(), &env, r#"{"cniVersion":"1.0.0","name":"n"}"#);
    assert_eq!(err_of(&out).code, 4);
    let mut env = add_env("ADD");
    env[3] = ("CNI_IFNAME", "a:b");
    let (_, out, _) = call(&Recorder::default(), &about(), &env, r#"{"cniVersion":"1.0.0","name":"n"}"#);
    assert_eq!(err_of(&out).code, 4);
    let (_, out, _) = call(&Recorder::default(), &about(), &add_env("ADD"), r#"{"cniVersion":"1.0.0"}"#);
    assert_eq!((err_of(&out).code, err_of(&out).msg), (7, "missing network name".into()));
    let (_, out, _) = call(&Recorder::default(), &about(), &add_env("ADD"), r#"{"cniVersion":"1.0.0","name":"bad name"}"#);
    assert_eq!(err_of(&out).code, 7);
    let (_, out, _) = call(&Recorder::default(), &about(), &add_env("ADD"), "{not json");
    assert_eq!(err_of(&out).code, 6);
}

#[test]
fn version_mismatch_is_code_1() {
    let p = Recorder::default();
    let about = About::new("r", "", &["0.4.0", "1.0.0"]);
    let (code, out, _) = call(&p, &about, &add_env("ADD"), r#"{"cniVersion":"0.3.1","name":"n"}"#);
    assert_eq!(code, 1);
    let e = err_of(&out);
    assert_eq!(
        (e.code, e.msg.as_str(), e.details.as_str()),
        (1, "incompatible CNI versions", r#"config is "0.3.1", plugin supports ["0.4.0" "1.0.0"]"#)
    );
    assert_eq!(e.cni_version, "0.3.1", "errors carry the config's version");
    assert!(p.calls.borrow().is_empty(), "plugin not called");
}

#[test]
fn check_gc_status_version_gates() {
    let p = Recorder::default();
    let (_, out, _) = call(&p, &about(), &add_env("CHECK"), r#"{"cniVersion":"0.3.1","name":"n"}"#);
    assert_eq!(err_of(&out).msg, "config version does not allow CHECK");
    let (code, _, _) = call(&p, &about(), &add_env("CHECK"), r#"{"cniVersion":"1.0.0","name":"n"}"#);
    assert_eq!(code, 0);
    let (_, out, _) = call(&p, &about(), &[("CNI_COMMAND", "GC"), ("CNI_PATH", "/x")], r#"{"cniVersion":"1.0.0","name":"n"}"#);
    assert_eq!(err_of(&out).msg, "config version does not allow GC");
    let old = About::new("r", "", &["0.4.0", "1.0.0"]);
    let (_, out, _) = call(&p, &old, &[("CNI_COMMAND", "STATUS"), ("CNI_PATH", "/x")], r#"{"cniVersion":"1.1.0","name":"n"}"#);
    assert_eq!(err_of(&out).msg, "plugin version does not allow STATUS");
    // defaults: GC and STATUS succeed
    for cmd in ["GC", "STATUS"] {
        let (code, out, _) = call(&p, &about(), &[("CNI_COMMAND", cmd), ("CNI_PATH", "/x")], r#"{"cniVersion":"1.1.0","name":"n"}"#);
        assert_eq!((code, out.as_str()), (0, ""), "{cmd}");
    }
    let (_, out, _) = call(&p, &about(), &[("CNI_COMMAND", "FROB"), ("CNI_PATH", "/x")], r#"{"cniVersion":"1.1.0","name":"n"}"#);
    assert_eq!((err_of(&out).code, err_of(&out).msg), (4, "unknown CNI_COMMAND: FROB".to_string()));
}

#[test]
fn plugin_error_passes_through() {
    let p = Recorder { fail_with: Some(CniError::with_details(11, "busy", "later")), ..Default::default() };
    let (code, out, _) = call(&p, &about(), &add_env("ADD"), r#"{"cniVersion":"1.0.0","name":"n"}"#);
    assert_eq!(code, 1);
    let e = err_of(&out);
    assert_eq!((e.code, e.msg.as_str(), e.details.as_str(), e.cni_version.as_str()), (11, "busy", "later", "1.0.0"));
    assert!(out.starts_with("{\n    \""), "indented like Go: {out}");
}

#[test]
fn own_netns_refused_before_the_plugin_runs() {
    let p = Recorder::default();
    let mut env = add_env("ADD");
    env.retain(|(k, _)| *k != "CNI_NETNS_OVERRIDE");
    env[2] = ("CNI_NETNS", "/proc/self/ns/net");
    let (code, out, _) = call(&p, &about(), &env, r#"{"cniVersion":"1.0.0","name":"n"}"#);
    assert_eq!(code, 1);
    assert_eq!(err_of(&out).code, 8);
    assert!(p.calls.borrow().is_empty());
    env.push(("CNI_NETNS_OVERRIDE", "TRUE"));
    assert_eq!(call(&p, &about(), &env, r#"{"cniVersion":"1.0.0","name":"n"}"#).0, 0);
}

struct Panicker;
impl Plugin for Panicker {
    fn add(&self, _: &CmdArgs) -> Result<CniResult, CniError> {
        panic!("boom")
    }
    fn check(&self, _: &CmdArgs) -> Result<(), CniError> {
        Ok(())
    }
    fn del(&self, _: &CmdArgs) -> Result<(), CniError> {
        Ok(())
    }
}

#[test]
fn a_panic_becomes_an_internal_error() {
    let env = env_map(&add_env("ADD"));
    let getenv = move |k: &str| env.get(k).cloned();
    let mut out = Vec::new();
    let code = dispatch(&Panicker, &about(), &getenv, &mut &br#"{"cniVersion":"1.0.0","name":"n"}"#[..], &mut out, &mut Vec::new());
    assert_eq!(code, 1);
    let e = err_of(std::str::from_utf8(&out).unwrap());
    assert_eq!(e.code, 999);
    assert!(e.msg.contains("panicked: boom"));
}

#[test]
fn cmd_args_helpers() {
    let a = CmdArgs { args: "IP=10.0.0.5;FOO=1".into(), path: "/a::/b".into(), ..Default::default() };
    assert_eq!(a.cni_args(&["IP"]).unwrap_err().code, 4);
    assert_eq!(a.paths(), vec![PathBuf::from("/a"), PathBuf::from("/b")]);
}

#[test]
fn valid_attachments_from_either_key() {
    let pair = |c: &str, i: &str| (c.to_string(), i.to_string());
    let a = |s: &str| valid_attachments(s.as_bytes());
    assert_eq!(a(r#"{"name":"n"}"#).unwrap(), None, "no key: nothing may be removed");
    assert_eq!(a(r#"{"name":"n","cni.dev/valid-attachments":[]}"#).unwrap(), Some(Attachments::new()));
    let both = a(r#"{"name":"n","cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}],
                 "cni.dev/attachments":[{"containerID":"c1","ifname":"eth0"},{"containerID":"c2","ifname":"net1"}]}"#)
    .unwrap()
    .unwrap();
    assert_eq!(both, [pair("c1", "eth0"), pair("c2", "net1")].into_iter().collect());
    let old = a(r#"{"cni.dev/attachments":[{"containerID":"c3","ifname":"eth0","extra":1}]}"#).unwrap().unwrap();
    assert_eq!(old, [pair("c3", "eth0")].into_iter().collect());
    assert_eq!(a(r#"{"cni.dev/valid-attachments":[{"ifname":"eth0"}]}"#).unwrap_err().code, 6);
    assert_eq!(a(r#"{"cni.dev/valid-attachments":{}}"#).unwrap_err().code, 6);
    let args = CmdArgs { stdin: br#"{"cni.dev/valid-attachments":[{"containerID":"x","ifname":"y"}]}"#.to_vec(), ..Default::default() };
    assert!(args.valid_attachments().unwrap().unwrap().contains(&pair("x", "y")));
}

#[test]
fn failures_are_collected() {
    let mut f = Failures::new();
    assert_eq!(f.note("a", Ok::<_, String>(1)), Some(1));
    assert_eq!(f.note::<(), _>("b", Err("x")), None);
    f.note::<(), _>("c", Err("y"));
    let e = f.finish().unwrap_err();
    assert_eq!((e.code, e.msg.as_str()), (999, "b: x; c: y"));
    assert!(Failures::new().finish().is_ok());
}

/// An ADD in progress counts as valid for GC within the grace period, whatever the runtime's
/// list says (issue 12, defect 2); its DEL ends that.
#[test]
fn an_add_in_progress_is_valid_for_gc_until_its_del() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let p = Recorder::default();
    let conf = r#"{"cniVersion":"1.1.0","name":"pnet"}"#;
    let mut env = add_env("ADD");
    env.push(("RCNI_PENDING_DIR", d));
    assert_eq!(call(&p, &about(), &env, conf).0, 0);
    let gc = |d: &str| CmdArgs {
        stdin: br#"{"cniVersion":"1.1.0","name":"pnet","cni.dev/valid-attachments":[{"containerID":"other","ifname":"eth0"}]}"#.to_vec(),
        pending_dir: Some(d.into()),
        ..Default::default()
    };
    let valid = gc(d).valid_attachments().unwrap().unwrap();
    assert!(valid.contains(&("c1".to_string(), "eth0".to_string())), "{valid:?}");
    assert!(valid.contains(&("other".to_string(), "eth0".to_string())));
    let no_list = CmdArgs { stdin: br#"{"cniVersion":"1.1.0","name":"pnet"}"#.to_vec(), pending_dir: Some(d.into()), ..Default::default() };
    assert_eq!(no_list.valid_attachments().unwrap(), None, "no list still means: remove nothing");
    let mut del = add_env("DEL");
    del.push(("RCNI_PENDING_DIR", d));
    assert_eq!(call(&p, &about(), &del, conf).0, 0);
    assert!(!gc(d).valid_attachments().unwrap().unwrap().contains(&("c1".to_string(), "eth0".to_string())));
}

#[test]
fn common_keys_of_the_wrong_type_are_refused_before_every_verb_but_del() {
    let p = Recorder::default();
    let a = about();
    for bad in [
        r#"{"cniVersion":"1.1.0","name":"n","type":5}"#,
        r#"{"cniVersion":"1.1.0","name":"n","type":"t","ipam":"host-local"}"#,
        r#"{"cniVersion":"1.1.0","name":"n","type":"t","dns":{"nameservers":"8.8.8.8"}}"#,
        r#"{"cniVersion":"1.1.0","name":"n","type":"t","capabilities":["portMappings"]}"#,
        r#"{"cniVersion":"1.1.0","name":"n","type":"t","runtimeConfig":"x"}"#,
        r#"{"cniVersion":"1.1.0","name":"n","type":"t","prevResult":5}"#,
        r#"{"cniVersion":"1.1.0","name":"n","type":"t","args":["x"]}"#,
    ] {
        for cmd in ["ADD", "CHECK", "GC", "STATUS"] {
            let (code, out, _) = call(&p, &a, &add_env(cmd), bad);
            assert_eq!((code, err_of(&out).code), (1, 6), "{cmd} {bad}: {out}");
        }
        // DEL reads what it needs: a plugin whose DEL ignores these keys still succeeds
        assert_eq!(call(&p, &a, &add_env("DEL"), bad).0, 0, "DEL {bad}");
    }
    assert_eq!(p.calls.borrow().iter().filter(|c| !c.starts_with("DEL")).count(), 0, "no verb but DEL ran");
    // null is absent
    let (code, out, _) = call(&p, &a, &add_env("ADD"), r#"{"cniVersion":"1.1.0","name":"n","type":"t","prevResult":null,"args":null}"#);
    assert_eq!(code, 0, "{out}");
}

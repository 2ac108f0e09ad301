//! `CNI_ARGS`: parsing with and without known keys, as the SDK and host-local read it. Nothing
//! panics; what parses is written back to a string that parses to the same pairs.
#![no_main]

use cni_plugin::CmdArgs;
use cni_types::CniArgs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(a) = CniArgs::parse(s) {
        let again = CniArgs::to_env_string(a.pairs());
        assert_eq!(CniArgs::parse(&again).expect("written back pairs parse"), a);
        for (k, _) in a.pairs() {
            assert!(a.get(k).is_some());
        }
    }
    for known in [&[][..], &["IP"][..], &["MAC"][..], &["K8S_POD_NAME", "K8S_POD_NAMESPACE", "IgnoreUnknown"][..]] {
        if let Ok(a) = CniArgs::parse_known(s, known) {
            assert_eq!(Some(&a), CniArgs::parse(s).ok().as_ref());
        }
    }
    let args = CmdArgs { args: s.to_string(), ..Default::default() };
    let _ = args.cni_args(&["IP", "MAC"]);
});

//! The runtime's result cache: a file in `<cacheDir>/results/` with any content, read as libcni
//! reads it (the entry, its result converted to each version, the attachment listings).
//! Nothing panics; an entry the cache writes back from what it read reads the same again.
#![no_main]

use cni_runtime::api::RuntimeConf;
use cni_runtime::cache::{Cache, Cached};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = rcni_fuzz::fresh_dir("cache");
    std::fs::create_dir_all(dir.join("results")).unwrap();
    std::fs::write(dir.join("results/net1-cid1-eth0"), data).unwrap();
    let cache = Cache::new(&dir);
    let rt = RuntimeConf { container_id: "cid1".into(), ifname: "eth0".into(), ..Default::default() };
    let entry = cache.read("net1", "cid1", "eth0").expect("reading an existing path");
    for v in cni_types::version::ALL.iter().copied().chain([""]) {
        let _ = cache.result("net1", v, &rt);
    }
    let _ = cache.attachments("");
    let _ = cache.attachments("cid1");
    let _ = cache.network_attachments("net1");
    if let Cached::Entry(info) = entry {
        if let Ok(Some(r)) = cache.result("net1", "1.1.0", &rt) {
            let rt = RuntimeConf { netns: info.netns.clone(), capability_args: info.capability_args.clone(), ..rt.clone() };
            cache.write(&r, &info.config, "net1", &rt).expect("writing the entry back");
            let again = cache.result("net1", "1.1.0", &rt).expect("reading it again").expect("present");
            assert_eq!(again, r);
        }
    }
    let _ = cache.delete("net1", &rt);
});

//! host-local's lease store over a directory of any content, as the store reads it: leases named
//! by address (`<id>\r\n<ifname>`, or the old `<id>`), `last_reserved_ip.<N>`, rcni's index of
//! hard links, temporary files. Nothing panics; an allocation is found by the index afterwards,
//! a release frees every address the allocation took, GC keeps a valid holder's leases.
//!
//! Input: line 1 the container ID, line 2 the interface name, then files, each `name\n` +
//! content, separated by lines `===`. A name may hold one `/` (a file in a subdirectory, such as
//! `.rcni-by-id/`); content `@other` makes a hard link to the file `other` made before it.
#![no_main]

use ipam::host_local::{allocate, load_config};
use ipam::store::Store;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeSet;
use std::path::Path;

fn plain(part: &str) -> bool {
    !part.is_empty() && part != "." && part != ".." && !part.contains('\0') && part.len() < 200
}

fn build(net: &Path, files: &[u8]) {
    let text = String::from_utf8_lossy(files);
    for block in text.split("\n===\n").take(24) {
        let (name, content) = block.split_once('\n').unwrap_or((block, ""));
        let parts: Vec<&str> = name.splitn(2, '/').collect();
        if !parts.iter().all(|p| plain(p) && !p.contains('/')) || parts.first() == Some(&"lock") {
            continue;
        }
        let path = net.join(name);
        if parts.len() == 2 {
            let _ = std::fs::create_dir_all(net.join(parts[0]));
        }
        match content.strip_prefix('@') {
            Some(target) if plain(target) => {
                let _ = std::fs::hard_link(net.join(target), &path);
            }
            _ => {
                let _ = std::fs::write(&path, content);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((head, files)) = rcni_fuzz::header(data, 2) else { return };
    let (id, ifname) = (head[0], head[1]);
    // (the SDK refuses other IDs and names before host-local runs)
    if cni_types::validate::container_id(id).is_err() || cni_types::validate::interface_name(ifname).is_err() {
        return;
    }
    let root = rcni_fuzz::fresh_dir("leases");
    let net = root.join("net1");
    std::fs::create_dir_all(&net).unwrap();
    build(&net, files);

    let store = Store::open(&root, "net1").expect("opening the store");
    let _ = (store.get_by_id_indexed(id, ifname), store.get_by_id(id, ifname), store.find_by_id(id, ifname));
    for n in 0..3 {
        if let Some(ip) = store.last_reserved_ip(n) {
            let _ = store.is_reserved(&ip);
        }
    }
    drop(store);

    let conf = format!(
        r#"{{"cniVersion":"1.1.0","name":"net1","ipam":{{"type":"host-local","dataDir":{},"ranges":[[{{"subnet":"10.1.2.0/29"}}],[{{"subnet":"fd00:1::/125"}}]]}}}}"#,
        serde_json::to_string(&root.to_string_lossy()).unwrap()
    );
    let conf = load_config(conf.as_bytes(), "").expect("the fixed config");
    let taken = match allocate(&conf, id, ifname) {
        Ok(r) => r.ips.iter().map(|i| i.address.addr()).collect::<Vec<_>>(),
        Err(_) => Vec::new(),
    };
    let store = Store::open(&root, "net1").unwrap();
    let held = store.get_by_id_indexed(id, ifname);
    for ip in &taken {
        assert!(held.contains(ip), "{ip} allocated to {id}/{ifname} but not found ({held:?})");
    }
    let valid: BTreeSet<(String, String)> = [(id.to_string(), ifname.to_string())].into_iter().collect();
    let (_released, _failed) = store.gc(&valid);
    for ip in &taken {
        assert!(store.is_reserved(ip), "GC released {ip} of the valid holder {id}/{ifname}");
    }
    store.release_by_id(id, ifname).expect("releasing");
    for ip in &taken {
        assert!(!store.is_reserved(ip), "{ip} still reserved after {id}/{ifname} was released");
    }
});

//! tap against the kernel (netsandbox only): the device in the container with the requested
//! owner, group, MTU, MAC and queue mode (the tun driver's own sysfs view: `tun_flags`,
//! `owner`, `group`), on a bridge inside the container with IPAM addresses, CHECK; refused
//! input (`selinuxContext`, a missing bridge) and a failing IPAM leaving nothing; DEL, DEL after DEL, DEL with
//! the namespace gone. Subnet 10.148.0.0/16.

use rcni_tests::{link, require_netsandbox, run_ok, Call, Installed, TestNetns};
use serde_json::{json, Value};

// <linux/if_tun.h>
const IFF_TAP: u32 = 0x0002;
const IFF_MULTI_QUEUE: u32 = 0x0100;
const IFF_PERSIST: u32 = 0x0800;
const IFF_NO_PI: u32 = 0x1000;
const IFF_VNET_HDR: u32 = 0x4000;

fn conf(extra: Value) -> String {
    let mut c = json!({"cniVersion": "1.0.0", "name": "tapnet", "type": "tap"});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c.to_string()
}

/// `/sys/class/net/DEV/FILE` inside the namespace (`ip netns exec` mounts its sysfs).
fn sys(pod: &TestNetns, dev: &str, file: &str) -> String {
    let out = pod.exec(&["cat", &format!("/sys/class/net/{dev}/{file}")]);
    assert!(out.status.success(), "{dev}/{file}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn tun_flags(pod: &TestNetns, dev: &str) -> u32 {
    u32::from_str_radix(sys(pod, dev, "tun_flags").trim_start_matches("0x"), 16).unwrap()
}

fn flags(l: &Value) -> Vec<String> {
    l["flags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect()
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn tap_devices_with_owner_group_mtu_and_queue_mode() {
    require_netsandbox();
    let inst = Installed::new();
    let tap = inst.path("tap");
    let pod = TestNetns::new("rcni-tap-a");
    let call = |cmd: &'static str, ifname: &str| {
        let mut c = Call::new(cmd, "tap-a", ifname).netns(&pod.path());
        c.path = inst.dir.path().display().to_string();
        c
    };
    let mq = conf(json!({"multiQueue": true, "owner": 1000, "group": 100, "mtu": 1400, "mac": "02:00:00:14:80:01"}));
    let r = call("ADD", "tap0").ok(&tap, &mq);
    assert_eq!(r["interfaces"], json!([{"name": "tap0", "mac": "02:00:00:14:80:01", "sandbox": pod.path()}]), "{r}");
    let l = link(Some(&pod.name), "tap0").expect("tap0 in the container");
    assert_eq!((l["linkinfo"]["info_kind"].as_str(), l["linkinfo"]["info_data"]["type"].as_str()), (Some("tun"), Some("tap")), "{l}");
    assert_eq!((l["mtu"].as_u64(), l["address"].as_str()), (Some(1400), Some("02:00:00:14:80:01")));
    assert!(flags(&l).contains(&"UP".to_string()), "{l}");
    assert_eq!(tun_flags(&pod, "tap0"), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE | IFF_PERSIST);
    assert_eq!((sys(&pod, "tap0", "owner"), sys(&pod, "tap0", "group")), ("1000".to_string(), "100".to_string()));
    call("CHECK", "tap0").ok(&tap, &{
        let mut c: Value = serde_json::from_str(&mq).unwrap();
        c["prevResult"] = r.clone();
        c.to_string()
    });

    // single queue, no owner or group, kernel's MTU; on a bridge inside the container, with IPAM
    run_ok("ip", &["-n", &pod.name, "link", "add", "tapbr0", "type", "bridge"]);
    run_ok("ip", &["-n", &pod.name, "link", "set", "tapbr0", "up"]);
    let data = tempfile::tempdir().unwrap();
    let sq = conf(json!({"bridge": "tapbr0",
        "ipam": {"type": "host-local", "dataDir": data.path(), "ranges": [[{"subnet": "10.148.1.0/24"}]]}}));
    let r1 = call("ADD", "tap1").ok(&tap, &sq);
    assert_eq!(r1["ips"][0]["address"], "10.148.1.2/24", "{r1}");
    assert_eq!(tun_flags(&pod, "tap1"), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_PERSIST);
    assert_eq!((sys(&pod, "tap1", "owner"), sys(&pod, "tap1", "group")), ("-1".to_string(), "-1".to_string()));
    let l1 = link(Some(&pod.name), "tap1").unwrap();
    assert_eq!((l1["mtu"].as_u64(), l1["master"].as_str()), (Some(1500), Some("tapbr0")), "{l1}");
    let addrs = run_ok("ip", &["-n", &pod.name, "-4", "-o", "addr", "show", "dev", "tap1"]);
    assert!(addrs.contains("10.148.1.2/24"), "{addrs}");

    // refused input leaves nothing
    let e = call("ADD", "tap2").err(&tap, &conf(json!({"selinuxContext": "system_u:system_r:container_t:s0"})));
    assert_eq!(e["code"], 2, "{e}");
    assert!(e["msg"].as_str().unwrap().contains("selinuxContext"), "{e}");
    let e = call("ADD", "tap2").err(&tap, &conf(json!({"bridge": "nobr0"})));
    assert!(e["msg"].as_str().unwrap().contains("nobr0"), "{e}");
    let e = call("ADD", "tap0").err(&tap, &mq);
    assert!(e["msg"].as_str().unwrap().contains("already exists"), "{e}");
    let e = call("ADD", "tap2").err(&tap, &conf(json!({"ipam": {"type": "no-such-ipam"}})));
    assert!(e["msg"].as_str().unwrap().contains("no-such-ipam"), "{e}");
    assert!(link(Some(&pod.name), "tap2").is_none(), "a failed ADD removes its device");
    assert_eq!(tun_flags(&pod, "tap0") & IFF_MULTI_QUEUE, IFF_MULTI_QUEUE, "the existing tap0 is untouched");

    // DEL, DEL after DEL
    call("DEL", "tap1").ok(&tap, &sq);
    assert!(link(Some(&pod.name), "tap1").is_none());
    assert!(!data.path().join("tapnet/10.148.1.2").exists(), "the lease is released");
    call("DEL", "tap1").ok(&tap, &sq);
    call("DEL", "tap0").ok(&tap, &mq);
    assert!(link(Some(&pod.name), "tap0").is_none());
    let path = pod.path();
    drop(pod);
    Call::new("DEL", "tap-a", "tap0").netns(&path).ok(&tap, &mq);
    Call::new("DEL", "tap-a", "tap0").netns("").ok(&tap, &mq);
}

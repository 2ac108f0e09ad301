//! The malformed-input matrix (netsandbox only): every plugin of the multi-call binary × bad
//! input (empty, truncated, wrong JSON types, unknown versions, names with `/` or `..` or 255
//! bytes, each plugin's own keys with bad values, bad `CNI_*` variables) × ADD, CHECK, DEL, GC,
//! STATUS, and unknown commands. Each cell must answer with a CNI error JSON on stdout carrying
//! the code the table says (or succeed, where the table says so), exit non-zero on error, never
//! panic, answer within [`CALL_TIMEOUT`], and change nothing: the links, qdiscs, addresses,
//! routes and some sysctls of every namespace the test made, the nftables ruleset, and the
//! /var/lib/cni and /run/cni trees (the plugins' working directory is in there too) are compared
//! before and after every cell. A failure names its cell: `[plugin × input × command]`.
//!
//! For exact comparisons the matrix runs in a node of its own: the test re-runs itself under
//! `unshare --net --mount` (`rcni_tests::own_node`) with private state directories, so no other test's
//! activity shows up in the snapshots. In that node a bridge `rcnimx0` (172.28.74.1/24), a veth
//! `vethmx0` on it and `eth0` (172.28.74.2/24) in namespace `rcni-mx-c` stand for an attachment
//! an earlier plugin made: the chained plugins (portmap, firewall, tuning, bandwidth) get it as
//! prevResult, so given valid input they would really act. The plugins that make interfaces
//! (bridge, ptp, loopback, host-local, static) work on the empty namespace `rcni-mx-d`.
//!
//! Codes, from the spec (../shared/reference/spec-and-libcni.md): 1 incompatible version,
//! 2 unsupported field (an unknown backend), 4 invalid environment variable (`CNI_*`, and
//! `CNI_ARGS` values), 6 decoding failure (a common key of the wrong JSON type, undecodable
//! input), 7 invalid network config. Where Go's plugins answer 999 for a plain error (a bad key
//! value, a bad CNI_ARGS pair) rcni gives the spec's code. A plugin's own key of the wrong JSON
//! type is 6 or 7 (the spec does not separate "cannot decode" from "invalid" for a known key).
//! Expectations that are a choice, per case:
//! - DEL of input that decodes but holds bad values succeeds: nothing was created with it, and a
//!   runtime must be able to DEL after any failed ADD. Undecodable input, an invalid name, an
//!   unsupported version and invalid `CNI_*` variables are refused by DEL too (the SDK checks
//!   them before any verb, as Go's skel does; rcni's SDK also decodes the common keys).
//! - GC and STATUS of a config with bad plugin values may succeed or refuse: the spec asks GC to
//!   release what is not valid and STATUS whether ADD could work, and neither needs every key.
//! - A 255-byte container ID or network name is valid (the spec's pattern has no length limit),
//!   and plugins that never open the container's namespace (host-local, static, portmap,
//!   firewall) need not look at `CNI_NETNS`: those cells may fail (cleanly) or succeed. After a
//!   successful ADD, a DEL of the same input, and then a second ADD and DEL, must leave exactly
//!   what the first pair left (a network's bridge, nftables skeleton and host-local's lock stay,
//!   by design).
//! - DEL and GC remove things (what an earlier failing cell may have left): for them only
//!   additions count.
//!
//! What Debian's Go plugins (/usr/lib/cni, 1.1.1) answer to the same cells, for comparison: the
//! same codes where their skel decides (1 for versions, 4 for `CNI_*` variables and unknown
//! commands, 6 for undecodable stdin, 7 for network names), 999 for every plugin-specific error
//! (`invalid VLAN ID 5000`, `invalid CIDR address: banana`, `ARGS: invalid pair`, a key of the
//! wrong type), and blocked DELs where rcni's succeed (bridge with a bad `vlan`, bandwidth with
//! a rate but no burst).
//!
//! Subnets 172.28.70.0/24–172.28.75.0/24.

use rcni_tests::{run_ok, Installed, TestNetns};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The hand-made attachment's namespace (chained plugins).
const NS: &str = "rcni-mx-c";
/// An empty container namespace (plugins that make interfaces).
const NS_EMPTY: &str = "rcni-mx-d";
/// The plugins' working directory: inside a snapshotted tree, so relative paths show up.
const WORKDIR: &str = "/var/lib/cni/mx-cwd";
const CMDS: [&str; 5] = ["ADD", "CHECK", "DEL", "GC", "STATUS"];
/// The longest a plugin may take on bad input before the cell counts as a hang.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What a cell must answer.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Want {
    /// An error with this code.
    Code(u64),
    /// An error with one of these codes.
    OneOf(&'static [u64]),
    /// Any CNI error (the spec names no code; Go answers 999).
    AnyError,
    /// Success.
    Succeeds,
    /// Success or an error with one of these codes.
    SucceedsOr(&'static [u64]),
    /// Valid input at the edge: success (see the module's comment) or any clean error.
    Either,
    /// Not a malformed-input cell for this command.
    Skip,
}
use Want::*;

/// One row: an input (a change to the plugin's valid config, or raw bytes, plus `CNI_*`
/// variables set or cleared) and what each of ADD, CHECK, DEL, GC, STATUS must answer.
struct Row {
    label: String,
    input: Input,
    env: Vec<(&'static str, String)>,
    want: [Want; 5],
}

impl Row {
    fn env(mut self, var: &'static str, value: &str) -> Self {
        self.env.push((var, value.to_string()));
        self
    }
}

type PatchFn = Box<dyn Fn(&mut Value)>;
type RawFn = Box<dyn Fn(&[u8]) -> Vec<u8>>;

enum Input {
    /// The plugin's valid config, changed by this function.
    Patch(PatchFn),
    /// Raw stdin, derived from the plugin's valid config.
    Raw(RawFn),
}

fn all(w: Want) -> [Want; 5] {
    [w; 5]
}

/// ADD, CHECK, DEL refuse with `code`; GC and STATUS take no attachment and are not concerned.
fn attachment_env(code: u64) -> [Want; 5] {
    [Code(code), Code(code), Code(code), Skip, Skip]
}

/// A bad value of a plugin's own key: ADD and CHECK refuse with one of `codes`, DEL succeeds,
/// GC and STATUS succeed or refuse with one of `codes`.
fn bad(codes: &'static [u64]) -> [Want; 5] {
    [OneOf(codes), OneOf(codes), Succeeds, SucceedsOr(codes), SucceedsOr(codes)]
}

/// A plugin's own key of the wrong JSON type: like a bad value, 6 or 7.
fn own_type() -> [Want; 5] {
    bad(&[6, 7])
}

/// A common key of the wrong JSON type: code 6 (the SDK decodes them before ADD, CHECK, GC and
/// STATUS); DEL succeeds unless it needs that key.
fn common_type() -> [Want; 5] {
    [Code(6), Code(6), SucceedsOr(&[6]), Code(6), Code(6)]
}

/// A bad `CNI_ARGS` value: an invalid environment variable (4) or config (7) where it is read
/// (GC and STATUS need not read it).
fn bad_args() -> [Want; 5] {
    [OneOf(&[4, 7]), OneOf(&[4, 7]), Succeeds, SucceedsOr(&[4, 7]), SucceedsOr(&[4, 7])]
}

fn patch(f: impl Fn(&mut Value) + 'static) -> Input {
    Input::Patch(Box::new(f))
}

fn set(path: &'static str, v: Value) -> Input {
    patch(move |c| *pointer(c, path) = v.clone())
}

fn remove(path: &'static str) -> Input {
    patch(move |c| {
        let (parent, key) = path.rsplit_once('/').unwrap_or(("", path));
        let p = if parent.is_empty() { c } else { pointer(c, parent) };
        p.as_object_mut().unwrap().remove(key);
    })
}

/// `c` at a `/`-separated path (indices for arrays), created as objects on the way.
fn pointer<'a>(c: &'a mut Value, path: &str) -> &'a mut Value {
    path.split('/').fold(c, |v, k| match k.parse::<usize>() {
        Result::Ok(i) if v.is_array() => &mut v[i],
        _ => &mut v[k],
    })
}

fn row(label: &str, input: Input, want: [Want; 5]) -> Row {
    Row { label: label.into(), input, env: vec![], want }
}

fn env_row(label: &str, var: &'static str, value: &str, want: [Want; 5]) -> Row {
    row(label, patch(|_| {}), want).env(var, value)
}

/// The attachment that the test set up by hand, as the prevResult of chained plugins.
fn prev() -> Value {
    json!({"cniVersion": "1.1.0",
        "interfaces": [{"name": "rcnimx0"}, {"name": "vethmx0"}, {"name": "eth0", "sandbox": format!("/var/run/netns/{NS}")}],
        "ips": [{"address": "172.28.74.2/24", "gateway": "172.28.74.1", "interface": 2}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "172.28.74.1"}]})
}

struct PluginCase {
    name: &'static str,
    /// A valid config (cniVersion and name are set by every cell).
    conf: Value,
    /// Chained: works on the hand-made attachment, given as prevResult (except to GC and STATUS).
    chained: bool,
    /// Opens the container's namespace (so a bad `CNI_NETNS` must fail its ADD).
    opens_netns: bool,
    rows: Vec<Row>,
}

fn host_local_ipam(subnet: &str) -> Value {
    json!({"type": "host-local", "ranges": [[{"subnet": subnet}]]})
}

fn plugins() -> Vec<PluginCase> {
    vec![
        PluginCase {
            name: "bridge",
            conf: json!({"type": "bridge", "bridge": "rcnimxb", "isGateway": true, "ipMasq": true, "ipam": host_local_ipam("172.28.70.0/24")}),
            chained: false,
            opens_netns: true,
            rows: vec![
                row("bridge name of 16 bytes", set("bridge", json!("rcnimx-16-bytes0")), bad(&[7])),
                row("bridge name with /", set("bridge", json!("a/b")), bad(&[7])),
                row("bridge name ..", set("bridge", json!("..")), bad(&[7])),
                row("mtu -1", set("mtu", json!(-1)), bad(&[7])),
                row("mtu 70000", set("mtu", json!(70000)), bad(&[7])),
                row("vlan 4095", set("vlan", json!(4095)), bad(&[7])),
                row("vlan -1", set("vlan", json!(-1)), bad(&[7])),
                row("vlanTrunk id 0", set("vlanTrunk", json!([{"id": 0}])), bad(&[7])),
                row("vlanTrunk minID alone", set("vlanTrunk", json!([{"minID": 10}])), bad(&[7])),
                row("vlanTrunk minID > maxID", set("vlanTrunk", json!([{"minID": 20, "maxID": 10}])), bad(&[7])),
                row(
                    "hairpinMode and promiscMode",
                    patch(|c| {
                        c["hairpinMode"] = json!(true);
                        c["promiscMode"] = json!(true);
                    }),
                    bad(&[7]),
                ),
                row("ipMasqBackend bogus", set("ipMasqBackend", json!("bogus")), bad(&[2])),
                row("disableContainerInterface with ipam", set("disableContainerInterface", json!(true)), bad(&[7])),
                row("isGateway a string", set("isGateway", json!("yes")), own_type()),
                row("vlan a string", set("vlan", json!("5")), own_type()),
                row("ipam.type with /", set("ipam/type", json!("../host-local")), bad(&[7, 50, 999])),
                row(
                    "ipam.type not on CNI_PATH",
                    set("ipam/type", json!("no-such-ipam")),
                    [AnyError, AnyError, Succeeds, SucceedsOr(&[7, 999]), Code(50)],
                ),
                row("ipam subnet banana", set("ipam/ranges/0/0/subnet", json!("banana")), bad(&[7])),
                row("ipam gateway of the other family", set("ipam/ranges/0/0/gateway", json!("fd00::1")), bad(&[7])),
                row("args.cni.mac bad", set("args", json!({"cni": {"mac": "zz:zz"}})), bad(&[7])),
                row("runtimeConfig.mac bad", set("runtimeConfig", json!({"mac": "01:02"})), bad(&[7])),
                row("CNI_ARGS MAC=banana", patch(|_| {}), bad_args()).env("CNI_ARGS", "MAC=banana"),
            ],
        },
        PluginCase {
            name: "ptp",
            conf: json!({"type": "ptp", "ipMasq": true, "ipam": host_local_ipam("172.28.71.0/24")}),
            chained: false,
            opens_netns: true,
            rows: vec![
                row("no ipam", remove("ipam"), bad(&[7])),
                row("mtu -1", set("mtu", json!(-1)), bad(&[7])),
                row("ipMasqBackend bogus", set("ipMasqBackend", json!("bogus")), bad(&[2])),
                row("ipMasq a number", set("ipMasq", json!(1)), own_type()),
                row("ipam.type with /", set("ipam/type", json!("a/b")), bad(&[7, 50, 999])),
                row("ipam subnet banana", set("ipam/ranges/0/0/subnet", json!("banana")), bad(&[7])),
            ],
        },
        PluginCase {
            name: "host-local",
            conf: json!({"type": "host-local", "ipam": host_local_ipam("172.28.72.0/24")}),
            chained: false,
            opens_netns: false,
            rows: vec![
                row("no ipam", remove("ipam"), bad(&[7])),
                row("subnet banana", set("ipam/ranges/0/0/subnet", json!("banana")), bad(&[7])),
                row("subnet not a network address", set("ipam/ranges/0/0/subnet", json!("172.28.72.1/24")), bad(&[7])),
                row("subnet /32", set("ipam/ranges/0/0/subnet", json!("172.28.72.0/32")), bad(&[7])),
                row("rangeStart outside the subnet", set("ipam/ranges/0/0/rangeStart", json!("172.28.99.5")), bad(&[7])),
                row(
                    "rangeStart after rangeEnd",
                    patch(|c| {
                        c["ipam"]["ranges"][0][0]["rangeStart"] = json!("172.28.72.50");
                        c["ipam"]["ranges"][0][0]["rangeEnd"] = json!("172.28.72.10");
                    }),
                    bad(&[7]),
                ),
                row(
                    "overlapping range sets",
                    set("ipam/ranges", json!([[{"subnet": "172.28.72.0/24"}], [{"subnet": "172.28.72.0/25"}]])),
                    bad(&[7]),
                ),
                row(
                    "two families in one set",
                    set("ipam/ranges", json!([[{"subnet": "172.28.72.0/24"}, {"subnet": "fd00:2872::/64"}]])),
                    bad(&[7]),
                ),
                row("gateway of the other family", set("ipam/ranges/0/0/gateway", json!("fd00::1")), bad(&[7])),
                row("route dst banana", set("ipam/routes", json!([{"dst": "banana"}])), bad(&[7])),
                row("relative dataDir", set("ipam/dataDir", json!("mx-rel/leases")), bad(&[7])),
                row("ranges a string", set("ipam/ranges", json!("172.28.72.0/24")), own_type()),
                row("dataDir a number", set("ipam/dataDir", json!(5)), own_type()),
                row("CNI_ARGS IP=banana", patch(|_| {}), bad_args()).env("CNI_ARGS", "IP=banana"),
                row("CNI_ARGS IP outside the ranges", patch(|_| {}), [Code(7), Skip, Succeeds, Skip, Skip])
                    .env("CNI_ARGS", "IgnoreUnknown=1;IP=10.1.2.3"),
                row("args.cni.ips bad", set("args", json!({"cni": {"ips": ["banana"]}})), bad(&[7])),
                row("runtimeConfig.ips bad", set("runtimeConfig", json!({"ips": ["172.28.72.5/99"]})), bad(&[7])),
                row(
                    "resolvConf missing",
                    set("ipam/resolvConf", json!("/nonexistent/resolv.conf")),
                    [AnyError, Skip, Succeeds, Skip, SucceedsOr(&[5, 50])],
                ),
            ],
        },
        PluginCase {
            name: "static",
            conf: json!({"type": "static", "ipam": {"type": "static", "addresses": [{"address": "172.28.73.2/24", "gateway": "172.28.73.1"}]}}),
            chained: false,
            opens_netns: false,
            rows: vec![
                row("address without prefix", set("ipam/addresses/0/address", json!("172.28.73.2")), bad(&[7])),
                row("address banana", set("ipam/addresses/0/address", json!("banana/24")), bad(&[7])),
                row("gateway banana", set("ipam/addresses/0/gateway", json!("banana")), bad(&[7])),
                row("gateway of the other family", set("ipam/addresses/0/gateway", json!("fd00::1")), bad(&[7])),
                row("route dst banana", set("ipam/routes", json!([{"dst": "banana"}])), bad(&[7])),
                row("addresses a string", set("ipam/addresses", json!("172.28.73.2/24")), own_type()),
                row("CNI_ARGS IP=banana", patch(|_| {}), bad_args()).env("CNI_ARGS", "IP=banana"),
                row("CNI_ARGS GATEWAY=banana", patch(|_| {}), bad_args()).env("CNI_ARGS", "IP=172.28.73.9/24;GATEWAY=banana"),
            ],
        },
        PluginCase { name: "loopback", conf: json!({"type": "loopback"}), chained: false, opens_netns: true, rows: vec![] },
        PluginCase {
            name: "dhcp",
            // no daemon listens on this socket: ADD and CHECK are code 11, DEL has nothing to release
            conf: json!({"type": "dhcp", "ipam": {"type": "dhcp", "daemonSocketPath": "/run/cni/rcni-mx-no-daemon.sock"}}),
            chained: false,
            opens_netns: false,
            rows: vec![
                row("daemon unreachable", patch(|_| {}), [Code(11), Code(11), Succeeds, Succeeds, Code(50)]),
                row("provide without value or fromArg", set("ipam/provide", json!([{"option": "host-name"}])), bad(&[7])),
                row("provide option 53", set("ipam/provide", json!([{"option": "53", "value": "1"}])), bad(&[7])),
                row("request an unknown option", set("ipam/request", json!([{"option": "no-such-option"}])), bad(&[7])),
                row("provide a string", set("ipam/provide", json!("host-name")), own_type()),
                row("priority a string", set("ipam/priority", json!("5")), own_type()),
                row("daemonSocketPath a number", set("ipam/daemonSocketPath", json!(5)), own_type()),
            ],
        },
        PluginCase {
            name: "portmap",
            conf: json!({"type": "portmap", "capabilities": {"portMappings": true},
                "runtimeConfig": {"portMappings": [{"hostPort": 47701, "containerPort": 80, "protocol": "tcp"}]}}),
            chained: true,
            opens_netns: false,
            rows: vec![
                row("hostPort 70000", set("runtimeConfig/portMappings/0/hostPort", json!(70000)), bad(&[6, 7])),
                row("hostPort 0", set("runtimeConfig/portMappings/0/hostPort", json!(0)), bad(&[7])),
                row("containerPort missing", remove("runtimeConfig/portMappings/0/containerPort"), bad(&[6, 7])),
                row("protocol icmp", set("runtimeConfig/portMappings/0/protocol", json!("icmp")), bad(&[7])),
                row("hostIP banana", set("runtimeConfig/portMappings/0/hostIP", json!("banana")), bad(&[7])),
                row("markMasqBit 32", set("markMasqBit", json!(32)), bad(&[7])),
                row(
                    "markMasqBit with externalSetMarkChain",
                    patch(|c| {
                        c["markMasqBit"] = json!(5);
                        c["externalSetMarkChain"] = json!("KUBE-MARK-MASQ");
                    }),
                    bad(&[2, 7]),
                ),
                row("backend bogus", set("backend", json!("bogus")), bad(&[2])),
                row("portMappings a string", set("runtimeConfig/portMappings", json!("47701:80")), own_type()),
                row("hostPort a string", set("runtimeConfig/portMappings/0/hostPort", json!("47701")), own_type()),
            ],
        },
        PluginCase {
            name: "firewall",
            conf: json!({"type": "firewall"}),
            chained: true,
            opens_netns: false,
            rows: vec![
                row("backend bogus", set("backend", json!("bogus")), bad(&[2])),
                row("ingressPolicy bogus", set("ingressPolicy", json!("bogus")), bad(&[2, 7])),
                row(
                    "iptables backend, iptablesAdminChainName of 40 bytes",
                    patch(|c| {
                        c["backend"] = json!("iptables");
                        c["iptablesAdminChainName"] = json!("CNI-ADMIN-0123456789012345678901234567");
                    }),
                    bad(&[7]),
                ),
                row("ingressPolicy a number", set("ingressPolicy", json!(1)), own_type()),
                row("cniVersion 0.3.1", set("cniVersion", json!("0.3.1")), [Code(1), Code(1), Code(1), Skip, Skip]),
            ],
        },
        PluginCase {
            name: "tuning",
            conf: json!({"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.arp_notify": "1"}}),
            chained: true,
            opens_netns: true,
            rows: vec![
                row("sysctl outside net", set("sysctl", json!({"kernel.hostname": "x"})), bad(&[7])),
                row(
                    "sysctl with .. (no such sysctl)",
                    set("sysctl", json!({"net.ipv4.conf.eth0/../../../../kernel.hostname": "x"})),
                    [AnyError, AnyError, Succeeds, Either, Either],
                ),
                row("sysctl not a string", set("sysctl", json!({"net.ipv4.conf.eth0.arp_notify": 1})), own_type()),
                row("mac banana", set("mac", json!("banana")), bad(&[7])),
                row("mtu -1", set("mtu", json!(-1)), bad(&[7])),
                row("txQLen -1", set("txQLen", json!(-1)), bad(&[7])),
                row("promisc a string", set("promisc", json!("yes")), own_type()),
                // (DEL needs dataDir to find the backup)
                row(
                    "dataDir a number",
                    set("dataDir", json!(5)),
                    [OneOf(&[6, 7]), OneOf(&[6, 7]), SucceedsOr(&[6, 7]), SucceedsOr(&[6, 7]), SucceedsOr(&[6, 7])],
                ),
                row("relative dataDir", set("dataDir", json!("mx-rel/tuning")), bad(&[7])),
                row("CNI_ARGS MAC=banana", patch(|_| {}), bad_args()).env("CNI_ARGS", "MAC=banana"),
            ],
        },
        PluginCase {
            name: "bandwidth",
            conf: json!({"type": "bandwidth", "ingressRate": 8_000_000, "ingressBurst": 800_000, "egressRate": 8_000_000, "egressBurst": 800_000}),
            chained: true,
            opens_netns: true,
            rows: vec![
                row("ingressRate without burst", remove("ingressBurst"), bad(&[7])),
                row("egressBurst of 2^35 bytes", set("egressBurst", json!(1u64 << 38)), bad(&[7])),
                row("ingressRate negative", set("ingressRate", json!(-1)), own_type()),
                row("ingressRate a string", set("ingressRate", json!("8mbit")), own_type()),
                row("runtimeConfig.bandwidth a string", set("runtimeConfig", json!({"bandwidth": "fast"})), own_type()),
                row("cniVersion 0.2.0", set("cniVersion", json!("0.2.0")), [Code(1), Code(1), Code(1), Skip, Skip]),
            ],
        },
        // (a device no node has: a cell whose ADD succeeded would move the bridge's veth away)
        PluginCase {
            name: "host-device",
            conf: json!({"type": "host-device", "device": "rcnimxnohd0"}),
            chained: false,
            opens_netns: true,
            rows: vec![
                row("hwaddr banana", set("hwaddr", json!("banana")), bad(&[7])),
                row("kernelpath outside /sys/devices", set("kernelpath", json!("/etc/passwd")), bad(&[7])),
                row("kernelpath with ..", set("kernelpath", json!("/sys/devices/../../etc")), bad(&[7])),
                row("pciBusID with /", set("pciBusID", json!("../../../etc")), bad(&[7])),
                row("runtimeConfig.deviceID with /", set("runtimeConfig", json!({"deviceID": "a/b"})), bad(&[7])),
                row("no device at all", remove("device"), bad(&[7])),
                row("device a number", set("device", json!(5)), own_type()),
            ],
        },
        // (with `table`, so a cell whose ADD succeeded adds only a rule, which its DEL removes)
        PluginCase {
            name: "sbr",
            conf: json!({"type": "sbr", "table": 1234}),
            chained: true,
            opens_netns: true,
            rows: vec![
                row("table 0", set("table", json!(0)), bad(&[7])),
                row("table 2^32", set("table", json!(1u64 << 32)), bad(&[7])),
                row("table a string", set("table", json!("100")), own_type()),
            ],
        },
        PluginCase {
            name: "tap",
            conf: json!({"type": "tap", "multiQueue": true}),
            chained: false,
            opens_netns: true,
            rows: vec![
                row("mtu -1", set("mtu", json!(-1)), bad(&[7])),
                row("mac banana", set("mac", json!("banana")), bad(&[7])),
                row("runtimeConfig.mac bad", set("runtimeConfig", json!({"mac": "01:02"})), bad(&[7])),
                row("selinuxContext", set("selinuxContext", json!("system_u:system_r:container_t:s0")), bad(&[2])),
                row("bridge with /", set("bridge", json!("a/b")), bad(&[7])),
                row("owner -1", set("owner", json!(-1)), own_type()),
                row("multiQueue a string", set("multiQueue", json!("yes")), own_type()),
                row("CNI_ARGS MAC=banana", patch(|_| {}), bad_args()).env("CNI_ARGS", "MAC=banana"),
            ],
        },
        // (this kernel has no VRFs: every ADD of valid input fails with 50)
        PluginCase {
            name: "vrf",
            conf: json!({"type": "vrf", "vrfname": "rcnimxvrf"}),
            chained: true,
            opens_netns: true,
            rows: vec![
                row("no vrfname", remove("vrfname"), bad(&[7])),
                row("vrfname with /", set("vrfname", json!("a/b")), bad(&[7])),
                row("vrfname of 16 bytes", set("vrfname", json!("rcnimx-16-bytes0")), bad(&[7])),
                row("table -1", set("table", json!(-1)), own_type()),
                row("table a string", set("table", json!("10")), own_type()),
                row("cniVersion 0.3.0", set("cniVersion", json!("0.3.0")), [Code(1), Code(1), Code(1), Skip, Skip]),
            ],
        },
        PluginCase {
            name: "macvlan",
            conf: json!({"type": "macvlan", "master": "rcnimx0", "ipam": host_local_ipam("172.28.75.0/24")}),
            chained: false,
            opens_netns: true,
            rows: vec![
                row("mode l3", set("mode", json!("l3")), bad(&[7])),
                row("mtu -1", set("mtu", json!(-1)), bad(&[7])),
                row("mtu above the master's", set("mtu", json!(9000)), bad(&[7])),
                row("mac banana", set("mac", json!("banana")), bad(&[7])),
                row("runtimeConfig.mac bad", set("runtimeConfig", json!({"mac": "01:02"})), bad(&[7])),
                row("CNI_ARGS MAC=banana", patch(|_| {}), bad_args()).env("CNI_ARGS", "IgnoreUnknown=1;MAC=banana"),
                row("bcqueuelen a string", set("bcqueuelen", json!("5")), own_type()),
                row("linkInContainer a string", set("linkInContainer", json!("yes")), own_type()),
                row("master missing", set("master", json!("rcnimx-gone")), [AnyError, AnyError, Succeeds, Either, Either]),
                row("ipam.type not on CNI_PATH", set("ipam/type", json!("no-such-ipam")), [AnyError, AnyError, Succeeds, Either, Code(50)]),
            ],
        },
        // (this kernel has no ipvlan, vlan or dummy: their valid ADD fails too, STATUS is 50)
        PluginCase {
            name: "ipvlan",
            conf: json!({"type": "ipvlan", "master": "rcnimx0", "ipam": host_local_ipam("172.28.75.0/24")}),
            chained: false,
            opens_netns: true,
            rows: vec![
                row("mode bridge", set("mode", json!("bridge")), bad(&[7])),
                row("mtu -1", set("mtu", json!(-1)), bad(&[7])),
                row("no ipam, no prevResult", remove("ipam"), bad(&[7])),
                row("mode a number", set("mode", json!(2)), own_type()),
            ],
        },
        PluginCase {
            name: "vlan",
            conf: json!({"type": "vlan", "master": "rcnimx0", "vlanId": 5, "ipam": host_local_ipam("172.28.75.0/24")}),
            chained: false,
            opens_netns: true,
            rows: vec![
                row("vlanId 4095", set("vlanId", json!(4095)), bad(&[7])),
                row("vlanId -1", set("vlanId", json!(-1)), bad(&[7])),
                row("no master", remove("master"), bad(&[7])),
                row("no ipam", remove("ipam"), bad(&[7])),
                row("mtu -1", set("mtu", json!(-1)), bad(&[7])),
                row("vlanId a string", set("vlanId", json!("5")), own_type()),
            ],
        },
        PluginCase {
            name: "dummy",
            conf: json!({"type": "dummy", "ipam": host_local_ipam("172.28.75.0/24")}),
            chained: false,
            opens_netns: true,
            rows: vec![row("no ipam", remove("ipam"), bad(&[7]))],
        },
    ]
}

/// The rows every plugin gets.
fn common_rows(p: &PluginCase) -> Vec<Row> {
    let long = "a".repeat(255);
    // a bad CNI_NETNS fails the ADD of a plugin that opens it; for the others it is no input
    let netns_add = if p.opens_netns { AnyError } else { Either };
    let mut rows = vec![
        row("empty stdin", Input::Raw(Box::new(|_| Vec::new())), all(Code(6))),
        row("truncated JSON", Input::Raw(Box::new(|c| c[..c.len() / 2].to_vec())), all(Code(6))),
        row("JSON array", Input::Raw(Box::new(|_| b"[1,2]".to_vec())), all(Code(6))),
        row("not UTF-8", Input::Raw(Box::new(|c| [&c[..c.len() - 2], b"\"\xff\xfe\"}".as_slice()].concat())), all(Code(6))),
        row("name a number", set("name", json!(5)), all(Code(6))),
        row("cniVersion a number", set("cniVersion", json!(1)), all(Code(6))),
        row("type a number", set("type", json!(5)), common_type()),
        row("ipam a string", set("ipam", json!("host-local")), common_type()),
        row("dns a string", set("dns", json!("8.8.8.8")), common_type()),
        row("dns.nameservers a string", set("dns", json!({"nameservers": "8.8.8.8"})), common_type()),
        row("capabilities a list", set("capabilities", json!(["portMappings"])), common_type()),
        row("runtimeConfig a string", set("runtimeConfig", json!("x")), common_type()),
        row("args a list", set("args", json!(["x"])), common_type()),
        row("missing name", remove("name"), all(Code(7))),
        row("name with /", set("name", json!("mx/net")), all(Code(7))),
        row("name ..", set("name", json!("..")), all(Code(7))),
        row("name ../mxnet", set("name", json!("../mxnet")), all(Code(7))),
        row("name with a space", set("name", json!("mx net")), all(Code(7))),
        row("name of 256 bytes ending in /x", set("name", json!(format!("{}/x", "a".repeat(254)))), all(Code(7))),
        row("cniVersion 9.9.9", set("cniVersion", json!("9.9.9")), all(Code(1))),
        row("cniVersion 1.2.0", set("cniVersion", json!("1.2.0")), all(Code(1))),
        row("cniVersion banana", set("cniVersion", json!("banana")), [Code(1), Code(6), Code(1), Code(6), Code(6)]),
        row("cniVersion 0.4.0 for GC and STATUS", set("cniVersion", json!("0.4.0")), [Skip, Skip, Skip, Code(1), Code(1)]),
        row("cniVersion 0.2.0 for CHECK", set("cniVersion", json!("0.2.0")), [Skip, Code(1), Skip, Skip, Skip]),
        env_row("container ID with /", "CNI_CONTAINERID", "mx/c1", attachment_env(4)),
        env_row("container ID ..", "CNI_CONTAINERID", "..", attachment_env(4)),
        env_row("container ID missing", "CNI_CONTAINERID", "", attachment_env(4)),
        env_row("ifname with /", "CNI_IFNAME", "e/0", attachment_env(4)),
        env_row("ifname ..", "CNI_IFNAME", "..", attachment_env(4)),
        env_row("ifname of 255 bytes", "CNI_IFNAME", &long, attachment_env(4)),
        env_row("ifname missing", "CNI_IFNAME", "", attachment_env(4)),
        env_row("netns missing", "CNI_NETNS", "", [Code(4), Code(4), Succeeds, Skip, Skip]),
        env_row("netns a missing path", "CNI_NETNS", "/var/run/netns/rcni-mx-gone", [netns_add, netns_add, Succeeds, Skip, Skip]),
        env_row("netns a regular file", "CNI_NETNS", "/etc/hostname", [netns_add, netns_add, Succeeds, Skip, Skip]),
        env_row("netns a FIFO", "CNI_NETNS", "/run/netns/rcni-mx-fifo", [netns_add, netns_add, Succeeds, Skip, Skip]),
        env_row("CNI_PATH missing", "CNI_PATH", "", all(Code(4))),
        {
            // read by bridge, ptp (through host-local), host-local, static and tuning; the others ignore it
            let reads = matches!(p.name, "bridge" | "ptp" | "host-local" | "static" | "tuning" | "macvlan");
            let w = if reads { [Code(4), Code(4), Succeeds, Skip, Skip] } else { [Either, Either, Succeeds, Skip, Skip] };
            env_row("CNI_ARGS without =", "CNI_ARGS", "garbage", w)
        },
        env_row("container ID of 255 bytes", "CNI_CONTAINERID", &format!("mx{}", "c".repeat(253)), [Either, Either, Either, Skip, Skip]),
        row("name of 255 bytes", set("name", json!("m".repeat(255))), all(Either)),
        // DEL goes on without a broken prevResult (the spec: best effort when it is gone)
        row("prevResult a number", set("prevResult", json!(5)), [Code(6), Code(6), Succeeds, Skip, Skip]),
    ];
    if p.chained {
        rows.push(row("no prevResult", remove("prevResult"), [Code(7), Code(7), Succeeds, Skip, Skip]));
        rows.push(row("prevResult ips a string", set("prevResult/ips", json!("172.28.74.2/24")), [Code(6), Code(6), Succeeds, Skip, Skip]));
        // (an IP naming no interface is lenient input, not malformed: plugins may take the IP anyway)
        rows.push(row(
            "prevResult interface index out of range",
            set("prevResult/ips/0/interface", json!(7)),
            [Either, Either, Succeeds, Skip, Skip],
        ));
    }
    rows
}

/// Everything a cell could change: the kernel state of the node and the containers (links,
/// qdiscs, addresses, routes, a few sysctls, the nftables ruleset) line by line, and every file
/// under /var/lib/cni and /run/cni with its content.
struct Snapshot {
    kernel: Vec<String>,
    files: BTreeMap<String, String>,
}

fn kernel_state(out: &mut Vec<String>, label: &str, nl: &mut netkit::Netlink) {
    use netkit::netlink::Link;
    for l in nl.links().unwrap() {
        // (without the carrier: a bridge loses it some time after its last port went)
        out.push(format!("{label} link {:?}", Link { oper_up: false, ..l.clone() }));
        for q in nl.qdiscs(l.index).unwrap() {
            out.push(format!("{label} qdisc {} {q:?}", l.name));
        }
    }
    for a in nl.addrs(None, None).unwrap() {
        out.push(format!("{label} addr {a:?}"));
    }
    for v6 in [false, true] {
        for r in nl.routes(v6, None).unwrap() {
            out.push(format!("{label} route {r:?}"));
        }
    }
}

fn sysctl(key: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/{key}")).map(|v| v.trim().to_string()).unwrap_or_else(|e| format!("({e})"))
}

fn snapshot() -> Snapshot {
    let mut kernel = Vec::new();
    kernel_state(&mut kernel, "node", &mut netkit::Netlink::new().unwrap());
    for key in ["net/ipv4/ip_forward", "net/ipv4/conf/vethmx0/route_localnet", "net/ipv4/conf/all/route_localnet"] {
        kernel.push(format!("node sysctl {key}={}", sysctl(key)));
    }
    for ns in [NS, NS_EMPTY] {
        let n = netkit::NetNs::open(format!("/var/run/netns/{ns}")).unwrap();
        kernel_state(&mut kernel, ns, &mut netkit::Netlink::open_in(&n).unwrap());
        let keys = ["net/ipv4/conf/eth0/arp_notify", "net/core/somaxconn", "net/ipv4/conf/lo/arp_notify"];
        for line in n.run(|| keys.iter().map(|k| format!("{ns} sysctl {k}={}", sysctl(k))).collect::<Vec<_>>()).unwrap() {
            kernel.push(line);
        }
    }
    kernel.extend(run_ok("nft", &["list", "ruleset"]).lines().map(|l| format!("nft {l}")));
    let mut files = BTreeMap::new();
    for root in ["/var/lib/cni", "/run/cni"] {
        let mut stack = vec![std::path::PathBuf::from(root)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                let v = if e.file_type().unwrap().is_dir() {
                    stack.push(p.clone());
                    "(directory)".to_string()
                } else {
                    std::fs::read(&p).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_else(|e| format!("(unreadable: {e})"))
                };
                files.insert(p.to_string_lossy().into_owned(), v);
            }
        }
    }
    Snapshot { kernel, files }
}

/// What changed from `a` to `b`: (additions and changes, removals).
fn diff(a: &Snapshot, b: &Snapshot) -> (Vec<String>, Vec<String>) {
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    for l in b.kernel.iter().filter(|l| !a.kernel.contains(l)) {
        added.push(format!("+ {l}"));
    }
    for l in a.kernel.iter().filter(|l| !b.kernel.contains(l)) {
        removed.push(format!("- {l}"));
    }
    for (k, v) in &b.files {
        match a.files.get(k) {
            None => added.push(format!("+ file {k}: {v:?}")),
            Some(old) if old != v => added.push(format!("~ file {k}: {old:?} -> {v:?}")),
            _ => {}
        }
    }
    for k in a.files.keys().filter(|k| !b.files.contains_key(*k)) {
        removed.push(format!("- file {k}"));
    }
    (added, removed)
}

/// What DEL or GC added: in `after` but neither in `before` nor in the node as it was made (a
/// DEL restoring what an earlier failing cell changed adds nothing). firewall's iptables backend
/// may create its lock file.
fn additions(before: &Snapshot, pristine: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out: Vec<String> =
        after.kernel.iter().filter(|l| !before.kernel.contains(l) && !pristine.kernel.contains(l)).map(|l| format!("+ {l}")).collect();
    for (k, v) in &after.files {
        let known = |s: &Snapshot| s.files.get(k) == Some(v);
        if !known(before) && !known(pristine) && k != "/run/cni/rcni-iptables.lock" {
            out.push(format!("+ file {k}: {v:?}"));
        }
    }
    out
}

/// The node: the hand-made attachment the chained plugins' prevResult describes, and an empty
/// container namespace.
fn make_node() -> [TestNetns; 2] {
    // no IPv6 DAD: addresses do not change state while the matrix runs
    for key in ["all", "default"] {
        std::fs::write(format!("/proc/sys/net/ipv6/conf/{key}/accept_dad"), "0").unwrap();
    }
    let nss = [TestNetns::new(NS), TestNetns::new(NS_EMPTY)];
    for cmd in [
        &format!("ip netns exec {NS} sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0"),
        "ip link add rcnimx0 type bridge",
        "ip addr add 172.28.74.1/24 dev rcnimx0",
        "ip link set rcnimx0 up",
        &format!("ip link add vethmx0 master rcnimx0 type veth peer name eth0 netns {NS}"),
        "ip link set vethmx0 up",
        &format!("ip -n {NS} addr add 172.28.74.2/24 dev eth0"),
        &format!("ip -n {NS} link set eth0 up"),
        &format!("ip -n {NS} route add default via 172.28.74.1"),
        "sysctl -qw net.ipv4.ip_forward=1",
        &format!("mkdir -p {WORKDIR} && mkfifo /run/netns/rcni-mx-fifo"),
    ] {
        run_ok("sh", &["-c", cmd]);
    }
    // the links' carrier and link-local addresses settle
    let mut last = snapshot().kernel;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let now = snapshot().kernel;
        if now == last {
            break;
        }
        last = now;
    }
    nss
}

struct Outcome {
    exit: Option<i32>,
    stdout: String,
    stderr: String,
    hung: bool,
}

fn call(plugin: &Path, cmd: &str, env: &BTreeMap<&str, String>, stdin: &[u8]) -> Outcome {
    let mut c = Command::new(plugin);
    c.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).env("CNI_COMMAND", cmd).current_dir(WORKDIR);
    for (k, v) in env {
        if !v.is_empty() {
            c.env(k, v);
        }
    }
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut sin = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = sin.write_all(&data);
    });
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let readers = std::thread::spawn(move || {
        let (mut o, mut e) = (String::new(), String::new());
        let _ = out.read_to_string(&mut o);
        let _ = err.read_to_string(&mut e);
        (o, e)
    });
    let started = Instant::now();
    let mut hung = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > CALL_TIMEOUT {
            hung = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let _ = writer.join();
    let (stdout, stderr) = readers.join().unwrap();
    Outcome { exit: status.code(), stdout, stderr, hung }
}

/// Checks one outcome against `want`; `None` when it fits.
fn judge(o: &Outcome, want: Want) -> Option<String> {
    if o.hung {
        return Some(format!("no answer within {CALL_TIMEOUT:?}"));
    }
    if o.stderr.contains("panicked") || o.stdout.contains("panicked") {
        return Some(format!("panicked: {}{}", o.stdout, o.stderr));
    }
    let ok = o.exit == Some(0);
    let err: Option<Value> = if ok { None } else { serde_json::from_str(&o.stdout).ok() };
    if !ok {
        let Some(e) = &err else {
            return Some(format!("exit {:?} without a CNI error JSON on stdout: {:?} (stderr {:?})", o.exit, o.stdout, o.stderr));
        };
        if !(e["code"].is_u64() && e["msg"].is_string()) {
            return Some(format!("error JSON without code and msg: {e}"));
        }
    }
    let code = err.as_ref().and_then(|e| e["code"].as_u64());
    let fits = match want {
        Code(c) => code == Some(c),
        OneOf(cs) => code.is_some_and(|c| cs.contains(&c)),
        AnyError => !ok,
        Succeeds => ok,
        SucceedsOr(cs) => ok || code.is_some_and(|c| cs.contains(&c)),
        Either | Skip => true,
    };
    (!fits).then(|| {
        let got = if ok { format!("success {:?}", o.stdout.trim()) } else { err.map(|e| e.to_string()).unwrap_or_default() };
        format!("want {want:?}, got {got}")
    })
}

fn matrix() {
    let inst = Installed::new();
    let _nss = make_node();
    let path = inst.dir.path().to_string_lossy().into_owned();
    let (mut failures, mut cells) = (Vec::new(), 0);
    let started = Instant::now();
    let pristine = snapshot();
    let mut before = snapshot();
    for p in plugins() {
        let plugin = inst.path(p.name);
        let mut rows = common_rows(&p);
        rows.extend(p.rows);
        let ns = if p.chained { NS } else { NS_EMPTY };
        let valid = |cmd: &str| {
            let mut conf = p.conf.clone();
            conf["cniVersion"] = json!("1.1.0");
            conf["name"] = json!("mxnet");
            if matches!(cmd, "ADD" | "CHECK" | "DEL") && (p.chained || cmd != "ADD") {
                // a runtime gives CHECK and DEL the cached result (here: an empty one for the first plugins)
                conf["prevResult"] = if p.chained { prev() } else { json!({"cniVersion": "1.1.0"}) };
            }
            if cmd == "GC" {
                conf["cni.dev/valid-attachments"] = json!([]);
            }
            conf
        };
        let base_env = |cmd: &str| -> BTreeMap<&'static str, String> {
            let mut env = BTreeMap::from([("CNI_PATH", path.clone())]);
            if matches!(cmd, "ADD" | "CHECK" | "DEL") {
                env.insert("CNI_CONTAINERID", "mx-c1".into());
                env.insert("CNI_NETNS", format!("/var/run/netns/{ns}"));
                env.insert("CNI_IFNAME", "eth0".into());
            }
            env
        };
        for r in &rows {
            for (i, cmd) in CMDS.iter().enumerate() {
                let want = r.want[i];
                if want == Skip {
                    continue;
                }
                cells += 1;
                let cell = format!("[{} × {} × {cmd}]", p.name, r.label);
                let mut conf = valid(cmd);
                let stdin = match &r.input {
                    Input::Patch(f) => {
                        f(&mut conf);
                        conf.to_string().into_bytes()
                    }
                    Input::Raw(f) => f(conf.to_string().as_bytes()),
                };
                let mut env = base_env(cmd);
                for (k, v) in &r.env {
                    env.insert(k, v.clone());
                }
                let o = call(&plugin, cmd, &env, &stdin);
                if let Some(f) = judge(&o, want) {
                    failures.push(format!("{cell}: {f}"));
                }
                if want == Either && o.exit == Some(0) && *cmd == "ADD" {
                    // valid after all: DEL takes it back, and a second ADD and DEL leave what the first pair did
                    let mut cycle = |step: &str| {
                        let o = call(&plugin, step, &env, &stdin);
                        if o.exit != Some(0) {
                            failures.push(format!("{cell}: ADD succeeded, then {step} failed: {}{}", o.stdout, o.stderr));
                        }
                        if p.name == "bandwidth" && step == "DEL" {
                            // bandwidth's DEL removes its IFB; the qdiscs on the host veth go with the
                            // veth, which the first plugin's DEL deletes (as Go's): here the veth stays
                            let _ =
                                Command::new("sh").args(["-c", "tc qdisc del dev vethmx0 root; tc qdisc del dev vethmx0 ingress"]).output();
                        }
                    };
                    cycle("DEL");
                    let first = snapshot();
                    cycle("ADD");
                    cycle("DEL");
                    let second = snapshot();
                    let (added, removed) = diff(&first, &second);
                    let changed: Vec<String> = added
                        .into_iter()
                        .chain(removed)
                        .filter(|d| !d.starts_with("~ file /var/lib/cni/networks/") || !d.contains("/last_reserved_ip."))
                        .collect();
                    if !changed.is_empty() {
                        failures.push(format!("{cell}: a second ADD and DEL left more than the first pair: {changed:#?}"));
                    }
                    before = second;
                    continue;
                }
                let after = snapshot();
                // DEL and GC remove, and may remove or restore what an earlier failing cell left
                let changed: Vec<String> = if matches!(*cmd, "DEL" | "GC") {
                    let mut a = additions(&before, &pristine, &after);
                    if p.name == "loopback" && o.exit == Some(0) {
                        // a DEL that may succeed does loopback's job: lo goes down
                        a.retain(|l| !l.starts_with(&format!("+ {NS_EMPTY} link Link {{ index: 1, name: \"lo\"")));
                    }
                    a
                } else {
                    let (added, removed) = diff(&before, &after);
                    added.into_iter().chain(removed).collect()
                };
                if !changed.is_empty() {
                    failures.push(format!("{cell}: changed the node: {changed:#?}"));
                }
                before = after;
            }
        }
        // unknown commands, with the valid config
        for cmd in ["FOO", "add", "VERSIONS", "GET"] {
            cells += 1;
            let cell = format!("[{} × valid config × {cmd}]", p.name);
            let o = call(&plugin, cmd, &base_env("ADD"), valid("ADD").to_string().as_bytes());
            if let Some(f) = judge(&o, Code(4)) {
                failures.push(format!("{cell}: {f}"));
            }
            let after = snapshot();
            let (added, removed) = diff(&before, &after);
            if !added.is_empty() || !removed.is_empty() {
                failures.push(format!("{cell}: changed the node: {added:#?} {removed:#?}"));
            }
            before = after;
        }
    }
    eprintln!("malformed-input matrix: {cells} cells in {:.1?}, {} failures", started.elapsed(), failures.len());
    assert!(failures.is_empty(), "{} failures in {cells} cells:\n{}", failures.len(), failures.join("\n"));
}

#[test]
#[ignore = "needs the netsandbox: run scripts/test"]
fn malformed_input_matrix() {
    if rcni_tests::own_node::rerun("malformed_input_matrix", "malformed-input matrix") {
        matrix()
    }
}

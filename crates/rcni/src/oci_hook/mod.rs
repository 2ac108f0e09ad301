//! `rcni oci-hook`: networking for a plain OCI runtime (runc, crun) through its hooks, as
//! nerdctl does it.
//!
//! - `install BUNDLE` edits the bundle's config.json ([`bundle::apply`]): rcni's createRuntime and
//!   poststop hooks, the networks and ports as annotations, bind mounts of per-bundle hosts,
//!   resolv.conf and hostname files. After it, `runc run ID` networks the container.
//! - `createRuntime` (the runtime runs it with the OCI state on stdin, the container's
//!   namespaces made, before its process starts) attaches `/proc/PID/ns/net` to the networks
//!   (DEL of a leftover attachment of that ID first), publishes the ports, fills the hosts file
//!   (its own names and addresses, and those of every container on its networks) and
//!   resolv.conf, and updates the hosts files of the containers on its networks
//!   ([`registry`]). On a failure nothing stays attached.
//! - `poststop` DELs what the result cache records and takes the container out of the others'
//!   hosts files; state already gone is no failure.

mod registry;

use crate::attaching;
use crate::exit::{exit_code, message};
use crate::runtime_env::{lock_container, select_networks, RuntimeEnv};
use crate::shared::parse_publish;
use clap::{Args, Subcommand};
use cni_runtime::oci::{bundle, etc_files, State};
use cni_types::capabilities::PortMapping;
use registry::{Member, Registry};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum OciHookCmd {
    /// Make an OCI bundle network itself: hooks, annotations, /etc/hosts and /etc/resolv.conf
    /// (then `runc run --bundle BUNDLE ID`)
    Install(InstallArgs),
    /// The createRuntime hook (run by the OCI runtime, the container's state on stdin):
    /// attach the container, publish its ports, write its hosts and resolv.conf
    #[command(name = "createRuntime", visible_alias = "create-runtime", alias = "prestart")]
    CreateRuntime(HookArgs),
    /// The poststop hook (run by the OCI runtime): detach the container
    #[command(name = "poststop")]
    Poststop(HookArgs),
}

#[derive(Args)]
pub struct InstallArgs {
    /// The bundle directory (holding config.json)
    pub bundle: PathBuf,
    /// Attach to this network (repeatable; eth0, eth1, … in order). Default: the node's default
    /// network when the container starts (as `rcni attach` picks it)
    #[arg(long = "network", short = 'n')]
    pub networks: Vec<String>,
    /// Publish a container port on the node: [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp|sctp]
    #[arg(long = "publish", short = 'p', value_name = "[IP:]HOST:CONTAINER[/PROTO]", value_parser = parse_publish)]
    pub publish: Vec<PortMapping>,
    /// The container's hostname (also a name other containers on its networks reach it by)
    #[arg(long)]
    pub hostname: Option<String>,
    #[command(flatten)]
    pub env: RuntimeEnv,
}

#[derive(Args)]
pub struct HookArgs {
    #[command(flatten)]
    pub env: RuntimeEnv,
}

pub fn run(cmd: OciHookCmd) -> i32 {
    match cmd {
        OciHookCmd::Install(a) => exit_code("oci-hook install", install(&a).map(|()| 0)),
        OciHookCmd::CreateRuntime(h) => {
            exit_code("oci-hook createRuntime", read_state().and_then(|s| create_runtime(&h.env, &s)).map(|()| 0))
        }
        OciHookCmd::Poststop(h) => exit_code("oci-hook poststop", read_state().and_then(|s| poststop(&h.env, &s)).map(|()| 0)),
    }
}

fn install(a: &InstallArgs) -> Result<(), String> {
    let config_path = a.bundle.join("config.json");
    let bytes = std::fs::read(&config_path)
        .map_err(|e| format!("reading {}: {e} (is {} an OCI bundle? `runc spec` makes one)", config_path.display(), a.bundle.display()))?;
    let mut config: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", config_path.display()))?;
    for n in &a.networks {
        cni_types::validate::network_name(n).map_err(|e| format!("network {n:?}: {}", e.msg))?;
    }
    if let Some(h) = &a.hostname {
        validate_hostname(h)?;
    }
    let bundle = std::path::absolute(&a.bundle).map_err(|e| format!("{}: {e}", a.bundle.display()))?;
    let exe = std::env::current_exe().map_err(|e| format!("finding rcni's own path: {e}"))?;
    let conf_dir = std::path::absolute(&a.env.conf_dir).map_err(|e| format!("{}: {e}", a.env.conf_dir.display()))?;
    let plan = bundle::Plan {
        exe: exe.to_string_lossy().into_owned(),
        args: vec![
            "--conf-dir".into(),
            conf_dir.to_string_lossy().into_owned(),
            "--cni-path".into(),
            a.env.cni_path.clone(),
            "--timeout".into(),
            a.env.timeout.to_string(),
        ],
        networks: a.networks.clone(),
        ports: a.publish.clone(),
        hostname: a.hostname.clone(),
        files: bundle::files_dir(&bundle),
    };
    bundle::apply(&mut config, &plan).map_err(|e| format!("{}: {e}", config_path.display()))?;

    // the files first: a config.json that mounts them must never exist without them
    cni_runtime::fsutil::create_dir_all_mode(&plan.files, 0o755).map_err(|e| format!("creating {}: {e}", plan.files.display()))?;
    let hostname = config.get("hostname").and_then(|h| h.as_str()).unwrap_or_default().to_string();
    let node_dns = etc_files::node_dns(Path::new("/etc/resolv.conf"));
    let contents = [
        ("hosts", etc_files::placeholder_hosts()),
        ("resolv.conf", etc_files::resolv_conf(&[], &node_dns)),
        ("hostname", format!("{hostname}\n")),
    ];
    for (name, text) in contents {
        let path = plan.files.join(name);
        // a container of this bundle may be running: its hosts and resolv.conf are the hook's to
        // keep (through their bind mounts), so only missing files are written; the hostname
        // file follows the hostname, over the same inode
        let outcome = match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                cni_runtime::fsutil::write_shared(&path, text.as_bytes(), 0o644, cni_runtime::fsutil::Placement::CreateNew)
            }
            Ok(_) if name == "hostname" && std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) => {
                etc_files::rewrite(&path, &text)
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        outcome.map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&config_path).map_err(|e| e.to_string())?.permissions()) & 0o7777;
    let mut out = serde_json::to_vec_pretty(&config).expect("JSON");
    out.push(b'\n');
    cni_runtime::fsutil::write_shared(&config_path, &out, mode, cni_runtime::fsutil::Placement::Replace)
        .map_err(|e| format!("writing {}: {e}", config_path.display()))?;

    let nets = if a.networks.is_empty() { "the node's default network".to_string() } else { a.networks.join(", ") };
    println!("{}: createRuntime and poststop hooks run {}", config_path.display(), plan.exe);
    println!("networks: {nets}");
    for m in &a.publish {
        println!(
            "publishes {}{} -> {}/{}",
            if m.host_ip.is_empty() { String::new() } else { format!("{}:", m.host_ip) },
            m.host_port,
            m.container_port,
            m.protocol
        );
    }
    println!("/etc/hosts, /etc/resolv.conf and /etc/hostname from {}", plan.files.display());
    println!("run it with: runc run --bundle {} ID", bundle.display());
    Ok(())
}

/// A hostname as the kernel and resolvers take it: 1–64 bytes of letters, digits, `-` and `.`.
fn validate_hostname(h: &str) -> Result<(), String> {
    let ok = !h.is_empty()
        && h.len() <= 64
        && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !h.starts_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(format!("hostname {h:?}: 1-64 letters, digits, '-' and '.', not starting with '-' or '.'"))
    }
}

fn read_state() -> Result<State, String> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::io::stdin().take(1 << 20).read_to_end(&mut buf).map_err(|e| format!("reading the OCI state on stdin: {e}"))?;
    State::parse(&buf).map_err(|e| format!("{e} (this command is run by an OCI runtime as a hook, with the state on stdin)"))
}

/// A namespace file's identity (device, inode).
fn ns_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The container's config.json (hostname; the annotations when the state lacks them).
fn bundle_config(bundle: &Path) -> serde_json::Value {
    std::fs::read(bundle.join("config.json")).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

fn create_runtime(env: &RuntimeEnv, st: &State) -> Result<(), String> {
    if st.pid <= 0 {
        return Err(format!("the OCI state of container {} has no pid (run this as a createRuntime hook)", st.id));
    }
    let netns = PathBuf::from(format!("/proc/{}/ns/net", st.pid));
    let identity = ns_identity(&netns).ok_or_else(|| format!("container {}: {} is gone", st.id, netns.display()))?;
    let config = bundle_config(&st.bundle);
    let mut annotations = st.annotations.clone();
    if annotations.is_empty() {
        annotations = config.get("annotations").and_then(|a| serde_json::from_value(a.clone()).ok()).unwrap_or_default();
    }
    let (names, ports) = bundle::recorded(&annotations)?;
    let networks = select_networks(&env.conf_dir, &names, false)?;
    let cni = env.cni()?;
    let _container = lock_container(&st.id)?;

    // a leftover of an earlier container of this ID (an unclean stop: no poststop ran)
    let leftover = attaching::detach(env, &cni, &st.id, &|_| String::new())?;
    for d in &leftover {
        if let Err(e) = &d.outcome {
            message(
                "oci-hook createRuntime",
                format_args!("removing the leftover attachment {} ({}) of container {}: {e}", d.network, d.ifname, st.id),
            );
        }
    }

    let request = attaching::Request {
        id: &st.id,
        netns: &netns,
        networks,
        loopback: true,
        publish: &ports,
        capabilities: Vec::new(),
        parallel: false,
    };
    let result = attaching::attach(cni.clone(), &env.ctx(), request)?;

    let mut member_networks: Vec<registry::Addresses> = Vec::new();
    for (net, ifname, r) in &result.raw {
        if ifname == "lo" {
            continue;
        }
        let ips = r
            .ips
            .iter()
            .filter(|ip| ip.interface.and_then(|i| r.interfaces.get(i)).is_none_or(|i| &i.name == ifname && !i.sandbox.is_empty()))
            .map(|ip| ip.address.addr());
        member_networks.push(registry::Addresses { network: net.clone(), ips: ips.collect() });
    }
    let mut host_names = Vec::new();
    if let Some(h) = config.get("hostname").and_then(|h| h.as_str()).filter(|h| !h.is_empty()) {
        host_names.push(h.to_string());
    }
    if !host_names.contains(&st.id) {
        host_names.push(st.id.clone());
    }
    let files = bundle::files_dir(&st.bundle);
    let hosts = Some(files.join("hosts")).filter(|p| p.exists());
    let member = Member { id: st.id.clone(), names: host_names, hosts, netns: Some(identity), networks: member_networks };

    let dns = &result.dns;
    let written = (|| {
        let resolv = files.join("resolv.conf");
        if resolv.exists() {
            let text = etc_files::resolv_conf(dns, &etc_files::node_dns(Path::new("/etc/resolv.conf")));
            etc_files::rewrite(&resolv, &text).map_err(|e| format!("writing {}: {e}", resolv.display()))?;
        }
        Registry::open()?.join(&member)
    })();
    if let Err(e) = written {
        // nothing stays attached when the hook fails
        let undo = attaching::detach(env, &cni, &st.id, &|_| netns.to_string_lossy().into_owned());
        if let Ok(reg) = Registry::open() {
            let _ = reg.leave(&st.id);
        }
        let undo_errors: Vec<String> = undo.into_iter().flatten().filter_map(|d| d.outcome.err()).collect();
        return Err(if undo_errors.is_empty() { e } else { format!("{e}; detaching again failed too: {}", undo_errors.join("; ")) });
    }
    Ok(())
}

fn poststop(env: &RuntimeEnv, st: &State) -> Result<(), String> {
    let cni = env.cni()?;
    let _container = lock_container(&st.id)?;
    let recorded = Registry::open()?.get(&st.id);
    let identity = recorded.as_ref().and_then(|m| m.netns);
    // the cached path goes to DEL only while it is still the container's namespace
    let netns = |a: &cni_runtime::NetworkAttachment| {
        if !a.netns.is_empty() && identity.is_some() && ns_identity(Path::new(&a.netns)) == identity {
            a.netns.clone()
        } else {
            String::new()
        }
    };
    let done = attaching::detach(env, &cni, &st.id, &netns)?;
    let left = Registry::open()?.leave(&st.id);
    let mut errors: Vec<String> =
        done.into_iter().filter_map(|d| d.outcome.err().map(|e| format!("{} ({}): {e}", d.network, d.ifname))).collect();
    if let Err(e) = left {
        errors.push(e);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

//! The container's `/etc/hosts` and `/etc/resolv.conf`: what they say (pure functions) and how
//! they are rewritten. Both are bind mounts of files in the bundle, so a rewrite changes the
//! contents of the same inode (a new file renamed over the old would not be seen through the
//! mount).

use cni_types::result::Dns;
use std::io::{Seek, Write};
use std::net::IpAddr;
use std::path::Path;

/// The lines every hosts file starts with (as docker and nerdctl write them).
const LOCAL: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// The first and last lines of what rcni writes into a hosts file; lines outside them (a user's,
/// another tool's) are kept by every rewrite.
pub const BEGIN: &str = "# <rcni> containers on the same networks: rewritten as they come and go";
pub const END: &str = "# </rcni>";

/// A hosts file before the container has addresses (what `install` leaves).
pub fn placeholder_hosts() -> String {
    hosts("", &[], &[])
}

/// One name entry: an address on a network and the names it answers to there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    pub ip: IpAddr,
    pub names: Vec<String>,
    pub network: String,
}

/// A container's hosts file, from its `current` one: rcni's block — localhost, then its own
/// addresses with its own names, then the other containers on its networks (`peers`), each
/// address once, in the order given; every name also as `name.network` (as nerdctl writes them)
/// — and the lines of `current` outside that block, after it.
pub fn hosts(current: &str, own: &[Entry], peers: &[Entry]) -> String {
    let mut out = format!("{BEGIN}\n{LOCAL}");
    let mut seen = std::collections::BTreeSet::new();
    for e in own.iter().chain(peers) {
        if e.names.is_empty() || !seen.insert(e.ip) {
            continue;
        }
        let mut names = Vec::new();
        for n in &e.names {
            names.push(n.clone());
            if !e.network.is_empty() {
                names.push(format!("{n}.{}", e.network));
            }
        }
        out.push_str(&format!("{}\t{}\n", e.ip, names.join(" ")));
    }
    out.push_str(END);
    out.push('\n');
    let mut inside = false;
    // line by line as the bytes are (a `\r` stays), so that a rewrite of a rewrite is the same
    for line in current.split_inclusive('\n').map(|l| l.strip_suffix('\n').unwrap_or(l)) {
        match line {
            l if l == BEGIN => inside = true,
            l if l == END && inside => inside = false,
            l if !inside => {
                out.push_str(l);
                out.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// The container's resolv.conf: each of nameservers, search domains and options from the
/// networks' results (`results`, in network order) when any gives them, else from the node's
/// resolv.conf (`node`) without the loopback nameservers, which would be the container's own;
/// when no nameserver is left, docker's defaults (8.8.8.8, 8.8.4.4), as docker and nerdctl do.
pub fn resolv_conf(results: &[Dns], node: &Dns) -> String {
    fn merged(results: &[Dns], field: impl Fn(&Dns) -> Vec<String>) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        for d in results {
            for v in field(d) {
                if !all.contains(&v) {
                    all.push(v);
                }
            }
        }
        all
    }
    let mut servers = merged(results, |d| d.nameservers.clone());
    if servers.is_empty() {
        servers = node.nameservers.iter().filter(|s| !is_loopback(s)).cloned().collect();
    }
    if servers.is_empty() {
        servers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    let mut search =
        merged(results, |d| if d.search.is_empty() && !d.domain.is_empty() { vec![d.domain.clone()] } else { d.search.clone() });
    if search.is_empty() {
        search = if node.search.is_empty() && !node.domain.is_empty() { vec![node.domain.clone()] } else { node.search.clone() };
    }
    let mut options = merged(results, |d| d.options.clone());
    if options.is_empty() {
        options = node.options.clone();
    }
    let mut out = String::new();
    for s in &servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

fn is_loopback(server: &str) -> bool {
    // a nameserver line may carry a zone or port in some resolvers' syntax: judge the address
    let addr = server.split('%').next().unwrap_or(server);
    addr.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The node's resolv.conf, or nothing when it cannot be read.
pub fn node_dns(path: &Path) -> Dns {
    std::fs::read_to_string(path).map(|t| Dns::from_resolv_conf(&t)).unwrap_or_default()
}

/// Replaces the contents of the file at `path` in place (same inode, so a bind mount of it
/// shows the new contents): written over the old from the start, then cut to length, so a
/// reader never sees it empty. A path that is a symlink is refused (the bundle is the user's,
/// the hook runs as root).
pub fn rewrite(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NOFOLLOW).open(path)?;
    f.seek(std::io::SeekFrom::Start(0))?;
    f.write_all(contents.as_bytes())?;
    f.set_len(contents.len() as u64)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(ip: &str, names: &[&str]) -> Entry {
        Entry { ip: ip.parse().unwrap(), names: names.iter().map(|s| s.to_string()).collect(), network: "net".into() }
    }

    #[test]
    fn hosts_lists_own_then_peers_once_and_keeps_other_lines() {
        let own = [e("10.1.0.2", &["web", "c1"])];
        let peers = [e("10.1.0.3", &["db"]), e("10.1.0.2", &["dup"]), e("10.1.0.4", &[])];
        let block = format!("{BEGIN}\n{LOCAL}10.1.0.2\tweb web.net c1 c1.net\n10.1.0.3\tdb db.net\n{END}\n");
        assert_eq!(hosts("", &own, &peers), block);
        assert_eq!(placeholder_hosts(), format!("{BEGIN}\n{LOCAL}{END}\n"));
        // a user's line (added in the container) survives, an old block is replaced
        let edited = format!("{}192.0.2.7\tmine\n", placeholder_hosts());
        assert_eq!(hosts(&edited, &own, &peers), format!("{block}192.0.2.7\tmine\n"));
        assert_eq!(
            hosts(&hosts(&edited, &own, &peers), &own, &[]),
            format!("{BEGIN}\n{LOCAL}10.1.0.2\tweb web.net c1 c1.net\n{END}\n192.0.2.7\tmine\n")
        );
        // a file of someone else's: all of it kept, after the block
        assert_eq!(hosts("127.0.0.1 localhost\n", &[], &[]), format!("{BEGIN}\n{LOCAL}{END}\n127.0.0.1 localhost\n"));
        // found by fuzzing: a last line ending in a lone \r was cut differently the second time
        let once = hosts("[\r", &own, &[]);
        assert_eq!(hosts(&once, &own, &[]), once);
        assert!(once.ends_with("[\r\n"));
    }

    fn dns(servers: &[&str], search: &[&str], options: &[&str]) -> Dns {
        Dns {
            nameservers: servers.iter().map(|s| s.to_string()).collect(),
            search: search.iter().map(|s| s.to_string()).collect(),
            options: options.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn resolv_from_results_first_then_node_without_loopback() {
        let node = dns(&["127.0.0.53", "::1", "192.0.2.53"], &["node.example"], &["ndots:2"]);
        assert_eq!(
            resolv_conf(&[dns(&["10.1.0.1"], &["svc.local"], &[]), dns(&["10.1.0.1", "10.2.0.1"], &[], &["edns0"])], &node),
            "nameserver 10.1.0.1\nnameserver 10.2.0.1\nsearch svc.local\noptions edns0\n"
        );
        // per field: the results give only a search domain
        assert_eq!(resolv_conf(&[dns(&[], &["svc.local"], &[])], &node), "nameserver 192.0.2.53\nsearch svc.local\noptions ndots:2\n");
        // the node has only loopback nameservers (systemd-resolved, dnsmasq on the node)
        assert_eq!(resolv_conf(&[], &dns(&["127.0.0.53"], &[], &[])), "nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        let d = Dns { domain: "corp.example".into(), ..Default::default() };
        assert_eq!(resolv_conf(&[d], &Dns::default()), "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch corp.example\n");
    }

    #[test]
    fn rewrite_keeps_the_inode_and_cuts_to_length() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hosts");
        std::fs::write(&p, "a much longer old content\n").unwrap();
        let ino = std::fs::metadata(&p).unwrap().ino();
        rewrite(&p, "short\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "short\n");
        assert_eq!(std::fs::metadata(&p).unwrap().ino(), ino);
        std::os::unix::fs::symlink(&p, dir.path().join("link")).unwrap();
        assert!(rewrite(&dir.path().join("link"), "x").is_err(), "a symlink is refused");
    }
}

//! The firewall plugin's opt-in `iptables` backend: the reference plugin's exact rules in table
//! `filter`, written with `iptables-restore`.
//!
//! This is the one place where rcni runs a program from a plugin (see DEVELOPERS.md): iptables'
//! rules are only reachable through its own tools (its nf_tables encoding and the legacy
//! kernel interface are private to them). One call runs, per address family it has addresses
//! for, one `iptables-save -t filter` to read the table and one `iptables-restore --noflush
//! --wait` that applies only what is missing, atomically (`ip6tables-*` for IPv6).
//!
//! Rules (the Go reference's, as `iptables-save` prints them):
//!
//! ```text
//! -A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD
//! -A CNI-FORWARD -m comment --comment "CNI firewall plugin admin overrides" -j CNI-ADMIN
//! -A CNI-FORWARD -d <ip>/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
//! -A CNI-FORWARD -s <ip>/32 -j ACCEPT
//! ```
//!
//! and for `ingressPolicy` `same-bridge` / `isolated` the isolation chains, jumped to from the
//! top of FORWARD (above CNI-FORWARD):
//!
//! ```text
//! -A FORWARD -m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge|isolated)" -j CNI-ISOLATION-STAGE-1
//! -A CNI-ISOLATION-STAGE-1 -i <br> -o <br> -m comment --comment "CNI firewall plugin rules (ingressPolicy: isolated)" -j DROP
//! -A CNI-ISOLATION-STAGE-1 -i <br> ! -o <br> -m comment --comment "CNI firewall plugin rules (ingressPolicy: <policy>)" -j CNI-ISOLATION-STAGE-2
//! -A CNI-ISOLATION-STAGE-1 -m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge|isolated)" -j RETURN
//! -A CNI-ISOLATION-STAGE-2 -o <br> -m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge|isolated)" -j DROP
//! -A CNI-ISOLATION-STAGE-2 -m comment --comment "CNI firewall plugin rules (ingressPolicy: same-bridge|isolated)" -j RETURN
//! ```
//!
//! (the `DROP` line of STAGE-1 only with `isolated`). Chains are created with `-N` when absent
//! and never declared otherwise: a `:CHAIN` line in a `--noflush` restore flushes an existing
//! chain, which would wipe the operators' rules in the admin chain. Nothing removes the chains,
//! the jumps or the isolation rules (as the reference); DEL removes the per-address rules.
//!
//! rcni's own concurrent calls are serialised by a lock file ([`LOCK_PATH`]) around
//! read-then-restore, so two first ADDs never both create a chain or both insert a jump.

use super::Ingress;
use netkit::{Error, Result};
use std::fs::File;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The reference's private chain.
pub const FORWARD_CHAIN: &str = "CNI-FORWARD";
/// The default `iptablesAdminChainName`.
pub const DEFAULT_ADMIN_CHAIN: &str = "CNI-ADMIN";
pub const STAGE1: &str = "CNI-ISOLATION-STAGE-1";
pub const STAGE2: &str = "CNI-ISOLATION-STAGE-2";
/// Serialises rcni's own read-then-restore sequences.
pub const LOCK_PATH: &str = "/run/cni/rcni-iptables.lock";

const TABLE: &str = "filter";
const FWD_COMMENT: &str = "CNI firewall plugin rules";
const ADMIN_COMMENT: &str = "CNI firewall plugin admin overrides";
const ISO_COMMENT: &str = "CNI firewall plugin rules (ingressPolicy: same-bridge|isolated)";

/// iptables (IPv4) or ip6tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: IpAddr) -> Self {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    /// `iptables` or `ip6tables`.
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }

    fn tool(self, what: &str) -> String {
        format!("{}-{what}", self.name())
    }

    fn host_prefix(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

/// Checks an `iptablesAdminChainName`: a plain chain name iptables accepts (at most 28
/// characters) that is not a built-in chain, a target or one of the plugin's own chains.
pub fn check_chain_name(name: &str) -> std::result::Result<(), String> {
    const RESERVED: [&str; 13] = [
        "INPUT",
        "FORWARD",
        "OUTPUT",
        "PREROUTING",
        "POSTROUTING",
        "ACCEPT",
        "DROP",
        "RETURN",
        "REJECT",
        "QUEUE",
        FORWARD_CHAIN,
        STAGE1,
        STAGE2,
    ];
    if name.is_empty() || name.len() > 28 {
        return Err(format!("chain name {name:?} must have 1 to 28 characters"));
    }
    if name.starts_with('-') || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err(format!("chain name {name:?} may only hold letters, digits, '-', '_' and '.', and not start with '-'"));
    }
    if RESERVED.contains(&name) {
        return Err(format!("chain name {name:?} is reserved"));
    }
    Ok(())
}

fn check_ifname(name: &str) -> Result<()> {
    let plain = !name.is_empty()
        && name.len() < 16
        && !name.starts_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if plain {
        Ok(())
    } else {
        Err(Error::msg("iptables ingress policy", format!("bridge name {name:?} cannot be written into an iptables rule")))
    }
}

/// One table of `iptables-save` output: its chains and its rules (`-A` lines split into chain
/// and the rest, exactly as printed).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Table {
    pub chains: Vec<String>,
    pub rules: Vec<(String, String)>,
}

impl Table {
    /// Reads table `table` from `iptables-save` output (other tables and comments skipped).
    pub fn parse(save: &str, table: &str) -> Table {
        let mut t = Table::default();
        let mut inside = false;
        for line in save.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('*') {
                inside = name == table;
            } else if !inside || line.starts_with('#') {
                continue;
            } else if line == "COMMIT" {
                inside = false;
            } else if let Some(decl) = line.strip_prefix(':') {
                if let Some(chain) = decl.split_whitespace().next() {
                    t.chains.push(chain.to_string());
                }
            } else if let Some(rule) = line.strip_prefix("-A ") {
                let (chain, spec) = rule.split_once(' ').unwrap_or((rule, ""));
                t.rules.push((chain.to_string(), spec.trim().to_string()));
            }
        }
        t
    }

    pub fn has_chain(&self, chain: &str) -> bool {
        self.chains.iter().any(|c| c == chain)
    }

    /// How many times `chain` holds exactly `spec`.
    pub fn count(&self, chain: &str, spec: &str) -> usize {
        self.rules.iter().filter(|(c, s)| c == chain && s == spec).count()
    }

    pub fn has_rule(&self, chain: &str, spec: &str) -> bool {
        self.count(chain, spec) > 0
    }

    /// The 0-based index in `chain` of its first rule for which `f` holds.
    fn index(&self, chain: &str, f: impl Fn(&str) -> bool) -> Option<usize> {
        self.rules.iter().filter(|(c, _)| c == chain).position(|(_, s)| f(s))
    }
}

/// An `iptables-restore --noflush` script for table `filter`, with the deletions that undo it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Script {
    lines: Vec<String>,
    undo: Vec<String>,
}

impl Script {
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    fn new_chain(&mut self, chain: &str) {
        self.lines.push(format!("-N {chain}"));
    }

    fn insert(&mut self, chain: &str, pos: usize, spec: &str) {
        self.lines.push(format!("-I {chain} {pos} {spec}"));
        self.undo.push(format!("-D {chain} {spec}"));
    }

    fn append(&mut self, chain: &str, spec: &str) {
        self.lines.push(format!("-A {chain} {spec}"));
        self.undo.push(format!("-D {chain} {spec}"));
    }

    fn delete(&mut self, chain: &str, spec: &str) {
        self.lines.push(format!("-D {chain} {spec}"));
    }

    fn wrap(lines: &[String]) -> String {
        let mut s = format!("*{TABLE}\n");
        for l in lines {
            s.push_str(l);
            s.push('\n');
        }
        s.push_str("COMMIT\n");
        s
    }

    /// The restore input.
    pub fn text(&self) -> String {
        Self::wrap(&self.lines)
    }

    /// A restore input deleting every rule this script adds (newest first); chains it creates
    /// stay (empty, or with rules someone else put there meanwhile).
    pub fn undo_text(&self) -> Option<String> {
        if self.undo.is_empty() {
            return None;
        }
        let rev: Vec<String> = self.undo.iter().rev().cloned().collect();
        Some(Self::wrap(&rev))
    }
}

fn fwd_jump() -> String {
    format!("-m comment --comment \"{FWD_COMMENT}\" -j {FORWARD_CHAIN}")
}

fn admin_jump(admin: &str) -> String {
    format!("-m comment --comment \"{ADMIN_COMMENT}\" -j {admin}")
}

/// The two rules accepting traffic of one container address.
pub fn address_rules(ip: IpAddr) -> [String; 2] {
    let p = Family::of(ip).host_prefix();
    [format!("-d {ip}/{p} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"), format!("-s {ip}/{p} -j ACCEPT")]
}

fn iso_jump() -> String {
    format!("-m comment --comment \"{ISO_COMMENT}\" -j {STAGE1}")
}

fn iso_return() -> String {
    format!("-m comment --comment \"{ISO_COMMENT}\" -j RETURN")
}

fn policy_comment(policy: Ingress) -> &'static str {
    match policy {
        Ingress::Isolated => "CNI firewall plugin rules (ingressPolicy: isolated)",
        _ => "CNI firewall plugin rules (ingressPolicy: same-bridge)",
    }
}

fn stage1_bridge(bridge: &str, policy: Ingress) -> String {
    format!("-i {bridge} ! -o {bridge} -m comment --comment \"{}\" -j {STAGE2}", policy_comment(policy))
}

fn stage1_drop(bridge: &str) -> String {
    format!("-i {bridge} -o {bridge} -m comment --comment \"{}\" -j DROP", policy_comment(Ingress::Isolated))
}

fn stage2_drop(bridge: &str) -> String {
    format!("-o {bridge} -m comment --comment \"{ISO_COMMENT}\" -j DROP")
}

/// What ADD has to write into one family's filter table `t` (in that family, `addrs` are the
/// container's addresses of the family): the reference's commands, each only when its rule or
/// chain is missing.
pub fn plan_add(t: &Table, admin: &str, addrs: &[IpAddr], bridge: &str, policy: Ingress) -> Script {
    let mut s = Script::default();
    let iso = policy != Ingress::Open;
    let mut chains = vec![FORWARD_CHAIN, admin];
    if iso {
        chains.extend([STAGE1, STAGE2]);
    }
    for c in chains {
        if !t.has_chain(c) {
            s.new_chain(c);
        }
    }
    // the isolation jump must stay above CNI-FORWARD, whose accepts would bypass it
    if !t.has_rule("FORWARD", &fwd_jump()) {
        let below_iso = t.index("FORWARD", |r| r.ends_with(&format!("-j {STAGE1}"))).map_or(1, |i| i + 2);
        s.insert("FORWARD", below_iso, &fwd_jump());
    }
    if !t.has_rule(FORWARD_CHAIN, &admin_jump(admin)) {
        s.insert(FORWARD_CHAIN, 1, &admin_jump(admin));
    }
    for ip in addrs {
        for r in address_rules(*ip) {
            if !t.has_rule(FORWARD_CHAIN, &r) {
                s.append(FORWARD_CHAIN, &r);
            }
        }
    }
    if iso {
        if !t.has_rule("FORWARD", &iso_jump()) {
            s.insert("FORWARD", 1, &iso_jump());
        }
        // bridge rules go to the top, above RETURN; the DROP of `isolated` ends up first
        if !t.has_rule(STAGE1, &stage1_bridge(bridge, policy)) {
            s.insert(STAGE1, 1, &stage1_bridge(bridge, policy));
        }
        if policy == Ingress::Isolated && !t.has_rule(STAGE1, &stage1_drop(bridge)) {
            s.insert(STAGE1, 1, &stage1_drop(bridge));
        }
        if !t.has_rule(STAGE1, &iso_return()) {
            s.append(STAGE1, &iso_return());
        }
        if !t.has_rule(STAGE2, &stage2_drop(bridge)) {
            s.insert(STAGE2, 1, &stage2_drop(bridge));
        }
        if !t.has_rule(STAGE2, &iso_return()) {
            s.append(STAGE2, &iso_return());
        }
    }
    s
}

/// What DEL has to delete from `t`: every copy of the addresses' rules that is there.
pub fn plan_del(t: &Table, addrs: &[IpAddr]) -> Script {
    let mut s = Script::default();
    for ip in addrs {
        for r in address_rules(*ip) {
            for _ in 0..t.count(FORWARD_CHAIN, &r) {
                s.delete(FORWARD_CHAIN, &r);
            }
        }
    }
    s
}

/// What CHECK misses in `t`, as `-A` lines (the reference checks these too).
pub fn plan_missing(t: &Table, admin: &str, addrs: &[IpAddr]) -> Vec<String> {
    let mut want = vec![("FORWARD".to_string(), fwd_jump()), (FORWARD_CHAIN.to_string(), admin_jump(admin))];
    for ip in addrs {
        want.extend(address_rules(*ip).map(|r| (FORWARD_CHAIN.to_string(), r)));
    }
    let mut out: Vec<String> = [FORWARD_CHAIN, admin].iter().filter(|c| !t.has_chain(c)).map(|c| format!("chain {c}")).collect();
    out.extend(want.into_iter().filter(|(c, r)| !t.has_rule(c, r)).map(|(c, r)| format!("-A {c} {r}")));
    out
}

/// Where a program is: the directories of `PATH`, then the usual sbin directories (runtimes
/// often start plugins with a short `PATH`).
fn find_tool(name: &str) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"].iter().map(PathBuf::from));
    for d in dirs {
        let p = d.join(name);
        if std::fs::metadata(&p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0) {
            return Ok(p);
        }
    }
    Err(Error::msg(
        name,
        format!("{name} not found (in PATH or /usr/sbin, /sbin): the firewall's \"iptables\" backend needs the iptables package"),
    ))
}

/// Whether the programs the backend runs are installed (for STATUS).
pub fn available() -> Result<()> {
    for name in ["iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"] {
        find_tool(name)?;
    }
    Ok(())
}

/// `iptables-save -t filter` (or ip6tables-save): the family's filter table.
pub fn save(fam: Family) -> Result<Table> {
    let tool = fam.tool("save");
    let bin = find_tool(&tool)?;
    let out = Command::new(&bin)
        .args(["-t", TABLE])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io(format!("running {}", bin.display()), e))?;
    if !out.status.success() {
        return Err(Error::msg(format!("{tool} -t {TABLE}"), format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(Table::parse(&String::from_utf8_lossy(&out.stdout), TABLE))
}

/// Feeds `script` to `iptables-restore --noflush --wait` (or ip6tables-restore). On failure the
/// error holds the tool's stderr and the script line it names.
pub fn restore(fam: Family, script: &str) -> Result<()> {
    let tool = fam.tool("restore");
    let bin = find_tool(&tool)?;
    let mut child = Command::new(&bin)
        .args(["--noflush", "--wait"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("running {}", bin.display()), e))?;
    let written = child.stdin.take().map(|mut i| i.write_all(script.as_bytes()));
    let out = child.wait_with_output().map_err(|e| Error::io(format!("waiting for {tool}"), e))?;
    if out.status.success() {
        if let Some(Err(e)) = written {
            return Err(Error::io(format!("writing to {tool}"), e));
        }
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let mut msg = format!("{}: {stderr}", out.status);
    if let Some(line) = failed_line(&stderr).and_then(|n| script.lines().nth(n.saturating_sub(1))) {
        msg.push_str(&format!(" (input line: {line})"));
    }
    Err(Error::msg(format!("{tool} --noflush --wait"), msg))
}

/// The line number in an iptables-restore message: `line 3 failed: …` (nft) or `Error
/// occurred at line: 3` (legacy).
fn failed_line(stderr: &str) -> Option<usize> {
    let rest = stderr[stderr.find("line")? + 4..].trim_start_matches([':', ' ']);
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// rcni's lock around a read-then-restore sequence (released on drop).
struct Lock {
    _file: File,
}

impl Lock {
    fn take() -> Result<Lock> {
        let path = Path::new(LOCK_PATH);
        if let Some(dir) = path.parent() {
            cni_runtime::fsutil::create_dir_all_mode(dir, 0o700).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io(format!("opening {LOCK_PATH}"), e))?;
        f.lock().map_err(|e| Error::io(format!("locking {LOCK_PATH}"), e))?;
        Ok(Lock { _file: f })
    }
}

fn families(addrs: &[IpAddr]) -> Vec<(Family, Vec<IpAddr>)> {
    [Family::V4, Family::V6]
        .into_iter()
        .map(|f| (f, addrs.iter().copied().filter(|ip| Family::of(*ip) == f).collect::<Vec<_>>()))
        .filter(|(_, a)| !a.is_empty())
        .collect()
}

/// ADD: accepts forwarded traffic from and back to `addrs`, with the admin chain `admin`, and
/// applies `policy` to `bridge`, in each family the addresses have. Both families' tables are
/// read first; if the IPv6 restore fails after the IPv4 one succeeded, the IPv4 rules this call
/// added are deleted again.
pub fn setup(admin: &str, bridge: &str, addrs: &[IpAddr], policy: Ingress) -> Result<()> {
    if policy != Ingress::Open {
        check_ifname(bridge)?;
    }
    let _lock = Lock::take()?;
    let mut plans = Vec::new();
    for (fam, a) in families(addrs) {
        let t = save(fam)?;
        plans.push((fam, plan_add(&t, admin, &a, bridge, policy)));
    }
    let mut done: Vec<&(Family, Script)> = Vec::new();
    for p in &plans {
        let (fam, script) = p;
        if script.is_empty() {
            continue;
        }
        if let Err(mut e) = restore(*fam, &script.text()) {
            for (f, s) in done.iter().rev() {
                if let Some(undo) = s.undo_text() {
                    if let Err(u) = restore(*f, &undo) {
                        e = Error::msg(e.to_string(), format!("undoing the {} rules also failed: {u}", f.tool("restore")));
                    }
                }
            }
            return Err(e);
        }
        done.push(p);
    }
    Ok(())
}

/// DEL: deletes the rules of `addrs` (every copy) that are there; without addresses there is
/// nothing to find (the rules carry no owner). Returns whether anything was deleted.
pub fn teardown(addrs: &[IpAddr]) -> Result<bool> {
    if addrs.is_empty() {
        return Ok(false);
    }
    // best effort: DEL goes on without the lock rather than leave the rules
    let _lock = Lock::take().ok();
    let mut deleted = false;
    let mut first_err = None;
    for (fam, a) in families(addrs) {
        let r = save(fam).and_then(|t| {
            let s = plan_del(&t, &a);
            if s.is_empty() {
                return Ok(false);
            }
            restore(fam, &s.text()).map(|()| true)
        });
        match r {
            Ok(d) => deleted |= d,
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(deleted),
    }
}

/// CHECK: the chains and rules ADD would have written for `addrs` that are missing.
pub fn missing(admin: &str, addrs: &[IpAddr]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (fam, a) in families(addrs) {
        let t = save(fam)?;
        out.extend(plan_missing(&t, admin, &a).into_iter().map(|m| format!("{m} ({})", fam.name())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRESH: &str = "# Generated by iptables-save v1.8.9 (nf_tables) on Mon Nov 23 09:44:15 2026
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
# Completed on Mon Nov 23 09:44:15 2026
";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// The table after applying `s` to `t`, as iptables would (enough for these rules).
    fn apply(t: &Table, s: &Script) -> Table {
        let mut t = t.clone();
        for l in &s.lines {
            let (verb, rest) = l.split_at(2);
            let rest = rest.trim_start();
            let (chain, spec) = rest.split_once(' ').unwrap_or((rest, ""));
            let at = |t: &Table, n: usize| {
                let idx: Vec<usize> = t.rules.iter().enumerate().filter(|(_, (c, _))| c == chain).map(|(i, _)| i).collect();
                match idx.get(n) {
                    Some(i) => *i,
                    None => idx.last().map_or(t.rules.len(), |i| i + 1),
                }
            };
            match verb {
                "-N" => t.chains.push(chain.into()),
                "-A" => {
                    let i = at(&t, usize::MAX);
                    t.rules.insert(i, (chain.into(), spec.into()));
                }
                "-I" => {
                    let (pos, spec) = spec.split_once(' ').unwrap();
                    let i = at(&t, pos.parse::<usize>().unwrap() - 1);
                    t.rules.insert(i, (chain.into(), spec.into()));
                }
                "-D" => {
                    let i = t.rules.iter().position(|(c, r)| c == chain && r == spec).expect("deleting a rule that is there");
                    t.rules.remove(i);
                }
                _ => panic!("{l}"),
            }
        }
        t
    }

    fn lines(t: &Table) -> Vec<String> {
        t.rules.iter().map(|(c, r)| format!("-A {c} {r}")).collect()
    }

    #[test]
    fn parses_one_table_of_iptables_save() {
        let save = "*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n*filter\n:FORWARD DROP [3:180]\n:CNI-ADMIN - [0:0]\n\
                    -A FORWARD -m comment --comment \"CNI firewall plugin rules\" -j CNI-FORWARD\n-A CNI-ADMIN -s 1.2.3.4/32 -j DROP\nCOMMIT\n";
        let t = Table::parse(save, "filter");
        assert_eq!(t.chains, ["FORWARD", "CNI-ADMIN"]);
        assert_eq!(
            t.rules,
            [
                ("FORWARD".to_string(), "-m comment --comment \"CNI firewall plugin rules\" -j CNI-FORWARD".to_string()),
                ("CNI-ADMIN".to_string(), "-s 1.2.3.4/32 -j DROP".to_string())
            ]
        );
        assert!(t.has_chain("FORWARD") && !t.has_chain("POSTROUTING"));
        assert_eq!(Table::parse(save, "raw"), Table::default());
    }

    #[test]
    fn fresh_add_writes_the_reference_rules() {
        let t = Table::parse(FRESH, "filter");
        let s = plan_add(&t, DEFAULT_ADMIN_CHAIN, &[ip("10.99.0.2")], "cni0", Ingress::Open);
        assert_eq!(
            s.text(),
            "*filter\n-N CNI-FORWARD\n-N CNI-ADMIN\n\
             -I FORWARD 1 -m comment --comment \"CNI firewall plugin rules\" -j CNI-FORWARD\n\
             -I CNI-FORWARD 1 -m comment --comment \"CNI firewall plugin admin overrides\" -j CNI-ADMIN\n\
             -A CNI-FORWARD -d 10.99.0.2/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
             -A CNI-FORWARD -s 10.99.0.2/32 -j ACCEPT\nCOMMIT\n"
        );
        // the layout observed with the Go plugin (reference-plugins.md, "Observed layout")
        assert_eq!(
            lines(&apply(&t, &s)),
            [
                "-A FORWARD -m comment --comment \"CNI firewall plugin rules\" -j CNI-FORWARD",
                "-A CNI-FORWARD -m comment --comment \"CNI firewall plugin admin overrides\" -j CNI-ADMIN",
                "-A CNI-FORWARD -d 10.99.0.2/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                "-A CNI-FORWARD -s 10.99.0.2/32 -j ACCEPT",
            ]
        );
    }

    #[test]
    fn repeated_add_adds_nothing_and_a_second_address_only_its_rules() {
        let t = Table::parse(FRESH, "filter");
        let t = apply(&t, &plan_add(&t, "MY-ADMIN", &[ip("10.0.0.2")], "", Ingress::Open));
        assert!(plan_add(&t, "MY-ADMIN", &[ip("10.0.0.2")], "", Ingress::Open).is_empty());
        let s = plan_add(&t, "MY-ADMIN", &[ip("10.0.0.3")], "", Ingress::Open);
        assert_eq!(
            s.lines,
            [
                "-A CNI-FORWARD -d 10.0.0.3/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                "-A CNI-FORWARD -s 10.0.0.3/32 -j ACCEPT"
            ]
        );
        // another admin chain name: created and jumped to; the existing one is left alone
        let s = plan_add(&t, "OTHER", &[ip("10.0.0.2")], "", Ingress::Open);
        assert_eq!(s.lines, ["-N OTHER", "-I CNI-FORWARD 1 -m comment --comment \"CNI firewall plugin admin overrides\" -j OTHER"]);
    }

    #[test]
    fn ipv6_rules_use_128() {
        assert_eq!(
            address_rules(ip("fd00:236::2")),
            ["-d fd00:236::2/128 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "-s fd00:236::2/128 -j ACCEPT"]
        );
        let f = families(&[ip("fd00::2"), ip("10.0.0.2"), ip("fd00::3")]);
        assert_eq!(f, [(Family::V4, vec![ip("10.0.0.2")]), (Family::V6, vec![ip("fd00::2"), ip("fd00::3")])]);
        assert_eq!(Family::V6.tool("restore"), "ip6tables-restore");
    }

    #[test]
    fn isolation_layout_is_the_references() {
        let t = Table::parse(FRESH, "filter");
        let t = apply(&t, &plan_add(&t, DEFAULT_ADMIN_CHAIN, &[ip("10.1.0.2")], "br1", Ingress::Isolated));
        let d = "-m comment --comment \"CNI firewall plugin rules (ingressPolicy: same-bridge|isolated)\"";
        let iso = "-m comment --comment \"CNI firewall plugin rules (ingressPolicy: isolated)\"";
        assert_eq!(
            lines(&t),
            [
                format!("-A FORWARD {d} -j CNI-ISOLATION-STAGE-1"),
                "-A FORWARD -m comment --comment \"CNI firewall plugin rules\" -j CNI-FORWARD".into(),
                "-A CNI-FORWARD -m comment --comment \"CNI firewall plugin admin overrides\" -j CNI-ADMIN".into(),
                "-A CNI-FORWARD -d 10.1.0.2/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT".into(),
                "-A CNI-FORWARD -s 10.1.0.2/32 -j ACCEPT".into(),
                format!("-A CNI-ISOLATION-STAGE-1 -i br1 -o br1 {iso} -j DROP"),
                format!("-A CNI-ISOLATION-STAGE-1 -i br1 ! -o br1 {iso} -j CNI-ISOLATION-STAGE-2"),
                format!("-A CNI-ISOLATION-STAGE-1 {d} -j RETURN"),
                format!("-A CNI-ISOLATION-STAGE-2 -o br1 {d} -j DROP"),
                format!("-A CNI-ISOLATION-STAGE-2 {d} -j RETURN"),
            ]
        );
        // a second bridge (same-bridge) goes above the first one's rules, before RETURN
        let s = plan_add(&t, DEFAULT_ADMIN_CHAIN, &[ip("10.2.0.2")], "br2", Ingress::SameBridge);
        let t = apply(&t, &s);
        let same = "-m comment --comment \"CNI firewall plugin rules (ingressPolicy: same-bridge)\"";
        let stage1: Vec<_> = lines(&t).into_iter().filter(|l| l.starts_with("-A CNI-ISOLATION-STAGE-1")).collect();
        assert_eq!(stage1[0], format!("-A CNI-ISOLATION-STAGE-1 -i br2 ! -o br2 {same} -j CNI-ISOLATION-STAGE-2"));
        assert_eq!(stage1.last().unwrap(), &format!("-A CNI-ISOLATION-STAGE-1 {d} -j RETURN"));
        let stage2: Vec<_> = lines(&t).into_iter().filter(|l| l.starts_with("-A CNI-ISOLATION-STAGE-2")).collect();
        assert_eq!(
            stage2,
            [
                format!("-A CNI-ISOLATION-STAGE-2 -o br2 {d} -j DROP"),
                format!("-A CNI-ISOLATION-STAGE-2 -o br1 {d} -j DROP"),
                format!("-A CNI-ISOLATION-STAGE-2 {d} -j RETURN")
            ]
        );
        assert!(plan_add(&t, DEFAULT_ADMIN_CHAIN, &[ip("10.2.0.2")], "br2", Ingress::SameBridge).is_empty());
    }

    #[test]
    fn a_missing_forward_jump_goes_below_the_isolation_jump() {
        let save = "*filter\n:FORWARD ACCEPT [0:0]\n:CNI-FORWARD - [0:0]\n:CNI-ADMIN - [0:0]\n:CNI-ISOLATION-STAGE-1 - [0:0]\n\
                    -A FORWARD -j OPERATOR\n-A FORWARD -m comment --comment \"CNI firewall plugin rules (ingressPolicy: same-bridge)\" -j CNI-ISOLATION-STAGE-1\nCOMMIT\n";
        let t = Table::parse(save, "filter");
        let s = plan_add(&t, DEFAULT_ADMIN_CHAIN, &[ip("10.0.0.2")], "", Ingress::Open);
        assert_eq!(s.lines[0], "-I FORWARD 3 -m comment --comment \"CNI firewall plugin rules\" -j CNI-FORWARD");
    }

    #[test]
    fn undo_deletes_what_was_added_newest_first() {
        let t = Table::parse(FRESH, "filter");
        let s = plan_add(&t, DEFAULT_ADMIN_CHAIN, &[ip("10.0.0.2")], "", Ingress::Open);
        let after = apply(&t, &s);
        let undo = s.undo_text().unwrap();
        assert!(
            undo.starts_with("*filter\n-D CNI-FORWARD -s 10.0.0.2/32 -j ACCEPT\n") && undo.ends_with("CNI-FORWARD\nCOMMIT\n"),
            "{undo}"
        );
        let lines: Vec<String> = undo.lines().filter(|l| l.starts_with("-D")).map(String::from).collect();
        let back = apply(&after, &Script { lines, undo: vec![] });
        assert!(back.rules.is_empty(), "{back:?}");
        assert_eq!(Script::default().undo_text(), None);
    }

    #[test]
    fn del_deletes_every_copy_of_present_rules_only() {
        let save = "*filter\n:CNI-FORWARD - [0:0]\n-A CNI-FORWARD -s 10.0.0.2/32 -j ACCEPT\n-A CNI-FORWARD -s 10.0.0.2/32 -j ACCEPT\n\
                    -A CNI-FORWARD -s 10.0.0.3/32 -j ACCEPT\nCOMMIT\n";
        let t = Table::parse(save, "filter");
        let s = plan_del(&t, &[ip("10.0.0.2"), ip("10.0.0.9")]);
        assert_eq!(s.text(), "*filter\n-D CNI-FORWARD -s 10.0.0.2/32 -j ACCEPT\n-D CNI-FORWARD -s 10.0.0.2/32 -j ACCEPT\nCOMMIT\n");
        assert!(plan_del(&t, &[ip("10.0.0.9")]).is_empty());
        assert!(plan_del(&Table::default(), &[ip("10.0.0.2")]).is_empty());
    }

    #[test]
    fn check_lists_what_is_missing() {
        let t = Table::parse(FRESH, "filter");
        let done = apply(&t, &plan_add(&t, DEFAULT_ADMIN_CHAIN, &[ip("10.0.0.2")], "", Ingress::Open));
        assert!(plan_missing(&done, DEFAULT_ADMIN_CHAIN, &[ip("10.0.0.2")]).is_empty());
        assert_eq!(
            plan_missing(&done, DEFAULT_ADMIN_CHAIN, &[ip("10.0.0.3")]),
            [
                "-A CNI-FORWARD -d 10.0.0.3/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
                "-A CNI-FORWARD -s 10.0.0.3/32 -j ACCEPT"
            ]
        );
        assert_eq!(
            plan_missing(&t, "X", &[]),
            [
                "chain CNI-FORWARD",
                "chain X",
                "-A FORWARD -m comment --comment \"CNI firewall plugin rules\" -j CNI-FORWARD",
                "-A CNI-FORWARD -m comment --comment \"CNI firewall plugin admin overrides\" -j X"
            ]
        );
    }

    #[test]
    fn names_that_cannot_be_written_are_refused() {
        assert!(check_chain_name("CNI-ADMIN").is_ok() && check_chain_name("my_admin.v4").is_ok());
        for bad in ["", "FORWARD", "CNI-FORWARD", "-X", "a b", "a\"b", &"x".repeat(29)] {
            assert!(check_chain_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_ifname("cni0").is_ok() && check_ifname("rcnifw-ipt1").is_ok());
        for bad in ["", "br\"0", "br 0", "-br", "br+", "abcdefghijklmnop"] {
            assert!(check_ifname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_missing_tool_is_named() {
        let e = find_tool("rcni-no-such-iptables-restore").unwrap_err().to_string();
        assert!(e.contains("rcni-no-such-iptables-restore not found") && e.contains("iptables package"), "{e}");
    }

    #[test]
    fn restore_errors_name_the_failing_line() {
        assert_eq!(failed_line("iptables-restore: line 3 failed: Chain already exists."), Some(3));
        assert_eq!(failed_line("Couldn't load target `X'\n\nError occurred at line: 2\nTry `iptables-restore -h'"), Some(2));
        assert_eq!(failed_line("iptables-restore v1.8.9 (nf_tables): unknown option"), None);
    }
}

//! `rcni doctor`: the node's CNI state explained in one run, each finding with its severity
//! and the command that fixes it. It changes nothing.
//!
//! [`collect`] gathers the facts (files, the result cache, sysctls, nftables, links, the
//! plugins' VERSION answers); [`checks`] judges them, as pure functions tested without the
//! kernel. Exit code: 0 healthy (notes only), 1 warnings, 2 errors.
//!
//! `--format json` prints (stable):
//! `{"findings": [{"severity": "error"|"warning"|"info", "check": …, "what": …, "fix": …|null}],
//!   "summary": {"status": "healthy"|"warnings"|"errors", "errors": N, "warnings": N, "info": N}}`,
//! findings ordered by severity (errors first), then by check. `check` is one of `config`,
//! `plugins`, `subnets`, `forwarding`, `nftables`, `attachments`, `leases`, `nftables-objects`,
//! `ifbs`, `veths`, `permissions`.

mod checks;
mod collect;
mod facts;

use clap::Args;
use serde_json::{json, Value};
use std::path::PathBuf;

/// The config directory `rcni` uses unless told otherwise.
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/net.d";

#[derive(Args)]
pub struct DoctorArgs {
    /// Network configuration directory
    #[arg(long, default_value = DEFAULT_CONF_DIR, env = "NETCONFPATH")]
    pub conf_dir: PathBuf,
    /// Plugin directories the networks' plugins are looked up in, as runtimes do (colon separated)
    #[arg(long, env = "CNI_PATH", default_value = "/opt/cni/bin")]
    pub cni_path: String,
    #[command(flatten)]
    pub output: crate::shared::Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One thing the doctor found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// Which check found it (see the module's list).
    pub check: &'static str,
    pub what: String,
    /// The command (or the change) that fixes it.
    pub fix: Option<String>,
}

/// 0 healthy, 1 warnings, 2 errors.
pub fn exit_code(findings: &[Finding]) -> i32 {
    match findings.iter().map(|f| f.severity).min() {
        Some(Severity::Error) => 2,
        Some(Severity::Warning) => 1,
        _ => 0,
    }
}

fn count(findings: &[Finding], s: Severity) -> usize {
    findings.iter().filter(|f| f.severity == s).count()
}

fn status(findings: &[Finding]) -> &'static str {
    match exit_code(findings) {
        2 => "errors",
        1 => "warnings",
        _ => "healthy",
    }
}

/// The stable JSON report.
pub fn to_json(findings: &[Finding]) -> Value {
    json!({
        "findings": findings.iter().map(|f| json!({"severity": f.severity.name(), "check": f.check, "what": f.what, "fix": f.fix})).collect::<Vec<_>>(),
        "summary": {
            "status": status(findings),
            "errors": count(findings, Severity::Error),
            "warnings": count(findings, Severity::Warning),
            "info": count(findings, Severity::Info),
        },
    })
}

/// The report for people: one line per finding and its fix below, then the summary.
pub fn to_text(findings: &[Finding]) -> String {
    let mut s = String::new();
    let w = findings.iter().map(|f| f.check.len()).max().unwrap_or(0);
    for f in findings {
        s.push_str(&format!("{:<7}  {:<w$}  {}\n", f.severity.name(), f.check, f.what));
        if let Some(fix) = &f.fix {
            s.push_str(&format!("{:<7}  {:<w$}  fix: {fix}\n", "", ""));
        }
    }
    let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    let summary = format!(
        "{}, {}, {}",
        plural(count(findings, Severity::Error), "error"),
        plural(count(findings, Severity::Warning), "warning"),
        plural(count(findings, Severity::Info), "note")
    );
    match exit_code(findings) {
        0 => s.push_str(&format!("healthy ({summary})\n")),
        _ => s.push_str(&format!("{summary}\n")),
    }
    s
}

/// Findings in report order: by severity, then by check (stable within).
fn sorted(mut findings: Vec<Finding>) -> Vec<Finding> {
    findings.sort_by_key(|f| f.severity);
    findings
}

pub fn doctor(a: DoctorArgs) -> i32 {
    let paths = cni_runtime::find::split_path_list(&a.cni_path);
    let facts = collect::collect(&a.conf_dir, &paths);
    let findings = sorted(checks::all(&facts));
    if a.output.json() {
        println!("{}", serde_json::to_string_pretty(&to_json(&findings)).expect("JSON"));
    } else {
        print!("{}", to_text(&findings));
    }
    exit_code(&findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(severity: Severity, check: &'static str, what: &str, fix: Option<&str>) -> Finding {
        Finding { severity, check, what: what.into(), fix: fix.map(String::from) }
    }

    #[test]
    fn exit_codes_and_reports() {
        assert_eq!(exit_code(&[]), 0);
        let info = f(Severity::Info, "plugins", "bridge is rcni's own", Some("rcni install --dir /opt/cni/bin"));
        let warn = f(Severity::Warning, "leases", "network a: 1 lease", Some("rcni gc"));
        let err = f(Severity::Error, "subnets", "networks a and b overlap", None);
        assert_eq!(exit_code(std::slice::from_ref(&info)), 0, "notes are healthy");
        assert_eq!(exit_code(&[info.clone(), warn.clone()]), 1);
        assert_eq!(exit_code(&[warn.clone(), err.clone(), info.clone()]), 2);

        let all = sorted(vec![info.clone(), warn.clone(), err.clone()]);
        assert_eq!(all, [err.clone(), warn.clone(), info.clone()]);
        assert_eq!(
            to_json(&all),
            json!({"findings": [
                {"severity": "error", "check": "subnets", "what": "networks a and b overlap", "fix": null},
                {"severity": "warning", "check": "leases", "what": "network a: 1 lease", "fix": "rcni gc"},
                {"severity": "info", "check": "plugins", "what": "bridge is rcni's own", "fix": "rcni install --dir /opt/cni/bin"}],
              "summary": {"status": "errors", "errors": 1, "warnings": 1, "info": 1}})
        );
        assert_eq!(
            to_text(&all),
            "error    subnets  networks a and b overlap\n\
             warning  leases   network a: 1 lease\n\
             \x20                 fix: rcni gc\n\
             info     plugins  bridge is rcni's own\n\
             \x20                 fix: rcni install --dir /opt/cni/bin\n\
             1 error, 1 warning, 1 note\n"
        );
        assert_eq!(to_text(&[info]), format!("info     plugins  bridge is rcni's own\n{:18}fix: rcni install --dir /opt/cni/bin\nhealthy (0 errors, 0 warnings, 1 note)\n", ""));
        assert_eq!(to_json(&[])["summary"], json!({"status": "healthy", "errors": 0, "warnings": 0, "info": 0}));
    }
}

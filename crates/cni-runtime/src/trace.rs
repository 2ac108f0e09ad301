//! "Why is pod start slow": every plugin a runtime runs, with its verb, how it ran (inside the
//! runtime's process or as its own), how long it took, how many kernel requests it made (rcni's
//! plugins in-process; netkit counts them here) and what it answered.
//!
//! A [`CniConfig`](crate::CniConfig) reports each step to its sink: one set with
//! [`with_trace`](crate::CniConfig::with_trace), or, from the environment, `RCNI_TRACE=1` (a
//! line per step on stderr) or `RCNI_TRACE=json` (a JSON object per line on stderr).

use serde_json::{json, Value};
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

/// One plugin run.
#[derive(Debug, Clone)]
pub struct Step {
    pub network: String,
    pub plugin: String,
    pub verb: String,
    pub ifname: String,
    /// Run inside this process (rcni's own plugin) rather than as a child process.
    pub in_process: bool,
    pub duration: Duration,
    /// Kernel (netlink) requests made; known for plugins run in this process's thread.
    pub kernel_requests: Option<u64>,
    /// `Ok(summary)` (ADD: the addresses) or `Err(the error)`.
    pub outcome: Result<String, String>,
}

/// Where steps go.
pub type Sink = Arc<dyn Fn(&Step) + Send + Sync>;

thread_local! {
    static KERNEL_REQUESTS: Cell<u64> = const { Cell::new(0) };
}

/// Counts one kernel request of this thread (netkit's netlink socket calls it).
pub fn kernel_request() {
    KERNEL_REQUESTS.set(KERNEL_REQUESTS.get().wrapping_add(1));
}

/// This thread's kernel requests so far.
pub fn kernel_requests() -> u64 {
    KERNEL_REQUESTS.get()
}

/// The sink `RCNI_TRACE` asks for, if any.
pub fn from_env() -> Option<Sink> {
    match std::env::var("RCNI_TRACE").ok()?.as_str() {
        "" | "0" => None,
        "json" => Some(Arc::new(|s: &Step| eprintln!("{}", to_json(s)))),
        _ => Some(Arc::new(|s: &Step| eprintln!("{}", to_text(s)))),
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// `ADD web eth0  bridge  in-process  1.234 ms  41 kernel requests  ok 10.210.1.2/24`
pub fn to_text(s: &Step) -> String {
    let k = s.kernel_requests.map(|n| format!("{n:>4} kernel requests")).unwrap_or_else(|| format!("{:>20}", ""));
    let outcome = match &s.outcome {
        Ok(sum) if sum.is_empty() => "ok".to_string(),
        Ok(sum) => format!("ok {sum}"),
        Err(e) => format!("failed: {e}"),
    };
    format!(
        "trace: {:<6} {} {:<6} {:<10} {:<10} {:>9.3} ms {k}  {outcome}",
        s.verb,
        s.network,
        s.ifname,
        s.plugin,
        if s.in_process { "in-process" } else { "exec" },
        ms(s.duration)
    )
}

/// The stable JSON form.
pub fn to_json(s: &Step) -> Value {
    json!({
        "network": s.network,
        "plugin": s.plugin,
        "verb": s.verb,
        "ifname": s.ifname,
        "how": if s.in_process { "in-process" } else { "exec" },
        "durationMs": ms(s.duration),
        "kernelRequests": s.kernel_requests,
        "ok": s.outcome.is_ok(),
        "summary": match &s.outcome { Ok(x) => x.clone(), Err(e) => e.clone() },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let s = Step {
            network: "web".into(),
            plugin: "bridge".into(),
            verb: "ADD".into(),
            ifname: "eth0".into(),
            in_process: true,
            duration: Duration::from_micros(1234),
            kernel_requests: Some(41),
            outcome: Ok("10.210.1.2/24".into()),
        };
        assert_eq!(to_text(&s), "trace: ADD    web eth0   bridge     in-process     1.234 ms   41 kernel requests  ok 10.210.1.2/24");
        let j = to_json(&s);
        assert_eq!(
            (j["durationMs"].clone(), j["how"].clone(), j["kernelRequests"].clone()),
            (json!(1.234), json!("in-process"), json!(41))
        );
        let before = kernel_requests();
        kernel_request();
        assert_eq!(kernel_requests(), before + 1);
    }
}

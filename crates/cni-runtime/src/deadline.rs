//! The runtime's deadline, for plugins that run inside the runtime's process (rcni's `SelfExec`):
//! a process of its own is killed at the deadline, an in-process one is not, so every wait in
//! rcni (netkit's netlink answers, the file locks of host-local and the runtime, the IPAM a plugin
//! delegates to) ends at the deadline of the innermost [`scope`] as well as at its own bound. Per thread, as an
//! in-process plugin runs on its caller's thread.

use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Restores the previous deadline when dropped.
#[must_use = "the deadline holds only while the scope lives"]
#[derive(Debug)]
pub struct Scope {
    previous: Option<Instant>,
}

/// Until the returned scope is dropped, waits on this thread end by `at` (an outer, earlier
/// deadline stays in force; `None` adds none).
pub fn scope(at: Option<Instant>) -> Scope {
    let previous = DEADLINE.get();
    let next = match (previous, at) {
        (Some(p), Some(a)) => Some(p.min(a)),
        (p, a) => p.or(a),
    };
    DEADLINE.set(next);
    Scope { previous }
}

impl Drop for Scope {
    fn drop(&mut self) {
        DEADLINE.set(self.previous);
    }
}

/// The deadline in force on this thread.
pub fn current() -> Option<Instant> {
    DEADLINE.get()
}

/// How long a wait bounded by `max` may last: `max`, or less when the deadline comes first;
/// `None` when the deadline has passed.
pub fn remaining(max: Duration) -> Option<Duration> {
    match DEADLINE.get() {
        None => Some(max),
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            (!left.is_zero()).then_some(left.min(max))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_nest_and_restore() {
        let max = Duration::from_secs(30);
        assert_eq!(remaining(max), Some(max));
        let soon = Instant::now() + Duration::from_secs(5);
        {
            let _a = scope(Some(soon));
            assert!(remaining(max).unwrap() <= Duration::from_secs(5));
            {
                let _b = scope(Some(Instant::now() + Duration::from_secs(60)));
                assert_eq!(current(), Some(soon), "a later inner deadline does not extend the outer one");
                let _c = scope(None);
                assert_eq!(current(), Some(soon));
            }
            let _past = scope(Some(Instant::now() - Duration::from_millis(1)));
            assert_eq!(remaining(max), None);
        }
        assert_eq!(current(), None);
        assert_eq!(remaining(max), Some(max));
    }
}

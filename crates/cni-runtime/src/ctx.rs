//! What Go passes as `context.Context`: an optional deadline and an optional cancellation token.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Cancels every operation running under the contexts that carry it, from any thread.
#[derive(Clone, Debug)]
pub struct CancelToken {
    inner: Arc<CancelInner>,
}

#[derive(Debug)]
struct CancelInner {
    cancelled: AtomicBool,
    /// Readable once cancelled, so a `poll` loop can wait for it next to a child's pipes.
    eventfd: OwnedFd,
}

impl CancelToken {
    pub fn new() -> std::io::Result<Self> {
        // SAFETY: eventfd has no memory-safety preconditions; the fd is owned below.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd is a freshly created descriptor nobody else owns.
        let eventfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(CancelToken { inner: Arc::new(CancelInner { cancelled: AtomicBool::new(false), eventfd }) })
    }

    /// Cancels; idempotent.
    pub fn cancel(&self) {
        if !self.inner.cancelled.swap(true, Ordering::SeqCst) {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a valid u64 to our own eventfd.
            unsafe { libc::write(self.inner.eventfd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.inner.eventfd.as_raw_fd()
    }
}

/// Why a context ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    DeadlineExceeded,
    Cancelled,
}

impl std::fmt::Display for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Done::DeadlineExceeded => "context deadline exceeded",
            Done::Cancelled => "context canceled",
        })
    }
}

/// A deadline and/or a cancellation token; the default has neither.
#[derive(Clone, Debug, Default)]
pub struct Ctx {
    deadline: Option<Instant>,
    cancel: Option<CancelToken>,
}

impl Ctx {
    /// No deadline, no cancellation.
    pub fn background() -> Self {
        Ctx::default()
    }

    /// Ends `timeout` from now (a timeout beyond what the clock can count is none).
    pub fn with_timeout(timeout: Duration) -> Self {
        Ctx { deadline: Instant::now().checked_add(timeout), cancel: None }
    }

    /// This context, also ending when `token` is cancelled.
    pub fn cancellable(mut self, token: &CancelToken) -> Self {
        self.cancel = Some(token.clone());
        self
    }

    /// This context with a deadline (the earlier one wins).
    pub fn deadline(mut self, at: Instant) -> Self {
        self.deadline = Some(self.deadline.map_or(at, |d| d.min(at)));
        self
    }

    pub(crate) fn cancel_token(&self) -> Option<&CancelToken> {
        self.cancel.as_ref()
    }

    /// The deadline, if there is one.
    pub fn deadline_at(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left before the deadline (`None`: no deadline).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Why the context has ended, if it has.
    pub fn done(&self) -> Option<Done> {
        if self.cancel.as_ref().is_some_and(CancelToken::is_cancelled) {
            return Some(Done::Cancelled);
        }
        match self.remaining() {
            Some(r) if r.is_zero() => Some(Done::DeadlineExceeded),
            _ => None,
        }
    }

    /// Sleeps for `d`, returning early with the reason if the context ends first.
    pub fn sleep(&self, d: Duration) -> Result<(), Done> {
        let until = Instant::now() + d;
        loop {
            if let Some(why) = self.done() {
                return Err(why);
            }
            let mut left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            if let Some(r) = self.remaining() {
                left = left.min(r);
            }
            match &self.cancel {
                Some(tok) => {
                    let mut pfd = libc::pollfd { fd: tok.fd(), events: libc::POLLIN, revents: 0 };
                    let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut pfd, 1, ms) };
                }
                None => std::thread::sleep(left),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_too_large_for_the_clock_is_none() {
        let ctx = Ctx::with_timeout(Duration::from_secs(u64::MAX));
        assert_eq!(ctx.remaining(), None);
        assert!(ctx.done().is_none());
    }

    #[test]
    fn deadline_and_cancel() {
        assert_eq!(Ctx::background().done(), None);
        let ctx = Ctx::with_timeout(Duration::ZERO);
        assert_eq!(ctx.done(), Some(Done::DeadlineExceeded));
        let tok = CancelToken::new().unwrap();
        let ctx = Ctx::background().cancellable(&tok);
        assert_eq!(ctx.done(), None);
        let t2 = tok.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            t2.cancel();
        });
        let start = Instant::now();
        assert_eq!(ctx.sleep(Duration::from_secs(10)), Err(Done::Cancelled));
        assert!(start.elapsed() < Duration::from_secs(5));
        h.join().unwrap();
    }
}

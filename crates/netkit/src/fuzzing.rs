//! The fuzzing build's cut-off from the kernel: the one place that decides it (feature
//! `fuzzing`, which only the fuzz crate in `fuzz/` enables; that crate is outside the
//! workspace, so no workspace, test or release build compiles this module).
//!
//! With the feature on, nothing in netkit reaches the kernel's network state, from the first
//! instruction on (there is no switch to forget, and none to turn it back):
//!
//! - every netlink socket (rtnetlink, nf_tables, conntrack) fails to open;
//! - entering, creating, naming or deleting a network namespace fails;
//! - writing a sysctl fails;
//!
//! each with an ordinary [`Error`], which a plugin reports as CNI error JSON as it would a
//! kernel's refusal. Callers outside netkit that would reach the host another way (the
//! firewall's iptables backend runs iptables) ask [`refuse`] too.
//!
//! nftables is not refused but faked: [`crate::nft::shared`] hands out an in-memory
//! [`FakeNft`] (one per thread, kept between calls like the real shared socket, emptied by
//! [`reset`]), so the plugins' nftables layouts run on fuzzed input.

use crate::error::{Error, Result};
use crate::nft::FakeNft;
use std::cell::RefCell;

/// Always an error naming `what`: the kernel is out of reach in a fuzzing build.
pub fn refuse(what: &str) -> Result<()> {
    Err(Error::msg(what, "the kernel is out of reach in this fuzzing build"))
}

/// Whether this build is cut off from the kernel (always, with the feature); for a harness to
/// check before it runs anything.
pub fn kernel_cut_off() -> bool {
    true
}

thread_local! {
    static FAKE: RefCell<Option<FakeNft>> = const { RefCell::new(None) };
}

/// Empties the calling thread's fake nftables (between two fuzz inputs).
pub fn reset() {
    FAKE.with(|f| f.borrow_mut().take());
}

/// The ruleset of the calling thread's fake nftables, as `nft list ruleset` prints it.
pub fn ruleset() -> String {
    FAKE.with(|f| f.borrow().as_ref().map(|n| n.ruleset()).unwrap_or_default())
}

/// The thread's fake (a new one while another user holds it), for [`crate::nft::shared`].
pub(crate) fn take_fake() -> FakeNft {
    FAKE.with(|f| f.borrow_mut().take()).unwrap_or_default()
}

/// Gives a fake back to the thread, unless another went back first.
pub(crate) fn give_back(fake: FakeNft) {
    FAKE.with(|f| {
        let mut slot = f.borrow_mut();
        if slot.is_none() {
            *slot = Some(fake);
        }
    });
}

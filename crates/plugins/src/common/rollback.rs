//! Undoing a partial ADD. A plugin registers how to undo each step as it takes it; if the ADD
//! does not reach [`Rollback::commit`] — an error returned with `?` anywhere, or a panic (the
//! SDK catches it, and unwinding drops the guard) — the registered steps are undone newest
//! first. So no path out of an ADD can forget to clean up what it registered. A step that can
//! fail half done (a kernel object made, then a read of it failing) must clean up its own half,
//! or register its undo before it starts; an all-or-nothing step (an nftables batch) registers
//! after it succeeded.

use cni_types::CniError;
use std::panic::{catch_unwind, AssertUnwindSafe};

type Step<'a> = Box<dyn FnOnce() -> Result<(), CniError> + 'a>;

/// The undo steps of one ADD. See the module.
#[must_use = "an ADD that succeeds must commit, or its work is undone when the guard drops"]
pub struct Rollback<'a> {
    steps: Vec<(&'static str, Step<'a>)>,
}

impl<'a> Rollback<'a> {
    pub fn new() -> Self {
        Rollback { steps: Vec::new() }
    }

    /// Registers how to undo `what` (undo steps find their objects by owner, and treat
    /// "already gone" as done).
    pub fn push(&mut self, what: &'static str, undo: impl FnOnce() -> Result<(), CniError> + 'a) {
        self.steps.push((what, Box::new(undo)));
    }

    /// The ADD succeeded: nothing is undone.
    pub fn commit(mut self) {
        self.steps.clear();
    }
}

impl Default for Rollback<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        while let Some((what, undo)) = self.steps.pop() {
            // a step that fails or panics does not stop the others (a panic while unwinding
            // would abort the process)
            match catch_unwind(AssertUnwindSafe(undo)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("rcni: undoing {what} of the failed ADD: {}", e.msg),
                Err(_) => eprintln!("rcni: undoing {what} of the failed ADD panicked"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn steps<'a>(log: &'a RefCell<Vec<&'static str>>, rb: &mut Rollback<'a>) {
        rb.push("one", || {
            log.borrow_mut().push("one");
            Ok(())
        });
        rb.push("two", || {
            log.borrow_mut().push("two");
            Err(CniError::internal("it was gone"))
        });
        rb.push("three", || {
            log.borrow_mut().push("three");
            panic!("a bug in an undo step")
        });
        rb.push("four", || {
            log.borrow_mut().push("four");
            Ok(())
        });
    }

    fn add(log: &RefCell<Vec<&'static str>>, fail: bool) -> Result<(), CniError> {
        let mut rb = Rollback::new();
        steps(log, &mut rb);
        if fail {
            return Err(CniError::internal("step five failed"));
        }
        rb.commit();
        Ok(())
    }

    #[test]
    fn an_early_return_undoes_everything_newest_first() {
        let log = RefCell::new(Vec::new());
        assert!(add(&log, true).is_err());
        assert_eq!(*log.borrow(), ["four", "three", "two", "one"], "failing and panicking steps do not stop the others");
    }

    #[test]
    fn a_commit_undoes_nothing() {
        let log = RefCell::new(Vec::new());
        add(&log, false).unwrap();
        assert!(log.borrow().is_empty());
    }

    #[test]
    fn a_panic_undoes_everything() {
        let log = RefCell::new(Vec::new());
        let r = catch_unwind(AssertUnwindSafe(|| {
            let mut rb = Rollback::new();
            rb.push("the veth", || {
                log.borrow_mut().push("the veth");
                Ok(())
            });
            let gateway: Option<u32> = std::hint::black_box(None);
            gateway.expect("a plugin bug");
            rb.commit();
        }));
        assert!(r.is_err());
        assert_eq!(*log.borrow(), ["the veth"]);
    }
}

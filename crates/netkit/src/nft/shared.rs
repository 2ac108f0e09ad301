//! One nftables socket per process. rcni's cnitool and `rcni attach` run a whole chain in one
//! process (bridge, portmap, firewall, … in-process), and each of those plugins needs nftables:
//! with a socket each, every plugin opened its own and, after a DEL, forked its own child to
//! close it without waiting. [`shared`] hands out the process's one socket instead (opened on
//! first use), and [`release_shared`] closes it once, at the end: the binary calls it before it
//! exits (a socket the kernel closes at exit would make the process wait).
//!
//! The socket belongs to the network namespace it was opened in; a caller in another namespace
//! gets a socket of its own, which is closed when its guard drops.

use super::Nft;
use crate::error::Result;
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;

/// The process's socket and the namespace it lives in (device, inode of its nsfs file).
static POOL: Mutex<Option<((u64, u64), Nft)>> = Mutex::new(None);

fn current_ns() -> Result<(u64, u64)> {
    let m = std::fs::metadata("/proc/thread-self/ns/net").map_err(|e| crate::Error::io("reading the thread's network namespace", e))?;
    Ok((m.dev(), m.ino()))
}

/// The process's nftables socket for the calling thread's namespace (or a socket of its own
/// while another user holds it, or in another namespace). Give it back by dropping the guard.
/// (In a fuzzing build, an in-memory fake instead: see `crate::fuzzing`.)
pub fn shared() -> Result<SharedNft> {
    #[cfg(feature = "fuzzing")]
    if crate::fuzzing::kernel_cut_off() {
        return Ok(SharedNft { sock: Some(Sock::Fake(Box::new(crate::fuzzing::take_fake()))), ns: (0, 0) });
    }
    let ns = current_ns()?;
    let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
    let nft = match pool.take() {
        Some((id, nft)) if id == ns => nft,
        other => {
            *pool = other;
            drop(pool);
            Nft::new()?
        }
    };
    Ok(SharedNft { sock: Some(Sock::Kernel(nft)), ns })
}

/// Closes the process's socket (in the background when it deleted something). Call it once
/// the last plugin of the process is done, before exiting.
pub fn release_shared() {
    let nft = POOL.lock().unwrap_or_else(|p| p.into_inner()).take();
    drop(nft);
}

#[derive(Debug)]
enum Sock {
    Kernel(Nft),
    #[cfg(feature = "fuzzing")]
    Fake(Box<super::FakeNft>),
}

/// A borrowed [`Nft`], used as a [`Client`](super::Client); dropping it returns the socket to
/// the process.
#[derive(Debug)]
pub struct SharedNft {
    sock: Option<Sock>,
    ns: (u64, u64),
}

impl SharedNft {
    #[cfg(test)]
    fn sock_fd(&self) -> i32 {
        match self.sock.as_ref().expect("present until dropped") {
            Sock::Kernel(n) => n.sock_fd(),
            #[cfg(feature = "fuzzing")]
            Sock::Fake(_) => -1,
        }
    }

    /// See [`Nft::delete_conntrack_by_dport`] (the fake has no conntrack entries).
    pub fn delete_conntrack_by_dport(&mut self, v6: bool, proto: u8, ports: &[u16]) -> Result<usize> {
        match self.sock.as_mut().expect("present until dropped") {
            Sock::Kernel(n) => n.delete_conntrack_by_dport(v6, proto, ports),
            #[cfg(feature = "fuzzing")]
            Sock::Fake(_) => {
                let _ = (v6, proto, ports);
                Ok(0)
            }
        }
    }
}

impl Deref for SharedNft {
    type Target = dyn super::Client;
    fn deref(&self) -> &(dyn super::Client + 'static) {
        match self.sock.as_ref().expect("present until dropped") {
            Sock::Kernel(n) => n,
            #[cfg(feature = "fuzzing")]
            Sock::Fake(f) => &**f,
        }
    }
}

impl DerefMut for SharedNft {
    fn deref_mut(&mut self) -> &mut (dyn super::Client + 'static) {
        match self.sock.as_mut().expect("present until dropped") {
            Sock::Kernel(n) => n,
            #[cfg(feature = "fuzzing")]
            Sock::Fake(f) => &mut **f,
        }
    }
}

impl Drop for SharedNft {
    fn drop(&mut self) {
        let nft = match self.sock.take() {
            None => return,
            Some(Sock::Kernel(nft)) => nft,
            #[cfg(feature = "fuzzing")]
            Some(Sock::Fake(f)) => return crate::fuzzing::give_back(*f),
        };
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        if pool.is_none() {
            *pool = Some((self.ns, nft));
        }
        // else: another socket went back first; this one closes now
    }
}

impl super::Client for SharedNft {
    fn commit(&mut self, batch: &super::Batch) -> Result<()> {
        (**self).commit(batch)
    }
    fn rules(&mut self, family: super::Family, table: &str, chain: &str) -> Result<Vec<super::RuleInfo>> {
        (**self).rules(family, table, chain)
    }
    fn sets(&mut self, family: super::Family, table: &str) -> Result<Vec<String>> {
        (**self).sets(family, table)
    }
    fn elements(&mut self, family: super::Family, table: &str, set: &str) -> Result<Vec<super::ElementInfo>> {
        (**self).elements(family, table, set)
    }
    fn get_element(&mut self, family: super::Family, table: &str, set: &str, key: &[u8]) -> Result<Option<super::ElementInfo>> {
        (**self).get_element(family, table, set, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd(n: &SharedNft) -> i32 {
        n.sock_fd()
    }

    #[test]
    fn one_socket_per_process_a_second_for_a_concurrent_user() {
        // (the pool is process-wide: other tests of this binary do not use it)
        let a = shared().unwrap();
        let b = shared().unwrap();
        assert_ne!(fd(&a), fd(&b), "a concurrent user gets a socket of its own");
        let (fa, fb) = (fd(&a), fd(&b));
        drop(a);
        drop(b); // the pool already holds `a`'s: `b`'s closes
        assert!(std::fs::metadata(format!("/proc/self/fd/{fb}")).is_err(), "the surplus socket was closed");
        let c = shared().unwrap();
        assert_eq!(fd(&c), fa, "the pooled socket is handed out again");
        drop(c);
        release_shared();
        assert!(POOL.lock().unwrap().is_none());
    }
}

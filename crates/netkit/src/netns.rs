//! Network namespaces: opening, the one guard that enters and always restores, and persistent
//! named namespaces under `/run/netns` (what `ip netns` and containerd do).
//!
//! This module is the only place in rcni that calls `setns` or `unshare`. Other code works in a
//! namespace by opening a netlink socket inside it ([`NetNs::run`] or the netlink layer) and then
//! using that socket from its own thread.

use crate::error::{Error, Result};
use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// Where named namespaces live.
pub const NETNS_RUN_DIR: &str = "/run/netns";

const NSFS_MAGIC: i64 = 0x6e73_6673;
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// An open network namespace.
#[derive(Debug)]
pub struct NetNs {
    fd: OwnedFd,
    path: PathBuf,
}

/// Identity of a namespace: device and inode of its nsfs file.
pub type NsId = (u64, u64);

impl NetNs {
    /// Opens the namespace at `path`, which must be an nsfs file (a bind mount under
    /// `/run/netns`) or a procfs one (`/proc/<pid>/ns/net`). A missing path is reported as
    /// not-found, so DEL can treat it as already gone.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        match Self::open_inner(path.as_ref())? {
            Ok(ns) => Ok(ns),
            Err(not_ns) => Err(not_ns),
        }
    }

    /// For teardown (DEL): the namespace at `path`, or `None` when it is gone — the path is
    /// missing, or holds something that is not a namespace any more (the placeholder file an
    /// unmounted `/run/netns` entry leaves).
    pub fn open_if_present(path: impl AsRef<Path>) -> Result<Option<Self>> {
        match Self::open_inner(path.as_ref()) {
            Ok(Ok(ns)) => Ok(Some(ns)),
            Ok(Err(_)) => Ok(None),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The outer error: the path does not open; the inner one: it opens but is no namespace.
    fn open_inner(path: &Path) -> Result<std::result::Result<Self, Error>> {
        let what = || format!("opening network namespace {}", path.display());
        // O_NONBLOCK: a FIFO at the path must not wait for a writer (nsfs ignores the flag)
        let fd = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK, Mode::empty())
            .map_err(|e| Error::os(what(), e))?;
        let st = nix::sys::statfs::fstatfs(&fd).map_err(|e| Error::os(what(), e))?;
        let magic = st.filesystem_type().0 as i64;
        if magic != NSFS_MAGIC && magic != PROC_SUPER_MAGIC {
            return Ok(Err(Error::msg(what(), format!("unknown FS magic on {}: {magic:x} (not a network namespace)", path.display()))));
        }
        Ok(Ok(NetNs { fd, path: path.to_path_buf() }))
    }

    /// The calling thread's current namespace.
    pub fn current() -> Result<Self> {
        Self::open("/proc/thread-self/ns/net")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Device and inode: equal for two handles of the same namespace.
    pub fn id(&self) -> Result<NsId> {
        let st = nix::sys::stat::fstat(&self.fd).map_err(|e| Error::os(format!("stat {}", self.path.display()), e))?;
        Ok((st.st_dev, st.st_ino))
    }

    /// Takes an exclusive `flock` on the namespace's file (the one the reference's sbr takes on
    /// the same path, so the two exclude each other), held until this handle is dropped;
    /// waits at most `timeout`.
    pub fn lock_exclusive(&self, timeout: std::time::Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            // SAFETY: flock on a descriptor this handle owns
            if unsafe { libc::flock(self.fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Ok(());
            }
            let errno = nix::errno::Errno::last();
            if errno != nix::errno::Errno::EWOULDBLOCK || std::time::Instant::now() >= deadline {
                return Err(Error::os(format!("locking network namespace {}", self.path.display()), errno));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Moves the calling thread into this namespace until the guard is dropped.
    pub fn enter(&self) -> Result<NetNsGuard> {
        #[cfg(feature = "fuzzing")]
        crate::fuzzing::refuse(&format!("entering network namespace {}", self.path.display()))?;
        let orig = NetNs::current()?;
        setns(self.fd.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| Error::os(format!("entering network namespace {}", self.path.display()), e))?;
        Ok(NetNsGuard { orig, _not_send: PhantomData })
    }

    /// Runs `f` with the calling thread in this namespace, then restores the thread's namespace,
    /// also when `f` fails or panics.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let _guard = self.enter()?;
        Ok(f())
    }

    /// Starts `cmd` in this namespace (the child inherits the namespace of the thread that
    /// spawns it; the thread is restored right after).
    pub fn spawn(&self, cmd: &mut Command) -> Result<Child> {
        let _guard = self.enter()?;
        cmd.spawn().map_err(|e| Error::io(format!("starting {:?}", cmd.get_program()), e))
    }

    /// Starts `cmd` in this namespace the way `ip netns exec` does: in a private mount namespace
    /// with `/sys` remounted, so `/sys/class/net` shows this namespace's links.
    pub fn spawn_with_sysfs(&self, cmd: &mut Command) -> Result<Child> {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the child between fork and exec and only makes system
        // calls (unshare, mount, umount2) with paths that fit nix's stack buffers.
        unsafe {
            cmd.pre_exec(|| {
                unshare(CloneFlags::CLONE_NEWNS).map_err(std::io::Error::from)?;
                let _ = mount(None::<&str>, "/", None::<&str>, MsFlags::MS_SLAVE | MsFlags::MS_REC, None::<&str>);
                if umount2("/sys", MntFlags::MNT_DETACH).is_ok() {
                    let _ = mount(Some("sysfs"), "/sys", Some("sysfs"), MsFlags::empty(), None::<&str>);
                }
                Ok(())
            });
        }
        self.spawn(cmd)
    }

    pub(crate) fn as_raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

/// Restores the thread's original namespace when dropped (including on unwinding). A thread that
/// cannot be restored is not allowed to go on in the wrong namespace: the process aborts.
#[must_use = "the namespace is left as soon as the guard is dropped"]
pub struct NetNsGuard {
    orig: NetNs,
    /// The guard belongs to the thread that entered.
    _not_send: PhantomData<*const ()>,
}

impl Drop for NetNsGuard {
    fn drop(&mut self) {
        if let Err(e) = setns(self.orig.fd.as_fd(), CloneFlags::CLONE_NEWNET) {
            eprintln!("rcni: cannot restore the thread's network namespace ({e}); aborting");
            std::process::abort();
        }
    }
}

fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Error::msg(
            "naming a network namespace",
            format!("invalid name {name:?}: a name is one file name under {NETNS_RUN_DIR} (not empty, \".\" or \"..\", no \"/\")"),
        ));
    }
    Ok(())
}

/// The path of a named namespace.
pub fn named_path(name: &str) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name)
}

/// Makes `/run/netns` a shared mount point, as `ip netns add` does, so namespaces mounted there
/// stay visible to other mount namespaces.
fn ensure_run_dir(dir: &Path) -> Result<()> {
    // 0755 as iproute2 makes it (not 0777 under umask 0: nobody else may add or swap names)
    std::fs::DirBuilder::new().recursive(true).mode(0o755).create(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    match mount(None::<&str>, dir, None::<&str>, shared, None::<&str>) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL) => {
            // not a mount point yet: bind it onto itself, then share it
            mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .map_err(|e| Error::os(format!("bind-mounting {}", dir.display()), e))?;
            mount(None::<&str>, dir, None::<&str>, shared, None::<&str>).map_err(|e| Error::os(format!("sharing {}", dir.display()), e))
        }
        Err(e) => Err(Error::os(format!("sharing {}", dir.display()), e)),
    }
}

/// A random containerd-style name: `cni-` and a version-4 UUID.
pub fn random_name() -> Result<String> {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .map_err(|e| Error::io("reading /dev/urandom", e))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!("cni-{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

/// Mounts `source` (a namespace file) onto a new file `<dir>/<name>`.
fn persist(dir: &Path, name: &str, source: Option<&Path>) -> Result<PathBuf> {
    #[cfg(feature = "fuzzing")]
    crate::fuzzing::refuse(&format!("creating network namespace {name}"))?;
    validate_name(name)?;
    ensure_run_dir(dir)?;
    let path = dir.join(name);
    // the mount point, mode 0 as iproute2 makes it (the bind mount covers it)
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o000).open(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Error::msg(format!("creating network namespace {name}"), "it already exists")
        } else {
            Error::io(format!("creating {}", path.display()), e)
        }
    })?;
    let bind = |src: &Path| {
        mount(Some(src), &path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(|e| Error::os(format!("bind-mounting {} on {}", src.display(), path.display()), e))
    };
    let outcome = match source {
        Some(src) => bind(src),
        // A new namespace is made on a short-lived thread: unshare moves only that thread, and
        // the thread ends right after the bind mount, so no restore is needed.
        None => std::thread::scope(|s| {
            s.spawn(|| {
                unshare(CloneFlags::CLONE_NEWNET).map_err(|e| Error::os("creating a network namespace", e))?;
                bind(Path::new("/proc/thread-self/ns/net"))
            })
            .join()
            .unwrap_or_else(|_| Err(Error::msg("creating a network namespace", "thread panicked")))
        }),
    };
    if let Err(e) = outcome {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(path)
}

/// Runs `f` in a new, empty network namespace of its own (on a short-lived thread: `unshare`
/// moves only that thread). The namespace and everything `f` made in it vanish when the thread
/// ends; nothing is persisted. For probing what the kernel supports without touching any real
/// namespace.
pub fn scratch<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T> {
    #[cfg(feature = "fuzzing")]
    crate::fuzzing::refuse("creating a scratch network namespace")?;
    std::thread::scope(|s| {
        s.spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| Error::os("creating a scratch network namespace", e))?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(Error::msg("running in a scratch network namespace", "thread panicked")))
    })
}

/// Creates a persistent namespace `/run/netns/<name>` (a random `cni-…` name when `None`).
pub fn create(name: Option<&str>) -> Result<PathBuf> {
    let name = match name {
        Some(n) => n.to_string(),
        None => random_name()?,
    };
    persist(Path::new(NETNS_RUN_DIR), &name, None)
}

/// Opens the network namespace process `pid` is in, with an error that says which of "no such
/// process" and "its namespace does not open" (an exited process not yet reaped, no permission).
pub fn open_pid(pid: u32) -> Result<NetNs> {
    let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
    NetNs::open(&path).map_err(|e| {
        let proc_dir = Path::new("/proc").join(pid.to_string());
        match (e.errno(), std::fs::symlink_metadata(&proc_dir).is_ok()) {
            (_, false) => Error::msg(format!("opening the network namespace of process {pid}"), format!("there is no process {pid}")),
            (Some(libc::ENOENT), true) => Error::msg(
                format!("opening the network namespace of process {pid}"),
                "the process has no network namespace any more (it has exited)",
            ),
            _ => e,
        }
    })
}

/// Gives the namespace of process `pid` a name (`/run/netns/<name>`) by bind mount, as
/// `ip netns attach` and a runtime's pod sandbox do: the name keeps the namespace after the
/// process has exited. The namespace is opened first and the open handle is what gets mounted,
/// so a process that exits (and a PID that is reused) meanwhile cannot name another namespace.
/// An invalid or taken name, a missing process or a namespace that does not open is refused
/// before anything is created.
pub fn persist_pid(pid: u32, name: &str) -> Result<PathBuf> {
    validate_name(name)?;
    let ns = open_pid(pid)?;
    let handle = PathBuf::from(format!("/proc/self/fd/{}", ns.as_raw_fd()));
    persist(Path::new(NETNS_RUN_DIR), name, Some(&handle))
}

/// Deletes a named namespace: unmounts and removes its file. The namespace itself lives on while
/// processes are in it.
pub fn delete(name: &str) -> Result<()> {
    #[cfg(feature = "fuzzing")]
    crate::fuzzing::refuse(&format!("deleting network namespace {name}"))?;
    validate_name(name)?;
    let path = named_path(name);
    if std::fs::symlink_metadata(&path).is_err() {
        return Err(Error::os(format!("deleting network namespace {name}"), nix::errno::Errno::ENOENT));
    }
    match umount2(&path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
        Err(e) => return Err(Error::os(format!("unmounting {}", path.display()), e)),
    }
    std::fs::remove_file(&path).map_err(|e| Error::io(format!("removing {}", path.display()), e))
}

/// The named namespaces, sorted.
pub fn list() -> Result<Vec<String>> {
    let mut names: Vec<String> = match std::fs::read_dir(NETNS_RUN_DIR) {
        Ok(d) => d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(format!("reading {NETNS_RUN_DIR}"), e)),
    };
    names.sort();
    Ok(names)
}

/// Every process's network namespace, from `/proc/<pid>/ns/net`, in PID order. Processes whose
/// namespace does not open (exited meanwhile, no permission) are left out, as `ip netns pids`
/// does.
pub fn processes() -> Result<Vec<(u32, NsId)>> {
    let dir = std::fs::read_dir("/proc").map_err(|e| Error::io("reading /proc", e))?;
    let mut all: Vec<(u32, NsId)> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let m = std::fs::metadata(format!("/proc/{pid}/ns/net")).ok()?;
            Some((pid, (m.dev(), m.ino())))
        })
        .collect();
    all.sort_unstable();
    Ok(all)
}

/// The identity of the namespace at `path` (a name under `/run/netns`, a `/proc/<pid>/ns/net`),
/// without keeping it open; `None` when the path is missing or is no namespace.
pub fn id_of(path: impl AsRef<Path>) -> Option<NsId> {
    NetNs::open_if_present(path).ok()??.id().ok()
}

/// The PIDs of every process in the named namespace, sorted (`ip netns pids`).
pub fn pids(name: &str) -> Result<Vec<u32>> {
    validate_name(name)?;
    let path = named_path(name);
    let id = NetNs::open(&path)
        .map_err(|e| {
            if e.is_not_found() {
                Error::msg(format!("network namespace {name}"), "not found (rcni netns ls lists them)")
            } else {
                e
            }
        })?
        .id()?;
    Ok(processes()?.into_iter().filter(|(_, ns)| *ns == id).map(|(pid, _)| pid).collect())
}

/// The names under `/run/netns` that are the namespace of process `pid`.
pub fn identify(pid: u32) -> Result<Vec<String>> {
    let target =
        std::fs::metadata(format!("/proc/{pid}/ns/net")).map_err(|e| Error::io(format!("reading the namespace of process {pid}"), e))?;
    let id = (target.dev(), target.ino());
    Ok(list()?.into_iter().filter(|n| std::fs::metadata(named_path(n)).map(|m| (m.dev(), m.ino()) == id).unwrap_or(false)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("ok-1").is_ok());
        for bad in ["", ".", "..", "a/b"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        let n = random_name().unwrap();
        assert_eq!(n.len(), 40, "{n}");
        assert!(n.starts_with("cni-") && n.as_bytes()[18] == b'4');
    }

    #[test]
    fn processes_and_pid_namespaces() {
        let me = NetNs::current().unwrap().id().unwrap();
        let pid = std::process::id();
        assert!(processes().unwrap().contains(&(pid, me)));
        assert_eq!(open_pid(pid).unwrap().id().unwrap(), me);
        assert_eq!(id_of(format!("/proc/{pid}/ns/net")), Some(me));
        assert_eq!(id_of("/etc/hostname"), None);
        // pid_max itself is never a PID
        let max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap().trim().parse().unwrap();
        let e = open_pid(max).unwrap_err().to_string();
        assert!(e.ends_with(&format!("there is no process {max}")), "{e}");
    }

    #[test]
    fn current_namespace_opens_and_non_namespaces_are_refused() {
        let me = NetNs::current().unwrap();
        assert_eq!(me.id().unwrap(), NetNs::open("/proc/self/ns/net").unwrap().id().unwrap());
        let e = NetNs::open("/etc/hostname").unwrap_err();
        assert!(e.to_string().contains("not a network namespace"), "{e}");
        let e = NetNs::open("/nonexistent/ns").unwrap_err();
        assert!(e.is_not_found(), "{e}");
    }
}

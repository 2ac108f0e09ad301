//! Kernel-layer errors: what was being done, and the kernel's errno (plus its extended-ACK
//! message when netlink gives one).

use std::fmt;
use std::io;

#[derive(Debug)]
pub enum Error {
    /// A system call or netlink request failed with an errno.
    Os { op: String, errno: i32, detail: Option<String> },
    /// Anything else (malformed replies, invalid arguments).
    Other { op: String, msg: String },
}

impl Error {
    pub fn os(op: impl Into<String>, errno: nix::errno::Errno) -> Self {
        Error::Os { op: op.into(), errno: errno as i32, detail: None }
    }

    pub fn io(op: impl Into<String>, e: io::Error) -> Self {
        match e.raw_os_error() {
            Some(errno) => Error::Os { op: op.into(), errno, detail: None },
            None => Error::Other { op: op.into(), msg: e.to_string() },
        }
    }

    pub fn msg(op: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Other { op: op.into(), msg: msg.into() }
    }

    /// The errno, if the kernel refused.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Os { errno, .. } => Some(*errno),
            Error::Other { .. } => None,
        }
    }

    /// The thing is not there (ENOENT, ENODEV, ESRCH): what DEL treats as already gone.
    pub fn is_not_found(&self) -> bool {
        matches!(self.errno(), Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ESRCH))
    }

    /// The thing already exists (EEXIST).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    /// The thing is still in use (EBUSY), e.g. deleting an nftables chain something jumps to.
    pub fn is_busy(&self) -> bool {
        self.errno() == Some(libc::EBUSY)
    }

    /// Not permitted (EACCES), e.g. reading a write-only sysctl such as `net.ipv4.route.flush`.
    pub fn is_permission_denied(&self) -> bool {
        self.errno() == Some(libc::EACCES)
    }

    /// The kernel lacks the feature (EOPNOTSUPP).
    pub fn is_not_supported(&self) -> bool {
        self.errno() == Some(libc::EOPNOTSUPP)
    }

    /// Prefixes the operation with more context.
    pub fn context(self, ctx: impl fmt::Display) -> Self {
        match self {
            Error::Os { op, errno, detail } => Error::Os { op: format!("{ctx}: {op}"), errno, detail },
            Error::Other { op, msg } => Error::Other { op: format!("{ctx}: {op}"), msg },
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Os { op, errno, detail } => {
                write!(f, "{op}: {}", io::Error::from_raw_os_error(*errno))?;
                if let Some(d) = detail {
                    write!(f, " ({d})")?;
                }
                Ok(())
            }
            Error::Other { op, msg } => write!(f, "{op}: {msg}"),
        }
    }
}

impl std::error::Error for Error {}

/// A kernel failure as a plugin reports it: CNI's internal error (code 999) with what was being
/// done and the kernel's errno and message. Plugins return `?` on kernel calls; where the
/// reference gives another code or text for a failure, the plugin maps that failure itself.
impl From<Error> for cni_types::CniError {
    fn from(e: Error) -> Self {
        cni_types::CniError::internal(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

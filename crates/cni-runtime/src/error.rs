//! The runtime library's error: a CNI error (from a plugin or from validation) with the context
//! it travelled through, so a caller can both print Go's texts and recover the CNI code.

use cni_types::{CniError, ConfigError};
use std::fmt;

/// An error from the runtime library.
#[derive(Debug)]
pub enum Error {
    /// A CNI error: returned by a plugin, or raised by validation with the reference's code.
    Cni(CniError),
    /// `context: source` (Go's `fmt.Errorf("…: %w", err)`).
    Context { context: String, source: Box<Error> },
    /// An invalid configuration.
    Config(ConfigError),
    /// An I/O failure while doing `what`.
    Io { what: String, source: std::io::Error },
    /// Anything else.
    Message(String),
    /// Several errors (Go's `errors.Join`), printed one per line.
    Multiple(Vec<Error>),
}

impl Error {
    pub fn msg(m: impl Into<String>) -> Self {
        Error::Message(m.into())
    }

    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { what: what.into(), source }
    }

    /// Wraps this error with context.
    pub fn context(self, context: impl Into<String>) -> Self {
        Error::Context { context: context.into(), source: Box::new(self) }
    }

    /// The CNI error this error carries, if any (looking through context, like Go's `errors.As`).
    pub fn cni(&self) -> Option<&CniError> {
        match self {
            Error::Cni(e) => Some(e),
            Error::Context { source, .. } => source.cni(),
            Error::Multiple(v) => v.iter().find_map(|e| e.cni()),
            _ => None,
        }
    }

    /// The kind of the I/O error this error carries, if any (looking through context): e.g.
    /// `AlreadyExists` from [`conf::write_conflist`](crate::conf::write_conflist) or `NotFound`
    /// from [`conf::remove_network`](crate::conf::remove_network).
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            Error::Io { source, .. } => Some(source.kind()),
            Error::Context { source, .. } => source.io_kind(),
            _ => None,
        }
    }

    /// The CNI code this error carries, if any.
    pub fn code(&self) -> Option<u32> {
        self.cni().map(|e| e.code)
    }

    /// Joins errors (none → `None`, one → itself).
    pub fn join(mut errors: Vec<Error>) -> Option<Error> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(Error::Multiple(errors)),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Cni(e) => e.fmt(f),
            Error::Context { context, source } => write!(f, "{context}: {source}"),
            Error::Config(e) => e.fmt(f),
            Error::Io { what, source } => write!(f, "{what}: {source}"),
            Error::Message(m) => f.write_str(m),
            Error::Multiple(v) => {
                for (i, e) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    e.fmt(f)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Cni(e) => Some(e),
            Error::Context { source, .. } => Some(source.as_ref()),
            Error::Config(e) => Some(e),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<CniError> for Error {
    fn from(e: CniError) -> Self {
        Error::Cni(e)
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_survives_context() {
        let e = Error::Cni(CniError::new(50, "down")).context("plugin type=\"x\" failed (status)");
        assert_eq!(e.code(), Some(50));
        assert_eq!(e.to_string(), "plugin type=\"x\" failed (status): down");
    }

    #[test]
    fn io_kind_survives_context() {
        let e = Error::io("creating x", std::io::ErrorKind::AlreadyExists.into()).context("network n");
        assert_eq!(e.io_kind(), Some(std::io::ErrorKind::AlreadyExists));
        assert_eq!(Error::msg("m").io_kind(), None);
    }

    #[test]
    fn join_prints_one_per_line() {
        let e = Error::join(vec![Error::msg("a"), Error::msg("b")]).unwrap();
        assert_eq!(e.to_string(), "a\nb");
        assert!(Error::join(vec![]).is_none());
    }
}

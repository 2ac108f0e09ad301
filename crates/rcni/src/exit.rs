//! How every `rcni` subcommand ends: an error is printed as `rcni <cmd>: <error>` on stderr and
//! the command exits with [`FAILURE`]; success is the command's own code (0, or what `netns exec`
//! ran exited with).

use std::fmt::Display;

/// The exit code of a subcommand that failed.
pub const FAILURE: i32 = 1;

/// Prints `rcni <cmd>: <msg>` on stderr (errors, and notes such as detach's "nothing attached").
pub fn message(cmd: &str, msg: impl Display) {
    eprintln!("rcni {cmd}: {msg}");
}

/// Reports an error of `cmd` and returns [`FAILURE`]; for commands that report an error and go
/// on (several namespaces, several networks).
pub fn fail(cmd: &str, e: impl Display) -> i32 {
    message(cmd, e);
    FAILURE
}

/// The exit code for a subcommand's outcome: `Ok(code)` as it is, an error reported by [`fail`].
pub fn exit_code<E: Display>(cmd: &str, outcome: Result<i32, E>) -> i32 {
    outcome.unwrap_or_else(|e| fail(cmd, e))
}

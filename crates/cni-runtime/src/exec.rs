//! Running a plugin executable: stdin in, stdout out, stderr kept for errors, with a deadline and
//! cancellation. One `poll` loop watches the child's pipes, a pidfd for its exit and the
//! cancellation eventfd, so nothing blocks on a grandchild that keeps a pipe open and a deadline
//! ends the wait at once.

use crate::ctx::{Ctx, Done};
use crate::error::{Error, Result};
use cni_types::gojson::quote;
use cni_types::CniError;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// Plugins may print at most this much on stdout.
pub const MAX_OUTPUT: usize = 16 << 20;

/// How a runtime runs plugins; tests substitute their own.
pub trait Exec: Send + Sync {
    /// Runs `plugin_path` with `stdin`, the caller's environment overridden by `env`, and returns
    /// its stdout, or the plugin's error.
    fn exec_plugin(&self, ctx: &Ctx, plugin_path: &Path, stdin: &[u8], env: &[(String, String)]) -> Result<Vec<u8>>;

    /// Finds a plugin executable on the search path.
    fn find_in_path(&self, plugin: &str, paths: &[PathBuf]) -> Result<PathBuf> {
        crate::find::find_in_path(plugin, paths)
    }

    /// Whether `plugin_path` runs inside this process (for traces).
    fn runs_in_process(&self, _plugin_path: &Path) -> bool {
        false
    }
}

/// Where a plugin's stderr goes when it succeeds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StderrSink {
    /// Copied to this process's stderr (Go's default).
    #[default]
    Inherit,
    /// Dropped.
    Discard,
}

/// Runs plugins as child processes.
#[derive(Clone, Debug, Default)]
pub struct RawExec {
    pub stderr: StderrSink,
}

/// How many times a spawn that hits "text file busy" is retried, one second apart (as Go).
const TEXT_BUSY_RETRIES: u32 = 5;

impl Exec for RawExec {
    fn exec_plugin(&self, ctx: &Ctx, plugin_path: &Path, stdin: &[u8], env: &[(String, String)]) -> Result<Vec<u8>> {
        let mut attempt = 0;
        let child = loop {
            if let Some(why) = ctx.done() {
                return Err(plugin_error(&format!("signal: killed ({why})"), b"", b""));
            }
            let mut cmd = Command::new(plugin_path);
            cmd.envs(env.iter().map(|(k, v)| (k, v))).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
            match cmd.spawn() {
                Ok(child) => break child,
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempt < TEXT_BUSY_RETRIES => {
                    attempt += 1;
                    tracing::debug!(plugin = %plugin_path.display(), attempt, "text file busy, retrying");
                    if let Err(why) = ctx.sleep(Duration::from_secs(1)) {
                        return Err(plugin_error(&format!("fork/exec {}: {e} ({why})", plugin_path.display()), b"", b""));
                    }
                }
                Err(e) => return Err(plugin_error(&format!("fork/exec {}: {e}", plugin_path.display()), b"", b"")),
            }
        };
        let out = run_child(ctx, child, stdin).map_err(|e| Error::io(format!("running {}", plugin_path.display()), e))?;
        let failure = match (out.killed, out.status) {
            (Some(why), _) => Some(format!("signal: killed ({why})")),
            (None, _) if out.overflow => Some(format!("plugin wrote more than {MAX_OUTPUT} bytes to stdout")),
            (None, st) if !st.success() => Some(exit_text(st)),
            _ => None,
        };
        match failure {
            Some(text) => {
                let err = plugin_error(&text, &out.stdout, &out.stderr);
                // Go drops stderr when stdout holds the error; keep it visible.
                if !out.stdout.is_empty() && !out.stderr.is_empty() && self.stderr == StderrSink::Inherit {
                    let _ = io::stderr().write_all(&out.stderr);
                }
                Err(err)
            }
            None => {
                if !out.stderr.is_empty() && self.stderr == StderrSink::Inherit {
                    let _ = io::stderr().write_all(&out.stderr);
                }
                Ok(out.stdout)
            }
        }
    }
}

/// Go's `RawExec.pluginErr`: the plugin's error JSON from stdout, else its stderr, else how it ended.
fn plugin_error(how: &str, stdout: &[u8], stderr: &[u8]) -> Error {
    if stdout.is_empty() {
        let msg = if stderr.is_empty() {
            format!("netplugin failed with no error message: {how}")
        } else {
            format!("netplugin failed: {}", quote(&String::from_utf8_lossy(stderr)))
        };
        return Error::Cni(CniError::new(0, msg));
    }
    match serde_json::from_slice::<CniError>(stdout) {
        Ok(e) => Error::Cni(e),
        Err(perr) => Error::Cni(CniError::new(
            0,
            format!("netplugin failed but error parsing its diagnostic message {}: {perr}", quote(&String::from_utf8_lossy(stdout))),
        )),
    }
}

fn exit_text(st: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!("signal: {}", signal_name(sig)),
        _ => st.to_string(),
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGKILL => "killed".into(),
        libc::SIGTERM => "terminated".into(),
        libc::SIGSEGV => "segmentation fault".into(),
        libc::SIGABRT => "aborted".into(),
        libc::SIGINT => "interrupt".into(),
        libc::SIGPIPE => "broken pipe".into(),
        other => format!("signal {other}"),
    }
}

struct ChildOutput {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    killed: Option<Done>,
    overflow: bool,
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Reads what is available without blocking; returns false at end of file.
fn read_available(r: &mut impl Read, buf: &mut Vec<u8>, limit: usize, overflow: &mut bool) -> io::Result<bool> {
    let mut chunk = [0u8; 16384];
    loop {
        match r.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                if buf.len() + n > limit {
                    *overflow = true;
                    return Ok(false);
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
}

/// Runs the child to its end; on any failure of ours (a pipe or poll error) it is killed and
/// reaped, never left running or a zombie.
fn run_child(ctx: &Ctx, mut child: Child, input: &[u8]) -> io::Result<ChildOutput> {
    let r = drive_child(ctx, &mut child, input);
    if r.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    r
}

fn drive_child(ctx: &Ctx, child: &mut Child, input: &[u8]) -> io::Result<ChildOutput> {
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    for fd in [stdin.as_ref().map(|s| s.as_raw_fd()), stdout.as_ref().map(|s| s.as_raw_fd()), stderr.as_ref().map(|s| s.as_raw_fd())]
        .into_iter()
        .flatten()
    {
        set_nonblocking(fd)?;
    }
    let pidfd = pidfd_open(child.id());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut written = 0usize;
    let mut killed: Option<Done> = None;
    let mut overflow = false;
    if input.is_empty() {
        stdin = None;
    }

    loop {
        // exit check first when we cannot be woken by a pidfd
        let mut exited = match &pidfd {
            Some(_) => false,
            None => child.try_wait()?.is_some(),
        };
        if !exited {
            let mut fds: Vec<libc::pollfd> = Vec::with_capacity(5);
            let mut slots = [usize::MAX; 5]; // stdin, stdout, stderr, pidfd, cancel
            let mut add = |slot: usize, fd: RawFd, events: libc::c_short, fds: &mut Vec<libc::pollfd>| {
                slots[slot] = fds.len();
                fds.push(libc::pollfd { fd, events, revents: 0 });
            };
            if let Some(s) = &stdin {
                add(0, s.as_raw_fd(), libc::POLLOUT, &mut fds);
            }
            if let Some(s) = &stdout {
                add(1, s.as_raw_fd(), libc::POLLIN, &mut fds);
            }
            if let Some(s) = &stderr {
                add(2, s.as_raw_fd(), libc::POLLIN, &mut fds);
            }
            if let Some(p) = &pidfd {
                add(3, p.as_raw_fd(), libc::POLLIN, &mut fds);
            }
            if killed.is_none() {
                if let Some(tok) = ctx.cancel_token() {
                    add(4, tok.fd(), libc::POLLIN, &mut fds);
                }
            }
            let timeout_ms: i32 = match (killed, ctx.remaining(), &pidfd) {
                (None, Some(r), _) => r.as_millis().saturating_add(1).min(i32::MAX as u128) as i32,
                (_, _, None) => 5, // no pidfd: re-check the child's exit now and then
                _ => -1,
            };
            // SAFETY: fds is a valid array of pollfd of the given length.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let ready = |slot: usize| slots[slot] != usize::MAX && fds[slots[slot]].revents != 0;
            if ready(0) {
                let s = stdin.as_mut().expect("polled stdin");
                match s.write(&input[written..]) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => written = input.len(), // EPIPE: the plugin does not read stdin
                }
                if written >= input.len() {
                    stdin = None;
                }
            }
            if ready(1) && !read_available(stdout.as_mut().expect("polled stdout"), &mut out, MAX_OUTPUT, &mut overflow)? {
                stdout = None;
                if overflow && killed.is_none() {
                    kill(child);
                }
            }
            if ready(2) && !read_available(stderr.as_mut().expect("polled stderr"), &mut err, MAX_OUTPUT, &mut false)? {
                stderr = None;
            }
            if ready(3) {
                exited = true;
            }
            if killed.is_none() {
                if let Some(why) = ctx.done() {
                    kill(child);
                    killed = Some(why);
                }
            }
        }
        if exited {
            // What the plugin wrote before exiting is in the pipes; a grandchild that still holds
            // them open is not waited for.
            if let Some(s) = stdout.as_mut() {
                read_available(s, &mut out, MAX_OUTPUT, &mut overflow)?;
            }
            if let Some(s) = stderr.as_mut() {
                read_available(s, &mut err, MAX_OUTPUT, &mut false)?;
            }
            let status = child.wait()?;
            return Ok(ChildOutput { status, stdout: out, stderr: err, killed, overflow });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn sh(script: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("plugin");
        std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        (dir, p)
    }

    fn run(p: &Path, ctx: &Ctx, stdin: &[u8]) -> Result<Vec<u8>> {
        RawExec { stderr: StderrSink::Discard }.exec_plugin(ctx, p, stdin, &[("CNI_COMMAND".into(), "ADD".into())])
    }

    #[test]
    fn passes_stdin_env_and_returns_stdout() {
        let (_d, p) = sh("cat; printf ' %s' \"$CNI_COMMAND\"");
        let big = vec![b'x'; 300_000];
        let out = run(&p, &Ctx::background(), &big).unwrap();
        assert_eq!(out.len(), big.len() + 4);
        assert!(out.ends_with(b" ADD"));
    }

    #[test]
    fn error_json_on_stdout() {
        let (_d, p) = sh(r#"echo '{"code":7,"msg":"bad config","details":"x"}'; echo noise >&2; exit 1"#);
        let e = run(&p, &Ctx::background(), b"{}").unwrap_err();
        assert_eq!(e.code(), Some(7));
        assert_eq!(e.to_string(), "bad config; x");
    }

    #[test]
    fn stderr_when_stdout_empty() {
        let (_d, p) = sh("echo 'it broke' >&2; exit 3");
        assert_eq!(run(&p, &Ctx::background(), b"").unwrap_err().to_string(), r#"netplugin failed: "it broke\n""#);
        let (_d, p) = sh("exit 3");
        assert_eq!(run(&p, &Ctx::background(), b"").unwrap_err().to_string(), "netplugin failed with no error message: exit status 3");
        let (_d, p) = sh("echo 'not json'; exit 1");
        assert!(run(&p, &Ctx::background(), b"")
            .unwrap_err()
            .to_string()
            .starts_with(r#"netplugin failed but error parsing its diagnostic message "not json\n": "#));
    }

    #[test]
    fn deadline_kills_the_plugin() {
        let (_d, p) = sh("exec sleep 30");
        let start = Instant::now();
        let e = run(&p, &Ctx::with_timeout(Duration::from_millis(200)), b"").unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5), "took {:?}", start.elapsed());
        assert!(e.to_string().starts_with("netplugin failed with no error message"), "{e}");
        assert!(e.to_string().contains("deadline exceeded"), "{e}");
    }

    #[test]
    fn cancellation_kills_the_plugin() {
        let (_d, p) = sh("exec sleep 30");
        let tok = crate::CancelToken::new().unwrap();
        let t2 = tok.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            t2.cancel();
        });
        let start = Instant::now();
        let e = run(&p, &Ctx::background().cancellable(&tok), b"").unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(e.to_string().contains("canceled"), "{e}");
    }

    #[test]
    fn grandchild_holding_stdout_does_not_block() {
        let (_d, p) = sh("(sleep 5 &) ; echo '{\"cniVersion\":\"1.0.0\"}'");
        let start = Instant::now();
        let out = run(&p, &Ctx::background(), b"").unwrap();
        assert!(start.elapsed() < Duration::from_secs(3), "waited for the grandchild: {:?}", start.elapsed());
        assert_eq!(out, b"{\"cniVersion\":\"1.0.0\"}\n");
    }

    #[test]
    fn missing_executable() {
        let e = run(Path::new("/nonexistent/plugin"), &Ctx::background(), b"").unwrap_err();
        assert!(e.to_string().starts_with("netplugin failed with no error message: fork/exec /nonexistent/plugin"), "{e}");
    }

    #[test]
    fn text_file_busy_is_retried() {
        // Keep the file open for writing while spawning: exec fails with ETXTBSY until it closes.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("plugin");
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(b"#!/bin/sh\necho ok\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(f);
        });
        let start = Instant::now();
        let out = run(&p, &Ctx::background(), b"").unwrap();
        closer.join().unwrap();
        assert_eq!(out, b"ok\n");
        assert!(start.elapsed() >= Duration::from_millis(900), "should have waited a retry interval");
    }
}

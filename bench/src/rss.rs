//! Per-process peak RSS.
//!
//! `wait4`'s `ru_maxrss` is not one process's figure: it is the largest of the child and every
//! descendant it reaped, and it also counts the address space the child had *before* its exec —
//! the spawning process's, which the child shares (vfork) or copies (fork) until exec. So for a
//! process started by this benchmark it never reads below the benchmark's own peak, and for Go's
//! bridge it is the larger of bridge and its host-local child.
//!
//! [`traced`] instead runs a command under ptrace, follows every process and thread it starts,
//! and stops each one at its exit (`PTRACE_EVENT_EXIT`, before its memory is released), where it
//! reads `/proc/<tid>/status`: `VmHWM` there is the peak RSS of that process's own address space
//! since its exec. It also keeps `smaps_rollup` (and, on request, the full `smaps`) from that
//! moment, to see where the memory is.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// One process of a traced tree, as it was when it exited.
#[derive(Clone, Debug)]
pub struct Proc {
    /// `comm`: the name it was executed under (`bridge`, `host-local`, …).
    pub name: String,
    pub pid: i32,
    /// Peak RSS of its own address space since its exec (VmHWM), KiB.
    pub hwm_kib: u64,
    /// RSS at exit by kind (RssAnon, RssFile, RssShmem), KiB.
    pub anon_kib: u64,
    pub file_kib: u64,
    /// `/proc/<pid>/smaps_rollup` at exit.
    pub rollup: String,
}

pub struct Traced {
    pub ok: bool,
    /// The command's own pid (its process in `procs`).
    pub root: i32,
    pub stdout: Vec<u8>,
    /// Every process of the tree in the order they exited.
    pub procs: Vec<Proc>,
}

fn status_field(status: &str, key: &str) -> Option<String> {
    status.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':'))).map(|v| v.trim().to_string())
}

fn kib(status: &str, key: &str) -> u64 {
    status_field(status, key).and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok())).unwrap_or(0)
}

fn ptrace(req: libc::c_uint, pid: libc::pid_t, data: usize) -> libc::c_long {
    // SAFETY: requests on our own tracees with integer arguments only; no memory is passed.
    unsafe { libc::ptrace(req, pid, std::ptr::null_mut::<libc::c_void>(), data as *mut libc::c_void) }
}

/// Runs `cmd` with `input` on stdin under ptrace and returns its exit status, stdout and every
/// process of its tree with its own peak RSS. With `smaps_dir`, each process's
/// `/proc/<pid>/smaps` at exit is copied there as `<label>-<name>-<pid>.smaps`.
pub fn traced(cmd: &mut Command, input: &str, smaps_dir: Option<(&Path, &str)>) -> Traced {
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    // SAFETY: PTRACE_TRACEME is async-signal-safe (a raw syscall) and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            if libc::ptrace(libc::PTRACE_TRACEME, 0, std::ptr::null_mut::<libc::c_void>(), std::ptr::null_mut::<libc::c_void>()) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn traced");
    let root = child.id() as libc::pid_t;
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    // the pipes must not block the tracee while this thread is in the ptrace loop
    let writer = {
        let input = input.to_string();
        std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        })
    };
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let mut seen: std::collections::HashSet<libc::pid_t> = std::collections::HashSet::new();
    let mut by_tgid: HashMap<i32, Proc> = HashMap::new();
    let mut order: Vec<i32> = Vec::new();
    let mut root_status = None;
    let mut optioned = false;
    loop {
        let mut st = 0;
        // SAFETY: waits for our child or any of its traced descendants.
        let tid = unsafe { libc::waitpid(-1, &mut st, libc::__WALL) };
        if tid < 0 {
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => break,
                _ => panic!("waitpid: {}", std::io::Error::last_os_error()),
            }
        }
        if libc::WIFEXITED(st) || libc::WIFSIGNALED(st) {
            if tid == root {
                root_status = Some(st);
            }
            continue;
        }
        if !libc::WIFSTOPPED(st) {
            continue;
        }
        let sig = libc::WSTOPSIG(st);
        let event = (st >> 16) & 0xffff;
        let first = seen.insert(tid);
        let mut inject = 0;
        if tid == root && !optioned {
            // the stop after exec that PTRACE_TRACEME asked for; follow everything from here
            optioned = true;
            coverage::arm(tid);
            let opts = libc::PTRACE_O_TRACEEXIT
                | libc::PTRACE_O_TRACECLONE
                | libc::PTRACE_O_TRACEFORK
                | libc::PTRACE_O_TRACEVFORK
                | libc::PTRACE_O_TRACEEXEC
                | libc::PTRACE_O_EXITKILL;
            assert_eq!(ptrace(libc::PTRACE_SETOPTIONS, tid, opts as usize), 0, "PTRACE_SETOPTIONS");
        } else if sig == libc::SIGTRAP && event == libc::PTRACE_EVENT_EXIT {
            let status = std::fs::read_to_string(format!("/proc/{tid}/status")).unwrap_or_default();
            let tgid: i32 = status_field(&status, "Tgid").and_then(|v| v.parse().ok()).unwrap_or(tid);
            let p = Proc {
                name: status_field(&status, "Name").unwrap_or_default(),
                pid: tgid,
                hwm_kib: kib(&status, "VmHWM"),
                anon_kib: kib(&status, "RssAnon"),
                file_kib: kib(&status, "RssFile") + kib(&status, "RssShmem"),
                rollup: std::fs::read_to_string(format!("/proc/{tid}/smaps_rollup")).unwrap_or_default(),
            };
            if let Some((dir, label)) = smaps_dir {
                if let Ok(s) = std::fs::read_to_string(format!("/proc/{tid}/smaps")) {
                    let _ = std::fs::write(dir.join(format!("{label}-{}-{}.pages", p.name, tgid)), resident_pages(tid, &s));
                    let _ = std::fs::write(dir.join(format!("{label}-{}-{}.smaps", p.name, tgid)), s);
                }
            }
            // a process's threads share its address space: keep the latest (largest) reading
            if !by_tgid.contains_key(&tgid) {
                order.push(tgid);
            }
            if by_tgid.get(&tgid).is_none_or(|q| q.hwm_kib <= p.hwm_kib) {
                by_tgid.insert(tgid, p);
            }
        } else if sig == libc::SIGTRAP && event == libc::PTRACE_EVENT_EXEC {
            coverage::arm(tid);
        } else if sig == libc::SIGTRAP && event != 0 {
            // fork, vfork or clone event: nothing to do
        } else if sig == libc::SIGTRAP && coverage::hit(tid) {
            // a coverage breakpoint, now removed
        } else if sig == libc::SIGSTOP && first {
            // a new tracee's initial stop
        } else {
            inject = sig as usize;
        }
        ptrace(libc::PTRACE_CONT, tid, inject);
    }
    let _ = writer.join();
    let stdout = reader.join().unwrap_or_default();
    coverage::end_run();
    drop(child);
    let st = root_status.expect("traced command's exit");
    Traced {
        ok: libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        root,
        stdout,
        procs: order.iter().filter_map(|t| by_tgid.remove(t)).collect(),
    }
}

/// The resident pages of every mapping of `tid` (from `smaps`' headers and
/// `/proc/<tid>/pagemap`'s present bits), one line per mapping: its header, then the file
/// offsets (hex, of mappings with a file) or addresses of its resident pages.
fn resident_pages(tid: i32, smaps: &str) -> String {
    use std::os::unix::fs::FileExt;
    let Ok(pagemap) = std::fs::File::open(format!("/proc/{tid}/pagemap")) else { return String::new() };
    let mut out = String::new();
    for header in smaps.lines().filter(|l| l.split_whitespace().next().is_some_and(|r| r.contains('-') && !r.ends_with(':'))) {
        let f: Vec<&str> = header.split_whitespace().collect();
        let Some((lo, hi)) = f[0].split_once('-') else { continue };
        let (Ok(lo), Ok(hi), Ok(off)) = (u64::from_str_radix(lo, 16), u64::from_str_radix(hi, 16), u64::from_str_radix(f[2], 16)) else {
            continue;
        };
        let n = ((hi - lo) / 4096) as usize;
        let mut buf = vec![0u8; n * 8];
        if pagemap.read_exact_at(&mut buf, lo / 4096 * 8).is_err() {
            continue;
        }
        out.push_str(header);
        for (i, e) in buf.chunks_exact(8).enumerate() {
            if u64::from_le_bytes(e.try_into().expect("8 bytes")) >> 63 == 1 {
                let at = if f.len() > 5 && !f[5].starts_with('[') { off + i as u64 * 4096 } else { lo + i as u64 * 4096 };
                out.push_str(&format!(" {at:x}"));
            }
        }
        out.push('\n');
    }
    out
}

/// Function coverage of rcni's own binary, for `--layout`: every function's first instruction
/// gets a one-shot breakpoint (int3) when a traced process execs the binary; a hit records the
/// function, restores the byte and resumes. Native and exact (valgrind would run a different
/// path: it hides /proc/self/exe, so host-local would not run in-process, and it reports
/// other CPU features, so libc would pick other string functions).
pub mod coverage {
    use std::collections::{HashMap, HashSet};
    use std::os::unix::fs::FileExt;
    use std::path::PathBuf;
    use std::sync::Mutex;

    struct State {
        exe: PathBuf,
        pie: bool,
        /// link-time address -> original first byte
        funcs: HashMap<u64, u8>,
        /// load base per traced process
        bases: HashMap<i32, u64>,
        hits: HashSet<u64>,
        /// the functions each traced command hit, in order
        runs: Vec<HashSet<u64>>,
    }

    static STATE: Mutex<Option<State>> = Mutex::new(None);

    /// Starts recording coverage of `exe`'s functions at `addrs` (link-time addresses).
    pub fn start(exe: PathBuf, addrs: impl IntoIterator<Item = u64>) {
        let bytes = std::fs::read(&exe).expect("read binary");
        let pie = bytes.get(16) == Some(&3); // e_type ET_DYN
        let funcs = addrs.into_iter().map(|a| (a, 0)).collect();
        *STATE.lock().expect("coverage") = Some(State { exe, pie, funcs, bases: HashMap::new(), hits: HashSet::new(), runs: Vec::new() });
    }

    /// Ends a traced command: its hits become one run.
    pub(super) fn end_run() {
        if let Some(s) = STATE.lock().expect("coverage").as_mut() {
            let hits = std::mem::take(&mut s.hits);
            s.runs.push(hits);
            s.bases.clear();
        }
    }

    /// Stops recording; returns the functions each traced command hit (link-time addresses).
    pub fn finish() -> Vec<HashSet<u64>> {
        STATE.lock().expect("coverage").take().map(|s| s.runs).unwrap_or_default()
    }

    fn base(pid: i32, st: &State) -> Option<u64> {
        if !st.pie {
            return Some(0);
        }
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
        let exe = st.exe.to_str()?;
        maps.lines()
            .find(|l| l.ends_with(exe) && l.split_whitespace().nth(2) == Some("00000000"))
            .and_then(|l| u64::from_str_radix(l.split('-').next()?, 16).ok())
    }

    /// Puts the breakpoints into `pid` if it has just exec'd the binary.
    pub(super) fn arm(pid: i32) {
        let mut g = STATE.lock().expect("coverage");
        let Some(st) = g.as_mut() else { return };
        let same = std::fs::canonicalize(format!("/proc/{pid}/exe")).is_ok_and(|e| e == st.exe);
        if !same {
            return;
        }
        let Some(base) = base(pid, st) else { return };
        let mem = std::fs::OpenOptions::new().read(true).write(true).open(format!("/proc/{pid}/mem")).expect("/proc/pid/mem");
        for (addr, orig) in st.funcs.iter_mut() {
            if st.hits.contains(addr) {
                continue;
            }
            let mut b = [0u8];
            if mem.read_exact_at(&mut b, base + addr).is_ok() && mem.write_all_at(&[0xcc], base + addr).is_ok() {
                *orig = b[0];
            }
        }
        st.bases.insert(pid, base);
    }

    /// Handles a SIGTRAP of `pid`: true if it was one of the breakpoints (then removed).
    pub(super) fn hit(pid: i32) -> bool {
        let mut g = STATE.lock().expect("coverage");
        let Some(st) = g.as_mut() else { return false };
        // SAFETY: zeroed registers are a valid out-parameter for PTRACE_GETREGS.
        let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
        // SAFETY: reads the registers of our stopped tracee into `regs`.
        if unsafe { libc::ptrace(libc::PTRACE_GETREGS, pid, 0, &mut regs as *mut _ as *mut libc::c_void) } < 0 {
            return false;
        }
        // a forked child shares its parent's layout and breakpoints
        let base = match st.bases.get(&pid) {
            Some(b) => *b,
            None => match base(pid, st) {
                Some(b) => {
                    st.bases.insert(pid, b);
                    b
                }
                None => return false,
            },
        };
        let at = regs.rip.wrapping_sub(1);
        let Some(&orig) = st.funcs.get(&at.wrapping_sub(base)) else { return false };
        let Ok(mem) = std::fs::OpenOptions::new().write(true).open(format!("/proc/{pid}/mem")) else { return false };
        if mem.write_all_at(&[orig], at).is_err() {
            return false;
        }
        regs.rip = at;
        // SAFETY: writes back the registers read above with rip moved onto the restored byte.
        unsafe { libc::ptrace(libc::PTRACE_SETREGS, pid, 0, &regs as *const _ as *mut libc::c_void) };
        st.hits.insert(at - base);
        true
    }
}

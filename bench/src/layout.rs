//! `--layout FILE`: the code layout of rcni's binary, written as a linker script
//! (crates/rcni/layout.ld, which crates/rcni/build.rs passes to the linker).
//!
//! A plugin process's RSS is mostly rcni's text, and the kernel maps it 64 KiB around every
//! page fault, so what counts is how many 64 KiB windows the code a plugin runs is spread
//! over. This runs every plugin step of the per-process RSS measurement with function coverage
//! (`rss::coverage`) and puts the functions that ran at the start of `.text`: those most steps run
//! first, then each group of functions that ran in the same steps together, so a plugin's own
//! code is in one place and each plugin touches ~1 MB of text instead of most of it.
//!
//! The script names input sections by patterns that survive rebuilds: symbols are v0-mangled
//! (.cargo/config.toml), so every instantiation of a generic function has its own name, and the
//! parts that change between builds of the same source are left to `*`: crate disambiguators
//! (`Cs…_`, they follow features and dependencies), LLVM's local suffixes, and the crate that
//! instantiated a shared generic; libc's functions go by archive member. A function renamed
//! since is merely not moved (so the file only needs regenerating when the RSS readings drift
//! up); the build never depends on it matching.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// Text symbols of `exe`: link-time address -> names.
fn functions(exe: &Path) -> HashMap<u64, Vec<String>> {
    let out = Command::new("nm").args(["--defined-only", "-S"]).arg(exe).output().expect("nm (binutils)");
    let mut f: HashMap<u64, Vec<String>> = HashMap::new();
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let p: Vec<&str> = l.split_whitespace().collect();
        if p.len() != 4 || !matches!(p[2], "t" | "T" | "w" | "W") {
            continue;
        }
        let (Ok(a), Ok(size)) = (u64::from_str_radix(p[0], 16), u64::from_str_radix(p[1], 16)) else { continue };
        if size > 0 {
            f.entry(a).or_default().push(p[3].to_string());
        }
    }
    f
}

/// libc.a's members by the functions they define (static glibc's objects are not split into
/// one section per function, so they move whole).
fn libc_members() -> HashMap<String, String> {
    let mut m = HashMap::new();
    let Ok(out) = Command::new("cc").arg("-print-file-name=libc.a").output() else { return m };
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let Ok(out) = Command::new("nm").args(["-A", "--defined-only"]).arg(&path).output() else { return m };
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        // <archive>:<member>:<addr> <type> <name>
        let p: Vec<&str> = l.split_whitespace().collect();
        if p.len() == 3 && matches!(p[1], "T" | "t" | "W" | "w" | "i") {
            if let Some(member) = p[0].rsplit(':').nth(1) {
                m.entry(p[2].to_string()).or_insert_with(|| member.to_string());
            }
        }
    }
    m
}

/// The input-section pattern that finds `name`'s code in any build of the same source.
fn pattern(name: &str, libc: &HashMap<String, String>) -> Option<String> {
    if let Some(m) = libc.get(name) {
        // every CPU variant of a string function (strlen-avx2.o, strlen-evex.o, …): another
        // machine may pick another one
        let cut = ["-sse", "-ssse", "-avx", "-evex", "-vec", "-erms"].iter().filter_map(|v| m.find(v)).min();
        return Some(match cut {
            Some(i) => format!("*libc.a:{}-*(.text .text.*)", &m[..i]),
            None => format!("*libc.a:{m}(.text .text.*)"),
        });
    }
    if name.starts_with("_ZN") {
        // legacy mangling: …17h<16 hex digits>E, maybe .llvm.<n> after LTO
        // (a build without v0: all instantiations of a generic function share this name)
        let at = name.rfind("17h")?;
        return Some(sections(&format!("{}17h*", &name[..at])));
    }
    if name.starts_with("_R") {
        // v0 mangling (rcni's crates, see .cargo/config.toml, and the standard library): crate
        // disambiguators Cs<base62>_ change with every feature or dependency change, LLVM's
        // local suffixes (.llvm.<n>, .<n>) from build to build, and which crate instantiates a
        // shared generic (the trailing crate root) with what else is linked: all left to `*`
        let base = name.split('.').next().unwrap_or(name);
        let mut out = String::new();
        let mut rest = base;
        let mut last_crate = None;
        while let Some(i) = rest.find("Cs") {
            let tail = &rest[i + 2..];
            let n = tail.find('_').filter(|&n| n > 0 && tail[..n].bytes().all(|b| b.is_ascii_alphanumeric()));
            match n {
                Some(n) => {
                    out.push_str(&rest[..i]);
                    last_crate = Some(out.len());
                    out.push_str("Cs*_");
                    rest = &tail[n + 1..];
                }
                None => {
                    out.push_str(&rest[..i + 2]);
                    rest = tail;
                }
            }
        }
        // the instantiating crate: a crate root (<len><name>) that ends the symbol
        if let Some(at) = last_crate {
            let root = rest.trim_start_matches(|c: char| c.is_ascii_digit());
            let len: Option<usize> = rest[..rest.len() - root.len()].parse().ok();
            if len == Some(root.len()) && !root.is_empty() && out.len() == at + 4 {
                out.truncate(at);
                rest = "";
            }
        }
        out.push_str(rest);
        // …or a back-reference to one (B<base62>_) that ends the symbol
        if let Some(b) = out.rfind('B') {
            let tail = &out[b + 1..];
            if tail.ends_with('_') && tail[..tail.len() - 1].bytes().all(|c| c.is_ascii_alphanumeric()) && tail.len() <= 4 {
                out.truncate(b);
            }
        }
        return Some(sections(&format!("{out}*")));
    }
    if name == "_start" {
        // the C runtime's entry (rcrt1.o for a static PIE)
        return Some("*crt1.o(.text .text.*)".into());
    }
    Some(sections(name))
}

/// A function's section, wherever LLVM put it: `.text.<symbol>`, or `.text.unlikely.<symbol>`
/// for a function it considers cold (`#[cold]`, such as the standard library's slow paths).
fn sections(symbol: &str) -> String {
    format!("*(.text.{symbol} .text.unlikely.{symbol})")
}

/// Runs `steps` with coverage of `dir/rcni` and writes the layout to `out`.
pub fn write(dir: &Path, out: &Path, steps: impl FnOnce(&Path)) {
    let exe = std::fs::canonicalize(dir.join("rcni")).expect("rcni binary");
    let funcs = functions(&exe);
    crate::rss::coverage::start(exe.clone(), funcs.keys().copied());
    steps(dir);
    let runs = crate::rss::coverage::finish();
    // which runs each function ran in, as a bit set
    let mut runs_of: HashMap<u64, u128> = HashMap::new();
    for (i, r) in runs.iter().enumerate() {
        for a in r {
            *runs_of.entry(*a).or_default() |= 1 << i.min(127);
        }
    }
    // most-shared first; then functions that ran in exactly the same runs together (one
    // plugin's own code in one place, not spread between another's); then the binary's order
    let mut hot: Vec<u64> = runs_of.keys().copied().collect();
    hot.sort_by_key(|a| (std::cmp::Reverse(runs_of[a].count_ones()), runs_of[a], *a));
    let libc = libc_members();
    let mut seen = HashSet::new();
    let mut text = String::new();
    for a in &hot {
        for name in &funcs[a] {
            if let Some(p) = pattern(name, &libc) {
                if seen.insert(p.clone()) {
                    let _ = writeln!(text, "    {p}");
                }
            }
        }
    }
    let script = format!(
        "/* rcni's code layout: the functions rcni's plugins run, most shared first, at the start of\n   \
         .text (see bench/src/layout.rs). Generated by `bench/run --layout crates/rcni/layout.ld`\n   \
         from {} traced plugin runs, {} of {} functions; regenerate when bench/run's per-process RSS\n   \
         drifts up. Only the order of sections changes, never what is linked. */\n\
         SECTIONS {{\n  .text : {{\n{text}    __rcni_hot_end = .;\n    *(.text .text.*)\n  }}\n}} INSERT BEFORE .init;\n",
        runs.len(),
        hot.len(),
        funcs.len()
    );
    std::fs::write(out, script).expect("write layout");
    // how well the binary that ran follows its own layout: functions that ran after the hot part
    if let Some(hot_end) = symbol(&exe, "__rcni_hot_end") {
        let outside: Vec<&String> = hot.iter().filter(|a| **a >= hot_end).map(|a| &funcs[a][0]).collect();
        println!("{} of the functions that ran are outside this binary's hot part of .text", outside.len());
        if std::env::var_os("LAYOUT_VERBOSE").is_some() {
            for n in outside {
                println!("  {n}");
            }
        }
    }
    println!("{}: {} patterns for {} functions hit in {} runs", out.display(), seen.len(), hot.len(), runs.len());
}

/// The address of symbol `name` in `exe`.
fn symbol(exe: &Path, name: &str) -> Option<u64> {
    let out = Command::new("nm").arg(exe).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let p: Vec<&str> = l.split_whitespace().collect();
        (p.len() == 3 && p[2] == name).then(|| u64::from_str_radix(p[0], 16).ok())?
    })
}

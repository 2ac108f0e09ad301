//! An in-memory nftables that follows the kernel's rules, for testing layouts without root.
//!
//! What it checks, as `nf_tables` does:
//! - a batch applies whole or not at all; the error names the operation and carries the errno
//!   the kernel would give;
//! - ENOENT for a missing table, chain, set, element or rule handle (also a rule's lookup of a
//!   missing set, a jump to a missing chain);
//! - EEXIST for an exclusive create of a present chain or element, for a set re-added with other
//!   properties, for an element whose data or interval clashes with a present one, for a base
//!   chain re-added with another hook;
//! - EBUSY for deleting a chain another chain's rule jumps to (its own rules go with it), or a
//!   set a rule uses;
//! - EINVAL for keys or data of the wrong length, data on a plain set, none on a map, a map
//!   lookup on a set, an interval element in a plain set; ERANGE for names over 255 bytes;
//! - EOPNOTSUPP for NAT or masquerade reachable from a base chain of the wrong type or hook,
//!   a jump to a base chain, nat chains in the bridge family (checked at the end of a batch,
//!   over the chains each base chain reaches, as the kernel validates its chain graph);
//! - handles per table, one counter for chains, sets and rules, which an aborted batch also
//!   advances, as the kernel's: a failed batch is processed to its end before it is aborted, a
//!   rule takes its handle before its expressions are checked, a batch refused by the chain
//!   validation is replayed once (taking handles again), and no handle is reused; comments cut as rcni's encoding cuts them; re-adding an identical element keeps
//!   its first comment.
//!
//! Reads of what does not exist return nothing, as the kernel's dumps of a missing table do.

use super::print::{self, be, SetTypes};
use super::{comment_userdata, userdata_comment, At, BaseChain, Batch, Client, Element, ElementInfo, Expr, Family, HookPoint, Op};
use super::{RuleInfo, SetSpec};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Clone)]
struct Rule {
    handle: u64,
    exprs: Vec<Expr>,
    comment: Option<String>,
}

#[derive(Debug, Clone)]
struct Chain {
    name: String,
    base: Option<BaseChain>,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Stored {
    key_end: Option<Vec<u8>>,
    data: Option<Vec<u8>>,
    comment: Option<String>,
}

#[derive(Debug, Clone)]
struct Set {
    spec: SetSpec,
    elements: BTreeMap<Vec<u8>, Stored>,
}

#[derive(Debug, Clone, Default)]
struct Table {
    chains: Vec<Chain>,
    sets: Vec<Set>,
    handles: u64,
}

impl Table {
    fn handle(&mut self) -> u64 {
        self.handles += 1;
        self.handles
    }

    fn chain(&self, name: &str) -> Option<&Chain> {
        self.chains.iter().find(|c| c.name == name)
    }

    fn chain_mut(&mut self, name: &str) -> Option<&mut Chain> {
        self.chains.iter_mut().find(|c| c.name == name)
    }

    fn set(&self, name: &str) -> Option<&Set> {
        self.sets.iter().find(|s| s.spec.name == name)
    }

    fn set_mut(&mut self, name: &str) -> Option<&mut Set> {
        self.sets.iter_mut().find(|s| s.spec.name == name)
    }
}

type State = BTreeMap<(Family, String), Table>;

/// A commit hook: runs once, at the start of the next commit (to play a concurrent writer).
type Hook = Box<dyn FnOnce(&mut FakeNft)>;

/// The in-memory nftables. See the module.
#[derive(Default)]
pub struct FakeNft {
    state: State,
    log: Vec<String>,
    before_next: Option<Hook>,
}

impl std::fmt::Debug for FakeNft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.ruleset())
    }
}

fn fail(op: &Op, errno: i32, why: impl Into<String>) -> Error {
    Error::Os { op: op.describe(), errno, detail: Some(why.into()) }
}

/// What rcni's encoding leaves of a comment (cut to nft's limit).
fn stored_comment(c: &Option<String>) -> Option<String> {
    c.as_deref().and_then(|c| userdata_comment(&comment_userdata(c)))
}

fn check_name(op: &Op, name: &str) -> Result<()> {
    if name.len() > 255 {
        return Err(fail(op, libc::ERANGE, format!("name of {} bytes", name.len())));
    }
    Ok(())
}

/// `[start, end)` of an interval element (a single key: `[k, k+1)`).
fn range(key: &[u8], end: Option<&Vec<u8>>) -> (u128, u128) {
    let s = be(key);
    (s, end.map_or(s.wrapping_add(1), |e| be(e)))
}

impl FakeNft {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` at the start of the next commit, before that commit applies (e.g. another
    /// process's ADD getting in between two batches of a layout).
    pub fn before_next_commit(&mut self, f: impl FnOnce(&mut FakeNft) + 'static) {
        self.before_next = Some(Box::new(f));
    }

    /// Every batch committed so far, in nft syntax (failed ones are not kept).
    pub fn log(&self) -> &[String] {
        &self.log
    }

    /// Forgets the log.
    pub fn clear_log(&mut self) {
        self.log.clear();
    }

    fn set_types(&self) -> impl Fn(Family, &str, &str) -> Option<SetSpec> + '_ {
        |f, t, s| self.state.get(&(f, t.to_string())).and_then(|tb| tb.set(s)).map(|s| s.spec.clone())
    }

    /// A batch in nft syntax, with element keys shown by the types of the sets they go to.
    pub fn render(&self, batch: &Batch) -> String {
        let types = self.set_types();
        let t: SetTypes = &types;
        print::batch(batch, t)
    }

    /// Whether a table exists.
    pub fn has_table(&self, family: Family, table: &str) -> bool {
        self.state.contains_key(&(family, table.to_string()))
    }

    /// The chains of a table, in creation order.
    pub fn chains(&self, family: Family, table: &str) -> Vec<String> {
        self.state.get(&(family, table.to_string())).map(|t| t.chains.iter().map(|c| c.name.clone()).collect()).unwrap_or_default()
    }

    /// The rules of a chain in nft syntax, with their comments.
    pub fn rule_texts(&self, family: Family, table: &str, chain: &str) -> Vec<String> {
        let Some(c) = self.state.get(&(family, table.to_string())).and_then(|t| t.chain(chain)) else { return Vec::new() };
        c.rules.iter().map(rule_line).collect()
    }

    /// The elements of a set in nft syntax (key, `: data`, comment), in key order.
    pub fn element_texts(&self, family: Family, table: &str, set: &str) -> Vec<String> {
        let Some(s) = self.state.get(&(family, table.to_string())).and_then(|t| t.set(set)) else { return Vec::new() };
        s.elements.iter().map(|(k, v)| print::element(Some(&s.spec), &as_element(k, v))).collect()
    }

    /// Everything, as `nft list ruleset` shows it (tables by family and name, sets before
    /// chains, rules with their handles).
    pub fn ruleset(&self) -> String {
        let mut out = String::new();
        for ((family, name), t) in &self.state {
            let _ = writeln!(out, "table {} {name} {{", family.name());
            for s in &t.sets {
                let what = if s.spec.data.is_some() { "map" } else { "set" };
                let _ = writeln!(out, "\t{what} {} {{", s.spec.name);
                let _ = writeln!(out, "\t\t{}", print::set_body(&s.spec));
                for (k, v) in &s.elements {
                    let _ = writeln!(out, "\t\telement {}", print::element(Some(&s.spec), &as_element(k, v)));
                }
                let _ = writeln!(out, "\t}}");
            }
            for c in &t.chains {
                let _ = writeln!(out, "\tchain {} {{", c.name);
                if let Some(b) = &c.base {
                    let _ = writeln!(out, "\t\t{}", print::base_chain(b));
                }
                for r in &c.rules {
                    let _ = writeln!(out, "\t\t{} # handle {}", rule_line(r), r.handle);
                }
                let _ = writeln!(out, "\t}}");
            }
            let _ = writeln!(out, "}}");
        }
        out
    }

    fn apply(state: &mut State, op: &Op) -> Result<()> {
        let get = |state: &mut State, at: &At| -> Result<()> {
            if state.contains_key(&(at.family, at.table.clone())) {
                Ok(())
            } else {
                Err(fail(op, libc::ENOENT, "no such table"))
            }
        };
        match op {
            Op::AddTable { at } => {
                check_name(op, &at.table)?;
                state.entry((at.family, at.table.clone())).or_default();
            }
            Op::AddChain { at, chain, base, exclusive } => {
                get(state, at)?;
                check_name(op, chain)?;
                let t = state.get_mut(&(at.family, at.table.clone())).expect("checked");
                if let Some(b) = base {
                    if !matches!(b.kind, "filter" | "nat" | "route") {
                        return Err(fail(op, libc::ENOENT, format!("no chain type {:?}", b.kind)));
                    }
                    if b.kind == "nat" && at.family == Family::Bridge {
                        return Err(fail(op, libc::ENOENT, "no chain type nat in the bridge family"));
                    }
                    if b.kind == "nat" && b.hook == HookPoint::Forward {
                        return Err(fail(op, libc::EOPNOTSUPP, "no nat chains on the forward hook"));
                    }
                }
                match t.chain(chain) {
                    Some(_) if *exclusive => return Err(fail(op, libc::EEXIST, "chain exists")),
                    Some(c)
                        if base.is_some()
                            && c.base.as_ref().map(|b| (b.kind, b.hook, b.priority))
                                != base.as_ref().map(|b| (b.kind, b.hook, b.priority)) =>
                    {
                        return Err(fail(op, libc::EEXIST, "chain exists with another hook"))
                    }
                    Some(_) => {}
                    None => {
                        t.handle();
                        t.chains.push(Chain { name: chain.clone(), base: base.clone(), rules: Vec::new() });
                    }
                }
            }
            Op::DeleteChain { at, chain } => {
                get(state, at)?;
                let t = state.get_mut(&(at.family, at.table.clone())).expect("checked");
                t.chain(chain).ok_or_else(|| fail(op, libc::ENOENT, "no such chain"))?;
                // the chain's own rules go with it; a jump to it from elsewhere keeps it
                let others = t.chains.iter().filter(|c| &c.name != chain);
                if others.flat_map(|c| &c.rules).flat_map(|r| &r.exprs).any(|e| e.target() == Some(chain)) {
                    return Err(fail(op, libc::EBUSY, "chain is jumped to"));
                }
                t.chains.retain(|c| &c.name != chain);
            }
            Op::FlushChain { at, chain } => {
                get(state, at)?;
                let t = state.get_mut(&(at.family, at.table.clone())).expect("checked");
                t.chain_mut(chain).ok_or_else(|| fail(op, libc::ENOENT, "no such chain"))?.rules.clear();
            }
            Op::AddSet { at, set } => {
                get(state, at)?;
                check_name(op, &set.name)?;
                let t = state.get_mut(&(at.family, at.table.clone())).expect("checked");
                if set.key_len == 0 || set.key_len > 64 || set.data.is_some_and(|(_, l)| l == 0 || l > 64) {
                    return Err(fail(op, libc::EINVAL, "key or data length out of range"));
                }
                if !set.concat.is_empty() && set.concat.iter().map(|l| l.div_ceil(4) * 4).sum::<u32>() != set.key_len {
                    return Err(fail(op, libc::EINVAL, "concatenated fields do not add up to the key length"));
                }
                match t.set(&set.name) {
                    Some(s) if s.spec != *set => return Err(fail(op, libc::EEXIST, "set exists with other properties")),
                    Some(_) => {}
                    None => {
                        t.handle();
                        t.sets.push(Set { spec: set.clone(), elements: BTreeMap::new() });
                    }
                }
            }
            Op::DeleteSet { at, set } => {
                get(state, at)?;
                let t = state.get_mut(&(at.family, at.table.clone())).expect("checked");
                t.set(set).ok_or_else(|| fail(op, libc::ENOENT, "no such set"))?;
                if t.chains.iter().flat_map(|c| &c.rules).flat_map(|r| &r.exprs).any(|e| e.set() == Some(set)) {
                    return Err(fail(op, libc::EBUSY, "set is used by a rule"));
                }
                t.sets.retain(|s| &s.spec.name != set);
            }
            Op::AddElements { at, set, elements, exclusive } => {
                get(state, at)?;
                let t = state.get_mut(&(at.family, at.table.clone())).expect("checked");
                let s = t.set_mut(set).ok_or_else(|| fail(op, libc::ENOENT, "no such set"))?;
                for e in elements {
                    Self::check_element(op, &s.spec, e)?;
                    if let Some(have) = s.elements.get(&e.key) {
                        if have.data != e.data || have.key_end != e.key_end {
                            return Err(fail(op, libc::EEXIST, "element clashes with a present one"));
                        }
                        if *exclusive {
                            return Err(fail(op, libc::EEXIST, "element exists"));
                        }
                        continue;
                    }
                    if s.spec.interval {
                        let (a, b) = range(&e.key, e.key_end.as_ref());
                        if s.elements.iter().any(|(k, v)| {
                            let (c, d) = range(k, v.key_end.as_ref());
                            a < d && c < b
                        }) {
                            return Err(fail(op, libc::EEXIST, "interval overlaps a present one"));
                        }
                    }
                    s.elements.insert(
                        e.key.clone(),
                        Stored { key_end: e.key_end.clone(), data: e.data.clone(), comment: stored_comment(&e.comment) },
                    );
                }
            }
            Op::DeleteElements { at, set, elements } => {
                get(state, at)?;
                let t = state.get_mut(&(at.family, at.table.clone())).expect("checked");
                let s = t.set_mut(set).ok_or_else(|| fail(op, libc::ENOENT, "no such set"))?;
                for e in elements {
                    if e.key.len() != s.spec.key_len as usize {
                        return Err(fail(op, libc::EINVAL, "key of the wrong length"));
                    }
                    if s.elements.remove(&e.key).is_none() {
                        return Err(fail(op, libc::ENOENT, "no such element"));
                    }
                }
            }
            Op::AddRule { at, chain, exprs, comment } => {
                get(state, at)?;
                let t = state.get_mut(&(at.family, at.table.clone())).expect("checked");
                t.chain(chain).ok_or_else(|| fail(op, libc::ENOENT, "no such chain"))?;
                // the kernel takes the handle before it looks at the expressions
                let handle = t.handle();
                for e in exprs {
                    match e {
                        Expr::Lookup { set, .. } => {
                            t.set(set).ok_or_else(|| fail(op, libc::ENOENT, format!("no set {set}")))?;
                        }
                        Expr::MapLookup { set, .. } => {
                            let s = t.set(set).ok_or_else(|| fail(op, libc::ENOENT, format!("no set {set}")))?;
                            if s.spec.data.is_none() {
                                return Err(fail(op, libc::EINVAL, format!("{set} is not a map")));
                            }
                        }
                        _ => {}
                    }
                    if let Some(target) = e.target() {
                        let c = t.chain(target).ok_or_else(|| fail(op, libc::ENOENT, format!("no chain {target}")))?;
                        if c.base.is_some() {
                            return Err(fail(op, libc::EOPNOTSUPP, format!("{target} is a base chain")));
                        }
                    }
                }
                let c = t.chain_mut(chain).expect("checked");
                c.rules.push(Rule { handle, exprs: exprs.clone(), comment: stored_comment(comment) });
            }
            Op::DeleteRule { at, chain, handle } => {
                get(state, at)?;
                let t = state.get_mut(&(at.family, at.table.clone())).expect("checked");
                let c = t.chain_mut(chain).ok_or_else(|| fail(op, libc::ENOENT, "no such chain"))?;
                let before = c.rules.len();
                c.rules.retain(|r| r.handle != *handle);
                if c.rules.len() == before {
                    return Err(fail(op, libc::ENOENT, "no such rule"));
                }
            }
        }
        Ok(())
    }

    fn check_element(op: &Op, spec: &SetSpec, e: &Element) -> Result<()> {
        if e.key.len() != spec.key_len as usize || e.key_end.as_ref().is_some_and(|k| k.len() != spec.key_len as usize) {
            return Err(fail(op, libc::EINVAL, format!("key of {} bytes for a key of {}", e.key.len(), spec.key_len)));
        }
        if e.key_end.is_some() && !spec.interval {
            return Err(fail(op, libc::EINVAL, "an interval in a set without intervals"));
        }
        match (spec.data, &e.data) {
            (Some((_, len)), Some(d)) if d.len() != len as usize => {
                Err(fail(op, libc::EINVAL, format!("data of {} bytes for data of {len}", d.len())))
            }
            (Some(_), None) => Err(fail(op, libc::EINVAL, "a map element without data")),
            (None, Some(_)) => Err(fail(op, libc::EINVAL, "data for a set that is no map")),
            _ => Ok(()),
        }
    }

    /// The kernel's check of the chain graph at commit: NAT and masquerade only where a nat base
    /// chain of a fitting hook reaches them. The error names the rule whose addition made the
    /// graph invalid, as the kernel's replay of the batch (validating each rule) does.
    fn validate_batch(before: &State, after: &State, batch: &Batch) -> Result<()> {
        let Err(why) = Self::validate(after) else { return Ok(()) };
        let mut state = before.clone();
        for op in batch.ops() {
            let _ = Self::apply(&mut state, op);
            if matches!(op, Op::AddRule { .. }) && Self::validate(&state).is_err() {
                return Err(fail(op, libc::EOPNOTSUPP, why));
            }
        }
        let last = batch.ops().last().expect("a batch with operations");
        Err(fail(last, libc::EOPNOTSUPP, why))
    }

    fn validate(state: &State) -> std::result::Result<(), String> {
        for ((family, _), t) in state {
            for base in t.chains.iter().filter(|c| c.base.is_some()) {
                let b = base.base.as_ref().expect("base chain");
                let mut seen: Vec<&str> = Vec::new();
                let mut todo = vec![base.name.as_str()];
                while let Some(name) = todo.pop() {
                    if seen.contains(&name) {
                        continue;
                    }
                    seen.push(name);
                    let Some(c) = t.chain(name) else { continue };
                    for r in &c.rules {
                        for e in &r.exprs {
                            let ok = match e {
                                Expr::Masquerade => b.kind == "nat" && b.hook == HookPoint::Postrouting,
                                Expr::Nat { dnat: true, .. } => {
                                    b.kind == "nat" && matches!(b.hook, HookPoint::Prerouting | HookPoint::Output)
                                }
                                Expr::Nat { dnat: false, .. } => {
                                    b.kind == "nat" && matches!(b.hook, HookPoint::Postrouting | HookPoint::Input)
                                }
                                _ => true,
                            };
                            if !ok {
                                return Err(format!(
                                    "{} in chain {name} of {} {} base chain {}",
                                    print::rule(std::slice::from_ref(e)),
                                    family.name(),
                                    b.kind,
                                    base.name
                                ));
                            }
                            if let Some(target) = e.target() {
                                todo.push(target);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

fn as_element(key: &[u8], v: &Stored) -> Element {
    Element { key: key.to_vec(), key_end: v.key_end.clone(), data: v.data.clone(), comment: v.comment.clone() }
}

fn rule_line(r: &Rule) -> String {
    let mut s = print::rule(&r.exprs);
    if let Some(c) = &r.comment {
        let _ = write!(s, " comment \"{c}\"");
    }
    s
}

impl Client for FakeNft {
    fn commit(&mut self, batch: &Batch) -> Result<()> {
        if let Some(hook) = self.before_next.take() {
            hook(self);
        }
        if batch.is_empty() {
            return Ok(());
        }
        let mut next = self.state.clone();
        let mut failure = None;
        for op in batch.ops() {
            // as nfnetlink, the rest of a failed batch is still processed (and its objects get
            // handles) before the whole transaction is aborted
            if let Err(e) = Self::apply(&mut next, op) {
                failure.get_or_insert(e);
            }
        }
        let invalid = if failure.is_none() { Self::validate_batch(&self.state, &next, batch).err() } else { None };
        if invalid.is_some() {
            // a batch refused by the commit's chain validation is replayed once, validating
            // each rule as it goes: its objects take handles a second time
            let mut replay = self.state.clone();
            for (k, t) in &mut replay {
                if let Some(n) = next.get(k) {
                    t.handles = n.handles;
                }
            }
            for op in batch.ops() {
                let _ = Self::apply(&mut replay, op);
            }
            next = replay;
        }
        if let Some(e) = failure.or(invalid) {
            // aborted: nothing stays but the handles it used up (the kernel never reuses them)
            for (k, t) in &mut self.state {
                if let Some(n) = next.get(k) {
                    t.handles = n.handles;
                }
            }
            return Err(e);
        }
        let text = self.render(batch);
        self.state = next;
        self.log.push(text);
        Ok(())
    }

    fn rules(&mut self, family: Family, table: &str, chain: &str) -> Result<Vec<RuleInfo>> {
        let Some(c) = self.state.get(&(family, table.to_string())).and_then(|t| t.chain(chain)) else { return Ok(Vec::new()) };
        Ok(c.rules.iter().map(|r| RuleInfo { handle: r.handle, comment: r.comment.clone() }).collect())
    }

    fn sets(&mut self, family: Family, table: &str) -> Result<Vec<String>> {
        Ok(self.state.get(&(family, table.to_string())).map(|t| t.sets.iter().map(|s| s.spec.name.clone()).collect()).unwrap_or_default())
    }

    /// Interval sets list each range as two elements, its start (with the comment) and its end,
    /// as the kernel's dump does.
    fn elements(&mut self, family: Family, table: &str, set: &str) -> Result<Vec<ElementInfo>> {
        let Some(s) = self.state.get(&(family, table.to_string())).and_then(|t| t.set(set)) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for (k, v) in &s.elements {
            out.push(ElementInfo { key: k.clone(), comment: v.comment.clone() });
            if let Some(end) = &v.key_end {
                out.push(ElementInfo { key: end.clone(), comment: None });
            }
        }
        Ok(out)
    }

    fn get_element(&mut self, family: Family, table: &str, set: &str, key: &[u8]) -> Result<Option<ElementInfo>> {
        let Some(s) = self.state.get(&(family, table.to_string())).and_then(|t| t.set(set)) else { return Ok(None) };
        if s.spec.interval {
            let k = be(key);
            return Ok(s
                .elements
                .iter()
                .find(|(start, v)| {
                    let (a, b) = range(start, v.key_end.as_ref());
                    a <= k && k < b
                })
                .map(|(start, v)| ElementInfo { key: start.clone(), comment: v.comment.clone() }));
        }
        Ok(s.elements.get(key).map(|v| ElementInfo { key: key.to_vec(), comment: v.comment.clone() }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{m, SetSpec, Verdict};
    use super::*;

    const T: &str = "t";
    const F: Family = Family::Inet;

    fn post() -> BaseChain {
        BaseChain { kind: "nat", hook: HookPoint::Postrouting, priority: 100, accept: true }
    }

    fn setup() -> FakeNft {
        let mut f = FakeNft::new();
        let mut b = Batch::new();
        b.add_table(F, T).add_chain(F, T, "postrouting", Some(&post())).add_set(F, T, &SetSpec::addrs("s", false));
        f.commit(&b).unwrap();
        f
    }

    fn ip(s: &str) -> Element {
        Element::addr(s.parse().unwrap())
    }

    #[test]
    fn a_failing_batch_changes_nothing() {
        let mut f = setup();
        let before = f.ruleset();
        let mut b = Batch::new();
        b.add_elements(F, T, "s", &[ip("10.0.0.1")]).add_chain(F, T, "c", None).add_elements(F, T, "missing", &[ip("10.0.0.2")]);
        let e = f.commit(&b).unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert!(e.to_string().starts_with("adding elements of set t/missing"), "{e}");
        assert_eq!(f.ruleset(), before);
        assert_eq!(f.log().len(), 1);
    }

    #[test]
    fn exclusive_creates_and_missing_things() {
        let mut f = setup();
        let mut b = Batch::new();
        b.create_chain(F, T, "c", None);
        f.commit(&b).unwrap();
        assert!(f.commit(&b).unwrap_err().is_exists());
        let mut b = Batch::new();
        b.create_elements(F, T, "s", &[ip("10.0.0.1").with_comment("a")]);
        f.commit(&b).unwrap();
        assert!(f.commit(&b).unwrap_err().is_exists());
        // a plain add of the same element is no error and keeps the first comment
        let mut again = Batch::new();
        again.add_elements(F, T, "s", &[ip("10.0.0.1").with_comment("b")]);
        f.commit(&again).unwrap();
        assert_eq!(f.element_texts(F, T, "s"), ["10.0.0.1 comment \"a\""]);
        let mut del = Batch::new();
        del.delete_elements(F, T, "s", &[ip("10.0.0.1")]);
        f.commit(&del).unwrap();
        assert!(f.commit(&del).unwrap_err().is_not_found());
        let mut b = Batch::new();
        b.add_chain(F, "nope", "c", None);
        assert!(f.commit(&b).unwrap_err().is_not_found());
        let mut b = Batch::new();
        b.delete_rule(F, T, "c", 99);
        assert!(f.commit(&b).unwrap_err().is_not_found());
        // reads of what is not there
        assert!(f.elements(F, "nope", "s").unwrap().is_empty());
        assert!(f.rules(F, T, "nope").unwrap().is_empty());
        assert_eq!(f.get_element(F, T, "nope", &[1, 2, 3, 4]).unwrap(), None);
    }

    #[test]
    fn sets_keys_and_data_are_checked() {
        let mut f = setup();
        let mut b = Batch::new();
        b.add_set(F, T, &SetSpec::addrs("s", true));
        assert!(f.commit(&b).unwrap_err().is_exists(), "same name, other type");
        let mut b = Batch::new();
        b.add_elements(F, T, "s", &[Element::key(vec![1, 2, 3])]);
        assert_eq!(f.commit(&b).unwrap_err().errno(), Some(libc::EINVAL));
        let mut b = Batch::new();
        b.add_elements(F, T, "s", &[ip("10.0.0.1").with_data(vec![0; 4])]);
        assert_eq!(f.commit(&b).unwrap_err().errno(), Some(libc::EINVAL));
        let mut b = Batch::new();
        b.add_elements(F, T, "s", &[Element::prefix("10.0.0.0/24".parse().unwrap())]);
        assert_eq!(f.commit(&b).unwrap_err().errno(), Some(libc::EINVAL), "interval in a plain set");
        let mut b = Batch::new();
        b.add_set(F, T, &SetSpec::prefixes("p", false)).add_elements(F, T, "p", &[Element::prefix("10.0.0.0/16".parse().unwrap())]);
        f.commit(&b).unwrap();
        let mut b = Batch::new();
        b.add_elements(F, T, "p", &[Element::prefix("10.0.1.0/24".parse().unwrap())]);
        assert!(f.commit(&b).unwrap_err().is_exists(), "overlap");
        assert!(f.get_element(F, T, "p", &[10, 0, 200, 1]).unwrap().is_some(), "an address inside the range");
        assert_eq!(f.elements(F, T, "p").unwrap().len(), 2, "start and end, as the kernel dumps them");
    }

    #[test]
    fn busy_chains_and_sets() {
        let mut f = setup();
        let mut b = Batch::new();
        b.add_chain(F, T, "m", None);
        let mut jump = m::addr_in_set(false, true, "s", false);
        jump.push(Expr::Verdict(Verdict::Goto("m".into())));
        b.add_rule(F, T, "postrouting", &jump, Some("j")).add_rule(F, T, "m", &[Expr::Masquerade], None);
        f.commit(&b).unwrap();
        let mut b = Batch::new();
        b.delete_set(F, T, "s");
        assert_eq!(f.commit(&b).unwrap_err().errno(), Some(libc::EBUSY));
        let mut b = Batch::new();
        b.delete_chain(F, T, "m");
        assert_eq!(f.commit(&b).unwrap_err().errno(), Some(libc::EBUSY), "still jumped to");
        let h = f.rules(F, T, "postrouting").unwrap()[0].handle;
        let mut b = Batch::new();
        // a chain's own rules go with it
        b.delete_rule(F, T, "postrouting", h).delete_chain(F, T, "m").delete_set(F, T, "s");
        f.commit(&b).unwrap();
        assert_eq!(f.chains(F, T), ["postrouting"]);
    }

    #[test]
    fn nat_only_where_a_nat_hook_reaches() {
        let mut f = setup();
        let fwd = BaseChain { kind: "filter", hook: HookPoint::Forward, priority: 0, accept: true };
        let mut b = Batch::new();
        b.add_chain(F, T, "forward", Some(&fwd)).add_chain(F, T, "x", None);
        b.add_rule(F, T, "forward", &[Expr::Verdict(Verdict::Jump("x".into()))], None).add_rule(F, T, "x", &[Expr::Masquerade], None);
        let e = f.commit(&b).unwrap_err();
        assert_eq!(e.errno(), Some(libc::EOPNOTSUPP), "{e}");
        assert!(e.to_string().starts_with("adding a rule to t/x"), "the rule that made it invalid: {e}");
        let mut b = Batch::new();
        b.add_chain(F, T, "x", None).add_rule(F, T, "postrouting", &[Expr::Verdict(Verdict::Jump("postrouting".into()))], None);
        assert_eq!(f.commit(&b).unwrap_err().errno(), Some(libc::EOPNOTSUPP), "jump to a base chain");
        let mut b = Batch::new();
        b.add_table(Family::Bridge, T).add_chain(Family::Bridge, T, "p", Some(&post()));
        assert_eq!(f.commit(&b).unwrap_err().errno(), Some(libc::ENOENT), "no nat chain type in the bridge family");
    }

    #[test]
    fn handles_per_table_and_the_listing() {
        let mut f = setup();
        let mut b = Batch::new();
        b.add_rule(F, T, "postrouting", &[Expr::Masquerade], Some(&"c".repeat(200)));
        f.commit(&b).unwrap();
        let r = f.rules(F, T, "postrouting").unwrap();
        assert_eq!(r[0].handle, 3, "after the chain (1) and the set (2)");
        assert_eq!(r[0].comment.as_ref().unwrap().len(), 127, "cut as rcni's encoding cuts it");
        let text = f.ruleset();
        assert!(text.starts_with("table inet t {\n\tset s {\n\t\ttype ipv4_addr;\n\t}\n\tchain postrouting {\n"), "{text}");
        assert!(text.contains("\t\ttype nat hook postrouting priority 100; policy accept;\n\t\tmasquerade comment \"ccc"), "{text}");
        assert!(f.log()[1].starts_with("add rule inet t postrouting masquerade comment"), "{:?}", f.log());
    }

    #[test]
    fn a_hook_plays_a_concurrent_writer() {
        let mut f = setup();
        f.before_next_commit(|f| {
            let mut b = Batch::new();
            b.create_chain(F, T, "c", None);
            f.commit(&b).unwrap();
        });
        let mut b = Batch::new();
        b.create_chain(F, T, "c", None);
        assert!(f.commit(&b).unwrap_err().is_exists());
    }
}

//! `rcni network ls` and `inspect`: every network of the config directory — rcni's, nerdctl's,
//! podman's, hand-written — with its subnets and the attachments the result cache records.
//!
//! `ls --format json` and `inspect` print objects with these keys (stable): `name`, `id` (rcni's
//! 64-digit ID, or nerdctl's, or ""), `driver` (the first plugin's type), `subnets`, `gateways`,
//! `containers` (cached attachments), `file`, `cniVersion`, `error` (a file that does not load);
//! `inspect` adds `labels`, `options`, `bridge`, `internal`, `createdBy` ("rcni", "nerdctl" or
//! ""), `attachments` (see `rcni ps`) and `config` (the file's JSON).

use super::{networks, Dir};
use crate::attachments::{self, Attachment};
use crate::shared::{ID_KEY, LABELS_KEY, OPTIONS_KEY};
use clap::Args;
use cni_runtime::conf::NetworkFile;
use serde_json::{json, Value};

#[derive(Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub output: crate::shared::Output,
    /// Names only
    #[arg(long, short = 'q')]
    pub quiet: bool,
    #[command(flatten)]
    pub dir: Dir,
}

#[derive(Args)]
pub struct InspectArgs {
    /// Networks to show
    #[arg(required = true)]
    pub names: Vec<String>,
    #[command(flatten)]
    pub dir: Dir,
}

/// What is shown of one network file.
pub(crate) struct Shown {
    pub file: NetworkFile,
    pub raw: Value,
    pub attachments: Vec<Attachment>,
}

impl Shown {
    pub fn name(&self) -> String {
        self.file.name.clone().unwrap_or_default()
    }

    pub fn rcni_made(&self) -> bool {
        self.raw.get(ID_KEY).and_then(Value::as_str).is_some()
    }

    fn id(&self) -> String {
        self.raw.get(ID_KEY).or_else(|| self.raw.get("nerdctlID")).and_then(Value::as_str).unwrap_or("").to_string()
    }

    /// The first plugin (a conflist's, or a single-plugin file's object).
    fn main_plugin(&self) -> Option<&Value> {
        match self.raw.get("plugins") {
            Some(Value::Array(p)) => p.first(),
            _ => self.raw.get("type").map(|_| &self.raw),
        }
    }

    fn driver(&self) -> String {
        self.main_plugin().and_then(|p| p.get("type")).and_then(Value::as_str).unwrap_or("").to_string()
    }

    /// The bridge a bridge network's first plugin names (the reference's default `cni0`).
    pub fn bridge(&self) -> Option<String> {
        let p = self.main_plugin()?;
        (p.get("type")?.as_str()? == "bridge").then(|| p.get("bridge").and_then(Value::as_str).unwrap_or("cni0").to_string())
    }

    fn subnets(&self) -> Vec<String> {
        crate::shared::subnets_of(&self.raw).iter().map(|s| s.to_string()).collect()
    }

    fn gateways(&self) -> Vec<String> {
        let mut out = Vec::new();
        gateways(&self.raw, &mut out);
        out
    }

    fn summary(&self) -> Value {
        json!({
            "name": self.name(),
            "id": self.id(),
            "driver": self.driver(),
            "subnets": self.subnets(),
            "gateways": self.gateways(),
            "containers": self.attachments.len(),
            "file": self.file.path,
            "cniVersion": self.raw.get("cniVersion").and_then(Value::as_str).unwrap_or(""),
            "error": self.file.network.as_ref().err().map(|e| e.to_string()),
        })
    }

    fn detail(&self) -> Value {
        let mut v = self.summary();
        let created_by = if self.rcni_made() {
            "rcni"
        } else if self.raw.get("nerdctlID").is_some() {
            "nerdctl"
        } else {
            ""
        };
        let labels = self.raw.get(LABELS_KEY).or_else(|| self.raw.get("nerdctlLabels")).cloned().unwrap_or(json!({}));
        let options = self.raw.get(OPTIONS_KEY).cloned().unwrap_or(json!({}));
        let internal = options.get("internal").and_then(Value::as_str) == Some("true");
        v["labels"] = labels;
        v["options"] = options;
        v["bridge"] = json!(self.bridge());
        v["internal"] = json!(internal);
        v["createdBy"] = json!(created_by);
        v["attachments"] = Value::Array(self.attachments.iter().map(Attachment::to_json).collect());
        v["config"] = self.raw.clone();
        v
    }
}

/// Every range's gateway: the one it names, else host-local's default (the subnet's first
/// address).
fn gateways(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(subnet)) = m.get("subnet") {
                match m.get("gateway").and_then(Value::as_str).filter(|g| !g.is_empty()) {
                    Some(g) => out.push(g.to_string()),
                    None => {
                        if let Ok(n) = subnet.parse::<ipnet::IpNet>() {
                            out.push(ipam::ip::add(n.network(), 1).to_string());
                        }
                    }
                }
                return;
            }
            for x in m.values() {
                gateways(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| gateways(x, out)),
        _ => {}
    }
}

/// Every network of the directory, with its cached attachments.
pub(crate) fn collect(dir: &Dir) -> Result<Vec<Shown>, String> {
    let all = attachments::cached("")?;
    Ok(networks(&dir.conf_dir)?
        .into_iter()
        .map(|file| {
            let raw = std::fs::read(&file.path).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null);
            let name = file.name.clone().unwrap_or_default();
            let attachments = all.iter().filter(|a| a.network == name).cloned().collect();
            Shown { file, raw, attachments }
        })
        .collect())
}

/// The network called `name`: the file a loader would take (the first `.conflist`, else the
/// first file), or an error that says how to find the names.
pub(crate) fn find<'a>(all: &'a [Shown], name: &str, dir: &Dir) -> Result<&'a Shown, String> {
    let mut of = all.iter().filter(|s| s.file.name.as_deref() == Some(name));
    let first = of.clone().find(|s| s.file.path.extension().is_some_and(|e| e == "conflist")).or_else(|| of.next());
    first.ok_or_else(|| format!("network {name:?} not found in {}; rcni network ls lists them", dir.conf_dir.display()))
}

pub fn ls(a: &LsArgs) -> Result<i32, String> {
    let all = collect(&a.dir)?;
    if a.quiet {
        for s in &all {
            println!("{}", s.name());
        }
        return Ok(0);
    }
    if a.output.json() {
        let v: Vec<Value> = all.iter().map(Shown::summary).collect();
        println!("{}", serde_json::to_string_pretty(&v).expect("JSON"));
        return Ok(0);
    }
    let rows: Vec<[String; 7]> = all
        .iter()
        .map(|s| {
            let id = s.id();
            [
                s.name(),
                id.get(..12).unwrap_or(&id).to_string(),
                if s.file.network.is_err() { "(broken)".into() } else { s.driver() },
                s.subnets().join(","),
                s.gateways().join(","),
                s.attachments.len().to_string(),
                s.file.path.display().to_string(),
            ]
        })
        .collect();
    crate::shared::print_table(&["NAME", "ID", "DRIVER", "SUBNETS", "GATEWAY", "CONTAINERS", "FILE"], &rows);
    Ok(0)
}

pub fn inspect(a: &InspectArgs) -> Result<i32, String> {
    let all = collect(&a.dir)?;
    let mut out = Vec::new();
    for n in &a.names {
        out.push(find(&all, n, &a.dir)?.detail());
    }
    println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
    Ok(0)
}

//! The runtime API (Go's `libcni.CNIConfig`): ADD, CHECK, DEL of a network list or a single
//! plugin, GC, STATUS, VERSION, validation, and the cached-result getters.
//!
//! Behaviour follows Go's libcni 1.3 so runtimes and plugins interoperate; the deliberate
//! differences are listed in `docs/compatibility.md`.

use crate::cache::{Cache, NetworkAttachment, DEFAULT_CACHE_DIR};
use crate::ctx::Ctx;
use crate::error::{Error, Result};
use crate::exec::{Exec, RawExec};
use crate::find::join_path_list;
use crate::invoke::{self, PluginArgs, PluginInfo};
use cni_types::{gojson, validate, version, CniResult, GcAttachment, NetworkConfigList, PluginConfig};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Everything about one invocation except the network configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeConf {
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    /// `CNI_ARGS` pairs.
    pub args: Vec<(String, String)>,
    /// Capability arguments; each plugin gets those its `capabilities` enable, as `runtimeConfig`.
    pub capability_args: Map<String, Value>,
    /// Deprecated per-call cache directory (used when the `CniConfig` has none).
    pub cache_dir: Option<PathBuf>,
}

impl From<&NetworkAttachment> for RuntimeConf {
    /// The runtime arguments an attachment was added with, as its cache entry records them.
    fn from(a: &NetworkAttachment) -> Self {
        RuntimeConf {
            container_id: a.container_id.clone(),
            netns: a.netns.clone(),
            ifname: a.ifname.clone(),
            args: a.cni_args.clone(),
            capability_args: a.capability_args.clone(),
            cache_dir: None,
        }
    }
}

/// GC's arguments: the attachments that are still valid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcArgs {
    pub valid_attachments: Vec<GcAttachment>,
}

/// A runtime's handle: where plugins are, where the cache is, how plugins are run.
#[derive(Clone)]
pub struct CniConfig {
    pub path: Vec<PathBuf>,
    cache_dir: Option<PathBuf>,
    exec: Arc<dyn Exec>,
    trace: Option<crate::trace::Sink>,
}

impl std::fmt::Debug for CniConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CniConfig").field("path", &self.path).field("cache_dir", &self.cache_dir).finish()
    }
}

enum Verb {
    Add,
    Check,
    Del,
}

/// The network a plugin runs for: the list's (or single config's) name and version.
#[derive(Clone, Copy)]
struct Net<'a> {
    name: &'a str,
    cni_version: &'a str,
}

impl<'a> Net<'a> {
    fn of_list(list: &'a NetworkConfigList) -> Self {
        Net { name: &list.name, cni_version: &list.cni_version }
    }
    fn of_plugin(p: &'a PluginConfig) -> Self {
        Net { name: &p.name, cni_version: &p.cni_version }
    }
}

impl CniConfig {
    /// Plugins from `path`, cache in the default directory, plugins run as processes.
    pub fn new(path: Vec<PathBuf>) -> Self {
        CniConfig { path, cache_dir: None, exec: Arc::new(RawExec::default()), trace: crate::trace::from_env() }
    }

    /// Reports every plugin run to `sink` ([`crate::trace`]; replaces what `RCNI_TRACE` set).
    pub fn with_trace(mut self, sink: crate::trace::Sink) -> Self {
        self.trace = Some(sink);
        self
    }

    /// Runs one plugin through `run`, reported to the trace sink when there is one.
    fn traced<T>(
        &self,
        verb: &str,
        network: &str,
        plugin: &str,
        ifname: &str,
        path: &Path,
        run: impl FnOnce() -> Result<T>,
        summary: impl FnOnce(&T) -> String,
    ) -> Result<T> {
        let Some(sink) = &self.trace else { return run() };
        let in_process = self.exec.runs_in_process(path);
        let (start, k0) = (std::time::Instant::now(), crate::trace::kernel_requests());
        let r = run();
        let step = crate::trace::Step {
            network: network.into(),
            plugin: plugin.into(),
            verb: verb.into(),
            ifname: ifname.into(),
            in_process,
            duration: start.elapsed(),
            kernel_requests: in_process.then(|| crate::trace::kernel_requests().wrapping_sub(k0)),
            outcome: match &r {
                Ok(v) => Ok(summary(v)),
                Err(e) => Err(e.to_string()),
            },
        };
        sink(&step);
        r
    }

    /// Sets the cache directory (Go's `NewCNIConfigWithCacheDir`).
    pub fn with_cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Replaces how plugins are run.
    pub fn with_exec(mut self, exec: Arc<dyn Exec>) -> Self {
        self.exec = exec;
        self
    }

    /// The cache used for `rt`.
    pub fn cache(&self, rt: &RuntimeConf) -> Cache {
        Cache::new(self.cache_dir.clone().or_else(|| rt.cache_dir.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR)))
    }

    fn args(&self, command: &str, rt: &RuntimeConf) -> Vec<(String, String)> {
        PluginArgs {
            command: command.into(),
            container_id: rt.container_id.clone(),
            netns: rt.netns.clone(),
            plugin_args: rt.args.clone(),
            ifname: rt.ifname.clone(),
            path: join_path_list(&self.path),
        }
        .to_env()
    }

    /// The plugin's stdin for ADD/CHECK/DEL (Go's `buildOneConfig`): the plugin object with the
    /// list's `name` and `cniVersion`, `prevResult` when there is one, and `runtimeConfig` made of
    /// the capability arguments the plugin enables (replacing the file's only when non-empty).
    pub fn build_one_config(
        name: &str,
        cni_version: &str,
        plugin: &PluginConfig,
        prev: Option<&CniResult>,
        rt: &RuntimeConf,
    ) -> Result<PluginConfig> {
        let mut inject: Vec<(&str, Value)> = vec![("name", Value::String(name.into())), ("cniVersion", Value::String(cni_version.into()))];
        if let Some(prev) = prev {
            inject.push(("prevResult", prev.to_value()));
        }
        let mut rc = Map::new();
        for cap in plugin.enabled_capabilities() {
            if let Some(v) = rt.capability_args.get(cap) {
                rc.insert(cap.to_string(), v.clone());
            }
        }
        if !rc.is_empty() {
            inject.push(("runtimeConfig", Value::Object(rc)));
        }
        Ok(plugin.inject(inject)?)
    }

    fn run(
        &self,
        ctx: &Ctx,
        verb: Verb,
        net: Net,
        plugin: &PluginConfig,
        prev: Option<&CniResult>,
        rt: &RuntimeConf,
    ) -> Result<Option<CniResult>> {
        let path = self.exec.find_in_path(&plugin.plugin_type, &self.path)?;
        if let Verb::Add = verb {
            validate::container_id(&rt.container_id)?;
            validate::network_name(net.name)?;
            validate::interface_name(&rt.ifname)?;
        }
        let conf = Self::build_one_config(net.name, net.cni_version, plugin, prev, rt)?;
        let name = match verb {
            Verb::Add => "ADD",
            Verb::Check => "CHECK",
            Verb::Del => "DEL",
        };
        let call = || match verb {
            Verb::Add => invoke::exec_plugin_with_result(self.exec.as_ref(), ctx, &path, &conf.bytes, &self.args("ADD", rt)).map(Some),
            Verb::Check => {
                invoke::exec_plugin_without_result(self.exec.as_ref(), ctx, &path, &conf.bytes, &self.args("CHECK", rt)).map(|_| None)
            }
            Verb::Del => {
                invoke::exec_plugin_without_result(self.exec.as_ref(), ctx, &path, &conf.bytes, &self.args("DEL", rt)).map(|_| None)
            }
        };
        self.traced(name, net.name, &plugin.plugin_type, &rt.ifname, &path, call, |r| match r {
            Some(res) => {
                res.to_current().map(|c| c.ips.iter().map(|i| i.address.to_string()).collect::<Vec<_>>().join(",")).unwrap_or_default()
            }
            None => String::new(),
        })
    }

    /// Runs the list's plugins in order, each getting the previous result as `prevResult`, and
    /// caches the final result. The first failure stops the list: nothing is cached and nothing
    /// is rolled back (the caller must DEL, as the spec requires).
    pub fn add_network_list(&self, ctx: &Ctx, list: &NetworkConfigList, rt: &RuntimeConf) -> Result<CniResult> {
        let mut result: Option<CniResult> = None;
        for plugin in &list.plugins {
            result = self
                .run(ctx, Verb::Add, Net::of_list(list), plugin, result.as_ref(), rt)
                .map_err(|e| e.context(format!("plugin {} failed (add)", plugin.description())))?;
        }
        let result = result.ok_or_else(|| Error::msg(format!("network {} has no plugins", gojson::quote(&list.name))))?;
        self.cache(rt)
            .write(&result, &list.bytes, &list.name, rt)
            .map_err(|e| e.context(format!("failed to set network {} cached result", gojson::quote(&list.name))))?;
        Ok(result)
    }

    /// Runs every plugin's CHECK with the cached result as `prevResult`. Lists older than 0.4.0
    /// cannot be checked; `disableCheck` makes this a no-op.
    pub fn check_network_list(&self, ctx: &Ctx, list: &NetworkConfigList, rt: &RuntimeConf) -> Result<()> {
        check_supported(&list.cni_version)?;
        if list.disable_check {
            return Ok(());
        }
        let cached = self
            .cache(rt)
            .result(&list.name, &list.cni_version, rt)
            .map_err(|e| e.context(format!("failed to get network {} cached result", gojson::quote(&list.name))))?;
        for plugin in &list.plugins {
            self.run(ctx, Verb::Check, Net::of_list(list), plugin, cached.as_ref(), rt)?;
        }
        Ok(())
    }

    /// Runs the plugins' DEL in reverse order, with the cached result as `prevResult` (0.4.0+).
    /// A cache that cannot be read is removed and ignored. On failure the cache stays for a
    /// retry; on success it is removed.
    pub fn del_network_list(&self, ctx: &Ctx, list: &NetworkConfigList, rt: &RuntimeConf) -> Result<()> {
        let cache = self.cache(rt);
        let cached = self.cached_for_del(&cache, &list.name, &list.cni_version, rt)?;
        for plugin in list.plugins.iter().rev() {
            self.run(ctx, Verb::Del, Net::of_list(list), plugin, cached.as_ref(), rt)
                .map_err(|e| e.context(format!("plugin {} failed (delete)", plugin.description())))?;
        }
        let _ = cache.delete(&list.name, rt);
        Ok(())
    }

    fn cached_for_del(&self, cache: &Cache, name: &str, cni_version: &str, rt: &RuntimeConf) -> Result<Option<CniResult>> {
        if !version::greater_than_or_equal(cni_version, "0.4.0").map_err(|e| Error::msg(e.to_string()))? {
            return Ok(None);
        }
        match cache.result(name, cni_version, rt) {
            Ok(r) => Ok(r),
            Err(e) => {
                tracing::warn!(network = name, container = %rt.container_id, error = %e, "ignoring unreadable cached result for DEL");
                let _ = cache.delete(name, rt);
                Ok(None)
            }
        }
    }

    /// ADD of a single plugin config (name and version from the config itself).
    pub fn add_network(&self, ctx: &Ctx, net: &PluginConfig, rt: &RuntimeConf) -> Result<CniResult> {
        let result = self.run(ctx, Verb::Add, Net::of_plugin(net), net, None, rt)?.expect("ADD returns a result");
        self.cache(rt)
            .write(&result, &net.bytes, &net.name, rt)
            .map_err(|e| e.context(format!("failed to set network {} cached result", gojson::quote(&net.name))))?;
        Ok(result)
    }

    /// CHECK of a single plugin config.
    pub fn check_network(&self, ctx: &Ctx, net: &PluginConfig, rt: &RuntimeConf) -> Result<()> {
        check_supported(&net.cni_version)?;
        let cached = self
            .cache(rt)
            .result(&net.name, &net.cni_version, rt)
            .map_err(|e| e.context(format!("failed to get network {} cached result", gojson::quote(&net.name))))?;
        self.run(ctx, Verb::Check, Net::of_plugin(net), net, cached.as_ref(), rt).map(|_| ())
    }

    /// DEL of a single plugin config.
    pub fn del_network(&self, ctx: &Ctx, net: &PluginConfig, rt: &RuntimeConf) -> Result<()> {
        let cache = self.cache(rt);
        let cached = self.cached_for_del(&cache, &net.name, &net.cni_version, rt)?;
        self.run(ctx, Verb::Del, Net::of_plugin(net), net, cached.as_ref(), rt)?;
        let _ = cache.delete(&net.name, rt);
        Ok(())
    }

    /// The cached result of a list's ADD, in the list's version, if any.
    pub fn get_network_list_cached_result(&self, list: &NetworkConfigList, rt: &RuntimeConf) -> Result<Option<CniResult>> {
        self.cache(rt).result(&list.name, &list.cni_version, rt)
    }

    /// The cached result of a single plugin's ADD.
    pub fn get_network_cached_result(&self, net: &PluginConfig, rt: &RuntimeConf) -> Result<Option<CniResult>> {
        self.cache(rt).result(&net.name, &net.cni_version, rt)
    }

    /// The cached config bytes of a list's ADD and `rt` with the cached `CNI_ARGS` (when any)
    /// and capability arguments.
    pub fn get_network_list_cached_config(&self, list: &NetworkConfigList, rt: &RuntimeConf) -> Result<Option<(Vec<u8>, RuntimeConf)>> {
        self.cached_config(&list.name, rt)
    }

    /// Same as [`Self::get_network_list_cached_config`] for a single plugin config.
    pub fn get_network_cached_config(&self, net: &PluginConfig, rt: &RuntimeConf) -> Result<Option<(Vec<u8>, RuntimeConf)>> {
        self.cached_config(&net.name, rt)
    }

    fn cached_config(&self, name: &str, rt: &RuntimeConf) -> Result<Option<(Vec<u8>, RuntimeConf)>> {
        use crate::cache::Cached;
        let quoted = gojson::quote(name);
        match self.cache(rt).read(name, &rt.container_id, &rt.ifname)? {
            Cached::Absent => Ok(None),
            Cached::Entry(info) => {
                let mut new_rt = rt.clone();
                if !info.cni_args.is_empty() {
                    new_rt.args = info.cni_args.into_iter().map(|[k, v]| (k, v)).collect();
                }
                new_rt.capability_args = info.capability_args;
                Ok(Some((info.config, new_rt)))
            }
            Cached::Other(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) => Err(Error::msg(format!(
                    "read cached network {quoted} config has wrong kind: {}",
                    v.get("kind").and_then(Value::as_str).unwrap_or("")
                ))),
                Err(e) => Err(Error::msg(format!("failed to unmarshal cached network {quoted} config: {e}"))),
            },
        }
    }

    /// Every cached attachment (of one container, unless `container_id` is empty).
    pub fn get_cached_attachments(&self, container_id: &str) -> Result<Vec<NetworkAttachment>> {
        self.cache(&RuntimeConf::default()).attachments(container_id)
    }

    /// Checks every plugin exists and supports the list's version; returns the enabled
    /// capabilities.
    pub fn validate_network_list(&self, ctx: &Ctx, list: &NetworkConfigList) -> Result<Vec<String>> {
        let errors: Vec<String> = list
            .plugins
            .iter()
            .filter_map(|p| self.validate_plugin(ctx, &p.plugin_type, &list.cni_version).err())
            .map(|e| e.to_string())
            .collect();
        if !errors.is_empty() {
            return Err(Error::msg(format!("[{}]", errors.join(" "))));
        }
        Ok(list.capabilities())
    }

    /// [`Self::validate_network_list`] for a single plugin config.
    pub fn validate_network(&self, ctx: &Ctx, net: &PluginConfig) -> Result<Vec<String>> {
        self.validate_plugin(ctx, &net.plugin_type, &net.cni_version)?;
        Ok(net.enabled_capabilities().map(String::from).collect())
    }

    fn validate_plugin(&self, ctx: &Ctx, plugin_type: &str, expected: &str) -> Result<()> {
        let path = self.exec.find_in_path(plugin_type, &self.path)?;
        let expected = if expected.is_empty() { "0.1.0" } else { expected };
        let info = invoke::get_version_info(self.exec.as_ref(), ctx, &path)?;
        if info.supports(expected) {
            Ok(())
        } else {
            Err(Error::msg(format!("plugin {plugin_type} does not support config version {}", gojson::quote(expected))))
        }
    }

    /// A plugin's VERSION reply.
    pub fn get_version_info(&self, ctx: &Ctx, plugin_type: &str) -> Result<PluginInfo> {
        let path = self.exec.find_in_path(plugin_type, &self.path)?;
        invoke::get_version_info(self.exec.as_ref(), ctx, &path)
    }

    /// Garbage collection of a network (Go's `GCNetworkList`): DELs every cached attachment of
    /// this network that is not listed as valid (`None`: none is valid), then, for 1.1.0+ lists,
    /// sends GC to every plugin with the valid attachments under both spellings of the key.
    /// Continues past errors and returns them all. `disableGC` makes this a no-op.
    pub fn gc_network_list(&self, ctx: &Ctx, list: &NetworkConfigList, args: Option<&GcArgs>) -> Result<()> {
        if list.disable_gc {
            return Ok(());
        }
        let Ok(cached) = self.get_cached_attachments("") else {
            return Ok(());
        };
        let mut errors = Vec::new();
        for att in cached.into_iter().filter(|a| a.network == list.name) {
            let key = GcAttachment { container_id: att.container_id.clone(), ifname: att.ifname.clone() };
            if args.is_some_and(|a| a.valid_attachments.contains(&key)) {
                continue;
            }
            let rt = RuntimeConf::from(&att);
            if let Err(e) = self.del_network_list(ctx, list, &rt) {
                errors.push(e.context(format!("failed to delete stale attachment {} {}", rt.container_id, rt.ifname)));
            }
        }
        errors.extend(self.send_gc(ctx, list, args).1);
        Error::join(errors).map_or(Ok(()), Err)
    }

    /// The second half of [`CniConfig::gc_network_list`] alone: GC to every plugin of a 1.1.0+
    /// list (with the valid attachments under both keys), no DEL. Returns whether GC was sent
    /// (not for older lists, nor with `disableGC`); continues past errors and returns them all.
    pub fn gc_plugins(&self, ctx: &Ctx, list: &NetworkConfigList, args: Option<&GcArgs>) -> Result<bool> {
        let (sent, errors) = self.send_gc(ctx, list, args);
        Error::join(errors).map_or(Ok(sent), Err)
    }

    /// GC to every plugin of a 1.1.0+ list: whether it was sent, and every failure.
    fn send_gc(&self, ctx: &Ctx, list: &NetworkConfigList, args: Option<&GcArgs>) -> (bool, Vec<Error>) {
        if list.disable_gc || !version::greater_than_or_equal(&list.cni_version, "1.1.0").unwrap_or(false) {
            return (false, Vec::new());
        }
        let mut errors = Vec::new();
        let mut inject = vec![("name", Value::String(list.name.clone())), ("cniVersion", Value::String(list.cni_version.clone()))];
        if let Some(a) = args {
            let valid = serde_json::to_value(&a.valid_attachments).expect("attachments serialize");
            for key in cni_types::config::VALID_ATTACHMENTS_KEYS {
                inject.push((key, valid.clone()));
            }
        }
        for plugin in &list.plugins {
            let conf = match plugin.inject(inject.iter().cloned()) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(Error::from(e).context(format!("failed to generate configuration to GC plugin {}", plugin.plugin_type)));
                    continue;
                }
            };
            let res = self.exec.find_in_path(&plugin.plugin_type, &self.path).and_then(|path| {
                let gc = || {
                    invoke::exec_plugin_without_result(
                        self.exec.as_ref(),
                        ctx,
                        &path,
                        &conf.bytes,
                        &self.args("GC", &RuntimeConf::default()),
                    )
                };
                self.traced("GC", &list.name, &plugin.plugin_type, "", &path, gc, |_| String::new())
            });
            if let Err(e) = res {
                errors.push(e.context(format!("failed to GC plugin {}", plugin.plugin_type)));
            }
        }
        (true, errors)
    }

    /// STATUS of every plugin of a 1.1.0+ list, in order; the first error is returned as the
    /// plugin reported it (its code intact). Older lists report nothing.
    pub fn get_status_network_list(&self, ctx: &Ctx, list: &NetworkConfigList) -> Result<()> {
        if !version::greater_than_or_equal(&list.cni_version, "1.1.0").unwrap_or(false) {
            return Ok(());
        }
        let inject = [("name", Value::String(list.name.clone())), ("cniVersion", Value::String(list.cni_version.clone()))];
        for plugin in &list.plugins {
            let conf = plugin.inject(inject.iter().cloned()).map_err(|e| {
                Error::from(e).context(format!("failed to generate configuration to get plugin STATUS {}", plugin.plugin_type))
            })?;
            let path = self.exec.find_in_path(&plugin.plugin_type, &self.path)?;
            let status = || {
                invoke::exec_plugin_without_result(
                    self.exec.as_ref(),
                    ctx,
                    &path,
                    &conf.bytes,
                    &self.args("STATUS", &RuntimeConf::default()),
                )
            };
            self.traced("STATUS", &list.name, &plugin.plugin_type, "", &path, status, |_| String::new())?;
        }
        Ok(())
    }
}

fn check_supported(cni_version: &str) -> Result<()> {
    if version::greater_than_or_equal(cni_version, "0.4.0").map_err(|e| Error::msg(e.to_string()))? {
        Ok(())
    } else {
        Err(Error::msg(format!("configuration version {} does not support the CHECK command", gojson::quote(cni_version))))
    }
}

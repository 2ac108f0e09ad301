//! A small client for etcd v3's JSON gateway (`/v3/kv/*`, `/v3/lease/*`, `/v3/watch`), over a
//! minimal HTTP/1.1 client on `std::net`.
//!
//! Why not the `etcd-client` crate: it pulls tokio and tonic into a binary that is otherwise
//! synchronous, and its build script needs `protoc`. Why no HTTP crate: the gateway is plain
//! HTTP/1.1 (no TLS here), and a watch is a chunked stream read with a short read timeout so the
//! agent can notice a signal; the ~100 lines below do exactly that, with a timeout on every
//! connect, read and write. Keys and values travel base64-encoded, int64s as JSON strings.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const IO_TIMEOUT: Duration = Duration::from_secs(3);

/// One stored key.
#[derive(Debug, Clone)]
pub struct Kv {
    pub key: String,
    pub value: Vec<u8>,
    pub lease: i64,
    pub mod_revision: i64,
}

#[derive(Debug, Clone)]
pub enum Event {
    Put(Kv),
    Delete(String),
}

pub struct Client {
    endpoints: Vec<String>,
}

fn b64(s: &[u8]) -> String {
    B64.encode(s)
}

fn int(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn kv(v: &Value) -> Kv {
    let dec = |f: &str| v.get(f).and_then(Value::as_str).and_then(|s| B64.decode(s).ok()).unwrap_or_default();
    Kv {
        key: String::from_utf8_lossy(&dec("key")).into_owned(),
        value: dec("value"),
        lease: int(&v["lease"]),
        mod_revision: int(&v["mod_revision"]),
    }
}

/// The end of the range of every key starting with `prefix` (etcd's prefix convention).
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// `http://host:port` → `host:port`.
fn host_port(url: &str) -> Result<&str, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// endpoints are supported"))?;
    Ok(rest.trim_end_matches('/'))
}

fn connect(url: &str, path: &str, body: &str) -> Result<TcpStream, String> {
    let hp = host_port(url)?;
    let addr = hp.to_socket_addrs().map_err(|e| format!("{hp}: {e}"))?.next().ok_or_else(|| format!("{hp}: no address"))?;
    let mut s = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|e| format!("{url}: {e}"))?;
    s.set_read_timeout(Some(IO_TIMEOUT)).and_then(|_| s.set_write_timeout(Some(IO_TIMEOUT))).map_err(|e| e.to_string())?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {hp}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| format!("{url}{path}: {e}"))?;
    Ok(s)
}

/// The head of a response in `buf`: (status, chunked, header length), once complete.
fn parse_head(buf: &[u8]) -> Option<Result<(u16, bool, usize), String>> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    Some(match status {
        Some(st) => Ok((st, head.contains("transfer-encoding: chunked"), end)),
        None => Err("malformed HTTP response".into()),
    })
}

/// Decodes the complete chunks at the start of `buf`: (data, bytes used, last chunk seen).
fn dechunk(buf: &[u8]) -> (Vec<u8>, usize, bool) {
    let (mut out, mut at) = (Vec::new(), 0);
    loop {
        let Some(nl) = buf[at..].windows(2).position(|w| w == b"\r\n") else { return (out, at, false) };
        let size_line = String::from_utf8_lossy(&buf[at..at + nl]).into_owned();
        let Ok(size) = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16) else { return (out, at, true) };
        let start = at + nl + 2;
        if buf.len() < start + size + 2 {
            return (out, at, false);
        }
        if size == 0 {
            return (out, start + 2, true);
        }
        out.extend_from_slice(&buf[start..start + size]);
        at = start + size + 2;
    }
}

/// The JSON values complete at the start of `buf` and the bytes they took.
fn json_values(buf: &[u8]) -> (Vec<Value>, usize) {
    let mut it = serde_json::Deserializer::from_slice(buf).into_iter::<Value>();
    let mut out = Vec::new();
    let mut used = 0;
    while let Some(Ok(v)) = it.next() {
        out.push(v);
        used = it.byte_offset();
    }
    (out, used)
}

fn post_one(url: &str, path: &str, body: &Value) -> Result<Value, String> {
    let mut s = connect(url, path, &body.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("{url}{path}: {e}"))?;
    let (status, chunked, at) = parse_head(&buf).ok_or_else(|| format!("{url}{path}: truncated response"))??;
    let body = if chunked { dechunk(&buf[at..]).0 } else { buf[at..].to_vec() };
    let (vals, _) = json_values(&body);
    let v = vals.into_iter().next().ok_or_else(|| format!("{url}{path}: HTTP {status} without JSON"))?;
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        return Err(format!("{url}{path}: {e}"));
    }
    if status != 200 {
        return Err(format!("{url}{path}: HTTP {status}"));
    }
    // streamed replies (keepalive) wrap the message in "result"
    Ok(if v.get("result").is_some() { v["result"].clone() } else { v })
}

impl Client {
    pub fn new(endpoints: &str) -> Result<Client, String> {
        let endpoints: Vec<String> =
            endpoints.split(',').map(|s| s.trim().trim_end_matches('/').to_string()).filter(|s| !s.is_empty()).collect();
        if endpoints.is_empty() {
            return Err("no etcd endpoint".into());
        }
        for e in &endpoints {
            host_port(e)?;
        }
        Ok(Client { endpoints })
    }

    /// POSTs to the first endpoint that answers.
    fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        let mut errs = Vec::new();
        for e in &self.endpoints {
            match post_one(e, path, &body) {
                Ok(v) => return Ok(v),
                Err(err) => errs.push(err),
            }
        }
        Err(errs.join("; "))
    }

    pub fn get(&self, key: &str) -> Result<Option<Kv>, String> {
        let v = self.post("/v3/kv/range", json!({"key": b64(key.as_bytes())}))?;
        Ok(v["kvs"].as_array().and_then(|a| a.first()).map(kv))
    }

    /// Every key under `prefix` and the store's revision.
    pub fn list(&self, prefix: &str) -> Result<(Vec<Kv>, i64), String> {
        let v = self.post("/v3/kv/range", json!({"key": b64(prefix.as_bytes()), "range_end": b64(&prefix_end(prefix))}))?;
        let kvs = v["kvs"].as_array().map(|a| a.iter().map(kv).collect()).unwrap_or_default();
        Ok((kvs, int(&v["header"]["revision"])))
    }

    /// Puts `key` if it does not exist; false when it does.
    pub fn create(&self, key: &str, value: &str, lease: i64) -> Result<bool, String> {
        let k = b64(key.as_bytes());
        let v = self.post(
            "/v3/kv/txn",
            json!({"compare": [{"key": k, "target": "CREATE", "create_revision": "0"}],
                   "success": [{"request_put": {"key": k, "value": b64(value.as_bytes()), "lease": lease.to_string()}}]}),
        )?;
        Ok(v["succeeded"].as_bool().unwrap_or(false))
    }

    /// Puts `key` if it was last modified at `mod_revision`; false otherwise.
    pub fn replace(&self, key: &str, mod_revision: i64, value: &str, lease: i64) -> Result<bool, String> {
        let k = b64(key.as_bytes());
        let v = self.post(
            "/v3/kv/txn",
            json!({"compare": [{"key": k, "target": "MOD", "mod_revision": mod_revision.to_string()}],
                   "success": [{"request_put": {"key": k, "value": b64(value.as_bytes()), "lease": lease.to_string()}}]}),
        )?;
        Ok(v["succeeded"].as_bool().unwrap_or(false))
    }

    pub fn delete(&self, key: &str) -> Result<(), String> {
        self.post("/v3/kv/deleterange", json!({"key": b64(key.as_bytes())})).map(|_| ())
    }

    /// A lease of `ttl` seconds: its id.
    pub fn grant(&self, ttl: i64) -> Result<i64, String> {
        let v = self.post("/v3/lease/grant", json!({"TTL": ttl.to_string()}))?;
        match int(&v["ID"]) {
            0 => Err("lease grant: no ID in the reply".into()),
            id => Ok(id),
        }
    }

    /// Renews a lease: the TTL it got, 0 when the lease is gone.
    pub fn keepalive(&self, id: i64) -> Result<i64, String> {
        let v = self.post("/v3/lease/keepalive", json!({"ID": id.to_string()}))?;
        Ok(int(&v["TTL"]))
    }

    pub fn revoke(&self, id: i64) -> Result<(), String> {
        self.post("/v3/lease/revoke", json!({"ID": id.to_string()})).map(|_| ())
    }

    /// Seconds left on a lease (-1 when it has expired).
    pub fn time_to_live(&self, id: i64) -> Result<i64, String> {
        let v = self.post("/v3/lease/timetolive", json!({"ID": id.to_string()}))?;
        Ok(if v.get("TTL").is_some() { int(&v["TTL"]) } else { 0 })
    }

    /// Watches every key under `prefix` from `revision`, calling `on` with each batch of events
    /// until `on` returns false, `stop()` is true (checked each second), or the watch is lost
    /// (error, EOF, compaction: an Err, after which the caller resyncs).
    pub fn watch(
        &self,
        prefix: &str,
        revision: i64,
        stop: &dyn Fn() -> bool,
        on: &mut dyn FnMut(Vec<Event>, i64) -> bool,
    ) -> Result<(), String> {
        let body = json!({"create_request": {"key": b64(prefix.as_bytes()), "range_end": b64(&prefix_end(prefix)), "start_revision": revision.to_string()}});
        let mut last_err = String::new();
        let mut stream = None;
        for e in &self.endpoints {
            match connect(e, "/v3/watch", &body.to_string()) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(err) => last_err = err,
            }
        }
        let mut s = stream.ok_or(last_err)?;
        s.set_read_timeout(Some(Duration::from_secs(1))).map_err(|e| e.to_string())?;
        let (mut raw, mut data) = (Vec::new(), Vec::new());
        let mut head: Option<usize> = None;
        let mut chunk = [0u8; 16384];
        let mut idle = 0u32;
        loop {
            if stop() {
                return Ok(());
            }
            match s.read(&mut chunk) {
                Ok(0) => return Err("watch: connection closed".into()),
                Ok(n) => {
                    raw.extend_from_slice(&chunk[..n]);
                    idle = 0;
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    idle += 1;
                    // no bytes for a minute: etcd sends nothing on an idle watch, so reconnect
                    // to find out whether it is still there
                    if idle >= 60 {
                        return Err("watch: idle for 60 s, reconnecting".into());
                    }
                    continue;
                }
                Err(e) => return Err(format!("watch: {e}")),
            }
            if head.is_none() {
                match parse_head(&raw) {
                    None => continue,
                    Some(Err(e)) => return Err(e),
                    Some(Ok((status, _, at))) => {
                        if status != 200 {
                            return Err(format!("watch: HTTP {status}"));
                        }
                        raw.drain(..at);
                        head = Some(at);
                    }
                }
            }
            let (d, used, last) = dechunk(&raw);
            raw.drain(..used);
            data.extend_from_slice(&d);
            let (vals, used) = json_values(&data);
            data.drain(..used);
            for v in vals {
                let r = &v["result"];
                if v.get("error").is_some() {
                    return Err(format!("watch: {}", v["error"]));
                }
                if r.get("canceled").and_then(Value::as_bool) == Some(true) || int(&r["compact_revision"]) > 0 {
                    return Err(format!("watch canceled (compacted to revision {})", int(&r["compact_revision"])));
                }
                let events: Vec<Event> = r["events"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|e| {
                                let k = kv(&e["kv"]);
                                if e["type"].as_str() == Some("DELETE") {
                                    Event::Delete(k.key)
                                } else {
                                    Event::Put(k)
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if !events.is_empty() && !on(events, int(&r["header"]["revision"])) {
                    return Ok(());
                }
            }
            if last {
                return Err("watch: stream ended".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
    }

    #[test]
    fn chunks_decode_incrementally() {
        let s = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        assert_eq!(dechunk(s), (b"hello world".to_vec(), s.len(), true));
        // a chunk cut short is left for the next read
        assert_eq!(dechunk(&s[..12]), (b"hello".to_vec(), 10, false));
    }

    #[test]
    fn heads_and_values() {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxx";
        assert_eq!(parse_head(r).unwrap().unwrap(), (200, true, r.len() - 2));
        assert!(parse_head(b"HTTP/1.1 200").is_none());
        let (v, used) = json_values(b"{\"a\":1}\n{\"b\":2}\n{\"c\"");
        assert_eq!((v.len(), used), (2, 15));
    }

    #[test]
    fn kvs_decode() {
        let k = kv(&json!({"key": "Zm9v", "value": "YmFy", "lease": "7", "mod_revision": "3"}));
        assert_eq!((k.key.as_str(), k.value.as_slice(), k.lease, k.mod_revision), ("foo", &b"bar"[..], 7, 3));
        assert!(Client::new("https://x:1").is_err());
        assert_eq!(Client::new("http://a:1/, http://b:2").unwrap().endpoints, ["http://a:1", "http://b:2"]);
    }
}

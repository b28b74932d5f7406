//! A real Prometheus 2.42 fed with a [`DataSet`] through promtool's
//! OpenMetrics backfill, and a tiny HTTP client for its query API (std only:
//! loopback, HTTP/1.0, so no chunked bodies to decode).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pharos_model::{Labels, Sample};
use serde_json::Value as Json;

use crate::data::DataSet;

/// promtool and prometheus, from `PROMTOOL`/`PROMETHEUS` or `PATH`.
pub fn binaries() -> Option<(PathBuf, PathBuf)> {
    Some((
        find("PROMTOOL", "promtool")?,
        find("PROMETHEUS", "prometheus")?,
    ))
}

fn find(env: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A running Prometheus; killed on drop so a failing test leaves nothing
/// behind.
pub struct Prometheus {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port. The listener is dropped before Prometheus binds, so
/// another process could take it in between; on loopback that is rare, and
/// start() then fails loudly with Prometheus' log rather than hanging.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Prometheus {
    pub fn start(promtool: &Path, prometheus: &Path, data: &DataSet) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let om = dir.path().join("data.om");
        std::fs::write(&om, data.to_openmetrics()).map_err(|e| e.to_string())?;
        let tsdb = dir.path().join("tsdb");
        let out = Command::new(promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&om)
            .arg(&tsdb)
            .output()
            .map_err(|e| format!("running promtool: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "promtool failed: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(
            &cfg,
            "global:\n  scrape_interval: 15s\n  evaluation_interval: 1m\n",
        )
        .map_err(|e| e.to_string())?;
        let log =
            std::fs::File::create(dir.path().join("prometheus.log")).map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let port = free_port().map_err(|e| e.to_string())?;
        let child = Command::new(prometheus)
            .arg(format!("--storage.tsdb.path={}", tsdb.display()))
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=100y")
            .arg("--query.lookback-delta=5m")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("starting prometheus: {e}"))?;
        let mut p = Self { child, port, dir };
        p.wait_ready()?;
        Ok(p)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("prometheus exited with {status}:\n{}", self.log()));
            }
            if matches!(self.request("GET", "/-/ready", ""), Ok((200, _))) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("prometheus not ready after 30s:\n{}", self.log()))
    }

    fn request(&self, method: &str, path: &str, form: &str) -> Result<(u16, String), String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        let req = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        );
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
        let text = String::from_utf8(buf).map_err(|e| e.to_string())?;
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| "malformed HTTP response".to_string())?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("bad status line: {head}"))?;
        Ok((status, body.to_string()))
    }

    fn api(&self, path: &str, params: &[(&str, String)]) -> Result<Json, String> {
        let form = params
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let (_, body) = self.request("POST", path, &form)?;
        serde_json::from_str(&body).map_err(|e| format!("bad JSON from prometheus: {e}: {body}"))
    }

    /// The API's JSON answer (success or error envelope) to an instant query.
    pub fn instant(&self, query: &str, t_ms: i64) -> Result<Json, String> {
        self.api(
            "/api/v1/query",
            &[("query", query.into()), ("time", secs(t_ms))],
        )
    }

    pub fn range(&self, query: &str, start: i64, end: i64, step_ms: i64) -> Result<Json, String> {
        self.api(
            "/api/v1/query_range",
            &[
                ("query", query.into()),
                ("start", secs(start)),
                ("end", secs(end)),
                ("step", secs(step_ms)),
            ],
        )
    }

    /// Every sample Prometheus stored, read back through a range selector,
    /// so the engine under test sees exactly what Prometheus evaluates over
    /// (promtool turns float seconds into milliseconds with its own rounding).
    pub fn read_back(&self, from: i64, to: i64) -> Result<Vec<(Labels, Vec<Sample>)>, String> {
        let window_s = (to - from) / 1000 + 60;
        let q = format!("{{__name__=~\".+\"}}[{window_s}s]");
        let j = self.instant(&q, to)?;
        let data = j
            .get("data")
            .and_then(|d| d.get("result"))
            .and_then(Json::as_array)
            .ok_or_else(|| format!("read back failed: {j}"))?;
        let mut out = Vec::with_capacity(data.len());
        for s in data {
            let labels = labels_of(s.get("metric"))?;
            let mut samples = Vec::new();
            for p in s
                .get("values")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                let (t, v) = point(p)?;
                samples.push(Sample::new(t, v));
            }
            out.push((labels, samples));
        }
        Ok(out)
    }
}

pub fn secs(ms: i64) -> String {
    if ms < 0 {
        return format!("-{}", secs(ms.saturating_neg()));
    }
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn labels_of(j: Option<&Json>) -> Result<Labels, String> {
    let m = j
        .and_then(Json::as_object)
        .ok_or_else(|| "series without metric".to_string())?;
    Ok(Labels::from_pairs(m.iter().map(|(k, v)| {
        (k.clone(), v.as_str().unwrap_or_default().to_string())
    })))
}

/// `[<float seconds>, "<value>"]` as the API writes a point.
pub fn point(p: &Json) -> Result<(i64, f64), String> {
    let t = p
        .get(0)
        .and_then(Json::as_f64)
        .ok_or_else(|| format!("bad point {p}"))?;
    let v = p
        .get(1)
        .and_then(Json::as_str)
        .ok_or_else(|| format!("bad point {p}"))?;
    Ok(((t * 1000.0).round() as i64, parse_value(v)?))
}

pub fn parse_value(v: &str) -> Result<f64, String> {
    match v {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => v.parse().map_err(|e| format!("bad value {v:?}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_parses_api_pieces() {
        assert_eq!(urlencode("a{b=\"c\"} + 1"), "a%7Bb%3D%22c%22%7D%20%2B%201");
        assert_eq!(secs(1_700_000_000_123), "1700000000.123");
        assert_eq!(secs(-1), "-0.001");
        let p: Json = serde_json::json!([1700000000.5, "+Inf"]);
        assert_eq!(point(&p).unwrap(), (1_700_000_000_500, f64::INFINITY));
        assert!(parse_value("NaN").unwrap().is_nan());
        assert!(parse_value("x").is_err());
    }
}

//! Starting binaries, finding free ports, waiting for readiness.

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Ports for every listener a config can name.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub metrics: u16,
    pub logs: u16,
    pub traces: u16,
    pub alerts: u16,
    pub grpc: u16,
    pub otlp_grpc: u16,
    pub otlp_http: u16,
}

impl Ports {
    pub fn new() -> Self {
        Self {
            metrics: free_port(),
            logs: free_port(),
            traces: free_port(),
            alerts: free_port(),
            grpc: free_port(),
            otlp_grpc: free_port(),
            otlp_http: free_port(),
        }
    }

    /// The HTTP ports with `/ready`.
    pub fn http(&self) -> [(&'static str, u16); 5] {
        [
            ("metrics", self.metrics),
            ("logs", self.logs),
            ("traces", self.traces),
            ("alerts", self.alerts),
            ("otlp-http", self.otlp_http),
        ]
    }
}

/// A config placing every listener on loopback and all state under `dir`.
pub fn config_yaml(ports: &Ports, dir: &Path, extra_server: &str) -> String {
    let d = dir.display();
    format!(
        r#"server:
  grpc_listen_address: 127.0.0.1:{grpc}
  graceful_shutdown_timeout: 5s
  log_level: info
{extra_server}
storage:
  backend: filesystem
  filesystem:
    path: {d}/objects
metrics:
  http_listen_address: 127.0.0.1:{metrics}
  local_path: {d}/local/metrics
logs:
  http_listen_address: 127.0.0.1:{logs}
  local_path: {d}/local/logs
traces:
  http_listen_address: 127.0.0.1:{traces}
  otlp_grpc_listen_address: 127.0.0.1:{otlp_grpc}
  otlp_http_listen_address: 127.0.0.1:{otlp_http}
  local_path: {d}/local/traces
alerts:
  http_listen_address: 127.0.0.1:{alerts}
  local_path: {d}/local/alerts
  cluster_listen_address: ""
"#,
        grpc = ports.grpc,
        metrics = ports.metrics,
        logs = ports.logs,
        traces = ports.traces,
        otlp_grpc = ports.otlp_grpc,
        otlp_http = ports.otlp_http,
        alerts = ports.alerts,
    )
}

pub fn bin(name: &str) -> PathBuf {
    let path = match name {
        "pharos" => env!("CARGO_BIN_EXE_pharos"),
        "metrics-server" => env!("CARGO_BIN_EXE_metrics-server"),
        "log-ingester" => env!("CARGO_BIN_EXE_log-ingester"),
        "log-querier" => env!("CARGO_BIN_EXE_log-querier"),
        "trace-distributor" => env!("CARGO_BIN_EXE_trace-distributor"),
        "trace-ingester" => env!("CARGO_BIN_EXE_trace-ingester"),
        "trace-querier" => env!("CARGO_BIN_EXE_trace-querier"),
        "trace-compactor" => env!("CARGO_BIN_EXE_trace-compactor"),
        "alert-router" => env!("CARGO_BIN_EXE_alert-router"),
        other => panic!("no binary {other}"),
    };
    PathBuf::from(path)
}

/// A running binary, killed on drop so a failing test leaves nothing behind.
pub struct Proc {
    pub child: Option<Child>,
    pub name: String,
}

impl Proc {
    pub fn start(name: &str, args: &[&str], cwd: &Path) -> Self {
        let child = Command::new(bin(name))
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Self {
            child: Some(child),
            name: name.to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -{sig} {}", self.pid());
    }

    /// Waits up to `limit` for exit; returns the status and stderr.
    pub fn wait_exit(&mut self, limit: Duration) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("running");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                let mut err = String::new();
                if let Some(mut s) = child.stderr.take() {
                    let _ = s.read_to_string(&mut err);
                }
                return (status, err);
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                let mut err = String::new();
                if let Some(mut s) = child.stderr.take() {
                    let _ = s.read_to_string(&mut err);
                }
                panic!(
                    "{} did not exit within {limit:?}; stderr:\n{err}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Panics with stderr if the process already exited.
    pub fn assert_running(&mut self) {
        let child = self.child.as_mut().expect("running");
        if let Some(status) = child.try_wait().expect("try_wait") {
            let mut err = String::new();
            if let Some(mut s) = child.stderr.take() {
                let _ = s.read_to_string(&mut err);
            }
            panic!("{} exited early with {status}; stderr:\n{err}", self.name);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

/// Polls `url` until it answers 200, failing after `limit`.
pub async fn wait_ready(proc: &mut Proc, url: &str, limit: Duration) {
    let c = client();
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        proc.assert_running();
        match c.get(url).send().await {
            Ok(r) if r.status() == 200 => return,
            Ok(r) => last = format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} not ready within {limit:?}: {last}");
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// `promtool`, which CI installs; locally its absence skips the check
/// loudly, in CI it fails the test.
pub fn promtool() -> Option<PathBuf> {
    let found = which("promtool");
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool not installed: .ci/run installs Debian's prometheus package"
        );
        eprintln!("SKIPPING promtool checks: promtool not on PATH");
    }
    found
}

/// Runs `promtool check metrics` on an exposition; returns its complaint.
pub fn promtool_check_metrics(promtool: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The body of a GET as text (a `/metrics` page, say).
pub async fn get_text(c: &reqwest::Client, url: &str) -> String {
    c.get(url).send().await.unwrap().text().await.unwrap()
}

/// The sum of every sample in exposition `text` whose line starts with
/// `prefix` (a metric name, or a name and the start of its labels).
pub fn metric_value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub async fn get_json(c: &reqwest::Client, url: &str) -> serde_json::Value {
    c.get(url).send().await.unwrap().json().await.unwrap()
}

/// Polls a JSON API until `pred` holds, failing after 40 s with `what` and
/// the last answer.
pub async fn wait_for<F: Fn(&serde_json::Value) -> bool>(
    c: &reqwest::Client,
    url: &str,
    what: &str,
    pred: F,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let v = get_json(c, url).await;
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: {v:#}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An upstream program (node-exporter, Prometheus, Alertmanager) started
/// for a test with its output discarded, killed when dropped so a failing
/// test leaves no process behind.
pub struct Peer(Child);

impl Peer {
    pub fn spawn(program: &Path, args: &[String]) -> Self {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        Self(child)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

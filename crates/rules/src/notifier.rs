//! Alertmanager v2 client with Prometheus' notifier semantics: a bounded
//! queue dropping the oldest alerts, batches of 64 sent to every
//! Alertmanager at once, external labels added to each alert.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use pharos_model::Labels;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::error::RulesError;
use crate::group::AlertSender;
use crate::rule::Alert;

pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
pub const MAX_BATCH: usize = 64;

/// One `alerting.alertmanagers` entry of prometheus.yml (the subset this
/// client honours; other keys are ignored here and should be warned about
/// by the config loader).
#[derive(Debug, Clone, Deserialize)]
pub struct AlertmanagerConfig {
    #[serde(default)]
    pub static_configs: Vec<StaticConfig>,
    #[serde(default)]
    pub file_sd_configs: Vec<FileSdConfig>,
    #[serde(default)]
    pub path_prefix: String,
    #[serde(default = "default_scheme")]
    pub scheme: String,
    #[serde(default = "default_timeout")]
    pub timeout: pharos_config::Duration,
    #[serde(default = "default_api")]
    pub api_version: String,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Keys Prometheus knows that this client does not honour yet
    /// (`tls_config`, `relabel_configs`, other service discoveries...).
    #[serde(flatten)]
    pub unsupported: BTreeMap<String, serde_yaml::Value>,
}

fn default_scheme() -> String {
    "http".into()
}
fn default_timeout() -> pharos_config::Duration {
    pharos_config::Duration::from_secs(10)
}
fn default_api() -> String {
    "v2".into()
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        Self {
            static_configs: Vec::new(),
            file_sd_configs: Vec::new(),
            path_prefix: String::new(),
            scheme: default_scheme(),
            timeout: default_timeout(),
            api_version: default_api(),
            basic_auth: None,
            unsupported: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct StaticConfig {
    #[serde(default)]
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct FileSdConfig {
    #[serde(default)]
    pub files: Vec<String>,
}

#[derive(Clone, Default, Deserialize)]
pub struct BasicAuth {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &"<secret>")
            .finish()
    }
}

impl AlertmanagerConfig {
    /// Names of configured keys that are ignored, for a loud start-up
    /// warning.
    pub fn unsupported_keys(&self) -> Vec<&str> {
        self.unsupported.keys().map(String::as_str).collect()
    }

    pub fn validate(&self) -> Result<(), RulesError> {
        if self.api_version != "v2" {
            return Err(RulesError::Config(format!(
                "unsupported Alertmanager api_version {:?}: only v2 is supported",
                self.api_version
            )));
        }
        if self.scheme != "http" && self.scheme != "https" {
            return Err(RulesError::Config(format!(
                "unsupported scheme {:?} for Alertmanager",
                self.scheme
            )));
        }
        Ok(())
    }

    /// `scheme://host:port{path_prefix}/api/v2/alerts` for every target,
    /// static ones first, then those listed in file SD files.
    pub fn urls(&self) -> Vec<String> {
        let mut hosts: Vec<String> = self
            .static_configs
            .iter()
            .flat_map(|s| s.targets.iter().cloned())
            .collect();
        for fsd in &self.file_sd_configs {
            for pat in &fsd.files {
                let Ok(paths) = glob::glob(pat) else { continue };
                for p in paths.flatten() {
                    match read_file_sd(&p) {
                        Ok(t) => hosts.extend(t),
                        Err(e) => {
                            tracing::warn!(file = %p.display(), err = %e, "reading alertmanager file_sd failed")
                        }
                    }
                }
            }
        }
        let prefix = self.path_prefix.trim_end_matches('/');
        hosts
            .into_iter()
            .map(|h| format!("{}://{h}{prefix}/api/v2/alerts", self.scheme))
            .collect()
    }
}

#[derive(Deserialize)]
struct SdGroup {
    #[serde(default)]
    targets: Vec<String>,
}

fn read_file_sd(p: &std::path::Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(p).map_err(|e| e.to_string())?;
    let groups: Vec<SdGroup> = if p.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| e.to_string())?
    } else {
        serde_yaml::from_str(&text).map_err(|e| e.to_string())?
    };
    Ok(groups.into_iter().flat_map(|g| g.targets).collect())
}

/// An alert as posted to Alertmanager's v2 API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AmAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

/// RFC 3339 with milliseconds in UTC, as Go's `strfmt.DateTime` writes it.
pub fn rfc3339_ms(ms: i64) -> String {
    pharos_core::time::rfc3339_millis(ms)
}

/// Prometheus' `TableLinkForExpression`.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    format!(
        "{external_url}/graph?g0.expr={}&g0.tab=1",
        pharos_template::funcs::query_escape(expr)
    )
}

/// Counters behind `prometheus_notifications_*`.
#[derive(Debug, Default)]
pub struct NotifierMetrics {
    pub dropped: AtomicU64,
    /// Per Alertmanager URL: (alerts sent, send errors).
    pub per_am: Mutex<BTreeMap<String, (u64, u64)>>,
}

#[derive(Debug, Clone)]
pub struct NotifierOptions {
    pub queue_capacity: usize,
    pub external_labels: Labels,
    /// Extra attempts per batch and Alertmanager. Prometheus makes one
    /// attempt (alerts are re-sent every resend delay anyway), so 0 is the
    /// default.
    pub max_retries: usize,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        Self {
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            external_labels: Labels::new(),
            max_retries: 0,
        }
    }
}

pub struct Notifier {
    opts: NotifierOptions,
    ams: Vec<AlertmanagerConfig>,
    queue: Mutex<VecDeque<AmAlert>>,
    more: Notify,
    client: reqwest::Client,
    pub metrics: NotifierMetrics,
}

impl Notifier {
    pub fn new(opts: NotifierOptions, ams: Vec<AlertmanagerConfig>) -> Result<Self, RulesError> {
        for a in &ams {
            a.validate()?;
        }
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| RulesError::Config(e.to_string()))?;
        Ok(Notifier {
            opts,
            ams,
            queue: Mutex::new(VecDeque::new()),
            more: Notify::new(),
            client,
            metrics: NotifierMetrics::default(),
        })
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<AmAlert>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn queue_len(&self) -> usize {
        self.queue().len()
    }

    /// Queues alerts, adding external labels an alert does not already
    /// carry; when the queue is full the oldest alerts are dropped.
    pub fn send(&self, mut alerts: Vec<AmAlert>) {
        for a in &mut alerts {
            for l in &self.opts.external_labels {
                a.labels
                    .entry(l.name.clone())
                    .or_insert_with(|| l.value.clone());
            }
        }
        alerts.retain(|a| !a.labels.is_empty());
        let cap = self.opts.queue_capacity;
        let mut q = self.queue();
        if alerts.len() > cap {
            let d = alerts.len() - cap;
            alerts.drain(..d);
            self.metrics.dropped.fetch_add(d as u64, Ordering::Relaxed);
            tracing::warn!(
                num_dropped = d,
                "alert batch larger than queue capacity, dropping alerts"
            );
        }
        let over = (q.len() + alerts.len()).saturating_sub(cap);
        if over > 0 {
            q.drain(..over);
            self.metrics
                .dropped
                .fetch_add(over as u64, Ordering::Relaxed);
            tracing::warn!(
                num_dropped = over,
                "alert notification queue full, dropping alerts"
            );
        }
        q.extend(alerts);
        drop(q);
        self.more.notify_one();
    }

    fn next_batch(&self) -> Vec<AmAlert> {
        let mut q = self.queue();
        let n = q.len().min(MAX_BATCH);
        q.drain(..n).collect()
    }

    /// Sends queued alerts until told to stop.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = self.more.notified() => {}
                _ = stop.changed() => return,
            }
            loop {
                let batch = self.next_batch();
                if batch.is_empty() {
                    break;
                }
                if !self.send_all(&batch).await {
                    self.metrics
                        .dropped
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
            }
        }
    }

    /// Posts one batch to every Alertmanager concurrently; true when at
    /// least one accepted it.
    pub async fn send_all(&self, batch: &[AmAlert]) -> bool {
        let body = match serde_json::to_vec(batch) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(err = %e, "encoding alerts failed");
                return false;
            }
        };
        let mut futs = Vec::new();
        for am in &self.ams {
            for url in am.urls() {
                futs.push(self.send_one(am, url, &body, batch.len()));
            }
        }
        if futs.is_empty() {
            return false;
        }
        let results = futures_join_all(futs).await;
        results.into_iter().any(|ok| ok)
    }

    async fn send_one(&self, am: &AlertmanagerConfig, url: String, body: &[u8], n: usize) -> bool {
        let mut ok = false;
        for attempt in 0..=self.opts.max_retries {
            let mut req = self
                .client
                .post(&url)
                .timeout(am.timeout.as_std())
                .header("Content-Type", "application/json")
                .header("User-Agent", "Prometheus/2.42.0")
                .body(body.to_vec());
            if let Some(b) = &am.basic_auth {
                let password = match &b.password_file {
                    Some(p) => std::fs::read_to_string(p)
                        .map(|s| s.trim().to_string())
                        .unwrap_or_default(),
                    None => b.password.clone(),
                };
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{password}", b.username));
                req = req.header("Authorization", format!("Basic {token}"));
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => {
                    ok = true;
                    break;
                }
                Ok(r) => {
                    tracing::error!(alertmanager = %url, count = n, attempt, status = r.status().as_u16(), "error sending alert")
                }
                Err(e) => {
                    tracing::error!(alertmanager = %url, count = n, attempt, err = %e, "error sending alert")
                }
            }
        }
        let mut m = self
            .metrics
            .per_am
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let e = m.entry(url).or_default();
        e.0 += n as u64;
        if !ok {
            e.1 += 1;
        }
        ok
    }

    /// The `prometheus_notifications_*` metrics in text format.
    pub fn render_metrics(&self) -> String {
        let mut s = String::new();
        let per = self
            .metrics
            .per_am
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        s.push_str("# TYPE prometheus_notifications_sent_total counter\n");
        for (url, (sent, _)) in per.iter() {
            s.push_str(&format!(
                "prometheus_notifications_sent_total{{alertmanager={url:?}}} {sent}\n"
            ));
        }
        s.push_str("# TYPE prometheus_notifications_errors_total counter\n");
        for (url, (_, errs)) in per.iter() {
            s.push_str(&format!(
                "prometheus_notifications_errors_total{{alertmanager={url:?}}} {errs}\n"
            ));
        }
        s.push_str(&format!(
            "# TYPE prometheus_notifications_dropped_total counter\nprometheus_notifications_dropped_total {}\n",
            self.metrics.dropped.load(Ordering::Relaxed)
        ));
        s.push_str(&format!(
            "# TYPE prometheus_notifications_queue_length gauge\nprometheus_notifications_queue_length {}\n",
            self.queue_len()
        ));
        s.push_str(&format!(
            "# TYPE prometheus_notifications_queue_capacity gauge\nprometheus_notifications_queue_capacity {}\n",
            self.opts.queue_capacity
        ));
        let n: usize = self.ams.iter().map(|a| a.urls().len()).sum();
        s.push_str(&format!(
            "# TYPE prometheus_notifications_alertmanagers_discovered gauge\nprometheus_notifications_alertmanagers_discovered {n}\n"
        ));
        s
    }
}

/// Awaits all futures concurrently without pulling in `futures`.
async fn futures_join_all<F: std::future::Future<Output = bool>>(futs: Vec<F>) -> Vec<bool> {
    let mut set = Vec::with_capacity(futs.len());
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out = vec![None; set.len()];
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_some() {
                continue;
            }
            match f.as_mut().poll(cx) {
                std::task::Poll::Ready(v) => out[i] = Some(v),
                std::task::Poll::Pending => pending = true,
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|v| v.unwrap_or(false)).collect()
}

/// Bridges rule evaluation to the notifier (Prometheus' `SendAlerts`).
pub struct NotifierSender {
    pub notifier: Arc<Notifier>,
    pub external_url: String,
}

/// Converts rule alerts as `SendAlerts` does: `startsAt` is when the alert
/// fired, `endsAt` its resolve time or else `ValidUntil`.
pub fn to_am_alerts(external_url: &str, expr: &str, alerts: &[Alert]) -> Vec<AmAlert> {
    let url = generator_url(external_url, expr);
    alerts
        .iter()
        .map(|a| AmAlert {
            labels: a
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect(),
            annotations: a.annotations.clone(),
            starts_at: a
                .fired_at
                .map(rfc3339_ms)
                .unwrap_or_else(|| "0001-01-01T00:00:00.000Z".into()),
            ends_at: a
                .resolved_at
                .or(a.valid_until)
                .map(rfc3339_ms)
                .unwrap_or_else(|| "0001-01-01T00:00:00.000Z".into()),
            generator_url: url.clone(),
        })
        .collect()
}

impl AlertSender for NotifierSender {
    fn send(&self, expr: &str, alerts: Vec<Alert>) {
        self.notifier
            .send(to_am_alerts(&self.external_url, expr, &alerts));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn alert(name: &str) -> AmAlert {
        AmAlert {
            labels: [("alertname".to_string(), name.to_string())].into(),
            annotations: BTreeMap::new(),
            starts_at: rfc3339_ms(0),
            ends_at: rfc3339_ms(1000),
            generator_url: String::new(),
        }
    }

    #[test]
    fn time_format() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            generator_url("http://p:9090", "up == 0"),
            "http://p:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1"
        );
    }

    #[test]
    fn queue_drops_oldest_and_adds_external_labels() {
        let n = Notifier::new(
            NotifierOptions {
                queue_capacity: 3,
                external_labels: Labels::from_pairs([("region", "eu"), ("alertname", "x")]),
                max_retries: 0,
            },
            vec![],
        )
        .unwrap();
        n.send((0..2).map(|i| alert(&format!("a{i}"))).collect());
        n.send((2..4).map(|i| alert(&format!("a{i}"))).collect());
        assert_eq!(n.metrics.dropped.load(Ordering::Relaxed), 1);
        let b = n.next_batch();
        let names: Vec<&str> = b.iter().map(|a| a.labels["alertname"].as_str()).collect();
        assert_eq!(names, vec!["a1", "a2", "a3"]);
        assert_eq!(b[0].labels["region"], "eu");
        n.send((0..5).map(|i| alert(&format!("b{i}"))).collect());
        assert_eq!(n.metrics.dropped.load(Ordering::Relaxed), 3);
        assert_eq!(n.queue_len(), 3);
    }

    #[test]
    fn config_defaults_and_unsupported_keys() {
        let c: AlertmanagerConfig = serde_yaml::from_str(
            "static_configs: [{targets: ['am:9093']}]\npath_prefix: /x\ntls_config: {}\n",
        )
        .unwrap();
        assert_eq!(c.timeout, pharos_config::Duration::from_secs(10));
        assert_eq!(c.urls(), vec!["http://am:9093/x/api/v2/alerts"]);
        assert_eq!(c.unsupported_keys(), vec!["tls_config"]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("am.json"),
            r#"[{"targets": ["a:1", "b:2"], "labels": {"x": "y"}}]"#,
        )
        .unwrap();
        let c = AlertmanagerConfig {
            scheme: "https".into(),
            file_sd_configs: vec![FileSdConfig {
                files: vec![dir.path().join("*.json").display().to_string()],
            }],
            ..Default::default()
        };
        assert_eq!(
            c.urls(),
            vec!["https://a:1/api/v2/alerts", "https://b:2/api/v2/alerts"]
        );
    }

    #[test]
    fn rejects_v1() {
        let c = AlertmanagerConfig {
            api_version: "v1".into(),
            ..Default::default()
        };
        assert!(Notifier::new(NotifierOptions::default(), vec![c]).is_err());
    }

    /// A one-shot HTTP server answering `status` and handing back the
    /// request it got.
    async fn server(status: u16) -> (String, tokio::task::JoinHandle<String>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let h = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut tmp = [0u8; 4096];
            loop {
                let n = s.read(&mut tmp).await.unwrap();
                buf.extend_from_slice(&tmp[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text[..i]
                        .lines()
                        .find_map(|l| {
                            let l = l.to_ascii_lowercase();
                            l.strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= i + 4 + len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let resp =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            s.write_all(resp.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&buf).to_string()
        });
        (addr, h)
    }

    #[tokio::test]
    async fn run_loop_delivers_queued_alerts_in_batches() {
        let (addr, srv) = server(200).await;
        let am = AlertmanagerConfig {
            static_configs: vec![StaticConfig {
                targets: vec![addr],
            }],
            ..Default::default()
        };
        let n = Arc::new(Notifier::new(NotifierOptions::default(), vec![am]).unwrap());
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(n.clone().run(rx));
        n.send((0..70).map(|i| alert(&format!("a{i}"))).collect());
        let req = srv.await.unwrap();
        let body = &req[req.find("\r\n\r\n").unwrap() + 4..];
        let got: Vec<AmAlert> = serde_json::from_str(body).unwrap();
        assert_eq!(got.len(), MAX_BATCH);
        assert_eq!(got[0].labels["alertname"], "a0");
        let _ = tx.send(true);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn posts_to_every_alertmanager_independently() {
        let (ok_addr, ok) = server(200).await;
        let (bad_addr, bad) = server(500).await;
        let am = AlertmanagerConfig {
            static_configs: vec![StaticConfig {
                targets: vec![ok_addr.clone(), bad_addr.clone()],
            }],
            path_prefix: "/am/".into(),
            basic_auth: Some(BasicAuth {
                username: "u".into(),
                password: "p".into(),
                password_file: None,
            }),
            ..Default::default()
        };
        let n = Notifier::new(NotifierOptions::default(), vec![am]).unwrap();
        assert!(n.send_all(&[alert("A")]).await);
        let req = ok.await.unwrap();
        assert!(req.starts_with("POST /am/api/v2/alerts HTTP/1.1"), "{req}");
        assert!(
            req.contains("authorization: Basic dTpw") || req.contains("Authorization: Basic dTpw")
        );
        let body = &req[req.find("\r\n\r\n").unwrap() + 4..];
        let got: Vec<AmAlert> = serde_json::from_str(body).unwrap();
        assert_eq!(got, vec![alert("A")]);
        bad.await.unwrap();
        let per = n.metrics.per_am.lock().unwrap().clone();
        assert_eq!(per[&format!("http://{ok_addr}/am/api/v2/alerts")], (1, 0));
        assert_eq!(per[&format!("http://{bad_addr}/am/api/v2/alerts")], (1, 1));
    }
}

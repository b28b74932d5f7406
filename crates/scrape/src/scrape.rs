//! Scrape loops and the manager that runs them.
//!
//! Each target gets a tokio task that scrapes it every interval, at an
//! offset within the interval derived from the target's hash so a pool's
//! targets do not all fire at once. A scrape's samples, its staleness
//! markers and its report series (`up`, `scrape_duration_seconds`, ...) go
//! to the [`ScrapeSink`] in one call, as Prometheus commits one appender per
//! scrape.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration as StdDuration, Instant, SystemTime, UNIX_EPOCH};

use pharos_model::{Labels, METRIC_NAME, Sample};
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{HttpClientConfig, PrometheusConfig, ScrapeConfig};
use crate::ec2_sd::Ec2Discovery;
use crate::error::ScrapeError;
use crate::exposition::{self, Format, Metadata};
use crate::file_sd::FileDiscovery;
use crate::oauth2::TokenSource;
use crate::relabel;
use crate::target::{self, DroppedTarget, Target, TargetGroup};

/// What Prometheus 2.42 asks targets for.
pub const ACCEPT_HEADER: &str =
    "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

const USER_AGENT: &str = concat!("Pharos/", env!("CARGO_PKG_VERSION"));

/// One series and its samples, as handed to the sink.
pub type Series = (Labels, Vec<Sample>);

/// A processed scrape body.
#[derive(Debug, Clone, Default)]
pub struct Processed {
    /// Samples and staleness markers to append.
    pub series: Vec<Series>,
    pub counts: Counts,
    /// Metadata that is new or changed since the last scrape.
    pub changed_metadata: Vec<Metadata>,
}

/// Why a body was rejected, with the counts reached before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub error: String,
    pub counts: Counts,
}

/// Where scraped samples go; the caller bridges it to its storage.
pub trait ScrapeSink: Send + Sync {
    /// Appends one scrape's series: samples, staleness markers and report
    /// series. An error is logged; the scrape itself is not retried.
    fn append(&self, series: Vec<Series>) -> Result<(), String>;
    /// Records a metric family's metadata when a target reports it or it
    /// changes.
    fn set_metadata(&self, metric: &str, kind: &str, help: &str, unit: &str);
}

/// A target's health as `/api/v1/targets` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetHealth {
    Unknown,
    Up,
    Down,
}

/// The live state of one target.
#[derive(Debug, Clone)]
pub struct TargetStatus {
    pub target: Target,
    pub health: TargetHealth,
    pub last_error: String,
    /// Milliseconds since the epoch of the last scrape's start.
    pub last_scrape_ms: Option<i64>,
    pub last_scrape_duration: StdDuration,
    /// Metadata from the last successful scrape.
    pub metadata: Vec<Metadata>,
}

/// Limits applied to each scrape, from the job's config.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub sample_limit: u64,
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    pub body_size_limit: u64,
}

impl Limits {
    fn from_config(cfg: &ScrapeConfig) -> Self {
        Limits {
            sample_limit: cfg.sample_limit,
            label_limit: cfg.label_limit,
            label_name_length_limit: cfg.label_name_length_limit,
            label_value_length_limit: cfg.label_value_length_limit,
            body_size_limit: cfg.body_size_limit.as_u64(),
        }
    }
}

/// Counts of one processed scrape, reported as series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub scraped: u64,
    pub post_relabel: u64,
    pub series_added: u64,
}

/// The per-target state a scrape loop carries between scrapes (and hands
/// over when a reload restarts it).
#[derive(Debug, Default, Clone)]
pub struct LoopState {
    /// Series of the last scrape subject to staleness (those without
    /// explicit timestamps).
    pub stale_tracked: HashSet<Labels>,
    /// Every series of the last scrape, for `scrape_series_added`.
    pub seen: HashSet<Labels>,
    metadata: BTreeMap<String, Metadata>,
    report_emitted: bool,
}

/// Turns scrape bodies into appends for one target. Synchronous so the
/// processing rules can be tested without a network.
pub struct TargetProcessor {
    target_labels: Labels,
    honor_labels: bool,
    honor_timestamps: bool,
    metric_relabel: Vec<relabel::RelabelConfig>,
    limits: Limits,
    pub state: LoopState,
    /// Set under the lock when a reload took `state` away: a scrape that
    /// finishes afterwards must not append or touch the state.
    retired: bool,
}

impl TargetProcessor {
    pub fn new(target: &Target, cfg: &ScrapeConfig) -> Self {
        TargetProcessor {
            target_labels: target.public_labels(),
            honor_labels: cfg.honor_labels,
            honor_timestamps: cfg.honor_timestamps,
            metric_relabel: cfg.metric_relabel_configs.clone(),
            limits: Limits::from_config(cfg),
            state: LoopState::default(),
            retired: false,
        }
    }

    /// Attaches the target's labels to a scraped series' labels.
    fn mutate(&self, mut lset: Labels) -> Labels {
        if self.honor_labels {
            for l in self.target_labels.iter() {
                if lset.get(&l.name).is_none() {
                    lset.set(&l.name, &l.value);
                }
            }
            return lset;
        }
        let mut conflicts: Vec<(String, String)> = Vec::new();
        for l in self.target_labels.iter() {
            if let Some(existing) = lset.get(&l.name) {
                conflicts.push((l.name.clone(), existing.to_owned()));
            }
            lset.set(&l.name, &l.value);
        }
        // Shorter names first, so `exported_` prefixes stack predictably.
        conflicts.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then(a.0.cmp(&b.0)));
        for (name, value) in conflicts {
            let mut new_name = format!("exported_{name}");
            while lset.get(&new_name).is_some() {
                new_name = format!("exported_{new_name}");
            }
            lset.set(&new_name, &value);
        }
        lset
    }

    fn check_label_limits(&self, lset: &Labels) -> Result<(), String> {
        let limits = &self.limits;
        let metric = trunc(lset.metric_name().unwrap_or(""), 50);
        if limits.label_limit > 0 && lset.len() as u64 > limits.label_limit {
            return Err(format!(
                "label_limit exceeded (metric: {metric}, number of labels: {}, limit: {})",
                lset.len(),
                limits.label_limit
            ));
        }
        for l in lset.iter() {
            if limits.label_name_length_limit > 0
                && l.name.len() as u64 > limits.label_name_length_limit
            {
                return Err(format!(
                    "label_name_length_limit exceeded (metric: {metric}, label name: {}, length: {}, limit: {})",
                    trunc(&l.name, 50),
                    l.name.len(),
                    limits.label_name_length_limit
                ));
            }
            if limits.label_value_length_limit > 0
                && l.value.len() as u64 > limits.label_value_length_limit
            {
                return Err(format!(
                    "label_value_length_limit exceeded (metric: {metric}, label name: {}, value: {:?}, length: {}, limit: {})",
                    trunc(&l.name, 50),
                    trunc(&l.value, 50),
                    l.value.len(),
                    limits.label_value_length_limit
                ));
            }
        }
        Ok(())
    }

    /// Processes one successful HTTP body scraped at `ts` (ms). On error
    /// nothing of the body is appended: the caller reports the failure with
    /// [`TargetProcessor::fail`].
    pub fn process(
        &mut self,
        body: &[u8],
        content_type: Option<&str>,
        ts: i64,
    ) -> Result<Processed, Rejected> {
        let format = Format::from_content_type(content_type);
        let parsed = exposition::parse_bytes(body, format).map_err(|e| Rejected {
            error: e.to_string(),
            counts: Counts::default(),
        })?;
        let mut counts = Counts {
            scraped: parsed.samples.len() as u64,
            ..Counts::default()
        };
        let mut out: Vec<Series> = Vec::with_capacity(parsed.samples.len());
        let mut seen: HashSet<Labels> = HashSet::with_capacity(parsed.samples.len());
        let mut tracked: HashSet<Labels> = HashSet::with_capacity(parsed.samples.len());
        for s in &parsed.samples {
            let lset = Labels::from_pairs(
                std::iter::once((METRIC_NAME, s.name))
                    .chain(s.labels.iter().map(|(n, v)| (*n, v.as_ref()))),
            );
            let lset = self.mutate(lset);
            let Some(lset) = relabel::process(&lset, &self.metric_relabel) else {
                continue;
            };
            if lset.is_empty() {
                continue;
            }
            if lset.metric_name().is_none() {
                return Err(Rejected {
                    error: "missing metric name (__name__ label)".into(),
                    counts,
                });
            }
            if !valid_series(&lset) {
                return Err(Rejected {
                    error: format!("invalid metric name or label names: {}", lset_string(&lset)),
                    counts,
                });
            }
            self.check_label_limits(&lset)
                .map_err(|error| Rejected { error, counts })?;
            if seen.contains(&lset) {
                // Prometheus rejects the duplicate and keeps the scrape.
                tracing::debug!(series = ?lset, "duplicate sample in scrape");
                continue;
            }
            counts.post_relabel += 1;
            if self.limits.sample_limit > 0 && counts.post_relabel > self.limits.sample_limit {
                return Err(Rejected {
                    error: "sample limit exceeded".into(),
                    counts,
                });
            }
            let t = match s.timestamp_ms {
                Some(t) if self.honor_timestamps => t,
                _ => {
                    tracked.insert(lset.clone());
                    ts
                }
            };
            if !self.state.seen.contains(&lset) {
                counts.series_added += 1;
            }
            seen.insert(lset.clone());
            out.push((lset, vec![Sample::new(t, s.value)]));
        }
        for gone in self.state.stale_tracked.difference(&tracked) {
            out.push((gone.clone(), vec![Sample::stale(ts)]));
        }
        self.state.stale_tracked = tracked;
        self.state.seen = seen;
        // Families that vanished from the target leave its metadata too.
        let mut changed = Vec::new();
        let mut metadata = BTreeMap::new();
        for m in parsed.metadata {
            if self.state.metadata.get(&m.name) != Some(&m) {
                changed.push(m.clone());
            }
            metadata.insert(m.name.clone(), m);
        }
        self.state.metadata = metadata;
        Ok(Processed {
            series: out,
            counts,
            changed_metadata: changed,
        })
    }

    /// A failed scrape: every series of the last scrape goes stale.
    pub fn fail(&mut self, ts: i64) -> Vec<Series> {
        let out = self
            .state
            .stale_tracked
            .drain()
            .map(|l| (l, vec![Sample::stale(ts)]))
            .collect();
        self.state.seen.clear();
        out
    }

    /// The report series of one scrape.
    pub fn report(
        &mut self,
        ts: i64,
        up: bool,
        duration: StdDuration,
        counts: Counts,
    ) -> Vec<Series> {
        self.state.report_emitted = true;
        let values = [
            ("up", if up { 1.0 } else { 0.0 }),
            ("scrape_duration_seconds", duration.as_secs_f64()),
            ("scrape_samples_scraped", counts.scraped as f64),
            (
                "scrape_samples_post_metric_relabeling",
                counts.post_relabel as f64,
            ),
            ("scrape_series_added", counts.series_added as f64),
        ];
        values
            .into_iter()
            .map(|(name, v)| (self.report_labels(name), vec![Sample::new(ts, v)]))
            .collect()
    }

    fn report_labels(&self, name: &str) -> Labels {
        let mut l = self.target_labels.clone();
        l.set(METRIC_NAME, name);
        l
    }

    /// Staleness markers for everything this target wrote, for when it goes
    /// away.
    pub fn end_of_run(&mut self, ts: i64) -> Vec<Series> {
        let mut out = self.fail(ts);
        if self.state.report_emitted {
            for name in [
                "up",
                "scrape_duration_seconds",
                "scrape_samples_scraped",
                "scrape_samples_post_metric_relabeling",
                "scrape_series_added",
            ] {
                out.push((self.report_labels(name), vec![Sample::stale(ts)]));
            }
        }
        out
    }
}

/// Metric relabeling can produce names the exposition formats cannot.
fn valid_series(lset: &Labels) -> bool {
    let name_ok = lset.metric_name().is_some_and(|n| {
        let mut b = n.bytes();
        b.next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
            && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
    });
    name_ok && lset.iter().all(|l| relabel::is_valid_label_name(&l.name))
}

/// `{a="b", c="d"}` as Prometheus prints label sets in errors.
fn lset_string(lset: &Labels) -> String {
    let inner: Vec<String> = lset
        .iter()
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

fn trunc(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Builds the HTTP client for a job from its HTTP options.
pub fn build_client(http: &HttpClientConfig) -> Result<reqwest::Client, ScrapeError> {
    let mut b = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .gzip(true)
        .redirect(if http.follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        });
    let tls = &http.tls_config;
    if let Some(ca) = &tls.ca_file {
        let pem = std::fs::read(ca).map_err(|e| {
            ScrapeError::Client(format!("unable to load specified CA cert {ca}: {e}"))
        })?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            ScrapeError::Client(format!("unable to use specified CA cert {ca}: {e}"))
        })? {
            b = b.add_root_certificate(cert);
        }
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let mut pem = std::fs::read(cert).map_err(|e| {
                ScrapeError::Client(format!("unable to read cert file {cert}: {e}"))
            })?;
            pem.push(b'\n');
            pem.extend(
                std::fs::read(key).map_err(|e| {
                    ScrapeError::Client(format!("unable to read key file {key}: {e}"))
                })?,
            );
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| ScrapeError::Client(format!("invalid client cert or key: {e}")))?;
            b = b.identity(identity);
        }
        (None, None) => {}
        _ => {
            return Err(ScrapeError::Client(
                "client cert file and client key file must both be specified".into(),
            ));
        }
    }
    if tls.insecure_skip_verify {
        b = b.danger_accept_invalid_certs(true);
    }
    // Prometheus 2.42 uses only `proxy_url`, never the *_PROXY variables.
    b = match &http.proxy_url {
        Some(url) if !url.is_empty() => b.proxy(
            reqwest::Proxy::all(url.as_str())
                .map_err(|e| ScrapeError::Client(format!("invalid proxy_url: {e}")))?,
        ),
        _ => b.no_proxy(),
    };
    if tls.server_name.is_some() {
        tracing::warn!("tls_config.server_name is not implemented yet; the URL's host is verified");
    }
    b.build().map_err(|e| ScrapeError::Client(e.to_string()))
}

fn read_secret_file(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| format!("unable to read file {path}: {e}"))
}

/// Fetches one scrape body; errors read as Prometheus' `lastError`.
async fn fetch(
    client: &reqwest::Client,
    http: &HttpClientConfig,
    oauth2: Option<&TokenSource>,
    url: &str,
    timeout: StdDuration,
    body_limit: u64,
) -> Result<(Vec<u8>, Option<String>), String> {
    let mut req = client
        .get(url)
        .header(reqwest::header::ACCEPT, ACCEPT_HEADER)
        .header(
            "X-Prometheus-Scrape-Timeout-Seconds",
            format!("{}", timeout.as_secs_f64()),
        );
    if let Some(basic) = &http.basic_auth {
        let password = match &basic.password_file {
            Some(f) => read_secret_file(f)?,
            None => basic.password.expose().to_owned(),
        };
        req = req.basic_auth(&basic.username, Some(password));
    } else if let Some(auth) = &http.authorization {
        let credentials = match &auth.credentials_file {
            Some(f) => read_secret_file(f)?,
            None => auth.credentials.expose().to_owned(),
        };
        req = req.header(
            reqwest::header::AUTHORIZATION,
            format!("{} {}", auth.scheme(), credentials),
        );
    }
    let work = async {
        if let Some(source) = oauth2 {
            let header = source
                .header()
                .await
                .map_err(|e| format!("Get \"{url}\": {e}"))?;
            req = req.header(reqwest::header::AUTHORIZATION, header);
        }
        let mut resp = req.send().await.map_err(|e| describe(url, &e))?;
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            return Err(format!(
                "server returned HTTP status {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ));
        }
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| describe(url, &e))? {
            body.extend_from_slice(&chunk);
            // Prometheus reads at most the limit and fails when it got
            // that many bytes, so a body of exactly the limit fails too.
            if body_limit > 0 && body.len() as u64 >= body_limit {
                return Err("body size limit exceeded".into());
            }
        }
        Ok((body, content_type))
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("Get \"{url}\": context deadline exceeded")),
    }
}

/// An error and its sources as one line.
pub(crate) fn error_chain(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut msg = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

fn describe(url: &str, err: &reqwest::Error) -> String {
    let msg = error_chain(err);
    if msg.contains(url) {
        msg
    } else {
        format!("Get \"{url}\": {msg}")
    }
}

/// How a loop ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopMode {
    /// The target is gone: write staleness markers for everything.
    Stale,
    /// A reload replaces the loop; its state moves to the new one.
    Handover,
}

struct LoopHandle {
    status: Arc<RwLock<TargetStatus>>,
    processor: Arc<Mutex<TargetProcessor>>,
    stop: Option<oneshot::Sender<StopMode>>,
    task: JoinHandle<()>,
}

impl LoopHandle {
    fn stop(mut self, mode: StopMode) -> JoinHandle<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(mode);
        }
        self.task
    }
}

/// State shared by a pool's discovery task and its loops.
struct PoolShared {
    config: Arc<ScrapeConfig>,
    http: HttpClientConfig,
    client: reqwest::Client,
    oauth2: Option<Arc<TokenSource>>,
    sink: Arc<dyn ScrapeSink>,
    jitter_seed: u64,
    loops: Mutex<HashMap<u64, LoopHandle>>,
    dropped: Mutex<Vec<DroppedTarget>>,
    /// Set when the pool has more targets than `target_limit`: every scrape
    /// fails with it.
    forced_error: RwLock<Option<String>>,
    /// Loop state from the pool this one replaced, consumed by the first sync.
    handover: Mutex<Option<HashMap<u64, LoopState>>>,
}

struct Pool {
    shared: Arc<PoolShared>,
    discovery: JoinHandle<()>,
}

impl Drop for Pool {
    // The discovery task holds the pool's shared state: without this a
    // dropped manager would leave file SD pools running forever.
    fn drop(&mut self) {
        self.discovery.abort();
    }
}

/// Runs the scrape pools of a `prometheus.yml` and answers the targets API.
#[derive(Clone)]
pub struct ScrapeManager {
    sink: Arc<dyn ScrapeSink>,
    pools: Arc<Mutex<BTreeMap<String, Pool>>>,
    jitter_seed: u64,
}

/// `/api/v1/targets` active target entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveTarget {
    pub discovered_labels: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub scrape_pool: String,
    pub scrape_url: String,
    pub global_url: String,
    pub last_error: String,
    pub last_scrape: String,
    pub last_scrape_duration: f64,
    pub health: TargetHealth,
    pub scrape_interval: String,
    pub scrape_timeout: String,
}

/// `/api/v1/targets` dropped target entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DroppedTargetInfo {
    pub discovered_labels: BTreeMap<String, String>,
}

/// `/api/v1/targets` data.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetsView {
    pub active_targets: Vec<ActiveTarget>,
    pub dropped_targets: Vec<DroppedTargetInfo>,
}

/// `/api/v1/targets/metadata` entry.
#[derive(Debug, Clone, Serialize)]
pub struct TargetMetadata {
    pub target: BTreeMap<String, String>,
    pub metric: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub help: String,
    pub unit: String,
}

fn label_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

impl ScrapeManager {
    /// A manager writing to `sink`. `jitter_seed` varies scrape offsets
    /// between Pharos instances that scrape the same targets (Prometheus
    /// derives it from the hostname and external labels).
    pub fn new(sink: Arc<dyn ScrapeSink>, jitter_seed: u64) -> Self {
        ScrapeManager {
            sink,
            pools: Arc::new(Mutex::new(BTreeMap::new())),
            jitter_seed,
        }
    }

    /// Applies a (new) config: unchanged jobs keep running untouched,
    /// changed jobs restart with their targets' series state carried over,
    /// removed jobs stop and mark their series stale. Must run inside a
    /// tokio runtime.
    pub fn apply_config(&self, config: &PrometheusConfig) -> Result<(), ScrapeError> {
        for w in config.warnings() {
            tracing::warn!(warning = %w, "prometheus config");
        }
        // Build every client and discovery first so a bad job leaves the
        // running set as is.
        let mut clients = HashMap::new();
        for job in &config.scrape_configs {
            let in_job = |e: ScrapeError| match e {
                ScrapeError::DiscoveryConfig(m) => {
                    ScrapeError::DiscoveryConfig(format!("job \"{}\": {m}", job.job_name))
                }
                e => ScrapeError::Client(format!("job \"{}\": {e}", job.job_name)),
            };
            let http = job.http_client();
            let client = build_client(&http).map_err(in_job)?;
            let oauth2 = match &http.oauth2 {
                Some(o) => Some(Arc::new(TokenSource::new(o).map_err(in_job)?)),
                None => None,
            };
            let ec2 = job
                .ec2_sd_configs
                .iter()
                .map(Ec2Discovery::new)
                .collect::<Result<Vec<_>, _>>()
                .map_err(in_job)?;
            clients.insert(job.job_name.clone(), (http, client, oauth2, ec2));
        }
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let wanted: HashSet<&str> = config
            .scrape_configs
            .iter()
            .map(|j| j.job_name.as_str())
            .collect();
        let removed: Vec<String> = pools
            .keys()
            .filter(|k| !wanted.contains(k.as_str()))
            .cloned()
            .collect();
        for name in removed {
            if let Some(pool) = pools.remove(&name) {
                stop_pool(pool, StopMode::Stale);
            }
        }
        for job in &config.scrape_configs {
            let handover = match pools.get(&job.job_name) {
                Some(p) if *p.shared.config == *job => continue,
                Some(_) => pools
                    .remove(&job.job_name)
                    .map(|p| stop_pool(p, StopMode::Handover)),
                None => None,
            };
            let Some((http, client, oauth2, ec2)) = clients.remove(&job.job_name) else {
                continue;
            };
            let shared = Arc::new(PoolShared {
                config: Arc::new(job.clone()),
                http,
                client,
                oauth2,
                sink: self.sink.clone(),
                jitter_seed: self.jitter_seed,
                loops: Mutex::new(HashMap::new()),
                dropped: Mutex::new(Vec::new()),
                forced_error: RwLock::new(None),
                handover: Mutex::new(handover),
            });
            let discovery = tokio::spawn(run_discovery(shared.clone(), ec2));
            pools.insert(job.job_name.clone(), Pool { shared, discovery });
        }
        Ok(())
    }

    /// Stops every pool, marking all series stale.
    pub fn stop(&self) {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        for (_, pool) in std::mem::take(&mut *pools) {
            stop_pool(pool, StopMode::Stale);
        }
    }

    /// The live status of every active target, by pool.
    pub fn statuses(&self) -> Vec<TargetStatus> {
        let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for pool in pools.values() {
            let loops = pool.shared.loops.lock().unwrap_or_else(|e| e.into_inner());
            let mut statuses: Vec<TargetStatus> = loops
                .values()
                .map(|h| h.status.read().unwrap_or_else(|e| e.into_inner()).clone())
                .collect();
            statuses.sort_by(|a, b| a.target.labels.cmp(&b.target.labels));
            out.extend(statuses);
        }
        out
    }

    /// The data of `/api/v1/targets`.
    pub fn targets(&self) -> TargetsView {
        let active_targets = self
            .statuses()
            .into_iter()
            .map(|s| {
                let url = s.target.url();
                ActiveTarget {
                    discovered_labels: label_map(&s.target.discovered_labels),
                    labels: label_map(&s.target.public_labels()),
                    scrape_pool: s.target.scrape_pool.clone(),
                    // Prometheus swaps a loopback host for its own FQDN in
                    // globalUrl; Pharos reports the scrape URL itself.
                    global_url: url.clone(),
                    scrape_url: url,
                    last_error: s.last_error,
                    last_scrape: rfc3339(s.last_scrape_ms),
                    last_scrape_duration: s.last_scrape_duration.as_secs_f64(),
                    health: s.health,
                    scrape_interval: s.target.interval.to_string(),
                    scrape_timeout: s.target.timeout.to_string(),
                }
            })
            .collect();
        let pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        let dropped_targets = pools
            .values()
            .flat_map(|p| {
                p.shared
                    .dropped
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(|d| DroppedTargetInfo {
                        discovered_labels: label_map(&d.discovered_labels),
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        TargetsView {
            active_targets,
            dropped_targets,
        }
    }

    /// The data of `/api/v1/targets/metadata`: one entry per target and
    /// metric family with metadata.
    pub fn metadata(&self) -> Vec<TargetMetadata> {
        let mut out = Vec::new();
        for s in self.statuses() {
            let target = label_map(&s.target.public_labels());
            for m in &s.metadata {
                out.push(TargetMetadata {
                    target: target.clone(),
                    metric: m.name.clone(),
                    kind: m.kind.as_str().to_owned(),
                    help: m.help.clone(),
                    unit: m.unit.clone(),
                });
            }
        }
        out
    }
}

fn stop_pool(pool: Pool, mode: StopMode) -> HashMap<u64, LoopState> {
    let mut loops = pool.shared.loops.lock().unwrap_or_else(|e| e.into_inner());
    let mut states = HashMap::new();
    for (hash, handle) in loops.drain() {
        if mode == StopMode::Handover {
            let mut p = handle.processor.lock().unwrap_or_else(|e| e.into_inner());
            p.retired = true;
            states.insert(hash, std::mem::take(&mut p.state));
        }
        handle.stop(mode);
    }
    states
}

/// One discovery provider of a pool with its own refresh schedule.
enum Provider {
    File(FileDiscovery),
    Ec2(Box<Ec2Discovery>),
}

struct Slot {
    provider: Provider,
    every: StdDuration,
    due: tokio::time::Instant,
    groups: Vec<TargetGroup>,
}

async fn run_discovery(shared: Arc<PoolShared>, ec2: Vec<Ec2Discovery>) {
    let cfg = shared.config.clone();
    let now = tokio::time::Instant::now();
    let mut slots: Vec<Slot> = cfg
        .file_sd_configs
        .iter()
        .map(|f| Slot {
            provider: Provider::File(FileDiscovery::new(f)),
            every: f.refresh_interval.as_std(),
            due: now,
            groups: Vec::new(),
        })
        .chain(ec2.into_iter().map(|d| Slot {
            every: d.refresh_interval(),
            provider: Provider::Ec2(Box::new(d)),
            due: now,
            groups: Vec::new(),
        }))
        .collect();
    // Each provider refreshes on its own interval (a zero one never does
    // again after the first listing); the pool syncs after every round.
    loop {
        let now = tokio::time::Instant::now();
        for slot in slots.iter_mut().filter(|s| s.due <= now) {
            slot.groups = match &mut slot.provider {
                Provider::File(f) => f.refresh(),
                Provider::Ec2(d) => d.refresh().await,
            };
            slot.due = if slot.every.is_zero() {
                tokio::time::Instant::now() + StdDuration::from_secs(365 * 24 * 3600)
            } else {
                tokio::time::Instant::now() + slot.every
            };
        }
        let mut groups = target::static_groups(&cfg);
        for slot in &slots {
            groups.extend(slot.groups.iter().cloned());
        }
        sync(&shared, &groups);
        match slots
            .iter()
            .filter(|s| !s.every.is_zero())
            .map(|s| s.due)
            .min()
        {
            Some(due) => tokio::time::sleep_until(due).await,
            None => break,
        }
    }
}

/// Starts loops for new targets and stops loops of vanished ones.
fn sync(shared: &Arc<PoolShared>, groups: &[TargetGroup]) {
    let cfg = &shared.config;
    let mut active: Vec<Target> = Vec::new();
    let mut dropped = Vec::new();
    for g in groups {
        let (a, d, errors) = target::targets_from_group(g, cfg);
        for e in errors {
            tracing::warn!(job = %cfg.job_name, error = %e, "creating target failed");
        }
        active.extend(a);
        dropped.extend(d);
    }
    let mut by_hash: HashMap<u64, Target> = HashMap::new();
    for t in active {
        by_hash.entry(t.hash()).or_insert(t);
    }
    *shared.dropped.lock().unwrap_or_else(|e| e.into_inner()) = dropped;
    let forced = (cfg.target_limit > 0 && by_hash.len() as u64 > cfg.target_limit).then(|| {
        format!(
            "target_limit exceeded (number of targets: {}, limit: {})",
            by_hash.len(),
            cfg.target_limit
        )
    });
    *shared
        .forced_error
        .write()
        .unwrap_or_else(|e| e.into_inner()) = forced;

    let handover = shared
        .handover
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let mut loops = shared.loops.lock().unwrap_or_else(|e| e.into_inner());
    let gone: Vec<u64> = loops
        .keys()
        .filter(|h| !by_hash.contains_key(h))
        .copied()
        .collect();
    for h in gone {
        if let Some(handle) = loops.remove(&h) {
            handle.stop(StopMode::Stale);
        }
    }
    let mut handover = handover.unwrap_or_default();
    for (h, t) in by_hash {
        if loops.contains_key(&h) {
            continue;
        }
        let mut processor = TargetProcessor::new(&t, cfg);
        if let Some(state) = handover.remove(&h) {
            processor.state = state;
        }
        loops.insert(h, spawn_loop(shared.clone(), t, processor));
    }
    // Targets of the replaced pool that are gone now go stale at once.
    let ts = now_ms();
    for (_, state) in handover {
        let stale: Vec<_> = state
            .stale_tracked
            .into_iter()
            .map(|l| (l, vec![Sample::stale(ts)]))
            .collect();
        if !stale.is_empty()
            && let Err(e) = shared.sink.append(stale)
        {
            tracing::warn!(error = %e, "appending staleness markers failed");
        }
    }
}

/// The delay before a target's first scrape: its hash (mixed with the
/// seed) picks a fixed phase within the interval.
pub fn first_offset(hash: u64, seed: u64, interval: StdDuration, now: SystemTime) -> StdDuration {
    let iv = interval.as_nanos().max(1);
    let now_ns = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let phase = u128::from(hash ^ seed) % iv;
    let into = now_ns % iv;
    let wait = (phase + iv - into) % iv;
    StdDuration::from_nanos(wait as u64)
}

fn spawn_loop(shared: Arc<PoolShared>, target: Target, processor: TargetProcessor) -> LoopHandle {
    let status = Arc::new(RwLock::new(TargetStatus {
        target: target.clone(),
        health: TargetHealth::Unknown,
        last_error: String::new(),
        last_scrape_ms: None,
        last_scrape_duration: StdDuration::ZERO,
        metadata: Vec::new(),
    }));
    let processor = Arc::new(Mutex::new(processor));
    let (tx, mut rx) = oneshot::channel::<StopMode>();
    let task = {
        let status = status.clone();
        let processor = processor.clone();
        tokio::spawn(async move {
            let interval = target.interval.as_std();
            let delay = first_offset(
                target.hash(),
                shared.jitter_seed,
                interval,
                SystemTime::now(),
            );
            let start = tokio::time::Instant::now() + delay;
            let mut ticker = tokio::time::interval_at(start, interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            // Waiting for the tick and scraping both give way to a stop; a
            // scrape cut short appends nothing.
            let mode = loop {
                tokio::select! {
                    mode = &mut rx => break mode,
                    _ = ticker.tick() => {}
                }
                tokio::select! {
                    mode = &mut rx => break mode,
                    _ = scrape_once(&shared, &target, &processor, &status) => {}
                }
            };
            // A dropped handle (the manager went away) counts as a stop.
            if mode.unwrap_or(StopMode::Stale) == StopMode::Stale {
                let out = processor
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .end_of_run(now_ms());
                if !out.is_empty()
                    && let Err(e) = shared.sink.append(out)
                {
                    tracing::warn!(error = %e, "appending staleness markers failed");
                }
            }
        })
    };
    LoopHandle {
        status,
        processor,
        stop: Some(tx),
        task,
    }
}

/// One scrape of `target`: fetch, process, append, update its status.
async fn scrape_once(
    shared: &PoolShared,
    target: &Target,
    processor: &Mutex<TargetProcessor>,
    status: &RwLock<TargetStatus>,
) {
    let ts = now_ms();
    let started = Instant::now();
    let forced = shared
        .forced_error
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let fetched = match forced {
        Some(err) => Err(err),
        None => {
            fetch(
                &shared.client,
                &shared.http,
                shared.oauth2.as_deref(),
                &target.url(),
                target.timeout.as_std(),
                shared.config.body_size_limit.as_u64(),
            )
            .await
        }
    };
    let duration = started.elapsed();
    let mut p = processor.lock().unwrap_or_else(|e| e.into_inner());
    if p.retired {
        return;
    }
    let (mut out, result, counts, metadata) = match fetched {
        Ok((body, content_type)) => match p.process(&body, content_type.as_deref(), ts) {
            Ok(done) => (done.series, Ok(()), done.counts, done.changed_metadata),
            Err(rejected) => (p.fail(ts), Err(rejected.error), rejected.counts, Vec::new()),
        },
        Err(err) => (p.fail(ts), Err(err), Counts::default(), Vec::new()),
    };
    out.extend(p.report(ts, result.is_ok(), duration, counts));
    let all_metadata: Vec<Metadata> = p.state.metadata.values().cloned().collect();
    drop(p);
    for m in &metadata {
        shared
            .sink
            .set_metadata(&m.name, m.kind.as_str(), &m.help, &m.unit);
    }
    if let Err(e) = shared.sink.append(out) {
        tracing::warn!(job = %shared.config.job_name, instance = %target.instance(), error = %e, "appending scrape failed");
    }
    let mut st = status.write().unwrap_or_else(|e| e.into_inner());
    st.last_scrape_ms = Some(ts);
    st.last_scrape_duration = duration;
    match result {
        Ok(()) => {
            st.health = TargetHealth::Up;
            st.last_error.clear();
            st.metadata = all_metadata;
        }
        Err(err) => {
            tracing::debug!(job = %shared.config.job_name, instance = %target.instance(), error = %err, "scrape failed");
            st.health = TargetHealth::Down;
            st.last_error = err;
        }
    }
}

/// Formats epoch milliseconds as RFC 3339 UTC; `None` is Go's zero time, as
/// Prometheus shows for targets not scraped yet.
pub fn rfc3339(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => pharos_core::time::rfc3339_millis(ms),
        None => "0001-01-01T00:00:00Z".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PrometheusConfig;
    use crate::target::{Populated, populate};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn job(yaml: &str) -> ScrapeConfig {
        PrometheusConfig::parse(yaml, "t.yml")
            .unwrap()
            .scrape_configs
            .remove(0)
    }

    fn processor(yaml: &str) -> TargetProcessor {
        let cfg = job(yaml);
        let labels = Labels::from_pairs([("__address__", "h:1")]);
        let Populated::Active(t) = populate(&labels, &cfg).unwrap() else {
            panic!("dropped")
        };
        TargetProcessor::new(&t, &cfg)
    }

    fn run(
        p: &mut TargetProcessor,
        body: &[u8],
        ct: Option<&str>,
        ts: i64,
    ) -> (Vec<Series>, Counts) {
        let done = p.process(body, ct, ts).unwrap();
        (done.series, done.counts)
    }

    fn reject(p: &mut TargetProcessor, body: &[u8], ct: Option<&str>, ts: i64) -> (String, Counts) {
        let r = p.process(body, ct, ts).unwrap_err();
        (r.error, r.counts)
    }

    fn find<'a>(out: &'a [Series], name: &str) -> Vec<&'a Series> {
        out.iter()
            .filter(|(l, _)| l.metric_name() == Some(name))
            .collect()
    }

    #[test]
    fn target_labels_conflict_become_exported() {
        let mut p = processor("scrape_configs:\n  - job_name: j\n");
        let body = b"m{job=\"inner\",instance=\"x\",exported_job=\"e\"} 1\n";
        let (out, counts) = run(&mut p, body, None, 1000);
        assert_eq!(counts.scraped, 1);
        let (l, s) = &out[0];
        assert_eq!(l.get("job"), Some("j"));
        assert_eq!(l.get("instance"), Some("h:1"));
        assert_eq!(l.get("exported_instance"), Some("x"));
        // `exported_job` was taken, so the prefix stacks.
        assert_eq!(l.get("exported_exported_job"), Some("inner"));
        assert_eq!(l.get("exported_job"), Some("e"));
        assert_eq!(s[0], Sample::new(1000, 1.0));

        let mut p = processor("scrape_configs:\n  - job_name: j\n    honor_labels: true\n");
        let (out, _) = run(&mut p, b"m{job=\"inner\"} 1\n", None, 1000);
        assert_eq!(out[0].0.get("job"), Some("inner"));
        assert_eq!(out[0].0.get("instance"), Some("h:1"));
    }

    #[test]
    fn timestamps_honored_or_not_and_not_stale_tracked() {
        let body = b"a 1 5000\nb 2\n";
        let mut p = processor("scrape_configs:\n  - job_name: j\n");
        let (out, _) = run(&mut p, body, None, 9000);
        assert_eq!(find(&out, "a")[0].1[0].t, 5000);
        assert_eq!(find(&out, "b")[0].1[0].t, 9000);
        // Series with explicit timestamps get no staleness markers.
        let (out, _) = run(&mut p, b"", None, 10_000);
        assert!(find(&out, "a").is_empty());
        assert!(find(&out, "b")[0].1[0].is_stale());

        let mut p = processor("scrape_configs:\n  - job_name: j\n    honor_timestamps: false\n");
        let (out, _) = run(&mut p, body, None, 9000);
        assert_eq!(find(&out, "a")[0].1[0].t, 9000);
    }

    #[test]
    fn staleness_and_series_added_across_scrapes() {
        let mut p = processor("scrape_configs:\n  - job_name: j\n");
        let (_, c1) = run(&mut p, b"a 1\nb 1\n", None, 1000);
        assert_eq!(c1.series_added, 2);
        let (out, c2) = run(&mut p, b"a 2\nc 1\n", None, 2000);
        assert_eq!(c2.series_added, 1);
        let b = find(&out, "b");
        assert_eq!(b.len(), 1);
        assert!(b[0].1[0].is_stale());
        assert_eq!(b[0].1[0].t, 2000);
        assert!(!find(&out, "a")[0].1[0].is_stale());
        // A failure makes every live series stale.
        let failed = p.fail(3000);
        let mut names: Vec<_> = failed
            .iter()
            .map(|(l, _)| l.metric_name().unwrap())
            .collect();
        names.sort_unstable();
        assert_eq!(names, ["a", "c"]);
        assert!(failed.iter().all(|(_, s)| s[0].is_stale()));
        assert!(p.fail(4000).is_empty());
    }

    #[test]
    fn limits_fail_the_scrape() {
        let mut p = processor("scrape_configs:\n  - job_name: j\n    sample_limit: 2\n");
        run(&mut p, b"a 1\n", None, 1000);
        let (err, counts) = reject(&mut p, b"a 1\nb 1\nc 1\n", None, 2000);
        assert_eq!(err, "sample limit exceeded");
        assert_eq!(counts.scraped, 3);
        let stale = p.fail(2000);
        assert_eq!(stale.len(), 1);
        // Metric relabeling runs before the limit: dropped series don't count.
        let mut p = processor(
            "scrape_configs:\n  - job_name: j\n    sample_limit: 1\n    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: 'go_.*'\n        action: drop\n",
        );
        let (_, counts) = run(&mut p, b"go_a 1\ngo_b 1\nkept 1\n", None, 1);
        assert_eq!(
            counts,
            Counts {
                scraped: 3,
                post_relabel: 1,
                series_added: 1
            }
        );

        // `job` and `instance` count: 4 labels with __name__ and a.
        let mut p = processor("scrape_configs:\n  - job_name: j\n    label_limit: 3\n");
        let (err, _) = reject(&mut p, b"m{a=\"1\"} 1\n", None, 1);
        assert!(
            err.starts_with("label_limit exceeded (metric: m, number of labels: 4, limit: 3)"),
            "{err}"
        );
        let mut p =
            processor("scrape_configs:\n  - job_name: j\n    label_value_length_limit: 3\n");
        let (err, _) = reject(&mut p, b"m{a=\"long\"} 1\n", None, 1);
        assert!(
            err.starts_with("label_value_length_limit exceeded"),
            "{err}"
        );
        let mut p = processor(
            "scrape_configs:\n  - job_name: j\n    metric_relabel_configs:\n      - action: labeldrop\n        regex: __name__\n",
        );
        let (err, _) = reject(&mut p, b"m 1\n", None, 1);
        assert_eq!(err, "missing metric name (__name__ label)");
        let mut p = processor(
            "scrape_configs:\n  - job_name: j\n    metric_relabel_configs:\n      - source_labels: [__name__]\n        target_label: __name__\n        replacement: '1bad'\n",
        );
        let (err, _) = reject(&mut p, b"m 1\n", None, 1);
        assert!(
            err.starts_with("invalid metric name or label names"),
            "{err}"
        );
        let mut p = processor("scrape_configs:\n  - job_name: j\n    label_name_length_limit: 4\n");
        let (err, _) = reject(&mut p, b"m{abcde=\"x\"} 1\n", None, 1);
        assert!(err.starts_with("label_name_length_limit exceeded"), "{err}");
    }

    #[test]
    fn metadata_reported_when_new_or_changed() {
        let mut p = processor("scrape_configs:\n  - job_name: j\n");
        let body = b"# HELP a x\n# TYPE a gauge\na 1\n# TYPE b counter\nb 1\n";
        let first = p.process(body, None, 1).unwrap().changed_metadata;
        assert_eq!(first.len(), 2);
        assert!(
            p.process(body, None, 2)
                .unwrap()
                .changed_metadata
                .is_empty()
        );
        let changed = b"# HELP a y\n# TYPE a gauge\na 1\n# TYPE b counter\nb 1\n";
        let second = p.process(changed, None, 3).unwrap().changed_metadata;
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].help, "y");
        // A family that vanished is forgotten and reported again on return.
        p.process(b"# TYPE b counter\nb 1\n", None, 4).unwrap();
        let back = p.process(changed, None, 5).unwrap().changed_metadata;
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].name, "a");
    }

    #[test]
    fn report_series_and_end_of_run() {
        let mut p = processor("scrape_configs:\n  - job_name: j\n");
        let (_, counts) = run(&mut p, b"a 1\n", None, 1000);
        let report = p.report(1000, true, StdDuration::from_millis(250), counts);
        let up = find(&report, "up");
        assert_eq!(
            up[0].0,
            Labels::from_pairs([("__name__", "up"), ("instance", "h:1"), ("job", "j")])
        );
        assert_eq!(up[0].1[0].v, 1.0);
        assert_eq!(find(&report, "scrape_duration_seconds")[0].1[0].v, 0.25);
        assert_eq!(find(&report, "scrape_samples_scraped")[0].1[0].v, 1.0);
        assert_eq!(find(&report, "scrape_series_added")[0].1[0].v, 1.0);
        let end = p.end_of_run(2000);
        assert_eq!(end.len(), 6);
        assert!(end.iter().all(|(_, s)| s[0].is_stale() && s[0].t == 2000));
    }

    #[test]
    fn offsets_spread_within_the_interval() {
        let iv = StdDuration::from_secs(10);
        let now = UNIX_EPOCH + StdDuration::from_millis(1_700_000_000_123);
        let mut offsets = HashSet::new();
        for h in 0..50u64 {
            let hash = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let o = first_offset(hash, 0, iv, now);
            assert!(o < iv);
            // The phase is stable: asking later lands on the same phase.
            let later = first_offset(hash, 0, iv, now + StdDuration::from_millis(3_300));
            let a = (now + o).duration_since(UNIX_EPOCH).unwrap().as_nanos() % iv.as_nanos();
            let b = (now + StdDuration::from_millis(3_300) + later)
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                % iv.as_nanos();
            assert_eq!(a, b);
            offsets.insert(o.as_millis() / 1000);
        }
        assert!(offsets.len() >= 5, "offsets cluster: {offsets:?}");
    }

    #[test]
    fn rfc3339_formatting() {
        assert_eq!(rfc3339(None), "0001-01-01T00:00:00Z");
        assert_eq!(rfc3339(Some(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(Some(951_782_400_000 + 1)),
            "2000-02-29T00:00:00.001Z"
        );
        assert_eq!(rfc3339(Some(1_700_000_000_123)), "2023-11-14T22:13:20.123Z");
    }

    /// A sink that records everything.
    #[derive(Default)]
    struct Collect {
        series: Mutex<Vec<(Labels, Sample)>>,
        metadata: Mutex<Vec<(String, String)>>,
    }

    impl ScrapeSink for Collect {
        fn append(&self, series: Vec<Series>) -> Result<(), String> {
            let mut all = self.series.lock().unwrap();
            for (l, samples) in series {
                for s in samples {
                    all.push((l.clone(), s));
                }
            }
            Ok(())
        }
        fn set_metadata(&self, metric: &str, kind: &str, _help: &str, _unit: &str) {
            self.metadata
                .lock()
                .unwrap()
                .push((metric.to_owned(), kind.to_owned()));
        }
    }

    impl Collect {
        fn has(&self, f: impl Fn(&Labels, &Sample) -> bool) -> bool {
            self.series.lock().unwrap().iter().any(|(l, s)| f(l, s))
        }
    }

    /// What the canned server answers: status line, content type, body,
    /// delay.
    #[derive(Clone)]
    struct Reply {
        status: &'static str,
        content_type: &'static str,
        body: Vec<u8>,
        gzip: bool,
        delay: StdDuration,
    }

    fn ok(body: &str) -> Reply {
        Reply {
            status: "200 OK",
            content_type: "text/plain; version=0.0.4",
            body: body.as_bytes().to_vec(),
            gzip: false,
            delay: StdDuration::ZERO,
        }
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for b in data {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A gzip member holding `data` in one stored (uncompressed) deflate
    /// block: enough to prove the client negotiates and decodes gzip.
    fn gzip_stored(data: &[u8]) -> Vec<u8> {
        let len = u16::try_from(data.len()).unwrap();
        let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 0x01];
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend(data);
        out.extend(crc32(data).to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out
    }

    #[test]
    fn crc32_known_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    async fn serve(reply: Arc<Mutex<Reply>>, requests: Arc<Mutex<Vec<String>>>) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let reply = reply.lock().unwrap().clone();
                let requests = requests.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    requests
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf).into_owned());
                    tokio::time::sleep(reply.delay).await;
                    let request = String::from_utf8_lossy(&buf).to_lowercase();
                    let gzip = reply.gzip && request.contains("accept-encoding: gzip");
                    let body = if gzip {
                        gzip_stored(&reply.body)
                    } else {
                        reply.body.clone()
                    };
                    let head = format!(
                        "HTTP/1.1 {}\r\nContent-Type: {}\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n",
                        reply.status,
                        reply.content_type,
                        if gzip {
                            "Content-Encoding: gzip\r\n"
                        } else {
                            ""
                        },
                        body.len()
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(&body).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        port
    }

    async fn wait_for(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + StdDuration::from_secs(5);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(StdDuration::from_millis(10)).await;
        }
    }

    fn config(port: u16, extra: &str) -> PrometheusConfig {
        PrometheusConfig::parse(
            &format!(
                "scrape_configs:\n  - job_name: app\n    scrape_interval: 100ms\n{extra}    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
            ),
            "t.yml",
        )
        .unwrap()
    }

    fn named(l: &Labels, name: &str) -> bool {
        l.metric_name() == Some(name)
    }

    #[tokio::test]
    async fn scrape_loop_against_local_server() {
        let reply = Arc::new(Mutex::new(ok(
            "# HELP a A thing.\n# TYPE a gauge\na 1\nb{x=\"y\"} 2\n",
        )));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let port = serve(reply.clone(), requests.clone()).await;
        let sink = Arc::new(Collect::default());
        let manager = ScrapeManager::new(sink.clone(), 0);
        manager.apply_config(&config(port, "")).unwrap();

        wait_for("up=1", || sink.has(|l, s| named(l, "up") && s.v == 1.0)).await;
        assert!(sink.has(|l, s| named(l, "b") && l.get("x") == Some("y") && s.v == 2.0));
        assert!(sink.has(|l, s| named(l, "scrape_samples_scraped") && s.v == 2.0));
        let req = requests.lock().unwrap()[0].to_lowercase();
        assert!(
            req.contains(&format!("accept: {}", ACCEPT_HEADER.to_lowercase())),
            "{req}"
        );
        assert!(
            req.contains("x-prometheus-scrape-timeout-seconds: 0.1"),
            "{req}"
        );
        assert!(req.starts_with("get /metrics http/1.1"), "{req}");
        assert!(
            sink.metadata
                .lock()
                .unwrap()
                .contains(&("a".into(), "gauge".into()))
        );

        let view = manager.targets();
        assert_eq!(view.active_targets.len(), 1);
        let t = &view.active_targets[0];
        assert_eq!(t.health, TargetHealth::Up);
        assert_eq!(t.scrape_url, format!("http://127.0.0.1:{port}/metrics"));
        assert_eq!(t.labels["job"], "app");
        assert_eq!(t.scrape_interval, "100ms");
        // The JSON shape `/api/v1/targets` serves.
        let json = serde_json::to_value(&view).unwrap();
        let active = &json["activeTargets"][0];
        assert_eq!(active["health"], "up");
        assert_eq!(active["scrapePool"], "app");
        assert_eq!(
            active["discoveredLabels"]["__address__"],
            format!("127.0.0.1:{port}")
        );
        assert_eq!(active["labels"]["instance"], format!("127.0.0.1:{port}"));
        assert!(active["lastScrapeDuration"].is_f64());
        assert!(active["lastScrape"].as_str().unwrap().ends_with('Z'));
        assert_eq!(active["scrapeTimeout"], "100ms");
        assert_eq!(active["lastError"], "");
        assert!(json["droppedTargets"].as_array().unwrap().is_empty());
        let meta_json = serde_json::to_value(manager.metadata()).unwrap();
        assert_eq!(meta_json[0]["type"], "gauge");
        assert_eq!(meta_json[0]["target"]["job"], "app");
        let meta = manager.metadata();
        assert_eq!(meta[0].metric, "a");
        assert_eq!(meta[0].help, "A thing.");

        // `b` disappears: it gets a staleness marker.
        *reply.lock().unwrap() = ok("a 1\n");
        wait_for("b stale", || sink.has(|l, s| named(l, "b") && s.is_stale())).await;

        // The target fails: up=0, `a` goes stale, lastError says why.
        *reply.lock().unwrap() = Reply {
            status: "500 Internal Server Error",
            ..ok("oops")
        };
        wait_for("up=0", || sink.has(|l, s| named(l, "up") && s.v == 0.0)).await;
        assert!(sink.has(|l, s| named(l, "a") && s.is_stale()));
        let t = &manager.targets().active_targets[0];
        assert_eq!(t.health, TargetHealth::Down);
        assert_eq!(
            t.last_error,
            "server returned HTTP status 500 Internal Server Error"
        );

        // Removing the job marks its report series stale.
        manager.apply_config(&PrometheusConfig::default()).unwrap();
        wait_for("up stale", || {
            sink.has(|l, s| named(l, "up") && s.is_stale())
        })
        .await;
        assert!(manager.targets().active_targets.is_empty());
    }

    #[tokio::test]
    async fn limits_and_timeouts_mark_the_scrape_failed() {
        let reply = Arc::new(Mutex::new(ok("a 1\nb 2\nc 3\n")));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let port = serve(reply.clone(), requests.clone()).await;
        let cases = [
            ("    sample_limit: 2\n", "sample limit exceeded"),
            ("    body_size_limit: 5B\n", "body size limit exceeded"),
        ];
        for (extra, want) in cases {
            let sink = Arc::new(Collect::default());
            let manager = ScrapeManager::new(sink.clone(), 0);
            manager.apply_config(&config(port, extra)).unwrap();
            wait_for(want, || {
                manager
                    .targets()
                    .active_targets
                    .first()
                    .is_some_and(|t| t.last_error == want)
            })
            .await;
            assert!(sink.has(|l, s| named(l, "up") && s.v == 0.0));
            assert!(!sink.has(|l, _| named(l, "a")));
            manager.stop();
        }

        *reply.lock().unwrap() = Reply {
            delay: StdDuration::from_millis(300),
            ..ok("a 1\n")
        };
        let sink = Arc::new(Collect::default());
        let manager = ScrapeManager::new(sink.clone(), 0);
        manager.apply_config(&config(port, "")).unwrap();
        wait_for("timeout", || {
            manager
                .targets()
                .active_targets
                .first()
                .is_some_and(|t| t.last_error.ends_with("context deadline exceeded"))
        })
        .await;
        manager.stop();
    }

    #[tokio::test]
    async fn target_limit_and_reload_keep_unchanged_state() {
        let reply = Arc::new(Mutex::new(ok("# TYPE m counter\nm_total 1\n# EOF\n")));
        reply.lock().unwrap().content_type = "application/openmetrics-text; version=1.0.0";
        let requests = Arc::new(Mutex::new(Vec::new()));
        let port = serve(reply.clone(), requests.clone()).await;
        let sink = Arc::new(Collect::default());
        let manager = ScrapeManager::new(sink.clone(), 0);
        let two_targets = |limit: &str| {
            PrometheusConfig::parse(
                &format!(
                    "scrape_configs:\n  - job_name: app\n    scrape_interval: 100ms\n{limit}    static_configs:\n      - targets: ['127.0.0.1:{port}', 'localhost:{port}']\n"
                ),
                "t.yml",
            )
            .unwrap()
        };
        manager
            .apply_config(&two_targets("    target_limit: 1\n"))
            .unwrap();
        wait_for("target_limit", || {
            manager
                .targets()
                .active_targets
                .iter()
                .all(|t| t.last_error == "target_limit exceeded (number of targets: 2, limit: 1)")
                && manager.targets().active_targets.len() == 2
        })
        .await;
        assert!(!sink.has(|l, _| named(l, "m_total")));

        // Raising the limit restarts the pool; both targets come up.
        manager.apply_config(&two_targets("")).unwrap();
        wait_for("both up", || {
            let v = manager.targets();
            v.active_targets.len() == 2
                && v.active_targets
                    .iter()
                    .all(|t| t.health == TargetHealth::Up)
        })
        .await;
        assert!(sink.has(|l, s| named(l, "m_total") && s.v == 1.0));

        // Re-applying the same config keeps the running loops: no
        // staleness markers and no reset of health.
        let before = sink.series.lock().unwrap().len();
        manager.apply_config(&two_targets("")).unwrap();
        assert!(
            manager
                .targets()
                .active_targets
                .iter()
                .all(|t| t.health == TargetHealth::Up)
        );
        tokio::time::sleep(StdDuration::from_millis(250)).await;
        let series = sink.series.lock().unwrap();
        assert!(series.len() > before);
        assert!(!series.iter().any(|(_, s)| s.is_stale()));
        drop(series);
        manager.stop();
    }

    #[tokio::test]
    async fn gzip_bodies_are_decoded() {
        let reply = Arc::new(Mutex::new(Reply {
            gzip: true,
            ..ok("zipped 42\n")
        }));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let port = serve(reply, requests.clone()).await;
        let sink = Arc::new(Collect::default());
        let manager = ScrapeManager::new(sink.clone(), 0);
        manager.apply_config(&config(port, "")).unwrap();
        wait_for("zipped", || {
            sink.has(|l, s| named(l, "zipped") && s.v == 42.0)
        })
        .await;
        manager.stop();
        let req = requests.lock().unwrap()[0].to_lowercase();
        assert!(req.contains("accept-encoding: gzip"), "{req}");
    }

    #[tokio::test]
    async fn reload_hands_state_over_and_stales_vanished_targets() {
        let reply = Arc::new(Mutex::new(ok("a 1\nb 1\n")));
        let port = serve(reply, Arc::new(Mutex::new(Vec::new()))).await;
        let sink = Arc::new(Collect::default());
        let manager = ScrapeManager::new(sink.clone(), 0);
        manager.apply_config(&config(port, "")).unwrap();
        wait_for("up", || sink.has(|l, s| named(l, "up") && s.v == 1.0)).await;

        // A changed job restarts its pool, but the same target keeps its
        // series state: no staleness, no series counted as added again.
        let relabel = "    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: zzz\n        action: drop\n";
        let mark = sink.series.lock().unwrap().len();
        manager.apply_config(&config(port, relabel)).unwrap();
        let ups = |from: usize| {
            sink.series.lock().unwrap()[from..]
                .iter()
                .filter(|(l, _)| named(l, "up"))
                .count()
        };
        wait_for("two scrapes after reload", || ups(mark) >= 2).await;
        {
            let series = sink.series.lock().unwrap();
            let after = &series[mark..];
            assert!(!after.iter().any(|(_, s)| s.is_stale()), "{after:?}");
            assert!(
                after
                    .iter()
                    .filter(|(l, _)| named(l, "scrape_series_added"))
                    .all(|(_, s)| s.v == 0.0)
            );
        }

        // A job whose target changes identity: the old series go stale.
        let mark = sink.series.lock().unwrap().len();
        let relabeled =
            "    relabel_configs:\n      - target_label: env\n        replacement: prod\n";
        manager.apply_config(&config(port, relabeled)).unwrap();
        wait_for("old a stale", || {
            sink.series.lock().unwrap()[mark..]
                .iter()
                .any(|(l, s)| named(l, "a") && l.get("env").is_none() && s.is_stale())
        })
        .await;
        wait_for("new a", || {
            sink.series.lock().unwrap()[mark..]
                .iter()
                .any(|(l, s)| named(l, "a") && l.get("env") == Some("prod") && !s.is_stale())
        })
        .await;
        manager.stop();
    }

    #[tokio::test]
    async fn file_sd_targets_come_and_go() {
        let reply = Arc::new(Mutex::new(ok("a 1\n")));
        let port = serve(reply, Arc::new(Mutex::new(Vec::new()))).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("targets.json");
        std::fs::write(
            &file,
            format!("[{{\"targets\": [\"127.0.0.1:{port}\"], \"labels\": {{\"team\": \"x\"}}}}]"),
        )
        .unwrap();
        let config = PrometheusConfig::parse(
            &format!(
                "scrape_configs:\n  - job_name: files\n    scrape_interval: 100ms\n    file_sd_configs:\n      - files: ['{}']\n        refresh_interval: 50ms\n    relabel_configs:\n      - source_labels: [team]\n        regex: drop-me\n        action: drop\n",
                dir.path().join("*.json").display()
            ),
            "t.yml",
        )
        .unwrap();
        let sink = Arc::new(Collect::default());
        let manager = ScrapeManager::new(sink.clone(), 0);
        manager.apply_config(&config).unwrap();
        wait_for("file target up", || {
            sink.has(|l, s| named(l, "a") && l.get("team") == Some("x") && s.v == 1.0)
        })
        .await;
        let t = &manager.targets().active_targets[0];
        assert_eq!(
            t.discovered_labels["__meta_filepath"],
            file.display().to_string()
        );

        // A broken file keeps the target.
        std::fs::write(&file, "[{").unwrap();
        tokio::time::sleep(StdDuration::from_millis(200)).await;
        assert_eq!(manager.targets().active_targets.len(), 1);

        // Relabeling drops it: it shows as dropped and its series go stale.
        std::fs::write(
            &file,
            format!(
                "[{{\"targets\": [\"127.0.0.1:{port}\"], \"labels\": {{\"team\": \"drop-me\"}}}}]"
            ),
        )
        .unwrap();
        wait_for("dropped", || {
            let v = manager.targets();
            v.active_targets.is_empty() && v.dropped_targets.len() == 1
        })
        .await;
        wait_for("stale", || sink.has(|l, s| named(l, "a") && s.is_stale())).await;
        manager.stop();
    }
}

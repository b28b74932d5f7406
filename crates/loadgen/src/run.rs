//! Sending the plan to a remote_write URL and recording every answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::LoadgenError;
use crate::plan::{BatchId, Plan};
use crate::wire;

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// e.g. `http://127.0.0.1:9090/api/v1/write`
    pub url: String,
    /// Samples per second over all connections; `None` is flat out.
    pub rate: Option<f64>,
    /// Scrapes per series to send; `None` is unbounded.
    pub scrapes: Option<u64>,
    /// Total samples to send at most.
    pub max_samples: Option<u64>,
    pub duration: Option<Duration>,
    pub timeout: Duration,
    /// `X-Scope-OrgID`, when the target is multi-tenant.
    pub tenant: Option<String>,
    /// Set from outside to stop between requests.
    pub stop: Arc<AtomicBool>,
    /// Acknowledged samples so far, for watching a run from outside.
    pub acked: Arc<AtomicU64>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:9090/api/v1/write".into(),
            rate: None,
            scrapes: None,
            max_samples: None,
            duration: None,
            timeout: Duration::from_secs(30),
            tenant: None,
            stop: Arc::new(AtomicBool::new(false)),
            acked: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// What became of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: the server promised to keep every sample.
    Acked,
    /// A non-2xx status.
    Rejected(u16),
    /// No answer (connection refused or reset, timeout).
    Failed,
}

#[derive(Debug, Clone)]
pub struct RunReport {
    /// Per connection, the outcome of its requests in order (index = seq).
    pub shards: Vec<Vec<Outcome>>,
    pub elapsed: Duration,
}

impl RunReport {
    pub fn outcome(&self, id: BatchId) -> Option<Outcome> {
        self.shards.get(id.shard)?.get(id.seq as usize).copied()
    }

    pub fn acked_samples(&self, plan: &Plan) -> u64 {
        self.count(plan, |o| o == Outcome::Acked)
    }

    pub fn sent_samples(&self, plan: &Plan) -> u64 {
        self.count(plan, |_| true)
    }

    pub fn requests(&self, f: impl Fn(Outcome) -> bool) -> usize {
        self.shards.iter().flatten().filter(|o| f(**o)).count()
    }

    fn count(&self, plan: &Plan, f: impl Fn(Outcome) -> bool) -> u64 {
        let mut n = 0;
        for (shard, outs) in self.shards.iter().enumerate() {
            for (seq, o) in outs.iter().enumerate() {
                if f(*o) {
                    n += plan.samples_in(BatchId {
                        shard,
                        seq: seq as u64,
                    }) as u64;
                }
            }
        }
        n
    }

    /// The acknowledged requests per shard as `[from, to)` runs: the whole
    /// log needed to regenerate every acknowledged sample.
    pub fn acked_runs(&self) -> Vec<Vec<(u64, u64)>> {
        self.shards
            .iter()
            .map(|outs| {
                let mut runs: Vec<(u64, u64)> = Vec::new();
                for (i, o) in outs.iter().enumerate() {
                    if *o != Outcome::Acked {
                        continue;
                    }
                    let i = i as u64;
                    match runs.last_mut() {
                        Some(r) if r.1 == i => r.1 = i + 1,
                        _ => runs.push((i, i + 1)),
                    }
                }
                runs
            })
            .collect()
    }
}

/// Sends until a limit is reached or `stop` is set.
pub async fn run(plan: Arc<Plan>, opts: RunOptions) -> Result<RunReport, LoadgenError> {
    if plan.set.is_empty() {
        return Err(LoadgenError::Invalid("no series".into()));
    }
    if opts.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
        return Err(LoadgenError::Invalid("rate must be positive".into()));
    }
    let labels: Arc<Vec<Vec<u8>>> = Arc::new(
        plan.set
            .specs
            .iter()
            .map(|s| wire::encode_labels(&s.labels))
            .collect(),
    );
    let started = Instant::now();
    let budget = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for shard in 0..plan.shards {
        let client = reqwest::Client::builder()
            .timeout(opts.timeout)
            .pool_max_idle_per_host(1)
            .build()?;
        let (plan, opts, labels, budget) =
            (plan.clone(), opts.clone(), labels.clone(), budget.clone());
        tasks.push(tokio::spawn(async move {
            shard_loop(shard, &plan, &opts, &labels, &budget, &client, started).await
        }));
    }
    let mut shards = Vec::new();
    for t in tasks {
        shards.push(
            t.await
                .map_err(|e| LoadgenError::Invalid(format!("sender task failed: {e}")))?,
        );
    }
    Ok(RunReport {
        shards,
        elapsed: started.elapsed(),
    })
}

async fn shard_loop(
    shard: usize,
    plan: &Plan,
    opts: &RunOptions,
    labels: &[Vec<u8>],
    budget: &AtomicU64,
    client: &reqwest::Client,
    started: Instant,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let bps = plan.batches_per_scrape(shard);
    let last = opts.scrapes.map(|s| s.saturating_mul(bps));
    let mut body = Vec::new();
    for seq in 0u64.. {
        if last.is_some_and(|l| seq >= l)
            || opts.stop.load(Ordering::Relaxed)
            || opts.duration.is_some_and(|d| started.elapsed() >= d)
        {
            break;
        }
        let id = BatchId { shard, seq };
        let n = plan.samples_in(id) as u64;
        let before = budget.fetch_add(n, Ordering::Relaxed);
        if opts.max_samples.is_some_and(|m| before + n > m) {
            break;
        }
        if let Some(rate) = opts.rate {
            let due = started + Duration::from_secs_f64(before as f64 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        body.clear();
        let (k, series) = plan.batch(id);
        let t = plan.timestamp(k);
        for idx in series {
            wire::push_series(&mut body, &labels[idx], t, plan.set.value(idx, k));
        }
        let compressed = match snap::raw::Encoder::new().compress_vec(&body) {
            Ok(c) => c,
            Err(_) => {
                outcomes.push(Outcome::Failed);
                continue;
            }
        };
        let mut req = client
            .post(&opts.url)
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(compressed);
        if let Some(t) = &opts.tenant {
            req = req.header("X-Scope-OrgID", t);
        }
        let outcome = match req.send().await {
            Ok(r) if r.status().is_success() => {
                // drain so the connection is reused
                let _ = r.bytes().await;
                opts.acked.fetch_add(n, Ordering::Relaxed);
                Outcome::Acked
            }
            Ok(r) => Outcome::Rejected(r.status().as_u16()),
            Err(_) => Outcome::Failed,
        };
        if outcome == Outcome::Failed {
            // a dead server refuses instantly; do not spin on it
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        outcomes.push(outcome);
    }
    outcomes
}

//! The task that drives the dispatcher: it sleeps until the next group is
//! due (or new alerts arrive), flushes, sends each notification with
//! retries, reports the outcome back to the dispatcher, and runs the
//! periodic maintenance (GC and snapshots).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::api::AlertsApi;
use crate::dispatch::{Flush, Integration};
use crate::notify::{NotifyData, NotifyError, Sender, backoff, flush_timeout, jitter};
use crate::time::now_ms;

/// Upstream's `--data.maintenance-interval` default.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(15 * 60);

/// Longest sleep when no group is waiting; new alerts wake the task.
const IDLE: Duration = Duration::from_secs(3600);

/// Writes the final snapshot however the task ends: a clean stop, an
/// abort, or the runtime dropping it at process exit.
struct FinalSnapshot(AlertsApi);

impl Drop for FinalSnapshot {
    fn drop(&mut self) {
        self.0.maintenance();
    }
}

pub(crate) async fn run(api: AlertsApi, mut stop: watch::Receiver<bool>) {
    let _final = FinalSnapshot(api.clone());
    let mut inflight: JoinSet<()> = JoinSet::new();
    let maintenance_every = api.maintenance_interval();
    let mut maintenance = tokio::time::interval_at(
        tokio::time::Instant::now() + maintenance_every,
        maintenance_every,
    );
    maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::debug!("dispatcher started");
    loop {
        let sleep = api.next_flush_at().map_or(IDLE, |t| {
            Duration::from_millis(u64::try_from(t - now_ms()).unwrap_or(0))
        });
        tokio::select! {
            _ = stop.changed() => break,
            () = api.wake().notified() => {}
            () = tokio::time::sleep(sleep) => {}
            Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
            _ = maintenance.tick() => api.maintenance(),
        }
        if *stop.borrow() {
            break;
        }
        for flush in api.flush_due(now_ms()) {
            let api = api.clone();
            inflight.spawn(async move { deliver(api, flush).await });
        }
    }
    // In-flight sends are abandoned as upstream cancels them on shutdown;
    // their log entries are not written, so they are sent again later.
    inflight.shutdown().await;
    tracing::debug!("dispatcher stopped");
}

/// Longest wait for the cluster to settle before a flush sends anyway.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// Sends every notification of a flush concurrently and reports back.
/// In a cluster it first waits its turn (upstream's gossip settle and
/// wait stages) and drops what a peer sent meanwhile.
async fn deliver(api: AlertsApi, mut flush: Flush) {
    if let Some(c) = api.cluster() {
        c.wait_ready(SETTLE_LIMIT).await;
        let position = u32::try_from(c.position()).unwrap_or(u32::MAX);
        let wait = c.peer_timeout().saturating_mul(position);
        if !wait.is_zero() {
            tracing::debug!(group_key = %flush.group_key, position, ?wait, "waiting for peers to notify first");
            tokio::time::sleep(wait).await;
        }
        api.recheck(&mut flush);
    }
    let deadline = Instant::now() + flush_timeout(flush.group_interval);
    let external_url = api.external_url();
    let mut set = JoinSet::new();
    for (i, n) in flush.notifications.iter().enumerate() {
        let data = NotifyData::new(
            &flush.receiver,
            &flush.group_key,
            &flush.group_labels,
            n.alerts(),
            &external_url,
            flush.at,
        );
        let sender = api.sender(&n.integration);
        let api = api.clone();
        let integration = n.integration.clone();
        set.spawn(async move {
            let ok = notify_with_retry(&api, sender, &integration, &data, deadline).await;
            (i, ok)
        });
    }
    let mut ok = vec![false; flush.notifications.len()];
    while let Some(r) = set.join_next().await {
        if let Ok((i, v)) = r {
            ok[i] = v;
        }
    }
    api.complete(flush, &ok);
}

/// Upstream's `RetryStage`: tries until success, a permanent error or the
/// deadline, backing off exponentially in between.
async fn notify_with_retry(
    api: &AlertsApi,
    sender: Option<Arc<Sender>>,
    i: &Integration,
    data: &NotifyData,
    deadline: Instant,
) -> bool {
    // Everything resolved and this integration does not want to hear it:
    // nothing to send, but the log must learn the firing set cleared.
    if data.alerts.is_empty() {
        return true;
    }
    let metrics = api.metrics();
    if let Some(m) = &metrics {
        m.notifications.with(&[i.kind]).inc();
    }
    let fail = |e: &NotifyError, attempts: u32| {
        if let Some(m) = &metrics {
            m.notifications_failed.with(&[i.kind]).inc();
        }
        tracing::error!(
            receiver = %i.receiver,
            integration = %format!("{}[{}]", i.kind, i.index),
            group_key = %data.group_key,
            attempts,
            error = %e,
            "notify failed"
        );
        false
    };
    let Some(sender) = sender else {
        return fail(&NotifyError::Unsupported(i.kind), 0);
    };
    let mut attempt = 0u32;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return fail(
                &NotifyError::Retryable("deadline passed before a send succeeded".into()),
                attempt,
            );
        }
        attempt += 1;
        let started = Instant::now();
        let res = sender.send(data, left).await;
        if let Some(m) = &metrics {
            m.requests.with(&[i.kind]).inc();
            m.latency
                .with(&[i.kind])
                .observe(started.elapsed().as_secs_f64());
        }
        match res {
            Ok(()) => {
                tracing::debug!(receiver = %i.receiver, integration = i.kind, attempts = attempt, "notify success");
                return true;
            }
            Err(e) => {
                if let Some(m) = &metrics {
                    m.requests_failed.with(&[i.kind]).inc();
                }
                if !e.retryable() {
                    return fail(&e, attempt);
                }
                tracing::warn!(receiver = %i.receiver, integration = i.kind, attempt, error = %e, "notify attempt failed, retrying");
                let wait = backoff(attempt - 1, jitter());
                let left = deadline.saturating_duration_since(Instant::now());
                if wait >= left {
                    tokio::time::sleep(left).await;
                    return fail(&e, attempt);
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}

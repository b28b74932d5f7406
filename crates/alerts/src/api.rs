//! The Alertmanager API v2 (request and response shapes of upstream's
//! OpenAPI spec), `/-/reload`, `/-/healthy`, `/-/ready`; API v1 answers 410.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use pharos_core::error::{Classify as _, ErrorClass};
use pharos_server::{ApiError, ErrorFormat, Registry, Tenant};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::LabelSet;
use crate::cluster::{Cluster, ClusterSettings, SharedState, StateMsg};
use crate::config::{AlertsConfig, Config};
use crate::dispatch::{Dispatcher, alert_order, labels_before};
use crate::error::AlertsError;
use crate::inhibit::Inhibitor;
use crate::matchers::{Matcher, filter_matches, is_valid_label_name, parse_matcher};
use crate::metrics::{AlertsMetrics, StateCollector, StateCounts};
use crate::notify::{Notifiers, Sender, Templates};
use crate::routing::RouteNode;
use crate::silences::{Silence, SilenceError, SilenceMatcher, Silences, sort_for_listing};
use crate::store::{Alert, AlertStore};
use crate::time::{Millis, format_ms, now_ms, parse_rfc3339};

/// How often resolved alerts are dropped (upstream's alert GC interval).
const ALERT_GC_INTERVAL_MS: Millis = 30 * 60 * 1000;

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) in Unix milliseconds.
const GO_ZERO_TIME_MS: Millis = -62_135_596_800_000;

/// What one loaded `alertmanager.yml` gives: checked config, routing tree,
/// inhibition rules, the masked text `/api/v2/status` shows, and the
/// notification senders with their templates.
struct Runtime {
    config: Config,
    route: RouteNode,
    inhibitor: Inhibitor,
    shown: String,
    notifiers: Notifiers,
}

impl Runtime {
    /// `base`: the directory relative template paths are read from.
    fn new(config: Config, base: Option<&std::path::Path>) -> Result<Self, AlertsError> {
        let templates = Templates::load(&config.templates, base)
            .map_err(|e| AlertsError::Notify(e.to_string()))?;
        let notifiers =
            Notifiers::build(&config, &Arc::new(templates)).map_err(AlertsError::Notify)?;
        Ok(Runtime {
            route: RouteNode::new(config.root_route()),
            inhibitor: Inhibitor::new(&config),
            shown: config.to_masked_yaml(),
            config,
            notifiers,
        })
    }

    /// Routing and muting without any sender, for when the senders cannot
    /// be built: notifications then fail loudly instead of the role not
    /// starting.
    fn without_notifiers(config: Config) -> Self {
        Runtime {
            route: RouteNode::new(config.root_route()),
            inhibitor: Inhibitor::new(&config),
            shown: config.to_masked_yaml(),
            config,
            notifiers: Notifiers::default(),
        }
    }
}

struct Inner {
    config_file: Option<PathBuf>,
    runtime: RwLock<Arc<Runtime>>,
    alerts: AlertStore,
    silences: Silences,
    started_ms: Millis,
    last_gc_ms: Mutex<Millis>,
    metrics: OnceLock<AlertsMetrics>,
    dispatcher: Mutex<Dispatcher>,
    /// Wakes the dispatcher task when alerts arrive or a flush completes.
    wake: tokio::sync::Notify,
    external_url: String,
    /// Where snapshots go; `None` keeps everything in memory.
    local_path: Option<PathBuf>,
    retention: std::time::Duration,
    maintenance_interval: std::time::Duration,
    stop: tokio::sync::watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Serializes snapshot writers (the timer, `stop`, the task's exit).
    snapshot_lock: Mutex<()>,
    /// HA gossip, when peers are configured.
    cluster: OnceLock<Arc<Cluster>>,
    /// The object store copy of the snapshots, once attached.
    remote: OnceLock<Remote>,
}

/// Where snapshots are copied after each local write: the object store,
/// the runtime that talks to it, and a lock keeping copies in order.
struct Remote {
    store: pharos_storage::ObjectStorage,
    handle: tokio::runtime::Handle,
    order: Arc<tokio::sync::Mutex<()>>,
}

impl SharedState for Inner {
    fn merge(&self, msg: StateMsg) {
        let s = self.silences.merge(msg.silences);
        let l = self
            .dispatcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .merge_log(msg.nflog);
        tracing::debug!(silences = s, nflog_entries = l, "merged state from peer");
    }

    fn full_state(&self) -> StateMsg {
        StateMsg {
            silences: self.silences.all(),
            nflog: self
                .dispatcher
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .log_entries(),
        }
    }
}

impl StateCounts for Inner {
    fn alert_states(&self) -> (usize, usize) {
        let now = now_ms();
        let rt = self
            .runtime
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let all = self.alerts.all();
        let firing: Vec<&Alert> = all.iter().filter(|a| !a.resolved_at(now)).collect();
        let suppressed = firing
            .iter()
            .filter(|a| {
                !self.silences.mutes(&a.labels, now).is_empty()
                    || rt.inhibitor.inhibited_by(&a.labels, &all, now).is_some()
            })
            .count();
        (firing.len() - suppressed, suppressed)
    }

    fn aggregation_groups(&self) -> usize {
        self.dispatcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    fn cluster_text(&self, out: &mut String) {
        match self.cluster.get() {
            Some(c) => c.metrics_text(out),
            None => out.push_str("# HELP alertmanager_cluster_enabled Indicates whether the clustering is enabled or not.\n# TYPE alertmanager_cluster_enabled gauge\nalertmanager_cluster_enabled 0\n"),
        }
    }

    fn silence_states(&self) -> (usize, usize, usize) {
        let now = now_ms();
        let mut counts = (0, 0, 0);
        for s in self.silences.all() {
            match s.state(now) {
                crate::silences::SilenceState::Active => counts.0 += 1,
                crate::silences::SilenceState::Pending => counts.1 += 1,
                crate::silences::SilenceState::Expired => counts.2 += 1,
            }
        }
        counts
    }
}

/// The router's state: one Alertmanager's alerts, silences and config.
/// Clones share it.
#[derive(Clone)]
pub struct AlertsApi {
    inner: Arc<Inner>,
}

impl Default for AlertsApi {
    /// No `alertmanager.yml`: [`Config::default`] (one route to a
    /// receiver without integrations), upstream's 120h retention, nothing
    /// persisted and no dispatcher task until [`AlertsApi::start`].
    fn default() -> Self {
        let config = Config::default();
        let rt = Runtime::new(config.clone(), None)
            .unwrap_or_else(|_| Runtime::without_notifiers(config));
        Self::with_runtime(
            rt,
            None,
            &AlertsConfig::default(),
            None,
            crate::driver::MAINTENANCE_INTERVAL,
        )
    }
}

/// `--web.external-url`, or (as upstream, but with `localhost` where
/// upstream asks the OS for the host name) the listen port on this host.
fn external_url(cfg: &AlertsConfig) -> String {
    if let Some(u) = &cfg.external_url {
        return u.trim_end_matches('/').to_owned();
    }
    let port = cfg
        .http_listen_address
        .rsplit_once(':')
        .map_or("9093", |(_, p)| p);
    format!("http://localhost:{port}")
}

impl AlertsApi {
    /// Loads `cfg.config_file` (the user's `alertmanager.yml`) if set and
    /// the snapshots under `cfg.local_path`. Inside a tokio runtime it also
    /// starts the dispatcher task (see [`AlertsApi::start`]); call
    /// [`AlertsApi::shutdown`] to stop it and write a final snapshot.
    pub fn from_config(cfg: &AlertsConfig) -> Result<Self, AlertsError> {
        Self::from_config_with_maintenance(cfg, crate::driver::MAINTENANCE_INTERVAL)
    }

    /// Like [`AlertsApi::from_config`] with another interval between GC
    /// and snapshot runs (upstream's `--data.maintenance-interval`), for
    /// tests and operators who want a tighter bound on what a crash loses.
    pub fn from_config_with_maintenance(
        cfg: &AlertsConfig,
        every: std::time::Duration,
    ) -> Result<Self, AlertsError> {
        let config = match &cfg.config_file {
            Some(path) => Config::load_file(path)?,
            None => Config::default(),
        };
        let base = cfg.config_file.as_deref().and_then(std::path::Path::parent);
        let rt = Runtime::new(config, base)?;
        let api = Self::with_runtime(
            rt,
            cfg.config_file.clone(),
            cfg,
            Some(cfg.local_path.clone()),
            every.max(std::time::Duration::from_millis(10)),
        );
        api.restore();
        api.start();
        // Without peers a replica is a cluster of one, which behaves as no
        // cluster at all; not binding the default gossip port then keeps
        // several single instances on one host from colliding.
        if !cfg.cluster_listen_address.is_empty() && !cfg.peers.is_empty() {
            api.start_cluster(&ClusterSettings {
                listen: cfg.cluster_listen_address.clone(),
                peers: cfg.peers.clone(),
                peer_timeout: cfg.peer_timeout.as_std(),
            })?;
        }
        Ok(api)
    }

    /// Starts HA gossip with these settings (see [`crate::cluster`]).
    pub fn start_cluster(&self, settings: &ClusterSettings) -> Result<(), AlertsError> {
        if self.inner.cluster.get().is_some() {
            return Ok(());
        }
        let weak: std::sync::Weak<dyn SharedState> = {
            let strong: Arc<dyn SharedState> = self.inner.clone();
            Arc::downgrade(&strong)
        };
        let c = Cluster::start(settings, weak)?;
        if let Err(c) = self.inner.cluster.set(c) {
            c.stop();
        }
        Ok(())
    }

    /// The HA cluster peer, when gossip runs.
    pub fn cluster(&self) -> Option<Arc<Cluster>> {
        self.inner.cluster.get().cloned()
    }

    fn with_runtime(
        rt: Runtime,
        file: Option<PathBuf>,
        cfg: &AlertsConfig,
        local_path: Option<PathBuf>,
        maintenance_interval: std::time::Duration,
    ) -> Self {
        warn_unbuilt(&rt.config);
        let now = now_ms();
        AlertsApi {
            inner: Arc::new(Inner {
                config_file: file,
                runtime: RwLock::new(Arc::new(rt)),
                alerts: AlertStore::new(),
                silences: Silences::new(cfg.retention.as_std()),
                started_ms: now,
                last_gc_ms: Mutex::new(now),
                metrics: OnceLock::new(),
                dispatcher: Mutex::new(Dispatcher::new()),
                wake: tokio::sync::Notify::new(),
                external_url: external_url(cfg),
                local_path,
                retention: cfg.retention.as_std(),
                maintenance_interval,
                stop: tokio::sync::watch::channel(false).0,
                task: Mutex::new(None),
                snapshot_lock: Mutex::new(()),
                cluster: OnceLock::new(),
                remote: OnceLock::new(),
            }),
        }
    }

    /// Loads the snapshots, if any; a broken snapshot is logged and
    /// skipped rather than stopping the role.
    fn restore(&self) {
        let Some(dir) = &self.inner.local_path else {
            return;
        };
        if let Err(e) = crate::persist::prepare(dir) {
            tracing::error!(error = %e, "alert-router state will not be saved");
            return;
        }
        match crate::persist::load(dir) {
            Ok((sils, log)) => {
                let s = self.inner.silences.restore(sils);
                let l = self.lock_dispatcher().restore_log(log);
                if s + l > 0 {
                    tracing::info!(silences = s, nflog_entries = l, dir = %dir.display(), "state restored");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot restore alert-router state"),
        }
    }

    /// Starts the dispatcher task on the current tokio runtime; returns
    /// false outside a runtime, when it already runs or after a stop.
    pub fn start(&self) -> bool {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        if *self.inner.stop.borrow() {
            return false;
        }
        let mut task = self.inner.task.lock().unwrap_or_else(|p| p.into_inner());
        if task.is_some() {
            return false;
        }
        let stop = self.inner.stop.subscribe();
        *task = Some(handle.spawn(crate::driver::run(self.clone(), stop)));
        true
    }

    /// Stops the dispatcher task (abandoning sends in flight, which are
    /// retried after a restart) and writes a final snapshot.
    pub async fn shutdown(&self) {
        // Stored even with no task listening, so a later start refuses.
        self.inner.stop.send_replace(true);
        if let Some(c) = self.cluster() {
            c.shutdown().await;
        }
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match task {
            Some(t) => {
                let _ = t.await;
            }
            None => self.maintenance(),
        }
    }

    /// The synchronous form of [`AlertsApi::shutdown`] for shutdown hooks
    /// that cannot await: stops the dispatcher task and writes the final
    /// snapshot before returning.
    pub fn stop(&self) {
        // Stored even with no task listening, so a later start refuses.
        self.inner.stop.send_replace(true);
        if let Some(c) = self.cluster() {
            c.stop();
        }
        if let Some(t) = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            t.abort();
        }
        self.maintain(true);
    }

    fn lock_dispatcher(&self) -> std::sync::MutexGuard<'_, Dispatcher> {
        self.inner
            .dispatcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn next_flush_at(&self) -> Option<Millis> {
        self.lock_dispatcher().next_flush_at()
    }

    pub(crate) fn wake(&self) -> &tokio::sync::Notify {
        &self.inner.wake
    }

    pub(crate) fn flush_due(&self, now: Millis) -> Vec<crate::dispatch::Flush> {
        // The view copies every stored alert: only worth it when a group
        // is due, not on each wake-up that new alerts cause.
        if self.next_flush_at().is_none_or(|t| t > now) {
            return Vec::new();
        }
        let view = FlushView {
            api: self,
            rt: self.runtime(),
            all: self.inner.alerts.all(),
            now,
        };
        self.lock_dispatcher().flush_due(now, &view)
    }

    pub(crate) fn complete(&self, flush: crate::dispatch::Flush, ok: &[bool]) {
        // The log records when the notification went out, as upstream's
        // nflog does, so repeat_interval counts from the actual send.
        let written = self.lock_dispatcher().complete_each(flush, ok, now_ms());
        self.inner.wake.notify_one();
        if let Some(c) = self.cluster() {
            c.broadcast(StateMsg {
                silences: Vec::new(),
                nflog: written,
            });
        }
    }

    /// Drops the notifications of `flush` that a peer sent meanwhile.
    pub(crate) fn recheck(&self, flush: &mut crate::dispatch::Flush) {
        self.lock_dispatcher().recheck(flush, now_ms());
    }

    /// Tells the peers about these silences as they are now.
    fn gossip_silences(&self, ids: &[&str]) {
        let Some(c) = self.cluster() else {
            return;
        };
        let silences = ids
            .iter()
            .filter_map(|id| self.inner.silences.get(id))
            .collect();
        c.broadcast(StateMsg {
            silences,
            nflog: Vec::new(),
        });
    }

    pub(crate) fn sender(&self, i: &crate::dispatch::Integration) -> Option<Arc<Sender>> {
        self.runtime().notifiers.get(i)
    }

    pub(crate) fn metrics(&self) -> Option<AlertsMetrics> {
        self.inner.metrics.get().cloned()
    }

    pub(crate) fn external_url(&self) -> String {
        self.inner.external_url.clone()
    }

    pub(crate) fn maintenance_interval(&self) -> std::time::Duration {
        self.inner.maintenance_interval
    }

    /// Upstream's maintenance: GC of alerts, silences and the log, then a
    /// snapshot (copied to the object store in the background).
    pub fn maintenance(&self) {
        self.maintain(false);
    }

    /// Keeps the snapshots in `store` as well as on local disk: state
    /// found there is merged in now (so a replica started on an empty disk
    /// gets its silences and notification log back), and every later
    /// snapshot is copied there. Returns how many silences and log
    /// entries the store added. Call once, inside a tokio runtime.
    pub async fn attach_object_store(&self, store: pharos_storage::ObjectStorage) -> usize {
        let mut files: [Option<axum::body::Bytes>; 2] = [None, None];
        for (slot, name) in files.iter_mut().zip(crate::persist::FILES) {
            match store.get(name).await {
                Ok(b) => *slot = Some(b),
                Err(e) if e.class() == ErrorClass::NotFound => {}
                Err(e) => {
                    tracing::error!(error = %e, file = name, "cannot read alert-router snapshot from object storage")
                }
            }
        }
        let origin = format!("object storage {}", store.prefix());
        let added = match crate::persist::decode(&origin, files[0].as_deref(), files[1].as_deref())
        {
            Ok((sils, log)) => {
                let s = self.inner.silences.merge(sils);
                let l = self.lock_dispatcher().merge_log(log);
                if s + l > 0 {
                    tracing::info!(silences = s, nflog_entries = l, origin, "state restored");
                }
                s + l
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot restore alert-router state");
                0
            }
        };
        let _ = self.inner.remote.set(Remote {
            store,
            handle: tokio::runtime::Handle::current(),
            order: Arc::new(tokio::sync::Mutex::new(())),
        });
        added
    }

    /// Copies snapshot files to the object store, if attached; `wait`
    /// blocks until the copy is done (or 10 s passed), for the last
    /// snapshot before exit. A failed copy is logged and made again, with
    /// newer state, at the next maintenance.
    fn mirror(&self, files: [Vec<u8>; 2], wait: bool) {
        let Some(remote) = self.inner.remote.get() else {
            return;
        };
        let store = remote.store.clone();
        let order = remote.order.clone();
        let copy = async move {
            let _in_order = order.lock().await;
            for (name, bytes) in crate::persist::FILES.into_iter().zip(files) {
                if let Err(e) = store.put(name, axum::body::Bytes::from(bytes)).await {
                    tracing::warn!(error = %e, file = name, "cannot copy alert-router snapshot to object storage");
                    return false;
                }
            }
            true
        };
        if wait {
            let handle = remote.handle.clone();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(handle.block_on(copy));
            });
            if rx.recv_timeout(std::time::Duration::from_secs(10)).is_err() {
                tracing::warn!(
                    "alert-router snapshot copy to object storage did not finish in 10s"
                );
            }
        } else {
            remote.handle.spawn(copy);
        }
    }

    fn maintain(&self, wait_for_copy: bool) {
        let now = now_ms();
        self.gc(now);
        self.lock_dispatcher().gc_log(now, self.inner.retention);
        let Some(dir) = &self.inner.local_path else {
            return;
        };
        let _one_writer = self
            .inner
            .snapshot_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let log = self.lock_dispatcher().log_entries();
        match crate::persist::save(dir, self.inner.silences.all(), log) {
            Ok(files) => {
                tracing::debug!(dir = %dir.display(), "state snapshot written");
                self.mirror(files, wait_for_copy);
            }
            Err(e) => tracing::error!(error = %e, "cannot write alert-router state snapshot"),
        }
    }

    /// The dispatcher's aggregation groups now.
    pub fn groups(&self) -> Vec<crate::dispatch::GroupView> {
        self.lock_dispatcher().groups()
    }

    fn runtime(&self) -> Arc<Runtime> {
        self.inner
            .runtime
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Registers upstream's `alertmanager_*` metrics in `registry`; call
    /// once (later calls are ignored).
    pub fn register_metrics(&self, registry: &Registry) {
        if self.inner.metrics.get().is_some() {
            return;
        }
        let m = AlertsMetrics::new(registry);
        m.reload_ok.set(1.0);
        m.reload_ok_at.set(self.inner.started_ms as f64 / 1000.0);
        if self.inner.metrics.set(m).is_ok() {
            let weak: std::sync::Weak<dyn StateCounts> = {
                let strong: Arc<dyn StateCounts> = self.inner.clone();
                Arc::downgrade(&strong)
            };
            registry.register(Arc::new(StateCollector(weak)));
        }
    }

    /// The active config.
    pub fn config(&self) -> Config {
        self.runtime().config.clone()
    }

    /// Re-reads the config file; alerts and silences are kept. Without a
    /// file there is nothing to re-read and the default config stays.
    pub fn reload(&self) -> Result<(), AlertsError> {
        let Some(path) = &self.inner.config_file else {
            return Ok(());
        };
        let config = match Config::load_file(path) {
            Ok(c) => c,
            Err(e) => {
                if let Some(m) = self.inner.metrics.get() {
                    m.reload_ok.set(0.0);
                }
                return Err(e.into());
            }
        };
        let rt = match Runtime::new(config, path.parent()) {
            Ok(rt) => rt,
            Err(e) => {
                if let Some(m) = self.inner.metrics.get() {
                    m.reload_ok.set(0.0);
                }
                return Err(e);
            }
        };
        warn_unbuilt(&rt.config);
        if let Some(m) = self.inner.metrics.get() {
            m.reload_ok.set(1.0);
            m.reload_ok_at.set(now_ms() as f64 / 1000.0);
        }
        let rt = Arc::new(rt);
        *self
            .inner
            .runtime
            .write()
            .unwrap_or_else(|p| p.into_inner()) = rt.clone();
        // As upstream, a reload rebuilds the aggregation groups from the
        // stored alerts; the notification log survives, so nothing that
        // was already sent is sent again.
        {
            let now = now_ms();
            let mut d = self.lock_dispatcher();
            d.reset_groups();
            for a in self.inner.alerts.all() {
                d.process(&rt.route, &a, now);
            }
        }
        self.inner.wake.notify_one();
        tracing::info!(file = %path.display(), "alertmanager configuration reloaded");
        Ok(())
    }

    /// Drops resolved alerts and silences past their retention.
    pub fn gc(&self, now: Millis) {
        let alerts = self.inner.alerts.gc(now).len();
        let silences = self.inner.silences.gc(now);
        tracing::debug!(alerts, silences, "garbage collected");
    }

    /// GC runs from requests rather than a timer so the state needs no
    /// task of its own.
    fn maybe_gc(&self, now: Millis) {
        let due = {
            let mut last = self
                .inner
                .last_gc_ms
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let due = now - *last >= ALERT_GC_INTERVAL_MS;
            if due {
                *last = now;
            }
            due
        };
        if due {
            self.gc(now);
        }
    }

    /// Receives alerts as `POST /api/v2/alerts` does; `Err` carries the
    /// joined validation errors of the rejected ones (the valid ones are
    /// stored regardless, as upstream).
    pub fn put_alerts(&self, alerts: Vec<PostableAlert>, now: Millis) -> Result<(), String> {
        let resolve_timeout = i64::try_from(
            self.runtime()
                .config
                .global
                .resolve_timeout
                .as_std()
                .as_millis(),
        )
        .unwrap_or(i64::MAX);
        let mut valid = Vec::with_capacity(alerts.len());
        let mut errors = Vec::new();
        for a in alerts {
            let mut alert = Alert {
                labels: {
                    // In place: rebuilding the map per alert costs more
                    // than the rest of its intake.
                    let mut labels = a.labels;
                    labels.retain(|_, v| !v.is_empty());
                    labels
                },
                annotations: a.annotations,
                starts_at: a.starts_at.unwrap_or(0),
                ends_at: a.ends_at.unwrap_or(0),
                generator_url: a.generator_url,
                updated_at: now,
                timeout: false,
            };
            if alert.starts_at == 0 {
                alert.starts_at = if alert.ends_at == 0 {
                    now
                } else {
                    alert.ends_at
                };
            }
            if alert.ends_at == 0 {
                alert.timeout = true;
                alert.ends_at = now.saturating_add(resolve_timeout);
            }
            let metrics = self.inner.metrics.get();
            if let Some(m) = metrics {
                m.received(alert.ends_at > now);
            }
            match validate_alert(&alert) {
                Ok(()) => valid.push(alert),
                Err(e) => {
                    if let Some(m) = metrics {
                        m.invalid.inc();
                    }
                    errors.push(e);
                }
            }
        }
        let stored = self.inner.alerts.put_shared(valid, now);
        if !stored.is_empty() {
            let rt = self.runtime();
            let mut d = self.lock_dispatcher();
            for (fp, a) in &stored {
                d.process_shared(&rt.route, *fp, a, now);
            }
            drop(d);
            self.inner.wake.notify_one();
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// `silencedBy`, `inhibitedBy` for an alert now.
    fn status_of(&self, rt: &Runtime, alert: &Alert, all: &[Alert], now: Millis) -> AlertStatus {
        AlertStatus {
            silenced_by: self.inner.silences.mutes(&alert.labels, now),
            inhibited_by: rt
                .inhibitor
                .inhibited_by(&alert.labels, all, now)
                .map(|fp| vec![format!("{fp:016x}")])
                .unwrap_or_default(),
        }
    }
}

/// Parts of a valid `alertmanager.yml` that Pharos reads but does not act
/// on yet: said loudly rather than ignored.
fn warn_unbuilt(config: &Config) {
    for r in &config.receivers {
        for i in crate::dispatch::integrations(r) {
            if !matches!(
                i.kind,
                "webhook"
                    | "email"
                    | "slack"
                    | "discord"
                    | "msteams"
                    | "pagerduty"
                    | "opsgenie"
                    | "webex"
                    | "telegram"
            ) {
                tracing::warn!(
                    receiver = %r.name,
                    integration = i.kind,
                    "this notification integration is not implemented yet in pharos: its notifications fail"
                );
            }
        }
    }
}

/// What the dispatcher asks of the live state when groups are flushed:
/// one view of the alerts, config and clock for the whole flush, so
/// muting is not recomputed from a fresh copy of the store per alert.
struct FlushView<'a> {
    api: &'a AlertsApi,
    rt: Arc<Runtime>,
    all: Vec<Alert>,
    now: Millis,
}

impl crate::dispatch::FlushContext for FlushView<'_> {
    fn muted(&self, alert: &Alert) -> bool {
        if !self
            .api
            .inner
            .silences
            .mutes(&alert.labels, self.now)
            .is_empty()
        {
            return true;
        }
        self.rt
            .inhibitor
            .inhibited_by(&alert.labels, &self.all, self.now)
            .is_some()
    }

    fn integrations(&self, receiver: &str) -> Vec<crate::dispatch::Integration> {
        self.rt
            .config
            .receivers
            .iter()
            .find(|r| r.name == receiver)
            .map(crate::dispatch::integrations)
            .unwrap_or_default()
    }

    fn time_muted(&self, mute: &[String], active: &[String], now: Millis) -> bool {
        self.rt.config.time_muted(mute, active, now)
    }
}

fn validate_alert(a: &Alert) -> Result<(), String> {
    if a.starts_at == 0 {
        return Err("start time missing".into());
    }
    if a.ends_at != 0 && a.ends_at < a.starts_at {
        return Err("start time must be before end time".into());
    }
    if let Some(k) = a.labels.keys().find(|k| !is_valid_label_name(k)) {
        return Err(format!("invalid label set: invalid name {k:?}"));
    }
    if a.labels.is_empty() {
        return Err("at least one label pair required".into());
    }
    if let Some(k) = a.annotations.keys().find(|k| !is_valid_label_name(k)) {
        return Err(format!("invalid annotations: invalid name {k:?}"));
    }
    Ok(())
}

struct AlertStatus {
    silenced_by: Vec<String>,
    inhibited_by: Vec<String>,
}

impl AlertStatus {
    fn state(&self) -> &'static str {
        if self.silenced_by.is_empty() && self.inhibited_by.is_empty() {
            "active"
        } else {
            "suppressed"
        }
    }
}

/// One element of the `POST /api/v2/alerts` body.
#[derive(Debug, Clone, Default)]
pub struct PostableAlert {
    pub labels: LabelSet,
    pub annotations: LabelSet,
    pub starts_at: Option<Millis>,
    pub ends_at: Option<Millis>,
    pub generator_url: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPostableAlert {
    #[serde(default)]
    labels: LabelSet,
    #[serde(default)]
    annotations: LabelSet,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: String,
}

/// `field` of the `i`th alert; the name is only formatted for an error.
fn date(i: usize, field: &str, v: Option<&str>) -> Result<Option<Millis>, String> {
    match v {
        None | Some("") => Ok(None),
        Some(s) => match parse_rfc3339(s) {
            // Go clients send the zero time.Time for "unset".
            Some(ms) if ms <= GO_ZERO_TIME_MS => Ok(None),
            Some(ms) => Ok(Some(ms)),
            None => Err(format!(
                "{i}.{field} in body must be of type date-time: {s:?}"
            )),
        },
    }
}

/// A request refused before it reaches the state, in the body shape
/// upstream uses for that case.
#[derive(Debug)]
enum Reject {
    /// A handler's own refusal: a JSON string.
    Api(ApiError),
    /// go-swagger's validation failures: `{"code":..., "message":...}`.
    Swagger {
        status: StatusCode,
        code: u16,
        message: String,
    },
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        match self {
            Reject::Api(e) => e.into_response(),
            Reject::Swagger {
                status,
                code,
                message,
            } => (status, Json(json!({"code": code, "message": message}))).into_response(),
        }
    }
}

fn bad(message: impl Into<String>) -> Reject {
    Reject::Api(ApiError::new(
        ErrorFormat::JsonString,
        ErrorClass::BadRequest,
        message,
    ))
}

/// go-openapi's validation error codes.
const INVALID_TYPE: u16 = 601;
const REQUIRED: u16 = 602;
const MIN_ITEMS: u16 = 612;

fn swagger_error(status: StatusCode, code: u16, message: String) -> Reject {
    Reject::Swagger {
        status,
        code,
        message,
    }
}

/// The API is single-tenant for now: a request for another tenant is
/// refused rather than silently served from the shared state.
fn check_tenant(t: &Tenant) -> Result<(), Reject> {
    if t.0.as_str() == pharos_core::tenant::ANONYMOUS {
        return Ok(());
    }
    Err(Reject::Api(ApiError::new(
        ErrorFormat::JsonString,
        ErrorClass::NotImplemented,
        "per-tenant Alertmanagers are not implemented yet in pharos",
    )))
}

pub fn router(state: AlertsApi) -> Router {
    Router::new()
        .route("/-/healthy", get(|| async { "OK" }).head(|| async { "OK" }))
        .route("/-/ready", get(|| async { "OK" }).head(|| async { "OK" }))
        .route("/-/reload", post(reload))
        .route("/api/v1/{*rest}", any(v1_gone))
        .route("/api/v2/alerts", get(get_alerts).post(post_alerts))
        .route("/api/v2/alerts/groups", get(get_groups))
        .route("/api/v2/silences", get(get_silences).post(post_silences))
        .route(
            "/api/v2/silence/{id}",
            get(get_silence).delete(delete_silence),
        )
        .route("/api/v2/status", get(get_status))
        .route("/api/v2/receivers", get(get_receivers))
        .route("/api/v2/{*rest}", any(v2_not_found))
        .with_state(state)
}

/// Alertmanager removed API v1 in 0.27 and answers it with 410 and this
/// message; amtool and Grafana use v2.
async fn v1_gone() -> impl IntoResponse {
    (
        StatusCode::GONE,
        Json(
            "The Alertmanager v1 API was deprecated in version 0.16.0 and is removed as of version 0.27.0 - please use the equivalent route in the v2 API",
        ),
    )
}

async fn v2_not_found(axum::extract::OriginalUri(uri): axum::extract::OriginalUri) -> Response {
    swagger_error(
        StatusCode::NOT_FOUND,
        404,
        format!("path {} was not found", uri.path()),
    )
    .into_response()
}

async fn reload(State(api): State<AlertsApi>) -> Response {
    match api.reload() {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reloading alertmanager configuration failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to reload config: {e}\n"),
            )
                .into_response()
        }
    }
}

/// Query parameters, with repeated keys kept (`filter` may repeat).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        Params(pairs)
    }

    fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn one(&self, key: &str) -> Option<&str> {
        self.all(key).next()
    }

    /// A boolean with upstream's default of true, spelled as go-swagger
    /// accepts it.
    fn flag(&self, key: &str) -> Result<bool, Reject> {
        match self.one(key) {
            None | Some("") => Ok(true),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "t" | "yes" | "y" | "on" => Ok(true),
                "false" | "0" | "f" | "no" | "n" | "off" => Ok(false),
                _ => Err(swagger_error(
                    StatusCode::BAD_REQUEST,
                    400,
                    format!("{key} in query must be of type boolean: {v:?}"),
                )),
            },
        }
    }

    fn filter(&self) -> Result<Vec<Matcher>, Reject> {
        self.all("filter")
            .map(|f| parse_matcher(f).map_err(|e| bad(e.to_string())))
            .collect()
    }

    fn receiver(&self) -> Result<Option<regex::Regex>, Reject> {
        self.one("receiver")
            .map(|r| {
                regex::Regex::new(&format!("^(?:{r})$"))
                    .map_err(|e| bad(format!("failed to parse receiver param: {e}")))
            })
            .transpose()
    }
}

/// application/x-www-form-urlencoded decoding (`+` is a space).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                b.get(i + 1).and_then(|c| hex(*c)),
                b.get(i + 2).and_then(|c| hex(*c)),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct AlertFilter {
    matchers: Vec<Matcher>,
    silenced: bool,
    inhibited: bool,
    active: bool,
}

impl AlertFilter {
    fn from(p: &Params) -> Result<Self, Reject> {
        // Accepted and validated like upstream, which ignores them too:
        // nothing is left unprocessed once it is listed, and nothing is
        // muted by time intervals before the dispatcher feeds this API.
        p.flag("unprocessed")?;
        p.flag("muted")?;
        Ok(AlertFilter {
            matchers: p.filter()?,
            silenced: p.flag("silenced")?,
            inhibited: p.flag("inhibited")?,
            active: p.flag("active")?,
        })
    }

    fn accepts(&self, a: &Alert, st: &AlertStatus, now: Millis) -> bool {
        if a.ends_at != 0 && a.ends_at < now {
            return false;
        }
        if !self.active && st.state() == "active" {
            return false;
        }
        if !self.silenced && !st.silenced_by.is_empty() {
            return false;
        }
        if !self.inhibited && !st.inhibited_by.is_empty() {
            return false;
        }
        filter_matches(&self.matchers, &a.labels)
    }
}

fn alert_json(a: &Alert, st: &AlertStatus, receivers: &[&str]) -> Value {
    let mut v = json!({
        "annotations": a.annotations,
        "endsAt": format_ms(a.ends_at),
        "fingerprint": format!("{:016x}", a.fingerprint()),
        "receivers": receivers.iter().map(|r| json!({"name": r})).collect::<Vec<_>>(),
        "startsAt": format_ms(a.starts_at),
        "status": {
            "inhibitedBy": st.inhibited_by,
            // Time-interval muting is applied by the dispatcher at flush
            // time and, as in Alertmanager 0.25, not reported per alert.
            "mutedBy": [],
            "silencedBy": st.silenced_by,
            "state": st.state(),
        },
        "updatedAt": format_ms(a.updated_at),
        "labels": a.labels,
    });
    if !a.generator_url.is_empty() {
        v["generatorURL"] = json!(a.generator_url);
    }
    v
}

async fn get_alerts(
    tenant: Tenant,
    State(api): State<AlertsApi>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = check_tenant(&tenant) {
        return r.into_response();
    }
    let p = Params::parse(q.as_deref());
    let (filter, receiver) = match (AlertFilter::from(&p), p.receiver()) {
        (Ok(f), Ok(r)) => (f, r),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let now = now_ms();
    api.maybe_gc(now);
    let rt = api.runtime();
    let all = api.inner.alerts.all();
    let mut out = Vec::new();
    for a in &all {
        let receivers: Vec<&str> = rt
            .route
            .match_labels(&a.labels)
            .iter()
            .map(|r| r.receiver.as_str())
            .collect();
        if receiver
            .as_ref()
            .is_some_and(|re| !receivers.iter().any(|r| re.is_match(r)))
        {
            continue;
        }
        let st = api.status_of(&rt, a, &all, now);
        if filter.accepts(a, &st, now) {
            out.push(alert_json(a, &st, &receivers));
        }
    }
    Json(out).into_response()
}

async fn post_alerts(tenant: Tenant, State(api): State<AlertsApi>, body: Bytes) -> Response {
    if let Err(r) = check_tenant(&tenant) {
        return r.into_response();
    }
    let raw: Vec<RawPostableAlert> = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad(format!("parsing alerts body failed: {e}")).into_response(),
    };
    let mut alerts = Vec::with_capacity(raw.len());
    for (i, r) in raw.into_iter().enumerate() {
        let starts = date(i, "startsAt", r.starts_at.as_deref());
        let ends = date(i, "endsAt", r.ends_at.as_deref());
        let (starts_at, ends_at) = match (starts, ends) {
            (Ok(s), Ok(e)) => (s, e),
            (Err(m), _) | (_, Err(m)) => {
                return swagger_error(StatusCode::UNPROCESSABLE_ENTITY, INVALID_TYPE, m)
                    .into_response();
            }
        };
        alerts.push(PostableAlert {
            labels: r.labels,
            annotations: r.annotations,
            starts_at,
            ends_at,
            generator_url: r.generator_url,
        });
    }
    let now = now_ms();
    api.maybe_gc(now);
    match api.put_alerts(alerts, now) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => bad(e).into_response(),
    }
}

async fn get_groups(
    tenant: Tenant,
    State(api): State<AlertsApi>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = check_tenant(&tenant) {
        return r.into_response();
    }
    let p = Params::parse(q.as_deref());
    let (filter, receiver) = match (AlertFilter::from(&p), p.receiver()) {
        (Ok(f), Ok(r)) => (f, r),
        (Err(e), _) | (_, Err(e)) => return e.into_response(),
    };
    let now = now_ms();
    api.maybe_gc(now);
    let rt = api.runtime();
    let all = api.inner.alerts.all();
    // The dispatcher's aggregation groups, as upstream lists them: an
    // alert leaves its group once its resolution was notified.
    let views = api.groups();
    let mut groups: Vec<(String, LabelSet, Vec<&Alert>)> = Vec::new();
    let mut receivers_of = std::collections::HashMap::new();
    for g in &views {
        if receiver
            .as_ref()
            .is_some_and(|re| !re.is_match(&g.receiver))
        {
            continue;
        }
        for a in &g.alerts {
            receivers_of.entry(a.fingerprint()).or_insert_with(|| {
                rt.route
                    .match_labels(&a.labels)
                    .iter()
                    .map(|r| r.receiver.as_str())
                    .collect::<Vec<_>>()
            });
        }
        groups.push((
            g.receiver.clone(),
            g.labels.clone(),
            g.alerts.iter().collect(),
        ));
    }
    let mut out: Vec<(LabelSet, String, Vec<Value>)> = Vec::new();
    for (rcv, labels, mut alerts) in groups {
        alerts.sort_by(|a, b| alert_order(a, b));
        let items: Vec<Value> = alerts
            .into_iter()
            .filter_map(|a| {
                let st = api.status_of(&rt, a, &all, now);
                filter.accepts(a, &st, now).then(|| {
                    let rs = receivers_of
                        .get(&a.fingerprint())
                        .cloned()
                        .unwrap_or_default();
                    alert_json(a, &st, &rs)
                })
            })
            .collect();
        if !items.is_empty() {
            out.push((labels, rcv, items));
        }
    }
    out.sort_by(|a, b| labels_before(&a.0, &b.0).then_with(|| a.1.cmp(&b.1)));
    let body: Vec<Value> = out
        .into_iter()
        .map(|(labels, rcv, alerts)| json!({"alerts": alerts, "labels": labels, "receiver": {"name": rcv}}))
        .collect();
    Json(body).into_response()
}

fn silence_json(s: &Silence, now: Millis) -> Value {
    json!({
        "id": s.id,
        "status": {"state": s.state(now).as_str()},
        "updatedAt": format_ms(s.updated_at),
        "comment": s.comment,
        "createdBy": s.created_by,
        "endsAt": format_ms(s.ends_at),
        "matchers": s.matchers.iter().map(|m| json!({
            "isEqual": m.is_equal,
            "isRegex": m.is_regex,
            "name": m.name,
            "value": m.value,
        })).collect::<Vec<_>>(),
        "startsAt": format_ms(s.starts_at),
    })
}

async fn get_silences(
    tenant: Tenant,
    State(api): State<AlertsApi>,
    RawQuery(q): RawQuery,
) -> Response {
    if let Err(r) = check_tenant(&tenant) {
        return r.into_response();
    }
    let p = Params::parse(q.as_deref());
    let matchers = match p.filter() {
        Ok(m) => m,
        Err(e) => return e.into_response(),
    };
    let now = now_ms();
    api.maybe_gc(now);
    let mut sils: Vec<Silence> = api
        .inner
        .silences
        .all()
        .into_iter()
        .filter(|s| {
            // Upstream compares filters with the silence's matcher values
            // as if they were labels.
            let as_labels: LabelSet = s
                .matchers
                .iter()
                .map(|m| (m.name.clone(), m.value.clone()))
                .collect();
            filter_matches(&matchers, &as_labels)
        })
        .collect();
    sort_for_listing(&mut sils, now);
    Json(
        sils.iter()
            .map(|s| silence_json(s, now))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSilenceMatcher {
    name: Option<String>,
    value: Option<String>,
    is_regex: Option<bool>,
    is_equal: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPostableSilence {
    #[serde(default)]
    id: String,
    matchers: Option<Vec<RawSilenceMatcher>>,
    starts_at: Option<String>,
    ends_at: Option<String>,
    created_by: Option<String>,
    comment: Option<String>,
}

fn required<T>(v: Option<T>, name: &str) -> Result<T, Reject> {
    v.ok_or_else(|| {
        swagger_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            REQUIRED,
            format!("{name} in body is required"),
        )
    })
}

fn postable_silence(r: RawPostableSilence) -> Result<Silence, Reject> {
    let ms = required(r.matchers, "matchers")?;
    if ms.is_empty() {
        return Err(swagger_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            MIN_ITEMS,
            "matchers in body should have at least 1 items".into(),
        ));
    }
    let mut matchers = Vec::with_capacity(ms.len());
    for (i, m) in ms.into_iter().enumerate() {
        matchers.push(SilenceMatcher {
            name: required(m.name, &format!("matchers.{i}.name"))?,
            value: required(m.value, &format!("matchers.{i}.value"))?,
            is_regex: required(m.is_regex, &format!("matchers.{i}.isRegex"))?,
            is_equal: m.is_equal.unwrap_or(true),
        });
    }
    let time = |v: Option<String>, name: &str| -> Result<Millis, Reject> {
        let s = required(v, name)?;
        parse_rfc3339(&s).ok_or_else(|| {
            swagger_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                INVALID_TYPE,
                format!("{name} in body must be of type date-time: {s:?}"),
            )
        })
    };
    Ok(Silence {
        id: r.id,
        matchers,
        starts_at: time(r.starts_at, "startsAt")?,
        ends_at: time(r.ends_at, "endsAt")?,
        updated_at: 0,
        created_by: required(r.created_by, "createdBy")?,
        comment: required(r.comment, "comment")?,
    })
}

async fn post_silences(tenant: Tenant, State(api): State<AlertsApi>, body: Bytes) -> Response {
    if let Err(r) = check_tenant(&tenant) {
        return r.into_response();
    }
    let raw: RawPostableSilence = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad(format!("parsing silence body failed: {e}")).into_response(),
    };
    let sil = match postable_silence(raw) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if sil.starts_at >= sil.ends_at {
        return bad("Failed to create silence: start time must be before end time").into_response();
    }
    let now = now_ms();
    if sil.ends_at < now {
        return bad("Failed to create silence: end time can't be in the past").into_response();
    }
    let previous = sil.id.clone();
    match api.inner.silences.set(sil, now) {
        Ok(id) => {
            // An update that had to replace the silence also expired the
            // old one: both changed.
            api.gossip_silences(&[&previous, &id]);
            Json(json!({"silenceID": id})).into_response()
        }
        Err(SilenceError::NotFound) => {
            ApiError::from_error(ErrorFormat::JsonString, &AlertsError::SilenceNotFound)
                .into_response()
        }
        Err(e) => bad(e.to_string()).into_response(),
    }
}

fn check_uuid(id: &str) -> Result<(), Reject> {
    if crate::uuid::is_uuid(id) {
        Ok(())
    } else {
        Err(swagger_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            INVALID_TYPE,
            format!("silenceID in path must be of type uuid: {id:?}"),
        ))
    }
}

async fn get_silence(
    tenant: Tenant,
    State(api): State<AlertsApi>,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = check_tenant(&tenant).and_then(|()| check_uuid(&id)) {
        return r.into_response();
    }
    match api.inner.silences.get(&id) {
        Some(s) => Json(silence_json(&s, now_ms())).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delete_silence(
    tenant: Tenant,
    State(api): State<AlertsApi>,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = check_tenant(&tenant).and_then(|()| check_uuid(&id)) {
        return r.into_response();
    }
    match api.inner.silences.expire(&id, now_ms()) {
        Ok(()) => {
            api.gossip_silences(&[&id]);
            StatusCode::OK.into_response()
        }
        Err(SilenceError::NotFound) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => ApiError::new(ErrorFormat::JsonString, ErrorClass::Internal, e.to_string())
            .into_response(),
    }
}

async fn get_status(tenant: Tenant, State(api): State<AlertsApi>) -> Response {
    if let Err(r) = check_tenant(&tenant) {
        return r.into_response();
    }
    let b = pharos_core::BuildInfo::current();
    Json(json!({
        "cluster": api.cluster().map_or_else(
            || json!({"peers": [], "status": "disabled"}),
            |c| c.status_json(),
        ),
        "config": {"original": api.runtime().shown},
        "uptime": format_ms(api.inner.started_ms),
        "versionInfo": {
            "branch": b.branch,
            "buildDate": b.build_date,
            "buildUser": b.build_user,
            "goVersion": b.go_version,
            "revision": b.revision,
            "version": b.version,
        },
    }))
    .into_response()
}

async fn get_receivers(tenant: Tenant, State(api): State<AlertsApi>) -> Response {
    if let Err(r) = check_tenant(&tenant) {
        return r.into_response();
    }
    let rt = api.runtime();
    Json(
        rt.config
            .receivers
            .iter()
            .map(|r| json!({"name": r.name}))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

#[cfg(test)]
mod tests;

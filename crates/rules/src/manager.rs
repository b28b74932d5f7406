//! The rule manager: one task per group evaluating on Prometheus' slots,
//! reloads that keep the state of unchanged rules, and `/metrics` output.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pharos_model::{Labels, Sample};
use pharos_promql::{Engine, Queryable};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::RulesError;
use crate::file;
use crate::group::{AlertSender, Group, GroupOptions, RuleSink, wall_now_ms};
use crate::rule::EvalEnv;

/// Everything the manager needs from the server.
#[derive(Clone)]
pub struct ManagerOptions {
    pub engine: Arc<Engine>,
    pub queryable: Arc<dyn Queryable>,
    pub sink: Arc<dyn RuleSink>,
    pub sender: Arc<dyn AlertSender>,
    /// `global.evaluation_interval`.
    pub evaluation_interval: Duration,
    pub external_labels: Labels,
    pub external_url: String,
    pub group: GroupOptions,
}

struct Handle {
    /// File and name, readable without locking the group.
    id: (String, String),
    group: Arc<Mutex<Group>>,
    stop: Option<watch::Sender<bool>>,
    task: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Inner {
    groups: BTreeMap<String, Handle>,
    restored: bool,
    running: bool,
}

pub struct Manager {
    opts: ManagerOptions,
    inner: tokio::sync::Mutex<Inner>,
    clock: Clock,
}

/// Wall-clock milliseconds derived from tokio's clock, so a test runtime
/// with paused time drives evaluation deterministically and instantly.
#[derive(Debug, Clone, Copy)]
struct Clock {
    base_wall_ms: i64,
    base: tokio::time::Instant,
}

impl Clock {
    fn new() -> Self {
        Clock {
            base_wall_ms: wall_now_ms(),
            base: tokio::time::Instant::now(),
        }
    }

    fn now_ms(&self) -> i64 {
        self.base_wall_ms + self.base.elapsed().as_millis() as i64
    }
}

fn lock(g: &Mutex<Group>) -> std::sync::MutexGuard<'_, Group> {
    g.lock().unwrap_or_else(|e| e.into_inner())
}

impl Manager {
    pub fn new(opts: ManagerOptions) -> Self {
        Manager {
            opts,
            inner: tokio::sync::Mutex::new(Inner::default()),
            clock: Clock::new(),
        }
    }

    fn env(&self) -> EvalEnv {
        EvalEnv {
            engine: self.opts.engine.clone(),
            queryable: self.opts.queryable.clone(),
            external_labels: self.opts.external_labels.clone(),
            external_url: self.opts.external_url.clone(),
        }
    }

    /// Starts evaluating; groups loaded before start wait for it, so no
    /// query hits a storage that is still replaying.
    pub async fn start(&self) {
        let mut inner = self.inner.lock().await;
        inner.running = true;
        for h in inner.groups.values_mut() {
            if h.task.is_none() {
                self.spawn(h);
            }
        }
    }

    fn spawn(&self, h: &mut Handle) {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(run_group(
            h.group.clone(),
            self.env(),
            self.opts.clone(),
            self.clock,
            rx,
        ));
        h.stop = Some(tx);
        h.task = Some(task);
    }

    /// Loads `files` (already glob-expanded) and swaps them in. On any
    /// error the running rules stay and the error is returned.
    pub async fn update(&self, files: &[PathBuf]) -> Result<(), RulesError> {
        let parsed = file::load_files(files)?;
        let mut inner = self.inner.lock().await;
        let restored = inner.restored;
        let default_interval = i64::try_from(self.opts.evaluation_interval.as_millis())
            .unwrap_or(60_000)
            .max(1);
        let mut new: BTreeMap<String, Group> = BTreeMap::new();
        for f in &parsed {
            for g in &f.groups {
                let grp = Group::from_spec(g, &f.path, default_interval, restored);
                new.insert(grp.key(), grp);
            }
        }
        inner.restored = true;
        let mut next: BTreeMap<String, Handle> = BTreeMap::new();
        for (key, mut newg) in new {
            if let Some(mut old) = inner.groups.remove(&key) {
                if lock(&old.group).same_definition(&newg) {
                    next.insert(key, old);
                    continue;
                }
                stop_handle(&mut old).await;
                newg.copy_state(&lock(&old.group));
            }
            let mut h = Handle {
                id: (newg.file.clone(), newg.name.clone()),
                group: Arc::new(Mutex::new(newg)),
                stop: None,
                task: None,
            };
            if inner.running {
                self.spawn(&mut h);
            }
            next.insert(key, h);
        }
        for (_, mut old) in std::mem::take(&mut inner.groups) {
            stop_handle(&mut old).await;
            let (series, interval) = {
                let mut g = lock(&old.group);
                (g.take_previous_series(), g.interval_ms)
            };
            if series.is_empty() || !inner.running {
                continue;
            }
            // Renamed rules get two intervals to write their new series
            // before the old ones are marked stale.
            let sink = self.opts.sink.clone();
            let now = self.clock.now_ms();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(2 * interval as u64)).await;
                let batch = series
                    .into_iter()
                    .map(|l| (l, vec![Sample::stale(now)]))
                    .collect();
                if let Err(e) = sink.append(batch) {
                    tracing::warn!(err = %e, "adding stale samples for removed group failed");
                }
            });
        }
        inner.groups = next;
        Ok(())
    }

    /// `rule_files:` patterns from prometheus.yml, relative ones against
    /// the config file's directory.
    pub async fn update_patterns(
        &self,
        patterns: &[String],
        base: &std::path::Path,
    ) -> Result<(), RulesError> {
        let files = file::expand_globs(patterns, base)?;
        self.update(&files).await
    }

    /// Stops every group, waiting for running evaluations to finish.
    pub async fn stop(&self) {
        let mut inner = self.inner.lock().await;
        inner.running = false;
        for h in inner.groups.values_mut() {
            stop_handle(h).await;
        }
    }

    /// Groups sorted by file then name, as Prometheus lists them.
    pub async fn groups(&self) -> Vec<Arc<Mutex<Group>>> {
        let inner = self.inner.lock().await;
        let mut v: Vec<(String, String, Arc<Mutex<Group>>)> = inner
            .groups
            .values()
            .map(|h| (h.id.0.clone(), h.id.1.clone(), h.group.clone()))
            .collect();
        v.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        v.into_iter().map(|x| x.2).collect()
    }

    /// The `prometheus_rule_*` metrics in text exposition format.
    pub async fn render_metrics(&self) -> String {
        let groups = self.groups().await;
        let mut rows: Vec<(String, crate::group::GroupStats, i64, usize)> = Vec::new();
        for g in &groups {
            let g = lock(g);
            rows.push((g.key(), g.stats.clone(), g.interval_ms, g.rules.len()));
        }
        let mut out = String::new();
        let mut family =
            |name: &str,
             kind: &str,
             help: &str,
             f: &dyn Fn(&crate::group::GroupStats, i64, usize) -> f64| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                for (key, st, iv, n) in &rows {
                    let _ = writeln!(
                        out,
                        "{name}{{rule_group={}}} {}",
                        quote_label(key),
                        fmt_f64(f(st, *iv, *n))
                    );
                }
            };
        family(
            "prometheus_rule_evaluations_total",
            "counter",
            "The total number of rule evaluations.",
            &|s, _, _| s.evaluations_total as f64,
        );
        family(
            "prometheus_rule_evaluation_failures_total",
            "counter",
            "The total number of rule evaluation failures.",
            &|s, _, _| s.evaluation_failures_total as f64,
        );
        family(
            "prometheus_rule_group_iterations_total",
            "counter",
            "The total number of scheduled rule group evaluations, whether executed or missed.",
            &|s, _, _| (s.iterations_total + s.iterations_missed_total) as f64,
        );
        family(
            "prometheus_rule_group_iterations_missed_total",
            "counter",
            "The total number of rule group evaluations missed due to slow rule group evaluation.",
            &|s, _, _| s.iterations_missed_total as f64,
        );
        family(
            "prometheus_rule_group_last_duration_seconds",
            "gauge",
            "The duration of the last rule group evaluation.",
            &|s, _, _| s.last_duration_seconds,
        );
        family(
            "prometheus_rule_group_last_evaluation_timestamp_seconds",
            "gauge",
            "The timestamp of the last rule group evaluation in seconds.",
            &|s, _, _| {
                s.last_evaluation_timestamp
                    .map_or(0.0, |t| t as f64 / 1000.0)
            },
        );
        family(
            "prometheus_rule_group_last_evaluation_samples",
            "gauge",
            "The number of samples returned during the last rule group evaluation.",
            &|s, _, _| s.samples as f64,
        );
        family(
            "prometheus_rule_group_interval_seconds",
            "gauge",
            "The interval of a rule group.",
            &|_, iv, _| iv as f64 / 1000.0,
        );
        family(
            "prometheus_rule_group_rules",
            "gauge",
            "The number of rules.",
            &|_, _, n| n as f64,
        );
        out
    }
}

fn quote_label(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}

fn fmt_f64(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

async fn stop_handle(h: &mut Handle) {
    if let Some(tx) = h.stop.take() {
        let _ = tx.send(true);
    }
    if let Some(t) = h.task.take() {
        let _ = t.await;
    }
}

/// Sleeps until wall-clock `target_ms`; false when told to stop first.
async fn sleep_until_wall(clock: Clock, target_ms: i64, stop: &mut watch::Receiver<bool>) -> bool {
    let wait = (target_ms - clock.now_ms()).max(0) as u64;
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_millis(wait)) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}

/// How many slots were skipped when waking at `now` after the slot
/// `eval_ts` (Prometheus' `missed`).
pub fn missed_iterations(now: i64, eval_ts: i64, interval: i64) -> i64 {
    ((now - eval_ts) / interval - 1).max(0)
}

async fn run_group(
    group: Arc<Mutex<Group>>,
    env: EvalEnv,
    opts: ManagerOptions,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) {
    let (interval, mut eval_ts) = {
        let g = lock(&group);
        (
            g.interval_ms,
            g.eval_timestamp(clock.now_ms()) + g.interval_ms,
        )
    };
    if !sleep_until_wall(clock, eval_ts, &mut stop).await {
        return;
    }
    let iter = |ts: i64, restore_at: Option<i64>| {
        let group = group.clone();
        let env = env.clone();
        let opts = opts.clone();
        // Evaluation is synchronous CPU work; the blocking pool keeps one
        // slow group from holding up the others' timers.
        tokio::task::spawn_blocking(move || {
            let mut g = lock(&group);
            g.eval(
                ts,
                &env,
                opts.sink.as_ref(),
                opts.sender.as_ref(),
                &opts.group,
            );
            if let Some(now) = restore_at {
                g.restore_for_state(now, &env, &opts.group);
                g.should_restore = false;
            }
        })
    };
    let _ = iter(eval_ts, None).await;
    let mut restore = lock(&group).should_restore;
    loop {
        if !sleep_until_wall(clock, eval_ts + interval, &mut stop).await {
            return;
        }
        let now = clock.now_ms();
        let missed = missed_iterations(now, eval_ts, interval);
        if missed > 0 {
            lock(&group).stats.iterations_missed_total += missed as u64;
        }
        eval_ts += (missed + 1) * interval;
        // The first load restores `for` state after the second evaluation,
        // once recording rules the alerts depend on have run.
        let restore_at = restore.then(|| clock.now_ms());
        restore = false;
        let _ = iter(eval_ts, restore_at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::NoopSender;
    use crate::group::mem::MemSink;
    use crate::rule::Rule;
    use pharos_promql::{EngineOptions, MemStorage, Queryable};

    fn manager(storage: Arc<MemStorage>) -> Manager {
        Manager::new(ManagerOptions {
            engine: Arc::new(Engine::new(EngineOptions::default())),
            queryable: storage.clone(),
            sink: Arc::new(MemSink(storage)),
            sender: Arc::new(NoopSender),
            evaluation_interval: Duration::from_secs(60),
            external_labels: Labels::new(),
            external_url: String::new(),
            group: GroupOptions::default(),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn groups_run_on_their_slots_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.yml");
        std::fs::write(
            &path,
            "groups:\n- name: fast\n  interval: 10s\n  rules:\n  - record: one\n    expr: vector(1)\n- name: slow\n  interval: 1m\n  rules:\n  - record: two\n    expr: vector(2)\n",
        )
        .unwrap();
        let storage = Arc::new(MemStorage::new());
        let m = manager(storage.clone());
        m.update(std::slice::from_ref(&path)).await.unwrap();
        m.start().await;
        tokio::time::sleep(Duration::from_secs(125)).await;
        m.stop().await;
        let groups = m.groups().await;
        let (fast, slow) = (lock(&groups[0]).clone(), lock(&groups[1]).clone());
        assert_eq!(fast.name, "fast");
        assert!(
            (11..=13).contains(&fast.stats.iterations_total),
            "{:?}",
            fast.stats
        );
        // a 1m group gets 2 or 3 slots in 125 s depending on its offset
        assert!(
            (1..=3).contains(&slow.stats.iterations_total),
            "{:?}",
            slow.stats
        );
        assert_eq!(fast.stats.iterations_missed_total, 0);
        let got = storage
            .select(
                &[pharos_model::Matcher::equal("__name__", "one")],
                i64::MIN,
                i64::MAX,
            )
            .unwrap();
        let offset = (fast.hash() % 10_000) as i64;
        for s in &got[0].samples {
            assert_eq!(
                (s.t - offset).rem_euclid(10_000),
                0,
                "sample off its slot: {s:?}"
            );
        }
        assert_eq!(got[0].samples.len() as u64, fast.stats.iterations_total);
    }

    #[test]
    fn missed_counts_whole_skipped_slots() {
        assert_eq!(missed_iterations(1_000_500, 1_000_000 - 60_000, 60_000), 0);
        assert_eq!(missed_iterations(1_000_000 + 125_000, 1_000_000, 60_000), 1);
    }

    #[tokio::test]
    async fn reload_keeps_alert_state_and_broken_file_keeps_old_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.yml");
        std::fs::write(
            &path,
            "groups:\n- name: g\n  rules:\n  - alert: Up\n    expr: up > 0\n    for: 5m\n",
        )
        .unwrap();
        let storage = Arc::new(MemStorage::new());
        storage.add(
            Labels::from_pairs([("__name__", "up"), ("job", "a")]),
            (0..20).map(|i| Sample::new(i * 60_000, 1.0)),
        );
        let m = manager(storage.clone());
        m.update(std::slice::from_ref(&path)).await.unwrap();
        let env = m.env();
        let g = m.groups().await.remove(0);
        lock(&g).eval(
            0,
            &env,
            &MemSink(storage.clone()),
            &NoopSender,
            &GroupOptions::default(),
        );
        let active_at = |g: &Arc<Mutex<Group>>| match &lock(g).rules[0] {
            Rule::Alerting(a) => a.active.values().next().map(|x| x.active_at),
            Rule::Recording(_) => None,
        };
        assert_eq!(active_at(&g), Some(0));

        // A changed annotation is a new group definition, yet the alert
        // state carries over (matched by name and labels).
        std::fs::write(
            &path,
            "groups:\n- name: g\n  rules:\n  - alert: Up\n    expr: up > 0\n    for: 5m\n    annotations:\n      a: b\n",
        )
        .unwrap();
        m.update(std::slice::from_ref(&path)).await.unwrap();
        let g2 = m.groups().await.remove(0);
        assert!(!Arc::ptr_eq(&g, &g2));
        assert_eq!(active_at(&g2), Some(0));

        std::fs::write(
            &path,
            "groups:\n- name: g\n  rules:\n  - alert: Up\n    expr: 'up >'\n",
        )
        .unwrap();
        let err = m.update(std::slice::from_ref(&path)).await.unwrap_err();
        assert!(
            err.to_string().contains("could not parse expression"),
            "{err}"
        );
        let g3 = m.groups().await.remove(0);
        assert!(Arc::ptr_eq(&g2, &g3));
        let metrics = m.render_metrics().await;
        assert!(
            metrics.contains("prometheus_rule_group_rules{rule_group=\""),
            "{metrics}"
        );
    }
}

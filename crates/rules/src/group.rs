//! A rule group: its rules evaluated in order at one timestamp, staleness
//! bookkeeping, notifications and `for`-state restoration. Time is always
//! passed in, so tests drive it with an explicit clock.

use std::collections::{HashMap, HashSet};

use pharos_model::{Labels, STALE_NAN, Sample};

use crate::file::GroupSpec;
use crate::rule::{Alert, AlertState, EvalEnv, Health, Rule};

/// Where rule results go (the TSDB's appender).
pub trait RuleSink: Send + Sync {
    fn append(&self, series: Vec<(Labels, Vec<Sample>)>) -> Result<(), String>;
}

/// What `sendAlerts` hands to the notifier for one rule.
pub trait AlertSender: Send + Sync {
    /// `expr` is the rule's expression (for the generator URL).
    fn send(&self, expr: &str, alerts: Vec<Alert>);
}

/// A sender that drops everything, as promtool uses.
#[derive(Debug, Default)]
pub struct NoopSender;

impl AlertSender for NoopSender {
    fn send(&self, _expr: &str, _alerts: Vec<Alert>) {}
}

/// Per-group counters, exposed as Prometheus' `prometheus_rule_*` metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupStats {
    pub evaluations_total: u64,
    pub evaluation_failures_total: u64,
    pub iterations_total: u64,
    pub iterations_missed_total: u64,
    pub last_duration_seconds: f64,
    /// Evaluation timestamp (ms) of the last iteration.
    pub last_evaluation_timestamp: Option<i64>,
    pub samples: u64,
}

/// Options shared by all groups.
#[derive(Debug, Clone)]
pub struct GroupOptions {
    pub resend_delay_ms: i64,
    pub outage_tolerance_ms: i64,
    pub for_grace_period_ms: i64,
}

impl Default for GroupOptions {
    fn default() -> Self {
        Self {
            resend_delay_ms: 60_000,
            outage_tolerance_ms: 3_600_000,
            for_grace_period_ms: 600_000,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub file: String,
    pub interval_ms: i64,
    pub limit: usize,
    pub query_offset_ms: i64,
    pub rules: Vec<Rule>,
    series_in_previous_eval: Vec<HashSet<Labels>>,
    stale_series: Vec<Labels>,
    /// Restore `for` state after the second evaluation (first load only).
    pub should_restore: bool,
    pub stats: GroupStats,
    /// Wall-clock ms the last evaluation started, for the API.
    pub last_evaluation_wall: Option<i64>,
}

impl Group {
    /// `restored` is false only for the first load after start, as in
    /// Prometheus' manager.
    pub fn from_spec(
        spec: &GroupSpec,
        file: &str,
        default_interval_ms: i64,
        restored: bool,
    ) -> Group {
        let interval_ms = spec
            .interval
            .map(|d| i64::try_from(d.as_std().as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(default_interval_ms)
            .max(1);
        let rules: Vec<Rule> = spec
            .rules
            .iter()
            .map(|r| Rule::from_spec(r, restored))
            .collect();
        Group {
            name: spec.name.clone(),
            file: file.to_string(),
            interval_ms,
            limit: spec.limit,
            query_offset_ms: spec
                .query_offset
                .map(|d| i64::try_from(d.as_std().as_millis()).unwrap_or(0))
                .unwrap_or(0),
            series_in_previous_eval: vec![HashSet::new(); rules.len()],
            rules,
            stale_series: Vec::new(),
            should_restore: !restored,
            stats: GroupStats::default(),
            last_evaluation_wall: None,
        }
    }

    /// `file;name`, Prometheus' group key.
    pub fn key(&self) -> String {
        format!("{};{}", self.file, self.name)
    }

    /// Prometheus hashes the labels `{file, name}`; any stable hash spreads
    /// groups the same way in spirit.
    pub fn hash(&self) -> u64 {
        Labels::from_pairs([("file", self.file.as_str()), ("name", self.name.as_str())])
            .stable_hash()
    }

    /// The slot at or before `start_ms` for this group: evaluations happen
    /// at `offset + k * interval`, the offset a hash of the group.
    pub fn eval_timestamp(&self, start_ms: i64) -> i64 {
        let interval = self.interval_ms;
        let offset = (self.hash() % interval as u64) as i64;
        let adj = start_ms - offset;
        adj - adj.rem_euclid(interval) + offset
    }

    /// Same definition as `other` (Prometheus' `Equals`): then a reload
    /// keeps the running group untouched.
    pub fn same_definition(&self, other: &Group) -> bool {
        self.name == other.name
            && self.file == other.file
            && self.interval_ms == other.interval_ms
            && self.limit == other.limit
            && self.query_offset_ms == other.query_offset_ms
            && self.rules.len() == other.rules.len()
            && self
                .rules
                .iter()
                .zip(&other.rules)
                .all(|(a, b)| a.same_definition(b))
    }

    /// Carries alert and staleness state over from the old group of a
    /// reload; rules are matched by name and labels, duplicates in order.
    pub fn copy_state(&mut self, from: &Group) {
        self.stats.last_duration_seconds = from.stats.last_duration_seconds;
        self.stats.last_evaluation_timestamp = from.stats.last_evaluation_timestamp;
        self.last_evaluation_wall = from.last_evaluation_wall;
        let mut map: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in from.rules.iter().enumerate() {
            map.entry(r.identity()).or_default().push(i);
        }
        for (i, rule) in self.rules.iter_mut().enumerate() {
            let Some(idx) = map.get_mut(&rule.identity()) else {
                continue;
            };
            if idx.is_empty() {
                continue;
            }
            let fi = idx.remove(0);
            self.series_in_previous_eval[i] = from.series_in_previous_eval[fi].clone();
            if let (Rule::Alerting(ar), Rule::Alerting(far)) = (rule, &from.rules[fi]) {
                for (k, a) in &far.active {
                    ar.active.insert(k.clone(), a.clone());
                }
            }
        }
        self.stale_series = from.stale_series.clone();
        for (fi, r) in from.rules.iter().enumerate() {
            if map.get(&r.identity()).is_some_and(|v| v.contains(&fi)) {
                self.stale_series
                    .extend(from.series_in_previous_eval[fi].iter().cloned());
            }
        }
    }

    /// Series this group last wrote, to be marked stale when it goes away.
    pub fn take_previous_series(&mut self) -> Vec<Labels> {
        let mut out: Vec<Labels> = self.stale_series.drain(..).collect();
        for s in &mut self.series_in_previous_eval {
            out.extend(s.drain());
        }
        out
    }

    /// One evaluation of every rule at `ts` (ms). `wall_ms` is when it
    /// started, for the API; `elapsed` measures how long rules take.
    pub fn eval(
        &mut self,
        ts: i64,
        env: &EvalEnv,
        sink: &dyn RuleSink,
        sender: &dyn AlertSender,
        opts: &GroupOptions,
    ) {
        let group_start = std::time::Instant::now();
        let query_ts = ts - self.query_offset_ms;
        let mut samples_total = 0u64;
        for i in 0..self.rules.len() {
            let started = std::time::Instant::now();
            self.stats.evaluations_total += 1;
            let rule = &mut self.rules[i];
            let res = rule.eval(env, ts, query_ts, self.limit);
            let status_t = wall_now_ms();
            let vector = match res {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(group = %self.name, rule = rule.name(), index = i, err = %e, "evaluating rule failed");
                    let st = rule.status_mut();
                    st.health = Health::Bad;
                    st.last_error = Some(e);
                    st.evaluation_seconds = started.elapsed().as_secs_f64();
                    st.last_evaluation = Some(status_t);
                    self.stats.evaluation_failures_total += 1;
                    continue;
                }
            };
            samples_total += vector.len() as u64;
            if let Rule::Alerting(ar) = rule {
                let alerts = ar.alerts_to_send(ts, opts.resend_delay_ms, self.interval_ms);
                if !alerts.is_empty() {
                    sender.send(&ar.expr, alerts);
                }
            }
            let mut returned = HashSet::with_capacity(vector.len());
            let mut batch: Vec<(Labels, Vec<Sample>)> = Vec::with_capacity(vector.len());
            for (l, v) in vector {
                returned.insert(l.clone());
                batch.push((l, vec![Sample::new(query_ts, v)]));
            }
            for old in &self.series_in_previous_eval[i] {
                if !returned.contains(old) {
                    batch.push((old.clone(), vec![Sample::stale(query_ts)]));
                }
            }
            let append = if batch.is_empty() {
                Ok(())
            } else {
                sink.append(batch)
            };
            let st = rule.status_mut();
            st.evaluation_seconds = started.elapsed().as_secs_f64();
            st.last_evaluation = Some(status_t);
            match append {
                Ok(()) => {
                    st.health = Health::Good;
                    st.last_error = None;
                    self.series_in_previous_eval[i] = returned;
                }
                Err(e) => {
                    tracing::warn!(group = %self.name, index = i, err = %e, "rule sample appending failed");
                    st.health = Health::Bad;
                    st.last_error = Some(e);
                    self.stats.evaluation_failures_total += 1;
                }
            }
        }
        if !self.stale_series.is_empty() {
            let batch: Vec<(Labels, Vec<Sample>)> = self
                .stale_series
                .iter()
                .map(|l| (l.clone(), vec![Sample::stale(query_ts)]))
                .collect();
            if sink.append(batch).is_ok() {
                self.stale_series.clear();
            }
        }
        self.stats.samples = samples_total;
        self.stats.iterations_total += 1;
        self.stats.last_duration_seconds = group_start.elapsed().as_secs_f64();
        self.stats.last_evaluation_timestamp = Some(ts);
        self.last_evaluation_wall = Some(wall_now_ms());
    }

    /// Prometheus' `RestoreForState`: moves `ActiveAt` of pending alerts
    /// back to what `ALERTS_FOR_STATE` recorded before a restart, within the
    /// outage tolerance, leaving at least the grace period before firing.
    pub fn restore_for_state(&mut self, ts: i64, env: &EvalEnv, opts: &GroupOptions) {
        let mint = ts - opts.outage_tolerance_ms;
        for rule in &mut self.rules {
            let Rule::Alerting(ar) = rule else { continue };
            let hold = ar.hold_ms;
            if hold < opts.for_grace_period_ms {
                ar.restored = true;
                continue;
            }
            let mut updates = Vec::new();
            for (k, a) in &ar.active {
                let matchers = ar.for_state_matchers(a);
                let series = match env.queryable.select(&matchers, mint, ts) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(alertname = %ar.name, err = %e, "failed to restore 'for' state");
                        continue;
                    }
                };
                let Some(s) = series
                    .into_iter()
                    .find(|s| s.labels.len() == matchers.len())
                else {
                    continue;
                };
                let Some(last) = s.samples.last() else {
                    continue;
                };
                if last.v.to_bits() == STALE_NAN || last.is_stale() {
                    continue;
                }
                // Go truncates both instants to whole seconds.
                let down_at = last.t.div_euclid(1000) * 1000;
                let mut restored_active = (last.v as i64) * 1000;
                let remaining = hold - (down_at - restored_active);
                if remaining <= 0 {
                    // It was firing; the next evaluation fires it again.
                } else if remaining < opts.for_grace_period_ms {
                    restored_active = ts + opts.for_grace_period_ms - hold;
                } else {
                    restored_active += ts - down_at;
                }
                updates.push((k.clone(), restored_active));
            }
            for (k, t) in updates {
                if let Some(a) = ar.active.get_mut(&k) {
                    a.active_at = t;
                }
            }
            ar.restored = true;
        }
    }

    /// Firing and pending alerts of all rules (for `/api/v1/alerts`).
    pub fn active_alerts(&self) -> Vec<(&str, &Alert)> {
        let mut out = Vec::new();
        for r in &self.rules {
            if let Rule::Alerting(ar) = r {
                for a in ar.active.values() {
                    if a.state != AlertState::Inactive {
                        out.push((ar.name.as_str(), a));
                    }
                }
            }
        }
        out
    }
}

pub(crate) fn wall_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Test helpers shared by modules and the unit-test runner.
pub(crate) mod mem {
    use pharos_promql::MemStorage;

    use super::*;

    /// A sink writing into the same in-memory storage queries read from.
    pub struct MemSink(pub std::sync::Arc<MemStorage>);

    impl RuleSink for MemSink {
        fn append(&self, series: Vec<(Labels, Vec<Sample>)>) -> Result<(), String> {
            for (l, s) in series {
                self.0.add(l, s);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use pharos_model::Matcher;
    use pharos_promql::{Engine, EngineOptions, MemStorage, Queryable};

    use super::mem::MemSink;
    use super::*;
    use crate::file;

    #[derive(Default)]
    struct Capture(Mutex<Vec<(String, Vec<Alert>)>>);

    impl AlertSender for Capture {
        fn send(&self, expr: &str, alerts: Vec<Alert>) {
            self.0.lock().unwrap().push((expr.to_string(), alerts));
        }
    }

    impl Capture {
        fn take(&self) -> Vec<Alert> {
            self.0
                .lock()
                .unwrap()
                .drain(..)
                .flat_map(|(_, a)| a)
                .collect()
        }
    }

    fn setup(rules: &str, restored: bool) -> (Group, Arc<MemStorage>, EvalEnv) {
        let f = file::parse("t.yml", rules).unwrap();
        let g = Group::from_spec(&f.groups[0], "t.yml", 60_000, restored);
        let st = Arc::new(MemStorage::new());
        let env = EvalEnv {
            engine: Arc::new(Engine::new(EngineOptions::default())),
            queryable: st.clone(),
            external_labels: Labels::new(),
            external_url: "http://x".into(),
        };
        (g, st, env)
    }

    fn series(st: &MemStorage, name: &str) -> Vec<(Labels, Vec<Sample>)> {
        st.select(&[Matcher::equal("__name__", name)], i64::MIN, i64::MAX)
            .unwrap()
            .into_iter()
            .map(|s| (s.labels, s.samples))
            .collect()
    }

    fn add(st: &MemStorage, l: &[(&str, &str)], vals: &[(i64, f64)]) {
        st.add(
            Labels::from_pairs(l.iter().copied()),
            vals.iter().map(|&(t, v)| Sample::new(t, v)),
        );
    }

    fn alert_state(g: &Group) -> Vec<(AlertState, i64)> {
        match &g.rules[0] {
            Rule::Alerting(a) => a.active.values().map(|x| (x.state, x.active_at)).collect(),
            Rule::Recording(_) => vec![],
        }
    }

    #[test]
    fn recording_rule_renames_labels_and_marks_vanished_series_stale() {
        let (mut g, st, env) = setup(
            "groups:\n- name: g\n  rules:\n  - record: up:pos\n    expr: up > 0\n    labels:\n      team: x\n",
            true,
        );
        add(
            &st,
            &[("__name__", "up"), ("job", "a")],
            &[(0, 1.0), (60_000, 1.0)],
        );
        add(
            &st,
            &[("__name__", "up"), ("job", "b")],
            &[(0, 1.0), (60_000, 0.0)],
        );
        let sink = MemSink(st.clone());
        let opts = GroupOptions::default();
        g.eval(0, &env, &sink, &NoopSender, &opts);
        g.eval(60_000, &env, &sink, &NoopSender, &opts);
        let got = series(&st, "up:pos");
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].0.to_string(),
            r#"{__name__="up:pos", job="a", team="x"}"#
        );
        assert_eq!(
            got[0].1,
            vec![Sample::new(0, 1.0), Sample::new(60_000, 1.0)]
        );
        assert_eq!(got[1].1[0], Sample::new(0, 1.0));
        assert!(got[1].1[1].is_stale() && got[1].1[1].t == 60_000);
        assert_eq!(g.stats.evaluations_total, 2);
        assert_eq!(g.rules[0].status().health, Health::Good);
    }

    #[test]
    fn alert_lifecycle_sends_like_prometheus() {
        let (mut g, st, env) = setup(
            "groups:\n- name: g\n  rules:\n  - alert: X\n    expr: x > 0\n    for: 2m\n    labels:\n      sev: '{{ $value }}'\n",
            true,
        );
        let vals: Vec<(i64, f64)> = (0..=30)
            .map(|i| (i * 60_000, if i <= 4 { 1.0 } else { 0.0 }))
            .collect();
        add(&st, &[("__name__", "x")], &vals);
        let sink = MemSink(st.clone());
        let cap = Capture::default();
        let opts = GroupOptions::default();
        let m = |i: i64| i * 60_000;

        g.eval(m(0), &env, &sink, &cap, &opts);
        assert_eq!(alert_state(&g), vec![(AlertState::Pending, 0)]);
        assert!(cap.take().is_empty(), "pending alerts are not sent");
        g.eval(m(1), &env, &sink, &cap, &opts);
        g.eval(m(2), &env, &sink, &cap, &opts);
        assert_eq!(alert_state(&g), vec![(AlertState::Firing, 0)]);
        let sent = cap.take();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].fired_at, Some(m(2)));
        assert_eq!(sent[0].valid_until, Some(m(2) + 4 * 60_000));
        assert_eq!(sent[0].labels.get("sev"), Some("1"));
        g.eval(m(3), &env, &sink, &cap, &opts);
        assert!(cap.take().is_empty(), "resend delay not yet passed");
        g.eval(m(4), &env, &sink, &cap, &opts);
        assert_eq!(cap.take().len(), 1);
        g.eval(m(5), &env, &sink, &cap, &opts);
        let sent = cap.take();
        assert_eq!(sent[0].state, AlertState::Inactive);
        assert_eq!(sent[0].resolved_at, Some(m(5)));

        let alerts = series(&st, "ALERTS");
        let firing = alerts
            .iter()
            .find(|(l, _)| l.get("alertstate") == Some("firing"))
            .unwrap();
        assert_eq!(firing.1.len(), 4);
        assert!(firing.1[3].is_stale() && firing.1[3].t == m(5));
        let pending = alerts
            .iter()
            .find(|(l, _)| l.get("alertstate") == Some("pending"))
            .unwrap();
        assert_eq!(
            pending.1[0..2],
            [Sample::new(0, 1.0), Sample::new(m(1), 1.0)]
        );
        assert!(pending.1[2].is_stale());
        let fs = series(&st, "ALERTS_FOR_STATE");
        assert_eq!(fs[0].1[0], Sample::new(0, 0.0));

        // Resolved alerts are re-sent every resend delay for 15 minutes.
        g.eval(m(7), &env, &sink, &cap, &opts);
        assert_eq!(cap.take().len(), 1);
        g.eval(m(20), &env, &sink, &cap, &opts);
        assert_eq!(alert_state(&g).len(), 1);
        g.eval(m(21), &env, &sink, &cap, &opts);
        assert!(alert_state(&g).is_empty());
    }

    #[test]
    fn keep_firing_for_holds_a_resolved_alert() {
        let (mut g, st, env) = setup(
            "groups:\n- name: g\n  rules:\n  - alert: X\n    expr: x > 0\n    keep_firing_for: 2m\n",
            true,
        );
        add(&st, &[("__name__", "x")], &[(0, 1.0), (60_000, 0.0)]);
        let sink = MemSink(st.clone());
        let opts = GroupOptions::default();
        for (t, want) in [
            (0, AlertState::Firing),
            (60_000, AlertState::Firing),
            (120_000, AlertState::Firing),
            (180_000, AlertState::Inactive),
        ] {
            g.eval(t, &env, &sink, &NoopSender, &opts);
            assert_eq!(alert_state(&g)[0].0, want, "at {t}");
        }
    }

    #[test]
    fn limit_and_duplicate_labelsets_fail_the_rule() {
        let (mut g, st, env) = setup(
            "groups:\n- name: g\n  limit: 1\n  rules:\n  - record: r\n    expr: up\n  - alert: A\n    expr: up\n  - alert: D\n    expr: up\n    labels:\n      job: same\n",
            true,
        );
        add(&st, &[("__name__", "up"), ("job", "a")], &[(0, 1.0)]);
        add(&st, &[("__name__", "up"), ("job", "b")], &[(0, 1.0)]);
        g.eval(
            0,
            &env,
            &MemSink(st.clone()),
            &NoopSender,
            &GroupOptions::default(),
        );
        let errs: Vec<Option<String>> = g
            .rules
            .iter()
            .map(|r| r.status().last_error.clone())
            .collect();
        assert_eq!(
            errs[0].as_deref(),
            Some("exceeded limit of 1 with 2 series")
        );
        assert_eq!(
            errs[1].as_deref(),
            Some("exceeded limit of 1 with 2 alerts")
        );
        assert_eq!(
            errs[2].as_deref(),
            Some("vector contains metrics with the same labelset after applying alert labels")
        );
        assert_eq!(g.stats.evaluation_failures_total, 3);
        assert!(series(&st, "r").is_empty());
        assert!(alert_state(&g).is_empty());
    }

    #[test]
    fn restores_for_state_after_restart() {
        let rules = "groups:\n- name: g\n  rules:\n  - alert: X\n    expr: x > 0\n    for: 30m\n";
        let s = 1000;
        // Down after 10m pending, back 400s later: the outage is added.
        let (mut g, st, env) = setup(rules, false);
        add(&st, &[("__name__", "x")], &[(2000 * s, 1.0)]);
        add(
            &st,
            &[("__name__", "ALERTS_FOR_STATE"), ("alertname", "X")],
            &[(1000 * s, 1000.0), (1600 * s, 1000.0)],
        );
        let sink = MemSink(st.clone());
        let opts = GroupOptions::default();
        g.eval(2000 * s, &env, &sink, &NoopSender, &opts);
        assert!(
            series(&st, "ALERTS").is_empty(),
            "nothing written before restore"
        );
        g.restore_for_state(2000 * s, &env, &opts);
        assert_eq!(alert_state(&g), vec![(AlertState::Pending, 1400 * s)]);

        // Down with 5m left: the grace period (10m) applies instead.
        let (mut g, st, env) = setup(rules, false);
        add(&st, &[("__name__", "x")], &[(3000 * s, 1.0)]);
        add(
            &st,
            &[("__name__", "ALERTS_FOR_STATE"), ("alertname", "X")],
            &[(2500 * s, 1000.0)],
        );
        g.eval(3000 * s, &env, &MemSink(st.clone()), &NoopSender, &opts);
        g.restore_for_state(3000 * s, &env, &opts);
        assert_eq!(alert_state(&g), vec![(AlertState::Pending, 1800 * s)]);
        g.eval(3060 * s, &env, &MemSink(st.clone()), &NoopSender, &opts);
        assert!(!series(&st, "ALERTS").is_empty(), "written once restored");
    }

    #[test]
    fn eval_timestamps_are_slotted_per_group() {
        let (g, _, _) = setup("groups:\n- name: g\n  rules: []\n", true);
        let t0 = g.eval_timestamp(1_000_000_000);
        assert!(t0 <= 1_000_000_000 && t0 > 1_000_000_000 - 60_000);
        assert_eq!(g.eval_timestamp(t0 + 59_999), t0);
        assert_eq!(g.eval_timestamp(t0 + 60_000), t0 + 60_000);
        assert_eq!((t0 - (g.hash() % 60_000) as i64).rem_euclid(60_000), 0);
    }
}

//! Recording and alerting rules and one evaluation of each, with
//! Prometheus 2.42's state machine for alerts.

use std::collections::BTreeMap;
use std::sync::Arc;

use pharos_model::{Labels, Matcher};
use pharos_promql::{Engine, Queryable, Value};
use pharos_template::funcs::{PrometheusContext, Sample as TmplSample};
use pharos_template::{ExecOptions, Template, Value as TValue, funcs};

use crate::file::{RuleKind, RuleSpec, TEMPLATE_DEFS};

/// How long a resolved alert is kept and re-sent (Prometheus'
/// `resolvedRetention`).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;
pub const ALERT_METRIC: &str = "ALERTS";
pub const ALERT_FOR_STATE_METRIC: &str = "ALERTS_FOR_STATE";

/// What one evaluation reads from and how its templates see the server.
#[derive(Clone)]
pub struct EvalEnv {
    pub engine: Arc<Engine>,
    pub queryable: Arc<dyn Queryable>,
    pub external_labels: Labels,
    pub external_url: String,
}

impl std::fmt::Debug for EvalEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalEnv")
            .field("external_labels", &self.external_labels)
            .field("external_url", &self.external_url)
            .finish()
    }
}

impl EvalEnv {
    /// Prometheus' `EngineQueryFunc`: instant vectors as they are, scalars
    /// as one sample without labels, anything else is an error.
    pub fn query(&self, expr: &str, t: i64) -> Result<Vec<(Labels, f64)>, String> {
        match self
            .engine
            .instant(self.queryable.as_ref(), expr, t)
            .map_err(|e| e.to_string())?
        {
            Value::Vector(v) => Ok(v.into_iter().map(|(l, _, v)| (l, v)).collect()),
            Value::Scalar(_, v) => Ok(vec![(Labels::new(), v)]),
            _ => Err("rule result is not a vector or scalar".into()),
        }
    }

    /// The template functions with `query` bound to evaluation time `t`.
    fn template_funcs(&self, t: i64) -> funcs::Funcs {
        let env = self.clone();
        let query: funcs::QueryFn = Arc::new(move |q: &str| {
            env.query(q, t).map(|v| {
                v.into_iter()
                    .map(|(l, value)| TmplSample {
                        labels: l
                            .iter()
                            .map(|x| (x.name.clone(), x.value.clone()))
                            .collect(),
                        value,
                    })
                    .collect()
            })
        });
        funcs::prometheus(PrometheusContext {
            external_url: self.external_url.clone(),
            query: Some(query),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Health {
    #[default]
    Unknown,
    Good,
    Bad,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Good => "ok",
            Health::Bad => "err",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert instance of an alerting rule; times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub state: AlertState,
    pub labels: Labels,
    /// Kept as a map, not `Labels`, because an annotation may expand to an
    /// empty string and must still be sent.
    pub annotations: BTreeMap<String, String>,
    pub value: f64,
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub last_sent_at: Option<i64>,
    pub valid_until: Option<i64>,
    pub keep_firing_since: Option<i64>,
}

impl Alert {
    fn needs_sending(&self, ts: i64, resend_delay: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        if self.resolved_at.unwrap_or(i64::MIN) > self.last_sent_at.unwrap_or(i64::MIN) {
            return true;
        }
        // A never-sent alert has a zero LastSentAt in Go, long before ts.
        self.last_sent_at.is_none_or(|l| l + resend_delay < ts)
    }
}

/// Status common to both rule kinds, for the API and metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleStatus {
    pub health: Health,
    pub last_error: Option<String>,
    pub evaluation_seconds: f64,
    /// Wall-clock ms of the last evaluation start.
    pub last_evaluation: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct RecordingRule {
    pub name: String,
    pub expr: String,
    pub labels: Labels,
    pub status: RuleStatus,
}

#[derive(Debug, Clone)]
pub struct AlertingRule {
    pub name: String,
    pub expr: String,
    pub hold_ms: i64,
    pub keep_firing_for_ms: i64,
    /// Label templates.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Alerts by their label set; ordered so evaluation is deterministic.
    pub active: BTreeMap<Labels, Alert>,
    /// Until the `for` state has been restored no `ALERTS` series are
    /// written, as in Prometheus.
    pub restored: bool,
    pub status: RuleStatus,
}

#[derive(Debug, Clone)]
pub enum Rule {
    Recording(RecordingRule),
    Alerting(AlertingRule),
}

fn ms(d: pharos_config::Duration) -> i64 {
    i64::try_from(d.as_std().as_millis()).unwrap_or(i64::MAX)
}

/// The expression as Prometheus prints it (`up==0` → `up == 0`).
pub fn canonical_expr(expr: &str) -> String {
    pharos_promql::parse(expr)
        .map(|e| e.to_string())
        .unwrap_or_else(|_| expr.to_string())
}

impl Rule {
    pub fn from_spec(spec: &RuleSpec, restored: bool) -> Rule {
        let expr = canonical_expr(&spec.expr);
        match &spec.kind {
            RuleKind::Record(name) => Rule::Recording(RecordingRule {
                name: name.clone(),
                expr,
                labels: Labels::from_pairs(spec.labels.clone()),
                status: RuleStatus::default(),
            }),
            RuleKind::Alert(name) => Rule::Alerting(AlertingRule {
                name: name.clone(),
                expr,
                hold_ms: ms(spec.for_),
                keep_firing_for_ms: ms(spec.keep_firing_for),
                labels: spec.labels.clone(),
                annotations: spec.annotations.clone(),
                active: BTreeMap::new(),
                restored,
                status: RuleStatus::default(),
            }),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Rule::Recording(r) => &r.name,
            Rule::Alerting(r) => &r.name,
        }
    }

    pub fn expr(&self) -> &str {
        match self {
            Rule::Recording(r) => &r.expr,
            Rule::Alerting(r) => &r.expr,
        }
    }

    pub fn status(&self) -> &RuleStatus {
        match self {
            Rule::Recording(r) => &r.status,
            Rule::Alerting(r) => &r.status,
        }
    }

    pub fn status_mut(&mut self) -> &mut RuleStatus {
        match self {
            Rule::Recording(r) => &mut r.status,
            Rule::Alerting(r) => &mut r.status,
        }
    }

    /// Name and labels: the identity Prometheus uses to carry state over a
    /// reload (`nameAndLabels`).
    pub fn identity(&self) -> String {
        match self {
            Rule::Recording(r) => format!("{}{}", r.name, r.labels),
            Rule::Alerting(r) => format!("{}{}", r.name, Labels::from_pairs(r.labels.clone())),
        }
    }

    /// Same definition (used to decide whether a reloaded group changed).
    pub fn same_definition(&self, other: &Rule) -> bool {
        match (self, other) {
            (Rule::Recording(a), Rule::Recording(b)) => {
                a.name == b.name && a.expr == b.expr && a.labels == b.labels
            }
            (Rule::Alerting(a), Rule::Alerting(b)) => {
                a.name == b.name
                    && a.expr == b.expr
                    && a.hold_ms == b.hold_ms
                    && a.keep_firing_for_ms == b.keep_firing_for_ms
                    && a.labels == b.labels
                    && a.annotations == b.annotations
            }
            _ => false,
        }
    }

    /// Evaluates at `ts` (querying at `query_ts`); returns the samples to
    /// write, all stamped `query_ts`.
    pub fn eval(
        &mut self,
        env: &EvalEnv,
        ts: i64,
        query_ts: i64,
        limit: usize,
    ) -> Result<Vec<(Labels, f64)>, String> {
        match self {
            Rule::Recording(r) => r.eval(env, query_ts, limit),
            Rule::Alerting(r) => r.eval(env, ts, query_ts, limit),
        }
    }
}

impl RecordingRule {
    fn eval(&self, env: &EvalEnv, t: i64, limit: usize) -> Result<Vec<(Labels, f64)>, String> {
        let mut v = env.query(&self.expr, t)?;
        for (l, _) in &mut v {
            l.set("__name__", &self.name);
            for x in &self.labels {
                l.set(&x.name, &x.value);
            }
        }
        let mut seen = std::collections::HashSet::new();
        if !v.iter().all(|(l, _)| seen.insert(l.clone())) {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels".into(),
            );
        }
        if limit > 0 && v.len() > limit {
            return Err(format!("exceeded limit of {limit} with {} series", v.len()));
        }
        Ok(v)
    }
}

/// Expands one alert template; failures become the text Prometheus puts in
/// their place.
fn expand(name: &str, text: &str, data: &TValue, funcs: &funcs::Funcs) -> String {
    let tname = format!("__alert_{name}");
    let t = match Template::parse(&tname, &format!("{TEMPLATE_DEFS}{text}"), funcs) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(alert = name, err = %e, "expanding alert template failed");
            return format!("<error expanding template: error parsing template {tname}: {e}>");
        }
    };
    match t.execute(&tname, data, &ExecOptions::zero()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(alert = name, err = %e, "expanding alert template failed");
            format!("<error expanding template: error executing template {tname}: {e}>")
        }
    }
}

fn labels_value(l: &Labels) -> TValue {
    TValue::string_map(l.iter().map(|x| (x.name.clone(), x.value.clone())))
}

impl AlertingRule {
    fn eval(
        &mut self,
        env: &EvalEnv,
        ts: i64,
        query_ts: i64,
        limit: usize,
    ) -> Result<Vec<(Labels, f64)>, String> {
        let res = env.query(&self.expr, query_ts)?;
        let needs_templates = !self.labels.is_empty() || !self.annotations.is_empty();
        let funcs = if needs_templates {
            Some(env.template_funcs(query_ts))
        } else {
            None
        };
        let mut fresh: BTreeMap<Labels, Alert> = BTreeMap::new();
        for (metric, value) in res {
            let mut lb = metric.without_metric_name();
            let mut annotations = BTreeMap::new();
            if let Some(funcs) = &funcs {
                let data = TValue::Map(
                    [
                        ("Labels".to_string(), labels_value(&metric)),
                        (
                            "ExternalLabels".to_string(),
                            labels_value(&env.external_labels),
                        ),
                        ("ExternalURL".to_string(), TValue::str(&env.external_url)),
                        ("Value".to_string(), TValue::Float(value)),
                    ]
                    .into(),
                );
                for (k, v) in &self.labels {
                    let x = expand(&self.name, v, &data, funcs);
                    if x.is_empty() {
                        lb.remove(k);
                    } else {
                        lb.set(k, &x);
                    }
                }
                for (k, v) in &self.annotations {
                    annotations.insert(k.clone(), expand(&self.name, v, &data, funcs));
                }
            }
            lb.set("alertname", &self.name);
            if fresh.contains_key(&lb) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
            fresh.insert(
                lb.clone(),
                Alert {
                    state: AlertState::Pending,
                    labels: lb,
                    annotations,
                    value,
                    active_at: ts,
                    fired_at: None,
                    resolved_at: None,
                    last_sent_at: None,
                    valid_until: None,
                    keep_firing_since: None,
                },
            );
        }
        for (k, a) in &fresh {
            match self.active.get_mut(k) {
                Some(old) if old.state != AlertState::Inactive => {
                    old.value = a.value;
                    old.annotations = a.annotations.clone();
                }
                _ => {
                    self.active.insert(k.clone(), a.clone());
                }
            }
        }
        let mut out = Vec::new();
        let mut num_active = 0usize;
        let mut remove = Vec::new();
        for (k, a) in self.active.iter_mut() {
            if !fresh.contains_key(k) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && self.keep_firing_for_ms > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < self.keep_firing_for_ms;
                }
                if a.state == AlertState::Pending
                    || a.resolved_at
                        .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS)
                {
                    remove.push(k.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            num_active += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= self.hold_ms {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            if self.restored {
                out.push((alert_series(&self.labels, a, ALERT_METRIC, true), 1.0));
                out.push((
                    alert_series(&self.labels, a, ALERT_FOR_STATE_METRIC, false),
                    a.active_at.div_euclid(1000) as f64,
                ));
            }
        }
        for k in remove {
            self.active.remove(&k);
        }
        if limit > 0 && num_active > limit {
            self.active.clear();
            return Err(format!(
                "exceeded limit of {limit} with {num_active} alerts"
            ));
        }
        Ok(out)
    }

    /// Prometheus' `sendAlerts`: which alerts go out now, marking them sent.
    pub fn alerts_to_send(&mut self, ts: i64, resend_delay: i64, interval: i64) -> Vec<Alert> {
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if a.needs_sending(ts, resend_delay) {
                a.last_sent_at = Some(ts);
                // Two missed evaluations or sends may pass before it expires.
                a.valid_until = Some(ts + 4 * resend_delay.max(interval));
                out.push(a.clone());
            }
        }
        out
    }

    /// Matchers finding the `ALERTS_FOR_STATE` series of an alert.
    pub fn for_state_matchers(&self, a: &Alert) -> Vec<Matcher> {
        let l = alert_series(&self.labels, a, ALERT_FOR_STATE_METRIC, false);
        l.iter()
            .map(|x| Matcher::equal(x.name.clone(), x.value.clone()))
            .collect()
    }
}

/// `ALERTS`/`ALERTS_FOR_STATE` labels: the rule's raw labels overridden by
/// the alert's, as Prometheus builds them.
fn alert_series(
    rule_labels: &BTreeMap<String, String>,
    a: &Alert,
    metric: &str,
    with_state: bool,
) -> Labels {
    let mut l = Labels::from_pairs(rule_labels.clone());
    for x in &a.labels {
        l.set(&x.name, &x.value);
    }
    l.set("__name__", metric);
    if with_state {
        l.set("alertstate", a.state.as_str());
    }
    l
}

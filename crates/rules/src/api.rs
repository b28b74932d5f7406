//! `/api/v1/rules` and `/api/v1/alerts` bodies (the `data` member) in
//! Prometheus' JSON shapes, built from the manager's groups. The server
//! wraps them in `{"status":"success","data":...}` and mounts the routes.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::error::RulesError;
use crate::group::Group;
use crate::rule::{Alert, AlertState, Rule, RuleStatus};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleDiscovery {
    pub groups: Vec<RuleGroup>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleGroup {
    pub name: String,
    pub file: String,
    pub rules: Vec<ApiRule>,
    /// Seconds.
    #[serde(serialize_with = "go_float")]
    pub interval: f64,
    pub limit: usize,
    #[serde(rename = "evaluationTime")]
    #[serde(serialize_with = "go_float")]
    pub evaluation_time: f64,
    #[serde(rename = "lastEvaluation")]
    pub last_evaluation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ApiRule {
    Alerting(AlertingRule),
    Recording(RecordingRule),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertingRule {
    pub state: String,
    pub name: String,
    pub query: String,
    #[serde(serialize_with = "go_float")]
    pub duration: f64,
    #[serde(rename = "keepFiringFor")]
    #[serde(serialize_with = "go_float")]
    pub keep_firing_for: f64,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub alerts: Vec<ApiAlert>,
    pub health: String,
    #[serde(rename = "lastError", skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(rename = "evaluationTime")]
    #[serde(serialize_with = "go_float")]
    pub evaluation_time: f64,
    #[serde(rename = "lastEvaluation")]
    pub last_evaluation: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordingRule {
    pub name: String,
    pub query: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub health: String,
    #[serde(rename = "lastError", skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(rename = "evaluationTime")]
    #[serde(serialize_with = "go_float")]
    pub evaluation_time: f64,
    #[serde(rename = "lastEvaluation")]
    pub last_evaluation: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub state: String,
    #[serde(rename = "activeAt", skip_serializing_if = "Option::is_none")]
    pub active_at: Option<String>,
    #[serde(rename = "keepFiringSince", skip_serializing_if = "Option::is_none")]
    pub keep_firing_since: Option<String>,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertDiscovery {
    pub alerts: Vec<ApiAlert>,
}

/// Query parameters of `/api/v1/rules`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RulesQuery {
    /// `alert` or `record`; `None` for both.
    pub kind: Option<String>,
    pub rule_names: HashSet<String>,
    pub group_names: HashSet<String>,
    pub files: HashSet<String>,
}

impl RulesQuery {
    /// From decoded query pairs; `group_name[]` and upstream's newer
    /// `rule_group[]` are both accepted.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, RulesError> {
        let mut q = RulesQuery::default();
        for (k, v) in pairs {
            match k {
                "type" => {
                    let t = v.to_ascii_lowercase();
                    if !t.is_empty() && t != "alert" && t != "record" {
                        return Err(RulesError::Config(format!("not supported value {v:?}")));
                    }
                    q.kind = (!t.is_empty()).then_some(t);
                }
                "rule_name[]" => {
                    q.rule_names.insert(v.to_string());
                }
                "group_name[]" | "rule_group[]" => {
                    q.group_names.insert(v.to_string());
                }
                "file[]" => {
                    q.files.insert(v.to_string());
                }
                _ => {}
            }
        }
        Ok(q)
    }

    fn selects_subset(&self) -> bool {
        !self.rule_names.is_empty() || !self.group_names.is_empty() || !self.files.is_empty()
    }
}

/// Go's `time.Time` JSON (RFC 3339 with trimmed nanoseconds); Go's zero
/// time for never.
fn go_time(ms: Option<i64>) -> String {
    match ms {
        None => "0001-01-01T00:00:00Z".into(),
        Some(ms) => {
            let s = crate::notifier::rfc3339_ms(ms);
            // "...ss.mmmZ" -> trim zero fraction digits as RFC3339Nano does.
            let (head, frac) = s.trim_end_matches('Z').split_once('.').unwrap_or((&s, ""));
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                format!("{head}Z")
            } else {
                format!("{head}.{frac}Z")
            }
        }
    }
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`, how alert values are sent.
fn go_float_e_lower(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{v:e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mant}e{sign}{:02}", exp.abs())
}

fn api_alert(a: &Alert) -> ApiAlert {
    ApiAlert {
        labels: a
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect(),
        annotations: a.annotations.clone(),
        state: a.state.as_str().to_string(),
        active_at: Some(go_time(Some(a.active_at))),
        keep_firing_since: a.keep_firing_since.map(|t| go_time(Some(t))),
        value: go_float_e_lower(a.value),
    }
}

/// Go's encoding/json writes whole floats without a fraction (`60`, not
/// `60.0`); clients that compare the text see the same bytes.
fn go_float<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

fn status_fields(s: &RuleStatus) -> (String, Option<String>, f64, String) {
    (
        s.health.as_str().to_string(),
        s.last_error.clone(),
        s.evaluation_seconds,
        go_time(s.last_evaluation),
    )
}

/// Builds the `/api/v1/rules` data from groups in the manager's order.
pub fn rules_response(groups: &[Arc<Mutex<Group>>], q: &RulesQuery) -> RuleDiscovery {
    let want_alerts = q.kind.as_deref() != Some("record");
    let want_records = q.kind.as_deref() != Some("alert");
    let mut out = Vec::new();
    for g in groups {
        let g = g.lock().unwrap_or_else(|e| e.into_inner());
        if !q.group_names.is_empty() && !q.group_names.contains(&g.name) {
            continue;
        }
        if !q.files.is_empty() && !q.files.contains(&g.file) {
            continue;
        }
        let mut rules = Vec::new();
        for r in &g.rules {
            if !q.rule_names.is_empty() && !q.rule_names.contains(r.name()) {
                continue;
            }
            let (health, last_error, evaluation_time, last_evaluation) = status_fields(r.status());
            match r {
                Rule::Alerting(ar) if want_alerts => {
                    let alerts: Vec<&Alert> = ar
                        .active
                        .values()
                        .filter(|a| a.state != AlertState::Inactive)
                        .collect();
                    let state = alerts
                        .iter()
                        .map(|a| a.state)
                        .max()
                        .unwrap_or(AlertState::Inactive);
                    rules.push(ApiRule::Alerting(AlertingRule {
                        state: state.as_str().into(),
                        name: ar.name.clone(),
                        query: ar.expr.clone(),
                        duration: ar.hold_ms as f64 / 1000.0,
                        keep_firing_for: ar.keep_firing_for_ms as f64 / 1000.0,
                        labels: ar.labels.clone(),
                        annotations: ar.annotations.clone(),
                        alerts: alerts.into_iter().map(api_alert).collect(),
                        health,
                        last_error,
                        evaluation_time,
                        last_evaluation,
                        kind: "alerting",
                    }));
                }
                Rule::Recording(rr) if want_records => {
                    rules.push(ApiRule::Recording(RecordingRule {
                        name: rr.name.clone(),
                        query: rr.expr.clone(),
                        labels: rr
                            .labels
                            .iter()
                            .map(|l| (l.name.clone(), l.value.clone()))
                            .collect(),
                        health,
                        last_error,
                        evaluation_time,
                        last_evaluation,
                        kind: "recording",
                    }));
                }
                _ => {}
            }
        }
        if q.selects_subset() && rules.is_empty() {
            continue;
        }
        out.push(RuleGroup {
            name: g.name.clone(),
            file: g.file.clone(),
            rules,
            interval: g.interval_ms as f64 / 1000.0,
            limit: g.limit,
            evaluation_time: g.stats.last_duration_seconds,
            last_evaluation: go_time(g.last_evaluation_wall),
        });
    }
    RuleDiscovery { groups: out }
}

/// Builds the `/api/v1/alerts` data: pending and firing alerts.
pub fn alerts_response(groups: &[Arc<Mutex<Group>>]) -> AlertDiscovery {
    let mut alerts = Vec::new();
    for g in groups {
        let g = g.lock().unwrap_or_else(|e| e.into_inner());
        for (_, a) in g.active_alerts() {
            alerts.push(api_alert(a));
        }
    }
    AlertDiscovery { alerts }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(go_time(None), "0001-01-01T00:00:00Z");
        assert_eq!(go_time(Some(1_500)), "1970-01-01T00:00:01.5Z");
        assert_eq!(go_float_e_lower(1.0), "1e+00");
        assert_eq!(go_float_e_lower(0.25), "2.5e-01");
    }

    #[test]
    fn rules_and_alerts_in_prometheus_shape() {
        use crate::group::{GroupOptions, NoopSender, mem::MemSink};
        use crate::rule::EvalEnv;
        use pharos_model::{Labels, Sample};
        use pharos_promql::{Engine, EngineOptions, MemStorage};

        let f = crate::file::parse(
            "f.yml",
            "groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n  - alert: Down\n    expr: up==0\n    labels:\n      sev: page\n    annotations:\n      s: '{{ $labels.job }}'\n",
        )
        .unwrap();
        let mut g = Group::from_spec(&f.groups[0], "f.yml", 60_000, true);
        let st = Arc::new(MemStorage::new());
        st.add(
            Labels::from_pairs([("__name__", "up"), ("job", "a")]),
            [Sample::new(0, 0.0)],
        );
        let env = EvalEnv {
            engine: Arc::new(Engine::new(EngineOptions::default())),
            queryable: st.clone(),
            external_labels: Labels::new(),
            external_url: String::new(),
        };
        g.eval(0, &env, &MemSink(st), &NoopSender, &GroupOptions::default());
        let groups = vec![Arc::new(Mutex::new(g))];
        let all = rules_response(&groups, &RulesQuery::default());
        let v = serde_json::to_value(&all).unwrap();
        let grp = &v["groups"][0];
        assert_eq!(grp["name"], "g");
        assert_eq!(grp["file"], "f.yml");
        assert_eq!(grp["interval"], 60.0);
        assert_eq!(grp["rules"][0]["type"], "recording");
        assert_eq!(grp["rules"][0]["health"], "ok");
        assert!(grp["rules"][0].get("labels").is_none());
        let ar = &grp["rules"][1];
        assert_eq!(ar["type"], "alerting");
        assert_eq!(ar["query"], "up == 0");
        assert_eq!(ar["state"], "firing");
        assert_eq!(ar["duration"], 0.0);
        assert_eq!(ar["alerts"][0]["state"], "firing");
        assert_eq!(ar["alerts"][0]["activeAt"], "1970-01-01T00:00:00Z");
        assert_eq!(ar["alerts"][0]["value"], "0e+00");
        assert_eq!(ar["alerts"][0]["annotations"]["s"], "a");
        assert_eq!(ar["labels"]["sev"], "page");

        let only = rules_response(
            &groups,
            &RulesQuery::from_pairs([("type", "record")]).unwrap(),
        );
        assert_eq!(only.groups[0].rules.len(), 1);
        let none = rules_response(
            &groups,
            &RulesQuery::from_pairs([("rule_name[]", "nope")]).unwrap(),
        );
        assert!(none.groups.is_empty());
        let alerts = alerts_response(&groups);
        assert_eq!(alerts.alerts.len(), 1);
        assert_eq!(alerts.alerts[0].labels["alertname"], "Down");
    }

    #[test]
    fn query_parsing() {
        let q = RulesQuery::from_pairs([("type", "ALERT"), ("rule_name[]", "A"), ("file[]", "f")])
            .unwrap();
        assert_eq!(q.kind.as_deref(), Some("alert"));
        assert!(q.rule_names.contains("A"));
        assert!(RulesQuery::from_pairs([("type", "x")]).is_err());
    }
}

//! Recording and alerting rules from `prometheus.yml`'s `rule_files`,
//! evaluated over the TSDB, alerts sent to `alerting.alertmanagers`;
//! `/api/v1/rules` and `/api/v1/alerts`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use pharos_core::TenantId;
use pharos_core::error::ErrorClass;
use pharos_model::{Labels, Sample};
use pharos_promql::Engine;
use pharos_rules::notifier::{AlertmanagerConfig, Notifier, NotifierOptions, NotifierSender};
use pharos_rules::{Alert, AlertSender, Manager, ManagerOptions, RuleSink};
use pharos_scrape::PrometheusConfig;
use pharos_server::{ApiError, ErrorFormat};
use tokio::sync::watch;

use crate::ingest::SampleSink;
use crate::store::{TenantStore, TsdbQueryable};

/// Rule results go to the same tenant scraping writes to.
struct StoreRuleSink(Arc<TenantStore>);

impl RuleSink for StoreRuleSink {
    fn append(&self, series: Vec<(Labels, Vec<Sample>)>) -> Result<(), String> {
        let out = self
            .0
            .append(&TenantId::anonymous(), series)
            .map_err(|e| e.to_string())?;
        match out.rejected.first() {
            None => Ok(()),
            Some(first) => Err(first.clone()),
        }
    }
}

/// The notifier is rebuilt when `alerting` changes on reload; rules keep
/// one sender that forwards to the current one.
#[derive(Default)]
struct CurrentSender(RwLock<Option<(Arc<NotifierSender>, watch::Sender<bool>)>>);

impl AlertSender for CurrentSender {
    fn send(&self, expr: &str, alerts: Vec<Alert>) {
        if let Some((s, _)) = self.0.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            s.send(expr, alerts);
        }
    }
}

#[derive(Clone)]
pub struct Rules {
    manager: Arc<Manager>,
    sender: Arc<CurrentSender>,
    config_file: Option<PathBuf>,
    external_url: String,
}

impl Rules {
    pub async fn start(
        store: Arc<TenantStore>,
        engine: Arc<Engine>,
        config_file: Option<PathBuf>,
        external_url: String,
    ) -> Result<Self, String> {
        let cfg = match &config_file {
            Some(p) => Some(PrometheusConfig::load(p).map_err(|e| e.to_string())?),
            None => None,
        };
        let external_labels = cfg
            .as_ref()
            .map(|c| {
                Labels::from_pairs(
                    c.global
                        .external_labels
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str())),
                )
            })
            .unwrap_or_default();
        let evaluation_interval = cfg
            .as_ref()
            .map(|c| c.global.evaluation_interval.as_std())
            .unwrap_or(Duration::from_secs(60));
        let sender = Arc::new(CurrentSender::default());
        let manager = Arc::new(Manager::new(ManagerOptions {
            engine,
            queryable: Arc::new(AnonymousQueryable(store.clone())),
            sink: Arc::new(StoreRuleSink(store)),
            sender: sender.clone(),
            evaluation_interval,
            external_labels,
            external_url: external_url.clone(),
            group: Default::default(),
        }));
        let me = Self {
            manager,
            sender,
            config_file,
            external_url,
        };
        me.reload().await?;
        me.manager.start().await;
        Ok(me)
    }

    /// Re-reads prometheus.yml: rule files and Alertmanagers. A broken file
    /// keeps the running rules and returns why.
    pub async fn reload(&self) -> Result<(), String> {
        let Some(path) = &self.config_file else {
            return Ok(());
        };
        let cfg = PrometheusConfig::load(path).map_err(|e| e.to_string())?;
        let ams = alertmanagers(path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        self.manager
            .update_patterns(&cfg.rule_files, base)
            .await
            .map_err(|e| e.to_string())?;
        let notifier = Arc::new(
            Notifier::new(
                NotifierOptions {
                    external_labels: Labels::from_pairs(
                        cfg.global
                            .external_labels
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str())),
                    ),
                    ..Default::default()
                },
                ams,
            )
            .map_err(|e| e.to_string())?,
        );
        let (tx, rx) = watch::channel(false);
        tokio::spawn(notifier.clone().run(rx));
        let old = self
            .sender
            .0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .replace((
                Arc::new(NotifierSender {
                    notifier,
                    external_url: self.external_url.clone(),
                }),
                tx,
            ));
        if let Some((_, stop)) = old {
            let _ = stop.send(true);
        }
        tracing::info!(file = %path.display(), rule_files = cfg.rule_files.len(), "rules applied");
        Ok(())
    }

    pub async fn metrics_text(&self) -> String {
        let mut out = self.manager.render_metrics().await;
        if let Some((s, _)) = self
            .sender
            .0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            out.push_str(&s.notifier.render_metrics());
        }
        out
    }
}

/// The `alerting.alertmanagers` section, read with the notifier's own
/// (unmasked) config types.
fn alertmanagers(path: &Path) -> Result<Vec<AlertmanagerConfig>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
    let section = doc
        .get("alerting")
        .and_then(|a| a.get("alertmanagers"))
        .cloned()
        .unwrap_or(serde_yaml::Value::Sequence(Vec::new()));
    let ams: Vec<AlertmanagerConfig> =
        serde_yaml::from_value(section).map_err(|e| format!("alerting.alertmanagers: {e}"))?;
    for a in &ams {
        for k in a.unsupported_keys() {
            tracing::warn!(
                key = k,
                "alertmanager config key not implemented yet, ignored"
            );
        }
    }
    Ok(ams)
}

struct AnonymousQueryable(Arc<TenantStore>);

impl pharos_promql::Queryable for AnonymousQueryable {
    fn select(
        &self,
        matchers: &[pharos_model::Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<pharos_promql::Series>, pharos_promql::QueryError> {
        TsdbQueryable(self.0.get(&TenantId::anonymous())).select(matchers, mint, maxt)
    }

    fn select_map(
        &self,
        matchers: &[pharos_model::Matcher],
        mint: i64,
        maxt: i64,
        f: &pharos_promql::SeriesMap<'_>,
    ) -> Result<Vec<pharos_promql::Series>, pharos_promql::QueryError> {
        TsdbQueryable(self.0.get(&TenantId::anonymous())).select_map(matchers, mint, maxt, f)
    }
}

pub async fn rules_api(State(r): State<Rules>, RawQuery(q): RawQuery) -> Response {
    let raw = q.unwrap_or_default();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect();
    let query = match pharos_rules::api::RulesQuery::from_pairs(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ) {
        Ok(q) => q,
        Err(e) => {
            return ApiError::new(
                ErrorFormat::Prometheus,
                ErrorClass::BadRequest,
                e.to_string(),
            )
            .into_response();
        }
    };
    let groups = r.manager.groups().await;
    let data = pharos_rules::api::rules_response(&groups, &query);
    Json(serde_json::json!({"status": "success", "data": data})).into_response()
}

pub async fn alerts_api(State(r): State<Rules>) -> Response {
    let groups = r.manager.groups().await;
    let data = pharos_rules::api::alerts_response(&groups);
    Json(serde_json::json!({"status": "success", "data": data})).into_response()
}

/// `/metrics` text of the rule manager and notifier, refreshed in the
/// background because rendering them needs the async locks.
#[derive(Clone, Default)]
pub struct RulesMetrics(Arc<RwLock<String>>);

impl RulesMetrics {
    pub fn spawn_refresh(&self, rules: Rules, every: Duration) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let text = rules.metrics_text().await;
                *me.0.write().unwrap_or_else(|p| p.into_inner()) = text;
                tokio::time::sleep(every).await;
            }
        });
    }
}

impl pharos_server::metrics::Collect for RulesMetrics {
    fn collect(&self, out: &mut String) {
        out.push_str(&self.0.read().unwrap_or_else(|p| p.into_inner()));
    }
}

//! Scraping configured by the user's `prometheus.yml`: the bridge from the
//! scrape loops to the TSDB, `/api/v1/targets`, `/api/v1/targets/metadata`
//! and reloads.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use pharos_core::TenantId;
use pharos_core::error::ErrorClass;
use pharos_scrape::scrape::Series;
use pharos_scrape::{PrometheusConfig, ScrapeManager, ScrapeSink};
use pharos_server::{ApiError, ErrorFormat};
use serde::Deserialize;

use crate::ingest::SampleSink;
use crate::remote_write::Metadata;
use crate::store::TenantStore;

/// Scraped data belongs to one tenant (Prometheus has no tenants; the
/// scraping metrics-server writes to `anonymous` unless configured).
pub struct StoreSink {
    pub store: Arc<TenantStore>,
    pub tenant: TenantId,
}

impl ScrapeSink for StoreSink {
    fn append(&self, series: Vec<Series>) -> Result<(), String> {
        let run = || self.store.append(&self.tenant, series);
        // the WAL append may fsync: tell a multi-threaded runtime so it
        // moves other tasks off this worker
        let out = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
            _ => run(),
        }
        .map_err(|e| e.to_string())?;
        match out.rejected.first() {
            None => Ok(()),
            Some(first) => Err(format!(
                "{} series refused, first: {first}",
                out.rejected.len()
            )),
        }
    }

    fn set_metadata(&self, metric: &str, kind: &str, help: &str, unit: &str) {
        let kind = match kind {
            "counter" => "counter",
            "gauge" => "gauge",
            "histogram" => "histogram",
            "gaugehistogram" => "gaugehistogram",
            "summary" => "summary",
            "info" => "info",
            "stateset" => "stateset",
            _ => "unknown",
        };
        self.store.set_metadata(
            &self.tenant,
            &[Metadata {
                metric: metric.to_owned(),
                kind,
                help: help.to_owned(),
                unit: unit.to_owned(),
            }],
        );
    }
}

/// The scrape manager and the file it was configured from.
#[derive(Clone)]
pub struct Scraping {
    pub manager: ScrapeManager,
    pub config_file: Option<PathBuf>,
}

impl Scraping {
    /// Starts scraping what `config_file` says (nothing without one).
    pub fn start(store: Arc<TenantStore>, config_file: Option<PathBuf>) -> Result<Self, String> {
        let sink = Arc::new(StoreSink {
            store,
            tenant: TenantId::anonymous(),
        });
        let seed = std::process::id() as u64;
        let me = Self {
            manager: ScrapeManager::new(sink, seed),
            config_file,
        };
        me.reload()?;
        Ok(me)
    }

    /// Re-reads the file and applies it; on error the running config stays.
    pub fn reload(&self) -> Result<(), String> {
        let Some(path) = &self.config_file else {
            return Ok(());
        };
        let cfg = PrometheusConfig::load(path).map_err(|e| e.to_string())?;
        self.manager.apply_config(&cfg).map_err(|e| e.to_string())?;
        tracing::info!(file = %path.display(), jobs = cfg.scrape_configs.len(), "scrape configuration applied");
        Ok(())
    }
}

#[derive(Debug, Deserialize, Default)]
pub struct TargetsParams {
    state: Option<String>,
    #[serde(rename = "scrapePool")]
    scrape_pool: Option<String>,
}

pub async fn targets(State(s): State<Scraping>, Query(p): Query<TargetsParams>) -> Response {
    let mut view = s.manager.targets();
    if let Some(pool) = &p.scrape_pool {
        view.active_targets.retain(|t| &t.scrape_pool == pool);
        view.dropped_targets
            .retain(|t| t.discovered_labels.get("job") == Some(pool));
    }
    let state = p.state.as_deref().unwrap_or("any").to_ascii_lowercase();
    let mut data = serde_json::to_value(&view).unwrap_or_default();
    match state.as_str() {
        "active" => data["droppedTargets"] = serde_json::json!([]),
        "dropped" => data["activeTargets"] = serde_json::json!([]),
        _ => {}
    }
    Json(serde_json::json!({"status": "success", "data": data})).into_response()
}

#[derive(Debug, Deserialize, Default)]
pub struct MetadataParams {
    match_target: Option<String>,
    metric: Option<String>,
    limit: Option<usize>,
}

pub async fn targets_metadata(
    State(s): State<Scraping>,
    Query(p): Query<MetadataParams>,
) -> Response {
    let matchers = match p.match_target.as_deref().map(parse_selector).transpose() {
        Ok(m) => m.unwrap_or_default(),
        Err(e) => {
            return ApiError::new(ErrorFormat::Prometheus, ErrorClass::BadRequest, e)
                .into_response();
        }
    };
    let mut out: Vec<_> = s
        .manager
        .metadata()
        .into_iter()
        .filter(|m| p.metric.as_ref().is_none_or(|x| *x == m.metric))
        .filter(|m| {
            matchers
                .iter()
                .all(|mt| mt.matches(m.target.get(&mt.name).map(String::as_str).unwrap_or("")))
        })
        .collect();
    if let Some(limit) = p.limit {
        out.truncate(limit);
    }
    Json(serde_json::json!({"status": "success", "data": out})).into_response()
}

/// `{a="b", c=~"d"}` as in `match_target`, parsed as PromQL does.
fn parse_selector(s: &str) -> Result<Vec<pharos_model::Matcher>, String> {
    match pharos_promql::parse(s).map_err(|e| e.to_string())? {
        promql_parser::parser::Expr::VectorSelector(vs) => {
            pharos_promql::selector_matchers(&vs).map_err(|e| e.to_string())
        }
        _ => Err(format!("match_target {s:?} is not a label selector")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_target_selectors() {
        let m = parse_selector(r#"{job="node", instance=~"a.*"}"#).unwrap();
        assert_eq!(m.len(), 2);
        assert!(m.iter().any(|x| x.name == "job" && x.matches("node")));
        assert!(
            m.iter()
                .any(|x| x.name == "instance" && x.matches("abc") && !x.matches("b"))
        );
        assert!(parse_selector("{job=}").is_err());
    }
}

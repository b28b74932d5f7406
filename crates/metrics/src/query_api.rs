//! The Prometheus HTTP query API (`/api/v1/query`, `query_range`, `series`,
//! `labels`, status pages, `/federate`) with Prometheus 2.42's parameter
//! parsing, error messages and response bytes.
//!
//! Queries and storage reads run on the blocking pool; a query is canceled
//! when its handler future is dropped, which is what hyper does when the
//! client goes away.

mod federate;
mod json;
mod params;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use http::{HeaderValue, StatusCode, header};
use pharos_core::error::ErrorClass;
use pharos_model::Matcher;
use pharos_promql::{CancelToken, Engine, EngineOptions, QueryError};
use pharos_server::Tenant;
use serde::Serialize;

use crate::reader::{MetricsReader, ReadError};

pub use federate::format_g;
pub use json::{ApiErr, format_f, format_value};
pub use params::{
    MAX_TIME_MS, MAX_TIME_TEXT, MIN_TIME_MS, MIN_TIME_TEXT, Params, parse_duration, parse_time,
};

use json::{success, success_raw};
use params::{invalid_param, parse_matchers_param, time_param};

/// Process facts `/api/v1/status/runtimeinfo` reports; the config loader
/// updates the reload fields.
#[derive(Debug)]
pub struct RuntimeStatus {
    pub start_time: SystemTime,
    /// As Prometheus prints it, e.g. `15d` or `15d or 512MiB`.
    pub storage_retention: String,
    pub reload_config_success: AtomicBool,
    pub last_config_time: Mutex<SystemTime>,
    pub corruption_count: AtomicI64,
}

impl Default for RuntimeStatus {
    fn default() -> Self {
        let now = SystemTime::now();
        Self {
            start_time: now,
            storage_retention: "15d".into(),
            reload_config_success: AtomicBool::new(true),
            last_config_time: Mutex::new(now),
            corruption_count: AtomicI64::new(0),
        }
    }
}

impl RuntimeStatus {
    /// Records the outcome of a configuration (re)load.
    pub fn config_loaded(&self, success: bool) {
        self.reload_config_success.store(success, Ordering::Relaxed);
        if success {
            *self
                .last_config_time
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = SystemTime::now();
        }
    }
}

/// What the query API serves from.
#[derive(Clone)]
pub struct QueryApi {
    pub reader: Arc<dyn MetricsReader>,
    /// Its options' timeout caps the `timeout` parameter.
    pub engine: Arc<Engine>,
    /// The effective configuration, secrets masked, for `/status/config`.
    pub config_yaml: Arc<String>,
    /// Command-line flags by name, for `/status/flags`.
    pub flags: Arc<BTreeMap<String, String>>,
    pub runtime: Arc<RuntimeStatus>,
    /// `global.external_labels`, attached by `/federate`.
    pub external_labels: Arc<BTreeMap<String, String>>,
    /// `--web.cors.origin` (anchored); `None` is upstream's default `.*`,
    /// answered with `Access-Control-Allow-Origin: *`.
    pub cors_origin: Option<Arc<regex::Regex>>,
}

impl QueryApi {
    /// An API over `reader` with an engine of default options and empty
    /// config, flags and external labels.
    pub fn new(reader: Arc<dyn MetricsReader>) -> Self {
        Self {
            reader,
            engine: Arc::new(Engine::new(EngineOptions::default())),
            config_yaml: Arc::new(String::new()),
            flags: Arc::new(BTreeMap::new()),
            runtime: Arc::new(RuntimeStatus::default()),
            external_labels: Arc::new(BTreeMap::new()),
            cors_origin: None,
        }
    }
}

/// The query routes; the lead merges them into the role's router.
pub fn query_routes(state: QueryApi) -> Router {
    // upstream answers a CORS preflight on any API path with 204
    let api = |m: MethodRouter<QueryApi>| m.options(preflight);
    Router::new()
        .route("/api/v1/query", api(get(query).post(query)))
        .route(
            "/api/v1/query_range",
            api(get(query_range).post(query_range)),
        )
        .route(
            "/api/v1/query_exemplars",
            api(get(query_exemplars).post(query_exemplars)),
        )
        .route(
            "/api/v1/format_query",
            api(get(format_query).post(format_query)),
        )
        .route("/api/v1/labels", api(get(labels).post(labels)))
        .route("/api/v1/label/{name}/values", api(get(label_values)))
        .route(
            "/api/v1/series",
            api(get(series).post(series).delete(drop_series)),
        )
        .route("/api/v1/metadata", api(get(metadata)))
        .route("/api/v1/status/config", api(get(status_config)))
        .route("/api/v1/status/flags", api(get(status_flags)))
        .route("/api/v1/status/runtimeinfo", api(get(status_runtimeinfo)))
        .route("/api/v1/status/tsdb", api(get(status_tsdb)))
        .route("/federate", get(federate))
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors))
        .with_state(state)
}

async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// Upstream's `httputil.SetCORS`, applied to every API answer of a
/// request that carries an `Origin`.
async fn cors(
    State(st): State<QueryApi>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let origin = req.headers().get(header::ORIGIN).cloned();
    let mut resp = next.run(req).await;
    let Some(origin) = origin else {
        return resp;
    };
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Accept, Authorization, Content-Type, Origin"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Date"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    match &st.cors_origin {
        None => {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
        Some(re) if origin.to_str().is_ok_and(|o| re.is_match(o)) => {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
        Some(_) => {}
    }
    resp
}

fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// Cancels the query when dropped before being disarmed, i.e. when the
/// handler future is dropped mid-query.
struct CancelOnDrop(Option<CancelToken>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            tracing::debug!("client went away, canceling query");
            t.cancel();
        }
    }
}

/// Runs a query (and the encoding of its answer) on the read pool, or on
/// the blocking pool when the read pool is busy; canceled if this future
/// is dropped.
async fn run_query<T: Send + 'static>(
    f: impl FnOnce(&CancelToken) -> Result<T, ApiErr> + Send + 'static,
) -> Result<T, ApiErr> {
    let token = CancelToken::new();
    let mut guard = CancelOnDrop(Some(token.clone()));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = move || {
        // the receiver is gone only when the client is
        let _ = tx.send(f(&token));
    };
    if let Err(job) = pharos_core::parallel::try_spawn(job) {
        tokio::task::spawn_blocking(job);
    }
    let out = rx.await;
    guard.0 = None;
    // the sender dropped unsent: the query panicked
    out.unwrap_or_else(|_| {
        Err(ApiErr::new(
            ErrorClass::Internal,
            "query task failed".to_owned(),
        ))
    })
}

/// Runs a storage read on the blocking pool.
async fn read<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ReadError> + Send + 'static,
) -> Result<T, ApiErr> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(|e| ApiErr::from_error(&e)),
        Err(e) => Err(ApiErr::new(
            ErrorClass::Internal,
            format!("read task failed: {e}"),
        )),
    }
}

/// The engine for one query: the `timeout` parameter can only shorten the
/// configured timeout, as Prometheus' context deadline does.
fn engine_for(st: &QueryApi, p: &Params) -> Result<Arc<Engine>, ApiErr> {
    let to = p.value("timeout");
    if to.is_empty() {
        return Ok(st.engine.clone());
    }
    let ns = parse_duration(to).map_err(|e| invalid_param(&e, "timeout"))?;
    let asked = Duration::from_nanos(u64::try_from(ns).unwrap_or(0));
    let mut opts = st.engine.options().clone();
    opts.timeout = opts.timeout.min(asked);
    Ok(Arc::new(Engine::new(opts)))
}

fn query_error(e: &QueryError) -> ApiErr {
    ApiErr::from_error(e)
}

async fn query(State(st): State<QueryApi>, Tenant(tenant): Tenant, p: Params) -> Response {
    let result = async {
        let t = time_param(&p, "time", now_ms())?;
        let engine = engine_for(&st, &p)?;
        let q = p.value("query").to_owned();
        let reader = st.reader.clone();
        run_query(move |c| {
            let queryable = reader
                .queryable(&tenant)
                .map_err(|e| ApiErr::from_error(&e))?;
            let v = engine
                .instant_with_cancel(&*queryable, &q, t, c)
                .map_err(|e| match e {
                    // what NewInstantQuery refuses is a bad `query` parameter
                    QueryError::Parse(m) | QueryError::BadRequest(m) => invalid_param(&m, "query"),
                    e => query_error(&e),
                })?;
            Ok(json::query_success(&v))
        })
        .await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Whole nanoseconds between two millisecond times, without overflow.
fn span_ns(start: i64, end: i64) -> i128 {
    (i128::from(end) - i128::from(start)) * 1_000_000
}

async fn query_range(State(st): State<QueryApi>, Tenant(tenant): Tenant, p: Params) -> Response {
    let result = async {
        let start = parse_time(p.value("start")).map_err(|e| invalid_param(&e, "start"))?;
        let end = parse_time(p.value("end")).map_err(|e| invalid_param(&e, "end"))?;
        if end < start {
            return Err(invalid_param(
                "end timestamp must not be before start time",
                "end",
            ));
        }
        let step = parse_duration(p.value("step")).map_err(|e| invalid_param(&e, "step"))?;
        if step <= 0 {
            return Err(invalid_param(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
                "step",
            ));
        }
        if span_ns(start, end) / i128::from(step) > 11_000 {
            return Err(ApiErr::new(
                ErrorClass::BadRequest,
                pharos_promql::error::TOO_MANY_POINTS,
            ));
        }
        let engine = engine_for(&st, &p)?;
        let q = p.value("query").to_owned();
        let reader = st.reader.clone();
        let step_ms = step / 1_000_000;
        run_query(move |c| {
            let queryable = reader
                .queryable(&tenant)
                .map_err(|e| ApiErr::from_error(&e))?;
            let v = engine
                .range_with_cancel(&*queryable, &q, start, end, step_ms, c)
                .map_err(|e| query_error(&e))?;
            Ok(json::query_success(&v))
        })
        .await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn query_exemplars(
    State(st): State<QueryApi>,
    Tenant(tenant): Tenant,
    p: Params,
) -> Response {
    let result = async {
        let start = time_param(&p, "start", MIN_TIME_MS)?;
        let end = time_param(&p, "end", MAX_TIME_MS)?;
        if end < start {
            return Err(ApiErr::new(
                ErrorClass::BadRequest,
                "end timestamp must not be before start timestamp",
            ));
        }
        let expr = pharos_promql::parse(p.value("query")).map_err(|e| query_error(&e))?;
        let mut selectors = Vec::new();
        params::extract_selectors(&expr, &mut selectors)
            .map_err(|e| ApiErr::new(ErrorClass::BadRequest, e))?;
        if selectors.is_empty() {
            return Ok(None);
        }
        let reader = st.reader.clone();
        read(move || reader.exemplars(&tenant, &selectors, start, end))
            .await
            .map(Some)
    }
    .await;
    match result {
        Ok(Some(ex)) => success_raw(&json::exemplars_data(&ex), &[]),
        // upstream answers a query without selectors with no data at all
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn format_query(Tenant(_): Tenant, p: Params) -> Response {
    match pharos_promql::parse(p.value("query")) {
        Ok(expr) => success(&expr.prettify()),
        Err(e) => invalid_param(&e.to_string(), "query").into_response(),
    }
}

/// `limit` of the label and series endpoints (added upstream after 2.42;
/// accepted here so newer clients work): a positive count or absent.
fn limit_param(p: &Params) -> Result<Option<usize>, ApiErr> {
    let s = p.value("limit");
    if s.is_empty() {
        return Ok(None);
    }
    match s.parse::<i64>() {
        Ok(n) if n > 0 => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
        Ok(_) => Err(invalid_param("limit must be positive", "limit")),
        Err(_) => Err(invalid_param(
            &format!(
                "strconv.Atoi: parsing {}: invalid syntax",
                params::go_quote(s)
            ),
            "limit",
        )),
    }
}

struct Lookup {
    sets: Vec<Vec<Matcher>>,
    start: i64,
    end: i64,
    limit: Option<usize>,
}

/// start/end/match[]/limit of the label endpoints; bad `match[]` is an
/// unwrapped `bad_data` there.
fn lookup_params(p: &Params) -> Result<Lookup, ApiErr> {
    let start = time_param(p, "start", MIN_TIME_MS)?;
    let end = time_param(p, "end", MAX_TIME_MS)?;
    let sets = parse_matchers_param(&p.all("match[]"))
        .map_err(|e| ApiErr::new(ErrorClass::BadRequest, e))?;
    let limit = limit_param(p)?;
    Ok(Lookup {
        sets,
        start,
        end,
        limit,
    })
}

fn truncated<T>(mut v: Vec<T>, limit: Option<usize>) -> Vec<T> {
    if let Some(l) = limit {
        v.truncate(l);
    }
    v
}

async fn labels(State(st): State<QueryApi>, Tenant(tenant): Tenant, p: Params) -> Response {
    let result = async {
        let l = lookup_params(&p)?;
        let reader = st.reader.clone();
        read(move || reader.label_names(&tenant, &l.sets, l.start, l.end, l.limit))
            .await
            .map(|v| truncated(v, l.limit))
    }
    .await;
    match result {
        Ok(v) => success(&v),
        Err(e) => e.into_response(),
    }
}

async fn label_values(
    State(st): State<QueryApi>,
    Tenant(tenant): Tenant,
    Path(name): Path<String>,
    p: Params,
) -> Response {
    let result = async {
        if !params::is_label_name(&name) {
            return Err(ApiErr::new(
                ErrorClass::BadRequest,
                format!("invalid label name: {}", params::go_quote(&name)),
            ));
        }
        let l = lookup_params(&p)?;
        let reader = st.reader.clone();
        read(move || reader.label_values(&tenant, &name, &l.sets, l.start, l.end, l.limit))
            .await
            .map(|v| truncated(v, l.limit))
    }
    .await;
    match result {
        Ok(v) => success(&v),
        Err(e) => e.into_response(),
    }
}

async fn series(State(st): State<QueryApi>, Tenant(tenant): Tenant, p: Params) -> Response {
    let result = async {
        let matches = p.all("match[]");
        if matches.is_empty() {
            return Err(ApiErr::new(
                ErrorClass::BadRequest,
                "no match[] parameter provided",
            ));
        }
        let start = time_param(&p, "start", MIN_TIME_MS)?;
        let end = time_param(&p, "end", MAX_TIME_MS)?;
        let sets = parse_matchers_param(&matches).map_err(|e| invalid_param(&e, "match[]"))?;
        let limit = limit_param(&p)?;
        let reader = st.reader.clone();
        read(move || reader.series(&tenant, &sets, start, end, limit))
            .await
            .map(|v| truncated(v, limit))
    }
    .await;
    match result {
        Ok(v) => {
            let mut out = String::from("[");
            for (i, l) in v.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json::push_labels(&mut out, l);
            }
            out.push(']');
            success_raw(&out, &[])
        }
        Err(e) => e.into_response(),
    }
}

async fn drop_series(Tenant(_): Tenant) -> Response {
    ApiErr::new(ErrorClass::Internal, "not implemented").into_response()
}

/// A count parameter read with Go's `strconv.Atoi`.
fn count_param(p: &Params, name: &str) -> Result<Option<i64>, ApiErr> {
    let s = p.value(name);
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<i64>()
        .map(Some)
        .map_err(|_| ApiErr::new(ErrorClass::BadRequest, format!("{name} must be a number")))
}

async fn metadata(State(st): State<QueryApi>, Tenant(tenant): Tenant, p: Params) -> Response {
    let result = async {
        // a negative limit means none, as upstream's default of -1
        let limit = count_param(&p, "limit")?.and_then(|n| usize::try_from(n).ok());
        let per_metric = count_param(&p, "limit_per_metric")?
            .filter(|n| *n > 0)
            .and_then(|n| usize::try_from(n).ok());
        let metric = Some(p.value("metric").to_owned()).filter(|m| !m.is_empty());
        let reader = st.reader.clone();
        read(move || reader.metadata(&tenant, metric.as_deref(), limit, per_metric)).await
    }
    .await;
    match result {
        Ok(v) => success(&v),
        Err(e) => e.into_response(),
    }
}

#[derive(Serialize)]
struct ConfigData<'a> {
    yaml: &'a str,
}

async fn status_config(State(st): State<QueryApi>, Tenant(_): Tenant) -> Response {
    success(&ConfigData {
        yaml: &st.config_yaml,
    })
}

async fn status_flags(State(st): State<QueryApi>, Tenant(_): Tenant) -> Response {
    success(&*st.flags)
}

#[derive(Serialize)]
struct RuntimeInfo {
    #[serde(rename = "startTime")]
    start_time: String,
    #[serde(rename = "CWD")]
    cwd: String,
    #[serde(rename = "reloadConfigSuccess")]
    reload_config_success: bool,
    #[serde(rename = "lastConfigTime")]
    last_config_time: String,
    #[serde(rename = "corruptionCount")]
    corruption_count: i64,
    /// Threads stand in for goroutines.
    #[serde(rename = "goroutineCount")]
    goroutine_count: i64,
    #[serde(rename = "GOMAXPROCS")]
    gomaxprocs: usize,
    #[serde(rename = "GOGC")]
    gogc: String,
    #[serde(rename = "GODEBUG")]
    godebug: String,
    #[serde(rename = "storageRetention")]
    storage_retention: String,
}

/// Go's `time.Time` JSON form (RFC 3339 with trimmed nanoseconds), in UTC.
pub fn format_rfc3339_nano(t: SystemTime) -> String {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let (s, n) = (d.as_secs() as i64, d.subsec_nanos());
            if n == 0 {
                (-s, 0)
            } else {
                (-s - 1, 1_000_000_000 - n)
            }
        }
    };
    let (y, m, d) = params::civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

fn thread_count() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

async fn status_runtimeinfo(State(st): State<QueryApi>, Tenant(_): Tenant) -> Response {
    let rt = &st.runtime;
    let last = *rt
        .last_config_time
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    success(&RuntimeInfo {
        start_time: format_rfc3339_nano(rt.start_time),
        cwd: std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "<unknown>".into()),
        reload_config_success: rt.reload_config_success.load(Ordering::Relaxed),
        last_config_time: format_rfc3339_nano(last),
        corruption_count: rt.corruption_count.load(Ordering::Relaxed),
        goroutine_count: thread_count(),
        gomaxprocs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        gogc: std::env::var("GOGC").unwrap_or_default(),
        godebug: std::env::var("GODEBUG").unwrap_or_default(),
        storage_retention: rt.storage_retention.clone(),
    })
}

async fn status_tsdb(State(st): State<QueryApi>, Tenant(tenant): Tenant, p: Params) -> Response {
    let result = async {
        let limit = match p.value("limit") {
            "" => 10,
            s => match s.parse::<i64>() {
                Ok(n) if n >= 1 => usize::try_from(n).unwrap_or(usize::MAX),
                _ => {
                    return Err(ApiErr::new(
                        ErrorClass::BadRequest,
                        "limit must be a positive number",
                    ));
                }
            },
        };
        let reader = st.reader.clone();
        read(move || reader.tsdb_status(&tenant, limit)).await
    }
    .await;
    match result {
        Ok(v) => success(&v),
        Err(e) => e.into_response(),
    }
}

/// Go's `http.Error`: plain text with a newline.
fn plain_error(status: StatusCode, msg: &str) -> Response {
    let mut resp = (status, format!("{msg}\n")).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

async fn federate(State(st): State<QueryApi>, Tenant(tenant): Tenant, p: Params) -> Response {
    let mut sets = Vec::new();
    for m in p.all("match[]") {
        match params::parse_metric_selector(m) {
            Ok(s) => sets.push(s),
            Err(e) => return plain_error(StatusCode::BAD_REQUEST, &e),
        }
    }
    let maxt = now_ms();
    let lookback = i64::try_from(st.engine.options().lookback_delta.as_millis()).unwrap_or(0);
    let mint = maxt.saturating_sub(lookback);
    let reader = st.reader.clone();
    let external = st.external_labels.clone();
    let out = tokio::task::spawn_blocking(move || {
        let q = reader
            .queryable(&tenant)
            .map_err(|e| (ApiErr::from_error(&e).class, e.to_string()))?;
        federate::render(&*q, &sets, mint, maxt, &external)
            .map_err(|e| (ErrorClass::Internal, e.to_string()))
    })
    .await;
    match out {
        Ok(Ok(text)) => {
            let mut resp = text.into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        Ok(Err((class, msg))) => {
            let status = if class == ErrorClass::Unavailable {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            plain_error(status, &msg)
        }
        Err(e) => plain_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

#[cfg(test)]
mod tests;

//! The remote_write receiver: `POST /api/v1/write`.
//!
//! Answers as senders expect: 204 when everything was stored; 400 naming
//! the first problem when some series or samples were refused (the rest are
//! stored, so a retry cannot duplicate them); 415 for content types we do
//! not speak; 429 over the tenant's rate; 5xx only when retrying may help.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use pharos_config::LimitsConfig;
use pharos_core::error::{Classify, ErrorClass};
use pharos_core::{RateLimiter, TenantId};
use pharos_model::{LabelSet, Labels, Sample};
use pharos_server::{ApiError, CounterVec, ErrorFormat, Registry, Tenant};

use crate::remote_write::{
    Metadata, Protocol, RawBatch, WriteBatch, decode, decode_v1, decompress,
};

/// Where accepted samples go: the TSDB of each tenant.
pub trait SampleSink: Send + Sync + 'static {
    /// Appends what it can; returns how many samples were stored and the
    /// reasons for what was refused. `Err` only when nothing could be
    /// stored for a reason that may pass (storage unavailable).
    fn append(
        &self,
        tenant: &TenantId,
        series: Vec<(Labels, Vec<Sample>)>,
    ) -> Result<AppendOutcome, SinkError>;
    /// Appends a decoded remote_write 1.0 request as [`SampleSink::append`]
    /// does. A sink that can look series up by borrowed labels overrides
    /// this so known series cost no allocation; the default materializes
    /// the batch.
    fn append_raw(&self, tenant: &TenantId, batch: &RawBatch) -> Result<AppendOutcome, SinkError> {
        self.append(tenant, batch.to_series())
    }
    fn set_metadata(&self, tenant: &TenantId, metadata: &[Metadata]);
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct AppendOutcome {
    pub samples_written: usize,
    /// One message per refused series or sample run, naming the series.
    pub rejected: Vec<String>,
    /// How many of `rejected` are new series refused by the tenant's
    /// active-series limit.
    pub series_limited: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub class: ErrorClass,
    pub message: String,
}

impl Classify for SinkError {
    fn class(&self) -> ErrorClass {
        self.class
    }
}

/// Limits applied before anything reaches the sink.
#[derive(Debug, Clone)]
pub struct IngestLimits {
    pub max_label_names_per_series: usize,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
    /// Samples newer than now + this are refused (clock skew allowance).
    pub creation_grace_period_ms: i64,
}

impl IngestLimits {
    pub fn from_config(l: &LimitsConfig) -> Self {
        Self {
            max_label_names_per_series: l.max_label_names_per_series as usize,
            max_label_name_length: l.max_label_name_length as usize,
            max_label_value_length: l.max_label_value_length as usize,
            creation_grace_period_ms: 10 * 60 * 1000,
        }
    }
}

#[derive(Clone)]
pub struct Ingest {
    pub sink: Arc<dyn SampleSink>,
    pub limits: Arc<IngestLimits>,
    pub rate: Arc<RateLimiter>,
    pub received: CounterVec,
    pub discarded: CounterVec,
}

impl Ingest {
    pub fn new(sink: Arc<dyn SampleSink>, limits: &LimitsConfig, registry: &Registry) -> Self {
        Self {
            sink,
            limits: Arc::new(IngestLimits::from_config(limits)),
            rate: Arc::new(RateLimiter::new(
                limits.ingestion_rate,
                limits.ingestion_burst,
                "samples",
            )),
            received: registry.counter_vec(
                "pharos_remote_write_samples_received_total",
                "Samples received by the remote_write receiver, by protocol version.",
                &["version"],
            ),
            discarded: registry.counter_vec(
                "pharos_remote_write_samples_discarded_total",
                "Samples refused by the remote_write receiver, by reason.",
                &["reason"],
            ),
        }
    }
}

fn text_error(class: ErrorClass, msg: impl Into<String>) -> Response {
    ApiError::new(ErrorFormat::PlainText, class, msg).into_response()
}

pub async fn write(
    State(ing): State<Ingest>,
    Tenant(tenant): Tenant,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header_str = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    let protocol = match Protocol::from_content_type(header_str(header::CONTENT_TYPE)) {
        Ok(p) => p,
        Err(e) => return text_error(e.class(), e.to_string()),
    };
    let version = match protocol {
        Protocol::V1 => "1.0",
        Protocol::V2 => "2.0",
    };
    let decoded =
        decompress(&body, header_str(header::CONTENT_ENCODING)).and_then(|raw| match protocol {
            Protocol::V1 => decode_v1(&raw).map(Batch::Raw),
            Protocol::V2 => decode(&raw, protocol).map(Batch::Owned),
        });
    let batch = match decoded {
        Ok(b) => b,
        Err(e) => {
            ing.discarded.with(&["invalid_request"]).inc();
            return text_error(e.class(), e.to_string());
        }
    };
    let (mut resp, written) = store(&ing, &tenant, batch, version).await;
    if protocol == Protocol::V2 {
        let h = resp.headers_mut();
        let n = |v: usize| {
            HeaderValue::from_str(&v.to_string()).unwrap_or(HeaderValue::from_static("0"))
        };
        h.insert("X-Prometheus-Remote-Write-Samples-Written", n(written));
        h.insert("X-Prometheus-Remote-Write-Histograms-Written", n(0));
        h.insert("X-Prometheus-Remote-Write-Exemplars-Written", n(0));
    }
    resp
}

/// Rate limit, per-series limits, then the sink: 204, or the first reason
/// something was refused (the rest is stored). Shared by every write
/// protocol.
pub async fn store_batch(
    ing: &Ingest,
    Tenant(tenant): Tenant,
    batch: WriteBatch,
    version: &str,
) -> Response {
    store(ing, &tenant, Batch::Owned(batch), version).await.0
}

/// A request on its way to the sink: owned series (2.0, OTLP) or the flat
/// form of a 1.0 request.
enum Batch {
    Owned(WriteBatch),
    Raw(RawBatch),
}

impl Batch {
    fn samples(&self) -> usize {
        match self {
            Self::Owned(b) => b.samples(),
            Self::Raw(b) => b.samples(),
        }
    }

    fn metadata(&self) -> &[Metadata] {
        match self {
            Self::Owned(b) => &b.metadata,
            Self::Raw(b) => &b.metadata,
        }
    }
}

/// Applies the per-series limits and the future-timestamp cut to every
/// series; refused ones are counted, named in `rejected` and removed.
fn apply_limits(ing: &Ingest, batch: &mut Batch, now_ms: i64, rejected: &mut Vec<String>) {
    let limit = now_ms + ing.limits.creation_grace_period_ms;
    let future_msg = |labels: &dyn std::fmt::Display| {
        format!(
            "received a sample whose timestamp is too far in the future (more than {}m ahead), series: '{labels}'",
            ing.limits.creation_grace_period_ms / 60_000
        )
    };
    match batch {
        Batch::Owned(b) => {
            let mut accepted = Vec::with_capacity(b.series.len());
            for (labels, mut samples) in std::mem::take(&mut b.series) {
                if let Err((reason, msg)) = check_labels(&ing.limits, &labels) {
                    ing.discarded.with(&[reason]).add(samples.len() as f64);
                    rejected.push(msg);
                    continue;
                }
                let before = samples.len();
                samples.retain(|s| s.t <= limit);
                if samples.len() < before {
                    ing.discarded
                        .with(&["too_far_in_future"])
                        .add((before - samples.len()) as f64);
                    rejected.push(future_msg(&labels));
                }
                if !samples.is_empty() {
                    accepted.push((labels, samples));
                }
            }
            b.series = accepted;
        }
        Batch::Raw(b) => {
            // one pass to decide, one to drop: nothing is copied when
            // everything passes, the common case
            let mut refused: Vec<usize> = Vec::new();
            let mut future = false;
            for (i, (labels, samples)) in b.iter().enumerate() {
                if let Err((reason, msg)) = check_labels(&ing.limits, &labels) {
                    ing.discarded.with(&[reason]).add(samples.len() as f64);
                    rejected.push(msg);
                    refused.push(i);
                    continue;
                }
                let late = samples.iter().filter(|s| s.t > limit).count();
                if late > 0 {
                    future = true;
                    ing.discarded.with(&["too_far_in_future"]).add(late as f64);
                    rejected.push(future_msg(&labels));
                }
            }
            if future || !refused.is_empty() {
                b.retain(|i, s| s.t <= limit && refused.binary_search(&i).is_err());
            }
        }
    }
}

async fn store(
    ing: &Ingest,
    tenant: &TenantId,
    mut batch: Batch,
    version: &str,
) -> (Response, usize) {
    let total = batch.samples();
    ing.received.with(&[version]).add(total as f64);
    if let Err(e) = ing.rate.try_acquire(tenant, total as u64) {
        ing.discarded.with(&["rate_limited"]).add(total as f64);
        return (text_error(ErrorClass::TooManyRequests, e.to_string()), 0);
    }
    if !batch.metadata().is_empty() {
        ing.sink.set_metadata(tenant, batch.metadata());
    }

    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let mut rejected = Vec::new();
    apply_limits(ing, &mut batch, now_ms, &mut rejected);
    // the WAL append fsyncs: keep it off the async workers
    let sink = ing.sink.clone();
    let t = tenant.clone();
    let outcome = match tokio::task::spawn_blocking(move || match batch {
        Batch::Owned(b) => sink.append(&t, b.series),
        Batch::Raw(b) => sink.append_raw(&t, &b),
    })
    .await
    {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => return (text_error(e.class(), e.to_string()), 0),
        Err(e) => {
            return (
                text_error(ErrorClass::Internal, format!("append task failed: {e}")),
                0,
            );
        }
    };
    let limited = outcome.series_limited.min(outcome.rejected.len());
    if limited > 0 {
        ing.discarded.with(&["series_limit"]).add(limited as f64);
    }
    if outcome.rejected.len() > limited {
        ing.discarded
            .with(&["rejected_by_tsdb"])
            .add((outcome.rejected.len() - limited) as f64);
    }
    rejected.extend(outcome.rejected);
    let resp = match rejected.first() {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(first) => {
            let more = rejected.len() - 1;
            let msg = if more > 0 {
                format!("{first} (and {more} more errors)")
            } else {
                first.clone()
            };
            text_error(ErrorClass::BadRequest, msg)
        }
    };
    (resp, outcome.samples_written)
}

fn check_labels<L: LabelSet + std::fmt::Display>(
    l: &IngestLimits,
    labels: &L,
) -> Result<(), (&'static str, String)> {
    if labels.label_count() > l.max_label_names_per_series {
        return Err((
            "max_label_names_per_series",
            format!(
                "received a series whose number of labels exceeds the limit (actual: {}, limit: {}) series: '{labels}'",
                labels.label_count(),
                l.max_label_names_per_series
            ),
        ));
    }
    for (name, value) in labels.pairs() {
        if name.len() > l.max_label_name_length {
            return Err((
                "label_name_too_long",
                format!(
                    "received a series whose label name length exceeds the limit (max_label_name_length {}), label: '{}' series: '{labels}'",
                    l.max_label_name_length, name
                ),
            ));
        }
        if value.len() > l.max_label_value_length {
            return Err((
                "label_value_too_long",
                format!(
                    "received a series whose label value length exceeds the limit (max_label_value_length {}), label: '{}' series: '{labels}'",
                    l.max_label_value_length, name
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use pharos_model::{MatchOp, Matcher};
    use pharos_proto::{Message, prometheus as v1};
    use pharos_tsdb::TsdbOptions;

    use super::*;
    use crate::store::TenantStore;

    type Pairs<'a> = &'a [(&'a str, &'a str)];

    fn request(series: &[(Pairs<'_>, i64, f64)]) -> Vec<u8> {
        v1::WriteRequest {
            timeseries: series
                .iter()
                .map(|(labels, t, v)| v1::TimeSeries {
                    labels: labels
                        .iter()
                        .map(|(n, v)| v1::Label {
                            name: (*n).into(),
                            value: (*v).into(),
                        })
                        .collect(),
                    samples: vec![v1::Sample {
                        value: *v,
                        timestamp: *t,
                    }],
                    ..Default::default()
                })
                .collect(),
            metadata: vec![],
        }
        .encode_to_vec()
    }

    /// New series over the tenant's active-series limit get a 400 naming
    /// the limit and its value, are counted by reason, and do not stop the
    /// rest of the request.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn series_over_the_active_series_limit_are_refused_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = TsdbOptions::default();
        opts.head.max_series = 2;
        let tsdb = Arc::new(TenantStore::open(dir.path(), opts).unwrap());
        let registry = Registry::new();
        let ing = Ingest::new(tsdb, &LimitsConfig::default(), &registry);
        let tenant = TenantId::anonymous();
        let body = request(&[
            (&[("__name__", "up"), ("job", "a")], 1000, 1.0),
            (&[("__name__", "up"), ("job", "b")], 1000, 1.0),
            (&[("__name__", "up"), ("job", "c")], 1000, 1.0),
        ]);
        let batch = Batch::Raw(decode_v1(&body).unwrap());
        let (resp, written) = store(&ing, &tenant, batch, "1.0").await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(written, 2, "the series within the limit are stored");
        let text = String::from_utf8(
            axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap()
                .to_vec(),
        )
        .unwrap();
        assert!(
            text.contains("series limit of 2") && text.contains("max_active_series"),
            "{text}"
        );
        assert!(text.contains(r#"job="c""#), "{text}");
        let metrics = registry.render();
        assert!(
            metrics.contains(
                r#"pharos_remote_write_samples_discarded_total{reason="series_limit"} 1"#
            ),
            "{metrics}"
        );
    }

    /// The borrowed-labels path (batched lookup and append in the TSDB)
    /// stores and refuses exactly what the owned path does, including a
    /// series repeated in one request and a conflicting duplicate.
    #[test]
    fn raw_and_owned_appends_agree() {
        let a: Pairs<'_> = &[("__name__", "up"), ("job", "a")];
        // unsorted on the wire, and with an empty (absent) label
        let b: Pairs<'_> = &[("job", "b"), ("__name__", "up"), ("x", "")];
        let c: Pairs<'_> = &[("__name__", "temp"), ("room", "ü")];
        let first = request(&[(a, 1000, 1.0), (b, 1000, 2.0), (a, 2000, 3.0)]);
        let second = request(&[
            (a, 2000, 3.0),      // a retry: a duplicate, accepted
            (b, 1000, 9.0),      // conflicts with the stored 2.0
            (c, 3000, f64::NAN), // a new series among known ones
            (a, 3000, 4.0),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let store = TenantStore::open(dir.path(), TsdbOptions::default()).unwrap();
        let (raw_t, owned_t) = (
            TenantId::parse("raw").unwrap(),
            TenantId::parse("owned").unwrap(),
        );
        for body in [first, second] {
            let raw = decode_v1(&body).unwrap();
            let owned = decode(&body, Protocol::V1).unwrap();
            let x = store.append_raw(&raw_t, &raw).unwrap();
            let y = store.append(&owned_t, owned.series).unwrap();
            assert_eq!(x, y);
        }
        let last = store.append_raw(&raw_t, &decode_v1(&request(&[(b, 1000, 9.0)])).unwrap());
        let last = last.unwrap();
        assert_eq!(last.samples_written, 0);
        assert!(last.rejected[0].contains(r#"job="b""#), "{last:?}");

        let select = |t: &TenantId| {
            store
                .get(t)
                .unwrap()
                .select(
                    &[Matcher::new(MatchOp::Regex, "__name__", ".+").unwrap()],
                    0,
                    10_000,
                )
                .unwrap()
                .into_iter()
                .map(|(l, s)| {
                    let s: Vec<(i64, u64)> = s.iter().map(|x| (x.t, x.v.to_bits())).collect();
                    (l.to_string(), s)
                })
                .collect::<Vec<_>>()
        };
        let got = select(&raw_t);
        assert_eq!(got, select(&owned_t));
        assert_eq!(
            got,
            vec![
                (
                    r#"{__name__="temp", room="ü"}"#.to_string(),
                    vec![(3000, f64::NAN.to_bits())]
                ),
                (
                    r#"{__name__="up", job="a"}"#.to_string(),
                    vec![
                        (1000, 1f64.to_bits()),
                        (2000, 3f64.to_bits()),
                        (3000, 4f64.to_bits())
                    ]
                ),
                (
                    r#"{__name__="up", job="b"}"#.to_string(),
                    vec![(1000, 2f64.to_bits())]
                ),
            ]
        );
    }
}

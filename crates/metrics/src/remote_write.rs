//! Decoding Prometheus remote_write requests (1.0 and 2.0) into label sets
//! and samples, with the validation a sender needs a 400 for.

use pharos_model::{Label, Labels, Sample};
use pharos_proto::{Message, prometheus as v1, write_v2 as v2};

use crate::error::WriteError;

/// Which message the body holds, from `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V1,
    V2,
}

pub const V2_CONTENT_TYPE: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

impl Protocol {
    /// Prometheus' content negotiation: no type or plain protobuf is 1.0.
    pub fn from_content_type(ct: Option<&str>) -> Result<Self, WriteError> {
        let Some(ct) = ct.map(str::trim).filter(|c| !c.is_empty()) else {
            return Ok(Self::V1);
        };
        let mut parts = ct.split(';').map(str::trim);
        if !parts
            .next()
            .is_some_and(|m| m.eq_ignore_ascii_case("application/x-protobuf"))
        {
            return Err(WriteError::UnsupportedContentType(ct.to_owned()));
        }
        let mut proto = None;
        for p in parts {
            if let Some((k, v)) = p.split_once('=')
                && k.trim().eq_ignore_ascii_case("proto")
            {
                proto = Some(v.trim().trim_matches('"'));
            }
        }
        match proto {
            None | Some("prometheus.WriteRequest") => Ok(Self::V1),
            Some("io.prometheus.write.v2.Request") => Ok(Self::V2),
            Some(_) => Err(WriteError::UnsupportedContentType(ct.to_owned())),
        }
    }
}

/// Metric metadata carried by a request (TYPE/HELP/UNIT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    pub metric: String,
    pub kind: &'static str,
    pub help: String,
    pub unit: String,
}

/// A decoded, validated request.
#[derive(Debug, Default)]
pub struct WriteBatch {
    pub series: Vec<(Labels, Vec<Sample>)>,
    pub metadata: Vec<Metadata>,
    /// Native histogram samples received (not stored yet).
    pub histograms: usize,
    pub exemplars: usize,
}

impl WriteBatch {
    pub fn samples(&self) -> usize {
        self.series.iter().map(|(_, s)| s.len()).sum()
    }
}

/// Snappy block format, as every remote_write sender uses.
pub fn decompress(body: &[u8], encoding: Option<&str>) -> Result<Vec<u8>, WriteError> {
    match encoding.map(str::trim) {
        None | Some("") | Some("snappy") => {}
        Some(other) => return Err(WriteError::UnsupportedEncoding(other.to_owned())),
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| WriteError::Snappy(e.to_string()))
}

pub fn decode(raw: &[u8], protocol: Protocol) -> Result<WriteBatch, WriteError> {
    match protocol {
        Protocol::V1 => decode_v1(raw),
        Protocol::V2 => decode_v2(raw),
    }
}

fn decode_v1(raw: &[u8]) -> Result<WriteBatch, WriteError> {
    let req = v1::WriteRequest::decode(raw).map_err(|e| WriteError::Protobuf(e.to_string()))?;
    let mut out = WriteBatch::default();
    for ts in req.timeseries {
        let labels = validate_labels(ts.labels.into_iter().map(|l| (l.name, l.value)).collect())?;
        out.histograms += ts.histograms.len();
        out.exemplars += ts.exemplars.len();
        let samples: Vec<Sample> = ts
            .samples
            .iter()
            .map(|s| Sample::new(s.timestamp, s.value))
            .collect();
        if !samples.is_empty() {
            out.series.push((labels, samples));
        }
    }
    for m in req.metadata {
        out.metadata.push(Metadata {
            kind: v1_type(m.r#type),
            metric: m.metric_family_name,
            help: m.help,
            unit: m.unit,
        });
    }
    Ok(out)
}

fn v1_type(t: i32) -> &'static str {
    use v1::metric_metadata::MetricType as T;
    match T::try_from(t).unwrap_or(T::Unknown) {
        T::Unknown => "unknown",
        T::Counter => "counter",
        T::Gauge => "gauge",
        T::Histogram => "histogram",
        T::Gaugehistogram => "gaugehistogram",
        T::Summary => "summary",
        T::Info => "info",
        T::Stateset => "stateset",
    }
}

fn decode_v2(raw: &[u8]) -> Result<WriteBatch, WriteError> {
    let req = v2::Request::decode(raw).map_err(|e| WriteError::Protobuf(e.to_string()))?;
    let sym = |what: &'static str, i: u32| -> Result<&str, WriteError> {
        req.symbols
            .get(i as usize)
            .map(String::as_str)
            .ok_or(WriteError::SymbolOutOfRange {
                what,
                index: i,
                len: req.symbols.len(),
            })
    };
    let mut out = WriteBatch::default();
    for ts in &req.timeseries {
        if ts.labels_refs.len() % 2 != 0 {
            return Err(WriteError::OddLabelRefs(ts.labels_refs.len()));
        }
        let mut pairs = Vec::with_capacity(ts.labels_refs.len() / 2);
        for p in ts.labels_refs.chunks_exact(2) {
            pairs.push((
                sym("label name", p[0])?.to_owned(),
                sym("label value", p[1])?.to_owned(),
            ));
        }
        let labels = validate_labels(pairs)?;
        out.histograms += ts.histograms.len();
        out.exemplars += ts.exemplars.len();
        if let Some(md) = &ts.metadata {
            let kind = v2_type(md.r#type);
            if kind != "unknown" || md.help_ref != 0 || md.unit_ref != 0 {
                out.metadata.push(Metadata {
                    metric: labels.metric_name().unwrap_or_default().to_owned(),
                    kind,
                    help: sym("help_ref", md.help_ref)?.to_owned(),
                    unit: sym("unit_ref", md.unit_ref)?.to_owned(),
                });
            }
        }
        let samples: Vec<Sample> = ts
            .samples
            .iter()
            .map(|s| Sample::new(s.timestamp, s.value))
            .collect();
        if !samples.is_empty() {
            out.series.push((labels, samples));
        }
    }
    Ok(out)
}

fn v2_type(t: i32) -> &'static str {
    use v2::metadata::MetricType as T;
    match T::try_from(t).unwrap_or(T::Unspecified) {
        T::Unspecified => "unknown",
        T::Counter => "counter",
        T::Gauge => "gauge",
        T::Histogram => "histogram",
        T::Gaugehistogram => "gaugehistogram",
        T::Summary => "summary",
        T::Info => "info",
        T::Stateset => "stateset",
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Label rules of Prometheus' data model, as Cortex/Mimir enforce them on
/// remote_write: a valid metric name, valid label names, no duplicates.
/// Unsorted input is sorted; empty values mean "absent" and are dropped.
fn validate_labels(mut pairs: Vec<(String, String)>) -> Result<Labels, WriteError> {
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let show = |pairs: &[(String, String)]| {
        Labels::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))).to_string()
    };
    for w in pairs.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(WriteError::DuplicateLabel {
                label: w[0].0.clone(),
                series: show(&pairs),
            });
        }
    }
    let Some(name) = pairs
        .iter()
        .find(|(n, v)| n == pharos_model::METRIC_NAME && !v.is_empty())
        .map(|(_, v)| v.clone())
    else {
        return Err(WriteError::MissingMetricName {
            series: show(&pairs),
        });
    };
    if !is_metric_name(&name) {
        return Err(WriteError::InvalidMetricName { name });
    }
    if let Some((bad, _)) = pairs
        .iter()
        .find(|(n, _)| n != pharos_model::METRIC_NAME && !is_label_name(n))
    {
        return Err(WriteError::InvalidLabelName {
            label: bad.clone(),
            series: show(&pairs),
        });
    }
    let labels = pairs
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(name, value)| Label { name, value })
        .collect();
    // sorted and deduplicated above
    Labels::from_sorted(labels).map_err(|label| WriteError::DuplicateLabel {
        label,
        series: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1_req(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> Vec<u8> {
        v1::WriteRequest {
            timeseries: vec![v1::TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| v1::Label {
                        name: (*n).into(),
                        value: (*v).into(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|(t, v)| v1::Sample {
                        value: *v,
                        timestamp: *t,
                    })
                    .collect(),
                ..Default::default()
            }],
            metadata: vec![v1::MetricMetadata {
                r#type: 1,
                metric_family_name: "http_requests_total".into(),
                help: "Requests.".into(),
                unit: String::new(),
            }],
        }
        .encode_to_vec()
    }

    fn compress(b: &[u8]) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(b).unwrap()
    }

    #[test]
    fn content_types() {
        assert_eq!(Protocol::from_content_type(None).unwrap(), Protocol::V1);
        assert_eq!(
            Protocol::from_content_type(Some("application/x-protobuf")).unwrap(),
            Protocol::V1
        );
        assert_eq!(
            Protocol::from_content_type(Some(
                "application/x-protobuf;proto=prometheus.WriteRequest"
            ))
            .unwrap(),
            Protocol::V1
        );
        assert_eq!(
            Protocol::from_content_type(Some(V2_CONTENT_TYPE)).unwrap(),
            Protocol::V2
        );
        assert!(matches!(
            Protocol::from_content_type(Some("application/json")),
            Err(WriteError::UnsupportedContentType(_))
        ));
        assert!(matches!(
            Protocol::from_content_type(Some("application/x-protobuf;proto=foo.Bar")),
            Err(WriteError::UnsupportedContentType(_))
        ));
    }

    #[test]
    fn v1_round_trip_keeps_every_bit() {
        let odd = f64::from_bits(0x7ff8_dead_beef_0001);
        let body = compress(&v1_req(
            &[
                ("job", "node"),
                ("__name__", "http_requests_total"),
                ("instance", ""),
            ],
            &[
                (1000, 1.5),
                (2000, f64::INFINITY),
                (3000, odd),
                (4000, f64::MIN_POSITIVE / 4.0),
            ],
        ));
        let raw = decompress(&body, Some("snappy")).unwrap();
        let b = decode(&raw, Protocol::V1).unwrap();
        assert_eq!(b.series.len(), 1);
        let (labels, samples) = &b.series[0];
        assert_eq!(
            labels.to_string(),
            r#"{__name__="http_requests_total", job="node"}"#
        );
        assert_eq!(samples[2].v.to_bits(), odd.to_bits());
        assert_eq!(samples[3].v.to_bits(), (f64::MIN_POSITIVE / 4.0).to_bits());
        assert_eq!(b.metadata[0].kind, "counter");
        assert_eq!(b.samples(), 4);
    }

    #[test]
    fn bad_inputs_are_named() {
        assert!(matches!(
            decompress(b"\xff\xff\xff\xff", None),
            Err(WriteError::Snappy(_))
        ));
        let good = compress(&v1_req(&[("__name__", "up")], &[(1, 1.0)]));
        assert!(matches!(
            decompress(&good[..good.len() / 2], None),
            Err(WriteError::Snappy(_))
        ));
        assert!(matches!(
            decompress(&good, Some("gzip")),
            Err(WriteError::UnsupportedEncoding(_))
        ));
        assert!(matches!(
            decode(b"\x0a\xff\xff", Protocol::V1),
            Err(WriteError::Protobuf(_))
        ));
        let e = decode(&v1_req(&[("job", "x")], &[(1, 1.0)]), Protocol::V1).unwrap_err();
        assert!(e.to_string().contains("without metric name"), "{e}");
        let e = decode(&v1_req(&[("__name__", "")], &[(1, 1.0)]), Protocol::V1).unwrap_err();
        assert!(matches!(e, WriteError::MissingMetricName { .. }));
        let e = decode(&v1_req(&[("__name__", "a-b")], &[(1, 1.0)]), Protocol::V1).unwrap_err();
        assert!(matches!(e, WriteError::InvalidMetricName { .. }));
        let e = decode(
            &v1_req(&[("__name__", "up"), ("a", "1"), ("a", "2")], &[(1, 1.0)]),
            Protocol::V1,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("duplicate label name, label: 'a'"),
            "{e}"
        );
        let e = decode(
            &v1_req(&[("__name__", "up"), ("1x", "1")], &[(1, 1.0)]),
            Protocol::V1,
        )
        .unwrap_err();
        assert!(e.to_string().contains("invalid label: '1x'"), "{e}");
    }

    #[test]
    fn non_utf8_label_is_a_protobuf_error() {
        let mut raw = v1_req(&[("__name__", "up"), ("job", "ab")], &[(1, 1.0)]);
        let pos = raw.windows(2).position(|w| w == b"ab").unwrap();
        raw[pos] = 0xff;
        let e = decode(&raw, Protocol::V1).unwrap_err();
        assert!(matches!(e, WriteError::Protobuf(_)), "{e}");
        assert!(e.to_string().to_lowercase().contains("utf-8"), "{e}");
    }

    #[test]
    fn v2_symbols() {
        let req = v2::Request {
            symbols: vec![
                "".into(),
                "__name__".into(),
                "up".into(),
                "job".into(),
                "n".into(),
                "Up.".into(),
            ],
            timeseries: vec![v2::TimeSeries {
                labels_refs: vec![1, 2, 3, 4],
                samples: vec![v2::Sample {
                    value: 1.0,
                    timestamp: 7,
                }],
                metadata: Some(v2::Metadata {
                    r#type: 2,
                    help_ref: 5,
                    unit_ref: 0,
                }),
                ..Default::default()
            }],
        };
        let b = decode(&req.encode_to_vec(), Protocol::V2).unwrap();
        assert_eq!(b.series[0].0.to_string(), r#"{__name__="up", job="n"}"#);
        assert_eq!(
            b.metadata[0],
            Metadata {
                metric: "up".into(),
                kind: "gauge",
                help: "Up.".into(),
                unit: String::new()
            }
        );
        let mut bad = req.clone();
        bad.timeseries[0].labels_refs = vec![1, 99];
        assert!(matches!(
            decode(&bad.encode_to_vec(), Protocol::V2),
            Err(WriteError::SymbolOutOfRange { index: 99, .. })
        ));
        bad.timeseries[0].labels_refs = vec![1];
        assert!(matches!(
            decode(&bad.encode_to_vec(), Protocol::V2),
            Err(WriteError::OddLabelRefs(1))
        ));
    }
}

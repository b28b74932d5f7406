//! Decoding Prometheus remote_write requests (1.0 and 2.0) into label sets
//! and samples, with the validation a sender needs a 400 for.

use pharos_model::{Label, LabelSet, Labels, Sample};
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
        Protocol::V1 => decode_v1(raw).map(RawBatch::into_write_batch),
        Protocol::V2 => decode_v2(raw),
    }
}

/// A byte range of [`RawBatch`]'s text arena or of its label list.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

#[derive(Debug, Clone, Copy)]
struct RawLabel {
    name: Span,
    value: Span,
}

#[derive(Debug, Clone, Copy)]
struct RawSeries {
    labels: Span,
    samples: Span,
}

/// A validated remote_write 1.0 request kept flat: every label string in
/// one arena, labels and samples in one list each, series as ranges over
/// them. A request costs a handful of allocations however many series it
/// holds, and a sink can look series up by these borrowed labels before
/// allocating anything (see [`crate::SampleSink::append_raw`]).
#[derive(Debug, Default)]
pub struct RawBatch {
    arena: String,
    labels: Vec<RawLabel>,
    series: Vec<RawSeries>,
    samples: Vec<Sample>,
    pub metadata: Vec<Metadata>,
    /// Native histogram samples received (not stored yet).
    pub histograms: usize,
    pub exemplars: usize,
}

/// The labels of one series of a [`RawBatch`]: sorted by name, names
/// unique, no empty values.
#[derive(Debug, Clone, Copy)]
pub struct RawLabels<'a> {
    arena: &'a str,
    labels: &'a [RawLabel],
}

fn text(arena: &str, s: Span) -> &str {
    arena.get(s.range()).unwrap_or_default()
}

impl LabelSet for RawLabels<'_> {
    fn label_count(&self) -> usize {
        self.labels.len()
    }

    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.labels
            .iter()
            .map(|l| (text(self.arena, l.name), text(self.arena, l.value)))
    }
}

impl std::fmt::Display for RawLabels<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_labels().fmt(f)
    }
}

impl RawBatch {
    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    pub fn samples(&self) -> usize {
        self.samples.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (RawLabels<'_>, &[Sample])> + '_ {
        self.series.iter().map(|s| {
            (
                RawLabels {
                    arena: &self.arena,
                    labels: self.labels.get(s.labels.range()).unwrap_or_default(),
                },
                self.samples.get(s.samples.range()).unwrap_or_default(),
            )
        })
    }

    /// Keeps the samples for which `keep(series position, sample)` holds;
    /// series left without samples are dropped (positions are those before
    /// the call).
    pub fn retain(&mut self, mut keep: impl FnMut(usize, &Sample) -> bool) {
        let mut w = 0usize;
        let mut series_w = 0usize;
        for i in 0..self.series.len() {
            let s = self.series[i];
            let from = w;
            for j in s.samples.range() {
                let smp = self.samples[j];
                if keep(i, &smp) {
                    self.samples[w] = smp;
                    w += 1;
                }
            }
            if w > from {
                self.series[series_w] = RawSeries {
                    labels: s.labels,
                    samples: Span {
                        start: from as u32,
                        end: w as u32,
                    },
                };
                series_w += 1;
            }
        }
        self.samples.truncate(w);
        self.series.truncate(series_w);
    }

    /// The owned form, for sinks that want it.
    pub fn to_series(&self) -> Vec<(Labels, Vec<Sample>)> {
        self.iter()
            .map(|(l, s)| (l.to_labels(), s.to_vec()))
            .collect()
    }

    pub fn into_write_batch(self) -> WriteBatch {
        WriteBatch {
            series: self.to_series(),
            metadata: self.metadata,
            histograms: self.histograms,
            exemplars: self.exemplars,
        }
    }
}

fn pb_err(msg: impl Into<String>) -> WriteError {
    WriteError::Protobuf(msg.into())
}

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

/// A protobuf wire-format reader over a borrowed buffer, with the checks
/// prost makes (tag, wire type, bounds), so bad input gets the same class
/// of answer as before.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn done(&self) -> bool {
        self.buf.is_empty()
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, WriteError> {
        // keys and lengths below 128, most of them, are one byte
        if let Some((&b, rest)) = self.buf.split_first()
            && b < 0x80
        {
            self.buf = rest;
            return Ok(u64::from(b));
        }
        self.varint_long()
    }

    #[cold]
    fn varint_long(&mut self) -> Result<u64, WriteError> {
        let mut v = 0u64;
        for (i, &b) in self.buf.iter().take(10).enumerate() {
            v |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                if i == 9 && b > 1 {
                    break;
                }
                self.buf = &self.buf[i + 1..];
                return Ok(v);
            }
        }
        Err(pb_err("invalid varint"))
    }

    /// The next field number and wire type.
    #[inline]
    fn key(&mut self) -> Result<(u32, u8), WriteError> {
        let k = self.varint()?;
        let k = u32::try_from(k).map_err(|_| pb_err(format!("invalid key value: {k}")))?;
        let wire = (k & 7) as u8;
        if wire > 5 {
            return Err(pb_err(format!("invalid wire type value: {wire}")));
        }
        let field = k >> 3;
        if field == 0 {
            return Err(pb_err("invalid tag value: 0"));
        }
        Ok((field, wire))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WriteError> {
        if n > self.buf.len() {
            return Err(pb_err("buffer underflow"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn bytes(&mut self) -> Result<&'a [u8], WriteError> {
        let n = self.varint()?;
        self.take(usize::try_from(n).map_err(|_| pb_err("buffer underflow"))?)
    }

    fn fixed64(&mut self) -> Result<u64, WriteError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn skip(&mut self, wire: u8) -> Result<(), WriteError> {
        match wire {
            WIRE_VARINT => self.varint().map(drop),
            WIRE_FIXED64 => self.take(8).map(drop),
            WIRE_LEN => self.bytes().map(drop),
            WIRE_FIXED32 => self.take(4).map(drop),
            // groups (3, 4): deprecated, never sent by remote_write senders
            w => Err(pb_err(format!("unsupported wire type: {w}"))),
        }
    }
}

fn expect_wire(got: u8, want: u8) -> Result<(), WriteError> {
    if got == want {
        Ok(())
    } else {
        Err(pb_err(format!(
            "invalid wire type: {got} (expected {want})"
        )))
    }
}

fn utf8_error() -> WriteError {
    pb_err("invalid string value: data is not UTF-8 encoded")
}

fn utf8(b: &[u8]) -> Result<&str, WriteError> {
    std::str::from_utf8(b).map_err(|_| utf8_error())
}

/// Walks a `prometheus.WriteRequest` without building prost's message
/// tree. Label text is copied into one arena and checked for UTF-8 once per
/// series (all-ASCII text, the usual case, needs no per-string check); the
/// label rules are applied in a second pass, so a malformed body is
/// reported before a refused label set however late the malformation comes,
/// as when the whole message was decoded first.
pub fn decode_v1(raw: &[u8]) -> Result<RawBatch, WriteError> {
    // spans are u32: every string, label and sample is shorter than the body
    if u32::try_from(raw.len()).is_err() {
        return Err(pb_err("request too large"));
    }
    // about half a request is label text; one guess saves regrowing
    let mut text = Vec::with_capacity(raw.len() / 2);
    let mut out = RawBatch::default();
    let mut r = Reader::new(raw);
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect_wire(wire, WIRE_LEN)?;
                let ts = r.bytes()?;
                decode_v1_series(ts, &mut text, &mut out)?;
            }
            3 => {
                expect_wire(wire, WIRE_LEN)?;
                let m = v1::MetricMetadata::decode(r.bytes()?)
                    .map_err(|e| WriteError::Protobuf(e.to_string()))?;
                out.metadata.push(Metadata {
                    kind: v1_type(m.r#type),
                    metric: m.metric_family_name,
                    help: m.help,
                    unit: m.unit,
                });
            }
            _ => r.skip(wire)?,
        }
    }
    // every string was checked above; this pass over one buffer is cheap
    out.arena = String::from_utf8(text).map_err(|_| utf8_error())?;
    validate_v1(&mut out)?;
    Ok(out)
}

fn push_text(text: &mut Vec<u8>, s: &[u8]) -> Span {
    let start = text.len() as u32;
    text.extend_from_slice(s);
    Span {
        start,
        end: text.len() as u32,
    }
}

/// Decodes one `TimeSeries` into `out`, its label text into `text`. The
/// series is kept even without samples, so its labels are still checked.
fn decode_v1_series(buf: &[u8], text: &mut Vec<u8>, out: &mut RawBatch) -> Result<(), WriteError> {
    let labels_from = out.labels.len();
    let samples_from = out.samples.len();
    let text_from = text.len();
    let mut r = Reader::new(buf);
    while !r.done() {
        let (field, wire) = r.key()?;
        match field {
            1 => {
                expect_wire(wire, WIRE_LEN)?;
                let mut l = Reader::new(r.bytes()?);
                let (mut name, mut value): (Option<&[u8]>, Option<&[u8]>) = (None, None);
                while !l.done() {
                    let (f, w) = l.key()?;
                    let slot = match f {
                        1 => &mut name,
                        2 => &mut value,
                        _ => {
                            l.skip(w)?;
                            continue;
                        }
                    };
                    expect_wire(w, WIRE_LEN)?;
                    // a repeated field: the last wins, but each must be text
                    if let Some(earlier) = slot.replace(l.bytes()?) {
                        utf8(earlier)?;
                    }
                }
                let name = push_text(text, name.unwrap_or_default());
                let value = push_text(text, value.unwrap_or_default());
                out.labels.push(RawLabel { name, value });
            }
            2 => {
                expect_wire(wire, WIRE_LEN)?;
                let mut smp = Reader::new(r.bytes()?);
                let (mut t, mut v) = (0i64, 0f64);
                while !smp.done() {
                    let (f, w) = smp.key()?;
                    match f {
                        1 => {
                            expect_wire(w, WIRE_FIXED64)?;
                            v = f64::from_bits(smp.fixed64()?);
                        }
                        2 => {
                            expect_wire(w, WIRE_VARINT)?;
                            t = smp.varint()? as i64;
                        }
                        _ => smp.skip(w)?,
                    }
                }
                out.samples.push(Sample::new(t, v));
            }
            3 => {
                expect_wire(wire, WIRE_LEN)?;
                v1::Exemplar::decode(r.bytes()?)
                    .map_err(|e| WriteError::Protobuf(e.to_string()))?;
                out.exemplars += 1;
            }
            4 => {
                expect_wire(wire, WIRE_LEN)?;
                v1::Histogram::decode(r.bytes()?)
                    .map_err(|e| WriteError::Protobuf(e.to_string()))?;
                out.histograms += 1;
            }
            _ => r.skip(wire)?,
        }
    }
    if !text[text_from..].is_ascii() {
        // two strings can be valid together but not apart: check each
        for l in &out.labels[labels_from..] {
            for s in [l.name, l.value] {
                utf8(text.get(s.range()).unwrap_or_default())?;
            }
        }
    }
    out.series.push(RawSeries {
        labels: Span {
            start: labels_from as u32,
            end: out.labels.len() as u32,
        },
        samples: Span {
            start: samples_from as u32,
            end: out.samples.len() as u32,
        },
    });
    Ok(())
}

/// The label rules over every decoded series, in request order; then the
/// batch is compacted: empty-valued labels and series without samples go.
fn validate_v1(out: &mut RawBatch) -> Result<(), WriteError> {
    let arena = out.arena.as_str();
    let name_of = |l: &RawLabel| text(arena, l.name);
    let mut labels_w = 0usize;
    let mut series_w = 0usize;
    for i in 0..out.series.len() {
        let s = out.series[i];
        let labels = out.labels.get_mut(s.labels.range()).unwrap_or_default();
        // senders sort; only sort (stably, as the owned path did) when
        // needed, and strictly increasing names cannot repeat
        let increasing = labels.windows(2).all(|w| name_of(&w[0]) < name_of(&w[1]));
        if !increasing {
            labels.sort_by(|a, b| name_of(a).cmp(name_of(b)));
        }
        let labels: &[RawLabel] = labels;
        validate_sorted(labels.len(), !increasing, |j| {
            let l = &labels[j];
            (text(arena, l.name), text(arena, l.value))
        })?;
        if s.samples.start == s.samples.end {
            continue;
        }
        // empty values mean "absent"
        let from = labels_w;
        for j in s.labels.range() {
            let l = out.labels[j];
            if l.value.start != l.value.end {
                out.labels[labels_w] = l;
                labels_w += 1;
            }
        }
        out.series[series_w] = RawSeries {
            labels: Span {
                start: from as u32,
                end: labels_w as u32,
            },
            samples: s.samples,
        };
        series_w += 1;
    }
    out.labels.truncate(labels_w);
    out.series.truncate(series_w);
    Ok(())
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
    // every allowed character is ASCII, so bytes decide as chars would
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

fn is_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Label rules of Prometheus' data model, as Cortex/Mimir enforce them on
/// remote_write: a valid metric name, valid label names, no duplicates.
/// `pair(i)` gives the `n` labels sorted by name (stably); empty values are
/// still present here and mean "absent".
/// `may_repeat: false` says the names are known to be unique.
fn validate_sorted<'a>(
    n: usize,
    may_repeat: bool,
    pair: impl Fn(usize) -> (&'a str, &'a str),
) -> Result<(), WriteError> {
    let show = || Labels::from_pairs((0..n).map(&pair)).to_string();
    for i in (1..n).filter(|_| may_repeat) {
        if pair(i - 1).0 == pair(i).0 {
            return Err(WriteError::DuplicateLabel {
                label: pair(i).0.to_owned(),
                series: show(),
            });
        }
    }
    let Some(name) = (0..n)
        .map(&pair)
        .find(|(k, v)| *k == pharos_model::METRIC_NAME && !v.is_empty())
        .map(|(_, v)| v)
    else {
        return Err(WriteError::MissingMetricName { series: show() });
    };
    if !is_metric_name(name) {
        return Err(WriteError::InvalidMetricName {
            name: name.to_owned(),
        });
    }
    if let Some((bad, _)) = (0..n)
        .map(&pair)
        .find(|(k, _)| *k != pharos_model::METRIC_NAME && !is_label_name(k))
    {
        return Err(WriteError::InvalidLabelName {
            label: bad.to_owned(),
            series: show(),
        });
    }
    Ok(())
}

/// [`validate_sorted`] for owned pairs in any order; builds the set.
fn validate_labels(mut pairs: Vec<(String, String)>) -> Result<Labels, WriteError> {
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    validate_sorted(pairs.len(), true, |i| {
        (pairs[i].0.as_str(), pairs[i].1.as_str())
    })?;
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

    /// What the prost-based 1.0 decoder made of a body (the reference the
    /// hand-written walker must agree with).
    fn reference_v1(raw: &[u8]) -> Result<WriteBatch, WriteError> {
        let req = v1::WriteRequest::decode(raw).map_err(|e| WriteError::Protobuf(e.to_string()))?;
        let mut out = WriteBatch::default();
        for ts in req.timeseries {
            let labels =
                validate_labels(ts.labels.into_iter().map(|l| (l.name, l.value)).collect())?;
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

    fn same(a: &WriteBatch, b: &WriteBatch) -> bool {
        let bits = |s: &[Sample]| s.iter().map(|x| (x.t, x.v.to_bits())).collect::<Vec<_>>();
        a.series.len() == b.series.len()
            && a.series
                .iter()
                .zip(&b.series)
                .all(|(x, y)| x.0 == y.0 && bits(&x.1) == bits(&y.1))
            && a.metadata == b.metadata
            && a.histograms == b.histograms
            && a.exemplars == b.exemplars
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_request(rng: &mut Rng) -> v1::WriteRequest {
        let names = ["__name__", "job", "instance", "a", "b_c", "1x", "", "mode"];
        let values = [
            "up",
            "node",
            "",
            "h:9100",
            "x-y",
            "ünï",
            "a-b",
            "cpu_seconds",
        ];
        let mut req = v1::WriteRequest::default();
        for _ in 0..rng.below(4) {
            let mut ts = v1::TimeSeries::default();
            for _ in 0..rng.below(5) {
                ts.labels.push(v1::Label {
                    name: names[rng.below(names.len() as u64) as usize].into(),
                    value: values[rng.below(values.len() as u64) as usize].into(),
                });
            }
            if rng.below(3) > 0 {
                // the usual shape: a metric name first and sorted labels
                ts.labels.push(v1::Label {
                    name: "__name__".into(),
                    value: "node_cpu_seconds_total".into(),
                });
                if rng.below(2) == 0 {
                    ts.labels.sort_by(|a, b| a.name.cmp(&b.name));
                    ts.labels.dedup_by(|a, b| a.name == b.name);
                }
            }
            for _ in 0..rng.below(3) {
                ts.samples.push(v1::Sample {
                    value: f64::from_bits(rng.next()),
                    timestamp: rng.next() as i64,
                });
            }
            if rng.below(8) == 0 {
                ts.exemplars.push(v1::Exemplar::default());
            }
            if rng.below(8) == 0 {
                ts.histograms.push(v1::Histogram::default());
            }
            req.timeseries.push(ts);
        }
        if rng.below(4) == 0 {
            req.metadata.push(v1::MetricMetadata {
                r#type: rng.below(9) as i32,
                metric_family_name: "m".into(),
                help: "h".into(),
                unit: String::new(),
            });
        }
        req
    }

    #[test]
    fn walker_agrees_with_prost_on_valid_and_damaged_bodies() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut ok, mut damaged) = (0, 0);
        for _ in 0..20_000 {
            let mut raw = random_request(&mut rng).encode_to_vec();
            if !raw.is_empty() && rng.below(2) == 0 {
                for _ in 0..=rng.below(3) {
                    let i = rng.below(raw.len() as u64) as usize;
                    raw[i] ^= 1 << rng.below(8);
                }
                if rng.below(4) == 0 {
                    raw.truncate(rng.below(raw.len() as u64) as usize);
                }
                damaged += 1;
            }
            let want = reference_v1(&raw);
            let got = decode(&raw, Protocol::V1);
            match (&want, &got) {
                (Ok(w), Ok(g)) => {
                    assert!(same(w, g), "{raw:?}");
                    ok += 1;
                }
                (Err(w), Err(g)) => assert_eq!(
                    std::mem::discriminant(w),
                    std::mem::discriminant(g),
                    "{w} vs {g}"
                ),
                // prost skips unknown groups; senders never send them
                (Ok(_), Err(g)) => assert!(g.to_string().contains("wire type: 3"), "{g}"),
                (Err(w), Ok(_)) => panic!("accepted what prost refuses ({w}): {raw:?}"),
            }
        }
        assert!(ok > 5_000 && damaged > 5_000, "{ok} {damaged}");
    }

    #[test]
    fn walker_skips_unknown_fields_and_sorts_labels() {
        let mut raw = Vec::new();
        // unknown top-level varint field 9, then a series whose labels come
        // unsorted, each label with an unknown fixed32 field
        raw.extend([9 << 3, 42]);
        let label = |n: &str, v: &str| {
            let mut b = vec![0x0a, n.len() as u8];
            b.extend(n.as_bytes());
            b.extend([0x12, v.len() as u8]);
            b.extend(v.as_bytes());
            b.extend([(7 << 3) | 5, 1, 2, 3, 4]);
            b
        };
        let mut ts = Vec::new();
        for (n, v) in [("job", "j"), ("__name__", "up"), ("a", "")] {
            let l = label(n, v);
            ts.push(0x0a);
            ts.push(l.len() as u8);
            ts.extend(l);
        }
        let mut smp = vec![0x09];
        smp.extend(2.5f64.to_le_bytes());
        smp.extend([0x10, 7]);
        ts.push(0x12);
        ts.push(smp.len() as u8);
        ts.extend(smp);
        raw.push(0x0a);
        raw.push(ts.len() as u8);
        raw.extend(ts);
        let b = decode_v1(&raw).unwrap();
        let (labels, samples) = b.iter().next().unwrap();
        assert_eq!(labels.to_string(), r#"{__name__="up", job="j"}"#);
        assert_eq!(samples, &[Sample::new(7, 2.5)]);
        // a sample value sent as a varint is a wire type error, as in prost
        let mut bad = raw.clone();
        let at = bad.iter().position(|&x| x == 0x09).unwrap();
        bad[at] = 0x08;
        assert!(matches!(decode_v1(&bad), Err(WriteError::Protobuf(_))));
    }

    #[test]
    fn retain_drops_samples_and_emptied_series() {
        let req = v1::WriteRequest {
            timeseries: (0..3)
                .map(|i| v1::TimeSeries {
                    labels: vec![v1::Label {
                        name: "__name__".into(),
                        value: format!("m{i}"),
                    }],
                    samples: (0..3)
                        .map(|t| v1::Sample {
                            value: 1.0,
                            timestamp: t,
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            metadata: vec![],
        };
        let mut b = decode_v1(&req.encode_to_vec()).unwrap();
        assert_eq!((b.len(), b.samples()), (3, 9));
        b.retain(|i, s| i != 1 && s.t != 2);
        let got: Vec<(String, Vec<i64>)> = b
            .iter()
            .map(|(l, s)| (l.to_string(), s.iter().map(|x| x.t).collect()))
            .collect();
        assert_eq!(
            got,
            vec![
                (r#"{__name__="m0"}"#.to_string(), vec![0, 1]),
                (r#"{__name__="m2"}"#.to_string(), vec![0, 1]),
            ]
        );
    }
}

//! Query results from both engines in one shape, and their comparison under
//! the guarantees Prometheus actually gives (label sets as sets, order only
//! for `sort`/`sort_desc`).

use std::collections::BTreeMap;

use pharos_model::Labels;
use pharos_promql::{QueryError, Value};
use serde_json::Value as Json;

use crate::prom::{labels_of, parse_value, point};

type LabelMap = BTreeMap<String, String>;

#[derive(Debug, Clone)]
pub enum Outcome {
    /// The engine panicked: a mismatch whatever Prometheus answered.
    Panicked(String),
    Error(String),
    Scalar(f64),
    Str(String),
    /// Instant vector, in the order the engine returned it.
    Vector(Vec<(LabelMap, f64)>),
    Matrix(Vec<(LabelMap, Vec<(i64, f64)>)>),
}

fn map(l: &Labels) -> LabelMap {
    l.iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

impl Outcome {
    /// Runs a Pharos evaluation, turning a panic into [`Outcome::Panicked`]
    /// so one bad query cannot abort the whole comparison.
    pub fn run_pharos(f: impl FnOnce() -> Result<Value, QueryError>) -> Self {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            Ok(r) => Self::from_pharos(r),
            Err(p) => Self::Panicked(
                p.downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_default(),
            ),
        }
    }

    pub fn from_pharos(r: Result<Value, QueryError>) -> Self {
        match r {
            Err(e) => Self::Error(e.to_string()),
            Ok(Value::Scalar(_, v)) => Self::Scalar(v),
            Ok(Value::String(_, s)) => Self::Str(s),
            Ok(Value::Vector(v)) => Self::Vector(v.iter().map(|(l, _, v)| (map(l), *v)).collect()),
            Ok(Value::Matrix(m)) => Self::Matrix(
                m.iter()
                    .map(|(l, s)| (map(l), s.iter().map(|s| (s.t, s.v)).collect()))
                    .collect(),
            ),
        }
    }

    /// The API envelope; anything malformed is an error outcome so that it
    /// shows up as a mismatch rather than aborting the run.
    pub fn from_prometheus(j: &Json) -> Self {
        match Self::parse_json(j) {
            Ok(o) => o,
            Err(e) => Self::Error(e),
        }
    }

    fn parse_json(j: &Json) -> Result<Self, String> {
        if j.get("status").and_then(Json::as_str) != Some("success") {
            return Ok(Self::Error(format!(
                "{}: {}",
                j.get("errorType").and_then(Json::as_str).unwrap_or("?"),
                j.get("error").and_then(Json::as_str).unwrap_or("?")
            )));
        }
        let data = j.get("data").ok_or("no data")?;
        let result = data.get("result").ok_or("no result")?;
        match data.get("resultType").and_then(Json::as_str) {
            Some("scalar") => Ok(Self::Scalar(point(result)?.1)),
            Some("string") => Ok(Self::Str(
                result
                    .get(1)
                    .and_then(Json::as_str)
                    .ok_or("bad string")?
                    .to_string(),
            )),
            Some("vector") => {
                let mut out = Vec::new();
                for s in result.as_array().ok_or("bad vector")? {
                    let l = labels_of(s.get("metric"))?;
                    let v = s
                        .get("value")
                        .and_then(|p| p.get(1))
                        .and_then(Json::as_str)
                        .ok_or("bad sample")?;
                    out.push((map(&l), parse_value(v)?));
                }
                Ok(Self::Vector(out))
            }
            Some("matrix") => {
                let mut out = Vec::new();
                for s in result.as_array().ok_or("bad matrix")? {
                    let l = labels_of(s.get("metric"))?;
                    let mut pts = Vec::new();
                    for p in s
                        .get("values")
                        .and_then(Json::as_array)
                        .into_iter()
                        .flatten()
                    {
                        pts.push(point(p)?);
                    }
                    out.push((map(&l), pts));
                }
                Ok(Self::Matrix(out))
            }
            other => Err(format!("unknown resultType {other:?}")),
        }
    }

    /// A successful answer with at least one sample or value in it.
    pub fn has_data(&self) -> bool {
        match self {
            Self::Error(_) | Self::Panicked(_) => false,
            Self::Scalar(_) | Self::Str(_) => true,
            Self::Vector(v) => !v.is_empty(),
            Self::Matrix(m) => m.iter().any(|(_, p)| !p.is_empty()),
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Self::Error(_))
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Panicked(_) => "panic",
            Self::Error(_) => "error",
            Self::Scalar(_) => "scalar",
            Self::Str(_) => "string",
            Self::Vector(_) => "vector",
            Self::Matrix(_) => "matrix",
        }
    }
}

/// Equal within a relative 1e-6, NaN equal to NaN, infinities by sign. An
/// absolute floor absorbs cancellation noise around zero (e.g. `x - x` via
/// different summation orders) without hiding differences at the 1e-12
/// scale the data set contains.
pub fn close(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    let diff = (a - b).abs();
    diff <= 1e-6 * a.abs().max(b.abs()) || diff <= 1e-15
}

fn show(l: &LabelMap) -> String {
    let inner: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// `Ok` when the results agree, else a description of the first difference.
/// `ordered`: the instant vector order is part of the contract.
pub fn compare(prom: &Outcome, ours: &Outcome, ordered: bool) -> Result<(), String> {
    match (prom, ours) {
        (_, Outcome::Panicked(msg)) => Err(format!("pharos panicked: {msg}")),
        (Outcome::Error(_), Outcome::Error(_)) => Ok(()),
        (Outcome::Scalar(a), Outcome::Scalar(b)) => {
            if close(*a, *b) {
                Ok(())
            } else {
                Err(format!("scalar: prometheus {a} vs pharos {b}"))
            }
        }
        (Outcome::Str(a), Outcome::Str(b)) => {
            if a == b {
                Ok(())
            } else {
                Err(format!("string: prometheus {a:?} vs pharos {b:?}"))
            }
        }
        (Outcome::Vector(a), Outcome::Vector(b)) => compare_vectors(a, b, ordered),
        (Outcome::Matrix(a), Outcome::Matrix(b)) => compare_matrices(a, b),
        (a, b) => Err(format!(
            "type: prometheus {} vs pharos {}{}",
            a.kind(),
            b.kind(),
            match (a, b) {
                (Outcome::Error(e), _) | (_, Outcome::Error(e)) => format!(" ({e})"),
                _ => String::new(),
            }
        )),
    }
}

fn compare_vectors(
    a: &[(LabelMap, f64)],
    b: &[(LabelMap, f64)],
    ordered: bool,
) -> Result<(), String> {
    if ordered {
        // sort's ties may come out in any order, so check the value
        // sequence; the sets are checked below
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            if !close(x.1, y.1) {
                return Err(format!(
                    "order: position {i} prometheus {} {} vs pharos {} {}",
                    show(&x.0),
                    x.1,
                    show(&y.0),
                    y.1
                ));
            }
        }
    }
    let mut a: Vec<_> = a.to_vec();
    let mut b: Vec<_> = b.to_vec();
    a.sort_by(|x, y| x.0.cmp(&y.0));
    b.sort_by(|x, y| x.0.cmp(&y.0));
    let pa: BTreeMap<_, _> = a.iter().map(|(l, v)| (l, v)).collect();
    let pb: BTreeMap<_, _> = b.iter().map(|(l, v)| (l, v)).collect();
    if let Some((l, v)) = pa.iter().find(|(l, _)| !pb.contains_key(*l)) {
        return Err(format!(
            "series only in prometheus: {} = {v} ({} vs {} series)",
            show(l),
            a.len(),
            b.len()
        ));
    }
    if let Some((l, v)) = pb.iter().find(|(l, _)| !pa.contains_key(*l)) {
        return Err(format!(
            "series only in pharos: {} = {v} ({} vs {} series)",
            show(l),
            a.len(),
            b.len()
        ));
    }
    if a.len() != b.len() {
        return Err(format!("duplicate series: {} vs {}", a.len(), b.len()));
    }
    for (l, va) in &pa {
        let vb = pb[l];
        if !close(**va, *vb) {
            return Err(format!(
                "value of {}: prometheus {va} vs pharos {vb}",
                show(l)
            ));
        }
    }
    Ok(())
}

type Points = Vec<(i64, f64)>;

fn compare_matrices(a: &[(LabelMap, Points)], b: &[(LabelMap, Points)]) -> Result<(), String> {
    let pa: BTreeMap<_, _> = a.iter().map(|(l, p)| (l, p)).collect();
    let pb: BTreeMap<_, _> = b.iter().map(|(l, p)| (l, p)).collect();
    if let Some(l) = pa.keys().find(|l| !pb.contains_key(*l)) {
        return Err(format!(
            "series only in prometheus: {} ({} vs {} series)",
            show(l),
            a.len(),
            b.len()
        ));
    }
    if let Some(l) = pb.keys().find(|l| !pa.contains_key(*l)) {
        return Err(format!(
            "series only in pharos: {} ({} vs {} series)",
            show(l),
            a.len(),
            b.len()
        ));
    }
    if a.len() != b.len() || pa.len() != a.len() {
        return Err(format!("duplicate series: {} vs {}", a.len(), b.len()));
    }
    for (l, xa) in &pa {
        let xb = pb[l];
        let ta: Vec<i64> = xa.iter().map(|p| p.0).collect();
        let tb: Vec<i64> = xb.iter().map(|p| p.0).collect();
        if ta != tb {
            let first = ta
                .iter()
                .zip(&tb)
                .position(|(x, y)| x != y)
                .unwrap_or(ta.len().min(tb.len()));
            return Err(format!(
                "timestamps of {}: {} vs {} points, first difference at index {first}: prometheus {:?} vs pharos {:?}",
                show(l),
                ta.len(),
                tb.len(),
                ta.get(first),
                tb.get(first)
            ));
        }
        for ((t, va), (_, vb)) in xa.iter().zip(xb.iter()) {
            if !close(*va, *vb) {
                return Err(format!(
                    "value of {} at {t}: prometheus {va} vs pharos {vb}",
                    show(l)
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lm(pairs: &[(&str, &str)]) -> LabelMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn tolerance_and_specials() {
        assert!(close(f64::NAN, f64::NAN));
        assert!(!close(f64::NAN, 1.0));
        assert!(close(f64::INFINITY, f64::INFINITY));
        assert!(!close(f64::INFINITY, f64::NEG_INFINITY));
        assert!(close(1.0, 1.0 + 1e-9));
        assert!(!close(1.0, 1.001));
        assert!(!close(1e-12, 2e-12));
    }

    #[test]
    fn vectors_compare_as_sets_unless_ordered() {
        let a = Outcome::Vector(vec![(lm(&[("a", "1")]), 1.0), (lm(&[("a", "2")]), 2.0)]);
        let b = Outcome::Vector(vec![(lm(&[("a", "2")]), 2.0), (lm(&[("a", "1")]), 1.0)]);
        assert!(compare(&a, &b, false).is_ok());
        assert!(compare(&a, &b, true).is_err());
        let c = Outcome::Vector(vec![(lm(&[("a", "1")]), 1.0)]);
        assert!(
            compare(&a, &c, false)
                .unwrap_err()
                .contains("only in prometheus")
        );
        let d = Outcome::Vector(vec![(lm(&[("a", "1")]), 1.0), (lm(&[("a", "2")]), 2.5)]);
        assert!(compare(&a, &d, false).unwrap_err().contains("value of"));
        assert!(
            compare(
                &Outcome::Error("x".into()),
                &Outcome::Error("y".into()),
                false
            )
            .is_ok()
        );
        assert!(compare(&Outcome::Error("x".into()), &c, false).is_err());
        let panicked = Outcome::run_pharos(|| panic!("boom"));
        assert!(
            compare(&Outcome::Error("x".into()), &panicked, false)
                .unwrap_err()
                .contains("boom")
        );
    }

    #[test]
    fn matrices_compare_timestamps_and_values() {
        let a = Outcome::Matrix(vec![(lm(&[]), vec![(1, 1.0), (2, f64::NAN)])]);
        let b = Outcome::Matrix(vec![(lm(&[]), vec![(1, 1.0), (2, f64::NAN)])]);
        let c = Outcome::Matrix(vec![(lm(&[]), vec![(1, 1.0), (3, f64::NAN)])]);
        assert!(compare(&a, &b, false).is_ok());
        assert!(compare(&a, &c, false).unwrap_err().contains("timestamps"));
    }

    #[test]
    fn prometheus_json_envelopes() {
        let j = serde_json::json!({"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"up","job":"a"},"value":[1.5,"NaN"]}]}});
        let Outcome::Vector(v) = Outcome::from_prometheus(&j) else {
            panic!("expected vector")
        };
        assert_eq!(v[0].0, lm(&[("__name__", "up"), ("job", "a")]));
        assert!(v[0].1.is_nan());
        let e = serde_json::json!({"status":"error","errorType":"bad_data","error":"parse error"});
        assert!(Outcome::from_prometheus(&e).is_error());
    }
}

//! Engine API behaviour: result shapes, ordering, limits and errors.

use std::time::Duration;

use pharos_core::error::{Classify, ErrorClass};
use pharos_model::{Labels, Sample};
use pharos_promql::{CancelToken, Engine, EngineOptions, MemStorage, QueryError, Value};

fn storage() -> MemStorage {
    let st = MemStorage::new();
    for (job, mult) in [("b", 2.0), ("a", 1.0)] {
        st.add(
            Labels::from_pairs([("__name__", "up"), ("job", job)]),
            (0..=20).map(|i| Sample::new(i * 15_000, i as f64 * mult)),
        );
    }
    st
}

fn engine() -> Engine {
    Engine::new(EngineOptions::default())
}

#[test]
fn instant_shapes() {
    let st = storage();
    let e = engine();
    assert_eq!(
        e.instant(&st, "1 + 2", 5_000).unwrap(),
        Value::Scalar(5_000, 3.0)
    );
    assert_eq!(
        e.instant(&st, r#""hi""#, 5_000).unwrap(),
        Value::String(5_000, "hi".into())
    );
    let Value::Vector(v) = e.instant(&st, r#"up{job="a"}"#, 30_000).unwrap() else {
        panic!("expected a vector");
    };
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].1, 30_000);
    assert_eq!(v[0].2, 2.0);
    // a range selector returns the raw samples of its window, both ends included
    let Value::Matrix(m) = e.instant(&st, r#"up{job="a"}[30s]"#, 60_000).unwrap() else {
        panic!("expected a matrix");
    };
    let ts: Vec<i64> = m[0].1.iter().map(|s| s.t).collect();
    assert_eq!(ts, vec![30_000, 45_000, 60_000]);
}

#[test]
fn range_query_is_sorted_by_labels_and_stepped() {
    let st = storage();
    let Value::Matrix(m) = engine().range(&st, "up * 2", 0, 60_000, 30_000).unwrap() else {
        panic!("expected a matrix");
    };
    let jobs: Vec<&str> = m.iter().map(|(l, _)| l.get("job").unwrap()).collect();
    assert_eq!(jobs, vec!["a", "b"]);
    let a: Vec<(i64, f64)> = m[0].1.iter().map(|s| (s.t, s.v)).collect();
    assert_eq!(a, vec![(0, 0.0), (30_000, 4.0), (60_000, 8.0)]);
    assert!(m[0].0.get("__name__").is_none());
}

#[test]
fn scalar_range_query_is_one_unlabelled_series() {
    let st = storage();
    let Value::Matrix(m) = engine().range(&st, "time()", 0, 20_000, 10_000).unwrap() else {
        panic!("expected a matrix");
    };
    assert_eq!(m.len(), 1);
    assert!(m[0].0.is_empty());
    assert_eq!(
        m[0].1.iter().map(|s| s.v).collect::<Vec<_>>(),
        vec![0.0, 10.0, 20.0]
    );
}

#[test]
fn request_errors_are_bad_requests() {
    let st = storage();
    let e = engine();
    let err = e.instant(&st, "up{", 0).unwrap_err();
    assert!(matches!(err, QueryError::Parse(_)));
    assert_eq!(err.class(), ErrorClass::BadRequest);
    let err = e.range(&st, "up", 0, 11_001_000, 1_000).unwrap_err();
    assert_eq!(err.class(), ErrorClass::BadRequest);
    assert!(
        err.to_string()
            .starts_with("exceeded maximum resolution of 11,000 points")
    );
    // exactly 11,000 intervals is still allowed, as upstream
    assert!(e.range(&st, "up", 0, 11_000_000, 1_000).is_ok());
    let err = e.range(&st, "up[5m]", 0, 10, 1).unwrap_err();
    assert!(err.to_string().contains("range vector"), "{err}");
    // Prometheus 3 syntax that 2.42 does not know
    for q in [
        "limitk(1, up)",
        "sort_by_label(up, \"job\")",
        "up[300]",
        "5m",
        "{\"up\"}",
    ] {
        let err = e.instant(&st, q, 0).unwrap_err();
        assert_eq!(err.class(), ErrorClass::BadRequest, "{q}: {err}");
    }
    // but durations stay fine where 2.42 allows them
    for q in [
        "up offset 5m",
        "up offset -1m",
        "rate(up[1m30s])",
        "max_over_time(up[5m:1m])",
        "up @ 100",
    ] {
        assert!(e.instant(&st, q, 0).is_ok(), "{q}");
    }
}

#[test]
fn execution_errors_are_unprocessable() {
    let st = storage();
    let err = engine().instant(&st, "up + on() up", 60_000).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unprocessable);
    assert!(
        err.to_string()
            .contains("many-to-many matching not allowed"),
        "{err}"
    );
}

#[test]
fn sample_limit() {
    let st = storage();
    let e = Engine::new(EngineOptions {
        max_samples: 10,
        ..EngineOptions::default()
    });
    let err = e.range(&st, "up", 0, 300_000, 15_000).unwrap_err();
    assert_eq!(err, QueryError::TooManySamples);
    assert_eq!(err.class(), ErrorClass::Unprocessable);
    assert!(e.instant(&st, "1", 0).is_ok());
}

#[test]
fn cancellation_and_timeout() {
    let st = storage();
    let token = CancelToken::new();
    token.cancel();
    let err = engine()
        .instant_with_cancel(&st, "up", 0, &token)
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Canceled);
    let e = Engine::new(EngineOptions {
        timeout: Duration::ZERO,
        ..EngineOptions::default()
    });
    std::thread::sleep(Duration::from_millis(2));
    let err = e.instant(&st, "up", 0).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Timeout);
}

#[test]
fn at_start_and_end_follow_the_query_range() {
    let st = storage();
    let e = engine();
    let Value::Matrix(m) = e
        .range(&st, r#"up{job="a"} @ end()"#, 0, 60_000, 30_000)
        .unwrap()
    else {
        panic!("expected a matrix");
    };
    assert!(m[0].1.iter().all(|s| s.v == 4.0), "{m:?}");
    let Value::Matrix(m) = e
        .range(&st, r#"up{job="a"} @ start()"#, 30_000, 60_000, 30_000)
        .unwrap()
    else {
        panic!("expected a matrix");
    };
    assert!(m[0].1.iter().all(|s| s.v == 2.0), "{m:?}");
}

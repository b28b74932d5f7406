//! Router tests over the in-memory reader.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use http::Request;
use pharos_core::tenant::TenantId;
use pharos_model::{Labels, Sample};
use pharos_server::testing::{Answer, get, send};

use super::*;
use crate::reader::{MemReader, MetadataEntry};

/// Seconds of the test data: up at 0..=600 every 15s.
const T0: i64 = 1_700_000_000_000;

fn reader() -> Arc<MemReader> {
    let r = Arc::new(MemReader::new());
    let t = TenantId::anonymous();
    for (job, inst, v) in [("api", "a:1", 1.0), ("api", "a:2", 0.0), ("db", "d:1", 1.0)] {
        r.add(
            &t,
            Labels::from_pairs([("__name__", "up"), ("job", job), ("instance", inst)]),
            (0..=40).map(|i| Sample::new(T0 + i * 15_000, v)),
        );
    }
    r.add(
        &t,
        Labels::from_pairs([
            ("__name__", "http_requests_total"),
            ("job", "api"),
            ("code", "200"),
        ]),
        (0..=40).map(|i| Sample::new(T0 + i * 15_000, (i * 10) as f64)),
    );
    r.add_metadata(
        &t,
        "up",
        MetadataEntry {
            kind: "gauge".into(),
            help: "Target is up.".into(),
            unit: String::new(),
        },
    );
    r.add_metadata(
        &t,
        "http_requests_total",
        MetadataEntry {
            kind: "counter".into(),
            help: "Requests.".into(),
            unit: String::new(),
        },
    );
    // another tenant sees only its own data
    r.add(
        &TenantId::parse("team-b").unwrap(),
        Labels::from_pairs([("__name__", "up"), ("job", "other")]),
        [Sample::new(T0, 7.0)],
    );
    r
}

fn app() -> Router {
    let mut st = QueryApi::new(reader());
    st.config_yaml = Arc::new("global:\n  scrape_interval: 15s\n".into());
    st.flags = Arc::new(BTreeMap::from([(
        "storage.tsdb.retention.time".to_string(),
        "15d".to_string(),
    )]));
    query_routes(st)
}

async fn post_form(path: &str, body: &str) -> Answer {
    send(
        app(),
        Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body.to_owned()))
            .unwrap(),
    )
    .await
}

fn ok(a: &Answer) -> serde_json::Value {
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.headers["content-type"], "application/json");
    let v = a.json();
    assert_eq!(v["status"], "success", "{}", a.body);
    v["data"].clone()
}

fn err(a: &Answer, status: u16, kind: &str) -> String {
    assert_eq!(a.status, status, "{}", a.body);
    let v = a.json();
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], kind, "{}", a.body);
    v["error"].as_str().unwrap().to_owned()
}

fn s(t: i64) -> String {
    format!("{}", t as f64 / 1000.0)
}

#[tokio::test]
async fn instant_query_vector_and_exact_bytes() {
    let a = get(
        app(),
        &format!(
            "/api/v1/query?query=up%7Bjob%3D%22db%22%7D&time={}",
            s(T0 + 30_000)
        ),
    )
    .await;
    assert_eq!(
        a.body,
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","instance":"d:1","job":"db"},"value":[1700000030,"1"]}]}}"#
    );
    let d = ok(&get(
        app(),
        &format!("/api/v1/query?query=sum(up)&time={}", s(T0 + 60_500)),
    )
    .await);
    assert_eq!(d["resultType"], "vector");
    assert_eq!(d["result"][0]["value"][1], "2");
    assert_eq!(
        d["result"][0]["value"][0].as_f64().unwrap(),
        1_700_000_060.5
    );
}

#[tokio::test]
async fn instant_query_scalar_string_matrix_and_post() {
    let a = post_form("/api/v1/query", "query=1%2B1&time=4").await;
    assert_eq!(
        a.body,
        r#"{"status":"success","data":{"resultType":"scalar","result":[4,"2"]}}"#
    );
    let d = ok(&post_form("/api/v1/query", "query=%22hi%22&time=4").await);
    assert_eq!(d["result"], serde_json::json!([4, "hi"]));
    let d = ok(&get(
        app(),
        &format!(
            "/api/v1/query?query=up%7Bjob%3D%22db%22%7D%5B30s%5D&time={}",
            s(T0 + 30_000)
        ),
    )
    .await);
    assert_eq!(d["resultType"], "matrix");
    assert_eq!(d["result"][0]["values"].as_array().unwrap().len(), 3);
    // body values win over the URL, as in Go's ParseForm
    let d = ok(&post_form("/api/v1/query?query=3&time=4", "query=5").await);
    assert_eq!(d["result"][1], "5");
    // without a form content type the body is ignored, as Go does
    let a = send(
        app(),
        Request::post("/api/v1/query?time=4")
            .body(Body::from("query=5"))
            .unwrap(),
    )
    .await;
    assert!(err(&a, 400, "bad_data").starts_with("invalid parameter \"query\": "));
    // special values
    let d = ok(&get(app(), "/api/v1/query?query=1%2F0&time=4").await);
    assert_eq!(d["result"][1], "+Inf");
    let d = ok(&get(app(), "/api/v1/query?query=0%2F0&time=4").await);
    assert_eq!(d["result"][1], "NaN");
}

#[tokio::test]
async fn instant_query_errors() {
    let e = err(
        &get(app(), "/api/v1/query?query=sum(").await,
        400,
        "bad_data",
    );
    assert!(e.starts_with("invalid parameter \"query\": "), "{e}");
    let e = err(
        &get(app(), "/api/v1/query?query=up&time=yesterday").await,
        400,
        "bad_data",
    );
    assert_eq!(
        e,
        "invalid parameter \"time\": Invalid time value for 'time': cannot parse \"yesterday\" to a valid timestamp"
    );
    let e = err(
        &get(app(), "/api/v1/query?query=up&timeout=abc").await,
        400,
        "bad_data",
    );
    assert_eq!(
        e,
        "invalid parameter \"timeout\": cannot parse \"abc\" to a valid duration"
    );
    // many-to-many matching fails at execution
    let a = get(
        app(),
        &format!("/api/v1/query?query=up%20%2B%20on()%20up&time={}", s(T0)),
    )
    .await;
    err(&a, 422, "execution");
    // a zero timeout expires before evaluation
    let a = get(
        app(),
        &format!(
            "/api/v1/query?query=sum(rate(up%5B5m%5D))&time={}&timeout=0",
            s(T0 + 600_000)
        ),
    )
    .await;
    let e = err(&a, 503, "timeout");
    assert!(e.contains("timed out"), "{e}");
}

#[tokio::test]
async fn range_query() {
    let path = format!(
        "/api/v1/query_range?query=up%7Bjob%3D%22db%22%7D&start={}&end={}&step=15",
        s(T0),
        s(T0 + 60_000)
    );
    let a = get(app(), &path).await;
    assert_eq!(
        a.body,
        r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up","instance":"d:1","job":"db"},"values":[[1700000000,"1"],[1700000015,"1"],[1700000030,"1"],[1700000045,"1"],[1700000060,"1"]]}]}}"#
    );
    let body = format!(
        "query=rate(http_requests_total%5B1m%5D)&start={}&end={}&step=30s",
        s(T0 + 60_000),
        s(T0 + 120_000)
    );
    let d = ok(&post_form("/api/v1/query_range", &body).await);
    let vals = d["result"][0]["values"].as_array().unwrap();
    assert_eq!(vals.len(), 3);
    assert_eq!(vals[0][1], "0.6666666666666666");
    // RFC 3339 works too
    let d = ok(&get(
        app(),
        "/api/v1/query_range?query=1&start=2023-11-14T22:13:20Z&end=2023-11-14T22:14:20.5Z&step=1m",
    )
    .await);
    assert_eq!(
        d["result"][0]["values"][1][0].as_f64().unwrap(),
        1_700_000_060.0
    );
}

#[tokio::test]
async fn range_query_errors() {
    let q = "/api/v1/query_range?query=up";
    let e = err(
        &get(app(), &format!("{q}&start=10&end=5&step=1")).await,
        400,
        "bad_data",
    );
    assert_eq!(
        e,
        "invalid parameter \"end\": end timestamp must not be before start time"
    );
    let e = err(
        &get(app(), &format!("{q}&start=1&end=5&step=0")).await,
        400,
        "bad_data",
    );
    assert_eq!(
        e,
        "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer"
    );
    let e = err(
        &get(app(), &format!("{q}&start=1&end=5&step=-1s")).await,
        400,
        "bad_data",
    );
    assert!(
        e.starts_with("invalid parameter \"step\": cannot parse"),
        "{e}"
    );
    let e = err(
        &get(app(), &format!("{q}&start=0&end=11001&step=1")).await,
        400,
        "bad_data",
    );
    assert_eq!(
        e,
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
    );
    // exactly 11000 points is allowed
    ok(&get(app(), &format!("{q}&start=0&end=11000&step=1")).await);
    let e = err(
        &get(app(), &format!("{q}&end=5&step=1")).await,
        400,
        "bad_data",
    );
    assert_eq!(
        e,
        "invalid parameter \"start\": cannot parse \"\" to a valid timestamp"
    );
    let e = err(
        &get(
            app(),
            "/api/v1/query_range?query=up%5B5m%5D&start=1&end=5&step=1",
        )
        .await,
        400,
        "bad_data",
    );
    assert!(!e.starts_with("invalid parameter"), "{e}");
}

#[tokio::test]
async fn series_endpoint() {
    let d = ok(&get(
        app(),
        "/api/v1/series?match[]=up&match[]=http_requests_total%7Bcode%3D%22200%22%7D",
    )
    .await);
    let arr = d.as_array().unwrap();
    assert_eq!(arr.len(), 4);
    assert_eq!(
        arr[0],
        serde_json::json!({"__name__":"http_requests_total","code":"200","job":"api"})
    );
    // overlapping sets are deduplicated
    let d = ok(&post_form(
        "/api/v1/series",
        "match%5B%5D=up&match%5B%5D=%7Bjob%3D%22db%22%7D",
    )
    .await);
    assert_eq!(d.as_array().unwrap().len(), 3);
    // time range outside the data
    let d = ok(&get(app(), "/api/v1/series?match[]=up&start=1&end=2").await);
    assert_eq!(d, serde_json::json!([]));
    let d = ok(&get(app(), "/api/v1/series?match[]=up&limit=1").await);
    assert_eq!(d.as_array().unwrap().len(), 1);
    let e = err(&get(app(), "/api/v1/series").await, 400, "bad_data");
    assert_eq!(e, "no match[] parameter provided");
    let e = err(
        &get(app(), "/api/v1/series?match[]=up%5B").await,
        400,
        "bad_data",
    );
    assert!(e.starts_with("invalid parameter \"match[]\": "), "{e}");
    let e = err(
        &get(app(), "/api/v1/series?match[]=%7Bjob%3D~%22.*%22%7D").await,
        400,
        "bad_data",
    );
    assert!(e.contains("non-empty matcher"), "{e}");
    let a = send(
        app(),
        Request::delete("/api/v1/series")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(err(&a, 500, "internal"), "not implemented");
}

#[tokio::test]
async fn labels_and_values() {
    let d = ok(&get(app(), "/api/v1/labels").await);
    assert_eq!(
        d,
        serde_json::json!(["__name__", "code", "instance", "job"])
    );
    let d = ok(&post_form("/api/v1/labels", "match[]=up").await);
    assert_eq!(d, serde_json::json!(["__name__", "instance", "job"]));
    let d = ok(&get(app(), "/api/v1/labels?limit=2").await);
    assert_eq!(d, serde_json::json!(["__name__", "code"]));
    let d = ok(&get(app(), "/api/v1/label/job/values").await);
    assert_eq!(d, serde_json::json!(["api", "db"]));
    let d = ok(&get(
        app(),
        "/api/v1/label/__name__/values?match[]=%7Bjob%3D%22db%22%7D",
    )
    .await);
    assert_eq!(d, serde_json::json!(["up"]));
    let d = ok(&get(app(), "/api/v1/label/nope/values").await);
    assert_eq!(d, serde_json::json!([]));
    let d = ok(&get(
        app(),
        &format!(
            "/api/v1/label/job/values?start={}&end={}",
            s(T0 - 5000),
            s(T0 - 1000)
        ),
    )
    .await);
    assert_eq!(d, serde_json::json!([]));
    let e = err(
        &get(app(), "/api/v1/label/1bad/values").await,
        400,
        "bad_data",
    );
    assert_eq!(e, "invalid label name: \"1bad\"");
    // a bad match[] is not wrapped on the label endpoints
    let e = err(
        &get(app(), "/api/v1/labels?match[]=up%7B").await,
        400,
        "bad_data",
    );
    assert!(!e.starts_with("invalid parameter"), "{e}");
    let e = err(&get(app(), "/api/v1/labels?start=x").await, 400, "bad_data");
    assert!(
        e.starts_with("invalid parameter \"start\": Invalid time value"),
        "{e}"
    );
    let e = err(&get(app(), "/api/v1/labels?limit=0").await, 400, "bad_data");
    assert!(e.contains("limit"), "{e}");
}

#[tokio::test]
async fn tenants_are_isolated() {
    let a = send(
        app(),
        Request::get("/api/v1/label/job/values")
            .header("X-Scope-OrgID", "team-b")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(ok(&a), serde_json::json!(["other"]));
    let a = send(
        app(),
        Request::get("/api/v1/query?query=up&time=1700000000")
            .header("X-Scope-OrgID", "team-b")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(ok(&a)["result"][0]["value"][1], "7");
    let a = send(
        app(),
        Request::get("/api/v1/labels")
            .header("X-Scope-OrgID", "a/b")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, 400);
}

#[tokio::test]
async fn metadata_endpoint() {
    let d = ok(&get(app(), "/api/v1/metadata").await);
    assert_eq!(
        d["up"],
        serde_json::json!([{"type":"gauge","help":"Target is up.","unit":""}])
    );
    assert_eq!(d.as_object().unwrap().len(), 2);
    let d = ok(&get(app(), "/api/v1/metadata?metric=http_requests_total").await);
    assert_eq!(d.as_object().unwrap().len(), 1);
    assert_eq!(d["http_requests_total"][0]["type"], "counter");
    let d = ok(&get(app(), "/api/v1/metadata?limit=1").await);
    assert_eq!(d.as_object().unwrap().len(), 1);
    let d = ok(&get(app(), "/api/v1/metadata?limit=-1&limit_per_metric=1").await);
    assert_eq!(d.as_object().unwrap().len(), 2);
    let e = err(
        &get(app(), "/api/v1/metadata?limit=x").await,
        400,
        "bad_data",
    );
    assert_eq!(e, "limit must be a number");
    let e = err(
        &get(app(), "/api/v1/metadata?limit_per_metric=x").await,
        400,
        "bad_data",
    );
    assert_eq!(e, "limit_per_metric must be a number");
}

#[tokio::test]
async fn exemplars_endpoint() {
    // Grafana sends milliseconds; they read as far-future seconds
    let d = ok(&post_form(
        "/api/v1/query_exemplars",
        "query=rate(http_requests_total%5B5m%5D)&start=1700000000000&end=1700000600000",
    )
    .await);
    assert_eq!(d, serde_json::json!([]));
    let a = get(app(), "/api/v1/query_exemplars?query=1%2B1").await;
    assert_eq!(a.status, 204);
    let e = err(
        &get(app(), "/api/v1/query_exemplars?query=up&start=5&end=1").await,
        400,
        "bad_data",
    );
    assert_eq!(e, "end timestamp must not be before start timestamp");
    err(
        &get(app(), "/api/v1/query_exemplars?query=up(").await,
        400,
        "bad_data",
    );
}

#[tokio::test]
async fn format_query_endpoint() {
    let d = ok(&get(
        app(),
        "/api/v1/format_query?query=sum(rate(foo%7Bbar%3D%27baz%27%7D%5B5m%5D))by(job)",
    )
    .await);
    assert_eq!(d, "sum by (job) (rate(foo{bar=\"baz\"}[5m]))");
    let e = err(
        &post_form("/api/v1/format_query", "query=sum(").await,
        400,
        "bad_data",
    );
    assert!(e.starts_with("invalid parameter \"query\": "), "{e}");
}

#[tokio::test]
async fn status_endpoints() {
    let d = ok(&get(app(), "/api/v1/status/config").await);
    assert_eq!(
        d,
        serde_json::json!({"yaml": "global:\n  scrape_interval: 15s\n"})
    );
    let d = ok(&get(app(), "/api/v1/status/flags").await);
    assert_eq!(d["storage.tsdb.retention.time"], "15d");
    let a = get(app(), "/api/v1/status/runtimeinfo").await;
    let d = ok(&a);
    for k in [
        "startTime",
        "CWD",
        "reloadConfigSuccess",
        "lastConfigTime",
        "corruptionCount",
        "goroutineCount",
        "GOMAXPROCS",
        "GOGC",
        "GODEBUG",
        "storageRetention",
    ] {
        assert!(d.get(k).is_some(), "missing {k}: {}", a.body);
    }
    assert!(d["GOMAXPROCS"].as_u64().unwrap() >= 1);
    assert!(d["startTime"].as_str().unwrap().ends_with('Z'));
    let d = ok(&get(app(), "/api/v1/status/tsdb").await);
    assert_eq!(d["headStats"]["numSeries"], 4);
    assert_eq!(d["headStats"]["minTime"], T0);
    assert_eq!(
        d["seriesCountByMetricName"][0],
        serde_json::json!({"name":"up","value":3})
    );
    let d = ok(&get(app(), "/api/v1/status/tsdb?limit=1").await);
    assert_eq!(d["labelValueCountByLabelName"].as_array().unwrap().len(), 1);
    let e = err(
        &get(app(), "/api/v1/status/tsdb?limit=0").await,
        400,
        "bad_data",
    );
    assert_eq!(e, "limit must be a positive number");
}

#[tokio::test]
async fn federate_latest_samples() {
    let r = Arc::new(MemReader::new());
    let t = TenantId::anonymous();
    let now = now_ms();
    r.add(
        &t,
        Labels::from_pairs([("__name__", "up"), ("job", "a")]),
        [Sample::new(now - 30_000, 0.0), Sample::new(now - 1000, 1.0)],
    );
    r.add(
        &t,
        Labels::from_pairs([("__name__", "old"), ("job", "a")]),
        [Sample::new(now - 3_600_000, 1.0)],
    );
    let mut st = QueryApi::new(r);
    st.external_labels = Arc::new(BTreeMap::from([("dc".to_string(), "x".to_string())]));
    let a = get(
        query_routes(st.clone()),
        "/federate?match[]=%7Bjob%3D%22a%22%7D",
    )
    .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert_eq!(
        a.body,
        format!(
            "# TYPE up untyped\nup{{job=\"a\",dc=\"x\",instance=\"\"}} 1 {}\n",
            now - 1000
        )
    );
    let a = get(query_routes(st.clone()), "/federate").await;
    assert_eq!((a.status.as_u16(), a.body.as_str()), (200, ""));
    let a = get(query_routes(st), "/federate?match[]=up%7B").await;
    assert_eq!(a.status, 400);
    assert!(
        a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
}

#[tokio::test]
async fn dropped_request_cancels_query() {
    let token = CancelToken::new();
    let seen = token.clone();
    let fut = run_query(move |c| {
        // wait until the caller goes away, then report how we were stopped
        let start = std::time::Instant::now();
        while !c.is_canceled() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        if c.is_canceled() {
            seen.cancel();
        }
        Ok(())
    });
    let timed = tokio::time::timeout(Duration::from_millis(50), fut).await;
    assert!(timed.is_err(), "query should still be running");
    // the spawned work notices the cancellation shortly after the drop
    for _ in 0..200 {
        if token.is_canceled() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("dropping the handler future did not cancel the query");
}

#[tokio::test]
async fn cors_headers_follow_origin() {
    let a = get(app(), "/api/v1/labels").await;
    assert!(a.headers.get("access-control-allow-origin").is_none());
    let req = |app: Router| {
        send(
            app,
            Request::get("/api/v1/labels")
                .header("Origin", "https://grafana.example")
                .body(Body::empty())
                .unwrap(),
        )
    };
    let a = req(app()).await;
    assert_eq!(a.headers["access-control-allow-origin"], "*");
    assert_eq!(a.headers["vary"], "Origin");
    let mut st = QueryApi::new(reader());
    st.cors_origin = Some(Arc::new(
        regex::Regex::new("^(?:https://grafana\\..*)$").unwrap(),
    ));
    let a = req(query_routes(st.clone())).await;
    assert_eq!(
        a.headers["access-control-allow-origin"],
        "https://grafana.example"
    );
    st.cors_origin = Some(Arc::new(regex::Regex::new("^(?:https://other)$").unwrap()));
    let a = req(query_routes(st)).await;
    assert!(a.headers.get("access-control-allow-origin").is_none());
    assert_eq!(
        a.headers["access-control-allow-methods"],
        "GET, POST, OPTIONS"
    );
}

#[test]
fn rfc3339_formatting() {
    assert_eq!(format_rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    assert_eq!(
        format_rfc3339_nano(UNIX_EPOCH + Duration::from_millis(1_435_781_451_781)),
        "2015-07-01T20:10:51.781Z"
    );
    assert_eq!(
        format_rfc3339_nano(UNIX_EPOCH + Duration::from_nanos(1)),
        "1970-01-01T00:00:00.000000001Z"
    );
}

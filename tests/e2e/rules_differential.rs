//! Prometheus 2.42 and metrics-server, given the same prometheus.yml, the
//! same rule file and the same exporter, agree over time: the same
//! `/api/v1/rules` view, the same `ALERTS` state sequence and the same
//! recorded values.
//!
//! The two servers scrape and evaluate on their own phases, so samples are
//! never compared timestamp-for-timestamp: alerts are compared as ordered
//! state transitions (within a tolerance), recorded values away from the
//! exporter's value changes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::support::*;

const RULES: &str = include_str!("testdata/rules_differential.rules.yml");

/// When the exporter's gauge goes high and comes back down, in seconds
/// after the schedule starts.
const HIGH_FROM: f64 = 3.0;
const HIGH_UNTIL: f64 = 12.0;
/// How long both servers run after the schedule starts.
const RUN: f64 = 20.0;
/// How far apart the two servers may see the same transition: one scrape
/// interval plus one evaluation interval.
const TOLERANCE: f64 = 2.0;
const STEP: f64 = 0.25;
/// When both alerts have settled into firing.
const MID: f64 = 9.0;
/// How far apart the lengths of the same state may be: both servers tick
/// at a fixed interval, so a phase difference shifts a state but hardly
/// stretches it; this is what tells `for: 2s` from `for: 4s`.
const LENGTH_TOLERANCE: f64 = 1.0 + STEP;

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Kills a child that is not one of our binaries when the test ends,
/// whichever way it ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The exporter's values as a function of the time since the schedule
/// started (`None`: not started yet, which reads as "low").
fn exposition(elapsed: Option<f64>) -> String {
    let load = match elapsed {
        Some(t) if (HIGH_FROM..HIGH_UNTIL).contains(&t) => 100.0,
        _ => 10.0,
    };
    // a counter tied to wall time rather than to scrapes, so two scrapers
    // at different phases read the same curve
    let events = elapsed.map_or(0.0, |t| (t.floor()) * 5.0);
    format!(
        "# TYPE demo_load gauge\ndemo_load {load}\n\
         # TYPE demo_events_total counter\ndemo_events_total {events}\n\
         # TYPE demo_pair gauge\ndemo_pair{{k=\"x\",side=\"a\"}} 1\ndemo_pair{{k=\"x\",side=\"b\"}} 2\n"
    )
}

fn start_exporter(stop: Arc<AtomicBool>, start: Arc<Mutex<Option<Instant>>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let _ = s.set_nonblocking(false);
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                    let elapsed = start.lock().unwrap().map(|t0| t0.elapsed().as_secs_f64());
                    let body = exposition(elapsed);
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                        body.len(),
                        body
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    port
}

async fn get_json(c: &reqwest::Client, url: &str, query: &[(&str, String)]) -> Value {
    let r = c.get(url).query(query).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "success", "{url} {query:?}: {v}");
    v
}

/// Numbers as f64, so `1` and `1.0` compare equal: Go prints whole floats
/// without a fraction, serde_json with one, and clients read both alike.
fn numbers_as_f64(v: &Value) -> Value {
    match v {
        Value::Number(n) => n.as_f64().map_or(Value::Null, Value::from),
        Value::Array(a) => Value::Array(a.iter().map(numbers_as_f64).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), numbers_as_f64(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The parts of one rule both servers must agree on.
fn rule_view(r: &Value) -> Value {
    numbers_as_f64(&serde_json::json!({
        "name": r["name"],
        "type": r["type"],
        "health": r["health"],
        // the engines word errors alike, down to the series listed
        "lastError": r.get("lastError").cloned().unwrap_or(Value::Null),
        "query": r["query"],
        "duration": r["duration"],
        "keepFiringFor": r.get("keepFiringFor").cloned().unwrap_or(Value::from(0)),
        "labels": r.get("labels").cloned().unwrap_or(Value::Null),
        "annotations": r.get("annotations").cloned().unwrap_or(Value::Null),
        "state": r.get("state").cloned().unwrap_or(Value::Null),
        "alerts": r.get("alerts").and_then(Value::as_array).map(Vec::len),
    }))
}

fn rules_view(v: &Value) -> Vec<(Value, Vec<Value>)> {
    v["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let head = numbers_as_f64(&serde_json::json!({
                "name": g["name"],
                "interval": g["interval"],
                "file": g["file"].as_str().and_then(|f| Path::new(f).file_name().map(|n| n.to_string_lossy().into_owned())),
            }));
            (
                head,
                g["rules"].as_array().unwrap().iter().map(rule_view).collect(),
            )
        })
        .collect()
}

/// Active alerts as (labels, annotations, state, value) and activeAt in
/// seconds, sorted by labels.
fn active_alerts(v: &Value) -> Vec<(Value, f64)> {
    let mut out: Vec<(Value, f64)> = v["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let at = chrono_secs(a["activeAt"].as_str().unwrap_or_default());
            let value = a["value"].as_str().and_then(|x| x.parse::<f64>().ok());
            (
                serde_json::json!({
                    "labels": a["labels"],
                    "annotations": a["annotations"],
                    "state": a["state"],
                    "value": value,
                }),
                at,
            )
        })
        .collect();
    out.sort_by_key(|a| a.0["labels"].to_string());
    out
}

/// Seconds since the epoch of an RFC 3339 time such as
/// `2026-11-24T01:30:00.123456789Z` or `...+02:00` (Go prints the server's
/// local zone).
fn chrono_secs(s: &str) -> f64 {
    let parse = |r: &str| {
        r.parse::<i64>()
            .unwrap_or_else(|_| panic!("bad time {s:?}"))
    };
    let (date, time) = s
        .split_once('T')
        .unwrap_or_else(|| panic!("bad time {s:?}"));
    let (time, offset) = if let Some(t) = time.strip_suffix('Z') {
        (t, 0)
    } else {
        let at = time
            .rfind(['+', '-'])
            .unwrap_or_else(|| panic!("bad time {s:?}"));
        let (t, o) = time.split_at(at);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let (h, m) = o[1..]
            .split_once(':')
            .unwrap_or_else(|| panic!("bad time {s:?}"));
        (t, sign * (parse(h) * 3600 + parse(m) * 60))
    };
    let d: Vec<i64> = date.split('-').map(parse).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(parse).collect();
    // days from civil date (proleptic Gregorian), Howard Hinnant's method
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let frac = format!("0.{frac}").parse::<f64>().unwrap_or(0.0);
    (days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2] - offset) as f64 + frac
}

/// Per alert (its labels without `alertstate`), the ordered state changes
/// `(state, time)` the `ALERTS` range shows; "inactive" where neither a
/// pending nor a firing sample is present at a step.
fn alert_sequences(v: &Value, start: f64, end: f64) -> BTreeMap<String, Vec<(String, f64)>> {
    // alert -> state -> the step times it has a sample at
    let mut present: BTreeMap<String, BTreeMap<String, BTreeSet<i64>>> = BTreeMap::new();
    for s in v["data"]["result"].as_array().unwrap() {
        let mut labels = s["metric"].as_object().unwrap().clone();
        let state = labels
            .remove("alertstate")
            .and_then(|x| x.as_str().map(str::to_owned))
            .unwrap();
        let key = Value::Object(labels).to_string();
        let times = present.entry(key).or_default().entry(state).or_default();
        for p in s["values"].as_array().unwrap() {
            assert_eq!(p[1], "1", "ALERTS sample value: {s}");
            times.insert((p[0].as_f64().unwrap() * 1000.0).round() as i64);
        }
    }
    let mut out = BTreeMap::new();
    for (key, states) in present {
        let mut seq: Vec<(String, f64)> = Vec::new();
        let mut t = start;
        while t <= end + 1e-9 {
            let ms = (t * 1000.0).round() as i64;
            let at = |s: &str| states.get(s).is_some_and(|x| x.contains(&ms));
            let state = match (at("firing"), at("pending")) {
                (true, true) => "pending+firing",
                (true, false) => "firing",
                (false, true) => "pending",
                (false, false) => "inactive",
            };
            if seq.last().is_none_or(|l| l.0 != state) {
                seq.push((state.to_owned(), t));
            }
            t += STEP;
        }
        out.insert(key, seq);
    }
    out
}

/// Values of a single-series range result by step time (ms).
fn values_by_time(v: &Value) -> BTreeMap<i64, f64> {
    let result = v["data"]["result"].as_array().unwrap();
    assert!(result.len() <= 1, "one series expected: {v}");
    result
        .iter()
        .flat_map(|s| s["values"].as_array().unwrap().iter())
        .map(|p| {
            (
                (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                p[1].as_str().unwrap().parse::<f64>().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn prometheus_and_metrics_server_agree_on_rules_over_time() {
    let Some(prometheus) = which("prometheus") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus not installed in CI: .ci/run installs Debian's prometheus package"
        );
        eprintln!("SKIPPING rules differential: no prometheus binary on PATH");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let schedule: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let exporter = start_exporter(stop.clone(), schedule.clone());

    std::fs::write(dir.path().join("diff.rules.yml"), RULES).unwrap();
    let prom_yml = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_yml,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - diff.rules.yml\nscrape_configs:\n  - job_name: demo\n    static_configs:\n      - targets: ['127.0.0.1:{exporter}']\n"
        ),
    )
    .unwrap();

    let prom_port = free_port();
    let prom = Command::new(prometheus)
        .current_dir(dir.path())
        .arg(format!("--config.file={}", prom_yml.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("prom").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _prom = KillOnDrop(prom);

    let ports = Ports::new();
    let yaml = config_yaml(&ports, dir.path(), "").replace(
        "metrics:\n",
        &format!("metrics:\n  config_file: {}\n", prom_yml.display()),
    );
    let cfg = dir.path().join("pharos.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    let mut ms = Proc::start(
        "pharos",
        &[
            "--config.file",
            cfg.to_str().unwrap(),
            "-target=metrics-server",
        ],
        dir.path(),
    );
    wait_ready(
        &mut ms,
        &format!("http://127.0.0.1:{}/ready", ports.metrics),
        Duration::from_secs(20),
    )
    .await;
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = c
            .get(format!("http://127.0.0.1:{prom_port}/-/ready"))
            .send()
            .await
            && r.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "prometheus not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Prometheus applies discovered targets only every few seconds after
    // start, so readiness is not enough: wait until both have scraped the
    // exporter and evaluated a rule on it before the schedule starts
    for port in [prom_port, ports.metrics] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = get_json(
                &c,
                &format!("http://127.0.0.1:{port}/api/v1/query"),
                &[("query", "demo:load:doubled".to_owned())],
            )
            .await;
            if v["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
            {
                break;
            }
            assert!(Instant::now() < deadline, "{port}: no rule evaluated: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let t0 = now_secs();
    *schedule.lock().unwrap() = Some(Instant::now());
    let theirs_url = format!("http://127.0.0.1:{prom_port}");
    let ours_url = format!("http://127.0.0.1:{}", ports.metrics);

    // (0) mid-run, with both alerts firing, /api/v1/alerts agrees: labels,
    // rendered annotations, state, value, and activeAt within the tolerance
    tokio::time::sleep(Duration::from_secs_f64(MID)).await;
    let theirs = active_alerts(&get_json(&c, &format!("{theirs_url}/api/v1/alerts"), &[]).await);
    let ours = active_alerts(&get_json(&c, &format!("{ours_url}/api/v1/alerts"), &[]).await);
    assert_eq!(theirs.len(), 2, "prometheus alerts at {MID}s: {theirs:#?}");
    assert_eq!(
        ours.iter().map(|a| &a.0).collect::<Vec<_>>(),
        theirs.iter().map(|a| &a.0).collect::<Vec<_>>(),
        "active alerts at {MID}s (left: metrics-server)"
    );
    for (o, t) in ours.iter().zip(&theirs) {
        assert!(
            t.1 - t0 > HIGH_FROM - 1.0 && t.1 - t0 < HIGH_FROM + TOLERANCE + 1.0,
            "prometheus activeAt of {} at {:.2}s",
            t.0,
            t.1 - t0
        );
        assert!(
            (o.1 - t.1).abs() <= TOLERANCE,
            "activeAt of {}: {:.2}s in metrics-server, {:.2}s in prometheus",
            t.0,
            o.1 - t0,
            t.1 - t0
        );
    }

    tokio::time::sleep(Duration::from_secs_f64(RUN - MID)).await;
    ms.assert_running();

    // (1) the rules API: same groups, same rules, same health
    let theirs = rules_view(&get_json(&c, &format!("{theirs_url}/api/v1/rules"), &[]).await);
    let ours = rules_view(&get_json(&c, &format!("{ours_url}/api/v1/rules"), &[]).await);
    assert_eq!(theirs.len(), 1, "prometheus groups: {theirs:#?}");
    assert_eq!(theirs[0].1.len(), 5, "prometheus rules: {theirs:#?}");
    let bad = &theirs[0].1[4];
    assert_eq!(
        (
            bad["health"].as_str(),
            bad["lastError"]
                .as_str()
                .is_some_and(|e| e.contains("many-to-many")),
        ),
        (Some("err"), true),
        "the many-to-many rule errors in prometheus: {bad:#}"
    );
    assert_eq!(ours.len(), theirs.len(), "groups: ours {ours:#?}");
    for ((og, or), (tg, tr)) in ours.iter().zip(&theirs) {
        assert_eq!(og, tg, "group header");
        assert_eq!(or.len(), tr.len(), "rules in {tg}: ours {or:#?}");
        for (o, t) in or.iter().zip(tr) {
            assert_eq!(o, t, "rule {} differs (left: metrics-server)", t["name"]);
        }
    }

    // (2) the ALERTS series over the run, as state sequences
    let (start, end) = ((t0 - 2.0).floor(), (t0 + RUN - 1.0).floor());
    let range = |q: &str| {
        vec![
            ("query", q.to_owned()),
            ("start", format!("{start}")),
            ("end", format!("{end}")),
            ("step", format!("{STEP}")),
        ]
    };
    let q = range("ALERTS");
    let theirs = alert_sequences(
        &get_json(&c, &format!("{theirs_url}/api/v1/query_range"), &q).await,
        start,
        end,
    );
    let ours = alert_sequences(
        &get_json(&c, &format!("{ours_url}/api/v1/query_range"), &q).await,
        start,
        end,
    );
    assert_eq!(theirs.len(), 2, "prometheus alerts: {theirs:#?}");
    assert_eq!(
        ours.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "alert label sets (ours {ours:#?})"
    );
    for (key, tseq) in &theirs {
        let oseq = &ours[key];
        let states = |s: &[(String, f64)]| s.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
        assert_eq!(
            states(oseq),
            states(tseq),
            "{key}: state sequence (left: metrics-server {oseq:?}, prometheus {tseq:?})"
        );
        assert_eq!(
            tseq.last().map(|x| x.0.as_str()),
            Some("inactive"),
            "{key}: resolved by the end in prometheus: {tseq:?}"
        );
        for (o, t) in oseq.iter().zip(tseq) {
            assert!(
                (o.1 - t.1).abs() <= TOLERANCE,
                "{key}: {} at {:.2}s in metrics-server, {:.2}s in prometheus",
                t.0,
                o.1 - t0,
                t.1 - t0
            );
        }
        // inner states (not the first and last, whose length depends on
        // the window) last as long in both
        for i in 1..tseq.len().saturating_sub(1) {
            let (ol, tl) = (oseq[i + 1].1 - oseq[i].1, tseq[i + 1].1 - tseq[i].1);
            assert!(
                (ol - tl).abs() <= LENGTH_TOLERANCE,
                "{key}: {} lasts {ol:.2}s in metrics-server, {tl:.2}s in prometheus",
                tseq[i].0
            );
        }
    }
    // the sticky alert really outlives the condition in prometheus
    let sticky = theirs
        .iter()
        .find(|(k, _)| k.contains("DemoHighLoadSticky"))
        .map(|(_, s)| s)
        .unwrap();
    let firing = sticky.iter().position(|s| s.0 == "firing").unwrap();
    assert!(
        sticky[firing + 1].1 - t0 >= HIGH_UNTIL + 2.0,
        "keep_firing_for holds the alert: {sticky:?}"
    );

    // (3) recorded values agree wherever both have settled on the same
    // exporter value: away from the schedule's switches by the tolerance
    let settled = |ms: i64| {
        let t = ms as f64 / 1000.0 - t0;
        [0.0, HIGH_FROM, HIGH_UNTIL]
            .iter()
            .all(|edge| (t - edge).abs() > TOLERANCE + STEP)
    };
    let q = range("demo:load:doubled");
    let theirs =
        values_by_time(&get_json(&c, &format!("{theirs_url}/api/v1/query_range"), &q).await);
    let ours = values_by_time(&get_json(&c, &format!("{ours_url}/api/v1/query_range"), &q).await);
    let distinct = |m: &BTreeMap<i64, f64>| {
        let mut v: Vec<f64> = m.values().copied().collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    };
    assert_eq!(
        distinct(&ours),
        distinct(&theirs),
        "distinct recorded values"
    );
    assert_eq!(distinct(&theirs).len(), 2, "{theirs:?}");
    let mut compared = 0;
    for (t, v) in theirs.iter().filter(|(t, _)| settled(**t)) {
        if let Some(o) = ours.get(t) {
            assert_eq!(o, v, "demo:load:doubled at {:.2}s", *t as f64 / 1000.0 - t0);
            compared += 1;
        }
    }
    assert!(compared >= 30, "only {compared} settled points compared");

    // the counter moves every second: the two may be one scrape apart
    let q = range("demo:events:sum");
    let theirs =
        values_by_time(&get_json(&c, &format!("{theirs_url}/api/v1/query_range"), &q).await);
    let ours = values_by_time(&get_json(&c, &format!("{ours_url}/api/v1/query_range"), &q).await);
    let mut compared = 0;
    for (t, v) in &theirs {
        if let Some(o) = ours.get(t) {
            assert!(
                (o - v).abs() <= 5.0 * TOLERANCE,
                "demo:events:sum at {:.2}s: ours {o}, prometheus {v}",
                *t as f64 / 1000.0 - t0
            );
            compared += 1;
        }
    }
    assert!(compared >= 40, "only {compared} counter points compared");

    // the erroring rule records nothing on either side
    let q = range("demo:pair:bad");
    for url in [&theirs_url, &ours_url] {
        let v = get_json(&c, &format!("{url}/api/v1/query_range"), &q).await;
        assert_eq!(v["data"]["result"], serde_json::json!([]), "{url}: {v}");
    }

    // and both end with nothing active
    for url in [&theirs_url, &ours_url] {
        let v = get_json(&c, &format!("{url}/api/v1/alerts"), &[]).await;
        assert_eq!(v["data"]["alerts"], serde_json::json!([]), "{url}: {v}");
    }

    stop.store(true, Ordering::Relaxed);
    ms.signal("TERM");
    let (status, _) = ms.wait_exit(Duration::from_secs(10));
    assert!(status.success());
}

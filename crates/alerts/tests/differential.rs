//! Differential tests: the real Alertmanager 0.25 (Debian
//! `prometheus-alertmanager`) and Pharos' router run the same
//! `alertmanager.yml` and get the same alert stream; the webhook
//! notifications each sends must agree in receiver, status, group key,
//! alerts and their statuses, and arrive within a second of each other.
//!
//! Scenarios are files under testdata/scenarios/. Without the
//! alertmanager binary the tests skip loudly, unless `CI` is set: there
//! they fail.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use common::{Capture, Captured, capture_server, free_port, have, post_alerts, rfc3339, serve};
use pharos_alerts::{AlertsApi, AlertsConfig};
use serde::Deserialize;
use serde_json::{Value, json};

const ALERTMANAGER: &str = "prometheus-alertmanager";
/// Given to both, so links in messages can be compared.
const EXTERNAL_URL: &str = "http://alertmanager.example:9093";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    config: String,
    steps: Vec<Step>,
    duration: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    at: f64,
    #[serde(default)]
    alerts: Vec<StepAlert>,
    #[serde(default)]
    silence: Option<StepSilence>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepAlert {
    labels: Value,
    #[serde(default)]
    annotations: Value,
    #[serde(default)]
    resolved: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepSilence {
    matchers: Value,
    ends_in: f64,
}

/// What must agree between the two, per notification.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    method: String,
    authorization: Option<String>,
    path: String,
    receiver: Value,
    status: Value,
    group_key: Value,
    group_labels: Value,
    truncated: Value,
    /// (labels, status, whether endsAt is Go's zero time), sorted.
    alerts: Vec<(String, String, bool)>,
    /// The whole body, for integrations other than the webhook whose
    /// payload has no per-alert times to mask.
    raw: Value,
    at: Duration,
}

fn seen(c: &Captured, t0: Instant) -> Seen {
    let b = &c.body;
    let mut alerts: Vec<(String, String, bool)> = b["alerts"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|a| {
                    (
                        a["labels"].to_string(),
                        a["status"].to_string(),
                        a["endsAt"] == "0001-01-01T00:00:00Z",
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    alerts.sort();
    Seen {
        method: c.method.clone(),
        authorization: c.authorization.clone(),
        path: c.path.clone(),
        receiver: b["receiver"].clone(),
        status: b["status"].clone(),
        group_key: b["groupKey"].clone(),
        group_labels: b["groupLabels"].clone(),
        truncated: b["truncatedAlerts"].clone(),
        alerts,
        raw: if b.get("version").is_some() {
            Value::Null
        } else {
            b.clone()
        },
        at: c.at.saturating_duration_since(t0),
    }
}

fn same_content(a: &Seen, b: &Seen) -> bool {
    Seen {
        at: a.at,
        ..b.clone()
    } == *a
}

struct Upstream {
    child: tokio::process::Child,
    url: String,
}

async fn start_alertmanager(config: &Path, storage: &Path) -> Upstream {
    let port = free_port();
    let child = tokio::process::Command::new(ALERTMANAGER)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", storage.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg(format!("--web.external-url={EXTERNAL_URL}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("alertmanager starts");
    let url = format!("http://127.0.0.1:{port}");
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/-/ready")).await
            && r.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < end, "alertmanager did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Upstream { child, url }
}

async fn post_silence(base: &str, s: &StepSilence) {
    let now = SystemTime::now();
    let body = json!({
        "matchers": s.matchers,
        "startsAt": rfc3339(now),
        "endsAt": rfc3339(now + Duration::from_secs_f64(s.ends_in)),
        "createdBy": "differential",
        "comment": "scenario",
    });
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v2/silences"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{base}: {:?}", r.text().await);
}

fn alerts_body(step: &Step) -> Value {
    let now = rfc3339(SystemTime::now());
    Value::Array(
        step.alerts
            .iter()
            .map(|a| {
                let mut v = json!({"labels": a.labels});
                if !a.annotations.is_null() {
                    v["annotations"] = a.annotations.clone();
                }
                if a.resolved {
                    v["endsAt"] = json!(now);
                }
                v
            })
            .collect(),
    )
}

async fn run(name: &str) {
    if !have(
        "alertmanager",
        std::process::Command::new(ALERTMANAGER).arg("--version"),
        "apt-get install prometheus-alertmanager",
    ) {
        return;
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/scenarios")
        .join(format!("{name}.yml"));
    let sc: Scenario = serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (hook_up, cap_up) = capture_server().await;
    let (hook_us, cap_us) = capture_server().await;
    let up_cfg = dir.path().join("upstream.yml");
    std::fs::write(&up_cfg, sc.config.replace("$HOOK", &hook_up)).unwrap();
    let our_cfg = dir.path().join("pharos.yml");
    std::fs::write(&our_cfg, sc.config.replace("$HOOK", &hook_us)).unwrap();

    let mut upstream = start_alertmanager(&up_cfg, &dir.path().join("am-data")).await;
    let api = AlertsApi::from_config(&AlertsConfig {
        config_file: Some(our_cfg),
        local_path: dir.path().join("pharos-data"),
        external_url: Some(EXTERNAL_URL.into()),
        ..AlertsConfig::default()
    })
    .unwrap();
    let ours = serve(api.clone()).await;

    let t0 = Instant::now();
    for step in &sc.steps {
        tokio::time::sleep_until((t0 + Duration::from_secs_f64(step.at)).into()).await;
        if let Some(s) = &step.silence {
            post_silence(&upstream.url, s).await;
            post_silence(&ours, s).await;
        }
        if !step.alerts.is_empty() {
            let body = alerts_body(step);
            post_alerts(&upstream.url, &body).await;
            post_alerts(&ours, &body).await;
        }
    }
    tokio::time::sleep_until((t0 + Duration::from_secs_f64(sc.duration)).into()).await;
    api.shutdown().await;
    let _ = upstream.child.kill().await;
    compare(name, &cap_up, &cap_us, t0);
}

fn compare(name: &str, up: &Capture, us: &Capture, t0: Instant) {
    let theirs: Vec<Seen> = up.all().iter().map(|c| seen(c, t0)).collect();
    let mut ours: Vec<Option<Seen>> = us.all().iter().map(|c| Some(seen(c, t0))).collect();
    assert!(
        !theirs.is_empty(),
        "{name}: alertmanager sent nothing, the scenario tests nothing"
    );
    eprintln!(
        "{name}: alertmanager sent {}, pharos sent {}",
        theirs.len(),
        ours.len()
    );
    let mut problems = Vec::new();
    for t in &theirs {
        let found = ours.iter_mut().find(|o| {
            o.as_ref().is_some_and(|o| {
                same_content(o, t) && o.at.abs_diff(t.at) <= Duration::from_secs(1)
            })
        });
        match found {
            Some(slot) => *slot = None,
            None => problems.push(format!("alertmanager sent, pharos did not: {t:#?}")),
        }
    }
    for o in ours.into_iter().flatten() {
        problems.push(format!("pharos sent, alertmanager did not: {o:#?}"));
    }
    assert!(
        problems.is_empty(),
        "{name}: {}\nall from alertmanager: {theirs:#?}",
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouping() {
    run("grouping").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_routes() {
    run("continue").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inhibition() {
    run("inhibition").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences() {
    run("silences").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeat() {
    run("repeat").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve() {
    run("resolve").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord() {
    run("discord").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opsgenie() {
    run("opsgenie").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty() {
    run("pagerduty").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram() {
    run("telegram").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_intervals() {
    run("time_intervals").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webex() {
    run("webex").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack() {
    run("slack").await;
}

/// Every scenario file has a test above, so a new file is not forgotten.
#[test]
fn every_scenario_file_is_run() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/scenarios");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "continue.yml",
            "discord.yml",
            "grouping.yml",
            "inhibition.yml",
            "opsgenie.yml",
            "pagerduty.yml",
            "repeat.yml",
            "resolve.yml",
            "silences.yml",
            "slack.yml",
            "telegram.yml",
            "time_intervals.yml",
            "webex.yml"
        ]
    );
}

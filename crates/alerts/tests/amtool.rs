//! The real `amtool` (Alertmanager 0.25, Debian `prometheus-alertmanager`)
//! against the Pharos router on a local port, and against Pharos' config
//! parser on the same files.
//!
//! Without amtool the tests skip loudly, unless `CI` is set: there they
//! fail, so CI cannot pass without running them.

use std::path::{Path, PathBuf};
use std::process::Output;

use pharos_alerts::config::Config;
use pharos_alerts::routing::RouteNode;
use pharos_alerts::{AlertsApi, AlertsConfig, LabelSet, router};
use tokio::process::Command;

fn have_amtool() -> bool {
    let found = std::process::Command::new("amtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("amtool is not installed: CI must install prometheus-alertmanager");
        }
        eprintln!("SKIPPED: amtool is not installed (apt-get install prometheus-alertmanager)");
    }
    found
}

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

async fn amtool(url: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new("amtool");
    if let Some(u) = url {
        cmd.arg(format!("--alertmanager.url={u}"));
    }
    cmd.args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("amtool runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "amtool {what} failed: {}\n{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
}

async fn serve(api: AlertsApi) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router(api)).await.unwrap();
    });
    format!("http://{addr}")
}

fn ids(text: &str) -> Vec<&str> {
    text.split_whitespace().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amtool_drives_alerts_and_silences() {
    if !have_amtool() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let api = AlertsApi::from_config(&AlertsConfig {
        config_file: Some(testdata("alertmanager.yml")),
        local_path: data.path().to_owned(),
        ..AlertsConfig::default()
    })
    .unwrap();
    let url = serve(api).await;
    let u = Some(url.as_str());

    ok(
        amtool(
            u,
            &[
                "alert",
                "add",
                "alertname=Test",
                "severity=critical",
                "--annotation=summary=hi",
            ],
        )
        .await,
        "alert add",
    );
    let text = ok(
        amtool(u, &["alert", "query", "-o", "json"]).await,
        "alert query",
    );
    let alerts: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(alerts.is_array(), "{text}");
    assert_eq!(alerts[0]["labels"]["alertname"], "Test");
    assert_eq!(alerts[0]["annotations"]["summary"], "hi");
    // `continue` on the pager route goes on to its siblings, none of
    // which match, so the root's receiver is not added.
    assert_eq!(
        alerts[0]["receivers"],
        serde_json::json!([{"name": "pager"}])
    );
    let simple = ok(
        amtool(u, &["alert", "query", "alertname=Test"]).await,
        "alert query",
    );
    assert!(simple.contains("Test"), "{simple}");

    let id = ok(
        amtool(
            u,
            &["silence", "add", "alertname=Test", "-c", "x", "-a", "me"],
        )
        .await,
        "silence add",
    )
    .trim()
    .to_owned();
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(
        ids(&ok(
            amtool(u, &["silence", "query", "-q"]).await,
            "silence query"
        )),
        [id.as_str()]
    );
    let table = ok(amtool(u, &["silence", "query"]).await, "silence query");
    assert!(table.contains(&id) && table.contains("me"), "{table}");
    // amtool hides silenced alerts unless asked.
    let q = ok(
        amtool(u, &["alert", "query", "-o", "json"]).await,
        "alert query",
    );
    assert_eq!(q.trim(), "[]");
    let q = ok(
        amtool(u, &["alert", "query", "-s", "-o", "json"]).await,
        "alert query -s",
    );
    let q: serde_json::Value = serde_json::from_str(&q).unwrap();
    assert_eq!(q[0]["status"]["silencedBy"][0], serde_json::json!(id));

    ok(
        amtool(u, &["silence", "expire", &id]).await,
        "silence expire",
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    assert!(
        ids(&ok(
            amtool(u, &["silence", "query", "-q"]).await,
            "silence query"
        ))
        .is_empty()
    );
    let expired = ok(
        amtool(u, &["silence", "query", "--expired", "-q"]).await,
        "query --expired",
    );
    assert_eq!(ids(&expired), [id.as_str()]);
    let again = amtool(u, &["silence", "expire", &id]).await;
    assert!(!again.status.success(), "expiring twice must fail");

    // Import what `silence query -o json` printed, with a future end; the
    // old id is unknown to the server, so amtool falls back to creating.
    let dir = tempfile::tempdir().unwrap();
    let export = ok(
        amtool(u, &["silence", "query", "--expired", "-o", "json"]).await,
        "export",
    );
    let mut sils: serde_json::Value = serde_json::from_str(&export).unwrap();
    let end = pharos_alerts::time::format_ms(pharos_alerts::time::now_ms() + 3_600_000);
    sils[0]["endsAt"] = serde_json::json!(end);
    sils[0]["id"] = serde_json::json!("5f3c9a3e-7d6c-4b1a-9f2e-0a1b2c3d4e5f");
    let file = dir.path().join("silences.json");
    std::fs::write(&file, sils.to_string()).unwrap();
    let imported = ok(
        amtool(u, &["silence", "import", file.to_str().unwrap()]).await,
        "silence import",
    );
    let new_ids = ids(&imported);
    assert_eq!(new_ids.len(), 1, "{imported}");
    assert_ne!(new_ids[0], id);
    assert_eq!(
        ids(&ok(
            amtool(u, &["silence", "query", "-q"]).await,
            "silence query"
        )),
        new_ids
    );

    // `config show` reads /api/v2/status through amtool's strict client.
    let shown = ok(amtool(u, &["config", "show"]).await, "config show");
    assert!(shown.contains("receiver: team-mail"), "{shown}");
    assert!(!shown.contains("not-a-real-password"), "{shown}");
}

#[tokio::test]
async fn amtool_and_pharos_agree_on_config_files() {
    if !have_amtool() {
        return;
    }
    let path = testdata("alertmanager.yml");
    let out = ok(
        amtool(None, &["check-config", path.to_str().unwrap()]).await,
        "check-config",
    );
    let ours = Config::load_file(&path).unwrap();
    for want in [
        format!("{} inhibit rules", ours.inhibit_rules.len()),
        format!("{} receivers", ours.receivers.len()),
        format!("{} templates", ours.templates.len()),
    ] {
        assert!(out.contains(&want), "amtool says {out}, we found {want}");
    }

    let mut checked = 0;
    for entry in std::fs::read_dir(testdata("invalid")).unwrap() {
        let p = entry.unwrap().path();
        let out = amtool(None, &["check-config", p.to_str().unwrap()]).await;
        assert!(!out.status.success(), "amtool accepts {}", p.display());
        let text = stdout(&out);
        let theirs = text
            .split_once("FAILED: ")
            .map(|(_, m)| m.trim().replace("\n  ", " "))
            .unwrap_or_else(|| panic!("unexpected amtool output {text}"));
        let ours = Config::load_file(&p).unwrap_err().to_string();
        assert_eq!(ours, theirs, "{}", p.display());
        checked += 1;
    }
    assert!(checked >= 5);
}

#[tokio::test]
async fn amtool_and_pharos_route_alike() {
    if !have_amtool() {
        return;
    }
    let path = testdata("alertmanager.yml");
    let tree = RouteNode::new(Config::load_file(&path).unwrap().root_route());
    let cases: &[&[&str]] = &[
        &["severity=critical"],
        &["severity=warning"],
        &["team=db"],
        &["team=storage", "env=staging"],
        &["team=db", "severity=critical"],
        &["service=api"],
        &["service=apis"],
    ];
    let config_flag = format!("--config.file={}", path.display());
    for labels in cases {
        let mut args = vec!["config", "routes", "test", config_flag.as_str()];
        args.extend_from_slice(labels);
        let theirs = ok(amtool(None, &args).await, "config routes test");
        let ls: LabelSet = labels
            .iter()
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let ours: Vec<&str> = tree
            .match_labels(&ls)
            .iter()
            .map(|r| r.receiver.as_str())
            .collect();
        assert_eq!(ours.join(","), theirs.trim(), "labels {labels:?}");
    }
}

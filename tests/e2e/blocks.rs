//! Blocks live in the object store: five hours of remote-written data make
//! metrics-server cut and upload 2 h blocks; after a kill -9, a new
//! metrics-server on an EMPTY local disk with the same object store
//! answers the old range with the same samples.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pharos_loadgen::{Outcome, Plan, RunOptions, SeriesSet, run};

use crate::support::*;

const SCRAPES: u64 = 5 * 240; // 5 h at 15 s
const INTERVAL_MS: i64 = 15_000;

/// (minTime, maxTime) of every complete block uploaded for `tenant`.
fn uploaded_blocks(objects: &std::path::Path, tenant: &str) -> Vec<(i64, i64)> {
    let dir = objects.join("metrics").join(tenant).join("blocks");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let Ok(text) = std::fs::read_to_string(e.path().join("meta.json")) else {
            continue;
        };
        let meta: serde_json::Value = serde_json::from_str(&text).unwrap();
        out.push((
            meta["minTime"].as_i64().unwrap(),
            meta["maxTime"].as_i64().unwrap(),
        ));
    }
    out.sort();
    out
}

/// Every (labels, timestamp, value) of a range-vector instant query,
/// sorted, values as sent (strings keep every bit).
async fn samples(
    c: &reqwest::Client,
    base: &str,
    q: &str,
    at_ms: i64,
) -> Vec<(String, f64, String)> {
    let v: serde_json::Value = c
        .post(format!("{base}/api/v1/query"))
        .form(&[
            ("query", q),
            ("time", &format!("{:.3}", at_ms as f64 / 1000.0)),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "success", "{q}: {v}");
    let mut out = Vec::new();
    for s in v["data"]["result"].as_array().unwrap() {
        let labels = s["metric"].to_string();
        for p in s["values"].as_array().unwrap() {
            out.push((
                labels.clone(),
                p[0].as_f64().unwrap(),
                p[1].as_str().unwrap().to_owned(),
            ));
        }
    }
    out.sort_by(|a, b| (&a.0, a.1).partial_cmp(&(&b.0, b.1)).unwrap());
    out
}

fn config(ports: &Ports, local: &std::path::Path, objects: &std::path::Path) -> String {
    config_yaml(ports, local, "")
        .replace(
            &format!("path: {}/objects", local.display()),
            &format!("path: {}", objects.display()),
        )
        .replace(
            &format!("  local_path: {}/local/metrics", local.display()),
            &format!(
                "  maintenance_interval: 500ms\n  local_path: {}/local/metrics",
                local.display()
            ),
        )
        + "limits:\n  ingestion_rate: 1000000000\n  ingestion_burst: 1000000000\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_in_the_object_store_outlive_the_local_disk() {
    let root = tempfile::tempdir().unwrap();
    let objects = root.path().join("bucket");
    let (disk1, disk2) = (root.path().join("disk1"), root.path().join("disk2"));
    std::fs::create_dir_all(&disk1).unwrap();
    std::fs::create_dir_all(&disk2).unwrap();

    let ports = Ports::new();
    let cfg1 = disk1.join("pharos.yaml");
    let yaml = config(&ports, &disk1, &objects);
    assert!(yaml.contains("maintenance_interval"), "{yaml}");
    std::fs::write(&cfg1, yaml).unwrap();
    let base = format!("http://127.0.0.1:{}", ports.metrics);
    let mut server = Proc::start(
        "metrics-server",
        &["--config.file", cfg1.to_str().unwrap()],
        &disk1,
    );
    wait_ready(
        &mut server,
        &format!("{base}/ready"),
        Duration::from_secs(20),
    )
    .await;

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start_ms = (now - SCRAPES as i64 * INTERVAL_MS) / INTERVAL_MS * INTERVAL_MS;
    let set = SeriesSet::node_exporter(pharos_loadgen::series::PER_HOST, 7);
    let plan = Arc::new(Plan::new(Arc::new(set), 2, 2000, start_ms, INTERVAL_MS));
    let report = run(
        plan.clone(),
        RunOptions {
            url: format!("{base}/api/v1/write"),
            scrapes: Some(SCRAPES),
            timeout: Duration::from_secs(10),
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        report.requests(|o| o != Outcome::Acked),
        0,
        "every request acknowledged"
    );

    // A block of old data appears in the bucket within a few maintenance
    // rounds.
    let end = Instant::now() + Duration::from_secs(60);
    let (min_t, max_t) = loop {
        if let Some(b) = uploaded_blocks(&objects, "anonymous").first() {
            break *b;
        }
        server.assert_running();
        assert!(Instant::now() < end, "no block uploaded within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Block ranges are aligned to 2 h, so the first may begin before the data.
    assert!(max_t > start_ms && max_t <= now, "{min_t}..{max_t}");
    // Let a merge of the first blocks, if one follows, settle: the
    // answers below must not depend on it anyway.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let c = client();
    let window = format!("{}ms", max_t - min_t);
    let q = format!("{{__name__=~\".+\"}}[{window}]");
    let at = max_t - 1;
    let before = samples(&c, &base, &q, at).await;
    let expected = plan.set.len() as i64 * ((max_t - min_t.max(start_ms)) / INTERVAL_MS);
    assert!(
        (before.len() as i64 - expected).abs() <= plan.set.len() as i64,
        "the block's range holds about {expected} samples, got {}",
        before.len()
    );

    server.signal("KILL");
    let _ = server.wait_exit(Duration::from_secs(10));

    // A new server: same bucket, nothing on its disk.
    let ports2 = Ports::new();
    let cfg2 = disk2.join("pharos.yaml");
    std::fs::write(&cfg2, config(&ports2, &disk2, &objects)).unwrap();
    assert!(
        !disk2.join("local").exists(),
        "the second disk starts empty"
    );
    let base2 = format!("http://127.0.0.1:{}", ports2.metrics);
    let mut server2 = Proc::start(
        "metrics-server",
        &["--config.file", cfg2.to_str().unwrap()],
        &disk2,
    );
    wait_ready(
        &mut server2,
        &format!("{base2}/ready"),
        Duration::from_secs(30),
    )
    .await;
    let after = samples(&c, &base2, &q, at).await;
    assert_eq!(after.len(), before.len(), "as many samples from the bucket");
    assert!(
        after == before,
        "the same samples, bit for bit, from the bucket"
    );
    let metrics = get_text(&c, &format!("{base2}/metrics")).await;
    let downloads = metric_value(&metrics, "pharos_tsdb_block_downloads_total ");
    assert!(downloads >= 1.0, "the answer came through the cache");
    server2.signal("TERM");
    let _ = server2.wait_exit(Duration::from_secs(10));
}

//! The conformance suite against a real S3-protocol server (s3s-fs), then
//! the same store with the server killed: every operation must fail with
//! `Unavailable` within the configured deadline, never hang or panic.
//!
//! Needs the `s3s-fs` binary (`.ci/run` installs it); `PHAROS_S3S_FS` may
//! point at it. Without it the test is skipped, except under CI where a
//! missing server must not turn into a silent pass.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pharos_core::error::{Classify, ErrorClass};
use pharos_storage::testing::{self, S3sFs, SECRET_KEY, find_s3s_fs};
use pharos_storage::{ObjectStorage, Op, RetryConfig, StorageConfig, StorageError, conformance};

const BUCKET: &str = "pharos-test";

fn s3_config(port: u16) -> StorageConfig {
    testing::s3_config(
        port,
        BUCKET,
        RetryConfig {
            max_retries: 3,
            total_timeout: pharos_config::Duration::from_secs(5),
            request_timeout: pharos_config::Duration::from_secs(3),
            connect_timeout: pharos_config::Duration::from_secs(2),
            ..RetryConfig::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_conformance_and_outage() {
    let Some(binary) = find_s3s_fs() else {
        if std::env::var_os("CI").is_some() {
            panic!("s3s-fs not installed: run .ci/run (or set PHAROS_S3S_FS)");
        }
        eprintln!();
        eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        eprintln!("!!! SKIPPED s3 conformance: s3s-fs not found on PATH or PHAROS_S3S_FS");
        eprintln!("!!! install: cargo install s3s-fs --version 0.14.1 --features binary --locked");
        eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let mut server = S3sFs::start(&binary, root.path(), BUCKET);
    let store = ObjectStorage::from_config(&s3_config(server.port()))
        .await
        .unwrap();
    assert_eq!(store.backend_name(), "s3");

    conformance::run_all(&store).await;
    conformance::run_all(&store.scoped("metrics/tenant-1")).await;

    store
        .put("survivor", Bytes::from_static(b"still here"))
        .await
        .unwrap();

    server.kill();

    let before = store.metrics().op(Op::Get).errors;
    let checks: [(&str, Op); 4] = [
        ("get", Op::Get),
        ("put", Op::Put),
        ("list", Op::List),
        ("head", Op::Head),
    ];
    for (name, op) in checks {
        let started = Instant::now();
        let result = match op {
            Op::Get => store.get("survivor").await.map(drop),
            Op::Put => store.put("new", Bytes::from_static(b"x")).await,
            Op::List => store.list("").await.map(drop),
            _ => store.head("survivor").await.map(drop),
        };
        let elapsed = started.elapsed();
        let err = result.expect_err("the server is dead");
        assert!(
            matches!(err, StorageError::Unavailable { .. }),
            "{name}: want Unavailable, got {err:?}"
        );
        assert_eq!(err.class(), ErrorClass::Unavailable);
        assert!(
            elapsed < Duration::from_secs(20),
            "{name}: took {elapsed:?} to fail (total_timeout 5s)"
        );
        let text = err.to_string();
        assert!(
            text.contains(name),
            "{name}: message does not name the operation: {text}"
        );
        assert!(
            !text.contains(SECRET_KEY),
            "{name}: message leaks the secret: {text}"
        );
        assert!(
            !format!("{err:?}").contains(SECRET_KEY),
            "{name}: Debug leaks the secret"
        );
        eprintln!("{name} failed after {elapsed:?}: {text}");
    }
    assert_eq!(store.metrics().op(Op::Get).errors, before + 1);
}

/// A server that accepts connections and never answers (a hung process, a
/// partition dropping packets after the handshake) must not hang callers:
/// the per-operation deadline cuts them off. Needs no s3s-fs.
#[tokio::test]
async fn s3_black_hole_fails_within_deadline() {
    // The kernel completes handshakes into the backlog; nobody reads.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = s3_config(port);
    config.retry = RetryConfig {
        max_retries: 3,
        total_timeout: pharos_config::Duration::from_secs(2),
        request_timeout: pharos_config::Duration::from_secs(1),
        connect_timeout: pharos_config::Duration::from_secs(1),
        ..RetryConfig::default()
    };
    let store = ObjectStorage::from_config(&config).await.unwrap();
    let started = Instant::now();
    let err = store.get("anything").await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(err, StorageError::Unavailable { op: "get", .. }),
        "{err:?}"
    );
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    assert!(!err.to_string().contains(SECRET_KEY), "{err}");
    eprintln!("black hole get failed after {elapsed:?}: {err}");
    drop(listener);
}

//! The conformance suite against a real S3-protocol server (s3s-fs), then
//! the same store with the server killed: every operation must fail with
//! `Unavailable` within the configured deadline, never hang or panic.
//!
//! Needs the `s3s-fs` binary (`.ci/run` installs it); `PHAROS_S3S_FS` may
//! point at it. Without it the test is skipped, except under CI where a
//! missing server must not turn into a silent pass.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pharos_core::error::{Classify, ErrorClass};
use pharos_storage::{
    Backend, ObjectStorage, Op, RetryConfig, S3Config, Secret, StorageConfig, StorageError,
    conformance,
};

const ACCESS_KEY: &str = "pharos-test-access";
const SECRET_KEY: &str = "pharos-test-secret-never-print-me";
const BUCKET: &str = "pharos-test";

/// Kills the server however the test ends, so a failed assertion does not
/// leave a process holding the port.
struct Server {
    child: Child,
    port: u16,
    _root: tempfile::TempDir,
    log: PathBuf,
}

impl Server {
    fn start(binary: &Path) -> Self {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        // s3s-fs maps each bucket to a directory under its root.
        std::fs::create_dir_all(data.join(BUCKET)).unwrap();
        let log = root.path().join("s3s-fs.log");
        let port = free_port();
        let child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&data)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(root.path().join("s3s-fs.err")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut server = Self {
            child,
            port,
            _root: root,
            log,
        };
        server.wait_until_listening();
        server
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!("s3s-fs exited at start with {status}: {log}");
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("s3s-fs did not listen on port {} within 20s", self.port);
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The OS picks a free port; there is a small window before s3s-fs binds
/// it, acceptable on a test machine.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn find_s3s_fs() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PHAROS_S3S_FS") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "PHAROS_S3S_FS={} is not a file",
            path.display()
        );
        return Some(path);
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    // `cargo install` puts it here even when that is not on PATH.
    if let Some(cargo_home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(cargo_home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|dir| dir.join("s3s-fs"))
        .find(|p| p.is_file())
}

fn s3_config(port: u16) -> StorageConfig {
    StorageConfig {
        backend: Backend::S3,
        s3: S3Config {
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            bucket: BUCKET.to_owned(),
            access_key_id: Some(ACCESS_KEY.to_owned()),
            secret_access_key: Some(Secret::new(SECRET_KEY)),
            force_path_style: true,
            allow_http: true,
            ..S3Config::default()
        },
        retry: RetryConfig {
            max_retries: 3,
            total_timeout: pharos_config::Duration::from_secs(5),
            request_timeout: pharos_config::Duration::from_secs(3),
            connect_timeout: pharos_config::Duration::from_secs(2),
            ..RetryConfig::default()
        },
        ..StorageConfig::default()
    }
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
    let mut server = Server::start(&binary);
    let store = ObjectStorage::from_config(&s3_config(server.port))
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

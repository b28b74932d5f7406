//! A real S3-protocol server for tests, in this crate and in every crate
//! that keeps data in object storage: the `s3s-fs` binary (`.ci/run`
//! installs it) on a free loopback port, serving a directory the caller
//! owns, killed on drop and restartable with the same contents.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Backend, RetryConfig, S3Config, Secret, StorageConfig};

pub const ACCESS_KEY: &str = "pharos-test-access";
pub const SECRET_KEY: &str = "pharos-test-secret-never-print-me";

/// The `s3s-fs` binary: `$PHAROS_S3S_FS`, else on `PATH`, else where
/// `cargo install` puts it even when that is not on `PATH`.
pub fn find_s3s_fs() -> Option<PathBuf> {
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

/// A running `s3s-fs` with one bucket.
pub struct S3sFs {
    binary: PathBuf,
    root: PathBuf,
    bucket: String,
    port: u16,
    child: Option<Child>,
}

impl S3sFs {
    /// Starts the server on a free port, serving `root` (which the caller
    /// keeps, e.g. a temporary directory), with `bucket` created; returns
    /// once it accepts connections.
    pub fn start(binary: &Path, root: &Path, bucket: &str) -> Self {
        // s3s-fs maps each bucket to a directory under its data root
        std::fs::create_dir_all(root.join("data").join(bucket)).unwrap();
        // the OS picks a free port; the window before s3s-fs binds it is
        // acceptable on a test machine
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap();
        let mut s = Self {
            binary: binary.to_owned(),
            root: root.to_owned(),
            bucket: bucket.to_owned(),
            port,
            child: None,
        };
        s.restart();
        s
    }

    /// Starts the server again (after [`S3sFs::kill`]) on the same port
    /// with the same contents.
    pub fn restart(&mut self) {
        self.kill();
        let log = self.root.join("s3s-fs.log");
        let child = Command::new(&self.binary)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.root.join("data"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(self.root.join("s3s-fs.err")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("s3s-fs exited at start with {status}: {log}");
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("s3s-fs did not listen on port {} within 20s", self.port);
    }

    /// Stops the server (SIGKILL); the data stays for a restart.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A storage config for this server and bucket with `retry`.
    pub fn config(&self, retry: RetryConfig) -> StorageConfig {
        s3_config(self.port, &self.bucket, retry)
    }
}

/// A storage config for an S3 server on loopback `port` that takes this
/// module's keys.
pub fn s3_config(port: u16, bucket: &str, retry: RetryConfig) -> StorageConfig {
    StorageConfig {
        backend: Backend::S3,
        s3: S3Config {
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            bucket: bucket.to_owned(),
            access_key_id: Some(ACCESS_KEY.to_owned()),
            secret_access_key: Some(Secret::new(SECRET_KEY)),
            force_path_style: true,
            allow_http: true,
            ..S3Config::default()
        },
        retry,
        ..StorageConfig::default()
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        self.kill();
    }
}

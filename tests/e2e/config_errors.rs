//! A broken config fails start-up with one line naming file, line and key.

use std::time::Duration;

use crate::support::*;

fn start_with(config: &str, env: &[(&str, &str)]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yaml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = std::process::Command::new(bin("pharos"));
    cmd.args(["--config.file", path.to_str().unwrap()])
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        path.display().to_string(),
    )
}

fn assert_one_line(stderr: &str, needles: &[&str]) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{stderr}");
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} missing from: {}", lines[0]);
    }
}

#[test]
fn typo_key() {
    let (ok, err, file) = start_with("server:\n  log_level: info\n  htp_listen_address: x\n", &[]);
    assert!(!ok);
    assert_one_line(&err, &[&file, "line 3", "htp_listen_address", "server"]);
}

#[test]
fn bad_duration() {
    let (ok, err, file) = start_with("server:\n  graceful_shutdown_timeout: 5x\n", &[]);
    assert!(!ok);
    assert_one_line(&err, &[&file, "line 2", "graceful_shutdown_timeout", "5x"]);
}

#[test]
fn unset_variable_without_default() {
    let cfg = "storage:\n  backend: filesystem\n  filesystem:\n    path: ${PHAROS_TEST_SURELY_UNSET_DIR}\n";
    let (ok, err, file) = start_with(cfg, &[]);
    assert!(!ok);
    assert_one_line(
        &err,
        &[&file, "line 4", "path", "PHAROS_TEST_SURELY_UNSET_DIR"],
    );
}

#[test]
fn variables_and_defaults_expand() {
    // with the variable set and a default used, the same file is valid
    let cfg = "server:\n  log_level: ${PHAROS_TEST_LEVEL}\n  log_format: ${PHAROS_TEST_UNSET_FORMAT:-json}\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.yaml");
    std::fs::write(&path, cfg).unwrap();
    let out = std::process::Command::new(bin("pharos"))
        .args(["--config.file", path.to_str().unwrap(), "--config.check"])
        .env("PHAROS_TEST_LEVEL", "debug")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // an invalid value that came from the environment names the key too
    let out = std::process::Command::new(bin("pharos"))
        .args(["--config.file", path.to_str().unwrap(), "--config.check"])
        .env("PHAROS_TEST_LEVEL", "loud")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_one_line(
        &String::from_utf8_lossy(&out.stderr),
        &["line 2", "server.log_level", "loud"],
    );
}

#[test]
fn dotenv_file_supplies_variables() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "PHAROS_TEST_DOTENV_LEVEL=warn\n").unwrap();
    let path = dir.path().join("p.yaml");
    std::fs::write(&path, "server:\n  log_level: ${PHAROS_TEST_DOTENV_LEVEL}\n").unwrap();
    let out = std::process::Command::new(bin("pharos"))
        .args(["--config.file", path.to_str().unwrap(), "--config.check"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn busy_port_fails_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::new();
    let hold = std::net::TcpListener::bind(("127.0.0.1", ports.alerts)).unwrap();
    let cfg = dir.path().join("p.yaml");
    std::fs::write(&cfg, config_yaml(&ports, dir.path(), "")).unwrap();
    let mut p = Proc::start(
        "alert-router",
        &["--config.file", cfg.to_str().unwrap()],
        dir.path(),
    );
    let (status, stderr) = p.wait_exit(Duration::from_secs(10));
    drop(hold);
    assert!(!status.success());
    assert!(
        stderr.contains(&format!(
            "cannot listen on 127.0.0.1:{} for alert-router",
            ports.alerts
        )),
        "{stderr}"
    );
}

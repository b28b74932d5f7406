//! Credentials and TLS, configured once, enforced on every listener.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

const ACCESS: &str = "  access:\n    basic_auth:\n      username: admin\n      password: s3cret-pw\n    bearer_token: tok-123\n";

#[tokio::test]
async fn credentials_are_required_everywhere_but_ready() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::new();
    let cfg = dir.path().join("p.yaml");
    std::fs::write(&cfg, config_yaml(&ports, dir.path(), ACCESS)).unwrap();
    let mut p = Proc::start(
        "pharos",
        &["--config.file", cfg.to_str().unwrap()],
        dir.path(),
    );
    let c = client();
    for (name, port) in ports.http() {
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(&mut p, &format!("{base}/ready"), Duration::from_secs(20)).await;
        for path in ["/metrics", "/config", "/status/buildinfo", "/no/such/route"] {
            let r = c.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(r.status(), 401, "{name}{path} without credentials");
            assert!(r.headers().contains_key("www-authenticate"));
            let r = c
                .get(format!("{base}{path}"))
                .basic_auth("admin", Some("wrong"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401, "{name}{path} with a wrong password");
        }
        let r = c
            .get(format!("{base}/metrics"))
            .basic_auth("admin", Some("s3cret-pw"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name} basic auth");
        let text = r.text().await.unwrap();
        assert!(text.contains("pharos_http_auth_failures_total{"), "{text}");
        let r = c
            .get(format!("{base}/metrics"))
            .bearer_auth("tok-123")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name} bearer");
    }
    // secrets never appear in the effective config
    let conf = c
        .get(format!("http://127.0.0.1:{}/config", ports.metrics))
        .bearer_auth("tok-123")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(conf.contains("username: admin"), "{conf}");
    assert!(
        !conf.contains("s3cret-pw") && !conf.contains("tok-123"),
        "{conf}"
    );
    assert!(conf.contains("<secret>"), "{conf}");
    // failures are counted by listener and reason
    let text = c
        .get(format!("http://127.0.0.1:{}/metrics", ports.alerts))
        .bearer_auth("tok-123")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            r#"pharos_http_auth_failures_total{listener="alert-router",reason="missing"} 4"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn tls_on_every_listener() {
    let Some(openssl) = which("openssl") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "openssl CLI missing in CI"
        );
        eprintln!("SKIPPING tls test: no openssl CLI");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let ok = Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // webpki refuses a CA certificate as the server's own
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let tls = format!(
        "  tls:\n    cert_file: {}\n    key_file: {}\n",
        cert.display(),
        key.display()
    );
    let ports = Ports::new();
    let cfg = dir.path().join("p.yaml");
    std::fs::write(&cfg, config_yaml(&ports, dir.path(), &tls)).unwrap();
    let mut p = Proc::start(
        "pharos",
        &["--config.file", cfg.to_str().unwrap()],
        dir.path(),
    );
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let c = reqwest::Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for (name, port) in ports.http() {
        let url = format!("https://127.0.0.1:{port}/ready");
        let mut last = String::new();
        for _ in 0..200 {
            p.assert_running();
            match c.get(&url).send().await {
                Ok(r) if r.status() == 200 => {
                    last.clear();
                    break;
                }
                Ok(r) => last = r.status().to_string(),
                Err(e) => last = format!("{e:?}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(last.is_empty(), "{name} over TLS: {last}");
        // plain HTTP on a TLS port gets nowhere
        assert!(
            client()
                .get(format!("http://127.0.0.1:{port}/ready"))
                .send()
                .await
                .is_err()
        );
    }
}

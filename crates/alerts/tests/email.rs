//! The email integration against a real SMTP server (Python's aiosmtpd
//! with STARTTLS and AUTH, see testdata/smtp_server.py).
//!
//! Without python3 + aiosmtpd or openssl the test skips loudly, unless
//! `CI` is set: there it fails. Install: `pip install aiosmtpd`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use common::{free_port, have, post_alerts, rfc3339, serve};
use pharos_alerts::{AlertsApi, AlertsConfig};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

fn tools_present() -> bool {
    have(
        "python3 with aiosmtpd",
        std::process::Command::new("python3").args(["-c", "import aiosmtpd"]),
        "pip install aiosmtpd",
    ) && have(
        "openssl",
        std::process::Command::new("openssl").arg("version"),
        "apt-get install openssl",
    )
}

fn openssl(args: &[&str], dir: &Path) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throwaway CA and a server certificate for 127.0.0.1/localhost signed
/// by it; returns (ca, server cert, server key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=pharos test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        dir,
    );
    openssl(
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
        dir,
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ],
        dir,
    );
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// Waits for message `n` (1-based); returns its raw text and envelope.
async fn message(outdir: &Path, n: usize, within: Duration) -> Option<(String, serde_json::Value)> {
    let end = Instant::now() + within;
    let env = outdir.join(format!("{n}.json"));
    while Instant::now() < end {
        if env.is_file() {
            let raw = std::fs::read_to_string(outdir.join(format!("{n}.eml"))).unwrap();
            let e = serde_json::from_str(&std::fs::read_to_string(&env).unwrap()).unwrap();
            return Some((raw, e));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    raw.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_then_resolved_email_over_starttls_with_auth() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let outdir = dir.path().join("mail");
    std::fs::create_dir(&outdir).unwrap();
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/smtp_server.py");
    // aiosmtpd warns about its own deprecated internals on every AUTH.
    let mut server = tokio::process::Command::new("python3")
        .args(["-W", "ignore::DeprecationWarning"])
        .arg(script)
        .arg(port.to_string())
        .arg(&cert)
        .arg(&key)
        .args(["alerts", "s3cret"])
        .arg(&outdir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .expect("smtp server starts")
        .unwrap();
    assert_eq!(ready.as_deref(), Some("READY"));

    let file = dir.path().join("alertmanager.yml");
    std::fs::write(
        &file,
        format!(
            r#"
global:
  smtp_smarthost: '127.0.0.1:{port}'
  smtp_from: 'Alertmanager <am@example.org>'
  smtp_auth_username: alerts
  smtp_auth_password: s3cret
route:
  receiver: mail
  group_by: [alertname]
  group_wait: 200ms
  group_interval: 700ms
receivers:
  - name: mail
    email_configs:
      - to: 'ops@example.org, dba@example.org'
        send_resolved: true
        tls_config: {{ca_file: '{}', server_name: localhost}}
"#,
            ca.display()
        ),
    )
    .unwrap();
    let api = AlertsApi::from_config(&AlertsConfig {
        config_file: Some(file),
        local_path: dir.path().join("data"),
        ..AlertsConfig::default()
    })
    .unwrap();
    let base = serve(api.clone()).await;
    let labels = json!({"alertname": "DiskFull", "instance": "db1", "severity": "page"});
    post_alerts(
        &base,
        &json!([{"labels": labels, "annotations": {"summary": "disk is full"}}]),
    )
    .await;
    let (raw, env) = message(&outdir, 1, Duration::from_secs(10))
        .await
        .expect("firing email");
    assert_eq!(env["tls"], true, "STARTTLS was used");
    assert_eq!(env["authenticated"], true);
    assert_eq!(env["mail_from"], "am@example.org");
    assert_eq!(
        env["rcpt_tos"],
        json!(["ops@example.org", "dba@example.org"])
    );
    assert_eq!(
        header(&raw, "Subject"),
        Some("[FIRING:1] DiskFull (db1 page)"),
        "{raw}"
    );
    assert!(raw.contains("multipart/alternative"), "{raw}");
    assert!(raw.contains("1 firing:"), "text part: {raw}");
    assert!(raw.contains("disk is full"), "{raw}");
    assert!(raw.contains("<h3>1 firing</h3>"), "html part: {raw}");

    post_alerts(
        &base,
        &json!([{"labels": labels, "endsAt": rfc3339(SystemTime::now())}]),
    )
    .await;
    let (raw, _) = message(&outdir, 2, Duration::from_secs(10))
        .await
        .expect("resolved email");
    assert_eq!(
        header(&raw, "Subject"),
        Some("[RESOLVED] DiskFull (db1 page)"),
        "{raw}"
    );
    assert!(raw.contains("1 resolved:"), "{raw}");
    // Sent once only.
    assert!(
        message(&outdir, 3, Duration::from_millis(1500))
            .await
            .is_none()
    );
    api.shutdown().await;
    drop(server.stdin.take());
    let _ = server.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_tls_refuses_a_server_without_starttls() {
    // A listener that speaks just enough SMTP to say it has no STARTTLS.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let saw_mail = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let saw = saw_mail.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((sock, _)) = listener.accept().await {
            let saw = saw.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 plain ESMTP\r\n").await.unwrap();
                while let Ok(Some(l)) = lines.next_line().await {
                    let reply: &[u8] = if l.starts_with("EHLO") {
                        b"250-plain\r\n250 8BITMIME\r\n"
                    } else if l.starts_with("MAIL") {
                        saw.store(true, std::sync::atomic::Ordering::SeqCst);
                        b"250 ok\r\n"
                    } else if l.starts_with("QUIT") {
                        b"221 bye\r\n"
                    } else {
                        b"502 no\r\n"
                    };
                    if w.write_all(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alertmanager.yml");
    std::fs::write(
        &file,
        format!(
            "global: {{smtp_smarthost: '127.0.0.1:{port}', smtp_from: 'am@example.org'}}\nroute: {{receiver: mail, group_wait: 50ms, group_interval: 10s}}\nreceivers: [{{name: mail, email_configs: [{{to: 'ops@example.org'}}]}}]\n"
        ),
    )
    .unwrap();
    let api = AlertsApi::from_config(&AlertsConfig {
        config_file: Some(file),
        local_path: dir.path().join("data"),
        ..AlertsConfig::default()
    })
    .unwrap();
    let registry = pharos_server::Registry::new();
    api.register_metrics(&registry);
    let base = serve(api.clone()).await;
    post_alerts(&base, &json!([{"labels": {"alertname": "A"}}])).await;
    let end = Instant::now() + Duration::from_secs(5);
    while !registry
        .render()
        .contains("alertmanager_notification_requests_failed_total{integration=\"email\"} 1")
    {
        assert!(Instant::now() < end, "{}", registry.render());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !saw_mail.load(std::sync::atomic::Ordering::SeqCst),
        "no mail without TLS"
    );
    api.shutdown().await;
}

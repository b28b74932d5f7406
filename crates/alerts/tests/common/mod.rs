//! Helpers shared by the integration tests: a webhook receiver that
//! records what it is sent, and tool discovery that skips loudly.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;

/// One request the capture server got.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub body: serde_json::Value,
    pub at: Instant,
}

#[derive(Clone, Default)]
pub struct Capture {
    pub got: Arc<Mutex<Vec<Captured>>>,
    /// Status codes to answer with, in order; 200 once empty.
    pub replies: Arc<Mutex<VecDeque<u16>>>,
}

impl Capture {
    pub fn all(&self) -> Vec<Captured> {
        self.got.lock().unwrap().clone()
    }

    pub fn on(&self, path: &str) -> Vec<Captured> {
        self.all().into_iter().filter(|c| c.path == path).collect()
    }

    /// Waits until `n` requests arrived on `path` or `within` passed.
    pub async fn wait_for(&self, path: &str, n: usize, within: Duration) -> Vec<Captured> {
        let end = Instant::now() + within;
        loop {
            let got = self.on(path);
            if got.len() >= n || Instant::now() >= end {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(
    method: axum::http::Method,
    State(c): State<Capture>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let code = c.replies.lock().unwrap().pop_front().unwrap_or(200);
    c.got.lock().unwrap().push(Captured {
        method: method.to_string(),
        path: format!("/{path}"),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        at: Instant::now(),
    });
    // Telegram's client wants the Bot API's answer shape.
    let reply = if path.ends_with("/sendMessage") {
        r#"{"ok":true,"result":{"message_id":1,"date":0,"chat":{"id":1,"type":"group"}}}"#.into()
    } else {
        String::new()
    };
    (StatusCode::from_u16(code).unwrap(), reply)
}

/// Starts the capture server; returns its base URL.
pub async fn capture_server() -> (String, Capture) {
    let c = Capture::default();
    let app = axum::Router::new()
        .route("/{*path}", any(receive))
        .with_state(c.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), c)
}

pub async fn serve(api: pharos_alerts::AlertsApi) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, pharos_alerts::router(api))
            .await
            .unwrap();
    });
    format!("http://{addr}")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether `cmd --version`-like probing works; without it the test skips
/// loudly, and fails when `CI` is set so CI cannot skip silently.
pub fn have(what: &str, probe: &mut std::process::Command, hint: &str) -> bool {
    let found = probe.output().is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("{what} is not available: CI must install it ({hint})");
        }
        eprintln!("SKIPPED: {what} is not available ({hint})");
    }
    found
}

/// Posts alerts as a client would.
pub async fn post_alerts(base: &str, alerts: &serde_json::Value) {
    let c = reqwest::Client::new();
    let r = c
        .post(format!("{base}/api/v2/alerts"))
        .json(alerts)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{base}: {:?}", r.text().await);
}

pub fn rfc3339(t: std::time::SystemTime) -> String {
    let ms = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    pharos_alerts::time::format_ms(ms)
}

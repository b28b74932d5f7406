//! The scrape HTTP client options `oauth2` and `proxy_url`, against small
//! axum servers on loopback ports: a token endpoint, a target, a proxy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, Uri};
use axum::routing::{get, post};
use pharos_model::{Labels, Sample};
use pharos_scrape::PrometheusConfig;
use pharos_scrape::scrape::{ScrapeManager, ScrapeSink, TargetHealth};

#[derive(Default)]
struct Collect {
    series: Mutex<Vec<(Labels, Sample)>>,
}

impl ScrapeSink for Collect {
    fn append(&self, series: Vec<(Labels, Vec<Sample>)>) -> Result<(), String> {
        let mut all = self.series.lock().unwrap();
        for (l, samples) in series {
            all.extend(samples.into_iter().map(|s| (l.clone(), s)));
        }
        Ok(())
    }

    fn set_metadata(&self, _: &str, _: &str, _: &str, _: &str) {}
}

impl Collect {
    fn has(&self, name: &str, v: f64) -> bool {
        self.series
            .lock()
            .unwrap()
            .iter()
            .any(|(l, s)| l.metric_name() == Some(name) && s.v == v)
    }
}

async fn wait_for(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn serve(app: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

/// What the token endpoint and the target saw.
#[derive(Default)]
struct Seen {
    grants: Vec<(HashMap<String, String>, Option<String>)>,
    scrape_auth: Vec<Option<String>>,
    /// `expires_in` of the tokens handed out.
    lifetime: u64,
}

type Shared = Arc<Mutex<Seen>>;

/// A request the proxy got: its URI and `Host` header.
type Proxied = (String, Option<String>);

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

async fn token(
    State(seen): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> axum::response::Response {
    let mut seen = seen.lock().unwrap();
    seen.grants.push((form, header(&headers, "authorization")));
    let n = seen.grants.len();
    let body = format!(
        "{{\"access_token\":\"tok-{n}\",\"token_type\":\"bearer\",\"expires_in\":{}}}",
        seen.lifetime
    );
    axum::response::Response::builder()
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

async fn metrics(State(seen): State<Shared>, headers: HeaderMap) -> &'static str {
    seen.lock()
        .unwrap()
        .scrape_auth
        .push(header(&headers, "authorization"));
    "oauth_ok 1\n"
}

fn oauth_config(port: u16, secret: &str) -> PrometheusConfig {
    PrometheusConfig::parse(
        &format!(
            r#"
scrape_configs:
  - job_name: oauth
    scrape_interval: 100ms
    oauth2:
      client_id: 'my client'
      {secret}
      token_url: http://127.0.0.1:{port}/token
      scopes: [read, metrics]
      endpoint_params:
        audience: pharos
    static_configs:
      - targets: ['127.0.0.1:{port}']
"#
        ),
        "prometheus.yml",
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_client_credentials_token_is_fetched_cached_and_sent() {
    let seen: Shared = Arc::new(Mutex::new(Seen {
        lifetime: 3600,
        ..Seen::default()
    }));
    let app = Router::new()
        .route("/token", post(token))
        .route("/metrics", get(metrics))
        .with_state(seen.clone());
    let port = serve(app).await;
    let config = oauth_config(port, "client_secret: 's3cret&'");
    assert!(
        config.warnings().iter().all(|w| !w.contains("oauth2")),
        "{:?}",
        config.warnings()
    );
    let sink = Arc::new(Collect::default());
    let manager = ScrapeManager::new(sink.clone(), 0);
    manager.apply_config(&config).unwrap();
    wait_for("three scrapes", || {
        seen.lock().unwrap().scrape_auth.len() >= 3
    })
    .await;
    wait_for("sample", || sink.has("oauth_ok", 1.0)).await;
    manager.stop();
    {
        let seen = seen.lock().unwrap();
        // One grant serves every scrape while the token is fresh.
        assert_eq!(seen.grants.len(), 1);
        let (form, auth) = &seen.grants[0];
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["scope"], "read metrics");
        assert_eq!(form["audience"], "pharos");
        assert!(!form.contains_key("client_secret"));
        // Basic base64("my+client:s3cret%26"): both halves form-encoded.
        assert_eq!(auth.as_deref(), Some("Basic bXkrY2xpZW50OnMzY3JldCUyNg=="));
        assert!(
            seen.scrape_auth
                .iter()
                .all(|a| a.as_deref() == Some("Bearer tok-1")),
            "{:?}",
            seen.scrape_auth
        );
    }

    // A token that expires within the refresh margin is fetched again for
    // each scrape; the secret comes from a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, "from-file\n").unwrap();
    {
        let mut s = seen.lock().unwrap();
        *s = Seen {
            lifetime: 5,
            ..Seen::default()
        };
    }
    let config = oauth_config(port, &format!("client_secret_file: '{}'", file.display()));
    let manager = ScrapeManager::new(Arc::new(Collect::default()), 0);
    manager.apply_config(&config).unwrap();
    wait_for("three scrapes", || {
        seen.lock().unwrap().scrape_auth.len() >= 3
    })
    .await;
    manager.stop();
    let seen = seen.lock().unwrap();
    assert!(seen.grants.len() >= 3, "{}", seen.grants.len());
    // base64("my+client:from-file")
    assert_eq!(
        seen.grants[0].1.as_deref(),
        Some("Basic bXkrY2xpZW50OmZyb20tZmlsZQ==")
    );
    assert_eq!(seen.scrape_auth[1].as_deref(), Some("Bearer tok-2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_token_errors_fail_the_scrape() {
    let app = Router::new().route(
        "/token",
        post(|| async {
            (
                axum::http::StatusCode::UNAUTHORIZED,
                "{\"error\":\"invalid_client\"}",
            )
        }),
    );
    let port = serve(app).await;
    let sink = Arc::new(Collect::default());
    let manager = ScrapeManager::new(sink.clone(), 0);
    manager
        .apply_config(&oauth_config(port, "client_secret: x"))
        .unwrap();
    wait_for("scrape failed on the token", || {
        manager.targets().active_targets.first().is_some_and(|t| {
            t.health == TargetHealth::Down
                && t.last_error.contains("oauth2: cannot fetch token: 401")
        })
    })
    .await;
    assert!(sink.has("up", 0.0));
    manager.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_url_routes_scrapes_through_the_proxy() {
    let seen: Arc<Mutex<Vec<Proxied>>> = Arc::default();
    let recorded = seen.clone();
    // An HTTP proxy receives the absolute URL of the target.
    let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
        let recorded = recorded.clone();
        async move {
            recorded
                .lock()
                .unwrap()
                .push((uri.to_string(), header(&headers, "host")));
            "via_proxy 1\n"
        }
    });
    let proxy = serve(app).await;
    // `.invalid` never resolves: only the proxy can reach this target.
    let yaml = |proxy_line: &str| {
        format!(
            "scrape_configs:\n  - job_name: p\n    scrape_interval: 100ms\n{proxy_line}    static_configs:\n      - targets: ['target.invalid:9100']\n"
        )
    };
    let config = PrometheusConfig::parse(
        &yaml(&format!("    proxy_url: http://127.0.0.1:{proxy}\n")),
        "prometheus.yml",
    )
    .unwrap();
    assert!(config.warnings().is_empty(), "{:?}", config.warnings());
    let sink = Arc::new(Collect::default());
    let manager = ScrapeManager::new(sink.clone(), 0);
    manager.apply_config(&config).unwrap();
    wait_for("scraped through the proxy", || sink.has("via_proxy", 1.0)).await;
    manager.stop();
    let (uri, host) = seen.lock().unwrap()[0].clone();
    assert_eq!(uri, "http://target.invalid:9100/metrics");
    assert_eq!(host.as_deref(), Some("target.invalid:9100"));

    let bad =
        PrometheusConfig::parse(&yaml("    proxy_url: 'not a url'\n"), "prometheus.yml").unwrap();
    let err = ScrapeManager::new(sink, 0).apply_config(&bad).unwrap_err();
    assert!(err.to_string().contains("proxy_url"), "{err}");
}

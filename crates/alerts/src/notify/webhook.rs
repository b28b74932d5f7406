//! The webhook integration: upstream's version "4" JSON message, POSTed
//! with the receiver's `http_config`.

use std::time::Duration;

use serde_json::{Value, json};

use super::{GO_ZERO_TIME_JSON, NotifyData, NotifyError, go_time_json};
use crate::config::{HttpClientConfig, WebhookConfig};

const USER_AGENT: &str = "Alertmanager/0.25.0";

#[derive(Debug)]
pub struct Webhook {
    url: Option<String>,
    url_file: String,
    max_alerts: usize,
    http: HttpClientConfig,
    client: reqwest::Client,
}

pub(crate) fn read_secret_file(path: &str) -> Result<String, NotifyError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|e| NotifyError::Permanent(format!("cannot read {path}: {e}")))
}

/// A reqwest client honouring the TLS and redirect parts of `http_config`.
pub(crate) fn http_client(h: &HttpClientConfig) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder().user_agent(USER_AGENT);
    if !h.follow_redirects {
        b = b.redirect(reqwest::redirect::Policy::none());
    }
    let tls = &h.tls_config;
    if tls.insecure_skip_verify {
        b = b.danger_accept_invalid_certs(true);
    }
    let ca = if !tls.ca_file.is_empty() {
        Some(std::fs::read(&tls.ca_file).map_err(|e| format!("cannot read {}: {e}", tls.ca_file))?)
    } else if !tls.ca.is_empty() {
        Some(tls.ca.clone().into_bytes())
    } else {
        None
    };
    if let Some(pem) = ca {
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("invalid CA certificate: {e}"))?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    if h.oauth2.is_some() {
        tracing::warn!("oauth2 in http_config is not implemented yet in pharos and is ignored");
    }
    if !h.proxy_url.is_empty() || h.proxy_from_environment {
        tracing::warn!("proxies in http_config are not implemented yet in pharos and are ignored");
    }
    b.build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))
}

/// Adds the credentials `http_config` asks for, read at send time so a
/// rotated file is picked up.
pub(crate) fn authorize(
    h: &HttpClientConfig,
    mut req: reqwest::RequestBuilder,
) -> Result<reqwest::RequestBuilder, NotifyError> {
    if let Some(ba) = &h.basic_auth {
        let user = if ba.username_file.is_empty() {
            ba.username.clone()
        } else {
            read_secret_file(&ba.username_file)?
        };
        let pass = if ba.password_file.is_empty() {
            ba.password.expose().to_owned()
        } else {
            read_secret_file(&ba.password_file)?
        };
        req = req.basic_auth(user, Some(pass));
    } else if let Some(a) = &h.authorization {
        let kind = if a.kind.is_empty() { "Bearer" } else { &a.kind };
        let cred = if a.credentials_file.is_empty() {
            a.credentials.expose().to_owned()
        } else {
            read_secret_file(&a.credentials_file)?
        };
        req = req.header("Authorization", format!("{kind} {cred}"));
    } else if !h.bearer_token.is_empty() {
        req = req.header(
            "Authorization",
            format!("Bearer {}", h.bearer_token.expose()),
        );
    } else if !h.bearer_token_file.is_empty() {
        let t = read_secret_file(&h.bearer_token_file)?;
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    Ok(req)
}

impl Webhook {
    pub fn new(c: &WebhookConfig, global: &HttpClientConfig) -> Result<Self, String> {
        let http = c.http_config.clone().unwrap_or_else(|| global.clone());
        Ok(Webhook {
            url: c.url.as_ref().map(|u| u.expose().to_owned()),
            url_file: c.url_file.clone(),
            max_alerts: usize::try_from(c.max_alerts).unwrap_or(usize::MAX),
            client: http_client(&http)?,
            http,
        })
    }

    /// The message body, field for field as upstream's `webhook.Message`.
    pub fn payload(&self, d: &NotifyData) -> Value {
        let total = d.alerts.len();
        let keep = if self.max_alerts == 0 {
            total
        } else {
            total.min(self.max_alerts)
        };
        let alerts: Vec<Value> = d.alerts[..keep]
            .iter()
            .map(|a| {
                json!({
                    "status": d.alert_status(a),
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": go_time_json(a.starts_at),
                    "endsAt": d
                        .shown_ends_at(a)
                        .map_or_else(|| GO_ZERO_TIME_JSON.to_owned(), go_time_json),
                    "generatorURL": a.generator_url,
                    "fingerprint": format!("{:016x}", a.fingerprint()),
                })
            })
            .collect();
        json!({
            "receiver": d.receiver,
            "status": d.status,
            "alerts": alerts,
            "groupLabels": d.group_labels,
            "commonLabels": d.common_labels,
            "commonAnnotations": d.common_annotations,
            "externalURL": d.external_url,
            "version": "4",
            "groupKey": d.group_key,
            "truncatedAlerts": total - keep,
        })
    }

    pub async fn send(&self, d: &NotifyData, timeout: Duration) -> Result<(), NotifyError> {
        let url = match &self.url {
            Some(u) => u.clone(),
            None => read_secret_file(&self.url_file)?,
        };
        post_json(&self.client, &self.http, &url, &self.payload(d), timeout).await
    }
}

/// POSTs a JSON body; 2xx is success, 5xx is worth a retry, anything
/// else is final (upstream's default retrier).
pub(crate) async fn post_json(
    client: &reqwest::Client,
    http: &HttpClientConfig,
    url: &str,
    body: &Value,
    timeout: Duration,
) -> Result<(), NotifyError> {
    post_json_retrying(client, http, url, body, timeout, &[]).await
}

/// [`post_json`] that also retries on the `extra` status codes.
pub(crate) async fn post_json_retrying(
    client: &reqwest::Client,
    http: &HttpClientConfig,
    url: &str,
    body: &Value,
    timeout: Duration,
    extra: &[u16],
) -> Result<(), NotifyError> {
    send_json(
        client,
        http,
        reqwest::Method::POST,
        url,
        body,
        timeout,
        extra,
    )
    .await
}

/// Sends a JSON body with `method`; see [`post_json`] for the outcome.
pub(crate) async fn send_json(
    client: &reqwest::Client,
    http: &HttpClientConfig,
    method: reqwest::Method,
    url: &str,
    body: &Value,
    timeout: Duration,
    extra: &[u16],
) -> Result<(), NotifyError> {
    let body = serde_json::to_vec(body)
        .map_err(|e| NotifyError::Permanent(format!("cannot encode message: {e}")))?;
    let req = client
        .request(method, url)
        .timeout(timeout)
        .header("Content-Type", "application/json")
        .body(body);
    let resp = authorize(http, req)?
        .send()
        .await
        // The URL may carry a secret: reqwest's error would print it.
        .map_err(|e| NotifyError::Retryable(describe(e)))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let msg = format!("unexpected status code {}", status.as_u16());
    if status.is_server_error() || extra.contains(&status.as_u16()) {
        Err(NotifyError::Retryable(msg))
    } else {
        Err(NotifyError::Permanent(msg))
    }
}

fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        "request timed out".into()
    } else if e.is_connect() {
        format!("connection failed: {}", source_chain(&e))
    } else {
        source_chain(&e)
    }
}

fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

//! The PagerDuty integration over the Events API v2 (`routing_key`): one
//! event per group, deduplicated by a hash of the group key so the
//! incident opened by "trigger" is closed by "resolve".
//!
//! The v1 API (`service_key`) is not implemented: such a receiver fails
//! with an error saying so.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::discord::truncate;
use super::webhook::{http_client, post_json_retrying, read_secret_file};
use super::{NotifyData, NotifyError, Templates};
use crate::config::{HttpClientConfig, PagerdutyConfig};

/// PagerDuty refuses longer v2 summaries.
const MAX_SUMMARY_CHARS: usize = 1024;

/// The details every event carries unless the config sets the same key.
const DEFAULT_DETAILS: [(&str, &str); 4] = [
    (
        "firing",
        r#"{{ template "pagerduty.default.instances" .Alerts.Firing }}"#,
    ),
    (
        "resolved",
        r#"{{ template "pagerduty.default.instances" .Alerts.Resolved }}"#,
    ),
    ("num_firing", "{{ .Alerts.Firing | len }}"),
    ("num_resolved", "{{ .Alerts.Resolved | len }}"),
];

#[derive(Debug)]
pub struct PagerDuty {
    cfg: PagerdutyConfig,
    details: BTreeMap<String, String>,
    http: HttpClientConfig,
    client: reqwest::Client,
    templates: Arc<Templates>,
}

/// The dedup key: hex SHA-256 of the group key, as upstream's `Key.Hash`.
pub fn dedup_key(group_key: &str) -> String {
    let digest = Sha256::digest(group_key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl PagerDuty {
    pub fn new(
        c: &PagerdutyConfig,
        global: &HttpClientConfig,
        templates: Arc<Templates>,
    ) -> Result<Self, String> {
        let http = c.http_config.clone().unwrap_or_else(|| global.clone());
        let mut details = c.details.clone();
        for (k, v) in DEFAULT_DETAILS {
            details.entry(k.to_owned()).or_insert_with(|| v.to_owned());
        }
        Ok(PagerDuty {
            client: http_client(&http)?,
            cfg: c.clone(),
            details,
            http,
            templates,
        })
    }

    fn routing_key(&self) -> Result<String, NotifyError> {
        if !self.cfg.routing_key_file.is_empty() {
            return read_secret_file(&self.cfg.routing_key_file);
        }
        if self.cfg.routing_key.is_empty() {
            return Err(NotifyError::Unsupported(
                "pagerduty Events API v1 (service_key)",
            ));
        }
        Ok(self.cfg.routing_key.expose().to_owned())
    }

    /// The v2 event, field for field as upstream sends it.
    pub fn payload(&self, d: &NotifyData, routing_key: &str) -> Result<Value, NotifyError> {
        let data = d.template_value();
        let t = |s: &str| self.templates.text(s, &data);
        let mut custom = Map::new();
        for (k, v) in &self.details {
            custom.insert(k.clone(), json!(t(v)?));
        }
        let source = if self.cfg.source.is_empty() {
            t(&self.cfg.client)?
        } else {
            t(&self.cfg.source)?
        };
        let mut payload = Map::new();
        payload.insert(
            "summary".into(),
            json!(truncate(t(&self.cfg.description)?, MAX_SUMMARY_CHARS)),
        );
        payload.insert("source".into(), json!(source));
        payload.insert("severity".into(), json!(t(&self.cfg.severity)?));
        for (key, tmpl) in [
            ("class", &self.cfg.class),
            ("component", &self.cfg.component),
            ("group", &self.cfg.group),
        ] {
            let v = t(tmpl)?;
            if !v.is_empty() {
                payload.insert(key.into(), json!(v));
            }
        }
        payload.insert("custom_details".into(), Value::Object(custom));

        let mut msg = Map::new();
        msg.insert("routing_key".into(), json!(routing_key));
        msg.insert("dedup_key".into(), json!(dedup_key(&d.group_key)));
        let action = if d.status == "firing" {
            "trigger"
        } else {
            "resolve"
        };
        msg.insert("event_action".into(), json!(action));
        msg.insert("payload".into(), Value::Object(payload));
        for (key, tmpl) in [
            ("client", &self.cfg.client),
            ("client_url", &self.cfg.client_url),
        ] {
            let v = t(tmpl)?;
            if !v.is_empty() {
                msg.insert(key.into(), json!(v));
            }
        }
        let mut images = Vec::new();
        for i in &self.cfg.images {
            let src = t(&i.src)?;
            if !src.is_empty() {
                images.push(json!({"src": src, "alt": t(&i.alt)?, "href": t(&i.href)?}));
            }
        }
        if !images.is_empty() {
            msg.insert("images".into(), Value::Array(images));
        }
        let mut links = Vec::new();
        for l in &self.cfg.links {
            let href = t(&l.href)?;
            if !href.is_empty() {
                links.push(json!({"href": href, "text": t(&l.text)?}));
            }
        }
        if !links.is_empty() {
            msg.insert("links".into(), Value::Array(links));
        }
        Ok(Value::Object(msg))
    }

    pub async fn send(&self, d: &NotifyData, timeout: Duration) -> Result<(), NotifyError> {
        let key = self.routing_key()?;
        let body = self.payload(d, &key)?;
        let url = self
            .cfg
            .url
            .as_ref()
            .map(|u| u.0.clone())
            .ok_or_else(|| NotifyError::Permanent("no PagerDuty URL".into()))?;
        // PagerDuty answers 429 when it rate-limits: worth waiting out.
        post_json_retrying(&self.client, &self.http, &url, &body, timeout, &[429]).await
    }
}

//! The OpsGenie integration (Alert API v2): a firing group creates (or
//! de-duplicates into) an alert whose alias is the group key's hash, a
//! resolved one closes it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::discord::truncate;
use super::pagerduty::dedup_key;
use super::webhook::{http_client, read_secret_file, send_json};
use super::{NotifyData, NotifyError, Templates};
use crate::config::{HttpClientConfig, OpsGenieConfig};

/// OpsGenie refuses longer messages.
const MAX_MESSAGE_CHARS: usize = 130;

const DEFAULT_MESSAGE: &str = r#"{{ template "opsgenie.default.message" . }}"#;
const DEFAULT_DESCRIPTION: &str = r#"{{ template "opsgenie.default.description" . }}"#;
const DEFAULT_SOURCE: &str = r#"{{ template "opsgenie.default.source" . }}"#;

#[derive(Debug)]
pub struct OpsGenie {
    cfg: OpsGenieConfig,
    http: HttpClientConfig,
    client: reqwest::Client,
    templates: Arc<Templates>,
}

/// One request the notification consists of.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: reqwest::Method,
    /// Appended to `api_url`.
    pub path: String,
    pub body: Value,
}

fn or_default<'a>(v: &'a str, def: &'a str) -> &'a str {
    if v.is_empty() { def } else { v }
}

/// A comma-separated list; blank items are dropped but, as upstream,
/// the others keep their surrounding spaces.
fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|t| !t.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

impl OpsGenie {
    pub fn new(
        c: &OpsGenieConfig,
        global: &HttpClientConfig,
        templates: Arc<Templates>,
    ) -> Result<Self, String> {
        let http = c.http_config.clone().unwrap_or_else(|| global.clone());
        Ok(OpsGenie {
            client: http_client(&http)?,
            cfg: c.clone(),
            http,
            templates,
        })
    }

    /// The requests for a notification, in the order they are sent.
    pub fn requests(&self, d: &NotifyData) -> Result<Vec<Request>, NotifyError> {
        let data = d.template_value();
        let t = |s: &str| self.templates.text(s, &data);
        let c = &self.cfg;
        let alias = dedup_key(&d.group_key);
        let source = t(or_default(&c.source, DEFAULT_SOURCE))?;
        if d.status != "firing" {
            return Ok(vec![Request {
                method: reqwest::Method::POST,
                path: format!("v2/alerts/{alias}/close?identifierType=alias"),
                body: json!({"source": source}),
            }]);
        }
        let message = truncate(
            t(or_default(&c.message, DEFAULT_MESSAGE))?,
            MAX_MESSAGE_CHARS,
        );
        let description = t(or_default(&c.description, DEFAULT_DESCRIPTION))?;
        // The group's common labels go along as details, under the
        // configured ones.
        let mut details = Map::new();
        for (k, v) in &d.common_labels {
            details.insert(k.clone(), json!(v));
        }
        for (k, v) in &c.details {
            details.insert(k.clone(), json!(t(v)?));
        }
        let mut responders = Vec::new();
        for r in &c.responders {
            let kind = t(&r.kind)?;
            if kind == "teams" {
                for team in t(&r.name)?.split(',').filter(|n| !n.is_empty()) {
                    responders.push(json!({"name": team, "type": "team"}));
                }
                continue;
            }
            let mut o = Map::new();
            for (key, v) in [("id", &r.id), ("name", &r.name), ("username", &r.username)] {
                let v = t(v)?;
                if !v.is_empty() {
                    o.insert(key.into(), json!(v));
                }
            }
            o.insert("type".into(), json!(kind));
            responders.push(Value::Object(o));
        }
        let mut body = Map::new();
        body.insert("alias".into(), json!(alias));
        body.insert("message".into(), json!(message));
        if !description.is_empty() {
            body.insert("description".into(), json!(description));
        }
        body.insert("details".into(), Value::Object(details));
        body.insert("source".into(), json!(source));
        if !responders.is_empty() {
            body.insert("responders".into(), Value::Array(responders));
        }
        let tags = split_list(&t(&c.tags)?);
        if !tags.is_empty() {
            body.insert("tags".into(), json!(tags));
        }
        for (key, v) in [
            ("note", &c.note),
            ("priority", &c.priority),
            ("entity", &c.entity),
        ] {
            let v = t(v)?;
            if !v.is_empty() {
                body.insert(key.into(), json!(v));
            }
        }
        let actions = split_list(&t(&c.actions)?);
        if !actions.is_empty() {
            body.insert("actions".into(), json!(actions));
        }
        let mut out = vec![Request {
            method: reqwest::Method::POST,
            path: "v2/alerts".into(),
            body: Value::Object(body),
        }];
        if c.update_alerts {
            out.push(Request {
                method: reqwest::Method::PUT,
                path: format!("v2/alerts/{alias}/message?identifierType=alias"),
                body: json!({"message": message}),
            });
            out.push(Request {
                method: reqwest::Method::PUT,
                path: format!("v2/alerts/{alias}/description?identifierType=alias"),
                body: json!({"description": description}),
            });
        }
        Ok(out)
    }

    pub async fn send(&self, d: &NotifyData, timeout: Duration) -> Result<(), NotifyError> {
        let key = if self.cfg.api_key_file.is_empty() {
            self.cfg.api_key.expose().to_owned()
        } else {
            read_secret_file(&self.cfg.api_key_file)?
        };
        let base = self
            .cfg
            .api_url
            .as_ref()
            .map(|u| u.0.clone())
            .ok_or_else(|| NotifyError::Permanent("no OpsGenie API URL".into()))?;
        // The API key replaces whatever credentials http_config names.
        let mut http = self.http.clone();
        http.basic_auth = None;
        http.authorization = Some(crate::config::Authorization {
            kind: "GenieKey".into(),
            credentials: pharos_config::Secret::new(key),
            credentials_file: String::new(),
        });
        for r in self.requests(d)? {
            let url = format!("{base}{}", r.path);
            send_json(
                &self.client,
                &http,
                r.method,
                &url,
                &r.body,
                timeout,
                &[429],
            )
            .await?;
        }
        Ok(())
    }
}

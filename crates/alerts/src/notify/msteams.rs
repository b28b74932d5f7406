//! The Microsoft Teams integration: a MessageCard POSTed to an incoming
//! webhook, coloured by status, as Alertmanager 0.26+ sends it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::webhook::{http_client, post_json, read_secret_file};
use super::{NotifyData, NotifyError, Templates};
use crate::config::{HttpClientConfig, MsTeamsConfig};

const COLOR_FIRING: &str = "8C1A1A";
const COLOR_RESOLVED: &str = "2DC72D";

const DEFAULT_TITLE: &str = r#"{{ template "msteams.default.title" . }}"#;
const DEFAULT_SUMMARY: &str = r#"{{ template "msteams.default.summary" . }}"#;
const DEFAULT_TEXT: &str = r#"{{ template "msteams.default.text" . }}"#;

#[derive(Debug)]
pub struct MsTeams {
    cfg: MsTeamsConfig,
    http: HttpClientConfig,
    client: reqwest::Client,
    templates: Arc<Templates>,
}

impl MsTeams {
    pub fn new(
        c: &MsTeamsConfig,
        global: &HttpClientConfig,
        templates: Arc<Templates>,
    ) -> Result<Self, String> {
        let http = c.http_config.clone().unwrap_or_else(|| global.clone());
        Ok(MsTeams {
            client: http_client(&http)?,
            cfg: c.clone(),
            http,
            templates,
        })
    }

    pub fn payload(&self, d: &NotifyData) -> Result<Value, NotifyError> {
        let data = d.template_value();
        let pick = |v: &str, def: &'static str| {
            if v.is_empty() {
                def.to_owned()
            } else {
                v.to_owned()
            }
        };
        let title = self
            .templates
            .text(&pick(&self.cfg.title, DEFAULT_TITLE), &data)?;
        let summary = self
            .templates
            .text(&pick(&self.cfg.summary, DEFAULT_SUMMARY), &data)?;
        let text = self
            .templates
            .text(&pick(&self.cfg.text, DEFAULT_TEXT), &data)?;
        let color = if d.status == "firing" {
            COLOR_FIRING
        } else {
            COLOR_RESOLVED
        };
        Ok(json!({
            "@context": "http://schema.org/extensions",
            "type": "MessageCard",
            "title": title,
            "summary": summary,
            "text": text,
            "themeColor": color,
        }))
    }

    pub async fn send(&self, d: &NotifyData, timeout: Duration) -> Result<(), NotifyError> {
        let url = match &self.cfg.webhook_url {
            Some(u) => u.expose().to_owned(),
            None => read_secret_file(&self.cfg.webhook_url_file)?,
        };
        let body = self.payload(d)?;
        post_json(&self.client, &self.http, &url, &body, timeout).await
    }
}

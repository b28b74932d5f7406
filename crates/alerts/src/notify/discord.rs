//! The Discord integration: one embed whose colour says the status,
//! POSTed to a channel webhook.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::webhook::{http_client, post_json, read_secret_file};
use super::{NotifyData, NotifyError, Templates};
use crate::config::{DiscordConfig, HttpClientConfig};

/// Discord refuses longer embed titles and descriptions.
const MAX_TITLE_CHARS: usize = 256;
const MAX_DESCRIPTION_CHARS: usize = 4096;

const RED: u32 = 0x992D22;
const GREEN: u32 = 0x2ECC71;

const DEFAULT_TITLE: &str = r#"{{ template "discord.default.title" . }}"#;
const DEFAULT_MESSAGE: &str = r#"{{ template "discord.default.message" . }}"#;

#[derive(Debug)]
pub struct Discord {
    cfg: DiscordConfig,
    http: HttpClientConfig,
    client: reqwest::Client,
    templates: Arc<Templates>,
}

/// Cuts `s` to `max` characters, the last one an ellipsis, as upstream's
/// `notify.Truncate` does.
pub(crate) fn truncate(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

impl Discord {
    pub fn new(
        c: &DiscordConfig,
        global: &HttpClientConfig,
        templates: Arc<Templates>,
    ) -> Result<Self, String> {
        let http = c.http_config.clone().unwrap_or_else(|| global.clone());
        Ok(Discord {
            client: http_client(&http)?,
            cfg: c.clone(),
            http,
            templates,
        })
    }

    pub fn payload(&self, d: &NotifyData) -> Result<Value, NotifyError> {
        let data = d.template_value();
        let or_default = |v: &str, def: &'static str| -> String {
            if v.is_empty() {
                def.to_owned()
            } else {
                v.to_owned()
            }
        };
        let title = self
            .templates
            .text(&or_default(&self.cfg.title, DEFAULT_TITLE), &data)?;
        let message = self
            .templates
            .text(&or_default(&self.cfg.message, DEFAULT_MESSAGE), &data)?;
        let color = if d.status == "firing" { RED } else { GREEN };
        Ok(json!({
            "content": "",
            "embeds": [{
                "title": truncate(title, MAX_TITLE_CHARS),
                "description": truncate(message, MAX_DESCRIPTION_CHARS),
                "color": color,
            }],
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

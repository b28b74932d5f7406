//! The Telegram integration: the Bot API's `sendMessage` to one chat.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::discord::truncate;
use super::webhook::{http_client, post_json, read_secret_file};
use super::{NotifyData, NotifyError, Templates};
use crate::config::{HttpClientConfig, TelegramConfig};

/// Telegram refuses longer messages.
const MAX_MESSAGE_CHARS: usize = 4096;

const DEFAULT_MESSAGE: &str = r#"{{ template "telegram.default.message" . }}"#;

#[derive(Debug)]
pub struct Telegram {
    cfg: TelegramConfig,
    http: HttpClientConfig,
    client: reqwest::Client,
    templates: Arc<Templates>,
}

impl Telegram {
    pub fn new(
        c: &TelegramConfig,
        global: &HttpClientConfig,
        templates: Arc<Templates>,
    ) -> Result<Self, String> {
        let http = c.http_config.clone().unwrap_or_else(|| global.clone());
        Ok(Telegram {
            client: http_client(&http)?,
            cfg: c.clone(),
            http,
            templates,
        })
    }

    /// Upstream's default; an empty `parse_mode` cannot be told from an
    /// absent one here, so it means HTML too.
    fn parse_mode(&self) -> &str {
        if self.cfg.parse_mode.is_empty() {
            "HTML"
        } else {
            &self.cfg.parse_mode
        }
    }

    /// The `sendMessage` parameters; the Bot API takes them all as strings.
    pub fn payload(&self, d: &NotifyData) -> Result<Value, NotifyError> {
        let data = d.template_value();
        let tmpl = if self.cfg.message.is_empty() {
            DEFAULT_MESSAGE
        } else {
            &self.cfg.message
        };
        let text = if self.parse_mode() == "HTML" {
            self.templates.html(tmpl, &data)?
        } else {
            self.templates.text(tmpl, &data)?
        };
        let mut p = json!({
            "chat_id": self.cfg.chat_id.to_string(),
            "text": truncate(text, MAX_MESSAGE_CHARS),
            "parse_mode": self.parse_mode(),
            "disable_web_page_preview": "true",
        });
        if self.cfg.disable_notifications {
            p["disable_notification"] = json!("true");
        }
        Ok(p)
    }

    pub async fn send(&self, d: &NotifyData, timeout: Duration) -> Result<(), NotifyError> {
        let token = if self.cfg.bot_token_file.is_empty() {
            self.cfg.bot_token.expose().to_owned()
        } else {
            read_secret_file(&self.cfg.bot_token_file)?
        };
        let base = self
            .cfg
            .api_url
            .as_ref()
            .map(|u| u.0.trim_end_matches('/').to_owned())
            .ok_or_else(|| NotifyError::Permanent("no Telegram API URL".into()))?;
        let body = self.payload(d)?;
        let url = format!("{base}/bot{token}/sendMessage");
        post_json(&self.client, &self.http, &url, &body, timeout).await
    }
}

//! The Webex integration: one markdown message to a room, authorized by
//! the receiver's `http_config.authorization` (a bot token).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::webhook::{http_client, post_json};
use super::{NotifyData, NotifyError, Templates};
use crate::config::{HttpClientConfig, WebexConfig};

/// Webex refuses longer messages (bytes, not characters).
const MAX_MESSAGE_BYTES: usize = 7439;

const DEFAULT_MESSAGE: &str = r#"{{ template "webex.default.message" . }}"#;

#[derive(Debug)]
pub struct Webex {
    cfg: WebexConfig,
    http: HttpClientConfig,
    client: reqwest::Client,
    templates: Arc<Templates>,
}

/// Cuts `s` to at most `max` bytes on a character boundary, ending in an
/// ellipsis when cut.
fn truncate_bytes(s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let ellipsis = '…';
    let mut end = max.saturating_sub(ellipsis.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = s[..end].to_owned();
    out.push(ellipsis);
    out
}

impl Webex {
    pub fn new(
        c: &WebexConfig,
        global: &HttpClientConfig,
        templates: Arc<Templates>,
    ) -> Result<Self, String> {
        let http = c.http_config.clone().unwrap_or_else(|| global.clone());
        Ok(Webex {
            client: http_client(&http)?,
            cfg: c.clone(),
            http,
            templates,
        })
    }

    pub fn payload(&self, d: &NotifyData) -> Result<Value, NotifyError> {
        let data = d.template_value();
        let tmpl = if self.cfg.message.is_empty() {
            DEFAULT_MESSAGE
        } else {
            &self.cfg.message
        };
        let message = truncate_bytes(self.templates.text(tmpl, &data)?, MAX_MESSAGE_BYTES);
        let mut body = json!({"markdown": message});
        if !self.cfg.room_id.is_empty() {
            body["roomId"] = json!(self.templates.text(&self.cfg.room_id, &data)?);
        }
        Ok(body)
    }

    pub async fn send(&self, d: &NotifyData, timeout: Duration) -> Result<(), NotifyError> {
        let url = self
            .cfg
            .api_url
            .as_ref()
            .map(|u| u.0.clone())
            .ok_or_else(|| NotifyError::Permanent("no Webex API URL".into()))?;
        let body = self.payload(d)?;
        post_json(&self.client, &self.http, &url, &body, timeout).await
    }
}

#[cfg(test)]
mod tests {
    use super::truncate_bytes;

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate_bytes("abc".into(), 3), "abc");
        assert_eq!(truncate_bytes("abcdef".into(), 5), "ab…");
        // 'é' is two bytes: never split.
        assert_eq!(truncate_bytes("éééé".into(), 6), "é…");
    }
}

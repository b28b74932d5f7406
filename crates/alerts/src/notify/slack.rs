//! The Slack integration: one message with one attachment, every text
//! field rendered from the templates, POSTed to an incoming-webhook URL.

use std::sync::Arc;
use std::time::Duration;

use pharos_template::Value as TValue;
use serde_json::{Map, Value, json};

use super::webhook::{http_client, post_json, read_secret_file};
use super::{NotifyData, NotifyError, Templates};
use crate::config::{HttpClientConfig, SlackConfig};

/// Slack cuts longer titles; upstream truncates first, to this many
/// characters, so the message is still accepted.
const MAX_TITLE_CHARS: usize = 1024;

#[derive(Debug)]
pub struct Slack {
    cfg: SlackConfig,
    http: HttpClientConfig,
    client: reqwest::Client,
    templates: Arc<Templates>,
}

fn put(obj: &mut Map<String, Value>, key: &str, v: String) {
    if !v.is_empty() {
        obj.insert(key.into(), Value::String(v));
    }
}

impl Slack {
    pub fn new(
        c: &SlackConfig,
        global: &HttpClientConfig,
        templates: Arc<Templates>,
    ) -> Result<Self, String> {
        let http = c.http_config.clone().unwrap_or_else(|| global.clone());
        Ok(Slack {
            client: http_client(&http)?,
            cfg: c.clone(),
            http,
            templates,
        })
    }

    fn t(&self, text: &str, data: &TValue) -> Result<String, NotifyError> {
        self.templates.text(text, data)
    }

    /// The message body, field for field as upstream's Slack request.
    pub fn payload(&self, d: &NotifyData) -> Result<Value, NotifyError> {
        let data = d.template_value();
        let c = &self.cfg;
        let title = self.t(&c.title, &data)?;
        let title = super::discord::truncate(title, MAX_TITLE_CHARS);
        let mut att = Map::new();
        put(&mut att, "title", title);
        put(&mut att, "title_link", self.t(&c.title_link, &data)?);
        put(&mut att, "pretext", self.t(&c.pretext, &data)?);
        att.insert("text".into(), json!(self.t(&c.text, &data)?));
        att.insert("fallback".into(), json!(self.t(&c.fallback, &data)?));
        att.insert("callback_id".into(), json!(self.t(&c.callback_id, &data)?));
        if !c.fields.is_empty() {
            let mut fields = Vec::with_capacity(c.fields.len());
            for f in &c.fields {
                fields.push(json!({
                    "title": self.t(&f.title, &data)?,
                    "value": self.t(&f.value, &data)?,
                    "short": f.short.unwrap_or(c.short_fields),
                }));
            }
            att.insert("fields".into(), Value::Array(fields));
        }
        if !c.actions.is_empty() {
            let mut actions = Vec::with_capacity(c.actions.len());
            for a in &c.actions {
                let mut o = Map::new();
                o.insert("type".into(), json!(self.t(&a.kind, &data)?));
                o.insert("text".into(), json!(self.t(&a.text, &data)?));
                put(&mut o, "url", self.t(&a.url, &data)?);
                put(&mut o, "style", self.t(&a.style, &data)?);
                put(&mut o, "name", self.t(&a.name, &data)?);
                put(&mut o, "value", self.t(&a.value, &data)?);
                if let Some(cf) = &a.confirm {
                    let mut co = Map::new();
                    co.insert("text".into(), json!(self.t(&cf.text, &data)?));
                    put(&mut co, "title", self.t(&cf.title, &data)?);
                    put(&mut co, "ok_text", self.t(&cf.ok_text, &data)?);
                    put(&mut co, "dismiss_text", self.t(&cf.dismiss_text, &data)?);
                    o.insert("confirm".into(), Value::Object(co));
                }
                actions.push(Value::Object(o));
            }
            att.insert("actions".into(), Value::Array(actions));
        }
        put(&mut att, "image_url", self.t(&c.image_url, &data)?);
        put(&mut att, "thumb_url", self.t(&c.thumb_url, &data)?);
        att.insert("footer".into(), json!(self.t(&c.footer, &data)?));
        put(&mut att, "color", self.t(&c.color, &data)?);
        let mrkdwn: Vec<String> = if c.mrkdwn_in.is_empty() {
            vec!["fallback".into(), "pretext".into(), "text".into()]
        } else {
            c.mrkdwn_in.clone()
        };
        att.insert("mrkdwn_in".into(), json!(mrkdwn));

        let mut req = Map::new();
        put(&mut req, "channel", self.t(&c.channel, &data)?);
        put(&mut req, "username", self.t(&c.username, &data)?);
        put(&mut req, "icon_emoji", self.t(&c.icon_emoji, &data)?);
        put(&mut req, "icon_url", self.t(&c.icon_url, &data)?);
        if c.link_names {
            req.insert("link_names".into(), json!(true));
        }
        req.insert("attachments".into(), json!([Value::Object(att)]));
        Ok(Value::Object(req))
    }

    pub async fn send(&self, d: &NotifyData, timeout: Duration) -> Result<(), NotifyError> {
        let url = match &self.cfg.api_url {
            Some(u) => u.expose().to_owned(),
            None => read_secret_file(&self.cfg.api_url_file)?,
        };
        let body = self.payload(d)?;
        post_json(&self.client, &self.http, &url, &body, timeout).await
    }
}

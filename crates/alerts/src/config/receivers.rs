//! `receivers:` and their integrations, with upstream's defaults (notably
//! which integrations send resolved notifications by default) and checks.
//!
//! Only parsing lives here: sending notifications is not built yet.

use std::collections::{BTreeMap, HashSet};

use pharos_config::{Duration, Secret};
use serde::{Deserialize, Serialize};

use super::{GlobalConfig, HostPort, SecretUrl, Url};

/// TLS settings (prometheus/common `tls_config`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    pub ca: String,
    pub cert: String,
    pub key: Secret,
    pub ca_file: String,
    pub cert_file: String,
    pub key_file: String,
    pub ca_ref: String,
    pub cert_ref: String,
    pub key_ref: String,
    pub server_name: String,
    pub insecure_skip_verify: bool,
    pub min_version: String,
    pub max_version: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub username_file: String,
    pub password: Secret,
    pub password_file: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Authorization {
    #[serde(rename = "type")]
    pub kind: String,
    pub credentials: Secret,
    pub credentials_file: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OAuth2 {
    pub client_id: String,
    pub client_secret: Secret,
    pub client_secret_file: String,
    pub scopes: Vec<String>,
    pub token_url: String,
    pub endpoint_params: BTreeMap<String, String>,
    pub tls_config: TlsConfig,
    pub proxy_url: String,
    // newer than the prometheus/common amtool 0.25 decodes: written only when set
    #[serde(skip_serializing_if = "String::is_empty")]
    pub no_proxy: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub proxy_from_environment: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy_connect_header: BTreeMap<String, Vec<Secret>>,
}

/// HTTP client settings (prometheus/common `http_config`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpClientConfig {
    pub basic_auth: Option<BasicAuth>,
    pub authorization: Option<Authorization>,
    pub oauth2: Option<OAuth2>,
    pub bearer_token: Secret,
    pub bearer_token_file: String,
    pub tls_config: TlsConfig,
    pub follow_redirects: bool,
    pub enable_http2: bool,
    pub proxy_url: String,
    // newer than the prometheus/common amtool 0.25 decodes: written only when set
    #[serde(skip_serializing_if = "String::is_empty")]
    pub no_proxy: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub proxy_from_environment: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub proxy_connect_header: BTreeMap<String, Vec<Secret>>,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        Self {
            basic_auth: None,
            authorization: None,
            oauth2: None,
            bearer_token: Secret::default(),
            bearer_token_file: String::new(),
            tls_config: TlsConfig::default(),
            follow_redirects: true,
            enable_http2: true,
            proxy_url: String::new(),
            no_proxy: String::new(),
            proxy_from_environment: false,
            proxy_connect_header: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    pub send_resolved: bool,
    pub to: String,
    pub from: String,
    pub hello: String,
    pub smarthost: HostPort,
    pub auth_username: String,
    pub auth_password: Secret,
    pub auth_password_file: String,
    pub auth_secret: Secret,
    pub auth_identity: String,
    pub headers: BTreeMap<String, String>,
    pub html: Option<String>,
    pub text: String,
    pub require_tls: Option<bool>,
    pub tls_config: TlsConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    pub send_resolved: bool,
    pub http_config: Option<HttpClientConfig>,
    pub url: Option<SecretUrl>,
    pub url_file: String,
    /// At most this many alerts per message; 0 means all.
    pub max_alerts: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            send_resolved: true,
            http_config: None,
            url: None,
            url_file: String::new(),
            max_alerts: 0,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackField {
    pub title: String,
    pub value: String,
    pub short: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackConfirm {
    pub text: String,
    pub title: String,
    pub ok_text: String,
    pub dismiss_text: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackAction {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: String,
    pub url: String,
    pub style: String,
    pub name: String,
    pub value: String,
    pub confirm: Option<SlackConfirm>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackConfig {
    pub send_resolved: bool,
    pub http_config: Option<HttpClientConfig>,
    pub api_url: Option<SecretUrl>,
    pub api_url_file: String,
    pub channel: String,
    pub username: String,
    pub color: String,
    pub title: String,
    pub title_link: String,
    pub pretext: String,
    pub text: String,
    pub fields: Vec<SlackField>,
    pub short_fields: bool,
    pub footer: String,
    pub fallback: String,
    pub callback_id: String,
    pub icon_emoji: String,
    pub icon_url: String,
    pub image_url: String,
    pub thumb_url: String,
    pub link_names: bool,
    pub mrkdwn_in: Vec<String>,
    pub actions: Vec<SlackAction>,
}

impl Default for SlackConfig {
    /// Upstream's default templates, so `/api/v2/status` shows the same.
    fn default() -> Self {
        Self {
            send_resolved: false,
            http_config: None,
            api_url: None,
            api_url_file: String::new(),
            channel: String::new(),
            username: r#"{{ template "slack.default.username" . }}"#.into(),
            color: r#"{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}"#.into(),
            title: r#"{{ template "slack.default.title" . }}"#.into(),
            title_link: r#"{{ template "slack.default.titlelink" . }}"#.into(),
            pretext: r#"{{ template "slack.default.pretext" . }}"#.into(),
            text: r#"{{ template "slack.default.text" . }}"#.into(),
            fields: Vec::new(),
            short_fields: false,
            footer: r#"{{ template "slack.default.footer" . }}"#.into(),
            fallback: r#"{{ template "slack.default.fallback" . }}"#.into(),
            callback_id: r#"{{ template "slack.default.callbackid" . }}"#.into(),
            icon_emoji: r#"{{ template "slack.default.iconemoji" . }}"#.into(),
            icon_url: r#"{{ template "slack.default.iconurl" . }}"#.into(),
            image_url: String::new(),
            thumb_url: String::new(),
            link_names: false,
            mrkdwn_in: Vec::new(),
            actions: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PagerdutyLink {
    pub href: String,
    pub text: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PagerdutyImage {
    pub src: String,
    pub alt: String,
    pub href: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PagerdutyConfig {
    pub send_resolved: bool,
    pub http_config: Option<HttpClientConfig>,
    pub service_key: Secret,
    pub service_key_file: String,
    pub routing_key: Secret,
    pub routing_key_file: String,
    pub url: Option<Url>,
    pub client: String,
    pub client_url: String,
    pub description: String,
    pub details: BTreeMap<String, String>,
    pub images: Vec<PagerdutyImage>,
    pub links: Vec<PagerdutyLink>,
    pub source: String,
    pub severity: String,
    pub class: String,
    pub component: String,
    pub group: String,
}

impl Default for PagerdutyConfig {
    fn default() -> Self {
        Self {
            send_resolved: true,
            http_config: None,
            service_key: Secret::default(),
            service_key_file: String::new(),
            routing_key: Secret::default(),
            routing_key_file: String::new(),
            url: None,
            client: r#"{{ template "pagerduty.default.client" . }}"#.into(),
            client_url: r#"{{ template "pagerduty.default.clientURL" . }}"#.into(),
            description: r#"{{ template "pagerduty.default.description" .}}"#.into(),
            details: BTreeMap::new(),
            images: Vec::new(),
            links: Vec::new(),
            source: String::new(),
            severity: "error".into(),
            class: String::new(),
            component: String::new(),
            group: String::new(),
        }
    }
}

/// Integrations parsed with their upstream fields and defaults whose
/// checks are few; kept together to keep this file short.
macro_rules! simple_config {
    ($(#[$m:meta])* $name:ident, resolved = $res:expr, { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            pub send_resolved: bool,
            pub http_config: Option<HttpClientConfig>,
            $($(#[$fm])* pub $field: $ty,)*
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    send_resolved: $res,
                    http_config: None,
                    $($field: Default::default(),)*
                }
            }
        }
    };
}

simple_config!(DiscordConfig, resolved = true, {
    webhook_url: Option<SecretUrl>,
    webhook_url_file: String,
    title: String,
    message: String,
});

simple_config!(
    /// Microsoft Teams (upstream 0.26+; accepted here ahead of 0.25).
    MsTeamsConfig, resolved = true, {
    webhook_url: Option<SecretUrl>,
    webhook_url_file: String,
    title: String,
    summary: String,
    text: String,
});

simple_config!(TelegramConfig, resolved = true, {
    api_url: Option<Url>,
    bot_token: Secret,
    bot_token_file: String,
    chat_id: i64,
    message: String,
    disable_notifications: bool,
    parse_mode: String,
});

simple_config!(OpsGenieConfig, resolved = true, {
    api_key: Secret,
    api_key_file: String,
    api_url: Option<Url>,
    message: String,
    description: String,
    source: String,
    details: BTreeMap<String, String>,
    entity: String,
    responders: Vec<OpsGenieResponder>,
    actions: String,
    tags: String,
    note: String,
    priority: String,
    update_alerts: bool,
});

simple_config!(WechatConfig, resolved = false, {
    api_secret: Secret,
    corp_id: String,
    message: String,
    api_url: Option<Url>,
    to_user: String,
    to_party: String,
    to_tag: String,
    agent_id: String,
    message_type: String,
});

simple_config!(VictorOpsConfig, resolved = true, {
    api_key: Secret,
    api_key_file: String,
    api_url: Option<Url>,
    routing_key: String,
    message_type: String,
    state_message: String,
    entity_display_name: String,
    monitoring_tool: String,
    custom_fields: BTreeMap<String, String>,
});

simple_config!(PushoverConfig, resolved = true, {
    user_key: Secret,
    user_key_file: String,
    token: Secret,
    token_file: String,
    title: String,
    message: String,
    url: String,
    url_title: String,
    sound: String,
    priority: String,
    #[serde(deserialize_with = "super::go_duration::opt::deserialize")]
    retry: Option<Duration>,
    #[serde(deserialize_with = "super::go_duration::opt::deserialize")]
    expire: Option<Duration>,
    html: bool,
});

simple_config!(SnsConfig, resolved = true, {
    api_url: String,
    sigv4: SigV4,
    topic_arn: String,
    phone_number: String,
    target_arn: String,
    subject: String,
    message: String,
    attributes: BTreeMap<String, String>,
});

simple_config!(WebexConfig, resolved = true, {
    api_url: Option<Url>,
    message: String,
    room_id: String,
});

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpsGenieResponder {
    pub id: String,
    pub name: String,
    pub username: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SigV4 {
    pub region: String,
    pub access_key: String,
    pub secret_key: Secret,
    pub profile: String,
    pub role_arn: String,
}

/// A named receiver and its integrations.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Receiver {
    pub name: String,
    pub discord_configs: Vec<DiscordConfig>,
    pub email_configs: Vec<EmailConfig>,
    pub pagerduty_configs: Vec<PagerdutyConfig>,
    pub slack_configs: Vec<SlackConfig>,
    pub webhook_configs: Vec<WebhookConfig>,
    pub opsgenie_configs: Vec<OpsGenieConfig>,
    pub wechat_configs: Vec<WechatConfig>,
    pub pushover_configs: Vec<PushoverConfig>,
    pub victorops_configs: Vec<VictorOpsConfig>,
    pub sns_configs: Vec<SnsConfig>,
    pub telegram_configs: Vec<TelegramConfig>,
    pub webex_configs: Vec<WebexConfig>,
    pub msteams_configs: Vec<MsTeamsConfig>,
}

/// Go's `textproto.CanonicalMIMEHeaderKey` for ASCII keys.
fn canonical_header(k: &str) -> String {
    let mut up = true;
    k.chars()
        .map(|c| {
            let out = if up {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            up = c == '-';
            out
        })
        .collect()
}

impl Receiver {
    /// Whether any integration is configured.
    pub fn has_integrations(&self) -> bool {
        !(self.discord_configs.is_empty()
            && self.email_configs.is_empty()
            && self.pagerduty_configs.is_empty()
            && self.slack_configs.is_empty()
            && self.webhook_configs.is_empty()
            && self.opsgenie_configs.is_empty()
            && self.wechat_configs.is_empty()
            && self.pushover_configs.is_empty()
            && self.victorops_configs.is_empty()
            && self.sns_configs.is_empty()
            && self.telegram_configs.is_empty()
            && self.webex_configs.is_empty()
            && self.msteams_configs.is_empty())
    }

    /// Upstream's per-integration checks, filling values from `global`.
    pub(super) fn validate_and_inherit(&mut self, g: &GlobalConfig) -> Result<(), String> {
        for ec in &mut self.email_configs {
            if ec.to.is_empty() {
                return Err("missing to address in email config".into());
            }
            let mut seen = HashSet::new();
            for k in ec.headers.keys() {
                let norm = canonical_header(k);
                if !seen.insert(norm.clone()) {
                    return Err(format!("duplicate header {norm:?} in email config"));
                }
            }
            if ec.smarthost.0.is_empty() {
                if g.smtp_smarthost.0.is_empty() {
                    return Err("no global SMTP smarthost set".into());
                }
                ec.smarthost = g.smtp_smarthost.clone();
            }
            if ec.from.is_empty() {
                if g.smtp_from.is_empty() {
                    return Err("no global SMTP from set".into());
                }
                ec.from = g.smtp_from.clone();
            }
            if ec.hello.is_empty() {
                ec.hello = g.smtp_hello.clone();
            }
            if ec.auth_username.is_empty() {
                ec.auth_username = g.smtp_auth_username.clone();
            }
            if ec.auth_password.is_empty() && ec.auth_password_file.is_empty() {
                ec.auth_password = g.smtp_auth_password.clone();
                ec.auth_password_file = g.smtp_auth_password_file.clone();
            }
            if ec.auth_secret.is_empty() {
                ec.auth_secret = g.smtp_auth_secret.clone();
            }
            if ec.auth_identity.is_empty() {
                ec.auth_identity = g.smtp_auth_identity.clone();
            }
            if ec.require_tls.is_none() {
                ec.require_tls = Some(g.smtp_require_tls);
            }
            if ec.html.is_none() {
                ec.html = Some(r#"{{ template "email.default.html" . }}"#.into());
            }
        }
        for sc in &mut self.slack_configs {
            if sc.api_url.is_some() && !sc.api_url_file.is_empty() {
                return Err("at most one of api_url & api_url_file must be configured".into());
            }
            for f in &sc.fields {
                if f.title.is_empty() {
                    return Err("missing title in Slack field configuration".into());
                }
                if f.value.is_empty() {
                    return Err("missing value in Slack field configuration".into());
                }
            }
            for a in &sc.actions {
                if a.kind.is_empty() {
                    return Err("missing type in Slack action configuration".into());
                }
                if a.text.is_empty() {
                    return Err("missing text in Slack action configuration".into());
                }
                if a.url.is_empty() && a.name.is_empty() {
                    return Err("missing name or url in Slack action configuration".into());
                }
                if a.confirm.as_ref().is_some_and(|c| c.text.is_empty()) {
                    return Err("missing text in Slack confirmation configuration".into());
                }
            }
            if sc.api_url.is_none() && sc.api_url_file.is_empty() {
                if g.slack_api_url.is_none() && g.slack_api_url_file.is_empty() {
                    return Err("no global Slack API URL set either inline or in a file".into());
                }
                sc.api_url = g.slack_api_url.clone();
                sc.api_url_file = g.slack_api_url_file.clone();
            }
        }
        for wh in &self.webhook_configs {
            match (&wh.url, wh.url_file.is_empty()) {
                (None, true) => return Err("one of url or url_file must be configured".into()),
                (Some(_), false) => {
                    return Err("at most one of url & url_file must be configured".into());
                }
                _ => {}
            }
        }
        for pd in &mut self.pagerduty_configs {
            if pd.routing_key.is_empty()
                && pd.service_key.is_empty()
                && pd.routing_key_file.is_empty()
                && pd.service_key_file.is_empty()
            {
                return Err("missing service or routing key in PagerDuty config".into());
            }
            if !pd.routing_key.is_empty() && !pd.routing_key_file.is_empty() {
                return Err(
                    "at most one of routing_key & routing_key_file must be configured".into(),
                );
            }
            if !pd.service_key.is_empty() && !pd.service_key_file.is_empty() {
                return Err(
                    "at most one of service_key & service_key_file must be configured".into(),
                );
            }
            if pd.url.is_none() {
                pd.url = Some(
                    g.pagerduty_url
                        .clone()
                        .ok_or("no global PagerDuty URL set")?,
                );
            }
        }
        for og in &mut self.opsgenie_configs {
            if !og.api_key.is_empty() && !og.api_key_file.is_empty() {
                return Err("at most one of api_key & api_key_file must be configured".into());
            }
            for r in &og.responders {
                if r.id.is_empty() && r.username.is_empty() && r.name.is_empty() {
                    return Err(format!(
                        "opsGenieConfig responder {:?} has to have at least one of id, username or name specified",
                        r.kind
                    ));
                }
            }
            if og.api_url.is_none() {
                og.api_url = Some(
                    g.opsgenie_api_url
                        .clone()
                        .ok_or("no global OpsGenie URL set")?,
                );
            }
            if og.api_key.is_empty() && og.api_key_file.is_empty() {
                if g.opsgenie_api_key.is_empty() && g.opsgenie_api_key_file.is_empty() {
                    return Err("no global OpsGenie API Key set either inline or in a file".into());
                }
                og.api_key = g.opsgenie_api_key.clone();
                og.api_key_file = g.opsgenie_api_key_file.clone();
            }
        }
        for wc in &mut self.wechat_configs {
            if wc.api_url.is_none() {
                wc.api_url = Some(g.wechat_api_url.clone().ok_or("no global Wechat URL set")?);
            }
            if wc.api_secret.is_empty() {
                if g.wechat_api_secret.is_empty() {
                    return Err("no global Wechat ApiSecret set".into());
                }
                wc.api_secret = g.wechat_api_secret.clone();
            }
            if wc.corp_id.is_empty() {
                if g.wechat_api_corp_id.is_empty() {
                    return Err("no global Wechat CorpID set".into());
                }
                wc.corp_id = g.wechat_api_corp_id.clone();
            }
            if !wc.message_type.is_empty()
                && !matches!(wc.message_type.as_str(), "text" | "markdown")
            {
                return Err(format!(
                    "weChat message type {:?} does not match valid options text|markdown",
                    wc.message_type
                ));
            }
        }
        for vo in &mut self.victorops_configs {
            if vo.routing_key.is_empty() {
                return Err("missing Routing key in VictorOps config".into());
            }
            if !vo.api_key.is_empty() && !vo.api_key_file.is_empty() {
                return Err("at most one of api_key & api_key_file must be configured".into());
            }
            for k in vo.custom_fields.keys() {
                if matches!(
                    k.as_str(),
                    "routing_key"
                        | "message_type"
                        | "state_message"
                        | "entity_display_name"
                        | "monitoring_tool"
                        | "entity_id"
                        | "entity_state"
                ) {
                    return Err(format!(
                        "victorOps config contains custom field {k} which cannot be used as it conflicts with the fixed/static fields"
                    ));
                }
            }
            if vo.api_url.is_none() {
                vo.api_url = Some(
                    g.victorops_api_url
                        .clone()
                        .ok_or("no global VictorOps URL set")?,
                );
            }
            if vo.api_key.is_empty() && vo.api_key_file.is_empty() {
                if g.victorops_api_key.is_empty() && g.victorops_api_key_file.is_empty() {
                    return Err("no global VictorOps API Key set".into());
                }
                vo.api_key = g.victorops_api_key.clone();
                vo.api_key_file = g.victorops_api_key_file.clone();
            }
        }
        for po in &self.pushover_configs {
            if po.user_key.is_empty() && po.user_key_file.is_empty() {
                return Err("missing user key in Pushover config".into());
            }
            if po.token.is_empty() && po.token_file.is_empty() {
                return Err("missing token in Pushover config".into());
            }
        }
        for sns in &self.sns_configs {
            if sns.target_arn.is_empty() && sns.topic_arn.is_empty() && sns.phone_number.is_empty()
            {
                return Err(
                    "must provide either a Target ARN, Topic ARN, or Phone Number for SNS config"
                        .into(),
                );
            }
        }
        for tg in &mut self.telegram_configs {
            if tg.bot_token.is_empty() && tg.bot_token_file.is_empty() {
                return Err("missing bot_token on telegram_config".into());
            }
            if tg.chat_id == 0 {
                return Err("missing chat_id on telegram_config".into());
            }
            if !matches!(
                tg.parse_mode.as_str(),
                "" | "Markdown" | "MarkdownV2" | "HTML"
            ) {
                return Err(
                    "unknown parse_mode on telegram_config, must be Markdown, MarkdownV2, HTML or empty string"
                        .into(),
                );
            }
            if tg.api_url.is_none() {
                tg.api_url = g.telegram_api_url.clone();
            }
        }
        for dc in &self.discord_configs {
            if dc.webhook_url.is_none() && dc.webhook_url_file.is_empty() {
                return Err("no discord webhook URL provided".into());
            }
        }
        for mt in &self.msteams_configs {
            if mt.webhook_url.is_none() && mt.webhook_url_file.is_empty() {
                return Err("one of webhook_url or webhook_url_file must be configured".into());
            }
        }
        for wx in &mut self.webex_configs {
            if wx.room_id.is_empty() {
                return Err("missing room_id on webex_config".into());
            }
            let has_auth = wx
                .http_config
                .as_ref()
                .and_then(|h| h.authorization.as_ref())
                .is_some_and(|a| !a.credentials.is_empty() || !a.credentials_file.is_empty());
            if !has_auth {
                return Err("missing webex_configs.http_config.authorization".into());
            }
            if wx.api_url.is_none() {
                wx.api_url = Some(g.webex_api_url.clone().ok_or("no global Webex URL set")?);
            }
        }
        Ok(())
    }
}

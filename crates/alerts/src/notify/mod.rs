//! Notification integrations: the data a flush hands them (upstream's
//! `template.Data`), the default templates and the senders (webhook,
//! email, slack, discord, pagerduty v2, opsgenie, webex, telegram). The
//! retry loop and its metrics (upstream's `RetryStage`) are in `driver`.
//!
//! Receivers of other kinds (pushover, victorops, sns, wechat,
//! and pagerduty's v1 `service_key`) are parsed by `config` but have no
//! sender: a notification to one fails with [`NotifyError::Unsupported`],
//! so it is counted and logged, never silently dropped.

pub mod discord;
pub mod email;
pub mod msteams;
pub mod opsgenie;
pub mod pagerduty;
pub mod slack;
pub mod telegram;
pub mod webex;
pub mod webhook;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use pharos_template::am::{Alert as TAlert, Alerts as TAlerts, Data as TData, Kv};
use pharos_template::time::GoTime;
use pharos_template::{ExecOptions, Template, Value, funcs};

use crate::LabelSet;
use crate::config::{Config, Receiver};
use crate::dispatch::Integration;
use crate::store::Alert;
use crate::time::Millis;

/// Our default notification templates, defining upstream's names.
pub const DEFAULT_TEMPLATES: &str = include_str!("../../templates/default.tmpl");

/// Why one attempt to notify failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// Worth trying again before the next flush (network error, 5xx).
    #[error("{0}")]
    Retryable(String),
    /// Trying again will not help (4xx, bad template, bad address).
    #[error("{0}")]
    Permanent(String),
    /// No sender is built for this kind of integration yet.
    #[error("{0} notifications are not implemented yet in pharos")]
    Unsupported(&'static str),
}

impl NotifyError {
    pub fn retryable(&self) -> bool {
        matches!(self, Self::Retryable(_))
    }
}

/// Template parsing errors, found when a config is loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateLoadError {
    #[error("invalid template pattern {pattern:?}: {reason}")]
    Pattern { pattern: String, reason: String },
    #[error("cannot read template file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("failed to parse template {name}: {reason}")]
    Parse { name: String, reason: String },
}

/// One notification as integrations and templates see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyData {
    pub receiver: String,
    pub status: &'static str,
    /// Firing and resolved alerts in group order.
    pub alerts: Vec<Alert>,
    pub group_labels: LabelSet,
    pub common_labels: LabelSet,
    pub common_annotations: LabelSet,
    pub external_url: String,
    pub group_key: String,
    /// When the flush happened, which decides each alert's status.
    pub now: Millis,
}

fn common(sets: &[&LabelSet]) -> LabelSet {
    let Some((first, rest)) = sets.split_first() else {
        return LabelSet::new();
    };
    first
        .iter()
        .filter(|(k, v)| rest.iter().all(|s| s.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl NotifyData {
    pub fn new(
        receiver: &str,
        group_key: &str,
        group_labels: &LabelSet,
        alerts: Vec<Alert>,
        external_url: &str,
        now: Millis,
    ) -> Self {
        let labels: Vec<&LabelSet> = alerts.iter().map(|a| &a.labels).collect();
        let annotations: Vec<&LabelSet> = alerts.iter().map(|a| &a.annotations).collect();
        let firing = alerts.iter().any(|a| !a.resolved_at(now));
        NotifyData {
            receiver: receiver.to_owned(),
            status: if firing { "firing" } else { "resolved" },
            common_labels: common(&labels),
            common_annotations: common(&annotations),
            group_labels: group_labels.clone(),
            alerts,
            external_url: external_url.to_owned(),
            group_key: group_key.to_owned(),
            now,
        }
    }

    /// The end time notifications show: upstream hides an end that has
    /// not been reached yet behind Go's zero time.
    pub fn shown_ends_at(&self, a: &Alert) -> Option<Millis> {
        a.resolved_at(self.now).then_some(a.ends_at)
    }

    pub fn alert_status(&self, a: &Alert) -> &'static str {
        if a.resolved_at(self.now) {
            "resolved"
        } else {
            "firing"
        }
    }

    /// The value templates see as dot.
    pub fn template_value(&self) -> Value {
        let kv = |l: &LabelSet| Kv(l.clone());
        TData {
            receiver: self.receiver.clone(),
            status: self.status.to_owned(),
            alerts: TAlerts(
                self.alerts
                    .iter()
                    .map(|a| TAlert {
                        status: self.alert_status(a).to_owned(),
                        labels: kv(&a.labels),
                        annotations: kv(&a.annotations),
                        starts_at: GoTime::from_unix_millis(a.starts_at),
                        ends_at: if a.resolved_at(self.now) {
                            GoTime::from_unix_millis(a.ends_at)
                        } else {
                            GoTime::zero()
                        },
                        generator_url: a.generator_url.clone(),
                        fingerprint: format!("{:016x}", a.fingerprint()),
                    })
                    .collect(),
            ),
            group_labels: kv(&self.group_labels),
            common_labels: kv(&self.common_labels),
            common_annotations: kv(&self.common_annotations),
            external_url: self.external_url.clone(),
        }
        .into_value()
    }
}

/// The template set notifications render with: our defaults, then the
/// user's `templates:` files, which may redefine any name.
#[derive(Debug, Clone)]
pub struct Templates {
    tmpl: Template,
}

impl Templates {
    pub fn defaults() -> Result<Self, TemplateLoadError> {
        let mut tmpl = Template::new(&funcs::alertmanager());
        tmpl.add("default.tmpl", DEFAULT_TEMPLATES)
            .map_err(|e| TemplateLoadError::Parse {
                name: "default.tmpl".into(),
                reason: e.to_string(),
            })?;
        Ok(Templates { tmpl })
    }

    /// Defaults plus the files matching `patterns`; a relative pattern is
    /// taken from `base` (the config file's directory, as upstream).
    pub fn load(patterns: &[String], base: Option<&Path>) -> Result<Self, TemplateLoadError> {
        let mut t = Self::defaults()?;
        for p in patterns {
            let full = match base {
                Some(b) if Path::new(p).is_relative() => b.join(p),
                _ => Path::new(p).to_path_buf(),
            };
            let pattern = full.to_string_lossy().into_owned();
            let paths = glob::glob(&pattern).map_err(|e| TemplateLoadError::Pattern {
                pattern: pattern.clone(),
                reason: e.to_string(),
            })?;
            let mut files: Vec<_> = paths.filter_map(Result::ok).collect();
            files.sort();
            for f in files {
                let text = std::fs::read_to_string(&f).map_err(|e| TemplateLoadError::Read {
                    path: f.display().to_string(),
                    reason: e.to_string(),
                })?;
                let name = f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                t.tmpl
                    .add(&name, &text)
                    .map_err(|e| TemplateLoadError::Parse {
                        name: f.display().to_string(),
                        reason: e.to_string(),
                    })?;
            }
        }
        Ok(t)
    }

    /// Renders `text` (which may call any defined template) as plain text.
    pub fn text(&self, text: &str, data: &Value) -> Result<String, NotifyError> {
        self.tmpl
            .execute_text(text, data, &ExecOptions::zero())
            .map_err(|e| NotifyError::Permanent(format!("template error: {e}")))
    }

    /// Renders `text` with HTML escaping, as upstream renders email HTML.
    pub fn html(&self, text: &str, data: &Value) -> Result<String, NotifyError> {
        self.tmpl
            .execute_text(text, data, &ExecOptions::html())
            .map_err(|e| NotifyError::Permanent(format!("template error: {e}")))
    }
}

/// One integration's sender.
#[derive(Debug)]
pub enum Sender {
    Webhook(webhook::Webhook),
    Email(email::Email),
    Slack(slack::Slack),
    Discord(discord::Discord),
    MsTeams(msteams::MsTeams),
    PagerDuty(pagerduty::PagerDuty),
    OpsGenie(opsgenie::OpsGenie),
    Webex(webex::Webex),
    Telegram(telegram::Telegram),
    Unsupported(&'static str),
}

impl Sender {
    pub async fn send(&self, data: &NotifyData, timeout: Duration) -> Result<(), NotifyError> {
        match self {
            Sender::Webhook(w) => w.send(data, timeout).await,
            Sender::Email(e) => e.send(data, timeout).await,
            Sender::Slack(s) => s.send(data, timeout).await,
            Sender::Discord(s) => s.send(data, timeout).await,
            Sender::MsTeams(s) => s.send(data, timeout).await,
            Sender::PagerDuty(s) => s.send(data, timeout).await,
            Sender::OpsGenie(s) => s.send(data, timeout).await,
            Sender::Webex(s) => s.send(data, timeout).await,
            Sender::Telegram(s) => s.send(data, timeout).await,
            Sender::Unsupported(kind) => Err(NotifyError::Unsupported(kind)),
        }
    }
}

/// Every integration of a config with its sender, built once per load.
#[derive(Debug, Default)]
pub struct Notifiers {
    senders: HashMap<(String, &'static str, usize), Arc<Sender>>,
}

impl Notifiers {
    /// Builds the senders of every receiver. A sender that cannot be
    /// built (an unreadable CA file, say) is an error naming the receiver.
    pub fn build(config: &Config, templates: &Arc<Templates>) -> Result<Self, String> {
        let mut senders = HashMap::new();
        for r in &config.receivers {
            for i in crate::dispatch::integrations(r) {
                let s = Self::sender(config, r, &i, templates)
                    .map_err(|e| format!("receiver {:?}: {e}", r.name))?;
                senders.insert((i.receiver.clone(), i.kind, i.index), Arc::new(s));
            }
        }
        Ok(Notifiers { senders })
    }

    fn sender(
        config: &Config,
        r: &Receiver,
        i: &Integration,
        templates: &Arc<Templates>,
    ) -> Result<Sender, String> {
        Ok(match i.kind {
            "webhook" => match r.webhook_configs.get(i.index) {
                Some(c) => Sender::Webhook(webhook::Webhook::new(c, &config.global.http_config)?),
                None => Sender::Unsupported("webhook"),
            },
            "email" => match r.email_configs.get(i.index) {
                Some(c) => Sender::Email(email::Email::new(c, templates.clone())?),
                None => Sender::Unsupported("email"),
            },
            "slack" => match r.slack_configs.get(i.index) {
                Some(c) => Sender::Slack(slack::Slack::new(
                    c,
                    &config.global.http_config,
                    templates.clone(),
                )?),
                None => Sender::Unsupported("slack"),
            },
            "msteams" => match r.msteams_configs.get(i.index) {
                Some(c) => Sender::MsTeams(msteams::MsTeams::new(
                    c,
                    &config.global.http_config,
                    templates.clone(),
                )?),
                None => Sender::Unsupported("msteams"),
            },
            "discord" => match r.discord_configs.get(i.index) {
                Some(c) => Sender::Discord(discord::Discord::new(
                    c,
                    &config.global.http_config,
                    templates.clone(),
                )?),
                None => Sender::Unsupported("discord"),
            },
            "pagerduty" => match r.pagerduty_configs.get(i.index) {
                Some(c) => Sender::PagerDuty(pagerduty::PagerDuty::new(
                    c,
                    &config.global.http_config,
                    templates.clone(),
                )?),
                None => Sender::Unsupported("pagerduty"),
            },
            "opsgenie" => match r.opsgenie_configs.get(i.index) {
                Some(c) => Sender::OpsGenie(opsgenie::OpsGenie::new(
                    c,
                    &config.global.http_config,
                    templates.clone(),
                )?),
                None => Sender::Unsupported("opsgenie"),
            },
            "webex" => match r.webex_configs.get(i.index) {
                Some(c) => Sender::Webex(webex::Webex::new(
                    c,
                    &config.global.http_config,
                    templates.clone(),
                )?),
                None => Sender::Unsupported("webex"),
            },
            "telegram" => match r.telegram_configs.get(i.index) {
                Some(c) => Sender::Telegram(telegram::Telegram::new(
                    c,
                    &config.global.http_config,
                    templates.clone(),
                )?),
                None => Sender::Unsupported("telegram"),
            },
            other => Sender::Unsupported(other),
        })
    }

    pub fn get(&self, i: &Integration) -> Option<Arc<Sender>> {
        self.senders
            .get(&(i.receiver.clone(), i.kind, i.index))
            .cloned()
    }
}

/// Upstream's flush deadline: the group interval, but at least 10s.
pub fn flush_timeout(group_interval: Duration) -> Duration {
    group_interval.max(Duration::from_secs(10))
}

/// Upstream's exponential back-off between attempts: 500ms growing by
/// half each time, capped at a minute, with ±50% jitter so many groups
/// failing together do not retry in lock step.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let base = 0.5 * 1.5f64.powi(attempt.min(30) as i32);
    let base = base.min(60.0);
    let j = jitter.clamp(0.0, 1.0);
    Duration::from_secs_f64(base * (0.5 + j))
}

/// A cheap jitter source; the quality of randomness does not matter here.
pub(crate) fn jitter() -> f64 {
    let mut b = [0u8; 2];
    if getrandom::getrandom(&mut b).is_err() {
        return 0.5;
    }
    f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX)
}

/// Go's zero `time.Time` as JSON.
pub const GO_ZERO_TIME_JSON: &str = "0001-01-01T00:00:00Z";

/// Go's `time.Time` JSON form: RFC 3339 with as many fraction digits as
/// needed, in UTC.
pub fn go_time_json(ms: Millis) -> String {
    let s = crate::time::format_ms(ms);
    // format_ms always writes ".mmmZ".
    let (head, frac) = s.split_at(s.len() - 5);
    let digits = frac[1..4].trim_end_matches('0');
    if digits.is_empty() {
        format!("{head}Z")
    } else {
        format!("{head}.{digits}Z")
    }
}

#[cfg(test)]
mod tests;

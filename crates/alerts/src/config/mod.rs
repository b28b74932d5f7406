//! The user's `alertmanager.yml`, parsed and validated with upstream's
//! strictness and messages (Alertmanager 0.25 `config` package).
//!
//! Parsing is serde with `deny_unknown_fields`; the checks upstream does in
//! its `UnmarshalYAML` hooks run afterwards in [`Config::validate`], so a
//! config is rejected by the same rules, though when a file has several
//! problems the first one reported can differ.

mod receivers;
mod role;
mod timeinterval;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use pharos_config::{Duration, Secret};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use receivers::*;
pub use role::AlertsConfig;
pub use timeinterval::{DayRange, TimeInterval, TimeRange};

use crate::matchers::{Matcher, matcher_string, parse_matchers};

/// A failure to load `alertmanager.yml`. The message is what upstream
/// prints, so `amtool check-config` users recognise it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    #[error("open {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Marks errors raised by our own `Deserialize` checks: upstream raises
/// those from `UnmarshalYAML` hooks, and go-yaml prints them without a
/// line number, so [`yaml_error`] does too.
const HOOK_MARK: &str = "\u{1}";

pub(crate) fn hook_error<E: serde::de::Error>(msg: impl std::fmt::Display) -> E {
    E::custom(format!("{HOOK_MARK}{msg}"))
}

fn invalid(msg: impl Into<String>) -> ConfigFileError {
    ConfigFileError::Invalid(msg.into())
}

/// Durations as Prometheus' `model.Duration` reads them from YAML, with
/// its error text.
pub(crate) mod go_duration {
    use pharos_config::Duration;
    use serde::{Deserialize, Deserializer};

    fn parse<E: serde::de::Error>(s: &str) -> Result<Duration, E> {
        s.parse()
            .map_err(|_| super::hook_error(format!("not a valid duration string: {s:?}")))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        parse(&String::deserialize(d)?)
    }

    pub mod opt {
        use super::*;

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|s| parse(&s))
                .transpose()
        }
    }
}

/// A URL restricted to http(s) with a host, as upstream's `config.URL`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Url(pub String);

impl Url {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (scheme, rest) = s.split_once("://").unwrap_or(("", s));
        if scheme != "http" && scheme != "https" {
            return Err(format!("unsupported scheme {scheme:?} for URL"));
        }
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
        if host.is_empty() {
            return Err("missing host for URL".into());
        }
        Ok(Url(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for Url {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Url::parse(&s).map_err(hook_error)
    }
}

/// A URL that carries a credential (Slack, Discord, webhook): shown as
/// `<secret>`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(pub Url);

impl SecretUrl {
    pub fn expose(&self) -> &str {
        &self.0.0
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<secret>")
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Url::deserialize(d).map(SecretUrl)
    }
}

/// `host:port` (`smtp_smarthost`); the port is required.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct HostPort(pub String);

impl<'de> Deserialize<'de> for HostPort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Ok(HostPort(s));
        }
        let port = if let Some(rest) = s.strip_prefix('[') {
            rest.split_once("]:").map(|(_, p)| p)
        } else {
            match s.rsplit_once(':') {
                Some((h, _)) if h.contains(':') => {
                    return Err(hook_error(format!(
                        "address {s}: too many colons in address"
                    )));
                }
                Some((_, p)) => Some(p),
                None => None,
            }
        };
        match port {
            None => Err(hook_error(format!("address {s}: missing port in address"))),
            Some("") => Err(hook_error(format!("address {s:?}: port cannot be empty"))),
            Some(_) => Ok(HostPort(s)),
        }
    }
}

/// A list of matcher strings (`matchers:`, `source_matchers:`...), parsed
/// when read and written back in upstream's normalised form.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MatcherList(pub Vec<Matcher>);

impl Serialize for MatcherList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(matcher_string))
    }
}

impl<'de> Deserialize<'de> for MatcherList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let lines = Vec::<String>::deserialize(d)?;
        let mut out = Vec::new();
        for line in &lines {
            out.extend(parse_matchers(line).map_err(hook_error)?);
        }
        Ok(MatcherList(out))
    }
}

/// Global defaults (`global:`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GlobalConfig {
    #[serde(deserialize_with = "go_duration::deserialize")]
    pub resolve_timeout: Duration,
    pub http_config: HttpClientConfig,
    pub smtp_from: String,
    pub smtp_hello: String,
    pub smtp_smarthost: HostPort,
    pub smtp_auth_username: String,
    pub smtp_auth_password: Secret,
    pub smtp_auth_password_file: String,
    pub smtp_auth_secret: Secret,
    pub smtp_auth_identity: String,
    pub smtp_require_tls: bool,
    pub slack_api_url: Option<SecretUrl>,
    pub slack_api_url_file: String,
    pub pagerduty_url: Option<Url>,
    pub opsgenie_api_url: Option<Url>,
    pub opsgenie_api_key: Secret,
    pub opsgenie_api_key_file: String,
    pub wechat_api_url: Option<Url>,
    pub wechat_api_secret: Secret,
    pub wechat_api_corp_id: String,
    pub victorops_api_url: Option<Url>,
    pub victorops_api_key: Secret,
    pub victorops_api_key_file: String,
    pub telegram_api_url: Option<Url>,
    pub webex_api_url: Option<Url>,
}

fn url(s: &str) -> Option<Url> {
    Some(Url(s.to_owned()))
}

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            resolve_timeout: Duration::from_secs(300),
            http_config: HttpClientConfig::default(),
            smtp_from: String::new(),
            smtp_hello: "localhost".into(),
            smtp_smarthost: HostPort::default(),
            smtp_auth_username: String::new(),
            smtp_auth_password: Secret::default(),
            smtp_auth_password_file: String::new(),
            smtp_auth_secret: Secret::default(),
            smtp_auth_identity: String::new(),
            smtp_require_tls: true,
            slack_api_url: None,
            slack_api_url_file: String::new(),
            pagerduty_url: url("https://events.pagerduty.com/v2/enqueue"),
            opsgenie_api_url: url("https://api.opsgenie.com/"),
            opsgenie_api_key: Secret::default(),
            opsgenie_api_key_file: String::new(),
            wechat_api_url: url("https://qyapi.weixin.qq.com/cgi-bin/"),
            wechat_api_secret: Secret::default(),
            wechat_api_corp_id: String::new(),
            victorops_api_url: url(
                "https://alert.victorops.com/integrations/generic/20131114/alert/",
            ),
            victorops_api_key: Secret::default(),
            victorops_api_key_file: String::new(),
            telegram_api_url: url("https://api.telegram.org"),
            webex_api_url: url("https://webexapis.com/v1/messages"),
        }
    }
}

/// A node of the routing tree as written (`route:`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Route {
    pub receiver: String,
    pub group_by: Vec<String>,
    /// Deprecated upstream but still accepted: equality matchers.
    #[serde(rename = "match")]
    pub match_eq: BTreeMap<String, String>,
    /// Deprecated upstream but still accepted: anchored regex matchers.
    pub match_re: BTreeMap<String, String>,
    pub matchers: MatcherList,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
    #[serde(rename = "continue")]
    pub continue_matching: bool,
    pub routes: Vec<Route>,
    #[serde(deserialize_with = "go_duration::opt::deserialize")]
    pub group_wait: Option<Duration>,
    #[serde(deserialize_with = "go_duration::opt::deserialize")]
    pub group_interval: Option<Duration>,
    #[serde(deserialize_with = "go_duration::opt::deserialize")]
    pub repeat_interval: Option<Duration>,
}

/// `inhibit_rules:` entries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InhibitRule {
    pub source_match: BTreeMap<String, String>,
    pub source_match_re: BTreeMap<String, String>,
    pub source_matchers: MatcherList,
    pub target_match: BTreeMap<String, String>,
    pub target_match_re: BTreeMap<String, String>,
    pub target_matchers: MatcherList,
    pub equal: Vec<String>,
}

impl InhibitRule {
    /// Source matchers from all three spellings.
    pub fn all_source_matchers(&self) -> Vec<Matcher> {
        legacy_matchers(
            &self.source_match,
            &self.source_match_re,
            &self.source_matchers,
        )
    }

    /// Target matchers from all three spellings.
    pub fn all_target_matchers(&self) -> Vec<Matcher> {
        legacy_matchers(
            &self.target_match,
            &self.target_match_re,
            &self.target_matchers,
        )
    }
}

/// Builds one matcher list from `match`, `match_re` and `matchers`; the
/// regexes were compiled once in [`Config::validate`], so they cannot fail
/// here, and a failure would only drop that matcher.
pub(crate) fn legacy_matchers(
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, String>,
    list: &MatcherList,
) -> Vec<Matcher> {
    let mut out: Vec<Matcher> = eq.iter().map(|(k, v)| Matcher::equal(k, v)).collect();
    out.extend(
        re.iter()
            .filter_map(|(k, v)| Matcher::new(crate::matchers::MatchOp::Regex, k, v).ok()),
    );
    out.extend(list.0.iter().cloned());
    out
}

/// A named set of time intervals (`time_intervals:`/`mute_time_intervals:`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedTimeInterval {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub time_intervals: Vec<TimeInterval>,
}

/// The whole `alertmanager.yml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub global: GlobalConfig,
    #[serde(default)]
    pub route: Option<Route>,
    #[serde(default)]
    pub inhibit_rules: Vec<InhibitRule>,
    #[serde(default)]
    pub receivers: Vec<Receiver>,
    #[serde(default)]
    pub templates: Vec<String>,
    #[serde(default)]
    pub mute_time_intervals: Vec<NamedTimeInterval>,
    #[serde(default)]
    pub time_intervals: Vec<NamedTimeInterval>,
}

impl Default for Config {
    /// What Pharos runs without an `alertmanager.yml`: one route to a
    /// receiver that has no integrations, so alerts are kept, grouped and
    /// shown but sent nowhere.
    fn default() -> Self {
        Config {
            global: GlobalConfig::default(),
            route: Some(Route {
                receiver: DEFAULT_RECEIVER.into(),
                ..Route::default()
            }),
            inhibit_rules: Vec::new(),
            receivers: vec![Receiver {
                name: DEFAULT_RECEIVER.into(),
                ..Receiver::default()
            }],
            templates: Vec::new(),
            mute_time_intervals: Vec::new(),
            time_intervals: Vec::new(),
        }
    }
}

/// The receiver of the built-in default config.
pub const DEFAULT_RECEIVER: &str = "default";

impl Config {
    /// Parses and validates `text`.
    pub fn load(text: &str) -> Result<Config, ConfigFileError> {
        let mut cfg: Config = if text.trim().is_empty() || is_only_comments(text) {
            return Err(invalid("no route provided in config"));
        } else {
            serde_yaml::from_str(text).map_err(yaml_error)?
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads and validates `path`. Relative `templates` globs are resolved
    /// against the file's directory, as upstream does.
    pub fn load_file(path: &Path) -> Result<Config, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut cfg = Config::load(&text)?;
        if let Some(dir) = path.parent() {
            for t in &mut cfg.templates {
                if Path::new(t).is_relative() {
                    *t = dir.join(&*t).display().to_string();
                }
            }
        }
        Ok(cfg)
    }

    /// The root route; [`Config::load`] guarantees there is one.
    pub fn root_route(&self) -> &Route {
        static EMPTY: std::sync::OnceLock<Route> = std::sync::OnceLock::new();
        self.route
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(Route::default))
    }

    /// The named time interval (from `time_intervals` or the deprecated
    /// `mute_time_intervals`).
    pub fn time_interval(&self, name: &str) -> Option<&NamedTimeInterval> {
        self.time_intervals
            .iter()
            .chain(&self.mute_time_intervals)
            .find(|t| t.name == name)
    }

    /// Whether a route with these interval names is muted at `now`: inside
    /// any mute interval, or outside all of its active intervals. An
    /// interval that cannot be evaluated (time zone) does not mute.
    pub fn time_muted(&self, mute: &[String], active: &[String], now: crate::time::Millis) -> bool {
        let within = |name: &String| {
            self.time_interval(name).is_some_and(|t| {
                t.time_intervals.iter().any(|ti| match ti.contains(now) {
                    Ok(hit) => hit,
                    Err(e) => {
                        tracing::warn!(interval = %name, error = %e, "time interval not evaluated");
                        false
                    }
                })
            })
        };
        mute.iter().any(within) || (!active.is_empty() && !active.iter().any(within))
    }

    /// The config as YAML with every secret masked, as `/api/v2/status`
    /// shows it.
    pub fn to_masked_yaml(&self) -> String {
        let value = serde_yaml::to_value(self).unwrap_or(serde_yaml::Value::Null);
        let value = prune(value).unwrap_or(serde_yaml::Value::Null);
        serde_yaml::to_string(&value).unwrap_or_default()
    }

    /// Upstream's checks, in upstream's order as far as a two-pass parser
    /// allows.
    pub fn validate(&mut self) -> Result<(), ConfigFileError> {
        let route = self
            .route
            .as_ref()
            .ok_or_else(|| invalid("no route provided in config"))?;
        if route.continue_matching {
            return Err(invalid("cannot have continue in root route"));
        }
        validate_route(route)?;
        for rule in &self.inhibit_rules {
            for m in [&rule.source_match, &rule.target_match] {
                check_label_names(m.keys())?;
            }
            for m in [&rule.source_match_re, &rule.target_match_re] {
                check_regexps(m)?;
            }
        }
        for ti in self.mute_time_intervals.iter() {
            if ti.name.is_empty() {
                return Err(invalid("missing name in mute time interval"));
            }
        }
        for ti in self.time_intervals.iter() {
            if ti.name.is_empty() {
                return Err(invalid("missing name in time interval"));
            }
        }
        let g = &self.global;
        if g.slack_api_url.is_some() && !g.slack_api_url_file.is_empty() {
            return Err(invalid(
                "at most one of slack_api_url & slack_api_url_file must be configured",
            ));
        }
        if !g.opsgenie_api_key.is_empty() && !g.opsgenie_api_key_file.is_empty() {
            return Err(invalid(
                "at most one of opsgenie_api_key & opsgenie_api_key_file must be configured",
            ));
        }
        if !g.victorops_api_key.is_empty() && !g.victorops_api_key_file.is_empty() {
            return Err(invalid(
                "at most one of victorops_api_key & victorops_api_key_file must be configured",
            ));
        }
        if !g.smtp_auth_password.is_empty() && !g.smtp_auth_password_file.is_empty() {
            return Err(invalid(
                "at most one of smtp_auth_password & smtp_auth_password_file must be configured",
            ));
        }
        let mut names = HashSet::new();
        let global = self.global.clone();
        for rcv in &mut self.receivers {
            if rcv.name.is_empty() {
                return Err(invalid("missing name in receiver"));
            }
            if !names.insert(rcv.name.clone()) {
                return Err(invalid(format!(
                    "notification config name {:?} is not unique",
                    rcv.name
                )));
            }
            rcv.validate_and_inherit(&global).map_err(invalid)?;
        }
        let route = self.root_route();
        if route.receiver.is_empty() {
            return Err(invalid("root route must specify a default receiver"));
        }
        if !route.match_eq.is_empty() || !route.match_re.is_empty() || !route.matchers.0.is_empty()
        {
            return Err(invalid("root route must not have any matchers"));
        }
        if !route.mute_time_intervals.is_empty() {
            return Err(invalid("root route must not have any mute time intervals"));
        }
        if !route.active_time_intervals.is_empty() {
            return Err(invalid(
                "root route must not have any active time intervals",
            ));
        }
        check_receivers(route, &names)?;
        let mut intervals = HashSet::new();
        for ti in &self.mute_time_intervals {
            if !intervals.insert(ti.name.as_str()) {
                return Err(invalid(format!(
                    "mute time interval {:?} is not unique",
                    ti.name
                )));
            }
        }
        for ti in &self.time_intervals {
            if !intervals.insert(ti.name.as_str()) {
                return Err(invalid(format!(
                    "time interval {:?} is not unique",
                    ti.name
                )));
            }
        }
        check_intervals(route, &intervals)
    }
}

fn is_only_comments(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#') || l == "---")
}

/// Turns a serde_yaml error into go-yaml's wording, on one line:
/// `yaml: unmarshal errors: line 5: field foo not found in type config.plain`.
fn yaml_error(err: serde_yaml::Error) -> ConfigFileError {
    let line = err.location().map(|l| l.line());
    let full = err.to_string();
    let msg = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(m, _)| m)
        .to_owned();
    if let Some(hook) = msg.split_once(HOOK_MARK) {
        return invalid(hook.1);
    }
    // serde_yaml prefixes nested errors with their key path.
    let msg = match msg.split_once(": ") {
        Some((path, rest))
            if path
                .chars()
                .all(|c| c.is_alphanumeric() || "_.[]".contains(c)) =>
        {
            rest.to_owned()
        }
        _ => msg,
    };
    let msg = match msg.strip_prefix("unknown field `") {
        Some(rest) => {
            let field = rest.split('`').next().unwrap_or(rest);
            format!("field {field} not found in type {}", go_type_name(rest))
        }
        None => go_type_error(&msg).unwrap_or(msg),
    };
    match line {
        Some(l) => invalid(format!("yaml: unmarshal errors: line {l}: {msg}")),
        None => invalid(format!("yaml: {msg}")),
    }
}

/// The Go type go-yaml names for an unknown key, told apart by the list of
/// fields serde says it expected. Most upstream types decode through a
/// local `plain` type, hence the default.
fn go_type_name(expected: &str) -> &'static str {
    let first = expected
        .split_once("expected one of `")
        .and_then(|(_, r)| r.split('`').next())
        .unwrap_or("");
    match first {
        "times" => "timeinterval.TimeInterval",
        "start_time" => "timeinterval.yamlTimeRange",
        "src" => "config.PagerdutyImage",
        "href" => "config.PagerdutyLink",
        "id" => "config.OpsGenieConfigResponder",
        "region" => "sigv4.plain",
        _ => "config.plain",
    }
}

/// serde's `invalid type: string "x", expected u64` in go-yaml's words:
/// ``cannot unmarshal !!str `x` into uint64``.
fn go_type_error(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("invalid type: ")?;
    let (found, expected) = rest.rsplit_once(", expected ")?;
    let (tag, value) = if let Some(v) = found.strip_prefix("string ") {
        ("!!str", v.trim_matches('"'))
    } else if let Some(v) = found.strip_prefix("integer ") {
        ("!!int", v)
    } else if let Some(v) = found.strip_prefix("boolean ") {
        ("!!bool", v)
    } else if let Some(v) = found.strip_prefix("floating point ") {
        ("!!float", v)
    } else {
        return None;
    };
    let go = match expected {
        "u64" => "uint64",
        "i64" => "int64",
        "u32" => "uint32",
        "a boolean" => "bool",
        "a string" => "string",
        _ => return None,
    };
    Some(format!("cannot unmarshal {tag} `{value}` into {go}"))
}

/// Drops nulls and empty strings, lists and maps, as go-yaml's
/// `omitempty` does for the fields that carry it.
fn prune(v: serde_yaml::Value) -> Option<serde_yaml::Value> {
    use serde_yaml::Value;
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::Sequence(seq) => {
            let seq: Vec<Value> = seq.into_iter().filter_map(prune).collect();
            (!seq.is_empty()).then_some(Value::Sequence(seq))
        }
        Value::Mapping(map) => {
            let map: serde_yaml::Mapping = map
                .into_iter()
                .filter_map(|(k, v)| prune(v).map(|v| (k, v)))
                .collect();
            (!map.is_empty()).then_some(Value::Mapping(map))
        }
        other => Some(other),
    }
}

fn check_label_names<'a>(names: impl Iterator<Item = &'a String>) -> Result<(), ConfigFileError> {
    for k in names {
        if !crate::matchers::is_valid_label_name(k) {
            return Err(invalid(format!("invalid label name {k:?}")));
        }
    }
    Ok(())
}

fn check_regexps(m: &BTreeMap<String, String>) -> Result<(), ConfigFileError> {
    check_label_names(m.keys())?;
    for (k, v) in m {
        if let Err(e) = Matcher::new(crate::matchers::MatchOp::Regex, k, v) {
            return Err(invalid(format!(
                "error parsing regexp: {}: `{v}`",
                crate::matchers::regex_reason(&e.reason)
            )));
        }
    }
    Ok(())
}

fn validate_route(r: &Route) -> Result<(), ConfigFileError> {
    check_label_names(r.match_eq.keys())?;
    check_regexps(&r.match_re)?;
    let mut seen = HashSet::new();
    let mut all = false;
    for l in &r.group_by {
        if l == "..." {
            all = true;
            continue;
        }
        if !crate::matchers::is_valid_label_name(l) {
            return Err(invalid(format!(
                "invalid label name {l:?} in group_by list"
            )));
        }
    }
    if all && r.group_by.iter().any(|l| l != "...") {
        return Err(invalid(
            "cannot have wildcard group_by (`...`) and other other labels at the same time",
        ));
    }
    for l in r.group_by.iter().filter(|l| *l != "...") {
        if !seen.insert(l) {
            return Err(invalid(format!("duplicated label {l:?} in group_by")));
        }
    }
    if r.group_interval.is_some_and(|d| d.is_zero()) {
        return Err(invalid("group_interval cannot be zero"));
    }
    if r.repeat_interval.is_some_and(|d| d.is_zero()) {
        return Err(invalid("repeat_interval cannot be zero"));
    }
    r.routes.iter().try_for_each(validate_route)
}

fn check_receivers(r: &Route, names: &HashSet<String>) -> Result<(), ConfigFileError> {
    for sub in &r.routes {
        check_receivers(sub, names)?;
    }
    if !r.receiver.is_empty() && !names.contains(&r.receiver) {
        return Err(invalid(format!(
            "undefined receiver {:?} used in route",
            r.receiver
        )));
    }
    Ok(())
}

fn check_intervals(r: &Route, names: &HashSet<&str>) -> Result<(), ConfigFileError> {
    for sub in &r.routes {
        check_intervals(sub, names)?;
    }
    for ti in r.active_time_intervals.iter().chain(&r.mute_time_intervals) {
        if !names.contains(ti.as_str()) {
            return Err(invalid(format!(
                "undefined time interval {ti:?} used in route"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

//! Alertmanager's notification data model (`template.Data`, `Alert`, `KV`,
//! `Pairs`) as template values, with the methods templates call:
//! `.Alerts.Firing`, `.CommonLabels.SortedPairs.Values`, `.Labels.Remove`…

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::FuncError;
use crate::funcs::{arg_str, arg_str_list, want_args};
use crate::time::GoTime;
use crate::value::{TemplateObject, Value};

/// A label or annotation set (`template.KV`, a `map[string]string`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kv(pub BTreeMap<String, String>);

impl Kv {
    /// Pairs sorted by name, with `alertname` first as Alertmanager does.
    pub fn sorted_pairs(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::with_capacity(self.0.len());
        if let Some(v) = self.0.get("alertname") {
            out.push(("alertname".into(), v.clone()));
        }
        out.extend(
            self.0
                .iter()
                .filter(|(k, _)| *k != "alertname")
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        out
    }

    pub fn into_value(self) -> Value {
        Value::Object(Arc::new(self))
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Kv {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Kv(iter
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect())
    }
}

fn pairs_string(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl TemplateObject for Kv {
    fn type_name(&self) -> &str {
        "template.KV"
    }

    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, FuncError>> {
        let r = match name {
            "SortedPairs" => want_args(args, 0).map(|()| Pairs(self.sorted_pairs()).into_value()),
            "Names" => want_args(args, 0).map(|()| {
                Strings(self.sorted_pairs().into_iter().map(|p| p.0).collect()).into_value()
            }),
            "Values" => want_args(args, 0).map(|()| {
                Strings(self.sorted_pairs().into_iter().map(|p| p.1).collect()).into_value()
            }),
            "String" => {
                want_args(args, 0).map(|()| Value::String(pairs_string(&self.sorted_pairs())))
            }
            "Remove" => (|| {
                want_args(args, 1)?;
                let drop = arg_str_list(args, 0)?;
                let kept = self
                    .0
                    .iter()
                    .filter(|(k, _)| !drop.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()));
                Ok(Kv(kept.collect()).into_value())
            })(),
            _ => return None,
        };
        Some(r)
    }

    fn underlying(&self) -> Option<Value> {
        Some(Value::string_map(self.0.clone()))
    }

    fn display(&self) -> Option<String> {
        Some(pairs_string(&self.sorted_pairs()))
    }
}

/// `template.Pairs`: a list of `{Name, Value}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pairs(pub Vec<(String, String)>);

impl Pairs {
    pub fn into_value(self) -> Value {
        Value::Object(Arc::new(self))
    }
}

impl TemplateObject for Pairs {
    fn type_name(&self) -> &str {
        "template.Pairs"
    }

    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, FuncError>> {
        let r = match name {
            "Names" => want_args(args, 0)
                .map(|()| Strings(self.0.iter().map(|p| p.0.clone()).collect()).into_value()),
            "Values" => want_args(args, 0)
                .map(|()| Strings(self.0.iter().map(|p| p.1.clone()).collect()).into_value()),
            "String" => want_args(args, 0).map(|()| Value::String(pairs_string(&self.0))),
            _ => return None,
        };
        Some(r)
    }

    fn underlying(&self) -> Option<Value> {
        Some(Value::List(
            self.0
                .iter()
                .map(|(n, v)| {
                    Value::object(Pair {
                        name: n.clone(),
                        value: v.clone(),
                    })
                })
                .collect(),
        ))
    }

    fn display(&self) -> Option<String> {
        Some(pairs_string(&self.0))
    }
}

/// `template.Pair`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub name: String,
    pub value: String,
}

impl TemplateObject for Pair {
    fn type_name(&self) -> &str {
        "template.Pair"
    }

    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Name" => Some(Value::String(self.name.clone())),
            "Value" => Some(Value::String(self.value.clone())),
            _ => None,
        }
    }

    fn field_names(&self) -> &[&str] {
        &["Name", "Value"]
    }
}

/// `template.Strings`: a `[]string` with a `Join` method.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Strings(pub Vec<String>);

impl Strings {
    pub fn into_value(self) -> Value {
        Value::Object(Arc::new(self))
    }
}

impl TemplateObject for Strings {
    fn type_name(&self) -> &str {
        "template.Strings"
    }

    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, FuncError>> {
        (name == "Join").then(|| {
            want_args(args, 1)?;
            Ok(Value::String(self.0.join(arg_str(args, 0)?)))
        })
    }

    fn underlying(&self) -> Option<Value> {
        Some(Value::List(
            self.0.iter().cloned().map(Value::String).collect(),
        ))
    }
}

/// One alert as notification templates see it (`template.Alert`).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub status: String,
    pub labels: Kv,
    pub annotations: Kv,
    pub starts_at: GoTime,
    pub ends_at: GoTime,
    pub generator_url: String,
    pub fingerprint: String,
}

impl TemplateObject for Alert {
    fn type_name(&self) -> &str {
        "template.Alert"
    }

    fn field_names(&self) -> &[&str] {
        &[
            "Status",
            "Labels",
            "Annotations",
            "StartsAt",
            "EndsAt",
            "GeneratorURL",
            "Fingerprint",
        ]
    }

    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "Status" => Value::String(self.status.clone()),
            "Labels" => self.labels.clone().into_value(),
            "Annotations" => self.annotations.clone().into_value(),
            "StartsAt" => self.starts_at.clone().into_value(),
            "EndsAt" => self.ends_at.clone().into_value(),
            "GeneratorURL" => Value::String(self.generator_url.clone()),
            "Fingerprint" => Value::String(self.fingerprint.clone()),
            _ => return None,
        })
    }
}

/// `template.Alerts`, with `Firing` and `Resolved`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Alerts(pub Vec<Alert>);

impl Alerts {
    pub fn into_value(self) -> Value {
        Value::Object(Arc::new(self))
    }

    fn with_status(&self, status: &str) -> Value {
        Value::List(
            self.0
                .iter()
                .filter(|a| a.status == status)
                .map(|a| Value::object(a.clone()))
                .collect(),
        )
    }
}

impl TemplateObject for Alerts {
    fn type_name(&self) -> &str {
        "template.Alerts"
    }

    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, FuncError>> {
        let r = match name {
            "Firing" => want_args(args, 0).map(|()| self.with_status("firing")),
            "Resolved" => want_args(args, 0).map(|()| self.with_status("resolved")),
            _ => return None,
        };
        Some(r)
    }

    fn underlying(&self) -> Option<Value> {
        Some(Value::List(
            self.0.iter().map(|a| Value::object(a.clone())).collect(),
        ))
    }
}

/// The data passed to notification templates (`template.Data`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Data {
    pub receiver: String,
    pub status: String,
    pub alerts: Alerts,
    pub group_labels: Kv,
    pub common_labels: Kv,
    pub common_annotations: Kv,
    pub external_url: String,
}

impl Data {
    pub fn into_value(self) -> Value {
        Value::Object(Arc::new(self))
    }
}

impl TemplateObject for Data {
    fn type_name(&self) -> &str {
        "*template.Data"
    }

    fn field_names(&self) -> &[&str] {
        &[
            "Receiver",
            "Status",
            "Alerts",
            "GroupLabels",
            "CommonLabels",
            "CommonAnnotations",
            "ExternalURL",
        ]
    }

    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "Receiver" => Value::String(self.receiver.clone()),
            "Status" => Value::String(self.status.clone()),
            "Alerts" => self.alerts.clone().into_value(),
            "GroupLabels" => self.group_labels.clone().into_value(),
            "CommonLabels" => self.common_labels.clone().into_value(),
            "CommonAnnotations" => self.common_annotations.clone().into_value(),
            "ExternalURL" => Value::String(self.external_url.clone()),
            _ => return None,
        })
    }
}

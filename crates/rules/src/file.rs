//! Rule files: parsing with upstream strictness and validation with
//! Prometheus' messages (`file: line:col: group "g", rule 1, "name": reason`).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use pharos_config::Duration;
use pharos_template::{Template, funcs};
use serde::{Deserialize, Deserializer};

use crate::error::RulesError;

/// A parsed and validated rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFile {
    pub path: String,
    pub groups: Vec<GroupSpec>,
}

/// One `groups:` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupSpec {
    pub name: String,
    /// `None`: the global evaluation interval applies.
    pub interval: Option<Duration>,
    /// 0 means no limit.
    pub limit: usize,
    /// Newer Prometheus key; queries run this far behind the evaluation time.
    pub query_offset: Option<Duration>,
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RuleKind {
    Record(String),
    Alert(String),
}

/// One rule as written in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub kind: RuleKind,
    pub expr: String,
    pub for_: Duration,
    pub keep_firing_for: Duration,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl RuleSpec {
    pub fn name(&self) -> &str {
        match &self.kind {
            RuleKind::Record(n) | RuleKind::Alert(n) => n,
        }
    }
}

/// A YAML scalar read as a string, as Go's yaml decoder does for `string`
/// fields (`expr: 1` and `severity: 2` are accepted).
#[derive(Debug, Default, Clone)]
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    name: Scalar,
    #[serde(default)]
    interval: Option<Duration>,
    #[serde(default)]
    limit: usize,
    #[serde(default)]
    query_offset: Option<Duration>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    record: Scalar,
    #[serde(default)]
    alert: Scalar,
    #[serde(default)]
    expr: Scalar,
    #[serde(default, rename = "for")]
    for_: Duration,
    #[serde(default)]
    keep_firing_for: Duration,
    #[serde(default)]
    labels: Option<BTreeMap<String, Scalar>>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, Scalar>>,
}

/// Where a YAML node starts (1-based line and column).
#[derive(Debug, Clone, Copy)]
struct Pos(usize, usize);

/// Value positions of `key:` entries found by scanning the text, in
/// document order. serde_yaml keeps no positions, and Prometheus' messages
/// need them; rule keys are rarely ambiguous enough for this to mislead.
fn key_positions(text: &str, key: &str, list_item_only: bool) -> Vec<Pos> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        let mut col = line.len() - trimmed.len();
        let mut rest = trimmed;
        let item = rest.starts_with("- ");
        if item {
            let after = rest[2..].trim_start();
            col += rest.len() - after.len();
            rest = after;
        } else if list_item_only {
            continue;
        }
        let Some(r) = rest.strip_prefix(key) else {
            continue;
        };
        let Some(r2) = r.trim_start().strip_prefix(':') else {
            continue;
        };
        if list_item_only {
            out.push(Pos(i + 1, col + 1));
            continue;
        }
        let value = r2.trim_start();
        let vcol = line.len() - value.len();
        out.push(Pos(i + 1, vcol + 1));
    }
    out
}

fn valid_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Prometheus' `IsValidMetricName`.
pub fn valid_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_' || x == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

/// The variable definitions Prometheus prepends to every alert template.
pub(crate) const TEMPLATE_DEFS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

fn check_template(alert: &str, text: &str) -> Result<(), String> {
    let f = funcs::prometheus(funcs::PrometheusContext::default());
    Template::parse(
        &format!("__alert_{alert}"),
        &format!("{TEMPLATE_DEFS}{text}"),
        &f,
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// Rewrites serde_yaml's unknown-field message into Go yaml's wording
/// (`line N: field X not found in type T`); `type_of` names the Go type
/// for the path serde_yaml reports (e.g. `groups[0].rules[1]`).
pub(crate) fn go_yaml_error(
    e: &serde_yaml::Error,
    type_of: &dyn Fn(&str) -> &'static str,
) -> String {
    let msg = e.to_string();
    if let Some(idx) = msg.find("unknown field `") {
        let rest = &msg[idx + "unknown field `".len()..];
        let field = rest.split('`').next().unwrap_or_default();
        let path = msg[..idx].trim_end_matches([':', ' ']);
        let line = e.location().map(|l| l.line()).unwrap_or(0);
        return format!(
            "yaml: unmarshal errors:\n  line {line}: field {field} not found in type {}",
            type_of(path)
        );
    }
    format!("yaml: {msg}")
}

fn yaml_error(e: &serde_yaml::Error) -> String {
    go_yaml_error(e, &|path| {
        if path.contains("rules[") {
            "rulefmt.RuleNode"
        } else if path.contains("groups[") {
            "rulefmt.RuleGroup"
        } else {
            "rulefmt.RuleGroups"
        }
    })
}

/// Parses rule file text; `file` is used in error messages. Every problem
/// is reported, as `promtool check rules` does.
pub fn parse(file: &str, text: &str) -> Result<RuleFile, Vec<String>> {
    let raw: Option<RawFile> =
        serde_yaml::from_str(text).map_err(|e| vec![format!("{file}: {}", yaml_error(&e))])?;
    let raw = raw.unwrap_or_default();
    let group_pos = key_positions(text, "name", true);
    let mut cursor: HashMap3 = HashMap3 {
        record: (key_positions(text, "record", false), 0),
        alert: (key_positions(text, "alert", false), 0),
        expr: (key_positions(text, "expr", false), 0),
    };
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    let mut groups = Vec::new();
    for (gi, g) in raw.groups.into_iter().enumerate() {
        let gpos = group_pos
            .get(gi)
            .map(|p| format!("{}:{}: ", p.0, p.1))
            .unwrap_or_default();
        let name = g.name.0;
        if name.is_empty() {
            errs.push(format!("{file}: {gpos}Groupname must not be empty"));
        }
        if !seen.insert(name.clone()) {
            errs.push(format!(
                "{file}: {gpos}groupname: \"{name}\" is repeated in the same file"
            ));
        }
        let mut rules = Vec::new();
        for (ri, r) in g.rules.into_iter().enumerate() {
            let rec = r.record.0;
            let alert = r.alert.0;
            // Every key present consumes its scanned position, in order.
            let rec_pos = (!rec.is_empty()).then(|| cursor.next_record()).flatten();
            let alert_pos = (!alert.is_empty()).then(|| cursor.next_alert()).flatten();
            let expr_pos = (!r.expr.0.is_empty()).then(|| cursor.next_expr()).flatten();
            let rule_name = if alert.is_empty() { &rec } else { &alert };
            let mut push = |pos: Option<Pos>, alt: Option<Pos>, msg: String| {
                let mut p = String::new();
                if let Some(Pos(l, c)) = pos {
                    p = format!("{l}:{c}: ");
                    if let Some(Pos(l2, c2)) = alt {
                        p.push_str(&format!("{l2}:{c2}: "));
                    }
                }
                errs.push(format!(
                    "{file}: {p}group \"{name}\", rule {}, \"{rule_name}\": {msg}",
                    ri + 1
                ));
            };
            if !rec.is_empty() && !alert.is_empty() {
                push(
                    rec_pos,
                    alert_pos,
                    "only one of 'record' and 'alert' must be set".into(),
                );
            }
            if rec.is_empty() && alert.is_empty() {
                push(None, None, "one of 'record' or 'alert' must be set".into());
            }
            let expr = r.expr.0;
            if expr.is_empty() {
                push(None, None, "field 'expr' must be set in rule".into());
            } else if let Err(e) = pharos_promql::parse(&expr) {
                push(expr_pos, None, format!("could not parse expression: {e}"));
            }
            let labels: BTreeMap<String, String> = r
                .labels
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            let annotations: BTreeMap<String, String> = r
                .annotations
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            if !rec.is_empty() {
                if !annotations.is_empty() {
                    push(
                        rec_pos,
                        None,
                        "invalid field 'annotations' in recording rule".into(),
                    );
                }
                if !r.for_.is_zero() {
                    push(
                        rec_pos,
                        None,
                        "invalid field 'for' in recording rule".into(),
                    );
                }
                if !r.keep_firing_for.is_zero() {
                    push(
                        rec_pos,
                        None,
                        "invalid field 'keep_firing_for' in recording rule".into(),
                    );
                }
                if !valid_metric_name(&rec) {
                    push(rec_pos, None, format!("invalid recording rule name: {rec}"));
                }
            }
            for k in labels.keys() {
                if !valid_label_name(k) || k == "__name__" {
                    push(None, None, format!("invalid label name: {k}"));
                }
            }
            for k in annotations.keys() {
                if !valid_label_name(k) {
                    push(None, None, format!("invalid annotation name: {k}"));
                }
            }
            if !alert.is_empty() {
                for (k, v) in &labels {
                    if let Err(e) = check_template(&alert, v) {
                        push(None, None, format!("label {k:?}: {e}"));
                    }
                }
                for (k, v) in &annotations {
                    if let Err(e) = check_template(&alert, v) {
                        push(None, None, format!("annotation {k:?}: {e}"));
                    }
                }
            }
            let kind = if alert.is_empty() {
                RuleKind::Record(rec)
            } else {
                RuleKind::Alert(alert)
            };
            rules.push(RuleSpec {
                kind,
                expr,
                for_: r.for_,
                keep_firing_for: r.keep_firing_for,
                labels,
                annotations,
            });
        }
        groups.push(GroupSpec {
            name,
            interval: g.interval,
            limit: g.limit,
            query_offset: g.query_offset,
            rules,
        });
    }
    if errs.is_empty() {
        Ok(RuleFile {
            path: file.to_string(),
            groups,
        })
    } else {
        Err(errs)
    }
}

struct HashMap3 {
    record: (Vec<Pos>, usize),
    alert: (Vec<Pos>, usize),
    expr: (Vec<Pos>, usize),
}

impl HashMap3 {
    fn take(v: &mut (Vec<Pos>, usize)) -> Option<Pos> {
        let p = v.0.get(v.1).copied();
        v.1 += 1;
        p
    }
    fn next_record(&mut self) -> Option<Pos> {
        Self::take(&mut self.record)
    }
    fn next_alert(&mut self) -> Option<Pos> {
        Self::take(&mut self.alert)
    }
    fn next_expr(&mut self) -> Option<Pos> {
        Self::take(&mut self.expr)
    }
}

/// Reads and parses one rule file.
pub fn load_file(path: &Path) -> Result<RuleFile, Vec<String>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("{name}: {e}")])?;
    parse(&name, &text)
}

/// Expands `rule_files:` patterns (relative ones against `base`) into
/// files, sorted per pattern as Go's `filepath.Glob` returns them; a
/// pattern matching nothing contributes nothing, as in Prometheus.
pub fn expand_globs(patterns: &[String], base: &Path) -> Result<Vec<PathBuf>, RulesError> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in patterns {
        if p.is_empty() {
            continue;
        }
        let full = if Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            base.join(p)
        };
        let pat = full.to_string_lossy().to_string();
        let paths = glob::glob(&pat)
            .map_err(|e| RulesError::Load(vec![format!("invalid rule file path {p:?}: {e}")]))?;
        let mut matched: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
        matched.sort();
        for m in matched {
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    Ok(out)
}

/// Loads every file, collecting all errors.
pub fn load_files(paths: &[PathBuf]) -> Result<Vec<RuleFile>, RulesError> {
    let mut files = Vec::new();
    let mut errs = Vec::new();
    for p in paths {
        match load_file(p) {
            Ok(f) => files.push(f),
            Err(e) => errs.extend(e),
        }
    }
    if errs.is_empty() {
        Ok(files)
    } else {
        Err(RulesError::Load(errs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(text: &str) -> Vec<String> {
        parse("r.yml", text).unwrap_err()
    }

    #[test]
    fn parses_groups_and_rules() {
        let f = parse(
            "r.yml",
            "groups:\n- name: g\n  interval: 30s\n  limit: 3\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n    labels:\n      x: 1\n  - alert: Down\n    expr: up == 0\n    for: 5m\n    keep_firing_for: 1m\n    annotations:\n      summary: '{{ $labels.job }} down'\n",
        )
        .unwrap();
        let g = &f.groups[0];
        assert_eq!(g.interval, Some(Duration::from_secs(30)));
        assert_eq!(g.limit, 3);
        assert_eq!(g.rules[0].kind, RuleKind::Record("job:up:sum".into()));
        assert_eq!(g.rules[0].labels["x"], "1");
        assert_eq!(g.rules[1].for_, Duration::from_secs(300));
        assert_eq!(g.rules[1].keep_firing_for, Duration::from_secs(60));
    }

    #[test]
    fn empty_file_has_no_groups() {
        assert!(parse("e.yml", "").unwrap().groups.is_empty());
        assert!(
            parse("e.yml", "# only a comment\n")
                .unwrap()
                .groups
                .is_empty()
        );
    }

    #[test]
    fn unknown_field_names_line_and_type() {
        let e = errs("groups:\n- name: g\n  rules:\n  - record: a\n    expr: up\n    fro: 5m\n");
        assert_eq!(
            e,
            vec![
                "r.yml: yaml: unmarshal errors:\n  line 6: field fro not found in type rulefmt.RuleNode"
            ]
        );
        let e = errs("groups:\n- name: g\n  intervall: 1m\n");
        assert!(e[0].contains("field intervall not found in type rulefmt.RuleGroup"));
    }

    #[test]
    fn validation_messages_match_prometheus() {
        let e = errs(
            "groups:\n- name: g\n  rules:\n  - record: 'bad-name'\n    expr: up\n    for: 1m\n  - alert: A\n    expr: 'up =='\n  - record: ok\n    expr: up\n    labels:\n      __name__: x\n- name: g\n  rules: []\n",
        );
        assert!(e.contains(
            &"r.yml: 4:13: group \"g\", rule 1, \"bad-name\": invalid field 'for' in recording rule"
                .to_string()
        ), "{e:#?}");
        assert!(e.contains(
            &"r.yml: 4:13: group \"g\", rule 1, \"bad-name\": invalid recording rule name: bad-name"
                .to_string()
        ), "{e:#?}");
        assert!(
            e.iter().any(|m| m.starts_with(
                "r.yml: 8:11: group \"g\", rule 2, \"A\": could not parse expression:"
            )),
            "{e:#?}"
        );
        assert!(e.contains(
            &"r.yml: group \"g\", rule 3, \"ok\": invalid label name: __name__".to_string()
        ));
        assert!(
            e.contains(&"r.yml: 13:3: groupname: \"g\" is repeated in the same file".to_string())
        );
    }

    #[test]
    fn template_syntax_is_checked_for_alerts() {
        let e = errs(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n      d: '{{ $labels.job '\n",
        );
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with(
                "r.yml: group \"g\", rule 1, \"A\": annotation \"d\": template: __alert_A:"
            ),
            "{e:?}"
        );
        let e = errs(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n      d: '{{ nosuchfunc }}'\n",
        );
        assert!(e[0].contains("label \"d\""), "{e:?}");
    }

    #[test]
    fn record_and_alert_both_or_neither() {
        let e = errs(
            "groups:\n- name: g\n  rules:\n  - record: a\n    alert: b\n    expr: up\n  - expr: up\n",
        );
        assert!(e[0].contains("4:13: 5:12: group \"g\", rule 1, \"b\": only one of 'record' and 'alert' must be set"), "{e:?}");
        assert!(e[1].contains("rule 2, \"\": one of 'record' or 'alert' must be set"));
    }

    #[test]
    fn globs_expand_relative_to_base() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yml"), "groups: []").unwrap();
        std::fs::write(dir.path().join("a.yml"), "groups: []").unwrap();
        std::fs::write(dir.path().join("c.txt"), "").unwrap();
        let got = expand_globs(&["*.yml".into(), "none/*.yml".into()], dir.path()).unwrap();
        assert_eq!(
            got,
            vec![dir.path().join("a.yml"), dir.path().join("b.yml")]
        );
    }
}

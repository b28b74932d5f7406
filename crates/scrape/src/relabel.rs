//! Relabeling with Prometheus' semantics: every action, its defaults
//! (separator `;`, regex `(.*)` anchored, replacement `$1`, action
//! `replace`) and its load-time checks.

use std::fmt;

use md5::{Digest, Md5};
use pharos_config::{Validate, Validator};
use pharos_model::Labels;
use regex::Regex;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// Whether `name` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Prometheus' `relabelTarget`: a label name that may contain `$1`/`${x}`
/// references, checked before expansion.
fn is_valid_target_template(s: &str) -> bool {
    static PATTERN: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    PATTERN
        .get_or_init(|| {
            Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$")
                .expect("static pattern compiles")
        })
        .is_match(s)
}

/// A relabel action; YAML accepts any letter case, as Prometheus does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    #[default]
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        const ALL: [Action; 11] = [
            Action::Replace,
            Action::Keep,
            Action::Drop,
            Action::KeepEqual,
            Action::DropEqual,
            Action::HashMod,
            Action::LabelMap,
            Action::LabelDrop,
            Action::LabelKeep,
            Action::Lowercase,
            Action::Uppercase,
        ];
        let lower = name.to_ascii_lowercase();
        ALL.into_iter().find(|a| a.as_str() == lower)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Err(de::Error::custom("relabel action cannot be empty"));
        }
        Action::from_name(&s)
            .ok_or_else(|| de::Error::custom(format!("unknown relabel action \"{s}\"")))
    }
}

/// A regex as written, compiled fully anchored (`^(?:...)$`).
#[derive(Debug, Clone)]
pub struct RelabelRegex {
    source: String,
    regex: Regex,
}

impl RelabelRegex {
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        let regex = Regex::new(&format!("^(?:{source})$"))?;
        Ok(RelabelRegex {
            source: source.to_owned(),
            regex,
        })
    }

    /// The pattern as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn regex(&self) -> &Regex {
        &self.regex
    }
}

impl Default for RelabelRegex {
    fn default() -> Self {
        RelabelRegex::new("(.*)").expect("default regex compiles")
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Serialize for RelabelRegex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for RelabelRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `regex:` with no value means the empty regex, as in Prometheus.
        let s = Option::<String>::deserialize(d)?.unwrap_or_default();
        RelabelRegex::new(&s).map_err(|e| de::Error::custom(format!("invalid regex \"{s}\": {e}")))
    }
}

/// One `relabel_configs` / `metric_relabel_configs` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelabelConfig {
    pub source_labels: Vec<String>,
    pub separator: String,
    pub regex: RelabelRegex,
    pub modulus: u64,
    pub target_label: String,
    pub replacement: String,
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: ";".into(),
            regex: RelabelRegex::default(),
            modulus: 0,
            target_label: String::new(),
            replacement: "$1".into(),
            action: Action::Replace,
        }
    }
}

impl Validate for RelabelConfig {
    fn validate(&self, v: &mut Validator) {
        let d = RelabelConfig::default();
        let a = self.action;
        for name in &self.source_labels {
            v.check(
                is_valid_label_name(name),
                "source_labels",
                format!("\"{name}\" is not a valid label name"),
            );
        }
        if a == Action::HashMod && self.modulus == 0 {
            v.error(
                "modulus",
                "relabel configuration for hashmod requires non-zero modulus",
            );
        }
        let needs_target = matches!(
            a,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        );
        if needs_target && self.target_label.is_empty() {
            v.error(
                "target_label",
                format!("relabel configuration for {a} action requires 'target_label' value"),
            );
            return;
        }
        let invalid_target = match a {
            Action::Replace => !is_valid_target_template(&self.target_label),
            Action::HashMod
            | Action::Lowercase
            | Action::Uppercase
            | Action::KeepEqual
            | Action::DropEqual => !is_valid_label_name(&self.target_label),
            _ => false,
        };
        if invalid_target {
            v.error(
                "target_label",
                format!(
                    "\"{}\" is invalid 'target_label' for {a} action",
                    self.target_label
                ),
            );
        }
        if matches!(a, Action::KeepEqual | Action::DropEqual)
            && (self.regex != d.regex
                || self.modulus != d.modulus
                || self.separator != d.separator
                || self.replacement != d.replacement)
        {
            v.error(
                "action",
                format!("{a} action requires only 'source_labels' and `target_label`, and no other fields"),
            );
        }
        if matches!(a, Action::LabelDrop | Action::LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != d.modulus
                || self.separator != d.separator
                || self.replacement != d.replacement)
        {
            v.error(
                "action",
                format!("{a} action requires only 'regex', and no other fields"),
            );
        }
        if a == Action::LabelMap && !is_valid_target_template(&self.replacement) {
            v.error(
                "replacement",
                format!(
                    "\"{}\" is invalid 'replacement' for {a} action",
                    self.replacement
                ),
            );
        }
    }
}

/// Prometheus' hashmod: the last 8 bytes of the MD5 sum, big-endian, modulo
/// `modulus`.
pub fn hashmod(value: &str, modulus: u64) -> u64 {
    let sum = Md5::digest(value.as_bytes());
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&sum[8..16]);
    u64::from_be_bytes(tail) % modulus.max(1)
}

/// Applies `configs` in order; `None` means a keep/drop step dropped the set.
pub fn process(labels: &Labels, configs: &[RelabelConfig]) -> Option<Labels> {
    let mut current = labels.clone();
    for cfg in configs {
        current = apply(current, cfg)?;
    }
    Some(current)
}

fn apply(mut labels: Labels, cfg: &RelabelConfig) -> Option<Labels> {
    let value = cfg
        .source_labels
        .iter()
        .map(|n| labels.get(n).unwrap_or(""))
        .collect::<Vec<_>>()
        .join(&cfg.separator);
    let re = cfg.regex.regex();
    match cfg.action {
        Action::Drop => {
            if re.is_match(&value) {
                return None;
            }
        }
        Action::Keep => {
            if !re.is_match(&value) {
                return None;
            }
        }
        Action::DropEqual => {
            if labels.get(&cfg.target_label).unwrap_or("") == value {
                return None;
            }
        }
        Action::KeepEqual => {
            if labels.get(&cfg.target_label).unwrap_or("") != value {
                return None;
            }
        }
        Action::Replace => {
            let Some(caps) = re.captures(&value) else {
                return Some(labels);
            };
            let mut target = String::new();
            caps.expand(&cfg.target_label, &mut target);
            if !is_valid_label_name(&target) {
                labels.remove(&cfg.target_label);
                return Some(labels);
            }
            let mut result = String::new();
            caps.expand(&cfg.replacement, &mut result);
            if result.is_empty() {
                // Prometheus deletes the label named by the unexpanded
                // template here, not the expanded name.
                labels.remove(&cfg.target_label);
            } else {
                labels.set(&target, &result);
            }
        }
        Action::Lowercase => labels.set(&cfg.target_label, &value.to_lowercase()),
        Action::Uppercase => labels.set(&cfg.target_label, &value.to_uppercase()),
        Action::HashMod => {
            let m = hashmod(&value, cfg.modulus);
            labels.set(&cfg.target_label, &m.to_string());
        }
        Action::LabelMap => {
            let snapshot = labels.clone();
            for l in snapshot.iter() {
                if let Some(caps) = re.captures(&l.name) {
                    let mut name = String::new();
                    caps.expand(&cfg.replacement, &mut name);
                    labels.set(&name, &l.value);
                }
            }
        }
        Action::LabelDrop | Action::LabelKeep => {
            let keep_matching = cfg.action == Action::LabelKeep;
            let names: Vec<String> = labels
                .iter()
                .filter(|l| re.is_match(&l.name) != keep_matching)
                .map(|l| l.name.clone())
                .collect();
            for n in names {
                labels.remove(&n);
            }
        }
    }
    Some(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    fn cfg(yaml: &str) -> RelabelConfig {
        let c: RelabelConfig = serde_yaml::from_str(yaml).unwrap();
        let mut v = Validator::new();
        c.validate(&mut v);
        assert!(v.is_empty(), "{yaml}: {:?}", v.errors());
        c
    }

    fn invalid(yaml: &str) -> String {
        match serde_yaml::from_str::<RelabelConfig>(yaml) {
            Err(e) => e.to_string(),
            Ok(c) => {
                let mut v = Validator::new();
                c.validate(&mut v);
                v.errors()
                    .first()
                    .map(|e| e.1.clone())
                    .unwrap_or_else(|| panic!("{yaml} should be invalid"))
            }
        }
    }

    #[test]
    fn defaults_match_prometheus() {
        let c = RelabelConfig::default();
        assert_eq!(c.separator, ";");
        assert_eq!(c.regex.as_str(), "(.*)");
        assert_eq!(c.replacement, "$1");
        assert_eq!(c.action, Action::Replace);
    }

    #[test]
    fn replace_joins_sources_and_expands_groups() {
        let c = cfg(
            "source_labels: [a, b]\nregex: '(f.*);(.*)'\ntarget_label: '${1}_x'\nreplacement: '$2-${1}-$$'\n",
        );
        let out = process(&ls(&[("a", "foo"), ("b", "bar")]), &[c]).unwrap();
        assert_eq!(out.get("foo_x"), Some("bar-foo-$"));
        // No match leaves the set alone; the regex is anchored.
        let c = cfg("source_labels: [a]\nregex: 'o'\ntarget_label: t\n");
        let input = ls(&[("a", "foo")]);
        assert_eq!(process(&input, &[c]).unwrap(), input);
    }

    #[test]
    fn replace_with_named_groups_and_empty_result_deletes() {
        let c = cfg(
            "source_labels: [__address__]\nregex: '(?P<host>[^:]+):(?P<port>\\d+)'\ntarget_label: instance\nreplacement: '${host}'\n",
        );
        let out = process(&ls(&[("__address__", "node1:9100")]), &[c]).unwrap();
        assert_eq!(out.get("instance"), Some("node1"));
        let c = cfg("source_labels: [missing]\ntarget_label: a\n");
        let out = process(&ls(&[("a", "x")]), &[c]).unwrap();
        assert_eq!(out.get("a"), None);
        // With a templated target the unexpanded name is what gets deleted.
        let c = cfg(
            "source_labels: [a, b]\nregex: '(.*);(.*)'\ntarget_label: 'x_${1}'\nreplacement: '$2'\n",
        );
        let out = process(&ls(&[("a", "y"), ("x_y", "old"), ("x_${1}", "t")]), &[c]);
        let out = out.unwrap();
        assert_eq!(out.get("x_y"), Some("old"));
        assert_eq!(out.get("x_${1}"), None);
    }

    #[test]
    fn replace_to_invalid_expanded_target_deletes_template_label() {
        let c = cfg("source_labels: [a]\nregex: '(.*)'\ntarget_label: '$1'\n");
        let out = process(&ls(&[("a", "1bad")]), &[c]).unwrap();
        assert_eq!(out, ls(&[("a", "1bad")]));
    }

    #[test]
    fn keep_drop_and_equal_variants() {
        let keep = cfg("action: keep\nsource_labels: [job]\nregex: 'no.*'\n");
        let drop = cfg("action: DROP\nsource_labels: [job]\nregex: 'no.*'\n");
        let node = ls(&[("job", "node")]);
        let other = ls(&[("job", "app")]);
        assert!(process(&node, std::slice::from_ref(&keep)).is_some());
        assert!(process(&other, std::slice::from_ref(&keep)).is_none());
        assert!(process(&node, std::slice::from_ref(&drop)).is_none());
        assert!(process(&other, std::slice::from_ref(&drop)).is_some());
        let keq = cfg("action: keepequal\nsource_labels: [a]\ntarget_label: b\n");
        let deq = cfg("action: dropequal\nsource_labels: [a]\ntarget_label: b\n");
        let same = ls(&[("a", "1"), ("b", "1")]);
        let diff = ls(&[("a", "1"), ("b", "2")]);
        assert!(process(&same, std::slice::from_ref(&keq)).is_some());
        assert!(process(&diff, std::slice::from_ref(&keq)).is_none());
        assert!(process(&same, std::slice::from_ref(&deq)).is_none());
        assert!(process(&diff, std::slice::from_ref(&deq)).is_some());
    }

    #[test]
    fn hashmod_uses_md5_tail() {
        // md5("foo") = acbd18db4cc2f85cedef654fccc4a4d8; its last 8 bytes
        // are 0xedef654fccc4a4d8, computed independently of this code.
        let expect = 0xedef_654f_ccc4_a4d8_u64;
        assert_eq!(hashmod("foo", u64::MAX), expect % u64::MAX);
        assert_eq!(hashmod("foo", 1000), expect % 1000);
        let c = cfg("action: hashmod\nsource_labels: [a]\nmodulus: 1000\ntarget_label: shard\n");
        let out = process(&ls(&[("a", "foo")]), &[c]).unwrap();
        assert_eq!(out.get("shard"), Some((expect % 1000).to_string().as_str()));
    }

    #[test]
    fn labelmap_labeldrop_labelkeep() {
        let map = cfg("action: labelmap\nregex: '__meta_kubernetes_pod_label_(.+)'\n");
        let input = ls(&[
            ("__meta_kubernetes_pod_label_app", "web"),
            ("__meta_kubernetes_pod_label_tier", "fe"),
            ("job", "k"),
        ]);
        let out = process(&input, &[map]).unwrap();
        assert_eq!(out.get("app"), Some("web"));
        assert_eq!(out.get("tier"), Some("fe"));
        assert_eq!(out.get("__meta_kubernetes_pod_label_app"), Some("web"));
        let drop = cfg("action: labeldrop\nregex: '__meta.*'\n");
        let dropped = process(&out, std::slice::from_ref(&drop)).unwrap();
        assert_eq!(dropped, ls(&[("app", "web"), ("tier", "fe"), ("job", "k")]));
        let keep = cfg("action: labelkeep\nregex: 'app|job'\n");
        let kept = process(&dropped, &[keep]).unwrap();
        assert_eq!(kept, ls(&[("app", "web"), ("job", "k")]));
    }

    #[test]
    fn case_actions() {
        let lower = cfg("action: lowercase\nsource_labels: [a, b]\ntarget_label: l\n");
        let upper = cfg("action: uppercase\nsource_labels: [a]\ntarget_label: u\n");
        let out = process(&ls(&[("a", "MiXed"), ("b", "Z")]), &[lower, upper]).unwrap();
        assert_eq!(out.get("l"), Some("mixed;z"));
        assert_eq!(out.get("u"), Some("MIXED"));
    }

    #[test]
    fn validation_errors_match_prometheus() {
        assert!(invalid("action: nope\n").contains("unknown relabel action"));
        assert!(invalid("action: ''\n").contains("cannot be empty"));
        assert!(invalid("regex: '('\n").contains("invalid regex"));
        assert!(invalid("source_labels: [a]\n").contains("requires 'target_label'"));
        assert!(invalid("target_label: '1x'\n").contains("invalid 'target_label'"));
        assert!(invalid("action: hashmod\ntarget_label: x\n").contains("non-zero modulus"));
        assert!(
            invalid("action: labeldrop\nregex: x\nsource_labels: [a]\n")
                .contains("requires only 'regex'")
        );
        assert!(
            invalid("action: keepequal\ntarget_label: x\nregex: y\n")
                .contains("requires only 'source_labels'")
        );
        assert!(invalid("action: labelmap\nreplacement: '1'\n").contains("invalid 'replacement'"));
        assert!(invalid("source_labels: ['a-b']\ntarget_label: x\n").contains("not a valid"));
        assert!(invalid("sourcelabels: [a]\n").contains("unknown field"));
        // Templated targets are fine for replace.
        cfg("source_labels: [a]\ntarget_label: 'x_${1}'\n");
    }
}

//! Inhibition: an alert is muted while a firing alert matching a rule's
//! source matchers has the same values for the rule's `equal` labels.

use crate::LabelSet;
use crate::config::Config;
use crate::matchers::{Matcher, matches_all};
use crate::store::Alert;
use crate::time::Millis;

#[derive(Debug, Clone)]
pub struct InhibitRule {
    pub source: Vec<Matcher>,
    pub target: Vec<Matcher>,
    pub equal: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Inhibitor {
    rules: Vec<InhibitRule>,
}

impl Inhibitor {
    pub fn new(cfg: &Config) -> Self {
        let rules = cfg
            .inhibit_rules
            .iter()
            .map(|r| InhibitRule {
                source: r.all_source_matchers(),
                target: r.all_target_matchers(),
                equal: r.equal.clone(),
            })
            .collect();
        Self { rules }
    }

    /// Fingerprint of the alert inhibiting one with `labels`, if any. As
    /// upstream, the first rule that inhibits decides. An alert matching
    /// both sides of a rule is not inhibited by source alerts that also
    /// match both sides, so such alerts cannot inhibit each other.
    pub fn inhibited_by(&self, labels: &LabelSet, alerts: &[Alert], now: Millis) -> Option<u64> {
        let get = |ls: &LabelSet, k: &str| ls.get(k).cloned().unwrap_or_default();
        for rule in &self.rules {
            if !matches_all(&rule.target, labels) {
                continue;
            }
            let two_sided = matches_all(&rule.source, labels);
            let source = alerts
                .iter()
                .filter(|a| !a.resolved_at(now))
                .filter(|a| matches_all(&rule.source, &a.labels))
                .filter(|a| {
                    rule.equal
                        .iter()
                        .all(|l| get(&a.labels, l) == get(labels, l))
                })
                .filter(|a| !(two_sided && matches_all(&rule.target, &a.labels)))
                .map(Alert::fingerprint)
                .min();
            if source.is_some() {
                return source;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(pairs: &[(&str, &str)], ends_at: Millis) -> Alert {
        Alert {
            labels: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: LabelSet::new(),
            starts_at: 1,
            ends_at,
            generator_url: String::new(),
            updated_at: 1,
            timeout: false,
        }
    }

    fn inhibitor(rules: &str) -> Inhibitor {
        let yaml =
            format!("route: {{receiver: a}}\nreceivers: [{{name: a}}]\ninhibit_rules:\n{rules}");
        Inhibitor::new(&Config::load(&yaml).unwrap())
    }

    #[test]
    fn source_inhibits_target_with_equal_labels() {
        let inh = inhibitor(
            "  - source_matchers: [severity=critical]\n    target_matchers: [severity=warning]\n    equal: [cluster]\n",
        );
        let crit = alert(&[("severity", "critical"), ("cluster", "a")], 100);
        let warn_a = alert(&[("severity", "warning"), ("cluster", "a")], 100);
        let warn_b = alert(&[("severity", "warning"), ("cluster", "b")], 100);
        let all = vec![crit.clone(), warn_a.clone(), warn_b.clone()];
        assert_eq!(
            inh.inhibited_by(&warn_a.labels, &all, 50),
            Some(crit.fingerprint())
        );
        assert_eq!(inh.inhibited_by(&warn_b.labels, &all, 50), None);
        assert_eq!(inh.inhibited_by(&crit.labels, &all, 50), None);
        // A resolved source inhibits nothing.
        assert_eq!(inh.inhibited_by(&warn_a.labels, &all, 100), None);
    }

    #[test]
    fn alerts_matching_both_sides_do_not_inhibit_each_other() {
        let inh = inhibitor(
            "  - source_match_re: {alertname: '.+'}\n    target_match_re: {alertname: '.+'}\n    equal: [job]\n",
        );
        let a = alert(&[("alertname", "A"), ("job", "j")], 100);
        let b = alert(&[("alertname", "B"), ("job", "j")], 100);
        let all = vec![a.clone(), b];
        assert_eq!(inh.inhibited_by(&a.labels, &all, 1), None);
    }
}

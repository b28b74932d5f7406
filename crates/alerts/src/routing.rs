//! The routing tree: which routes (and so receivers) an alert takes, and
//! the group key it is aggregated under, both exactly as upstream's
//! `dispatch.Route` computes them.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::LabelSet;
use crate::config;
use crate::matchers::{Matcher, matchers_string, matches_all, sort_matchers};

/// Upstream's `DefaultRouteOpts`, inherited by the root route.
const GROUP_WAIT: Duration = Duration::from_secs(30);
const GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
const REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// A route with its options resolved against its ancestors.
#[derive(Debug, Clone)]
pub struct RouteNode {
    pub receiver: String,
    pub group_by: BTreeSet<String>,
    pub group_by_all: bool,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub matchers: Vec<Matcher>,
    pub continue_matching: bool,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
    pub routes: Vec<RouteNode>,
    /// `{}/{env="prod"}`: the matchers of every route from the root down.
    pub key: String,
}

impl RouteNode {
    /// Builds the tree from a validated config route.
    pub fn new(root: &config::Route) -> RouteNode {
        let defaults = RouteNode {
            receiver: String::new(),
            group_by: BTreeSet::new(),
            group_by_all: false,
            group_wait: GROUP_WAIT,
            group_interval: GROUP_INTERVAL,
            repeat_interval: REPEAT_INTERVAL,
            matchers: Vec::new(),
            continue_matching: false,
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
            routes: Vec::new(),
            key: String::new(),
        };
        Self::child(root, &defaults, None)
    }

    fn child(cr: &config::Route, parent: &RouteNode, parent_key: Option<&str>) -> RouteNode {
        let mut node = RouteNode {
            routes: Vec::new(),
            ..parent.clone()
        };
        if !cr.receiver.is_empty() {
            node.receiver = cr.receiver.clone();
        }
        let labels: BTreeSet<String> = cr
            .group_by
            .iter()
            .filter(|l| *l != "...")
            .cloned()
            .collect();
        if !labels.is_empty() {
            node.group_by = labels;
            node.group_by_all = false;
        } else if cr.group_by.iter().any(|l| l == "...") {
            node.group_by_all = true;
        }
        if let Some(d) = cr.group_wait {
            node.group_wait = d.as_std();
        }
        if let Some(d) = cr.group_interval {
            node.group_interval = d.as_std();
        }
        if let Some(d) = cr.repeat_interval {
            node.repeat_interval = d.as_std();
        }
        node.matchers = config::legacy_matchers(&cr.match_eq, &cr.match_re, &cr.matchers);
        sort_matchers(&mut node.matchers);
        node.continue_matching = cr.continue_matching;
        node.mute_time_intervals = cr.mute_time_intervals.clone();
        node.active_time_intervals = cr.active_time_intervals.clone();
        node.key = match parent_key {
            Some(k) => format!("{k}/{}", matchers_string(&node.matchers)),
            None => matchers_string(&node.matchers),
        };
        let key = node.key.clone();
        node.routes = cr
            .routes
            .iter()
            .map(|c| Self::child(c, &node, Some(&key)))
            .collect();
        node
    }

    /// The routes an alert with `labels` is handled by: depth first, the
    /// first matching child wins unless it says `continue`, and a route
    /// none of whose children match handles the alert itself. Empty when
    /// this route does not match at all.
    pub fn match_labels(&self, labels: &LabelSet) -> Vec<&RouteNode> {
        if !matches_all(&self.matchers, labels) {
            return Vec::new();
        }
        let mut all = Vec::new();
        for child in &self.routes {
            let found = child.match_labels(labels);
            let matched = !found.is_empty();
            all.extend(found);
            if matched && !child.continue_matching {
                break;
            }
        }
        if all.is_empty() {
            all.push(self);
        }
        all
    }

    /// The labels an alert is grouped by on this route.
    pub fn group_labels(&self, labels: &LabelSet) -> LabelSet {
        labels
            .iter()
            .filter(|(k, _)| self.group_by_all || self.group_by.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Upstream's aggregation group key: route key, `:`, group labels.
    pub fn group_key(&self, labels: &LabelSet) -> String {
        // Built in place: this runs for every received alert.
        let mut out = String::with_capacity(self.key.len() + 64);
        out.push_str(&self.key);
        out.push_str(":{");
        let grouped = labels
            .iter()
            .filter(|(k, _)| self.group_by_all || self.group_by.contains(*k));
        for (i, (k, v)) in grouped.enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(k);
            out.push('=');
            push_go_quoted(&mut out, v);
        }
        out.push('}');
        out
    }

    /// Every route of the tree, depth first.
    pub fn walk(&self, f: &mut dyn FnMut(&RouteNode)) {
        f(self);
        for c in &self.routes {
            c.walk(f);
        }
    }
}

/// `{a="1", b="2"}`: Prometheus' `LabelSet.String()`.
pub fn labelset_string(ls: &LabelSet) -> String {
    let parts: Vec<String> = ls
        .iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// Go's `%q` for strings (`strconv.Quote`).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_go_quoted(&mut out, s);
    out
}

fn push_go_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let n = c as u32;
                if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const TREE: &str = r#"
route:
  receiver: default
  group_by: [alertname]
  group_wait: 1m
  routes:
    - matchers: [env="prod"]
      receiver: prod
      group_by: [alertname, cluster]
      routes:
        - match: {severity: critical}
          receiver: pager
          continue: true
        - match_re: {severity: 'crit.*|warn'}
          receiver: ops
          repeat_interval: 1h
    - matchers: [team=~"db|infra"]
      receiver: teams
      group_by: ['...']
      continue: true
    - matchers: [team="db"]
      receiver: db
receivers: [{name: default}, {name: prod}, {name: pager}, {name: ops}, {name: teams}, {name: db}]
"#;

    fn tree() -> RouteNode {
        RouteNode::new(Config::load(TREE).unwrap().root_route())
    }

    fn receivers(t: &RouteNode, l: &[(&str, &str)]) -> Vec<String> {
        t.match_labels(&labels(l))
            .iter()
            .map(|r| r.receiver.clone())
            .collect()
    }

    #[test]
    fn depth_first_with_continue() {
        let t = tree();
        assert_eq!(receivers(&t, &[("alertname", "X")]), ["default"]);
        assert_eq!(receivers(&t, &[("env", "prod")]), ["prod"]);
        assert_eq!(
            receivers(&t, &[("env", "prod"), ("severity", "critical")]),
            ["pager", "ops"]
        );
        assert_eq!(
            receivers(&t, &[("env", "prod"), ("severity", "warn")]),
            ["ops"]
        );
        assert_eq!(receivers(&t, &[("team", "db")]), ["teams", "db"]);
        assert_eq!(receivers(&t, &[("team", "infra")]), ["teams"]);
    }

    #[test]
    fn options_are_inherited() {
        let t = tree();
        let ops = &t.routes[0].routes[1];
        assert_eq!(ops.group_wait, Duration::from_secs(60));
        assert_eq!(ops.group_interval, GROUP_INTERVAL);
        assert_eq!(ops.repeat_interval, Duration::from_secs(3600));
        assert_eq!(ops.group_by.len(), 2);
        assert_eq!(t.repeat_interval, REPEAT_INTERVAL);
        assert!(t.routes[1].group_by_all);
    }

    #[test]
    fn group_keys_match_upstream() {
        let t = tree();
        let l = labels(&[
            ("alertname", "X"),
            ("env", "prod"),
            ("severity", "critical"),
            ("cluster", "c\"1"),
        ]);
        let routes = t.match_labels(&l);
        assert_eq!(
            routes[0].group_key(&l),
            r#"{}/{env="prod"}/{severity="critical"}:{alertname="X", cluster="c\"1"}"#
        );
        assert_eq!(
            routes[1].group_key(&l),
            r#"{}/{env="prod"}/{severity=~"crit.*|warn"}:{alertname="X", cluster="c\"1"}"#
        );
        let l = labels(&[("team", "db"), ("b", "1")]);
        assert_eq!(
            t.match_labels(&l)[0].group_key(&l),
            r#"{}/{team=~"db|infra"}:{b="1", team="db"}"#
        );
        assert_eq!(t.group_key(&labels(&[("x", "y")])), "{}:{}");
    }

    #[test]
    fn go_quote_escapes() {
        assert_eq!(go_quote("a\"b\\\n\u{1}é"), r#""a\"b\\\n\x01é""#);
    }
}

//! The dispatcher's state machine: aggregation groups with their
//! `group_wait`/`group_interval` timers and the notification log that
//! decides, with `repeat_interval` and `send_resolved`, whether a flush
//! notifies an integration (upstream's `dispatch` and `DedupStage`).
//!
//! It is driven by explicit times, not timers, so it is deterministic: a
//! caller feeds alerts with [`Dispatcher::process`], sleeps until
//! [`Dispatcher::next_flush_at`] and calls [`Dispatcher::flush_due`]; after
//! trying the notifications it reports the outcome with
//! [`Dispatcher::complete`]. Nothing here sends anything: notification
//! integrations are not built yet.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::LabelSet;
use crate::config::Receiver;
use crate::routing::RouteNode;
use crate::store::Alert;
use crate::time::Millis;

fn ms(d: std::time::Duration) -> Millis {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One integration of a receiver (`webhook_configs[1]` of `team`): the
/// unit the notification log tracks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Integration {
    pub receiver: String,
    pub kind: &'static str,
    pub index: usize,
    pub send_resolved: bool,
}

/// The integrations of a receiver, in upstream's order.
pub fn integrations(r: &Receiver) -> Vec<Integration> {
    let mut out = Vec::new();
    let mut add = |kind: &'static str, flags: Vec<bool>| {
        for (index, send_resolved) in flags.into_iter().enumerate() {
            out.push(Integration {
                receiver: r.name.clone(),
                kind,
                index,
                send_resolved,
            });
        }
    };
    add(
        "email",
        r.email_configs.iter().map(|c| c.send_resolved).collect(),
    );
    add(
        "pagerduty",
        r.pagerduty_configs
            .iter()
            .map(|c| c.send_resolved)
            .collect(),
    );
    add(
        "slack",
        r.slack_configs.iter().map(|c| c.send_resolved).collect(),
    );
    add(
        "webhook",
        r.webhook_configs.iter().map(|c| c.send_resolved).collect(),
    );
    add(
        "opsgenie",
        r.opsgenie_configs.iter().map(|c| c.send_resolved).collect(),
    );
    add(
        "wechat",
        r.wechat_configs.iter().map(|c| c.send_resolved).collect(),
    );
    add(
        "pushover",
        r.pushover_configs.iter().map(|c| c.send_resolved).collect(),
    );
    add(
        "victorops",
        r.victorops_configs
            .iter()
            .map(|c| c.send_resolved)
            .collect(),
    );
    add(
        "sns",
        r.sns_configs.iter().map(|c| c.send_resolved).collect(),
    );
    add(
        "telegram",
        r.telegram_configs.iter().map(|c| c.send_resolved).collect(),
    );
    add(
        "discord",
        r.discord_configs.iter().map(|c| c.send_resolved).collect(),
    );
    add(
        "webex",
        r.webex_configs.iter().map(|c| c.send_resolved).collect(),
    );
    add(
        "msteams",
        r.msteams_configs.iter().map(|c| c.send_resolved).collect(),
    );
    out
}

/// Every integration kind a receiver may have, in upstream's order.
pub const KINDS: [&str; 13] = [
    "email",
    "pagerduty",
    "slack",
    "webhook",
    "opsgenie",
    "wechat",
    "pushover",
    "victorops",
    "sns",
    "telegram",
    "discord",
    "webex",
    "msteams",
];

/// One aggregation group as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    pub group_key: String,
    pub receiver: String,
    pub labels: LabelSet,
    pub alerts: Vec<Alert>,
}

/// One notification log entry as it is persisted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogRecord {
    pub group_key: String,
    pub receiver: String,
    pub integration: String,
    pub index: usize,
    pub send_resolved: bool,
    pub firing: Vec<u64>,
    pub resolved: Vec<u64>,
    pub at: Millis,
}

/// What the dispatcher needs from the rest of the role at flush time.
pub trait FlushContext {
    /// Whether the alert is silenced or inhibited now.
    fn muted(&self, alert: &Alert) -> bool;
    /// The integrations of `receiver`.
    fn integrations(&self, receiver: &str) -> Vec<Integration>;
    /// Whether a route with these `mute_time_intervals` and
    /// `active_time_intervals` is muted at `now`.
    fn time_muted(&self, mute: &[String], active: &[String], now: Millis) -> bool;
}

/// What the last successful notification of a group to an integration
/// contained (an nflog entry).
#[derive(Debug, Clone, PartialEq, Eq)]
struct LogEntry {
    firing: BTreeSet<u64>,
    resolved: BTreeSet<u64>,
    at: Millis,
}

/// One notification to send: a group's alerts for one integration. When
/// both lists are empty (everything resolved, `send_resolved` off) nothing
/// is sent, but the flush must still be completed so the log forgets the
/// firing alerts, as upstream does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub integration: Integration,
    pub firing: Vec<Alert>,
    /// Empty unless the integration sends resolved notifications.
    pub resolved: Vec<Alert>,
    firing_fps: BTreeSet<u64>,
    resolved_fps: BTreeSet<u64>,
}

impl Notification {
    /// Firing and (when sent) resolved alerts together, in upstream's
    /// order within a group.
    pub fn alerts(&self) -> Vec<Alert> {
        let mut v: Vec<Alert> = self
            .firing
            .iter()
            .chain(self.resolved.iter())
            .cloned()
            .collect();
        v.sort_by(alert_order);
        v
    }
}

/// Upstream's `LabelSet.Before`: shorter sets first, then by the first
/// differing value in name order.
pub fn labels_before(a: &LabelSet, b: &LabelSet) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    if a.len() != b.len() {
        return a.len().cmp(&b.len());
    }
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    for n in names {
        match (a.get(n), b.get(n)) {
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    Ordering::Equal
}

/// Upstream's alert order within a group: by `job`, then `instance`, then
/// the whole label set.
pub fn alert_order(a: &Alert, b: &Alert) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for key in ["job", "instance"] {
        match (a.labels.get(key), b.labels.get(key)) {
            (None, None) => continue,
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    labels_before(&a.labels, &b.labels)
}

/// A group that came due, with the notifications the log lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flush {
    pub group_key: String,
    pub receiver: String,
    pub group_labels: LabelSet,
    pub notifications: Vec<Notification>,
    /// The group's interval: the flush's notifications have until about
    /// then to get through.
    pub group_interval: std::time::Duration,
    /// When the flush happened.
    pub at: Millis,
    /// The group's repeat interval, to judge the log again after a wait.
    repeat: Millis,
    /// The alerts as flushed, to drop resolved ones that did not change.
    sent: BTreeMap<u64, Arc<Alert>>,
}

#[derive(Debug, Clone)]
struct AggrGroup {
    receiver: String,
    labels: LabelSet,
    group_wait: Millis,
    group_interval: Millis,
    repeat_interval: Millis,
    mute_time_intervals: Vec<String>,
    active_time_intervals: Vec<String>,
    alerts: BTreeMap<u64, Arc<Alert>>,
    next_flush: Millis,
    has_flushed: bool,
    /// A flush is out and not yet completed.
    in_flight: bool,
}

/// Aggregation groups and the notification log.
#[derive(Debug, Default)]
pub struct Dispatcher {
    groups: HashMap<String, AggrGroup>,
    /// `(next_flush, key)` of every group not in flight, so finding what
    /// is due does not scan all groups on each wake-up (one per POST).
    schedule: BTreeSet<(Millis, String)>,
    log: HashMap<(String, Integration), LogEntry>,
}

impl Dispatcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts an alert into the group of every route it matches.
    pub fn process(&mut self, tree: &RouteNode, alert: &Alert, now: Millis) {
        self.process_shared(tree, alert.fingerprint(), &Arc::new(alert.clone()), now);
    }

    /// [`Dispatcher::process`] for an alert the store already shares,
    /// with its fingerprint: intake copies nothing.
    pub fn process_shared(&mut self, tree: &RouteNode, fp: u64, alert: &Arc<Alert>, now: Millis) {
        for route in tree.match_labels(&alert.labels) {
            self.insert(route, fp, alert, now);
        }
    }

    fn insert(&mut self, route: &RouteNode, fp: u64, alert: &Arc<Alert>, now: Millis) {
        let key = route.group_key(&alert.labels);
        if !self.groups.contains_key(&key) {
            let next_flush = now.saturating_add(ms(route.group_wait));
            self.schedule.insert((next_flush, key.clone()));
            self.groups.insert(
                key.clone(),
                AggrGroup {
                    receiver: route.receiver.clone(),
                    labels: route.group_labels(&alert.labels),
                    group_wait: ms(route.group_wait),
                    group_interval: ms(route.group_interval),
                    repeat_interval: ms(route.repeat_interval),
                    mute_time_intervals: route.mute_time_intervals.clone(),
                    active_time_intervals: route.active_time_intervals.clone(),
                    alerts: BTreeMap::new(),
                    next_flush,
                    has_flushed: false,
                    in_flight: false,
                },
            );
        }
        let Some(group) = self.groups.get_mut(&key) else {
            return;
        };
        // An alert that started more than group_wait ago has waited
        // enough: the first flush happens at once.
        if !group.has_flushed
            && alert.starts_at.saturating_add(group.group_wait) < now
            && now < group.next_flush
        {
            if !group.in_flight {
                self.schedule.remove(&(group.next_flush, key.clone()));
                self.schedule.insert((now, key));
            }
            group.next_flush = now;
        }
        group.alerts.insert(fp, alert.clone());
    }

    /// When the earliest group comes due.
    pub fn next_flush_at(&self) -> Option<Millis> {
        self.schedule.first().map(|(t, _)| *t)
    }

    /// Number of aggregation groups.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Flushes every group due at `now`: muted alerts are left out, and an
    /// integration is notified only when the log says something changed
    /// or `repeat_interval` passed. Groups are rescheduled after
    /// `group_interval`.
    pub fn flush_due(&mut self, now: Millis, ctx: &dyn FlushContext) -> Vec<Flush> {
        let mut due: Vec<String> = Vec::new();
        while let Some((t, _)) = self.schedule.first()
            && *t <= now
        {
            if let Some((_, key)) = self.schedule.pop_first() {
                due.push(key);
            }
        }
        due.sort();
        let mut out = Vec::new();
        for key in due {
            let Some(group) = self.groups.get_mut(&key) else {
                continue;
            };
            group.has_flushed = true;
            group.in_flight = true;
            group.next_flush = now.saturating_add(group.group_interval);
            let sent = group.alerts.clone();
            let (mut firing, mut resolved) = (Vec::new(), Vec::new());
            for a in sent.values().filter(|a| !ctx.muted(a)) {
                if a.resolved_at(now) {
                    resolved.push(Alert::clone(a));
                } else {
                    firing.push(Alert::clone(a));
                }
            }
            let firing_fps: BTreeSet<u64> = firing.iter().map(Alert::fingerprint).collect();
            let resolved_fps: BTreeSet<u64> = resolved.iter().map(Alert::fingerprint).collect();
            let repeat = group.repeat_interval;
            // A time-muted group flushes without telling anyone, and the
            // log is left as it was, as upstream's TimeMuteStage does.
            let integrations = if ctx.time_muted(
                &group.mute_time_intervals,
                &group.active_time_intervals,
                now,
            ) {
                Vec::new()
            } else {
                ctx.integrations(&group.receiver)
            };
            let notifications = integrations
                .into_iter()
                .filter(|i| {
                    let entry = self.log.get(&(key.clone(), i.clone()));
                    needs_update(
                        entry,
                        &firing_fps,
                        &resolved_fps,
                        i.send_resolved,
                        repeat,
                        now,
                    )
                })
                .map(|i| Notification {
                    resolved: if i.send_resolved {
                        resolved.clone()
                    } else {
                        Vec::new()
                    },
                    integration: i,
                    firing: firing.clone(),
                    firing_fps: firing_fps.clone(),
                    resolved_fps: resolved_fps.clone(),
                })
                .collect();
            out.push(Flush {
                group_key: key,
                receiver: group.receiver.clone(),
                group_labels: group.labels.clone(),
                notifications,
                group_interval: std::time::Duration::from_millis(
                    u64::try_from(group.group_interval).unwrap_or(0),
                ),
                at: now,
                repeat,
                sent,
            });
        }
        out
    }

    /// Records the outcome of a flush. On success the log remembers what
    /// each integration was told and resolved alerts that did not change
    /// since the flush leave the group (and an empty group goes); on
    /// failure everything stays for the next interval.
    pub fn complete(&mut self, flush: Flush, success: bool, now: Millis) -> Vec<LogRecord> {
        let ok = vec![success; flush.notifications.len()];
        self.complete_each(flush, &ok, now)
    }

    /// Records the outcome of each notification of a flush (`ok[i]` for
    /// `flush.notifications[i]`, missing entries count as failed). Each
    /// integration's log entry is written only after its own successful
    /// send, as upstream's per-integration pipelines do; resolved alerts
    /// leave the group only when every integration succeeded.
    ///
    /// Returns the log entries written, for the cluster peers.
    pub fn complete_each(&mut self, flush: Flush, ok: &[bool], now: Millis) -> Vec<LogRecord> {
        let all_ok = (0..flush.notifications.len()).all(|i| ok.get(i).copied().unwrap_or(false));
        let mut written = Vec::new();
        for (i, n) in flush.notifications.into_iter().enumerate() {
            if !ok.get(i).copied().unwrap_or(false) {
                continue;
            }
            written.push(LogRecord {
                group_key: flush.group_key.clone(),
                receiver: n.integration.receiver.clone(),
                integration: n.integration.kind.to_owned(),
                index: n.integration.index,
                send_resolved: n.integration.send_resolved,
                firing: n.firing_fps.iter().copied().collect(),
                resolved: n.resolved_fps.iter().copied().collect(),
                at: now,
            });
            self.log.insert(
                (flush.group_key.clone(), n.integration),
                LogEntry {
                    firing: n.firing_fps,
                    resolved: n.resolved_fps,
                    at: now,
                },
            );
        }
        let Some(group) = self.groups.get_mut(&flush.group_key) else {
            return written;
        };
        if group.in_flight {
            self.schedule
                .insert((group.next_flush, flush.group_key.clone()));
        }
        group.in_flight = false;
        if !all_ok {
            return written;
        }
        // Only what was resolved when the flush was made was told as
        // resolved; `now` is when the sends finished.
        for (fp, a) in &flush.sent {
            if a.resolved_at(flush.at) && group.alerts.get(fp) == Some(a) {
                group.alerts.remove(fp);
            }
        }
        if group.alerts.is_empty() {
            self.schedule
                .remove(&(group.next_flush, flush.group_key.clone()));
            self.groups.remove(&flush.group_key);
        }
        written
    }

    /// Judges a flush's notifications again against the log as it is now
    /// and drops those a peer already sent (upstream's `DedupStage` runs
    /// after the HA wait). Dropped ones count as done: nothing is logged
    /// for them here because the peer's entry is already in the log.
    pub fn recheck(&self, flush: &mut Flush, now: Millis) {
        let repeat = flush.repeat;
        let key = flush.group_key.clone();
        flush.notifications.retain(|n| {
            let entry = self.log.get(&(key.clone(), n.integration.clone()));
            needs_update(
                entry,
                &n.firing_fps,
                &n.resolved_fps,
                n.integration.send_resolved,
                repeat,
                now,
            )
        });
    }

    /// Merges log entries a peer wrote: the newest entry per group and
    /// integration wins. Returns how many changed the log.
    pub fn merge_log(&mut self, records: Vec<LogRecord>) -> usize {
        let mut n = 0;
        for r in records {
            let Some(kind) = KINDS.iter().copied().find(|k| *k == r.integration) else {
                continue;
            };
            let key = (
                r.group_key,
                Integration {
                    receiver: r.receiver,
                    kind,
                    index: r.index,
                    send_resolved: r.send_resolved,
                },
            );
            if self.log.get(&key).is_some_and(|e| e.at >= r.at) {
                continue;
            }
            self.log.insert(
                key,
                LogEntry {
                    firing: r.firing.into_iter().collect(),
                    resolved: r.resolved.into_iter().collect(),
                    at: r.at,
                },
            );
            n += 1;
        }
        n
    }

    /// Drops every aggregation group but keeps the log: what upstream does
    /// on a config reload, after which the caller feeds the stored alerts
    /// again. A flush in flight completes into nothing.
    pub fn reset_groups(&mut self) {
        self.groups.clear();
        self.schedule.clear();
    }

    /// The aggregation groups as they are now, sorted by group key, for
    /// `/api/v2/alerts/groups`.
    pub fn groups(&self) -> Vec<GroupView> {
        let mut v: Vec<GroupView> = self
            .groups
            .iter()
            .map(|(k, g)| GroupView {
                group_key: k.clone(),
                receiver: g.receiver.clone(),
                labels: g.labels.clone(),
                alerts: g.alerts.values().map(|a| Alert::clone(a)).collect(),
            })
            .collect();
        v.sort_by(|a, b| a.group_key.cmp(&b.group_key));
        v
    }

    /// The notification log, for a snapshot.
    pub fn log_entries(&self) -> Vec<LogRecord> {
        let mut v: Vec<LogRecord> = self
            .log
            .iter()
            .map(|((key, i), e)| LogRecord {
                group_key: key.clone(),
                receiver: i.receiver.clone(),
                integration: i.kind.to_owned(),
                index: i.index,
                send_resolved: i.send_resolved,
                firing: e.firing.iter().copied().collect(),
                resolved: e.resolved.iter().copied().collect(),
                at: e.at,
            })
            .collect();
        v.sort_by(|a, b| {
            (&a.group_key, &a.receiver, &a.integration, a.index).cmp(&(
                &b.group_key,
                &b.receiver,
                &b.integration,
                b.index,
            ))
        });
        v
    }

    /// Restores log entries from a snapshot; entries naming an
    /// integration kind this build does not know are skipped.
    pub fn restore_log(&mut self, records: Vec<LogRecord>) -> usize {
        let mut n = 0;
        for r in records {
            let Some(kind) = KINDS.iter().copied().find(|k| *k == r.integration) else {
                continue;
            };
            let integration = Integration {
                receiver: r.receiver,
                kind,
                index: r.index,
                send_resolved: r.send_resolved,
            };
            self.log.insert(
                (r.group_key, integration),
                LogEntry {
                    firing: r.firing.into_iter().collect(),
                    resolved: r.resolved.into_iter().collect(),
                    at: r.at,
                },
            );
            n += 1;
        }
        n
    }

    /// Forgets log entries older than `retention`.
    pub fn gc_log(&mut self, now: Millis, retention: std::time::Duration) {
        let keep = ms(retention);
        self.log.retain(|_, e| e.at.saturating_add(keep) >= now);
    }
}

/// Upstream's `DedupStage.needsUpdate`.
fn needs_update(
    entry: Option<&LogEntry>,
    firing: &BTreeSet<u64>,
    resolved: &BTreeSet<u64>,
    send_resolved: bool,
    repeat: Millis,
    now: Millis,
) -> bool {
    let Some(entry) = entry else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&entry.firing) {
        return true;
    }
    // Everything resolved: tell the integration so its firing set clears,
    // unless it never heard of any of them.
    if firing.is_empty() {
        return !entry.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&entry.resolved) {
        return true;
    }
    entry.at < now.saturating_sub(repeat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const S: Millis = 1000;

    struct Ctx {
        muted: BTreeSet<String>,
        send_resolved: bool,
    }

    impl FlushContext for Ctx {
        fn muted(&self, a: &Alert) -> bool {
            self.muted.contains(&a.labels["alertname"])
        }
        fn time_muted(&self, mute: &[String], _active: &[String], _now: Millis) -> bool {
            mute.iter().any(|m| self.muted.contains(m))
        }
        fn integrations(&self, receiver: &str) -> Vec<Integration> {
            vec![Integration {
                receiver: receiver.into(),
                kind: "webhook",
                index: 0,
                send_resolved: self.send_resolved,
            }]
        }
    }

    fn ctx() -> Ctx {
        Ctx {
            muted: BTreeSet::new(),
            send_resolved: true,
        }
    }

    fn tree() -> RouteNode {
        let cfg = Config::load(
            "route: {receiver: r, group_by: [g], group_wait: 30s, group_interval: 5m, repeat_interval: 1h}\nreceivers: [{name: r}]\n",
        )
        .unwrap();
        RouteNode::new(cfg.root_route())
    }

    fn alert(name: &str, start: Millis, end: Millis) -> Alert {
        Alert {
            labels: [("alertname", name), ("g", "1")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: LabelSet::new(),
            starts_at: start,
            ends_at: end,
            generator_url: String::new(),
            updated_at: start,
            timeout: false,
        }
    }

    fn names(n: &[Alert]) -> Vec<&str> {
        n.iter().map(|a| a.labels["alertname"].as_str()).collect()
    }

    #[test]
    fn waits_groups_then_repeats_only_when_due() {
        let (t, c) = (tree(), ctx());
        let mut d = Dispatcher::new();
        let t0 = 1_000_000 * S;
        d.process(&t, &alert("A", t0, t0 + 3600 * S), t0);
        d.process(&t, &alert("B", t0 + 5 * S, t0 + 3600 * S), t0 + 5 * S);
        assert_eq!(d.len(), 1, "same group labels, one group");
        assert_eq!(d.next_flush_at(), Some(t0 + 30 * S));
        assert!(d.flush_due(t0 + 29 * S, &c).is_empty());
        let mut f = d.flush_due(t0 + 30 * S, &c);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].group_key, "{}:{g=\"1\"}");
        assert_eq!(names(&f[0].notifications[0].firing), ["A", "B"]);
        d.complete(f.remove(0), true, t0 + 30 * S);
        // Next interval: nothing changed and repeat_interval not over.
        let next = t0 + 330 * S;
        assert_eq!(d.next_flush_at(), Some(next));
        let f = d.flush_due(next, &c);
        assert!(f[0].notifications.is_empty());
        d.complete(f.into_iter().next().unwrap(), true, next);
        // After repeat_interval it notifies again.
        let later = t0 + 30 * S + 3600 * S + 300 * S;
        let mut f = d.flush_due(later, &c);
        assert_eq!(f[0].notifications.len(), 1);
        d.complete(f.remove(0), true, later);
    }

    #[test]
    fn new_alert_notifies_resolved_leave_and_old_alerts_skip_wait() {
        let (t, c) = (tree(), ctx());
        let mut d = Dispatcher::new();
        let t0 = 1_000_000 * S;
        // Started long ago: no group_wait.
        d.process(&t, &alert("A", t0 - 600 * S, t0 + 60 * S), t0);
        let mut f = d.flush_due(t0, &c);
        assert_eq!(f.len(), 1);
        d.complete(f.remove(0), true, t0);
        d.process(&t, &alert("B", t0 + 10 * S, t0 + 3600 * S), t0 + 10 * S);
        let t1 = t0 + 300 * S;
        let mut f = d.flush_due(t1, &c);
        let n = &f[0].notifications[0];
        assert_eq!(names(&n.firing), ["B"]);
        assert_eq!(names(&n.resolved), ["A"], "A ended at t0+60s");
        d.complete(f.remove(0), true, t1);
        // A left the group once reported resolved.
        let mut f = d.flush_due(t1 + 300 * S, &c);
        assert!(f[0].sent.values().all(|a| a.labels["alertname"] == "B"));
        d.complete(f.remove(0), true, t1 + 300 * S);
        // B resolves: notified although the integration might not send
        // resolved, so the log clears; then the group is gone.
        let mut d2 = Dispatcher::new();
        let c2 = Ctx {
            muted: BTreeSet::new(),
            send_resolved: false,
        };
        d2.process(&t, &alert("B", t0 - 600 * S, t0 + 10 * S), t0);
        let mut f = d2.flush_due(t0, &c2);
        d2.complete(f.remove(0), true, t0);
        let mut f = d2.flush_due(t0 + 300 * S, &c2);
        assert_eq!(f[0].notifications.len(), 1);
        assert!(
            f[0].notifications[0].resolved.is_empty(),
            "send_resolved off"
        );
        d2.complete(f.remove(0), true, t0 + 300 * S);
        assert!(d2.is_empty());
    }

    /// The schedule index must always say what a scan of the groups says.
    fn assert_schedule_consistent(d: &Dispatcher) {
        let waiting: BTreeSet<(Millis, String)> = d
            .groups
            .iter()
            .filter(|(_, g)| !g.in_flight)
            .map(|(k, g)| (g.next_flush, k.clone()))
            .collect();
        assert_eq!(d.schedule, waiting);
    }

    #[test]
    fn schedule_follows_groups_through_flushes_and_removal() {
        let t = tree();
        let c = Ctx {
            muted: BTreeSet::new(),
            send_resolved: true,
        };
        let mut d = Dispatcher::new();
        let t0 = 1_000_000 * S;
        let in_group = |name: &str, g: &str, start: Millis, end: Millis| {
            let mut a = alert(name, start, end);
            a.labels.insert("g".into(), g.into());
            a
        };
        for (i, g) in ["1", "2", "3"].iter().enumerate() {
            let at = t0 + i64::try_from(i).unwrap() * S;
            d.process(&t, &in_group("A", g, at, t0 + 100 * S), at);
            assert_schedule_consistent(&d);
        }
        // An old alert in group 3 moves its first flush up to now.
        d.process(
            &t,
            &in_group("B", "3", t0 - 600 * S, t0 + 100 * S),
            t0 + 3 * S,
        );
        assert_schedule_consistent(&d);
        assert_eq!(d.next_flush_at(), Some(t0 + 3 * S));
        let f = d.flush_due(t0 + 3 * S, &c);
        assert_eq!(f.len(), 1);
        assert_schedule_consistent(&d);
        assert_eq!(d.next_flush_at(), Some(t0 + 30 * S));
        let mut rest = d.flush_due(t0 + 31 * S, &c);
        assert_eq!(rest.len(), 2);
        assert_eq!(d.next_flush_at(), None, "all in flight");
        assert_schedule_consistent(&d);
        for flush in f.into_iter().chain(rest.drain(..)) {
            d.complete(flush, true, t0 + 31 * S);
            assert_schedule_consistent(&d);
        }
        // Everything resolved at t0+100s: the next flushes report it and
        // the groups, once empty, leave the schedule too.
        let later = t0 + 400 * S;
        for flush in d.flush_due(later, &c) {
            d.complete(flush, true, later);
            assert_schedule_consistent(&d);
        }
        assert!(d.is_empty());
        assert_eq!(d.next_flush_at(), None);
        d.process(&t, &in_group("C", "1", later, later + 100 * S), later);
        d.reset_groups();
        assert_schedule_consistent(&d);
    }

    #[test]
    fn muted_alerts_and_failures() {
        let t = tree();
        let mut c = ctx();
        c.muted.insert("A".into());
        let mut d = Dispatcher::new();
        let t0 = 1_000_000 * S;
        d.process(&t, &alert("A", t0 - 600 * S, t0 + 3600 * S), t0);
        let mut f = d.flush_due(t0, &c);
        assert!(
            f[0].notifications.is_empty(),
            "only muted alerts: nothing to say"
        );
        d.complete(f.remove(0), true, t0);
        c.muted.clear();
        let t1 = t0 + 300 * S;
        let mut f = d.flush_due(t1, &c);
        assert_eq!(f[0].notifications.len(), 1);
        assert_eq!(d.next_flush_at(), None, "in flight");
        d.complete(f.remove(0), false, t1);
        // A failed send is retried at the next interval.
        let mut f = d.flush_due(t1 + 300 * S, &c);
        assert_eq!(f[0].notifications.len(), 1);
        d.complete(f.remove(0), true, t1 + 300 * S);
        d.gc_log(t1 + 300 * S + 10 * S, std::time::Duration::from_secs(5));
        assert!(d.log.is_empty());
    }

    #[test]
    fn time_muted_groups_notify_nobody() {
        let cfg = Config::load(
            "route: {receiver: r, routes: [{matchers: [x=y], mute_time_intervals: [night]}]}\nreceivers: [{name: r}]\ntime_intervals: [{name: night, time_intervals: [{times: [{start_time: '00:00', end_time: '06:00'}]}]}]\n",
        )
        .unwrap();
        let t = RouteNode::new(cfg.root_route());
        let mut c = ctx();
        c.muted.insert("night".into());
        let mut d = Dispatcher::new();
        let mut a = alert("A", 0, 3600 * S);
        a.labels.insert("x".into(), "y".into());
        d.process(&t, &a, 600 * S);
        let mut f = d.flush_due(600 * S, &c);
        assert!(f[0].notifications.is_empty());
        d.complete(f.remove(0), true, 600 * S);
        c.muted.clear();
        let f = d.flush_due(900 * S, &c);
        assert_eq!(f[0].notifications.len(), 1, "log untouched while muted");
    }

    struct Two;

    impl FlushContext for Two {
        fn muted(&self, _: &Alert) -> bool {
            false
        }
        fn time_muted(&self, _: &[String], _: &[String], _: Millis) -> bool {
            false
        }
        fn integrations(&self, receiver: &str) -> Vec<Integration> {
            (0..2)
                .map(|index| Integration {
                    receiver: receiver.into(),
                    kind: "webhook",
                    index,
                    send_resolved: true,
                })
                .collect()
        }
    }

    #[test]
    fn each_integration_logs_only_its_own_success_and_the_log_round_trips() {
        let t = tree();
        let mut d = Dispatcher::new();
        let t0 = 1_000_000 * S;
        let idx = |f: &Flush| -> Vec<usize> {
            f.notifications
                .iter()
                .map(|n| n.integration.index)
                .collect()
        };
        d.process(&t, &alert("A", t0 - 600 * S, t0 + 3600 * S), t0);
        let mut f = d.flush_due(t0, &Two);
        assert_eq!(idx(&f[0]), [0, 1]);
        d.complete_each(f.remove(0), &[true, false], t0);
        // Integration 1 failed: only it is told again, until it succeeds.
        let t1 = t0 + 300 * S;
        let mut f = d.flush_due(t1, &Two);
        assert_eq!(idx(&f[0]), [1]);
        d.complete_each(f.remove(0), &[false], t1);
        let t2 = t1 + 300 * S;
        let mut f = d.flush_due(t2, &Two);
        assert_eq!(idx(&f[0]), [1]);
        d.complete_each(f.remove(0), &[true], t2);
        let saved = d.log_entries();
        assert_eq!(saved.len(), 2);
        let mut restored = Dispatcher::new();
        assert_eq!(restored.restore_log(saved.clone()), 2);
        assert_eq!(restored.log_entries(), saved);
        let mut unknown = saved[0].clone();
        unknown.integration = "carrier-pigeon".into();
        assert_eq!(Dispatcher::new().restore_log(vec![unknown]), 0);
        // A resolves; integration 1 fails to say so: A stays in the group
        // and only integration 1 is told again.
        let t3 = t2 + 300 * S;
        d.process(&t, &alert("A", t0 - 600 * S, t3 - S), t3 - S);
        let mut f = d.flush_due(t3, &Two);
        assert_eq!(idx(&f[0]), [0, 1]);
        assert_eq!(names(&f[0].notifications[0].resolved), ["A"]);
        d.complete_each(f.remove(0), &[true, false], t3);
        assert_eq!(d.groups()[0].alerts.len(), 1);
        let t4 = t3 + 300 * S;
        let mut f = d.flush_due(t4, &Two);
        assert_eq!(idx(&f[0]), [1]);
        d.complete_each(f.remove(0), &[true], t4);
        assert!(d.is_empty(), "resolved and told everywhere: group gone");
    }

    #[test]
    fn peer_log_entries_merge_newest_and_stop_a_waiting_flush() {
        let (t, c) = (tree(), ctx());
        let t0 = 1_000_000 * S;
        let a = alert("A", t0 - 600 * S, t0 + 3600 * S);
        // Two replicas with the same group flush at the same time.
        let (mut first, mut second) = (Dispatcher::new(), Dispatcher::new());
        first.process(&t, &a, t0);
        second.process(&t, &a, t0);
        let mut f1 = first.flush_due(t0, &c);
        let mut f2 = second.flush_due(t0, &c);
        assert_eq!(f2[0].notifications.len(), 1);
        // The first sends and tells the second while it waits.
        let written = first.complete(f1.remove(0), true, t0 + S);
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].firing, [a.fingerprint()]);
        assert_eq!(second.merge_log(written.clone()), 1);
        assert_eq!(second.merge_log(written.clone()), 0, "same entry again");
        let mut older = written[0].clone();
        older.at -= 10 * S;
        older.firing.clear();
        assert_eq!(second.merge_log(vec![older]), 0, "older entry loses");
        let mut unknown = written[0].clone();
        unknown.integration = "carrier-pigeon".into();
        unknown.at += S;
        assert_eq!(second.merge_log(vec![unknown]), 0);
        second.recheck(&mut f2[0], t0 + 2 * S);
        assert!(f2[0].notifications.is_empty(), "the peer already sent it");
        let nothing = second.complete(f2.remove(0), true, t0 + 2 * S);
        assert!(nothing.is_empty());
        // A new alert in the group is not covered by the peer's entry.
        let b = alert("B", t0 + 5 * S, t0 + 3600 * S);
        second.process(&t, &b, t0 + 5 * S);
        let mut f = second.flush_due(t0 + 300 * S, &c);
        second.recheck(&mut f[0], t0 + 301 * S);
        assert_eq!(names(&f[0].notifications[0].firing), ["A", "B"]);
    }

    #[test]
    fn lists_integrations_with_their_send_resolved() {
        let cfg = Config::load(
            "route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{url: 'http://a/'}, {url: 'http://b/', send_resolved: false}], discord_configs: [{webhook_url: 'https://d/x'}]}]\n",
        )
        .unwrap();
        let is = integrations(&cfg.receivers[0]);
        let got: Vec<(&str, usize, bool)> = is
            .iter()
            .map(|i| (i.kind, i.index, i.send_resolved))
            .collect();
        assert_eq!(
            got,
            [
                ("webhook", 0, true),
                ("webhook", 1, false),
                ("discord", 0, true)
            ]
        );
    }
}

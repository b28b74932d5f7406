//! The alert store: alerts by fingerprint, merged on re-send as upstream's
//! in-memory provider does, and dropped once resolved (GC).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::LabelSet;
use crate::time::Millis;

/// One alert as the store keeps it. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub labels: LabelSet,
    pub annotations: LabelSet,
    pub starts_at: Millis,
    pub ends_at: Millis,
    pub generator_url: String,
    pub updated_at: Millis,
    /// `ends_at` was not given but derived from `resolve_timeout`, so a
    /// later explicit end time wins over it in a merge.
    pub timeout: bool,
}

impl Alert {
    pub fn fingerprint(&self) -> u64 {
        fingerprint(&self.labels)
    }

    /// Resolved once its end time has passed.
    pub fn resolved_at(&self, now: Millis) -> bool {
        self.ends_at != 0 && self.ends_at <= now
    }

    /// Upstream's `Alert.Merge`: the younger alert wins, keeping the
    /// earliest start and the latest explicit end.
    pub fn merge(&self, other: &Alert, now: Millis) -> Alert {
        if other.updated_at < self.updated_at {
            return other.merge(self, now);
        }
        let mut res = other.clone();
        if self.starts_at < other.starts_at {
            res.starts_at = self.starts_at;
        }
        if other.resolved_at(now) {
            if self.resolved_at(now) && self.ends_at > other.ends_at {
                res.ends_at = self.ends_at;
            }
        } else if self.ends_at > other.ends_at && !self.timeout {
            res.ends_at = self.ends_at;
        }
        res
    }

    /// [`Alert::merge`] of a stored alert with a newly received one that
    /// it consumes, so the common case (the new one is younger) moves it
    /// instead of cloning it.
    pub fn merge_owned(&self, mut other: Alert, now: Millis) -> Alert {
        if other.updated_at < self.updated_at {
            return other.merge(self, now);
        }
        if self.starts_at < other.starts_at {
            other.starts_at = self.starts_at;
        }
        if other.resolved_at(now) {
            if self.resolved_at(now) && self.ends_at > other.ends_at {
                other.ends_at = self.ends_at;
            }
        } else if self.ends_at > other.ends_at && !self.timeout {
            other.ends_at = self.ends_at;
        }
        other
    }
}

/// Prometheus' label set fingerprint (FNV-1a over sorted names and values,
/// each followed by 0xff), printed `%016x` in the API.
pub fn fingerprint(labels: &LabelSet) -> u64 {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    let mut h = OFFSET;
    let mut add = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    };
    for (k, v) in labels {
        add(k.as_bytes());
        add(&[0xff]);
        add(v.as_bytes());
        add(&[0xff]);
    }
    h
}

/// All alerts, firing and recently resolved.
#[derive(Debug, Default)]
pub struct AlertStore {
    /// Shared with the dispatcher's groups, so intake neither copies an
    /// alert per holder nor frees the copies again on the next re-send.
    alerts: Mutex<HashMap<u64, Arc<Alert>>>,
}

impl AlertStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Alert>>> {
        // A panic while holding the lock cannot leave a half-written map
        // entry, so the data is still usable.
        self.alerts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Inserts alerts, merging each with a stored one whose activity
    /// overlaps it; returns the alerts as stored, for the dispatcher.
    pub fn put(&self, alerts: Vec<Alert>, now: Millis) -> Vec<Alert> {
        self.put_shared(alerts, now)
            .into_iter()
            .map(|(_, a)| Arc::unwrap_or_clone(a))
            .collect()
    }

    /// [`AlertStore::put`] returning each stored alert with its
    /// fingerprint, shared rather than copied.
    pub fn put_shared(&self, alerts: Vec<Alert>, now: Millis) -> Vec<(u64, Arc<Alert>)> {
        let mut map = self.lock();
        let mut stored = Vec::with_capacity(alerts.len());
        for alert in alerts {
            let fp = alert.fingerprint();
            let alert = match map.get(&fp) {
                Some(old)
                    if (alert.ends_at > old.starts_at && alert.ends_at < old.ends_at)
                        || (alert.starts_at > old.starts_at && alert.starts_at < old.ends_at) =>
                {
                    old.merge_owned(alert, now)
                }
                _ => alert,
            };
            let alert = Arc::new(alert);
            stored.push((fp, alert.clone()));
            map.insert(fp, alert);
        }
        stored
    }

    pub fn get(&self, fp: u64) -> Option<Alert> {
        self.lock().get(&fp).map(|a| Alert::clone(a))
    }

    /// A snapshot of every stored alert, ordered by fingerprint.
    pub fn all(&self) -> Vec<Alert> {
        let mut v: Vec<Alert> = self.lock().values().map(|a| Alert::clone(a)).collect();
        v.sort_by_key(Alert::fingerprint);
        v
    }

    /// Drops resolved alerts; returns their fingerprints so markers can be
    /// cleared too.
    pub fn gc(&self, now: Millis) -> Vec<u64> {
        let mut map = self.lock();
        let gone: Vec<u64> = map
            .iter()
            .filter(|(_, a)| a.resolved_at(now))
            .map(|(fp, _)| *fp)
            .collect();
        for fp in &gone {
            map.remove(fp);
        }
        gone
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(start: Millis, end: Millis, updated: Millis, timeout: bool) -> Alert {
        Alert {
            labels: [("alertname".to_owned(), "X".to_owned())].into(),
            annotations: LabelSet::new(),
            starts_at: start,
            ends_at: end,
            generator_url: String::new(),
            updated_at: updated,
            timeout,
        }
    }

    #[test]
    fn fingerprint_matches_prometheus() {
        // FNV-1a of "foo\xffbar\xff", computed independently with Python.
        assert_eq!(fingerprint(&LabelSet::new()), 0xcbf29ce484222325);
        let ls: LabelSet = [("foo".to_owned(), "bar".to_owned())].into();
        assert_eq!(format!("{:016x}", fingerprint(&ls)), "3fff2c2d7595e046");
    }

    #[test]
    fn merges_overlapping_keeps_earliest_start_and_explicit_end() {
        let s = AlertStore::new();
        s.put(vec![alert(1000, 10_000, 1000, false)], 1000);
        // A re-send with a derived (timeout) end inside the old range.
        s.put(vec![alert(2000, 9000, 2000, true)], 2000);
        let a = s.all().remove(0);
        assert_eq!(a.starts_at, 1000);
        assert_eq!(a.ends_at, 10_000, "explicit later end wins");
        assert_eq!(a.updated_at, 2000);
        // A non-overlapping one replaces.
        s.put(vec![alert(20_000, 30_000, 3000, false)], 3000);
        assert_eq!(s.all()[0].starts_at, 20_000);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn gc_drops_resolved() {
        let s = AlertStore::new();
        let mut b = alert(0, 5000, 0, false);
        b.labels.insert("x".into(), "y".into());
        s.put(vec![alert(0, 1000, 0, false), b], 0);
        assert_eq!(s.gc(1000).len(), 1);
        assert_eq!(s.len(), 1);
        assert!(!s.all()[0].resolved_at(4999));
    }
}

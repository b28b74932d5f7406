//! Silences with upstream's life cycle: pending → active → expired, an
//! update that would rewrite history expires the old silence and creates a
//! new one, and expired silences are forgotten after the retention.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::LabelSet;
use crate::matchers::{MatchOp, Matcher, is_valid_label_name};
use crate::time::Millis;

/// A silence matcher as the API carries it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    pub is_equal: bool,
}

impl SilenceMatcher {
    fn op(&self) -> MatchOp {
        match (self.is_regex, self.is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (true, false) => MatchOp::NotRegex,
        }
    }

    fn compile(&self) -> Result<Matcher, String> {
        if !is_valid_label_name(&self.name) {
            return Err(format!("invalid label name {:?}", self.name));
        }
        Matcher::new(self.op(), &self.name, &self.value).map_err(|e| {
            format!(
                "invalid regular expression {:?}: {}",
                self.value,
                crate::matchers::regex_reason(&e.reason)
            )
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Silence {
    /// Empty when creating.
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at: Millis,
    pub ends_at: Millis,
    pub updated_at: Millis,
    pub created_by: String,
    pub comment: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceState {
    Expired,
    Active,
    Pending,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Active => "active",
            Self::Pending => "pending",
        }
    }
}

impl Silence {
    /// Upstream's `getState` at millisecond resolution. Upstream counts the
    /// end instant itself as active, but its clock has nanoseconds, so a
    /// silence expired "now" reads as expired from the next request on;
    /// with milliseconds the next request may share the instant, so here
    /// the end instant counts as expired (and a silence expired by request
    /// is expired at once, as users see upstream).
    pub fn state(&self, now: Millis) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now >= self.ends_at {
            SilenceState::Expired
        } else {
            SilenceState::Active
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SilenceError {
    #[error("silence not found")]
    NotFound,
    #[error("silence invalid: {0}")]
    Invalid(String),
    #[error("silence {0} already expired")]
    AlreadyExpired(String),
    #[error("cannot generate a silence id: {0}")]
    Id(String),
}

struct Stored {
    silence: Silence,
    matchers: Vec<Matcher>,
}

fn validate(s: &Silence) -> Result<Vec<Matcher>, SilenceError> {
    let bad = |m: String| Err(SilenceError::Invalid(m));
    if s.id.is_empty() {
        return bad("ID missing".into());
    }
    if s.matchers.is_empty() {
        return bad("at least one matcher required".into());
    }
    let mut compiled = Vec::with_capacity(s.matchers.len());
    for (i, m) in s.matchers.iter().enumerate() {
        match m.compile() {
            Ok(c) => compiled.push(c),
            Err(e) => return bad(format!("invalid label matcher {i}: {e}")),
        }
    }
    // A silence whose every matcher accepts "" would silence everything.
    if compiled
        .iter()
        .all(|m| matches!(m.op, MatchOp::Equal | MatchOp::Regex) && m.matches(""))
    {
        return bad("at least one matcher must not match the empty string".into());
    }
    if s.starts_at == 0 {
        return bad("invalid zero start timestamp".into());
    }
    if s.ends_at == 0 {
        return bad("invalid zero end timestamp".into());
    }
    if s.ends_at < s.starts_at {
        return bad("end time must not be before start time".into());
    }
    Ok(compiled)
}

/// Whether `b` may overwrite `a` in place (upstream's `canUpdate`).
fn can_update(a: &Silence, b: &Silence, now: Millis) -> bool {
    if a.matchers != b.matchers {
        return false;
    }
    match a.state(now) {
        SilenceState::Active => b.starts_at == a.starts_at && b.ends_at >= now,
        SilenceState::Pending => b.starts_at >= now,
        SilenceState::Expired => false,
    }
}

/// All silences of this instance.
pub struct Silences {
    retention_ms: Millis,
    st: Mutex<HashMap<String, Stored>>,
}

impl std::fmt::Debug for Silences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Silences")
            .field("retention_ms", &self.retention_ms)
            .finish_non_exhaustive()
    }
}

impl Silences {
    /// `retention`: how long an expired silence is kept before GC.
    pub fn new(retention: std::time::Duration) -> Self {
        Self {
            retention_ms: i64::try_from(retention.as_millis()).unwrap_or(i64::MAX),
            st: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Stored>> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn store(
        map: &mut HashMap<String, Stored>,
        mut sil: Silence,
        now: Millis,
    ) -> Result<(), SilenceError> {
        sil.updated_at = now;
        let matchers = validate(&sil)?;
        map.insert(
            sil.id.clone(),
            Stored {
                silence: sil,
                matchers,
            },
        );
        Ok(())
    }

    /// Creates a silence (empty id) or updates one; returns its id, which
    /// is new when the update had to replace the silence.
    pub fn set(&self, mut sil: Silence, now: Millis) -> Result<String, SilenceError> {
        let mut map = self.lock();
        let prev = map.get(&sil.id).map(|s| s.silence.clone());
        if !sil.id.is_empty() && prev.is_none() {
            return Err(SilenceError::NotFound);
        }
        if let Some(prev) = prev {
            if can_update(&prev, &sil, now) {
                let id = sil.id.clone();
                Self::store(&mut map, sil, now)?;
                return Ok(id);
            }
            if prev.state(now) != SilenceState::Expired {
                Self::expire_locked(&mut map, &prev.id, now)?;
            }
        }
        sil.id = crate::uuid::new_v4().map_err(|e| SilenceError::Id(e.to_string()))?;
        if sil.starts_at < now {
            sil.starts_at = now;
        }
        let id = sil.id.clone();
        Self::store(&mut map, sil, now)?;
        Ok(id)
    }

    fn expire_locked(
        map: &mut HashMap<String, Stored>,
        id: &str,
        now: Millis,
    ) -> Result<(), SilenceError> {
        let mut sil = map
            .get(id)
            .map(|s| s.silence.clone())
            .ok_or(SilenceError::NotFound)?;
        match sil.state(now) {
            SilenceState::Expired => return Err(SilenceError::AlreadyExpired(id.to_owned())),
            SilenceState::Active => sil.ends_at = now,
            SilenceState::Pending => {
                sil.starts_at = now;
                sil.ends_at = now;
            }
        }
        Self::store(map, sil, now)
    }

    /// Puts back silences from a snapshot as they were (ids and times
    /// kept); invalid ones are skipped with a warning. Returns how many
    /// were restored.
    pub fn restore(&self, sils: Vec<Silence>) -> usize {
        let mut map = self.lock();
        let mut n = 0;
        for sil in sils {
            match validate(&sil) {
                Ok(matchers) => {
                    map.insert(
                        sil.id.clone(),
                        Stored {
                            silence: sil,
                            matchers,
                        },
                    );
                    n += 1;
                }
                Err(e) => {
                    tracing::warn!(id = %sil.id, error = %e, "skipping invalid silence in snapshot")
                }
            }
        }
        n
    }

    /// Merges silences a peer sent: a silence is taken when it is new here
    /// or was updated later than our copy (upstream's merge by
    /// `updatedAt`); invalid ones are skipped. Returns how many changed.
    pub fn merge(&self, sils: Vec<Silence>) -> usize {
        let mut map = self.lock();
        let mut n = 0;
        for sil in sils {
            if map
                .get(&sil.id)
                .is_some_and(|s| s.silence.updated_at >= sil.updated_at)
            {
                continue;
            }
            match validate(&sil) {
                Ok(matchers) => {
                    map.insert(
                        sil.id.clone(),
                        Stored {
                            silence: sil,
                            matchers,
                        },
                    );
                    n += 1;
                }
                Err(e) => {
                    tracing::warn!(id = %sil.id, error = %e, "skipping invalid silence from peer")
                }
            }
        }
        n
    }

    /// Ends a silence now.
    pub fn expire(&self, id: &str, now: Millis) -> Result<(), SilenceError> {
        Self::expire_locked(&mut self.lock(), id, now)
    }

    pub fn get(&self, id: &str) -> Option<Silence> {
        self.lock().get(id).map(|s| s.silence.clone())
    }

    /// Every silence still retained.
    pub fn all(&self) -> Vec<Silence> {
        self.lock().values().map(|s| s.silence.clone()).collect()
    }

    /// Ids of the active silences that match `labels`, sorted.
    pub fn mutes(&self, labels: &LabelSet, now: Millis) -> Vec<String> {
        let mut ids: Vec<String> = self
            .lock()
            .values()
            .filter(|s| s.silence.state(now) == SilenceState::Active)
            .filter(|s| crate::matchers::matches_all(&s.matchers, labels))
            .map(|s| s.silence.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Forgets silences that ended more than the retention ago.
    pub fn gc(&self, now: Millis) -> usize {
        let mut map = self.lock();
        let before = map.len();
        let retention = self.retention_ms;
        map.retain(|_, s| s.silence.ends_at.saturating_add(retention) >= now);
        before - map.len()
    }
}

/// Upstream's listing order: active by end time, then pending by start
/// time, then expired with the most recently ended first.
pub fn sort_for_listing(sils: &mut [Silence], now: Millis) {
    sils.sort_by(|a, b| {
        let rank = |s: &Silence| match s.state(now) {
            SilenceState::Active => 0,
            SilenceState::Pending => 1,
            SilenceState::Expired => 2,
        };
        rank(a).cmp(&rank(b)).then_with(|| match a.state(now) {
            SilenceState::Active => a.ends_at.cmp(&b.ends_at),
            SilenceState::Pending => a.starts_at.cmp(&b.starts_at),
            SilenceState::Expired => b.ends_at.cmp(&a.ends_at),
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Millis = 3_600_000;

    fn sil(start: Millis, end: Millis) -> Silence {
        Silence {
            id: String::new(),
            matchers: vec![SilenceMatcher {
                name: "alertname".into(),
                value: "Test".into(),
                is_regex: false,
                is_equal: true,
            }],
            starts_at: start,
            ends_at: end,
            updated_at: 0,
            created_by: "me".into(),
            comment: "c".into(),
        }
    }

    fn labels(v: &str) -> LabelSet {
        [("alertname".to_owned(), v.to_owned())].into()
    }

    #[test]
    fn merge_takes_only_newer_and_valid_silences() {
        let here = Silences::new(std::time::Duration::from_secs(3600));
        let id = here.set(sil(10 * H, 20 * H), 5 * H).unwrap();
        let mine = here.get(&id).unwrap();
        let mut older = mine.clone();
        older.comment = "stale".into();
        older.updated_at = mine.updated_at - 1;
        assert_eq!(here.merge(vec![older]), 0);
        assert_eq!(here.get(&id).unwrap().comment, "c");
        let mut newer = mine.clone();
        newer.comment = "peer".into();
        newer.updated_at = mine.updated_at + 1;
        let mut fresh = sil(10 * H, 20 * H);
        fresh.id = "other".into();
        fresh.updated_at = 7;
        let mut broken = fresh.clone();
        broken.id = "broken".into();
        broken.matchers.clear();
        assert_eq!(here.merge(vec![newer, fresh, broken]), 2);
        let got = here.get(&id).unwrap();
        assert_eq!(
            (got.comment.as_str(), got.updated_at),
            ("peer", mine.updated_at + 1)
        );
        assert_eq!(here.get("other").unwrap().updated_at, 7, "peer's time kept");
        assert!(here.get("broken").is_none());
    }

    #[test]
    fn lifecycle_and_matching() {
        let s = Silences::new(std::time::Duration::from_secs(3600));
        let now = 100 * H;
        let id = s.set(sil(now - H, now + H), now).unwrap();
        let got = s.get(&id).unwrap();
        assert_eq!(got.starts_at, now, "a start in the past is moved to now");
        assert_eq!(got.state(now), SilenceState::Active);
        assert_eq!(s.mutes(&labels("Test"), now), vec![id.clone()]);
        assert!(s.mutes(&labels("Other"), now).is_empty());
        let pending = s.set(sil(now + H, now + 2 * H), now).unwrap();
        assert_eq!(s.get(&pending).unwrap().state(now), SilenceState::Pending);
        assert_eq!(s.mutes(&labels("Test"), now).len(), 1);

        s.expire(&id, now + 10).unwrap();
        assert_eq!(s.get(&id).unwrap().state(now + 11), SilenceState::Expired);
        assert_eq!(
            s.expire(&id, now + 20).unwrap_err().to_string(),
            format!("silence {id} already expired")
        );
        assert_eq!(s.expire("nope", now).unwrap_err(), SilenceError::NotFound);
        // Expiring a pending silence ends it at once.
        s.expire(&pending, now + 10).unwrap();
        assert_eq!(s.get(&pending).unwrap().ends_at, now + 10);

        assert_eq!(s.gc(now + 10 + H), 0, "kept for the retention");
        assert_eq!(s.gc(now + 10 + H + 1), 2);
        assert!(s.all().is_empty());
    }

    #[test]
    fn updates_in_place_or_replace() {
        let s = Silences::new(std::time::Duration::from_secs(3600));
        let now = 100 * H;
        let id = s.set(sil(now, now + H), now).unwrap();
        // Extending an active silence keeps the id.
        let mut upd = s.get(&id).unwrap();
        upd.ends_at = now + 2 * H;
        upd.comment = "longer".into();
        assert_eq!(s.set(upd.clone(), now + 5).unwrap(), id);
        assert_eq!(s.get(&id).unwrap().comment, "longer");
        // Changing matchers replaces: old expired, new id.
        upd.matchers[0].value = "Other".into();
        let new_id = s.set(upd, now + 10).unwrap();
        assert_ne!(new_id, id);
        assert_eq!(s.get(&id).unwrap().ends_at, now + 10);
        assert_eq!(s.get(&new_id).unwrap().matchers[0].value, "Other");
        // Unknown ids are not created.
        let mut ghost = sil(now, now + H);
        ghost.id = "ghost".into();
        assert_eq!(s.set(ghost, now).unwrap_err(), SilenceError::NotFound);
    }

    #[test]
    fn validation_messages() {
        let s = Silences::new(std::time::Duration::from_secs(3600));
        let mut empty = sil(1, 2);
        empty.matchers[0].value = String::new();
        assert_eq!(
            s.set(empty, 1).unwrap_err().to_string(),
            "silence invalid: at least one matcher must not match the empty string"
        );
        let mut none = sil(1, 2);
        none.matchers.clear();
        assert_eq!(
            s.set(none, 1).unwrap_err().to_string(),
            "silence invalid: at least one matcher required"
        );
        let mut re = sil(1, 2);
        re.matchers[0].is_regex = true;
        re.matchers[0].value = "((".into();
        assert!(
            s.set(re, 1)
                .unwrap_err()
                .to_string()
                .contains("invalid label matcher 0: invalid regular expression")
        );
    }

    #[test]
    fn listing_order() {
        let now = 10 * H;
        let mut v = vec![
            sil(0, now - 2),
            sil(now + 5, now + 9 * H),
            sil(0, now + 3 * H),
            sil(0, now + H),
            sil(0, now - 1),
        ];
        sort_for_listing(&mut v, now);
        let ends: Vec<Millis> = v.iter().map(|s| s.ends_at).collect();
        assert_eq!(
            ends,
            vec![now + H, now + 3 * H, now + 9 * H, now - 1, now - 2]
        );
    }
}

//! A small cache of values computed from a text (a parsed query, a
//! compiled regex), for work that is repeated with the same text: bounded
//! in entries and text length, and emptied when full rather than keeping
//! recency (the working sets it serves are far smaller than its bound).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

pub struct TextCache<V> {
    map: Mutex<HashMap<String, V>>,
    entries: usize,
    text_max: usize,
}

impl<V: Clone> TextCache<V> {
    /// At most `entries` values, for texts of at most `text_max` bytes
    /// (longer ones are computed every time).
    pub fn new(entries: usize, text_max: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            entries,
            text_max,
        }
    }

    /// The value kept for `text`, or `compute(text)`, kept if it is `Ok`.
    /// Errors are not kept: a failing text is computed again next time.
    pub fn get_or_try<E>(
        &self,
        text: &str,
        compute: impl FnOnce(&str) -> Result<V, E>,
    ) -> Result<V, E> {
        if let Some(v) = self.lock().get(text) {
            return Ok(v.clone());
        }
        // computed outside the lock: other texts are not held up
        let v = compute(text)?;
        if text.len() <= self.text_max {
            let mut map = self.lock();
            if map.len() >= self.entries {
                map.clear();
            }
            map.insert(text.to_owned(), v.clone());
        }
        Ok(v)
    }

    /// Whether a value for `text` is kept.
    pub fn contains(&self, text: &str) -> bool {
        self.lock().contains_key(text)
    }

    /// Values kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, V>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_successes_within_its_bounds_and_never_errors() {
        let cache: TextCache<usize> = TextCache::new(4, 8);
        let mut calls = 0;
        let mut get = |t: &str| {
            cache.get_or_try(t, |t| {
                calls += 1;
                if t.starts_with('!') {
                    Err(format!("bad {t}"))
                } else {
                    Ok(t.len())
                }
            })
        };
        assert_eq!(get("abc"), Ok(3));
        assert_eq!(get("abc"), Ok(3));
        assert_eq!(get("!x"), Err("bad !x".to_owned()));
        assert_eq!(get("!x"), Err("bad !x".to_owned()));
        // too long to keep
        assert_eq!(get("123456789"), Ok(9));
        assert_eq!(get("123456789"), Ok(9));
        assert_eq!(calls, 5);
        assert!(cache.contains("abc") && !cache.contains("!x") && !cache.contains("123456789"));
        for t in ["a", "b", "c", "d", "e"] {
            cache.get_or_try(t, |t| Ok::<_, ()>(t.len())).unwrap();
            assert!(cache.len() <= 4);
        }
        assert!(cache.contains("e"));
    }
}

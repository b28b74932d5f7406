//! Label sets: sorted by name, names unique.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The label holding a series' metric name.
pub const METRIC_NAME: &str = "__name__";

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Label {
    pub name: String,
    pub value: String,
}

/// A series' identity. Always sorted by label name with no duplicates and no
/// empty values (an empty value means "absent" in Prometheus).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Labels(Vec<Label>);

impl Labels {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    /// Builds a set from pairs in any order. Later duplicates win; empty
    /// values are dropped.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut v: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label {
                name: n.into(),
                value: v.into(),
            })
            .collect();
        // stable sort keeps input order among equal names; keep the last
        v.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out: Vec<Label> = Vec::with_capacity(v.len());
        for l in v {
            match out.last_mut() {
                Some(last) if last.name == l.name => *last = l,
                _ => out.push(l),
            }
        }
        out.retain(|l| !l.value.is_empty());
        Self(out)
    }

    /// Builds a set from labels already sorted by unique name; returns the
    /// offending name otherwise, for decoders that must reject bad input.
    pub fn from_sorted(labels: Vec<Label>) -> Result<Self, String> {
        for w in labels.windows(2) {
            if w[0].name >= w[1].name {
                return Err(w[1].name.clone());
            }
        }
        Ok(Self(
            labels.into_iter().filter(|l| !l.value.is_empty()).collect(),
        ))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    /// Sets (or with an empty value removes) one label.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) if value.is_empty() => {
                self.0.remove(i);
            }
            Ok(i) => self.0[i].value = value.to_owned(),
            Err(_) if value.is_empty() => {}
            Err(i) => self.0.insert(
                i,
                Label {
                    name: name.to_owned(),
                    value: value.to_owned(),
                },
            ),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.set(name, "");
    }

    /// The set without its metric name, as PromQL functions return.
    pub fn without_metric_name(&self) -> Self {
        Self(
            self.0
                .iter()
                .filter(|l| l.name != METRIC_NAME)
                .cloned()
                .collect(),
        )
    }

    /// Keeps only the named labels (`by`/`on`).
    pub fn keep(&self, names: &[String]) -> Self {
        Self(
            self.0
                .iter()
                .filter(|l| names.contains(&l.name))
                .cloned()
                .collect(),
        )
    }

    /// Drops the named labels (`without`/`ignoring`).
    pub fn drop_names(&self, names: &[String]) -> Self {
        Self(
            self.0
                .iter()
                .filter(|l| !names.contains(&l.name))
                .cloned()
                .collect(),
        )
    }

    /// A hash that is the same in every process and version (FNV-1a over
    /// name and value bytes with separators), for sharding and rings.
    pub fn stable_hash(&self) -> u64 {
        const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut h = OFFSET;
        for l in &self.0 {
            for b in l
                .name
                .bytes()
                .chain([0xff])
                .chain(l.value.bytes())
                .chain([0xff])
            {
                h ^= u64::from(b);
                h = h.wrapping_mul(PRIME);
            }
        }
        h
    }
}

/// Read access to a label set in any representation (owned [`Labels`], or
/// a view into a decoded request), so a writer can look a series up before
/// deciding to allocate its labels.
///
/// Implementors yield pairs sorted by name, names unique, values non-empty:
/// the invariants of [`Labels`].
pub trait LabelSet {
    fn label_count(&self) -> usize;

    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_;

    /// The owned form, for series being created and for error messages.
    fn to_labels(&self) -> Labels {
        Labels(
            self.pairs()
                .map(|(n, v)| Label {
                    name: n.to_owned(),
                    value: v.to_owned(),
                })
                .collect(),
        )
    }
}

impl LabelSet for Labels {
    fn label_count(&self) -> usize {
        self.0.len()
    }

    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.0.iter().map(|l| (l.name.as_str(), l.value.as_str()))
    }

    fn to_labels(&self) -> Labels {
        self.clone()
    }
}

impl<T: LabelSet + ?Sized> LabelSet for &T {
    fn label_count(&self) -> usize {
        (**self).label_count()
    }

    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        (**self).pairs()
    }

    fn to_labels(&self) -> Labels {
        (**self).to_labels()
    }
}

impl fmt::Display for Labels {
    /// Prometheus' spelling: `{a="1", b="2"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_without_empty() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("b", "3"), ("c", "")]);
        assert_eq!(l.to_string(), r#"{a="1", b="3"}"#);
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("c"), None);
    }

    #[test]
    fn set_and_remove() {
        let mut l = Labels::from_pairs([("__name__", "up"), ("job", "x")]);
        l.set("instance", "h:1");
        l.remove("job");
        assert_eq!(l.to_string(), r#"{__name__="up", instance="h:1"}"#);
        assert_eq!(l.without_metric_name().to_string(), r#"{instance="h:1"}"#);
        assert_eq!(l.metric_name(), Some("up"));
    }

    #[test]
    fn from_sorted_rejects_unsorted_and_duplicates() {
        let lab = |n: &str| Label {
            name: n.into(),
            value: "v".into(),
        };
        assert!(Labels::from_sorted(vec![lab("a"), lab("b")]).is_ok());
        assert_eq!(
            Labels::from_sorted(vec![lab("b"), lab("a")]),
            Err("a".into())
        );
        assert_eq!(
            Labels::from_sorted(vec![lab("a"), lab("a")]),
            Err("a".into())
        );
    }

    #[test]
    fn stable_hash_is_stable_and_separates_boundaries() {
        let a = Labels::from_pairs([("a", "bc")]);
        let b = Labels::from_pairs([("ab", "c")]);
        assert_ne!(a.stable_hash(), b.stable_hash());
        assert_eq!(
            a.stable_hash(),
            Labels::from_pairs([("a", "bc")]).stable_hash()
        );
        // pinned so a change to the hash (which would move series between
        // ring owners) is noticed
        assert_eq!(Labels::new().stable_hash(), 0xcbf2_9ce4_8422_2325);
    }
}

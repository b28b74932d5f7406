//! The inverted index: interned label strings, each series' label set, and
//! a sorted postings list of series refs per (name, value).

use std::collections::HashMap;
use std::sync::Arc;

use pharos_model::{Label, LabelSet, Labels, MatchOp, Matcher};

use crate::error::TsdbError;
use crate::hash::IntMap;

/// A series' id within one head. Dense and increasing, so postings stay
/// sorted by appending.
pub type SeriesRef = u64;

/// Each distinct label string is stored once; series hold ids. Strings are
/// not freed when their last series goes (they are few compared with series
/// and a restart compacts them).
#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<Arc<str>, u32>,
    strs: Vec<Arc<str>>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.strs.len() as u32;
        let a: Arc<str> = Arc::from(s);
        self.strs.push(Arc::clone(&a));
        self.ids.insert(a, id);
        id
    }

    fn get(&self, s: &str) -> Option<u32> {
        self.ids.get(s).copied()
    }

    fn str(&self, id: u32) -> &str {
        self.strs.get(id as usize).map_or("", |s| s)
    }

    fn heap_bytes(&self) -> usize {
        // Arc header (two counters) + text, the Vec slot and a map entry
        self.strs.iter().map(|s| 16 + s.len()).sum::<usize>() + self.strs.len() * (16 + 16 + 4 + 8)
    }
}

#[derive(Debug, Default)]
pub struct Index {
    strings: Interner,
    /// name id -> value id -> sorted refs
    postings: IntMap<u32, IntMap<u32, Vec<SeriesRef>>>,
    /// Every live series, sorted.
    all: Vec<SeriesRef>,
    /// Label pairs (name id, value id) in label-name order.
    series: IntMap<SeriesRef, Box<[(u32, u32)]>>,
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// Adds a series. `r` must be larger than every ref added before, which
    /// keeps postings sorted without searching.
    pub fn add(&mut self, r: SeriesRef, labels: &Labels) {
        let pairs: Box<[(u32, u32)]> = labels
            .iter()
            .map(|l| (self.strings.intern(&l.name), self.strings.intern(&l.value)))
            .collect();
        for &(n, v) in pairs.iter() {
            let list = self.postings.entry(n).or_default().entry(v).or_default();
            push_sorted(list, r);
        }
        push_sorted(&mut self.all, r);
        self.series.insert(r, pairs);
    }

    /// Removes series, e.g. after their data moved out of the head.
    pub fn remove(&mut self, refs: &[SeriesRef]) {
        let mut gone: Vec<SeriesRef> = refs.to_vec();
        gone.sort_unstable();
        gone.dedup();
        let mut touched: Vec<(u32, u32)> = Vec::new();
        for r in &gone {
            if let Some(pairs) = self.series.remove(r) {
                touched.extend(pairs.iter().copied());
            }
        }
        touched.sort_unstable();
        touched.dedup();
        let dead = |r: &SeriesRef| gone.binary_search(r).is_ok();
        for (n, v) in touched {
            if let Some(values) = self.postings.get_mut(&n) {
                if let Some(list) = values.get_mut(&v) {
                    list.retain(|r| !dead(r));
                    if list.is_empty() {
                        values.remove(&v);
                    }
                }
                if values.is_empty() {
                    self.postings.remove(&n);
                }
            }
        }
        self.all.retain(|r| !dead(r));
    }

    /// The series' labels, materialized.
    pub fn labels(&self, r: SeriesRef) -> Option<Labels> {
        let pairs = self.series.get(&r)?;
        let v = pairs
            .iter()
            .map(|&(n, v)| Label {
                name: self.strings.str(n).to_owned(),
                value: self.strings.str(v).to_owned(),
            })
            .collect();
        Labels::from_sorted(v).ok()
    }

    /// Whether series `r` has exactly these labels, without allocating.
    pub fn labels_eq<L: LabelSet + ?Sized>(&self, r: SeriesRef, labels: &L) -> bool {
        let Some(pairs) = self.series.get(&r) else {
            return false;
        };
        pairs.len() == labels.label_count()
            && pairs
                .iter()
                .zip(labels.pairs())
                .all(|(&(n, v), (name, value))| {
                    self.strings.str(v) == value && self.strings.str(n) == name
                })
    }

    /// Calls `f` with each (name, value) of series `r`.
    pub fn for_each_label(&self, r: SeriesRef, mut f: impl FnMut(&str, &str)) {
        if let Some(pairs) = self.series.get(&r) {
            for &(n, v) in pairs.iter() {
                f(self.strings.str(n), self.strings.str(v));
            }
        }
    }

    /// All label names, sorted.
    pub fn label_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .postings
            .keys()
            .map(|&n| self.strings.str(n).to_owned())
            .collect();
        v.sort_unstable();
        v
    }

    /// All values of one label, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        let Some(values) = self.strings.get(name).and_then(|n| self.postings.get(&n)) else {
            return Vec::new();
        };
        let mut v: Vec<String> = values
            .keys()
            .map(|&v| self.strings.str(v).to_owned())
            .collect();
        v.sort_unstable();
        v
    }

    /// Refs of the series the matchers select, sorted, with Prometheus
    /// semantics: a matcher that matches the empty string also selects
    /// series without the label, and at least one matcher must not match
    /// the empty string (otherwise the selector would select everything).
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<SeriesRef>, TsdbError> {
        if matchers.iter().all(Matcher::matches_empty) {
            return Err(TsdbError::InvalidSelector(
                "vector selector must contain at least one non-empty matcher".into(),
            ));
        }
        let mut include: Vec<Vec<SeriesRef>> = Vec::new();
        let mut exclude: Vec<Vec<SeriesRef>> = Vec::new();
        for m in matchers {
            if m.matches_empty() {
                // keep series without the label and those whose value
                // matches: drop the ones whose value does not
                exclude.push(self.postings_where(m, true));
            } else {
                let p = self.postings_where(m, false);
                if p.is_empty() {
                    return Ok(Vec::new());
                }
                include.push(p);
            }
        }
        include.sort_by_key(Vec::len);
        let mut it = include.into_iter();
        let mut out = it.next().unwrap_or_default();
        for p in it {
            out = intersect(&out, &p);
            if out.is_empty() {
                return Ok(out);
            }
        }
        for p in exclude {
            out = subtract(&out, &p);
        }
        Ok(out)
    }

    /// The union of postings of `m.name`'s values for which
    /// `m.matches(value) != invert`.
    fn postings_where(&self, m: &Matcher, invert: bool) -> Vec<SeriesRef> {
        let Some(name) = self.strings.get(&m.name) else {
            return Vec::new();
        };
        let Some(values) = self.postings.get(&name) else {
            return Vec::new();
        };
        let lookup = |lits: &[&str]| {
            let lists: Vec<&Vec<SeriesRef>> = lits
                .iter()
                .filter_map(|s| self.strings.get(s))
                .filter_map(|id| values.get(&id))
                .collect();
            union(&lists)
        };
        // fast paths: the wanted values are a known literal set
        match (m.op, invert) {
            (MatchOp::Equal, false) | (MatchOp::NotEqual, true) => {
                return lookup(&[m.value.as_str()]);
            }
            (MatchOp::Regex, false) | (MatchOp::NotRegex, true) => {
                if let Some(set) = m.set_matches() {
                    let lits: Vec<&str> = set.iter().map(String::as_str).collect();
                    return lookup(&lits);
                }
            }
            _ => {}
        }
        let prefix = m.literal_prefix();
        let lists: Vec<&Vec<SeriesRef>> = values
            .iter()
            .filter(|&(&v, _)| {
                let s = self.strings.str(v);
                // a value without the literal prefix cannot match the
                // regex, so it only runs on the candidates
                let matched = match prefix {
                    Some(p) if !s.starts_with(p) => m.op == MatchOp::NotRegex,
                    _ => m.matches(s),
                };
                matched != invert
            })
            .map(|(_, list)| list)
            .collect();
        union(&lists)
    }

    /// Rough heap bytes held, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        let postings: usize = self
            .postings
            .values()
            .map(|vals| {
                vals.values()
                    .map(|l| l.capacity() * std::mem::size_of::<SeriesRef>() + 24 + 4 + 8)
                    .sum::<usize>()
                    + 48
            })
            .sum();
        let series: usize = self
            .series
            .values()
            .map(|p| p.len() * 8 + 16 + std::mem::size_of::<SeriesRef>() + 8)
            .sum();
        self.strings.heap_bytes()
            + postings
            + series
            + self.all.capacity() * std::mem::size_of::<SeriesRef>()
    }
}

fn push_sorted(list: &mut Vec<SeriesRef>, r: SeriesRef) {
    match list.last() {
        Some(&last) if last >= r => {
            if let Err(i) = list.binary_search(&r) {
                list.insert(i, r);
            }
        }
        _ => list.push(r),
    }
}

fn union(lists: &[&Vec<SeriesRef>]) -> Vec<SeriesRef> {
    match lists {
        [] => Vec::new(),
        [one] => (*one).clone(),
        _ => {
            let mut out: Vec<SeriesRef> = Vec::with_capacity(lists.iter().map(|l| l.len()).sum());
            for l in lists {
                out.extend_from_slice(l);
            }
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

/// Sorted intersection; gallops through the longer list when the lengths
/// differ a lot (a rare `instance` against a common `job`).
pub fn intersect(a: &[SeriesRef], b: &[SeriesRef]) -> Vec<SeriesRef> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    if small.len() * 16 < large.len() {
        let mut rest = large;
        for &x in small {
            match rest.binary_search(&x) {
                Ok(i) => {
                    out.push(x);
                    rest = &rest[i + 1..];
                }
                Err(i) => rest = &rest[i..],
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    while i < small.len() && j < large.len() {
        match small[i].cmp(&large[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(small[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Sorted difference `a - b`.
pub fn subtract(a: &[SeriesRef], b: &[SeriesRef]) -> Vec<SeriesRef> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j >= b.len() || b[j] != x {
            out.push(x);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::Rng;

    fn m(op: MatchOp, n: &str, v: &str) -> Matcher {
        Matcher::new(op, n, v).unwrap()
    }

    fn fixture() -> (Index, Vec<Labels>) {
        let sets = vec![
            Labels::from_pairs([("__name__", "up"), ("job", "api"), ("instance", "a:1")]),
            Labels::from_pairs([("__name__", "up"), ("job", "web"), ("instance", "b:1")]),
            Labels::from_pairs([("__name__", "up"), ("job", "db")]),
            Labels::from_pairs([
                ("__name__", "http_requests_total"),
                ("job", "api"),
                ("code", "200"),
            ]),
            Labels::from_pairs([
                ("__name__", "http_requests_total"),
                ("job", "api"),
                ("code", "500"),
            ]),
            Labels::from_pairs([("__name__", "http_errors"), ("job", "apiserver")]),
        ];
        let mut idx = Index::new();
        for (i, l) in sets.iter().enumerate() {
            idx.add(i as SeriesRef, l);
        }
        (idx, sets)
    }

    /// The definition: a series is selected when every matcher matches its
    /// value (empty when absent).
    fn brute(sets: &[Labels], ms: &[Matcher]) -> Vec<SeriesRef> {
        (0..sets.len() as SeriesRef)
            .filter(|&r| {
                ms.iter()
                    .all(|m| m.matches(sets[r as usize].get(&m.name).unwrap_or("")))
            })
            .collect()
    }

    #[test]
    fn matchers_follow_prometheus_semantics() {
        let (idx, sets) = fixture();
        let cases: Vec<Vec<Matcher>> = vec![
            vec![Matcher::equal("__name__", "up")],
            vec![
                Matcher::equal("__name__", "up"),
                Matcher::equal("instance", ""),
            ],
            vec![
                Matcher::equal("__name__", "up"),
                m(MatchOp::NotEqual, "job", "api"),
            ],
            vec![m(MatchOp::Regex, "job", "api|web")],
            vec![m(MatchOp::Regex, "job", "api.*")],
            vec![
                m(MatchOp::Regex, "job", "a.*"),
                m(MatchOp::NotRegex, "code", "5.."),
            ],
            vec![
                m(MatchOp::Regex, "__name__", ".+"),
                m(MatchOp::NotRegex, "job", "api|db"),
            ],
            vec![
                m(MatchOp::Regex, "__name__", "up"),
                m(MatchOp::Regex, "code", "|200"),
            ],
            vec![m(MatchOp::NotEqual, "job", "")],
            vec![Matcher::equal("job", "nope")],
            vec![Matcher::equal("nolabel", "x")],
            vec![
                m(MatchOp::Regex, "job", "(api|web)"),
                m(MatchOp::NotRegex, "instance", "b.*"),
            ],
        ];
        for ms in cases {
            assert_eq!(idx.select(&ms).unwrap(), brute(&sets, &ms), "{ms:?}");
        }
        assert_eq!(
            idx.select(&[Matcher::equal("__name__", "up")]).unwrap(),
            vec![0, 1, 2]
        );
    }

    #[test]
    fn selector_needs_a_non_empty_matcher() {
        let (idx, _) = fixture();
        for ms in [
            vec![],
            vec![Matcher::equal("job", "")],
            vec![
                m(MatchOp::Regex, "job", ".*"),
                m(MatchOp::NotEqual, "x", "y"),
            ],
        ] {
            let err = idx.select(&ms).unwrap_err();
            assert!(err.to_string().contains("at least one non-empty matcher"));
        }
    }

    #[test]
    fn removal_updates_postings_and_values() {
        let (mut idx, _) = fixture();
        idx.remove(&[0, 3, 4]);
        assert_eq!(idx.len(), 3);
        assert_eq!(
            idx.select(&[Matcher::equal("job", "api")]).unwrap(),
            Vec::<SeriesRef>::new()
        );
        assert!(!idx.label_names().contains(&"code".to_string()));
        assert_eq!(idx.label_values("job"), vec!["apiserver", "db", "web"]);
        assert_eq!(idx.labels(1).unwrap().get("job"), Some("web"));
        assert!(idx.labels(0).is_none());
        assert!(idx.labels_eq(2, &Labels::from_pairs([("__name__", "up"), ("job", "db")])));
        assert!(!idx.labels_eq(2, &Labels::from_pairs([("__name__", "up")])));
    }

    #[test]
    fn randomized_against_brute_force() {
        let mut rng = Rng::new(99);
        let mut sets = Vec::new();
        let mut idx = Index::new();
        for r in 0..400u64 {
            let mut pairs = vec![("__name__".to_string(), format!("m{}", rng.below(5)))];
            for name in ["a", "b", "c"] {
                if rng.below(3) > 0 {
                    pairs.push((name.to_string(), format!("v{}", rng.below(6))));
                }
            }
            let l = Labels::from_pairs(pairs);
            idx.add(r, &l);
            sets.push(l);
        }
        let ops = [
            MatchOp::Equal,
            MatchOp::NotEqual,
            MatchOp::Regex,
            MatchOp::NotRegex,
        ];
        let pats = ["v1", "", "v1|v2", "v.*", "v[0-2]", ".*", ".+", "x|v3"];
        let names = ["__name__", "a", "b", "c", "zz"];
        for _ in 0..500 {
            let n = 1 + rng.below(3) as usize;
            let ms: Vec<Matcher> = (0..n)
                .map(|_| {
                    let op = ops[rng.below(4) as usize];
                    let pat = pats[rng.below(pats.len() as u64) as usize];
                    m(op, names[rng.below(5) as usize], pat)
                })
                .collect();
            match idx.select(&ms) {
                Ok(got) => assert_eq!(got, brute(&sets, &ms), "{ms:?}"),
                Err(_) => assert!(ms.iter().all(Matcher::matches_empty)),
            }
        }
    }

    #[test]
    fn set_operations() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 5]), vec![3, 5]);
        let big: Vec<SeriesRef> = (0..1000).collect();
        assert_eq!(intersect(&[5, 500, 2000], &big), vec![5, 500]);
        assert_eq!(subtract(&[1, 2, 3, 4], &[2, 4, 9]), vec![1, 3]);
        assert_eq!(union(&[&vec![1, 4], &vec![2, 4]]), vec![1, 2, 4]);
    }
}

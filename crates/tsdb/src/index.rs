//! The inverted index: interned label strings, each series' label set, and
//! a sorted postings list of series refs per (name, value).

use std::collections::HashMap;
use std::sync::Arc;

use pharos_model::{Label, LabelSet, Labels, MatchOp, Matcher};

use crate::error::TsdbError;
use crate::hash::{IntMap, NarrowMap};

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

/// Sorted refs of one (name, value) pair. Refs stay below 2^32 until four
/// billion series were created, so lists hold them in four bytes and widen
/// only past that.
#[derive(Debug)]
enum Postings {
    Narrow(Vec<u32>),
    Wide(Vec<SeriesRef>),
}

impl Default for Postings {
    fn default() -> Self {
        Self::Narrow(Vec::new())
    }
}

/// Room for one more element: small lists double, large ones grow by an
/// eighth, so a big list (`job="node"` over every series) carries ~6%
/// slack on average instead of ~40%. Copying on growth stays amortized
/// O(1) per element.
fn make_room<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        let extra = if v.len() < 64 {
            v.len().max(4)
        } else {
            v.len() / 8
        };
        v.reserve_exact(extra);
    }
}

impl Postings {
    fn len(&self) -> usize {
        match self {
            Self::Narrow(v) => v.len(),
            Self::Wide(v) => v.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Self::Narrow(v) => v.capacity() * 4,
            Self::Wide(v) => v.capacity() * 8,
        }
    }

    fn extend_into(&self, out: &mut Vec<SeriesRef>) {
        match self {
            Self::Narrow(v) => out.extend(v.iter().map(|&r| SeriesRef::from(r))),
            Self::Wide(v) => out.extend_from_slice(v),
        }
    }

    fn to_refs(&self) -> Vec<SeriesRef> {
        let mut out = Vec::with_capacity(self.len());
        self.extend_into(&mut out);
        out
    }

    fn push_sorted(&mut self, r: SeriesRef) {
        if let Self::Narrow(v) = self {
            match u32::try_from(r) {
                Ok(x) => {
                    match v.last() {
                        Some(&last) if last >= x => {
                            if let Err(i) = v.binary_search(&x) {
                                make_room(v);
                                v.insert(i, x);
                            }
                        }
                        _ => {
                            make_room(v);
                            v.push(x);
                        }
                    }
                    return;
                }
                Err(_) => {
                    let wide = v.iter().map(|&x| SeriesRef::from(x)).collect();
                    *self = Self::Wide(wide);
                }
            }
        }
        if let Self::Wide(v) = self {
            match v.last() {
                Some(&last) if last >= r => {
                    if let Err(i) = v.binary_search(&r) {
                        make_room(v);
                        v.insert(i, r);
                    }
                }
                _ => {
                    make_room(v);
                    v.push(r);
                }
            }
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(SeriesRef) -> bool) {
        match self {
            Self::Narrow(v) => v.retain(|&r| keep(SeriesRef::from(r))),
            Self::Wide(v) => v.retain(|&r| keep(r)),
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut x: u32) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Decodes one LEB128 integer at `*pos`. The arena is written only by
/// [`put_varint`], so the input is well formed; a truncated one reads as 0.
fn get_varint(buf: &[u8], pos: &mut usize) -> u32 {
    let mut x = 0u32;
    let mut shift = 0;
    while let Some(&b) = buf.get(*pos) {
        *pos += 1;
        x |= u32::from(b & 0x7f) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    x
}

/// Every series' label pairs, back to back in one buffer: a pair count then
/// (name id, value id) pairs, all LEB128. Most ids are small, so a typical
/// series takes about a dozen bytes and no allocation of its own (a boxed
/// `[(u32, u32)]` took ~40 bytes plus its 16-byte pointer).
#[derive(Debug, Default)]
struct LabelArena {
    buf: Vec<u8>,
    /// Bytes of removed series not yet compacted away.
    dead: usize,
}

impl LabelArena {
    fn push(&mut self, pairs: &[(u32, u32)]) -> u64 {
        let at = self.buf.len() as u64;
        let mut enc: Vec<u8> = Vec::with_capacity(1 + pairs.len() * 4);
        put_varint(&mut enc, pairs.len() as u32);
        for &(n, v) in pairs {
            put_varint(&mut enc, n);
            put_varint(&mut enc, v);
        }
        if self.buf.capacity() - self.buf.len() < enc.len() {
            // grow by an eighth: amortized O(1), little slack
            let extra = (self.buf.len() / 8).max(enc.len()).max(4096);
            self.buf.reserve_exact(extra);
        }
        self.buf.extend_from_slice(&enc);
        at
    }

    /// The pairs of the entry at `at`.
    fn pairs(&self, at: u64) -> PairIter<'_> {
        let mut pos = usize::try_from(at).unwrap_or(usize::MAX);
        let left = if pos < self.buf.len() {
            get_varint(&self.buf, &mut pos)
        } else {
            0
        };
        PairIter {
            buf: &self.buf,
            pos,
            left,
        }
    }

    /// Bytes the entry at `at` takes.
    fn entry_len(&self, at: u64) -> usize {
        let mut it = self.pairs(at);
        let start = usize::try_from(at).unwrap_or(usize::MAX);
        for _ in &mut it {}
        it.pos.saturating_sub(start)
    }
}

struct PairIter<'a> {
    buf: &'a [u8],
    pos: usize,
    left: u32,
}

impl PairIter<'_> {
    /// Pairs not yet read.
    fn left(&self) -> usize {
        self.left as usize
    }
}

impl Iterator for PairIter<'_> {
    type Item = (u32, u32);

    fn next(&mut self) -> Option<(u32, u32)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let n = get_varint(self.buf, &mut self.pos);
        let v = get_varint(self.buf, &mut self.pos);
        Some((n, v))
    }
}

#[derive(Debug, Default)]
pub struct Index {
    strings: Interner,
    /// name id -> value id -> sorted refs
    postings: IntMap<u32, IntMap<u32, Postings>>,
    /// Live series.
    count: usize,
    /// Where each series' label pairs (in label-name order) start in
    /// `labels`.
    series: NarrowMap,
    labels: LabelArena,
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds a series. `r` should be larger than every ref added before,
    /// which keeps postings sorted by appending.
    pub fn add(&mut self, r: SeriesRef, labels: &Labels) {
        if self.series.contains_key(r) {
            // a ref names one series for good: nothing to add
            return;
        }
        let pairs: Vec<(u32, u32)> = labels
            .iter()
            .map(|l| (self.strings.intern(&l.name), self.strings.intern(&l.value)))
            .collect();
        for &(n, v) in &pairs {
            self.postings
                .entry(n)
                .or_default()
                .entry(v)
                .or_default()
                .push_sorted(r);
        }
        let at = self.labels.push(&pairs);
        self.series.insert(r, at);
        self.count += 1;
    }

    /// Removes series, e.g. after their data moved out of the head.
    pub fn remove(&mut self, refs: &[SeriesRef]) {
        let mut gone: Vec<SeriesRef> = refs.to_vec();
        gone.sort_unstable();
        gone.dedup();
        let mut touched: Vec<(u32, u32)> = Vec::new();
        for r in &gone {
            if let Some(at) = self.series.remove(*r) {
                touched.extend(self.labels.pairs(at));
                self.labels.dead += self.labels.entry_len(at);
                self.count -= 1;
            }
        }
        touched.sort_unstable();
        touched.dedup();
        let dead = |r: SeriesRef| gone.binary_search(&r).is_ok();
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
        self.compact_labels();
    }

    /// Rewrites the label arena without removed series once they are the
    /// larger part of it: O(live series), at most once per halving.
    fn compact_labels(&mut self) {
        if self.labels.dead < 4096 || self.labels.dead * 2 < self.labels.buf.len() {
            return;
        }
        let live = self.labels.buf.len() - self.labels.dead;
        let mut fresh = LabelArena {
            buf: Vec::with_capacity(live + live / 8),
            dead: 0,
        };
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        let old: Vec<(SeriesRef, u64)> = self.series.iter().collect();
        for (r, at) in old {
            pairs.clear();
            pairs.extend(self.labels.pairs(at));
            self.series.insert(r, fresh.push(&pairs));
        }
        self.labels = fresh;
    }

    /// The series' labels, materialized.
    pub fn labels(&self, r: SeriesRef) -> Option<Labels> {
        self.series.get(r)?;
        let v = self
            .label_strs(r)
            .map(|(name, value)| Label {
                name: name.to_owned(),
                value: value.to_owned(),
            })
            .collect();
        Labels::from_sorted(v).ok()
    }

    /// Series `r`'s (name, value) pairs in label order, without
    /// allocating: compared as sequences they order series as [`Labels`]
    /// does.
    pub(crate) fn label_strs(&self, r: SeriesRef) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.series
            .get(r)
            .map(|at| self.labels.pairs(at))
            .into_iter()
            .flatten()
            .map(|(n, v)| (self.strings.str(n), self.strings.str(v)))
    }

    /// Whether series `r` has exactly these labels, without allocating.
    pub fn labels_eq<L: LabelSet + ?Sized>(&self, r: SeriesRef, labels: &L) -> bool {
        let Some(at) = self.series.get(r) else {
            return false;
        };
        let pairs = self.labels.pairs(at);
        pairs.left() == labels.label_count()
            && pairs.zip(labels.pairs()).all(|((n, v), (name, value))| {
                self.strings.str(v) == value && self.strings.str(n) == name
            })
    }

    /// Calls `f` with each (name, value) of series `r`.
    pub fn for_each_label(&self, r: SeriesRef, mut f: impl FnMut(&str, &str)) {
        for (name, value) in self.label_strs(r) {
            f(name, value);
        }
    }

    /// The lookup hash of series `r`'s labels (as
    /// [`crate::hash::labels_hash`] computes it), without materializing
    /// them.
    pub(crate) fn labels_hash(&self, r: SeriesRef) -> Option<u64> {
        let at = self.series.get(r)?;
        Some(crate::hash::pairs_hash(
            self.labels
                .pairs(at)
                .map(|(n, v)| (self.strings.str(n), self.strings.str(v))),
        ))
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
            let lists: Vec<&Postings> = lits
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
        let lists: Vec<&Postings> = values
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

    /// Heap bytes held, for memory accounting: tables by their bucket
    /// count, lists and the label arena by capacity.
    pub fn heap_bytes(&self) -> usize {
        use crate::hash::table_bytes;
        let postings: usize = self
            .postings
            .values()
            .map(|vals| {
                vals.values().map(Postings::heap_bytes).sum::<usize>()
                    + table_bytes(vals.capacity(), std::mem::size_of::<(u32, Postings)>())
            })
            .sum::<usize>()
            + table_bytes(
                self.postings.capacity(),
                std::mem::size_of::<(u32, IntMap<u32, Postings>)>(),
            );
        let series = self.series.heap_bytes();
        self.strings.heap_bytes() + postings + series + self.labels.buf.capacity()
    }
}

fn union(lists: &[&Postings]) -> Vec<SeriesRef> {
    match lists {
        [] => Vec::new(),
        [one] => one.to_refs(),
        _ => {
            let mut out: Vec<SeriesRef> = Vec::with_capacity(lists.iter().map(|l| l.len()).sum());
            for l in lists {
                l.extend_into(&mut out);
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
    fn label_arena_survives_removal_and_compaction() {
        let mut idx = Index::new();
        let set = |r: u64| {
            Labels::from_pairs([
                ("__name__", format!("m{}", r % 3)),
                ("id", format!("{}", r * 1_000_003)),
                ("z", "x".repeat((r % 200) as usize)),
            ])
        };
        for r in 0..5000 {
            idx.add(r, &set(r));
        }
        // most go: the arena is rewritten without them
        let gone: Vec<SeriesRef> = (0..5000).filter(|r| r % 10 != 0).collect();
        idx.remove(&gone);
        assert_eq!(idx.len(), 500);
        assert!(idx.labels.dead == 0, "compacted");
        for r in 0..5000 {
            match idx.labels(r) {
                Some(l) => {
                    assert_eq!(r % 10, 0);
                    assert_eq!(l, set(r));
                    assert!(idx.labels_eq(r, &set(r)));
                    assert_eq!(idx.labels_hash(r), Some(crate::hash::labels_hash(&set(r))));
                }
                None => assert_ne!(r % 10, 0),
            }
        }
        assert_eq!(
            idx.select(&[Matcher::equal("__name__", "m1")]).unwrap(),
            (0..5000)
                .filter(|r| r % 10 == 0 && r % 3 == 1)
                .collect::<Vec<_>>()
        );
        // a ref is never reused for other labels
        idx.add(10, &set(11));
        assert_eq!(idx.labels(10), Some(set(10)));
        assert_eq!(idx.len(), 500);
    }

    #[test]
    fn set_operations() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 5]), vec![3, 5]);
        let big: Vec<SeriesRef> = (0..1000).collect();
        assert_eq!(intersect(&[5, 500, 2000], &big), vec![5, 500]);
        assert_eq!(subtract(&[1, 2, 3, 4], &[2, 4, 9]), vec![1, 3]);
        let mut p = Postings::default();
        let mut q = Postings::default();
        for r in [4, 1] {
            p.push_sorted(r);
        }
        for r in [2, 4, 4] {
            q.push_sorted(r);
        }
        assert_eq!(union(&[&p, &q]), vec![1, 2, 4]);
        // a ref beyond u32 widens the list, keeping it sorted
        q.push_sorted(1 << 40);
        q.push_sorted(3);
        assert!(matches!(q, Postings::Wide(_)));
        assert_eq!(q.to_refs(), vec![2, 3, 4, 1 << 40]);
    }
}

//! Cheap hashing for in-process maps. Nothing here is persisted, so the
//! functions may change between versions.

use std::hash::{BuildHasherDefault, Hasher};

use pharos_model::LabelSet;
#[cfg(test)]
use pharos_model::Labels;

const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// murmur3's 64-bit finalizer: spreads every input bit over the word, so
/// the low bits (used for stripes and table slots) are well mixed.
fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn mix_bytes(mut h: u64, b: &[u8]) -> u64 {
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        let x = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        h = (h.rotate_left(5) ^ x).wrapping_mul(K);
    }
    let mut tail = 0u64;
    for (i, &c) in words.remainder().iter().enumerate() {
        tail |= u64::from(c) << (8 * i);
    }
    // the length separates "ab"+"c" from "a"+"bc"
    (h.rotate_left(5) ^ tail ^ ((b.len() as u64) << 56)).wrapping_mul(K)
}

/// Hash of a label set for the series lookup table, several times faster
/// than the byte-at-a-time stable hash. Collisions are handled by the
/// caller.
pub(crate) fn labels_hash<L: LabelSet + ?Sized>(l: &L) -> u64 {
    pairs_hash(l.pairs())
}

/// [`labels_hash`] over (name, value) pairs given one by one, in label
/// order.
pub(crate) fn pairs_hash<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h = 0u64;
    for (name, value) in pairs {
        h = mix_bytes(h, name.as_bytes());
        h = mix_bytes(h, value.as_bytes());
    }
    fmix(h)
}

/// Heap bytes of a std (hashbrown) table holding up to `capacity` entries
/// of `slot` bytes: a power of two of buckets at most 7/8 full, one control
/// byte each plus a group's worth at the end.
pub(crate) fn table_bytes(capacity: usize, slot: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        (capacity + 1).next_power_of_two()
    } else {
        (capacity.saturating_mul(8) / 7).next_power_of_two()
    };
    buckets * (slot + 1) + 16
}

/// Hasher for maps keyed by integers that are already well distributed or
/// small and dense (series refs, string ids, label hashes).
#[derive(Default, Clone, Copy)]
pub(crate) struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn write_u32(&mut self, n: u32) {
        // multiply then fold the high half down: hashbrown takes its
        // control bits from the top and its slot from the bottom
        let x = u64::from(n).wrapping_mul(K);
        self.0 = x ^ (x >> 32);
    }

    fn write_u64(&mut self, n: u64) {
        let x = n.wrapping_mul(K);
        self.0 = x ^ (x >> 32);
    }
}

pub(crate) type IntMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<IntHasher>>;

/// A map from `u64` to `u64` for keys and values that nearly always fit
/// in 32 bits (series refs, slots, offsets): such entries sit in a table of
/// 8-byte buckets, half the size of a `u64` pair's, and the rare others in
/// a second table.
#[derive(Debug, Default)]
pub(crate) struct NarrowMap {
    narrow: IntMap<u32, u32>,
    wide: IntMap<u64, u64>,
}

fn narrow_pair(k: u64, v: u64) -> Option<(u32, u32)> {
    Some((u32::try_from(k).ok()?, u32::try_from(v).ok()?))
}

impl NarrowMap {
    pub(crate) fn get(&self, k: u64) -> Option<u64> {
        if let Ok(n) = u32::try_from(k)
            && let Some(&v) = self.narrow.get(&n)
        {
            return Some(u64::from(v));
        }
        if self.wide.is_empty() {
            return None;
        }
        self.wide.get(&k).copied()
    }

    pub(crate) fn contains_key(&self, k: u64) -> bool {
        self.get(k).is_some()
    }

    /// Sets `k` to `v`, returning the previous value.
    pub(crate) fn insert(&mut self, k: u64, v: u64) -> Option<u64> {
        let old = self.remove(k);
        match narrow_pair(k, v) {
            Some((nk, nv)) => {
                self.narrow.insert(nk, nv);
            }
            None => {
                self.wide.insert(k, v);
            }
        }
        old
    }

    pub(crate) fn remove(&mut self, k: u64) -> Option<u64> {
        if let Ok(n) = u32::try_from(k)
            && let Some(v) = self.narrow.remove(&n)
        {
            return Some(u64::from(v));
        }
        if self.wide.is_empty() {
            return None;
        }
        self.wide.remove(&k)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.narrow
            .iter()
            .map(|(&k, &v)| (u64::from(k), u64::from(v)))
            .chain(self.wide.iter().map(|(&k, &v)| (k, v)))
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        table_bytes(self.narrow.capacity(), 8) + table_bytes(self.wide.capacity(), 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_hash_separates_boundaries_and_orders() {
        let a = Labels::from_pairs([("a", "bc")]);
        let b = Labels::from_pairs([("ab", "c")]);
        let c = Labels::from_pairs([("a", "b"), ("c", "")]);
        assert_ne!(labels_hash(&a), labels_hash(&b));
        assert_ne!(labels_hash(&a), labels_hash(&c));
        assert_eq!(
            labels_hash(&a),
            labels_hash(&Labels::from_pairs([("a", "bc")]))
        );
        // no collisions over a modest set of similar series
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000 {
            let l = Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]);
            assert!(seen.insert(labels_hash(&l)));
        }
    }

    #[test]
    fn narrow_map_moves_entries_between_widths() {
        let mut m = NarrowMap::default();
        assert_eq!(m.insert(1, 2), None);
        assert_eq!(m.insert(1 << 40, 3), None);
        assert_eq!(m.insert(4, 1 << 33), None);
        assert_eq!(
            (m.get(1), m.get(1 << 40), m.get(4)),
            (Some(2), Some(3), Some(1 << 33))
        );
        // a wide value becoming narrow and back
        assert_eq!(m.insert(4, 5), Some(1 << 33));
        assert_eq!(m.get(4), Some(5));
        assert_eq!(m.insert(1, u64::MAX), Some(2));
        assert_eq!(m.get(1), Some(u64::MAX));
        assert_eq!(m.remove(1 << 40), Some(3));
        assert!(!m.contains_key(1 << 40) && m.contains_key(4));
        let mut all: Vec<(u64, u64)> = m.iter().collect();
        all.sort_unstable();
        assert_eq!(all, vec![(1, u64::MAX), (4, 5)]);
    }
}

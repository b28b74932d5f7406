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
    let mut h = 0u64;
    for (name, value) in l.pairs() {
        h = mix_bytes(h, name.as_bytes());
        h = mix_bytes(h, value.as_bytes());
    }
    fmix(h)
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
}

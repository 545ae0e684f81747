//! A small deterministic hasher (FxHash-style multiply-rotate) and map aliases.
//!
//! Why not a randomly seeded hasher: the plugin has no source of randomness
//! (it imports nothing but its contract), and results must not depend on a
//! seed. Hash-flooding resistance is not
//! needed here: every table lookup compares the real link after the hash
//! matches, so a collision only costs a linear scan, never a wrong answer.

use core::hash::{BuildHasherDefault, Hasher};
use hashbrown::{HashMap, HashSet};

/// The multiplier of rustc's FxHash (an odd constant with well-spread bits).
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// FxHash-style hasher: `h = (h.rotl(5) ^ word) * SEED` per 8-byte word, with
/// a murmur3 finaliser so the low bits (which pick the hash-table bucket) also
/// depend on every input bit.
#[derive(Clone, Copy, Debug, Default)]
pub struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk); // chunks_exact yields exactly 8 bytes
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // Fold the tail into one word; its length is mixed in too so that
            // "a" and "a\0" differ.
            let tail = rest
                .iter()
                .enumerate()
                .fold(rest.len() as u64, |w, (i, b)| {
                    w ^ (u64::from(*b) << (8 * (i + 1) % 64))
                });
            self.add(tail);
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// Build-hasher for the maps below; deterministic, no seed, no import.
pub type FxBuildHasher = BuildHasherDefault<FxHasher>;
/// A `HashMap` that never touches `RandomState`.
pub type FxHashMap<K, V> = HashMap<K, V, FxBuildHasher>;
/// A `HashSet` that never touches `RandomState`.
pub type FxHashSet<T> = HashSet<T, FxBuildHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use core::hash::Hash;
    use std::format;

    fn hash_of<T: Hash + ?Sized>(t: &T) -> u64 {
        let mut h = FxHasher::default();
        t.hash(&mut h);
        h.finish()
    }

    #[test]
    fn deterministic_and_spread() {
        assert_eq!(hash_of("abc"), hash_of("abc"));
        assert_ne!(hash_of("a"), hash_of("a\0"));
        let mut seen = FxHashSet::default();
        for i in 0..100_000u32 {
            seen.insert(hash_of(&format!("target-{i}")));
        }
        assert_eq!(seen.len(), 100_000, "no collisions on sequential names");
        // Low bits pick buckets: check they vary too.
        let low: FxHashSet<u64> = (0..4096u32).map(|i| hash_of(&i) & 0xfff).collect();
        assert!(low.len() > 2000, "{}", low.len());
    }
}

//! The engine's `i64 -> u32` lookups: [`DirectMap`], a direct-mapped table
//! for keys that arrive dense and clustered (order id -> order slot: ids are
//! sequence numbers; price -> level slot: live prices crowd around the touch;
//! account id -> balance slot: account ids are small), in front of an
//! [`I64Map`], a small open-addressing hash map, for the keys that collide.
//!
//! Layout
//! ------
//! [`DirectMap`]: `(key, value)` entries in a power-of-two table indexed by
//! `key & mask` (no hashing: consecutive keys land in consecutive buckets, so
//! lookups of recent ids or of nearby prices share cache lines). A key whose
//! bucket holds another key goes to the spill map instead. A lookup or
//! removal that hits its bucket is one compare; a miss asks the spill only
//! when the spill is not empty; an insert is one compare plus, on a
//! collision, an insert into the spill.
//!
//! [`I64Map`]: `(key, value)` entries in one power-of-two array, so a lookup
//! usually reads one cache line; Fibonacci hashing (one multiply); linear
//! probing; deletion by backward shift, so there are no tombstones and a map
//! with constant insert/remove churn never needs rehashing. The load factor
//! stays at or below one half.
//!
//! Complexity
//! ----------
//! `DirectMap`: O(1), one bucket, while the live keys of one bucket number
//! at most one (the table is sized so that this is the rule: order ids that
//! outlive 65,536 later ones, prices 4,096 ticks apart on one side); the
//! keys beyond that cost an `I64Map` operation each.
//!
//! Determinism
//! -----------
//! There is no seed, and neither map has any iteration: they can only be
//! looked up, so they cannot influence the order of anything the engine emits.
//!
//! Invariants
//! ----------
//! A key is in at most one place: its bucket of a `DirectMap`'s table, or
//! that map's spill (`DirectMap::insert_new` takes only absent keys).
//! `i64::MIN` marks an empty bucket and is never a key (order ids and prices
//! are at least 1, account ids at least 0; inserting it is a no-op).

const EMPTY: i64 = i64::MIN;
const FIBONACCI: u64 = 0x9E37_79B9_7F4A_7C15;

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: i64,
    value: u32,
}

const VACANT: Entry = Entry { key: EMPTY, value: 0 };

/// `i64 -> u32` map with linear probing and backward-shift deletion.
#[derive(Clone, Debug)]
pub struct I64Map {
    entries: Vec<Entry>,
    len: usize,
    mask: usize,
    shift: u32,
}

impl Default for I64Map {
    fn default() -> Self {
        I64Map::with_capacity(8)
    }
}

impl I64Map {
    /// A map that holds `capacity` keys before it grows.
    pub fn with_capacity(capacity: usize) -> I64Map {
        let buckets = (capacity.max(8) * 2).next_power_of_two();
        I64Map {
            entries: vec![VACANT; buckets],
            len: 0,
            mask: buckets - 1,
            shift: 64 - buckets.trailing_zeros(),
        }
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    fn home(&self, key: i64) -> usize {
        ((key as u64).wrapping_mul(FIBONACCI) >> self.shift) as usize
    }

    /// The entry in bucket `i & mask`.
    #[inline(always)]
    fn at(&self, i: usize) -> &Entry {
        // SAFETY: `i & mask < entries.len()` (the length is `mask + 1`, a power of two).
        unsafe { self.entries.get_unchecked(i & self.mask) }
    }

    #[inline(always)]
    fn at_mut(&mut self, i: usize) -> &mut Entry {
        // SAFETY: as in `at`.
        unsafe { self.entries.get_unchecked_mut(i & self.mask) }
    }

    #[inline(always)]
    pub fn get(&self, key: i64) -> Option<u32> {
        let mut i = self.home(key);
        loop {
            let e = self.at(i);
            if e.key == key {
                return Some(e.value);
            }
            if e.key == EMPTY {
                return None;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Insert or replace.
    #[inline(always)]
    pub fn insert(&mut self, key: i64, value: u32) {
        if key == EMPTY {
            debug_assert!(false, "i64::MIN is not a valid key");
            return;
        }
        if (self.len + 1) * 2 > self.entries.len() {
            self.grow();
        }
        // (`grow` is out of line: it runs a few times in a map's life.)
        let mut i = self.home(key);
        loop {
            let e = self.at_mut(i);
            if e.key == key {
                e.value = value;
                return;
            }
            if e.key == EMPTY {
                *e = Entry { key, value };
                self.len += 1;
                return;
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Remove a key; returns its value if it was there.
    #[inline(always)]
    pub fn remove(&mut self, key: i64) -> Option<u32> {
        let mut i = self.home(key);
        loop {
            let k = self.at(i).key;
            if k == key {
                break;
            }
            if k == EMPTY {
                return None;
            }
            i = (i + 1) & self.mask;
        }
        let value = self.at(i).value;
        // Backward shift: pull later entries of the probe run into the hole
        // unless their home lies cyclically in (hole, j].
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let e = *self.at(j);
            if e.key == EMPTY {
                break;
            }
            let home = self.home(e.key);
            let stays = if hole <= j { hole < home && home <= j } else { hole < home || home <= j };
            if !stays {
                *self.at_mut(hole) = e;
                hole = j;
            }
        }
        self.at_mut(hole).key = EMPTY;
        self.len -= 1;
        Some(value)
    }

    pub fn clear(&mut self) {
        self.entries.iter_mut().for_each(|e| *e = VACANT);
        self.len = 0;
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self) {
        let old = std::mem::take(&mut self.entries);
        let buckets = old.len() * 2;
        self.entries = vec![VACANT; buckets];
        self.mask = buckets - 1;
        self.shift = 64 - buckets.trailing_zeros();
        self.len = 0;
        for e in old {
            if e.key != EMPTY {
                self.insert(e.key, e.value);
            }
        }
    }
}

/// `i64 -> u32` map for dense, clustered keys: a direct-mapped table
/// (bucket `key & mask`) with an [`I64Map`] for the keys whose bucket is taken.
#[derive(Clone, Debug)]
pub struct DirectMap {
    table: Vec<Entry>,
    mask: usize,
    spill: I64Map,
}

impl DirectMap {
    /// A map with `buckets` (rounded up to a power of two) direct-mapped buckets.
    pub fn with_buckets(buckets: usize) -> DirectMap {
        let buckets = buckets.max(1).next_power_of_two();
        DirectMap { table: vec![VACANT; buckets], mask: buckets - 1, spill: I64Map::default() }
    }

    #[inline(always)]
    fn bucket(&self, key: i64) -> usize {
        key as usize & self.mask
    }

    /// The entry in bucket `at` (from [`DirectMap::bucket`]).
    #[inline(always)]
    fn at(&self, at: usize) -> Entry {
        // SAFETY: `at = key & mask < mask + 1 = table.len()`.
        unsafe { *self.table.get_unchecked(at & self.mask) }
    }

    #[inline(always)]
    fn at_mut(&mut self, at: usize) -> &mut Entry {
        // SAFETY: as in `at`.
        unsafe { self.table.get_unchecked_mut(at & self.mask) }
    }

    #[inline(always)]
    pub fn get(&self, key: i64) -> Option<u32> {
        let e = self.at(self.bucket(key));
        if e.key == key {
            Some(e.value)
        } else if self.spill.is_empty() {
            None
        } else {
            self.spill.get(key)
        }
    }

    /// Insert a key that is not in the map (the engine's only use: a new
    /// order's id, a new level's price). Its bucket if that is free, else the
    /// spill: no search either way.
    #[inline(always)]
    pub fn insert_new(&mut self, key: i64, value: u32) {
        debug_assert!(key != EMPTY, "i64::MIN is not a valid key");
        debug_assert!(self.get(key).is_none(), "insert_new of a key already in the map");
        let at = self.bucket(key);
        if self.at(at).key == EMPTY {
            *self.at_mut(at) = Entry { key, value };
        } else {
            self.spill_new(key, value);
        }
    }

    #[cold]
    #[inline(never)]
    fn spill_new(&mut self, key: i64, value: u32) {
        self.spill.insert(key, value);
    }

    /// Remove a key; returns its value if it was there.
    #[inline(always)]
    pub fn remove(&mut self, key: i64) -> Option<u32> {
        let at = self.bucket(key);
        let e = self.at(at);
        if e.key == key {
            self.at_mut(at).key = EMPTY;
            Some(e.value)
        } else if self.spill.is_empty() {
            None
        } else {
            self.spill.remove(key)
        }
    }

    pub fn clear(&mut self) {
        self.table.iter_mut().for_each(|e| *e = VACANT);
        self.spill.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn direct_map_matches_std_hashmap_with_collisions() {
        // A tiny table, so most keys collide and go through the spill.
        let mut map = DirectMap::with_buckets(16);
        let mut model: HashMap<i64, u32> = HashMap::new();
        let mut x: u64 = 0x9876_5432;
        for step in 0..100_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = ((x % 200) as i64) + (step as i64 / 100) - 50;
            match x % 5 {
                0 | 1 => assert_eq!(map.remove(key), model.remove(&key)),
                2 => assert_eq!(map.get(key), model.get(&key).copied()),
                _ => {
                    if let std::collections::hash_map::Entry::Vacant(e) = model.entry(key) {
                        map.insert_new(key, step);
                        e.insert(step);
                    }
                }
            }
        }
        for (k, v) in &model {
            assert_eq!(map.get(*k), Some(*v));
        }
        map.clear();
        assert_eq!(map.get(5), None);
        assert_eq!(map.remove(5), None);
    }

    #[test]
    fn index_matches_std_hashmap_under_churn() {
        let mut map = I64Map::default();
        let mut model: HashMap<i64, u32> = HashMap::new();
        let mut x: u64 = 0x1234_5678;
        for step in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Keys cluster like order ids (recent sequence numbers) and prices.
            let key = ((x % 4_000) as i64) + (step as i64 / 50);
            if x % 3 == 0 {
                assert_eq!(map.remove(key), model.remove(&key));
            } else {
                map.insert(key, step);
                model.insert(key, step);
            }
            assert_eq!(map.len(), model.len());
        }
        for (k, v) in &model {
            assert_eq!(map.get(*k), Some(*v));
        }
        assert_eq!(map.get(-1), None);
        map.clear();
        assert!(map.is_empty());
        assert_eq!(map.get(5), None);
    }
}

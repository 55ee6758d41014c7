//! The live table: every spawned greenlet that has not died, under a key
//! its core keeps (`Core::live_key`), so that its death removes it without
//! a search. It holds a reference to each record: a greenlet whose handles
//! were all dropped lives on until it dies.
//!
//! A slab made for the two operations on every greenlet's path — an insert
//! at spawn, a remove at death — both inline, a few instructions each (the
//! `slab` crate's insert is an out-of-line call; with it a spawn+join cost
//! ~20 instructions more). Vacant slots form a list through the slots
//! themselves, most recently vacated first, so keys stay below the most
//! greenlets ever live at once.

use crate::task::Rec;

enum Slot {
    Live(Rec),
    /// Vacant; the next vacant slot (`slots.len()`: none).
    Vacant(usize),
}

pub(crate) struct LiveTable {
    slots: Vec<Slot>,
    /// The first vacant slot, `slots.len()` if none.
    vacant: usize,
    len: usize,
}

impl LiveTable {
    pub(crate) const fn new() -> LiveTable {
        LiveTable {
            slots: Vec::new(),
            vacant: 0,
            len: 0,
        }
    }

    /// Adds `rec`; returns its key.
    #[inline(always)] // on every spawn's path: no call
    pub(crate) fn insert(&mut self, rec: Rec) -> usize {
        let key = self.vacant;
        self.len += 1;
        let Some(slot) = self.slots.get_mut(key) else {
            return self.push(rec);
        };
        let Slot::Vacant(next) = *slot else {
            unreachable!("the vacant list leads to a live slot");
        };
        self.vacant = next;
        // SAFETY: a valid place, and a vacant slot has nothing to drop.
        unsafe { std::ptr::write(slot, Slot::Live(rec)) };
        key
    }

    /// Adds `rec` in a new slot (no vacant one); returns its key.
    #[cold]
    fn push(&mut self, rec: Rec) -> usize {
        self.slots.push(Slot::Live(rec));
        self.vacant = self.slots.len();
        self.slots.len() - 1
    }

    /// Removes and returns the record under `key`, if one is there (`key`
    /// may be `usize::MAX`, for none).
    #[inline]
    pub(crate) fn remove(&mut self, key: usize) -> Option<Rec> {
        let slot = self.slots.get_mut(key)?;
        if let Slot::Vacant(_) = slot {
            return None;
        }
        let Slot::Live(rec) = std::mem::replace(slot, Slot::Vacant(self.vacant)) else {
            unreachable!("checked live above");
        };
        self.vacant = key;
        self.len -= 1;
        Some(rec)
    }

    /// The record under `key`, if one is there.
    pub(crate) fn get(&self, key: usize) -> Option<&Rec> {
        match self.slots.get(key)? {
            Slot::Live(rec) => Some(rec),
            Slot::Vacant(_) => None,
        }
    }

    /// How many records it holds.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Its records, in key order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Rec> {
        self.slots.iter().filter_map(|s| match s {
            Slot::Live(rec) => Some(rec),
            Slot::Vacant(_) => None,
        })
    }

    /// Removes and returns all its records.
    pub(crate) fn take_all(&mut self) -> Vec<Rec> {
        let slots = std::mem::take(&mut self.slots);
        (self.vacant, self.len) = (0, 0);
        slots
            .into_iter()
            .filter_map(|s| match s {
                Slot::Live(rec) => Some(rec),
                Slot::Vacant(_) => None,
            })
            .collect()
    }

    /// Gives back the room of the vacant slots above the highest live one
    /// (after a burst), keeping every key.
    pub(crate) fn shrink_to_fit(&mut self) {
        let top = self
            .slots
            .iter()
            .rposition(|s| matches!(s, Slot::Live(_)))
            .map_or(0, |i| i + 1);
        if top < self.slots.len() {
            self.slots.truncate(top);
            // The vacant list may lead above the end now: link the vacant
            // slots left again, lowest key first.
            self.vacant = self.slots.len();
            for (key, slot) in self.slots.iter_mut().enumerate().rev() {
                if let Slot::Vacant(next) = slot {
                    *next = self.vacant;
                    self.vacant = key;
                }
            }
        }
        self.slots.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::LiveTable;
    use crate::task::Rec;

    #[test]
    fn keys_are_reused_most_recent_first_and_shrinking_keeps_them() {
        let mut t = LiveTable::new();
        let keys: Vec<usize> = (0..5).map(|i| t.insert(Rec::idle(i))).collect();
        assert_eq!(keys, [0, 1, 2, 3, 4]);
        assert_eq!(t.remove(1).map(|r| r.core().id()), Some(1));
        assert!(t.remove(1).is_none(), "already vacant");
        assert!(t.remove(usize::MAX).is_none());
        assert_eq!(t.remove(3).map(|r| r.core().id()), Some(3));
        assert_eq!(t.insert(Rec::idle(7)), 3, "the most recently vacated");
        assert_eq!(t.insert(Rec::idle(8)), 1);
        assert_eq!(t.insert(Rec::idle(9)), 5, "then a new slot");
        assert_eq!(t.len(), 6);
        assert_eq!(t.get(3).map(|r| r.core().id()), Some(7));
        for key in [4, 5, 1] {
            assert!(t.remove(key).is_some());
        }
        t.shrink_to_fit();
        assert_eq!(t.slots.len(), 4, "the vacant slots above key 3 went");
        let ids: Vec<u64> = t.iter().map(|r| r.core().id()).collect();
        assert_eq!(ids, [0, 2, 7]);
        assert_eq!(t.get(2).map(|r| r.core().id()), Some(2), "keys kept");
        assert_eq!(t.insert(Rec::idle(10)), 1, "the vacant list was relinked");
        assert_eq!(t.insert(Rec::idle(11)), 4);
        assert_eq!(t.take_all().len(), 5);
        assert_eq!((t.len(), t.insert(Rec::idle(12))), (0, 0));
    }
}

//! The hub's ready queue: a FIFO of greenlet records.
//!
//! A ring buffer with a power-of-two capacity, so an index wraps with a
//! mask, behind an `UnsafeCell` instead of a `RefCell`: a hand-off between
//! two greenlets is one push and one pop, and `VecDeque` behind a `RefCell`
//! made those two a tenth of the hand-off's instructions. No method calls
//! out (a record's drop, which can run user code, happens after the queue
//! is released), so no borrow of the buffer can overlap another.

use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;

use super::core::{Core, State};
use super::record::Rec;

pub(crate) struct RunQueue {
    /// `len` initialised entries start at `head`, wrapping at the end.
    /// Its length is zero or a power of two.
    buf: UnsafeCell<Box<[MaybeUninit<Rec>]>>,
    head: Cell<usize>,
    len: Cell<usize>,
}

impl RunQueue {
    pub(crate) fn new() -> RunQueue {
        RunQueue {
            buf: UnsafeCell::new(Box::new([])),
            head: Cell::new(0),
            len: Cell::new(0),
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len.get()
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len.get() == 0
    }

    /// The core of the first record, if any. (`peek(0)` without the mask
    /// of an offset index: 3 instructions less per hand-off in `run_here`.)
    #[inline]
    pub(crate) fn front(&self) -> Option<*const Core> {
        if self.len.get() == 0 {
            return None;
        }
        // SAFETY: the only borrow of `buf` alive (see the module docs);
        // `head` is masked, so in bounds, and initialised as `len > 0`.
        let buf = unsafe { &*self.buf.get() };
        // SAFETY: as above.
        let rec = unsafe { buf.get_unchecked(self.head.get()).assume_init_ref() };
        Some(rec.as_ptr())
    }

    /// The core `i` places behind the front, if the queue holds it.
    #[inline]
    pub(crate) fn peek(&self, i: usize) -> Option<*const Core> {
        if i >= self.len.get() {
            return None;
        }
        // SAFETY: the only borrow of `buf` alive (see the module docs);
        // the index is masked, so in bounds, and initialised as `i < len`.
        let buf = unsafe { &*self.buf.get() };
        let j = (self.head.get() + i) & (buf.len() - 1);
        // SAFETY: as above.
        let rec = unsafe { buf.get_unchecked(j).assume_init_ref() };
        Some(rec.as_ptr())
    }

    /// Queues `rec` for its turn (it becomes scheduled).
    #[inline]
    pub(crate) fn schedule(&self, rec: Rec) {
        rec.core().set_state(State::Scheduled);
        self.push_back(rec);
    }

    #[inline]
    pub(crate) fn push_back(&self, rec: Rec) {
        // SAFETY: the only borrow of `buf` alive (see the module docs).
        let buf = unsafe { &mut *self.buf.get() };
        let len = self.len.get();
        if len == buf.len() {
            // A tail call: the common path keeps no registers across a call.
            return self.push_back_growing(rec);
        }
        let i = (self.head.get() + len) & (buf.len() - 1);
        // SAFETY: masked by `len() - 1` of a non-empty power-of-two buffer,
        // so `i` is in bounds.
        unsafe { buf.get_unchecked_mut(i) }.write(rec);
        self.len.set(len + 1);
    }

    #[inline]
    pub(crate) fn pop_front(&self) -> Option<Rec> {
        let len = self.len.get();
        if len == 0 {
            return None;
        }
        // SAFETY: the only borrow of `buf` alive (see the module docs).
        let buf = unsafe { &mut *self.buf.get() };
        let head = self.head.get();
        // SAFETY: `head` (always masked, so in bounds) is the first of the
        // `len > 0` initialised entries; it is moved out and no longer
        // counted.
        let rec = unsafe { buf.get_unchecked(head).assume_init_read() };
        self.head.set((head + 1) & (buf.len() - 1));
        self.len.set(len - 1);
        Some(rec)
    }

    #[cold]
    #[inline(never)]
    fn push_back_growing(&self, rec: Rec) {
        // SAFETY: the only borrow of `buf` alive (see the module docs).
        self.grow(unsafe { &mut *self.buf.get() });
        self.push_back(rec);
    }

    /// Doubles the capacity (at least 64).
    #[cold]
    fn grow(&self, buf: &mut Box<[MaybeUninit<Rec>]>) {
        self.resize(buf, (buf.len() * 2).max(64));
    }

    /// Gives back the room a burst left: the capacity becomes the smallest
    /// power of two (at least 64) that holds the queued records.
    pub(crate) fn shrink_to_fit(&self) {
        // SAFETY: the only borrow of `buf` alive (see the module docs).
        let buf = unsafe { &mut *self.buf.get() };
        let cap = self.len.get().next_power_of_two().max(64);
        if cap < buf.len() {
            self.resize(buf, cap);
        }
    }

    /// Moves the entries to the front of a new buffer of `cap` (a power of
    /// two, at least `len`).
    fn resize(&self, buf: &mut Box<[MaybeUninit<Rec>]>, cap: usize) {
        let mut new: Box<[MaybeUninit<Rec>]> = (0..cap).map(|_| MaybeUninit::uninit()).collect();
        let (head, len) = (self.head.get(), self.len.get());
        for i in 0..len {
            let j = (head + i) & (buf.len() - 1);
            // SAFETY: entries `head..head+len` (wrapping) are initialised;
            // each is moved once, and the old buffer is dropped without
            // dropping entries (`MaybeUninit`).
            new[i].write(unsafe { buf[j].assume_init_read() });
        }
        *buf = new;
        self.head.set(0);
    }

    /// Empties the queue, returning the records so the caller drops them
    /// outside any borrow.
    pub(crate) fn take_all(&self) -> Vec<Rec> {
        let mut out = Vec::with_capacity(self.len());
        while let Some(r) = self.pop_front() {
            out.push(r);
        }
        out
    }
}

impl Drop for RunQueue {
    fn drop(&mut self) {
        drop(self.take_all());
    }
}

#[cfg(test)]
mod tests {
    use super::RunQueue;
    use crate::task::Rec;

    fn rec(id: u64) -> Rec {
        Rec::idle(id)
    }

    #[test]
    fn fifo_across_wraparound_and_growth() {
        let q = RunQueue::new();
        let mut next_in = 0;
        let mut next_out = 0;
        // Interleave pushes and pops so the head wraps before each growth.
        for round in 0..6 {
            for _ in 0..(40 << round) {
                q.push_back(rec(next_in));
                next_in += 1;
            }
            for _ in 0..(30 << round) {
                assert_eq!(q.pop_front().unwrap().core().id(), next_out);
                next_out += 1;
            }
            assert_eq!(q.len() as u64, next_in - next_out);
        }
        let rest = q.take_all();
        assert_eq!(rest.len() as u64, next_in - next_out);
        assert!(rest.iter().map(|r| r.core().id()).eq(next_out..next_in));
        assert!(q.is_empty() && q.pop_front().is_none());
    }

    #[test]
    fn dropping_the_queue_releases_its_records() {
        let q = RunQueue::new();
        let r = rec(1);
        for _ in 0..100 {
            q.push_back(r.clone());
        }
        drop(q);
        // Only `r` is left: a second reference would show in the count.
        assert_eq!(r.core().refs(), 1);
    }
}

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

use crate::record::Rec;

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

    #[inline]
    pub(crate) fn push_back(&self, rec: Rec) {
        // SAFETY: the only borrow of `buf` alive (see the module docs).
        let buf = unsafe { &mut *self.buf.get() };
        let len = self.len.get();
        if len == buf.len() {
            self.grow(buf);
        }
        let mask = buf.len() - 1;
        buf[(self.head.get() + len) & mask].write(rec);
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
        // SAFETY: `head` is the first of the `len > 0` initialised entries;
        // it is moved out and no longer counted.
        let rec = unsafe { buf[head].assume_init_read() };
        self.head.set((head + 1) & (buf.len() - 1));
        self.len.set(len - 1);
        Some(rec)
    }

    /// Doubles the capacity (at least 64), unwrapping the entries to the
    /// front of the new buffer.
    #[cold]
    fn grow(&self, buf: &mut Box<[MaybeUninit<Rec>]>) {
        let cap = (buf.len() * 2).max(64);
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

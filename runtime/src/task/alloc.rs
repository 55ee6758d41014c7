//! Memory for greenlet records, recycled per thread.
//!
//! Every spawn allocates one record and every death frees one. With many
//! greenlets live at once (a spawn+join burst of 100k), the allocator's
//! small per-size caches overflow and each allocation and free takes its
//! slow path: a quarter of a warm spawn+join's instructions. So a freed
//! record's block goes on a free list of its size class here, and the next
//! record of that class takes it back: a pop and a push.
//!
//! The lists hold what a burst freed until the hub gives the burst's memory
//! back ([`release`], from `Hub::give_back_memory`), or the thread exits.

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::ptr;

/// Size classes are multiples of this ...
const CLASS: usize = 64;
/// ... up to this many (records up to 1 KiB; larger ones, rare closures
/// that capture big values, use the allocator directly) ...
const CLASSES: usize = 16;
/// ... and blocks have this alignment, a cache line's, so the record's
/// fields that a switch touches sit in the lines `Core` puts them in (the
/// allocator's 16 would spread them over one more line three times in
/// four). Records of a greater alignment use the allocator directly.
const ALIGN: usize = 64;
/// What the allocator is asked for a block is aligned to this only (see
/// [`new_block`]).
const RAW_ALIGN: usize = 16;

/// A free block: the list's link lives in the block itself.
struct FreeBlock {
    next: *mut FreeBlock,
}

struct Cache {
    /// Per class, the most recently freed block (LIFO: the warmest).
    heads: [Cell<*mut FreeBlock>; CLASSES],
}

impl Cache {
    fn release(&self) {
        for (class, head) in self.heads.iter().enumerate() {
            let mut b = head.replace(ptr::null_mut());
            while !b.is_null() {
                // SAFETY: every block on a list came from `new_block(class)`
                // and is owned by the list; its link was written when it
                // was pushed.
                unsafe {
                    let next = (*b).next;
                    free_block(b.cast(), class);
                    b = next;
                }
            }
        }
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        self.release();
    }
}

thread_local! {
    static CACHE: Cache = const {
        Cache {
            heads: [const { Cell::new(ptr::null_mut()) }; CLASSES],
        }
    };
}

/// The size class of `layout`, if it has one.
#[inline(always)]
fn class_of(layout: Layout) -> Option<usize> {
    let c = layout.size().div_ceil(CLASS);
    (layout.align() <= ALIGN && (1..=CLASSES).contains(&c)).then(|| c - 1)
}

/// The layout the allocator gives a block of `class` with: its size, a
/// multiple of 64 up to 1 KiB, and room to align it (see [`new_block`]).
#[inline(always)]
fn raw_layout(class: usize) -> Layout {
    Layout::from_size_align((class + 1) * CLASS + ALIGN, RAW_ALIGN).expect("valid block layout")
}

/// A new block of `class`, aligned to [`ALIGN`].
///
/// The allocator is asked for `ALIGN` more bytes at its own alignment
/// and the block starts at the next multiple of `ALIGN` inside, with the
/// allocation's address in the word below it: an aligned request (glibc's
/// `memalign`) costs some 500 instructions more per block, which a burst
/// of fresh greenlets would pay each.
#[cold]
fn new_block(class: usize) -> *mut u8 {
    let raw = global_alloc(raw_layout(class));
    // At least RAW_ALIGN (and at most ALIGN) bytes past `raw`, so the
    // word below the block is inside the allocation.
    let offset = ALIGN - (raw as usize & (ALIGN - 1));
    // SAFETY: `offset` <= ALIGN, and the allocation is the block's size
    // plus ALIGN; the word below the block is past `raw` (offset >= 16)
    // and aligned (both are multiples of 8).
    unsafe {
        let block = raw.add(offset);
        block.cast::<*mut u8>().sub(1).write(raw);
        block
    }
}

/// Gives a block of `class` back to the allocator.
///
/// # Safety
/// `block` came from [`new_block`] with the same class, and nothing uses
/// it any more.
unsafe fn free_block(block: *mut u8, class: usize) {
    // SAFETY: `new_block` wrote the allocation's address below the block,
    // and the record's memory starts at the block (the word is untouched).
    unsafe {
        let raw = block.cast::<*mut u8>().sub(1).read();
        alloc::dealloc(raw, raw_layout(class));
    }
}

/// Memory for a record of `layout` (size > 0); aborts as `Box::new` does
/// if the allocator has none.
#[inline]
pub(super) fn alloc(layout: Layout) -> *mut u8 {
    let Some(class) = class_of(layout) else {
        return global_alloc(layout);
    };
    let reused = CACHE
        .try_with(|c| {
            let head = &c.heads[class];
            let b = head.get();
            if !b.is_null() {
                // SAFETY: a block on the list, whose link was written when
                // it was pushed.
                head.set(unsafe { (*b).next });
            }
            b
        })
        .unwrap_or(ptr::null_mut());
    if reused.is_null() {
        new_block(class)
    } else {
        reused.cast()
    }
}

#[cold]
fn global_alloc(layout: Layout) -> *mut u8 {
    // SAFETY: records are never zero-sized (the core alone is not).
    let p = unsafe { alloc::alloc(layout) };
    if p.is_null() {
        alloc::handle_alloc_error(layout);
    }
    p
}

/// Frees what [`alloc`] gave for `layout`.
///
/// # Safety
/// `p` came from [`alloc`] with the same `layout`, and nothing uses it any
/// more.
#[inline]
pub(super) unsafe fn dealloc(p: *mut u8, layout: Layout) {
    let Some(class) = class_of(layout) else {
        // SAFETY: allocated with this very layout (no class).
        unsafe { alloc::dealloc(p, layout) };
        return;
    };
    let kept = CACHE.try_with(|c| {
        let b = p.cast::<FreeBlock>();
        // SAFETY: a block of at least 64 bytes, aligned to 64, that nothing
        // uses any more (the caller's contract): it becomes the list's.
        unsafe {
            b.write(FreeBlock {
                next: c.heads[class].get(),
            })
        };
        c.heads[class].set(b);
    });
    if kept.is_err() {
        // The thread is exiting and the lists are gone.
        // SAFETY: every block of `class` comes from `new_block`.
        unsafe { free_block(p, class) };
    }
}

/// Frees the blocks the lists hold (after a burst).
pub(crate) fn release() {
    let _ = CACHE.try_with(Cache::release);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_block_is_the_next_one_of_its_class_and_release_empties_the_lists() {
        let small = Layout::from_size_align(200, 8).unwrap();
        let a = alloc(small);
        // SAFETY: from `alloc` with this layout, unused.
        unsafe { dealloc(a, small) };
        assert_eq!(a as usize % 64, 0, "blocks are cache-line aligned");
        let same_class = Layout::from_size_align(250, 8).unwrap();
        assert_eq!(alloc(same_class), a, "LIFO within a class");
        // SAFETY: as above.
        unsafe { dealloc(a, same_class) };
        release();
        CACHE.with(|c| assert!(c.heads.iter().all(|h| h.get().is_null())));
    }

    #[test]
    fn layouts_without_a_class_use_the_allocator() {
        assert_eq!(class_of(Layout::from_size_align(2000, 8).unwrap()), None);
        assert_eq!(class_of(Layout::from_size_align(64, 128).unwrap()), None);
        assert_eq!(class_of(Layout::from_size_align(64, 16).unwrap()), Some(0));
        assert_eq!(class_of(Layout::from_size_align(65, 8).unwrap()), Some(1));
        let big = Layout::from_size_align(4096, 8).unwrap();
        let p = alloc(big);
        // SAFETY: from `alloc` with this layout, unused.
        unsafe { dealloc(p, big) };
    }
}

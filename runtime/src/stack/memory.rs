//! Raw memory for stacks: one `GreenStack` type over two origins (a slot of a
//! large slab, or a mapping of its own), and the `mmap`/`madvise` calls.
//!
//! The Linux-only calls are gated here, each with its portable fallback:
//! `MADV_GUARD_INSTALL` (elsewhere: [`guard_install`] answers `Unsupported`
//! and the pool uses `mprotect`ed guard pages), `MAP_NORESERVE` and
//! `MADV_NOHUGEPAGE` (elsewhere: not needed, the kernel neither reserves swap
//! for private anonymous mappings up front nor backs them with huge pages
//! on its own), and `MADV_DONTNEED` to give pages back (elsewhere
//! `MADV_FREE`: on macOS `MADV_DONTNEED` does not free anything).

use std::io;
use std::ptr;

/// `madvise` advice that installs guard markers on a range without creating
/// a VMA (Linux >= 6.13). Not yet in the `libc` crate.
#[cfg(target_os = "linux")]
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Mapping flags of a stack reservation: address space only, no commitment
/// (Linux accounts private writable mappings against overcommit otherwise).
#[cfg(target_os = "linux")]
const RESERVE_FLAGS: libc::c_int = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
/// FreeBSD removed `MAP_NORESERVE`; neither it nor macOS reserves swap for
/// an untouched private mapping.
#[cfg(not(target_os = "linux"))]
const RESERVE_FLAGS: libc::c_int = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;

/// Advice that gives a range's pages back while keeping the mapping. Linux:
/// `MADV_DONTNEED` (immediate; guard markers survive it). macOS ignores
/// `MADV_DONTNEED` for anonymous memory; `MADV_FREE` lets the kernel take
/// the pages (a stack's old contents need not survive). Only Linux's advice
/// zeroes the pages, which the deep-pages probe
/// ([`GreenStack::release_deep_pages`]) counts on to see a released stack as
/// shallow again; elsewhere a deep stack's probe word may survive, costing
/// one `madvise` each time that stack is pooled.
#[cfg(target_os = "linux")]
const RELEASE_ADVICE: libc::c_int = libc::MADV_DONTNEED;
#[cfg(not(target_os = "linux"))]
const RELEASE_ADVICE: libc::c_int = libc::MADV_FREE;

/// The system page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// Rounds `n` up to a multiple of `page`.
pub(crate) fn round_up(n: usize, page: usize) -> usize {
    n.div_ceil(page) * page
}

/// Where a stack's memory came from, which decides how it is freed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A slot in a slab region; the region owns the memory.
    Slab,
    /// A mapping of its own (non-default sizes, and the mprotect fallback);
    /// unmapped when the stack is dropped.
    Own,
}

/// A greenlet stack: `[bottom, bottom + page)` is the guard page, the rest up
/// to `top` is usable. Stacks grow down from `top`.
#[derive(Debug)]
pub(crate) struct GreenStack {
    pub(crate) top: usize,
    pub(crate) bottom: usize,
    pub(crate) origin: Origin,
    /// Its guard page is installed. A slab slot gets it before its first
    /// run, not when carved (see `StackPool::ready_to_run`); an `Own`
    /// stack has it from the start.
    pub(crate) guarded: bool,
}

impl GreenStack {
    /// A stack over `[bottom, top)`. (Under valgrind its origin registers
    /// it: see `valgrind.rs`.)
    pub(crate) fn new(bottom: usize, top: usize, origin: Origin) -> GreenStack {
        GreenStack {
            top,
            bottom,
            origin,
            guarded: origin == Origin::Own,
        }
    }

    /// Usable bytes (without the guard page).
    pub(crate) fn usable(&self, page: usize) -> usize {
        self.top - self.bottom - page
    }

    /// Gives the stack's pages back to the kernel (see [`RELEASE_ADVICE`]).
    pub(crate) fn release_pages(&self, page: usize) {
        let start = self.bottom + page;
        // SAFETY: the range lies inside this stack's own mapping, and no
        // greenlet runs on a pooled stack, so nothing live is discarded.
        unsafe { libc::madvise(start as *mut libc::c_void, self.top - start, RELEASE_ADVICE) };
    }
}

impl GreenStack {
    /// The stack-depth probe of a finished greenlet's stack: if a frame
    /// wrote the word just below the top `keep` bytes, the stack ran deeper
    /// than that, and its pages below that mark are given back (a later
    /// greenlet on this stack faults in only what it uses). One load on the
    /// common, shallow path; a deep stack costs one `madvise`.
    ///
    /// The word can miss a deep run (a frame that spans it without writing
    /// it, or a stack probe that wrote a zero there); the pool's decay
    /// still releases such a stack once it sits unused.
    ///
    /// The stack must have more than `keep` usable bytes.
    #[inline(always)]
    pub(crate) fn release_deep_pages(&self, keep: usize, page: usize) {
        let mark = self.top - keep;
        debug_assert!(mark > self.bottom + page);
        // SAFETY: `mark - 8` is 8-aligned (both ends are page-aligned) and
        // lies in the usable part of this stack's mapping (more than `keep`
        // bytes, so above the guard page), readable and
        // writable; no greenlet runs on it now. A page never touched reads
        // as zero (the kernel maps its shared zero page, which costs no
        // memory).
        let word = unsafe { ptr::read_volatile((mark - 8) as *const u64) };
        if word != 0 {
            self.release_below(mark, page);
        }
    }

    #[cold]
    fn release_below(&self, mark: usize, page: usize) {
        let start = self.bottom + page;
        // SAFETY: the range lies inside this stack's own mapping above its
        // guard page, and no greenlet runs on a stack being pooled.
        unsafe { libc::madvise(start as *mut libc::c_void, mark - start, RELEASE_ADVICE) };
    }
}

impl Drop for GreenStack {
    #[inline]
    fn drop(&mut self) {
        if self.origin == Origin::Own {
            self.unmap();
        }
    }
}

impl GreenStack {
    /// The end of an `Own` stack (out of line: pooled slab stacks, the
    /// common case, are only pushed and popped).
    #[cold]
    #[inline(never)]
    fn unmap(&mut self) {
        super::valgrind::deregister_own(self.bottom);
        // SAFETY: an `Own` stack is exactly one mapping made by `map_own`,
        // unmapped only here (from `drop`).
        unsafe { libc::munmap(self.bottom as *mut libc::c_void, self.top - self.bottom) };
    }
}

// SAFETY: `base` is the top of a mapping that is readable and writable down
// to `bottom + page`, with a guard page below (installed by madvise or
// mprotect before a coroutine is built on the stack: see
// `StackPool::ready_to_run`); both ends are page-aligned,
// hence aligned to STACK_ALIGNMENT, and a stack is at least MIN_STACK_SIZE.
unsafe impl corosensei::stack::Stack for GreenStack {
    // Inline: read on every resume (corosensei passes the stack's base to
    // each switch), where a call cost a spawn+join 4 instructions.
    #[inline]
    fn base(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::StackPointer::new(self.top).expect("non-null stack")
    }

    #[inline]
    fn limit(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::StackPointer::new(self.bottom).expect("non-null stack")
    }
}

/// Reserves `len` bytes of address space, readable and writable, with no
/// memory committed ([`RESERVE_FLAGS`]): pages cost memory only once
/// touched.
pub(crate) fn reserve(len: usize) -> io::Result<usize> {
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing affects no existing memory.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            RESERVE_FLAGS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    no_huge_pages(p, len);
    Ok(p as usize)
}

/// Gives the memory the allocator holds free back to the kernel. glibc keeps
/// freed blocks for reuse, and after a burst of a million greenlets their
/// records (a few hundred MiB) would stay resident; `malloc_trim` returns
/// every free page of every arena. Elsewhere a no-op: other allocators
/// return memory on their own terms.
pub(crate) fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Never back stacks with transparent huge pages: a 2 MiB page would make
/// ~30 stacks fully resident when each needs only its top page or two.
/// Linux only: FreeBSD promotes to superpages only fully populated
/// reservations, and macOS has no transparent huge pages.
#[cfg(target_os = "linux")]
fn no_huge_pages(p: *mut libc::c_void, len: usize) {
    // SAFETY: advice on our own fresh mapping; failure only costs memory.
    unsafe { libc::madvise(p, len, libc::MADV_NOHUGEPAGE) };
}

#[cfg(not(target_os = "linux"))]
fn no_huge_pages(_: *mut libc::c_void, _: usize) {}

/// Unmaps a range made by [`reserve`].
///
/// # Safety
/// Nothing may use the range afterwards.
pub(crate) unsafe fn unmap(addr: usize, len: usize) {
    // SAFETY: the caller owns the range and gives it up.
    unsafe { libc::munmap(addr as *mut libc::c_void, len) };
}

#[cfg(test)]
thread_local! {
    /// Unit tests: `guard_install` fails as if `madvise` had answered
    /// this errno: `ENOMEM` when the kernel has no memory left for the page
    /// tables a guard needs, `EINVAL` on a kernel older than 6.13.
    pub(crate) static REFUSE_GUARDS: std::cell::Cell<Option<i32>> = const { std::cell::Cell::new(None) };
}

/// Installs a guard marker on one page (no new VMA). `Unsupported` means
/// the pool must use `mprotect`ed guard pages instead: a kernel older than
/// 6.13 (`EINVAL`), an `madvise` that claims success but guards nothing
/// (qemu-user answers every `madvise` with 0), or not Linux.
#[cfg(target_os = "linux")]
pub(crate) fn guard_install(addr: usize, page: usize) -> io::Result<()> {
    #[cfg(test)]
    if let Some(errno) = REFUSE_GUARDS.get() {
        return Err(match errno {
            libc::EINVAL => io::ErrorKind::Unsupported.into(),
            _ => io::Error::from_raw_os_error(errno),
        });
    }
    // SAFETY: the page belongs to a slab region of ours that no greenlet
    // uses yet; guarding it only makes accesses fault.
    let r = unsafe { libc::madvise(addr as *mut libc::c_void, page, MADV_GUARD_INSTALL) };
    if r != 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::EINVAL) => io::ErrorKind::Unsupported.into(),
            _ => e,
        });
    }
    if guards_work(addr) {
        Ok(())
    } else {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Whether the guard just installed on the page at `addr` really faults,
/// checked once per process: the kernel must refuse to write a result there
/// (`EFAULT`). An emulator that ignores `madvise` lets the write through.
#[cfg(target_os = "linux")]
fn guards_work(addr: usize) -> bool {
    use std::sync::atomic::{AtomicU8, Ordering};
    // 0: not probed yet, 1: guards work, 2: they do not.
    static PROBED: AtomicU8 = AtomicU8::new(0);
    match PROBED.load(Ordering::Relaxed) {
        1 => return true,
        2 => return false,
        _ => {}
    }
    // The raw syscall, not libc's `clock_gettime`, which may write from
    // the vDSO in user space (and would fault on a working guard).
    // SAFETY: the kernel either writes a timespec into our own page (no
    // guard: the slot's guard page is still unused memory) or fails with
    // EFAULT; nothing else is touched.
    let r = unsafe { libc::syscall(libc::SYS_clock_gettime, libc::CLOCK_MONOTONIC, addr) };
    let works = r != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT);
    PROBED.store(if works { 1 } else { 2 }, Ordering::Relaxed);
    works
}

/// No guard markers outside Linux: the pool uses `mprotect`ed guard pages.
#[cfg(not(target_os = "linux"))]
pub(crate) fn guard_install(_addr: usize, _page: usize) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// The fallback: a mapping of its own with an `mprotect`ed guard page (two
/// memory maps per stack, like `corosensei::DefaultStack`).
pub(crate) fn map_own(usable: usize, page: usize) -> io::Result<GreenStack> {
    let len = usable + page;
    let bottom = reserve(len)?;
    super::valgrind::register_own(bottom, bottom + len);
    let stack = GreenStack::new(bottom, bottom + len, Origin::Own);
    // SAFETY: the first page of our fresh mapping becomes inaccessible.
    let r = unsafe { libc::mprotect(bottom as *mut libc::c_void, page, libc::PROT_NONE) };
    if r != 0 {
        return Err(io::Error::last_os_error()); // `stack` unmaps on drop
    }
    Ok(stack)
}

/// A slab region: one large reservation carved into equal slots.
pub(crate) struct Region {
    pub(crate) addr: usize,
    pub(crate) len: usize,
    /// Under valgrind: the registrations of the slots carved so far.
    pub(crate) valgrind: Vec<corosensei::stack::valgrind::ValgrindStackRegistration>,
    /// Slots handed out so far (carving goes from the low end up).
    pub(crate) carved: usize,
    /// Carved slots dropped instead of pooled, never handed out again:
    /// stacks of a default size or guard mode no longer in use. Once every
    /// carved slot is pooled or abandoned, the region is idle.
    pub(crate) abandoned: usize,
}

impl Drop for Region {
    fn drop(&mut self) {
        // Deregistered before the memory goes.
        self.valgrind.clear();
        // SAFETY: the pool drops a region when the hub is gone, after every
        // greenlet (and so every stack in the region) has ended, or when
        // every slot carved from it is back in the pool (which then forgets
        // those stacks) or abandoned (dropped, never used again).
        unsafe { unmap(self.addr, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::super::{StackPool, DEEP_WATERMARK};
    use super::*;

    /// Whether the page at `addr` is resident.
    fn resident(addr: usize, page: usize) -> bool {
        let mut v = 0u8;
        // SAFETY: `addr` is page-aligned inside a mapping of ours; mincore
        // writes one byte for one page.
        let r =
            unsafe { libc::mincore(addr as *mut libc::c_void, page, (&mut v as *mut u8).cast()) };
        assert_eq!(r, 0, "mincore: {}", io::Error::last_os_error());
        v & 1 == 1
    }

    #[test]
    fn a_stack_that_ran_deep_gives_back_its_pages_below_the_watermark() {
        let page = page_size();
        let s = map_own(256 * 1024, page).unwrap();
        let deep = s.bottom + 4 * page;
        let near_top = s.top - page;
        // SAFETY: both words lie in the usable part of our own mapping.
        unsafe {
            ptr::write_volatile(deep as *mut u64, 1);
            ptr::write_volatile(near_top as *mut u64, 1);
        }
        // Shallow as far as the probe can tell: nothing happens.
        s.release_deep_pages(DEEP_WATERMARK, page);
        assert!(resident(deep, page));
        // A frame wrote the word below the watermark: the deep part goes,
        // the top stays.
        let mark = s.top - DEEP_WATERMARK;
        // SAFETY: as above.
        unsafe { ptr::write_volatile((mark - 8) as *mut u64, 7) };
        s.release_deep_pages(DEEP_WATERMARK, page);
        assert!(!resident(deep, page), "the deep page was given back");
        assert!(!resident(mark - page, page));
        assert!(resident(near_top, page), "the top stays resident");
        // SAFETY: a released page reads as zero again.
        assert_eq!(unsafe { ptr::read_volatile(deep as *const u64) }, 0);
    }

    #[test]
    fn regions_whose_stacks_are_all_back_are_unmapped() {
        let mut pool = StackPool::new();
        let Ok(first) = pool.take_now(None) else {
            return;
        };
        if pool.guard() != crate::stack::StackGuard::Auto {
            pool.put(first);
            return; // no slab regions on this kernel
        }
        // Enough stacks for several regions (64, then 128, ...).
        let mut live = vec![first];
        live.extend((0..500).map(|_| pool.take_now(None).unwrap()));
        let regions = pool.regions.len();
        assert!(regions >= 3, "{regions}");
        // Keep one stack of the first region in use.
        let kept = live.remove(0);
        for s in live {
            pool.put(s);
        }
        pool.trim();
        assert_eq!(pool.regions.len(), 1, "only the region in use is left");
        assert_eq!(pool.len(), 63, "the pool forgot the unmapped stacks");
        pool.put(kept);
        pool.trim();
        assert!(pool.regions.is_empty());
        assert_eq!(pool.len(), 0);
        // The pool carves new stacks afterwards.
        let s = pool.take_now(None).unwrap();
        assert_eq!(pool.regions.len(), 1);
        pool.put(s);
    }
}

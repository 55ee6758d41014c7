//! Raw memory for stacks: one `GreenStack` type over two origins (a slot of a
//! large slab, or a mapping of its own), and the `mmap`/`madvise` calls.

use std::io;
use std::ptr;

/// `madvise` advice that installs guard markers on a range without creating
/// a VMA (Linux >= 6.13). Not yet in the `libc` crate.
const MADV_GUARD_INSTALL: libc::c_int = 102;

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
}

impl GreenStack {
    /// A stack over `[bottom, top)`. (Under valgrind its origin registers
    /// it: see `valgrind.rs`.)
    pub(crate) fn new(bottom: usize, top: usize, origin: Origin) -> GreenStack {
        GreenStack {
            top,
            bottom,
            origin,
        }
    }

    /// Usable bytes (without the guard page).
    pub(crate) fn usable(&self, page: usize) -> usize {
        self.top - self.bottom - page
    }

    /// Gives the stack's pages back to the kernel (the next use faults in
    /// zeroed pages). Guard markers survive `MADV_DONTNEED`.
    pub(crate) fn release_pages(&self, page: usize) {
        let start = self.bottom + page;
        // SAFETY: the range lies inside this stack's own mapping, and no
        // greenlet runs on a pooled stack, so nothing live is discarded.
        unsafe {
            libc::madvise(
                start as *mut libc::c_void,
                self.top - start,
                libc::MADV_DONTNEED,
            )
        };
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
// mprotect before the stack is handed out); both ends are page-aligned,
// hence aligned to STACK_ALIGNMENT, and a stack is at least MIN_STACK_SIZE.
unsafe impl corosensei::stack::Stack for GreenStack {
    fn base(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::StackPointer::new(self.top).expect("non-null stack")
    }

    fn limit(&self) -> corosensei::stack::StackPointer {
        corosensei::stack::StackPointer::new(self.bottom).expect("non-null stack")
    }
}

/// Reserves `len` bytes of address space, readable and writable, with no
/// memory committed (`MAP_NORESERVE`): pages cost memory only once touched.
pub(crate) fn reserve(len: usize) -> io::Result<usize> {
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing affects no existing memory.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // Never back stacks with transparent huge pages: a 2 MiB page would make
    // ~30 stacks fully resident when each needs only its top page or two.
    // SAFETY: advice on our own fresh mapping; failure only costs memory.
    unsafe { libc::madvise(p, len, libc::MADV_NOHUGEPAGE) };
    Ok(p as usize)
}

/// Unmaps a range made by [`reserve`].
///
/// # Safety
/// Nothing may use the range afterwards.
pub(crate) unsafe fn unmap(addr: usize, len: usize) {
    // SAFETY: the caller owns the range and gives it up.
    unsafe { libc::munmap(addr as *mut libc::c_void, len) };
}

/// Installs a guard marker on one page (no new VMA). `EINVAL` means the
/// kernel is older than 6.13.
pub(crate) fn guard_install(addr: usize, page: usize) -> io::Result<()> {
    // SAFETY: the page belongs to a slab region of ours that no greenlet
    // uses yet; guarding it only makes accesses fault.
    let r = unsafe { libc::madvise(addr as *mut libc::c_void, page, MADV_GUARD_INSTALL) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
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
}

impl Drop for Region {
    fn drop(&mut self) {
        self.valgrind.clear(); // deregistered before the memory goes
                               // SAFETY: the pool drops regions only when the hub is gone, after
                               // every greenlet (and so every stack in the region) has ended.
        unsafe { unmap(self.addr, self.len) };
    }
}

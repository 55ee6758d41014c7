//! Greenlet stacks: carved from large slabs, guarded without extra memory
//! maps, recycled through a per-hub pool, and reported when they overflow.
//!
//! `corosensei::DefaultStack` costs two kernel memory maps per stack (the
//! mapping and its `mprotect`ed guard page), so at Linux's default
//! `vm.max_map_count` of 65530 a process stops near 32,750 live greenlets.
//! Here stacks of the hub's default size are slots of large `MAP_NORESERVE`
//! slabs (64 slots at first, doubling up to 16384 per slab), and each guard
//! page is installed with `madvise(MADV_GUARD_INSTALL)` (Linux >= 6.13),
//! which adds no map: a million greenlets cost about 70 maps. On older
//! kernels (`EINVAL`), where the guard does not take (qemu-user), on other
//! systems, or when forced (`GREENLET_STACK_GUARD=mprotect`, or
//! [`set_stack_guard`](crate::hub::set_stack_guard)), each stack is its own
//! mapping with an `mprotect`ed
//! guard page.
//!
//! Finished greenlets return their stacks to the pool (no syscall). Memory
//! follows use, not the peak, with decay: every [`DECAY_INTERVAL`] the hub
//! gives back the pages (`MADV_DONTNEED`; slot and guard stay) of the pooled
//! stacks that were not needed during the whole interval — the pool's
//! low-water mark — except [`WARM_STACKS`]. A burst that reuses its stacks
//! at once pays no syscalls and no page faults; a burst that is over is
//! returned to the kernel a second or two later, leaving a few MiB behind,
//! not gigabytes. A decay step that releases a burst's worth of stacks also
//! unmaps the slab regions none of whose stacks is in use, and tells the hub
//! to give back what else the burst left (see `Hub::give_back_memory`).
//!
//! A stack that ran deep gives its deep pages back as soon as it is pooled:
//! one load at the [`DEEP_WATERMARK`] tells (see
//! `GreenStack::release_deep_pages`), so a large default costs address
//! space, not memory.
//!
//! A stack overflow hits the guard page; the SIGSEGV handler (see
//! `overflow.rs`) reports the greenlet's name and stack size and aborts.
//!
//! Every stack is registered with valgrind (a no-op natively), so programs
//! run under it without options; see `docs/valgrind.md`.

mod memory;
#[cfg(test)]
mod model;
pub(crate) mod overflow;
mod valgrind;

use std::io;
use std::time::{Duration, Instant};

use memory::{guard_install, map_own, page_size, reserve, round_up, Origin, Region};
pub(crate) use memory::{trim_heap, GreenStack};

/// The page size, read once per process (also from the signal handler,
/// which must not make syscalls it does not need).
pub(crate) fn page_size_cached() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    match PAGE.load(Ordering::Relaxed) {
        0 => {
            let p = page_size();
            PAGE.store(p, Ordering::Relaxed);
            p
        }
        p => p,
    }
}

/// The stack type greenlets run on.
pub(crate) type Stack = GreenStack;

/// Default stack size of a greenlet: 256 KiB.
///
/// Enough for ordinary crates in a debug build, with room to spare: a
/// `ureq` GET went 62 KiB deep, a rustls handshake 52 KiB, a tungstenite
/// handshake 49 KiB and a `redis` round trip 32 KiB (`tests/stack_fit.rs`,
/// which fails if one of them needs more than three quarters of the
/// default). The size costs address space, not memory: pages are committed
/// when first touched (a parked greenlet holds one or two), and a pooled
/// stack that ran deep gives back its pages below the top
/// 32 KiB (`DEEP_WATERMARK`).
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// How much of a finished greenlet's stack, from the top, may stay resident
/// in the pool: a stack that ran deeper gives its pages below this mark back
/// to the kernel when it is returned to the pool.
pub const DEEP_WATERMARK: usize = 32 * 1024;

/// Smallest stack a greenlet may ask for. Below this the hub's own switch
/// and park frames plus a panic's unwinding would not fit.
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// Free stacks kept resident for instant reuse; the pages of the other
/// pooled stacks are given back to the kernel.
pub const WARM_STACKS: usize = 64;

/// How often the pool gives back stacks it did not need.
pub const DECAY_INTERVAL: Duration = Duration::from_secs(1);

/// Cap on pooled stacks that are mappings of their own (fallback path).
const OWN_POOL_CAP: usize = 1024;

/// Stacks released by one decay step that mark the end of a burst, after
/// which the allocator's free memory is worth giving back.
const BURST: usize = 1024;

const FIRST_SLAB_SLOTS: usize = 64;
const MAX_SLAB_SLOTS: usize = 16384;

/// Whether stacks of `size` usable bytes get the deep-pages probe when
/// returned (see [`StackPool::put`]).
fn probe_deep(size: usize) -> bool {
    size > DEEP_WATERMARK && !valgrind::register_stacks()
}

/// How guard pages are installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StackGuard {
    /// Slab stacks with `madvise(MADV_GUARD_INSTALL)` guard pages, falling
    /// back to `Mprotect` on kernels that answer `EINVAL` (older than 6.13),
    /// where the guard does not take (qemu-user), and outside Linux.
    Auto,
    /// Each stack is its own mapping with an `mprotect`ed guard page: two
    /// memory maps per stack, so `vm.max_map_count` bounds live greenlets.
    Mprotect,
}

pub(crate) struct StackPool {
    page: usize,
    /// Usable size (page-rounded) of default stacks.
    default_size: usize,
    guard: StackGuard,
    max_stacks: Option<usize>,
    /// Stacks handed out and not yet returned, reservations included.
    live: usize,
    /// Free default-size stacks, LIFO (most recently used on top).
    free: Vec<GreenStack>,
    /// How many of the `free` stacks are promised to greenlets spawned and
    /// not yet run (see [`StackPool::reserve`]); `free.len() >= reserved`.
    /// Only a count: which stack a greenlet gets is decided at its first
    /// run, and is then the warmest one.
    reserved: usize,
    /// `free[..trimmed]` have had their pages released.
    trimmed: usize,
    /// Lowest number of unpromised free stacks since the last decay:
    /// `free[..low_water]` sat unused for the whole interval.
    low_water: usize,
    /// When the next decay is due.
    next_decay: Option<Instant>,
    /// Whether returned stacks get the deep-pages probe: the default size
    /// exceeds [`DEEP_WATERMARK`], and memcheck is not watching stacks (it
    /// reports the probe's read of a dead frame as invalid).
    probe_deep: bool,
    regions: Vec<Region>,
    carve_next: usize,
    carve_end: usize,
    next_slab_slots: usize,
    /// A guard page was installed on a slab slot, so the kernel can:
    /// later slots are guarded when they first run.
    guards_checked: bool,
}

impl StackPool {
    pub(crate) fn new() -> StackPool {
        let forced = std::env::var("GREENLET_STACK_GUARD").is_ok_and(|v| v == "mprotect");
        let page = page_size_cached();
        StackPool {
            page,
            default_size: round_up(DEFAULT_STACK_SIZE, page),
            probe_deep: probe_deep(round_up(DEFAULT_STACK_SIZE, page)),
            guard: if forced {
                StackGuard::Mprotect
            } else {
                StackGuard::Auto
            },
            max_stacks: None,
            live: 0,
            free: Vec::new(),
            reserved: 0,
            trimmed: 0,
            low_water: 0,
            next_decay: None,
            regions: Vec::new(),
            carve_next: 0,
            carve_end: 0,
            next_slab_slots: FIRST_SLAB_SLOTS,
            guards_checked: false,
        }
    }

    pub(crate) fn page(&self) -> usize {
        self.page
    }

    pub(crate) fn default_size(&self) -> usize {
        self.default_size
    }

    /// Reserves a stack for a greenlet being spawned: one with at least
    /// `size` usable bytes (`None`: the default) will be there when it
    /// first runs. A default-size stack is only counted here (`Ok(None)`;
    /// [`StackPool::take_reserved`] takes one at the first run, the
    /// warmest); a stack of another size is the greenlet's own (`Some`).
    ///
    /// # Errors
    /// `InvalidInput` below [`MIN_STACK_SIZE`]; `OutOfMemory` when the
    /// configured limit is reached or the kernel refuses memory or maps
    /// (the message names the limit and the fix).
    #[inline]
    pub(crate) fn reserve(&mut self, size: Option<usize>) -> io::Result<Option<GreenStack>> {
        // Inline only the common case: the default size, a free stack not
        // yet promised, and no limit to check.
        if size.is_none() && self.max_stacks.is_none() && self.free.len() > self.reserved {
            self.promise_one();
            return Ok(None);
        }
        self.reserve_slow(size)
    }

    #[inline(never)]
    fn reserve_slow(&mut self, size: Option<usize>) -> io::Result<Option<GreenStack>> {
        let size = match size {
            None => self.default_size,
            Some(s) => self.check_size(s)?,
        };
        if let Some(max) = self.max_stacks {
            if self.live >= max {
                return Err(io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!(
                        "greenlet stack limit reached: {max} live greenlets, the limit set with \
                         hub::set_max_stacks; raise the limit or let greenlets finish"
                    ),
                ));
            }
        }
        if size != self.default_size {
            let own = self.map_own(size)?;
            self.live += 1;
            return Ok(Some(own));
        }
        while self.free.len() <= self.reserved {
            let stack = self.new_default()?;
            self.free.push(stack);
        }
        self.promise_one();
        Ok(None)
    }

    /// Promises one more free stack (there is one not promised yet): for
    /// the decay it is in use from now on.
    #[inline]
    fn promise_one(&mut self) {
        self.reserved += 1;
        self.live += 1;
        self.low_water = self.low_water.min(self.unpromised());
    }

    /// A new stack of the default size.
    fn new_default(&mut self) -> io::Result<GreenStack> {
        if self.guard == StackGuard::Auto {
            self.carve()
        } else {
            self.map_own(self.default_size)
        }
    }

    /// For a greenlet's first run: a stack of what [`StackPool::reserve`]
    /// counted, the most recently freed one, whose pages are still in the
    /// caches and the TLB. A burst of short greenlets then runs on one warm
    /// stack instead of touching one cold stack each (a TLB miss and
    /// several cache misses per greenlet once 100k are live).
    ///
    /// # Errors
    /// `OutOfMemory` if the pool had to make the stack (the default size
    /// changed since the reservation and the promised stacks could not be
    /// made then) and could not; the reservation is then given back.
    #[inline]
    pub(crate) fn take_reserved(&mut self) -> io::Result<GreenStack> {
        self.reserved -= 1;
        match self.take_free() {
            Some(s) => Ok(s),
            None => self.new_default().inspect_err(|_| self.live -= 1),
        }
    }

    /// Reserves a stack and takes it at once, as a spawn and its first
    /// run do.
    #[cfg(test)]
    pub(crate) fn take_now(&mut self, size: Option<usize>) -> io::Result<GreenStack> {
        match self.reserve(size)? {
            Some(own) => Ok(own),
            None => self.take_reserved(),
        }
    }

    /// Gives back a reservation that will not be used (a greenlet killed
    /// before its first run).
    pub(crate) fn unreserve(&mut self) {
        self.reserved -= 1;
        self.live -= 1;
    }

    /// How many free stacks are not promised to a greenlet. (None, if a
    /// change of the default size could not make all promised stacks.)
    #[inline]
    fn unpromised(&self) -> usize {
        self.free.len().saturating_sub(self.reserved)
    }

    /// The most recently pooled default-size stack, if any.
    #[inline]
    fn take_free(&mut self) -> Option<GreenStack> {
        // Only reservations take stacks, and the reservation already
        // lowered the low-water mark.
        let s = self.free.pop()?;
        self.trimmed = self.trimmed.min(self.free.len());
        Some(s)
    }

    /// Takes back the stack of a finished greenlet.
    #[inline(always)] // on spawn+join's path: no call
    pub(crate) fn put(&mut self, stack: GreenStack) {
        self.live -= 1;
        if stack.usable(self.page) != self.default_size {
            // Of a size no longer made: dropped (an own mapping is
            // unmapped; a slab slot is abandoned, its region released once
            // idle).
            self.abandon(&stack);
            return;
        }
        if stack.origin == Origin::Own && self.unpromised() >= OWN_POOL_CAP {
            return; // dropped: an own mapping is unmapped
        }
        if self.probe_deep {
            stack.release_deep_pages(DEEP_WATERMARK, self.page);
        }
        self.free.push(stack);
    }

    /// Releases the pages of all pooled stacks beyond [`WARM_STACKS`], and
    /// the slab regions none of whose stacks is in use.
    pub(crate) fn trim(&mut self) {
        let end = self.unpromised().saturating_sub(WARM_STACKS);
        self.release_up_to(end);
        self.release_idle_regions();
        self.low_water = self.unpromised();
    }

    /// Releases the pages of `free[trimmed..end]`; returns how many stacks
    /// that was.
    fn release_up_to(&mut self, end: usize) -> usize {
        if end <= self.trimmed {
            return 0;
        }
        for s in &self.free[self.trimmed..end] {
            s.release_pages(self.page);
        }
        let released = end - self.trimmed;
        self.trimmed = end;
        released
    }

    /// Unmaps the slab regions whose carved slots are all back in the pool,
    /// forgetting their stacks: after a burst this returns the address
    /// space, the page tables (about 4 KiB per 2 MiB of stacks that ran) and
    /// the pool's own list, not only the stacks' pages.
    fn release_idle_regions(&mut self) {
        if self.regions.is_empty() {
            return;
        }
        let mut by_addr: Vec<(usize, usize)> = self
            .regions
            .iter()
            .enumerate()
            .map(|(i, r)| (r.addr, i))
            .collect();
        by_addr.sort_unstable();
        let region_of = |s: &GreenStack| {
            let k = by_addr.partition_point(|&(a, _)| a <= s.bottom);
            by_addr[k - 1].1 // every slab stack lies in a region
        };
        // The promised stacks count as in use: their regions stay.
        let mut pooled = vec![0usize; self.regions.len()];
        let unpromised = &self.free[..self.unpromised()];
        for s in unpromised.iter().filter(|s| s.origin == Origin::Slab) {
            pooled[region_of(s)] += 1;
        }
        let idle: Vec<bool> = (self.regions.iter().zip(&pooled))
            .map(|(r, &n)| r.carved > 0 && n + r.abandoned == r.carved)
            .collect();
        if !idle.contains(&true) {
            return;
        }
        let (mut kept, mut kept_trimmed, mut kept_low) = (0, 0, 0);
        let old = std::mem::take(&mut self.free);
        for (i, s) in old.into_iter().enumerate() {
            if s.origin == Origin::Slab && idle[region_of(&s)] {
                continue;
            }
            kept_trimmed += usize::from(i < self.trimmed);
            kept_low += usize::from(i < self.low_water);
            kept += 1;
            self.free.push(s);
        }
        debug_assert_eq!(kept, self.free.len());
        (self.trimmed, self.low_water) = (kept_trimmed, kept_low);
        if idle[self.regions.len() - 1] {
            // The region being carved goes: the next carve maps a new one.
            (self.carve_next, self.carve_end) = (0, 0);
        }
        let mut i = 0;
        self.regions.retain(|_| {
            i += 1;
            !idle[i - 1]
        });
    }

    /// Drops a stack that will not be pooled again: its pages go back now,
    /// and a slab slot counts as abandoned in its region, so that the
    /// region can be unmapped once no slot of it is in use
    /// (`release_idle_regions`). Off the common path: only after a change
    /// of default size or guard mode.
    #[cold]
    fn abandon(&mut self, stack: &GreenStack) {
        if stack.origin != Origin::Slab {
            return; // an own mapping is unmapped when dropped
        }
        stack.release_pages(self.page);
        let bottom = stack.bottom;
        let Some(r) = self
            .regions
            .iter_mut()
            .find(|r| r.addr <= bottom && bottom < r.addr + r.len)
        else {
            return;
        };
        r.abandoned += 1;
        if r.abandoned == r.carved {
            // Its last slot in use: no pooled stack can be of it (it is of
            // an old size or guard mode), so it is idle now, and neither a
            // trim nor a burst's decay may ever come to release it.
            self.release_idle_regions();
        }
    }

    /// The decay step, called by the hub once per loop turn with the turn's
    /// time: every [`DECAY_INTERVAL`], releases the stacks that sat unused
    /// through the whole interval (beyond [`WARM_STACKS`]).
    ///
    /// Returns true when a burst's worth of stacks ([`BURST`]) was released:
    /// the burst is over, and the hub gives back what else it left (see
    /// `Hub::give_back_memory`). The slab regions none of whose stacks is in
    /// use are unmapped then.
    #[inline]
    pub(crate) fn decay(&mut self, now: Instant) -> bool {
        let mut burst_over = false;
        match self.next_decay {
            Some(due) if now < due => return false,
            Some(_) => {
                let end = self
                    .low_water
                    .min(self.unpromised().saturating_sub(WARM_STACKS));
                if self.release_up_to(end) >= BURST {
                    self.release_idle_regions();
                    burst_over = true;
                }
            }
            None => {}
        }
        self.low_water = self.unpromised();
        self.next_decay = self.has_excess().then(|| now + DECAY_INTERVAL);
        burst_over
    }

    /// Whether more stacks are pooled than kept warm (cheap check).
    #[inline]
    pub(crate) fn has_excess(&self) -> bool {
        self.unpromised() > self.trimmed + WARM_STACKS
    }

    /// When the hub must wake to run [`StackPool::decay`], if it has work.
    pub(crate) fn decay_due(&self) -> Option<Instant> {
        self.next_decay
    }

    fn check_size(&self, size: usize) -> io::Result<usize> {
        if size < MIN_STACK_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "greenlet stack size {size} bytes is below the minimum of {MIN_STACK_SIZE} \
                     bytes; ask for at least {} KiB",
                    MIN_STACK_SIZE / 1024
                ),
            ));
        }
        size.checked_add(self.page)
            .map(|s| round_up(s - self.page, self.page))
            .filter(|s| *s <= isize::MAX as usize / 2)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("greenlet stack size {size} bytes is larger than any address space"),
                )
            })
    }

    /// A slot from the current slab, starting a new slab when it is full.
    fn carve(&mut self) -> io::Result<GreenStack> {
        let slot = self.default_size + self.page;
        if self.carve_next == self.carve_end {
            // A slab of one if a whole slab of stacks this size would not
            // even fit an address (a size near `check_size`'s bound): its
            // reservation then fails as an error, not an overflow.
            let slots = match self.next_slab_slots.checked_mul(slot) {
                Some(len) if len <= isize::MAX as usize => self.next_slab_slots,
                _ => 1,
            };
            let len = slots * slot;
            let addr = reserve(len).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    format!(
                        "cannot reserve {} MiB of address space for {slots} more greenlet stacks \
                         ({} live): {e}; the process is out of address space or memory (check \
                         `ulimit -v`), or lower the stack size",
                        len >> 20,
                        self.live
                    ),
                )
            })?;
            self.regions.push(Region {
                addr,
                len,
                valgrind: Vec::new(),
                carved: 0,
                abandoned: 0,
            });
            self.carve_next = addr;
            self.carve_end = addr + len;
            self.next_slab_slots = (slots * 2).min(MAX_SLAB_SLOTS);
        }
        let bottom = self.carve_next;
        // The first slot is guarded now, which tells whether the kernel
        // can; later slots when they first run (`ready_to_run`).
        let guarded = !self.guards_checked;
        if guarded {
            match guard_install(bottom, self.page) {
                Ok(()) => self.guards_checked = true,
                Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                    // Kernel older than 6.13, or not Linux: per-stack
                    // mprotect from now on. The slab just reserved for
                    // this first slot goes (nothing was carved from it).
                    self.guard = StackGuard::Mprotect;
                    if self.regions.last().is_some_and(|r| r.carved == 0) {
                        self.regions.pop();
                        (self.carve_next, self.carve_end) = (0, 0);
                    }
                    return self.map_own(self.default_size);
                }
                Err(e) => return Err(guard_error(e)),
            }
        }
        self.carve_next += slot;
        if let (Some(r), Some(region)) = (
            valgrind::registration(bottom, bottom + slot),
            self.regions.last_mut(),
        ) {
            region.valgrind.push(r);
        }
        if let Some(r) = self.regions.last_mut() {
            r.carved += 1; // the region being carved is the last one
        }
        let mut stack = GreenStack::new(bottom, bottom + slot, Origin::Slab);
        stack.guarded = guarded;
        Ok(stack)
    }

    /// Makes `stack` fit to run a greenlet: installs the guard page its
    /// carving deferred. Deferred because most carved stacks never run:
    /// a burst of short greenlets runs on a few warm stacks (the first run
    /// takes the most recently freed: `take_reserved`), and a `madvise`
    /// per spawn was most of a cold spawn's cost.
    ///
    /// # Errors
    /// `OutOfMemory` if the kernel cannot install the guard (it is out of
    /// memory for page tables); the stack then goes back to the pool.
    #[inline]
    pub(crate) fn ready_to_run(&mut self, stack: GreenStack) -> io::Result<GreenStack> {
        if stack.guarded {
            return Ok(stack);
        }
        self.install_guard(stack)
    }

    #[cold]
    fn install_guard(&mut self, mut stack: GreenStack) -> io::Result<GreenStack> {
        match guard_install(stack.bottom, self.page) {
            Ok(()) => {
                stack.guarded = true;
                Ok(stack)
            }
            Err(e) => {
                self.put(stack);
                Err(guard_error(e))
            }
        }
    }

    fn map_own(&mut self, size: usize) -> io::Result<GreenStack> {
        map_own(size, self.page).map_err(|e| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "cannot map a {} KiB greenlet stack ({} live): {e}; {}",
                    size / 1024,
                    self.live,
                    map_limit_hint()
                ),
            )
        })
    }

    /// Greenlets spawned with the default size and not yet run get the
    /// new size: the stacks promised to them are made anew.
    ///
    /// # Errors
    /// `InvalidInput` below [`MIN_STACK_SIZE`]; `OutOfMemory` if the
    /// promised stacks cannot be made (those greenlets then fail to start
    /// unless stacks come back first).
    pub(crate) fn set_default_size(&mut self, size: usize) -> io::Result<()> {
        let size = self.check_size(size)?;
        if size != self.default_size {
            self.default_size = size;
            self.probe_deep = probe_deep(size);
            // Pooled stacks are of the old size: release them. (Slab slots
            // stay reserved, their pages released.)
            self.trimmed = 0;
            self.low_water = 0;
            for s in std::mem::take(&mut self.free) {
                self.abandon(&s);
            }
            self.carve_next = self.carve_end; // next carve starts a new slab
            while self.free.len() < self.reserved {
                let stack = self.new_default()?;
                self.free.push(stack);
            }
            // Regions of the old size none of whose slots is in use go now;
            // the others when their last greenlet ends (`abandon`).
            self.release_idle_regions();
        }
        Ok(())
    }

    pub(crate) fn set_max(&mut self, max: Option<usize>) {
        self.max_stacks = max;
    }

    /// New stacks get their guard pages this way; the free stacks made the
    /// other way are dropped, except those promised to greenlets not yet
    /// run (still good stacks).
    pub(crate) fn set_guard(&mut self, guard: StackGuard) {
        if guard != self.guard {
            self.guard = guard;
            let unpromised = self.unpromised();
            let made_the_other_way: Vec<GreenStack> = self.free.drain(..unpromised).collect();
            self.trimmed = 0;
            self.low_water = 0;
            for s in &made_the_other_way {
                self.abandon(s);
            }
        }
    }

    /// Free stacks held, not promised to a greenlet.
    pub(crate) fn len(&self) -> usize {
        self.unpromised()
    }

    /// Stacks in use.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    pub(crate) fn guard(&self) -> StackGuard {
        self.guard
    }
}

/// What to do when a stack with its own `mprotect`ed guard page cannot be
/// mapped: on Linux the usual cause is the per-process map limit.
#[cfg(target_os = "linux")]
fn map_limit_hint() -> String {
    let maps = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    format!(
        "with per-stack guard pages each stack takes 2 memory maps and the kernel allows \
         vm.max_map_count = {maps} per process: raise it (sysctl -w vm.max_map_count=...), run \
         on Linux >= 6.13 (guard pages without maps), or lower the number of live greenlets"
    )
}

/// Elsewhere there is no map-count limit to name: memory or address space
/// ran out.
#[cfg(not(target_os = "linux"))]
fn map_limit_hint() -> String {
    "each stack is a mapping of its own with an mprotect'ed guard page: lower the number of \
     live greenlets or their stack size, or raise the process's memory limits (ulimit -v)"
        .to_string()
}

/// The error of a guard page the kernel would not install.
fn guard_error(e: io::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!("cannot install a greenlet stack guard page: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::time::Instant;

    use super::*;

    /// A guard the kernel refuses when a carved stack first runs ends
    /// that greenlet as panicked with the error, without running its code
    /// unguarded; the stack goes back to the pool, and the next greenlet
    /// runs on it once guards work again.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_refused_guard_fails_that_greenlet_and_the_hub_goes_on() {
        use std::cell::Cell;
        use std::rc::Rc;

        // The first stack of a slab is guarded when carved; park a
        // greenlet on it so that the next one runs on a later slot.
        let first = crate::spawn(|| crate::sleep(std::time::Duration::from_secs(3600)));
        crate::yield_now();
        if crate::hub::stack_guard() != StackGuard::Auto {
            // qemu-user and kernels before 6.13: mprotected stacks, guarded
            // when mapped; there is no deferred guard to refuse.
            eprintln!("skipped: this kernel has no MADV_GUARD_INSTALL");
            first.kill().unwrap();
            return;
        }
        let ran = Rc::new(Cell::new(false));
        memory::REFUSE_GUARDS.set(Some(libc::ENOMEM));
        let refused = crate::spawn({
            let ran = ran.clone();
            move || ran.set(true)
        });
        refused.join().unwrap();
        memory::REFUSE_GUARDS.set(None);
        assert!(refused.panicked(), "{:?}", refused.state());
        assert!(!ran.get(), "its code must not run on an unguarded stack");
        let msg = refused.panic_message().unwrap();
        assert!(
            msg.contains("cannot install a greenlet stack guard page"),
            "{msg}"
        );
        let after = crate::spawn(|| 7).get().unwrap();
        assert_eq!(after, 7, "the hub runs greenlets again");
        first.kill().unwrap();
    }

    /// On a kernel without `MADV_GUARD_INSTALL` the first carve finds out,
    /// and the pool maps stacks of their own from then on; the slab it had
    /// reserved for that first slot is not kept.
    #[cfg(target_os = "linux")]
    #[test]
    fn without_guard_markers_no_slab_stays_reserved() {
        let mut pool = StackPool::new();
        memory::REFUSE_GUARDS.set(Some(libc::EINVAL));
        let s = pool.take_now(None);
        memory::REFUSE_GUARDS.set(None);
        let s = s.unwrap();
        assert!(
            s.origin == Origin::Own,
            "an mprotect-guarded stack of its own"
        );
        assert_eq!(pool.guard(), StackGuard::Mprotect);
        assert!(pool.regions.is_empty(), "the unused slab was unmapped");
        pool.put(s);
        let again = pool.take_now(None).unwrap();
        assert!(again.origin == Origin::Own);
        pool.put(again);
    }

    #[test]
    fn a_returned_stack_is_the_next_one_handed_out() {
        let mut pool = StackPool::new();
        let a = pool.take_now(None).unwrap();
        let bottom = a.bottom;
        assert_eq!((pool.live(), pool.len()), (1, 0));
        pool.put(a);
        assert_eq!((pool.live(), pool.len()), (0, 1));
        let b = pool.take_now(None).unwrap();
        assert_eq!(b.bottom, bottom, "LIFO: the warmest stack first");
        assert_eq!(b.usable(pool.page()), pool.default_size());
        pool.put(b);
    }

    #[test]
    fn too_small_a_size_and_the_cap_are_errors_that_name_the_fix() {
        let mut pool = StackPool::new();
        let small = pool.reserve(Some(MIN_STACK_SIZE - 1)).unwrap_err();
        assert_eq!(small.kind(), ErrorKind::InvalidInput);
        pool.set_max(Some(1));
        let a = pool.take_now(None).unwrap();
        let capped = pool.reserve(None).unwrap_err();
        assert_eq!(capped.kind(), ErrorKind::OutOfMemory);
        assert!(capped.to_string().contains("set_max_stacks"), "{capped}");
        pool.put(a);
        let again = pool.take_now(None).unwrap();
        pool.put(again);
    }

    #[test]
    fn a_reservation_is_a_count_and_the_first_run_takes_the_most_recently_freed() {
        let mut pool = StackPool::new();
        let a = pool.take_now(None).unwrap();
        let a_bottom = a.bottom;
        assert!(
            pool.reserve(None).unwrap().is_none(),
            "counted, not handed out"
        );
        assert_eq!(
            (pool.live(), pool.len()),
            (2, 0),
            "the promised one is not free"
        );
        pool.put(a);
        assert_eq!((pool.live(), pool.len()), (1, 1));
        let hot = pool.take_reserved().unwrap();
        assert_eq!(hot.bottom, a_bottom, "the warmest stack");
        assert_eq!((pool.live(), pool.len()), (1, 1));
        pool.put(hot);
        assert!(pool.reserve(None).unwrap().is_none());
        pool.unreserve();
        assert_eq!((pool.live(), pool.len()), (0, 2));
        let own = pool.reserve(Some(pool.default_size() * 2)).unwrap();
        assert!(own.is_some_and(|s| s.usable(pool.page()) == pool.default_size() * 2));
        assert_eq!((pool.live(), pool.len()), (1, 2), "another size is its own");
    }

    #[test]
    fn promised_stacks_outlive_a_change_of_size_or_guard() {
        let mut pool = StackPool::new();
        let spare = pool.take_now(None).unwrap();
        pool.put(spare);
        assert!(pool.reserve(None).unwrap().is_none());
        pool.set_guard(StackGuard::Mprotect);
        assert_eq!(pool.len(), 0, "the unpromised free stack went");
        pool.set_default_size(pool.default_size() * 2).unwrap();
        let s = pool.take_reserved().unwrap();
        assert_eq!(
            s.usable(pool.page()),
            pool.default_size(),
            "made anew, of the new size"
        );
        pool.put(s);
        assert_eq!((pool.live(), pool.len()), (0, 1));
    }

    #[test]
    fn decay_releases_only_what_sat_unused_beyond_the_warm_stacks() {
        let mut pool = StackPool::new();
        let n = WARM_STACKS + 10;
        let stacks: Vec<_> = (0..n).map(|_| pool.take_now(None).unwrap()).collect();
        for s in stacks {
            pool.put(s);
        }
        assert!(pool.has_excess());
        let t0 = Instant::now();
        pool.decay(t0);
        let due = pool.decay_due().expect("an excess starts the decay clock");
        assert_eq!(due, t0 + DECAY_INTERVAL);
        pool.decay(t0 + DECAY_INTERVAL / 2);
        assert!(pool.has_excess(), "not due yet");
        pool.decay(due);
        assert!(
            !pool.has_excess(),
            "the 10 beyond the warm ones were released"
        );
        assert_eq!(pool.decay_due(), None, "nothing left to decay");
        assert_eq!(pool.len(), n, "released stacks stay pooled, without pages");
    }
}

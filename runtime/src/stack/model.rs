//! A model-based property test of [`StackPool`]: random sequences of what
//! the hub does with the pool (hand-outs, reservations, returns, changes of
//! the default size and guard mode, trims and decay steps), each followed
//! by a check of the pool against a model of it and of the memory of every
//! stack the test holds.
//!
//! The model predicts the free list exactly (LIFO order included), except
//! that a slab region none of whose stacks is in use may be unmapped, its
//! pooled stacks forgotten; that is allowed only where the pool may release
//! regions, and required (no idle region left) after `trim`, a change of
//! the default size and a decay step that ends a burst. Regions are checked
//! against the pool's own bookkeeping: every slab stack held or pooled lies
//! in exactly one region, in a slot, and each region's `carved` equals its
//! `abandoned` plus its stacks held or pooled.
//!
//! The guard pages themselves are not probed: there is no helper that
//! tells, per stack, whether an access faults (`memory::guards_work` answers
//! once per process). Under qemu-user the pool falls back to `mprotect`ed
//! stacks of their own, which the model follows through `pool.guard()`.

use std::ptr;
use std::time::Instant;

use proptest::prelude::*;
use proptest::sample::Index;

use super::memory::{round_up, GreenStack, Origin};
use super::{StackGuard, StackPool, DECAY_INTERVAL, DEEP_WATERMARK, OWN_POOL_CAP};

const KIB: usize = 1024;

/// Default sizes the test switches between: small, so that bursts are cheap.
const DEFAULT_SIZES: [usize; 3] = [64 * KIB, 128 * KIB, 256 * KIB];

/// Sizes asked for explicitly: a default size (then the stack is a default
/// one) or another (a mapping of its own).
const ASKED_SIZES: [usize; 4] = [64 * KIB, 96 * KIB, 128 * KIB, 256 * KIB];

/// At most this many stacks held, and reservations outstanding, at once
/// (outside bursts).
const MAX_HELD: usize = 12;
const MAX_RESERVED: usize = 6;

/// High bits of the marker word written at the top of each held stack.
const MARK: u64 = 0x5ca1_ab1e_0000_0000;

/// One step of a generated sequence.
#[derive(Clone, Debug)]
enum Op {
    /// `take_now(None)` (and `ready_to_run`, as the hub does); `deep`
    /// writes the deep-pages probe word, as a greenlet that ran deep does.
    Take {
        deep: bool,
    },
    /// `take_now(Some(size))`.
    TakeSized {
        size: usize,
        deep: bool,
    },
    /// `reserve(None)`: a counted promise.
    Reserve,
    /// `take_reserved` of an outstanding reservation.
    TakeReserved {
        deep: bool,
    },
    /// `unreserve` of an outstanding reservation.
    Unreserve,
    /// `put` of a held stack.
    Put(Index),
    SetDefaultSize(usize),
    SetGuard(StackGuard),
    Trim,
    /// `decay` after advancing the fake clock by this many half intervals.
    Decay(u8),
    /// Takes this many default stacks and returns them all, as a burst of
    /// short greenlets does (enough to exceed the warm stacks, or a decay
    /// step's `BURST`).
    Burst(usize),
}

/// One step, weighted towards hand-outs and returns.
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<bool>().prop_map(|deep| Op::Take { deep }),
        2 => (prop::sample::select(ASKED_SIZES.to_vec()), any::<bool>())
            .prop_map(|(size, deep)| Op::TakeSized { size, deep }),
        3 => Just(Op::Reserve),
        2 => any::<bool>().prop_map(|deep| Op::TakeReserved { deep }),
        1 => Just(Op::Unreserve),
        6 => any::<Index>().prop_map(Op::Put),
        2 => prop::sample::select(DEFAULT_SIZES.to_vec()).prop_map(Op::SetDefaultSize),
        1 => prop_oneof![Just(StackGuard::Auto), Just(StackGuard::Mprotect)].prop_map(Op::SetGuard),
        1 => Just(Op::Trim),
        3 => (0u8..=3).prop_map(Op::Decay),
        1 => prop_oneof![3 => Just(70usize), 1 => Just(1100usize)].prop_map(Op::Burst),
    ]
}

/// A stack as the model knows it: where it lies and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    bottom: usize,
    top: usize,
    origin: Origin,
}

impl Slot {
    fn of(s: &GreenStack) -> Slot {
        Slot {
            bottom: s.bottom,
            top: s.top,
            origin: s.origin,
        }
    }
}

/// A stack the test holds, with the marks written into it at hand-out.
struct Held {
    stack: GreenStack,
    /// The word at `top - 8`.
    top_mark: u64,
    /// The byte at `bottom + page`, the lowest usable one.
    low_mark: u8,
}

/// Whether the page at `addr` is mapped: `mincore` answers `ENOMEM` for an
/// unmapped range instead of faulting, so an unmapped stack fails the case
/// (and is shrunk) instead of killing the test process.
fn mapped(addr: usize, page: usize) -> bool {
    let mut v = 0u8;
    // SAFETY: mincore reads no memory of the range, only whether its pages
    // are resident; it writes one byte (one page) into `v`.
    let r = unsafe { libc::mincore(addr as *mut libc::c_void, page, (&mut v as *mut u8).cast()) };
    r == 0
}

/// The pool under test, the stacks the test holds, and what the pool
/// should look like.
struct Model {
    pool: StackPool,
    page: usize,
    held: Vec<Held>,
    /// The pool's free list as predicted (bottom first, LIFO on top).
    free: Vec<Slot>,
    /// Outstanding reservations: promises on the top `reserved` of `free`.
    reserved: usize,
    next_id: u64,
    now: Instant,
}

impl Model {
    fn new() -> Model {
        let pool = StackPool::new();
        let page = pool.page();
        Model {
            pool,
            page,
            held: Vec::new(),
            free: Vec::new(),
            reserved: 0,
            next_id: 0,
            now: Instant::now(),
        }
    }

    fn unpromised(&self) -> usize {
        self.free.len() - self.reserved
    }

    /// Applies one step to the pool and the model, with the checks of the
    /// step itself (what was handed out, what the free list became).
    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Take { deep } if self.held.len() < MAX_HELD => {
                let s = self.take(None)?;
                self.hold(s, deep)?;
            }
            Op::TakeSized { size, deep } if self.held.len() < MAX_HELD => {
                let s = self.take(Some(size))?;
                self.hold(s, deep)?;
            }
            Op::Reserve if self.reserved < MAX_RESERVED => {
                let r = self.pool.reserve(None);
                let r = r.map_err(|e| TestCaseError::fail(format!("reserve(None): {e}")))?;
                prop_assert!(r.is_none(), "a default-size reservation is only counted");
                if self.free.len() == self.reserved {
                    // No stack to promise: the pool made one.
                    let made = self.pool.free.last().map(Slot::of);
                    let made = made.ok_or_else(|| TestCaseError::fail("no stack was made"))?;
                    prop_assert_eq!(made.top - made.bottom - self.page, self.pool.default_size());
                    self.free.push(made);
                }
                self.reserved += 1;
                self.reconcile(false)?;
            }
            Op::TakeReserved { deep } if self.reserved > 0 && self.held.len() < MAX_HELD => {
                self.reserved -= 1;
                let expected = self.free.pop();
                let s = self.pool.take_reserved();
                let s = s.map_err(|e| TestCaseError::fail(format!("take_reserved: {e}")))?;
                let s = self.ready(s)?;
                prop_assert_eq!(
                    Some(Slot::of(&s)),
                    expected,
                    "the most recently pooled stack"
                );
                prop_assert_eq!(s.usable(self.page), self.pool.default_size());
                self.hold(s, deep)?;
                self.reconcile(false)?;
            }
            Op::Unreserve if self.reserved > 0 => {
                self.pool.unreserve();
                self.reserved -= 1;
                self.reconcile(false)?;
            }
            Op::Put(i) if !self.held.is_empty() => {
                let h = self.held.swap_remove(i.index(self.held.len()));
                self.verify(&h)?;
                let may_release = self.put(h.stack);
                self.reconcile(may_release)?;
            }
            Op::SetDefaultSize(size) => {
                let changed = round_up(size, self.page) != self.pool.default_size();
                let r = self.pool.set_default_size(size);
                r.map_err(|e| TestCaseError::fail(format!("set_default_size({size}): {e}")))?;
                prop_assert_eq!(self.pool.default_size(), round_up(size, self.page));
                if changed {
                    // The old free stacks are dropped; the promised ones are
                    // made anew, of the new size.
                    self.free = self.pool.free.iter().map(Slot::of).collect();
                    prop_assert_eq!(self.free.len(), self.reserved, "only the promised stacks");
                    for s in &self.free {
                        prop_assert_eq!(s.top - s.bottom - self.page, self.pool.default_size());
                    }
                    self.check_no_idle_region()?;
                }
            }
            Op::SetGuard(g) => {
                let changed = g != self.pool.guard();
                self.pool.set_guard(g);
                if changed {
                    let unpromised = self.unpromised();
                    self.free.drain(..unpromised);
                }
                self.reconcile(changed)?;
            }
            Op::Trim => {
                self.pool.trim();
                self.reconcile(true)?;
                self.check_no_idle_region()?;
            }
            Op::Decay(halves) => {
                self.now += DECAY_INTERVAL / 2 * u32::from(halves);
                let burst_over = self.pool.decay(self.now);
                self.reconcile(burst_over)?;
                if burst_over {
                    self.check_no_idle_region()?;
                }
            }
            Op::Burst(n) => {
                let mut got = Vec::with_capacity(n);
                for _ in 0..n {
                    let s = self.take(None)?;
                    prop_assert!(mapped(s.top - self.page, self.page));
                    // SAFETY: the top word of a stack just handed out to
                    // this test, mapped (checked) and writable.
                    unsafe { ptr::write_volatile((s.top - 8) as *mut u64, 1) };
                    got.push(s);
                }
                for s in got {
                    let may_release = self.put(s);
                    prop_assert!(!may_release, "a default-size stack is pooled");
                }
                self.reconcile(false)?;
            }
            // The step does not apply in this state (nothing held, no
            // reservation, or the caps reached).
            _ => {}
        }
        Ok(())
    }

    /// `take_now(size)` and `ready_to_run`: checks that the stack has the
    /// size asked for and is the one the model expects (the top of the
    /// free list, or a new one).
    fn take(&mut self, size: Option<usize>) -> Result<GreenStack, TestCaseError> {
        let default = self.pool.default_size();
        let want = size.map_or(default, |s| round_up(s, self.page));
        let expected = if want == default && self.free.len() > self.reserved {
            self.free.pop()
        } else {
            None // made anew
        };
        let s = self.pool.take_now(size);
        let s = s.map_err(|e| TestCaseError::fail(format!("take_now({size:?}): {e}")))?;
        let s = self.ready(s)?;
        prop_assert_eq!(s.usable(self.page), want, "the usable size asked for");
        match expected {
            Some(slot) => prop_assert_eq!(Slot::of(&s), slot, "the most recently pooled stack"),
            None if want != default => prop_assert_eq!(s.origin, Origin::Own),
            None => {}
        }
        self.reconcile(false)?;
        Ok(s)
    }

    /// `ready_to_run`, as the hub does before a stack's first run.
    fn ready(&mut self, s: GreenStack) -> Result<GreenStack, TestCaseError> {
        let s = self.pool.ready_to_run(s);
        let s = s.map_err(|e| TestCaseError::fail(format!("ready_to_run: {e}")))?;
        prop_assert!(s.guarded, "a stack ready to run has its guard page");
        Ok(s)
    }

    /// Keeps a stack handed out, marking its top word and lowest usable
    /// byte.
    fn hold(&mut self, stack: GreenStack, deep: bool) -> Result<(), TestCaseError> {
        let page = self.page;
        prop_assert!(mapped(stack.top - page, page) && mapped(stack.bottom + page, page));
        self.next_id += 1;
        let h = Held {
            top_mark: MARK | self.next_id,
            low_mark: (self.next_id % 255) as u8 + 1,
            stack,
        };
        // SAFETY: both lie in the usable part of a stack just handed out to
        // this test (above its guard page, below its top), mapped (checked
        // above) and writable; the probe word too, as every stack here has
        // more than `DEEP_WATERMARK` usable bytes.
        unsafe {
            ptr::write_volatile((h.stack.top - 8) as *mut u64, h.top_mark);
            ptr::write_volatile((h.stack.bottom + page) as *mut u8, h.low_mark);
            if deep {
                ptr::write_volatile((h.stack.top - DEEP_WATERMARK - 8) as *mut u64, 1);
            }
        }
        self.held.push(h);
        Ok(())
    }

    /// Returns a stack to the pool; true if it was abandoned (of a size no
    /// longer the default), which may release regions.
    fn put(&mut self, stack: GreenStack) -> bool {
        let slot = Slot::of(&stack);
        let default_size = stack.usable(self.page) == self.pool.default_size();
        let over_cap = slot.origin == Origin::Own && self.unpromised() >= OWN_POOL_CAP;
        self.pool.put(stack);
        if default_size && !over_cap {
            self.free.push(slot);
        }
        !default_size
    }

    /// Compares the pool's free list with the prediction. Where the step
    /// may release idle regions, the pool may have forgotten some unpromised
    /// slab stacks, whose region must then be gone.
    fn reconcile(&mut self, may_release: bool) -> Result<(), TestCaseError> {
        let actual: Vec<Slot> = self.pool.free.iter().map(Slot::of).collect();
        if !may_release {
            prop_assert_eq!(&actual, &self.free, "the free list");
            return Ok(());
        }
        let unpromised = self.unpromised();
        let mut rest = actual.iter().peekable();
        for (i, s) in self.free.iter().enumerate() {
            if rest.peek() == Some(&s) {
                rest.next();
                continue;
            }
            prop_assert!(
                s.origin == Origin::Slab && i < unpromised,
                "only unpromised slab stacks may be forgotten: {:?} at {} of {:?}",
                s,
                i,
                self.free
            );
            let gone = !self
                .pool
                .regions
                .iter()
                .any(|r| r.addr <= s.bottom && s.bottom < r.addr + r.len);
            prop_assert!(gone, "a forgotten stack's region is unmapped: {:?}", s);
        }
        prop_assert!(
            rest.next().is_none(),
            "unknown free stacks: {:?} vs {:?}",
            actual,
            self.free
        );
        self.free = actual;
        Ok(())
    }

    /// The checks after every step.
    fn check(&self) -> Result<(), TestCaseError> {
        let pool = &self.pool;
        prop_assert_eq!(pool.live(), self.held.len() + self.reserved, "live()");
        prop_assert_eq!(pool.reserved, self.reserved);
        prop_assert!(
            self.free.len() >= self.reserved,
            "promised stacks are pooled"
        );
        prop_assert_eq!(pool.len(), self.unpromised(), "len()");
        prop_assert_eq!(pool.free.len(), self.free.len());

        // No two stacks, held or pooled, overlap.
        let mut all: Vec<(Slot, &str)> = self
            .held
            .iter()
            .map(|h| (Slot::of(&h.stack), "held"))
            .collect();
        let unpromised = self.unpromised();
        all.extend(
            self.free
                .iter()
                .enumerate()
                .map(|(i, s)| (*s, if i < unpromised { "free" } else { "promised" })),
        );
        all.sort_by_key(|(s, _)| s.bottom);
        for w in all.windows(2) {
            prop_assert!(w[0].0.top <= w[1].0.bottom, "overlapping stacks: {:?}", w);
        }

        // Regions: disjoint, each slab stack in a slot of one, each own
        // stack in none; each region's carved slots are abandoned, held or
        // pooled, and at least one is held or pooled.
        let mut regions: Vec<_> = pool
            .regions
            .iter()
            .map(|r| (r.addr, r.len, r.carved, r.abandoned))
            .collect();
        regions.sort_unstable();
        for w in regions.windows(2) {
            prop_assert!(w[0].0 + w[0].1 <= w[1].0, "overlapping regions");
        }
        let mut in_use = vec![0usize; regions.len()];
        let mut slot_len = vec![0usize; regions.len()];
        for (s, what) in &all {
            let k = regions.partition_point(|r| r.0 <= s.bottom);
            let inside = k > 0 && s.bottom < regions[k - 1].0 + regions[k - 1].1;
            if s.origin == Origin::Own {
                let ends_in = regions.partition_point(|r| r.0 < s.top);
                prop_assert!(
                    !inside && ends_in == k,
                    "an own {what} stack in a region: {:?}",
                    s
                );
                continue;
            }
            prop_assert!(inside, "a {what} slab stack outside every region: {:?}", s);
            let (addr, len, ..) = regions[k - 1];
            let slot = s.top - s.bottom;
            prop_assert!(
                s.top <= addr + len && (s.bottom - addr) % slot == 0,
                "not a slot: {:?}",
                s
            );
            prop_assert!(
                slot_len[k - 1] == 0 || slot_len[k - 1] == slot,
                "slots of two sizes"
            );
            prop_assert_eq!(len % slot, 0);
            slot_len[k - 1] = slot;
            in_use[k - 1] += 1;
        }
        for (r, n) in regions.iter().zip(&in_use) {
            let (addr, _, carved, abandoned) = *r;
            prop_assert_eq!(
                carved,
                abandoned + n,
                "region {:#x}: carved = abandoned + held + pooled",
                addr
            );
            prop_assert!(
                *n > 0,
                "region {:#x}: all {} slots abandoned, still mapped",
                addr,
                carved
            );
        }

        for h in &self.held {
            self.verify(h)?;
        }
        Ok(())
    }

    /// A held stack is still mapped, its marks are intact, and its top word
    /// and lowest usable byte take a write.
    fn verify(&self, h: &Held) -> Result<(), TestCaseError> {
        let page = self.page;
        let (top, low) = (h.stack.top - 8, h.stack.bottom + page);
        prop_assert!(
            mapped(h.stack.top - page, page) && mapped(low, page),
            "held stack {:#x}..{:#x} is no longer mapped",
            h.stack.bottom,
            h.stack.top
        );
        // SAFETY: both lie in the usable part of a stack this test holds,
        // mapped (checked above) and writable; the pool does not touch the
        // stacks it handed out.
        let marks = unsafe {
            (
                ptr::read_volatile(top as *const u64),
                ptr::read_volatile(low as *const u8),
            )
        };
        prop_assert_eq!(
            marks,
            (h.top_mark, h.low_mark),
            "the marks written at hand-out"
        );
        // SAFETY: as above.
        let again = unsafe {
            ptr::write_volatile(top as *mut u64, !h.top_mark);
            ptr::write_volatile(low as *mut u8, !h.low_mark);
            let again = (
                ptr::read_volatile(top as *const u64),
                ptr::read_volatile(low as *const u8),
            );
            ptr::write_volatile(top as *mut u64, h.top_mark);
            ptr::write_volatile(low as *mut u8, h.low_mark);
            again
        };
        prop_assert_eq!(again, (!h.top_mark, !h.low_mark), "written and read back");
        Ok(())
    }

    /// After a step that releases idle regions: every region left has a
    /// stack held or promised (the pool's own test for "idle").
    fn check_no_idle_region(&self) -> Result<(), TestCaseError> {
        let promised = &self.free[self.unpromised()..];
        let held = self.held.iter().map(|h| Slot::of(&h.stack));
        let busy: Vec<Slot> = held.chain(promised.iter().copied()).collect();
        for r in &self.pool.regions {
            let used = busy
                .iter()
                .any(|s| r.addr <= s.bottom && s.bottom < r.addr + r.len);
            prop_assert!(
                used,
                "region {:#x} is idle ({} carved, {} abandoned) and still mapped",
                r.addr,
                r.carved,
                r.abandoned
            );
        }
        Ok(())
    }

    /// Returns every stack, cancels every reservation and trims: nothing
    /// is live, and no region is left.
    fn finish(mut self) -> Result<(), TestCaseError> {
        while let Some(h) = self.held.pop() {
            self.verify(&h)?;
            let may_release = self.put(h.stack);
            self.reconcile(may_release)?;
        }
        while self.reserved > 0 {
            self.pool.unreserve();
            self.reserved -= 1;
        }
        self.pool.trim();
        self.reconcile(true)?;
        self.check()?;
        prop_assert_eq!(self.pool.live(), 0);
        prop_assert_eq!(self.pool.len(), self.free.len());
        prop_assert!(
            self.pool.regions.is_empty(),
            "no stack in use: every region unmapped"
        );
        Ok(())
    }
}

/// Runs `ops` against a fresh pool, checking after every step.
fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let mut m = Model::new();
    m.check()?;
    for op in ops {
        m.apply(op)?;
        m.check()?;
    }
    m.finish()
}

proptest! {
    #![proptest_config(crate::testing::model_config(64))]

    /// Random sequences of up to 60 pool operations: after each, every held
    /// stack is mapped and writable at its top and lowest usable byte with
    /// its marks intact, no two stacks overlap, `live()` and `len()` agree
    /// with the model, the free list is the predicted one (LIFO hand-outs),
    /// regions account for their slots, and stacks have the size asked
    /// for; at the end, with everything returned and trimmed, nothing is
    /// live and no region is left.
    #[test]
    fn the_pool_agrees_with_its_model(ops in prop::collection::vec(op(), 1..=60)) {
        run(&ops)?;
    }
}

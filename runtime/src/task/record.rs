//! The greenlet record: one heap allocation holding a greenlet's untyped
//! [`Core`] followed by its typed body (a [`Closure`] until the first run,
//! then the result; [`MainBody`] for the main greenlet, which has none).
//! References to it are [`Rec`]s: thin-cost reference-counted pointers
//! whose count lives in the core, so that reaching the core, cloning and
//! dropping are each a plain field access. They sit on every switch path
//! (the ready queue, wakers, the running greenlet), where an
//! `Rc<dyn ..>` would pay for its dynamic layout (the core's offset
//! depends on the body's alignment) each time.

use std::alloc::Layout;
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe, Location};
use std::ptr::NonNull;

use corosensei::{Coroutine, Yielder};

use super::core::{Co, Core, Outcome, State};
use super::GreenletExit;
use crate::stack::Stack;

/// A greenlet record: the untyped [`Core`] followed by the typed body
/// (closure, then result). `repr(C)` puts the core at offset 0 whatever the
/// body, which is what lets a [`Rec`] reach it without looking at the body's
/// layout.
#[repr(C)]
pub(crate) struct Record<V: ?Sized> {
    pub(crate) core: Core,
    pub(crate) body: V,
}

/// The typed part of a record, seen from the hub.
///
/// What the body holds (its closure, its result, or neither) is kept in
/// the core ([`Core::body_holds`]), not in the body, so that a closure and
/// its result can share one slot without a tag of their own.
pub(crate) trait Body {
    /// Builds the coroutine that runs the closure, on `stack`, for the
    /// greenlet's first run, in `slot` (empty). Gives the stack back if the
    /// closure is gone (discarded, or the main greenlet, which has none).
    fn launch(&self, core: *const Core, stack: Stack, slot: &mut Option<Co>) -> Result<(), Stack>;
    /// Drops the closure of a greenlet that will never run.
    fn discard(&self, core: &Core);
    /// Drops what the body still holds, as `core` says; the record is
    /// being freed.
    ///
    /// # Safety
    /// `core` heads this body's record, and nothing uses the body after.
    unsafe fn release(&self, core: &Core);
}

/// A record's vtable, made by hand: one static per body type, one word in
/// the core ([`Core::ops`]). A `dyn Body` fat pointer would do for the
/// calls into the body, but freeing through it reads the layout from the
/// vtable and computes the size class at run time; `free` here knows both
/// at compile time.
pub(crate) struct BodyOps {
    launch: unsafe fn(*const Core, Stack, &mut Option<Co>) -> Result<(), Stack>,
    discard: unsafe fn(*const Core),
    free: unsafe fn(*mut Core),
}

impl BodyOps {
    /// The operations of records whose body is a `V`.
    pub(super) fn of<V: Body + 'static>() -> &'static BodyOps {
        &OpsOf::<V>::OPS
    }
}

struct OpsOf<V>(PhantomData<V>);

impl<V: Body + 'static> OpsOf<V> {
    const OPS: BodyOps = BodyOps {
        launch: launch_body::<V>,
        discard: discard_body::<V>,
        free: free_record::<V>,
    };
}

/// # Safety
/// `core` heads a live `Record<V>`.
unsafe fn launch_body<V: Body>(
    core: *const Core,
    stack: Stack,
    slot: &mut Option<Co>,
) -> Result<(), Stack> {
    // SAFETY: the caller's contract; the core is the record's first field.
    unsafe { &(*core.cast::<Record<V>>()).body }.launch(core, stack, slot)
}

/// # Safety
/// As [`launch_body`].
unsafe fn discard_body<V: Body>(core: *const Core) {
    // SAFETY: the caller's contract; the core is the record's first field.
    let record = unsafe { &*core.cast::<Record<V>>() };
    record.body.discard(&record.core);
}

/// Drops and frees the `Record<V>` that `core` heads.
///
/// # Safety
/// No reference to the record is left; it was allocated by
/// `super::alloc::alloc` with `Record<V>`'s layout in [`Rec::new_typed`].
unsafe fn free_record<V: Body>(core: *mut Core) {
    /// Gives the memory back also if a drop in the record panics (as a
    /// `Box` would).
    struct Dealloc<V>(*mut u8, PhantomData<V>);
    impl<V> Drop for Dealloc<V> {
        fn drop(&mut self) {
            // SAFETY: allocated with this layout (see `free_record`).
            unsafe { super::alloc::dealloc(self.0, Layout::new::<Record<V>>()) };
        }
    }
    /// Drops the record (its core: name, `Extra`, an unused stack) also if
    /// `release` panics in the closure's or the result's `Drop`.
    struct DropRecord<V>(*mut Record<V>);
    impl<V> Drop for DropRecord<V> {
        fn drop(&mut self) {
            // SAFETY: see `free_record`: dropped once, here.
            unsafe { std::ptr::drop_in_place(self.0) };
        }
    }
    // Dropped in reverse order: the record, then its memory.
    let _dealloc = Dealloc::<V>(core.cast(), PhantomData);
    let record = DropRecord(core.cast::<Record<V>>());
    // SAFETY: the caller's contract: written as a `Record<V>` by
    // `new_typed`, released once, here, and dropped once by `record`. The
    // body's own drop glue drops nothing (its fields are `ManuallyDrop`):
    // `release` does.
    unsafe { (*record.0).body.release(&(*record.0).core) };
}

/// The closure of a spawned greenlet until its first run, then nothing
/// while it runs, then its result until taken: one slot for the closure
/// and the result, which are never alive together, and what it holds
/// kept in the core ([`Core::body_holds`]). Two `Option`s would take a tag
/// and a slot each: for a closure of one word returning one word, 32
/// bytes instead of 8, and a fourth cache line for the record.
pub(crate) struct Closure<F, T> {
    slot: UnsafeCell<Slot<F, T>>,
}

/// `Closure`'s slot. `repr(C)`: both fields at offset 0, so a pointer to
/// the slot is one to the result.
#[repr(C)]
union Slot<F, T> {
    f: ManuallyDrop<F>,
    value: ManuallyDrop<T>,
}

impl<F, T> Closure<F, T> {
    /// Takes the closure out if the slot holds it (`core` says), once.
    fn take_f(&self, core: &Core) -> Option<F> {
        if !core.take_closure() {
            return None;
        }
        // SAFETY: the core said the slot held the closure, and now says it
        // holds nothing: it is moved out once.
        Some(unsafe { ManuallyDrop::take(&mut (*self.slot.get()).f) })
    }
}

impl<F: FnOnce() -> T + 'static, T: 'static> Body for Closure<F, T> {
    fn launch(&self, core: *const Core, stack: Stack, slot: &mut Option<Co>) -> Result<(), Stack> {
        // SAFETY: the record this body is in is alive (the caller's).
        let Some(f) = self.take_f(unsafe { &*core }) else {
            return Err(stack);
        };
        let value = self.slot.get().cast::<T>();
        let co = Coroutine::with_stack(stack, run_closure(core, value, f));
        // SAFETY: `slot` is a valid place; written without dropping what
        // it held, which is nothing (the slot is empty before a first
        // run). So the coroutine is built in place, not built aside, moved
        // and the old value tested.
        unsafe { std::ptr::write(slot, Some(co)) };
        Ok(())
    }

    fn discard(&self, core: &Core) {
        drop(self.take_f(core));
    }

    unsafe fn release(&self, core: &Core) {
        drop(self.take_f(core));
        if core.take_value() {
            // SAFETY: the core said the slot held the result (written by
            // `run_closure`), and now says it holds nothing.
            unsafe { ManuallyDrop::drop(&mut (*self.slot.get()).value) };
        }
    }
}

/// The main greenlet's body: it runs on the thread's own stack.
pub(crate) struct MainBody;

impl Body for MainBody {
    fn launch(&self, _: *const Core, stack: Stack, _: &mut Option<Co>) -> Result<(), Stack> {
        Err(stack)
    }

    fn discard(&self, _: &Core) {}

    unsafe fn release(&self, _: &Core) {}
}

/// An owning, reference-counted pointer to a record (what `Rc<AnyRecord>`
/// would be, with the count in [`Core::refs`], the core at a fixed offset
/// and one word wide). `!Send`: records never leave their hub's thread.
pub(crate) struct Rec {
    /// The record's core (its first field); valid while `core().refs > 0`,
    /// and this `Rec` is one of those references.
    ptr: NonNull<Core>,
}

impl Rec {
    /// The record of a thread's main greenlet (id 0, no closure).
    #[track_caller]
    pub(crate) fn main() -> Rec {
        Rec::new(Record {
            core: Core::new(0, None, Location::caller(), true),
            body: MainBody,
        })
    }

    /// The record of a greenlet that will run `f`, and where its result
    /// will be (valid as long as the record is, and holding a `T` only
    /// while the core says so: see [`Core::take_value`]).
    ///
    /// `core` builds the core once the memory is there, so that it can be
    /// written in place rather than built aside and copied (a record is
    /// some 300 bytes).
    #[inline]
    pub(crate) fn spawned<F, T>(core: impl FnOnce() -> Core, f: F) -> (Rec, *mut T)
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let (rec, body) = Rec::new_typed(core, || Closure {
            slot: UnsafeCell::new(Slot {
                f: ManuallyDrop::new(f),
            }),
        });
        rec.core().hold_closure();
        // SAFETY: `body` points into the record `rec` keeps alive.
        (rec, unsafe { (*body).slot.get().cast::<T>() })
    }

    /// A record of greenlet `id` with nothing to run, for tests of what
    /// holds records.
    #[cfg(test)]
    #[track_caller]
    pub(crate) fn idle(id: u64) -> Rec {
        Rec::new(Record {
            core: Core::new(id, None, Location::caller(), false),
            body: MainBody,
        })
    }

    /// Moves a new record to the heap; this is its first reference.
    fn new<V: Body + 'static>(record: Record<V>) -> Rec {
        let Record { core, body } = record;
        Rec::new_typed(|| core, || body).0
    }

    /// [`Rec::new`], also returning where the typed body lives (valid as
    /// long as the record is).
    #[inline]
    fn new_typed<V: Body + 'static>(
        core: impl FnOnce() -> Core,
        body: impl FnOnce() -> V,
    ) -> (Rec, *const V) {
        let typed = super::alloc::alloc(Layout::new::<Record<V>>()).cast::<Record<V>>();
        // SAFETY: `typed` is a fresh allocation of the record's layout;
        // every pointer kept is derived from the same raw pointer.
        unsafe {
            // Field by field, each built straight into its place: a whole
            // `Record` would be built on the stack and copied.
            std::ptr::addr_of_mut!((*typed).core).write(core());
            std::ptr::addr_of_mut!((*typed).body).write(body());
            (*typed).core.refs.set(1);
            (*typed).core.ops = BodyOps::of::<V>();
            let core = NonNull::new_unchecked(std::ptr::addr_of_mut!((*typed).core));
            (Rec { ptr: core }, std::ptr::addr_of!((*typed).body))
        }
    }

    /// A new reference to the record whose core `p` points at.
    ///
    /// # Safety
    /// `p` must come from [`Rec::as_ptr`] of a record that is still alive.
    #[inline]
    pub(crate) unsafe fn clone_from_ptr(p: *const Core) -> Rec {
        // SAFETY: alive by the caller's contract, so its count is > 0 and
        // one more reference may be made.
        unsafe { &*p }.add_ref();
        Rec {
            // SAFETY: a live record's address is not null.
            ptr: unsafe { NonNull::new_unchecked(p as *mut Core) },
        }
    }

    #[inline(always)]
    pub(crate) fn core(&self) -> &Core {
        // SAFETY: alive while `self` exists (see `ptr`).
        unsafe { self.ptr.as_ref() }
    }

    /// Builds the coroutine that runs the closure, on `stack`, for the
    /// greenlet's first run, in `slot` (see [`Body::launch`]).
    pub(crate) fn launch(&self, stack: Stack, slot: &mut Option<Co>) -> Result<(), Stack> {
        // SAFETY: `ops` was set by `new_typed` for the record's body type,
        // and the record is alive while `self` exists.
        unsafe { (self.core().ops.launch)(self.as_ptr(), stack, slot) }
    }

    /// Drops the closure of a greenlet that will never run.
    pub(crate) fn discard(&self) {
        // SAFETY: as in `launch`.
        unsafe { (self.core().ops.discard)(self.as_ptr()) }
    }

    /// The record's core address, for identity checks and `Hub::current`.
    #[inline(always)]
    pub(crate) fn as_ptr(&self) -> *const Core {
        self.ptr.as_ptr()
    }

    /// Whether both point at the same record.
    #[inline]
    pub(crate) fn ptr_eq(&self, other: &Rec) -> bool {
        std::ptr::addr_eq(self.as_ptr(), other.as_ptr())
    }
}

impl Clone for Rec {
    #[inline]
    fn clone(&self) -> Rec {
        self.core().add_ref();
        Rec { ptr: self.ptr }
    }
}

impl Drop for Rec {
    #[inline]
    fn drop(&mut self) {
        let core = self.core();
        let n = core.refs.get() - 1;
        core.refs.set(n);
        if n == 0 {
            free(self.ptr);
        }
    }
}

/// Frees a record whose last reference is gone. (A raw pointer, not a
/// reference to the core: the memory goes away during the call.)
#[cold]
#[inline(never)]
fn free(core: NonNull<Core>) {
    let core = core.as_ptr();
    // SAFETY: no reference is left; `ops` was set by `new_typed` for the
    // record's body type, so `free` drops and frees it as allocated.
    unsafe { ((*core).ops.free)(core) }
}

/// The coroutine body of a greenlet running `f`: runs it and returns how
/// it ended (the loop that resumed it records the death).
fn run_closure<T: 'static, F: FnOnce() -> T + 'static>(
    core: *const Core,
    value: *mut T,
    f: F,
) -> impl FnOnce(&Yielder<(), ()>, ()) -> Outcome + 'static {
    move |yielder, ()| {
        // SAFETY: `core` points into the record, which owns the coroutine
        // (`Core::co`); the hub keeps the record alive (live table,
        // `current`) for as long as the coroutine can run.
        let core = unsafe { &*core };
        core.set_yielder(yielder);
        match panic::catch_unwind(AssertUnwindSafe(f)) {
            // Killed inside `defer_kill` and returned before any later
            // blocking call could unwind it: it still ends killed.
            Ok(v) if core.kill_requested() => {
                drop(v);
                Outcome::Killed
            }
            Ok(v) => {
                // SAFETY: `value` is the body's slot, in the same record;
                // it holds nothing (the closure was taken at launch), so
                // it is written without dropping anything.
                unsafe { value.write(v) };
                core.hold_value();
                Outcome::Value
            }
            Err(p) if p.is::<GreenletExit>() => Outcome::Killed,
            Err(p) => {
                if core.state() == State::Dead {
                    // Torn down with its hub (marked dead first): this is
                    // corosensei's forced unwind (or a panic raised by it);
                    // let it reach the root.
                    panic::resume_unwind(p);
                }
                core.extra().panic = Some(p);
                Outcome::Panicked
            }
        }
    }
}

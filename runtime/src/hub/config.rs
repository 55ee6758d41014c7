//! The settings of this thread's hub: its stacks and its blocking monitor.

use std::io;
use std::time::Duration;

use super::Hub;
use crate::monitor::Watched;
use crate::stack::StackGuard;

/// Turns the blocking monitor on for this thread's hub with the limit
/// `max_blocking`, or off with `None`. A greenlet that keeps the loop from
/// turning for longer is logged as a warning through the `log` facade
/// (target `greenlet_runtime::monitor`), with its name and spawn location.
///
/// ```
/// use greenlet_runtime::hub::monitor;
/// use std::time::Duration;
///
/// monitor(Some(Duration::from_millis(100)));
/// // ... a greenlet hogging the thread for longer is logged as a warning.
/// monitor(None);
/// ```
pub fn monitor(max_blocking: Option<Duration>) {
    Hub::with(|hub| match max_blocking {
        None => {
            hub.monitor.replace(None);
            hub.monitoring.set(false);
        }
        Some(limit) => {
            if let Some(w) = &*hub.monitor.borrow() {
                w.set_limit(limit);
                return;
            }
            *hub.monitor.borrow_mut() = Some(Watched::start(limit));
            hub.monitoring.set(true);
        }
    })
}

/// Sets this thread's default greenlet stack size (rounded up to pages).
/// Greenlets spawned with the default size that have not run yet get the
/// new size too (a stack is chosen at a greenlet's first run).
///
/// # Errors
/// `InvalidInput` below [`MIN_STACK_SIZE`](crate::MIN_STACK_SIZE);
/// `OutOfMemory` if the stacks of the greenlets that have not run yet
/// cannot be mapped at the new size (the size is changed all the same;
/// those greenlets end panicked with the error at their first run unless
/// stacks are freed before).
pub fn set_default_stack_size(bytes: usize) -> io::Result<()> {
    Hub::with(|hub| hub.stacks.borrow_mut().set_default_size(bytes))
}

/// This thread's default greenlet stack size in bytes.
pub fn default_stack_size() -> usize {
    Hub::with(|hub| hub.stacks.borrow().default_size())
}

/// Caps the number of live greenlet stacks on this thread (`None`: no cap
/// beyond the machine's). Spawning past the cap fails with `OutOfMemory`.
pub fn set_max_stacks(limit: Option<usize>) {
    Hub::with(|hub| hub.stacks.borrow_mut().set_max(limit))
}

/// Chooses how this thread's new stacks get their guard pages. The
/// environment variable `GREENLET_STACK_GUARD=mprotect` sets `Mprotect` for
/// every hub.
pub fn set_stack_guard(mode: StackGuard) {
    Hub::with(|hub| hub.stacks.borrow_mut().set_guard(mode))
}

/// How this thread's stacks get their guard pages now (`Auto` switches to
/// `Mprotect` by itself on kernels without `MADV_GUARD_INSTALL`).
pub fn stack_guard() -> StackGuard {
    Hub::with(|hub| hub.stacks.borrow().guard())
}

/// Gives memory back now, without waiting for the stack pool's decay:
/// the pages of pooled stacks beyond the warm ones, the slab regions
/// none of whose stacks is in use, the room a burst left in the hub's
/// tables, and the heap memory the allocator keeps free (`malloc_trim` on
/// glibc).
///
/// ```
/// use greenlet_runtime::{hub, spawn};
///
/// let gs: Vec<_> = (0..10_000).map(|i| spawn(move || i)).collect();
/// for g in gs {
///     g.get().unwrap();
/// }
/// hub::trim_stacks();
/// assert_eq!(hub::stats().live_stacks, 0);
/// ```
pub fn trim_stacks() {
    Hub::with(|hub| {
        hub.stacks.borrow_mut().trim();
        hub.give_back_memory();
    })
}

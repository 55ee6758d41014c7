//! Signal handlers that run as greenlets (gevent's `signal_handler`).
//!
//! [`signal`] registers a handler for a signal number on the current hub.
//! Each time the signal arrives, the hub runs the handler in a new greenlet
//! (so it may block, take locks, write to sockets). [`SignalHandler::cancel`]
//! (or dropping the handle) removes it, and when the last handler of a
//! signal is removed the disposition that was in place before the first
//! one (usually the default: terminate) is restored.
//!
//! ```no_run
//! use greenlet_runtime::{signal, sync::Event};
//!
//! let stop = Event::new();
//! let s = stop.clone();
//! let _h = signal::signal(libc::SIGTERM, move || s.set()).unwrap();
//! stop.wait().unwrap(); // until SIGTERM
//! ```
//!
//! While a handler is registered the hub is never declared deadlocked
//! (`LoopExit`): a signal may still arrive and wake something.
//!
//! How it works: the process-wide `sigaction` handler only does
//! async-signal-safe things — it bumps a counter of every registration for
//! that signal and writes to its hub's eventfd. The hub sees the counters at
//! its next loop turn and spawns the handlers.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::epoll::Notifier;
use crate::hub::Hub;

/// One registration, as the signal handler sees it. Owned by its hub's
/// `Registered` entry; freed (with its reference to the hub's notifier)
/// when the registration is released, once no handler can be reading it.
struct Target {
    signum: libc::c_int,
    /// Arrivals not yet seen by the hub.
    count: AtomicUsize,
    /// The hub's "some signal arrived" flag.
    hub_flag: Arc<AtomicBool>,
    notifier: Arc<Notifier>,
}

/// The published registrations: a slot per registration, grown by
/// doubling. Replaced (never resized in place) so the handler can walk it
/// without a lock.
struct Table {
    slots: Box<[AtomicPtr<Target>]>,
}

static TABLE: AtomicPtr<Table> = AtomicPtr::new(ptr::null_mut());

/// Signal handlers currently walking `TABLE`. Whoever unpublishes a table
/// or a target frees it only once this was zero after the unpublish
/// (`wait_for_readers`): a handler that entered later cannot see it.
static READERS: AtomicUsize = AtomicUsize::new(0);

/// Dispositions saved when we took a signal over; restored by the last
/// release. Also serialises every change to `TABLE`.
static SAVED: Mutex<Option<HashMap<libc::c_int, (libc::sigaction, usize)>>> = Mutex::new(None);

extern "C" fn on_signal(sig: libc::c_int) {
    // SAFETY: `__errno_location` is this thread's errno; the handler must
    // leave it as it found it (the `write` below may change it).
    let errno = unsafe { *libc::__errno_location() };
    READERS.fetch_add(1, SeqCst);
    let table = TABLE.load(SeqCst);
    if !table.is_null() {
        // SAFETY: a table (and every target in it) stays allocated while
        // `READERS` counts us: see `wait_for_readers`.
        for slot in unsafe { &*(*table).slots } {
            let p = slot.load(SeqCst);
            if p.is_null() {
                continue;
            }
            // SAFETY: as above.
            let t = unsafe { &*p };
            if t.signum == sig {
                t.count.fetch_add(1, SeqCst);
                t.hub_flag.store(true, SeqCst); // see `Notifier::clear`
                let _ = t.notifier.notify();
            }
        }
    }
    READERS.fetch_sub(1, SeqCst);
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Returns once every signal handler that may have read a pointer
/// unpublished before this call has finished. Handlers run for a few
/// atomic operations and one `write`; one interrupting this thread ends
/// before it resumes.
fn wait_for_readers() {
    while READERS.load(SeqCst) != 0 {
        std::thread::yield_now();
    }
}

/// Publishes `target` in a free slot, growing the table if it is full;
/// returns the slot. Call with `SAVED` held.
fn publish(target: *mut Target) -> usize {
    let old = TABLE.load(SeqCst);
    let old_slots: &[AtomicPtr<Target>] = if old.is_null() {
        &[]
    } else {
        // SAFETY: tables are replaced and freed only under `SAVED`, which
        // the caller holds.
        unsafe { &(*old).slots }
    };
    if let Some(i) = old_slots.iter().position(|s| s.load(SeqCst).is_null()) {
        old_slots[i].store(target, SeqCst);
        return i;
    }
    let len = old_slots.len();
    let slots: Box<[AtomicPtr<Target>]> = (0..(len * 2).max(64))
        .map(|i| match old_slots.get(i) {
            Some(s) => AtomicPtr::new(s.load(SeqCst)),
            None if i == len => AtomicPtr::new(target),
            None => AtomicPtr::new(ptr::null_mut()),
        })
        .collect();
    TABLE.store(Box::into_raw(Box::new(Table { slots })), SeqCst);
    if !old.is_null() {
        wait_for_readers();
        // SAFETY: unpublished above and no handler reads it any more; its
        // targets live on in the new table.
        drop(unsafe { Box::from_raw(old) });
    }
    len
}

/// Unpublishes and frees the target in `slot`, and restores the signal's
/// previous disposition if it was its last registration. Call with
/// `SAVED` held.
fn unpublish(
    saved: &mut HashMap<libc::c_int, (libc::sigaction, usize)>,
    slot: usize,
    target: *mut Target,
) {
    let table = TABLE.load(SeqCst);
    // SAFETY: a published target's table exists; `SAVED` is held.
    unsafe { (*table).slots[slot].store(ptr::null_mut(), SeqCst) };
    wait_for_readers();
    // SAFETY: unpublished, no handler reads it, and its hub entry (the
    // only other pointer) is gone.
    let signum = unsafe { Box::from_raw(target) }.signum;
    if let Some((prev, n)) = saved.get_mut(&signum) {
        *n -= 1;
        if *n == 0 {
            // SAFETY: restoring the action saved when we installed ours.
            unsafe { libc::sigaction(signum, &*prev, ptr::null_mut()) };
            saved.remove(&signum);
        }
    }
}

/// Why [`signal`] failed.
fn invalid(signum: libc::c_int, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("cannot handle signal {signum}: {why}"),
    )
}

/// Runs `handler` in a new greenlet on this hub each time signal `signum`
/// arrives, until the returned handle is cancelled or dropped.
///
/// # Errors
/// `InvalidInput` for signals that cannot or must not be caught (`SIGKILL`,
/// `SIGSTOP`, and the fault signals `SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`)
/// or numbers out of range; the `sigaction` error otherwise. There is no
/// limit on the number of registrations.
pub fn signal(signum: libc::c_int, handler: impl Fn() + 'static) -> io::Result<SignalHandler> {
    if !(1..libc::SIGRTMAX()).contains(&signum) {
        return Err(invalid(signum, "not a signal number"));
    }
    if [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
    ]
    .contains(&signum)
    {
        return Err(invalid(
            signum,
            "it cannot be caught, or is a fault that must not be deferred",
        ));
    }
    let hub = Hub::get();
    let target = Box::into_raw(Box::new(Target {
        signum,
        count: AtomicUsize::new(0),
        hub_flag: hub.signal_flag.clone(),
        notifier: hub.reactor.notifier(),
    }));
    let mut saved = SAVED.lock();
    let saved = saved.get_or_insert_with(HashMap::new);
    match saved.entry(signum) {
        Entry::Occupied(mut o) => o.get_mut().1 += 1,
        Entry::Vacant(v) => {
            // SAFETY: installing a plain handler with valid structs; the
            // previous action is saved for restoration.
            let prev = unsafe {
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = on_signal as *const () as usize;
                act.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut act.sa_mask);
                let mut prev: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signum, &act, &mut prev) != 0 {
                    let e = io::Error::last_os_error();
                    // SAFETY: never published; we still own it.
                    drop(Box::from_raw(target));
                    return Err(e);
                }
                prev
            };
            v.insert((prev, 1));
        }
    }
    let slot = publish(target);
    let id = hub.add_signal_handler(Registered {
        id: NEXT_ID.fetch_add(1, SeqCst) as u64,
        slot,
        target,
        handler: Rc::new(handler),
    });
    Ok(SignalHandler {
        id,
        signum,
        cancelled: std::cell::Cell::new(false),
        _hub_bound: PhantomData,
    })
}

/// A registered signal handler; cancelling or dropping it removes it. The
/// registration also ends with its hub (at thread exit or `shutdown`).
///
/// `!Send`: the registration belongs to the hub of the thread that made it
/// (dropped on another thread it could not remove it from its hub).
pub struct SignalHandler {
    id: u64,
    signum: libc::c_int,
    cancelled: std::cell::Cell<bool>,
    _hub_bound: PhantomData<*const ()>,
}

impl SignalHandler {
    /// The signal number.
    pub fn signum(&self) -> libc::c_int {
        self.signum
    }

    /// Removes the handler; when it was the last one for its signal, the
    /// disposition from before the first registration is restored.
    /// Idempotent; never switches.
    pub fn cancel(&self) {
        if self.cancelled.replace(true) {
            return;
        }
        // Not found: its hub was torn down, which released it.
        if let Some(r) = Hub::try_get().and_then(|hub| hub.remove_signal_handler(self.id)) {
            r.release();
        }
    }
}

impl Drop for SignalHandler {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for SignalHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalHandler")
            .field("signum", &self.signum)
            .field("cancelled", &self.cancelled.get())
            .finish()
    }
}

/// The hub's side: registered handlers and spawning them.
pub(crate) struct HubSignals {
    handlers: Vec<Registered>,
}

/// Handler ids, unique in the process (a handle outliving a hub that was
/// shut down never names a handler of the next one).
static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// One handler registered on this hub.
struct Registered {
    id: u64,
    /// Its slot in `TABLE`.
    slot: usize,
    /// Its published target, owned by this entry.
    target: *mut Target,
    handler: Rc<dyn Fn()>,
}

impl Registered {
    /// Unpublishes and frees the target (so the hub's notifier is no longer
    /// referenced from here), restoring the disposition after the last one.
    fn release(self) {
        let mut saved = SAVED.lock();
        if let Some(map) = saved.as_mut() {
            unpublish(map, self.slot, self.target);
        }
    }
}

impl HubSignals {
    pub(crate) fn len(&self) -> usize {
        self.handlers.len()
    }

    pub(crate) fn new() -> HubSignals {
        HubSignals {
            handlers: Vec::new(),
        }
    }
}

impl Hub {
    fn add_signal_handler(&self, r: Registered) -> u64 {
        let id = r.id;
        self.signals.borrow_mut().handlers.push(r);
        self.keepalive.set(self.keepalive.get() + 1);
        id
    }

    fn remove_signal_handler(&self, id: u64) -> Option<Registered> {
        let r = {
            let mut s = self.signals.borrow_mut();
            let i = s.handlers.iter().position(|r| r.id == id)?;
            s.handlers.swap_remove(i)
        };
        self.keepalive.set(self.keepalive.get() - 1);
        Some(r)
    }

    /// At teardown: releases every registration of this hub, so none
    /// outlives it (each held the hub's eventfd open) and the dispositions
    /// are restored.
    pub(crate) fn release_signals(&self) {
        let all = std::mem::take(&mut self.signals.borrow_mut().handlers);
        self.keepalive.set(self.keepalive.get() - all.len());
        for r in all {
            r.release();
        }
    }

    /// In a forked child: points this hub's registrations at its new
    /// notifier (the old eventfd is shared with the parent).
    pub(crate) fn retarget_signals(&self) {
        let notifier = self.reactor.notifier();
        let _saved = SAVED.lock();
        let table = TABLE.load(SeqCst);
        for r in &mut self.signals.borrow_mut().handlers {
            // SAFETY: the target is owned by this entry (see `Registered`).
            let signum = unsafe { (*r.target).signum };
            let new = Box::into_raw(Box::new(Target {
                signum,
                count: AtomicUsize::new(0),
                hub_flag: self.signal_flag.clone(),
                notifier: notifier.clone(),
            }));
            // SAFETY: published targets have a table; `SAVED` is held.
            unsafe { (*table).slots[r.slot].store(new, SeqCst) };
            wait_for_readers();
            // SAFETY: unpublished, no handler reads it, owned by `r`.
            drop(unsafe { Box::from_raw(r.target) });
            r.target = new;
        }
    }

    /// Spawns the handlers of signals that arrived (called once per turn).
    #[inline]
    pub(crate) fn dispatch_signals(&self) {
        if !self.signal_flag.load(SeqCst) {
            return;
        }
        self.signal_flag.store(false, SeqCst);
        let due: Vec<(Rc<dyn Fn()>, usize)> = self
            .signals
            .borrow()
            .handlers
            .iter()
            .filter_map(|r| {
                // SAFETY: owned by `r`, freed only when `r` is released
                // (on this thread, and not while we hold this borrow).
                let n = unsafe { (*r.target).count.swap(0, SeqCst) };
                (n > 0).then(|| (r.handler.clone(), n))
            })
            .collect();
        for (f, n) in due {
            for _ in 0..n {
                let f = f.clone();
                crate::spawn_raw(move || f());
            }
        }
    }
}

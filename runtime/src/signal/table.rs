//! The process's signal table: which hubs want which signals, as the
//! `sigaction` handler sees it, and each hub's registered handlers. Plain
//! state: the hub owns its [`HubSignals`] and asks it what arrived.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io;
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use parking_lot::Mutex;

use polling::Poller;

/// One registration, as the signal handler sees it. Owned by its hub's
/// `Registered` entry; freed (with its reference to the hub's notifier)
/// when the registration is released, once no handler can be reading it.
struct Target {
    signum: libc::c_int,
    /// Arrivals not yet seen by the hub.
    count: AtomicUsize,
    /// The hub's "some signal arrived" flag.
    hub_flag: Arc<AtomicBool>,
    notifier: Arc<Poller>,
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

/// This thread's `errno`: `__errno_location` on Linux, `__error` on macOS
/// and FreeBSD.
#[cfg(target_os = "linux")]
fn errno_ptr() -> *mut libc::c_int {
    // SAFETY: no preconditions; async-signal-safe.
    unsafe { libc::__errno_location() }
}

#[cfg(not(target_os = "linux"))]
fn errno_ptr() -> *mut libc::c_int {
    // SAFETY: no preconditions; async-signal-safe.
    unsafe { libc::__error() }
}

extern "C" fn on_signal(sig: libc::c_int) {
    // SAFETY: `errno_ptr` is this thread's errno; the handler must leave it
    // as it found it (the `write` below may change it).
    let errno = unsafe { *errno_ptr() };
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
                t.hub_flag.store(true, SeqCst); // before the notify: see `RemoteShared::has_work`
                let _ = t.notifier.notify();
            }
        }
    }
    READERS.fetch_sub(1, SeqCst);
    // SAFETY: as above.
    unsafe { *errno_ptr() = errno };
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
            crate::sigaction::restore(signum, prev);
            saved.remove(&signum);
        }
    }
}

/// One hub's side: its registered handlers and its "a signal arrived" flag.
pub(crate) struct HubSignals {
    handlers: Vec<Registered>,
    /// Set by the signal handler when a signal for this hub arrived.
    flag: Arc<AtomicBool>,
}

/// Handler ids, unique in the process (a handle outliving a hub that was
/// shut down never names a handler of the next one).
static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// One handler registered on a hub.
pub(crate) struct Registered {
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
    pub(crate) fn release(self) {
        let mut saved = SAVED.lock();
        if let Some(map) = saved.as_mut() {
            unpublish(map, self.slot, self.target);
        }
    }
}

impl HubSignals {
    pub(crate) fn new() -> HubSignals {
        HubSignals {
            handlers: Vec::new(),
            flag: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Registered handlers.
    pub(crate) fn len(&self) -> usize {
        self.handlers.len()
    }

    /// Whether a signal arrived since the last [`HubSignals::take_due`].
    pub(crate) fn arrived(&self) -> bool {
        self.flag.load(SeqCst)
    }

    /// Registers `handler` for `signum`, woken through `notifier`, taking
    /// the signal over if nothing of ours handles it yet; returns its id.
    ///
    /// # Errors
    /// The `sigaction` error.
    pub(crate) fn add(
        &mut self,
        signum: libc::c_int,
        handler: Rc<dyn Fn()>,
        notifier: Arc<Poller>,
    ) -> io::Result<u64> {
        let target = Box::into_raw(Box::new(Target {
            signum,
            count: AtomicUsize::new(0),
            hub_flag: self.flag.clone(),
            notifier,
        }));
        let mut saved = SAVED.lock();
        let saved = saved.get_or_insert_with(HashMap::new);
        match saved.entry(signum) {
            Entry::Occupied(mut o) => o.get_mut().1 += 1,
            Entry::Vacant(v) => {
                let on_signal = on_signal as *const () as libc::sighandler_t;
                match crate::sigaction::install(signum, on_signal, libc::SA_RESTART) {
                    Ok(prev) => {
                        v.insert((prev, 1));
                    }
                    Err(e) => {
                        // SAFETY: never published; we still own it.
                        drop(unsafe { Box::from_raw(target) });
                        return Err(e);
                    }
                }
            }
        }
        let slot = publish(target);
        let id = NEXT_ID.fetch_add(1, SeqCst) as u64;
        self.handlers.push(Registered {
            id,
            slot,
            target,
            handler,
        });
        Ok(id)
    }

    /// Takes handler `id` out, for the caller to release.
    pub(crate) fn remove(&mut self, id: u64) -> Option<Registered> {
        let i = self.handlers.iter().position(|r| r.id == id)?;
        Some(self.handlers.swap_remove(i))
    }

    /// Takes every handler out, for the caller to release.
    pub(crate) fn take_all(&mut self) -> Vec<Registered> {
        std::mem::take(&mut self.handlers)
    }

    /// In a forked child: points the registrations at the new `notifier`
    /// (the old poller is shared with the parent).
    pub(crate) fn retarget(&mut self, notifier: &Arc<Poller>) {
        let _saved = SAVED.lock();
        let table = TABLE.load(SeqCst);
        for r in &mut self.handlers {
            // SAFETY: the target is owned by this entry (see `Registered`).
            let signum = unsafe { (*r.target).signum };
            let new = Box::into_raw(Box::new(Target {
                signum,
                count: AtomicUsize::new(0),
                hub_flag: self.flag.clone(),
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

    /// The handlers of signals that arrived, each with how many times,
    /// once the flag was raised; clears the flag and the counts.
    pub(crate) fn take_due(&self) -> Vec<(Rc<dyn Fn()>, usize)> {
        if !self.flag.load(SeqCst) {
            return Vec::new();
        }
        self.flag.store(false, SeqCst);
        self.handlers
            .iter()
            .filter_map(|r| {
                // SAFETY: owned by `r`, freed only when `r` is released
                // (on this thread, and not while the caller borrows us).
                let n = unsafe { (*r.target).count.swap(0, SeqCst) };
                (n > 0).then(|| (r.handler.clone(), n))
            })
            .collect()
    }
}

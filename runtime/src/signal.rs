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

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::epoll::Notifier;
use crate::hub::Hub;

/// Registrations the process can hold at once.
const SLOTS: usize = 128;

/// One registration, as the signal handler sees it. Never freed once
/// published (a handler on another thread may be reading it); cancelled
/// ones are marked inactive. So a registration costs ~64 bytes and, after
/// cancel, keeps its hub's eventfd open.
struct Target {
    signum: libc::c_int,
    active: AtomicBool,
    /// Arrivals not yet seen by the hub.
    count: AtomicUsize,
    /// The hub's "some signal arrived" flag.
    hub_flag: Arc<AtomicBool>,
    notifier: Arc<Notifier>,
}

static TARGETS: [AtomicPtr<Target>; SLOTS] = [const { AtomicPtr::new(ptr::null_mut()) }; SLOTS];

/// Dispositions saved when we took a signal over; restored by the last
/// cancel. Also serialises registration.
static SAVED: Mutex<Option<HashMap<libc::c_int, (libc::sigaction, usize)>>> = Mutex::new(None);

extern "C" fn on_signal(sig: libc::c_int) {
    for slot in &TARGETS {
        let p = slot.load(Ordering::Acquire);
        if p.is_null() {
            continue;
        }
        // SAFETY: published targets are never freed.
        let t = unsafe { &*p };
        if t.signum == sig && t.active.load(Ordering::Acquire) {
            t.count.fetch_add(1, Ordering::AcqRel);
            t.hub_flag.store(true, Ordering::SeqCst); // see `Notifier::clear`
            let _ = t.notifier.notify();
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
/// or numbers out of range; `OutOfMemory` when the process already holds
/// 128 registrations; the `sigaction` error otherwise.
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
        active: AtomicBool::new(true),
        count: AtomicUsize::new(0),
        hub_flag: hub.signal_flag.clone(),
        notifier: hub.reactor.notifier(),
    }));
    let mut saved = SAVED.lock();
    let saved = saved.get_or_insert_with(HashMap::new);
    let Some(slot) = TARGETS.iter().position(|s| {
        s.compare_exchange(ptr::null_mut(), target, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }) else {
        // SAFETY: never published; we still own it.
        drop(unsafe { Box::from_raw(target) });
        return Err(io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!(
                "cannot handle signal {signum}: the process already has {SLOTS} signal handlers"
            ),
        ));
    };
    match saved.get_mut(&signum) {
        Some((_, n)) => *n += 1,
        None => {
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
                    TARGETS[slot].store(ptr::null_mut(), Ordering::Release);
                    (*target).active.store(false, Ordering::Release);
                    return Err(e);
                }
                prev
            };
            saved.insert(signum, (prev, 1));
        }
    }
    let id = hub.add_signal_handler(slot, Rc::new(handler));
    Ok(SignalHandler {
        slot,
        id,
        signum,
        cancelled: std::cell::Cell::new(false),
        _hub_bound: PhantomData,
    })
}

/// A registered signal handler; cancelling or dropping it removes it.
///
/// `!Send`: the registration belongs to the hub of the thread that made it
/// (dropped on another thread it could not remove it from its hub).
pub struct SignalHandler {
    slot: usize,
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
        let p = TARGETS[self.slot].load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: published targets are never freed.
            unsafe { (*p).active.store(false, Ordering::Release) };
        }
        let mut saved = SAVED.lock();
        if let Some(map) = saved.as_mut() {
            if let Some((prev, n)) = map.get_mut(&self.signum) {
                *n -= 1;
                if *n == 0 {
                    // SAFETY: restoring the action saved when we installed
                    // ours.
                    unsafe { libc::sigaction(self.signum, &*prev, ptr::null_mut()) };
                    map.remove(&self.signum);
                }
            }
        }
        // The slot is free for reuse; the old target is leaked (see Target).
        TARGETS[self.slot].store(ptr::null_mut(), Ordering::Release);
        if let Some(hub) = Hub::try_get() {
            hub.remove_signal_handler(self.id);
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
    /// Its slot in `TARGETS`.
    slot: usize,
    handler: Rc<dyn Fn()>,
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
    fn add_signal_handler(&self, slot: usize, f: Rc<dyn Fn()>) -> u64 {
        let mut s = self.signals.borrow_mut();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed) as u64;
        s.handlers.push(Registered {
            id,
            slot,
            handler: f,
        });
        self.keepalive.set(self.keepalive.get() + 1);
        id
    }

    fn remove_signal_handler(&self, id: u64) {
        let removed = {
            let mut s = self.signals.borrow_mut();
            let before = s.handlers.len();
            s.handlers.retain(|r| r.id != id);
            before - s.handlers.len()
        };
        self.keepalive.set(self.keepalive.get() - removed);
    }

    /// In a forked child: points this hub's registrations at its new
    /// notifier (the old eventfd is shared with the parent). The old targets
    /// stay allocated (a handler may be reading them) but inactive.
    pub(crate) fn retarget_signals(&self) {
        let notifier = self.reactor.notifier();
        for r in &self.signals.borrow().handlers {
            let old = TARGETS[r.slot].load(Ordering::Acquire);
            if old.is_null() {
                continue;
            }
            // SAFETY: published targets are never freed.
            let signum = unsafe { (*old).signum };
            let new = Box::into_raw(Box::new(Target {
                signum,
                active: AtomicBool::new(true),
                count: AtomicUsize::new(0),
                hub_flag: self.signal_flag.clone(),
                notifier: notifier.clone(),
            }));
            TARGETS[r.slot].store(new, Ordering::Release);
            // SAFETY: as above.
            unsafe { (*old).active.store(false, Ordering::Release) };
        }
    }

    /// Spawns the handlers of signals that arrived (called once per turn).
    #[inline]
    pub(crate) fn dispatch_signals(&self) {
        if !self.signal_flag.load(Ordering::SeqCst) {
            return;
        }
        self.signal_flag.store(false, Ordering::Release);
        let due: Vec<(Rc<dyn Fn()>, usize)> = self
            .signals
            .borrow()
            .handlers
            .iter()
            .filter_map(|r| {
                let p = TARGETS[r.slot].load(Ordering::Acquire);
                if p.is_null() {
                    return None;
                }
                // SAFETY: published targets are never freed.
                let n = unsafe { (*p).count.swap(0, Ordering::AcqRel) };
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

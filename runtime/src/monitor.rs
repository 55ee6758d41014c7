//! The blocking monitor (gevent's `monitor_thread` / `max_blocking_time`):
//! notices a hub whose loop has not turned for too long — a greenlet that
//! computes, or calls a blocking std function, without yielding — and says
//! which greenlet it is.
//!
//! Off by default. Turn it on for a hub with `hub::monitor`, or for every hub
//! with the environment variable `GREENLET_MAX_BLOCKING_MS`. A watchdog
//! thread (one per process) then checks each monitored hub; when one has
//! been running the same greenlet for longer than the limit it logs a
//! warning through the [`log`] facade (target `greenlet_runtime::monitor`),
//! once per episode:
//!
//! ```text
//! WARN greenlet_runtime::monitor: the hub of thread 'main' has been blocked for 300 ms by greenlet 'cruncher' (id 7) spawned at src/main.rs:12:5
//! ```
//!
//! The application decides where that goes: install a logger (`env_logger`,
//! or any other `log` implementation) to see it; without one it is dropped.
//!
//! Cost when on: two atomic stores per switch into a greenlet and one per
//! loop turn; no syscalls. A hub waiting in its poller is idle, not
//! blocked.

use std::collections::HashMap;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::task::Core;

/// What a monitored hub publishes for the watchdog.
pub(crate) struct Watched {
    /// Bumped by the hub at every switch into a greenlet and every turn.
    progress: AtomicU64,
    /// The hub is waiting in its poller (idle, not blocked).
    idle: AtomicBool,
    running_id: AtomicU64,
    running_at: AtomicPtr<Location<'static>>,
    /// Names of named greenlets, published when they first run.
    names: Mutex<HashMap<u64, String>>,
    limit: Mutex<Duration>,
    thread: String,
}

impl Watched {
    #[inline]
    fn bump(&self) {
        // Only the hub's thread writes: a plain load + store, no RMW.
        let n = self.progress.load(Ordering::Relaxed);
        self.progress.store(n + 1, Ordering::Release);
    }

    /// A switch into `core` (called by the hub when monitoring).
    pub(crate) fn running(&self, core: &Core) {
        self.running_id.store(core.id(), Ordering::Relaxed);
        self.running_at
            .store(core.location() as *const _ as *mut _, Ordering::Relaxed);
        if let Some(name) = core.given_name() {
            if core.publish_name() {
                self.names.lock().insert(core.id(), name.to_string());
            }
        }
        self.bump();
    }

    /// A loop turn of the hub; `idle` around its blocking poll.
    pub(crate) fn turn(&self) {
        self.bump();
    }

    pub(crate) fn set_idle(&self, idle: bool) {
        self.idle.store(idle, Ordering::Release);
    }

    /// A named greenlet died: forget its name.
    pub(crate) fn forget(&self, core: &Core) {
        if core.name_published() {
            self.names.lock().remove(&core.id());
        }
    }
}

/// Every monitored hub of the process, for the watchdog.
static WATCHED: Mutex<Vec<Weak<Watched>>> = Mutex::new(Vec::new());
static WATCHDOG: std::sync::Once = std::sync::Once::new();

impl Watched {
    /// A hub's view for the watchdog, with the limit `limit`; the
    /// watchdog (started with the first) checks it while it lives.
    pub(crate) fn start(limit: Duration) -> Arc<Watched> {
        let w = Arc::new(Watched {
            progress: AtomicU64::new(0),
            idle: AtomicBool::new(false),
            running_id: AtomicU64::new(0),
            running_at: AtomicPtr::new(std::ptr::null_mut()),
            names: Mutex::new(HashMap::new()),
            limit: Mutex::new(limit),
            thread: std::thread::current()
                .name()
                .unwrap_or("<unnamed>")
                .to_string(),
        });
        WATCHED.lock().push(Arc::downgrade(&w));
        WATCHDOG.call_once(|| {
            let _ = std::thread::Builder::new()
                .name("greenlet-monitor".into())
                .spawn(watchdog);
        });
        w
    }

    /// Changes the limit.
    pub(crate) fn set_limit(&self, limit: Duration) {
        *self.limit.lock() = limit;
    }
}

/// The limit from `GREENLET_MAX_BLOCKING_MS`, if set (read at hub creation).
pub(crate) fn env_limit() -> Option<Duration> {
    let ms: u64 = std::env::var("GREENLET_MAX_BLOCKING_MS")
        .ok()?
        .parse()
        .ok()?;
    Some(Duration::from_millis(ms))
}

struct Seen {
    progress: u64,
    since: Instant,
    reported: bool,
}

fn watchdog() {
    let mut seen: HashMap<*const Watched, Seen> = HashMap::new();
    loop {
        let hubs: Vec<Arc<Watched>> = {
            let mut list = WATCHED.lock();
            list.retain(|w| w.strong_count() > 0);
            list.iter().filter_map(Weak::upgrade).collect()
        };
        let mut tick = Duration::from_millis(100);
        let now = Instant::now();
        seen.retain(|k, _| hubs.iter().any(|h| Arc::as_ptr(h) == *k));
        for w in &hubs {
            let limit = *w.limit.lock();
            tick = tick.min((limit / 4).max(Duration::from_millis(1)));
            let p = w.progress.load(Ordering::Acquire);
            let s = seen.entry(Arc::as_ptr(w)).or_insert(Seen {
                progress: p,
                since: now,
                reported: false,
            });
            if p != s.progress || w.idle.load(Ordering::Acquire) {
                *s = Seen {
                    progress: p,
                    since: now,
                    reported: false,
                };
                continue;
            }
            let blocked = now - s.since;
            if blocked > limit && !s.reported {
                s.reported = true;
                report(w, blocked);
            }
        }
        std::thread::sleep(tick);
    }
}

fn report(w: &Watched, blocked: Duration) {
    let id = w.running_id.load(Ordering::Relaxed);
    let at = w.running_at.load(Ordering::Relaxed);
    let who = if id == 0 {
        "the main greenlet".to_string()
    } else {
        let name = w
            .names
            .lock()
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("Greenlet-{id}"));
        // SAFETY: locations are `&'static Location` stored by the hub.
        let at = unsafe { at.as_ref() }
            .map(|l| format!(" spawned at {l}"))
            .unwrap_or_default();
        format!("greenlet '{name}' (id {id}){at}")
    };
    log::warn!(
        "the hub of thread '{}' has been blocked for {} ms by {who}",
        w.thread,
        blocked.as_millis()
    );
}

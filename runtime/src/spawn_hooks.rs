//! Who spawned a greenlet ([`GreenletRef::spawning_greenlet`]) and the
//! callbacks run for every spawn ([`add_spawn_callback`], gevent's
//! `Greenlet.add_spawn_callback`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::greenlet::GreenletRef;
use crate::hub::Hub;

impl GreenletRef {
    /// The greenlet that spawned this one (gevent's `spawning_greenlet`),
    /// while it is alive; `None` once it has died (it is held weakly), and
    /// for the main greenlet. The main greenlet is returned for greenlets it
    /// spawned; greenlets started by the hub itself (link callbacks, jobs
    /// of a `Remote`) name whichever greenlet was running then.
    ///
    /// ```
    /// use greenlet_runtime::{getcurrent, spawn};
    ///
    /// // The child spawns a grandchild and returns its handle.
    /// let child = spawn(|| spawn(|| ()).as_ref());
    /// assert_eq!(child.spawning_greenlet(), Some(getcurrent()));
    /// let grandchild = child.get().unwrap();
    /// assert_eq!(grandchild.spawning_greenlet(), None, "its spawner is dead");
    /// ```
    pub fn spawning_greenlet(&self) -> Option<GreenletRef> {
        let core = self.rec.core();
        // The spawner is kept weakly, as its id and its key in the live
        // table: a strong reference would keep the spawner's record (and
        // its result) alive as long as any greenlet it spawned, and a chain
        // of greenlets each spawning the next would keep them all; gevent
        // keeps a weak reference for the same reason.
        let (key, id) = core.spawner()?;
        let rec = Hub::with(|hub| hub.live_by_key(key, id))?;
        Some(GreenletRef { rec })
    }
}

/// Identifies a callback added with [`add_spawn_callback`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpawnCallbackId(u64);

type SpawnCallback = Rc<dyn Fn(&GreenletRef)>;

thread_local! {
    static CALLBACKS: RefCell<Vec<(u64, SpawnCallback)>> = const { RefCell::new(Vec::new()) };
    /// Some callback is registered: the one check a spawn makes otherwise.
    static ANY: Cell<bool> = const { Cell::new(false) };
    /// Callbacks are running: greenlets they spawn do not run them again.
    static RUNNING: Cell<bool> = const { Cell::new(false) };
    static NEXT_ID: Cell<u64> = const { Cell::new(0) };
}

/// Adds `f` to the callbacks called with every greenlet spawned on this
/// thread from now on (gevent's `Greenlet.add_spawn_callback`): by
/// `spawn`, `spawn_later`, `spawn_link*`, `Builder`, `Pool` and `Group`,
/// in the spawner's context, right after the greenlet is created (it has
/// not run yet), in the order added. Greenlets that have no handle
/// (`spawn_raw`, link callbacks, `Remote` jobs, `wait`'s helpers) and
/// greenlets spawned by a callback itself do not run them. Callbacks
/// should not block (spawns made meanwhile by other greenlets skip them).
/// A panic in a callback propagates to the spawn call (the greenlet is
/// spawned).
///
/// ```
/// use greenlet_runtime::{add_spawn_callback, remove_spawn_callback, spawn};
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let spawned = Rc::new(Cell::new(0));
/// let s = spawned.clone();
/// let id = add_spawn_callback(move |_g| s.set(s.get() + 1));
/// spawn(|| ()).join().unwrap();
/// assert!(remove_spawn_callback(id));
/// spawn(|| ()).join().unwrap();
/// assert_eq!(spawned.get(), 1);
/// ```
pub fn add_spawn_callback(f: impl Fn(&GreenletRef) + 'static) -> SpawnCallbackId {
    let id = NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    });
    CALLBACKS.with(|c| c.borrow_mut().push((id, Rc::new(f))));
    ANY.with(|a| a.set(true));
    SpawnCallbackId(id)
}

/// Removes a callback added with [`add_spawn_callback`]; `true` if it was
/// there.
pub fn remove_spawn_callback(id: SpawnCallbackId) -> bool {
    let removed = CALLBACKS.with(|c| {
        let mut c = c.borrow_mut();
        let i = c.iter().position(|(i, _)| *i == id.0);
        let removed = i.map(|i| c.remove(i));
        ANY.with(|a| a.set(!c.is_empty()));
        removed
    });
    // Dropped outside the borrow: the closure's captures may run Drops.
    removed.is_some()
}

/// Calls the spawn callbacks for `g` (see [`add_spawn_callback`]).
#[inline]
pub(crate) fn run_spawn_callbacks(g: &GreenletRef) {
    if ANY.with(Cell::get) {
        run_slow(g);
    }
}

#[cold]
fn run_slow(g: &GreenletRef) {
    if RUNNING.with(|r| r.replace(true)) {
        return;
    }
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            RUNNING.with(|r| r.set(false));
        }
    }
    let _reset = Reset;
    // A snapshot: a callback may add or remove callbacks.
    let callbacks: Vec<SpawnCallback> =
        CALLBACKS.with(|c| c.borrow().iter().map(|(_, f)| f.clone()).collect());
    for f in callbacks {
        f(g);
    }
}

//! Spawning greenlets: [`spawn`], [`spawn_later`], [`spawn_raw`] and
//! [`Builder`] (name, stack size), with the spawn callbacks run for every
//! greenlet spawned with a handle.

use std::io;
use std::panic::Location;
use std::time::Duration;

use crate::deadline::deadline_after;
use crate::greenlet::{Greenlet, GreenletRef};
use crate::hub::{Hub, Start};

/// Configures a greenlet before spawning it: name and stack size.
///
/// ```
/// use greenlet_runtime::Builder;
///
/// let g = Builder::new()
///     .name("worker")
///     .stack_size(128 * 1024)
///     .spawn(|| 1 + 1)
///     .unwrap();
/// assert_eq!(g.name(), "worker");
/// assert_eq!(g.get().unwrap(), 2);
/// ```
#[derive(Debug, Default)]
pub struct Builder {
    name: Option<Box<str>>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with the defaults: name `Greenlet-<id>`, the hub's default
    /// stack size (256 KiB unless changed with `hub::set_default_stack_size`).
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the greenlet (shown by `run_info`, panics and LoopExit errors).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into().into_boxed_str());
        self
    }

    /// Sets the stack size in bytes (rounded up to whole pages). A size that
    /// cannot be satisfied makes `spawn` fail; it is never clamped.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns `f` in a new greenlet; it starts at the next loop turn, after
    /// the greenlets spawned before it.
    ///
    /// # Errors
    /// `InvalidInput` for a stack size below the minimum (16 KiB),
    /// `OutOfMemory` when no stack can be mapped (the message names the
    /// limit and the fix); on the thread's first use of greenlet, the error
    /// of making its hub's poller (`EMFILE` at the fd limit).
    #[track_caller]
    pub fn spawn<T, F>(self, f: F) -> io::Result<Greenlet<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.spawn_at(f, Start::Now)
    }

    /// Like [`Builder::spawn`], but the greenlet starts after `delay`.
    ///
    /// # Errors
    /// As [`Builder::spawn`].
    #[track_caller]
    pub fn spawn_later<T, F>(self, delay: Duration, f: F) -> io::Result<Greenlet<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.spawn_at(
            f,
            match deadline_after(delay) {
                Some(at) => Start::At(at),
                None => Start::Never,
            },
        )
    }

    #[track_caller]
    fn spawn_at<T, F>(self, f: F, start: Start) -> io::Result<Greenlet<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        // Read here: `track_caller` does not reach into a closure.
        let at = Location::caller();
        let (rec, value) =
            Hub::with_io(|hub| hub.spawn_task(f, self.name, self.stack_size, at, start))?;
        let r = GreenletRef { rec };
        crate::spawn_hooks::run_spawn_callbacks(&r);
        Ok(Greenlet::new(r, value))
    }
}

/// Spawns `f` in a new greenlet and returns its handle.
///
/// ```
/// use greenlet_runtime::{spawn, yield_now};
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let ran = Rc::new(Cell::new(false));
/// let r = ran.clone();
/// let g = spawn(move || {
///     r.set(true);
///     "done"
/// });
/// assert!(!ran.get(), "spawn does not switch");
/// yield_now(); // now it runs
/// assert!(ran.get());
/// assert_eq!(g.get().unwrap(), "done");
/// ```
///
/// Spawning never switches: the new greenlet starts at the next loop turn,
/// when the spawner blocks or yields, after every greenlet spawned before
/// it. The closure needs `'static` but not `Send` (`Rc`/`RefCell` work).
///
/// # Panics
/// When no stack can be allocated (like `std::thread::spawn`); use
/// [`Builder::spawn`] to get that as an error value.
#[track_caller]
pub fn spawn<T, F>(f: F) -> Greenlet<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    Builder::new()
        .spawn(f)
        .unwrap_or_else(|e| panic!("greenlet::spawn failed: {e}"))
}

/// Spawns `f` to start after `delay` (gevent's `spawn_later`).
///
/// # Panics
/// As [`spawn`].
#[track_caller]
pub fn spawn_later<T, F>(delay: Duration, f: F) -> Greenlet<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    Builder::new()
        .spawn_later(delay, f)
        .unwrap_or_else(|e| panic!("greenlet::spawn_later failed: {e}"))
}

/// Spawns `f` without a handle (gevent's `spawn_raw`): the cheapest spawn,
/// for fire-and-forget work.
///
/// # Panics
/// As [`spawn`].
#[track_caller]
pub fn spawn_raw<F>(f: F)
where
    F: FnOnce() + 'static,
{
    // Read here: `track_caller` does not reach into a closure.
    let at = Location::caller();
    if let Err(e) = Hub::with(|hub| hub.spawn_task(f, None, None, at, Start::Now)) {
        panic!("greenlet::spawn_raw failed: {e}");
    }
}

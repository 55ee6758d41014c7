//! Greenlets: spawning, handles, results, kill, join and links.
//!
//! A greenlet is a stackful coroutine on a pooled stack plus a small shared
//! record (id, name, state, result slot, links, spawn location). It never
//! leaves the OS thread that spawned it: every handle here is `!Send`, so
//! misuse across threads is a compile error.
//!
//! ```
//! use greenlet_runtime::{sleep, spawn};
//! use std::time::Duration;
//!
//! let a = spawn(|| {
//!     sleep(Duration::from_millis(5)).unwrap();
//!     6 * 7
//! });
//! let b = spawn(|| "hello");
//! assert_eq!(b.get().unwrap(), "hello");
//! assert_eq!(a.get().unwrap(), 42);
//! ```

use std::any::Any;
use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::io;
use std::panic::Location;
use std::time::{Duration, Instant};

use crate::deadline::{deadline_after, deadline_within};
use crate::hub::{Hub, Start, TimerGuard};
use crate::interrupt::{BlockedForever, Interrupted};
use crate::park::park;
use crate::task::Waker;
use crate::task::{Core, Outcome, Rec, State};
use crate::timer::TimerAction;

pub use crate::task::GreenletExit;

pub use crate::task::GreenletState;

type LinkFn = Box<dyn FnOnce(GreenletRef)>;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkWhen {
    Always,
    Success,
    Failure,
}

impl LinkWhen {
    fn fires(self, failed: bool) -> bool {
        match self {
            LinkWhen::Always => true,
            LinkWhen::Success => !failed,
            LinkWhen::Failure => failed,
        }
    }
}

/// What a link does when its greenlet dies.
pub(crate) enum LinkAction {
    /// Runs a callback in a new greenlet.
    Call(LinkFn),
    /// Interrupts a receiver greenlet with `LinkedExited` (see `link.rs`).
    Notify(Rec),
}

pub(crate) struct Link {
    pub(crate) id: u64,
    when: LinkWhen,
    action: LinkAction,
}

/// Identifies one link for [`GreenletRef::unlink`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkId(u64);

/// Wakes the joiners of a greenlet that just died.
pub(crate) fn on_death_joiners(rec: &Rec) {
    let joiners = std::mem::take(&mut *rec.core().joiners.borrow_mut());
    for w in joiners {
        w.wake();
    }
}

/// Runs links and wakes joiners of a greenlet that just died.
pub(crate) fn on_death(hub: &Hub, rec: &Rec) {
    let core = rec.core();
    on_death_joiners(rec);
    let links = core
        .extra_if_any()
        .map(|mut e| std::mem::take(&mut e.links))
        .unwrap_or_default();
    let failed = core.outcome() == Outcome::Panicked;
    for l in links {
        if l.when.fires(failed) {
            fire_link(hub, rec, l.action);
        }
    }
}

fn fire_link(hub: &Hub, rec: &Rec, action: LinkAction) {
    match action {
        LinkAction::Call(f) => run_link(hub, rec.clone(), f),
        LinkAction::Notify(receiver) => crate::link::notify(hub, rec, receiver),
    }
}

fn run_link(hub: &Hub, rec: Rec, f: LinkFn) {
    let r = GreenletRef { rec };
    // A link runs in its own greenlet; if no stack can be had, report it
    // rather than lose the callback silently.
    if let Err(e) =
        hub.spawn_task::<(), _>(move || f(r), None, None, Location::caller(), Start::Now)
    {
        log::error!("could not run a link callback: {e}");
    }
}

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
    /// limit and the fix).
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
            Hub::with(|hub| hub.spawn_task(f, self.name, self.stack_size, at, start))?;
        let r = GreenletRef { rec };
        crate::spawn_hooks::run_spawn_callbacks(&r);
        Ok(Greenlet { r, value })
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

/// Why [`Greenlet::get`] produced no value.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum GreenletError {
    /// The greenlet was killed (it unwound with [`GreenletExit`]).
    #[error("the greenlet was killed")]
    Killed,
    /// The greenlet panicked; the payload is what `panic!` was given.
    // `&**.0`: the payload inside the Box. Passing `.0` (a `&Box<dyn Any +
    // Send>`) would coerce the Box itself to `&dyn Any`, so no downcast to
    // `&str`/`String` could match and every message read "<non-string ...>".
    #[error("the greenlet panicked: {}", panic_message(&**.0))]
    Panicked(Box<dyn Any + Send>),
    /// The wait for the greenlet was interrupted (a timeout of the waiting
    /// greenlet, or nothing could ever finish it).
    #[error("waiting for the greenlet was interrupted: {0}")]
    Interrupted(#[from] Interrupted),
    /// `try_get` on a greenlet that has not finished.
    #[error("the greenlet has not finished yet")]
    NotReady,
    /// The value was already taken by an earlier `try_get`.
    #[error("the greenlet's value was already taken")]
    Taken,
}

impl fmt::Debug for GreenletError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GreenletError::Killed => f.write_str("Killed"),
            // `&**p`, not `p`: see the `#[error]` of `Panicked`.
            GreenletError::Panicked(p) => write!(f, "Panicked({:?})", panic_message(&**p)),
            GreenletError::Interrupted(i) => write!(f, "Interrupted({i:?})"),
            GreenletError::NotReady => f.write_str("NotReady"),
            GreenletError::Taken => f.write_str("Taken"),
        }
    }
}

impl GreenletError {
    /// The interruption if this is [`GreenletError::Interrupted`] (a
    /// timeout, a linked greenlet's death, `LoopExit`, ...).
    pub fn interrupted(&self) -> Option<&Interrupted> {
        match self {
            GreenletError::Interrupted(i) => Some(i),
            _ => None,
        }
    }
}

impl From<GreenletError> for io::Error {
    /// `Interrupted` converts as [`Interrupted`] does (so `Timeout::is` and
    /// [`Interrupted::from_io`] still recognise it); the others become
    /// `Other` with the error's text (a panic: its message).
    fn from(e: GreenletError) -> io::Error {
        match e {
            GreenletError::Interrupted(i) => i.into(),
            e => io::Error::other(e.to_string()),
        }
    }
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_message(p: &(dyn Any + Send)) -> &str {
    if let Some(s) = p.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = p.downcast_ref::<String>() {
        s
    } else {
        "<non-string panic payload>"
    }
}

/// The owning, typed handle of a greenlet that returns `T`.
///
/// Dropping it does not stop the greenlet (it runs on, detached). Every
/// method of the untyped [`GreenletRef`] is available through `Deref`.
///
/// ```
/// use greenlet_runtime::{sleep, spawn, GreenletError};
/// use std::time::Duration;
///
/// let worker = spawn(|| 6 * 7);
/// assert_eq!(worker.get().unwrap(), 42);
///
/// let sleeper = spawn(|| sleep(Duration::from_secs(60)));
/// sleeper.kill().unwrap(); // unwinds it from its sleep; drops run
/// assert!(sleeper.dead() && sleeper.successful());
/// assert!(matches!(sleeper.get(), Err(GreenletError::Killed)));
///
/// let failing = spawn(|| -> u8 { panic!("bad input") });
/// failing.join().unwrap(); // join never reports the failure...
/// assert!(matches!(failing.get(), Err(GreenletError::Panicked(_)))); // ...get does
/// ```
pub struct Greenlet<T> {
    r: GreenletRef,
    /// The result slot inside `r`'s record (which `r` keeps alive).
    value: *const Cell<Option<T>>,
}

impl<T: 'static> Greenlet<T> {
    /// Waits for the greenlet to finish and takes its value.
    ///
    /// # Errors
    /// [`GreenletError::Killed`] if it was killed, `Panicked(payload)` if it
    /// panicked, `Interrupted(..)` if this wait was interrupted (a timeout of
    /// the caller, or nothing could ever finish the greenlet), `Taken` if
    /// `try_get` already took the value.
    pub fn get(self) -> Result<T, GreenletError> {
        self.r.join()?;
        self.try_get()
    }

    /// Takes the value if the greenlet has finished; never waits.
    ///
    /// # Errors
    /// [`GreenletError::NotReady`] if it has not finished; otherwise as
    /// [`Greenlet::get`]. A panic payload can be taken once; later calls
    /// report `Taken`.
    pub fn try_get(&self) -> Result<T, GreenletError> {
        let core = self.r.rec.core();
        match core.outcome() {
            Outcome::Pending => Err(GreenletError::NotReady),
            Outcome::Killed => Err(GreenletError::Killed),
            Outcome::Panicked => match core.extra_if_any().and_then(|mut e| e.panic.take()) {
                Some(p) => Err(GreenletError::Panicked(p)),
                None => Err(GreenletError::Taken),
            },
            Outcome::Value => {
                // SAFETY: `value` points into the record `self.r` holds, made
                // for this `T` by `spawn_task`.
                let slot = unsafe { &*self.value };
                slot.take().ok_or(GreenletError::Taken)
            }
        }
    }

    /// The untyped handle (clonable; what `getcurrent()` returns).
    pub fn as_ref(&self) -> GreenletRef {
        self.r.clone()
    }
}

impl<T> std::ops::Deref for Greenlet<T> {
    type Target = GreenletRef;
    fn deref(&self) -> &GreenletRef {
        &self.r
    }
}

impl<T> AsRef<GreenletRef> for Greenlet<T> {
    fn as_ref(&self) -> &GreenletRef {
        &self.r
    }
}

impl<T> fmt::Debug for Greenlet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.r.fmt(f)
    }
}

/// The untyped, clonable handle of a greenlet (gevent's greenlet object as
/// `getcurrent()` returns it): identity, state, join, kill and links.
#[derive(Clone)]
pub struct GreenletRef {
    pub(crate) rec: Rec,
}

impl AsRef<GreenletRef> for GreenletRef {
    fn as_ref(&self) -> &GreenletRef {
        self
    }
}

impl PartialEq for GreenletRef {
    fn eq(&self, other: &Self) -> bool {
        self.rec.ptr_eq(&other.rec)
    }
}

impl Eq for GreenletRef {}

impl fmt::Debug for GreenletRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Greenlet")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("state", &self.state())
            .field("spawned_at", &self.spawned_at())
            .finish()
    }
}

impl GreenletRef {
    fn core(&self) -> &Core {
        self.rec.core()
    }

    /// Id, unique among the greenlets of this thread; the main greenlet is 0.
    pub fn id(&self) -> u64 {
        self.core().id
    }

    /// The name given to the [`Builder`], or `Greenlet-<id>`; `main` for the
    /// thread's main greenlet.
    pub fn name(&self) -> Cow<'_, str> {
        self.core().name()
    }

    /// Where it was spawned (`#[track_caller]` of the spawn call).
    pub fn spawned_at(&self) -> &'static Location<'static> {
        self.core().location
    }

    /// The current state.
    pub fn state(&self) -> GreenletState {
        self.core().public_state()
    }

    /// True once it has finished (gevent's `ready()`): returned, panicked or
    /// was killed.
    pub fn ready(&self) -> bool {
        self.dead()
    }

    /// True once it has finished (same as [`GreenletRef::ready`]).
    pub fn dead(&self) -> bool {
        self.core().state() == State::Dead
    }

    /// True if it finished without panicking. A killed greenlet counts as
    /// successful (gevent: GreenletExit is not a failure).
    pub fn successful(&self) -> bool {
        matches!(self.core().outcome(), Outcome::Value | Outcome::Killed)
    }

    /// True if it finished by panicking.
    pub fn panicked(&self) -> bool {
        self.core().outcome() == Outcome::Panicked
    }

    /// True if it was killed.
    pub fn killed(&self) -> bool {
        self.core().outcome() == Outcome::Killed
    }

    /// Waits until it has finished. Never reports the greenlet's own failure
    /// (use `get` for that); returns at once if it already finished.
    ///
    /// # Errors
    /// [`Interrupted`] if the wait was interrupted: a timeout of the caller,
    /// `LoopExit` if nothing could ever finish it (also when a greenlet tries
    /// to join itself).
    pub fn join(&self) -> Result<(), Interrupted> {
        if self.dead() {
            return Ok(());
        }
        self.check_not_self("join")?;
        let core = self.core();
        let r = park(&format_args!("join of {}", core.describe()), |w| {
            core.joiners.borrow_mut().push(w)
        });
        if r.is_err() {
            self.forget_stale_joiners();
        }
        r
    }

    /// Waits at most `timeout` for it to finish; `Ok(true)` if it finished.
    ///
    /// # Errors
    /// As [`GreenletRef::join`].
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, Interrupted> {
        if self.dead() {
            return Ok(true);
        }
        self.check_not_self("join")?;
        let deadline = deadline_after(timeout);
        let core = self.core();
        let mut timer = TimerGuard::new();
        let r = park(&format_args!("join of {}", core.describe()), |w| {
            if let Some(d) = deadline {
                timer.arm(d, TimerAction::Wake(w.clone()));
            }
            core.joiners.borrow_mut().push(w);
        });
        drop(timer);
        if !self.dead() {
            self.forget_stale_joiners();
        }
        r.map(|()| self.dead())
    }

    fn forget_stale_joiners(&self) {
        let stale: Vec<Waker> = {
            let mut j = self.core().joiners.borrow_mut();
            let (stale, live) = std::mem::take(&mut *j)
                .into_iter()
                .partition(Waker::is_stale);
            *j = live;
            stale
        };
        drop(stale);
    }

    fn check_not_self(&self, what: &str) -> Result<(), Interrupted> {
        if Hub::with(|hub| hub.is_current(&self.rec)) {
            return Err(Interrupted::LoopExit(BlockedForever::new(format!(
                "{what} of {} by itself",
                self.core().describe()
            ))));
        }
        Ok(())
    }

    /// Kills it and waits until it is dead (gevent >= 0.13 `kill()`).
    ///
    /// A greenlet that has not started never runs and is dead at once (its
    /// links still fire). A started one is resumed at its blocking point and
    /// unwinds with [`GreenletExit`]; its `Drop`s run in its own context
    /// before this returns. Killing the current greenlet unwinds it at once
    /// (this call does not return). Killing a dead greenlet does nothing; a
    /// second kill of an unwinding greenlet does nothing.
    ///
    /// # Errors
    /// [`Interrupted`] if waiting for the death was interrupted (the kill
    /// itself still happens).
    pub fn kill(&self) -> Result<(), Interrupted> {
        self.kill_nowait();
        self.join()
    }

    /// Kills it without waiting: returns at once, never switches; the
    /// target dies at its next turn (a never-started one is dead on return).
    pub fn kill_nowait(&self) {
        Hub::with(|hub| hub.kill(&self.rec));
    }

    /// Runs `f` in a new greenlet when this one dies, however it ends.
    /// Links run in registration order; linking to a dead greenlet runs `f`
    /// at the next loop turn. A panicking link does not stop later links.
    pub fn link(&self, f: impl FnOnce(GreenletRef) + 'static) -> LinkId {
        self.add_link(LinkWhen::Always, LinkAction::Call(Box::new(f)))
    }

    /// Like [`GreenletRef::link`], only if it ends successfully (returned or
    /// was killed).
    pub fn link_value(&self, f: impl FnOnce(GreenletRef) + 'static) -> LinkId {
        self.add_link(LinkWhen::Success, LinkAction::Call(Box::new(f)))
    }

    /// Like [`GreenletRef::link`], only if it panicked.
    pub fn link_exception(&self, f: impl FnOnce(GreenletRef) + 'static) -> LinkId {
        self.add_link(LinkWhen::Failure, LinkAction::Call(Box::new(f)))
    }

    /// Removes a link that has not fired; `true` if it was found.
    pub fn unlink(&self, id: LinkId) -> bool {
        let removed = {
            let Some(mut e) = self.core().extra_if_any() else {
                return false;
            };
            e.links
                .iter()
                .position(|l| l.id == id.0)
                .map(|i| e.links.remove(i))
        };
        removed.is_some()
    }

    pub(crate) fn add_link(&self, when: LinkWhen, action: LinkAction) -> LinkId {
        Hub::with(|hub| {
            let id = hub.next_id();
            if self.dead() {
                if when.fires(self.panicked()) {
                    fire_link(hub, &self.rec, action);
                }
            } else {
                self.core().extra().links.push(Link { id, when, action });
            }
            LinkId(id)
        })
    }

    /// The panic message, if it panicked and the payload was not taken.
    pub fn panic_message(&self) -> Option<String> {
        let e = self.core().extra_if_any()?;
        e.panic.as_deref().map(|p| panic_message(p).to_string())
    }
}

/// The greenlet running now (the thread's main greenlet outside any spawned
/// one).
pub fn getcurrent() -> GreenletRef {
    GreenletRef {
        rec: Hub::with(Hub::current),
    }
}

/// Waits for all `greenlets` to finish, or until `timeout` passes; returns
/// the ones that finished, in the order given.
///
/// # Errors
/// [`Interrupted`] if the wait was interrupted (a timeout of the caller, or
/// nothing could ever finish them).
pub fn joinall<G: AsRef<GreenletRef>>(
    greenlets: &[G],
    timeout: Option<Duration>,
) -> Result<Vec<GreenletRef>, Interrupted> {
    let deadline = deadline_within(timeout);
    for g in greenlets {
        let g = g.as_ref();
        match deadline {
            None => g.join()?,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if !g.join_timeout(left)? {
                    break;
                }
            }
        }
    }
    Ok(greenlets
        .iter()
        .map(|g| g.as_ref())
        .filter(|g| g.dead())
        .cloned()
        .collect())
}

/// Kills all `greenlets` and waits until they are dead. Never-started ones
/// never run.
///
/// # Errors
/// [`Interrupted`] if waiting was interrupted (every kill was still made).
pub fn killall<G: AsRef<GreenletRef>>(greenlets: &[G]) -> Result<(), Interrupted> {
    let me = getcurrent();
    for g in greenlets {
        if *g.as_ref() != me {
            g.as_ref().kill_nowait();
        }
    }
    for g in greenlets {
        if *g.as_ref() != me {
            g.as_ref().join()?;
        }
    }
    if greenlets.iter().any(|g| *g.as_ref() == me) {
        me.kill_nowait();
    }
    Ok(())
}

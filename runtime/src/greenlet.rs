//! Greenlet handles: results, kill, join and links (spawning is in `spawn.rs`).
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
use std::fmt;
use std::io;
use std::panic::Location;
use std::time::{Duration, Instant};

use crate::deadline::{deadline_after, deadline_within};
use crate::hub::{Hub, TimerGuard};
use crate::interrupt::{BlockedForever, Interrupted};
use crate::park::park;
use crate::task::{Core, Link, LinkAction, LinkWhen, Outcome, Rec, State};
use crate::timer::TimerAction;

pub use crate::task::GreenletExit;

pub use crate::interrupt::panic_message;
pub use crate::task::GreenletState;

/// A link that calls `f` with the handle of the greenlet that died.
fn call(f: impl FnOnce(GreenletRef) + 'static) -> LinkAction {
    LinkAction::Call(Box::new(move |rec| f(GreenletRef { rec })))
}

/// Identifies one link for [`GreenletRef::unlink`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkId(u64);

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
    /// The result slot inside `r`'s record (which `r` keeps alive),
    /// holding a `T` while its core says so (`Core::take_value`).
    value: *mut T,
}

impl<T: 'static> Greenlet<T> {
    /// The handle of a greenlet just spawned, whose result will be in
    /// `value` (inside its record, which `r` keeps alive).
    pub(crate) fn new(r: GreenletRef, value: *mut T) -> Greenlet<T> {
        Greenlet { r, value }
    }

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
            Outcome::Value if core.take_value() => {
                // SAFETY: `value` points into the record `self.r` holds, made
                // for this `T` by `spawn_task`; the core said it held the
                // result, and now says it holds nothing: moved out once.
                Ok(unsafe { self.value.read() })
            }
            Outcome::Value => Err(GreenletError::Taken),
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
        self.core().id()
    }

    /// The name given to the [`Builder`](crate::Builder), or `Greenlet-<id>`; `main` for the
    /// thread's main greenlet.
    pub fn name(&self) -> Cow<'_, str> {
        self.core().name()
    }

    /// Where it was spawned (`#[track_caller]` of the spawn call).
    pub fn spawned_at(&self) -> &'static Location<'static> {
        self.core().location()
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
        let _forget = ForgetStaleJoiner(self);
        park(&format_args!("join of {}", core.describe()), |w| {
            core.push_joiner(w)
        })
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
        let _forget = ForgetStaleJoiner(self);
        let mut timer = TimerGuard::new();
        let r = park(&format_args!("join of {}", core.describe()), |w| {
            if let Some(d) = deadline {
                timer.arm(d, TimerAction::Wake(w.clone()));
            }
            core.push_joiner(w);
        });
        drop(timer);
        r.map(|()| self.dead())
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
        self.add_link(LinkWhen::Always, call(f))
    }

    /// Like [`GreenletRef::link`], only if it ends successfully (returned or
    /// was killed).
    pub fn link_value(&self, f: impl FnOnce(GreenletRef) + 'static) -> LinkId {
        self.add_link(LinkWhen::Success, call(f))
    }

    /// Like [`GreenletRef::link`], only if it panicked.
    pub fn link_exception(&self, f: impl FnOnce(GreenletRef) + 'static) -> LinkId {
        self.add_link(LinkWhen::Failure, call(f))
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
                    hub.fire_link(&self.rec, action);
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

/// Takes a joiner's waker out of the target's list when its wait ends
/// without the target's death: an interruption, or a kill unwinding out of
/// the park (a killed joiner's waker, and the record it holds, stayed
/// listed until the target died).
struct ForgetStaleJoiner<'a>(&'a GreenletRef);

impl Drop for ForgetStaleJoiner<'_> {
    fn drop(&mut self) {
        if !self.0.dead() {
            self.0.core().forget_stale_joiners();
        }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::{sleep, spawn, yield_now};

    /// Joiners killed while they wait leave no waker behind in the target's
    /// list (each held its record until the target died: memory grew with
    /// every killed joiner of a long-lived greenlet).
    #[test]
    fn a_killed_joiner_leaves_no_waker_behind() {
        let long = spawn(|| {
            let _ = sleep(Duration::from_secs(3600));
        });
        let joiners =
            |g: &crate::Greenlet<()>| g.core().extra_if_any().map_or(0, |e| e.joiners.len());
        for timed in [false, true] {
            for _ in 0..10 {
                let target = long.as_ref();
                let j = spawn(move || {
                    if timed {
                        let _ = target.join_timeout(Duration::from_secs(3600));
                    } else {
                        let _ = target.join();
                    }
                });
                yield_now();
                assert_eq!(joiners(&long), 1, "it waits");
                j.kill().unwrap();
                assert_eq!(joiners(&long), 0, "its waker went with it");
            }
        }
        long.kill().unwrap();
    }
}

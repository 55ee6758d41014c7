//! Waiting on many objects at once (gevent's `wait` and `iwait`): any mix
//! of greenlets, events, async results and fd readiness (`greenlet::net`
//! implements [`Waitable`] for `Rc<Watcher>`), reported in the order they
//! became ready.
//!
//! ```
//! use greenlet_runtime::sync::{AsyncResult, Event};
//! use greenlet_runtime::{iwait, spawn, yield_now, Waitable};
//!
//! let flag = Event::new();
//! let answer: AsyncResult<u32> = AsyncResult::new();
//! let f = flag.clone();
//! let follower = spawn(move || f.wait()); // ends after the flag
//! let (f, a) = (flag.clone(), answer.clone());
//! spawn(move || {
//!     yield_now(); // let iwait's waits begin
//!     a.set(42);
//!     f.set();
//! });
//! let objects: [&dyn Waitable; 3] = [&follower, &flag, &answer];
//! let order: Vec<usize> = iwait(&objects, None).map(Result::unwrap).collect();
//! assert_eq!(order, [2, 1, 0]); // answer, flag, then the follower
//! ```
//!
//! How it works: an object already ready is reported at once, in the order
//! given. For each of the others a small helper greenlet waits on it and
//! reports it when its wait ends, so objects are reported exactly in the
//! order their waits ended, also when several end in one loop turn.
//! Dropping the [`Iwait`] (or `wait` returning) kills the helpers still
//! waiting.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::panic::Location;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::greenlet::{Greenlet, GreenletRef};
use crate::hub::Hub;
use crate::hub::Start;
use crate::hub::TimerGuard;
use crate::interrupt::Interrupted;
use crate::park::park;
use crate::sync::{AsyncResult, Event};
use crate::task::Rec;
use crate::task::Waker;
use crate::timer::TimerAction;

/// A blocking wait for readiness, owned so a helper greenlet can run it.
pub type ReadyWait = Box<dyn FnOnce() -> Result<(), Interrupted>>;

/// Something [`wait`] and [`iwait`] can wait for: a greenlet (until it is
/// dead), an [`Event`] (until set), an [`AsyncResult`] (until set), an fd's
/// readiness (`Rc<Watcher>` in `greenlet::net`). Implement it for your own
/// type by returning a wait on a clone of its handle.
///
/// ```
/// use greenlet_runtime::sync::Semaphore;
/// use greenlet_runtime::{ReadyWait, Waitable};
///
/// /// Ready when a permit is free.
/// struct Free(Semaphore);
///
/// impl Waitable for Free {
///     fn is_ready(&self) -> bool {
///         !self.0.locked()
///     }
///     fn ready_wait(&self) -> ReadyWait {
///         let s = self.0.clone();
///         Box::new(move || {
///             s.acquire()?;
///             s.release();
///             Ok(())
///         })
///     }
/// }
/// assert_eq!(greenlet_runtime::wait(&[Free(Semaphore::new(1))], None, None).unwrap(), [0]);
/// ```
pub trait Waitable {
    /// Whether waiting would return at once (`false` when that is unknown:
    /// the wait then finds out).
    fn is_ready(&self) -> bool;

    /// A wait that returns when the object is ready, run in a helper
    /// greenlet; it holds its own handle to the object. An error ends the
    /// wait too (the object is reported: using it shows the error).
    fn ready_wait(&self) -> ReadyWait;
}

impl<W: Waitable + ?Sized> Waitable for &W {
    fn is_ready(&self) -> bool {
        (**self).is_ready()
    }
    fn ready_wait(&self) -> ReadyWait {
        (**self).ready_wait()
    }
}

impl Waitable for GreenletRef {
    /// Dead.
    fn is_ready(&self) -> bool {
        self.dead()
    }
    fn ready_wait(&self) -> ReadyWait {
        let g = self.clone();
        Box::new(move || g.join())
    }
}

impl<T> Waitable for Greenlet<T> {
    fn is_ready(&self) -> bool {
        self.dead()
    }
    fn ready_wait(&self) -> ReadyWait {
        let g: &GreenletRef = self;
        g.ready_wait()
    }
}

impl Waitable for Event {
    /// Set.
    fn is_ready(&self) -> bool {
        self.is_set()
    }
    fn ready_wait(&self) -> ReadyWait {
        let e = self.clone();
        Box::new(move || e.wait())
    }
}

impl<T: Clone + 'static> Waitable for AsyncResult<T> {
    /// A value or an error is set.
    fn is_ready(&self) -> bool {
        self.ready()
    }
    fn ready_wait(&self) -> ReadyWait {
        let r = self.clone();
        Box::new(move || r.wait())
    }
}

/// Waits until `count` of `objects` (all of them if `None`) are ready, or
/// `timeout` passes; returns the indices of the ready ones in the order
/// they became ready (gevent's `wait(objects, timeout, count)`). A timeout
/// is not an error here: fewer indices come back.
///
/// # Errors
/// [`Interrupted`] if this greenlet's wait was interrupted (a `Timeout` of
/// its own, a linked greenlet's death, `LoopExit` when nothing can make the
/// objects ready).
///
/// ```
/// use greenlet_runtime::sync::Event;
/// use greenlet_runtime::{spawn, wait};
/// use std::time::Duration;
///
/// let done = spawn(|| ());
/// let never = Event::new();
/// let first = wait(&[&done as &dyn greenlet_runtime::Waitable, &never], None, Some(1)).unwrap();
/// assert_eq!(first, [0]);
/// let by_then = wait(&[never], Some(Duration::from_millis(5)), None).unwrap();
/// assert!(by_then.is_empty());
/// ```
pub fn wait<W: Waitable>(
    objects: &[W],
    timeout: Option<Duration>,
    count: Option<usize>,
) -> Result<Vec<usize>, Interrupted> {
    let want = count.unwrap_or(objects.len()).min(objects.len());
    let mut it = iwait(objects, timeout);
    let mut ready = Vec::with_capacity(want);
    while ready.len() < want {
        match it.next() {
            Some(r) => ready.push(r?),
            None => break,
        }
    }
    Ok(ready)
}

/// Yields the indices of `objects` as they become ready, in that order,
/// until all are or `timeout` passes (gevent's `iwait`). Each `next` waits.
/// Dropping the iterator stops the waits still in progress.
///
/// An interruption of this greenlet's wait (its own `Timeout`, a linked
/// greenlet's death, `LoopExit`) is yielded as `Some(Err(..))`; iterating
/// on goes on waiting.
///
/// ```
/// use greenlet_runtime::{iwait, sleep, spawn};
/// use std::time::Duration;
///
/// let workers: Vec<_> = [30u64, 10, 20]
///     .into_iter()
///     .map(|ms| spawn(move || sleep(Duration::from_millis(ms))))
///     .collect();
/// let finished: Vec<usize> = iwait(&workers, None).map(Result::unwrap).collect();
/// assert_eq!(finished, [1, 2, 0]);
/// ```
pub fn iwait<W: Waitable>(objects: &[W], timeout: Option<Duration>) -> Iwait {
    // A timeout too large for an `Instant` (`Duration::MAX`) never ends.
    let deadline = crate::deadline::deadline_within(timeout);
    let shared = Rc::new(Shared::default());
    let mut helpers = Vec::new();
    let at = Location::caller();
    for (i, o) in objects.iter().enumerate() {
        if o.is_ready() {
            shared.done.borrow_mut().push_back(i);
            continue;
        }
        let w = o.ready_wait();
        let s = shared.clone();
        let helper = move || {
            let _ = w();
            s.report(i);
        };
        match Hub::with(|hub| hub.spawn_task(helper, None, None, at, Start::Now)) {
            Ok((rec, _)) => helpers.push(rec),
            // No stack for a helper: report the object rather than hang;
            // using it shows whether it is really ready.
            Err(_) => shared.done.borrow_mut().push_back(i),
        }
    }
    Iwait {
        shared,
        helpers,
        left: objects.len(),
        deadline,
    }
}

/// The iterator of [`iwait`]: indices of ready objects in completion order.
pub struct Iwait {
    shared: Rc<Shared>,
    helpers: Vec<Rec>,
    left: usize,
    deadline: Option<Instant>,
}

#[derive(Default)]
struct Shared {
    done: RefCell<VecDeque<usize>>,
    waiter: RefCell<Option<Waker>>,
}

impl Shared {
    fn report(&self, i: usize) {
        self.done.borrow_mut().push_back(i);
        let w = self.waiter.borrow_mut().take();
        if let Some(w) = w {
            w.wake();
        }
    }
}

impl Iterator for Iwait {
    type Item = Result<usize, Interrupted>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.left == 0 {
                return None;
            }
            let front = self.shared.done.borrow_mut().pop_front();
            if let Some(i) = front {
                self.left -= 1;
                return Some(Ok(i));
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            let mut timer = TimerGuard::new();
            let r = park(&format_args!("wait() on {} objects", self.left), |w| {
                if let Some(d) = self.deadline {
                    timer.arm(d, TimerAction::Wake(w.clone()));
                }
                *self.shared.waiter.borrow_mut() = Some(w);
            });
            drop(timer);
            let stale = self.shared.waiter.borrow_mut().take();
            drop(stale);
            if let Err(e) = r {
                return Some(Err(e));
            }
        }
    }
}

impl Drop for Iwait {
    fn drop(&mut self) {
        Hub::try_with(|hub| {
            for h in &self.helpers {
                hub.kill(h);
            }
        });
    }
}

impl fmt::Debug for Iwait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iwait").field("left", &self.left).finish()
    }
}

//! Links to greenlets (gevent 0.13's `link(greenlet)` and `spawn_link*`):
//! when a linked greenlet dies, the receiver's current or next blocking call
//! returns [`Interrupted::LinkedExited`].
//!
//! gevent meant these "not as a way of inter-greenlet communication but
//! more of a way to assert that a background greenlet is running at least
//! as long as the current greenlet": a worker that must not die quietly is
//! spawned with [`spawn_link_exception`], and its panic surfaces in the
//! spawner's next wait.
//!
//! ```
//! use greenlet_runtime::{sleep, spawn_link_exception, Interrupted};
//! use std::time::Duration;
//!
//! let _worker = spawn_link_exception(|| -> () { panic!("lost the database") });
//! let err = sleep(Duration::from_secs(60)).unwrap_err();
//! assert!(matches!(err, Interrupted::LinkedExited(_)));
//! assert!(err.to_string().contains("lost the database"));
//! ```
//!
//! The rules:
//! - **Delivered once**, like a timeout: the receiver's wait in progress ends
//!   with the error (or, if it is not waiting, its next wait does, without
//!   suspending); later waits proceed normally. Interruptions are delivered
//!   in the order they happened: a timeout that fired before the death is
//!   returned first, one that fired after it second.
//! - **A dead receiver is not notified**, and the linked greenlet itself is
//!   unaffected by the link (its result, `join` and other links are as
//!   without it).
//! - **A link is removable** by its [`LinkId`] (`unlink`) or with
//!   `unlink_all`, like callback links.
//! - **The main greenlet can receive too**: its blocked wait ends with the
//!   `LinkedExited` when the linked greenlet dies. (While the linked
//!   greenlet can still run it keeps the hub from declaring `LoopExit`
//!   through its own wake sources; a linked greenlet that is itself blocked
//!   forever can never die, so `LoopExit` is then the right answer.)

use std::io;

use crate::greenlet::{Greenlet, GreenletRef, LinkId};
use crate::hub::Hub;
use crate::interrupt::{Interrupted, LinkedExited};
use crate::spawn::spawn;
use crate::task::{LinkAction, LinkWhen};

impl GreenletRef {
    /// Links `receiver` to this greenlet: when this one dies, however it
    /// ends, `receiver`'s current or next blocking call returns
    /// [`Interrupted::LinkedExited`] (gevent 0.13's `link(receiver)`).
    /// Linking to a greenlet that is already dead notifies at once. A dead
    /// receiver is not notified. Remove the link with `unlink(id)`.
    ///
    /// ```
    /// use greenlet_runtime::{getcurrent, sleep, spawn, Interrupted};
    /// use std::time::Duration;
    ///
    /// let worker = spawn(|| sleep(Duration::from_millis(5)));
    /// worker.link_greenlet(&getcurrent());
    /// let err = sleep(Duration::from_secs(60)).unwrap_err();
    /// assert_eq!(err.linked_exited().map(|d| d.id()), Some(worker.id()));
    /// ```
    pub fn link_greenlet(&self, receiver: &GreenletRef) -> LinkId {
        self.add_link(LinkWhen::Always, LinkAction::Notify(receiver.rec.clone()))
    }

    /// Like [`GreenletRef::link_greenlet`], only if this greenlet ends
    /// successfully (returned or was killed).
    pub fn link_value_greenlet(&self, receiver: &GreenletRef) -> LinkId {
        self.add_link(LinkWhen::Success, LinkAction::Notify(receiver.rec.clone()))
    }

    /// Like [`GreenletRef::link_greenlet`], only if this greenlet panicked.
    ///
    /// ```
    /// use greenlet_runtime::{getcurrent, sleep, spawn};
    /// use std::time::Duration;
    ///
    /// let fine = spawn(|| ());
    /// fine.link_exception_greenlet(&getcurrent());
    /// let bad = spawn(|| -> () { panic!("boom") });
    /// bad.link_exception_greenlet(&getcurrent());
    /// let err = sleep(Duration::from_secs(60)).unwrap_err();
    /// assert_eq!(err.linked_exited().unwrap().id(), bad.id());
    /// ```
    pub fn link_exception_greenlet(&self, receiver: &GreenletRef) -> LinkId {
        self.add_link(LinkWhen::Failure, LinkAction::Notify(receiver.rec.clone()))
    }

    /// Removes every link that has not fired (callbacks and receivers);
    /// returns how many there were.
    ///
    /// ```
    /// use greenlet_runtime::{getcurrent, spawn};
    ///
    /// let g = spawn(|| ());
    /// g.link(|_| unreachable!("removed before it could run"));
    /// g.link_greenlet(&getcurrent());
    /// assert!(g.has_links());
    /// assert_eq!(g.unlink_all(), 2);
    /// assert!(!g.has_links());
    /// g.join().unwrap();
    /// ```
    pub fn unlink_all(&self) -> usize {
        let removed = match self.rec.core().extra_if_any() {
            Some(mut e) => std::mem::take(&mut e.links),
            None => return 0,
        };
        // Dropped outside the borrow: a callback's captures may run Drops
        // that use this greenlet.
        removed.len()
    }

    /// Whether any link (callback or receiver) is waiting for this
    /// greenlet's death.
    pub fn has_links(&self) -> bool {
        self.rec
            .core()
            .extra_if_any()
            .is_some_and(|e| !e.links.is_empty())
    }
}

/// Spawns `f` and links the current greenlet to it (gevent 0.13's
/// `spawn_link`): when it dies, however it ends, the current greenlet's
/// current or next blocking call returns [`Interrupted::LinkedExited`].
///
/// # Panics
/// As [`spawn`] (no stack could be had).
///
/// ```
/// use greenlet_runtime::{sleep, spawn_link, Ended};
/// use std::time::Duration;
///
/// let g = spawn_link(|| 7);
/// let err = sleep(Duration::from_secs(60)).unwrap_err();
/// assert_eq!(err.linked_exited().unwrap().ended(), &Ended::Completed);
/// assert_eq!(g.get().unwrap(), 7); // the child is unaffected
/// ```
#[track_caller]
pub fn spawn_link<T, F>(f: F) -> Greenlet<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    spawn_linked(LinkWhen::Always, f)
}

/// Like [`spawn_link`], but notifies only if the greenlet ends successfully:
/// returned, or was killed (a kill counts as success, as in gevent).
///
/// # Panics
/// As [`spawn`].
///
/// ```
/// use greenlet_runtime::{sleep, spawn_link_value, Ended};
/// use std::time::Duration;
///
/// let server = spawn_link_value(|| sleep(Duration::from_secs(60)));
/// greenlet_runtime::yield_now();
/// server.kill_nowait(); // a kill counts as success
/// let err = sleep(Duration::from_secs(60)).unwrap_err();
/// assert_eq!(err.linked_exited().unwrap().ended(), &Ended::Killed);
///
/// let failed = spawn_link_value(|| -> () { panic!("not reported") });
/// failed.join().unwrap();
/// sleep(Duration::ZERO).unwrap(); // nothing pending
/// ```
#[track_caller]
pub fn spawn_link_value<T, F>(f: F) -> Greenlet<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    spawn_linked(LinkWhen::Success, f)
}

/// Like [`spawn_link`], but notifies only if the greenlet panics: the
/// [`LinkedExited`] carries the panic message.
///
/// # Panics
/// As [`spawn`].
///
/// ```
/// use greenlet_runtime::{sleep, spawn_link_exception, Ended};
/// use std::time::Duration;
///
/// let quiet = spawn_link_exception(|| 1);
/// quiet.join().unwrap();
/// sleep(Duration::ZERO).unwrap(); // it returned: nothing pending
///
/// let _w = spawn_link_exception(|| -> () { panic!("bad row {}", 7) });
/// let err = sleep(Duration::from_secs(60)).unwrap_err();
/// assert_eq!(err.linked_exited().unwrap().ended(), &Ended::Panicked("bad row 7".into()));
/// ```
#[track_caller]
pub fn spawn_link_exception<T, F>(f: F) -> Greenlet<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    spawn_linked(LinkWhen::Failure, f)
}

#[track_caller]
fn spawn_linked<T, F>(when: LinkWhen, f: F) -> Greenlet<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    let g = spawn(f);
    g.add_link(when, LinkAction::Notify(Hub::with(Hub::current)));
    g
}

impl From<LinkedExited> for io::Error {
    /// As [`Interrupted::LinkedExited`] converts: kind `Other`, recoverable
    /// with [`Interrupted::from_io`].
    fn from(e: LinkedExited) -> io::Error {
        Interrupted::LinkedExited(e).into()
    }
}

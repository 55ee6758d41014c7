//! Process-level operations: [`fork`], [`reinit`] and [`shutdown`]
//! (gevent's `fork`, `reinit` and hub shutdown).
//!
//! # What happens to greenlets in a forked child
//!
//! Only the greenlet that called [`fork`] goes on in the child (with the
//! thread's main greenlet, which hosts the loop, if it was another one).
//! Every other greenlet is discarded without running any more of its code
//! — no unwinding, no `Drop`s — exactly as POSIX `fork` keeps only the
//! calling thread. Their memory stays as copied, their fds stay open in the
//! child, joiners see them dead (killed), links do not run. gevent instead
//! lets every greenlet run on in the child, which is how a copied accept
//! loop or background writer ends up running twice (gevent issue #957). To
//! serve in children, fork first and start servers after, in each child;
//! sockets made before the fork keep working there.
//!
//! The child's hub gets a new poller with every registered fd added again
//! (the parent's epoll instance and notifier are shared with the child and
//! are left alone; on kqueue systems the child has none), the remote queue
//! forgets the parent's jobs, and the thread pool forgets its workers
//! (threads do not survive `fork`). [`fork`] also closes the child's copies
//! of the parent poller's three fds (Linux: the epoll instance, its eventfd
//! and timerfd); after a raw `fork(2)`, [`reinit`] leaves them open, as by
//! then the program may have closed those numbers and reused them.

use std::io;

use crate::hub::{destroy, Hub};
use crate::interrupt::Interrupted;

/// Which side of a [`fork`] this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fork {
    /// The parent; `child` is the new process's pid.
    Parent {
        /// The child's process id.
        child: i32,
    },
    /// The child.
    Child,
}

/// Forks the process and makes the child's hub usable (see the module docs
/// for what happens to the other greenlets).
///
/// ```no_run
/// use greenlet_runtime::process::{fork, Fork};
///
/// match fork().unwrap() {
///     Fork::Child => { /* serve, then std::process::exit(0) */ }
///     Fork::Parent { child } => println!("started {child}"),
/// }
/// ```
///
/// # Errors
/// The error of `fork(2)` (in the parent), or of re-creating the child's
/// poller (in the child).
pub fn fork() -> io::Result<Fork> {
    // SAFETY: fork(2) itself is always safe to call; the child only runs
    // this thread, whose state (the hub) is re-initialised below before any
    // other use.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid > 0 {
        return Ok(Fork::Parent { child: pid });
    }
    Hub::with(|hub| {
        hub.after_fork(true)?;
        hub.discard_others();
        Ok(Fork::Child)
    })
}

/// Re-initialises this thread's hub in a child process made by a raw
/// `fork(2)` (what [`fork`] does for you): a new poller with every fd
/// registered again, the remote queue, signal delivery and the thread pool
/// reset. Greenlets are left as they are. Unlike [`fork`], it leaves the
/// child's copies of the parent poller's fds open (three on Linux): code
/// run since the fork may have closed those numbers and reused them.
///
/// # Errors
/// The error of creating the new poller (`polling::Poller::new`: the
/// epoll or kqueue instance, or its notifier), e.g. `EMFILE`.
pub fn reinit() -> io::Result<()> {
    Hub::with(|hub| hub.after_fork(false))
}

/// Kills every greenlet of this thread's hub (their cleanup runs, in their
/// own context), closes the hub, and leaves the thread ready to make a
/// fresh hub on next use. Handles to the old hub's greenlets see them
/// dead; sockets registered with it report an error on their next wait.
///
/// # Errors
/// `InvalidInput` when called from a spawned greenlet (only the thread's
/// main greenlet can end the loop it runs on); an interrupted wait for the
/// deaths (a `Timeout` of the caller) as an `io::Error` — the hub is then
/// still closed.
pub fn shutdown() -> io::Result<()> {
    let all = Hub::with(|hub| {
        if !hub.current().core().is_main() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "shutdown() must be called from the thread's main greenlet",
            ));
        }
        Ok(hub.live_snapshot())
    })?;
    let all: Vec<crate::GreenletRef> = all
        .into_iter()
        .map(|rec| crate::GreenletRef { rec })
        .collect();
    // Outside any use of the hub: `destroy` frees it.
    let killed: Result<(), Interrupted> = crate::killall(&all);
    destroy(std::ptr::null());
    killed.map_err(io::Error::from)
}

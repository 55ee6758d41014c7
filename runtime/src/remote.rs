//! [`Remote`]: a `Send + Sync` handle to a hub, for other threads.
//!
//! Greenlets never cross threads; work does. `Remote::spawn` queues a `Send`
//! closure for the hub and wakes its poll (an eventfd); the hub runs
//! it in a new greenlet at its next loop turn.
//!
//! ```
//! use greenlet_runtime::hub::Remote;
//! use std::sync::mpsc;
//!
//! let remote = Remote::current();
//! let (tx, rx) = mpsc::channel();
//! let t = std::thread::spawn(move || {
//!     remote.spawn(move || tx.send(std::thread::current().id()).unwrap()).unwrap();
//! });
//! t.join().unwrap();
//! // Let the hub run: the job arrives at a loop turn.
//! let ran_on = loop {
//!     match rx.try_recv() {
//!         Ok(id) => break id,
//!         Err(_) => greenlet_runtime::yield_now(),
//!     }
//! };
//! assert_eq!(ran_on, std::thread::current().id());
//! ```

use std::mem;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::epoll::Notifier;
use crate::hub::Hub;

pub(crate) type Job = Box<dyn FnOnce() + Send>;

pub(crate) struct RemoteShared {
    queue: Mutex<Queue>,
    /// Set when `queue.jobs` is non-empty; lets the hub skip the lock on
    /// every turn.
    queued: AtomicBool,
    /// Replaced in a forked child (the parent's eventfd is shared).
    poller: Mutex<Arc<Notifier>>,
}

struct Queue {
    jobs: Vec<Job>,
    closed: bool,
    /// Live `Remote` handles; while any exists, a parked main greenlet may
    /// still be woken from another thread, so it is not deadlocked.
    handles: usize,
}

impl RemoteShared {
    pub(crate) fn new(poller: Arc<Notifier>) -> RemoteShared {
        RemoteShared {
            queue: Mutex::new(Queue {
                jobs: Vec::new(),
                closed: false,
                handles: 0,
            }),
            queued: AtomicBool::new(false),
            poller: Mutex::new(poller),
        }
    }

    /// SeqCst (here, in `take_jobs` and `send`): paired with the notifier's
    /// `pending` flag, see `Notifier::clear`.
    pub(crate) fn has_work(&self) -> bool {
        self.queued.load(Ordering::SeqCst)
    }

    pub(crate) fn handles(&self) -> usize {
        self.queue.lock().handles
    }

    pub(crate) fn take_jobs(&self) -> Vec<Job> {
        // A plain load on the (common) empty path; the swap only when set.
        if !self.queued.load(Ordering::SeqCst) || !self.queued.swap(false, Ordering::SeqCst) {
            return Vec::new();
        }
        mem::take(&mut self.queue.lock().jobs)
    }

    /// Queues a job for the hub and wakes its poller; what
    /// [`Remote::spawn`] does, for runtime code that holds the shared state
    /// without a `Remote` handle (the thread pool).
    pub(crate) fn send(&self, job: Job) -> Result<(), RemoteError> {
        {
            let mut q = self.queue.lock();
            if q.closed {
                return Err(RemoteError::HubClosed);
            }
            q.jobs.push(job);
        }
        self.queued.store(true, Ordering::SeqCst);
        // A failed notify only delays the job until the hub's next turn.
        let _ = self.poller.lock().notify();
        Ok(())
    }

    /// In a forked child: wake through the child's new notifier, and forget
    /// the jobs queued in the parent (they are the parent's to run).
    pub(crate) fn after_fork(&self, notifier: Arc<Notifier>) {
        *self.poller.lock() = notifier;
        let jobs = mem::take(&mut self.queue.lock().jobs);
        mem::forget(jobs);
        self.queued.store(false, Ordering::Release);
    }

    pub(crate) fn close(&self) {
        let jobs = {
            let mut q = self.queue.lock();
            q.closed = true;
            mem::take(&mut q.jobs)
        };
        drop(jobs);
    }
}

/// Why [`Remote::spawn`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The hub's thread has exited (or is exiting); nothing will run there.
    #[error("the hub this Remote points to has shut down (its thread exited)")]
    HubClosed,
}

/// A `Send + Sync` handle to one hub, for spawning work on it from other
/// threads.
///
/// While any `Remote` of a hub exists, that hub's main greenlet is never
/// declared deadlocked (`LoopExit`): a job may still arrive.
pub struct Remote {
    shared: Arc<RemoteShared>,
}

impl Remote {
    /// A handle to the current thread's hub.
    pub fn current() -> Remote {
        let shared = Hub::get().remote.clone();
        shared.queue.lock().handles += 1;
        Remote { shared }
    }

    /// Runs `f` in a new greenlet on the hub's thread, at its next loop
    /// turn. Never blocks on the hub.
    ///
    /// # Errors
    /// [`RemoteError::HubClosed`] if the hub's thread has exited.
    pub fn spawn<F: FnOnce() + Send + 'static>(&self, f: F) -> Result<(), RemoteError> {
        self.shared.send(Box::new(f))
    }
}

impl Clone for Remote {
    fn clone(&self) -> Remote {
        self.shared.queue.lock().handles += 1;
        Remote {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.shared.queue.lock().handles -= 1;
        // Wake the hub so a main greenlet waiting only on this handle can be
        // told it is deadlocked.
        let _ = self.shared.poller.lock().notify();
    }
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").finish_non_exhaustive()
    }
}

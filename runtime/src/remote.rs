//! [`Remote`]: a `Send + Sync` handle to a hub, for other threads.
//!
//! Greenlets never cross threads; work does. `Remote::spawn` queues a `Send`
//! closure for the hub and wakes its poll (`Poller::notify`); the hub runs
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

use polling::Poller;

pub(crate) type Job = Box<dyn FnOnce() + Send>;

pub(crate) struct RemoteShared {
    queue: Mutex<Queue>,
    /// Set when `queue.jobs` is non-empty; lets the hub skip the lock on
    /// every turn.
    queued: AtomicBool,
    /// The hub's poller, for `notify`; replaced in a forked child (the
    /// parent's notifier is shared).
    poller: Mutex<Arc<Poller>>,
}

struct Queue {
    jobs: Vec<Job>,
    closed: bool,
    /// Live `Remote` handles of this `generation`; while any exists, a
    /// parked main greenlet may still be woken from another thread, so it
    /// is not deadlocked.
    handles: usize,
    /// Bumped in a forked child: the handles counted before belonged to
    /// threads the child does not have, so they no longer count.
    generation: u64,
}

impl Queue {
    /// Counts a new handle; returns the generation it belongs to.
    fn add_handle(&mut self) -> u64 {
        self.handles += 1;
        self.generation
    }
}

impl RemoteShared {
    pub(crate) fn new(poller: Arc<Poller>) -> RemoteShared {
        RemoteShared {
            queue: Mutex::new(Queue {
                jobs: Vec::new(),
                closed: false,
                handles: 0,
                generation: 0,
            }),
            queued: AtomicBool::new(false),
            poller: Mutex::new(poller),
        }
    }

    /// SeqCst (here, in `take_jobs` and `send`): a store-then-load on each
    /// side with the poller's own `notified` flag (`Poller::notify` skips
    /// its write while a notification is pending; the hub reads this flag
    /// after its wait has reset that one), which weaker orderings let both
    /// sides miss.
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

    /// In a forked child: wake through the child's new poller, and forget
    /// the jobs queued in the parent (they are the parent's to run).
    /// The `Remote` handles counted so far are forgotten too: all but the
    /// forking thread are gone, and with them whatever handles they held.
    pub(crate) fn after_fork(&self, poller: Arc<Poller>) {
        *self.poller.lock() = poller;
        let jobs = {
            let mut q = self.queue.lock();
            q.handles = 0;
            q.generation += 1;
            mem::take(&mut q.jobs)
        };
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
/// declared deadlocked (`LoopExit`): a job may still arrive. In a child made
/// by `fork`, handles from before the fork no longer count (the threads that
/// held them do not exist there); they still work, and a `clone` made in
/// the child counts.
pub struct Remote {
    shared: Arc<RemoteShared>,
    /// The generation of `shared` this handle is counted in.
    generation: u64,
}

impl Remote {
    /// A handle to the hub whose queue `shared` is (`Remote::current` is
    /// the public way, in `hub`).
    pub(crate) fn new(shared: Arc<RemoteShared>) -> Remote {
        let generation = shared.queue.lock().add_handle();
        Remote { shared, generation }
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
        let generation = self.shared.queue.lock().add_handle();
        Remote {
            shared: self.shared.clone(),
            generation,
        }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        {
            let mut q = self.shared.queue.lock();
            if q.generation == self.generation {
                q.handles -= 1;
            }
        }
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

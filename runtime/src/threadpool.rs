//! The thread pool: run blocking, `Send` work on OS threads and wait for it
//! cooperatively (gevent's `threadpool`, `get_hub().threadpool.spawn`).
//!
//! Some work cannot be made cooperative: a C library call that blocks (the
//! system resolver, `getaddrinfo`), a CPU-heavy computation, a blocking file
//! read. [`spawn`] hands such a closure to a process-wide pool of worker
//! threads and returns a [`ThreadResult`] at once; waiting on it parks only
//! the calling greenlet, so the hub keeps running the others.
//!
//! ```
//! use greenlet_runtime::threadpool;
//!
//! let job = threadpool::spawn(|| (1..=10u64).product::<u64>());
//! // ... other greenlets run while a worker thread computes ...
//! assert_eq!(job.get().unwrap(), 3_628_800);
//! ```
//!
//! # The rules
//!
//! - **Bounded.** At most [`max_threads`] workers run at once (default
//!   [`DEFAULT_MAX_THREADS`] = 10, see [`set_max_threads`]); more jobs queue
//!   in submission order. Idle workers exit after [`IDLE_TIMEOUT`].
//! - **Panics come back as values.** A panic in the closure is caught on the
//!   worker (the panic hook prints it as usual) and
//!   [`ThreadResult::get`] returns [`ThreadError::Panicked`].
//! - **Waits are interruptible.** A `Timeout` of the waiting greenlet ends
//!   the wait with [`ThreadError::Interrupted`]. A thread cannot be stopped
//!   from outside, so the job still runs to its end on its worker; if the
//!   `ThreadResult` was dropped meanwhile, its value is dropped there.
//! - **No false deadlock.** While a job of a hub is outstanding, that hub's
//!   main greenlet is not declared deadlocked (`LoopExit`): the job's end
//!   can still wake it.
//! - **`!Send` handle.** A `ThreadResult` belongs to the hub of the thread
//!   that spawned the job, whose greenlets it wakes.

use std::any::Any;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use slab::Slab;

use crate::greenlet::panic_message;
use crate::hub::Hub;
use crate::hub::TimerGuard;
use crate::interrupt::Interrupted;
use crate::park::park;
use crate::task::Waker;
use crate::timer::TimerAction;

/// The default bound on the number of worker threads (gevent's default).
pub const DEFAULT_MAX_THREADS: usize = 10;

/// How long a worker with nothing to do waits for a job before it exits.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

/// The process-wide pool: a job queue and the count of workers.
struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
}

struct PoolState {
    jobs: VecDeque<Job>,
    /// Live worker threads.
    threads: usize,
    /// Workers waiting for a job (not yet woken).
    idle: usize,
    max: usize,
}

static POOL: Pool = Pool {
    state: Mutex::new(PoolState {
        jobs: VecDeque::new(),
        threads: 0,
        idle: 0,
        max: DEFAULT_MAX_THREADS,
    }),
    work: Condvar::new(),
};

/// Sets the bound on the number of worker threads of the process-wide pool.
/// Workers above a lowered bound exit when they finish their current job.
///
/// # Errors
/// `InvalidInput` for 0 (the pool would never run anything).
pub fn set_max_threads(n: usize) -> io::Result<()> {
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the thread pool needs at least one thread (set_max_threads(0))",
        ));
    }
    POOL.state.lock().max = n;
    // Let idle workers above the new bound notice it.
    POOL.work.notify_all();
    Ok(())
}

/// The bound on the number of worker threads (default
/// [`DEFAULT_MAX_THREADS`]).
pub fn max_threads() -> usize {
    POOL.state.lock().max
}

/// In a forked child: no worker survived the fork, so forget them and the
/// jobs queued in the parent (the parent runs those).
pub(crate) fn after_fork() {
    // A worker may have held the lock at the fork; it does not exist here.
    if POOL.state.is_locked() {
        // SAFETY: only the forking thread exists in the child, so nobody
        // else can hold or be about to release this lock.
        unsafe { POOL.state.force_unlock() };
    }
    let mut st = POOL.state.lock();
    std::mem::forget(std::mem::take(&mut st.jobs));
    st.threads = 0;
    st.idle = 0;
}

/// Worker threads alive now (busy or idle), for diagnostics.
pub fn threads() -> usize {
    POOL.state.lock().threads
}

impl Pool {
    /// Queues `job`, starting a worker if none is idle and the bound allows.
    /// Gives the job back if no worker exists and none could be started.
    fn submit(&'static self, job: Job) -> Result<(), (Job, io::Error)> {
        let mut st = self.state.lock();
        st.jobs.push_back(job);
        if st.idle >= st.jobs.len() {
            self.work.notify_one();
            return Ok(());
        }
        if st.threads >= st.max {
            return Ok(()); // a busy worker takes it next
        }
        st.threads += 1;
        drop(st);
        let started = std::thread::Builder::new()
            .name("greenlet-threadpool".into())
            .spawn(move || self.work_loop());
        match started {
            Ok(_) => Ok(()),
            Err(e) => {
                let mut st = self.state.lock();
                st.threads -= 1;
                if st.threads == 0 {
                    // Nobody will ever run it: hand it back (it is the last
                    // one queued, or a later submitter already gave up too).
                    if let Some(job) = st.jobs.pop_back() {
                        return Err((job, e));
                    }
                }
                Ok(())
            }
        }
    }

    fn work_loop(&'static self) {
        let mut st = self.state.lock();
        loop {
            if st.threads > st.max {
                break;
            }
            if let Some(job) = st.jobs.pop_front() {
                drop(st);
                job(); // never unwinds: `spawn` wraps the closure in catch_unwind
                st = self.state.lock();
                continue;
            }
            st.idle += 1;
            let timed_out = self.work.wait_for(&mut st, IDLE_TIMEOUT).timed_out();
            st.idle -= 1;
            if timed_out && st.jobs.is_empty() {
                break;
            }
        }
        st.threads -= 1;
    }
}

thread_local! {
    /// Per hub thread: the waker of the greenlet waiting on each outstanding
    /// job (`None` while nobody waits). The key travels to the worker and
    /// back, so the hub side finds the waker without it crossing threads.
    static WAITERS: RefCell<Slab<Option<Waker>>> = const { RefCell::new(Slab::new()) };
}

/// What a finished job left behind.
enum Outcome<T> {
    Pending,
    Value(T),
    Panicked(Box<dyn Any + Send>),
    Failed(io::Error),
    Taken,
}

/// The part of a job shared between its worker and its `ThreadResult`.
struct Shared<T> {
    outcome: Mutex<Outcome<T>>,
}

/// Why [`ThreadResult::get`] gave no value.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ThreadError {
    /// The closure panicked on its worker thread; the payload is kept (see
    /// `greenlet_runtime::panic_message`).
    #[error("the thread-pool job panicked: {}", panic_message(.0.as_ref()))]
    Panicked(Box<dyn Any + Send>),
    /// The wait was interrupted (a `Timeout` of the waiting greenlet, or
    /// `LoopExit`). The job still runs to its end on its worker.
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
    /// No worker thread could be started, so the job never ran.
    #[error("the thread pool could not start a thread: {0}")]
    NoThread(io::Error),
    /// `try_get`: the job has not finished yet.
    #[error("the thread-pool job has not finished yet")]
    NotReady,
    /// `try_get`: the value was already taken.
    #[error("the value of this thread-pool job was already taken")]
    Taken,
}

impl fmt::Debug for ThreadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThreadError::Panicked(p) => f
                .debug_tuple("Panicked")
                .field(&panic_message(p.as_ref()))
                .finish(),
            ThreadError::Interrupted(i) => f.debug_tuple("Interrupted").field(i).finish(),
            ThreadError::NoThread(e) => f.debug_tuple("NoThread").field(e).finish(),
            ThreadError::NotReady => f.write_str("NotReady"),
            ThreadError::Taken => f.write_str("Taken"),
        }
    }
}

impl ThreadError {
    /// The interruption if this is [`ThreadError::Interrupted`].
    pub fn interrupted(&self) -> Option<&Interrupted> {
        match self {
            ThreadError::Interrupted(i) => Some(i),
            _ => None,
        }
    }
}

impl From<ThreadError> for io::Error {
    /// `Interrupted` converts as [`Interrupted`] does (so `Timeout::is`
    /// still recognises its error); a panic becomes `Other` with the panic
    /// message; `NoThread` keeps its `io::Error`.
    fn from(e: ThreadError) -> io::Error {
        match e {
            ThreadError::Interrupted(i) => i.into(),
            ThreadError::NoThread(e) => e,
            e => io::Error::other(e.to_string()),
        }
    }
}

/// The handle of a job running on the thread pool: wait for it and take its
/// value (gevent's `AsyncResult` from `threadpool.spawn`).
///
/// Waits park only the calling greenlet. Dropping the handle does not stop
/// the job; its value is then dropped on the worker thread. `!Send`: it
/// belongs to the hub of the thread that spawned the job.
pub struct ThreadResult<T> {
    shared: Arc<Shared<T>>,
    key: usize,
    _not_send: PhantomData<*const ()>,
}

impl<T> fmt::Debug for ThreadResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadResult")
            .field("ready", &self.ready())
            .finish()
    }
}

/// Runs `f` on a thread of the process-wide pool and returns a handle to
/// wait on cooperatively. Never blocks and never switches.
///
/// ```
/// use greenlet_runtime::{spawn, threadpool};
///
/// let ticker = spawn(|| "the hub kept running");
/// let job = threadpool::spawn(|| std::thread::current().name().map(String::from));
/// assert_eq!(job.get().unwrap().as_deref(), Some("greenlet-threadpool"));
/// assert_eq!(ticker.get().unwrap(), "the hub kept running");
/// ```
pub fn spawn<T, F>(f: F) -> ThreadResult<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let shared = Arc::new(Shared {
        outcome: Mutex::new(Outcome::Pending),
    });
    let key = WAITERS.with(|w| w.borrow_mut().insert(None));
    let remote = Hub::with(|hub| {
        hub.hold_keepalive();
        hub.remote_shared()
    });
    let job_shared = shared.clone();
    let job: Job = Box::new(move || {
        let outcome = match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(v) => Outcome::Value(v),
            Err(p) => Outcome::Panicked(p),
        };
        *job_shared.outcome.lock() = outcome;
        // The value (if nobody holds the handle any more) is dropped here,
        // on the worker.
        drop(job_shared);
        // Fails only if the hub's thread has exited: nobody to wake.
        let _ = remote.send(Box::new(move || finished(key)));
    });
    if let Err((job, e)) = POOL.submit(job) {
        drop(job);
        *shared.outcome.lock() = Outcome::Failed(e);
        finished(key);
    }
    ThreadResult {
        shared,
        key,
        _not_send: PhantomData,
    }
}

/// Runs on the hub's thread when job `key` has finished: wakes its waiter,
/// if any, and releases the hub's keepalive.
fn finished(key: usize) {
    let waker = WAITERS.with(|w| w.borrow_mut().try_remove(key)).flatten();
    Hub::try_with(Hub::release_keepalive);
    if let Some(w) = waker {
        w.wake();
    }
}

/// Clears this wait's (now stale) waker from the job's slot when the wait
/// ends, also by unwinding (kill). Only a stale waker is taken: once the job
/// finished, its key may already belong to another job with a live waiter.
struct WaitSlot(usize);

impl Drop for WaitSlot {
    fn drop(&mut self) {
        let stale = WAITERS
            .try_with(|w| {
                let mut w = w.borrow_mut();
                let slot = w.get_mut(self.0)?;
                if slot.as_ref().is_some_and(Waker::is_stale) {
                    slot.take()
                } else {
                    None
                }
            })
            .ok()
            .flatten();
        drop(stale);
    }
}

impl<T> ThreadResult<T> {
    /// True once the job has finished (returned or panicked).
    pub fn ready(&self) -> bool {
        !matches!(*self.shared.outcome.lock(), Outcome::Pending)
    }

    /// Waits until the job has finished.
    ///
    /// # Errors
    /// [`Interrupted`]: a timeout of this greenlet expired (the job goes on).
    pub fn wait(&self) -> Result<(), Interrupted> {
        self.wait_until(None).map(|_| ())
    }

    /// Waits up to `timeout` for the job to finish; `Ok(false)` if it has
    /// not by then.
    ///
    /// # Errors
    /// As [`ThreadResult::wait`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, Interrupted> {
        self.wait_until(crate::deadline::deadline_after(timeout))
    }

    fn wait_until(&self, deadline: Option<Instant>) -> Result<bool, Interrupted> {
        loop {
            if self.ready() {
                return Ok(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            let mut timer = TimerGuard::new();
            let _slot = WaitSlot(self.key);
            park(&"a thread-pool job", |w| {
                if let Some(d) = deadline {
                    timer.arm(d, TimerAction::Wake(w.clone()));
                }
                WAITERS.with(|ws| {
                    if let Some(slot) = ws.borrow_mut().get_mut(self.key) {
                        *slot = Some(w);
                    }
                });
            })?;
        }
    }

    /// Waits for the job and takes its value.
    ///
    /// # Errors
    /// [`ThreadError::Panicked`] if the closure panicked;
    /// [`ThreadError::Interrupted`] if the wait was interrupted (the job
    /// goes on and its value is dropped on the worker);
    /// [`ThreadError::NoThread`] if no worker could be started.
    pub fn get(self) -> Result<T, ThreadError> {
        self.wait()?;
        self.try_get()
    }

    /// Takes the value if the job has finished, without waiting.
    ///
    /// # Errors
    /// [`ThreadError::NotReady`] if it has not finished;
    /// [`ThreadError::Taken`] if the value was taken before; otherwise as
    /// [`ThreadResult::get`].
    pub fn try_get(&self) -> Result<T, ThreadError> {
        let mut outcome = self.shared.outcome.lock();
        match std::mem::replace(&mut *outcome, Outcome::Taken) {
            Outcome::Pending => {
                *outcome = Outcome::Pending;
                Err(ThreadError::NotReady)
            }
            Outcome::Value(v) => Ok(v),
            Outcome::Panicked(p) => Err(ThreadError::Panicked(p)),
            Outcome::Failed(e) => Err(ThreadError::NoThread(e)),
            Outcome::Taken => Err(ThreadError::Taken),
        }
    }
}

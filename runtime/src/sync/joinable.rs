//! [`JoinableQueue`]: a [`Queue`] that counts unfinished tasks, so a
//! producer can wait until every item put was processed (gevent's and
//! Python's `JoinableQueue`: `task_done`, `join`).

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::event::Event;
use super::queue::{Empty, PutError, Queue};
use crate::deadline::deadline_after;
use crate::interrupt::Interrupted;

/// `task_done` called more times than items were put.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("task_done() called more times than items were put")]
pub struct TaskDoneTooOften;

/// A queue whose consumers report each item done with
/// [`task_done`](JoinableQueue::task_done), and whose [`join`](JoinableQueue::join)
/// waits until every item put so far was reported. Cloning gives another
/// handle to the same queue.
///
/// ```
/// use greenlet_runtime::{spawn, sync::JoinableQueue};
///
/// let q = JoinableQueue::unbounded();
/// for _ in 0..3 {
///     let q = q.clone();
///     spawn(move || {
///         while let Ok(job) = q.get() {
///             let _ = job * 2; // the work
///             q.task_done().unwrap();
///         }
///     });
/// }
/// for job in 0..10 {
///     q.put(job).unwrap();
/// }
/// q.join().unwrap(); // every job was taken and done
/// assert_eq!(q.unfinished_tasks(), 0);
/// ```
pub struct JoinableQueue<T> {
    queue: Queue<T>,
    tasks: Rc<Tasks>,
}

struct Tasks {
    unfinished: Cell<usize>,
    /// Set while `unfinished` is zero.
    all_done: Event,
}

impl Tasks {
    fn finish_one(&self) {
        let left = self.unfinished.get() - 1;
        self.unfinished.set(left);
        if left == 0 {
            self.all_done.set();
        }
    }

    /// The count of a put whose item was never taken. A `task_done` may
    /// have spent it already (it is allowed while a put still waits: the
    /// count is taken early), so it is taken back only if still there.
    fn take_back(&self) {
        if self.unfinished.get() > 0 {
            self.finish_one();
        }
    }
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue {
            queue: self.queue.clone(),
            tasks: self.tasks.clone(),
        }
    }
}

impl<T> JoinableQueue<T> {
    /// A joinable queue without a size limit.
    pub fn unbounded() -> JoinableQueue<T> {
        JoinableQueue::wrap(Queue::unbounded())
    }

    /// A joinable queue holding at most `capacity` items.
    pub fn bounded(capacity: usize) -> JoinableQueue<T> {
        JoinableQueue::wrap(Queue::bounded(capacity))
    }

    fn wrap(queue: Queue<T>) -> JoinableQueue<T> {
        let all_done = Event::new();
        all_done.set();
        JoinableQueue {
            queue,
            tasks: Rc::new(Tasks {
                unfinished: Cell::new(0),
                all_done,
            }),
        }
    }

    /// Counts a task before its item can be taken: a getter may finish it
    /// before a waiting `put` even returns. A put that fails, or is killed
    /// while its item is still its own, takes its count back. `deadline`:
    /// `None` for a put that never waits (`try_put`), `Some(d)` for one
    /// that waits until `d` (`Some(None)`: for as long as it takes).
    fn put_counted(&self, item: T, deadline: Option<Option<Instant>>) -> Result<(), PutError<T>> {
        let t = &self.tasks;
        t.unfinished.set(t.unfinished.get() + 1);
        t.all_done.clear();
        let r = match deadline {
            None => self.queue.try_put(item),
            Some(d) => self
                .queue
                .put_until(item, d, "JoinableQueue::put", || t.take_back()),
        };
        if r.is_err() {
            t.take_back();
        }
        r
    }

    /// Puts `item` (one more unfinished task), waiting while the queue is
    /// full.
    ///
    /// # Errors
    /// As [`Queue::put`]; the task is not counted then.
    pub fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_counted(item, Some(None))
    }

    /// Puts `item`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// As [`Queue::put_timeout`]; the task is not counted then.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_counted(item, Some(deadline_after(timeout)))
    }

    /// Puts `item` if that needs no wait.
    ///
    /// # Errors
    /// As [`Queue::try_put`]; the task is not counted then.
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_counted(item, None)
    }

    /// Takes the front item, waiting for one (as [`Queue::get`]); call
    /// [`task_done`](JoinableQueue::task_done) when it is processed.
    ///
    /// # Errors
    /// As [`Queue::get`].
    pub fn get(&self) -> Result<T, Interrupted> {
        self.queue.get()
    }

    /// As [`Queue::get_timeout`].
    ///
    /// # Errors
    /// As [`Queue::get_timeout`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<Option<T>, Interrupted> {
        self.queue.get_timeout(timeout)
    }

    /// As [`Queue::try_get`].
    ///
    /// # Errors
    /// As [`Queue::try_get`].
    pub fn try_get(&self) -> Result<T, Empty> {
        self.queue.try_get()
    }

    /// Reports one taken item as processed; when none is left unfinished,
    /// `join` returns. Never switches.
    ///
    /// A put still waiting counts as put: it is counted before its item
    /// can be taken, so that a getter that takes the item straight from
    /// the putter can report it done before the put returns. (If that put
    /// then fails, the count it would take back is already spent, and
    /// stays at zero.)
    ///
    /// # Errors
    /// [`TaskDoneTooOften`] if every item put was already reported (nothing
    /// changes).
    pub fn task_done(&self) -> Result<(), TaskDoneTooOften> {
        if self.tasks.unfinished.get() == 0 {
            return Err(TaskDoneTooOften);
        }
        self.tasks.finish_one();
        Ok(())
    }

    /// Waits until every item put so far was reported done (returns at once
    /// if none is unfinished).
    ///
    /// # Errors
    /// [`Interrupted`] if the wait was interrupted.
    pub fn join(&self) -> Result<(), Interrupted> {
        self.tasks.all_done.wait()
    }

    /// Like [`JoinableQueue::join`], waiting at most `timeout`; `Ok(false)`
    /// if tasks were still unfinished then.
    ///
    /// # Errors
    /// As [`JoinableQueue::join`].
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, Interrupted> {
        self.tasks.all_done.wait_timeout(timeout)
    }

    /// Items put and not yet reported done.
    pub fn unfinished_tasks(&self) -> usize {
        self.tasks.unfinished.get()
    }

    /// Items in the queue now.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether the queue holds no item.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The underlying queue (its handle; puts made through it are not
    /// counted as tasks).
    pub fn queue(&self) -> &Queue<T> {
        &self.queue
    }
}

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinableQueue")
            .field("len", &self.len())
            .field("unfinished_tasks", &self.unfinished_tasks())
            .finish()
    }
}

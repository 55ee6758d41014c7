//! [`Group`] and [`Pool`]: managing many greenlets at once (gevent.pool,
//! eventlet's GreenPool).
//!
//! ```
//! use greenlet_runtime::{pool::Pool, sleep};
//! use std::time::Duration;
//!
//! let pool = Pool::new(3); // at most 3 run at once
//! let squares = pool
//!     .map(1..=5u64, |i| {
//!         sleep(Duration::from_millis(1)).unwrap();
//!         i * i
//!     })
//!     .unwrap();
//! assert_eq!(squares, [1, 4, 9, 16, 25]); // input order
//! ```
//!
//! [`GreenPile`] collects the results of greenlets spawned one by one, in
//! spawn order (eventlet's `GreenPile`).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::deadline::deadline_after;
use crate::greenlet::{Greenlet, GreenletError, GreenletExit, GreenletRef};
use crate::interrupt::Interrupted;
use crate::spawn::spawn;
use crate::sync::{Queue, Semaphore};

pub use crate::pile::GreenPile;

/// A set of greenlets to join or kill together (gevent's `Group`).
/// Members that died are dropped from it. Cloning gives another handle to
/// the same group.
#[derive(Clone, Default)]
pub struct Group {
    members: Rc<RefCell<Vec<GreenletRef>>>,
}

impl Group {
    /// An empty group.
    pub fn new() -> Group {
        Group::default()
    }

    /// Spawns `f` and adds it to the group.
    ///
    /// # Panics
    /// As [`crate::spawn`] (no stack could be allocated).
    #[track_caller]
    pub fn spawn<T: 'static>(&self, f: impl FnOnce() -> T + 'static) -> Greenlet<T> {
        let g = spawn(f);
        self.add(&g);
        g
    }

    /// Adds a greenlet (a dead one is not added).
    pub fn add(&self, g: &GreenletRef) {
        if g.dead() {
            return;
        }
        let mut m = self.members.borrow_mut();
        if !m.contains(g) {
            m.push(g.clone());
        }
        if m.len() >= 64 && m.len().is_power_of_two() {
            m.retain(|g| !g.dead());
        }
    }

    /// Removes a greenlet; `true` if it was a member.
    pub fn discard(&self, g: &GreenletRef) -> bool {
        let mut m = self.members.borrow_mut();
        let before = m.len();
        m.retain(|x| x != g);
        m.len() != before
    }

    /// Whether `g` is a live member.
    pub fn contains(&self, g: &GreenletRef) -> bool {
        self.members.borrow().iter().any(|x| x == g && !x.dead())
    }

    /// Number of live members.
    pub fn len(&self) -> usize {
        let mut m = self.members.borrow_mut();
        m.retain(|g| !g.dead());
        m.len()
    }

    /// Whether it has no live member.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The live members.
    pub fn greenlets(&self) -> Vec<GreenletRef> {
        let mut m = self.members.borrow_mut();
        m.retain(|g| !g.dead());
        m.clone()
    }

    /// Waits until every member is dead, including members added while
    /// waiting.
    ///
    /// # Errors
    /// [`Interrupted`] if the wait was interrupted.
    pub fn join(&self) -> Result<(), Interrupted> {
        while let Some(g) = self.first_live() {
            g.join()?;
        }
        Ok(())
    }

    /// Waits at most `timeout` for every member to die; `Ok(true)` if they
    /// all did.
    ///
    /// # Errors
    /// [`Interrupted`] if the wait was interrupted.
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool, Interrupted> {
        let deadline = deadline_after(timeout);
        while let Some(g) = self.first_live() {
            let Some(d) = deadline else {
                g.join()?;
                continue;
            };
            let left = d.saturating_duration_since(Instant::now());
            if !g.join_timeout(left)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn first_live(&self) -> Option<GreenletRef> {
        self.members.borrow().iter().find(|g| !g.dead()).cloned()
    }

    /// Kills every member and waits until they are dead (never-started ones
    /// never run), including members added meanwhile (by a dying member's
    /// cleanup, or a spawner given a freed slot), until the group is empty,
    /// as gevent's `Group.kill`. If the caller is a member, it is killed
    /// last, at its next wait.
    ///
    /// # Errors
    /// [`Interrupted`] if waiting was interrupted (every kill was made).
    pub fn kill(&self) -> Result<(), Interrupted> {
        let me = crate::greenlet::getcurrent();
        let mut kill_me = false;
        loop {
            let mut members = self.greenlets();
            if let Some(i) = members.iter().position(|g| *g == me) {
                members.swap_remove(i);
                kill_me = true;
            }
            if members.is_empty() {
                break;
            }
            crate::greenlet::killall(&members)?;
        }
        if kill_me {
            me.kill_nowait();
        }
        Ok(())
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group").field("len", &self.len()).finish()
    }
}

/// A permit of a pool slot, released when its greenlet ends — also when it
/// is killed before it ever ran (the closure holding it is dropped then).
struct Slot {
    slots: Semaphore,
    size: Rc<Size>,
}

/// The pool's size limit, shared by its handles and its slots.
struct Size {
    limit: Cell<usize>,
    /// Slots still to retire after `resize` shrank the pool below the number
    /// running: each one ending pays one instead of being released.
    debt: Cell<usize>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let debt = self.size.debt.get();
        if debt > 0 {
            self.size.debt.set(debt - 1);
        } else {
            self.slots.release();
        }
    }
}

/// A [`Group`] with a size limit (gevent's `Pool`, eventlet's `GreenPool`):
/// `spawn` waits while `size` members are running. Cloning gives another
/// handle to the same pool.
///
/// ```
/// use greenlet_runtime::{pool::Pool, sleep};
/// use std::time::Duration;
///
/// let pool = Pool::new(2);
/// let a = pool.spawn(|| sleep(Duration::from_millis(5))).unwrap();
/// let b = pool.spawn(|| sleep(Duration::from_millis(5))).unwrap();
/// assert!(pool.full()); // a third spawn would wait for a slot
/// let c = pool.spawn(|| "ran once a slot was free").unwrap();
/// assert_eq!(c.get().unwrap(), "ran once a slot was free");
/// assert!(a.dead() || b.dead());
/// pool.join().unwrap();
/// ```
#[derive(Clone)]
pub struct Pool {
    group: Group,
    slots: Semaphore,
    size: Rc<Size>,
}

impl Pool {
    /// A pool running at most `size` greenlets at once. (`Pool::new(0)` can
    /// never run anything: its `spawn` waits forever, which the hub reports
    /// as `Interrupted::LoopExit` when nothing else can happen.)
    pub fn new(size: usize) -> Pool {
        Pool {
            group: Group::new(),
            slots: Semaphore::new(size),
            size: Rc::new(Size {
                limit: Cell::new(size),
                debt: Cell::new(0),
            }),
        }
    }

    fn slot(&self) -> Slot {
        Slot {
            slots: self.slots.clone(),
            size: self.size.clone(),
        }
    }

    /// Changes the size limit (eventlet's `GreenPool.resize`). Growing frees
    /// slots at once (waiting spawners get them, in order). Shrinking kills
    /// nothing: free slots are withdrawn, and while more members run than
    /// the new size allows, each one that ends retires its slot instead of
    /// freeing it.
    ///
    /// ```
    /// use greenlet_runtime::pool::Pool;
    ///
    /// let pool = Pool::new(1);
    /// pool.resize(3);
    /// assert_eq!((pool.size(), pool.free_count()), (3, 3));
    /// pool.resize(0);
    /// assert!(pool.full());
    /// ```
    pub fn resize(&self, new_size: usize) {
        let s = &self.size;
        let old = s.limit.replace(new_size);
        if new_size >= old {
            let mut grow = new_size - old;
            // Cancel retirements still owed before adding free slots.
            let paid = grow.min(s.debt.get());
            s.debt.set(s.debt.get() - paid);
            grow -= paid;
            for _ in 0..grow {
                self.slots.release();
            }
        } else {
            let mut shrink = old - new_size;
            while shrink > 0 && self.slots.try_acquire() {
                shrink -= 1;
            }
            s.debt.set(s.debt.get() + shrink);
        }
    }

    /// Spawns `f` once a slot is free, waiting for one (slots are granted in
    /// the order the spawners began waiting).
    ///
    /// # Errors
    /// [`Interrupted`] if the wait for a slot was interrupted (nothing is
    /// spawned).
    ///
    /// # Panics
    /// As [`crate::spawn`] (no stack could be allocated).
    #[track_caller]
    pub fn spawn<T: 'static>(
        &self,
        f: impl FnOnce() -> T + 'static,
    ) -> Result<Greenlet<T>, Interrupted> {
        self.slots.acquire()?;
        let slot = self.slot();
        Ok(self.group.spawn(move || {
            let _slot = slot;
            f()
        }))
    }

    /// Like [`Pool::spawn`], with the name and stack size of `builder`.
    ///
    /// # Errors
    /// An interrupted wait for a slot (as an `io::Error`), or `builder`'s
    /// spawn error (e.g. an impossible stack size; the slot is then freed).
    #[track_caller]
    pub fn spawn_with<T: 'static>(
        &self,
        builder: crate::Builder,
        f: impl FnOnce() -> T + 'static,
    ) -> io::Result<Greenlet<T>> {
        self.slots.acquire()?;
        let slot = self.slot();
        let g = builder.spawn(move || {
            let _slot = slot;
            f()
        })?;
        self.group.add(&g);
        Ok(g)
    }

    /// The size limit.
    pub fn size(&self) -> usize {
        self.size.limit.get()
    }

    /// Free slots now.
    pub fn free_count(&self) -> usize {
        self.slots.available()
    }

    /// Whether `spawn` would wait.
    pub fn full(&self) -> bool {
        self.slots.locked()
    }

    /// Waits until a slot is free (without taking it).
    ///
    /// # Errors
    /// [`Interrupted`] if the wait was interrupted.
    pub fn wait_available(&self) -> Result<(), Interrupted> {
        self.slots.acquire()?;
        self.slots.release();
        Ok(())
    }

    /// The pool's members as a group.
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// Number of running members.
    pub fn len(&self) -> usize {
        self.group.len()
    }

    /// Whether no member runs.
    pub fn is_empty(&self) -> bool {
        self.group.is_empty()
    }

    /// Waits until every member is dead.
    ///
    /// # Errors
    /// [`Interrupted`] if the wait was interrupted.
    pub fn join(&self) -> Result<(), Interrupted> {
        self.group.join()
    }

    /// Kills every member and waits until they are dead.
    ///
    /// # Errors
    /// [`Interrupted`] if waiting was interrupted.
    pub fn kill(&self) -> Result<(), Interrupted> {
        self.group.kill()
    }

    /// Runs `f` on every item in the pool and returns the results in input
    /// order.
    ///
    /// # Errors
    /// The first failure in input order: `Panicked(payload)` if a task
    /// panicked, `Killed`, or `Interrupted` if this greenlet's wait was;
    /// the tasks still running are then killed.
    pub fn map<I, U, F>(
        &self,
        items: impl IntoIterator<Item = I>,
        f: F,
    ) -> Result<Vec<U>, GreenletError>
    where
        I: 'static,
        U: 'static,
        F: Fn(I) -> U + 'static,
    {
        let f = Rc::new(f);
        let mut tasks = Vec::new();
        for item in items {
            let f = f.clone();
            match self.spawn(move || f(item)) {
                Ok(g) => tasks.push(g),
                Err(e) => {
                    let _ = crate::greenlet::killall(&tasks);
                    return Err(e.into());
                }
            }
        }
        let mut out = Vec::with_capacity(tasks.len());
        let mut tasks = tasks.into_iter();
        while let Some(t) = tasks.next() {
            match t.get() {
                Ok(v) => out.push(v),
                Err(e) => {
                    let rest: Vec<_> = tasks.collect();
                    let _ = crate::greenlet::killall(&rest);
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Like [`Pool::map`], but lazily: yields each result in input order as
    /// soon as it (and those before it) are done. Tasks are spawned by a
    /// feeder greenlet as slots free up.
    pub fn imap<I, U, F>(&self, items: impl IntoIterator<Item = I> + 'static, f: F) -> Imap<U>
    where
        I: 'static,
        U: 'static,
        F: Fn(I) -> U + 'static,
    {
        let handles: Queue<Option<Result<Greenlet<U>, Interrupted>>> = Queue::unbounded();
        let pool = self.clone();
        let q = handles.clone();
        let f = Rc::new(f);
        let feeder = spawn(move || {
            for item in items {
                let f = f.clone();
                let r = pool.spawn(move || f(item));
                let stop = r.is_err();
                let _ = q.put(Some(r));
                if stop {
                    return;
                }
            }
            let _ = q.put(None);
        });
        Imap {
            handles,
            feeder,
            done: false,
        }
    }

    /// eventlet's `starmap`: like [`Pool::imap`], with each item a tuple of
    /// arguments spread over `f`'s parameters (`f(a, b)` for `(a, b)`;
    /// tuples of 1 to 6 elements).
    ///
    /// ```
    /// use greenlet_runtime::pool::Pool;
    ///
    /// let pool = Pool::new(4);
    /// let sums: Vec<i32> = pool
    ///     .starmap([(1, 2), (3, 4)], |a, b| a + b)
    ///     .collect::<Result<_, _>>()
    ///     .unwrap();
    /// assert_eq!(sums, [3, 7]);
    /// ```
    pub fn starmap<A, U, F>(&self, items: impl IntoIterator<Item = A> + 'static, f: F) -> Imap<U>
    where
        A: StarArgs<F, U> + 'static,
        U: 'static,
        F: 'static,
    {
        self.imap(items, move |args: A| args.apply(&f))
    }

    /// Like [`Pool::imap`], but yields results in completion order.
    pub fn imap_unordered<I, U, F>(
        &self,
        items: impl IntoIterator<Item = I> + 'static,
        f: F,
    ) -> ImapUnordered<U>
    where
        I: 'static,
        U: 'static,
        F: Fn(I) -> U + 'static,
    {
        let results: Queue<Unordered<U>> = Queue::unbounded();
        let pool = self.clone();
        let out = results.clone();
        let f = Rc::new(f);
        let feeder = spawn(move || {
            let mut started = 0;
            for item in items {
                let (f, q) = (f.clone(), out.clone());
                let spawned = pool.spawn(move || {
                    let r = match panic::catch_unwind(AssertUnwindSafe(|| f(item))) {
                        Ok(v) => Ok(v),
                        Err(p) if p.is::<GreenletExit>() => {
                            let _ = q.put(Unordered::Done(Err(GreenletError::Killed)));
                            panic::resume_unwind(p);
                        }
                        Err(p) => Err(GreenletError::Panicked(p)),
                    };
                    let _ = q.put(Unordered::Done(r));
                });
                started += 1;
                if let Err(e) = spawned {
                    let _ = out.put(Unordered::Done(Err(e.into())));
                    break;
                }
            }
            let _ = out.put(Unordered::Fed(started));
        });
        ImapUnordered {
            results,
            total: None,
            taken: 0,
            feeder,
        }
    }
}

/// A tuple of arguments that [`Pool::starmap`] spreads over a function's
/// parameters; implemented for tuples of 1 to 6 elements.
pub trait StarArgs<F, U> {
    /// Calls `f` with the elements as arguments.
    fn apply(self, f: &F) -> U;
}

macro_rules! star_args {
    ($($a:ident),+) => {
        impl<F, U, $($a),+> StarArgs<F, U> for ($($a,)+)
        where
            F: Fn($($a),+) -> U,
        {
            #[allow(non_snake_case)]
            fn apply(self, f: &F) -> U {
                let ($($a,)+) = self;
                f($($a),+)
            }
        }
    };
}

star_args!(A);
star_args!(A, B);
star_args!(A, B, C);
star_args!(A, B, C, D);
star_args!(A, B, C, D, E);
star_args!(A, B, C, D, E, G);

/// A message to [`ImapUnordered`]: a task's result, or the feeder's count
/// of tasks once it has started them all.
enum Unordered<U> {
    Done(Result<U, GreenletError>),
    Fed(usize),
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("size", &self.size())
            .field("running", &self.len())
            .field("free", &self.free_count())
            .finish()
    }
}

/// The iterator of [`Pool::imap`]: results in input order. Dropping it kills
/// the feeder (no more tasks are started); started tasks run on.
pub struct Imap<U> {
    handles: Queue<Option<Result<Greenlet<U>, Interrupted>>>,
    feeder: Greenlet<()>,
    done: bool,
}

impl<U: 'static> Iterator for Imap<U> {
    type Item = Result<U, GreenletError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = match self.handles.get() {
            Ok(n) => n,
            Err(e) => return Some(Err(e.into())),
        };
        match next {
            None => {
                self.done = true;
                None
            }
            Some(Err(e)) => {
                self.done = true;
                Some(Err(e.into()))
            }
            Some(Ok(g)) => Some(g.get()),
        }
    }
}

impl<U> Drop for Imap<U> {
    fn drop(&mut self) {
        self.feeder.kill_nowait();
    }
}

/// The iterator of [`Pool::imap_unordered`]: results in completion order.
/// Dropping it kills the feeder; started tasks run on.
pub struct ImapUnordered<U> {
    results: Queue<Unordered<U>>,
    /// Tasks started, once the feeder is done.
    total: Option<usize>,
    taken: usize,
    feeder: Greenlet<()>,
}

impl<U: 'static> Iterator for ImapUnordered<U> {
    type Item = Result<U, GreenletError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.total.is_some_and(|t| self.taken >= t) {
                return None;
            }
            match self.results.get() {
                Ok(Unordered::Done(r)) => {
                    self.taken += 1;
                    return Some(r);
                }
                Ok(Unordered::Fed(n)) => self.total = Some(n),
                Err(e) => return Some(Err(e.into())),
            }
        }
    }
}

impl<U> Drop for ImapUnordered<U> {
    fn drop(&mut self) {
        self.feeder.kill_nowait();
    }
}

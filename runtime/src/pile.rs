//! [`GreenPile`]: spawn many greenlets one by one, then iterate their results
//! in spawn order (eventlet's `GreenPile`). Re-exported from `pool`.

use std::collections::VecDeque;
use std::fmt;

use crate::greenlet::{Greenlet, GreenletError};
use crate::interrupt::Interrupted;
use crate::pool::Pool;

/// A pile of greenlets whose results come out in the order they were
/// spawned. Spawning goes through a [`Pool`], so at most its size run at
/// once; iterating waits for each result in turn.
///
/// ```
/// use greenlet_runtime::{pool::GreenPile, sleep};
/// use std::time::Duration;
///
/// let mut pile = GreenPile::new(10);
/// for ms in [30u64, 10, 20] {
///     pile.spawn(move || {
///         sleep(Duration::from_millis(ms)).unwrap();
///         ms
///     })
///     .unwrap();
/// }
/// let got: Vec<u64> = pile.map(Result::unwrap).collect();
/// assert_eq!(got, [30, 10, 20]); // spawn order, not completion order
/// ```
pub struct GreenPile<T> {
    pool: Pool,
    spawned: VecDeque<Greenlet<T>>,
}

impl<T: 'static> GreenPile<T> {
    /// A pile with its own pool of `size` slots.
    pub fn new(size: usize) -> GreenPile<T> {
        GreenPile::with_pool(Pool::new(size))
    }

    /// A pile that spawns through `pool` (shared with other users of it).
    pub fn with_pool(pool: Pool) -> GreenPile<T> {
        GreenPile {
            pool,
            spawned: VecDeque::new(),
        }
    }

    /// Spawns `f` in the pool (waiting for a free slot) and adds it to the
    /// pile.
    ///
    /// # Errors
    /// [`Interrupted`] if the wait for a slot was interrupted (nothing is
    /// spawned).
    #[track_caller]
    pub fn spawn(&mut self, f: impl FnOnce() -> T + 'static) -> Result<(), Interrupted> {
        let g = self.pool.spawn(f)?;
        self.spawned.push_back(g);
        Ok(())
    }

    /// Results not yet taken.
    pub fn len(&self) -> usize {
        self.spawned.len()
    }

    /// Whether every result was taken.
    pub fn is_empty(&self) -> bool {
        self.spawned.is_empty()
    }

    /// The pool the pile spawns through.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }
}

impl<T: 'static> Iterator for GreenPile<T> {
    type Item = Result<T, GreenletError>;

    /// Waits for the oldest greenlet not yet taken and returns its result
    /// (as `Greenlet::get`); `None` once every one spawned was taken. If the
    /// wait is interrupted, the greenlet stays in the pile and the next call
    /// waits for it again.
    fn next(&mut self) -> Option<Self::Item> {
        let front = self.spawned.front()?;
        if let Err(e) = front.join() {
            return Some(Err(e.into()));
        }
        self.spawned.pop_front().map(Greenlet::get)
    }
}

impl<T> fmt::Debug for GreenPile<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GreenPile")
            .field("pending", &self.spawned.len())
            .field("pool", &self.pool)
            .finish()
    }
}

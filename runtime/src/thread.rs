//! A hub per core: [`spawn_thread`] starts an OS thread with its own hub.
//!
//! Greenlets never move between threads; to use more cores, run a hub on
//! each and hand work between them with [`Remote`] (or give each its own
//! `SO_REUSEPORT` listener: `StreamServer::threads`).
//!
//! ```
//! use greenlet_runtime::hub::spawn_thread;
//! use greenlet_runtime::{sleep, spawn};
//! use std::time::Duration;
//!
//! let t = spawn_thread(|| {
//!     // A fresh hub: greenlets of this thread only.
//!     let g = spawn(|| {
//!         sleep(Duration::from_millis(1)).unwrap();
//!         21
//!     });
//!     g.get().unwrap() * 2
//! })
//! .unwrap();
//! assert_eq!(t.join().unwrap(), 42); // waits cooperatively
//! ```

use std::fmt;
use std::io;
use std::sync::mpsc;
use std::thread;

use crate::remote::Remote;
use crate::threadpool::{self, ThreadError};

/// An OS thread running its own hub, made by [`spawn_thread`].
pub struct HubThread<T> {
    handle: Option<thread::JoinHandle<T>>,
    remote: Remote,
}

/// Starts an OS thread that runs `f` on its own hub and returns a handle to
/// it. `f` runs as that thread's main greenlet; its hub is torn down (every
/// greenlet left there is unwound) when `f` returns.
///
/// Briefly blocks the caller while the thread starts (to hand back the new
/// hub's [`Remote`]).
///
/// # Errors
/// The error of `std::thread::Builder::spawn` (no thread could be made).
pub fn spawn_thread<T, F>(f: F) -> io::Result<HubThread<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    let handle = thread::Builder::new()
        .name("greenlet-hub".into())
        .spawn(move || {
            let _ = tx.send(Remote::current());
            f()
        })?;
    let remote = rx
        .recv()
        .map_err(|_| io::Error::other("the hub thread exited before it started its hub"))?;
    Ok(HubThread {
        handle: Some(handle),
        remote,
    })
}

impl<T: Send + 'static> HubThread<T> {
    /// A [`Remote`] of the thread's hub, to spawn work there.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// The thread.
    pub fn thread(&self) -> &thread::Thread {
        self.handle.as_ref().expect("not joined").thread()
    }

    /// Whether the thread has finished.
    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Waits for the thread to finish and returns what `f` returned. Parks
    /// only the calling greenlet (the blocking `join` runs on the thread
    /// pool).
    ///
    /// # Errors
    /// [`ThreadError::Panicked`] if `f` panicked; `Interrupted` if the wait
    /// was (the thread runs on, and is joined by the pool); `NoThread` if
    /// the pool could not start a thread.
    pub fn join(mut self) -> Result<T, ThreadError> {
        let handle = self.handle.take().expect("joined once");
        match threadpool::spawn(move || handle.join()).get()? {
            Ok(v) => Ok(v),
            Err(payload) => Err(ThreadError::Panicked(payload)),
        }
    }
}

impl<T> fmt::Debug for HubThread<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubThread")
            .field("thread", &self.handle.as_ref().map(|h| h.thread().id()))
            .finish()
    }
}

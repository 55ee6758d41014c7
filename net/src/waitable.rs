//! fd readiness for `greenlet::wait`/`iwait`: [`Readiness`], a
//! [`Waitable`] that is ready when an fd is ready for reading or writing,
//! so sockets can be waited on together with greenlets, events and async
//! results.
//!
//! ```
//! use greenlet_net::{Interest, Readiness, UnixStream};
//! use greenlet_runtime::sync::Event;
//! use greenlet_runtime::{iwait, spawn, Waitable};
//! use std::io::Write;
//! use std::os::fd::AsRawFd;
//!
//! let (a, b) = UnixStream::pair().unwrap();
//! let readable = Readiness::new(a.as_raw_fd(), Interest::Read).unwrap();
//! let stop = Event::new();
//! spawn(move || (&b).write_all(b"hi"));
//! let objects: [&dyn Waitable; 2] = [&stop, &readable];
//! let first = iwait(&objects, None).next().unwrap().unwrap();
//! assert_eq!(first, 1); // the socket, not the stop event
//! ```

use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;

use greenlet_runtime::{Interrupted, ReadyWait, Waitable};

use crate::wait::{wait, Interest, Watcher};

/// An fd's readiness for an [`Interest`], as a [`Waitable`] (gevent passes
/// an io watcher to `wait`/`iwait`). Cloning gives another handle to the
/// same watcher; like a [`Watcher`], one greenlet at a time waits on it.
#[derive(Clone)]
pub struct Readiness {
    watcher: Rc<Watcher>,
}

impl Readiness {
    /// Readiness of `fd` for `interest`.
    ///
    /// # Errors
    /// As [`Watcher::new`]: `EBADF` if `fd` is not open; OS errors.
    pub fn new(fd: RawFd, interest: Interest) -> io::Result<Readiness> {
        Ok(Readiness {
            watcher: Rc::new(Watcher::new(fd, interest)?),
        })
    }

    /// The watcher (for [`wait`] or [`cancel_wait`](crate::cancel_wait)).
    pub fn watcher(&self) -> &Watcher {
        &self.watcher
    }
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Readiness").field(&*self.watcher).finish()
    }
}

impl Waitable for Readiness {
    /// Unknown without a poll: `false` (the wait then finds out at once).
    fn is_ready(&self) -> bool {
        false
    }

    /// Waits as [`wait`] does. An error of the wait (the watcher cancelled,
    /// the fd closed) ends it too: the object is reported, and using the fd
    /// shows the error.
    fn ready_wait(&self) -> ReadyWait {
        let w = self.watcher.clone();
        Box::new(move || match wait(&w, None) {
            Err(e) => Interrupted::from_io(&e).map_or(Ok(()), Err),
            Ok(()) => Ok(()),
        })
    }
}

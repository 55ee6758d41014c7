//! [`select`]: `select(2)` that parks only the calling greenlet (eventlet's
//! `green.select.select`, gevent's `select.select`).

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::evented::is_own_timeout;
use crate::wait::{check_open, poll_now, FdWaker};

/// The fds of `fds` whose `revents` in `pfds` match `mask`.
fn matching(fds: &[RawFd], pfds: &[libc::pollfd], mask: i16) -> Vec<RawFd> {
    fds.iter()
        .copied()
        .filter(|fd| {
            pfds.iter()
                .any(|p| p.fd == *fd && p.revents & (mask | libc::POLLERR | libc::POLLHUP) != 0)
        })
        .collect()
}

/// Waits until at least one fd of `read_fds` is readable or one of
/// `write_fds` is writable, or `timeout` passes; returns the ready ones
/// (readable, writable), in the order given. On timeout both lists are
/// empty (not an error, as Python's `select`). A zero timeout only polls.
///
/// An fd at end of file, hung up or in error counts as ready (the next
/// operation on it tells what happened), as with `select(2)`.
///
/// ```
/// use greenlet_net::{select, UnixStream};
/// use std::io::Write;
/// use std::os::fd::AsRawFd;
/// use std::time::Duration;
///
/// let (a, mut b) = UnixStream::pair().unwrap();
/// let fd = a.as_raw_fd();
/// let (r, _) = select(&[fd], &[], Some(Duration::from_millis(10))).unwrap();
/// assert!(r.is_empty()); // nothing to read yet
/// b.write_all(b"x").unwrap();
/// let (r, w) = select(&[fd], &[fd], None).unwrap();
/// assert_eq!((r, w), (vec![fd], vec![fd]));
/// ```
///
/// # Errors
/// `EBADF` if an fd is not open; `InvalidInput` for no fds and no timeout
/// (it would wait forever); the `io::Error` of an interruption (a
/// `Timeout`).
pub fn select(
    read_fds: &[RawFd],
    write_fds: &[RawFd],
    timeout: Option<Duration>,
) -> io::Result<(Vec<RawFd>, Vec<RawFd>)> {
    let mut pfds: Vec<libc::pollfd> = Vec::with_capacity(read_fds.len() + write_fds.len());
    for (fds, ev) in [(read_fds, libc::POLLIN), (write_fds, libc::POLLOUT)] {
        for &fd in fds {
            match pfds.iter_mut().find(|p| p.fd == fd) {
                Some(p) => p.events |= ev,
                None => pfds.push(libc::pollfd {
                    fd,
                    events: ev,
                    revents: 0,
                }),
            }
        }
    }
    if pfds.is_empty() {
        return match timeout {
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "select with no fds and no timeout would wait forever",
            )),
            Some(t) => {
                greenlet_runtime::sleep(t)?;
                Ok((Vec::new(), Vec::new()))
            }
        };
    }
    let deadline = greenlet_runtime::deadline_within(timeout);
    let mut waker = None;
    loop {
        let n = poll_now(&mut pfds)?;
        check_open(&pfds)?;
        if n > 0 {
            let r = matching(read_fds, &pfds, libc::POLLIN);
            let w = matching(write_fds, &pfds, libc::POLLOUT);
            if !r.is_empty() || !w.is_empty() {
                return Ok((r, w));
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok((Vec::new(), Vec::new()));
        }
        if waker.is_none() {
            waker = Some(FdWaker::new(pfds.iter().map(|p| (p.fd, p.events)))?);
        }
        match waker.as_ref().map(|w| w.wait(deadline)) {
            Some(Err(e)) if is_own_timeout(&e) => return Ok((Vec::new(), Vec::new())),
            Some(Err(e)) => return Err(e),
            _ => {}
        }
    }
}

//! Direct `epoll` + `eventfd`: the reactor's system interface.
//!
//! One `epoll_wait` per poll and nothing else. (`polling::Poller::wait`,
//! which this replaced, arms a timerfd and re-arms its notifier with
//! `epoll_ctl` around every wait: about five syscalls, and with the hub's
//! zero-timeout polls under load a third of a greenlet hand-off's cost.)

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The `epoll_event.u64` of the notifier's eventfd; fd keys are smaller.
pub(crate) const NOTIFY_KEY: u64 = u64::MAX;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// An epoll instance.
pub(crate) struct Epoll {
    fd: OwnedFd,
}

/// Readiness reported for one key.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ready {
    pub(crate) key: u64,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// The read side is finished for good (peer's FIN: `EPOLLRDHUP`, or
    /// `EPOLLHUP`): reads never block again.
    pub(crate) read_closed: bool,
    /// Hung up (`EPOLLHUP`): writes never block again.
    pub(crate) write_closed: bool,
}

impl Epoll {
    pub(crate) fn new() -> io::Result<Epoll> {
        // SAFETY: plain syscall; the fd is owned by the result.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Epoll {
            // SAFETY: a fresh fd nobody else owns.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Registers `fd`, edge-triggered, for read and write readiness.
    pub(crate) fn add(&self, fd: RawFd, key: u64) -> io::Result<()> {
        let flags = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET;
        self.ctl(libc::EPOLL_CTL_ADD, fd, flags as u32, key)
    }

    /// Registers `fd`, edge-triggered, for read readiness only.
    fn add_read(&self, fd: RawFd, key: u64) -> io::Result<()> {
        self.ctl(
            libc::EPOLL_CTL_ADD,
            fd,
            (libc::EPOLLIN | libc::EPOLLET) as u32,
            key,
        )
    }

    pub(crate) fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, key: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: key };
        // SAFETY: a valid epoll fd and event struct; the kernel checks `fd`.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut ev) }).map(|_| ())
    }

    /// Waits up to `timeout` (`None`: forever; rounded up to milliseconds)
    /// and appends what is ready to `out`. `EINTR` returns with nothing.
    pub(crate) fn wait(
        &self,
        buf: &mut [libc::epoll_event],
        timeout: Option<Duration>,
        out: &mut Vec<Ready>,
    ) -> io::Result<()> {
        let ms = match timeout {
            None => -1,
            Some(d) if d.is_zero() => 0,
            // Round up: a timer must never fire early.
            Some(d) => d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int,
        };
        // SAFETY: `buf` is valid for `buf.len()` events.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len() as libc::c_int,
                ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(e)
            };
        }
        for ev in &buf[..n as usize] {
            let bits = ev.events as libc::c_int;
            let err = bits & (libc::EPOLLHUP | libc::EPOLLERR) != 0;
            out.push(Ready {
                key: ev.u64,
                readable: err || bits & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI) != 0,
                writable: err || bits & libc::EPOLLOUT != 0,
                read_closed: bits & (libc::EPOLLRDHUP | libc::EPOLLHUP) != 0,
                write_closed: bits & libc::EPOLLHUP != 0,
            });
        }
        Ok(())
    }
}

/// Wakes a hub's `epoll_wait` from any thread (an eventfd registered with
/// the key [`NOTIFY_KEY`]). Repeated notifications before the hub runs cost
/// one `write`.
pub(crate) struct Notifier {
    fd: OwnedFd,
    /// A write is outstanding; the hub clears it when it sees the event.
    pending: AtomicBool,
}

impl Notifier {
    /// An eventfd registered with `epoll`.
    pub(crate) fn new(epoll: &Epoll) -> io::Result<Notifier> {
        // SAFETY: plain syscall; the fd is owned by the result.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: a fresh fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        epoll.add_read(fd.as_raw_fd(), NOTIFY_KEY)?;
        Ok(Notifier {
            fd,
            pending: AtomicBool::new(false),
        })
    }

    /// Wakes the hub's poll (now, or its next one).
    ///
    /// # Errors
    /// The `write` error (not expected: the counter cannot overflow here).
    pub(crate) fn notify(&self) -> io::Result<()> {
        // SeqCst, as in `clear`: with the queue's flag this is a
        // store-then-load on each side, which weaker orderings let both
        // sides miss.
        if self.pending.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a valid u64 to our eventfd.
        let r = unsafe { libc::write(self.fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Called by the hub when the notifier's event arrived: re-arms it.
    /// Work queued by notifiers is found by the hub's own checks (queued
    /// flags, read after this), so a notify racing with this is never lost.
    ///
    /// The counter is read before `pending` is cleared: the other order let
    /// a notify between the two write, and the read then swallowed that
    /// write while `pending` stayed set, so no later notify ever wrote and
    /// the hub slept through every remote wake-up from then on (a hang
    /// seen about once in 30 runs of the thread-pool tests).
    pub(crate) fn clear(&self) {
        let mut v: u64 = 0;
        // SAFETY: reading 8 bytes into a valid u64 from our non-blocking
        // eventfd; EAGAIN (already drained) is fine.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
        self.pending.store(false, Ordering::SeqCst);
    }
}

//! Waiting for an fd from a hook: a [`Registration`] per fd, kept in this
//! thread's hub (not a new poller per wait), dropped by the `close` hook.
//!
//! # Staleness
//! A process-wide generation per fd number is bumped by every `close`,
//! `dup2` and `dup3` onto that number, in any thread (one atomic add: the
//! `close` hook stays async-signal-safe). A registration made under an
//! older generation is stale (its fd was closed, perhaps by another
//! thread, and the number reused) and is replaced on next use. Closes that
//! bypass the hooks (glibc-internal ones, raw `syscall(SYS_close)`,
//! `close_range`) are not seen.
//!
//! # Closing while a greenlet waits
//! The `close` hook fails the waiters (they return `EBADF`) and, instead of
//! closing the number, `dup3`s a placeholder over it: the socket is released
//! at once, but the number stays allocated until the last waiter has
//! dropped the registration, which deregisters and then closes it. So a
//! registration is never removed from epoll by a number that already names
//! another file.

use std::cell::{Cell, RefCell};
use std::ffi::c_int;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use greenlet_runtime::{defer_kill, Interrupted, Registration};

use crate::real;

/// Fd numbers below this get a kept registration; others wait with a
/// one-shot one (correct, slower).
const TABLE: usize = 1 << 16;

/// The generation of each fd number (256 KiB of zero pages until used).
static GEN: [AtomicU32; TABLE] = [const { AtomicU32::new(0) }; TABLE];

/// Which readiness to wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    Read,
    Write,
}

/// How a wait ended.
pub(crate) enum Woke {
    /// The fd may be ready: retry the operation (a wake may be spurious).
    Ready,
    /// The call's own deadline (`SO_RCVTIMEO`, a `poll` timeout) passed.
    Expired,
    /// Interrupted: fail the call with this errno (`ETIMEDOUT` for a
    /// `Timeout`, `ECANCELED` for a kill, `EBADF` for a close).
    Failed(c_int),
    /// The greenlet may not park here (the hub is shutting down, nothing
    /// could ever wake it, the thread unwinds): make the blocking call.
    Blocking,
}

struct Slot {
    reg: Registration,
    gen: u32,
    /// Closed by the `close` hook while greenlets waited: the last of them
    /// closes the number.
    closed: Cell<bool>,
}

thread_local! {
    /// This thread's kept registrations, by fd number.
    static SLOTS: RefCell<Vec<Option<Rc<Slot>>>> = const { RefCell::new(Vec::new()) };
    /// `SLOTS` was used on this thread: the `close` hook looks at it only
    /// then (so a thread that never waited touches no destructor-carrying
    /// thread-local from `close`).
    static HAS_SLOTS: Cell<bool> = const { Cell::new(false) };
}

fn generation(fd: usize) -> u32 {
    GEN[fd].load(Ordering::Acquire)
}

/// The `close`/`dup2` side: the number `fd` is about to name another file
/// (or none). Returns the slot this thread kept for it, if any.
fn retire(fd: RawFd) -> Option<Rc<Slot>> {
    let i = usize::try_from(fd).ok().filter(|&i| i < TABLE)?;
    GEN[i].fetch_add(1, Ordering::AcqRel);
    // In a fork child before `reinit`, the hub's epoll is the parent's:
    // deregistering would remove the parent's registrations.
    if !HAS_SLOTS.with(|h| h.get()) || real::FORKED.with(|f| f.get()) {
        return None;
    }
    SLOTS
        .try_with(|s| s.try_borrow_mut().ok()?.get_mut(i)?.take())
        .ok()
        .flatten()
}

/// The `close` hook's work; see the module docs.
pub(crate) fn close(fd: RawFd) -> c_int {
    // `select`/`wait_read` waits on it by number end too; not in a fork
    // child before `reinit` (a `Command` child must not allocate, and the
    // hub there is a copy).
    if !real::FORKED.with(|f| f.get()) {
        greenlet_net::closing_fd(fd);
    }
    if let Some(slot) = retire(fd) {
        if Rc::strong_count(&slot) > 1 {
            // Greenlets wait on it: they get EBADF; the last one closes.
            slot.closed.set(true);
            slot.reg.cancel_waiters();
            if let Some(p) = greenlet_net::closed_fd_placeholder().map(|p| p.as_raw_fd()) {
                // SAFETY: both fds are open; dup3 atomically makes `fd`
                // refer to the placeholder, releasing the socket.
                if unsafe { real::dup3(p, fd, libc::O_CLOEXEC) } == fd {
                    return 0;
                }
            }
            slot.closed.set(false);
        }
        drop(slot); // deregisters while `fd` still names the socket
    }
    // SAFETY: forwarding the caller's call.
    unsafe { real::close(fd) }
}

/// The `dup2`/`dup3` hooks' work on the target number.
pub(crate) fn replacing(newfd: RawFd) {
    if let Some(slot) = retire(newfd) {
        slot.reg.cancel_waiters();
    }
}

/// The kept registration of `fd`, made if needed; `None` when it cannot be
/// kept (a big fd number, an fd epoll refuses or that is already in this
/// hub's epoll through a `greenlet::net` socket).
fn slot(fd: RawFd) -> Option<Rc<Slot>> {
    let i = usize::try_from(fd).ok().filter(|&i| i < TABLE)?;
    let gen = generation(i);
    let (found, stale) = SLOTS
        .try_with(|s| {
            let mut s = s.try_borrow_mut().ok()?;
            if s.len() <= i {
                s.resize(i + 1, None);
            }
            match &s[i] {
                Some(slot) if slot.gen == gen => Some((Some(slot.clone()), None)),
                _ => Some((None, s[i].take())),
            }
        })
        .ok()
        .flatten()?;
    drop(stale); // outside the borrow: its drop may wake greenlets
    if found.is_some() {
        return found;
    }
    // SAFETY: the `close` hook drops this registration before the fd is
    // closed (or keeps the number allocated while it is in use); a close
    // that bypasses the hooks is caught by the generation check.
    let reg = unsafe { Registration::new(fd) }.ok()?;
    let slot = Rc::new(Slot {
        reg,
        gen,
        closed: Cell::new(false),
    });
    HAS_SLOTS.with(|h| h.set(true));
    SLOTS
        .try_with(|s| {
            if let Ok(mut s) = s.try_borrow_mut() {
                s[i] = Some(slot.clone());
            }
        })
        .ok()?;
    Some(slot)
}

/// Before the first park in a `fork` child: give the hub its own epoll.
fn before_park() {
    if real::FORKED.with(|f| f.replace(false)) {
        let _ = greenlet_runtime::process::reinit();
    }
}

/// The time left until `deadline`, or `None` if it passed.
pub(crate) fn remaining(deadline: Option<Instant>) -> Option<Option<Duration>> {
    match deadline {
        None => Some(None),
        Some(d) => d
            .checked_duration_since(Instant::now())
            .filter(|r| !r.is_zero())
            .map(Some),
    }
}

/// Parks the current greenlet until `fd` may be ready for `dir` (the
/// caller's try just returned `EAGAIN`), or `deadline`.
pub(crate) fn wait(fd: RawFd, dir: Dir, deadline: Option<Instant>) -> Woke {
    before_park();
    let Some(left) = remaining(deadline) else {
        return Woke::Expired;
    };
    let Some(slot) = slot(fd) else {
        return one_shot(fd, dir, left);
    };
    let r = defer_kill(|| match dir {
        Dir::Read => {
            slot.reg.clear_readable();
            slot.reg.wait_readable(left)
        }
        Dir::Write => {
            slot.reg.clear_writable();
            slot.reg.wait_writable(left)
        }
    });
    if slot.closed.get() && Rc::strong_count(&slot) == 1 {
        let fd = slot.reg.fd();
        drop(slot);
        // SAFETY: the `close` hook left this number to us (see module docs).
        unsafe { real::close(fd) };
    }
    match r {
        Ok(()) => Woke::Ready,
        // Another greenlet waits on the same fd and direction (two
        // accepting on one listener): wait on a one-shot registration.
        Err(e) if e.kind() == io::ErrorKind::ResourceBusy => one_shot(fd, dir, left),
        // Registered with a hub since replaced (`shutdown`): forget it.
        Err(e) if e.kind() == io::ErrorKind::NotConnected => {
            drop(SLOTS.try_with(|s| s.try_borrow_mut().ok().map(|mut s| s[fd as usize].take())));
            one_shot(fd, dir, left)
        }
        Err(e) => woke(&e),
    }
}

/// A wait without a kept registration (`greenlet::net::wait_read`'s).
fn one_shot(fd: RawFd, dir: Dir, left: Option<Duration>) -> Woke {
    let r = defer_kill(|| match dir {
        Dir::Read => greenlet_net::wait_read(fd, left),
        Dir::Write => greenlet_net::wait_write(fd, left),
    });
    match r {
        Ok(()) => Woke::Ready,
        Err(e) => woke(&e),
    }
}

/// Waits until one of `read`/`write` may be ready, or `deadline`.
pub(crate) fn wait_many(read: &[RawFd], write: &[RawFd], deadline: Option<Instant>) -> Woke {
    before_park();
    let Some(left) = remaining(deadline) else {
        return Woke::Expired;
    };
    if read.is_empty() && write.is_empty() {
        return match left {
            Some(d) => sleep(d),
            None => Woke::Blocking,
        };
    }
    match defer_kill(|| greenlet_net::select(read, write, left)) {
        Ok((r, w)) if r.is_empty() && w.is_empty() => Woke::Expired,
        Ok(_) => Woke::Ready,
        Err(e) => woke(&e),
    }
}

/// A greenlet sleep of `d`.
pub(crate) fn sleep(d: Duration) -> Woke {
    before_park();
    match defer_kill(|| greenlet_runtime::sleep(d)) {
        Ok(()) => Woke::Expired,
        Err(i) => interrupted(&i),
    }
}

/// What a failed wait means for the hooked call.
pub(crate) fn woke(e: &io::Error) -> Woke {
    match Interrupted::from_io(e) {
        Some(i) => interrupted(&i),
        None if e.kind() == io::ErrorKind::TimedOut => Woke::Expired,
        None => Woke::Failed(e.raw_os_error().unwrap_or(libc::EIO)),
    }
}

pub(crate) fn interrupted(i: &Interrupted) -> Woke {
    match i {
        Interrupted::Timeout(_) => Woke::Failed(libc::ETIMEDOUT),
        // A linked greenlet died: the runtime keeps the details for the
        // greenlet's next own blocking call.
        Interrupted::Killed | Interrupted::LinkedExited(_) => Woke::Failed(libc::ECANCELED),
        Interrupted::Cancelled => Woke::Failed(libc::EBADF),
        _ => Woke::Blocking,
    }
}

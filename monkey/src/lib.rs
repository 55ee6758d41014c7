//! Monkey patching for greenlet: unmodified blocking code (std's sockets
//! and `thread::sleep`, and the crates built on them, such as `ureq` or
//! `redis`) becomes cooperative inside greenlets, like gevent's
//! `monkey.patch_all()`.
//!
//! This crate defines functions named like libc's (`recv`, `send`,
//! `connect`, `accept4`, `poll`, `select`, `clock_nanosleep`,
//! `getaddrinfo`, ...). Linked into a program, they are what every call of
//! those names reaches: Rust std's, any crate's, a C library's. Each one
//! forwards to glibc's own function unless monkey patching is on *and* the
//! calling thread has a hub; then a call that would block parks the calling
//! greenlet on the hub instead of blocking the thread.
//!
//! Opt in twice, like gevent: at link time (naming this crate, or the
//! `monkey` feature of the `greenlet` facade, which names it), and at run
//! time with [`patch_all`] (or the narrower [`patch_socket`],
//! [`patch_select`], [`patch_sleep`], [`patch_dns`]). Before that, every
//! hook forwards to libc and nothing changes.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//!
//! greenlet_monkey::patch_all().unwrap();
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! // A plain std server in a greenlet; its accept and read park that
//! // greenlet, not the thread.
//! let server = greenlet_runtime::spawn(move || {
//!     let (mut s, _) = listener.accept().unwrap();
//!     let mut buf = [0u8; 5];
//!     s.read_exact(&mut buf).unwrap();
//!     s.write_all(&buf).unwrap();
//! });
//! let mut c = TcpStream::connect(addr).unwrap();
//! c.write_all(b"hello").unwrap();
//! let mut back = [0u8; 5];
//! c.read_exact(&mut back).unwrap();
//! assert_eq!(&back, b"hello");
//! server.join().unwrap();
//! ```
//!
//! # What becomes cooperative
//!
//! On a thread with a hub (in its main greenlet and in spawned ones):
//! - sockets: `recv`, `recvfrom`, `recvmsg`, `send`, `sendto`, `sendmsg`,
//!   `read`/`write`/`readv`/`writev` on sockets (other fds pass through),
//!   `connect`, `accept`, `accept4`;
//! - readiness waits: `poll`, `ppoll`, `select`, `pselect` (without a
//!   signal mask);
//! - sleeps: `nanosleep`, `clock_nanosleep`, `usleep`, `sleep`;
//! - name resolution: `getaddrinfo`, `getnameinfo`, on the thread pool.
//!
//! The user's view of an fd is kept exactly: its `O_NONBLOCK` flag is never
//! changed (calls are retried with `MSG_DONTWAIT`), a socket the user made
//! non-blocking still gets `EAGAIN` at once, a blocking one parks with its
//! `SO_RCVTIMEO`/`SO_SNDTIMEO` as the deadline (`EAGAIN` when it passes,
//! like the kernel), and errno is what the caller would have seen.
//!
//! Not covered (they block the thread as before): futex-based `std::sync`,
//! `JoinHandle::join`, `waitpid`, pipes and files, `epoll_wait`, fortified
//! C entry points (`__read_chk`, ...), and whatever glibc does internally
//! (the DNS sockets inside `getaddrinfo` run on the thread pool instead).
//! The blocking monitor (`greenlet_runtime::hub::monitor`) names a greenlet
//! that still blocks the hub.
//!
//! # Interruptions
//!
//! A `Timeout` or `kill` cannot unwind through a hooked call's C-ABI frame.
//! Inside one, a `Timeout` makes the call fail with `ETIMEDOUT` (so
//! `with_timeout(d, || stream.read(..))` reports `Elapsed`); a kill makes it
//! fail with `ECANCELED` and lands at the greenlet's next own blocking call
//! (see `greenlet_runtime::defer_kill`). A closed fd ends a wait on it with
//! `EBADF`.
//!
//! # Where it works
//!
//! Linux with glibc and dynamic linking. Elsewhere (musl, static linking,
//! macOS, ...) the crate builds without hooks and [`patch_all`] returns
//! [`MonkeyError::Unsupported`].
#![deny(missing_docs)]

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};

#[cfg(greenlet_hooks)]
mod dns;
#[cfg(greenlet_hooks)]
mod fdwait;
#[cfg(greenlet_hooks)]
mod gate;
#[cfg(greenlet_hooks)]
mod poll;
#[cfg(greenlet_hooks)]
mod real;
#[cfg(greenlet_hooks)]
mod sleep;
#[cfg(greenlet_hooks)]
mod sock;

/// Why monkey patching cannot be turned on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MonkeyError {
    /// This target has no hooks: they need Linux with glibc and dynamic
    /// linking. The string names what is missing.
    #[error("monkey patching is not supported on this target ({0}); it needs Linux with glibc and dynamic linking")]
    Unsupported(&'static str),
    /// The hooks are compiled in, but the process's `symbol` is not ours:
    /// calls reach libc directly (for example, this code lives in a shared
    /// library loaded after libc, or the program was linked in a way that
    /// dropped the hooks).
    #[error("the monkey hooks are not linked: `{symbol}` resolves to another definition than greenlet's; name the crate (`use greenlet_monkey as _;` or the `monkey` feature of `greenlet`) in the executable itself")]
    NotLinked {
        /// The libc name whose definition is not the hook.
        symbol: &'static str,
    },
}

/// What is patched: bits of [`PATCHED`].
pub(crate) const SOCKET: u32 = 1;
pub(crate) const SELECT: u32 = 2;
pub(crate) const SLEEP: u32 = 4;
pub(crate) const DNS: u32 = 8;
pub(crate) const ALL: u32 = SOCKET | SELECT | SLEEP | DNS;

/// The process-wide switches; read (relaxed) first by every hook.
pub(crate) static PATCHED: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// Depth of `unpatched` scopes on this thread. Const-initialised
    /// without a destructor: readable from any hook, at any time.
    pub(crate) static UNPATCHED: Cell<u32> = const { Cell::new(0) };
}

/// Turns on every hook: sockets, `poll`/`select`, sleeps and name
/// resolution (gevent's `monkey.patch_all()`). Process-wide and
/// idempotent; it also makes the calling thread's hub, so code in its main
/// greenlet is cooperative from here on.
///
/// # Errors
/// [`MonkeyError::Unsupported`] on a target without hooks;
/// [`MonkeyError::NotLinked`] if the hooks are not what the process calls.
/// Nothing is patched then.
pub fn patch_all() -> Result<(), MonkeyError> {
    patch(ALL)
}

/// Turns on the socket hooks only (`recv*`, `send*`, `read`/`write`/
/// `readv`/`writev` on sockets, `connect`, `accept`, `accept4`): gevent's
/// `patch_socket()`, eventlet's `wrap_socket_with_coroutine_socket()`.
///
/// # Errors
/// As [`patch_all`].
pub fn patch_socket() -> Result<(), MonkeyError> {
    patch(SOCKET)
}

/// Turns on the readiness hooks (`poll`, `ppoll`, `select`, `pselect`):
/// gevent's `patch_select()`, eventlet's
/// `wrap_select_with_coroutine_select()`.
///
/// # Errors
/// As [`patch_all`].
pub fn patch_select() -> Result<(), MonkeyError> {
    patch(SELECT)
}

/// Turns on the sleep hooks (`nanosleep`, `clock_nanosleep`, `usleep`,
/// `sleep`): `std::thread::sleep` becomes `greenlet::sleep` (gevent's
/// `patch_time()`).
///
/// # Errors
/// As [`patch_all`].
pub fn patch_sleep() -> Result<(), MonkeyError> {
    patch(SLEEP)
}

/// Turns on the resolver hooks: `getaddrinfo` and `getnameinfo` run on the
/// thread pool while the greenlet waits (gevent's `patch_dns()`).
///
/// # Errors
/// As [`patch_all`].
pub fn patch_dns() -> Result<(), MonkeyError> {
    patch(DNS)
}

/// Whether any hook is turned on (process-wide).
pub fn is_patched() -> bool {
    PATCHED.load(Ordering::Relaxed) != 0
}

/// Runs `f` with every hook off on this thread: for code that must really
/// block the thread (a handshake with another thread through a socket, a
/// precise sleep). Nests; other threads are not affected.
///
/// ```
/// greenlet_monkey::patch_all().unwrap();
/// let t0 = std::time::Instant::now();
/// // A real sleep of the thread, not a greenlet sleep.
/// greenlet_monkey::unpatched(|| std::thread::sleep(std::time::Duration::from_millis(5)));
/// assert!(t0.elapsed() >= std::time::Duration::from_millis(5));
/// ```
pub fn unpatched<R>(f: impl FnOnce() -> R) -> R {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            UNPATCHED.with(|u| u.set(u.get() - 1));
        }
    }
    UNPATCHED.with(|u| u.set(u.get() + 1));
    let _leave = Leave;
    f()
}

fn patch(what: u32) -> Result<(), MonkeyError> {
    check_hooks()?;
    // Make this thread's hub, so its main greenlet is cooperative too (the
    // hooks never create a hub themselves).
    drop(greenlet_runtime::getcurrent());
    PATCHED.fetch_or(what, Ordering::SeqCst);
    Ok(())
}

/// Checks that the hooks are compiled in and are what the process calls:
/// each hooked name, looked up the way the dynamic linker does, must be the
/// hook. [`patch_all`] checks this first.
///
/// # Errors
/// [`MonkeyError::Unsupported`] on a target without hooks;
/// [`MonkeyError::NotLinked`] naming the first symbol that is not ours.
pub fn check_hooks() -> Result<(), MonkeyError> {
    #[cfg(greenlet_hooks)]
    {
        real::check_hooks()
    }
    #[cfg(not(greenlet_hooks))]
    {
        Err(MonkeyError::Unsupported(unsupported_reason()))
    }
}

#[cfg(not(greenlet_hooks))]
fn unsupported_reason() -> &'static str {
    if cfg!(target_feature = "crt-static") {
        "statically linked"
    } else if cfg!(target_env = "musl") {
        "musl libc"
    } else if cfg!(target_os = "macos") {
        "macOS"
    } else {
        "not Linux with glibc"
    }
}

/// The hooks under their libc names, for `real::check_hooks`.
#[cfg(greenlet_hooks)]
mod hooks {
    pub(crate) use crate::dns::{getaddrinfo, getnameinfo};
    pub(crate) use crate::poll::{poll, ppoll, pselect, select};
    pub(crate) use crate::sleep::{clock_nanosleep, nanosleep, sleep, usleep};
    pub(crate) use crate::sock::{
        accept, accept4, close, connect, dup2, dup3, read, readv, recv, recvfrom, recvmsg, send,
        sendmsg, sendto, write, writev,
    };
}

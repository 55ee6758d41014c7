//! greenlet: gevent-style cooperative concurrency for Rust.
//!
//! Write plain blocking code — [`spawn`], [`sleep`], `read`, `write`, a
//! [`Timeout`] guard — and get the concurrency of an event loop without
//! `async`/`await`. Greenlets are stackful coroutines; every OS thread that
//! uses the library gets its own hub (scheduler, timers, I/O reactor).
//!
//! ```
//! use greenlet::{spawn, sleep};
//! use std::time::Duration;
//!
//! let workers: Vec<_> = (0..3)
//!     .map(|i| spawn(move || {
//!         sleep(Duration::from_millis(10 * (3 - i))).unwrap();
//!         i * 10
//!     }))
//!     .collect();
//! let results: Vec<u64> = workers.into_iter().map(|g| g.get().unwrap()).collect();
//! assert_eq!(results, [0, 10, 20]);
//! ```
//!
//! Modules: [`hub`] (remote handles, introspection), [`timeout`],
//! [`eventlet`] (eventlet's names), [`net`] (cooperative sockets),
//! [`threadpool`].
#![deny(missing_docs)]

pub use greenlet_runtime::{
    add_spawn_callback, getcurrent, idle, iwait, joinall, killall, panic_message, park,
    remove_spawn_callback, run_info, sleep, spawn, spawn_later, spawn_link, spawn_link_exception,
    spawn_link_value, spawn_raw, wait, yield_now, BlockedForever, Builder, Ended, Greenlet,
    GreenletError, GreenletExit, GreenletInfo, GreenletRef, GreenletState, Interrupted, Iwait,
    LinkId, LinkedExited, ReadyWait, SpawnCallbackId, TimeoutId, Waitable, Waker,
};

pub use greenlet_runtime::process::{fork, reinit, shutdown, Fork};

/// The hub of the current thread: [`hub::Remote`] for other threads,
/// [`hub::run_info`], counters and the reactor registration type.
pub mod hub {
    pub use greenlet_runtime::hub::{
        default_stack_size, exists, monitor, run_info, set_default_stack_size, set_max_stacks,
        set_stack_guard, spawn_thread, stack_guard, stats, trim_stacks, GreenletInfo, HubStats,
        HubThread, Remote, RemoteError, POLL_EVERY,
    };
    pub use greenlet_runtime::{
        Registration, StackGuard, DECAY_INTERVAL, DEFAULT_STACK_SIZE, MIN_STACK_SIZE, WARM_STACKS,
    };
}

pub use greenlet_timeout::{with_timeout, with_timeout_or, Timeout};

/// Synchronisation between greenlets: `Event`, `AsyncResult`, `Queue`,
/// `JoinableQueue`, `Channel`, `Semaphore`, `BoundedSemaphore` (with
/// `SemaphoreGuard`), `Lock`, `RLock`.
pub mod sync {
    pub use greenlet_runtime::sync::*;
}

/// Signal handlers that run as greenlets (gevent's `signal_handler`).
pub mod signal {
    pub use greenlet_runtime::signal::*;
    /// Common signal numbers, so callers need not depend on `libc`.
    pub use libc::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
}

/// Groups and size-limited pools of greenlets: `Group`, `Pool`,
/// `GreenPile`.
pub mod pool {
    pub use greenlet_runtime::pool::*;
}

/// Timeouts: scoped guards that interrupt the waits of the greenlet that
/// started them. See the crate docs of `greenlet-timeout` for the rules.
pub mod timeout {
    pub use greenlet_timeout::*;
}

/// Cooperative sockets: `std::net` and `std::os::unix::net` whose blocking
/// calls park the calling greenlet, plus `wait_read`/`Watcher`/`select`,
/// DNS on the thread pool and `create_connection`. See the crate docs of
/// `greenlet-net`.
pub mod net {
    pub use greenlet_net::*;
}

/// The thread pool: blocking `Send` work on OS threads, waited on
/// cooperatively (`threadpool::spawn(f).get()`).
pub mod threadpool {
    pub use greenlet_runtime::threadpool::*;
}

/// Monkey patching (feature `monkey`): unmodified blocking code — std's
/// sockets and `thread::sleep`, and the crates built on them (`ureq`,
/// `redis`, ...) — becomes cooperative inside greenlets once
/// [`monkey::patch_all`] was called, like gevent's `monkey.patch_all()`.
///
/// Linux with glibc and dynamic linking only; elsewhere `patch_all`
/// returns [`monkey::MonkeyError::Unsupported`]. What is and is not
/// covered, and how interruptions are delivered: see the `greenlet-monkey`
/// crate docs and `docs/monkey.md`.
///
/// ```
/// use std::io::{Read, Write};
///
/// greenlet::monkey::patch_all().unwrap();
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let addr = listener.local_addr().unwrap();
/// let server = greenlet::spawn(move || {
///     let (mut s, _) = listener.accept().unwrap(); // parks this greenlet
///     s.write_all(b"hi").unwrap();
/// });
/// let mut c = std::net::TcpStream::connect(addr).unwrap();
/// let mut buf = String::new();
/// c.read_to_string(&mut buf).unwrap(); // parks the main greenlet
/// assert_eq!(buf, "hi");
/// server.join().unwrap();
/// ```
#[cfg(feature = "monkey")]
pub mod monkey {
    pub use greenlet_monkey::*;
}

/// eventlet's names for greenlet's functions, for code ported from eventlet.
/// Each is a thin alias, documented with what it maps to.
pub mod eventlet {
    use std::time::Duration;

    pub use greenlet_runtime::{sleep, spawn};

    /// eventlet's `exc_after(seconds, exc)`: a started timeout for the
    /// current greenlet (alias of [`Timeout::start_new`](crate::Timeout::start_new)).
    /// Keep the guard alive for as long as it should apply.
    pub fn exc_after(duration: Duration) -> crate::Timeout {
        crate::Timeout::start_new(duration)
    }

    /// eventlet's `call_after(seconds, f)`: runs `f` in a new greenlet after
    /// `delay` (built on [`spawn_later`](crate::spawn_later)); the returned
    /// [`CallAfter`] cancels it if it has not started yet.
    ///
    /// ```
    /// use greenlet::eventlet::call_after;
    /// use std::time::Duration;
    ///
    /// let late = call_after(Duration::from_secs(60), || println!("never"));
    /// assert!(late.cancel());
    /// let soon = call_after(Duration::from_millis(1), || ());
    /// soon.wait().unwrap();
    /// assert!(!soon.cancel(), "already ran");
    /// ```
    #[track_caller]
    pub fn call_after(delay: Duration, f: impl FnOnce() + 'static) -> CallAfter {
        CallAfter {
            g: crate::spawn_later(delay, f),
        }
    }

    /// eventlet's `listen(addr)` / `tcp_listener(addr)`: a cooperative
    /// listening socket (alias of [`TcpListener::bind`](crate::net::TcpListener::bind)).
    ///
    /// # Errors
    /// The error of resolving or binding `addr`.
    pub fn tcp_listener(
        addr: impl greenlet_net::ToSocketAddrs,
    ) -> std::io::Result<greenlet_net::TcpListener> {
        greenlet_net::TcpListener::bind(addr)
    }

    /// eventlet's `connect(addr)` / `connect_tcp(addr)`: a cooperative
    /// connected socket (alias of [`TcpStream::connect`](crate::net::TcpStream::connect)).
    ///
    /// # Errors
    /// The error of resolving or connecting to `addr`.
    pub fn connect_tcp(
        addr: impl greenlet_net::ToSocketAddrs,
    ) -> std::io::Result<greenlet_net::TcpStream> {
        greenlet_net::TcpStream::connect(addr)
    }

    /// eventlet's `ssl_listener(address, certificate, private_key)`: a TLS
    /// listener from PEM files (alias of `net::tls::listener`; feature
    /// `tls`).
    ///
    /// # Errors
    /// Bad certificate or key files (the message names the file), or the
    /// error of binding `addr`.
    #[cfg(feature = "tls")]
    pub fn ssl_listener(
        addr: impl greenlet_net::ToSocketAddrs,
        certfile: impl AsRef<std::path::Path>,
        keyfile: impl AsRef<std::path::Path>,
    ) -> std::io::Result<greenlet_net::tls::TlsListener> {
        greenlet_net::tls::listener(addr, certfile, keyfile)
    }

    /// eventlet's `wrap_socket_with_coroutine_socket()`: std's sockets
    /// (and every crate's) become cooperative (alias of
    /// [`monkey::patch_socket`](crate::monkey::patch_socket); feature
    /// `monkey`).
    ///
    /// # Errors
    /// As [`monkey::patch_all`](crate::monkey::patch_all).
    #[cfg(feature = "monkey")]
    pub fn wrap_socket_with_coroutine_socket() -> Result<(), crate::monkey::MonkeyError> {
        crate::monkey::patch_socket()
    }

    /// eventlet's `wrap_select_with_coroutine_select()`: `poll`/`select`
    /// become cooperative (alias of
    /// [`monkey::patch_select`](crate::monkey::patch_select); feature
    /// `monkey`).
    ///
    /// # Errors
    /// As [`monkey::patch_all`](crate::monkey::patch_all).
    #[cfg(feature = "monkey")]
    pub fn wrap_select_with_coroutine_select() -> Result<(), crate::monkey::MonkeyError> {
        crate::monkey::patch_select()
    }

    /// A pending [`call_after`].
    #[derive(Debug)]
    pub struct CallAfter {
        g: crate::Greenlet<()>,
    }

    impl CallAfter {
        /// Cancels the call if it has not started; `true` if it was
        /// cancelled (then it never runs). A call already running or done
        /// is left alone.
        pub fn cancel(&self) -> bool {
            if self.g.state() == crate::GreenletState::NotStarted {
                self.g.kill_nowait();
                true
            } else {
                false
            }
        }

        /// Whether the call is still waiting for its time.
        pub fn pending(&self) -> bool {
            self.g.state() == crate::GreenletState::NotStarted
        }

        /// Waits until the call has run (or was cancelled).
        ///
        /// # Errors
        /// [`Interrupted`](crate::Interrupted) if the wait was interrupted.
        pub fn wait(&self) -> Result<(), crate::Interrupted> {
            self.g.join()
        }
    }
}

/// The README's example, compiled and run as a doctest so it never rots.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;

/// The guide (`docs/*.md`): every `rust` block there is compiled and run as
/// a doctest, so the guide never rots either. `tests/docs_check.rs` checks
/// that each file of `docs/` is listed here.
#[cfg(doctest)]
pub mod docs {
    /// docs/guide.md
    #[doc = include_str!("../docs/guide.md")]
    pub struct Guide;
    /// docs/porting.md
    #[doc = include_str!("../docs/porting.md")]
    pub struct Porting;
    /// docs/timeouts.md
    #[doc = include_str!("../docs/timeouts.md")]
    pub struct Timeouts;
    /// docs/sockets.md
    #[doc = include_str!("../docs/sockets.md")]
    pub struct Sockets;
    /// docs/tls.md: only with the `tls` feature, which its example needs.
    #[cfg(feature = "tls")]
    #[doc = include_str!("../docs/tls.md")]
    pub struct Tls;
    /// docs/monkey.md: only with the `monkey` feature, which its examples
    /// need.
    #[cfg(feature = "monkey")]
    #[doc = include_str!("../docs/monkey.md")]
    pub struct Monkey;
    /// docs/performance.md
    #[doc = include_str!("../docs/performance.md")]
    pub struct Performance;
    /// docs/design.md
    #[doc = include_str!("../docs/design.md")]
    pub struct Design;
    /// docs/valgrind.md
    #[doc = include_str!("../docs/valgrind.md")]
    pub struct Valgrind;
}

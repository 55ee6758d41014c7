//! The runtime of greenlet: one hub per OS thread, stackful greenlets,
//! park/wake, timers, a reactor, and the few cross-thread entry points.
//!
//! Most users want the facade crate `greenlet`, which re-exports this crate
//! at its root. This crate is what the others build on:
//!
//! - [`spawn`], [`Builder`], [`Greenlet`], [`GreenletRef`]: greenlets and
//!   their handles (join, get, kill, links);
//! - [`park`](park()) and [`Waker`]: the one blocking primitive every wait is built
//!   on (sync primitives, sockets, timers, joins);
//! - [`Interrupted`]: why a wait ended early (timeout, cancel, deadlock, a
//!   linked greenlet's death: [`spawn_link`], [`LinkedExited`]);
//! - [`wait`], [`iwait`], [`idle`]: waiting on many [`Waitable`]s at once,
//!   and until the hub has nothing else to run;
//! - [`Registration`]: an fd on the hub's reactor, for cooperative I/O;
//! - [`hub`]: [`hub::Remote`], [`run_info`] and hub counters;
//! - [`threadpool`]: blocking `Send` work on OS threads, waited on
//!   cooperatively;
//! - [`timeout_hook`]: the hook the timeout crate is built on.
//!
//! # The model
//!
//! Each OS thread that uses greenlet gets a hub, created on first use. The
//! thread's own code is the *main greenlet*. [`spawn`] never switches: the
//! new greenlet runs when the current one blocks (in a [`park`](park()): `sleep`,
//! `join`, a socket read, ...) or yields. Greenlets start in spawn order.
//! When the main greenlet blocks, the hub loop runs on the thread's own
//! stack until the main greenlet is woken.
//!
//! ```
//! use greenlet_runtime::{spawn, sleep, yield_now};
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use std::time::Duration;
//!
//! let log = Rc::new(RefCell::new(Vec::new()));
//! let l = log.clone();
//! let g = spawn(move || {
//!     l.borrow_mut().push("child runs");
//!     sleep(Duration::from_millis(1)).unwrap();
//!     l.borrow_mut().push("child done");
//! });
//! log.borrow_mut().push("spawn returned");
//! g.join().unwrap();
//! assert_eq!(*log.borrow(), ["spawn returned", "child runs", "child done"]);
//! # yield_now();
//! ```
#![deny(missing_docs)]

// Greenlet is built on Unix primitives (signals, `mmap`'d stacks, `fork`,
// readiness polling on file descriptors). Elsewhere the crate is this one
// error: everything below is `#[cfg(unix)]`, so a Windows user reads one
// sentence, not a page of missing `libc` items. (Item by item, not through
// a macro: rustfmt does not follow `mod` items inside a macro call, and the
// modules' files went unformatted and unchecked by `cargo fmt`.)
#[cfg(not(unix))]
compile_error!(
    "greenlet supports Unix systems only (Linux, macOS, FreeBSD; see the README's \"Platforms\" section)"
);

#[cfg(unix)]
mod deadline;
#[cfg(target_os = "linux")]
mod epoll;
#[cfg(unix)]
mod greenlet;
#[cfg(unix)]
mod interrupt;
#[cfg(unix)]
mod link;
#[cfg(unix)]
mod monitor;
#[cfg(unix)]
mod park;
#[cfg(unix)]
mod pile;
#[cfg(unix)]
mod reactor;
#[cfg(unix)]
mod registration;
#[cfg(unix)]
mod remote;
#[cfg(unix)]
mod sigaction;
#[cfg(unix)]
mod sleep;
#[cfg(unix)]
mod spawn;
#[cfg(unix)]
mod spawn_hooks;
#[cfg(unix)]
mod stack;
#[cfg(unix)]
mod task;
#[cfg(all(unix, test))]
mod testing;
#[cfg(unix)]
mod thread;
#[cfg(unix)]
mod timer;
#[cfg(unix)]
mod wait;

#[cfg(unix)]
pub mod timeout_hook;

#[cfg(unix)]
pub mod pool;
#[cfg(unix)]
pub mod process;
#[cfg(unix)]
pub mod signal;
#[cfg(unix)]
pub mod sync;

/// The hub of the current thread: remote handles, introspection, counters.
#[cfg(unix)]
pub mod hub;

#[cfg(unix)]
pub mod threadpool;

#[cfg(unix)]
pub use deadline::{deadline_after, deadline_within};
#[cfg(unix)]
pub use greenlet::{
    getcurrent, joinall, killall, panic_message, Greenlet, GreenletError, GreenletExit,
    GreenletRef, GreenletState, LinkId,
};
#[cfg(unix)]
pub use hub::{run_info, GreenletInfo};
#[cfg(unix)]
pub use interrupt::{BlockedForever, Ended, Interrupted, LinkedExited, TimeoutId};
#[cfg(unix)]
pub use link::{spawn_link, spawn_link_exception, spawn_link_value};
#[cfg(unix)]
pub use park::{defer_kill, park, Waker};
#[cfg(unix)]
pub use registration::{Direction, Registration};
#[cfg(unix)]
pub use sleep::{idle, sleep, yield_now};
#[cfg(unix)]
pub use spawn::{spawn, spawn_later, spawn_raw, Builder};
#[cfg(unix)]
pub use spawn_hooks::{add_spawn_callback, remove_spawn_callback, SpawnCallbackId};
#[cfg(unix)]
pub use stack::{StackGuard, DECAY_INTERVAL, DEFAULT_STACK_SIZE, MIN_STACK_SIZE, WARM_STACKS};
#[cfg(unix)]
pub use wait::{iwait, wait, Iwait, ReadyWait, Waitable};

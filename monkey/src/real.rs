//! glibc's own functions behind the hooks, found once with
//! `dlsym(RTLD_NEXT, ..)` by a constructor that runs before `main`, and the
//! check that the hooks are what the process calls.
//!
//! A hook never calls `dlsym` late (from a signal handler or during
//! thread-local teardown, where it may take locks or allocate), with one
//! exception: a hook called before the constructor ran (by another
//! library's constructor) resolves its original then, in that early and
//! single-threaded context.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_uint, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

use libc::{
    addrinfo, clockid_t, fd_set, iovec, msghdr, nfds_t, pollfd, sigset_t, size_t, sockaddr,
    socklen_t, ssize_t, timespec, timeval,
};

use crate::MonkeyError;

macro_rules! originals {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy)]
        enum Sym { $($name,)* }

        /// The hooked names, NUL-terminated, in `Sym` order.
        const NAMES: &[&str] = &[$(concat!(stringify!($name), "\0"),)*];

        /// Each original's address; 0 until resolved.
        static ADDRS: [AtomicUsize; NAMES.len()] = [const { AtomicUsize::new(0) }; NAMES.len()];

        $(
            /// glibc's own function of this name.
            #[inline]
            pub(crate) unsafe fn $name($($arg: $ty),*) -> $ret {
                type F = unsafe extern "C" fn($($ty),*) -> $ret;
                /// Before the constructor ran: resolve, then call. Out of
                /// line and reached by a tail call, so the hooks' usual
                /// path saves no registers for it.
                #[cold]
                #[inline(never)]
                unsafe fn first($($arg: $ty),*) -> $ret {
                    // SAFETY: the address of glibc's function of this name.
                    unsafe {
                        let f = std::mem::transmute::<usize, F>(resolve(Sym::$name as usize));
                        f($($arg),*)
                    }
                }
                match ADDRS[Sym::$name as usize].load(Ordering::Relaxed) {
                    // SAFETY: the caller's contract, passed on.
                    0 => unsafe { first($($arg),*) },
                    // SAFETY: `a` is the address of glibc's function of
                    // this very name, whose C signature this is.
                    a => unsafe { std::mem::transmute::<usize, F>(a)($($arg),*) },
                }
            }
        )*

        /// The hooks' own addresses, to compare with what the dynamic
        /// linker finds for each name.
        fn hook_addresses() -> [usize; NAMES.len()] {
            [$(crate::hooks::$name as unsafe extern "C" fn($($ty),*) -> $ret as usize,)*]
        }
    };
}

originals! {
    recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t;
    recvfrom(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> ssize_t;
    recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t;
    send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t;
    sendto(fd: c_int, buf: *const c_void, n: size_t, flags: c_int, addr: *const sockaddr, len: socklen_t) -> ssize_t;
    sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t;
    read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t;
    write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t;
    readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t;
    writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t;
    connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int;
    accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int;
    accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int;
    poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int;
    ppoll(fds: *mut pollfd, n: nfds_t, timeout: *const timespec, mask: *const sigset_t) -> c_int;
    select(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, timeout: *mut timeval) -> c_int;
    pselect(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, timeout: *const timespec, mask: *const sigset_t) -> c_int;
    nanosleep(req: *const timespec, rem: *mut timespec) -> c_int;
    clock_nanosleep(clock: clockid_t, flags: c_int, req: *const timespec, rem: *mut timespec) -> c_int;
    usleep(usec: c_uint) -> c_int;
    sleep(secs: c_uint) -> c_uint;
    getaddrinfo(node: *const c_char, service: *const c_char, hints: *const addrinfo, res: *mut *mut addrinfo) -> c_int;
    getnameinfo(addr: *const sockaddr, len: socklen_t, host: *mut c_char, hostlen: socklen_t, serv: *mut c_char, servlen: socklen_t, flags: c_int) -> c_int;
    close(fd: c_int) -> c_int;
    dup2(old: c_int, new: c_int) -> c_int;
    dup3(old: c_int, new: c_int, flags: c_int) -> c_int;
}

#[cold]
fn resolve(i: usize) -> usize {
    // SAFETY: the name is NUL-terminated; dlsym has no other precondition.
    let a = unsafe { libc::dlsym(libc::RTLD_NEXT, NAMES[i].as_ptr().cast()) } as usize;
    if a == 0 {
        // Nothing to forward to (a static program): say so and stop, as
        // carrying on would call address 0. Raw syscalls: `write` is hooked.
        let msg = b"greenlet-monkey: dlsym(RTLD_NEXT) found no libc function to forward to; monkey patching needs dynamic linking with glibc\n";
        // SAFETY: plain syscalls with a valid buffer.
        unsafe {
            libc::syscall(libc::SYS_write, 2, msg.as_ptr(), msg.len());
            libc::abort();
        }
    }
    ADDRS[i].store(a, Ordering::Relaxed);
    a
}

/// Runs before `main` (an `.init_array` entry): resolves every original,
/// arranges for `fork` children to re-initialise their hub, and honours
/// `GREENLET_MONKEY_PATCH_ALL=1`. Exported (`no_mangle`) so the linker
/// keeps it whenever the hooks are linked.
#[used]
#[no_mangle]
#[link_section = ".init_array"]
static GREENLET_MONKEY_INIT: extern "C" fn() = init;

extern "C" fn init() {
    for i in 0..NAMES.len() {
        resolve(i);
    }
    // SAFETY: registers a handler that only writes a thread-local flag.
    unsafe { libc::pthread_atfork(None, None, Some(after_fork_child)) };
    // SAFETY: the name is NUL-terminated; before `main` nothing sets the
    // environment concurrently.
    let v = unsafe { libc::getenv(c"GREENLET_MONKEY_PATCH_ALL".as_ptr()) };
    // SAFETY: a non-null result of getenv is a NUL-terminated string.
    if !v.is_null() && unsafe { std::ffi::CStr::from_ptr(v) }.to_bytes() == b"1" {
        crate::PATCHED.fetch_or(crate::ALL, Ordering::SeqCst);
    }
}

thread_local! {
    /// Set in the child of a `fork` on the thread that forked (the only
    /// one there): its hub still shares the parent's epoll instance until
    /// `reinit`, done before the next park (see `fdwait::before_park`).
    pub(crate) static FORKED: Cell<bool> = const { Cell::new(false) };
}

extern "C" fn after_fork_child() {
    // Async-signal-safe: one thread-local write. The child may be about to
    // `exec` (std's `Command`), where nothing may allocate.
    FORKED.with(|f| f.set(true));
}

/// See [`crate::check_hooks`].
pub(crate) fn check_hooks() -> Result<(), MonkeyError> {
    for (name, hook) in NAMES.iter().zip(hook_addresses()) {
        // SAFETY: the name is NUL-terminated.
        let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr().cast()) } as usize;
        if found != hook {
            return Err(MonkeyError::NotLinked {
                symbol: name.trim_end_matches('\0'),
            });
        }
    }
    Ok(())
}

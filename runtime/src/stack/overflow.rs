//! Stack overflow reports: a SIGSEGV/SIGBUS handler that recognises a fault
//! in the running greenlet's guard page.
//!
//! Installed once per process (when the first hub is created), on an
//! alternate signal stack (the overflowing stack has no room left). A fault
//! in the current greenlet's guard page writes
//! `greenlet '<name>' (id N) overflowed its stack of <S> KiB; raise it with
//! Builder::stack_size` to stderr and aborts. Any other fault goes to the
//! handler that was installed before (Rust's own, which reports a main
//! thread's overflow), or to the default action.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::{Once, OnceLock};

static INSTALL: Once = Once::new();

/// How the handler learns whether a fault address is the running
/// greenlet's guard page: given the address, it calls `report` with what
/// to report if so. Set by the hub (this module does not know hubs), read
/// by the handler: async-signal-safe, it allocates and locks nothing.
pub(crate) type Lookup = fn(addr: usize, report: fn(&Overflowed<'_>));

static LOOKUP: OnceLock<Lookup> = OnceLock::new();

/// The handlers in place before ours, for SIGSEGV and SIGBUS. Written once
/// inside `INSTALL` before our handler is installed, read-only afterwards.
struct Previous(UnsafeCell<[MaybeUninit<libc::sigaction>; 2]>);

// SAFETY: written only inside `Once::call_once`, before any handler that
// reads it can run; never written again.
unsafe impl Sync for Previous {}

static PREVIOUS: Previous = Previous(UnsafeCell::new([MaybeUninit::uninit(); 2]));

/// Installs the handler for the process (once), asking `lookup` about
/// each fault.
pub(crate) fn install(lookup: Lookup) {
    INSTALL.call_once(|| {
        let _ = LOOKUP.set(lookup);
        for (i, sig) in [libc::SIGSEGV, libc::SIGBUS].into_iter().enumerate() {
            let handler = handler as *const () as libc::sighandler_t;
            let prev = crate::sigaction::install(sig, handler, libc::SA_SIGINFO | libc::SA_ONSTACK)
                // Not installed: the previous handler stays in charge.
                .unwrap_or_else(|_| {
                    // SAFETY: a zeroed sigaction is SIG_DFL with no flags.
                    unsafe { std::mem::zeroed() }
                });
            // SAFETY: `PREVIOUS` is written here only, inside `INSTALL`,
            // before our handler can run.
            unsafe { (*PREVIOUS.0.get())[i].write(prev) };
        }
    });
}

/// An alternate signal stack this hub installed because its thread had
/// none (threads not made by `std::thread` may lack one). Removed on drop.
pub(crate) struct AltStack {
    addr: usize,
    len: usize,
}

impl AltStack {
    /// Makes sure the current thread has an alternate signal stack.
    pub(crate) fn ensure() -> Option<AltStack> {
        // SAFETY: querying with a null new stack changes nothing.
        unsafe {
            let mut old: libc::stack_t = std::mem::zeroed();
            if libc::sigaltstack(ptr::null(), &mut old) != 0 || old.ss_flags & libc::SS_DISABLE == 0
            {
                return None;
            }
        }
        let len = 64 * 1024;
        let addr = super::memory::reserve(len).ok()?;
        let st = libc::stack_t {
            ss_sp: addr as *mut libc::c_void,
            ss_flags: 0,
            ss_size: len,
        };
        // SAFETY: the stack is a fresh mapping owned by the returned value,
        // which disables it before unmapping.
        if unsafe { libc::sigaltstack(&st, ptr::null_mut()) } != 0 {
            // SAFETY: just mapped, unused.
            unsafe { super::memory::unmap(addr, len) };
            return None;
        }
        Some(AltStack { addr, len })
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        let st = libc::stack_t {
            ss_sp: ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: we installed this stack on this thread (hubs never move),
        // disable it, then unmap it.
        unsafe {
            libc::sigaltstack(&st, ptr::null_mut());
            super::memory::unmap(self.addr, self.len);
        }
    }
}

/// Writes `bytes` to stderr without allocating (async-signal-safe).
fn write_err(bytes: &[u8]) {
    // SAFETY: write(2) on fd 2 with a valid buffer.
    unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
}

/// Formats `n` in decimal into `buf`, returning the digits.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some(lookup) = LOOKUP.get() {
        lookup(addr, report);
    }
    chain(sig, info, ctx);
}

/// Reports an overflow of the running greenlet's stack and aborts.
fn report(g: &Overflowed<'_>) {
    let mut num = [0u8; 20];
    write_err(b"\ngreenlet '");
    match g.name {
        Some(n) => write_err(n.as_bytes()),
        None => {
            write_err(b"Greenlet-");
            write_err(decimal(g.id, &mut num));
        }
    }
    write_err(b"' (id ");
    write_err(decimal(g.id, &mut num));
    write_err(b") overflowed its stack of ");
    write_err(decimal((g.stack_size / 1024) as u64, &mut num));
    write_err(b" KiB; raise it with Builder::stack_size\n");
    // SAFETY: abort is async-signal-safe.
    unsafe { libc::abort() };
}

/// Passes a fault that is not ours to the handler installed before.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let i = if sig == libc::SIGSEGV { 0 } else { 1 };
    // SAFETY: `PREVIOUS` was initialised before this handler was installed.
    let prev = unsafe { (*PREVIOUS.0.get())[i].assume_init_ref() };
    let f = prev.sa_sigaction;
    if f == libc::SIG_DFL || f == libc::SIG_IGN {
        // Restore the default action; returning re-executes the faulting
        // instruction, which then gets it (a core dump / kill).
        let _ = crate::sigaction::install(sig, libc::SIG_DFL, 0);
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: with SA_SIGINFO the previous handler has this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(f) };
        f(sig, info, ctx);
    } else {
        // SAFETY: without SA_SIGINFO the previous handler takes the signal.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(f) };
        f(sig);
    }
}

/// What the handler reports about the overflowing greenlet.
pub(crate) struct Overflowed<'a> {
    pub(crate) id: u64,
    pub(crate) name: Option<&'a str>,
    pub(crate) stack_size: usize,
}

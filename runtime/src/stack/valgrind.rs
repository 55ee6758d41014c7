//! Running under valgrind.
//!
//! Every greenlet stack is registered with valgrind (`GreenStack` holds a
//! `corosensei::stack::valgrind::ValgrindStackRegistration`, a no-op
//! natively), so a switch to it is not mistaken for a huge stack frame.
//! valgrind does not know `MADV_GUARD_INSTALL` and crashes on such guard
//! pages, so under valgrind the hubs use `mprotect` guards
//! ([`StackGuard::Mprotect`](super::StackGuard)).

/// valgrind's `VG_USERREQ__RUNNING_ON_VALGRIND` client request.
const RUNNING_ON_VALGRIND: u64 = 0x1001;

/// Whether this process runs under valgrind: its `RUNNING_ON_VALGRIND`
/// client request, which valgrind answers with its nesting depth and which
/// natively leaves the default 0. Read once per process.
pub(crate) fn running_on_valgrind() -> bool {
    static UNDER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *UNDER.get_or_init(|| client_request(RUNNING_ON_VALGRIND) != 0)
}

/// A client request with no arguments; returns 0 when not under valgrind.
/// The "special instruction preamble" is a sequence of rotations that
/// sums to a full turn (so it changes nothing natively), which valgrind's
/// JIT recognises, followed by the marker instruction.
#[cfg(target_arch = "x86_64")]
fn client_request(request: u64) -> u64 {
    let args: [u64; 6] = [request, 0, 0, 0, 0, 0];
    let result: u64;
    // SAFETY: natively the rotations of rdi sum to 128 bits (two full
    // turns) and `xchg rbx, rbx` is a no-op, so no register changes; under
    // valgrind the sequence reads `args` (rax) and writes the answer to
    // rdx, which is declared.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            inout("rdx") 0u64 => result,
            in("rax") args.as_ptr(),
            options(nostack),
        );
    }
    result
}

#[cfg(target_arch = "aarch64")]
fn client_request(request: u64) -> u64 {
    let args: [u64; 6] = [request, 0, 0, 0, 0, 0];
    let result: u64;
    // SAFETY: as on x86_64: the rotations of x12 sum to 128 bits and
    // `orr x10, x10, x10` is a no-op; valgrind reads `args` (x4) and
    // writes the answer to x3, which is declared.
    unsafe {
        std::arch::asm!(
            "ror x12, x12, #3",
            "ror x12, x12, #13",
            "ror x12, x12, #61",
            "ror x12, x12, #51",
            "orr x10, x10, x10",
            inout("x3") 0u64 => result,
            in("x4") args.as_ptr(),
            options(nostack),
        );
    }
    result
}

/// Elsewhere we do not know valgrind's preamble: assume native.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn client_request(_request: u64) -> u64 {
    0
}

#[cfg(test)]
mod tests {
    #[test]
    fn natively_the_request_answers_its_default() {
        // Under valgrind (the CI's valgrind step) this is true instead.
        let under = std::env::var_os("GREENLET_UNDER_VALGRIND").is_some();
        assert_eq!(super::running_on_valgrind(), under);
    }
}

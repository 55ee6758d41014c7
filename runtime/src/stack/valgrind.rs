//! Registering greenlet stacks with valgrind.
//!
//! valgrind must be told which memory is a stack, or it takes every switch
//! to a greenlet for a huge stack frame (about a thousand false errors per
//! test binary). Stacks are registered with `VALGRIND_STACK_REGISTER`
//! (corosensei's `ValgrindStackRegistration`) when they are made and
//! deregistered when their memory goes away: a slab slot's registration is
//! kept by its slab (`Region`), an own mapping's in a global map by
//! address. Only under valgrind: natively nothing is stored (a
//! `GreenStack` stays three words) and the check is one load per stack
//! made or unmapped, never per spawn.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use corosensei::stack::valgrind::ValgrindStackRegistration;

/// valgrind's `VG_USERREQ__RUNNING_ON_VALGRIND` client request.
const RUNNING_ON_VALGRIND: u64 = 0x1001;

/// Registrations of own mappings by stack bottom (only ever filled under
/// valgrind).
static REGISTERED: Mutex<Option<HashMap<usize, ValgrindStackRegistration>>> = Mutex::new(None);

/// Whether this process runs under valgrind: its `RUNNING_ON_VALGRIND`
/// client request, which valgrind answers with its nesting depth and which
/// natively leaves the default 0. Read once per process.
pub(crate) fn running_on_valgrind() -> bool {
    static UNDER: OnceLock<bool> = OnceLock::new();
    *UNDER.get_or_init(|| client_request(RUNNING_ON_VALGRIND) != 0)
}

/// Whether stacks are registered: under valgrind, unless
/// `GREENLET_VALGRIND_STACKS=0` (for instruction counts with callgrind,
/// which does not need it: a registration costs ~90 instructions per stack
/// carved, which native runs never pay).
pub(crate) fn register_stacks() -> bool {
    static REGISTER: OnceLock<bool> = OnceLock::new();
    *REGISTER.get_or_init(|| {
        running_on_valgrind()
            && std::env::var_os("GREENLET_VALGRIND_STACKS").is_none_or(|v| v != "0")
    })
}

/// Under valgrind, registers `[bottom, top)` as a stack; the stack is
/// deregistered when the result is dropped.
pub(crate) fn registration(bottom: usize, top: usize) -> Option<ValgrindStackRegistration> {
    register_stacks().then(|| ValgrindStackRegistration::new(bottom as *mut u8, top - bottom))
}

/// Registers the own mapping `[bottom, top)` (see [`deregister_own`]).
pub(crate) fn register_own(bottom: usize, top: usize) {
    if let Some(r) = registration(bottom, top) {
        let mut map = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
        // A stale registration at the same address is dropped: deregistered.
        map.get_or_insert_with(HashMap::new).insert(bottom, r);
    }
}

/// Deregisters the own mapping at `bottom` (before it is unmapped).
pub(crate) fn deregister_own(bottom: usize) {
    if !register_stacks() {
        return;
    }
    let mut map = REGISTERED.lock().unwrap_or_else(|e| e.into_inner());
    drop(map.as_mut().and_then(|m| m.remove(&bottom)));
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
        // Under valgrind (`.ci/valgrind` runs these tests there) it is true.
        let under = std::env::var_os("GREENLET_UNDER_VALGRIND").is_some();
        assert_eq!(super::running_on_valgrind(), under);
    }
}

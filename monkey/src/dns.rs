//! The resolver hooks: `getaddrinfo` and `getnameinfo` run on the thread
//! pool while the calling greenlet waits (glibc's own DNS sockets live
//! inside those calls, out of reach of any hook).
//!
//! Calls that need no lookup (numeric hosts, `AI_NUMERICHOST`, no host)
//! go straight to glibc. An interrupted wait returns `EAI_SYSTEM` with
//! errno `ETIMEDOUT` (a `Timeout`) or `ECANCELED` (a kill); the lookup then
//! finishes on its worker and its result is freed there.

use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr;

use libc::{addrinfo, sockaddr, socklen_t};

use crate::fdwait::{interrupted, Woke};
use crate::gate::{errno, hook, on, set_errno};
use crate::{real, DNS};

/// A `getaddrinfo` result, freed on drop unless taken: a lookup whose
/// waiter was interrupted is dropped on its worker thread.
struct Found {
    rc: c_int,
    errno: c_int,
    list: *mut addrinfo,
}

// SAFETY: the list is owned by this value alone (glibc allocated it for
// this call) and may be freed on any thread.
unsafe impl Send for Found {}

impl Drop for Found {
    fn drop(&mut self) {
        if !self.list.is_null() {
            // SAFETY: a list from getaddrinfo, not freed yet (see `take`).
            unsafe { libc::freeaddrinfo(self.list) };
        }
    }
}

/// What a thread-pool wait ended with, as the hooks report it.
fn failed(e: &greenlet_runtime::threadpool::ThreadError) -> Option<c_int> {
    use greenlet_runtime::threadpool::ThreadError;
    match e {
        ThreadError::Interrupted(i) => match interrupted(i) {
            Woke::Failed(e) => Some(e),
            _ => None,
        },
        _ => Some(libc::EAGAIN),
    }
}

hook!(crate::DNS, getaddrinfo => coop_getaddrinfo(node: *const c_char, service: *const c_char, hints: *const addrinfo, res: *mut *mut addrinfo) -> c_int);
hook!(crate::DNS, getnameinfo => coop_getnameinfo(addr: *const sockaddr, len: socklen_t, host: *mut c_char, hostlen: socklen_t, serv: *mut c_char, servlen: socklen_t, flags: c_int) -> c_int);

/// The cooperative side of the `getaddrinfo` hook.
///
/// # Safety
/// The C contract of `getaddrinfo(3)`.
#[inline(never)]
unsafe fn coop_getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    // SAFETY: the caller passes null or a valid addrinfo.
    let h = unsafe { hints.as_ref() };
    let numeric = h.is_some_and(|h| h.ai_flags & libc::AI_NUMERICHOST != 0);
    // SAFETY: the caller passes null or a NUL-terminated string.
    let host = (!node.is_null()).then(|| unsafe { CStr::from_ptr(node) });
    let literal = host
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.parse::<std::net::IpAddr>().is_ok());
    if !on(DNS) || host.is_none() || numeric || literal || res.is_null() {
        // SAFETY: forwarding the caller's call.
        return unsafe { real::getaddrinfo(node, service, hints, res) };
    }
    let host: CString = host.map(CString::from).unwrap_or_default();
    // SAFETY: as above.
    let serv: Option<CString> =
        (!service.is_null()).then(|| unsafe { CStr::from_ptr(service) }.into());
    // Only the fields a caller may set in hints; pointers stay null.
    let hints: Option<(c_int, c_int, c_int, c_int)> =
        h.map(|h| (h.ai_flags, h.ai_family, h.ai_socktype, h.ai_protocol));
    let saved = errno();
    let job = greenlet_runtime::threadpool::spawn(move || {
        // SAFETY: all-zero is a valid addrinfo (null pointers).
        let mut hint: addrinfo = unsafe { std::mem::zeroed() };
        let hp = match hints {
            Some((flags, family, socktype, protocol)) => {
                hint.ai_flags = flags;
                hint.ai_family = family;
                hint.ai_socktype = socktype;
                hint.ai_protocol = protocol;
                &raw const hint
            }
            None => ptr::null(),
        };
        let mut list = ptr::null_mut();
        let sp = serv.as_ref().map_or(ptr::null(), |s| s.as_ptr());
        // SAFETY: valid strings, hints and out-pointer for this call.
        let rc = unsafe { real::getaddrinfo(host.as_ptr(), sp, hp, &mut list) };
        Found {
            rc,
            errno: errno(),
            list,
        }
    });
    match greenlet_runtime::defer_kill(|| job.wait())
        .map_err(Into::into)
        .and_then(|()| job.get())
    {
        Ok(mut found) => {
            // SAFETY: the caller's out-pointer.
            unsafe { *res = std::mem::replace(&mut found.list, ptr::null_mut()) };
            set_errno(if found.rc == libc::EAI_SYSTEM {
                found.errno
            } else {
                saved
            });
            found.rc
        }
        Err(e) => match failed(&e) {
            Some(e) => {
                set_errno(e);
                libc::EAI_SYSTEM
            }
            // May not park: resolve on this thread.
            // SAFETY: forwarding the caller's call.
            None => unsafe {
                real::getaddrinfo(node, service, h.map_or(ptr::null(), ptr::from_ref), res)
            },
        },
    }
}

/// The cooperative side of the `getnameinfo` hook.
///
/// # Safety
/// The C contract of `getnameinfo(3)`.
#[inline(never)]
unsafe fn coop_getnameinfo(
    addr: *const sockaddr,
    len: socklen_t,
    host: *mut c_char,
    hostlen: socklen_t,
    serv: *mut c_char,
    servlen: socklen_t,
    flags: c_int,
) -> c_int {
    let numeric =
        flags & libc::NI_NUMERICHOST != 0 && (serv.is_null() || flags & libc::NI_NUMERICSERV != 0);
    let max = size_of::<libc::sockaddr_storage>();
    if !on(DNS) || numeric || addr.is_null() || len as usize > max {
        // SAFETY: forwarding the caller's call.
        return unsafe { real::getnameinfo(addr, len, host, hostlen, serv, servlen, flags) };
    }
    // Copies the pool thread can own: the address in, the names out.
    let mut sa = vec![0u8; len as usize];
    // SAFETY: the caller's address is valid for `len` bytes.
    unsafe { ptr::copy_nonoverlapping(addr.cast::<u8>(), sa.as_mut_ptr(), len as usize) };
    let (want_host, want_serv) = (!host.is_null(), !serv.is_null());
    let (hl, sl) = (hostlen as usize, servlen as usize);
    let saved = errno();
    let job = greenlet_runtime::threadpool::spawn(move || {
        let mut h = vec![0 as c_char; hl];
        let mut s = vec![0 as c_char; sl];
        // SAFETY: valid buffers of the stated lengths (or null).
        let rc = unsafe {
            real::getnameinfo(
                sa.as_ptr().cast(),
                sa.len() as socklen_t,
                if want_host {
                    h.as_mut_ptr()
                } else {
                    ptr::null_mut()
                },
                hl as socklen_t,
                if want_serv {
                    s.as_mut_ptr()
                } else {
                    ptr::null_mut()
                },
                sl as socklen_t,
                flags,
            )
        };
        (rc, errno(), h, s)
    });
    match greenlet_runtime::defer_kill(|| job.wait())
        .map_err(Into::into)
        .and_then(|()| job.get())
    {
        Ok((rc, e, h, s)) => {
            // SAFETY: the caller's buffers, of these lengths.
            unsafe {
                if want_host {
                    ptr::copy_nonoverlapping(h.as_ptr(), host, hl);
                }
                if want_serv {
                    ptr::copy_nonoverlapping(s.as_ptr(), serv, sl);
                }
            }
            set_errno(if rc == libc::EAI_SYSTEM { e } else { saved });
            rc
        }
        Err(e) => match failed(&e) {
            Some(e) => {
                set_errno(e);
                libc::EAI_SYSTEM
            }
            // SAFETY: forwarding the caller's call.
            None => unsafe { real::getnameinfo(addr, len, host, hostlen, serv, servlen, flags) },
        },
    }
}

//! Name resolution on the thread pool: [`getaddrinfo`], [`gethostbyname`],
//! [`gethostbyname_ex`], [`gethostbyaddr`], [`getnameinfo`] (gevent's
//! resolver_thread).
//!
//! The system resolver (`getaddrinfo(3)`) blocks its thread, so every call
//! here runs it on a `greenlet::threadpool` worker and parks only the
//! calling greenlet; the hub keeps running the others. Numeric addresses
//! are answered without the pool. A `Timeout` interrupts the wait (the
//! lookup finishes on its worker and its answer is dropped).
//!
//! ```
//! use greenlet_net::gethostbyname;
//! use std::net::Ipv4Addr;
//!
//! assert_eq!(gethostbyname("localhost").unwrap(), Ipv4Addr::LOCALHOST);
//! ```

use std::ffi::{CStr, CString};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ptr;

use greenlet_runtime::threadpool;
use socket2::{Domain, Protocol, SockAddr, Type};

pub use libc::{
    AI_ADDRCONFIG, AI_ALL, AI_CANONNAME, AI_NUMERICHOST, AI_NUMERICSERV, AI_PASSIVE, AI_V4MAPPED,
    NI_DGRAM, NI_NAMEREQD, NI_NOFQDN, NI_NUMERICHOST, NI_NUMERICSERV,
};

/// What to ask `getaddrinfo` for (its `hints`). The default asks for every
/// family, socket type and protocol with no flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hints {
    /// Only this address family (`Domain::IPV4`, `Domain::IPV6`).
    pub family: Option<Domain>,
    /// Only this socket type (`Type::STREAM`, `Type::DGRAM`).
    pub socktype: Option<Type>,
    /// Only this protocol.
    pub protocol: Option<Protocol>,
    /// `AI_*` flags ([`AI_CANONNAME`], [`AI_PASSIVE`], ...), or-ed.
    pub flags: i32,
}

/// One answer of [`getaddrinfo`] (Python's `(family, type, proto,
/// canonname, sockaddr)` tuple).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AddrInfo {
    /// The address family.
    pub family: Domain,
    /// The socket type.
    pub socktype: Type,
    /// The protocol.
    pub protocol: Protocol,
    /// The canonical name of the host (first answer only, with
    /// [`AI_CANONNAME`]).
    pub canonname: Option<String>,
    /// The address, with the port.
    pub addr: SocketAddr,
}

/// Resolves `host` and `port` to socket addresses on the thread pool (all
/// families and socket types, as Python's `getaddrinfo(host, port)`).
///
/// # Errors
/// A resolution error naming the host: `NotFound` when the name does not
/// exist, `Other` for other resolver failures; the `io::Error` of an
/// interruption (a `Timeout`).
pub fn getaddrinfo(host: &str, port: u16) -> io::Result<Vec<AddrInfo>> {
    getaddrinfo_hints(host, port, Hints::default())
}

/// [`getaddrinfo`] with [`Hints`]. An empty `host` means none (with
/// [`AI_PASSIVE`]: the wildcard address, else loopback).
///
/// # Errors
/// As [`getaddrinfo`]; `InvalidInput` for a host containing a NUL byte.
pub fn getaddrinfo_hints(host: &str, port: u16, hints: Hints) -> io::Result<Vec<AddrInfo>> {
    let node = if host.is_empty() {
        None
    } else {
        Some(CString::new(host).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "host name contains a NUL byte")
        })?)
    };
    let name = host.to_string();
    threadpool::spawn(move || resolve_blocking(node.as_deref(), port, hints, &name))
        .get()
        .map_err(io::Error::from)?
}

/// The IPv4 address of `host` (gevent's `gethostbyname`): a literal is
/// parsed, a name is resolved on the thread pool.
///
/// # Errors
/// As [`getaddrinfo`].
pub fn gethostbyname(host: &str) -> io::Result<Ipv4Addr> {
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(ip);
    }
    let hints = Hints {
        family: Some(Domain::IPV4),
        socktype: Some(Type::STREAM),
        ..Hints::default()
    };
    let answers = getaddrinfo_hints(host, 0, hints)?;
    answers
        .iter()
        .find_map(|a| match a.addr.ip() {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        })
        .ok_or_else(|| not_found(host, "no IPv4 address"))
}

/// gevent's `gethostbyname_ex`: `(canonical name, aliases, IPv4
/// addresses)`. `getaddrinfo` reports no aliases, so the list is empty.
///
/// # Errors
/// As [`getaddrinfo`].
pub fn gethostbyname_ex(host: &str) -> io::Result<(String, Vec<String>, Vec<Ipv4Addr>)> {
    let hints = Hints {
        family: Some(Domain::IPV4),
        socktype: Some(Type::STREAM),
        flags: AI_CANONNAME,
        ..Hints::default()
    };
    let answers = getaddrinfo_hints(host, 0, hints)?;
    let canon = answers
        .first()
        .and_then(|a| a.canonname.clone())
        .unwrap_or_else(|| host.to_string());
    let mut addrs: Vec<Ipv4Addr> = Vec::new();
    for a in &answers {
        if let IpAddr::V4(ip) = a.addr.ip() {
            if !addrs.contains(&ip) {
                addrs.push(ip);
            }
        }
    }
    Ok((canon, Vec::new(), addrs))
}

/// Reverse lookup of `addr` on the thread pool: `(host, service)`. `flags`
/// are `NI_*` ([`NI_NUMERICHOST`], [`NI_NAMEREQD`], ...), or-ed.
///
/// # Errors
/// A resolution error (e.g. `NotFound` with [`NI_NAMEREQD`] for an address
/// without a name); the `io::Error` of an interruption.
pub fn getnameinfo(addr: SocketAddr, flags: i32) -> io::Result<(String, String)> {
    threadpool::spawn(move || nameinfo_blocking(addr, flags))
        .get()
        .map_err(io::Error::from)?
}

/// gevent's `gethostbyaddr(ip_address)`: `(host name, aliases, addresses)`
/// of an address (a host name is resolved first), by a reverse lookup on
/// the thread pool. `getnameinfo` reports no aliases, so the list is empty;
/// the addresses are the one looked up.
///
/// # Errors
/// `NotFound` if the address has no name (or the name does not resolve);
/// other resolution errors; the `io::Error` of an interruption.
///
/// ```
/// use greenlet_net::gethostbyaddr;
/// use std::net::{IpAddr, Ipv4Addr};
///
/// let (name, _aliases, addrs) = gethostbyaddr("127.0.0.1").unwrap();
/// assert!(!name.is_empty());
/// assert_eq!(addrs, [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
/// ```
pub fn gethostbyaddr(host: &str) -> io::Result<(String, Vec<String>, Vec<IpAddr>)> {
    let ip = match host.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => getaddrinfo(host, 0)?
            .first()
            .map(|a| a.addr.ip())
            .ok_or_else(|| not_found(host, "no addresses"))?,
    };
    let (name, _) = getnameinfo(SocketAddr::new(ip, 0), NI_NAMEREQD)?;
    Ok((name, Vec::new(), vec![ip]))
}

fn not_found(host: &str, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("failed to resolve '{host}': {why}"),
    )
}

/// The `io::Error` of a `getaddrinfo`/`getnameinfo` failure `code`. Must run
/// on the thread that made the call (for `EAI_SYSTEM`, errno).
fn gai_error(code: i32, what: &str) -> io::Error {
    if code == libc::EAI_SYSTEM {
        let e = io::Error::last_os_error();
        return io::Error::new(e.kind(), format!("failed to resolve '{what}': {e}"));
    }
    // SAFETY: gai_strerror returns a pointer to a static NUL-terminated
    // string for any code.
    let msg = unsafe { CStr::from_ptr(libc::gai_strerror(code)) }.to_string_lossy();
    let kind = if code == libc::EAI_NONAME {
        io::ErrorKind::NotFound
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(kind, format!("failed to resolve '{what}': {msg}"))
}

/// The blocking `getaddrinfo` call (runs on a thread-pool worker).
fn resolve_blocking(
    node: Option<&CStr>,
    port: u16,
    hints: Hints,
    name: &str,
) -> io::Result<Vec<AddrInfo>> {
    let service = CString::new(port.to_string()).expect("digits only");
    // SAFETY: an all-zero addrinfo is the documented "no hints" value.
    let mut h: libc::addrinfo = unsafe { std::mem::zeroed() };
    h.ai_family = hints.family.map_or(libc::AF_UNSPEC, i32::from);
    h.ai_socktype = hints.socktype.map_or(0, i32::from);
    h.ai_protocol = hints.protocol.map_or(0, i32::from);
    h.ai_flags = hints.flags | libc::AI_NUMERICSERV;
    let mut res: *mut libc::addrinfo = ptr::null_mut();
    // SAFETY: valid NUL-terminated strings (or null node), a valid hints
    // struct and out-pointer; the list is freed below.
    let rc = unsafe {
        libc::getaddrinfo(
            node.map_or(ptr::null(), CStr::as_ptr),
            service.as_ptr(),
            &h,
            &mut res,
        )
    };
    if rc != 0 {
        return Err(gai_error(rc, name));
    }
    let mut out = Vec::new();
    let mut cur = res;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getaddrinfo returned, alive
        // until freeaddrinfo below.
        let ai = unsafe { &*cur };
        cur = ai.ai_next;
        if ai.ai_addr.is_null() {
            continue;
        }
        let len = ai.ai_addrlen;
        // SAFETY: `ai_addr` points to `ai_addrlen` bytes of a sockaddr,
        // which fit in a sockaddr_storage; copying them initialises the
        // storage up to `len`.
        let addr = unsafe {
            SockAddr::try_init(|storage, slen| {
                ptr::copy_nonoverlapping(
                    ai.ai_addr.cast::<u8>(),
                    storage.cast::<u8>(),
                    (len as usize).min(std::mem::size_of::<libc::sockaddr_storage>()),
                );
                *slen = len;
                Ok(())
            })
        }
        .map(|((), a)| a.as_socket());
        let Ok(Some(addr)) = addr else { continue };
        let canonname = (!ai.ai_canonname.is_null()).then(|| {
            // SAFETY: a non-null ai_canonname is a NUL-terminated string
            // alive until freeaddrinfo.
            unsafe { CStr::from_ptr(ai.ai_canonname) }
                .to_string_lossy()
                .into_owned()
        });
        out.push(AddrInfo {
            family: Domain::from(ai.ai_family),
            socktype: Type::from(ai.ai_socktype),
            protocol: Protocol::from(ai.ai_protocol),
            canonname,
            addr,
        });
    }
    // SAFETY: `res` came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(res) };
    if out.is_empty() {
        return Err(not_found(name, "no addresses"));
    }
    Ok(out)
}

/// The blocking `getnameinfo` call (runs on a thread-pool worker).
fn nameinfo_blocking(addr: SocketAddr, flags: i32) -> io::Result<(String, String)> {
    let sa = SockAddr::from(addr);
    // `NI_MAXHOST` is a `u32` in Linux's libc and a `usize` in FreeBSD's.
    #[allow(clippy::unnecessary_cast)]
    let mut host = [0 as libc::c_char; libc::NI_MAXHOST as usize];
    let mut serv = [0 as libc::c_char; 32];
    // SAFETY: `sa` is a valid sockaddr of `sa.len()` bytes; the buffers are
    // writable for the lengths given.
    let rc = unsafe {
        libc::getnameinfo(
            sa.as_ptr().cast(),
            sa.len(),
            host.as_mut_ptr(),
            // `socklen_t` on Linux and macOS, `size_t` on FreeBSD.
            host.len() as _,
            serv.as_mut_ptr(),
            serv.len() as _,
            flags,
        )
    };
    if rc != 0 {
        return Err(gai_error(rc, &addr.to_string()));
    }
    // SAFETY: on success both buffers hold NUL-terminated strings.
    let (h, s) = unsafe { (CStr::from_ptr(host.as_ptr()), CStr::from_ptr(serv.as_ptr())) };
    Ok((
        h.to_string_lossy().into_owned(),
        s.to_string_lossy().into_owned(),
    ))
}

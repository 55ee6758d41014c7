//! [`ToSocketAddrs`]: std's trait of the same name, resolving names on the
//! thread pool instead of blocking the hub.
//!
//! It is implemented for the same types as `std::net::ToSocketAddrs`
//! (`SocketAddr`, `(IpAddr, u16)`, `(&str, u16)`, `"host:port"`,
//! `&[SocketAddr]`, ...), so calls such as `TcpStream::connect("localhost:80")`
//! read exactly as with std. Literal addresses are parsed without any
//! lookup; names go through [`getaddrinfo`](crate::getaddrinfo).

use std::io;
use std::iter::Cloned;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::option;
use std::slice;
use std::vec;

use greenlet_runtime::Interrupted;
use socket2::Type;

use crate::dns::{getaddrinfo_hints, Hints};

/// Converts or resolves a value to socket addresses, like
/// `std::net::ToSocketAddrs`, but a name lookup parks only the calling
/// greenlet (it runs on the thread pool).
///
/// # Errors
/// `InvalidInput` for a malformed `"host:port"` string; resolution errors
/// as [`getaddrinfo`](crate::getaddrinfo).
pub trait ToSocketAddrs {
    /// The addresses returned.
    type Iter: Iterator<Item = SocketAddr>;

    /// The addresses, resolving names cooperatively.
    ///
    /// # Errors
    /// As the trait docs say.
    fn to_socket_addrs(&self) -> io::Result<Self::Iter>;
}

impl ToSocketAddrs for SocketAddr {
    type Iter = option::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        Ok(Some(*self).into_iter())
    }
}

impl ToSocketAddrs for SocketAddrV4 {
    type Iter = option::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        SocketAddr::V4(*self).to_socket_addrs()
    }
}

impl ToSocketAddrs for SocketAddrV6 {
    type Iter = option::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        SocketAddr::V6(*self).to_socket_addrs()
    }
}

impl ToSocketAddrs for (IpAddr, u16) {
    type Iter = option::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        SocketAddr::new(self.0, self.1).to_socket_addrs()
    }
}

impl ToSocketAddrs for (Ipv4Addr, u16) {
    type Iter = option::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        SocketAddr::new(self.0.into(), self.1).to_socket_addrs()
    }
}

impl ToSocketAddrs for (Ipv6Addr, u16) {
    type Iter = option::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        SocketAddr::new(self.0.into(), self.1).to_socket_addrs()
    }
}

/// Resolves a host name (or parses a literal) with `port`.
fn resolve(host: &str, port: u16) -> io::Result<vec::IntoIter<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)].into_iter());
    }
    let hints = Hints {
        socktype: Some(Type::STREAM),
        ..Hints::default()
    };
    let addrs: Vec<SocketAddr> = getaddrinfo_hints(host, port, hints)?
        .into_iter()
        .map(|a| a.addr)
        .collect();
    Ok(addrs.into_iter())
}

impl ToSocketAddrs for (&str, u16) {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        resolve(self.0, self.1)
    }
}

impl ToSocketAddrs for (String, u16) {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        resolve(&self.0, self.1)
    }
}

impl ToSocketAddrs for str {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return Ok(vec![addr].into_iter());
        }
        let Some((host, port)) = self.rsplit_once(':') else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "invalid socket address",
            ));
        };
        let port: u16 = port
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "invalid port value"))?;
        resolve(host, port)
    }
}

impl ToSocketAddrs for String {
    type Iter = vec::IntoIter<SocketAddr>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        self.as_str().to_socket_addrs()
    }
}

impl<'a> ToSocketAddrs for &'a [SocketAddr] {
    type Iter = Cloned<slice::Iter<'a, SocketAddr>>;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        Ok(self.iter().cloned())
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    type Iter = T::Iter;
    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        (**self).to_socket_addrs()
    }
}

/// Runs `f` on each address in turn until one succeeds (std's rule):
/// the last error otherwise, or `InvalidInput` "could not resolve to any
/// addresses" when there were none. An interruption (a `Timeout`, a kill's
/// `LoopExit`, ...) ends the loop at once: it is about the caller, not the
/// address, and a timeout is raised only once.
pub(crate) fn each_addr<A: ToSocketAddrs + ?Sized, T>(
    addr: &A,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        match f(&a) {
            Ok(v) => return Ok(v),
            Err(e) if Interrupted::from_io(&e).is_some() => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any addresses",
        )
    }))
}

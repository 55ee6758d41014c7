//! [`UdpSocket`]: `std::net::UdpSocket`, cooperative.

use std::io;
use std::net::{self, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::addr::{each_addr, ToSocketAddrs};
use crate::evented::Evented;

/// A UDP socket, cooperative: `recv_from` (and `send_to` when the send
/// buffer is full) park the calling greenlet. A drop-in for
/// `std::net::UdpSocket`. `!Send`.
///
/// ```
/// use greenlet_net::UdpSocket;
///
/// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
/// a.send_to(b"ping", b.local_addr().unwrap()).unwrap();
/// let mut buf = [0u8; 16];
/// let (n, from) = b.recv_from(&mut buf).unwrap();
/// assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr().unwrap()));
/// ```
pub struct UdpSocket {
    pub(crate) io: Evented<net::UdpSocket>,
}

fd_traits!(UdpSocket, net::UdpSocket);

impl UdpSocket {
    /// Binds a socket to `addr` (each resolved address in turn).
    ///
    /// # Errors
    /// The OS error of the last address tried; resolution errors.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(&addr, |a| UdpSocket::from_std(net::UdpSocket::bind(a)?))
    }

    /// Wraps a std socket (put in non-blocking mode at the OS level),
    /// keeping its read and write timeouts.
    ///
    /// # Errors
    /// The error of setting `O_NONBLOCK` or reading the timeouts.
    pub fn from_std(socket: net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            io: Evented::adopt(socket, true)?,
        })
    }

    /// Converts back into a std socket with this object's timeouts and
    /// blocking mode applied to the OS socket.
    ///
    /// # Errors
    /// `EBADF` if closed; the errors of applying the settings.
    pub fn into_std(self) -> io::Result<net::UdpSocket> {
        self.io.release(true)
    }

    /// Receives one datagram and its sender, parking until one arrives.
    ///
    /// # Errors
    /// `TimedOut` after the read timeout; `WouldBlock` in non-blocking mode;
    /// `ResourceBusy` if another greenlet already waits to receive; the
    /// "File descriptor was closed in another greenlet" error if closed
    /// while waiting; `EBADF` if closed.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read(|s| s.recv_from(&mut *buf), |_| false)
    }

    /// Like `recv_from` without removing the datagram from the queue.
    ///
    /// # Errors
    /// As [`recv_from`](Self::recv_from).
    pub fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read(|s| s.peek_from(&mut *buf), |_| false)
    }

    /// Sends `buf` to the first address `addr` resolves to (as std).
    ///
    /// # Errors
    /// `InvalidInput` "no addresses to send data to"; `TimedOut` after the
    /// write timeout; OS errors; `EBADF` if closed.
    pub fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], addr: A) -> io::Result<usize> {
        let Some(addr) = addr.to_socket_addrs()?.next() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no addresses to send data to",
            ));
        };
        self.io.write(|s| s.send_to(buf, addr), |_| false)
    }

    /// The connected peer's address.
    ///
    /// # Errors
    /// `NotConnected`; `EBADF` if closed.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.with(|s| s.peer_addr())
    }

    /// The local address.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.with(|s| s.local_addr())
    }

    /// A second handle to the same socket (a `dup`) with this object's
    /// settings.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        let s = self.io.with(|s| s.try_clone())?;
        Ok(UdpSocket {
            io: Evented::with_settings_of(s, &self.io),
        })
    }

    common_methods!();

    /// Sets `SO_BROADCAST`.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn set_broadcast(&self, broadcast: bool) -> io::Result<()> {
        self.io.with(|s| s.set_broadcast(broadcast))
    }

    /// `SO_BROADCAST`.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn broadcast(&self) -> io::Result<bool> {
        self.io.with(|s| s.broadcast())
    }

    /// Sets `IP_MULTICAST_LOOP`.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.io.with(|s| s.set_multicast_loop_v4(on))
    }

    /// `IP_MULTICAST_LOOP`.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn multicast_loop_v4(&self) -> io::Result<bool> {
        self.io.with(|s| s.multicast_loop_v4())
    }

    /// Sets `IP_MULTICAST_TTL`.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        self.io.with(|s| s.set_multicast_ttl_v4(ttl))
    }

    /// `IP_MULTICAST_TTL`.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn multicast_ttl_v4(&self) -> io::Result<u32> {
        self.io.with(|s| s.multicast_ttl_v4())
    }

    /// Sets `IPV6_MULTICAST_LOOP`.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.io.with(|s| s.set_multicast_loop_v6(on))
    }

    /// `IPV6_MULTICAST_LOOP`.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn multicast_loop_v6(&self) -> io::Result<bool> {
        self.io.with(|s| s.multicast_loop_v6())
    }

    /// Sets `IP_TTL`.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.with(|s| s.set_ttl(ttl))
    }

    /// `IP_TTL`.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.with(|s| s.ttl())
    }

    /// Joins an IPv4 multicast group.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn join_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.io.with(|s| s.join_multicast_v4(multiaddr, interface))
    }

    /// Joins an IPv6 multicast group.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.with(|s| s.join_multicast_v6(multiaddr, interface))
    }

    /// Leaves an IPv4 multicast group.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn leave_multicast_v4(&self, multiaddr: &Ipv4Addr, interface: &Ipv4Addr) -> io::Result<()> {
        self.io.with(|s| s.leave_multicast_v4(multiaddr, interface))
    }

    /// Leaves an IPv6 multicast group.
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: u32) -> io::Result<()> {
        self.io.with(|s| s.leave_multicast_v6(multiaddr, interface))
    }

    /// Takes the pending socket error (`SO_ERROR`).
    ///
    /// # Errors
    /// `EBADF` if closed; OS errors.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.with(|s| s.take_error())
    }

    /// Sets the default peer (each resolved address in turn, as std); a
    /// UDP connect never waits.
    ///
    /// # Errors
    /// OS errors; resolution errors; `EBADF` if closed.
    pub fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(&addr, |a| self.io.with(|s| s.connect(a)))
    }

    /// Sends `buf` to the connected peer.
    ///
    /// # Errors
    /// As [`send_to`](Self::send_to); `NotConnected`.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.write(|s| s.send(buf), |_| false)
    }

    /// Receives one datagram from the connected peer.
    ///
    /// # Errors
    /// As [`recv_from`](Self::recv_from).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read(|s| s.recv(&mut *buf), |_| false)
    }

    /// Like `recv` without removing the datagram from the queue.
    ///
    /// # Errors
    /// As [`recv_from`](Self::recv_from).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read(|s| s.peek(&mut *buf), |_| false)
    }
}

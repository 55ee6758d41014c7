//! Servers: [`StreamServer`] (a greenlet per TCP connection) and
//! [`DatagramServer`] (a greenlet per UDP datagram), gevent.server's.
//!
//! ```
//! use greenlet_net::{StreamServer, TcpStream};
//! use std::io::{Read, Write};
//!
//! let server = StreamServer::bind("127.0.0.1:0", |mut conn: TcpStream, _peer| {
//!     let mut buf = [0u8; 1024];
//!     while let Ok(n @ 1..) = conn.read(&mut buf) {
//!         if conn.write_all(&buf[..n]).is_err() {
//!             break;
//!         }
//!     }
//! })
//! .unwrap();
//! server.start().unwrap();
//! let mut c = TcpStream::connect(server.local_addr().unwrap()).unwrap();
//! c.write_all(b"ping").unwrap();
//! let mut reply = [0u8; 4];
//! c.read_exact(&mut reply).unwrap();
//! assert_eq!(&reply, b"ping");
//! server.stop(None).unwrap();
//! ```

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use greenlet_runtime::pool::{Group, Pool};
use greenlet_runtime::sync::Event;
use greenlet_runtime::{sleep, spawn, Builder, Greenlet, Interrupted};

use crate::addr::ToSocketAddrs;
use crate::{TcpListener, TcpStream, UdpSocket};

/// First pause after an accept error such as `EMFILE`; doubles up to
/// [`MAX_BACKOFF`] while the error persists.
pub const MIN_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause between accept attempts while they keep failing.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The listen backlog servers use unless told otherwise: the largest the
/// OS allows. Linux clamps it to `net.core.somaxconn` (4096 by default
/// since 5.4), as Go's and gevent's servers effectively get. With std's
/// 128, a burst of connections overflows the accept queue and each
/// overflow costs its client a one-second SYN retransmit.
pub const DEFAULT_BACKLOG: u32 = i32::MAX as u32;

/// `listen(2)` on `fd` again with `backlog` (Linux changes the backlog of a
/// socket that already listens); values past `c_int` are the maximum.
fn listen(fd: std::os::fd::RawFd, backlog: u32) -> io::Result<()> {
    let backlog = libc::c_int::try_from(backlog).unwrap_or(libc::c_int::MAX);
    // SAFETY: plain syscall on an fd; a bad fd is an error, not UB.
    if unsafe { libc::listen(fd, backlog) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Errors of `accept` that concern one connection, not the listener: retry
/// at once.
fn transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNABORTED | libc::EINTR | libc::EPROTO | libc::EPERM)
    ) || e.kind() == io::ErrorKind::ConnectionAborted
}

type Handler = Rc<dyn Fn(TcpStream, SocketAddr)>;

struct Inner {
    listener: TcpListener,
    handler: Handler,
    pool: Option<Pool>,
    /// Handlers when there is no pool (`stop` leaves them alone).
    group: Group,
    accepting: RefCell<Option<Greenlet<()>>>,
    /// Stack size of handler greenlets (`None`: the hub's default).
    stack_size: Option<usize>,
    stopped: Event,
    accepted: Cell<u64>,
    accept_errors: Cell<u64>,
}

/// A TCP server that runs a handler in its own greenlet for each
/// connection (gevent's `StreamServer`).
///
/// The handler gets the connection and the peer's address; the connection
/// is closed when the handler returns (it owns it). A handler that panics
/// is reported by the panic hook and the server keeps accepting. With a
/// [`Pool`] (`pool`, `max_connections`), at most that many handlers run at
/// once and accepting waits for a free slot. Accept errors that concern
/// the process, such as running out of file descriptors (`EMFILE`,
/// `ENFILE`), pause accepting (10 ms, doubling to 1 s) and it resumes once
/// they clear — the server never spins and never exits on its own.
///
/// Cloning gives another handle to the same server.
///
/// ```
/// use greenlet_net::{StreamServer, TcpStream};
/// use std::io::{Read, Write};
///
/// let server = StreamServer::bind("127.0.0.1:0", |mut conn: TcpStream, _peer| {
///     let _ = conn.write_all(b"hello\n");
/// })
/// .unwrap()
/// .max_connections(100);
/// server.start().unwrap();
/// let mut c = TcpStream::connect(server.local_addr().unwrap()).unwrap();
/// let mut s = String::new();
/// c.read_to_string(&mut s).unwrap(); // the handler returned: closed
/// assert_eq!(s, "hello\n");
/// server.stop(None).unwrap();
/// ```
#[derive(Clone)]
pub struct StreamServer {
    inner: Rc<Inner>,
}

impl StreamServer {
    /// Binds `addr` and prepares a server; call [`StreamServer::start`] or
    /// [`StreamServer::serve_forever`] to accept. The listen backlog is
    /// [`DEFAULT_BACKLOG`] (the OS maximum); see [`StreamServer::backlog`].
    ///
    /// # Errors
    /// The error of resolving or binding `addr`.
    pub fn bind(
        addr: impl ToSocketAddrs,
        handler: impl Fn(TcpStream, SocketAddr) + 'static,
    ) -> io::Result<StreamServer> {
        let listener = TcpListener::bind(addr)?;
        listen(listener.as_raw_fd(), DEFAULT_BACKLOG)?;
        Ok(StreamServer::from_listener(listener, handler))
    }

    /// Sets the listen backlog: how many connections the kernel queues
    /// before they are accepted (the OS caps it, on Linux at
    /// `net.core.somaxconn`). Takes effect at once, also on a started
    /// server.
    ///
    /// ```
    /// use greenlet_net::StreamServer;
    ///
    /// let server = StreamServer::bind("127.0.0.1:0", |_, _| {})
    ///     .unwrap()
    ///     .backlog(64)
    ///     .unwrap();
    /// # drop(server);
    /// ```
    ///
    /// # Errors
    /// The error of `listen(2)` (`EBADF` once stopped).
    pub fn backlog(self, backlog: u32) -> io::Result<StreamServer> {
        listen(self.inner.listener.as_raw_fd(), backlog)?;
        Ok(self)
    }

    /// A server on a listener you made.
    pub fn from_listener(
        listener: TcpListener,
        handler: impl Fn(TcpStream, SocketAddr) + 'static,
    ) -> StreamServer {
        StreamServer {
            inner: Rc::new(Inner {
                listener,
                handler: Rc::new(handler),
                pool: None,
                group: Group::new(),
                accepting: RefCell::new(None),
                stack_size: None,
                stopped: Event::new(),
                accepted: Cell::new(0),
                accept_errors: Cell::new(0),
            }),
        }
    }

    fn configure(self, f: impl FnOnce(&mut Inner)) -> StreamServer {
        let Ok(mut inner) = Rc::try_unwrap(self.inner) else {
            panic!("StreamServer must be configured before it is cloned or started");
        };
        f(&mut inner);
        StreamServer {
            inner: Rc::new(inner),
        }
    }

    fn with_pool(self, pool: Pool) -> StreamServer {
        self.configure(|i| i.pool = Some(pool))
    }

    /// Runs each handler on a stack of `bytes` (handlers that need deep
    /// stacks, such as TLS handshakes in debug builds). Call before cloning
    /// or starting the server.
    ///
    /// # Panics
    /// If the server was already cloned or started.
    pub fn stack_size(self, bytes: usize) -> StreamServer {
        self.configure(|i| i.stack_size = Some(bytes))
    }

    /// Runs handlers in `pool`: at most its size at once; accepting waits
    /// for a free slot. Call before cloning or starting the server.
    ///
    /// # Panics
    /// If the server was already cloned or started.
    pub fn pool(self, pool: Pool) -> StreamServer {
        self.with_pool(pool)
    }

    /// Limits concurrent handlers to `n` (a pool of size `n`).
    ///
    /// # Panics
    /// As [`StreamServer::pool`].
    pub fn max_connections(self, n: usize) -> StreamServer {
        self.with_pool(Pool::new(n))
    }

    /// The address the server listens on.
    ///
    /// # Errors
    /// As `TcpListener::local_addr` (e.g. `EBADF` after `stop`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.listener.local_addr()
    }

    /// Starts accepting in a background greenlet and returns at once.
    ///
    /// # Errors
    /// `InvalidInput` if it was already started; `EBADF` if stopped.
    pub fn start(&self) -> io::Result<()> {
        if self.inner.listener.is_closed() {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        let mut acc = self.inner.accepting.borrow_mut();
        if acc.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the server is already started",
            ));
        }
        let inner = self.inner.clone();
        *acc = Some(spawn(move || accept_loop(&inner)));
        Ok(())
    }

    /// Starts (if needed) and waits until [`StreamServer::stop`] is called.
    ///
    /// # Errors
    /// As [`StreamServer::start`]; an interrupted wait (a `Timeout` of the
    /// caller) as an `io::Error`.
    pub fn serve_forever(&self) -> io::Result<()> {
        if self.inner.accepting.borrow().is_none() {
            self.start()?;
        }
        self.inner.stopped.wait().map_err(io::Error::from)
    }

    /// Stops accepting: closes the listener, then, with a pool, waits up to
    /// `timeout` (`None`: as long as it takes) for running handlers and
    /// kills those still running. Without a pool, running handlers are left
    /// alone (gevent's behaviour). Wakes `serve_forever`.
    ///
    /// # Errors
    /// [`Interrupted`] if waiting for handlers was interrupted.
    pub fn stop(&self, timeout: Option<Duration>) -> Result<(), Interrupted> {
        self.inner.listener.close();
        // Take it out first: `kill` switches, and a second `stop` may run
        // meanwhile (two signals), so no borrow may be held across it.
        let accepting = self.inner.accepting.borrow_mut().take();
        if let Some(g) = accepting {
            g.kill()?;
        }
        self.inner.stopped.set();
        drain(self.inner.pool.as_ref(), timeout)
    }

    /// Whether it is accepting.
    pub fn started(&self) -> bool {
        self.inner.accepting.borrow().is_some()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.inner.accepted.get()
    }

    /// Accept errors that paused accepting (e.g. `EMFILE`).
    pub fn accept_errors(&self) -> u64 {
        self.inner.accept_errors.get()
    }

    /// Handlers running now.
    pub fn connections(&self) -> usize {
        match &self.inner.pool {
            Some(p) => p.len(),
            None => self.inner.group.len(),
        }
    }
}

/// Waits up to `timeout` for a pool's handlers, then kills the rest.
fn drain(pool: Option<&Pool>, timeout: Option<Duration>) -> Result<(), Interrupted> {
    let Some(pool) = pool else { return Ok(()) };
    let done = match timeout {
        None => pool.join().map(|()| true)?,
        Some(t) => pool.group().join_timeout(t)?,
    };
    if !done {
        pool.kill()?;
    }
    Ok(())
}

fn accept_loop(inner: &Rc<Inner>) {
    let mut backoff = MIN_BACKOFF;
    loop {
        if let Some(pool) = &inner.pool {
            // Back-pressure: do not accept what cannot be served yet.
            if pool.wait_available().is_err() {
                return;
            }
        }
        match inner.listener.accept() {
            Ok((conn, peer)) => {
                backoff = MIN_BACKOFF;
                inner.accepted.set(inner.accepted.get() + 1);
                let h = inner.handler.clone();
                let run = move || h(conn, peer);
                let mut builder = Builder::new();
                if let Some(size) = inner.stack_size {
                    builder = builder.stack_size(size);
                }
                let spawned = match &inner.pool {
                    Some(pool) => pool.spawn_with(builder, run).map(drop),
                    None => builder.spawn(run).map(|g| inner.group.add(&g)),
                };
                if let Err(e) = spawned {
                    if inner.listener.is_closed() {
                        return;
                    }
                    // No stack for the handler: the connection is dropped
                    // (closed) and accepting goes on after a pause.
                    log::warn!("StreamServer: cannot start a handler, connection dropped: {e}");
                    if sleep(backoff).is_err() {
                        return;
                    }
                }
            }
            Err(_) if inner.listener.is_closed() => return,
            Err(e) if transient(&e) => {}
            Err(e) => {
                // EMFILE, ENFILE, ENOBUFS, ENOMEM and anything unexpected:
                // the connection stays in the backlog; pause and retry.
                inner.accept_errors.set(inner.accept_errors.get() + 1);
                if backoff == MIN_BACKOFF {
                    log::warn!("StreamServer: accept failed: {e}; retrying with back-off");
                }
                if sleep(backoff).is_err() {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

impl fmt::Debug for StreamServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamServer")
            .field("local_addr", &self.local_addr().ok())
            .field("started", &self.started())
            .field("accepted", &self.accepted())
            .finish()
    }
}

/// One datagram received by a [`DatagramServer`], with the means to reply.
pub struct Datagram {
    /// The payload.
    pub data: Vec<u8>,
    /// Who sent it.
    pub from: SocketAddr,
    socket: Rc<UdpSocket>,
}

impl Datagram {
    /// Sends `bytes` back to the sender from the server's socket.
    ///
    /// # Errors
    /// The error of `send_to`.
    pub fn reply(&self, bytes: &[u8]) -> io::Result<usize> {
        self.socket.send_to(bytes, self.from)
    }

    /// The server's socket.
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }
}

impl fmt::Debug for Datagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Datagram")
            .field("len", &self.data.len())
            .field("from", &self.from)
            .finish()
    }
}

/// A UDP server that runs a handler in its own greenlet for each datagram
/// (gevent's `DatagramServer`). Cloning gives another handle.
#[derive(Clone)]
pub struct DatagramServer {
    socket: Rc<UdpSocket>,
    handler: Rc<dyn Fn(Datagram)>,
    pool: Option<Pool>,
    receiving: Rc<RefCell<Option<Greenlet<()>>>>,
    stopped: Event,
}

/// Largest datagram a [`DatagramServer`] receives whole.
pub const MAX_DATAGRAM: usize = 65_536;

impl DatagramServer {
    /// Binds `addr` and prepares a server.
    ///
    /// # Errors
    /// The error of resolving or binding `addr`.
    pub fn bind(
        addr: impl ToSocketAddrs,
        handler: impl Fn(Datagram) + 'static,
    ) -> io::Result<DatagramServer> {
        Ok(DatagramServer {
            socket: Rc::new(UdpSocket::bind(addr)?),
            handler: Rc::new(handler),
            pool: None,
            receiving: Rc::default(),
            stopped: Event::new(),
        })
    }

    /// Runs handlers in `pool` (receiving waits for a free slot).
    pub fn pool(mut self, pool: Pool) -> DatagramServer {
        self.pool = Some(pool);
        self
    }

    /// The address it listens on.
    ///
    /// # Errors
    /// As `UdpSocket::local_addr`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Starts receiving in a background greenlet.
    ///
    /// # Errors
    /// `InvalidInput` if already started.
    pub fn start(&self) -> io::Result<()> {
        let mut r = self.receiving.borrow_mut();
        if r.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the server is already started",
            ));
        }
        let (socket, handler, pool) =
            (self.socket.clone(), self.handler.clone(), self.pool.clone());
        *r = Some(spawn(move || {
            let mut buf = vec![0u8; MAX_DATAGRAM];
            loop {
                if let Some(p) = &pool {
                    if p.wait_available().is_err() {
                        return;
                    }
                }
                match socket.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        let d = Datagram {
                            data: buf[..n].to_vec(),
                            from,
                            socket: socket.clone(),
                        };
                        let h = handler.clone();
                        match &pool {
                            Some(p) => {
                                if p.spawn(move || h(d)).is_err() {
                                    return;
                                }
                            }
                            None => {
                                spawn(move || h(d));
                            }
                        }
                    }
                    // Closed (a real EBADF, or a waiter's "closed in another
                    // greenlet"): nothing more to receive.
                    Err(e)
                        if e.raw_os_error() == Some(libc::EBADF)
                            || greenlet_runtime::Interrupted::from_io(&e)
                                == Some(greenlet_runtime::Interrupted::Cancelled) =>
                    {
                        return
                    }
                    Err(_) => {
                        if sleep(MIN_BACKOFF).is_err() {
                            return;
                        }
                    }
                }
            }
        }));
        Ok(())
    }

    /// Starts (if needed) and waits until stopped.
    ///
    /// # Errors
    /// As [`DatagramServer::start`]; an interrupted wait as an `io::Error`.
    pub fn serve_forever(&self) -> io::Result<()> {
        if self.receiving.borrow().is_none() {
            self.start()?;
        }
        self.stopped.wait().map_err(io::Error::from)
    }

    /// Stops receiving; with a pool, waits up to `timeout` for handlers,
    /// then kills the rest.
    ///
    /// # Errors
    /// [`Interrupted`] if waiting was interrupted.
    pub fn stop(&self, timeout: Option<Duration>) -> Result<(), Interrupted> {
        let receiving = self.receiving.borrow_mut().take(); // see StreamServer::stop
        if let Some(g) = receiving {
            g.kill()?;
        }
        self.stopped.set();
        drain(self.pool.as_ref(), timeout)
    }
}

impl fmt::Debug for DatagramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramServer")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

thread_local! {
    /// The server a hub thread of a [`ThreadedServer`] runs, for `stop`.
    static THREAD_SERVER: RefCell<Option<StreamServer>> = const { RefCell::new(None) };
}

/// One listener per thread of [`StreamServer::threads`], all on `addr`
/// (its port if 0 was asked for), so that the kernel spreads connections
/// among the threads: `SO_REUSEPORT` listeners on Linux, `SO_REUSEPORT_LB`
/// ones on FreeBSD. Elsewhere `SO_REUSEPORT` only lets sockets share a port
/// (macOS gives each connection to one of them), so the threads share one
/// listener: clones of one fd, each hub accepting from the same queue.
fn thread_listeners(
    addr: SocketAddr,
    n: usize,
    backlog: u32,
) -> io::Result<Vec<std::net::TcpListener>> {
    let first = balanced_listener(addr, backlog)?;
    let addr = first.local_addr()?;
    let mut all = Vec::with_capacity(n);
    for _ in 1..n {
        all.push(if cfg!(any(target_os = "linux", target_os = "freebsd")) {
            balanced_listener(addr, backlog)?
        } else {
            first.try_clone()?
        });
    }
    all.insert(0, first);
    Ok(all)
}

/// A listener that shares `addr` with others of its kind, the kernel
/// balancing connections among them where it can (see [`thread_listeners`]).
fn balanced_listener(addr: SocketAddr, backlog: u32) -> io::Result<std::net::TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    #[cfg(target_os = "linux")]
    s.set_reuse_port(true)?;
    #[cfg(target_os = "freebsd")]
    s.set_reuse_port_lb(true)?;
    s.bind(&addr.into())?;
    let l: std::net::TcpListener = s.into();
    listen(l.as_raw_fd(), backlog)?;
    Ok(l)
}

impl StreamServer {
    /// Serves `addr` on `n` OS threads, each with its own hub and its own
    /// `SO_REUSEPORT` listener (Linux; `SO_REUSEPORT_LB` on FreeBSD; one
    /// shared listener where the kernel does not balance): a hub per core.
    /// `handler` is shared by all threads, so it must be `Send + Sync`; each
    /// connection still runs in a greenlet of the thread that accepted it.
    ///
    /// ```
    /// use greenlet_net::StreamServer;
    /// use std::io::{Read, Write};
    ///
    /// let server = StreamServer::threads("127.0.0.1:0", 2, |mut c: greenlet_net::TcpStream, _| {
    ///     let mut b = [0u8; 1];
    ///     if c.read_exact(&mut b).is_ok() {
    ///         let _ = c.write_all(&b);
    ///     }
    /// })
    /// .unwrap();
    /// let mut c = std::net::TcpStream::connect(server.local_addr()).unwrap();
    /// c.write_all(b"x").unwrap();
    /// let mut b = [0u8; 1];
    /// c.read_exact(&mut b).unwrap();
    /// server.stop();
    /// assert_eq!(server.join().unwrap().iter().sum::<u64>(), 1);
    /// ```
    ///
    /// Each listener's backlog is [`DEFAULT_BACKLOG`]; see
    /// [`StreamServer::threads_with_backlog`].
    ///
    /// # Errors
    /// Binding errors (the first listener's), or a thread that could not be
    /// started.
    pub fn threads(
        addr: impl ToSocketAddrs,
        n: usize,
        handler: impl Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
    ) -> io::Result<ThreadedServer> {
        StreamServer::threads_with_backlog(addr, n, DEFAULT_BACKLOG, handler)
    }

    /// [`StreamServer::threads`] with each thread's listen backlog set to
    /// `backlog` (see [`StreamServer::backlog`]).
    ///
    /// # Errors
    /// As [`StreamServer::threads`].
    pub fn threads_with_backlog(
        addr: impl ToSocketAddrs,
        n: usize,
        backlog: u32,
        handler: impl Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
    ) -> io::Result<ThreadedServer> {
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind"))?;
        let listeners = thread_listeners(addr, n.max(1), backlog)?;
        let addr = listeners[0].local_addr()?; // the real port if 0 was asked for
        let handler = std::sync::Arc::new(handler);
        let mut threads = Vec::with_capacity(listeners.len());
        for std_listener in listeners {
            let h = handler.clone();
            threads.push(greenlet_runtime::hub::spawn_thread(
                move || -> io::Result<u64> {
                    let listener = TcpListener::from_std(std_listener)?;
                    let server = StreamServer::from_listener(listener, move |c, p| h(c, p));
                    THREAD_SERVER.with(|s| *s.borrow_mut() = Some(server.clone()));
                    let r = server.serve_forever();
                    THREAD_SERVER.with(|s| s.borrow_mut().take());
                    r.map(|()| server.accepted())
                },
            )?);
        }
        Ok(ThreadedServer { threads, addr })
    }
}

/// A server running on several hub threads ([`StreamServer::threads`]).
pub struct ThreadedServer {
    threads: Vec<greenlet_runtime::hub::HubThread<io::Result<u64>>>,
    addr: SocketAddr,
}

impl ThreadedServer {
    /// The address all threads listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Number of threads.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// Asks every thread to stop accepting (running handlers are left to
    /// finish). Never blocks.
    pub fn stop(&self) {
        for t in &self.threads {
            let _ = t.remote().spawn(|| {
                if let Some(s) = THREAD_SERVER.with(|s| s.borrow().clone()) {
                    let _ = s.stop(None);
                }
            });
        }
    }

    /// Waits (cooperatively) for every thread to end, after [`stop`]; returns
    /// how many connections each accepted.
    ///
    /// [`stop`]: ThreadedServer::stop
    ///
    /// # Errors
    /// The first thread's error (a failed listener, a panic, an interrupted
    /// wait) as an `io::Error`.
    pub fn join(self) -> io::Result<Vec<u64>> {
        self.threads
            .into_iter()
            .map(|t| t.join().map_err(io::Error::from)?)
            .collect()
    }
}

impl fmt::Debug for ThreadedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadedServer")
            .field("addr", &self.addr)
            .field("threads", &self.threads.len())
            .finish()
    }
}

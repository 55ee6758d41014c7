//! The echo servers, one per implementation, each run by the hidden
//! subcommand `serve <kind> <port>` in a child process pinned to CPU 0.
//!
//! Every server does the same work per connection: read up to [`BUF`]
//! bytes, write them all back, repeat until end of file; `TCP_NODELAY` on
//! every accepted socket. Each prints `listening <addr>` once it accepts.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;

/// Read buffer of every server. Larger than the largest message, so a
/// read that returns a whole message is a short read.
pub const BUF: usize = 16 * 1024;

/// Seconds after which a server exits by itself (`alarm`), whatever the
/// parent does: a bound on every run.
const LIFETIME_SECS: u32 = 900;

/// The server kinds, in the order the suite runs them (greenlet first).
pub const KINDS: [&str; 5] = ["greenlet", "tokio", "may", "threads", "epoll"];

/// Runs the `serve` subcommand; returns the exit code.
pub fn serve(kind: &str, port: u16) -> i32 {
    if !KINDS.contains(&kind) {
        eprintln!("serve: unknown kind {kind:?}; one of {KINDS:?}");
        return 2;
    }
    // Pin before any thread exists, so every thread inherits CPU 0.
    if crate::sys::online_cpus() >= 2 {
        if let Err(e) = crate::sys::pin_to_cpu(0) {
            eprintln!("serve: pinning to CPU 0 failed: {e}");
        }
    }
    // SAFETY: alarm has no memory-safety preconditions; SIGALRM's default
    // action ends the process, which is the point.
    unsafe { libc::alarm(LIFETIME_SECS) };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let r = match kind {
        "greenlet" => greenlet_server(addr),
        "tokio" => tokio_server(addr),
        "may" => may_server(addr),
        "threads" => threads_server(addr),
        _ => epoll_server(addr),
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("serve {kind}: {e}");
            1
        }
    }
}

/// Tells the parent where the server listens.
fn announce(addr: SocketAddr) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "listening {addr}")?;
    out.flush()
}

// ---------------------------------------------------------------- greenlet

/// greenlet's echo server as `examples/echo_server.rs` writes it: a
/// `greenlet::net::StreamServer`, one greenlet per connection, plain
/// blocking `read` / `write_all` on `greenlet::net::TcpStream`.
fn greenlet_server(addr: SocketAddr) -> io::Result<()> {
    use greenlet::net::{StreamServer, TcpStream};
    fn echo(mut conn: TcpStream) -> io::Result<()> {
        conn.set_nodelay(true)?;
        let mut buf = [0u8; BUF];
        loop {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            conn.write_all(&buf[..n])?;
        }
    }
    let server = StreamServer::bind(addr, |conn: TcpStream, _peer: SocketAddr| {
        let _ = echo(conn);
    })?;
    announce(server.local_addr()?)?;
    server.serve_forever()
}

// ------------------------------------------------------------------- tokio

fn tokio_server(addr: SocketAddr) -> io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let l = tokio::net::TcpListener::bind(addr).await?;
        announce(l.local_addr()?)?;
        loop {
            let (mut s, _) = l.accept().await?;
            tokio::task::spawn_local(async move {
                s.set_nodelay(true)?;
                let mut buf = vec![0u8; BUF];
                loop {
                    let n = s.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<(), io::Error>(());
                    }
                    s.write_all(&buf[..n]).await?;
                }
            });
        }
    })
}

// --------------------------------------------------------------------- may

fn may_server(addr: SocketAddr) -> io::Result<()> {
    use may::coroutine;
    may::config().set_workers(1);
    let l = may::net::TcpListener::bind(addr)?;
    announce(l.local_addr()?)?;
    // SAFETY: may's contract: no thread-locals in coroutines, and stacks
    // large enough. The closures use neither; the read buffer is on the
    // heap (as in may's own echo example), not on the small stack.
    let acceptor = unsafe {
        coroutine::spawn(move || -> io::Result<()> {
            loop {
                let (mut s, _) = l.accept()?;
                // (Inside the outer `unsafe`: the same contract holds.)
                coroutine::spawn(move || -> io::Result<()> {
                    s.set_nodelay(true)?;
                    echo_blocking(&mut s)
                });
            }
        })
    };
    acceptor
        .join()
        .map_err(|_| io::Error::other("may acceptor panicked"))?
}

// ----------------------------------------------------------------- threads

/// Echoes until EOF with blocking-style reads and writes (may's coroutine
/// sockets and std's both look like this).
fn echo_blocking(s: &mut (impl Read + Write)) -> io::Result<()> {
    let mut buf = vec![0u8; BUF];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        s.write_all(&buf[..n])?;
    }
}

fn threads_server(addr: SocketAddr) -> io::Result<()> {
    let l = TcpListener::bind(addr)?;
    announce(l.local_addr()?)?;
    loop {
        let (mut s, _) = l.accept()?;
        std::thread::spawn(move || -> io::Result<()> {
            s.set_nodelay(true)?;
            echo_blocking(&mut s)
        });
    }
}

// ------------------------------------------------------------------- epoll

/// One connection of the raw epoll loop: its socket and the bytes read but
/// not yet written back (only when a send was partial).
struct EpollConn {
    s: TcpStream,
    pending: Vec<u8>,
}

fn epoll_ctl(ep: i32, op: i32, fd: i32, events: u32, key: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: key };
    // SAFETY: `ev` is a valid epoll_event; `ep` is our epoll fd.
    if unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The physical bound: a level-triggered epoll loop on one thread doing one
/// `epoll_wait` per batch of ready sockets and one `recv` + one `send` per
/// message.
fn epoll_server(addr: SocketAddr) -> io::Result<()> {
    const LISTENER: u64 = u64::MAX;
    let l = TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    // SAFETY: epoll_create1 has no memory-safety preconditions.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(io::Error::last_os_error());
    }
    epoll_ctl(
        ep,
        libc::EPOLL_CTL_ADD,
        l.as_raw_fd(),
        libc::EPOLLIN as u32,
        LISTENER,
    )?;
    announce(l.local_addr()?)?;
    let mut conns: slab::Slab<EpollConn> = slab::Slab::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut buf = vec![0u8; BUF];
    loop {
        // SAFETY: `events` is a valid, writable buffer of the length passed.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in &events[..n as usize] {
            let (key, flags) = (ev.u64, ev.events);
            if key == LISTENER {
                loop {
                    match l.accept() {
                        Ok((s, _)) => {
                            s.set_nonblocking(true)?;
                            s.set_nodelay(true)?;
                            let fd = s.as_raw_fd();
                            let k = conns.insert(EpollConn {
                                s,
                                pending: Vec::new(),
                            });
                            epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32, k as u64)?;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let k = key as usize;
            let Some(c) = conns.get_mut(k) else { continue };
            let close = if flags & libc::EPOLLOUT as u32 != 0 && !c.pending.is_empty() {
                match (&c.s).write(&c.pending) {
                    Ok(w) => {
                        c.pending.drain(..w);
                        if c.pending.is_empty() {
                            let fd = c.s.as_raw_fd();
                            epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, libc::EPOLLIN as u32, key)?;
                        }
                        false
                    }
                    Err(e) => e.kind() != io::ErrorKind::WouldBlock,
                }
            } else if c.pending.is_empty() {
                match (&c.s).read(&mut buf) {
                    Ok(0) => true,
                    Ok(r) => match (&c.s).write(&buf[..r]) {
                        Ok(w) if w == r => false,
                        Ok(w) => {
                            c.pending.extend_from_slice(&buf[w..r]);
                            let fd = c.s.as_raw_fd();
                            epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, libc::EPOLLOUT as u32, key)?;
                            false
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            c.pending.extend_from_slice(&buf[..r]);
                            let fd = c.s.as_raw_fd();
                            epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, libc::EPOLLOUT as u32, key)?;
                            false
                        }
                        Err(_) => true,
                    },
                    Err(e) => e.kind() != io::ErrorKind::WouldBlock,
                }
            } else {
                false
            };
            if close {
                // Dropping the socket closes it, which removes it from epoll.
                conns.remove(k);
            }
        }
    }
}

//! Cooperative TCP (`greenlet::net::{TcpListener, TcpStream}`) on loopback:
//! echo with a std peer thread, EOF, `write_all` of 8 MiB while other
//! greenlets run, per-socket timeouts, a `Timeout` guard interrupting a
//! read, connect errors, one waiter per direction, `close`/`shutdown` while
//! another greenlet waits, operations on a closed socket, kill of a blocked
//! reader (no fd leak), non-blocking mode, std conversions.

mod support;

use std::cell::Cell;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::{mpsc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use greenlet::net::{Domain, SockRef, Socket, TcpListener, TcpStream, Type};
use greenlet::{sleep, spawn, yield_now, Greenlet, GreenletState, Interrupted, Timeout};

/// Tests take this shared; the fd-leak test takes it exclusively, so it
/// counts `/proc/self/fd` while no other test of this file opens fds.
static FDS: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    FDS.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    FDS.write().unwrap_or_else(|e| e.into_inner())
}

const CLOSED_MSG: &str = "File descriptor was closed in another greenlet";

/// A connected pair on loopback, both cooperative.
fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

fn assert_ebadf(e: &io::Error) {
    assert_eq!(e.raw_os_error(), Some(9), "{e}");
    assert!(e.to_string().contains("Bad file descriptor"), "{e}");
}

fn assert_cancelled(e: &io::Error) {
    assert!(e.to_string().contains(CLOSED_MSG), "{e}");
    assert_eq!(Interrupted::from_io(e), Some(Interrupted::Cancelled));
}

/// A greenlet parked in a 4-byte read of `a` (asserted), for the tests of
/// what wakes a blocked reader.
fn parked_reader(a: &Rc<TcpStream>) -> Greenlet<io::Result<usize>> {
    let a = a.clone();
    let reader = spawn(move || {
        let mut buf = [0u8; 4];
        (&*a).read(&mut buf)
    });
    yield_now();
    assert_eq!(reader.state(), GreenletState::Parked);
    reader
}

#[test]
fn echo_with_a_std_peer_thread_then_eof() {
    let _g = shared();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        for i in 0..50u32 {
            let msg = format!("message {i}");
            s.write_all(msg.as_bytes()).unwrap();
            let mut back = vec![0u8; msg.len()];
            s.read_exact(&mut back).unwrap();
            assert_eq!(back, msg.as_bytes());
        }
        // Dropping the stream closes it: the server reads EOF.
    });
    let (mut conn, from) = listener.accept().unwrap();
    assert_eq!(from, conn.peer_addr().unwrap());
    let mut buf = [0u8; 256];
    let mut total = 0;
    loop {
        let n = conn.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
        conn.write_all(&buf[..n]).unwrap();
    }
    assert!(total > 0);
    assert_eq!(conn.read(&mut buf).unwrap(), 0, "EOF stays EOF");
    peer.join().unwrap();
}

#[test]
fn data_and_fin_in_one_event_then_a_short_read_still_sees_eof() {
    let _g = shared();
    let (a, b) = pair();
    let a = Rc::new(a);
    let a2 = a.clone();
    let reader = spawn(move || {
        let mut buf = [0u8; 100];
        let first = (&*a2).read(&mut buf).unwrap(); // parks (registered)
        let second = (&*a2).read(&mut buf).unwrap(); // must not park forever
        (first, second)
    });
    yield_now();
    assert_eq!(reader.state(), GreenletState::Parked);
    // Data and FIN arrive before the hub polls again: one edge for both.
    (&b).write_all(b"abc").unwrap();
    b.shutdown(Shutdown::Write).unwrap();
    let t = Timeout::start_new(Duration::from_secs(10));
    let got = reader
        .get()
        .expect("after the short read, the next read must see EOF, not park forever");
    drop(t);
    assert_eq!(got, (3, 0));
}

#[test]
fn write_all_of_8_mib_lets_other_greenlets_run() {
    let _g = shared();
    const SIZE: usize = 8 << 20;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    // Fixed small buffers (no autotuning), inherited by the accepted stream.
    SockRef::from(&listener)
        .set_recv_buffer_size(64 << 10)
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    // A slow reader: it does not read until told to, then checks every byte.
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        go_rx.recv().unwrap();
        let mut got = 0usize;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = s.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            for (i, b) in buf[..n].iter().enumerate() {
                assert_eq!(*b, ((got + i) % 251) as u8);
            }
            got += n;
        }
        got
    });
    let stream = Rc::new(TcpStream::connect(addr).unwrap());
    SockRef::from(&*stream)
        .set_send_buffer_size(64 << 10)
        .unwrap();
    let data: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let s = stream.clone();
    let writer = spawn(move || {
        (&*s).write_all(&data).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
    });
    // Another greenlet makes progress while the writer is blocked.
    let ticks = Rc::new(Cell::new(0u32));
    let t = ticks.clone();
    let w = writer.as_ref();
    let ticker = spawn(move || {
        for _ in 0..20 {
            sleep(Duration::from_millis(1)).unwrap();
            t.set(t.get() + 1);
        }
        assert!(!w.dead(), "8 MiB cannot fit in 128 KiB of socket buffers");
        assert_eq!(w.state(), GreenletState::Parked);
        go_tx.send(()).unwrap();
    });
    ticker.join().unwrap();
    assert_eq!(ticks.get(), 20);
    writer.join().unwrap();
    assert!(writer.successful());
    assert_eq!(reader.join().unwrap(), SIZE);
}

#[test]
fn read_timeout_gives_timed_out_per_call() {
    let _g = shared();
    let (a, _b) = pair();
    a.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    assert_eq!(a.read_timeout().unwrap(), Some(Duration::from_millis(50)));
    let mut buf = [0u8; 8];
    for _ in 0..2 {
        let t0 = Instant::now();
        let err = (&a).read(&mut buf).unwrap_err();
        let took = t0.elapsed();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        assert_eq!(err.to_string(), "timed out");
        assert!(took >= Duration::from_millis(50), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
    }
    let err = a.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn write_timeout_gives_timed_out() {
    let _g = shared();
    let (a, _b) = pair();
    a.set_write_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    // Nobody reads `_b`: the buffers fill and the write times out.
    let chunk = vec![7u8; 64 << 20];
    let err = (&a).write_all(&chunk).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert_eq!(err.to_string(), "timed out");
}

/// With both buffers full, the peer takes 64 KiB once, early in the
/// write's timeout: less than the third of the send buffer the kernel
/// wants free before it reports the socket writable again, so no
/// readiness edge comes. A write may time out only when no byte could be
/// sent for the whole timeout (`SO_SNDTIMEO`'s rule), so at the deadline it
/// tries again and sends what fits. (It returned `TimedOut`: a slow but
/// live reader was cut off.)
#[test]
fn a_write_that_reaches_its_timeout_still_sends_what_fits() {
    let _g = shared();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut peer, _) = l.accept().unwrap();
    // The kernel caps it at net.core.wmem_max and doubles it: ~416 KiB here,
    // so a third of it is well above the 64 KiB the peer will take.
    SockRef::from(&a).set_send_buffer_size(1 << 20).unwrap();
    a.set_nonblocking(true).unwrap();
    let chunk = vec![5u8; 64 << 10];
    loop {
        match (&a).write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    a.set_nonblocking(false).unwrap();
    let timeout = Duration::from_millis(700);
    a.set_write_timeout(Some(timeout)).unwrap();
    let reader = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        let mut buf = vec![0u8; 64 << 10];
        peer.read_exact(&mut buf).unwrap();
        peer
    });
    let t0 = Instant::now();
    let n = (&a).write(&chunk).unwrap();
    assert!(n > 0);
    assert!(
        t0.elapsed() >= timeout - Duration::from_millis(50),
        "{:?}",
        t0.elapsed()
    );
    drop(reader.join().unwrap());
}

#[test]
fn a_timeout_guard_interrupts_a_read_and_the_socket_stays_usable() {
    let _g = shared();
    let (a, b) = pair();
    let mut buf = [0u8; 16];
    let t = Timeout::start_new(Duration::from_millis(20));
    let err = (&a).read(&mut buf).unwrap_err();
    assert!(t.is(&err), "{err}");
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    drop(t);
    // Usable: a later read gets the data.
    let b = Rc::new(b);
    let b2 = b.clone();
    spawn(move || (&*b2).write_all(b"after").unwrap());
    let n = (&a).read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"after");
}

#[test]
fn connect_to_a_closed_port_is_refused() {
    let _g = shared();
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

/// A listener that never accepts, with the smallest backlog, filled up:
/// further SYNs are dropped, so connects to it hang. Returns the listener,
/// its address, the connections that filled it, and the error and duration
/// of the first `connect_timeout(100 ms)` that did not get in.
fn full_backlog() -> (Socket, SocketAddr, Vec<TcpStream>, io::Error, Duration) {
    let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    l.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    l.listen(0).unwrap();
    let addr = l.local_addr().unwrap().as_socket().unwrap();
    let mut held = Vec::new();
    for _ in 0..16 {
        let t0 = Instant::now();
        match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
            Ok(s) => held.push(s),
            Err(e) => return (l, addr, held, e, t0.elapsed()),
        }
    }
    panic!("a connect to a full backlog should time out");
}

#[test]
fn connect_timeout_to_a_full_backlog_times_out() {
    let _g = shared();
    let (_l, addr, _held, err, took) = full_backlog();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    assert_eq!(err.to_string(), "timed out");
    assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(5));
    assert_eq!(
        TcpStream::connect_timeout(&addr, Duration::ZERO)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn a_timeout_guard_ends_connect_without_trying_the_next_address() {
    let _g = shared();
    let (_l, addr, _held, _, _) = full_backlog();
    // Two addresses that both hang: the guard's error must come back from
    // the first, not be swallowed while the second is tried.
    let t = Timeout::start_new(Duration::from_millis(50));
    let t0 = Instant::now();
    let err = TcpStream::connect(&[addr, addr][..]).unwrap_err();
    assert!(t.is(&err), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_second_reader_or_writer_gets_resource_busy() {
    let _g = shared();
    let (a, b) = pair();
    let a = Rc::new(a);
    let a2 = a.clone();
    let first = spawn(move || {
        let mut buf = [0u8; 4];
        (&*a2).read(&mut buf).map(|n| buf[..n].to_vec())
    });
    yield_now();
    assert_eq!(first.state(), GreenletState::Parked);
    let mut buf = [0u8; 4];
    let err = (&*a).read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ResourceBusy);
    assert!(err.to_string().contains("another greenlet"), "{err}");
    (&b).write_all(b"data").unwrap();
    assert_eq!(first.get().unwrap().unwrap(), b"data");

    // Writers: fill the buffers so one writer parks, then try a second.
    let chunk = vec![1u8; 1 << 20];
    let a2 = a.clone();
    let writer = spawn(move || {
        let chunk = vec![1u8; 8 << 20];
        (&*a2).write_all(&chunk)
    });
    yield_now();
    assert_eq!(writer.state(), GreenletState::Parked);
    let err = (&*a).write(&chunk).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ResourceBusy);
    a.close();
    assert_cancelled(&writer.get().unwrap().unwrap_err());
}

#[test]
fn close_wakes_a_blocked_reader_with_the_closed_error() {
    let _g = shared();
    let (a, _b) = pair();
    let a = Rc::new(a);
    let reader = parked_reader(&a);
    a.close(); // the closer does not fail
    assert!(a.is_closed());
    assert_cancelled(&reader.get().unwrap().unwrap_err());
    // Later operations: EBADF, never a panic.
    let mut buf = [0u8; 4];
    assert_ebadf(&(&*a).read(&mut buf).unwrap_err());
    assert_ebadf(&(&*a).write(b"x").unwrap_err());
    a.close(); // twice is fine
}

#[test]
fn close_wakes_a_blocked_accept() {
    let _g = shared();
    let l = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let l2 = l.clone();
    let acceptor = spawn(move || l2.accept().map(|_| ()));
    yield_now();
    assert_eq!(acceptor.state(), GreenletState::Parked);
    l.close();
    assert_cancelled(&acceptor.get().unwrap().unwrap_err());
    assert_ebadf(&l.accept().unwrap_err());
    assert_ebadf(&l.local_addr().unwrap_err());
}

#[test]
fn shutdown_read_wakes_only_the_reader() {
    let _g = shared();
    let (a, b) = pair();
    let a = Rc::new(a);
    let reader = parked_reader(&a);
    a.shutdown(Shutdown::Read).unwrap();
    assert_cancelled(&reader.get().unwrap().unwrap_err());
    // The write half still works.
    (&*a).write_all(b"still").unwrap();
    let mut buf = [0u8; 5];
    (&b).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"still");
}

#[test]
fn operations_on_a_closed_socket_give_ebadf() {
    let _g = shared();
    let (a, _b) = pair();
    a.close();
    let mut buf = [0u8; 4];
    assert_ebadf(&(&a).read(&mut buf).unwrap_err());
    assert_ebadf(&(&a).write(b"x").unwrap_err());
    assert_ebadf(&a.peer_addr().unwrap_err());
    assert_ebadf(&a.try_clone().unwrap_err());
    assert_ebadf(&a.set_read_timeout(None).unwrap_err());
    assert_ebadf(&a.shutdown(Shutdown::Both).unwrap_err());
    assert_ebadf(&a.peek(&mut buf).unwrap_err());
    // The fd number stays reserved until drop, on a dead placeholder.
    let fd = a.as_raw_fd();
    assert!(fd >= 0);
    // SAFETY: a read into a valid buffer on an fd `a` keeps open.
    let n = unsafe { libc_read(fd, &mut buf) };
    assert_eq!(n, Err(9));
    assert_ebadf(&a.into_std().unwrap_err());
}

/// `read(2)` on a raw fd: bytes read, or the errno.
///
/// # Safety
/// `fd` must be open for the duration of the call.
unsafe fn libc_read(fd: i32, buf: &mut [u8]) -> Result<usize, i32> {
    // SAFETY: `fd` is open (the caller's contract); `ManuallyDrop` keeps
    // the `File` from closing an fd it does not own.
    let f = std::mem::ManuallyDrop::new(unsafe {
        <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd)
    });
    (&*f).read(buf).map_err(|e| e.raw_os_error().unwrap_or(-1))
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn killing_a_blocked_reader_frees_the_socket_and_leaks_no_fd() {
    let _g = exclusive();
    let (a, b) = pair();
    let before = open_fds();
    for _ in 0..20 {
        let (c, d) = pair();
        let c = Rc::new(c);
        let c2 = c.clone();
        let reader = spawn(move || {
            let mut buf = [0u8; 4];
            let _ = (&*c2).read(&mut buf);
            unreachable!("killed while blocked in read");
        });
        yield_now();
        assert_eq!(reader.state(), GreenletState::Parked);
        reader.kill().unwrap();
        assert!(reader.killed());
        // The socket is free for another reader.
        let c2 = c.clone();
        let next = spawn(move || {
            let mut buf = [0u8; 4];
            let n = (&*c2).read(&mut buf).unwrap();
            buf[..n].to_vec()
        });
        (&d).write_all(b"ok").unwrap();
        assert_eq!(next.get().unwrap(), b"ok");
    }
    // A greenlet killed in `connect` drops its half-made socket too.
    for _ in 0..5 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let g = spawn(move || TcpStream::connect(addr).map(|_| ()));
        yield_now(); // it starts, and parks in connect or is done
        g.kill().unwrap();
    }
    drop((a, b));
    assert!(
        open_fds() < before,
        "fds leaked: {} before (with one pair open), {} after",
        before,
        open_fds()
    );
}

#[test]
fn nonblocking_mode_gives_would_block_at_once() {
    let _g = shared();
    let (a, b) = pair();
    a.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4];
    let t0 = Instant::now();
    assert_eq!(
        (&a).read(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert!(t0.elapsed() < Duration::from_secs(1));
    (&b).write_all(b"hey").unwrap();
    // Still non-blocking: poll until the data is there.
    let n = loop {
        match (&a).read(&mut buf) {
            Ok(n) => break n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                greenlet::net::wait_read(a.as_raw_fd(), None).unwrap()
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(&buf[..n], b"hey");
    a.set_nonblocking(false).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    assert_eq!(l.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
}

#[test]
fn reads_and_writes_from_two_greenlets_at_once() {
    let _g = shared();
    let (a, b) = pair();
    let (a, b) = (Rc::new(a), Rc::new(b));
    // `a` echoes what it reads while, on `b`, one greenlet writes and
    // another reads: both directions of both sockets are busy at once.
    let a2 = a.clone();
    let echo = spawn(move || {
        let mut buf = [0u8; 1024];
        loop {
            let n = (&*a2).read(&mut buf).unwrap();
            if n == 0 {
                a2.shutdown(Shutdown::Write).unwrap();
                return;
            }
            (&*a2).write_all(&buf[..n]).unwrap();
        }
    });
    let b2 = b.clone();
    let sender = spawn(move || {
        for i in 0..200u32 {
            (&*b2).write_all(&i.to_le_bytes()).unwrap();
        }
        b2.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    (&*b).read_to_end(&mut got).unwrap();
    let want: Vec<u8> = (0..200u32).flat_map(|i| i.to_le_bytes()).collect();
    assert_eq!(got, want);
    sender.join().unwrap();
    echo.join().unwrap();
    assert!(echo.successful() && sender.successful());
}

#[test]
fn std_conversions_clone_peek_and_options() {
    let _g = shared();
    let (a, b) = pair();
    a.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    a.set_nodelay(true).unwrap();
    assert!(a.nodelay().unwrap());
    a.set_ttl(42).unwrap();
    assert_eq!(a.ttl().unwrap(), 42);
    let c = a.try_clone().unwrap();
    assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_secs(3)));
    (&b).write_all(b"peek").unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(c.peek(&mut buf).unwrap(), 4);
    assert_eq!(&buf, b"peek");
    // Closing the clone leaves the original open.
    c.close();
    (&a).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"peek");
    // into_std: blocking again, with the timeout as SO_RCVTIMEO.
    let s = a.into_std().unwrap();
    assert_eq!(s.read_timeout().unwrap(), Some(Duration::from_secs(3)));
    let back = TcpStream::from_std(s).unwrap();
    assert_eq!(back.read_timeout().unwrap(), Some(Duration::from_secs(3)));
    // Conversions from a socket2-level Socket keep the fd.
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let fd = sock.as_raw_fd();
    let l = TcpListener::from(sock);
    assert_eq!(l.as_raw_fd(), fd);
    let dbg = format!("{back:?}");
    assert!(dbg.starts_with("TcpStream("), "{dbg}");
    back.close();
    assert_eq!(format!("{back:?}"), "TcpStream(closed)");
}

#[test]
fn incoming_serves_several_clients() {
    let _g = shared();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = spawn(move || {
        for (i, conn) in l.incoming().take(3).enumerate() {
            let conn = conn.unwrap();
            (&conn).write_all(&[i as u8]).unwrap();
        }
    });
    for i in 0..3u8 {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
        assert_eq!(b[0], i);
    }
    server.join().unwrap();
}

/// How many epoll instances of this process hold an entry for `fd` on the
/// file with inode `ino` (from `/proc/self/fdinfo`).
fn epoll_entries(fd: i32, ino: u64) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc/self/fdinfo").unwrap().flatten() {
        let info = std::fs::read_to_string(e.path()).unwrap_or_default();
        for line in info.lines().filter(|l| l.starts_with("tfd:")) {
            let mut words = line.split_whitespace();
            let tfd = words.nth(1).and_then(|w| w.parse::<i32>().ok());
            let entry_ino = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("ino:"))
                .and_then(|h| u64::from_str_radix(h, 16).ok());
            if tfd == Some(fd) && entry_ino == Some(ino) {
                n += 1;
            }
        }
    }
    n
}

/// `close` while a greenlet waits on the socket and another fd for it
/// exists (`try_clone`): the socket lives on through the clone, so its
/// epoll entry must be deleted before the fd is replaced. (It stayed: the
/// waiter's reference kept the registration, whose later delete went
/// through the replaced fd and missed.)
#[test]
fn close_with_a_waiter_and_a_clone_leaves_no_epoll_entry() {
    let _g = shared();
    let (a, _peer) = pair();
    let a = Rc::new(a);
    let clone = a.try_clone().unwrap();
    let fd = a.as_raw_fd();
    // SAFETY: fstat into a zeroed struct on an open fd.
    let ino = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        assert_eq!(libc::fstat(clone.as_raw_fd(), &mut st), 0);
        st.st_ino
    };
    let reader = parked_reader(&a);
    assert_eq!(epoll_entries(fd, ino), 1);
    a.close();
    assert_cancelled(&reader.get().unwrap().unwrap_err());
    assert_eq!(epoll_entries(fd, ino), 0, "a stale epoll entry for fd {fd}");
    drop(a);
    assert_eq!(epoll_entries(fd, ino), 0, "a stale epoll entry for fd {fd}");
    // The clone still works.
    assert!(clone.peer_addr().is_ok());
}

/// A read stops short at an urgent mark (out-of-band data) with more data
/// queued behind it, and no further edge comes for that data: the reader
/// still gets it (the reactor learns of the mark from `EPOLLPRI` and keeps
/// readiness after such a short read).
#[test]
fn data_after_an_urgent_byte_is_read_without_a_new_edge() {
    let _fds = shared();
    let (a, b) = pair();
    a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    (&b).write_all(b"abc").unwrap();
    SockRef::from(&b).send_out_of_band(b"!").unwrap();
    (&b).write_all(b"def").unwrap();
    sleep(Duration::from_millis(20)).unwrap(); // all of it queued at `a`
    let t0 = Instant::now();
    let got = support::read_at_least(&a, 6);
    assert_eq!(got, b"abcdef", "the urgent byte is not inline");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "the data after the mark waited for the read timeout"
    );
}

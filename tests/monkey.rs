//! Monkey patching: unmodified blocking code (std's sockets and sleep,
//! `ureq`, libc's `poll`/`select`) is cooperative inside greenlets once
//! `patch_all()` was called, keeps the user's view of each fd, and can be
//! interrupted by timeouts and kills. Every test calls `patch_all()`
//! (process-wide, idempotent) and runs on its own thread with its own hub.
#![cfg(feature = "monkey")]

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::{monkey, spawn, Builder, Greenlet};

/// Patches everything; the hooks must be linked in this test binary.
fn patch() {
    monkey::patch_all().expect("the monkey hooks are linked into the facade's tests");
}

/// A greenlet that counts ticks every 10 ms (greenlet sleeps) until the
/// returned counter is dropped by the test; proves the hub kept running.
fn ticker() -> (Rc<Cell<u32>>, Greenlet<()>) {
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    let g = spawn(move || {
        while Rc::strong_count(&t) > 1 {
            if greenlet::sleep(Duration::from_millis(10)).is_err() {
                return;
            }
            t.set(t.get() + 1);
        }
    });
    (ticks, g)
}

/// Asserts that a wait took about `min` (within generous bounds) and that
/// the ticker ran at least `min_ticks` times meanwhile (the hub kept going).
fn assert_waited_cooperatively(took: Duration, min: Duration, ticks: &Cell<u32>, min_ticks: u32) {
    assert!(
        took >= min - Duration::from_millis(10) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(
        ticks.get() >= min_ticks,
        "the hub was blocked: {} ticks",
        ticks.get()
    );
}

/// A plain std HTTP/1.1 server in greenlets on a free loopback port: each
/// request is answered after `delay` (a `std::thread::sleep`) with the
/// request path as body. Returns its address.
fn delaying_http_server(delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            spawn(move || {
                let _ = serve_one(conn, delay);
            });
        }
    });
    addr
}

fn serve_one(conn: TcpStream, delay: Duration) -> io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
    }
    std::thread::sleep(delay);
    let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{path}",
        path.len()
    )
}

#[test]
fn hooks_are_linked() {
    monkey::check_hooks().unwrap();
    patch();
    assert!(monkey::is_patched());
}

#[test]
fn thread_sleep_is_a_greenlet_sleep() {
    patch();
    let t0 = Instant::now();
    let gs: Vec<_> = (0..20)
        .map(|_| spawn(|| std::thread::sleep(Duration::from_millis(200))))
        .collect();
    for g in gs {
        g.join().unwrap();
    }
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(
        took < Duration::from_secs(2),
        "20 sleeps of 200 ms took {took:?}"
    );
}

#[test]
fn std_tcp_clients_and_server_are_concurrent() {
    patch();
    let addr = delaying_http_server(Duration::from_millis(200));
    let t0 = Instant::now();
    let gs: Vec<_> = (0..20)
        .map(|i| {
            spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                write!(s, "GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                let mut reply = String::new();
                s.read_to_string(&mut reply).unwrap();
                reply
            })
        })
        .collect();
    for (i, g) in gs.into_iter().enumerate() {
        let reply = g.get().unwrap();
        assert!(reply.ends_with(&format!("\r\n\r\n/{i}")), "{reply:?}");
    }
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(2), "20 requests took {took:?}");
}

#[test]
fn unmodified_ureq_gets_are_concurrent() {
    patch();
    let addr = delaying_http_server(Duration::from_millis(200));
    let t0 = Instant::now();
    let gs: Vec<_> = (0..20)
        .map(|i| {
            Builder::new()
                .stack_size(1 << 20) // ureq needs more than 64 KiB in debug builds
                .spawn(move || {
                    ureq::get(&format!("http://{addr}/item{i}"))
                        .call()
                        .unwrap()
                        .body_mut()
                        .read_to_string()
                        .unwrap()
                })
                .unwrap()
        })
        .collect();
    for (i, g) in gs.into_iter().enumerate() {
        assert_eq!(g.get().unwrap(), format!("/item{i}"));
    }
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(2), "20 GETs took {took:?}");
}

#[test]
fn getaddrinfo_of_localhost_resolves() {
    patch();
    let (ticks, _g) = ticker();
    let addrs: Vec<SocketAddr> = ("localhost", 80).to_socket_addrs().unwrap().collect();
    assert!(addrs.iter().any(|a| a.ip().is_loopback()), "{addrs:?}");
    assert!(("no-such-host.invalid", 80).to_socket_addrs().is_err());
    drop(ticks);
}

#[test]
fn getnameinfo_of_the_loopback_address_resolves_on_the_thread_pool() {
    patch();
    let (ticks, _g) = ticker();
    // SAFETY: all-zero is a valid sockaddr_in; the buffers are as long as
    // the lengths passed.
    let (rc, host) = unsafe {
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_port = 80u16.to_be();
        sa.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let mut host = [0 as libc::c_char; 256];
        let rc = libc::getnameinfo(
            (&raw const sa).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        );
        let host = std::ffi::CStr::from_ptr(host.as_ptr())
            .to_string_lossy()
            .into_owned();
        (rc, host)
    };
    assert_eq!(rc, 0, "getnameinfo failed");
    assert!(!host.is_empty() && host != "127.0.0.1", "{host:?}");
    assert!(
        greenlet::threadpool::threads() >= 1,
        "the lookup did not run on the thread pool"
    );
    drop(ticks);
}

#[test]
fn with_timeout_on_a_std_read_reports_elapsed() {
    patch();
    let (mut a, _b) = UnixStream::pair().unwrap();
    let t0 = Instant::now();
    let r = greenlet::with_timeout(Duration::from_millis(100), || {
        let mut buf = [0u8; 8];
        a.read(&mut buf)
    });
    let took = t0.elapsed();
    assert!(r.is_err(), "{r:?}");
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(2),
        "{took:?}"
    );
    // The socket still works afterwards.
    let mut b = _b;
    b.write_all(b"x").unwrap();
    let mut one = [0u8; 1];
    a.read_exact(&mut one).unwrap();
}

#[test]
fn with_timeout_on_a_thread_sleep_reports_elapsed() {
    patch();
    let t0 = Instant::now();
    let r = greenlet::with_timeout(Duration::from_millis(50), || {
        std::thread::sleep(Duration::from_secs(10))
    });
    assert!(r.is_err());
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

#[test]
fn kill_ends_a_greenlet_blocked_in_a_std_read() {
    patch();
    let (a, b) = UnixStream::pair().unwrap();
    let after = Rc::new(Cell::new(false));
    let a2 = after.clone();
    let g = spawn(move || {
        let mut a = a;
        let mut buf = [0u8; 8];
        let r = a.read(&mut buf);
        // The read failed (ECANCELED); the kill lands at the next blocking
        // call of the greenlet's own, which does not return.
        assert!(r.is_err(), "{r:?}");
        let _ = greenlet::sleep(Duration::from_secs(10));
        a2.set(true);
    });
    greenlet::sleep(Duration::from_millis(20)).unwrap();
    let t0 = Instant::now();
    g.kill().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert!(g.killed());
    assert!(!after.get(), "the kill was not re-delivered");
    drop(b);
}

#[test]
fn a_greenlet_killed_in_a_hooked_call_that_then_returns_is_killed() {
    patch();
    let (a, _b) = UnixStream::pair().unwrap();
    let g = spawn(move || {
        let mut a = a;
        let mut buf = [0u8; 8];
        a.read(&mut buf).map_err(|e| e.raw_os_error())
    });
    greenlet::sleep(Duration::from_millis(20)).unwrap();
    g.kill().unwrap();
    assert!(g.killed());
}

#[test]
fn a_nonblocking_socket_gets_wouldblock_at_once() {
    patch();
    let (mut a, _b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let t0 = Instant::now();
    let err = a.read(&mut [0u8; 4]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    assert!(t0.elapsed() < Duration::from_millis(100));
    // The user's flag is untouched by the hooks.
    // SAFETY: F_GETFL on an open fd.
    let fl = unsafe { libc::fcntl(a.as_raw_fd(), libc::F_GETFL) };
    assert_ne!(fl & libc::O_NONBLOCK, 0);
}

#[test]
fn so_rcvtimeo_is_the_deadline_and_the_hub_keeps_running() {
    patch();
    let (mut a, _b) = UnixStream::pair().unwrap();
    a.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let (ticks, _g) = ticker();
    let t0 = Instant::now();
    let err = a.read(&mut [0u8; 4]).unwrap_err();
    let took = t0.elapsed();
    assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
    assert_waited_cooperatively(took, Duration::from_millis(300), &ticks, 5);
    // SAFETY: F_GETFL on an open fd.
    let fl = unsafe { libc::fcntl(a.as_raw_fd(), libc::F_GETFL) };
    assert_eq!(
        fl & libc::O_NONBLOCK,
        0,
        "the hooks left the fd non-blocking"
    );
}

#[test]
fn connect_timeout_and_accept_work() {
    patch();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"welcome").unwrap();
    });
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    let mut buf = String::new();
    c.read_to_string(&mut buf).unwrap();
    assert_eq!(buf, "welcome");
    server.join().unwrap();
}

#[test]
fn poll_waits_cooperatively_and_honours_its_timeout() {
    patch();
    let (a, mut b) = UnixStream::pair().unwrap();
    let (ticks, _g) = ticker();
    let mut p = libc::pollfd {
        fd: a.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let t0 = Instant::now();
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, 150) };
    let took = t0.elapsed();
    assert_eq!(n, 0);
    assert_waited_cooperatively(took, Duration::from_millis(150), &ticks, 3);
    spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        b.write_all(b"!").unwrap();
    });
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, 5000) };
    assert_eq!(n, 1);
    assert_ne!(p.revents & libc::POLLIN, 0);
}

#[test]
fn select_waits_cooperatively() {
    patch();
    let (a, mut b) = UnixStream::pair().unwrap();
    let (c, _d) = UnixStream::pair().unwrap();
    spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        b.write_all(b"!").unwrap();
    });
    // SAFETY: fd_sets are plain bitmaps; the fds are open and < FD_SETSIZE.
    unsafe {
        let mut set: libc::fd_set = std::mem::zeroed();
        libc::FD_ZERO(&mut set);
        libc::FD_SET(a.as_raw_fd(), &mut set);
        libc::FD_SET(c.as_raw_fd(), &mut set);
        let mut tv = libc::timeval {
            tv_sec: 5,
            tv_usec: 0,
        };
        let nfds = a.as_raw_fd().max(c.as_raw_fd()) + 1;
        let n = libc::select(
            nfds,
            &mut set,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut tv,
        );
        assert_eq!(n, 1);
        assert!(libc::FD_ISSET(a.as_raw_fd(), &set));
        assert!(!libc::FD_ISSET(c.as_raw_fd(), &set));
        assert!(tv.tv_sec < 5, "the time left is written back");
    }
}

/// A `select` timeout past the clock's range waits without a deadline
/// (it panicked adding it to `Instant::now()`, inside an `extern "C"`
/// hook: an abort).
#[test]
fn select_with_the_largest_timeout_waits_without_deadline() {
    patch();
    let (a, mut b) = UnixStream::pair().unwrap();
    spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        b.write_all(b"!").unwrap();
    });
    // SAFETY: fd_sets are plain bitmaps; the fd is open and < FD_SETSIZE.
    unsafe {
        let mut set: libc::fd_set = std::mem::zeroed();
        libc::FD_ZERO(&mut set);
        libc::FD_SET(a.as_raw_fd(), &mut set);
        let mut tv = libc::timeval {
            tv_sec: libc::time_t::MAX,
            tv_usec: 0,
        };
        let n = libc::select(
            a.as_raw_fd() + 1,
            &mut set,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut tv,
        );
        assert_eq!(n, 1);
        assert!(libc::FD_ISSET(a.as_raw_fd(), &set));
    }
}

#[test]
fn closing_an_fd_another_greenlet_reads_fails_that_read() {
    patch();
    let (a, _b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let reader = spawn(move || {
        let mut a = a;
        let r = a.read(&mut [0u8; 4]).map_err(|e| e.raw_os_error());
        // Closed by the other greenlet: do not close the number again.
        std::mem::forget(a);
        r
    });
    greenlet::sleep(Duration::from_millis(20)).unwrap();
    // SAFETY: closing an fd the reader will not close again.
    assert_eq!(unsafe { libc::close(fd) }, 0);
    assert_eq!(reader.get().unwrap(), Err(Some(libc::EBADF)));
}

#[test]
fn unpatched_really_blocks_the_thread() {
    patch();
    let (ticks, _g) = ticker();
    greenlet::sleep(Duration::from_millis(1)).unwrap();
    let before = ticks.get();
    monkey::unpatched(|| std::thread::sleep(Duration::from_millis(100)));
    assert_eq!(
        ticks.get(),
        before,
        "greenlets ran during an unpatched sleep"
    );
}

#[test]
fn plain_threads_are_unaffected() {
    patch();
    let t = std::thread::spawn(|| {
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_millis(50));
        let slept = t0.elapsed();
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let echo = std::thread::spawn(move || {
            let mut buf = [0u8; 4];
            b.read_exact(&mut buf).unwrap();
            b.write_all(&buf).unwrap();
        });
        a.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        a.read_exact(&mut buf).unwrap();
        echo.join().unwrap();
        // The hooks never create a hub.
        (slept, buf, greenlet::hub::exists())
    });
    let (slept, buf, hub) = t.join().unwrap();
    assert!(slept >= Duration::from_millis(50));
    assert_eq!(&buf, b"ping");
    assert!(!hub, "a hook created a hub on a plain thread");
}

#[test]
fn a_raw_fork_child_reinitialises_its_hub_before_its_first_cooperative_wait() {
    patch();
    let (mut a, b) = UnixStream::pair().unwrap();
    // Registered with the parent's epoll before the fork.
    a.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    assert!(a.read(&mut [0u8; 1]).is_err());
    a.set_read_timeout(None).unwrap();
    // SAFETY: the child only runs this thread and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let mut b = b;
        let writer = spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            b.write_all(b"!").is_ok()
        });
        let mut one = [0u8; 1];
        let ok = a.read_exact(&mut one).is_ok() && writer.get().unwrap_or(false);
        // SAFETY: ends the child without running the parent's atexit work.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    let r = greenlet::monkey::unpatched(|| unsafe { libc::waitpid(pid, &mut status, 0) });
    assert_eq!(r, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status:#x}"
    );
    // The parent's hub was left alone: its waits still work.
    let (mut c, mut d) = UnixStream::pair().unwrap();
    spawn(move || d.write_all(b"?").unwrap());
    c.read_exact(&mut [0u8; 1]).unwrap();
}

#[test]
fn kill_ends_an_accept_loop_that_ignores_errors() {
    patch();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let g = spawn(move || {
        // `flatten` skips the failed accept: the greenlet never blocks in
        // code of its own, only in hooked calls.
        for conn in listener.incoming().flatten() {
            drop(conn);
        }
    });
    greenlet::sleep(Duration::from_millis(20)).unwrap();
    let t0 = Instant::now();
    g.kill().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert!(g.killed());
}

#[test]
fn a_linked_greenlets_death_fails_the_hooked_call_and_reaches_the_next_own_wait() {
    patch();
    let (a, _b) = UnixStream::pair().unwrap();
    let receiver = spawn(move || {
        let mut a = a;
        let read = a.read(&mut [0u8; 4]).map_err(|e| e.raw_os_error());
        let next = greenlet::sleep(Duration::from_secs(10));
        (read, next)
    });
    let doomed = spawn(|| greenlet::sleep(Duration::from_millis(20)));
    doomed.link_greenlet(&receiver.as_ref());
    let (read, next) = receiver.get().unwrap();
    assert_eq!(read, Err(Some(libc::ECANCELED)));
    assert!(
        matches!(next, Err(greenlet::Interrupted::LinkedExited(_))),
        "{next:?}"
    );
}

//! StreamServer and DatagramServer.

mod support;

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::net::{
    Datagram, DatagramServer, Domain, Socket, StreamServer, TcpStream, Type, UdpSocket,
};
use greenlet::pool::Pool;
use greenlet::{sleep, threadpool};

mod capture_log;

/// `conns` std connections from one OS thread, each exchanging `msgs`
/// messages with byte-exact checks; all connections are open at once.
fn std_clients(addr: SocketAddr, tag: usize, conns: usize, msgs: usize) -> usize {
    let mut streams: Vec<std::net::TcpStream> = (0..conns)
        .map(|_| {
            let s = std::net::TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s
        })
        .collect();
    let mut checked = 0;
    for m in 0..msgs {
        for (i, s) in streams.iter_mut().enumerate() {
            let msg = format!("{tag}:{i}:{m}:{}", "x".repeat(m % 50));
            s.write_all(msg.as_bytes()).unwrap();
            let mut back = vec![0u8; msg.len()];
            s.read_exact(&mut back).unwrap();
            assert_eq!(back, msg.as_bytes(), "byte-exact echo");
            checked += 1;
        }
    }
    checked
}

#[test]
fn thousand_concurrent_std_clients_get_exact_echoes() {
    let server = StreamServer::bind("127.0.0.1:0", support::echo).unwrap();
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    let jobs: Vec<_> = (0..10)
        .map(|t| threadpool::spawn(move || std_clients(addr, t, 100, 20)))
        .collect();
    let total: usize = jobs.into_iter().map(|j| j.get().unwrap()).sum();
    assert_eq!(total, 1000 * 20);
    assert_eq!(server.accepted(), 1000);
    server.stop(None).unwrap();
}

#[test]
fn stop_with_a_pool_kills_lingering_handlers_after_the_timeout() {
    let killed = Rc::new(Cell::new(0));
    struct Count(Rc<Cell<i32>>);
    impl Drop for Count {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let k = killed.clone();
    let server = StreamServer::bind("127.0.0.1:0", move |conn, _| {
        let _c = Count(k.clone());
        let _keep = conn;
        sleep(Duration::from_secs(60)).unwrap(); // lingers
    })
    .unwrap()
    .max_connections(5);
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    let clients: Vec<_> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    while server.connections() < 3 {
        sleep(Duration::from_millis(1)).unwrap();
    }
    let t0 = Instant::now();
    server.stop(Some(Duration::from_millis(50))).unwrap();
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(50),
        "waited the grace period: {took:?}"
    );
    assert!(took < Duration::from_secs(5));
    assert_eq!(
        killed.get(),
        3,
        "the lingering handlers were killed, cleanup ran"
    );
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");
    drop(clients);
}

#[test]
fn a_panicking_handler_leaves_the_server_serving() {
    let server = StreamServer::bind("127.0.0.1:0", |conn, peer| {
        let mut first = [0u8; 1];
        (&conn).read_exact(&mut first).unwrap();
        if first[0] == b'!' {
            panic!("handler for {peer} panicked on purpose");
        }
        (&conn).write_all(&first).unwrap();
    })
    .unwrap();
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    let mut bad = TcpStream::connect(addr).unwrap();
    bad.write_all(b"!").unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(
        bad.read(&mut buf).unwrap(),
        0,
        "the panicking handler's socket closed"
    );
    let mut good = TcpStream::connect(addr).unwrap();
    good.write_all(b"a").unwrap();
    good.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"a");
    server.stop(None).unwrap();
}

#[test]
fn serve_forever_returns_after_stop_and_pool_limits_concurrency() {
    let pool = Pool::new(2);
    let peak = Rc::new(Cell::new(0));
    let (p, pk) = (pool.clone(), peak.clone());
    let server = StreamServer::bind("127.0.0.1:0", move |conn, peer| {
        pk.set(pk.get().max(p.len()));
        support::echo(conn, peer)
    })
    .unwrap()
    .pool(pool);
    let addr = server.local_addr().unwrap();
    let s2 = server.clone();
    let driver = greenlet::spawn(move || {
        let conns: Vec<_> = (0..6)
            .map(|i| {
                greenlet::spawn(move || {
                    let mut c = TcpStream::connect(addr).unwrap();
                    c.write_all(&[i]).unwrap();
                    let mut b = [0u8; 1];
                    c.read_exact(&mut b).unwrap();
                    b[0]
                })
            })
            .collect();
        let got: Vec<u8> = conns.into_iter().map(|g| g.get().unwrap()).collect();
        s2.stop(None).unwrap();
        got
    });
    server.serve_forever().unwrap();
    assert_eq!(driver.get().unwrap(), [0, 1, 2, 3, 4, 5]);
    assert!(
        peak.get() <= 2,
        "at most the pool's size at once: {}",
        peak.get()
    );
}

#[test]
fn accept_survives_emfile_and_serves_again() {
    let out = support::this_test_binary()
        .args(["--ignored", "--exact", "--nocapture", "child_emfile"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{stderr}"
    );
}

#[test]
#[ignore = "run in its own process by accept_survives_emfile_and_serves_again"]
fn child_emfile() {
    capture_log::install();
    let server = StreamServer::bind("127.0.0.1:0", support::echo).unwrap();
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    // Client sockets are made first: connecting needs no new descriptor.
    let clients: Vec<Socket> = (0..8)
        .map(|_| Socket::new(Domain::IPV4, Type::STREAM, None).unwrap())
        .collect();
    // Leave room for only two more descriptors in this process.
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let lim = libc::rlimit {
        rlim_cur: (open + 1) as libc::rlim_t,
        rlim_max: 4096,
    };
    // SAFETY: setrlimit with a valid struct, in this child process only.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    for c in &clients {
        c.connect(&addr.into()).unwrap();
    }
    let held = clients;
    let t0 = Instant::now();
    while server.accept_errors() == 0 && t0.elapsed() < Duration::from_secs(5) {
        sleep(Duration::from_millis(5)).unwrap();
    }
    assert!(server.accept_errors() > 0, "accept hit EMFILE");
    // Logged as a warning that says what failed and what happens next.
    let reports = capture_log::records("greenlet_net::server");
    assert!(
        reports.iter().any(|r| r.level == log::Level::Warn
            && r.message.contains("accept failed")
            && r.message.contains("os error 24")
            && r.message.contains("retrying with back-off")),
        "the EMFILE was logged: {reports:?}"
    );
    let accepted_under_limit = server.accepted();
    // Free descriptors: the server resumes and serves the backlog.
    drop(held);
    let lim = libc::rlimit {
        rlim_cur: 4096,
        rlim_max: 4096,
    };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"again").unwrap();
    let mut b = [0u8; 5];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"again");
    assert!(server.accepted() > accepted_under_limit);
    server.stop(None).unwrap();
}

#[test]
fn datagram_server_replies_to_each_datagram() {
    let server = DatagramServer::bind("127.0.0.1:0", |d: Datagram| {
        let mut up = d.data.clone();
        up.make_ascii_uppercase();
        d.reply(&up).unwrap();
    })
    .unwrap();
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    for word in ["one", "two", "three"] {
        client.send_to(word.as_bytes(), addr).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(from, addr);
        assert_eq!(&buf[..n], word.to_uppercase().as_bytes());
    }
    server.stop(None).unwrap();
}

#[test]
fn concurrent_stops_from_two_greenlets_are_safe() {
    let server = StreamServer::bind("127.0.0.1:0", support::echo).unwrap();
    server.start().unwrap();
    let (a, b) = (server.clone(), server.clone());
    let g1 = greenlet::spawn(move || a.stop(None));
    let g2 = greenlet::spawn(move || b.stop(None));
    g1.get().unwrap().unwrap();
    g2.get().unwrap().unwrap();
    assert!(!server.started());
}

/// Connects std clients to `addr` one after another (nobody accepts) until
/// one cannot connect within 500 ms or `max` are connected; returns them.
fn connect_until_full(addr: SocketAddr, max: usize) -> Vec<std::net::TcpStream> {
    let mut conns = Vec::new();
    while conns.len() < max {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(c) => conns.push(c),
            Err(_) => break,
        }
    }
    conns
}

/// The default backlog is the OS maximum (4096 here unless
/// `net.core.somaxconn` is lower): 300 connections queue up without an
/// accept. (With std's 128, the 130th connect's SYN was dropped.)
#[test]
fn the_default_backlog_queues_a_burst_of_connections() {
    let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096);
    let want = 300.min(somaxconn);
    let server = StreamServer::bind("127.0.0.1:0", support::echo).unwrap();
    let conns = connect_until_full(server.local_addr().unwrap(), want);
    assert_eq!(conns.len(), want);
}

/// `backlog(n)` caps the accept queue (Linux queues n + 1). On a loaded
/// machine a few more connects were seen to succeed (14 of 40 once, with
/// n = 8), so the test asks only that the queue was capped far below the 40
/// tried (the default backlog would take all 40).
#[test]
fn backlog_sets_the_listen_queue() {
    let server = StreamServer::bind("127.0.0.1:0", support::echo)
        .unwrap()
        .backlog(8)
        .unwrap();
    let conns = connect_until_full(server.local_addr().unwrap(), 40);
    assert!((8..30).contains(&conns.len()), "{} queued", conns.len());
    // The threaded server's one thread blocks (an OS-level wait) in the
    // handler of the first connection it accepts, so the rest queue up.
    let (release, blocked) = std::sync::mpsc::channel::<()>();
    let blocked = std::sync::Mutex::new(blocked);
    let threaded = StreamServer::threads_with_backlog("127.0.0.1:0", 1, 8, move |_c, _| {
        let _ = blocked.lock().unwrap().recv();
    })
    .unwrap();
    let conns = connect_until_full(threaded.local_addr(), 40);
    assert!((8..30).contains(&conns.len()), "{} queued", conns.len());
    drop(release); // every handler returns now
    threaded.stop();
    threaded.join().unwrap();
}

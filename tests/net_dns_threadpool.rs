//! The thread pool (`greenlet::threadpool`) and the resolver built on it
//! (`gethostbyname`, `getaddrinfo`, `getnameinfo`, name-based `connect`,
//! `create_connection`): work runs on OS threads while the hub keeps
//! running greenlets; panics and timeouts come back as error values.

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use greenlet::net::{
    create_connection, getaddrinfo, getaddrinfo_hints, gethostbyname, gethostbyname_ex,
    getnameinfo, Domain, Hints, TcpListener, TcpStream, ToSocketAddrs, Type, NI_NUMERICHOST,
    NI_NUMERICSERV,
};
use greenlet::threadpool::{self, ThreadError};
use greenlet::{spawn, Timeout};

#[test]
fn gethostbyname_localhost_runs_on_the_pool_while_greenlets_run() {
    // Occupy every pool thread with a job that waits for a greenlet's
    // go-ahead: the lookup queues behind them, so it can only finish if the
    // caller parks and lets that greenlet run.
    let (txs, blockers): (Vec<_>, Vec<_>) = (0..threadpool::max_threads())
        .map(|_| {
            let (tx, rx) = mpsc::channel::<()>();
            (tx, threadpool::spawn(move || rx.recv().unwrap()))
        })
        .unzip();
    let released = Rc::new(Cell::new(false));
    let r = released.clone();
    spawn(move || {
        for tx in txs {
            tx.send(()).unwrap();
        }
        r.set(true);
    });
    assert_eq!(gethostbyname("localhost").unwrap(), Ipv4Addr::LOCALHOST);
    assert!(released.get(), "the caller parked while the pool resolved");
    for b in blockers {
        b.get().unwrap();
    }
    // A literal needs no lookup.
    assert_eq!(
        gethostbyname("10.1.2.3").unwrap(),
        Ipv4Addr::new(10, 1, 2, 3)
    );
    let (name, aliases, addrs) = gethostbyname_ex("localhost").unwrap();
    assert!(!name.is_empty());
    assert!(aliases.is_empty());
    assert!(addrs.contains(&Ipv4Addr::LOCALHOST), "{addrs:?}");
}

/// A name no resolver can know, rejected before any query leaves the
/// machine (a DNS label is at most 63 bytes): the tests send no traffic
/// off loopback.
fn unknown_name() -> String {
    format!("{}.invalid", "n".repeat(64))
}

#[test]
fn an_unknown_name_gives_a_clear_resolution_error() {
    let name = unknown_name();
    let err = gethostbyname(&name).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("failed to resolve '{name}'")),
        "{msg}"
    );
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let err = TcpStream::connect((name.as_str(), 80)).unwrap_err();
    assert!(err.to_string().contains(&name), "{err}");
    // Malformed "host:port" strings are InvalidInput, without a lookup.
    for bad in ["localhost", "localhost:http", "localhost:99999"] {
        let err = TcpStream::connect(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}: {err}");
    }
}

#[test]
fn getaddrinfo_and_getnameinfo() {
    let all = getaddrinfo("localhost", 8080).unwrap();
    assert!(all
        .iter()
        .any(|a| a.addr == SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080)));
    let hints = Hints {
        family: Some(Domain::IPV4),
        socktype: Some(Type::DGRAM),
        ..Hints::default()
    };
    let udp = getaddrinfo_hints("127.0.0.1", 53, hints).unwrap();
    assert!(!udp.is_empty());
    for a in &udp {
        assert_eq!(a.family, Domain::IPV4);
        assert_eq!(a.socktype, Type::DGRAM);
        assert_eq!(a.addr.port(), 53);
    }
    let (host, serv) = getnameinfo(
        "127.0.0.1:80".parse().unwrap(),
        NI_NUMERICHOST | NI_NUMERICSERV,
    )
    .unwrap();
    assert_eq!((host.as_str(), serv.as_str()), ("127.0.0.1", "80"));
    // ToSocketAddrs resolves the same way.
    let addrs: Vec<SocketAddr> = ("localhost", 9).to_socket_addrs().unwrap().collect();
    assert!(addrs.contains(&"127.0.0.1:9".parse().unwrap()), "{addrs:?}");
}

#[test]
fn connect_by_name_and_create_connection() {
    let l = TcpListener::bind("localhost:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = spawn(move || {
        for _ in 0..3 {
            let (mut s, _) = l.accept().unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
        }
    });
    for addr in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let mut s = TcpStream::connect(addr.as_str()).unwrap();
        s.write_all(b"n").unwrap();
        let mut b = [0u8; 1];
        s.read_exact(&mut b).unwrap();
    }
    let source: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut s = create_connection(
        ("localhost", port),
        Some(Duration::from_secs(5)),
        Some(source),
    )
    .unwrap();
    assert_eq!(s.read_timeout().unwrap(), Some(Duration::from_secs(5)));
    assert_eq!(s.write_timeout().unwrap(), Some(Duration::from_secs(5)));
    assert_eq!(s.local_addr().unwrap().ip(), source.ip());
    s.write_all(b"c").unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    server.join().unwrap();
    // Refused, and a zero timeout is invalid.
    drop(s);
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    assert_eq!(
        create_connection(closed, None, None).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
    assert_eq!(
        create_connection(closed, Some(Duration::ZERO), None)
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn threadpool_runs_work_on_a_worker_while_greenlets_feed_it() {
    // The job blocks its worker until a greenlet sends it a value: if the
    // wait blocked the hub, the greenlet could never run.
    let (tx, rx) = mpsc::channel::<u64>();
    let job = threadpool::spawn(move || {
        let v = rx.recv().unwrap();
        (v * 2, std::thread::current().name().map(String::from))
    });
    assert!(!job.ready());
    let feeder = spawn(move || tx.send(21).unwrap());
    let (v, thread) = job.get().unwrap();
    assert_eq!(v, 42);
    assert_eq!(thread.as_deref(), Some("greenlet-threadpool"));
    feeder.join().unwrap();
}

#[test]
fn a_panic_in_the_job_comes_back_as_an_error() {
    let job = threadpool::spawn(|| -> u32 { panic!("job failed on purpose") });
    match job.get() {
        Err(ThreadError::Panicked(p)) => {
            assert_eq!(greenlet::panic_message(p.as_ref()), "job failed on purpose")
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    let err: std::io::Error = threadpool::spawn(|| -> u32 { panic!("as io") })
        .get()
        .unwrap_err()
        .into();
    assert!(err.to_string().contains("as io"), "{err}");
}

/// Signals on drop which thread dropped it.
struct DropProbe(mpsc::Sender<Option<String>>);

impl Drop for DropProbe {
    fn drop(&mut self) {
        let _ = self.0.send(std::thread::current().name().map(String::from));
    }
}

#[test]
fn a_timeout_interrupts_the_wait_and_the_job_finishes_on_its_thread() {
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (drop_tx, drop_rx) = mpsc::channel();
    let job = threadpool::spawn(move || {
        go_rx.recv().unwrap();
        DropProbe(drop_tx)
    });
    let t = Timeout::start_new(Duration::from_millis(20));
    let err = job.wait().unwrap_err();
    assert!(t.is(&err), "{err}");
    drop(t);
    assert!(!job.ready());
    // Nobody wants the value any more: it is dropped on the worker.
    drop(job);
    go_tx.send(()).unwrap();
    let dropped_on = drop_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(dropped_on.as_deref(), Some("greenlet-threadpool"));

    // get() reports the interruption as ThreadError::Interrupted.
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let job = threadpool::spawn(move || go_rx.recv().unwrap());
    let t = Timeout::start_new(Duration::from_millis(20));
    match job.get() {
        Err(ThreadError::Interrupted(i)) => assert!(t.is(&i)),
        other => panic!("expected Interrupted, got {other:?}"),
    }
    go_tx.send(()).unwrap();
}

#[test]
fn waiting_on_a_job_is_not_a_deadlock() {
    // Only the main greenlet exists and it waits on the job: the hub must
    // not declare LoopExit while the job is outstanding.
    let (tx, rx) = mpsc::channel::<u8>();
    let outside = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50)); // work elsewhere
        tx.send(7).unwrap();
    });
    let job = threadpool::spawn(move || rx.recv().unwrap());
    assert_eq!(job.get().unwrap(), 7);
    outside.join().unwrap();
}

#[test]
fn try_get_wait_timeout_and_the_bound() {
    let (tx, rx) = mpsc::channel::<()>();
    let job = threadpool::spawn(move || rx.recv().map(|_| "done").unwrap_or("sender gone"));
    assert!(matches!(job.try_get(), Err(ThreadError::NotReady)));
    assert!(!job.wait_timeout(Duration::from_millis(10)).unwrap());
    tx.send(()).unwrap();
    assert!(job.wait_timeout(Duration::from_secs(30)).unwrap());
    assert_eq!(job.try_get().unwrap(), "done");
    assert!(matches!(job.try_get(), Err(ThreadError::Taken)));

    assert_eq!(threadpool::max_threads(), threadpool::DEFAULT_MAX_THREADS);
    assert_eq!(
        threadpool::set_max_threads(0).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    // Never more than max_threads jobs at once.
    let active = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let jobs: Vec<_> = (0..25)
        .map(|_| {
            let (active, peak) = (active.clone(), peak.clone());
            threadpool::spawn(move || {
                let now = active.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5)); // the work
                active.fetch_sub(1, Ordering::SeqCst);
            })
        })
        .collect();
    for j in jobs {
        j.get().unwrap();
    }
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        (1..=threadpool::max_threads()).contains(&peak),
        "peak {peak}"
    );
    assert!(threadpool::threads() <= threadpool::max_threads());
}

#[test]
fn gethostbyaddr_reverse_resolves_an_address_or_a_name() {
    use greenlet::net::gethostbyaddr;
    // Answered from /etc/hosts: no traffic leaves the machine.
    let (name, aliases, addrs) = gethostbyaddr("127.0.0.1").unwrap();
    assert!(!name.is_empty() && name != "127.0.0.1", "{name}");
    assert!(aliases.is_empty());
    assert_eq!(addrs, [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    // A name is resolved first, then looked up.
    let (by_name, _, addrs) = gethostbyaddr("localhost").unwrap();
    assert!(!by_name.is_empty());
    assert!(addrs[0].is_loopback(), "{addrs:?}");
    let err = gethostbyaddr(&unknown_name()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

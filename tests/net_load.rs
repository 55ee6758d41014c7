//! Load on one hub: 1,000 concurrent loopback connections (500 client
//! greenlets, 500 server greenlets), each client exchanging 100 messages of
//! varying size with byte-exact echo. Bounded in count and time.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use greenlet::hub::stats;
use greenlet::net::{Domain, SockAddr, Socket, TcpListener, TcpStream, Type};
use greenlet::{joinall, spawn, Timeout};

const CLIENTS: usize = 500;
const MESSAGES: usize = 100;

/// The bytes of message `m` of client `c`: 1..=300 bytes, distinct content.
fn message(c: usize, m: usize) -> Vec<u8> {
    let len = 1 + (c * 31 + m * 17) % 300;
    (0..len).map(|i| (c * 7 + m * 13 + i) as u8).collect()
}

/// A listener with a backlog deep enough for every client connecting at
/// once (std's `bind` uses a smaller one).
fn listener() -> TcpListener {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    greenlet::net::SockRef::from(&s)
        .set_reuse_address(true)
        .unwrap();
    s.bind(&SockAddr::from(
        "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
    ))
    .unwrap();
    s.listen(2048).unwrap();
    TcpListener::from(s)
}

#[test]
fn a_thousand_connections_echo_a_hundred_messages_each() {
    let t0 = Instant::now();
    // Fail rather than hang if something is lost.
    let _bound = Timeout::start_new(Duration::from_secs(120));
    let l = listener();
    let addr = l.local_addr().unwrap();

    let acceptor = spawn(move || {
        let mut handlers = Vec::with_capacity(CLIENTS);
        for _ in 0..CLIENTS {
            let (conn, _) = l.accept().unwrap();
            handlers.push(spawn(move || {
                let mut buf = [0u8; 512];
                let mut echoed = 0usize;
                loop {
                    let n = (&conn).read(&mut buf).unwrap();
                    if n == 0 {
                        return echoed;
                    }
                    (&conn).write_all(&buf[..n]).unwrap();
                    echoed += n;
                }
            }));
        }
        handlers
    });

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                let mut sent = 0usize;
                let mut back = vec![0u8; 300];
                for m in 0..MESSAGES {
                    let msg = message(c, m);
                    s.write_all(&msg).unwrap();
                    s.read_exact(&mut back[..msg.len()]).unwrap();
                    assert_eq!(&back[..msg.len()], &msg[..], "client {c} message {m}");
                    sent += msg.len();
                }
                sent
            })
        })
        .collect();

    let mut total = 0usize;
    for c in clients {
        total += c.get().unwrap();
    }
    let handlers = acceptor.get().unwrap();
    let finished = joinall(&handlers, Some(Duration::from_secs(60))).unwrap();
    assert_eq!(finished.len(), CLIENTS);
    let echoed: usize = handlers.into_iter().map(|h| h.get().unwrap()).sum();
    assert_eq!(echoed, total);
    let want: usize = (0..CLIENTS)
        .flat_map(|c| (0..MESSAGES).map(move |m| message(c, m).len()))
        .sum();
    assert_eq!(total, want);
    assert_eq!(stats().io_waiters, 0);
    eprintln!(
        "{} connections x {MESSAGES} messages ({total} bytes each way) in {:?}",
        2 * CLIENTS,
        t0.elapsed()
    );
}

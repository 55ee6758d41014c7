//! The default greenlet stack fits ordinary crates in a debug build (this
//! file is built without optimisation by `cargo test`): a `ureq` GET, a
//! rustls handshake, a tungstenite WebSocket handshake and a `redis` round
//! trip, each in a spawned greenlet with the default stack, against local
//! servers. Each test also measures how deep the greenlet's stack went and
//! asserts that it left a margin of a quarter of the stack: a crate update
//! that eats the margin fails here, not with an abort in a user's program.
//!
//! The redis test starts `redis-server` on a free loopback port; without it
//! the test says so loudly and skips, except under CI (`CI=true`, where
//! `.ci/run` installs it), where it fails.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use greenlet::hub;

mod redis_server;
use redis_server::start_redis;

/// The deepest a greenlet's stack went, in bytes below the greenlet's first
/// frame, found as the lowest byte that is no longer zero: a fresh stack's
/// pages are zero-filled when first touched, so every byte a frame wrote
/// (a return address, a saved register, a local) shows. The greenlet must
/// run on a stack no earlier greenlet used (its hub's pool holds none yet).
fn run_measured<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> (T, usize) {
    assert_eq!(
        hub::stats().free_stacks,
        0,
        "the measured greenlet needs a never-used stack"
    );
    let size = hub::default_stack_size();
    let g = greenlet::spawn(move || {
        let first = std::hint::black_box(0u8);
        let start = std::ptr::addr_of!(first) as usize;
        let out = f();
        // Scan up from above the guard page (the stack's top is less than a
        // page above `start`, so `start - size + 2 pages` is inside the
        // usable range) to the first written byte.
        let low = (start - size + 2 * 4096) & !7;
        let mut deepest = start;
        for a in (low..start).step_by(8) {
            // SAFETY: [low, start) lies in this greenlet's own stack mapping
            // (readable and writable down to its guard page, below `low`),
            // beneath the live frames; reading a word there reads plain
            // bytes a finished frame left, or a zero page never touched.
            if unsafe { std::ptr::read_volatile(a as *const u64) } != 0 {
                deepest = a;
                break;
            }
        }
        (out, start - deepest)
    });
    let (out, depth) = g.get().unwrap();
    let _ = writeln!(
        std::io::stderr(),
        "{what}: the greenlet's stack went {} KiB deep (default stack {} KiB)",
        depth.div_ceil(1024),
        size / 1024
    );
    assert!(
        depth <= size / 4 * 3,
        "{what} needed {depth} bytes of a {size}-byte stack: less than a quarter is left"
    );
    (out, depth)
}

/// A one-request HTTP/1.1 server on a std thread: answers "hello".
fn http_server() -> (u16, std::thread::JoinHandle<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut r = BufReader::new(c.try_clone().unwrap());
        let mut request_line = String::new();
        r.read_line(&mut request_line).unwrap();
        let mut line = String::new();
        while r.read_line(&mut line).unwrap() > 2 {
            line.clear();
        }
        c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello")
            .unwrap();
        let _ = c.shutdown(Shutdown::Write);
        request_line
    });
    (port, t)
}

#[test]
fn ureq_get_fits_the_default_stack() {
    let (port, server) = http_server();
    let (body, _) = run_measured("ureq GET", move || {
        ureq::get(&format!("http://127.0.0.1:{port}/hi"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    });
    assert_eq!(body, "hello");
    assert!(server.join().unwrap().starts_with("GET /hi HTTP/1.1"));
}

#[test]
fn tungstenite_handshake_fits_the_default_stack() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (c, _) = l.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut ws = tungstenite::accept(c).unwrap();
        let m = ws.read().unwrap();
        ws.send(m).unwrap();
        let _ = ws.close(None);
        while ws.read().is_ok() {}
    });
    let (echo, _) = run_measured("tungstenite handshake", move || {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let (mut ws, response) =
            tungstenite::client(format!("ws://127.0.0.1:{port}/chat"), stream).unwrap();
        assert_eq!(response.status(), 101);
        ws.send(tungstenite::Message::text("hi")).unwrap();
        let m = ws.read().unwrap();
        let _ = ws.close(None);
        while ws.read().is_ok() {}
        m.into_text().unwrap().to_string()
    });
    assert_eq!(echo, "hi");
    server.join().unwrap();
}

#[cfg(feature = "tls")]
mod self_signed;

#[cfg(feature = "tls")]
#[test]
fn rustls_handshake_fits_the_default_stack() {
    use greenlet::net::tls;
    use std::io::Read;
    let (cert, key) = self_signed::cert_files("stack_fit");
    let config = tls::server_config(&cert, &key).unwrap();
    // The server side runs in greenlets too (one per connection).
    let server = greenlet::net::StreamServer::bind_tls(
        "127.0.0.1:0",
        config,
        |mut conn: tls::TlsStream, _| {
            let mut b = [0u8; 5];
            if conn.read_exact(&mut b).is_ok() {
                let _ = conn.write_all(&b);
            }
            let _ = conn.close_notify();
        },
    )
    .unwrap();
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    let client = tls::client_config(&cert).unwrap();
    let (back, _) = run_measured("rustls handshake", move || {
        let _t = greenlet::Timeout::start_new(Duration::from_secs(20));
        let mut c = tls::connect(addr, "localhost", client).unwrap();
        c.write_all(b"hello").unwrap();
        let mut back = String::new();
        c.read_to_string(&mut back).unwrap();
        back
    });
    assert_eq!(back, "hello");
    server.stop(None).unwrap();
}

#[test]
fn redis_round_trip_fits_the_default_stack() {
    let Some((_server, port)) = start_redis("redis_round_trip_fits_the_default_stack") else {
        return;
    };
    let (got, _) = run_measured("redis round trip", move || {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut con = client
            .get_connection_with_timeout(Duration::from_secs(20))
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg("greeting")
            .arg("hello")
            .query(&mut con)
            .unwrap();
        redis::cmd("GET")
            .arg("greeting")
            .query::<String>(&mut con)
            .unwrap()
    });
    assert_eq!(got, "hello");
}

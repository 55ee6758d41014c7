//! A small echo loop for counting syscalls per echoed message.
//!
//! The server (this process's main thread, one hub) accepts `conns`
//! connections and echoes with one greenlet per connection; the clients run
//! in a child process (plain blocking std sockets, one thread per
//! connection), each doing `messages / conns` ping-pongs of 64 bytes.
//! Tracing only the server's thread:
//!
//! ```text
//! cargo build --release -p greenlet-net --example net_echo_probe
//! strace -c target/release/examples/net_echo_probe 200000 1
//! strace -c target/release/examples/net_echo_probe 200000 50
//! ```
//!
//! (`strace` without `-f` traces the main thread only: the server; the
//! client process is not traced.) Divide the `recvfrom`, `sendto` and
//! `epoll_wait` counts by the number of messages.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Instant;

use greenlet_net::TcpListener;
use greenlet_runtime::spawn;

const SIZE: usize = 64;

fn client(addr: SocketAddr, messages: usize, conns: usize) {
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                let msg = [b'x'; SIZE];
                let mut back = [0u8; SIZE];
                for _ in 0..messages / conns {
                    s.write_all(&msg).unwrap();
                    s.read_exact(&mut back).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("client") {
        let addr = args[2].parse().unwrap();
        client(addr, args[3].parse().unwrap(), args[4].parse().unwrap());
        return;
    }
    let messages: usize = args.get(1).map_or(100_000, |a| a.parse().unwrap());
    let conns: usize = args.get(2).map_or(1, |a| a.parse().unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "client",
            &addr.to_string(),
            &messages.to_string(),
            &conns.to_string(),
        ])
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let handlers: Vec<_> = (0..conns)
        .map(|_| {
            let (conn, _) = listener.accept().unwrap();
            conn.set_nodelay(true).unwrap();
            spawn(move || {
                let mut buf = [0u8; 4096];
                let mut n_msgs = 0usize;
                loop {
                    let n = (&conn).read(&mut buf).unwrap();
                    if n == 0 {
                        return n_msgs;
                    }
                    (&conn).write_all(&buf[..n]).unwrap();
                    n_msgs += n / SIZE;
                }
            })
        })
        .collect();
    let echoed: usize = handlers.into_iter().map(|h| h.get().unwrap()).sum();
    assert!(child.wait().unwrap().success());
    let took = t0.elapsed();
    eprintln!(
        "echoed {echoed} messages of {SIZE} bytes over {conns} connection(s) in {took:?} ({:.0} msg/s)",
        echoed as f64 / took.as_secs_f64()
    );
}

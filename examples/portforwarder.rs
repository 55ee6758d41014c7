//! gevent's `portforwarder.py`: accepts connections and forwards each to
//! another address, with two greenlets pumping bytes, one per direction.
//!
//! ```sh
//! cargo run --example echo_server                 # in one terminal: 127.0.0.1:16000
//! cargo run --example portforwarder -- --listen 127.0.0.1:16010 --to 127.0.0.1:16000
//! ```
//!
//! Try it from a third terminal: the echo server's client, through the
//! forwarder.
//!
//! ```sh
//! cargo run --example echo_client -- --addr 127.0.0.1:16010 --clients 10 --messages 100
//! ```
//!
//! Ctrl-C (SIGINT) or SIGTERM stops accepting and closes open forwards.
mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use greenlet::net::{create_connection, StreamServer, TcpStream};
use greenlet::spawn;

const USAGE: &str = "portforwarder [--listen ADDR] --to ADDR";

/// Copies `from` to `to` until EOF, then shuts `to` down for writing.
fn pump(from: &TcpStream, to: &TcpStream) -> u64 {
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0;
    let mut r = from;
    let mut w = to;
    while let Ok(n @ 1..) = r.read(&mut buf) {
        if w.write_all(&buf[..n]).is_err() {
            break;
        }
        total += n as u64;
    }
    let _ = to.shutdown(Shutdown::Write);
    total
}

fn forward(client: TcpStream, peer: SocketAddr, to: SocketAddr) {
    let upstream = match create_connection(to, Some(Duration::from_secs(10)), None) {
        Ok(s) => s,
        Err(e) => {
            println!("{peer}: cannot reach {to}: {e}");
            return;
        }
    };
    println!("{peer}: forwarding to {to}");
    let (c, u) = (
        client.try_clone().expect("clone"),
        upstream.try_clone().expect("clone"),
    );
    let up = spawn(move || pump(&c, &u));
    let down = pump(&upstream, &client);
    let up = up.get().unwrap_or(0);
    println!("{peer}: closed ({up} bytes up, {down} bytes down)");
}

fn main() {
    common::init_log();
    let args = common::Args::parse(USAGE);
    let listen: String = args.get("--listen", "127.0.0.1:16010".to_string());
    let Some(to) = args.opt::<SocketAddr>("--to") else {
        eprintln!("--to ADDR is required\nusage: {USAGE}");
        std::process::exit(2);
    };
    let server = StreamServer::bind(listen.as_str(), move |c, p| forward(c, p, to))
        .unwrap_or_else(|e| {
            eprintln!("cannot listen on {listen}: {e}");
            std::process::exit(1)
        })
        .max_connections(10_000);
    let s = server.clone();
    let _signals = common::on_terminate(move || {
        println!("stopping");
        let _ = s.stop(Some(Duration::from_secs(1)));
    });
    println!(
        "forwarding {} -> {to}; Ctrl-C to stop",
        server.local_addr().expect("bound")
    );
    server.serve_forever().expect("serve");
    println!("stopped after {} connections", server.accepted());
}

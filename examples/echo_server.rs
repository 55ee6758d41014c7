//! A byte echo server: one greenlet per connection, plain blocking code.
//!
//! ```sh
//! cargo run --release --example echo_server            # 127.0.0.1:16000; Ctrl-C stops it
//! cargo run --release --example echo_server -- --bind 0.0.0.0:7000 --max-conns 1000
//! cargo run --release --example echo_server -- --threads 2   # a hub per core
//! ```
//!
//! Try it from another terminal with the project's load client, which
//! checks every echoed byte:
//!
//! ```sh
//! cargo run --release --example echo_client -- --clients 50 --messages 2000
//! ```
//!
//! Prints a line when it starts, for each connection opened and closed
//! (unless `--quiet`), and when it stops. Ctrl-C (SIGINT) or SIGTERM stops
//! it gracefully: no new connections; with `--max-conns` (a pool of
//! handlers) running ones get 2 s to finish, otherwise they are closed as
//! it exits.
mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use greenlet::net::{StreamServer, TcpStream};

const USAGE: &str = "echo_server [--bind ADDR] [--max-conns N] [--threads N] [--quiet]";

/// Echoes until the peer closes; returns the bytes echoed.
fn echo(mut conn: TcpStream) -> std::io::Result<u64> {
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0;
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        conn.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// `--threads N`: N hubs, each on its own thread with its own SO_REUSEPORT
/// listener; connection lines name the thread that serves them.
fn serve_threads(bind: &str, n: usize, quiet: bool) {
    let handler = move |conn: TcpStream, peer: SocketAddr| {
        let thread = std::thread::current().id();
        if !quiet {
            println!("{peer}: connected (served by {thread:?})");
        }
        if let Ok(n) = echo(conn) {
            if !quiet {
                println!("{peer}: closed after {n} bytes ({thread:?})");
            }
        }
    };
    let server = StreamServer::threads(bind, n, handler).unwrap_or_else(|e| {
        eprintln!("cannot listen on {bind}: {e}");
        std::process::exit(1)
    });
    // The handler goes in before the ready line: the worker hubs already
    // serve, and whoever reads that line may signal at once.
    let stop = greenlet::sync::Event::new();
    let s = stop.clone();
    let _signals = common::on_terminate(move || s.set());
    println!(
        "echo server listening on {} ({n} threads, a hub each); Ctrl-C to stop",
        server.local_addr()
    );
    stop.wait().expect("wait for a signal");
    println!("stopping");
    server.stop();
    let per_thread = server.join().expect("threads");
    println!("stopped; connections per thread: {per_thread:?}");
}

fn main() {
    common::init_log();
    let args = common::Args::parse(USAGE);
    let bind: String = args.get("--bind", "127.0.0.1:16000".to_string());
    let max_conns: usize = args.get("--max-conns", 0);
    let quiet = args.flag("--quiet");
    let threads: usize = args.get("--threads", 1);
    if threads > 1 {
        return serve_threads(&bind, threads, quiet);
    }

    let handler = move |conn: TcpStream, peer: SocketAddr| {
        if !quiet {
            println!("{peer}: connected");
        }
        match echo(conn) {
            Ok(n) if !quiet => println!("{peer}: closed after {n} bytes"),
            Err(e) if !quiet => println!("{peer}: error: {e}"),
            _ => {}
        }
    };
    let mut server = match StreamServer::bind(bind.as_str(), handler) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot listen on {bind}: {e}");
            std::process::exit(1);
        }
    };
    if max_conns > 0 {
        server = server.max_connections(max_conns);
    }
    let addr = server.local_addr().expect("bound");
    let limit = if max_conns > 0 {
        format!("at most {max_conns} connections")
    } else {
        "no connection limit".to_string()
    };
    let s = server.clone();
    let _signals = common::on_terminate(move || {
        if max_conns > 0 {
            println!("stopping: no new connections, 2 s for running ones");
        } else {
            println!("stopping: no new connections");
        }
        let _ = s.stop(Some(Duration::from_secs(2)));
    });
    println!("echo server listening on {addr} ({limit}); Ctrl-C to stop");
    if let Err(e) = server.serve_forever() {
        eprintln!("server failed: {e}");
        std::process::exit(1);
    }
    println!("stopped after {} connections", server.accepted());
}

//! gevent's `echoserver.py`, ported: a welcome line, then each line you
//! send comes back, until you send `quit`.
//!
//! ```sh
//! cargo run --example line_echo_server     # 127.0.0.1:16001; Ctrl-C stops it
//! ```
//!
//! Try it from another terminal (a line, then `quit`):
//!
//! ```sh
//! python3 -c "import socket; s = socket.create_connection(('127.0.0.1', 16001)); s.sendall(b'hello\nquit\n'); print(s.makefile().read())"
//! ```
//!
//! Ctrl-C (SIGINT) or SIGTERM stops it: no new connections, and it exits
//! once the open ones are closed.
mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;

use greenlet::net::{StreamServer, TcpStream};

const USAGE: &str = "line_echo_server [--bind ADDR]";

fn echo(conn: TcpStream, peer: SocketAddr) {
    println!("New connection from {peer}");
    let mut out = &conn;
    if out
        .write_all(b"Welcome to the echo server! Type quit to exit.\r\n")
        .is_err()
    {
        return;
    }
    let mut lines = BufReader::new(&conn);
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line) {
            Ok(0) | Err(_) => {
                println!("client disconnected");
                return;
            }
            Ok(_) => {}
        }
        if line.trim().eq_ignore_ascii_case("quit") {
            println!("client quit");
            return;
        }
        if out.write_all(line.as_bytes()).is_err() {
            return;
        }
        println!("echoed {:?}", line);
    }
}

fn main() {
    common::init_log();
    let args = common::Args::parse(USAGE);
    let bind: String = args.get("--bind", "127.0.0.1:16001".to_string());
    let server = StreamServer::bind(bind.as_str(), echo).unwrap_or_else(|e| {
        eprintln!("cannot listen on {bind}: {e}");
        std::process::exit(1)
    });
    let s = server.clone();
    let _signals = common::on_terminate(move || {
        let _ = s.stop(None);
    });
    println!(
        "Starting echo server on {}",
        server.local_addr().expect("bound")
    );
    server.serve_forever().expect("serve");
    println!("stopped after {} connections", server.accepted());
}

//! An echo server over TLS (feature `tls`): each connection's handshake and
//! I/O run in its own greenlet.
//!
//! ```sh
//! cargo run --features tls --example tls_echo_server      # 127.0.0.1:16443; Ctrl-C stops it
//! cargo run --features tls --example tls_echo_server -- --cert cert.pem --key key.pem
//! ```
//!
//! Without `--cert`/`--key` it makes a self-signed certificate for
//! `localhost` and 127.0.0.1, writes it to `greenlet-tls-echo-server/` in
//! the temp directory (`/tmp` unless `TMPDIR` says otherwise) and prints
//! the path. Try it from another terminal with Python, trusting that
//! certificate:
//!
//! ```sh
//! python3 -c "import socket, ssl; c = ssl.create_default_context(cafile='/tmp/greenlet-tls-echo-server/cert.pem'); s = c.wrap_socket(socket.create_connection(('127.0.0.1', 16443)), server_hostname='localhost'); s.sendall(b'hello over TLS'); print(s.recv(100))"
//! ```
//!
//! Ctrl-C (SIGINT) or SIGTERM stops it: no new connections; open ones are
//! closed as it exits.
mod common;

use std::io::{Read, Write};
use std::path::PathBuf;

use greenlet::net::tls::{self, TlsStream};
use greenlet::net::StreamServer;

const USAGE: &str = "tls_echo_server [--bind ADDR] [--cert PEM --key PEM]";

fn echo(mut conn: TlsStream, peer: std::net::SocketAddr) {
    if let Err(e) = conn.handshake() {
        println!("{peer}: handshake failed: {e}");
        return;
    }
    println!("{peer}: TLS established");
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0;
    while let Ok(n @ 1..) = conn.read(&mut buf) {
        if conn.write_all(&buf[..n]).is_err() {
            break;
        }
        total += n;
    }
    let _ = conn.close_notify();
    println!("{peer}: closed after {total} bytes");
}

/// A fresh self-signed certificate for localhost, written to a fixed place
/// in the temp directory (so a client can be told where to find it).
fn self_signed() -> (PathBuf, PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("generate a certificate");
    let dir = std::env::temp_dir().join("greenlet-tls-echo-server");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).expect("write cert");
    std::fs::write(&k, cert.key_pair.serialize_pem()).expect("write key");
    (c, k)
}

fn main() {
    common::init_log();
    let args = common::Args::parse(USAGE);
    let bind: String = args.get("--bind", "127.0.0.1:16443".to_string());
    let (cert, key) = match (args.opt::<PathBuf>("--cert"), args.opt::<PathBuf>("--key")) {
        (Some(c), Some(k)) => (c, k),
        (None, None) => self_signed(),
        _ => {
            eprintln!("give both --cert and --key, or neither\nusage: {USAGE}");
            std::process::exit(2);
        }
    };
    let config = tls::server_config(&cert, &key).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(1)
    });
    let server = StreamServer::bind_tls(bind.as_str(), config, echo).unwrap_or_else(|e| {
        eprintln!("cannot listen on {bind}: {e}");
        std::process::exit(1)
    });
    let s = server.clone();
    let _signals = common::on_terminate(move || {
        println!("stopping");
        let _ = s.stop(None);
    });
    println!(
        "tls echo server on {} (certificate {}); Ctrl-C to stop",
        server.local_addr().expect("bound"),
        cert.display()
    );
    server.serve_forever().expect("serve");
    println!("stopped after {} connections", server.accepted());
}

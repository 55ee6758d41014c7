//! Sends one datagram and prints the reply, under a `Timeout`.
//!
//! ```sh
//! cargo run --example udp_echo_server                  # in one terminal
//! cargo run --example udp_client -- hello              # [--addr ADDR] [--timeout SECONDS]
//! ```
//!
//! Exits after the reply, or with status 1 when none came in time.
mod common;

use std::net::SocketAddr;

use greenlet::net::UdpSocket;
use greenlet::Timeout;

const USAGE: &str = "udp_client [--addr ADDR] [--timeout SECONDS] MESSAGE";

fn main() {
    common::init_log();
    let args = common::Args::parse(USAGE);
    let addr: SocketAddr = args.get("--addr", "127.0.0.1:16002".parse().unwrap());
    let timeout = args.seconds("--timeout", 2.0);
    let msg = args.positional(0).unwrap_or("hello").to_string();
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let t = Timeout::start_new(timeout);
    let run = || -> std::io::Result<String> {
        sock.send_to(msg.as_bytes(), addr)?;
        let mut buf = [0u8; 65_536];
        let (n, from) = sock.recv_from(&mut buf)?;
        Ok(format!(
            "{from} replied: {}",
            String::from_utf8_lossy(&buf[..n])
        ))
    };
    match run() {
        Ok(line) => println!("{line}"),
        Err(e) if t.is(&e) => {
            eprintln!("no reply from {addr} within {t}");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

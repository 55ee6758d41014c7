//! A UDP echo server: a greenlet per datagram (`DatagramServer`).
//!
//! ```sh
//! cargo run --example udp_echo_server      # 127.0.0.1:16002; Ctrl-C stops it
//! cargo run --example udp_client -- hello  # from another terminal
//! ```
//!
//! Ctrl-C (SIGINT) or SIGTERM stops it.
mod common;

use greenlet::net::{Datagram, DatagramServer};

const USAGE: &str = "udp_echo_server [--bind ADDR]";

fn main() {
    common::init_log();
    let args = common::Args::parse(USAGE);
    let bind: String = args.get("--bind", "127.0.0.1:16002".to_string());
    let server = DatagramServer::bind(bind.as_str(), |d: Datagram| {
        println!("{}: {} bytes", d.from, d.data.len());
        if let Err(e) = d.reply(&d.data) {
            println!("{}: reply failed: {e}", d.from);
        }
    })
    .unwrap_or_else(|e| {
        eprintln!("cannot bind {bind}: {e}");
        std::process::exit(1)
    });
    let s = server.clone();
    let _signals = common::on_terminate(move || {
        let _ = s.stop(None);
    });
    println!(
        "udp echo server on {}; Ctrl-C to stop",
        server.local_addr().expect("bound")
    );
    server.serve_forever().expect("serve");
    println!("stopped");
}

//! Load for an echo server: N concurrent clients, each a greenlet under a
//! `Timeout`, each sending M messages and checking every echo byte for
//! byte. Prints throughput and latency percentiles.
//!
//! ```sh
//! cargo run --release --example echo_server -- --quiet     # in one terminal
//! cargo run --release --example echo_client -- --clients 50 --messages 2000
//! ```
//!
//! Exits when every client is done (status 1 if any failed).
mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use greenlet::net::TcpStream;
use greenlet::{spawn, Timeout};

const USAGE: &str =
    "echo_client [--addr ADDR] [--clients N] [--messages M] [--size BYTES] [--timeout SECONDS]";

/// One client: connects, sends `messages` messages of `size` bytes, checks
/// each echo; returns the round-trip latencies.
fn client(
    addr: SocketAddr,
    id: usize,
    messages: usize,
    size: usize,
) -> std::io::Result<Vec<Duration>> {
    let mut conn = TcpStream::connect(addr)?;
    conn.set_nodelay(true)?;
    let mut msg = vec![0u8; size];
    let mut back = vec![0u8; size];
    let mut lat = Vec::with_capacity(messages);
    for m in 0..messages {
        for (i, b) in msg.iter_mut().enumerate() {
            *b = (id + m + i) as u8;
        }
        let t0 = Instant::now();
        conn.write_all(&msg)?;
        conn.read_exact(&mut back)?;
        lat.push(t0.elapsed());
        if back != msg {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("client {id}: echo of message {m} differs"),
            ));
        }
    }
    Ok(lat)
}

fn main() {
    common::init_log();
    let args = common::Args::parse(USAGE);
    let addr: SocketAddr = args.get("--addr", "127.0.0.1:16000".parse().unwrap());
    let clients: usize = args.get("--clients", 50);
    let messages: usize = args.get("--messages", 1000);
    let size: usize = args.get("--size", 64);
    let timeout = args.seconds("--timeout", 30.0);

    let t0 = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|id| {
            spawn(move || {
                let t = Timeout::start_new(timeout);
                client(addr, id, messages, size).map_err(|e| {
                    if t.is(&e) {
                        format!("client {id}: timed out after {t}")
                    } else {
                        format!("client {id}: {e}")
                    }
                })
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut failed = 0;
    for w in workers {
        match w.get() {
            Ok(Ok(l)) => lat.extend(l),
            Ok(Err(e)) => {
                eprintln!("{e}");
                failed += 1;
            }
            Err(e) => {
                eprintln!("a client greenlet failed: {e}");
                failed += 1;
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    lat.sort();
    let pct = |p: f64| -> Duration {
        if lat.is_empty() {
            Duration::ZERO
        } else {
            lat[((lat.len() - 1) as f64 * p) as usize]
        }
    };
    println!(
        "{} clients x {} messages of {} bytes to {}: {} echoes in {:.2} s = {:.0} msg/s",
        clients,
        messages,
        size,
        addr,
        lat.len(),
        secs,
        lat.len() as f64 / secs
    );
    println!(
        "latency p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
    if failed > 0 {
        eprintln!("{failed} of {clients} clients failed");
        std::process::exit(1);
    }
}

//! Fetches N URLs at once with the unmodified `ureq` crate: after
//! `greenlet::monkey::patch_all()`, its blocking std sockets park the
//! greenlet that uses them instead of the thread, so N greenlets fetch
//! concurrently (gevent's `concurrent_download.py` with `monkey.patch_all()`).
//!
//! ```sh
//! # Offline: starts its own local server (plain threads), which delays
//! # each reply 200 ms, and fetches 20 pages from it (about 0.2 s in all):
//! cargo run --features monkey --example monkey_http_fetch -- --count 20
//! # The same fetches with the hooks left off, one after the other (4 s):
//! cargo run --features monkey --example monkey_http_fetch -- --count 20 --unpatched
//! # Given URLs instead:
//! cargo run --features monkey --example monkey_http_fetch -- http://127.0.0.1:8000/ http://127.0.0.1:8000/a
//! ```
//!
//! Exits when every fetch has finished (status 1 if one failed).
mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use greenlet::Builder;

const USAGE: &str = "monkey_http_fetch [--count N] [--delay SECONDS] [--unpatched] [URL...]";

fn main() {
    let args = common::Args::parse(USAGE);
    let count: usize = args.get("--count", 20);
    let delay = args.seconds("--delay", 0.2);
    if !args.flag("--unpatched") {
        if let Err(e) = greenlet::monkey::patch_all() {
            eprintln!("monkey_http_fetch: {e}");
            std::process::exit(1);
        }
    }
    let mut urls: Vec<String> = (0..)
        .map_while(|i| args.positional(i).map(String::from))
        .collect();
    if urls.is_empty() {
        let addr = local_server(delay);
        println!("serving on {addr} (each reply delayed {delay:?})");
        urls = (0..count)
            .map(|i| format!("http://{addr}/page{i}"))
            .collect();
    }
    let t0 = Instant::now();
    let fetches: Vec<_> = urls
        .into_iter()
        .map(|url| {
            Builder::new()
                // Room beyond the default (256 KiB; a plain ureq GET went
                // 62 KiB deep in a debug build) for redirects, big headers
                // and crates written for threads' 2 MiB stacks.
                .stack_size(1 << 20)
                .spawn(move || {
                    let t = Instant::now();
                    let r = ureq::get(&url)
                        .call()
                        .and_then(|mut resp| resp.body_mut().read_to_string());
                    (url, r, t.elapsed())
                })
                .expect("a greenlet stack")
        })
        .collect();
    let mut failed = 0;
    for g in fetches {
        let (url, r, took) = g.get().expect("the fetch greenlet ended");
        match r {
            Ok(body) => println!("{url}: {} bytes in {:.3} s", body.len(), took.as_secs_f64()),
            Err(e) => {
                failed += 1;
                println!("{url}: failed: {e}");
            }
        }
    }
    println!("all done in {:.3} s", t0.elapsed().as_secs_f64());
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

/// A plain std HTTP server on a free loopback port, a thread per
/// connection (plain threads have no hub, so the hooks leave them alone),
/// answering each request after `delay` with a small page.
fn local_server(delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = answer(conn, delay);
            });
        }
    });
    addr
}

fn answer(conn: TcpStream, delay: Duration) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split(' ').nth(1).unwrap_or("/").to_string();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    std::thread::sleep(delay);
    let body = format!("<html><body>page {path}</body></html>\n");
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

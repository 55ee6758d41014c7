//! gevent's `dns_mass_resolve.py`: many lookups at once through a `Pool`,
//! each under a `Timeout`, on the resolver thread pool (the hub never
//! blocks).
//!
//! ```sh
//! cargo run --example dns_mass_resolve -- --count 20 --timeout 2
//! cargo run --example dns_mass_resolve -- example.com localhost
//! ```
//!
//! Exits when every lookup has finished or timed out. Without network access only local names resolve; the `.invalid` ones
//! fail (or time out), which is what the timeouts are for.
mod common;

use std::time::Instant;

use greenlet::net::getaddrinfo;
use greenlet::pool::Pool;
use greenlet::with_timeout;

const USAGE: &str = "dns_mass_resolve [--count N] [--pool N] [--timeout SECONDS] [NAME...]";

fn main() {
    common::init_log();
    let args = common::Args::parse(USAGE);
    let count: usize = args.get("--count", 20);
    let pool_size: usize = args.get("--pool", 10);
    let timeout = args.seconds("--timeout", 2.0);
    let mut names: Vec<String> = (0..)
        .map_while(|i| args.positional(i).map(String::from))
        .collect();
    if names.is_empty() {
        names = (0..count)
            .map(|i| match i % 4 {
                0 => "localhost".to_string(),
                1 => "127.0.0.1".to_string(),
                2 => "ip6-localhost".to_string(),
                _ => format!("host{i}.invalid"),
            })
            .collect();
    }
    let pool = Pool::new(pool_size);
    let t0 = Instant::now();
    let results = pool
        .map(names.clone(), move |name| {
            let r = with_timeout(timeout, || getaddrinfo(&name, 0));
            (name, r)
        })
        .expect("lookups");
    let (mut ok, mut failed, mut timed_out) = (0, 0, 0);
    for (name, r) in results {
        match r {
            Ok(Ok(addrs)) => {
                ok += 1;
                let first = addrs
                    .first()
                    .map(|a| a.addr.ip().to_string())
                    .unwrap_or_default();
                println!("{name:>20} -> {first}");
            }
            Ok(Err(e)) => {
                failed += 1;
                println!("{name:>20} -> failed: {e}");
            }
            Err(elapsed) => {
                timed_out += 1;
                println!("{name:>20} -> {elapsed}");
            }
        }
    }
    println!(
        "{} names in {:.2} s with a pool of {pool_size}: {ok} resolved, {failed} failed, {timed_out} timed out",
        names.len(),
        t0.elapsed().as_secs_f64()
    );
}

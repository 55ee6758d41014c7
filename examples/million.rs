//! Parks many greenlets, each blocked in a wait, and reports what it cost:
//! RSS per greenlet, memory maps added, time to spawn and to wake.
//!
//! ```sh
//! cargo run --release --example million                 # 100 000 greenlets, ~0.5 GiB
//! cargo run --release --example million -- --million    # a million: ~4.3 GiB of RAM
//! cargo run --release --example million -- --count 250000
//! ```
//!
//! A parked greenlet costs about 4.4 KiB (the touched pages of its stack),
//! so the default fits a laptop; `--million` needs a machine with the RAM
//! for it. It exits when done (a few seconds).
mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use greenlet::{hub, park, spawn, yield_now, Waker};

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn maps() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

const USAGE: &str = "million [--count N | --million]";

fn main() {
    common::init_log();
    let args = common::Args::parse(USAGE);
    let default = if args.flag("--million") {
        1_000_000
    } else {
        100_000
    };
    let count: usize = args.get("--count", default);

    let wakers: Rc<RefCell<Vec<Waker>>> = Rc::new(RefCell::new(Vec::with_capacity(count)));
    yield_now(); // create the hub before measuring
    let (rss0, maps0) = (rss_bytes(), maps());

    let t0 = Instant::now();
    let greenlets: Vec<_> = (0..count)
        .map(|_| {
            let w = wakers.clone();
            spawn(move || park(&"the wake-up", |waker| w.borrow_mut().push(waker)))
        })
        .collect();
    let spawned = t0.elapsed();

    // One turn runs them all: each parks at once.
    let t1 = Instant::now();
    yield_now();
    let parked_in = t1.elapsed();
    assert_eq!(wakers.borrow().len(), count, "every greenlet parked");
    let (rss1, maps1) = (rss_bytes(), maps());

    let t2 = Instant::now();
    for w in wakers.borrow_mut().drain(..) {
        w.wake();
    }
    for g in &greenlets {
        g.join().expect("woken greenlets finish");
    }
    let woken = t2.elapsed();
    assert!(greenlets.iter().all(|g| g.successful()));
    drop(greenlets);
    hub::trim_stacks();

    let per = |d: std::time::Duration| d.as_nanos() as f64 / count as f64;
    println!("greenlets parked:        {count}");
    println!(
        "RSS per parked greenlet: {:.2} KiB ({:.1} MiB in all)",
        (rss1.saturating_sub(rss0)) as f64 / count as f64 / 1024.0,
        (rss1.saturating_sub(rss0)) as f64 / (1 << 20) as f64
    );
    println!(
        "memory maps:             {maps0} before, {maps1} while parked (+{})",
        maps1 as i64 - maps0 as i64
    );
    println!(
        "spawn:                   {:.0} ns per greenlet",
        per(spawned)
    );
    println!(
        "first run to park:       {:.0} ns per greenlet",
        per(parked_in)
    );
    println!("wake + finish + join:    {:.0} ns per greenlet", per(woken));
    println!(
        "RSS after finishing:     {:.1} MiB (stacks pooled, deep pages released)",
        rss_bytes() as f64 / (1 << 20) as f64
    );
}

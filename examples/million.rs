//! Parks many greenlets, each blocked in a wait, and reports what it cost:
//! RSS per greenlet, memory maps added, time to spawn and to wake. With
//! `--burst`, instead spawns that many greenlets that exit at once (all live
//! together), and checks that the memory comes back afterwards: RSS within
//! 10% + 20 MiB of what it was before the burst (exit status 1 if not).
//!
//! ```sh
//! cargo run --release --example million                 # 100 000 greenlets, ~0.5 GiB
//! cargo run --release --example million -- --million    # a million: ~4.3 GiB of RAM
//! cargo run --release --example million -- --count 250000
//! cargo run --release --example million -- --million --burst
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

/// Memory the kernel spends on this process's page tables (not part of
/// RSS): one 4 KiB table per 2 MiB of address space with a touched page.
fn page_tables_kib() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmPTE:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn maps() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

const USAGE: &str = "million [--count N | --million] [--burst]";

fn main() {
    common::init_log();
    let args = common::Args::parse(USAGE);
    let default = if args.flag("--million") {
        1_000_000
    } else {
        100_000
    };
    let count: usize = args.get("--count", default);
    if args.flag("--burst") {
        std::process::exit(burst(count));
    }

    let wakers: Rc<RefCell<Vec<Waker>>> = Rc::new(RefCell::new(Vec::with_capacity(count)));
    yield_now(); // create the hub before measuring
    let (rss0, maps0, pt0) = (rss_bytes(), maps(), page_tables_kib());

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
    let (rss1, maps1, pt1) = (rss_bytes(), maps(), page_tables_kib());

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
        "page tables (not RSS):   {:.2} KiB per parked greenlet",
        pt1.saturating_sub(pt0) as f64 / count as f64
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

/// Spawns `count` greenlets that return at once (all live together), joins
/// them, and waits (at most 10 s) for the hub to give the memory back: the
/// stack pool releases stacks that sat unused for a decay interval, and
/// then the allocator's free memory. Returns the exit status.
fn burst(count: usize) -> i32 {
    yield_now(); // create the hub before measuring
    let before = rss_bytes();
    let t0 = Instant::now();
    let greenlets: Vec<_> = (0..count).map(|i| spawn(move || i)).collect();
    let mut sum = 0;
    for g in greenlets {
        sum += g.get().expect("the greenlets return");
    }
    assert_eq!(sum, count * count.saturating_sub(1) / 2);
    let ran = t0.elapsed();
    let (peak, peak_pt) = (rss_bytes(), page_tables_kib());
    let bound = before + before / 10 + (20 << 20);
    let t1 = Instant::now();
    while rss_bytes() > bound && t1.elapsed() < std::time::Duration::from_secs(10) {
        // The pool's decay runs on the hub's loop, which runs while this
        // (the main greenlet) sleeps.
        greenlet::sleep(std::time::Duration::from_millis(100)).expect("a plain sleep");
    }
    let after = rss_bytes();
    let mib = |b: usize| b as f64 / (1 << 20) as f64;
    println!("burst of greenlets:      {count} spawned, all live, then joined");
    println!(
        "spawn+join:              {:.0} ns per greenlet",
        ran.as_nanos() as f64 / count as f64
    );
    println!("RSS before the burst:    {:.1} MiB", mib(before));
    println!("page tables at its end:  {peak_pt} KiB (not in RSS)");
    println!("RSS at its end:          {:.1} MiB", mib(peak));
    println!(
        "RSS after:               {:.1} MiB, {:.1} s later (bound: {:.1} MiB = before + 10% + 20 MiB)",
        mib(after),
        t1.elapsed().as_secs_f64(),
        mib(bound)
    );
    println!("page tables after:       {} KiB", page_tables_kib());
    if after > bound {
        println!("FAILED: the memory did not come back");
        return 1;
    }
    0
}

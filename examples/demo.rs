//! A small tour: spawn, sleep, join, yield, kill, and a deadlock report.
//!
//! Run with `cargo run --example demo`; it prints as it goes and exits.
mod common;

use greenlet::{getcurrent, sleep, spawn, yield_now};
use std::time::{Duration, Instant};

fn main() {
    common::init_log();
    let t0 = Instant::now();
    let workers: Vec<_> = (1..=3u64)
        .map(|i| {
            spawn(move || {
                println!("worker {i} ({}) starts", getcurrent().name());
                sleep(Duration::from_millis(30 * i)).unwrap();
                println!("worker {i} done after {:?}", t0.elapsed());
                i * i
            })
        })
        .collect();
    let sum: u64 = workers.into_iter().map(|g| g.get().unwrap()).sum();
    println!(
        "sum of squares: {sum} in {:?} (concurrent sleeps)",
        t0.elapsed()
    );

    let a = spawn(|| {
        for i in 0..2 {
            println!("A{i}");
            yield_now();
        }
    });
    let b = spawn(|| {
        for i in 0..2 {
            println!("B{i}");
            yield_now();
        }
    });
    a.join().unwrap();
    b.join().unwrap();

    let sleeper = spawn(|| sleep(Duration::from_secs(3600)));
    sleep(Duration::ZERO).unwrap();
    sleeper.kill().unwrap();
    println!(
        "killed sleeper: dead={} successful={}",
        sleeper.dead(),
        sleeper.successful()
    );

    let stuck = spawn(|| greenlet::park(&"a signal nobody sends", |_w| {}));
    match stuck.join() {
        Err(e) => println!("join reports: {e}"),
        Ok(()) => println!("unexpected"),
    }
}

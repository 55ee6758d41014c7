//! Blocking work off the hub: CPU-heavy or blocking calls run on the
//! thread pool while greenlets keep running; the caller waits
//! cooperatively.
//!
//! ```sh
//! cargo run --example threadpool                      # [--jobs N] [--millis MS]
//! ```
//!
//! Exits when the jobs are done (under a second by default).
mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::{sleep, spawn, threadpool};

const USAGE: &str = "threadpool [--jobs N] [--millis MS]";

fn main() {
    common::init_log();
    let args = common::Args::parse(USAGE);
    let jobs: u64 = args.get("--jobs", 4);
    let millis: u64 = args.get("--millis", 200);

    // A greenlet that ticks every 10 ms: it keeps ticking while the pool's
    // threads block, because the hub never does.
    let ticks = Rc::new(Cell::new(0u32));
    let t = ticks.clone();
    let ticker = spawn(move || loop {
        sleep(Duration::from_millis(10)).unwrap();
        t.set(t.get() + 1);
    });

    let t0 = Instant::now();
    let results: Vec<_> = (0..jobs)
        .map(|i| {
            threadpool::spawn(move || {
                // A blocking call: this would freeze every greenlet if it ran
                // on the hub's thread.
                std::thread::sleep(Duration::from_millis(millis));
                (i, std::thread::current().name().map(String::from))
            })
        })
        .collect();
    for r in results {
        let (i, thread) = r.get().expect("job");
        println!("job {i} done on thread {:?}", thread.unwrap_or_default());
    }
    let took = t0.elapsed();
    ticker.kill().unwrap();
    println!(
        "{jobs} blocking jobs of {millis} ms took {:.0} ms; the hub ticked {} times meanwhile",
        took.as_secs_f64() * 1000.0,
        ticks.get()
    );
}

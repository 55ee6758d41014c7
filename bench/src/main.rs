//! Benchmarks of greenlet. `cargo run --release -p greenlet-bench -- micro`.
//!
//! For now the micro suite measures greenlet alone (median, min and max
//! over repeated runs); the side-by-side comparison with tokio and may is
//! the benchmark issue's work.

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::{park, spawn, yield_now, Timeout, Waker};

/// Runs `f` (which performs `n` operations) `runs` times; returns
/// nanoseconds per operation as (median, min, max).
fn measure(runs: usize, n: u64, mut f: impl FnMut(u64)) -> (f64, f64, f64) {
    f(n / 10); // warm-up: fills the stack pool, faults pages in
    let mut v: Vec<f64> = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            f(n);
            t0.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn spawn_join(n: u64) {
    let gs: Vec<_> = (0..n).map(|i| spawn(move || black_box(i))).collect();
    for g in gs {
        black_box(g.get().unwrap());
    }
}

fn yield_pingpong(n: u64) {
    // Two greenlets yielding to each other: one round trip = two switches
    // through the hub per greenlet.
    let a = spawn(move || {
        for _ in 0..n {
            yield_now();
        }
    });
    let b = spawn(move || {
        for _ in 0..n {
            yield_now();
        }
    });
    a.join().unwrap();
    b.join().unwrap();
}

fn park_wake_pingpong(n: u64) {
    // Hand-off through park/wake: each side wakes the other and parks.
    type Slot = Rc<Cell<Option<Waker>>>;
    let (sa, sb): (Slot, Slot) = (Rc::default(), Rc::default());
    let (a1, b1) = (sa.clone(), sb.clone());
    let a = spawn(move || {
        for _ in 0..n {
            if let Some(w) = b1.take() {
                w.wake();
            }
            park(&"ping", |w| a1.set(Some(w))).unwrap();
        }
        if let Some(w) = b1.take() {
            w.wake();
        }
    });
    let b = spawn(move || {
        for _ in 0..n {
            if let Some(w) = sa.take() {
                w.wake();
            }
            park(&"pong", |w| sb.set(Some(w))).unwrap();
        }
        if let Some(w) = sa.take() {
            w.wake();
        }
    });
    a.join().unwrap();
    b.join().unwrap();
}

fn timeout_arm_cancel(n: u64) {
    let d = Duration::from_secs(10);
    for _ in 0..n {
        let t = Timeout::start_new(d);
        black_box(&t);
        drop(t);
    }
}

fn main() {
    let suite = std::env::args().nth(1).unwrap_or_else(|| "micro".into());
    if suite != "micro" && suite != "all" {
        eprintln!("usage: greenlet-bench [micro|all]");
        std::process::exit(2);
    }
    println!("| benchmark | greenlet median | min | max |");
    println!("| --- | --- | --- | --- |");
    type Row = (&'static str, u64, fn(u64));
    let rows: [Row; 4] = [
        ("spawn+join per greenlet (100k live)", 100_000, spawn_join),
        ("yield ping-pong round trip", 1_000_000, yield_pingpong),
        (
            "park/wake hand-off round trip",
            1_000_000,
            park_wake_pingpong,
        ),
        (
            "Timeout arm+cancel (unfired)",
            10_000_000,
            timeout_arm_cancel,
        ),
    ];
    for (name, n, f) in rows {
        let (med, min, max) = measure(7, n, f);
        println!("| {name} | {med:.1} ns | {min:.1} ns | {max:.1} ns |");
    }
}

//! The micro suite: scheduler hot paths of greenlet against tokio
//! (current_thread runtime + `LocalSet`) and may (one worker), each on one
//! core.
//!
//! Every figure is nanoseconds per operation, the median (with min and max)
//! of [`RUNS`] timed runs after one warm-up run. greenlet runs on the main
//! thread's hub; tokio inside `LocalSet::run_until` on a current_thread
//! runtime; may inside a coroutine on its single worker, so that every
//! wait is a coroutine switch and never an OS-thread block.

use std::cell::Cell as StdCell;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::table::{Better, Cell, Figure, Row, Table};

/// Timed runs per figure, at least (after one warm-up run) ...
pub const RUNS: usize = 7;
/// ... and at least this much time of timed runs, so the median is taken
/// in the steady state (the first runs after a warm-up still fault in
/// memory the warm-up's frees returned) ...
const MIN_TIME: Duration = Duration::from_secs(1);
/// ... but no more runs than this.
const MAX_RUNS: usize = 200;

/// Round trips of the hand-off and yield ping-pongs (each is two hand-offs).
const PINGPONG: u64 = 200_000;
/// Greenlets / tasks / coroutines per spawn+join run (all live at once).
const SPAWN: u64 = 100_000;
/// may keeps at most this many coroutines live in its spawn+join run: each
/// stack is two kernel memory maps, and `vm.max_map_count` (65530 by
/// default) stops it near 32k.
const MAY_SPAWN_BATCH: u64 = 10_000;
/// Operations per timeout and lock run.
const SIMPLE: u64 = 1_000_000;

/// Runs `f` (which returns nanoseconds per operation) once to warm up,
/// then at least `runs` times and for at least [`MIN_TIME`] (at most
/// [`MAX_RUNS`] runs).
fn measure(runs: usize, mut f: impl FnMut() -> f64) -> Figure {
    f();
    let t0 = Instant::now();
    let mut v = Vec::new();
    while v.len() < runs || (t0.elapsed() < MIN_TIME && v.len() < MAX_RUNS) {
        v.push(f());
    }
    Figure::of(&v).expect("runs > 0")
}

fn per(d: Duration, ops: u64) -> f64 {
    d.as_nanos() as f64 / ops as f64
}

// ---------------------------------------------------------------- greenlet

mod g {
    use super::*;
    use greenlet::sync::{Event, Lock, Queue};
    use greenlet::{park, spawn, yield_now, Timeout, Waker};

    /// Two greenlets; each wakes the other and parks. ns per hand-off.
    pub fn handoff_park(n: u64) -> f64 {
        type Slot = Rc<StdCell<Option<Waker>>>;
        let (sa, sb): (Slot, Slot) = (Rc::default(), Rc::default());
        let (a1, b1) = (sa.clone(), sb.clone());
        let t0 = Instant::now();
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
        per(t0.elapsed(), 2 * n)
    }

    /// Ping-pong through two `Event`s (set / wait / clear). ns per hand-off.
    pub fn handoff_event(n: u64) -> f64 {
        let (ea, eb) = (Rc::new(Event::new()), Rc::new(Event::new()));
        let (ea2, eb2) = (ea.clone(), eb.clone());
        let t0 = Instant::now();
        let a = spawn(move || {
            for _ in 0..n {
                eb.set();
                ea.wait().unwrap();
                ea.clear();
            }
        });
        let b = spawn(move || {
            for _ in 0..n {
                eb2.wait().unwrap();
                eb2.clear();
                ea2.set();
            }
        });
        a.join().unwrap();
        b.join().unwrap();
        per(t0.elapsed(), 2 * n)
    }

    /// Ping-pong of a `u64` through two unbounded `Queue`s. ns per hand-off.
    pub fn handoff_queue(n: u64) -> f64 {
        let (qa, qb) = (Rc::new(Queue::unbounded()), Rc::new(Queue::unbounded()));
        let (qa2, qb2) = (qa.clone(), qb.clone());
        let t0 = Instant::now();
        let a = spawn(move || {
            for i in 0..n {
                qb.put(i).unwrap();
                black_box(qa.get().unwrap());
            }
        });
        let b = spawn(move || {
            for _ in 0..n {
                let v: u64 = qb2.get().unwrap();
                qa2.put(v).unwrap();
            }
        });
        a.join().unwrap();
        b.join().unwrap();
        per(t0.elapsed(), 2 * n)
    }

    /// Two greenlets yielding to each other. ns per yield.
    pub fn yield_pingpong(n: u64) -> f64 {
        let t0 = Instant::now();
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
        per(t0.elapsed(), 2 * n)
    }

    /// Spawns `n` greenlets (all live), then joins each and takes its value.
    pub fn spawn_join(n: u64) -> f64 {
        let t0 = Instant::now();
        let gs: Vec<_> = (0..n).map(|i| spawn(move || black_box(i))).collect();
        for g in gs {
            black_box(g.get().unwrap());
        }
        per(t0.elapsed(), n)
    }

    /// Starts a `Timeout` that would fire in 10 s and drops (cancels) it.
    pub fn timeout_arm_cancel(n: u64) -> f64 {
        let d = Duration::from_secs(10);
        let t0 = Instant::now();
        for _ in 0..n {
            let t = Timeout::start_new(d);
            black_box(&t);
            drop(t);
        }
        per(t0.elapsed(), n)
    }

    /// Locks and unlocks a free `Lock`.
    pub fn lock(n: u64) -> f64 {
        let l = Lock::new();
        let t0 = Instant::now();
        for _ in 0..n {
            let g = l.lock().unwrap();
            black_box(&g);
            drop(g);
        }
        per(t0.elapsed(), n)
    }
}

// ------------------------------------------------------------------- tokio

mod t {
    use super::*;
    use tokio::runtime::Runtime;
    use tokio::sync::{mpsc, Mutex, Notify};
    use tokio::task::{spawn_local, yield_now, LocalSet};

    /// A current_thread runtime with the I/O and time drivers, as a server
    /// would build it.
    pub fn runtime() -> Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    }

    /// Runs `fut` to completion inside a fresh `LocalSet` on `rt`.
    pub fn run<F: std::future::Future<Output = f64>>(rt: &Runtime, fut: F) -> f64 {
        LocalSet::new().block_on(rt, fut)
    }

    /// Notify ping-pong between two local tasks. ns per hand-off.
    pub async fn handoff_notify(n: u64) -> f64 {
        let (na, nb) = (Rc::new(Notify::new()), Rc::new(Notify::new()));
        let (na2, nb2) = (na.clone(), nb.clone());
        let t0 = Instant::now();
        let a = spawn_local(async move {
            for _ in 0..n {
                nb.notify_one();
                na.notified().await;
            }
        });
        let b = spawn_local(async move {
            for _ in 0..n {
                nb2.notified().await;
                na2.notify_one();
            }
        });
        a.await.unwrap();
        b.await.unwrap();
        per(t0.elapsed(), 2 * n)
    }

    /// Ping-pong of a `u64` through two unbounded mpsc channels.
    pub async fn handoff_channel(n: u64) -> f64 {
        let (ta, mut ra) = mpsc::unbounded_channel::<u64>();
        let (tb, mut rb) = mpsc::unbounded_channel::<u64>();
        let t0 = Instant::now();
        let a = spawn_local(async move {
            for i in 0..n {
                tb.send(i).unwrap();
                black_box(ra.recv().await.unwrap());
            }
        });
        let b = spawn_local(async move {
            for _ in 0..n {
                let v = rb.recv().await.unwrap();
                ta.send(v).unwrap();
            }
        });
        a.await.unwrap();
        b.await.unwrap();
        per(t0.elapsed(), 2 * n)
    }

    /// Two tasks calling `tokio::task::yield_now`. ns per yield.
    pub async fn yield_pingpong(n: u64) -> f64 {
        let t0 = Instant::now();
        let a = spawn_local(async move {
            for _ in 0..n {
                yield_now().await;
            }
        });
        let b = spawn_local(async move {
            for _ in 0..n {
                yield_now().await;
            }
        });
        a.await.unwrap();
        b.await.unwrap();
        per(t0.elapsed(), 2 * n)
    }

    /// `spawn_local`s `n` tasks (all live), then awaits each handle.
    pub async fn spawn_join(n: u64) -> f64 {
        let t0 = Instant::now();
        let hs: Vec<_> = (0..n)
            .map(|i| spawn_local(async move { black_box(i) }))
            .collect();
        for h in hs {
            black_box(h.await.unwrap());
        }
        per(t0.elapsed(), n)
    }

    /// `tokio::time::timeout(10 s, ready)`: the timeout of a future that is
    /// ready at once (tokio registers its timer lazily, on first pending).
    pub async fn timeout_ready(n: u64) -> f64 {
        let d = Duration::from_secs(10);
        let t0 = Instant::now();
        for i in 0..n {
            let r = tokio::time::timeout(d, std::future::ready(i)).await;
            black_box(r.unwrap());
        }
        per(t0.elapsed(), n)
    }

    /// Locks and unlocks a free `tokio::sync::Mutex`.
    pub async fn lock(n: u64) -> f64 {
        let m = Mutex::new(0u64);
        let t0 = Instant::now();
        for _ in 0..n {
            let g = m.lock().await;
            black_box(&*g);
            drop(g);
        }
        per(t0.elapsed(), n)
    }
}

// --------------------------------------------------------------------- may

mod m {
    use super::*;
    use may::coroutine::{self, Coroutine};
    use may::sync::{mpsc, Mutex, Semphore};

    /// Spawns a may coroutine.
    pub fn go<F, T>(f: F) -> coroutine::JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // SAFETY: may's contract: the coroutine must not use thread-local
        // storage (it may resume on another worker) and must fit its stack.
        // These closures touch no thread-locals of their own and are
        // shallow; the bench configures one worker, so nothing migrates.
        unsafe { coroutine::spawn(f) }
    }

    /// Runs `f` in a coroutine on may's worker and returns its result, so
    /// that every wait inside is a coroutine switch.
    pub fn run(f: impl FnOnce() -> f64 + Send + 'static) -> f64 {
        go(f).join().expect("may coroutine")
    }

    /// park/unpark ping-pong between two coroutines. ns per hand-off.
    pub fn handoff_park(n: u64) -> f64 {
        let a_slot: Arc<OnceLock<Coroutine>> = Arc::default();
        let a_slot2 = a_slot.clone();
        let t0 = Instant::now();
        let b = go(move || {
            for _ in 0..n {
                coroutine::park();
                a_slot2.get().expect("a registered").unpark();
            }
        });
        let bco = b.coroutine().clone();
        let a = go(move || {
            a_slot.set(coroutine::current()).ok();
            for _ in 0..n {
                bco.unpark();
                coroutine::park();
            }
        });
        a.join().unwrap();
        b.join().unwrap();
        per(t0.elapsed(), 2 * n)
    }

    /// Ping-pong through two `Semphore`s (post / wait). ns per hand-off.
    pub fn handoff_semaphore(n: u64) -> f64 {
        let (sa, sb) = (Arc::new(Semphore::new(0)), Arc::new(Semphore::new(0)));
        let (sa2, sb2) = (sa.clone(), sb.clone());
        let t0 = Instant::now();
        let a = go(move || {
            for _ in 0..n {
                sb.post();
                sa.wait();
            }
        });
        let b = go(move || {
            for _ in 0..n {
                sb2.wait();
                sa2.post();
            }
        });
        a.join().unwrap();
        b.join().unwrap();
        per(t0.elapsed(), 2 * n)
    }

    /// Ping-pong of a `u64` through two `may::sync::mpsc` channels.
    pub fn handoff_channel(n: u64) -> f64 {
        let (ta, ra) = mpsc::channel::<u64>();
        let (tb, rb) = mpsc::channel::<u64>();
        let t0 = Instant::now();
        let a = go(move || {
            for i in 0..n {
                tb.send(i).unwrap();
                black_box(ra.recv().unwrap());
            }
        });
        let b = go(move || {
            for _ in 0..n {
                let v = rb.recv().unwrap();
                ta.send(v).unwrap();
            }
        });
        a.join().unwrap();
        b.join().unwrap();
        per(t0.elapsed(), 2 * n)
    }

    /// Two coroutines calling `may::coroutine::yield_now`. ns per yield.
    pub fn yield_pingpong(n: u64) -> f64 {
        let t0 = Instant::now();
        let a = go(move || {
            for _ in 0..n {
                coroutine::yield_now();
            }
        });
        let b = go(move || {
            for _ in 0..n {
                coroutine::yield_now();
            }
        });
        a.join().unwrap();
        b.join().unwrap();
        per(t0.elapsed(), 2 * n)
    }

    /// Spawns and joins `n` coroutines, at most [`MAY_SPAWN_BATCH`] live.
    pub fn spawn_join(n: u64) -> f64 {
        let t0 = Instant::now();
        let mut done = 0;
        while done < n {
            let k = MAY_SPAWN_BATCH.min(n - done);
            let hs: Vec<_> = (done..done + k).map(|i| go(move || black_box(i))).collect();
            for h in hs {
                black_box(h.join().unwrap());
            }
            done += k;
        }
        per(t0.elapsed(), n)
    }

    /// Locks and unlocks a free `may::sync::Mutex`.
    pub fn lock(n: u64) -> f64 {
        let m = Mutex::new(0u64);
        let t0 = Instant::now();
        for _ in 0..n {
            let g = m.lock().unwrap();
            black_box(&*g);
            drop(g);
        }
        per(t0.elapsed(), n)
    }
}

/// Configures may for the micro suite: one worker. Must run before any
/// other use of may in this process.
pub fn configure_may() {
    may::config().set_workers(1);
}

/// Rows of the suite, in order.
const ROWS: [&str; 9] = [
    "hand-off, park/wake",
    "hand-off, event",
    "hand-off, channel",
    "yield ping-pong, per yield",
    "spawn+join",
    "Timeout arm+cancel (unfired)",
    "uncontended lock+unlock",
    "spawn+join cold",
    "spawn+join cold",
];
/// Row index of spawn+join (its label names the count).
const SPAWN_ROW: usize = 4;
/// Rows of the cold spawn+join: the first burst of a fresh process (no
/// warm-up run, so stacks, task memory and allocator arenas are all new),
/// of [`COLD_SMALL`] and of [`SPAWN`] greenlets / tasks / coroutines.
const COLD_ROWS: [usize; 2] = [7, 8];
const COLD_SMALL: u64 = 10_000;
/// Fresh processes per cold figure (each gives one sample).
const COLD_RUNS: usize = 5;
/// Implementations, in column order.
const IMPLS: [&str; 3] = ["greenlet", "tokio", "may"];

/// How many greenlets / tasks / coroutines a cold row spawns.
fn cold_count(row: usize, scale: u64) -> u64 {
    let n = if row == COLD_ROWS[0] {
        COLD_SMALL
    } else {
        SPAWN
    };
    (n / scale).max(1)
}

/// Measures one row for one implementation in this process.
fn measure_one(imp: &str, row: usize, scale: u64) -> Result<Figure, String> {
    let s = |n: u64| (n / scale).max(1);
    let (pp, sp, simple) = (s(PINGPONG), s(SPAWN), s(SIMPLE));
    // A cold row is one run, the process's first: its runtime is set up
    // (the hub, the tokio runtime, may's worker) but has spawned nothing.
    let cold = |f: &mut dyn FnMut() -> f64| Figure::of(&[f()]).ok_or("no sample".to_string());
    let cn = if COLD_ROWS.contains(&row) {
        cold_count(row, scale)
    } else {
        0
    };
    match imp {
        "greenlet" => {
            greenlet::yield_now(); // create the hub outside the timed runs
            if cn > 0 {
                return cold(&mut || g::spawn_join(cn));
            }
            let f: Box<dyn FnMut() -> f64> = match row {
                0 => Box::new(move || g::handoff_park(pp)),
                1 => Box::new(move || g::handoff_event(pp)),
                2 => Box::new(move || g::handoff_queue(pp)),
                3 => Box::new(move || g::yield_pingpong(pp)),
                4 => Box::new(move || g::spawn_join(sp)),
                5 => Box::new(move || g::timeout_arm_cancel(simple)),
                6 => Box::new(move || g::lock(simple)),
                _ => return Err(format!("no row {row}")),
            };
            Ok(measure(RUNS, f))
        }
        "tokio" => {
            let rt = t::runtime();
            let rt = &rt;
            if cn > 0 {
                t::run(rt, async { 0.0 }); // start the runtime outside the timed run
                return cold(&mut || t::run(rt, t::spawn_join(cn)));
            }
            let f: Box<dyn FnMut() -> f64> = match row {
                0 | 1 => Box::new(move || t::run(rt, t::handoff_notify(pp))),
                2 => Box::new(move || t::run(rt, t::handoff_channel(pp))),
                3 => Box::new(move || t::run(rt, t::yield_pingpong(pp))),
                4 => Box::new(move || t::run(rt, t::spawn_join(sp))),
                5 => Box::new(move || t::run(rt, t::timeout_ready(simple))),
                6 => Box::new(move || t::run(rt, t::lock(simple))),
                _ => return Err(format!("no row {row}")),
            };
            Ok(measure(RUNS, f))
        }
        "may" => {
            configure_may();
            if cn > 0 {
                m::run(|| 0.0); // start the worker outside the timed run
                return cold(&mut || m::run(move || m::spawn_join(cn)));
            }
            let f: Box<dyn FnMut() -> f64> = match row {
                0 => Box::new(move || m::run(move || m::handoff_park(pp))),
                1 => Box::new(move || m::run(move || m::handoff_semaphore(pp))),
                2 => Box::new(move || m::run(move || m::handoff_channel(pp))),
                3 => Box::new(move || m::run(move || m::yield_pingpong(pp))),
                4 => Box::new(move || m::run(move || m::spawn_join(sp))),
                5 => return Err("may has no timeout guard".into()),
                6 => Box::new(move || m::run(move || m::lock(simple))),
                _ => return Err(format!("no row {row}")),
            };
            Ok(measure(RUNS, f))
        }
        _ => Err(format!("unknown implementation {imp:?}")),
    }
}

/// The hidden `micro-child <impl> <row> <scale>` subcommand: measures one
/// row for one implementation, pinned to CPU 0, and prints `fig <median>
/// <min> <max>` or `na <why>`. Returns the exit code.
pub fn child(imp: &str, row: usize, scale: u64) -> i32 {
    let _ = crate::sys::pin_to_cpu(0);
    match measure_one(imp, row, scale.max(1)) {
        Ok(f) => println!("fig {} {} {}", f.median, f.min, f.max),
        Err(e) => println!("na {e}"),
    }
    0
}

/// Runs one (row, implementation) in a child process and returns its cell.
fn run_child(imp: &str, row: usize, scale: u64) -> Cell {
    let go = || -> Result<Cell, String> {
        let cmd =
            crate::sys::self_command(&["micro-child", imp, &row.to_string(), &scale.to_string()])
                .map_err(|e| e.to_string())?;
        let mut c = crate::sys::spawn_guarded(cmd, true).map_err(|e| e.to_string())?;
        let line = c
            .read_line(Duration::from_secs(180))
            .map_err(|e| e.to_string())?;
        c.wait_for(Duration::from_secs(10));
        if let Some(why) = line.strip_prefix("na ") {
            return Ok(Cell::Na(why.to_string()));
        }
        let v: Vec<f64> = line
            .strip_prefix("fig ")
            .map(|r| {
                r.split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        match v.as_slice() {
            [median, min, max] => Ok(Cell::Fig(Figure {
                median: *median,
                min: *min,
                max: *max,
            })),
            _ => Err(format!("child said {line:?}")),
        }
    };
    go().unwrap_or_else(Cell::Na)
}

/// A cold row's cell: [`COLD_RUNS`] fresh processes, one sample each.
fn run_cold(imp: &str, row: usize, scale: u64) -> Cell {
    let mut samples = Vec::new();
    for _ in 0..COLD_RUNS {
        match run_child(imp, row, scale) {
            Cell::Fig(f) | Cell::FigNote(f, _) => samples.push(f.median),
            other => return other,
        }
    }
    Figure::of(&samples).map_or_else(|| Cell::Na("no samples".into()), Cell::Fig)
}

/// Runs the micro suite and returns its table. `scale` divides the
/// operation counts (1 = full size) for quick checks. Every (row,
/// implementation) runs in a fresh child process, so that no runtime
/// measures in a process another one has shaped (allocator state, extra
/// threads: after tokio or may ran in the same process, greenlet's
/// spawn+join measured 1.5x slower).
pub fn run(scale: u64) -> Table {
    // Other processes on CPU 0 would show up as noise: give them up to
    // 10 s to finish.
    let waited = crate::sys::wait_quiet(Duration::from_secs(if scale > 1 { 0 } else { 10 }));
    let sp = (SPAWN / scale).max(1);
    let mut rows = Vec::new();
    for (ri, label) in ROWS.iter().enumerate() {
        eprintln!("  micro: {label}");
        let cells = IMPLS
            .iter()
            .map(|imp| {
                let cold = COLD_ROWS.contains(&ri);
                let c = if cold {
                    run_cold(imp, ri, scale)
                } else {
                    run_child(imp, ri, scale)
                };
                let n = if cold { cold_count(ri, scale) } else { sp };
                match (ri, *imp, c) {
                    (SPAWN_ROW, "may", Cell::Fig(f)) => {
                        Cell::FigNote(f, format!("[{}k live]", MAY_SPAWN_BATCH.min(sp) / 1000))
                    }
                    (_, "may", Cell::Fig(f)) if cold && n > MAY_SPAWN_BATCH => {
                        Cell::FigNote(f, format!("[{}k live]", MAY_SPAWN_BATCH / 1000))
                    }
                    (_, _, c) => c,
                }
            })
            .collect();
        let label = if ri == SPAWN_ROW {
            format!("spawn+join, {}k live", sp / 1000)
        } else if COLD_ROWS.contains(&ri) {
            match cold_count(ri, scale) {
                n if n % 1000 == 0 => format!("{label}: first {}k", n / 1000),
                n => format!("{label}: first {n}"),
            }
        } else {
            label.to_string()
        };
        rows.push(Row {
            label,
            unit: "ns/op",
            better: Better::Lower,
            cells,
        });
    }
    let notes = vec![
        format!(
            "ns per operation; median (min–max) of at least {RUNS} timed runs and at least {} s \
             of them (at most {MAX_RUNS} runs), after a warm-up run; each row of each runtime in \
             a fresh process pinned to CPU 0. A hand-off is one task waking the other and \
             switching to it (a ping-pong round trip is two). Ratio = greenlet / peer: below \
             1.00× greenlet is faster.",
            MIN_TIME.as_secs()
        ),
        "greenlet: the main thread's hub. park/wake = `park` + `Waker::wake`; event = \
         `sync::Event` set/wait/clear; channel = `sync::Queue::unbounded`; \
         `yield_now`; `spawn` + `Greenlet::get`; `Timeout::start_new` + drop; `sync::Lock`."
            .into(),
        "tokio: current_thread runtime (I/O + time drivers) + `LocalSet`. park/wake and event = \
         `sync::Notify` (its cheapest wake primitive; measured separately for each row); \
         channel = `mpsc::unbounded_channel`; `task::yield_now`; `spawn_local` + await; \
         `time::timeout(10 s, ready)` (tokio arms the timer lazily, so this is its cheapest case); \
         `sync::Mutex`."
            .into(),
        format!(
            "may: `config().set_workers(1)` (may pins its worker to the first CPU), measured \
             inside a coroutine. park/wake = `coroutine::park` + `Coroutine::unpark`; event = \
             `sync::Semphore` post/wait; channel = `sync::mpsc`; `coroutine::yield_now`; spawn + \
             `JoinHandle::join` in batches of {}k live (each may stack is two memory maps; 100k \
             live exceed `vm.max_map_count`); `sync::Mutex`.",
            MAY_SPAWN_BATCH / 1000
        ),
        format!(
            "spawn+join cold: the first burst of a fresh process, spawned and joined as in \
             spawn+join (all live) with no warm-up run before it; median (min–max) of {COLD_RUNS} \
             fresh processes, one run each. It pays what the warm row does not: new stacks \
             faulted in (and guarded), new task memory from the allocator."
        ),
        format!(
            "Before the suite it waited {:.1} s for idle CPUs (at most 10 s); load average then: {}.",
            waited.as_secs_f64(),
            crate::sys::loadavg()
        ),
    ];
    Table {
        title: "micro: scheduler hot paths (one core)".into(),
        columns: IMPLS.to_vec(),
        rows,
        notes,
    }
}

/// The hidden `micro-loop <bench> <seconds>` subcommand: runs one greenlet
/// micro-benchmark over and over for about `seconds`, for a profiler
/// (`perf record -g target/release/greenlet-bench micro-loop spawn 5`).
/// Benches: park, event, queue, yield, spawn, timeout, lock. Returns the
/// exit code.
pub fn profile_loop(bench: &str, seconds: f64) -> i32 {
    let f: fn() -> f64 = match bench {
        "park" => || g::handoff_park(PINGPONG),
        "event" => || g::handoff_event(PINGPONG),
        "queue" => || g::handoff_queue(PINGPONG),
        "yield" => || g::yield_pingpong(PINGPONG),
        "spawn" => || g::spawn_join(SPAWN),
        "timeout" => || g::timeout_arm_cancel(SIMPLE),
        "lock" => || g::lock(SIMPLE),
        _ => {
            eprintln!("micro-loop: unknown bench {bench:?} (park, event, queue, yield, spawn, timeout, lock)");
            return 2;
        }
    };
    let _ = crate::sys::pin_to_cpu(0);
    let t0 = Instant::now();
    let mut v = Vec::new();
    while t0.elapsed().as_secs_f64() < seconds {
        v.push(f());
    }
    if let Some(fig) = Figure::of(&v) {
        println!(
            "{bench}: {} ns/op median ({}–{}) over {} runs",
            crate::table::num(fig.median),
            crate::table::num(fig.min),
            crate::table::num(fig.max),
            v.len()
        );
    }
    0
}

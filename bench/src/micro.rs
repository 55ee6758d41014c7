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

/// Timed runs per figure (after one warm-up run).
pub const RUNS: usize = 7;

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

/// Runs `f` (which returns nanoseconds per operation) once to warm up and
/// then `runs` times.
fn measure(runs: usize, mut f: impl FnMut() -> f64) -> Figure {
    f();
    let v: Vec<f64> = (0..runs).map(|_| f()).collect();
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

/// Runs the micro suite and returns its table. `scale` divides the
/// operation counts (1 = full size) for quick checks.
pub fn run(scale: u64) -> Table {
    // Other processes on CPU 0 would show up as noise: give them up to
    // 10 s to finish.
    let waited = crate::sys::wait_quiet(Duration::from_secs(if scale > 1 { 0 } else { 10 }));
    let (_pin, pin_err) = crate::sys::AffinityGuard::pin(0);
    configure_may();
    let rt = t::runtime();
    let s = |n: u64| (n / scale).max(1);
    let (pp, sp, simple) = (s(PINGPONG), s(SPAWN), s(SIMPLE));
    greenlet::yield_now(); // create the hub outside the timed runs

    let mut rows = Vec::new();
    let mut row = |label: &str, cells: Vec<Cell>| {
        eprintln!("  micro: {label}");
        rows.push(Row {
            label: label.to_string(),
            unit: "ns/op",
            better: Better::Lower,
            cells,
        });
    };
    let fig = Cell::Fig;

    row(
        "hand-off, park/wake",
        vec![
            fig(measure(RUNS, || g::handoff_park(pp))),
            fig(measure(RUNS, || t::run(&rt, t::handoff_notify(pp)))),
            fig(measure(RUNS, || m::run(move || m::handoff_park(pp)))),
        ],
    );
    row(
        "hand-off, event",
        vec![
            fig(measure(RUNS, || g::handoff_event(pp))),
            fig(measure(RUNS, || t::run(&rt, t::handoff_notify(pp)))),
            fig(measure(RUNS, || m::run(move || m::handoff_semaphore(pp)))),
        ],
    );
    row(
        "hand-off, channel",
        vec![
            fig(measure(RUNS, || g::handoff_queue(pp))),
            fig(measure(RUNS, || t::run(&rt, t::handoff_channel(pp)))),
            fig(measure(RUNS, || m::run(move || m::handoff_channel(pp)))),
        ],
    );
    row(
        "yield ping-pong, per yield",
        vec![
            fig(measure(RUNS, || g::yield_pingpong(pp))),
            fig(measure(RUNS, || t::run(&rt, t::yield_pingpong(pp)))),
            fig(measure(RUNS, || m::run(move || m::yield_pingpong(pp)))),
        ],
    );
    row(
        &format!("spawn+join, {}k live", sp / 1000),
        vec![
            fig(measure(RUNS, || g::spawn_join(sp))),
            fig(measure(RUNS, || t::run(&rt, t::spawn_join(sp)))),
            Cell::FigNote(
                measure(RUNS, || m::run(move || m::spawn_join(sp))),
                format!("[{}k live]", MAY_SPAWN_BATCH.min(sp) / 1000),
            ),
        ],
    );
    row(
        "Timeout arm+cancel (unfired)",
        vec![
            fig(measure(RUNS, || g::timeout_arm_cancel(simple))),
            fig(measure(RUNS, || t::run(&rt, t::timeout_ready(simple)))),
            Cell::Na("may has no timeout guard".into()),
        ],
    );
    row(
        "uncontended lock+unlock",
        vec![
            fig(measure(RUNS, || g::lock(simple))),
            fig(measure(RUNS, || t::run(&rt, t::lock(simple)))),
            fig(measure(RUNS, || m::run(move || m::lock(simple)))),
        ],
    );

    let mut notes = vec![
        format!(
            "ns per operation; median (min–max) of {RUNS} runs after a warm-up run. \
             A hand-off is one task waking the other and switching to it \
             (a ping-pong round trip is two). Ratio = greenlet / peer: below 1.00× greenlet is faster."
        ),
        "greenlet: main thread's hub. park/wake = `park` + `Waker::wake`; event = \
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
            "may: `config().set_workers(1)`, measured inside a coroutine. park/wake = \
             `coroutine::park` + `Coroutine::unpark`; event = `sync::Semphore` post/wait; \
             channel = `sync::mpsc`; `coroutine::yield_now`; spawn + `JoinHandle::join` in batches \
             of {}k live (each may stack is two memory maps; 100k live exceed `vm.max_map_count`); \
             `sync::Mutex`.",
            MAY_SPAWN_BATCH / 1000
        ),
    ];
    notes.push(format!(
        "Before the suite it waited {:.1} s for idle CPUs (at most 10 s); load average then: {}.",
        waited.as_secs_f64(),
        crate::sys::loadavg()
    ));
    if let Some(e) = pin_err {
        notes.push(format!("not pinned: {e}"));
    } else {
        notes.push(
            "The measuring thread is pinned to CPU 0 (may pins its worker there too).".into(),
        );
    }
    Table {
        title: "micro: scheduler hot paths (one core)".into(),
        columns: vec!["greenlet", "tokio", "may"],
        rows,
        notes,
    }
}

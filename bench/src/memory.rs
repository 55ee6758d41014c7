//! The memory suite: resident memory per parked task.
//!
//! Each (implementation, count) runs in a child process of its own (the
//! hidden subcommand `mem-child <kind> <count>`), so RSS is isolated: the
//! child starts its runtime, reads its RSS, spawns `count` tasks that each
//! park until woken, waits until every one has parked, reads RSS again and
//! exits without tearing anything down. What a harness would add (the
//! slots where greenlet wakers are kept) is allocated and touched before
//! the first reading; join handles are not kept.

use std::cell::{Cell as StdCell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sys;
use crate::table::{Better, Cell, Figure, Row, Table};

/// Implementations measured, in column order.
const KINDS: [&str; 4] = ["greenlet", "tokio", "may", "threads"];
/// Task counts; OS threads only up to [`THREADS_MAX`].
const COUNTS: [usize; 3] = [10_000, 100_000, 1_000_000];
const THREADS_MAX: usize = 10_000;
/// Child processes per figure.
const REPS: usize = 3;
/// A child that has not answered after this long is killed.
const CHILD_LIMIT: Duration = Duration::from_secs(120);

/// Runs the memory suite and returns its table.
pub fn run(quick: bool) -> Table {
    let counts: Vec<usize> = if quick { vec![10_000] } else { COUNTS.to_vec() };
    let reps = if quick { 1 } else { REPS };
    let mut rows = Vec::new();
    // A kind that failed at a count is not tried at larger counts.
    let mut failed: [Option<String>; 4] = Default::default();
    for &count in &counts {
        let mut cells = Vec::new();
        for (i, kind) in KINDS.iter().enumerate() {
            eprintln!("  memory: {kind} x {count}");
            let cell = if *kind == "threads" && count > THREADS_MAX {
                Cell::Na(format!("threads measured to {}k only", THREADS_MAX / 1000))
            } else if let Some(why) = &failed[i] {
                Cell::Na(why.clone())
            } else {
                let mut samples = Vec::new();
                let mut err = None;
                for _ in 0..reps {
                    match measure_child(kind, count) {
                        Ok(kib) => samples.push(kib),
                        Err(e) => {
                            err = Some(e);
                            break;
                        }
                    }
                }
                match (err, Figure::of(&samples)) {
                    (None, Some(f)) => Cell::Fig(f),
                    (e, _) => {
                        let why = format!(
                            "failed at {}: {}",
                            human(count),
                            e.unwrap_or_else(|| "no sample".into())
                        );
                        failed[i] = Some(format!("failed at a smaller count ({})", human(count)));
                        Cell::Na(why)
                    }
                }
            };
            cells.push(cell);
        }
        rows.push(Row {
            label: format!("RSS per parked task, {}", human(count)),
            unit: "KiB",
            better: Better::Lower,
            cells,
        });
    }
    Table {
        title: "memory: RSS per parked task".into(),
        columns: KINDS.to_vec(),
        rows,
        notes: vec![
            format!(
                "KiB of resident memory per parked task: (RSS with all tasks parked − RSS after \
                 runtime start) / count, each in a fresh child process; median (min–max) of {reps} \
                 processes. Ratio = greenlet / peer: below 1.00× greenlet uses less."
            ),
            format!(
                "greenlet: `spawn_raw` + `park` (waker stored in a pre-touched slot), default \
                 stack {} KiB. tokio: `spawn_local` tasks awaiting a shared `Notify` on a \
                 current_thread runtime. may: one worker, default stack ({} KiB), \
                 `coroutine::park`. threads: `std::thread::spawn` (default 2 MiB stack, \
                 mostly untouched) + `thread::park`.",
                greenlet::hub::default_stack_size() / 1024,
                may::config().get_stack_size() * std::mem::size_of::<usize>() / 1024
            ),
        ],
    }
}

fn human(n: usize) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n % 1000 == 0 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// Runs one child and returns KiB per task, or why it failed.
fn measure_child(kind: &str, count: usize) -> Result<f64, String> {
    let err_path = std::env::temp_dir().join(format!(
        "greenlet-bench-mem-{}-{kind}-{count}.stderr",
        std::process::id()
    ));
    let err_file = std::fs::File::create(&err_path).map_err(|e| e.to_string())?;
    let mut cmd =
        sys::self_command(&["mem-child", kind, &count.to_string()]).map_err(|e| e.to_string())?;
    cmd.stderr(err_file);
    // A backtrace printed after the process ran out of memory maps needs
    // memory itself and can hang the child (seen with may at 100k).
    cmd.env("RUST_BACKTRACE", "0");
    let mut child = sys::spawn_guarded(cmd, true).map_err(|e| e.to_string())?;
    let line = child.read_line(CHILD_LIMIT);
    let status = child.wait_for(Duration::from_secs(5));
    drop(child);
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&err_path);
    let last_err = || {
        stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .chars()
            .take(120)
            .collect::<String>()
    };
    match line {
        Ok(l) => {
            let v: Vec<&str> = l.split_whitespace().collect();
            match v.as_slice() {
                ["rss", before, after] => {
                    let b: f64 = before.parse().map_err(|_| format!("bad answer {l:?}"))?;
                    let a: f64 = after.parse().map_err(|_| format!("bad answer {l:?}"))?;
                    Ok((a - b) / count as f64 / 1024.0)
                }
                _ => Err(l.strip_prefix("fail ").unwrap_or(&l).to_string()),
            }
        }
        Err(e) => {
            let st = match status {
                Some(s) => format!("{s}"),
                None => "killed after the time limit".into(),
            };
            Err(format!("{e}, {st}: {}", last_err()))
        }
    }
}

/// The hidden `mem-child <kind> <count>` subcommand: parks `count` tasks of
/// `kind`, prints `rss <before> <after>` (bytes) and exits. Returns the
/// process exit code on a usage error.
pub fn child(kind: &str, count: usize) -> i32 {
    if count == 0 {
        eprintln!("mem-child: count must be > 0");
        return 2;
    }
    let r = match kind {
        "greenlet" => greenlet_child(count),
        "tokio" => tokio_child(count),
        "may" => may_child(count),
        "threads" => threads_child(count),
        _ => {
            eprintln!("mem-child: unknown kind {kind:?}");
            return 2;
        }
    };
    match r {
        Ok((before, after)) => {
            println!("rss {before} {after}");
            // Exit without tearing down a million tasks.
            std::process::exit(0)
        }
        Err(e) => {
            println!("fail {e}");
            3
        }
    }
}

fn greenlet_child(count: usize) -> Result<(usize, usize), String> {
    use greenlet::{park, spawn_raw, yield_now, Waker};
    let slots: Rc<RefCell<Vec<Option<Waker>>>> = Rc::new(RefCell::new(vec![None; count]));
    let parked = Rc::new(StdCell::new(0usize));
    yield_now(); // start the hub
    let before = sys::rss_bytes();
    for i in 0..count {
        let (slots, parked) = (slots.clone(), parked.clone());
        spawn_raw(move || {
            parked.set(parked.get() + 1);
            let _ = park(&"the wake-up", |w| slots.borrow_mut()[i] = Some(w));
        });
    }
    while parked.get() < count {
        yield_now();
    }
    Ok((before, sys::rss_bytes()))
}

fn tokio_child(count: usize) -> Result<(usize, usize), String> {
    use tokio::sync::Notify;
    use tokio::task::{spawn_local, yield_now, LocalSet};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let local = LocalSet::new();
    local.block_on(&rt, async move {
        spawn_local(async {}).await.ok(); // start the LocalSet
        let notify = Rc::new(Notify::new());
        let parked = Rc::new(StdCell::new(0usize));
        let before = sys::rss_bytes();
        for _ in 0..count {
            let (notify, parked) = (notify.clone(), parked.clone());
            spawn_local(async move {
                parked.set(parked.get() + 1);
                notify.notified().await;
            });
        }
        while parked.get() < count {
            yield_now().await;
        }
        Ok((before, sys::rss_bytes()))
    })
}

fn may_child(count: usize) -> Result<(usize, usize), String> {
    use may::coroutine;
    crate::micro::configure_may();
    // Start the scheduler (its threads) before the first reading.
    // SAFETY: the coroutine touches no thread-locals and is shallow.
    unsafe { coroutine::spawn(|| {}) }
        .join()
        .map_err(|_| "may: first coroutine panicked")?;
    let parked = Arc::new(AtomicUsize::new(0));
    let before = sys::rss_bytes();
    for i in 0..count {
        let p = parked.clone();
        // may panics (rather than erring) when it cannot map a stack.
        let h = std::panic::catch_unwind(move || {
            // SAFETY: as above: no thread-locals, a shallow closure.
            unsafe {
                coroutine::Builder::new().spawn(move || {
                    p.fetch_add(1, Ordering::Relaxed);
                    // Parked until the process exits (nothing unparks it).
                    while p.load(Ordering::Relaxed) != usize::MAX {
                        coroutine::park();
                    }
                })
            }
            .map(drop)
        });
        match h {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("spawn {i} failed: {e}")),
            Err(p) => {
                let maps = std::fs::read_to_string("/proc/sys/vm/max_map_count")
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|_| "?".into());
                let msg: String = greenlet::panic_message(&*p).chars().take(60).collect();
                return Err(format!(
                    "coroutine {} (vm.max_map_count {maps}): {msg}…",
                    i + 1
                ));
            }
        }
    }
    wait_count(&parked, count)?;
    Ok((before, sys::rss_bytes()))
}

fn threads_child(count: usize) -> Result<(usize, usize), String> {
    let parked = Arc::new(AtomicUsize::new(0));
    let before = sys::rss_bytes();
    for i in 0..count {
        let parked = parked.clone();
        std::thread::Builder::new()
            .spawn(move || {
                parked.fetch_add(1, Ordering::Relaxed);
                loop {
                    std::thread::park();
                }
            })
            .map_err(|e| format!("thread {i}: {e}"))?;
    }
    wait_count(&parked, count)?;
    Ok((before, sys::rss_bytes()))
}

/// Waits (sleeping) until `n` tasks have reported, up to a minute.
fn wait_count(c: &AtomicUsize, n: usize) -> Result<(), String> {
    let t0 = Instant::now();
    while c.load(Ordering::Relaxed) < n {
        if t0.elapsed() > Duration::from_secs(60) {
            return Err(format!(
                "only {} of {n} parked after 60 s",
                c.load(Ordering::Relaxed)
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Let the last ones finish parking (they counted just before).
    std::thread::sleep(Duration::from_millis(50));
    Ok(())
}

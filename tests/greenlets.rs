//! Greenlets: lazy spawn, start order, interleaving, results of finished
//! greenlets (value, panic), names, `run_info`, stack sizes, `joinall`.
//!
//! Every `#[test]` runs on its own thread, so it has its own hub.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use greenlet::{
    getcurrent, joinall, panic_message, park, run_info, sleep, spawn, spawn_later, yield_now,
    Builder, GreenletError, GreenletState, Waker,
};

type Log<T> = Rc<RefCell<Vec<T>>>;

fn log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

#[test]
fn spawn_is_lazy_until_the_spawner_yields() {
    let log: Log<&str> = log();
    let l = log.clone();
    let g = spawn(move || l.borrow_mut().push("child"));
    // Spawning never switches: the child has not run, however long we
    // keep going without blocking.
    let busy: u64 = (0..100_000u64).map(std::hint::black_box).sum();
    assert!(busy > 0);
    assert!(log.borrow().is_empty());
    assert_eq!(g.state(), GreenletState::NotStarted);
    assert!(!g.dead());

    log.borrow_mut().push("spawner");
    yield_now();
    assert_eq!(*log.borrow(), ["spawner", "child"]);
    assert!(g.dead());
    assert_eq!(g.state(), GreenletState::Dead);
}

#[test]
fn spawned_greenlets_start_in_fifo_order_before_spawn_later_zero() {
    let log: Log<&str> = log();
    let (l0, l1, l2, l3) = (log.clone(), log.clone(), log.clone(), log.clone());
    // Armed first, but a zero-delay timer still starts after the greenlets
    // already in the ready queue.
    let later = spawn_later(Duration::ZERO, move || l0.borrow_mut().push("later"));
    let a = spawn(move || l1.borrow_mut().push("a"));
    let b = spawn(move || l2.borrow_mut().push("b"));
    let c = spawn(move || l3.borrow_mut().push("c"));
    assert_eq!(later.state(), GreenletState::NotStarted);
    assert!(log.borrow().is_empty());
    joinall(&[later.as_ref(), a.as_ref(), b.as_ref(), c.as_ref()], None).unwrap();
    assert_eq!(*log.borrow(), ["a", "b", "c", "later"]);
}

#[test]
fn yielding_greenlets_interleave() {
    let log: Log<String> = log();
    let worker = |n: u32| {
        let log = log.clone();
        spawn(move || {
            for step in ["A", "B"] {
                log.borrow_mut().push(format!("{n}{step}"));
                yield_now();
            }
        })
    };
    let g1 = worker(1);
    let g2 = worker(2);
    g1.join().unwrap();
    g2.join().unwrap();
    assert_eq!(*log.borrow(), ["1A", "2A", "1B", "2B"]);
}

#[test]
fn get_returns_the_value_and_try_get_never_waits() {
    let started = Rc::new(Cell::new(false));
    let s = started.clone();
    let g = spawn(move || {
        s.set(true);
        sleep(Duration::from_millis(5)).unwrap();
        42u32
    });
    // Not started: try_get reports NotReady without running anything.
    assert!(matches!(g.try_get(), Err(GreenletError::NotReady)));
    assert!(!started.get());
    assert_eq!(g.state(), GreenletState::NotStarted);

    // Started and parked in its sleep: still NotReady, still no wait.
    yield_now();
    assert!(started.get());
    assert_eq!(g.state(), GreenletState::Parked);
    assert!(matches!(g.try_get(), Err(GreenletError::NotReady)));
    assert_eq!(g.state(), GreenletState::Parked);

    assert_eq!(g.get().unwrap(), 42);
}

#[test]
fn try_get_takes_the_value_once() {
    let g = spawn(|| String::from("v"));
    g.join().unwrap();
    assert!(g.ready() && g.successful() && !g.panicked() && !g.killed());
    assert_eq!(g.try_get().unwrap(), "v");
    assert!(matches!(g.try_get(), Err(GreenletError::Taken)));
}

#[test]
fn a_panicking_greenlet_does_not_stop_the_hub_or_its_siblings() {
    let log: Log<&str> = log();
    let (l1, l2) = (log.clone(), log.clone());
    let bad = spawn(move || -> u32 {
        l1.borrow_mut().push("bad starts");
        yield_now();
        panic!("boom from the bad greenlet");
    });
    let good = spawn(move || {
        l2.borrow_mut().push("good 1");
        yield_now();
        yield_now();
        l2.borrow_mut().push("good 2");
        7
    });
    // join never reports the greenlet's own failure.
    assert_eq!(bad.join(), Ok(()));
    assert!(bad.dead());
    assert!(!bad.successful());
    assert!(bad.panicked());
    assert!(!bad.killed());
    assert_eq!(
        bad.panic_message().as_deref(),
        Some("boom from the bad greenlet")
    );

    assert_eq!(good.get().unwrap(), 7);
    assert_eq!(*log.borrow(), ["bad starts", "good 1", "good 2"]);

    // get does report it, with the payload.
    match bad.get() {
        Err(GreenletError::Panicked(p)) => {
            assert_eq!(panic_message(&*p), "boom from the bad greenlet")
        }
        other => panic!("expected Panicked, got {other:?}"),
    }

    // The hub still works.
    let after = spawn(|| "still running");
    assert_eq!(after.get().unwrap(), "still running");
}

#[test]
fn the_error_of_a_panicked_greenlet_shows_the_message() {
    let n = 3;
    let formatted = spawn(move || -> () { panic!("failed with {n} errors") });
    let literal = spawn(|| -> () { panic!("a literal message") });
    for (g, text) in [
        (formatted, "failed with 3 errors"),
        (literal, "a literal message"),
    ] {
        let err = g.get().unwrap_err();
        assert!(err.to_string().contains(text), "Display: {err}");
        assert!(format!("{err:?}").contains(text), "Debug: {err:?}");
    }
}

#[test]
fn getcurrent_names_the_running_greenlet() {
    let main = getcurrent();
    assert_eq!(main.id(), 0);
    assert_eq!(main.name(), "main");
    assert_eq!(main.state(), GreenletState::Running);

    let seen = log();
    let s = seen.clone();
    let g = spawn(move || {
        let me = getcurrent();
        s.borrow_mut()
            .push((me.id(), me.name().into_owned(), me.state()));
    });
    let id = g.id();
    g.join().unwrap();
    assert_ne!(id, 0);
    assert_eq!(
        *seen.borrow(),
        [(id, format!("Greenlet-{id}"), GreenletState::Running)]
    );
    // Back in main.
    assert_eq!(getcurrent(), main);
}

#[test]
fn names_default_and_builder() {
    let a = spawn(|| ());
    assert_eq!(a.name(), format!("Greenlet-{}", a.id()));
    let b = Builder::new().name("worker-x").spawn(|| ()).unwrap();
    assert_eq!(b.name(), "worker-x");
    assert_ne!(a.id(), b.id());
    joinall(&[a.as_ref(), b.as_ref()], None).unwrap();
    // Names outlive the greenlet.
    assert_eq!(b.name(), "worker-x");
}

#[test]
fn run_info_lists_live_greenlets_with_state_and_location() {
    let wake: Rc<RefCell<Option<Waker>>> = Rc::default();
    let w = wake.clone();
    let parked = Builder::new()
        .name("parked-one")
        .spawn(move || park(&"a test signal", |waker| *w.borrow_mut() = Some(waker)))
        .unwrap();
    let stop = Rc::new(Cell::new(false));
    let s = stop.clone();
    let yielder = spawn(move || {
        while !s.get() {
            yield_now();
        }
    });
    // Let both start: `parked` parks, `yielder` yields and is queued again.
    yield_now();
    let fresh = spawn(|| ());

    let info = run_info();
    let find = |id: u64| {
        info.iter()
            .find(|i| i.id == id)
            .unwrap_or_else(|| panic!("greenlet {id} missing from run_info: {info:#?}"))
    };
    assert_eq!(info.len(), 3, "{info:#?}");
    let p = find(parked.id());
    assert_eq!(p.name, "parked-one");
    assert_eq!(p.state, GreenletState::Parked);
    let y = find(yielder.id());
    assert_eq!(y.name, format!("Greenlet-{}", yielder.id()));
    assert_eq!(y.state, GreenletState::Ready);
    let f = find(fresh.id());
    assert_eq!(f.state, GreenletState::NotStarted);
    for i in &info {
        assert!(
            i.spawned_at.file().ends_with("greenlets.rs"),
            "spawn location should be this test file: {i}"
        );
        assert!(i.to_string().contains(&i.name));
    }
    // The location is the spawn call, not somewhere inside the library.
    assert_eq!(y.spawned_at.line(), yielder.spawned_at().line());

    // Finish them all: dead greenlets are no longer listed.
    stop.set(true);
    wake.borrow_mut()
        .take()
        .expect("parked greenlet registered")
        .wake();
    joinall(&[parked.as_ref(), yielder.as_ref(), fresh.as_ref()], None).unwrap();
    assert_eq!(parked.get().unwrap(), Ok(()));
    assert!(run_info().is_empty(), "{:#?}", run_info());
    assert_eq!(greenlet::hub::stats().greenlets, 0);
}

#[test]
fn too_small_stack_is_an_error_not_a_panic() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let err = Builder::new()
        .stack_size(1024)
        .spawn(move || r.set(true))
        .expect_err("a 1 KiB stack must be refused");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("1024"), "{err}");
    // Nothing was spawned.
    yield_now();
    assert!(!ran.get());
    assert!(run_info().is_empty());
}

/// Recurses with 8 KiB frames until at least `target` bytes of stack below
/// `top` are in use; returns the bytes used.
#[inline(never)]
fn use_stack(top: usize, target: usize) -> usize {
    let mut buf = [0u8; 8 * 1024];
    std::hint::black_box(&mut buf);
    let here = buf.as_ptr() as usize;
    let used = top.saturating_sub(here);
    let r = if used >= target {
        used
    } else {
        use_stack(top, target)
    };
    // Use the frame after the call so it is no tail call.
    std::hint::black_box(&buf);
    r
}

#[test]
fn a_large_stack_can_be_used() {
    const TARGET: usize = 150 * 1024;
    let g = Builder::new()
        .stack_size(256 * 1024)
        .spawn(|| {
            let top = 0u8;
            let top = std::hint::black_box(&top) as *const u8 as usize;
            use_stack(top, TARGET)
        })
        .unwrap();
    let used = g.get().unwrap();
    assert!(used >= TARGET, "used only {used} bytes");
    assert!(used < 256 * 1024);
}

#[test]
fn joinall_returns_the_finished_greenlets() {
    let fast = spawn(|| sleep(Duration::from_millis(1)).unwrap());
    let forever = spawn(|| park(&"nothing", |_w| {}));
    let also_fast = spawn(|| ());
    let all = [fast.as_ref(), forever.as_ref(), also_fast.as_ref()];

    // `forever` never ends, so this always waits the whole timeout: long
    // enough for a 1 ms sleep to end even under valgrind (30 ms was not).
    let done = joinall(&all, Some(Duration::from_secs(1))).unwrap();
    assert_eq!(done, [fast.as_ref(), also_fast.as_ref()]);
    assert!(!forever.dead());

    forever.kill().unwrap();
    let done = joinall(&all, None).unwrap();
    assert_eq!(done.len(), 3);
    assert_eq!(greenlet::hub::stats().timers, 0);
}

#[test]
fn blocking_greenlets_keep_the_hubs_fifo_order_with_the_main_greenlet_among_them() {
    // A spawned greenlet that blocks runs the ready ones from its own stack;
    // the order must be exactly the hub's round-robin, main included.
    let log = Rc::new(RefCell::new(Vec::new()));
    let worker = |name: &'static str, steps: usize| {
        let log = log.clone();
        spawn(move || {
            for i in 0..steps {
                log.borrow_mut().push(format!("{name}{i}"));
                yield_now();
            }
        })
    };
    let g1 = worker("a", 3);
    let g2 = worker("b", 2);
    let g3 = worker("c", 3);
    for i in 0..2 {
        log.borrow_mut().push(format!("m{i}"));
        yield_now();
    }
    for g in [g1, g2, g3] {
        g.join().unwrap();
    }
    assert_eq!(
        *log.borrow(),
        ["m0", "a0", "b0", "c0", "m1", "a1", "b1", "c1", "a2", "c2"]
    );
}

mod spawner_callbacks_idle {
    use greenlet::{
        add_spawn_callback, getcurrent, idle, remove_spawn_callback, sleep, spawn, spawn_raw,
        yield_now, Builder, GreenletRef, Timeout,
    };
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::time::Duration;

    #[test]
    fn spawning_greenlet_is_the_spawner_while_it_lives() {
        let me = getcurrent();
        assert_eq!(me.spawning_greenlet(), None, "the main greenlet has none");
        let child = spawn(|| {
            let inner = spawn(|| getcurrent().spawning_greenlet());
            let seen = inner.get().unwrap();
            (seen, getcurrent(), spawn(|| ()).as_ref())
        });
        assert_eq!(child.spawning_greenlet(), Some(me));
        let child_ref = child.as_ref();
        let (seen, child_self, orphan) = child.get().unwrap();
        assert_eq!(seen, Some(child_self.clone()));
        assert_eq!(child_self, child_ref);
        // Its spawner is dead: weakly held, so None (even though a handle
        // to the dead spawner still exists here).
        assert_eq!(orphan.spawning_greenlet(), None);
        // The live-table key of the dead spawner is reused by a new
        // greenlet; the id check keeps it from being reported.
        let reuse = spawn(|| ());
        assert_ne!(orphan.spawning_greenlet(), Some(reuse.as_ref()));
        reuse.join().unwrap();
    }

    #[test]
    fn spawn_callbacks_see_every_handle_spawn_in_order_until_removed() {
        let log: Rc<RefCell<Vec<String>>> = Rc::default();
        let (a, b) = (log.clone(), log.clone());
        let first = add_spawn_callback(move |g: &GreenletRef| {
            assert!(!g.dead(), "called before the greenlet ran");
            a.borrow_mut().push(format!("1:{}", g.name()));
        });
        let second = add_spawn_callback(move |g: &GreenletRef| {
            b.borrow_mut().push(format!("2:{}", g.name()));
            // Greenlets spawned by a callback do not run the callbacks.
            spawn(|| ());
        });
        let g = Builder::new().name("w").spawn(|| ()).unwrap();
        spawn_raw(|| ()); // no handle: no callbacks
        g.join().unwrap();
        assert_eq!(*log.borrow(), ["1:w", "2:w"]);
        assert!(remove_spawn_callback(first));
        assert!(!remove_spawn_callback(first));
        let pool = greenlet::pool::Pool::new(1);
        pool.spawn(|| ()).unwrap().join().unwrap();
        assert_eq!(log.borrow().len(), 3, "Pool::spawn runs them too");
        assert!(remove_spawn_callback(second));
        spawn(|| ()).join().unwrap();
        assert_eq!(log.borrow().len(), 3);
    }

    #[test]
    fn idle_waits_until_no_other_greenlet_is_ready() {
        let steps = Rc::new(Cell::new(0));
        let s = steps.clone();
        let busy = spawn(move || {
            for _ in 0..500 {
                s.set(s.get() + 1);
                yield_now();
            }
        });
        idle().unwrap();
        assert!(busy.dead() && steps.get() == 500);
        // A sleeping greenlet is not "something to run": idle returns
        // before it wakes.
        let sleeper = spawn(|| sleep(Duration::from_secs(30)));
        yield_now();
        idle().unwrap();
        assert!(!sleeper.dead());
        sleeper.kill().unwrap();
    }

    #[test]
    fn idle_is_interruptible_and_leaves_no_waiter_behind() {
        let busy = spawn(|| loop {
            yield_now();
        });
        let t = Timeout::start_new(Duration::from_millis(5));
        let err = idle().unwrap_err();
        assert!(t.is(&err));
        busy.kill().unwrap();
        idle().unwrap();
    }
}

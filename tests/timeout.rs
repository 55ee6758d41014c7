//! Timeout semantics (greenlet-timeout), each rule with its own test.
use greenlet::hub::stats;
use greenlet::timeout::{AlreadyStarted, Elapsed};
use greenlet::{
    getcurrent, park, sleep, spawn, with_timeout, with_timeout_or, yield_now, GreenletError,
    Interrupted, Timeout,
};
use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

const MS: Duration = Duration::from_millis(1);

#[test]
fn none_never_fires_and_is_never_pending() {
    let t = Timeout::new(None);
    t.start().unwrap();
    assert!(!t.pending());
    assert_eq!(stats().timers, 0, "a None timeout arms no timer");
    sleep(20 * MS).unwrap();
    assert!(!t.pending());
    let t2 = Timeout::start_new(None);
    assert!(!t2.pending());
    assert_eq!(t2.to_string(), "never");
}

#[test]
fn shorter_timeout_interrupts_sleep_with_its_id() {
    let t0 = Instant::now();
    let t = Timeout::start_new(10 * MS);
    assert!(t.pending());
    let err = sleep(Duration::from_secs(10)).unwrap_err();
    assert_eq!(err, Interrupted::Timeout(t.id()));
    assert!(t.is(&err));
    assert!(!t.pending());
    let waited = t0.elapsed();
    assert!(waited >= 10 * MS, "fired early: {waited:?}");
    assert!(waited < Duration::from_secs(2), "fired late: {waited:?}");
}

#[test]
fn delivered_once_then_next_wait_proceeds() {
    let t = Timeout::start_new(5 * MS);
    assert!(sleep(Duration::from_secs(5)).is_err());
    // Raised once: the same greenlet's next wait is normal.
    sleep(10 * MS).unwrap();
    sleep(Duration::ZERO).unwrap();
    drop(t);
}

#[test]
fn cpu_bound_code_is_not_interrupted_and_next_wait_fails_at_once() {
    let t = Timeout::start_new(5 * MS);
    // Busy work past the deadline with no blocking point; a greenlet sleeping
    // meanwhile is needed for the loop to turn only when we block.
    let spin_until = Instant::now() + 30 * MS;
    while Instant::now() < spin_until {
        std::hint::spin_loop();
    }
    // The timer has not been processed yet (no loop turn happened): still
    // pending by the queue, but the next wait delivers it without sleeping.
    let t0 = Instant::now();
    let err = sleep(Duration::from_secs(5)).unwrap_err();
    assert!(t.is(&err));
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "the wait must end at once"
    );
}

#[test]
fn expired_while_ready_is_delivered_at_next_wait_without_suspending() {
    // The timer fires while this greenlet is in the ready queue (yield_now),
    // which does not report timeouts; the next wait reports it at once.
    let t = Timeout::start_new(MS);
    let t0 = Instant::now();
    while t.pending() {
        yield_now();
        assert!(t0.elapsed() < Duration::from_secs(2));
    }
    let err = sleep(Duration::from_secs(5)).unwrap_err();
    assert!(t.is(&err));
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[test]
fn nested_outer_fires_first() {
    let outer = Timeout::start_new(10 * MS);
    let inner = Timeout::start_new(Duration::from_secs(5));
    let err = sleep(Duration::from_secs(10)).unwrap_err();
    assert!(outer.is(&err));
    assert!(!inner.is(&err));
    assert!(
        inner.pending(),
        "the inner timeout is still pending until dropped"
    );
    assert!(!outer.pending());
    drop(inner);
    assert_eq!(stats().timers, 0);
}

#[test]
fn nested_inner_fires_first() {
    let outer = Timeout::start_new(Duration::from_secs(5));
    let inner = Timeout::start_new(10 * MS);
    let err = sleep(Duration::from_secs(10)).unwrap_err();
    assert!(inner.is(&err));
    assert!(!outer.is(&err));
    assert!(outer.pending());
    drop(inner);
    drop(outer);
    assert_eq!(stats().timers, 0);
}

#[test]
fn both_fire_in_one_turn_each_is_delivered_once_in_order() {
    let a = Timeout::start_new(5 * MS);
    let b = Timeout::start_new(5 * MS);
    // Spin past both deadlines, so both fire in the same loop turn.
    let until = Instant::now() + 20 * MS;
    while Instant::now() < until {}
    let e1 = sleep(Duration::from_secs(5)).unwrap_err();
    let e2 = sleep(Duration::from_secs(5)).unwrap_err();
    assert!(a.is(&e1), "the earlier-armed timeout first");
    assert!(b.is(&e2));
    sleep(MS).unwrap();
}

#[test]
fn dropping_a_fired_undelivered_timeout_discards_its_error() {
    let t = Timeout::start_new(MS);
    while t.pending() {
        yield_now();
    }
    drop(t);
    sleep(5 * MS).expect("a dropped timeout never surfaces later");
}

#[test]
fn with_timeout_elapsed_exactly_when_its_timeout_interrupted() {
    let r = with_timeout(10 * MS, || sleep(Duration::from_secs(5)));
    let e: Elapsed = r.unwrap_err();
    assert_eq!(e.duration(), 10 * MS);
    assert_eq!(e.to_string(), "timed out after 0.01 seconds");
    // Finished in time: the value.
    assert_eq!(with_timeout(Duration::from_secs(5), || 5).unwrap(), 5);
    assert_eq!(
        with_timeout(Duration::from_secs(5), || sleep(MS).map(|()| 6)).unwrap(),
        Ok(6)
    );
    // Expired during CPU work but no wait was interrupted: not Elapsed.
    let r = with_timeout(MS, || {
        let until = Instant::now() + 10 * MS;
        while Instant::now() < until {}
        "done"
    });
    assert_eq!(r.unwrap(), "done");
    sleep(MS).expect("the undelivered timeout was discarded");
}

#[test]
fn inner_with_timeout_or_does_not_swallow_outer_timeout() {
    let outer = with_timeout(10 * MS, || {
        with_timeout_or(Duration::from_secs(5), Ok(()), || {
            sleep(Duration::from_secs(5))
        })
    });
    let e = outer.unwrap_err();
    assert_eq!(e.duration(), 10 * MS);

    // And the inner's own expiry gives the inner's value.
    let v = with_timeout(Duration::from_secs(5), || {
        with_timeout_or(10 * MS, "inner gave up", || {
            sleep(Duration::from_secs(5))
                .map(|()| "slept")
                .unwrap_or("err")
        })
    });
    assert_eq!(v.unwrap(), "inner gave up");
}

#[test]
fn timeout_belongs_to_the_greenlet_that_started_it_and_measures_from_start() {
    let t = Rc::new(Timeout::new(30 * MS));
    let created_at = Instant::now();
    // Created here, started by the child after 40 ms: the main greenlet is
    // never interrupted, and the child's deadline counts from its start().
    let t2 = t.clone();
    let child = spawn(move || {
        sleep(40 * MS).unwrap();
        let started = Instant::now();
        t2.start().unwrap();
        let err = sleep(Duration::from_secs(5)).unwrap_err();
        assert!(t2.is(&err));
        started.elapsed()
    });
    sleep(60 * MS).expect("main is not the timeout's greenlet");
    let waited = child.get().unwrap();
    assert!(waited >= 30 * MS, "measured from start(): {waited:?}");
    assert!(created_at.elapsed() >= 70 * MS);
}

#[test]
fn start_on_pending_timeout_is_an_error_and_it_keeps_running() {
    let t = Timeout::new(20 * MS);
    t.start().unwrap();
    assert_eq!(t.start(), Err(AlreadyStarted(t.id())));
    assert!(t
        .start()
        .unwrap_err()
        .to_string()
        .contains("already started"));
    assert!(t.pending());
    assert!(t.is(&sleep(Duration::from_secs(5)).unwrap_err()));
    // Fired: it can be started again.
    t.start().unwrap();
    assert!(t.pending());
    t.cancel();
    assert!(!t.pending());
    t.start().unwrap();
    assert!(t.pending());
}

#[test]
fn interrupts_join_get_and_park() {
    let forever = spawn(|| park(&"nothing", |_| {}));
    let t = Timeout::start_new(10 * MS);
    assert!(t.is(&forever.join().unwrap_err()));
    drop(t);

    let t = Timeout::start_new(10 * MS);
    let slow = spawn(|| sleep(Duration::from_secs(5)));
    match slow.get() {
        Err(e @ GreenletError::Interrupted(_)) => assert!(t.is(&e)),
        other => panic!("expected an interrupted get, got {other:?}"),
    }
    drop(t);

    let t = Timeout::start_new(10 * MS);
    let e = park(&"a waker nobody wakes", |_w| {}).unwrap_err();
    assert!(t.is(&e));
    drop(t);
    forever.kill().unwrap();
}

#[test]
fn is_works_on_io_errors() {
    let t = Timeout::start_new(5 * MS);
    let e: io::Error = sleep(Duration::from_secs(5)).unwrap_err().into();
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert!(t.is(&e));
    let other = Timeout::new(MS);
    assert!(!other.is(&e));

    let r = with_timeout(5 * MS, || sleep(Duration::from_secs(5)));
    let elapsed = r.unwrap_err();
    let id = elapsed.id();
    let io_err: io::Error = elapsed.into();
    assert_eq!(io_err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(
        greenlet::timeout::IsTimeout::timeout_id(&io_err),
        Some(id),
        "the inner error is the Elapsed"
    );
}

#[test]
fn display_says_the_duration() {
    assert_eq!(
        Timeout::new(Duration::from_millis(500)).to_string(),
        "0.5 seconds"
    );
    assert_eq!(Timeout::new(Duration::from_secs(1)).to_string(), "1 second");
    assert_eq!(
        Timeout::new(Duration::from_secs(3)).to_string(),
        "3 seconds"
    );
}

#[test]
fn timeout_of_a_greenlet_killed_while_waiting_leaves_no_timer() {
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    let g = spawn(move || {
        let _t = Timeout::start_new(Duration::from_secs(60));
        let _ = sleep(Duration::from_secs(60));
        d.set(true);
    });
    sleep(Duration::ZERO).unwrap();
    assert_eq!(stats().timers, 2, "the guard's timer and the sleep's");
    g.kill().unwrap();
    assert!(!done.get());
    assert_eq!(stats().timers, 0);
}

#[test]
fn a_million_cancelled_timeouts_leave_nothing_behind() {
    let keep = Timeout::start_new(Duration::from_secs(60));
    for _ in 0..1_000_000 {
        let t = Timeout::start_new(Duration::from_secs(30));
        drop(t);
    }
    let s = stats();
    assert_eq!(s.timers, 1, "only the kept timeout is armed");
    assert!(
        s.timer_queue < 200,
        "dead entries are compacted: {}",
        s.timer_queue
    );
    drop(keep);
    let s = stats();
    assert_eq!((s.timers, s.timer_queue), (0, 0));
}

#[test]
fn eventlet_exc_after_is_a_started_timeout() {
    let t = greenlet::eventlet::exc_after(5 * MS);
    assert!(t.pending());
    assert!(t.is(&sleep(Duration::from_secs(5)).unwrap_err()));
}

#[test]
fn timeouts_in_many_greenlets_are_independent() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = (0..5u64)
        .map(|i| {
            let log = log.clone();
            spawn(move || {
                let t = Timeout::start_new(Duration::from_millis(10 * (5 - i)));
                let e = sleep(Duration::from_secs(5)).unwrap_err();
                assert!(t.is(&e));
                log.borrow_mut().push(getcurrent().id());
                i
            })
        })
        .collect();
    let ids: Vec<u64> = gs.iter().map(|g| g.id()).rev().collect();
    for g in gs {
        g.get().unwrap();
    }
    assert_eq!(*log.borrow(), ids, "shortest timeout first");
}

/// Every error that wraps an `Interrupted` answers `Timeout::is`, and so
/// does the `io::Error` made from it (through `Interrupted::from_io`).
#[test]
fn timeout_is_recognises_every_error_that_carries_it() {
    use greenlet::sync::{AsyncResult, PutError, Queue};
    use greenlet::threadpool::{self, ThreadError};

    // Something for the hub to wait on, so no wait is a LoopExit.
    let _keep = greenlet::spawn_later(Duration::from_secs(30), || ());
    let ms = Duration::from_millis(2);

    let never: AsyncResult<u8> = AsyncResult::new();
    let t = Timeout::start_new(ms);
    let e = never.get().unwrap_err();
    assert!(t.is(&e) && e.interrupted().is_some());
    let io_e = std::io::Error::from(e);
    assert!(t.is(&io_e));
    assert_eq!(io_e.kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(
        Interrupted::from_io(&io_e),
        Some(Interrupted::Timeout(t.id()))
    );

    let slow = greenlet::spawn(|| greenlet::sleep(Duration::from_secs(30)));
    let t = Timeout::start_new(ms);
    let e = slow.get().unwrap_err();
    assert!(t.is(&e) && matches!(e, GreenletError::Interrupted(_)));
    let io_e = std::io::Error::from(e);
    assert!(t.is(&io_e) && Interrupted::from_io(&io_e).is_some());

    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let job = threadpool::spawn(move || rx.recv_timeout(Duration::from_secs(30)).is_ok());
    let t = Timeout::start_new(ms);
    let e: ThreadError = job.wait().map_err(ThreadError::from).unwrap_err();
    assert!(t.is(&e) && e.interrupted().is_some());
    assert!(t.is(&std::io::Error::from(e)));
    tx.send(()).unwrap();
    assert!(job.get().unwrap());

    let full = Queue::bounded(0);
    let t = Timeout::start_new(ms);
    let e: PutError<u8> = full.put(7).unwrap_err();
    assert!(t.is(&e) && e.interrupted().is_some());
    let io_e = std::io::Error::from(e);
    assert!(t.is(&io_e) && Interrupted::from_io(&io_e).is_some());
    assert_eq!(
        std::io::Error::from(full.try_put(1).unwrap_err()).kind(),
        std::io::ErrorKind::WouldBlock
    );
}

/// A timeout that fires and a kill that comes before the greenlet runs
/// again, inside `defer_kill`: the wait ends `Killed`, and `with_timeout`
/// does not report `Elapsed` for it (the fired timeout was not delivered
/// to any wait; it was counted as delivered).
#[test]
fn a_kill_that_displaces_a_fired_timeout_is_not_reported_as_elapsed() {
    let seen: Rc<RefCell<Option<String>>> = Rc::default();
    let s = seen.clone();
    let g = spawn(move || {
        let r = with_timeout(20 * MS, || {
            greenlet_runtime::defer_kill(|| sleep(Duration::from_secs(5)))
        });
        *s.borrow_mut() = Some(format!("{r:?}"));
    });
    let target = g.as_ref();
    let killer = spawn(move || {
        sleep(10 * MS).unwrap();
        target.kill_nowait();
    });
    yield_now(); // both park
                 // Nothing runs until both the killer's sleep and `g`'s timeout are due:
                 // the killer then runs first (its timer is due first) and kills `g`,
                 // whose timeout has fired as well.
    let t0 = Instant::now();
    while t0.elapsed() < 60 * MS {
        std::hint::spin_loop();
    }
    killer.join().unwrap();
    g.join().unwrap();
    let seen = seen.borrow().clone().expect("with_timeout returned");
    assert!(!seen.contains("Elapsed"), "with_timeout said {seen}");
    assert!(seen.contains("Killed"), "the wait ended Killed: {seen}");
}

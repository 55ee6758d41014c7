//! Sync primitives: Event, AsyncResult, Queue, Channel, Semaphore,
//! BoundedSemaphore, Lock, RLock.
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::sync::{
    AsyncError, AsyncResult, BoundedSemaphore, Channel, Empty, Event, Lock, OverReleased, PutError,
    Queue, RLock, Semaphore,
};
use greenlet::{sleep, spawn, yield_now, Interrupted, Timeout};

const MS: Duration = Duration::from_millis(1);

type Log = Rc<RefCell<Vec<String>>>;

fn log() -> Log {
    Rc::default()
}

fn push(l: &Log, s: impl Into<String>) {
    l.borrow_mut().push(s.into());
}

#[test]
fn event_set_wakes_all_waiters_after_the_setter_yields_in_wait_order() {
    let ev = Event::new();
    let l = log();
    let gs: Vec<_> = (0..3)
        .map(|i| {
            let (ev, l) = (ev.clone(), l.clone());
            spawn(move || {
                ev.wait().unwrap();
                push(&l, format!("woke {i}"));
            })
        })
        .collect();
    yield_now(); // all three wait now
    assert_eq!(ev.waiters(), 3);
    ev.set();
    push(&l, "setter continues");
    assert_eq!(*l.borrow(), ["setter continues"], "set never switches");
    for g in gs {
        g.join().unwrap();
    }
    assert_eq!(
        *l.borrow(),
        ["setter continues", "woke 0", "woke 1", "woke 2"]
    );
    // Set: waits return at once until cleared.
    ev.wait().unwrap();
    assert!(ev.wait_timeout(MS).unwrap());
}

#[test]
fn event_wait_timeout_returns_false_on_timeout() {
    let ev = Event::new();
    let t0 = Instant::now();
    assert!(!ev.wait_timeout(20 * MS).unwrap());
    assert!(t0.elapsed() >= 20 * MS);
    assert_eq!(ev.waiters(), 0, "the timed-out waiter left the list");
    assert_eq!(greenlet::hub::stats().timers, 0);
}

#[test]
fn event_set_then_clear_before_the_waiter_runs_still_wakes_it_with_true() {
    let ev = Event::new();
    let e = ev.clone();
    let waiter = spawn(move || e.wait_timeout(Duration::from_secs(5)));
    yield_now();
    ev.set();
    ev.clear();
    assert!(waiter.get().unwrap().unwrap(), "woken by set: true");
    assert!(!ev.is_set());
}

#[test]
fn event_wait_is_interrupted_by_a_timeout_and_nobody_setting_is_loop_exit() {
    let ev = Event::new();
    let t = Timeout::start_new(10 * MS);
    assert!(t.is(&ev.wait().unwrap_err()));
    drop(t);
    assert!(matches!(ev.wait(), Err(Interrupted::LoopExit(_))));
}

#[test]
fn async_result_gives_every_getter_a_clone_or_the_error() {
    let r: AsyncResult<String> = AsyncResult::new();
    assert!(matches!(r.try_get(), Err(AsyncError::NotReady)));
    let getters: Vec<_> = (0..2)
        .map(|_| {
            let r = r.clone();
            spawn(move || r.get().unwrap())
        })
        .collect();
    yield_now();
    r.set("value".to_string());
    for g in getters {
        assert_eq!(g.get().unwrap(), "value");
    }
    assert_eq!(r.get_timeout(MS).unwrap().as_deref(), Some("value"));

    let bad: AsyncResult<u8> = AsyncResult::new();
    assert_eq!(bad.get_timeout(5 * MS).unwrap(), None);
    bad.set_error("it broke");
    match bad.get() {
        Err(AsyncError::Failed(e)) => assert_eq!(e.to_string(), "it broke"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn queue_get_timeout_on_empty_is_none_and_try_get_is_empty() {
    let q: Queue<u8> = Queue::unbounded();
    assert_eq!(q.try_get(), Err(Empty));
    let t0 = Instant::now();
    assert_eq!(q.get_timeout(20 * MS).unwrap(), None);
    assert!(t0.elapsed() >= 20 * MS);
    assert_eq!(q.getters(), 0);
}

#[test]
fn bounded_put_blocks_when_full_and_resumes_in_order() {
    let q = Queue::bounded(2);
    q.put(1).unwrap();
    q.put(2).unwrap();
    assert!(q.is_full());
    assert!(matches!(q.try_put(3), Err(PutError::Full(3))));
    let l = log();
    let (q2, l2) = (q.clone(), l.clone());
    let producer = spawn(move || {
        q2.put(3).unwrap();
        push(&l2, "put 3 done");
        q2.put(4).unwrap();
        push(&l2, "put 4 done");
    });
    yield_now();
    assert_eq!(q.putters(), 1, "the producer waits");
    assert!(l.borrow().is_empty());
    assert_eq!(q.get().unwrap(), 1);
    yield_now();
    assert_eq!(*l.borrow(), ["put 3 done"]);
    let rest: Vec<i32> = (0..3).map(|_| q.get().unwrap()).collect();
    assert_eq!(rest, [2, 3, 4]);
    producer.join().unwrap();
}

#[test]
fn put_timeout_gives_the_item_back() {
    let q = Queue::bounded(1);
    q.put("a").unwrap();
    match q.put_timeout("b", 10 * MS) {
        Err(PutError::Full(item)) => assert_eq!(item, "b"),
        other => panic!("{other:?}"),
    }
    let t = Timeout::start_new(5 * MS);
    match q.put("c") {
        Err(PutError::Interrupted(e, item)) => {
            assert!(t.is(&e));
            assert_eq!(item, "c");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(q.len(), 1);
    assert_eq!(q.putters(), 0);
}

#[test]
fn blocked_getters_are_served_fifo() {
    let q = Queue::unbounded();
    let l = log();
    let gs: Vec<_> = (0..3)
        .map(|i| {
            let (q, l) = (q.clone(), l.clone());
            spawn(move || {
                let v: i32 = q.get().unwrap();
                push(&l, format!("getter {i} got {v}"));
            })
        })
        .collect();
    yield_now();
    assert_eq!(q.getters(), 3);
    for v in [10, 20, 30] {
        q.put(v).unwrap();
    }
    // A late getter cannot overtake the waiting ones.
    assert_eq!(q.try_get(), Err(Empty));
    for g in gs {
        g.join().unwrap();
    }
    assert_eq!(
        *l.borrow(),
        ["getter 0 got 10", "getter 1 got 20", "getter 2 got 30"]
    );
}

#[test]
fn an_interrupted_getter_takes_nothing() {
    let q: Queue<u8> = Queue::unbounded();
    let t = Timeout::start_new(5 * MS);
    assert!(t.is(&q.get().unwrap_err()));
    drop(t);
    q.put(1).unwrap();
    assert_eq!(
        q.len(),
        1,
        "the item was queued, not handed to the gone getter"
    );
}

#[test]
fn channel_put_blocks_until_a_get() {
    let ch = Channel::new();
    let l = log();
    let (c, l2) = (ch.clone(), l.clone());
    let sender = spawn(move || {
        c.put(7).unwrap();
        push(&l2, "put returned");
    });
    sleep(10 * MS).unwrap();
    assert!(l.borrow().is_empty(), "put waits for a getter");
    assert_eq!(ch.get().unwrap(), 7);
    sender.join().unwrap();
    assert_eq!(*l.borrow(), ["put returned"]);
    match ch.put_timeout(8, 10 * MS) {
        Err(PutError::Full(8)) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(ch.try_put(9), Err(PutError::Full(9))));
    assert_eq!(ch.try_get(), Err(Empty));
}

#[test]
fn semaphore_acquisition_is_fifo() {
    let sem = Semaphore::new(1);
    sem.acquire().unwrap();
    let l = log();
    let gs: Vec<_> = (0..3)
        .map(|i| {
            let (s, l) = (sem.clone(), l.clone());
            spawn(move || {
                s.acquire().unwrap();
                push(&l, format!("{i}"));
                s.release();
            })
        })
        .collect();
    yield_now();
    assert_eq!(sem.waiters(), 3);
    sem.release();
    // A newcomer cannot overtake the waiters.
    assert!(!sem.try_acquire());
    for g in gs {
        g.join().unwrap();
    }
    assert_eq!(*l.borrow(), ["0", "1", "2"]);
    assert_eq!(sem.available(), 1);
}

#[test]
fn acquire_timeout_returns_false_rather_than_erroring() {
    let sem = Semaphore::new(0);
    let t0 = Instant::now();
    assert!(!sem.acquire_timeout(15 * MS).unwrap());
    assert!(t0.elapsed() >= 15 * MS);
    assert_eq!(sem.waiters(), 0);
    let s = sem.clone();
    spawn(move || s.release());
    assert!(sem.acquire_timeout(Duration::from_secs(5)).unwrap());
}

#[test]
fn bounded_semaphore_over_release_is_an_error() {
    let b = BoundedSemaphore::new(2);
    assert_eq!(b.release(), Err(OverReleased(2)));
    b.acquire().unwrap();
    b.release().unwrap();
    assert_eq!(b.release(), Err(OverReleased(2)));
    assert_eq!(b.available(), 2);
}

#[test]
fn a_killed_waiter_that_was_handed_a_permit_passes_it_on() {
    let sem = Semaphore::new(0);
    let s = sem.clone();
    let victim = spawn(move || s.acquire());
    yield_now();
    sem.release(); // handed to the victim, which has not run yet
    victim.kill().unwrap();
    assert_eq!(sem.available(), 1, "the permit was passed on, not lost");
}

#[test]
fn lock_excludes_and_unlocks_on_drop_even_on_kill() {
    let lock = Lock::new();
    let l = log();
    let (k, l2) = (lock.clone(), l.clone());
    let holder = spawn(move || {
        let _g = k.lock().unwrap();
        push(&l2, "holder in");
        sleep(Duration::from_secs(60)).unwrap();
    });
    yield_now();
    assert!(lock.locked());
    assert!(lock.try_lock().is_none());
    assert!(lock.lock_timeout(5 * MS).unwrap().is_none());
    holder.kill().unwrap();
    assert!(
        !lock.locked(),
        "the guard was dropped by the kill's unwinding"
    );
    let g = lock.lock().unwrap();
    drop(g);
    assert_eq!(*l.borrow(), ["holder in"]);
}

#[test]
fn lock_serialises_greenlets_across_blocking_calls() {
    let lock = Lock::new();
    let l = log();
    let gs: Vec<_> = (0..3)
        .map(|i| {
            let (k, l) = (lock.clone(), l.clone());
            spawn(move || {
                let _g = k.lock().unwrap();
                push(&l, format!("in {i}"));
                sleep(2 * MS).unwrap();
                push(&l, format!("out {i}"));
            })
        })
        .collect();
    for g in gs {
        g.join().unwrap();
    }
    assert_eq!(
        *l.borrow(),
        ["in 0", "out 0", "in 1", "out 1", "in 2", "out 2"]
    );
}

#[test]
fn rlock_is_reentrant_for_its_owner_only() {
    let r = RLock::new();
    let a = r.lock().unwrap();
    let b = r.lock().unwrap();
    let r2 = r.clone();
    let other = spawn(move || {
        let _g = r2.lock().unwrap();
        "got it"
    });
    yield_now();
    assert!(!other.dead(), "another greenlet waits");
    drop(b);
    yield_now();
    assert!(!other.dead(), "still held once");
    drop(a);
    assert_eq!(other.get().unwrap(), "got it");
    assert!(!r.locked());
}

mod guards_and_joinable {
    use greenlet::sync::{BoundedSemaphore, JoinableQueue, Semaphore, TaskDoneTooOften};
    use greenlet::{sleep, spawn, yield_now, Timeout};
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::time::Duration;

    #[test]
    fn a_semaphore_guard_releases_on_drop_error_and_kill() {
        let sem = Semaphore::new(1);
        fn fails(sem: &Semaphore) -> Result<(), Box<dyn std::error::Error>> {
            let _p = sem.acquire_guard()?;
            Err("half-way")?
        }
        assert!(fails(&sem).is_err());
        assert_eq!(sem.available(), 1);

        let held = sem.acquire_guard().unwrap();
        assert!(sem.try_acquire_guard().is_none());
        assert!(sem
            .acquire_guard_timeout(Duration::from_millis(2))
            .unwrap()
            .is_none());
        drop(held);
        assert_eq!(sem.available(), 1);

        // A greenlet killed while holding the permit gives it back.
        let s = sem.clone();
        let holder = spawn(move || {
            let _p = s.acquire_guard().unwrap();
            sleep(Duration::from_secs(30))
        });
        yield_now();
        assert_eq!(sem.available(), 0);
        holder.kill().unwrap();
        assert_eq!(sem.available(), 1);

        // forget keeps the permit taken.
        sem.acquire_guard().unwrap().forget();
        assert_eq!(sem.available(), 0);
        sem.release();
    }

    #[test]
    fn a_semaphore_guard_hands_its_permit_to_the_longest_waiter() {
        let sem = Semaphore::new(1);
        let order = Rc::new(RefCell::new(Vec::new()));
        let first = sem.acquire_guard().unwrap();
        let waiters: Vec<_> = (0..3)
            .map(|i| {
                let (s, o) = (sem.clone(), order.clone());
                spawn(move || {
                    let _p = s.acquire_guard().unwrap();
                    o.borrow_mut().push(i);
                    sleep(Duration::ZERO).unwrap();
                })
            })
            .collect();
        yield_now();
        assert_eq!(sem.waiters(), 3);
        drop(first);
        greenlet::joinall(&waiters, None).unwrap();
        assert_eq!(*order.borrow(), [0, 1, 2]);
        assert_eq!(sem.available(), 1);
    }

    #[test]
    fn a_bounded_semaphore_guard_never_over_releases() {
        let sem = BoundedSemaphore::new(2);
        {
            let _a = sem.acquire_guard().unwrap();
            let _b = sem.try_acquire_guard().unwrap();
            assert!(sem.try_acquire_guard().is_none());
            assert_eq!(sem.available(), 0);
        }
        assert_eq!(sem.available(), 2);
        assert!(sem.release().is_err(), "still bounded");
        let t = Timeout::start_new(Duration::from_millis(2));
        let _a = sem.acquire_guard().unwrap();
        let _b = sem.acquire_guard().unwrap();
        let _keep = greenlet::spawn_later(Duration::from_secs(30), || ());
        let err = sem.acquire_guard().unwrap_err();
        assert!(t.is(&err));
    }

    #[test]
    fn joinable_queue_join_waits_for_every_task_done() {
        let q = JoinableQueue::bounded(2);
        let done = Rc::new(RefCell::new(Vec::new()));
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let (q, d) = (q.clone(), done.clone());
                spawn(move || {
                    while let Ok(job) = q.get() {
                        sleep(Duration::from_millis(1)).unwrap();
                        d.borrow_mut().push(job);
                        q.task_done().unwrap();
                    }
                })
            })
            .collect();
        assert!(q.join_timeout(Duration::ZERO).unwrap(), "nothing put yet");
        for job in 0..8 {
            q.put(job).unwrap();
        }
        assert!(q.unfinished_tasks() > 0);
        q.join().unwrap();
        assert_eq!(q.unfinished_tasks(), 0);
        let mut got = done.borrow().clone();
        got.sort();
        assert_eq!(got, (0..8).collect::<Vec<_>>());
        assert_eq!(q.task_done(), Err(TaskDoneTooOften));
        greenlet::killall(&workers).unwrap();
    }

    #[test]
    fn joinable_queue_join_times_out_while_a_task_is_unfinished() {
        let q = JoinableQueue::unbounded();
        q.put("job").unwrap();
        assert_eq!(q.get().unwrap(), "job");
        assert!(!q.join_timeout(Duration::from_millis(5)).unwrap());
        q.task_done().unwrap();
        assert!(q.join_timeout(Duration::ZERO).unwrap());
        // A put that fails is not counted.
        let full = JoinableQueue::bounded(0);
        assert!(full.try_put(1).is_err());
        assert_eq!(full.unfinished_tasks(), 0);
        full.join().unwrap();
    }
}

/// Every public error is `Send + Sync + 'static` (so it can go into
/// `io::Error::other` or an `anyhow::Error`), except those that carry a
/// value that is not: a panic payload (`Box<dyn Any + Send>`, as in std's
/// `thread::Result`) or the caller's item in `PutError<T>`. A type that
/// lost the bounds fails to compile here. (`AsyncError` was `!Send + !Sync`.)
#[test]
fn public_errors_are_send_sync_and_static() {
    fn assert_error<E: std::error::Error + Send + Sync + 'static>() {}
    assert_error::<AsyncError>();
    assert_error::<Interrupted>();
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<greenlet::BlockedForever>();
    assert_error::<Empty>();
    assert_error::<OverReleased>();
    assert_error::<PutError<u8>>();
    assert_error::<greenlet::hub::RemoteError>();
    assert_error::<greenlet::timeout::Elapsed>();
    assert_error::<greenlet::timeout::AlreadyStarted>();
    // Payload-carrying ones are still `Send` (they can leave the thread).
    fn assert_send<E: std::error::Error + Send + 'static>() {}
    assert_send::<greenlet::GreenletError>();
    assert_send::<greenlet::threadpool::ThreadError>();

    let r: AsyncResult<u8> = AsyncResult::new();
    r.set_error("it broke");
    let e = r.get().unwrap_err();
    let io = std::io::Error::other(e);
    assert_eq!(io.to_string(), "the result is an error: it broke");
}

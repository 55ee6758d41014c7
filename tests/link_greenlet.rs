//! Links to greenlets (gevent 0.13 `link(greenlet)`, `spawn_link*`): the
//! receiver's current or next blocking call returns `LinkedExited` once, in
//! order with pending timeouts; which outcome notifies which link; a dead
//! receiver is not notified; the linked greenlet is unaffected; links are
//! removable; the main greenlet gets `LinkedExited`, not `LoopExit`.

use std::io::{self, Read};
use std::time::{Duration, Instant};

use greenlet::net::UnixStream;
use greenlet::sync::{Event, Queue};
use greenlet::{
    getcurrent, sleep, spawn, spawn_link, spawn_link_exception, spawn_link_value, yield_now,
    Builder, Ended, Interrupted, LinkedExited, Timeout,
};

const LONG: Duration = Duration::from_secs(30);

/// Lets the hub run until `done` holds (each `yield_now` lets every ready
/// greenlet run and, every few turns, fires due timers).
fn yield_until(mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "condition never held"
        );
        yield_now();
    }
}

fn linked(err: Interrupted) -> LinkedExited {
    match err {
        Interrupted::LinkedExited(e) => e,
        other => panic!("expected LinkedExited, got {other:?}"),
    }
}

#[test]
fn spawn_link_interrupts_the_current_wait_once_and_names_the_child() {
    let line = line!() + 1;
    let child = spawn_link(|| 5);
    let t0 = Instant::now();
    let dead = linked(sleep(LONG).unwrap_err());
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert_eq!(dead.id(), child.id());
    assert_eq!(dead.name(), child.name());
    assert_eq!(dead.spawned_at().line(), line);
    assert!(dead.spawned_at().file().ends_with("link_greenlet.rs"));
    assert_eq!(dead.ended(), &Ended::Completed);
    let text = dead.to_string();
    assert!(text.contains(&*child.name()), "{text}");
    assert!(text.contains("link_greenlet.rs"), "{text}");
    assert!(text.ends_with("completed successfully"), "{text}");
    // Once: the next wait proceeds normally.
    sleep(Duration::from_millis(1)).unwrap();
    sleep(Duration::ZERO).unwrap();
    // The child is unaffected.
    assert_eq!(child.get().unwrap(), 5);
}

#[test]
fn a_death_while_the_receiver_runs_is_delivered_by_its_next_wait_without_suspending() {
    let child = spawn_link(|| ());
    yield_until(|| child.dead());
    let t0 = Instant::now();
    let dead = linked(Event::new().wait_timeout(LONG).unwrap_err());
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(dead.id(), child.id());
    assert!(Event::new().wait_timeout(Duration::from_millis(1)).is_ok());
}

#[test]
fn spawn_link_value_notifies_on_return_and_kill_not_on_panic() {
    let ok = spawn_link_value(|| 1);
    assert_eq!(linked(sleep(LONG).unwrap_err()).ended(), &Ended::Completed);
    ok.join().unwrap();

    let killed = spawn_link_value(|| sleep(LONG));
    yield_now(); // let it start and park
    killed.kill_nowait();
    let dead = linked(sleep(LONG).unwrap_err());
    assert_eq!((dead.id(), dead.ended()), (killed.id(), &Ended::Killed));
    assert!(dead.to_string().ends_with("was killed"));

    let failed = spawn_link_value(|| -> () { panic!("no") });
    failed.join().unwrap();
    sleep(Duration::ZERO).unwrap(); // nothing pending
    assert!(failed.panicked());
}

#[test]
fn spawn_link_exception_notifies_only_on_panic_with_the_message() {
    let fine = spawn_link_exception(|| 1);
    fine.join().unwrap();
    sleep(Duration::ZERO).unwrap();

    let killed = spawn_link_exception(|| sleep(LONG));
    killed.kill().unwrap();
    sleep(Duration::ZERO).unwrap();

    let boom = Builder::new()
        .name("boomer")
        .spawn(|| -> () { panic!("disk {}", "full") })
        .unwrap();
    boom.link_exception_greenlet(&getcurrent());
    let dead = linked(sleep(LONG).unwrap_err());
    assert_eq!(dead.ended(), &Ended::Panicked("disk full".into()));
    assert_eq!(dead.name(), "boomer");
    let text = dead.to_string();
    assert!(
        text.starts_with("linked greenlet boomer spawned at "),
        "{text}"
    );
    assert!(text.ends_with("panicked: disk full"), "{text}");
    // The payload is still there for get().
    assert_eq!(boom.panic_message().as_deref(), Some("disk full"));
}

#[test]
fn link_greenlet_notifies_another_greenlet_not_the_linker() {
    let q: Queue<u8> = Queue::unbounded();
    let q2 = q.clone();
    let receiver = spawn(move || q2.get());
    yield_now(); // the receiver parks in get()
    let worker = spawn(|| ());
    worker.link_greenlet(&receiver);
    let r = receiver.get().unwrap();
    assert_eq!(linked(r.unwrap_err()).id(), worker.id());
    sleep(Duration::ZERO).unwrap(); // the main greenlet was not linked
    assert!(q.is_empty());
}

#[test]
fn linking_to_a_dead_greenlet_notifies_at_the_next_wait() {
    let g = spawn(|| ());
    g.join().unwrap();
    g.link_greenlet(&getcurrent());
    assert_eq!(linked(sleep(LONG).unwrap_err()).id(), g.id());
    // link_value to a dead panicked greenlet does not fire.
    let p = spawn(|| -> () { panic!("x") });
    p.join().unwrap();
    p.link_value_greenlet(&getcurrent());
    sleep(Duration::ZERO).unwrap();
}

#[test]
fn a_dead_receiver_is_not_notified_and_the_child_is_unaffected() {
    let receiver = spawn(|| "receiver done");
    let child = spawn(|| {
        sleep(Duration::from_millis(1)).unwrap();
        "child done"
    });
    child.link_greenlet(&receiver);
    let seen = std::rc::Rc::new(std::cell::Cell::new(false));
    let s = seen.clone();
    child.link(move |_| s.set(true)); // other links still fire
    assert_eq!(receiver.get().unwrap(), "receiver done");
    assert_eq!(child.get().unwrap(), "child done");
    yield_until(|| seen.get());
}

#[test]
fn unlink_unlink_all_and_has_links() {
    let me = getcurrent();
    let g = spawn(|| ());
    assert!(!g.has_links());
    let id = g.link_greenlet(&me);
    assert!(g.has_links());
    assert!(g.unlink(id));
    assert!(!g.has_links());
    g.link_greenlet(&me);
    g.link(|_| panic!("unlinked callbacks never run"));
    g.link_exception_greenlet(&me);
    assert_eq!(g.unlink_all(), 3);
    assert!(!g.has_links());
    assert_eq!(g.unlink_all(), 0);
    g.join().unwrap();
    sleep(Duration::from_millis(1)).unwrap();
}

#[test]
fn a_timeout_before_the_death_is_delivered_first() {
    let t = Timeout::start_new(Duration::from_millis(1));
    yield_until(|| !t.pending()); // fired, not delivered: we never waited
    let child = spawn_link(|| ());
    yield_until(|| child.dead());
    let first = sleep(LONG).unwrap_err();
    assert!(t.is(&first), "{first:?}");
    assert_eq!(linked(sleep(LONG).unwrap_err()).id(), child.id());
    sleep(Duration::ZERO).unwrap();
}

#[test]
fn a_death_before_the_timeout_is_delivered_first() {
    let child = spawn_link(|| ());
    yield_until(|| child.dead());
    let t = Timeout::start_new(Duration::from_millis(1));
    yield_until(|| !t.pending());
    assert_eq!(linked(sleep(LONG).unwrap_err()).id(), child.id());
    let second = sleep(LONG).unwrap_err();
    assert!(t.is(&second), "{second:?}");
    sleep(Duration::ZERO).unwrap();
}

#[test]
fn cancelling_a_fired_timeout_keeps_the_pending_link_death() {
    let child = spawn_link(|| ());
    let t = Timeout::start_new(Duration::from_millis(1));
    yield_until(|| child.dead() && !t.pending());
    drop(t); // discards the undelivered timeout only
    assert_eq!(linked(sleep(LONG).unwrap_err()).id(), child.id());
    sleep(Duration::ZERO).unwrap();
}

#[test]
fn the_main_greenlet_waiting_forever_gets_linked_exited_not_loop_exit() {
    let _child = spawn_link_exception(|| {
        sleep(Duration::from_millis(5)).unwrap();
        panic!("worker died");
    });
    let t0 = Instant::now();
    let dead = linked(Event::new().wait().unwrap_err());
    assert_eq!(dead.ended(), &Ended::Panicked("worker died".into()));
    assert!(t0.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_linked_greenlet_blocked_forever_still_gives_loop_exit() {
    let _child = spawn_link(|| Event::new().wait());
    let err = Event::new().wait().unwrap_err();
    assert!(matches!(err, Interrupted::LoopExit(_)), "{err:?}");
}

#[test]
fn killing_a_never_started_linked_child_from_the_receiver() {
    let child = spawn_link(|| ());
    child.kill().unwrap(); // dead at once; the receiver is running
    let dead = linked(sleep(LONG).unwrap_err());
    assert_eq!(dead.ended(), &Ended::Killed);
}

#[test]
fn linked_exited_through_a_socket_read_is_an_io_error_that_from_io_recovers() {
    let (a, _b) = UnixStream::pair().unwrap();
    let child = spawn_link(|| ());
    let mut buf = [0u8; 8];
    let err = (&a).read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Other);
    let back = Interrupted::from_io(&err).expect("an Interrupted inside");
    assert_eq!(linked(back).id(), child.id());
    // And a direct conversion.
    let e: io::Error = Interrupted::LinkedExited(linked(
        spawn_link(|| ())
            .join()
            .and_then(|()| sleep(LONG))
            .unwrap_err(),
    ))
    .into();
    assert!(Interrupted::from_io(&e).is_some_and(|i| i.linked_exited().is_some()));
}

#[test]
fn joining_a_linked_child_succeeds_and_the_exit_comes_at_the_next_wait() {
    let g = spawn_link(|| 3);
    let id = g.id();
    assert_eq!(g.get().unwrap(), 3);
    assert_eq!(linked(sleep(LONG).unwrap_err()).id(), id);
}

//! LoopExit: a main greenlet waiting on something nothing can ever signal
//! gets an error naming the wait instead of hanging; a pending timer of
//! another greenlet is waited for instead.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::{park, sleep, spawn, yield_now, Builder, GreenletState, Interrupted, Waker};

#[test]
fn park_with_no_possible_wakeup_is_loop_exit() {
    let t0 = Instant::now();
    let err = park(&"the unsignalled thing", |_w| {}).unwrap_err();
    let Interrupted::LoopExit(ref why) = err else {
        panic!("expected LoopExit, got {err:?}");
    };
    assert_eq!(why.waiting_on(), "the unsignalled thing");
    let msg = err.to_string();
    assert!(msg.contains("would block forever"), "{msg}");
    assert!(msg.contains("the unsignalled thing"), "{msg}");
    assert!(t0.elapsed() < Duration::from_secs(2));

    // The hub is still usable afterwards.
    assert_eq!(spawn(|| 3).get().unwrap(), 3);
}

#[test]
fn join_of_a_greenlet_parked_forever_names_it() {
    let g = spawn(|| park(&"nothing at all", |_w| {}));
    let err = g.join().unwrap_err();
    assert!(matches!(err, Interrupted::LoopExit(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("join of Greenlet-{}", g.id())),
        "{msg}"
    );
    assert!(msg.contains("join of Greenlet-"), "{msg}");
    assert!(
        msg.contains("loop_exit.rs"),
        "should name the spawn site: {msg}"
    );
    // The target is still parked: the error is the waiter's, not its.
    assert_eq!(g.state(), GreenletState::Parked);
    g.kill().unwrap();
    assert!(g.killed());
}

#[test]
fn join_of_a_named_greenlet_uses_its_name() {
    let g = Builder::new()
        .name("stuck-worker")
        .spawn(|| park(&"nothing", |_w| {}))
        .unwrap();
    let msg = g.join().unwrap_err().to_string();
    assert!(msg.contains("join of stuck-worker spawned at"), "{msg}");
    g.kill().unwrap();
}

#[test]
fn a_pending_timer_of_another_greenlet_is_waited_for() {
    let slot: Rc<RefCell<Option<Waker>>> = Rc::default();
    let s = slot.clone();
    spawn(move || {
        sleep(Duration::from_millis(50)).unwrap();
        s.borrow_mut().take().expect("main parked").wake();
    });
    let t0 = Instant::now();
    park(&"the sleeper's wake-up", |w| *slot.borrow_mut() = Some(w)).unwrap();
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(50), "took {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn get_of_a_stuck_greenlet_is_an_interrupted_error() {
    let g = spawn(|| {
        park(&"nothing", |_w| {}).ok();
        1
    });
    let gr = g.as_ref();
    match g.get() {
        Err(greenlet::GreenletError::Interrupted(Interrupted::LoopExit(_))) => {}
        other => panic!("expected Interrupted(LoopExit), got {other:?}"),
    }
    gr.kill().unwrap();
}

#[test]
fn loop_exit_converts_to_io_deadlock() {
    let err = park(&"x", |_w| {}).unwrap_err();
    let text = err.to_string();
    let io_err = io::Error::from(err.clone());
    assert_eq!(io_err.kind(), io::ErrorKind::Deadlock);
    assert_eq!(io_err.to_string(), text);
    assert_eq!(Interrupted::from_io(&io_err), Some(err));
}

#[test]
fn a_greenlet_joining_itself_gets_loop_exit() {
    let g = spawn(|| greenlet::getcurrent().join());
    let r = g.get().unwrap();
    let err = r.unwrap_err();
    assert!(matches!(err, Interrupted::LoopExit(_)), "{err:?}");
    assert!(err.to_string().contains("by itself"), "{err}");
}

#[test]
fn greenlets_left_parked_are_torn_down_at_thread_exit() {
    use std::sync::{Arc, Mutex};

    struct Guard(Arc<Mutex<Vec<&'static str>>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.lock().unwrap().push("dropped");
        }
    }

    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    // Main never waits for the parked greenlet: its thread ends with it
    // parked, and the hub's teardown runs its Drops.
    std::thread::spawn(move || {
        let g = spawn(move || {
            let _guard = Guard(l.clone());
            l.lock().unwrap().push("parked");
            park(&"nothing", |_w| {})
        });
        yield_now();
        assert_eq!(g.state(), GreenletState::Parked);
    })
    .join()
    .unwrap();
    assert_eq!(*log.lock().unwrap(), ["parked", "dropped"]);
}

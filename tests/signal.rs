//! Signal handlers as greenlets. Signals are process-wide and tests run in
//! parallel threads, so each test uses its own signal number.
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use greenlet::signal::{signal, SIGHUP, SIGUSR1, SIGUSR2};
use greenlet::sync::Event;
use greenlet::{getcurrent, sleep};

fn send_from_another_thread(sig: i32, after: Duration) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(after);
        // SAFETY: kill(2) on our own process.
        unsafe { libc::kill(libc::getpid(), sig) };
    })
}

fn disposition(sig: i32) -> usize {
    // SAFETY: querying the current action only.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old);
        old.sa_sigaction
    }
}

#[test]
fn handler_runs_in_a_new_greenlet_on_the_registering_hub_each_time() {
    let runs: Rc<RefCell<Vec<(u64, std::thread::ThreadId)>>> = Rc::default();
    let ev = Event::new();
    let (r, e) = (runs.clone(), ev.clone());
    let main_id = getcurrent().id();
    let h = signal(SIGUSR1, move || {
        // A handler may block like any greenlet.
        sleep(Duration::from_millis(1)).unwrap();
        r.borrow_mut()
            .push((getcurrent().id(), std::thread::current().id()));
        e.set();
    })
    .unwrap();
    for _ in 0..2 {
        ev.clear();
        let t = send_from_another_thread(SIGUSR1, Duration::from_millis(10));
        ev.wait()
            .expect("a registered handler keeps the hub waiting, not LoopExit");
        t.join().unwrap();
    }
    let runs = runs.borrow();
    assert_eq!(runs.len(), 2, "once per arrival");
    assert!(runs
        .iter()
        .all(|(id, t)| *id != main_id && *t == std::thread::current().id()));
    assert_ne!(runs[0].0, runs[1].0, "a new greenlet each time");
    h.cancel();
}

#[test]
fn cancel_restores_the_previous_disposition() {
    let before = disposition(SIGUSR2);
    let h1 = signal(SIGUSR2, || ()).unwrap();
    let h2 = signal(SIGUSR2, || ()).unwrap();
    assert_ne!(disposition(SIGUSR2), before, "ours is installed");
    h1.cancel();
    assert_ne!(disposition(SIGUSR2), before, "still one handler left");
    drop(h2);
    assert_eq!(disposition(SIGUSR2), before, "restored by the last cancel");
}

#[test]
fn a_cancelled_handler_no_longer_runs_and_the_hub_can_report_deadlock() {
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    let keep = signal(SIGHUP, move || r.set(r.get() + 1)).unwrap();
    let ev = Event::new();
    let e = ev.clone();
    let second = signal(SIGHUP, move || e.set()).unwrap();
    let t = send_from_another_thread(SIGHUP, Duration::from_millis(5));
    ev.wait().unwrap();
    t.join().unwrap();
    sleep(Duration::ZERO).unwrap();
    assert_eq!(ran.get(), 1);
    drop(keep);
    drop(second);
    // With no handler left, nothing can set this event: LoopExit, not a hang.
    assert!(matches!(
        Event::new().wait(),
        Err(greenlet::Interrupted::LoopExit(_))
    ));
}

#[test]
fn uncatchable_and_fault_signals_are_errors() {
    for sig in [libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, 0, 1000] {
        let e = signal(sig, || ()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{sig}: {e}");
    }
}

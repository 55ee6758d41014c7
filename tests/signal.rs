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
    for sig in [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGSEGV,
        0,
        #[cfg(target_os = "linux")]
        {
            libc::SIGRTMAX() + 1
        },
        1000,
    ] {
        let e = signal(sig, || ()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{sig}: {e}");
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A registration ends with its hub: 200 threads that register a handler
/// and exit without cancelling it leave no fd behind (each registration
/// used to keep its hub's eventfd open forever) and restore the signal's
/// disposition.
#[test]
fn registrations_are_released_with_their_hub() {
    let before_action = disposition(libc::SIGURG);
    let before = open_fds();
    for batch in 0..20 {
        let threads: Vec<_> = (0..10)
            .map(|i| {
                std::thread::spawn(move || {
                    let h = signal(libc::SIGURG, || {}).unwrap();
                    if (batch + i) % 2 == 0 {
                        std::mem::forget(h); // only the hub can release it
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
    let after = open_fds();
    // Other tests of this binary may hold a few fds of their own meanwhile.
    assert!(after <= before + 6, "{before} fds before, {after} after");
    assert_eq!(disposition(libc::SIGURG), before_action);
}

/// There is no fixed limit on registrations (there were 128 slots), and a
/// signal reaches every one of them.
#[test]
fn hundreds_of_registrations_all_run() {
    let runs = Rc::new(Cell::new(0));
    let all = Event::new();
    let handlers: Vec<_> = (0..300)
        .map(|_| {
            let (r, a) = (runs.clone(), all.clone());
            signal(libc::SIGWINCH, move || {
                r.set(r.get() + 1);
                if r.get() == 300 {
                    a.set();
                }
            })
            .unwrap()
        })
        .collect();
    let t = send_from_another_thread(libc::SIGWINCH, Duration::from_millis(5));
    assert_eq!(all.wait_timeout(Duration::from_secs(10)), Ok(true));
    t.join().unwrap();
    assert_eq!(runs.get(), 300);
    drop(handlers);
}

/// Linux's range, read from libc (macOS has no real-time signals; FreeBSD's
/// end at 126, which `libc` does not export).
#[cfg(target_os = "linux")]
#[test]
fn real_time_signals_up_to_sigrtmax_can_be_handled() {
    for sig in [libc::SIGRTMIN(), libc::SIGRTMAX()] {
        let h = signal(sig, || ()).unwrap_or_else(|e| panic!("{sig}: {e}"));
        h.cancel();
    }
}

//! fork, reinit and shutdown.
use std::cell::RefCell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::net::{TcpListener, TcpStream};

mod capture_log;
mod support;
use greenlet::{fork, shutdown, sleep, spawn, yield_now, Builder, Fork, Timeout};

/// Runs the ignored test `name` of this file in a process of its own (a
/// fork must not copy the harness's other test threads' hubs) and asserts
/// that it passed; returns its stderr.
fn assert_child_passes(name: &str) -> String {
    support::assert_ignored_test_passes(name, &[])
}

#[test]
fn after_fork_the_child_accepts_on_the_parents_listener_and_the_parent_is_unaffected() {
    assert_child_passes("child_fork");
}

/// Runs `f` in the forked child and leaves with its verdict as the exit
/// code, never returning into the test harness.
fn child_exit(f: impl FnOnce() -> i32) -> ! {
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
    // SAFETY: _exit ends the child at once, without running the parent's
    // copied destructors or harness.
    unsafe { libc::_exit(code) }
}

/// How many fds this process has open (Linux: `/proc/self/fd`, whose own
/// fd counts in every call alike).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Whether a thread-pool job, finishing while this hub waits in its
/// poller, wakes it (through `Poller::notify`) well before `bound`.
fn notified_within(bound: Duration) -> bool {
    let t0 = Instant::now();
    let job = greenlet::threadpool::spawn(|| std::thread::sleep(Duration::from_millis(20)));
    // Without the wake-up the hub would sleep until the wait's own timer.
    job.wait_timeout(bound * 3).is_ok_and(|done| done) && t0.elapsed() < bound
}

#[test]
#[ignore = "run in its own process by after_fork_the_child_accepts_on_the_parents_listener_and_the_parent_is_unaffected"]
fn child_fork() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ticks = Rc::new(RefCell::new(0));
    let t = ticks.clone();
    let background = spawn(move || loop {
        sleep(Duration::from_millis(2)).unwrap();
        *t.borrow_mut() += 1;
    });
    sleep(Duration::from_millis(5)).unwrap();
    let fds_before = open_fds();

    match fork().unwrap() {
        Fork::Child => child_exit(|| {
            // Other greenlets were discarded, not run.
            if !(background.dead() && background.killed()) {
                return 2;
            }
            // The new poller's fds replaced the copies of the parent's,
            // which are closed (not deregistered: the parent's check that
            // it is still woken would fail). Judged last, so that the
            // parent is served either way.
            let fds_in_child = open_fds();
            // The hub works: timers, spawn, I/O on a socket made before the
            // fork.
            sleep(Duration::from_millis(1)).unwrap();
            if spawn(|| 7).get().unwrap() != 7 {
                return 3;
            }
            let t = Timeout::start_new(Duration::from_secs(10));
            let (mut conn, _) = match listener.accept() {
                Ok(c) => c,
                Err(e) if t.is(&e) => return 4,
                Err(_) => return 5,
            };
            let mut buf = [0u8; 4];
            conn.read_exact(&mut buf).unwrap();
            conn.write_all(&buf).unwrap();
            // The child's own poller wakes it from another thread.
            if !notified_within(Duration::from_secs(10)) {
                return 6;
            }
            if fds_in_child != fds_before {
                eprintln!("fds open: {fds_before} before the fork, {fds_in_child} in the child");
                return 7;
            }
            0
        }),
        Fork::Parent { child } => {
            // The child serves the connection.
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"ping").unwrap();
            let mut back = [0u8; 4];
            c.read_exact(&mut back).unwrap();
            assert_eq!(&back, b"ping");
            // The parent's own greenlets run on.
            let before = *ticks.borrow();
            sleep(Duration::from_millis(20)).unwrap();
            assert!(*ticks.borrow() > before, "the parent's greenlet still runs");
            let mut status = 0;
            // SAFETY: waiting for our own child.
            let r = unsafe { libc::waitpid(child, &mut status, 0) };
            assert_eq!(r, child);
            assert!(libc::WIFEXITED(status), "child status {status}");
            assert_eq!(libc::WEXITSTATUS(status), 0, "child verdict");
            // The child replaced its copy of the poller without touching
            // the epoll instance they shared: the parent is still woken
            // from other threads (with no timer of its own to wake it).
            background.kill().unwrap();
            assert!(
                notified_within(Duration::from_secs(10)),
                "a thread-pool result did not wake the parent's hub"
            );
        }
    }
}

#[test]
fn shutdown_runs_every_cleanup_and_a_later_spawn_gets_a_fresh_hub() {
    struct Cleanup(Rc<RefCell<Vec<&'static str>>>, &'static str);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            self.0.borrow_mut().push(self.1);
        }
    }
    let log = Rc::new(RefCell::new(Vec::new()));
    let c1 = Cleanup(log.clone(), "sleeper");
    let sleeper = spawn(move || {
        let _c = c1;
        sleep(Duration::from_secs(3600)).unwrap();
    });
    sleep(Duration::ZERO).unwrap(); // the sleeper starts and parks
                                    // A socket registered with this hub (its first wait registers it).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener
        .set_accept_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    assert_eq!(
        listener.accept().unwrap_err().kind(),
        std::io::ErrorKind::TimedOut
    );
    let old_timeout = Timeout::start_new(Duration::from_secs(60));
    let c2 = Cleanup(log.clone(), "never started");
    let pending = spawn(move || drop(c2));

    shutdown().unwrap();

    let mut got = log.borrow().clone();
    got.sort();
    assert_eq!(got, ["never started", "sleeper"], "every cleanup ran");
    assert!(sleeper.dead() && pending.dead() && pending.killed());
    // A fresh hub: nothing left over, and it works.
    let s = greenlet::hub::stats();
    assert_eq!((s.greenlets, s.timers), (0, 0));
    assert!(greenlet::run_info().is_empty());
    assert_eq!(spawn(|| 5).get().unwrap(), 5);
    sleep(Duration::from_millis(1)).unwrap();
    // Objects of the old hub fail cleanly instead of touching the new one.
    drop(old_timeout);
    let fresh = Timeout::start_new(Duration::from_secs(60));
    assert!(fresh.pending());
    assert_eq!(greenlet::hub::stats().timers, 1);
    drop(fresh);
    let e = listener.accept().unwrap_err();
    assert!(e.to_string().contains("shut down"), "{e}");
}

#[test]
fn shutdown_from_a_spawned_greenlet_is_an_error() {
    let g = spawn(shutdown);
    let e = g.get().unwrap().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn fork_from_a_greenlet_resumed_by_another_greenlet_discards_that_one() {
    assert_child_passes("child_fork_nested");
}

#[test]
#[ignore = "run in its own process by fork_from_a_greenlet_resumed_by_another_greenlet_discards_that_one"]
fn child_fork_nested() {
    use greenlet::sync::Event;
    // `a` blocks first and so runs the loop on its own stack: `b` is
    // resumed from there, and forks while `a` is still below it.
    let ev = Rc::new(Event::new());
    let e = ev.clone();
    let ran_on = Rc::new(RefCell::new(Vec::new()));
    let r = ran_on.clone();
    let a = spawn(move || {
        e.wait().unwrap();
        r.borrow_mut().push("a woke");
    });
    let b = spawn(move || fork().unwrap());
    let side = b.get().unwrap();
    match side {
        Fork::Child => child_exit(|| {
            // `a` was discarded without running: its wait never returns.
            if !(a.dead() && a.killed()) {
                return 2;
            }
            ev.set();
            // The hub works: timers and new greenlets.
            sleep(Duration::from_millis(1)).unwrap();
            if spawn(|| 7).get().unwrap() != 7 {
                return 3;
            }
            if !ran_on.borrow().is_empty() {
                return 4;
            }
            0
        }),
        Fork::Parent { child } => {
            ev.set();
            a.join().unwrap();
            assert_eq!(*ran_on.borrow(), ["a woke"]);
            let mut status = 0;
            // SAFETY: waiting for our own child.
            let r = unsafe { libc::waitpid(child, &mut status, 0) };
            assert_eq!(r, child);
            assert!(libc::WIFEXITED(status), "child status {status}");
            assert_eq!(libc::WEXITSTATUS(status), 0, "child verdict");
        }
    }
}

/// A greenlet that catches every unwind in a loop (a supervisor) cannot
/// keep its thread, or the process, from ending: teardown kills it a
/// bounded number of times, then abandons it and says which one. (Before,
/// teardown spun at 100% CPU forever and the child never exited.)
#[test]
fn teardown_abandons_a_greenlet_that_keeps_catching_the_kill() {
    let stderr = assert_child_passes("child_catching_supervisor");
    // Logged as an error through the `log` facade (echoed by the child's
    // test logger), naming the greenlet and where it was spawned.
    assert!(stderr.contains("[ERROR greenlet_runtime::hub"), "{stderr}");
    assert!(stderr.contains("abandoned supervisor"), "{stderr}");
    assert!(stderr.contains("tests/process.rs"), "{stderr}");
}

#[test]
#[ignore = "run in its own process by teardown_abandons_a_greenlet_that_keeps_catching_the_kill"]
fn child_catching_supervisor() {
    capture_log::install(); // echoes the report to stderr
    Builder::new()
        .name("supervisor")
        .spawn(|| loop {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                sleep(Duration::from_secs(60))
            }));
            drop(r);
        })
        .unwrap();
    yield_now();
    // The test thread ends here: its hub is torn down.
}

/// After `fork`, `Remote` handles held by threads of the parent (which the
/// child does not have) no longer keep the child's hub from `LoopExit`: a
/// main greenlet that waits on nothing is told so. (It waited forever.)
#[test]
fn after_fork_the_parents_remote_handles_do_not_keep_the_child_waiting() {
    assert_child_passes("child_fork_remote");
}

#[test]
#[ignore = "run in its own process by after_fork_the_parents_remote_handles_do_not_keep_the_child_waiting"]
fn child_fork_remote() {
    let remote = greenlet::hub::Remote::current();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let _r = remote;
        let _ = stopped.recv();
    });
    match fork().unwrap() {
        // No timeout here: an armed timer would itself keep the hub waiting.
        Fork::Child => child_exit(|| match greenlet::sync::Event::new().wait() {
            Err(greenlet::Interrupted::LoopExit(_)) => 0,
            _ => 2,
        }),
        Fork::Parent { child } => {
            let mut status = 0;
            let t0 = std::time::Instant::now();
            let r = loop {
                // SAFETY: polling our own child.
                let r = unsafe { libc::waitpid(child, &mut status, libc::WNOHANG) };
                if r != 0 || t0.elapsed() > Duration::from_secs(10) {
                    break r;
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            if r == 0 {
                // SAFETY: killing and reaping our own child.
                unsafe {
                    libc::kill(child, libc::SIGKILL);
                    libc::waitpid(child, &mut status, 0);
                }
                panic!("the child's main greenlet still waits after 10 s");
            }
            assert_eq!(r, child);
            assert!(libc::WIFEXITED(status), "child status {status}");
            assert_eq!(libc::WEXITSTATUS(status), 0, "child verdict");
            stop.send(()).unwrap();
            holder.join().unwrap();
        }
    }
}

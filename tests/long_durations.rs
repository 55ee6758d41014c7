//! `Duration::MAX` (and any duration past the clock's range) is accepted by
//! every API that takes a duration: it means "no deadline". Each wait here
//! is ended by something else (an event, a kill, data), or, where nothing
//! can end it, by `LoopExit`. Before the fix each one panicked with
//! "overflow when adding duration to instant".

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use greenlet::net::{select, wait_read, UnixStream};
use greenlet::sync::{Event, Queue, Semaphore};
use greenlet::{
    joinall, sleep, spawn, spawn_later, with_timeout, Builder, GreenletError, Interrupted, Timeout,
};

const MAX: Duration = Duration::MAX;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs `f` in a greenlet that waits 5 ms first, so the caller's wait has
/// begun when it runs.
fn later(f: impl FnOnce() + 'static) {
    spawn(move || {
        sleep(ms(5)).unwrap();
        f();
    });
}

#[test]
fn a_sleep_of_duration_max_with_nothing_else_to_run_is_a_loop_exit() {
    assert!(matches!(sleep(MAX), Err(Interrupted::LoopExit(_))));
}

#[test]
fn a_sleep_of_duration_max_ends_by_kill() {
    let g = spawn(|| sleep(MAX));
    sleep(ms(1)).unwrap();
    g.kill().unwrap();
    assert!(matches!(g.get(), Err(GreenletError::Killed)));
}

#[test]
fn timeouts_of_duration_max_never_fire() {
    let t = Timeout::start_new(MAX);
    assert!(!t.pending(), "a timeout past the clock's range never fires");
    sleep(ms(2)).unwrap();
    assert_eq!(with_timeout(MAX, || sleep(ms(2))), Ok(Ok(())));
    let t = Timeout::new(MAX);
    t.start().unwrap();
    sleep(ms(2)).unwrap();
    assert_eq!(t.duration(), Some(MAX));
}

#[test]
fn sync_primitives_wait_without_deadline() {
    let ev = Event::new();
    let e = ev.clone();
    later(move || e.set());
    assert_eq!(ev.wait_timeout(MAX), Ok(true));

    let q = Queue::unbounded();
    let q2 = q.clone();
    later(move || q2.put(7).unwrap());
    assert_eq!(q.get_timeout(MAX), Ok(Some(7)));

    let bq = Queue::bounded(1);
    bq.put(1).unwrap();
    let b2 = bq.clone();
    later(move || assert_eq!(b2.get(), Ok(1)));
    assert!(bq.put_timeout(2, MAX).is_ok());

    let sem = Semaphore::new(0);
    let s = sem.clone();
    later(move || s.release());
    assert_eq!(sem.acquire_timeout(MAX), Ok(true));

    let lock = greenlet::sync::Lock::new();
    assert!(lock.lock_timeout(MAX).unwrap().is_some());
}

#[test]
fn connect_timeout_of_duration_max_connects() {
    let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let c = greenlet::net::TcpStream::connect_timeout(&l.local_addr().unwrap(), MAX).unwrap();
    assert_eq!(c.peer_addr().unwrap(), l.local_addr().unwrap());
}

#[test]
fn joins_wait_without_deadline() {
    let g = spawn(|| sleep(ms(5)).map(|()| 3));
    assert_eq!(g.join_timeout(MAX), Ok(true));
    let g = spawn(|| sleep(ms(5)));
    assert_eq!(joinall(&[g], Some(MAX)).unwrap().len(), 1);
    let job = greenlet::threadpool::spawn(|| std::thread::sleep(ms(5)));
    assert_eq!(job.wait_timeout(MAX), Ok(true));
}

#[test]
fn spawn_later_of_duration_max_never_starts_and_can_be_killed() {
    let g = spawn_later(MAX, || panic!("must never run"));
    let b = Builder::new()
        .spawn_later(MAX, || panic!("must never run"))
        .unwrap();
    sleep(ms(2)).unwrap();
    assert!(!g.dead() && !b.dead());
    // Nothing can ever start it: joining it is a deadlock.
    assert!(matches!(g.join(), Err(Interrupted::LoopExit(_))));
    g.kill().unwrap();
    b.kill().unwrap();
    assert!(g.dead() && b.dead());
}

#[test]
fn fd_waits_and_socket_timeouts_wait_without_deadline() {
    let (a, b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let b = std::rc::Rc::new(b);
    let w = b.clone();
    later(move || (&*w).write_all(b"x").unwrap());
    wait_read(fd, Some(MAX)).unwrap();
    assert_eq!(select(&[fd], &[], Some(MAX)).unwrap(), (vec![fd], vec![]));
    let mut buf = [0u8; 1];
    (&a).read_exact(&mut buf).unwrap();

    a.set_read_timeout(Some(MAX)).unwrap();
    a.set_write_timeout(Some(MAX)).unwrap();
    assert_eq!(a.read_timeout().unwrap(), Some(MAX));
    let w = b.clone();
    later(move || (&*w).write_all(b"y").unwrap());
    (&a).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"y");
    (&a).write_all(b"z").unwrap();
    (&*b).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"z");
}

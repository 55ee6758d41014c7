//! A hub per thread: hub::spawn_thread, and handing work between hubs.
use std::sync::mpsc;

use greenlet::hub::spawn_thread;
use greenlet::threadpool::ThreadError;
use greenlet::{getcurrent, spawn};

#[test]
fn spawn_thread_runs_on_its_own_hub_and_join_returns_the_value() {
    let main_thread = std::thread::current().id();
    let t = spawn_thread(move || {
        assert_ne!(std::thread::current().id(), main_thread);
        assert_eq!(getcurrent().id(), 0, "f is that thread's main greenlet");
        let g = spawn(|| 20);
        g.get().unwrap() + 1
    })
    .unwrap();
    // The calling hub keeps running while it waits.
    let other = spawn(|| "ran meanwhile");
    assert_eq!(t.join().unwrap(), 21);
    assert_eq!(other.get().unwrap(), "ran meanwhile");
}

#[test]
fn a_panicking_hub_thread_is_an_error_value() {
    let t = spawn_thread(|| -> u8 { panic!("boom in a hub thread") }).unwrap();
    match t.join() {
        Err(ThreadError::Panicked(p)) => {
            assert_eq!(greenlet::panic_message(&*p), "boom in a hub thread")
        }
        other => panic!("{other:?}"),
    }
}

thread_local! {
    /// Set by the job sent to the hub thread (each thread has its own).
    static ARRIVED: greenlet::sync::Event = greenlet::sync::Event::new();
}

#[test]
fn work_handed_to_another_hub_through_its_remote_runs_there() {
    let (tx, rx) = mpsc::channel::<std::thread::ThreadId>();
    let t = spawn_thread(|| {
        // Wait for the job; the Remote held by the spawner keeps this hub
        // from declaring itself deadlocked meanwhile.
        ARRIVED.with(|e| e.clone()).wait().unwrap();
        std::thread::current().id()
    })
    .unwrap();
    t.remote()
        .spawn(move || {
            tx.send(std::thread::current().id()).unwrap();
            ARRIVED.with(|e| e.set());
        })
        .unwrap();
    let hub_thread = t.thread().id();
    assert_eq!(t.join().unwrap(), hub_thread);
    assert_eq!(
        rx.recv().unwrap(),
        hub_thread,
        "the job ran on the other hub"
    );
}

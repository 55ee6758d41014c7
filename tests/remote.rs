//! Remote: work sent from another OS thread runs on the hub's thread; a
//! Remote of a hub whose thread exited reports `HubClosed`.

use std::cell::{Cell, RefCell};
use std::sync::mpsc;
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use greenlet::hub::{Remote, RemoteError};
use greenlet::{getcurrent, park, Waker};

thread_local! {
    /// The main greenlet's waker while it waits for the remote job.
    static MAIN_WAKER: RefCell<Option<Waker>> = const { RefCell::new(None) };
    /// Where the remote job ran, recorded on the hub's thread.
    static RAN: Cell<Option<(ThreadId, u64)>> = const { Cell::new(None) };
}

#[test]
fn remote_spawn_runs_on_the_hubs_thread() {
    let hub_thread = thread::current().id();
    let remote = Remote::current();
    let (tx, rx) = mpsc::channel();
    let sender = thread::spawn(move || {
        let me = thread::current().id();
        // The closure must be Send: it cannot carry the Waker, so it finds
        // it in a thread-local of the thread it runs on.
        remote
            .spawn(|| {
                RAN.with(|r| r.set(Some((thread::current().id(), getcurrent().id()))));
                let w = MAIN_WAKER.with(|w| w.borrow_mut().take());
                w.expect("the main greenlet is parked with its waker stored")
                    .wake();
            })
            .unwrap();
        tx.send(me).unwrap();
    });

    let t0 = Instant::now();
    park(&"the remote job", |w| {
        MAIN_WAKER.with(|s| *s.borrow_mut() = Some(w));
    })
    .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2));

    let sender_thread = rx.recv().unwrap();
    sender.join().unwrap();
    let (ran_on, greenlet_id) = RAN.with(Cell::get).expect("the remote job ran");
    assert_eq!(ran_on, hub_thread, "the job must run on the hub's thread");
    assert_ne!(ran_on, sender_thread);
    assert_ne!(greenlet_id, 0, "the job runs in a greenlet of its own");
}

#[test]
fn remote_jobs_run_in_send_order() {
    let remote = Remote::current();
    let (tx, rx) = mpsc::channel::<u32>();
    thread::spawn(move || {
        for i in 0..5 {
            let tx = tx.clone();
            remote.spawn(move || tx.send(i).unwrap()).unwrap();
        }
        remote
            .spawn(|| {
                MAIN_WAKER.with(|w| w.borrow_mut().take()).unwrap().wake();
            })
            .unwrap();
    })
    .join()
    .unwrap();
    // All jobs are queued; none ran yet (the hub has not turned).
    assert!(rx.try_recv().is_err());
    park(&"the last remote job", |w| {
        MAIN_WAKER.with(|s| *s.borrow_mut() = Some(w));
    })
    .unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
}

#[test]
fn remote_spawn_after_the_hub_thread_exited_is_hub_closed() {
    let remote = thread::spawn(|| {
        let r = Remote::current();
        // Use the hub a little so it is more than an empty shell.
        assert_eq!(greenlet::spawn(|| 1).get().unwrap(), 1);
        r
    })
    .join()
    .unwrap();
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r = ran.clone();
    let err = remote
        .spawn(move || r.store(true, std::sync::atomic::Ordering::SeqCst))
        .unwrap_err();
    assert!(matches!(err, RemoteError::HubClosed), "{err:?}");
    assert!(err.to_string().contains("shut down"), "{err}");
    assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
}

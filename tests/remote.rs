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

#[test]
fn every_remote_wake_up_arrives_while_the_hub_sleeps_between_jobs() {
    // Two threads send jobs one at a time, each waiting until the hub ran
    // the previous one, so the hub goes to sleep in its poll between most
    // jobs and the notifier is re-armed thousands of times. A notification
    // lost in a re-arm leaves the hub asleep with work queued: the main
    // greenlet's wait would then last until its timeout.
    thread_local! {
        static DONE: Cell<u32> = const { Cell::new(0) };
    }
    const PER_THREAD: u32 = 10_000;
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let remote = Remote::current();
            thread::spawn(move || {
                for _ in 0..PER_THREAD {
                    let (tx, rx) = mpsc::channel();
                    remote
                        .spawn(move || {
                            DONE.with(|d| d.set(d.get() + 1));
                            if let Some(w) = MAIN_WAKER.with(|w| w.borrow_mut().take()) {
                                w.wake();
                            }
                            tx.send(()).unwrap();
                        })
                        .unwrap();
                    rx.recv().unwrap();
                }
            })
        })
        .collect();
    let t0 = Instant::now();
    while DONE.with(Cell::get) < 2 * PER_THREAD {
        // The timeout turns a lost wake-up into a failure, not a hang.
        let limit = greenlet::Timeout::start_new(Duration::from_secs(5));
        let woken = park(&"the next remote job", |w| {
            MAIN_WAKER.with(|s| *s.borrow_mut() = Some(w));
        });
        drop(limit);
        assert!(
            woken.is_ok(),
            "the hub slept through a remote job after {} jobs: {woken:?}",
            DONE.with(Cell::get)
        );
        assert!(t0.elapsed() < Duration::from_secs(60));
    }
    for s in senders {
        s.join().unwrap();
    }
}

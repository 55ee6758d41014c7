//! Stress, bounded in time (about 10 s of load): many loopback connections
//! echo messages of random sizes byte-exact through a `StreamServer` while
//! a killer greenlet kills clients at random and timeouts fire in the
//! middle of reads. At the end every connection is gone: the process has
//! the fds it had after the first (warm-up) round, and its resident memory
//! did not grow past a bound since.
//!
//! One test in its own binary, so the fd count is not disturbed by others.

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::net::{StreamServer, TcpStream};

mod support;
use greenlet::{sleep, spawn, with_timeout, Greenlet, GreenletError, GreenletRef};

/// Clients per round, messages per client, largest message.
const CLIENTS: usize = 100;
const MESSAGES: usize = 20;
const MAX_MESSAGE: usize = 16 << 10;
/// Rounds run until this much time has passed (at least `MIN_ROUNDS`).
const LOAD_FOR: Duration = Duration::from_secs(8);
const MIN_ROUNDS: usize = 3;
/// Allowed growth of the resident set after the warm-up round.
const RSS_SLACK: usize = 64 << 20;

/// xorshift64*: a small deterministic generator (the seed is printed).
#[derive(Clone)]
struct Rng(Rc<Cell<u64>>);

impl Rng {
    fn below(&self, n: usize) -> usize {
        let mut x = self.0.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf only reads a system value.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize
}

#[derive(Default)]
struct Counts {
    echoed: Cell<u64>,
    bytes: Cell<u64>,
    timeouts: Cell<u64>,
    killed: Cell<u64>,
}

/// One client: `MESSAGES` messages of random sizes, each echoed back
/// byte-exact; now and then a read of nothing, cut off by a 2 ms timeout.
fn client(addr: SocketAddr, rng: Rng, counts: Rc<Counts>, tag: u8) -> usize {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut back = vec![0u8; MAX_MESSAGE];
    for m in 0..MESSAGES {
        if rng.below(8) == 0 {
            // Nothing is in flight: only the timeout can end this read.
            let mut b = [0u8; 1];
            let r = with_timeout(Duration::from_millis(2), || c.read(&mut b));
            assert!(r.is_err(), "a read of nothing returned {r:?}");
            counts.timeouts.set(counts.timeouts.get() + 1);
        }
        let len = 1 + rng.below(MAX_MESSAGE);
        let msg: Vec<u8> = (0..len).map(|i| (i as u8) ^ tag ^ (m as u8)).collect();
        c.write_all(&msg).unwrap();
        c.read_exact(&mut back[..len]).unwrap();
        assert!(back[..len] == msg[..], "echo of {len} bytes differs");
        counts.echoed.set(counts.echoed.get() + 1);
        counts.bytes.set(counts.bytes.get() + len as u64);
    }
    MESSAGES
}

/// One round: `CLIENTS` clients at once and a killer that kills a random
/// one every millisecond or so until they are all done.
fn round(addr: SocketAddr, rng: &Rng, counts: &Rc<Counts>) {
    let clients: Vec<Greenlet<usize>> = (0..CLIENTS)
        .map(|i| {
            let (rng, counts) = (rng.clone(), counts.clone());
            spawn(move || client(addr, rng, counts, i as u8))
        })
        .collect();
    let targets: Rc<RefCell<Vec<GreenletRef>>> = Rc::new(RefCell::new(
        clients.iter().map(|g| (**g).clone()).collect(),
    ));
    let killer = {
        let (targets, rng, counts) = (targets.clone(), rng.clone(), counts.clone());
        spawn(move || loop {
            if sleep(Duration::from_millis(1 + rng.below(3) as u64)).is_err() {
                return;
            }
            let t = targets.borrow();
            let victim = &t[rng.below(t.len())];
            if !victim.dead() && rng.below(4) == 0 {
                victim.kill_nowait();
                counts.killed.set(counts.killed.get() + 1);
            }
        })
    };
    for g in clients {
        match g.get() {
            Ok(n) => assert_eq!(n, MESSAGES),
            Err(GreenletError::Killed) => {}
            Err(e) => panic!("a client failed: {e}"),
        }
    }
    killer.kill().unwrap();
}

/// Handlers end when their clients' sockets close; waits (10 s at most).
fn wait_for_handlers(server: &StreamServer) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.connections() > 0 && Instant::now() < deadline {
        sleep(Duration::from_millis(5)).unwrap();
    }
    assert_eq!(server.connections(), 0, "handlers still running");
}

#[test]
fn echo_under_kills_and_timeouts_leaks_no_fd_and_no_memory() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("stress seed {seed}");
    let rng = Rng(Rc::new(Cell::new(seed)));
    let counts = Rc::new(Counts::default());
    let server = StreamServer::bind("127.0.0.1:0", support::echo).unwrap();
    server.start().unwrap();
    let addr = server.local_addr().unwrap();

    // Warm-up: the hub's own fds, stacks, buffers, pools.
    round(addr, &rng, &counts);
    wait_for_handlers(&server);
    let fds_warm = open_fds();
    let rss_warm = rss_bytes();
    let t0 = Instant::now();
    let mut rounds = 1;
    while rounds < MIN_ROUNDS || t0.elapsed() < LOAD_FOR {
        round(addr, &rng, &counts);
        rounds += 1;
    }

    wait_for_handlers(&server);
    let fds_end = open_fds();
    server.stop(Some(Duration::from_secs(5))).unwrap();
    drop(server);
    greenlet::hub::trim_stacks();
    let rss_end = rss_bytes();
    println!(
        "{rounds} rounds in {:?}: {} echoes ({} MiB), {} timeouts, {} kills; RSS {} -> {} MiB",
        t0.elapsed(),
        counts.echoed.get(),
        counts.bytes.get() >> 20,
        counts.timeouts.get(),
        counts.killed.get(),
        rss_warm >> 20,
        rss_end >> 20
    );
    assert!(
        counts.echoed.get() > 1000,
        "too little traffic to mean anything"
    );
    assert!(counts.timeouts.get() > 0 && counts.killed.get() > 0);
    assert_eq!(fds_end, fds_warm, "fds leaked");
    assert!(
        rss_end < rss_warm + RSS_SLACK,
        "RSS grew from {} to {} MiB",
        rss_warm >> 20,
        rss_end >> 20
    );
}

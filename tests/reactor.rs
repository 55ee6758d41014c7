//! The reactor through `Registration`: a read parks until data arrives, one
//! waiter per direction (`ResourceBusy`), `cancel_waiters`, timed waits, and
//! I/O readiness is not starved by a greenlet that keeps yielding.

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::hub::{stats, Registration};
use greenlet::{spawn, yield_now, GreenletState, Interrupted};

mod support;

/// A non-blocking stream registered with this thread's reactor. Field order
/// matters: the registration is dropped before the fd is closed.
struct Sock {
    reg: Registration,
    stream: UnixStream,
}

impl Sock {
    /// Reads up to 64 bytes cooperatively.
    fn read(&self, timeout: Option<Duration>) -> io::Result<Vec<u8>> {
        let mut buf = [0u8; 64];
        let n = self
            .reg
            .read_with(timeout, || (&self.stream).read(&mut buf))?;
        Ok(buf[..n].to_vec())
    }
}

/// A (blocking peer, registered non-blocking end) pair.
fn pair() -> (UnixStream, Rc<Sock>) {
    let (peer, stream) = UnixStream::pair().unwrap();
    stream.set_nonblocking(true).unwrap();
    // SAFETY: `Sock` drops the registration before the stream (field order).
    let reg = unsafe { Registration::new(stream.as_raw_fd()) }.unwrap();
    (peer, Rc::new(Sock { reg, stream }))
}

#[test]
fn a_reader_parks_until_a_writer_writes() {
    let (mut peer, sock) = pair();
    let log = Rc::new(RefCell::new(Vec::<String>::new()));

    let (l, s) = (log.clone(), sock.clone());
    let reader = spawn(move || {
        l.borrow_mut().push("reading".into());
        let data = s.read(None).unwrap();
        l.borrow_mut()
            .push(format!("read {}", String::from_utf8(data).unwrap()));
    });
    yield_now();
    assert_eq!(reader.state(), GreenletState::Parked);
    assert_eq!(stats().io_waiters, 1);
    assert!(
        !sock.reg.is_readable(),
        "WouldBlock consumes read readiness"
    );

    let l = log.clone();
    let writer = spawn(move || {
        l.borrow_mut().push("writing".into());
        peer.write_all(b"ping").unwrap();
    });
    reader.join().unwrap();
    writer.join().unwrap();
    assert!(reader.successful());
    assert_eq!(*log.borrow(), ["reading", "writing", "read ping"]);
    assert_eq!(stats().io_waiters, 0);
}

#[test]
fn a_second_reader_of_the_same_fd_gets_resource_busy() {
    let (mut peer, sock) = pair();
    let s = sock.clone();
    let first = spawn(move || s.read(None));
    yield_now();
    assert_eq!(first.state(), GreenletState::Parked);

    let s = sock.clone();
    let second = spawn(move || s.read(Some(Duration::from_secs(5))));
    let err = second.get().unwrap().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ResourceBusy, "{err}");
    assert!(err.to_string().contains("already waiting to read"), "{err}");

    // The first reader is undisturbed.
    assert_eq!(first.state(), GreenletState::Parked);
    peer.write_all(b"for the first").unwrap();
    assert_eq!(first.get().unwrap().unwrap(), b"for the first");
}

#[test]
fn cancel_waiters_fails_the_waiting_read() {
    let (_peer, sock) = pair();
    let s = sock.clone();
    let reader = spawn(move || s.read(None));
    yield_now();
    assert_eq!(reader.state(), GreenletState::Parked);

    let s = sock.clone();
    let canceller = spawn(move || s.reg.cancel_waiters());
    let err = reader.get().unwrap().unwrap_err();
    assert!(canceller.dead());
    assert_eq!(Interrupted::from_io(&err), Some(Interrupted::Cancelled));
    assert!(
        err.to_string()
            .contains("File descriptor was closed in another greenlet"),
        "{err}"
    );
    assert_eq!(stats().io_waiters, 0);
}

#[test]
fn wait_readable_times_out_without_data() {
    let (_peer, sock) = pair();
    // A fresh registration assumes "ready" so the first syscall is tried;
    // forget that, as a read that got WouldBlock would.
    sock.reg.clear_readable();
    let t0 = Instant::now();
    let err = sock
        .reg
        .wait_readable(Some(Duration::from_millis(20)))
        .unwrap_err();
    let took = t0.elapsed();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(took >= Duration::from_millis(20), "took {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(stats().timers, 0);
    assert_eq!(stats().io_waiters, 0);
}

#[test]
fn read_with_a_timeout_times_out_then_reads() {
    let (mut peer, sock) = pair();
    let err = sock.read(Some(Duration::from_millis(10))).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    peer.write_all(b"late").unwrap();
    assert_eq!(sock.read(Some(Duration::from_secs(5))).unwrap(), b"late");
    assert_eq!(stats().timers, 0);
}

#[test]
fn a_yielding_spinner_does_not_starve_io() {
    let (mut peer, sock) = pair();
    let got = Rc::new(Cell::new(false));
    let t0 = Instant::now();

    let (g, s) = (got.clone(), sock.clone());
    let reader = spawn(move || {
        let data = s.read(None).unwrap();
        g.set(true);
        data
    });
    let spinner = support::spinner(got.clone(), Duration::from_secs(2));
    // Writes once the reader is parked and the spinner is spinning.
    let writer = spawn(move || peer.write_all(b"through").unwrap());

    let spins = spinner.get().unwrap();
    assert!(
        got.get(),
        "the reader never got its data while the spinner yielded"
    );
    assert!(spins > 0);
    assert!(writer.successful());
    assert_eq!(reader.get().unwrap(), b"through");
    assert!(t0.elapsed() < Duration::from_secs(1));
}

//! The load generator: one thread, raw edge-triggered epoll over `N`
//! non-blocking std sockets, ping-pong on each (send a message, wait for
//! the whole echo, send the next). Runs on the calling thread, which the
//! suite pins to CPU 1.
//!
//! Edge-triggered, so that the generator itself serves echoes in the order
//! they arrived. Level-triggered epoll puts every fd it reports back at the
//! tail of its ready list, to check it again at the next wait; when that
//! connection's next echo comes back before the next wait, it is taken
//! ahead of echoes that arrived earlier. Those then wait in the
//! generator's socket, and their latency shows queueing that is the
//! generator's, not the server's: the faster a server turns requests
//! round, the more often it happens (docs/performance.md, "The load
//! generator's own order").

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// An `epoll_wait` that returns nothing for this long means the server
/// stalled: the run fails instead of hanging.
const STALL: Duration = Duration::from_secs(3);

/// A window in which other work used more than this share of a core (on
/// CPUs 0 and 1 together) is noisy.
pub const NOISY: f64 = 0.10;

struct Conn {
    s: TcpStream,
    /// Bytes of the current echo received so far.
    got: usize,
    /// When the current request was sent.
    sent_at: Instant,
    /// A request is outstanding.
    busy: bool,
}

/// What the load generator saw served over some stretch of load.
#[derive(Debug, Default)]
pub struct Served {
    /// Requests completed.
    pub reqs: u64,
    /// Latency of each completed request, nanoseconds.
    pub lat: Vec<u32>,
    /// Requests completed per connection (index = connection), for the
    /// fairness figure.
    pub per_conn: Vec<u32>,
}

impl Served {
    fn new(conns: usize) -> Served {
        Served {
            reqs: 0,
            lat: Vec::with_capacity(1 << 16),
            per_conn: vec![0; conns],
        }
    }
}

/// One measured window of a run.
#[derive(Debug, Default)]
pub struct Window {
    /// What was served in the window.
    pub served: Served,
    /// Length of the window in seconds.
    pub secs: f64,
    /// Server user and system CPU seconds spent in the window.
    pub cpu: (f64, f64),
    /// This process's (the load generator's) CPU seconds in the window.
    pub client_cpu: f64,
    /// Busy seconds of CPUs 0 and 1 in the window not spent by the server
    /// or the load generator: other processes, and kernel work accounted
    /// to no task of the two.
    pub other_cpu: f64,
}

/// Connections to one server, driven in ping-pong.
pub struct Load {
    ep: OwnedFd,
    conns: Vec<Conn>,
    msg: Vec<u8>,
    scratch: Vec<u8>,
    events: Vec<libc::epoll_event>,
    outstanding: usize,
}

impl Load {
    /// Opens `n` connections to `addr` for messages of `size` bytes.
    pub fn connect(addr: SocketAddr, n: usize, size: usize) -> io::Result<Load> {
        // SAFETY: epoll_create1 has no memory-safety preconditions.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh epoll fd that nothing else owns.
        let ep = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut conns = Vec::with_capacity(n);
        for i in 0..n {
            let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            s.set_nodelay(true)?;
            s.set_nonblocking(true)?;
            let mut ev = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLET) as u32,
                u64: i as u64,
            };
            // SAFETY: `ev` is a valid epoll_event, both fds are open.
            if unsafe { libc::epoll_ctl(fd, libc::EPOLL_CTL_ADD, s.as_raw_fd(), &mut ev) } != 0 {
                return Err(io::Error::last_os_error());
            }
            conns.push(Conn {
                s,
                got: 0,
                sent_at: Instant::now(),
                busy: false,
            });
        }
        let msg: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        Ok(Load {
            ep,
            conns,
            msg,
            scratch: vec![0; size.max(64 * 1024)],
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 1024],
            outstanding: 0,
        })
    }

    fn send(&mut self, i: usize) -> io::Result<()> {
        let c = &mut self.conns[i];
        let mut off = 0;
        while off < self.msg.len() {
            match (&c.s).write(&self.msg[off..]) {
                Ok(w) => off += w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Rare (a full send buffer): wait for room.
                    let mut p = libc::pollfd {
                        fd: c.s.as_raw_fd(),
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: `p` is a valid pollfd array of length 1.
                    unsafe { libc::poll(&mut p, 1, 1000) };
                }
                Err(e) => return Err(e),
            }
        }
        c.sent_at = Instant::now();
        c.got = 0;
        if !c.busy {
            c.busy = true;
            self.outstanding += 1;
        }
        Ok(())
    }

    /// Sends a request on every idle connection.
    fn start_all(&mut self) -> io::Result<()> {
        for i in 0..self.conns.len() {
            if !self.conns[i].busy {
                self.send(i)?;
            }
        }
        Ok(())
    }

    /// One `epoll_wait` and the reads it allows. Completed requests are
    /// counted (per connection too) and timed; each is followed by the next
    /// request if `resend`.
    fn step(&mut self, resend: bool, out: &mut Served) -> Result<(), String> {
        // SAFETY: `events` is a valid, writable buffer of the length passed.
        let n = unsafe {
            libc::epoll_wait(
                self.ep.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                STALL.as_millis() as i32,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(format!("epoll_wait: {e}"));
        }
        if n == 0 {
            return Err(format!(
                "server stalled: no echo for {} s with {} requests outstanding",
                STALL.as_secs(),
                self.outstanding
            ));
        }
        for k in 0..n as usize {
            let i = self.events[k].u64 as usize;
            self.read_echo(i, resend, out)?;
        }
        Ok(())
    }

    /// Reads what connection `i` has of its echo, until the echo is whole
    /// (then times it and, if `resend`, sends the next request) or the
    /// socket is drained: an edge-triggered fd reports nothing more until
    /// new bytes come.
    fn read_echo(&mut self, i: usize, resend: bool, out: &mut Served) -> Result<(), String> {
        let size = self.msg.len();
        loop {
            let c = &mut self.conns[i];
            let want = size - c.got;
            match (&c.s).read(&mut self.scratch[..want]) {
                Ok(0) => return Err("server closed a connection".into()),
                Ok(r) => {
                    if !c.busy {
                        return Err("echo without a request".into());
                    }
                    c.got += r;
                    if c.got == size {
                        let now = Instant::now();
                        out.lat.push(
                            now.duration_since(c.sent_at)
                                .as_nanos()
                                .min(u32::MAX as u128) as u32,
                        );
                        out.reqs += 1;
                        if let Some(n) = out.per_conn.get_mut(i) {
                            *n += 1;
                        }
                        c.got = 0;
                        if resend {
                            self.send(i).map_err(|e| format!("send: {e}"))?;
                        } else {
                            c.busy = false;
                            self.outstanding -= 1;
                        }
                        // Ping-pong: nothing more comes before this
                        // request's echo, which brings a new edge.
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("recv: {e}")),
            }
        }
    }

    /// Waits for every outstanding echo without sending more.
    fn drain(&mut self, out: &mut Served) -> Result<(), String> {
        while self.outstanding > 0 {
            self.step(false, out)?;
        }
        Ok(())
    }

    /// Continuous load: `warmup`, then windows of `len`, with the server's
    /// CPU time (process `pid`) read at each window boundary. The load
    /// never pauses between windows; it is drained at the end.
    ///
    /// A window in which other work kept CPUs 0 and 1 busy for more than
    /// [`NOISY`] of a core is set aside, and another one measured, up to
    /// `n` extra windows; if too few clean ones come, the least disturbed
    /// of the noisy ones fill up the `n`. Returns the `n` windows and how
    /// many were set aside.
    pub fn windows(
        &mut self,
        pid: u32,
        warmup: Duration,
        n: usize,
        len: Duration,
    ) -> Result<(Vec<Window>, usize), String> {
        let cpu = |p: u32| crate::sys::proc_cpu(p).map_err(|e| format!("/proc/{p}/stat: {e}"));
        let busy = || crate::sys::cpus_busy(&[0, 1]).map_err(|e| format!("/proc/stat: {e}"));
        let me = std::process::id();
        self.start_all().map_err(|e| format!("send: {e}"))?;
        let mut clean = Vec::with_capacity(n);
        let mut noisy = Vec::new();
        let mut next = Instant::now() + warmup;
        let mut cur = Window::default();
        let (mut t0, mut c0, mut m0, mut b0) = (Instant::now(), (0.0, 0.0), 0.0, 0.0);
        let mut started = false;
        loop {
            self.step(true, &mut cur.served)?;
            let now = Instant::now();
            if now < next {
                continue;
            }
            let c1 = cpu(pid)?;
            let m1 = cpu(me)?;
            let b1 = busy()?;
            if started {
                cur.secs = now.duration_since(t0).as_secs_f64();
                cur.cpu = (c1.0 - c0.0, c1.1 - c0.1);
                cur.client_cpu = (m1.0 + m1.1) - m0;
                cur.other_cpu = ((b1 - b0) - (cur.cpu.0 + cur.cpu.1) - cur.client_cpu).max(0.0);
                let w = std::mem::take(&mut cur);
                if w.other_cpu / w.secs > NOISY {
                    noisy.push(w);
                } else {
                    clean.push(w);
                }
                if clean.len() == n || clean.len() + noisy.len() == 2 * n {
                    break;
                }
            }
            started = true;
            cur = Window {
                served: Served::new(self.conns.len()),
                ..Window::default()
            };
            (t0, c0, m0, b0) = (now, c1, m1.0 + m1.1, b1);
            next = now + len;
        }
        self.drain(&mut Served::default())?;
        let set_aside = noisy.len();
        noisy.sort_by(|a, b| (a.other_cpu / a.secs).total_cmp(&(b.other_cpu / b.secs)));
        let missing = n - clean.len();
        clean.extend(noisy.into_iter().take(missing));
        Ok((clean, set_aside))
    }

    /// Load for `len`, then drained: returns every request completed from
    /// the first send to the last echo (the connections start idle), with
    /// their latencies if `keep_latency` (else only the count).
    pub fn burst(&mut self, len: Duration, keep_latency: bool) -> Result<Served, String> {
        let mut out = Served::new(self.conns.len());
        self.start_all().map_err(|e| format!("send: {e}"))?;
        let end = Instant::now() + len;
        while Instant::now() < end {
            self.step(true, &mut out)?;
            if !keep_latency && out.lat.len() > 1 << 20 {
                out.lat.clear();
            }
        }
        self.drain(&mut out)?;
        Ok(out)
    }
}

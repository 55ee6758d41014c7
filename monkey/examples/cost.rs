//! What the hooks cost, for counting instructions with callgrind (the
//! figures in docs/performance.md were made this way; wall-clock runs on a
//! shared machine would be noise):
//!
//! ```sh
//! cargo build --release -p greenlet-monkey --example cost
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.direct \
//!     target/release/examples/cost direct 100000
//! ```
//! and `callgrind_annotate /tmp/cg.direct | head`. Cases:
//! - `direct`: glibc's own `recv` (found with `dlsym(RTLD_NEXT)`) on an
//!   empty non-blocking socket (`EAGAIN`), N times: the baseline;
//! - `hooked`: the same call through the hook, nothing patched;
//! - `patched-thread`: through the hook with `patch_all()`, on a thread
//!   without a hub (the fast path's thread-local checks);
//!   (every case runs on a spawned thread, `patched-thread` on a third).
//! - `patched-hub`: with `patch_all()` in a hub's main greenlet: the
//!   cooperative path (the `MSG_DONTWAIT` retry and `fcntl` that find the
//!   socket non-blocking);
//! - `pingpong-hooked` / `pingpong-net`: N one-byte round trips between two
//!   greenlets over a std `UnixStream` pair with `patch_all()`, and over
//!   `greenlet::net::UnixStream`; `pingpong-net-patched`: the latter with
//!   `patch_all()` (what patching costs code that does not need it).
use std::ffi::c_void;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;

type Recv = unsafe extern "C" fn(i32, *mut c_void, usize, i32) -> isize;

fn recv_loop(n: u64, f: Recv) {
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1];
    for _ in 0..n {
        // SAFETY: a valid fd and buffer.
        let r = unsafe { f(a.as_raw_fd(), buf.as_mut_ptr().cast(), 1, 0) };
        assert_eq!(r, -1);
    }
}

fn pingpong<S: Read + Write + 'static>(n: u64, (mut a, mut b): (S, S)) {
    let echo = greenlet_runtime::spawn(move || {
        let mut buf = [0u8; 1];
        for _ in 0..n {
            b.read_exact(&mut buf).unwrap();
            b.write_all(&buf).unwrap();
        }
    });
    let mut buf = [0u8; 1];
    for _ in 0..n {
        a.write_all(b"x").unwrap();
        a.read_exact(&mut buf).unwrap();
    }
    echo.join().unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let case = args.get(1).map(String::as_str).unwrap_or("hooked");
    let n: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    // SAFETY: the name is NUL-terminated; the result is glibc's recv.
    let direct: Recv = unsafe {
        std::mem::transmute::<*mut c_void, Recv>(libc::dlsym(libc::RTLD_NEXT, c"recv".as_ptr()))
    };
    let hooked: Recv = libc::recv;
    // Every case runs on a second thread, so glibc's wrappers take the
    // same (multi-threaded) path in all of them.
    let case = case.to_string();
    std::thread::spawn(move || match case.as_str() {
        "direct" => recv_loop(n, direct),
        "hooked" => recv_loop(n, hooked),
        "patched-thread" => {
            greenlet_monkey::patch_all().unwrap();
            std::thread::spawn(move || recv_loop(n, hooked))
                .join()
                .unwrap();
        }
        "patched-hub" => {
            greenlet_monkey::patch_all().unwrap();
            recv_loop(n, hooked);
        }
        "pingpong-hooked" => {
            greenlet_monkey::patch_all().unwrap();
            pingpong(n, std::os::unix::net::UnixStream::pair().unwrap());
        }
        "pingpong-net" => pingpong(n, greenlet_net::UnixStream::pair().unwrap()),
        "pingpong-net-patched" => {
            greenlet_monkey::patch_all().unwrap();
            pingpong(n, greenlet_net::UnixStream::pair().unwrap());
        }
        other => panic!("unknown case {other}"),
    })
    .join()
    .unwrap();
}

//! Fixtures shared by the integration tests (`mod support;` in a test
//! file). Only what two or more test files need lives here: a yielding
//! spinner, and running a binary built for the target the way cargo runs
//! the tests themselves.
//!
//! `.ci/run` tests aarch64 builds on an x86-64 machine under qemu-user: cargo
//! starts each test binary through the runner, but a test that starts a
//! binary itself (its own executable for a crash in a child, an example)
//! must do the same, as the kernel cannot execute it directly. `.ci/run`
//! names the runner in `GREENLET_TEST_RUNNER`; unset, binaries run directly.

#![allow(dead_code)] // each test file uses its own part of it

use std::cell::Cell;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::net::TcpStream;
use greenlet::{spawn, yield_now, Greenlet};

/// A `StreamServer` handler that echoes every byte back until the peer
/// closes or an error ends the connection.
pub fn echo(mut conn: TcpStream, _peer: SocketAddr) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// Spawns a greenlet that yields in a loop until `stop` is set, for at most
/// `limit` (bounded, so whatever it would starve fails the test instead of
/// hanging it). Its result is how many times it yielded.
pub fn spinner(stop: Rc<Cell<bool>>, limit: Duration) -> Greenlet<u64> {
    let t0 = Instant::now();
    spawn(move || {
        let mut spins = 0u64;
        while !stop.get() && t0.elapsed() < limit {
            yield_now();
            spins += 1;
        }
        spins
    })
}

/// The runner command (program and arguments), if the tests run under one.
pub fn runner() -> Option<String> {
    std::env::var("GREENLET_TEST_RUNNER")
        .ok()
        .filter(|r| !r.trim().is_empty())
}

/// The runner if it is qemu-user, for the few checks that cannot hold
/// under an emulator; a test that skips one says why on stderr.
pub fn qemu() -> Option<String> {
    runner().filter(|r| r.contains("qemu"))
}

/// Says on stderr, past the test harness's capture (so it shows when the
/// test passes), that `what` was skipped and why.
pub fn skipped(what: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED {what}: {why}");
}

/// A command that runs `program`, a binary built for the target, through the
/// runner if there is one.
pub fn target_command(program: impl AsRef<OsStr>) -> Command {
    match runner() {
        Some(r) => {
            let mut words = r.split_whitespace();
            let mut cmd = Command::new(words.next().expect("non-empty runner"));
            cmd.args(words).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// This test binary, run again (through the runner if there is one).
pub fn this_test_binary() -> Command {
    target_command(std::env::current_exe().expect("test binary path"))
}

/// Runs the ignored test `name` of this test binary alone, in a process of
/// its own (for a test that changes process-wide state: an fd limit, a
/// fork, a crash), with `envs` set. A child that has not exited after 60 s
/// is killed: a hang fails the test instead of hanging the run.
pub fn run_ignored_test(name: &str, envs: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = this_test_binary();
    cmd.args([
        "--ignored",
        "--exact",
        "--nocapture",
        "--test-threads=1",
        name,
    ]);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the test binary again");
    let t0 = std::time::Instant::now();
    while child.try_wait().expect("the child's status").is_none() {
        if t0.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.wait_with_output().expect("the child's output")
}

/// [`run_ignored_test`], asserting that the test passed; returns its
/// stderr.
pub fn assert_ignored_test_passes(name: &str, envs: &[(&str, &str)]) -> String {
    let out = run_ignored_test(name, envs);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} did not pass in its own process (or did not exit within 60 s): {:?}\n{stdout}\n{stderr}",
        out.status
    );
    stderr
}

/// Reads from `r` until at least `n` bytes came (panics at EOF before).
pub fn read_at_least(mut r: impl std::io::Read, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 100];
    while got.len() < n {
        let k = r.read(&mut buf).expect("read");
        assert!(k > 0, "EOF after {got:?}");
        got.extend_from_slice(&buf[..k]);
    }
    got
}

/// Lowers this process's fd limit to `headroom` above the fds open now,
/// then opens `/dev/null` until the limit is reached; the files returned
/// hold every fd left. Only for a test in a process of its own.
pub fn use_up_fds(headroom: u64) -> Vec<std::fs::File> {
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let limit = libc::rlimit {
        rlim_cur: open + headroom,
        rlim_max: open + headroom,
    };
    // SAFETY: setrlimit reads the struct we pass.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let mut files = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => files.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                return files;
            }
        }
    }
}

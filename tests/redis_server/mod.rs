//! A `redis-server` of the test's own on a free loopback port, for the tests
//! that drive the unmodified `redis` crate. Without `redis-server` a test
//! says so loudly (on stderr, past the harness's capture) and skips, except
//! under CI (`CI=true`, where `.ci/run` installs it), where it fails.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server process, killed when the test ends.
pub struct RedisServer(Child);

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `redis-server` and waits until it listens; `None` (after saying
/// why) when it cannot be started outside CI.
pub fn start_redis(test: &str) -> Option<(RedisServer, u16)> {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let server = match child {
        Ok(c) => RedisServer(c),
        Err(e) => {
            let why = format!(
                "redis-server could not be started ({e}); install Debian's `redis-server` \
                 to run this test"
            );
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true" || v == "1"),
                "{test}: {why} (.ci/run installs it under CI=true)"
            );
            let _ = writeln!(std::io::stderr(), "\nSKIPPED {test}: {why}\n");
            return None;
        }
    };
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "redis-server did not start listening"
        );
        greenlet::sleep(Duration::from_millis(20)).unwrap();
    }
    Some((server, port))
}

//! The blocking monitor. Its reports are `log` warnings; each case runs in a
//! child process with `GREENLET_MAX_BLOCKING_MS` set (the variable turns the
//! monitor on for every hub of the process) and the capturing test logger
//! installed, and checks there what was logged.
use std::time::{Duration, Instant};

mod capture_log;
mod support;

/// Runs the ignored test `name` in a child process and checks that it
/// passed.
fn child(name: &str, limit_ms: &str) {
    let out = support::this_test_binary()
        .args(["--ignored", "--exact", "--nocapture", name])
        .env("GREENLET_MAX_BLOCKING_MS", limit_ms)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {name} failed:\n{stdout}\n{stderr}"
    );
}

#[test]
fn a_greenlet_busy_for_300ms_with_a_100ms_limit_is_reported_once_by_name() {
    child("child_busy_greenlet", "100");
}

#[test]
#[ignore = "run in its own process by a_greenlet_busy_for_300ms_with_a_100ms_limit_is_reported_once_by_name"]
fn child_busy_greenlet() {
    capture_log::install();
    let g = greenlet::Builder::new()
        .name("cruncher")
        .spawn(|| {
            let until = Instant::now() + Duration::from_millis(300);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    g.join().unwrap();
    // Idle afterwards: waiting is not blocking, nothing more is reported.
    greenlet::sleep(Duration::from_millis(250)).unwrap();
    let reports = capture_log::records("greenlet_runtime::monitor");
    assert_eq!(
        reports.len(),
        1,
        "exactly one report per episode: {reports:?}"
    );
    let r = &reports[0];
    assert_eq!(r.level, log::Level::Warn, "{r:?}");
    let thread = std::thread::current().name().unwrap().to_string();
    assert!(
        r.message.contains(&format!(
            "the hub of thread '{thread}' has been blocked for"
        )),
        "{r:?}"
    );
    assert!(r.message.contains("greenlet 'cruncher'"), "{r:?}");
    assert!(r.message.contains("spawned at tests/monitor.rs"), "{r:?}");
}

#[test]
fn an_idle_or_busy_but_yielding_hub_is_not_reported() {
    child("child_quiet", "50");
}

#[test]
#[ignore = "run in its own process by an_idle_or_busy_but_yielding_hub_is_not_reported"]
fn child_quiet() {
    capture_log::install();
    greenlet::sleep(Duration::from_millis(200)).unwrap();
    let until = Instant::now() + Duration::from_millis(200);
    while Instant::now() < until {
        greenlet::yield_now();
    }
    let reports = capture_log::records("greenlet_runtime::monitor");
    assert!(reports.is_empty(), "{reports:?}");
}

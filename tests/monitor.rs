//! The blocking monitor. Reports go to stderr, so each case runs in a child
//! process with `GREENLET_MAX_BLOCKING_MS` set.
use std::process::Command;

fn child(name: &str, limit_ms: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--ignored", "--exact", "--nocapture", name])
        .env("GREENLET_MAX_BLOCKING_MS", limit_ms)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {name} failed:\n{stdout}\n{stderr}"
    );
    stderr
}

#[test]
fn a_greenlet_busy_for_300ms_with_a_100ms_limit_is_reported_once_by_name() {
    let stderr = child("child_busy_greenlet", "100");
    let reports: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("greenlet monitor:"))
        .collect();
    assert_eq!(reports.len(), 1, "exactly one report per episode: {stderr}");
    let r = reports[0];
    assert!(r.contains("greenlet 'cruncher'"), "{r}");
    assert!(r.contains("spawned at tests/monitor.rs"), "{r}");
}

#[test]
#[ignore = "run in its own process by a_greenlet_busy_for_300ms_with_a_100ms_limit_is_reported_once_by_name"]
fn child_busy_greenlet() {
    let g = greenlet::Builder::new()
        .name("cruncher")
        .spawn(|| {
            let until = std::time::Instant::now() + std::time::Duration::from_millis(300);
            while std::time::Instant::now() < until {
                std::hint::spin_loop();
            }
        })
        .unwrap();
    g.join().unwrap();
    // Idle afterwards: waiting is not blocking, nothing more is reported.
    greenlet::sleep(std::time::Duration::from_millis(250)).unwrap();
}

#[test]
fn an_idle_or_busy_but_yielding_hub_is_not_reported() {
    let stderr = child("child_quiet", "50");
    assert!(!stderr.contains("greenlet monitor:"), "{stderr}");
}

#[test]
#[ignore = "run in its own process by an_idle_or_busy_but_yielding_hub_is_not_reported"]
fn child_quiet() {
    greenlet::sleep(std::time::Duration::from_millis(200)).unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_millis(200);
    while std::time::Instant::now() < until {
        greenlet::yield_now();
    }
}

//! What the integration tests that start processes share: running a binary
//! built for the target the way cargo runs the tests themselves.
//!
//! `.ci/run` tests aarch64 builds on an x86-64 machine under qemu-user: cargo
//! starts each test binary through the runner, but a test that starts a
//! binary itself (its own executable for a crash in a child, an example)
//! must do the same, as the kernel cannot execute it directly. `.ci/run`
//! names the runner in `GREENLET_TEST_RUNNER`; unset, binaries run directly.
#![allow(dead_code)] // each test file uses what it needs

use std::ffi::OsStr;
use std::process::Command;

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

//! A test logger: keeps every record the library logs through the `log`
//! facade, so a test can assert on what was reported (level, target,
//! message). Each record is also echoed to stderr, so a failing test shows
//! them. One logger per process: tests that assert on records run in a
//! child process of their own, or filter by something only they log.
#![allow(dead_code)] // each test file uses a different subset

use std::sync::{Mutex, Once};

/// One logged record.
#[derive(Clone, Debug)]
pub struct Record {
    pub level: log::Level,
    pub target: String,
    pub message: String,
}

struct Capture(Mutex<Vec<Record>>);

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, r: &log::Record) {
        eprintln!("[{} {}] {}", r.level(), r.target(), r.args());
        let rec = Record {
            level: r.level(),
            target: r.target().to_string(),
            message: r.args().to_string(),
        };
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(rec);
    }

    fn flush(&self) {}
}

/// Installs the capturing logger for this process; later calls do nothing.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&CAPTURE).expect("no other logger is installed");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// The records logged so far whose target starts with `target`.
pub fn records(target: &str) -> Vec<Record> {
    CAPTURE
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|r| r.target.starts_with(target))
        .cloned()
        .collect()
}

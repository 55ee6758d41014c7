//! What the examples share: a logger, `--name value` flags and positional
//! words (with a usage line printed on error), and stopping on Ctrl-C.
#![allow(dead_code)] // each example uses a different subset

use std::str::FromStr;
use std::time::Duration;

pub struct Args {
    words: Vec<String>,
    usage: &'static str,
}

impl Args {
    /// The process's arguments; `usage` is printed on a bad one.
    pub fn parse(usage: &'static str) -> Args {
        let words: Vec<String> = std::env::args().skip(1).collect();
        if words.iter().any(|w| w == "-h" || w == "--help") {
            println!("usage: {usage}");
            std::process::exit(0);
        }
        Args { words, usage }
    }

    fn fail(&self, msg: &str) -> ! {
        eprintln!("{msg}\nusage: {}", self.usage);
        std::process::exit(2)
    }

    /// The value after `--name`, parsed, or `default`.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> T {
        self.opt(name).unwrap_or(default)
    }

    /// The value after `--name`, parsed, if given.
    pub fn opt<T: FromStr>(&self, name: &str) -> Option<T> {
        let i = self.words.iter().position(|w| w == name)?;
        match self.words.get(i + 1).map(|v| v.replace('_', "").parse()) {
            Some(Ok(v)) => Some(v),
            _ => self.fail(&format!("{name} needs a valid value")),
        }
    }

    /// `--name SECONDS` (fractions allowed) as a duration.
    pub fn seconds(&self, name: &str, default: f64) -> Duration {
        Duration::from_secs_f64(self.get(name, default))
    }

    /// Whether `--name` is present.
    pub fn flag(&self, name: &str) -> bool {
        self.words.iter().any(|w| w == name)
    }

    /// The `n`th word that is neither a flag nor a flag's value.
    pub fn positional(&self, n: usize) -> Option<&str> {
        let mut skip = false;
        self.words
            .iter()
            .filter(|w| {
                if skip {
                    skip = false;
                    return false;
                }
                if w.starts_with("--") {
                    skip = !matches!(w.as_str(), "--quiet" | "--million");
                    return false;
                }
                true
            })
            .nth(n)
            .map(String::as_str)
    }
}

/// Stops `stop` on Ctrl-C (SIGINT) or SIGTERM; keep the handles alive.
pub fn on_terminate(stop: impl Fn() + Clone + 'static) -> Vec<greenlet::signal::SignalHandler> {
    [greenlet::signal::SIGINT, greenlet::signal::SIGTERM]
        .into_iter()
        .map(|sig| {
            let stop = stop.clone();
            greenlet::signal::signal(sig, stop).expect("install a signal handler")
        })
        .collect()
}

/// Installs a small logger: the library reports through the `log` facade
/// (the blocking monitor, a server's accept errors, ...), and an
/// application decides where that goes. This one prints each record to
/// stderr as `[LEVEL target] message`, at the level named by `RUST_LOG`
/// (`error`, `warn`, `info`, `debug`, `trace` or `off`; `info` if unset).
/// A real application might use `env_logger` or its own logging instead.
pub fn init_log() {
    struct Stderr;
    impl log::Log for Stderr {
        fn enabled(&self, m: &log::Metadata) -> bool {
            m.level() <= log::max_level()
        }
        fn log(&self, r: &log::Record) {
            if self.enabled(r.metadata()) {
                eprintln!("[{} {}] {}", r.level(), r.target(), r.args());
            }
        }
        fn flush(&self) {}
    }
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(log::LevelFilter::Info);
    if log::set_logger(&Stderr).is_ok() {
        log::set_max_level(level);
    }
}

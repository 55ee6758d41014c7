//! greenlet-bench: greenlet side by side with its peers, in one run.
//!
//! ```text
//! cargo run --release -p greenlet-bench -- all|micro|echo|memory [--out FILE] [--quick]
//! ```
//!
//! - `micro`: scheduler hot paths against tokio (current_thread + LocalSet)
//!   and may (one worker);
//! - `memory`: RSS per parked task at 10k, 100k and 1M, against tokio tasks,
//!   may coroutines and OS threads, each count in a child process of its own;
//! - `echo`: a pinned load generator against five echo servers (greenlet,
//!   tokio, may, thread per connection, raw epoll), each a pinned child
//!   process: req/s, latency, server CPU and syscalls per request;
//! - `all`: the three, one after another.
//!
//! Each prints markdown tables (median, min and max of repeated runs, and
//! the ratio greenlet/peer) and writes them to `target/bench-results.md`
//! (or `--out FILE`). `--quick` shrinks every run, for a smoke test; its
//! figures are not the benchmark's.
//!
//! Hidden subcommands, used by the suites to isolate what they measure:
//! `serve <kind> <port>` (an echo server, `port` 0 for any),
//! `mem-child <kind> <count>` (parks `count` tasks and reports RSS) and
//! `micro-child <impl> <row> <scale>` (one micro figure); and
//! for profiling, `micro-loop <bench> <seconds>` (one greenlet
//! micro-benchmark in a loop, under `perf record`).
//!
//! Linux only: its baselines are a raw epoll server, it pins processes to
//! CPUs (`sched_setaffinity`) and reads `/proc`. Elsewhere it builds (so
//! the workspace checks on every supported target) and says so when run.

#[cfg(target_os = "linux")]
mod echo;
#[cfg(target_os = "linux")]
mod memory;
#[cfg(target_os = "linux")]
mod micro;
#[cfg(target_os = "linux")]
mod sys;
#[cfg(target_os = "linux")]
mod table;

#[cfg(target_os = "linux")]
use std::io::Write as _;
#[cfg(target_os = "linux")]
use std::path::PathBuf;
#[cfg(target_os = "linux")]
use std::time::Instant;

#[cfg(target_os = "linux")]
use table::Table;

#[cfg(target_os = "linux")]
const USAGE: &str = "usage: greenlet-bench all|micro|echo|memory [--out FILE] [--quick]";

#[cfg(target_os = "linux")]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => {
            let kind = args.get(1).map(String::as_str).unwrap_or("");
            let port: u16 = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(0);
            std::process::exit(echo::serve(kind, port));
        }
        // Hidden, for profiling a server by hand: `load <port> <conns>
        // <bytes> <secs>` drives 127.0.0.1:<port> from CPU 1 as the echo
        // suite does and prints the requests served.
        Some("load") => {
            let num = |i: usize| args.get(i).and_then(|p| p.parse::<u64>().ok());
            let (Some(port), Some(conns), Some(size), Some(secs)) =
                (num(1), num(2), num(3), num(4))
            else {
                eprintln!("usage: greenlet-bench load <port> <conns> <bytes> <secs>");
                std::process::exit(2);
            };
            std::process::exit(echo::load(port as u16, conns as usize, size as usize, secs));
        }
        Some("micro-loop") => {
            let bench = args.get(1).map(String::as_str).unwrap_or("");
            let secs: f64 = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(5.0);
            std::process::exit(micro::profile_loop(bench, secs));
        }
        Some("micro-child") => {
            let imp = args.get(1).map(String::as_str).unwrap_or("");
            let row: usize = args
                .get(2)
                .and_then(|p| p.parse().ok())
                .unwrap_or(usize::MAX);
            let scale: u64 = args.get(3).and_then(|p| p.parse().ok()).unwrap_or(1);
            std::process::exit(micro::child(imp, row, scale));
        }
        Some("mem-child") => {
            let kind = args.get(1).map(String::as_str).unwrap_or("");
            let count: usize = args.get(2).and_then(|p| p.parse().ok()).unwrap_or(0);
            std::process::exit(memory::child(kind, count));
        }
        _ => {}
    }

    let mut suite = None;
    let mut out = None;
    let mut quick = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "all" | "micro" | "echo" | "memory" if suite.is_none() => suite = Some(a.clone()),
            "--out" => out = it.next().map(PathBuf::from),
            "--quick" => quick = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            _ => {
                eprintln!("{USAGE}");
                std::process::exit(2);
            }
        }
    }
    let suite = suite.unwrap_or_else(|| "all".into());
    let out = out.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-results.md")
    });

    let t0 = Instant::now();
    let header = format!(
        "# greenlet-bench results\n\n\
         - command: `cargo run --release -p greenlet-bench -- {suite}{}`\n\
         - machine: {}\n\
         - greenlet commit: {}\n\
         - load average (1 min) at start: {}\n",
        if quick { " --quick" } else { "" },
        sys::machine(),
        git_rev(),
        sys::loadavg()
    );
    println!("{header}");
    let mut doc = header.clone();
    let mut emit = |t: Table| {
        let md = t.markdown();
        println!("{md}");
        doc.push('\n');
        doc.push_str(&md);
        let _ = std::io::stdout().flush();
    };
    let all = suite == "all";
    if all || suite == "micro" {
        eprintln!("running micro ...");
        emit(micro::run(if quick { 20 } else { 1 }));
    }
    if all || suite == "memory" {
        eprintln!("running memory ...");
        emit(memory::run(quick));
    }
    if all || suite == "echo" {
        eprintln!("running echo ...");
        for t in echo::run(quick) {
            emit(t);
        }
    }
    let footer = format!(
        "\nTotal run time: {:.0} s; load average (1 min) at the end: {}.\n",
        t0.elapsed().as_secs_f64(),
        sys::loadavg()
    );
    println!("{footer}");
    doc.push_str(&footer);
    match std::fs::write(&out, &doc) {
        Ok(()) => println!(
            "wrote {}",
            out.canonicalize().unwrap_or(out.clone()).display()
        ),
        Err(e) => eprintln!("could not write {}: {e}", out.display()),
    }
}

/// The commit of the working tree the bench was run from (with "+dirty" if
/// it has changes), or "unknown".
#[cfg(target_os = "linux")]
fn git_rev() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(["-C", dir])
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short", "HEAD"]) {
        Some(rev) => {
            let dirty = run(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            format!(
                "{rev}{}",
                if dirty {
                    " (+ uncommitted changes)"
                } else {
                    ""
                }
            )
        }
        None => "unknown".into(),
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!(
        "greenlet-bench runs on Linux only: its baselines are a raw epoll server, \
         CPU pinning (sched_setaffinity) and /proc figures"
    );
    std::process::exit(2);
}

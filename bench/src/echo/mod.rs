//! The echo suite: a load generator pinned to CPU 1 drives, one after
//! another, five echo servers, each a child process pinned to CPU 0
//! (`serve <kind> <port>`): greenlet, tokio current_thread, may with one
//! worker, a thread per connection, and a raw level-triggered epoll loop
//! (the physical bound on one core).
//!
//! Grid: 64 B and 4 KiB messages × 1, 50 and 500 connections, ping-pong.
//! Per cell and server: req/s, p50/p99 latency and the server's user and
//! system CPU time per request (from `/proc/PID/stat` at each window
//! boundary), each the median (min–max) of [`WINDOWS`] consecutive windows
//! of continuous load; then syscalls per request, counted over a separate
//! short burst (see [`syscalls`]).

mod client;
mod servers;
mod stats;
mod syscalls;

use std::net::SocketAddr;
use std::time::Duration;

pub use servers::serve;
use servers::KINDS;

use crate::sys::{self, ChildGuard};
use crate::table::{Better, Cell, Figure, Row, Table};
use stats::{percentile, Histogram};

/// Message sizes of the grid.
const SIZES: [usize; 2] = [64, 4096];
/// Connection counts of the grid.
const CONNS: [usize; 3] = [1, 50, 500];
/// Measured windows per cell.
const WINDOWS: usize = 5;
/// Length of each window.
const WINDOW: Duration = Duration::from_secs(1);
/// Load before the first window (connections warm, server steady).
const WARMUP: Duration = Duration::from_millis(500);
/// The burst whose syscalls are counted.
const BURST: Duration = Duration::from_millis(1000);
/// Before each server's run the suite waits for CPUs 0 and 1 to be idle
/// (other processes done), at most this long ...
const QUIET_WAIT: Duration = Duration::from_secs(10);
/// ... and at most this long over the whole suite.
const QUIET_BUDGET: Duration = Duration::from_secs(60);

/// Everything measured for one server in one grid cell.
struct Measured {
    rps: Figure,
    p50: Figure,
    p99: Figure,
    p999: Figure,
    max: Figure,
    /// Every window's latencies together.
    hist: Histogram,
    /// Requests per connection per window: fewest, median and most (each
    /// the median over the windows).
    fair: Option<(f64, f64, f64)>,
    user: Figure,
    sys: Figure,
    cpu: Figure,
    server_busy: Figure,
    client_busy: Figure,
    other_busy: Figure,
    set_aside: usize,
    syscalls: Result<syscalls::Counts, String>,
}

/// A running server child.
struct Server {
    child: ChildGuard,
    addr: SocketAddr,
}

fn start_server(kind: &str) -> Result<Server, String> {
    let cmd = sys::self_command(&["serve", kind, "0"]).map_err(|e| e.to_string())?;
    let mut child = sys::spawn_guarded(cmd, true).map_err(|e| format!("spawn: {e}"))?;
    let line = child
        .read_line(Duration::from_secs(10))
        .map_err(|e| format!("{kind} server did not start: {e}"))?;
    let addr = line
        .strip_prefix("listening ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("{kind} server said {line:?}"))?;
    Ok(Server { child, addr })
}

struct Plan {
    warmup: Duration,
    windows: usize,
    window: Duration,
    burst: Duration,
}

fn measure(
    srv: &Server,
    size: usize,
    conns: usize,
    tool: &syscalls::Tool,
    plan: &Plan,
) -> Result<Measured, String> {
    let pid = srv.child.pid();
    let mut load = client::Load::connect(srv.addr, conns, size)
        .map_err(|e| format!("connect {conns}: {e}"))?;
    let (ws, set_aside) = load.windows(pid, plan.warmup, plan.windows, plan.window)?;
    let fig = |f: &dyn Fn(&client::Window) -> f64| {
        Figure::of(&ws.iter().map(f).collect::<Vec<_>>()).ok_or("no window".to_string())
    };
    // Per window: p50, p99, p99.9, max (µs).
    let mut lat: Vec<[f64; 4]> = Vec::new();
    let mut hist = Histogram::new();
    let mut fair = Vec::new();
    for w in &ws {
        let mut l = w.served.lat.clone();
        l.sort_unstable();
        hist.add(&l);
        lat.push([0.50, 0.99, 0.999, 1.0].map(|p| percentile(&l, p) / 1e3));
        fair.extend(stats::fairness(&w.served.per_conn));
    }
    let lat_fig =
        |i: usize| Figure::of(&lat.iter().map(|l| l[i]).collect::<Vec<_>>()).ok_or("no latency");
    let fair_median = |f: &dyn Fn(&(f64, f64, f64)) -> f64| {
        Figure::of(&fair.iter().map(f).collect::<Vec<_>>()).map(|f| f.median)
    };
    let per_req = |w: &client::Window, s: f64| {
        if w.served.reqs == 0 {
            f64::NAN
        } else {
            s / w.served.reqs as f64 * 1e6
        }
    };
    let m = Measured {
        rps: fig(&|w| w.served.reqs as f64 / w.secs)?,
        p50: lat_fig(0)?,
        p99: lat_fig(1)?,
        p999: lat_fig(2)?,
        max: lat_fig(3)?,
        hist,
        fair: fair_median(&|f| f.0)
            .zip(fair_median(&|f| f.1))
            .zip(fair_median(&|f| f.2))
            .map(|((a, b), c)| (a, b, c)),
        user: fig(&|w| per_req(w, w.cpu.0))?,
        sys: fig(&|w| per_req(w, w.cpu.1))?,
        cpu: fig(&|w| per_req(w, w.cpu.0 + w.cpu.1))?,
        server_busy: fig(&|w| (w.cpu.0 + w.cpu.1) / w.secs * 100.0)?,
        client_busy: fig(&|w| w.client_cpu / w.secs * 100.0)?,
        other_busy: fig(&|w| w.other_cpu / w.secs * 100.0)?,
        set_aside,
        syscalls: syscalls::count(tool, pid, &mut load, plan.burst),
    };
    Ok(m)
}

/// The hidden `load` subcommand: ping-pong load on `conns` connections to
/// a server already listening on 127.0.0.1:`port`, for `secs` seconds,
/// from CPU 1. Prints the requests served, their latency percentiles and
/// histogram and the fairness figure. Returns the exit code.
pub fn load(port: u16, conns: usize, size: usize, secs: u64) -> i32 {
    raise_fd_limit();
    let _ = crate::sys::pin_to_cpu(1);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let result = client::Load::connect(addr, conns, size)
        .map_err(|e| e.to_string())
        .and_then(|mut l| l.burst(Duration::from_secs(secs), true));
    let mut served = match result {
        Ok(s) => s,
        Err(e) => {
            eprintln!("load: {e}");
            return 1;
        }
    };
    let reqs = served.reqs;
    println!("{reqs} requests in {secs} s = {} req/s", reqs / secs.max(1));
    served.lat.sort_unstable();
    let us = |p: f64| percentile(&served.lat, p) / 1e3;
    println!(
        "latency µs: p50 {:.0}  p99 {:.0}  p99.9 {:.0}  max {:.0}",
        us(0.5),
        us(0.99),
        us(0.999),
        us(1.0)
    );
    if let Some((lo, med, hi)) = stats::fairness(&served.per_conn) {
        println!("requests per connection: min {lo:.0}  median {med:.0}  max {hi:.0}");
    }
    let mut hist = Histogram::new();
    hist.add(&served.lat);
    for r in stats::histogram_rows(&[Ok(&hist)]) {
        if let Some(crate::table::Cell::Text(t)) = r.cells.first() {
            println!("  {:>14}  {t}", r.label);
        }
    }
    0
}

/// Which cells get a latency histogram table: `GREENLET_BENCH_HISTOGRAMS`
/// = `all` (every cell), `none`, or unset (the largest connection count).
fn histogram_wanted(conns: usize) -> bool {
    match std::env::var("GREENLET_BENCH_HISTOGRAMS").as_deref() {
        Ok("all") => true,
        Ok("none") => false,
        _ => conns == CONNS[CONNS.len() - 1],
    }
}

/// Runs the echo suite; returns one table per message size, then the
/// latency histograms (see [`histogram_wanted`]).
pub fn run(quick: bool) -> Vec<Table> {
    let plan = if quick {
        Plan {
            warmup: Duration::from_millis(100),
            windows: 2,
            window: Duration::from_millis(200),
            burst: Duration::from_millis(200),
        }
    } else {
        Plan {
            warmup: WARMUP,
            windows: WINDOWS,
            window: WINDOW,
            burst: BURST,
        }
    };
    raise_fd_limit();
    let (_pin, pin_err) = if sys::online_cpus() >= 2 {
        sys::AffinityGuard::pin(1)
    } else {
        (
            sys::AffinityGuard::pin(0).0,
            Some("one CPU only: client and servers share it".into()),
        )
    };
    let tool = syscalls::detect();
    // results[kind][size][conns]
    let mut results: Vec<Vec<Vec<Result<Measured, String>>>> = KINDS
        .iter()
        .map(|_| SIZES.iter().map(|_| Vec::new()).collect())
        .collect();
    // Cell by cell, every server in turn, each a fresh process, in an
    // order rotated from cell to cell: no server always runs first or
    // last, and drift over the run (sockets in TIME_WAIT, a warming
    // machine) spreads over all of them.
    let mut cell = 0;
    let mut quiet_budget = if quick { Duration::ZERO } else { QUIET_BUDGET };
    let mut quiet_waited = Duration::ZERO;
    for (si, &size) in SIZES.iter().enumerate() {
        for &conns in &CONNS {
            for k in 0..KINDS.len() {
                let ki = (k + cell) % KINDS.len();
                let kind = KINDS[ki];
                eprintln!("  echo: {size} B x {conns} conn: {kind}");
                if quiet_budget > Duration::ZERO {
                    let waited = sys::wait_quiet(quiet_budget.min(QUIET_WAIT));
                    quiet_budget = quiet_budget.saturating_sub(waited);
                    quiet_waited += waited;
                }
                let r = start_server(kind).and_then(|srv| {
                    let r = measure(&srv, size, conns, &tool, &plan);
                    drop(srv); // kills and reaps the child
                    r
                });
                if let Err(e) = &r {
                    eprintln!("    failed: {e}");
                }
                results[ki][si].push(r);
                // Let closed connections finish before the next server.
                std::thread::sleep(Duration::from_millis(100));
            }
            cell += 1;
        }
    }
    let mut tables = Vec::new();
    for (si, &size) in SIZES.iter().enumerate() {
        let mut rows = Vec::new();
        for (ci, &conns) in CONNS.iter().enumerate() {
            let cells = |f: &dyn Fn(&Measured) -> Cell| -> Vec<Cell> {
                results
                    .iter()
                    .map(|per_size| match &per_size[si][ci] {
                        Ok(m) => f(m),
                        Err(e) => Cell::Na(short(e)),
                    })
                    .collect()
            };
            let c = if conns == 1 { "conn" } else { "conns" };
            let mut add =
                |what: &str, unit: &'static str, better, f: &dyn Fn(&Measured) -> Cell| {
                    rows.push(Row {
                        label: format!("{conns} {c}: {what}"),
                        unit,
                        better,
                        cells: cells(f),
                    })
                };
            add("throughput", "req/s", Better::Higher, &|m| Cell::Fig(m.rps));
            add("latency p50", "µs", Better::Lower, &|m| Cell::Fig(m.p50));
            add("latency p99", "µs", Better::Lower, &|m| Cell::Fig(m.p99));
            add("latency p99.9", "µs", Better::Lower, &|m| {
                Cell::Fig(m.p999)
            });
            add("latency max", "µs", Better::Lower, &|m| Cell::Fig(m.max));
            if conns > 1 {
                add(
                    "req per conn per window: min / median / max",
                    "req",
                    Better::Info,
                    &|m| match m.fair {
                        Some((lo, med, hi)) => Cell::Text(format!("{lo:.0} / {med:.0} / {hi:.0}")),
                        None => Cell::Na("no window".into()),
                    },
                );
            }
            add("server user CPU", "µs/req", Better::Lower, &|m| {
                Cell::Fig(m.user)
            });
            add("server sys CPU", "µs/req", Better::Lower, &|m| {
                Cell::Fig(m.sys)
            });
            add("server CPU total", "µs/req", Better::Lower, &|m| {
                Cell::Fig(m.cpu)
            });
            add("syscalls", "/req", Better::Lower, &|m| match &m.syscalls {
                Ok(s) if s.reqs > 0 => {
                    let r = s.reqs as f64;
                    let other = (s.total - s.recv - s.send - s.poll).max(0.0);
                    let mut parts =
                        format!("[{:.2}+{:.2}+{:.2}", s.recv / r, s.send / r, s.poll / r);
                    if other / r >= 0.005 {
                        parts.push_str(&format!("+{:.2}o", other / r));
                    }
                    parts.push(']');
                    Cell::FigNote(Figure::single(s.total / r), parts)
                }
                Ok(_) => Cell::Na("no request in the burst".into()),
                Err(e) => Cell::Na(short(e)),
            });
            add(
                "core use: server / load-gen / other",
                "%",
                Better::Info,
                &|m| {
                    let mut t = format!(
                        "{:.0} / {:.0} / {:.0}",
                        m.server_busy.median, m.client_busy.median, m.other_busy.median
                    );
                    if m.set_aside > 0 {
                        t.push_str(&format!(" ({} noisy set aside)", m.set_aside));
                    }
                    Cell::Text(t)
                },
            );
        }
        let mut notes = vec![
            format!(
                "Ping-pong: each connection sends {size} B and waits for the whole echo before \
                 sending again. Figures are the median (min–max) of {} consecutive windows of {:.1} s \
                 of continuous load (after {:.1} s of warm-up); syscalls are counted over a separate \
                 {:.1} s burst. Ratio = greenlet / peer: for req/s above 1.00× is better for \
                 greenlet, for every cost below 1.00× is.",
                plan.windows,
                plan.window.as_secs_f64(),
                plan.warmup.as_secs_f64(),
                plan.burst.as_secs_f64()
            ),
            "Servers run one at a time, each a fresh child process pinned to CPU 0, every server \
             in turn for each cell (order rotated from cell to cell); the load generator \
             (one thread, edge-triggered epoll over blocking-free std sockets) is pinned to CPU 1. \
             Server CPU time is utime/stime of /proc/PID/stat (all threads), read at each window \
             boundary: the total is the kernel's exact runtime (reported in 10 ms units), but its \
             user/system split is sampled at each scheduler tick, so a small user share (a few % \
             of the core) carries tens of % of noise per window."
                .into(),
            "Latency: per window its p50, p99, p99.9 and max (the slowest request), then the \
             median (min–max) over the windows. Requests per connection per window: how many \
             requests the connection that got the fewest, the median one and the one that got \
             the most completed in a window (each the median over the windows); in ping-pong a \
             connection starved by the server shows as a low min."
                .into(),
            "Syscalls per request: total [recv-type + send-type + epoll_wait-type (+ o: \
             others)]; recv-type = read/recvfrom/recvmsg/readv, send-type = \
             write/sendto/sendmsg/writev."
                .into(),
            match &tool {
                syscalls::Tool::Perf(_) => "Syscalls: `perf stat -e raw_syscalls:sys_enter` (and per-syscall \
                     tracepoints for the breakdown) attached to the server and enabled exactly \
                     around the burst through perf's control fifo; the burst starts and ends with \
                     every connection idle, so its requests are exactly those served."
                    .to_string(),
                syscalls::Tool::Strace => "Syscalls: `strace -f -c -p PID` over the burst (perf is \
                     not usable here); strace slows the server, which can change how many events \
                     one epoll_wait returns."
                    .to_string(),
                syscalls::Tool::None(why) => format!("Syscalls not counted: {why}."),
            },
            format!(
                "Core use: server CPU time / wall time, the load generator's, and the rest of CPUs \
                 0 and 1's busy time (other processes, kernel work accounted to neither), per \
                 window (median), in % of one core. A server below 100% is waiting on the load \
                 generator or on latency. A window with \"other\" above {:.0}% is set aside and \
                 replaced (up to as many extra windows); before each server's run the suite waited \
                 for idle CPUs ({:.0} s in all). A large \"other\" means the machine was not quiet \
                 and the cell is noisy.",
                client::NOISY * 100.0,
                quiet_waited.as_secs_f64()
            ),
            "greenlet server: `greenlet::net::StreamServer` with the handler of \
             examples/echo_server.rs (blocking-style `read` + `write_all`), one greenlet per \
             connection. Every server reads into a 16 KiB buffer and sets TCP_NODELAY."
                .into(),
        ];
        if let Some(e) = &pin_err {
            notes.push(format!("not pinned as intended: {e}"));
        }
        tables.push(Table {
            title: format!("echo, {} messages", size_text(size)),
            columns: KINDS.to_vec(),
            rows,
            notes,
        });
    }
    for (si, &size) in SIZES.iter().enumerate() {
        for (ci, &conns) in CONNS.iter().enumerate() {
            if !histogram_wanted(conns) {
                continue;
            }
            let hists: Vec<Result<&Histogram, String>> = results
                .iter()
                .map(|per_size| match &per_size[si][ci] {
                    Ok(m) => Ok(&m.hist),
                    Err(e) => Err(short(e)),
                })
                .collect();
            tables.push(Table {
                title: format!(
                    "echo, {} × {conns} conns: latency histogram",
                    size_text(size)
                ),
                columns: KINDS.to_vec(),
                rows: stats::histogram_rows(&hists),
                notes: vec![format!(
                    "Share of the requests of all {} windows whose latency fell in each \
                     bucket (1-2-5 log steps), and in brackets the cumulative share up to the \
                     bucket's upper edge. `GREENLET_BENCH_HISTOGRAMS=all` prints one for every \
                     cell, `=none` for none.",
                    plan.windows
                )],
            });
        }
    }
    tables
}

/// "64 B", "4 KiB".
fn size_text(size: usize) -> String {
    if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// Shortens an error for a table cell.
fn short(e: &str) -> String {
    let e = e.replace('|', "/");
    if e.chars().count() > 90 {
        format!("{}…", e.chars().take(90).collect::<String>())
    } else {
        e
    }
}

/// Raises the soft limit of open files to the hard limit: 500 connections
/// plus perf's per-thread counters of the thread-per-connection server
/// need more than the common default of 1024. Children inherit it.
fn raise_fd_limit() {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 && r.rlim_cur < r.rlim_max {
        r.rlim_cur = r.rlim_max;
        // SAFETY: `r` is a valid rlimit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) };
    }
}

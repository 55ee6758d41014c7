//! Counting a server's syscalls over a short load burst: `perf stat` on the
//! syscall tracepoints (enabled exactly around the burst through perf's
//! control fifo), else `strace -c -f`, else "n/a" with the reason.

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::client::Load;
use crate::sys::{self, ChildGuard};

/// Syscalls of the server during a burst, by kind.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    /// Every syscall.
    pub total: f64,
    /// `read`, `recvfrom`, `recvmsg`, `readv`.
    pub recv: f64,
    /// `write`, `sendto`, `sendmsg`, `writev`.
    pub send: f64,
    /// `epoll_wait`, `epoll_pwait`, `epoll_pwait2`.
    pub poll: f64,
    /// Requests completed in the burst.
    pub reqs: u64,
}

const RECV: [&str; 4] = ["read", "recvfrom", "recvmsg", "readv"];
const SEND: [&str; 4] = ["write", "sendto", "sendmsg", "writev"];
const POLL: [&str; 3] = ["epoll_wait", "epoll_pwait", "epoll_pwait2"];

/// Which tool this machine can count syscalls with, decided once.
#[derive(Clone, Debug)]
pub enum Tool {
    /// `perf stat` with these syscall tracepoints (besides the total).
    Perf(Vec<&'static str>),
    /// `strace -c -f`.
    Strace,
    /// Neither works; why.
    None(String),
}

fn tracefs() -> Option<PathBuf> {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("events/raw_syscalls").is_dir())
}

/// Picks the tool: perf if it can attach a syscall tracepoint to a process
/// here, else strace if installed, else none. `GREENLET_BENCH_SYSCALLS=perf`,
/// `strace` or `none` restricts the choice.
pub fn detect() -> Tool {
    let only = std::env::var("GREENLET_BENCH_SYSCALLS").unwrap_or_default();
    let mut why = Vec::new();
    if only == "none" {
        return Tool::None("GREENLET_BENCH_SYSCALLS=none".into());
    }
    if only == "strace" {
        why.push("perf not tried (GREENLET_BENCH_SYSCALLS=strace)".into());
    } else if sys::have_program("perf") {
        match tracefs() {
            Some(t) => {
                let names: Vec<&'static str> = RECV
                    .iter()
                    .chain(&SEND)
                    .chain(&POLL)
                    .copied()
                    .filter(|n| t.join(format!("events/syscalls/sys_enter_{n}")).is_dir())
                    .collect();
                match probe_perf() {
                    Ok(()) => return Tool::Perf(names),
                    Err(e) => why.push(format!("perf: {e}")),
                }
            }
            None => why.push("perf: no tracefs with raw_syscalls events".into()),
        }
    } else {
        why.push("perf not installed".into());
    }
    if only == "perf" {
        return Tool::None(why.join("; "));
    }
    if sys::have_program("strace") {
        return Tool::Strace;
    }
    why.push("strace not installed (apt-get install linux-perf strace)".into());
    Tool::None(why.join("; "))
}

/// Checks that `perf stat -e raw_syscalls:sys_enter` runs here.
fn probe_perf() -> Result<(), String> {
    let out = Command::new("perf")
        .args([
            "stat",
            "-x",
            ",",
            "-e",
            "raw_syscalls:sys_enter",
            "--",
            "true",
        ])
        .output()
        .map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() && err.contains("raw_syscalls:sys_enter") {
        Ok(())
    } else {
        Err(err.lines().next().unwrap_or("perf stat failed").to_string())
    }
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> io::Result<TempDir> {
        let p = std::env::temp_dir().join(format!(
            "greenlet-bench-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mkfifo(p: &Path) -> io::Result<()> {
    let c = CString::new(p.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    // SAFETY: `c` is a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opens a fifo read-write (never blocks, whoever opens the other end).
fn open_fifo(p: &Path) -> io::Result<std::fs::File> {
    let c = CString::new(p.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    // SAFETY: `c` is a valid NUL-terminated path.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Sends a command on perf's control fifo and waits for its "ack".
fn perf_command(ctl: &mut std::fs::File, ack: &mut std::fs::File, cmd: &str) -> Result<(), String> {
    ctl.write_all(format!("{cmd}\n").as_bytes())
        .map_err(|e| format!("perf control: {e}"))?;
    let mut p = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(ack),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is a valid pollfd array of length 1.
    if unsafe { libc::poll(&mut p, 1, 10_000) } <= 0 {
        return Err(format!("perf did not acknowledge {cmd:?} within 10 s"));
    }
    let mut b = [0u8; 64];
    let _ = ack.read(&mut b);
    Ok(())
}

/// Counts the syscalls of process `pid` while `load` runs a burst of
/// `len` (the connections are idle before and after).
pub fn count(tool: &Tool, pid: u32, load: &mut Load, len: Duration) -> Result<Counts, String> {
    match tool {
        Tool::Perf(names) => count_perf(names, pid, load, len),
        Tool::Strace => count_strace(pid, load, len),
        Tool::None(why) => Err(why.clone()),
    }
}

fn count_perf(
    names: &[&'static str],
    pid: u32,
    load: &mut Load,
    len: Duration,
) -> Result<Counts, String> {
    let dir = TempDir::new().map_err(|e| e.to_string())?;
    let (ctl_p, ack_p, out_p) = (dir.0.join("ctl"), dir.0.join("ack"), dir.0.join("out.csv"));
    mkfifo(&ctl_p).map_err(|e| format!("mkfifo: {e}"))?;
    mkfifo(&ack_p).map_err(|e| format!("mkfifo: {e}"))?;
    let mut ctl = open_fifo(&ctl_p).map_err(|e| e.to_string())?;
    let mut ack = open_fifo(&ack_p).map_err(|e| e.to_string())?;
    let mut events = vec!["raw_syscalls:sys_enter".to_string()];
    events.extend(names.iter().map(|n| format!("syscalls:sys_enter_{n}")));
    let mut cmd = Command::new("perf");
    cmd.args(["stat", "-x", ",", "--no-big-num", "-D", "-1", "--control"])
        .arg(format!("fifo:{},{}", ctl_p.display(), ack_p.display()))
        .arg("-e")
        .arg(events.join(","))
        .arg("-p")
        .arg(pid.to_string())
        .arg("-o")
        .arg(&out_p)
        .stderr(std::process::Stdio::null());
    let mut perf: ChildGuard = sys::spawn_guarded(cmd, false).map_err(|e| format!("perf: {e}"))?;
    perf_command(&mut ctl, &mut ack, "enable")?;
    let reqs = load.burst(len, false).map(|s| s.reqs);
    let disabled = perf_command(&mut ctl, &mut ack, "disable");
    perf.signal(libc::SIGINT);
    perf.wait_for(Duration::from_secs(10));
    drop(perf);
    let reqs = reqs?;
    disabled?;
    let text = std::fs::read_to_string(&out_p).map_err(|e| format!("perf output: {e}"))?;
    let mut c = Counts {
        reqs,
        ..Counts::default()
    };
    let mut saw_total = false;
    for line in text.lines() {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 3 {
            continue;
        }
        let v: f64 = match f[0].parse() {
            Ok(v) => v,
            Err(_) if f[0].contains("not counted") => 0.0,
            Err(_) => continue,
        };
        let ev = f[2];
        if ev == "raw_syscalls:sys_enter" {
            c.total = v;
            saw_total = true;
        } else if let Some(n) = ev.strip_prefix("syscalls:sys_enter_") {
            if RECV.contains(&n) {
                c.recv += v;
            } else if SEND.contains(&n) {
                c.send += v;
            } else if POLL.contains(&n) {
                c.poll += v;
            }
        }
    }
    if !saw_total || c.total == 0.0 {
        return Err(format!(
            "perf counted no syscalls: {}",
            text.lines().last().unwrap_or("")
        ));
    }
    Ok(c)
}

fn count_strace(pid: u32, load: &mut Load, len: Duration) -> Result<Counts, String> {
    let dir = TempDir::new().map_err(|e| e.to_string())?;
    let out_p = dir.0.join("strace.txt");
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-c", "-q", "-p"])
        .arg(pid.to_string())
        .arg("-o")
        .arg(&out_p)
        .stderr(std::process::Stdio::null());
    let mut st = sys::spawn_guarded(cmd, false).map_err(|e| format!("strace: {e}"))?;
    // strace has no "attached" signal for -c; give it time to attach to
    // every thread (the server is idle meanwhile).
    std::thread::sleep(Duration::from_millis(500));
    let reqs = load.burst(len, false).map(|s| s.reqs);
    std::thread::sleep(Duration::from_millis(50));
    st.signal(libc::SIGINT);
    st.wait_for(Duration::from_secs(10));
    drop(st);
    let reqs = reqs?;
    let text = std::fs::read_to_string(&out_p).map_err(|e| format!("strace output: {e}"))?;
    let mut c = Counts {
        reqs,
        ..Counts::default()
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // "% time seconds usecs/call calls [errors] syscall"
        if f.len() < 5 || f[0].starts_with('%') || f[0].starts_with('-') {
            continue;
        }
        let name = *f.last().unwrap_or(&"");
        let Ok(calls) = f[3].parse::<f64>() else {
            continue;
        };
        if name == "total" {
            c.total = calls;
        } else if RECV.contains(&name) {
            c.recv += calls;
        } else if SEND.contains(&name) {
            c.send += calls;
        } else if POLL.contains(&name) {
            c.poll += calls;
        }
    }
    if c.total == 0.0 {
        return Err("strace counted no syscalls".into());
    }
    Ok(c)
}

//! Operating-system helpers: CPU pinning, RSS and CPU time from `/proc`,
//! child processes of the bench binary that never outlive it, and a
//! description of the machine.

use std::io::{self, BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Number of CPUs the kernel has online.
pub fn online_cpus() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as usize
}

/// The CPU affinity mask of the calling thread.
pub fn affinity() -> io::Result<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data; all-zero is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(set)
}

/// Sets the calling thread's affinity mask (threads it creates inherit it).
pub fn set_affinity(set: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: `set` points to a valid cpu_set_t of the size passed.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Pins the calling thread to `cpu` (threads it creates afterwards inherit
/// the pin).
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cpu out of range",
        ));
    }
    // SAFETY: cpu_set_t is plain data; all-zero is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit inside `set`; `cpu` was checked
    // against the set's capacity above.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    set_affinity(&set)
}

/// Restores the calling thread's affinity when dropped.
pub struct AffinityGuard(Option<libc::cpu_set_t>);

impl AffinityGuard {
    /// Pins the calling thread to `cpu` until the guard is dropped. Returns
    /// the guard and, if pinning failed, why.
    pub fn pin(cpu: usize) -> (AffinityGuard, Option<String>) {
        let old = affinity().ok();
        match pin_to_cpu(cpu) {
            Ok(()) => (AffinityGuard(old), None),
            Err(e) => (
                AffinityGuard(None),
                Some(format!("pinning to CPU {cpu}: {e}")),
            ),
        }
    }
}

impl Drop for AffinityGuard {
    fn drop(&mut self) {
        if let Some(set) = &self.0 {
            let _ = set_affinity(set);
        }
    }
}

/// Resident set size of this process in bytes (`/proc/self/statm`).
pub fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as usize;
    pages * page
}

/// Clock ticks per second of `/proc/PID/stat` times.
pub fn clk_tck() -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// User and system CPU time of process `pid` (all its threads, live and
/// exited), in seconds, from fields 14 and 15 of `/proc/PID/stat`.
pub fn proc_cpu(pid: u32) -> io::Result<(f64, f64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces: fields after its ')'.
    let rest = s
        .rfind(')')
        .map(|i| &s[i + 1..])
        .ok_or_else(|| io::Error::other("malformed /proc/PID/stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let parse = |i: usize| -> io::Result<f64> {
        f.get(i)
            .and_then(|x| x.parse::<u64>().ok())
            .map(|t| t as f64 / clk_tck())
            .ok_or_else(|| io::Error::other("malformed /proc/PID/stat"))
    };
    Ok((parse(11)?, parse(12)?))
}

/// Busy seconds (all but idle and iowait) of the given CPUs since boot,
/// from `/proc/stat`.
pub fn cpus_busy(cpus: &[usize]) -> io::Result<f64> {
    let s = std::fs::read_to_string("/proc/stat")?;
    let mut total = 0u64;
    for l in s.lines() {
        let mut f = l.split_whitespace();
        let Some(name) = f.next() else { continue };
        let Some(n) = name
            .strip_prefix("cpu")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        if !cpus.contains(&n) {
            continue;
        }
        let v: Vec<u64> = f.filter_map(|x| x.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal ...
        let busy: u64 = v
            .iter()
            .take(8)
            .enumerate()
            .filter(|(i, _)| *i != 3 && *i != 4)
            .map(|(_, x)| x)
            .sum();
        total += busy;
    }
    Ok(total as f64 / clk_tck())
}

/// Waits until CPUs 0 and 1 are idle (together busy less than 5% of one
/// core over 400 ms), at most `max`. Returns how long it waited.
pub fn wait_quiet(max: Duration) -> Duration {
    let t0 = Instant::now();
    let step = Duration::from_millis(400);
    loop {
        let Ok(b0) = cpus_busy(&[0, 1]) else {
            return t0.elapsed();
        };
        std::thread::sleep(step);
        let Ok(b1) = cpus_busy(&[0, 1]) else {
            return t0.elapsed();
        };
        if (b1 - b0) / step.as_secs_f64() < 0.05 || t0.elapsed() >= max {
            return t0.elapsed();
        }
    }
}

/// The 1-minute load average, as `/proc/loadavg` prints it.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// A child process that is killed (SIGKILL) and reaped when dropped, on
/// every path including panics. It also gets `PR_SET_PDEATHSIG`, so it dies
/// with the bench process even if that is killed itself.
pub struct ChildGuard {
    child: Child,
    /// Its standard output, when it was piped.
    pub stdout: Option<BufReader<ChildStdout>>,
}

impl ChildGuard {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the child to exit; kills it past that.
    /// Returns its exit status, or `None` if it had to be killed.
    pub fn wait_for(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let t0 = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => return Some(st),
                Ok(None) if t0.elapsed() < limit => std::thread::sleep(Duration::from_millis(5)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return None;
                }
            }
        }
    }

    /// Sends `sig` to the child (e.g. SIGINT to make `perf stat` report).
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our
        // own unreaped child, so it cannot have been reused.
        unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
    }

    /// Reads one line of the child's stdout, giving up after `limit` (the
    /// child is killed on timeout by the caller dropping the guard).
    pub fn read_line(&mut self, limit: Duration) -> io::Result<String> {
        let out = self
            .stdout
            .as_mut()
            .ok_or_else(|| io::Error::other("stdout not piped"))?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(out.get_ref());
        if out.buffer().is_empty() {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = limit.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: `pfd` is a valid pollfd array of length 1.
            let r = unsafe { libc::poll(&mut pfd, 1, ms) };
            if r == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "child did not answer",
                ));
            }
        }
        let mut line = String::new();
        out.read_line(&mut line)?;
        if line.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "child exited without answering",
            ));
        }
        Ok(line.trim_end().to_string())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Spawns `cmd` as a guarded child: it dies with this process
/// (`PR_SET_PDEATHSIG`), and is killed when the guard drops.
pub fn spawn_guarded(mut cmd: Command, pipe_stdout: bool) -> io::Result<ChildGuard> {
    // SAFETY: the closure runs in the forked child before exec and calls
    // only prctl, which is async-signal-safe and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    if pipe_stdout {
        cmd.stdout(Stdio::piped());
    }
    cmd.stdin(Stdio::null());
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().map(BufReader::new);
    Ok(ChildGuard { child, stdout })
}

/// A command that runs this bench binary again with `args` (the hidden
/// subcommands `serve` and `mem-child`).
pub fn self_command(args: &[&str]) -> io::Result<Command> {
    let exe = std::env::current_exe()?;
    let mut c = Command::new(exe);
    c.args(args);
    Ok(c)
}

/// Whether `prog` is an executable on `PATH`.
pub fn have_program(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p).any(|d| {
                let f = d.join(prog);
                std::fs::metadata(&f).is_ok_and(|m| m.is_file())
            })
        })
        .unwrap_or(false)
}

/// One line describing the machine: CPUs, CPU model, kernel.
pub fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<f64>().ok())
        })
        .map(|k| format!("{:.0} GiB RAM", k / 1024.0 / 1024.0))
        .unwrap_or_default();
    format!(
        "{} CPUs (nproc), {model}, Linux {kernel}, {mem_gib}",
        online_cpus()
    )
}

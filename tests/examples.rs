//! Each example, run as its own process and talked to over loopback.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

#[cfg(feature = "tls")]
mod self_signed;
mod support;

/// The root crate's features this test binary was built with; examples
/// this file builds get the same. (A new feature that examples need goes
/// here too.)
const FEATURES: &[(&str, bool)] = &[
    ("tls", cfg!(feature = "tls")),
    ("monkey", cfg!(feature = "monkey")),
];

/// The example program `name`, built if need be.
///
/// A plain `cargo test` builds the examples as programs next to the test
/// binaries (`target/<profile>/examples/<name>`), so they are there and
/// newer than their sources. `cargo test --all-targets` builds them as test
/// harnesses instead, and `cargo test --test examples` not at all, which
/// may leave old programs (or none) there. So a program that is missing or
/// older than a source it was built from makes cargo build the examples,
/// once per run, for this profile and with these features.
fn example(name: &str) -> Command {
    static BUILT: OnceLock<()> = OnceLock::new();
    // target/<profile>/deps/<this test> -> target/<profile>
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let program = profile_dir.join("examples").join(name);
    if !up_to_date(&program) {
        BUILT.get_or_init(|| build_examples(profile_dir));
        // Cargo's word is final: it may find the program fresh by rules
        // finer than ours and leave it untouched.
        assert!(
            program.exists(),
            "cargo built the examples, but {} is not there",
            program.display()
        );
    }
    support::target_command(program)
}

/// Whether `program` exists and is newer than every source file it was
/// built from, as listed in the dep-info file cargo writes beside it
/// (`<name>.d`: `<program>: <source> <source> ...`) — cargo's own rule —
/// and than the manifests and the lock file, which the list leaves out
/// (an edition, a feature or a dependency changed there).
fn up_to_date(program: &Path) -> bool {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let (Some(built), Ok(dep_info)) = (
        modified(program),
        std::fs::read_to_string(program.with_extension("d")),
    ) else {
        return false;
    };
    let Some((_, sources)) = dep_info.lines().next().and_then(|l| l.split_once(": ")) else {
        return false;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifests = [
        "Cargo.toml",
        "Cargo.lock",
        "runtime/Cargo.toml",
        "timeout/Cargo.toml",
        "net/Cargo.toml",
    ]
    .map(|p| root.join(p));
    // Spaces inside a path are escaped as `\ `.
    let sources = sources.replace("\\ ", "\0");
    sources
        .split_whitespace()
        .map(|s| PathBuf::from(s.replace('\0', " ")))
        .chain(manifests)
        .all(|s| modified(&s).is_some_and(|t| t <= built))
}

/// `cargo build --examples` into the target directory this test binary
/// lives in, with its profile and features.
fn build_examples(profile_dir: &Path) {
    let profile = profile_dir.file_name().unwrap().to_str().unwrap();
    let profile = if profile == "debug" { "dev" } else { profile };
    let features: Vec<&str> = FEATURES
        .iter()
        .filter(|&&(_, on)| on)
        .map(|&(f, _)| f)
        .collect();
    // Straight to stderr, past the harness's capture: a pause should say
    // what it is.
    let _ = writeln!(
        std::io::stderr(),
        "tests/examples.rs: building the example programs, which this cargo command did not build"
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--examples", "--package", "greenlet"])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
    // target/<profile>, or target/<triple>/<profile> when testing for
    // another target (aarch64 under qemu in CI): then build for it too, or
    // the host's programs would replace the target's. Cargo marks the
    // target directory itself with a CACHEDIR.TAG.
    let mut target_dir = profile_dir.parent().unwrap();
    if let Some(outer) = target_dir
        .parent()
        .filter(|d| d.join("CACHEDIR.TAG").exists())
    {
        cmd.arg("--target").arg(target_dir.file_name().unwrap());
        target_dir = outer;
    }
    let out = cmd
        .arg("--target-dir")
        .arg(target_dir)
        .args(["--profile", profile])
        .args(["--features", &features.join(",")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo could not build the examples:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running example, killed if the test fails before it exits.
struct Running {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Running {
    fn start(name: &str, args: &[&str]) -> Running {
        let mut child = example(name)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Running { child, out }
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.out.read_line(&mut l).unwrap();
        l
    }

    /// The first address printed on its first line.
    fn addr(&mut self) -> SocketAddr {
        let l = self.line();
        l.split_whitespace()
            .find_map(|w| w.trim_end_matches([';', ')', ',']).parse().ok())
            .unwrap_or_else(|| panic!("no address in {l:?}"))
    }

    /// Sends SIGTERM and returns everything it printed afterwards, with its
    /// exit status.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let mut rest = String::new();
        self.out.read_to_string(&mut rest).unwrap();
        let status = self.child.wait().unwrap();
        (status, rest)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(name: &str, args: &[&str]) -> Output {
    let out = example(name).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{name} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

#[test]
fn echo_server_echoes_and_stops_gracefully_on_sigterm() {
    let mut server = Running::start("echo_server", &["--bind", "127.0.0.1:0"]);
    let addr = server.addr();
    let mut c = connect(addr);
    c.write_all(b"hello, greenlet").unwrap();
    let mut back = [0u8; 15];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello, greenlet");
    assert!(server.line().contains("connected"));
    drop(c);
    assert!(server.line().contains("closed after 15 bytes"));
    let (status, rest) = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        rest.contains("stopping") && rest.contains("stopped after 1 connections"),
        "{rest}"
    );
}

#[test]
fn echo_client_drives_echo_server() {
    let mut server = Running::start(
        "echo_server",
        &["--bind", "127.0.0.1:0", "--quiet", "--max-conns", "100"],
    );
    let addr = server.addr().to_string();
    let out = run(
        "echo_client",
        &[
            "--addr",
            &addr,
            "--clients",
            "20",
            "--messages",
            "50",
            "--size",
            "100",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1000 echoes"), "{text}");
    assert!(text.contains("p99"), "{text}");
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[test]
fn line_echo_server_welcomes_echoes_lines_and_quits() {
    let mut server = Running::start("line_echo_server", &["--bind", "127.0.0.1:0"]);
    let addr = server.addr();
    let c = connect(addr);
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    assert_eq!(l, "Welcome to the echo server! Type quit to exit.\r\n");
    (&c).write_all(b"first line\n").unwrap();
    l.clear();
    r.read_line(&mut l).unwrap();
    assert_eq!(l, "first line\n");
    (&c).write_all(b"QUIT\r\n").unwrap();
    l.clear();
    assert_eq!(r.read_line(&mut l).unwrap(), 0, "the server closed on quit");
    let (status, rest) = server.terminate();
    assert!(status.success());
    assert!(rest.contains("client quit"), "{rest}");
    assert!(rest.contains("stopped after 1 connections"), "{rest}");
}

#[test]
fn portforwarder_forwards_both_ways() {
    let mut echo = Running::start("echo_server", &["--bind", "127.0.0.1:0", "--quiet"]);
    let echo_addr = echo.addr().to_string();
    let mut fwd = Running::start(
        "portforwarder",
        &["--listen", "127.0.0.1:0", "--to", &echo_addr],
    );
    let fwd_addr = fwd.addr();
    let mut c = connect(fwd_addr);
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let writer = {
        let mut w = c.try_clone().unwrap();
        let p = payload.clone();
        std::thread::spawn(move || w.write_all(&p).unwrap())
    };
    let mut back = vec![0u8; payload.len()];
    c.read_exact(&mut back).unwrap();
    writer.join().unwrap();
    assert!(back == payload, "100 kB through the forwarder, byte-exact");
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let (status, out) = fwd.terminate();
    assert!(status.success());
    assert!(out.contains("stopped after 1 connections"), "{out}");
    assert!(echo.terminate().0.success());
}

#[test]
fn udp_client_gets_the_udp_echo_servers_reply() {
    let mut server = Running::start("udp_echo_server", &["--bind", "127.0.0.1:0"]);
    let addr = server.addr().to_string();
    let out = run("udp_client", &["--addr", &addr, "ping over udp"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("replied: ping over udp"));
    // And a plain std client.
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.send_to(b"x", &addr).unwrap();
    let mut b = [0u8; 8];
    assert_eq!(s.recv(&mut b).unwrap(), 1);
    assert!(server.terminate().0.success());
}

#[test]
fn udp_client_times_out_without_a_server() {
    let free = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap().to_string();
    // A bound socket that never answers: the client's Timeout fires.
    let out = example("udp_client")
        .args(["--addr", &addr, "--timeout", "0.2", "hello"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no reply"));
}

#[test]
fn unix_echo_demo_round_trips() {
    let out = run("unix_echo", &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, "reply: one\nreply: two\nreply: three\n");
}

#[test]
fn unix_echo_server_stops_on_sigterm_and_removes_its_socket_file() {
    let path = std::env::temp_dir().join(format!(
        "greenlet-unix-echo-test-{}.sock",
        std::process::id()
    ));
    let p = path.to_str().unwrap();
    let mut server = Running::start("unix_echo", &["server", "--path", p]);
    assert!(server.line().contains(p));
    // One connection still open when the signal comes.
    let mut open = std::os::unix::net::UnixStream::connect(&path).unwrap();
    open.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let out = run("unix_echo", &["client", "--path", p, "hello"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "reply: hello\n");
    open.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    open.read_exact(&mut b).unwrap();
    let (status, rest) = server.terminate();
    assert!(status.success(), "{rest}");
    assert!(rest.contains("stopped"), "{rest}");
    assert!(!path.exists(), "the socket file is removed");
    let mut tail = Vec::new();
    assert_eq!(open.read_to_end(&mut tail).unwrap(), 0, "closed on stop");
}

#[test]
fn dns_mass_resolve_resolves_local_names_through_a_pool() {
    let out = run("dns_mass_resolve", &["--count", "8", "--timeout", "2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("localhost -> 127.0.0.1"), "{text}");
    assert!(text.contains("8 names"), "{text}");
}

#[test]
fn threadpool_example_keeps_the_hub_running() {
    // Jobs of 300 ms for a 10 ms ticker: 3 ticks hold even under qemu on a
    // loaded machine (100 ms jobs gave 2 there); a blocked hub gives 0.
    let out = run("threadpool", &["--jobs", "3", "--millis", "300"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let ticks: u32 = text
        .split("ticked ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        ticks >= 3,
        "the hub kept ticking while jobs blocked: {ticks}"
    );
}

#[test]
fn echo_server_with_threads_serves_from_more_than_one_thread() {
    let mut server = Running::start("echo_server", &["--bind", "127.0.0.1:0", "--threads", "2"]);
    let addr = server.addr();
    let clients: Vec<TcpStream> = (0..40).map(|_| connect(addr)).collect();
    for (i, mut c) in clients.iter().enumerate() {
        let msg = format!("client {i}");
        c.write_all(msg.as_bytes()).unwrap();
        let mut back = vec![0u8; msg.len()];
        c.read_exact(&mut back).unwrap();
        assert_eq!(back, msg.as_bytes());
    }
    drop(clients);
    let (status, rest) = server.terminate();
    assert!(status.success(), "{rest}");
    let counts = rest
        .lines()
        .find_map(|l| l.strip_prefix("stopped; connections per thread: "))
        .unwrap_or_else(|| panic!("{rest}"));
    let counts: Vec<u64> = counts
        .trim_matches(['[', ']'])
        .split(", ")
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(counts.iter().sum::<u64>(), 40);
    assert!(
        counts.iter().all(|&n| n > 0),
        "both threads served connections: {counts:?}"
    );
}

#[cfg(feature = "tls")]
#[test]
fn tls_echo_server_echoes_over_tls() {
    // A certificate of this test's own: the server's default one lives at a
    // fixed path that another run on the machine may be rewriting.
    let (cert, key) = self_signed::cert_files("example");
    let mut server = Running::start(
        "tls_echo_server",
        &[
            "--bind",
            "127.0.0.1:0",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    let first = server.line();
    let addr: SocketAddr = first
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("{first}"));
    let config = greenlet::net::tls::client_config(&cert).unwrap();
    let mut c = greenlet::net::tls::connect(addr, "localhost", config).unwrap();
    c.write_all(b"tls example").unwrap();
    let mut back = [0u8; 11];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"tls example");
    c.close_notify().unwrap();
    drop(c);
    let (status, rest) = server.terminate();
    assert!(status.success(), "{rest}");
    assert!(rest.contains("stopped after 1 connections"), "{rest}");
    std::fs::remove_dir_all(cert.parent().unwrap()).unwrap();
}

#[cfg(feature = "monkey")]
#[test]
fn monkey_http_fetch_fetches_concurrently_with_unmodified_ureq() {
    let out = run("monkey_http_fetch", &["--count", "10", "--delay", "0.2"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches(" bytes in ").count(), 10, "{text}");
    let total: f64 = text
        .split("all done in ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    // One after the other would take 2 s.
    assert!(total < 1.5, "10 fetches of 200 ms took {total} s:\n{text}");
}

//! Thread affinity is checked by the compiler: every type bound to the hub
//! of its thread is `!Send`, so moving one to another OS thread does not
//! compile.
//!
//! `tests/ui/*.rs` are hand-written cases; `tests/ui/not_send/*.rs` are
//! generated from [`HUB_BOUND`], one per type: when the list changes, run
//! `GREENLET_BLESS_UI=1 TRYBUILD=overwrite cargo test --test compile_fail`
//! and review the new `.rs`/`.stderr` files.

use std::path::Path;

/// Every public type that belongs to one hub, as written in a program
/// (`file stem`, `type`).
const HUB_BOUND: &[(&str, &str)] = &[
    ("greenlet", "greenlet::Greenlet<i32>"),
    ("greenlet_ref", "greenlet::GreenletRef"),
    ("waker", "greenlet::Waker"),
    ("registration", "greenlet::hub::Registration"),
    ("timeout", "greenlet::Timeout"),
    ("signal_handler", "greenlet::signal::SignalHandler"),
    ("event", "greenlet::sync::Event"),
    ("async_result", "greenlet::sync::AsyncResult<i32>"),
    ("queue", "greenlet::sync::Queue<i32>"),
    ("channel", "greenlet::sync::Channel<i32>"),
    ("semaphore", "greenlet::sync::Semaphore"),
    ("bounded_semaphore", "greenlet::sync::BoundedSemaphore"),
    ("lock", "greenlet::sync::Lock"),
    ("rlock", "greenlet::sync::RLock"),
    ("group", "greenlet::pool::Group"),
    ("pool", "greenlet::pool::Pool"),
    ("thread_result", "greenlet::threadpool::ThreadResult<i32>"),
    ("tcp_stream", "greenlet::net::TcpStream"),
    ("tcp_listener", "greenlet::net::TcpListener"),
    ("udp_socket", "greenlet::net::UdpSocket"),
    ("unix_stream", "greenlet::net::UnixStream"),
    ("unix_listener", "greenlet::net::UnixListener"),
    ("unix_datagram", "greenlet::net::UnixDatagram"),
    ("socket", "greenlet::net::Socket"),
    ("watcher", "greenlet::net::Watcher"),
    ("stream_server", "greenlet::net::StreamServer"),
    ("datagram_server", "greenlet::net::DatagramServer"),
];

const GENERATED: &str = "tests/ui/not_send";

/// The compile-fail program for one type.
fn case(ty: &str) -> String {
    format!(
        "// Generated from HUB_BOUND in tests/compile_fail.rs: `{ty}` belongs to\n\
         // the hub of its thread, so it must not be `Send`.\n\
         fn assert_send<T: Send>() {{}}\n\
         \n\
         fn main() {{\n    assert_send::<{ty}>();\n}}\n"
    )
}

/// The generated cases are exactly the list (with `GREENLET_BLESS_UI=1`,
/// rewrites them).
#[test]
fn not_send_cases_match_the_list() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(GENERATED);
    let bless = std::env::var_os("GREENLET_BLESS_UI").is_some();
    if bless {
        std::fs::create_dir_all(&dir).unwrap();
    }
    for (stem, ty) in HUB_BOUND {
        let path = dir.join(format!("{stem}.rs"));
        let want = case(ty);
        if bless {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            have,
            want,
            "{} is stale: rerun with GREENLET_BLESS_UI=1",
            path.display()
        );
    }
    let listed = |name: &str| HUB_BOUND.iter().any(|(s, _)| name == format!("{s}.rs"));
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".rs") && !listed(&name) {
            panic!("{GENERATED}/{name} is not in HUB_BOUND: remove it or list its type");
        }
    }
}

#[test]
fn greenlet_bound_types_cannot_cross_threads() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.compile_fail("tests/ui/not_send/*.rs");
}

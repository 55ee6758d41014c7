// Generated from HUB_BOUND in tests/compile_fail.rs: `greenlet::net::TcpListener` belongs to
// the hub of its thread, so it must not be `Send`.
fn assert_send<T: Send>() {}

fn main() {
    assert_send::<greenlet::net::TcpListener>();
}

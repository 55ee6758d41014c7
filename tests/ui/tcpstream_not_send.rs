// A cooperative `TcpStream` belongs to the hub of its thread: moving it to
// another thread does not compile (use a std socket, or `hub::Remote`).
fn main() {
    let s = greenlet::net::TcpStream::connect("127.0.0.1:1").unwrap();
    std::thread::spawn(move || s.peer_addr());
}

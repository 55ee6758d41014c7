// A `GreenletRef` belongs to the thread of its greenlet.
fn main() {
    let r: greenlet::GreenletRef = greenlet::getcurrent();
    std::thread::spawn(move || r.id());
}

// A `Waker` never leaves its hub's thread (use `hub::Remote` instead).
fn main() {
    let _ = greenlet::park(&"a wake-up from another thread", |w: greenlet::Waker| {
        std::thread::spawn(move || w.wake());
    });
}

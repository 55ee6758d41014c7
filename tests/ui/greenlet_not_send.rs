// A `Greenlet<T>` belongs to the thread that spawned it.
fn main() {
    let g: greenlet::Greenlet<i32> = greenlet::spawn(|| 1);
    std::thread::spawn(move || g.get().unwrap());
}

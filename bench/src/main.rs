//! Side-by-side benchmarks of greenlet (filled by the benchmark issue).
fn main() {
    println!("greenlet-bench: no suites yet");
}

//! Fixtures shared by the integration tests (`mod support;` in a test
//! file). Only what two or more test files need lives here.

#![allow(dead_code)] // each test file uses its own part of it

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenlet::{spawn, yield_now, Greenlet};

/// Spawns a greenlet that yields in a loop until `stop` is set, for at most
/// `limit` (bounded, so whatever it would starve fails the test instead of
/// hanging it). Its result is how many times it yielded.
pub fn spinner(stop: Rc<Cell<bool>>, limit: Duration) -> Greenlet<u64> {
    let t0 = Instant::now();
    spawn(move || {
        let mut spins = 0u64;
        while !stop.get() && t0.elapsed() < limit {
            yield_now();
            spins += 1;
        }
        spins
    })
}

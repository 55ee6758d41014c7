//! Monkey patching with the unmodified `redis` crate against a real
//! `redis-server` that this test starts on a free loopback port: 20
//! greenlets each `BLPOP` with a 0.2 s timeout finish together, not one
//! after the other. Without `redis-server` the test says so loudly and
//! skips, except under CI (`CI=true`), where it fails.
#![cfg(feature = "monkey")]

use std::time::{Duration, Instant};

use greenlet::Builder;

mod redis_server;
use redis_server::start_redis;

#[test]
fn unmodified_redis_blpop_calls_are_concurrent() {
    greenlet::monkey::patch_all().unwrap();
    let Some((_server, port)) = start_redis("monkey_redis") else {
        return;
    };
    let url = format!("redis://127.0.0.1:{port}/");
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut con = client.get_connection().unwrap();
    let _: () = redis::cmd("SET")
        .arg("greeting")
        .arg("hello")
        .query(&mut con)
        .unwrap();
    let got: String = redis::cmd("GET").arg("greeting").query(&mut con).unwrap();
    assert_eq!(got, "hello");

    let t0 = Instant::now();
    let gs: Vec<_> = (0..20)
        .map(|i| {
            let url = url.clone();
            Builder::new()
                .stack_size(1 << 20)
                .spawn(move || {
                    let mut con = redis::Client::open(url.as_str())
                        .unwrap()
                        .get_connection()
                        .unwrap();
                    let popped: Option<(String, String)> = redis::cmd("BLPOP")
                        .arg(format!("empty-list-{i}"))
                        .arg(0.2)
                        .query(&mut con)
                        .unwrap();
                    popped
                })
                .unwrap()
        })
        .collect();
    for g in gs {
        assert_eq!(g.get().unwrap(), None);
    }
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(200), "{took:?}");
    assert!(
        took < Duration::from_secs(2),
        "20 BLPOPs of 0.2 s took {took:?}"
    );
}

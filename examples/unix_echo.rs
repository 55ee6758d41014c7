//! Echo over a Unix-domain socket: a server, a client, or both in one
//! process (the default, `demo`).
//!
//! ```sh
//! cargo run --example unix_echo                       # demo: server + 3 clients
//! cargo run --example unix_echo -- server --path /tmp/echo.sock
//! cargo run --example unix_echo -- client --path /tmp/echo.sock hello
//! ```
mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use greenlet::net::unix::{UnixListener, UnixStream};
use greenlet::spawn;

const USAGE: &str = "unix_echo [demo|server|client MESSAGE] [--path PATH]";

fn serve(listener: UnixListener) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { return };
        spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = conn.read(&mut buf) {
                if conn.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
}

fn ask(path: &Path, msg: &str) -> std::io::Result<String> {
    let mut c = UnixStream::connect(path)?;
    c.write_all(msg.as_bytes())?;
    let mut back = vec![0u8; msg.len()];
    c.read_exact(&mut back)?;
    Ok(String::from_utf8_lossy(&back).into_owned())
}

fn main() {
    let args = common::Args::parse(USAGE);
    let default =
        std::env::temp_dir().join(format!("greenlet-unix-echo-{}.sock", std::process::id()));
    let path: PathBuf = args.get("--path", default);
    match args.positional(0).unwrap_or("demo") {
        "server" => {
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path).expect("bind");
            println!("unix echo server on {}", path.display());
            serve(listener);
        }
        "client" => {
            let msg = args.positional(1).unwrap_or("hello");
            match ask(&path, msg) {
                Ok(reply) => println!("reply: {reply}"),
                Err(e) => {
                    eprintln!("{}: {e}", path.display());
                    std::process::exit(1);
                }
            }
        }
        "demo" => {
            let _ = std::fs::remove_file(&path);
            let listener = UnixListener::bind(&path).expect("bind");
            let server = spawn(move || serve(listener));
            let clients: Vec<_> = ["one", "two", "three"]
                .into_iter()
                .map(|m| {
                    let p = path.clone();
                    spawn(move || ask(&p, m))
                })
                .collect();
            for c in clients {
                println!("reply: {}", c.get().unwrap().expect("echo"));
            }
            server.kill().unwrap();
            let _ = std::fs::remove_file(&path);
        }
        other => {
            eprintln!("unknown mode {other:?}\nusage: {USAGE}");
            std::process::exit(2);
        }
    }
}

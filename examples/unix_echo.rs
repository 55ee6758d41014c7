//! Echo over a Unix-domain socket: a server, a client, or both in one
//! process (the default, `demo`).
//!
//! ```sh
//! cargo run --example unix_echo                       # demo: server + 3 clients, then exits
//! cargo run --example unix_echo -- server --path /tmp/echo.sock    # Ctrl-C stops it
//! cargo run --example unix_echo -- client --path /tmp/echo.sock hello
//! ```
//!
//! The server runs until Ctrl-C (SIGINT) or SIGTERM: it stops accepting,
//! closes open connections and removes its socket file.
mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use greenlet::net::unix::{UnixListener, UnixStream};
use greenlet::pool::Group;

const USAGE: &str = "unix_echo [demo|server|client MESSAGE] [--path PATH]";

/// Accepts until the listener is closed; a greenlet in `handlers` per
/// connection.
fn serve(listener: &UnixListener, handlers: &Group) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { return };
        handlers.spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = conn.read(&mut buf) {
                if conn.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
}

/// Binds `path`, replacing a socket file a previous run left behind.
fn bind(path: &Path) -> UnixListener {
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path).unwrap_or_else(|e| {
        eprintln!("cannot listen on {}: {e}", path.display());
        std::process::exit(1)
    })
}

fn ask(path: &Path, msg: &str) -> std::io::Result<String> {
    let mut c = UnixStream::connect(path)?;
    c.write_all(msg.as_bytes())?;
    let mut back = vec![0u8; msg.len()];
    c.read_exact(&mut back)?;
    Ok(String::from_utf8_lossy(&back).into_owned())
}

fn main() {
    common::init_log();
    let args = common::Args::parse(USAGE);
    let default =
        std::env::temp_dir().join(format!("greenlet-unix-echo-{}.sock", std::process::id()));
    let path: PathBuf = args.get("--path", default);
    match args.positional(0).unwrap_or("demo") {
        "server" => {
            let listener = Rc::new(bind(&path));
            let l = listener.clone();
            let _signals = common::on_terminate(move || l.close());
            println!("unix echo server on {}; Ctrl-C to stop", path.display());
            let handlers = Group::new();
            serve(&listener, &handlers);
            println!("stopping: closing {} connections", handlers.len());
            handlers.kill().expect("close the connections");
            let _ = std::fs::remove_file(&path);
            println!("stopped; removed {}", path.display());
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
            let listener = Rc::new(bind(&path));
            let l = listener.clone();
            let handlers = Group::new();
            let h = handlers.clone();
            let server = greenlet::spawn(move || serve(&l, &h));
            let clients: Vec<_> = ["one", "two", "three"]
                .into_iter()
                .map(|m| {
                    let p = path.clone();
                    greenlet::spawn(move || ask(&p, m))
                })
                .collect();
            for c in clients {
                println!("reply: {}", c.get().unwrap().expect("echo"));
            }
            listener.close();
            server.join().unwrap();
            handlers.kill().unwrap();
            let _ = std::fs::remove_file(&path);
        }
        other => {
            eprintln!("unknown mode {other:?}\nusage: {USAGE}");
            std::process::exit(2);
        }
    }
}

//! TLS on cooperative sockets (feature `tls`): rustls over [`TcpStream`].
//!
//! Handshakes and I/O are ordinary greenlet waits: a slow or stalled peer
//! parks only the greenlet serving it. [`TlsListener::accept`] returns at
//! once with the handshake still to do; it completes on the first read or
//! write (or an explicit [`TlsStream::handshake`]) in the greenlet that
//! handles the connection, so one stalled client never holds up accepting.
//!
//! ```no_run
//! use greenlet_net::tls;
//! use std::io::{Read, Write};
//!
//! let listener = tls::listener("127.0.0.1:16443", "cert.pem", "key.pem")?;
//! loop {
//!     let (mut conn, _peer) = listener.accept()?;
//!     greenlet_runtime::spawn(move || {
//!         let mut buf = [0u8; 4096];
//!         while let Ok(n @ 1..) = conn.read(&mut buf) {
//!             if conn.write_all(&buf[..n]).is_err() {
//!                 break;
//!             }
//!         }
//!     });
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

pub use rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned,
};

use crate::addr::ToSocketAddrs;
use crate::server::StreamServer;
use crate::{TcpListener, TcpStream};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn bad_file(what: &str, path: &Path, why: impl fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("cannot load the TLS {what} from {}: {why}", path.display()),
    )
}

/// Reads every certificate of a PEM file (the chain, leaf first).
///
/// # Errors
/// `InvalidInput` naming the file: missing or unreadable, not PEM, or no
/// certificate in it.
pub fn load_certs(path: impl AsRef<Path>) -> io::Result<Vec<CertificateDer<'static>>> {
    let path = path.as_ref();
    let pem = std::fs::read(path).map_err(|e| bad_file("certificate", path, e))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_file("certificate", path, e))?;
    if certs.is_empty() {
        return Err(bad_file("certificate", path, "no CERTIFICATE block in it"));
    }
    Ok(certs)
}

/// Reads the private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
///
/// # Errors
/// `InvalidInput` naming the file: missing or unreadable, or no private key
/// in it.
pub fn load_key(path: impl AsRef<Path>) -> io::Result<PrivateKeyDer<'static>> {
    let path = path.as_ref();
    let pem = std::fs::read(path).map_err(|e| bad_file("private key", path, e))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| bad_file("private key", path, e))
}

/// A server configuration from PEM certificate-chain and key files.
///
/// # Errors
/// As [`load_certs`] and [`load_key`]; `InvalidInput` if the key does not
/// match the certificate or is of an unsupported kind.
pub fn server_config(
    cert_path: impl AsRef<Path>,
    key_path: impl AsRef<Path>,
) -> io::Result<Arc<ServerConfig>> {
    let certs = load_certs(cert_path.as_ref())?;
    let key = load_key(key_path.as_ref())?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the TLS key {} does not fit the certificate {}: {e}",
                    key_path.as_ref().display(),
                    cert_path.as_ref().display()
                ),
            )
        })?;
    Ok(Arc::new(config))
}

/// A client configuration trusting the certificates of a PEM file (a CA,
/// or a self-signed server certificate).
///
/// # Errors
/// As [`load_certs`]; `InvalidInput` if a certificate is not usable as a
/// trust anchor.
pub fn client_config(trusted_pem: impl AsRef<Path>) -> io::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(trusted_pem.as_ref())? {
        roots
            .add(cert)
            .map_err(|e| bad_file("trust anchor", trusted_pem.as_ref(), e))?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

enum Conn {
    Server(StreamOwned<ServerConnection, TcpStream>),
    Client(StreamOwned<ClientConnection, TcpStream>),
}

/// A TLS connection over a cooperative [`TcpStream`]: `Read`/`Write` park
/// the greenlet, never the thread. The handshake completes on first use
/// (or [`TlsStream::handshake`]).
pub struct TlsStream {
    conn: Conn,
}

impl TlsStream {
    /// The server side of a TLS connection on an accepted `stream`.
    ///
    /// # Errors
    /// A rustls configuration error (not expected with a valid config).
    pub fn server(stream: TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let c = ServerConnection::new(config).map_err(io::Error::other)?;
        Ok(TlsStream {
            conn: Conn::Server(StreamOwned::new(c, stream)),
        })
    }

    /// The client side of a TLS connection on a connected `stream`,
    /// verifying the server as `server_name`.
    ///
    /// # Errors
    /// `InvalidInput` for a server name that is not a DNS name or IP
    /// address.
    pub fn client(
        stream: TcpStream,
        server_name: &str,
        config: Arc<ClientConfig>,
    ) -> io::Result<TlsStream> {
        let name = ServerName::try_from(server_name.to_string()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid TLS server name {server_name:?}: {e}"),
            )
        })?;
        let c = ClientConnection::new(config, name).map_err(io::Error::other)?;
        Ok(TlsStream {
            conn: Conn::Client(StreamOwned::new(c, stream)),
        })
    }

    /// Completes the handshake now (a no-op once done).
    ///
    /// # Errors
    /// The peer's or rustls's error (`InvalidData` for a failed
    /// verification or a protocol error), or the socket's.
    pub fn handshake(&mut self) -> io::Result<()> {
        match &mut self.conn {
            Conn::Server(s) => {
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock)?;
                }
            }
            Conn::Client(s) => {
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock)?;
                }
            }
        }
        Ok(())
    }

    /// The TCP stream underneath.
    pub fn get_ref(&self) -> &TcpStream {
        match &self.conn {
            Conn::Server(s) => &s.sock,
            Conn::Client(s) => &s.sock,
        }
    }

    /// The peer's address.
    ///
    /// # Errors
    /// As `TcpStream::peer_addr`.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.get_ref().peer_addr()
    }

    /// Sends TLS `close_notify` and flushes it; the peer then reads EOF.
    ///
    /// # Errors
    /// The socket's write error.
    pub fn close_notify(&mut self) -> io::Result<()> {
        match &mut self.conn {
            Conn::Server(s) => {
                s.conn.send_close_notify();
                s.flush()
            }
            Conn::Client(s) => {
                s.conn.send_close_notify();
                s.flush()
            }
        }
    }
}

impl Read for TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let r = match &mut self.conn {
            Conn::Server(s) => s.read(buf),
            Conn::Client(s) => s.read(buf),
        };
        match r {
            // A peer that closes TCP without close_notify: EOF, as most
            // servers treat it.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            r => r,
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.conn {
            Conn::Server(s) => s.write(buf),
            Conn::Client(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.conn {
            Conn::Server(s) => s.flush(),
            Conn::Client(s) => s.flush(),
        }
    }
}

impl fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match self.conn {
            Conn::Server(_) => "server",
            Conn::Client(_) => "client",
        };
        f.debug_struct("TlsStream")
            .field("side", &side)
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

/// A TCP listener that hands out [`TlsStream`]s.
pub struct TlsListener {
    listener: TcpListener,
    config: Arc<ServerConfig>,
}

impl TlsListener {
    /// Binds `addr` with `config`.
    ///
    /// # Errors
    /// The error of resolving or binding `addr`.
    pub fn bind(addr: impl ToSocketAddrs, config: Arc<ServerConfig>) -> io::Result<TlsListener> {
        Ok(TlsListener {
            listener: TcpListener::bind(addr)?,
            config,
        })
    }

    /// Wraps a listener you made.
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> TlsListener {
        TlsListener { listener, config }
    }

    /// Accepts a connection; returns without waiting for the handshake
    /// (see the module docs).
    ///
    /// # Errors
    /// As `TcpListener::accept`.
    pub fn accept(&self) -> io::Result<(TlsStream, SocketAddr)> {
        let (tcp, peer) = self.listener.accept()?;
        Ok((TlsStream::server(tcp, self.config.clone())?, peer))
    }

    /// The address it listens on.
    ///
    /// # Errors
    /// As `TcpListener::local_addr`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The TCP listener underneath (to `close` it, say).
    pub fn get_ref(&self) -> &TcpListener {
        &self.listener
    }
}

impl fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsListener")
            .field("addr", &self.local_addr().ok())
            .finish()
    }
}

/// A TLS listener on `addr` with the certificate chain and key of two PEM
/// files (eventlet's `ssl_listener`).
///
/// # Errors
/// As [`server_config`] and [`TlsListener::bind`].
pub fn listener(
    addr: impl ToSocketAddrs,
    cert_path: impl AsRef<Path>,
    key_path: impl AsRef<Path>,
) -> io::Result<TlsListener> {
    TlsListener::bind(addr, server_config(cert_path, key_path)?)
}

/// Connects to `addr` and completes a TLS handshake verifying the server as
/// `server_name`.
///
/// # Errors
/// Connecting, the server name, or the handshake (`InvalidData` when the
/// server's certificate is not trusted for that name).
pub fn connect(
    addr: impl ToSocketAddrs,
    server_name: &str,
    config: Arc<ClientConfig>,
) -> io::Result<TlsStream> {
    let mut s = TlsStream::client(TcpStream::connect(addr)?, server_name, config)?;
    s.handshake()?;
    Ok(s)
}

/// Stack size of TLS handler greenlets made by [`StreamServer::bind_tls`]:
/// a rustls handshake went 52 KiB deep in a debug build, more than the old
/// 64 KiB default left room for. The same as the default stack size now;
/// kept so that TLS handlers keep their room if the default is lowered.
pub const TLS_STACK_SIZE: usize = 256 * 1024;

impl StreamServer {
    /// A TLS server: like [`StreamServer::bind`], but each handler gets a
    /// [`TlsStream`] whose handshake runs in the handler's own greenlet, on
    /// a stack of [`TLS_STACK_SIZE`] (change it with
    /// [`StreamServer::stack_size`]).
    ///
    /// # Errors
    /// The error of resolving or binding `addr`.
    pub fn bind_tls(
        addr: impl ToSocketAddrs,
        config: Arc<ServerConfig>,
        handler: impl Fn(TlsStream, SocketAddr) + 'static,
    ) -> io::Result<StreamServer> {
        Ok(StreamServer::bind(addr, move |tcp, peer| {
            if let Ok(tls) = TlsStream::server(tcp, config.clone()) {
                handler(tls, peer)
            }
        })?
        .stack_size(TLS_STACK_SIZE))
    }
}

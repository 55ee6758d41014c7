//! A self-signed certificate for the TLS tests.
use std::path::PathBuf;

/// A fresh self-signed certificate for `localhost`, as `cert.pem` and
/// `key.pem` in a directory of its own (named after `tag` and the
/// process); returns their paths.
pub fn cert_files(tag: &str) -> (PathBuf, PathBuf) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let dir = std::env::temp_dir().join(format!("greenlet-tls-test-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.key_pair.serialize_pem()).unwrap();
    (cert, key)
}

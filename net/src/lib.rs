//! Cooperative sockets for greenlet (filled by the net issue).
#![deny(missing_docs)]

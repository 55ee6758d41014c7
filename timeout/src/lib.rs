//! Timeouts for greenlet (filled by the timeout issue).
#![deny(missing_docs)]

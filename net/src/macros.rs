//! Trait impls shared by the socket types (each has a field
//! `io: Evented<StdType>`).

/// `AsRawFd`, `AsFd`, `IntoRawFd`, `FromRawFd`, `From<OwnedFd>`, `Debug`.
macro_rules! fd_traits {
    ($t:ident, $std:ty) => {
        fd_traits!($t, $std, |io| $t { io });
    };
    ($t:ident, $std:ty, |$io:ident| $make:expr) => {
        impl std::os::fd::AsRawFd for $t {
            /// The fd. After [`close`](Self::close) it still names an open
            /// fd (a placeholder on which I/O fails with `EBADF`) until the
            /// value is dropped, so the number is never reused meanwhile.
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.io.raw_fd()
            }
        }

        impl std::os::fd::AsFd for $t {
            /// Borrows the fd (see `as_raw_fd` for a closed socket).
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.io.as_fd()
            }
        }

        impl std::os::fd::IntoRawFd for $t {
            /// Gives up the fd, deregistered from the hub and still in
            /// non-blocking mode.
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                self.io.into_raw_fd()
            }
        }

        impl std::os::fd::FromRawFd for $t {
            /// Takes ownership of `fd` and puts it in non-blocking mode.
            ///
            /// # Safety
            /// `fd` must be an open socket of the matching kind, owned by
            /// the caller, as for the std type's `from_raw_fd`.
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $t {
                // SAFETY: forwarded from the caller (see above).
                let sock = unsafe { <$std as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                // Cannot fail on an open socket; a bad fd makes every later
                // operation fail with `EBADF`.
                let _ = sock.set_nonblocking(true);
                let $io = $crate::evented::Evented::new(sock);
                $make
            }
        }

        impl From<std::os::fd::OwnedFd> for $t {
            /// Takes ownership of a socket fd and puts it in non-blocking mode.
            fn from(fd: std::os::fd::OwnedFd) -> $t {
                let sock = <$std>::from(fd);
                let _ = sock.set_nonblocking(true);
                let $io = $crate::evented::Evented::new(sock);
                $make
            }
        }

        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.io.fmt_debug(stringify!($t), f)
            }
        }
    };
}

/// `Read` and `Write` for a stream type and for `&Type`: a short write
/// clears readiness, and so does a short read where `$short_read_drains`
/// (a read that took less than asked found the receive queue empty; the
/// next read would only get `EAGAIN`).
macro_rules! stream_io {
    ($t:ident, short_read_drains: $short_read_drains:expr) => {
        impl std::io::Read for &$t {
            #[inline]
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let len = buf.len();
                self.io.read(
                    |mut s| std::io::Read::read(&mut s, &mut *buf),
                    |&n| $short_read_drains && n > 0 && n < len,
                )
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                let len: usize = bufs.iter().map(|b| b.len()).sum();
                self.io.read(
                    |mut s| std::io::Read::read_vectored(&mut s, &mut *bufs),
                    |&n| $short_read_drains && n > 0 && n < len,
                )
            }
        }

        impl std::io::Read for $t {
            #[inline]
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                std::io::Read::read(&mut &*self, buf)
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                std::io::Read::read_vectored(&mut &*self, bufs)
            }
        }

        impl std::io::Write for &$t {
            #[inline]
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                let len = buf.len();
                self.io
                    .write(|mut s| std::io::Write::write(&mut s, buf), |&n| n < len)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                let len: usize = bufs.iter().map(|b| b.len()).sum();
                self.io.write(
                    |mut s| std::io::Write::write_vectored(&mut s, bufs),
                    |&n| n < len,
                )
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Write for $t {
            #[inline]
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                std::io::Write::write(&mut &*self, buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                std::io::Write::write_vectored(&mut &*self, bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}

/// The per-socket settings every cooperative socket has: timeouts, the
/// non-blocking flag, `close`.
macro_rules! common_methods {
    () => {
        /// Sets the read timeout: a read (or accept, recv, ...) that waits
        /// longer fails with `ErrorKind::TimedOut` ("timed out"). `None`
        /// waits forever. Measured per call. A per-socket setting of this
        /// object (not an OS socket option), copied by `try_clone`.
        ///
        /// # Errors
        /// `InvalidInput` for `Some(Duration::ZERO)` (as std); `EBADF` if
        /// closed.
        pub fn set_read_timeout(&self, dur: Option<std::time::Duration>) -> std::io::Result<()> {
            self.io.set_read_timeout(dur)
        }

        /// Sets the write timeout; as [`set_read_timeout`](Self::set_read_timeout)
        /// for writes (and `connect` waits do not use it).
        ///
        /// # Errors
        /// `InvalidInput` for `Some(Duration::ZERO)`; `EBADF` if closed.
        pub fn set_write_timeout(&self, dur: Option<std::time::Duration>) -> std::io::Result<()> {
            self.io.set_write_timeout(dur)
        }

        /// The read timeout.
        ///
        /// # Errors
        /// `EBADF` if closed.
        pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
            self.io.read_timeout()
        }

        /// The write timeout.
        ///
        /// # Errors
        /// `EBADF` if closed.
        pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
            self.io.write_timeout()
        }

        /// In non-blocking mode an operation that would wait returns
        /// `ErrorKind::WouldBlock` at once instead of parking the greenlet
        /// (the OS fd is always non-blocking; this is a flag of this
        /// object, copied by `try_clone`).
        ///
        /// # Errors
        /// `EBADF` if closed.
        pub fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
            self.io.set_nonblocking(nonblocking)
        }

        /// Closes the socket now (gevent's `close`): a greenlet waiting on
        /// it gets the `EBADF` error "File descriptor was closed in another
        /// greenlet" (`Interrupted::Cancelled`) at its next turn; later
        /// operations fail with `EBADF` ("Bad file descriptor"). Never fails,
        /// never switches; closing twice does nothing. The fd number stays
        /// reserved (on a dead placeholder) until the value is dropped.
        pub fn close(&self) {
            self.io.close()
        }

        /// True once [`close`](Self::close) was called.
        pub fn is_closed(&self) -> bool {
            self.io.is_closed()
        }
    };
}

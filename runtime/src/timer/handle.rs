//! [`TimerHandle`], the name of one armed timer: plain data, so a
//! greenlet record can keep one (its `spawn_later` start) without
//! depending on the timer queue.

/// Names one armed timer, to cancel it. The sequence number makes
/// a handle to a fired or cancelled timer harmless even after its slot was
/// reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerHandle {
    pub(super) key: u32,
    pub(super) seq: u64,
}

//! Making greenlets: a record, a reserved stack, a place in the live table,
//! and a turn in the ready queue (now, or when a `spawn_later` timer fires).

use std::io;
use std::panic::Location;
use std::time::Instant;

use super::Hub;
use crate::task::{Core, Rec};
use crate::timer::TimerAction;

/// When a new greenlet first runs.
pub(crate) enum Start {
    /// At the next loop turn, after those spawned before it.
    Now,
    /// Once this instant has passed.
    At(Instant),
    /// Never on its own (a `spawn_later` delay past the clock's range).
    Never,
}

impl Hub {
    /// Creates a greenlet running `f`; scheduled now, or at `start`.
    /// Returns its record and its result slot.
    ///
    /// A stack is reserved now, so running out of them is an error here, but
    /// which stack it runs on is chosen, and the coroutine built, only when
    /// the greenlet first runs.
    #[allow(clippy::type_complexity)]
    #[inline(always)] // on every spawn's path: no call, no frame of its own
    pub(crate) fn spawn_task<T, F>(
        &self,
        f: F,
        name: Option<Box<str>>,
        stack_size: Option<usize>,
        location: &'static Location<'static>,
        start: Start,
    ) -> io::Result<(Rec, *mut T)>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let own_stack = self.stacks.borrow_mut().reserve(stack_size)?;
        let id = self.next_id();
        let reserved = own_stack.is_none();
        let (rec, value) = Rec::spawned(
            // The spawner, weakly (see `GreenletRef::spawning_greenlet`):
            // the greenlet running now.
            || Core::spawned(id, name, location, self.current_core(), reserved),
            f,
        );
        if own_stack.is_some() {
            rec.core().extra().stack = own_stack;
        }
        self.register_live(&rec);
        match start {
            Start::Now => self.schedule(rec.clone()),
            // A delay past the clock's range: it waits (`Delayed`, with no
            // timer) until it is killed; nothing else can start it.
            Start::Never => rec.core().delay(),
            Start::At(at) => {
                rec.core().delay();
                let h = self.arm_timer(at, || TimerAction::Start(rec.clone()));
                rec.core().extra().start_timer = Some(h);
            }
        }
        Ok((rec, value))
    }
}

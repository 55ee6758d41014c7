//! What a greenlet's death sets off: its joiners are woken and its links
//! fire (callbacks in new greenlets, `LinkedExited` for linked receivers).

use std::panic::Location;

use super::{Hub, Start};
use crate::interrupt::{panic_message, Ended, Interrupted, LinkedExited};
use crate::task::{LinkAction, Outcome, Rec};

impl Hub {
    /// Wakes the joiners of a greenlet that just died.
    #[inline]
    pub(crate) fn wake_joiners(&self, rec: &Rec) {
        // Most greenlets die unjoined (or joined after): nothing to take.
        if rec.core().has_joiners() {
            wake_all(rec.core().take_joiners());
        }
    }

    /// Wakes the joiners of a greenlet that just died and fires its links.
    #[inline]
    pub(super) fn on_death(&self, rec: &Rec) {
        self.wake_joiners(rec);
        // Links live in the extras, which most greenlets never have.
        if rec.core().has_extra() {
            self.fire_links(rec);
        }
    }

    #[cold]
    fn fire_links(&self, rec: &Rec) {
        let core = rec.core();
        let Some(links) = core
            .extra_if_any()
            .map(|mut e| std::mem::take(&mut e.links))
            .filter(|links| !links.is_empty())
        else {
            return;
        };
        let failed = core.outcome() == Outcome::Panicked;
        for l in links {
            if l.when.fires(failed) {
                self.fire_link(rec, l.action);
            }
        }
    }

    /// Fires one link of `rec`, which died (also for a link made after the
    /// death).
    pub(crate) fn fire_link(&self, rec: &Rec, action: LinkAction) {
        match action {
            LinkAction::Call(f) => {
                let rec = rec.clone();
                // A link runs in its own greenlet; if no stack can be had,
                // report it rather than lose the callback silently.
                let spawned = self.spawn_task::<(), _>(
                    move || f(rec),
                    None,
                    None,
                    Location::caller(),
                    Start::Now,
                );
                if let Err(e) = spawned {
                    log::error!("could not run a link callback: {e}");
                }
            }
            LinkAction::Notify(receiver) => self.notify_linked(rec, receiver),
        }
    }

    /// Interrupts `receiver` with the news of `dead`'s death.
    fn notify_linked(&self, dead: &Rec, receiver: Rec) {
        let core = dead.core();
        let ended = match core.outcome() {
            Outcome::Panicked => Ended::Panicked(
                core.extra_if_any()
                    .and_then(|e| e.panic.as_deref().map(|p| panic_message(p).to_string()))
                    .unwrap_or_else(|| "<payload already taken>".to_string()),
            ),
            Outcome::Killed => Ended::Killed,
            Outcome::Value | Outcome::Pending => Ended::Completed,
        };
        let e = LinkedExited::new(core.id(), core.name().into_owned(), core.location(), ended);
        self.interrupt(receiver, Interrupted::LinkedExited(e));
    }
}

#[cold]
fn wake_all(joiners: Vec<crate::task::Waker>) {
    for w in joiners {
        w.wake();
    }
}

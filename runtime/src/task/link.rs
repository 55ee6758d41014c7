//! Links: what a greenlet's death sets off, kept in its record as data the
//! hub runs when it records the death (`Hub::finish`).

use super::Rec;

/// A link's callback; it gets the record of the greenlet that died.
pub(crate) type LinkFn = Box<dyn FnOnce(Rec)>;

/// Which deaths fire a link.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkWhen {
    Always,
    Success,
    Failure,
}

impl LinkWhen {
    /// Whether a death that `failed` (panicked) fires the link.
    pub(crate) fn fires(self, failed: bool) -> bool {
        match self {
            LinkWhen::Always => true,
            LinkWhen::Success => !failed,
            LinkWhen::Failure => failed,
        }
    }
}

/// What a link does when its greenlet dies.
pub(crate) enum LinkAction {
    /// Runs a callback in a new greenlet.
    Call(LinkFn),
    /// Interrupts a receiver greenlet with `Interrupted::LinkedExited`.
    Notify(Rec),
}

/// One link of a greenlet; `id` names it for `unlink`.
pub(crate) struct Link {
    pub(crate) id: u64,
    pub(crate) when: LinkWhen,
    pub(crate) action: LinkAction,
}

//! Memory a burst of greenlets leaves behind, given back when it is over.

use super::Hub;

impl Hub {
    /// After a burst (the stack pool released a burst's worth of stacks):
    /// gives back the room the burst left in the hub's own tables, then the
    /// heap memory the allocator keeps free (the burst's greenlet records).
    #[cold]
    pub(crate) fn give_back_memory(&self) {
        self.live.borrow_mut().shrink_to_fit();
        self.ready.shrink_to_fit();
        crate::task::release_records();
        crate::stack::trim_heap();
    }
}

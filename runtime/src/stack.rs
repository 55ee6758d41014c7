//! Greenlet stacks and the per-hub pool that recycles them.
//!
//! Starting a coroutine on a recycled stack costs a few nanoseconds; a fresh
//! `mmap` + guard page costs microseconds. Every finished greenlet returns
//! its stack here and the next spawn of the same size takes it back.

use std::io;

/// The stack type greenlets run on.
pub(crate) type Stack = corosensei::stack::DefaultStack;

/// Default stack size of a greenlet: 64 KiB.
pub const DEFAULT_STACK_SIZE: usize = 64 * 1024;

/// Smallest stack a greenlet may ask for. Below this the hub's own switch
/// and park frames plus a panic's unwinding would not fit.
pub const MIN_STACK_SIZE: usize = 16 * 1024;

/// How many free stacks of the default size a hub keeps for reuse.
const POOL_CAP: usize = 1024;

/// Free stacks of one hub, all of [`DEFAULT_STACK_SIZE`] bytes; other sizes
/// are allocated and freed on demand.
pub(crate) struct StackPool {
    /// Free default-size stacks. Why a Vec: LIFO reuse keeps the most
    /// recently touched (cache- and TLB-warm) stack in use.
    free: Vec<Stack>,
}

impl StackPool {
    pub(crate) fn new() -> StackPool {
        StackPool { free: Vec::new() }
    }

    /// A stack of at least `size` bytes.
    ///
    /// # Errors
    /// `InvalidInput` for a size below [`MIN_STACK_SIZE`]; `OutOfMemory`
    /// (with the size and the fix) when the kernel refuses the mapping.
    pub(crate) fn get(&mut self, size: usize) -> io::Result<Stack> {
        if size == DEFAULT_STACK_SIZE {
            if let Some(s) = self.free.pop() {
                return Ok(s);
            }
        }
        if size < MIN_STACK_SIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "greenlet stack size {size} bytes is below the minimum of {MIN_STACK_SIZE} bytes; \
                     ask for at least {} KiB",
                    MIN_STACK_SIZE / 1024
                ),
            ));
        }
        Stack::new(size).map_err(|e| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "cannot allocate a {} KiB greenlet stack: {e}; free memory, lower the stack size \
                     with Builder::stack_size, or raise vm.max_map_count (each stack uses two maps)",
                    size / 1024
                ),
            )
        })
    }

    /// Takes back the stack of a finished greenlet.
    pub(crate) fn put(&mut self, stack: Stack, size: usize) {
        if size == DEFAULT_STACK_SIZE && self.free.len() < POOL_CAP {
            self.free.push(stack);
        }
    }

    /// Number of free stacks held.
    pub(crate) fn len(&self) -> usize {
        self.free.len()
    }
}

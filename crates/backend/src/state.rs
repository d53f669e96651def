//! `StateLock`: the lock every store above the backends keeps its memory in.

use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A read-write lock over a store's in-memory state whose guards ignore
/// poisoning. The stores change memory only after the backend committed, and
/// no step between panics, so a thread that panicked while holding the lock
/// cannot have left the state half-changed; refusing every later call would
/// turn one bug into an outage. Readers share the lock; a writer excludes all.
#[derive(Debug, Default)]
pub struct StateLock<T>(RwLock<T>);

impl<T> StateLock<T> {
    /// Wraps `state`.
    pub fn new(state: T) -> StateLock<T> {
        StateLock(RwLock::new(state))
    }

    /// Shared access.
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state itself, the lock consumed.
    pub fn into_inner(self) -> T {
        self.0
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Exclusive access.
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

//! The one place atomics and locks are imported from, so that `RUSTFLAGS="--cfg loom"` swaps in
//! loom's model-checked versions for every concurrent structure (tokio-util's `src/loom.rs`).

#[cfg(loom)]
pub(crate) use loom::sync::{
    Arc, Condvar, Mutex, MutexGuard,
    atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
};

#[cfg(not(loom))]
pub(crate) use std::sync::{
    Arc, Condvar, Mutex, MutexGuard,
    atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
};

/// Locks a mutex, recovering the data if a panicking thread poisoned it: a panic elsewhere must
/// never turn into a panic here.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

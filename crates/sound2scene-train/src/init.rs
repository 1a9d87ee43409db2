//! Seeded initialization under one process-wide lock.
//!
//! Burn's CPU backend has a single random generator for the whole process, so a seeded
//! initialization (seed the device, build the network, materialize every parameter) is only
//! reproducible if no other initialization draws from the generator meanwhile. Every loop of
//! this crate, and crates building on it, hold [`init_lock`] for that span.

use std::sync::{Mutex, MutexGuard};

static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Holds the process-wide initialization lock until the guard is dropped. A poisoned lock (a
/// panic during another initialization) is taken over: the generator is reseeded anyway.
pub fn init_lock() -> MutexGuard<'static, ()> {
    INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

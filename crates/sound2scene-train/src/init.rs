//! Seeded initialization under one process-wide lock.
//!
//! Burn's CPU backend has a single random generator for the whole process, so a seeded
//! initialization (seed the device, build the network, materialize every parameter) is only
//! reproducible if no other initialization draws from the generator meanwhile. Every loop of
//! this crate, and crates building on it, hold [`init_lock`] for that span.

use std::sync::{Mutex, MutexGuard};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};

static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Holds the process-wide initialization lock until the guard is dropped. A poisoned lock (a
/// panic during another initialization) is taken over: the generator is reseeded anyway.
pub fn init_lock() -> MutexGuard<'static, ()> {
    INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A randomly initialized module, the same for the same `seed`: under [`init_lock`], the
/// device's generator is seeded, `build` makes the module on `device`, and every lazily
/// initialized parameter is materialized (in traversal order) before the lock is released.
pub fn seeded<M: Module>(device: &Device, seed: u64, build: impl FnOnce(&Device) -> M) -> M {
    let _guard = init_lock();
    device.seed(seed);
    let module = build(device);
    materialize(&module);
    module
}

/// Draws every lazily initialized parameter of `module` now, in traversal order. Call it while
/// holding [`init_lock`], after seeding the device.
pub fn materialize<M: Module>(module: &M) {
    module.visit(&mut Materialize);
}

/// Forces every lazily initialized parameter to materialize.
struct Materialize;

impl ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }
}

/// The SplitMix64 finalizer: decorrelates nearby seeds, so that streams seeded with
/// `splitmix(seed ^ i)` for consecutive `i` (epochs, steps, crops) do not overlap.
pub fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

//! The kernels on plain slices: NCHW f32 data, one function per operation, no Burn types.

pub mod batch_norm;
pub mod conv;
pub mod conv_grad;
pub mod pool;
pub mod resample;
mod scratch;
pub mod simd;
pub mod winograd;

pub(crate) use scratch::Scratch;

/// A raw output pointer shared by the tasks of one kernel call, each writing its own
/// disjoint part.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub *mut f32);

// SAFETY: the kernels hand each task a disjoint region of the buffer behind the pointer, and
// the buffer outlives the parallel section that uses it.
unsafe impl Send for SendPtr {}
// SAFETY: as above.
unsafe impl Sync for SendPtr {}

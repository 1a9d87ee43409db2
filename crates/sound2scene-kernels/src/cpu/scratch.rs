//! Buffers for the kernels' intermediate data (the padded input of a convolution, the
//! transformed tiles of Winograd's algorithm), backed by transparent huge pages on Linux when
//! they are large, and kept in a small pool between calls.
//!
//! A convolution's inner loop reads, for each tile of outputs, a few rows of every input
//! channel: with 4 KiB pages and input planes of tens of kilobytes that is a different page
//! for almost every step, more than the CPU's first-level TLB holds (64 entries on current
//! x86-64 cores). On 2 MiB pages the same rows lie on a handful. Measured on f_A's first
//! block (`conv_layers`), 59 → 78 GFLOP/s. Linux hands out huge pages to a region marked with
//! `madvise(MADV_HUGEPAGE)` when its transparent-huge-page setting is `madvise` (the common
//! default) or `always`; with `never`, or on other systems, the buffer is ordinary memory.
//!
//! A fresh mapping is faulted in, and cleared by the kernel, page by page on first touch: in
//! the GAN training step (many convolutions of a few megabytes each) that page clearing took
//! ~9 % of the time. So a dropped mapping goes back to a pool of at most [`POOL_MAPPINGS`]
//! mappings and [`POOL_BYTES`] bytes, and the next buffer that fits takes it again.

use std::ops::{Deref, DerefMut};
#[cfg(target_os = "linux")]
use std::sync::Mutex;

/// The huge page size the buffers are aligned to.
const HUGE_PAGE: usize = 2 << 20;

/// Most mappings the pool keeps.
const POOL_MAPPINGS: usize = 8;

/// Most bytes the pool keeps (mapped, not necessarily resident).
const POOL_BYTES: usize = 1 << 30;

/// A `[f32]` buffer, freed (or returned to the pool) when dropped.
pub(crate) struct Scratch {
    ptr: *mut f32,
    len: usize,
    backing: Backing,
}

enum Backing {
    /// An ordinary allocation (small buffers, or when mapping failed), kept until the drop.
    Heap { _owner: Vec<f32> },
    /// An anonymous mapping marked for huge pages, with the buffer at its first huge-page
    /// boundary.
    #[cfg(target_os = "linux")]
    Mapped(Mapping),
}

/// An anonymous mapping of `len` bytes at `base`, holding `capacity` floats from `start` (a
/// huge-page boundary). Every float in it is initialized: zero when mapped, or whatever a
/// previous buffer wrote.
#[cfg(target_os = "linux")]
struct Mapping {
    base: *mut libc::c_void,
    len: usize,
    start: *mut f32,
    capacity: usize,
}

// SAFETY: a mapping is plain memory owned by whoever holds the `Mapping`.
#[cfg(target_os = "linux")]
unsafe impl Send for Mapping {}

/// Mappings that buffers have given back, for the next ones to take.
#[cfg(target_os = "linux")]
static POOL: Mutex<Vec<Mapping>> = Mutex::new(Vec::new());

// SAFETY: a `Scratch` owns its memory exclusively, like a `Vec<f32>`.
unsafe impl Send for Scratch {}
// SAFETY: shared access only reads, as for `&[f32]`.
unsafe impl Sync for Scratch {}

impl Scratch {
    /// `len` floats of unspecified values (zeros, or what an earlier buffer left), for a
    /// caller that writes every one before reading it: huge-page backed when at least one
    /// huge page large (on Linux), taken from the pool when a mapping there fits.
    pub(crate) fn reused(len: usize) -> Self {
        #[cfg(target_os = "linux")]
        if len.saturating_mul(4) >= HUGE_PAGE
            && let Some(mapping) = Mapping::take(len).or_else(|| Mapping::new(len))
        {
            return Self {
                ptr: mapping.start,
                len,
                backing: Backing::Mapped(mapping),
            };
        }
        let mut heap = vec![0.0f32; len];
        Self {
            ptr: heap.as_mut_ptr(),
            len,
            backing: Backing::Heap { _owner: heap },
        }
    }
}

#[cfg(target_os = "linux")]
impl Mapping {
    /// A fresh mapping (zero-filled by the kernel) for `len` floats, marked `MADV_HUGEPAGE`;
    /// `None` when the system refuses the mapping.
    fn new(len: usize) -> Option<Self> {
        let bytes = len.checked_mul(4)?.next_multiple_of(HUGE_PAGE);
        let map_len = bytes.checked_add(HUGE_PAGE)?;
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        let skip = (base as usize).next_multiple_of(HUGE_PAGE) - base as usize;
        // SAFETY: `skip + bytes <= map_len`, so the buffer lies inside the mapping.
        let start = unsafe { base.cast::<u8>().add(skip) };
        // SAFETY: advice on a range of our own mapping; a refusal (THP off) changes nothing.
        unsafe { libc::madvise(start.cast(), bytes, libc::MADV_HUGEPAGE) };
        Some(Self {
            base,
            len: map_len,
            start: start.cast(),
            capacity: bytes / 4,
        })
    }

    /// The smallest pooled mapping that holds `len` floats, out of the pool.
    fn take(len: usize) -> Option<Self> {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        let best = (0..pool.len())
            .filter(|&i| pool[i].capacity >= len)
            .min_by_key(|&i| pool[i].capacity)?;
        Some(pool.swap_remove(best))
    }

    /// Back into the pool; the smallest mappings are unmapped while the pool holds more than
    /// [`POOL_MAPPINGS`] mappings or [`POOL_BYTES`] bytes.
    fn give_back(self) {
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        pool.push(self);
        while pool.len() > POOL_MAPPINGS || pool.iter().map(|m| m.len).sum::<usize>() > POOL_BYTES {
            let smallest = (0..pool.len())
                .min_by_key(|&i| pool[i].len)
                .expect("the pool is not empty");
            drop(pool.swap_remove(smallest));
        }
    }
}

#[cfg(target_os = "linux")]
impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `Mapping::new` with this base and length, and
        // nothing borrows it once its owner drops it.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

impl Deref for Scratch {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        // SAFETY: `ptr` points at `len` initialized floats owned by `self` (a Vec's, or a
        // mapping's, whose floats are all initialized).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let backing = std::mem::replace(&mut self.backing, Backing::Heap { _owner: Vec::new() });
        match backing {
            Backing::Heap { .. } => {}
            #[cfg(target_os = "linux")]
            Backing::Mapped(mapping) => mapping.give_back(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_buffers_are_writable() {
        for len in [0, 7, HUGE_PAGE / 4 + 3, 3 * HUGE_PAGE / 4] {
            let mut buffer = Scratch::reused(len);
            assert_eq!(buffer.len(), len);
            if len > 0 {
                buffer[len - 1] = 1.5;
                buffer[0] = -2.0;
                assert_eq!((buffer[0], buffer[len - 1]), (-2.0, 1.5));
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_pool_stays_bounded() {
        let buffers: Vec<_> = (1..=2 * POOL_MAPPINGS)
            .map(|i| Scratch::reused(i * HUGE_PAGE / 4))
            .collect();
        drop(buffers);
        let pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        assert!(pool.len() <= POOL_MAPPINGS);
        assert!(pool.iter().map(|m| m.len).sum::<usize>() <= POOL_BYTES);
    }
}

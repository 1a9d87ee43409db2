//! Zeroed buffers for the kernels' intermediate data (the padded input of a convolution),
//! backed by transparent huge pages on Linux when they are large.
//!
//! A convolution's inner loop reads, for each tile of outputs, a few rows of every input
//! channel: with 4 KiB pages and input planes of tens of kilobytes that is a different page
//! for almost every step, more than the CPU's first-level TLB holds (64 entries on current
//! x86-64 cores). On 2 MiB pages the same rows lie on a handful. Measured on f_A's first
//! block (`conv_layers`), 59 → 78 GFLOP/s. Linux hands out huge pages to a region marked with
//! `madvise(MADV_HUGEPAGE)` when its transparent-huge-page setting is `madvise` (the common
//! default) or `always`; with `never`, or on other systems, the buffer is ordinary memory.

use std::ops::{Deref, DerefMut};

/// The huge page size the buffers are aligned to.
const HUGE_PAGE: usize = 2 << 20;

/// A zeroed `[f32]` buffer, freed when dropped.
pub(crate) struct Scratch {
    ptr: *mut f32,
    len: usize,
    backing: Backing,
}

enum Backing {
    /// An ordinary allocation (small buffers, or when mapping failed), kept until the drop.
    Heap { _owner: Vec<f32> },
    /// An anonymous mapping of `len` bytes at `base`, marked for huge pages.
    #[cfg(target_os = "linux")]
    Mapped { base: *mut libc::c_void, len: usize },
}

// SAFETY: a `Scratch` owns its memory exclusively, like a `Vec<f32>`.
unsafe impl Send for Scratch {}
// SAFETY: shared access only reads, as for `&[f32]`.
unsafe impl Sync for Scratch {}

impl Scratch {
    /// `len` zeros: huge-page backed when at least one huge page large (on Linux).
    pub(crate) fn zeroed(len: usize) -> Self {
        #[cfg(target_os = "linux")]
        if len.saturating_mul(4) >= HUGE_PAGE
            && let Some(mapped) = Self::mapped(len)
        {
            return mapped;
        }
        let mut heap = vec![0.0f32; len];
        Self {
            ptr: heap.as_mut_ptr(),
            len,
            backing: Backing::Heap { _owner: heap },
        }
    }

    /// An anonymous mapping (zero-filled by the kernel) with the buffer at a huge-page
    /// boundary, marked `MADV_HUGEPAGE`; `None` when the system refuses the mapping.
    #[cfg(target_os = "linux")]
    fn mapped(len: usize) -> Option<Self> {
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
            ptr: start.cast(),
            len,
            backing: Backing::Mapped { base, len: map_len },
        })
    }
}

impl Deref for Scratch {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        // SAFETY: `ptr` points at `len` initialized floats owned by `self` (a Vec's, or a
        // zero-filled mapping's).
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
        match &self.backing {
            Backing::Heap { .. } => {}
            #[cfg(target_os = "linux")]
            Backing::Mapped { base, len } => {
                // SAFETY: the mapping was made in `mapped` with this base and length, and
                // nothing borrows the buffer once it is dropped.
                unsafe { libc::munmap(*base, *len) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_buffers_are_zeroed_and_writable() {
        for len in [0, 7, HUGE_PAGE / 4 + 3, 3 * HUGE_PAGE / 4] {
            let mut buffer = Scratch::zeroed(len);
            assert_eq!(buffer.len(), len);
            assert!(buffer.iter().all(|&v| v == 0.0));
            if len > 0 {
                buffer[len - 1] = 1.5;
                buffer[0] = -2.0;
                assert_eq!((buffer[0], buffer[len - 1]), (-2.0, 1.5));
            }
        }
    }
}

//! How the process's allocator treats the large, short-lived buffers of the networks.

/// Keep freed memory in the process for reuse instead of returning it to the system.
///
/// A training step (and a batched generation) allocates and frees activations of tens of
/// megabytes, many times a step. glibc serves each of them with a fresh `mmap` and unmaps it on
/// `free`, so every step faults its working set in again from zeroed pages; measured on the
/// alignment step that costs about a quarter of its time. This raises glibc's mmap threshold to
/// 1 GiB and turns off trimming, so freed blocks stay in the heap. The price is a process that
/// keeps its peak footprint until it exits, which is what a training run or a server wants.
///
/// Call it once, at the start of `main`, before the first tensor. It changes process-wide
/// allocator settings, so a library never calls it on its own; the CLI, the examples and the
/// benches do. It does nothing on platforms other than Linux with glibc (other allocators keep
/// freed memory already, or have their own settings). Returns whether the settings took.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator tuning values; it is called with documented
        // parameters and valid values, and glibc serializes it against concurrent allocation.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

//! Eight f32 lanes, the unit every kernel here computes in: AVX2 + FMA registers on x86-64
//! CPUs that have them (chosen at run time, see [`Isa::detect`]), plain arrays the compiler
//! vectorizes for the target's baseline (SSE2, NEON, …) everywhere else.

/// Number of f32 lanes in one [`Lanes`] value.
pub const LANES: usize = 8;

/// The instruction sets the kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// AVX2 with fused multiply-add (x86-64 since Haswell and Zen; AVX-512 CPUs have it too).
    Avx2Fma,
    /// Portable code for the target's baseline vector unit.
    Portable,
}

impl Isa {
    /// The best instruction set this CPU runs, detected once per process.
    pub fn detect() -> Self {
        static DETECTED: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *DETECTED.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2Fma;
            }
            Isa::Portable
        })
    }

    /// Every instruction set this CPU can run, best first (tests run the kernels on each).
    pub fn available() -> Vec<Self> {
        match Self::detect() {
            Isa::Avx2Fma => vec![Isa::Avx2Fma, Isa::Portable],
            Isa::Portable => vec![Isa::Portable],
        }
    }
}

/// Eight f32 lanes.
///
/// # Safety
/// Every method is `unsafe`, under one contract: pointers must be valid for eight reads or
/// writes (one for [`Lanes::splat_from`]), and the implementation's instruction set must be
/// available on the running CPU.
#[allow(
    clippy::missing_safety_doc,
    reason = "the trait's Safety section is the one contract of all its methods"
)]
pub trait Lanes: Copy {
    /// All lanes zero.
    unsafe fn zero() -> Self;
    /// All lanes `value`.
    unsafe fn splat(value: f32) -> Self;
    /// All lanes `*ptr`.
    unsafe fn splat_from(ptr: *const f32) -> Self;
    /// Eight consecutive values from `ptr` (no alignment needed).
    unsafe fn load(ptr: *const f32) -> Self;
    /// Store the eight lanes at `ptr` (no alignment needed).
    unsafe fn store(self, ptr: *mut f32);
    /// `a · b + c`, fused where the instruction set has it.
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self;
    /// `a + b`.
    unsafe fn add(a: Self, b: Self) -> Self;
    /// `a − b`.
    unsafe fn sub(a: Self, b: Self) -> Self;
    /// `max(0, a)` per lane, NaN staying NaN and -0 becoming +0 (as Burn's `relu`).
    unsafe fn relu(a: Self) -> Self;
    /// The sum of the eight lanes.
    unsafe fn sum(self) -> f32;
}

/// The portable lanes: an array the optimizer maps onto the target's vector registers.
#[derive(Clone, Copy)]
pub struct Portable([f32; LANES]);

impl Lanes for Portable {
    #[inline(always)]
    unsafe fn zero() -> Self {
        Self([0.0; LANES])
    }

    #[inline(always)]
    unsafe fn splat(value: f32) -> Self {
        Self([value; LANES])
    }

    #[inline(always)]
    unsafe fn splat_from(ptr: *const f32) -> Self {
        // SAFETY: the caller guarantees `ptr` is valid for one read.
        Self([unsafe { *ptr }; LANES])
    }

    #[inline(always)]
    unsafe fn load(ptr: *const f32) -> Self {
        // SAFETY: the caller guarantees `ptr` is valid for eight reads.
        Self(unsafe { ptr.cast::<[f32; LANES]>().read_unaligned() })
    }

    #[inline(always)]
    unsafe fn store(self, ptr: *mut f32) {
        // SAFETY: the caller guarantees `ptr` is valid for eight writes.
        unsafe { ptr.cast::<[f32; LANES]>().write_unaligned(self.0) }
    }

    #[inline(always)]
    unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
        Self(std::array::from_fn(|i| a.0[i] * b.0[i] + c.0[i]))
    }

    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        Self(std::array::from_fn(|i| a.0[i] + b.0[i]))
    }

    #[inline(always)]
    unsafe fn sub(a: Self, b: Self) -> Self {
        Self(std::array::from_fn(|i| a.0[i] - b.0[i]))
    }

    #[inline(always)]
    unsafe fn relu(a: Self) -> Self {
        Self(a.0.map(|v| if v.is_nan() || v > 0.0 { v } else { 0.0 }))
    }

    #[inline(always)]
    unsafe fn sum(self) -> f32 {
        self.0.iter().sum()
    }
}

#[cfg(target_arch = "x86_64")]
pub use avx2::Avx2;

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::Lanes;

    /// AVX2 + FMA lanes (one `ymm` register).
    #[derive(Clone, Copy)]
    pub struct Avx2(pub(crate) __m256);

    // SAFETY (every method): the caller guarantees AVX2 and FMA are available and the pointers
    // are valid, per the `Lanes` contract.
    impl Lanes for Avx2 {
        #[inline(always)]
        unsafe fn zero() -> Self {
            Self(unsafe { _mm256_setzero_ps() })
        }

        #[inline(always)]
        unsafe fn splat(value: f32) -> Self {
            Self(unsafe { _mm256_set1_ps(value) })
        }

        #[inline(always)]
        unsafe fn splat_from(ptr: *const f32) -> Self {
            Self(unsafe { _mm256_broadcast_ss(&*ptr) })
        }

        #[inline(always)]
        unsafe fn load(ptr: *const f32) -> Self {
            Self(unsafe { _mm256_loadu_ps(ptr) })
        }

        #[inline(always)]
        unsafe fn store(self, ptr: *mut f32) {
            unsafe { _mm256_storeu_ps(ptr, self.0) }
        }

        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            Self(unsafe { _mm256_fmadd_ps(a.0, b.0, c.0) })
        }

        #[inline(always)]
        unsafe fn add(a: Self, b: Self) -> Self {
            Self(unsafe { _mm256_add_ps(a.0, b.0) })
        }

        #[inline(always)]
        unsafe fn sub(a: Self, b: Self) -> Self {
            Self(unsafe { _mm256_sub_ps(a.0, b.0) })
        }

        #[inline(always)]
        unsafe fn relu(a: Self) -> Self {
            // Keep the lanes that are greater than zero or NaN ("not less or equal,
            // unordered"), zero the others: NaN passes through and -0 becomes +0, as in Burn's
            // `relu`.
            unsafe {
                let keep = _mm256_cmp_ps::<_CMP_NLE_UQ>(a.0, _mm256_setzero_ps());
                Self(_mm256_and_ps(keep, a.0))
            }
        }

        #[inline(always)]
        unsafe fn sum(self) -> f32 {
            unsafe {
                let quad = _mm_add_ps(
                    _mm256_castps256_ps128(self.0),
                    _mm256_extractf128_ps(self.0, 1),
                );
                let pair = _mm_add_ps(quad, _mm_movehl_ps(quad, quad));
                let one = _mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1));
                _mm_cvtss_f32(one)
            }
        }
    }
}

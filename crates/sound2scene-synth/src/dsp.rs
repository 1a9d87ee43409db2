//! Small signal-processing and hashing helpers shared by the sound and picture generators.

use std::f32::consts::PI;

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Sample rate of every waveform produced by this crate, in Hz.
pub const SAMPLE_RATE: u32 = 16_000;

/// Sample rate as `f32`, in Hz.
pub(crate) const SR: f32 = SAMPLE_RATE as f32;

/// A second-order IIR section (RBJ audio-EQ cookbook), direct form I.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Biquad {
    b0: f32,
    b1: f32,
    b2: f32,
    a1: f32,
    a2: f32,
    x1: f32,
    x2: f32,
    y1: f32,
    y2: f32,
}

impl Biquad {
    fn from_coefficients(b: [f32; 3], a: [f32; 3]) -> Self {
        Biquad {
            b0: b[0] / a[0],
            b1: b[1] / a[0],
            b2: b[2] / a[0],
            a1: a[1] / a[0],
            a2: a[2] / a[0],
            x1: 0.0,
            x2: 0.0,
            y1: 0.0,
            y2: 0.0,
        }
    }

    fn omega(freq_hz: f32, q: f32) -> (f32, f32) {
        let w = 2.0 * PI * freq_hz.clamp(1.0, 0.49 * SR) / SR;
        (w.cos(), w.sin() / (2.0 * q.max(0.05)))
    }

    /// Low-pass at `freq_hz` with quality `q`.
    pub(crate) fn lowpass(freq_hz: f32, q: f32) -> Self {
        let (c, alpha) = Self::omega(freq_hz, q);
        Self::from_coefficients(
            [(1.0 - c) / 2.0, 1.0 - c, (1.0 - c) / 2.0],
            [1.0 + alpha, -2.0 * c, 1.0 - alpha],
        )
    }

    /// High-pass at `freq_hz` with quality `q`.
    pub(crate) fn highpass(freq_hz: f32, q: f32) -> Self {
        let (c, alpha) = Self::omega(freq_hz, q);
        Self::from_coefficients(
            [(1.0 + c) / 2.0, -(1.0 + c), (1.0 + c) / 2.0],
            [1.0 + alpha, -2.0 * c, 1.0 - alpha],
        )
    }

    /// Band-pass centred on `freq_hz` with 0 dB peak gain and quality `q`.
    pub(crate) fn bandpass(freq_hz: f32, q: f32) -> Self {
        let (c, alpha) = Self::omega(freq_hz, q);
        Self::from_coefficients([alpha, 0.0, -alpha], [1.0 + alpha, -2.0 * c, 1.0 - alpha])
    }

    /// Filters one sample.
    pub(crate) fn process(&mut self, x: f32) -> f32 {
        let y = self.b0 * x + self.b1 * self.x1 + self.b2 * self.x2
            - self.a1 * self.y1
            - self.a2 * self.y2;
        self.x2 = self.x1;
        self.x1 = x;
        self.y2 = self.y1;
        self.y1 = y;
        y
    }
}

/// Uniform white noise in `[-1, 1)`.
pub(crate) fn white(rng: &mut ChaCha8Rng) -> f32 {
    rng.random::<f32>() * 2.0 - 1.0
}

/// Scales `buf` in place so that its RMS equals `target_rms`; an all-zero buffer stays zero.
pub(crate) fn normalize_rms(buf: &mut [f32], target_rms: f32) {
    let rms = rms(buf);
    if rms > 1e-12 {
        let k = target_rms / rms;
        buf.iter_mut().for_each(|x| *x *= k);
    }
}

/// Root mean square of `buf` (0 for an empty buffer).
pub(crate) fn rms(buf: &[f32]) -> f32 {
    if buf.is_empty() {
        return 0.0;
    }
    let energy: f64 = buf.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    (energy / buf.len() as f64).sqrt() as f32
}

/// A smooth random modulation in `[0, 1]`: a sum of three slow sines with random rates in
/// `[lo_hz, hi_hz]` and random phases.
pub(crate) struct Swell {
    parts: [(f32, f32); 3],
}

impl Swell {
    /// Draws the rates and phases.
    pub(crate) fn new(rng: &mut ChaCha8Rng, lo_hz: f32, hi_hz: f32) -> Self {
        let mut part = || {
            (
                rng.random_range(lo_hz..hi_hz),
                rng.random_range(0.0..2.0 * PI),
            )
        };
        Swell {
            parts: [part(), part(), part()],
        }
    }

    /// Value at `t` seconds.
    pub(crate) fn at(&self, t: f32) -> f32 {
        let s: f32 = self
            .parts
            .iter()
            .map(|&(f, p)| (2.0 * PI * f * t + p).sin())
            .sum();
        0.5 + s / 6.0
    }
}

/// SplitMix64 finaliser: a well-mixed 64-bit hash of `x`.
pub(crate) fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Derives an independent seed from `seed` and a stream number.
pub(crate) fn derive_seed(seed: u64, stream: u64) -> u64 {
    mix64(seed ^ mix64(stream.wrapping_add(0x5EED)))
}

/// A ChaCha8 generator seeded from `seed` and a stream number.
pub(crate) fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Deterministic value noise in `[0, 1)` for integer lattice point `(x, y)`.
pub(crate) fn hash01(seed: u64, x: i64, y: i64) -> f32 {
    let h = mix64(seed ^ mix64((x as u64).wrapping_mul(0x1_0000_0001) ^ ((y as u64) << 21)));
    (h >> 40) as f32 / (1u64 << 24) as f32
}

/// Smooth (bilinear, smoothstep-interpolated) value noise in `[0, 1)` at `(x, y)` in lattice
/// units.
pub(crate) fn value_noise(seed: u64, x: f32, y: f32) -> f32 {
    let (fx, fy) = (x.floor(), y.floor());
    let (ix, iy) = (fx as i64, fy as i64);
    let (tx, ty) = (x - fx, y - fy);
    let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
    let a = hash01(seed, ix, iy);
    let b = hash01(seed, ix + 1, iy);
    let c = hash01(seed, ix, iy + 1);
    let d = hash01(seed, ix + 1, iy + 1);
    let top = a + (b - a) * sx;
    let bottom = c + (d - c) * sx;
    top + (bottom - top) * sy
}

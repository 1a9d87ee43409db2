//! The official Sound2Scene audio front end: tile, clip, `scipy.signal.spectrogram`, log,
//! standardize.
//!
//! The official Python is
//!
//! ```python
//! samples, sr = soundfile.read(wav)
//! resamples = np.tile(samples, 10)[:160000]
//! resamples[resamples > 1.] = 1.; resamples[resamples < -1.] = -1.
//! f, t, S = signal.spectrogram(resamples, sr, nperseg=512, noverlap=353)
//! S = np.log(S + 1e-7)
//! S = (S - S.mean()) / (S.std() + 1e-9)
//! ```
//!
//! `signal.spectrogram` defaults: periodic Tukey window (alpha 0.25), constant detrend per
//! segment, one-sided spectrum, `density` scaling `|X|^2 / (fs * sum(w^2))` with all bins except
//! DC and Nyquist doubled.
//!
//! # Short clips
//!
//! `np.tile(samples, 10)` repeats a clip exactly ten times before the cut, so a clip shorter
//! than 1 s gives less than 10 s and fewer frames: a 0.5 s clip gives 5 s, `[257, 500]`. That is
//! the default here ([`Tiling::Official`]), so the released audio encoder sees what it sees in
//! the official code. [`Tiling::Fill`] instead repeats a short clip until the full
//! [`SpectrogramConfig::seconds`], so every clip gives `[257, 1004]`; the training data sets use
//! it, because a batch needs one width (the official data loader would fail to stack such a
//! batch). A clip whose ten repetitions are shorter than one 512-sample segment (under 3.2 ms
//! at 16 kHz) is refused under the official cut; scipy would shrink the segment instead.
//!
//! # Beyond the official code
//!
//! The official code reads a 16 kHz mono WAV and assumes both. Here any sample rate and
//! channel count are accepted: [`SpectrogramPlan::compute`] averages the channels to mono and
//! resamples to [`SpectrogramConfig::sample_rate`] (16 kHz) first, then applies the official
//! recipe. For 16 kHz mono input this step does nothing and the result matches the official
//! one; for other input it is the nearest faithful reading (checked on a 44.1 kHz stereo copy
//! of a fixture by correlation, not bit parity). Clip length, FFT size and overlap are
//! parameters, with the official values as defaults.
//!
//! Precision: the mean, variance and scale are computed in `f64`; the per-frame FFT and the
//! logarithm run in `f32`, which is about 4x faster. This cannot move the output by more than
//! ~1e-4: the input is clipped to `[-1, 1]`, so the `f32` FFT's absolute error is at most ~1e-5
//! of a full-scale bin, and the `+ 1e-7` floor bounds how much such an error can change a
//! logarithm. Against scipy's `f64` reference the measured difference is below 1e-5 (the parity
//! tests require 1e-3).

use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use crate::error::{AudioError, Result};
use crate::waveform::Waveform;

/// Frames handled by one parallel task (fixed, so results do not depend on the thread count).
const FRAMES_PER_TASK: usize = 64;
/// Frames computed into a small frame-major tile before it is transposed into its block.
const TILE_FRAMES: usize = 8;
/// Added to the power spectral density before the logarithm, as in the official code.
const LOG_EPS: f32 = 1e-7;
/// Added to the standard deviation before dividing, as in the official code.
const STD_EPS: f64 = 1e-9;
/// Tukey window shape parameter used by `scipy.signal.spectrogram`.
const TUKEY_ALPHA: f64 = 0.25;
/// How many times the official code repeats a clip before cutting it (`np.tile(samples, 10)`).
pub const OFFICIAL_REPEATS: usize = 10;

/// How a clip shorter than [`SpectrogramConfig::seconds`] is lengthened before the transform.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tiling {
    /// As the official code: `np.tile(samples, 10)[:num_samples]`. The clip is repeated exactly
    /// [`OFFICIAL_REPEATS`] times and cut to `num_samples`, so a clip shorter than a tenth of
    /// `seconds` gives fewer frames (0.5 s gives `[257, 500]`). The default.
    #[default]
    Official,
    /// Repeated from its start until exactly `num_samples`, so every clip gives
    /// [`SpectrogramConfig::frames`] frames (`[257, 1004]`). Needed where spectrograms must
    /// share one width, e.g. in a training batch. Identical to [`Tiling::Official`] for clips of
    /// at least a tenth of `seconds`.
    Fill,
}

/// Parameters of the front end. The defaults are the paper's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpectrogramConfig {
    /// Clip length in seconds after tiling (default 10.0).
    pub seconds: f32,
    /// Sample rate in Hz the waveform is brought to before the transform (default 16000).
    pub sample_rate: u32,
    /// Segment (FFT) length in samples, scipy's `nperseg` (default 512).
    pub n_fft: usize,
    /// Overlap between consecutive segments in samples, scipy's `noverlap` (default 353).
    pub noverlap: usize,
    /// How short clips are lengthened (default [`Tiling::Official`], as the official code).
    pub tiling: Tiling,
}

impl Default for SpectrogramConfig {
    fn default() -> Self {
        Self {
            seconds: 10.0,
            sample_rate: 16_000,
            n_fft: 512,
            noverlap: 353,
            tiling: Tiling::Official,
        }
    }
}

impl SpectrogramConfig {
    /// Number of input samples of a full-length clip: `round(seconds * sample_rate)` (160000 by
    /// default).
    pub fn num_samples(&self) -> usize {
        (f64::from(self.seconds) * f64::from(self.sample_rate)).round() as usize
    }

    /// Number of samples transformed for a clip of `len` samples (at `sample_rate`):
    /// [`num_samples`](Self::num_samples) with [`Tiling::Fill`]; with [`Tiling::Official`] at
    /// most ten times `len` (`len(np.tile(x, 10)[:num_samples])`).
    pub fn tiled_len(&self, len: usize) -> usize {
        match self.tiling {
            Tiling::Official => len.saturating_mul(OFFICIAL_REPEATS).min(self.num_samples()),
            Tiling::Fill => self.num_samples(),
        }
    }

    /// Number of time frames for a clip of `len` samples (at `sample_rate`):
    /// `(tiled_len - n_fft) / hop + 1`; 0 if the configuration is invalid or the tiled clip is
    /// shorter than one segment. Equal to [`frames`](Self::frames) for clips of at least a
    /// tenth of `seconds`, and always with [`Tiling::Fill`].
    pub fn frames_for(&self, len: usize) -> usize {
        let n = self.tiled_len(len);
        if self.validate().is_err() || n < self.n_fft {
            return 0;
        }
        (n - self.n_fft) / self.hop() + 1
    }

    /// Hop between segments in samples: `n_fft - noverlap` (159 by default).
    pub fn hop(&self) -> usize {
        self.n_fft.saturating_sub(self.noverlap)
    }

    /// Number of frequency bins: `n_fft / 2 + 1` (257 by default).
    pub fn bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Number of time frames of a full-length clip: `(num_samples - n_fft) / hop + 1` (1004 by
    /// default); 0 if the configuration is invalid. Shorter clips can give fewer under
    /// [`Tiling::Official`]: see [`frames_for`](Self::frames_for).
    pub fn frames(&self) -> usize {
        let n = self.num_samples();
        if self.validate().is_err() {
            return 0;
        }
        (n - self.n_fft) / self.hop() + 1
    }

    /// Check that the configuration describes a computable spectrogram.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(AudioError::InvalidArgument(m));
        if !(self.seconds.is_finite() && self.seconds > 0.0) {
            return bad(format!(
                "spectrogram seconds must be positive, got {}",
                self.seconds
            ));
        }
        if self.sample_rate == 0 || self.sample_rate > crate::MAX_SAMPLE_RATE {
            return bad(format!(
                "spectrogram sample rate must be in 1..={} Hz, got {}",
                crate::MAX_SAMPLE_RATE,
                self.sample_rate
            ));
        }
        if self.n_fft < 2 {
            return bad(format!("n_fft must be at least 2, got {}", self.n_fft));
        }
        if self.noverlap >= self.n_fft {
            return bad(format!(
                "noverlap ({}) must be smaller than n_fft ({})",
                self.noverlap, self.n_fft
            ));
        }
        if f64::from(self.seconds) * f64::from(self.sample_rate) > 1e10 {
            return bad(format!("{} s is too long for a spectrogram", self.seconds));
        }
        if self.num_samples() < self.n_fft {
            return bad(format!(
                "{} s at {} Hz gives {} samples, fewer than n_fft = {}",
                self.seconds,
                self.sample_rate,
                self.num_samples(),
                self.n_fft
            ));
        }
        Ok(())
    }
}

/// A standardized log spectrogram, `[bins, frames]` row-major `f32` (`[257, 1004]` by default
/// for clips of at least 1 s; fewer frames for shorter clips under [`Tiling::Official`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Spectrogram {
    data: Vec<f32>,
    bins: usize,
    frames: usize,
}

impl Spectrogram {
    /// Front end with the default configuration (10 s, 16 kHz, 512/353, official tiling):
    /// `[257, 1004]` for clips of at least 1 s, `[257, frames_for(len)]` for shorter ones.
    ///
    /// The waveform is downmixed and resampled to 16 kHz first if needed.
    pub fn compute(wave: &Waveform) -> Result<Spectrogram> {
        Self::compute_with(wave, &SpectrogramConfig::default())
    }

    /// Front end with the given configuration (the plan is cached per configuration).
    pub fn compute_with(wave: &Waveform, cfg: &SpectrogramConfig) -> Result<Spectrogram> {
        SpectrogramPlan::cached(cfg)?.compute(wave)
    }

    /// Wrap existing row-major `[bins, frames]` data (e.g. read from a `.npy`).
    pub fn from_vec(data: Vec<f32>, bins: usize, frames: usize) -> Result<Spectrogram> {
        if bins.checked_mul(frames) != Some(data.len()) {
            return Err(AudioError::InvalidArgument(format!(
                "{} values do not form a [{bins}, {frames}] spectrogram",
                data.len()
            )));
        }
        Ok(Self { data, bins, frames })
    }

    /// Number of frequency bins (rows), `n_fft / 2 + 1`.
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// Number of time frames (columns).
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// `[bins, frames]`.
    pub fn shape(&self) -> [usize; 2] {
        [self.bins, self.frames]
    }

    /// Row-major values: `data()[bin * frames() + frame]`.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Value at (`bin`, `frame`), or `None` outside the shape.
    pub fn get(&self, bin: usize, frame: usize) -> Option<f32> {
        (bin < self.bins && frame < self.frames).then(|| self.data[bin * self.frames + frame])
    }

    /// The row-major values, consuming the spectrogram.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
}

/// A reusable front end for one [`SpectrogramConfig`]: window, FFT plan and per-bin scale are
/// built once.
///
/// `compute` is thread-safe and parallelizes over blocks of 64 frames with rayon; buffers are
/// allocated once per block, never per frame.
pub struct SpectrogramPlan {
    cfg: SpectrogramConfig,
    window: Vec<f64>,
    window32: Vec<f32>,
    /// `n_fft` zeros: the partner of an unpaired last frame.
    zeros: Vec<f32>,
    /// Complex FFT of length `n_fft`; it transforms two real frames at once (one as the real,
    /// one as the imaginary part).
    fft: Arc<dyn Fft<f32>>,
    /// Per-bin density scale: `1 / (fs * sum(w^2))`, doubled except at DC and Nyquist, and
    /// divided by 4 for the two-frames-in-one-FFT separation.
    bin_scale: Vec<f32>,
}

impl std::fmt::Debug for SpectrogramPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpectrogramPlan")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// `ln(PSD + eps)` of up to [`FRAMES_PER_TASK`] consecutive frames, bin-major
/// (`logs[k * len + j]` for bin `k` and frame `j` of the block's `len`), and the sum of its values.
struct Block {
    logs: Vec<f32>,
    sum: f64,
}

impl SpectrogramPlan {
    /// Build the window, FFT plan and scale for `cfg`.
    pub fn new(cfg: &SpectrogramConfig) -> Result<Self> {
        cfg.validate()?;
        let window = tukey_periodic(cfg.n_fft, TUKEY_ALPHA);
        let fft = FftPlanner::<f32>::new().plan_fft_forward(cfg.n_fft);
        let wsum: f64 = window.iter().map(|w| w * w).sum();
        let scale = 1.0 / (f64::from(cfg.sample_rate) * wsum);
        let bins = cfg.bins();
        let nyquist_single = cfg.n_fft.is_multiple_of(2);
        let bin_scale = (0..bins)
            .map(|k| {
                let single = k == 0 || (k == bins - 1 && nyquist_single);
                (if single { 0.25 * scale } else { 0.5 * scale }) as f32
            })
            .collect();
        Ok(Self {
            cfg: *cfg,
            window32: window.iter().map(|&w| w as f32).collect(),
            zeros: vec![0.0; cfg.n_fft],
            window,
            fft,
            bin_scale,
        })
    }

    /// A shared plan for `cfg`, built on first use.
    pub fn cached(cfg: &SpectrogramConfig) -> Result<Arc<SpectrogramPlan>> {
        static PLANS: OnceLock<Mutex<Vec<Arc<SpectrogramPlan>>>> = OnceLock::new();
        let plans = PLANS.get_or_init(|| Mutex::new(Vec::new()));
        let mut plans = plans.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = plans.iter().find(|p| p.cfg == *cfg) {
            return Ok(Arc::clone(p));
        }
        let plan = Arc::new(SpectrogramPlan::new(cfg)?);
        plans.push(Arc::clone(&plan));
        Ok(plan)
    }

    /// The configuration this plan computes.
    pub fn config(&self) -> &SpectrogramConfig {
        &self.cfg
    }

    /// The analysis window (periodic Tukey, alpha 0.25), `n_fft` values.
    pub fn window(&self) -> &[f64] {
        &self.window
    }

    /// Full front end on a waveform: downmix to mono and resample to the configured rate if
    /// needed, then [`SpectrogramPlan::compute_samples`].
    pub fn compute(&self, wave: &Waveform) -> Result<Spectrogram> {
        if wave.channels == 1 && wave.sample_rate == self.cfg.sample_rate {
            return self.compute_samples(&wave.samples);
        }
        let mono = wave.to_mono();
        let mono = if mono.sample_rate == self.cfg.sample_rate {
            mono
        } else {
            mono.resample(self.cfg.sample_rate)?
        };
        self.compute_samples(&mono.samples)
    }

    /// Front end on mono samples already at the configured rate: tile (see [`Tiling`]), clip to
    /// `[-1, 1]`, PSD spectrogram, `ln(S + 1e-7)`, standardize by own mean and population std.
    ///
    /// # Errors
    /// [`AudioError::InvalidArgument`] for no samples, a sample that is used and is not finite,
    /// or (official tiling) a clip whose ten repetitions are shorter than `n_fft`.
    pub fn compute_samples(&self, samples: &[f32]) -> Result<Spectrogram> {
        if samples.is_empty() {
            return Err(AudioError::InvalidArgument(
                "cannot compute a spectrogram of zero samples".into(),
            ));
        }
        // Tile (np.tile then cut), then clip; only the samples that are used must be finite.
        let n = self.cfg.tiled_len(samples.len());
        if n < self.cfg.n_fft {
            return Err(AudioError::InvalidArgument(format!(
                "a clip of {} samples repeated {OFFICIAL_REPEATS} times gives {n} samples, fewer \
                 than one {}-sample segment; use a longer clip or fill to the full length \
                 (Tiling::Fill, `--fill` on the command line)",
                samples.len(),
                self.cfg.n_fft
            )));
        }
        let mut x = Vec::with_capacity(n);
        while x.len() < n {
            let take = (n - x.len()).min(samples.len());
            x.extend_from_slice(&samples[..take]);
        }
        let mut finite = true;
        for v in &mut x {
            finite &= v.is_finite();
            *v = v.clamp(-1.0, 1.0);
        }
        if !finite {
            let i = x.iter().position(|v| v.is_nan()).or_else(|| {
                samples[..n.min(samples.len())]
                    .iter()
                    .position(|v| !v.is_finite())
            });
            return Err(AudioError::InvalidArgument(format!(
                "sample {} is not finite; the spectrogram needs finite samples",
                i.unwrap_or(0)
            )));
        }
        Ok(self.spectrogram_of_clipped(&x))
    }

    /// The spectrogram of `x`, already tiled and clipped (at least `n_fft` samples).
    fn spectrogram_of_clipped(&self, x: &[f32]) -> Spectrogram {
        let bins = self.cfg.bins();
        let frames = (x.len() - self.cfg.n_fft) / self.cfg.hop() + 1;
        let blocks: Vec<Block> = (0..frames.div_ceil(FRAMES_PER_TASK))
            .into_par_iter()
            .map(|b| {
                let first = b * FRAMES_PER_TASK;
                self.block(x, first, FRAMES_PER_TASK.min(frames - first))
            })
            .collect();

        let count = (bins * frames) as f64;
        let mean = blocks.iter().map(|b| b.sum).sum::<f64>() / count;
        let sq: f64 = blocks
            .par_iter()
            .map(|b| {
                b.logs
                    .chunks(FRAMES_PER_TASK)
                    .map(|c| sum_sq_dev(c, mean))
                    .sum::<f64>()
            })
            .collect::<Vec<f64>>()
            .iter()
            .sum();
        let std = (sq / count).sqrt();
        let inv = (1.0 / (std + STD_EPS)) as f32;
        let mean32 = mean as f32;

        // Blocks are bin-major: row k of the output is the concatenation of each block's row k.
        let mut data = vec![0f32; bins * frames];
        data.par_chunks_mut(frames)
            .enumerate()
            .for_each(|(k, row)| {
                for (b, dst) in blocks.iter().zip(row.chunks_mut(FRAMES_PER_TASK)) {
                    let src = &b.logs[k * dst.len()..(k + 1) * dst.len()];
                    for (d, &v) in dst.iter_mut().zip(src) {
                        *d = (v - mean32) * inv;
                    }
                }
            });
        Spectrogram { data, bins, frames }
    }

    /// `ln(PSD + eps)` of frames `first..first + len`, using AVX2 where the CPU has it.
    fn block(&self, x: &[f32], first: usize, len: usize) -> Block {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: `block_avx2` only requires AVX2, which was detected just above.
            return unsafe { self.block_avx2(x, first, len) };
        }
        self.block_portable(x, first, len)
    }

    /// [`Self::block_portable`] compiled with AVX2 enabled (8-wide loops).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn block_avx2(&self, x: &[f32], first: usize, len: usize) -> Block {
        self.block_portable(x, first, len)
    }

    /// `ln(PSD + eps)` of frames `first..first + len`.
    ///
    /// Frames are transformed in pairs with one complex FFT of `z = a + i b`; then
    /// `A[k] = (Z[k] + conj Z[n-k]) / 2` and `B[k] = (Z[k] - conj Z[n-k]) / 2i`.
    #[inline(always)]
    fn block_portable(&self, x: &[f32], first: usize, len: usize) -> Block {
        let n_fft = self.cfg.n_fft;
        let hop = self.cfg.hop();
        let bins = self.cfg.bins();
        let mut logs = vec![0f32; bins * len];
        let mut tile = vec![0f32; bins * TILE_FRAMES];
        let mut z = vec![Complex::new(0f32, 0f32); n_fft];
        let mut mirror = vec![Complex::new(0f32, 0f32); bins - 1];
        let mut scratch = vec![Complex::new(0f32, 0f32); self.fft.get_inplace_scratch_len()];
        let segment = |j: usize| {
            let start = (first + j) * hop;
            let seg = &x[start..start + n_fft];
            (seg, (sum_f32(seg) / n_fft as f64) as f32)
        };
        let mut sum = 0.0;
        for t0 in (0..len).step_by(TILE_FRAMES) {
            let tn = TILE_FRAMES.min(len - t0);
            let tile = &mut tile[..tn * bins];
            for (pair, out) in tile.chunks_mut(2 * bins).enumerate() {
                let (out_a, out_b) = out.split_at_mut(bins);
                let (seg_a, mean_a) = segment(t0 + 2 * pair);
                // An odd last frame is paired with silence.
                let (seg_b, mean_b) = if out_b.is_empty() {
                    (&self.zeros[..], 0.0)
                } else {
                    segment(t0 + 2 * pair + 1)
                };
                for (((c, &a), &b), &w) in z.iter_mut().zip(seg_a).zip(seg_b).zip(&self.window32) {
                    *c = Complex::new((a - mean_a) * w, (b - mean_b) * w);
                }
                self.fft.process_with_scratch(&mut z, &mut scratch);
                self.separate(&z, &mut mirror, out_a, out_b);
            }
            ln_in_place(tile);
            sum += tile.chunks_exact(bins).map(sum_f32).sum::<f64>();
            // Transpose the tile into the bin-major block.
            for (k, row) in logs.chunks_exact_mut(len).enumerate() {
                for (d, frame) in row[t0..t0 + tn].iter_mut().zip(tile.chunks_exact(bins)) {
                    *d = frame[k];
                }
            }
        }
        Block { logs, sum }
    }

    /// Split the FFT `z` of `a + i b` into the scaled power spectra of `a` and `b` (plus eps);
    /// `out_b` is empty when there is no `b`. `mirror` is scratch of `bins - 1` values.
    #[inline(always)]
    fn separate(
        &self,
        z: &[Complex<f32>],
        mirror: &mut [Complex<f32>],
        out_a: &mut [f32],
        out_b: &mut [f32],
    ) {
        let bins = out_a.len();
        // Bin 0 pairs with itself, bin k in 1..bins with bin n - k (copied forward first so that
        // the loops below run forward and vectorize).
        let z0 = z[0];
        out_a[0] = z0.re * z0.re * 4.0 * self.bin_scale[0] + LOG_EPS;
        if let Some(o) = out_b.first_mut() {
            *o = z0.im * z0.im * 4.0 * self.bin_scale[0] + LOG_EPS;
        }
        for (m, &q) in mirror.iter_mut().zip(z[z.len() + 1 - bins..].iter().rev()) {
            *m = q;
        }
        let fwd = z[1..bins]
            .iter()
            .zip(mirror.iter())
            .zip(&self.bin_scale[1..]);
        if out_b.is_empty() {
            for (o, ((p, q), &scale)) in out_a[1..].iter_mut().zip(fwd) {
                let (sr, si) = (p.re + q.re, p.im - q.im);
                *o = (sr * sr + si * si) * scale + LOG_EPS;
            }
        } else {
            let outs = out_a[1..].iter_mut().zip(out_b[1..].iter_mut());
            for ((oa, ob), ((p, q), &scale)) in outs.zip(fwd) {
                let (sr, si) = (p.re + q.re, p.im - q.im);
                let (dr, di) = (p.re - q.re, p.im + q.im);
                *oa = (sr * sr + si * si) * scale + LOG_EPS;
                *ob = (dr * dr + di * di) * scale + LOG_EPS;
            }
        }
    }
}

/// Natural logarithm of positive, finite, normal `f32` values, in place.
///
/// Branch-free so that it vectorizes: `x = 2^e * m` with `m` in `[sqrt(1/2), sqrt(2))`, then
/// `ln m = 2 atanh(s)`, `s = (m - 1) / (m + 1)`, by its odd series to `s^9` (truncation error
/// below `2e-9`, i.e. within an `f32` rounding of `ln`). Only used on `PSD + 1e-7 >= 1e-7`.
#[inline(always)]
fn ln_in_place(v: &mut [f32]) {
    const LN2: f32 = std::f32::consts::LN_2;
    for x in v.iter_mut() {
        let bits = x.to_bits();
        let mut e = ((bits >> 23) & 0xff) as i32 - 127;
        let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
        let big = m > std::f32::consts::SQRT_2;
        m = if big { m * 0.5 } else { m };
        e += i32::from(big);
        let s = (m - 1.0) / (m + 1.0);
        let s2 = s * s;
        let p = 1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0))));
        *x = e as f32 * LN2 + 2.0 * s * p;
    }
}

/// Sum in eight independent `f32` lanes (vectorizable), combined in `f64`.
#[inline(always)]
fn sum_f32(v: &[f32]) -> f64 {
    let mut acc = [0f32; 8];
    let chunks = v.chunks_exact(8);
    let tail: f64 = chunks.remainder().iter().map(|&x| f64::from(x)).sum();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    acc.iter().map(|&a| f64::from(a)).sum::<f64>() + tail
}

/// `sum((v - mean)^2)` in eight independent `f32` lanes, combined in `f64`.
fn sum_sq_dev(v: &[f32], mean: f64) -> f64 {
    let m = mean as f32;
    let mut acc = [0f32; 8];
    let chunks = v.chunks_exact(8);
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += (x - m) * (x - m);
        }
    }
    acc.iter().map(|&a| f64::from(a)).sum::<f64>() + tail
}

/// `scipy.signal.get_window(('tukey', alpha), n)`: the periodic (`sym=False`) Tukey window, i.e.
/// the symmetric window of length `n + 1` without its last point.
pub fn tukey_periodic(n: usize, alpha: f64) -> Vec<f64> {
    let m = n + 1;
    let denom = (m - 1) as f64;
    let width = (alpha * denom / 2.0).floor() as usize;
    (0..n)
        .map(|i| {
            let x = i as f64;
            if i <= width {
                0.5 * (1.0 + (std::f64::consts::PI * (-1.0 + 2.0 * x / alpha / denom)).cos())
            } else if i < m - width - 1 {
                1.0
            } else {
                0.5 * (1.0
                    + (std::f64::consts::PI * (-2.0 / alpha + 1.0 + 2.0 * x / alpha / denom)).cos())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_shape_is_257_by_1004() {
        let cfg = SpectrogramConfig::default();
        assert_eq!(cfg.num_samples(), 160_000);
        assert_eq!(cfg.bins(), 257);
        assert_eq!(cfg.frames(), 1004);
        let five = SpectrogramConfig {
            seconds: 5.0,
            ..cfg
        };
        assert_eq!(five.frames(), (80_000 - 512) / 159 + 1);
    }

    #[test]
    fn invalid_configs_are_rejected() {
        let base = SpectrogramConfig::default();
        for cfg in [
            SpectrogramConfig {
                seconds: 0.0,
                ..base
            },
            SpectrogramConfig {
                seconds: f32::NAN,
                ..base
            },
            SpectrogramConfig {
                noverlap: 512,
                ..base
            },
            SpectrogramConfig { n_fft: 1, ..base },
            SpectrogramConfig {
                sample_rate: 0,
                ..base
            },
            SpectrogramConfig {
                seconds: 0.01,
                ..base
            },
        ] {
            assert!(cfg.validate().is_err(), "{cfg:?}");
            assert_eq!(cfg.frames(), 0);
        }
    }

    #[test]
    fn tukey_matches_definition() {
        let w = tukey_periodic(512, 0.25);
        assert_eq!(w.len(), 512);
        assert_eq!(w[0], 0.0);
        // The 513-point symmetric window tapers over floor(0.25 * 512 / 2) = 64 points on each
        // side: w rises over 0..64, is flat on 64..=448 and falls after.
        assert!(w[64..=448].iter().all(|&v| (v - 1.0).abs() < 1e-15));
        assert!(w[1..64].windows(2).all(|p| p[0] < p[1] && p[1] < 1.0));
        assert!(w[449..].windows(2).all(|p| p[0] > p[1]) && w[449] < 1.0);
        // First taper point: 0.5 * (1 - cos(pi / 64)).
        assert!((w[1] - 0.5 * (1.0 - (std::f64::consts::PI / 64.0).cos())).abs() < 1e-15);
        // The periodic window is symmetric about n/2.
        for i in 1..256 {
            assert!((w[i] - w[512 - i]).abs() < 1e-12, "{i}");
        }
    }

    #[test]
    fn output_is_standardized() {
        let samples: Vec<f32> = (0..20_000)
            .map(|i| {
                ((i as f32) * 0.05).sin() * 0.3 + ((i * 7919 % 101) as f32 / 101.0 - 0.5) * 0.1
            })
            .collect();
        let s = Spectrogram::compute(&Waveform::mono(samples, 16_000)).unwrap();
        assert_eq!(s.shape(), [257, 1004]);
        let n = s.data().len() as f64;
        let mean = s.data().iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = s
            .data()
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 1e-4, "mean {mean}");
        assert!((var.sqrt() - 1.0).abs() < 1e-4, "std {}", var.sqrt());
    }

    #[test]
    fn pure_tone_peaks_at_its_bin() {
        // 1000 Hz at 16 kHz with 512-point FFT: bin 1000 * 512 / 16000 = 32.
        let samples: Vec<f32> = (0..160_000)
            .map(|i| (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 16_000.0).sin() as f32)
            .collect();
        let s = Spectrogram::compute(&Waveform::mono(samples, 16_000)).unwrap();
        for f in [0, 500, 1003] {
            let col: Vec<f32> = (0..257).map(|k| s.get(k, f).unwrap()).collect();
            let argmax = col
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map(|(k, _)| k);
            assert_eq!(argmax, Some(32));
        }
    }

    #[test]
    fn zero_and_nonfinite_samples_are_errors() {
        let plan = SpectrogramPlan::new(&SpectrogramConfig::default()).unwrap();
        assert!(plan.compute_samples(&[]).is_err());
        assert!(plan.compute_samples(&[0.0, f32::NAN]).is_err());
    }

    #[test]
    fn fast_ln_matches_std_ln() {
        let mut xs: Vec<f32> = (0..20_000)
            .map(|i| 1e-7 * 1.0013f32.powi(i))
            .take_while(|x| x.is_finite() && *x < 1e6)
            .collect();
        xs.extend([
            1e-7,
            1.0,
            std::f32::consts::SQRT_2,
            0.5,
            2.0,
            // Either side of the range switch at sqrt(2).
            f32::from_bits(std::f32::consts::SQRT_2.to_bits() - 1),
            f32::from_bits(std::f32::consts::SQRT_2.to_bits() + 1),
            std::f32::consts::FRAC_1_SQRT_2,
        ]);
        let mut got = xs.clone();
        ln_in_place(&mut got);
        for (&x, &g) in xs.iter().zip(&got) {
            let want = f64::from(x).ln();
            assert!(
                (f64::from(g) - want).abs() <= 4e-7 * want.abs().max(1.0),
                "ln({x}) = {g}, want {want}"
            );
        }
    }
}

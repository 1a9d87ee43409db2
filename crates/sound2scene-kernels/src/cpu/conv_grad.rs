//! The two gradients of the direct convolution of [`super::conv`].
//!
//! - Input gradient: the convolution of the output gradient with the weights flipped in space
//!   and transposed in channels (`[c_in, c_out, kh, kw]`), on the output gradient spread out by
//!   the stride (zeros between its rows and columns), with padding `k − 1 − p`: the forward
//!   kernel computes it.
//! - Weight gradient: `dW[o, i, ky, kx] = Σ_{n, y, x} dY[n, o, y, x] · X̃[n, i, y·s + ky,
//!   x·s + kx]` over the padded input `X̃`. For 3 × 3 stride-1 layers with enough channels it
//!   goes through Winograd's transforms ([`super::winograd`]); for stride 1, enough channels
//!   and narrow outputs it is nine matrix products (one per tap, by the `gemm` crate);
//!   otherwise a register tile holds [`WMR`] output channels × [`WNT`] taps, each a vector of
//!   partial sums over eight outputs of a row, folded into the result at the end of a run of
//!   rows. [`weight_grad`] says which it takes when.

use gemm::Parallelism;
use rayon::prelude::*;

use super::Scratch;
use super::conv::{ConvGeometry, Epilogue, PaddedInput, Prologue, conv2d};
use super::simd::{Isa, LANES, Lanes, Portable};
use super::winograd::{self, weight_grad_winograd_with};

/// Output channels per weight-gradient register tile.
pub const WMR: usize = 4;
/// Taps (input channel, ky, kx) per weight-gradient register tile.
pub const WNT: usize = 3;

/// Whether [`input_grad`] handles `g`: the transposed convolution needs `padding < kernel`.
pub fn input_grad_supported(g: &ConvGeometry) -> bool {
    g.padding[0] < g.kernel[0] && g.padding[1] < g.kernel[1]
}

/// `dX` (`[batch, c_in, h_in, w_in]`) of `conv2d(x, w)` from `dY` (`[batch, c_out, h_out,
/// w_out]`).
///
/// # Panics
/// When a length does not match `g`, or `g` is not [`input_grad_supported`].
pub fn input_grad(w: &[f32], dy: &[f32], g: &ConvGeometry, dx: &mut [f32]) {
    assert!(
        input_grad_supported(g),
        "padding must be below the kernel size: {g:?}"
    );
    assert_eq!(w.len(), g.weight_len(), "weight length");
    assert_eq!(dy.len(), g.output_len(), "output gradient length");
    assert_eq!(dx.len(), g.input_len(), "input gradient length");
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let (h_out, w_out) = (g.h_out(), g.w_out());
    // The rows and columns of the input no window reaches past (when `(h + 2p − k) % s ≠ 0`)
    // get no gradient: extra zero rows and columns after the spread gradient give them one.
    let rem_h = g.h_in + 2 * g.padding[0] - kh - (h_out - 1) * sh;
    let rem_w = g.w_in + 2 * g.padding[1] - kw - (w_out - 1) * sw;
    let (h_up, w_up) = ((h_out - 1) * sh + 1 + rem_h, (w_out - 1) * sw + 1 + rem_w);
    let spread;
    let dy_up: &[f32] = if (sh, sw, rem_h, rem_w) == (1, 1, 0, 0) {
        dy
    } else {
        let mut up = vec![0.0; g.batch * g.c_out * h_up * w_up];
        up.par_chunks_mut(h_up * w_up)
            .zip(dy.par_chunks(h_out * w_out))
            .for_each(|(dst, src)| {
                for (y, row) in src.chunks(w_out).enumerate() {
                    let dst_row = &mut dst[y * sh * w_up..];
                    for (x, &v) in row.iter().enumerate() {
                        dst_row[x * sw] = v;
                    }
                }
            });
        spread = up;
        &spread
    };
    // [c_out, c_in, kh, kw] -> [c_in, c_out, kh, kw], flipped in space.
    let mut flipped = vec![0.0; w.len()];
    for o in 0..g.c_out {
        for i in 0..g.c_in {
            for ky in 0..kh {
                for kx in 0..kw {
                    flipped[((i * g.c_out + o) * kh + ky) * kw + kx] =
                        w[((o * g.c_in + i) * kh + kh - 1 - ky) * kw + kw - 1 - kx];
                }
            }
        }
    }
    let transposed = ConvGeometry {
        batch: g.batch,
        c_in: g.c_out,
        h_in: h_up,
        w_in: w_up,
        c_out: g.c_in,
        kernel: g.kernel,
        stride: [1, 1],
        padding: [kh - 1 - g.padding[0], kw - 1 - g.padding[1]],
    };
    debug_assert_eq!((transposed.h_out(), transposed.w_out()), (g.h_in, g.w_in));
    conv2d(
        dy_up,
        &flipped,
        &transposed,
        &Prologue::default(),
        &Epilogue::default(),
        dx,
    );
}

/// `dW` (`[c_out, c_in, kh, kw]`) of `conv2d(x, w)` from `x` (`[batch, c_in, h_in, w_in]`)
/// and `dY` (`[batch, c_out, h_out, w_out]`).
///
/// Three ways, unless an input or output gradient is not finite:
/// - where [`winograd::prefers_for_weight_grad`] (3 × 3, stride 1, enough channels, outputs at
///   least a vector wide): Winograd F(2×2, 3×3) ([`weight_grad_winograd_with`]);
/// - stride-1 convolutions with at least [`GEMM_MIN_CHANNELS`] channels and outputs narrower
///   than a vector: matrix products ([`weight_grad_gemm`]);
/// - the others, and any with a NaN or infinity: the register-tile kernel
///   ([`weight_grad_direct_with`]), which lets a NaN or infinity reach exactly the weights
///   whose windows read it.
///
/// Measured (`weight_grad_layers`, batch 32, 3 × 3, this 2-core AVX2 machine): on 4 × 4 maps
/// the kernel, all masked partial vectors, takes 25 ms at 64 channels and the products
/// 1–2 ms; at 64 channels Winograd takes 0.55–0.7× the time of the better of the two others
/// from 8 × 8 on (0.3–0.5× at 32 × 32), at 32 channels 0.65–0.95×, at 16 channels 1.1–1.5×
/// (so the kernel keeps those).
///
/// # Panics
/// When a length does not match `g`.
pub fn weight_grad(x: &[f32], dy: &[f32], g: &ConvGeometry, dw: &mut [f32]) {
    weight_grad_with(Isa::detect(), x, dy, g, dw);
}

/// [`weight_grad`] on a chosen instruction set for the register-tile kernel (tests run every
/// available one; the matrix products pick their own).
pub fn weight_grad_with(isa: Isa, x: &[f32], dy: &[f32], g: &ConvGeometry, dw: &mut [f32]) {
    check_weight_grad(x, dy, g, dw);
    let winograd = winograd::prefers_for_weight_grad(g);
    let gemm = g.stride == [1, 1] && g.c_in.min(g.c_out) >= GEMM_MIN_CHANNELS && g.w_out() < LANES;
    let done = (winograd && weight_grad_winograd_with(isa, x, dy, g, dw))
        || (gemm && weight_grad_gemm(x, dy, g, dw));
    if !done {
        weight_grad_direct_with(isa, x, dy, g, dw);
    }
}

/// Fewest input and output channels for which [`weight_grad`] multiplies matrices: below
/// that a product's panels are mostly packing.
pub const GEMM_MIN_CHANNELS: usize = 8;

fn check_weight_grad(x: &[f32], dy: &[f32], g: &ConvGeometry, dw: &[f32]) {
    assert!(g.is_valid(), "invalid convolution geometry {g:?}");
    assert_eq!(x.len(), g.input_len(), "input length");
    assert_eq!(dy.len(), g.output_len(), "output gradient length");
    assert_eq!(dw.len(), g.weight_len(), "weight gradient length");
}

/// [`weight_grad`] of a stride-1 convolution as `kh · kw` matrix products, each
/// `dW[:, :, ky, kx] (c_out × c_in) = D (c_out × K) · X_{ky,kx}ᵀ (K × c_in)`. The input is
/// padded into `X̃[c_in][batch][rows · row_len]` (channel-major, each image's plane whole),
/// the output gradient spread into `D[c_out][batch][rows · row_len]` at the same places (`dY[n,
/// o, y, x]` at `y · row_len + x`, zeros elsewhere). Then for every tap `X_{ky,kx}` is `X̃`
/// shifted by `ky · row_len + kx`: a strided view, no copy, and `K` runs over every image at
/// once; the zeros of `D` cancel the products that cross a row's or an image's end. The
/// threads split `K`, each summing into its own `dW`, in chunks whose panels stay in the L2
/// cache.
///
/// Returns `false`, leaving `dw` unspecified, when `x` or `dY` holds a NaN or an infinity:
/// the zeros of `D` would spread it (`0 · ∞` is NaN) to weights whose windows never read it.
///
/// # Panics
/// When a length does not match `g`, or the stride is not 1.
pub fn weight_grad_gemm(x: &[f32], dy: &[f32], g: &ConvGeometry, dw: &mut [f32]) -> bool {
    check_weight_grad(x, dy, g, dw);
    assert_eq!(g.stride, [1, 1], "the matrix products need stride 1");
    let [kh, kw] = g.kernel;
    let [ph, pw] = g.padding;
    let (h_out, w_out) = (g.h_out(), g.w_out());
    let (rows, row_len) = (g.h_in + 2 * ph, g.w_in + 2 * pw);
    let plane = rows * row_len;
    let images = g.batch * plane;
    // Every float of both buffers is written here, pads included.
    let mut padded = Scratch::reused(g.c_in * images);
    let mut spread = Scratch::reused(g.c_out * images);
    let finite_x = padded
        .par_chunks_mut(plane)
        .enumerate()
        .map(|(p, dst)| {
            let (channel, image) = (p / g.batch, p % g.batch);
            let src = &x[(image * g.c_in + channel) * g.h_in * g.w_in..][..g.h_in * g.w_in];
            dst[..ph * row_len].fill(0.0);
            dst[(ph + g.h_in) * row_len..].fill(0.0);
            for (y, src_row) in src.chunks_exact(g.w_in).enumerate() {
                let dst_row = &mut dst[(ph + y) * row_len..(ph + y + 1) * row_len];
                dst_row[..pw].fill(0.0);
                dst_row[pw..pw + g.w_in].copy_from_slice(src_row);
                dst_row[pw + g.w_in..].fill(0.0);
            }
            src.iter().all(|v| v.is_finite())
        })
        .reduce(|| true, |a, b| a && b);
    let finite_dy = spread
        .par_chunks_mut(plane)
        .enumerate()
        .map(|(p, dst)| {
            let (channel, image) = (p / g.batch, p % g.batch);
            let src = &dy[(image * g.c_out + channel) * h_out * w_out..][..h_out * w_out];
            dst[h_out * row_len..].fill(0.0);
            for (y, src_row) in src.chunks_exact(w_out).enumerate() {
                let dst_row = &mut dst[y * row_len..(y + 1) * row_len];
                dst_row[..w_out].copy_from_slice(src_row);
                dst_row[w_out..].fill(0.0);
            }
            src.iter().all(|v| v.is_finite())
        })
        .reduce(|| true, |a, b| a && b);
    if !(finite_x && finite_dy) {
        return false;
    }
    // The sum runs to the last output of the last image. Since `h_out = rows − kh + 1` and
    // `w_out = row_len − kw + 1`, its last column shifted by the last tap, `k_len − 1 + (kh −
    // 1) · row_len + kw − 1`, is the last float of a channel's last plane: every read of `X̃`
    // stays inside its channel.
    let k_len = (g.batch - 1) * plane + (h_out - 1) * row_len + w_out;
    let threads = rayon::current_num_threads().clamp(1, k_len.div_ceil(GEMM_MIN_K));
    let per_thread = k_len.div_ceil(threads);
    let chunk = (GEMM_CHUNK_BYTES / (4 * (g.c_in + g.c_out))).max(GEMM_MIN_K);
    let taps = kh * kw;
    let (padded, spread) = (&*padded, &*spread);
    let partial = |t: usize| -> Vec<f32> {
        let mut acc = vec![0.0f32; g.weight_len()];
        let range = t * per_thread..((t + 1) * per_thread).min(k_len);
        for (i, k0) in range.clone().step_by(chunk).enumerate() {
            let k = chunk.min(range.end - k0);
            for ky in 0..kh {
                for kx in 0..kw {
                    // SAFETY: `dst` is the `c_out × c_in` matrix of tap (ky, kx) in `acc`
                    // (rows `c_in · taps`, columns `taps` apart); the left factor is `D`'s
                    // columns `k0..k0 + k` of its `c_out` rows (`images` apart), inside
                    // `spread`; the right one is `X̃`'s, shifted by the tap, inside `padded`
                    // by the bound above `k_len`. Nothing writes either buffer meanwhile.
                    unsafe {
                        gemm::gemm(
                            g.c_out,
                            g.c_in,
                            k,
                            acc.as_mut_ptr().add(ky * kw + kx),
                            taps as isize,
                            (g.c_in * taps) as isize,
                            i > 0,
                            spread.as_ptr().add(k0),
                            1,
                            images as isize,
                            padded.as_ptr().add(k0 + ky * row_len + kx),
                            images as isize,
                            1,
                            1.0,
                            1.0,
                            false,
                            false,
                            false,
                            Parallelism::None,
                        );
                    }
                }
            }
        }
        acc
    };
    let sum = (0..threads)
        .into_par_iter()
        .map(partial)
        .reduce_with(|mut a, b| {
            a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
            a
        })
        .expect("at least one thread");
    dw.copy_from_slice(&sum);
    true
}

/// Bytes of the two panels (`c_out` and `c_in` rows) of one chunk of the sum.
const GEMM_CHUNK_BYTES: usize = 256 * 1024;
/// Fewest columns of the sum per chunk and per thread.
const GEMM_MIN_K: usize = 256;

/// [`weight_grad`] by the register-tile kernel only, on a chosen instruction set.
///
/// # Panics
/// When a length does not match `g`.
pub fn weight_grad_direct_with(isa: Isa, x: &[f32], dy: &[f32], g: &ConvGeometry, dw: &mut [f32]) {
    check_weight_grad(x, dy, g, dw);
    let padded = PaddedInput::new(x, g, &Prologue::default());
    let job = WeightGrad::new(g, &padded, dy);
    let units = job.units();
    let partial = |isa: Isa, range: std::ops::Range<usize>| -> Vec<f32> {
        let mut acc = vec![0.0f32; g.weight_len()];
        for unit in range {
            match isa {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `Isa::Avx2Fma` is only produced when the CPU has AVX2 and FMA.
                Isa::Avx2Fma => unsafe { weight_grad_unit_avx2(&job, unit, &mut acc) },
                _ => job.unit::<Portable>(unit, &mut acc),
            }
        }
        acc
    };
    // Runs of rows go to the threads; each sums into its own copy of dW.
    let threads = rayon::current_num_threads().max(1);
    let per_thread = units.div_ceil(threads);
    let sum = (0..threads)
        .into_par_iter()
        .map(|t| partial(isa, t * per_thread..((t + 1) * per_thread).min(units)))
        .reduce(
            || vec![0.0f32; g.weight_len()],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                a
            },
        );
    dw.copy_from_slice(&sum);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn weight_grad_unit_avx2(job: &WeightGrad, unit: usize, acc: &mut [f32]) {
    job.unit::<super::simd::Avx2>(unit, acc);
}

/// The weight gradient cut into units of consecutive output rows of one image.
struct WeightGrad<'a> {
    g: &'a ConvGeometry,
    padded: &'a PaddedInput,
    dy: &'a [f32],
    /// Offset of each tap (input channel, ky, kx) in an image of the padded input.
    taps: Vec<usize>,
    /// Output rows per unit (all of them when a unit spans images).
    rows: usize,
    /// Images per unit (one when a unit holds part of an image).
    images: usize,
}

/// Bytes of output gradient and input rows a unit should stay within.
const UNIT_BUDGET: usize = 192 * 1024;

impl<'a> WeightGrad<'a> {
    fn new(g: &'a ConvGeometry, padded: &'a PaddedInput, dy: &'a [f32]) -> Self {
        let [kh, kw] = g.kernel;
        let taps = (0..g.c_in)
            .flat_map(|c| (0..kh).flat_map(move |ky| (0..kw).map(move |kx| (c, ky, kx))))
            .map(|(c, ky, kx)| c * padded.channel_len() + padded.tap_offset(ky, kx, g.stride[1]))
            .collect();
        let row_bytes =
            4 * (g.c_out * g.w_out() + g.c_in * padded.phases * g.stride[0] * padded.row_len);
        let rows = (UNIT_BUDGET / row_bytes.max(1)).clamp(1, g.h_out());
        // Small images are summed several to a unit, so that the tile's horizontal sums are
        // amortized over enough vectors; but every thread gets units.
        let images = if rows == g.h_out() {
            let per_thread = g.batch.div_ceil(rayon::current_num_threads().max(1));
            (UNIT_BUDGET / (row_bytes * g.h_out()).max(1)).clamp(1, per_thread.max(1))
        } else {
            1
        };
        Self {
            g,
            padded,
            dy,
            taps,
            rows,
            images,
        }
    }

    fn units_per_image(&self) -> usize {
        self.g.h_out().div_ceil(self.rows)
    }

    fn units(&self) -> usize {
        self.g.batch.div_ceil(self.images) * self.units_per_image()
    }

    /// Add the unit's contribution to every weight gradient in `acc` (`[c_out, taps]`).
    #[inline(always)]
    fn unit<L: Lanes>(&self, unit: usize, acc: &mut [f32]) {
        let g = self.g;
        let (first_image, part) = (unit / self.units_per_image(), unit % self.units_per_image());
        let first_image = first_image * self.images;
        let images = self.images.min(g.batch - first_image);
        let (h_out, w_out) = (g.h_out(), g.w_out());
        let rows = part * self.rows..((part + 1) * self.rows).min(h_out);
        let image_len = self.padded.image_len(g.c_in);
        let image_in = &self.padded.data[first_image * image_len..];
        let image_dy = &self.dy[first_image * g.c_out * h_out * w_out..];
        let n_taps = self.taps.len();
        for block in 0..g.c_out.div_ceil(WMR) {
            let couts = (block * WMR..(block * WMR + WMR).min(g.c_out)).len();
            for group in 0..n_taps.div_ceil(WNT) {
                let tap_range = group * WNT..(group * WNT + WNT).min(n_taps);
                let taps: [usize; WNT] =
                    std::array::from_fn(|j| self.taps[(group * WNT + j).min(n_taps - 1)]);
                let dy_rows: [usize; WMR] = std::array::from_fn(|i| {
                    ((block * WMR + i.min(couts - 1)) * h_out + rows.start) * w_out
                });
                let strides = Strides {
                    input_row: self.padded.row_len * g.stride[0],
                    input_image: image_len,
                    grad_row: w_out,
                    grad_image: g.c_out * h_out * w_out,
                };
                let first = self.padded.output_offset(rows.start, 0, g.stride[0]);
                // SAFETY: padded rows hold a whole vector past the last output, dY rows are read
                // only where `w_out` allows, and the ISA is the caller's.
                let sums = unsafe {
                    rows_kernel::<L>(
                        image_in.as_ptr().add(first),
                        &taps,
                        image_dy.as_ptr(),
                        &dy_rows,
                        [images, rows.len()],
                        strides,
                        w_out,
                    )
                };
                for (i, s) in sums.iter().enumerate().take(couts) {
                    let o = block * WMR + i;
                    for (j, tap) in tap_range.clone().enumerate() {
                        acc[o * n_taps + tap] += s[j];
                    }
                }
            }
        }
    }
}

/// How far apart consecutive rows and images are, in the padded input and in `dY`.
#[derive(Clone, Copy)]
struct Strides {
    input_row: usize,
    input_image: usize,
    grad_row: usize,
    grad_image: usize,
}

/// Eight lanes read from `ptr`, those from `count` on zero.
///
/// # Safety
/// `ptr` must be valid for `count ≤ 8` reads; the instruction set of `L` must be available.
#[inline(always)]
unsafe fn load_partial<L: Lanes>(ptr: *const f32, count: usize) -> L {
    let mut lanes = [0.0f32; LANES];
    // SAFETY: the caller's contract.
    unsafe {
        std::ptr::copy_nonoverlapping(ptr, lanes.as_mut_ptr(), count);
        L::load(lanes.as_ptr())
    }
}

/// Rows of the weight-gradient tile over `counts = [images, rows]`: for [`WMR`] output
/// channels and [`WNT`] taps, `Σ_n Σ_y Σ_x dY[n, o, y, x] · X̃[n, tap + y·s + x]`, each row's
/// last partial vector masked on both sides.
///
/// # Safety
/// `input + tap + n·input_image + y·input_row + x` must be valid for a vector read for every
/// tap, image `n`, row `y` and vector start `x < w_out`, and `dy + dy_rows[i] + n·grad_image +
/// y·grad_row` for `w_out` reads; the instruction set of `L` must be available.
#[inline(always)]
unsafe fn rows_kernel<L: Lanes>(
    input: *const f32,
    taps: &[usize; WNT],
    dy: *const f32,
    dy_rows: &[usize; WMR],
    counts: [usize; 2],
    strides: Strides,
    w_out: usize,
) -> [[f32; WNT]; WMR] {
    // SAFETY: the caller's contract covers every read.
    unsafe {
        let mut acc = [[L::zero(); WNT]; WMR];
        let full = w_out / LANES;
        let tail = w_out - full * LANES;
        for n in 0..counts[0] {
            for y in 0..counts[1] {
                let x_row = n * strides.input_image + y * strides.input_row;
                let g_row = n * strides.grad_image + y * strides.grad_row;
                let mut inputs = [input; WNT];
                for (p, &t) in inputs.iter_mut().zip(taps) {
                    *p = input.add(t + x_row);
                }
                let mut grads = [dy; WMR];
                for (p, &r) in grads.iter_mut().zip(dy_rows) {
                    *p = dy.add(r + g_row);
                }
                for v in 0..full {
                    let at = v * LANES;
                    let mut xs = [L::zero(); WNT];
                    for (x, p) in xs.iter_mut().zip(&inputs) {
                        *x = L::load(p.add(at));
                    }
                    for (acc_i, grad) in acc.iter_mut().zip(&grads) {
                        let d = L::load(grad.add(at));
                        for (a, &x) in acc_i.iter_mut().zip(&xs) {
                            *a = L::mul_add(d, x, *a);
                        }
                    }
                }
                if tail > 0 {
                    let at = full * LANES;
                    let mut xs = [L::zero(); WNT];
                    for (x, p) in xs.iter_mut().zip(&inputs) {
                        *x = load_partial::<L>(p.add(at), tail);
                    }
                    for (acc_i, grad) in acc.iter_mut().zip(&grads) {
                        let d = load_partial::<L>(grad.add(at), tail);
                        for (a, &x) in acc_i.iter_mut().zip(&xs) {
                            *a = L::mul_add(d, x, *a);
                        }
                    }
                }
            }
        }
        let mut sums = [[0.0f32; WNT]; WMR];
        for (s_i, a_i) in sums.iter_mut().zip(&acc) {
            for (s, a) in s_i.iter_mut().zip(a_i) {
                *s = a.sum();
            }
        }
        sums
    }
}

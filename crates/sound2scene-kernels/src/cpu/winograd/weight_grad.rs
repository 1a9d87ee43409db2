//! The weight gradient of a 3 × 3 stride-1 convolution by the same F(2×2, 3×3).
//!
//! The forward pass computes a tile as `Y = Aᵀ [Σ_c U ⊙ V] A` with `U = G g Gᵀ` and
//! `V = Bᵀ d B`. Differentiating that through `U` gives the gradient of one (output, input)
//! channel pair's 3 × 3 weights as
//!
//! ```text
//! dg = Gᵀ [Σ_tiles V ⊙ (A dY Aᵀ)] G,       A dy = (y0, y0 + y1, y0 − y1, −y1)
//! ```
//!
//! for the 2 × 2 output gradient `dY` of each tile: the same input transform as the forward
//! pass, a transform of the output gradient (2 × 2 → 4 × 4), for each of the 16 points a
//! matrix product summed over the tiles (`Ŵ_ξ[c_out, c_in] += D̂_ξ[c_out, n] · V_ξ[c_in, n]ᵀ`,
//! by the `gemm` crate), and one transform back (4 × 4 → 3 × 3) per channel pair at the end:
//! 16 multiplies per tile and channel pair instead of 36. Outputs outside the map (the last
//! tile row or column of an odd size) have a zero gradient, so the windows' reads past the
//! input there add nothing.
//!
//! Each thread sums its blocks of tiles into its own `Ŵ`; the threads' sums are added at the
//! end. A NaN or infinite input or output gradient would reach every weight of the channel
//! pairs whose tiles hold it (the transforms mix a tile's values), so such calls return
//! `false` and leave the exact kernel to the caller.

use std::sync::atomic::{AtomicUsize, Ordering};

use gemm::Parallelism;
use rayon::prelude::*;

use super::super::Scratch;
use super::super::conv::{ConvGeometry, PaddedInput, Prologue};
use super::super::simd::{Isa, LANES, Portable};
use super::{POINTS, Schedule, Segment, TileLanes, Tiling, Windows, supports, transform_input};

/// Fewest tiles a block of the gradient holds: each block adds `n` products to every float
/// of `Ŵ` (`16 · c_out · c_in`), which is read and written again per block.
const MIN_GRAD_BLOCK: usize = 128;

/// `dW` (`[c_out, c_in, 3, 3]`) of `conv2d(x, w)` from `x` (`[batch, c_in, h_in, w_in]`) and
/// `dY` (`[batch, c_out, h_out, w_out]`), by Winograd F(2×2, 3×3), on the best instruction
/// set. Returns `false`, leaving `dw` unspecified, when `x` or `dY` holds a NaN or an
/// infinity.
///
/// # Panics
/// When `g` is not [`supports`]ed or a length does not match `g`.
pub fn weight_grad_winograd(x: &[f32], dy: &[f32], g: &ConvGeometry, dw: &mut [f32]) -> bool {
    weight_grad_winograd_with(Isa::detect(), x, dy, g, dw)
}

/// [`weight_grad_winograd`] with its transforms on a chosen instruction set (the matrix
/// products take the `gemm` crate's own).
pub fn weight_grad_winograd_with(
    isa: Isa,
    x: &[f32],
    dy: &[f32],
    g: &ConvGeometry,
    dw: &mut [f32],
) -> bool {
    assert!(
        supports(g),
        "Winograd F(2×2, 3×3) needs a 3 × 3 kernel of stride 1: {g:?}"
    );
    assert_eq!(x.len(), g.input_len(), "input length");
    assert_eq!(dy.len(), g.output_len(), "output gradient length");
    assert_eq!(dw.len(), g.weight_len(), "weight gradient length");
    if !(all_finite(x) && all_finite(dy)) {
        return false;
    }
    let padded = PaddedInput::new(x, g, &Prologue::default());
    let tiling = Tiling::with(g, Schedule::Workers, MIN_GRAD_BLOCK);
    assert!(
        padded.phases == 1 && 2 * tiling.across + 2 <= padded.row_len,
        "padded rows too short for the windows of the last tiles"
    );
    let stride = tiling.stride;
    let windows = Windows {
        g,
        padded: &padded,
        stride,
    };
    let (v_len, d_len) = (POINTS * g.c_in * stride, POINTS * g.c_out * stride);
    let blocks = tiling.blocks();
    let workers = rayon::current_num_threads().min(blocks).max(1);
    // Every float a product reads is written by the transforms of its block first.
    let mut buffers = Scratch::reused(workers * (v_len + d_len));
    let next = AtomicUsize::new(0);
    let sums: Vec<Vec<f32>> = buffers
        .par_chunks_mut(v_len + d_len)
        .map(|buffers| {
            let (v, d) = buffers.split_at_mut(v_len);
            let mut sum = vec![0.0f32; POINTS * g.c_out * g.c_in];
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= blocks {
                    break sum;
                }
                let tiles = tiling.tiles(b);
                let segments = tiling.segments(tiles.clone());
                transform_input(isa, &windows, &segments, 0, v);
                transform_grad(isa, g, dy, stride, &segments, d);
                accumulate(g, tiles.len(), stride, d, v, &mut sum);
            }
        })
        .collect();
    let mut sums = sums.into_iter();
    let mut total = sums.next().expect("at least one worker");
    for sum in sums {
        total.iter_mut().zip(&sum).for_each(|(t, s)| *t += s);
    }
    transform_back(g, &total, dw);
    true
}

fn all_finite(values: &[f32]) -> bool {
    values
        .par_chunks(1 << 16)
        .all(|chunk| chunk.iter().all(|v| v.is_finite()))
}

/// `Ŵ_ξ += D̂_ξ V_ξᵀ` for the 16 points, over the `n` tiles of a block: `sum` is
/// `[ξ][c_out][c_in]`, `d` is `[c_out][ξ][stride]` and `v` is `[c_in][ξ][stride]`.
fn accumulate(g: &ConvGeometry, n: usize, stride: usize, d: &[f32], v: &[f32], sum: &mut [f32]) {
    let (c_in, c_out) = (g.c_in, g.c_out);
    let row = (POINTS * stride) as isize;
    for point in 0..POINTS {
        // SAFETY: `Ŵ_ξ` (`c_out × c_in`, rows `c_in` apart from `point · c_out · c_in`) lies in
        // `sum`; `D̂_ξ` (`c_out × n`, rows `16 · stride` apart from `point · stride`) in `d`;
        // `V_ξᵀ` (`n × c_in`, columns `16 · stride` apart from `point · stride`) in `v`;
        // `n ≤ block < stride`.
        unsafe {
            gemm::gemm(
                c_out,
                c_in,
                n,
                sum.as_mut_ptr().add(point * c_out * c_in),
                1,
                c_in as isize,
                true,
                d.as_ptr().add(point * stride),
                1,
                row,
                v.as_ptr().add(point * stride),
                row,
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

/// [`grad_on`] on the instruction set `isa`.
fn transform_grad(
    isa: Isa,
    g: &ConvGeometry,
    dy: &[f32],
    stride: usize,
    segments: &[Segment],
    d: &mut [f32],
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2Fma` is only produced when the CPU has AVX2 and FMA.
        Isa::Avx2Fma => unsafe { transform_grad_avx2(g, dy, stride, segments, d) },
        _ => grad_on::<Portable>(g, dy, stride, segments, d),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn transform_grad_avx2(
    g: &ConvGeometry,
    dy: &[f32],
    stride: usize,
    segments: &[Segment],
    d: &mut [f32],
) {
    grad_on::<super::super::simd::Avx2>(g, dy, stride, segments, d);
}

/// `D̂ = A dY Aᵀ` of every tile of `segments`, for every output channel, into
/// `d[channel][ξ][stride]`; the outputs of a tile outside the map count as zero.
#[inline(always)]
fn grad_on<L: TileLanes>(
    g: &ConvGeometry,
    dy: &[f32],
    stride: usize,
    segments: &[Segment],
    d: &mut [f32],
) {
    let (h_out, w_out) = (g.h_out(), g.w_out());
    for (co, d) in d.chunks_exact_mut(POINTS * stride).enumerate() {
        for s in segments {
            let channel = &dy[(s.image * g.c_out + co) * h_out * w_out..][..h_out * w_out];
            for k in (0..s.len).step_by(LANES) {
                let x = 2 * (s.tx + k);
                let valid = (2 * (s.len - k).min(LANES)).min(w_out - x);
                // SAFETY (this block): each row read holds `valid` floats from `x` inside the
                // map's row; every store is a whole vector inside `d`'s row of the point, as
                // `at + LANES ≤ stride`; the ISA of `L` is the caller's.
                unsafe {
                    let mut y = [[L::zero(); 2]; 2];
                    for (r, y) in y.iter_mut().enumerate() {
                        let row = 2 * s.ty + r;
                        if row < h_out {
                            let (even, odd) = super::load_pairs_valid::<L>(
                                channel.as_ptr().add(row * w_out + x),
                                valid,
                            );
                            *y = [even, odd];
                        }
                    }
                    let points = grad_tile(&y);
                    let at = s.at + k;
                    for (point, value) in points.into_iter().enumerate() {
                        let dst = &mut d[point * stride + at..point * stride + at + LANES];
                        value.store(dst.as_mut_ptr());
                    }
                }
            }
        }
    }
}

/// `A y Aᵀ` of a tile's 2 × 2 output gradient `y[row][column]`: its 16 points row-major.
///
/// # Safety
/// The ISA of `L` must be available.
#[inline(always)]
unsafe fn grad_tile<L: TileLanes>(y: &[[L; 2]; 2]) -> [L; POINTS] {
    // SAFETY: the caller's contract.
    unsafe {
        let columns = [a_up([y[0][0], y[1][0]]), a_up([y[0][1], y[1][1]])];
        let mut points = [L::zero(); POINTS];
        for i in 0..4 {
            let row = a_up([columns[0][i], columns[1][i]]);
            points[4 * i..4 * i + 4].copy_from_slice(&row);
        }
        points
    }
}

/// `A y`: `(y0, y0 + y1, y0 − y1, −y1)`.
///
/// # Safety
/// The ISA of `L` must be available.
#[inline(always)]
unsafe fn a_up<L: TileLanes>(y: [L; 2]) -> [L; 4] {
    // SAFETY: the caller's contract.
    unsafe {
        [
            y[0],
            L::add(y[0], y[1]),
            L::sub(y[0], y[1]),
            L::sub(L::zero(), y[1]),
        ]
    }
}

/// `dW[o, i] = Gᵀ Ŵ[o, i] G` for every channel pair, from `sum` (`[ξ][c_out][c_in]`) into
/// `dw` (`[c_out, c_in, 3, 3]`).
fn transform_back(g: &ConvGeometry, sum: &[f32], dw: &mut [f32]) {
    let pairs = g.c_out * g.c_in;
    dw.par_chunks_mut(9).enumerate().for_each(|(pair, dw)| {
        let m = |i: usize, j: usize| sum[(4 * i + j) * pairs + pair];
        // `Gᵀ` down each of the four columns, then along each of the three rows.
        let columns: [[f32; 3]; 4] =
            std::array::from_fn(|j| g_transpose([m(0, j), m(1, j), m(2, j), m(3, j)]));
        for (ky, dw) in dw.chunks_exact_mut(3).enumerate() {
            let row = std::array::from_fn(|j| columns[j][ky]);
            dw.copy_from_slice(&g_transpose(row));
        }
    });
}

/// `Gᵀ m`: `(m0 + (m1 + m2) / 2, (m1 − m2) / 2, (m1 + m2) / 2 + m3)`.
fn g_transpose(m: [f32; 4]) -> [f32; 3] {
    let half_sum = 0.5 * (m[1] + m[2]);
    [m[0] + half_sum, 0.5 * (m[1] - m[2]), half_sum + m[3]]
}

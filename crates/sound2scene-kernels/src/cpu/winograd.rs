//! Winograd's minimal filtering F(2×2, 3×3) for 3 × 3 convolutions of stride 1 (any padding, no
//! dilation, one group) on NCHW f32 data, with the prologue and epilogue of the direct
//! convolution in [`super::conv`].
//!
//! Each 2 × 2 block of outputs (a tile) is computed from the 4 × 4 window of padded input under
//! it as `Y = Aᵀ [Σ_c (G g Gᵀ) ⊙ (Bᵀ d B)] A`: 16 multiplies per tile and (input, output)
//! channel pair instead of the direct method's 36. The matrices are those of Lavin & Gray,
//! "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016), section 4.1:
//!
//! ```text
//!      ⎡1  0 −1  0⎤        ⎡ 1    0    0 ⎤
//! Bᵀ = ⎢0  1  1  0⎥    G = ⎢1/2  1/2  1/2⎥    Aᵀ = ⎡1  1  1  0⎤
//!      ⎢0 −1  1  0⎥        ⎢1/2 −1/2  1/2⎥         ⎣0  1 −1 −1⎦
//!      ⎣0  1  0 −1⎦        ⎣ 0    0    1 ⎦
//! ```
//!
//! The steps, for the 16 points ξ of the 4 × 4 transformed tile:
//! 1. the weights `[c_out, c_in, 3, 3]` become `U[c_out][ξ][c_in]`, `U = G g Gᵀ`;
//! 2. the input is padded, with the prologue applied, as for the direct kernel
//!    (`PaddedInput::new`);
//! 3. the tiles of every image, numbered in raster order image after image, are cut into
//!    blocks; for one block of `n` tiles, its windows are transformed into `V[c_in][ξ][n]`
//!    (`V = Bᵀ d B`), the 16 matrices `M_ξ = U_ξ V_ξ` (`[c_out, c_in] × [c_in, n]`) multiplied
//!    by the `gemm` crate into `M[c_out][ξ][n]`, and those transformed back (`Y = Aᵀ m A`)
//!    into the output, applying the epilogue on the way and storing only the outputs inside
//!    the map. With many tiles each thread takes blocks of its own; with few (and then, in
//!    the networks, many channels) the threads share each block, so that they share the
//!    reading of `U` too.
//!
//! The transforms add rounding of their own (the input transform sums up to four values, the
//! weight transform halves and sums three): the results differ from the direct kernel's by a
//! relative ~1e-6 of the outputs' scale. NaN inputs reach the outputs that read them, as in the
//! direct kernel, but an infinite input may give NaN instead of ±∞ (the transforms subtract it
//! from itself).

use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use gemm::Parallelism;
use rayon::prelude::*;

use super::conv::{ConvGeometry, Epilogue, PaddedInput, Prologue, check_arguments};
use super::simd::{Isa, LANES, Lanes, Portable};
use super::{Scratch, SendPtr};

mod weight_grad;

pub use weight_grad::{weight_grad_winograd, weight_grad_winograd_with};

/// Points of the 4 × 4 transformed tile: one matrix product each.
pub const POINTS: usize = 16;

/// Whether the Winograd path can compute `g`: a valid 3 × 3 convolution of stride 1.
pub fn supports(g: &ConvGeometry) -> bool {
    g.kernel == [3, 3] && g.stride == [1, 1] && g.is_valid()
}

/// Whether [`super::conv::conv2d`] takes the Winograd path for `g`: when it [`supports`] it,
/// has at least [`MIN_CHANNELS`] input and output channels and at least [`MIN_TILES`] tiles
/// (2 × 2 output blocks, over all images), unless the environment variable
/// `SOUND2SCENE_NO_WINOGRAD` is `1` (a benchmarking switch, read once per process, to time the
/// direct kernel in the same build).
pub fn prefers(g: &ConvGeometry) -> bool {
    supports(g)
        && g.c_in >= MIN_CHANNELS
        && g.c_out >= MIN_CHANNELS
        && g.batch * g.h_out().div_ceil(2) * g.w_out().div_ceil(2) >= MIN_TILES
        && !disabled()
}

/// Whether [`super::conv_grad::weight_grad`] takes the Winograd path
/// ([`weight_grad_winograd`]) for `g`: when it [`supports`] it, has at least [`MIN_CHANNELS`]
/// input and output channels and outputs at least a vector wide (narrower ones go to matrix
/// products), unless `SOUND2SCENE_NO_WINOGRAD` is `1`.
pub fn prefers_for_weight_grad(g: &ConvGeometry) -> bool {
    supports(g) && g.c_in.min(g.c_out) >= MIN_CHANNELS && g.w_out() >= LANES && !disabled()
}

/// Fewest input and output channels for which [`prefers`] and [`prefers_for_weight_grad`]
/// choose Winograd. Measured with the `conv_layers` example on a 65 × 251 map (2-core AVX2
/// machine): 16 channels in and out run at 0.9× the direct kernel's speed, 24 at 1.0×, 32 at
/// 1.2×, 64 at 1.5–2×; the weight gradient (`weight_grad_layers`) likewise.
pub const MIN_CHANNELS: usize = 32;

/// Fewest tiles for which [`prefers`] chooses Winograd: with few tiles the transformed
/// weights (`16 · c_out · c_in` floats, made anew each call) cost as much as the products
/// save. Measured at 512 and 1536 channels: 16 tiles run at 0.4–0.7× the direct kernel's
/// speed, 32–36 at 1.0×, 48 at 1.1–1.3×, 64–80 at 1.1–1.5×.
pub const MIN_TILES: usize = 48;

fn disabled() -> bool {
    static DISABLED: OnceLock<bool> = OnceLock::new();
    *DISABLED.get_or_init(|| std::env::var_os("SOUND2SCENE_NO_WINOGRAD").is_some_and(|v| v == "1"))
}

/// `out = epilogue(conv(prologue(x), w))` by Winograd F(2×2, 3×3), on the best instruction
/// set; arguments as [`super::conv::conv2d`].
///
/// # Panics
/// When `g` is not [`supports`]ed, or as [`super::conv::conv2d`].
pub fn conv2d_winograd(
    x: &[f32],
    w: &[f32],
    g: &ConvGeometry,
    prologue: &Prologue,
    epilogue: &Epilogue,
    out: &mut [f32],
) {
    conv2d_winograd_with(Isa::detect(), x, w, g, prologue, epilogue, out);
}

/// [`conv2d_winograd`] with its transforms on a chosen instruction set (the matrix products
/// take the `gemm` crate's own).
pub fn conv2d_winograd_with(
    isa: Isa,
    x: &[f32],
    w: &[f32],
    g: &ConvGeometry,
    prologue: &Prologue,
    epilogue: &Epilogue,
    out: &mut [f32],
) {
    assert!(
        supports(g),
        "Winograd F(2×2, 3×3) needs a 3 × 3 kernel of stride 1: {g:?}"
    );
    check_arguments(x, w, g, prologue, epilogue, out);
    let padded = PaddedInput::new(x, g, prologue);
    let tiling = Tiling::new(g);
    // With many tiles every worker multiplies by all of `U`, transformed once. With few (the
    // layers of many channels), `U` is transformed a group of output channels at a time, so
    // that it never holds more than `U_GROUP_BYTES` (a network's largest layer would
    // otherwise add 16/9 of its weights to the peak memory).
    let group = match tiling.schedule {
        Schedule::Workers => g.c_out,
        Schedule::Steps => (U_GROUP_BYTES / (4 * POINTS * g.c_in)).clamp(1, g.c_out),
    };
    let u = (group == g.c_out).then(|| transform_weights(w, g.c_in));
    assert!(
        padded.phases == 1 && 2 * tiling.across + 2 <= padded.row_len,
        "padded rows too short for the windows of the last tiles"
    );
    let job = Job {
        g,
        padded: &padded,
        w,
        u: u.as_deref(),
        group,
        epilogue,
        out: SendPtr(out.as_mut_ptr()),
        tiling,
    };
    job.run(isa);
}

/// Bytes of `U` a convolution with few tiles holds at a time.
const U_GROUP_BYTES: usize = 8 << 20;

/// `U = G g Gᵀ` for every (output, input) channel pair: `[c_out][ξ][c_in]` from the weights
/// `[c_out, c_in, 3, 3]` (or the rows of some output channels). Per output channel, the taps
/// are first gathered into nine rows of `c_in` floats, so that both products with `G` run
/// along rows (vectorized).
fn transform_weights(w: &[f32], c_in: usize) -> Vec<f32> {
    let len = w.len() / 9 * POINTS;
    // Written in full below, so not zeroed first (that would be another pass over `U`).
    let mut u = Vec::with_capacity(len);
    u.spare_capacity_mut()[..len]
        .par_chunks_mut(POINTS * c_in)
        .zip(w.par_chunks(9 * c_in))
        .for_each_init(
            // Nine tap rows `[ky][kx]`, then `G g` as twelve rows `[kx][i]`.
            || vec![0.0f32; 21 * c_in],
            |rows, (u, w)| {
                let (taps, columns) = rows.split_at_mut(9 * c_in);
                for (ci, kernel) in w.chunks_exact(9).enumerate() {
                    for (tap, &value) in kernel.iter().enumerate() {
                        taps[tap * c_in + ci] = value;
                    }
                }
                let tap = |ky: usize, kx: usize| &taps[(3 * ky + kx) * c_in..][..c_in];
                for (kx, column) in columns.chunks_exact_mut(4 * c_in).enumerate() {
                    apply_g([tap(0, kx), tap(1, kx), tap(2, kx)], column, f32::from);
                }
                let column = |kx: usize, i: usize| &columns[(4 * kx + i) * c_in..][..c_in];
                for (i, row) in u.chunks_exact_mut(4 * c_in).enumerate() {
                    let x = [column(0, i), column(1, i), column(2, i)];
                    apply_g(x, row, MaybeUninit::new);
                }
            },
        );
    // SAFETY: the chunks cover the `len` floats, and `apply_g` wrote every one of each.
    unsafe { u.set_len(len) };
    u
}

/// `G x` for every position of three equal rows `x`: the four rows
/// `(x0, (x0 + x1 + x2) / 2, (x0 − x1 + x2) / 2, x2)` into `out`, stored as `wrap` makes
/// them.
#[inline(always)]
fn apply_g<T>(x: [&[f32]; 3], out: &mut [T], wrap: impl Fn(f32) -> T) {
    let n = x[0].len();
    assert!(x[1].len() == n && x[2].len() == n && out.len() == 4 * n);
    let (first, rest) = out.split_at_mut(n);
    let (sum, rest) = rest.split_at_mut(n);
    let (difference, last) = rest.split_at_mut(n);
    for i in 0..n {
        let (a, b, c) = (x[0][i], x[1][i], x[2][i]);
        first[i] = wrap(a);
        sum[i] = wrap(0.5 * (a + b + c));
        difference[i] = wrap(0.5 * (a - b + c));
        last[i] = wrap(c);
    }
}

/// How the tiles are numbered and cut into blocks.
struct Tiling {
    /// Tiles per tile row, `⌈w_out / 2⌉`.
    across: usize,
    /// Tile rows per image, `⌈h_out / 2⌉`.
    down: usize,
    /// Tiles of all images.
    total: usize,
    /// Tiles per block.
    block: usize,
    /// Floats between consecutive rows of a block's buffers: `block` and a vector of slack,
    /// so that a vector stored or loaded at any tile of the block stays inside its row.
    stride: usize,
    /// How the threads share the work.
    schedule: Schedule,
}

/// How the threads share the blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schedule {
    /// Each thread transforms and multiplies blocks of its own (many tiles: every thread reads
    /// all of `U`, but its tiles stay in its cache).
    Workers,
    /// All threads work on one block at a time (few tiles, many channels: the threads share
    /// `U` between them instead of each reading all of it).
    Steps,
}

impl Tiling {
    fn new(g: &ConvGeometry) -> Self {
        let total = g.batch * g.w_out().div_ceil(2) * g.h_out().div_ceil(2);
        if total >= STEPS_BELOW * rayon::current_num_threads() {
            return Self::with(g, Schedule::Workers, MIN_BLOCK);
        }
        // Few tiles: one block if its buffers fit `STEPS_BLOCK_BYTES`, so that `U`, when it
        // is transformed a group at a time, is transformed once.
        let per_tile = POINTS * (g.c_in + g.c_out) * 4;
        let min_block = if total * per_tile <= STEPS_BLOCK_BYTES {
            total
        } else {
            MIN_BLOCK
        };
        Self::with(g, Schedule::Steps, min_block)
    }

    /// The tiles of `g` on `schedule`, at least `min_block` tiles a block (where there are so
    /// many per thread).
    fn with(g: &ConvGeometry, schedule: Schedule, min_block: usize) -> Self {
        let across = g.w_out().div_ceil(2);
        let down = g.h_out().div_ceil(2);
        let total = g.batch * across * down;
        let block = block_tiles(g, total, schedule, min_block);
        Self {
            across,
            down,
            total,
            block,
            stride: block + LANES,
            schedule,
        }
    }

    fn blocks(&self) -> usize {
        self.total.div_ceil(self.block)
    }

    /// The tiles of block `b`.
    fn tiles(&self, b: usize) -> Range<usize> {
        b * self.block..((b + 1) * self.block).min(self.total)
    }

    /// `tiles` as runs along tile rows.
    fn segments(&self, tiles: Range<usize>) -> Vec<Segment> {
        let per_image = self.across * self.down;
        let mut segments = Vec::new();
        let mut t = tiles.start;
        while t < tiles.end {
            let (image, rest) = (t / per_image, t % per_image);
            let (ty, tx) = (rest / self.across, rest % self.across);
            let len = (self.across - tx).min(tiles.end - t);
            segments.push(Segment {
                image,
                ty,
                tx,
                len,
                at: t - tiles.start,
            });
            t += len;
        }
        segments
    }
}

/// Tiles per block: as many as keep a block's `V` and `M` (`16 · (c_in + c_out)` floats per
/// tile) within [`BLOCK_BYTES`], at least `min_block`, and few enough that every thread gets
/// blocks.
fn block_tiles(g: &ConvGeometry, total: usize, schedule: Schedule, min_block: usize) -> usize {
    let per_tile = POINTS * (g.c_in + g.c_out) * 4;
    let threads = match schedule {
        Schedule::Workers => rayon::current_num_threads(),
        Schedule::Steps => 1,
    };
    let fit = (BLOCK_BYTES / per_tile).max(min_block);
    let even = total.div_ceil(threads).max(1);
    let tiles = fit.min(even);
    tiles.div_ceil(LANES) * LANES
}

/// Tiles per thread below which the threads share each block ([`Schedule::Steps`]).
const STEPS_BELOW: usize = 128;

/// Most bytes of transformed input and products of the single block of a convolution with
/// few tiles.
const STEPS_BLOCK_BYTES: usize = 16 << 20;

/// Bytes of transformed input and products a block keeps (in the L2 cache and beyond).
const BLOCK_BYTES: usize = 2 << 20;
/// Fewest tiles per block: the matrix products' width.
const MIN_BLOCK: usize = 32;

/// A run of `len` tiles along tile row `ty` of `image`, from tile column `tx`; `at` is the
/// first one's column in the block's buffers.
struct Segment {
    image: usize,
    ty: usize,
    tx: usize,
    len: usize,
    at: usize,
}

/// Everything the workers read, and where they write.
struct Job<'a> {
    g: &'a ConvGeometry,
    padded: &'a PaddedInput,
    /// The weights, `[c_out, c_in, 3, 3]`.
    w: &'a [f32],
    /// The transformed weights, `[c_out][ξ][c_in]`, when transformed once for all blocks.
    u: Option<&'a [f32]>,
    /// Output channels per group when `u` is transformed a group at a time.
    group: usize,
    epilogue: &'a Epilogue<'a>,
    out: SendPtr,
    tiling: Tiling,
}

impl Job<'_> {
    /// Every block, on the tiling's schedule.
    fn run(&self, isa: Isa) {
        let v_len = POINTS * self.g.c_in * self.tiling.stride;
        let per_block = v_len + POINTS * self.g.c_out * self.tiling.stride;
        match self.tiling.schedule {
            Schedule::Workers => self.run_workers(isa, v_len, per_block),
            Schedule::Steps => self.run_steps(isa, v_len, per_block),
        }
    }

    /// Every block, on as many workers as there are threads (or blocks), each with its own
    /// `V` and `M` buffers, taking blocks in turn.
    fn run_workers(&self, isa: Isa, v_len: usize, per_block: usize) {
        let blocks = self.tiling.blocks();
        let workers = rayon::current_num_threads().min(blocks);
        // Unzeroed: the products read only the tiles the input transform wrote, and the output
        // transform stores only the tiles the products wrote (the other lanes of its last
        // vector are computed from whatever the buffer held, and dropped).
        let mut buffers = Scratch::reused(workers * per_block);
        let next = AtomicUsize::new(0);
        buffers.par_chunks_mut(per_block).for_each(|buffers| {
            let (v, m) = buffers.split_at_mut(v_len);
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= blocks {
                    break;
                }
                let tiles = self.tiling.tiles(b);
                let segments = self.tiling.segments(tiles.clone());
                self.transform_input(isa, &segments, 0, v);
                let u = self.u.expect("the workers' weights are transformed once");
                self.multiply(u, tiles.len(), v, m, Parallelism::None);
                self.transform_output(isa, &segments, 0, m);
            }
        });
    }

    /// Every block in turn, each step on every thread: the input transform split over input
    /// channels, the products over output channels (by `gemm`), the output transform over
    /// output channels; by groups of output channels, each with its `U` transformed anew,
    /// when `U` is not transformed once.
    fn run_steps(&self, isa: Isa, v_len: usize, per_block: usize) {
        // Unzeroed, as in `run_workers`.
        let mut buffers = Scratch::reused(per_block);
        let (v, m) = buffers.split_at_mut(v_len);
        let channel = POINTS * self.tiling.stride;
        let threads = rayon::current_num_threads();
        let (c_in, c_out) = (self.g.c_in, self.g.c_out);
        for b in 0..self.tiling.blocks() {
            let tiles = self.tiling.tiles(b);
            let segments = self.tiling.segments(tiles.clone());
            v.par_chunks_mut(channel)
                .enumerate()
                .for_each(|(c, v)| self.transform_input(isa, &segments, c, v));
            for start in (0..c_out).step_by(self.group) {
                let end = (start + self.group).min(c_out);
                let group_u;
                let u = match self.u {
                    Some(u) => u,
                    None => {
                        group_u =
                            transform_weights(&self.w[start * c_in * 9..end * c_in * 9], c_in);
                        &group_u
                    }
                };
                let m = &mut m[..(end - start) * channel];
                self.multiply(u, tiles.len(), v, m, Parallelism::Rayon(threads));
                m.par_chunks(channel)
                    .enumerate()
                    .for_each(|(j, m)| self.transform_output(isa, &segments, start + j, m));
            }
        }
    }

    /// [`transform_input`] of this job's padded input.
    fn transform_input(&self, isa: Isa, segments: &[Segment], c0: usize, v: &mut [f32]) {
        let windows = Windows {
            g: self.g,
            padded: self.padded,
            stride: self.tiling.stride,
        };
        transform_input(isa, &windows, segments, c0, v);
    }

    /// [`Self::output_on`] on the instruction set `isa`.
    fn transform_output(&self, isa: Isa, segments: &[Segment], co0: usize, m: &[f32]) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Isa::Avx2Fma => unsafe { transform_output_avx2(self, segments, co0, m) },
            _ => self.output_on::<Portable>(segments, co0, m),
        }
    }

    /// `M_ξ = U_ξ V_ξ` for the 16 points, on `n` tiles, for the output channels of `u`
    /// (`[c_out][ξ][c_in]`, all or a group of them).
    fn multiply(&self, u: &[f32], n: usize, v: &[f32], m: &mut [f32], parallelism: Parallelism) {
        let (c_in, stride) = (self.g.c_in, self.tiling.stride);
        let c_out = u.len() / (POINTS * c_in);
        debug_assert!(m.len() >= c_out * POINTS * stride);
        let row = (POINTS * stride) as isize;
        for point in 0..POINTS {
            // SAFETY: `M_ξ` (`c_out × n`, rows `16 · stride` apart from `point · stride`) lies
            // in `m`, `V_ξ` (`c_in × n`, likewise) in `v`, `U_ξ` (`c_out × c_in`, rows
            // `16 · c_in` apart from `point · c_in`) in `u`; `n ≤ block < stride`.
            unsafe {
                gemm::gemm(
                    c_out,
                    n,
                    c_in,
                    m.as_mut_ptr().add(point * stride),
                    1,
                    row,
                    false,
                    u.as_ptr().add(point * c_in),
                    1,
                    (POINTS * c_in) as isize,
                    v.as_ptr().add(point * stride),
                    1,
                    row,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    parallelism,
                );
            }
        }
    }

    /// `Y = Aᵀ m A` of every tile of `segments`, for the output channels from `co0`, from
    /// `m[channel][ξ][stride]`, through the epilogue into the output.
    #[inline(always)]
    fn output_on<L: TileLanes>(&self, segments: &[Segment], co0: usize, m: &[f32]) {
        let (g, stride) = (self.g, self.tiling.stride);
        for (co, m) in (co0..).zip(m.chunks_exact(POINTS * stride)) {
            for s in segments {
                for k in (0..s.len).step_by(LANES) {
                    // SAFETY: the ISA of `L` is the caller's.
                    let mut points = [unsafe { L::zero() }; POINTS];
                    for (point, p) in points.iter_mut().enumerate() {
                        let src = &m[point * stride + s.at + k..point * stride + s.at + k + LANES];
                        // SAFETY: `src` holds `LANES` floats; the ISA of `L` is the caller's.
                        *p = unsafe { L::load(src.as_ptr()) };
                    }
                    // SAFETY: the ISA of `L` is the caller's.
                    let y = unsafe { output_tile(&points) };
                    let tiles = (s.len - k).min(LANES);
                    self.store_tiles::<L>(y, s, co, k, tiles, g);
                }
            }
        }
    }

    /// Apply the epilogue to the 2 × 2 outputs `y[row][column]` of `tiles ≤ 8` tiles from tile
    /// `k` of segment `s`, channel `co`, and store those inside the map.
    #[inline(always)]
    fn store_tiles<L: TileLanes>(
        &self,
        y: [[L; 2]; 2],
        s: &Segment,
        co: usize,
        k: usize,
        tiles: usize,
        g: &ConvGeometry,
    ) {
        let (h_out, w_out) = (g.h_out(), g.w_out());
        let epilogue = self.epilogue;
        let x = 2 * (s.tx + k);
        let valid = (2 * tiles).min(w_out - x);
        let channel = (s.image * g.c_out + co) * h_out;
        let scale = epilogue.scale.map_or(1.0, |v| v.get(s.image, co, g.c_out));
        let shift = epilogue.shift.map_or(0.0, |v| v.get(s.image, co, g.c_out));
        // SAFETY (this block): every pointer formed is inside the output, the residual or the
        // half-resolution residual, whose lengths `check_arguments` checked: `valid` floats
        // from `(y, x)` of a row inside the map, or `tiles` from tile `(ty, tx + k)` of the
        // half-resolution map (which has `down × across` values per channel); the ISA of `L`
        // is the caller's.
        unsafe {
            let (scale, shift) = (L::splat(scale), L::splat(shift));
            let low = match epilogue.residual {
                Some(r) if epilogue.residual_upsampled => {
                    let at = (channel / 2 + s.ty) * (w_out / 2) + s.tx + k;
                    Some(load_valid::<L>(r.as_ptr().add(at), tiles))
                }
                _ => None,
            };
            for (i, [even, odd]) in y.into_iter().enumerate() {
                let row = 2 * s.ty + i;
                if row >= h_out {
                    break;
                }
                let at = (channel + row) * w_out + x;
                let mut even = L::mul_add(even, scale, shift);
                let mut odd = L::mul_add(odd, scale, shift);
                if let Some(low) = low {
                    even = L::add(even, low);
                    odd = L::add(odd, low);
                } else if let Some(r) = epilogue.residual {
                    let (r_even, r_odd) = load_pairs_valid::<L>(r.as_ptr().add(at), valid);
                    even = L::add(even, r_even);
                    odd = L::add(odd, r_odd);
                }
                if epilogue.relu {
                    even = L::relu(even);
                    odd = L::relu(odd);
                }
                store_pairs_valid(even, odd, self.out.0.add(at), valid);
            }
        }
    }
}

/// The padded input of a convolution, read as the 4 × 4 windows of its tiles.
struct Windows<'a> {
    g: &'a ConvGeometry,
    padded: &'a PaddedInput,
    /// Floats between consecutive points of a channel in the transformed buffer.
    stride: usize,
}

impl Windows<'_> {
    /// `V = Bᵀ d B` of every window of `segments`, for the input channels from `c0`, into
    /// `v[channel][ξ][stride]`.
    #[inline(always)]
    fn input_on<L: TileLanes>(&self, segments: &[Segment], c0: usize, v: &mut [f32]) {
        let (g, padded, stride) = (self.g, self.padded, self.stride);
        for (c, v) in (c0..).zip(v.chunks_exact_mut(POINTS * stride)) {
            for s in segments {
                let start = s.image * padded.image_len(g.c_in) + c * padded.channel_len();
                let plane = &padded.data[start..start + padded.channel_len()];
                for k in (0..s.len).step_by(LANES) {
                    let n = (s.len - k).min(LANES);
                    let window = Window {
                        plane,
                        row_len: padded.row_len,
                        top: 2 * s.ty,
                        left: 2 * (s.tx + k),
                        tiles: n,
                    };
                    // SAFETY: the ISA of `L` is the caller's.
                    let points = unsafe { input_points::<L>(&window) };
                    let at = s.at + k;
                    for (point, value) in points.into_iter().enumerate() {
                        // A whole vector, also when fewer tiles are left: the lanes past them
                        // are overwritten by the next segment or lie past the block's tiles,
                        // and `at + LANES ≤ stride`.
                        let dst = &mut v[point * stride + at..point * stride + at + LANES];
                        // SAFETY: `dst` holds `LANES` floats; the ISA of `L` is the caller's.
                        unsafe { value.store(dst.as_mut_ptr()) };
                    }
                }
            }
        }
    }
}

/// [`Windows::input_on`] on the instruction set `isa`: `V = Bᵀ d B` of every window of
/// `segments`, for the input channels from `c0`, into `v[channel][ξ][stride]`.
fn transform_input(isa: Isa, windows: &Windows, segments: &[Segment], c0: usize, v: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2Fma` is only produced when the CPU has AVX2 and FMA.
        Isa::Avx2Fma => unsafe { transform_input_avx2(windows, segments, c0, v) },
        _ => windows.input_on::<Portable>(segments, c0, v),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn transform_input_avx2(windows: &Windows, segments: &[Segment], c0: usize, v: &mut [f32]) {
    windows.input_on::<super::simd::Avx2>(segments, c0, v);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn transform_output_avx2(job: &Job, segments: &[Segment], co0: usize, m: &[f32]) {
    job.output_on::<super::simd::Avx2>(segments, co0, m);
}

/// The 4 × 4 windows of `tiles ≤ 8` neighbouring tiles, from padded row `top` and column
/// `left` of one channel's plane (`plane.len() / row_len` rows).
struct Window<'a> {
    plane: &'a [f32],
    row_len: usize,
    top: usize,
    left: usize,
    tiles: usize,
}

/// `Bᵀ d B` of the windows, one vector per point (lane `j`: tile `j`). A window whose last
/// row lies below the plane (the last tile row of an odd output height) reads zeros there:
/// that row reaches only the second output row, which is not stored.
///
/// # Safety
/// The ISA of `L` must be available.
#[inline(always)]
unsafe fn input_points<L: TileLanes>(w: &Window) -> [L; POINTS] {
    let rows = w.plane.len() / w.row_len;
    let width = 2 * w.tiles + 2;
    debug_assert!(w.left + width <= w.row_len && w.top + 3 <= rows);
    // SAFETY (both branches): `load_row` reads 18 floats from its pointer; in the first branch
    // `left + 18 ≤ row_len` (eight tiles' windows fit the row) for each of 4 rows inside the
    // plane, in the second the rows of `copy` hold 18 floats; the ISA is the caller's.
    unsafe {
        let mut d = [[L::zero(); 4]; 4];
        if w.tiles == LANES && w.top + 4 <= rows {
            for (r, d) in d.iter_mut().enumerate() {
                *d = load_row(w.plane.as_ptr().add((w.top + r) * w.row_len + w.left));
            }
        } else {
            let mut copy = [[0.0f32; 2 * LANES + 2]; 4];
            for (r, copy) in copy.iter_mut().enumerate().take(rows - w.top) {
                let start = (w.top + r) * w.row_len + w.left;
                copy[..width].copy_from_slice(&w.plane[start..start + width]);
            }
            for (d, copy) in d.iter_mut().zip(&copy) {
                *d = load_row(copy.as_ptr());
            }
        }
        input_transform(&d)
    }
}

/// Columns 0–3 of eight windows whose rows start at `ptr`, `ptr + 2`, …: `(d0, d1, d2, d3)`
/// with lane `j` from `ptr[2j…2j + 3]`.
///
/// # Safety
/// `ptr` must be valid for 18 reads; the ISA of `L` must be available.
#[inline(always)]
unsafe fn load_row<L: TileLanes>(ptr: *const f32) -> [L; 4] {
    // SAFETY: the caller's contract.
    unsafe {
        let (d0, d1) = L::load_pairs(ptr);
        let (d2, d3) = L::load_pairs(ptr.add(2));
        [d0, d1, d2, d3]
    }
}

/// `Bᵀ d B` of a window `d[row][column]`, its 16 points row-major.
///
/// # Safety
/// The ISA of `L` must be available.
#[inline(always)]
unsafe fn input_transform<L: Lanes>(d: &[[L; 4]; 4]) -> [L; POINTS] {
    // SAFETY: the caller's contract.
    unsafe {
        let mut rows = [[L::zero(); 4]; 4];
        for (row, d) in rows.iter_mut().zip(d) {
            *row = b_transform(*d);
        }
        let mut points = [L::zero(); POINTS];
        for j in 0..4 {
            let column = b_transform([rows[0][j], rows[1][j], rows[2][j], rows[3][j]]);
            for (i, value) in column.into_iter().enumerate() {
                points[4 * i + j] = value;
            }
        }
        points
    }
}

/// `Bᵀ x`: `(x0 − x2, x1 + x2, x2 − x1, x1 − x3)`.
///
/// # Safety
/// The ISA of `L` must be available.
#[inline(always)]
unsafe fn b_transform<L: Lanes>(x: [L; 4]) -> [L; 4] {
    // SAFETY: the caller's contract.
    unsafe {
        [
            L::sub(x[0], x[2]),
            L::add(x[1], x[2]),
            L::sub(x[2], x[1]),
            L::sub(x[1], x[3]),
        ]
    }
}

/// `Aᵀ m A` of the 16 points (row-major): the 2 × 2 outputs `y[row][column]`.
///
/// # Safety
/// The ISA of `L` must be available.
#[inline(always)]
unsafe fn output_tile<L: Lanes>(m: &[L; POINTS]) -> [[L; 2]; 2] {
    // SAFETY: the caller's contract.
    unsafe {
        let mut rows = [[L::zero(); 4]; 2];
        for j in 0..4 {
            let [top, bottom] = a_transform([m[j], m[4 + j], m[8 + j], m[12 + j]]);
            rows[0][j] = top;
            rows[1][j] = bottom;
        }
        [a_transform(rows[0]), a_transform(rows[1])]
    }
}

/// `Aᵀ x`: `(x0 + x1 + x2, x1 − x2 − x3)`.
///
/// # Safety
/// The ISA of `L` must be available.
#[inline(always)]
unsafe fn a_transform<L: Lanes>(x: [L; 4]) -> [L; 2] {
    // SAFETY: the caller's contract.
    unsafe {
        [
            L::add(L::add(x[0], x[1]), x[2]),
            L::sub(L::sub(x[1], x[2]), x[3]),
        ]
    }
}

/// `valid ≤ 8` floats at `ptr` as lanes, zero past them.
///
/// # Safety
/// `ptr` must be valid for `valid` reads; the ISA of `L` must be available.
#[inline(always)]
unsafe fn load_valid<L: Lanes>(ptr: *const f32, valid: usize) -> L {
    // SAFETY: the caller's contract.
    unsafe {
        if valid == LANES {
            L::load(ptr)
        } else {
            let mut lanes = [0.0f32; LANES];
            std::ptr::copy_nonoverlapping(ptr, lanes.as_mut_ptr(), valid);
            L::load(lanes.as_ptr())
        }
    }
}

/// The even and odd floats of the `valid ≤ 16` at `ptr`, zero past them.
///
/// # Safety
/// `ptr` must be valid for `valid` reads; the ISA of `L` must be available.
#[inline(always)]
unsafe fn load_pairs_valid<L: TileLanes>(ptr: *const f32, valid: usize) -> (L, L) {
    // SAFETY: the caller's contract.
    unsafe {
        if valid == 2 * LANES {
            L::load_pairs(ptr)
        } else {
            let mut floats = [0.0f32; 2 * LANES];
            std::ptr::copy_nonoverlapping(ptr, floats.as_mut_ptr(), valid);
            L::load_pairs(floats.as_ptr())
        }
    }
}

/// Store `even[0], odd[0], even[1], …` at `ptr`, the first `valid ≤ 16` of them.
///
/// # Safety
/// `ptr` must be valid for `valid` writes; the ISA of `L` must be available.
#[inline(always)]
unsafe fn store_pairs_valid<L: TileLanes>(even: L, odd: L, ptr: *mut f32, valid: usize) {
    // SAFETY: the caller's contract.
    unsafe {
        if valid == 2 * LANES {
            L::store_pairs(even, odd, ptr);
        } else {
            let mut floats = [0.0f32; 2 * LANES];
            L::store_pairs(even, odd, floats.as_mut_ptr());
            std::ptr::copy_nonoverlapping(floats.as_ptr(), ptr, valid);
        }
    }
}

/// What the transforms need beyond [`Lanes`]: the even and odd floats of sixteen, and back.
///
/// # Safety
/// As [`Lanes`]: pointers valid for sixteen reads or writes, the ISA available.
trait TileLanes: Lanes {
    /// `(ptr[0], ptr[2], …, ptr[14])` and `(ptr[1], ptr[3], …, ptr[15])`.
    unsafe fn load_pairs(ptr: *const f32) -> (Self, Self);
    /// `even[0], odd[0], even[1], odd[1], …` at `ptr`.
    unsafe fn store_pairs(even: Self, odd: Self, ptr: *mut f32);
}

impl TileLanes for Portable {
    #[inline(always)]
    unsafe fn load_pairs(ptr: *const f32) -> (Self, Self) {
        // SAFETY: the caller guarantees sixteen reads at `ptr`.
        unsafe {
            let floats = ptr.cast::<[f32; 2 * LANES]>().read_unaligned();
            let mut even = [0.0f32; LANES];
            let mut odd = [0.0f32; LANES];
            for j in 0..LANES {
                even[j] = floats[2 * j];
                odd[j] = floats[2 * j + 1];
            }
            (Self::load(even.as_ptr()), Self::load(odd.as_ptr()))
        }
    }

    #[inline(always)]
    unsafe fn store_pairs(even: Self, odd: Self, ptr: *mut f32) {
        // SAFETY: the caller guarantees sixteen writes at `ptr`.
        unsafe {
            let mut e = [0.0f32; LANES];
            let mut o = [0.0f32; LANES];
            even.store(e.as_mut_ptr());
            odd.store(o.as_mut_ptr());
            let mut floats = [0.0f32; 2 * LANES];
            for j in 0..LANES {
                floats[2 * j] = e[j];
                floats[2 * j + 1] = o[j];
            }
            ptr.cast::<[f32; 2 * LANES]>().write_unaligned(floats);
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl TileLanes for super::simd::Avx2 {
    #[inline(always)]
    unsafe fn load_pairs(ptr: *const f32) -> (Self, Self) {
        use std::arch::x86_64::*;
        // SAFETY: the caller guarantees sixteen reads at `ptr` and AVX2.
        unsafe {
            let (lo, hi) = (_mm256_loadu_ps(ptr), _mm256_loadu_ps(ptr.add(LANES)));
            // Per 128-bit half: [lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6], then the 64-bit quarters
            // reordered 0, 2, 1, 3.
            let even = _mm256_shuffle_ps::<0b10_00_10_00>(lo, hi);
            let odd = _mm256_shuffle_ps::<0b11_01_11_01>(lo, hi);
            let even = _mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(even));
            let odd = _mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(odd));
            (Self(_mm256_castpd_ps(even)), Self(_mm256_castpd_ps(odd)))
        }
    }

    #[inline(always)]
    unsafe fn store_pairs(even: Self, odd: Self, ptr: *mut f32) {
        use std::arch::x86_64::*;
        // SAFETY: the caller guarantees sixteen writes at `ptr` and AVX2.
        unsafe {
            // [e0 o0 e1 o1 | e4 o4 e5 o5] and [e2 o2 e3 o3 | e6 o6 e7 o7], then their halves.
            let lo = _mm256_unpacklo_ps(even.0, odd.0);
            let hi = _mm256_unpackhi_ps(even.0, odd.0);
            _mm256_storeu_ps(ptr, _mm256_permute2f128_ps::<0x20>(lo, hi));
            _mm256_storeu_ps(ptr.add(LANES), _mm256_permute2f128_ps::<0x31>(lo, hi));
        }
    }
}

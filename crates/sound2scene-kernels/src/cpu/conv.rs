//! Direct 2-D convolution on NCHW f32 data, with the layers around it fused in: before it, a
//! per-channel affine map, a ReLU and a nearest 2× upsampling of the input (a BigGAN block's
//! conditional batch norm); after it, a per-channel scale and shift (a bias, or a batch norm
//! folded at inference), a residual addition and a ReLU.
//!
//! There is no im2col. The input is copied once into a zero-padded buffer split into column
//! phases (one for stride 1, two for stride 2: even and odd columns), so that the eight inputs
//! that eight neighbouring outputs of one row read for a tap are eight consecutive floats; the
//! prologue is applied during that copy. A register tile then accumulates [`MR`] output
//! channels × [`NV`] vectors of eight outputs over every input channel and tap: per tap, `NV`
//! vector loads, `MR` broadcasts of weights (read in place, `[c_out, c_in·kh·kw]`) and `MR ·
//! NV` fused multiply-adds. Vectors are taken in raster order over the output, so one tile may
//! span rows and narrow maps (8×8) waste nothing.
//!
//! [`conv2d`] hands the 3 × 3 stride-1 convolutions with enough channels and outputs to
//! Winograd's algorithm ([`super::winograd`]), which reads the same padded input.

use rayon::prelude::*;

use super::simd::{Isa, LANES, Lanes, Portable};
use super::{Scratch, SendPtr, winograd};

/// Output channels per register tile.
pub const MR: usize = 6;
/// Vectors of [`LANES`] outputs per register tile.
pub const NV: usize = 2;

/// The shape of a convolution: NCHW input, OIHW weight, no dilation, one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Images in the batch.
    pub batch: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h_in: usize,
    /// Input width.
    pub w_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Vertical and horizontal stride.
    pub stride: [usize; 2],
    /// Zero padding above and below, left and right.
    pub padding: [usize; 2],
}

impl ConvGeometry {
    /// A square kernel's geometry: `hw` is the input's `[height, width]`; `kernel`, `stride`
    /// and `padding` apply to both axes.
    pub fn square(
        batch: usize,
        c_in: usize,
        c_out: usize,
        hw: [usize; 2],
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Self {
        ConvGeometry {
            batch,
            c_in,
            h_in: hw[0],
            w_in: hw[1],
            c_out,
            kernel: [kernel, kernel],
            stride: [stride, stride],
            padding: [padding, padding],
        }
    }

    /// Output height: `⌊(h + 2p − k) / s⌋ + 1`.
    pub fn h_out(&self) -> usize {
        (self.h_in + 2 * self.padding[0] - self.kernel[0]) / self.stride[0] + 1
    }

    /// Output width: `⌊(w + 2p − k) / s⌋ + 1`.
    pub fn w_out(&self) -> usize {
        (self.w_in + 2 * self.padding[1] - self.kernel[1]) / self.stride[1] + 1
    }

    /// Whether the geometry describes a convolution with at least one output.
    pub fn is_valid(&self) -> bool {
        let [kh, kw] = self.kernel;
        let [sh, sw] = self.stride;
        [self.batch, self.c_in, self.c_out, kh, kw, sh, sw]
            .iter()
            .all(|&d| d > 0)
            && self.h_in + 2 * self.padding[0] >= kh
            && self.w_in + 2 * self.padding[1] >= kw
    }

    /// Input elements, `batch · c_in · h_in · w_in`.
    pub fn input_len(&self) -> usize {
        self.batch * self.c_in * self.h_in * self.w_in
    }

    /// Weight elements, `c_out · c_in · kh · kw`.
    pub fn weight_len(&self) -> usize {
        self.c_out * self.c_in * self.kernel[0] * self.kernel[1]
    }

    /// Output elements, `batch · c_out · h_out · w_out`.
    pub fn output_len(&self) -> usize {
        self.batch * self.c_out * self.h_out() * self.w_out()
    }

    /// Multiply-adds of the convolution.
    pub fn macs(&self) -> usize {
        self.output_len() * self.c_in * self.kernel[0] * self.kernel[1]
    }
}

/// Per-channel values of a prologue or epilogue: `[channels]`, or `[batch, channels]` (one set
/// per image, as a conditional batch norm has).
#[derive(Debug, Clone, Copy)]
pub struct PerChannel<'a> {
    /// The values.
    pub values: &'a [f32],
    /// Whether there is one set per image.
    pub per_image: bool,
}

impl<'a> PerChannel<'a> {
    /// One value per channel, shared by every image.
    pub fn shared(values: &'a [f32]) -> Self {
        Self {
            values,
            per_image: false,
        }
    }

    /// One value per image and channel, `[batch, channels]`.
    pub fn per_image(values: &'a [f32]) -> Self {
        Self {
            values,
            per_image: true,
        }
    }

    /// The value for `channel` of `image`.
    #[inline(always)]
    pub fn get(&self, image: usize, channel: usize, channels: usize) -> f32 {
        if self.per_image {
            self.values[image * channels + channel]
        } else {
            self.values[channel]
        }
    }

    pub(crate) fn check(&self, batch: usize, channels: usize, what: &str) {
        let len = if self.per_image {
            batch * channels
        } else {
            channels
        };
        assert_eq!(self.values.len(), len, "{what} length");
    }
}

/// What is applied to the input before it is convolved, in this order:
/// `upsample(relu(x · scale[c] + shift[c]))`. The convolution's geometry describes the
/// upsampled input.
#[derive(Debug, Clone, Copy, Default)]
pub struct Prologue<'a> {
    /// Per input channel factor (1 when absent).
    pub scale: Option<PerChannel<'a>>,
    /// Per input channel offset (0 when absent).
    pub shift: Option<PerChannel<'a>>,
    /// Whether to clamp at zero.
    pub relu: bool,
    /// Whether to repeat each input value over a 2 × 2 block (nearest upsampling).
    pub upsample: bool,
}

impl Prologue<'_> {
    fn is_identity(&self) -> bool {
        self.scale.is_none() && self.shift.is_none() && !self.relu
    }
}

/// What is applied to each output before it is stored, in this order:
/// `relu(acc · scale[c] + shift[c] + residual)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// Per output channel factor (1 when absent).
    pub scale: Option<PerChannel<'a>>,
    /// Per output channel offset (a bias; 0 when absent).
    pub shift: Option<PerChannel<'a>>,
    /// A tensor added before the ReLU (a residual branch): of the output's shape, or of half
    /// its height and width when `residual_upsampled` (read at `(y / 2, x / 2)`).
    pub residual: Option<&'a [f32]>,
    /// Whether the residual is at half resolution and upsampled on the fly.
    pub residual_upsampled: bool,
    /// Whether to clamp at zero.
    pub relu: bool,
}

/// The input copied into zero-padded column phases: for each image and channel, `phases`
/// planes of `rows × row_len` floats, where plane `p` holds the padded columns `p, p + s, …`.
pub(crate) struct PaddedInput {
    pub data: Scratch,
    pub phases: usize,
    pub rows: usize,
    pub row_len: usize,
}

impl PaddedInput {
    /// Floats per channel (all its phases).
    pub fn channel_len(&self) -> usize {
        self.phases * self.rows * self.row_len
    }

    /// Floats per image.
    pub fn image_len(&self, c_in: usize) -> usize {
        c_in * self.channel_len()
    }

    /// Offset of tap `(ky, kx)` of channel 0 from the start of an image, for the first output.
    pub fn tap_offset(&self, ky: usize, kx: usize, stride_w: usize) -> usize {
        (kx % stride_w) * self.rows * self.row_len + ky * self.row_len + kx / stride_w
    }

    /// The offset of every (input channel, ky, kx) in an image, in the weights' order.
    ///
    /// # Panics
    /// When an image of the padded input holds 2³² floats or more.
    pub fn offsets(&self, g: &ConvGeometry) -> Vec<u32> {
        assert!(
            self.image_len(g.c_in) < u32::MAX as usize,
            "image too large for the kernels"
        );
        let [kh, kw] = g.kernel;
        (0..g.c_in)
            .flat_map(|c| (0..kh).flat_map(move |ky| (0..kw).map(move |kx| (c, ky, kx))))
            .map(|(c, ky, kx)| {
                (c * self.channel_len() + self.tap_offset(ky, kx, g.stride[1])) as u32
            })
            .collect()
    }

    /// Offset of the window of output `(y, x)` from the start of an image's tap offsets.
    pub fn output_offset(&self, y: usize, x: usize, stride_h: usize) -> usize {
        y * stride_h * self.row_len + x
    }

    /// Pad `x` for the convolution `g`, applying `prologue` on the way. `x` is `[batch, c_in,
    /// h_in, w_in]`, or `[batch, c_in, h_in / 2, w_in / 2]` when the prologue upsamples. Rows
    /// are long enough for the last vector of every output row to read a whole vector past
    /// its end.
    pub fn new(x: &[f32], g: &ConvGeometry, prologue: &Prologue) -> Self {
        let [ph, pw] = g.padding;
        let sw = g.stride[1];
        let rows = g.h_in + 2 * ph;
        let vector_cols = g.w_out().div_ceil(LANES) * LANES;
        let row_len = (g.w_in + 2 * pw)
            .div_ceil(sw)
            .max(vector_cols + (g.kernel[1] - 1) / sw);
        let plane = rows * row_len;
        let (h_src, w_src) = if prologue.upsample {
            (g.h_in / 2, g.w_in / 2)
        } else {
            (g.h_in, g.w_in)
        };
        // Every float is written below: pads, rows and row ends.
        let mut data = Scratch::reused(g.batch * g.c_in * sw * plane);
        data.par_chunks_mut(sw * plane)
            .zip(x.par_chunks(h_src * w_src))
            .enumerate()
            .for_each(|(plane_index, (dst, src))| {
                let (image, channel) = (plane_index / g.c_in, plane_index % g.c_in);
                let scale = prologue
                    .scale
                    .map_or(1.0, |s| s.get(image, channel, g.c_in));
                let shift = prologue
                    .shift
                    .map_or(0.0, |s| s.get(image, channel, g.c_in));
                let relu = prologue.relu;
                let transform = |v: f32| {
                    let v = v * scale + shift;
                    if !relu || v.is_nan() || v > 0.0 {
                        v
                    } else {
                        0.0
                    }
                };
                for dst in dst.chunks_mut(plane) {
                    dst[..ph * row_len].fill(0.0);
                    dst[(ph + g.h_in) * row_len..].fill(0.0);
                }
                let mut row = vec![0.0f32; g.w_in];
                for y in 0..g.h_in {
                    let src_y = if prologue.upsample { y / 2 } else { y };
                    let src_row = &src[src_y * w_src..(src_y + 1) * w_src];
                    if prologue.upsample {
                        for (x, r) in row.iter_mut().enumerate() {
                            *r = transform(src_row[x / 2]);
                        }
                    } else if prologue.is_identity() {
                        row.copy_from_slice(src_row);
                    } else {
                        for (r, &v) in row.iter_mut().zip(src_row) {
                            *r = transform(v);
                        }
                    }
                    for (phase, dst) in dst.chunks_mut(plane).enumerate() {
                        let dst_row = &mut dst[(ph + y) * row_len..(ph + y + 1) * row_len];
                        if sw == 1 {
                            dst_row[..pw].fill(0.0);
                            dst_row[pw..pw + g.w_in].copy_from_slice(&row);
                            dst_row[pw + g.w_in..].fill(0.0);
                        } else {
                            for (j, d) in dst_row.iter_mut().enumerate() {
                                let col = j * sw + phase;
                                *d = if col >= pw && col - pw < g.w_in {
                                    row[col - pw]
                                } else {
                                    0.0
                                };
                            }
                        }
                    }
                }
            });
        Self {
            data,
            phases: sw,
            rows,
            row_len,
        }
    }
}

/// `out = epilogue(conv(prologue(x), w))` for the geometry `g`, on every image of the batch:
/// by Winograd's algorithm where [`winograd::prefers`] says it is faster, directly otherwise.
///
/// # Panics
/// When a slice's length does not match `g` (a caller bug: the tensor wrappers check shapes),
/// or an upsampled size is odd.
pub fn conv2d(
    x: &[f32],
    w: &[f32],
    g: &ConvGeometry,
    prologue: &Prologue,
    epilogue: &Epilogue,
    out: &mut [f32],
) {
    conv2d_with(Isa::detect(), x, w, g, prologue, epilogue, out);
}

/// [`conv2d`] on a chosen instruction set (tests run every available one).
pub fn conv2d_with(
    isa: Isa,
    x: &[f32],
    w: &[f32],
    g: &ConvGeometry,
    prologue: &Prologue,
    epilogue: &Epilogue,
    out: &mut [f32],
) {
    if winograd::prefers(g) {
        winograd::conv2d_winograd_with(isa, x, w, g, prologue, epilogue, out);
    } else {
        conv2d_direct_with(isa, x, w, g, prologue, epilogue, out);
    }
}

/// Panics unless the slices' lengths match `g` (see [`conv2d`]).
pub(crate) fn check_arguments(
    x: &[f32],
    w: &[f32],
    g: &ConvGeometry,
    prologue: &Prologue,
    epilogue: &Epilogue,
    out: &[f32],
) {
    assert!(g.is_valid(), "invalid convolution geometry {g:?}");
    let input_len = if prologue.upsample {
        assert!(
            g.h_in.is_multiple_of(2) && g.w_in.is_multiple_of(2),
            "upsampled sizes are even: {g:?}"
        );
        g.input_len() / 4
    } else {
        g.input_len()
    };
    assert_eq!(x.len(), input_len, "input length");
    assert_eq!(w.len(), g.weight_len(), "weight length");
    assert_eq!(out.len(), g.output_len(), "output length");
    for (v, what) in [
        (prologue.scale, "input scale"),
        (prologue.shift, "input shift"),
    ] {
        if let Some(v) = v {
            v.check(g.batch, g.c_in, what);
        }
    }
    for (v, what) in [(epilogue.scale, "scale"), (epilogue.shift, "shift")] {
        if let Some(v) = v {
            v.check(g.batch, g.c_out, what);
        }
    }
    if let Some(r) = epilogue.residual {
        let len = if epilogue.residual_upsampled {
            assert!(
                g.h_out().is_multiple_of(2) && g.w_out().is_multiple_of(2),
                "upsampled sizes are even"
            );
            out.len() / 4
        } else {
            out.len()
        };
        assert_eq!(r.len(), len, "residual length");
    }
}

/// [`conv2d`] by the direct kernel only, on a chosen instruction set.
///
/// # Panics
/// As [`conv2d`].
pub fn conv2d_direct_with(
    isa: Isa,
    x: &[f32],
    w: &[f32],
    g: &ConvGeometry,
    prologue: &Prologue,
    epilogue: &Epilogue,
    out: &mut [f32],
) {
    check_arguments(x, w, g, prologue, epilogue, out);
    let padded = PaddedInput::new(x, g, prologue);
    let plan = Plan::new(g, &padded);
    let offsets = padded.offsets(g);
    let steps = offsets.len();
    // The last block of output channels, when partial, reads a zero-filled copy of its rows.
    let tail: Vec<f32> = if g.c_out.is_multiple_of(MR) {
        Vec::new()
    } else {
        let mut tail = w[g.c_out / MR * MR * steps..].to_vec();
        tail.resize(MR * steps, 0.0);
        tail
    };
    let run = Run {
        offsets: &offsets,
        g,
        padded: &padded,
        weights: w,
        tail: &tail,
        epilogue,
        out: SendPtr(out.as_mut_ptr()),
        plan: &plan,
    };
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::Avx2Fma` is only produced when the CPU has AVX2 and FMA.
        Isa::Avx2Fma => (0..plan.tasks())
            .into_par_iter()
            .for_each(|task| unsafe { run_task_avx2(&run, task) }),
        _ => (0..plan.tasks())
            .into_par_iter()
            .for_each(|task| run.task::<Portable>(task)),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn run_task_avx2(run: &Run, task: usize) {
    run.task::<super::simd::Avx2>(task);
}

/// How the work is cut: tasks are groups of output channel blocks × ranges of tiles of one
/// image; within a task the sum over input channels and taps runs in chunks whose
/// weights stay in the L1 cache while the task's tiles go by, and a task's channel blocks take
/// turns over its tiles so that the tiles' input rows stay in the L2 cache.
struct Plan {
    /// Channel blocks per group.
    group: usize,
    /// Groups.
    groups: usize,
    /// Tiles per range.
    range: usize,
    /// Ranges per image.
    ranges: usize,
    /// Tiles per image.
    tiles: usize,
    /// Vectors per output row.
    row_vectors: usize,
    /// Images.
    batch: usize,
    /// Steps (input channel, ky, kx) of the sum per chunk.
    chunk: usize,
}

/// Steps of the sum whose weights ([`MR`] rows) a chunk keeps in the L1 cache.
const CHUNK_STEPS: usize = 640;
/// Bytes of weights (a group's), and separately of input rows (a range's), a task keeps
/// in the L2 cache.
const L2_BUDGET: usize = 192 * 1024;

impl Plan {
    fn new(g: &ConvGeometry, padded: &PaddedInput) -> Self {
        let steps = g.c_in * g.kernel[0] * g.kernel[1];
        let chunk = steps.div_ceil(steps.div_ceil(CHUNK_STEPS));
        let blocks = g.c_out.div_ceil(MR);
        let group = (L2_BUDGET / (chunk * MR * 4)).clamp(1, blocks);
        let groups = blocks.div_ceil(group);
        let row_vectors = g.w_out().div_ceil(LANES);
        let tiles = (g.h_out() * row_vectors).div_ceil(NV);
        // Input bytes under one output row, for the channels of one chunk.
        let chunk_channels = chunk.div_ceil(g.kernel[0] * g.kernel[1]).min(g.c_in);
        let row_bytes = chunk_channels * padded.phases * g.stride[0] * padded.row_len * 4;
        let rows = (L2_BUDGET / row_bytes.max(1)).max(1);
        let mut range = (rows * row_vectors).div_ceil(NV).clamp(1, tiles);
        // Enough tasks to keep every thread busy.
        let want = 4 * rayon::current_num_threads();
        while g.batch * groups * tiles.div_ceil(range) < want && range > 1 {
            range = range.div_ceil(2);
        }
        Self {
            group,
            groups,
            range,
            ranges: tiles.div_ceil(range),
            tiles,
            row_vectors,
            batch: g.batch,
            chunk,
        }
    }

    fn tasks(&self) -> usize {
        self.batch * self.groups * self.ranges
    }
}

/// Everything a task reads, and where it writes.
struct Run<'a> {
    g: &'a ConvGeometry,
    padded: &'a PaddedInput,
    /// The weights, `[c_out, steps]`.
    weights: &'a [f32],
    /// The last partial block of output channels, `[MR, steps]`, zero-filled.
    tail: &'a [f32],
    epilogue: &'a Epilogue<'a>,
    out: SendPtr,
    plan: &'a Plan,
    /// Offset of every (input channel, ky, kx) in an image of the padded input.
    offsets: &'a [u32],
}

/// Where a chunk stands in the sum: whether the output holds a partial sum to add to, and
/// whether the epilogue is due.
#[derive(Clone, Copy)]
struct ChunkPlace {
    first: bool,
    last: bool,
}

impl Run<'_> {
    #[inline(always)]
    fn task<L: ConvTile>(&self, task: usize) {
        let plan = self.plan;
        let g = self.g;
        let per_image = plan.groups * plan.ranges;
        let (image, group, range) = (
            task / per_image,
            task % per_image / plan.ranges,
            task % plan.ranges,
        );
        let blocks = g.c_out.div_ceil(MR);
        let block_range = group * plan.group..((group + 1) * plan.group).min(blocks);
        let tile_range = range * plan.range..((range + 1) * plan.range).min(plan.tiles);
        let image_in = &self.padded.data[image * self.padded.image_len(g.c_in)..];
        let steps = self.offsets.len();
        let vectors = g.h_out() * plan.row_vectors;
        // The tile's vectors, the last repeated where the image has fewer.
        let vector = |tile: usize, j: usize| (tile * NV + j).min(vectors - 1);
        let origin = |v: usize| (v / plan.row_vectors, v % plan.row_vectors * LANES);
        for k0 in (0..steps).step_by(plan.chunk) {
            let k1 = (k0 + plan.chunk).min(steps);
            let place = ChunkPlace {
                first: k0 == 0,
                last: k1 == steps,
            };
            let offsets = &self.offsets[k0..k1];
            for block in block_range.clone() {
                let rows = if (block + 1) * MR <= g.c_out {
                    &self.weights[block * MR * steps..(block + 1) * MR * steps]
                } else {
                    self.tail
                };
                let weights = &rows[k0..];
                for tile in tile_range.clone() {
                    let bases: [usize; NV] = std::array::from_fn(|j| {
                        let (y, x) = origin(vector(tile, j));
                        self.padded.output_offset(y, x, g.stride[0])
                    });
                    // SAFETY: `PaddedInput::new` sized every row for a full vector past the
                    // last output, and `weights` holds `MR` rows of `steps` floats from `k0`.
                    let acc = unsafe {
                        L::tile(image_in.as_ptr(), &bases, offsets, weights.as_ptr(), steps)
                    };
                    for j in 0..NV {
                        if j > 0 && vector(tile, j) == vector(tile, j - 1) {
                            break;
                        }
                        let (y, x) = origin(vector(tile, j));
                        let mut column = [acc[0][j]; MR];
                        for (c, row) in column.iter_mut().zip(&acc) {
                            *c = row[j];
                        }
                        self.store::<L>(image, block, y, x, column, place);
                    }
                }
            }
        }
    }

    /// Add one vector of [`MR`] channels at output `(y, x…x+7)` to the partial sum already
    /// stored (after the first chunk), apply the epilogue (after the last), and store the lanes
    /// that fall inside the row.
    #[inline(always)]
    fn store<L: Lanes>(
        &self,
        image: usize,
        block: usize,
        y: usize,
        x: usize,
        acc: [L; MR],
        place: ChunkPlace,
    ) {
        let g = self.g;
        let (h_out, w_out) = (g.h_out(), g.w_out());
        let valid = (w_out - x).min(LANES);
        let epilogue = self.epilogue;
        for (i, &value) in acc.iter().enumerate() {
            let co = block * MR + i;
            if co >= g.c_out {
                break;
            }
            let at = ((image * g.c_out + co) * h_out + y) * w_out + x;
            // SAFETY: `at + valid` is inside the output (and the residual, of the same
            // length); the ISA is the caller's.
            unsafe {
                let dst = self.out.0.add(at);
                let mut v = value;
                if !place.first {
                    v = L::add(v, load_valid::<L>(dst, valid));
                }
                if place.last {
                    let scale = epilogue.scale.map_or(1.0, |s| s.get(image, co, g.c_out));
                    let shift = epilogue.shift.map_or(0.0, |s| s.get(image, co, g.c_out));
                    v = L::mul_add(v, L::splat(scale), L::splat(shift));
                    if let Some(residual) = epilogue.residual {
                        let r = if epilogue.residual_upsampled {
                            let (h_low, w_low) = (h_out / 2, w_out / 2);
                            let row = ((image * g.c_out + co) * h_low + y / 2) * w_low;
                            let mut lanes = [0.0f32; LANES];
                            for (i, lane) in lanes.iter_mut().enumerate().take(valid) {
                                *lane = residual[row + (x + i) / 2];
                            }
                            L::load(lanes.as_ptr())
                        } else {
                            load_valid::<L>(residual.as_ptr().add(at), valid)
                        };
                        v = L::add(v, r);
                    }
                    if epilogue.relu {
                        v = L::relu(v);
                    }
                }
                if valid == LANES {
                    v.store(dst);
                } else {
                    let mut lanes = [0.0f32; LANES];
                    v.store(lanes.as_mut_ptr());
                    std::ptr::copy_nonoverlapping(lanes.as_ptr(), dst, valid);
                }
            }
        }
    }
}

/// `valid ≤ 8` floats at `ptr` as lanes, zero past them. (A function, not a closure: closures
/// do not inherit the instruction set of the function they are inlined into.)
///
/// # Safety
/// `ptr` must be valid for `valid` reads; the instruction set of `L` must be available.
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

/// The register tile: `MR × NV` vectors accumulated over a run of (input channel, ky, kx)
/// steps, for each step `NV` vector loads, `MR` broadcasts of weights and `MR · NV`
/// fused multiply-adds.
pub(crate) trait ConvTile: Lanes {
    /// The sums `Σ_k weights[i · stride + k] · input[bases[j] + offsets[k] …]` for `i < MR`,
    /// `j < NV`.
    ///
    /// # Safety
    /// `input + offset + base` must be valid for a vector read for every offset and base, and
    /// `weights + i · stride + k` for every `i < MR`, `k < offsets.len()`; the instruction set
    /// of `Self` must be available.
    unsafe fn tile(
        input: *const f32,
        bases: &[usize; NV],
        offsets: &[u32],
        weights: *const f32,
        stride: usize,
    ) -> [[Self; NV]; MR];
}

impl ConvTile for Portable {
    #[inline(always)]
    unsafe fn tile(
        input: *const f32,
        bases: &[usize; NV],
        offsets: &[u32],
        weights: *const f32,
        stride: usize,
    ) -> [[Self; NV]; MR] {
        // SAFETY: the caller's contract covers every pointer formed here.
        unsafe {
            let mut acc = [[Self::zero(); NV]; MR];
            let rows = bases.map(|b| input.add(b));
            for (k, &o) in offsets.iter().enumerate() {
                let x: [Self; NV] = std::array::from_fn(|j| Self::load(rows[j].add(o as usize)));
                for (i, acc_i) in acc.iter_mut().enumerate() {
                    let w = Self::splat_from(weights.add(i * stride + k));
                    for (a, &xj) in acc_i.iter_mut().zip(&x) {
                        *a = Self::mul_add(w, xj, *a);
                    }
                }
            }
            acc
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl ConvTile for super::simd::Avx2 {
    #[inline(always)]
    unsafe fn tile(
        input: *const f32,
        bases: &[usize; NV],
        offsets: &[u32],
        weights: *const f32,
        stride: usize,
    ) -> [[Self; NV]; MR] {
        // SAFETY: forwarded contract.
        unsafe { avx2_tile(input, bases, offsets, weights, stride) }
    }
}

/// The 6 × 2 tile in assembly: LLVM, given the same loop in intrinsics, spills accumulators
/// inside it when the surrounding code raises register pressure. Twelve accumulators, two
/// input vectors and one broadcast take 15 of the 16 `ymm` registers; the six weight rows are
/// read through two pointers, three rows apart, and the row stride.
///
/// # Safety
/// As [`ConvTile::tile`]; AVX2 and FMA must be available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn avx2_tile(
    input: *const f32,
    bases: &[usize; NV],
    offsets: &[u32],
    weights: *const f32,
    stride: usize,
) -> [[super::simd::Avx2; NV]; MR] {
    use super::simd::Avx2;
    use std::arch::asm;
    use std::arch::x86_64::{__m256, _mm256_setzero_ps};
    const _: () = assert!(
        MR == 6 && NV == 2,
        "the assembly is written for a 6 × 2 tile"
    );
    let z: __m256 = _mm256_setzero_ps();
    let [mut a00, mut a01, mut a10, mut a11, mut a20, mut a21] = [z; 6];
    let [mut a30, mut a31, mut a40, mut a41, mut a50, mut a51] = [z; 6];
    if !offsets.is_empty() {
        // SAFETY: the caller guarantees every address formed here is readable; the loop runs
        // `offsets.len() ≥ 1` times, reading one offset and one weight of each row per step.
        unsafe {
            asm!(
                "2:",
                "mov {o:e}, dword ptr [{off}]",
                "vmovups {x0}, ymmword ptr [{r0} + 4*{o}]",
                "vmovups {x1}, ymmword ptr [{r1} + 4*{o}]",
                "vbroadcastss {b}, dword ptr [{wa}]",
                "vfmadd231ps {a00}, {b}, {x0}",
                "vfmadd231ps {a01}, {b}, {x1}",
                "vbroadcastss {b}, dword ptr [{wa} + {s}]",
                "vfmadd231ps {a10}, {b}, {x0}",
                "vfmadd231ps {a11}, {b}, {x1}",
                "vbroadcastss {b}, dword ptr [{wa} + 2*{s}]",
                "vfmadd231ps {a20}, {b}, {x0}",
                "vfmadd231ps {a21}, {b}, {x1}",
                "vbroadcastss {b}, dword ptr [{wb}]",
                "vfmadd231ps {a30}, {b}, {x0}",
                "vfmadd231ps {a31}, {b}, {x1}",
                "vbroadcastss {b}, dword ptr [{wb} + {s}]",
                "vfmadd231ps {a40}, {b}, {x0}",
                "vfmadd231ps {a41}, {b}, {x1}",
                "vbroadcastss {b}, dword ptr [{wb} + 2*{s}]",
                "vfmadd231ps {a50}, {b}, {x0}",
                "vfmadd231ps {a51}, {b}, {x1}",
                "add {wa}, 4",
                "add {wb}, 4",
                "add {off}, 4",
                "cmp {off}, {end}",
                "jne 2b",
                off = inout(reg) offsets.as_ptr() => _,
                end = in(reg) offsets.as_ptr().add(offsets.len()),
                wa = inout(reg) weights => _,
                wb = inout(reg) weights.add(3 * stride) => _,
                s = in(reg) 4 * stride,
                r0 = in(reg) input.add(bases[0]),
                r1 = in(reg) input.add(bases[1]),
                o = out(reg) _,
                x0 = out(ymm_reg) _,
                x1 = out(ymm_reg) _,
                b = out(ymm_reg) _,
                a00 = inout(ymm_reg) a00,
                a01 = inout(ymm_reg) a01,
                a10 = inout(ymm_reg) a10,
                a11 = inout(ymm_reg) a11,
                a20 = inout(ymm_reg) a20,
                a21 = inout(ymm_reg) a21,
                a30 = inout(ymm_reg) a30,
                a31 = inout(ymm_reg) a31,
                a40 = inout(ymm_reg) a40,
                a41 = inout(ymm_reg) a41,
                a50 = inout(ymm_reg) a50,
                a51 = inout(ymm_reg) a51,
                options(nostack, readonly),
            );
        }
    }
    let v = Avx2;
    [
        [v(a00), v(a01)],
        [v(a10), v(a11)],
        [v(a20), v(a21)],
        [v(a30), v(a31)],
        [v(a40), v(a41)],
        [v(a50), v(a51)],
    ]
}

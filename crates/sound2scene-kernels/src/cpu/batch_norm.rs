//! Batch normalization with the batch's statistics (training), with the residual addition and
//! ReLU that follow it in a ResNet fused in, and its backward pass: two passes over the data
//! each way, where a composition of tensor operations makes a dozen.
//!
//! Data is NCHW; a channel's values are `batch` contiguous planes of `plane = h · w` floats.
//! Sums are accumulated in f64.

use rayon::prelude::*;

use super::SendPtr;

/// The shape of a batch-normalized tensor: `[batch, channels, plane]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BnShape {
    /// Images.
    pub batch: usize,
    /// Channels.
    pub channels: usize,
    /// Values per image and channel (`h · w`).
    pub plane: usize,
}

impl BnShape {
    /// Values in the tensor.
    pub fn len(&self) -> usize {
        self.batch * self.channels * self.plane
    }

    /// Whether the tensor is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per channel, `batch · plane`.
    pub fn count(&self) -> usize {
        self.batch * self.plane
    }

    /// The planes of channel `c`, one per image.
    fn planes(&self, c: usize) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        (0..self.batch).map(move |n| {
            let start = (n * self.channels + c) * self.plane;
            start..start + self.plane
        })
    }
}

/// The ReLU as Burn computes it: NaN stays NaN, -0 becomes +0.
#[inline(always)]
fn relu(v: f32) -> f32 {
    if v.is_nan() || v > 0.0 { v } else { 0.0 }
}

/// `out = relu?(γ (x − μ) / √(σ² + ε) + β + residual)` with `μ`, `σ²` the mean and biased
/// variance of each channel over the batch; returns `(μ, σ²)`, `[channels]` each.
///
/// # Panics
/// When a length does not match `shape`.
pub fn forward(
    x: &[f32],
    shape: BnShape,
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
    residual: Option<&[f32]>,
    relu_after: bool,
    out: &mut [f32],
) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), shape.len(), "input length");
    assert_eq!(out.len(), shape.len(), "output length");
    assert_eq!(gamma.len(), shape.channels, "gamma length");
    assert_eq!(beta.len(), shape.channels, "beta length");
    if let Some(r) = residual {
        assert_eq!(r.len(), shape.len(), "residual length");
    }
    let count = shape.count().max(1) as f64;
    let stats: Vec<(f32, f32)> = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let (mut sum, mut squares) = (0.0f64, 0.0f64);
            for range in shape.planes(c) {
                let (s, q) = sums(&x[range]);
                sum += s;
                squares += q;
            }
            let mean = sum / count;
            let var = (squares / count - mean * mean).max(0.0);
            (mean as f32, var as f32)
        })
        .collect();
    let (mean, var): (Vec<f32>, Vec<f32>) = stats.into_iter().unzip();
    out.par_chunks_mut(shape.plane.max(1))
        .enumerate()
        .for_each(|(p, dst)| {
            let c = p % shape.channels;
            let scale = gamma[c] / (var[c] as f64 + epsilon).sqrt() as f32;
            let shift = beta[c] - mean[c] * scale;
            let src = &x[p * shape.plane..(p + 1) * shape.plane];
            match residual.map(|r| &r[p * shape.plane..(p + 1) * shape.plane]) {
                Some(r) => {
                    for ((d, &v), &r) in dst.iter_mut().zip(src).zip(r) {
                        let y = v * scale + shift + r;
                        *d = if relu_after { relu(y) } else { y };
                    }
                }
                None => {
                    for (d, &v) in dst.iter_mut().zip(src) {
                        let y = v * scale + shift;
                        *d = if relu_after { relu(y) } else { y };
                    }
                }
            }
        });
    (mean, var)
}

/// Sum and sum of squares of `values`, in f64 over f32 runs of 256.
fn sums(values: &[f32]) -> (f64, f64) {
    let (mut sum, mut squares) = (0.0f64, 0.0f64);
    for run in values.chunks(256) {
        let (s, q) = run
            .iter()
            .fold((0.0f32, 0.0f32), |(s, q), &v| (s + v, q + v * v));
        sum += s as f64;
        squares += q as f64;
    }
    (sum, squares)
}

/// The gradients of [`forward`]: `(dx, dγ, dβ, d_pre)` where `d_pre` is the gradient before the
/// ReLU, which is also the residual's gradient. `out` is the forward's output (the ReLU's
/// mask), needed only when `relu_after`.
///
/// # Panics
/// When a length does not match `shape`.
#[allow(
    clippy::too_many_arguments,
    reason = "the backward of a layer with six inputs"
)]
pub fn backward(
    x: &[f32],
    out: Option<&[f32]>,
    d_out: &[f32],
    shape: BnShape,
    gamma: &[f32],
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), shape.len(), "input length");
    assert_eq!(d_out.len(), shape.len(), "output gradient length");
    if let Some(out) = out {
        assert_eq!(out.len(), shape.len(), "output length");
    }
    for (v, name) in [(gamma, "gamma"), (mean, "mean"), (var, "variance")] {
        assert_eq!(v.len(), shape.channels, "{name} length");
    }
    let inv_std: Vec<f32> = var
        .iter()
        .map(|&v| (1.0 / (v as f64 + epsilon).sqrt()) as f32)
        .collect();
    // Pass 1, per channel: the gradient before the ReLU, and Σ d_pre, Σ d_pre · x̂.
    let mut d_pre = vec![0.0f32; shape.len()];
    let d_pre_ptr = SendPtr(d_pre.as_mut_ptr());
    let channel_sums: Vec<(f32, f32)> = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let d_pre_ptr = d_pre_ptr;
            let (m, s) = (mean[c], inv_std[c]);
            let (mut sum, mut dot) = (0.0f64, 0.0f64);
            for range in shape.planes(c) {
                // SAFETY: channel c's planes are written by this task alone, and lie inside
                // `d_pre`, which outlives the parallel loop.
                let dst = unsafe {
                    std::slice::from_raw_parts_mut(d_pre_ptr.0.add(range.start), range.len())
                };
                let (xs, ds) = (&x[range.clone()], &d_out[range.clone()]);
                let mut part = (0.0f32, 0.0f32);
                for (i, ((p, &g), &v)) in dst.iter_mut().zip(ds).zip(xs).enumerate() {
                    let keep = out.is_none_or(|o| {
                        let o = o[range.start + i];
                        o.is_nan() || o > 0.0
                    });
                    *p = if keep { g } else { 0.0 };
                    part.0 += *p;
                    part.1 += *p * (v - m) * s;
                    if i % 256 == 255 {
                        sum += part.0 as f64;
                        dot += part.1 as f64;
                        part = (0.0, 0.0);
                    }
                }
                sum += part.0 as f64;
                dot += part.1 as f64;
            }
            (sum as f32, dot as f32)
        })
        .collect();
    let (d_beta, d_gamma): (Vec<f32>, Vec<f32>) = channel_sums.into_iter().unzip();
    // Pass 2, per plane: dx = γ/σ · (d_pre − Σd_pre/N − x̂ · Σ(d_pre·x̂)/N).
    let count = shape.count().max(1) as f32;
    let mut dx = vec![0.0f32; shape.len()];
    dx.par_chunks_mut(shape.plane.max(1))
        .enumerate()
        .for_each(|(p, dst)| {
            let c = p % shape.channels;
            let (m, s) = (mean[c], inv_std[c]);
            let k = gamma[c] * s;
            let (mean_d, mean_dot) = (d_beta[c] / count, d_gamma[c] / count);
            let range = p * shape.plane..(p + 1) * shape.plane;
            for ((d, &g), &v) in dst.iter_mut().zip(&d_pre[range.clone()]).zip(&x[range]) {
                *d = k * (g - mean_d - (v - m) * s * mean_dot);
            }
        });
    (dx, d_gamma, d_beta, d_pre)
}

//! Batch normalization with the batch's statistics (training), with the residual addition and
//! ReLU that follow it in a ResNet fused in, and its backward pass: two passes over the data
//! each way, where a composition of tensor operations makes a dozen.
//!
//! Data is NCHW; a channel's values are `batch` contiguous planes of `plane = h · w` floats.
//! Sums are accumulated in f64.

use rayon::prelude::*;

use super::conv::PerChannel;

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
/// variance of each channel over the batch; returns `(μ, σ²)`, `[channels]` each. `γ` and `β`
/// are per channel, or per image and channel (a conditional batch norm's gains and biases).
///
/// # Panics
/// When a length does not match `shape`.
#[allow(
    clippy::too_many_arguments,
    reason = "a layer with five inputs and two switches"
)]
pub fn forward(
    x: &[f32],
    shape: BnShape,
    gamma: PerChannel,
    beta: PerChannel,
    epsilon: f64,
    residual: Option<&[f32]>,
    relu_after: bool,
    out: &mut [f32],
) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), shape.len(), "input length");
    assert_eq!(out.len(), shape.len(), "output length");
    gamma.check(shape.batch, shape.channels, "gamma");
    beta.check(shape.batch, shape.channels, "beta");
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
            let (n, c) = (p / shape.channels, p % shape.channels);
            let scale = gamma.get(n, c, shape.channels) / (var[c] as f64 + epsilon).sqrt() as f32;
            let shift = beta.get(n, c, shape.channels) - mean[c] * scale;
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
/// ReLU, which is also the residual's; `dγ` and `dβ` have `γ`'s shape (`[channels]` or `[batch,
/// channels]`). `out` is the forward's output (the ReLU's mask), needed only when `relu_after`.
///
/// With `x̂ = (x − μ)/σ` and per-image `γ_n`, `dβ_n = Σ d_pre`, `dγ_n = Σ d_pre · x̂` over the
/// plane, and `dx = (γ_n · d_pre − Σ_n γ_n dβ_n / N − x̂ · Σ_n γ_n dγ_n / N) / σ`.
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
    gamma: PerChannel,
    mean: &[f32],
    var: &[f32],
    epsilon: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), shape.len(), "input length");
    assert_eq!(d_out.len(), shape.len(), "output gradient length");
    if let Some(out) = out {
        assert_eq!(out.len(), shape.len(), "output length");
    }
    gamma.check(shape.batch, shape.channels, "gamma");
    for (v, name) in [(mean, "mean"), (var, "variance")] {
        assert_eq!(v.len(), shape.channels, "{name} length");
    }
    let inv_std: Vec<f32> = var
        .iter()
        .map(|&v| (1.0 / (v as f64 + epsilon).sqrt()) as f32)
        .collect();
    // Pass 1, per plane: the gradient before the ReLU, Σ d_pre and Σ d_pre · x̂.
    let mut d_pre = vec![0.0f32; shape.len()];
    let plane_sums: Vec<(f32, f32)> = d_pre
        .par_chunks_mut(shape.plane.max(1))
        .enumerate()
        .map(|(p, dst)| {
            let c = p % shape.channels;
            let (m, s) = (mean[c], inv_std[c]);
            let range = p * shape.plane..(p + 1) * shape.plane;
            let (xs, ds) = (&x[range.clone()], &d_out[range.clone()]);
            let mask = out.map(|o| &o[range.clone()]);
            let (mut sum, mut dot) = (0.0f64, 0.0f64);
            let mut part = (0.0f32, 0.0f32);
            for (i, ((p, &g), &v)) in dst.iter_mut().zip(ds).zip(xs).enumerate() {
                let keep = mask.is_none_or(|o| o[i].is_nan() || o[i] > 0.0);
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
            (sum as f32, dot as f32)
        })
        .collect();
    // Per channel, Σ_n γ_n dβ_n and Σ_n γ_n dγ_n.
    let mut channel_sums = vec![(0.0f64, 0.0f64); shape.channels];
    for (p, &(d_beta, d_gamma)) in plane_sums.iter().enumerate() {
        let (n, c) = (p / shape.channels, p % shape.channels);
        let g = gamma.get(n, c, shape.channels) as f64;
        channel_sums[c].0 += g * d_beta as f64;
        channel_sums[c].1 += g * d_gamma as f64;
    }
    // Pass 2, per plane: dx.
    let count = shape.count().max(1) as f64;
    let mut dx = vec![0.0f32; shape.len()];
    dx.par_chunks_mut(shape.plane.max(1))
        .enumerate()
        .for_each(|(p, dst)| {
            let (n, c) = (p / shape.channels, p % shape.channels);
            let (m, s) = (mean[c], inv_std[c]);
            let g = gamma.get(n, c, shape.channels);
            let mean_d = (channel_sums[c].0 / count) as f32;
            let mean_dot = (channel_sums[c].1 / count) as f32;
            let range = p * shape.plane..(p + 1) * shape.plane;
            for ((d, &dp), &v) in dst.iter_mut().zip(&d_pre[range.clone()]).zip(&x[range]) {
                *d = s * (g * dp - mean_d - (v - m) * s * mean_dot);
            }
        });
    // dγ, dβ in γ's shape.
    let (d_beta_planes, d_gamma_planes): (Vec<f32>, Vec<f32>) = plane_sums.into_iter().unzip();
    let reduce = |planes: Vec<f32>| {
        if gamma.per_image {
            planes
        } else {
            let mut per_channel = vec![0.0f64; shape.channels];
            for (p, v) in planes.iter().enumerate() {
                per_channel[p % shape.channels] += *v as f64;
            }
            per_channel.into_iter().map(|v| v as f32).collect()
        }
    };
    (dx, reduce(d_gamma_planes), reduce(d_beta_planes), d_pre)
}

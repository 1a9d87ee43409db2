//! Reference implementations the kernels are checked against: plain loops, in f64.

#![allow(dead_code, reason = "each test binary uses part of the helpers")]

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use sound2scene_kernels::cpu::conv::ConvGeometry;

/// `n` values drawn from N(0, 1) with a fixed seed.
pub fn normal(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| StandardNormal.sample(&mut rng)).collect()
}

/// The convolution by its definition, accumulated in f64.
pub fn conv2d_reference(x: &[f32], w: &[f32], g: &ConvGeometry) -> Vec<f64> {
    let (ho, wo) = (g.h_out(), g.w_out());
    let [kh, kw] = g.kernel;
    let mut out = vec![0.0f64; g.output_len()];
    for n in 0..g.batch {
        for co in 0..g.c_out {
            for y in 0..ho {
                for xo in 0..wo {
                    let mut acc = 0.0f64;
                    for ci in 0..g.c_in {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (y * g.stride[0] + ky) as isize - g.padding[0] as isize;
                                let ix = (xo * g.stride[1] + kx) as isize - g.padding[1] as isize;
                                if iy < 0
                                    || ix < 0
                                    || iy >= g.h_in as isize
                                    || ix >= g.w_in as isize
                                {
                                    continue;
                                }
                                let xi = ((n * g.c_in + ci) * g.h_in + iy as usize) * g.w_in
                                    + ix as usize;
                                let wi = ((co * g.c_in + ci) * kh + ky) * kw + kx;
                                acc += x[xi] as f64 * w[wi] as f64;
                            }
                        }
                    }
                    out[((n * g.c_out + co) * ho + y) * wo + xo] = acc;
                }
            }
        }
    }
    out
}

/// Largest `|a − b| / max(1, |b|)`; infinite where one side is not finite and the other is
/// not the same value (a NaN never matches), so an output the kernel never wrote (left NaN)
/// fails every tolerance.
pub fn max_rel_diff(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&a, &b)| {
            let a = a as f64;
            if a.is_finite() && b.is_finite() {
                (a - b).abs() / b.abs().max(1.0)
            } else if a == b {
                0.0
            } else {
                f64::INFINITY
            }
        })
        .fold(0.0, f64::max)
}

/// The gradients of the convolution by their definitions, in f64: `(dX, dW)` from `x`, `w`
/// and `dY`. A product contributes only where an output reads a real input (not padding).
pub fn conv2d_grads_reference(
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    g: &ConvGeometry,
) -> (Vec<f64>, Vec<f64>) {
    let (ho, wo) = (g.h_out(), g.w_out());
    let [kh, kw] = g.kernel;
    let mut dx = vec![0.0f64; g.input_len()];
    let mut dw = vec![0.0f64; g.weight_len()];
    for n in 0..g.batch {
        for co in 0..g.c_out {
            for y in 0..ho {
                for xo in 0..wo {
                    let d = dy[((n * g.c_out + co) * ho + y) * wo + xo] as f64;
                    for ci in 0..g.c_in {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (y * g.stride[0] + ky) as isize - g.padding[0] as isize;
                                let ix = (xo * g.stride[1] + kx) as isize - g.padding[1] as isize;
                                if iy < 0
                                    || ix < 0
                                    || iy >= g.h_in as isize
                                    || ix >= g.w_in as isize
                                {
                                    continue;
                                }
                                let xi = ((n * g.c_in + ci) * g.h_in + iy as usize) * g.w_in
                                    + ix as usize;
                                let wi = ((co * g.c_in + ci) * kh + ky) * kw + kx;
                                dx[xi] += d * w[wi] as f64;
                                dw[wi] += d * x[xi] as f64;
                            }
                        }
                    }
                }
            }
        }
    }
    (dx, dw)
}

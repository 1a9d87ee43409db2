//! Inception Score, as BigGAN-PyTorch's `calculate_inception_score` computes it.
//!
//! For class probabilities `p = softmax(logits)` split into `splits` consecutive chunks of
//! `N / splits` rows (trailing `N mod splits` rows are dropped, as in BigGAN-PyTorch), the score
//! of a chunk is `exp(mean_rows sum_classes p (log p - log mean_chunk(p)))`, i.e. the exponential
//! of the mean KL divergence between each row's class distribution and the chunk's marginal.
//! The result is the mean and population standard deviation (`np.std`, `ddof = 0`) over chunks.

use ndarray::{Array2, ArrayView2, Axis, s};

use super::{check_finite, check_non_empty};
use crate::error::TrainError;

/// Number of splits used by BigGAN-PyTorch and most published Inception Scores.
pub const DEFAULT_IS_SPLITS: usize = 10;

/// Inception Score summary over splits (dimensionless; `1` for uninformative or collapsed
/// predictions, at most the number of classes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InceptionScore {
    /// Mean of the per-split scores.
    pub mean: f64,
    /// Population standard deviation (`ddof = 0`) of the per-split scores.
    pub std: f64,
}

/// Inception Score of classifier `logits` `[N, classes]` (pre-softmax, one sample per row) over
/// `splits` chunks ([`DEFAULT_IS_SPLITS`] in the paper).
///
/// Requires finite logits and `1 <= splits <= N`. Log-probabilities come from a stable
/// log-softmax, and classes whose probability underflows to `0` contribute `0` (the limit of
/// `p log p`) instead of NaN.
pub fn inception_score(
    logits: ArrayView2<'_, f64>,
    splits: usize,
) -> Result<InceptionScore, TrainError> {
    const CONTEXT: &str = "inception score";
    check_non_empty(CONTEXT, "logits", logits)?;
    check_finite(CONTEXT, "logits", logits)?;
    let n = logits.nrows();
    if splits == 0 || splits > n {
        return Err(TrainError::InvalidSplits { splits, samples: n });
    }
    let log_probs = log_softmax_rows(logits);
    let chunk = n / splits;
    let scores: Vec<f64> = (0..splits)
        .map(|k| split_score(log_probs.slice(s![k * chunk..(k + 1) * chunk, ..])))
        .collect();
    let mean = scores.iter().sum::<f64>() / splits as f64;
    let variance = scores.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / splits as f64;
    Ok(InceptionScore {
        mean,
        std: variance.sqrt(),
    })
}

/// Row-wise `log_softmax`, `[rows, classes]` -> `[rows, classes]`.
fn log_softmax_rows(logits: ArrayView2<'_, f64>) -> Array2<f64> {
    let mut out = logits.to_owned();
    for mut row in out.rows_mut() {
        let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let log_sum_exp = max + row.iter().map(|&v| (v - max).exp()).sum::<f64>().ln();
        row.mapv_inplace(|v| v - log_sum_exp);
    }
    out
}

/// `exp(mean_rows KL(p_row || mean_rows p))` of one chunk of log-probabilities `[rows, classes]`.
fn split_score(log_probs: ArrayView2<'_, f64>) -> f64 {
    let probs = log_probs.mapv(f64::exp);
    let log_marginal = probs
        .mean_axis(Axis(0))
        .map(|m| m.mapv(f64::ln))
        .unwrap_or_default();
    let mean_kl = probs
        .outer_iter()
        .zip(log_probs.outer_iter())
        .map(|(p, log_p)| {
            p.iter()
                .zip(log_p.iter())
                .zip(log_marginal.iter())
                .map(|((&p, &log_p), &log_m)| if p > 0.0 { p * (log_p - log_m) } else { 0.0 })
                .sum::<f64>()
        })
        .sum::<f64>()
        / log_probs.nrows() as f64;
    mean_kl.exp()
}

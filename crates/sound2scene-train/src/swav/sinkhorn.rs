//! The SwAV objective: Sinkhorn-Knopp codes and the swapped-prediction loss.
//!
//! Reference: Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster
//! Assignments" (NeurIPS 2020), Sec. 3.1, and `distributed_sinkhorn` / the loss of SwAV's
//! `main_swav.py`, here on one process (no all-reduce): the sums over the batch are the sums
//! over this batch.

use burn::tensor::Tensor;
use burn::tensor::activation::log_softmax;

use crate::error::TrainError;

/// Soft equipartitioned codes of a batch by the Sinkhorn-Knopp algorithm.
///
/// With `Q = exp(scores / epsilon)ᵀ` (`[K, B]`) normalized to sum 1, each of the `iterations`
/// rounds scales every row (prototype) to sum `1/K` and then every column (sample) to sum
/// `1/B`; the result is multiplied by `B`, so every sample's code sums to 1, and transposed
/// back. Computed without gradient (the input is detached).
///
/// # Shapes
/// - `scores`: `[B, K]`, the dot products of L2-normalized features with L2-normalized
///   prototypes (in `[-1, 1]`, so `exp(scores / 0.05)` stays within `f32`)
/// - output: `[B, K]`, non-negative, rows summing to 1, columns to about `B/K`
pub fn sinkhorn(scores: Tensor<2>, epsilon: f64, iterations: usize) -> Tensor<2> {
    let [batch, prototypes] = scores.dims();
    // [K, B]
    let q = scores.detach().div_scalar(epsilon).exp().transpose();
    let mut q = q.clone().div(q.sum().reshape([1, 1]));
    for _ in 0..iterations {
        // Each prototype's total weight becomes 1/K.
        q = q.clone().div(q.sum_dim(1)).div_scalar(prototypes as f64);
        // Each sample's total weight becomes 1/B.
        q = q.clone().div(q.sum_dim(0)).div_scalar(batch as f64);
    }
    // Columns sum to 1: each sample's code is a distribution over the prototypes.
    q.mul_scalar(batch as f64).transpose()
}

/// Settings of [`swapped_prediction_loss`].
#[derive(Debug, Clone, PartialEq)]
pub struct SwavLossSettings {
    /// Images per crop (the batch size B).
    pub batch: usize,
    /// Crops whose codes are predicted from the others (`[0, 1]`: the two large crops).
    pub crops_for_assign: Vec<usize>,
    /// Softmax temperature τ of the predictions (0.1).
    pub temperature: f64,
    /// Entropic regularization ε of the Sinkhorn codes (0.05).
    pub epsilon: f64,
    /// Sinkhorn-Knopp iterations (3).
    pub sinkhorn_iterations: usize,
}

/// The SwAV swapped-prediction loss (nats).
///
/// For every crop `c` of `crops_for_assign`, the codes `q_c = sinkhorn(scores_c)` (no gradient)
/// are predicted from every other crop `v` by `p_v = softmax(scores_v / τ)`; the loss is
/// `−mean_b Σ_k q_c[b,k] log p_v[b,k]`, averaged over the `V − 1` other crops and then over the
/// assigned crops.
///
/// # Shapes
/// - `scores`: `[V · B, K]`, crop-major (rows `v·B .. (v+1)·B` are crop `v` of the B images)
/// - output: `[1]`
///
/// # Errors
/// [`TrainError::Config`] when the rows are not a multiple of `batch`, there are fewer than two
/// crops, or a crop of `crops_for_assign` does not exist.
pub fn swapped_prediction_loss(
    scores: Tensor<2>,
    settings: &SwavLossSettings,
) -> Result<Tensor<1>, TrainError> {
    let [rows, _] = scores.dims();
    let batch = settings.batch;
    if batch == 0 || !rows.is_multiple_of(batch) {
        return Err(TrainError::config(format!(
            "the scores have {rows} rows, not a multiple of the batch size {batch}"
        )));
    }
    let crops = rows / batch;
    if crops < 2 {
        return Err(TrainError::config(format!(
            "SwAV needs at least two crops per image, got {crops}"
        )));
    }
    if settings.crops_for_assign.is_empty() {
        return Err(TrainError::config("crops_for_assign is empty"));
    }
    if let Some(bad) = settings.crops_for_assign.iter().find(|&&c| c >= crops) {
        return Err(TrainError::config(format!(
            "crops_for_assign names crop {bad}, but there are {crops} crops"
        )));
    }
    let crop = |v: usize| scores.clone().narrow(0, v * batch, batch);
    // log p_v for every crop: [B, K] each.
    let log_predictions: Vec<Tensor<2>> = (0..crops)
        .map(|v| log_softmax(crop(v).div_scalar(settings.temperature), 1))
        .collect();
    let mut total: Option<Tensor<1>> = None;
    for &assigned in &settings.crops_for_assign {
        // [B, K], detached inside `sinkhorn`.
        let codes = sinkhorn(
            crop(assigned),
            settings.epsilon,
            settings.sinkhorn_iterations,
        );
        let mut subloss: Option<Tensor<1>> = None;
        for (v, log_p) in log_predictions.iter().enumerate() {
            if v == assigned {
                continue;
            }
            // −mean_b Σ_k q log p: [B, K] -> [B, 1] -> [1]
            let cross_entropy = (codes.clone() * log_p.clone()).sum_dim(1).mean().neg();
            subloss = Some(match subloss {
                Some(s) => s + cross_entropy,
                None => cross_entropy,
            });
        }
        let subloss = subloss
            .ok_or_else(|| TrainError::config("no crop left to predict from"))?
            .div_scalar((crops - 1) as f64);
        total = Some(match total {
            Some(t) => t + subloss,
            None => subloss,
        });
    }
    let total = total.ok_or_else(|| TrainError::config("crops_for_assign is empty"))?;
    Ok(total.div_scalar(settings.crops_for_assign.len() as f64))
}

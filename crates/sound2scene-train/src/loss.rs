//! Audio-to-image alignment losses of Sound2Scene.
//!
//! The audio encoder is trained so that its features land on the (frozen) image encoder's
//! features of the paired video frame. The official objective is `InfoNCE_with_L2`: a symmetric
//! InfoNCE whose logits are the negated Euclidean distances between unit-norm features.
//! All functions take features as `[batch, dim]` float tensors (`[batch, 2048]` in the paper),
//! return a scalar `[1]` tensor, and are differentiable with respect to both inputs.

use burn::tensor::{Tensor, activation::log_softmax};
use sound2scene_models::normalize::l2_normalize_rows;

use crate::error::TrainError;

/// Lower bound on a squared distance before its square root is taken.
///
/// `d sqrt(x) / dx = 1 / (2 sqrt(x))` is infinite at `x = 0` (an audio feature equal to its image
/// feature); clamping at `1e-12` caps it. Unit-norm features have squared distances in `[0, 4]`,
/// so the clamp only touches distances below `1e-6`.
pub const DISTANCE_SQUARED_EPS: f32 = 1e-12;

/// Logit scale of the official `InfoNCE_with_L2` and `InfoNCE_Loss` (a fixed `1`, not learnt).
pub const LOGIT_SCALE: f32 = 1.0;

/// Which alignment objective to train the audio encoder with.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum ContrastiveLoss {
    /// Official Sound2Scene loss: symmetric InfoNCE over negated L2 distances of unit-norm
    /// features (scale 1). See [`info_nce_l2_loss`].
    #[default]
    InfoNceL2,
    /// Ablation: mean squared error between raw (unnormalised) features. See [`l2_loss`].
    L2,
    /// Ablation: symmetric InfoNCE over cosine similarities (CLIP-style, scale 1).
    /// See [`info_nce_cosine_loss`].
    InfoNceCosine,
}

impl ContrastiveLoss {
    /// Whether the loss scores each pair against the other pairs of its batch (the InfoNCE
    /// variants), and so is 0 for a batch of one whatever the features.
    pub fn is_contrastive(self) -> bool {
        matches!(self, Self::InfoNceL2 | Self::InfoNceCosine)
    }

    /// Computes this loss between audio features `[batch, dim]` and image features
    /// `[batch, dim]` (row `i` of each is a positive pair). Returns a dimensionless scalar `[1]`.
    ///
    /// Both tensors must live on the same device.
    pub fn compute(self, audio: Tensor<2>, image: Tensor<2>) -> Result<Tensor<1>, TrainError> {
        match self {
            Self::InfoNceL2 => info_nce_l2_loss(audio, image),
            Self::L2 => l2_loss(audio, image),
            Self::InfoNceCosine => info_nce_cosine_loss(audio, image),
        }
    }
}

/// Official Sound2Scene `InfoNCE_with_L2` loss.
///
/// With `a`, `v` the row-wise L2-normalised audio `[batch, dim]` and image `[batch, dim]`
/// features, `D[i, j] = ||v_i - a_j||_2` (`[batch, batch]`, times [`LOGIT_SCALE`]) and
/// `CE(X) = mean_i -log_softmax(X[i, :])[i]`, the loss is `(CE(-D) + CE(-D^T)) / 2`, a
/// dimensionless scalar `[1]` (natural-log units) that is differentiable w.r.t. both inputs.
pub fn info_nce_l2_loss(audio: Tensor<2>, image: Tensor<2>) -> Result<Tensor<1>, TrainError> {
    check_pair("info_nce_l2_loss", &audio, &image)?;
    let audio = l2_normalize_rows(audio);
    let image = l2_normalize_rows(image);
    let distance = pairwise_l2_distance(image, audio).mul_scalar(LOGIT_SCALE);
    Ok(symmetric_cross_entropy(distance.neg()))
}

/// Cosine-similarity InfoNCE (the official `InfoNCE_Loss` with scale 1), an ablation.
///
/// With `a`, `v` the row-wise L2-normalised audio and image features (`[batch, dim]` each),
/// logits `S = v a^T` (`[batch, batch]`, cosine similarities in `[-1, 1]`); the loss is
/// `(CE(S) + CE(S^T)) / 2`, a dimensionless scalar `[1]`.
pub fn info_nce_cosine_loss(audio: Tensor<2>, image: Tensor<2>) -> Result<Tensor<1>, TrainError> {
    check_pair("info_nce_cosine_loss", &audio, &image)?;
    let audio = l2_normalize_rows(audio);
    let image = l2_normalize_rows(image);
    let logits = image.matmul(audio.transpose()).mul_scalar(LOGIT_SCALE);
    Ok(symmetric_cross_entropy(logits))
}

/// Mean squared error between raw audio `[batch, dim]` and image `[batch, dim]` features
/// (`nn.MSELoss()`, mean over all `batch * dim` elements), an ablation. Returns a scalar `[1]`
/// in squared feature units.
pub fn l2_loss(audio: Tensor<2>, image: Tensor<2>) -> Result<Tensor<1>, TrainError> {
    check_pair("l2_loss", &audio, &image)?;
    Ok((image - audio).square().mean())
}

/// Rejects empty batches and audio/image shapes that differ.
fn check_pair(
    context: &'static str,
    audio: &Tensor<2>,
    image: &Tensor<2>,
) -> Result<(), TrainError> {
    let (a, v) = (audio.dims(), image.dims());
    if a != v {
        return Err(TrainError::ShapeMismatch {
            context,
            left_name: "audio features",
            left: a.to_vec(),
            right_name: "image features",
            right: v.to_vec(),
        });
    }
    if a[0] == 0 || a[1] == 0 {
        return Err(TrainError::Empty {
            context,
            name: "audio features",
            shape: a.to_vec(),
        });
    }
    Ok(())
}

/// `D[i, j] = ||x_i - y_j||_2` for `x` `[n, dim]` and `y` `[m, dim]`, giving `[n, m]`.
///
/// Uses `||x||^2 + ||y||^2 - 2 x.y` (one matmul, no `[n, m, dim]` intermediate); rounding can make
/// the squared distance slightly negative, which the clamp at [`DISTANCE_SQUARED_EPS`] absorbs.
fn pairwise_l2_distance(x: Tensor<2>, y: Tensor<2>) -> Tensor<2> {
    let x_sq = x.clone().square().sum_dim(1);
    let y_sq = y.clone().square().sum_dim(1).transpose();
    let cross = x.matmul(y.transpose()).mul_scalar(2.0);
    (x_sq + y_sq - cross).clamp_min(DISTANCE_SQUARED_EPS).sqrt()
}

/// `(CE(logits) + CE(logits^T)) / 2` with targets `arange(batch)` for square `logits`
/// `[batch, batch]`; row `i` of `logits^T` is column `i` of `logits`.
fn symmetric_cross_entropy(logits: Tensor<2>) -> Tensor<1> {
    let [batch, _] = logits.dims();
    let eye = Tensor::<2>::eye(batch, &logits.device());
    let per_row = log_softmax(logits.clone(), 1) * eye.clone();
    let per_col = log_softmax(logits, 0) * eye;
    let diagonal_sum = per_row.sum() + per_col.sum();
    diagonal_sum.mul_scalar(-0.5 / batch as f64)
}

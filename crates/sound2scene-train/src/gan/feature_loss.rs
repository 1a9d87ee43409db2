//! Feature consistency, an optional term of G's loss that IC-GAN does not have: the frozen
//! image encoder f_V re-encodes G's picture and the term is the cosine distance between that
//! feature and the instance feature h that conditioned G,
//!
//! `L_feat = mean_i (1 − cos(f_V(G(z_i, h_i)), h_i))`, in `[0, 2]`.
//!
//! IC-GAN's only signal that G should follow h is D's projection term, and on a small data set
//! D learns to tell real from generated long before it learns to tell a right instance from a
//! wrong one for generated pictures; G then draws realistic pictures whose content the noise
//! decides as much as h does. The term asks G directly for pictures that f_V places next to h.
//! G's loss becomes `hinge + feature_loss · L_feat` ([`super::GanConfig::feature_loss`]); with
//! the weight unset or 0 the loop is IC-GAN's.
//!
//! G's pictures go through f_V's preprocessing as tensor operations, so that gradients reach G
//! ([`ImageEncoder::try_forward_generated`]).

use burn::tensor::Tensor;
use sound2scene_models::image_encoder::ImageEncoder;

use crate::error::TrainError;

/// Smallest norm a re-encoded feature is divided by (keeps an all-zero feature finite).
const NORM_FLOOR: f64 = 1e-12;

/// `L_feat` (see the [module docs](self)) of G's pictures `images`, `[batch, 3, res, res]` in
/// `[-1, 1]`, against the unit features `features`, `[batch, dim]`, that conditioned them:
/// a `[1]` tensor whose gradient reaches `images`.
///
/// # Errors
/// [`TrainError::Config`] when f_V's output width is not `dim`; model errors from f_V.
pub fn feature_consistency(
    f_v: &ImageEncoder,
    images: Tensor<4>,
    features: Tensor<2>,
) -> Result<Tensor<1>, TrainError> {
    let [_, dim] = features.dims();
    let encoded = f_v.try_forward_generated(images)?; // [batch, dim']
    let [_, width] = encoded.dims();
    if width != dim {
        return Err(TrainError::config(format!(
            "the image encoder gives {width}-wide features but G is conditioned on {dim}-wide \
             ones; give train-gan the encoder the features were computed with"
        )));
    }
    let norm = encoded
        .clone()
        .square()
        .sum_dim(1)
        .sqrt()
        .clamp_min(NORM_FLOOR); // [batch, 1]
    let cosine = (encoded / norm * features).sum_dim(1); // [batch, 1]
    Ok((cosine.neg() + 1.0).mean())
}

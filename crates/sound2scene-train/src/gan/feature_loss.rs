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
//! G's pictures, `[-1, 1]`, go through f_V's preprocessing as tensors so that gradients reach
//! G: scaled to `[0, 1]`, normalized with the ImageNet mean and standard deviation, and resized
//! bilinearly to f_V's input side when G's resolution differs (the released encoder's
//! two-stage PIL-then-bicubic resize is approximated by one bilinear resize).

use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Tensor, TensorData};
use sound2scene_models::image_encoder::{IMAGENET_MEAN, IMAGENET_STD, ImageEncoder};

use crate::error::TrainError;

/// Smallest norm a re-encoded feature is divided by (keeps an all-zero feature finite).
const NORM_FLOOR: f64 = 1e-12;

/// f_V's input for G's pictures: `[batch, 3, res, res]` in `[-1, 1]` to
/// `[batch, 3, side, side]` ImageNet-normalized, differentiably.
pub fn encoder_input(images: Tensor<4>, side: usize) -> Tensor<4> {
    let device = images.device();
    let [_, _, h, w] = images.dims();
    let channel =
        |v: [f32; 3]| Tensor::<4>::from_data(TensorData::new(v.to_vec(), [1, 3, 1, 1]), &device);
    let unit = (images + 1.0) / 2.0;
    let normalized = (unit - channel(IMAGENET_MEAN)) / channel(IMAGENET_STD);
    if [h, w] == [side, side] {
        normalized
    } else {
        let options =
            InterpolateOptions::new(InterpolateMode::Bilinear).with_output_size([side, side]);
        interpolate(normalized, options)
    }
}

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
    let encoded = f_v.forward(encoder_input(images, f_v.input_side()))?; // [batch, dim']
    let [_, width] = encoded.dims();
    if width != dim {
        return Err(TrainError::Config(format!(
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

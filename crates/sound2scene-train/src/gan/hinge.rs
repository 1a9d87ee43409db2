//! The hinge losses of BigGAN and IC-GAN (BigGAN-PyTorch `losses.py`, `loss_hinge_dis` and
//! `loss_hinge_gen`, the defaults of every IC-GAN configuration).

use burn::tensor::Tensor;
use burn::tensor::activation::relu;

/// The discriminator's hinge loss, as its two terms:
/// `(mean(relu(1 − d_real)), mean(relu(1 + d_fake)))`. D minimizes their sum.
///
/// # Shapes
/// - `d_real`: `[batch, 1]`, D's logits of real images
/// - `d_fake`: `[batch', 1]`, D's logits of generated images
/// - output: two `[1]` tensors
pub fn hinge_d_loss(d_real: Tensor<2>, d_fake: Tensor<2>) -> (Tensor<1>, Tensor<1>) {
    let real = relu(d_real.neg().add_scalar(1.0)).mean(); // [1]
    let fake = relu(d_fake.add_scalar(1.0)).mean(); // [1]
    (real, fake)
}

/// The generator's hinge loss `−mean(d_fake)`.
///
/// # Shapes
/// - `d_fake`: `[batch, 1]`, D's logits of generated images → `[1]`
pub fn hinge_g_loss(d_fake: Tensor<2>) -> Tensor<1> {
    d_fake.mean().neg()
}

//! The IC-GAN BigGAN generator and discriminator (Casanova et al., NeurIPS 2021), the image
//! synthesizer of Sound2Scene, with BigGAN-PyTorch's spectral normalization.
//!
//! - [`spectral_norm`]: `power_iteration`, `SNConv2d`, `SNLinear` (layers.py).
//! - [`layers`]: `ccbn`, `bn`, `GBlock`, `DBlock`, `Attention` (layers.py).
//! - [`generator`]: G, `[batch, dim_z]` noise + `[batch, 2048]` instance feature →
//!   `[batch, 3, res, res]` image in `[-1, 1]` (BigGAN.py `Generator`).
//! - [`discriminator`]: D, image + instance feature → `[batch, 1]` logit (BigGAN.py
//!   `Discriminator`).
//! - [`icgan`]: reading a released IC-GAN experiment folder (`state_dict_bestN.pth`,
//!   `G_ema_bestN.pth`, `D_bestN.pth`) as `inference/utils.py` `load_model_inference` does.
//!
//! Training and evaluation behaviour follows the device, as in Burn's `BatchNorm`: on an
//! autodiff device batch norms use batch statistics and update the stored ones, and spectral
//! norms update `u0`/`sv0`; elsewhere (e.g. after `Module::valid`) both are frozen, which is
//! PyTorch's `eval()`.

pub mod discriminator;
pub mod generator;
pub mod icgan;
pub mod layers;
pub mod spectral_norm;

pub use discriminator::{Discriminator, DiscriminatorConfig};
pub use generator::{Generator, GeneratorConfig, INSTANCE_DIM};
pub use icgan::{IcganConfig, IcganExperiment, select_best};

use burn::tensor::Tensor;

use crate::error::{self, ModelError};

/// Parse an attention string such as `"64"` or `"32_64"` into resolutions; `"0"` (or an
/// empty string) means no attention.
pub(crate) fn parse_attention(spec: &str) -> std::result::Result<Vec<usize>, String> {
    spec.split('_')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim().parse::<usize>().map_err(|_| {
                format!("attention resolutions '{spec}' are not numbers joined by '_'")
            })
        })
        .collect()
}

/// A configuration error of G or D: the configuration is not tied to a file.
pub(crate) fn config_error(reason: String) -> ModelError {
    ModelError::Config {
        path: "<config>".into(),
        reason,
    }
}

/// Refuses a `feature_scale` (of G or D) that is not finite and positive.
pub(crate) fn check_feature_scale(scale: f64) -> error::Result<()> {
    if scale.is_finite() && scale > 0.0 {
        Ok(())
    } else {
        Err(config_error(format!(
            "feature_scale must be finite and positive, got {scale}"
        )))
    }
}

/// `feat · scale`, `[batch, instance_dim]`; at scale 1 (IC-GAN) the feature as is.
pub(crate) fn scale_feature(feat: Tensor<2>, scale: f64) -> Tensor<2> {
    if scale == 1.0 {
        feat
    } else {
        feat.mul_scalar(scale)
    }
}

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

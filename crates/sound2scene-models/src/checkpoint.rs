//! Opening a network from whichever file a user has: the released PyTorch checkpoint, an
//! IC-GAN experiment folder, or a burnpack file written by `sound2scene convert`.
//!
//! The format is recognised from the path: a folder is an IC-GAN experiment, a `.bpk` file is
//! burnpack (its header says which network it holds and with which configuration), anything
//! else is read as a PyTorch checkpoint.

use std::path::Path;

use burn::tensor::Device;

use crate::audio_encoder::{AudioEncoder, AudioEncoderConfig};
use crate::biggan::{Discriminator, DiscriminatorConfig, Generator, GeneratorConfig};
use crate::burnpack::{self, NetworkKind};
use crate::error::{ModelError, Result};
use crate::image_encoder::{ImageEncoder, ImageEncoderConfig};
use crate::weights::LoadOptions;

/// Whether `path` names a burnpack file (by its `.bpk` extension).
pub fn is_burnpack(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("bpk"))
}

/// The audio encoder f_A from `sound2scene.pth` (or a checkpoint of the same layout) or from
/// burnpack.
///
/// # Errors
/// Those of [`AudioEncoder::from_pytorch_with_config`] and [`burnpack::load`].
pub fn open_audio_encoder(
    path: impl AsRef<Path>,
    options: &LoadOptions,
    device: &Device,
) -> Result<(AudioEncoder, AudioEncoderConfig)> {
    let path = path.as_ref();
    if is_burnpack(path) {
        return burnpack::load(
            path,
            NetworkKind::AudioEncoder,
            device,
            |c: &AudioEncoderConfig, d| c.init(d),
        );
    }
    AudioEncoder::from_pytorch_with_config(path, options, device)
}

/// The image encoder f_V from SwAV's `swav_800ep_pretrain.pth.tar` (or the same layout) or
/// from burnpack.
///
/// # Errors
/// Those of [`ImageEncoder::from_pytorch`] and [`burnpack::load`].
pub fn open_image_encoder(
    path: impl AsRef<Path>,
    options: &LoadOptions,
    device: &Device,
) -> Result<(ImageEncoder, ImageEncoderConfig)> {
    let path = path.as_ref();
    if is_burnpack(path) {
        return burnpack::load(
            path,
            NetworkKind::ImageEncoder,
            device,
            |c: &ImageEncoderConfig, d| c.init(d),
        );
    }
    ImageEncoder::from_pytorch_with_config(path, options, device)
}

/// The generator G from an IC-GAN experiment folder or from burnpack.
///
/// # Errors
/// Those of [`Generator::from_icgan_folder`] and [`burnpack::load`]; a single `.pth` file is
/// refused with a message asking for its folder, which holds the architecture.
pub fn open_generator(
    path: impl AsRef<Path>,
    options: &LoadOptions,
    device: &Device,
) -> Result<(Generator, GeneratorConfig)> {
    let path = path.as_ref();
    if is_burnpack(path) {
        return burnpack::load(
            path,
            NetworkKind::Generator,
            device,
            |c: &GeneratorConfig, d| c.init(d),
        );
    }
    if path.is_file() {
        return Err(ModelError::Config {
            path: path.to_path_buf(),
            reason: "a generator .pth alone does not say its architecture: pass the IC-GAN \
                     experiment folder that holds it (with state_dict_bestN.pth), or a .bpk \
                     written by `sound2scene convert`"
                .into(),
        });
    }
    Generator::from_icgan_folder(path, options, device)
}

/// The discriminator D from an IC-GAN experiment folder or from burnpack.
///
/// # Errors
/// As [`open_generator`].
pub fn open_discriminator(
    path: impl AsRef<Path>,
    options: &LoadOptions,
    device: &Device,
) -> Result<(Discriminator, DiscriminatorConfig)> {
    let path = path.as_ref();
    if is_burnpack(path) {
        return burnpack::load(
            path,
            NetworkKind::Discriminator,
            device,
            |c: &DiscriminatorConfig, d| c.init(d),
        );
    }
    Discriminator::from_icgan_folder(path, options, device)
}

//! f_A, the audio encoder: a ResNet-18 on a one-channel log spectrogram, global average
//! pooling, a linear layer to 2048 and a ReLU.
//!
//! Reference: Sound2Scene `model.py` (`AVENet`, whose only module is `audnet`) and
//! `models/resnet.py` (`ResNet` with `pool='avgpool'`: conv1 takes one channel, `fc` maps the
//! 512 pooled channels to `num_classes = 2048`, and the ReLU is applied to the `fc` output).
//! `AVENet.forward` returns `(aud, x)` = (the ReLU'd 2048-d feature z^A, the pooled 512-d
//! trunk feature); [`AudioEmbedding`] holds both.
//!
//! The released `sound2scene.pth` is the `AVENet` `state_dict`: keys `audnet.conv1.weight`,
//! `audnet.layer1.0.conv1.weight`, …, `audnet.fc.weight`, `audnet.fc.bias`.

use std::path::Path;

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::error::ModelError;
use crate::resnet::{ResNet, ResNetConfig};
use crate::weights::{LoadOptions, StateDict, WeightLoader};

/// Key prefixes under which an `AVENet` state dict is recognised, tried in this order: as
/// released, wrapped by `nn.DataParallel`, and nested under a top-level checkpoint key.
pub const AUDIO_KEY_PREFIXES: [&str; 6] = [
    "audnet.",
    "module.audnet.",
    "model_state_dict.audnet.",
    "model_state_dict.module.audnet.",
    "state_dict.audnet.",
    "state_dict.module.audnet.",
];

/// Configuration of the [`AudioEncoder`].
#[derive(Config, Debug)]
pub struct AudioEncoderConfig {
    /// The trunk: ResNet-18 on one input channel in the paper.
    #[config(default = "ResNetConfig::resnet18(1)")]
    pub resnet: ResNetConfig,
    /// Width of z^A, the output of `fc` (2048, that of the SwAV image feature it is trained
    /// to match).
    #[config(default = 2048)]
    pub out_dim: usize,
}

impl AudioEncoderConfig {
    /// A randomly initialized encoder for training from scratch: the trunk as in
    /// [`ResNetConfig::init`], `fc` as PyTorch's `nn.Linear` default (uniform in
    /// ±1/√fan_in for weight and bias).
    pub fn init(&self, device: &Device) -> AudioEncoder {
        AudioEncoder {
            audnet: self.resnet.init(device),
            fc: LinearConfig::new(self.resnet.out_channels(), self.out_dim).init(device),
        }
    }
}

/// The two outputs of the audio encoder.
#[derive(Debug, Clone)]
pub struct AudioEmbedding {
    /// z^A = ReLU(fc(pooled)), `[batch, out_dim]` (`[batch, 2048]`); the feature the
    /// generator is conditioned on.
    pub feature: Tensor<2>,
    /// The globally average-pooled trunk output, `[batch, 512]` for ResNet-18.
    pub pooled: Tensor<2>,
}

/// f_A: ResNet trunk → global average pool → `fc` → ReLU (the official `AVENet`).
#[derive(Module, Debug)]
pub struct AudioEncoder {
    /// The ResNet trunk (PyTorch `audnet`, without its `fc`).
    pub audnet: ResNet,
    /// The projection to z^A (PyTorch `audnet.fc`), `[512] -> [2048]`.
    pub fc: Linear,
}

impl AudioEncoder {
    /// Load the released checkpoint (`sound2scene.pth`) or one of the same layout.
    ///
    /// The key prefix is detected among [`AUDIO_KEY_PREFIXES`]; the trunk's block kind, block
    /// counts and width and the output width are read from the tensor shapes (the released
    /// file gives ResNet-18 and 2048). Every other tensor in the file (optimizer state, other
    /// networks) is ignored when a prefix is found; when none is, the file is checked against
    /// the default configuration under `audnet.`, which lists what does not fit.
    ///
    /// # Errors
    /// [`ModelError::Io`] for a missing or unreadable file, [`ModelError::Checkpoint`] for a
    /// file that is not a PyTorch checkpoint, [`ModelError::NonFinite`] for NaN or infinite
    /// weights, [`ModelError::Mismatch`] listing every missing, unexpected and mis-shaped key
    /// when the checkpoint is not an `AVENet` of this shape.
    pub fn from_pytorch(
        path: impl AsRef<Path>,
        options: &LoadOptions,
        device: &Device,
    ) -> crate::Result<Self> {
        Self::from_pytorch_with_config(path, options, device).map(|(encoder, _)| encoder)
    }

    /// [`from_pytorch`](Self::from_pytorch), also returning the configuration read from the
    /// checkpoint (to save the encoder elsewhere or build a fresh one of the same shape).
    ///
    /// # Errors
    /// As [`from_pytorch`](Self::from_pytorch).
    pub fn from_pytorch_with_config(
        path: impl AsRef<Path>,
        options: &LoadOptions,
        device: &Device,
    ) -> crate::Result<(Self, AudioEncoderConfig)> {
        let dict = StateDict::from_pytorch(path, None, options)?;
        let Some(prefix) = AUDIO_KEY_PREFIXES
            .into_iter()
            .find(|p| dict.get(&format!("{p}conv1.weight")).is_some())
        else {
            let config = AudioEncoderConfig::new();
            let encoder = Self::from_state_dict(&dict, AUDIO_KEY_PREFIXES[0], &config, device)?;
            return Ok((encoder, config));
        };
        let dict = dict.without(|k| !k.starts_with(prefix));
        let config = Self::config_from_state_dict(&dict, prefix);
        let encoder = Self::from_state_dict(&dict, prefix, &config, device)?;
        Ok((encoder, config))
    }

    /// The configuration the tensors under `prefix` describe: the trunk from
    /// [`ResNetConfig::from_state_dict`] with one input channel and the output width from
    /// `fc.weight`; the defaults for what cannot be read.
    pub fn config_from_state_dict(dict: &StateDict, prefix: &str) -> AudioEncoderConfig {
        let mut config = AudioEncoderConfig::new();
        if let Some(resnet) = ResNetConfig::from_state_dict(dict, prefix, 1) {
            config.resnet = resnet;
        }
        if let Some(&[out_dim, _]) = dict
            .get(&format!("{prefix}fc.weight"))
            .map(|t| t.shape.as_slice())
        {
            config.out_dim = out_dim;
        }
        config
    }

    /// Build the encoder of `config` from the tensors under `prefix` (e.g. `"audnet."`),
    /// requiring every tensor of `dict` to be used.
    ///
    /// # Errors
    /// [`ModelError::Mismatch`] listing every key that does not fit.
    pub fn from_state_dict(
        dict: &StateDict,
        prefix: &str,
        config: &AudioEncoderConfig,
        device: &Device,
    ) -> crate::Result<Self> {
        let mut loader = WeightLoader::new(dict, device, "audio encoder (AVENet ResNet)");
        let encoder = Self::load(&mut loader, prefix, config);
        loader.finish()?;
        Ok(encoder)
    }

    /// Build the encoder from the tensors under `prefix`; problems are recorded in `loader`.
    pub fn load(loader: &mut WeightLoader<'_>, prefix: &str, config: &AudioEncoderConfig) -> Self {
        let audnet = ResNet::load(loader, prefix, &config.resnet);
        let fc = loader.linear(
            &format!("{prefix}fc"),
            config.resnet.out_channels(),
            config.out_dim,
            true,
        );
        Self { audnet, fc }
    }

    /// Encode log spectrograms.
    ///
    /// # Shapes
    /// - `spectrogram`: `[batch, 1, freq, frames]`; the front end gives `[batch, 1, 257,
    ///   1004]` for a 10 s clip, but any frequency and frame count is accepted.
    /// - output: [`AudioEmbedding`] with `feature` `[batch, out_dim]` and `pooled`
    ///   `[batch, 512]`.
    ///
    /// # Panics
    /// If the shapes do not fit; [`try_forward`](Self::try_forward) returns an error instead.
    pub fn forward(&self, spectrogram: Tensor<4>) -> AudioEmbedding {
        match self.try_forward(spectrogram) {
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`forward`](Self::forward), with mis-shaped inputs reported as
    /// [`ModelError::InputShape`].
    ///
    /// # Errors
    /// [`ModelError::InputShape`] unless `spectrogram` is `[batch, 1, freq, frames]` with no
    /// empty axis.
    pub fn try_forward(&self, spectrogram: Tensor<4>) -> crate::Result<AudioEmbedding> {
        let dims = spectrogram.dims();
        let [_, in_channels, _, _] = self.audnet.conv1.weight.dims();
        if dims[1] != in_channels || dims.contains(&0) {
            return Err(ModelError::InputShape {
                expected: format!("[batch, {in_channels}, freq, frames] with no empty axis"),
                found: dims.to_vec(),
            });
        }
        // [batch, 512]
        let pooled = self.audnet.forward_pooled(spectrogram);
        // [batch, out_dim]
        let feature = relu(self.fc.forward(pooled.clone()));
        Ok(AudioEmbedding { feature, pooled })
    }
}

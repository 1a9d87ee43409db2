//! The IC-GAN generator G: BigGAN (BigGAN-PyTorch BigGAN.py `Generator`) conditioned on an
//! instance feature (`instance_cond = True`, `class_cond = False`), as Sound2Scene uses it.
//!
//! ```text
//! y   = shared_feat(feat)                                   [batch, shared_dim_feat]
//! z   = [z_0 | z_1 | … | z_n]          (hier: n + 1 chunks of z_chunk_size)
//! h   = linear(z_0).view(batch, 16·ch, 4, 4)
//! h   = GBlock_i(h, cat[y, z_{i+1}])  (+ Attention at the configured resolutions)
//! img = tanh(conv(relu(bn(h))))                              [batch, 3, res, res]
//! ```
//!
//! Two settings that IC-GAN does not have change the first two lines:
//! [`feature_scale`](GeneratorConfig::feature_scale) `s` gives `y = shared_feat(s · feat)`,
//! and [`linear_cond`](GeneratorConfig::linear_cond) gives `h = linear(cat[y, z_0])`. Unset,
//! G is the official network.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use sound2scene_kernels::Fused;

use super::layers::{Attention, AttentionConfig, Bn, BnConfig, GBlock, GBlockConfig};
use super::spectral_norm::{SNConv2d, SNConv2dConfig, SNLinear, SNLinearConfig};
use super::{check_feature_scale, config_error, parse_attention, scale_feature};
use crate::error::{self, ModelError};
use crate::weights::WeightLoader;

/// Size of the instance features the released IC-GAN is conditioned on (SwAV ResNet-50 pooled
/// features), and the default of [`GeneratorConfig::instance_dim`].
pub const INSTANCE_DIM: usize = 2048;

/// Architecture of the IC-GAN generator. The defaults are the released ImageNet IC-GAN at
/// 128×128 (`icgan_res128.json`); [`IcganConfig`](super::IcganConfig) fills missing keys of
/// a stored config with BigGAN-PyTorch's command-line defaults instead.
#[derive(Config, Debug)]
pub struct GeneratorConfig {
    /// Channel width multiplier (`G_ch`).
    #[config(default = 96)]
    pub g_ch: usize,
    /// Requested noise size (`dim_z`); with `hier` it is rounded down to a multiple of the
    /// number of slots, see [`dim_z`](Self::dim_z).
    #[config(default = 120)]
    pub dim_z: usize,
    /// Spatial size of the first feature map (`bottom_width`).
    #[config(default = 4)]
    pub bottom_width: usize,
    /// Output resolution: 32, 64, 128, 256 or 512 (`resolution`).
    #[config(default = 128)]
    pub resolution: usize,
    /// Resolutions with self-attention, underscore separated; `"0"` for none (`G_attn`).
    #[config(default = "String::from(\"64\")")]
    pub g_attn: String,
    /// Hierarchical latent: z is split between the first linear layer and every block (`hier`).
    #[config(default = true)]
    pub hier: bool,
    /// Size of the projected instance feature (`shared_dim_feat`).
    #[config(default = 512)]
    pub shared_dim_feat: usize,
    /// Project the instance feature with an SN linear layer `shared_feat` (`G_shared_feat`);
    /// without it the raw feature conditions the blocks and `shared_dim_feat` must be 2048.
    #[config(default = true)]
    pub g_shared_feat: bool,
    /// Batch-norm epsilon of the conditional batch norms (`BN_eps`).
    #[config(default = 1e-5)]
    pub bn_eps: f64,
    /// Spectral norm epsilon (`SN_eps`).
    #[config(default = 1e-6)]
    pub sn_eps: f64,
    /// Size of the instance features G is conditioned on; `None` means [`INSTANCE_DIM`]
    /// (2048, SwAV's ResNet-50). A smaller image encoder, such as the bundled model's, gives
    /// smaller features. Read it with [`instance_size`](Self::instance_size).
    pub instance_dim: Option<usize>,
    /// Factor the instance feature is multiplied by before G uses it; `None` means 1, as in
    /// IC-GAN. Not part of IC-GAN: a unit-norm feature reaches G's spectrally normalized layers
    /// with norm 1 while each z chunk has norm about `√z_chunk`, so with few training steps the
    /// noise can outweigh the feature; a factor near `√z_chunk` gives both the same norm. Read
    /// it with [`feature_factor`](Self::feature_factor).
    pub feature_scale: Option<f64>,
    /// Feed the projected feature to the first linear layer too, `linear(cat[y, z_0])`, as
    /// BigGAN-deep feeds its class embedding, so that the feature shapes the first 4×4 layout
    /// and not only the batch-norm gains. `None` means `false`, as in IC-GAN. Read it with
    /// [`conditions_linear`](Self::conditions_linear).
    pub linear_cond: Option<bool>,
}

/// Per-block layout of G (BigGAN.py `G_arch`).
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorArch {
    /// Input channels of each block.
    pub in_channels: Vec<usize>,
    /// Output channels of each block.
    pub out_channels: Vec<usize>,
    /// Output resolution of each block.
    pub resolution: Vec<usize>,
    /// Whether an attention block follows each block.
    pub attention: Vec<bool>,
}

impl GeneratorConfig {
    /// The block layout for this width, resolution and attention string.
    ///
    /// # Errors
    /// [`ModelError::Config`] for an unsupported resolution or a malformed `g_attn`.
    pub fn arch(&self) -> error::Result<GeneratorArch> {
        let ch = self.g_ch;
        let (ins, outs): (&[usize], &[usize]) = match self.resolution {
            512 => (&[16, 16, 8, 8, 4, 2, 1], &[16, 8, 8, 4, 2, 1, 1]),
            256 => (&[16, 16, 8, 8, 4, 2], &[16, 8, 8, 4, 2, 1]),
            128 => (&[16, 16, 8, 4, 2], &[16, 8, 4, 2, 1]),
            64 => (&[16, 16, 8, 4], &[16, 8, 4, 2]),
            32 => (&[4, 4, 4], &[4, 4, 4]),
            r => {
                return Err(config_error(format!(
                    "G resolution {r} is not one of 32, 64, 128, 256, 512"
                )));
            }
        };
        let attn = parse_attention(&self.g_attn).map_err(config_error)?;
        let resolution: Vec<usize> = (0..ins.len()).map(|i| 8 << i).collect();
        Ok(GeneratorArch {
            in_channels: ins.iter().map(|m| m * ch).collect(),
            out_channels: outs.iter().map(|m| m * ch).collect(),
            attention: resolution.iter().map(|r| attn.contains(r)).collect(),
            resolution,
        })
    }

    /// Number of places z is fed to: blocks + 1 with `hier`, else 1.
    pub fn num_slots(&self) -> usize {
        match (self.hier, self.arch()) {
            (true, Ok(arch)) => arch.in_channels.len() + 1,
            _ => 1,
        }
    }

    /// Size of each z chunk (0 without `hier`, as in BigGAN-PyTorch).
    pub fn z_chunk_size(&self) -> usize {
        if self.hier {
            self.dim_z / self.num_slots()
        } else {
            0
        }
    }

    /// The noise size G takes: `dim_z` rounded down to a multiple of the number of slots
    /// (120 at 128×128, 119 at 256×256), as `Generator.dim_z` in BigGAN-PyTorch.
    pub fn dim_z(&self) -> usize {
        if self.hier {
            self.z_chunk_size() * self.num_slots()
        } else {
            self.dim_z
        }
    }

    /// Size of the instance features G takes: `instance_dim`, or 2048 when unset.
    pub fn instance_size(&self) -> usize {
        self.instance_dim.unwrap_or(INSTANCE_DIM)
    }

    /// [`feature_scale`](Self::feature_scale), or 1 when unset.
    pub fn feature_factor(&self) -> f64 {
        self.feature_scale.unwrap_or(1.0)
    }

    /// [`linear_cond`](Self::linear_cond), or `false` when unset.
    pub fn conditions_linear(&self) -> bool {
        self.linear_cond.unwrap_or(false)
    }

    /// Size of the conditioning vector of each block's batch norms.
    pub fn cond_size(&self) -> usize {
        self.shared_dim_feat + self.z_chunk_size()
    }

    /// Check the configuration describes a buildable generator.
    ///
    /// # Errors
    /// [`ModelError::Config`] naming the offending setting.
    pub fn validate(&self) -> error::Result<()> {
        let arch = self.arch()?;
        if self.g_ch == 0 || self.bottom_width == 0 {
            return Err(config_error(
                "G_ch and bottom_width must be positive".into(),
            ));
        }
        if self.hier && self.z_chunk_size() == 0 {
            return Err(config_error(format!(
                "dim_z {} is smaller than the {} hierarchical slots",
                self.dim_z,
                self.num_slots()
            )));
        }
        if !self.hier && self.dim_z == 0 {
            return Err(config_error("dim_z must be positive".into()));
        }
        if self.instance_size() == 0 {
            return Err(config_error("instance_dim must be positive".into()));
        }
        check_feature_scale(self.feature_factor())?;
        if !self.g_shared_feat && self.shared_dim_feat != self.instance_size() {
            return Err(config_error(format!(
                "without G_shared_feat the instance feature conditions G directly, so \
                 shared_dim_feat must be the instance size {}, not {}",
                self.instance_size(),
                self.shared_dim_feat
            )));
        }
        for (c, _) in arch
            .out_channels
            .iter()
            .zip(&arch.attention)
            .filter(|(_, a)| **a)
        {
            if c % 8 != 0 {
                return Err(config_error(format!(
                    "attention needs a multiple of 8 channels, got {c}"
                )));
            }
        }
        Ok(())
    }

    fn block(&self, arch: &GeneratorArch, i: usize) -> GBlockConfig {
        GBlockConfig::new(arch.in_channels[i], arch.out_channels[i], self.cond_size())
            .with_bn_eps(self.bn_eps)
            .with_sn_eps(self.sn_eps)
    }

    fn shared_feat(&self) -> SNLinearConfig {
        SNLinearConfig::new(self.instance_size(), self.shared_dim_feat).with_eps(self.sn_eps)
    }

    fn linear(&self, arch: &GeneratorArch) -> SNLinearConfig {
        let z_in = if self.hier {
            self.z_chunk_size()
        } else {
            self.dim_z
        };
        let y_in = if self.conditions_linear() {
            self.shared_dim_feat
        } else {
            0
        };
        SNLinearConfig::new(y_in + z_in, arch.in_channels[0] * self.bottom_width.pow(2))
            .with_eps(self.sn_eps)
    }

    fn output_conv(&self, arch: &GeneratorArch) -> SNConv2dConfig {
        let last = arch.out_channels[arch.out_channels.len() - 1];
        SNConv2dConfig::new([last, 3]).with_eps(self.sn_eps)
    }

    fn attention(&self, channels: usize) -> AttentionConfig {
        AttentionConfig::new(channels).with_sn_eps(self.sn_eps)
    }

    /// A generator with random (Glorot-uniform) weights, see [`SNConv2dConfig::init`].
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails.
    pub fn init(&self, device: &Device) -> Generator {
        if let Err(e) = self.validate() {
            panic!("invalid GeneratorConfig: {e}");
        }
        let Ok(arch) = self.arch() else {
            unreachable!("validated above")
        };
        let blocks = (0..arch.in_channels.len())
            .map(|i| GStage {
                block: self.block(&arch, i).init(device),
                attention: arch.attention[i]
                    .then(|| self.attention(arch.out_channels[i]).init(device)),
            })
            .collect();
        let last = arch.out_channels[arch.out_channels.len() - 1];
        Generator {
            shared_feat: self.g_shared_feat.then(|| self.shared_feat().init(device)),
            linear: self.linear(&arch).init(device),
            blocks,
            output_bn: BnConfig::new(last).init(device),
            output_conv: self.output_conv(&arch).init(device),
            dim_z: self.dim_z(),
            instance_dim: self.instance_size(),
            z_chunk_size: self.z_chunk_size(),
            hier: self.hier,
            bottom_width: self.bottom_width,
            feature_scale: self.feature_factor(),
            linear_cond: self.conditions_linear(),
        }
    }
}

/// One resolution stage of G: a [`GBlock`] and, at the attention resolutions, an
/// [`Attention`] block (PyTorch's `blocks.i.0` and `blocks.i.1`).
#[derive(Module, Debug)]
pub struct GStage {
    /// The residual block, `blocks.i.0`.
    pub block: GBlock,
    /// The self-attention block, `blocks.i.1`.
    pub attention: Option<Attention>,
}

/// The IC-GAN BigGAN generator (BigGAN-PyTorch BigGAN.py `Generator` with
/// `instance_cond = True`). Build it with [`GeneratorConfig::init`], [`Generator::load`],
/// [`Generator::from_pth`] or [`Generator::from_icgan_folder`](Generator::from_icgan_folder).
///
/// The PyTorch `output_layer` Sequential is split into [`output_bn`](Self::output_bn)
/// (`output_layer.0`) and [`output_conv`](Self::output_conv) (`output_layer.2`); the unused
/// class embedding `shared.weight` of the checkpoint is not kept.
#[derive(Module, Debug)]
pub struct Generator {
    /// Instance feature projection, `[batch, instance_dim] → [batch, shared_dim_feat]`.
    pub shared_feat: Option<SNLinear>,
    /// First layer, `[batch, z_chunk] → [batch, 16·ch·4·4]`; with
    /// [`linear_cond`](Self::linear_cond) its input is `[batch, shared_dim_feat + z_chunk]`.
    pub linear: SNLinear,
    /// The resolution stages, `blocks.i`.
    pub blocks: Vec<GStage>,
    /// Output batch norm, `output_layer.0`.
    pub output_bn: Bn,
    /// Output 3×3 convolution to RGB, `output_layer.2`.
    pub output_conv: SNConv2d,
    /// Noise size taken by [`forward`](Self::forward).
    pub dim_z: usize,
    /// Instance feature size taken by [`forward`](Self::forward) (2048 in IC-GAN).
    pub instance_dim: usize,
    /// Size of each z chunk with `hier`.
    pub z_chunk_size: usize,
    /// Hierarchical latent.
    pub hier: bool,
    /// Spatial size of the first feature map.
    pub bottom_width: usize,
    /// Factor applied to the instance feature ([`GeneratorConfig::feature_scale`]; 1 in IC-GAN).
    pub feature_scale: f64,
    /// Whether the first linear layer takes the projected feature too
    /// ([`GeneratorConfig::linear_cond`]; `false` in IC-GAN).
    pub linear_cond: bool,
}

impl Generator {
    /// Build G from PyTorch keys (`shared_feat.*`, `linear.*`, `blocks.i.j.*`,
    /// `output_layer.{0,2}.*`), skipping the unused class embedding `shared.weight`. Call
    /// [`WeightLoader::finish`] afterwards to learn about missing or unexpected keys.
    ///
    /// # Errors
    /// [`ModelError::Config`] if the configuration is invalid.
    pub fn load(loader: &mut WeightLoader, config: &GeneratorConfig) -> error::Result<Self> {
        config.validate()?;
        let arch = config.arch()?;
        loader.skip("shared.weight");
        let shared_feat = config
            .g_shared_feat
            .then(|| SNLinear::load(loader, "shared_feat", &config.shared_feat()));
        let linear = SNLinear::load(loader, "linear", &config.linear(&arch));
        let blocks = (0..arch.in_channels.len())
            .map(|i| GStage {
                block: GBlock::load(loader, &format!("blocks.{i}.0"), &config.block(&arch, i)),
                attention: arch.attention[i].then(|| {
                    Attention::load(
                        loader,
                        &format!("blocks.{i}.1"),
                        &config.attention(arch.out_channels[i]),
                    )
                }),
            })
            .collect();
        let last = arch.out_channels[arch.out_channels.len() - 1];
        Ok(Self {
            shared_feat,
            linear,
            blocks,
            output_bn: Bn::load(loader, "output_layer.0", &BnConfig::new(last)),
            output_conv: SNConv2d::load(loader, "output_layer.2", &config.output_conv(&arch)),
            dim_z: config.dim_z(),
            instance_dim: config.instance_size(),
            z_chunk_size: config.z_chunk_size(),
            hier: config.hier,
            bottom_width: config.bottom_width,
            feature_scale: config.feature_factor(),
            linear_cond: config.conditions_linear(),
        })
    }

    /// Generate images from noise and instance features.
    ///
    /// In evaluation (a device without autodiff) this is `G.eval()(z, None, feat)`; on an
    /// autodiff device it is a training step (batch statistics, spectral-norm updates).
    ///
    /// # Shapes
    /// - `z`: `[batch, dim_z]`, standard normal noise
    /// - `feat`: `[batch, instance_dim]`, instance features (L2-normalized SwAV features,
    ///   2048 wide, in IC-GAN)
    /// - output: `[batch, 3, res, res]` in `[-1, 1]`
    ///
    /// # Panics
    /// If the shapes do not fit; [`try_forward`](Self::try_forward) returns an error instead.
    pub fn forward(&self, z: Tensor<2>, feat: Tensor<2>) -> Tensor<4> {
        match self.try_forward(z, feat) {
            Ok(img) => img,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`forward`](Self::forward), with mis-shaped inputs reported as
    /// [`ModelError::InputShape`].
    ///
    /// # Errors
    /// [`ModelError::InputShape`] unless `z` is `[batch, dim_z]` and `feat`
    /// `[batch, instance_dim]`.
    pub fn try_forward(&self, z: Tensor<2>, feat: Tensor<2>) -> error::Result<Tensor<4>> {
        let [batch, zd] = z.dims();
        if zd != self.dim_z {
            return Err(ModelError::InputShape {
                expected: format!("z [batch, {}]", self.dim_z),
                found: z.dims().to_vec(),
            });
        }
        if feat.dims() != [batch, self.instance_dim] {
            return Err(ModelError::InputShape {
                expected: format!("feat [{batch}, {}]", self.instance_dim),
                found: feat.dims().to_vec(),
            });
        }
        let feat = scale_feature(feat, self.feature_scale);
        let y = match &self.shared_feat {
            Some(layer) => layer.forward(feat), // [b, shared_dim_feat]
            None => feat,
        };
        let (z0, ys) = if self.hier {
            let mut chunks = z.split(self.z_chunk_size, 1).into_iter(); // n+1 × [b, chunk]
            let Some(z0) = chunks.next() else {
                return Err(ModelError::InputShape {
                    expected: format!("z [batch, {}]", self.dim_z),
                    found: vec![batch, zd],
                });
            };
            // BigGAN.py: torch.cat([y, item], 1) — the feature first, then the z chunk.
            let ys: Vec<Tensor<2>> = chunks
                .map(|zc| Tensor::cat(vec![y.clone(), zc], 1))
                .collect();
            (z0, ys)
        } else {
            (z, vec![y.clone(); self.blocks.len()])
        };
        let z0 = if self.linear_cond {
            Tensor::cat(vec![y, z0], 1) // [b, shared_dim_feat + z_chunk]
        } else {
            z0
        };
        let bw = self.bottom_width;
        let mut h = self
            .linear
            .forward(z0)
            .reshape([batch as i32, -1, bw as i32, bw as i32]); // [b, 16ch, 4, 4]
        for (stage, y) in self.blocks.iter().zip(ys) {
            h = stage.block.forward(h, y); // [b, c, 2r, 2r]
            if let Some(attn) = &stage.attention {
                h = attn.forward(h);
            }
        }
        if h.device().is_autodiff() {
            let h = relu(self.output_bn.forward(h)); // [b, ch, res, res]
            return Ok(self.output_conv.forward(h).tanh()); // [b, 3, res, res]
        }
        // relu(bn(h)) applied while the output convolution pads its input.
        let (scale, shift) = self.output_bn.affine();
        let fused = Fused::new()
            .with_input_scale(scale)
            .with_input_shift(shift)
            .with_input_relu();
        Ok(self.output_conv.fused(h, fused).tanh()) // [b, 3, res, res]
    }
}

//! The IC-GAN discriminator D: BigGAN's (BigGAN-PyTorch BigGAN.py `Discriminator`) with the
//! instance projection term of IC-GAN (`instance_cond = True`, `class_cond = False`).
//!
//! ```text
//! h   = DBlock_i(…DBlock_0(x))        (+ Attention at the configured resolutions)
//! h   = Σ_{H,W} relu(h)                                      [batch, 16·ch]
//! out = linear(h) + Σ_c linear_feat(feat) ⊙ h                [batch, 1]
//! ```
//!
//! One setting is not in IC-GAN: [`feature_scale`](DiscriminatorConfig::feature_scale) `s`
//! projects `s · feat` instead of `feat`. Unset, D is the official network.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::generator::INSTANCE_DIM;
use super::layers::{Attention, AttentionConfig, DBlock, DBlockConfig};
use super::spectral_norm::{SNLinear, SNLinearConfig};
use super::{check_feature_scale, config_error, parse_attention, scale_feature};
use crate::error::{self, ModelError};
use crate::weights::WeightLoader;

/// Architecture of the IC-GAN discriminator. Defaults: the released ImageNet IC-GAN at
/// 128×128.
#[derive(Config, Debug)]
pub struct DiscriminatorConfig {
    /// Channel width multiplier (`D_ch`).
    #[config(default = 96)]
    pub d_ch: usize,
    /// Input resolution: 32, 64, 128 or 256 (`resolution`).
    #[config(default = 128)]
    pub resolution: usize,
    /// Resolutions with self-attention, underscore separated; `"0"` for none (`D_attn`).
    #[config(default = "String::from(\"64\")")]
    pub d_attn: String,
    /// Wide blocks as in BigGAN (`D_wide`).
    #[config(default = true)]
    pub d_wide: bool,
    /// Spectral norm epsilon (`SN_eps`).
    #[config(default = 1e-6)]
    pub sn_eps: f64,
    /// Size of the instance features D projects; `None` means [`INSTANCE_DIM`] (2048).
    /// Read it with [`instance_size`](Self::instance_size).
    pub instance_dim: Option<usize>,
    /// Factor the instance feature is multiplied by before D projects it; `None` means 1, as
    /// in IC-GAN. Not part of IC-GAN: it is the counterpart of G's
    /// [`feature_scale`](super::GeneratorConfig::feature_scale), and lets the projection term
    /// `⟨linear_feat(s · feat), φ(x)⟩` outweigh the unconditional term for unit-norm features.
    /// Read it with [`feature_factor`](Self::feature_factor).
    pub feature_scale: Option<f64>,
}

/// Per-block layout of D (BigGAN.py `D_arch`).
#[derive(Debug, Clone, PartialEq)]
pub struct DiscriminatorArch {
    /// Input channels of each block.
    pub in_channels: Vec<usize>,
    /// Output channels of each block.
    pub out_channels: Vec<usize>,
    /// Whether each block halves the resolution.
    pub downsample: Vec<bool>,
    /// Output resolution of each block.
    pub resolution: Vec<usize>,
    /// Whether an attention block follows each block.
    pub attention: Vec<bool>,
}

impl DiscriminatorConfig {
    /// The block layout for this width, resolution and attention string.
    ///
    /// # Errors
    /// [`ModelError::Config`] for an unsupported resolution or a malformed `d_attn`.
    pub fn arch(&self) -> error::Result<DiscriminatorArch> {
        let ch = self.d_ch;
        let (ins, outs, down, res): (&[usize], &[usize], Vec<bool>, &[usize]) =
            match self.resolution {
                256 => (
                    &[1, 2, 4, 8, 8, 16],
                    &[1, 2, 4, 8, 8, 16, 16],
                    [vec![true; 6], vec![false]].concat(),
                    &[128, 64, 32, 16, 8, 4, 4],
                ),
                128 => (
                    &[1, 2, 4, 8, 16],
                    &[1, 2, 4, 8, 16, 16],
                    [vec![true; 5], vec![false]].concat(),
                    &[64, 32, 16, 8, 4, 4],
                ),
                64 => (
                    &[1, 2, 4, 8],
                    &[1, 2, 4, 8, 16],
                    [vec![true; 4], vec![false]].concat(),
                    &[32, 16, 8, 4, 4],
                ),
                32 => (
                    &[4, 4, 4],
                    &[4, 4, 4, 4],
                    vec![true, true, false, false],
                    &[16, 16, 16, 16],
                ),
                r => {
                    return Err(config_error(format!(
                        "D resolution {r} is not one of 32, 64, 128, 256"
                    )));
                }
            };
        let attn = parse_attention(&self.d_attn).map_err(config_error)?;
        let mut in_channels = vec![3];
        in_channels.extend(ins.iter().map(|m| m * ch));
        Ok(DiscriminatorArch {
            in_channels,
            out_channels: outs.iter().map(|m| m * ch).collect(),
            downsample: down,
            resolution: res.to_vec(),
            attention: res.iter().map(|r| attn.contains(r)).collect(),
        })
    }

    /// Check the configuration describes a buildable discriminator.
    ///
    /// # Errors
    /// [`ModelError::Config`] naming the offending setting.
    pub fn validate(&self) -> error::Result<()> {
        let arch = self.arch()?;
        if self.d_ch == 0 || self.instance_size() == 0 {
            return Err(config_error(
                "D_ch and instance_dim must be positive".into(),
            ));
        }
        check_feature_scale(self.feature_factor())?;
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

    fn block(&self, arch: &DiscriminatorArch, i: usize) -> DBlockConfig {
        DBlockConfig::new(arch.in_channels[i], arch.out_channels[i])
            .with_wide(self.d_wide)
            .with_preactivation(i > 0)
            .with_downsample(arch.downsample[i])
            .with_sn_eps(self.sn_eps)
    }

    fn attention(&self, channels: usize) -> AttentionConfig {
        AttentionConfig::new(channels).with_sn_eps(self.sn_eps)
    }

    fn last(arch: &DiscriminatorArch) -> usize {
        arch.out_channels[arch.out_channels.len() - 1]
    }

    fn linear(&self, arch: &DiscriminatorArch) -> SNLinearConfig {
        SNLinearConfig::new(Self::last(arch), 1).with_eps(self.sn_eps)
    }

    fn linear_feat(&self, arch: &DiscriminatorArch) -> SNLinearConfig {
        SNLinearConfig::new(self.instance_size(), Self::last(arch)).with_eps(self.sn_eps)
    }

    /// Size of the instance features D takes: `instance_dim`, or 2048 when unset.
    pub fn instance_size(&self) -> usize {
        self.instance_dim.unwrap_or(INSTANCE_DIM)
    }

    /// [`feature_scale`](Self::feature_scale), or 1 when unset.
    pub fn feature_factor(&self) -> f64 {
        self.feature_scale.unwrap_or(1.0)
    }

    /// A discriminator with random (Glorot-uniform) weights.
    ///
    /// # Panics
    /// If [`validate`](Self::validate) fails.
    pub fn init(&self, device: &Device) -> Discriminator {
        if let Err(e) = self.validate() {
            panic!("invalid DiscriminatorConfig: {e}");
        }
        let Ok(arch) = self.arch() else {
            unreachable!("validated above")
        };
        Discriminator {
            blocks: (0..arch.in_channels.len())
                .map(|i| DStage {
                    block: self.block(&arch, i).init(device),
                    attention: arch.attention[i]
                        .then(|| self.attention(arch.out_channels[i]).init(device)),
                })
                .collect(),
            linear: self.linear(&arch).init(device),
            linear_feat: self.linear_feat(&arch).init(device),
            instance_dim: self.instance_size(),
            feature_scale: self.feature_factor(),
        }
    }
}

/// One stage of D: a [`DBlock`] and, at the attention resolutions, an [`Attention`] block
/// (PyTorch's `blocks.i.0` and `blocks.i.1`).
#[derive(Module, Debug)]
pub struct DStage {
    /// The residual block, `blocks.i.0`.
    pub block: DBlock,
    /// The self-attention block, `blocks.i.1`.
    pub attention: Option<Attention>,
}

/// The IC-GAN BigGAN discriminator (BigGAN-PyTorch BigGAN.py `Discriminator` with
/// `instance_cond = True`, `output_dim = 1`).
#[derive(Module, Debug)]
pub struct Discriminator {
    /// The stages, `blocks.i`.
    pub blocks: Vec<DStage>,
    /// Unconditional output, `[batch, 16·ch] → [batch, 1]`.
    pub linear: SNLinear,
    /// Instance projection, `[batch, instance_dim] → [batch, 16·ch]`.
    pub linear_feat: SNLinear,
    /// Instance feature size taken by [`forward`](Self::forward) (2048 in IC-GAN).
    pub instance_dim: usize,
    /// Factor applied to the instance feature ([`DiscriminatorConfig::feature_scale`]; 1 in
    /// IC-GAN).
    pub feature_scale: f64,
}

impl Discriminator {
    /// Build D from PyTorch keys (`blocks.i.j.*`, `linear.*`, `linear_feat.*`). Call
    /// [`WeightLoader::finish`] afterwards.
    ///
    /// # Errors
    /// [`ModelError::Config`] if the configuration is invalid.
    pub fn load(loader: &mut WeightLoader, config: &DiscriminatorConfig) -> error::Result<Self> {
        config.validate()?;
        let arch = config.arch()?;
        let blocks = (0..arch.in_channels.len())
            .map(|i| DStage {
                block: DBlock::load(loader, &format!("blocks.{i}.0"), &config.block(&arch, i)),
                attention: arch.attention[i].then(|| {
                    Attention::load(
                        loader,
                        &format!("blocks.{i}.1"),
                        &config.attention(arch.out_channels[i]),
                    )
                }),
            })
            .collect();
        Ok(Self {
            blocks,
            linear: SNLinear::load(loader, "linear", &config.linear(&arch)),
            linear_feat: SNLinear::load(loader, "linear_feat", &config.linear_feat(&arch)),
            instance_dim: config.instance_size(),
            feature_scale: config.feature_factor(),
        })
    }

    /// Score images given the instance features they should match (`D(x, None, feat)`).
    ///
    /// # Shapes
    /// - `x`: `[batch, 3, res, res]` in `[-1, 1]`
    /// - `feat`: `[batch, instance_dim]` (2048 in IC-GAN)
    /// - output: `[batch, 1]` (unbounded logits)
    ///
    /// # Panics
    /// If the shapes do not fit; [`try_forward`](Self::try_forward) returns an error instead.
    pub fn forward(&self, x: Tensor<4>, feat: Tensor<2>) -> Tensor<2> {
        match self.try_forward(x, feat) {
            Ok(out) => out,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`forward`](Self::forward), with mis-shaped inputs reported as
    /// [`ModelError::InputShape`].
    ///
    /// # Errors
    /// [`ModelError::InputShape`] unless `x` is `[batch, 3, h, w]` and `feat`
    /// `[batch, instance_dim]`.
    pub fn try_forward(&self, x: Tensor<4>, feat: Tensor<2>) -> error::Result<Tensor<2>> {
        let [batch, c, _, _] = x.dims();
        if c != 3 {
            return Err(ModelError::InputShape {
                expected: "x [batch, 3, res, res]".into(),
                found: x.dims().to_vec(),
            });
        }
        if feat.dims() != [batch, self.instance_dim] {
            return Err(ModelError::InputShape {
                expected: format!("feat [{batch}, {}]", self.instance_dim),
                found: feat.dims().to_vec(),
            });
        }
        let mut h = x;
        for stage in &self.blocks {
            h = stage.block.forward(h);
            if let Some(attn) = &stage.attention {
                h = attn.forward(h);
            }
        }
        let h: Tensor<2> = relu(h).sum_dims_squeeze(&[2usize, 3]); // [b, 16ch]
        let out = self.linear.forward(h.clone()); // [b, 1]
        let feat = scale_feature(feat, self.feature_scale);
        let proj = self.linear_feat.forward(feat).mul(h).sum_dim(1); // [b, 1]
        Ok(out.add(proj))
    }
}

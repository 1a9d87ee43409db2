//! The building blocks of BigGAN (BigGAN-PyTorch layers.py): conditional batch norm `ccbn`,
//! plain batch norm `bn`, the residual blocks `GBlock` and `DBlock`, and the SA-GAN
//! self-attention block `Attention`.
//!
//! Batch norm follows the device like Burn's `BatchNorm`: on an autodiff device it normalizes
//! with the batch statistics and updates the stored ones with momentum 0.1 (PyTorch's
//! `F.batch_norm(..., training=True)`, which stores the unbiased variance); elsewhere it uses
//! `stored_mean` / `stored_var`.

use burn::config::Config;
use burn::module::{Module, Param, RunningState};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::module::{batch_norm, max_pool2d};
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};

use sound2scene_kernels::Fused;

use super::spectral_norm::{SNConv2d, SNConv2dConfig, SNLinear, SNLinearConfig};
use crate::weights::WeightLoader;

/// Momentum of the stored batch-norm statistics (BigGAN-PyTorch's fixed 0.1).
pub const BN_MOMENTUM: f64 = 0.1;

/// Normalize `x` with batch statistics and apply `γ`, `β` (per channel, or per sample and
/// channel) and a ReLU when asked, in the fused kernels of [`sound2scene_kernels`]; update
/// `stored_mean` / `stored_var` like PyTorch's training-mode `F.batch_norm` (unbiased variance
/// in the running estimate).
fn batch_norm_training(
    x: Tensor<4>,
    affine: Affine,
    stored_mean: &RunningState<Tensor<1>>,
    stored_var: &RunningState<Tensor<1>>,
    eps: f64,
    relu: bool,
) -> Tensor<4> {
    let [b, _, h, w] = x.dims();
    let n = (b * h * w) as f64;
    let result = match affine {
        Affine::PerChannel(gamma, beta) => {
            sound2scene_kernels::batch_norm_train(x, gamma, beta, None, eps, relu)
        }
        Affine::PerSample(gamma, beta) => {
            sound2scene_kernels::batch_norm_train_per_image(x, gamma, beta, None, eps, relu)
        }
    };
    let unbiased = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
    let mean = stored_mean
        .value_sync()
        .mul_scalar(1.0 - BN_MOMENTUM)
        .add(result.mean.mul_scalar(BN_MOMENTUM));
    let var = stored_var
        .value_sync()
        .mul_scalar(1.0 - BN_MOMENTUM)
        .add(result.variance.mul_scalar(BN_MOMENTUM * unbiased));
    stored_mean.update(mean.detach());
    stored_var.update(var.detach());
    result.output
}

/// The affine part of a batch norm: `γ`, `β` per channel (`[c]`), or per sample and channel
/// (`[b, c]`, a conditional batch norm).
enum Affine {
    PerChannel(Tensor<1>, Tensor<1>),
    PerSample(Tensor<2>, Tensor<2>),
}

/// Configuration of a [`Ccbn`].
#[derive(Config, Debug)]
pub struct CcbnConfig {
    /// Channels normalized.
    pub channels: usize,
    /// Size of the conditioning vector `y`.
    pub cond_size: usize,
    /// Batch-norm epsilon (`BN_eps`).
    #[config(default = 1e-5)]
    pub bn_eps: f64,
    /// Spectral norm epsilon of the gain and bias layers.
    #[config(default = 1e-6)]
    pub sn_eps: f64,
}

impl CcbnConfig {
    fn linear(&self) -> SNLinearConfig {
        SNLinearConfig::new(self.cond_size, self.channels)
            .with_bias(false)
            .with_eps(self.sn_eps)
    }

    /// Random gain/bias layers, zero mean and unit variance statistics.
    pub fn init(&self, device: &Device) -> Ccbn {
        Ccbn {
            gain: self.linear().init(device),
            bias: self.linear().init(device),
            stored_mean: RunningState::new(Tensor::zeros([self.channels], device)),
            stored_var: RunningState::new(Tensor::ones([self.channels], device)),
            eps: self.bn_eps,
        }
    }
}

/// Conditional batch norm (BigGAN-PyTorch layers.py `ccbn`, `norm_style = 'bn'`):
/// `BN(x) · (1 + gain(y)) + bias(y)`, with `gain` and `bias` bias-free [`SNLinear`] layers.
#[derive(Module, Debug)]
pub struct Ccbn {
    /// `y → gain − 1`, `[cond] → [channels]`.
    pub gain: SNLinear,
    /// `y → bias`, `[cond] → [channels]`.
    pub bias: SNLinear,
    /// Stored per-channel mean, `[channels]`.
    pub stored_mean: RunningState<Tensor<1>>,
    /// Stored per-channel variance, `[channels]`.
    pub stored_var: RunningState<Tensor<1>>,
    /// Batch-norm epsilon.
    pub eps: f64,
}

impl Ccbn {
    /// Read `prefix.gain.*`, `prefix.bias.*`, `prefix.stored_mean`, `prefix.stored_var`.
    pub fn load(loader: &mut WeightLoader, prefix: &str, config: &CcbnConfig) -> Self {
        let c = config.channels;
        Self {
            gain: SNLinear::load(loader, &format!("{prefix}.gain"), &config.linear()),
            bias: SNLinear::load(loader, &format!("{prefix}.bias"), &config.linear()),
            stored_mean: loader.state(&format!("{prefix}.stored_mean"), [c]),
            stored_var: loader.state(&format!("{prefix}.stored_var"), [c]),
            eps: config.bn_eps,
        }
    }

    /// The layer at inference as one scale and shift per sample and channel: `forward(x, y)
    /// = x · scale + shift` with the stored statistics folded in.
    ///
    /// # Shapes
    /// - `y`: `[batch, cond]` → `(scale, shift)`, each `[batch, channels]`
    pub fn affine(&self, y: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let gain = self.gain.forward(y.clone()).add_scalar(1.0); // [b, c]
        let bias = self.bias.forward(y); // [b, c]
        let inv_std = self
            .stored_var
            .value()
            .add_scalar(self.eps)
            .sqrt()
            .recip()
            .unsqueeze::<2>(); // [1, c]
        let mean = self.stored_mean.value().unsqueeze::<2>(); // [1, c]
        let scale = gain.mul(inv_std); // [b, c]
        let shift = bias.sub(mean.mul(scale.clone())); // [b, c]
        (scale, shift)
    }

    /// # Shapes
    /// - `x`: `[batch, channels, h, w]`, `y`: `[batch, cond]` → `[batch, channels, h, w]`
    pub fn forward(&self, x: Tensor<4>, y: Tensor<2>) -> Tensor<4> {
        self.forward_then(x, y, false)
    }

    /// [`forward`](Self::forward) followed by a ReLU when `relu`, fused with it in training.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels, h, w]`, `y`: `[batch, cond]` → `[batch, channels, h, w]`
    pub fn forward_then(&self, x: Tensor<4>, y: Tensor<2>, relu_after: bool) -> Tensor<4> {
        let [b, c, _, _] = x.dims();
        if !x.device().is_autodiff() {
            let (scale, shift) = self.affine(y);
            let out = x
                .mul(scale.reshape([b, c, 1, 1]))
                .add(shift.reshape([b, c, 1, 1]));
            return if relu_after { relu(out) } else { out };
        }
        let gain = self.gain.forward(y.clone()).add_scalar(1.0); // [b, c]
        let bias = self.bias.forward(y); // [b, c]
        batch_norm_training(
            x,
            Affine::PerSample(gain, bias),
            &self.stored_mean,
            &self.stored_var,
            self.eps,
            relu_after,
        )
    }
}

/// Configuration of a [`Bn`].
#[derive(Config, Debug)]
pub struct BnConfig {
    /// Channels normalized.
    pub channels: usize,
    /// Batch-norm epsilon. BigGAN's generator builds its output `bn` without passing
    /// `BN_eps`, so it is always layers.py's default 1e-5.
    #[config(default = 1e-5)]
    pub eps: f64,
}

impl BnConfig {
    /// Unit gain, zero bias, zero mean and unit variance statistics.
    pub fn init(&self, device: &Device) -> Bn {
        let c = self.channels;
        Bn {
            gain: Param::from_tensor(Tensor::ones([c], device)),
            bias: Param::from_tensor(Tensor::zeros([c], device)),
            stored_mean: RunningState::new(Tensor::zeros([c], device)),
            stored_var: RunningState::new(Tensor::ones([c], device)),
            eps: self.eps,
        }
    }
}

/// Unconditional batch norm with stored statistics (BigGAN-PyTorch layers.py `bn`), the
/// generator's `output_layer.0`.
#[derive(Module, Debug)]
pub struct Bn {
    /// Per-channel gain, `[channels]`.
    pub gain: Param<Tensor<1>>,
    /// Per-channel bias, `[channels]`.
    pub bias: Param<Tensor<1>>,
    /// Stored per-channel mean, `[channels]`.
    pub stored_mean: RunningState<Tensor<1>>,
    /// Stored per-channel variance, `[channels]`.
    pub stored_var: RunningState<Tensor<1>>,
    /// Batch-norm epsilon.
    pub eps: f64,
}

impl Bn {
    /// Read `prefix.gain`, `prefix.bias`, `prefix.stored_mean`, `prefix.stored_var`.
    pub fn load(loader: &mut WeightLoader, prefix: &str, config: &BnConfig) -> Self {
        let c = config.channels;
        Self {
            gain: loader.param(&format!("{prefix}.gain"), [c]),
            bias: loader.param(&format!("{prefix}.bias"), [c]),
            stored_mean: loader.state(&format!("{prefix}.stored_mean"), [c]),
            stored_var: loader.state(&format!("{prefix}.stored_var"), [c]),
            eps: config.eps,
        }
    }

    /// The layer at inference as one scale and shift per channel, `forward(x) = x · scale +
    /// shift`.
    ///
    /// # Shapes
    /// `(scale, shift)`, each `[channels]`
    pub fn affine(&self) -> (Tensor<1>, Tensor<1>) {
        let inv_std = self.stored_var.value().add_scalar(self.eps).sqrt().recip();
        let scale = self.gain.val().mul(inv_std);
        let shift = self
            .bias
            .val()
            .sub(self.stored_mean.value().mul(scale.clone()));
        (scale, shift)
    }

    /// # Shapes
    /// - `x`: `[batch, channels, h, w]` → `[batch, channels, h, w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if x.device().is_autodiff() {
            return batch_norm_training(
                x,
                Affine::PerChannel(self.gain.val(), self.bias.val()),
                &self.stored_mean,
                &self.stored_var,
                self.eps,
                false,
            );
        }
        batch_norm(
            x,
            self.gain.val(),
            self.bias.val(),
            self.stored_mean.value(),
            self.stored_var.value(),
            self.eps,
        )
    }
}

/// Nearest-neighbour 2× upsampling (`F.interpolate(x, scale_factor=2)`).
///
/// # Shapes
/// - `x`: `[batch, c, h, w]` → `[batch, c, 2h, 2w]`
pub fn upsample2x(x: Tensor<4>) -> Tensor<4> {
    sound2scene_kernels::upsample2x(x)
}

/// Configuration of a [`GBlock`].
#[derive(Config, Debug)]
pub struct GBlockConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Size of the conditioning vector of the two [`Ccbn`]s.
    pub cond_size: usize,
    /// Whether the block doubles the resolution.
    #[config(default = true)]
    pub upsample: bool,
    /// Batch-norm epsilon.
    #[config(default = 1e-5)]
    pub bn_eps: f64,
    /// Spectral norm epsilon.
    #[config(default = 1e-6)]
    pub sn_eps: f64,
}

impl GBlockConfig {
    fn conv(&self, c_in: usize, c_out: usize, kernel: usize) -> SNConv2dConfig {
        SNConv2dConfig::new([c_in, c_out])
            .with_kernel_size(kernel)
            .with_padding(kernel / 2)
            .with_eps(self.sn_eps)
    }

    fn bn(&self, channels: usize) -> CcbnConfig {
        CcbnConfig::new(channels, self.cond_size)
            .with_bn_eps(self.bn_eps)
            .with_sn_eps(self.sn_eps)
    }

    fn learnable_sc(&self) -> bool {
        self.in_channels != self.out_channels || self.upsample
    }

    /// A randomly initialized block.
    pub fn init(&self, device: &Device) -> GBlock {
        let (i, o) = (self.in_channels, self.out_channels);
        GBlock {
            conv1: self.conv(i, o, 3).init(device),
            conv2: self.conv(o, o, 3).init(device),
            conv_sc: self.learnable_sc().then(|| self.conv(i, o, 1).init(device)),
            bn1: self.bn(i).init(device),
            bn2: self.bn(o).init(device),
            upsample: self.upsample,
        }
    }
}

/// BigGAN's generator residual block (layers.py `GBlock`):
/// `conv2(relu(bn2(conv1(up(relu(bn1(x, y)))), y))) + conv_sc(up(x))`.
#[derive(Module, Debug)]
pub struct GBlock {
    /// 3×3, in → out.
    pub conv1: SNConv2d,
    /// 3×3, out → out.
    pub conv2: SNConv2d,
    /// 1×1 shortcut, present when the channels change or the block upsamples.
    pub conv_sc: Option<SNConv2d>,
    /// Conditional batch norm before `conv1`, over the input channels.
    pub bn1: Ccbn,
    /// Conditional batch norm before `conv2`, over the output channels.
    pub bn2: Ccbn,
    /// Whether the block doubles the resolution.
    pub upsample: bool,
}

impl GBlock {
    /// Read the block under `prefix` (e.g. `blocks.0.0`).
    pub fn load(loader: &mut WeightLoader, prefix: &str, config: &GBlockConfig) -> Self {
        let (i, o) = (config.in_channels, config.out_channels);
        Self {
            conv1: SNConv2d::load(loader, &format!("{prefix}.conv1"), &config.conv(i, o, 3)),
            conv2: SNConv2d::load(loader, &format!("{prefix}.conv2"), &config.conv(o, o, 3)),
            conv_sc: config.learnable_sc().then(|| {
                SNConv2d::load(loader, &format!("{prefix}.conv_sc"), &config.conv(i, o, 1))
            }),
            bn1: Ccbn::load(loader, &format!("{prefix}.bn1"), &config.bn(i)),
            bn2: Ccbn::load(loader, &format!("{prefix}.bn2"), &config.bn(o)),
            upsample: config.upsample,
        }
    }

    /// # Shapes
    /// - `x`: `[batch, in, h, w]`, `y`: `[batch, cond]` → `[batch, out, 2h, 2w]` (or
    ///   `[batch, out, h, w]` without upsampling)
    pub fn forward(&self, x: Tensor<4>, y: Tensor<2>) -> Tensor<4> {
        if !x.device().is_autodiff() {
            return self.forward_fused(x, y);
        }
        let mut h = self.bn1.forward_then(x.clone(), y.clone(), true); // relu(bn1): [b, in, h, w]
        if self.upsample {
            h = upsample2x(h); // [b, in, 2h, 2w]
        }
        h = self.conv1.forward(h); // [b, out, 2h, 2w]
        h = self.bn2.forward_then(h, y, true); // relu(bn2)
        h = self.conv2.forward(h); // [b, out, 2h, 2w]
        // A 1×1 convolution commutes exactly with nearest upsampling, so the shortcut
        // convolves at the low resolution (4× fewer operations) and upsamples after.
        let mut sc = match &self.conv_sc {
            Some(conv) => conv.forward(x), // [b, out, h, w]
            None => x,
        };
        if self.upsample {
            sc = upsample2x(sc); // [b, out, 2h, 2w]
        }
        h.add(sc)
    }
}

impl GBlock {
    /// [`forward`](Self::forward) at inference, in three fused convolutions: `conv1` reads
    /// `up(relu(bn1(x, y)))` as it pads its input and stores `relu(bn2(·, y))`; the shortcut
    /// convolves at the low resolution; `conv2` adds it, upsampled, as it stores.
    ///
    /// # Shapes
    /// - `x`: `[batch, in, h, w]`, `y`: `[batch, cond]` → `[batch, out, 2h, 2w]` (or
    ///   `[batch, out, h, w]` without upsampling)
    fn forward_fused(&self, x: Tensor<4>, y: Tensor<2>) -> Tensor<4> {
        let (a1, d1) = self.bn1.affine(y.clone()); // [b, in] each
        let (a2, d2) = self.bn2.affine(y); // [b, out] each
        let mut first = Fused::new()
            .with_input_affine_per_image(a1, d1)
            .with_input_relu()
            .with_affine_per_image(a2, d2)
            .with_relu();
        if self.upsample {
            first = first.with_upsampled_input();
        }
        let h = self.conv1.fused(x.clone(), first); // [b, out, 2h, 2w]
        let sc = match &self.conv_sc {
            Some(conv) => conv.forward(x), // [b, out, h, w]
            None => x,
        };
        let second = if self.upsample {
            Fused::new().with_upsampled_residual(sc)
        } else {
            Fused::new().with_residual(sc)
        };
        self.conv2.fused(h, second) // [b, out, 2h, 2w]
    }
}

/// Configuration of a [`DBlock`].
#[derive(Config, Debug)]
pub struct DBlockConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Wide D (BigGAN, SA-GAN): the hidden width is `out_channels`, else `in_channels`.
    #[config(default = true)]
    pub wide: bool,
    /// ReLU before the first convolution (every block but the first).
    #[config(default = true)]
    pub preactivation: bool,
    /// Whether the block halves the resolution with 2×2 average pooling.
    #[config(default = true)]
    pub downsample: bool,
    /// Spectral norm epsilon.
    #[config(default = 1e-6)]
    pub sn_eps: f64,
}

impl DBlockConfig {
    fn conv(&self, c_in: usize, c_out: usize, kernel: usize) -> SNConv2dConfig {
        SNConv2dConfig::new([c_in, c_out])
            .with_kernel_size(kernel)
            .with_padding(kernel / 2)
            .with_eps(self.sn_eps)
    }

    fn hidden(&self) -> usize {
        if self.wide {
            self.out_channels
        } else {
            self.in_channels
        }
    }

    fn learnable_sc(&self) -> bool {
        self.in_channels != self.out_channels || self.downsample
    }

    /// A randomly initialized block.
    pub fn init(&self, device: &Device) -> DBlock {
        let (i, m, o) = (self.in_channels, self.hidden(), self.out_channels);
        DBlock {
            conv1: self.conv(i, m, 3).init(device),
            conv2: self.conv(m, o, 3).init(device),
            conv_sc: self.learnable_sc().then(|| self.conv(i, o, 1).init(device)),
            preactivation: self.preactivation,
            downsample: self.downsample,
        }
    }
}

/// BigGAN's discriminator residual block (layers.py `DBlock`):
/// `pool(conv2(relu(conv1(act(x))))) + shortcut(x)`, where the shortcut convolves then pools
/// in preactivation blocks and pools then convolves in the first block.
#[derive(Module, Debug)]
pub struct DBlock {
    /// 3×3, in → hidden.
    pub conv1: SNConv2d,
    /// 3×3, hidden → out.
    pub conv2: SNConv2d,
    /// 1×1 shortcut, present when the channels change or the block downsamples.
    pub conv_sc: Option<SNConv2d>,
    /// ReLU on the input of the residual branch.
    pub preactivation: bool,
    /// 2×2 average pooling at the end of both branches.
    pub downsample: bool,
}

fn avg_pool2x(x: Tensor<4>) -> Tensor<4> {
    sound2scene_kernels::avg_pool2x(x)
}

impl DBlock {
    /// Read the block under `prefix` (e.g. `blocks.0.0`).
    pub fn load(loader: &mut WeightLoader, prefix: &str, config: &DBlockConfig) -> Self {
        let (i, m, o) = (config.in_channels, config.hidden(), config.out_channels);
        Self {
            conv1: SNConv2d::load(loader, &format!("{prefix}.conv1"), &config.conv(i, m, 3)),
            conv2: SNConv2d::load(loader, &format!("{prefix}.conv2"), &config.conv(m, o, 3)),
            conv_sc: config.learnable_sc().then(|| {
                SNConv2d::load(loader, &format!("{prefix}.conv_sc"), &config.conv(i, o, 1))
            }),
            preactivation: config.preactivation,
            downsample: config.downsample,
        }
    }

    fn shortcut(&self, mut x: Tensor<4>) -> Tensor<4> {
        if self.preactivation {
            if let Some(conv) = &self.conv_sc {
                x = conv.forward(x);
            }
            if self.downsample {
                x = avg_pool2x(x);
            }
        } else {
            if self.downsample {
                x = avg_pool2x(x);
            }
            if let Some(conv) = &self.conv_sc {
                x = conv.forward(x);
            }
        }
        x
    }

    /// # Shapes
    /// - `x`: `[batch, in, h, w]` → `[batch, out, h/2, w/2]` (or `[batch, out, h, w]`
    ///   without downsampling)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = if self.preactivation {
            relu(x.clone())
        } else {
            x.clone()
        };
        let h = self.conv1.forward(h); // [b, hidden, h, w]
        let mut h = self.conv2.forward(relu(h)); // [b, out, h, w]
        if self.downsample {
            h = avg_pool2x(h); // [b, out, h/2, w/2]
        }
        h.add(self.shortcut(x))
    }
}

/// Configuration of an [`Attention`] block.
#[derive(Config, Debug)]
pub struct AttentionConfig {
    /// Channels of the feature map (a multiple of 8).
    pub channels: usize,
    /// Spectral norm epsilon.
    #[config(default = 1e-6)]
    pub sn_eps: f64,
}

impl AttentionConfig {
    fn conv(&self, c_in: usize, c_out: usize) -> SNConv2dConfig {
        SNConv2dConfig::new([c_in, c_out])
            .with_kernel_size(1)
            .with_padding(0)
            .with_bias(false)
            .with_eps(self.sn_eps)
    }

    fn convs(&self) -> [SNConv2dConfig; 4] {
        let c = self.channels;
        [
            self.conv(c, c / 8),
            self.conv(c, c / 8),
            self.conv(c, c / 2),
            self.conv(c / 2, c),
        ]
    }

    /// A randomly initialized block with `gamma = 0` (the identity at first), as in BigGAN.
    pub fn init(&self, device: &Device) -> Attention {
        let [theta, phi, g, o] = self.convs();
        Attention {
            theta: theta.init(device),
            phi: phi.init(device),
            g: g.init(device),
            o: o.init(device),
            gamma: Param::from_tensor(Tensor::zeros([1], device)),
            channels: self.channels,
        }
    }
}

/// SA-GAN self-attention as BigGAN-PyTorch implements it (layers.py `Attention`): bias-free
/// 1×1 SN convolutions `theta`, `phi` (to `ch/8`), `g` (to `ch/2`) and `o` (back to `ch`),
/// 2×2 max pooling of `phi` and `g`, `softmax(thetaᵀ·phi)` over the pooled positions, and a
/// learned scalar gain `gamma` on the residual.
#[derive(Module, Debug)]
pub struct Attention {
    /// Query projection, ch → ch/8.
    pub theta: SNConv2d,
    /// Key projection, ch → ch/8.
    pub phi: SNConv2d,
    /// Value projection, ch → ch/2.
    pub g: SNConv2d,
    /// Output projection, ch/2 → ch.
    pub o: SNConv2d,
    /// Residual gain, `[1]` (a 0-d tensor in the checkpoint).
    pub gamma: Param<Tensor<1>>,
    /// Channels of the feature map.
    pub channels: usize,
}

impl Attention {
    /// Read `prefix.theta`, `.phi`, `.g`, `.o` and `.gamma`.
    pub fn load(loader: &mut WeightLoader, prefix: &str, config: &AttentionConfig) -> Self {
        let [theta, phi, g, o] = config.convs();
        Self {
            theta: SNConv2d::load(loader, &format!("{prefix}.theta"), &theta),
            phi: SNConv2d::load(loader, &format!("{prefix}.phi"), &phi),
            g: SNConv2d::load(loader, &format!("{prefix}.g"), &g),
            o: SNConv2d::load(loader, &format!("{prefix}.o"), &o),
            gamma: loader.param(&format!("{prefix}.gamma"), [1]),
            channels: config.channels,
        }
    }

    /// # Shapes
    /// - `x`: `[batch, ch, h, w]` (even `h`, `w`) → `[batch, ch, h, w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let (ck, cv, n) = (c / 8, c / 2, h * w);
        let pool = |t: Tensor<4>| max_pool2d(t, MaxPoolOptions::new([2, 2]));
        let theta = self.theta.forward(x.clone()).reshape([b, ck, n]); // [b, ch/8, hw]
        let phi = pool(self.phi.forward(x.clone())).reshape([b, ck, n / 4]); // [b, ch/8, hw/4]
        let g = pool(self.g.forward(x.clone())).reshape([b, cv, n / 4]); // [b, ch/2, hw/4]
        let beta = softmax(theta.swap_dims(1, 2).matmul(phi), 2); // [b, hw, hw/4]
        let o = g.matmul(beta.swap_dims(1, 2)).reshape([b, cv, h, w]); // [b, ch/2, h, w]
        let o = self.o.forward(o); // [b, ch, h, w]
        o.mul(self.gamma.val().reshape([1, 1, 1, 1])).add(x)
    }
}

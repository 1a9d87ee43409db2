//! The ResNet trunk shared by both encoders, in torchvision's layout and key names.
//!
//! Reference: torchvision `resnet.py` (`BasicBlock`, `Bottleneck`, `ResNet`), of which the
//! Sound2Scene repository's `models/resnet.py` (audio encoder) and SwAV's `resnet50.py` (image
//! encoder) are copies with a different stem width or head. The trunk here stops after
//! `layer4`; pooling and heads belong to the encoders.
//!
//! Layout (keys as in a PyTorch `state_dict`):
//! `conv1` (7×7, stride 2, padding 3, no bias) → `bn1` → ReLU → max pool (3×3, stride 2,
//! padding 1) → `layer1` … `layer4`, each a list of blocks `layerN.K`. The first block of
//! `layer2` … `layer4` has stride 2 (on `conv1` of a basic block, on `conv2` of a bottleneck)
//! and, like any block whose input and output widths differ, a shortcut `downsample`
//! = (`downsample.0` 1×1 conv with the block's stride, `downsample.1` BatchNorm).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};
use sound2scene_kernels::Fused;

use crate::weights::{StateDict, WeightLoader};

/// BatchNorm epsilon of torchvision's ResNet (PyTorch's default).
pub const BN_EPS: f64 = 1e-5;

/// `relu?(bn(conv(x)) + residual)`: at inference one fused pass ([`sound2scene_kernels`]) with
/// the batch norm's stored statistics folded into a per-channel scale and shift; in training
/// (an autodiff device and a batch norm that is not frozen) the convolution, then batch norm on
/// the batch's statistics, the residual and the ReLU.
///
/// # Shapes
/// - `x`: `[batch, in, h, w]`, `residual`: the output's shape → `[batch, out, h', w']`
fn conv_bn(
    conv: &Conv2d,
    bn: &BatchNorm,
    x: Tensor<4>,
    residual: Option<Tensor<4>>,
    relu_after: bool,
) -> Tensor<4> {
    // Every convolution of the trunk is built with explicit padding (`conv` below).
    let PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding else {
        let y = bn.forward(conv.forward(x));
        let y = residual.map_or(y.clone(), |r| y + r);
        return if relu_after { relu(y) } else { y };
    };
    let options = ConvOptions::new_with_padding(
        conv.stride,
        [(top, bottom), (left, right)],
        conv.dilation,
        conv.groups,
    );
    let bias = conv.bias.as_ref().map(|b| b.val());
    if x.device().is_autodiff() && bn.training.is_enabled() {
        let y = sound2scene_kernels::conv2d(x, conv.weight.val(), bias, options);
        let result = sound2scene_kernels::batch_norm_train(
            y,
            bn.gamma.val(),
            bn.beta.val(),
            residual,
            bn.epsilon,
            relu_after,
        );
        // The running statistics move as in Burn's `BatchNorm::forward`.
        let device = result.output.device();
        let m = bn.momentum;
        let mean = bn.running_mean.value_sync().to_device(&device);
        let var = bn.running_var.value_sync().to_device(&device);
        bn.running_mean.update(
            mean.mul_scalar(1.0 - m)
                .add(result.mean.mul_scalar(m))
                .detach(),
        );
        bn.running_var.update(
            var.mul_scalar(1.0 - m)
                .add(result.variance.mul_scalar(m))
                .detach(),
        );
        return result.output;
    }
    // bn(conv(x) + b) = conv(x)·s + (t + b·s) for the folded scale s and shift t.
    let mut fused = Fused::new().with_batch_norm(
        bn.gamma.val(),
        bn.beta.val(),
        bn.running_mean.value(),
        bn.running_var.value(),
        bn.epsilon,
    );
    if let Some(bias) = bias {
        let scale = fused.scale.clone().expect("with_batch_norm sets a scale");
        fused.shift = fused.shift.map(|t| t + bias * scale);
    }
    if let Some(residual) = residual {
        fused = fused.with_residual(residual);
    }
    if relu_after {
        fused = fused.with_relu();
    }
    sound2scene_kernels::conv2d_fused(x, conv.weight.val(), fused, options)
}

/// The residual block a ResNet is built from.
#[derive(Config, Debug, PartialEq, Eq, Copy)]
pub enum BlockKind {
    /// torchvision `BasicBlock`: two 3×3 convolutions, expansion 1 (ResNet-18/34).
    Basic,
    /// torchvision `Bottleneck`: 1×1, 3×3 (strided), 1×1 convolutions, expansion 4
    /// (ResNet-50 and deeper).
    Bottleneck,
}

impl BlockKind {
    /// How many times wider a block's output is than its inner width (`planes`): 1 or 4.
    pub fn expansion(self) -> usize {
        match self {
            Self::Basic => 1,
            Self::Bottleneck => 4,
        }
    }
}

/// Configuration of a [`ResNet`] trunk.
#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// The residual block.
    pub block: BlockKind,
    /// Number of blocks in `layer1` … `layer4` (`[2, 2, 2, 2]` for ResNet-18).
    pub layers: [usize; 4],
    /// Channels of the input image (1 for a spectrogram, 3 for RGB).
    #[config(default = 3)]
    pub in_channels: usize,
    /// Output channels of the stem and inner width of `layer1`; layer `N` has inner width
    /// `base_width · 2^(N-1)`. 64 in every torchvision ResNet.
    #[config(default = 64)]
    pub base_width: usize,
    /// BatchNorm epsilon.
    #[config(default = 1e-5)]
    pub bn_eps: f64,
}

impl ResNetConfig {
    /// ResNet-18: basic blocks `[2, 2, 2, 2]`, 512 output channels.
    pub fn resnet18(in_channels: usize) -> Self {
        Self::new(BlockKind::Basic, [2, 2, 2, 2]).with_in_channels(in_channels)
    }

    /// ResNet-34: basic blocks `[3, 4, 6, 3]`, 512 output channels.
    pub fn resnet34(in_channels: usize) -> Self {
        Self::new(BlockKind::Basic, [3, 4, 6, 3]).with_in_channels(in_channels)
    }

    /// ResNet-50: bottleneck blocks `[3, 4, 6, 3]`, 2048 output channels.
    pub fn resnet50(in_channels: usize) -> Self {
        Self::new(BlockKind::Bottleneck, [3, 4, 6, 3]).with_in_channels(in_channels)
    }

    /// Channels of the trunk's output (after `layer4`): `8 · base_width · expansion`.
    pub fn out_channels(&self) -> usize {
        8 * self.base_width * self.block.expansion()
    }

    /// Read the architecture from the checkpoint keys under `prefix` (e.g. `"audnet."`):
    /// the block kind from whether `layer1.0.conv3.weight` exists, the block counts from the
    /// `layerN.K` indices present, the base width from `conv1.weight`. `in_channels` is the
    /// caller's, so a checkpoint for another input is reported as mis-shaped.
    ///
    /// `None` when the keys do not describe a ResNet (no `conv1.weight`, or a stage without
    /// blocks); the caller then falls back to its default, and loading lists what is wrong.
    pub fn from_state_dict(dict: &StateDict, prefix: &str, in_channels: usize) -> Option<Self> {
        let base_width = *dict.get(&format!("{prefix}conv1.weight"))?.shape.first()?;
        let block = if dict
            .get(&format!("{prefix}layer1.0.conv3.weight"))
            .is_some()
        {
            BlockKind::Bottleneck
        } else {
            BlockKind::Basic
        };
        let mut layers = [0; 4];
        for (stage, count) in layers.iter_mut().enumerate() {
            let stage_prefix = format!("{prefix}layer{}.", stage + 1);
            while dict.has_prefix(&format!("{stage_prefix}{count}.")) {
                *count += 1;
            }
            if *count == 0 {
                return None;
            }
        }
        Some(
            Self::new(block, layers)
                .with_in_channels(in_channels)
                .with_base_width(base_width),
        )
    }

    /// A randomly initialized trunk, as the reference code initializes it for training from
    /// scratch: convolutions Kaiming-normal (fan out, ReLU gain), BatchNorm weights
    /// N(1, 0.02) and biases 0 (Sound2Scene `models/resnet.py`).
    pub fn init(&self, device: &Device) -> ResNet {
        let conv_init = Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: true,
        };
        let mut build = |_: &str, cfg: &Conv2dConfig| {
            cfg.clone().with_initializer(conv_init.clone()).init(device)
        };
        let mut norm = |_: &str, channels: usize| {
            let mut bn = BatchNormConfig::new(channels)
                .with_epsilon(self.bn_eps)
                .init(device);
            bn.gamma = Initializer::Normal {
                mean: 1.0,
                std: 0.02,
            }
            .init([channels], device);
            bn
        };
        ResNet::build(self, "", &mut build, &mut norm)
    }
}

/// torchvision `BasicBlock`: `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`.
#[derive(Module, Debug)]
pub struct BasicBlock {
    /// 3×3 convolution, carrying the block's stride.
    pub conv1: Conv2d,
    /// BatchNorm after `conv1`.
    pub bn1: BatchNorm,
    /// 3×3 convolution.
    pub conv2: Conv2d,
    /// BatchNorm after `conv2`.
    pub bn2: BatchNorm,
    /// Projection shortcut when the stride or width changes.
    pub downsample: Option<Downsample>,
}

impl BasicBlock {
    /// # Shapes
    /// - `x`: `[batch, in_channels, h, w]`
    /// - output: `[batch, planes, h / stride, w / stride]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let shortcut = match &self.downsample {
            Some(down) => down.forward(x.clone()),
            None => x.clone(),
        };
        let out = conv_bn(&self.conv1, &self.bn1, x, None, true);
        conv_bn(&self.conv2, &self.bn2, out, Some(shortcut), true)
    }
}

/// torchvision `Bottleneck` (stride on the 3×3 convolution, "ResNet v1.5"):
/// `relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + shortcut(x))`.
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// 1×1 convolution to the inner width.
    pub conv1: Conv2d,
    /// BatchNorm after `conv1`.
    pub bn1: BatchNorm,
    /// 3×3 convolution, carrying the block's stride.
    pub conv2: Conv2d,
    /// BatchNorm after `conv2`.
    pub bn2: BatchNorm,
    /// 1×1 convolution to `4 · planes`.
    pub conv3: Conv2d,
    /// BatchNorm after `conv3`.
    pub bn3: BatchNorm,
    /// Projection shortcut when the stride or width changes.
    pub downsample: Option<Downsample>,
}

impl Bottleneck {
    /// # Shapes
    /// - `x`: `[batch, in_channels, h, w]`
    /// - output: `[batch, 4 · planes, h / stride, w / stride]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let shortcut = match &self.downsample {
            Some(down) => down.forward(x.clone()),
            None => x.clone(),
        };
        let out = conv_bn(&self.conv1, &self.bn1, x, None, true);
        let out = conv_bn(&self.conv2, &self.bn2, out, None, true);
        conv_bn(&self.conv3, &self.bn3, out, Some(shortcut), true)
    }
}

/// A residual block of either kind (one entry of `layerN`).
#[derive(Module, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "a few hundred bytes of layer metadata per block; boxing would not fit Module"
)]
pub enum Block {
    /// A [`BasicBlock`].
    Basic(BasicBlock),
    /// A [`Bottleneck`].
    Bottleneck(Bottleneck),
}

impl Block {
    /// # Shapes
    /// - `x`: `[batch, in_channels, h, w]`
    /// - output: `[batch, planes · expansion, h / stride, w / stride]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Basic(block) => block.forward(x),
            Self::Bottleneck(block) => block.forward(x),
        }
    }
}

/// The projection shortcut `nn.Sequential(conv1x1(stride), BatchNorm)`, keys `downsample.0`
/// and `downsample.1`.
#[derive(Module, Debug)]
pub struct Downsample {
    /// 1×1 convolution with the block's stride (`downsample.0`).
    pub conv: Conv2d,
    /// BatchNorm (`downsample.1`).
    pub bn: BatchNorm,
}

impl Downsample {
    /// # Shapes
    /// - `x`: `[batch, in_channels, h, w]`
    /// - output: `[batch, out_channels, h / stride, w / stride]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv_bn(&self.conv, &self.bn, x, None, false)
    }
}

/// A ResNet up to and including `layer4` (no pooling, no classifier).
#[derive(Module, Debug)]
pub struct ResNet {
    /// Stem convolution, 7×7 stride 2.
    pub conv1: Conv2d,
    /// Stem BatchNorm.
    pub bn1: BatchNorm,
    /// Stem max pool, 3×3 stride 2 padding 1.
    pub maxpool: MaxPool2d,
    /// Stage 1, stride 1, width `base_width · expansion`.
    pub layer1: Vec<Block>,
    /// Stage 2, stride 2.
    pub layer2: Vec<Block>,
    /// Stage 3, stride 2.
    pub layer3: Vec<Block>,
    /// Stage 4, stride 2, width `8 · base_width · expansion`.
    pub layer4: Vec<Block>,
}

/// Builds a convolution for a PyTorch key prefix (from a checkpoint or at random).
type ConvBuilder<'a> = dyn FnMut(&str, &Conv2dConfig) -> Conv2d + 'a;
/// Builds a BatchNorm of some width for a PyTorch key prefix.
type NormBuilder<'a> = dyn FnMut(&str, usize) -> BatchNorm + 'a;

fn conv(c_in: usize, c_out: usize, kernel: usize, stride: usize, padding: usize) -> Conv2dConfig {
    Conv2dConfig::new([c_in, c_out], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_bias(false)
}

impl ResNet {
    /// Build the trunk from the PyTorch tensors under `prefix` (e.g. `"audnet."`,
    /// `"module."`). Problems are recorded in `loader` and reported by its `finish`.
    pub fn load(loader: &mut WeightLoader<'_>, prefix: &str, config: &ResNetConfig) -> Self {
        let eps = config.bn_eps;
        // Both closures need the loader; a RefCell lets them share it.
        let loader = std::cell::RefCell::new(loader);
        let mut build = |key: &str, cfg: &Conv2dConfig| loader.borrow_mut().conv2d(key, cfg);
        let mut norm =
            |key: &str, channels: usize| loader.borrow_mut().batch_norm(key, channels, eps);
        Self::build(config, prefix, &mut build, &mut norm)
    }

    /// Walk the torchvision layout, asking `conv` and `norm` for each layer by its key.
    fn build(
        config: &ResNetConfig,
        prefix: &str,
        conv_of: &mut ConvBuilder<'_>,
        norm_of: &mut NormBuilder<'_>,
    ) -> Self {
        let width = config.base_width;
        let expansion = config.block.expansion();
        let conv1 = conv_of(
            &format!("{prefix}conv1"),
            &conv(config.in_channels, width, 7, 2, 3),
        );
        let bn1 = norm_of(&format!("{prefix}bn1"), width);
        let maxpool = MaxPool2dConfig::new([3, 3])
            .with_strides([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init();

        let mut in_ch = width;
        let mut stages: Vec<Vec<Block>> = Vec::with_capacity(4);
        for (stage, &count) in config.layers.iter().enumerate() {
            let planes = width << stage;
            let out_ch = planes * expansion;
            let mut blocks = Vec::with_capacity(count);
            for index in 0..count {
                let p = format!("{prefix}layer{}.{index}.", stage + 1);
                let stride = if index == 0 && stage > 0 { 2 } else { 1 };
                let downsample = (stride != 1 || in_ch != out_ch).then(|| Downsample {
                    conv: conv_of(
                        &format!("{p}downsample.0"),
                        &conv(in_ch, out_ch, 1, stride, 0),
                    ),
                    bn: norm_of(&format!("{p}downsample.1"), out_ch),
                });
                let block = match config.block {
                    BlockKind::Basic => Block::Basic(BasicBlock {
                        conv1: conv_of(&format!("{p}conv1"), &conv(in_ch, planes, 3, stride, 1)),
                        bn1: norm_of(&format!("{p}bn1"), planes),
                        conv2: conv_of(&format!("{p}conv2"), &conv(planes, planes, 3, 1, 1)),
                        bn2: norm_of(&format!("{p}bn2"), planes),
                        downsample,
                    }),
                    BlockKind::Bottleneck => Block::Bottleneck(Bottleneck {
                        conv1: conv_of(&format!("{p}conv1"), &conv(in_ch, planes, 1, 1, 0)),
                        bn1: norm_of(&format!("{p}bn1"), planes),
                        conv2: conv_of(&format!("{p}conv2"), &conv(planes, planes, 3, stride, 1)),
                        bn2: norm_of(&format!("{p}bn2"), planes),
                        conv3: conv_of(&format!("{p}conv3"), &conv(planes, out_ch, 1, 1, 0)),
                        bn3: norm_of(&format!("{p}bn3"), out_ch),
                        downsample,
                    }),
                };
                blocks.push(block);
                in_ch = out_ch;
            }
            stages.push(blocks);
        }
        let mut stages = stages.into_iter();
        let mut next = || stages.next().unwrap_or_default();
        Self {
            conv1,
            bn1,
            maxpool,
            layer1: next(),
            layer2: next(),
            layer3: next(),
            layer4: next(),
        }
    }

    /// The feature map after `layer4`.
    ///
    /// # Shapes
    /// - `x`: `[batch, in_channels, h, w]`
    /// - output: `[batch, out_channels, ⌈h/32⌉, ⌈w/32⌉]` (each of the five stride-2 steps
    ///   maps a size `n` to `⌊(n - 1) / 2⌋ + 1`)
    pub fn forward_trunk(&self, x: Tensor<4>) -> Tensor<4> {
        // [batch, base_width, h/2, w/2]
        let x = conv_bn(&self.conv1, &self.bn1, x, None, true);
        // [batch, base_width, h/4, w/4]
        let mut x = self.max_pool(x);
        for block in self
            .layer1
            .iter()
            .chain(&self.layer2)
            .chain(&self.layer3)
            .chain(&self.layer4)
        {
            x = block.forward(x);
        }
        x
    }

    /// The stem's max pool (`maxpool`, 3 × 3, stride 2, padding 1): the kernels' (no indices
    /// kept at inference) for the symmetric padding the trunk is built with, the module's own
    /// otherwise.
    ///
    /// # Shapes
    /// - `x`: `[batch, c, h, w]` → `[batch, c, (h − 1) / 2 + 1, (w − 1) / 2 + 1]`
    pub fn max_pool(&self, x: Tensor<4>) -> Tensor<4> {
        let pool = &self.maxpool;
        match pool.padding {
            PaddingConfig2d::Explicit(top, left, bottom, right)
                if top == bottom && left == right && pool.dilation == [1, 1] && !pool.ceil_mode =>
            {
                sound2scene_kernels::max_pool2d(x, pool.kernel_size, pool.stride, [top, left])
            }
            _ => pool.forward(x),
        }
    }

    /// The trunk followed by global average pooling (`AdaptiveAvgPool2d(1)` and flatten).
    ///
    /// # Shapes
    /// - `x`: `[batch, in_channels, h, w]`
    /// - output: `[batch, out_channels]`
    pub fn forward_pooled(&self, x: Tensor<4>) -> Tensor<2> {
        let features = self.forward_trunk(x);
        // [batch, C, h', w'] -> [batch, C, h'·w'] -> [batch, C]
        let [batch, channels, h, w] = features.dims();
        features
            .reshape([batch, channels, h * w])
            .mean_dim(2)
            .reshape([batch, channels])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_torchvision_widths() {
        assert_eq!(ResNetConfig::resnet18(1).out_channels(), 512);
        assert_eq!(ResNetConfig::resnet34(3).out_channels(), 512);
        assert_eq!(ResNetConfig::resnet50(3).out_channels(), 2048);
    }

    #[test]
    fn random_trunk_output_shape() {
        let device = Device::default();
        let net = ResNetConfig::new(BlockKind::Bottleneck, [1, 1, 1, 1])
            .with_base_width(8)
            .init(&device);
        let y = net.forward_trunk(Tensor::zeros([2, 3, 65, 40], &device));
        assert_eq!(y.dims(), [2, 256, 3, 2]);
        let pooled = net.forward_pooled(Tensor::ones([1, 3, 32, 32], &device));
        assert_eq!(pooled.dims(), [1, 256]);
    }

    #[test]
    fn random_init_has_kaiming_fan_out_scale() {
        let device = Device::default();
        let net = ResNetConfig::resnet18(1).init(&device);
        // conv1 of layer4: [512, 256, 3, 3], fan_out = 512·9, std = sqrt(2 / 4608) ≈ 0.0208.
        let Block::Basic(block) = &net.layer4[0] else {
            panic!("resnet18 has basic blocks");
        };
        let w: Vec<f32> = block
            .conv1
            .weight
            .val()
            .into_data()
            .try_to_vec()
            .expect("f32");
        let var = w.iter().map(|v| v * v).sum::<f32>() / w.len() as f32;
        let expected = 2.0 / (512.0 * 9.0);
        assert!((var / expected - 1.0).abs() < 0.05, "{var} vs {expected}");
    }
}

//! Spectral normalization as BigGAN-PyTorch implements it (layers.py `power_iteration`,
//! `SN.W_`, `SNConv2d`, `SNLinear`), with one singular value and one power iteration per
//! forward pass (`num_svs = 1`, `num_itrs = 1`, the defaults of every released IC-GAN).
//!
//! For a weight `W` of shape `[out, ...]`, seen as the matrix `W_mat = W.view(out, -1)`, and
//! the stored left singular vector estimate `u0` (`[1, out]`):
//!
//! ```text
//! v = normalize(u0 · W_mat)          [1, in]
//! u = normalize(v · W_matᵀ)          [1, out]
//! σ = v · W_matᵀ · uᵀ                (with the new u)
//! W_sn = W / σ
//! ```
//!
//! where `normalize(x) = x / max(‖x‖₂, eps)` (PyTorch's `F.normalize`, here
//! [`l2_normalize_eps`]).
//!
//! # Training and evaluation
//! The mode follows the device, as for Burn's `BatchNorm`: on an autodiff device
//! ([`Device::is_autodiff`](burn::tensor::Device::is_autodiff)) a forward pass is a training
//! step, which stores the new `u` in `u0` and `σ` in `sv0` (PyTorch's `self.training`). The
//! power iteration itself is detached from the graph (PyTorch runs it under `no_grad`), while
//! `σ` keeps its dependence on `W`, so gradients match PyTorch's. On any other device `σ` is
//! recomputed from the stored `u0` every time and nothing is updated (PyTorch's `eval()`).

use burn::config::Config;
use burn::module::{Module, Param, RunningState};
use burn::nn::Initializer;
use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Device, Distribution, Tensor};
use sound2scene_kernels::Fused;

use crate::normalize::l2_normalize_eps;
use crate::weights::WeightLoader;

/// One step of BigGAN-PyTorch's power iteration (layers.py `power_iteration`, one singular
/// value): the new singular vector estimates and the singular value estimate.
///
/// Returns `(u, v, sigma)` where `u` is `[1, out]`, `v` is `[1, in]` and `sigma` is `[1]`,
/// `sigma = v · W_matᵀ · uᵀ` computed with the new `u`. Nothing is detached here; see
/// [`spectral_normalize`] for how training uses it.
///
/// # Shapes
/// - `w_mat`: `[out, in]`
/// - `u0`: `[1, out]`
pub fn power_iteration(
    w_mat: Tensor<2>,
    u0: Tensor<2>,
    eps: f64,
) -> (Tensor<2>, Tensor<2>, Tensor<1>) {
    let v = l2_normalize_eps(u0.matmul(w_mat.clone()), 1, eps); // [1, in]
    let wv = v.clone().matmul(w_mat.transpose()); // [1, out]
    let u = l2_normalize_eps(wv.clone(), 1, eps); // [1, out]
    let sigma = wv.mul(u.clone()).sum(); // [1]
    (u, v, sigma)
}

/// The spectrally normalized weight `W / σ` (BigGAN-PyTorch `SN.W_`), updating `u0` and `sv0`
/// on an autodiff device (see the [module docs](self)).
///
/// # Shapes
/// - `weight`: `[out, ...]` (`D` dims), `u0`: `[1, out]`, `sv0`: `[1]` → `[out, ...]`
pub fn spectral_normalize<const D: usize>(
    weight: Tensor<D>,
    u0: &RunningState<Tensor<2>>,
    sv0: &RunningState<Tensor<1>>,
    eps: f64,
) -> Tensor<D> {
    let sigma = spectral_sigma(weight.clone(), u0, sv0, eps); // [1]
    weight.div(sigma.reshape([1usize; D]))
}

/// σ of [`spectral_normalize`] alone, `[1]`, with the same state updates.
pub fn spectral_sigma<const D: usize>(
    weight: Tensor<D>,
    u0: &RunningState<Tensor<2>>,
    sv0: &RunningState<Tensor<1>>,
    eps: f64,
) -> Tensor<1> {
    let out = weight.dims()[0];
    let w_mat: Tensor<2> = weight.reshape([out as i32, -1]); // [out, in]
    let training = w_mat.device().is_autodiff();
    if training {
        // The power iteration runs without gradients; σ = v·Wᵀ·uᵀ keeps W's.
        let (u, v, _) = power_iteration(w_mat.clone().detach(), u0.value_sync(), eps);
        let (u, v) = (u.detach(), v.detach());
        let sigma = v.matmul(w_mat.transpose()).mul(u.clone()).sum(); // [1]
        u0.update(u);
        sv0.update(sigma.clone().detach());
        sigma
    } else {
        let u = u0.value().to_device(&w_mat.device());
        power_iteration(w_mat, u, eps).2
    }
}

/// Glorot-uniform weights (`torch.nn.init.xavier_uniform_`).
fn glorot<const D: usize>(
    shape: [usize; D],
    fan_in: usize,
    fan_out: usize,
    device: &Device,
) -> Param<Tensor<D>> {
    Initializer::XavierUniform { gain: 1.0 }.init_with(shape, Some(fan_in), Some(fan_out), device)
}

/// Configuration of an [`SNConv2d`]: a square-kernel, stride-1 convolution.
#[derive(Config, Debug)]
pub struct SNConv2dConfig {
    /// `[in, out]` channels.
    pub channels: [usize; 2],
    /// Kernel size (3 or 1 in BigGAN).
    #[config(default = 3)]
    pub kernel_size: usize,
    /// Zero padding on every side (1 for 3×3, 0 for 1×1).
    #[config(default = 1)]
    pub padding: usize,
    /// Whether the convolution has a bias.
    #[config(default = true)]
    pub bias: bool,
    /// Spectral norm epsilon (`SN_eps`; 1e-6 is BigGAN-PyTorch's command-line default).
    #[config(default = 1e-6)]
    pub eps: f64,
}

/// A 2-D convolution with a spectrally normalized weight (BigGAN-PyTorch layers.py
/// `SNConv2d`). Fields are named as the PyTorch keys: `weight`, `bias`, `u0`, `sv0`.
#[derive(Module, Debug)]
pub struct SNConv2d {
    /// `[out, in, k, k]`, before normalization.
    pub weight: Param<Tensor<4>>,
    /// `[out]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// Left singular vector estimate, `[1, out]`.
    pub u0: RunningState<Tensor<2>>,
    /// Last singular value estimate, `[1]` (logged only; not used by the forward pass).
    pub sv0: RunningState<Tensor<1>>,
    /// Zero padding on every side.
    pub padding: usize,
    /// Spectral norm epsilon.
    pub eps: f64,
}

impl SNConv2dConfig {
    /// A convolution with Glorot-uniform weights (BigGAN's `G_init`/`D_init = 'glorot'`; the
    /// released models used `'ortho'`, whose QR factorization is too slow here for BigGAN's
    /// widths), zero bias and a standard normal `u0`.
    pub fn init(&self, device: &Device) -> SNConv2d {
        let [c_in, c_out] = self.channels;
        let k = self.kernel_size;
        SNConv2d {
            weight: glorot([c_out, c_in, k, k], c_in * k * k, c_out * k * k, device),
            bias: self.bias.then(|| Initializer::Zeros.init([c_out], device)),
            u0: RunningState::new(Tensor::random(
                [1, c_out],
                Distribution::Normal(0.0, 1.0),
                device,
            )),
            sv0: RunningState::new(Tensor::ones([1], device)),
            padding: self.padding,
            eps: self.eps,
        }
    }
}

impl SNConv2d {
    /// Read `prefix.weight`, `prefix.bias` (if the config has one), `prefix.u0`, `prefix.sv0`.
    pub fn load(loader: &mut WeightLoader, prefix: &str, config: &SNConv2dConfig) -> Self {
        let [c_in, c_out] = config.channels;
        let k = config.kernel_size;
        Self {
            weight: loader.param(&format!("{prefix}.weight"), [c_out, c_in, k, k]),
            bias: config
                .bias
                .then(|| loader.param(&format!("{prefix}.bias"), [c_out])),
            u0: loader.state(&format!("{prefix}.u0"), [1, c_out]),
            sv0: loader.state(&format!("{prefix}.sv0"), [1]),
            padding: config.padding,
            eps: config.eps,
        }
    }

    /// The normalized weight `W / σ`, `[out, in, k, k]` (updates `u0`/`sv0` when training).
    pub fn normalized_weight(&self) -> Tensor<4> {
        spectral_normalize(self.weight.val(), &self.u0, &self.sv0, self.eps)
    }

    /// Convolve with the normalized weight: `conv(x, W / σ) + b`.
    ///
    /// In training (an autodiff device) the weight is normalized and convolved by the kernels
    /// of [`sound2scene_kernels`], whose backward passes reach `W` through `σ` as PyTorch's
    /// do. At inference convolution is linear in the weight, so the kernels convolve with `W`
    /// itself and scale the output by `1 / σ` while storing it, `conv(x, W) · (1/σ) + b`
    /// (see [`fused`](Self::fused)).
    ///
    /// # Shapes
    /// - `x`: `[batch, in, h, w]` → `[batch, out, h, w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if x.device().is_autodiff() {
            let bias = self.bias.as_ref().map(Param::val);
            return sound2scene_kernels::conv2d(x, self.normalized_weight(), bias, self.options());
        }
        self.fused(x, Fused::new())
    }

    /// Inference on a backend the kernels do not run on (wgpu, CUDA), with Burn's `conv2d`.
    ///
    /// Convolution is linear in the weight, so `conv(x, W/σ) + b = (conv(x, W) + σ·b) / σ`;
    /// when the output is smaller than the weight (the wide low-resolution layers) the
    /// division is applied to the output, sparing a pass over (and an allocation of) the
    /// weight, which otherwise costs more than the convolution itself at batch 1.
    fn forward_standard(&self, x: Tensor<4>) -> Tensor<4> {
        let options = self.options();
        let [b, _, h, w] = x.dims();
        let weight = self.weight.val();
        let [c_out, c_in, kh, kw] = weight.dims();
        if b * c_out * h * w >= c_out * c_in * kh * kw {
            let weight = spectral_normalize(weight, &self.u0, &self.sv0, self.eps);
            return conv2d(x, weight, self.bias.as_ref().map(Param::val), options);
        }
        let sigma = spectral_sigma(weight.clone(), &self.u0, &self.sv0, self.eps); // [1]
        let bias = self.bias.as_ref().map(|b| b.val().mul(sigma.clone()));
        let p = self.padding;
        let out = if b * h * w <= MATMUL_CONV_MAX_POSITIONS && 2 * p + 1 == kh && kh == kw {
            conv_same_as_matmul(x, weight, bias)
        } else {
            conv2d(x, weight, bias, options)
        };
        out.div(sigma.reshape([1, 1, 1, 1])) // [b, out, h, w]
    }

    /// At inference, `conv(x, W / σ) + b` with more layers fused around it: `fused` describes
    /// the input side and what follows the bias. The output side is rewritten so that `σ` and
    /// `b` come first: a per-channel (or per-image) `scale`/`shift` given here is applied as
    /// `(conv · (1/σ) + b) · scale + shift`.
    ///
    /// # Shapes
    /// - `x`: `[batch, in, h, w]` (or `[batch, in, h/2, w/2]` with an upsampled input) →
    ///   `[batch, out, h, w]`
    pub fn fused(&self, x: Tensor<4>, fused: Fused) -> Tensor<4> {
        if !sound2scene_kernels::runs_kernels(&x.device()) {
            return fused.compose(x, |x| self.forward_standard(x));
        }
        let weight = self.weight.val();
        let c_out = weight.dims()[0];
        let inv_sigma = spectral_sigma(weight.clone(), &self.u0, &self.sv0, self.eps).recip(); // [1]
        let bias = self.bias.as_ref().map(Param::val);
        let mut fused = fused;
        // (conv/σ + b)·s + t = conv·(s/σ) + (b·s + t), per channel or per image.
        match (fused.scale_per_image.take(), fused.shift_per_image.take()) {
            (Some(s), t) => {
                let batch = s.dims()[0];
                let shift = match &bias {
                    Some(b) => s.clone().mul(b.clone().reshape([1, c_out])),
                    None => Tensor::zeros([batch, c_out], &s.device()),
                };
                let shift = match t {
                    Some(t) => shift.add(t),
                    None => shift,
                };
                fused.scale_per_image = Some(s.mul(inv_sigma.reshape([1, 1])));
                fused.shift_per_image = Some(shift);
            }
            (None, t) => {
                fused.scale = Some(inv_sigma.expand([c_out]));
                fused.shift = bias;
                fused.shift_per_image = t;
            }
        }
        sound2scene_kernels::conv2d_fused(x, weight, fused, self.options())
    }

    /// Stride 1, "same" padding for the odd kernels BigGAN uses.
    fn options(&self) -> ConvOptions<2> {
        let p = self.padding;
        ConvOptions::new([1, 1], [p, p], [1, 1], 1)
    }
}

/// Up to this many output positions (`batch · h · w`) a "same" convolution runs as one
/// matrix product over gathered patches: with so few positions the product is dominated by
/// the weight, and the flex backend's GEMM does it about 2.5× faster than its `conv2d`
/// (measured on the 1536-channel 8×8 layers of G at batch 1).
const MATMUL_CONV_MAX_POSITIONS: usize = 256;

/// A stride-1 convolution with "same" padding (`k / 2`) as patches × weight: the `k²`
/// shifted views of the zero-padded input, stacked to `[batch, in·k², h·w]` in the order of
/// `weight.view(out, in·k²)`, multiplied by the weight.
///
/// # Shapes
/// - `x`: `[batch, in, h, w]`, `weight`: `[out, in, k, k]`, `bias`: `[out]` →
///   `[batch, out, h, w]`
fn conv_same_as_matmul(x: Tensor<4>, weight: Tensor<4>, bias: Option<Tensor<1>>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let [o, _, k, _] = weight.dims();
    let p = k / 2;
    let padded = x.pad([(p, p), (p, p)], PadMode::Constant(0.0)); // [b, in, h+2p, w+2p]
    let shifted: Vec<Tensor<4>> = (0..k * k)
        .map(|i| {
            let (di, dj) = (i / k, i % k);
            padded.clone().slice([0..b, 0..c, di..di + h, dj..dj + w])
        })
        .collect();
    let patches = Tensor::stack::<5>(shifted, 2).reshape([b, c * k * k, h * w]); // [b, in·k², hw]
    let out = weight
        .reshape([1, o, c * k * k])
        .matmul(patches)
        .reshape([b, o, h, w]); // [b, out, h, w]
    match bias {
        Some(bias) => out.add(bias.reshape([1, o, 1, 1])),
        None => out,
    }
}

/// Configuration of an [`SNLinear`].
#[derive(Config, Debug)]
pub struct SNLinearConfig {
    /// Input features.
    pub d_in: usize,
    /// Output features.
    pub d_out: usize,
    /// Whether the layer has a bias.
    #[config(default = true)]
    pub bias: bool,
    /// Spectral norm epsilon.
    #[config(default = 1e-6)]
    pub eps: f64,
}

/// A linear layer with a spectrally normalized weight (BigGAN-PyTorch layers.py `SNLinear`).
/// The weight is kept in PyTorch's `[out, in]` layout, the matrix spectral norm works on.
#[derive(Module, Debug)]
pub struct SNLinear {
    /// `[out, in]`, before normalization.
    pub weight: Param<Tensor<2>>,
    /// `[out]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// Left singular vector estimate, `[1, out]`.
    pub u0: RunningState<Tensor<2>>,
    /// Last singular value estimate, `[1]`.
    pub sv0: RunningState<Tensor<1>>,
    /// Spectral norm epsilon.
    pub eps: f64,
}

impl SNLinearConfig {
    /// A layer with Glorot-uniform weights (see [`SNConv2dConfig::init`]), zero bias and a
    /// standard normal `u0`.
    pub fn init(&self, device: &Device) -> SNLinear {
        SNLinear {
            weight: glorot([self.d_out, self.d_in], self.d_in, self.d_out, device),
            bias: self
                .bias
                .then(|| Initializer::Zeros.init([self.d_out], device)),
            u0: RunningState::new(Tensor::random(
                [1, self.d_out],
                Distribution::Normal(0.0, 1.0),
                device,
            )),
            sv0: RunningState::new(Tensor::ones([1], device)),
            eps: self.eps,
        }
    }
}

impl SNLinear {
    /// Read `prefix.weight` (`[out, in]`), `prefix.bias` (if configured), `prefix.u0`,
    /// `prefix.sv0`.
    pub fn load(loader: &mut WeightLoader, prefix: &str, config: &SNLinearConfig) -> Self {
        Self {
            weight: loader.param(&format!("{prefix}.weight"), [config.d_out, config.d_in]),
            bias: config
                .bias
                .then(|| loader.param(&format!("{prefix}.bias"), [config.d_out])),
            u0: loader.state(&format!("{prefix}.u0"), [1, config.d_out]),
            sv0: loader.state(&format!("{prefix}.sv0"), [1]),
            eps: config.eps,
        }
    }

    /// The normalized weight `W / σ`, `[out, in]` (updates `u0`/`sv0` when training).
    pub fn normalized_weight(&self) -> Tensor<2> {
        spectral_normalize(self.weight.val(), &self.u0, &self.sv0, self.eps)
    }

    /// `x · W_snᵀ + b`, computed as `x · Wᵀ / σ + b` (the output is smaller than the weight
    /// for every BigGAN linear layer, see [`SNConv2d::forward`]).
    ///
    /// # Shapes
    /// - `x`: `[batch, in]` → `[batch, out]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let weight = self.weight.val();
        let sigma = spectral_sigma(weight.clone(), &self.u0, &self.sv0, self.eps); // [1]
        let y = x.matmul(weight.transpose()).div(sigma.unsqueeze::<2>()); // [batch, out]
        match &self.bias {
            Some(b) => y.add(b.val().unsqueeze::<2>()),
            None => y,
        }
    }
}

//! Fast CPU kernels for the Sound2Scene networks, plugged into Burn.
//!
//! The networks spend their time in convolutions. On the Flex CPU backend, Burn convolves by
//! copying the input to channels-last, unfolding every window (im2col) and multiplying matrices;
//! the kernels here convolve directly on NCHW data with an AVX2 register tile (chosen at run
//! time; portable code elsewhere), and fold what follows a convolution at inference (a batch
//! norm's scale and shift, a residual addition, a ReLU) into the pass that stores its output.
//! Their backward passes are hand-written too, so training uses them.
//!
//! ```
//! use burn::tensor::{Device, Distribution, Tensor};
//! use burn::tensor::ops::ConvOptions;
//! use sound2scene_kernels::{Fused, conv2d_fused};
//!
//! let device = Device::default();
//! let x = Tensor::<4>::random([1, 8, 32, 32], Distribution::Default, &device);
//! let weight = Tensor::<4>::random([16, 8, 3, 3], Distribution::Default, &device);
//! // relu(conv(x, weight) + 0.5), in one pass.
//! let shift = Tensor::<1>::full([16], 0.5, &device);
//! let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
//! let y = conv2d_fused(x, weight, Fused::new().with_shift(shift).with_relu(), options);
//! assert_eq!(y.dims(), [1, 16, 32, 32]);
//! ```
//!
//! Every function takes and returns ordinary Burn tensors and works on every device: on Flex
//! (and on an autodiff device over Flex) it runs the kernels of [`cpu`] through the backend
//! extension [`extension::KernelOps`]; on any other backend (wgpu, CUDA) it is the same
//! composition of Burn's standard operations.

pub mod cpu;
pub mod extension;

use burn::backend::Dispatch;
use burn::backend::DispatchDevice;
use burn::tensor::Tensor;
use burn::tensor::ops::ConvOptions;

use extension::{KernelOps, MaybeTensor};

/// What [`conv2d_fused`] applies to the convolution's output, in this order:
/// `relu(conv · scale[c] + shift[c] + residual)`.
#[derive(Debug, Clone, Default)]
pub struct Fused {
    /// Per output channel factor, `[c_out]`.
    pub scale: Option<Tensor<1>>,
    /// Per output channel offset (a bias), `[c_out]`.
    pub shift: Option<Tensor<1>>,
    /// A tensor of the output's shape to add (a residual branch).
    pub residual: Option<Tensor<4>>,
    /// Whether to clamp the result at zero.
    pub relu: bool,
}

impl Fused {
    /// Nothing after the convolution.
    pub fn new() -> Self {
        Self::default()
    }

    /// Multiply each output channel by `scale[c]`.
    pub fn with_scale(mut self, scale: Tensor<1>) -> Self {
        self.scale = Some(scale);
        self
    }

    /// Add `shift[c]` to each output channel.
    pub fn with_shift(mut self, shift: Tensor<1>) -> Self {
        self.shift = Some(shift);
        self
    }

    /// Add a tensor of the output's shape.
    pub fn with_residual(mut self, residual: Tensor<4>) -> Self {
        self.residual = Some(residual);
        self
    }

    /// Clamp at zero.
    pub fn with_relu(mut self) -> Self {
        self.relu = true;
        self
    }

    /// Multiply by `scale` and add `shift`: the batch norm `γ (x − μ) / √(σ² + ε) + β` with
    /// stored statistics, as `scale = γ / √(σ² + ε)` and `shift = β − μ · scale`.
    ///
    /// # Shapes
    /// Every argument `[c_out]`.
    pub fn with_batch_norm(
        self,
        gamma: Tensor<1>,
        beta: Tensor<1>,
        mean: Tensor<1>,
        var: Tensor<1>,
        eps: f64,
    ) -> Self {
        let scale = gamma.div(var.add_scalar(eps).sqrt());
        let shift = beta.sub(mean.mul(scale.clone()));
        self.with_scale(scale).with_shift(shift)
    }
}

/// Whether the kernels of this crate run on `device` (Flex, or autodiff over Flex).
pub fn runs_kernels(device: &burn::tensor::Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Flex(_)
    )
}

/// `conv2d(x, weight) + bias`.
///
/// # Shapes
/// - `x`: `[batch, c_in, h, w]`, `weight`: `[c_out, c_in, kh, kw]`, `bias`: `[c_out]`
/// - output: `[batch, c_out, h', w']`
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    let fused = Fused {
        shift: bias,
        ..Fused::default()
    };
    conv2d_fused(x, weight, fused, options)
}

/// `relu(conv2d(x, weight) · scale + shift + residual)`, each part as [`Fused`] says, in one
/// pass over the output where the kernels run.
///
/// # Shapes
/// - `x`: `[batch, c_in, h, w]`, `weight`: `[c_out, c_in, kh, kw]`
/// - output: `[batch, c_out, h', w']`
pub fn conv2d_fused(
    x: Tensor<4>,
    weight: Tensor<4>,
    fused: Fused,
    options: ConvOptions<2>,
) -> Tensor<4> {
    let Fused {
        scale,
        shift,
        residual,
        relu,
    } = fused;
    if !runs_kernels(&x.device()) {
        return composed(x, weight, scale, shift, residual, relu, options);
    }
    let out = <Dispatch as KernelOps>::fused_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        MaybeTensor::from_option(scale.map(Tensor::into_dispatch)),
        MaybeTensor::from_option(shift.map(Tensor::into_dispatch)),
        MaybeTensor::from_option(residual.map(Tensor::into_dispatch)),
        options,
        relu,
    );
    Tensor::from_dispatch(out)
}

/// [`conv2d_fused`] from Burn's standard operations.
fn composed(
    x: Tensor<4>,
    weight: Tensor<4>,
    scale: Option<Tensor<1>>,
    shift: Option<Tensor<1>>,
    residual: Option<Tensor<4>>,
    relu: bool,
    options: ConvOptions<2>,
) -> Tensor<4> {
    let channels = weight.dims()[0];
    let per_channel = |t: Tensor<1>| t.reshape([1, channels, 1, 1]);
    let mut out = burn::tensor::module::conv2d(x, weight, None, options);
    if let Some(scale) = scale {
        out = out.mul(per_channel(scale));
    }
    if let Some(shift) = shift {
        out = out.add(per_channel(shift));
    }
    if let Some(residual) = residual {
        out = out.add(residual);
    }
    if relu {
        burn::tensor::activation::relu(out)
    } else {
        out
    }
}

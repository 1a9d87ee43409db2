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
mod memory;

pub use memory::keep_freed_memory;

use burn::backend::{Dispatch, DispatchDevice};
use burn::tensor::Tensor;
use burn::tensor::ops::ConvOptions;

use extension::{
    ConvFlags, ConvParts, KernelOps, MaybeTensor, composed_batch_norm_train, composed_epilogue,
    composed_fused_conv2d, composed_pool2x, composed_prologue, composed_upsample2x,
};

/// What [`conv2d_fused`] applies around the convolution:
/// `relu?(conv(up?(relu?(x · input_scale + input_shift))) · scale + shift + residual)`.
///
/// Per-channel tensors are `[channels]`, or `[batch, channels]` for one set per image (a
/// conditional batch norm).
#[derive(Debug, Clone, Default)]
pub struct Fused {
    /// Per input channel factor.
    pub input_scale: Option<Tensor<1>>,
    /// Per input channel factor, one set per image (`[batch, c_in]`).
    pub input_scale_per_image: Option<Tensor<2>>,
    /// Per input channel offset.
    pub input_shift: Option<Tensor<1>>,
    /// Per input channel offset, one set per image (`[batch, c_in]`).
    pub input_shift_per_image: Option<Tensor<2>>,
    /// Per output channel factor, `[c_out]`.
    pub scale: Option<Tensor<1>>,
    /// Per output channel factor, one set per image (`[batch, c_out]`).
    pub scale_per_image: Option<Tensor<2>>,
    /// Per output channel offset (a bias), `[c_out]`.
    pub shift: Option<Tensor<1>>,
    /// Per output channel offset, one set per image (`[batch, c_out]`).
    pub shift_per_image: Option<Tensor<2>>,
    /// A tensor of the output's shape to add (a residual branch), or of half its height and
    /// width when [`Fused::with_upsampled_residual`] set it.
    pub residual: Option<Tensor<4>>,
    /// The switches: ReLUs, upsampling of the input and of the residual.
    pub flags: ConvFlags,
}

impl Fused {
    /// Nothing around the convolution.
    pub fn new() -> Self {
        Self::default()
    }

    /// Multiply each input channel by `scale[c]` (`[c_in]`).
    pub fn with_input_scale(mut self, scale: Tensor<1>) -> Self {
        self.input_scale = Some(scale);
        self
    }

    /// Add `shift[c]` to each input channel (`[c_in]`).
    pub fn with_input_shift(mut self, shift: Tensor<1>) -> Self {
        self.input_shift = Some(shift);
        self
    }

    /// Map the input by `x · scale[b, c] + shift[b, c]`, one set per image (`[batch, c_in]`
    /// each): a conditional batch norm with stored statistics.
    pub fn with_input_affine_per_image(mut self, scale: Tensor<2>, shift: Tensor<2>) -> Self {
        self.input_scale_per_image = Some(scale);
        self.input_shift_per_image = Some(shift);
        self
    }

    /// Clamp the input at zero, after its affine map.
    pub fn with_input_relu(mut self) -> Self {
        self.flags.input_relu = true;
        self
    }

    /// Upsample the input 2× (nearest neighbour) before convolving it.
    pub fn with_upsampled_input(mut self) -> Self {
        self.flags.upsample = true;
        self
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

    /// Map the output by `y · scale[b, c] + shift[b, c]`, one set per image (`[batch, c_out]`
    /// each).
    pub fn with_affine_per_image(mut self, scale: Tensor<2>, shift: Tensor<2>) -> Self {
        self.scale_per_image = Some(scale);
        self.shift_per_image = Some(shift);
        self
    }

    /// Add a tensor of the output's shape.
    pub fn with_residual(mut self, residual: Tensor<4>) -> Self {
        self.residual = Some(residual);
        self.flags.residual_upsampled = false;
        self
    }

    /// Add a tensor of half the output's height and width, upsampled 2× (nearest neighbour).
    pub fn with_upsampled_residual(mut self, residual: Tensor<4>) -> Self {
        self.residual = Some(residual);
        self.flags.residual_upsampled = true;
        self
    }

    /// Clamp the output at zero.
    pub fn with_relu(mut self) -> Self {
        self.flags.relu = true;
        self
    }

    /// Multiply by `scale` and add `shift`: the batch norm `γ (y − μ) / √(σ² + ε) + β` with
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

    /// `conv` with these parts around it, from Burn's standard operations: for a convolution
    /// the kernels do not compute (another backend's, or one with its own algorithm). `conv`
    /// receives the transformed (and upsampled) input and returns the convolution's output.
    pub fn compose(self, x: Tensor<4>, conv: impl FnOnce(Tensor<4>) -> Tensor<4>) -> Tensor<4> {
        let ConvParts {
            input_scale,
            input_shift,
            scale,
            shift,
            residual,
            flags,
        } = self.into_parts();
        let x = composed_prologue::<Dispatch>(
            x.into_dispatch(),
            input_scale.into_option(),
            input_shift.into_option(),
            flags,
        );
        let y = conv(Tensor::from_dispatch(x)).into_dispatch();
        Tensor::from_dispatch(composed_epilogue::<Dispatch>(
            y,
            scale.into_option(),
            shift.into_option(),
            residual.into_option(),
            flags,
        ))
    }

    /// The parts as dispatch tensors; a per-image set wins over a shared one.
    fn into_parts(self) -> ConvParts<Dispatch> {
        let pick = |per_image: Option<Tensor<2>>, shared: Option<Tensor<1>>| {
            MaybeTensor::from_option(
                per_image
                    .map(Tensor::into_dispatch)
                    .or_else(|| shared.map(Tensor::into_dispatch)),
            )
        };
        ConvParts {
            input_scale: pick(self.input_scale_per_image, self.input_scale),
            input_shift: pick(self.input_shift_per_image, self.input_shift),
            scale: pick(self.scale_per_image, self.scale),
            shift: pick(self.shift_per_image, self.shift),
            residual: MaybeTensor::from_option(self.residual.map(Tensor::into_dispatch)),
            flags: self.flags,
        }
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

/// A convolution and the layers around it, as [`Fused`] says, in one pass over the input and
/// one over the output where the kernels run (Flex), and as Burn's standard operations
/// elsewhere.
///
/// # Shapes
/// - `x`: `[batch, c_in, h, w]` (`[batch, c_in, h/2, w/2]` with an upsampled input),
///   `weight`: `[c_out, c_in, kh, kw]`
/// - output: `[batch, c_out, h', w']`
pub fn conv2d_fused(
    x: Tensor<4>,
    weight: Tensor<4>,
    fused: Fused,
    options: ConvOptions<2>,
) -> Tensor<4> {
    let kernels = runs_kernels(&x.device());
    let (x, weight, parts) = (
        x.into_dispatch(),
        weight.into_dispatch(),
        fused.into_parts(),
    );
    let out = if kernels {
        <Dispatch as KernelOps>::fused_conv2d(x, weight, parts, options)
    } else {
        composed_fused_conv2d::<Dispatch>(x, weight, parts, options)
    };
    Tensor::from_dispatch(out)
}

/// What [`batch_norm_train`] returns.
#[derive(Debug, Clone)]
pub struct BatchNormTrainOutput<const D: usize> {
    /// The normalized tensor (with the residual added and the ReLU applied when asked).
    pub output: Tensor<D>,
    /// The batch mean per channel, `[channels]`, detached.
    pub mean: Tensor<1>,
    /// The biased batch variance per channel, `[channels]`, detached.
    pub variance: Tensor<1>,
}

/// Batch norm with the batch's statistics (training mode), then `+ residual` and a ReLU when
/// asked: `relu?(γ (x − μ) / √(σ² + ε) + β + residual)`, in two passes over the data each way
/// where the kernels run, as Burn's `batch_norm_train` and element-wise operations elsewhere.
///
/// # Shapes
/// - `x`, `residual`: `[batch, channels, ...]`; `gamma`, `beta`: `[channels]`
///
/// [`batch_norm_train_per_image`] takes one `γ`, `β` per image (a conditional batch norm).
pub fn batch_norm_train<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    residual: Option<Tensor<D>>,
    epsilon: f64,
    relu: bool,
) -> BatchNormTrainOutput<D> {
    let (gamma, beta) = (gamma.into_dispatch(), beta.into_dispatch());
    batch_norm_train_dispatch(x, gamma, beta, residual, epsilon, relu)
}

/// [`batch_norm_train`] with one `γ`, `β` per image and channel: `relu?(γ[n, c] (x − μ[c]) /
/// √(σ²[c] + ε) + β[n, c] + residual)`, the batch statistics still over the whole batch (a
/// conditional batch norm in training).
///
/// # Shapes
/// - `x`, `residual`: `[batch, channels, ...]`; `gamma`, `beta`: `[batch, channels]`
pub fn batch_norm_train_per_image<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<2>,
    beta: Tensor<2>,
    residual: Option<Tensor<D>>,
    epsilon: f64,
    relu: bool,
) -> BatchNormTrainOutput<D> {
    let (gamma, beta) = (gamma.into_dispatch(), beta.into_dispatch());
    batch_norm_train_dispatch(x, gamma, beta, residual, epsilon, relu)
}

/// The two functions above on dispatch tensors (`γ`, `β` of either shape).
fn batch_norm_train_dispatch<const D: usize>(
    x: Tensor<D>,
    gamma: burn::backend::DispatchTensor,
    beta: burn::backend::DispatchTensor,
    residual: Option<Tensor<D>>,
    epsilon: f64,
    relu: bool,
) -> BatchNormTrainOutput<D> {
    let kernels = runs_kernels(&x.device());
    let x = x.into_dispatch();
    let residual = residual.map(Tensor::into_dispatch);
    let (output, mean, variance) = if kernels {
        <Dispatch as KernelOps>::fused_batch_norm_train(
            x,
            gamma,
            beta,
            MaybeTensor::from_option(residual),
            epsilon,
            relu,
        )
    } else {
        composed_batch_norm_train::<Dispatch>(x, gamma, beta, residual, epsilon, relu)
    };
    BatchNormTrainOutput {
        output: Tensor::from_dispatch(output),
        mean: Tensor::<1>::from_dispatch(mean).detach(),
        variance: Tensor::<1>::from_dispatch(variance).detach(),
    }
}

/// Nearest-neighbour 2× upsampling (`F.interpolate(x, scale_factor=2)`), with its backward
/// (2 × 2 sum pooling) on the kernels where they run.
///
/// # Shapes
/// - `x`: `[batch, c, h, w]` → `[batch, c, 2h, 2w]`
pub fn upsample2x(x: Tensor<4>) -> Tensor<4> {
    let kernels = runs_kernels(&x.device());
    let x = x.into_dispatch();
    Tensor::from_dispatch(if kernels {
        <Dispatch as KernelOps>::upsample2x(x, 1.0)
    } else {
        composed_upsample2x::<Dispatch>(x, 1.0)
    })
}

/// Max pooling (`F.max_pool2d(x, kernel, stride, padding)`: implicit −∞ padding, dilation 1,
/// floor rounding). On Flex without an autodiff graph it runs the kernel of
/// [`cpu::pool`], which keeps no indices; elsewhere, and for training, Burn's `max_pool2d`.
///
/// # Shapes
/// - `x`: `[batch, c, h, w]` → `[batch, c, (h + 2p − k) / s + 1, (w + 2p − k) / s + 1]`
pub fn max_pool2d(
    x: Tensor<4>,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Tensor<4> {
    if !runs_kernels(&x.device()) {
        let options = burn::tensor::ops::MaxPoolOptions::new(kernel)
            .with_stride(stride)
            .with_padding(padding);
        return burn::tensor::module::max_pool2d(x, options);
    }
    Tensor::from_dispatch(<Dispatch as KernelOps>::max_pool2d(
        x.into_dispatch(),
        kernel,
        stride,
        padding,
    ))
}

/// 2 × 2 average pooling with stride 2 (`F.avg_pool2d(x, 2)`), with its backward on the
/// kernels where they run.
///
/// # Shapes
/// - `x`: `[batch, c, h, w]` (even `h`, `w`; odd sizes go to Burn's `avg_pool2d`) →
///   `[batch, c, h/2, w/2]`
pub fn avg_pool2x(x: Tensor<4>) -> Tensor<4> {
    let kernels = runs_kernels(&x.device());
    let x = x.into_dispatch();
    Tensor::from_dispatch(if kernels {
        <Dispatch as KernelOps>::pool2x(x, 0.25)
    } else {
        composed_pool2x::<Dispatch>(x, 0.25)
    })
}

//! The kernels as a Burn backend extension: [`KernelOps`] is implemented for the Flex CPU
//! backend by the kernels of [`crate::cpu`], and for `Autodiff<Flex>` with hand-written
//! backward passes built from the same kernels. Other backends never reach it: the functions
//! of [`crate`] send their tensors to Burn's standard operations instead, through the same
//! compositions ([`composed_fused_conv2d`]) that define what each operation computes.

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, ExtensionType, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, Shape};
use burn_flex::{FlexTensor, Layout};

use crate::cpu::conv::{ConvGeometry, Epilogue, PerChannel, Prologue};
use crate::cpu::pool::{self, PoolGeometry};
use crate::cpu::{conv, conv_grad};

/// A float tensor or nothing, for the optional parts of [`ConvParts`] (the extension macro
/// routes tensors inside derived types, not inside `Option`).
#[derive(ExtensionType, Debug)]
pub enum MaybeTensor<B: Backend> {
    /// A tensor.
    Present(FloatTensor<B>),
    /// No tensor.
    Absent,
}

impl<B: Backend> MaybeTensor<B> {
    /// `Present` for `Some`, `Absent` for `None`.
    pub fn from_option(t: Option<FloatTensor<B>>) -> Self {
        t.map_or(Self::Absent, Self::Present)
    }

    /// The tensor, if present.
    pub fn into_option(self) -> Option<FloatTensor<B>> {
        match self {
            Self::Present(t) => Some(t),
            Self::Absent => None,
        }
    }
}

/// The switches of a fused convolution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConvFlags {
    /// Clamp the input at zero (after its affine map).
    pub input_relu: bool,
    /// Upsample the input 2× (nearest) before convolving.
    pub upsample: bool,
    /// The residual is at half the output's resolution, upsampled 2× (nearest) when added.
    pub residual_upsampled: bool,
    /// Clamp the output at zero.
    pub relu: bool,
}

/// What surrounds the convolution of [`KernelOps::fused_conv2d`]:
/// `relu?(conv(up?(relu?(x · input_scale + input_shift))) · scale + shift + residual)`.
///
/// The per-channel tensors are `[channels]`, or `[batch, channels]` for one set per image.
#[derive(ExtensionType, Debug)]
pub struct ConvParts<B: Backend> {
    /// Per input channel factor.
    #[extension_type]
    pub input_scale: MaybeTensor<B>,
    /// Per input channel offset.
    #[extension_type]
    pub input_shift: MaybeTensor<B>,
    /// Per output channel factor.
    #[extension_type]
    pub scale: MaybeTensor<B>,
    /// Per output channel offset.
    #[extension_type]
    pub shift: MaybeTensor<B>,
    /// A tensor of the output's shape (or half its size, see [`ConvFlags`]) to add.
    #[extension_type]
    pub residual: MaybeTensor<B>,
    /// The switches.
    pub flags: ConvFlags,
}

impl<B: Backend> ConvParts<B> {
    /// Only the convolution.
    pub fn none() -> Self {
        Self {
            input_scale: MaybeTensor::Absent,
            input_shift: MaybeTensor::Absent,
            scale: MaybeTensor::Absent,
            shift: MaybeTensor::Absent,
            residual: MaybeTensor::Absent,
            flags: ConvFlags::default(),
        }
    }
}

/// Operations with a fast implementation on the Flex backend.
#[backend_extension(Flex, Autodiff)]
pub trait KernelOps: Backend {
    /// A convolution without bias and the layers around it, as [`ConvParts`] describes, with
    /// the input transformed while it is padded and the output while it is stored.
    ///
    /// # Shapes
    /// - `x`: `[batch, c_in, h, w]` (`[batch, c_in, h/2, w/2]` when upsampled), `weight`:
    ///   `[c_out, c_in, kh, kw]`
    /// - output: `[batch, c_out, h', w']`
    fn fused_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        #[extension_type] parts: ConvParts<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// Batch norm with the batch's statistics, then a residual addition and a ReLU, each
    /// optional: `(relu?(γ (x − μ)/√(σ² + ε) + β + residual), μ, σ²)` with the biased variance,
    /// as Burn's `batch_norm_train`.
    ///
    /// # Shapes
    /// - `x`, `residual`: `[batch, channels, ...]`; `gamma`, `beta`: `[channels]`
    /// - output: `x`'s shape, `[channels]`, `[channels]`
    fn fused_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        #[extension_type] residual: MaybeTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// The gradients of [`fused_batch_norm_train`](Self::fused_batch_norm_train) from its input `x`, its
    /// output `out` (for the ReLU's mask), the output's gradient and the statistics it
    /// returned: `(dx, dγ, dβ, d_pre)`, where `d_pre`, the gradient before the ReLU, is the
    /// residual's.
    #[allow(
        clippy::too_many_arguments,
        reason = "the backward of a layer with six inputs"
    )]
    fn fused_batch_norm_train_grads(
        x: FloatTensor<Self>,
        out: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    );

    /// Nearest-neighbour 2× upsampling times `scale`: `out[.., y, x] = scale · x[.., y/2, x/2]`.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels, h, w]` → `[batch, channels, 2h, 2w]`
    fn upsample2x(x: FloatTensor<Self>, scale: f32) -> FloatTensor<Self>;

    /// 2 × 2 sum pooling times `scale` (`1/4`: average pooling), the transpose of
    /// [`upsample2x`](Self::upsample2x).
    ///
    /// # Shapes
    /// - `x`: `[batch, channels, h, w]` (even `h`, `w`) → `[batch, channels, h/2, w/2]`
    fn pool2x(x: FloatTensor<Self>, scale: f32) -> FloatTensor<Self>;

    /// Max pooling with implicit −∞ padding, dilation 1 and floor rounding; on Flex without
    /// indices (inference), under autodiff Burn's own operation (which keeps them for the
    /// backward pass).
    ///
    /// # Shapes
    /// - `x`: `[batch, channels, h, w]` → `[batch, channels, (h + 2p − k) / s + 1, …]`
    fn max_pool2d(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self>;

    /// The gradient of `conv2d(x, weight)` with respect to `x`, given the output's gradient.
    fn conv2d_input_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// The gradient of `conv2d(x, weight)` with respect to `weight`, given the output's
    /// gradient.
    fn conv2d_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
}

/// A per-channel tensor (`[c]` or `[b, c]`) shaped to broadcast over `[b, c, h, w]`.
fn per_channel<B: Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
    let dims = t.shape();
    let shape = match dims.as_slice() {
        [c] => [1, *c, 1, 1],
        [b, c] => [*b, *c, 1, 1],
        other => panic!("a per-channel tensor is [c] or [b, c], not {other:?}"),
    };
    B::float_reshape(t, Shape::new(shape))
}

/// Nearest 2× upsampling of `[b, c, h, w]`.
fn upsample2x<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let [b, c, h, w] = x.shape().dims();
    let x = B::float_reshape(x, Shape::new([b, c, h, 1, w, 1]));
    let x = B::float_expand(x, Shape::new([b, c, h, 2, w, 2]));
    B::float_reshape(x, Shape::new([b, c, 2 * h, 2 * w]))
}

/// [`KernelOps::upsample2x`] from Burn's operations.
pub fn composed_upsample2x<B: Backend>(x: FloatTensor<B>, scale: f32) -> FloatTensor<B> {
    let up = upsample2x::<B>(x);
    if scale == 1.0 {
        up
    } else {
        B::float_mul_scalar(up, burn::backend::Scalar::Float(scale as f64))
    }
}

/// [`KernelOps::pool2x`] from Burn's operations.
pub fn composed_pool2x<B: Backend>(x: FloatTensor<B>, scale: f32) -> FloatTensor<B> {
    let pooled = B::avg_pool2d(x, [2, 2], [2, 2], [0, 0], true, false);
    B::float_mul_scalar(pooled, burn::backend::Scalar::Float(4.0 * scale as f64))
}

/// The input side of [`ConvParts`] from Burn's operations.
pub fn composed_prologue<B: Backend>(
    x: FloatTensor<B>,
    scale: Option<FloatTensor<B>>,
    shift: Option<FloatTensor<B>>,
    flags: ConvFlags,
) -> FloatTensor<B> {
    let mut x = x;
    if let Some(scale) = scale {
        x = B::float_mul(x, per_channel::<B>(scale));
    }
    if let Some(shift) = shift {
        x = B::float_add(x, per_channel::<B>(shift));
    }
    if flags.input_relu {
        x = B::relu(x);
    }
    if flags.upsample {
        upsample2x::<B>(x)
    } else {
        x
    }
}

/// The output side of [`ConvParts`] from Burn's operations.
pub fn composed_epilogue<B: Backend>(
    y: FloatTensor<B>,
    scale: Option<FloatTensor<B>>,
    shift: Option<FloatTensor<B>>,
    residual: Option<FloatTensor<B>>,
    flags: ConvFlags,
) -> FloatTensor<B> {
    let mut y = y;
    if let Some(scale) = scale {
        y = B::float_mul(y, per_channel::<B>(scale));
    }
    if let Some(shift) = shift {
        y = B::float_add(y, per_channel::<B>(shift));
    }
    if let Some(residual) = residual {
        let residual = if flags.residual_upsampled {
            upsample2x::<B>(residual)
        } else {
            residual
        };
        y = B::float_add(y, residual);
    }
    if flags.relu { B::relu(y) } else { y }
}

/// [`KernelOps::fused_conv2d`] from Burn's standard operations, on any backend: the
/// definition the kernels are checked against.
pub fn composed_fused_conv2d<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    parts: ConvParts<B>,
    options: ConvOptions<2>,
) -> FloatTensor<B> {
    let ConvParts {
        input_scale,
        input_shift,
        scale,
        shift,
        residual,
        flags,
    } = parts;
    let x = composed_prologue::<B>(
        x,
        input_scale.into_option(),
        input_shift.into_option(),
        flags,
    );
    let y = B::conv2d(x, weight, None, options);
    composed_epilogue::<B>(
        y,
        scale.into_option(),
        shift.into_option(),
        residual.into_option(),
        flags,
    )
}

/// [`KernelOps::fused_batch_norm_train`] from Burn's standard operations.
pub fn composed_batch_norm_train<B: Backend>(
    x: FloatTensor<B>,
    gamma: FloatTensor<B>,
    beta: FloatTensor<B>,
    residual: Option<FloatTensor<B>>,
    epsilon: f64,
    relu: bool,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let result = if gamma.shape().num_dims() == 1 {
        B::batch_norm_train(x, gamma, beta, epsilon)
    } else {
        // One γ, β per image: normalize, then the per-image affine map.
        let (device, dtype) = (x.device(), x.dtype());
        let channels = Shape::new([x.shape()[1]]);
        let ones = B::float_ones(channels.clone(), &device, dtype.into());
        let zeros = B::float_zeros(channels, &device, dtype.into());
        let mut result = B::batch_norm_train(x, ones, zeros, epsilon);
        result.output = B::float_add(
            B::float_mul(result.output, per_channel::<B>(gamma)),
            per_channel::<B>(beta),
        );
        result
    };
    let mut out = result.output;
    if let Some(residual) = residual {
        out = B::float_add(out, residual);
    }
    if relu {
        out = B::relu(out);
    }
    (out, result.mean, result.variance)
}

/// [`KernelOps::fused_batch_norm_train_grads`] from Burn's standard operations.
#[allow(
    clippy::too_many_arguments,
    reason = "the backward of a layer with six inputs"
)]
pub fn composed_batch_norm_train_grads<B: Backend>(
    x: FloatTensor<B>,
    out: FloatTensor<B>,
    output_grad: FloatTensor<B>,
    gamma: FloatTensor<B>,
    mean: FloatTensor<B>,
    variance: FloatTensor<B>,
    epsilon: f64,
    relu: bool,
) -> (
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
) {
    let d_pre = if relu {
        B::relu_backward(out, output_grad)
    } else {
        output_grad
    };
    if gamma.shape().num_dims() == 1 {
        let grads = B::batch_norm_train_backward(x, gamma, mean, variance, epsilon, d_pre.clone());
        return (grads.x_grad, grads.gamma_grad, grads.beta_grad, d_pre);
    }
    // One γ per image: with x̂ = (x − μ)/σ, dβ_n = Σ_hw d_pre, dγ_n = Σ_hw d_pre·x̂, and the
    // normalization's backward on γ_n · d_pre.
    let shape = x.shape();
    let [b, c] = [shape[0], shape[1]];
    let flat = Shape::new([b, c, shape.num_elements() / (b * c).max(1)]);
    let inv_std = B::float_recip(B::float_sqrt(B::float_add_scalar(
        variance.clone(),
        burn::backend::Scalar::Float(epsilon),
    )));
    let centered = B::float_sub(x.clone(), per_channel::<B>(mean.clone()));
    let normalized = B::float_mul(centered, per_channel::<B>(inv_std));
    let per_image_sum = |t: FloatTensor<B>| {
        B::float_reshape(
            B::float_sum_dim(B::float_reshape(t, flat.clone()), 2),
            Shape::new([b, c]),
        )
    };
    let d_beta = per_image_sum(d_pre.clone());
    let d_gamma = per_image_sum(B::float_mul(d_pre.clone(), normalized));
    let (device, dtype) = (x.device(), x.dtype());
    let ones = B::float_ones(Shape::new([c]), &device, dtype.into());
    let scaled = B::float_mul(d_pre.clone(), per_channel::<B>(gamma));
    let grads = B::batch_norm_train_backward(x, ones, mean, variance, epsilon, scaled);
    (grads.x_grad, d_gamma, d_beta, d_pre)
}

/// The shape of a batch-normalized Flex tensor, when the kernels handle it.
fn bn_shape(x: &FlexTensor) -> Option<crate::cpu::batch_norm::BnShape> {
    let dims = x.shape();
    let dims = dims.as_slice();
    (x.dtype() == DType::F32 && dims.len() >= 2).then(|| crate::cpu::batch_norm::BnShape {
        batch: dims[0],
        channels: dims[1],
        plane: dims[2..].iter().product(),
    })
}

/// A Flex tensor of `shape` holding `data`.
fn flex_tensor_shaped(data: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::new(
        burn::tensor::Bytes::from_elems(data),
        Layout::contiguous(shape),
        DType::F32,
    )
}

/// The geometry of `conv2d(x, weight)` when the direct kernels handle it: f32 tensors, one
/// group, no dilation, symmetric padding. `upsampled` doubles the input's height and width.
fn geometry(
    x: &FlexTensor,
    weight: &FlexTensor,
    options: &ConvOptions<2>,
    upsampled: bool,
) -> Option<ConvGeometry> {
    if x.dtype() != DType::F32
        || weight.dtype() != DType::F32
        || options.groups != 1
        || options.dilation != [1, 1]
        || options.is_asymmetric()
        || x.shape().num_dims() != 4
        || weight.shape().num_dims() != 4
    {
        return None;
    }
    let [batch, c_in, h, w] = x.shape().dims();
    let [c_out, c_in_w, kh, kw] = weight.shape().dims();
    let up = if upsampled { 2 } else { 1 };
    let g = ConvGeometry {
        batch,
        c_in,
        h_in: h * up,
        w_in: w * up,
        c_out,
        kernel: [kh, kw],
        stride: options.stride,
        padding: options.padding_begin(),
    };
    (c_in == c_in_w && g.is_valid()).then_some(g)
}

/// A contiguous copy of `t` only when it is not already one.
fn contiguous(t: &FlexTensor) -> FlexTensor {
    if t.is_contiguous() && t.layout().start_offset() == 0 {
        t.clone()
    } else {
        t.to_contiguous()
    }
}

fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("contiguous f32 tensor (made so by `contiguous`)")
}

/// A contiguous f32 Flex tensor holding `data`.
fn flex_tensor(data: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    flex_tensor_shaped(data, Shape::new(shape))
}

/// A per-channel part as the kernels take it, when its shape is `[channels]` or `[batch,
/// channels]`.
fn per_channel_values<'a>(
    t: &'a Option<FlexTensor>,
    batch: usize,
    channels: usize,
) -> Result<Option<PerChannel<'a>>, ()> {
    let Some(t) = t else { return Ok(None) };
    if t.dtype() != DType::F32 {
        return Err(());
    }
    match t.shape().as_slice() {
        [c] if *c == channels => Ok(Some(PerChannel::shared(values(t)))),
        [b, c] if *b == batch && *c == channels => Ok(Some(PerChannel::per_image(values(t)))),
        _ => Err(()),
    }
}

impl KernelOps for Flex {
    fn fused_conv2d(
        x: FlexTensor,
        weight: FlexTensor,
        parts: ConvParts<Self>,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let flags = parts.flags;
        let Some(g) = geometry(&x, &weight, &options, flags.upsample) else {
            return composed_fused_conv2d::<Flex>(x, weight, parts, options);
        };
        let contiguous_part = |t: MaybeTensor<Self>| t.into_option().map(|t| contiguous(&t));
        let ConvParts {
            input_scale,
            input_shift,
            scale,
            shift,
            residual,
            ..
        } = parts;
        let [input_scale, input_shift, scale, shift, residual] =
            [input_scale, input_shift, scale, shift, residual].map(contiguous_part);
        let residual_shape = if flags.residual_upsampled {
            [g.batch, g.c_out, g.h_out() / 2, g.w_out() / 2]
        } else {
            [g.batch, g.c_out, g.h_out(), g.w_out()]
        };
        let residual_fits = residual.as_ref().is_none_or(|r| {
            r.dtype() == DType::F32
                && r.shape().as_slice() == residual_shape
                && (!flags.residual_upsampled
                    || (g.h_out().is_multiple_of(2) && g.w_out().is_multiple_of(2)))
        });
        let parts = (
            per_channel_values(&input_scale, g.batch, g.c_in),
            per_channel_values(&input_shift, g.batch, g.c_in),
            per_channel_values(&scale, g.batch, g.c_out),
            per_channel_values(&shift, g.batch, g.c_out),
        );
        let (Ok(in_scale), Ok(in_shift), Ok(out_scale), Ok(out_shift), true) =
            (parts.0, parts.1, parts.2, parts.3, residual_fits)
        else {
            let maybe = MaybeTensor::from_option;
            let parts = ConvParts {
                input_scale: maybe(input_scale),
                input_shift: maybe(input_shift),
                scale: maybe(scale),
                shift: maybe(shift),
                residual: maybe(residual),
                flags,
            };
            return composed_fused_conv2d::<Flex>(x, weight, parts, options);
        };
        let (x, weight) = (contiguous(&x), contiguous(&weight));
        let prologue = Prologue {
            scale: in_scale,
            shift: in_shift,
            relu: flags.input_relu,
            upsample: flags.upsample,
        };
        let epilogue = Epilogue {
            scale: out_scale,
            shift: out_shift,
            residual: residual.as_ref().map(values),
            residual_upsampled: flags.residual_upsampled,
            relu: flags.relu,
        };
        let mut out = vec![0.0; g.output_len()];
        conv::conv2d(
            values(&x),
            values(&weight),
            &g,
            &prologue,
            &epilogue,
            &mut out,
        );
        flex_tensor(out, [g.batch, g.c_out, g.h_out(), g.w_out()])
    }

    fn fused_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        residual: MaybeTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let residual = residual.into_option();
        let fits = |t: &FlexTensor, shape: &[usize]| {
            t.dtype() == DType::F32 && t.shape().as_slice() == shape
        };
        let (g, b) = (Some(contiguous(&gamma)), Some(contiguous(&beta)));
        let parts = bn_shape(&x).and_then(|s| {
            let gamma = per_channel_values(&g, s.batch, s.channels).ok().flatten()?;
            let beta = per_channel_values(&b, s.batch, s.channels).ok().flatten()?;
            let fits_residual = residual
                .as_ref()
                .is_none_or(|r| fits(r, x.shape().as_slice()));
            fits_residual.then_some((s, gamma, beta))
        });
        let Some((shape, gamma_values, beta_values)) = parts else {
            return composed_batch_norm_train::<Flex>(x, gamma, beta, residual, epsilon, relu);
        };
        let x = contiguous(&x);
        let residual = residual.map(|r| contiguous(&r));
        let mut out = vec![0.0; shape.len()];
        let (mean, var) = crate::cpu::batch_norm::forward(
            values(&x),
            shape,
            gamma_values,
            beta_values,
            epsilon,
            residual.as_ref().map(values),
            relu,
            &mut out,
        );
        let channels = Shape::new([shape.channels]);
        (
            flex_tensor_shaped(out, x.shape()),
            flex_tensor_shaped(mean, channels.clone()),
            flex_tensor_shaped(var, channels),
        )
    }

    fn fused_batch_norm_train_grads(
        x: FlexTensor,
        out: FlexTensor,
        output_grad: FlexTensor,
        gamma: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
        relu: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor, FlexTensor) {
        let same = |t: &FlexTensor| t.dtype() == DType::F32 && t.shape() == x.shape();
        let g = Some(contiguous(&gamma));
        let parts = bn_shape(&x)
            .filter(|_| same(&out) && same(&output_grad))
            .and_then(|s| {
                Some((
                    s,
                    per_channel_values(&g, s.batch, s.channels).ok().flatten()?,
                ))
            });
        let Some((shape, gamma_values)) = parts else {
            return composed_batch_norm_train_grads::<Flex>(
                x,
                out,
                output_grad,
                gamma,
                mean,
                variance,
                epsilon,
                relu,
            );
        };
        let [x, out, output_grad, mean, variance] =
            [&x, &out, &output_grad, &mean, &variance].map(contiguous);
        let (dx, d_gamma, d_beta, d_pre) = crate::cpu::batch_norm::backward(
            values(&x),
            relu.then(|| values(&out)),
            values(&output_grad),
            shape,
            gamma_values,
            values(&mean),
            values(&variance),
            epsilon,
        );
        (
            flex_tensor_shaped(dx, x.shape()),
            flex_tensor_shaped(d_gamma, gamma.shape()),
            flex_tensor_shaped(d_beta, gamma.shape()),
            flex_tensor_shaped(d_pre, x.shape()),
        )
    }

    fn upsample2x(x: FlexTensor, scale: f32) -> FlexTensor {
        let dims = x.shape();
        if x.dtype() != DType::F32 || dims.num_dims() != 4 {
            return composed_upsample2x::<Flex>(x, scale);
        }
        let [b, c, h, w] = dims.dims();
        let x = contiguous(&x);
        let mut out = vec![0.0; 4 * b * c * h * w];
        crate::cpu::resample::upsample2x(values(&x), b * c, h, w, &mut out);
        if scale != 1.0 {
            out.iter_mut().for_each(|v| *v *= scale);
        }
        flex_tensor(out, [b, c, 2 * h, 2 * w])
    }

    fn pool2x(x: FlexTensor, scale: f32) -> FlexTensor {
        let dims = x.shape();
        let even = dims.num_dims() == 4 && dims[2].is_multiple_of(2) && dims[3].is_multiple_of(2);
        if x.dtype() != DType::F32 || !even {
            return composed_pool2x::<Flex>(x, scale);
        }
        let [b, c, h, w] = dims.dims();
        let x = contiguous(&x);
        let mut out = vec![0.0; b * c * h * w / 4];
        crate::cpu::resample::pool2x(values(&x), b * c, h, w, scale, &mut out);
        flex_tensor(out, [b, c, h / 2, w / 2])
    }

    fn max_pool2d(
        x: FlexTensor,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FlexTensor {
        let dims = x.shape();
        let geometry = (dims.num_dims() == 4).then(|| {
            let [_, _, h, w] = dims.dims();
            PoolGeometry {
                h,
                w,
                kernel,
                stride,
                padding,
            }
        });
        let Some(g) = geometry.filter(|g| x.dtype() == DType::F32 && g.is_valid()) else {
            return <Flex as ModuleOps<Flex>>::max_pool2d(
                x,
                kernel,
                stride,
                padding,
                [1, 1],
                false,
            );
        };
        let [b, c, _, _] = dims.dims();
        let x = contiguous(&x);
        let mut out = vec![0.0; b * c * g.h_out() * g.w_out()];
        pool::max_pool2d(values(&x), b * c, &g, &mut out);
        flex_tensor(out, [b, c, g.h_out(), g.w_out()])
    }

    fn conv2d_input_grad(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        match geometry(&x, &weight, &options, false).filter(conv_grad::input_grad_supported) {
            Some(g) if output_grad.dtype() == DType::F32 => {
                let (weight, grad) = (contiguous(&weight), contiguous(&output_grad));
                let mut out = vec![0.0; g.input_len()];
                conv_grad::input_grad(values(&weight), values(&grad), &g, &mut out);
                flex_tensor(out, [g.batch, g.c_in, g.h_in, g.w_in])
            }
            _ => Flex::conv2d_x_backward(x, weight, output_grad, options),
        }
    }

    fn conv2d_weight_grad(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        match geometry(&x, &weight, &options, false) {
            Some(g) if output_grad.dtype() == DType::F32 => {
                let (x, grad) = (contiguous(&x), contiguous(&output_grad));
                let mut out = vec![0.0; g.weight_len()];
                conv_grad::weight_grad(values(&x), values(&grad), &g, &mut out);
                flex_tensor(out, [g.c_out, g.c_in, g.kernel[0], g.kernel[1]])
            }
            _ => Flex::conv2d_weight_backward(x, weight, output_grad, options),
        }
    }
}

/// The backward step of a convolution without bias: both gradients from the kernels.
#[derive(Debug)]
struct ConvBackward;

impl<B: Backend + KernelOps> Backward<B, 2> for ConvBackward {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        if let Some(node) = node_x {
            let dx = B::conv2d_input_grad(x.clone(), weight.clone(), grad.clone(), options.clone());
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_weight {
            grads.register::<B>(node.id, B::conv2d_weight_grad(x, weight, grad, options));
        }
    }
}

/// The backward step of [`KernelOps::upsample2x`]: the gradient pooled by two.
#[derive(Debug)]
struct UpsampleBackward;

impl<B: Backend + KernelOps> Backward<B, 1> for UpsampleBackward {
    type State = f32;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        if let [Some(node)] = ops.parents {
            grads.register::<B>(node.id, B::pool2x(grad, ops.state));
        }
    }
}

/// The backward step of [`KernelOps::pool2x`]: the gradient upsampled by two.
#[derive(Debug)]
struct PoolBackward;

impl<B: Backend + KernelOps> Backward<B, 1> for PoolBackward {
    type State = f32;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        if let [Some(node)] = ops.parents {
            grads.register::<B>(node.id, B::upsample2x(grad, ops.state));
        }
    }
}

/// The state a batch norm's backward step keeps: the input's node, γ's node, the output (the
/// ReLU's mask), the statistics, ε and whether there is a ReLU.
type BnState<B> = (
    NodeId,
    NodeId,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    f64,
    bool,
);

/// The backward step of a batch norm with the batch's statistics, with a residual when `N` is
/// 4 (parents x, γ, β, residual) and without when it is 3.
#[derive(Debug)]
struct BatchNormBackward<const N: usize>;

impl<B: Backend + KernelOps, const N: usize> Backward<B, N> for BatchNormBackward<N> {
    type State = BnState<B>;

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, gamma_state, out, mean, variance, epsilon, relu) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let gamma = checkpointer.retrieve_node_output::<FloatTensor<B>>(gamma_state);
        let (dx, d_gamma, d_beta, d_pre) =
            B::fused_batch_norm_train_grads(x, out, grad, gamma, mean, variance, epsilon, relu);
        let mut parents = ops.parents.into_iter();
        // The gradients first: `zip` stops on them without drawing the residual's parent.
        for (grad, parent) in [dx, d_gamma, d_beta].into_iter().zip(parents.by_ref()) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, grad);
            }
        }
        if let Some(Some(node)) = parents.next() {
            grads.register::<B>(node.id, d_pre);
        }
    }
}

impl<B: Backend + KernelOps, C: CheckpointStrategy> KernelOps for Autodiff<B, C> {
    fn fused_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        residual: MaybeTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        use burn::backend::autodiff::ops::OpsKind::{Tracked, UnTracked};
        // The statistics leave the graph: callers use them only for running averages.
        let untracked = |t: FloatTensor<B>| FloatTensor::<Self>::new(t);
        let run = |x: &FloatTensor<Self>,
                   gamma: &FloatTensor<Self>,
                   beta: &FloatTensor<Self>,
                   residual: Option<FloatTensor<B>>| {
            B::fused_batch_norm_train(
                x.primitive().clone(),
                gamma.primitive().clone(),
                beta.primitive().clone(),
                MaybeTensor::from_option(residual),
                epsilon,
                relu,
            )
        };
        match residual.into_option() {
            Some(residual) => match BatchNormBackward::<4>
                .prepare::<C>([x.node(), gamma.node(), beta.node(), residual.node()])
                .compute_bound()
                .stateful()
            {
                Tracked(mut prep) => {
                    let (x_state, gamma_state) = (prep.checkpoint(&x), prep.checkpoint(&gamma));
                    let (out, mean, var) =
                        run(&x, &gamma, &beta, Some(residual.primitive().clone()));
                    let state = (x_state, gamma_state, out.clone(), mean.clone(), var.clone());
                    let state = (state.0, state.1, state.2, state.3, state.4, epsilon, relu);
                    (prep.finish(state, out), untracked(mean), untracked(var))
                }
                UnTracked(prep) => {
                    let (out, mean, var) =
                        run(&x, &gamma, &beta, Some(residual.primitive().clone()));
                    (prep.finish(out), untracked(mean), untracked(var))
                }
            },
            None => match BatchNormBackward::<3>
                .prepare::<C>([x.node(), gamma.node(), beta.node()])
                .compute_bound()
                .stateful()
            {
                Tracked(mut prep) => {
                    let (x_state, gamma_state) = (prep.checkpoint(&x), prep.checkpoint(&gamma));
                    let (out, mean, var) = run(&x, &gamma, &beta, None);
                    let state = (x_state, gamma_state, out.clone(), mean.clone(), var.clone());
                    let state = (state.0, state.1, state.2, state.3, state.4, epsilon, relu);
                    (prep.finish(state, out), untracked(mean), untracked(var))
                }
                UnTracked(prep) => {
                    let (out, mean, var) = run(&x, &gamma, &beta, None);
                    (prep.finish(out), untracked(mean), untracked(var))
                }
            },
        }
    }

    fn fused_batch_norm_train_grads(
        x: FloatTensor<Self>,
        out: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    ) {
        // Second-order gradients are not needed by any loop here; Burn's ops provide them.
        composed_batch_norm_train_grads::<Self>(
            x,
            out,
            output_grad,
            gamma,
            mean,
            variance,
            epsilon,
            relu,
        )
    }

    fn fused_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        parts: ConvParts<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let ConvParts {
            input_scale,
            input_shift,
            scale,
            shift,
            residual,
            flags,
        } = parts;
        // The element-wise parts are differentiated by Burn's own operations; the
        // convolution by the kernels' gradients.
        let x = composed_prologue::<Self>(
            x,
            input_scale.into_option(),
            input_shift.into_option(),
            flags,
        );
        let conv = |x: FloatTensor<B>, weight: FloatTensor<B>, options: ConvOptions<2>| {
            B::fused_conv2d(x, weight, ConvParts::none(), options)
        };
        let y = match ConvBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let out = conv(x.into_primitive(), weight.into_primitive(), options.clone());
                prep.finish((x_state, weight_state, options), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(conv(x.into_primitive(), weight.into_primitive(), options))
            }
        };
        composed_epilogue::<Self>(
            y,
            scale.into_option(),
            shift.into_option(),
            residual.into_option(),
            flags,
        )
    }

    fn upsample2x(x: FloatTensor<Self>, scale: f32) -> FloatTensor<Self> {
        match UpsampleBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(scale, B::upsample2x(x.into_primitive(), scale)),
            OpsKind::UnTracked(prep) => prep.finish(B::upsample2x(x.into_primitive(), scale)),
        }
    }

    fn pool2x(x: FloatTensor<Self>, scale: f32) -> FloatTensor<Self> {
        match PoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(scale, B::pool2x(x.into_primitive(), scale)),
            OpsKind::UnTracked(prep) => prep.finish(B::pool2x(x.into_primitive(), scale)),
        }
    }

    fn max_pool2d(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> FloatTensor<Self> {
        <Self as ModuleOps<Self>>::max_pool2d(x, kernel, stride, padding, [1, 1], false)
    }

    fn conv2d_input_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        // Second-order gradients are not needed by any loop here; Burn's ops provide them.
        Self::conv2d_x_backward(x, weight, output_grad, options)
    }

    fn conv2d_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d_weight_backward(x, weight, output_grad, options)
    }
}

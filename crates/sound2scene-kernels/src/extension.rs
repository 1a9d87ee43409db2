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
    FlexTensor::new(
        burn::tensor::Bytes::from_elems(data),
        Layout::contiguous(Shape::new(shape)),
        DType::F32,
    )
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
                && (!flags.residual_upsampled || (g.h_out() % 2 == 0 && g.w_out() % 2 == 0))
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

impl<B: Backend + KernelOps, C: CheckpointStrategy> KernelOps for Autodiff<B, C> {
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

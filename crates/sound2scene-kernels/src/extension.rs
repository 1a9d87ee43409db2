//! The kernels as a Burn backend extension: [`KernelOps`] is implemented for the Flex CPU
//! backend by the kernels of [`crate::cpu`], and for `Autodiff<Flex>` with hand-written
//! backward passes built from the same kernels. Other backends never reach it: the functions
//! of [`crate`] send their tensors to Burn's standard operations instead.

use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::ops::ActivationOps;
use burn::backend::ops::{ConvOptions, FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, ExtensionType, Flex, TensorMetadata, backend_extension};
use burn::tensor::{DType, Shape};
use burn_flex::{FlexTensor, Layout};

use crate::cpu::conv::{ConvGeometry, Epilogue};
use crate::cpu::{conv, conv_grad};

/// A float tensor or nothing, for the optional inputs of [`KernelOps::fused_conv2d`] (the
/// extension macro routes tensors inside derived types, not inside `Option`).
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

/// Operations with a fast implementation on the Flex backend.
#[backend_extension(Flex, Autodiff)]
pub trait KernelOps: Backend {
    /// `relu?(conv2d(x, weight) · scale[c] + shift[c] + residual)`: a convolution without
    /// bias followed by a per-channel affine map, a residual addition and a ReLU, each
    /// optional, in one pass over the output.
    ///
    /// # Shapes
    /// - `x`: `[batch, c_in, h, w]`, `weight`: `[c_out, c_in, kh, kw]`
    /// - `scale`, `shift`: `[c_out]`; `residual`: the output's shape
    /// - output: `[batch, c_out, h', w']`
    fn fused_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        #[extension_type] scale: MaybeTensor<Self>,
        #[extension_type] shift: MaybeTensor<Self>,
        #[extension_type] residual: MaybeTensor<Self>,
        options: ConvOptions<2>,
        relu: bool,
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

/// [`KernelOps::fused_conv2d`] from Burn's standard operations, on any backend.
pub fn composed_fused_conv2d<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    scale: Option<FloatTensor<B>>,
    shift: Option<FloatTensor<B>>,
    residual: Option<FloatTensor<B>>,
    options: ConvOptions<2>,
    relu: bool,
) -> FloatTensor<B> {
    let channels = weight.shape()[0];
    let per_channel = |t: FloatTensor<B>| B::float_reshape(t, Shape::new([1, channels, 1, 1]));
    let mut out = B::conv2d(x, weight, None, options);
    if let Some(scale) = scale {
        out = B::float_mul(out, per_channel(scale));
    }
    if let Some(shift) = shift {
        out = B::float_add(out, per_channel(shift));
    }
    if let Some(residual) = residual {
        out = B::float_add(out, residual);
    }
    if relu { B::relu(out) } else { out }
}

/// The geometry of `conv2d(x, weight)` when the direct kernels handle it: f32 tensors, one
/// group, no dilation, symmetric padding.
fn geometry(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> Option<ConvGeometry> {
    if x.dtype() != DType::F32
        || weight.dtype() != DType::F32
        || options.groups != 1
        || options.dilation != [1, 1]
        || options.is_asymmetric()
    {
        return None;
    }
    let [batch, c_in, h_in, w_in] = x.shape().dims();
    let [c_out, c_in_w, kh, kw] = weight.shape().dims();
    let g = ConvGeometry {
        batch,
        c_in,
        h_in,
        w_in,
        c_out,
        kernel: [kh, kw],
        stride: options.stride,
        padding: options.padding_begin(),
    };
    (c_in == c_in_w && g.is_valid()).then_some(g)
}

/// The f32 values of a tensor in row-major order, copied only when its layout is not already
/// contiguous.
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

impl KernelOps for Flex {
    fn fused_conv2d(
        x: FlexTensor,
        weight: FlexTensor,
        scale: MaybeTensor<Self>,
        shift: MaybeTensor<Self>,
        residual: MaybeTensor<Self>,
        options: ConvOptions<2>,
        relu: bool,
    ) -> FlexTensor {
        let [scale, shift, residual] = [scale, shift, residual].map(MaybeTensor::into_option);
        let fits = |t: &Option<FlexTensor>, shape: &[usize]| {
            t.as_ref()
                .is_none_or(|t| t.dtype() == DType::F32 && t.shape().as_slice() == shape)
        };
        let Some(g) = geometry(&x, &weight, &options).filter(|g| {
            fits(&scale, &[g.c_out])
                && fits(&shift, &[g.c_out])
                && fits(&residual, &[g.batch, g.c_out, g.h_out(), g.w_out()])
        }) else {
            return composed_fused_conv2d::<Flex>(x, weight, scale, shift, residual, options, relu);
        };
        let (x, weight) = (contiguous(&x), contiguous(&weight));
        let [scale, shift, residual] = [scale, shift, residual].map(|t| t.map(|t| contiguous(&t)));
        let epilogue = Epilogue {
            scale: scale.as_ref().map(values),
            shift: shift.as_ref().map(values),
            residual: residual.as_ref().map(values),
            relu,
        };
        let mut out = vec![0.0; g.output_len()];
        conv::conv2d(values(&x), values(&weight), &g, &epilogue, &mut out);
        flex_tensor(out, [g.batch, g.c_out, g.h_out(), g.w_out()])
    }

    fn conv2d_input_grad(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        match geometry(&x, &weight, &options).filter(conv_grad::input_grad_supported) {
            Some(g) => {
                let (weight, grad) = (contiguous(&weight), contiguous(&output_grad));
                let mut out = vec![0.0; g.input_len()];
                conv_grad::input_grad(values(&weight), values(&grad), &g, &mut out);
                flex_tensor(out, [g.batch, g.c_in, g.h_in, g.w_in])
            }
            None => Flex::conv2d_x_backward(x, weight, output_grad, options),
        }
    }

    fn conv2d_weight_grad(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        match geometry(&x, &weight, &options) {
            Some(g) => {
                let (x, grad) = (contiguous(&x), contiguous(&output_grad));
                let mut out = vec![0.0; g.weight_len()];
                conv_grad::weight_grad(values(&x), values(&grad), &g, &mut out);
                flex_tensor(out, [g.c_out, g.c_in, g.kernel[0], g.kernel[1]])
            }
            None => Flex::conv2d_weight_backward(x, weight, output_grad, options),
        }
    }
}

/// The backward step of a convolution without bias.
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
        scale: MaybeTensor<Self>,
        shift: MaybeTensor<Self>,
        residual: MaybeTensor<Self>,
        options: ConvOptions<2>,
        relu: bool,
    ) -> FloatTensor<Self> {
        let [scale, shift, residual] = [scale, shift, residual].map(MaybeTensor::into_option);
        let conv = match ConvBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let out = B::fused_conv2d(
                    x.into_primitive(),
                    weight.into_primitive(),
                    MaybeTensor::Absent,
                    MaybeTensor::Absent,
                    MaybeTensor::Absent,
                    options.clone(),
                    false,
                );
                prep.finish((x_state, weight_state, options), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_conv2d(
                x.into_primitive(),
                weight.into_primitive(),
                MaybeTensor::Absent,
                MaybeTensor::Absent,
                MaybeTensor::Absent,
                options,
                false,
            )),
        };
        // The rest is cheap element-wise work, differentiated by Burn's own operations.
        let channels = conv.shape()[1];
        let per_channel =
            |t: FloatTensor<Self>| Self::float_reshape(t, Shape::new([1, channels, 1, 1]));
        let mut out = conv;
        if let Some(scale) = scale {
            out = Self::float_mul(out, per_channel(scale));
        }
        if let Some(shift) = shift {
            out = Self::float_add(out, per_channel(shift));
        }
        if let Some(residual) = residual {
            out = Self::float_add(out, residual);
        }
        if relu { Self::relu(out) } else { out }
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

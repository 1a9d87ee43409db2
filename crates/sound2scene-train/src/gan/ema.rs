//! The exponential moving average of G's weights (BigGAN-PyTorch `utils.ema`): every value of
//! G's state, parameters and buffers alike (batch-norm statistics, spectral-norm `u0`/`sv0`),
//! is averaged as `ema ← decay · ema + (1 − decay) · g`, and copied outright (`decay = 0`)
//! before the start step.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;
use sound2scene_models::biggan::Generator;

/// Collects every float tensor of a module, flattened, in traversal order.
struct Flatten(Vec<Tensor<1>>);

impl ModuleVisitor for Flatten {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().reshape([-1]));
    }
}

/// Blends every float tensor of a module with the next of `source` (same traversal order).
struct Blend {
    source: std::vec::IntoIter<Tensor<1>>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(source) = self.source.next() else {
            return param;
        };
        let decay = self.decay;
        param.map(|ema| {
            let source = source.reshape(ema.dims());
            ema.mul_scalar(decay).add(source.mul_scalar(1.0 - decay))
        })
    }
}

/// `ema ← decay · ema + (1 − decay) · source` over every parameter and buffer. Both generators
/// must have the same architecture and live on the same (plain) device; `source` is typically
/// `G.valid()`, whose running statistics are up to date.
pub fn ema_update(ema: Generator, source: &Generator, decay: f64) -> Generator {
    let mut flatten = Flatten(Vec::new());
    source.visit(&mut flatten);
    let mut blend = Blend {
        source: flatten.0.into_iter(),
        decay,
    };
    ema.map(&mut blend)
}

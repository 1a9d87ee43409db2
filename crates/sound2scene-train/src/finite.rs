//! Whether a network's parameters, or their gradients, are all finite: the check every
//! training loop makes before applying a step and before writing a checkpoint.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// Sums every floating-point parameter (or, with `grads`, every gradient) into one scalar on
/// the device: NaN or infinite exactly when some value is (barring an overflow of the sum
/// itself, which only values near `f32::MAX` reach). One value is read back, not every tensor.
struct FiniteSum<'a> {
    grads: Option<&'a GradientsParams>,
    sum: Option<Tensor<1>>,
}

impl ModuleVisitor for FiniteSum<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = match self.grads {
            Some(grads) => grads.get::<D>(param.id),
            None => Some(param.val().inner()),
        };
        if let Some(value) = value {
            let s = value.sum();
            self.sum = Some(match self.sum.take() {
                Some(acc) => {
                    let device = acc.device();
                    acc + s.to_device(&device)
                }
                None => s,
            });
        }
    }
}

/// `true` when every float parameter of `module` is finite, or, given `grads`, every gradient
/// `grads` holds for those parameters. A module without parameters is finite.
pub fn all_finite<M: Module>(module: &M, grads: Option<&GradientsParams>) -> bool {
    let mut visitor = FiniteSum { grads, sum: None };
    module.visit(&mut visitor);
    visitor
        .sum
        .is_none_or(|s| s.into_scalar::<f32>().is_finite())
}

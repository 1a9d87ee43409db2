//! SwAV's optimizer: SGD with momentum wrapped in LARS (apex `LARC`, trust coefficient 0.001,
//! no clipping), a linear warm-up and a cosine decay of the learning rate per step.
//!
//! Reference: `main_swav.py` (`torch.optim.SGD(momentum=0.9, weight_decay=wd)` inside
//! `LARC(trust_coefficient=0.001, clip=False)`; `warmup_lr_schedule = linspace(start_warmup,
//! base_lr, warmup)`, then `final_lr + ½(base_lr − final_lr)(1 + cos(π t / (T − warmup)))`).
//! LARC, for every parameter `w` with gradient `g` and both norms non-zero, replaces `g` by
//! `(g + wd·w) · η‖w‖ / (‖g‖ + wd‖w‖ + 1e-8)` and runs SGD without weight decay; a parameter
//! with a zero norm (e.g. a fresh BatchNorm bias) keeps its raw gradient and gets no decay.

use burn::config::Config;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::Tensor;

use crate::error::TrainError;

/// Optimizer settings. Defaults: SwAV's single-node recipe (`swav_400ep_bs256_pretrain.sh`:
/// base lr 0.6, final lr 0.0006, weight decay 1e-6, no warm-up) with LARS on.
#[derive(Config, Debug)]
pub struct SwavOptimizerConfig {
    /// Learning rate after warm-up.
    #[config(default = 0.6)]
    pub base_lr: f64,
    /// Learning rate at the last step of the cosine decay.
    #[config(default = 0.0006)]
    pub final_lr: f64,
    /// Steps of linear warm-up from `start_warmup` to `base_lr`.
    #[config(default = 0)]
    pub warmup_steps: u64,
    /// Learning rate of the first warm-up step.
    #[config(default = 0.0)]
    pub start_warmup: f64,
    /// SGD momentum (PyTorch semantics: no dampening, the first step's buffer is the gradient).
    #[config(default = 0.9)]
    pub momentum: f64,
    /// L2 weight decay on every parameter (through LARS when it is on).
    #[config(default = 1e-6)]
    pub weight_decay: f64,
    /// Wrap SGD in LARS (apex `LARC`, `clip=False`) as SwAV does.
    #[config(default = true)]
    pub lars: bool,
    /// LARS trust coefficient η.
    #[config(default = 0.001)]
    pub trust_coefficient: f64,
}

impl SwavOptimizerConfig {
    /// The learning rate of optimizer step `step` (1-based) in a run of `total` steps.
    pub fn lr_at(&self, step: u64, total: u64) -> f64 {
        let it = step.saturating_sub(1);
        let warmup = self.warmup_steps.min(total);
        if it < warmup {
            // numpy.linspace(start_warmup, base_lr, warmup)
            return if warmup == 1 {
                self.start_warmup
            } else {
                self.start_warmup
                    + (self.base_lr - self.start_warmup) * it as f64 / (warmup - 1) as f64
            };
        }
        let span = total.saturating_sub(warmup).max(1) as f64;
        let t = (it - warmup) as f64;
        self.final_lr
            + 0.5 * (self.base_lr - self.final_lr) * (1.0 + (std::f64::consts::PI * t / span).cos())
    }

    pub(crate) fn check(&self) -> Result<(), TrainError> {
        let values = [
            self.base_lr,
            self.final_lr,
            self.start_warmup,
            self.weight_decay,
            self.trust_coefficient,
        ];
        if values.iter().any(|v| !(v.is_finite() && *v >= 0.0)) || self.base_lr == 0.0 {
            return Err(TrainError::config(
                "learning rates, weight decay and trust coefficient must be finite and \
                 non-negative, and base_lr positive",
            ));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(TrainError::config(format!(
                "momentum must lie in [0, 1), got {}",
                self.momentum
            )));
        }
        Ok(())
    }

    /// Burn's SGD with PyTorch's momentum; weight decay is left to LARS when it is on.
    pub fn init(&self) -> ModuleOptimizer {
        let momentum = (self.momentum > 0.0).then(|| {
            MomentumConfig::new()
                .with_momentum(self.momentum)
                .with_dampening(0.0)
        });
        let decay = (!self.lars && self.weight_decay > 0.0)
            .then(|| WeightDecayConfig::new(self.weight_decay as f32));
        SgdConfig::new()
            .with_momentum(momentum)
            .with_weight_decay(decay)
            .init()
    }

    /// The LARS transform of every gradient of `module` (nothing without LARS). Computed on
    /// the device, without reading values back.
    pub fn adapt<M: Module>(&self, module: &M, grads: GradientsParams) -> GradientsParams {
        if !self.lars {
            return grads;
        }
        let mut visitor = Lars {
            grads,
            trust: self.trust_coefficient,
            weight_decay: self.weight_decay,
        };
        module.visit(&mut visitor);
        visitor.grads
    }
}

/// apex `LARC.step` (clip off), one parameter at a time.
struct Lars {
    grads: GradientsParams,
    trust: f64,
    weight_decay: f64,
}

/// apex LARC's epsilon in the adaptive rate's denominator.
const LARS_EPS: f64 = 1e-8;

impl ModuleVisitor for Lars {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(grad) = self.grads.remove::<D>(param.id) else {
            return;
        };
        let weight = param.val().inner();
        // [1] each
        let w_norm = weight.clone().square().sum().sqrt();
        let g_norm = grad.clone().square().sum().sqrt();
        let active = w_norm
            .clone()
            .greater_elem(0.0)
            .bool_and(g_norm.clone().greater_elem(0.0));
        let adaptive = w_norm
            .clone()
            .mul_scalar(self.trust)
            .div(g_norm + w_norm.mul_scalar(self.weight_decay).add_scalar(LARS_EPS));
        let scale = adaptive.ones_like().mask_where(active.clone(), adaptive);
        let decay = scale
            .zeros_like()
            .mask_where(active, scale.ones_like().mul_scalar(self.weight_decay));
        let adapted = (grad + weight * decay.reshape([1; D])) * scale.reshape([1; D]);
        self.grads.register(param.id, adapted);
    }
}

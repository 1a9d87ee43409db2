//! The one set of Adam settings and its optimizer, shared by the alignment, IC-GAN and selector
//! loops.

use burn::config::Config;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, ModuleOptimizer};

use crate::error::TrainError;

/// Adam settings; the defaults are Sound2Scene's `torch.optim.Adam(lr=1e-3, weight_decay=1e-5)`
/// with PyTorch's betas and epsilon. Weight decay is L2 added to the gradient (PyTorch Adam),
/// not AdamW's decoupled decay. IC-GAN and the selector start from other values (see their
/// configurations).
#[derive(Config, Debug)]
pub struct AdamSettings {
    /// Learning rate (constant).
    #[config(default = 1e-3)]
    pub lr: f64,
    /// L2 penalty coefficient added to the gradient (0: none).
    #[config(default = 1e-5)]
    pub weight_decay: f64,
    /// Exponential decay of the first moment.
    #[config(default = 0.9)]
    pub beta_1: f32,
    /// Exponential decay of the second moment.
    #[config(default = 0.999)]
    pub beta_2: f32,
    /// Added to the root of the second moment.
    #[config(default = 1e-8)]
    pub epsilon: f32,
}

impl AdamSettings {
    /// Burn's Adam with these settings (the learning rate is given at each step).
    pub fn init(&self) -> ModuleOptimizer {
        let decay =
            (self.weight_decay > 0.0).then(|| WeightDecayConfig::new(self.weight_decay as f32));
        AdamConfig::new()
            .with_beta_1(self.beta_1)
            .with_beta_2(self.beta_2)
            .with_epsilon(self.epsilon)
            .with_weight_decay(decay)
            .init()
    }

    /// Checks the settings of the optimizer called `name` in messages.
    ///
    /// # Errors
    /// [`TrainError::Config`] for a learning rate that is not positive, a negative weight
    /// decay, betas outside `[0, 1)` or an epsilon that is not positive.
    pub fn check(&self, name: &str) -> Result<(), TrainError> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(TrainError::config(format!(
                "{name}'s learning rate must be positive, got {}",
                self.lr
            )));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(TrainError::config(format!(
                "{name}'s weight decay must be non-negative, got {}",
                self.weight_decay
            )));
        }
        if !((0.0..1.0).contains(&self.beta_1) && (0.0..1.0).contains(&self.beta_2)) {
            return Err(TrainError::config(format!(
                "{name}'s Adam betas must lie in [0, 1)"
            )));
        }
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(TrainError::config(format!(
                "{name}'s Adam epsilon must be positive"
            )));
        }
        Ok(())
    }
}

//! The SwAV network: the image encoder's trunk, the projection head and the prototypes.
//!
//! Reference: SwAV `src/resnet50.py`: `forward_backbone` (trunk, global average pool) on the
//! crops grouped by resolution, `projection_head` = `Linear(C, hidden)` → `BatchNorm1d` →
//! ReLU → `Linear(hidden, 128)` (a single `Linear(C, 128)` when `hidden_mlp` is 0), L2
//! normalization, and `prototypes` = `Linear(128, K, bias=False)`, whose rows `main_swav.py`
//! L2-normalizes before every forward pass.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use sound2scene_models::image_encoder::ImageEncoder;
use sound2scene_models::normalize::l2_normalize;

use crate::error::TrainError;

/// Configuration of the [`SwavHead`].
#[derive(Config, Debug)]
pub struct SwavHeadConfig {
    /// Width of the trunk's pooled feature (2048 for ResNet-50).
    pub in_dim: usize,
    /// Hidden width of the projection MLP (2048 official); 0 makes the head one linear layer.
    #[config(default = 2048)]
    pub hidden_dim: usize,
    /// Width of the projected, L2-normalized feature (128 official).
    #[config(default = 128)]
    pub out_dim: usize,
    /// Number of prototypes K (3000 official).
    #[config(default = 3000)]
    pub prototypes: usize,
}

impl SwavHeadConfig {
    /// A randomly initialized head: linear layers as PyTorch's `nn.Linear` (uniform in
    /// `±1/√fan_in`), BatchNorm weight 1 and bias 0.
    pub fn init(&self, device: &Device) -> SwavHead {
        let first_out = if self.hidden_dim == 0 {
            self.out_dim
        } else {
            self.hidden_dim
        };
        SwavHead {
            linear1: LinearConfig::new(self.in_dim, first_out).init(device),
            bn: (self.hidden_dim > 0).then(|| BatchNormConfig::new(self.hidden_dim).init(device)),
            linear2: (self.hidden_dim > 0)
                .then(|| LinearConfig::new(self.hidden_dim, self.out_dim).init(device)),
            prototypes: LinearConfig::new(self.out_dim, self.prototypes)
                .with_bias(false)
                .init(device),
        }
    }
}

/// The projection head and the prototypes (SwAV `projection_head` and `prototypes`).
#[derive(Module, Debug)]
pub struct SwavHead {
    /// `projection_head.0` (or the whole head without a hidden layer).
    pub linear1: Linear,
    /// `projection_head.1`, BatchNorm1d over the hidden units.
    pub bn: Option<BatchNorm>,
    /// `projection_head.3`.
    pub linear2: Option<Linear>,
    /// The prototypes, weight `[out_dim, K]` (Burn stores `Linear` weights transposed, so
    /// prototype `k` is column `k`).
    pub prototypes: Linear,
}

impl SwavHead {
    /// Projects, L2-normalizes and scores against the prototypes.
    ///
    /// # Shapes
    /// - `features`: `[n, in_dim]`
    /// - output: (`[n, out_dim]` unit-norm embeddings, `[n, K]` scores)
    pub fn forward(&self, features: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        // [n, hidden] or [n, out_dim]
        let mut x = self.linear1.forward(features);
        if let (Some(bn), Some(linear2)) = (&self.bn, &self.linear2) {
            // [n, hidden] -> [n, out_dim]
            x = linear2.forward(relu(bn.forward(x)));
        }
        let embedding = l2_normalize(x, 1);
        // [n, K]
        let scores = self.prototypes.forward(embedding.clone());
        (embedding, scores)
    }

    /// The head with every prototype scaled to unit L2 norm, outside the autodiff graph and
    /// with the same parameter id (as `main_swav.py` does before each forward pass).
    pub fn normalize_prototypes(mut self) -> Self {
        self.prototypes.weight = self.prototypes.weight.map(|w| {
            let (autodiff, tracked) = (w.is_autodiff(), w.is_require_grad());
            // [out_dim, K]: prototype k is column k; computed off the autodiff graph.
            let normalized = l2_normalize(w.inner(), 0);
            match (autodiff, tracked) {
                (true, true) => normalized.autodiff().require_grad(),
                (true, false) => normalized.autodiff(),
                (false, _) => normalized,
            }
        });
        self
    }
}

/// The whole SwAV network: f_V's trunk ([`ImageEncoder`]) and the [`SwavHead`].
#[derive(Module, Debug)]
pub struct SwavNetwork {
    /// The trunk with global average pooling; exported alone as the image encoder.
    pub encoder: ImageEncoder,
    /// Projection head and prototypes.
    pub head: SwavHead,
}

/// What [`SwavNetwork::forward`] returns.
#[derive(Debug, Clone)]
pub struct SwavOutput {
    /// Unit-norm projected embeddings, crop-major: `[V · B, out_dim]`.
    pub embedding: Tensor<2>,
    /// Scores against the prototypes, crop-major: `[V · B, K]`.
    pub scores: Tensor<2>,
}

impl SwavNetwork {
    /// Runs the trunk once per resolution (large crops, then small crops, as SwAV groups
    /// crops of one size), concatenates the pooled features and applies the head to all of
    /// them together (one BatchNorm1d batch, as in SwAV).
    ///
    /// # Shapes
    /// - `large`: `[L · B, 3, S, S]`, crop-major
    /// - `small`: `[N · B, 3, s, s]`, crop-major, or `None`
    /// - output: [`SwavOutput`] with `V = L + N` crops
    ///
    /// # Errors
    /// Those of [`ImageEncoder::try_forward`] (wrong channel count, empty axis).
    pub fn forward(
        &self,
        large: Tensor<4>,
        small: Option<Tensor<4>>,
    ) -> Result<SwavOutput, TrainError> {
        // [L·B, C]
        let mut features = self.encoder.try_forward(large)?;
        if let Some(small) = small {
            // [L·B + N·B, C]
            features = Tensor::cat(vec![features, self.encoder.try_forward(small)?], 0);
        }
        let (embedding, scores) = self.head.forward(features);
        Ok(SwavOutput { embedding, scores })
    }
}

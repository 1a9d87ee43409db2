//! The configuration of an IC-GAN run.

use burn::config::Config;
use serde::Serialize;
use sound2scene_models::biggan::{DiscriminatorConfig, GeneratorConfig};

use super::augment::Augmentation;
use super::data::GanData;
use crate::error::TrainError;
use crate::run::{AdamSettings, Fnv, RunConfig};

/// Adam settings of one network with learning rate `lr`; BigGAN-PyTorch's defaults for IC-GAN:
/// betas (0, 0.999) (`G_B1`/`D_B1`, `G_B2`/`D_B2`), epsilon 1e-6 (`--adam_eps`), no weight
/// decay.
pub fn icgan_adam(lr: f64) -> AdamSettings {
    AdamSettings::new()
        .with_lr(lr)
        .with_weight_decay(0.0)
        .with_beta_1(0.0)
        .with_beta_2(0.999)
        .with_epsilon(1e-6)
}

/// Everything that defines an IC-GAN run. Saved as `config.json` in the output directory. The
/// defaults are IC-GAN's ImageNet 128×128 configuration (`icgan_res128.json` over
/// BigGAN-PyTorch's command-line defaults); [`with_architecture`](Self::with_architecture)
/// makes networks small enough to train on a CPU.
#[derive(Config, Debug)]
pub struct GanConfig {
    /// The generator G (its `resolution` is the images' side).
    #[config(default = "GeneratorConfig::new()")]
    pub generator: GeneratorConfig,
    /// The discriminator D (same resolution as G).
    #[config(default = "DiscriminatorConfig::new()")]
    pub discriminator: DiscriminatorConfig,
    /// G's optimizer ([`icgan_adam`] with `G_lr` 4e-5; a file without `weight_decay` has none).
    #[config(default = "icgan_adam(4e-5)")]
    pub g_optimizer: AdamSettings,
    /// D's optimizer ([`icgan_adam`] with `D_lr` 1e-4).
    #[config(default = "icgan_adam(1e-4)")]
    pub d_optimizer: AdamSettings,
    /// Real images per D step, and generated images per D and G step (at least 2: G's batch
    /// norms use batch statistics).
    #[config(default = 64)]
    pub batch_size: usize,
    /// D steps per G step (`num_D_steps`; 1 in `icgan_res128.json`).
    #[config(default = 1)]
    pub d_steps: usize,
    /// Decay of G's exponential moving average (`ema_decay`).
    #[config(default = 0.9999)]
    pub ema_decay: f64,
    /// Before this step (1-based) G_ema is a copy of G (`ema_start`).
    #[config(default = 20000)]
    pub ema_start: u64,
    /// Neighbourhood size of each instance (`k_nn`), itself included.
    #[config(default = 50)]
    pub k_nn: usize,
    /// Standard deviation of the noise z (`z_var`, used as `normal_(0, z_var)`).
    #[config(default = 1.0)]
    pub z_var: f32,
    /// Mirror real images left-right with probability ½ (`hflips`).
    #[config(default = true)]
    pub hflip: bool,
    /// DiffAugment policy (`--DiffAugment`): the transformations every image D scores goes
    /// through, in order, e.g. `["translation", "cutout"]`; none when absent (config files
    /// from before this setting) or empty.
    pub diff_augment: Option<Vec<Augmentation>>,
    /// Weight of the feature-consistency term in G's loss ([`super::feature_loss`], not part
    /// of IC-GAN): the cosine distance between f_V of G's picture and the feature that
    /// conditioned it. Absent or 0: IC-GAN's loss alone. A positive weight needs the image
    /// encoder ([`super::GanSession::with_image_encoder`]).
    pub feature_loss: Option<f64>,
    /// Seeds the initialization and every step's draws.
    #[config(default = 0)]
    pub seed: u64,
    /// Length of the run: train until this many optimizer steps (G steps) in total. Files
    /// written before this name call it `max_steps`, which elsewhere means an early stop.
    #[config(default = 100_000)]
    pub steps: u64,
    /// Write a checkpoint every this many steps (0: only at the end and on a stop).
    #[config(default = 1000)]
    pub checkpoint_every: u64,
    /// Write a sample grid every this many steps (0: never).
    #[config(default = 1000)]
    pub sample_every: u64,
    /// Write a line to `metrics.jsonl` every this many steps (at least 1).
    #[config(default = 1)]
    pub log_every: u64,
    /// Complete checkpoints kept (at least 1).
    #[config(default = 3)]
    pub keep_last: usize,
    /// Instances (rows) in a sample grid.
    #[config(default = 8)]
    pub sample_rows: usize,
    /// Samples per instance (columns after the real image) in a sample grid.
    #[config(default = 4)]
    pub sample_columns: usize,
}

impl RunConfig for GanConfig {
    const RENAMED: &'static [(&'static str, &'static str)] = &[("max_steps", "steps")];

    fn defaults() -> Self {
        Self::new()
    }
}

impl GanConfig {
    /// G and D at `resolution` (32, 64, 128 or 256) with channel width `width` (`G_ch` =
    /// `D_ch`), self-attention at 64×64 from resolution 128 up (as IC-GAN) and none below.
    pub fn with_architecture(mut self, resolution: usize, width: usize) -> Self {
        let attention = if resolution >= 128 { "64" } else { "0" }.to_string();
        self.generator.resolution = resolution;
        self.generator.g_ch = width;
        self.generator.g_attn = attention.clone();
        self.discriminator.resolution = resolution;
        self.discriminator.d_ch = width;
        self.discriminator.d_attn = attention;
        self
    }

    /// G and D conditioned on instance features of size `dim` (2048 for SwAV's ResNet-50;
    /// the output width of a smaller image encoder).
    pub fn with_instance_dim(mut self, dim: usize) -> Self {
        self.generator.instance_dim = Some(dim);
        self.discriminator.instance_dim = Some(dim);
        self
    }

    /// A 64-bit FNV-1a fingerprint (hex) of the settings a resumed run must share with the
    /// run that wrote the checkpoint: networks, optimizers, batch size, D steps, EMA, k-NN,
    /// noise, flips, augmentation and seed. Step limits and the checkpoint, sample and log
    /// cadence may change.
    pub fn fingerprint(&self) -> String {
        fn value<T: Serialize>(v: &T) -> serde_json::Value {
            serde_json::to_value(v).unwrap_or_default()
        }
        let mut identity = serde_json::json!({
            "generator": value(&self.generator),
            "discriminator": value(&self.discriminator),
            "g_optimizer": value(&self.g_optimizer),
            "d_optimizer": value(&self.d_optimizer),
            "batch_size": self.batch_size,
            "d_steps": self.d_steps,
            "ema_decay": self.ema_decay,
            "ema_start": self.ema_start,
            "k_nn": self.k_nn,
            "z_var": self.z_var,
            "hflip": self.hflip,
            "seed": self.seed,
        });
        // Only when set, so that runs from before the setting existed keep their fingerprint.
        for (network, keys) in [
            ("generator", &["feature_scale", "linear_cond"][..]),
            ("discriminator", &["feature_scale"][..]),
        ] {
            if let Some(object) = identity[network].as_object_mut() {
                for key in keys {
                    if object.get(*key).is_some_and(serde_json::Value::is_null) {
                        object.remove(*key);
                    }
                }
            }
        }
        // Likewise weight decay, which the optimizers of IC-GAN runs did not have.
        for optimizer in ["g_optimizer", "d_optimizer"] {
            let decay = identity[optimizer].get("weight_decay");
            if decay.and_then(serde_json::Value::as_f64) == Some(0.0)
                && let Some(object) = identity[optimizer].as_object_mut()
            {
                object.remove("weight_decay");
            }
        }
        if !self.augmentation().is_empty() {
            identity["diff_augment"] = value(&self.augmentation());
        }
        if self.feature_weight() > 0.0 {
            identity["feature_loss"] = value(&self.feature_weight());
        }
        let mut hash = Fnv::new();
        hash.write(identity.to_string().as_bytes());
        hash.hex()
    }

    /// The DiffAugment policy, empty for none.
    pub fn augmentation(&self) -> &[Augmentation] {
        self.diff_augment.as_deref().unwrap_or_default()
    }

    /// The weight of the feature-consistency term, 0 when unset.
    pub fn feature_weight(&self) -> f64 {
        self.feature_loss.unwrap_or(0.0)
    }

    /// Checks the settings against each other and against `data`.
    ///
    /// # Errors
    /// [`TrainError::Config`] naming the first invalid setting.
    pub fn check(&self, data: &GanData) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::config(m));
        self.generator
            .validate()
            .map_err(|e| TrainError::config_caused(format!("generator: {e}"), e))?;
        self.discriminator
            .validate()
            .map_err(|e| TrainError::config_caused(format!("discriminator: {e}"), e))?;
        let (g_res, d_res) = (self.generator.resolution, self.discriminator.resolution);
        if g_res != d_res || g_res != data.resolution() {
            return bad(format!(
                "G's resolution ({g_res}), D's ({d_res}) and the images' ({}) must agree",
                data.resolution()
            ));
        }
        let (g_dim, d_dim) = (
            self.generator.instance_size(),
            self.discriminator.instance_size(),
        );
        if g_dim != d_dim || g_dim != data.dim() {
            return bad(format!(
                "G's instance size ({g_dim}), D's ({d_dim}) and the features' ({}) must agree; \
                 set generator.instance_dim and discriminator.instance_dim to the image \
                 encoder's output width",
                data.dim()
            ));
        }
        if self.batch_size < 2 {
            return bad(format!(
                "batch_size must be at least 2 (G's batch norms use batch statistics), got {}",
                self.batch_size
            ));
        }
        if self.d_steps == 0 || self.k_nn == 0 || self.keep_last == 0 || self.log_every == 0 {
            return bad("d_steps, k_nn, keep_last and log_every must be at least 1".into());
        }
        self.g_optimizer.check("G")?;
        self.d_optimizer.check("D")?;
        if !(0.0..=1.0).contains(&self.ema_decay) {
            return bad(format!(
                "ema_decay must lie in [0, 1], got {}",
                self.ema_decay
            ));
        }
        if !(self.z_var.is_finite() && self.z_var >= 0.0) {
            return bad(format!("z_var must be finite and >= 0, got {}", self.z_var));
        }
        let weight = self.feature_weight();
        if !(weight.is_finite() && weight >= 0.0) {
            return bad(format!(
                "feature_loss must be finite and >= 0, got {weight}"
            ));
        }
        Ok(())
    }
}

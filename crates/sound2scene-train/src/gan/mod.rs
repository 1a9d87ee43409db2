//! IC-GAN training (Casanova et al., NeurIPS 2021), the image synthesizer Sound2Scene builds
//! on: an instance-conditioned BigGAN generator G and discriminator D trained adversarially,
//! each real image drawn from the neighbourhood of the instance whose feature conditions D.
//!
//! Reference: IC-GAN `BigGAN_PyTorch/train_fns.py` (`GAN_training_function`), `losses.py`
//! (hinge losses), `utils.py` (`ema`, the command-line defaults) and
//! `config_files/ImageNet/IC-GAN/icgan_res128.json`. One optimizer step of the loop
//! ([`GanSession::run`]) is:
//!
//! 1. `d_steps` times: draw `batch_size` conditioning instances i uniformly, and for each a
//!    real image x_j with j uniform in i's k-NN neighbourhood ([`knn`]), mirrored left-right
//!    with probability ½ when `hflip`; draw `batch_size` other instances l uniformly with noise
//!    z ~ N(0, z_var²); score `[G(z, h_l) ; x_j]` with features `[h_l ; h_i]` in one pass of D
//!    (fakes first, as the official `G_D` wrapper concatenates them) and take an Adam step on
//!    D's hinge loss `mean(relu(1 − D(x_j, h_i))) + mean(relu(1 + D(G(z, h_l), h_l)))`. G runs
//!    in training mode without gradients (its batch-norm statistics and spectral norms update,
//!    as under the official `torch.no_grad()`).
//! 2. Draw new instances and noise, and take an Adam step on G's hinge loss
//!    `−mean(D(G(z, h_l), h_l))` (D in training mode, its weights not updated), plus, when
//!    [`GanConfig::feature_loss`] is set (not part of IC-GAN), that weight times the cosine
//!    distance between f_V of G's pictures and h_l ([`feature_loss`]).
//! 3. Update the EMA copy G_ema of G (see [`ema`]): copied before `ema_start`, averaged after.
//!
//! With a `diff_augment` policy (the official `--DiffAugment`, see [`augment`]), every image D
//! scores in steps 1 and 2, real or generated, is randomly translated, cut out or recoloured
//! first, differentiably, which keeps D from memorizing a small training set.
//!
//! Every random draw of a step comes from a ChaCha8 stream seeded by `(seed, step)`, and the
//! networks' initialization from `seed`, so a resumed run repeats exactly what an
//! uninterrupted one does. Instances are sampled with replacement rather than by epochs.
//!
//! # Launch
//!
//! ```no_run
//! use burn::tensor::Device;
//! use sound2scene_models::checkpoint::open_image_encoder;
//! use sound2scene_train::feature_cache::FeatureCache;
//! use sound2scene_train::gan::{GanConfig, GanData, GanHooks, GanSession, discover_images};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Device::default();
//! let images = discover_images("samples/training")?;
//! let swav = "checkpoints/swav_800ep_pretrain.pth.tar";
//! let (f_v, _) = open_image_encoder(swav, &Default::default(), &device)?;
//! let cache = FeatureCache::build(&images, &f_v, swav, "out/features", 4096, &device, true)?;
//! let config = GanConfig::new().with_architecture(32, 8).with_steps(1000);
//! let data = GanData::from_files(&images, &cache, config.generator.resolution)?;
//! let summary = GanSession::new(config, data, "out/gan", device)?.run(true, GanHooks::default())?;
//! println!("{} steps, last checkpoint {:?}", summary.steps, summary.last_checkpoint);
//! # Ok(())
//! # }
//! ```
//!
//! # Output directory
//!
//! `config.json` ([`GanConfig`]), `metrics.jsonl` (one [`GanMetricsRecord`] per logged step),
//! `samples/step-NNNNNN.png` (a grid from G_ema: one row per instance, its real image first),
//! and the checkpoints `ckpt-NNNNNN/` with `generator.bpk`, `discriminator.bpk` and
//! `generator_ema.bpk` (burnpack, f32; `sound2scene_models::checkpoint::open_generator` loads
//! G_ema directly), `optimizer_g.bpk` and `optimizer_d.bpk` (Adam moments), `state.json`
//! ([`GanState`]) and `COMPLETE`, with the `latest` pointer (see [`crate::checkpoint`]).

pub mod augment;
pub mod data;
pub mod ema;
pub mod feature_loss;
pub mod hinge;
pub mod knn;

mod config;
mod training;

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use sound2scene_models::biggan::{Discriminator, Generator};
use sound2scene_models::image_encoder::ImageEncoder;

pub use augment::{AugmentDraw, Augmentation};
pub use config::{GanConfig, icgan_adam};
pub use data::{GanData, discover_images, prepare_image};
pub use ema::ema_update;
pub use feature_loss::feature_consistency;
pub use hinge::{hinge_d_loss, hinge_g_loss};
pub use knn::{KnnIndex, knn_cosine};

use crate::control::Outcome;
use crate::error::TrainError;
use crate::progress::{MetricsLog, ProgressMode};
use crate::run::{Hooks, RunState};
use training::Run;

pub use crate::progress::METRICS_FILE;
pub use crate::run::{CONFIG_FILE, STATE_FILE};

/// Folder of the sample grids in the output directory.
pub const SAMPLES_DIR: &str = "samples";
/// File name of G inside a checkpoint.
pub const GENERATOR_FILE: &str = "generator.bpk";
/// File name of D inside a checkpoint.
pub const DISCRIMINATOR_FILE: &str = "discriminator.bpk";
/// File name of G_ema inside a checkpoint (load it with `open_generator`).
pub const GENERATOR_EMA_FILE: &str = "generator_ema.bpk";
/// File name of G's optimizer state inside a checkpoint.
pub const G_OPTIMIZER_FILE: &str = "optimizer_g.bpk";
/// File name of D's optimizer state inside a checkpoint.
pub const D_OPTIMIZER_FILE: &str = "optimizer_d.bpk";
/// Version of [`GanState`] written by this crate.
pub const STATE_FORMAT: u32 = 1;

/// The training state saved in every checkpoint (`state.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanState {
    /// [`STATE_FORMAT`].
    pub format: u32,
    /// Optimizer steps (G steps) done.
    pub step: u64,
    /// [`GanConfig::fingerprint`] of the run.
    pub config_hash: String,
    /// [`GanData::fingerprint`] of the run.
    pub data_hash: String,
    /// Instances in the data set.
    pub instances: usize,
    /// D's hinge loss on real images at the last step (of its last D step).
    pub d_loss_real: Option<f64>,
    /// D's hinge loss on generated images at the last step.
    pub d_loss_fake: Option<f64>,
    /// G's hinge loss at the last step.
    pub g_loss: Option<f64>,
    /// When the checkpoint was written, seconds since the Unix epoch.
    pub saved_at: f64,
}

impl RunState for GanState {
    const FORMAT: u32 = STATE_FORMAT;
    const SETTINGS: &'static str =
        "networks, optimizers, batch size, D steps, EMA, k-NN, noise, flips or seed";
    const DATA: &'static str = "data set";

    fn step(&self) -> u64 {
        self.step
    }
    fn format(&self) -> u32 {
        self.format
    }
    fn config_hash(&self) -> &str {
        &self.config_hash
    }
    fn data_hash(&self) -> &str {
        &self.data_hash
    }
    fn set_saved_at(&mut self, unix_seconds: f64) {
        self.saved_at = unix_seconds;
    }
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanMetricsRecord {
    /// The step just taken (1-based).
    pub step: u64,
    /// D's hinge loss on real images, `mean(relu(1 − D(x, h)))` (of the step's last D step).
    pub d_loss_real: f64,
    /// D's hinge loss on generated images, `mean(relu(1 + D(G(z, h), h)))`.
    pub d_loss_fake: f64,
    /// G's hinge loss, `−mean(D(G(z, h), h))`.
    pub g_loss: f64,
    /// The feature-consistency term `mean(1 − cos(f_V(G(z, h)), h))` (see [`feature_loss`]),
    /// when the run has one; G's whole loss adds it times the weight to `g_loss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_loss: Option<f64>,
    /// Real images through D per second over the step (`batch_size · d_steps` per step).
    pub samples_per_sec: f64,
    /// Wall-clock time of the record, seconds since the Unix epoch.
    pub time: f64,
}

impl GanMetricsRecord {
    /// Reads every record of a GAN metrics log.
    ///
    /// # Errors
    /// [`TrainError::Io`] when the file cannot be read or a line does not parse.
    pub fn read_all(path: impl AsRef<Path>) -> Result<Vec<Self>, TrainError> {
        MetricsLog::read_as(path)
    }
}

/// The draws of one D step: real images with their conditioning instances, and the
/// instances and noise of the generated images.
#[derive(Debug, Clone, PartialEq)]
pub struct DStepBatch {
    /// Conditioning instance i of each real image, `[batch]`.
    pub real_instances: Vec<usize>,
    /// The neighbour j of i whose image is shown, `[batch]`.
    pub real_images: Vec<usize>,
    /// Whether each real image is mirrored, `[batch]`.
    pub flips: Vec<bool>,
    /// The real images, `[batch, 3, res, res]` in `[-1, 1]`, row-major.
    pub real_pixels: Vec<f32>,
    /// Conditioning instance of each generated image, `[batch]`.
    pub fake_instances: Vec<usize>,
    /// The noise, `[batch, dim_z]` row-major.
    pub z: Vec<f32>,
    /// DiffAugment draws for the images D scores, generated ones first then real ones
    /// (`[2 × batch]`); empty without a policy.
    pub augment: Vec<AugmentDraw>,
}

/// Everything one optimizer step draws (a function of the seed and the step).
#[derive(Debug, Clone, PartialEq)]
pub struct GanBatch {
    /// The D steps, in order.
    pub d_steps: Vec<DStepBatch>,
    /// Conditioning instance of each image G is trained on, `[batch]`.
    pub g_instances: Vec<usize>,
    /// G step noise, `[batch, dim_z]` row-major.
    pub g_z: Vec<f32>,
    /// G step DiffAugment draws, `[batch]`; empty without a policy.
    pub g_augment: Vec<AugmentDraw>,
}

/// Sent to [`Hooks::on_step`] after every optimizer step.
#[derive(Debug, Clone, PartialEq)]
pub struct GanStepReport {
    /// Steps done, this one included (1-based).
    pub step: u64,
    /// D's hinge loss on real images (its last D step).
    pub d_loss_real: f64,
    /// D's hinge loss on generated images (its last D step).
    pub d_loss_fake: f64,
    /// G's hinge loss.
    pub g_loss: f64,
    /// The feature-consistency term, when the run has one.
    pub feature_loss: Option<f64>,
    /// Real images through D per second over this step.
    pub samples_per_sec: f64,
}

/// Ways to watch and steer an IC-GAN run: each step's draws (tests corrupt them) and
/// [`GanStepReport`]s (see [`Hooks`]; IC-GAN has no epoch hook).
pub type GanHooks = Hooks<GanBatch, GanStepReport>;

/// The result of a run.
#[derive(Debug)]
pub struct GanSummary {
    /// How the run ended ([`Outcome::MaxSteps`] when all `steps` were done).
    pub outcome: Outcome,
    /// Steps done in total (a resumed run counts the earlier ones).
    pub steps: u64,
    /// The newest checkpoint written or resumed from.
    pub last_checkpoint: Option<PathBuf>,
    /// The checkpoint this run resumed from.
    pub resumed_from: Option<PathBuf>,
    /// The last sample grid written.
    pub last_samples: Option<PathBuf>,
    /// The last step's losses, if a step ran or was resumed.
    pub last_losses: Option<(f64, f64, f64)>,
    /// The final G, in inference mode on the plain device.
    pub generator: Generator,
    /// The final D, in inference mode on the plain device.
    pub discriminator: Discriminator,
    /// The final G_ema, in inference mode on the plain device.
    pub generator_ema: Generator,
}

/// An IC-GAN run: configuration, data, output directory and device.
#[derive(Debug)]
pub struct GanSession {
    config: GanConfig,
    data: GanData,
    out_dir: PathBuf,
    device: Device,
    progress: ProgressMode,
    image_encoder: Option<ImageEncoder>,
}

impl GanSession {
    /// Checks the configuration against the data and prepares a run writing to `out_dir` on
    /// `device` (its plain version; gradients use its autodiff version).
    ///
    /// # Errors
    /// [`TrainError::Config`] for an invalid configuration ([`GanConfig::check`]).
    pub fn new(
        config: GanConfig,
        data: GanData,
        out_dir: impl Into<PathBuf>,
        device: Device,
    ) -> Result<Self, TrainError> {
        config.check(&data)?;
        Ok(Self {
            config,
            data,
            out_dir: out_dir.into(),
            device,
            progress: ProgressMode::Auto,
            image_encoder: None,
        })
    }

    /// The frozen image encoder f_V the features were computed with, which the
    /// feature-consistency term ([`GanConfig::feature_loss`]) re-encodes G's pictures with.
    /// Unused when the term's weight is 0.
    pub fn with_image_encoder(mut self, f_v: ImageEncoder) -> Self {
        self.image_encoder = Some(f_v);
        self
    }

    /// When to draw the progress bar (default: when stderr is a terminal).
    pub fn with_progress(mut self, progress: ProgressMode) -> Self {
        self.progress = progress;
        self
    }

    /// Trains until `steps`, a stop request, or an error.
    ///
    /// With `resume`, the run continues from the newest complete checkpoint of the output
    /// directory (or starts afresh when there is none) and reaches the same weights as an
    /// uninterrupted run; without it, an output directory holding checkpoints is refused.
    ///
    /// # Errors
    /// [`TrainError::NonFiniteLoss`] / [`TrainError::NonFiniteGradient`] when a loss or
    /// gradient is not finite (nothing more is written; the last complete checkpoint stays);
    /// [`TrainError::Checkpoint`] when a checkpoint cannot be written or read;
    /// [`TrainError::ResumeMismatch`] when the checkpoint was made with another configuration
    /// or data; [`TrainError::Config`] for an output directory with checkpoints without
    /// `resume`; model errors as they occur.
    pub fn run(self, resume: bool, hooks: GanHooks) -> Result<GanSummary, TrainError> {
        Run::start(self, resume)?.train(hooks)
    }
}

/// Trains IC-GAN with `config` on `data`, writing to `out_dir`; see [`GanSession::run`].
///
/// # Errors
/// Those of [`GanSession::new`] and [`GanSession::run`].
pub fn train_gan(
    config: &GanConfig,
    data: GanData,
    out_dir: impl AsRef<Path>,
    device: &Device,
    resume: bool,
    hooks: GanHooks,
) -> Result<GanSummary, TrainError> {
    GanSession::new(
        config.clone(),
        data,
        out_dir.as_ref().to_path_buf(),
        device.clone(),
    )?
    .run(resume, hooks)
}

/// Randomly initialized G and D of `config` on `device`, the same for the same seed: the
/// device's generator is seeded and every parameter materialized under a process-wide lock.
pub fn init_networks(config: &GanConfig, device: &Device) -> (Generator, Discriminator) {
    let _guard = crate::init::init_lock();
    device.seed(config.seed);
    let g = config.generator.init(device);
    crate::init::materialize(&g);
    let d = config.discriminator.init(device);
    crate::init::materialize(&d);
    (g, d)
}

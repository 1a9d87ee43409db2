//! Self-supervised training of the image encoder f_V with SwAV (Caron et al., NeurIPS 2020),
//! the method behind the `swav_800ep_pretrain` weights Sound2Scene uses.
//!
//! Reference: SwAV `main_swav.py`, `src/multicropdataset.py` and `src/resnet50.py`, on one
//! process. Every step takes a batch of B images, makes `L` large and `N` small crops of each
//! ([`augment`]), runs the trunk per resolution and the projection head and prototypes on all
//! crops ([`head`]), computes Sinkhorn codes of the crops of `crops_for_assign` and the
//! swapped-prediction loss ([`sinkhorn`]), zeroes the prototypes' gradient during the first
//! `freeze_prototypes_steps` steps, and takes an SGD + LARS step on a warm-up + cosine learning
//! rate ([`optim`]). The prototypes are L2-normalized before every forward pass.
//!
//! # Collapse to `ln K`
//!
//! The loss has a trivial fixed point: when all scores of a crop are equal, its Sinkhorn codes
//! are uniform, the best prediction of uniform codes is uniform, and the gradient vanishes
//! with the loss at exactly `ln K`. A run falls into it when the views of an image share too
//! little for a young trunk to predict one's codes from the other's (the best prediction of
//! unpredictable codes is their batch average, uniform by equipartition), and it can reach it
//! exactly when the embeddings have room to turn away from every prototype: with `K` at or
//! below `feat_dim` (null space of the prototypes) or not far above it (the prototypes'
//! weakest directions). The official setting (3000 prototypes on 128 dimensions, 224-pixel
//! ImageNet crops) has neither problem; 32-pixel images of a few flat colours under the
//! official colour distortion with 32 prototypes on 128 dimensions have both.
//! [`SwavConfig::narrow`] and [`MultiCropConfig::low_resolution`] avoid them.
//!
//! Left out: SwAV's feature queue (`--queue_length`, used for small batches after epoch 15),
//! mixed precision and synchronized BatchNorm across GPUs.
//!
//! The run is exactly resumable: the batch of step `t` and all its augmentations are functions
//! of `(seed, t)` ([`images::SwavImages::batch_indices`], [`augment::crop_seed`]), the learning
//! rate a function of `t`, and a checkpoint holds the weights, BatchNorm statistics and SGD
//! momentum buffers.
//!
//! # Launch
//!
//! ```no_run
//! use burn::tensor::Device;
//! use sound2scene_train::swav::{SwavConfig, SwavHooks, SwavSession, images::SwavImages};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let images = SwavImages::from_dir("frames/")?;
//! // ResNet-18 layout of base width 8 on 32-pixel crops: trains on a CPU.
//! let config = SwavConfig::narrow(32, 8).with_batch_size(16).with_steps(2000);
//! let summary = SwavSession::new(config, images, "out/swav", Device::default())?
//!     .run(false, SwavHooks::default())?;
//! // `open_image_encoder` loads the trunk.
//! println!("trunk: {:?}", summary.image_encoder);
//! # Ok(())
//! # }
//! ```
//!
//! # Output directory
//!
//! `config.json` ([`SwavConfig`]), `metrics.jsonl` (one step record per `log_every` steps;
//! `samples_per_sec` counts images, each giving `L + N` crops), checkpoints `ckpt-NNNNNN/` with
//! `image_encoder.bpk` (burnpack, [`NetworkKind::ImageEncoder`], loadable by
//! `sound2scene_models::checkpoint::open_image_encoder`), `head.bpk` (projection head and
//! prototypes), `optimizer.bpk` (momentum buffers), `state.json` ([`SwavState`]) and
//! `COMPLETE`, and the `latest` pointer (see [`crate::checkpoint`]).

pub mod augment;
pub mod head;
pub mod images;
pub mod optim;
pub mod sinkhorn;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use burn::config::Config;
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use sound2scene_models::burnpack::{CONFIG_KEY, NETWORK_KEY, NetworkKind};
use sound2scene_models::image_encoder::ImageEncoderConfig;
use sound2scene_models::resnet::{BlockKind, ResNetConfig};

use self::augment::{CropBatch, MultiCropConfig};
use self::head::{SwavHead, SwavHeadConfig, SwavNetwork};
use self::images::SwavImages;
use self::optim::SwavOptimizerConfig;
use self::sinkhorn::{SwavLossSettings, swapped_prediction_loss};
use crate::control::{Control, Outcome};
use crate::error::TrainError;
use crate::finite::all_finite;
use crate::progress::{MetricsRecord, ProgressMode, StepBar};
use crate::run::{
    self, Fnv, Hooks, RunConfig, RunDir, RunState, read_optimizer, read_state, save_network,
    write_optimizer,
};

pub use crate::run::{CONFIG_FILE, STATE_FILE};

/// Projected feature width of [`SwavConfig::narrow`] (official: 128 with 3000 prototypes).
pub const NARROW_FEAT_DIM: usize = 32;
/// Prototypes of [`SwavConfig::narrow`]: twice [`NARROW_FEAT_DIM`], so that no embedding can
/// be orthogonal to all of them.
pub const NARROW_PROTOTYPES: usize = 64;

/// File name of the trunk (an image encoder) inside a checkpoint.
pub const IMAGE_ENCODER_FILE: &str = "image_encoder.bpk";
/// File name of the projection head and prototypes inside a checkpoint.
pub const HEAD_FILE: &str = "head.bpk";
/// File name of the optimizer state inside a checkpoint.
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";
/// Version of [`SwavState`] written by this module.
pub const STATE_FORMAT: u32 = 1;
/// The network name stored in `head.bpk`'s metadata.
pub const HEAD_NETWORK: &str = "swav_head";

/// Everything that defines a SwAV run. Saved as `config.json` in the output directory.
#[derive(Config, Debug)]
pub struct SwavConfig {
    /// The trunk f_V (ResNet-50 in SwAV and Sound2Scene); exported as an image encoder.
    #[config(default = "ImageEncoderConfig::new()")]
    pub encoder: ImageEncoderConfig,
    /// Hidden width of the projection head (`--hidden_mlp`, 2048; 0: one linear layer).
    #[config(default = 2048)]
    pub hidden_dim: usize,
    /// Width of the projected feature (`--feat_dim`, 128).
    #[config(default = 128)]
    pub feat_dim: usize,
    /// Number of prototypes K (`--nmb_prototypes`, 3000).
    #[config(default = 3000)]
    pub prototypes: usize,
    /// Softmax temperature of the predictions (`--temperature`, 0.1).
    #[config(default = 0.1)]
    pub temperature: f64,
    /// Sinkhorn regularization (`--epsilon`, 0.05).
    #[config(default = 0.05)]
    pub epsilon: f64,
    /// Sinkhorn-Knopp iterations (`--sinkhorn_iterations`, 3).
    #[config(default = 3)]
    pub sinkhorn_iterations: usize,
    /// The multi-crop augmentation (official: 2 × 224 and 6 × 96).
    #[config(default = "MultiCropConfig::new()")]
    pub crops: MultiCropConfig,
    /// Crops whose codes are predicted (`--crops_for_assign`, the two large crops).
    #[config(default = "vec![0, 1]")]
    pub crops_for_assign: Vec<usize>,
    /// Steps (from the first) during which the prototypes get no gradient
    /// (`--freeze_prototypes_niters`, 313).
    #[config(default = 313)]
    pub freeze_prototypes_steps: u64,
    /// SGD + LARS and the learning-rate schedule.
    #[config(default = "SwavOptimizerConfig::new()")]
    pub optimizer: SwavOptimizerConfig,
    /// Images per step B (`--batch_size`, 64 per GPU); each gives `L + N` crops.
    #[config(default = 64)]
    pub batch_size: usize,
    /// Length of the run in optimizer steps (sets the cosine schedule).
    #[config(default = 10000)]
    pub steps: u64,
    /// Stop after this many steps in total (with a checkpoint) without changing the schedule;
    /// a later run with `resume` continues. `None`: run all `steps`.
    pub max_steps: Option<u64>,
    /// Seeds the initialization, every epoch's order and every crop.
    #[config(default = 31)]
    pub seed: u64,
    /// Write a checkpoint every this many steps (0: only at the end and on a stop).
    #[config(default = 1000)]
    pub checkpoint_every: u64,
    /// Complete checkpoints kept (at least 1).
    #[config(default = 3)]
    pub keep_last: usize,
    /// Write a step line to `metrics.jsonl` every this many steps (at least 1).
    #[config(default = 1)]
    pub log_every: u64,
}

impl SwavConfig {
    /// A configuration for CPU-sized runs on small images: a ResNet-18 layout (basic blocks
    /// `[2, 2, 2, 2]`) of base width `width` (output `8 · width` channels), a projection head
    /// of that hidden width to `min(`[`NARROW_FEAT_DIM`]`, 8 · width)`, [`NARROW_PROTOTYPES`]
    /// prototypes, and the softened multi-crop of [`MultiCropConfig::low_resolution`] on crops
    /// of `resolution` pixels; the exported encoder takes `resolution`×`resolution` images
    /// ([`ImageEncoderConfig::input_side`]). Everything else official.
    ///
    /// The prototypes outnumber the feature width (official: 3000 on 128): with `K` not well
    /// above `feat_dim` the head can turn the embeddings away from every prototype, which
    /// makes all scores equal and the loss exactly `ln K` (see the module documentation).
    pub fn narrow(resolution: usize, width: usize) -> Self {
        let resnet = ResNetConfig::new(BlockKind::Basic, [2, 2, 2, 2]).with_base_width(width);
        let out = resnet.out_channels();
        Self::new()
            .with_encoder(
                ImageEncoderConfig::new()
                    .with_resnet(resnet)
                    .with_input_side(Some(resolution)),
            )
            .with_hidden_dim(out)
            .with_feat_dim(out.min(NARROW_FEAT_DIM))
            .with_prototypes(NARROW_PROTOTYPES)
            .with_crops(MultiCropConfig::low_resolution(resolution))
    }

    /// The head's configuration (input width from the trunk).
    pub fn head_config(&self) -> SwavHeadConfig {
        SwavHeadConfig::new(self.encoder.resnet.out_channels())
            .with_hidden_dim(self.hidden_dim)
            .with_out_dim(self.feat_dim)
            .with_prototypes(self.prototypes)
    }

    /// The loss settings for a batch of `batch_size` images.
    pub fn loss_settings(&self) -> SwavLossSettings {
        SwavLossSettings {
            batch: self.batch_size,
            crops_for_assign: self.crops_for_assign.clone(),
            temperature: self.temperature,
            epsilon: self.epsilon,
            sinkhorn_iterations: self.sinkhorn_iterations,
        }
    }

    /// A 64-bit FNV-1a fingerprint (hex) of the settings a resumed run must share with the run
    /// that wrote the checkpoint: everything but `max_steps`, `checkpoint_every`, `keep_last`
    /// and `log_every`.
    pub fn fingerprint(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            for key in ["max_steps", "checkpoint_every", "keep_last", "log_every"] {
                map.remove(key);
            }
        }
        let mut hash = Fnv::new();
        hash.write(value.to_string().as_bytes());
        hash.hex()
    }

    fn check(&self, images: &SwavImages) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::config(m));
        self.crops.check()?;
        self.optimizer.check()?;
        if self.batch_size < 2 {
            return bad(format!(
                "batch_size must be at least 2, got {}",
                self.batch_size
            ));
        }
        if images.len() < self.batch_size {
            return bad(format!(
                "{} images cannot fill a batch of {}; lower the batch size or add images",
                images.len(),
                self.batch_size
            ));
        }
        if self.steps == 0 {
            return bad("steps must be at least 1".into());
        }
        if self.keep_last == 0 || self.log_every == 0 {
            return bad("keep_last and log_every must be at least 1".into());
        }
        if self.feat_dim == 0 || self.prototypes == 0 {
            return bad("feat_dim and prototypes must be at least 1".into());
        }
        if !(self.temperature > 0.0 && self.epsilon > 0.0) {
            return bad("temperature and epsilon must be positive".into());
        }
        if self.crops_for_assign.is_empty()
            || self
                .crops_for_assign
                .iter()
                .any(|&c| c >= self.crops.crops())
        {
            return bad(format!(
                "crops_for_assign {:?} must name crops among the {}",
                self.crops_for_assign,
                self.crops.crops()
            ));
        }
        if self.encoder.resnet.in_channels != 3 {
            return bad("the image encoder must take 3 channels".into());
        }
        Ok(())
    }
}

impl RunConfig for SwavConfig {
    fn defaults() -> Self {
        Self::new()
    }
}

/// The training state saved in every checkpoint (`state.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwavState {
    /// [`STATE_FORMAT`].
    pub format: u32,
    /// Optimizer steps done.
    pub step: u64,
    /// The loss of the last step (nats).
    pub last_loss: Option<f64>,
    /// [`SwavConfig::fingerprint`] of the run.
    pub config_hash: String,
    /// [`SwavImages::fingerprint`] of the run.
    pub data_hash: String,
    /// Images in the data set.
    pub images: usize,
    /// When the checkpoint was written, seconds since the Unix epoch.
    pub saved_at: f64,
}

impl RunState for SwavState {
    const FORMAT: u32 = STATE_FORMAT;
    const SETTINGS: &'static str =
        "only max_steps, checkpoint_every, keep_last and log_every may change";
    const DATA: &'static str = "image set";

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

/// Sent to [`Hooks::on_step`] after every optimizer step.
#[derive(Debug, Clone, PartialEq)]
pub struct SwavStepReport {
    /// Optimizer steps done, this one included (1-based).
    pub step: u64,
    /// The epoch (0-based) of the step.
    pub epoch: u64,
    /// The step's loss (nats).
    pub loss: f64,
    /// Images per second over this step, data wait included.
    pub images_per_sec: f64,
    /// Learning rate used.
    pub lr: f64,
    /// Whether the prototypes were frozen in this step.
    pub prototypes_frozen: bool,
}

/// Ways to watch and steer a SwAV run: its crops and [`SwavStepReport`]s (see [`Hooks`]; SwAV
/// has no epoch hook).
pub type SwavHooks = Hooks<CropBatch, SwavStepReport>;

/// The result of a run.
#[derive(Debug)]
pub struct SwavSummary {
    /// How the run ended ([`Outcome::Finished`] after `steps`, [`Outcome::MaxSteps`] at
    /// `max_steps`).
    pub outcome: Outcome,
    /// Optimizer steps done in total (a resumed run counts the earlier ones).
    pub steps: u64,
    /// The loss of the last step (nats).
    pub last_loss: Option<f64>,
    /// The newest checkpoint written or resumed from.
    pub last_checkpoint: Option<PathBuf>,
    /// Its trunk, loadable by `open_image_encoder`.
    pub image_encoder: Option<PathBuf>,
    /// The checkpoint this run resumed from.
    pub resumed_from: Option<PathBuf>,
    /// The final network, in inference mode on the plain (non-autodiff) device.
    pub network: SwavNetwork,
}

/// A SwAV run: configuration, images, output directory and device.
#[derive(Debug)]
pub struct SwavSession {
    config: SwavConfig,
    images: SwavImages,
    out_dir: PathBuf,
    device: Device,
    progress: ProgressMode,
}

impl SwavSession {
    /// Checks the configuration against the images and prepares a run writing to `out_dir` on
    /// `device` (gradients use its autodiff version).
    ///
    /// # Errors
    /// [`TrainError::Config`] for an invalid configuration or fewer images than a batch.
    pub fn new(
        config: SwavConfig,
        images: SwavImages,
        out_dir: impl Into<PathBuf>,
        device: Device,
    ) -> Result<Self, TrainError> {
        config.check(&images)?;
        Ok(Self {
            config,
            images,
            out_dir: out_dir.into(),
            device,
            progress: ProgressMode::Auto,
        })
    }

    /// When to draw the progress bar (default: when stderr is a terminal).
    pub fn with_progress(mut self, progress: ProgressMode) -> Self {
        self.progress = progress;
        self
    }

    /// Trains until `steps` or `max_steps` are done, a stop is requested, or an error.
    ///
    /// With `resume`, the run continues from the newest complete checkpoint of the output
    /// directory (or starts afresh when there is none) and reaches the same weights as an
    /// uninterrupted run; without it, an output directory that already holds checkpoints is
    /// refused.
    ///
    /// # Errors
    /// [`TrainError::NonFiniteLoss`] / [`TrainError::NonFiniteGradient`] when a step's loss or
    /// gradient is not finite (the step is not applied; earlier checkpoints stay);
    /// [`TrainError::Checkpoint`] when a checkpoint cannot be written or read;
    /// [`TrainError::ResumeMismatch`] when the checkpoint was made with another configuration
    /// or image set; [`TrainError::Config`] for a used output directory without `resume`;
    /// [`TrainError::Data`] for an undecodable image.
    pub fn run(self, resume: bool, hooks: SwavHooks) -> Result<SwavSummary, TrainError> {
        Run::start(self, resume)?.train(hooks)
    }
}

/// Trains with `config` on `images`, writing to `out_dir`; see [`SwavSession::run`].
///
/// # Errors
/// Those of [`SwavSession::new`] and [`SwavSession::run`].
pub fn train_swav(
    config: &SwavConfig,
    images: SwavImages,
    out_dir: impl AsRef<Path>,
    device: &Device,
    resume: bool,
    hooks: SwavHooks,
) -> Result<SwavSummary, TrainError> {
    SwavSession::new(
        config.clone(),
        images,
        out_dir.as_ref().to_path_buf(),
        device.clone(),
    )?
    .run(resume, hooks)
}

/// A randomly initialized network of `config` on `device`, the same for the same seed: the
/// device's generator is seeded and every parameter materialized under a process-wide lock.
pub fn init_network(config: &SwavConfig, device: &Device) -> SwavNetwork {
    crate::init::seeded(device, config.seed, |device| SwavNetwork {
        encoder: config.encoder.init(device),
        head: config.head_config().init(device),
    })
}

/// Writes the head with its configuration to a burnpack file.
///
/// # Errors
/// [`TrainError::Checkpoint`] when the file cannot be written.
pub fn save_head(head: &SwavHead, config: &SwavHeadConfig, path: &Path) -> Result<(), TrainError> {
    let failed = |e: &dyn std::fmt::Display| e.to_string();
    let json = serde_json::to_string(config)
        .map_err(|e| TrainError::checkpoint_caused(path, failed(&e), e))?;
    let mut store = BurnpackStore::from_file(path)
        .auto_extension(false)
        .overwrite(true)
        .metadata(NETWORK_KEY, HEAD_NETWORK)
        .metadata(CONFIG_KEY, json);
    head.save_into(&mut store)
        .map_err(|e| TrainError::checkpoint_caused(path, failed(&e), e))
}

/// Reads a head written by [`save_head`] (every tensor must fit).
///
/// # Errors
/// [`TrainError::Checkpoint`] for a missing file or tensors that do not fit `config`.
pub fn load_head(
    path: &Path,
    config: &SwavHeadConfig,
    device: &Device,
) -> Result<SwavHead, TrainError> {
    if !path.is_file() {
        return Err(TrainError::checkpoint(path, "missing"));
    }
    let mut head = {
        let _guard = crate::init::init_lock();
        config.init(device)
    };
    let mut store = BurnpackStore::from_file(path).auto_extension(false);
    let result = head
        .load_from(&mut store)
        .map_err(|e| TrainError::checkpoint_caused(path, e.to_string(), e))?;
    if !result.is_success() || !result.missing.is_empty() || !result.unused.is_empty() {
        return Err(TrainError::checkpoint(
            path,
            format!(
                "tensors do not fit the head configuration: missing {:?}, unused {:?}, errors {:?}",
                result.missing, result.unused, result.errors
            ),
        ));
    }
    Ok(head)
}

/// The network of a checkpoint directory written by a run of `config`.
///
/// # Errors
/// [`TrainError::Checkpoint`] or [`TrainError::Model`] when a file is missing or does not fit.
pub fn load_network(
    dir: &Path,
    config: &SwavConfig,
    device: &Device,
) -> Result<SwavNetwork, TrainError> {
    let encoder = run::load_network(
        &dir.join(IMAGE_ENCODER_FILE),
        NetworkKind::ImageEncoder,
        device,
        |c: &ImageEncoderConfig, d| c.init(d),
    )?;
    let head = load_head(&dir.join(HEAD_FILE), &config.head_config(), device)?;
    Ok(SwavNetwork { encoder, head })
}

/// A run in progress.
struct Run {
    config: SwavConfig,
    /// Shared with the crop-making thread.
    images: Arc<SwavImages>,
    out: RunDir,
    progress: ProgressMode,
    /// The autodiff version of the session's device.
    ad_device: Device,
    model: SwavNetwork,
    optim: ModuleOptimizer,
    state: SwavState,
    /// The step of the newest checkpoint on disk (written or resumed from).
    saved_step: Option<u64>,
}

impl Run {
    fn start(session: SwavSession, resume: bool) -> Result<Self, TrainError> {
        let SwavSession {
            config,
            images,
            out_dir,
            device,
            progress,
        } = session;
        let start = RunDir::prepare(out_dir, resume)?;
        let device = device.inner();
        let ad_device = device.clone().autodiff();
        let fresh = SwavState {
            format: STATE_FORMAT,
            step: 0,
            last_loss: None,
            config_hash: config.fingerprint(),
            data_hash: images.fingerprint().to_string(),
            images: images.len(),
            saved_at: 0.0,
        };
        let optim = config.optimizer.init();
        let (model, optim, state) = match start.checkpoint() {
            Some(dir) => load_checkpoint(dir, &config, &fresh, optim, &device)?,
            None => (init_network(&config, &device), optim, fresh),
        };
        let saved_step = start.checkpoint().map(|_| state.step);
        let out = start.open(&config, &state, config.keep_last, config.log_every)?;
        Ok(Self {
            // `train` moves the parameters to the autodiff backend, tracked, with the ids the
            // optimizer state refers to.
            model: model.train(),
            saved_step,
            config,
            images: Arc::new(images),
            out,
            progress,
            ad_device,
            optim,
            state,
        })
    }

    /// The step at which this run stops.
    fn target(&self) -> u64 {
        self.config
            .max_steps
            .map_or(self.config.steps, |m| m.min(self.config.steps))
    }

    fn train(mut self, mut hooks: SwavHooks) -> Result<SwavSummary, TrainError> {
        let bar = StepBar::new(self.progress, self.state.step, self.target());
        let result = self.train_steps(&mut hooks, &bar);
        bar.finish();
        let outcome = result?;
        let last_checkpoint = self.out.last_checkpoint().map(Path::to_path_buf);
        let image_encoder = last_checkpoint.as_ref().map(|d| d.join(IMAGE_ENCODER_FILE));
        Ok(SwavSummary {
            outcome,
            steps: self.state.step,
            last_loss: self.state.last_loss,
            last_checkpoint,
            image_encoder,
            resumed_from: self.out.resumed_from().map(Path::to_path_buf),
            network: self.model.valid(),
        })
    }

    /// Why the run should end now, if it should.
    fn stop_requested(&self, hooks: &SwavHooks) -> Option<Outcome> {
        match hooks.stop_requested(self.state.step, self.config.max_steps) {
            Some(Outcome::Stopped) => Some(Outcome::Stopped),
            _ if self.state.step >= self.config.steps => Some(Outcome::Finished),
            limit => limit,
        }
    }

    /// Saves unless the current step is already on disk.
    fn save_if_needed(&mut self) -> Result<(), TrainError> {
        if self.saved_step != Some(self.state.step) {
            self.save()?;
        }
        Ok(())
    }

    fn train_steps(&mut self, hooks: &mut SwavHooks, bar: &StepBar) -> Result<Outcome, TrainError> {
        if let Some(outcome) = self.stop_requested(hooks) {
            self.save_if_needed()?;
            return Ok(outcome);
        }
        let (first, target) = (self.state.step + 1, self.target());
        let images = Arc::clone(&self.images);
        let (crops, batch, seed) = (
            self.config.crops.clone(),
            self.config.batch_size,
            self.config.seed,
        );
        let per_epoch = images.steps_per_epoch(batch).max(1);
        std::thread::scope(|scope| {
            // Crops of the next step are made while the current one trains.
            let (sender, receiver) = sync_channel(1);
            scope.spawn(move || {
                for step in first..=target {
                    if sender
                        .send(images.crops(&crops, batch, seed, step))
                        .is_err()
                    {
                        break;
                    }
                }
            });
            let mut last = Instant::now();
            for step in first..=target {
                let mut crops = receiver.recv().map_err(|_| TrainError::Data {
                    path: self.out.path().to_path_buf(),
                    reason: "the crop-making thread ended early".into(),
                    source: None,
                })??;
                hooks.before_batch(step, &mut crops);
                let frozen = step <= self.config.freeze_prototypes_steps;
                let lr = self.config.optimizer.lr_at(step, self.config.steps);
                let loss = self.step(crops, step, lr, frozen)?;
                let now = Instant::now();
                let images_per_sec = batch as f64 / (now - last).as_secs_f64().max(1e-9);
                last = now;
                self.state.step = step;
                self.state.last_loss = Some(loss);
                let epoch = (step - 1) / per_epoch;
                self.out.log_step(step, || {
                    MetricsRecord::step(step, epoch, loss, images_per_sec, lr)
                })?;
                bar.update(
                    step,
                    format!("loss {loss:.4} lr {lr:.4} {images_per_sec:.1} images/s"),
                );
                let report = SwavStepReport {
                    step,
                    epoch,
                    loss,
                    images_per_sec,
                    lr,
                    prototypes_frozen: frozen,
                };
                if hooks.after_step(&report) == Control::Abort {
                    return Ok(Outcome::Aborted);
                }
                if let Some(outcome) = self.stop_requested(hooks) {
                    self.save_if_needed()?;
                    return Ok(outcome);
                }
                let every = self.config.checkpoint_every;
                if every > 0 && step.is_multiple_of(every) {
                    self.save()?;
                }
            }
            self.save_if_needed()?;
            Ok(self.stop_requested(hooks).unwrap_or(Outcome::Finished))
        })
    }

    /// One optimizer step on `crops`; returns its loss. Nothing is applied when the loss or a
    /// gradient is not finite.
    fn step(
        &mut self,
        crops: CropBatch,
        step: u64,
        lr: f64,
        frozen: bool,
    ) -> Result<f64, TrainError> {
        let b = crops.batch();
        let large = Tensor::<4>::from_data(
            TensorData::new(
                crops.large,
                [crops.large_count * b, 3, crops.large_size, crops.large_size],
            ),
            &self.ad_device,
        );
        let small = (crops.small_count > 0).then(|| {
            Tensor::<4>::from_data(
                TensorData::new(
                    crops.small,
                    [crops.small_count * b, 3, crops.small_size, crops.small_size],
                ),
                &self.ad_device,
            )
        });
        let mut model = self.model.clone();
        model.head = model.head.normalize_prototypes();
        // [V·B, K]
        let scores = model.forward(large, small)?.scores;
        let mut settings = self.config.loss_settings();
        settings.batch = b;
        let loss = swapped_prediction_loss(scores, &settings)?;
        let value = f64::from(loss.clone().inner().into_scalar::<f32>());
        if !value.is_finite() {
            return Err(TrainError::NonFiniteLoss { step });
        }
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        if frozen {
            // SwAV sets the prototypes' gradient to None: no update, no momentum, no decay.
            let _ = grads.remove::<2>(model.head.prototypes.weight.id);
        }
        if !all_finite(&model, Some(&grads)) {
            return Err(TrainError::NonFiniteGradient { step });
        }
        let grads = self.config.optimizer.adapt(&model, grads);
        self.model = self.optim.step(lr, model, grads);
        Ok(value)
    }

    /// Writes the checkpoint of the current step and prunes old ones. Returns its directory.
    fn save(&mut self) -> Result<PathBuf, TrainError> {
        // Fold pending BatchNorm statistic updates in (see `align`): shared with `self.model`.
        drop(self.model.valid());
        let finite = all_finite(&self.model, None);
        let (model, optim, config) = (&self.model, &self.optim, &self.config);
        let dir = self.out.save(&mut self.state, finite, false, |tmp| {
            save_network(
                &model.encoder,
                NetworkKind::ImageEncoder,
                &config.encoder,
                &tmp.join(IMAGE_ENCODER_FILE),
            )?;
            save_head(&model.head, &config.head_config(), &tmp.join(HEAD_FILE))?;
            write_optimizer(&tmp.join(OPTIMIZER_FILE), optim)
        })?;
        self.saved_step = Some(self.state.step);
        Ok(dir)
    }
}

/// Reads a checkpoint (network with the parameter ids the optimizer state refers to,
/// optimizer, state) after checking that it belongs to this run.
fn load_checkpoint(
    dir: &Path,
    config: &SwavConfig,
    fresh: &SwavState,
    optim: ModuleOptimizer,
    device: &Device,
) -> Result<(SwavNetwork, ModuleOptimizer, SwavState), TrainError> {
    let state = read_state(dir, fresh)?;
    let network = load_network(dir, config, device)?;
    let optim = read_optimizer(&dir.join(OPTIMIZER_FILE), optim)?;
    Ok((network, optim, state))
}

//! Audio-visual alignment training (paper Sec. 2.1): the audio encoder f_A learns to map a
//! spectrogram onto the frozen image encoder's feature z^V of the same video.
//!
//! Reference: Sound2Scene `train.py`: Adam (lr 1e-3, weight decay 1e-5, PyTorch's betas and
//! epsilon), batch 64, the `InfoNCE_with_L2` loss between `audio_emb` and the SwAV feature of
//! the frame, a validation loss each epoch, and the weights of the lowest validation loss kept
//! as the result. Here z^V comes from a [`FeatureCache`](crate::feature_cache::FeatureCache)
//! (f_V is frozen, so it is computed once), the validation examples are held out of training
//! (the official script validates on the training set), and training can be stopped and
//! resumed exactly.
//!
//! # Launch
//!
//! ```no_run
//! use burn::tensor::Device;
//! use sound2scene_models::checkpoint::open_image_encoder;
//! use sound2scene_train::align::{AlignConfig, AlignHooks, AlignSession};
//! use sound2scene_train::data::discover_official;
//! use sound2scene_train::dataset::AlignData;
//! use sound2scene_train::feature_cache::FeatureCache;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Device::default();
//! let found = discover_official("samples/training")?;
//! let swav = "checkpoints/swav_800ep_pretrain.pth.tar";
//! let (f_v, _) = open_image_encoder(swav, &Default::default(), &device)?;
//! let cache = FeatureCache::build(&found.pairs, &f_v, swav, "out/features", 4096, &device, true)?;
//! let config = AlignConfig::new().with_epochs(100);
//! let data = AlignData::from_pairs(&found.pairs, &cache, config.spectrogram_config())?;
//! let hooks = AlignHooks::default(); // the CLI sets hooks.stop from a Ctrl-C handler
//! let summary = AlignSession::new(config, data, "out/align", device)?.run(true, hooks)?;
//! println!("{} steps, best checkpoint {:?}", summary.steps, summary.best_checkpoint);
//! # Ok(())
//! # }
//! ```
//!
//! # Output directory
//!
//! `config.json` (the [`AlignConfig`]), `metrics.jsonl` (see [`crate::progress`]), the
//! checkpoints `ckpt-NNNNNN/` with `model.bpk` (burnpack, [`NetworkKind::AudioEncoder`], f32,
//! loadable by `sound2scene_models::checkpoint::open_audio_encoder`), `optimizer.bpk` (Adam
//! moments, burnpack bytes), `state.json` ([`AlignState`]) and `COMPLETE`, and the pointer files
//! `latest` and `best` (see [`crate::checkpoint`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::config::Config;
use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use sound2scene_audio::{SpectrogramConfig, Tiling};
use sound2scene_models::audio_encoder::{AudioEncoder, AudioEncoderConfig};
use sound2scene_models::burnpack::NetworkKind;
use sound2scene_models::checkpoint::open_audio_encoder;

use crate::checkpoint::best_checkpoint;
use crate::control::{Control, Outcome};
use crate::data::{Split, split_validation};
use crate::dataset::{AlignData, Batch};
use crate::error::TrainError;
use crate::finite::all_finite;
use crate::loss::ContrastiveLoss;
use crate::parallel::{self, ShardedStep};
use crate::progress::{MetricsRecord, ProgressMode, StepBar};
use crate::run::{
    Fnv, Hooks, RunConfig, RunDir, RunState, batches, epoch_batches, load_network, read_optimizer,
    read_state, save_network, write_optimizer,
};

pub use crate::run::{AdamSettings, CONFIG_FILE, STATE_FILE};

/// File name of the audio encoder inside a checkpoint.
pub const MODEL_FILE: &str = "model.bpk";
/// File name of the optimizer state inside a checkpoint.
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";
/// Version of [`AlignState`] written by this crate.
pub const STATE_FORMAT: u32 = 1;

/// Everything that defines an alignment run. Saved as `config.json` in the output directory.
#[derive(Config, Debug)]
pub struct AlignConfig {
    /// The audio encoder f_A (ResNet-18 → 2048 in the paper). Its `out_dim` must equal the
    /// image-feature width.
    #[config(default = "AudioEncoderConfig::new()")]
    pub encoder: AudioEncoderConfig,
    /// The optimizer: the official `torch.optim.Adam(lr=1e-3, weight_decay=1e-5)` with
    /// PyTorch's betas and epsilon (the learning rate is constant, as in the official script).
    #[config(default = "AdamSettings::new()")]
    pub optimizer: AdamSettings,
    /// Examples per optimizer step (at least 2: the loss contrasts the examples of a batch).
    /// A final remainder of one example joins the previous batch.
    #[config(default = 64)]
    pub batch_size: usize,
    /// Passes over the training examples.
    #[config(default = 100)]
    pub epochs: usize,
    /// Stop after this many optimizer steps in total (counting those of a resumed run), with a
    /// checkpoint; `None` runs all epochs.
    pub max_steps: Option<u64>,
    /// Seeds the initialization, the validation split and every epoch's shuffle.
    #[config(default = 1234)]
    pub seed: u64,
    /// The alignment objective.
    #[config(default = "ContrastiveLoss::InfoNceL2")]
    pub loss: ContrastiveLoss,
    /// Fraction of the examples held out for validation, in `[0, 1)` (at least one example
    /// when there are two or more and the fraction is positive). With a contrastive loss a
    /// single validation clip is not held out (its loss is always 0): the run then trains on
    /// every clip and keeps `best` by the training loss, see [`plan_validation`].
    #[config(default = 0.1)]
    pub val_fraction: f64,
    /// Write a checkpoint every this many optimizer steps (0: only at epoch ends and stops).
    #[config(default = 1000)]
    pub checkpoint_every: u64,
    /// Complete checkpoints kept besides `best` (at least 1).
    #[config(default = 3)]
    pub keep_last: usize,
    /// Clip length in seconds of the spectrogram front end for audio files (10 s gives
    /// `[257, 1004]`).
    #[config(default = 10.0)]
    pub clip_seconds: f32,
    /// Start from these audio-encoder weights (`.pth` in the released layout, or `.bpk`) instead
    /// of a random initialization; ignored when resuming.
    pub init_weights: Option<String>,
    /// Write a step line to `metrics.jsonl` every this many steps (at least 1).
    #[config(default = 1)]
    pub log_every: u64,
}

impl AlignConfig {
    /// The spectrogram front end for audio files: the default one with `clip_seconds`, and
    /// clips shorter than a tenth of it filled to the full length ([`Tiling::Fill`]) so that
    /// every example of a batch has the same width (`[257, 1004]` for 10 s). The official data
    /// loader tiles ten times only, which would give narrower spectrograms for clips under 1 s
    /// and fail to stack them into a batch; for clips of 1 s or more both cuts agree.
    pub fn spectrogram_config(&self) -> SpectrogramConfig {
        SpectrogramConfig {
            seconds: self.clip_seconds,
            tiling: Tiling::Fill,
            ..SpectrogramConfig::default()
        }
    }

    /// A 64-bit FNV-1a fingerprint (hex) of the settings a resumed run must share with the
    /// run that wrote the checkpoint: encoder, optimizer, batch size, seed, loss, validation
    /// fraction and clip length. Epochs, step limits, checkpoint and log cadence may change.
    pub fn fingerprint(&self) -> String {
        let identity = serde_json::json!({
            "encoder": serde_json::to_value(&self.encoder).unwrap_or_default(),
            "optimizer": serde_json::to_value(&self.optimizer).unwrap_or_default(),
            "batch_size": self.batch_size,
            "seed": self.seed,
            "loss": serde_json::to_value(self.loss).unwrap_or_default(),
            "val_fraction": self.val_fraction,
            "clip_seconds": self.clip_seconds,
        });
        let mut hash = Fnv::new();
        hash.write(identity.to_string().as_bytes());
        hash.hex()
    }

    fn check(&self, data: &AlignData) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::config(m));
        if self.batch_size < 2 {
            return bad(format!(
                "batch_size must be at least 2 (the loss contrasts examples), got {}",
                self.batch_size
            ));
        }
        if self.epochs == 0 && self.max_steps.is_none() {
            return bad("epochs must be at least 1".into());
        }
        self.optimizer.check("the optimizer")?;
        if self.keep_last == 0 || self.log_every == 0 {
            return bad("keep_last and log_every must be at least 1".into());
        }
        if self.encoder.out_dim != data.dim() {
            return bad(format!(
                "the audio encoder outputs {} values but the image features have {}",
                self.encoder.out_dim,
                data.dim()
            ));
        }
        Ok(())
    }
}

impl RunConfig for AlignConfig {
    fn defaults() -> Self {
        Self::new()
    }
}

/// The training state saved in every checkpoint (`state.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlignState {
    /// [`STATE_FORMAT`].
    pub format: u32,
    /// Optimizer steps done.
    pub step: u64,
    /// The epoch (0-based) in progress, or next to start when `batch_in_epoch` is 0.
    pub epoch: u64,
    /// Batches of `epoch` already done; a resumed run skips them in the same shuffled order.
    pub batch_in_epoch: u64,
    /// Sum of the training losses of those batches (for the epoch's mean).
    pub epoch_loss_sum: f64,
    /// Lowest validation loss seen (the epoch's mean training loss without a validation split).
    pub best_val_loss: Option<f64>,
    /// Step of the checkpoint holding the weights of `best_val_loss`.
    pub best_step: Option<u64>,
    /// Validation loss of the last finished epoch.
    pub last_val_loss: Option<f64>,
    /// [`AlignConfig::fingerprint`] of the run.
    pub config_hash: String,
    /// [`AlignData::fingerprint`] of the run.
    pub data_hash: String,
    /// Training and validation examples.
    pub train_size: usize,
    /// Validation examples.
    pub val_size: usize,
    /// When the checkpoint was written, seconds since the Unix epoch.
    pub saved_at: f64,
}

impl RunState for AlignState {
    const FORMAT: u32 = STATE_FORMAT;
    const SETTINGS: &'static str =
        "encoder, optimizer, batch size, seed, loss, validation fraction or clip length";
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
    fn best_step(&self) -> Option<u64> {
        self.best_step
    }
    fn set_saved_at(&mut self, unix_seconds: f64) {
        self.saved_at = unix_seconds;
    }
}

/// Sent to [`Hooks::on_step`] after every optimizer step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    /// Optimizer steps done, this one included (1-based).
    pub step: u64,
    /// The epoch (0-based).
    pub epoch: u64,
    /// Batches of this epoch done, this one included.
    pub batch_in_epoch: u64,
    /// Batches in an epoch.
    pub batches_per_epoch: u64,
    /// The step's training loss (nats).
    pub loss: f64,
    /// Examples per second over this step, data wait included.
    pub samples_per_sec: f64,
    /// Learning rate used.
    pub lr: f64,
}

/// Sent to [`Hooks::on_epoch_end`] after each epoch's validation and checkpoint.
#[derive(Debug, Clone)]
pub struct EpochReport {
    /// The epoch that ended (0-based).
    pub epoch: u64,
    /// Optimizer steps done.
    pub step: u64,
    /// Mean training loss over the epoch's steps.
    pub train_loss: f64,
    /// Mean validation loss, `None` without a validation split.
    pub val_loss: Option<f64>,
    /// Whether this epoch's checkpoint became `best`.
    pub is_best: bool,
    /// The checkpoint written at the epoch's end.
    pub checkpoint: PathBuf,
    /// The encoder after the epoch, in inference mode on the plain device (e.g. to render a
    /// sample grid).
    pub model: AudioEncoder,
}

/// Ways for the caller to watch and steer an alignment run: its batches, [`StepReport`]s and
/// [`EpochReport`]s (see [`Hooks`]).
pub type AlignHooks = Hooks<Batch, StepReport, EpochReport>;

/// The result of a run.
#[derive(Debug)]
pub struct AlignSummary {
    /// How the run ended.
    pub outcome: Outcome,
    /// Optimizer steps done in total (a resumed run counts the earlier ones).
    pub steps: u64,
    /// Epochs fully done.
    pub epochs_completed: u64,
    /// Lowest validation loss (nats) so far; the lowest epoch training loss when the run has
    /// no validation clips (`validation_clips == 0`).
    pub best_val_loss: Option<f64>,
    /// Examples held out for validation (0: `best` is chosen by the training loss).
    pub validation_clips: usize,
    /// Why the run validates differently from its configuration (see [`plan_validation`]).
    pub validation_note: Option<String>,
    /// The checkpoint directory `best` names (its weights are `MODEL_FILE` inside).
    pub best_checkpoint: Option<PathBuf>,
    /// The newest checkpoint written or resumed from.
    pub last_checkpoint: Option<PathBuf>,
    /// The checkpoint this run resumed from.
    pub resumed_from: Option<PathBuf>,
    /// The final encoder, in inference mode on the plain (non-autodiff) device.
    pub model: AudioEncoder,
}

/// The training/validation split of a run over `n` examples, and a note when it differs from
/// [`split_validation`]'s.
///
/// A contrastive loss (InfoNCE) scores each clip against the other clips of its batch, so over
/// a single validation clip it is 0 whatever the weights: every epoch would tie and `best`
/// would stay the first checkpoint. With fewer than two validation clips the run therefore
/// does not validate: the held-out clip goes back to training and `best` is chosen by the
/// epoch's mean training loss, which the note says. The L2 loss is meaningful on one clip and
/// keeps it.
///
/// # Errors
/// [`TrainError::Config`] for a validation fraction outside `[0, 1)`.
pub fn plan_validation(
    n: usize,
    config: &AlignConfig,
) -> Result<(Split, Option<String>), TrainError> {
    let mut split = split_validation(n, config.val_fraction, config.seed)?;
    if split.val.len() != 1 || !config.loss.is_contrastive() {
        return Ok((split, None));
    }
    // Smallest example count whose split holds two validation clips at this fraction.
    let f = config.val_fraction;
    let mut needed = ((1.5 / f).floor() as usize).saturating_sub(1).max(3);
    while ((needed as f64 * f).round() as usize) < 2 {
        needed += 1;
    }
    let note = format!(
        "validation fraction {f} of {n} examples holds out 1 clip, and the contrastive loss over \
         a single clip is always 0; training on all {n} and keeping `best` by the epoch's \
         training loss instead (a validation loss needs at least 2 validation clips: {needed} \
         examples or more at this fraction, or a larger --val-fraction)"
    );
    split.train.append(&mut split.val);
    split.train.sort_unstable();
    Ok((split, Some(note)))
}

/// An alignment run: configuration, data, output directory and device.
#[derive(Debug)]
pub struct AlignSession {
    config: AlignConfig,
    data: AlignData,
    out_dir: PathBuf,
    device: Device,
    replicas: Vec<Device>,
    progress: ProgressMode,
}

impl AlignSession {
    /// Checks the configuration against the data and prepares a run writing to `out_dir` on
    /// `device` (its plain version; gradients use its autodiff version).
    ///
    /// # Errors
    /// [`TrainError::Config`] for an invalid configuration, or an encoder width that differs
    /// from the feature width.
    pub fn new(
        config: AlignConfig,
        data: AlignData,
        out_dir: impl Into<PathBuf>,
        device: Device,
    ) -> Result<Self, TrainError> {
        config.check(&data)?;
        Ok(Self {
            config,
            data,
            out_dir: out_dir.into(),
            device,
            replicas: Vec::new(),
            progress: ProgressMode::Auto,
        })
    }

    /// Why this run will validate differently from its configuration, if it will: with a
    /// contrastive loss and a single validation clip it trains on every clip and keeps `best`
    /// by the training loss (see [`plan_validation`]).
    ///
    /// # Errors
    /// [`TrainError::Config`] for an invalid validation fraction.
    pub fn validation_note(&self) -> Result<Option<String>, TrainError> {
        Ok(plan_validation(self.data.len(), &self.config)?.1)
    }

    /// Data parallelism: every training batch is cut into `1 + replicas.len()` shards, the
    /// first on the session's device (which keeps the weights, the optimizer and validation),
    /// one on each replica, and the loss sees the gathered batch (see [`crate::parallel`]).
    /// Replicas are usually the other GPUs of the machine (`Device::cuda(1)`, …); copies on the
    /// same device are allowed. Without replicas (the default) training runs on one device.
    pub fn with_replicas(mut self, replicas: Vec<Device>) -> Self {
        self.replicas = replicas;
        self
    }

    /// When to draw the progress bar (default: when stderr is a terminal).
    pub fn with_progress(mut self, progress: ProgressMode) -> Self {
        self.progress = progress;
        self
    }

    /// Trains until the epochs or `max_steps` are done, a stop is requested, or an error.
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
    /// or data; [`TrainError::Config`] for an output directory with checkpoints without
    /// `resume`, or fewer than two training examples; data and model errors as they occur.
    pub fn run(self, resume: bool, hooks: AlignHooks) -> Result<AlignSummary, TrainError> {
        Run::start(self, resume)?.train(hooks)
    }
}

/// Trains f_A with `config` on `data`, writing to `out_dir`; see [`AlignSession::run`].
///
/// # Errors
/// Those of [`AlignSession::new`] and [`AlignSession::run`].
pub fn train_align(
    config: &AlignConfig,
    data: AlignData,
    out_dir: impl AsRef<Path>,
    device: &Device,
    resume: bool,
    hooks: AlignHooks,
) -> Result<AlignSummary, TrainError> {
    AlignSession::new(
        config.clone(),
        data,
        out_dir.as_ref().to_path_buf(),
        device.clone(),
    )?
    .run(resume, hooks)
}

/// A run in progress.
struct Run {
    config: AlignConfig,
    /// Shared with the loader threads.
    data: Arc<AlignData>,
    out: RunDir,
    progress: ProgressMode,
    /// The plain device (validation, optimizer-free work).
    device: Device,
    /// The autodiff devices of training: the main one (the plain device's autodiff version)
    /// first, then the replicas of data parallelism.
    devices: Vec<Device>,
    split: Split,
    /// Why the run validates differently from the configuration, see [`plan_validation`].
    validation_note: Option<String>,
    model: AudioEncoder,
    optim: ModuleOptimizer,
    state: AlignState,
}

/// How an epoch's step loop ended.
enum EpochEnd {
    /// Every batch done.
    Complete,
    /// Return with this outcome after saving (unless aborted).
    Return(Outcome),
}

impl Run {
    fn start(session: AlignSession, resume: bool) -> Result<Self, TrainError> {
        let AlignSession {
            config,
            data,
            out_dir,
            device,
            replicas,
            progress,
        } = session;
        let start = RunDir::prepare(out_dir, resume)?;
        let (split, validation_note) = plan_validation(data.len(), &config)?;
        if split.train.len() < 2 {
            return Err(TrainError::config(format!(
                "{} examples leave {} for training (validation fraction {}); at least 2 are needed",
                data.len(),
                split.train.len(),
                config.val_fraction
            )));
        }
        let device = device.inner();
        let devices = std::iter::once(device.clone())
            .chain(replicas)
            .map(|d| d.inner().autodiff())
            .collect();
        let fresh = AlignState {
            format: STATE_FORMAT,
            step: 0,
            epoch: 0,
            batch_in_epoch: 0,
            epoch_loss_sum: 0.0,
            best_val_loss: None,
            best_step: None,
            last_val_loss: None,
            config_hash: config.fingerprint(),
            data_hash: data.fingerprint(),
            train_size: split.train.len(),
            val_size: split.val.len(),
            saved_at: 0.0,
        };
        let optim = config.optimizer.init();
        let (model, optim, state) = match start.checkpoint() {
            Some(dir) => load_checkpoint(dir, &fresh, optim, &device)?,
            None => (init_model(&config, &device)?, optim, fresh),
        };
        let out = start.open(&config, &state, config.keep_last, config.log_every)?;
        Ok(Self {
            // `train` moves the parameters to the autodiff backend, tracked (a `fork` would keep
            // them untracked, as they are on the plain device), with the ids the optimizer state
            // refers to.
            model: model.train(),
            config,
            data: Arc::new(data),
            out,
            progress,
            device,
            devices,
            split,
            validation_note,
            optim,
            state,
        })
    }

    fn train(mut self, mut hooks: AlignHooks) -> Result<AlignSummary, TrainError> {
        let batches_per_epoch =
            epoch_batches(&self.split.train, self.config.batch_size, 0, 0).len() as u64;
        let epoch_steps = batches_per_epoch * self.config.epochs as u64;
        let total = self
            .config
            .max_steps
            .map_or(epoch_steps, |m| m.min(epoch_steps));
        let bar = StepBar::new(self.progress, self.state.step, total);
        let result = self.train_epochs(&mut hooks, &bar, batches_per_epoch);
        bar.finish();
        let outcome = result?;
        Ok(AlignSummary {
            outcome,
            steps: self.state.step,
            epochs_completed: self.state.epoch,
            best_val_loss: self.state.best_val_loss,
            validation_clips: self.split.val.len(),
            validation_note: self.validation_note,
            best_checkpoint: best_checkpoint(self.out.path()),
            last_checkpoint: self.out.last_checkpoint().map(Path::to_path_buf),
            resumed_from: self.out.resumed_from().map(Path::to_path_buf),
            model: self.model.valid(),
        })
    }

    fn stop_requested(&self, hooks: &AlignHooks) -> Option<Outcome> {
        hooks.stop_requested(self.state.step, self.config.max_steps)
    }

    fn train_epochs(
        &mut self,
        hooks: &mut AlignHooks,
        bar: &StepBar,
        batches_per_epoch: u64,
    ) -> Result<Outcome, TrainError> {
        while self.state.epoch < self.config.epochs as u64 {
            if let Some(outcome) = self.stop_requested(hooks) {
                self.save(false)?;
                return Ok(outcome);
            }
            let epoch = self.state.epoch;
            let batches = epoch_batches(
                &self.split.train,
                self.config.batch_size,
                self.config.seed,
                epoch,
            );
            let skip = (self.state.batch_in_epoch as usize).min(batches.len());
            let pending = batches[skip..].to_vec();
            let started = Instant::now();
            let end = self.epoch_steps(pending, hooks, bar, batches_per_epoch)?;
            if let EpochEnd::Return(outcome) = end {
                if outcome != Outcome::Aborted {
                    self.save(false)?;
                }
                return Ok(outcome);
            }
            let examples: usize = batches[skip..].iter().map(Vec::len).sum();
            let rate = examples as f64 / started.elapsed().as_secs_f64().max(1e-9);
            if self.end_epoch(hooks, bar, batches.len() as u64, rate)? == Control::Abort {
                return Ok(Outcome::Aborted);
            }
        }
        Ok(if self.stop_requested(hooks) == Some(Outcome::MaxSteps) {
            Outcome::MaxSteps
        } else {
            Outcome::Finished
        })
    }

    /// Runs the optimizer steps of `batches` (the rest of the current epoch), loading them on a
    /// prefetch thread.
    fn epoch_steps(
        &mut self,
        batches: Vec<Vec<usize>>,
        hooks: &mut AlignHooks,
        bar: &StepBar,
        batches_per_epoch: u64,
    ) -> Result<EpochEnd, TrainError> {
        let count = batches.len();
        let data = Arc::clone(&self.data);
        std::thread::scope(|scope| {
            let (receiver, _loader) = data.prefetch(scope, batches);
            let mut last = Instant::now();
            for (i, batch) in receiver.iter().enumerate() {
                let mut batch = batch?;
                let step = self.state.step + 1;
                hooks.before_batch(step, &mut batch);
                let examples = batch.len();
                let loss = self.step(batch, step)?;
                let now = Instant::now();
                let samples_per_sec = examples as f64 / (now - last).as_secs_f64().max(1e-9);
                last = now;
                self.state.step = step;
                self.state.batch_in_epoch += 1;
                self.state.epoch_loss_sum += loss;

                let (epoch, lr) = (self.state.epoch, self.config.optimizer.lr);
                self.out.log_step(step, || {
                    MetricsRecord::step(step, epoch, loss, samples_per_sec, lr)
                })?;
                bar.update(
                    step,
                    format!(
                        "epoch {} loss {loss:.4} {samples_per_sec:.1} samples/s",
                        epoch + 1
                    ),
                );
                let report = StepReport {
                    step,
                    epoch,
                    batch_in_epoch: self.state.batch_in_epoch,
                    batches_per_epoch,
                    loss,
                    samples_per_sec,
                    lr,
                };
                if hooks.after_step(&report) == Control::Abort {
                    return Ok(EpochEnd::Return(Outcome::Aborted));
                }
                let epoch_done = i + 1 == count;
                if !epoch_done {
                    if let Some(outcome) = self.stop_requested(hooks) {
                        return Ok(EpochEnd::Return(outcome));
                    }
                    let every = self.config.checkpoint_every;
                    if every > 0 && step.is_multiple_of(every) {
                        self.save(false)?;
                    }
                }
            }
            Ok(EpochEnd::Complete)
        })
    }

    /// One optimizer step on `batch`; returns its loss. Nothing is applied when the loss or a
    /// gradient is not finite.
    fn step(&mut self, batch: Batch, step: u64) -> Result<f64, TrainError> {
        // One device runs the whole batch; replicas each take a shard (crate::parallel).
        let ShardedStep { loss: value, grads } = parallel::forward_backward(
            &self.model,
            &self.devices,
            &batch.spectrograms,
            batch.spectrogram_shape,
            &batch.features,
            batch.dim,
            self.config.loss,
        )?;
        if !value.is_finite() {
            return Err(TrainError::NonFiniteLoss { step });
        }
        if !all_finite(&self.model, Some(&grads)) {
            return Err(TrainError::NonFiniteGradient { step });
        }
        let model = self.model.clone();
        self.model = self.optim.step(self.config.optimizer.lr, model, grads);
        Ok(value)
    }

    /// Mean validation loss over the validation batches (in order, `batch_size` each, a final
    /// single example joining the previous batch), with the encoder in inference mode; `None`
    /// without a validation split.
    fn validate(&self) -> Result<Option<f64>, TrainError> {
        if self.split.val.is_empty() {
            return Ok(None);
        }
        let eval = self.model.valid();
        let batches = batches(&self.split.val, self.config.batch_size);
        let data = &self.data;
        let device = &self.device;
        let loss = self.config.loss;
        std::thread::scope(|scope| {
            let (receiver, _loader) = data.prefetch(scope, batches);
            let (mut total, mut count) = (0.0, 0usize);
            for batch in receiver {
                let batch = batch?;
                let n = batch.len();
                let spectrograms = Tensor::<4>::from_data(
                    TensorData::new(batch.spectrograms, batch.spectrogram_shape),
                    device,
                );
                let features =
                    Tensor::<2>::from_data(TensorData::new(batch.features, [n, batch.dim]), device);
                let audio = eval.try_forward(spectrograms)?.feature;
                let value = loss.compute(audio, features)?.into_scalar::<f32>();
                total += f64::from(value) * n as f64;
                count += n;
            }
            Ok(Some(total / count.max(1) as f64))
        })
    }

    fn end_epoch(
        &mut self,
        hooks: &mut AlignHooks,
        bar: &StepBar,
        batches: u64,
        samples_per_sec: f64,
    ) -> Result<Control, TrainError> {
        let epoch = self.state.epoch;
        let train_loss = self.state.epoch_loss_sum / batches.max(1) as f64;
        let val_loss = self.validate()?;
        let criterion = val_loss.unwrap_or(train_loss);
        let is_best =
            criterion.is_finite() && self.state.best_val_loss.is_none_or(|best| criterion < best);
        self.state.epoch += 1;
        self.state.batch_in_epoch = 0;
        self.state.epoch_loss_sum = 0.0;
        self.state.last_val_loss = val_loss.filter(|v| v.is_finite());
        if is_best {
            self.state.best_val_loss = Some(criterion);
            self.state.best_step = Some(self.state.step);
        }
        let checkpoint = self.save(is_best)?;
        self.out.log(&MetricsRecord::epoch(
            self.state.step,
            epoch,
            train_loss,
            val_loss,
            samples_per_sec,
            self.config.optimizer.lr,
            is_best,
        ))?;
        bar.println(format!(
            "epoch {} step {}: train loss {train_loss:.4}, val loss {}{}",
            epoch + 1,
            self.state.step,
            val_loss.map_or("-".to_string(), |v| format!("{v:.4}")),
            if is_best { " (best)" } else { "" }
        ));
        let step = self.state.step;
        Ok(hooks.after_epoch(|| EpochReport {
            epoch,
            step,
            train_loss,
            val_loss,
            is_best,
            checkpoint,
            model: self.model.valid(),
        }))
    }

    /// Writes the checkpoint of the current step (model, optimizer, state), points `best` at it
    /// when `is_best`, and prunes old checkpoints. Returns its directory.
    fn save(&mut self, is_best: bool) -> Result<PathBuf, TrainError> {
        // BatchNorm running statistics hold their last update aside until the next forward
        // pass; taking a validation snapshot folds it in (the statistics are shared with
        // `self.model`), so the file gets the current values. Training itself folds pending
        // updates in the same way, so this changes nothing in the run.
        drop(self.model.valid());
        let finite = all_finite(&self.model, None);
        let (model, optim, encoder) = (&self.model, &self.optim, &self.config.encoder);
        self.out.save(&mut self.state, finite, is_best, |tmp| {
            save_network(
                model,
                NetworkKind::AudioEncoder,
                encoder,
                &tmp.join(MODEL_FILE),
            )?;
            write_optimizer(&tmp.join(OPTIMIZER_FILE), optim)
        })
    }
}

/// A randomly initialized encoder of `config` on `device`, the same for the same `seed`: the
/// device's random generator is seeded and every parameter materialized while a process-wide
/// lock is held, since Burn's CPU backend has one generator for the whole process.
pub fn init_encoder(config: &AudioEncoderConfig, seed: u64, device: &Device) -> AudioEncoder {
    crate::init::seeded(device, seed, |device| config.init(device))
}

/// A fresh encoder on `device`: `init_weights` when given, else [`init_encoder`] with the
/// configuration's seed.
fn init_model(config: &AlignConfig, device: &Device) -> Result<AudioEncoder, TrainError> {
    if let Some(path) = &config.init_weights {
        // Loading builds a lazily initialized network first; keep its random draws away from
        // a concurrent seeded initialization.
        let _guard = crate::init::init_lock();
        let (model, loaded) = open_audio_encoder(path, &Default::default(), device)?;
        let want = serde_json::to_string(&config.encoder).unwrap_or_default();
        let have = serde_json::to_string(&loaded).unwrap_or_default();
        if want != have {
            return Err(TrainError::config(format!(
                "init_weights {path} holds an encoder {have}, but the configuration asks for \
                 {want}"
            )));
        }
        return Ok(model);
    }
    Ok(init_encoder(&config.encoder, config.seed, device))
}

/// Reads a checkpoint: the encoder (with the parameter ids the optimizer state refers to), the
/// optimizer state and the training state, after checking that it belongs to this run.
fn load_checkpoint(
    dir: &Path,
    fresh: &AlignState,
    optim: ModuleOptimizer,
    device: &Device,
) -> Result<(AudioEncoder, ModuleOptimizer, AlignState), TrainError> {
    let state = read_state(dir, fresh)?;
    let model = load_network(
        &dir.join(MODEL_FILE),
        NetworkKind::AudioEncoder,
        device,
        AudioEncoderConfig::init,
    )?;
    let optim = read_optimizer(&dir.join(OPTIMIZER_FILE), optim)?;
    Ok((model, optim, state))
}

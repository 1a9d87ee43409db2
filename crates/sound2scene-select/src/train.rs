//! Self-supervised training of the [`Localizer`] (LVS objective, see [`crate::model`]), with
//! the guarantees of the project's other loops: a saved configuration and seed, a progress
//! bar, `metrics.jsonl`, crash-safe resumable checkpoints (`sound2scene_train::checkpoint`),
//! a stop on NaN/Inf with the last good checkpoint kept, and a stop flag (Ctrl-C) that saves
//! and returns.
//!
//! A step draws `clips_per_batch` videos (an epoch visits every video once, in an order
//! shuffled per epoch by the seed) and `frames_per_clip` distinct random frames of each, each
//! paired with the audio window centred on it. Frames of the same video in a batch are
//! negatives of each other, which teaches *when* a sound matches what is seen.
//!
//! # Output directory
//! `config.json` ([`SelectTrainConfig`]), `metrics.jsonl`, checkpoints `ckpt-NNNNNN/` with
//! `model.bpk` (the localizer and its [`LocalizerConfig`], loadable by [`load_localizer`]),
//! `optimizer.bpk`, `state.json` ([`SelectState`]) and `COMPLETE`, and the `latest` and
//! `best` pointers (lowest mean epoch loss).

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::config::Config;
use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sound2scene_train::checkpoint::{best_checkpoint, latest_complete};
use sound2scene_train::control::{Control, Outcome};
use sound2scene_train::finite::all_finite;
use sound2scene_train::init::splitmix;
use sound2scene_train::progress::{MetricsRecord, ProgressMode, StepBar};
use sound2scene_train::run::{
    AdamSettings, Fnv, Hooks, RunConfig, RunDir, RunState, epoch_batches, read_optimizer,
    read_state, write_optimizer,
};
use sound2scene_train::skip::{SkipPolicy, SkipReport, SkippedSample};

use crate::clip::{LoadedVideo, Video};
use crate::error::{Result, SelectError};
use crate::model::{Localizer, LocalizerConfig};

pub use sound2scene_train::run::{CONFIG_FILE, STATE_FILE};

/// File name of the localizer inside a checkpoint.
pub const MODEL_FILE: &str = "model.bpk";
/// File name of the optimizer state inside a checkpoint.
pub const OPTIMIZER_FILE: &str = "optimizer.bpk";
/// Version of [`SelectState`] written by this crate.
pub const STATE_FORMAT: u32 = 1;
/// Metadata key naming the network in `model.bpk`, with the value [`NETWORK_NAME`].
pub const NETWORK_KEY: &str = "sound2scene.network";
/// Metadata key holding the [`LocalizerConfig`] JSON in `model.bpk`.
pub const CONFIG_KEY: &str = "sound2scene.config";
/// The network name stored in `model.bpk`.
pub const NETWORK_NAME: &str = "localizer";

/// The selector's Adam: Burn's defaults (betas 0.9 and 0.999, epsilon 1e-5), learning rate
/// 1e-3 and weight decay 1e-5.
pub fn select_adam() -> AdamSettings {
    AdamSettings::new().with_epsilon(1e-5)
}

/// Everything that defines a localizer training run. Saved as `config.json`. Files written
/// before the optimizer was one setting hold `lr` and `weight_decay` at the top level;
/// [`read_config`](sound2scene_train::run::read_config) reads them into `optimizer`.
#[derive(Config, Debug)]
pub struct SelectTrainConfig {
    /// The network.
    #[config(default = "LocalizerConfig::new()")]
    pub model: LocalizerConfig,
    /// Frames per second of the frame folders (frame `i` is at `i / fps` s).
    #[config(default = 10.0)]
    pub fps: f32,
    /// The optimizer ([`select_adam`]; the learning rate is constant).
    #[config(default = "select_adam()")]
    pub optimizer: AdamSettings,
    /// Videos per step (at least 2 unless `frames_per_clip` is 2 or more). A final remainder
    /// of one video joins the previous batch.
    #[config(default = 32)]
    pub clips_per_batch: usize,
    /// Random frames drawn from each video of a batch (at most its frame count).
    #[config(default = 2)]
    pub frames_per_clip: usize,
    /// Passes over the videos.
    #[config(default = 30)]
    pub epochs: usize,
    /// Stop after this many steps in total (a resumed run counts the earlier ones).
    pub max_steps: Option<u64>,
    /// Seeds the initialization, every epoch's order and every batch's frames.
    #[config(default = 1234)]
    pub seed: u64,
    /// Temperature of the contrastive logits (LVS: 0.07).
    #[config(default = 0.07)]
    pub temperature: f32,
    /// Write a checkpoint every this many steps (0: only at epoch ends and stops).
    #[config(default = 200)]
    pub checkpoint_every: u64,
    /// Complete checkpoints kept besides `best` (at least 1).
    #[config(default = 3)]
    pub keep_last: usize,
    /// Write a step line to `metrics.jsonl` every this many steps (at least 1).
    #[config(default = 1)]
    pub log_every: u64,
}

impl RunConfig for SelectTrainConfig {
    const RENAMED: &'static [(&'static str, &'static str)] = &[
        ("lr", "optimizer.lr"),
        ("weight_decay", "optimizer.weight_decay"),
    ];

    fn defaults() -> Self {
        Self::new()
    }
}

impl SelectTrainConfig {
    /// A 64-bit FNV-1a fingerprint (hex) of the settings a resumed run must share with the run
    /// that wrote the checkpoint (all but epochs, step limit, checkpoint and log cadence). The
    /// Adam betas and epsilon count only when they differ from [`select_adam`]'s, so that runs
    /// from before they were settings keep their fingerprint.
    pub fn fingerprint(&self) -> String {
        let mut identity = serde_json::json!({
            "model": serde_json::to_value(&self.model).unwrap_or_default(),
            "fps": self.fps,
            "lr": self.optimizer.lr,
            "weight_decay": self.optimizer.weight_decay,
            "clips_per_batch": self.clips_per_batch,
            "frames_per_clip": self.frames_per_clip,
            "seed": self.seed,
            "temperature": self.temperature,
        });
        let (opt, fixed) = (&self.optimizer, select_adam());
        if (opt.beta_1, opt.beta_2, opt.epsilon) != (fixed.beta_1, fixed.beta_2, fixed.epsilon) {
            identity["adam"] = serde_json::json!([opt.beta_1, opt.beta_2, opt.epsilon]);
        }
        fnv_hex(identity.to_string().as_bytes())
    }

    fn check(&self, data: &SelectData) -> Result<()> {
        let bad = |m: String| Err(SelectError::Config(m));
        self.model.check().map_err(SelectError::Config)?;
        if self.clips_per_batch == 0 || self.frames_per_clip == 0 {
            return bad("clips_per_batch and frames_per_clip must be at least 1".into());
        }
        if self.clips_per_batch * self.frames_per_clip < 2 {
            return bad("a batch needs at least 2 frames (the loss contrasts them)".into());
        }
        if self.epochs == 0 && self.max_steps.is_none() {
            return bad("epochs must be at least 1".into());
        }
        self.optimizer.check("the optimizer")?;
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return bad(format!(
                "temperature must be positive, got {}",
                self.temperature
            ));
        }
        if !(self.fps.is_finite() && self.fps > 0.0) {
            return bad(format!("fps must be positive, got {}", self.fps));
        }
        if self.keep_last == 0 || self.log_every == 0 {
            return bad("keep_last and log_every must be at least 1".into());
        }
        if data.videos.len() < 2 && self.frames_per_clip < 2 {
            return bad(format!(
                "{} video(s) cannot be contrasted; use more videos or frames_per_clip >= 2",
                data.videos.len()
            ));
        }
        Ok(())
    }
}

/// 64-bit FNV-1a of `bytes`, as 16 hex digits ([`Fnv`]).
pub fn fnv_hex(bytes: &[u8]) -> String {
    Fnv::hex_of(bytes)
}

/// 64-bit FNV-1a of `bytes` ([`Fnv`]).
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut hash = Fnv::new();
    hash.write(bytes);
    hash.finish()
}

/// The decoded training videos, held in memory (frames as bytes at the model's size).
#[derive(Debug)]
pub struct SelectData {
    videos: Vec<LoadedVideo>,
}

impl SelectData {
    /// Decodes `videos` for `config` in parallel (rayon).
    ///
    /// # Errors
    /// The first decoding error, naming the file.
    pub fn load(videos: &[Video], config: &LocalizerConfig) -> Result<Self> {
        let videos = videos
            .par_iter()
            .map(|v| LoadedVideo::load(v, config))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { videos })
    }

    /// Decodes `videos` for `config` in parallel, leaving out those that cannot be decoded: each
    /// is printed as a one-line warning on stderr and listed in the returned report (its frame
    /// folder and the decoder's message, which names the file), in the order of `videos`, so the
    /// same files always give the same data. Under a strict policy ([`SkipPolicy::strict()`]) the first error is
    /// returned instead, as [`load`](Self::load) does. Videos listed in `recorded` (the report
    /// of an earlier run on the same data, when resuming) are left out again without being
    /// decoded or warned about; a resumed run refuses data that differs anyway
    /// ([`fingerprint`](Self::fingerprint)).
    ///
    /// # Errors
    /// The first decoding error under a strict policy;
    /// [`TrainError::TooManyBroken`](sound2scene_train::TrainError::TooManyBroken) naming
    /// `data_dir` when more videos are broken than `policy` allows (a wrong folder rather than
    /// a few broken files).
    pub fn load_checked(
        videos: &[Video],
        config: &LocalizerConfig,
        policy: &SkipPolicy,
        data_dir: &Path,
        recorded: Option<&SkipReport>,
    ) -> Result<(Self, SkipReport)> {
        policy.validate()?;
        let known =
            |video: &Video| recorded.and_then(|r| r.skipped.iter().find(|s| s.name == video.name));
        let decoded: Vec<Option<Result<LoadedVideo>>> = videos
            .par_iter()
            .map(|v| known(v).is_none().then(|| LoadedVideo::load(v, config)))
            .collect();
        let mut kept = Vec::with_capacity(decoded.len());
        let mut report = SkipReport {
            total: videos.len(),
            ..SkipReport::default()
        };
        for (video, result) in videos.iter().zip(decoded) {
            let Some(result) = result else {
                if let Some(sample) = known(video) {
                    report.skipped.push(sample.clone());
                    report.recorded += 1;
                }
                continue;
            };
            report.checked += 1;
            match result {
                Ok(loaded) => kept.push(loaded),
                Err(e) if policy.strict => return Err(e),
                Err(e) => {
                    let folder = video
                        .frames
                        .first()
                        .and_then(|(_, path)| path.parent())
                        .map_or_else(|| video.audio.clone(), Path::to_path_buf);
                    let sample = SkippedSample {
                        name: video.name.clone(),
                        file: folder,
                        cause: e.to_string(),
                    };
                    eprintln!("{}", sample.warning());
                    report.skipped.push(sample);
                }
            }
        }
        report.guard(policy, data_dir)?;
        Ok((Self { videos: kept }, report))
    }

    /// Wraps already decoded videos.
    pub fn from_loaded(videos: Vec<LoadedVideo>) -> Self {
        Self { videos }
    }

    /// Number of videos.
    pub fn len(&self) -> usize {
        self.videos.len()
    }

    /// Whether there is no video.
    pub fn is_empty(&self) -> bool {
        self.videos.is_empty()
    }

    /// The decoded videos.
    pub fn videos(&self) -> &[LoadedVideo] {
        &self.videos
    }

    /// FNV fingerprint (hex) of the names and frame counts, to refuse resuming on other data.
    pub fn fingerprint(&self) -> String {
        let mut text = String::new();
        for v in &self.videos {
            text.push_str(&format!("{}:{};", v.name, v.len()));
        }
        fnv_hex(text.as_bytes())
    }
}

/// The training state saved in every checkpoint (`state.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectState {
    /// [`STATE_FORMAT`].
    pub format: u32,
    /// Steps done.
    pub step: u64,
    /// The epoch (0-based) in progress, or next to start when `batch_in_epoch` is 0.
    pub epoch: u64,
    /// Batches of `epoch` done; a resumed run skips them.
    pub batch_in_epoch: u64,
    /// Sum of the losses of those batches.
    pub epoch_loss_sum: f64,
    /// Lowest mean epoch loss so far.
    pub best_loss: Option<f64>,
    /// Step of the checkpoint of `best_loss`.
    pub best_step: Option<u64>,
    /// [`SelectTrainConfig::fingerprint`].
    pub config_hash: String,
    /// [`SelectData::fingerprint`].
    pub data_hash: String,
    /// When the checkpoint was written, seconds since the Unix epoch.
    pub saved_at: f64,
}

impl RunState for SelectState {
    const FORMAT: u32 = STATE_FORMAT;
    const SETTINGS: &'static str = "model, fps, optimizer, batch, seed";
    const DATA: &'static str = "set of videos";

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

/// Sent to [`Hooks::on_step`] after every step.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectStepReport {
    /// Steps done, this one included.
    pub step: u64,
    /// The epoch (0-based).
    pub epoch: u64,
    /// The step's loss (nats).
    pub loss: f64,
    /// Frames per second of wall time over the step.
    pub samples_per_sec: f64,
}

/// Ways for the caller to watch and steer a run: its batches and [`SelectStepReport`]s (see
/// [`Hooks`]; the selector has no epoch hook). [`Control::Abort`] returns without saving
/// (crash tests).
pub type SelectHooks = Hooks<SelectBatch, SelectStepReport>;

/// The result of a run.
#[derive(Debug)]
pub struct SelectSummary {
    /// How the run ended.
    pub outcome: Outcome,
    /// Steps done in total.
    pub steps: u64,
    /// Epochs fully done.
    pub epochs_completed: u64,
    /// Lowest mean epoch loss.
    pub best_loss: Option<f64>,
    /// The checkpoint `best` names.
    pub best_checkpoint: Option<PathBuf>,
    /// The newest checkpoint written or resumed from.
    pub last_checkpoint: Option<PathBuf>,
    /// The checkpoint this run resumed from.
    pub resumed_from: Option<PathBuf>,
    /// The final localizer, in inference mode on the plain device.
    pub model: Localizer,
}

/// A randomly initialized localizer, the same for the same `seed` (the process-wide generator
/// is seeded and every parameter materialized under a lock).
pub fn init_localizer(config: &LocalizerConfig, seed: u64, device: &Device) -> Localizer {
    sound2scene_train::init::seeded(device, seed, |device| config.init(device))
}

fn weights_error(path: &Path, reason: impl std::fmt::Display) -> SelectError {
    SelectError::Weights {
        path: path.to_path_buf(),
        reason: reason.to_string(),
        source: None,
    }
}

/// Writes `model` with its `config` to `path` as burnpack (f32).
///
/// # Errors
/// [`SelectError::Weights`] naming the file.
pub fn save_localizer(model: &Localizer, config: &LocalizerConfig, path: &Path) -> Result<()> {
    let json = serde_json::to_string(config)
        .map_err(|e| SelectError::weights_caused(path, e.to_string(), e))?;
    let mut store = BurnpackStore::from_file(path)
        .auto_extension(false)
        .overwrite(true)
        .metadata(NETWORK_KEY, NETWORK_NAME)
        .metadata(CONFIG_KEY, json);
    model
        .save_into(&mut store)
        .map_err(|e| SelectError::weights_caused(path, e.to_string(), e))
}

/// The `model.bpk` a weights path names: the file itself, the file inside a checkpoint
/// directory, or (for a training output directory) that of its `best` checkpoint, else its
/// newest complete one.
///
/// # Errors
/// [`SelectError::Weights`] when nothing loadable is there.
pub fn resolve_weights(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if path.join(MODEL_FILE).is_file() {
        return Ok(path.join(MODEL_FILE));
    }
    let dir = best_checkpoint(path).or_else(|| latest_complete(path).ok().flatten().map(|c| c.1));
    match dir {
        Some(dir) => Ok(dir.join(MODEL_FILE)),
        None => Err(weights_error(
            path,
            "no model.bpk, checkpoint directory or training output directory with a complete \
             checkpoint here; train one with `sound2scene train-select`",
        )),
    }
}

/// Loads a localizer saved by this crate (any path [`resolve_weights`] accepts), strictly.
///
/// # Errors
/// [`SelectError::Weights`] when the file is missing, holds another network, or its tensors
/// do not fit its configuration.
pub fn load_localizer(path: &Path, device: &Device) -> Result<(Localizer, LocalizerConfig)> {
    let file = resolve_weights(path)?;
    let reader = burn::store::burn_pack::Reader::from_file(&file)
        .map_err(|e| SelectError::weights_caused(&file, format!("not a burnpack file: {e}"), e))?;
    let metadata = reader.metadata();
    if metadata.get(NETWORK_KEY).map(String::as_str) != Some(NETWORK_NAME) {
        return Err(weights_error(
            &file,
            "does not hold a localizer (written by `sound2scene train-select`)",
        ));
    }
    let json = metadata
        .get(CONFIG_KEY)
        .ok_or_else(|| weights_error(&file, format!("no '{CONFIG_KEY}' entry")))?;
    let config: LocalizerConfig = serde_json::from_str(json).map_err(|e| {
        SelectError::weights_caused(&file, format!("configuration does not parse: {e}"), e)
    })?;
    config.check().map_err(|e| weights_error(&file, e))?;
    let mut model = {
        let _guard = sound2scene_train::init::init_lock();
        config.init(device)
    };
    let mut store = BurnpackStore::from_file(&file).auto_extension(false);
    let result = model
        .load_from(&mut store)
        .map_err(|e| SelectError::weights_caused(&file, e.to_string(), e))?;
    if !result.is_success() || !result.missing.is_empty() || !result.unused.is_empty() {
        return Err(weights_error(
            &file,
            format!(
                "tensors do not fit: missing {:?}, unused {:?}, errors {:?}",
                result.missing, result.unused, result.errors
            ),
        ));
    }
    Ok((model, config))
}

/// Input of one step: `count` frames `[count, 3, S, S]` and the audio windows centred on them
/// `[count, 1, bins, W]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectBatch {
    /// The frames, RGB in `[0, 1]` at the model's image size.
    pub frames: Vec<f32>,
    /// The log-spectrogram windows.
    pub windows: Vec<f32>,
    /// Frames in the batch.
    pub count: usize,
}

fn make_batch(
    data: &SelectData,
    config: &SelectTrainConfig,
    videos: &[usize],
    rng: &mut ChaCha8Rng,
) -> SelectBatch {
    let width = config.model.window_columns();
    let mut batch = SelectBatch {
        frames: Vec::new(),
        windows: Vec::new(),
        count: 0,
    };
    for &v in videos {
        let video = &data.videos[v];
        let all: Vec<usize> = (0..video.len()).collect();
        let take = config.frames_per_clip.min(video.len());
        let mut picked: Vec<usize> = all.choose_multiple(rng, take).copied().collect();
        picked.sort_unstable();
        for index in picked {
            video.push_frame(index, &mut batch.frames);
            video.push_window(index, config.fps, width, &mut batch.windows);
            batch.count += 1;
        }
    }
    batch
}

/// The batches of epoch `epoch`: the `videos` indices shuffled by `(seed, epoch)` and cut as
/// every epoch loop does ([`epoch_batches`]).
fn video_batches(videos: usize, size: usize, seed: u64, epoch: u64) -> Vec<Vec<usize>> {
    let all: Vec<usize> = (0..videos).collect();
    epoch_batches(&all, size, seed, epoch)
}

/// Trains a localizer with `config` on `data`, writing to `out_dir`. With `resume`, continues
/// from the newest complete checkpoint there (reaching the weights of an uninterrupted run);
/// without it, a directory that already holds checkpoints is refused.
///
/// # Errors
/// [`SelectError::Config`] for invalid settings; [`SelectError::Train`] for an occupied output
/// directory, a checkpoint of other settings or data (`ResumeMismatch`) or one that cannot be
/// written or read; [`SelectError::NonFiniteLoss`] / [`SelectError::NonFiniteGradient`]
/// (nothing of that step is applied; earlier checkpoints stay).
pub fn train_select(
    config: &SelectTrainConfig,
    data: &SelectData,
    out_dir: &Path,
    device: &Device,
    resume: bool,
    progress: ProgressMode,
    mut hooks: SelectHooks,
) -> Result<SelectSummary> {
    config.check(data)?;
    let start = RunDir::prepare(out_dir, resume)?;
    let device = device.clone().inner();
    let fresh = SelectState {
        format: STATE_FORMAT,
        step: 0,
        epoch: 0,
        batch_in_epoch: 0,
        epoch_loss_sum: 0.0,
        best_loss: None,
        best_step: None,
        config_hash: config.fingerprint(),
        data_hash: data.fingerprint(),
        saved_at: 0.0,
    };
    let optim = config.optimizer.init();
    let (model, optim, state) = match start.checkpoint() {
        Some(dir) => load_checkpoint(dir, &fresh, optim, &device)?,
        None => (
            init_localizer(&config.model, config.seed, &device),
            optim,
            fresh,
        ),
    };
    let out = start.open(config, &state, config.keep_last, config.log_every)?;
    let mut run = Run {
        config,
        data,
        model: model.train(),
        optim,
        state,
        out,
        ad_device: device.clone().autodiff(),
    };
    let per_epoch = video_batches(data.len(), config.clips_per_batch, 0, 0).len() as u64;
    let total = (per_epoch * config.epochs as u64).min(config.max_steps.unwrap_or(u64::MAX));
    let bar = StepBar::new(progress, run.state.step, total);
    let outcome = run.train(&mut hooks, &bar, per_epoch);
    bar.finish();
    let outcome = outcome?;
    Ok(SelectSummary {
        outcome,
        steps: run.state.step,
        epochs_completed: run.state.epoch,
        best_loss: run.state.best_loss,
        best_checkpoint: best_checkpoint(out_dir),
        last_checkpoint: run.out.last_checkpoint().map(Path::to_path_buf),
        resumed_from: run.out.resumed_from().map(Path::to_path_buf),
        model: run.model.valid(),
    })
}

fn load_checkpoint(
    dir: &Path,
    fresh: &SelectState,
    optim: ModuleOptimizer,
    device: &Device,
) -> Result<(Localizer, ModuleOptimizer, SelectState)> {
    let state = read_state(dir, fresh)?;
    let (model, _) = load_localizer(&dir.join(MODEL_FILE), device)?;
    let optim = read_optimizer(&dir.join(OPTIMIZER_FILE), optim)?;
    Ok((model, optim, state))
}

struct Run<'a> {
    config: &'a SelectTrainConfig,
    data: &'a SelectData,
    model: Localizer,
    optim: ModuleOptimizer,
    state: SelectState,
    out: RunDir,
    ad_device: Device,
}

impl Run<'_> {
    fn stop_requested(&self, hooks: &SelectHooks) -> Option<Outcome> {
        hooks.stop_requested(self.state.step, self.config.max_steps)
    }

    fn train(&mut self, hooks: &mut SelectHooks, bar: &StepBar, per_epoch: u64) -> Result<Outcome> {
        let config = self.config;
        while self.state.epoch < config.epochs as u64 {
            let epoch = self.state.epoch;
            let batches =
                video_batches(self.data.len(), config.clips_per_batch, config.seed, epoch);
            let started = Instant::now();
            let mut frames_seen = 0usize;
            for (index, videos) in batches
                .iter()
                .enumerate()
                .skip(self.state.batch_in_epoch as usize)
            {
                if let Some(outcome) = self.stop_requested(hooks) {
                    self.save(false)?;
                    return Ok(outcome);
                }
                let step = self.state.step + 1;
                let mut rng = ChaCha8Rng::seed_from_u64(splitmix(
                    config.seed ^ splitmix(epoch ^ splitmix(index as u64)),
                ));
                let step_start = Instant::now();
                let mut batch = make_batch(self.data, config, videos, &mut rng);
                hooks.before_batch(step, &mut batch);
                frames_seen += batch.count;
                let loss = self.step(batch, step)?;
                let samples_per_sec = (videos.len() * config.frames_per_clip) as f64
                    / step_start.elapsed().as_secs_f64().max(1e-9);
                self.state.step = step;
                self.state.batch_in_epoch += 1;
                self.state.epoch_loss_sum += loss;
                let lr = config.optimizer.lr;
                self.out.log_step(step, || {
                    MetricsRecord::step(step, epoch, loss, samples_per_sec, lr)
                })?;
                bar.update(step, format!("epoch {} loss {loss:.4}", epoch + 1));
                let report = SelectStepReport {
                    step,
                    epoch,
                    loss,
                    samples_per_sec,
                };
                if hooks.after_step(&report) == Control::Abort {
                    return Ok(Outcome::Aborted);
                }
                let last_of_epoch = index + 1 == batches.len();
                if !last_of_epoch {
                    let every = config.checkpoint_every;
                    if every > 0 && step.is_multiple_of(every) {
                        self.save(false)?;
                    }
                }
            }
            let mean = self.state.epoch_loss_sum / per_epoch.max(1) as f64;
            let is_best = mean.is_finite() && self.state.best_loss.is_none_or(|b| mean < b);
            self.state.epoch += 1;
            self.state.batch_in_epoch = 0;
            self.state.epoch_loss_sum = 0.0;
            if is_best {
                self.state.best_loss = Some(mean);
                self.state.best_step = Some(self.state.step);
            }
            self.save(is_best)?;
            let rate = frames_seen as f64 / started.elapsed().as_secs_f64().max(1e-9);
            self.out.log(&MetricsRecord::epoch(
                self.state.step,
                epoch,
                mean,
                None,
                rate,
                config.optimizer.lr,
                is_best,
            ))?;
            bar.println(format!(
                "epoch {} step {}: loss {mean:.4}{}",
                epoch + 1,
                self.state.step,
                if is_best { " (best)" } else { "" }
            ));
            if let Some(outcome) = self.stop_requested(hooks) {
                return Ok(outcome);
            }
        }
        Ok(Outcome::Finished)
    }

    fn step(&mut self, batch: SelectBatch, step: u64) -> Result<f64> {
        let m = &self.config.model;
        let n = batch.count;
        let frames = Tensor::<4>::from_data(
            TensorData::new(batch.frames, [n, 3, m.image_size, m.image_size]),
            &self.ad_device,
        );
        let windows = Tensor::<4>::from_data(
            TensorData::new(batch.windows, [n, 1, m.bins(), m.window_columns()]),
            &self.ad_device,
        );
        let audio = self.model.audio_embedding(windows);
        let visual = self.model.visual_map(frames);
        let loss = self.model.lvs_loss(audio, visual, self.config.temperature);
        let value = f64::from(loss.clone().inner().into_scalar::<f32>());
        if !value.is_finite() {
            return Err(SelectError::NonFiniteLoss { step });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        if !all_finite(&self.model, Some(&grads)) {
            return Err(SelectError::NonFiniteGradient { step });
        }
        let model = self.model.clone();
        self.model = self.optim.step(self.config.optimizer.lr, model, grads);
        Ok(value)
    }

    fn save(&mut self, is_best: bool) -> Result<PathBuf> {
        // Fold pending BatchNorm statistics into the shared state (see align.rs).
        drop(self.model.valid());
        let finite = all_finite(&self.model, None);
        let (model, optim, config) = (&self.model, &self.optim, &self.config.model);
        self.out.save(&mut self.state, finite, is_best, |tmp| {
            save_localizer(&model.valid(), config, &tmp.join(MODEL_FILE))?;
            write_optimizer(&tmp.join(OPTIMIZER_FILE), optim)?;
            Ok::<(), SelectError>(())
        })
    }
}

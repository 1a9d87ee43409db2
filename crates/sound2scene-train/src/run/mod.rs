//! The training-loop kit: the run skeleton the alignment, IC-GAN, SwAV and selector loops share,
//! so that each loop file holds only its method.
//!
//! A loop built on the kit goes through these stages:
//!
//! 1. **Configure.** Its configuration is a [`RunConfig`] (saved as `config.json`, read back
//!    with [`read_config`], which also reads the names of earlier versions) with a fingerprint
//!    ([`Fnv`]) of the settings a resumed run must share; its optimizer, when it is Adam, is
//!    [`AdamSettings`].
//! 2. **Start.** [`RunDir::prepare`] creates the output directory, removes what a crash left
//!    half-written and finds the checkpoint to resume from, refusing a used directory without
//!    `resume`. The loop then either loads that checkpoint ([`read_state`] checks that it belongs
//!    to the run, [`read_optimizer`], [`load_network`]) or draws fresh weights
//!    (`crate::init::seeded`), and [`Start::open`] writes `config.json`, re-points `best` if a
//!    crash came between a checkpoint and its pointer, and opens `metrics.jsonl`.
//! 3. **Step.** Around each optimizer step the loop hands its batch and its report to the
//!    caller's [`Hooks`] (which may stop or abort the run), logs a line every `log_every` steps
//!    ([`RunDir::log_step`]) and moves the progress bar (`crate::progress::StepBar`). Epoch
//!    loops cut their data with [`epoch_batches`].
//! 4. **Save.** [`RunDir::save`] writes a checkpoint of the loop's files and its [`RunState`]
//!    atomically (`crate::checkpoint`), refusing weights that are not finite, points `best` at
//!    it when asked, and prunes old ones. A run ends with an `Outcome` (`crate::control`).
//!
//! What stays in a loop: its configuration, state and reports, how it draws a batch, its step,
//! which files make its checkpoint, and when it validates, samples or saves.

mod adam;
mod batches;
mod config;
mod hooks;
mod state;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use adam::AdamSettings;
pub use batches::{batches, epoch_batches};
pub use config::{Fnv, RunConfig, read_config};
pub use hooks::{BatchHook, EpochHook, Hooks, StepHook};
pub use state::{
    RunState, STATE_FILE, load_network, read_optimizer, read_state, save_network, write_optimizer,
};

use crate::checkpoint::{
    BEST_POINTER, checkpoint_name, latest_complete, prune, read_complete, read_pointer,
    remove_incomplete, save_checkpoint, write_file_atomic, write_plain, write_pointer,
};
use crate::error::TrainError;
use crate::progress::{METRICS_FILE, MetricsLog, unix_time};

/// File name of the configuration in a run's output directory.
pub const CONFIG_FILE: &str = "config.json";

/// A run's output directory before the run opens it: created and cleaned, with the checkpoint
/// to resume from, if any. Made by [`RunDir::prepare`].
#[derive(Debug)]
pub struct Start {
    dir: PathBuf,
    checkpoint: Option<PathBuf>,
}

impl Start {
    /// The checkpoint the run resumes from; `None` for a fresh run.
    pub fn checkpoint(&self) -> Option<&Path> {
        self.checkpoint.as_deref()
    }

    /// Opens the run: writes `config` as `config.json` (atomically), points `best` at the
    /// checkpoint of `state`'s best step when a crash came between saving it and its pointer,
    /// and opens `metrics.jsonl` for appending. `keep_last` complete checkpoints are kept
    /// besides `best`; a step line is logged every `log_every` steps.
    ///
    /// # Errors
    /// [`TrainError::Config`] when the configuration does not serialize;
    /// [`TrainError::Checkpoint`] or [`TrainError::Io`] naming a file that cannot be written.
    pub fn open<S: RunState>(
        self,
        config: &impl Serialize,
        state: &S,
        keep_last: usize,
        log_every: u64,
    ) -> Result<RunDir, TrainError> {
        let Self { dir, checkpoint } = self;
        if let Some(best_step) = state.best_step() {
            let best = dir.join(checkpoint_name(best_step));
            if read_pointer(&dir, BEST_POINTER).as_deref() != Some(best.as_path())
                && read_complete(&best).is_some()
            {
                write_pointer(&dir, BEST_POINTER, &best)?;
            }
        }
        let json = serde_json::to_vec_pretty(config).map_err(|e| {
            TrainError::config_caused(format!("the configuration does not serialize: {e}"), e)
        })?;
        write_file_atomic(&dir.join(CONFIG_FILE), &json)?;
        let metrics = MetricsLog::open(dir.join(METRICS_FILE))?;
        Ok(RunDir {
            last_checkpoint: checkpoint.clone(),
            resumed_from: checkpoint,
            dir,
            keep_last,
            log_every,
            metrics,
        })
    }
}

/// A run's output directory while the run goes on: `config.json`, `metrics.jsonl` and the
/// checkpoints, with the newest checkpoint written or resumed from.
#[derive(Debug)]
pub struct RunDir {
    dir: PathBuf,
    keep_last: usize,
    log_every: u64,
    metrics: MetricsLog,
    resumed_from: Option<PathBuf>,
    last_checkpoint: Option<PathBuf>,
}

impl RunDir {
    /// Creates `dir` if needed, removes checkpoints a crash left incomplete, and finds where the
    /// run starts: with `resume`, the newest complete checkpoint (none: a fresh run); without
    /// it, a directory that already holds a checkpoint is refused.
    ///
    /// # Errors
    /// [`TrainError::Io`] when `dir` cannot be created or listed; [`TrainError::Checkpoint`]
    /// for a leftover that cannot be removed; [`TrainError::Config`] for a used directory
    /// without `resume`.
    pub fn prepare(dir: impl Into<PathBuf>, resume: bool) -> Result<Start, TrainError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|source| TrainError::Io {
            path: dir.clone(),
            source,
        })?;
        remove_incomplete(&dir)?;
        let checkpoint = match (latest_complete(&dir)?, resume) {
            (Some((_, checkpoint)), true) => Some(checkpoint),
            (Some((_, checkpoint)), false) => {
                return Err(TrainError::config(format!(
                    "{} already holds checkpoint {}; resume it or choose an empty output \
                     directory",
                    dir.display(),
                    checkpoint.display()
                )));
            }
            (None, _) => None,
        };
        Ok(Start { dir, checkpoint })
    }

    /// The output directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint the run resumed from.
    pub fn resumed_from(&self) -> Option<&Path> {
        self.resumed_from.as_deref()
    }

    /// The newest checkpoint written or resumed from.
    pub fn last_checkpoint(&self) -> Option<&Path> {
        self.last_checkpoint.as_deref()
    }

    /// Appends `record` (made only when due) to `metrics.jsonl` when `step` is a multiple of
    /// `log_every`.
    ///
    /// # Errors
    /// [`TrainError::Io`] naming the file.
    pub fn log_step<R: Serialize>(
        &mut self,
        step: u64,
        record: impl FnOnce() -> R,
    ) -> Result<(), TrainError> {
        if step.is_multiple_of(self.log_every) {
            self.metrics.append(&record())?;
        }
        Ok(())
    }

    /// Appends `record` to `metrics.jsonl`.
    ///
    /// # Errors
    /// [`TrainError::Io`] naming the file.
    pub fn log(&mut self, record: &impl Serialize) -> Result<(), TrainError> {
        self.metrics.append(record)
    }

    /// Writes the checkpoint of `state`'s step: `write` puts the loop's files (networks,
    /// optimizer states) into the directory it is given, then `state.json` is added and the
    /// whole appears atomically (`crate::checkpoint::save_checkpoint`). Points `best` at it
    /// when `is_best`, prunes all but the newest `keep_last` (and `best`), and returns its
    /// directory.
    ///
    /// `weights_finite` is the loop's check of its weights (`crate::finite::all_finite`): weights
    /// with NaN or an infinity are never saved, so the last complete checkpoint stays good.
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] for weights that are not finite or a file that cannot be
    /// written (the earlier checkpoints are untouched), or `write`'s own error.
    pub fn save<S: RunState, E: From<TrainError>>(
        &mut self,
        state: &mut S,
        weights_finite: bool,
        is_best: bool,
        write: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<PathBuf, E> {
        if !weights_finite {
            return Err(TrainError::checkpoint(
                &self.dir,
                format!(
                    "the weights at step {} are not finite; not saving them",
                    state.step()
                ),
            )
            .into());
        }
        state.set_saved_at(unix_time());
        let json = serde_json::to_vec_pretty(state)
            .map_err(|e| TrainError::checkpoint_caused(&self.dir, e.to_string(), e))?;
        // `write`'s own error is kept aside and returned as it is.
        let mut failure = None;
        let saved = save_checkpoint(&self.dir, state.step(), |tmp| {
            if let Err(e) = write(tmp) {
                failure = Some(e);
                return Err(TrainError::checkpoint(tmp, "writing the files failed"));
            }
            write_plain(&tmp.join(STATE_FILE), &json)
        });
        let dir = match (saved, failure) {
            (Ok(dir), _) => dir,
            (Err(_), Some(e)) => return Err(e),
            (Err(e), None) => return Err(e.into()),
        };
        if is_best {
            write_pointer(&self.dir, BEST_POINTER, &dir)?;
        }
        prune(&self.dir, self.keep_last)?;
        self.last_checkpoint = Some(dir.clone());
        Ok(dir)
    }
}

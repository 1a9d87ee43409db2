//! What a checkpoint holds besides the loop's own files: the training state (`state.json`), the
//! optimizer state, and networks as burnpack files.

use std::path::Path;

use burn::config::Config;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleSnapshot;
use burn::tensor::{Bytes, Device};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sound2scene_models::burnpack::{self, NetworkKind, Precision};

use crate::checkpoint::write_plain;
use crate::error::TrainError;

/// File name of the training state inside a checkpoint.
pub const STATE_FILE: &str = "state.json";

/// A loop's training state, saved as `state.json` in every checkpoint: what a resumed run
/// needs besides the weights and the optimizer, and what tells whether a checkpoint belongs to
/// a run.
pub trait RunState: Serialize + DeserializeOwned {
    /// The version of the state's layout this crate writes.
    const FORMAT: u32;
    /// What the configuration fingerprint covers, for the message refusing a resume (e.g.
    /// "encoder, optimizer, batch size or seed").
    const SETTINGS: &'static str;
    /// What the data fingerprint covers (e.g. "data set").
    const DATA: &'static str;

    /// Optimizer steps done.
    fn step(&self) -> u64;
    /// The layout version the state was written with.
    fn format(&self) -> u32;
    /// The fingerprint of the run's configuration.
    fn config_hash(&self) -> &str;
    /// The fingerprint of the run's data.
    fn data_hash(&self) -> &str;
    /// The step of the checkpoint `best` should name, for loops that keep one.
    fn best_step(&self) -> Option<u64> {
        None
    }
    /// Records when the checkpoint is written, seconds since the Unix epoch.
    fn set_saved_at(&mut self, unix_seconds: f64);
}

/// Reads the training state of checkpoint `dir` after checking that it belongs to the run whose
/// fresh state is `fresh`: the same layout version, configuration and data fingerprints.
///
/// # Errors
/// [`TrainError::Checkpoint`] when `state.json` cannot be read or parsed;
/// [`TrainError::ResumeMismatch`] when the checkpoint belongs to another run.
pub fn read_state<S: RunState>(dir: &Path, fresh: &S) -> Result<S, TrainError> {
    let path = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| TrainError::checkpoint_caused(&path, format!("cannot read: {e}"), e))?;
    let state: S = serde_json::from_str(&text)
        .map_err(|e| TrainError::checkpoint_caused(&path, format!("malformed: {e}"), e))?;
    let mismatch = |reason: String| {
        Err(TrainError::ResumeMismatch {
            path: dir.to_path_buf(),
            reason,
        })
    };
    if state.format() != S::FORMAT {
        return mismatch(format!(
            "state format {} is not {}",
            state.format(),
            S::FORMAT
        ));
    }
    if state.config_hash() != fresh.config_hash() {
        return mismatch(format!(
            "it was written with a different configuration ({})",
            S::SETTINGS
        ));
    }
    if state.data_hash() != fresh.data_hash() {
        return mismatch(format!("it was written for a different {}", S::DATA));
    }
    Ok(state)
}

/// Writes an optimizer's state (its moments or momentum buffers) to `path` inside a checkpoint
/// being written.
///
/// # Errors
/// [`TrainError::Checkpoint`] naming the file.
pub fn write_optimizer(path: &Path, optim: &ModuleOptimizer) -> Result<(), TrainError> {
    let bytes = optim.into_bytes().map_err(|e| {
        TrainError::checkpoint_caused(path, format!("cannot encode the optimizer state: {e}"), e)
    })?;
    write_plain(path, &bytes)
}

/// Reads into `optim` (a fresh optimizer of the run) the state [`write_optimizer`] wrote. The
/// state refers to parameter ids, so the networks must come from the same checkpoint.
///
/// # Errors
/// [`TrainError::Checkpoint`] naming the file when it cannot be read or does not decode.
pub fn read_optimizer(path: &Path, optim: ModuleOptimizer) -> Result<ModuleOptimizer, TrainError> {
    let bytes = std::fs::read(path)
        .map_err(|e| TrainError::checkpoint_caused(path, format!("cannot read: {e}"), e))?;
    optim.from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| {
        TrainError::checkpoint_caused(path, format!("cannot decode the optimizer state: {e}"), e)
    })
}

/// Writes a network with its configuration to `path` as burnpack in f32, keeping its parameter
/// ids (see `sound2scene_models::burnpack`).
///
/// # Errors
/// [`TrainError::Checkpoint`] naming the file, with the model error as its source.
pub fn save_network<M: ModuleSnapshot, C: Config>(
    module: &M,
    kind: NetworkKind,
    config: &C,
    path: &Path,
) -> Result<(), TrainError> {
    burnpack::save(module, kind, config, path, Precision::F32)
        .map_err(|e| TrainError::checkpoint_caused(path, e.to_string(), e))
}

/// Reads a network [`save_network`] wrote, built by `build` from the stored configuration on
/// `device`, under the process-wide initialization lock (building draws from the random
/// generator that a concurrent seeded initialization relies on).
///
/// # Errors
/// [`TrainError::Model`] when the file is missing, holds another network or does not fit.
pub fn load_network<M: ModuleSnapshot, C: Config>(
    path: &Path,
    kind: NetworkKind,
    device: &Device,
    build: impl FnOnce(&C, &Device) -> M,
) -> Result<M, TrainError> {
    let _guard = crate::init::init_lock();
    Ok(burnpack::load(path, kind, device, build)?.0)
}

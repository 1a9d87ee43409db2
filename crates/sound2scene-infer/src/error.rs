//! The one error type of the inference crate.

use std::path::PathBuf;

use sound2scene_audio::AudioError;
use sound2scene_models::ModelError;

/// Errors of inference: the audio front end, the networks, the bundled-model lookup and the
/// checks on a request.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// Decoding or the spectrogram failed.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// Loading or running a network failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A setting is outside the range this crate accepts; the message names the setting, the
    /// range and the value given.
    #[error("{what} must be {allowed}, got {got}")]
    OutOfRange {
        /// The setting, as the caller's user knows it (e.g. `--count`).
        what: String,
        /// What is allowed (e.g. `at least 1 and at most 10000`).
        allowed: String,
        /// The value given.
        got: String,
    },
    /// The request is invalid in another way (e.g. tensors of the wrong shape).
    #[error("{0}")]
    Invalid(String),
    /// An operation needs the image encoder, which was not loaded.
    #[error("this needs the image encoder: load one with `SoundToScene::with_image_encoder`")]
    NoImageEncoder,
    /// An operation needs the audio encoder, which was not loaded.
    #[error("this needs the audio encoder: load the pipeline with one (`SoundToScene::load`)")]
    NoAudioEncoder,
    /// A weight file or model directory is missing.
    #[error("{path}: {reason}")]
    Weights {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
    },
}

/// Result of the inference crate.
pub type Result<T> = std::result::Result<T, InferError>;

//! The crate's error type, [`SelectError`].

use std::path::PathBuf;

use sound2scene_audio::AudioError;
use sound2scene_models::ModelError;
use sound2scene_train::TrainError;
use sound2scene_train::error::Cause;

/// Everything that can go wrong while training the localizer or mining frames.
///
/// Variants caused by user input name the file and what to do; none of them panics.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The data on disk is not what the command expects.
    #[error("{path}: {reason}")]
    Data {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
        /// The error that caused it, when there is one (e.g. the JSON parser's).
        #[source]
        source: Option<Cause>,
    },
    /// An image could not be decoded or encoded.
    #[error("image {path}: {source}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: image::ImageError,
    },
    /// An invalid setting.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A weights file could not be written or read.
    #[error("weights {path}: {reason}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
        /// The error that caused it, when there is one (e.g. the burnpack reader's or the JSON parser's).
        #[source]
        source: Option<Cause>,
    },
    /// A checkpoint or progress file belongs to a different run.
    #[error("{path}: cannot resume: {reason}")]
    ResumeMismatch {
        /// The checkpoint or progress file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// The training loss became NaN or infinite; nothing of that step was applied.
    #[error(
        "the loss is not finite at step {step}; the last complete checkpoint is kept \
         (lower the learning rate and resume)"
    )]
    NonFiniteLoss {
        /// The step (1-based).
        step: u64,
    },
    /// A gradient became NaN or infinite; nothing of that step was applied.
    #[error(
        "a gradient is not finite at step {step}; the last complete checkpoint is kept \
         (lower the learning rate and resume)"
    )]
    NonFiniteGradient {
        /// The step (1-based).
        step: u64,
    },
    /// Decoding or transforming audio failed.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// A network could not be built or loaded.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A checkpoint, metrics or data utility of the training crate failed.
    #[error(transparent)]
    Train(#[from] TrainError),
}

impl SelectError {
    /// An [`SelectError::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SelectError {
        let path = path.into();
        move |source| SelectError::Io { path, source }
    }

    /// A [`SelectError::Weights`] whose `reason` names `source`, kept as its source.
    pub(crate) fn weights_caused(
        path: impl Into<PathBuf>,
        reason: impl Into<String>,
        source: impl Into<Cause>,
    ) -> Self {
        SelectError::Weights {
            path: path.into(),
            reason: reason.into(),
            source: Some(source.into()),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = SelectError> = std::result::Result<T, E>;

//! Error type shared by the loss and metric functions of this crate.

use std::path::PathBuf;

/// The cause kept under an error whose message already names it (an I/O, JSON, image or audio
/// error): [`std::error::Error::source`] returns it, so a caller, or the CLI's `caused by:`
/// lines, can walk down to the operating system's error.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong when computing a training loss or an evaluation metric.
///
/// Every variant is caused by the caller's input (shapes, sample counts, arguments or files);
/// the functions of this crate return it instead of panicking.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Two inputs that must agree in shape do not.
    #[error(
        "shape mismatch in {context}: {left_name} has shape {left:?}, {right_name} has shape {right:?}"
    )]
    ShapeMismatch {
        /// The function or quantity whose inputs disagree.
        context: &'static str,
        /// Name of the first input.
        left_name: &'static str,
        /// Shape of the first input.
        left: Vec<usize>,
        /// Name of the second input.
        right_name: &'static str,
        /// Shape of the second input.
        right: Vec<usize>,
    },

    /// An input has no rows or no columns.
    #[error("{context}: {name} is empty (shape {shape:?})")]
    Empty {
        /// The function whose input is empty.
        context: &'static str,
        /// Name of the empty input.
        name: &'static str,
        /// Its shape.
        shape: Vec<usize>,
    },

    /// Too few samples to estimate a statistic (e.g. an unbiased covariance needs 2 rows).
    #[error("{context}: needs at least {required} samples, got {got}")]
    TooFewSamples {
        /// The statistic being estimated.
        context: &'static str,
        /// Minimum number of samples (rows).
        required: usize,
        /// Number of samples given.
        got: usize,
    },

    /// The Inception Score split count is zero or exceeds the number of samples.
    #[error(
        "inception score: {splits} splits is invalid for {samples} samples (need 1 <= splits <= samples)"
    )]
    InvalidSplits {
        /// Requested number of splits.
        splits: usize,
        /// Number of samples (rows of the logits).
        samples: usize,
    },

    /// A recall cut-off `K` of zero was requested.
    #[error("retrieval: recall@K needs K >= 1, got K = {k}")]
    InvalidK {
        /// The rejected cut-off.
        k: usize,
    },

    /// An input contains NaN or an infinity.
    #[error("{context}: {name} contains a non-finite value at index {index:?}")]
    NonFinite {
        /// The function whose input is not finite.
        context: &'static str,
        /// Name of the input.
        name: &'static str,
        /// Multi-index of the first non-finite element.
        index: Vec<usize>,
    },

    /// The symmetric eigensolver did not converge within its iteration budget.
    #[error("{context}: symmetric eigendecomposition of a {dim}x{dim} matrix did not converge")]
    EigenNotConverged {
        /// The quantity being computed.
        context: &'static str,
        /// Side of the square matrix.
        dim: usize,
    },

    /// A `.npy` file could not be read as a float array of the expected dimensionality.
    #[error("cannot read npy file {}: {source}", path.display())]
    Npy {
        /// The file that failed.
        path: PathBuf,
        /// The underlying reader error.
        #[source]
        source: ndarray_npy::ReadNpyError,
    },

    /// A file or directory could not be read or written.
    #[error("cannot access {}: {source}", path.display())]
    Io {
        /// The file or directory that failed.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A training data set is missing, empty or malformed (e.g. no audio/image pairs).
    #[error("data set {}: {reason}", path.display())]
    Data {
        /// The directory or file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// The error that caused it, when there is one (e.g. the image decoder's or the OS's).
        #[source]
        source: Option<Cause>,
    },

    /// The image-feature cache is unreadable or does not fit the data or encoder.
    #[error("feature cache {}: {reason}", path.display())]
    Cache {
        /// The cache directory or file at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// The error that caused it, when there is one (e.g. the OS's or the JSON parser's).
        #[source]
        source: Option<Cause>,
    },

    /// Writing or reading a training checkpoint failed. When a save fails, the previous
    /// complete checkpoint is left in place.
    #[error("checkpoint {}: {reason}", path.display())]
    Checkpoint {
        /// The checkpoint file or directory at fault.
        path: PathBuf,
        /// What failed.
        reason: String,
        /// The error that caused it, when there is one (e.g. the OS's or the JSON parser's).
        #[source]
        source: Option<Cause>,
    },

    /// A checkpoint cannot be resumed with the given configuration or data.
    #[error("cannot resume from {}: {reason}", path.display())]
    ResumeMismatch {
        /// The checkpoint directory.
        path: PathBuf,
        /// What differs.
        reason: String,
    },

    /// The training configuration is invalid, or a configuration file cannot be read as one.
    #[error("invalid training configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
        /// The error that caused it, when there is one (e.g. the JSON parser's or a network
        /// configuration's own check).
        #[source]
        source: Option<Cause>,
    },

    /// The training loss was NaN or infinite at an optimizer step (counted from 1); the step was
    /// not applied and the last complete checkpoint is kept.
    #[error(
        "the loss is NaN or infinite at step {step}; training stopped without applying it (the \
         last complete checkpoint is kept): lower the learning rate or check the data"
    )]
    NonFiniteLoss {
        /// The optimizer step (1-based) whose loss was not finite.
        step: u64,
    },

    /// A gradient was NaN or infinite at an optimizer step (counted from 1); the step was not
    /// applied and the last complete checkpoint is kept.
    #[error(
        "a gradient is NaN or infinite at step {step}; training stopped without applying it \
         (the last complete checkpoint is kept)"
    )]
    NonFiniteGradient {
        /// The optimizer step (1-based) whose gradients were not finite.
        step: u64,
    },

    /// More samples of a data set are broken than the skip policy allows
    /// ([`SkipPolicy::max_bad_fraction`](crate::skip::SkipPolicy::max_bad_fraction)): a wrong
    /// folder or layout rather than a few broken files.
    #[error(
        "data set {}: {broken} of {total} samples cannot be read ({:.1} %, more than the \
         allowed {:.1} %); that looks like a wrong folder or a wrong layout rather than a few \
         broken files. First: {first}. Check the path and the layout, or raise the limit \
         (--max-bad-fraction)",
        path.display(),
        100.0 * *broken as f64 / (*total).max(1) as f64,
        100.0 * limit
    )]
    TooManyBroken {
        /// The data set's directory.
        path: PathBuf,
        /// Broken samples found.
        broken: usize,
        /// Samples in the data set.
        total: usize,
        /// The allowed fraction.
        limit: f64,
        /// The first broken sample and its cause.
        first: String,
    },

    /// Decoding audio or computing a spectrogram failed.
    #[error(transparent)]
    Audio(#[from] sound2scene_audio::AudioError),

    /// Building, loading or running a network failed.
    #[error(transparent)]
    Model(#[from] sound2scene_models::ModelError),
}

impl TrainError {
    /// A [`TrainError::Config`] without a further cause.
    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Self::Config {
            reason: reason.into(),
            source: None,
        }
    }

    /// A [`TrainError::Config`] whose `reason` names `source`, kept as its source.
    pub(crate) fn config_caused(reason: impl Into<String>, source: impl Into<Cause>) -> Self {
        Self::Config {
            reason: reason.into(),
            source: Some(source.into()),
        }
    }

    /// A [`TrainError::Data`] without a further cause.
    pub(crate) fn data(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Data {
            path: path.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// A [`TrainError::Data`] whose `reason` names `source`, kept as its source.
    pub(crate) fn data_caused(
        path: impl Into<PathBuf>,
        reason: impl Into<String>,
        source: impl Into<Cause>,
    ) -> Self {
        Self::Data {
            path: path.into(),
            reason: reason.into(),
            source: Some(source.into()),
        }
    }

    /// A [`TrainError::Cache`] without a further cause.
    pub(crate) fn cache(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Cache {
            path: path.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// A [`TrainError::Cache`] whose `reason` names `source`, kept as its source.
    pub(crate) fn cache_caused(
        path: impl Into<PathBuf>,
        reason: impl Into<String>,
        source: impl Into<Cause>,
    ) -> Self {
        Self::Cache {
            path: path.into(),
            reason: reason.into(),
            source: Some(source.into()),
        }
    }

    /// A [`TrainError::Checkpoint`] without a further cause.
    pub(crate) fn checkpoint(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Self::Checkpoint {
            path: path.into(),
            reason: reason.into(),
            source: None,
        }
    }

    /// A [`TrainError::Checkpoint`] whose `reason` names `source`, kept as its source.
    pub(crate) fn checkpoint_caused(
        path: impl Into<PathBuf>,
        reason: impl Into<String>,
        source: impl Into<Cause>,
    ) -> Self {
        Self::Checkpoint {
            path: path.into(),
            reason: reason.into(),
            source: Some(source.into()),
        }
    }
}

//! Measuring the paper's claims on the procedural world ([`sound2scene_synth`]), where the ground
//! truth is known.
//!
//! - [`classifier`]: the world's own "Inception", a narrow ResNet trained on the world's real
//!   frames to say which of the eight classes a picture shows (multi-label). Its logits give
//!   the Inception Score and class accuracy, its pooled feature the FID.
//! - [`claims`]: [`eval_world`], which measures on held-out clips of a seed: audio→image
//!   retrieval, class accuracy of generated pictures (from audio, from the true image feature,
//!   from a random feature), FID/IS, volume ↔ size (Spearman) and two-source mixing.
//! - [`spearman`](mod@spearman): rank correlation with ties (average ranks).
//! - [`default_classifier_path`]: the bundled classifier; the bundled networks are found by
//!   [`sound2scene_infer::bundle`].
//!
//! Training the classifier draws its initial weights through `sound2scene-train`'s seeded
//! initialization ([`sound2scene_train::init::seeded`]), under the one process-wide lock.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use sound2scene_infer::bundle;
//! use sound2scene_world::{WorldClassifier, WorldEvalConfig, default_classifier_path, eval_world};
//!
//! let device = Device::default();
//! let pipeline = bundle::load_pipeline(bundle::default_model_dir(), &device)?;
//! let classifier = WorldClassifier::load(default_classifier_path(), &device)?;
//! let report = eval_world(&pipeline, &classifier, &WorldEvalConfig::new(1234, 100))?;
//! println!("R@1 {:.2}, class accuracy {:.2}", report.r_at_1, report.class_accuracy);
//! # Ok::<(), sound2scene_world::WorldEvalError>(())
//! ```
#![deny(missing_docs)]

pub mod claims;
pub mod classifier;
pub mod spearman;

use std::path::PathBuf;

pub use claims::{EXTRA_KEYS, REQUIRED_KEYS, WorldEvalConfig, WorldReport, eval_world};
pub use classifier::{
    Classified, ClassifierAccuracy, ClassifierOutput, ClassifierTrainConfig, WorldClassifier,
    WorldClassifierConfig, evaluate_classifier, train_world_classifier,
};
pub use spearman::{average_ranks, spearman};

/// Errors of the world evaluation and of the world classifier.
#[derive(Debug, thiserror::Error)]
pub enum WorldEvalError {
    /// The sound-to-image pipeline failed.
    #[error(transparent)]
    Infer(#[from] sound2scene_infer::InferError),
    /// A network failed to load or run.
    #[error(transparent)]
    Model(#[from] sound2scene_models::ModelError),
    /// The procedural world refused a request.
    #[error(transparent)]
    Synth(#[from] sound2scene_synth::SynthError),
    /// A metric (FID, IS, retrieval) failed.
    #[error(transparent)]
    Metric(#[from] sound2scene_train::TrainError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A weight file is missing or does not hold what was expected.
    #[error("{path}: {reason}")]
    Weights {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong and what to do.
        reason: String,
        /// The error that caused it, when there is one (e.g. the burnpack reader's or the JSON
        /// parser's).
        #[source]
        source: Option<sound2scene_train::error::Cause>,
    },
    /// Training stopped because the loss became NaN or infinite.
    #[error("the classifier's loss is not finite at step {step}; lower the learning rate")]
    NonFiniteLoss {
        /// The step (0-based).
        step: usize,
    },
    /// A configuration value is out of range.
    #[error("{0}")]
    Invalid(String),
    /// Values did not fit the shape of an array made from them.
    #[error("{what}: {source}")]
    Shape {
        /// The array being made.
        what: &'static str,
        /// ndarray's error.
        #[source]
        source: ndarray::ShapeError,
    },
    /// The noise added to an image has an invalid spread.
    #[error("noise: {source}")]
    Noise {
        /// rand_distr's error.
        #[source]
        source: rand_distr::NormalError,
    },
}

/// The bundled world classifier, relative to the repository root.
pub const DEFAULT_CLASSIFIER: &str = "assets/models/world-classifier.bpk";

/// The bundled world classifier ([`DEFAULT_CLASSIFIER`]): under the current directory when it
/// exists there, else under the repository this crate was built from.
pub fn default_classifier_path() -> PathBuf {
    sound2scene_infer::bundle::bundled(DEFAULT_CLASSIFIER)
}

/// Result of the world evaluation.
pub type Result<T> = std::result::Result<T, WorldEvalError>;

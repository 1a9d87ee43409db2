//! The one error type of this crate.

use std::path::PathBuf;

use sound2scene_weights::WeightsError;

/// Everything that can go wrong while building, loading or saving a network.
///
/// Every variant that concerns a file names it, so a message printed to a user says which
/// checkpoint to fix or replace.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file or folder does not exist or cannot be read.
    #[error("cannot read {path}: {source}; check the path and its permissions")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The PyTorch reader refused the file (not a checkpoint, corrupt, truncated, or a
    /// pickle that asks to run code).
    #[error("{path} is not a readable PyTorch checkpoint: {reason}")]
    Checkpoint {
        /// The checkpoint.
        path: PathBuf,
        /// What the reader said.
        reason: String,
    },

    /// The checkpoint's tensors do not fit the network: the lists say which keys.
    #[error("{path} does not fit the {network}: {}", describe_mismatch(.missing, .unexpected, .mis_shaped))]
    Mismatch {
        /// The checkpoint.
        path: PathBuf,
        /// The network that was being loaded.
        network: String,
        /// Keys the network needs that the file lacks.
        missing: Vec<String>,
        /// Keys the file holds that the network does not use.
        unexpected: Vec<String>,
        /// Keys present in both with different shapes: `(key, expected, found)`.
        mis_shaped: Vec<(String, Vec<usize>, Vec<usize>)>,
    },

    /// A weight holds NaN or infinity.
    #[error(
        "{path}: tensor '{key}' holds {count} NaN or infinite values; the checkpoint is damaged \
         (pass allow_non_finite to load it anyway)"
    )]
    NonFinite {
        /// The checkpoint.
        path: PathBuf,
        /// The tensor's key.
        key: String,
        /// How many values are not finite.
        count: usize,
    },

    /// A tensor is stored in an element type that is not a float.
    #[error("{path}: tensor '{key}' has element type {dtype}, expected a float type")]
    DType {
        /// The checkpoint.
        path: PathBuf,
        /// The tensor's key.
        key: String,
        /// The stored element type.
        dtype: String,
    },

    /// The configuration stored with a checkpoint (or given by the caller) is unusable.
    #[error("{path}: {reason}")]
    Config {
        /// The file the configuration came from (or `<config>` when given in code).
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// An input tensor does not have the shape a network expects.
    #[error("input shape {found:?} does not fit: expected {expected}")]
    InputShape {
        /// A description of the expected shape, e.g. `[batch, 1, 257, frames]`.
        expected: String,
        /// The shape that was given.
        found: Vec<usize>,
    },

    /// Saving or loading a burnpack file failed.
    #[error("burnpack file {path}: {reason}")]
    Burnpack {
        /// The burnpack file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// Each error of a checkpoint reader becomes the variant of the same name, so reading a state
/// dict or a burnpack header inside a loader gives the error a caller of this crate matches.
impl From<WeightsError> for ModelError {
    fn from(error: WeightsError) -> Self {
        match error {
            WeightsError::Io { path, source } => ModelError::Io { path, source },
            WeightsError::Checkpoint { path, reason } => ModelError::Checkpoint { path, reason },
            WeightsError::NonFinite { path, key, count } => {
                ModelError::NonFinite { path, key, count }
            }
            WeightsError::DType { path, key, dtype } => ModelError::DType { path, key, dtype },
            WeightsError::Burnpack { path, reason } => ModelError::Burnpack { path, reason },
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, ModelError>;

const MAX_LISTED: usize = 12;

fn list<T, F: Fn(&T) -> String>(items: &[T], show: F) -> String {
    let shown: Vec<String> = items.iter().take(MAX_LISTED).map(show).collect();
    let more = items.len().saturating_sub(MAX_LISTED);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

fn describe_mismatch(
    missing: &[String],
    unexpected: &[String],
    mis_shaped: &[(String, Vec<usize>, Vec<usize>)],
) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!(
            "{} missing key(s): {}",
            missing.len(),
            list(missing, |k| k.clone())
        ));
    }
    if !unexpected.is_empty() {
        parts.push(format!(
            "{} unexpected key(s): {}",
            unexpected.len(),
            list(unexpected, |k| k.clone())
        ));
    }
    if !mis_shaped.is_empty() {
        parts.push(format!(
            "{} mis-shaped key(s): {}",
            mis_shaped.len(),
            list(mis_shaped, |(k, e, f)| format!(
                "{k} (expected {e:?}, found {f:?})"
            ))
        ));
    }
    parts.push("is it the right checkpoint for this network and configuration?".into());
    parts.join("; ")
}
